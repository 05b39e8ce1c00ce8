/*
 * Tile comparison against a shadow copy.  See vnc_tiles.h.
 */
#include "vnc/vnc_tiles.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define VNC_SHADOW_MAX	8192

int
vnc_shadow_resize(struct vnc_shadow *sh, uint32_t width, uint32_t height)
{
	uint8_t *p;

	if (width == 0 || height == 0 || width > VNC_SHADOW_MAX ||
	    height > VNC_SHADOW_MAX)
		return -EINVAL;
	if ((p = calloc((size_t)width * height, 4)) == NULL)
		return -ENOMEM;
	free(sh->pixels);
	sh->pixels = p;
	sh->width = width;
	sh->height = height;
	return 0;
}

void
vnc_shadow_free(struct vnc_shadow *sh)
{
	free(sh->pixels);
	memset(sh, 0, sizeof(*sh));
}

/* Does the tile at (x, y), w x h pixels, differ?  If so, copy it. */
static bool
vnc_shadow_tile(struct vnc_shadow *sh, const uint8_t *src, uint32_t stride,
    uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	size_t pitch = (size_t)sh->width * 4, bytes = (size_t)w * 4;
	uint8_t *dst = sh->pixels + y * pitch + (size_t)x * 4;
	const uint8_t *s = src + (size_t)y * stride + (size_t)x * 4;
	uint32_t line;

	for (line = 0; line < h; line++)
		if (memcmp(dst + line * pitch, s + (size_t)line * stride,
		    bytes) != 0)
			break;
	if (line == h)
		return false;
	/* Lines above the first difference are equal: copy from there. */
	for (; line < h; line++)
		memcpy(dst + line * pitch, s + (size_t)line * stride, bytes);
	return true;
}

unsigned
vnc_shadow_scan(struct vnc_shadow *sh, const uint8_t *src, uint32_t stride,
    void (*rect)(void *opaque, int x, int y, int w, int h), void *opaque)
{
	unsigned changed = 0;

	for (uint32_t y = 0; y < sh->height; y += VNC_TILE_H) {
		uint32_t h = sh->height - y < VNC_TILE_H ? sh->height - y :
		    VNC_TILE_H;
		uint32_t run = 0, run_x = 0;

		for (uint32_t x = 0; x < sh->width; x += VNC_TILE_W) {
			uint32_t w = sh->width - x < VNC_TILE_W ?
			    sh->width - x : VNC_TILE_W;

			if (vnc_shadow_tile(sh, src, stride, x, y, w, h)) {
				if (run == 0)
					run_x = x;
				run += w;
				changed++;
				continue;
			}
			if (run != 0)
				rect(opaque, (int)run_x, (int)y, (int)run,
				    (int)h);
			run = 0;
		}
		if (run != 0)
			rect(opaque, (int)run_x, (int)y, (int)run, (int)h);
	}
	return changed;
}
