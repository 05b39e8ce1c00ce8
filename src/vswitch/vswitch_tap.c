/*
 * The switch's sockets to the outside: the uplink TAP device and the
 * VXLAN UDP socket.  A TAP with IFF_VNET_HDR and a 12-byte header size
 * reads and writes exactly our message layout (vsw_net_hdr + frame).
 */
#include "vswitch/vswitch_proto.h"
#include "vswitch/vswitch_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

/* Bring ifname up, as `ip link set IF up` would. */
static int
vsw_tap_up(const char *ifname)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		ret = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (ret == 0 && ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		ret = -errno;
	close(s);
	return ret;
}

int
vsw_tap_open(const char *ifname, char *err, size_t errlen)
{
	struct ifreq ifr;
	int fd, hdrsz = (int)sizeof(struct vsw_net_hdr), ret;

	if ((fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0)
		return vsw_errf(err, errlen, -errno, "/dev/net/tun: %s",
		    strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		ret = vsw_errf(err, errlen, -errno, "TAP %s: %s%s", ifname,
		    strerror(errno), errno == EPERM ? " (needs root or "
		    "CAP_NET_ADMIN, or a TAP made for this user with ip "
		    "tuntap add)" : "");
		goto fail;
	}
	/* Our header is virtio_net_hdr_v1 (12 bytes); the kernel may hand
	 * us frames with a checksum left to do (we finish them for ports
	 * that cannot), but not GSO ones: it segments those itself. */
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, (unsigned long)TUN_F_CSUM) < 0) {
		ret = vsw_errf(err, errlen, -errno, "TAP %s offloads: %s",
		    ifname, strerror(errno));
		goto fail;
	}
	/* A TAP made for us (ip tuntap add ... user U) we may use but not
	 * bring up: whoever made it brings it up. */
	if ((ret = vsw_tap_up(ifname)) == -EPERM || ret == -EACCES) {
		log_warnx("TAP %s: not allowed to bring it up (ip link set %s "
		    "up)", ifname, ifname);
		ret = 0;
	}
	if (ret < 0) {
		vsw_errf(err, errlen, ret, "TAP %s: cannot bring it up: "
		    "%s", ifname, strerror(-ret));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return ret;
}

int
vsw_tap_recv(struct vsw *sw, struct vsw_port *p)
{
	uint8_t *b;
	ssize_t n;
	int i;

	for (i = 0; i < VSW_BATCH; i++) {
		b = sw->rxbuf + (size_t)i * VSW_RXSZ;
		n = read(p->fd, b, VSW_RXSZ);
		if (n < 0 && errno == EINTR) {
			i--;
			continue;
		}
		if (n < 0)
			break;
		(void)vsw_port_input(sw, p, b, (size_t)n);
	}
	vsw_flush(sw);
	return i;
}

int
vsw_vxlan_open(const char *local, int port, char *err, size_t errlen)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	int fd, one = 1, buf = VSW_SOCKBUF, v4 = 1, dont = IP_PMTUDISC_DONT;

	a4.sin_port = a6.sin6_port = htons((uint16_t)port);
	if (local != NULL && local[0] != '\0') {
		if (inet_pton(AF_INET, local, &a4.sin_addr) == 1)
			v4 = 1;
		else if (inet_pton(AF_INET6, local, &a6.sin6_addr) == 1)
			v4 = 0;
		else
			return vsw_errf(err, errlen, -EINVAL, "vxlan.local "
			    "'%s' is not an IP address", local);
	}
	fd = socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vsw_errf(err, errlen, -errno, "UDP socket: %s",
		    strerror(errno));
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* A full-size frame plus 50 bytes of VXLAN does not fit a 1500-byte
	 * underlay: let IP fragment it (RFC 7348 wants a bigger underlay
	 * MTU; most hosts between two machines do not have one). */
	(void)setsockopt(fd, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ?
	    IP_MTU_DISCOVER : IPV6_MTU_DISCOVER, &dont, sizeof(dont));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (bind(fd, v4 ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6,
	    v4 ? sizeof(a4) : sizeof(a6)) < 0) {
		int e = errno;

		close(fd);
		return vsw_errf(err, errlen, -e, "VXLAN UDP port %d: %s",
		    port, strerror(e));
	}
	return fd;
}

int
vsw_vxlan_peer_add(struct vsw *sw, const char *spec, int defport, char *err,
    size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res;
	struct sockaddr_storage ss;
	struct vsw_port *p;
	char host[128], port[16], name[VSW_NAME_MAX], *colon;
	int r, fam;
	socklen_t fl = sizeof(ss);

	snprintf(host, sizeof(host), "%s", spec);
	snprintf(port, sizeof(port), "%d", defport);
	if (host[0] == '[' && (colon = strchr(host, ']')) != NULL) {
		*colon = '\0';
		memmove(host, host + 1, strlen(host));
		if (colon[1] == ':')
			snprintf(port, sizeof(port), "%s", colon + 2);
	} else if ((colon = strchr(host, ':')) != NULL &&
	    strchr(colon + 1, ':') == NULL) {
		*colon = '\0';
		snprintf(port, sizeof(port), "%s", colon + 1);
	}
	/* Same family as our socket. */
	fam = getsockname(sw->vxlan_fd, (struct sockaddr *)&ss, &fl) == 0 ?
	    ss.ss_family : AF_INET;
	hints.ai_family = fam;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0)
		return vsw_errf(err, errlen, -EINVAL, "VXLAN peer %s: %s",
		    spec, gai_strerror(r));
	snprintf(name, sizeof(name), "peer:%.50s", spec);
	p = vsw_port_add(sw, VSW_PORT_PEER, sw->vxlan_fd, -1, name, 0);
	if (p == NULL) {
		freeaddrinfo(res);
		return vsw_errf(err, errlen, -ENOSPC, "no free port for "
		    "peer %s", spec);
	}
	memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
	p->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* The peer port a datagram from a came from (by address), or NULL. */
static struct vsw_port *
vsw_vxlan_peer(struct vsw *sw, const struct sockaddr_storage *a)
{
	const struct sockaddr_in *a4 = (const void *)a, *p4;
	const struct sockaddr_in6 *a6 = (const void *)a, *p6;
	struct vsw_port *p;
	int i;

	for (i = 1; i < VSW_MAX_PORTS; i++) {
		if ((p = sw->ports[i]) == NULL || p->kind != VSW_PORT_PEER ||
		    p->addr.ss_family != a->ss_family)
			continue;
		p4 = (const void *)&p->addr;
		p6 = (const void *)&p->addr;
		/* The source port is the sender's choice (RFC 7348 5:
		 * often a flow hash): match the address only. */
		if (a->ss_family == AF_INET &&
		    p4->sin_addr.s_addr == a4->sin_addr.s_addr)
			return p;
		if (a->ss_family == AF_INET6 && memcmp(&p6->sin6_addr,
		    &a6->sin6_addr, sizeof(a6->sin6_addr)) == 0)
			return p;
	}
	return NULL;
}

int
vsw_vxlan_recv(struct vsw *sw, uint64_t *unknown)
{
	struct mmsghdr m[VSW_BATCH];
	struct iovec iov[VSW_BATCH];
	struct sockaddr_storage from[VSW_BATCH];
	struct vsw_port *p;
	long vni;
	int i, n;

	memset(m, 0, sizeof(m));
	for (i = 0; i < VSW_BATCH; i++) {
		iov[i] = (struct iovec){ sw->rxbuf + (size_t)i * VSW_RXSZ,
		    VSW_RXSZ };
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
		m[i].msg_hdr.msg_name = &from[i];
		m[i].msg_hdr.msg_namelen = sizeof(from[i]);
	}
	n = recvmmsg(sw->vxlan_fd, m, VSW_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return 0;
	for (i = 0; i < n; i++) {
		uint8_t *b = iov[i].iov_base;

		if ((p = vsw_vxlan_peer(sw, &from[i])) == NULL) {
			(*unknown)++;
			continue;
		}
		if ((vni = vsw_vxlan_parse(b, m[i].msg_len)) < 0 ||
		    (m[i].msg_hdr.msg_flags & MSG_TRUNC)) {
			p->st.rx_malformed++;
			continue;
		}
		(void)vsw_peer_input(sw, p, (uint32_t)vni, b + 8,
		    m[i].msg_len - 8);
	}
	vsw_flush(sw);
	return n;
}
