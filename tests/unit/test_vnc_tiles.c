/*
 * The VNC server's change detection: a surface compared with its shadow
 * copy tile by tile reports exactly the tiles that changed (runs of
 * them merged), copies them, and nothing for a still screen.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vnc/vnc_tiles.h"

#define MAX_RECTS 4096

static struct { int x, y, w, h; } rects[MAX_RECTS];
static int nrects;
static struct vnc_shadow sh;

static void
rect(void *opaque, int x, int y, int w, int h)
{
	cr_assert_lt(nrects, MAX_RECTS);
	rects[nrects].x = x;
	rects[nrects].y = y;
	rects[nrects].w = w;
	rects[nrects].h = h;
	nrects++;
}

static unsigned
scan(const uint8_t *src, uint32_t stride)
{
	nrects = 0;
	return vnc_shadow_scan(&sh, src, stride, rect, NULL);
}

static void
put(uint8_t *src, uint32_t stride, uint32_t x, uint32_t y, uint32_t v)
{
	memcpy(src + (size_t)y * stride + x * 4, &v, 4);
}

/* Does the shadow equal src, pixel for pixel? */
static bool
same(const uint8_t *src, uint32_t stride)
{
	for (uint32_t y = 0; y < sh.height; y++)
		if (memcmp(sh.pixels + (size_t)y * sh.width * 4,
		    src + (size_t)y * stride, (size_t)sh.width * 4) != 0)
			return false;
	return true;
}

static void
teardown(void)
{
	vnc_shadow_free(&sh);
}

TestSuite(vnc_tiles, .fini = teardown, .timeout = 10);

Test(vnc_tiles, refuses_absurd_sizes)
{
	cr_assert_eq(vnc_shadow_resize(&sh, 0, 480), -EINVAL);
	cr_assert_eq(vnc_shadow_resize(&sh, 640, 0), -EINVAL);
	cr_assert_eq(vnc_shadow_resize(&sh, 100000, 10), -EINVAL);
	cr_assert_eq(vnc_shadow_resize(&sh, 10, 8193), -EINVAL);
	cr_assert_null(sh.pixels);
	cr_assert_eq(vnc_shadow_resize(&sh, 640, 480), 0);
	/* A refused size keeps the last good one. */
	cr_assert_eq(vnc_shadow_resize(&sh, 0, 0), -EINVAL);
	cr_assert_eq(sh.width, 640);
	cr_assert_eq(sh.height, 480);
}

Test(vnc_tiles, still_screen_reports_nothing)
{
	uint32_t w = 1024, h = 768, stride = w * 4;
	uint8_t *src = malloc((size_t)stride * h);

	cr_assert_eq(vnc_shadow_resize(&sh, w, h), 0);
	/* Black like the fresh shadow: nothing changed. */
	memset(src, 0, (size_t)stride * h);
	cr_assert_eq(scan(src, stride), 0);
	cr_assert_eq(nrects, 0);
	/* Everything changed: every tile, one run per tile row. */
	memset(src, 0x5a, (size_t)stride * h);
	cr_assert_eq(scan(src, stride), (w / VNC_TILE_W) * (h / VNC_TILE_H));
	cr_assert_eq(nrects, (int)(h / VNC_TILE_H));
	for (int i = 0; i < nrects; i++) {
		cr_assert_eq(rects[i].x, 0);
		cr_assert_eq(rects[i].w, (int)w);
		cr_assert_eq(rects[i].y, i * VNC_TILE_H);
	}
	cr_assert(same(src, stride));
	cr_assert_eq(scan(src, stride), 0, "a second look sees no change");
	free(src);
}

Test(vnc_tiles, one_pixel_one_tile)
{
	uint32_t w = 640, h = 480, stride = w * 4;
	uint8_t *src = calloc((size_t)stride, h);

	cr_assert_eq(vnc_shadow_resize(&sh, w, h), 0);
	put(src, stride, 130, 40, 0x00ff0000);
	cr_assert_eq(scan(src, stride), 1);
	cr_assert_eq(nrects, 1);
	cr_assert_eq(rects[0].x, 128);
	cr_assert_eq(rects[0].y, 32);
	cr_assert_eq(rects[0].w, VNC_TILE_W);
	cr_assert_eq(rects[0].h, VNC_TILE_H);
	cr_assert(same(src, stride));
	/* The last line of a tile counts as much as its first. */
	put(src, stride, 0, 15, 1);
	put(src, stride, 639, 479, 2);
	cr_assert_eq(scan(src, stride), 2);
	cr_assert_eq(nrects, 2);
	cr_assert_eq(rects[0].x, 0);
	cr_assert_eq(rects[0].y, 0);
	cr_assert_eq(rects[1].x, 576);
	cr_assert_eq(rects[1].y, 464);
	cr_assert(same(src, stride));
	free(src);
}

Test(vnc_tiles, adjacent_tiles_merge_gaps_split)
{
	uint32_t w = 640, h = 64, stride = w * 4;
	uint8_t *src = calloc((size_t)stride, h);

	cr_assert_eq(vnc_shadow_resize(&sh, w, h), 0);
	/* Tiles 1, 2, 3 and 5 of the second tile row. */
	put(src, stride, 64, 20, 7);
	put(src, stride, 190, 16, 7);
	put(src, stride, 192, 31, 7);
	put(src, stride, 320, 17, 7);
	cr_assert_eq(scan(src, stride), 4);
	cr_assert_eq(nrects, 2);
	cr_assert_eq(rects[0].x, 64);
	cr_assert_eq(rects[0].w, 3 * VNC_TILE_W);
	cr_assert_eq(rects[0].y, 16);
	cr_assert_eq(rects[1].x, 320);
	cr_assert_eq(rects[1].w, VNC_TILE_W);
	free(src);
}

Test(vnc_tiles, ragged_edges_and_padded_stride)
{
	/* 100x20: the last tile column is 36 wide, the last row 4 high;
	 * each line has 32 bytes of padding the scan must not look at. */
	uint32_t w = 100, h = 20, stride = w * 4 + 32;
	uint8_t *src = calloc((size_t)stride, h);

	cr_assert_eq(vnc_shadow_resize(&sh, w, h), 0);
	for (uint32_t y = 0; y < h; y++)
		memset(src + (size_t)y * stride + w * 4, 0xff, 32);
	cr_assert_eq(scan(src, stride), 0, "padding is not the picture");
	put(src, stride, 99, 19, 0x123456);
	cr_assert_eq(scan(src, stride), 1);
	cr_assert_eq(rects[0].x, 64);
	cr_assert_eq(rects[0].y, 16);
	cr_assert_eq(rects[0].w, 36);
	cr_assert_eq(rects[0].h, 4);
	cr_assert(same(src, stride));
	free(src);
}

Test(vnc_tiles, random_changes_match_a_pixel_diff)
{
	uint32_t w = 333, h = 111, stride = w * 4;
	uint8_t *src = calloc((size_t)stride, h);
	bool dirty[(111 + VNC_TILE_H - 1) / VNC_TILE_H][(333 + VNC_TILE_W - 1) / VNC_TILE_W];

	srand(42);
	cr_assert_eq(vnc_shadow_resize(&sh, w, h), 0);
	for (int round = 0; round < 50; round++) {
		unsigned want = 0, n = (unsigned)(rand() % 20);

		memset(dirty, 0, sizeof(dirty));
		for (unsigned i = 0; i < n; i++) {
			uint32_t x = (uint32_t)rand() % w, y = (uint32_t)rand() % h;

			put(src, stride, x, y, (uint32_t)rand() | 1u);
			dirty[y / VNC_TILE_H][x / VNC_TILE_W] = true;
		}
		for (size_t r = 0; r < sizeof(dirty) / sizeof(dirty[0]); r++)
			for (size_t c = 0; c < sizeof(dirty[0]); c++)
				want += dirty[r][c];
		/* A random write may repeat the old value: compare with
		 * what the shadow says rather than assume. */
		cr_assert_leq(scan(src, stride), want);
		cr_assert(same(src, stride));
		for (int i = 0; i < nrects; i++)
			for (int x = rects[i].x; x < rects[i].x + rects[i].w;
			    x += VNC_TILE_W)
				cr_assert(dirty[rects[i].y / VNC_TILE_H]
				    [x / VNC_TILE_W], "tile (%d, %d) reported "
				    "but not written", x, rects[i].y);
	}
	free(src);
}
