/*
 * VGA text mode: the registers a text screen depends on (CRTC geometry,
 * start address and cursor; the attribute controller's palette; the DAC)
 * at ports 0x3c0-0x3df, and the drawing of the 0xB8000 buffer with the
 * console font into the display's own pixels.
 *
 * The text buffer itself is plain guest RAM (the VMM maps RAM over
 * 0xA0000-0xBFFFF and the e820 map leaves that hole out), so the guest's
 * stores to it never exit; it is read when a surface is asked for.
 *
 * Glyphs are 8 pixels wide (a VGA draws 9 for most), and the cursor
 * does not blink, so an idle text screen draws nothing new.  A blinking
 * attribute shows steady, with the dark background the blink bit leaves.
 */
#include "devices/fb_internal.h"

#include <string.h>

#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/log.h"

#define FB_TEXT_MAX_COLS	132
#define FB_TEXT_MAX_ROWS	60

/* Mode 3 (80x25, 16-line glyphs) as a VGA BIOS leaves it. */
static const uint8_t fb_vga_crtc3[25] = {
	0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e,
	0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3,
	0xff,
};
static const uint8_t fb_vga_ar3[21] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b,
	0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08, 0x00,
};
static const uint8_t fb_vga_seq3[5] = { 0x03, 0x00, 0x03, 0x00, 0x02 };
static const uint8_t fb_vga_gr3[9] = {
	0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff,
};

void
fb_vga_reset(struct fb_vga *v)
{
	memset(v, 0, sizeof(*v));
	v->misc = 0x67;
	memcpy(v->crtc, fb_vga_crtc3, sizeof(fb_vga_crtc3));
	memcpy(v->ar, fb_vga_ar3, sizeof(fb_vga_ar3));
	memcpy(v->seq, fb_vga_seq3, sizeof(fb_vga_seq3));
	memcpy(v->gr, fb_vga_gr3, sizeof(fb_vga_gr3));
	v->ar_index = 0x20;	/* palette address source: display on */
	/*
	 * The EGA's 64 colours in the first DAC entries: bits 0-2 are
	 * blue, green, red at 2/3 intensity, bits 3-5 the same at 1/3.
	 * The attribute palette above picks the 16 text colours from them.
	 */
	for (unsigned i = 0; i < 64; i++) {
		v->dac[3 * i] = (uint8_t)(((i >> 2) & 1) * 0x2a +
		    ((i >> 5) & 1) * 0x15);
		v->dac[3 * i + 1] = (uint8_t)(((i >> 1) & 1) * 0x2a +
		    ((i >> 4) & 1) * 0x15);
		v->dac[3 * i + 2] = (uint8_t)((i & 1) * 0x2a +
		    ((i >> 3) & 1) * 0x15);
	}
}

uint32_t
fb_vga_dac_rgb(const struct fb_vga *v, unsigned i)
{
	const uint8_t *c = &v->dac[3 * (i & 0xff)];

	return (uint32_t)((c[0] & 0x3f) * 255 / 63) << 16 |
	    (uint32_t)((c[1] & 0x3f) * 255 / 63) << 8 |
	    (uint32_t)((c[2] & 0x3f) * 255 / 63);
}

void
fb_vga_text_geometry(const struct fb_vga *v, unsigned *cols, unsigned *rows,
    unsigned *cheight)
{
	unsigned vde = v->crtc[0x12] | (v->crtc[0x07] & 0x02) << 7 |
	    (v->crtc[0x07] & 0x40) << 3;
	unsigned c = v->crtc[0x01] + 1u, h = (v->crtc[0x09] & 0x1f) + 1u;
	unsigned r = (vde + 1) / h;

	*cols = c <= FB_TEXT_MAX_COLS ? c : 80;
	*rows = r >= 1 && r <= FB_TEXT_MAX_ROWS ? r : 25;
	*cheight = h;
}

/* Registers whose change resizes the text screen. */
static bool
fb_vga_crtc_geometry(unsigned i)
{
	return i == 0x01 || i == 0x07 || i == 0x09 || i == 0x12;
}

static uint8_t
fb_vga_read(struct display *d, unsigned port)
{
	struct fb_vga *v = &d->vga;
	uint8_t r;

	switch (port) {
	case 0x3c0:
		return v->ar_index;
	case 0x3c1:
		return v->ar[v->ar_index & 0x1f];
	case 0x3c2:
		return 0;	/* input status 0 */
	case 0x3c4:
		return v->seq_index;
	case 0x3c5:
		return v->seq[v->seq_index & 7];
	case 0x3c7:
		return v->dac_state;
	case 0x3c8:
		return v->dac_write;
	case 0x3c9:
		r = v->dac[3 * v->dac_read + v->dac_sub];
		if (++v->dac_sub == 3) {
			v->dac_sub = 0;
			v->dac_read++;
		}
		return r;
	case 0x3cc:
		return v->misc;
	case 0x3ce:
		return v->gr_index;
	case 0x3cf:
		return v->gr[v->gr_index & 15];
	case 0x3d4:
		return v->crtc_index;
	case 0x3d5:
		return v->crtc[v->crtc_index & 31];
	case 0x3da:
		/* Reading status 1 resets the attribute flip-flop; the
		 * retrace bits toggle so that polling loops end. */
		v->ar_flip = false;
		v->st1 ^= 0x09;
		return v->st1;
	default:
		return 0xff;
	}
}

static void
fb_vga_write(struct display *d, unsigned port, uint8_t val)
{
	struct fb_vga *v = &d->vga;

	switch (port) {
	case 0x3c0:
		if (!v->ar_flip)
			v->ar_index = val & 0x3f;
		else if ((v->ar_index & 0x1f) < 0x15)
			v->ar[v->ar_index & 0x1f] = val;
		v->ar_flip = !v->ar_flip;
		break;
	case 0x3c2:
		v->misc = val;
		break;
	case 0x3c4:
		v->seq_index = val;
		break;
	case 0x3c5:
		v->seq[v->seq_index & 7] = val;
		break;
	case 0x3c7:
		v->dac_read = val;
		v->dac_sub = 0;
		v->dac_state = 0;
		break;
	case 0x3c8:
		v->dac_write = val;
		v->dac_sub = 0;
		v->dac_state = 3;
		break;
	case 0x3c9:
		v->dac[3 * v->dac_write + v->dac_sub] = val;
		if (++v->dac_sub == 3) {
			v->dac_sub = 0;
			v->dac_write++;
		}
		break;
	case 0x3ce:
		v->gr_index = val;
		break;
	case 0x3cf:
		v->gr[v->gr_index & 15] = val;
		break;
	case 0x3d4:
		v->crtc_index = val;
		break;
	case 0x3d5:
		v->crtc[v->crtc_index & 31] = val;
		if (fb_vga_crtc_geometry(v->crtc_index & 31) && !d->graphics)
			fb_changed(d);
		break;
	default:
		log_guest_once("vga: write %#x to port %#x", val, port);
	}
}

void
fb_vga_io(struct display *d, unsigned port, uint8_t *data, unsigned len,
    bool is_write)
{
	for (unsigned i = 0; i < len; i++) {
		if (is_write)
			fb_vga_write(d, port + i, data[i]);
		else
			data[i] = fb_vga_read(d, port + i);
	}
}

void
fb_vga_pio(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	fb_vga_io(opaque, FB_VGA_PORT + (unsigned)off, data, len, is_write);
}

/* --- drawing --- */

static void
fb_vga_draw_cell(struct display *d, uint32_t *px, unsigned stride_px,
    unsigned cheight, uint8_t ch, uint32_t fg, uint32_t bg)
{
	const uint8_t *g = d->font.glyph[ch];

	for (unsigned y = 0; y < cheight; y++) {
		uint8_t bits = y < d->font.height ? g[y] : 0;
		uint32_t *row = px + (size_t)y * stride_px;

		for (unsigned x = 0; x < 8; x++)
			row[x] = (bits & (0x80 >> x)) ? fg : bg;
	}
}

static void
fb_vga_draw_cursor(struct display *d, const struct fb_vga *v, uint32_t *px,
    unsigned stride_px, unsigned cheight, uint32_t fg)
{
	unsigned start = v->crtc[0x0a] & 0x1f, end = v->crtc[0x0b] & 0x1f;

	if (v->crtc[0x0a] & 0x20)
		return;		/* cursor off */
	for (unsigned y = start; y <= end && y < cheight; y++)
		for (unsigned x = 0; x < 8; x++)
			px[(size_t)y * stride_px + x] = fg;
}

/* Everything but the text bytes that decides the picture. */
static void
fb_vga_text_key(const struct fb_vga *v, uint32_t key[24])
{
	unsigned cols, rows, ch;

	fb_vga_text_geometry(v, &cols, &rows, &ch);
	memset(key, 0, 24 * sizeof(*key));
	key[0] = cols | rows << 8 | ch << 16;
	key[1] = (uint32_t)v->crtc[0x0c] << 8 | v->crtc[0x0d];
	key[2] = (uint32_t)v->crtc[0x0e] << 8 | v->crtc[0x0f];
	key[3] = (uint32_t)v->crtc[0x0a] << 8 | v->crtc[0x0b];
	key[4] = v->ar[0x10];
	for (unsigned i = 0; i < 16; i++)
		key[8 + i] = fb_vga_dac_rgb(v, v->ar[i] & 0x3f);
}

void
fb_vga_render_text(struct display *d, const struct fb_vga *v,
    struct display_surface *s)
{
	const uint8_t *mem = vm_gpa_to_hva(d->vm, FB_TEXT_GPA, FB_TEXT_SIZE);
	unsigned cols, rows, ch, start, cursor, n;
	uint32_t key[24], *px = (uint32_t *)d->render;
	uint8_t text[FB_TEXT_MAX_COLS * FB_TEXT_MAX_ROWS * 2];

	fb_vga_text_geometry(v, &cols, &rows, &ch);
	s->width = cols * 8;
	s->height = rows * ch;
	s->stride = s->width * 4;
	s->pixels = d->render;
	start = (((unsigned)v->crtc[0x0c] << 8 | v->crtc[0x0d]) * 2) &
	    (FB_TEXT_SIZE - 1);
	cursor = ((unsigned)v->crtc[0x0e] << 8 | v->crtc[0x0f]) -
	    ((unsigned)v->crtc[0x0c] << 8 | v->crtc[0x0d]);
	n = cols * rows * 2;
	for (unsigned i = 0; i < n; i++)
		text[i] = mem != NULL ? mem[(start + i) & (FB_TEXT_SIZE - 1)] : 0;
	fb_vga_text_key(v, key);
	if (__atomic_load_n(&d->text_cache_ok, __ATOMIC_RELAXED) &&
	    memcmp(key, d->text_cache_key,
	    sizeof(key)) == 0 && memcmp(text, d->text_cache, n) == 0)
		return;
	for (unsigned i = 0; i < cols * rows; i++) {
		uint8_t c = text[2 * i], a = text[2 * i + 1];
		unsigned bg = (v->ar[0x10] & 0x08) ? (a >> 4) & 7 : a >> 4;
		uint32_t *cell = px + (size_t)(i / cols) * ch * cols * 8 +
		    (i % cols) * 8;

		fb_vga_draw_cell(d, cell, cols * 8, ch, c, key[8 + (a & 15)],
		    key[8 + bg]);
		if (i == cursor)
			fb_vga_draw_cursor(d, v, cell, cols * 8, ch,
			    key[8 + (a & 15)]);
	}
	memcpy(d->text_cache, text, n);
	memcpy(d->text_cache_key, key, sizeof(key));
	__atomic_store_n(&d->text_cache_ok, true, __ATOMIC_RELAXED);
}

void
fb_vga_snapshot(struct fb_vga *v, struct snap *s)
{
	snap_u8(s, "vga.misc", &v->misc);
	snap_u8(s, "vga.seq_index", &v->seq_index);
	snap_bytes(s, "vga.seq", v->seq, sizeof(v->seq));
	snap_u8(s, "vga.gr_index", &v->gr_index);
	snap_bytes(s, "vga.gr", v->gr, sizeof(v->gr));
	snap_u8(s, "vga.crtc_index", &v->crtc_index);
	snap_bytes(s, "vga.crtc", v->crtc, sizeof(v->crtc));
	snap_u8(s, "vga.ar_index", &v->ar_index);
	snap_bytes(s, "vga.ar", v->ar, sizeof(v->ar));
	snap_bool(s, "vga.ar_flip", &v->ar_flip);
	snap_u8(s, "vga.dac_read", &v->dac_read);
	snap_u8(s, "vga.dac_write", &v->dac_write);
	snap_u8(s, "vga.dac_sub", &v->dac_sub);
	snap_u8(s, "vga.dac_state", &v->dac_state);
	snap_bytes(s, "vga.dac", v->dac, sizeof(v->dac));
	/* A stream is outside input: keep indices in range. */
	v->dac_sub %= 3;
}
