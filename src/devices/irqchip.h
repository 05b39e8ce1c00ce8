/*
 * The software interrupt controllers (8259 pair, I/O APIC, one local APIC
 * per vCPU) as one unit, for accelerators without an in-kernel irqchip
 * (the software CPU).  Devices still call vm_irq_set()/vm_msi(); the
 * accelerator's irq_line/msi hooks land here.
 *
 * The vCPU side is lock-free to poll: irqchip_pending() is a cheap check
 * the software CPU makes between blocks; irqchip_ack() takes the device
 * lock and performs the INTA cycle.  When an interrupt becomes pending
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
 * the IOAPIC only. */
int irqchip_set_irq(struct vm *vm, unsigned gsi, int level);
/* Deliver an MSI to the LAPIC(s) it addresses. */
int irqchip_msi(struct vm *vm, uint64_t addr, uint32_t data);

/* Is a maskable interrupt ready for this vCPU (ignoring RFLAGS.IF)? */
bool irqchip_pending(struct vcpu *vcpu);
/* Acknowledge the highest-priority pending interrupt: its vector, or -1
 * if it vanished meanwhile. */
int irqchip_ack(struct vcpu *vcpu);
/* NMI / INIT / SIPI sent to this vCPU through the LAPIC ICR; each
 * returns true once per event and clears it. */
bool irqchip_take_nmi(struct vcpu *vcpu);
bool irqchip_take_init(struct vcpu *vcpu);
bool irqchip_take_sipi(struct vcpu *vcpu, uint8_t *vector);

/* The APIC base MSR and CR8/TPR as the CPU sees them. */
uint64_t irqchip_apic_base(struct vcpu *vcpu);
int irqchip_set_apic_base(struct vcpu *vcpu, uint64_t value);
uint8_t irqchip_get_tpr(struct vcpu *vcpu);	/* CR8 (TPR >> 4) */
void irqchip_set_tpr(struct vcpu *vcpu, uint8_t cr8);

#endif
