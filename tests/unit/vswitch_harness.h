/*
 * Shared by the switch's unit tests: a switch whose ports are one end
 * of SOCK_SEQPACKET socketpairs (the test holds the other end, as a
 * NIC would), and builders for frames.
 */
#ifndef TV_TEST_VSWITCH_HARNESS_H
#define TV_TEST_VSWITCH_HARNESS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vswitch/vswitch.h"

struct tport {
	struct vsw_port *p;
	int fd;			/* the NIC's end */
};

static inline struct tport
tport_add(struct vsw *sw, const char *pg, uint8_t last, uint32_t features)
{
	struct vsw_hello h = { .magic = VSW_MAGIC, .version = VSW_VERSION,
	    .features = features, .mac = { 0x52, 0x54, 0, 0, 0, last } };
	struct tport t;
	char err[256];
	int sv[2];

	snprintf(h.portgroup, sizeof(h.portgroup), "%s", pg);
	snprintf(h.vm, sizeof(h.vm), "vm%u", last);
	snprintf(h.nic, sizeof(h.nic), "net0");
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0,
	    sv), 0);
	t.p = vsw_port_add_nic(sw, sv[0], &h, err, sizeof(err));
	cr_assert_not_null(t.p, "port: %s", err);
	t.fd = sv[1];
	return t;
}

static inline void
tport_close(struct tport *t)
{
	close(t->p->fd);
	close(t->fd);
}

/* vsw_net_hdr (zero) + Ethernet header + payload into buf; the length. */
static inline size_t
tframe(uint8_t *buf, uint8_t dst_last, uint8_t src_last, uint16_t type,
    const void *payload, size_t plen)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t *f = buf + sizeof(struct vsw_net_hdr);

	memset(buf, 0, sizeof(struct vsw_net_hdr));
	if (dst_last == 0xff)
		memcpy(f, bcast, 6);
	else
		memcpy(f, (uint8_t[]){ 0x52, 0x54, 0, 0, 0, dst_last }, 6);
	memcpy(f + 6, (uint8_t[]){ 0x52, 0x54, 0, 0, 0, src_last }, 6);
	f[12] = (uint8_t)(type >> 8);
	f[13] = (uint8_t)type;
	memcpy(f + 14, payload, plen);
	return sizeof(struct vsw_net_hdr) + 14 + plen;
}

/* Feed one message from port t and flush. */
static inline int
tsend(struct vsw *sw, struct tport *t, uint8_t *buf, size_t len)
{
	int r = vsw_port_input(sw, t->p, buf, len);

	vsw_flush(sw);
	return r;
}

/* Next message for port t, or -1 when there is none. */
static inline ssize_t
trecv(struct tport *t, uint8_t *buf, size_t len)
{
	ssize_t n = recv(t->fd, buf, len, MSG_DONTWAIT);

	return n < 0 ? -1 : n;
}

/* How many messages wait for port t (drained). */
static inline int
tcount(struct tport *t)
{
	static uint8_t buf[VSW_MAX_MSG];
	int n = 0;

	while (trecv(t, buf, sizeof(buf)) >= 0)
		n++;
	return n;
}

#endif
