/*
 * Control requests: parse one JSON line, check it, run the command on the
 * VM and build the reply.  Kept apart from the socket code so the unit
 * tests and the fuzz target drive it with no socket and no guest.
 *
 * Every path returns a reply object: a client learns what was wrong from
 * the "error" member ("parse-error", "invalid-request", "unknown-command",
 * "bad-argument", "wrong-state", "unsupported", "internal").
 */
#include "control/control.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/acpi_pm.h"
#include "devices/device.h"
#include "devices/display.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "hv/console.h"
#include "hv/exit.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/migrate.h"
#include "migrate/snapshot.h"
#include "util/log.h"

/* Largest console-history a client may ask for (the ring is 64 KiB). */
#define CONTROL_HISTORY_MAX	(64 * 1024)

/* A failing command: the error code and message for the reply. */
struct control_err {
	const char *code;
	char msg[256];
};

typedef json_t *control_cmd_fn(struct control *, json_t *args,
    struct control_err *);

static json_t *
control_cmd_fail(struct control_err *e, const char *code, const char *msg)
{
	e->code = code;
	snprintf(e->msg, sizeof(e->msg), "%s", msg);
	return NULL;
}

/* The command needs the VM in state want; say which state it is in. */
static json_t *
control_cmd_wrong_state(struct control *c, struct control_err *e,
    const char *want)
{
	e->code = "wrong-state";
	snprintf(e->msg, sizeof(e->msg), "the VM is %s, not %s",
	    control_state(c), want);
	return NULL;
}

static const char *const control_exit_names[VM_EXIT_KINDS] = {
	[VM_EXIT_NONE] = "none", [VM_EXIT_PIO] = "pio",
	[VM_EXIT_MMIO] = "mmio", [VM_EXIT_HLT] = "hlt",
	[VM_EXIT_SHUTDOWN] = "shutdown", [VM_EXIT_INTR] = "intr",
	[VM_EXIT_SYSTEM_EVENT] = "system-event",
	[VM_EXIT_INTERNAL_ERROR] = "internal-error",
};

static double
control_cmd_uptime(const struct control *c)
{
	return (double)(vclock_ns() - c->start_ns) / 1e9;
}

static json_t *
control_cmd_status(struct control *c, json_t *args, struct control_err *e)
{
	struct vm *vm = c->vm;

	return json_pack("{s:s, s:s, s:i, s:I, s:s, s:f, s:s?}",
	    "name", c->name, "state", control_state(c),
	    "vcpus", vm->nvcpus, "memory", (json_int_t)vm->ram_size,
	    "accel", vm->accel != NULL ? vm->accel->name : "none",
	    "uptime", control_cmd_uptime(c),
	    "vnc_addr", c->vnc_addr[0] ? c->vnc_addr : NULL);
}

/* {"nic": N, "up": BOOL}: set NIC N's link up or down as the guest sees
 * it (without "up", only report); replies with the link state. */
static json_t *
control_cmd_nic_link(struct control *c, json_t *args, struct control_err *e)
{
	json_t *n = json_object_get(args, "nic"), *up = json_object_get(args,
	    "up");
	int nic, r;

	if (!json_is_integer(n) || json_integer_value(n) < 0 ||
	    json_integer_value(n) >= VMCFG_MAX_NICS ||
	    (up != NULL && !json_is_boolean(up)))
		return control_cmd_fail(e, "bad-argument", "expected "
		    "{\"nic\": N, \"up\": true|false}");
	nic = (int)json_integer_value(n);
	if (up != NULL && virtio_net_set_link(c->vm, nic, json_is_true(up)) <
	    0)
		return control_cmd_fail(e, "bad-argument", "the VM has no "
		    "such NIC");
	if ((r = virtio_net_link(c->vm, nic)) < 0)
		return control_cmd_fail(e, "bad-argument", "the VM has no "
		    "such NIC");
	return json_pack("{s:i, s:b}", "nic", nic, "link", r);
}

/* CPU time a vCPU thread has used, in seconds, or -1 if unknown. */
static double
control_cmd_cpu_time(const struct control *c, const struct vcpu *v)
{
	struct timespec ts;
	clockid_t cid;

	/* Before vm_run there is no thread, and glibc's pthread_t is a
	 * pointer it would follow. */
	if (!c->live || pthread_getcpuclockid(v->thread, &cid) != 0 ||
	    clock_gettime(cid, &ts) != 0)
		return -1;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *
control_cmd_vcpu_stats(struct control *c, struct vcpu *v)
{
	json_t *exits = json_object(), *o;
	uint64_t total = 0;

	for (int k = 0; k < VM_EXIT_KINDS; k++) {
		/* Counters are bumped by the vCPU thread without a lock: a
		 * relaxed, possibly slightly stale read is what stats want. */
		uint64_t n = __atomic_load_n(&v->exits[k], __ATOMIC_RELAXED);

		total += n;
		json_object_set_new(exits, control_exit_names[k],
		    json_integer((json_int_t)n));
	}
	o = json_pack("{s:i, s:o, s:I, s:I, s:I, s:I}", "id", v->id,
	    "exits", exits, "exits_total", (json_int_t)total,
	    "pio_exits", (json_int_t)__atomic_load_n(&v->pio_exits,
	    __ATOMIC_RELAXED),
	    "mmio_exits", (json_int_t)__atomic_load_n(&v->mmio_exits,
	    __ATOMIC_RELAXED),
	    "assists", (json_int_t)__atomic_load_n(&v->assists,
	    __ATOMIC_RELAXED));
	if (o != NULL && control_cmd_cpu_time(c, v) >= 0)
		json_object_set_new(o, "cpu_time",
		    json_real(control_cmd_cpu_time(c, v)));
	return o;
}

/* Disks' and NICs' counters: [{"name", "kind", "rx_bytes", ...}]. */
static json_t *
control_cmd_device_stats(struct vm *vm)
{
	json_t *a = json_array();

	for (int i = 0; i < vm->ndevices; i++) {
		struct device_stats st = { 0 };

		if (vm->devices[i].ops->stats == NULL)
			continue;
		vm->devices[i].ops->stats(vm->devices[i].state, &st);
		json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I, s:I, "
		    "s:I, s:I}", "name", vm->devices[i].name, "kind",
		    st.kind != NULL ? st.kind : "other",
		    "rx_bytes", (json_int_t)st.rx_bytes,
		    "tx_bytes", (json_int_t)st.tx_bytes,
		    "rx_ops", (json_int_t)st.rx_ops,
		    "tx_ops", (json_int_t)st.tx_ops,
		    "errors", (json_int_t)st.errors));
	}
	return a;
}

static json_t *
control_cmd_stats(struct control *c, json_t *args, struct control_err *e)
{
	json_t *vcpus = json_array(), *r;

	for (int i = 0; i < c->vm->nvcpus; i++)
		json_array_append_new(vcpus,
		    control_cmd_vcpu_stats(c, c->vm->vcpus[i]));
	r = json_pack("{s:s, s:s, s:I, s:f, s:o, s:o, s:s?}", "name", c->name,
	    "state", control_state(c),
	    "memory", (json_int_t)c->vm->ram_size,
	    "uptime", control_cmd_uptime(c), "vcpus", vcpus,
	    "devices", control_cmd_device_stats(c->vm),
	    "vnc_addr", c->vnc_addr[0] ? c->vnc_addr : NULL);
	return r;
}

/* Park every vCPU and wait until each is out of the accelerator. */
static int
control_cmd_do_pause(struct vm *vm)
{
	return vm_pause(vm, 5000);
}

/*
 * Let a paused VM run again.  A migration source that sent COMMIT and
 * lost its destination stays paused without its disks' image locks (the
 * destination may run the guest on the same images): before it runs
 * here, it takes them back, and it stays paused if another process
 * holds them.  (A VM that kept its locks gets them as they are.)
 */
static int
control_cmd_do_resume(struct vm *vm, struct control_err *e)
{
	char err[512];

	if (virtio_blk_activate(vm, false, err, sizeof(err)) < 0) {
		e->code = "disks-busy";
		snprintf(e->msg, sizeof(e->msg), "the VM stays paused: its "
		    "disks are in use elsewhere (a migration's destination "
		    "may run it): %.100s", err);
		return -EBUSY;
	}
	vm_resume(vm);
	return 0;
}

static json_t *
control_cmd_pause(struct control *c, json_t *args, struct control_err *e)
{
	if (c->vm->state != VM_RUNNING)
		return control_cmd_wrong_state(c, e, "running");
	if (control_cmd_do_pause(c->vm) < 0)
		return control_cmd_fail(e, "timeout", "a vCPU did not stop "
		    "within 5 s; the VM goes on running");
	control_event_state(c);
	return json_pack("{s:s}", "state", "paused");
}

static json_t *
control_cmd_resume(struct control *c, json_t *args, struct control_err *e)
{
	if (c->vm->state != VM_PAUSED)
		return control_cmd_wrong_state(c, e, "paused");
	if (control_cmd_do_resume(c->vm, e) < 0)
		return NULL;
	c->panicked = false;	/* the operator lets it go on */
	control_event_state(c);
	return json_pack("{s:s}", "state", "running");
}

void
control_cmd_stop_timeout(void *opaque)
{
	struct control *c = opaque;

	log_warnx("%s: the guest did not power off in time: forcing it off",
	    c->name);
	vm_request_exit(c->vm, VM_EVENT_POWEROFF, 0);
}

/* "timeout" argument: whole seconds, 1 to a day; 0 or -errno. */
static int
control_cmd_timeout(json_t *args, long *out)
{
	json_t *t = json_object_get(args, "timeout");
	double v;

	*out = CONTROL_STOP_TIMEOUT;
	if (t == NULL)
		return 0;
	if (!json_is_number(t))
		return -EINVAL;
	v = json_number_value(t);
	if (!(v >= 1 && v <= 86400))
		return -ERANGE;
	*out = (long)v;
	return 0;
}

static json_t *
control_cmd_stop(struct control *c, json_t *args, struct control_err *e)
{
	json_t *force = json_object_get(args, "force");
	struct acpi_pm *pm;
	uint64_t deadline;
	long timeout;

	if (force != NULL && !json_is_boolean(force))
		return control_cmd_fail(e, "bad-argument",
		    "\"force\" must be true or false");
	if (control_cmd_timeout(args, &timeout) < 0)
		return control_cmd_fail(e, "bad-argument",
		    "\"timeout\" must be a number of seconds from 1 to 86400");
	if (json_is_true(force)) {
		vm_request_exit(c->vm, VM_EVENT_POWEROFF, 0);
		return json_pack("{s:b}", "forced", 1);
	}
	if ((pm = acpi_pm_find(c->vm)) == NULL)
		return control_cmd_fail(e, "unsupported", "the VM has no ACPI "
		    "power button: stop it with \"force\": true");
	/* A parked guest cannot see the button. */
	if (c->vm->state == VM_PAUSED) {
		if (control_cmd_do_resume(c->vm, e) < 0)
			return NULL;
		c->panicked = false;
	}
	acpi_pm_power_button(pm);
	c->vm->state = VM_STOPPING;
	/* Asking again presses again, but never postpones the deadline a
	 * client already set. */
	deadline = vclock_ns() + (uint64_t)timeout * 1000000000ull;
	if (!vtimer_armed(&c->stop_timer) ||
	    deadline < c->stop_timer.deadline)
		vtimer_arm(&c->stop_timer, deadline);
	control_event_state(c);
	return json_pack("{s:b, s:i}", "forced", 0, "timeout", (int)timeout);
}

static json_t *
control_cmd_reset(struct control *c, json_t *args, struct control_err *e)
{
	/* run.c builds the VM again (or exits with --no-reboot); the
	 * server survives it (control_reset): clients get a "reset"
	 * event and stay connected. */
	vm_request_exit(c->vm, VM_EVENT_RESET, 0);
	return json_object();
}

/* Write the display's current picture as a PNG file (absolute path:
 * the VM's working directory is not the client's). */
static json_t *
control_cmd_screenshot(struct control *c, json_t *args,
    struct control_err *e)
{
	const char *file = json_string_value(json_object_get(args, "file"));
	struct display *d = display_find(c->vm);
	struct display_surface s;
	int r;

	if (file == NULL || file[0] != '/')
		return control_cmd_fail(e, "bad-argument", "\"file\" must "
		    "be an absolute path");
	if (d == NULL)
		return control_cmd_fail(e, "unsupported",
		    "the VM has no display");
	display_get_surface_locked(d, &s);
	if ((r = display_screenshot_png(d, file)) < 0) {
		snprintf(e->msg, sizeof(e->msg), "cannot write %.160s: %s", file,
		    strerror(-r));
		e->code = "internal";
		return NULL;
	}
	return json_pack("{s:s, s:i, s:i, s:b}", "file", file, "width",
	    (int)s.width, "height", (int)s.height, "text_mode", s.text_mode);
}

/* Live migration (src/migrate/migrate_src.c): starts it and returns;
 * progress and the outcome are "migration"/"migrated" events. */
static json_t *
control_cmd_migrate(struct control *c, json_t *args, struct control_err *e)
{
	struct migrate_params p;

	if (migrate_params_parse(args, &p, e->msg, sizeof(e->msg)) < 0) {
		e->code = "bad-argument";
		return NULL;
	}
	if (migrate_source_start(c->vm, c, &p, e->msg, sizeof(e->msg)) < 0) {
		e->code = "wrong-state";
		return NULL;
	}
	return json_pack("{s:s}", "status", "active");
}

static json_t *
control_cmd_migrate_cancel(struct control *c, json_t *args,
    struct control_err *e)
{
	int r = migrate_source_cancel(c->vm);

	if (r == -ENOENT)
		return control_cmd_fail(e, "wrong-state", "no migration is "
		    "running");
	if (r < 0)
		return control_cmd_fail(e, "wrong-state", "too late: the "
		    "destination may already run the VM");
	return json_object();
}

static json_t *
control_cmd_console_history(struct control *c, json_t *args,
    struct control_err *e)
{
	json_t *b = json_object_get(args, "bytes"), *r;
	json_int_t want = CONTROL_HISTORY_MAX;
	uint8_t *buf;
	size_t n;

	if (b != NULL && (!json_is_integer(b) || json_integer_value(b) < 0 ||
	    json_integer_value(b) > CONTROL_HISTORY_MAX))
		return control_cmd_fail(e, "bad-argument",
		    "\"bytes\" must be an integer from 0 to 65536");
	if (b != NULL)
		want = json_integer_value(b);
	if (c->vm->console == NULL)
		return control_cmd_fail(e, "unsupported",
		    "the VM has no serial console");
	if ((buf = malloc(want + 1)) == NULL)
		return control_cmd_fail(e, "internal", "out of memory");
	n = control_console_history(c, buf, (size_t)want);
	/* A JSON string must be UTF-8; guest output is bytes (and the ring
	 * may start mid-character): when it is not valid UTF-8, what is not
	 * ASCII becomes '?' rather than the client getting nothing. */
	r = json_pack("{s:s%}", "data", (const char *)buf, n);
	if (r == NULL) {
		for (size_t i = 0; i < n; i++)
			buf[i] = buf[i] >= 0x80 ? '?' : buf[i];
		r = json_pack("{s:s%}", "data", (const char *)buf, n);
	}
	free(buf);
	return r;
}

static json_t *
control_cmd_console_attach(struct control *c, json_t *args,
    struct control_err *e)
{
	if (c->vm->console == NULL)
		return control_cmd_fail(e, "unsupported",
		    "the VM has no serial console");
	if (control_console_attach(c, c->cur) < 0)
		return control_cmd_fail(e, "unsupported",
		    "console-attach needs a connection to stream to");
	return json_object();
}

static json_t *
control_cmd_console_detach(struct control *c, json_t *args,
    struct control_err *e)
{
	if (control_console_detach(c, c->cur) < 0)
		return control_cmd_fail(e, "unsupported",
		    "console-detach needs a connection");
	return json_object();
}

static json_t *
control_cmd_console_input(struct control *c, json_t *args,
    struct control_err *e)
{
	json_t *d = json_object_get(args, "data");
	uint8_t buf[CONTROL_LINE_MAX];
	long n;

	if (!json_is_string(d) || (n = control_json_bytes(d, buf,
	    sizeof(buf))) < 0)
		return control_cmd_fail(e, "bad-argument", "\"data\" must be "
		    "a string of characters U+0000 to U+00FF, one per byte");
	if (c->vm->console == NULL)
		return control_cmd_fail(e, "unsupported",
		    "the VM has no serial console");
	/* The console queues what the UART cannot take yet, bounded: the
	 * client sends the rest again. */
	return json_pack("{s:I}", "written", (json_int_t)console_input(
	    c->vm->console, buf, (size_t)n));
}

/* Write a snapshot file of the running (or paused) VM, its disks
 * switching to the overlays given: the guest is stopped only while its
 * state is saved and its RAM forked off. */
static json_t *
control_cmd_snapshot_take(struct control *c, json_t *args,
    struct control_err *e)
{
	const char *file = json_string_value(json_object_get(args, "file"));
	const char *name = json_string_value(json_object_get(args, "name"));
	json_t *disks = json_object_get(args, "disks"), *d;
	const char *over[VMCFG_MAX_DISKS];
	uint64_t paused = 0;
	size_t i;

	if (file == NULL || file[0] != '/')
		return control_cmd_fail(e, "bad-argument", "\"file\" must "
		    "be an absolute path");
	if (disks != NULL && (!json_is_array(disks) ||
	    json_array_size(disks) > VMCFG_MAX_DISKS))
		return control_cmd_fail(e, "bad-argument", "\"disks\" must "
		    "be an array of overlay paths, one per disk");
	json_array_foreach(disks, i, d)
		if ((over[i] = json_string_value(d)) == NULL ||
		    over[i][0] != '/')
			return control_cmd_fail(e, "bad-argument", "\"disks\" "
			    "must hold absolute paths");
	if (c->vm->state != VM_RUNNING && c->vm->state != VM_PAUSED)
		return control_cmd_wrong_state(c, e, "running");
	if (snapshot_take_running(c->vm, file, name ? name : "", over,
	    (int)json_array_size(disks), &paused, e->msg,
	    sizeof(e->msg)) < 0) {
		e->code = "internal";
		return NULL;
	}
	return json_pack("{s:s, s:f}", "file", file, "paused_ms",
	    (double)paused / 1e6);
}

static const struct {
	const char *name;
	control_cmd_fn *fn;
} control_cmds[] = {
	{ "snapshot-take", control_cmd_snapshot_take },
	{ "status", control_cmd_status },
	{ "stats", control_cmd_stats },
	{ "nic-link", control_cmd_nic_link },
	{ "pause", control_cmd_pause },
	{ "resume", control_cmd_resume },
	{ "stop", control_cmd_stop },
	{ "reset", control_cmd_reset },
	{ "migrate", control_cmd_migrate },
	{ "migrate-cancel", control_cmd_migrate_cancel },
	{ "screenshot", control_cmd_screenshot },
	{ "console-history", control_cmd_console_history },
	{ "console-attach", control_cmd_console_attach },
	{ "console-input", control_cmd_console_input },
	{ "console-detach", control_cmd_console_detach },
};

static json_t *
control_cmd_error(json_t *id, const char *code, const char *msg)
{
	return json_pack("{s:O, s:b, s:{s:s, s:s}}", "id", id ? id : json_null(),
	    "ok", 0, "error", "code", code, "message", msg);
}

/* Check a parsed request and run it; the reply. */
static json_t *
control_cmd_dispatch(struct control *c, json_t *req)
{
	json_t *id = json_object_get(req, "id"), *cmd, *args, *res;
	struct control_err e = { "internal", "the command failed" };

	cmd = json_object_get(req, "cmd");
	args = json_object_get(req, "args");
	if (!json_is_string(cmd))
		return control_cmd_error(id, "invalid-request",
		    "a request needs \"cmd\", a string");
	if (args != NULL && !json_is_object(args) && !json_is_null(args))
		return control_cmd_error(id, "invalid-request",
		    "\"args\" must be an object");
	for (size_t i = 0; i < sizeof(control_cmds) / sizeof(*control_cmds);
	    i++) {
		if (strcmp(json_string_value(cmd), control_cmds[i].name) != 0)
			continue;
		res = control_cmds[i].fn(c, args, &e);
		if (res == NULL)
			return control_cmd_error(id, e.code, e.msg);
		return json_pack("{s:O, s:b, s:o}", "id", id ? id : json_null(),
		    "ok", 1, "result", res);
	}
	return control_cmd_error(id, "unknown-command",
	    "unknown command (status, stats, pause, resume, stop, reset, "
	    "console-history, console-attach, console-detach, "
	    "console-input)");
}

json_t *
control_cmd_request(struct control *c, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req, *reply;
	char msg[256];

	/* Exactly one value, no NUL bytes smuggled in the middle. */
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES |
	    JSON_DECODE_ANY, &jerr);
	if (req == NULL) {
		snprintf(msg, sizeof(msg), "not JSON: %s (column %d)",
		    jerr.text, jerr.column);
		/* jansson quotes the input near the error, which may cut a
		 * UTF-8 sequence (or not be UTF-8): a reply string must be. */
		for (char *p = msg; *p != '\0'; p++)
			if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
				*p = '?';
		return control_cmd_error(NULL, "parse-error", msg);
	}
	if (!json_is_object(req))
		reply = control_cmd_error(NULL, "invalid-request",
		    "a request is a JSON object");
	else
		reply = control_cmd_dispatch(c, req);
	json_decref(req);
	return reply;
}
