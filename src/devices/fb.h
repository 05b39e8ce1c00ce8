/*
 * The display device (fb.c) as the device table and the boot loader see
 * it; consumers of the picture use display.h.
 */
#ifndef TV_FB_H
#define TV_FB_H

#include <stdint.h>

struct display;
struct device_ops;

extern const struct device_ops display_ops;

/*
 * Set the default graphics mode (1024x768, 32 bpp) as a boot loader that
 * sets a VBE mode would, and describe it in si, the 64-byte screen_info
 * at the start of Linux's boot_params: a VESA linear framebuffer
 * (VIDEO_TYPE_VLFB) at BAR0.  0, or -ENODEV when BAR0 has no address
 * (si is then left alone).
 */
int display_boot_screen_info(struct display *d, uint8_t *si);

#endif
