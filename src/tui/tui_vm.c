/*
 * The dashboard's model: the datastore's VMs and what their control
 * sockets say.  Sockets are non-blocking and read when the main loop's
 * poll says so; a request unanswered after TUI_VM_TIMEOUT_MS makes the
 * VM "unresponsive" without ever waiting for it.
 */
#include "tui/tui.h"

#include <dirent.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control/control.h"
#include "control/control_client.h"
#include "control/control_stats.h"
#include "hv/vmconfig.h"
#include "util/sock.h"
#include "vmfs/vmfs.h"
#include "vmfs/vmfs_lock.h"

static const char *const tui_vm_state_names[TUI_VM_STATES] = {
	[TUI_VM_STOPPED] = "stopped", [TUI_VM_STARTING] = "starting",
	[TUI_VM_RUNNING] = "running", [TUI_VM_PAUSED] = "paused",
	[TUI_VM_STOPPING] = "stopping", [TUI_VM_STALE] = "stale",
	[TUI_VM_UNRESPONSIVE] = "unresponsive", [TUI_VM_LOCKED] = "locked",
	[TUI_VM_PANICKED] = "panicked", [TUI_VM_OTHER] = "?",
};

const char *
tui_vm_state_name(enum tui_vm_state s)
{
	return s < TUI_VM_STATES ? tui_vm_state_names[s] : "?";
}

const char *
tui_vm_state_text(const struct tui_vm *vm, long long now)
{
	if (vm->note[0] != '\0' && vm->fd >= 0 && (vm->note_until == 0 ||
	    now < vm->note_until))
		return vm->note;
	if (vm->state == TUI_VM_OTHER)
		return vm->state_str[0] ? vm->state_str : "?";
	return tui_vm_state_name(vm->state);
}

bool
tui_vm_state_bad(enum tui_vm_state s)
{
	return s == TUI_VM_STALE || s == TUI_VM_UNRESPONSIVE ||
	    s == TUI_VM_PANICKED;
}

long long
tui_vm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
tui_vm_msg(struct tui_model *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->msg, sizeof(m->msg), fmt, ap);
	va_end(ap);
	m->msg_new = true;
	m->dirty = true;
}

double
tui_vm_cpu_pct(double cpu0, double up0, double cpu1, double up1)
{
	if (cpu0 < 0 || cpu1 < cpu0 || up1 - up0 < 0.05)
		return -1;
	return (cpu1 - cpu0) / (up1 - up0) * 100.0;
}

void
tui_vm_fmt_mem(uint64_t b, char *buf, size_t len)
{
	static const char units[] = "KMGTP";
	double v = (double)b / 1024;
	int u = 0;

	if (b == 0) {
		snprintf(buf, len, "-");
		return;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (v < 10 && v != (double)(uint64_t)v)
		snprintf(buf, len, "%.1f%c", v, units[u]);
	else
		snprintf(buf, len, "%.0f%c", v, units[u]);
}

void
tui_vm_fmt_uptime(double s, char *buf, size_t len)
{
	long long t = (long long)s;

	if (s < 0)
		snprintf(buf, len, "-");
	else if (t < 60)
		snprintf(buf, len, "%llds", t);
	else if (t < 3600)
		snprintf(buf, len, "%lldm%02llds", t / 60, t % 60);
	else if (t < 86400)
		snprintf(buf, len, "%lldh%02lldm", t / 3600, t / 60 % 60);
	else
		snprintf(buf, len, "%lldd%02lldh", t / 86400, t / 3600 % 24);
}

void
tui_vm_fmt_pct(double pct, char *buf, size_t len)
{
	if (pct < 0)
		snprintf(buf, len, "-");
	else if (pct < 99.95)
		snprintf(buf, len, "%.1f", pct);
	else
		snprintf(buf, len, "%.0f", pct);
}

/* --- the control socket --- */

static void
tui_vm_disconnect(struct tui_vm *vm)
{
	if (vm->fd >= 0)
		close(vm->fd);
	vm->fd = -1;
	vm->greeted = false;
	vm->len = 0;
	vm->stats_id = 0;
	vm->cpu_time = vm->cpu_uptime = vm->cpu_pct = vm->uptime = -1;
	vm->exits = vm->exits_uptime = -1;
	vm->disk_rate = vm->net_rate = -1;
	vm->vnc_addr[0] = '\0';
	vm->hist_n = vm->hist_at = 0;
	json_decref(vm->stats);
	vm->stats = NULL;
	vm->console_id = vm->con_in_id = 0;
	vm->con_attached = false;
	vm->con_in_len = 0;	/* typed at a VM that went away */
	vm->note[0] = '\0';
	for (int i = 0; i < TUI_NICS; i++) {
		vm->nics[i].link = -1;
		vm->nics[i].link_id = 0;
	}
}

/* 0 connected (greeting still to come), or -errno. */
static int
tui_vm_connect(struct tui_vm *vm)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;

	if (control_socket_path(vm->name, path, sizeof(path), NULL, 0) < 0)
		return -ENAMETOOLONG;
	if (vm->buf == NULL && (vm->buf = malloc(TUI_VM_BUF)) == NULL)
		return -ENOMEM;
	/* Never waits, even on a hung VM (sock_connect_unix). */
	if ((fd = sock_connect_unix(path)) < 0)
		return fd;
	vm->fd = fd;
	vm->greeted = false;
	vm->len = 0;
	vm->connected_ms = tui_vm_now_ms();
	return 0;
}

/* Send one request; its id, or 0 when it could not be sent. */
static unsigned
tui_vm_send(struct tui_vm *vm, const char *cmd, json_t *args)
{
	unsigned id = ++vm->next_id;
	json_t *req = json_pack("{s:I, s:s, s:o?}", "id", (json_int_t)id,
	    "cmd", cmd, "args", args);
	char *s = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	size_t n;
	ssize_t w;

	json_decref(req);
	if (s == NULL)
		return 0;
	n = strlen(s);
	s[n] = '\n';	/* json_dumps' NUL becomes the newline */
	w = send(vm->fd, s, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	free(s);
	/* A short write means the VM stopped reading: treat it as hung. */
	return w == (ssize_t)(n + 1) ? id : 0;
}

enum tui_vm_state
tui_vm_parse_state(const char *s)
{
	if (s == NULL)
		return TUI_VM_UNRESPONSIVE;
	if (strcmp(s, "running") == 0)
		return TUI_VM_RUNNING;
	if (strcmp(s, "paused") == 0)
		return TUI_VM_PAUSED;
	if (strcmp(s, "stopping") == 0 || strcmp(s, "stopped") == 0 ||
	    strcmp(s, "shutdown") == 0)
		return TUI_VM_STOPPING;	/* on its way out */
	if (strcmp(s, "created") == 0)
		return TUI_VM_STARTING;
	if (strcmp(s, "panicked") == 0 || strcmp(s, "guest-panicked") == 0)
		return TUI_VM_PANICKED;
	/* A newer VM's state: shown as it says it, never mistaken for
	 * one we know. */
	return TUI_VM_OTHER;
}

static void
tui_vm_set_state(struct tui_model *m, struct tui_vm *vm,
    enum tui_vm_state s)
{
	if (vm->state != s)
		m->dirty = true;
	vm->state = s;
}

/* The state a VM reported (s may be NULL). */
static void
tui_vm_set_state_str(struct tui_model *m, struct tui_vm *vm, const char *s)
{
	enum tui_vm_state st = tui_vm_parse_state(s);

	if (st == TUI_VM_OTHER && strncmp(vm->state_str, s,
	    sizeof(vm->state_str) - 1) != 0) {
		/* printable ASCII only: it goes to the terminal */
		size_t i;

		for (i = 0; s[i] != '\0' && i < sizeof(vm->state_str) - 1;
		    i++)
			vm->state_str[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] :
			    '?';
		vm->state_str[i] = '\0';
		m->dirty = true;
	}
	tui_vm_set_state(m, vm, st);
}

/* Add a sample of CPU%, exits/s and I/O rates to the history rings
 * (vm->stats is still the sample before r). */
static void
tui_vm_history(struct tui_vm *vm, json_t *r, double up)
{
	double exits = 0, rate = -1;
	struct control_rates rt;
	json_t *v;
	size_t i;

	control_stats_rates(vm->stats, r, &rt);
	vm->disk_rate = rt.disk_rd < 0 ? -1 : rt.disk_rd + rt.disk_wr;
	vm->net_rate = rt.net_rx < 0 ? -1 : rt.net_rx + rt.net_tx;

	json_array_foreach(json_object_get(r, "vcpus"), i, v)
		exits += (double)json_integer_value(json_object_get(v,
		    "exits_total"));
	if (vm->exits >= 0 && exits >= vm->exits && up - vm->exits_uptime >= 0.05)
		rate = (exits - vm->exits) / (up - vm->exits_uptime);
	vm->exits = exits;
	vm->exits_uptime = up;
	if (rate < 0 && vm->cpu_pct < 0)
		return;	/* the first sample: nothing to difference yet */
	vm->cpu_hist[vm->hist_at] = vm->cpu_pct < 0 ? 0 : vm->cpu_pct;
	vm->exit_hist[vm->hist_at] = rate < 0 ? 0 : rate;
	vm->disk_hist[vm->hist_at] = vm->disk_rate < 0 ? 0 : vm->disk_rate;
	vm->net_hist[vm->hist_at] = vm->net_rate < 0 ? 0 : vm->net_rate;
	vm->hist_at = (vm->hist_at + 1) % TUI_HIST;
	if (vm->hist_n < TUI_HIST)
		vm->hist_n++;
}

static void
tui_vm_stats(struct tui_model *m, struct tui_vm *vm, json_t *r)
{
	json_t *v, *t;
	double cpu = 0, up;
	size_t i;

	tui_vm_set_state_str(m, vm, json_string_value(json_object_get(r,
	    "state")));
	if (json_is_integer(json_object_get(r, "memory")))
		vm->memory = (uint64_t)json_integer_value(json_object_get(r,
		    "memory"));
	if (json_array_size(json_object_get(r, "vcpus")) > 0)
		vm->cpus = (int)json_array_size(json_object_get(r, "vcpus"));
	up = json_is_number(json_object_get(r, "uptime")) ?
	    json_number_value(json_object_get(r, "uptime")) : -1;
	json_array_foreach(json_object_get(r, "vcpus"), i, v) {
		t = json_object_get(v, "cpu_time");
		if (!json_is_number(t)) {
			cpu = -1;
			break;
		}
		cpu += json_number_value(t);
	}
	/* A guest reset runs new vCPU threads: their time starts at 0. */
	if (cpu >= 0 && vm->cpu_time >= 0 && cpu < vm->cpu_time)
		vm->cpu_time = -1;
	if (cpu >= 0 && up >= 0) {
		double pct = tui_vm_cpu_pct(vm->cpu_time, vm->cpu_uptime, cpu,
		    up);

		if (pct >= 0 || vm->cpu_time < 0) {
			vm->cpu_pct = pct;
			vm->cpu_time = cpu;
			vm->cpu_uptime = up;
		}
	}
	vm->uptime = up;
	snprintf(vm->vnc_addr, sizeof(vm->vnc_addr), "%s", json_is_string(
	    json_object_get(r, "vnc_addr")) ? json_string_value(
	    json_object_get(r, "vnc_addr")) : "");
	tui_vm_history(vm, r, up);
	json_decref(vm->stats);
	vm->stats = json_incref(r);
	m->dirty = true;
}

_Static_assert(TUI_CON_RAW >= CONTROL_CONSOLE_CHUNK, "an event fits");
_Static_assert(TUI_NICS == VMCFG_MAX_NICS, "every NIC of a config");

/* Guest output for the pane: the raw bytes, bounded, then cleaned for
 * drawing (the cleaning needs the whole tail: a CR rewrites a line). */
static void
tui_vm_console_output(struct tui_model *m, struct tui_vm *vm, json_t *d)
{
	uint8_t buf[CONTROL_CONSOLE_CHUNK];
	long n = control_json_bytes(d, buf, sizeof(buf));
	size_t keep;
	char *c;

	if (n <= 0)
		return;
	if (vm->con_raw == NULL &&
	    (vm->con_raw = malloc(TUI_CON_RAW)) == NULL)
		return;
	keep = vm->con_raw_len + (size_t)n > TUI_CON_RAW ?
	    TUI_CON_RAW - (size_t)n : vm->con_raw_len;
	memmove(vm->con_raw, vm->con_raw + vm->con_raw_len - keep, keep);
	memcpy(vm->con_raw + keep, buf, (size_t)n);
	vm->con_raw_len = keep + (size_t)n;
	/* room for every byte to be a tab that becomes 8 spaces */
	if ((c = realloc(vm->console, vm->con_raw_len * 8 + 1)) == NULL)
		return;
	vm->console = c;
	vm->console_len = tui_console_clean(vm->con_raw, vm->con_raw_len, c,
	    vm->con_raw_len * 8 + 1);
	m->dirty = true;
}

/* Send what was typed and not yet taken, one request at a time. */
static void
tui_vm_console_flush(struct tui_vm *vm)
{
	if (vm->con_in_id != 0 || vm->con_in_len == 0 || vm->fd < 0 ||
	    !vm->greeted)
		return;
	vm->con_in_id = tui_vm_send(vm, "console-input", json_pack("{s:o}",
	    "data", control_bytes_json(vm->con_in, vm->con_in_len)));
}

static void
tui_vm_console_reply(struct tui_model *m, struct tui_vm *vm, json_t *j,
    json_int_t id)
{
	json_t *e = json_object_get(json_object_get(j, "error"), "message");
	json_int_t w;

	if (id == (json_int_t)vm->console_id) {
		vm->console_id = 0;
		vm->con_attached = json_is_true(json_object_get(j, "ok"));
		if (!vm->con_attached)
			tui_vm_msg(m, "%s: no console: %s", vm->name,
			    json_is_string(e) ? json_string_value(e) :
			    "the VM refused");
		return;
	}
	vm->con_in_id = 0;
	w = json_integer_value(json_object_get(json_object_get(j, "result"),
	    "written"));
	if (!json_is_true(json_object_get(j, "ok"))) {
		tui_vm_msg(m, "%s: typing: %s", vm->name, json_is_string(e) ?
		    json_string_value(e) : "the VM refused");
		w = (json_int_t)vm->con_in_len;	/* would fail again */
	}
	if (w < 0 || (size_t)w > vm->con_in_len)
		w = 0;
	memmove(vm->con_in, vm->con_in + w, vm->con_in_len - (size_t)w);
	vm->con_in_len -= (size_t)w;
	/* The rest when the guest has read some: with the next tick at
	 * the latest, never in a busy loop. */
	if (w > 0)
		tui_vm_console_flush(vm);
}

void
tui_vm_console(struct tui_vm *vm)
{
	if (vm->fd < 0 || !vm->greeted || vm->console_id != 0 ||
	    vm->con_attached)
		return;
	/* The attach replays the ring: start from an empty pane. */
	vm->con_raw_len = 0;
	vm->console_len = 0;
	if (vm->console != NULL)
		vm->console[0] = '\0';
	vm->console_id = tui_vm_send(vm, "console-attach", NULL);
}

void
tui_vm_console_detach(struct tui_vm *vm)
{
	if (vm->con_attached && vm->fd >= 0)
		(void)tui_vm_send(vm, "console-detach", NULL);
	vm->con_attached = false;
	vm->con_in_len = 0;
}

bool
tui_vm_console_type(struct tui_vm *vm, const uint8_t *buf, size_t n)
{
	if (n > TUI_CON_IN - vm->con_in_len)
		return false;
	memcpy(vm->con_in + vm->con_in_len, buf, n);
	vm->con_in_len += n;
	tui_vm_console_flush(vm);
	return true;
}

/* A migration's progress: on the status line, as it goes. */
static void
tui_vm_migration(struct tui_model *m, struct tui_vm *vm, const char *ev,
    json_t *j)
{
	const char *st = json_string_value(json_object_get(j, "status"));
	json_int_t total = json_integer_value(json_object_get(j,
	    "total_pages"));
	json_int_t left = json_integer_value(json_object_get(j,
	    "remaining_pages"));
	const char *err = json_string_value(json_object_get(j, "error"));
	const char *outcome = json_string_value(json_object_get(j,
	    "outcome"));

	/* On the row, too: while it runs, then its outcome for a while. */
	vm->note_until = tui_vm_now_ms() + TUI_NOTE_MS;
	if (strcmp(ev, "migrated") == 0)
		snprintf(vm->note, sizeof(vm->note), "migrated");
	else if (st != NULL && strcmp(st, "active") == 0) {
		snprintf(vm->note, sizeof(vm->note), "migr %d%%",
		    total > 0 && left >= 0 && left <= total ? (int)((total -
		    left) * 100 / total) % 101 : 0);
		vm->note_until = 0;
	} else if (st != NULL && strcmp(st, "failed") == 0) {
		/* A cancel was asked for here: its outcome stays on the
		 * row.  Any other failure leaves the VM as it was, and
		 * says why on the status line. */
		if (err != NULL && strstr(err, "cancel") != NULL)
			snprintf(vm->note, sizeof(vm->note), "cancelled");
		else
			vm->note[0] = '\0';
	}
	m->dirty = true;

	if (st != NULL && strcmp(st, "failed") == 0 && err != NULL &&
	    strstr(err, "cancel") != NULL)
		tui_vm_msg(m, "%s: migration cancelled; %s", vm->name,
		    outcome != NULL ? outcome : "the VM runs here");
	else if (strcmp(ev, "migrated") == 0)
		tui_vm_msg(m, "%s: migrated (%lld ms, paused %lld ms)",
		    vm->name, (long long)json_integer_value(json_object_get(j,
		    "total_ms")), (long long)json_integer_value(
		    json_object_get(j, "downtime_ms")));
	else if (st != NULL && strcmp(st, "active") == 0)
		tui_vm_msg(m, "%s: migrating: round %lld, %lld%% copied",
		    vm->name, (long long)json_integer_value(json_object_get(j,
		    "round")), total > 0 && left <= total ?
		    (long long)((total - left) * 100 / total) : 0LL);
	else if (st != NULL && strcmp(st, "failed") == 0)
		tui_vm_msg(m, "%s: migration failed: %s", vm->name,
		    err != NULL ? err : "?");
}

/* A nic-link reply: the link as the VM has it now. */
static void
tui_vm_nic_reply(struct tui_model *m, struct tui_vm *vm, int i, json_t *j)
{
	json_t *e = json_object_get(json_object_get(j, "error"), "message");
	json_t *r = json_object_get(j, "result");
	bool asked = vm->action_id != 0 && vm->action_id ==
	    vm->nics[i].link_id;

	vm->nics[i].link_id = 0;
	if (asked)
		vm->action_id = 0;
	if (!json_is_true(json_object_get(j, "ok"))) {
		if (asked)
			tui_vm_msg(m, "%s: nic%d: %s", vm->name, i,
			    json_is_string(e) ? json_string_value(e) :
			    "the VM refused");
		return;
	}
	if (vm->nics[i].link != json_is_true(json_object_get(r, "link")))
		m->dirty = true;
	vm->nics[i].link = json_is_true(json_object_get(r, "link"));
	if (asked)
		tui_vm_msg(m, "%s: nic%d link %s", vm->name, i,
		    vm->nics[i].link ? "up" : "down");
}

/*
 * The VM took migrate-cancel: it refuses one past the switch-over, so
 * the outcome is known now: the VM goes on running here.  The row says
 * so at once.  Our `termvisor migrate` follower waits for the VM's
 * last event; if that does not come, it is ended (the VM does the
 * migration, the follower only watches).
 */
static void
tui_vm_cancelled(struct tui_model *m, struct tui_vm *vm)
{
	snprintf(vm->note, sizeof(vm->note), "cancelled");
	vm->note_until = tui_vm_now_ms() + TUI_NOTE_MS;
	if (vm->job_pid > 0 && strncmp(vm->job, "migrate", 7) == 0) {
		vm->job_cancelled = true;
		vm->job_kill_ms = tui_vm_now_ms() + 5000;
	}
	tui_vm_msg(m, "%s: migration cancelled; the VM runs here", vm->name);
}

/* {"event": "guest-panic", "kind", "action", "paused"} (pvpanic). */
static void
tui_vm_panic(struct tui_model *m, struct tui_vm *vm, json_t *j)
{
	const char *kind = json_string_value(json_object_get(j, "kind"));
	const char *action = json_string_value(json_object_get(j, "action"));

	if (kind != NULL && strcmp(kind, "crash-loaded") == 0)
		tui_vm_msg(m, "%s: the guest panicked and loads a crash kernel",
		    vm->name);
	else
		tui_vm_msg(m, "%s: THE GUEST PANICKED%s%s%s", vm->name,
		    action != NULL ? " (on_panic: " : "", action != NULL ?
		    action : "", action != NULL ? ")" : "");
}

static void
tui_vm_reply(struct tui_model *m, struct tui_vm *vm, json_t *j)
{
	json_int_t id = json_integer_value(json_object_get(j, "id"));
	json_t *e = json_object_get(j, "error");
	const char *ev = json_string_value(json_object_get(j, "event"));

	if (ev != NULL) {
		if (strcmp(ev, "console") == 0 && vm->con_attached)
			tui_vm_console_output(m, vm, json_object_get(j, "data"));
		else if (strcmp(ev, "migration") == 0 ||
		    strcmp(ev, "migrated") == 0)
			tui_vm_migration(m, vm, ev, j);
		else if (strcmp(ev, "reset") == 0)
			tui_vm_msg(m, "%s: the guest reset", vm->name);
		else if (strcmp(ev, "guest-panic") == 0)
			tui_vm_panic(m, vm, j);
		else if (strcmp(ev, "state") == 0)
			tui_vm_set_state_str(m, vm, json_string_value(
			    json_object_get(j, "state")));
		return;
	}
	for (int i = 0; i < vm->nnics && id != 0; i++)
		if (id == (json_int_t)vm->nics[i].link_id) {
			tui_vm_nic_reply(m, vm, i, j);
			return;
		}
	if (id == (json_int_t)vm->stats_id && vm->stats_id != 0) {
		vm->stats_id = 0;
		if (json_is_true(json_object_get(j, "ok")))
			tui_vm_stats(m, vm, json_object_get(j, "result"));
		return;
	}
	if ((id == (json_int_t)vm->console_id && vm->console_id != 0) ||
	    (id == (json_int_t)vm->con_in_id && vm->con_in_id != 0)) {
		tui_vm_console_reply(m, vm, j, id);
		return;
	}
	if (id != (json_int_t)vm->action_id || vm->action_id == 0)
		return;
	vm->action_id = 0;
	if (!json_is_true(json_object_get(j, "ok")))
		tui_vm_msg(m, "%s: %s: %s", vm->name, vm->action,
		    json_is_string(json_object_get(e, "message")) ?
		    json_string_value(json_object_get(e, "message")) :
		    "the VM refused");
	else if (strcmp(vm->action, "migrate-cancel") == 0)
		tui_vm_cancelled(m, vm);
	else
		tui_vm_msg(m, "%s: %s done", vm->name, vm->action);
}

/* Handle the complete lines in vm->buf. */
static void
tui_vm_lines(struct tui_model *m, struct tui_vm *vm)
{
	char *nl;
	json_t *j;

	while (vm->fd >= 0 && (nl = memchr(vm->buf, '\n', vm->len)) != NULL) {
		size_t n = (size_t)(nl - vm->buf);

		j = json_loadb(vm->buf, n, 0, NULL);
		memmove(vm->buf, nl + 1, vm->len - n - 1);
		vm->len -= n + 1;
		if (!json_is_object(j)) {
			json_decref(j);
			tui_vm_disconnect(vm);
			tui_vm_set_state(m, vm, TUI_VM_UNRESPONSIVE);
			return;
		}
		if (!vm->greeted && json_integer_value(json_object_get(
		    json_object_get(j, "termvisor"), "protocol")) !=
		    CONTROL_PROTOCOL) {
			json_decref(j);
			tui_vm_disconnect(vm);
			tui_vm_set_state(m, vm, TUI_VM_UNRESPONSIVE);
			tui_vm_msg(m, "%s: its control socket speaks another "
			    "protocol (a different termvisor version?)",
			    vm->name);
			return;
		}
		if (!vm->greeted) {
			vm->greeted = true;
			vm->spawned_ms = 0;
			tui_vm_set_state(m, vm, TUI_VM_RUNNING);
			vm->stats_id = tui_vm_send(vm, "stats", NULL);
			vm->stats_sent_ms = tui_vm_now_ms();
		} else {
			tui_vm_reply(m, vm, j);
		}
		json_decref(j);
	}
}

void
tui_vm_input(struct tui_model *m, struct tui_vm *vm)
{
	ssize_t n;

	if (vm->fd < 0)
		return;
	n = read(vm->fd, vm->buf + vm->len, TUI_VM_BUF - vm->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The VM went away: the next scan says what is left. */
		tui_vm_disconnect(vm);
		tui_vm_set_state(m, vm, TUI_VM_STOPPED);
		m->dirty = true;
		return;
	}
	vm->len += (size_t)n;
	tui_vm_lines(m, vm);
	if (vm->fd >= 0 && vm->len == TUI_VM_BUF) {
		tui_vm_disconnect(vm);	/* a line longer than we take */
		tui_vm_set_state(m, vm, TUI_VM_UNRESPONSIVE);
	}
}

void
tui_vm_command(struct tui_model *m, struct tui_vm *vm, const char *cmd,
    bool force)
{
	json_t *args = NULL;

	if (vm->fd < 0 || !vm->greeted) {
		tui_vm_msg(m, "%s is not running", vm->name);
		return;
	}
	if (strcmp(cmd, "stop") == 0)
		args = json_pack("{s:b}", "force", force);
	snprintf(vm->action, sizeof(vm->action), "%s%s", force ? "force " :
	    "", cmd);
	if ((vm->action_id = tui_vm_send(vm, cmd, args)) == 0)
		tui_vm_msg(m, "%s: cannot send %s (the VM is not reading)",
		    vm->name, cmd);
	else
		tui_vm_msg(m, "%s: %s...", vm->name, vm->action);
}

/* --- the datastore --- */

/* What the lock and the socket say about a VM we are not talking to. */
static void
tui_vm_probe(struct tui_model *m, struct tui_vm *vm)
{
	char dir[PATH_MAX];
	struct vmfs_lock_holder h;
	int r = -ENOENT;

	vm->locked = vm->lock_expired = false;
	if (vmfs_vm_dir(m->ds, vm->name, dir, sizeof(dir)) == 0 &&
	    vmfs_lock_query(dir, &h) > 0) {
		vm->locked = true;
		vm->lock_expired = h.expired;
	}
	/* Even unlocked: a socket left behind is reported as stale. */
	r = tui_vm_connect(vm);
	if (r == 0)
		return;	/* the greeting will say */
	if (r == -ECONNREFUSED || vm->lock_expired)
		tui_vm_set_state(m, vm, TUI_VM_STALE);
	else if (r == -EAGAIN)
		tui_vm_set_state(m, vm, TUI_VM_UNRESPONSIVE);
	else if (vm->spawned_ms != 0 &&
	    tui_vm_now_ms() - vm->spawned_ms < 10000)
		tui_vm_set_state(m, vm, TUI_VM_STARTING);
	else if (vm->locked)
		tui_vm_set_state(m, vm, TUI_VM_LOCKED);
	else
		tui_vm_set_state(m, vm, TUI_VM_STOPPED);
	if (vm->spawned_ms != 0 && tui_vm_now_ms() - vm->spawned_ms >= 10000)
		vm->spawned_ms = 0;
}

/* Ask a connected VM for its stats, or notice it stopped answering. */
static void
tui_vm_poll(struct tui_model *m, struct tui_vm *vm)
{
	long long now = tui_vm_now_ms();

	if (!vm->greeted) {
		if (now - vm->connected_ms > TUI_VM_TIMEOUT_MS)
			tui_vm_set_state(m, vm, TUI_VM_UNRESPONSIVE);
		return;
	}
	if (vm->stats_id != 0) {
		if (now - vm->stats_sent_ms > TUI_VM_TIMEOUT_MS)
			tui_vm_set_state(m, vm, TUI_VM_UNRESPONSIVE);
		return;
	}
	tui_vm_console_flush(vm);	/* typed bytes the guest refused */
	/* Its links: the guest, the CLI or we may have changed them. */
	for (int i = 0; i < vm->nnics; i++)
		if (vm->nics[i].link_id == 0)
			vm->nics[i].link_id = tui_vm_send(vm, "nic-link",
			    json_pack("{s:i}", "nic", i));
	vm->stats_id = tui_vm_send(vm, "stats", NULL);
	vm->stats_sent_ms = now;
	if (vm->stats_id == 0)
		tui_vm_set_state(m, vm, TUI_VM_UNRESPONSIVE);
}

static void
tui_vm_config(struct tui_model *m, struct tui_vm *vm, const struct stat *st)
{
	struct vm_config *c;

	if (st->st_mtim.tv_sec == vm->vmx_mtime.tv_sec &&
	    st->st_mtim.tv_nsec == vm->vmx_mtime.tv_nsec)
		return;
	vm->vmx_mtime = st->st_mtim;
	if ((c = malloc(sizeof(*c))) == NULL)
		return;
	vm->config_ok = vmfs_load_vm(m->ds, vm->name, c) == 0;
	if (vm->config_ok && vm->fd < 0) {
		vm->cpus = c->cpus;
		vm->memory = c->memory;
	}
	if (vm->config_ok) {
		vm->nnics = c->nnics < TUI_NICS ? c->nnics : TUI_NICS;
		for (int i = 0; i < vm->nnics; i++) {
			const struct vmcfg_nic *n = &c->nics[i];

			snprintf(vm->nics[i].portgroup,
			    sizeof(vm->nics[i].portgroup), "%s", n->portgroup);
			if (n->mac_set)
				snprintf(vm->nics[i].mac, sizeof(vm->nics[i].mac),
				    "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
				    n->mac[1], n->mac[2], n->mac[3], n->mac[4],
				    n->mac[5]);
			else
				vm->nics[i].mac[0] = '\0';
		}
	}
	free(c);
	m->dirty = true;
}

static int
tui_vm_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tui_vm *)a)->name,
	    ((const struct tui_vm *)b)->name);
}

static struct tui_vm *
tui_vm_find(struct tui_model *m, const char *name)
{
	for (int i = 0; i < m->nvms; i++)
		if (strcmp(m->vms[i].name, name) == 0)
			return &m->vms[i];
	return NULL;
}

static struct tui_vm *
tui_vm_add(struct tui_model *m, const char *name)
{
	struct tui_vm *n = realloc(m->vms, sizeof(*n) * (size_t)(m->nvms + 1));
	struct tui_vm *vm;

	if (n == NULL)
		return NULL;
	m->vms = n;
	vm = &m->vms[m->nvms++];
	memset(vm, 0, sizeof(*vm));
	/* vmfs_name_valid() bounds name to VMFS_NAME_MAX */
	memcpy(vm->name, name, strnlen(name, sizeof(vm->name) - 1));
	vm->fd = -1;
	vm->job_fd = -1;
	vm->cpu_time = vm->cpu_uptime = vm->cpu_pct = vm->uptime = -1;
	vm->exits = vm->exits_uptime = -1;
	vm->disk_rate = vm->net_rate = -1;
	for (int i = 0; i < TUI_NICS; i++)
		vm->nics[i].link = -1;
	m->dirty = true;
	return vm;
}

/* Drop the VMs the last scan did not see; keep the list sorted. */
static void
tui_vm_prune(struct tui_model *m)
{
	int i, j;

	for (i = j = 0; i < m->nvms; i++) {
		if (m->vms[i].seen) {
			m->vms[j++] = m->vms[i];
		} else {
			tui_vm_disconnect(&m->vms[i]);
			free(m->vms[i].buf);
			free(m->vms[i].console);
			free(m->vms[i].con_raw);
			if (m->vms[i].job_fd >= 0)
				close(m->vms[i].job_fd);
			m->dirty = true;
		}
	}
	m->nvms = j;
	if (m->nvms > 1)
		qsort(m->vms, (size_t)m->nvms, sizeof(*m->vms), tui_vm_cmp);
}

static void
tui_vm_scan(struct tui_model *m)
{
	char path[PATH_MAX + 140];
	struct tui_vm *vm;
	struct dirent *de;
	struct stat st;
	DIR *d;

	for (int i = 0; i < m->nvms; i++)
		m->vms[i].seen = false;
	if ((d = opendir(m->ds)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (vmfs_name_valid(de->d_name) != 0)
				continue;
			if (snprintf(path, sizeof(path), "%s/%s/%s.vmx", m->ds,
			    de->d_name, de->d_name) >= (int)sizeof(path) ||
			    stat(path, &st) < 0)
				continue;
			if ((vm = tui_vm_find(m, de->d_name)) == NULL &&
			    (vm = tui_vm_add(m, de->d_name)) == NULL)
				continue;
			vm->seen = true;
			tui_vm_config(m, vm, &st);
		}
		closedir(d);
	}
	tui_vm_prune(m);
}

void
tui_vm_tick(struct tui_model *m)
{
	tui_vm_scan(m);
	for (int i = 0; i < m->nvms; i++) {
		if (m->vms[i].fd < 0)
			tui_vm_probe(m, &m->vms[i]);
		else
			tui_vm_poll(m, &m->vms[i]);
	}
	tui_vm_reap_all(m);
}

/* The last line of path into buf ("" if none). */
static void
tui_vm_log_tail(const char *path, char *buf, size_t len)
{
	char tail[512], *nl;
	ssize_t n = 0;
	int fd;

	buf[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	if (end >= 0 && lseek(fd, end > (off_t)sizeof(tail) - 1 ?
	    end - (off_t)sizeof(tail) + 1 : 0, SEEK_SET) >= 0)
		n = read(fd, tail, sizeof(tail) - 1);
	close(fd);
	if (n <= 0)
		return;
	tail[n] = '\0';
	while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == '\r'))
		tail[--n] = '\0';
	nl = strrchr(tail, '\n');
	nl = nl != NULL ? nl + 1 : tail;
	n = (ssize_t)strnlen(nl, len - 1);
	memcpy(buf, nl, (size_t)n);
	buf[n] = '\0';
}

/* A VM we spawned exited: say why, from its log. */
static void
tui_vm_reap(struct tui_model *m, struct tui_vm *vm)
{
	char dir[PATH_MAX], log[PATH_MAX + 80], last[200];
	int status;

	if (vm->pid <= 0 || waitpid(vm->pid, &status, WNOHANG) != vm->pid)
		return;
	vm->pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	if (vmfs_vm_dir(m->ds, vm->name, dir, sizeof(dir)) < 0)
		return;
	snprintf(log, sizeof(log), "%s/%s.log", dir, vm->name);
	tui_vm_log_tail(log, last, sizeof(last));
	vm->spawned_ms = 0;
	tui_vm_msg(m, "%s exited (%s %d): %s", vm->name, WIFEXITED(status) ?
	    "status" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) :
	    WTERMSIG(status), last[0] ? last : "see its log");
}

/* A snapshot or migration we spawned exited: its outcome. */
static void
tui_vm_job_reap(struct tui_model *m, struct tui_vm *vm)
{
	char path[64], last[200];
	int status;

	if (vm->job_pid > 0 && vm->job_kill_ms != 0 &&
	    tui_vm_now_ms() >= vm->job_kill_ms) {
		kill(vm->job_pid, SIGTERM);	/* our own child */
		vm->job_kill_ms = 0;
	}
	if (vm->job_pid <= 0 || waitpid(vm->job_pid, &status, WNOHANG) !=
	    vm->job_pid)
		return;
	vm->job_pid = 0;
	vm->job_kill_ms = 0;
	if (vm->job_cancelled) {
		vm->job_cancelled = false;
		close(vm->job_fd);
		vm->job_fd = -1;
		tui_vm_msg(m, "%s: %s: cancelled; the VM runs here", vm->name,
		    vm->job);
		return;
	}
	/* Its output is an unlinked file: read it through /proc. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", vm->job_fd);
	tui_vm_log_tail(path, last, sizeof(last));
	close(vm->job_fd);
	vm->job_fd = -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		tui_vm_msg(m, "%s: %s: done", vm->name, vm->job);
	else
		tui_vm_msg(m, "%s: %s failed: %s", vm->name, vm->job,
		    last[0] ? last : WIFEXITED(status) ? "no reason given" :
		    "killed");
}

void
tui_vm_reap_all(struct tui_model *m)
{
	for (int i = 0; i < m->nvms; i++) {
		tui_vm_reap(m, &m->vms[i]);
		tui_vm_job_reap(m, &m->vms[i]);
	}
}

void
tui_vm_job(struct tui_model *m, struct tui_vm *vm, const char *what,
    const char *const *argv)
{
	tui_vm_job_fd(m, vm, what, argv, -1);
}

void
tui_vm_job_fd(struct tui_model *m, struct tui_vm *vm, const char *what,
    const char *const *argv, int pass)
{
	pid_t pid;
	int fd, nul;

	if (vm->job_pid > 0) {
		tui_vm_msg(m, "%s: %s is still running", vm->name, vm->job);
		goto out;
	}
	/* Output we read once it ends, and never leave behind. */
	if ((fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) < 0) {
		tui_vm_msg(m, "%s: %s: cannot make its output file: %s",
		    vm->name, what, strerror(errno));
		goto out;
	}
	if ((pid = fork()) < 0) {
		tui_vm_msg(m, "%s: %s: cannot start: %s", vm->name, what,
		    strerror(errno));
		close(fd);
		goto out;
	}
	if (pid == 0) {
		/* Its own session: quitting the dashboard or losing the
		 * terminal does not cut a migration in half. */
		setsid();
		if ((nul = open("/dev/null", O_RDONLY)) >= 0)
			dup2(nul, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		/* The secret's pipe as fd 3, without close-on-exec (dup2
		 * onto itself would keep that flag). */
		if (pass >= 0 && pass != 3)
			dup2(pass, 3);
		else if (pass == 3)
			fcntl(3, F_SETFD, 0);
		close_range(pass >= 0 ? 4 : 3, ~0u, 0);
		setenv("TERMVISOR_DATASTORE", m->ds, 1);
		execv("/proc/self/exe", (char *const *)argv);
		_exit(127);
	}
	vm->job_pid = pid;
	vm->job_fd = fd;
	snprintf(vm->job, sizeof(vm->job), "%s", what);
	tui_vm_msg(m, "%s: %s...", vm->name, what);
out:
	if (pass >= 0)
		close(pass);
}

void
tui_vm_nic_link(struct tui_model *m, struct tui_vm *vm, int nic, bool up)
{
	if (vm->fd < 0 || !vm->greeted) {
		tui_vm_msg(m, "%s is not running", vm->name);
		return;
	}
	if (nic < 0 || nic >= vm->nnics) {
		tui_vm_msg(m, "%s has no nic%d", vm->name, nic);
		return;
	}
	/* A query of this NIC may be pending: its reply is dropped with
	 * the new id, and this one's says the new state. */
	snprintf(vm->action, sizeof(vm->action), "nic%d link", nic & 7);
	vm->nics[nic].link_id = tui_vm_send(vm, "nic-link", json_pack(
	    "{s:i, s:b}", "nic", nic, "up", up));
	vm->action_id = vm->nics[nic].link_id;
	if (vm->action_id == 0)
		tui_vm_msg(m, "%s: cannot send nic-link (the VM is not "
		    "reading)", vm->name);
	else
		tui_vm_msg(m, "%s: nic%d link %s...", vm->name, nic, up ?
		    "up" : "down");
}

void
tui_vm_start(struct tui_model *m, struct tui_vm *vm)
{
	char log[PATH_MAX + 80];
	pid_t pid;

	if (vm->fd >= 0 || (vm->locked && vm->state != TUI_VM_STALE) ||
	    vm->pid > 0) {
		tui_vm_msg(m, "%s is already %s", vm->name,
		    tui_vm_state_name(vm->state));
		return;
	}
	if ((pid = control_client_spawn(m->ds, vm->name, log,
	    sizeof(log))) < 0) {
		tui_vm_msg(m, "%s: cannot start: %s", vm->name,
		    strerror(-pid));
		return;
	}
	vm->pid = pid;
	vm->spawned_ms = tui_vm_now_ms();
	tui_vm_set_state(m, vm, TUI_VM_STARTING);
	tui_vm_msg(m, "%s: starting (log %s)", vm->name, log);
}

void
tui_vm_free(struct tui_model *m)
{
	for (int i = 0; i < m->nvms; i++) {
		tui_vm_disconnect(&m->vms[i]);
		free(m->vms[i].buf);
		free(m->vms[i].console);
		free(m->vms[i].con_raw);
		if (m->vms[i].job_fd >= 0)
			close(m->vms[i].job_fd);
	}
	free(m->vms);
	m->vms = NULL;
	m->nvms = 0;
}
