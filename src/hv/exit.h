/*
 * struct vm_exit: what a vCPU hands to the VMM when guest code needs
 * something from outside the CPU.  KVM's KVM_RUN exits and the software
 * CPU's I/O and MMIO accesses both become one of these, and both go to
 * vcpu_handle_exit() (vm.c), which dispatches through a table indexed by
 * kind.  That is the one path every guest access takes.
 */
#ifndef TV_EXIT_H
#define TV_EXIT_H

#include <stdbool.h>
#include <stdint.h>

enum vm_exit_kind {
	VM_EXIT_NONE,
	VM_EXIT_PIO,		/* port I/O: io.addr is the port */
	VM_EXIT_MMIO,		/* memory-mapped I/O: io.addr is the GPA */
	VM_EXIT_HLT,		/* HLT with no in-kernel/in-CPU wait */
	VM_EXIT_SHUTDOWN,	/* triple fault */
	VM_EXIT_INTR,		/* kicked out (pause, stop, a request) */
	VM_EXIT_SYSTEM_EVENT,	/* reset or power-off requested by the CPU */
	VM_EXIT_INTERNAL_ERROR,	/* the accelerator could not go on */
	VM_EXIT_KINDS
};

/* Outcome of handling an exit, as bhyve's VMEXIT_CONTINUE/ABORT. */
enum { VMEXIT_CONTINUE = 0, VMEXIT_ABORT = -1 };

struct vm_exit {
	enum vm_exit_kind kind;
	union {
		struct {
			uint64_t addr;
			uint8_t data[8];	/* little-endian value */
			uint8_t len;		/* 1, 2, 4 or 8 */
			bool write;
		} io;
		struct {
			int type;		/* VM_EVENT_* */
		} system;
		struct {
			uint32_t suberror;
			char msg[96];
		} internal;
	};
};

enum { VM_EVENT_RESET = 1, VM_EVENT_POWEROFF = 2, VM_EVENT_ERROR = 3,
       VM_EVENT_SIGNAL = 4 };

#endif
