/*
 * The accelerator interface: what runs guest instructions.  kvm.c and the
 * software CPU (bt/) implement it; vm.c and the devices see only this.
 */
#ifndef TV_ACCEL_H
#define TV_ACCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct vm_exit;
struct cpu_state;
struct mem_region;
struct snap;

struct accel_ops {
	const char *name;
	/* True when interrupt controllers and the PIT live inside the
	 * accelerator (KVM's in-kernel irqchip): the VMM then does not
	 * create its software i8259/i8254/IOAPIC/LAPIC models. */
	bool kernel_irqchip;
	/* True when every guest MMIO write leaves guest code for the VMM
	 * on the vCPU's own thread anyway (the software CPU), and an idle
	 * vCPU returns VM_EXIT_HLT: a device may then do a kick's short,
	 * non-blocking work right there (virtio_kick_inline) rather than
	 * pay a wake of the event thread for it. */
	bool kicks_on_vcpu;

	/* Probe/open the accelerator for vm; -errno (ENODEV: not here). */
	int (*vm_init)(struct vm *vm);
	void (*vm_fini)(struct vm *vm);
	/* Make a region of guest memory visible to the guest. */
	int (*map_mem)(struct vm *vm, struct mem_region *r);
	/* Largest vCPU count this accelerator can give a VM. */
	int (*max_vcpus)(struct vm *vm);

	int (*vcpu_init)(struct vcpu *vcpu);
	void (*vcpu_fini)(struct vcpu *vcpu);
	/*
	 * Run guest code until something the VMM must handle.  I/O and
	 * MMIO may be handled inside (the accelerator calls
	 * vcpu_handle_exit() itself) or returned; returns 0 with *exit
	 * filled, or -errno on an accelerator failure.
	 */
	int (*vcpu_run)(struct vcpu *vcpu, struct vm_exit *exit);
	/* Make a running vcpu_run() return soon with VM_EXIT_INTR. */
	void (*vcpu_kick)(struct vcpu *vcpu);
	int (*get_state)(struct vcpu *vcpu, struct cpu_state *st);
	int (*set_state)(struct vcpu *vcpu, const struct cpu_state *st);

	/* Drive interrupt line gsi (ISA IRQ 0-15, IOAPIC pins above). */
	int (*irq_line)(struct vm *vm, unsigned gsi, int level);
	/* Deliver an MSI (address/data as the guest programmed them). */
	int (*msi)(struct vm *vm, uint64_t addr, uint32_t data);
	/* Fetch-and-clear the dirty bitmap (one bit per 4 KiB page). */
	int (*dirty_log)(struct vm *vm, struct mem_region *r, uint64_t *bitmap);
	/*
	 * Signal eventfd fd on a guest MMIO write of len bytes (0: any
	 * width) at gpa inside the accelerator (assign), or stop doing so.
	 * NULL, or -errno: vm_ioeventfd.c's own table serves the write.
	 */
	int (*ioeventfd)(struct vm *vm, uint64_t gpa, unsigned len, int fd,
	    bool assign);

	/*
	 * Snapshots (src/migrate/vmstate.c): what the accelerator keeps
	 * beside struct cpu_state, saved or loaded (one function, both
	 * directions) as sections of its own named "<name>.*".  Loading
	 * runs after set_state on every vCPU.  NULL: nothing to keep.
	 */
	int (*vcpu_snapshot)(struct vcpu *vcpu, struct snap *s);
	int (*vm_snapshot)(struct vm *vm, struct snap *s);
	/* The CPUID leaf as vcpu's guest sees it (feature checks). */
	void (*cpuid)(struct vcpu *vcpu, uint32_t leaf, uint32_t sub,
	    uint32_t r[4]);
};

extern const struct accel_ops kvm_accel_ops;
extern const struct accel_ops bt_accel_ops;

/* Find an accelerator by name ("kvm", "bt"); NULL if unknown. */
const struct accel_ops *accel_find(const char *name);
/* Does the host CPU show VMX or SVM (so /dev/kvm runs guests natively)?
 * True when it cannot tell. */
bool accel_host_has_hw_virt(void);

#endif
