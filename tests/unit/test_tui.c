/*
 * The dashboard's pure pieces: column formatting, CPU% from vCPU time
 * deltas, and the list layout shrinking to narrow terminals; the
 * snapshot/migrate prompt's keys and the command they run; migration
 * events read off a control socket onto the status line.
 */
#include <criterion/criterion.h>
#include <curses.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tui/tui.h"

TestSuite(tui, .timeout = 10);

static const char *
mem(uint64_t b)
{
	static char buf[32];

	tui_vm_fmt_mem(b, buf, sizeof(buf));
	return buf;
}

static const char *
up(double s)
{
	static char buf[32];

	tui_vm_fmt_uptime(s, buf, sizeof(buf));
	return buf;
}

static const char *
pct(double p)
{
	static char buf[32];

	tui_vm_fmt_pct(p, buf, sizeof(buf));
	return buf;
}

Test(tui, memory)
{
	cr_assert_str_eq(mem(0), "-");
	cr_assert_str_eq(mem(512 << 10), "512K");
	cr_assert_str_eq(mem(64 << 20), "64M");
	cr_assert_str_eq(mem(1536ull << 20), "1.5G");
	cr_assert_str_eq(mem(16ull << 30), "16G");
	cr_assert_str_eq(mem(3ull << 40), "3T");
}

Test(tui, uptime)
{
	cr_assert_str_eq(up(-1), "-");
	cr_assert_str_eq(up(0), "0s");
	cr_assert_str_eq(up(45.9), "45s");
	cr_assert_str_eq(up(12 * 60 + 3), "12m03s");
	cr_assert_str_eq(up(3 * 3600 + 4 * 60 + 59), "3h04m");
	cr_assert_str_eq(up(2 * 86400 + 3 * 3600), "2d03h");
}

Test(tui, cpu_percent_from_deltas)
{
	/* half a CPU second over one second of uptime */
	cr_assert_float_eq(tui_vm_cpu_pct(1.0, 10.0, 1.5, 11.0), 50.0, 1e-9);
	/* two busy vCPUs: 200% of one host CPU, as top shows it */
	cr_assert_float_eq(tui_vm_cpu_pct(4.0, 10.0, 6.0, 11.0), 200.0, 1e-9);
	/* no previous sample, a reset (time going back), no time between */
	cr_assert_lt(tui_vm_cpu_pct(-1, -1, 1.0, 1.0), 0);
	cr_assert_lt(tui_vm_cpu_pct(5.0, 10.0, 1.0, 11.0), 0);
	cr_assert_lt(tui_vm_cpu_pct(1.0, 10.0, 1.0, 10.0), 0);
	cr_assert_str_eq(pct(-1), "-");
	cr_assert_str_eq(pct(0), "0.0");
	cr_assert_str_eq(pct(12.345), "12.3");
	cr_assert_str_eq(pct(199.7), "200");
}

Test(tui, fit_truncates_with_a_mark)
{
	char buf[32];

	tui_list_fit("web", 8, buf, sizeof(buf));
	cr_assert_str_eq(buf, "web");
	tui_list_fit("database-primary", 8, buf, sizeof(buf));
	cr_assert_str_eq(buf, "databas~");
	tui_list_fit("exactly8", 8, buf, sizeof(buf));
	cr_assert_str_eq(buf, "exactly8");
	tui_list_fit("x", 0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "");
	tui_list_fit("a-name-longer-than-the-buffer-itself", 100, buf, 8);
	cr_assert_eq(strlen(buf), 7);
}

/* Every laid-out row fits in cols - 1 (the last column stays empty). */
static int
row_width(const int w[TUI_COLS])
{
	int sum = 0, n = 0;

	for (int c = 0; c < TUI_COLS; c++)
		if (w[c] > 0) {
			sum += w[c];
			n++;
		}
	return sum + n - 1;
}

Test(tui, layout_80_columns_keeps_everything)
{
	int w[TUI_COLS];

	tui_list_layout(80, w);
	for (int c = 0; c < TUI_COLS; c++)
		cr_assert_gt(w[c], 0, "column %d dropped at 80", c);
	cr_assert_leq(row_width(w), 79);
	cr_assert_geq(w[TUI_COL_NAME], 12);
}

Test(tui, layout_narrow_drops_columns_in_order)
{
	int w[TUI_COLS];

	tui_list_layout(60, w);
	cr_assert_eq(w[TUI_COL_VNC], 0);
	cr_assert_gt(w[TUI_COL_CPU], 0);
	cr_assert_leq(row_width(w), 59);
	tui_list_layout(40, w);
	cr_assert_eq(w[TUI_COL_UPTIME], 0);
	cr_assert_gt(w[TUI_COL_STATE], 0);
	cr_assert_leq(row_width(w), 39);
	for (int cols = 20; cols <= 200; cols++) {
		tui_list_layout(cols, w);
		cr_assert_gt(w[TUI_COL_NAME], 0);
		cr_assert_gt(w[TUI_COL_STATE], 0);
		if (cols >= 30)
			cr_assert_leq(row_width(w), cols - 1, "at %d", cols);
	}
}

Test(tui, row_text)
{
	struct tui_vm vm = { .name = "averyveryverylongnameforthevirtualmachine",
		.cpus = 2, .memory = 64 << 20, .state = TUI_VM_RUNNING,
		.config_ok = true, .fd = 0, .greeted = true, .uptime = 75,
		.cpu_pct = 12.5 };
	int w[TUI_COLS];
	char row[256], head[256];

	tui_list_layout(80, w);
	tui_list_row(&vm, w, row, sizeof(row));
	tui_list_header(w, head, sizeof(head));
	cr_assert_eq(strlen(row), strlen(head));
	cr_assert_leq(strlen(row), 79);
	cr_assert(strstr(row, "running") != NULL, "%s", row);
	cr_assert(strstr(row, "12.5") != NULL, "%s", row);
	cr_assert(strstr(row, "1m15s") != NULL, "%s", row);
	cr_assert(strstr(row, "64M") != NULL, "%s", row);
	cr_assert(strstr(row, "~ ") != NULL, "name not cut: %s", row);
	/* no disk or NIC: no rates; its VNC address when it has one */
	vm.disk_rate = vm.net_rate = -1;
	snprintf(vm.vnc_addr, sizeof(vm.vnc_addr), "127.0.0.1:5901");
	vm.net_rate = 1536;
	tui_list_row(&vm, w, row, sizeof(row));
	cr_assert(strstr(row, "12.5     -  1.5K ") != NULL, "%s", row);
	cr_assert(strstr(row, " 127.0.0.1:5901") != NULL, "%s", row);
	/* a stopped VM shows no live numbers */
	vm.fd = -1;
	vm.greeted = false;
	vm.state = TUI_VM_STOPPED;
	tui_list_row(&vm, w, row, sizeof(row));
	cr_assert(strstr(row, "12.5") == NULL, "%s", row);
	cr_assert(strstr(row, "stopped") != NULL, "%s", row);
}

Test(tui, sparkline)
{
	double h[TUI_HIST] = { 0 };
	char buf[64];

	/* no samples: blank */
	tui_detail_spark(h, 0, 0, 100, 5, buf, sizeof(buf));
	cr_assert_str_eq(buf, "     ");
	/* idle, a little, full, newest at the right */
	h[0] = 0;
	h[1] = 1;
	h[2] = 100;
	tui_detail_spark(h, 3, 3, 100, 5, buf, sizeof(buf));
	cr_assert_str_eq(buf, "  _.#");
	/* auto scale: the largest sample is the top */
	h[3] = 50;
	tui_detail_spark(h, 4, 4, 0, 4, buf, sizeof(buf));
	cr_assert_str_eq(buf, "_.#=");
	/* more samples than room: only the newest, across the ring's end */
	for (int i = 0; i < TUI_HIST; i++)
		h[i] = i == 1 ? 100 : 0;
	tui_detail_spark(h, TUI_HIST, 2, 100, 3, buf, sizeof(buf));
	cr_assert_str_eq(buf, "__#");
	/* a short buffer is never overrun */
	tui_detail_spark(h, TUI_HIST, 2, 100, 40, buf, 8);
	cr_assert_eq(strlen(buf), 7);
}

Test(tui, console_clean)
{
	char out[128];
	const char in[] = "\x1b[1;32mok\x1b[0m boot\r\nload 10%\rload 100%\n"
	    "a\tb\x07\xc3\xa9\x1b" "cend";
	size_t n = tui_console_clean(in, sizeof(in) - 1, out, sizeof(out));

	cr_assert_str_eq(out, "ok boot\nload 100%\na       b??end");
	cr_assert_eq(n, strlen(out));
	/* the output buffer bounds it, and the last byte is kept when it fits */
	n = tui_console_clean("abcdef", 6, out, 4);
	cr_assert_str_eq(out, "abc");
	n = tui_console_clean("halting\n", 8, out, 9);
	cr_assert_str_eq(out, "halting\n");
}

Test(tui, console_tail)
{
	const char *t = "one\ntwo\nthree\n";

	cr_assert_str_eq(tui_console_tail(t, 80, 10), t);
	cr_assert_str_eq(tui_console_tail(t, 80, 2), "two\nthree\n");
	cr_assert_str_eq(tui_console_tail(t, 80, 1), "three\n");
	/* a long line wraps: only its last rows show */
	cr_assert_str_eq(tui_console_tail("x\nabcdefghij", 4, 2), "efghij");
	cr_assert_str_eq(tui_console_tail("x\nabcdefghij", 4, 3), "abcdefghij");
	cr_assert_str_eq(tui_console_tail("x\nabcdefghij", 4, 4),
	    "x\nabcdefghij");
	cr_assert_str_eq(tui_console_tail("", 4, 4), "");
	cr_assert_str_eq(tui_console_tail("a\n\nb", 4, 2), "\nb");
}

Test(tui, console_clean_rubs_out_with_backspace)
{
	char out[64];

	/* the shell echoes "\b \b" for each rubbed-out key */
	tui_console_clean("# lss\b \b -l\n\b\bx", 15, out, sizeof(out));
	cr_assert_str_eq(out, "# ls -l\nx", "got [%s]", out);
}

Test(tui, console_keys_are_sent_as_a_vt100_would)
{
	uint8_t b[8];

	cr_assert_eq(tui_console_key('a', b), 1);
	cr_assert_eq(b[0], 'a');
	cr_assert_eq(tui_console_key('\r', b), 1);
	cr_assert_eq(b[0], '\r');
	cr_assert_eq(tui_console_key(3, b), 1, "Ctrl-C reaches the guest");
	cr_assert_eq(b[0], 3);
	cr_assert_eq(tui_console_key(KEY_UP, b), 3);
	cr_assert_eq(memcmp(b, "\033[A", 3), 0);
	cr_assert_eq(tui_console_key(KEY_LEFT, b), 3);
	cr_assert_eq(memcmp(b, "\033[D", 3), 0);
	cr_assert_eq(tui_console_key(KEY_DC, b), 4);
	cr_assert_eq(memcmp(b, "\033[3~", 4), 0);
	cr_assert_eq(tui_console_key(KEY_BACKSPACE, b), 1);
	cr_assert_eq(b[0], 0x7f);
	cr_assert_eq(tui_console_key(KEY_RESIZE, b), 0, "not a key to send");
	cr_assert_eq(tui_console_key(KEY_F(5), b), 0);
}

static enum tui_prompt_res
type(struct tui_prompt *p, const char *s)
{
	enum tui_prompt_res r = TUI_PROMPT_MORE;

	for (; *s != '\0'; s++)
		r = tui_prompt_key(p, (unsigned char)*s);
	return r;
}

Test(tui, prompt_snapshot_name_to_command)
{
	struct tui_prompt p;
	const char *argv[16];

	tui_prompt_open(&p, TUI_PROMPT_SNAPSHOT, "web");
	cr_assert_eq(type(&p, "snapX"), TUI_PROMPT_MORE);
	cr_assert_eq(tui_prompt_key(&p, KEY_BACKSPACE), TUI_PROMPT_MORE);
	cr_assert_eq(tui_prompt_key(&p, 127), TUI_PROMPT_MORE);
	/* arrows and function keys are not text */
	cr_assert_eq(tui_prompt_key(&p, KEY_LEFT), TUI_PROMPT_MORE);
	cr_assert_eq(type(&p, "p1"), TUI_PROMPT_MORE);
	cr_assert_str_eq(p.text, "snap1");
	cr_assert_eq(tui_prompt_key(&p, '\r'), TUI_PROMPT_DONE);
	cr_assert_eq(tui_prompt_argv(&p, "/ds", argv, 16), 7);
	cr_assert_str_eq(argv[1], "snapshot");
	cr_assert_str_eq(argv[2], "take");
	cr_assert_str_eq(argv[3], "-d");
	cr_assert_str_eq(argv[4], "/ds");
	cr_assert_str_eq(argv[5], "web");
	cr_assert_str_eq(argv[6], "snap1");
	cr_assert_null(argv[7]);
	cr_assert_eq(tui_prompt_argv(&p, "/ds", argv, 5), -ENOSPC);
}

Test(tui, prompt_migrate_destination_to_command)
{
	struct tui_prompt p;
	const char *argv[16];

	tui_prompt_open(&p, TUI_PROMPT_MIGRATE, "db");
	type(&p, "junk");
	cr_assert_eq(tui_prompt_key(&p, 21), TUI_PROMPT_MORE);	/* ^U */
	cr_assert_str_eq(p.text, "");
	cr_assert_eq(type(&p, "ssh://admin@host2\n"), TUI_PROMPT_DONE);
	cr_assert_eq(tui_prompt_argv(&p, "/ds", argv, 16), 5);
	cr_assert_str_eq(argv[1], "migrate");
	cr_assert_str_eq(argv[3], "db");
	cr_assert_str_eq(argv[4], "ssh://admin@host2");
	cr_assert_null(argv[5]);
}

/* After the destination: copy the disks too?  One key answers; the
 * answer puts --copy-storage on the command line, with or without -s. */
Test(tui, prompt_copy_storage_question)
{
	struct tui_prompt p;
	const char *argv[16];

	tui_prompt_open(&p, TUI_PROMPT_STORAGE, "db");
	cr_assert(strstr(tui_prompt_label(TUI_PROMPT_STORAGE), "y/N"));
	cr_assert_eq(tui_prompt_key(&p, 'x'), TUI_PROMPT_MORE, "not an answer");
	cr_assert_eq(p.len, 0);
	cr_assert_eq(tui_prompt_key(&p, 'Y'), TUI_PROMPT_DONE);
	cr_assert_str_eq(p.text, "y");
	tui_prompt_open(&p, TUI_PROMPT_STORAGE, "db");
	cr_assert_eq(tui_prompt_key(&p, '\r'), TUI_PROMPT_DONE, "Enter: no");
	cr_assert_eq(p.len, 0);
	cr_assert_eq(tui_prompt_key(&p, 'n'), TUI_PROMPT_DONE);
	cr_assert_eq(p.len, 0);
	cr_assert_eq(tui_prompt_key(&p, 27), TUI_PROMPT_CANCEL);
	cr_assert_eq(p.what, 0);
	cr_assert_eq(p.copy_storage, false, "open starts with no");

	cr_assert_eq(tui_prompt_migrate_argv("db", "ssh://h2", NULL, true, argv,
	    16), 6);
	cr_assert_str_eq(argv[2], "-q");
	cr_assert_str_eq(argv[3], "--copy-storage");
	cr_assert_str_eq(argv[4], "db");
	cr_assert_str_eq(argv[5], "ssh://h2");
	cr_assert_null(argv[6]);
	cr_assert_eq(tui_prompt_migrate_argv("db", "ssh://h2", NULL, false,
	    argv, 16), 5);
	cr_assert_str_eq(argv[3], "db");
	cr_assert_eq(tui_prompt_migrate_argv("db", "tcp://h2:1", "/s", true,
	    argv, 16), 8);
	cr_assert_str_eq(argv[3], "-s");
	cr_assert_str_eq(argv[4], "/s");
	cr_assert_str_eq(argv[5], "--copy-storage");
	cr_assert_str_eq(argv[7], "tcp://h2:1");
	cr_assert_eq(tui_prompt_migrate_argv("db", "tcp://h2:1", "/s", true,
	    argv, 8), -ENOSPC);
	cr_assert_eq(tui_prompt_migrate_argv("db", "tcp://h2:1", "", true,
	    argv, 16), -EINVAL);
}

Test(tui, prompt_esc_cancels_and_empty_enter_waits)
{
	struct tui_prompt p;
	const char *argv[16];

	tui_prompt_open(&p, TUI_PROMPT_SNAPSHOT, "web");
	/* Enter on nothing: still asking, nothing to run */
	cr_assert_eq(tui_prompt_key(&p, KEY_ENTER), TUI_PROMPT_MORE);
	cr_assert_eq(tui_prompt_argv(&p, "/ds", argv, 16), -EINVAL);
	type(&p, "half");
	cr_assert_eq(tui_prompt_key(&p, 27), TUI_PROMPT_CANCEL);
	cr_assert_eq(p.what, 0);
	/* an answer that getopt would take for an option is refused */
	tui_prompt_open(&p, TUI_PROMPT_SNAPSHOT, "web");
	cr_assert_eq(type(&p, "--help\r"), TUI_PROMPT_DONE);
	cr_assert_eq(tui_prompt_argv(&p, "/ds", argv, 16), -EINVAL);
	/* the text is bounded */
	tui_prompt_open(&p, TUI_PROMPT_MIGRATE, "web");
	for (int i = 0; i < 1000; i++)
		tui_prompt_key(&p, 'a');
	cr_assert_eq(p.len, sizeof(p.text) - 1);
	cr_assert_eq(strlen(p.text), sizeof(p.text) - 1);
}

/* The dashboard's end of a VM's control socket, greeted. */
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
	*peer = sv[1];
}

static void
say(struct tui_model *m, int peer, const char *line)
{
	cr_assert_eq(write(peer, line, strlen(line)), (ssize_t)strlen(line));
	tui_vm_input(m, &m->vms[0]);
}

Test(tui, migration_events_on_the_status_line)
{
	struct tui_model m;
	int peer;

	fake_vm(&m, &peer);
	say(&m, peer, "{\"event\": \"migration\", \"status\": \"active\", "
	    "\"round\": 2, \"total_pages\": 1000, \"remaining_pages\": 250}\n");
	cr_assert_str_eq(m.msg, "web: migrating: round 2, 75% copied");
	say(&m, peer, "{\"event\": \"migration\", \"status\": \"failed\", "
	    "\"error\": \"connection reset\"}\n");
	cr_assert_str_eq(m.msg, "web: migration failed: connection reset");
	say(&m, peer, "{\"event\": \"migrated\", \"total_ms\": 3300, "
	    "\"downtime_ms\": 93, \"rounds\": 1}\n");
	cr_assert_str_eq(m.msg, "web: migrated (3300 ms, paused 93 ms)");
	close(peer);
	tui_vm_free(&m);
}
