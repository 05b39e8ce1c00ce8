/*
 * The 8259 pair driven through ports 0x20/0x21, 0xa0/0xa1 and the ELCR,
 * programmed as Linux programs it, with INTA done by the vCPU side of the
 * irqchip (BSP LINT0 in virtual-wire mode, as after reset).
 */
#include "irqchip_harness.h"

#include "devices/i8259.h"
#include "devices/lapic.h"

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

TestSuite(i8259, .init = setup, .fini = teardown);

static uint8_t
read_isr(int slave)
{
	th_outb(vm, slave ? 0xa0 : 0x20, 0x0b);
	return th_inb(vm, slave ? 0xa0 : 0x20);
}

static uint8_t
read_irr(int slave)
{
	th_outb(vm, slave ? 0xa0 : 0x20, 0x0a);
	return th_inb(vm, slave ? 0xa0 : 0x20);
}

static void
pulse(unsigned irq)
{
	irqchip_set_irq(vm, irq, 1);
	irqchip_set_irq(vm, irq, 0);
}

Test(i8259, power_on_is_masked_and_quiet)
{
	cr_assert_eq(th_inb(vm, 0x21), 0xff);
	cr_assert_eq(th_inb(vm, 0xa1), 0xff);
	pulse(1);
	cr_assert_not(irqchip_pending(vm->vcpus[0]));
}

Test(i8259, linux_init_then_irq0_through_lint0)
{
	struct vcpu *v = vm->vcpus[0];

	th_pic_init_linux(vm, 0xfa, 0xff);	/* IRQ0 and cascade open */
	cr_assert_eq(th_inb(vm, 0x21), 0xfa);
	cr_assert_eq(th_inb(vm, 0xa1), 0xff);
	th_kicked(vm, 0);
	pulse(0);
	cr_assert(irqchip_pending(v));
	cr_assert(th_kicked(vm, 0), "a new interrupt kicks the vCPU");
	cr_assert_eq(read_irr(0), 0x01);
	cr_assert_eq(irqchip_ack(v), 0x30);
	cr_assert_not(irqchip_pending(v));
	cr_assert_eq(read_isr(0), 0x01);
	cr_assert_eq(read_irr(0), 0x00);
	/* Linux's mask_and_ack_8259A: specific EOI 0x60 + irq. */
	th_outb(vm, 0x20, 0x60);
	cr_assert_eq(read_isr(0), 0x00);
	/* A masked line stays latched but quiet. */
	pulse(1);
	cr_assert_not(irqchip_pending(v));
	cr_assert_eq(read_irr(0), 0x02);
	th_outb(vm, 0x21, 0xf8);
	cr_assert(irqchip_pending(v));
	cr_assert_eq(irqchip_ack(v), 0x31);
}

Test(i8259, cascade_through_ir2)
{
	struct vcpu *v = vm->vcpus[0];

	th_pic_init_linux(vm, 0xfb, 0xfe);	/* IRQ 8 only */
	pulse(8);
	cr_assert(irqchip_pending(v));
	cr_assert_eq(irqchip_ack(v), 0x38);
	cr_assert_eq(read_isr(1), 0x01);
	cr_assert_eq(read_isr(0), 0x04);
	/* Linux: EOI the slave line, then the cascade on the master. */
	th_outb(vm, 0xa0, 0x60);
	th_outb(vm, 0x20, 0x62);
	cr_assert_eq(read_isr(1), 0);
	cr_assert_eq(read_isr(0), 0);
	cr_assert_not(irqchip_pending(v));
}

Test(i8259, priorities_and_nesting)
{
	struct vcpu *v = vm->vcpus[0];

	th_pic_init_linux(vm, 0x00, 0xff);
	pulse(3);
	cr_assert_eq(irqchip_ack(v), 0x33);
	/* A lower priority line waits for the EOI... */
	pulse(5);
	cr_assert_not(irqchip_pending(v));
	/* ...a higher one nests. */
	pulse(1);
	cr_assert(irqchip_pending(v));
	cr_assert_eq(irqchip_ack(v), 0x31);
	cr_assert_eq(read_isr(0), 0x0a);
	/* Non-specific EOI ends the highest in service (IRQ1). */
	th_outb(vm, 0x20, 0x20);
	cr_assert_eq(read_isr(0), 0x08);
	cr_assert_not(irqchip_pending(v));
	th_outb(vm, 0x20, 0x20);
	cr_assert(irqchip_pending(v));
	cr_assert_eq(irqchip_ack(v), 0x35);
	/* Two requests at once: the lower line number wins. */
	th_outb(vm, 0x20, 0x20);
	pulse(6);
	pulse(4);
	cr_assert_eq(irqchip_ack(v), 0x34);
}

Test(i8259, rotation_changes_priority)
{
	struct vcpu *v = vm->vcpus[0];

	th_pic_init_linux(vm, 0x00, 0xff);
	/* Set priority: IRQ 4 lowest, so IRQ 5 is now the highest. */
	th_outb(vm, 0x20, 0xc4);
	pulse(1);
	pulse(5);
	cr_assert_eq(irqchip_ack(v), 0x35);
	th_outb(vm, 0x20, 0x20);
	cr_assert_eq(irqchip_ack(v), 0x31);
	/* Rotate on non-specific EOI: IRQ 1 becomes the lowest. */
	th_outb(vm, 0x20, 0xa0);
	pulse(1);
	pulse(2 + 1);
	cr_assert_eq(irqchip_ack(v), 0x33);
}

Test(i8259, level_lines_follow_elcr)
{
	struct vcpu *v = vm->vcpus[0];

	th_pic_init_linux(vm, 0xfb, 0xfd);	/* IRQ 9 (SCI) */
	th_outb(vm, 0x4d1, 0x02);
	cr_assert_eq(th_inb(vm, 0x4d1), 0x02);
	irqchip_set_irq(vm, 9, 1);
	cr_assert_eq(irqchip_ack(v), 0x39);
	th_outb(vm, 0xa0, 0x61);
	th_outb(vm, 0x20, 0x62);
	/* Still asserted: requested again after the EOI. */
	cr_assert(irqchip_pending(v));
	irqchip_set_irq(vm, 9, 0);
	cr_assert_not(irqchip_pending(v));
	cr_assert_eq(read_irr(1), 0);
	/* IRQ 0-2, 8, 13 cannot be made level. */
	th_outb(vm, 0x4d0, 0xff);
	th_outb(vm, 0x4d1, 0xff);
	cr_assert_eq(th_inb(vm, 0x4d0), 0xf8);
	cr_assert_eq(th_inb(vm, 0x4d1), 0xde);
}

Test(i8259, edge_is_latched_until_acked)
{
	struct vcpu *v = vm->vcpus[0];

	th_pic_init_linux(vm, 0xef, 0xff);	/* IRQ 4 */
	irqchip_set_irq(vm, 4, 1);
	irqchip_set_irq(vm, 4, 1);		/* no new edge */
	cr_assert_eq(irqchip_ack(v), 0x34);
	th_outb(vm, 0x20, 0x20);
	cr_assert_not(irqchip_pending(v));
	irqchip_set_irq(vm, 4, 0);
	irqchip_set_irq(vm, 4, 1);
	cr_assert(irqchip_pending(v));
}

Test(i8259, auto_eoi_leaves_isr_clear)
{
	struct vcpu *v = vm->vcpus[0];

	th_outb(vm, 0x20, 0x11);
	th_outb(vm, 0x21, 0x08);
	th_outb(vm, 0x21, 0x04);
	th_outb(vm, 0x21, 0x03);		/* 8086, auto-EOI */
	th_outb(vm, 0x21, 0x00);
	pulse(0);
	cr_assert_eq(irqchip_ack(v), 0x08);
	cr_assert_eq(read_isr(0), 0);
	pulse(0);
	cr_assert(irqchip_pending(v), "no EOI needed for the next one");
}

Test(i8259, poll_mode)
{
	th_pic_init_linux(vm, 0x00, 0xff);
	th_outb(vm, 0x20, 0x0c);
	cr_assert_eq(th_inb(vm, 0x20), 0x00, "nothing pending polls as 0");
	pulse(6);
	th_outb(vm, 0x20, 0x0c);
	cr_assert_eq(th_inb(vm, 0x20), 0x86);
	cr_assert_eq(read_isr(0), 0x40, "a poll read is an INTA");
	/* The read after the poll is an ordinary register read again. */
	cr_assert_eq(th_inb(vm, 0x20), 0x40);
}

Test(i8259, spurious_irq7)
{
	struct i8259 *pic = ((struct irqchip *)vm->irqchip)->pic;
	struct vcpu *v = vm->vcpus[0];

	th_pic_init_linux(vm, 0x00, 0x00);
	/* Nothing requested when INTA comes: IRQ 7's vector, no ISR. */
	cr_assert_eq(i8259_inta(pic), 0x37);
	cr_assert_eq(read_isr(0), 0);
	/* A slave request masked before INTA takes master IR2 with it. */
	pulse(10);
	cr_assert(irqchip_pending(v));
	th_outb(vm, 0xa1, 0xff);
	cr_assert_not(irqchip_pending(v));
	cr_assert_eq(i8259_inta(pic), 0x37);
	cr_assert_eq(read_isr(1), 0);
	cr_assert_eq(read_isr(0), 0);
	/* Unmasked again, the latched slave request is still there. */
	th_outb(vm, 0xa1, 0x00);
	cr_assert_eq(irqchip_ack(v), 0x3a);
	cr_assert_eq(read_isr(1), 0x04);
	cr_assert_eq(read_isr(0), 0x04);
}

Test(i8259, apic_disabled_takes_pic_directly)
{
	struct vcpu *v = vm->vcpus[0];
	uint64_t base = irqchip_apic_base(v);

	th_pic_init_linux(vm, 0xfe, 0xff);
	/* Linux masks LINT0 on the BSP when it goes to the IOAPIC. */
	th_apic_enable(vm, 0);
	th_apic_write(vm, 0, 0x350, 0x10700);
	pulse(0);
	cr_assert_not(irqchip_pending(v));
	/* With the APIC off the INTR pin goes straight to the CPU. */
	cr_assert_eq(irqchip_set_apic_base(v, base & ~APIC_BASE_ENABLE), 0);
	cr_assert(irqchip_pending(v));
	cr_assert_eq(irqchip_ack(v), 0x30);
}

Test(i8259, garbage_never_crashes)
{
	struct vcpu *v = vm->vcpus[0];
	static const uint16_t ports[] = { 0x20, 0x21, 0xa0, 0xa1, 0x4d0,
	    0x4d1 };
	unsigned seed = 1;

	for (int i = 0; i < 20000; i++) {
		uint16_t p = ports[rand_r(&seed) % 6];

		if (rand_r(&seed) & 1)
			th_outb(vm, p, (uint8_t)rand_r(&seed));
		else
			(void)th_inb(vm, p);
		if ((i & 15) == 0)
			pulse(rand_r(&seed) % 16);
		if (irqchip_pending(v)) {
			int vec = irqchip_ack(v);

			cr_assert(vec >= -1 && vec < 256);
		}
	}
	/* Re-initialized, it behaves. */
	th_outb(vm, 0x4d0, 0);
	th_outb(vm, 0x4d1, 0);
	th_pic_init_linux(vm, 0xfe, 0xff);
	for (int i = 0; i < 8; i++) {
		th_outb(vm, 0x20, 0x20);
		th_outb(vm, 0xa0, 0x20);
	}
	while (irqchip_pending(v))
		irqchip_ack(v);
	th_outb(vm, 0x20, 0x20);
	pulse(0);
	cr_assert_eq(irqchip_ack(v), 0x30);
}

Test(i8259, snapshot_round_trip)
{
	struct vm *b;

	th_pic_init_linux(vm, 0x00, 0xfd);
	th_outb(vm, 0x4d1, 0x02);
	pulse(1);
	cr_assert_eq(irqchip_ack(vm->vcpus[0]), 0x31);
	irqchip_set_irq(vm, 9, 1);	/* waits behind IRQ 1 */
	b = th_vm_new(1);
	th_snap_copy(vm, b, "i8259");
	th_snap_copy(vm, b, "lapic0");
	cr_assert_eq(th_inb(b, 0x21), 0x00);
	cr_assert_eq(th_inb(b, 0xa1), 0xfd);
	cr_assert_eq(th_inb(b, 0x4d1), 0x02);
	th_outb(b, 0x20, 0x0b);
	cr_assert_eq(th_inb(b, 0x20), 0x02);
	/* IRQ 9 (via IR2) is still asserted: after the EOI it comes. */
	cr_assert_not(irqchip_pending(b->vcpus[0]));
	th_outb(b, 0x20, 0x20);
	cr_assert(irqchip_pending(b->vcpus[0]));
	cr_assert_eq(irqchip_ack(b->vcpus[0]), 0x39);
	th_vm_free(b);
}
