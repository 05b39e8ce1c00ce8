/*
 * The dashboard's switch view and its newer VM pieces, without a
 * terminal: rates from two `switch show` replies, the view's rows and
 * their text at 80 columns; states a VM may report (panicked, ones this
 * version does not know) and a migration's note on the row; the
 * prompts of a tcp:// migration's secret and of a capture.
 */
#include <criterion/criterion.h>
#include <curses.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tui/tui.h"

TestSuite(tui_sw, .timeout = 10);

/* A show reply as the switch sends it, its counters from the args. */
static json_t *
show(double a_rx, double a_rxb, double b_drop)
{
	json_error_t e;
	json_t *r = json_pack_ex(&e, 0, "{s:s, s:I, s:I, s:s, s:["
	    "{s:s, s:i, s:b, s:[i, i]},"
	    "{s:s, s:i, s:b, s:[]}],"
	    "s:["
	    "{s:i, s:s, s:s, s:s, s:s, s:s, s:{s:f, s:f, s:f, s:f}},"
	    "{s:i, s:s, s:s, s:s, s:s, s:s, s:{s:f, s:f, s:f, s:f}},"
	    "{s:i, s:s, s:s, s:s, s:s, s:s, s:{}}]}",
	    "switch", "vswitch0", "pid", (json_int_t)42, "uptime",
	    (json_int_t)75, "uplink", "",
	    "portgroups",
	    "name", "lan", "vlan", 10, "trunk", 0, "ports", 1, 2,
	    "name", "empty", "vlan", 0, "trunk", 1, "ports",
	    "ports",
	    "id", 1, "name", "vma:net0", "kind", "nic", "portgroup", "lan",
	    "mac", "52:54:00:00:00:01", "vm", "vma",
	    "counters", "rx_packets", a_rx, "rx_bytes", a_rxb, "tx_packets",
	    10.0, "tx_bytes", 1000.0,
	    "id", 2, "name", "vmb:net0", "kind", "nic", "portgroup", "lan",
	    "mac", "52:54:00:00:00:02", "vm", "vmb",
	    "counters", "rx_packets", 5.0, "rx_bytes", 500.0, "tx_packets",
	    a_rx, "tx_full", b_drop,
	    "id", 3, "name", "peer:10.0.0.9", "kind", "peer", "portgroup", "",
	    "mac", "", "vm", "",
	    "counters");

	cr_assert_not_null(r, "%s", e.text);
	return r;
}

static struct tui_model *
model(void)
{
	struct tui_model *m = calloc(1, sizeof(*m));

	cr_assert_not_null(m);
	m->sws = calloc(1, sizeof(*m->sws));
	m->nsws = 1;
	snprintf(m->sws[0].name, sizeof(m->sws[0].name), "vswitch0");
	m->sws[0].c.fd = m->sws[0].cap.fd = -1;
	m->sws[0].state = TUI_SW_RUNNING;
	return m;
}

Test(tui_sw, rate)
{
	cr_assert_float_eq(tui_sw_rate(100, 300, 2000), 100.0, 1e-9);
	cr_assert_lt(tui_sw_rate(-1, 300, 2000), 0, "no earlier sample");
	cr_assert_lt(tui_sw_rate(300, 100, 2000), 0, "a counter went back");
	cr_assert_lt(tui_sw_rate(100, 300, 0), 0, "no time between");
}

Test(tui_sw, show_rates_rows_and_text)
{
	struct tui_model *m = model();
	struct tui_sw *sw = &m->sws[0];
	struct tui_sw_row rows[16];
	char line[256], head[256];
	json_t *j;
	int n;

	j = show(100, 10000, 0);
	tui_sw_show(sw, j, 1000);
	json_decref(j);
	cr_assert_eq(sw->nports, 3);
	cr_assert_eq(sw->npgs, 2);
	cr_assert_lt(sw->ports[0].rx_pps, 0, "one sample: no rate yet");
	/* two seconds later: 200 more frames, 20000 more bytes */
	j = show(300, 30000, 7);
	tui_sw_show(sw, j, 3000);
	json_decref(j);
	cr_assert_float_eq(sw->ports[0].rx_pps, 100.0, 1e-9);
	cr_assert_float_eq(sw->ports[0].rx_bps, 10000.0, 1e-9);
	cr_assert_float_eq(sw->ports[0].tx_pps, 0.0, 1e-9);
	cr_assert_float_eq(sw->ports[1].tx_pps, 100.0, 1e-9);
	cr_assert_float_eq(sw->ports[1].drops, 7.0, 1e-9);

	/* switch, lan, its two ports, the empty group, the peer */
	n = tui_sw_rows(m, rows, 16);
	cr_assert_eq(n, 6);
	cr_assert(rows[0].kind == 's' && rows[1].kind == 'g' &&
	    rows[1].i == 0 && rows[2].kind == 'p' && rows[3].kind == 'p' &&
	    rows[4].kind == 'g' && rows[4].i == 1 && rows[5].kind == 'p' &&
	    rows[5].i == 2);
	cr_assert_eq(tui_sw_rows(m, rows, 2), 2, "bounded by max");

	tui_sw_header(80, head, sizeof(head));
	cr_assert_leq(strlen(head), 79);
	tui_sw_row_text(m, &rows[0], 80, line, sizeof(line));
	cr_assert_str_eq(line, "vswitch0  running  up 1m15s  uplink none  "
	    "3 ports");
	tui_sw_row_text(m, &rows[1], 80, line, sizeof(line));
	cr_assert_eq(strlen(line), strlen(head), "%s", line);
	cr_assert(strstr(line, "  lan ") == line, "%s", line);
	cr_assert(strstr(line, "vlan 10") != NULL, "%s", line);
	cr_assert(strstr(line, "2 ports") != NULL, "%s", line);
	/* the group: its ports' rates added, drops too */
	cr_assert(strstr(line, "   100    100   9.8K      0      7") != NULL,
	    "%s", line);
	tui_sw_row_text(m, &rows[2], 80, line, sizeof(line));
	cr_assert(strstr(line, "    vma:net0 ") == line, "%s", line);
	cr_assert(strstr(line, "52:54:00:00:00:01") != NULL, "%s", line);
	tui_sw_row_text(m, &rows[4], 80, line, sizeof(line));
	cr_assert(strstr(line, "trunk") != NULL, "%s", line);
	cr_assert(strstr(line, "     -      -      -      -      0") !=
	    NULL, "no port, no rate: %s", line);
	/* narrow: MAC goes first, the rates stay */
	tui_sw_row_text(m, &rows[2], 50, line, sizeof(line));
	cr_assert_leq(strlen(line), 49, "%s", line);
	cr_assert(strstr(line, "52:54") == NULL, "%s", line);
	cr_assert(strstr(line, "9.8K") != NULL, "%s", line);

	/* an unresponsive switch says so, and no stale numbers */
	sw->state = TUI_SW_UNRESPONSIVE;
	tui_sw_row_text(m, &rows[0], 80, line, sizeof(line));
	cr_assert_str_eq(line, "vswitch0  unresponsive");
	tui_sw_free(m);
	free(m);
}

Test(tui_sw, a_port_that_went_away_and_came_back_has_no_rate)
{
	struct tui_model *m = model();
	struct tui_sw *sw = &m->sws[0];
	json_t *j = show(100, 10000, 0);

	tui_sw_show(sw, j, 1000);
	json_decref(j);
	/* vma reconnected: same name, counters from 0 */
	j = show(3, 300, 0);
	tui_sw_show(sw, j, 2000);
	json_decref(j);
	cr_assert_lt(sw->ports[0].rx_pps, 0);
	tui_sw_free(m);
	free(m);
}

Test(tui_sw, vm_states)
{
	struct tui_vm vm = { .name = "web", .config_ok = true, .fd = 3,
		.greeted = true };
	int w[TUI_COLS];
	char row[256];

	cr_assert_eq(tui_vm_parse_state("panicked"), TUI_VM_PANICKED);
	cr_assert_eq(tui_vm_parse_state("running"), TUI_VM_RUNNING);
	cr_assert_eq(tui_vm_parse_state("stopped"), TUI_VM_STOPPING);
	cr_assert_eq(tui_vm_parse_state("suspended-to-disk"), TUI_VM_OTHER);
	cr_assert(tui_vm_state_bad(TUI_VM_PANICKED));
	cr_assert(tui_vm_state_bad(TUI_VM_UNRESPONSIVE));
	cr_assert(!tui_vm_state_bad(TUI_VM_OTHER));
	cr_assert(!tui_vm_state_bad(TUI_VM_RUNNING));

	tui_list_layout(80, w);
	vm.state = TUI_VM_PANICKED;
	tui_list_row(&vm, w, row, sizeof(row));
	cr_assert(strstr(row, "panicked") != NULL, "%s", row);
	vm.state = TUI_VM_OTHER;
	snprintf(vm.state_str, sizeof(vm.state_str), "hibernating");
	tui_list_row(&vm, w, row, sizeof(row));
	cr_assert(strstr(row, "web") == row && strstr(row, "hibernating"),
	    "%s", row);

	/* a migration's note, while it runs and for a while after */
	vm.state = TUI_VM_RUNNING;
	snprintf(vm.note, sizeof(vm.note), "migr 45%%");
	vm.note_until = 0;
	cr_assert_str_eq(tui_vm_state_text(&vm, 5000), "migr 45%");
	snprintf(vm.note, sizeof(vm.note), "cancelled");
	vm.note_until = 5000;
	cr_assert_str_eq(tui_vm_state_text(&vm, 4999), "cancelled");
	cr_assert_str_eq(tui_vm_state_text(&vm, 5000), "running");
	/* not on the row of a VM we do not talk to */
	vm.note_until = 0;
	vm.fd = -1;
	cr_assert_str_eq(tui_vm_state_text(&vm, 0), "running");
}

static enum tui_prompt_res
type(struct tui_prompt *p, const char *s)
{
	enum tui_prompt_res r = TUI_PROMPT_MORE;

	for (; *s; s++)
		r = tui_prompt_key(p, (unsigned char)*s);
	return r;
}

Test(tui_sw, secret_prompt)
{
	struct tui_prompt p;
	const char *argv[16], *file;

	tui_prompt_open(&p, TUI_PROMPT_SECRET, "db");
	cr_assert_eq(tui_prompt_key(&p, '\r'), TUI_PROMPT_MORE,
	    "an empty secret is none");
	cr_assert_eq(type(&p, "s3cret\r"), TUI_PROMPT_DONE);
	tui_prompt_secret(&p, &file);
	cr_assert_null(file, "typed: the secret itself");
	tui_prompt_clear(&p);
	cr_assert_eq(p.len, 0);
	cr_assert(memchr(p.text, 's', sizeof(p.text)) == NULL,
	    "cleared, not only cut");

	tui_prompt_open(&p, TUI_PROMPT_SECRET, "db");
	type(&p, "@/etc/tv.secret\r");
	tui_prompt_secret(&p, &file);
	cr_assert_str_eq(file, "/etc/tv.secret");
	cr_assert_eq(tui_prompt_migrate_argv("db", "tcp://h2:4444", file, false,
	    argv, 16), 7);
	cr_assert_str_eq(argv[1], "migrate");
	cr_assert_str_eq(argv[3], "-s");
	cr_assert_str_eq(argv[4], "/etc/tv.secret");
	cr_assert_str_eq(argv[5], "db");
	cr_assert_str_eq(argv[6], "tcp://h2:4444");
	cr_assert_null(argv[7]);
	cr_assert_eq(tui_prompt_migrate_argv("db", "tcp://h2:4444", file, false,
	    argv, 7), -ENOSPC);
	cr_assert_eq(tui_prompt_migrate_argv("db", "-x", file, false, argv, 16),
	    -EINVAL, "a destination taken for an option");
	cr_assert_eq(tui_prompt_migrate_argv("db", "tcp://h2:1", "-f", false,
	    argv, 16), -EINVAL);
}

Test(tui_sw, capture_filter_may_be_empty)
{
	struct tui_prompt p;

	tui_prompt_open(&p, TUI_PROMPT_CAPFILE, "vswitch0");
	cr_assert_eq(tui_prompt_key(&p, '\r'), TUI_PROMPT_MORE,
	    "a file is needed");
	tui_prompt_open(&p, TUI_PROMPT_CAPFILTER, "vswitch0");
	cr_assert_eq(tui_prompt_key(&p, '\r'), TUI_PROMPT_DONE,
	    "no filter: every frame");
	cr_assert_str_eq(p.text, "");
	cr_assert(strstr(tui_prompt_label(TUI_PROMPT_SECRET), "not shown"));
}

/* The dashboard's end of a VM's control socket, greeted, with a NIC. */
static void
fake_vm(struct tui_model *m, int *peer)
{
	int sv[2];

	memset(m, 0, sizeof(*m));
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_not_null(m->vms = calloc(1, sizeof(*m->vms)));
	m->nvms = 1;
	snprintf(m->vms[0].name, sizeof(m->vms[0].name), "web");
	cr_assert_not_null(m->vms[0].buf = malloc(TUI_VM_BUF));
	m->vms[0].fd = sv[0];
	m->vms[0].job_fd = -1;
	m->vms[0].greeted = true;
	m->vms[0].state = TUI_VM_RUNNING;
	m->vms[0].nnics = 1;
	m->vms[0].nics[0].link = -1;
	*peer = sv[1];
}

static void
say(struct tui_model *m, int peer, const char *line)
{
	cr_assert_eq(write(peer, line, strlen(line)), (ssize_t)strlen(line));
	tui_vm_input(m, &m->vms[0]);
}

/* The request the dashboard sent last, as JSON. */
static json_t *
heard(int peer)
{
	char buf[4096];
	ssize_t n = read(peer, buf, sizeof(buf) - 1);
	char *nl;

	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_assert_not_null(nl = strrchr(buf, '\n'));
	*nl = '\0';
	nl = strrchr(buf, '\n');
	return json_loads(nl != NULL ? nl + 1 : buf, 0, NULL);
}

Test(tui_sw, migration_notes_panic_and_link_over_a_socket)
{
	struct tui_model m;
	struct tui_vm *vm;
	char line[256];
	json_t *q;
	int peer;

	fake_vm(&m, &peer);
	vm = &m.vms[0];
	say(&m, peer, "{\"event\": \"migration\", \"status\": \"active\", "
	    "\"round\": 2, \"total_pages\": 1000, \"remaining_pages\": 250}\n");
	cr_assert_str_eq(tui_vm_state_text(vm, tui_vm_now_ms()), "migr 75%");
	/* a failure other than a cancel: the row is the VM's state again */
	say(&m, peer, "{\"event\": \"migration\", \"status\": \"failed\", "
	    "\"error\": \"connection reset\"}\n");
	cr_assert_str_eq(tui_vm_state_text(vm, tui_vm_now_ms()), "running");
	say(&m, peer, "{\"event\": \"migration\", \"status\": \"failed\", "
	    "\"error\": \"cancelled\", \"outcome\": \"the VM keeps running "
	    "here\"}\n");
	cr_assert_str_eq(tui_vm_state_text(vm, tui_vm_now_ms()), "cancelled");
	cr_assert_str_eq(m.msg, "web: migration cancelled; the VM keeps "
	    "running here");

	/* X: migrate-cancel, and its ok says the outcome at once */
	vm->note[0] = '\0';
	tui_vm_command(&m, vm, "migrate-cancel", false);
	q = heard(peer);
	cr_assert_str_eq(json_string_value(json_object_get(q, "cmd")),
	    "migrate-cancel");
	snprintf(line, sizeof(line), "{\"id\": %lld, \"ok\": true, "
	    "\"result\": {}}\n", (long long)json_integer_value(
	    json_object_get(q, "id")));
	json_decref(q);
	say(&m, peer, line);
	cr_assert_str_eq(tui_vm_state_text(vm, tui_vm_now_ms()), "cancelled");
	cr_assert_str_eq(m.msg, "web: migration cancelled; the VM runs here");

	/* pvpanic: the event on the status line, the state on the row */
	say(&m, peer, "{\"event\": \"guest-panic\", \"kind\": \"panicked\", "
	    "\"action\": \"pause\", \"paused\": true}\n");
	cr_assert_str_eq(m.msg, "web: THE GUEST PANICKED (on_panic: pause)");
	say(&m, peer, "{\"event\": \"state\", \"state\": \"panicked\"}\n");
	cr_assert_eq(vm->state, TUI_VM_PANICKED);
	vm->note[0] = '\0';
	cr_assert_str_eq(tui_vm_state_text(vm, 0), "panicked");
	/* a state with control characters is shown tamed */
	say(&m, peer, "{\"event\": \"state\", \"state\": \"odd\\u001b[2J\"}\n");
	cr_assert_eq(vm->state, TUI_VM_OTHER);
	cr_assert_str_eq(tui_vm_state_text(vm, 0), "odd?[2J");

	/* l: nic-link with "up", and the reply sets the NIC's link */
	tui_vm_nic_link(&m, vm, 0, false);
	q = heard(peer);
	cr_assert_str_eq(json_string_value(json_object_get(q, "cmd")),
	    "nic-link");
	cr_assert(json_is_false(json_object_get(json_object_get(q, "args"),
	    "up")));
	snprintf(line, sizeof(line), "{\"id\": %lld, \"ok\": true, "
	    "\"result\": {\"nic\": 0, \"link\": false}}\n", (long long)
	    json_integer_value(json_object_get(q, "id")));
	json_decref(q);
	say(&m, peer, line);
	cr_assert_eq(vm->nics[0].link, 0);
	cr_assert_str_eq(m.msg, "web: nic0 link down");
	tui_vm_nic_link(&m, vm, 3, true);
	cr_assert_str_eq(m.msg, "web has no nic3");
	close(peer);
	tui_vm_free(&m);
}
