/*
 * The 8254 programmable interval timer (ports 0x40-0x43) and the PC's
 * system control port B (0x61: channel 2 gate, speaker enable, OUT2 and
 * the refresh toggle).  Counters are computed from vclock_ns() at
 * 1.193182 MHz; only channel 0, which drives IRQ0, has a timer.  An
 * ordinary device under vm->devlock; IRQ0 goes to irqchip_set_irq().
 */
#ifndef TV_I8254_H
#define TV_I8254_H

#include <stdint.h>

#define I8254_HZ	1193182ull

struct irqchip;
struct i8254;
struct device_ops;

extern const struct device_ops i8254_device;

/* A PIT at power-on state; NULL if out of memory. */
struct i8254 *i8254_new(struct irqchip *ic);
void i8254_free(struct i8254 *p);
/* Claim ports 0x40-0x43 and 0x61 on vm->pio; 0 or -errno. */
int i8254_register(struct i8254 *p);
void i8254_unregister(struct i8254 *p);

#endif
