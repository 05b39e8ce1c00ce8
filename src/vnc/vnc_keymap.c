/*
 * Keysym -> set 2 scancodes for a US layout.  See vnc_keymap.h.
 */
#include "vnc/vnc_keymap.h"

#include <string.h>

#include <rfb/keysym.h>

#define SC_LSHIFT	0x12
#define SC_RSHIFT	0x59

/* Printable ASCII 0x20..0x7e: the key, and whether it is the shifted
 * symbol on it.  Letters are filled in by code (their order is a-z). */
static const struct { uint8_t code; int8_t shift; } vnc_keymap_ascii[95] = {
	[' ' - 0x20] = { 0x29, 0 },
	['!' - 0x20] = { 0x16, 1 }, ['"' - 0x20] = { 0x52, 1 },
	['#' - 0x20] = { 0x26, 1 }, ['$' - 0x20] = { 0x25, 1 },
	['%' - 0x20] = { 0x2e, 1 }, ['&' - 0x20] = { 0x3d, 1 },
	['\'' - 0x20] = { 0x52, -1 }, ['(' - 0x20] = { 0x46, 1 },
	[')' - 0x20] = { 0x45, 1 }, ['*' - 0x20] = { 0x3e, 1 },
	['+' - 0x20] = { 0x55, 1 }, [',' - 0x20] = { 0x41, -1 },
	['-' - 0x20] = { 0x4e, -1 }, ['.' - 0x20] = { 0x49, -1 },
	['/' - 0x20] = { 0x4a, -1 },
	['0' - 0x20] = { 0x45, -1 }, ['1' - 0x20] = { 0x16, -1 },
	['2' - 0x20] = { 0x1e, -1 }, ['3' - 0x20] = { 0x26, -1 },
	['4' - 0x20] = { 0x25, -1 }, ['5' - 0x20] = { 0x2e, -1 },
	['6' - 0x20] = { 0x36, -1 }, ['7' - 0x20] = { 0x3d, -1 },
	['8' - 0x20] = { 0x3e, -1 }, ['9' - 0x20] = { 0x46, -1 },
	[':' - 0x20] = { 0x4c, 1 }, [';' - 0x20] = { 0x4c, -1 },
	['<' - 0x20] = { 0x41, 1 }, ['=' - 0x20] = { 0x55, -1 },
	['>' - 0x20] = { 0x49, 1 }, ['?' - 0x20] = { 0x4a, 1 },
	['@' - 0x20] = { 0x1e, 1 },
	['[' - 0x20] = { 0x54, -1 }, ['\\' - 0x20] = { 0x5d, -1 },
	[']' - 0x20] = { 0x5b, -1 }, ['^' - 0x20] = { 0x36, 1 },
	['_' - 0x20] = { 0x4e, 1 }, ['`' - 0x20] = { 0x0e, -1 },
	['{' - 0x20] = { 0x54, 1 }, ['|' - 0x20] = { 0x5d, 1 },
	['}' - 0x20] = { 0x5b, 1 }, ['~' - 0x20] = { 0x0e, 1 },
};

static const uint8_t vnc_keymap_letters[26] = {
	0x1c, 0x32, 0x21, 0x23, 0x24, 0x2b, 0x34, 0x33, 0x43, 0x3b, 0x42,
	0x4b, 0x3a, 0x31, 0x44, 0x4d, 0x15, 0x2d, 0x1b, 0x2c, 0x3c, 0x2a,
	0x1d, 0x22, 0x35, 0x1a,
};

/* Keys that are no symbol: the same whatever the shift state. */
static const struct { uint32_t keysym; uint8_t code; bool ext; }
vnc_keymap_keys[] = {
	{ XK_BackSpace, 0x66, false }, { XK_Tab, 0x0d, false },
	{ XK_ISO_Left_Tab, 0x0d, false }, { XK_Return, 0x5a, false },
	{ XK_Escape, 0x76, false }, { XK_Delete, 0x71, true },
	{ XK_Home, 0x6c, true }, { XK_End, 0x69, true },
	{ XK_Prior, 0x7d, true }, { XK_Next, 0x7a, true },
	{ XK_Left, 0x6b, true }, { XK_Up, 0x75, true },
	{ XK_Right, 0x74, true }, { XK_Down, 0x72, true },
	{ XK_Insert, 0x70, true }, { XK_Menu, 0x2f, true },
	{ XK_Scroll_Lock, 0x7e, false }, { XK_Num_Lock, 0x77, false },
	{ XK_Caps_Lock, 0x58, false },
	{ XK_Shift_L, SC_LSHIFT, false }, { XK_Shift_R, SC_RSHIFT, false },
	{ XK_Control_L, 0x14, false }, { XK_Control_R, 0x14, true },
	{ XK_Alt_L, 0x11, false }, { XK_Alt_R, 0x11, true },
	{ XK_Meta_L, 0x11, false }, { XK_Meta_R, 0x11, true },
	{ XK_ISO_Level3_Shift, 0x11, true },
	{ XK_Super_L, 0x1f, true }, { XK_Super_R, 0x27, true },
	{ XK_F1, 0x05, false }, { XK_F2, 0x06, false }, { XK_F3, 0x04, false },
	{ XK_F4, 0x0c, false }, { XK_F5, 0x03, false }, { XK_F6, 0x0b, false },
	{ XK_F7, 0x83, false }, { XK_F8, 0x0a, false }, { XK_F9, 0x01, false },
	{ XK_F10, 0x09, false }, { XK_F11, 0x78, false },
	{ XK_F12, 0x07, false },
	{ XK_KP_Enter, 0x5a, true }, { XK_KP_Divide, 0x4a, true },
	{ XK_KP_Multiply, 0x7c, false }, { XK_KP_Subtract, 0x7b, false },
	{ XK_KP_Add, 0x79, false },
	{ XK_KP_Decimal, 0x71, false }, { XK_KP_Delete, 0x71, false },
	{ XK_KP_0, 0x70, false }, { XK_KP_Insert, 0x70, false },
	{ XK_KP_1, 0x69, false }, { XK_KP_End, 0x69, false },
	{ XK_KP_2, 0x72, false }, { XK_KP_Down, 0x72, false },
	{ XK_KP_3, 0x7a, false }, { XK_KP_Next, 0x7a, false },
	{ XK_KP_4, 0x6b, false }, { XK_KP_Left, 0x6b, false },
	{ XK_KP_5, 0x73, false }, { XK_KP_Begin, 0x73, false },
	{ XK_KP_6, 0x74, false }, { XK_KP_Right, 0x74, false },
	{ XK_KP_7, 0x6c, false }, { XK_KP_Home, 0x6c, false },
	{ XK_KP_8, 0x75, false }, { XK_KP_Up, 0x75, false },
	{ XK_KP_9, 0x7d, false }, { XK_KP_Prior, 0x7d, false },
};

bool
vnc_keymap_lookup(uint32_t keysym, struct vnc_key *k)
{
	memset(k, 0, sizeof(*k));
	if (keysym >= 'a' && keysym <= 'z') {
		k->code = vnc_keymap_letters[keysym - 'a'];
		k->shift = -1;
		return true;
	}
	if (keysym >= 'A' && keysym <= 'Z') {
		k->code = vnc_keymap_letters[keysym - 'A'];
		k->shift = 1;
		return true;
	}
	if (keysym >= 0x20 && keysym <= 0x7e) {
		k->code = vnc_keymap_ascii[keysym - 0x20].code;
		k->shift = vnc_keymap_ascii[keysym - 0x20].shift;
		return k->code != 0;
	}
	for (size_t i = 0; i < sizeof(vnc_keymap_keys) /
	    sizeof(vnc_keymap_keys[0]); i++) {
		if (vnc_keymap_keys[i].keysym == keysym) {
			k->code = vnc_keymap_keys[i].code;
			k->ext = vnc_keymap_keys[i].ext;
			return true;
		}
	}
	return false;
}

static size_t
vnc_keymap_put(uint8_t *out, uint8_t code, bool ext, bool down)
{
	size_t n = 0;

	if (ext)
		out[n++] = 0xe0;
	if (!down)
		out[n++] = 0xf0;
	out[n++] = code;
	return n;
}

/* Print Screen and Pause are sequences of their own. */
static size_t
vnc_keymap_special(uint32_t keysym, bool down, uint8_t *out)
{
	static const uint8_t print_make[] = { 0xe0, 0x12, 0xe0, 0x7c };
	static const uint8_t print_break[] = { 0xe0, 0xf0, 0x7c, 0xe0, 0xf0,
	    0x12 };
	static const uint8_t pause_make[] = { 0xe1, 0x14, 0x77, 0xe1, 0xf0,
	    0x14, 0xf0, 0x77 };

	if (keysym == XK_Print) {
		memcpy(out, down ? print_make : print_break,
		    down ? sizeof(print_make) : sizeof(print_break));
		return down ? sizeof(print_make) : sizeof(print_break);
	}
	/* Pause sends everything on press and nothing on release. */
	if (down)
		memcpy(out, pause_make, sizeof(pause_make));
	return down ? sizeof(pause_make) : 0;
}

/* Press or release whichever shift keys are down, around a symbol that
 * wants the other shift state. */
static size_t
vnc_keymap_shifts(const struct vnc_keymap_state *st, bool press, uint8_t *out)
{
	size_t n = 0;

	if (st->lshift)
		n += vnc_keymap_put(out + n, SC_LSHIFT, false, press);
	if (st->rshift)
		n += vnc_keymap_put(out + n, SC_RSHIFT, false, press);
	return n;
}

size_t
vnc_keymap_event(struct vnc_keymap_state *st, uint32_t keysym, bool down,
    uint8_t *out)
{
	bool shifted = st->lshift || st->rshift;
	struct vnc_key k;
	size_t n = 0;

	if (keysym == XK_Print || keysym == XK_Pause)
		return vnc_keymap_special(keysym, down, out);
	if (!vnc_keymap_lookup(keysym, &k))
		return 0;
	if (keysym == XK_Shift_L)
		st->lshift = down;
	if (keysym == XK_Shift_R)
		st->rshift = down;
	/* Only a press needs the right shift state: the release of the
	 * key is the same bytes whichever symbol it made. */
	if (!down || k.shift == 0 || (k.shift > 0) == shifted)
		return vnc_keymap_put(out, k.code, k.ext, down);
	if (k.shift > 0)
		n += vnc_keymap_put(out, SC_LSHIFT, false, true);
	else
		n += vnc_keymap_shifts(st, false, out);
	n += vnc_keymap_put(out + n, k.code, k.ext, true);
	if (k.shift > 0)
		n += vnc_keymap_put(out + n, SC_LSHIFT, false, false);
	else
		n += vnc_keymap_shifts(st, true, out + n);
	return n;
}
