/*
 * Device classes and the device table.  The table (devices.c) is listed by
 * hand: no linker sets or constructors, which silently drop out of static
 * test links.  A class's create hook looks at the VM's configuration and
 * registers zero or more instances with vm_device_register(); each
 * instance then gets fini, snapshot, pause/resume and reset calls.
 */
#ifndef TV_DEVICE_H
#define TV_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct snap;

/* I/O counters a device shows in statistics (control "stats", the
 * dashboard's rates).  Disks: rx = read, tx = written. */
struct device_stats {
	const char *kind;	/* "disk", "net" */
	uint64_t rx_bytes, tx_bytes;
	uint64_t rx_ops, tx_ops;	/* requests or frames */
	uint64_t errors;	/* failed requests, dropped frames */
};

enum device_flags {
	/* Create only when the accelerator has no in-kernel irqchip/PIT
	 * (the software CPU): i8259, i8254, IOAPIC, LAPIC. */
	DEV_SOFT_IRQCHIP = 1 << 0,
};

struct device_ops {
	const char *name;
	unsigned flags;
	/* Create this class's instances for vm; 0 or -errno. */
	int (*create)(struct vm *vm);
	void (*fini)(void *state);
	/*
	 * Save or load the instance's state (one function, both
	 * directions, through the snap_* field helpers).  NULL means the
	 * device cannot be snapshotted, and a snapshot then fails loudly.
	 */
	int (*snapshot)(void *state, struct snap *s);
	/* Version of the snapshot section this code writes. */
	unsigned snapshot_version;
	void (*pause)(void *state);
	void (*resume)(void *state);
	/* Back to power-on state (guest reboot). */
	void (*reset)(void *state);
	/* Fill *st with the instance's counters (NULL: it has none).  Any
	 * thread, no lock: counters are read with relaxed atomics. */
	void (*stats)(void *state, struct device_stats *st);
};

/* The table, in creation order. */
extern const struct device_ops *const device_table[];
extern const int device_table_len;

/* Create every device in the table that applies to vm; 0 or -errno. */
int devices_create(struct vm *vm);
void devices_destroy(struct vm *vm);
void devices_reset(struct vm *vm);
void devices_pause(struct vm *vm);
void devices_resume(struct vm *vm);
/* The state of vm's first instance of ops, or NULL if it has none. */
void *devices_find(struct vm *vm, const struct device_ops *ops);
/* Save or load every instance, each as its own named section. */
int devices_snapshot(struct vm *vm, struct snap *s);
/* The same for the first n instances only (a load into a VM that has
 * gained devices since the save: vmstate.c). */
int devices_snapshot_n(struct vm *vm, struct snap *s, int n);

#endif
