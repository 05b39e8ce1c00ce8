/*
 * The control socket server: a listening Unix socket and its clients,
 * served from the VM's event loop.
 *
 * The event loop only watches fds for input, and a client that reads
 * slowly must never block the VM, so the server keeps its own epoll set
 * (listening socket and clients, with EPOLLOUT while a client has output
 * queued) and hands that one fd to the loop: it is readable whenever any
 * of ours is ready.  Writes are non-blocking into a bounded per-client
 * buffer; a client that lets it overflow is dropped.  A request line is
 * bounded too (CONTROL_LINE_MAX): a longer one gets an error and the
 * connection is closed.
 */
#include "control/control.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/pvpanic.h"
#include "hv/console.h"
#include "hv/exit.h"
#include "hv/vm.h"
#include "util/log.h"
#include "util/sock.h"

struct control_client {
	int fd;
	bool dead;		/* close at the end of this pass */
	bool closing;		/* half-close once flushed, then drain */
	bool want_out;		/* EPOLLOUT is in the epoll set */
	char *in;		/* CONTROL_LINE_MAX + 1 bytes */
	size_t inlen;
	char *out;
	size_t outlen, outcap;
	bool attached;		/* console-attach: console events */
	uint64_t con_pos;	/* console output sent up to here */
	struct control_client *next;
};

const char *
control_state_name(int state)
{
	switch (state) {
	case VM_CREATED: return "created";
	case VM_RUNNING: return "running";
	case VM_PAUSED: return "paused";
	case VM_STOPPING: return "stopping";
	case VM_STOPPED: return "stopped";
	default: return "unknown";
	}
}

const char *
control_state(const struct control *c)
{
	if (c->panicked && c->vm->state == VM_PAUSED)
		return "panicked";
	return control_state_name(c->vm->state);
}

int
control_socket_path(const char *name, char *path, size_t len, char *dir,
    size_t dirlen)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	char d[PATH_MAX];
	int n;

	if (x != NULL && *x == '/')
		snprintf(d, sizeof(d), "%s/termvisor", x);
	else if (geteuid() == 0)
		snprintf(d, sizeof(d), "/run/termvisor");
	else
		snprintf(d, sizeof(d), "/tmp/termvisor-%u",
		    (unsigned)geteuid());
	n = snprintf(path, len, "%s/%s.sock", d, name);
	if (n < 0 || (size_t)n >= len ||
	    (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	if (dir != NULL && (size_t)snprintf(dir, dirlen, "%s", d) >= dirlen)
		return -ENAMETOOLONG;
	return 0;
}

/* The runtime directory: ours alone (0700), never someone else's or a
 * symlink planted in /tmp.  0 or -errno. */
static int
control_make_dir(const char *dir)
{
	struct stat st;
	char parent[PATH_MAX], *slash;

	/* An XDG_RUNTIME_DIR that does not exist yet (a bare su session,
	 * a test) gets made, ours alone too. */
	snprintf(parent, sizeof(parent), "%s", dir);
	if ((slash = strrchr(parent, '/')) != NULL && slash != parent) {
		*slash = '\0';
		if (mkdir(parent, 0700) < 0 && errno != EEXIST)
			return -errno;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return -EPERM;
	if ((st.st_mode & 077) != 0 && chmod(dir, 0700) < 0)
		return -errno;
	return 0;
}

/* Is a VM answering at path?  1 yes, 0 no (a stale socket is removed),
 * or -errno. */
static int
control_probe(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* Non-blocking: a hung VM with a full backlog must not hang us. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r < 0)
		r = -errno;
	close(fd);
	if (r == 0 || r == -EAGAIN)
		return 1;
	if (r == -ENOENT)
		return 0;
	if (r == -ECONNREFUSED) {
		log_info("removing the stale control socket %s", path);
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	}
	return r;
}

/*
 * Unnamed VMs (pid-PID) killed without a chance to clean up would leave
 * their sockets forever, since no later VM has their name: remove the
 * stale ones (nobody accepts on them) whenever a VM starts.
 */
static void
control_sweep(const char *dir)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct dirent *de;
	int budget = 256;	/* bounded work at start */
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while (budget-- > 0 && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (strncmp(de->d_name, "pid-", 4) != 0 || n < 6 ||
		    strcmp(de->d_name + n - 5, ".sock") != 0 ||
		    (size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    de->d_name) >= sizeof(path))
			continue;
		(void)control_probe(path);
	}
	closedir(d);
}

static int
control_listen(struct control *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if ((r = control_probe(c->path)) != 0)
		return r > 0 ? -EADDRINUSE : r;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(c->path, 0600) < 0 || listen(fd, 16) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* Watch cl for input, and for output room while it has output queued. */
static void
control_client_watch(struct control *c, struct control_client *cl)
{
	bool want = cl->outlen > 0;
	struct epoll_event ev = {
		.events = EPOLLIN | (want ? EPOLLOUT : 0),
		.data.ptr = cl,
	};

	if (want == cl->want_out)
		return;
	if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, cl->fd, &ev) < 0)
		cl->dead = true;
	cl->want_out = want;
}

static void
control_client_flush(struct control *c, struct control_client *cl)
{
	if (!sock_flush(cl->fd, cl->out, &cl->outlen)) {
		cl->dead = true;
		return;
	}
	/* Closing with the client's input unread would reset the
	 * connection and lose our last reply: half-close, and let
	 * control_client_read drain the rest until the client hangs up. */
	if (cl->outlen == 0 && cl->closing)
		shutdown(cl->fd, SHUT_WR);
	control_client_watch(c, cl);
}

/* Queue one JSON line for cl (reference stolen) and try to send it. */
static void
control_client_send(struct control *c, struct control_client *cl, json_t *j)
{
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	size_t n = s != NULL ? strlen(s) : 0;
	char *nb;

	json_decref(j);
	if (s == NULL || cl->dead) {
		free(s);
		return;
	}
	if (cl->outlen + n + 1 > CONTROL_OUT_MAX) {
		log_info("control: dropping a client that does not read its "
		    "replies");
		cl->dead = true;
		goto out;
	}
	if (cl->outlen + n + 1 > cl->outcap) {
		size_t cap = cl->outcap ? cl->outcap : 4096;

		while (cap < cl->outlen + n + 1)
			cap *= 2;
		if ((nb = realloc(cl->out, cap)) == NULL) {
			cl->dead = true;
			goto out;
		}
		cl->out = nb;
		cl->outcap = cap;
	}
	memcpy(cl->out + cl->outlen, s, n);
	cl->out[cl->outlen + n] = '\n';
	cl->outlen += n + 1;
	control_client_flush(c, cl);
out:
	free(s);
}

static void control_reap(struct control *c);

void
control_event(struct control *c, json_t *ev)
{
	for (struct control_client *cl = c->clients; cl != NULL; cl = cl->next)
		control_client_send(c, cl, json_incref(ev));
	json_decref(ev);
}

void
control_event_state(struct control *c)
{
	control_event(c, json_pack("{s:s, s:s}", "event", "state", "state",
	    control_state(c)));
}

/*
 * pvpanic listener: {"event": "guest-panic", "kind": "panicked" or
 * "crash-loaded", "action": on_panic's, "paused": BOOL}, then the state
 * when the VM was paused for it.  A VM loaded paused by a panic it had
 * before (snapshot, migration) only gets its state back.
 */
static void
control_guest_panic(void *opaque, const struct pvpanic_report *r)
{
	struct control *c = opaque;

	if (!r->restored)
		control_event(c, json_pack("{s:s, s:s, s:s, s:b}", "event",
		    "guest-panic", "kind", r->event == PVPANIC_CRASH_LOADED ?
		    "crash-loaded" : "panicked", "action",
		    pvpanic_action_name(r->action), "paused", r->paused));
	if (r->paused) {
		c->panicked = true;
		control_event_state(c);
	}
}

json_t *
control_bytes_json(const uint8_t *buf, size_t len)
{
	char *s = malloc(2 * len + 1), *p = s;
	json_t *j;

	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] < 0x80) {
			*p++ = (char)buf[i];
		} else {
			*p++ = (char)(0xc0 | buf[i] >> 6);
			*p++ = (char)(0x80 | (buf[i] & 0x3f));
		}
	}
	j = json_stringn(s, (size_t)(p - s));
	free(s);
	return j;
}

long
control_json_bytes(const json_t *j, uint8_t *buf, size_t len)
{
	const uint8_t *s = (const uint8_t *)json_string_value(j);
	size_t n = json_string_length(j), o = 0;

	if (s == NULL)
		return -1;
	for (size_t i = 0; i < n && o < len; i++) {
		if (s[i] < 0x80)
			buf[o++] = s[i];
		else if ((s[i] == 0xc2 || s[i] == 0xc3) && i + 1 < n) {
			buf[o++] = (uint8_t)((s[i] & 3) << 6 | (s[i + 1] & 0x3f));
			i++;
		} else
			return -1;	/* above U+00FF (jansson checked UTF-8) */
	}
	return (long)o;
}

/* Send cl the console output it has not had, a chunk at a time while its
 * queue has room: a slow reader falls behind (and skips what the ring
 * lost) rather than being dropped. */
static size_t
control_console_from(struct control *c, uint64_t *pos, uint8_t *buf,
    size_t len)
{
	uint64_t oldest = c->con_base - c->hist_len, local;
	size_t n;

	if (*pos < oldest)
		*pos = oldest;	/* lost: the oldest we still have */
	if (*pos < c->con_base) {	/* output of the VM before a reset */
		n = c->con_base - *pos < len ? (size_t)(c->con_base - *pos) :
		    len;
		memcpy(buf, c->hist + (*pos - oldest), n);
		*pos += n;
		return n;
	}
	if (c->vm == NULL || c->vm->console == NULL)
		return 0;
	local = *pos - c->con_base;
	n = console_history_from(c->vm->console, &local, buf, len);
	*pos = c->con_base + local;
	return n;
}

size_t
control_console_history(struct control *c, uint8_t *buf, size_t len)
{
	size_t n = 0, old;

	if (c->vm != NULL && c->vm->console != NULL)
		n = console_history(c->vm->console, buf, len);
	old = len - n < c->hist_len ? len - n : c->hist_len;
	/* No history kept (c->hist NULL): memcpy must not see it even
	 * for 0 bytes (UBSan). */
	if (old > 0) {
		memmove(buf + old, buf, n);
		memcpy(buf, c->hist + c->hist_len - old, old);
	}
	return old + n;
}

static void
control_console_send(struct control *c, struct control_client *cl)
{
	uint8_t buf[CONTROL_CONSOLE_CHUNK];
	size_t n;

	while (!cl->dead && cl->outlen < CONTROL_OUT_MAX / 2 &&
	    (n = control_console_from(c, &cl->con_pos, buf, sizeof(buf))) > 0)
		control_client_send(c, cl, json_pack("{s:s, s:o}", "event",
		    "console", "data", control_bytes_json(buf, n)));
}

void
control_console_pump(struct control *c)
{
	bool any = false;

	if (c->vm == NULL || c->vm->console == NULL)
		return;
	for (struct control_client *cl = c->clients; cl != NULL; cl = cl->next) {
		if (!cl->attached || cl->dead || cl->closing)
			continue;
		control_console_send(c, cl);
		any = true;
	}
	if (any && c->lfd >= 0)
		vtimer_arm(&c->console_timer, vclock_ns() +
		    CONTROL_CONSOLE_POLL);
}

static void
control_console_tick(void *opaque)
{
	struct control *c = opaque;

	control_console_pump(c);
	control_reap(c);
}

int
control_console_attach(struct control *c, struct control_client *cl)
{
	if (cl == NULL || c->vm->console == NULL)
		return -EINVAL;
	cl->attached = true;
	cl->con_pos = 0;	/* the oldest output we still have */
	/* After this request's reply: the next loop pass. */
	vtimer_arm(&c->console_timer, vclock_ns());
	return 0;
}

int
control_console_detach(struct control *c, struct control_client *cl)
{
	if (cl == NULL)
		return -EINVAL;
	/* Output already queued still arrives: the client ignores it. */
	cl->attached = false;
	return 0;
}

static json_t *
control_greeting(struct control *c)
{
	return json_pack("{s:{s:s, s:i}, s:s, s:s}", "termvisor", "version",
	    CONTROL_VERSION, "protocol", CONTROL_PROTOCOL, "vm", c->name,
	    "state", control_state(c));
}

/* Complete lines in cl->in: one reply each.  Then the rest is moved to
 * the front; a full buffer with no newline is a line too long. */
static void
control_client_lines(struct control *c, struct control_client *cl)
{
	size_t start = 0;
	char *nl;

	while (!cl->dead && !cl->closing && (nl = memchr(cl->in + start, '\n',
	    cl->inlen - start)) != NULL) {
		size_t len = (size_t)(nl - (cl->in + start));

		if (len > 0 && cl->in[start + len - 1] == '\r')
			len--;
		if (len > 0) {
			c->cur = cl;
			control_client_send(c, cl, control_cmd_request(c,
			    cl->in + start, len));
			c->cur = NULL;
		}
		start = (size_t)(nl - cl->in) + 1;
	}
	memmove(cl->in, cl->in + start, cl->inlen - start);
	cl->inlen -= start;
	if (cl->inlen >= CONTROL_LINE_MAX && !cl->closing) {
		control_client_send(c, cl, json_pack("{s:n, s:b, s:{s:s, s:s}}",
		    "id", "ok", 0, "error", "code", "line-too-long", "message",
		    "a request line is at most 65536 bytes: closing"));
		cl->closing = true;
		cl->inlen = 0;
		if (cl->outlen == 0)
			shutdown(cl->fd, SHUT_WR);
	}
}

static void
control_client_read(struct control *c, struct control_client *cl)
{
	ssize_t n;

	if (cl->closing) {	/* discard: we only finish sending */
		char junk[4096];

		n = read(cl->fd, junk, sizeof(junk));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			cl->dead = true;
		return;
	}
	n = read(cl->fd, cl->in + cl->inlen, CONTROL_LINE_MAX - cl->inlen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {	/* EOF: a half line left is dropped */
		cl->dead = true;
		return;
	}
	cl->inlen += (size_t)n;
	control_client_lines(c, cl);
}

static void
control_client_free(struct control_client *cl)
{
	close(cl->fd);
	free(cl->in);
	free(cl->out);
	free(cl);
}

static void
control_accept(struct control *c)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct control_client *cl;
	int fd;

	fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (c->nclients >= CONTROL_MAX_CLIENTS) {
		static const char busy[] = "{\"id\":null,\"ok\":false,\"error\":"
		    "{\"code\":\"busy\",\"message\":\"too many clients\"}}\n";

		if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL |
		    MSG_DONTWAIT) < 0)
			log_debug("control: %s", strerror(errno));
		close(fd);
		return;
	}
	if ((cl = calloc(1, sizeof(*cl))) == NULL ||
	    (cl->in = malloc(CONTROL_LINE_MAX + 1)) == NULL)
		goto fail;
	cl->fd = fd;
	ev.data.ptr = cl;
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail;
	cl->next = c->clients;
	c->clients = cl;
	c->nclients++;
	control_client_send(c, cl, control_greeting(c));
	return;
fail:
	if (cl != NULL)
		free(cl->in);
	free(cl);
	close(fd);
}

/* Close the clients marked dead in this pass. */
static void
control_reap(struct control *c)
{
	struct control_client **p = &c->clients, *cl;

	while ((cl = *p) != NULL) {
		if (!cl->dead) {
			p = &cl->next;
			continue;
		}
		*p = cl->next;
		c->nclients--;
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
		control_client_free(cl);
	}
}

/* vm->loop callback: something in our epoll set is ready. */
static void
control_on_ready(void *opaque, int fd)
{
	struct control *c = opaque;
	struct epoll_event evs[16];
	int n = epoll_wait(fd, evs, 16, 0);

	for (int i = 0; i < n; i++) {
		struct control_client *cl = evs[i].data.ptr;

		if (cl == NULL) {
			control_accept(c);
			continue;
		}
		if (cl->dead)
			continue;
		if (evs[i].events & EPOLLOUT)
			control_client_flush(c, cl);
		if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			control_client_read(c, cl);
	}
	control_reap(c);
}

void
control_init(struct control *c, struct vm *vm, const char *name)
{
	memset(c, 0, sizeof(*c));
	c->vm = vm;
	c->lfd = -1;
	c->epfd = -1;
	c->start_ns = vclock_ns();
	snprintf(c->name, sizeof(c->name), "%s", name);
	vtimer_init(&c->stop_timer, vm->loop, control_cmd_stop_timeout, c);
	vtimer_init(&c->console_timer, vm->loop, control_console_tick, c);
	pvpanic_set_listener(pvpanic_find(vm), control_guest_panic, c);
}

void
control_fini(struct control *c)
{
	vtimer_cancel(&c->stop_timer);
	vtimer_cancel(&c->console_timer);
	if (c->vm != NULL)
		pvpanic_set_listener(pvpanic_find(c->vm), NULL, NULL);
	for (struct control_client *cl = c->clients; cl != NULL; cl = cl->next)
		cl->dead = true;
	if (c->epfd >= 0)
		control_reap(c);
}

struct control *
control_start(struct vm *vm, const char *name)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct control *c = calloc(1, sizeof(*c));
	char pidname[32], dir[PATH_MAX];
	int r;

	if (c == NULL)
		return NULL;
	if (name == NULL || *name == '\0') {
		snprintf(pidname, sizeof(pidname), "pid-%ld", (long)getpid());
		name = pidname;
	}
	control_init(c, vm, name);
	c->live = true;
	if ((r = control_socket_path(name, c->path, sizeof(c->path), dir,
	    sizeof(dir))) < 0 || (r = control_make_dir(dir)) < 0)
		goto fail;
	control_sweep(dir);
	if ((r = control_listen(c)) < 0)
		goto fail;
	c->lfd = r;
	if ((c->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->lfd, &ev) < 0 ||
	    (r = evloop_add_fd(vm->loop, c->epfd, control_on_ready, c)) < 0) {
		r = r < 0 ? r : -errno;
		goto fail_sock;
	}
	log_info("control socket: %s", c->path);
	return c;
fail_sock:
	if (c->epfd >= 0)
		close(c->epfd);
	close(c->lfd);
	unlink(c->path);
fail:
	if (r == -EADDRINUSE)
		log_warnx("a VM called %s already answers on %s: running "
		    "without a control socket", name, c->path);
	else
		log_warnx("cannot serve the control socket %s: %s (running "
		    "without one)", c->path[0] ? c->path : name, strerror(-r));
	free(c);
	return NULL;
}

void
control_set_vnc_addr(struct control *c, const char *addr)
{
	if (c != NULL)
		snprintf(c->vnc_addr, sizeof(c->vnc_addr), "%s",
		    addr != NULL ? addr : "");
}

static const char *
control_how_name(int how)
{
	switch (how) {
	case VM_EVENT_RESET: return "reset";
	case VM_EVENT_POWEROFF: return "poweroff";
	case VM_EVENT_SIGNAL: return "signal";
	default: return "error";
	}
}

void
control_stop(struct control *c, int how, int status)
{
	if (c == NULL)
		return;
	control_console_pump(c);	/* the guest's last words first */
	control_event(c, json_pack("{s:s, s:s, s:i}", "event", "shutdown",
	    "reason", control_how_name(how), "status", status));
	control_fini(c);
	if (c->vm != NULL)	/* else control_reset left the loop */
		evloop_del_fd(c->vm->loop, c->epfd);
	/*
	 * The name first, then the socket.  A migration's destination takes
	 * the name over as soon as connecting fails: closed first, the
	 * socket refused connections while its name still stood, and this
	 * unlink could remove the destination's new socket (slow-migrate-ssh
	 * then found no destination to ask).
	 */
	unlink(c->path);
	close(c->epfd);
	close(c->lfd);
	free(c->hist);
	free(c);
}

/* Keep the tail of the console about to go (c->hist, bounded) and count
 * its output into c->con_base. */
static void
control_keep_console(struct control *c)
{
	uint64_t total = UINT64_MAX;
	uint8_t *nb, dummy;
	size_t n, keep;

	if (c->vm->console == NULL)
		return;
	(void)console_history_from(c->vm->console, &total, &dummy, 0);
	if (c->hist == NULL &&
	    (c->hist = malloc(CONTROL_HIST_MAX)) == NULL) {
		c->hist_len = 0;	/* positions stay right, history lost */
		c->con_base += total;
		return;
	}
	if ((nb = malloc(CONTROL_HIST_MAX)) == NULL)
		return;
	n = console_history(c->vm->console, nb, CONTROL_HIST_MAX);
	keep = c->hist_len + n > CONTROL_HIST_MAX ? CONTROL_HIST_MAX - n :
	    c->hist_len;
	memmove(c->hist, c->hist + c->hist_len - keep, keep);
	memcpy(c->hist + keep, nb, n);
	c->hist_len = keep + n;
	c->con_base += total;
	free(nb);
}

struct control *
control_reset(struct control *c)
{
	if (c == NULL)
		return NULL;
	control_console_pump(c);	/* the old guest's last words */
	control_keep_console(c);
	c->stop_at = vtimer_armed(&c->stop_timer) ? c->stop_timer.deadline : 0;
	vtimer_cancel(&c->stop_timer);
	vtimer_cancel(&c->console_timer);
	c->stop_timer.loop = c->console_timer.loop = NULL;
	evloop_del_fd(c->vm->loop, c->epfd);
	pvpanic_set_listener(pvpanic_find(c->vm), NULL, NULL);
	c->vm = NULL;
	c->panicked = false;
	c->resets++;
	control_event(c, json_pack("{s:s, s:i}", "event", "reset", "resets",
	    c->resets));
	control_reap(c);
	return c;
}

struct control *
control_rebind(struct control *c, struct vm *vm)
{
	int r;

	c->vm = vm;
	vtimer_init(&c->stop_timer, vm->loop, control_cmd_stop_timeout, c);
	vtimer_init(&c->console_timer, vm->loop, control_console_tick, c);
	pvpanic_set_listener(pvpanic_find(vm), control_guest_panic, c);
	if ((r = evloop_add_fd(vm->loop, c->epfd, control_on_ready, c)) < 0)
		log_warnx("control socket %s: %s (not served after the "
		    "reset)", c->path, strerror(-r));
	/* A graceful stop the reset interrupted still ends in time. */
	if (c->stop_at != 0)
		vtimer_arm(&c->stop_timer, c->stop_at);
	/* Attached consoles get the new VM's output as it comes. */
	vtimer_arm(&c->console_timer, vclock_ns());
	return c;
}
