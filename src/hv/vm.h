/*
 * The VM object: guest memory map, vCPUs, devices, the run loop.
 */
#ifndef TV_VM_H
#define TV_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/accel.h"
#include "hv/cpu_state.h"
#include "hv/exit.h"

#define VM_MAX_VCPUS	64
#define VM_MAX_REGIONS	16
#define VM_MAX_DEVICES	64
#define VM_MAX_IOEVENTFDS 128
#define VM_MAX_IDLE	8	/* idle sources: one per NIC */

/* Guest-physical layout (PC-like). */
#define GPA_LOW_RAM_END		0xc0000000ull	/* RAM below the 32-bit hole */
#define GPA_HIGH_RAM_START	0x100000000ull
#define GPA_PCI_MMIO_START	0xc0000000ull
#define GPA_PCI_MMIO_END	0xfec00000ull
#define GPA_IOAPIC		0xfec00000ull
#define GPA_LAPIC		0xfee00000ull

enum mem_flags {
	MEM_READONLY = 1 << 0,	/* ROM: guest writes become MMIO exits */
	MEM_DIRTY_LOG = 1 << 1,	/* track writes for migration / display */
};

struct mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	unsigned flags;
	int slot;
	const char *name;
};

enum vm_state { VM_CREATED, VM_RUNNING, VM_PAUSED, VM_STOPPING, VM_STOPPED };

/* Bits of vcpu->requests: things a vCPU thread must look at soon. */
enum {
	VCPU_REQ_STOP = 1u << 0,	/* leave the run loop */
	VCPU_REQ_PAUSE = 1u << 1,	/* park until resumed */
	VCPU_REQ_IRQ = 1u << 2,		/* an interrupt may be pending */
	VCPU_REQ_RESET = 1u << 3,
	VCPU_REQ_STATE = 1u << 4,	/* another thread wants its state */
};

struct vcpu {
	struct vm *vm;
	int id;
	pthread_t thread;
	atomic_uint requests;
	void *accel;		/* accelerator's per-vCPU data */
	void *lapic;		/* software local APIC (no kernel irqchip) */
	/* Parking lot for HLT / pause on accelerators without an
	 * in-kernel wait. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	/* Under lock: the thread runs (vm_run started it and it has not
	 * left), and it is parked on VCPU_REQ_PAUSE, out of the
	 * accelerator, so its state may be read or written. */
	bool thread_live;
	bool parked;
	/* Under lock: halted as the VM's idle owner, in poll(2) on
	 * idle_efd and the idle sources (vm_idle.c). */
	bool idle_polling;
	int idle_efd;		/* an eventfd; vcpu_kick writes it then */
	uint64_t exits[VM_EXIT_KINDS];	/* statistics by kind */
	uint64_t pio_exits, mmio_exits;
	uint64_t assists;	/* instructions KVM handed to the software CPU */
	uint64_t stints;	/* KVM assist stints (kvm_assist.c) */
	uint64_t stint_insns;	/* instructions run in them */
};

struct device_ops;
struct bus;

/* A guest write that only signals an eventfd (vm_ioeventfd.c). */
struct vm_ioeventfd {
	uint64_t gpa;
	uint32_t len;		/* 1, 2, 4 or 8; 0 matches any width */
	int fd;
	bool in_accel;		/* the accelerator signals it itself */
};

/* Work a halted vCPU may do itself (vm_idle.c): fd() says which fd to
 * wait for now (or -1), run() serves it; both with the device lock. */
struct vm_idle_source {
	int (*fd)(void *opaque);
	void (*run)(void *opaque);
	void *opaque;
};

struct device_inst {
	const struct device_ops *ops;
	void *state;
	char name[32];		/* instance name, also its snapshot section */
};

struct vm_config;
struct evloop;
struct console;

struct vm {
	const struct accel_ops *accel;
	void *accel_data;
	const struct vm_config *cfg;

	uint8_t *ram;		/* one mapping: low RAM, then high RAM */
	uint64_t ram_size;
	struct mem_region regions[VM_MAX_REGIONS];
	int nregions;

	int nvcpus;
	struct vcpu *vcpus[VM_MAX_VCPUS];

	struct bus *pio;
	struct bus *mmio;
	/* Big device lock: serializes device handlers between vCPU
	 * threads and the event thread. */
	pthread_mutex_t devlock;
	struct device_inst devices[VM_MAX_DEVICES];
	int ndevices;
	void *irqchip;		/* software PIC/IOAPIC (no kernel irqchip) */
	struct evloop *loop;	/* the VMM's event thread: fds and timers */
	struct console *console;	/* serial console backend */

	_Atomic int state;
	int pause_depth;	/* vm_pause() nesting; event thread only */
	/* Pages of vm->ram written by devices (DMA) since the last fetch,
	 * one bit per 4 KiB page, while dma_log is on (migration). */
	_Atomic(uint64_t) *dma_dirty;
	atomic_bool dma_log;
	int state_before_pause;
	/* How the guest asked to end: VM_EVENT_RESET / VM_EVENT_POWEROFF,
	 * or a debug-exit status (>= 0x100 means "exit with status-0x100"). */
	_Atomic int exit_request;
	int exit_status;
	/* MMIO writes that only signal an eventfd: vCPU threads read the
	 * table with no lock (a seqlock: ioev_seq is odd while it
	 * changes), changed only with the device lock held. */
	atomic_uint ioev_seq;
	unsigned ioev_n;
	struct vm_ioeventfd ioev[VM_MAX_IOEVENTFDS];
	/* Idle sources, changed with the device lock held; idle_owner is
	 * the id of the vCPU polling them while halted, or -1. */
	struct vm_idle_source idle[VM_MAX_IDLE];
	unsigned nidle;
	atomic_int idle_owner;
	bool idle_on;		/* vm_idle_enabled() at creation */
};

/*
 * Create a VM for cfg on accel: guest RAM, the buses, the event loop, the
 * accelerator, the vCPUs (not yet running) and the devices.  On failure
 * returns NULL with *err set and everything undone.
 */
struct vm *vm_create(const struct vm_config *cfg, const struct accel_ops *accel,
    int *err);
void vm_destroy(struct vm *vm);
/*
 * Start the vCPU threads and serve the event loop on the calling thread
 * until the guest (or a signal) ends the VM.  Returns VM_EVENT_* of how it
 * ended; vm->exit_status has the status for the process.
 */
int vm_run(struct vm *vm);

/* Handle one exit through the exit table; VMEXIT_CONTINUE or ABORT. */
int vcpu_handle_exit(struct vcpu *vcpu, struct vm_exit *exit);

/* Raise or lower interrupt line gsi through the accelerator. */
void vm_irq_set(struct vm *vm, unsigned gsi, int level);
/* Deliver an MSI. */
void vm_msi(struct vm *vm, uint64_t addr, uint32_t data);

/*
 * Translate [gpa, gpa+len) to a host pointer, or NULL if any part is not
 * guest RAM.  The check covers the whole range, so a guest-supplied
 * address and length can be used directly once this succeeds.
 */
void *vm_gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len);
/* Copy to/from guest RAM; -EFAULT if the range is not RAM. */
int vm_read(struct vm *vm, uint64_t gpa, void *buf, size_t len);
int vm_write(struct vm *vm, uint64_t gpa, const void *buf, size_t len);

/*
 * Map size bytes of host memory at hva as guest memory at gpa for a device
 * (video memory), so guest loads and stores reach it with no exit, on
 * either accelerator; gpa 0 with size 0 records the region unmapped.
 * hva stays the device's for the VM's life.  Returns the region's index
 * for vm_move_device_mem(), or -errno (-ENOSPC: no free region).
 */
int vm_map_device_mem(struct vm *vm, uint64_t gpa, uint64_t size,
    uint8_t *hva, const char *name);
/* Move region idx (from vm_map_device_mem) to gpa; size 0 unmaps it.
 * 0 or -errno. */
int vm_move_device_mem(struct vm *vm, int idx, uint64_t gpa, uint64_t size);

/* Add a device instance (called from a device class's create hook). */
int vm_device_register(struct vm *vm, const struct device_ops *ops,
    void *state, const char *name);

/* Ask the VM to end: reason is VM_EVENT_* ; status for power-off. */
void vm_request_exit(struct vm *vm, int reason, int status);
/* Wake a vCPU (new interrupt, request); safe from any thread. */
void vcpu_kick(struct vcpu *vcpu, unsigned req);

/*
 * Stop every vCPU and return once each is parked outside the accelerator
 * (or has no thread), then pause the devices: the VM's CPU and device
 * state may then be read or written (snapshots, migration).  Called on
 * the event thread with the device lock held; the lock is dropped while
 * waiting, so that a vCPU blocked on it can reach its parking spot.
 * Nested calls are counted; 0, or -ETIMEDOUT if a vCPU did not park
 * within timeout_ms (the VM is then resumed and left as it was).
 */
int vm_pause(struct vm *vm, int timeout_ms);
/* Undo one vm_pause(); the last one lets the vCPUs run again. */
void vm_resume(struct vm *vm);

/*
 * A device wrote guest RAM [gpa, gpa+len) behind the CPU's back (DMA:
 * virtio buffers and rings): the software CPU drops its translations
 * there, and while the DMA log is on the pages are marked dirty, since
 * no accelerator's dirty log sees such writes.  Any thread.
 */
void vm_dma_written(struct vm *vm, uint64_t gpa, uint64_t len);
/* Start (0 or -ENOMEM) or stop logging device writes to RAM. */
int vm_dma_log_start(struct vm *vm);
void vm_dma_log_stop(struct vm *vm);
/*
 * OR into bitmap (one bit per 4 KiB page of r, as accel->dirty_log
 * fills it) the pages of r devices wrote since the last call, and forget
 * them.  No-op for regions outside vm->ram or when the log is off.
 */
void vm_dma_log_fetch(struct vm *vm, const struct mem_region *r,
    uint64_t *bitmap);

/*
 * ioeventfd (vm_ioeventfd.c): a guest MMIO write of len bytes (1, 2, 4 or
 * 8; 0: any width) at exactly gpa signals eventfd fd instead of reaching
 * the bus, with no device lock taken and, where the accelerator can
 * (KVM_IOEVENTFD), without leaving it.  Reads and writes of other widths
 * or addresses still reach the bus, as does bus_access() itself.  fd must
 * stay open while vCPUs run: a vCPU that looked the table up just before
 * a _del may still signal it once.  Device lock held.  0 or -errno
 * (-EEXIST: gpa taken, -ENOSPC: table full, -ENOENT: no such entry).
 */
int vm_ioeventfd_add(struct vm *vm, uint64_t gpa, unsigned len, int fd);
int vm_ioeventfd_del(struct vm *vm, uint64_t gpa, unsigned len, int fd);
/*
 * The lock-free lookup: if a write of len bytes at gpa is registered,
 * signal its eventfd and return true.  Any thread, no lock.
 */
bool vm_ioeventfd_signal(struct vm *vm, uint64_t gpa, unsigned len);
/* Signal every registered eventfd once.  vm_resume() (and a vm_pause()
 * that failed) call it, so an eventfd's owner may drop what fires while
 * vm->pause_depth > 0: no kick is lost, a spurious one is harmless. */
void vm_ioeventfd_signal_all(struct vm *vm);
/* False when TERMVISOR_IOEVENTFD is 0, off or no (A/B measurements):
 * devices then leave every write to the bus. */
bool vm_ioeventfd_enabled(void);

/*
 * Idle sources (vm_idle.c).  A halted vCPU, one at a time, waits in
 * poll(2) on the sources' fds as well as for its wake-ups, and runs a
 * source whose fd became readable itself, with the device lock held,
 * rather than waiting for the event thread to run the same callback
 * (which it still may: a source must take a wake that finds nothing).
 * _add/_del with the device lock held; _add returns 0 or -ENOSPC.
 */
int vm_idle_add(struct vm *vm, int (*fd)(void *), void (*run)(void *),
    void *opaque);
void vm_idle_del(struct vm *vm, void *opaque);
/* Halt until one of the wake requests is set, serving idle sources
 * meanwhile if this vCPU becomes the idle owner. */
void vm_idle_wait(struct vcpu *vcpu, unsigned wake);
/* vcpu_kick()'s part, with vcpu->lock held: wake an idle owner. */
void vm_idle_kick(struct vcpu *vcpu);
int vm_idle_vcpu_init(struct vcpu *vcpu);
void vm_idle_vcpu_fini(struct vcpu *vcpu);
/* False when TERMVISOR_IDLE_POLL is 0, off or no: halted vCPUs then
 * only sleep, and the event thread alone serves the sources. */
bool vm_idle_enabled(void);

#endif
