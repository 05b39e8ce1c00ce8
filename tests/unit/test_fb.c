/*
 * The display (src/devices/fb*.c) driven as a guest would: PCI
 * configuration through 0xcf8/0xcfc, DISPI through BAR2 and the 0x1ce
 * ports, VGA text through 0xB8000 and 0x3c0-0x3df; what comes out is
 * checked on the surface the VNC server and screenshots read.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <unistd.h>
#include <zlib.h>

#include "fake_vm.h"
#include "devices/display.h"
#include "devices/fb.h"
#include "devices/fb_internal.h"
#include "devices/pci.h"
#include "migrate/snap.h"

#define LOW_RAM		(1u << 20)
#define FONT_PATH	"/usr/share/consolefonts/Uni2-VGA16.psf.gz"

static struct vm *vm;
static struct display *disp;
static uint8_t *ram;
static int slot;
static int listened;

static void
on_change(void *opaque)
{
	(*(int *)opaque)++;
}

/* A VM with 1 MiB of RAM at 0 (for the text buffer), the host bridge
 * and the display, BARs placed as firmware would. */
static struct vm *
make_vm(uint8_t **ramp)
{
	struct vm *v = fake_vm_new(LOW_RAM);

	*ramp = calloc(1, LOW_RAM);
	v->ram = *ramp;
	v->regions[0] = (struct mem_region){ .gpa = 0, .size = LOW_RAM,
	    .hva = *ramp, .name = "ram-low" };
	v->nregions = 1;
	cr_assert_eq(pci_host_ops.create(v), 0);
	cr_assert_eq(display_ops.create(v), 0);
	return v;
}

static void
setup(void)
{
	vm = make_vm(&ram);
	disp = display_find(vm);
	cr_assert_not_null(disp);
	slot = disp->pci.devfn >> 3;
	listened = 0;
	display_set_listener(disp, on_change, &listened);
}

static void
teardown(void)
{
	fake_vm_free(vm);
	free(ram);
}

TestSuite(fb, .init = setup, .fini = teardown, .timeout = 20);

static uint32_t
cfg_rd(unsigned reg, unsigned len)
{
	fake_out(vm, 0xcf8, 4, 0x80000000u | (unsigned)slot << 11 |
	    (reg & 0xfc));
	return fake_in(vm, 0xcfc + (reg & 3), len);
}

static void
cfg_wr(unsigned reg, unsigned len, uint32_t v)
{
	fake_out(vm, 0xcf8, 4, 0x80000000u | (unsigned)slot << 11 |
	    (reg & 0xfc));
	fake_out(vm, 0xcfc + (reg & 3), len, v);
}

static uint64_t
bar(int i)
{
	return cfg_rd(PCI_BAR0 + 4 * i, 4) & ~0xfu;
}

static uint16_t
dispi_rd(unsigned reg)
{
	return (uint16_t)fake_mmio_read(vm, bar(2) + 0x500 + 2 * reg, 2);
}

static void
dispi_wr(unsigned reg, uint16_t v)
{
	fake_mmio_write(vm, bar(2) + 0x500 + 2 * reg, 2, v);
}

/* What bochs-drm's bochs_hw_setmode() writes. */
static void
set_mode(unsigned w, unsigned h)
{
	dispi_wr(VBE_ENABLE, 0);
	dispi_wr(VBE_BPP, 32);
	dispi_wr(VBE_XRES, (uint16_t)w);
	dispi_wr(VBE_YRES, (uint16_t)h);
	dispi_wr(VBE_BANK, 0);
	dispi_wr(VBE_VIRT_WIDTH, (uint16_t)w);
	dispi_wr(VBE_VIRT_HEIGHT, w ? (uint16_t)(FB_VRAM_SIZE / (w * 4)) : 0);
	dispi_wr(VBE_X_OFFSET, 0);
	dispi_wr(VBE_Y_OFFSET, 0);
	dispi_wr(VBE_ENABLE, VBE_ENABLED | VBE_LFB_ENABLED);
}

static uint32_t
pixel(const struct display_surface *s, unsigned x, unsigned y)
{
	uint32_t p;

	memcpy(&p, s->pixels + (size_t)y * s->stride + 4 * x, 4);
	return p & 0xffffff;
}

Test(fb, pci_identity_and_bars)
{
	cr_assert_eq(cfg_rd(PCI_VENDOR_ID, 2), 0x1234);
	cr_assert_eq(cfg_rd(PCI_DEVICE_ID, 2), 0x1111);
	cr_assert_eq(cfg_rd(0x08, 4) >> 8, 0x038000, "display, other");
	cr_assert_eq(cfg_rd(PCI_BAR0, 4) & 0xf, 0x8, "BAR0 prefetchable");
	cr_assert_neq(bar(0), 0, "BAR0 placed");
	cr_assert_neq(bar(2), 0, "BAR2 placed");
	/* Sizing, as a kernel does: decoding off, all-ones, read back. */
	cfg_wr(PCI_COMMAND, 2, 0);
	uint32_t saved = cfg_rd(PCI_BAR0, 4);
	cfg_wr(PCI_BAR0, 4, 0xffffffff);
	cr_assert_eq(~(cfg_rd(PCI_BAR0, 4) & ~0xfu) + 1, FB_VRAM_SIZE);
	cfg_wr(PCI_BAR0, 4, saved);
	uint32_t saved2 = cfg_rd(PCI_BAR0 + 8, 4);
	cfg_wr(PCI_BAR0 + 8, 4, 0xffffffff);
	cr_assert_eq(~(cfg_rd(PCI_BAR0 + 8, 4) & ~0xfu) + 1, FB_MMIO_SIZE);
	cfg_wr(PCI_BAR0 + 8, 4, saved2);
	cfg_wr(PCI_COMMAND, 2, PCI_CMD_MEM);
	cr_assert_eq(dispi_rd(VBE_ID), 0xb0c5);
	cr_assert_eq(dispi_rd(VBE_VIDEO_MEMORY_64K), FB_VRAM_SIZE >> 16);
	cr_assert_eq(fake_mmio_read(vm, bar(2) + 0x600, 4), 8, "qext size");
	cr_assert_eq(fake_mmio_read(vm, bar(2) + 0x604, 4), 0x1e1e1e1e);
}

/* Guest stores reach video memory as memory, wherever BAR0 goes. */
Test(fb, vram_is_guest_memory_that_follows_bar0)
{
	struct display_surface s;
	uint64_t old = bar(0), neu = old + 2 * FB_VRAM_SIZE;
	uint32_t red = 0xff0000;

	set_mode(640, 480);
	display_get_surface(disp, &s);
	uint8_t *p = vm_gpa_to_hva(vm, old, FB_VRAM_SIZE);
	cr_assert_eq(p, s.pixels, "BAR0 is the surface's memory");
	cr_assert_eq(vm_write(vm, old + 4 * 10, &red, 4), 0);
	cr_assert_eq(pixel(&s, 10, 0), 0xff0000);
	cfg_wr(PCI_COMMAND, 2, 0);
	cr_assert_null(vm_gpa_to_hva(vm, old, 4), "decoding off: unmapped");
	cfg_wr(PCI_BAR0, 4, (uint32_t)neu);
	cfg_wr(PCI_COMMAND, 2, PCI_CMD_MEM);
	cr_assert_null(vm_gpa_to_hva(vm, old, 4));
	cr_assert_eq(vm_gpa_to_hva(vm, neu, FB_VRAM_SIZE), s.pixels);
	/* An access that still reaches the bus is served too. */
	cr_assert_eq(fake_mmio_read(vm, neu + 40, 4) & 0xffffff, 0xff0000);
}

Test(fb, dispi_switches_modes)
{
	struct display_surface s;
	uint64_t gen;

	display_get_surface(disp, &s);
	cr_assert(s.text_mode, "powers on in text mode");
	gen = s.generation;
	set_mode(800, 600);
	display_get_surface(disp, &s);
	cr_assert_not(s.text_mode);
	cr_assert_eq(s.width, 800);
	cr_assert_eq(s.height, 600);
	cr_assert_eq(s.stride, 3200);
	cr_assert_neq(s.generation, gen);
	cr_assert_gt(listened, 0, "the listener heard it");
	cr_assert_eq(dispi_rd(VBE_XRES), 800);
	cr_assert_eq(dispi_rd(VBE_VIRT_HEIGHT), FB_VRAM_SIZE / 3200);
	/* Page flip as bochs_hw_setbase(): a second buffer 600 lines down. */
	gen = s.generation;
	const uint8_t *first = s.pixels;
	dispi_wr(VBE_VIRT_WIDTH, 800);
	dispi_wr(VBE_X_OFFSET, 0);
	dispi_wr(VBE_Y_OFFSET, 600);
	display_get_surface(disp, &s);
	cr_assert_eq(s.pixels, first + 600 * 3200);
	cr_assert_neq(s.generation, gen);
	/* The 0x1ce/0x1cf ports reach the same registers. */
	fake_out(vm, 0x1ce, 2, VBE_XRES);
	cr_assert_eq(fake_in(vm, 0x1cf, 2), 800);
	fake_out(vm, 0x1cf, 2, 1024);
	fake_out(vm, 0x1ce, 2, VBE_YRES);
	fake_out(vm, 0x1cf, 2, 768);
	fake_out(vm, 0x1ce, 2, VBE_Y_OFFSET);
	fake_out(vm, 0x1cf, 2, 0);
	display_get_surface(disp, &s);
	cr_assert_eq(s.width, 1024);
	cr_assert_eq(s.height, 768);
	/* Disabling DISPI goes back to text. */
	dispi_wr(VBE_ENABLE, 0);
	display_get_surface(disp, &s);
	cr_assert(s.text_mode);
}

Test(fb, absurd_modes_are_refused)
{
	struct display_surface s;
	static const uint16_t bad[][3] = {
		{ 0, 600, 32 }, { 800, 0, 32 }, { 20000, 600, 32 },
		{ 4096, 4096, 32 },	/* 64 MiB: more than VRAM */
		{ 8193, 16, 32 },	/* fits VRAM, wider than any client */
		{ 800, 600, 7 }, { 800, 600, 0 },
	};

	/* Never had a mode: an absurd one leaves text mode on. */
	set_mode(0, 0);
	display_get_surface(disp, &s);
	cr_assert(s.text_mode);
	cr_assert_eq(dispi_rd(VBE_ENABLE) & VBE_ENABLED, 0);
	set_mode(800, 600);
	/* One register at a time while enabled: each write applies. */
	static const uint16_t one[][2] = {
		{ VBE_XRES, 0 }, { VBE_YRES, 0 }, { VBE_XRES, 20000 },
		{ VBE_YRES, 8000 },	/* 800x8000x4: more than VRAM */
		{ VBE_BPP, 7 }, { VBE_BPP, 0 },
	};
	for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
		dispi_wr(one[i][0], one[i][1]);
		display_get_surface(disp, &s);
		cr_assert_eq(s.width, 800, "write %zu", i);
		cr_assert_eq(s.height, 600, "write %zu", i);
		cr_assert_eq(dispi_rd(VBE_XRES), 800, "reads the good mode");
		cr_assert_eq(dispi_rd(VBE_YRES), 600);
		cr_assert_eq(dispi_rd(VBE_BPP), 32);
	}
	/* Whole modes through a fresh enable. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dispi_wr(VBE_ENABLE, 0);
		dispi_wr(VBE_XRES, bad[i][0]);
		dispi_wr(VBE_YRES, bad[i][1]);
		dispi_wr(VBE_BPP, bad[i][2]);
		dispi_wr(VBE_ENABLE, VBE_ENABLED | VBE_LFB_ENABLED);
		display_get_surface(disp, &s);
		cr_assert_not(s.text_mode, "mode %zu", i);
		cr_assert_eq(s.width, 800, "mode %zu", i);
		cr_assert_eq(s.height, 600, "mode %zu", i);
		cr_assert_eq(s.stride, 3200, "mode %zu", i);
		cr_assert_eq(dispi_rd(VBE_XRES), 800, "mode %zu", i);
	}
	/* An offset that pushes the picture past VRAM is refused too. */
	dispi_wr(VBE_Y_OFFSET, 0xffff);
	display_get_surface(disp, &s);
	cr_assert_eq(dispi_rd(VBE_Y_OFFSET), 0);
	cr_assert_eq(s.pixels, disp->vram);
}

Test(fb, sixteen_bpp_is_converted)
{
	struct display_surface s;
	uint16_t px[2] = { 0xf800, 0x07e0 };	/* red, green in RGB565 */

	dispi_wr(VBE_BPP, 16);
	dispi_wr(VBE_XRES, 64);
	dispi_wr(VBE_YRES, 8);
	dispi_wr(VBE_ENABLE, VBE_ENABLED | VBE_LFB_ENABLED);
	cr_assert_eq(vm_write(vm, bar(0), px, sizeof(px)), 0);
	display_get_surface(disp, &s);
	cr_assert_eq(s.width, 64);
	cr_assert_eq(s.stride, 256);
	cr_assert_eq(pixel(&s, 0, 0), 0xff0000);
	cr_assert_eq(pixel(&s, 1, 0), 0x00ff00);
}

/* ---- text mode ---- */

/* The glyph of ASCII c straight from the PSF file (these fonts keep
 * ASCII at its own index), independently of fb_font.c. */
static bool
raw_glyph(unsigned c, uint8_t g[16])
{
	uint8_t buf[64 * 1024];
	gzFile z = gzopen(FONT_PATH, "rb");
	int n;

	if (z == NULL)
		return false;
	n = gzread(z, buf, sizeof(buf));
	gzclose(z);
	cr_assert_geq(n, 4 + 256 * 16);
	cr_assert_eq(buf[0], 0x36, "PSF1");
	cr_assert_eq(buf[3], 16, "16 lines");
	memcpy(g, buf + 4 + c * 16, 16);
	return true;
}

static void
put_text(unsigned pos, const char *str, uint8_t attr)
{
	for (size_t i = 0; str[i] != '\0'; i++) {
		ram[FB_TEXT_GPA + 2 * (pos + i)] = (uint8_t)str[i];
		ram[FB_TEXT_GPA + 2 * (pos + i) + 1] = attr;
	}
}

/* Cell (col, row) of s matches glyph g in fg on bg. */
static void
check_cell(const struct display_surface *s, unsigned col, unsigned row,
    const uint8_t *g, uint32_t fg, uint32_t bg)
{
	for (unsigned y = 0; y < 16; y++)
		for (unsigned x = 0; x < 8; x++)
			cr_assert_eq(pixel(s, col * 8 + x, row * 16 + y),
			    (g[y] & (0x80 >> x)) ? fg : bg,
			    "cell %u,%u pixel %u,%u", col, row, x, y);
}

Test(fb, text_renders_font_and_palette)
{
	struct display_surface s;
	uint8_t ga[16], gz[16];

	if (!raw_glyph('A', ga) || !raw_glyph('z', gz))
		cr_skip_test("no %s (Debian console-setup-linux)", FONT_PATH);
	cr_assert(disp->font.loaded);
	/* Cursor away from the cells we look at. */
	fake_out(vm, 0x3d4, 1, 0x0e);
	fake_out(vm, 0x3d5, 1, 0x07);
	put_text(0, "Az", 0x1f);		/* white on blue */
	put_text(80 * 24 + 79, "A", 0x4e);	/* yellow on red, last cell */
	display_get_surface(disp, &s);
	cr_assert(s.text_mode);
	cr_assert_eq(s.width, 640);
	cr_assert_eq(s.height, 400);
	check_cell(&s, 0, 0, ga, 0xffffff, 0x0000aa);
	check_cell(&s, 1, 0, gz, 0xffffff, 0x0000aa);
	check_cell(&s, 79, 24, ga, 0xffff55, 0xaa0000);
	/* Brown is the odd one of the 16: 6 -> EGA 0x14. */
	put_text(0, "A", 0x60);
	display_get_surface(disp, &s);
	check_cell(&s, 0, 0, ga, 0x000000, 0xaa5500);
	/* Reprogram DAC entry 0x14 (brown): the screen follows. */
	fake_out(vm, 0x3c8, 1, 0x14);
	fake_out(vm, 0x3c9, 1, 0x3f);
	fake_out(vm, 0x3c9, 1, 0x00);
	fake_out(vm, 0x3c9, 1, 0x3f);
	display_get_surface(disp, &s);
	check_cell(&s, 0, 0, ga, 0x000000, 0xff00ff);
	/* And the attribute palette: colour 6 -> entry 0x3f (white). */
	fake_in(vm, 0x3da, 1);			/* flip-flop to index */
	fake_out(vm, 0x3c0, 1, 0x06);
	fake_out(vm, 0x3c0, 1, 0x3f);
	fake_out(vm, 0x3c0, 1, 0x20);		/* display on again */
	display_get_surface(disp, &s);
	check_cell(&s, 0, 0, ga, 0x000000, 0xffffff);
}

Test(fb, text_cursor_and_start_address)
{
	struct display_surface s;
	uint8_t blank[16] = { 0 };

	put_text(0, "  ", 0x07);
	/* Cursor at cell 1, lines 14-15 (the BIOS's underline). */
	fake_out(vm, 0x3d4, 2, 0x000e);		/* index and data at once */
	fake_out(vm, 0x3d4, 2, 0x010f);
	display_get_surface(disp, &s);
	check_cell(&s, 0, 0, blank, 0xaaaaaa, 0);
	for (unsigned y = 0; y < 16; y++)
		cr_assert_eq(pixel(&s, 8 + 3, y), y == 13 || y == 14 ?
		    0xaaaaaa : 0, "line %u", y);
	/* Cursor off (CRTC 0x0a bit 5). */
	fake_out(vm, 0x3d4, 1, 0x0a);
	fake_out(vm, 0x3d5, 1, 0x20);
	display_get_surface(disp, &s);
	check_cell(&s, 1, 0, blank, 0xaaaaaa, 0);
	/* Start address: the screen begins 80 cells (one line) later. */
	put_text(80, "  ", 0x70);		/* black on grey */
	fake_out(vm, 0x3d4, 1, 0x0d);
	fake_out(vm, 0x3d5, 1, 80);
	display_get_surface(disp, &s);
	check_cell(&s, 0, 0, blank, 0, 0xaaaaaa);
	/* 80x50 with 8-line glyphs: the surface changes shape. */
	uint64_t gen = s.generation;
	fake_out(vm, 0x3d4, 1, 0x09);
	fake_out(vm, 0x3d5, 1, 0x47);
	display_get_surface(disp, &s);
	cr_assert_eq(s.height, 400);
	cr_assert_eq(disp->vga.crtc[9] & 0x1f, 7);
	cr_assert_neq(s.generation, gen);
	unsigned cols, rows, ch;
	fb_vga_text_geometry(&disp->vga, &cols, &rows, &ch);
	cr_assert_eq(rows, 50);
	cr_assert_eq(ch, 8);
}

/* ---- state ---- */

Test(fb, snapshot_round_trip)
{
	struct display_surface s, t;
	struct snap sv, ld;
	uint8_t *ram2;
	struct vm *vm2;
	struct display *d2;

	set_mode(320, 200);
	for (unsigned i = 0; i < 320 * 200; i++) {
		uint32_t p = i * 2654435761u;

		memcpy(disp->vram + 4 * i, &p, 4);
	}
	fake_out(vm, 0x3c8, 1, 0x20);
	fake_out(vm, 0x3c9, 1, 0x11);
	snap_init_save(&sv);
	snap_section_begin(&sv, "display", display_ops.snapshot_version);
	cr_assert_eq(display_ops.snapshot(disp, &sv), 0);
	snap_section_end(&sv);

	vm2 = make_vm(&ram2);
	d2 = display_find(vm2);
	snap_init_load(&ld, sv.buf, sv.len);
	snap_section_begin(&ld, "display", display_ops.snapshot_version);
	cr_assert_eq(display_ops.snapshot(d2, &ld), 0, "%s", ld.errmsg);
	snap_section_end(&ld);
	cr_assert_eq(snap_error(&ld), 0, "%s", ld.errmsg);
	display_get_surface(disp, &s);
	display_get_surface(d2, &t);
	cr_assert_not(t.text_mode);
	cr_assert_eq(t.width, 320);
	cr_assert_eq(t.height, 200);
	cr_assert_eq(memcmp(s.pixels, t.pixels, 320 * 200 * 4), 0);
	cr_assert_eq(d2->vga.dac[3 * 0x20], 0x11);
	cr_assert_eq(memcmp(&disp->vga, &d2->vga, sizeof(disp->vga)), 0);
	cr_assert_eq(vm_gpa_to_hva(vm2, bar(0), 4), d2->vram,
	    "VRAM mapped where the loaded BAR0 says");
	snap_free(&sv);
	fake_vm_free(vm2);
	free(ram2);
}

Test(fb, snapshot_with_a_bad_mode_falls_back_to_text)
{
	struct snap sv, ld;

	set_mode(320, 200);
	snap_init_save(&sv);
	snap_section_begin(&sv, "display", 1);
	disp->vbe[VBE_XRES] = 0;	/* as a forged stream would say */
	cr_assert_eq(display_ops.snapshot(disp, &sv), 0);
	snap_section_end(&sv);
	snap_init_load(&ld, sv.buf, sv.len);
	snap_section_begin(&ld, "display", 1);
	cr_assert_eq(display_ops.snapshot(disp, &ld), 0);
	cr_assert_not(disp->graphics);
	snap_free(&sv);
}

Test(fb, reset_goes_back_to_text)
{
	struct display_surface s;

	set_mode(640, 480);
	devices_reset(vm);
	display_get_surface(disp, &s);
	cr_assert(s.text_mode);
	cr_assert_eq(dispi_rd(VBE_ENABLE), 0);
}

Test(fb, boot_screen_info_describes_the_lfb)
{
	struct display_surface s;
	uint8_t si[0x40];

	memset(si, 0xee, sizeof(si));
	cr_assert_eq(display_boot_screen_info(disp, si), 0);
	cr_assert_eq(si[0x0f], 0x23, "VIDEO_TYPE_VLFB");
	cr_assert_eq(bus_get(si + 0x12, 2), 1024);
	cr_assert_eq(bus_get(si + 0x14, 2), 768);
	cr_assert_eq(bus_get(si + 0x16, 2), 32);
	cr_assert_eq(bus_get(si + 0x18, 4), bar(0));
	cr_assert_eq(bus_get(si + 0x1c, 4) * 65536, FB_VRAM_SIZE);
	cr_assert_eq(bus_get(si + 0x24, 2), 4096);
	cr_assert_eq(si[0x26], 8);
	cr_assert_eq(si[0x27], 16, "red at bit 16");
	cr_assert_eq(si[0x2b], 0, "blue at bit 0");
	display_get_surface(disp, &s);
	cr_assert_not(s.text_mode);
	cr_assert_eq(s.width, 1024);
	cr_assert_eq(dispi_rd(VBE_XRES), 1024, "as if a loader set the mode");
}

Test(fb, screenshot_png)
{
	char path[] = "/tmp/test_fb_XXXXXX";
	uint32_t px[3] = { 0x00123456, 0x00ff0000, 0x000000ff };
	png_image img;
	uint8_t *rgb;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	close(fd);
	unlink(path);
	set_mode(16, 4);
	memcpy(disp->vram + 16 * 4 * 3, px, sizeof(px));	/* line 3 */
	cr_assert_eq(display_screenshot_png(disp, path), 0);
	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	cr_assert(png_image_begin_read_from_file(&img, path), "%s",
	    img.message);
	cr_assert_eq(img.width, 16);
	cr_assert_eq(img.height, 4);
	img.format = PNG_FORMAT_RGB;
	rgb = calloc(1, PNG_IMAGE_SIZE(img));
	cr_assert(png_image_finish_read(&img, NULL, rgb, 0, NULL));
	cr_assert_eq(rgb[(3 * 16) * 3 + 0], 0x12);
	cr_assert_eq(rgb[(3 * 16) * 3 + 1], 0x34);
	cr_assert_eq(rgb[(3 * 16) * 3 + 2], 0x56);
	cr_assert_eq(rgb[(3 * 16 + 1) * 3], 0xff);
	cr_assert_eq(rgb[(3 * 16 + 2) * 3 + 2], 0xff);
	cr_assert_eq(rgb[0], 0, "cleared by the mode switch");
	free(rgb);
	unlink(path);
	cr_assert_eq(display_screenshot_png(disp, "/nonexistent/dir/x.png"),
	    -ENOENT);
}

Test(fb, display_none_creates_nothing)
{
	uint8_t *r2;
	struct vm *v = fake_vm_new(LOW_RAM);

	(void)r2;
	snprintf(fake_cfg.display, sizeof(fake_cfg.display), "none");
	cr_assert_eq(pci_host_ops.create(v), 0);
	cr_assert_eq(display_ops.create(v), 0);
	cr_assert_null(display_find(v));
	fake_vm_free(v);
}
