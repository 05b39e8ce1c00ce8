/*
 * The 8254 PIT, after Intel's 8254 datasheet.  A channel keeps the time
 * its count was loaded (load_ns); the counter value and OUT are computed
 * from the ticks elapsed since then, so a guest polling the counter sees
 * it move with the virtual clock and nothing runs per tick.  Only
 * channel 0 arms a vtimer, at the next rising edge of OUT0 (IRQ0);
 * periodic edges a guest did not take in time are sent again later
 * (see i8254_periodic), so ticks counted by the guest keep up with time.
 *
 * Channel 2's gate and OUT2 live in port 0x61 (Linux calibrates the TSC
 * with them: gate high, mode 0, poll OUT2 or the counter's MSB).
 */
#include "devices/i8254.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "devices/irqchip.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/evloop.h"
#include "util/log.h"

#define I8254_PORT	0x40
#define I8254_PORT61	0x61
/* Shortest IRQ0 period really delivered: a count of 1 in mode 2 must
 * not turn the event loop into a 1.19 MHz spin. */
#define I8254_MIN_PERIOD_NS	20000ull
/* Periodic IRQ0 ticks owed at most (a second at HZ=250), and how often
 * to look whether the last one was taken while some are owed. */
#define I8254_OWED_MAX		250
#define I8254_POLL_NS		200000ull
/* DRAM refresh request period, toggling port 0x61 bit 4. */
#define I8254_REFRESH_NS	15085ull

enum { RW_LATCH, RW_LSB, RW_MSB, RW_WORD };

struct i8254_chan {
	uint32_t count;		/* reload value, binary (0 = maximum) */
	uint16_t latch;		/* latched counter value */
	bool latched;
	uint8_t status;
	bool status_latched;
	bool read_msb;		/* word access flip-flops */
	bool write_msb;
	uint8_t write_lsb;
	uint8_t rw_mode, mode;
	bool bcd;
	bool gate;
	bool null_count;	/* control word written, no count yet */
	bool loaded;		/* a count is counting */
	bool triggered;		/* modes 1, 5: a gate edge started it */
	bool frozen;		/* gate low stopped counting */
	uint64_t frozen_ticks;
	uint64_t load_ns;	/* when the current count started */
	uint64_t skip;		/* ticks after load_ns this count began */
	/* Modes 2 and 3: a count written while counting waits for the end
	 * of the current cycle (ticks since load_ns). */
	bool next_pending;
	uint32_t next_count;
	uint64_t next_at;
};

struct i8254 {
	struct irqchip *ic;
	struct vm *vm;
	struct i8254_chan ch[3];
	uint8_t port61;		/* bits 0-3 as written */
	bool irq0;		/* IRQ0 line level as last driven */
	bool irq0_done;		/* one-shot modes: this count fired */
	uint64_t irq0_next;	/* when the armed timer means to fire */
	uint64_t irq0_tick;	/* tick (since load_ns) of the next edge */
	uint32_t irq0_owed;	/* periodic edges not yet delivered */
	/* KVM's HPET-legacy flag, kept so a KVM guest's state comes back
	 * whole (no HPET here: only a VMM could have set it). */
	bool hpet_legacy;
	struct vtimer timer;
	bool registered[2];
};

/* --- time --- */

static uint64_t
i8254_ticks(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * I8254_HZ / 1000000000ull);
}

/* The first ns at which i8254_ticks() reaches t. */
static uint64_t
i8254_ns(uint64_t t)
{
	return (uint64_t)(((unsigned __int128)t * 1000000000ull +
	    I8254_HZ - 1) / I8254_HZ);
}

static uint32_t
i8254_modulus(const struct i8254_chan *c)
{
	return c->bcd ? 10000 : 0x10000;
}

/* The reload value as a count of ticks (0 means the maximum). */
static uint64_t
i8254_n(const struct i8254_chan *c)
{
	return c->count == 0 ? i8254_modulus(c) : c->count;
}

static bool
i8254_waits_trigger(const struct i8254_chan *c)
{
	return (c->mode == 1 || c->mode == 5) && !c->triggered;
}

/* Ticks since load_ns (at least skip). */
static uint64_t
i8254_raw(const struct i8254_chan *c, uint64_t now)
{
	uint64_t t = now > c->load_ns ? i8254_ticks(now - c->load_ns) : 0;

	return t > c->skip ? t : c->skip;
}

/* Ticks counted since the load (frozen while the gate holds it). */
static uint64_t
i8254_elapsed(const struct i8254_chan *c, uint64_t now)
{
	if (!c->loaded || i8254_waits_trigger(c))
		return 0;
	if (c->frozen)
		return c->frozen_ticks;
	return i8254_raw(c, now) - c->skip;
}

/* Let a count written mid-cycle take over once its cycle ended. */
static void
i8254_settle(struct i8254_chan *c, uint64_t now)
{
	if (!c->next_pending || c->frozen || i8254_raw(c, now) < c->next_at)
		return;
	c->count = c->next_count;
	c->skip = c->next_at;	/* tick-exact: no rounding through ns */
	c->next_pending = false;
}

/* --- counter value and OUT --- */

static uint32_t
i8254_value(const struct i8254_chan *c, uint64_t now)
{
	uint64_t n = i8254_n(c), d = i8254_elapsed(c, now);
	uint32_t mod = i8254_modulus(c);

	switch (c->mode) {
	case 2:
		return (uint32_t)(n - d % n) % mod;
	case 3:
		return (uint32_t)((n - (2 * d) % n) % mod) & 0xfffe;
	default:	/* 0, 1, 4, 5: count down through zero and wrap */
		return (uint32_t)((n + mod - d % mod) % mod);
	}
}

static bool
i8254_out(const struct i8254_chan *c, uint64_t now)
{
	uint64_t n = i8254_n(c), d = i8254_elapsed(c, now);

	if (!c->loaded)
		/* Mode 0 goes low at the control word. */
		return c->mode != 0;
	switch (c->mode) {
	case 0:
		return d >= n;
	case 1:
		return !c->triggered || d >= n;
	case 2:
		return c->frozen || d % n != n - 1;
	case 3:
		return c->frozen || d % n < (n + 1) / 2;
	default:	/* 4, 5: one tick low at the terminal count */
		return i8254_waits_trigger(c) || d != n;
	}
}

static uint16_t
i8254_to_bcd(uint32_t v)
{
	return (uint16_t)((v % 10) | (v / 10 % 10) << 4 |
	    (v / 100 % 10) << 8 | (v / 1000 % 10) << 12);
}

static uint32_t
i8254_from_bcd(uint16_t v)
{
	/* Digits above 9 are the guest's problem: take them at face value. */
	return (v & 0xf) + ((v >> 4) & 0xf) * 10 + ((v >> 8) & 0xf) * 100 +
	    ((v >> 12) & 0xf) * 1000;
}

static uint16_t
i8254_output_value(const struct i8254_chan *c, uint64_t now)
{
	uint32_t v = i8254_value(c, now);

	return c->bcd ? i8254_to_bcd(v) : (uint16_t)v;
}

/* --- IRQ0 --- */

static void
i8254_irq0(struct i8254 *p, bool level)
{
	if (p->irq0 == level)
		return;
	p->irq0 = level;
	if (p->ic != NULL)
		irqchip_set_irq(p->vm, 0, level);
}

static void
i8254_pulse(struct i8254 *p)
{
	i8254_irq0(p, false);
	i8254_irq0(p, true);
	i8254_irq0(p, false);
}

/* Arm channel 0's timer for the next rising edge of OUT0, if any. */
static void
i8254_arm(struct i8254 *p, uint64_t now)
{
	struct i8254_chan *c = &p->ch[0];
	uint64_t n = i8254_n(c), d, k, t;

	i8254_settle(c, now);
	if (!c->loaded || c->frozen || i8254_waits_trigger(c)) {
		vtimer_cancel(&p->timer);
		return;
	}
	d = i8254_elapsed(c, now);
	if (c->mode == 2 || c->mode == 3) {
		k = d / n + 1;
		p->irq0_tick = c->skip + k * n;
		t = c->load_ns + i8254_ns(p->irq0_tick);
		if (i8254_ns(n) < I8254_MIN_PERIOD_NS &&
		    t < now + I8254_MIN_PERIOD_NS)
			t = now + I8254_MIN_PERIOD_NS;
		/* Owing ticks: look again soon whether the last was taken. */
		if (p->irq0_owed != 0 && t > now + I8254_POLL_NS)
			t = now + I8254_POLL_NS;
	} else if (!p->irq0_done) {
		t = c->load_ns + i8254_ns(c->skip + n);
	} else {
		vtimer_cancel(&p->timer);
		return;
	}
	/* Never at or before now: a due timer that re-arms itself for the
	 * past would keep evloop_run_timers() from returning. */
	if (t <= now)
		t = now + 1;
	p->irq0_next = t;
	vtimer_arm(&p->timer, t);
}

/*
 * A periodic edge (or a look for a chance to send an owed one).  Edges
 * the guest did not take in time (interrupts off for longer than a tick
 * on a slow CPU, or a late host thread) are owed and sent one at a time
 * once the last was taken, as KVM re-injects PIT ticks: a guest counting
 * ticks (jiffies before the LAPIC timer takes over) keeps time with the
 * TSC.  Fast rates (below the poll interval) just coalesce.
 */
static void
i8254_periodic(struct i8254 *p, uint64_t now)
{
	struct i8254_chan *c = &p->ch[0];
	uint64_t n = i8254_n(c), raw = i8254_raw(c, now), owed;

	if (i8254_ns(n) < I8254_POLL_NS) {
		p->irq0_owed = 0;
		i8254_pulse(p);
		return;
	}
	if (raw >= p->irq0_tick) {
		owed = p->irq0_owed + 1 + (raw - p->irq0_tick) / n;
		p->irq0_owed = owed > I8254_OWED_MAX ? I8254_OWED_MAX :
		    (uint32_t)owed;
	}
	if (p->irq0_owed != 0 && (p->ic == NULL ||
	    !irqchip_gsi_pending(p->vm, 0))) {
		p->irq0_owed--;
		i8254_pulse(p);
	}
}

static void
i8254_timer_fire(void *opaque)
{
	struct i8254 *p = opaque;
	struct i8254_chan *c = &p->ch[0];
	uint64_t now = vclock_ns();

	i8254_settle(c, now);
	/* Re-armed or reprogrammed since it fell due: nothing to do. */
	if (vtimer_armed(&p->timer) || !c->loaded || c->frozen ||
	    i8254_waits_trigger(c))
		return;
	if (now < p->irq0_next) {
		i8254_arm(p, now);
		return;
	}
	switch (c->mode) {
	case 0:
	case 1:
		if (!p->irq0_done)
			i8254_irq0(p, true);	/* OUT stays high */
		p->irq0_done = true;
		break;
	case 4:
	case 5:
		if (!p->irq0_done)
			i8254_pulse(p);
		p->irq0_done = true;
		break;
	case 2:
	case 3:
		i8254_periodic(p, now);
		break;
	default:
		break;
	}
	i8254_arm(p, now);
}

/* Channel 0 was (re)programmed: OUT0 starts low (mode 0) or is
 * modelled by pulses (the others), so IRQ0 drops; then a new timer. */
static void
i8254_chan0_changed(struct i8254 *p, uint64_t now)
{
	p->irq0_done = false;
	p->irq0_owed = 0;
	i8254_irq0(p, false);
	i8254_arm(p, now);
}

/* --- programming --- */

static void
i8254_load(struct i8254 *p, int i, uint32_t count)
{
	struct i8254_chan *c = &p->ch[i];
	uint64_t now = vclock_ns();
	uint32_t n = c->bcd ? i8254_from_bcd((uint16_t)count) : count;

	i8254_settle(c, now);
	if (c->loaded && !c->frozen && (c->mode == 2 || c->mode == 3)) {
		uint64_t per = i8254_n(c), d = i8254_elapsed(c, now);

		c->next_count = n;
		c->next_at = c->skip + (d / per + 1) * per;
		c->next_pending = true;
		c->null_count = false;
		return;
	}
	c->next_pending = false;
	c->count = n;
	c->loaded = true;
	c->null_count = false;
	c->load_ns = now;
	c->skip = 0;
	c->frozen = false;
	/* Counting needs the gate in modes 0, 2, 3 and 4. */
	if (!c->gate && c->mode != 1 && c->mode != 5) {
		c->frozen = true;
		c->frozen_ticks = 0;
	}
	if (i == 0)
		i8254_chan0_changed(p, now);
}

static void
i8254_write_count(struct i8254 *p, int i, uint8_t v)
{
	struct i8254_chan *c = &p->ch[i];

	switch (c->rw_mode) {
	case RW_LSB:
		i8254_load(p, i, v);
		break;
	case RW_MSB:
		i8254_load(p, i, (uint32_t)v << 8);
		break;
	default:
		if (!c->write_msb) {
			c->write_lsb = v;
			c->write_msb = true;
			/* Mode 0: the first byte stops the count, OUT low. */
			if (c->mode == 0 && c->loaded) {
				c->loaded = false;
				if (i == 0)
					i8254_chan0_changed(p, vclock_ns());
			}
		} else {
			c->write_msb = false;
			i8254_load(p, i, c->write_lsb | (uint32_t)v << 8);
		}
		break;
	}
}

static uint8_t
i8254_read_count(struct i8254 *p, int i)
{
	struct i8254_chan *c = &p->ch[i];
	uint16_t v;
	bool msb;

	if (c->status_latched) {
		c->status_latched = false;
		return c->status;
	}
	i8254_settle(c, vclock_ns());
	v = c->latched ? c->latch : i8254_output_value(c, vclock_ns());
	if (c->rw_mode == RW_WORD) {
		msb = c->read_msb;
		c->read_msb = !c->read_msb;
	} else {
		msb = c->rw_mode == RW_MSB;
	}
	/* A latch holds until all of it has been read. */
	if (c->rw_mode != RW_WORD || msb)
		c->latched = false;
	return msb ? v >> 8 : v & 0xff;
}

static void
i8254_latch_count(struct i8254_chan *c)
{
	if (c->latched)
		return;		/* the first latch wins until read */
	i8254_settle(c, vclock_ns());
	c->latch = i8254_output_value(c, vclock_ns());
	c->latched = true;
}

static void
i8254_latch_status(struct i8254_chan *c)
{
	if (c->status_latched)
		return;
	i8254_settle(c, vclock_ns());
	c->status = (i8254_out(c, vclock_ns()) ? 0x80 : 0) |
	    (c->null_count ? 0x40 : 0) | c->rw_mode << 4 | c->mode << 1 |
	    (c->bcd ? 1 : 0);
	c->status_latched = true;
}

static void
i8254_control(struct i8254 *p, uint8_t v)
{
	unsigned sc = v >> 6, rw = (v >> 4) & 3;
	struct i8254_chan *c;

	if (sc == 3) {			/* read-back */
		for (int i = 0; i < 3; i++) {
			if (!(v & (2u << i)))
				continue;
			if (!(v & 0x20))
				i8254_latch_count(&p->ch[i]);
			if (!(v & 0x10))
				i8254_latch_status(&p->ch[i]);
		}
		return;
	}
	c = &p->ch[sc];
	if (rw == RW_LATCH) {
		i8254_latch_count(c);
		return;
	}
	c->rw_mode = rw;
	c->mode = (v >> 1) & 7;
	if (c->mode > 5)
		c->mode -= 4;		/* 6 and 7 are 2 and 3 */
	c->bcd = v & 1;
	c->read_msb = c->write_msb = false;
	c->latched = c->status_latched = false;
	c->null_count = true;
	c->loaded = false;
	c->triggered = false;
	c->next_pending = false;
	if (sc == 0)
		i8254_chan0_changed(p, vclock_ns());
}

/* Gate input (only channel 2's is wired to anything: port 0x61). */
static void
i8254_set_gate(struct i8254 *p, int i, bool gate)
{
	struct i8254_chan *c = &p->ch[i];
	uint64_t now = vclock_ns();

	if (gate == c->gate)
		return;
	i8254_settle(c, now);
	if (!gate) {
		/* Modes 0, 2, 3, 4 stop counting while the gate is low. */
		if (c->loaded && c->mode != 1 && c->mode != 5 && !c->frozen) {
			c->frozen_ticks = i8254_elapsed(c, now);
			c->frozen = true;
		}
	} else if (c->loaded) {
		if (c->mode == 0 || c->mode == 4) {
			/* Resume where it stopped. */
			c->load_ns = now - i8254_ns(c->frozen_ticks);
			c->skip = 0;
		} else {
			/* 2, 3 reload; 1, 5 (re)trigger on the rising edge. */
			if (c->next_pending)
				c->count = c->next_count;
			c->next_pending = false;
			c->load_ns = now;
			c->skip = 0;
			c->triggered = true;
		}
		c->frozen = false;
	}
	c->gate = gate;
	if (i == 0)
		i8254_chan0_changed(p, now);
}

/* --- bus handlers --- */

static void
i8254_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct i8254 *p = opaque;

	for (unsigned k = 0; k < len; k++) {
		unsigned port = (unsigned)off + k;

		if (port > 3) {
			if (!is_write)
				data[k] = 0xff;
		} else if (port == 3) {
			/* The control register cannot be read. */
			if (is_write)
				i8254_control(p, data[k]);
			else
				data[k] = 0xff;
		} else if (is_write) {
			i8254_write_count(p, port, data[k]);
		} else {
			data[k] = i8254_read_count(p, port);
		}
	}
}

static uint8_t
i8254_port61_read(struct i8254 *p)
{
	uint64_t now = vclock_ns();
	uint8_t v = p->port61 & 0x0f;

	i8254_settle(&p->ch[2], now);
	if ((now / I8254_REFRESH_NS) & 1)
		v |= 0x10;
	if (i8254_out(&p->ch[2], now))
		v |= 0x20;
	return v;
}

static void
i8254_port61_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct i8254 *p = opaque;

	if (is_write) {
		p->port61 = data[0] & 0x0f;
		i8254_set_gate(p, 2, data[0] & 1);
	} else {
		data[0] = i8254_port61_read(p);
		for (unsigned k = 1; k < len; k++)
			data[k] = 0xff;
	}
}

/* --- life cycle --- */

static void
i8254_reset(void *state)
{
	struct i8254 *p = state;

	vtimer_cancel(&p->timer);
	for (int i = 0; i < 3; i++) {
		struct i8254_chan *c = &p->ch[i];

		/* Mode 3 with no count yet: quiet until programmed. */
		*c = (struct i8254_chan){ .rw_mode = RW_WORD, .mode = 3,
		    .gate = i != 2 };
	}
	p->port61 = 0;
	p->irq0_done = false;
	p->irq0_owed = 0;
	i8254_irq0(p, false);
}

struct i8254 *
i8254_new(struct irqchip *ic)
{
	struct i8254 *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->vm = ic->vm;
	vtimer_init(&p->timer, ic->vm->loop, i8254_timer_fire, p);
	i8254_reset(p);
	p->ic = ic;
	return p;
}

void
i8254_free(struct i8254 *p)
{
	if (p == NULL)
		return;
	vtimer_cancel(&p->timer);
	free(p);
}

int
i8254_register(struct i8254 *p)
{
	int err;

	err = bus_register(p->vm->pio, I8254_PORT, 4, i8254_io, p, "i8254");
	if (err < 0)
		return err;
	p->registered[0] = true;
	err = bus_register(p->vm->pio, I8254_PORT61, 1, i8254_port61_io, p,
	    "port61");
	if (err < 0)
		return err;
	p->registered[1] = true;
	return 0;
}

void
i8254_unregister(struct i8254 *p)
{
	if (p->registered[0])
		bus_unregister(p->vm->pio, I8254_PORT);
	if (p->registered[1])
		bus_unregister(p->vm->pio, I8254_PORT61);
	p->registered[0] = p->registered[1] = false;
}

static void
i8254_snap_chan(struct snap *s, struct i8254_chan *c, int i, uint64_t now)
{
	/* Load time relative to now: the clock base is per process and
	 * time stands still while the VM is stopped. */
	uint64_t since = now > c->load_ns ? now - c->load_ns : 0;
	char n[40];

#define I8254_F(fn, f) do { snprintf(n, sizeof(n), "ch%d.%s", i, #f); \
		fn(s, n, &c->f); } while (0)
	I8254_F(snap_u32, count); I8254_F(snap_u16, latch);
	I8254_F(snap_bool, latched); I8254_F(snap_u8, status);
	I8254_F(snap_bool, status_latched); I8254_F(snap_bool, read_msb);
	I8254_F(snap_bool, write_msb); I8254_F(snap_u8, write_lsb);
	I8254_F(snap_u8, rw_mode); I8254_F(snap_u8, mode);
	I8254_F(snap_bool, bcd); I8254_F(snap_bool, gate);
	I8254_F(snap_bool, null_count); I8254_F(snap_bool, loaded);
	I8254_F(snap_bool, triggered); I8254_F(snap_bool, frozen);
	I8254_F(snap_u64, frozen_ticks);
	I8254_F(snap_bool, next_pending); I8254_F(snap_u32, next_count);
	I8254_F(snap_u64, next_at); I8254_F(snap_u64, skip);
#undef I8254_F
	snprintf(n, sizeof(n), "ch%d.since", i);
	snap_u64(s, n, &since);

	if (snap_saving(s) || snap_error(s) != 0)
		return;
	if (c->mode > 5 || c->rw_mode > 3 || c->count > 0xffff ||
	    c->next_count > 0xffff)
		snap_fail(s, -EINVAL, "i8254: channel %d: bad mode", i);
	/* Tick offsets must lie within the time that passed. */
	if (c->skip > i8254_ticks(since) ||
	    (c->next_pending && c->next_at > c->skip + 2 * 0x10000))
		snap_fail(s, -EINVAL, "i8254: channel %d: bad timing", i);
	c->load_ns = now - (since < now ? since : now);
}

static int
i8254_snapshot(void *state, struct snap *s)
{
	struct i8254 *p = state;
	uint64_t now = vclock_ns();
	struct i8254_chan ch[3];
	uint8_t port61 = p->port61;
	bool irq0 = p->irq0, done = p->irq0_done;
	uint32_t owed = p->irq0_owed;
	uint8_t hpet = p->hpet_legacy;

	/* Loaded into copies: a refused stream leaves the PIT as it was. */
	memcpy(ch, p->ch, sizeof(ch));
	for (int i = 0; i < 3; i++)
		i8254_snap_chan(s, &ch[i], i, now);
	snap_u8(s, "port61", &port61);
	snap_bool(s, "irq0", &irq0);
	snap_bool(s, "irq0_done", &done);
	snap_u32(s, "irq0_owed", &owed);
	snap_bytes_since(s, "hpet_legacy", &hpet, 1, 2);
	if (!snap_saving(s) && snap_error(s) == 0 && owed > I8254_OWED_MAX)
		snap_fail(s, -EINVAL, "i8254: %u IRQ0 ticks owed", owed);
	if (!snap_saving(s) && snap_error(s) == 0 && hpet > 1)
		snap_fail(s, -EINVAL, "i8254: bad hpet_legacy");
	if (!snap_saving(s) && snap_error(s) == 0) {
		memcpy(p->ch, ch, sizeof(ch));
		p->port61 = port61 & 0x0f;
		p->irq0_done = done;
		p->irq0_owed = owed;
		p->hpet_legacy = hpet;
		i8254_irq0(p, irq0);
		i8254_arm(p, now);
	}
	return snap_error(s);
}

const struct device_ops i8254_device = {
	.name = "i8254",
	.flags = DEV_SOFT_IRQCHIP,
	.snapshot = i8254_snapshot,
	.snapshot_version = 2,	/* 2: hpet_legacy */
	.reset = i8254_reset,
};
