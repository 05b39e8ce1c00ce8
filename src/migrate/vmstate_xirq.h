/*
 * Interrupt controllers across accelerators (vmstate.c's helper): state
 * saved under KVM (its in-kernel PIC pair, I/O APIC, PIT and local
 * APICs, sections kvm.cpu.N and kvm.vm) loaded into the software models
 * of a VM on the software CPU, through their own snapshot functions;
 * and the software models' sections into KVM's, through its hooks.
 */
#ifndef TV_VMSTATE_XIRQ_H
#define TV_VMSTATE_XIRQ_H

#include <stdbool.h>
#include <stdint.h>

#include "hv/vm.h"

struct snap;
struct cpu_state;

struct vmstate_xirq_pic {
	uint8_t last_irr, irr, imr, isr, priority_add, irq_base;
	uint8_t read_reg_select, poll, special_mask, init_state, auto_eoi;
	uint8_t rotate_on_auto_eoi, special_fully_nested_mode, init4;
	uint8_t elcr, elcr_mask;
};

struct vmstate_xirq_pit {
	uint32_t count;
	uint16_t latched_count;
	uint8_t count_latched, status_latched, status, read_state;
	uint8_t write_state, write_latch, rw_mode, mode, bcd, gate;
	int64_t load_age;	/* load time minus the saving instant, ns */
};

struct vmstate_xirq {
	uint8_t lapic[VM_MAX_VCPUS][1024];	/* the APIC register page */
	uint32_t mp_state[VM_MAX_VCPUS];
	uint8_t nmi_pending[VM_MAX_VCPUS];
	uint8_t intr_injected[VM_MAX_VCPUS], intr_nr[VM_MAX_VCPUS];
	uint32_t sipi_vector[VM_MAX_VCPUS];
	uint8_t init_pending[VM_MAX_VCPUS];	/* software LAPIC's INIT */
	struct vmstate_xirq_pic pic[2];
	uint64_t ioapic_rte[24];
	uint32_t ioapic_id, ioapic_irr, ioapic_regsel;
	struct vmstate_xirq_pit pit[3];
	uint32_t pit_flags;
};

/* Read KVM's section kvm.cpu.N (vCPU id) or kvm.vm into x. */
int vmstate_xirq_kvm_cpu(struct snap *s, int id, struct vmstate_xirq *x);
int vmstate_xirq_kvm_vm(struct snap *s, struct vmstate_xirq *x);
/* Is d one of the software interrupt controllers? */
bool vmstate_xirq_soft(const struct device_inst *d);
/*
 * Load x into vm's software interrupt controllers (st: the vCPUs'
 * loaded state, for the APIC bases).  Errors go to s (the stream being
 * loaded, for its message); 0 or -errno.
 */
int vmstate_xirq_load_soft(struct vm *vm, const struct vmstate_xirq *x,
    const struct cpu_state *st, struct snap *s);

/* The other way: is name a software interrupt controller's section?
 * Read it (at s's cursor) into x; then load x into a KVM vm's
 * in-kernel controllers through its hooks. */
bool vmstate_xirq_soft_name(const char *name);
int vmstate_xirq_read_soft(struct snap *s, const char *name,
    struct vmstate_xirq *x, int nvcpus);
int vmstate_xirq_load_kvm(struct vm *vm, struct vmstate_xirq *x,
    const struct cpu_state *st, struct snap *s);

#endif
