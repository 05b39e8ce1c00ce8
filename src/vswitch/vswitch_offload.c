/*
 * Offloads a sender may ask for in its vsw_net_hdr and a receiver may
 * not take: checksums are completed in place; TCP segmentation (TSO4,
 * TSO6) is done here for a port without VSW_F_GSO (and every VXLAN
 * peer).  UDP fragmentation offload and IPv6 extension headers are not
 * segmented: such frames are dropped for those ports and counted
 * (tx_offload).
 */
#include "vswitch/vswitch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VSW_HDR_F_NEEDS_CSUM	1
#define VSW_GSO_TCPV4		1
#define VSW_GSO_UDP		3
#define VSW_GSO_TCPV6		4
#define VSW_GSO_ECN		0x80

static uint32_t
vsw_csum_add(const uint8_t *b, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	return sum;
}

static uint16_t
vsw_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint16_t
vsw_inet_csum(const void *buf, size_t len, uint32_t sum)
{
	return vsw_csum_fold(vsw_csum_add(buf, len, sum));
}

static void
vsw_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t
vsw_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int
vsw_hdr_check(const struct vsw_net_hdr *h, size_t len)
{
	uint8_t gt = h->gso_type & (uint8_t)~VSW_GSO_ECN;

	if (h->flags & VSW_HDR_F_NEEDS_CSUM) {
		if (h->csum_start < 14 || (size_t)h->csum_start +
		    h->csum_offset + 2 > len)
			return -EINVAL;
	}
	if (gt != 0 && gt != VSW_GSO_TCPV4 && gt != VSW_GSO_UDP &&
	    gt != VSW_GSO_TCPV6)
		return -EINVAL;
	if (gt != 0 && h->gso_size == 0)
		return -EINVAL;
	if (gt == 0 && (h->gso_type & VSW_GSO_ECN))
		return -EINVAL;
	return 0;
}

int
vsw_csum_complete(struct vsw_net_hdr *h, uint8_t *frame, size_t len)
{
	uint16_t c;

	if (!(h->flags & VSW_HDR_F_NEEDS_CSUM))
		return 0;
	if (vsw_hdr_check(h, len) < 0)
		return -EINVAL;
	/* The field holds the pseudo-header sum: sum it with the rest. */
	c = vsw_inet_csum(frame + h->csum_start, len - h->csum_start, 0);
	/* UDP sends a computed 0 as 0xffff (RFC 768); TCP does not care. */
	if (c == 0 && h->csum_offset == 6)
		c = 0xffff;
	vsw_put16(frame + h->csum_start + h->csum_offset, c);
	h->flags &= (uint8_t)~VSW_HDR_F_NEEDS_CSUM;
	return 0;
}

/* Where the TCP header of a TSO frame starts, or -1. */
static long
vsw_tcp_off(const uint8_t *f, size_t len, bool *v6)
{
	uint16_t type = vsw_get16(f + 12);
	size_t ihl;

	if (type == 0x0800 && len >= 14 + 20) {
		ihl = (size_t)(f[14] & 0x0f) * 4;
		if ((f[14] >> 4) != 4 || ihl < 20 || f[14 + 9] != 6 ||
		    14 + ihl + 20 > len)
			return -1;
		*v6 = false;
		return (long)(14 + ihl);
	}
	if (type == 0x86dd && len >= 14 + 40 + 20) {
		if ((f[14] >> 4) != 6 || f[14 + 6] != 6)
			return -1;	/* extension headers: not here */
		*v6 = true;
		return 14 + 40;
	}
	return -1;
}

/* Fix segment s (a copy of the headers plus its payload) in place. */
static void
vsw_seg_fix(uint8_t *s, size_t tcp, size_t hlen, size_t plen, bool v6,
    uint32_t seq, int i, bool last)
{
	uint8_t *t = s + tcp;
	uint32_t sum;
	size_t tlen = hlen - tcp + plen;

	if (!v6) {
		vsw_put16(s + 14 + 2, (uint16_t)(tcp - 14 + tlen));
		vsw_put16(s + 14 + 4, (uint16_t)(vsw_get16(s + 14 + 4) + i));
		vsw_put16(s + 14 + 10, 0);
		vsw_put16(s + 14 + 10, vsw_inet_csum(s + 14, tcp - 14, 0));
		sum = vsw_csum_add(s + 14 + 12, 8, 0);
	} else {
		vsw_put16(s + 14 + 4, (uint16_t)tlen);
		sum = vsw_csum_add(s + 14 + 8, 32, 0);
	}
	sum += 6 + (uint32_t)tlen;
	t[4] = (uint8_t)(seq >> 24);
	t[5] = (uint8_t)(seq >> 16);
	t[6] = (uint8_t)(seq >> 8);
	t[7] = (uint8_t)seq;
	if (i > 0)
		t[13] &= (uint8_t)~0x80;		/* CWR: first only */
	if (!last)
		t[13] &= (uint8_t)~(0x01 | 0x08);	/* FIN, PSH: last */
	vsw_put16(t + 16, 0);
	vsw_put16(t + 16, vsw_inet_csum(t, tlen, sum));
}

uint8_t *
vsw_gso_segment(struct vsw *sw, const struct vsw_net_hdr *h,
    const uint8_t *frame, size_t len, size_t *offsets, size_t *lens,
    int max, int *n)
{
	uint8_t gt = h->gso_type & (uint8_t)~VSW_GSO_ECN, *buf, *s;
	size_t hlen, plen, mss = h->gso_size, off, chunk;
	long tcp;
	uint32_t seq;
	bool v6 = false;
	int i, cnt;

	*n = 0;
	if ((gt != VSW_GSO_TCPV4 && gt != VSW_GSO_TCPV6) || mss == 0 ||
	    (tcp = vsw_tcp_off(frame, len, &v6)) < 0 ||
	    (gt == VSW_GSO_TCPV6) != v6)
		return NULL;
	hlen = (size_t)tcp + (size_t)(frame[tcp + 12] >> 4) * 4;
	if (hlen < (size_t)tcp + 20 || hlen >= len)
		return NULL;
	plen = len - hlen;
	cnt = (int)((plen + mss - 1) / mss);
	if (cnt > max || hlen + mss > VSW_MAX_FRAME)
		return NULL;
	if ((buf = malloc((size_t)cnt * (hlen + mss))) == NULL)
		return NULL;
	seq = (uint32_t)frame[tcp + 4] << 24 | (uint32_t)frame[tcp + 5] << 16 |
	    (uint32_t)frame[tcp + 6] << 8 | frame[tcp + 7];
	for (i = 0, off = hlen; i < cnt; i++, off += chunk) {
		chunk = len - off < mss ? len - off : mss;
		s = buf + (size_t)i * (hlen + mss);
		memcpy(s, frame, hlen);
		memcpy(s + hlen, frame + off, chunk);
		vsw_seg_fix(s, (size_t)tcp, hlen, chunk, v6,
		    seq + (uint32_t)(off - hlen), i, i == cnt - 1);
		offsets[i] = (size_t)(s - buf);
		lens[i] = hlen + chunk;
	}
	if (vsw_scratch_keep(sw, buf) < 0)
		return NULL;
	*n = cnt;
	return buf;
}
