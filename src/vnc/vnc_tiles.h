/*
 * Change detection for the VNC server: a shadow copy of the guest's
 * surface, compared tile by tile against the live pixels.  Changed tiles
 * are copied into the shadow (which is what the encoders read, so a
 * frame is never torn while it is being encoded) and reported as
 * rectangles, runs of adjacent changed tiles of one tile row merged.
 *
 * Cost: one memcmp pass over the surface per scan; nothing is copied
 * or sent for an unchanged screen.
 */
#ifndef TV_VNC_TILES_H
#define TV_VNC_TILES_H

#include <stdint.h>

#define VNC_TILE_W	64	/* pixels */
#define VNC_TILE_H	16	/* lines */

struct vnc_shadow {
	uint32_t width, height;	/* pixels */
	uint8_t *pixels;	/* width * 4 bytes per line, XRGB8888 */
};

/*
 * Size the shadow for width x height (0 < both <= 8192) and clear it to
 * black; the old pixels are freed.  0 or -errno (-EINVAL: bad size).
 */
int vnc_shadow_resize(struct vnc_shadow *sh, uint32_t width, uint32_t height);
void vnc_shadow_free(struct vnc_shadow *sh);

/*
 * Compare src (same width and height as the shadow, stride bytes per
 * line) with the shadow; copy the changed tiles and call
 * rect(opaque, x, y, w, h) for each changed run.  Returns the number of
 * changed tiles.
 */
unsigned vnc_shadow_scan(struct vnc_shadow *sh, const uint8_t *src,
    uint32_t stride, void (*rect)(void *opaque, int x, int y, int w, int h),
    void *opaque);

#endif
