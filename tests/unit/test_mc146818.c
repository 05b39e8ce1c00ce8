/*
 * The RTC against the host's clock, with the virtual clock frozen.
 */
#include <criterion/criterion.h>
#include <time.h>

#include "fake_vm.h"
#include "devices/mc146818.h"
#include "migrate/snap.h"

#define SEC 1000000000ull

static struct vm *vm;

static void
setup(void)
{
	vclock_set_fake(true, 5000 * SEC);
	vm = fake_vm_new(6ull << 30);
	fake_cfg.cpus = 4;
	cr_assert_eq(mc146818_ops.create(vm), 0);
}

static void
teardown(void)
{
	fake_vm_free(vm);
}

TestSuite(rtc, .init = setup, .fini = teardown, .timeout = 10);

static uint8_t
cmos(uint8_t idx)
{
	fake_out(vm, 0x70, 1, idx);
	return (uint8_t)fake_in(vm, 0x71, 1);
}

static void
cmos_w(uint8_t idx, uint8_t v)
{
	fake_out(vm, 0x70, 1, idx);
	fake_out(vm, 0x71, 1, v);
}

static unsigned bcd(uint8_t v) { return (v >> 4) * 10 + (v & 15); }

/* Read the clock as Linux's mc146818_get_time does (BCD, 24h). */
static time_t
rtc_time(bool binary, bool h12)
{
	struct tm tm = { 0 };
	uint8_t h;

	while (cmos(0x0a) & 0x80)
		vclock_advance_fake(100000);
#define D(x) (binary ? (x) : bcd(x))
	tm.tm_sec = D(cmos(0));
	tm.tm_min = D(cmos(2));
	h = cmos(4);
	tm.tm_hour = h12 ? D(h & 0x7f) % 12 + ((h & 0x80) ? 12 : 0) : D(h);
	tm.tm_mday = D(cmos(7));
	tm.tm_mon = D(cmos(8)) - 1;
	tm.tm_year = D(cmos(0x32)) * 100 + D(cmos(9)) - 1900;
#undef D
	return timegm(&tm);
}

Test(rtc, matches_host_time_and_advances_with_vclock)
{
	time_t host = time(NULL), t = rtc_time(false, false);

	cr_assert_leq(labs((long)(t - host)), 2, "rtc %ld host %ld",
	    (long)t, (long)host);
	cr_assert_eq(cmos(0x0d), 0x80, "valid RAM and time");
	vclock_advance_fake(3600 * SEC);
	t = rtc_time(false, false);
	cr_assert_leq(labs((long)(t - (host + 3600))), 2);
	/* Weekday register: Sunday = 1. */
	{
		struct tm tm;

		gmtime_r(&t, &tm);
		cr_assert_eq(bcd(cmos(6)), (unsigned)tm.tm_wday + 1);
	}
}

Test(rtc, binary_and_12_hour_modes)
{
	time_t ref = rtc_time(false, false), t;

	cmos_w(0x0b, 0x04);	/* binary, 12h */
	t = rtc_time(true, true);
	cr_assert_leq(labs((long)(t - ref)), 1);
	cmos_w(0x0b, 0x06);	/* binary, 24h */
	t = rtc_time(true, false);
	cr_assert_leq(labs((long)(t - ref)), 1);
	cr_assert_lt(cmos(4), 24);
}

Test(rtc, uip_rises_before_the_update)
{
	uint8_t s0, s1;

	/* Find the edge: step until UIP shows, then the seconds change. */
	int steps = 0;

	while (!(cmos(0x0a) & 0x80) && steps++ < 20000)
		vclock_advance_fake(100000);
	cr_assert(cmos(0x0a) & 0x80, "UIP never rose");
	s0 = cmos(0);
	vclock_advance_fake(250000);	/* past the 244 us window */
	cr_assert_eq(cmos(0x0a) & 0x80, 0);
	s1 = cmos(0);
	cr_assert_neq(s0, s1, "the update happened after UIP");
}

Test(rtc, guest_sets_the_time)
{
	time_t t;
	struct tm tm;

	cmos_w(0x0b, 0x82);		/* SET, BCD, 24h */
	cmos_w(0, 0x30);
	cmos_w(2, 0x59);
	cmos_w(4, 0x23);
	cmos_w(7, 0x31);
	cmos_w(8, 0x12);
	cmos_w(9, 0x99);
	cmos_w(0x32, 0x19);
	vclock_advance_fake(10 * SEC);	/* frozen while SET */
	cr_assert_eq(cmos(0), 0x30);
	cmos_w(0x0b, 0x02);
	vclock_advance_fake(31 * SEC);
	t = rtc_time(false, false);
	gmtime_r(&t, &tm);
	cr_assert_eq(tm.tm_year, 100, "rolled into 2000");
	cr_assert_eq(tm.tm_mon, 0);
	cr_assert_eq(tm.tm_mday, 1);
	cr_assert_eq(tm.tm_min, 0);
	cr_assert_eq(tm.tm_sec, 1);
	cr_assert_eq(cmos(0x32), 0x20);
}

Test(rtc, periodic_interrupt_and_register_c)
{
	cmos(0x0c);
	cmos_w(0x0a, 0x26);		/* 1024 Hz */
	cmos_w(0x0b, 0x42);		/* PIE */
	cr_assert_eq(fake_irqs.level[8], 0);
	vclock_advance_fake(1000000);
	evloop_run_timers(vm->loop);
	cr_assert_eq(fake_irqs.level[8], 1);
	cr_assert_eq(cmos(0x0c) & 0xc0, 0xc0, "IRQF|PF");
	cr_assert_eq(fake_irqs.level[8], 0, "C read lowers IRQ 8");
	cr_assert_eq(cmos(0x0c), 0, "read-to-clear");
	for (int i = 0; i < 5; i++) {
		vclock_advance_fake(976563);
		evloop_run_timers(vm->loop);
		cr_assert_eq(fake_irqs.level[8], 1);
		cmos(0x0c);
	}
	cr_assert_geq(fake_irqs.raises[8], 6);
	/* Polled without PIE: PF still sets, no interrupt. */
	cmos_w(0x0b, 0x02);
	vclock_advance_fake(2000000);
	evloop_run_timers(vm->loop);
	cr_assert_eq(fake_irqs.level[8], 0);
	cr_assert_eq(cmos(0x0c), 0x40);
}

Test(rtc, update_and_alarm_interrupts)
{
	uint8_t s;

	cmos(0x0c);
	cmos_w(0x0b, 0x12);		/* UIE */
	vclock_advance_fake(SEC);
	evloop_run_timers(vm->loop);
	cr_assert_eq(fake_irqs.level[8], 1);
	cr_assert_eq(cmos(0x0c) & 0x90, 0x90);
	/* Alarm two seconds ahead, hour and minute "don't care". */
	s = (uint8_t)bcd(cmos(0));
	cmos_w(1, (uint8_t)((((s + 2) % 60) / 10) << 4 | ((s + 2) % 60) % 10));
	cmos_w(3, 0xc0);
	cmos_w(5, 0xff);
	cmos_w(0x0b, 0x22);		/* AIE only */
	cmos(0x0c);
	vclock_advance_fake(SEC);
	evloop_run_timers(vm->loop);
	cr_assert_eq(fake_irqs.level[8], 0);
	cr_assert_eq(cmos(0x0c) & 0x20, 0);
	vclock_advance_fake(SEC);
	evloop_run_timers(vm->loop);
	cr_assert_eq(fake_irqs.level[8], 1);
	cr_assert_eq(cmos(0x0c) & 0xa0, 0xa0);
}

Test(rtc, memory_sizes_and_nmi_bit)
{
	/* 6 GiB: 3 GiB below the hole, 3 GiB above 4 GiB. */
	unsigned above16 = cmos(0x34) | cmos(0x35) << 8;
	unsigned above4g = cmos(0x5b) | cmos(0x5c) << 8 | cmos(0x5d) << 16;

	cr_assert_eq(above16, ((3u << 30) - (16u << 20)) >> 16);
	cr_assert_eq(above4g, (3u << 30) >> 16);
	cr_assert_eq(cmos(0x15) | cmos(0x16) << 8, 640);
	cr_assert_eq(cmos(0x5f), 3);
	cr_assert_eq(cmos(0x14), 0x06, "equipment byte as QEMU's pc");
	/* Bit 7 of the index is the NMI mask, not part of the index. */
	fake_out(vm, 0x70, 1, 0x80 | 0x40);
	fake_out(vm, 0x71, 1, 0xa5);
	cr_assert_eq(cmos(0x40), 0xa5);
	cr_assert_eq(fake_in(vm, 0x70, 1), 0xff);
}

Test(rtc, memory_below_16m_reports_small)
{
	struct vm *v2 = fake_vm_new(512ull << 20);
	uint8_t lo, hi;

	cr_assert_eq(mc146818_ops.create(v2), 0);
	fake_out(v2, 0x70, 1, 0x34);
	lo = (uint8_t)fake_in(v2, 0x71, 1);
	fake_out(v2, 0x70, 1, 0x35);
	hi = (uint8_t)fake_in(v2, 0x71, 1);
	cr_assert_eq(lo | hi << 8, (512 - 16) * 16);
	fake_vm_free(v2);
}

Test(rtc, snapshot_roundtrip)
{
	struct snap s, l;
	struct vm *vm2;
	void *r1 = fake_vm_device(vm, &mc146818_ops), *r2;
	time_t t1, t2;

	cmos_w(0x50, 0x42);
	cmos_w(0x0b, 0x06);
	t1 = rtc_time(true, false);
	snap_init_save(&s);
	snap_section_begin(&s, "rtc", 1);
	mc146818_ops.snapshot(r1, &s);
	snap_section_end(&s);
	cr_assert_eq(snap_error(&s), 0);

	vclock_set_fake(true, 9 * SEC);	/* another host's clock */
	vm2 = fake_vm_new(64 << 20);
	cr_assert_eq(mc146818_ops.create(vm2), 0);
	r2 = fake_vm_device(vm2, &mc146818_ops);
	snap_init_load(&l, s.buf, s.len);
	snap_section_begin(&l, "rtc", 1);
	mc146818_ops.snapshot(r2, &l);
	snap_section_end(&l);
	cr_assert_eq(snap_error(&l), 0, "%s", l.errmsg);
	{
		struct vm *keep = vm;

		vm = vm2;
		cr_assert_eq(cmos(0x50), 0x42);
		cr_assert_eq(cmos(0x0b), 0x06);
		t2 = rtc_time(true, false);
		vm = keep;
	}
	cr_assert_leq(labs((long)(t2 - t1)), 2);
	snap_free(&s);
	fake_vm_free(vm2);
}

Test(rtc, crafted_snapshot_index_stays_in_cmos)
{
	struct snap s, l;
	void *r = fake_vm_device(vm, &mc146818_ops);
	size_t i;

	cmos_w(0x7f, 0x3c);
	snap_init_save(&s);
	snap_section_begin(&s, "rtc", 1);
	mc146818_ops.snapshot(r, &s);
	snap_section_end(&s);
	/* Set the saved index to 0xff and fix the CRC, as a crafted
	 * stream would. */
	for (i = 0; i + 11 < s.len; i++)
		if (s.buf[i] == 5 && memcmp(s.buf + i + 1, "index", 5) == 0)
			break;
	cr_assert_lt(i + 11, s.len);
	s.buf[i + 10] = 0xff;
	bus_put(s.buf + s.len - 4, 4, snap_crc32(s.buf, s.len - 4));
	snap_init_load(&l, s.buf, s.len);
	snap_section_begin(&l, "rtc", 1);
	mc146818_ops.snapshot(r, &l);
	snap_section_end(&l);
	cr_assert_eq(snap_error(&l), 0, "%s", l.errmsg);
	cr_assert_eq(fake_in(vm, 0x71, 1), 0x3c, "index 0xff means 0x7f");
	snap_free(&s);
}

/*
 * The year 9999 (a guest may set it) does not fit in 64 bits of
 * nanoseconds, nor does a crafted stream's offset: saving and loading
 * saturate instead of overflowing (UBSan stops the test on overflow).
 */
Test(rtc, far_future_and_crafted_offsets_saturate)
{
	struct snap s, l;
	void *r = fake_vm_device(vm, &mc146818_ops);
	size_t i;

	cmos_w(0x0b, 0x82);		/* SET, BCD, 24h */
	cmos_w(9, 0x99);
	cmos_w(0x32, 0x99);		/* century 99: 9999 */
	cmos_w(0x0b, 0x02);
	snap_init_save(&s);
	snap_section_begin(&s, "rtc", 1);
	mc146818_ops.snapshot(r, &s);
	snap_section_end(&s);
	cr_assert_eq(snap_error(&s), 0);
	/* offset_ns := INT64_MAX, CRC fixed, as a crafted stream would. */
	for (i = 0; i + 22 < s.len; i++)
		if (s.buf[i] == 9 && memcmp(s.buf + i + 1, "offset_ns", 9) == 0)
			break;
	cr_assert_lt(i + 22, s.len);
	for (int k = 0; k < 8; k++)	/* after the name and a u32 length */
		s.buf[i + 14 + k] = k == 7 ? 0x7f : 0xff;
	bus_put(s.buf + s.len - 4, 4, snap_crc32(s.buf, s.len - 4));
	snap_init_load(&l, s.buf, s.len);
	snap_section_begin(&l, "rtc", 1);
	mc146818_ops.snapshot(r, &l);
	snap_section_end(&l);
	cr_assert_eq(snap_error(&l), 0, "%s", l.errmsg);
	cr_assert_gt(rtc_time(false, false), (time_t)4000000000, "saturated "
	    "late, not wrapped to the past");
	snap_free(&s);
}
