/*
 * The serial console backend.
 *
 * Output: every byte the guest transmits goes into a 64 KiB ring (so a
 * late attach sees the boot log) and to out_fd.  out_fd is written
 * without ever blocking the caller, who holds the device lock on a vCPU
 * thread: ttys and pipes are reopened through /proc with O_NONBLOCK (a
 * new open file description, so the shell's stdin/stdout flags are left
 * alone), sockets use MSG_DONTWAIT, regular files never block for long.
 * What the fd does not take waits in a bounded queue retried from a
 * timer; when that queue is full, further output to the fd is dropped
 * (and counted; the ring still has it).  A guest can thus never stall the
 * VMM on a slow terminal.
 *
 * Input: in_fd is read on vm->loop into a bounded queue and handed to the
 * receiver (the UART) only as fast as it announces room with
 * console_input_space(); when the queue is full the fd is no longer
 * watched, so a paste waits in the kernel until the guest reads.
 *
 * Escape sequence (as QEMU's -serial mon:stdio), on in_fd only (clients of
 * console_input() have their own):
 *   Ctrl-a x        end the VM (vm_request_exit(VM_EVENT_SIGNAL));
 *                   what was typed after it is dropped
 *   Ctrl-a Ctrl-a   send one Ctrl-a to the guest
 *   Ctrl-a h or ?   print this help on the terminal
 *   Ctrl-a other    both bytes go to the guest unchanged
 *
 * A TTY in_fd is put in raw mode (cfmakeraw); the saved mode comes back
 * in console_free(), at exit(), and on fatal signals.
 */
#include "hv/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "hv/vm.h"
#include "util/evloop.h"
#include "util/log.h"

#define CONSOLE_RING	(64 * 1024)	/* history kept for attach */
#define CONSOLE_OUTQ	(64 * 1024)	/* output the fd has not taken yet */
#define CONSOLE_INQ	4096		/* input the guest has not taken */
#define CONSOLE_FLUSH_NS 10000000ull	/* retry a full fd every 10 ms */
#define CONSOLE_ESC	0x01		/* Ctrl-a */

enum console_out_kind {
	CONSOLE_OUT_NONE,
	CONSOLE_OUT_NONBLOCK,	/* our own O_NONBLOCK description */
	CONSOLE_OUT_SOCKET,	/* send(MSG_DONTWAIT) */
	CONSOLE_OUT_FILE,	/* regular file: write() */
	CONSOLE_OUT_POLL,	/* cannot reopen: poll, then small writes */
};

struct console {
	struct vm *vm;
	pthread_mutex_t lock;	/* ring and output queue (any thread) */
	uint8_t ring[CONSOLE_RING];
	uint64_t total;		/* bytes ever output: ring position */

	int out_fd;
	enum console_out_kind out_kind;
	bool out_owned;		/* out_fd is ours to close */
	uint8_t outq[CONSOLE_OUTQ];
	size_t outq_len;
	uint64_t dropped;
	struct vtimer flush;

	/* Input: device lock held. */
	int in_fd;
	bool in_watched;
	bool raw;
	uint8_t inq[CONSOLE_INQ];
	size_t inq_head, inq_len;
	size_t space;		/* what the receiver can take now */
	bool esc;		/* Ctrl-a seen */
	bool quit;		/* Ctrl-a x seen: ignore the rest */
	void (*in_fn)(void *opaque, const uint8_t *buf, size_t len);
	void *in_opaque;
};

/* Raw-mode restore must work from a signal handler: plain globals. */
static struct termios console_saved_tio;
static volatile sig_atomic_t console_tty_fd = -1;
static const int console_fatal_signals[] = {
	SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGPIPE, SIGTERM, SIGINT,
	SIGHUP, SIGQUIT,
};

static void
console_restore_tty(void)
{
	if (console_tty_fd >= 0)
		tcsetattr(console_tty_fd, TCSAFLUSH, &console_saved_tio);
}

/* SA_RESETHAND put the default action back: restore, then die of it.
 * (While vm_run() blocks SIGINT/SIGTERM/SIGHUP for its signalfd, this
 * handler does not run for them and the VM ends the normal way.) */
static void
console_on_fatal(int sig)
{
	console_restore_tty();
	raise(sig);
}

static void
console_atexit(void)
{
	console_restore_tty();
}

static void
console_install_restore(void)
{
	static bool installed;
	struct sigaction sa;

	if (installed)
		return;
	installed = true;
	atexit(console_atexit);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = console_on_fatal;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(console_fatal_signals) /
	    sizeof(console_fatal_signals[0]); i++) {
		struct sigaction old;

		/* Leave alone a signal someone already handles or ignores. */
		if (sigaction(console_fatal_signals[i], NULL, &old) == 0 &&
		    old.sa_handler != SIG_DFL)
			continue;
		sigaction(console_fatal_signals[i], &sa, NULL);
	}
}

static int
console_raw(struct console *c)
{
	struct termios t;

	if (console_tty_fd >= 0)
		return -EBUSY;	/* one raw console per process */
	if (tcgetattr(c->in_fd, &console_saved_tio) < 0)
		return -errno;
	t = console_saved_tio;
	cfmakeraw(&t);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	console_install_restore();
	console_tty_fd = c->in_fd;
	if (tcsetattr(c->in_fd, TCSAFLUSH, &t) < 0) {
		console_tty_fd = -1;
		return -errno;
	}
	c->raw = true;
	return 0;
}

/* --- output --- */

static void
console_out_open(struct console *c, int fd)
{
	char path[64];
	struct stat st;
	int nfd;

	c->out_fd = fd;
	if (fd < 0 || fstat(fd, &st) < 0) {
		c->out_kind = CONSOLE_OUT_NONE;
		return;
	}
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
		/* Reopening would lose O_APPEND and the shared offset. */
		c->out_kind = CONSOLE_OUT_FILE;
		return;
	}
	if (S_ISSOCK(st.st_mode)) {
		c->out_kind = CONSOLE_OUT_SOCKET;
		return;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (nfd < 0) {
		c->out_kind = CONSOLE_OUT_POLL;
		return;
	}
	c->out_fd = nfd;
	c->out_owned = true;
	c->out_kind = CONSOLE_OUT_NONBLOCK;
}

/* One attempt to write; bytes taken, 0 when the fd is full, -errno. */
static ssize_t
console_out_write(struct console *c, const uint8_t *buf, size_t len)
{
	struct pollfd p = { .fd = c->out_fd, .events = POLLOUT };
	ssize_t n;

	switch (c->out_kind) {
	case CONSOLE_OUT_NONE:
		return len;
	case CONSOLE_OUT_SOCKET:
		n = send(c->out_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	case CONSOLE_OUT_POLL:
		/* A blocking fd we could not reopen: a small write after
		 * POLLOUT fits in a pipe or tty buffer that has room. */
		if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLOUT))
			return 0;
		n = write(c->out_fd, buf, len < 256 ? len : 256);
		break;
	default:
		n = write(c->out_fd, buf, len);
		break;
	}
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	return n;
}

/* The fd is gone (EPIPE, EIO...): the ring still records output. */
static void
console_out_failed(struct console *c, int err)
{
	log_warnx("console: output: %s; no more output to the terminal",
	    strerror(err));
	c->out_kind = CONSOLE_OUT_NONE;
	c->outq_len = 0;
}

/* Push queued output to the fd; c->lock held. */
static void
console_out_drain(struct console *c)
{
	while (c->outq_len > 0) {
		ssize_t n = console_out_write(c, c->outq, c->outq_len);

		if (n < 0) {
			console_out_failed(c, (int)-n);
			return;
		}
		if (n == 0)
			break;
		memmove(c->outq, c->outq + n, c->outq_len - n);
		c->outq_len -= n;
	}
	if (c->outq_len > 0 && c->flush.loop != NULL &&
	    !vtimer_armed(&c->flush))
		vtimer_arm(&c->flush, vclock_ns() + CONSOLE_FLUSH_NS);
}

static void
console_on_flush(void *opaque)
{
	struct console *c = opaque;

	pthread_mutex_lock(&c->lock);
	console_out_drain(c);
	pthread_mutex_unlock(&c->lock);
}

static void
console_ring_put(struct console *c, const uint8_t *buf, size_t len)
{
	if (len > CONSOLE_RING) {
		c->total += len - CONSOLE_RING;
		buf += len - CONSOLE_RING;
		len = CONSOLE_RING;
	}
	while (len > 0) {
		size_t at = c->total % CONSOLE_RING;
		size_t n = CONSOLE_RING - at < len ? CONSOLE_RING - at : len;

		memcpy(c->ring + at, buf, n);
		c->total += n;
		buf += n;
		len -= n;
	}
}

/* Queue output for the fd, dropping (and counting) what does not fit. */
static void
console_outq_put(struct console *c, const uint8_t *buf, size_t len)
{
	size_t room = CONSOLE_OUTQ - c->outq_len;

	if (len > room) {
		if (c->dropped == 0)
			log_warnx("console: terminal too slow, dropping "
			    "output (the history buffer keeps it)");
		c->dropped += len - room;
		len = room;
	}
	memcpy(c->outq + c->outq_len, buf, len);
	c->outq_len += len;
}

/*
 * Guest output: into the history ring and, without blocking, to out_fd.
 */
void
console_output(struct console *c, const uint8_t *buf, size_t len)
{
	ssize_t n = 0;

	if (c == NULL || len == 0)
		return;
	pthread_mutex_lock(&c->lock);
	console_ring_put(c, buf, len);
	if (c->out_kind != CONSOLE_OUT_NONE) {
		if (c->outq_len == 0)	/* keep the order: queue first */
			n = console_out_write(c, buf, len);
		if (n < 0) {
			console_out_failed(c, (int)-n);
		} else if ((size_t)n < len) {
			console_outq_put(c, buf + n, len - n);
			console_out_drain(c);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* Copy from absolute output position pos; c->lock held. */
static size_t
console_ring_copy(struct console *c, uint64_t pos, uint8_t *buf, size_t len)
{
	size_t done = 0;

	if (c->total - pos < len)
		len = c->total - pos;
	while (done < len) {
		size_t at = (pos + done) % CONSOLE_RING;
		size_t n = CONSOLE_RING - at < len - done ? CONSOLE_RING - at :
		    len - done;

		memcpy(buf + done, c->ring + at, n);
		done += n;
	}
	return done;
}

/*
 * Copy up to len bytes of the most recent output, oldest first; returns
 * how many.
 */
size_t
console_history(struct console *c, uint8_t *buf, size_t len)
{
	uint64_t kept;
	size_t n;

	pthread_mutex_lock(&c->lock);
	kept = c->total < CONSOLE_RING ? c->total : CONSOLE_RING;
	if (len > kept)
		len = kept;
	n = console_ring_copy(c, c->total - len, buf, len);
	pthread_mutex_unlock(&c->lock);
	return n;
}

/*
 * Output since *pos (clamped to the oldest byte kept), advancing *pos;
 * returns the count.
 */
size_t
console_history_from(struct console *c, uint64_t *pos, uint8_t *buf,
    size_t len)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	if (*pos > c->total)
		*pos = c->total;
	if (c->total - *pos > CONSOLE_RING)
		*pos = c->total - CONSOLE_RING;
	n = console_ring_copy(c, *pos, buf, len);
	*pos += n;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* --- input --- */

static void
console_on_input(void *opaque, int fd);

static void
console_watch(struct console *c, bool on)
{
	if (c->in_fd < 0 || c->vm == NULL || c->vm->loop == NULL ||
	    c->in_watched == on)
		return;
	if (on && evloop_add_fd(c->vm->loop, c->in_fd, console_on_input,
	    c) < 0)
		return;
	if (!on)
		evloop_del_fd(c->vm->loop, c->in_fd);
	c->in_watched = on;
}

/* Hand queued input to the receiver, as much as it has room for. */
static void
console_deliver(struct console *c)
{
	while (c->inq_len > 0 && c->space > 0 && c->in_fn != NULL) {
		size_t n = CONSOLE_INQ - c->inq_head;

		if (n > c->inq_len)
			n = c->inq_len;
		if (n > c->space)
			n = c->space;
		c->space -= n;
		c->inq_head = (c->inq_head + n) % CONSOLE_INQ;
		c->inq_len -= n;
		/* The receiver may call console_input_space() from here. */
		c->in_fn(c->in_opaque, c->inq + (c->inq_head + CONSOLE_INQ -
		    n) % CONSOLE_INQ, n);
	}
	if (c->inq_len < CONSOLE_INQ && !c->in_watched)
		console_watch(c, true);
}

static void
console_inq_put(struct console *c, uint8_t b)
{
	c->inq[(c->inq_head + c->inq_len) % CONSOLE_INQ] = b;
	c->inq_len++;
}

static void
console_help(struct console *c)
{
	static const char help[] = "\r\ntermvisor console escapes:\r\n"
	    "  C-a x    end the VM\r\n"
	    "  C-a C-a  send C-a to the guest\r\n"
	    "  C-a h    this help\r\n";

	pthread_mutex_lock(&c->lock);
	if (c->out_kind != CONSOLE_OUT_NONE)
		console_outq_put(c, (const uint8_t *)help, sizeof(help) - 1);
	console_out_drain(c);
	pthread_mutex_unlock(&c->lock);
}

/* Escape processing for one typed byte; false if the queue is full. */
static bool
console_type(struct console *c, uint8_t b)
{
	if (c->quit)
		return true;
	if (CONSOLE_INQ - c->inq_len < 2)
		return false;
	if (!c->esc) {
		if (b == CONSOLE_ESC)
			c->esc = true;
		else
			console_inq_put(c, b);
		return true;
	}
	c->esc = false;
	switch (b) {
	case 'x':
	case 'X':
		log_info("console: C-a x, ending the VM");
		c->quit = true;
		if (c->vm != NULL)
			vm_request_exit(c->vm, VM_EVENT_SIGNAL, 0);
		break;
	case CONSOLE_ESC:
		console_inq_put(c, CONSOLE_ESC);
		break;
	case 'h':
	case '?':
		console_help(c);
		break;
	default:
		console_inq_put(c, CONSOLE_ESC);
		console_inq_put(c, b);
		break;
	}
	return true;
}

static void
console_on_input(void *opaque, int fd)
{
	struct console *c = opaque;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint8_t buf[256];
	size_t room = (CONSOLE_INQ - c->inq_len) / 2;	/* escapes double */
	ssize_t n;

	if (room == 0) {
		console_watch(c, false);
		return;
	}
	/* in_fd stays blocking (O_NONBLOCK would be shared with the
	 * shell's stdout); a stale event after a re-watch must not block
	 * the event thread in read(). */
	if (poll(&p, 1, 0) <= 0)
		return;
	n = read(fd, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		/* EOF (stdin from /dev/null or a closed pipe): the guest
		 * keeps running without input. */
		console_watch(c, false);
		c->in_fd = -1;
		return;
	}
	for (ssize_t i = 0; i < n; i++)
		console_type(c, buf[i]);
	console_deliver(c);
	if (c->inq_len >= CONSOLE_INQ - 1)
		console_watch(c, false);
}

/*
 * Input from an attached client: queued like typed input (escapes are
 * not interpreted: the client has its own).  Returns the bytes taken.
 */
size_t
console_input(struct console *c, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	while (n < len && c->inq_len < CONSOLE_INQ)
		console_inq_put(c, buf[n++]);
	console_deliver(c);
	return n;
}

void
console_set_input(struct console *c,
    void (*fn)(void *opaque, const uint8_t *buf, size_t len), void *opaque)
{
	c->in_fn = fn;
	c->in_opaque = opaque;
	c->space = 0;
}

/*
 * The receiver has room for n more bytes (absolute, replacing what it
 * said before): deliver what is queued.
 */
void
console_input_space(struct console *c, size_t n)
{
	if (c == NULL)
		return;
	c->space = n;
	console_deliver(c);
}

/* --- life cycle --- */

/*
 * Create the console.  Returns NULL (errno set) if memory or the raw-mode
 * switch fails.
 */
struct console *
console_new(struct vm *vm, int in_fd, int out_fd)
{
	struct console *c = calloc(1, sizeof(*c));
	int err;

	if (c == NULL)
		return NULL;
	c->vm = vm;
	c->in_fd = in_fd;
	pthread_mutex_init(&c->lock, NULL);
	console_out_open(c, out_fd);
	if (vm != NULL && vm->loop != NULL)
		vtimer_init(&c->flush, vm->loop, console_on_flush, c);
	if (in_fd >= 0 && isatty(in_fd) && (err = console_raw(c)) < 0) {
		log_warnx("console: raw mode on fd %d: %s", in_fd,
		    strerror(-err));
		goto fail;
	}
	console_watch(c, true);
	return c;
fail:
	console_free(c);
	errno = -err;
	return NULL;
}

/* Last chance for queued output: wait for the fd up to a bound. */
static void
console_final_flush(struct console *c)
{
	for (int tries = 0; tries < 50 && c->outq_len > 0 &&
	    c->out_kind != CONSOLE_OUT_NONE; tries++) {
		struct pollfd p = { .fd = c->out_fd, .events = POLLOUT };

		poll(&p, 1, 10);
		console_out_drain(c);
	}
}

void
console_free(struct console *c)
{
	if (c == NULL)
		return;
	console_watch(c, false);
	if (c->flush.loop != NULL)
		vtimer_cancel(&c->flush);
	pthread_mutex_lock(&c->lock);
	console_final_flush(c);
	pthread_mutex_unlock(&c->lock);
	if (c->raw) {
		console_restore_tty();
		console_tty_fd = -1;
	}
	if (c->dropped > 0)
		log_info("console: %llu bytes of output were not shown (slow "
		    "terminal)", (unsigned long long)c->dropped);
	if (c->out_owned)
		close(c->out_fd);
	/* The UART must not reach a freed console through vm->console. */
	if (c->vm != NULL && c->vm->console == c)
		c->vm->console = NULL;
	pthread_mutex_destroy(&c->lock);
	free(c);
}
