/*
 * The 8254 through ports 0x40-0x43 and 0x61, programmed as Linux does
 * (TSC calibration on channel 2, the periodic and one-shot clockevent on
 * channel 0), against a frozen clock advanced by hand.
 */
#include "irqchip_harness.h"

#include "devices/i8254.h"

static struct vm *vm;

static void
setup(void)
{
	vm = th_vm_new(1);
}

static void
teardown(void)
{
	th_vm_free(vm);
}

TestSuite(i8254, .init = setup, .fini = teardown);

/* Time of tick t after base: the first ns the counter has moved t. */
static uint64_t
tick_ns(uint64_t t)
{
	return (t * 1000000000ull + I8254_HZ - 1) / I8254_HZ;
}

static void
at_tick(uint64_t base, uint64_t t)
{
	vclock_set_fake(true, base + tick_ns(t));
}

static uint16_t
read16(uint16_t port)
{
	uint8_t lo = th_inb(vm, port);

	return lo | th_inb(vm, port) << 8;
}

static void
write16(uint16_t port, uint16_t v)
{
	th_outb(vm, port, v & 0xff);
	th_outb(vm, port, v >> 8);
}

/* arch/x86/kernel/tsc.c pit_calibrate_tsc(): 50 ms on channel 2, mode 0,
 * polling OUT2 in port 0x61. */
Test(i8254, tsc_calibration_polls_out2)
{
	const uint16_t latch = I8254_HZ / 20;
	uint64_t start, polls = 0;

	th_outb(vm, 0x61, (th_inb(vm, 0x61) & ~0x02) | 0x01);
	th_outb(vm, 0x43, 0xb0);
	th_outb(vm, 0x42, latch & 0xff);
	th_outb(vm, 0x42, latch >> 8);
	start = vclock_ns();
	cr_assert_eq(th_inb(vm, 0x61) & 0x20, 0, "OUT2 low while counting");
	while ((th_inb(vm, 0x61) & 0x20) == 0 && polls < 100000) {
		vclock_advance_fake(1000);
		polls++;
	}
	/* 59659 ticks of 838.1 ns, seen at 1 us polling resolution. */
	cr_assert_geq(vclock_ns() - start, tick_ns(latch));
	cr_assert_lt(vclock_ns() - start, tick_ns(latch) + 1000);
	cr_assert_eq(th_inb(vm, 0x61) & 0x03, 0x01, "gate kept, speaker off");
}

/* tsc.c quick_pit_calibrate(): count from 0xffff and watch the MSB,
 * reading LSB then MSB each time (the flip-flop must pair them). */
Test(i8254, quick_calibration_msb_steps)
{
	int polls = 0;
	uint8_t msb = 0xff;

	th_outb(vm, 0x61, (th_inb(vm, 0x61) & ~0x02) | 0x01);
	th_outb(vm, 0x43, 0xb0);
	th_outb(vm, 0x42, 0xff);
	th_outb(vm, 0x42, 0xff);
	for (int i = 1; i <= 20; i++) {
		int n = 0;

		for (;;) {
			uint8_t m;

			(void)th_inb(vm, 0x42);
			m = th_inb(vm, 0x42);
			polls++;
			vclock_advance_fake(1000);
			if (m != msb) {
				cr_assert_eq(m, (uint8_t)(msb - 1),
				    "MSB went %#x -> %#x", msb, m);
				msb = m;
				break;
			}
			n++;
			cr_assert_lt(n, 1000);
		}
		/* 256 ticks = 214.55 us per MSB step (first one shorter). */
		if (i > 1)
			cr_assert(n >= 213 && n <= 216, "step %d: %d polls",
			    i, n);
	}
	cr_assert_eq(msb, 0xff - 20);
}

Test(i8254, latch_command_holds_the_value)
{
	uint64_t base;

	th_outb(vm, 0x43, 0x34);	/* ch0, LSB/MSB, mode 2 */
	write16(0x40, 1000);
	base = vclock_ns();
	at_tick(base, 100);
	cr_assert_eq(read16(0x40), 900);
	th_outb(vm, 0x43, 0x00);	/* latch channel 0 */
	at_tick(base, 300);
	th_outb(vm, 0x43, 0x00);	/* a second latch is ignored */
	cr_assert_eq(read16(0x40), 900);
	cr_assert_eq(read16(0x40), 700, "the latch is released");
	at_tick(base, 1000 + 250);
	cr_assert_eq(read16(0x40), 750, "mode 2 reloads");
}

Test(i8254, readback_status_and_count)
{
	uint64_t base;

	th_outb(vm, 0x43, 0xb0);	/* ch2, LSB/MSB, mode 0, binary */
	th_outb(vm, 0x43, 0xe8);	/* read back status of ch2 */
	cr_assert_eq(th_inb(vm, 0x42), 0x70, "null count, rw 3, mode 0");
	write16(0x42, 500);
	base = vclock_ns();
	th_outb(vm, 0x61, 0x01);
	th_outb(vm, 0x43, 0xe8);
	cr_assert_eq(th_inb(vm, 0x42), 0x30, "count loaded, OUT low");
	at_tick(base, 600);
	/* Status and count together: status first, then the count. */
	th_outb(vm, 0x43, 0xc8);
	cr_assert_eq(th_inb(vm, 0x42), 0xb0, "OUT high after terminal count");
	cr_assert_eq(read16(0x42), (uint16_t)(500 - 600));
}

static int
count_irq0(uint64_t ns, uint64_t step)
{
	struct vcpu *v = vm->vcpus[0];
	int n = 0;

	for (uint64_t t = 0; t < ns; t += step) {
		vclock_advance_fake(step);
		evloop_run_timers(vm->loop);
		while (irqchip_pending(v)) {
			cr_assert_eq(irqchip_ack(v), 0x30);
			th_outb(vm, 0x20, 0x60);
			th_apic_write(vm, 0, 0xb0, 0);
			n++;
		}
	}
	return n;
}

/* Linux's periodic PIT clockevent at HZ=250 (i8253.c, PIT_LATCH). */
Test(i8254, irq0_periodic_at_hz)
{
	const uint16_t latch = (I8254_HZ + 125) / 250;
	uint64_t k = 0;

	th_pic_init_linux(vm, 0xfe, 0xff);
	th_outb(vm, 0x43, 0x34);
	th_outb(vm, 0x40, latch & 0xff);
	th_outb(vm, 0x40, latch >> 8);
	while (tick_ns((k + 1) * latch) <= 1000000000ull)
		k++;
	cr_assert_eq(count_irq0(1000000000ull, 100000), (int)k);
	cr_assert_eq(k, 249);
	/* Shut down as Linux does (mode 0, count 0): one last edge at
	 * 65536 ticks, then silence. */
	th_outb(vm, 0x43, 0x30);
	th_outb(vm, 0x40, 0);
	th_outb(vm, 0x40, 0);
	cr_assert_eq(count_irq0(200000000ull, 1000000), 1);
}

Test(i8254, missed_irq0_ticks_are_paid_back)
{
	const uint16_t latch = (I8254_HZ + 125) / 250;
	uint64_t base;

	th_pic_init_linux(vm, 0xfe, 0xff);
	th_outb(vm, 0x43, 0x34);
	write16(0x40, latch);
	base = vclock_ns();
	/* Interrupts off for ten ticks: the PIC holds one edge... */
	at_tick(base, 10 * latch + latch / 2);
	evloop_run_timers(vm->loop);
	/* ...the other nine come one by one as each is taken, then the
	 * clock goes on: 10 + 1 edges by tick 11.5. */
	cr_assert_eq(count_irq0(tick_ns(latch), 100000), 11);
	cr_assert_eq(count_irq0(tick_ns(4 * latch), 100000), 4);
	/* Via the IOAPIC the same. */
	th_outb(vm, 0x21, 0xff);
	th_apic_enable(vm, 0);
	th_ioapic_route(vm, 2, 0x30);
	vclock_advance_fake(tick_ns(5 * latch));
	evloop_run_timers(vm->loop);
	cr_assert_eq(count_irq0(tick_ns(latch), 100000), 6);
}

/* Linux's one-shot PIT clockevent: mode 4, each event a new count. */
Test(i8254, irq0_oneshot_mode4)
{
	uint64_t base;
	struct vcpu *v = vm->vcpus[0];

	th_pic_init_linux(vm, 0xfe, 0xff);
	th_outb(vm, 0x43, 0x38);
	write16(0x40, 1000);
	base = vclock_ns();
	at_tick(base, 999);
	evloop_run_timers(vm->loop);
	cr_assert_not(irqchip_pending(v));
	at_tick(base, 1000);
	evloop_run_timers(vm->loop);
	cr_assert(irqchip_pending(v));
	cr_assert_eq(irqchip_ack(v), 0x30);
	th_outb(vm, 0x20, 0x20);
	cr_assert_eq(count_irq0(100000000ull, 1000000), 0, "one strobe only");
	write16(0x40, 2000);
	cr_assert_eq(count_irq0(10000000ull, 100000), 1, "a new count re-arms");
}

Test(i8254, mode0_raises_and_holds_irq0)
{
	uint64_t base;

	th_pic_init_linux(vm, 0xfe, 0xff);
	th_outb(vm, 0x43, 0x30);
	write16(0x40, 100);
	base = vclock_ns();
	at_tick(base, 100);
	evloop_run_timers(vm->loop);
	cr_assert_eq(irqchip_ack(vm->vcpus[0]), 0x30);
	th_outb(vm, 0x20, 0x20);
	at_tick(base, 70000);
	evloop_run_timers(vm->loop);
	cr_assert_not(irqchip_pending(vm->vcpus[0]), "OUT stays high");
	/* The counter wraps on and keeps counting. */
	cr_assert_eq(read16(0x40), (uint16_t)(100 - 70000));
}

Test(i8254, bcd_counting)
{
	uint64_t base;

	th_outb(vm, 0x61, 0x01);
	th_outb(vm, 0x43, 0xb1);	/* ch2, LSB/MSB, mode 0, BCD */
	write16(0x42, 0x1000);
	base = vclock_ns();
	at_tick(base, 1);
	cr_assert_eq(read16(0x42), 0x0999);
	at_tick(base, 500);
	cr_assert_eq(read16(0x42), 0x0500);
	at_tick(base, 1001);
	cr_assert_eq(read16(0x42), 0x9999, "BCD wraps at 10000");
}

Test(i8254, mode3_square_wave_on_out2)
{
	uint64_t base;

	th_outb(vm, 0x61, 0x01);
	th_outb(vm, 0x43, 0xb6);	/* ch2, LSB/MSB, mode 3 */
	write16(0x42, 1000);
	base = vclock_ns();
	for (uint64_t t = 0; t < 3000; t += 50) {
		at_tick(base, t);
		cr_assert_eq((th_inb(vm, 0x61) >> 5) & 1, (t % 1000) < 500,
		    "tick %llu", (unsigned long long)t);
	}
	at_tick(base, 10);
	cr_assert_eq(read16(0x42), 980, "counts down by two");
	/* Gate low: OUT2 high and the count holds. */
	at_tick(base, 600);
	th_outb(vm, 0x61, 0x00);
	cr_assert(th_inb(vm, 0x61) & 0x20);
}

Test(i8254, new_count_waits_for_the_cycle_in_mode2)
{
	uint64_t base;

	th_outb(vm, 0x43, 0x34);
	write16(0x40, 1000);
	base = vclock_ns();
	at_tick(base, 300);
	write16(0x40, 400);		/* no control word: reprogram rate */
	cr_assert_eq(read16(0x40), 700, "the current cycle runs out");
	at_tick(base, 999);
	cr_assert_eq(read16(0x40), 1);
	at_tick(base, 1000 + 100);
	cr_assert_eq(read16(0x40), 300, "then the new count");
	at_tick(base, 1000 + 400 + 50);
	cr_assert_eq(read16(0x40), 350);
}

Test(i8254, irq0_rate_change_at_the_cycle_end)
{
	uint64_t base;

	th_pic_init_linux(vm, 0xfe, 0xff);
	th_outb(vm, 0x43, 0x34);
	write16(0x40, 11932);		/* 10 ms */
	base = vclock_ns();
	at_tick(base, 5966);
	write16(0x40, 5966);		/* 5 ms from the next cycle */
	/* Edges at 10, 15, 20, 25 ms: four in the next 21 ms. */
	cr_assert_eq(count_irq0(21000000, 100000), 4);
}

Test(i8254, mode0_first_byte_stops_the_count)
{
	uint64_t base;

	th_outb(vm, 0x61, 0x01);
	th_outb(vm, 0x43, 0xb0);
	write16(0x42, 100);
	base = vclock_ns();
	at_tick(base, 150);
	cr_assert(th_inb(vm, 0x61) & 0x20);
	th_outb(vm, 0x42, 50);		/* LSB: counting stops, OUT low */
	cr_assert_eq(th_inb(vm, 0x61) & 0x20, 0);
	at_tick(base, 1000);
	cr_assert_eq(th_inb(vm, 0x61) & 0x20, 0);
	th_outb(vm, 0x42, 0);		/* MSB: count 50 starts */
	base = vclock_ns();
	at_tick(base, 49);
	cr_assert_eq(th_inb(vm, 0x61) & 0x20, 0);
	at_tick(base, 50);
	cr_assert(th_inb(vm, 0x61) & 0x20);
}

Test(i8254, gate_pauses_mode0)
{
	uint64_t base;

	th_outb(vm, 0x61, 0x01);
	th_outb(vm, 0x43, 0xb0);
	write16(0x42, 10000);
	base = vclock_ns();
	at_tick(base, 1000);
	th_outb(vm, 0x61, 0x00);
	at_tick(base, 6000);
	cr_assert_eq(read16(0x42), 9000);
	th_outb(vm, 0x61, 0x01);
	at_tick(base, 7000);
	cr_assert(read16(0x42) >= 7999 && read16(0x42) <= 8000);
}

Test(i8254, lsb_only_and_msb_only)
{
	uint64_t base;

	th_outb(vm, 0x61, 0x01);
	th_outb(vm, 0x43, 0x90);	/* ch2, LSB only, mode 0 */
	th_outb(vm, 0x42, 0x80);
	base = vclock_ns();
	at_tick(base, 0x10);
	cr_assert_eq(th_inb(vm, 0x42), 0x70);
	cr_assert_eq(th_inb(vm, 0x42), 0x70, "no flip-flop in LSB mode");
	th_outb(vm, 0x43, 0xa0);	/* ch2, MSB only */
	th_outb(vm, 0x42, 0x12);
	base = vclock_ns();
	at_tick(base, 0x100);
	cr_assert_eq(th_inb(vm, 0x42), 0x11);
}

Test(i8254, port61_bits)
{
	uint8_t a, b;

	th_outb(vm, 0x61, 0x03);
	cr_assert_eq(th_inb(vm, 0x61) & 0x0f, 0x03);
	a = th_inb(vm, 0x61) & 0x10;
	vclock_advance_fake(15085);
	b = th_inb(vm, 0x61) & 0x10;
	cr_assert_neq(a, b, "the refresh bit toggles every 15 us");
	/* Channel 2 in its power-on mode 3 with no count: OUT2 high. */
	cr_assert(th_inb(vm, 0x61) & 0x20);
	th_outb(vm, 0x43, 0xb0);
	cr_assert_eq(th_inb(vm, 0x61) & 0x20, 0, "mode 0 starts OUT low");
}

Test(i8254, garbage_never_crashes)
{
	unsigned seed = 7;

	th_pic_init_linux(vm, 0xfe, 0xff);
	for (int i = 0; i < 20000; i++) {
		uint16_t port = (uint16_t[]){ 0x40, 0x41, 0x42, 0x43,
		    0x61 }[rand_r(&seed) % 5];

		if (rand_r(&seed) & 1)
			th_outb(vm, port, (uint8_t)rand_r(&seed));
		else
			(void)th_inb(vm, port);
		vclock_advance_fake(rand_r(&seed) % 5000);
		if ((i & 63) == 0)
			evloop_run_timers(vm->loop);
		while (irqchip_pending(vm->vcpus[0])) {
			irqchip_ack(vm->vcpus[0]);
			th_outb(vm, 0x20, 0x20);
		}
	}
	/* Programmed properly afterwards, it counts properly. */
	th_outb(vm, 0x43, 0x34);
	write16(0x40, 1000);
	vclock_advance_fake(tick_ns(100));
	cr_assert_eq(read16(0x40), 900);
}

Test(i8254, snapshot_keeps_counting_and_irq0)
{
	struct vm *b;
	struct snap s, l;
	const uint16_t latch = 11932;	/* 10 ms */
	uint64_t base;
	int n = 0;

	th_pic_init_linux(vm, 0xfe, 0xff);
	th_outb(vm, 0x43, 0x34);
	write16(0x40, latch);
	base = vclock_ns();
	at_tick(base, 5000);
	snap_init_save(&s);
	th_snap_save(vm, "i8259", &s);
	th_snap_save(vm, "i8254", &s);
	th_snap_save(vm, "lapic0", &s);
	th_vm_free(vm);
	/* Loaded a second later: the VM's time stood still meanwhile. */
	vclock_advance_fake(1000000000ull);
	vm = b = th_vm_new(1);
	snap_init_load(&l, s.buf, s.len);
	th_snap_load(vm, "i8259", &l);
	th_snap_load(vm, "i8254", &l);
	th_snap_load(vm, "lapic0", &l);
	snap_free(&s);
	cr_assert_eq(read16(0x40), latch - 5000);
	th_outb(vm, 0x43, 0x00);
	for (int i = 0; i < 100; i++) {
		vclock_advance_fake(1000000);
		evloop_run_timers(vm->loop);
		while (irqchip_pending(vm->vcpus[0])) {
			cr_assert_eq(irqchip_ack(vm->vcpus[0]), 0x30);
			th_outb(vm, 0x20, 0x20);
			n++;
		}
	}
	cr_assert_eq(n, 10, "IRQ0 re-armed after the load");
}
