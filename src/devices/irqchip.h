/*
 * The software interrupt controllers (8259 pair, I/O APIC, one local APIC
 * per vCPU) as one unit, for accelerators without an in-kernel irqchip
 * (the software CPU).  Devices still call vm_irq_set()/vm_msi(); the
 * accelerator's irq_line/msi hooks land here.
 *
 * The vCPU side is lock-free to poll: irqchip_pending() is a cheap check
 * the software CPU makes between blocks; irqchip_ack() takes the irqchip's
 * own lock (not vm->devlock: it may be called with or without it) and
 * performs the INTA cycle.  When an interrupt becomes pending
 * for a vCPU, the irqchip calls vcpu_kick(vcpu, VCPU_REQ_IRQ).
 */
#ifndef TV_IRQCHIP_H
#define TV_IRQCHIP_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct vcpu;

/* Create the PIC pair, IOAPIC and LAPICs (one per vCPU) for vm and
 * register their I/O ranges; called from devices_create(). */
int irqchip_create(struct vm *vm);

/* Drive gsi: 0-15 go to both PIC and IOAPIC pins (as on a PC), 16-23 to
 * the IOAPIC only.  ISA IRQ 0 (the PIT) is IOAPIC pin 2, as the MADT's
 * interrupt source override says; 2 is the cascade and is ignored.
 * 0, or -EINVAL for gsi > 23, -ENODEV without an irqchip. */
int irqchip_set_irq(struct vm *vm, unsigned gsi, int level);
/* Deliver an MSI to the LAPIC(s) it addresses. */
int irqchip_msi(struct vm *vm, uint64_t addr, uint32_t data);

/* Is a maskable interrupt ready for this vCPU (ignoring RFLAGS.IF)? */
bool irqchip_pending(struct vcpu *vcpu);
/* Acknowledge the highest-priority pending interrupt: its vector, or -1
 * if it vanished meanwhile. */
int irqchip_ack(struct vcpu *vcpu);
/* NMI / INIT / SIPI sent to this vCPU through the LAPIC ICR; each
 * returns true once per event and clears it.  Each also kicks the vCPU
 * with VCPU_REQ_IRQ.  An INIT has already reset the LAPIC and dropped
 * any earlier start-up; a SIPI that finds the CPU not waiting for one is
 * the CPU's to ignore. */
bool irqchip_take_nmi(struct vcpu *vcpu);
bool irqchip_take_init(struct vcpu *vcpu);
bool irqchip_take_sipi(struct vcpu *vcpu, uint8_t *vector);

/* The APIC base MSR and CR8/TPR as the CPU sees them.  Setting the base
 * returns -EINVAL for a value the CPU must refuse with #GP (reserved
 * bits, x2APIC enable: x2APIC is not implemented). */
uint64_t irqchip_apic_base(struct vcpu *vcpu);
int irqchip_set_apic_base(struct vcpu *vcpu, uint64_t value);
uint8_t irqchip_get_tpr(struct vcpu *vcpu);	/* CR8 (TPR >> 4) */
void irqchip_set_tpr(struct vcpu *vcpu, uint8_t cr8);

/*
 * Between the chips (i8259, i8254, ioapic, lapic and this glue); not for
 * the CPU.  The PIC, IOAPIC and LAPIC state is guarded by ic->lock, taken
 * after vm->devlock when both are held (never the other way round), so
 * devices may raise lines with or without the device lock.  The i8254 is
 * an ordinary device under vm->devlock.  vCPU kicks wanted while the lock
 * is held are collected and made by irqchip_unlock(), so no vCPU lock is
 * ever taken under ic->lock.
 */
#include <pthread.h>

#define IRQCHIP_APIC_WINDOWS	4	/* distinct LAPIC bases in use */

struct i8259;
struct i8254;
struct ioapic;
struct device_ops;

struct irqchip_apic_window {
	struct irqchip *ic;
	uint64_t base;		/* 0: slot unused */
	unsigned users;		/* vCPUs whose APIC base is here */
};

struct irqchip {
	struct vm *vm;
	pthread_mutex_t lock;
	uint64_t kick;		/* vCPU ids (bits) to kick at unlock */
	struct i8259 *pic;
	struct i8254 *pit;
	struct ioapic *ioapic;
	unsigned lowest_rr;	/* rotation for lowest-priority delivery */
	struct irqchip_apic_window win[IRQCHIP_APIC_WINDOWS];
};

/* The device class listed in the device table (DEV_SOFT_IRQCHIP). */
extern const struct device_ops irqchip_device;

void irqchip_lock(struct irqchip *ic);
/* Drop the lock, then kick the vCPUs irqchip_kick_later() named. */
void irqchip_unlock(struct irqchip *ic);
/* Under ic->lock: wake vcpu with VCPU_REQ_IRQ once the lock is dropped. */
void irqchip_kick_later(struct irqchip *ic, struct vcpu *vcpu);
/* Under ic->lock: the PIC's INT output changed; re-evaluate every vCPU
 * that takes ExtINT and IOAPIC pin 0. */
void irqchip_pic_changed(struct irqchip *ic);
/* Is an edge sent on gsi still waiting for a CPU to take it (PIC IRR, or
 * the vector in a LAPIC's IRR)?  Takes ic->lock; for timers that pay
 * back missed ticks only once the last one was taken. */
bool irqchip_gsi_pending(struct vm *vm, unsigned gsi);
/* Under ic->lock: move vcpu's LAPIC MMIO window from old to new base
 * (0 = none); -errno if the new base cannot be claimed. */
int irqchip_apic_move(struct irqchip *ic, uint64_t old_base,
    uint64_t new_base);

#endif
