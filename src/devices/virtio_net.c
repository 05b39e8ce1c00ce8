/*
 * virtio-net on the virtio transport (virtio.c) and the switch backend
 * (netdev_vsw.c).  See virtio_net.h.
 *
 * Transmit: a kick of a transmit queue wakes the event thread (on the
 * software CPU, which exits for the kick anyway, the kicking vCPU does
 * the work itself: virtio_kick_inline), which
 * pops up to VNET_BATCH chains at a time and hands them to the socket
 * in one sendmmsg, straight from guest memory
 * (only the 12-byte header is copied, to be checked).  A full socket
 * keeps the batch (and the rest in the ring) and resumes when the socket
 * has room (POLLOUT) rather than dropping it, so a fast sender is
 * slowed, not punished with retransmissions; a link that is down drops.
 * The interrupt for a pass's completions is moderated: decided at the
 * driver's next kick or VNET_TX_IRQ_NS later (vnet_tx_irq_hold).
 *
 * Receive: the socket is watched only while some receive queue has
 * buffers (otherwise the switch holds the excess and pauses the
 * sender).  Up to VNET_BATCH frames come in per recvmmsg, on the event
 * thread, and each is copied into one popped buffer, or with MRG_RXBUF
 * (what Linux's driver then uses: small page-fragment buffers, cheap to
 * refill per frame) spread over as many as it takes; a frame that needs
 * more than the driver has given yet waits, with those behind it, for
 * the next receive kick.  TCP GSO frames (a peer's
 * TSO) arrive whole and go to a driver that negotiated GUEST_TSO4/6 as
 * one frame in one big buffer (Linux's "big packets" receive mode),
 * so the guest handles a 64 KiB burst once rather than segment by
 * segment; for any other driver they are segmented here.  Chains
 * popped but not yet
 * filled are held in order, and given back (last_avail rewound) before
 * a snapshot so none is lost.
 *
 * Everything runs with the device lock held: kicks on vCPU threads,
 * socket and timer callbacks on the event thread.
 */
#include "devices/virtio_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/device.h"
#include "devices/netdev_vsw.h"
#include "devices/virtio.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/snap.h"
#include "util/evloop.h"
#include "util/log.h"
#include "vmfs/vmx.h"
#include "vswitch/vswitch.h"

#define VNET_BATCH	32	/* frames per sendmmsg / recvmmsg */
#define VNET_HOLD	64	/* popped receive chains kept per queue: a
				 * 64 KiB frame in 1518-byte mergeable ones */
#define VNET_RX_ROUNDS	4	/* recvmmsg calls per readable event */
#define VNET_RETRY_NS	200000	/* full socket: look again after 200 us */
#define VNET_TX_IRQ_NS	200000	/* a transmit completion's interrupt waits
				 * at most this long (see vnet_tx_irq_hold) */
#define VNET_ETH_HLEN	14
#define VNET_MAX_SEGS	192	/* a 64 KiB GSO frame at a 536-byte MSS */
#define VNET_MTU	1500
/* PCI class: network controller, Ethernet. */
#define VNET_CLASS	0x020000

/* What is left after a transmit pass over a queue. */
enum vnet_tx_left { VNET_TX_DONE, VNET_TX_FULL, VNET_TX_MORE };

/* What a frame from the switch needs before the driver may have it. */
enum vnet_rx_how { VNET_RX_DROP, VNET_RX_OK, VNET_RX_SEGMENT };

/* Receive chains popped and not yet filled, oldest first. */
struct vnet_held {
	unsigned head, n;
	struct virtio_chain *c;		/* VNET_HOLD of them */
};

/* The transmit batch being sent (one for the NIC: one socket). */
struct vnet_tx {
	unsigned q;			/* queue the batch came from */
	unsigned n, sent;
	bool bulk;			/* it holds a GSO frame */
	struct virtio_chain *c;		/* VNET_BATCH */
	uint8_t hdr[VNET_BATCH][VIRTIO_NET_HDR_LEN];
	struct mmsghdr msg[VNET_BATCH];
	struct iovec *iov;		/* VNET_BATCH * (VIRTIO_QUEUE_MAX + 1) */
};

struct virtio_net {
	struct virtio_dev vd;
	struct vm *vm;
	int index;			/* NIC number in the configuration */
	char name[32];
	uint8_t mac[6];
	unsigned max_pairs, pairs;	/* offered, in use */
	uint16_t status;		/* VIRTIO_NET_S_* as the guest reads */
	bool admin_up;
	bool paused;
	bool announce_pending;		/* announce once the link is up */
	struct netdev_vsw be;

	struct vnet_held held[VIRTIO_NET_MAX_PAIRS];
	struct vnet_tx tx;
	uint32_t tx_kicked;		/* transmit queues with work left */
	bool tx_inline;			/* sent on the kicking vCPU */
	struct vtimer tx_timer;
	uint32_t tx_irq_held;		/* queues whose interrupt is held */
	struct vtimer tx_irq_timer;
	uint8_t *rxbuf;			/* VNET_BATCH * VSW_MAX_MSG */
	struct mmsghdr rxmsg[VNET_BATCH];
	struct iovec rxiov[VNET_BATCH];
	/* rxmsg[rx_next..rx_count) were received and wait for buffers
	 * (a frame that needs more mergeable buffers than the driver has
	 * given yet, and those behind it); rx_timer delivers them. */
	unsigned rx_next, rx_count;
	struct vtimer rx_timer;

	/* Counters (relaxed atomics: stats read them from any thread). */
	uint64_t rx_bytes, tx_bytes, rx_frames, tx_frames, dropped;
};

static void virtio_net_tx_run(struct virtio_net *vn);
static void vnet_announce(struct virtio_net *vn);

static void
vnet_count(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static unsigned
vnet_ctrlq(const struct virtio_net *vn)
{
	return virtio_has_feature(&vn->vd, VIRTIO_NET_F_MQ) ?
	    2 * vn->max_pairs : 2;
}

/*
 * Does queue q's ring hold chains we have not taken?  Read without
 * asking the driver for a kick: virtq_pop() does that when it finds the
 * ring empty (EVENT_IDX's avail_event), so popping only while this says
 * yes leaves the driver's kicks off until a pop finds the ring empty.
 */
static bool
vnet_ring_pending(struct virtio_net *vn, unsigned q)
{
	struct virtq *vq = &vn->vd.vq[q];

	if (!vq->enabled || vq->avail_p == NULL || !virtio_running(&vn->vd))
		return false;
	return __atomic_load_n((const uint16_t *)(const void *)
	    (vq->avail_p + 2), __ATOMIC_ACQUIRE) != vq->last_avail;
}

/* --- link and configuration --- */

static uint16_t
vnet_link_status(const struct virtio_net *vn)
{
	return vn->admin_up && netdev_vsw_up(&vn->be) ?
	    VIRTIO_NET_S_LINK_UP : 0;
}

/* Recompute the link bit; tell the driver when the status changed. */
static void
vnet_update_status(struct virtio_net *vn)
{
	uint16_t s = (uint16_t)((vn->status & ~VIRTIO_NET_S_LINK_UP) |
	    vnet_link_status(vn));

	if (s == vn->status)
		return;
	vn->status = s;
	virtio_config_notify(&vn->vd);
}

static void
virtio_net_cfg_read(struct virtio_dev *vd, unsigned off, uint8_t *data,
    unsigned len)
{
	struct virtio_net *vn = vd->opaque;
	uint8_t c[VIRTIO_NET_CFG_SIZE] = { 0 };

	memcpy(c + VIRTIO_NET_CFG_MAC, vn->mac, 6);
	bus_put(c + VIRTIO_NET_CFG_STATUS, 2, vn->status);
	bus_put(c + VIRTIO_NET_CFG_MAX_PAIRS, 2, vn->max_pairs);
	bus_put(c + VIRTIO_NET_CFG_MTU, 2, VNET_MTU);
	memcpy(data, c + off, len);
}

/* --- transmit --- */

/* Check the driver's header; false drops the frame. */
static bool
vnet_tx_header(struct virtio_net *vn, uint8_t *h, uint32_t flen)
{
	uint16_t start = (uint16_t)bus_get(h + 6, 2);
	uint16_t off = (uint16_t)bus_get(h + 8, 2);
	uint16_t hlen = (uint16_t)bus_get(h + 2, 2);
	bool csum = virtio_has_feature(&vn->vd, VIRTIO_NET_F_CSUM) &&
	    (h[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM);

	/* TCP segmentation as negotiated (the switch segments for ports
	 * that cannot take it), always with a partial checksum and a
	 * segment size; no ECN, no UDP. */
	if (h[1] != 0 && (!csum || bus_get(h + 4, 2) == 0 || hlen == 0 ||
	    hlen > flen || !((h[1] == VIRTIO_NET_HDR_GSO_TCPV4 &&
	    virtio_has_feature(&vn->vd, VIRTIO_NET_F_HOST_TSO4)) ||
	    (h[1] == VIRTIO_NET_HDR_GSO_TCPV6 &&
	    virtio_has_feature(&vn->vd, VIRTIO_NET_F_HOST_TSO6)))))
		return false;
	if (!csum) {
		memset(h, 0, VIRTIO_NET_HDR_LEN);
		return true;
	}
	if ((uint32_t)start + off + 2 > flen)
		return false;
	h[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	if (h[1] == 0) {
		bus_put(h + 2, 2, 0);	/* hdr_len, gso_size: no GSO */
		bus_put(h + 4, 2, 0);
	}
	bus_put(h + 10, 2, 0);		/* num_buffers: 0 on the wire */
	return true;
}

/* Turn chain i of the batch into message i; false drops it. */
static bool
vnet_tx_prepare(struct virtio_net *vn, unsigned i)
{
	struct vnet_tx *t = &vn->tx;
	struct virtio_chain *c = &t->c[i];
	struct iovec *iov = t->iov + (size_t)i * (VIRTIO_QUEUE_MAX + 1);
	uint32_t skip = VIRTIO_NET_HDR_LEN, flen;
	unsigned n = 1;

	if (c->out_len < VIRTIO_NET_HDR_LEN + VNET_ETH_HLEN ||
	    c->out_len - VIRTIO_NET_HDR_LEN > VSW_MAX_FRAME)
		return false;
	flen = c->out_len - VIRTIO_NET_HDR_LEN;
	virtio_chain_copy(c, false, 0, t->hdr[i], VIRTIO_NET_HDR_LEN);
	if (!vnet_tx_header(vn, t->hdr[i], flen))
		return false;
	if (t->hdr[i][1] != 0)		/* gso_type */
		t->bulk = true;
	iov[0] = (struct iovec){ t->hdr[i], VIRTIO_NET_HDR_LEN };
	for (unsigned k = 0; k < c->niov; k++) {
		struct virtio_iov *v = &c->iov[k];

		if (v->write)
			continue;
		if (skip >= v->len) {
			skip -= v->len;
			continue;
		}
		iov[n++] = (struct iovec){ v->base + skip, v->len - skip };
		skip = 0;
	}
	memset(&t->msg[i], 0, sizeof(t->msg[i]));
	t->msg[i].msg_hdr.msg_iov = iov;
	t->msg[i].msg_hdr.msg_iovlen = n;
	return true;
}

/*
 * Interrupt moderation for transmit completions, as a physical NIC's
 * (e1000's ITR, ixgbe's): the used entries are published at once, but
 * whether the driver wants an interrupt for them is decided at the
 * driver's next kick or VNET_TX_IRQ_NS later, whichever comes first.
 * A driver that keeps transmitting reclaims its buffers itself before
 * each kick (Linux's start_xmit does) and moves used_event past them,
 * so the decision at the kick is "no": a stream of small frames costs
 * the guest one interrupt per VNET_TX_IRQ_NS rather than one per pass
 * (iperf3 -u -l 64 on the software CPU: one interrupt per 22 frames
 * instead of per 2, a fifth less host CPU per frame).  A driver that
 * stops gets its interrupt within the bound.
 * Not for a batch with a GSO frame: TCP's small queues (TSQ) hold a
 * bulk sender until its few 64 KiB frames are reclaimed, so there the
 * interrupt is what lets the stream go on, and one per 64 KiB is cheap.
 * Deciding late is the device's right: it is as if it took that long
 * between writing the used index and reading used_event, which the
 * driver's protocol (enable, then look again) already allows for.
 */
static void
vnet_tx_irq_hold(struct virtio_net *vn, unsigned q)
{
	vn->tx_irq_held |= 1u << q;
	if (vtimer_armed(&vn->tx_irq_timer))
		return;
	/* On the kicking vCPU, a wake of the event thread per hold would
	 * cost what the inline send saved: the bound is then the loop's
	 * next wake (the guest's own timer, or the vCPU going idle). */
	if (vn->tx_inline)
		vtimer_arm_lazy(&vn->tx_irq_timer, vclock_ns() + VNET_TX_IRQ_NS);
	else
		vtimer_arm(&vn->tx_irq_timer, vclock_ns() + VNET_TX_IRQ_NS);
}

/* Decide now for queue q. */
static void
vnet_tx_irq_now(struct virtio_net *vn, unsigned q)
{
	vn->tx_irq_held &= ~(1u << q);
	virtq_notify(&vn->vd, q);
}

/* Decide now for every held queue. */
static void
vnet_tx_irq_release(struct virtio_net *vn)
{
	while (vn->tx_irq_held != 0)
		vnet_tx_irq_now(vn, (unsigned)__builtin_ctz(vn->tx_irq_held));
}

static void
virtio_net_tx_irq_timer(void *opaque)
{
	vnet_tx_irq_release(opaque);
}

/* Give the whole batch back to the driver (sent or dropped). */
static void
vnet_tx_complete(struct virtio_net *vn)
{
	struct vnet_tx *t = &vn->tx;

	for (unsigned i = 0; i < t->n; i++)
		virtq_push(&vn->vd, t->q, t->c[i].head, 0);
	if (t->n > 0 && t->bulk)
		vnet_tx_irq_now(vn, t->q);
	else if (t->n > 0)
		vnet_tx_irq_hold(vn, t->q);
	t->n = t->sent = 0;
}

/* Send what is left of the batch; true when it is all gone. */
static bool
vnet_tx_flush(struct virtio_net *vn)
{
	struct vnet_tx *t = &vn->tx;

	while (t->sent < t->n) {
		int r = netdev_vsw_send(&vn->be, &t->msg[t->sent],
		    t->n - t->sent);

		if (r == 0)
			return false;		/* socket full: retry later */
		if (r == -EMSGSIZE) {
			vnet_count(&vn->dropped, 1);
			t->sent++;
			continue;
		}
		if (r < 0) {
			vnet_count(&vn->dropped, t->n - t->sent);
			break;			/* the switch went away */
		}
		for (int k = 0; k < r; k++) {
			/* msg_len is now what went: header and frame. */
			vnet_count(&vn->tx_bytes, t->msg[t->sent + k].msg_len -
			    VIRTIO_NET_HDR_LEN);
			vnet_count(&vn->tx_frames, 1);
		}
		t->sent += r;
	}
	vnet_tx_complete(vn);
	return true;
}

/* Pop up to a batch from queue q into vn->tx; returns how many. */
static unsigned
vnet_tx_fill(struct virtio_net *vn, unsigned q)
{
	struct vnet_tx *t = &vn->tx;
	bool up = vnet_link_status(vn) != 0, dropped = false;
	unsigned n = 0;

	t->q = q;
	t->sent = 0;
	t->bulk = false;
	while (n < VNET_BATCH && virtq_pop(&vn->vd, q, &t->c[n]) == 1) {
		if (up && vnet_tx_prepare(vn, n)) {
			n++;
			continue;
		}
		/* Dropped (link down, bad frame): done at once. */
		vnet_count(&vn->dropped, 1);
		virtq_push(&vn->vd, q, t->c[n].head, 0);
		dropped = true;
	}
	if (dropped)
		vnet_tx_irq_hold(vn, q);
	t->n = n;
	return n;
}

/* Drain transmit queue q, at most about one ring's worth: VNET_TX_DONE,
 * VNET_TX_FULL (the socket is) or VNET_TX_MORE (budget spent).  (Keeping
 * the driver's kicks off after a pass and looking again 100 us later, as
 * QEMU's tx=timer, was measured: a third fewer TCP Mbit/s per core.) */
static enum vnet_tx_left
vnet_tx_queue(struct virtio_net *vn, unsigned q)
{
	unsigned budget = vn->vd.vq[q].size;

	for (;;) {
		unsigned n = vnet_tx_fill(vn, q);

		if (n == 0)
			return VNET_TX_DONE;
		if (!vnet_tx_flush(vn))
			return VNET_TX_FULL;
		if (n >= budget)
			return VNET_TX_MORE;
		budget -= n;
	}
}

static void
virtio_net_tx_run(struct virtio_net *vn)
{
	enum vnet_tx_left left = VNET_TX_FULL;

	if (vn->paused)
		return;
	/* A kick (or a look after one): the driver has just reclaimed
	 * what it could, so its used_event is as fresh as it gets. */
	vnet_tx_irq_release(vn);
	if (vn->tx.n > 0 && !vnet_tx_flush(vn))
		goto later;
	for (unsigned p = 0; p < vn->max_pairs; p++) {
		unsigned q = 2 * p + 1;

		if (!(vn->tx_kicked & 1u << q))
			continue;
		if ((left = vnet_tx_queue(vn, q)) != VNET_TX_DONE)
			goto later;
		vn->tx_kicked &= ~(1u << q);
	}
	return;
later:
	/* The ring may hold more than the driver will kick for.  A full
	 * socket (the switch holds us back for a slow receiver) wakes us
	 * when it has room; the descriptors wait in the ring meanwhile. */
	if (left == VNET_TX_MORE)
		vtimer_arm(&vn->tx_timer, vclock_ns());
	else if (netdev_vsw_wait_tx(&vn->be) < 0)
		vtimer_arm(&vn->tx_timer, vclock_ns() + VNET_RETRY_NS);
}

static void
virtio_net_on_tx(void *opaque)
{
	virtio_net_tx_run(opaque);
}

static void
virtio_net_tx_timer(void *opaque)
{
	virtio_net_tx_run(opaque);
}

/* Give back a batch nobody will send (reset, snapshot, pause). */
static void
vnet_tx_abandon(struct virtio_net *vn, bool push)
{
	if (push) {
		vnet_count(&vn->dropped, vn->tx.n - vn->tx.sent);
		vnet_tx_complete(vn);
		/* Nothing held across a pause or into a saved state. */
		vnet_tx_irq_release(vn);
	}
	vn->tx.n = vn->tx.sent = 0;
	vtimer_cancel(&vn->tx_timer);
	/* Without push the rings are not the driver's any more (reset,
	 * or replaced by a loaded state): nothing to tell it. */
	vn->tx_irq_held = 0;
	vtimer_cancel(&vn->tx_irq_timer);
}

/* --- receive --- */

/*
 * Top up queue q's held chains; returns how many it holds.  Only arm
 * (when what it holds falls short) asks the driver to kick when it adds
 * buffers: otherwise the driver's refills, a kick each after every NAPI
 * poll, would cost an exit each while buffers are plentiful.
 */
static unsigned
vnet_rx_hold(struct virtio_net *vn, unsigned q, bool arm)
{
	struct vnet_held *h = &vn->held[q / 2];

	while (h->n < VNET_HOLD) {
		struct virtio_chain *c = &h->c[(h->head + h->n) % VNET_HOLD];

		if ((!arm && !vnet_ring_pending(vn, q)) ||
		    virtq_pop(&vn->vd, q, c) != 1)
			break;
		h->n++;
	}
	return h->n;
}

/* Give held chains back to the ring, newest first (rewinding
 * last_avail), so a snapshot or a reset loses none of them. */
static void
vnet_rx_unhold(struct virtio_net *vn)
{
	for (unsigned p = 0; p < vn->max_pairs; p++) {
		struct virtq *vq = &vn->vd.vq[2 * p];

		if (vq->enabled)
			vq->last_avail = (uint16_t)(vq->last_avail -
			    vn->held[p].n);
		vn->held[p].head = vn->held[p].n = 0;
	}
}

/* The receive queue for a frame: a hash of its IPv4/IPv6 flow. */
static unsigned
vnet_rx_steer(const struct virtio_net *vn, const uint8_t *f, uint32_t len)
{
	uint32_t h = 0;
	unsigned at, n;

	if (vn->pairs <= 1 || len < VNET_ETH_HLEN + 40)
		return 0;
	if (f[12] == 0x08 && f[13] == 0x00) {
		at = VNET_ETH_HLEN + 12;	/* saddr, daddr, ports */
		n = (f[VNET_ETH_HLEN] & 0x0f) == 5 ? 12 : 8;
	} else if (f[12] == 0x86 && f[13] == 0xdd) {
		at = VNET_ETH_HLEN + 8;
		n = 32;
	} else {
		return 0;
	}
	for (unsigned i = 0; i < n && at + i < len; i++)
		h = (h ^ f[at + i]) * 16777619u;
	return h % vn->pairs;
}

/* Fold a 32-bit sum into the Internet checksum. */
static uint16_t
vnet_csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* A partial checksum for a driver that cannot take one: finish it the
 * way the sender's hardware would.  false if the offsets are bad. */
static bool
vnet_csum_complete(uint8_t *f, uint32_t len, uint16_t start, uint16_t off)
{
	uint32_t s = 0;
	uint16_t c;

	if ((uint32_t)start + off + 2 > len)
		return false;
	for (uint32_t i = start; i + 1 < len; i += 2)
		s += (uint32_t)f[i] << 8 | f[i + 1];
	if ((len - start) & 1)
		s += (uint32_t)f[len - 1] << 8;
	c = vnet_csum_fold(s);
	f[start + off] = (uint8_t)(c >> 8);
	f[start + off + 1] = (uint8_t)c;
	return true;
}

/* May this driver take GSO header h as it is: a TCP segmentation type
 * it negotiated, with the partial checksum every GSO frame carries? */
static bool
vnet_rx_gso_ok(const struct virtio_net *vn, const uint8_t *h)
{
	if (!(h[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) || bus_get(h + 4, 2) == 0 ||
	    !virtio_has_feature(&vn->vd, VIRTIO_NET_F_GUEST_CSUM))
		return false;
	return (h[1] == VIRTIO_NET_HDR_GSO_TCPV4 &&
	    virtio_has_feature(&vn->vd, VIRTIO_NET_F_GUEST_TSO4)) ||
	    (h[1] == VIRTIO_NET_HDR_GSO_TCPV6 &&
	    virtio_has_feature(&vn->vd, VIRTIO_NET_F_GUEST_TSO6));
}

/* Make the switch's header one this driver accepts.  VNET_RX_SEGMENT:
 * a GSO frame the driver did not ask for, to be cut up first. */
static enum vnet_rx_how
vnet_rx_header(struct virtio_net *vn, uint8_t *h, uint8_t *f, uint32_t flen)
{
	uint16_t start = (uint16_t)bus_get(h + 6, 2);
	uint16_t off = (uint16_t)bus_get(h + 8, 2);
	bool partial = h[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM;

	if (partial && (uint32_t)start + off + 2 > flen)
		return VNET_RX_DROP;
	if (h[1] != 0) {
		if (!vnet_rx_gso_ok(vn, h) || bus_get(h + 2, 2) > flen)
			return VNET_RX_SEGMENT;
		h[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		return VNET_RX_OK;
	}
	if (!virtio_has_feature(&vn->vd, VIRTIO_NET_F_GUEST_CSUM)) {
		if (partial && !vnet_csum_complete(f, flen, start, off))
			return VNET_RX_DROP;
		memset(h, 0, VIRTIO_NET_HDR_LEN);
	} else {
		h[0] &= VIRTIO_NET_HDR_F_NEEDS_CSUM |
		    VIRTIO_NET_HDR_F_DATA_VALID;
		bus_put(h + 2, 2, 0);
		bus_put(h + 4, 2, 0);
	}
	return VNET_RX_OK;		/* num_buffers: vnet_rx_one's */
}

/* Tell the VM what the device wrote into chain c: its first n bytes. */
static void
vnet_rx_written(struct virtio_net *vn, const struct virtio_chain *c,
    uint32_t n)
{
	for (unsigned i = 0; i < c->niov && n > 0; i++) {
		uint32_t k = c->iov[i].len < n ? c->iov[i].len : n;

		if (!c->iov[i].write)
			continue;
		vm_dma_written(vn->vm, c->iov[i].gpa, k);
		n -= k;
	}
}

/* Bytes [from, from + n) of the message (header h, then frame f) into
 * chain c at offset 0. */
static void
vnet_rx_copy(struct virtio_chain *c, const uint8_t *h, const uint8_t *f,
    uint32_t from, uint32_t n)
{
	uint32_t at = 0, k;

	if (from < VIRTIO_NET_HDR_LEN) {
		k = VIRTIO_NET_HDR_LEN - from < n ? VIRTIO_NET_HDR_LEN - from : n;
		virtio_chain_copy(c, true, 0, (void *)(h + from), k);
		at = k;
		from += k;
		n -= k;
	}
	if (n > 0)
		virtio_chain_copy(c, true, at, (void *)(f + from -
		    VIRTIO_NET_HDR_LEN), n);
}

/* Fill the oldest held chain of q, len bytes written, into the used
 * ring ahead entries past its index (published by virtq_flush). */
static void
vnet_rx_fill(struct virtio_net *vn, unsigned q, uint32_t len, uint16_t ahead)
{
	struct vnet_held *hd = &vn->held[q / 2];
	struct virtio_chain *c = &hd->c[hd->head];

	vnet_rx_written(vn, c, len);
	virtq_fill(&vn->vd, q, c->head, len, ahead);
	hd->head = (hd->head + 1) % VNET_HOLD;
	hd->n--;
}

/*
 * Queue q's held chains for a message of total bytes: how many it
 * takes, topping them up from the ring.  One without MRG_RXBUF (and
 * -EMSGSIZE when the oldest is too small), -EAGAIN when the driver has
 * not given enough yet, -EMSGSIZE when more than we can hold.
 */
static int
vnet_rx_chains(struct virtio_net *vn, unsigned q, uint32_t total)
{
	struct vnet_held *hd = &vn->held[q / 2];
	uint32_t cap = 0;
	int k;

	if (!virtio_has_feature(&vn->vd, VIRTIO_NET_F_MRG_RXBUF)) {
		if (hd->n == 0 && vnet_rx_hold(vn, q, false) == 0 &&
		    vnet_rx_hold(vn, q, true) == 0)
			return -EAGAIN;
		return hd->c[hd->head].in_len < total ? -EMSGSIZE : 1;
	}
	for (k = 0; cap < total; k++) {
		if ((unsigned)k == hd->n && vnet_rx_hold(vn, q, false) ==
		    (unsigned)k && vnet_rx_hold(vn, q, true) == (unsigned)k)
			return k == VNET_HOLD ? -EMSGSIZE : -EAGAIN;
		cap += hd->c[(hd->head + (unsigned)k) % VNET_HOLD].in_len;
	}
	return k;
}

/*
 * One frame with its final header h into buffers of its flow's queue:
 * one buffer, or with MRG_RXBUF as many as it takes (num_buffers says
 * how many).  Returns the queue used; -EAGAIN to wait for buffers;
 * another -errno when it cannot be delivered (dropped by the caller).
 */
static int
vnet_rx_one(struct virtio_net *vn, uint8_t *h, const uint8_t *f,
    uint32_t flen)
{
	uint32_t total = VIRTIO_NET_HDR_LEN + flen, off = 0, n;
	unsigned q = 2 * vnet_rx_steer(vn, f, flen);
	int k;

	/* Its queue has no buffer: any queue in use will do. */
	for (unsigned p = 0; p < vn->pairs && vn->held[q / 2].n == 0; p++)
		q = 2 * p;
	if ((k = vnet_rx_chains(vn, q, total)) < 0)
		return k;
	bus_put(h + 10, 2, (uint64_t)k);	/* num_buffers */
	/* Counted before the driver can see it (stats are read from any
	 * thread, tests among them). */
	vnet_count(&vn->rx_bytes, flen);
	vnet_count(&vn->rx_frames, 1);
	for (int i = 0; i < k; i++, off += n) {
		struct vnet_held *hd = &vn->held[q / 2];
		struct virtio_chain *c = &hd->c[hd->head];

		n = c->in_len < total - off ? c->in_len : total - off;
		vnet_rx_copy(c, h, f, off, n);
		vnet_rx_fill(vn, q, n, (uint16_t)i);
	}
	/* All of the frame's buffers at once: a driver that saw the
	 * first (num_buffers = k) before the others would drop the frame
	 * ("buffers missing"), and TCP would resend a whole GSO burst. */
	virtq_flush(&vn->vd, q, (uint16_t)k);
	return (int)q;
}

/* A TCP GSO frame for a driver that takes none: its segments, each
 * with complete checksums.  Returns the queues used as bits; dropped
 * frames and segments are counted. */
static uint32_t
vnet_rx_segments(struct virtio_net *vn, const uint8_t *h, const uint8_t *f,
    uint32_t flen)
{
	size_t off[VNET_MAX_SEGS], lens[VNET_MAX_SEGS];
	uint8_t plain[VIRTIO_NET_HDR_LEN] = { 0 }, *s;
	struct vsw_net_hdr vh;
	uint32_t touched = 0;
	int n, q;

	memcpy(&vh, h, sizeof(vh));
	if (vsw_hdr_check(&vh, flen) < 0 || (s = vsw_gso_segment(NULL, &vh,
	    f, flen, off, lens, VNET_MAX_SEGS, &n)) == NULL) {
		vnet_count(&vn->dropped, 1);
		return 0;
	}
	/* Rare (a driver without GUEST_TSO): segments that find no
	 * buffer are dropped rather than kept. */
	for (int i = 0; i < n; i++) {
		if ((q = vnet_rx_one(vn, plain, s + off[i], (uint32_t)lens[i])) <
		    0)
			vnet_count(&vn->dropped, 1);
		else
			touched |= 1u << q;
	}
	free(s);
	return touched;
}

/* Deliver received message i; returns the queues used as bits, or
 * -EAGAIN when it must wait for buffers (kept). */
static int
vnet_rx_deliver(struct virtio_net *vn, unsigned i)
{
	uint8_t *h = vn->rxbuf + (size_t)i * VSW_MAX_MSG;
	uint8_t *f = h + VIRTIO_NET_HDR_LEN;
	uint32_t len = vn->rxmsg[i].msg_len, flen;
	int q = -1;

	/* The header checks are idempotent: a kept message may pass them
	 * again. */
	if (!(vn->rxmsg[i].msg_hdr.msg_flags & MSG_TRUNC) &&
	    len >= VIRTIO_NET_HDR_LEN + VNET_ETH_HLEN) {
		flen = len - VIRTIO_NET_HDR_LEN;
		switch (vnet_rx_header(vn, h, f, flen)) {
		case VNET_RX_SEGMENT:
			return (int)vnet_rx_segments(vn, h, f, flen);
		case VNET_RX_OK:
			q = vnet_rx_one(vn, h, f, flen);
			break;
		case VNET_RX_DROP:
			break;
		}
	}
	if (q == -EAGAIN)
		return q;
	if (q < 0) {
		vnet_count(&vn->dropped, 1);
		return 0;
	}
	return (int)(1u << q);
}

/* Deliver the received messages not yet delivered, in order; false
 * when one waits for buffers. */
static bool
vnet_rx_drain(struct virtio_net *vn)
{
	uint32_t touched = 0;
	bool done = true;
	int r;

	for (; vn->rx_next < vn->rx_count; vn->rx_next++) {
		if ((r = vnet_rx_deliver(vn, vn->rx_next)) == -EAGAIN) {
			done = false;
			break;
		}
		touched |= (uint32_t)r;
	}
	for (unsigned q = 0; q < vn->vd.nqueues; q++)
		if (touched & 1u << q)
			virtq_notify(&vn->vd, q);
	return done;
}

/* Frames wait on the socket (or in rxbuf, received but waiting for
 * buffers): take what the driver's buffers can hold. */
static void
virtio_net_rx_run(void *opaque)
{
	struct virtio_net *vn = opaque;

	for (int round = 0; round < VNET_RX_ROUNDS; round++) {
		unsigned room = 0;
		int n;

		if (vn->paused || !virtio_running(&vn->vd))
			break;
		for (unsigned p = 0; p < vn->pairs; p++)
			room += vnet_rx_hold(vn, 2 * p, false);
		for (unsigned p = 0; room == 0 && p < vn->pairs; p++)
			room += vnet_rx_hold(vn, 2 * p, true);
		if (room == 0 || !vnet_rx_drain(vn)) {
			/* The driver kicks a receive queue when it adds
			 * buffers (virtq_pop asked it to). */
			netdev_vsw_want_rx(&vn->be, false);
			return;
		}
		for (unsigned i = 0; i < VNET_BATCH; i++)
			vn->rxmsg[i].msg_hdr.msg_flags = 0;
		n = netdev_vsw_recv(&vn->be, vn->rxmsg, room < VNET_BATCH ?
		    room : VNET_BATCH);
		if (n <= 0)
			return;
		vn->rx_next = 0;
		vn->rx_count = (unsigned)n;
	}
	/* Deliver what the last round received. */
	if (!vn->paused && virtio_running(&vn->vd) && !vnet_rx_drain(vn)) {
		netdev_vsw_want_rx(&vn->be, false);
		return;
	}
	if (!virtio_running(&vn->vd) || vn->paused)
		netdev_vsw_want_rx(&vn->be, false);
}

static void
virtio_net_rx_timer(void *opaque)
{
	virtio_net_rx_run(opaque);
}

/* --- control queue --- */

static uint8_t
vnet_ctrl_cmd(struct virtio_net *vn, struct virtio_chain *c)
{
	uint8_t hdr[2], data[2];
	uint32_t dlen = c->out_len - 2;
	unsigned n;

	virtio_chain_copy(c, false, 0, hdr, 2);
	if (hdr[0] == VIRTIO_NET_CTRL_MQ &&
	    hdr[1] == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET && dlen == 2 &&
	    virtio_has_feature(&vn->vd, VIRTIO_NET_F_MQ)) {
		virtio_chain_copy(c, false, 2, data, 2);
		n = (unsigned)bus_get(data, 2);
		if (n < 1 || n > vn->max_pairs)
			return VIRTIO_NET_ERR;
		vn->pairs = n;
		return VIRTIO_NET_OK;
	}
	if (hdr[0] == VIRTIO_NET_CTRL_ANNOUNCE &&
	    hdr[1] == VIRTIO_NET_CTRL_ANNOUNCE_ACK &&
	    virtio_has_feature(&vn->vd, VIRTIO_NET_F_GUEST_ANNOUNCE)) {
		vn->status &= ~VIRTIO_NET_S_ANNOUNCE;
		return VIRTIO_NET_OK;
	}
	log_guest_once("%s: control command %u.%u not supported", vn->name,
	    hdr[0], hdr[1]);
	return VIRTIO_NET_ERR;
}

static void
virtio_net_ctrl(struct virtio_net *vn, unsigned q)
{
	struct virtio_chain *c = &vn->tx.c[0];
	bool any = false;

	/* The transmit batch's chains are free unless a batch waits. */
	if (vn->tx.n > 0 && (c = malloc(sizeof(*c))) == NULL)
		return;
	for (unsigned i = 0; i <= vn->vd.vq[q].size; i++) {
		uint8_t ack;

		if (virtq_pop(&vn->vd, q, c) != 1)
			break;
		if (c->out_len < 2 || c->in_len < 1) {
			virtio_needs_reset(&vn->vd, "control command without "
			    "header or ack byte");
			break;
		}
		ack = vnet_ctrl_cmd(vn, c);
		virtio_chain_copy(c, true, 0, &ack, 1);
		virtq_push(&vn->vd, q, c->head, 1);
		any = true;
	}
	if (any)
		virtq_notify(&vn->vd, q);
	if (c != &vn->tx.c[0])
		free(c);
}

/* --- virtio hooks --- */

static void
virtio_net_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_net *vn = vd->opaque;

	if (q == vnet_ctrlq(vn) && virtio_has_feature(vd,
	    VIRTIO_NET_F_CTRL_VQ)) {
		virtio_net_ctrl(vn, q);
	} else if (q >= 2 * (virtio_has_feature(vd, VIRTIO_NET_F_MQ) ?
	    vn->max_pairs : 1)) {
		log_guest_once("%s: kick of queue %u", vn->name, q);
	} else if (q % 2 == 0) {
		/* New receive buffers: frames may flow again.  The event
		 * thread copies them (the socket is level-triggered: at once
		 * if some wait), so the vCPU goes back to the guest; the
		 * buffers are taken now, which checks them. */
		if (vn->paused)
			return;
		vnet_rx_hold(vn, q, false);
		netdev_vsw_want_rx(&vn->be, true);
		if (vn->rx_next < vn->rx_count)
			vtimer_arm(&vn->rx_timer, vclock_ns());
	} else if (vn->tx_inline) {
		/* The software CPU left the guest for this kick anyway: one
		 * sendmmsg here costs less than waking the event thread to
		 * do it (a context switch each, on a busy host). */
		vn->tx_kicked |= 1u << q;
		virtio_net_tx_run(vn);
	} else {
		/* Sent from the event thread, as QEMU's tx=bh: the vCPU goes
		 * back to the guest at once, and (EVENT_IDX) the driver does
		 * not kick again until a pass found the ring empty, so a
		 * burst costs one exit rather than one per frame. */
		vn->tx_kicked |= 1u << q;
		vtimer_arm(&vn->tx_timer, vclock_ns());
	}
}

static void
virtio_net_dev_reset(struct virtio_dev *vd)
{
	struct virtio_net *vn = vd->opaque;

	/* The rings are the driver's again: forget what we took. */
	for (unsigned p = 0; p < vn->max_pairs; p++)
		vn->held[p].head = vn->held[p].n = 0;
	vnet_tx_abandon(vn, false);
	vn->tx_kicked = 0;
	vn->rx_next = vn->rx_count = 0;
	vtimer_cancel(&vn->rx_timer);
	vn->pairs = 1;
	vn->status = vnet_link_status(vn);
	netdev_vsw_want_rx(&vn->be, false);
}

static const struct virtio_dev_ops virtio_net_vops = {
	.cfg_read = virtio_net_cfg_read,
	.notify = virtio_net_notify,
	.reset = virtio_net_dev_reset,
};

/* --- backend events --- */

static void
virtio_net_on_link(void *opaque, bool up)
{
	struct virtio_net *vn = opaque;

	vnet_update_status(vn);
	if (up && !vn->paused && virtio_running(&vn->vd))
		netdev_vsw_want_rx(&vn->be, true);
	if (up && vn->announce_pending)
		vnet_announce(vn);
}

/* --- announce and link control --- */

/* A RARP for our MAC, as a switch expects after a move. */
static void
vnet_send_rarp(struct virtio_net *vn)
{
	uint8_t m[VIRTIO_NET_HDR_LEN + 60] = { 0 };
	uint8_t *f = m + VIRTIO_NET_HDR_LEN;
	struct iovec iov = { m, sizeof(m) };
	struct mmsghdr msg = { .msg_hdr = { .msg_iov = &iov,
	    .msg_iovlen = 1 } };
	static const uint8_t arp[] = { 0x80, 0x35, 0, 1, 0x08, 0x00, 6, 4,
	    0, 3 };

	memset(f, 0xff, 6);
	memcpy(f + 6, vn->mac, 6);
	memcpy(f + 12, arp, sizeof(arp));
	memcpy(f + 22, vn->mac, 6);		/* sender hardware */
	memcpy(f + 32, vn->mac, 6);		/* target hardware */
	if (netdev_vsw_send(&vn->be, &msg, 1) == 1) {
		vnet_count(&vn->tx_frames, 1);
		vnet_count(&vn->tx_bytes, 60);
	}
}

static struct virtio_net *
vnet_find(struct vm *vm, int nic)
{
	for (int i = 0; i < vm->ndevices; i++) {
		struct virtio_net *vn = vm->devices[i].state;

		if (vm->devices[i].ops == &virtio_net_ops && vn->index == nic)
			return vn;
	}
	return NULL;
}

/* Announce now, or once the link is up: a VM that just moved may not
 * have its switch port yet, and an announcement nobody hears is lost. */
static void
vnet_announce(struct virtio_net *vn)
{
	if (!vnet_link_status(vn)) {
		vn->announce_pending = true;
		return;
	}
	vn->announce_pending = false;
	if (virtio_running(&vn->vd) && virtio_has_feature(&vn->vd,
	    VIRTIO_NET_F_GUEST_ANNOUNCE)) {
		vn->status |= VIRTIO_NET_S_ANNOUNCE;
		virtio_config_notify(&vn->vd);
	} else {
		vnet_send_rarp(vn);
	}
}

void
virtio_net_announce(struct vm *vm)
{
	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].ops == &virtio_net_ops)
			vnet_announce(vm->devices[i].state);
}

int
virtio_net_set_link(struct vm *vm, int nic, bool up)
{
	struct virtio_net *vn = vnet_find(vm, nic);

	if (vn == NULL)
		return -ENODEV;
	vn->admin_up = up;
	vnet_update_status(vn);
	if (up && vn->announce_pending)
		vnet_announce(vn);
	return 0;
}

int
virtio_net_link(struct vm *vm, int nic)
{
	struct virtio_net *vn = vnet_find(vm, nic);

	if (vn == NULL)
		return -ENODEV;
	return (vn->status & VIRTIO_NET_S_LINK_UP) != 0;
}

/* --- configuration --- */

/* One KEY=VALUE of --nic, checked as its nicN.KEY would be. */
static int
vnet_arg_value(struct vmcfg_nic *n, const char *key, const char *v,
    char *err, size_t errlen)
{
	char k[32], msg[256];
	unsigned b[6];

	if (strcmp(key, "portgroup") != 0 && strcmp(key, "mac") != 0 &&
	    strcmp(key, "queues") != 0) {
		snprintf(err, errlen, "--nic: unknown setting '%s' (portgroup, "
		    "mac, queues)", key);
		return -EINVAL;
	}
	snprintf(k, sizeof(k), "nic0.%s", key);
	if (vmx_check(k, v, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "--nic %s=%s: %s", key, v, msg);
		return -EINVAL;
	}
	if (key[0] == 'p') {
		snprintf(n->portgroup, sizeof(n->portgroup), "%s", v);
	} else if (key[0] == 'q') {
		n->queues = (int)strtoul(v, NULL, 0);
	} else {
		if (sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2],
		    &b[3], &b[4], &b[5]) != 6)
			return -EINVAL;		/* vmx_check said yes */
		for (int i = 0; i < 6; i++)
			n->mac[i] = (uint8_t)b[i];
		n->mac_set = true;
	}
	return 0;
}

int
virtio_net_parse_arg(const char *arg, struct vmcfg_nic *n, char *err,
    size_t errlen)
{
	char *s = strdup(arg), *opt, *eq, *save = NULL;
	bool first = true;
	int ret = 0;

	memset(n, 0, sizeof(*n));
	if (s == NULL)
		return -ENOMEM;
	for (opt = strtok_r(s, ",", &save); opt != NULL && ret == 0;
	    opt = strtok_r(NULL, ",", &save), first = false) {
		if ((eq = strchr(opt, '=')) == NULL && first) {
			/* a bare port group name */
			ret = vnet_arg_value(n, "portgroup", opt, err, errlen);
			continue;
		}
		if (eq == NULL) {
			snprintf(err, errlen, "--nic: expected KEY=VALUE, got "
			    "'%s'", opt);
			ret = -EINVAL;
			continue;
		}
		*eq = '\0';
		ret = vnet_arg_value(n, opt, eq + 1, err, errlen);
	}
	if (ret == 0 && n->portgroup[0] == '\0') {
		snprintf(err, errlen, "--nic %s: expected [portgroup=]NAME"
		    "[,mac=52:54:00:XX:XX:XX][,queues=N]", arg);
		ret = -EINVAL;
	}
	free(s);
	return ret;
}

void
virtio_net_random_mac(uint8_t mac[6])
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)vclock_ns() ^ (uint32_t)getpid() << 12;
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = (uint8_t)(r >> 16);
	mac[4] = (uint8_t)(r >> 8);
	mac[5] = (uint8_t)r;
}

/* --- device class --- */

static void
virtio_net_free(struct virtio_net *vn)
{
	netdev_vsw_fini(&vn->be);
	vtimer_cancel(&vn->tx_timer);
	vtimer_cancel(&vn->tx_irq_timer);
	vtimer_cancel(&vn->rx_timer);
	for (unsigned p = 0; p < VIRTIO_NET_MAX_PAIRS; p++)
		free(vn->held[p].c);
	free(vn->tx.c);
	free(vn->tx.iov);
	free(vn->rxbuf);
	free(vn);
}

/* A MAC for a NIC configured without one: stable for a named VM (a hash
 * of its name and NIC number), random otherwise; 52:54:00 as others'. */
static void
vnet_default_mac(const struct vm_config *cfg, int i, uint8_t mac[6])
{
	uint32_t h = 2166136261u;
	const char *name = cfg->name;

	if (name[0] == '\0') {
		virtio_net_random_mac(mac);
		return;
	}
	for (; *name != '\0'; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	h = (h ^ (uint32_t)i) * 16777619u;
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

static unsigned
vnet_pairs(const struct vm *vm, const struct vmcfg_nic *n)
{
	int p = n->queues;

	if (p <= 0)
		p = vm->cfg->cpus < VIRTIO_NET_DEFAULT_PAIRS ? vm->cfg->cpus :
		    VIRTIO_NET_DEFAULT_PAIRS;
	return p < 1 ? 1 : p > VIRTIO_NET_MAX_PAIRS ? VIRTIO_NET_MAX_PAIRS :
	    (unsigned)p;
}

static uint64_t
vnet_features(const struct virtio_net *vn)
{
	uint64_t f = 1ull << VIRTIO_NET_F_CSUM |
	    1ull << VIRTIO_NET_F_GUEST_CSUM | 1ull << VIRTIO_NET_F_MAC |
	    1ull << VIRTIO_NET_F_HOST_TSO4 | 1ull << VIRTIO_NET_F_HOST_TSO6 |
	    1ull << VIRTIO_NET_F_GUEST_TSO4 | 1ull << VIRTIO_NET_F_GUEST_TSO6 |
	    1ull << VIRTIO_NET_F_MRG_RXBUF |
	    1ull << VIRTIO_NET_F_STATUS | 1ull << VIRTIO_NET_F_CTRL_VQ |
	    1ull << VIRTIO_NET_F_GUEST_ANNOUNCE;

	if (vn->max_pairs > 1)
		f |= 1ull << VIRTIO_NET_F_MQ;
	return f;
}

/* The transmit queues' bits: 1, 3, 5... */
static uint32_t
vnet_tx_queues(const struct virtio_net *vn)
{
	uint32_t m = 0;

	for (unsigned p = 0; p < vn->max_pairs; p++)
		m |= 1u << (2 * p + 1);
	return m;
}

static int
vnet_alloc(struct virtio_net *vn)
{
	for (unsigned p = 0; p < vn->max_pairs; p++)
		if ((vn->held[p].c = calloc(VNET_HOLD,
		    sizeof(struct virtio_chain))) == NULL)
			return -ENOMEM;
	vn->tx.c = calloc(VNET_BATCH, sizeof(struct virtio_chain));
	vn->tx.iov = calloc((size_t)VNET_BATCH * (VIRTIO_QUEUE_MAX + 1),
	    sizeof(struct iovec));
	vn->rxbuf = malloc((size_t)VNET_BATCH * VSW_MAX_MSG);
	if (vn->tx.c == NULL || vn->tx.iov == NULL || vn->rxbuf == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < VNET_BATCH; i++) {
		vn->rxiov[i] = (struct iovec){ vn->rxbuf + (size_t)i *
		    VSW_MAX_MSG, VSW_MAX_MSG };
		vn->rxmsg[i].msg_hdr.msg_iov = &vn->rxiov[i];
		vn->rxmsg[i].msg_hdr.msg_iovlen = 1;
	}
	return 0;
}

static int
virtio_net_new(struct vm *vm, int i, const struct vmcfg_nic *n)
{
	struct virtio_net *vn = calloc(1, sizeof(*vn));
	int err;

	if (vn == NULL)
		return -ENOMEM;
	vn->vm = vm;
	vn->index = i;
	vn->admin_up = true;
	vn->pairs = 1;
	vn->max_pairs = vnet_pairs(vm, n);
	snprintf(vn->name, sizeof(vn->name), "net%d", i);
	if (n->mac_set)
		memcpy(vn->mac, n->mac, 6);
	else
		vnet_default_mac(vm->cfg, i, vn->mac);
	vtimer_init(&vn->tx_timer, vm->loop, virtio_net_tx_timer, vn);
	vtimer_init(&vn->tx_irq_timer, vm->loop, virtio_net_tx_irq_timer, vn);
	vtimer_init(&vn->rx_timer, vm->loop, virtio_net_rx_timer, vn);
	if ((err = vnet_alloc(vn)) < 0)
		goto fail;
	/* We complete checksums and segment for a driver that cannot: a
	 * partial checksum and a whole GSO frame are welcome (a guest that
	 * takes GSO frames costs the software CPU one frame, not 45). */
	if ((err = netdev_vsw_init(&vn->be, vm, vn->name, n->portgroup,
	    vn->mac, VSW_F_CSUM | VSW_F_GSO)) < 0)
		goto fail;
	vn->be.on_rx = virtio_net_rx_run;
	vn->be.on_tx = virtio_net_on_tx;
	vn->be.on_link = virtio_net_on_link;
	vn->be.opaque = vn;
	if ((err = virtio_dev_init(&vn->vd, vm, vn->name, VIRTIO_ID_NET,
	    VNET_CLASS, 2 * vn->max_pairs + 1, vnet_features(vn),
	    VIRTIO_NET_CFG_SIZE, &virtio_net_vops, vn)) < 0)
		goto fail;
	vn->tx_inline = virtio_kick_inline(&vn->vd, vnet_tx_queues(vn));
	if ((err = vm_device_register(vm, &virtio_net_ops, vn, vn->name)) < 0)
		goto fail_pci;
	return 0;
fail_pci:
	virtio_dev_fini(&vn->vd);
fail:
	virtio_net_free(vn);
	return err;
}

static int
virtio_net_create(struct vm *vm)
{
	int err;

	for (int i = 0; i < vm->cfg->nnics; i++)
		if ((err = virtio_net_new(vm, i, &vm->cfg->nics[i])) < 0)
			return err;
	/* No firmware runs before a direct kernel boot: place the BARs
	 * as it would have (pci.h); already placed ones stay. */
	if (vm->cfg->nnics > 0 && (err = pci_assign_bars(vm)) < 0)
		return err;
	return 0;
}

static void
virtio_net_fini(void *state)
{
	struct virtio_net *vn = state;

	virtio_dev_fini(&vn->vd);
	virtio_net_free(vn);
}

static void
virtio_net_reset(void *state)
{
	struct virtio_net *vn = state;

	virtio_dev_reset(&vn->vd);
	/* The host bridge's reset cleared every BAR before us. */
	pci_assign_bars(vn->vm);
}

static void
virtio_net_pause(void *state)
{
	struct virtio_net *vn = state;

	vn->paused = true;
	netdev_vsw_want_rx(&vn->be, false);
	vnet_tx_abandon(vn, true);
	vnet_rx_unhold(vn);
}

static void
virtio_net_resume(void *state)
{
	struct virtio_net *vn = state;

	vn->paused = false;
	if (virtio_running(&vn->vd))
		netdev_vsw_want_rx(&vn->be, true);
	if (vn->rx_next < vn->rx_count)
		vtimer_arm(&vn->rx_timer, vclock_ns());
	/* Kicks that came while paused were not lost: look again. */
	vn->tx_kicked = 0;
	for (unsigned p = 0; p < vn->max_pairs; p++)
		vn->tx_kicked |= 1u << (2 * p + 1);
	virtio_net_tx_run(vn);
}

static int
virtio_net_snapshot(void *state, struct snap *s)
{
	struct virtio_net *vn = state;
	uint32_t pairs = vn->pairs, max = vn->max_pairs;

	/* A stream holds no frame in flight and no buffer half taken. */
	vnet_tx_abandon(vn, snap_saving(s));
	vnet_rx_unhold(vn);
	snap_u32(s, "max_pairs", &max);
	snap_u32(s, "pairs", &pairs);
	snap_bytes(s, "mac", vn->mac, 6);
	snap_u16(s, "status", &vn->status);
	snap_bool(s, "admin_up", &vn->admin_up);
	if (!snap_saving(s) && snap_error(s) == 0) {
		if (max != vn->max_pairs || pairs < 1 || pairs > max)
			snap_fail(s, -EINVAL, "%s: %u of %u queue pairs, this "
			    "NIC has %u", vn->name, pairs, max, vn->max_pairs);
		else
			vn->pairs = pairs;
	}
	if (virtio_dev_snapshot(&vn->vd, s) < 0 || snap_saving(s))
		return snap_error(s);
	/* The link is this host's: say so if it differs.  Frames received
	 * for the state we replaced are not this guest's. */
	vn->tx_kicked = 0;
	vn->rx_next = vn->rx_count = 0;
	vnet_update_status(vn);
	netdev_vsw_want_rx(&vn->be, virtio_running(&vn->vd) && !vn->paused);
	return snap_error(s);
}

static void
virtio_net_stats(void *state, struct device_stats *st)
{
	struct virtio_net *vn = state;

	st->kind = "net";
	st->rx_bytes = __atomic_load_n(&vn->rx_bytes, __ATOMIC_RELAXED);
	st->tx_bytes = __atomic_load_n(&vn->tx_bytes, __ATOMIC_RELAXED);
	st->rx_ops = __atomic_load_n(&vn->rx_frames, __ATOMIC_RELAXED);
	st->tx_ops = __atomic_load_n(&vn->tx_frames, __ATOMIC_RELAXED);
	st->errors = __atomic_load_n(&vn->dropped, __ATOMIC_RELAXED);
}

const struct device_ops virtio_net_ops = {
	.name = "virtio-net",
	.create = virtio_net_create,
	.fini = virtio_net_fini,
	.snapshot = virtio_net_snapshot,
	.snapshot_version = 1,
	.pause = virtio_net_pause,
	.resume = virtio_net_resume,
	.reset = virtio_net_reset,
	.stats = virtio_net_stats,
};
