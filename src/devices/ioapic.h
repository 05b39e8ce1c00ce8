/*
 * The I/O APIC (24 pins, version 0x20 with the EOI register) at
 * GPA_IOAPIC.  Part of the software irqchip: functions are called with
 * the irqchip lock held.
 */
#ifndef TV_IOAPIC_H
#define TV_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#define IOAPIC_NPINS	24

struct irqchip;
struct ioapic;
struct device_ops;

extern const struct device_ops ioapic_device;

/* An IOAPIC at power-on state (all pins masked); NULL if out of memory. */
struct ioapic *ioapic_new(struct irqchip *ic);
void ioapic_free(struct ioapic *io);
/* Claim its MMIO page on vm->mmio; 0 or -errno. */
int ioapic_register(struct ioapic *io);
void ioapic_unregister(struct ioapic *io);

/* Drive pin (asserted = 1; the polarity bit is the wiring's business). */
void ioapic_set_irq(struct ioapic *io, unsigned pin, int level);
/* Has pin's last message not been taken by its CPU yet (its vector
 * still in a LAPIC's IRR, or a level entry awaiting EOI)? */
bool ioapic_pin_pending(const struct ioapic *io, unsigned pin);
/* A LAPIC's EOI of a level-triggered vector: clear remote IRR of the
 * entries with that vector, and resend those still asserted. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

#endif
