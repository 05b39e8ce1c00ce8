/*
 * What a VM's NIC and the host's switch (`termvisor switch`) say to
 * each other over a Unix socket.  Shared by the NIC side
 * (src/devices/virtio_net.c and its backend) and the switch
 * (src/vswitch/).
 *
 * Socket: SOCK_SEQPACKET, at vsw_socket_path(switch name), mode 0600 in
 * the user's runtime directory (see control_socket_path()).  Message
 * boundaries are frames: no length prefix, no reassembly.
 *
 * 1. The NIC connects and sends one struct vsw_hello.
 * 2. The switch answers one struct vsw_welcome.  status 0: the port is
 *    up; otherwise -errno and a message, and the switch closes.
 * 3. From then on every message, both ways, is one frame: a struct
 *    vsw_net_hdr followed by an Ethernet frame (destination MAC first,
 *    no FCS, no 802.1Q tag: the switch adds and removes tags by port
 *    group; a trunk port sees and sends tagged frames).  The header has
 *    virtio_net_hdr_v1's layout, so a frame can carry checksum and
 *    segmentation offload (VIRTIO_NET_HDR_F_NEEDS_CSUM, GSO) from one
 *    virtio-net to another, or to a TAP with IFF_VNET_HDR, untouched.
 *    A sender that does not offload sends flags 0, gso_type 0.  A
 *    receiver must cope with any header it was not promised: the
 *    switch completes checksums and segments (or drops, counted) for
 *    a port that did not ask for offloads in its hello.
 *
 * A message that is too short, too long (more than VSW_MAX_MSG) or
 * malformed is dropped and counted, never trusted.  Either side may
 * send frames in batches (sendmmsg/recvmmsg); the socket's own buffer
 * is the queue.  Flow control needs no message: a NIC whose socket is
 * full keeps its frames and waits for room; the switch holds what a
 * full NIC socket did not take and stops reading the ports that send
 * to it until it drains (a NIC that stops reading for good is given
 * up on after a while and dropped to: see vswitch.h).
 */
#ifndef TV_VSWITCH_PROTO_H
#define TV_VSWITCH_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define VSW_MAGIC		0x57535654u	/* "TVSW" little-endian */
#define VSW_VERSION		1
#define VSW_DEFAULT_SWITCH	"vswitch0"

/* Largest frame (64 KiB GSO frame plus Ethernet header) and message. */
#define VSW_MAX_FRAME		(65535 + 14)

/* struct vsw_hello.features: offloads the port can receive. */
#define VSW_F_CSUM		(1u << 0)	/* NEEDS_CSUM frames */
#define VSW_F_GSO		(1u << 1)	/* TSO4/TSO6 frames */

struct vsw_hello {
	uint32_t magic;			/* VSW_MAGIC */
	uint16_t version;		/* VSW_VERSION */
	uint16_t reserved;
	uint32_t features;		/* VSW_F_* */
	uint8_t mac[6];			/* the NIC's MAC */
	uint8_t pad[2];
	char portgroup[64];		/* NUL-terminated */
	char vm[64];			/* VM name, for display */
	char nic[16];			/* "net0", for display */
} __attribute__((packed));

struct vsw_welcome {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved;
	int32_t status;			/* 0 or -errno */
	uint32_t port;			/* port number, for display */
	char message[128];		/* why, when status < 0 */
} __attribute__((packed));

/* virtio_net_hdr_v1's layout (virtio 1.x, section 5.1.6). */
struct vsw_net_hdr {
	uint8_t flags;			/* 1: NEEDS_CSUM, 2: DATA_VALID */
	uint8_t gso_type;		/* 0 none, 1 TCPv4, 3 UDP, 4 TCPv6 */
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;		/* always 0 on the wire */
} __attribute__((packed));

#define VSW_MAX_MSG	(sizeof(struct vsw_net_hdr) + VSW_MAX_FRAME)

/*
 * The socket path of switch `name` (VSW_DEFAULT_SWITCH when NULL):
 * "<runtime dir>/<name>.vswitch", the runtime directory being the
 * control sockets' (control_socket_path()).  0 or -ENAMETOOLONG.
 */
int vsw_socket_path(const char *name, char *path, size_t len);

/* Format a message into err (when err is non-NULL) and return ret: the
 * error convention of the switch's functions. */
int vsw_errf(char *err, size_t errlen, int ret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
