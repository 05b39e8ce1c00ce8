/*
 * The VM's VNC server: libvncserver glue.  See vnc.h.
 *
 * Threading: the server has one thread of its own, which runs
 * libvncserver's non-threaded loop (rfbProcessEvents: accept, read client
 * messages, encode and send updates) and the refresh between its calls.
 * libvncserver's one-thread-per-client mode is not used: its resize
 * (rfbNewFramebuffer) races with the client threads' encoders.  Nothing
 * here runs on the VM's event thread, so a slow client can never delay
 * the guest's timers or console; and no libvncserver code runs with the
 * device lock held.  The input hooks (vnc_input.c) take the lock around
 * each device call, as a vCPU would.  The surface's pixels are read
 * without the lock (display.h allows that; tearing is allowed).
 *
 * Refresh: only while a client is connected, every VNC_FAST_NS while the
 * screen is changing and every VNC_IDLE_NS once it has been still (but
 * for a blinking cursor) for a second, the surface is compared with the shadow copy by tiles
 * (vnc_tiles.c); changed tiles are copied and marked modified, so a
 * client is sent exactly those (in the best encoding it offered: Tight,
 * ZRLE, ...).  A still screen costs one memcmp pass per refresh and no
 * bytes on the wire; with no client, nothing at all.  A new surface
 * generation (mode switch, text <-> graphics) resizes the shadow and
 * sends clients a desktop resize.
 *
 * A client that stops reading, or sends half a message and waits, holds
 * the thread for at most VNC_CLIENT_WAIT_MS before it is dropped; one
 * that sends garbage is dropped by libvncserver's parser at once.
 */
#include "vnc/vnc.h"
#include "vnc/vnc_int.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/display.h"
#include "devices/i8042.h"
#include "devices/virtio_input.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "util/log.h"

#define VNC_FAST_NS		33000000ull	/* ~30 refreshes a second */
#define VNC_IDLE_NS		100000000ull	/* 10 a second when still */
#define VNC_IDLE_AFTER_NS	1000000000ull
#define VNC_BLINK_TILES		4
#define VNC_POLL_NS		100000000ull	/* stop-flag latency */
#define VNC_CLIENT_WAIT_MS	5000
#define VNC_DEFAULT_W		640
#define VNC_DEFAULT_H		480

static uint64_t
vnc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* libvncserver's chatter (connections, encodings) is debug output. */
static void __attribute__((format(printf, 1, 2)))
vnc_rfb_log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (log_verbosity() < LOG_LVL_DEBUG)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("vnc: %s", buf);
}

/* The surface's XRGB8888 (bytes B, G, R, X) as an RFB pixel format. */
static void
vnc_set_format(rfbScreenInfoPtr s)
{
	s->serverFormat.bitsPerPixel = 32;
	s->serverFormat.depth = 24;
	s->serverFormat.bigEndian = 0;
	s->serverFormat.trueColour = 1;
	s->serverFormat.redMax = s->serverFormat.greenMax =
	    s->serverFormat.blueMax = 255;
	s->serverFormat.redShift = 16;
	s->serverFormat.greenShift = 8;
	s->serverFormat.blueShift = 0;
}

static void
vnc_mark(void *opaque, int x, int y, int w, int h)
{
	rfbMarkRectAsModified(opaque, x, y, x + w, y + h);
}

/* A new shadow of w x h; clients get a desktop resize. */
static int
vnc_resize(struct vnc *v, uint32_t w, uint32_t h)
{
	rfbClientIteratorPtr it;
	rfbClientPtr cl;
	int err;

	if ((err = vnc_shadow_resize(&v->shadow, w, h)) < 0)
		return err;
	rfbNewFramebuffer(v->screen, (char *)v->shadow.pixels, (int)w, (int)h,
	    8, 3, 4);
	/* rfbNewFramebuffer set its default channel order: ours again, and
	 * the clients' translation for it. */
	vnc_set_format(v->screen);
	it = rfbGetClientIterator(v->screen);
	while ((cl = rfbClientIteratorNext(it)) != NULL)
		v->screen->setTranslateFunction(cl);
	rfbReleaseClientIterator(it);
	return 0;
}

/* Is s a surface we can show?  A mode the display refused never gets
 * here; this guards the shadow against whatever else. */
static bool
vnc_surface_ok(const struct display_surface *s)
{
	return s->pixels != NULL && s->width > 0 && s->height > 0 &&
	    s->width <= 8192 && s->height <= 8192 &&
	    s->stride >= s->width * 4;
}

/* Bring the shadow (and so the clients) up to date with the surface. */
static void
vnc_refresh(struct vnc *v, uint64_t now)
{
	struct display_surface s;

	if (v->display == NULL)
		return;
	display_get_surface(v->display, &s);
	if (!vnc_surface_ok(&s))
		return;
	if (s.generation != v->generation || s.width != v->shadow.width ||
	    s.height != v->shadow.height) {
		if (vnc_resize(v, s.width, s.height) < 0)
			return;
		v->generation = s.generation;
		log_debug("vnc: display %ux%u%s", s.width, s.height,
		    s.text_mode ? " (text)" : "");
	}
	/* A blinking cursor (a tile or four) is no activity worth the
	 * faster refresh. */
	if (vnc_shadow_scan(&v->shadow, s.pixels, s.stride, vnc_mark,
	    v->screen) > VNC_BLINK_TILES)
		v->last_change_ns = now;
}

/* A client connected: let its first frame (and the size in its
 * ServerInit) be the screen as it is now, not as it was when the last
 * client left. */
static enum rfbNewClientAction
vnc_new_client(rfbClientPtr cl)
{
	struct vnc *v = cl->screen->screenData;

	vnc_refresh(v, vnc_now());
	return RFB_CLIENT_ACCEPT;
}

/* The display's mode changed (its thread, device lock held): refresh at
 * once rather than at the next tick. */
static void
vnc_on_mode(void *opaque)
{
	struct vnc *v = opaque;

	atomic_store(&v->mode_changed, true);
}

/* Serve vm's devices from now on (NULL: none, while parked).  Server
 * thread. */
static void
vnc_bind(struct vnc *v, struct vm *vm)
{
	if (v->display != NULL)
		display_set_listener(v->display, NULL, NULL);
	v->vm = vm;
	v->display = vm != NULL ? display_find(vm) : NULL;
	v->kbd = vm != NULL ? i8042_find(vm) : NULL;
	v->tablet = vm != NULL ? virtio_input_find(vm) : NULL;
	/* A new machine: its keyboard has no key down, its screen is new. */
	memset(&v->keys, 0, sizeof(v->keys));
	v->ptr_buttons = 0;
	v->generation = UINT64_MAX;
	if (v->display != NULL)
		display_set_listener(v->display, vnc_on_mode, v);
}

/* Take a VM handed over by vnc_park or vnc_start, if any. */
static void
vnc_take_hand(struct vnc *v)
{
	pthread_mutex_lock(&v->hand_lock);
	if (v->hand_pending) {
		vnc_bind(v, v->hand_vm);
		v->hand_pending = false;
		pthread_cond_broadcast(&v->hand_done);
	}
	pthread_mutex_unlock(&v->hand_lock);
}

/* Have the server thread serve vm (or nothing); returns once it does. */
static void
vnc_hand(struct vnc *v, struct vm *vm)
{
	pthread_mutex_lock(&v->hand_lock);
	v->hand_vm = vm;
	v->hand_pending = true;
	while (v->hand_pending)
		pthread_cond_wait(&v->hand_done, &v->hand_lock);
	pthread_mutex_unlock(&v->hand_lock);
}

static void *
vnc_thread(void *arg)
{
	struct vnc *v = arg;
	uint64_t next = 0;

	while (!atomic_load(&v->stop)) {
		uint64_t now = vnc_now(), wait = VNC_POLL_NS;

		vnc_take_hand(v);

		if (v->screen->clientHead != NULL) {
			if (now >= next || atomic_exchange(&v->mode_changed,
			    false)) {
				vnc_refresh(v, now);
				next = now + (now - v->last_change_ns <
				    VNC_IDLE_AFTER_NS ? VNC_FAST_NS :
				    VNC_IDLE_NS);
			}
			wait = next > now ? next - now : 0;
			if (wait > VNC_POLL_NS)
				wait = VNC_POLL_NS;
		}
		/* Waits for client input up to wait, then sends what the
		 * clients asked for and we marked. */
		rfbProcessEvents(v->screen, (long)(wait / 1000));
	}
	return NULL;
}

/*
 * Signals are the event thread's (vm_run takes SIGINT/SIGTERM/SIGHUP
 * through a signalfd): the server thread blocks them all, or the kernel
 * could deliver one here, where it would kill the process outright.
 */
static int
vnc_thread_start(struct vnc *v)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&v->thread, NULL, vnc_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0)	/* for top -H and scripts/bench-vnc.sh */
		pthread_setname_np(v->thread, "tv-vnc");
	return -r;
}

/* The starting size: the display's current mode, or a black 640x480. */
static void
vnc_initial_size(struct vnc *v, uint32_t *w, uint32_t *h)
{
	struct display_surface s;

	*w = VNC_DEFAULT_W;
	*h = VNC_DEFAULT_H;
	if (v->display == NULL)
		return;
	display_get_surface(v->display, &s);
	if (vnc_surface_ok(&s)) {
		*w = s.width;
		*h = s.height;
	}
}

static int
vnc_screen_new(struct vnc *v)
{
	char prog[] = "termvisor", *argv[] = { prog, NULL };
	rfbScreenInfoPtr s;
	uint32_t w, h;
	int argc = 1, err;

	vnc_initial_size(v, &w, &h);
	if ((err = vnc_shadow_resize(&v->shadow, w, h)) < 0)
		return err;
	if ((s = rfbGetScreen(&argc, argv, (int)w, (int)h, 8, 3, 4)) == NULL)
		return -ENOMEM;
	v->screen = s;
	s->screenData = v;
	s->frameBuffer = (char *)v->shadow.pixels;
	vnc_set_format(s);
	s->desktopName = v->name;
	/* We own the listening socket (TCP or Unix, vnc_listen.c). */
	s->autoPort = FALSE;
	s->port = 0;
	s->ipv6port = 0;
	s->alwaysShared = TRUE;		/* several clients at once */
	s->deferUpdateTime = 0;		/* the refresh tick batches already */
	s->cursor = NULL;		/* the guest draws its own pointer */
	s->kbdAddEvent = vnc_input_key;
	s->ptrAddEvent = vnc_input_pointer;
	s->newClientHook = vnc_new_client;
	if (v->password[0] != '\0') {
		v->passwords[0] = v->password;
		v->passwords[1] = NULL;
		s->authPasswdData = v->passwords;
		s->passwordCheck = rfbCheckPasswordByList;
	}
	rfbInitServer(s);
	s->listenSock = v->listen_fd;
	FD_SET(v->listen_fd, &s->allFds);
	if (v->listen_fd > s->maxFd)
		s->maxFd = v->listen_fd;
	return 0;
}

static void
vnc_free(struct vnc *v)
{
	if (v->screen != NULL) {
		/* Closes the clients and our listening socket. */
		rfbShutdownServer(v->screen, TRUE);
		rfbScreenCleanup(v->screen);
		v->listen_fd = -1;
	}
	if (v->listen_fd >= 0)
		close(v->listen_fd);
	if (v->unix_bound)
		unlink(v->listen.path);
	vnc_shadow_free(&v->shadow);
	explicit_bzero(v->password, sizeof(v->password));
	pthread_cond_destroy(&v->hand_done);
	pthread_mutex_destroy(&v->hand_lock);
	free(v);
}

/* Where the password comes from and whether it is enough, for the log. */
static int
vnc_setup_password(struct vnc *v)
{
	char err[512];

	if (vnc_read_password(v->vm->cfg->vnc_password_file, v->password,
	    sizeof(v->password), err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return -EINVAL;
	}
	if (strlen(v->password) > 8)
		log_warnx("VNC authentication uses only the first 8 "
		    "characters of the password");
	if (v->password[0] == '\0' && v->listen.kind == VNC_TCP &&
	    strcmp(v->listen.host, "127.0.0.1") != 0 &&
	    strcmp(v->listen.host, "::1") != 0 &&
	    strcmp(v->listen.host, "localhost") != 0)
		log_warnx("VNC on %s without a password: anyone who reaches "
		    "the port sees and types into the guest (set "
		    "vnc.passwordFile or $%s)", v->listen.host,
		    VNC_PASSWORD_ENV);
	return 0;
}

/* The server parked by vnc_park for the next boot, if any. */
static struct vnc *vnc_parked;

/* Can the parked server serve cfg as it is? */
static bool
vnc_parked_fits(const struct vnc *v, const struct vm_config *cfg)
{
	return strcmp(v->spec, cfg->vnc) == 0 &&
	    strcmp(v->password_file, cfg->vnc_password_file) == 0 &&
	    strcmp(v->name, cfg->name[0] ? cfg->name : "termvisor") == 0;
}

struct vnc *
vnc_start(struct vm *vm, int *err)
{
	struct vnc *v = vnc_parked;
	char msg[512];
	int r;

	*err = 0;
	vnc_parked = NULL;
	if (v != NULL && vnc_parked_fits(v, vm->cfg)) {
		vnc_hand(v, vm);
		return v;
	}
	vnc_stop(v);
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	v->vm = vm;
	v->listen_fd = -1;
	pthread_mutex_init(&v->hand_lock, NULL);
	pthread_cond_init(&v->hand_done, NULL);
	snprintf(v->spec, sizeof(v->spec), "%s", vm->cfg->vnc);
	snprintf(v->password_file, sizeof(v->password_file), "%s",
	    vm->cfg->vnc_password_file);
	snprintf(v->name, sizeof(v->name), "%s",
	    vm->cfg->name[0] ? vm->cfg->name : "termvisor");
	if (vnc_parse_listen(vm->cfg->vnc, &v->listen, msg, sizeof(msg)) < 0) {
		log_warnx("%s", msg);
		r = -EINVAL;
		goto fail;
	}
	if (v->listen.kind == VNC_NONE || !vnc_wanted(vm->cfg)) {
		vnc_free(v);
		return NULL;
	}
	if ((r = vnc_setup_password(v)) < 0)
		goto fail;
	if ((r = vnc_listen_open(&v->listen, v->addr, sizeof(v->addr))) < 0) {
		if (v->listen.kind == VNC_AUTO)
			goto no_auto;
		log_warnx("VNC: cannot listen on %s: %s", v->addr,
		    strerror(-r));
		goto fail;
	}
	v->listen_fd = r;
	v->unix_bound = v->listen.kind == VNC_UNIX;
	rfbLog = vnc_rfb_log;
	rfbErr = vnc_rfb_log;
	rfbMaxClientWait = VNC_CLIENT_WAIT_MS;
	v->display = display_find(vm);
	if ((r = vnc_screen_new(v)) < 0)
		goto fail;
	/* The devices are the server thread's from here on. */
	v->display = NULL;
	v->hand_vm = vm;
	v->hand_pending = true;
	if ((r = vnc_thread_start(v)) < 0)
		goto fail;
	v->thread_live = true;
	/* With auto (the default), the user cannot know the port unless
	 * told. */
	if (v->listen.kind == VNC_AUTO)
		log_warnx("VNC server on %s%s", v->addr,
		    v->password[0] ? " (password)" : "");
	else
		log_info("VNC server on %s%s", v->addr,
		    v->password[0] ? " (password)" : "");
	return v;
no_auto:
	/* auto is the default: a host whose displays are all taken still
	 * runs the VM, only without a screen to look at. */
	log_warnx("VNC: no free display on %s:%d to %d (%s): the VM runs "
	    "without VNC", v->listen.host, VNC_PORT_BASE,
	    VNC_PORT_BASE + VNC_AUTO_DISPLAYS - 1, strerror(-r));
	vnc_free(v);
	return NULL;
fail:
	vnc_free(v);
	*err = r;
	return NULL;
}

const char *
vnc_address(const struct vnc *v)
{
	return v->addr;
}

/* A server still parked when the process ends (the next boot never
 * came): close its clients and its socket file properly. */
static void
vnc_atexit(void)
{
	vnc_stop(vnc_parked);
}

void
vnc_park(struct vnc *v)
{
	static bool registered;

	if (v == NULL)
		return;
	vnc_hand(v, NULL);
	if (vnc_parked != v)
		vnc_stop(vnc_parked);
	vnc_parked = v;
	if (!registered && atexit(vnc_atexit) == 0)
		registered = true;
}

void
vnc_stop(struct vnc *v)
{
	if (v == NULL)
		return;
	if (v == vnc_parked)
		vnc_parked = NULL;
	atomic_store(&v->stop, true);
	if (v->thread_live)
		pthread_join(v->thread, NULL);
	/* The thread is gone: its devices are ours to let go of. */
	if (v->display != NULL)
		display_set_listener(v->display, NULL, NULL);
	vnc_free(v);
}
