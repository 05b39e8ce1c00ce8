/*
 * VNC keysyms into the guest's keyboard: the keymap's set 2 bytes go
 * through the real i8042, which translates them to set 1 as Linux's
 * default (XLATE) setup asks.  Set 1 numbers the US keyboard's rows in
 * order, which makes an independent check of the set 2 table: "1" to
 * "=" are 0x02..0x0d, "q" to "]" 0x10..0x1b, and so on.
 */
#include <criterion/criterion.h>

#include <rfb/keysym.h>

#include "fake_vm.h"
#include "devices/i8042.h"
#include "vnc/vnc_keymap.h"

static struct vm *vm;
static struct i8042 *kbd;
static struct vnc_keymap_state st;

static void
setup(void)
{
	vm = fake_vm_new(64 << 20);
	cr_assert_eq(i8042_ops.create(vm), 0);
	kbd = i8042_find(vm);
	cr_assert_not_null(kbd);
	memset(&st, 0, sizeof(st));
}

static void
teardown(void)
{
	fake_vm_free(vm);
}

TestSuite(vnc_keymap, .init = setup, .fini = teardown, .timeout = 10);

/* Type keysym (down or up) and read what the guest gets, in set 1. */
static size_t
type(uint32_t keysym, bool down, uint8_t *got, size_t max)
{
	uint8_t b[VNC_KEYMAP_MAX_BYTES];
	size_t n = vnc_keymap_event(&st, keysym, down, b), k = 0;

	cr_assert_leq(n, VNC_KEYMAP_MAX_BYTES);
	i8042_key_event(kbd, b, n);
	while ((fake_in(vm, 0x64, 1) & 0x01) && k < max)
		got[k++] = (uint8_t)fake_in(vm, 0x60, 1);
	cr_assert_eq(fake_in(vm, 0x64, 1) & 0x01, 0, "more bytes than %zu",
	    max);
	return k;
}

static void
expect(uint32_t keysym, bool down, const uint8_t *want, size_t n)
{
	uint8_t got[VNC_KEYMAP_MAX_BYTES];
	size_t k = type(keysym, down, got, sizeof(got));

	cr_assert_eq(k, n, "keysym %#x %s: %zu bytes, expected %zu", keysym,
	    down ? "down" : "up", k, n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(got[i], want[i], "keysym %#x byte %zu: %#x, "
		    "expected %#x", keysym, i, got[i], want[i]);
}

/* Each row: its unshifted symbols, the shifted ones on the same keys,
 * and the set 1 code of the first key (the rest follow in order). */
static const struct {
	const char *plain, *shifted;
	uint8_t first;
} rows[] = {
	{ "1234567890-=", "!@#$%^&*()_+", 0x02 },
	{ "qwertyuiop[]", "QWERTYUIOP{}", 0x10 },
	{ "asdfghjkl;'`", "ASDFGHJKL:\"~", 0x1e },
	{ "\\zxcvbnm,./", "|ZXCVBNM<>?", 0x2b },
};

Test(vnc_keymap, us_rows_plain_and_shifted)
{
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		for (size_t i = 0; rows[r].plain[i] != '\0'; i++) {
			uint8_t code = (uint8_t)(rows[r].first + i);
			const uint8_t make[] = { code }, brk[] = { code | 0x80 };
			/* Shift pressed around it, released before the key
			 * is (the release needs no shift). */
			const uint8_t smake[] = { 0x2a, code, 0xaa };

			expect((unsigned char)rows[r].plain[i], true, make, 1);
			expect((unsigned char)rows[r].plain[i], false, brk, 1);
			expect((unsigned char)rows[r].shifted[i], true, smake,
			    3);
			expect((unsigned char)rows[r].shifted[i], false, brk,
			    1);
		}
	}
}

Test(vnc_keymap, every_printable_ascii_has_a_key)
{
	struct vnc_key k;

	for (uint32_t c = 0x20; c <= 0x7e; c++) {
		cr_assert(vnc_keymap_lookup(c, &k), "no key for '%c'", c);
		cr_assert_neq(k.code, 0);
	}
	cr_assert_not(vnc_keymap_lookup(0x1234567, &k));
	cr_assert_not(vnc_keymap_lookup(0x7f, &k));
	cr_assert_eq(vnc_keymap_event(&st, XK_EuroSign, true,
	    (uint8_t[VNC_KEYMAP_MAX_BYTES]){ 0 }), 0);
}

Test(vnc_keymap, client_shift_is_respected)
{
	static const uint8_t lshift[] = { 0x2a }, a_up[] = { 0x9e };
	static const uint8_t big_a[] = { 0x1e };
	/* Shift held but the client says "a" (its Caps Lock): let go of
	 * shift for the key, then press it again. */
	static const uint8_t small_a[] = { 0xaa, 0x1e, 0x2a };
	static const uint8_t rshift[] = { 0x36 }, rshift_up[] = { 0xb6 };
	static const uint8_t both_a[] = { 0xaa, 0xb6, 0x1e, 0x2a, 0x36 };
	static const uint8_t lshift_up[] = { 0xaa };

	expect(XK_Shift_L, true, lshift, 1);
	expect('A', true, big_a, 1);
	expect('A', false, a_up, 1);
	expect('a', true, small_a, 3);
	expect('a', false, a_up, 1);
	expect(XK_Shift_R, true, rshift, 1);
	expect('a', true, both_a, 5);
	expect('a', false, a_up, 1);
	expect(XK_Shift_R, false, rshift_up, 1);
	expect(XK_Shift_L, false, lshift_up, 1);
	cr_assert_not(st.lshift || st.rshift);
}

Test(vnc_keymap, extended_and_function_keys)
{
	static const struct { uint32_t keysym; uint8_t b[2]; size_t n; } keys[] = {
		{ XK_Up, { 0xe0, 0x48 }, 2 }, { XK_Down, { 0xe0, 0x50 }, 2 },
		{ XK_Left, { 0xe0, 0x4b }, 2 }, { XK_Right, { 0xe0, 0x4d }, 2 },
		{ XK_Home, { 0xe0, 0x47 }, 2 }, { XK_End, { 0xe0, 0x4f }, 2 },
		{ XK_Prior, { 0xe0, 0x49 }, 2 }, { XK_Next, { 0xe0, 0x51 }, 2 },
		{ XK_Insert, { 0xe0, 0x52 }, 2 }, { XK_Delete, { 0xe0, 0x53 }, 2 },
		{ XK_Control_R, { 0xe0, 0x1d }, 2 }, { XK_Alt_R, { 0xe0, 0x38 }, 2 },
		{ XK_KP_Enter, { 0xe0, 0x1c }, 2 }, { XK_KP_Divide, { 0xe0, 0x35 }, 2 },
		{ XK_Return, { 0x1c }, 1 }, { XK_BackSpace, { 0x0e }, 1 },
		{ XK_Tab, { 0x0f }, 1 }, { XK_Escape, { 0x01 }, 1 },
		{ ' ', { 0x39 }, 1 }, { XK_Control_L, { 0x1d }, 1 },
		{ XK_Alt_L, { 0x38 }, 1 }, { XK_Caps_Lock, { 0x3a }, 1 },
		{ XK_F1, { 0x3b }, 1 }, { XK_F10, { 0x44 }, 1 },
		{ XK_F11, { 0x57 }, 1 }, { XK_F12, { 0x58 }, 1 },
		{ XK_KP_7, { 0x47 }, 1 }, { XK_KP_0, { 0x52 }, 1 },
		{ XK_KP_Multiply, { 0x37 }, 1 }, { XK_Num_Lock, { 0x45 }, 1 },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		uint8_t brk[2];

		memcpy(brk, keys[i].b, keys[i].n);
		brk[keys[i].n - 1] |= 0x80;
		expect(keys[i].keysym, true, keys[i].b, keys[i].n);
		expect(keys[i].keysym, false, brk, keys[i].n);
	}
}

Test(vnc_keymap, extended_keys_ignore_shift)
{
	static const uint8_t lshift[] = { 0x2a }, up[] = { 0xe0, 0x48 };

	expect(XK_Shift_L, true, lshift, 1);
	/* Shift+Up is the user's: no shift fix-up around it. */
	expect(XK_Up, true, up, 2);
}

Test(vnc_keymap, print_and_pause_sequences)
{
	static const uint8_t print_make[] = { 0xe0, 0x2a, 0xe0, 0x37 };
	static const uint8_t print_break[] = { 0xe0, 0xb7, 0xe0, 0xaa };
	static const uint8_t pause[] = { 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5 };

	expect(XK_Print, true, print_make, 4);
	expect(XK_Print, false, print_break, 4);
	expect(XK_Pause, true, pause, 6);
	expect(XK_Pause, false, NULL, 0);
}
