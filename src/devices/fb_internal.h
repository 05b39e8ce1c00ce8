/*
 * Inside the display device (fb.c, fb_vga.c, fb_font.c): the state they
 * share.  Nothing outside src/devices/fb*.c includes this.
 */
#ifndef TV_FB_INTERNAL_H
#define TV_FB_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/display.h"
#include "devices/pci.h"

struct snap;
struct vcpu;

#define FB_VRAM_SIZE		(16u << 20)
#define FB_MAX_DIM		8192	/* pixels, either way: bochs-drm's and VNC's limit */
#define FB_DEFAULT_WIDTH	1024
#define FB_DEFAULT_HEIGHT	768
#define FB_DEFAULT_BPP		32
/* Converted modes (not 32 bpp) and text are drawn here: the most
 * pixels VRAM can describe (8 bpp), 4 bytes each. */
#define FB_RENDER_SIZE		((size_t)FB_VRAM_SIZE * 4)

/* The Bochs VBE "DISPI" registers (QEMU's numbering). */
enum {
	VBE_ID, VBE_XRES, VBE_YRES, VBE_BPP, VBE_ENABLE, VBE_BANK,
	VBE_VIRT_WIDTH, VBE_VIRT_HEIGHT, VBE_X_OFFSET, VBE_Y_OFFSET,
	VBE_VIDEO_MEMORY_64K, VBE_NREGS
};
#define VBE_ID5			0xb0c5
#define VBE_ENABLED		0x01
#define VBE_GETCAPS		0x02
#define VBE_8BIT_DAC		0x20
#define VBE_LFB_ENABLED		0x40
#define VBE_NOCLEARMEM		0x80

/* BAR2 (MMIO) layout, as QEMU's bochs-display and stdvga. */
#define FB_MMIO_SIZE		0x1000
#define FB_MMIO_VGA		0x400	/* ports 0x3c0-0x3df */
#define FB_MMIO_DISPI		0x500	/* 16-bit registers */
#define FB_MMIO_QEXT		0x600	/* size, then byte order */
#define FB_QEXT_SIZE		8
#define FB_ENDIAN_LITTLE	0x1e1e1e1eu

/* VGA text memory and the ports the text mode needs. */
#define FB_TEXT_GPA		0xb8000ull
#define FB_TEXT_SIZE		0x8000u
#define FB_VGA_PORT		0x3c0
#define FB_VGA_NPORTS		0x20
#define FB_VBE_PORT		0x1ce	/* index, data at 0x1cf (16-bit) */

/* A graphics mode in force. */
struct fb_mode {
	uint32_t width, height, bpp;
	uint32_t stride;	/* bytes */
	uint32_t offset;	/* first pixel's byte in VRAM */
};

/* The VGA registers text mode reads (fb_vga.c). */
struct fb_vga {
	uint8_t misc;
	uint8_t seq_index, seq[8];
	uint8_t gr_index, gr[16];
	uint8_t crtc_index, crtc[32];
	uint8_t ar_index, ar[32];
	bool ar_flip;		/* next 0x3c0 write is data */
	uint8_t dac_read, dac_write, dac_sub, dac_state;
	uint8_t dac[256 * 3];	/* 6-bit components */
	uint8_t st1;		/* input status 1: toggled retrace bits */
};

/* A PSF glyph set, 8 pixels wide (fb_font.c). */
struct fb_font {
	unsigned height;		/* rows per glyph, <= 32 */
	uint8_t glyph[256][32];		/* indexed by CP437 code */
	bool loaded;			/* from a file; else blank boxes */
};

struct display {
	struct vm *vm;
	struct pci_dev pci;
	uint8_t *vram;
	int mem_idx;		/* vm region of VRAM, -1 before it exists */
	uint64_t mem_gpa;	/* where it is mapped, when mem_on */
	bool mem_on;

	uint16_t vbe[VBE_NREGS];
	uint16_t vbe_index;	/* port 0x1ce */
	uint32_t qext_endian;
	bool graphics;		/* showing mode (else text) */
	bool have_mode;		/* mode holds a good graphics mode */
	struct fb_mode mode;
	struct fb_vga vga;

	uint64_t generation;
	void (*listener)(void *);
	void *listener_opaque;

	/* Drawing into render (text, converted modes); the text cache
	 * lets an unchanged screen skip the redraw. */
	pthread_mutex_t render_lock;
	uint8_t *render;
	uint8_t text_cache[FB_TEXT_SIZE];
	uint32_t text_cache_key[24];	/* geometry, cursor, palette */
	bool text_cache_ok;
	struct fb_font font;
};

/* fb.c */
void fb_changed(struct display *d);

/* fb_vga.c */
void fb_vga_reset(struct fb_vga *v);
void fb_vga_io(struct display *d, unsigned port, uint8_t *data, unsigned len,
    bool is_write);
void fb_vga_pio(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque);
/* Text geometry from the CRTC: columns, rows, glyph height. */
void fb_vga_text_geometry(const struct fb_vga *v, unsigned *cols,
    unsigned *rows, unsigned *cheight);
/* Draw the text screen into d->render (render_lock held); fills s. */
void fb_vga_render_text(struct display *d, const struct fb_vga *v,
    struct display_surface *s);
/* XRGB8888 of DAC entry i. */
uint32_t fb_vga_dac_rgb(const struct fb_vga *v, unsigned i);
void fb_vga_snapshot(struct fb_vga *v, struct snap *s);

/* fb_font.c */
/* Load the console font (TERMVISOR_FONT, else the usual PSF files);
 * without one, glyphs are boxes.  0 or -errno. */
int fb_font_load(struct fb_font *f);
int fb_font_load_file(struct fb_font *f, const char *path);

#endif
