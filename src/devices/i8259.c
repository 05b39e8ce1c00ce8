/*
 * The 8259A pair, as a PC wires it: the slave's INT drives master IR2,
 * the master's INT goes to the CPU (through LAPIC LINT0 as ExtINT, or
 * straight in while the LAPIC is off; irqchip.c decides).  Edge or level
 * per line comes from the ELCR, as on PIIX/ICH chipsets.
 *
 * Priorities are kept as an offset (priority_add): line L has priority
 * (L - priority_add) & 7, 0 highest, so rotation is one assignment.
 */
#include "devices/i8259.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "devices/irqchip.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/log.h"

#define I8259_MASTER	0x20
#define I8259_SLAVE	0xa0
#define I8259_ELCR	0x4d0

struct i8259_chip {
	uint8_t irr;		/* requests latched */
	uint8_t isr;		/* in service */
	uint8_t imr;		/* masked */
	uint8_t lines;		/* input levels, for edge detection */
	uint8_t elcr;		/* 1 = level-triggered line */
	uint8_t elcr_mask;	/* lines whose trigger mode may change */
	uint8_t priority_add;	/* line with the highest priority */
	uint8_t irq_base;	/* ICW2 vector base */
	uint8_t init_state;	/* 0 ready, 1-3: expecting ICW2-4 */
	bool read_isr;		/* OCW3 RR/RIS: read ISR instead of IRR */
	bool poll;		/* OCW3 P: the next read is a poll */
	bool auto_eoi;
	bool rotate_auto_eoi;
	bool sfnm;		/* special fully nested mode */
	bool init4;		/* ICW4 expected */
	bool single;		/* no cascade (ICW1 SNGL) */
};

struct i8259 {
	struct irqchip *ic;
	struct i8259_chip c[2];	/* 0 master, 1 slave */
	bool output;		/* master INT as last reported */
	bool registered[3];
};

static const uint16_t i8259_ports[3] = { I8259_MASTER, I8259_SLAVE,
    I8259_ELCR };

/* Priority (0 best) of the best line in mask, or 8 if mask is empty. */
static int
i8259_priority(const struct i8259_chip *c, uint8_t mask)
{
	int prio = 0;

	if (mask == 0)
		return 8;
	while ((mask & (1u << ((prio + c->priority_add) & 7))) == 0)
		prio++;
	return prio;
}

/* The line this chip would raise INT for, or -1. */
static int
i8259_chip_irq(const struct i8259_chip *c, bool master)
{
	uint8_t in_service = c->isr;
	int req, cur;

	req = i8259_priority(c, c->irr & ~c->imr);
	if (req == 8)
		return -1;
	/* In special fully nested mode the slave may interrupt its own
	 * in-service request on the master (more slave lines). */
	if (master && c->sfnm)
		in_service &= ~(1u << 2);
	cur = i8259_priority(c, in_service);
	if (req >= cur)
		return -1;
	return (req + c->priority_add) & 7;
}

static void
i8259_chip_line(struct i8259_chip *c, unsigned line, int level)
{
	uint8_t m = 1u << line;

	if (c->elcr & m) {
		/* Level: the request follows the line. */
		if (level)
			c->irr |= m;
		else
			c->irr &= ~m;
	} else if (level && !(c->lines & m)) {
		/* Edge: latched on the rising edge and kept until INTA
		 * (a pulse raised and lowered at once still counts). */
		c->irr |= m;
	}
	if (level)
		c->lines |= m;
	else
		c->lines &= ~m;
}

/* Propagate slave INT to master IR2 and master INT to the CPU side. */
static void
i8259_update(struct i8259 *p)
{
	bool out;

	/* The cascade input is a request while the slave's INT is high:
	 * a slave request that goes away takes master IR2 with it. */
	if (i8259_chip_irq(&p->c[1], false) >= 0)
		p->c[0].irr |= 1u << 2;
	else
		p->c[0].irr &= ~(1u << 2);
	out = i8259_chip_irq(&p->c[0], true) >= 0;
	if (out != p->output) {
		p->output = out;
		if (p->ic != NULL)
			irqchip_pic_changed(p->ic);
	}
}

void
i8259_set_irq(struct i8259 *p, unsigned irq, int level)
{
	if (irq >= 16 || irq == 2)
		return;
	i8259_chip_line(&p->c[irq >> 3], irq & 7, level);
	i8259_update(p);
}

bool
i8259_irq_pending(const struct i8259 *p, unsigned irq)
{
	const struct i8259_chip *c = &p->c[(irq >> 3) & 1];
	uint8_t m = 1u << (irq & 7);

	return (c->irr & ~c->imr & m) != 0;
}

bool
i8259_output(const struct i8259 *p)
{
	return p->output;
}

/* The chip's side of INTA for line: in service unless auto-EOI. */
static void
i8259_chip_ack(struct i8259_chip *c, int line)
{
	if (c->auto_eoi) {
		if (c->rotate_auto_eoi)
			c->priority_add = (line + 1) & 7;
	} else {
		c->isr |= 1u << line;
	}
	/* A level request stays while its line is high. */
	if (!(c->elcr & (1u << line)))
		c->irr &= ~(1u << line);
}

/* INTA without the update, for the poll command too. */
static int
i8259_inta_nolock(struct i8259 *p)
{
	int irq = i8259_chip_irq(&p->c[0], true), irq2, vec;

	if (irq < 0)	/* the request vanished: spurious IRQ 7 */
		return p->c[0].irq_base + 7;
	if (irq == 2 && !p->c[0].single) {
		irq2 = i8259_chip_irq(&p->c[1], false);
		if (irq2 >= 0)
			i8259_chip_ack(&p->c[1], irq2);
		else
			irq2 = 7;	/* spurious IRQ 15 */
		vec = p->c[1].irq_base + irq2;
	} else {
		vec = p->c[0].irq_base + irq;
	}
	i8259_chip_ack(&p->c[0], irq);
	return vec;
}

int
i8259_inta(struct i8259 *p)
{
	int vec = i8259_inta_nolock(p);

	i8259_update(p);
	return vec;
}

/* Power-on state of one chip, also what ICW1 does (it keeps ELCR and
 * level requests, and clears the mask, as the datasheet says). */
static void
i8259_chip_init(struct i8259_chip *c)
{
	uint8_t elcr = c->elcr, elcr_mask = c->elcr_mask;
	uint8_t irr = c->irr & c->elcr;

	*c = (struct i8259_chip){ 0 };
	c->elcr = elcr;
	c->elcr_mask = elcr_mask;
	c->irr = irr;
}

static void
i8259_eoi(struct i8259_chip *c, int line, bool rotate)
{
	if (line < 0) {
		int prio = i8259_priority(c, c->isr);

		if (prio == 8)
			return;		/* EOI with nothing in service */
		line = (prio + c->priority_add) & 7;
	}
	c->isr &= ~(1u << line);
	if (rotate)
		c->priority_add = (line + 1) & 7;
}

static void
i8259_write_cmd(struct i8259 *p, struct i8259_chip *c, uint8_t v)
{
	if (v & 0x10) {			/* ICW1 */
		if (v & 0x08)
			log_guest_once("i8259: LTIM (all-level) ignored");
		i8259_chip_init(c);
		c->init_state = 1;
		c->single = v & 0x02;
		c->init4 = v & 0x01;
	} else if (v & 0x08) {		/* OCW3 */
		if (v & 0x04)
			c->poll = true;
		if (v & 0x02)
			c->read_isr = v & 0x01;
		if (v & 0x40)
			log_guest_once("i8259: special mask mode ignored");
	} else {			/* OCW2 */
		switch (v >> 5) {
		case 0:	c->rotate_auto_eoi = false; break;
		case 4:	c->rotate_auto_eoi = true; break;
		case 1:	i8259_eoi(c, -1, false); break;
		case 5:	i8259_eoi(c, -1, true); break;
		case 3:	i8259_eoi(c, v & 7, false); break;
		case 7:	i8259_eoi(c, v & 7, true); break;
		case 6:	c->priority_add = (v + 1) & 7; break;
		default: break;		/* 2: no operation */
		}
	}
	i8259_update(p);
}

static void
i8259_write_data(struct i8259 *p, struct i8259_chip *c, uint8_t v)
{
	switch (c->init_state) {
	case 0:				/* OCW1 */
		c->imr = v;
		break;
	case 1:				/* ICW2 */
		c->irq_base = v & 0xf8;
		c->init_state = c->single ? (c->init4 ? 3 : 0) : 2;
		break;
	case 2:				/* ICW3: the wiring is fixed */
		c->init_state = c->init4 ? 3 : 0;
		break;
	default:			/* ICW4 */
		if (!(v & 0x01))
			log_guest_once("i8259: 8080 mode ignored");
		c->auto_eoi = v & 0x02;
		c->sfnm = v & 0x10;
		c->init_state = 0;
		break;
	}
	i8259_update(p);
}

/* Poll command: INTA by a read, 0x80|line if there was a request. */
static uint8_t
i8259_poll(struct i8259 *p, int chip)
{
	struct i8259_chip *c = &p->c[chip];
	int line = i8259_chip_irq(c, chip == 0);

	c->poll = false;
	if (line < 0)
		return 0;
	i8259_chip_ack(c, line);
	i8259_update(p);
	return 0x80 | line;
}

static uint8_t
i8259_read(struct i8259 *p, int chip, unsigned a0)
{
	struct i8259_chip *c = &p->c[chip];

	if (c->poll)
		return i8259_poll(p, chip);
	if (a0)
		return c->imr;
	return c->read_isr ? c->isr : c->irr;
}

static void
i8259_byte(struct i8259 *p, int chip, unsigned a0, uint8_t *d, bool wr)
{
	if (chip == 2) {		/* ELCR */
		struct i8259_chip *c = &p->c[a0];

		if (wr) {
			c->elcr = *d & c->elcr_mask;
			i8259_update(p);
		} else {
			*d = c->elcr;
		}
	} else if (!wr) {
		*d = i8259_read(p, chip, a0);
	} else if (a0) {
		i8259_write_data(p, &p->c[chip], *d);
	} else {
		i8259_write_cmd(p, &p->c[chip], *d);
	}
}

/* Wider accesses are split into bytes, as the ISA bus would. */
static void
i8259_io(struct i8259 *p, int chip, uint64_t off, uint8_t *data,
    unsigned len, bool is_write)
{
	irqchip_lock(p->ic);
	for (unsigned i = 0; i < len; i++) {
		if (off + i < 2)
			i8259_byte(p, chip, off + i, &data[i], is_write);
		else if (!is_write)
			data[i] = 0xff;
	}
	irqchip_unlock(p->ic);
}

static void
i8259_master_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	i8259_io(opaque, 0, off, data, len, is_write);
}

static void
i8259_slave_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	i8259_io(opaque, 1, off, data, len, is_write);
}

static void
i8259_elcr_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	i8259_io(opaque, 2, off, data, len, is_write);
}

/* Power-on: uninitialized and fully masked, until the guest (or its
 * firmware) runs ICW1-4. */
static void
i8259_reset_nolock(struct i8259 *p)
{
	for (int i = 0; i < 2; i++) {
		struct i8259_chip *c = &p->c[i];

		*c = (struct i8259_chip){ 0 };
		c->imr = 0xff;
		/* IRQ 0, 1, 2, 8 and 13 are edge-only on PC chipsets. */
		c->elcr_mask = i == 0 ? 0xf8 : 0xde;
	}
	i8259_update(p);
}

struct i8259 *
i8259_new(struct irqchip *ic)
{
	struct i8259 *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	i8259_reset_nolock(p);
	p->ic = ic;
	return p;
}

void
i8259_free(struct i8259 *p)
{
	free(p);
}

int
i8259_register(struct i8259 *p)
{
	static bus_io_fn *const fns[3] = { i8259_master_io, i8259_slave_io,
	    i8259_elcr_io };
	static const char *const names[3] = { "i8259-master", "i8259-slave",
	    "elcr" };
	int err;

	for (int i = 0; i < 3; i++) {
		err = bus_register(p->ic->vm->pio, i8259_ports[i], 2, fns[i],
		    p, names[i]);
		if (err < 0)
			return err;
		p->registered[i] = true;
	}
	return 0;
}

void
i8259_unregister(struct i8259 *p)
{
	for (int i = 0; i < 3; i++) {
		if (p->registered[i])
			bus_unregister(p->ic->vm->pio, i8259_ports[i]);
		p->registered[i] = false;
	}
}

static void
i8259_reset(void *state)
{
	struct i8259 *p = state;

	irqchip_lock(p->ic);
	i8259_reset_nolock(p);
	irqchip_unlock(p->ic);
}

static void
i8259_snap_chip(struct snap *s, struct i8259_chip *c, const char *pfx)
{
	char n[32];
#define I8259_U8(f) do { snprintf(n, sizeof(n), "%s.%s", pfx, #f); \
		snap_u8(s, n, &c->f); } while (0)
#define I8259_BOOL(f) do { snprintf(n, sizeof(n), "%s.%s", pfx, #f); \
		snap_bool(s, n, &c->f); } while (0)
	I8259_U8(irr); I8259_U8(isr); I8259_U8(imr); I8259_U8(lines);
	I8259_U8(elcr); I8259_U8(priority_add); I8259_U8(irq_base);
	I8259_U8(init_state);
	I8259_BOOL(read_isr); I8259_BOOL(poll); I8259_BOOL(auto_eoi);
	I8259_BOOL(rotate_auto_eoi); I8259_BOOL(sfnm); I8259_BOOL(init4);
	I8259_BOOL(single);
#undef I8259_U8
#undef I8259_BOOL
	if (!snap_saving(s) && c->init_state > 3)
		snap_fail(s, -EINVAL, "i8259: bad init state %u",
		    c->init_state);
	c->elcr &= c->elcr_mask;
	c->priority_add &= 7;
	c->irq_base &= 0xf8;	/* vectors stay below 256 */
}

static int
i8259_snapshot(void *state, struct snap *s)
{
	struct i8259 *p = state;

	struct i8259_chip c[2];

	/* Loaded into a copy: a refused stream leaves the chip as it was. */
	irqchip_lock(p->ic);
	memcpy(c, p->c, sizeof(c));
	i8259_snap_chip(s, &c[0], "master");
	i8259_snap_chip(s, &c[1], "slave");
	if (!snap_saving(s) && snap_error(s) == 0) {
		memcpy(p->c, c, sizeof(c));
		i8259_update(p);
	}
	irqchip_unlock(p->ic);
	return snap_error(s);
}

const struct device_ops i8259_device = {
	.name = "i8259",
	.flags = DEV_SOFT_IRQCHIP,
	.snapshot = i8259_snapshot,
	.snapshot_version = 1,
	.reset = i8259_reset,
};
