/*
 * The 8259A programmable interrupt controller pair of a PC: master at
 * ports 0x20-0x21, slave at 0xa0-0xa1 cascaded on master IRQ2, edge/level
 * control (ELCR) at 0x4d0-0x4d1.  Part of the software irqchip: every
 * function here is called with the irqchip lock held.
 */
#ifndef TV_I8259_H
#define TV_I8259_H

#include <stdbool.h>
#include <stdint.h>

struct irqchip;
struct i8259;
struct device_ops;

/* The instance ops (fini is the irqchip's; snapshot and reset here). */
extern const struct device_ops i8259_device;

/* Allocate a pair at power-on state; NULL if out of memory. */
struct i8259 *i8259_new(struct irqchip *ic);
void i8259_free(struct i8259 *p);
/* Claim the PIC and ELCR ports on vm->pio; 0 or -errno. */
int i8259_register(struct i8259 *p);
void i8259_unregister(struct i8259 *p);

/* Drive ISA line irq (0-15; 2 is the cascade and is ignored). */
void i8259_set_irq(struct i8259 *p, unsigned irq, int level);
/* The master's INT output: an unmasked request outranks the ISR. */
bool i8259_output(const struct i8259 *p);
/* Is a request latched on unmasked line irq, not yet acknowledged? */
bool i8259_irq_pending(const struct i8259 *p, unsigned irq);
/*
 * The INTA cycle: the vector of the highest-priority request, moving it
 * to in-service (or the spurious IRQ 7/15 vector when the request went
 * away).
 */
int i8259_inta(struct i8259 *p);

#endif
