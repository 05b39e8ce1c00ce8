/*
 * i8042 keyboard controller at ports 0x60/0x64 with a PS/2 keyboard
 * (IRQ 1) and a PS/2 mouse (IRQ 12); also the PC's reset line.
 */
#ifndef TV_I8042_H
#define TV_I8042_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct device_ops;
struct i8042;

extern const struct device_ops i8042_ops;

/* The VM's controller, or NULL if it has none. */
struct i8042 *i8042_find(struct vm *vm);

/*
 * A key went down or up, as the scancode-set-2 bytes a keyboard sends
 * (make 0x1c, break 0xf0 0x1c, extended keys with 0xe0).  The controller
 * translates to set 1 when the guest's command byte asks.  Dropped while
 * the guest has scanning disabled or the queue is full.  Device lock held.
 */
void i8042_key_event(struct i8042 *k, const uint8_t *set2, size_t len);

/*
 * Relative pointer motion in screen directions (dy > 0 is down), wheel
 * dz (> 0 is towards the user), buttons bit 0 left, 1 right, 2 middle,
 * 3/4 side buttons.  Sent as a PS/2 packet when the guest enabled
 * reporting.  Device lock held.
 */
void i8042_mouse_event(struct i8042 *k, int dx, int dy, int dz,
    unsigned buttons);

#endif
