/*
 * pvpanic through the port the guest uses: what it reads, what each write
 * does under each on_panic action, garbage, snapshots; then on a whole
 * VM, the control socket's guest-panic event and the "panicked" state.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fake_vm.h"
#include "null_accel.h"
#include "control/control.h"
#include "control/control_client.h"
#include "devices/debug_exit.h"
#include "devices/pvpanic.h"
#include "hv/exit.h"
#include "migrate/snap.h"
#include "run.h"

/* What the listener heard, and whether the VM had been asked to end
 * when it heard it. */
static struct {
	int n;
	struct pvpanic_report r[8];
	int exit_request[8];
} heard;
static struct vm *vm;

static void
listener(void *opaque, const struct pvpanic_report *r)
{
	struct vm *v = opaque;

	if (heard.n < 8) {
		heard.r[heard.n] = *r;
		heard.exit_request[heard.n] = atomic_load(&v->exit_request);
	}
	heard.n++;
}

/* A fake VM with only the pvpanic device, on_panic action. */
static struct vm *
new_vm(const char *action)
{
	struct vm *v = fake_vm_new(1 << 20);

	snprintf(fake_cfg.on_panic, sizeof(fake_cfg.on_panic), "%s", action);
	cr_assert_eq(pvpanic_ops.create(v), 0);
	pvpanic_set_listener(pvpanic_find(v), listener, v);
	v->state = VM_RUNNING;
	return v;
}

/* The event thread's turn: what is due runs, device lock held. */
static void
event_thread_pass(struct vm *v)
{
	pthread_mutex_lock(&v->devlock);
	evloop_run_timers(v->loop);
	pthread_mutex_unlock(&v->devlock);
}

static void
setup(void)
{
	vclock_set_fake(true, 1000000000ull);
	memset(&heard, 0, sizeof(heard));
	vm = NULL;
}

static void
teardown(void)
{
	if (vm != NULL)
		fake_vm_free(vm);
	vclock_set_fake(false, 0);
}

TestSuite(pvpanic, .init = setup, .fini = teardown, .timeout = 10);

Test(pvpanic, reads_the_events_it_supports)
{
	vm = new_vm("pause");
	cr_assert_eq(fake_in(vm, PVPANIC_PORT, 1), 0x03);
	/* One port: the byte above it is nobody's. */
	cr_assert_eq(fake_in(vm, PVPANIC_PORT, 2), 0xff03);
	cr_assert_eq(fake_in(vm, PVPANIC_PORT + 1, 1), 0xff);
	cr_assert_eq(heard.n, 0, "reading reports nothing");
}

Test(pvpanic, a_panic_pauses_the_vm_by_default)
{
	vm = new_vm("pause");
	fake_out(vm, PVPANIC_PORT, 1, PVPANIC_PANICKED);
	/* Not on the writer's vCPU thread: it could not wait for itself. */
	cr_assert_eq(heard.n, 0);
	cr_assert_eq(vm->state, VM_RUNNING);
	event_thread_pass(vm);
	cr_assert_eq(heard.n, 1);
	cr_assert_eq(heard.r[0].event, PVPANIC_PANICKED);
	cr_assert_eq(heard.r[0].action, PVPANIC_PAUSE);
	cr_assert(heard.r[0].paused);
	cr_assert_eq(vm->state, VM_PAUSED);
	cr_assert_eq(atomic_load(&vm->exit_request), 0);
}

Test(pvpanic, stop_powers_off_with_status_1_after_the_report)
{
	vm = new_vm("stop");
	fake_out(vm, PVPANIC_PORT, 1, PVPANIC_PANICKED);
	event_thread_pass(vm);
	cr_assert_eq(heard.n, 1);
	cr_assert_eq(heard.r[0].action, PVPANIC_STOP);
	cr_assert_not(heard.r[0].paused);
	cr_assert_eq(heard.exit_request[0], 0, "reported before the stop");
	cr_assert_eq(atomic_load(&vm->exit_request), VM_EVENT_POWEROFF);
	cr_assert_eq(vm->exit_status, PVPANIC_STOP_STATUS);
	cr_assert_eq(vm->state, VM_RUNNING);
}

Test(pvpanic, reset_reboots)
{
	vm = new_vm("reset");
	fake_out(vm, PVPANIC_PORT, 1, PVPANIC_PANICKED);
	event_thread_pass(vm);
	cr_assert_eq(heard.n, 1);
	cr_assert_eq(heard.r[0].action, PVPANIC_RESET);
	cr_assert_eq(heard.exit_request[0], 0, "reported before the reset");
	cr_assert_eq(atomic_load(&vm->exit_request), VM_EVENT_RESET);
}

Test(pvpanic, none_only_reports)
{
	vm = new_vm("none");
	fake_out(vm, PVPANIC_PORT, 1, PVPANIC_PANICKED);
	event_thread_pass(vm);
	cr_assert_eq(heard.n, 1);
	cr_assert_eq(heard.r[0].action, PVPANIC_NONE);
	cr_assert_eq(vm->state, VM_RUNNING);
	cr_assert_eq(atomic_load(&vm->exit_request), 0);
}

Test(pvpanic, crash_loaded_is_reported_and_left_to_kdump)
{
	vm = new_vm("reset");
	fake_out(vm, PVPANIC_PORT, 1, PVPANIC_CRASH_LOADED);
	event_thread_pass(vm);
	cr_assert_eq(heard.n, 1);
	cr_assert_eq(heard.r[0].event, PVPANIC_CRASH_LOADED);
	cr_assert_eq(heard.r[0].action, PVPANIC_NONE);
	cr_assert_eq(atomic_load(&vm->exit_request), 0, "the dump goes on");
	/* The crash kernel panicking too is a panic like any other. */
	fake_out(vm, PVPANIC_PORT, 1, PVPANIC_PANICKED);
	event_thread_pass(vm);
	cr_assert_eq(heard.n, 2);
	cr_assert_eq(heard.r[1].event, PVPANIC_PANICKED);
	cr_assert_eq(atomic_load(&vm->exit_request), VM_EVENT_RESET);
}

Test(pvpanic, garbage_bits_are_ignored_defined_ones_count)
{
	vm = new_vm("none");
	fake_out(vm, PVPANIC_PORT, 1, 0xfc);
	fake_out(vm, PVPANIC_PORT, 1, 0x00);
	fake_out(vm, PVPANIC_PORT + 1, 1, 0x01);	/* not our port */
	/* A wide write: only its first byte is the port's. */
	fake_out(vm, PVPANIC_PORT, 2, 0x0100);
	event_thread_pass(vm);
	cr_assert_eq(heard.n, 0, "no event in any of those");
	fake_out(vm, PVPANIC_PORT, 1, 0x81);
	event_thread_pass(vm);
	cr_assert_eq(heard.n, 1);
	cr_assert_eq(heard.r[0].event, PVPANIC_PANICKED);
}

Test(pvpanic, each_event_once_per_boot)
{
	struct pvpanic *p;

	vm = new_vm("none");
	p = pvpanic_find(vm);
	for (int i = 0; i < 100; i++)
		fake_out(vm, PVPANIC_PORT, 1, PVPANIC_PANICKED);
	event_thread_pass(vm);
	fake_out(vm, PVPANIC_PORT, 1, PVPANIC_PANICKED);
	event_thread_pass(vm);
	cr_assert_eq(heard.n, 1, "a guest writing in a loop floods nobody");
	/* Both bits in one write: the kdump note, then the panic. */
	fake_out(vm, PVPANIC_PORT, 1, PVPANIC_EVENTS);
	event_thread_pass(vm);
	cr_assert_eq(heard.n, 2);
	cr_assert_eq(heard.r[1].event, PVPANIC_CRASH_LOADED);
	pvpanic_ops.reset(p);
	fake_out(vm, PVPANIC_PORT, 1, PVPANIC_PANICKED);
	event_thread_pass(vm);
	cr_assert_eq(heard.n, 3, "a new boot reports again");
}

Test(pvpanic, a_taken_port_is_refused_not_shared)
{
	vm = fake_vm_new(1 << 20);
	fake_cfg.debug_exit = true;
	fake_cfg.debug_exit_port = PVPANIC_PORT;
	cr_assert_eq(debug_exit_ops.create(vm), 0);
	cr_assert_eq(pvpanic_ops.create(vm), -EEXIST);
	cr_assert_null(pvpanic_find(vm));
	fake_out(vm, PVPANIC_PORT, 1, PVPANIC_PANICKED);
	cr_assert_eq(vm->exit_status, (PVPANIC_PANICKED << 1) | 1,
	    "the port stays debug-exit's");
}

/* Save vm's device into a fresh stream. */
static void
save(struct vm *v, struct snap *s)
{
	snap_init_save(s);
	snap_section_begin(s, "pvpanic", pvpanic_ops.snapshot_version);
	pvpanic_ops.snapshot(pvpanic_find(v), s);
	snap_section_end(s);
	cr_assert_eq(snap_error(s), 0, "%s", s->errmsg);
}

static int
load(struct vm *v, const struct snap *s)
{
	struct snap l;
	int r;

	snap_init_load(&l, s->buf, s->len);
	snap_section_begin(&l, "pvpanic", pvpanic_ops.snapshot_version);
	pvpanic_ops.snapshot(pvpanic_find(v), &l);
	snap_section_end(&l);
	r = snap_error(&l);
	snap_free(&l);
	return r;
}

Test(pvpanic, snapshot_keeps_reported_and_pending_events)
{
	struct vm *v2;
	struct snap s;

	vm = new_vm("none");
	fake_out(vm, PVPANIC_PORT, 1, PVPANIC_CRASH_LOADED);
	event_thread_pass(vm);
	/* Saved between the guest's write and the event thread's turn. */
	fake_out(vm, PVPANIC_PORT, 1, PVPANIC_PANICKED);
	save(vm, &s);

	v2 = fake_vm_new(1 << 20);
	snprintf(fake_cfg.on_panic, sizeof(fake_cfg.on_panic), "stop");
	cr_assert_eq(pvpanic_ops.create(v2), 0);
	pvpanic_set_listener(pvpanic_find(v2), listener, v2);
	v2->state = VM_RUNNING;
	cr_assert_eq(load(v2, &s), 0);
	heard.n = 0;
	event_thread_pass(v2);
	cr_assert_eq(heard.n, 1, "the pending panic is handled by the new VM");
	cr_assert_eq(heard.r[0].event, PVPANIC_PANICKED);
	cr_assert_eq(heard.r[0].action, PVPANIC_STOP, "under its on_panic");
	cr_assert_eq(atomic_load(&v2->exit_request), VM_EVENT_POWEROFF);
	/* Already reported there: not again. */
	fake_out(v2, PVPANIC_PORT, 1, PVPANIC_EVENTS);
	event_thread_pass(v2);
	cr_assert_eq(heard.n, 1);
	snap_free(&s);
	fake_vm_free(v2);
}

/* A hand-made pvpanic section; 0 or the loader's error. */
static int
load_fields(struct vm *v, uint8_t reported, uint8_t pending, bool held)
{
	struct snap s;
	int r;

	snap_init_save(&s);
	snap_section_begin(&s, "pvpanic", 1);
	snap_u8(&s, "reported", &reported);
	snap_u8(&s, "pending", &pending);
	snap_bool(&s, "held", &held);
	snap_section_end(&s);
	r = load(v, &s);
	snap_free(&s);
	return r;
}

Test(pvpanic, snapshot_refuses_impossible_events)
{
	vm = new_vm("pause");
	cr_assert_eq(load_fields(vm, PVPANIC_EVENTS, 0, true), 0, "possible");
	cr_assert_neq(load_fields(vm, 0x04, 0, false), 0, "no such event");
	cr_assert_neq(load_fields(vm, PVPANIC_CRASH_LOADED, PVPANIC_PANICKED,
	    false), 0, "pending but never reported");
	cr_assert_neq(load_fields(vm, PVPANIC_CRASH_LOADED, 0, true), 0,
	    "paused for a panic that never was");
}

Test(pvpanic, a_vm_paused_by_a_panic_is_saved_and_loaded_paused)
{
	struct vm *v2, *v3;
	struct snap s;

	vm = new_vm("pause");
	fake_out(vm, PVPANIC_PORT, 1, PVPANIC_PANICKED);
	event_thread_pass(vm);
	cr_assert_eq(vm->state, VM_PAUSED);
	save(vm, &s);

	/* Loaded where on_panic says none: paused all the same. */
	v2 = new_vm("none");
	cr_assert_eq(load(v2, &s), 0);
	snap_free(&s);
	heard.n = 0;
	cr_assert_eq(v2->state, VM_RUNNING, "when it runs, not before");
	event_thread_pass(v2);
	cr_assert_eq(v2->state, VM_PAUSED);
	cr_assert_eq(heard.n, 1);
	cr_assert(heard.r[0].restored, "not a new panic");
	cr_assert(heard.r[0].paused);

	/* Once resumed it is the operator's: saved running, loaded running. */
	pthread_mutex_lock(&v2->devlock);
	vm_resume(v2);
	pthread_mutex_unlock(&v2->devlock);
	cr_assert_eq(v2->state, VM_RUNNING);
	save(v2, &s);
	v3 = new_vm("pause");
	cr_assert_eq(load(v3, &s), 0);
	snap_free(&s);
	event_thread_pass(v3);
	cr_assert_eq(v3->state, VM_RUNNING);
	cr_assert_eq(heard.n, 1);
	fake_vm_free(v3);
	fake_vm_free(v2);
}

Test(pvpanic, action_names)
{
	static const char *const names[] = { "pause", "stop", "reset", "none" };

	for (int i = 0; i < 4; i++) {
		cr_assert_eq(pvpanic_parse_action(names[i]), i);
		cr_assert_str_eq(pvpanic_action_name(i), names[i]);
	}
	cr_assert_lt(pvpanic_parse_action("poweroff"), 0);
	cr_assert_lt(pvpanic_parse_action(""), 0);
	cr_assert_lt(pvpanic_parse_action("Pause"), 0);
	vm = fake_vm_new(1 << 20);
	snprintf(fake_cfg.on_panic, sizeof(fake_cfg.on_panic), "later");
	cr_assert_eq(pvpanic_ops.create(vm), -EINVAL);
	cr_assert_eq(vm->ndevices, 0);
}

/* --on-panic on termvisor run, over a datastore VM's on_panic. */
Test(pvpanic, run_option_on_panic)
{
	char *argv[] = { "run", "--kernel", "/k", "--on-panic", "stop", NULL };
	char *bad[] = { "run", "--kernel", "/k", "--on-panic", "later", NULL };
	char *none[] = { "run", "--kernel", "/k", NULL };
	struct vm_config cmd, ds;
	struct run_args a;
	char err[256];

	cr_assert_eq(run_parse_args(5, argv, &cmd, &a, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_str_eq(cmd.on_panic, "stop");
	vm_config_defaults(&ds);
	snprintf(ds.on_panic, sizeof(ds.on_panic), "reset");
	snprintf(ds.kernel, sizeof(ds.kernel), "/k");
	cr_assert_eq(run_merge(&ds, &cmd, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(ds.on_panic, "stop", "the command line wins");
	cr_assert_eq(run_parse_args(3, none, &cmd, &a, err, sizeof(err)), 0);
	cr_assert_str_eq(cmd.on_panic, "pause", "QEMU's default");
	snprintf(ds.on_panic, sizeof(ds.on_panic), "reset");
	cr_assert_eq(run_merge(&ds, &cmd, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(ds.on_panic, "reset", "else the .vmx's");
	cr_assert_eq(run_parse_args(5, bad, &cmd, &a, err, sizeof(err)), -1);
	cr_assert(strstr(err, "--on-panic later") != NULL, "%s", err);
}

/* --- a whole VM, its control server and a client --- */

static void *
loop_thread(void *arg)
{
	evloop_run(arg);
	return NULL;
}

/* The next event line called name, skipping others; NULL on timeout. */
static json_t *
next_event(struct control_conn *cc, const char *name)
{
	json_t *j;

	while ((j = control_client_read(cc, 5000)) != NULL) {
		const char *ev = json_string_value(json_object_get(j, "event"));

		if (ev != NULL && strcmp(ev, name) == 0)
			return j;
		json_decref(j);
	}
	return NULL;
}

static const char *
status_state(struct control_conn *cc, char *buf, size_t len)
{
	char err[256];
	json_t *res;

	cr_assert_eq(control_client_call(cc, "status", NULL, 5000, &res, err,
	    sizeof(err)), 0, "%s", err);
	snprintf(buf, len, "%s", json_string_value(json_object_get(res,
	    "state")));
	json_decref(res);
	return buf;
}

Test(pvpanic, control_socket_reports_the_panic_and_the_panicked_state)
{
	char dir[64] = "/tmp/tv-pvp-XXXXXX", err[256], st[32];
	struct vm_config cfg;
	struct control_conn cc;
	struct control *srv;
	struct vm *v;
	pthread_t th;
	json_t *ev, *res;
	uint8_t d = PVPANIC_PANICKED;

	vclock_set_fake(false, 0);
	v = null_vm(&cfg, 16 << 20, 2);
	cr_assert_not_null(v);
	cr_assert_not_null(pvpanic_find(v), "every VM has one");
	v->state = VM_RUNNING;
	cr_assert_not_null(mkdtemp(dir));
	setenv("XDG_RUNTIME_DIR", dir, 1);
	srv = control_start(v, "pvp1");
	cr_assert_not_null(srv);
	srv->live = false;
	pthread_create(&th, NULL, loop_thread, v->loop);
	cr_assert_eq(control_client_open(&cc, "pvp1", err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_str_eq(status_state(&cc, st, sizeof(st)), "running");

	/* The guest's write, as a vCPU makes it: device lock held. */
	pthread_mutex_lock(&v->devlock);
	bus_access(v->pio, NULL, PVPANIC_PORT, &d, 1, true);
	pthread_mutex_unlock(&v->devlock);
	ev = next_event(&cc, "guest-panic");
	cr_assert_not_null(ev, "no guest-panic event");
	cr_assert_str_eq(json_string_value(json_object_get(ev, "kind")),
	    "panicked");
	cr_assert_str_eq(json_string_value(json_object_get(ev, "action")),
	    "pause");
	cr_assert(json_is_true(json_object_get(ev, "paused")));
	json_decref(ev);
	ev = next_event(&cc, "state");
	cr_assert_not_null(ev);
	cr_assert_str_eq(json_string_value(json_object_get(ev, "state")),
	    "panicked");
	json_decref(ev);
	cr_assert_str_eq(status_state(&cc, st, sizeof(st)), "panicked");
	cr_assert_eq(v->state, VM_PAUSED);
	/* Not running: a pause is refused, saying why. */
	cr_assert_neq(control_client_call(&cc, "pause", NULL, 5000, &res, err,
	    sizeof(err)), 0);
	cr_assert(strstr(err, "panicked") != NULL, "%s", err);
	/* The operator may let it go on. */
	cr_assert_eq(control_client_call(&cc, "resume", NULL, 5000, &res, err,
	    sizeof(err)), 0, "%s", err);
	json_decref(res);
	cr_assert_str_eq(status_state(&cc, st, sizeof(st)), "running");
	/* And a forced stop ends it. */
	cr_assert_eq(control_client_call(&cc, "pause", NULL, 5000, &res, err,
	    sizeof(err)), 0, "%s", err);
	json_decref(res);
	cr_assert_str_eq(status_state(&cc, st, sizeof(st)), "paused",
	    "a pause of the operator's is no panic");
	cr_assert_eq(control_client_call(&cc, "stop", json_pack("{s:b}",
	    "force", 1), 5000, &res, err, sizeof(err)), 0, "%s", err);
	json_decref(res);
	cr_assert_eq(atomic_load(&v->exit_request), VM_EVENT_POWEROFF);

	pthread_join(th, NULL);	/* the stop ended the loop */
	control_stop(srv, VM_EVENT_POWEROFF, 0);
	control_client_close(&cc);
	vm_destroy(v);
	strcat(dir, "/termvisor");
	rmdir(dir);
	dir[strlen(dir) - strlen("/termvisor")] = '\0';
	rmdir(dir);
}
