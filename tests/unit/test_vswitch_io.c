/*
 * The switch's outside sockets and capture, for real: VXLAN
 * encapsulation to a peer on loopback UDP and decapsulation of what the
 * peer sends (RFC 7348 header, VNI per port group, remote MACs learned
 * on the peer's port, split horizon between peers); pcap capture read
 * back with libpcap's own reader, through a BPF filter.
 */
#include "vswitch_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdlib.h>

#include "util/evloop.h"
#include "vswitch/vswitch_capture.h"
#include "vswitch/vswitch_server.h"

static struct vsw sw;
static uint8_t buf[VSW_MAX_MSG + 64], rbuf[VSW_MAX_MSG + 64];

static void
setup(void)
{
	char err[256];

	cr_assert_eq(vsw_init(&sw, "io"), 0);
	cr_assert_geq(vsw_pg_add(&sw, "lan", 0, NULL, err, sizeof(err)), 0);
	cr_assert_geq(vsw_pg_add(&sw, "v10", 10, NULL, err, sizeof(err)), 0);
}

static void
teardown(void)
{
	if (sw.vxlan_fd >= 0)
		close(sw.vxlan_fd);
	vsw_fini(&sw);
}

TestSuite(vswitch_io, .init = setup, .fini = teardown, .timeout = 10);

Test(vswitch_io, vxlan_header)
{
	uint8_t h[8 + 14] = { 0 };

	vsw_vxlan_hdr(h, 0xabcdef);
	cr_assert_eq(h[0], 0x08, "I flag");
	cr_assert_eq(h[1] | h[2] | h[3] | h[7], 0, "reserved bits zero");
	cr_assert_eq(vsw_vxlan_parse(h, sizeof(h)), 0xabcdef);
	h[0] = 0;
	cr_assert_eq(vsw_vxlan_parse(h, sizeof(h)), -EINVAL, "no I flag");
	h[0] = 0x08;
	cr_assert_eq(vsw_vxlan_parse(h, 8 + 13), -EINVAL, "no inner frame");
}

/* A UDP socket on loopback standing in for the other host's switch. */
static int
udp_peer(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

Test(vswitch_io, vxlan_encap_and_decap_with_a_peer)
{
	struct tport a = tport_add(&sw, "v10", 1, 0);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	struct sockaddr_in self = { .sin_family = AF_INET };
	socklen_t sl = sizeof(self);
	struct vsw_port *peer = NULL;
	char err[256], spec[64];
	uint16_t pport;
	uint64_t unknown = 0;
	int pfd = udp_peer(&pport), i;
	size_t n;
	ssize_t r;

	sw.vxlan_fd = vsw_vxlan_open("127.0.0.1", 0, err, sizeof(err));
	cr_assert_geq(sw.vxlan_fd, 0, "%s", err);
	snprintf(spec, sizeof(spec), "127.0.0.1:%u", pport);
	cr_assert_eq(vsw_vxlan_peer_add(&sw, spec, VSW_VXLAN_PORT, err,
	    sizeof(err)), 0, "%s", err);
	for (i = 1; i < VSW_MAX_PORTS; i++)
		if (sw.ports[i] && sw.ports[i]->kind == VSW_PORT_PEER)
			peer = sw.ports[i];
	cr_assert_not_null(peer);
	/* Out: a's broadcast goes to the peer with v10's VNI (10). */
	n = tframe(buf, 0xff, 1, 0x0800, "abc", 3);
	tsend(&sw, &a, buf, n);
	r = recv(pfd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
	cr_assert_eq(r, (ssize_t)(8 + n - sizeof(struct vsw_net_hdr)));
	cr_assert_eq(vsw_vxlan_parse(rbuf, (size_t)r), 10);
	cr_assert_eq(memcmp(rbuf + 8, buf + 12, n - 12), 0, "inner frame");
	/* In: the peer's frame for a, VNI 10, from a remote MAC. */
	getsockname(sw.vxlan_fd, (struct sockaddr *)&self, &sl);
	vsw_vxlan_hdr(rbuf, 10);
	n = tframe(buf, 1, 0x77, 0x0800, "remote", 6);
	memcpy(rbuf + 8, buf + 12, n - 12);
	cr_assert_eq(sendto(pfd, rbuf, 8 + n - 12, 0, (struct sockaddr *)&self,
	    sl), (ssize_t)(8 + n - 12));
	usleep(20000);
	cr_assert_eq(vsw_vxlan_recv(&sw, &unknown), 1);
	r = trecv(&a, rbuf, sizeof(rbuf));
	cr_assert_eq(r, (ssize_t)n, "a gets the inner frame");
	cr_assert_eq(memcmp(rbuf + 12 + 14, "remote", 6), 0);
	cr_assert_eq(tcount(&b), 0, "VNI 10 is not lan");
	cr_assert_eq(vsw_fdb_lookup(&sw.fdb, (uint16_t)a.p->pg,
	    (uint8_t[]){ 0x52, 0x54, 0, 0, 0, 0x77 }, vclock_ns()), peer->id,
	    "the remote MAC is learned on the peer's port");
	/* A VNI nobody has, and garbage, are dropped and counted. */
	vsw_vxlan_hdr(rbuf, 999);
	sendto(pfd, rbuf, 8 + n - 12, 0, (struct sockaddr *)&self, sl);
	sendto(pfd, "junk", 4, 0, (struct sockaddr *)&self, sl);
	usleep(20000);
	vsw_vxlan_recv(&sw, &unknown);
	cr_assert_eq(peer->st.rx_vlan, 1);
	cr_assert_eq(peer->st.rx_malformed, 1);
	cr_assert_eq(tcount(&a) + tcount(&b), 0);
	close(pfd);
	tport_close(&a);
	tport_close(&b);
}

/* Count the frames of a pcap file with libpcap's reader. */
static int
pcap_frames(const char *path, uint16_t *first_dport)
{
	char eb[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *d;
	pcap_t *p = pcap_open_offline(path, eb);
	int n = 0;

	cr_assert_not_null(p, "%s", eb);
	cr_assert_eq(pcap_datalink(p), DLT_EN10MB);
	while (pcap_next_ex(p, &h, &d) == 1) {
		if (n++ == 0 && first_dport != NULL)
			*first_dport = (uint16_t)(d[14 + 20 + 2] << 8 |
			    d[14 + 20 + 3]);
	}
	pcap_close(p);
	return n;
}

/* An IPv4/UDP frame to port dport (checksum 0: not computed). */
static size_t
udp_frame(uint8_t *b, uint16_t dport)
{
	uint8_t p[20 + 8 + 4] = { 0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0,
	    10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, (uint8_t)(dport >> 8),
	    (uint8_t)dport, 0, 12, 0, 0, 'd', 'a', 't', 'a' };

	return tframe(b, 0xff, 1, 0x0800, p, sizeof(p));
}

Test(vswitch_io, capture_with_a_bpf_filter)
{
	struct tport a = tport_add(&sw, "lan", 1, 0);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	struct tport c = tport_add(&sw, "v10", 3, 0);
	struct vsw_capture *cap, *pc;
	char path[] = "/tmp/tv-cap-XXXXXX", ppath[] = "/tmp/tv-capp-XXXXXX";
	char err[256];
	uint16_t dport = 0;
	size_t n;
	int i;

	close(mkstemp(path));
	close(mkstemp(ppath));
	cr_assert_eq(vsw_capture_start(&sw, "lan", path, "udp dst port 53",
	    0, &cap, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(vsw_capture_start(&sw, "vm2:net0", ppath, NULL, 3, &pc,
	    err, sizeof(err)), 0, "%s", err);
	for (i = 0; i < 4; i++) {
		n = udp_frame(buf, i % 2 ? 53 : 80);
		tsend(&sw, &a, buf, n);
		n = udp_frame(buf, 53);
		buf[sizeof(struct vsw_net_hdr) + 11] = 3;	/* from c */
		tsend(&sw, &c, buf, n);
	}
	cr_assert_eq(cap->seen, 4, "lan saw a's 4 frames, not v10's");
	cr_assert_eq(cap->written, 2, "two went to port 53");
	cr_assert(pc->done, "the port capture stopped at 3");
	cr_assert_eq(pc->written, 3);
	vsw_capture_stop(&sw, cap);
	vsw_capture_stop(&sw, pc);
	cr_assert_eq(pcap_frames(path, &dport), 2);
	cr_assert_eq(dport, 53);
	cr_assert_eq(pcap_frames(ppath, NULL), 3);
	/* Bad filters and targets say why. */
	cr_assert_eq(vsw_capture_check_filter("udp port", err, sizeof(err)),
	    -EINVAL);
	cr_assert(strstr(err, "udp port") != NULL, "%s", err);
	cr_assert_eq(vsw_capture_start(&sw, "nosuch", path, NULL, 0, &cap,
	    err, sizeof(err)), -ENOENT);
	cr_assert_eq(vsw_capture_start(&sw, "lan", "/nonexistent/x.pcap",
	    NULL, 0, &cap, err, sizeof(err)), -EIO);
	unlink(path);
	unlink(ppath);
	tport_close(&a);
	tport_close(&b);
	tport_close(&c);
}

static json_t *
req(struct vsw_server *s, const char *line)
{
	return vsw_ctl_request(s, NULL, line, strlen(line));
}

/* The control socket's requests, on a server without sockets. */
Test(vswitch_io, control_requests_and_bad_ones)
{
	struct vsw_server *s = calloc(1, sizeof(*s));
	struct tport a;
	json_t *r, *res;
	static const char *bad[] = {
		"not json", "[1,2]", "{\"cmd\": 3}", "{\"cmd\": \"show\", "
		"\"args\": 1}", "{\"cmd\": \"nosuch\"}",
		"{\"cmd\": \"show\", \"cmd\": \"stop\"}",
	};

	cr_assert_not_null(s);
	s->sw = sw;		/* the fixture's switch, borrowed */
	a = tport_add(&s->sw, "lan", 1, VSW_F_CSUM);
	r = req(s, "{\"id\": 7, \"cmd\": \"show\"}");
	cr_assert(json_is_true(json_object_get(r, "ok")));
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 7);
	res = json_object_get(r, "result");
	cr_assert_str_eq(json_string_value(json_object_get(res, "switch")),
	    "io");
	cr_assert_eq(json_array_size(json_object_get(res, "portgroups")), 2);
	cr_assert_eq(json_array_size(json_object_get(res, "ports")), 1);
	cr_assert(json_is_true(json_object_get(json_array_get(
	    json_object_get(res, "ports"), 0), "csum")));
	json_decref(r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = vsw_ctl_request(s, NULL, bad[i], strlen(bad[i]));
		cr_assert_not_null(r, "%s", bad[i]);
		cr_assert(json_is_false(json_object_get(r, "ok")), "%s",
		    bad[i]);
		cr_assert(json_is_string(json_object_get(json_object_get(r,
		    "error"), "message")), "%s", bad[i]);
		json_decref(r);
	}
	/* capture needs a client connection: refused without one. */
	r = req(s, "{\"cmd\": \"capture\"}");
	cr_assert(json_is_false(json_object_get(r, "ok")));
	json_decref(r);
	cr_assert_not(s->stop);
	r = req(s, "{\"cmd\": \"stop\"}");
	cr_assert(json_is_true(json_object_get(r, "ok")));
	cr_assert(s->stop);
	json_decref(r);
	tport_close(&a);
	sw = s->sw;		/* the fixture frees it */
	free(s);
}
