/*
 * The VNC server in a VM with the real display and keyboard (null
 * accelerator, no guest code), spoken to over its Unix socket by a small
 * RFB client written here from the protocol (RFC 6143): the handshake,
 * Raw frames, desktop resize on a mode switch, only changed tiles for a
 * change, nothing for a still screen, keys reaching the i8042, and
 * several clients at once.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "null_accel.h"
#include "devices/bus.h"
#include "devices/display.h"
#include "vnc/vnc.h"

#define ENC_RAW		0
#define ENC_NEWFBSIZE	(-223)
#define VBE_INDEX	0x1ce
#define VBE_DATA	0x1cf

static struct vm *vm;
static struct vm_config cfg;
static struct vnc *srv;
static char dir[] = "/tmp/tv-vnc-test-XXXXXX";
static char sock[64];

struct client {
	int fd;
	int w, h;
	uint8_t *fb;		/* w * h * 4, the server's format */
	int nrects;		/* of the last update */
	int rx[64], ry[64], rw[64], rh[64], renc[64];
};

/* --- transport --- */

static void
rd(struct client *c, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		ssize_t k;

		cr_assert_eq(poll(&pfd, 1, 10000), 1, "server silent");
		k = read(c->fd, p, n);
		cr_assert_gt(k, 0, "server closed");
		p += k;
		n -= (size_t)k;
	}
}

static void
wr(struct client *c, const void *buf, size_t n)
{
	cr_assert_eq(write(c->fd, buf, n), (ssize_t)n);
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | p[2] << 8 | p[3];
}

static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Does the server send anything within ms? */
static bool
readable(struct client *c, int ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1;
}

/* --- the protocol --- */

static void
client_connect(struct client *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t b[32], n;
	char name[256];
	uint32_t len;
	/* SetEncodings: Raw, then the desktop-size pseudo-encoding. */
	static const uint8_t enc[] = { 2, 0, 0, 2, 0, 0, 0, 0,
	    0xff, 0xff, 0xff, 0x21 };

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	cr_assert_eq(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0,
	    "connect %s: %s", sock, strerror(errno));
	rd(c, b, 12);
	cr_assert(memcmp(b, "RFB 003.00", 10) == 0);
	wr(c, "RFB 003.008\n", 12);
	rd(c, &n, 1);
	cr_assert_gt(n, 0);
	rd(c, b, n);
	cr_assert(memchr(b, 1, n) != NULL, "security type None offered");
	wr(c, "\x01", 1);
	rd(c, b, 4);
	cr_assert_eq(be32(b), 0, "security result");
	wr(c, "\x01", 1);	/* shared */
	rd(c, b, 24);
	c->w = be16(b);
	c->h = be16(b + 2);
	/* Pixel format: 32 bpp, depth 24, little endian, true colour,
	 * red at bit 16, green 8, blue 0: the display's XRGB8888. */
	cr_assert_eq(b[4], 32);
	cr_assert_eq(b[6], 0);
	cr_assert_eq(b[7], 1);
	cr_assert_eq(b[14], 16);
	cr_assert_eq(b[15], 8);
	cr_assert_eq(b[16], 0);
	len = be32(b + 20);
	cr_assert_lt(len, sizeof(name));
	rd(c, name, len);
	c->fb = calloc((size_t)c->w * c->h, 4);
	wr(c, enc, sizeof(enc));
}

static void
client_close(struct client *c)
{
	close(c->fd);
	free(c->fb);
}

static void
request(struct client *c, bool incremental)
{
	uint8_t m[10] = { 3, incremental };

	m[6] = (uint8_t)(c->w >> 8);
	m[7] = (uint8_t)c->w;
	m[8] = (uint8_t)(c->h >> 8);
	m[9] = (uint8_t)c->h;
	wr(c, m, sizeof(m));
}

/* Take one FramebufferUpdate: Raw rects into c->fb, resizes applied. */
static void
update(struct client *c)
{
	uint8_t h[4], r[12];

	rd(c, h, 4);
	cr_assert_eq(h[0], 0, "message type %u, not an update", h[0]);
	c->nrects = be16(h + 2);
	cr_assert_leq(c->nrects, 64);
	for (int i = 0; i < c->nrects; i++) {
		int x, y, w, hh, e;

		rd(c, r, 12);
		x = be16(r);
		y = be16(r + 2);
		w = be16(r + 4);
		hh = be16(r + 6);
		e = (int32_t)be32(r + 8);
		c->rx[i] = x, c->ry[i] = y, c->rw[i] = w, c->rh[i] = hh;
		c->renc[i] = e;
		if (e == ENC_NEWFBSIZE) {
			c->w = w;
			c->h = hh;
			free(c->fb);
			c->fb = calloc((size_t)w * hh, 4);
			continue;
		}
		cr_assert_eq(e, ENC_RAW, "encoding %d", e);
		cr_assert_leq(x + w, c->w);
		cr_assert_leq(y + hh, c->h);
		for (int l = 0; l < hh; l++)
			rd(c, c->fb + ((size_t)(y + l) * c->w + x) * 4,
			    (size_t)w * 4);
	}
}

/* Ask for updates until none comes (the last request stays pending);
 * false if they never stop. */
static bool
settle(struct client *c)
{
	for (int i = 0; i < 20; i++) {
		request(c, true);
		if (!readable(c, 400))
			return true;
		update(c);
	}
	return false;
}

/* Is the client's picture the display's? */
static bool
same_as_display(struct client *c)
{
	struct display_surface s;

	display_get_surface(display_find(vm), &s);
	if (s.width != (uint32_t)c->w || s.height != (uint32_t)c->h)
		return false;
	for (uint32_t y = 0; y < s.height; y++)
		if (memcmp(c->fb + (size_t)y * c->w * 4,
		    s.pixels + (size_t)y * s.stride, (size_t)c->w * 4) != 0)
			return false;
	return true;
}

/* --- the VM --- */

static void
dispi(unsigned reg, uint16_t v)
{
	uint8_t d[2];

	pthread_mutex_lock(&vm->devlock);
	bus_put(d, 2, reg);
	bus_access(vm->pio, NULL, VBE_INDEX, d, 2, true);
	bus_put(d, 2, v);
	bus_access(vm->pio, NULL, VBE_DATA, d, 2, true);
	pthread_mutex_unlock(&vm->devlock);
}

/* A guest mode switch through the Bochs DISPI registers. */
static void
set_mode(uint16_t w, uint16_t h)
{
	dispi(4, 0);		/* ENABLE off */
	dispi(1, w);
	dispi(2, h);
	dispi(3, 32);
	dispi(4, 0x41);		/* enabled, linear framebuffer */
}

static uint8_t
kbd_read(bool *got)
{
	uint8_t d[1];

	pthread_mutex_lock(&vm->devlock);
	bus_access(vm->pio, NULL, 0x64, d, 1, false);
	*got = d[0] & 1;
	if (*got)
		bus_access(vm->pio, NULL, 0x60, d, 1, false);
	pthread_mutex_unlock(&vm->devlock);
	return d[0];
}

static void
setup(void)
{
	int err;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/vnc.sock", dir);
	vm_config_defaults(&cfg);
	cfg.memory = 64u << 20;
	snprintf(cfg.vnc, sizeof(cfg.vnc), "unix:%s", sock);
	vm = vm_create(&cfg, &null_accel_ops, &err);
	cr_assert_not_null(vm, "vm_create: %d", err);
	cr_assert_not_null(display_find(vm), "the VM has a display");
	srv = vnc_start(vm, &err);
	cr_assert_not_null(srv, "vnc_start: %d", err);
	cr_assert_str_eq(vnc_address(srv), cfg.vnc);
}

static void
teardown(void)
{
	vnc_stop(srv);
	vm_destroy(vm);
	cr_assert_neq(access(sock, F_OK), 0, "the socket is removed");
	rmdir(dir);
	strcpy(dir, "/tmp/tv-vnc-test-XXXXXX");
}

TestSuite(vnc_server, .init = setup, .fini = teardown, .timeout = 30);

Test(vnc_server, first_frame_is_the_screen)
{
	struct client c;

	client_connect(&c);
	request(&c, false);
	update(&c);
	cr_assert(same_as_display(&c), "the first frame is the display's "
	    "picture (%dx%d)", c.w, c.h);
	client_close(&c);
}

Test(vnc_server, mode_switch_resizes_then_only_changes_are_sent)
{
	struct display_surface s;
	struct client c;
	uint32_t px = 0x00123456, got;

	client_connect(&c);
	request(&c, false);
	update(&c);
	set_mode(640, 480);
	/* The resize, and the new screen with it; then, the screen still,
	 * no update at all, however long we ask. */
	cr_assert(settle(&c), "updates go on for a still screen");
	cr_assert_eq(c.w, 640);
	cr_assert_eq(c.h, 480);
	cr_assert(same_as_display(&c));
	/* The guest stores one pixel: one tile comes. */
	display_get_surface(display_find(vm), &s);
	memcpy((uint8_t *)s.pixels + 200 * s.stride + 300 * 4, &px, 4);
	update(&c);
	cr_assert_eq(c.nrects, 1);
	cr_assert_eq(c.rx[0], 256);
	cr_assert_eq(c.ry[0], 192);
	cr_assert_eq(c.rw[0], 64);
	cr_assert_eq(c.rh[0], 16);
	memcpy(&got, c.fb + (200 * 640 + 300) * 4, 4);
	cr_assert_eq(got & 0xffffff, px);
	client_close(&c);
}

Test(vnc_server, absurd_mode_keeps_the_last_good_one)
{
	struct client c;

	set_mode(800, 600);
	client_connect(&c);
	cr_assert_eq(c.w, 800, "ServerInit has the current mode");
	request(&c, false);
	update(&c);
	/* Written while the mode is on, as bochs-drm's pan and resize do. */
	dispi(1, 0);
	dispi(1, 20000);
	dispi(2, 20000);
	request(&c, true);
	cr_assert_not(readable(&c, 400), "no resize to an absurd mode");
	cr_assert_eq(c.w, 800);
	client_close(&c);
}

Test(vnc_server, keys_reach_the_keyboard)
{
	/* KeyEvent: 'A' (needs shift) down and up, then Up. */
	static const uint8_t keys[] = {
		4, 1, 0, 0, 0, 0, 0, 'A', 4, 0, 0, 0, 0, 0, 0, 'A',
		4, 1, 0, 0, 0, 0, 0xff, 0x52,
	};
	static const uint8_t want[] = { 0x2a, 0x1e, 0xaa, 0x9e, 0xe0, 0x48 };
	struct client c;
	uint8_t got[sizeof(want)];
	size_t n = 0;

	client_connect(&c);
	wr(&c, keys, sizeof(keys));
	for (int i = 0; i < 2000 && n < sizeof(want); i++) {
		bool any;
		uint8_t b = kbd_read(&any);

		if (any)
			got[n++] = b;
		else
			usleep(1000);
	}
	cr_assert_eq(n, sizeof(want), "%zu scancodes", n);
	cr_assert(memcmp(got, want, n) == 0);
	client_close(&c);
}

Test(vnc_server, clients_at_once_and_one_that_leaves_rudely)
{
	struct client a, b, rude;

	client_connect(&a);
	client_connect(&b);
	client_connect(&rude);
	/* Half a message, then gone. */
	wr(&rude, "\x03\x00\x00", 3);
	client_close(&rude);
	/* One at a time: a frame of the text screen is bigger than a
	 * socket buffer, and the server writes to one client at a time. */
	request(&a, false);
	update(&a);
	request(&b, false);
	update(&b);
	cr_assert(same_as_display(&a));
	cr_assert(same_as_display(&b));
	/* Garbage: that client is dropped, the other one goes on. */
	wr(&a, "\xee\xee\xee\xee", 4);
	request(&b, false);
	update(&b);
	cr_assert(same_as_display(&b));
	/* (What was on its way to it may still come first.) */
	for (;;) {
		char x[4096];
		struct pollfd pfd = { .fd = a.fd, .events = POLLIN };

		cr_assert_eq(poll(&pfd, 1, 10000), 1, "the garbage client "
		    "is not disconnected");
		if (read(a.fd, x, sizeof(x)) <= 0)
			break;
	}
	client_close(&a);
	client_close(&b);
}

Test(vnc_server, a_reboot_keeps_the_clients)
{
	struct client c;
	struct vnc *again;
	int err;

	set_mode(800, 600);
	client_connect(&c);
	cr_assert(settle(&c));
	cr_assert_eq(c.w, 800);
	/* The guest reboots: run.c parks the server, makes a new VM. */
	vnc_park(srv);
	vm_destroy(vm);
	vm = vm_create(&cfg, &null_accel_ops, &err);
	cr_assert_not_null(vm);
	again = vnc_start(vm, &err);
	cr_assert_eq(again, srv, "the parked server carries on");
	/* The same client sees the new machine's screen (text mode) ... */
	request(&c, true);
	for (int i = 0; i < 10 && (c.w == 800 || !same_as_display(&c)); i++) {
		update(&c);
		request(&c, true);
	}
	cr_assert_neq(c.w, 800);
	cr_assert(same_as_display(&c));
	/* ... and types into its keyboard (reading what the server sends
	 * meanwhile: the text cursor blinks, and a server blocked writing to
	 * its only client reads nothing from it). */
	wr(&c, (uint8_t[]){ 4, 1, 0, 0, 0, 0, 0, 'a' }, 8);
	for (int i = 0; i < 2000; i++) {
		bool any;
		uint8_t b = kbd_read(&any);

		if (any) {
			cr_assert_eq(b, 0x1e);
			client_close(&c);
			return;
		}
		if (readable(&c, 1))
			update(&c);
	}
	cr_assert_fail("the key did not reach the new VM's keyboard");
}
