/*
 * X keysyms (what an RFB client sends) to PS/2 scancode set 2 bytes (what
 * the i8042 keyboard takes), for a US keyboard layout in the guest.
 *
 * A client sends the keysym of the symbol the user typed under the
 * client's own modifiers: Shift then "A", or just "A" from a client with
 * Caps Lock on, or a tool that types text.  The guest has its own shift
 * state, so a key whose symbol needs Shift (or must not have it) is sent
 * wrapped in the shift presses or releases that make the guest see that
 * symbol, and the guest's shift state is restored after it.
 */
#ifndef TV_VNC_KEYMAP_H
#define TV_VNC_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A key on the guest's keyboard. */
struct vnc_key {
	uint8_t code;		/* set 2 make code */
	bool ext;		/* prefixed with 0xe0 */
	/* The symbol needs Shift (1), must not have it (-1), or either
	 * (0: letters' case aside, keys that are no symbol). */
	int8_t shift;
};

/* Longest byte sequence one event produces (shift fix-ups included). */
#define VNC_KEYMAP_MAX_BYTES	32

/* The guest's modifier state as we made it. */
struct vnc_keymap_state {
	bool lshift, rshift;
};

/* The key for keysym; false if the layout has none. */
bool vnc_keymap_lookup(uint32_t keysym, struct vnc_key *k);

/*
 * The set 2 bytes for keysym going down or up, into out (at least
 * VNC_KEYMAP_MAX_BYTES); updates st for the shift keys.  Returns the
 * number of bytes, 0 for a keysym the layout does not have.
 */
size_t vnc_keymap_event(struct vnc_keymap_state *st, uint32_t keysym,
    bool down, uint8_t *out);

#endif
