/*
 * The xAPIC local APIC.  Interrupt state (IRR/ISR/TMR, TPR/PPR) follows
 * the SDM's description of the local APIC; the timer is not a counter
 * ticking somewhere but a start time on the virtual clock, from which the
 * current count is computed on read and the expiry is armed on a vtimer
 * (so a masked timer still counts, for free).  Periodic ticks the guest
 * did not take in time are owed and handed over one per acknowledgement
 * (see lapic_timer_pay).
 *
 * Anything that changes what this vCPU may take recomputes the lock-free
 * "pending" summary the software CPU polls between blocks.
 */
#include "devices/lapic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "devices/i8259.h"
#include "devices/ioapic.h"
#include "devices/irqchip.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/log.h"

/* Register offsets in the xAPIC page. */
enum {
	LAPIC_ID = 0x20, LAPIC_VERSION = 0x30, LAPIC_TPR = 0x80,
	LAPIC_APR = 0x90, LAPIC_PPR = 0xa0, LAPIC_EOI = 0xb0,
	LAPIC_RRD = 0xc0, LAPIC_LDR = 0xd0, LAPIC_DFR = 0xe0,
	LAPIC_SVR = 0xf0, LAPIC_ISR = 0x100, LAPIC_TMR = 0x180,
	LAPIC_IRR = 0x200, LAPIC_ESR = 0x280, LAPIC_CMCI = 0x2f0,
	LAPIC_ICR_LO = 0x300, LAPIC_ICR_HI = 0x310, LAPIC_LVT0 = 0x320,
	LAPIC_TIMER_ICR = 0x380, LAPIC_TIMER_CCR = 0x390,
	LAPIC_TIMER_DCR = 0x3e0,
};

enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR };

#define LVT_MASKED	(1u << 16)
#define LVT_PERIODIC	(1u << 17)
#define SVR_ENABLE	(1u << 8)
#define ESR_SEND_ILLEGAL	(1u << 5)
#define ESR_RECV_ILLEGAL	(1u << 6)
#define ESR_ILLEGAL_REG		(1u << 7)

/* Integrated APIC (0x14) with LAPIC_NLVT entries, no EOI suppression. */
#define LAPIC_VERSION_VALUE	(0x14u | ((LAPIC_NLVT - 1) << 16))

/* Bits the guest may write in each LVT entry. */
static const uint32_t lapic_lvt_mask[LAPIC_NLVT] = {
	[LVT_TIMER] = 0x300ff,		/* vector, mask, periodic */
	[LVT_THERMAL] = 0x107ff,	/* vector, delivery mode, mask */
	[LVT_PERF] = 0x107ff,
	[LVT_LINT0] = 0x1a7ff,		/* + polarity, trigger */
	[LVT_LINT1] = 0x1a7ff,
	[LVT_ERROR] = 0x100ff,
};

/*
 * The timer's input clock: 1 GHz before the divider, as KVM's.  Linux
 * calibrates it against the PIT, so the value only has to be steady.
 */
#define LAPIC_BUS_NS	1
/* Shortest interval the periodic timer really fires at: a guest asking
 * for a nanosecond period must not turn the event loop into a spin. */
#define LAPIC_MIN_PERIOD_NS	100000ull
/* Periodic ticks owed at most (a second of HZ=250): beyond that a guest
 * that stood still is not flooded with its past. */
#define LAPIC_OWED_MAX		250

static void lapic_timer_arm(struct lapic *l, uint64_t now);
static void lapic_timer_pay(struct lapic *l);

/* --- 256-bit vector sets --- */

static int
lapic_highest(const uint32_t *set)
{
	for (int i = 7; i >= 0; i--)
		if (set[i] != 0)
			return i * 32 + 31 - __builtin_clz(set[i]);
	return -1;
}

static void
lapic_bit_set(uint32_t *set, unsigned v, bool on)
{
	if (on)
		set[v >> 5] |= 1u << (v & 31);
	else
		set[v >> 5] &= ~(1u << (v & 31));
}

static bool
lapic_bit(const uint32_t *set, unsigned v)
{
	return set[v >> 5] & (1u << (v & 31));
}

/* --- priority and the pending summary --- */

static bool
lapic_hw_enabled(const struct lapic *l)
{
	return l->base & APIC_BASE_ENABLE;
}

static bool
lapic_sw_enabled(const struct lapic *l)
{
	return lapic_hw_enabled(l) && (l->svr & SVR_ENABLE);
}

static uint32_t
lapic_ppr(const struct lapic *l)
{
	int isrv = lapic_highest(l->isr);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;

	return (l->tpr & 0xf0) >= isr_class ? l->tpr & 0xff : isr_class;
}

/* The IRR vector the CPU may take now, or -1. */
static int
lapic_deliverable(const struct lapic *l)
{
	int v;

	if (!lapic_sw_enabled(l))
		return -1;
	v = lapic_highest(l->irr);
	if (v < 0 || ((uint32_t)v & 0xf0) <= (lapic_ppr(l) & 0xf0))
		return -1;
	return v;
}

bool
lapic_in_irr(const struct lapic *l, uint8_t vector)
{
	return lapic_bit(l->irr, vector);
}

bool
lapic_accepts_pic(const struct lapic *l)
{
	uint32_t lint0 = l->lvt[LVT_LINT0];

	if (l->extint)
		return true;
	/* With its APIC off a CPU's INTR pin is the PIC's output; only
	 * the BSP's is wired to it (APs cannot run without an APIC). */
	if (!lapic_hw_enabled(l))
		return l->vcpu->id == 0;
	return !(lint0 & LVT_MASKED) && ((lint0 >> 8) & 7) == APIC_DM_EXTINT;
}

static bool
lapic_extint_ready(const struct lapic *l)
{
	return l->ic->pic != NULL && i8259_output(l->ic->pic) &&
	    lapic_accepts_pic(l);
}

void
lapic_update(struct lapic *l)
{
	bool now = lapic_extint_ready(l) || lapic_deliverable(l) >= 0;
	bool was = atomic_exchange_explicit(&l->pending, now,
	    memory_order_acq_rel);

	if (now && !was)
		irqchip_kick_later(l->ic, l->vcpu);
}

/* --- accepting messages --- */

static void lapic_accept(struct lapic *l, const struct lapic_msg *m);

/* Record an error; the error LVT reports it if unmasked and sane. */
static void
lapic_error(struct lapic *l, uint32_t bit)
{
	uint32_t lvt = l->lvt[LVT_ERROR];
	bool first = (l->esr_acc & bit) == 0;

	l->esr_acc |= bit;
	if (first && !(lvt & LVT_MASKED) && (lvt & 0xff) >= 16) {
		struct lapic_msg m = { .vector = lvt & 0xff };

		lapic_accept(l, &m);
	}
}

static void
lapic_accept_vector(struct lapic *l, uint8_t vector, bool level)
{
	if (!lapic_sw_enabled(l))
		return;	/* a disabled APIC takes only NMI/INIT/SIPI */
	if (vector < 16) {
		lapic_error(l, ESR_RECV_ILLEGAL);
		return;
	}
	lapic_bit_set(l->irr, vector, true);
	lapic_bit_set(l->tmr, vector, level);
	lapic_update(l);
	/* Every arrival that can be taken wakes the vCPU, not only the
	 * first: a CPU that went to sleep with one already pending (an
	 * interrupt shadow over its HLT) must not sleep through the rest. */
	if (atomic_load_explicit(&l->pending, memory_order_relaxed))
		irqchip_kick_later(l->ic, l->vcpu);
}

/* INIT: back to the INIT state, keeping ID and base (SDM 10.4.7.3). */
static void
lapic_init_state(struct lapic *l)
{
	l->tpr = l->ldr = l->esr = l->esr_acc = 0;
	l->icr_lo = l->icr_hi = 0;
	l->dfr = 0xffffffff;
	l->svr = 0xff;
	for (int i = 0; i < LAPIC_NLVT; i++)
		l->lvt[i] = LVT_MASKED;
	memset(l->irr, 0, sizeof(l->irr));
	memset(l->isr, 0, sizeof(l->isr));
	memset(l->tmr, 0, sizeof(l->tmr));
	l->extint = false;
	l->timer_icr = l->timer_dcr = 0;
	l->timer_start = vclock_ns();
	l->timer_fired = false;
	l->timer_seen = 0;
	l->timer_owed = 0;
	vtimer_cancel(&l->timer);
}

static void
lapic_accept(struct lapic *l, const struct lapic_msg *m)
{
	switch (m->mode) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
		lapic_accept_vector(l, m->vector, m->level);
		break;
	case APIC_DM_NMI:
		atomic_store(&l->nmi, true);
		irqchip_kick_later(l->ic, l->vcpu);
		break;
	case APIC_DM_INIT:
		lapic_init_state(l);
		/* A start-up from before this INIT (Linux sends two, the
		 * CPU takes one) must not restart the CPU after it. */
		atomic_store(&l->sipi, false);
		atomic_store(&l->init, true);
		lapic_update(l);
		irqchip_kick_later(l->ic, l->vcpu);
		break;
	case APIC_DM_STARTUP:
		atomic_store(&l->sipi_vector, m->vector);
		atomic_store(&l->sipi, true);
		irqchip_kick_later(l->ic, l->vcpu);
		break;
	case APIC_DM_EXTINT:
		l->extint = true;
		lapic_update(l);
		break;
	default:
		log_guest_once("lapic: delivery mode %u ignored", m->mode);
		break;
	}
}

/* --- the APIC bus --- */

static struct lapic *
lapic_of(struct irqchip *ic, int i)
{
	struct vcpu *v = ic->vm->vcpus[i];

	return v == NULL ? NULL : v->lapic;
}

static bool
lapic_match(const struct lapic *l, uint8_t dest, bool logical)
{
	uint8_t ldr = l->ldr >> 24;

	if (!lapic_hw_enabled(l))
		return false;
	if (dest == 0xff)
		return true;			/* broadcast */
	if (!logical)
		return dest == (l->id >> 24);
	if ((l->dfr >> 28) == 0xf)		/* flat model */
		return (ldr & dest) != 0;
	/* Cluster model: cluster in the high nibble, members below. */
	return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf) != 0;
}

/* Lowest priority: the matching LAPIC with the lowest PPR, rotating the
 * starting point so ties are shared out. */
static struct lapic *
lapic_lowest(struct irqchip *ic, const struct lapic_msg *m)
{
	struct lapic *best = NULL;
	int n = ic->vm->nvcpus;

	for (int k = 0; k < n; k++) {
		struct lapic *l = lapic_of(ic, (int)((ic->lowest_rr + k) % n));

		if (l == NULL || !lapic_sw_enabled(l) ||
		    !lapic_match(l, m->dest, m->logical))
			continue;
		if (best == NULL || lapic_ppr(l) < lapic_ppr(best))
			best = l;
	}
	ic->lowest_rr++;
	return best;
}

void
lapic_deliver(struct irqchip *ic, const struct lapic_msg *m)
{
	if (m->mode == APIC_DM_LOWEST) {
		struct lapic *l = lapic_lowest(ic, m);

		if (l != NULL)
			lapic_accept(l, m);
		return;
	}
	for (int i = 0; i < ic->vm->nvcpus; i++) {
		struct lapic *l = lapic_of(ic, i);

		if (l != NULL && lapic_match(l, m->dest, m->logical))
			lapic_accept(l, m);
	}
}

/* An ICR low write sends the IPI it describes. */
static void
lapic_send_ipi(struct lapic *l)
{
	uint32_t lo = l->icr_lo;
	struct lapic_msg m = {
		.vector = lo & 0xff, .mode = (lo >> 8) & 7,
		.logical = lo & (1u << 11), .level = false,
		.dest = l->icr_hi >> 24,
	};
	unsigned shorthand = (lo >> 18) & 3;

	/* INIT level de-assert only synchronizes arbitration IDs. */
	if (m.mode == APIC_DM_INIT && !(lo & (1u << 14)) && (lo & (1u << 15)))
		return;
	if ((m.mode == APIC_DM_FIXED || m.mode == APIC_DM_LOWEST) &&
	    m.vector < 16) {
		lapic_error(l, ESR_SEND_ILLEGAL);
		return;
	}
	if (shorthand == 0) {
		lapic_deliver(l->ic, &m);
		return;
	}
	if (m.mode == APIC_DM_LOWEST)
		m.mode = APIC_DM_FIXED;
	for (int i = 0; i < l->ic->vm->nvcpus; i++) {
		struct lapic *t = lapic_of(l->ic, i);

		if (t == NULL || !lapic_hw_enabled(t))
			continue;
		if ((shorthand == 1 && t != l) || (shorthand == 3 && t == l))
			continue;
		lapic_accept(t, &m);
	}
}

/* --- EOI and INTA --- */

static void
lapic_eoi(struct lapic *l)
{
	int v = lapic_highest(l->isr);

	if (v < 0)
		return;		/* EOI with nothing in service */
	lapic_bit_set(l->isr, v, false);
	/* Level-triggered: the IOAPIC clears remote IRR (and may resend). */
	if (lapic_bit(l->tmr, v) && l->ic->ioapic != NULL)
		ioapic_eoi(l->ic->ioapic, v);
	lapic_update(l);
}

int
lapic_ack(struct lapic *l)
{
	int v;

	if (lapic_extint_ready(l)) {
		l->extint = false;
		v = i8259_inta(l->ic->pic);
		lapic_update(l);
		return v;
	}
	v = lapic_deliverable(l);
	if (v >= 0) {
		lapic_bit_set(l->irr, v, false);
		lapic_bit_set(l->isr, v, true);
		/* The next owed tick waits in the IRR for this one's EOI. */
		if (l->timer_owed != 0 &&
		    (uint32_t)v == (l->lvt[LVT_TIMER] & 0xff))
			lapic_timer_pay(l);
	}
	lapic_update(l);
	return v;
}

/* --- the timer --- */

static unsigned
lapic_timer_div(const struct lapic *l)
{
	unsigned v = ((l->timer_dcr >> 1) & 4) | (l->timer_dcr & 3);

	return 1u << ((v + 1) & 7);	/* 0b111 is divide by 1 */
}

static uint64_t
lapic_timer_period(const struct lapic *l)
{
	return (uint64_t)l->timer_icr * lapic_timer_div(l) * LAPIC_BUS_NS;
}

static bool
lapic_timer_periodic(const struct lapic *l)
{
	return l->lvt[LVT_TIMER] & LVT_PERIODIC;
}

/* Timer ticks (after the divider) since the count was loaded. */
static uint64_t
lapic_timer_ticks(const struct lapic *l, uint64_t now)
{
	if (now <= l->timer_start)
		return 0;
	return (now - l->timer_start) / (lapic_timer_div(l) * LAPIC_BUS_NS);
}

static uint32_t
lapic_timer_ccr(const struct lapic *l)
{
	uint64_t t;

	if (l->timer_icr == 0)
		return 0;
	t = lapic_timer_ticks(l, vclock_ns());
	if (lapic_timer_periodic(l))
		return l->timer_icr - (uint32_t)(t % l->timer_icr);
	if (l->timer_fired || t >= l->timer_icr)
		return 0;
	return l->timer_icr - (uint32_t)t;
}

/* Whole periods since the count was loaded (periodic mode). */
static uint64_t
lapic_timer_periods(const struct lapic *l, uint64_t now)
{
	uint64_t period = lapic_timer_period(l);

	if (period == 0 || now <= l->timer_start)
		return 0;
	return (now - l->timer_start) / period;
}

/* Forget owed ticks and start accounting from now (a reprogrammed or
 * masked timer owes nothing). */
static void
lapic_timer_resync(struct lapic *l, uint64_t now)
{
	l->timer_seen = lapic_timer_periods(l, now);
	l->timer_owed = 0;
}

/*
 * Hand one owed tick to the IRR if the last one was taken.  Ticks the
 * guest missed (interrupts off for longer than a period, which a slow
 * software CPU makes common, or a late host thread) are delivered one
 * after another as each is acknowledged, as KVM re-injects PIT ticks:
 * a guest counting periodic ticks (jiffies) keeps time with the TSC.
 */
static void
lapic_timer_pay(struct lapic *l)
{
	uint32_t lvt = l->lvt[LVT_TIMER];

	if (l->timer_owed == 0 || (lvt & LVT_MASKED) ||
	    !lapic_timer_periodic(l)) {
		l->timer_owed = 0;
		return;
	}
	if (lapic_bit(l->irr, lvt & 0xff))
		return;
	l->timer_owed--;
	lapic_accept_vector(l, lvt & 0xff, false);
}

/* Arm the vtimer for the next expiry that can raise an interrupt. */
static void
lapic_timer_arm(struct lapic *l, uint64_t now)
{
	uint64_t period = lapic_timer_period(l), end, n;

	if (l->timer_icr == 0 || !lapic_hw_enabled(l)) {
		vtimer_cancel(&l->timer);
		return;
	}
	end = l->timer_start + period;
	if (!lapic_timer_periodic(l)) {
		/* Armed even when masked: a one-shot that runs out masked
		 * is spent, and unmasking it later must not fire it. */
		if (l->timer_fired)
			vtimer_cancel(&l->timer);
		else
			vtimer_arm(&l->timer, end > now ? end : now + 1);
		return;
	}
	if (l->lvt[LVT_TIMER] & LVT_MASKED) {
		/* Counts on (reads are computed), nothing to deliver. */
		vtimer_cancel(&l->timer);
		return;
	}
	n = now < l->timer_start ? 1 : (now - l->timer_start) / period + 1;
	end = l->timer_start + n * period;
	if (period < LAPIC_MIN_PERIOD_NS && end < now + LAPIC_MIN_PERIOD_NS)
		end = now + LAPIC_MIN_PERIOD_NS;
	/* Never at or before now, whatever the arithmetic did: a due timer
	 * re-armed for the past would spin evloop_run_timers(). */
	vtimer_arm(&l->timer, end > now ? end : now + 1);
}

static void
lapic_timer_fire(void *opaque)
{
	struct lapic *l = opaque;
	struct irqchip *ic = l->ic;
	uint64_t now = vclock_ns();
	uint32_t lvt;

	irqchip_lock(ic);
	/* Re-armed or stopped since it was due: that path decided. */
	if (vtimer_armed(&l->timer) || l->timer_icr == 0 ||
	    (!lapic_timer_periodic(l) && l->timer_fired))
		goto out;
	if (!lapic_timer_periodic(l)) {
		if (now < l->timer_start + lapic_timer_period(l)) {
			lapic_timer_arm(l, now);
			goto out;
		}
		l->timer_fired = true;
	}
	lvt = l->lvt[LVT_TIMER];
	if (lapic_timer_periodic(l)) {
		uint64_t k = lapic_timer_periods(l, now);

		if (k > l->timer_seen) {
			uint64_t owed = l->timer_owed + (k - l->timer_seen);

			l->timer_owed = owed > LAPIC_OWED_MAX ? LAPIC_OWED_MAX :
			    (uint32_t)owed;
			l->timer_seen = k;
		}
		lapic_timer_pay(l);
	} else if (!(lvt & LVT_MASKED)) {
		lapic_accept_vector(l, lvt & 0xff, false);
	}
	lapic_timer_arm(l, now);
out:
	irqchip_unlock(ic);
}

static void
lapic_timer_load(struct lapic *l, uint32_t count)
{
	l->timer_icr = count;
	l->timer_start = vclock_ns();
	l->timer_fired = false;
	lapic_timer_resync(l, l->timer_start);
	lapic_timer_arm(l, l->timer_start);
}

/* A new divider keeps the count where it is (the SDM leaves a change
 * mid-count undefined; this is the least surprising answer). */
static void
lapic_timer_set_div(struct lapic *l, uint32_t dcr)
{
	uint64_t now = vclock_ns();
	uint64_t done = lapic_timer_ticks(l, now);

	if (l->timer_icr != 0 && lapic_timer_periodic(l))
		done %= l->timer_icr;
	l->timer_dcr = dcr & 0xb;
	if (l->timer_icr != 0 && !l->timer_fired)
		l->timer_start = now - done * lapic_timer_div(l) * LAPIC_BUS_NS;
	lapic_timer_resync(l, now);
	lapic_timer_arm(l, now);
}

/* --- registers --- */

static uint32_t
lapic_read(struct lapic *l, unsigned reg)
{
	if (reg >= LAPIC_ISR && reg < LAPIC_ISR + 0x80)
		return l->isr[(reg - LAPIC_ISR) >> 4];
	if (reg >= LAPIC_TMR && reg < LAPIC_TMR + 0x80)
		return l->tmr[(reg - LAPIC_TMR) >> 4];
	if (reg >= LAPIC_IRR && reg < LAPIC_IRR + 0x80)
		return l->irr[(reg - LAPIC_IRR) >> 4];
	if (reg >= LAPIC_LVT0 && reg < LAPIC_LVT0 + 0x10 * LAPIC_NLVT)
		return l->lvt[(reg - LAPIC_LVT0) >> 4];
	switch (reg) {
	case LAPIC_ID:		return l->id;
	case LAPIC_VERSION:	return LAPIC_VERSION_VALUE;
	case LAPIC_TPR:		return l->tpr;
	case LAPIC_PPR:		return lapic_ppr(l);
	case LAPIC_LDR:		return l->ldr;
	case LAPIC_DFR:		return l->dfr;
	case LAPIC_SVR:		return l->svr;
	case LAPIC_ESR:		return l->esr;
	case LAPIC_ICR_LO:	return l->icr_lo;	/* delivery idle */
	case LAPIC_ICR_HI:	return l->icr_hi;
	case LAPIC_TIMER_ICR:	return l->timer_icr;
	case LAPIC_TIMER_CCR:	return lapic_timer_ccr(l);
	case LAPIC_TIMER_DCR:	return l->timer_dcr;
	default:		return 0;	/* APR, EOI, RRD, reserved */
	}
}

static bool
lapic_readonly(unsigned reg)
{
	switch (reg) {
	case LAPIC_VERSION: case LAPIC_APR: case LAPIC_PPR: case LAPIC_RRD:
	case LAPIC_TIMER_CCR:
		return true;
	default:
		/* ISR, TMR and IRR */
		return reg >= LAPIC_ISR && reg < LAPIC_ESR;
	}
}

static void
lapic_write_lvt(struct lapic *l, unsigned i, uint32_t v)
{
	uint32_t keep = l->lvt[i] & ~lapic_lvt_mask[i];

	v &= lapic_lvt_mask[i];
	if (!(l->svr & SVR_ENABLE))
		v |= LVT_MASKED;	/* software-disabled: masks stick */
	l->lvt[i] = keep | v;
	if (i == LVT_TIMER) {
		lapic_timer_resync(l, vclock_ns());
		lapic_timer_arm(l, vclock_ns());
	}
}

static void
lapic_write_svr(struct lapic *l, uint32_t v)
{
	l->svr = v & 0x3ff;
	if (!(l->svr & SVR_ENABLE)) {
		for (int i = 0; i < LAPIC_NLVT; i++)
			l->lvt[i] |= LVT_MASKED;
		lapic_timer_arm(l, vclock_ns());
	}
}

static void
lapic_write(struct lapic *l, unsigned reg, uint32_t v)
{
	if (reg >= LAPIC_LVT0 && reg < LAPIC_LVT0 + 0x10 * LAPIC_NLVT) {
		lapic_write_lvt(l, (reg - LAPIC_LVT0) >> 4, v);
		goto out;
	}
	switch (reg) {
	case LAPIC_ID:		l->id = v & 0xff000000; break;
	case LAPIC_TPR:		l->tpr = v & 0xff; break;
	case LAPIC_EOI:		lapic_eoi(l); break;
	case LAPIC_LDR:		l->ldr = v & 0xff000000; break;
	case LAPIC_DFR:		l->dfr = v | 0x0fffffff; break;
	case LAPIC_SVR:		lapic_write_svr(l, v); break;
	case LAPIC_ESR:
		l->esr = l->esr_acc;
		l->esr_acc = 0;
		break;
	case LAPIC_ICR_HI:	l->icr_hi = v & 0xff000000; break;
	case LAPIC_ICR_LO:
		/* Delivery is immediate: the status bit reads idle. */
		l->icr_lo = v & 0x000ccfff;
		lapic_send_ipi(l);
		break;
	case LAPIC_TIMER_ICR:	lapic_timer_load(l, v); break;
	case LAPIC_TIMER_DCR:	lapic_timer_set_div(l, v); break;
	case LAPIC_CMCI:	break;		/* not advertised */
	default:
		/* Read-only registers ignore writes; reserved ones are an
		 * illegal register address. */
		if (!lapic_readonly(reg)) {
			log_guest_once("lapic: write %#x to reserved register "
			    "%#x", v, reg);
			lapic_error(l, ESR_ILLEGAL_REG);
		}
		break;
	}
out:
	lapic_update(l);
}

void
lapic_mmio(struct lapic *l, uint64_t off, uint8_t *data, unsigned len,
    bool is_write)
{
	/* Registers sit at 16-byte strides, 32 bits each; the rest of
	 * each stride and the page beyond 0x400 are reserved. */
	unsigned reg = off < 0x400 ? (off & 0x3f0) : 0xff0, in = off & 0xf;
	uint64_t v;

	if (is_write) {
		/* Only aligned 32-bit stores are defined. */
		if (in != 0 || len < 4)
			log_guest_once("lapic: %u-byte write at %#llx ignored",
			    len, (unsigned long long)off);
		else
			lapic_write(l, reg, (uint32_t)bus_get(data, 4));
		return;
	}
	v = in < 4 ? (uint64_t)lapic_read(l, reg) >> (8 * in) : 0;
	bus_put(data, len, v);
}

/*
 * The software CPU's own path to its LAPIC (any thread, no lock held):
 * an access at gpa in vcpu's APIC page is done under the irqchip lock
 * alone.  The LAPIC needs no device lock (irqchip.h), and an EOI or a
 * timer write going through vm->devlock waits whenever the event thread
 * holds it for a device's pass (a NIC's sendmmsg, say).  False: gpa is
 * not in vcpu's APIC page (the caller takes the bus path).
 */
bool
lapic_cpu_mmio(struct vcpu *vcpu, uint64_t gpa, uint8_t *data, unsigned len,
    bool is_write)
{
	struct lapic *l = vcpu->lapic;
	bool hit;

	/* A cheap miss for every other MMIO access; a window moved
	 * meanwhile (INIT, reset) is caught by the check under the lock,
	 * and a miss takes the bus path, which checks again. */
	if (l == NULL || __atomic_load_n(&l->window, __ATOMIC_RELAXED) !=
	    (gpa & ~0xfffull) || (gpa & 0xfff) + len > 0x1000)
		return false;
	irqchip_lock(l->ic);
	hit = l->window == (gpa & ~0xfffull);
	if (hit)
		lapic_mmio(l, gpa & 0xfff, data, len, is_write);
	irqchip_unlock(l->ic);
	return hit;
}

/* --- the CPU side --- */

static void
lapic_window(struct lapic *l)
{
	uint64_t want = lapic_hw_enabled(l) ? l->base & ~0xfffull : 0;

	if (want == l->window)
		return;
	if (irqchip_apic_move(l->ic, l->window, want) < 0) {
		log_guest_once("lapic: cannot map the APIC page at %#llx",
		    (unsigned long long)want);
		want = 0;
	}
	l->window = want;
}

int
lapic_set_base(struct lapic *l, uint64_t v)
{
	/* Reserved bits, x2APIC (not advertised), above 52-bit physical. */
	if ((v & 0x2ff) || (v & APIC_BASE_EXTD) || (v >> 52) != 0)
		return -EINVAL;
	if (lapic_hw_enabled(l) != ((v & APIC_BASE_ENABLE) != 0))
		lapic_init_state(l);	/* on and off both reset it */
	l->base = v;
	lapic_window(l);
	lapic_update(l);
	return 0;
}

void
lapic_set_tpr(struct lapic *l, uint8_t tpr)
{
	l->tpr = tpr;
	lapic_update(l);
}

/* Power-on reset. */
static void
lapic_reset_nolock(struct lapic *l)
{
	bool bsp = l->vcpu->id == 0;

	l->id = (uint32_t)l->vcpu->id << 24;
	l->base = GPA_LAPIC | APIC_BASE_ENABLE | (bsp ? APIC_BASE_BSP : 0);
	lapic_init_state(l);
	/* The PIC reaches the BSP in virtual-wire mode from the start, as
	 * firmware would leave it (QEMU does the same): a kernel booted
	 * directly still gets its early PIT ticks. */
	if (bsp)
		l->lvt[LVT_LINT0] = APIC_DM_EXTINT << 8;
	atomic_store(&l->nmi, false);
	atomic_store(&l->init, false);
	atomic_store(&l->sipi, false);
	if (l->ic->vm->mmio != NULL)
		lapic_window(l);
	lapic_update(l);
}

struct lapic *
lapic_new(struct irqchip *ic, struct vcpu *vcpu)
{
	struct lapic *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->ic = ic;
	l->vcpu = vcpu;
	vtimer_init(&l->timer, ic->vm->loop, lapic_timer_fire, l);
	l->id = (uint32_t)vcpu->id << 24;
	l->base = GPA_LAPIC | APIC_BASE_ENABLE |
	    (vcpu->id == 0 ? APIC_BASE_BSP : 0);
	lapic_init_state(l);
	if (vcpu->id == 0)
		l->lvt[LVT_LINT0] = APIC_DM_EXTINT << 8;
	return l;
}

void
lapic_free(struct lapic *l)
{
	if (l == NULL)
		return;
	vtimer_cancel(&l->timer);
	free(l);
}

static void
lapic_reset(void *state)
{
	struct lapic *l = state;

	irqchip_lock(l->ic);
	lapic_reset_nolock(l);
	irqchip_unlock(l->ic);
}

static void
lapic_snap_set(struct snap *s, const char *name, uint32_t *set)
{
	char n[32];

	for (int i = 0; i < 8; i++) {
		snprintf(n, sizeof(n), "%s%d", name, i);
		snap_u32(s, n, &set[i]);
	}
}

/* The described state, kept apart from the live LAPIC so a load can be
 * checked whole before it replaces anything. */
struct lapic_snap {
	uint64_t base;
	uint32_t id, tpr, ldr, dfr, svr, esr, esr_acc, icr_lo, icr_hi;
	uint32_t lvt[LAPIC_NLVT], irr[8], isr[8], tmr[8];
	bool extint, timer_fired, nmi, init, sipi;
	uint32_t timer_icr, timer_dcr, timer_owed;
	uint64_t timer_seen;
	uint64_t timer_elapsed;
	uint8_t sipi_vector;
};

static void
lapic_snap_fields(struct snap *s, struct lapic_snap *x)
{
	char n[32];

	snap_u64(s, "base", &x->base);
	snap_u32(s, "id", &x->id);
	snap_u32(s, "tpr", &x->tpr);
	snap_u32(s, "ldr", &x->ldr);
	snap_u32(s, "dfr", &x->dfr);
	snap_u32(s, "svr", &x->svr);
	snap_u32(s, "esr", &x->esr);
	snap_u32(s, "esr_acc", &x->esr_acc);
	snap_u32(s, "icr_lo", &x->icr_lo);
	snap_u32(s, "icr_hi", &x->icr_hi);
	for (int i = 0; i < LAPIC_NLVT; i++) {
		snprintf(n, sizeof(n), "lvt%d", i);
		snap_u32(s, n, &x->lvt[i]);
	}
	lapic_snap_set(s, "irr", x->irr);
	lapic_snap_set(s, "isr", x->isr);
	lapic_snap_set(s, "tmr", x->tmr);
	snap_bool(s, "extint", &x->extint);
	snap_u32(s, "timer_icr", &x->timer_icr);
	snap_u32(s, "timer_dcr", &x->timer_dcr);
	/* Time relative to now: the new process has its own clock base,
	 * and time stands still while the VM is stopped. */
	snap_u64(s, "timer_elapsed", &x->timer_elapsed);
	snap_bool(s, "timer_fired", &x->timer_fired);
	snap_u64(s, "timer_seen", &x->timer_seen);
	snap_u32(s, "timer_owed", &x->timer_owed);
	snap_bool(s, "nmi", &x->nmi);
	snap_bool(s, "init", &x->init);
	snap_bool(s, "sipi", &x->sipi);
	snap_u8(s, "sipi_vector", &x->sipi_vector);
}

static void
lapic_snap_out(const struct lapic *l, struct lapic_snap *x, uint64_t now)
{
	x->base = l->base;
	x->id = l->id; x->tpr = l->tpr; x->ldr = l->ldr; x->dfr = l->dfr;
	x->svr = l->svr; x->esr = l->esr; x->esr_acc = l->esr_acc;
	x->icr_lo = l->icr_lo; x->icr_hi = l->icr_hi;
	memcpy(x->lvt, l->lvt, sizeof(x->lvt));
	memcpy(x->irr, l->irr, sizeof(x->irr));
	memcpy(x->isr, l->isr, sizeof(x->isr));
	memcpy(x->tmr, l->tmr, sizeof(x->tmr));
	x->extint = l->extint;
	x->timer_icr = l->timer_icr;
	x->timer_dcr = l->timer_dcr;
	x->timer_elapsed = now > l->timer_start ? now - l->timer_start : 0;
	x->timer_fired = l->timer_fired;
	x->timer_seen = l->timer_seen;
	x->timer_owed = l->timer_owed;
	x->nmi = atomic_load(&l->nmi);
	x->init = atomic_load(&l->init);
	x->sipi = atomic_load(&l->sipi);
	x->sipi_vector = atomic_load(&l->sipi_vector);
}

/* Loaded values go through the same masks as guest writes. */
static void
lapic_snap_in(struct lapic *l, const struct lapic_snap *x, uint64_t now)
{
	l->base = x->base;
	l->id = x->id & 0xff000000;
	l->tpr = x->tpr & 0xff;
	l->ldr = x->ldr & 0xff000000;
	l->dfr = x->dfr | 0x0fffffff;
	l->svr = x->svr & 0x3ff;
	l->esr = x->esr;
	l->esr_acc = x->esr_acc;
	l->icr_lo = x->icr_lo & 0x000ccfff;
	l->icr_hi = x->icr_hi & 0xff000000;
	for (int i = 0; i < LAPIC_NLVT; i++)
		l->lvt[i] = x->lvt[i] & (lapic_lvt_mask[i] | (1u << 12) |
		    (1u << 14));
	memcpy(l->irr, x->irr, sizeof(l->irr));
	memcpy(l->isr, x->isr, sizeof(l->isr));
	memcpy(l->tmr, x->tmr, sizeof(l->tmr));
	l->extint = x->extint;
	l->timer_icr = x->timer_icr;
	l->timer_dcr = x->timer_dcr & 0xb;
	l->timer_start = now - (x->timer_elapsed < now ? x->timer_elapsed :
	    now);
	l->timer_fired = x->timer_fired;
	l->timer_owed = x->timer_owed;
	/* Accounting cannot run ahead of the clock. */
	l->timer_seen = x->timer_seen;
	if (l->timer_seen > lapic_timer_periods(l, now))
		l->timer_seen = lapic_timer_periods(l, now);
	atomic_store(&l->nmi, x->nmi);
	atomic_store(&l->init, x->init);
	atomic_store(&l->sipi, x->sipi);
	atomic_store(&l->sipi_vector, x->sipi_vector);
}

static int
lapic_snapshot(void *state, struct snap *s)
{
	struct lapic *l = state;
	struct lapic_snap x;
	uint64_t now = vclock_ns();

	irqchip_lock(l->ic);
	lapic_snap_out(l, &x, now);
	lapic_snap_fields(s, &x);
	if (!snap_saving(s) && snap_error(s) == 0 &&
	    ((x.base & 0x6ff) || (x.base >> 52) != 0))
		snap_fail(s, -EINVAL, "lapic: bad APIC base %#llx",
		    (unsigned long long)x.base);
	if (!snap_saving(s) && snap_error(s) == 0 &&
	    x.timer_owed > LAPIC_OWED_MAX)
		snap_fail(s, -EINVAL, "lapic: %u timer ticks owed",
		    x.timer_owed);
	if (!snap_saving(s) && snap_error(s) == 0) {
		lapic_snap_in(l, &x, now);
		lapic_window(l);
		lapic_timer_arm(l, now);
		lapic_update(l);
	}
	irqchip_unlock(l->ic);
	return snap_error(s);
}

const struct device_ops lapic_device = {
	.name = "lapic",
	.flags = DEV_SOFT_IRQCHIP,
	.snapshot = lapic_snapshot,
	.snapshot_version = 1,
	.reset = lapic_reset,
};
