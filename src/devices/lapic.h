/*
 * The local APIC of one vCPU (xAPIC, MMIO at the APIC base, 0xfee00000
 * after reset), with its timer on the VM's virtual clock.  Part of the
 * software irqchip: unless noted, functions are called with the irqchip
 * lock held.  x2APIC and the TSC-deadline timer are not implemented (and
 * must not be advertised in CPUID).
 */
#ifndef TV_LAPIC_H
#define TV_LAPIC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/evloop.h"

struct irqchip;
struct vcpu;
struct device_ops;

/* Delivery modes of the APIC bus (ICR, IOAPIC entries, MSI data). */
enum {
	APIC_DM_FIXED = 0,
	APIC_DM_LOWEST = 1,
	APIC_DM_SMI = 2,
	APIC_DM_NMI = 4,
	APIC_DM_INIT = 5,
	APIC_DM_STARTUP = 6,
	APIC_DM_EXTINT = 7,
};

#define APIC_BASE_BSP		(1ull << 8)
#define APIC_BASE_EXTD		(1ull << 10)
#define APIC_BASE_ENABLE	(1ull << 11)

/* LVT entries: timer, thermal, perf, LINT0, LINT1, error. */
#define LAPIC_NLVT	6

/* One interrupt message on the APIC bus. */
struct lapic_msg {
	uint8_t vector;
	uint8_t mode;		/* APIC_DM_* */
	uint8_t dest;		/* APIC ID, or logical destination */
	bool logical;
	bool level;		/* level: sets TMR, EOI goes back */
};

struct lapic {
	struct irqchip *ic;
	struct vcpu *vcpu;
	uint64_t base;		/* IA32_APIC_BASE */
	uint64_t window;	/* MMIO window accounted in the irqchip */
	uint32_t id;		/* ID register (APIC ID in 31:24) */
	uint32_t tpr, ldr, dfr, svr;
	uint32_t esr, esr_acc;	/* ESR as read, errors since */
	uint32_t icr_lo, icr_hi;
	uint32_t lvt[LAPIC_NLVT];
	uint32_t irr[8], isr[8], tmr[8];
	bool extint;		/* IOAPIC ExtINT awaiting INTA */
	/* Timer: counts from timer_start at 1 GHz / divisor. */
	uint32_t timer_icr, timer_dcr;
	uint64_t timer_start;
	bool timer_fired;	/* one-shot already expired */
	/* Periodic: periods accounted for since timer_start, and ticks
	 * owed to a guest that did not take them in time. */
	uint64_t timer_seen;
	uint32_t timer_owed;
	struct vtimer timer;
	/* Read by the vCPU without the lock. */
	atomic_bool pending;	/* a vector or ExtINT is deliverable */
	atomic_bool nmi, init, sipi;
	_Atomic uint8_t sipi_vector;
};

/* The per-vCPU instance ops (snapshot and reset). */
extern const struct device_ops lapic_device;

/* A LAPIC for vcpu at power-on state (no lock needed); NULL if out of
 * memory. */
struct lapic *lapic_new(struct irqchip *ic, struct vcpu *vcpu);
void lapic_free(struct lapic *l);

/* Deliver m to every LAPIC it addresses (one, for lowest priority). */
void lapic_deliver(struct irqchip *ic, const struct lapic_msg *m);
/* Re-evaluate l's pending summary (the PIC output changed...). */
void lapic_update(struct lapic *l);
/* INTA on the LAPIC side: ExtINT first (the PIC's vector), then the best
 * IRR vector above the PPR; -1 if none. */
int lapic_ack(struct lapic *l);
/* An xAPIC register access at off in the 4 KiB page. */
void lapic_mmio(struct lapic *l, uint64_t off, uint8_t *data, unsigned len,
    bool is_write);
/* The vCPU's own APIC page at gpa, without vm->devlock (takes the
 * irqchip lock itself); false if gpa is not in it.  See lapic.c. */
bool lapic_cpu_mmio(struct vcpu *vcpu, uint64_t gpa, uint8_t *data,
    unsigned len, bool is_write);
/* IA32_APIC_BASE write: 0, or -EINVAL for a value that #GPs. */
int lapic_set_base(struct lapic *l, uint64_t value);
void lapic_set_tpr(struct lapic *l, uint8_t tpr);
/* Is vector waiting in l's IRR? */
bool lapic_in_irr(const struct lapic *l, uint8_t vector);
/* Is this LAPIC taking the PIC's INT (LINT0 ExtINT, or APIC off)? */
bool lapic_accepts_pic(const struct lapic *l);

#endif
