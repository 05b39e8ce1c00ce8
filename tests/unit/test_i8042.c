/*
 * The keyboard controller driven as Linux's i8042/atkbd/psmouse probe it.
 */
#include <criterion/criterion.h>

#include "fake_vm.h"
#include "devices/i8042.h"
#include "migrate/snap.h"

static struct vm *vm;

static void
setup(void)
{
	vm = fake_vm_new(64 << 20);
	cr_assert_eq(i8042_ops.create(vm), 0);
}

static void
teardown(void)
{
	fake_vm_free(vm);
}

TestSuite(i8042, .init = setup, .fini = teardown, .timeout = 10);

static uint8_t status(void) { return (uint8_t)fake_in(vm, 0x64, 1); }
static void cmd(uint8_t v) { fake_out(vm, 0x64, 1, v); }
static void dat(uint8_t v) { fake_out(vm, 0x60, 1, v); }

/* Read one byte that must be there, from the keyboard or aux side. */
static uint8_t
take(bool aux)
{
	uint8_t st = status();

	cr_assert(st & 0x01, "output buffer empty");
	cr_assert_eq(!!(st & 0x20), aux, "wrong source: status %#x", st);
	return (uint8_t)fake_in(vm, 0x60, 1);
}

static void
assert_empty(void)
{
	cr_assert_eq(status() & 0x01, 0, "unexpected byte");
}

static uint8_t
ctl(uint8_t c)
{
	cmd(c);
	return take(false);
}

Test(i8042, linux_controller_probe)
{
	uint8_t ctr;

	while (status() & 0x01)
		fake_in(vm, 0x60, 1);
	ctr = ctl(0x20);
	cr_assert(ctr & 0x04, "SYS flag: POST passed");
	cr_assert_eq(ctl(0xaa), 0x55, "self-test");
	cr_assert_eq(ctl(0xab), 0x00, "keyboard port test");
	cr_assert_eq(ctl(0xa9), 0x00, "aux port test");
	/* AUX loop (i8042_check_aux). */
	cmd(0xd3);
	dat(0x5a);
	cr_assert_eq(take(true), 0x5a);
	/* Bit assignment test. */
	cmd(0xa7);
	cr_assert(ctl(0x20) & 0x20);
	cmd(0xa8);
	cr_assert_eq(ctl(0x20) & 0x20, 0);
	/* Not an active multiplexer: the third loop byte comes back. */
	cmd(0xd3); dat(0xf0); cr_assert_eq(take(true), 0xf0);
	cmd(0xd3); dat(0x56); cr_assert_eq(take(true), 0x56);
	cmd(0xd3); dat(0xa4); cr_assert_eq(take(true), 0xa4);
	/* The command byte round-trips; A2 says the last write was a cmd. */
	cmd(0x60);
	dat(0x47);
	cr_assert_eq(ctl(0x20), 0x47);
	cr_assert(status() & 0x08);
	dat(0xf4);
	cr_assert_eq(status() & 0x08, 0);
}

Test(i8042, aux_irq_delivery_test)
{
	cmd(0x60);
	dat(0x47);
	cr_assert_eq(fake_irqs.level[12], 0);
	cmd(0xd3);
	dat(0xa5);
	cr_assert_eq(fake_irqs.level[12], 1, "IRQ 12 up with the aux byte");
	cr_assert_eq(fake_irqs.level[1], 0);
	cr_assert_eq(take(true), 0xa5);
	cr_assert_eq(fake_irqs.level[12], 0);
	/* With AUXINT off the byte arrives without an interrupt. */
	cmd(0x60);
	dat(0x45);
	cmd(0xd3);
	dat(0x11);
	cr_assert_eq(fake_irqs.level[12], 0);
	cr_assert_eq(take(true), 0x11);
}

Test(i8042, keyboard_replies_translated_and_raw)
{
	dat(0xf2);
	cr_assert_eq(fake_irqs.level[1], 1);
	cr_assert_eq(take(false), 0xfa);
	/* Each queued byte is a fresh edge on IRQ 1 (edge-triggered ISA). */
	cr_assert_eq(fake_irqs.level[1], 1);
	cr_assert_eq(fake_irqs.raises[1], 2, "no new edge for the ID byte");
	cr_assert_eq(take(false), 0xab);
	cr_assert_eq(take(false), 0x41, "0x83 translated");
	cr_assert_eq(fake_irqs.raises[1], 3);
	assert_empty();
	cr_assert_eq(fake_irqs.level[1], 0);
	cmd(0x60);
	dat(0x07);		/* no XLATE */
	dat(0xf2);
	cr_assert_eq(take(false), 0xfa);
	cr_assert_eq(take(false), 0xab);
	cr_assert_eq(take(false), 0x83);
	dat(0xff);
	cr_assert_eq(take(false), 0xfa);
	cr_assert_eq(take(false), 0xaa);
	dat(0xed);
	cr_assert_eq(take(false), 0xfa);
	dat(0x07);
	cr_assert_eq(take(false), 0xfa);
	dat(0xf0);
	cr_assert_eq(take(false), 0xfa);
	dat(0x00);
	cr_assert_eq(take(false), 0xfa);
	cr_assert_eq(take(false), 0x02, "scancode set 2");
	dat(0xf3);
	cr_assert_eq(take(false), 0xfa);
	dat(0x20);
	cr_assert_eq(take(false), 0xfa);
	dat(0xf5);
	cr_assert_eq(take(false), 0xfa);
	dat(0xf4);
	cr_assert_eq(take(false), 0xfa);
	dat(0xee);
	cr_assert_eq(take(false), 0xee);
	dat(0x99);
	cr_assert_eq(take(false), 0xfe, "unknown command");
}

Test(i8042, key_events_set2_to_set1)
{
	struct i8042 *k = i8042_find(vm);
	static const uint8_t a_make[] = { 0x1c }, a_break[] = { 0xf0, 0x1c };
	static const uint8_t up_make[] = { 0xe0, 0x75 };
	static const uint8_t up_break[] = { 0xe0, 0xf0, 0x75 };

	cr_assert_not_null(k);
	i8042_key_event(k, a_make, 1);
	cr_assert_eq(fake_irqs.level[1], 1);
	cr_assert_eq(take(false), 0x1e);
	i8042_key_event(k, a_break, 2);
	cr_assert_eq(take(false), 0x9e);
	i8042_key_event(k, up_make, 2);
	i8042_key_event(k, up_break, 3);
	cr_assert_eq(take(false), 0xe0);
	cr_assert_eq(take(false), 0x48);
	cr_assert_eq(take(false), 0xe0);
	cr_assert_eq(take(false), 0xc8);
	assert_empty();
	/* Raw set 2 without XLATE. */
	cmd(0x60);
	dat(0x07);
	i8042_key_event(k, a_break, 2);
	cr_assert_eq(take(false), 0xf0);
	cr_assert_eq(take(false), 0x1c);
	/* A disabled keyboard port holds keys back until re-enabled. */
	cmd(0xad);
	i8042_key_event(k, a_make, 1);
	assert_empty();
	cmd(0xae);
	cr_assert_eq(take(false), 0x1c);
	/* Scanning off (0xf5): keys are dropped. */
	dat(0xf5);
	cr_assert_eq(take(false), 0xfa);
	i8042_key_event(k, a_make, 1);
	assert_empty();
}

Test(i8042, mouse_probe_and_packets)
{
	struct i8042 *k = i8042_find(vm);
	static const uint8_t knock[] = { 200, 100, 80 };

	cmd(0xd4); dat(0xff);
	cr_assert_eq(fake_irqs.level[12], 1);
	cr_assert_eq(take(true), 0xfa);
	cr_assert_eq(take(true), 0xaa);
	cr_assert_eq(take(true), 0x00);
	cmd(0xd4); dat(0xf2);
	cr_assert_eq(take(true), 0xfa);
	cr_assert_eq(take(true), 0x00, "plain PS/2 mouse");
	for (int i = 0; i < 3; i++) {
		cmd(0xd4); dat(0xf3);
		cr_assert_eq(take(true), 0xfa);
		cmd(0xd4); dat(knock[i]);
		cr_assert_eq(take(true), 0xfa);
	}
	cmd(0xd4); dat(0xf2);
	cr_assert_eq(take(true), 0xfa);
	cr_assert_eq(take(true), 0x03, "IntelliMouse after the knock");
	cmd(0xd4); dat(0xe9);
	cr_assert_eq(take(true), 0xfa);
	cr_assert_eq(take(true), 0x00);
	cr_assert_eq(take(true), 0x02);
	cr_assert_eq(take(true), 80);
	i8042_mouse_event(k, 5, 5, 0, 1);
	assert_empty();		/* reporting not enabled yet */
	cmd(0xd4); dat(0xf4);
	cr_assert_eq(take(true), 0xfa);
	i8042_mouse_event(k, -3, 4, 1, 1);
	cr_assert_eq(take(true), 0x08 | 0x01 | 0x10 | 0x20);
	cr_assert_eq(take(true), 0xfd);
	cr_assert_eq(take(true), 0xfc, "down on screen is negative");
	cr_assert_eq(take(true), 0x01);
	assert_empty();
	cmd(0xd4); dat(0x42);
	cr_assert_eq(take(true), 0xfe);
}

Test(i8042, reset_line)
{
	cmd(0xff);		/* pulses nothing */
	cr_assert_eq(atomic_load(&vm->exit_request), 0);
	cmd(0xd1);
	dat(0x03);
	cr_assert_eq(atomic_load(&vm->exit_request), 0);
	cr_assert_eq(ctl(0xd0) & 0x03, 0x03);
	cmd(0xfe);
	cr_assert_eq(atomic_load(&vm->exit_request), VM_EVENT_RESET);
}

Test(i8042, output_port_reset_bit)
{
	cmd(0xd1);
	dat(0x02);
	cr_assert_eq(atomic_load(&vm->exit_request), VM_EVENT_RESET);
}

Test(i8042, snapshot_roundtrip)
{
	struct snap s, l;
	struct vm *vm2;
	struct i8042 *k = i8042_find(vm);
	static const uint8_t keys[] = { 0x1c, 0x32 };

	cmd(0x60);
	dat(0x07);
	i8042_key_event(k, keys, 2);
	cmd(0xd4); dat(0xf4);
	snap_init_save(&s);
	snap_section_begin(&s, "i8042", 1);
	i8042_ops.snapshot(k, &s);
	snap_section_end(&s);
	cr_assert_eq(snap_error(&s), 0);

	vm2 = fake_vm_new(64 << 20);
	cr_assert_eq(i8042_ops.create(vm2), 0);
	snap_init_load(&l, s.buf, s.len);
	snap_section_begin(&l, "i8042", 1);
	i8042_ops.snapshot(i8042_find(vm2), &l);
	snap_section_end(&l);
	cr_assert_eq(snap_error(&l), 0, "%s", l.errmsg);
	cr_assert_eq(fake_irqs.level[1], 1, "pending byte keeps IRQ 1 up");
	fake_vm_free(vm);
	vm = vm2;
	cr_assert_eq(take(false), 0x1c);
	cr_assert_eq(take(false), 0x32);
	cr_assert_eq(take(true), 0xfa);
	cr_assert_eq(ctl(0x20), 0x07);
	snap_free(&s);
}

/* Random controller and device traffic: nothing breaks, and each IRQ
 * line is up only while the output buffer holds a byte from its side. */
Test(i8042, random_traffic_keeps_irq_lines_honest)
{
	struct i8042 *k = i8042_find(vm);
	unsigned seed = 4242;

	for (int i = 0; i < 30000; i++) {
		uint8_t v, st;

		seed = seed * 1103515245 + 12345;
		v = (uint8_t)(seed >> 16);
		switch ((seed >> 28) & 7) {
		case 0: cmd(v); break;
		case 1: case 2: dat(v); break;
		case 3: fake_in(vm, 0x60, 1); break;
		case 4: i8042_key_event(k, &v, 1); break;
		case 5: i8042_mouse_event(k, (int8_t)v, -(int8_t)v, 1, v & 7);
			break;
		default: break;
		}
		st = status();
		if (fake_irqs.level[1])
			cr_assert_eq(st & 0x21, 0x01, "IRQ 1 with status %#x", st);
		if (fake_irqs.level[12])
			cr_assert_eq(st & 0x21, 0x21, "IRQ 12 with status %#x",
			    st);
		cr_assert_not(fake_irqs.level[1] && fake_irqs.level[12]);
	}
}

/* Patch a u16 field of a saved section and fix its CRC, as a crafted
 * stream would (the CRC only catches accidents). */
static void
patch_u16(struct snap *s, const char *name, uint16_t v)
{
	size_t n = strlen(name);
	uint32_t crc;

	for (size_t i = 0; i + n + 6 < s->len; i++) {
		if (s->buf[i] != n || memcmp(s->buf + i + 1, name, n) != 0)
			continue;
		bus_put(s->buf + i + 1 + n + 4, 2, v);
		crc = snap_crc32(s->buf, s->len - 4);
		bus_put(s->buf + s->len - 4, 4, crc);
		return;
	}
	cr_assert_fail("field %s not found", name);
}

Test(i8042, snapshot_refuses_bad_queue_and_stays_sane)
{
	struct snap s, l;
	struct i8042 *k = i8042_find(vm);

	snap_init_save(&s);
	snap_section_begin(&s, "i8042", 1);
	i8042_ops.snapshot(k, &s);
	snap_section_end(&s);
	patch_u16(&s, "kbd.head", 999);
	snap_init_load(&l, s.buf, s.len);
	snap_section_begin(&l, "i8042", 1);
	cr_assert_eq(snap_error(&l), 0, "CRC patched: %s", l.errmsg);
	i8042_ops.snapshot(k, &l);
	cr_assert_neq(snap_error(&l), 0, "index 999 accepted");
	/* Still a working controller. */
	dat(0xf2);
	cr_assert_eq(take(false), 0xfa);
	cr_assert_eq(take(false), 0xab);
	snap_free(&s);
}
