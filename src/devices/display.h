/*
 * The guest's screen, as the VNC server and the control socket's
 * screenshot see it.  Whatever the guest shows (the linear framebuffer
 * announced in screen_info, a bochs-display mode, or the VGA text buffer
 * at 0xB8000 rendered with a font), the display presents one surface of
 * 32-bit pixels, XRGB8888: bytes B, G, R, X in memory.
 *
 * The pixel memory a surface points at stays mapped for the VM's life
 * (video memory is allocated once at its largest size; text mode renders
 * into a buffer owned by the display), so a reader on another thread may
 * keep reading it without the device lock; it sees the guest's writes as
 * they happen (tearing is allowed, as on real hardware).  Only the
 * geometry changes, and `generation` says when.
 *
 * Owned by src/devices/fb.c; consumers: src/vnc, the screenshot command.
 */
#ifndef TV_DISPLAY_H
#define TV_DISPLAY_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct display;

struct display_surface {
	uint32_t width, height;	/* pixels */
	uint32_t stride;	/* bytes from one line to the next */
	const uint8_t *pixels;	/* top-left pixel */
	/* Changes whenever width, height, stride or pixels change (mode
	 * switch, text <-> graphics); a consumer that saw a different
	 * value resizes (VNC: desktop resize). */
	uint64_t generation;
	bool text_mode;		/* rendered from the VGA text buffer */
};

/* The VM's display, or NULL if it has none. */
struct display *display_find(struct vm *vm);

/*
 * The current surface.  In text mode this renders the text buffer (and
 * cursor) into the display's own pixels first, so call it at the rate
 * the consumer refreshes.  Any thread; takes the device lock itself
 * when it must read device registers.
 */
void display_get_surface(struct display *d, struct display_surface *s);

/* The same, for a caller that holds the device lock (vm->devlock):
 * evloop callbacks such as the control socket's commands. */
void display_get_surface_locked(struct display *d, struct display_surface *s);

/*
 * Write the current surface as a PNG file (RGB, 8 bits per channel) at
 * path.  With the device lock held.  0, or -errno (-EIO: libpng failed).
 */
int display_screenshot_png(struct display *d, const char *path);

/*
 * Call fn(opaque) after every mode change (from whichever thread made
 * it, with the device lock held: fn must only note it and wake its
 * own thread).  One listener; NULL removes it.
 */
void display_set_listener(struct display *d, void (*fn)(void *opaque),
    void *opaque);

#endif
