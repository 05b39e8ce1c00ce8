/*
 * pvpanic (QEMU's ISA "pvpanic" device, the guest's panic notifier): one
 * I/O port the guest reads to learn which events it may report and
 * writes when its kernel panics (or panics with a kdump kernel loaded).
 * The DSDT (src/hv/acpi.c) announces it as QEMU0001, which Linux's
 * pvpanic-mmio driver binds to with no set-up in the guest.
 */
#ifndef TV_PVPANIC_H
#define TV_PVPANIC_H

#include <stdbool.h>

struct vm;
struct device_ops;
struct pvpanic;

#define PVPANIC_PORT		0x505
#define PVPANIC_PANICKED	(1u << 0)	/* the kernel panicked */
#define PVPANIC_CRASH_LOADED	(1u << 1)	/* ... and kdump takes over */
#define PVPANIC_EVENTS		(PVPANIC_PANICKED | PVPANIC_CRASH_LOADED)

/* What the VMM does when the guest panics (on_panic, --on-panic). */
enum pvpanic_action {
	PVPANIC_PAUSE,		/* keep the guest as it is: state "panicked" */
	PVPANIC_STOP,		/* power the VM off (exit status 1) */
	PVPANIC_RESET,		/* reboot it, as a hardware reset does */
	PVPANIC_NONE,		/* only report it */
};
#define PVPANIC_STOP_STATUS	1	/* `termvisor run`'s exit status */

/* One report, as the VMM handled it (for the control socket). */
struct pvpanic_report {
	unsigned event;		/* PVPANIC_PANICKED or PVPANIC_CRASH_LOADED */
	enum pvpanic_action action;	/* what was done */
	bool paused;		/* PVPANIC_PAUSE, and the vCPUs are parked */
	/* Not a new panic: a VM saved while paused by one (snapshot,
	 * migration) was loaded, and is paused again. */
	bool restored;
};

/* Called on the event thread with the device lock held. */
typedef void pvpanic_listener_fn(void *opaque,
    const struct pvpanic_report *r);

extern const struct device_ops pvpanic_ops;

/* "pause", "stop", "reset", "none": the action, or -EINVAL. */
int pvpanic_parse_action(const char *s);
/* The action's name (as pvpanic_parse_action takes it). */
const char *pvpanic_action_name(enum pvpanic_action a);

/* The VM's pvpanic device, or NULL. */
struct pvpanic *pvpanic_find(struct vm *vm);
/*
 * Tell fn (NULL: nobody) about every panic the guest reports, after the
 * action was taken for a pause and before it is for a stop or reset.
 * p NULL is fine.  Device lock held.
 */
void pvpanic_set_listener(struct pvpanic *p, pvpanic_listener_fn *fn,
    void *opaque);

#endif
