/*
 * The I/O APIC through IOREGSEL/IOWIN (and the EOI register), routing
 * lines to the LAPICs the way Linux's io_apic.c programs it.
 */
#include "irqchip_harness.h"

#include <errno.h>

#include "devices/ioapic.h"
#include "devices/lapic.h"

#define RTE_LEVEL	(1ull << 15)
#define RTE_MASKED	(1ull << 16)
#define RTE_REMOTE_IRR	(1ull << 14)
#define RTE_LOGICAL	(1ull << 11)
#define DEST(x)		((uint64_t)(x) << 56)

static struct vm *vm;

static void
setup(void)
{
	vm = th_vm_new(2);
	th_apic_enable(vm, 0);
	th_apic_enable(vm, 1);
}

static void
teardown(void)
{
	th_vm_free(vm);
}

TestSuite(ioapic, .init = setup, .fini = teardown);

static uint64_t
rte(unsigned pin)
{
	return th_ioapic_read(vm, 0x10 + 2 * pin) |
	    (uint64_t)th_ioapic_read(vm, 0x11 + 2 * pin) << 32;
}

static void
apic_eoi(int cpu)
{
	th_apic_write(vm, cpu, 0xb0, 0);
}

Test(ioapic, identification_and_reset_state)
{
	cr_assert_eq(th_ioapic_read(vm, 0x01), 0x00170020, "24 pins, v0x20");
	th_ioapic_write(vm, 0x00, 0x0f000000 | 0x1234);
	cr_assert_eq(th_ioapic_read(vm, 0x00), 0x0f000000);
	for (unsigned p = 0; p < IOAPIC_NPINS; p++)
		cr_assert_eq(rte(p), RTE_MASKED, "pin %u", p);
	/* Past the table reads as zero and writes are dropped. */
	th_ioapic_write(vm, 0x40, 0xffffffff);
	cr_assert_eq(th_ioapic_read(vm, 0x40), 0);
	/* Read-only bits stay out of the guest's hands. */
	th_ioapic_route(vm, 3, 0xffffffffffffffffull);
	cr_assert_eq(rte(3), 0xff0000000001afffull & ~(1ull << 12));
}

Test(ioapic, irq0_edge_via_pin_2)
{
	struct vcpu *v = vm->vcpus[0];

	/* The source override: ISA IRQ 0 arrives on pin 2. */
	th_ioapic_route(vm, 2, 0x30 | DEST(0));
	irqchip_set_irq(vm, 0, 1);
	irqchip_set_irq(vm, 0, 0);
	cr_assert(irqchip_pending(v));
	cr_assert_eq(irqchip_ack(v), 0x30);
	apic_eoi(0);
	cr_assert_eq(rte(2) & RTE_REMOTE_IRR, 0, "edge: no remote IRR");
	/* Holding the line high is one edge only. */
	irqchip_set_irq(vm, 0, 1);
	irqchip_set_irq(vm, 0, 1);
	cr_assert_eq(irqchip_ack(v), 0x30);
	apic_eoi(0);
	cr_assert_not(irqchip_pending(v));
}

Test(ioapic, level_with_remote_irr_and_eoi)
{
	struct vcpu *v = vm->vcpus[1];

	th_ioapic_route(vm, 11, 0x41 | RTE_LEVEL | DEST(1));
	irqchip_set_irq(vm, 11, 1);
	cr_assert(rte(11) & RTE_REMOTE_IRR);
	cr_assert(irqchip_pending(v));
	cr_assert_not(irqchip_pending(vm->vcpus[0]));
	cr_assert_eq(irqchip_ack(v), 0x41);
	cr_assert(th_apic_read(vm, 1, 0x180 + 0x20) & (1u << 1), "TMR");
	/* Still asserted at the EOI: delivered again. */
	apic_eoi(1);
	cr_assert(rte(11) & RTE_REMOTE_IRR);
	cr_assert(irqchip_pending(v));
	cr_assert_eq(irqchip_ack(v), 0x41);
	/* The device lowers its line, then the handler's EOI. */
	irqchip_set_irq(vm, 11, 0);
	apic_eoi(1);
	cr_assert_eq(rte(11) & RTE_REMOTE_IRR, 0);
	cr_assert_not(irqchip_pending(v));
}

Test(ioapic, masks_and_unmask_of_asserted_level)
{
	struct vcpu *v = vm->vcpus[0];

	th_ioapic_route(vm, 9, 0x49 | RTE_LEVEL | RTE_MASKED | DEST(0));
	irqchip_set_irq(vm, 9, 1);
	cr_assert_not(irqchip_pending(v));
	th_ioapic_route(vm, 9, 0x49 | RTE_LEVEL | DEST(0));
	cr_assert(irqchip_pending(v), "asserted level delivers on unmask");
	/* A masked edge is lost. */
	th_ioapic_route(vm, 4, 0x44 | RTE_MASKED | DEST(0));
	irqchip_set_irq(vm, 4, 1);
	irqchip_set_irq(vm, 4, 0);
	th_ioapic_route(vm, 4, 0x44 | DEST(0));
	cr_assert_eq(irqchip_ack(v), 0x49);
	cr_assert_not(irqchip_pending(v));
}

Test(ioapic, eoi_register_and_edge_flip_clear_remote_irr)
{
	uint8_t vec = 0x52;

	th_ioapic_route(vm, 16, vec | RTE_LEVEL | DEST(0));
	irqchip_set_irq(vm, 16, 1);
	irqchip_set_irq(vm, 16, 0);
	cr_assert(rte(16) & RTE_REMOTE_IRR);
	bus_access(vm->mmio, vm->vcpus[0], GPA_IOAPIC + 0x40, &vec, 1, true);
	cr_assert_eq(rte(16) & RTE_REMOTE_IRR, 0);
	/* Linux's stuck-IRR workaround: make it edge, then level again. */
	irqchip_set_irq(vm, 16, 1);
	irqchip_set_irq(vm, 16, 0);
	cr_assert(rte(16) & RTE_REMOTE_IRR);
	th_ioapic_route(vm, 16, vec | DEST(0));
	th_ioapic_route(vm, 16, vec | RTE_LEVEL | DEST(0));
	cr_assert_eq(rte(16) & RTE_REMOTE_IRR, 0);
}

Test(ioapic, logical_and_lowest_priority)
{
	th_apic_write(vm, 0, 0xd0, 0x01000000);
	th_apic_write(vm, 1, 0xd0, 0x02000000);
	th_ioapic_route(vm, 5, 0x55 | RTE_LOGICAL | DEST(0x02));
	irqchip_set_irq(vm, 5, 1);
	cr_assert_not(irqchip_pending(vm->vcpus[0]));
	cr_assert_eq(irqchip_ack(vm->vcpus[1]), 0x55);
	apic_eoi(1);
	/* Lowest priority among both: CPU 0 is busy at TPR 0x40. */
	th_apic_write(vm, 0, 0x80, 0x40);
	th_ioapic_route(vm, 6, 0x56 | (1 << 8) | RTE_LOGICAL | DEST(0x03));
	for (int i = 0; i < 4; i++) {
		irqchip_set_irq(vm, 6, 1);
		irqchip_set_irq(vm, 6, 0);
		cr_assert(th_apic_read(vm, 1, 0x200 + 0x20) & (1u << 0x16));
		cr_assert_eq(th_apic_read(vm, 0, 0x200 + 0x20), 0);
	}
}

Test(ioapic, nmi_and_extint_delivery)
{
	struct vcpu *v = vm->vcpus[0];

	th_ioapic_route(vm, 7, (4 << 8) | DEST(1));
	irqchip_set_irq(vm, 7, 1);
	cr_assert(irqchip_take_nmi(vm->vcpus[1]));
	cr_assert_not(irqchip_take_nmi(v));
	/* ExtINT through pin 0 with LINT0 masked: INTA goes to the PIC. */
	th_apic_write(vm, 0, 0x350, 0x10700);
	th_pic_init_linux(vm, 0xfd, 0xff);
	th_ioapic_route(vm, 0, (7 << 8) | DEST(0));
	irqchip_set_irq(vm, 1, 1);
	cr_assert(irqchip_pending(v));
	cr_assert_eq(irqchip_ack(v), 0x31);
	cr_assert_not(irqchip_pending(v));
}

Test(ioapic, garbage_never_crashes)
{
	unsigned seed = 11;

	for (int i = 0; i < 30000; i++) {
		uint8_t d[4];
		uint64_t off = (uint64_t[]){ 0, 0x10, 0x40, 0x20,
		    rand_r(&seed) % 0x100 }[rand_r(&seed) % 5];
		unsigned len = 1u << (rand_r(&seed) % 3);

		bus_put(d, 4, (uint32_t)rand_r(&seed) * 2654435761u);
		bus_access(vm->mmio, vm->vcpus[0], GPA_IOAPIC + off, d, len,
		    rand_r(&seed) & 1);
		if ((i & 7) == 0)
			irqchip_set_irq(vm, rand_r(&seed) % 24,
			    rand_r(&seed) & 1);
		for (int c = 0; c < 2; c++) {
			if (irqchip_pending(vm->vcpus[c]))
				irqchip_ack(vm->vcpus[c]);
			if (rand_r(&seed) & 1)
				apic_eoi(c);
			irqchip_take_nmi(vm->vcpus[c]);
			irqchip_take_init(vm->vcpus[c]);
			irqchip_take_sipi(vm->vcpus[c], NULL);
		}
	}
	cr_assert_eq(irqchip_set_irq(vm, 24, 1), -EINVAL);
}

Test(ioapic, snapshot_round_trip)
{
	struct vm *b;

	th_ioapic_route(vm, 11, 0x41 | RTE_LEVEL | DEST(1));
	th_ioapic_route(vm, 2, 0x30 | DEST(0));
	irqchip_set_irq(vm, 11, 1);
	cr_assert_eq(irqchip_ack(vm->vcpus[1]), 0x41);
	b = th_vm_new(2);
	th_snap_copy(vm, b, "ioapic");
	th_snap_copy(vm, b, "lapic0");
	th_snap_copy(vm, b, "lapic1");
	th_vm_free(vm);
	vm = b;
	cr_assert_eq(rte(2), 0x30);
	cr_assert(rte(11) & RTE_REMOTE_IRR);
	/* The EOI after the restore still finds the line asserted. */
	apic_eoi(1);
	cr_assert_eq(irqchip_ack(vm->vcpus[1]), 0x41);
	irqchip_set_irq(vm, 11, 0);
	apic_eoi(1);
	cr_assert_eq(rte(11) & RTE_REMOTE_IRR, 0);
}
