/*
 * pvpanic, as QEMU's ISA device: port 0x505 reads as the events the
 * guest may report (bit 0 panicked, bit 1 crash loaded); the guest's
 * panic notifier writes the one that happened.  Linux's driver reads the
 * port once at probe and writes it from its panic notifier, which runs
 * whatever panic= says, so even a guest that stays in its panic loop
 * (panic=0) is reported.
 *
 * The write comes on a vCPU thread; the report and the action (vm->cfg's
 * on_panic) are handled on the event thread, through a timer due at once:
 * pausing the VM waits for every vCPU to park, the writer's included,
 * which it cannot do from inside its own exit.
 *
 * Each event is reported once per boot: a panicking guest writes it once,
 * and a guest writing it in a loop must not flood the control socket.
 *
 * A VM paused by a panic is saved as such (held): a snapshot restored or
 * a VM migrated in that state is paused again when it starts, rather
 * than left spinning in its panic loop with nobody told.
 * A kdump kernel taking over (crash loaded) is only reported: pausing or
 * resetting would stop the dump.
 */
#include "devices/pvpanic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "hv/exit.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/snap.h"
#include "util/evloop.h"
#include "util/log.h"

#define PVPANIC_PAUSE_TIMEOUT_MS	5000
#define PVPANIC_RETRY_NS		10000000ull	/* 10 ms */

struct pvpanic {
	struct vm *vm;
	enum pvpanic_action action;
	uint8_t reported;	/* events the guest reported since power-on */
	uint8_t pending;	/* ... not yet handled on the event thread */
	bool held;		/* we paused the VM, and it has not run since */
	bool rehold;		/* loaded held: pause again (event thread) */
	struct vtimer timer;	/* handles pending and rehold, due at once */
	pvpanic_listener_fn *listener;
	void *opaque;
};

static const char *const pvpanic_action_names[] = {
	[PVPANIC_PAUSE] = "pause", [PVPANIC_STOP] = "stop",
	[PVPANIC_RESET] = "reset", [PVPANIC_NONE] = "none",
};

int
pvpanic_parse_action(const char *s)
{
	for (size_t i = 0; i < sizeof(pvpanic_action_names) /
	    sizeof(pvpanic_action_names[0]); i++)
		if (strcmp(s, pvpanic_action_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

const char *
pvpanic_action_name(enum pvpanic_action a)
{
	return (unsigned)a < sizeof(pvpanic_action_names) /
	    sizeof(pvpanic_action_names[0]) ? pvpanic_action_names[a] : "?";
}

static void
pvpanic_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct pvpanic *p = opaque;
	uint8_t v;

	if (!is_write) {
		/* One port: the bytes of a wider read above it are nobody's. */
		memset(data, 0xff, len);
		data[0] = PVPANIC_EVENTS;
		return;
	}
	v = data[0];
	if (v & ~PVPANIC_EVENTS)
		log_guest_once("pvpanic: guest wrote %#x: bits %#x are no "
		    "event, ignored", v, v & ~PVPANIC_EVENTS);
	v &= PVPANIC_EVENTS & ~p->reported;
	if (v == 0)
		return;
	p->reported |= v;
	p->pending |= v;
	vtimer_arm(&p->timer, vclock_ns());
}

/* PVPANIC_PAUSE: park the vCPUs; true when the VM is paused. */
static bool
pvpanic_pause(struct pvpanic *p)
{
	struct vm *vm = p->vm;

	if (vm->state == VM_PAUSED) {	/* a client paused it first */
		p->held = true;
		return true;
	}
	if (vm->state != VM_RUNNING)
		return false;	/* stopping: pausing would only delay it */
	if (vm_pause(vm, PVPANIC_PAUSE_TIMEOUT_MS) < 0) {
		log_warnx("pvpanic: a vCPU did not stop within %d s: the "
		    "panicked guest goes on running",
		    PVPANIC_PAUSE_TIMEOUT_MS / 1000);
		return false;
	}
	p->held = true;
	return true;
}

/* Loaded held: pause again, whatever this VM's on_panic says (it was
 * paused where it was saved; loading it must not let it run). */
static void
pvpanic_rehold(struct pvpanic *p)
{
	struct pvpanic_report r = { .event = PVPANIC_PANICKED,
	    .action = PVPANIC_PAUSE, .restored = true };

	log_warnx("the guest had panicked and was paused when saved: "
	    "paused again");
	r.paused = pvpanic_pause(p);
	if (p->listener != NULL)
		p->listener(p->opaque, &r);
}

static void
pvpanic_handle(struct pvpanic *p, unsigned event, enum pvpanic_action a)
{
	struct pvpanic_report r = { .event = event, .action = a };

	if (event == PVPANIC_CRASH_LOADED)
		log_warnx("the guest's kernel panicked; its crash kernel "
		    "(kdump) takes over");
	else
		log_warnx("the guest's kernel panicked (on_panic %s)",
		    pvpanic_action_name(a));
	if (a == PVPANIC_PAUSE)
		r.paused = pvpanic_pause(p);
	if (p->listener != NULL)
		p->listener(p->opaque, &r);
	if (a == PVPANIC_STOP)
		vm_request_exit(p->vm, VM_EVENT_POWEROFF, PVPANIC_STOP_STATUS);
	else if (a == PVPANIC_RESET)
		vm_request_exit(p->vm, VM_EVENT_RESET, 0);
}

/* Timer: the event thread, device lock held. */
static void
pvpanic_deliver(void *opaque)
{
	struct pvpanic *p = opaque;
	uint8_t ev = p->pending;
	bool rehold = p->rehold;

	p->pending = 0;
	p->rehold = false;
	if (rehold && p->vm->state == VM_CREATED) {
		/* Loaded, not started yet (its vCPUs could not park). */
		p->rehold = true;
		vtimer_arm(&p->timer, vclock_ns() + PVPANIC_RETRY_NS);
		rehold = false;
	}
	if (rehold)
		pvpanic_rehold(p);
	/* Both at once: the kdump note first, the panic's action last. */
	if (ev & PVPANIC_CRASH_LOADED)
		pvpanic_handle(p, PVPANIC_CRASH_LOADED, PVPANIC_NONE);
	if (ev & PVPANIC_PANICKED)
		pvpanic_handle(p, PVPANIC_PANICKED, p->action);
}

struct pvpanic *
pvpanic_find(struct vm *vm)
{
	return devices_find(vm, &pvpanic_ops);
}

void
pvpanic_set_listener(struct pvpanic *p, pvpanic_listener_fn *fn,
    void *opaque)
{
	if (p == NULL)
		return;
	p->listener = fn;
	p->opaque = opaque;
}

static int
pvpanic_create(struct vm *vm)
{
	const char *s = vm->cfg->on_panic[0] ? vm->cfg->on_panic : "pause";
	int a = pvpanic_parse_action(s), err;
	struct pvpanic *p;

	if (a < 0) {
		log_warnx("on_panic %s: expected pause, stop, reset or none",
		    s);
		return a;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	p->vm = vm;
	p->action = (enum pvpanic_action)a;
	vtimer_init(&p->timer, vm->loop, pvpanic_deliver, p);
	if ((err = bus_register(vm->pio, PVPANIC_PORT, 1, pvpanic_io, p,
	    "pvpanic")) < 0) {
		/* The DSDT promises the guest this port: no VM without it. */
		if (err == -EEXIST)
			log_warnx("pvpanic: I/O port %#x is taken by %s (choose "
			    "another --debug-exit port)", PVPANIC_PORT,
			    bus_lookup_name(vm->pio, PVPANIC_PORT));
		goto fail;
	}
	if ((err = vm_device_register(vm, &pvpanic_ops, p, "pvpanic")) < 0) {
		bus_unregister(vm->pio, PVPANIC_PORT);
		goto fail;
	}
	return 0;
fail:
	free(p);
	return err;
}

static void
pvpanic_fini(void *state)
{
	struct pvpanic *p = state;

	vtimer_cancel(&p->timer);
	bus_unregister(p->vm->pio, PVPANIC_PORT);
	free(p);
}

/* The VM runs again (its last pause undone): no longer held. */
static void
pvpanic_resume(void *state)
{
	struct pvpanic *p = state;

	p->held = false;
}

static void
pvpanic_reset(void *state)
{
	struct pvpanic *p = state;

	vtimer_cancel(&p->timer);
	p->reported = 0;
	p->pending = 0;
	p->held = false;
	p->rehold = false;
}

/*
 * A report still pending is handled by the VM that loads it (its
 * on_panic applies); a VM saved held is paused again.  Both happen on
 * the event thread once the loaded VM runs.
 */
static int
pvpanic_snapshot(void *state, struct snap *s)
{
	struct pvpanic *p = state;

	snap_u8(s, "reported", &p->reported);
	snap_u8(s, "pending", &p->pending);
	snap_bool(s, "held", &p->held);
	if (snap_saving(s) || snap_error(s))
		return snap_error(s);
	if ((p->reported & ~PVPANIC_EVENTS) || (p->pending & ~p->reported) ||
	    (p->held && !(p->reported & PVPANIC_PANICKED))) {
		snap_fail(s, -EINVAL, "pvpanic: events %#x pending %#x%s",
		    p->reported, p->pending, p->held ? " held" : "");
		return snap_error(s);
	}
	p->rehold = p->held;
	p->held = false;	/* until paused here */
	vtimer_cancel(&p->timer);
	if (p->pending != 0 || p->rehold)
		vtimer_arm(&p->timer, vclock_ns());
	return 0;
}

const struct device_ops pvpanic_ops = {
	.name = "pvpanic",
	.create = pvpanic_create,
	.fini = pvpanic_fini,
	.snapshot = pvpanic_snapshot,
	.snapshot_version = 1,
	.resume = pvpanic_resume,
	.reset = pvpanic_reset,
};
