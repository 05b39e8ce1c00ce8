/*
 * The local APIC through its MMIO page (each vCPU its own), as Linux's
 * apic.c and smpboot.c program it: timer, TPR/PPR, EOI, IPIs, INIT/SIPI.
 */
#include "irqchip_harness.h"

#include <errno.h>
#include <stdio.h>

#include "devices/lapic.h"

enum {
	ID = 0x20, VER = 0x30, TPR = 0x80, PPR = 0xa0, EOI = 0xb0,
	LDR = 0xd0, DFR = 0xe0, SVR = 0xf0, ISR = 0x100, TMR = 0x180,
	IRR = 0x200, ESR = 0x280, ICR = 0x300, ICR2 = 0x310, LVTT = 0x320,
	LINT0 = 0x350, LINT1 = 0x360, LVTERR = 0x370, TMICT = 0x380,
	TMCCT = 0x390, TDCR = 0x3e0,
};

static struct vm *vm;

static void
setup(void)
{
	vm = th_vm_new(3);
}

static void
teardown(void)
{
	th_vm_free(vm);
}

TestSuite(lapic, .init = setup, .fini = teardown);

static bool
vec_bit(int cpu, unsigned base, unsigned v)
{
	return th_apic_read(vm, cpu, base + (v >> 5) * 0x10) &
	    (1u << (v & 31));
}

/* Fixed IPI from cpu to dest's APIC ID, as apic_icr_write() does. */
static void
ipi(int cpu, uint8_t dest, uint32_t lo)
{
	th_apic_write(vm, cpu, ICR2, (uint32_t)dest << 24);
	th_apic_write(vm, cpu, ICR, lo);
}

Test(lapic, power_on_registers)
{
	for (int c = 0; c < 3; c++) {
		cr_assert_eq(th_apic_read(vm, c, ID), (uint32_t)c << 24);
		cr_assert_eq(th_apic_read(vm, c, VER), 0x00050014);
		cr_assert_eq(th_apic_read(vm, c, SVR), 0xff);
		cr_assert_eq(th_apic_read(vm, c, DFR), 0xffffffff);
		cr_assert_eq(th_apic_read(vm, c, LVTT), 0x10000);
		cr_assert_eq(th_apic_read(vm, c, LINT1), 0x10000);
		cr_assert_eq(th_apic_read(vm, c, LINT0),
		    c == 0 ? 0x700 : 0x10000, "virtual wire on the BSP only");
		cr_assert_eq(irqchip_apic_base(vm->vcpus[c]),
		    0xfee00800 | (c == 0 ? 0x100 : 0));
	}
}

Test(lapic, timer_periodic_fires_on_the_clock)
{
	struct vcpu *v = vm->vcpus[0];
	int n = 0;

	th_apic_enable(vm, 0);
	/* Linux's __setup_APIC_LVTT: divide by 16, periodic, vector 0xec;
	 * 1 ms at the 1 GHz bus: 62500 counts. */
	th_apic_write(vm, 0, TDCR, 0x3);
	th_apic_write(vm, 0, LVTT, 0x200ec);
	th_apic_write(vm, 0, TMICT, 62500);
	for (int i = 0; i < 1000; i++) {
		vclock_advance_fake(100000);
		evloop_run_timers(vm->loop);
		while (irqchip_pending(v)) {
			cr_assert_eq(irqchip_ack(v), 0xec);
			cr_assert(vec_bit(0, ISR, 0xec));
			th_apic_write(vm, 0, EOI, 0);
			n++;
		}
	}
	cr_assert_eq(n, 100, "100 ms of a 1 ms timer: %d", n);
	cr_assert_eq(th_apic_read(vm, 0, TMCCT), 62500,
	    "on a period boundary the count has just reloaded");
	vclock_advance_fake(16 * 1000);
	cr_assert_eq(th_apic_read(vm, 0, TMCCT), 61500);
	/* Writing 0 to the initial count stops it. */
	th_apic_write(vm, 0, TMICT, 0);
	th_run(vm, 10000000, 1000000);
	cr_assert_not(irqchip_pending(v));
	cr_assert_eq(th_apic_read(vm, 0, TMCCT), 0);
}

/* Drain what the CPU can take now: ack + EOI until nothing is left. */
static int
drain(int cpu, int vec)
{
	int n = 0;

	while (irqchip_pending(vm->vcpus[cpu]) && n < 10000) {
		cr_assert_eq(irqchip_ack(vm->vcpus[cpu]), vec);
		th_apic_write(vm, cpu, EOI, 0);
		n++;
	}
	return n;
}

Test(lapic, missed_periodic_ticks_are_paid_back)
{
	th_apic_enable(vm, 0);
	th_apic_write(vm, 0, TDCR, 0xb);
	th_apic_write(vm, 0, LVTT, 0x200ec);
	th_apic_write(vm, 0, TMICT, 4000000);	/* 4 ms, HZ=250 */
	/* Interrupts off for 10 periods: one tick waits in the IRR... */
	th_run(vm, 40000000, 1000000);
	cr_assert(irqchip_pending(vm->vcpus[0]));
	/* ...and the other nine follow, one per EOI. */
	cr_assert_eq(drain(0, 0xec), 10);
	th_run(vm, 4000000, 1000000);
	cr_assert_eq(drain(0, 0xec), 1, "then on the clock again");
	/* A guest that stood still for long gets at most a second back. */
	th_run(vm, 5000000000ull, 100000000);
	cr_assert_eq(drain(0, 0xec), 251);
	/* Masking forgives the debt. */
	th_run(vm, 40000000, 1000000);
	th_apic_write(vm, 0, LVTT, 0x300ec);
	th_apic_write(vm, 0, LVTT, 0x200ec);
	cr_assert_leq(drain(0, 0xec), 1);
}

Test(lapic, every_new_interrupt_kicks)
{
	th_apic_enable(vm, 1);
	th_kicked(vm, 1);
	ipi(0, 1, 0x41);
	cr_assert(th_kicked(vm, 1));
	/* Still pending (not taken), another arrives: kicked again. */
	ipi(0, 1, 0x42);
	cr_assert(th_kicked(vm, 1));
	/* Blocked by the TPR: no reason to wake. */
	cr_assert_eq(irqchip_ack(vm->vcpus[1]), 0x42);
	th_apic_write(vm, 1, EOI, 0);
	cr_assert_eq(irqchip_ack(vm->vcpus[1]), 0x41);
	th_apic_write(vm, 1, EOI, 0);
	th_apic_write(vm, 1, TPR, 0xf0);
	th_kicked(vm, 1);
	ipi(0, 1, 0x43);
	cr_assert_not(th_kicked(vm, 1));
}

Test(lapic, timer_oneshot_and_current_count)
{
	struct vcpu *v = vm->vcpus[0];

	th_apic_enable(vm, 0);
	th_apic_write(vm, 0, TDCR, 0xb);	/* divide by 1 */
	th_apic_write(vm, 0, LVTT, 0xef);
	th_apic_write(vm, 0, TMICT, 5000);
	vclock_advance_fake(1234);
	cr_assert_eq(th_apic_read(vm, 0, TMCCT), 5000 - 1234);
	evloop_run_timers(vm->loop);
	cr_assert_not(irqchip_pending(v));
	vclock_advance_fake(5000 - 1234);
	evloop_run_timers(vm->loop);
	cr_assert(irqchip_pending(v));
	cr_assert_eq(irqchip_ack(v), 0xef);
	th_apic_write(vm, 0, EOI, 0);
	cr_assert_eq(th_apic_read(vm, 0, TMCCT), 0);
	th_run(vm, 100000, 1000);
	cr_assert_not(irqchip_pending(v), "one shot only");
}

Test(lapic, divide_uses_bits_0_1_3)
{
	static const struct { uint32_t dcr, div; } t[] = {
		{ 0x0, 2 }, { 0x1, 4 }, { 0x2, 8 }, { 0x3, 16 },
		{ 0x8, 32 }, { 0x9, 64 }, { 0xa, 128 }, { 0xb, 1 },
		{ 0x4, 2 },	/* bit 2 is not part of it */
	};

	th_apic_enable(vm, 0);
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		th_apic_write(vm, 0, TDCR, t[i].dcr);
		th_apic_write(vm, 0, TMICT, 1000000);
		vclock_advance_fake(t[i].div * 1000);
		cr_assert_eq(th_apic_read(vm, 0, TMCCT), 999000,
		    "dcr %#x", t[i].dcr);
	}
}

Test(lapic, masked_timer_still_counts)
{
	struct vcpu *v = vm->vcpus[0];

	th_apic_enable(vm, 0);
	th_apic_write(vm, 0, TDCR, 0xb);
	th_apic_write(vm, 0, LVTT, 0x300ec);	/* periodic, masked */
	th_apic_write(vm, 0, TMICT, 1000000);
	th_run(vm, 2500000, 100000);
	cr_assert_not(irqchip_pending(v));
	cr_assert_eq(th_apic_read(vm, 0, TMCCT), 500000);
	th_apic_write(vm, 0, LVTT, 0x200ec);	/* unmask */
	th_run(vm, 500000, 100000);
	cr_assert(irqchip_pending(v), "fires at the next boundary");
	/* A one-shot that runs out while masked never fires. */
	th_apic_write(vm, 0, LVTT, 0x100ed);
	th_apic_write(vm, 0, TMICT, 1000);
	th_run(vm, 5000, 1000);
	th_apic_write(vm, 0, LVTT, 0xed);
	th_run(vm, 5000, 1000);
	cr_assert_not(vec_bit(0, IRR, 0xed));
}

Test(lapic, tpr_ppr_and_eoi_order)
{
	struct vcpu *v = vm->vcpus[0];

	th_apic_enable(vm, 0);
	th_apic_write(vm, 0, TPR, 0x50);
	ipi(0, 0, 0x40045);		/* self, fixed 0x45 */
	cr_assert(vec_bit(0, IRR, 0x45));
	cr_assert_not(irqchip_pending(v), "class 4 <= TPR class 5");
	cr_assert_eq(irqchip_get_tpr(v), 5);
	irqchip_set_tpr(v, 3);
	cr_assert_eq(th_apic_read(vm, 0, TPR), 0x30, "CR8 is TPR[7:4]");
	cr_assert(irqchip_pending(v));
	cr_assert_eq(irqchip_ack(v), 0x45);
	cr_assert_eq(th_apic_read(vm, 0, PPR), 0x40);
	ipi(0, 0, 0x40061);
	ipi(0, 0, 0x40048);		/* same class as in service: waits */
	cr_assert_eq(irqchip_ack(v), 0x61);
	cr_assert_not(irqchip_pending(v));
	th_apic_write(vm, 0, EOI, 0);	/* ends 0x61, the highest */
	cr_assert(vec_bit(0, ISR, 0x45));
	cr_assert_not(vec_bit(0, ISR, 0x61));
	cr_assert_not(irqchip_pending(v));
	th_apic_write(vm, 0, EOI, 0);
	cr_assert_eq(irqchip_ack(v), 0x48);
}

/* smpboot.c wakeup_secondary_cpu_via_init: INIT assert, INIT
 * de-assert, then two STARTUPs. */
Test(lapic, init_sipi_wakes_another_cpu)
{
	struct vcpu *ap = vm->vcpus[1];
	uint8_t vec = 0;

	th_apic_enable(vm, 0);
	th_apic_enable(vm, 1);
	th_apic_write(vm, 1, TPR, 0x20);
	th_kicked(vm, 1);
	ipi(0, 1, 0xc500);
	cr_assert(th_kicked(vm, 1));
	cr_assert(irqchip_take_init(ap));
	cr_assert_not(irqchip_take_init(ap), "once per event");
	cr_assert_eq(th_apic_read(vm, 1, TPR), 0, "INIT resets the LAPIC");
	cr_assert_eq(th_apic_read(vm, 1, SVR), 0xff);
	cr_assert_eq(th_apic_read(vm, 1, ID), 1u << 24, "but keeps its ID");
	ipi(0, 1, 0x8500);
	cr_assert_not(irqchip_take_init(ap), "de-assert is not an INIT");
	ipi(0, 1, 0x0600 | 0x9a);
	cr_assert(th_kicked(vm, 1));
	cr_assert(irqchip_take_sipi(ap, &vec));
	cr_assert_eq(vec, 0x9a);
	cr_assert_not(irqchip_take_sipi(ap, &vec));
	/* The second STARTUP comes while the AP runs; a later INIT (CPU
	 * hotplug) must not find it. */
	ipi(0, 1, 0x0600 | 0x9a);
	ipi(0, 1, 0xc500);
	cr_assert(irqchip_take_init(ap));
	cr_assert_not(irqchip_take_sipi(ap, &vec));
	cr_assert_not(irqchip_take_init(vm->vcpus[2]));
	cr_assert_not(irqchip_take_sipi(vm->vcpus[2], &vec));
}

Test(lapic, shorthands_and_logical_destinations)
{
	for (int c = 0; c < 3; c++)
		th_apic_enable(vm, c);
	/* All excluding self (Linux's apic_send_IPI_allbutself). */
	ipi(0, 0, 0xc00fd);
	cr_assert_not(vec_bit(0, IRR, 0xfd));
	cr_assert(vec_bit(1, IRR, 0xfd));
	cr_assert(vec_bit(2, IRR, 0xfd));
	cr_assert(irqchip_pending(vm->vcpus[2]));
	/* All including self. */
	ipi(1, 0, 0x800fc);
	for (int c = 0; c < 3; c++)
		cr_assert(vec_bit(c, IRR, 0xfc));
	/* Logical flat: LDR bit per CPU, as Linux's flat APIC driver. */
	for (int c = 0; c < 3; c++)
		th_apic_write(vm, c, LDR, 1u << (24 + c));
	ipi(0, 0x06, 0x8f1);		/* logical, CPUs 1 and 2 */
	cr_assert_not(vec_bit(0, IRR, 0xf1));
	cr_assert(vec_bit(1, IRR, 0xf1) && vec_bit(2, IRR, 0xf1));
	/* Cluster model: CPUs 0, 1 in cluster 0, CPU 2 member 2 of 1. */
	for (int c = 0; c < 3; c++)
		th_apic_write(vm, c, DFR, 0x0fffffff);
	th_apic_write(vm, 2, LDR, 0x12000000);
	ipi(0, 0x12, 0x8f2);
	cr_assert(vec_bit(2, IRR, 0xf2));
	cr_assert_not(vec_bit(1, IRR, 0xf2));
	/* Physical broadcast. */
	ipi(0, 0xff, 0xf3);
	for (int c = 0; c < 3; c++)
		cr_assert(vec_bit(c, IRR, 0xf3));
}

Test(lapic, nmi_ipi_and_disabled_apic)
{
	th_apic_enable(vm, 0);
	/* CPU 1 is still software-disabled: fixed IPIs are dropped, NMIs
	 * are not. */
	ipi(0, 1, 0x40);
	cr_assert_not(vec_bit(1, IRR, 0x40));
	ipi(0, 1, 0x400);
	cr_assert(irqchip_take_nmi(vm->vcpus[1]));
	cr_assert_not(irqchip_take_nmi(vm->vcpus[1]));
	cr_assert_not(irqchip_take_nmi(vm->vcpus[0]));
}

Test(lapic, writes_to_read_only_registers)
{
	th_apic_enable(vm, 0);
	th_apic_write(vm, 0, VER, 0);
	th_apic_write(vm, 0, PPR, 0xff);
	th_apic_write(vm, 0, TMCCT, 5);
	th_apic_write(vm, 0, ICR, 0x1000 | 0x40040);	/* status bit */
	cr_assert_eq(th_apic_read(vm, 0, VER), 0x00050014);
	cr_assert_eq(th_apic_read(vm, 0, PPR), 0);
	cr_assert_eq(th_apic_read(vm, 0, TMCCT), 0);
	cr_assert_eq(th_apic_read(vm, 0, ICR), 0x40040, "always idle");
	th_apic_write(vm, 0, ESR, 0);
	cr_assert_eq(th_apic_read(vm, 0, ESR), 0, "read-only is no error");
	th_apic_write(vm, 0, 0x50, 1);			/* reserved */
	th_apic_write(vm, 0, ESR, 0);
	cr_assert_eq(th_apic_read(vm, 0, ESR), 0x80);
}

Test(lapic, esr_reports_illegal_vectors)
{
	th_apic_enable(vm, 0);
	th_apic_enable(vm, 1);
	th_apic_write(vm, 0, LVTERR, 0xfe);
	ipi(0, 1, 0x05);		/* vector 5 is illegal */
	cr_assert_not(vec_bit(1, IRR, 0x05));
	cr_assert_eq(th_apic_read(vm, 0, ESR), 0, "latched on ESR write");
	cr_assert(vec_bit(0, IRR, 0xfe), "error LVT fired");
	th_apic_write(vm, 0, ESR, 0);
	cr_assert_eq(th_apic_read(vm, 0, ESR), 0x20);
	th_apic_write(vm, 0, ESR, 0);
	cr_assert_eq(th_apic_read(vm, 0, ESR), 0);
}

Test(lapic, software_disable_forces_masks)
{
	th_apic_enable(vm, 0);
	th_apic_write(vm, 0, LVTT, 0xec);
	th_apic_write(vm, 0, SVR, 0xff);
	cr_assert(th_apic_read(vm, 0, LVTT) & 0x10000);
	th_apic_write(vm, 0, LINT1, 0x400);
	cr_assert_eq(th_apic_read(vm, 0, LINT1), 0x10400, "mask sticks");
	th_apic_enable(vm, 0);
	th_apic_write(vm, 0, LINT1, 0x400);
	cr_assert_eq(th_apic_read(vm, 0, LINT1), 0x400);
}

Test(lapic, apic_base_msr)
{
	struct vcpu *v = vm->vcpus[1];
	uint8_t d[4];

	cr_assert_eq(irqchip_set_apic_base(v, 0xfee00c00), -EINVAL,
	    "x2APIC is not advertised");
	cr_assert_eq(irqchip_set_apic_base(v, 0xfee00801), -EINVAL);
	/* Relocated: CPU 1 finds its APIC at the new base only. */
	cr_assert_eq(irqchip_set_apic_base(v, 0xfed40800), 0);
	cr_assert(bus_access(vm->mmio, v, 0xfed40020, d, 4, false));
	cr_assert_eq(bus_get(d, 4), 1u << 24);
	cr_assert(bus_access(vm->mmio, v, GPA_LAPIC + 0x20, d, 4, false));
	cr_assert_eq(bus_get(d, 4), 0xffffffff);
	cr_assert_eq(th_apic_read(vm, 2, ID), 2u << 24);
	/* Moved back, the extra page goes away. */
	cr_assert_eq(irqchip_set_apic_base(v, 0xfee00800), 0);
	cr_assert_not(bus_access(vm->mmio, v, 0xfed40020, d, 4, false));
	cr_assert_eq(th_apic_read(vm, 1, ID), 1u << 24);
	/* Hardware-disabled: the page reads as nothing, and on re-enable
	 * the APIC starts over. */
	th_apic_enable(vm, 1);
	cr_assert_eq(irqchip_set_apic_base(v, 0xfee00000), 0);
	cr_assert_eq(th_apic_read(vm, 1, ID), 0xffffffff);
	cr_assert_eq(irqchip_set_apic_base(v, 0xfee00800), 0);
	cr_assert_eq(th_apic_read(vm, 1, SVR), 0xff);
}

Test(lapic, odd_accesses_are_harmless)
{
	uint8_t d[8] = { 0 };

	/* Byte read of the ID's top byte; 8-byte read of the version. */
	cr_assert(bus_access(vm->mmio, vm->vcpus[1], GPA_LAPIC + 0x23, d, 1,
	    false));
	cr_assert_eq(d[0], 1);
	cr_assert(bus_access(vm->mmio, vm->vcpus[0], GPA_LAPIC + 0x30, d, 8,
	    false));
	cr_assert_eq(bus_get(d, 8), 0x00050014);
	/* Unaligned and short writes are dropped. */
	d[0] = 0x55;
	bus_access(vm->mmio, vm->vcpus[0], GPA_LAPIC + 0x81, d, 1, true);
	bus_access(vm->mmio, vm->vcpus[0], GPA_LAPIC + 0x80, d, 2, true);
	cr_assert_eq(th_apic_read(vm, 0, TPR), 0);
	/* A DMA write (no vCPU) to the APIC page is an MSI (to APIC 0). */
	th_apic_enable(vm, 0);
	bus_put(d, 4, 0x4077);
	cr_assert(bus_access(vm->mmio, NULL, GPA_LAPIC, d, 4, true));
	cr_assert(th_apic_read(vm, 0, IRR + 0x30) & (1u << (0x77 - 0x60)));
}

Test(lapic, msi_reaches_its_destination)
{
	th_apic_enable(vm, 2);
	cr_assert_eq(irqchip_msi(vm, 0xfee02000, 0x4077), 0);
	cr_assert(vec_bit(2, IRR, 0x77));
	cr_assert_not(vec_bit(2, TMR, 0x77), "MSIs are edge");
	cr_assert_eq(irqchip_msi(vm, 0xfed00000, 0x4077), -EINVAL);
}

Test(lapic, garbage_never_crashes)
{
	unsigned seed = 3;

	for (int i = 0; i < 30000; i++) {
		int c = rand_r(&seed) % 3;
		unsigned reg = (rand_r(&seed) % 0x1000) & ~3u;
		uint32_t v = (uint32_t)rand_r(&seed) ^
		    ((uint32_t)rand_r(&seed) << 16);

		/* Keep the IPIs away from INIT, which resets the APIC. */
		if (reg == ICR && ((v >> 8) & 7) == 5)
			v &= ~0x700u;
		if (rand_r(&seed) & 1)
			th_apic_write(vm, c, reg, v);
		else
			(void)th_apic_read(vm, c, reg);
		if ((i & 31) == 0) {
			vclock_advance_fake(rand_r(&seed) % 100000);
			evloop_run_timers(vm->loop);
		}
		if (irqchip_pending(vm->vcpus[c])) {
			int vec = irqchip_ack(vm->vcpus[c]);

			cr_assert(vec >= -1 && vec < 256);
		}
		irqchip_take_nmi(vm->vcpus[c]);
		irqchip_take_init(vm->vcpus[c]);
		irqchip_take_sipi(vm->vcpus[c], NULL);
	}
}

Test(lapic, snapshot_rearms_the_timer)
{
	struct snap s, l;
	int n = 0;

	th_apic_enable(vm, 1);
	th_apic_write(vm, 1, TDCR, 0xb);
	th_apic_write(vm, 1, LVTT, 0x200d0);
	th_apic_write(vm, 1, TMICT, 1000000);	/* 1 ms */
	th_apic_write(vm, 1, TPR, 0x10);
	ipi(1, 1, 0x4033);
	vclock_advance_fake(400000);
	snap_init_save(&s);
	for (int c = 0; c < 3; c++) {
		char n2[24];

		snprintf(n2, sizeof(n2), "lapic%d", c);
		th_snap_save(vm, n2, &s);
	}
	th_vm_free(vm);
	vclock_advance_fake(5000000000ull);
	vm = th_vm_new(3);
	snap_init_load(&l, s.buf, s.len);
	for (int c = 0; c < 3; c++) {
		char n2[24];

		snprintf(n2, sizeof(n2), "lapic%d", c);
		th_snap_load(vm, n2, &l);
	}
	snap_free(&s);
	cr_assert_eq(th_apic_read(vm, 1, TMCCT), 600000);
	cr_assert_eq(th_apic_read(vm, 1, TPR), 0x10);
	cr_assert(vec_bit(1, IRR, 0x33));
	cr_assert(irqchip_pending(vm->vcpus[1]));
	cr_assert_eq(irqchip_ack(vm->vcpus[1]), 0x33);
	th_apic_write(vm, 1, EOI, 0);
	for (int i = 0; i < 100; i++) {
		vclock_advance_fake(100000);
		evloop_run_timers(vm->loop);
		while (irqchip_pending(vm->vcpus[1])) {
			cr_assert_eq(irqchip_ack(vm->vcpus[1]), 0xd0);
			th_apic_write(vm, 1, EOI, 0);
			n++;
		}
	}
	cr_assert_eq(n, 10);
}

/*
 * The software CPU's own path (lapic_cpu_mmio): registers of the
 * vCPU's APIC page without vm->devlock (held here by "the event
 * thread"), the same registers the bus reaches; any other address, or
 * a disabled APIC, is left to the bus.
 */
Test(lapic, cpu_path_needs_no_device_lock)
{
	struct vcpu *v = vm->vcpus[1];
	uint8_t d[4];

	th_apic_enable(vm, 1);
	pthread_mutex_lock(&vm->devlock);
	bus_put(d, 4, 0x30);
	cr_assert(lapic_cpu_mmio(v, GPA_LAPIC + TPR, d, 4, true));
	ipi(1, 1, 0x40061);
	cr_assert_eq(irqchip_ack(v), 0x61);
	cr_assert(vec_bit(1, ISR, 0x61));
	bus_put(d, 4, 0);
	cr_assert(lapic_cpu_mmio(v, GPA_LAPIC + EOI, d, 4, true));
	cr_assert_not(vec_bit(1, ISR, 0x61), "EOI ended it");
	cr_assert(lapic_cpu_mmio(v, GPA_LAPIC + ID, d, 4, false));
	cr_assert_eq(bus_get(d, 4), 1u << 24);
	cr_assert_not(lapic_cpu_mmio(v, GPA_LAPIC + 0x1000, d, 4, false));
	cr_assert_not(lapic_cpu_mmio(v, 0xfec00000, d, 4, false));
	pthread_mutex_unlock(&vm->devlock);
	cr_assert_eq(th_apic_read(vm, 1, TPR), 0x30);
	/* Globally disabled (APIC base bit 11 clear): no page at all. */
	cr_assert_eq(irqchip_set_apic_base(v, GPA_LAPIC), 0);
	cr_assert_not(lapic_cpu_mmio(v, GPA_LAPIC + ID, d, 4, false));
}
