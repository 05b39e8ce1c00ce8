/*
 * The virtual switch's data plane: port groups, ports, the MAC table
 * and the forwarding decision, apart from the event loop that feeds it
 * (vswitch_server.c), so unit tests can drive it over socketpairs.
 *
 * A port group is one L2 domain: frames never cross between port
 * groups.  Each has an optional VLAN id (1-4094) under which it is
 * carried on trunk ports; a port group with VLAN 0 is local to the
 * switch's access ports (and its VXLAN peers).  Port kinds:
 *   NIC    a VM's NIC over SOCK_SEQPACKET (vswitch_proto.h), access
 *          port of one port group, or of a trunk port group;
 *   TAP    the uplink, a TAP device in one port group (or a trunk);
 *   PEER   a VXLAN peer (RFC 7348): every port group, by VNI;
 *   PCAP   the uplink as a host NIC through libpcap (capture and
 *          injection), in one port group.
 * A port in a trunk port group sends and receives 802.1Q-tagged frames
 * for the VLANs of the trunk's list; everything else is untagged.
 *
 * Work is done in batches: vsw_port_input() takes one message and queues
 * its copies on the destination ports (referencing the caller's buffer,
 * which must live until vsw_flush()), vsw_flush() sends every queue with
 * one sendmmsg per port.
 *
 * Backpressure, as pause frames or vhost's ring would: a unicast frame
 * from a NIC or TAP port that a full NIC socket does not take is copied
 * to that port's backlog (bounded: VSW_BACKLOG messages, VSW_BACKLOG_BYTES)
 * and its source is paused (the server stops reading it) until the
 * backlog has drained, on POLLOUT (vsw_port_writable()).  So a fast
 * sender is slowed to what its receiver takes, rather than dropped and
 * made to retransmit.  Nothing lets one port stall the others: flooded
 * frames never pause anyone (they are dropped for a full port, as
 * before); a paused source only waits for the ports it sends to; a full
 * port that takes nothing for VSW_STALL_NS (a dead or stopped guest) is
 * "stuck" (vsw_backlog_tick(), from the server's 1 s tick, so after
 * 0.5-1.5 s): its sources resume and what its backlog
 * cannot hold is dropped and counted (tx_full) until it drains.
 */
#ifndef TV_VSWITCH_H
#define TV_VSWITCH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "vswitch/vswitch_proto.h"

#define VSW_MAX_PG		64
#define VSW_MAX_PORTS		256
#define VSW_FDB_MAX		8192		/* learned MACs, all groups */
#define VSW_AGING_NS		(300ull * 1000000000ull)
#define VSW_BATCH		32		/* messages per port per pass */
#define VSW_TXQ			256		/* queued messages per port */
#define VSW_VXLAN_PORT		4789
#define VSW_NAME_MAX		64
#define VSW_RXSZ		(VSW_MAX_MSG + 64)	/* room to see oversize */
#define VSW_BACKLOG		256		/* messages held per full port */
#define VSW_BACKLOG_BYTES	(4u << 20)
#define VSW_STALL_NS		(500ull * 1000000ull)	/* then: stuck */

enum vsw_port_kind { VSW_PORT_NIC, VSW_PORT_TAP, VSW_PORT_PEER, VSW_PORT_PCAP };

/* Per port counters (what `switch show` prints). */
struct vsw_stats {
	uint64_t rx_packets, rx_bytes;
	uint64_t tx_packets, tx_bytes;
	uint64_t rx_malformed;		/* short, long, bad header */
	uint64_t rx_vlan;		/* tag not allowed on this port */
	uint64_t tx_full;		/* destination socket full */
	uint64_t tx_offload;		/* offload the port cannot take */
	uint64_t tx_error;
	uint64_t rx_shaped;		/* over the port group's rate */
	uint64_t tx_held;		/* held in the backlog (then sent) */
	uint64_t rx_paused;		/* times a full port paused it */
};

struct vsw_pg {
	bool used;
	bool trunk;			/* ports here see tagged frames */
	bool automatic;			/* made for a hello, not configured */
	char name[VSW_NAME_MAX];
	uint16_t vlan;			/* 0: not carried on trunks */
	uint32_t vni;			/* VXLAN network id */
	uint8_t vlans[4096 / 8];	/* trunk: which VLANs it carries */
	uint64_t shape_bps;		/* per port ingress rate, 0: none */
	uint64_t shape_burst;		/* bytes */
	uint64_t frames, flooded;
};

struct vsw_txent {
	struct vsw_net_hdr hdr;		/* per destination: offsets move */
	uint8_t tag[4];			/* 802.1Q tag, when tagged */
	uint8_t vxlan[8];		/* VXLAN header, to a peer */
	struct iovec iov[5];
	int niov;
	size_t len;
	int src;			/* the port it came from */
	bool pause;			/* may pause src when q is full */
};

/* A message held for a full port: one copy, header and frame. */
struct vsw_blmsg {
	uint8_t *buf;
	size_t len;			/* message bytes */
	size_t flen;			/* frame bytes, for tx_bytes */
};

struct vsw_port {
	int id;
	enum vsw_port_kind kind;
	int fd;				/* NIC, TAP; PEER: the UDP socket */
	void *pcap;			/* PCAP: its pcap_t */
	int pg;				/* index in vsw.pgs; PEER: -1 */
	bool dead;			/* being removed */
	uint32_t features;		/* VSW_F_* it takes */
	uint8_t mac[6];
	char vm[64], nic[16];
	char name[VSW_NAME_MAX];	/* "vm:nic", "tap:IF", "peer:ADDR" */
	struct sockaddr_storage addr;	/* PEER */
	socklen_t addrlen;
	uint64_t since_ns;
	struct vsw_stats st;
	/* Token bucket of its port group's shaping: bytes, refilled at
	 * shape_bps / 8 per second up to shape_burst. */
	uint64_t tokens, tokens_ns;
	/* Output waiting for vsw_flush(). */
	struct vsw_txent *txq;
	int ntx;
	bool dirty;			/* on the flush list */
	/* Capture of this port's traffic (vswitch_capture.c). */
	struct vsw_capture *cap;
	/* Backpressure (see the top): held messages, a ring of
	 * VSW_BACKLOG; when one was last sent; the sources this port
	 * paused (bits by port id); how many full ports pause this one. */
	struct vsw_blmsg *bl;
	int blhead, nbl;
	size_t blbytes;
	uint64_t bl_sent_ns;
	bool stuck;
	uint8_t pausing[VSW_MAX_PORTS / 8];
	int paused;
};

struct vsw_fdb_ent {
	uint8_t mac[6];
	uint16_t pg;
	int port;			/* port id */
	uint64_t seen_ns;
	struct vsw_fdb_ent *next;	/* hash chain or free list */
};

struct vsw_fdb {
	struct vsw_fdb_ent *pool;	/* VSW_FDB_MAX entries */
	struct vsw_fdb_ent *free;
	struct vsw_fdb_ent *buckets[1024];
	int count;
	uint64_t aging_ns;
	uint64_t learned, moved, aged, full;
};

struct vsw_capture;

struct vsw {
	char name[VSW_NAME_MAX];
	struct vsw_pg pgs[VSW_MAX_PG];
	struct vsw_port *ports[VSW_MAX_PORTS];	/* by id, NULL: free */
	int next_id;
	struct vsw_fdb fdb;
	int vxlan_fd;			/* UDP socket for peers, -1 */
	uint16_t vxlan_port;
	/* Ports with queued output, flushed by vsw_flush(). */
	struct vsw_port *dirty[VSW_MAX_PORTS];
	int ndirty;
	/* Buffers that live until the next flush (segments). */
	void **scratch;
	int nscratch, scratchcap;
	struct vsw_capture *caps;	/* active captures */
	uint8_t *rxbuf;			/* VSW_BATCH x VSW_RXSZ */
	uint64_t rx_unknown_port;	/* frames for ports that left */
	uint64_t segmented;		/* GSO frames we segmented */
	uint64_t csum_done;		/* checksums we completed */
	/* Told when what port p waits for changed: read it unless
	 * p->paused, wait for room to write while p->nbl > 0. */
	void (*watch)(void *opaque, struct vsw_port *p);
	void *watch_opaque;
};

/* Set up / tear down a switch (no sockets of its own). */
int vsw_init(struct vsw *sw, const char *name);
void vsw_fini(struct vsw *sw);

/*
 * Port groups.  vsw_pg_add: vlan 0-4094; trunk with a VLAN list ("all",
 * or "10,20-30").  Returns the index or -errno (-EEXIST: name taken,
 * -EADDRINUSE: another group has that VLAN, -ENOSPC, -EINVAL with err).
 */
int vsw_pg_add(struct vsw *sw, const char *name, int vlan, const char *trunk,
    char *err, size_t errlen);
/* Index of port group name, or -ENOENT. */
int vsw_pg_find(const struct vsw *sw, const char *name);
/*
 * Shape every port of group pg: what each port sends is policed to bps
 * bits per second with bursts of burst bytes (0: a tenth of a second's
 * worth, at least 64 KiB); bps 0 turns it off.
 */
void vsw_pg_shape(struct vsw *sw, int pg, uint64_t bps, uint64_t burst);
/* Parse "RATE[/BURST]": RATE bits/s with K, M or G (x1000), BURST bytes
 * with K, M (x1024).  0 or -EINVAL. */
int vsw_shape_parse(const char *s, uint64_t *bps, uint64_t *burst);
/* Remove a port group: -EBUSY while ports are in it. */
int vsw_pg_del(struct vsw *sw, const char *name);
/* Parse a trunk VLAN list into bits; 0 or -EINVAL. */
int vsw_vlan_list(const char *s, uint8_t bits[4096 / 8]);

/*
 * Check a hello message (len bytes) and fill *h.  0, or -EPROTO /
 * -EINVAL with a sentence in err (sent back in the welcome).
 */
int vsw_hello_check(const void *buf, size_t len, struct vsw_hello *h,
    char *err, size_t errlen);

/* Add a NIC port for fd after its hello (its port group must exist).
 * The port, or NULL with err set. */
struct vsw_port *vsw_port_add_nic(struct vsw *sw, int fd,
    const struct vsw_hello *h, char *err, size_t errlen);
/* Add a TAP or PEER port.  pg: index, or -1 for a peer. */
struct vsw_port *vsw_port_add(struct vsw *sw, enum vsw_port_kind kind, int fd,
    int pg, const char *name, uint32_t features);
/* Remove a port: its MACs are forgotten, fd is NOT closed. */
void vsw_port_del(struct vsw *sw, struct vsw_port *p);
struct vsw_port *vsw_port_find(const struct vsw *sw, const char *name);

/*
 * One message from port p: vsw_net_hdr + Ethernet frame (tagged on a
 * trunk port).  Checked, learned, forwarded to the queues of its
 * destinations.  buf must stay valid until vsw_flush() (it may be
 * modified: checksums completed in place).  0, or -EINVAL when dropped
 * as malformed (counted).
 */
int vsw_port_input(struct vsw *sw, struct vsw_port *p, uint8_t *buf,
    size_t len);
/* Input that arrived from a VXLAN peer (frame without a vnet header). */
int vsw_peer_input(struct vsw *sw, struct vsw_port *peer, uint32_t vni,
    uint8_t *frame, size_t len);
/* Send every queued message (sendmmsg/writev/sendto); drops counted. */
void vsw_flush(struct vsw *sw);
/* Receive a batch from a NIC port and forward it.  Returns messages
 * read; -errno when the port is gone (EOF or error). */
int vsw_port_recv(struct vsw *sw, struct vsw_port *p);
/* Port q's socket has room (POLLOUT): send its backlog; once it is
 * empty the sources q paused resume. */
void vsw_port_writable(struct vsw *sw, struct vsw_port *q);
/* Now and then (the server's tick): full ports that took nothing for
 * VSW_STALL_NS become stuck and let their sources go. */
void vsw_backlog_tick(struct vsw *sw, uint64_t now_ns);

/* Keep buf until the next vsw_flush() (frees it then). 0/-ENOMEM.
 * sw NULL: 0, the caller keeps and frees it (a NIC segmenting). */
int vsw_scratch_keep(struct vsw *sw, void *buf);

/* The MAC table (vswitch_fdb.c); now_ns from vclock_ns(). */
int vsw_fdb_init(struct vsw_fdb *f);
void vsw_fdb_fini(struct vsw_fdb *f);
void vsw_fdb_learn(struct vsw_fdb *f, uint16_t pg, const uint8_t mac[6],
    int port, uint64_t now_ns);
/* Port id for (pg, mac), or -1 (unknown or aged out). */
int vsw_fdb_lookup(struct vsw_fdb *f, uint16_t pg, const uint8_t mac[6],
    uint64_t now_ns);
/* Forget everything learned on port (-1: on every port), or in pg. */
void vsw_fdb_flush_port(struct vsw_fdb *f, int port);
void vsw_fdb_flush_pg(struct vsw_fdb *f, uint16_t pg);
/* Drop entries older than the aging time; at most budget visited
 * buckets (bounded work per loop pass). */
void vsw_fdb_age(struct vsw_fdb *f, uint64_t now_ns);

/*
 * Offloads (vswitch_offload.c).  vsw_hdr_check: is the header sane for a
 * frame of len bytes (0/-EINVAL).  vsw_csum_complete: compute the
 * checksum a NEEDS_CSUM header asks for, in place.  vsw_gso_segment:
 * cut a TCP GSO frame into MSS-sized frames with their headers fixed
 * and checksums complete; returns a scratch buffer holding n frames
 * at offsets[i], lengths lens[i], or NULL (sw NULL: the caller frees
 * the buffer).
 */
int vsw_hdr_check(const struct vsw_net_hdr *h, size_t len);
int vsw_csum_complete(struct vsw_net_hdr *h, uint8_t *frame, size_t len);
uint8_t *vsw_gso_segment(struct vsw *sw, const struct vsw_net_hdr *h,
    const uint8_t *frame, size_t len, size_t *offsets, size_t *lens,
    int max, int *n);
uint16_t vsw_inet_csum(const void *buf, size_t len, uint32_t sum);

/*
 * A host NIC as the uplink (vswitch_pcap.c): open IFNAME for capture
 * (promiscuous, incoming only) and injection.  Returns a descriptor to
 * poll with *handle set, or -errno with err.  vsw_pcap_recv forwards a
 * batch; vsw_pcap_xmit sends one queued entry (0 or -errno).
 */
int vsw_pcap_open(const char *ifname, void **handle, char *err,
    size_t errlen);
void vsw_pcap_close(void *handle);
int vsw_pcap_recv(struct vsw *sw, struct vsw_port *p);
int vsw_pcap_xmit(struct vsw_port *q, const struct vsw_txent *e);

/* VXLAN (vswitch_vxlan.c): header helpers. */
void vsw_vxlan_hdr(uint8_t out[8], uint32_t vni);
/* VNI of a VXLAN header, or -EINVAL when it is not one. */
long vsw_vxlan_parse(const uint8_t *buf, size_t len);
/* Port group carrying vni, or -ENOENT. */
int vsw_pg_by_vni(const struct vsw *sw, uint32_t vni);

#endif
