/*
 * A NIC's connection to the host's switch: see netdev_vsw.h for the
 * states, vswitch/vswitch_proto.h for what is said.
 */
#include "devices/netdev_vsw.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "util/log.h"
#include "vswitch/vswitch_client.h"

/* Room for bursts: a full socket holds the guest's transmit ring until
 * it drains (and the switch pauses us while our receiver is full), so
 * give it a few hundred full-size frames of slack (the kernel doubles
 * it). */
#define NETDEV_VSW_SNDBUF	(1 << 20)

static void netdev_vsw_on_fd(void *opaque, int fd);

/* Stop waiting for room to send (and forget the epoll set, which
 * belongs to the socket it holds). */
static void
netdev_vsw_tx_unwatch(struct netdev_vsw *n, bool close_set)
{
	if (n->watching_tx)
		evloop_del_fd(n->vm->loop, n->wfd);
	n->watching_tx = false;
	if (close_set && n->wfd >= 0) {
		close(n->wfd);
		n->wfd = -1;
	}
}

static void
netdev_vsw_on_wfd(void *opaque, int fd)
{
	struct netdev_vsw *n = opaque;

	if (fd != n->wfd || !n->watching_tx)
		return;
	netdev_vsw_tx_unwatch(n, false);
	if (n->state == NETDEV_VSW_UP && n->on_tx != NULL)
		n->on_tx(n->opaque);
}

int
netdev_vsw_wait_tx(struct netdev_vsw *n)
{
	struct epoll_event e = { .events = EPOLLOUT };
	int err;

	if (n->state != NETDEV_VSW_UP)
		return -ENOTCONN;
	if (n->watching_tx)
		return 0;
	if (n->wfd < 0) {
		if ((n->wfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
			return -errno;
		if (epoll_ctl(n->wfd, EPOLL_CTL_ADD, n->fd, &e) < 0) {
			err = -errno;
			netdev_vsw_tx_unwatch(n, true);
			return err;
		}
	}
	if ((err = evloop_add_fd(n->vm->loop, n->wfd, netdev_vsw_on_wfd, n)) <
	    0)
		return err;
	n->watching_tx = true;
	return 0;
}

static void
netdev_vsw_arm(struct netdev_vsw *n, unsigned ms)
{
	if (!n->closing)
		vtimer_arm(&n->timer, vclock_ns() + (uint64_t)ms * 1000000);
}

static void
netdev_vsw_watch(struct netdev_vsw *n, bool on)
{
	if (n->fd < 0 || on == n->watching)
		return;
	if (on && evloop_add_fd(n->vm->loop, n->fd, netdev_vsw_on_fd, n) < 0) {
		log_warnx("%s: cannot watch the switch socket", n->name);
		return;
	}
	if (!on)
		evloop_del_fd(n->vm->loop, n->fd);
	n->watching = on;
}

/* Watch the socket while a welcome is awaited or frames are wanted. */
static void
netdev_vsw_update_watch(struct netdev_vsw *n)
{
	netdev_vsw_watch(n, n->state == NETDEV_VSW_HELLO ||
	    (n->state == NETDEV_VSW_UP && n->want_rx));
}

void
netdev_vsw_drop(struct netdev_vsw *n, const char *why)
{
	bool was_up = n->state == NETDEV_VSW_UP;

	netdev_vsw_tx_unwatch(n, true);
	if (n->fd >= 0) {
		netdev_vsw_watch(n, false);
		close(n->fd);
		n->fd = -1;
	}
	n->state = NETDEV_VSW_DOWN;
	if (was_up)
		log_warnx("%s: switch port %u lost (%s); link down, "
		    "reconnecting", n->name, n->port, why);
	netdev_vsw_arm(n, NETDEV_VSW_RETRY_MS);
	if (was_up && n->on_link != NULL)
		n->on_link(n->opaque, false);
}

static int
netdev_vsw_socket(void)
{
	int fd, sz = NETDEV_VSW_SNDBUF;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* FORCE passes wmem_max when we may; else take what we get. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	return fd;
}

/* Connect and say hello; the welcome arrives on the event loop. */
static int
netdev_vsw_connect(struct netdev_vsw *n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if ((err = vsw_socket_path(NULL, sa.sun_path, sizeof(sa.sun_path))) <
	    0)
		return err;
	if ((fd = netdev_vsw_socket()) < 0)
		return fd;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, &n->hello, sizeof(n->hello), MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(n->hello)) {
		err = -errno;
		close(fd);
		return err;
	}
	n->fd = fd;
	n->state = NETDEV_VSW_HELLO;
	netdev_vsw_update_watch(n);
	return 0;
}

/*
 * While the owner takes no frames the socket is not watched, and so
 * neither is its end: look for a hang-up now and then, so the guest
 * learns of a vanished switch even with a full receive ring.
 */
static void
netdev_vsw_check(struct netdev_vsw *n)
{
	struct pollfd p = { n->fd, 0, 0 };

	if (!n->watching && poll(&p, 1, 0) == 1 &&
	    (p.revents & (POLLHUP | POLLERR))) {
		netdev_vsw_drop(n, "switch closed");
		return;
	}
	netdev_vsw_arm(n, NETDEV_VSW_RETRY_MS);
}

static void
netdev_vsw_on_timer(void *opaque)
{
	struct netdev_vsw *n = opaque;
	bool quick;
	int err;

	if (n->state == NETDEV_VSW_HELLO) {
		netdev_vsw_drop(n, "no welcome from the switch");
		return;
	}
	if (n->state == NETDEV_VSW_UP) {
		netdev_vsw_check(n);
		return;
	}
	if ((err = netdev_vsw_connect(n)) < 0) {
		/* Nothing listens before our first port: start the switch
		 * (on demand, as DESIGN.md has it) and find it on a later
		 * try.  Once we had a port, a switch that went away was
		 * stopped by someone: wait for it rather than overrule. */
		if (!n->ever_up && !n->spawned && (err == -ENOENT ||
		    err == -ECONNREFUSED)) {
			n->spawned = true;
			if (vswitch_client_spawn(NULL) < 0)
				log_warn("%s: cannot start the switch", n->name);
			netdev_vsw_arm(n, NETDEV_VSW_SPAWN_MS);
			return;
		}
		/* A switch we started gets NETDEV_VSW_SPAWN_TRIES quick
		 * looks.  Said once: a VM may well run without its switch. */
		quick = n->spawned && !n->ever_up &&
		    n->failures < NETDEV_VSW_SPAWN_TRIES;
		if (!quick && !n->said) {
			n->said = true;
			log_info("%s: no switch for port group %s (%s); link "
			    "down, retrying every %d ms", n->name,
			    n->hello.portgroup, strerror(-err),
			    NETDEV_VSW_RETRY_MS);
		}
		n->failures++;
		netdev_vsw_arm(n, quick ? NETDEV_VSW_SPAWN_MS :
		    NETDEV_VSW_RETRY_MS);
		return;
	}
	/* Bound the wait for the welcome. */
	netdev_vsw_arm(n, NETDEV_VSW_RETRY_MS);
}

static void
netdev_vsw_welcome(struct netdev_vsw *n)
{
	struct vsw_welcome w;
	ssize_t r;

	r = recv(n->fd, &w, sizeof(w), MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r != (ssize_t)sizeof(w) || w.magic != VSW_MAGIC ||
	    w.version != VSW_VERSION) {
		netdev_vsw_drop(n, r == 0 ? "switch closed" :
		    "not a switch's welcome");
		return;
	}
	if (w.status != 0) {
		w.message[sizeof(w.message) - 1] = '\0';
		if (n->failures++ == 0)
			log_warnx("%s: the switch refused port group %s: %s",
			    n->name, n->hello.portgroup, w.message);
		netdev_vsw_drop(n, "refused");
		return;
	}
	n->state = NETDEV_VSW_UP;
	n->ever_up = true;
	netdev_vsw_arm(n, NETDEV_VSW_RETRY_MS);	/* the hang-up check */
	n->port = w.port;
	n->failures = 0;
	n->said = false;
	log_info("%s: on switch port %u, port group %s", n->name, n->port,
	    n->hello.portgroup);
	netdev_vsw_update_watch(n);
	if (n->on_link != NULL)
		n->on_link(n->opaque, true);
}

static void
netdev_vsw_on_fd(void *opaque, int fd)
{
	struct netdev_vsw *n = opaque;

	/* The loop may call a slot whose fd was replaced meanwhile. */
	if (fd != n->fd)
		return;
	if (n->state == NETDEV_VSW_HELLO)
		netdev_vsw_welcome(n);
	else if (n->state == NETDEV_VSW_UP && n->want_rx && n->on_rx != NULL)
		n->on_rx(n->opaque);
}

/* The idle source: a halted vCPU may take frames itself (vm_idle.c),
 * when the loop would (UP, frames wanted, the socket watched). */
static int
netdev_vsw_idle_fd(void *opaque)
{
	struct netdev_vsw *n = opaque;

	return n->state == NETDEV_VSW_UP && n->want_rx && n->watching ?
	    n->fd : -1;
}

static void
netdev_vsw_idle_run(void *opaque)
{
	struct netdev_vsw *n = opaque;

	netdev_vsw_on_fd(n, n->fd);
}

int
netdev_vsw_init(struct netdev_vsw *n, struct vm *vm, const char *name,
    const char *portgroup, const uint8_t mac[6], uint32_t features)
{
	const char *vmname = vm->cfg != NULL ? vm->cfg->name : "";

	memset(n, 0, sizeof(*n));
	n->vm = vm;
	n->fd = n->wfd = -1;
	snprintf(n->name, sizeof(n->name), "%s", name);
	if (strlen(portgroup) >= sizeof(n->hello.portgroup))
		return -ENAMETOOLONG;
	n->hello.magic = VSW_MAGIC;
	n->hello.version = VSW_VERSION;
	n->hello.features = features;
	memcpy(n->hello.mac, mac, 6);
	snprintf(n->hello.portgroup, sizeof(n->hello.portgroup), "%s",
	    portgroup);
	snprintf(n->hello.vm, sizeof(n->hello.vm), "%s", vmname);
	snprintf(n->hello.nic, sizeof(n->hello.nic), "%s", name);
	vtimer_init(&n->timer, vm->loop, netdev_vsw_on_timer, n);
	/* Without it (too many NICs) the event thread alone receives. */
	if (vm_idle_add(vm, netdev_vsw_idle_fd, netdev_vsw_idle_run, n) < 0)
		log_debug("%s: no idle source left", n->name);
	/* First attempt from the loop, as every later one. */
	vtimer_arm(&n->timer, vclock_ns());
	return 0;
}

void
netdev_vsw_fini(struct netdev_vsw *n)
{
	n->closing = true;
	vm_idle_del(n->vm, n);
	vtimer_cancel(&n->timer);
	netdev_vsw_tx_unwatch(n, true);
	if (n->fd >= 0) {
		netdev_vsw_watch(n, false);
		close(n->fd);
		n->fd = -1;
	}
	n->state = NETDEV_VSW_DOWN;
}

bool
netdev_vsw_up(const struct netdev_vsw *n)
{
	return n->state == NETDEV_VSW_UP;
}

void
netdev_vsw_want_rx(struct netdev_vsw *n, bool on)
{
	n->want_rx = on;
	netdev_vsw_update_watch(n);
}

int
netdev_vsw_send(struct netdev_vsw *n, struct mmsghdr *m, unsigned cnt)
{
	int r;

	if (n->state != NETDEV_VSW_UP)
		return -ENOTCONN;
	if (cnt == 0)
		return 0;
	r = sendmmsg(n->fd, m, cnt, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r >= 0)
		return r;
	if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR)
		return 0;
	if (errno == EMSGSIZE)
		return -EMSGSIZE;
	netdev_vsw_drop(n, strerror(errno));
	return -ENOTCONN;
}

int
netdev_vsw_recv(struct netdev_vsw *n, struct mmsghdr *m, unsigned cnt)
{
	int r;

	if (n->state != NETDEV_VSW_UP)
		return -ENOTCONN;
	r = recvmmsg(n->fd, m, cnt, MSG_DONTWAIT, NULL);
	if (r < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		netdev_vsw_drop(n, strerror(errno));
		return -ENOTCONN;
	}
	/* End of file reads as an empty message; a frame never is. */
	for (int i = 0; i < r; i++)
		if (m[i].msg_len == 0) {
			if (i > 0)
				return i;
			netdev_vsw_drop(n, "switch closed");
			return -ENOTCONN;
		}
	return r;
}
