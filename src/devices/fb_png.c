/*
 * Screenshots: the display's current surface as a PNG file (libpng),
 * for the control socket's "screenshot" command.  The file is written
 * under a temporary name and renamed, so a reader never sees half of it.
 */
#include "devices/display.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

/* One XRGB8888 line to RGB. */
static void
fb_png_line(const uint8_t *src, uint8_t *dst, uint32_t width)
{
	for (uint32_t x = 0; x < width; x++) {
		dst[3 * x] = src[4 * x + 2];
		dst[3 * x + 1] = src[4 * x + 1];
		dst[3 * x + 2] = src[4 * x];
	}
}

/* libpng reports errors by longjmp; keep that inside this function. */
static int
fb_png_write(FILE *f, const struct display_surface *s, uint8_t *line)
{
	png_structp png;
	png_infop info;

	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	if (png == NULL)
		return -ENOMEM;
	info = png_create_info_struct(png);
	if (info == NULL) {
		png_destroy_write_struct(&png, NULL);
		return -ENOMEM;
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		return -EIO;
	}
	png_init_io(png, f);
	/* Screens compress well and fast at a low level. */
	png_set_compression_level(png, 3);
	png_set_IHDR(png, info, s->width, s->height, 8, PNG_COLOR_TYPE_RGB,
	    PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
	    PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (uint32_t y = 0; y < s->height; y++) {
		fb_png_line(s->pixels + (size_t)y * s->stride, line, s->width);
		png_write_row(png, line);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	return 0;
}

int
display_screenshot_png(struct display *d, const char *path)
{
	struct display_surface s;
	char tmp[4096];
	uint8_t *line;
	FILE *f;
	int err;

	display_get_surface_locked(d, &s);
	if (s.width == 0 || s.height == 0)
		return -ENODATA;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path,
	    (long)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	if ((line = malloc((size_t)s.width * 3)) == NULL)
		return -ENOMEM;
	if ((f = fopen(tmp, "wbx")) == NULL) {
		err = -errno;
		free(line);
		return err;
	}
	err = fb_png_write(f, &s, line);
	free(line);
	if (fclose(f) != 0 && err == 0)
		err = -errno;
	if (err == 0 && rename(tmp, path) < 0)
		err = -errno;
	if (err < 0)
		unlink(tmp);
	return err;
}
