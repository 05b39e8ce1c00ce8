/*
 * How the guest ends the VM: ACPI S5 and reset register, power button
 * and SCI, the PM timer; and the isa-debug-exit port.
 */
#include <criterion/criterion.h>

#include "fake_vm.h"
#include "devices/acpi_pm.h"
#include "devices/debug_exit.h"
#include "migrate/snap.h"

static struct vm *vm;

static void
setup(void)
{
	vclock_set_fake(true, 7000000000ull);
	vm = fake_vm_new(64 << 20);
	cr_assert_eq(acpi_pm_ops.create(vm), 0);
}

static void
teardown(void)
{
	fake_vm_free(vm);
}

TestSuite(acpi_pm, .init = setup, .fini = teardown, .timeout = 10);

Test(acpi_pm, sci_en_reads_one)
{
	cr_assert_eq(fake_in(vm, 0x604, 2) & 1, 1);
	fake_out(vm, 0x604, 2, 0);
	cr_assert_eq(fake_in(vm, 0x604, 2) & 1, 1, "always in ACPI mode");
}

Test(acpi_pm, s5_powers_off)
{
	/* Linux: SLP_TYP first, then SLP_TYP|SLP_EN. */
	fake_out(vm, 0x604, 2, 5 << 10);
	cr_assert_eq(atomic_load(&vm->exit_request), 0);
	fake_out(vm, 0x604, 2, (5 << 10) | (1 << 13));
	cr_assert_eq(atomic_load(&vm->exit_request), VM_EVENT_POWEROFF);
	cr_assert_eq(vm->exit_status, 0);
	cr_assert_eq(fake_in(vm, 0x604, 2) & (1 << 13), 0, "SLP_EN write-only");
}

Test(acpi_pm, other_sleep_types_ignored)
{
	fake_out(vm, 0x604, 2, (1 << 10) | (1 << 13));
	fake_out(vm, 0x605, 1, (3 << 2) | (1 << 5));	/* byte write, S3 */
	cr_assert_eq(atomic_load(&vm->exit_request), 0);
	fake_out(vm, 0x605, 1, (5 << 2) | (1 << 5));	/* byte write, S5 */
	cr_assert_eq(atomic_load(&vm->exit_request), VM_EVENT_POWEROFF);
}

Test(acpi_pm, reset_register)
{
	fake_out(vm, 0xcf9, 1, 0x02);
	cr_assert_eq(atomic_load(&vm->exit_request), 0);
	cr_assert_eq(fake_in(vm, 0xcf9, 1), 0x02);
	fake_out(vm, 0xcf9, 1, 0x06);
	cr_assert_eq(atomic_load(&vm->exit_request), VM_EVENT_RESET);
	cr_assert_eq(fake_in(vm, 0xcf9, 1), 0x06);
}

Test(acpi_pm, power_button_raises_sci_until_cleared)
{
	struct acpi_pm *pm = acpi_pm_find(vm);

	cr_assert_not_null(pm);
	acpi_pm_power_button(pm);
	cr_assert_eq(fake_irqs.level[9], 0, "not enabled yet");
	cr_assert(fake_in(vm, 0x600, 2) & 0x100);
	fake_out(vm, 0x602, 2, 0x100);
	cr_assert_eq(fake_in(vm, 0x602, 2), 0x100);
	cr_assert_eq(fake_irqs.level[9], 1, "SCI up while PWRBTN_STS set");
	fake_out(vm, 0x600, 2, 0x0001);	/* clearing another bit */
	cr_assert_eq(fake_irqs.level[9], 1);
	fake_out(vm, 0x600, 2, 0x0100);	/* write-1-to-clear */
	cr_assert_eq(fake_irqs.level[9], 0);
	cr_assert_eq(fake_in(vm, 0x600, 2) & 0x100, 0);
	acpi_pm_power_button(pm);
	cr_assert_eq(fake_irqs.level[9], 1);
	/* A 32-bit write covers STS and EN at once, as some drivers do. */
	fake_out(vm, 0x600, 4, 0x00000100);
	cr_assert_eq(fake_irqs.level[9], 0);
	cr_assert_eq(fake_in(vm, 0x602, 2), 0, "EN written as 0 too");
}

Test(acpi_pm, pm_timer_counts_at_3_58_mhz)
{
	uint32_t t0 = fake_in(vm, 0x608, 4), t1;

	cr_assert_eq(t0 >> 24, 0, "24 bits");
	vclock_advance_fake(1000000);	/* 1 ms */
	t1 = fake_in(vm, 0x608, 4);
	cr_assert_leq(((t1 - t0) & 0xffffff) - 3579u, 1, "ticks %u",
	    (t1 - t0) & 0xffffff);
	vclock_advance_fake(5000000000ull);	/* past a 24-bit wrap */
	t1 = fake_in(vm, 0x608, 4);
	cr_assert_lt(t1, 1u << 24);
}

Test(acpi_pm, snapshot_roundtrip)
{
	struct snap s, l;
	struct vm *vm2;
	uint32_t t0;

	acpi_pm_power_button(acpi_pm_find(vm));
	fake_out(vm, 0x602, 2, 0x100);
	fake_out(vm, 0x604, 2, 3 << 10);
	fake_out(vm, 0xcf9, 1, 0x02);
	t0 = fake_in(vm, 0x608, 4);
	snap_init_save(&s);
	snap_section_begin(&s, "acpi-pm", 1);
	acpi_pm_ops.snapshot(acpi_pm_find(vm), &s);
	snap_section_end(&s);
	cr_assert_eq(snap_error(&s), 0);

	vclock_set_fake(true, 123);	/* another host's clock */
	vm2 = fake_vm_new(64 << 20);
	cr_assert_eq(acpi_pm_ops.create(vm2), 0);
	snap_init_load(&l, s.buf, s.len);
	snap_section_begin(&l, "acpi-pm", 1);
	acpi_pm_ops.snapshot(acpi_pm_find(vm2), &l);
	snap_section_end(&l);
	cr_assert_eq(snap_error(&l), 0, "%s", l.errmsg);
	cr_assert_eq(fake_irqs.level[9], 1);
	cr_assert_eq(fake_in(vm2, 0x600, 2), 0x100);
	cr_assert_eq(fake_in(vm2, 0x602, 2), 0x100);
	cr_assert_eq(fake_in(vm2, 0x604, 2), (3 << 10) | 1);
	cr_assert_eq(fake_in(vm2, 0xcf9, 1), 0x02);
	cr_assert_eq(fake_in(vm2, 0x608, 4), t0, "timer continues");
	snap_free(&s);
	fake_vm_free(vm2);
}

Test(acpi_pm, debug_exit_status)
{
	struct vm *v = fake_vm_new(1 << 20);

	cr_assert_eq(debug_exit_ops.create(v), 0);
	cr_assert_eq(v->ndevices, 0, "absent without --debug-exit");
	fake_cfg.debug_exit = true;
	cr_assert_eq(debug_exit_ops.create(v), 0);
	cr_assert_eq(v->ndevices, 1);
	fake_out(v, 0xf4, 1, 0x10);
	cr_assert_eq(atomic_load(&v->exit_request), VM_EVENT_POWEROFF);
	cr_assert_eq(v->exit_status, 0x21);
	fake_vm_free(v);
}

Test(acpi_pm, debug_exit_wide_write_other_port)
{
	struct vm *v = fake_vm_new(1 << 20);

	fake_cfg.debug_exit = true;
	fake_cfg.debug_exit_port = 0x501;
	cr_assert_eq(debug_exit_ops.create(v), 0);
	fake_out(v, 0x501, 4, 0x1234);
	cr_assert_eq(v->exit_status, (0x1234 << 1) | 1);
	fake_vm_free(v);
}

/* Random accesses of every width: the SCI is up exactly while an enabled
 * status bit is set, and nothing but S5 or the reset bit ends the VM. */
Test(acpi_pm, random_accesses_keep_the_sci_honest)
{
	unsigned seed = 99;

	for (int i = 0; i < 20000; i++) {
		static const unsigned lens[] = { 1, 2, 4 };
		unsigned len, off;
		uint32_t v, sts, en;

		seed = seed * 1103515245 + 12345;
		len = lens[(seed >> 8) % 3];
		off = ((seed >> 12) % 12) & ~(len - 1);
		v = seed ^ (seed >> 5);
		if (off <= 5 && off + len > 5)	/* keep SLP_EN clear */
			v &= ~(0x20u << (8 * (5 - off)));
		if ((seed >> 30) & 1)
			fake_out(vm, (uint16_t)(0x600 + off), len, v);
		else
			fake_in(vm, (uint16_t)(0x600 + off), len);
		if ((seed & 0x1f) == 0)
			acpi_pm_power_button(acpi_pm_find(vm));
		sts = fake_in(vm, 0x600, 2);
		en = fake_in(vm, 0x602, 2);
		cr_assert_eq(fake_irqs.level[9], (sts & en & 0x0721) != 0,
		    "step %d sts %#x en %#x", i, sts, en);
	}
	cr_assert_eq(atomic_load(&vm->exit_request), 0);
}
