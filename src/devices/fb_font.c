/*
 * The text mode's font: a PC Screen Font (PSF 1 or 2, maybe gzip'd) from
 * the host's console fonts (Debian's console-setup-linux), read when the
 * display is created.  Text memory holds code page 437, so glyphs are
 * picked through the font's Unicode table and the CP437 -> Unicode map
 * below; a font without a table is taken as CP437-ordered.
 *
 * With no font file the glyphs are outlined boxes: the screen stays
 * legible as layout, and the VM runs anyway.
 */
#include "devices/fb_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/log.h"

#define FB_FONT_FILE_MAX	(1u << 20)

static const char *const fb_font_paths[] = {
	"/usr/share/consolefonts/Uni2-VGA16.psf.gz",
	"/usr/share/consolefonts/Lat15-VGA16.psf.gz",
	"/usr/share/consolefonts/default8x16.psfu.gz",
	"/usr/share/kbd/consolefonts/default8x16.psfu.gz",
};

/* Code page 437, the VGA's character set, in Unicode. */
static const uint16_t fb_cp437[256] = {
	0x0000, 0x263a, 0x263b, 0x2665, 0x2666, 0x2663, 0x2660, 0x2022,
	0x25d8, 0x25cb, 0x25d9, 0x2642, 0x2640, 0x266a, 0x266b, 0x263c,
	0x25ba, 0x25c4, 0x2195, 0x203c, 0x00b6, 0x00a7, 0x25ac, 0x21a8,
	0x2191, 0x2193, 0x2192, 0x2190, 0x221f, 0x2194, 0x25b2, 0x25bc,
	/* 0x20-0x7e: ASCII, filled in by fb_font_cp437() */
	[0x7f] = 0x2302,
	0x00c7, 0x00fc, 0x00e9, 0x00e2, 0x00e4, 0x00e0, 0x00e5, 0x00e7,
	0x00ea, 0x00eb, 0x00e8, 0x00ef, 0x00ee, 0x00ec, 0x00c4, 0x00c5,
	0x00c9, 0x00e6, 0x00c6, 0x00f4, 0x00f6, 0x00f2, 0x00fb, 0x00f9,
	0x00ff, 0x00d6, 0x00dc, 0x00a2, 0x00a3, 0x00a5, 0x20a7, 0x0192,
	0x00e1, 0x00ed, 0x00f3, 0x00fa, 0x00f1, 0x00d1, 0x00aa, 0x00ba,
	0x00bf, 0x2310, 0x00ac, 0x00bd, 0x00bc, 0x00a1, 0x00ab, 0x00bb,
	0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556,
	0x2555, 0x2563, 0x2551, 0x2557, 0x255d, 0x255c, 0x255b, 0x2510,
	0x2514, 0x2534, 0x252c, 0x251c, 0x2500, 0x253c, 0x255e, 0x255f,
	0x255a, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256c, 0x2567,
	0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256b,
	0x256a, 0x2518, 0x250c, 0x2588, 0x2584, 0x258c, 0x2590, 0x2580,
	0x03b1, 0x00df, 0x0393, 0x03c0, 0x03a3, 0x03c3, 0x00b5, 0x03c4,
	0x03a6, 0x0398, 0x03a9, 0x03b4, 0x221e, 0x03c6, 0x03b5, 0x2229,
	0x2261, 0x00b1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00f7, 0x2248,
	0x00b0, 0x2219, 0x00b7, 0x221a, 0x207f, 0x00b2, 0x25a0, 0x00a0,
};

static unsigned
fb_font_cp437(unsigned c)
{
	return c >= 0x20 && c < 0x7f ? c : fb_cp437[c];
}

/* Boxes for every visible character: the layout stays readable. */
static void
fb_font_boxes(struct fb_font *f)
{
	memset(f, 0, sizeof(*f));
	f->height = 16;
	for (unsigned c = 0; c < 256; c++) {
		if (c == 0 || c == ' ' || c == 0xff)
			continue;
		f->glyph[c][2] = f->glyph[c][13] = 0x7e;
		for (unsigned y = 3; y < 13; y++)
			f->glyph[c][y] = 0x42;
	}
}

/* Give glyph g to every CP437 code that maps to Unicode u. */
static void
fb_font_assign(struct fb_font *f, bool *have, const uint8_t *g, unsigned u)
{
	for (unsigned c = 0; c < 256; c++) {
		if (have[c] || fb_font_cp437(c) != u)
			continue;
		memcpy(f->glyph[c], g, f->height);
		have[c] = true;
	}
}

/* PSF1: u16 entries per glyph, 0xffff ends one, 0xfffe starts the
 * sequences (ignored). */
static void
fb_font_psf1_table(struct fb_font *f, bool *have, const uint8_t *p,
    size_t len, const uint8_t *glyphs, unsigned n)
{
	size_t i = 0;

	for (unsigned g = 0; g < n && i + 1 < len; g++) {
		bool seq = false;

		for (; i + 1 < len; i += 2) {
			unsigned u = p[i] | p[i + 1] << 8;

			if (u == 0xffff) {
				i += 2;
				break;
			}
			if (u == 0xfffe)
				seq = true;
			else if (!seq)
				fb_font_assign(f, have, glyphs + g * f->height,
				    u);
		}
	}
}

/* Decode one UTF-8 character at p[*i]; 0xfffd when malformed. */
static unsigned
fb_font_utf8(const uint8_t *p, size_t len, size_t *i)
{
	unsigned c = p[(*i)++], n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 :
	    c >= 0xc0 ? 1 : 0;
	unsigned u = n == 3 ? c & 7 : n == 2 ? c & 15 : n == 1 ? c & 31 : c;

	if (c >= 0x80 && n == 0)
		return 0xfffd;
	for (; n > 0; n--) {
		if (*i >= len || (p[*i] & 0xc0) != 0x80)
			return 0xfffd;
		u = u << 6 | (p[(*i)++] & 0x3f);
	}
	return u;
}

/* PSF2: UTF-8 per glyph, 0xff ends one, 0xfe starts sequences. */
static void
fb_font_psf2_table(struct fb_font *f, bool *have, const uint8_t *p,
    size_t len, const uint8_t *glyphs, unsigned n, unsigned charsize)
{
	size_t i = 0;

	for (unsigned g = 0; g < n && i < len; g++) {
		bool seq = false;

		while (i < len) {
			if (p[i] == 0xff) {
				i++;
				break;
			}
			if (p[i] == 0xfe) {
				seq = true;
				i++;
				continue;
			}
			unsigned u = fb_font_utf8(p, len, &i);

			if (!seq)
				fb_font_assign(f, have, glyphs +
				    (size_t)g * charsize, u);
		}
	}
}

/* Glyphs in code order (no table), at most 256. */
static void
fb_font_plain(struct fb_font *f, bool *have, const uint8_t *glyphs,
    unsigned n, unsigned charsize)
{
	for (unsigned c = 0; c < n && c < 256; c++) {
		memcpy(f->glyph[c], glyphs + (size_t)c * charsize, f->height);
		have[c] = true;
	}
}

static int
fb_font_parse(struct fb_font *f, const uint8_t *p, size_t len)
{
	bool have[256] = { false };
	unsigned n, charsize, hdr;
	bool table;

	memset(f, 0, sizeof(*f));
	if (len >= 4 && p[0] == 0x36 && p[1] == 0x04) {
		hdr = 4;
		n = (p[2] & 1) ? 512 : 256;
		table = p[2] & 6;
		charsize = f->height = p[3];
	} else if (len >= 32 && p[0] == 0x72 && p[1] == 0xb5 &&
	    p[2] == 0x4a && p[3] == 0x86) {
		hdr = p[8] | p[9] << 8 | p[10] << 16 | (unsigned)p[11] << 24;
		table = p[12] & 1;
		n = p[16] | p[17] << 8 | p[18] << 16 | (unsigned)p[19] << 24;
		charsize = p[20] | p[21] << 8 | p[22] << 16 |
		    (unsigned)p[23] << 24;
		f->height = p[24] | p[25] << 8;
		if ((p[28] | p[29] << 8 | p[30] << 16) != 8 ||
		    charsize != f->height)
			return -ENOTSUP;	/* only 8 pixels wide */
	} else {
		return -EINVAL;
	}
	if (f->height == 0 || f->height > 32 || n == 0 || n > 65536 ||
	    hdr > len || (uint64_t)n * charsize > len - hdr)
		return -EINVAL;
	if (!table)
		fb_font_plain(f, have, p + hdr, n, charsize);
	else if (p[0] == 0x36)
		fb_font_psf1_table(f, have, p + hdr + (size_t)n * charsize,
		    len - hdr - (size_t)n * charsize, p + hdr, n);
	else
		fb_font_psf2_table(f, have, p + hdr + (size_t)n * charsize,
		    len - hdr - (size_t)n * charsize, p + hdr, n, charsize);
	/* Codes the font lacks show as its '?' (if any). */
	for (unsigned c = 1; c < 256; c++)
		if (!have[c] && have['?'] && c != 0xff && c != ' ')
			memcpy(f->glyph[c], f->glyph['?'], f->height);
	f->loaded = true;
	return 0;
}

int
fb_font_load_file(struct fb_font *f, const char *path)
{
	gzFile z = gzopen(path, "rb");
	uint8_t *buf;
	int n, err;

	if (z == NULL)
		return -ENOENT;
	if ((buf = malloc(FB_FONT_FILE_MAX)) == NULL) {
		gzclose(z);
		return -ENOMEM;
	}
	n = gzread(z, buf, FB_FONT_FILE_MAX);
	gzclose(z);
	err = n < 0 ? -EIO : fb_font_parse(f, buf, (size_t)n);
	free(buf);
	if (err < 0)
		fb_font_boxes(f);
	return err;
}

int
fb_font_load(struct fb_font *f)
{
	const char *env = getenv("TERMVISOR_FONT");
	static bool warned;

	if (env != NULL && env[0] != '\0') {
		if (fb_font_load_file(f, env) == 0)
			return 0;
		log_warnx("TERMVISOR_FONT=%s: not a PSF font with 8-pixel "
		    "glyphs", env);
	}
	for (size_t i = 0; i < sizeof(fb_font_paths) / sizeof(*fb_font_paths);
	    i++)
		if (fb_font_load_file(f, fb_font_paths[i]) == 0)
			return 0;
	if (!warned)
		log_warnx("display: no console font found (install Debian's "
		    "console-setup-linux); text shows as boxes");
	warned = true;
	fb_font_boxes(f);
	return -ENOENT;
}
