/*
 * A host NIC as the switch's uplink, through libpcap: frames captured
 * on it (promiscuous, incoming only, so what we inject is not read back)
 * enter its port group; frames for it are injected.  Unlike a TAP, the
 * NIC is the host's own wire: guests appear on the physical network
 * beside the host.  Frames go whole, without a vnet header, so the
 * port takes no offloads: the switch completes checksums and segments
 * TSO frames for it.  A NIC that merges received frames (GRO) hands
 * pcap frames larger than its MTU; turn that off (ethtool -K IF gro off).
 */
#include "vswitch/vswitch_proto.h"
#include "vswitch/vswitch.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define VSW_PCAP_SNAPLEN	65535

int
vsw_pcap_open(const char *ifname, void **handle, char *err, size_t errlen)
{
	char eb[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = pcap_create(ifname, eb);
	int fd, r;

	if (p == NULL)
		return vsw_errf(err, errlen, -ENODEV, "%s: %s", ifname, eb);
	if (pcap_set_snaplen(p, VSW_PCAP_SNAPLEN) != 0 ||
	    pcap_set_promisc(p, 1) != 0 ||
	    pcap_set_immediate_mode(p, 1) != 0 ||
	    (r = pcap_activate(p)) < 0) {
		vsw_errf(err, errlen, -EIO, "%s: %s", ifname,
		    pcap_geterr(p));
		pcap_close(p);
		return -EIO;
	}
	if (pcap_datalink(p) != DLT_EN10MB ||
	    pcap_setdirection(p, PCAP_D_IN) != 0 ||
	    pcap_setnonblock(p, 1, eb) != 0 ||
	    (fd = pcap_get_selectable_fd(p)) < 0) {
		vsw_errf(err, errlen, -EINVAL, "%s: not an Ethernet "
		    "interface pcap can read without blocking", ifname);
		pcap_close(p);
		return -EINVAL;
	}
	*handle = p;
	return fd;
}

void
vsw_pcap_close(void *handle)
{
	if (handle != NULL)
		pcap_close(handle);
}

struct vsw_pcap_batch {
	struct vsw *sw;
	struct vsw_port *p;
	int n;
};

/* One captured frame: a message with an empty header, in rxbuf. */
static void
vsw_pcap_frame(u_char *user, const struct pcap_pkthdr *h, const u_char *d)
{
	struct vsw_pcap_batch *b = (struct vsw_pcap_batch *)user;
	uint8_t *m = b->sw->rxbuf + (size_t)b->n * VSW_RXSZ;
	size_t hl = sizeof(struct vsw_net_hdr);

	if (b->n >= VSW_BATCH)
		return;
	if (h->caplen != h->len || h->caplen > VSW_MAX_FRAME) {
		b->p->st.rx_malformed++;	/* cut, or merged by GRO */
		return;
	}
	memset(m, 0, hl);
	memcpy(m + hl, d, h->caplen);
	b->n++;
	(void)vsw_port_input(b->sw, b->p, m, hl + h->caplen);
}

int
vsw_pcap_recv(struct vsw *sw, struct vsw_port *p)
{
	struct vsw_pcap_batch b = { sw, p, 0 };
	int r = pcap_dispatch(p->pcap, VSW_BATCH, vsw_pcap_frame, (u_char *)&b);

	vsw_flush(sw);
	return r < 0 ? -EIO : b.n;
}

int
vsw_pcap_xmit(struct vsw_port *q, const struct vsw_txent *e)
{
	static uint8_t frame[VSW_MAX_FRAME + 4];
	size_t off = 0;
	int i;

	/* iov[0] is the vnet header: a wire has none. */
	for (i = 1; i < e->niov; i++) {
		if (off + e->iov[i].iov_len > sizeof(frame))
			return -EMSGSIZE;
		memcpy(frame + off, e->iov[i].iov_base, e->iov[i].iov_len);
		off += e->iov[i].iov_len;
	}
	if (pcap_inject(q->pcap, frame, off) >= 0)
		return 0;
	return errno == EAGAIN || errno == ENOBUFS ? -EAGAIN : -EIO;
}
