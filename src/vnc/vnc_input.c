/*
 * Keyboard and pointer events from VNC clients into the guest: keys
 * through the keymap into the i8042 keyboard, the pointer as absolute
 * coordinates into the virtio-input tablet, or as relative motion into
 * the PS/2 mouse while the guest has no tablet driver running.
 *
 * These run on the VNC server thread (inside rfbProcessEvents) and take
 * the VM's device lock around every device call, as a vCPU does.
 */
#include "vnc/vnc_int.h"

#include "devices/i8042.h"
#include "devices/virtio_input.h"
#include "hv/vm.h"

/* RFB pointer mask bits: 0 left, 1 middle, 2 right, 3/4 wheel up/down,
 * 7/8 back/forward (as QEMU and TigerVNC send them). */
#define RFB_BTN_LEFT	0x01
#define RFB_BTN_MIDDLE	0x02
#define RFB_BTN_RIGHT	0x04
#define RFB_WHEEL_UP	0x08
#define RFB_WHEEL_DOWN	0x10
#define RFB_BTN_SIDE	0x80
#define RFB_BTN_EXTRA	0x100

void
vnc_input_key(rfbBool down, rfbKeySym keysym, rfbClientPtr cl)
{
	struct vnc *v = cl->screen->screenData;
	uint8_t b[VNC_KEYMAP_MAX_BYTES];
	size_t n;

	if (v->kbd == NULL)
		return;
	n = vnc_keymap_event(&v->keys, (uint32_t)keysym, down != 0, b);
	if (n == 0)
		return;
	pthread_mutex_lock(&v->vm->devlock);
	i8042_key_event(v->kbd, b, n);
	pthread_mutex_unlock(&v->vm->devlock);
}

/* Buttons as the devices number them: 0 left, 1 right, 2 middle,
 * 3 side, 4 extra. */
static unsigned
vnc_input_buttons(int mask)
{
	return (mask & RFB_BTN_LEFT ? 1u : 0) |
	    (mask & RFB_BTN_RIGHT ? 2u : 0) |
	    (mask & RFB_BTN_MIDDLE ? 4u : 0) |
	    (mask & RFB_BTN_SIDE ? 8u : 0) |
	    (mask & RFB_BTN_EXTRA ? 16u : 0);
}

/* Client coordinate c on a screen of size pixels, as 0..ABS_MAX. */
static unsigned
vnc_input_scale(int c, int size)
{
	if (c < 0 || size <= 1)
		return 0;
	if (c >= size)
		c = size - 1;
	return (unsigned)((uint64_t)c * VIRTIO_INPUT_ABS_MAX / (unsigned)(size - 1));
}

void
vnc_input_pointer(int mask, int x, int y, rfbClientPtr cl)
{
	struct vnc *v = cl->screen->screenData;
	unsigned buttons = vnc_input_buttons(mask);
	/* A wheel notch is a press of its button: count the presses. */
	int pressed = mask & ~(int)v->ptr_buttons, wheel = 0;

	if (pressed & RFB_WHEEL_UP)
		wheel++;
	if (pressed & RFB_WHEEL_DOWN)
		wheel--;
	if (v->vm == NULL) {	/* parked between two boots */
		v->ptr_buttons = (unsigned)mask;
		return;
	}
	pthread_mutex_lock(&v->vm->devlock);
	if (v->tablet != NULL && virtio_input_ready(v->tablet))
		virtio_input_pointer(v->tablet,
		    vnc_input_scale(x, v->screen->width),
		    vnc_input_scale(y, v->screen->height), buttons, wheel);
	else if (v->kbd != NULL)
		i8042_mouse_event(v->kbd, x - v->ptr_x, y - v->ptr_y, -wheel,
		    buttons);
	pthread_mutex_unlock(&v->vm->devlock);
	v->ptr_x = x;
	v->ptr_y = y;
	v->ptr_buttons = (unsigned)mask;
}
