/*
 * The display: a PCI device compatible with QEMU's "bochs-display"
 * (1234:1111, class 0x0380), whose BAR0 is 16 MiB of video memory and
 * whose BAR2 holds the Bochs VBE "DISPI" registers at 0x500 (QEMU's
 * extended registers at 0x600, the VGA ports at 0x400), plus the VGA
 * text mode of a PC (fb_vga.c).  Linux finds the same memory as a
 * linear framebuffer in boot_params.screen_info (display_boot_screen_info)
 * and its bochs-drm driver switches modes through DISPI.
 *
 * Video memory is allocated once and mapped as guest memory wherever the
 * guest puts BAR0 (vm_map_device_mem), so pixel stores never exit.  The
 * mapping follows the BAR: after configuration writes, resets and loads,
 * and lazily on the first access that reaches the BAR's bus handler
 * (which also serves that access, so it is correct whoever placed the
 * BAR, e.g. devices_create's pci_assign_bars after our create).
 *
 * Text or graphics: the display powers on in VGA text mode, as a PC's
 * does, and shows the 0xB8000 buffer until DISPI enables a mode.  Booting
 * Linux with the framebuffer announced enables 1024x768x32 first, as a
 * boot loader that sets a VBE mode would, so the surface shows the LFB
 * from the first instruction; bochs-drm's mode switches then move it.
 */
#include "devices/display.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "devices/fb.h"
#include "devices/fb_internal.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/snap.h"
#include "util/log.h"

/* PCI identity: QEMU's bochs-display. */
#define FB_PCI_VENDOR		0x1234
#define FB_PCI_DEVICE		0x1111
#define FB_PCI_CLASS		0x038000	/* display, other */
#define FB_PCI_REVISION		2

/* screen_info (Linux include/uapi/linux/screen_info.h), inside boot_params
 * at offset 0. */
#define SI_ORIG_VIDEO_ISVGA	0x0f
#define SI_LFB_WIDTH		0x12
#define SI_LFB_HEIGHT		0x14
#define SI_LFB_DEPTH		0x16
#define SI_LFB_BASE		0x18
#define SI_LFB_SIZE		0x1c
#define SI_LFB_LINELENGTH	0x24
#define SI_RED_SIZE		0x26	/* then pos; green, blue, rsvd */
#define SI_PAGES		0x32
#define SI_CAPABILITIES		0x36
#define SI_EXT_LFB_BASE		0x3a
#define VIDEO_TYPE_VLFB		0x23
#define VIDEO_CAPABILITY_64BIT_BASE	(1u << 1)

static pthread_mutex_t fb_listener_lock = PTHREAD_MUTEX_INITIALIZER;

/* --- video memory mapping --- */

/*
 * Make the guest memory mapping of VRAM match BAR0.  XXX: the software
 * CPU's TLB may keep a translation to the old place until the guest
 * flushes it, as a guest that moves a BAR does anyway.
 */
static void
fb_mem_sync(struct display *d)
{
	const struct pci_bar *b = &d->pci.bar[0];
	bool want = b->is_mapped;
	static bool warned;
	int err;

	if (d->mem_idx < 0 || (want == d->mem_on &&
	    (!want || b->mapped == d->mem_gpa)))
		return;
	err = vm_move_device_mem(d->vm, d->mem_idx, want ? b->mapped : 0,
	    want ? FB_VRAM_SIZE : 0);
	if (err < 0) {
		/* BAR0's handler then serves every access (and retries). */
		if (!warned)
			log_warnx("display: cannot map video memory at %#llx: "
			    "%s", (unsigned long long)b->mapped, strerror(-err));
		warned = true;
		d->mem_on = false;
		return;
	}
	d->mem_on = want;
	d->mem_gpa = want ? b->mapped : 0;
}

static void
fb_cfg_write(struct pci_dev *p, unsigned off, unsigned len)
{
	fb_mem_sync(p->opaque);
}

/* BAR0 through the bus: only until the memory mapping catches up. */
static void
fb_bar0_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct display *d = opaque;

	fb_mem_sync(d);
	if (off >= FB_VRAM_SIZE || len > FB_VRAM_SIZE - off) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (is_write)
		memcpy(d->vram + off, data, len);
	else
		memcpy(data, d->vram + off, len);
}

/* --- modes --- */

void
fb_changed(struct display *d)
{
	d->generation++;
	/* Read by a drawing thread under render_lock only. */
	__atomic_store_n(&d->text_cache_ok, false, __ATOMIC_RELAXED);
	pthread_mutex_lock(&fb_listener_lock);
	if (d->listener != NULL)
		d->listener(d->listener_opaque);
	pthread_mutex_unlock(&fb_listener_lock);
}

static unsigned
fb_bytespp(unsigned bpp)
{
	return bpp == 15 ? 2 : bpp / 8;
}

/*
 * The mode the DISPI registers describe, if it is one we can show: sane
 * sizes, a known depth, and every visible pixel inside VRAM.  Like QEMU,
 * a virtual width below the width is taken as the width.
 */
static bool
fb_mode_from_regs(const uint16_t *r, struct fb_mode *m)
{
	uint64_t bpp = r[VBE_BPP], w = r[VBE_XRES], h = r[VBE_YRES];
	uint64_t vw = r[VBE_VIRT_WIDTH] < w ? w : r[VBE_VIRT_WIDTH];
	uint64_t stride, offset;

	if (bpp != 8 && bpp != 15 && bpp != 16 && bpp != 24 && bpp != 32)
		return false;
	if (w == 0 || h == 0 || w > FB_MAX_DIM || h > FB_MAX_DIM)
		return false;
	stride = vw * fb_bytespp((unsigned)bpp);
	offset = r[VBE_Y_OFFSET] * stride +
	    (uint64_t)r[VBE_X_OFFSET] * fb_bytespp((unsigned)bpp);
	if (offset + (h - 1) * stride + w * fb_bytespp((unsigned)bpp) >
	    FB_VRAM_SIZE)
		return false;
	*m = (struct fb_mode){ .width = (uint32_t)w, .height = (uint32_t)h,
	    .bpp = (uint32_t)bpp, .stride = (uint32_t)stride,
	    .offset = (uint32_t)offset };
	return true;
}

/* Put the registers back to the mode in force (a refused mode). */
static void
fb_regs_from_mode(struct display *d)
{
	const struct fb_mode *m = &d->mode;
	unsigned bytes = fb_bytespp(m->bpp);

	d->vbe[VBE_XRES] = (uint16_t)m->width;
	d->vbe[VBE_YRES] = (uint16_t)m->height;
	d->vbe[VBE_BPP] = (uint16_t)m->bpp;
	d->vbe[VBE_VIRT_WIDTH] = (uint16_t)(m->stride / bytes);
	d->vbe[VBE_Y_OFFSET] = (uint16_t)(m->offset / m->stride);
	d->vbe[VBE_X_OFFSET] = (uint16_t)(m->offset % m->stride / bytes);
}

/*
 * DISPI is enabled: show the mode its registers describe.  An absurd one
 * is refused and the display keeps its last good mode (the registers
 * read it back), or stays in text mode if it never had one.
 */
static void
fb_dispi_apply(struct display *d)
{
	struct fb_mode m;

	if (!fb_mode_from_regs(d->vbe, &m)) {
		log_guest_once("display: refused mode %ux%u, %u bpp, virtual "
		    "width %u, offset %u,%u", d->vbe[VBE_XRES],
		    d->vbe[VBE_YRES], d->vbe[VBE_BPP], d->vbe[VBE_VIRT_WIDTH],
		    d->vbe[VBE_X_OFFSET], d->vbe[VBE_Y_OFFSET]);
		if (d->have_mode) {
			fb_regs_from_mode(d);
			if (!d->graphics) {
				d->graphics = true;
				fb_changed(d);
			}
		} else {
			d->vbe[VBE_ENABLE] &= (uint16_t)~VBE_ENABLED;
		}
		return;
	}
	if (d->graphics && d->have_mode &&
	    memcmp(&m, &d->mode, sizeof(m)) == 0)
		return;
	d->mode = m;
	d->have_mode = true;
	d->graphics = true;
	fb_changed(d);
}

static uint16_t
fb_dispi_read(struct display *d, unsigned i)
{
	bool caps = d->vbe[VBE_ENABLE] & VBE_GETCAPS;

	switch (i) {
	case VBE_XRES:
	case VBE_YRES:
		return caps ? FB_MAX_DIM : d->vbe[i];
	case VBE_BPP:
		return caps ? 32 : d->vbe[i];
	case VBE_VIDEO_MEMORY_64K:
		return FB_VRAM_SIZE >> 16;
	default:
		return i < VBE_NREGS ? d->vbe[i] : 0;
	}
}

/* The whole VRAM over the stride, as QEMU: for page flipping. */
static void
fb_dispi_virt_height(struct display *d)
{
	uint32_t vw = d->vbe[VBE_VIRT_WIDTH] < d->vbe[VBE_XRES] ?
	    d->vbe[VBE_XRES] : d->vbe[VBE_VIRT_WIDTH];
	uint32_t stride = vw * fb_bytespp(d->vbe[VBE_BPP]);
	uint32_t h = stride ? FB_VRAM_SIZE / stride : 0;

	d->vbe[VBE_VIRT_HEIGHT] = (uint16_t)(h > 0xffff ? 0xffff : h);
}

static void
fb_dispi_enable(struct display *d, uint16_t v)
{
	bool was = d->vbe[VBE_ENABLE] & VBE_ENABLED;

	d->vbe[VBE_ENABLE] = v;
	if (!(v & VBE_ENABLED)) {
		if (d->graphics) {
			d->graphics = false;
			fb_changed(d);
		}
		return;
	}
	if (!was) {
		d->vbe[VBE_VIRT_WIDTH] = d->vbe[VBE_XRES];
		d->vbe[VBE_X_OFFSET] = d->vbe[VBE_Y_OFFSET] = 0;
		fb_dispi_virt_height(d);
	}
	fb_dispi_apply(d);
	if (!was && d->graphics && !(v & VBE_NOCLEARMEM))
		memset(d->vram + d->mode.offset, 0,
		    (size_t)d->mode.height * d->mode.stride);
}

static void
fb_dispi_write(struct display *d, unsigned i, uint16_t v)
{
	switch (i) {
	case VBE_ID:
		if (v >= 0xb0c0 && v <= VBE_ID5)
			d->vbe[VBE_ID] = v;
		return;
	case VBE_ENABLE:
		fb_dispi_enable(d, v);
		return;
	case VBE_XRES:
	case VBE_YRES:
	case VBE_BPP:
	case VBE_BANK:
	case VBE_X_OFFSET:
	case VBE_Y_OFFSET:
	case VBE_VIRT_WIDTH:
		d->vbe[i] = v;
		if (i == VBE_VIRT_WIDTH)
			fb_dispi_virt_height(d);
		break;
	case VBE_VIRT_HEIGHT:
		d->vbe[i] = v;	/* informational: VRAM sets the limit */
		return;
	default:
		log_guest_once("display: write %#x to DISPI register %u", v, i);
		return;
	}
	if (d->vbe[VBE_ENABLE] & VBE_ENABLED)
		fb_dispi_apply(d);
}

/* Ports 0x1ce (index) and 0x1cf (data), 16 bits, as Bochs and QEMU. */
static void
fb_vbe_pio(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct display *d = opaque;
	uint16_t v = (uint16_t)bus_get(data, len);

	if (off == 0) {
		if (is_write)
			d->vbe_index = v;
		else
			bus_put(data, len, d->vbe_index);
	} else if (is_write) {
		fb_dispi_write(d, d->vbe_index, v);
	} else {
		bus_put(data, len, fb_dispi_read(d, d->vbe_index));
	}
}

/* BAR2: EDID (none yet), VGA ports, DISPI, QEMU's extended registers. */
static void
fb_mmio_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct display *d = opaque;

	if (off >= FB_MMIO_VGA && off + len <= FB_MMIO_VGA + FB_VGA_NPORTS) {
		for (unsigned i = 0; i < len; i++)
			fb_vga_io(d, FB_VGA_PORT + (unsigned)(off -
			    FB_MMIO_VGA) + i, data + i, 1, is_write);
		return;
	}
	if (off >= FB_MMIO_DISPI && off + len <= FB_MMIO_DISPI +
	    2 * VBE_NREGS && !(off & 1) && len == 2) {
		unsigned i = (unsigned)(off - FB_MMIO_DISPI) / 2;

		if (is_write)
			fb_dispi_write(d, i, (uint16_t)bus_get(data, 2));
		else
			bus_put(data, 2, fb_dispi_read(d, i));
		return;
	}
	if (off == FB_MMIO_QEXT && len == 4 && !is_write) {
		bus_put(data, 4, FB_QEXT_SIZE);
		return;
	}
	if (off == FB_MMIO_QEXT + 4 && len == 4) {
		/* Only little-endian pixels; a big-endian request is
		 * noted and read back as little. */
		if (is_write && bus_get(data, 4) != FB_ENDIAN_LITTLE)
			log_guest_once("display: big-endian framebuffer "
			    "requested; staying little-endian");
		if (!is_write)
			bus_put(data, 4, d->qext_endian);
		return;
	}
	if (!is_write)
		memset(data, 0, len);
	else
		log_guest_once("display: write to BAR2 offset %#llx (%u bytes)",
		    (unsigned long long)off, len);
}

/* --- the surface --- */

struct display *
display_find(struct vm *vm)
{
	return devices_find(vm, &display_ops);
}

void
display_set_listener(struct display *d, void (*fn)(void *opaque),
    void *opaque)
{
	pthread_mutex_lock(&fb_listener_lock);
	d->listener = fn;
	d->listener_opaque = opaque;
	pthread_mutex_unlock(&fb_listener_lock);
}

/* What a surface is made from, copied under the device lock. */
struct fb_view {
	bool graphics;
	struct fb_mode mode;
	uint64_t generation;
	bool dac8;
	struct fb_vga vga;
};

static void
fb_view_take(struct display *d, struct fb_view *v)
{
	v->graphics = d->graphics;
	v->mode = d->mode;
	v->generation = d->generation;
	v->dac8 = d->vbe[VBE_ENABLE] & VBE_8BIT_DAC;
	v->vga = d->vga;
}

/* One line of a mode that is not XRGB8888, converted. */
static void
fb_convert_line(const struct fb_view *v, const uint8_t *src, uint32_t *dst,
    const uint32_t *pal)
{
	for (uint32_t x = 0; x < v->mode.width; x++) {
		uint32_t p;

		switch (v->mode.bpp) {
		case 8:
			dst[x] = pal[src[x]];
			continue;
		case 15:
			p = src[2 * x] | src[2 * x + 1] << 8;
			dst[x] = ((p >> 10 & 31) * 255 / 31) << 16 |
			    ((p >> 5 & 31) * 255 / 31) << 8 | (p & 31) * 255 / 31;
			continue;
		case 16:
			p = src[2 * x] | src[2 * x + 1] << 8;
			dst[x] = ((p >> 11 & 31) * 255 / 31) << 16 |
			    ((p >> 5 & 63) * 255 / 63) << 8 | (p & 31) * 255 / 31;
			continue;
		default:	/* 24: B, G, R */
			dst[x] = (uint32_t)src[3 * x + 2] << 16 |
			    src[3 * x + 1] << 8 | src[3 * x];
		}
	}
}

static void
fb_surface_from(struct display *d, const struct fb_view *v,
    struct display_surface *s)
{
	uint32_t pal[256];

	s->generation = v->generation;
	s->text_mode = !v->graphics;
	if (!v->graphics) {
		pthread_mutex_lock(&d->render_lock);
		fb_vga_render_text(d, &v->vga, s);
		pthread_mutex_unlock(&d->render_lock);
		return;
	}
	s->width = v->mode.width;
	s->height = v->mode.height;
	if (v->mode.bpp == 32) {
		s->stride = v->mode.stride;
		s->pixels = d->vram + v->mode.offset;
		return;
	}
	for (unsigned i = 0; i < 256; i++) {
		const uint8_t *c = &v->vga.dac[3 * i];

		pal[i] = v->dac8 ? (uint32_t)c[0] << 16 | c[1] << 8 | c[2] :
		    fb_vga_dac_rgb(&v->vga, i);
	}
	s->stride = v->mode.width * 4;
	s->pixels = d->render;
	pthread_mutex_lock(&d->render_lock);
	for (uint32_t y = 0; y < v->mode.height; y++)
		fb_convert_line(v, d->vram + v->mode.offset +
		    (size_t)y * v->mode.stride,
		    (uint32_t *)(d->render + (size_t)y * s->stride), pal);
	pthread_mutex_unlock(&d->render_lock);
}

void
display_get_surface(struct display *d, struct display_surface *s)
{
	struct fb_view v;

	pthread_mutex_lock(&d->vm->devlock);
	fb_view_take(d, &v);
	pthread_mutex_unlock(&d->vm->devlock);
	fb_surface_from(d, &v, s);
}

void
display_get_surface_locked(struct display *d, struct display_surface *s)
{
	struct fb_view v;

	fb_view_take(d, &v);
	fb_surface_from(d, &v, s);
}

/* --- boot --- */

int
display_boot_screen_info(struct display *d, uint8_t *si)
{
	static const uint8_t rgb[8] = { 8, 16, 8, 8, 8, 0, 8, 24 };
	const struct fb_mode *m = &d->mode;
	uint64_t base;

	fb_mem_sync(d);
	if (!d->mem_on)
		return -ENODEV;	/* BAR0 has no address */
	fb_dispi_write(d, VBE_ENABLE, 0);
	fb_dispi_write(d, VBE_XRES, FB_DEFAULT_WIDTH);
	fb_dispi_write(d, VBE_YRES, FB_DEFAULT_HEIGHT);
	fb_dispi_write(d, VBE_BPP, FB_DEFAULT_BPP);
	fb_dispi_write(d, VBE_ENABLE, VBE_ENABLED | VBE_LFB_ENABLED);
	if (!d->graphics)
		return -EINVAL;
	base = d->mem_gpa + m->offset;
	memset(si, 0, 0x40);
	si[SI_ORIG_VIDEO_ISVGA] = VIDEO_TYPE_VLFB;
	bus_put(si + SI_LFB_WIDTH, 2, m->width);
	bus_put(si + SI_LFB_HEIGHT, 2, m->height);
	bus_put(si + SI_LFB_DEPTH, 2, m->bpp);
	bus_put(si + SI_LFB_BASE, 4, (uint32_t)base);
	bus_put(si + SI_EXT_LFB_BASE, 4, (uint32_t)(base >> 32));
	if (base >> 32)
		bus_put(si + SI_CAPABILITIES, 4, VIDEO_CAPABILITY_64BIT_BASE);
	/* VESA counts the memory in 64 KiB units. */
	bus_put(si + SI_LFB_SIZE, 4, FB_VRAM_SIZE >> 16);
	bus_put(si + SI_LFB_LINELENGTH, 2, m->stride);
	memcpy(si + SI_RED_SIZE, rgb, sizeof(rgb));
	bus_put(si + SI_PAGES, 2, 1);
	return 0;
}

/* --- the device --- */

static void
fb_power_on(struct display *d)
{
	memset(d->vbe, 0, sizeof(d->vbe));
	d->vbe[VBE_ID] = VBE_ID5;
	d->vbe[VBE_BPP] = 8;
	d->vbe_index = 0;
	d->qext_endian = FB_ENDIAN_LITTLE;
	d->graphics = false;
	d->have_mode = false;
	memset(&d->mode, 0, sizeof(d->mode));
	fb_vga_reset(&d->vga);
}

static void
fb_free(struct display *d)
{
	if (d->vram != NULL)
		munmap(d->vram, FB_VRAM_SIZE);
	if (d->render != NULL)
		munmap(d->render, FB_RENDER_SIZE);
	pthread_mutex_destroy(&d->render_lock);
	free(d);
}

static int
fb_register_ports(struct display *d)
{
	struct vm *vm = d->vm;
	int err;

	if ((err = bus_register(vm->pio, FB_VGA_PORT, FB_VGA_NPORTS,
	    fb_vga_pio, d, "vga")) < 0)
		return err;
	if ((err = bus_register(vm->pio, FB_VBE_PORT, 2, fb_vbe_pio, d,
	    "vbe-dispi")) < 0) {
		bus_unregister(vm->pio, FB_VGA_PORT);
		return err;
	}
	return 0;
}

static void
fb_unregister_ports(struct display *d)
{
	bus_unregister(d->vm->pio, FB_VGA_PORT);
	bus_unregister(d->vm->pio, FB_VBE_PORT);
}

static void
fb_pci_init(struct display *d)
{
	struct pci_dev *p = &d->pci;

	pci_dev_init(p, "display", FB_PCI_VENDOR, FB_PCI_DEVICE, FB_PCI_CLASS,
	    FB_PCI_REVISION);
	pci_dev_set_subsystem(p, 0x1af4, 0x1100);
	pci_dev_set_irq_pin(p, 0);
	pci_dev_set_bar(p, 0, FB_VRAM_SIZE, PCI_BAR_MEM32 | PCI_BAR_PREFETCH,
	    fb_bar0_io, d);
	pci_dev_set_bar(p, 2, FB_MMIO_SIZE, PCI_BAR_MEM32, fb_mmio_io, d);
	p->cfg_write = fb_cfg_write;
	p->opaque = d;
}

static struct display *
fb_new(struct vm *vm)
{
	struct display *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->vm = vm;
	d->mem_idx = -1;
	pthread_mutex_init(&d->render_lock, NULL);
	d->vram = mmap(NULL, FB_VRAM_SIZE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	d->render = mmap(NULL, FB_RENDER_SIZE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (d->vram == MAP_FAILED || d->render == MAP_FAILED) {
		if (d->vram == MAP_FAILED)
			d->vram = NULL;
		if (d->render == MAP_FAILED)
			d->render = NULL;
		fb_free(d);
		return NULL;
	}
	fb_font_load(&d->font);
	fb_power_on(d);
	fb_pci_init(d);
	return d;
}

static int
fb_create(struct vm *vm)
{
	struct display *d;
	int err;

	if (vm->cfg != NULL && strcmp(vm->cfg->display, "none") == 0)
		return 0;
	if ((d = fb_new(vm)) == NULL)
		return -ENOMEM;
	if ((err = fb_register_ports(d)) < 0)
		goto fail;
	if ((err = vm_map_device_mem(vm, 0, 0, d->vram, "vram")) < 0)
		goto fail_ports;
	d->mem_idx = err;
	if ((err = pci_register_device(vm, &d->pci, -1)) < 0)
		goto fail_mem;
	if ((err = vm_device_register(vm, &display_ops, d, "display")) < 0)
		goto fail_pci;
	/* Placed now if nothing else does (devices_create may again). */
	pci_assign_bars(vm);
	fb_mem_sync(d);
	return 0;
fail_pci:
	pci_unregister_device(&d->pci);
fail_mem:
	/* The region stays recorded, empty: regions are never removed. */
	vm_move_device_mem(vm, d->mem_idx, 0, 0);
fail_ports:
	fb_unregister_ports(d);
fail:
	fb_free(d);
	return err;
}

static void
fb_fini(void *state)
{
	struct display *d = state;

	pci_unregister_device(&d->pci);
	fb_mem_sync(d);
	fb_unregister_ports(d);
	fb_free(d);
}

/* The host bridge's reset already put BAR0 back to 0 (unmapped). */
static void
fb_reset(void *state)
{
	struct display *d = state;
	bool was = d->graphics;

	fb_power_on(d);
	fb_mem_sync(d);
	if (was)
		fb_changed(d);
	else
		__atomic_store_n(&d->text_cache_ok, false, __ATOMIC_RELAXED);
}

/*
 * Which VRAM pages were ever written: neither in memory nor in swap
 * means never (/proc/self/pagemap's bits 63 and 62).  Reading such a page
 * faults in the zero page: all 4096 of them took 100-170 ms on a busy
 * host, while a snapshot or a migration holds the guest stopped.  NULL
 * when the kernel does not say (then every page is read).
 */
static uint64_t *
fb_vram_pagemap(const struct display *d)
{
	size_t len = FB_VRAM_SIZE / 4096 * sizeof(uint64_t);
	uint64_t *map = malloc(len);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (map != NULL && fd >= 0 && pread(fd, map, len,
	    (off_t)((uintptr_t)d->vram / 4096 * sizeof(uint64_t))) ==
	    (ssize_t)len) {
		close(fd);
		return map;
	}
	if (fd >= 0)
		close(fd);
	free(map);
	return NULL;
}

/* The used part of VRAM: up to its last page with a non-zero byte. */
static uint32_t
fb_vram_used(const struct display *d)
{
	uint64_t *map = fb_vram_pagemap(d);
	uint32_t used = 0;

	for (uint32_t end = FB_VRAM_SIZE; end > 0 && used == 0; end -= 4096) {
		if (map != NULL && !(map[end / 4096 - 1] & (3ull << 62)))
			continue;
		for (uint32_t k = end - 4096; k < end; k += 8)
			if (*(const uint64_t *)(d->vram + k) != 0) {
				used = end;
				break;
			}
	}
	free(map);
	return used;
}

/*
 * Zero VRAM from byte used on.  Whole pages are given back rather than
 * written: 16 MiB of zeros are 4096 page faults, which a migration
 * would pay while the guest is stopped.
 */
static void
fb_vram_zero_from(struct display *d, uint32_t used)
{
	uint32_t page = (used + 4095u) & ~4095u;

	memset(d->vram + used, 0, page - used);
	if (page < FB_VRAM_SIZE && madvise(d->vram + page, FB_VRAM_SIZE - page,
	    MADV_DONTNEED) < 0)
		memset(d->vram + page, 0, FB_VRAM_SIZE - page);
}

static int
fb_snapshot(void *state, struct snap *s)
{
	struct display *d = state;
	uint32_t used = snap_saving(s) ? fb_vram_used(d) : 0;
	struct fb_mode m;

	snap_bytes(s, "vbe", d->vbe, sizeof(d->vbe));
	snap_u16(s, "vbe_index", &d->vbe_index);
	snap_u32(s, "qext_endian", &d->qext_endian);
	snap_bool(s, "graphics", &d->graphics);
	fb_vga_snapshot(&d->vga, s);
	snap_u32(s, "vram_used", &used);
	if (snap_error(s) == 0 && used > FB_VRAM_SIZE)
		snap_fail(s, -EINVAL, "display: %u bytes of video memory "
		    "(at most %u)", used, FB_VRAM_SIZE);
	if (snap_error(s) == 0)
		snap_bytes(s, "vram", d->vram, used);
	pci_dev_snapshot(&d->pci, s);
	if (snap_saving(s) || snap_error(s))
		return snap_error(s);
	fb_vram_zero_from(d, used);
	/* The mode in force is the registers': check them as a guest's. */
	d->vbe[VBE_ID] = VBE_ID5;
	d->have_mode = fb_mode_from_regs(d->vbe, &m);
	if (d->have_mode)
		d->mode = m;
	d->graphics = d->graphics && d->have_mode;
	fb_mem_sync(d);
	fb_changed(d);
	return 0;
}

const struct device_ops display_ops = {
	.name = "display",
	.create = fb_create,
	.fini = fb_fini,
	.snapshot = fb_snapshot,
	.snapshot_version = 1,
	.reset = fb_reset,
};
