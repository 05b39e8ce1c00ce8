/*
 * MC146818 RTC and CMOS memory.
 *
 * The clock is not a counter that ticks: the guest's time is
 * base_sec + (vclock_ns() - base_ns) / 1e9, read whenever a time register
 * is read, so it follows the host's clock exactly and costs nothing while
 * nobody looks.  base_sec starts as the host's UTC time (Linux reads the
 * RTC at boot for the wall clock), with base_ns placed so the seconds
 * roll over when the host's do.  A guest that sets the time moves base.
 *
 * Flags are brought up to date lazily (on register C reads) and by one
 * timer, armed only while an interrupt is enabled: the next periodic tick
 * (rate from register A) or the next second (update-ended and alarm).
 * IRQ 8 is held up while IRQF is set and dropped when register C is read.
 */
#include "devices/mc146818.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/snap.h"
#include "util/evloop.h"
#include "util/log.h"

#define RTC_IRQ		8
#define NS_PER_SEC	1000000000ull
#define RTC_UIP_NS	244000ull	/* UIP rises this long before an update */

enum {
	REG_SEC = 0x00, REG_SEC_ALARM, REG_MIN, REG_MIN_ALARM, REG_HOUR,
	REG_HOUR_ALARM, REG_WDAY, REG_MDAY, REG_MONTH, REG_YEAR,
	REG_A, REG_B, REG_C, REG_D,
};

#define A_UIP		0x80
#define B_SET		0x80
#define B_PIE		0x40
#define B_AIE		0x20
#define B_UIE		0x10
#define B_SQWE		0x08
#define B_DM_BINARY	0x04
#define B_24H		0x02
#define C_IRQF		0x80
#define C_PF		0x40
#define C_AF		0x20
#define C_UF		0x10
#define D_VRT		0x80

struct mc146818 {
	struct vm *vm;
	struct vtimer timer;
	uint8_t cmos[128];
	uint8_t index;
	bool nmi_masked;	/* bit 7 of the index port (not wired) */
	int64_t base_sec;	/* guest time at vclock base_ns */
	uint64_t base_ns;
	uint64_t sec_ticks;	/* seconds since base already accounted */
	uint64_t pf_ticks;	/* periodic ticks since base accounted */
	bool irq_level;
};

static uint8_t
mc146818_to_bcd(unsigned v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static unsigned
mc146818_from_bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t
mc146818_enc(const struct mc146818 *r, unsigned v)
{
	return (r->cmos[REG_B] & B_DM_BINARY) ? (uint8_t)v : mc146818_to_bcd(v);
}

static unsigned
mc146818_dec(const struct mc146818 *r, uint8_t v)
{
	return (r->cmos[REG_B] & B_DM_BINARY) ? v : mc146818_from_bcd(v);
}

static uint8_t
mc146818_enc_hour(const struct mc146818 *r, unsigned h)
{
	if (r->cmos[REG_B] & B_24H)
		return mc146818_enc(r, h);
	return mc146818_enc(r, h % 12 == 0 ? 12 : h % 12) |
	    (h >= 12 ? 0x80 : 0);
}

static unsigned
mc146818_dec_hour(const struct mc146818 *r, uint8_t v)
{
	if (r->cmos[REG_B] & B_24H)
		return mc146818_dec(r, v);
	return mc146818_dec(r, v & 0x7f) % 12 + ((v & 0x80) ? 12 : 0);
}

static uint64_t
mc146818_elapsed(const struct mc146818 *r)
{
	uint64_t now = vclock_ns();

	return now > r->base_ns ? now - r->base_ns : 0;
}

/* Guest time in seconds since the epoch. */
static int64_t
mc146818_now(const struct mc146818 *r)
{
	return r->base_sec + (int64_t)(mc146818_elapsed(r) / NS_PER_SEC);
}

/* Copy the running time into the time registers (unless SET froze them). */
static void
mc146818_latch(struct mc146818 *r)
{
	time_t t = (time_t)mc146818_now(r);
	struct tm tm;

	if (r->cmos[REG_B] & B_SET)
		return;
	gmtime_r(&t, &tm);
	r->cmos[REG_SEC] = mc146818_enc(r, tm.tm_sec);
	r->cmos[REG_MIN] = mc146818_enc(r, tm.tm_min);
	r->cmos[REG_HOUR] = mc146818_enc_hour(r, tm.tm_hour);
	r->cmos[REG_WDAY] = mc146818_enc(r, tm.tm_wday + 1);
	r->cmos[REG_MDAY] = mc146818_enc(r, tm.tm_mday);
	r->cmos[REG_MONTH] = mc146818_enc(r, tm.tm_mon + 1);
	r->cmos[REG_YEAR] = mc146818_enc(r, (tm.tm_year + 1900) % 100);
	r->cmos[MC146818_CENTURY] = mc146818_enc(r, (tm.tm_year + 1900) / 100);
}

/* Periodic interrupt period from register A's rate, 0 if off. */
static uint64_t
mc146818_period_ns(const struct mc146818 *r)
{
	unsigned rate = r->cmos[REG_A] & 0x0f;

	if (rate == 0)
		return 0;
	if (rate < 3)
		rate += 7;	/* 1 and 2 alias 256 Hz and 128 Hz */
	return (1ull << (rate - 1)) * NS_PER_SEC / 32768;
}

/* The clock restarts from base (now); the tick counters with it. */
static void
mc146818_set_base(struct mc146818 *r, int64_t sec, uint64_t frac_ns)
{
	uint64_t now = vclock_ns();

	r->base_sec = sec;
	r->base_ns = now >= frac_ns ? now - frac_ns : now;
	r->sec_ticks = 0;
	/* The divider chain runs on; no periodic tick has passed yet. */
	r->pf_ticks = mc146818_period_ns(r) ?
	    mc146818_elapsed(r) / mc146818_period_ns(r) : 0;
}

/* The guest wrote the time: make the registers the clock's new base. */
static void
mc146818_load_regs(struct mc146818 *r)
{
	struct tm tm = { 0 };
	time_t t;

	tm.tm_sec = mc146818_dec(r, r->cmos[REG_SEC]);
	tm.tm_min = mc146818_dec(r, r->cmos[REG_MIN]);
	tm.tm_hour = mc146818_dec_hour(r, r->cmos[REG_HOUR]);
	tm.tm_mday = mc146818_dec(r, r->cmos[REG_MDAY]);
	tm.tm_mon = (int)mc146818_dec(r, r->cmos[REG_MONTH]) - 1;
	tm.tm_year = mc146818_dec(r, r->cmos[MC146818_CENTURY]) * 100 +
	    mc146818_dec(r, r->cmos[REG_YEAR]) - 1900;
	if (tm.tm_sec > 59 || tm.tm_min > 59 || tm.tm_hour > 23 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11)
		log_guest_once("mc146818: guest set an invalid time "
		    "%02x:%02x:%02x %02x/%02x", r->cmos[REG_HOUR],
		    r->cmos[REG_MIN], r->cmos[REG_SEC], r->cmos[REG_MDAY],
		    r->cmos[REG_MONTH]);
	t = timegm(&tm);	/* normalizes what is out of range */
	mc146818_set_base(r, (int64_t)t, 0);
}

static bool
mc146818_alarm_field(uint8_t alarm, uint8_t cur)
{
	return (alarm & 0xc0) == 0xc0 || alarm == cur;	/* don't care */
}

static bool
mc146818_alarm_match(struct mc146818 *r)
{
	mc146818_latch(r);
	return mc146818_alarm_field(r->cmos[REG_SEC_ALARM], r->cmos[REG_SEC]) &&
	    mc146818_alarm_field(r->cmos[REG_MIN_ALARM], r->cmos[REG_MIN]) &&
	    mc146818_alarm_field(r->cmos[REG_HOUR_ALARM], r->cmos[REG_HOUR]);
}

static void
mc146818_update_irq(struct mc146818 *r)
{
	bool level;

	if (r->cmos[REG_C] & r->cmos[REG_B] & (C_PF | C_AF | C_UF))
		r->cmos[REG_C] |= C_IRQF;
	level = (r->cmos[REG_C] & C_IRQF) != 0;
	if (level != r->irq_level) {
		r->irq_level = level;
		vm_irq_set(r->vm, RTC_IRQ, level);
	}
}

/*
 * Account for time passed: PF per periodic tick, UF per second and AF when
 * the alarm matches the current second (if the loop was late by several
 * seconds, only the current one is compared).
 */
static void
mc146818_tick(struct mc146818 *r)
{
	uint64_t el = mc146818_elapsed(r), period = mc146818_period_ns(r);

	if (period != 0 && el / period > r->pf_ticks) {
		r->pf_ticks = el / period;
		r->cmos[REG_C] |= C_PF;
	}
	if (el / NS_PER_SEC > r->sec_ticks) {
		r->sec_ticks = el / NS_PER_SEC;
		if (!(r->cmos[REG_B] & B_SET)) {
			r->cmos[REG_C] |= C_UF;
			if (mc146818_alarm_match(r))
				r->cmos[REG_C] |= C_AF;
		}
	}
	mc146818_update_irq(r);
}

/* Arm the timer for the next event an enabled interrupt cares about. */
static void
mc146818_arm(struct mc146818 *r)
{
	uint64_t next = UINT64_MAX, period = mc146818_period_ns(r);
	uint8_t b = r->cmos[REG_B];

	if ((b & B_PIE) && period != 0)
		next = r->base_ns + (r->pf_ticks + 1) * period;
	if ((b & (B_UIE | B_AIE)) && !(b & B_SET)) {
		uint64_t s = r->base_ns + (r->sec_ticks + 1) * NS_PER_SEC;

		if (s < next)
			next = s;
	}
	if (next == UINT64_MAX)
		vtimer_cancel(&r->timer);
	else
		vtimer_arm(&r->timer, next);
}

static void
mc146818_on_timer(void *opaque)
{
	struct mc146818 *r = opaque;

	mc146818_tick(r);
	mc146818_arm(r);
}

static uint8_t
mc146818_read_a(struct mc146818 *r)
{
	uint64_t frac = mc146818_elapsed(r) % NS_PER_SEC;
	uint8_t v = r->cmos[REG_A] & ~A_UIP;

	if (!(r->cmos[REG_B] & B_SET) && frac >= NS_PER_SEC - RTC_UIP_NS)
		v |= A_UIP;
	return v;
}

static uint8_t
mc146818_read(struct mc146818 *r, uint8_t idx)
{
	uint8_t v;

	switch (idx) {
	case REG_SEC: case REG_MIN: case REG_HOUR: case REG_WDAY:
	case REG_MDAY: case REG_MONTH: case REG_YEAR: case MC146818_CENTURY:
		mc146818_latch(r);
		return r->cmos[idx];
	case REG_A:
		return mc146818_read_a(r);
	case REG_C:
		mc146818_tick(r);
		v = r->cmos[REG_C];
		r->cmos[REG_C] = 0;	/* read-to-clear, IRQ drops */
		mc146818_update_irq(r);
		mc146818_arm(r);
		return v;
	case REG_D:
		return D_VRT;
	default:
		return r->cmos[idx];
	}
}

static void
mc146818_write_b(struct mc146818 *r, uint8_t v)
{
	uint8_t old = r->cmos[REG_B];

	if ((v & B_SET) && !(old & B_SET)) {
		mc146818_latch(r);	/* freeze at this moment */
		v &= ~B_UIE;		/* SET clears UIE on the chip */
	}
	r->cmos[REG_B] = v;
	if (!(v & B_SET) && (old & B_SET))
		mc146818_load_regs(r);
	mc146818_update_irq(r);
	mc146818_arm(r);
}

static void
mc146818_write(struct mc146818 *r, uint8_t idx, uint8_t v)
{
	switch (idx) {
	case REG_SEC: case REG_MIN: case REG_HOUR: case REG_WDAY:
	case REG_MDAY: case REG_MONTH: case REG_YEAR: case MC146818_CENTURY:
		if (r->cmos[REG_B] & B_SET) {
			r->cmos[idx] = v;
			break;
		}
		/* A write while running sets that field of the clock. */
		mc146818_latch(r);
		r->cmos[idx] = v;
		mc146818_load_regs(r);
		mc146818_arm(r);
		break;
	case REG_A:
		r->cmos[REG_A] = v & ~A_UIP;
		r->pf_ticks = mc146818_period_ns(r) ?
		    mc146818_elapsed(r) / mc146818_period_ns(r) : 0;
		mc146818_arm(r);
		break;
	case REG_B:
		mc146818_write_b(r, v);
		break;
	case REG_C:
	case REG_D:
		log_guest_once("mc146818: write %#x to read-only register "
		    "%#x", v, idx);
		break;
	default:
		r->cmos[idx] = v;
		break;
	}
}

static void
mc146818_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct mc146818 *r = opaque;

	if (off == 0) {
		if (is_write) {
			r->index = data[0] & 0x7f;
			r->nmi_masked = (data[0] & 0x80) != 0;
		} else {
			memset(data, 0xff, len);	/* write-only */
		}
		return;
	}
	if (is_write)
		mc146818_write(r, r->index, data[0]);
	else
		data[0] = mc146818_read(r, r->index);
	for (unsigned i = 1; i < len && !is_write; i++)
		data[i] = 0xff;
}

/* Memory sizes and equipment where SeaBIOS and older loaders look.
 * XXX boot order (0x38, 0x3d) waits for firmware boot. */
static void
mc146818_set_memory(struct mc146818 *r, const struct vm *vm)
{
	uint64_t ram = vm->ram_size;
	uint64_t low = ram < GPA_LOW_RAM_END ? ram : GPA_LOW_RAM_END;
	uint64_t kb, v;

	r->cmos[0x14] = 0x06;		/* equipment: FPU, PS/2 mouse */
	r->cmos[0x15] = 640 & 0xff;	/* base memory, KiB */
	r->cmos[0x16] = 640 >> 8;
	kb = low > (1 << 20) ? (low >> 10) - 1024 : 0;	/* 1 MiB .. 64 MiB */
	if (kb > 0xffff)
		kb = 0xffff;
	r->cmos[0x17] = r->cmos[0x30] = kb & 0xff;
	r->cmos[0x18] = r->cmos[0x31] = kb >> 8;
	v = low > (16 << 20) ? (low - (16 << 20)) >> 16 : 0;
	if (v > 0xffff)
		v = 0xffff;
	r->cmos[MC146818_MEM_ABOVE_16M] = v & 0xff;
	r->cmos[MC146818_MEM_ABOVE_16M + 1] = v >> 8;
	v = (ram - low) >> 16;
	r->cmos[MC146818_MEM_ABOVE_4G] = v & 0xff;
	r->cmos[MC146818_MEM_ABOVE_4G + 1] = (v >> 8) & 0xff;
	r->cmos[MC146818_MEM_ABOVE_4G + 2] = (v >> 16) & 0xff;
	if (vm->cfg != NULL && vm->cfg->cpus > 0)
		r->cmos[MC146818_NR_CPUS] = (uint8_t)(vm->cfg->cpus - 1);
}

/* Start the clock at the host's UTC time, seconds in step with it. */
static void
mc146818_start_clock(struct mc146818 *r)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	mc146818_set_base(r, ts.tv_sec, (uint64_t)ts.tv_nsec);
}

static void
mc146818_reset(void *state)
{
	struct mc146818 *r = state;

	r->cmos[REG_B] &= ~(B_PIE | B_AIE | B_UIE | B_SQWE);
	r->cmos[REG_C] = 0;
	mc146818_update_irq(r);
	mc146818_arm(r);
}

static int
mc146818_create(struct vm *vm)
{
	struct mc146818 *r = calloc(1, sizeof(*r));
	int err;

	if (r == NULL)
		return -ENOMEM;
	r->vm = vm;
	vtimer_init(&r->timer, vm->loop, mc146818_on_timer, r);
	r->cmos[REG_A] = 0x26;		/* 32.768 kHz base, 1024 Hz rate */
	r->cmos[REG_B] = B_24H;		/* BCD, 24 hours, as PC BIOSes do */
	r->cmos[REG_D] = D_VRT;
	mc146818_set_memory(r, vm);
	mc146818_start_clock(r);
	if ((err = bus_register(vm->pio, 0x70, 2, mc146818_io, r,
	    "rtc")) < 0)
		goto fail;
	if ((err = vm_device_register(vm, &mc146818_ops, r, "rtc")) < 0) {
		bus_unregister(vm->pio, 0x70);
		goto fail;
	}
	return 0;
fail:
	free(r);
	return err;
}

static void
mc146818_fini(void *state)
{
	struct mc146818 *r = state;

	vtimer_cancel(&r->timer);
	bus_unregister(r->vm->pio, 0x70);
	free(r);
}

static int64_t
mc146818_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * (int64_t)NS_PER_SEC + ts.tv_nsec;
}

/*
 * The clock is saved as its offset from the host's real time, so a
 * restored or migrated guest's RTC keeps whatever time the guest set,
 * relative to the wall clock of the host it lands on.
 */
static int
mc146818_snapshot(void *state, struct snap *s)
{
	struct mc146818 *r = state;
	int64_t guest_ns, offset = 0;

	/* Saturating: a guest may set the clock to the year 9999, whose
	 * nanoseconds do not fit in 64 bits. */
	if (snap_saving(s) && (__builtin_mul_overflow(r->base_sec,
	    (int64_t)NS_PER_SEC, &guest_ns) || __builtin_add_overflow(guest_ns,
	    (int64_t)mc146818_elapsed(r), &guest_ns) ||
	    __builtin_sub_overflow(guest_ns, mc146818_realtime_ns(), &offset)))
		offset = INT64_MAX;

	snap_bytes(s, "cmos", r->cmos, sizeof(r->cmos));
	snap_u8(s, "index", &r->index);
	snap_bool(s, "nmi_masked", &r->nmi_masked);
	snap_i64(s, "offset_ns", &offset);
	r->index &= 0x7f;	/* even from a refused stream: it indexes */
	if (snap_saving(s) || snap_error(s))
		return snap_error(s);
	/* A hostile stream's offset may not fit either: the latest time
	 * there is, or the epoch. */
	if (__builtin_add_overflow(mc146818_realtime_ns(), offset, &guest_ns))
		guest_ns = offset > 0 ? INT64_MAX : 0;
	if (guest_ns < 0)
		guest_ns = 0;
	mc146818_set_base(r, guest_ns / (int64_t)NS_PER_SEC,
	    (uint64_t)(guest_ns % (int64_t)NS_PER_SEC));
	r->irq_level = (r->cmos[REG_C] & C_IRQF) != 0;
	vm_irq_set(r->vm, RTC_IRQ, r->irq_level);
	mc146818_arm(r);
	return 0;
}

const struct device_ops mc146818_ops = {
	.name = "mc146818",
	.create = mc146818_create,
	.fini = mc146818_fini,
	.snapshot = mc146818_snapshot,
	.snapshot_version = 1,
	.reset = mc146818_reset,
};
