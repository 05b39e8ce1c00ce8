/*
 * The switch process: its lock, sockets and event loop.
 *
 * One switch per name: the first `switch run` to take
 * <runtime>/<name>.vswitch.lock (flock) owns the name, removes what a
 * dead predecessor left and binds the sockets; a second one is told
 * -EALREADY.  So two VMs that start a switch at once end up with one.
 *
 * Fairness: epoll is level-triggered and each ready port gets at most
 * one batch (VSW_BATCH messages) per loop pass, then the next one is
 * served; a port with more waiting is reported again on the next pass,
 * behind the others.  A flood from one port costs the others at most
 * one batch of latency per pass.
 *
 * Backpressure (vswitch.h): a port paused by a full destination is not
 * watched for input, and a port with a backlog is watched for output,
 * as the data plane says through vsw.watch (vsw_server_rewatch).
 */
#include "vswitch/vswitch_server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"
#include "util/thread_policy.h"
#include "vswitch/vswitch_capture.h"

#define VSW_MAX_EVENTS	64

static int
vsw_server_fmt(char *buf, size_t len, const char *path, const char *suffix)
{
	int n = snprintf(buf, len, "%s%s", path, suffix);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int
vsw_server_paths(const char *name, char *ctl, size_t ctllen, char *lock,
    size_t locklen, char *log, size_t loglen)
{
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int ret;

	if ((ret = vsw_socket_path(name, sock, sizeof(sock))) < 0)
		return ret;
	if ((ctl != NULL && ((ret = vsw_server_fmt(ctl, ctllen, sock,
	    ".ctl")) < 0 || strlen(ctl) >= sizeof(sock))) ||
	    (lock != NULL && (ret = vsw_server_fmt(lock, locklen, sock,
	    ".lock")) < 0) ||
	    (log != NULL && (ret = vsw_server_fmt(log, loglen, sock,
	    ".log")) < 0))
		return ret < 0 ? ret : -ENAMETOOLONG;
	return 0;
}

/* The runtime directory, ours alone (0700), as control.c makes it. */
static int
vsw_server_mkdir(const char *sock)
{
	char dir[4096], *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", sock);
	if ((slash = strrchr(dir, '/')) == NULL)
		return -EINVAL;
	*slash = '\0';
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		*slash = '/';
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

static int
vsw_server_watch(struct vsw_server *s, struct vsw_ev *ev, int fd,
    enum vsw_ev_kind kind, void *ptr)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = ev };

	ev->kind = kind;
	ev->fd = fd;
	ev->ptr = ptr;
	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

static void
vsw_server_unwatch(struct vsw_server *s, int fd)
{
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* What port p waits for changed (paused, backlogged). */
static void
vsw_server_rewatch(void *opaque, struct vsw_port *p)
{
	struct vsw_server *s = opaque;
	struct vsw_ev *ev = p == s->uplink ? &s->tap : p->kind ==
	    VSW_PORT_NIC ? s->portev[p->id] : NULL;
	struct epoll_event e = { .data.ptr = ev };

	if (ev == NULL || ev->fd != p->fd)
		return;
	e.events = (p->paused > 0 ? 0 : EPOLLIN) | (p->nbl > 0 ? EPOLLOUT : 0);
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, p->fd, &e) < 0)
		log_debug("switch %s: port %d: epoll: %s", s->sw.name, p->id,
		    strerror(errno));
}

static int
vsw_server_bind(const char *path, int type)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* We hold the lock: whatever is at path is a dead switch's. */
	(void)unlink(path);
	if ((fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(path, 0600) < 0 || listen(fd, 64) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* Remove every peer port (their MACs with them). */
static void
vsw_server_drop_peers(struct vsw_server *s)
{
	int i;

	for (i = 1; i < VSW_MAX_PORTS; i++)
		if (s->sw.ports[i] != NULL &&
		    s->sw.ports[i]->kind == VSW_PORT_PEER)
			vsw_port_del(&s->sw, s->sw.ports[i]);
}

static int
vsw_server_apply_vxlan(struct vsw_server *s, const struct vsw_conf *c,
    char *err, size_t errlen)
{
	int i, fd, ret;

	/* Unchanged: keep the socket, the peers and what they taught us
	 * (a reload comes with every new port group name). */
	if (s->sw.vxlan_fd >= 0 && c->npeers == s->conf.npeers &&
	    c->vxlan_port == s->conf.vxlan_port &&
	    strcmp(c->vxlan_local, s->conf.vxlan_local) == 0 &&
	    memcmp(c->peers, s->conf.peers, sizeof(c->peers)) == 0)
		return 0;
	vsw_server_drop_peers(s);
	if (s->sw.vxlan_fd >= 0) {
		vsw_server_unwatch(s, s->sw.vxlan_fd);
		close(s->sw.vxlan_fd);
		s->sw.vxlan_fd = -1;
	}
	if (c->npeers == 0)
		return 0;
	if ((fd = vsw_vxlan_open(c->vxlan_local, c->vxlan_port, err,
	    errlen)) < 0)
		return fd;
	s->sw.vxlan_fd = fd;
	s->sw.vxlan_port = (uint16_t)c->vxlan_port;
	if ((ret = vsw_server_watch(s, &s->vxlan, fd, VSW_EV_VXLAN,
	    NULL)) < 0)
		return ret;
	for (i = 0; i < c->npeers; i++)
		if ((ret = vsw_vxlan_peer_add(&s->sw, c->peers[i],
		    c->vxlan_port, err, errlen)) < 0)
			return ret;
	return 0;
}

static void
vsw_server_close_uplink(struct vsw_server *s)
{
	if (s->uplink == NULL)
		return;
	vsw_server_unwatch(s, s->uplink->fd);
	if (s->uplink->kind == VSW_PORT_PCAP)
		vsw_pcap_close(s->uplink->pcap);	/* owns the fd */
	else
		close(s->uplink->fd);
	vsw_port_del(&s->sw, s->uplink);
	s->uplink = NULL;
}

static int
vsw_server_apply_uplink(struct vsw_server *s, const struct vsw_conf *c,
    char *err, size_t errlen)
{
	char name[VSW_NAME_MAX];
	void *pc = NULL;
	int fd, pg, ret;

	snprintf(name, sizeof(name), "%s:%s", c->uplink_pcap ? "pcap" : "tap",
	    c->uplink);
	if (s->uplink != NULL && strcmp(s->uplink->name, name) == 0 &&
	    s->sw.pgs[s->uplink->pg].used &&
	    strcmp(s->sw.pgs[s->uplink->pg].name, c->uplink_pg) == 0)
		return 0;
	vsw_server_close_uplink(s);
	if (c->uplink[0] == '\0')
		return 0;
	if ((pg = vsw_pg_find(&s->sw, c->uplink_pg)) < 0)
		return -ENOENT;		/* vsw_conf_check made sure */
	fd = c->uplink_pcap ? vsw_pcap_open(c->uplink, &pc, err, errlen) :
	    vsw_tap_open(c->uplink, err, errlen);
	if (fd < 0)
		return fd;
	/* A TAP takes offloads through its vnet header; a wire none. */
	s->uplink = vsw_port_add(&s->sw, pc ? VSW_PORT_PCAP : VSW_PORT_TAP, fd,
	    pg, name, pc ? 0 : VSW_F_CSUM | VSW_F_GSO);
	if (s->uplink == NULL) {
		if (pc != NULL)
			vsw_pcap_close(pc);
		else
			close(fd);
		return -ENOSPC;
	}
	s->uplink->pcap = pc;
	if ((ret = vsw_server_watch(s, &s->tap, fd, VSW_EV_TAP, NULL)) < 0)
		vsw_server_close_uplink(s);
	return ret;
}

/* Make the switch's port group i what configuration g says. */
static void
vsw_server_pg_set(struct vsw_server *s, int i, const struct vsw_conf_pg *g)
{
	struct vsw_pg *pg = &s->sw.pgs[i];
	char err[128];
	struct vsw tmp;

	/* vsw_pg_add computes the VNI and the trunk bits; borrow it. */
	if (vsw_init(&tmp, "tmp") < 0)
		return;
	if (vsw_pg_add(&tmp, g->name, g->vlan, g->trunk[0] ? g->trunk : NULL,
	    err, sizeof(err)) == 0) {
		tmp.pgs[0].frames = pg->frames;
		tmp.pgs[0].flooded = pg->flooded;
		tmp.pgs[0].automatic = false;
		*pg = tmp.pgs[0];
		vsw_pg_shape(&s->sw, i, g->shape_bps, g->shape_burst);
	}
	vsw_fini(&tmp);
}

int
vsw_server_apply(struct vsw_server *s, const struct vsw_conf *c, char *err,
    size_t errlen)
{
	struct vsw *sw = &s->sw;
	int i, j, ret;
	bool want;

	sw->fdb.aging_ns = c->aging_s * 1000000000ull;
	/* Groups gone from the file go when their last port does. */
	for (i = 0; i < VSW_MAX_PG; i++) {
		if (!sw->pgs[i].used || sw->pgs[i].automatic)
			continue;
		for (j = 0, want = false; j < c->npg && !want; j++)
			want = strcmp(c->pg[j].name, sw->pgs[i].name) == 0;
		if (!want && vsw_pg_del(sw, sw->pgs[i].name) == -EBUSY)
			sw->pgs[i].automatic = true;
	}
	for (j = 0; j < c->npg; j++) {
		/* A VLAN moving between groups: the old holder lets go
		 * (and its VNI, which was the VLAN, with it). */
		for (i = 0; i < VSW_MAX_PG; i++)
			if (sw->pgs[i].used && !sw->pgs[i].trunk &&
			    c->pg[j].vlan != 0 &&
			    sw->pgs[i].vlan == c->pg[j].vlan &&
			    strcmp(sw->pgs[i].name, c->pg[j].name) != 0) {
				struct vsw_conf_pg none = { .vlan = 0 };
				bool was = sw->pgs[i].automatic;

				snprintf(none.name, sizeof(none.name), "%s",
				    sw->pgs[i].name);
				vsw_server_pg_set(s, i, &none);
				sw->pgs[i].automatic = was;
			}
		if ((i = vsw_pg_find(sw, c->pg[j].name)) < 0 &&
		    (i = vsw_pg_add(sw, c->pg[j].name, 0, NULL, err,
		    errlen)) < 0)
			return i;
		vsw_server_pg_set(s, i, &c->pg[j]);
	}
	if ((ret = vsw_server_apply_uplink(s, c, err, errlen)) < 0)
		return ret;
	return vsw_server_apply_vxlan(s, c, err, errlen);
}

int
vsw_server_reload(struct vsw_server *s, char *err, size_t errlen)
{
	struct vsw_conf c;
	int ret;

	ret = vsw_conf_load(s->datastore[0] ? s->datastore : NULL, s->sw.name,
	    &c, err, errlen);
	if (ret < 0)
		return ret;
	if ((ret = vsw_server_apply(s, &c, err, errlen)) < 0)
		return ret;
	s->conf = c;
	return 0;
}

static void
vsw_server_accept(struct vsw_server *s)
{
	struct vsw_pending *p;
	int fd, i;

	for (i = 0; i < 16; i++) {
		fd = accept4(s->listen.fd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (s->npending >= VSW_PENDING_MAX ||
		    (p = calloc(1, sizeof(*p))) == NULL) {
			s->hello_bad++;
			close(fd);
			continue;
		}
		p->deadline = vclock_ns() + VSW_HELLO_TIMEOUT_NS;
		if (vsw_server_watch(s, &p->ev, fd, VSW_EV_PENDING, p) < 0) {
			close(fd);
			free(p);
			continue;
		}
		p->next = s->pending;
		s->pending = p;
		s->npending++;
	}
}

static void
vsw_server_pending_free(struct vsw_server *s, struct vsw_pending *p,
    bool close_fd)
{
	struct vsw_pending **pp;

	for (pp = &s->pending; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	s->npending--;
	vsw_server_unwatch(s, p->ev.fd);
	if (close_fd)
		close(p->ev.fd);
	free(p);
}

/* Big socket buffers: the queue between switch and NIC is the socket. */
static void
vsw_server_sockbuf(int fd)
{
	int b = VSW_SOCKBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &b, sizeof(b)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &b, sizeof(b));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &b, sizeof(b)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &b, sizeof(b));
}

/* The port for a valid hello, making an unknown group if allowed. */
static struct vsw_port *
vsw_server_port(struct vsw_server *s, int fd, const struct vsw_hello *h,
    char *err, size_t errlen)
{
	char e[256];
	int pg;

	/* Someone may have added it with `switch portgroup add`. */
	if (vsw_pg_find(&s->sw, h->portgroup) < 0 &&
	    vsw_server_reload(s, e, sizeof(e)) < 0)
		log_warnx("switch %s: %s", s->sw.name, e);
	if (vsw_pg_find(&s->sw, h->portgroup) < 0 && s->conf.autocreate) {
		pg = vsw_pg_add(&s->sw, h->portgroup, 0, NULL, err, errlen);
		if (pg < 0)
			return NULL;
		s->sw.pgs[pg].automatic = true;
		log_info("switch %s: made port group %s for %s:%s", s->sw.name,
		    h->portgroup, h->vm, h->nic);
	}
	return vsw_port_add_nic(&s->sw, fd, h, err, errlen);
}

static void
vsw_server_hello(struct vsw_server *s, struct vsw_pending *p)
{
	uint8_t buf[sizeof(struct vsw_hello) + 1];
	struct vsw_welcome w = { .magic = VSW_MAGIC, .version = VSW_VERSION };
	struct vsw_hello h;
	struct vsw_port *port = NULL;
	struct vsw_ev *ev;
	int fd = p->ev.fd;
	ssize_t n;

	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		vsw_server_pending_free(s, p, true);
		return;
	}
	w.status = vsw_hello_check(buf, (size_t)n, &h, w.message,
	    sizeof(w.message));
	if (w.status == 0 && (port = vsw_server_port(s, fd, &h, w.message,
	    sizeof(w.message))) == NULL)
		w.status = -ENOENT;
	if (port != NULL && (ev = calloc(1, sizeof(*ev))) != NULL) {
		w.port = (uint32_t)port->id;
		vsw_server_sockbuf(fd);
		vsw_server_pending_free(s, p, false);
		if (send(fd, &w, sizeof(w), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ||
		    vsw_server_watch(s, ev, fd, VSW_EV_PORT, port) < 0) {
			vsw_port_del(&s->sw, port);
			close(fd);
			free(ev);
			return;
		}
		s->portev[port->id] = ev;
		log_info("switch %s: port %d %s (%02x:%02x:%02x:%02x:%02x:%02x) "
		    "in %s", s->sw.name, port->id, port->name, h.mac[0],
		    h.mac[1], h.mac[2], h.mac[3], h.mac[4], h.mac[5],
		    h.portgroup);
		return;
	}
	if (port != NULL) {
		vsw_port_del(&s->sw, port);
		w.status = -ENOMEM;
	}
	s->hello_bad++;
	log_info("switch %s: refused a NIC: %s", s->sw.name, w.message);
	(void)send(fd, &w, sizeof(w), MSG_DONTWAIT | MSG_NOSIGNAL);
	vsw_server_pending_free(s, p, true);
}

static void
vsw_server_port_gone(struct vsw_server *s, struct vsw_port *p, int why)
{
	struct vsw_ev *ev = s->portev[p->id];

	log_info("switch %s: port %d %s left (%s)", s->sw.name, p->id,
	    p->name, why == -EPIPE ? "closed" : strerror(-why));
	s->portev[p->id] = NULL;
	vsw_server_unwatch(s, p->fd);
	close(p->fd);
	vsw_port_del(&s->sw, p);
	free(ev);
}

static void
vsw_server_tick(struct vsw_server *s)
{
	struct vsw_pending *p, *next;
	uint64_t now = vclock_ns(), x;

	while (read(s->tick.fd, &x, sizeof(x)) > 0)
		;
	vsw_fdb_age(&s->sw.fdb, now);
	vsw_backlog_tick(&s->sw, now);
	for (p = s->pending; p != NULL; p = next) {
		next = p->next;
		if (now > p->deadline) {
			s->hello_bad++;
			vsw_server_pending_free(s, p, true);
		}
	}
	vsw_ctl_tick(s);
}

static void
vsw_server_signal(struct vsw_server *s)
{
	struct signalfd_siginfo si;
	char err[512];

	while (read(s->sig.fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			if (vsw_server_reload(s, err, sizeof(err)) < 0)
				log_warnx("switch %s: reload: %s", s->sw.name,
				    err);
			else
				log_info("switch %s: configuration reloaded",
				    s->sw.name);
		} else {
			s->stop = true;
		}
	}
}

static void
vsw_server_event(struct vsw_server *s, struct vsw_ev *ev, uint32_t events)
{
	int r;

	switch (ev->kind) {
	case VSW_EV_LISTEN:
		vsw_server_accept(s);
		break;
	case VSW_EV_CTL_LISTEN:
		for (int i = 0; i < 4; i++) {
			int fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK |
			    SOCK_CLOEXEC);

			if (fd < 0)
				break;
			vsw_ctl_accept(s, fd);
		}
		break;
	case VSW_EV_PENDING:
		vsw_server_hello(s, ev->ptr);
		break;
	case VSW_EV_PORT:
		if (events & EPOLLOUT)
			vsw_port_writable(&s->sw, ev->ptr);
		if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
		    (r = vsw_port_recv(&s->sw, ev->ptr)) < 0)
			vsw_server_port_gone(s, ev->ptr, r);
		break;
	case VSW_EV_TAP:
		if (s->uplink != NULL && s->uplink->kind == VSW_PORT_PCAP)
			(void)vsw_pcap_recv(&s->sw, s->uplink);
		else if (s->uplink != NULL)
			(void)vsw_tap_recv(&s->sw, s->uplink);
		break;
	case VSW_EV_VXLAN:
		if (s->sw.vxlan_fd >= 0)
			(void)vsw_vxlan_recv(&s->sw, &s->vxlan_unknown);
		break;
	case VSW_EV_CTL:
		if (events & EPOLLOUT)
			vsw_ctl_write(s, ev->ptr);
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			vsw_ctl_read(s, ev->ptr);
		break;
	case VSW_EV_SIGNAL:
		vsw_server_signal(s);
		break;
	case VSW_EV_TICK:
		vsw_server_tick(s);
		break;
	}
}

static int
vsw_server_loop(struct vsw_server *s)
{
	struct epoll_event evs[VSW_MAX_EVENTS];
	int i, n;

	/* A frame from a VM must not preempt that VM's vCPU: the switch
	 * runs beside it or after it, and forwards a batch. */
	thread_policy_batch("switch");
	while (!s->stop) {
		n = epoll_wait(s->epfd, evs, VSW_MAX_EVENTS, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (i = 0; i < n; i++)
			vsw_server_event(s, evs[i].data.ptr, evs[i].events);
		vsw_ctl_reap(s);
	}
	return 0;
}

static int
vsw_server_fds(struct vsw_server *s)
{
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };
	sigset_t set;
	int fd, ret;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
	    (ret = vsw_server_watch(s, &s->sig, fd, VSW_EV_SIGNAL, NULL)) < 0)
		return -errno;
	if ((fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK |
	    TFD_CLOEXEC)) < 0 || timerfd_settime(fd, 0, &its, NULL) < 0)
		return -errno;
	if ((ret = vsw_server_watch(s, &s->tick, fd, VSW_EV_TICK, NULL)) < 0)
		return ret;
	if ((fd = vsw_server_bind(s->path, SOCK_SEQPACKET)) < 0 ||
	    (ret = vsw_server_watch(s, &s->listen, fd, VSW_EV_LISTEN,
	    NULL)) < 0)
		return fd < 0 ? fd : ret;
	if ((fd = vsw_server_bind(s->ctlpath, SOCK_STREAM)) < 0)
		return fd;
	return vsw_server_watch(s, &s->ctl_listen, fd, VSW_EV_CTL_LISTEN,
	    NULL);
}

/* Take the name: the lock file, with our pid in it for messages. */
static int
vsw_server_lock(struct vsw_server *s)
{
	char pid[32];
	int n;

	s->lockfd = open(s->lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0)
		return -errno;
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EALREADY : -errno;
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(s->lockfd, 0) < 0 ||
	    pwrite(s->lockfd, pid, (size_t)n, 0) != n)
		return -errno;
	return 0;
}

/* Everything up to serving: 0, or -errno after logging why. */
static int
vsw_server_setup(struct vsw_server *s, const char *name,
    const char *datastore)
{
	char err[512];
	int ret;

	memset(s, 0, sizeof(*s));
	s->lockfd = s->epfd = -1;
	s->listen.fd = s->ctl_listen.fd = s->sig.fd = s->tick.fd = -1;
	snprintf(s->datastore, sizeof(s->datastore), "%s",
	    datastore ? datastore : "");
	if ((ret = vsw_init(&s->sw, name)) < 0)
		return ret;
	s->sw.watch = vsw_server_rewatch;
	s->sw.watch_opaque = s;
	if ((ret = vsw_socket_path(name, s->path, sizeof(s->path))) < 0 ||
	    (ret = vsw_server_paths(name, s->ctlpath, sizeof(s->ctlpath),
	    s->lockpath, sizeof(s->lockpath), s->logpath,
	    sizeof(s->logpath))) < 0 || (ret = vsw_server_mkdir(s->path)) < 0) {
		log_warnx("switch %s: runtime directory: %s", name,
		    strerror(-ret));
		return ret;
	}
	if ((ret = vsw_server_lock(s)) < 0) {
		if (ret != -EALREADY)
			log_warnx("switch %s: %s: %s", name, s->lockpath,
			    strerror(-ret));
		return ret;
	}
	if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	if ((ret = vsw_server_fds(s)) < 0) {
		log_warnx("switch %s: sockets: %s", name, strerror(-ret));
		return ret;
	}
	if ((ret = vsw_server_reload(s, err, sizeof(err))) < 0) {
		log_warnx("switch %s: %s", name, err);
		return ret;
	}
	s->start_ns = vclock_ns();
	log_info("switch %s: listening on %s (pid %ld)", name, s->path,
	    (long)getpid());
	return 0;
}

static void
vsw_server_teardown(struct vsw_server *s)
{
	struct vsw_ev *ev;
	int i;

	vsw_ctl_close_all(s);
	while (s->pending != NULL)
		vsw_server_pending_free(s, s->pending, true);
	vsw_server_close_uplink(s);
	for (i = 1; i < VSW_MAX_PORTS; i++) {
		if ((ev = s->portev[i]) == NULL)
			continue;
		close(ev->fd);
		free(ev);
		s->portev[i] = NULL;
	}
	if (s->sw.vxlan_fd >= 0)
		close(s->sw.vxlan_fd);
	vsw_fini(&s->sw);
	if (s->listen.fd >= 0) {
		unlink(s->path);
		close(s->listen.fd);
	}
	if (s->ctl_listen.fd >= 0) {
		unlink(s->ctlpath);
		close(s->ctl_listen.fd);
	}
	if (s->sig.fd >= 0)
		close(s->sig.fd);
	if (s->tick.fd >= 0)
		close(s->tick.fd);
	if (s->epfd >= 0)
		close(s->epfd);
	/* The lock goes last: a successor must not meet our sockets. */
	if (s->lockfd >= 0)
		close(s->lockfd);
}

/* The daemon's child side: set up, tell the parent, serve. */
static int
vsw_server_child(struct vsw_server *s, const char *name,
    const char *datastore, int pipefd, const char *logpath)
{
	int ret, fd;
	FILE *f;

	if ((fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0600)) >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	if ((fd = open("/dev/null", O_RDONLY)) >= 0) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	/* Not the starter's directory: it may be unmounted while we run
	 * (capture files come as absolute paths). */
	(void)!chdir("/");
	if ((f = fdopen(dup(STDERR_FILENO), "a")) != NULL) {
		setvbuf(f, NULL, _IOLBF, 0);
		log_set_file(f);
	}
	ret = vsw_server_setup(s, name, datastore);
	(void)!write(pipefd, &ret, sizeof(ret));
	close(pipefd);
	if (ret == 0)
		ret = vsw_server_loop(s);
	vsw_server_teardown(s);
	log_info("switch %s: stopped", name);
	return ret;
}

static int
vsw_server_daemon(struct vsw_server *s, const char *name,
    const char *datastore)
{
	char logpath[4096];
	int p[2], ret = -EIO, st;
	pid_t pid;

	if ((ret = vsw_server_paths(name, NULL, 0, NULL, 0, logpath,
	    sizeof(logpath))) < 0 || (ret = vsw_socket_path(name, s->path,
	    sizeof(s->path))) < 0 || (ret = vsw_server_mkdir(s->path)) < 0)
		return ret;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	if ((pid = fork()) < 0) {
		ret = -errno;
		close(p[0]);
		close(p[1]);
		return ret;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		if (fork() != 0)
			_exit(0);
		_exit(vsw_server_child(s, name, datastore, p[1], logpath) < 0);
	}
	close(p[1]);
	(void)waitpid(pid, &st, 0);
	if (read(p[0], &ret, sizeof(ret)) != (ssize_t)sizeof(ret))
		ret = -EIO;
	close(p[0]);
	if (ret < 0 && ret != -EALREADY)
		log_warnx("switch %s did not start: %s (see %s)", name,
		    strerror(-ret), logpath);
	return ret;
}

int
vsw_server_main(const char *name, const char *datastore, bool daemon)
{
	struct vsw_server *s = calloc(1, sizeof(*s));
	int ret;

	if (s == NULL)
		return -ENOMEM;
	/* A switch's log is who joined and left: worth keeping. */
	if (log_verbosity() < 1)
		log_init("termvisor-switch", 1);
	if (daemon) {
		ret = vsw_server_daemon(s, name, datastore);
		free(s);
		return ret;
	}
	if ((ret = vsw_server_setup(s, name, datastore)) == 0)
		ret = vsw_server_loop(s);
	vsw_server_teardown(s);
	free(s);
	return ret;
}
