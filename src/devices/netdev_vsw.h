/*
 * A NIC's connection to the host's switch (`termvisor switch`), the
 * backend of virtio_net.c: the protocol of vswitch/vswitch_proto.h over
 * a SOCK_SEQPACKET socket served by the VM's event loop.
 *
 * The connection is a small state machine that never blocks the loop:
 * DOWN (no socket; a timer retries every NETDEV_VSW_RETRY_MS; when no
 * switch listens before the first port, one is started), HELLO
 * (connected, hello sent, waiting for the welcome, bounded by the same
 * timer) and UP (frames flow).  Whenever the switch goes away (EOF, a
 * send error, a refusal) the connection drops to DOWN and the owner
 * hears of it through on_link; a switch that comes back is found by the
 * next retry.
 *
 * All calls, and the callbacks, with the device lock held.
 */
#ifndef TV_NETDEV_VSW_H
#define TV_NETDEV_VSW_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/evloop.h"
#include "vswitch/vswitch_proto.h"

#define NETDEV_VSW_RETRY_MS	1000
#define NETDEV_VSW_SPAWN_MS	100	/* looks after starting a switch, */
#define NETDEV_VSW_SPAWN_TRIES	50	/* this many of them */

struct vm;

enum netdev_vsw_state { NETDEV_VSW_DOWN, NETDEV_VSW_HELLO, NETDEV_VSW_UP };

struct netdev_vsw {
	struct vm *vm;
	int fd;
	enum netdev_vsw_state state;
	bool watching;		/* fd is in the event loop */
	bool want_rx;		/* the owner can take frames now */
	bool closing;
	bool ever_up;		/* had a port once: never start a switch */
	bool spawned;		/* started one already */
	bool said;		/* logged that the switch is missing */
	struct vsw_hello hello;
	uint32_t port;		/* the switch's port number, once UP */
	struct vtimer timer;	/* retry (DOWN) or welcome timeout (HELLO) */
	char name[32];		/* for messages: "net0" */
	unsigned failures;	/* connect attempts since the last UP */
	/* Waiting for room to send: an epoll set holding fd for POLLOUT,
	 * itself watched by the loop (which only watches for input). */
	int wfd;
	bool watching_tx;
	/* Frames are waiting (UP and want_rx). */
	void (*on_rx)(void *opaque);
	/* The socket has room again (after netdev_vsw_wait_tx). */
	void (*on_tx)(void *opaque);
	/* The connection came up or went down. */
	void (*on_link)(void *opaque, bool up);
	void *opaque;
};

/*
 * Set n up for the port group and MAC (features: VSW_F_* the NIC can
 * receive) and start connecting.  Never fails for want of a switch: the
 * link is simply down until one answers.  0 or -errno.
 */
int netdev_vsw_init(struct netdev_vsw *n, struct vm *vm, const char *name,
    const char *portgroup, const uint8_t mac[6], uint32_t features);
/* Close the connection and stop retrying. */
void netdev_vsw_fini(struct netdev_vsw *n);
/* Is the port up? */
bool netdev_vsw_up(const struct netdev_vsw *n);

/*
 * Send cnt messages (each a vsw_net_hdr and a frame) without blocking.
 * Returns how many the socket took (0 when it is full: try again
 * later), or -ENOTCONN when the connection is not up or just broke.
 */
int netdev_vsw_send(struct netdev_vsw *n, struct mmsghdr *m, unsigned cnt);
/*
 * Receive up to cnt messages without blocking.  Returns how many
 * (msg_len and msg_hdr.msg_flags set; MSG_TRUNC marks one too long for
 * its buffers), 0 when none are waiting, or -ENOTCONN.
 */
int netdev_vsw_recv(struct netdev_vsw *n, struct mmsghdr *m, unsigned cnt);
/*
 * The socket was full: call on_tx once it has room again (a quarter
 * of its buffer free), so the sender resumes at once rather than
 * polling.  0, or -errno (not up; then retry by other means).
 */
int netdev_vsw_wait_tx(struct netdev_vsw *n);
/* Whether on_rx should be called for waiting frames (flow control: off
 * while the guest has no receive buffers). */
void netdev_vsw_want_rx(struct netdev_vsw *n, bool on);
/* Close the connection as if the switch had gone (tests, errors). */
void netdev_vsw_drop(struct netdev_vsw *n, const char *why);

#endif
