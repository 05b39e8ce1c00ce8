/*
 * The switch's data plane through its real entry points (hello check,
 * port input, flush) with NICs on socketpairs: learning, aging on the
 * fake clock, flooding that stays in its port group, 802.1Q on trunks,
 * malformed input, checksum completion and TCP segmentation for ports
 * that did not ask for offloads.
 */
#include "vswitch_harness.h"

#include <arpa/inet.h>

#include "util/evloop.h"
#include "vswitch/vswitch_conf.h"

static struct vsw sw;
static uint8_t buf[VSW_MAX_MSG + 64], rbuf[VSW_MAX_MSG + 64];
static const char payload[] = "hello, switch";

static void
setup(void)
{
	char err[256];

	vclock_set_fake(true, 1000000000ull);
	cr_assert_eq(vsw_init(&sw, "t"), 0);
	cr_assert_geq(vsw_pg_add(&sw, "lan", 0, NULL, err, sizeof(err)), 0);
	cr_assert_geq(vsw_pg_add(&sw, "dmz", 20, NULL, err, sizeof(err)), 0);
	cr_assert_geq(vsw_pg_add(&sw, "v10", 10, NULL, err, sizeof(err)), 0);
	cr_assert_geq(vsw_pg_add(&sw, "trunk", 0, "10,20", err,
	    sizeof(err)), 0);
}

static void
teardown(void)
{
	vsw_fini(&sw);
	vclock_set_fake(false, 0);
}

TestSuite(vswitch, .init = setup, .fini = teardown, .timeout = 10);

Test(vswitch, learning_turns_flooding_into_unicast)
{
	struct tport a = tport_add(&sw, "lan", 1, 0);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	struct tport c = tport_add(&sw, "lan", 3, 0);
	size_t n;

	/* a -> b: b is unknown, so both b and c get it. */
	n = tframe(buf, 2, 1, 0x0800, payload, sizeof(payload));
	cr_assert_eq(tsend(&sw, &a, buf, n), 0);
	cr_assert_eq(tcount(&b), 1);
	cr_assert_eq(tcount(&c), 1);
	cr_assert_eq(tcount(&a), 0, "never back to the sender");
	/* b -> a: a was learned, only a gets it. */
	n = tframe(buf, 1, 2, 0x0800, payload, sizeof(payload));
	tsend(&sw, &b, buf, n);
	cr_assert_eq(tcount(&a), 1);
	cr_assert_eq(tcount(&c), 0);
	/* a -> b again: now b alone. */
	n = tframe(buf, 2, 1, 0x0800, payload, sizeof(payload));
	tsend(&sw, &a, buf, n);
	cr_assert_eq(tcount(&b), 1);
	cr_assert_eq(tcount(&c), 0);
	cr_assert_eq(vsw_fdb_lookup(&sw.fdb, (uint16_t)a.p->pg,
	    (uint8_t[]){ 0x52, 0x54, 0, 0, 0, 2 }, vclock_ns()), b.p->id);
	cr_assert_eq(b.p->st.tx_packets, 2);
	cr_assert_eq(a.p->st.rx_packets, 2);
	/* The payload arrives unchanged, behind a header. */
	tsend(&sw, &a, buf, n);
	cr_assert_eq(trecv(&b, rbuf, sizeof(rbuf)), (ssize_t)n);
	cr_assert_eq(memcmp(rbuf, buf, n), 0);
	tport_close(&a);
	tport_close(&b);
	tport_close(&c);
}

Test(vswitch, macs_age_out_and_leave_with_their_port)
{
	struct tport a = tport_add(&sw, "lan", 1, 0);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	struct tport c = tport_add(&sw, "lan", 3, 0);
	const uint8_t mac_b[6] = { 0x52, 0x54, 0, 0, 0, 2 };
	size_t n;

	n = tframe(buf, 1, 2, 0x0800, payload, sizeof(payload));
	tsend(&sw, &b, buf, n);
	tcount(&a);
	tcount(&c);
	vclock_advance_fake(299ull * 1000000000ull);
	cr_assert_eq(vsw_fdb_lookup(&sw.fdb, (uint16_t)b.p->pg, mac_b,
	    vclock_ns()), b.p->id);
	vclock_advance_fake(2ull * 1000000000ull);
	vsw_fdb_age(&sw.fdb, vclock_ns());
	cr_assert_eq(vsw_fdb_lookup(&sw.fdb, (uint16_t)b.p->pg, mac_b,
	    vclock_ns()), -1, "300 s without a frame from b");
	cr_assert_eq(sw.fdb.count, 0);
	cr_assert_eq(sw.fdb.aged, 1);
	/* Forgotten, so a frame for b floods again. */
	n = tframe(buf, 2, 1, 0x0800, payload, sizeof(payload));
	tsend(&sw, &a, buf, n);
	cr_assert_eq(tcount(&b), 1);
	cr_assert_eq(tcount(&c), 1);
	/* A port that leaves takes its MACs along. */
	cr_assert_eq(sw.fdb.count, 1);
	vsw_port_del(&sw, a.p);
	cr_assert_eq(sw.fdb.count, 0);
	close(a.fd);
	tport_close(&b);
	tport_close(&c);
}

Test(vswitch, flooding_stays_in_its_port_group)
{
	struct tport a = tport_add(&sw, "lan", 1, 0);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	struct tport d = tport_add(&sw, "dmz", 4, 0);
	struct tport e = tport_add(&sw, "dmz", 5, 0);
	size_t n;

	n = tframe(buf, 0xff, 1, 0x0806, payload, sizeof(payload));
	tsend(&sw, &a, buf, n);
	cr_assert_eq(tcount(&b), 1);
	cr_assert_eq(tcount(&d), 0);
	cr_assert_eq(tcount(&e), 0);
	/* Even knowing d's MAC from the other group, a cannot reach it. */
	n = tframe(buf, 0xff, 4, 0x0806, payload, sizeof(payload));
	tsend(&sw, &d, buf, n);
	cr_assert_eq(tcount(&e), 1);
	cr_assert_eq(tcount(&a) + tcount(&b), 0);
	n = tframe(buf, 4, 1, 0x0800, payload, sizeof(payload));
	tsend(&sw, &a, buf, n);
	cr_assert_eq(tcount(&d), 0, "unicast across port groups");
	cr_assert_eq(tcount(&b), 1, "unknown in lan: flooded in lan only");
	cr_assert_eq(sw.pgs[a.p->pg].flooded, 2);
	tport_close(&a);
	tport_close(&b);
	tport_close(&d);
	tport_close(&e);
}

Test(vswitch, trunk_ports_see_tagged_frames)
{
	struct tport a = tport_add(&sw, "v10", 1, 0);
	struct tport d = tport_add(&sw, "dmz", 4, 0);
	struct tport l = tport_add(&sw, "lan", 6, 0);
	struct tport t = tport_add(&sw, "trunk", 9, 0);
	uint8_t tagged[64];
	size_t n;
	ssize_t r;

	/* Access -> trunk: tagged with the group's VLAN. */
	n = tframe(buf, 0xff, 1, 0x0800, payload, sizeof(payload));
	tsend(&sw, &a, buf, n);
	r = trecv(&t, rbuf, sizeof(rbuf));
	cr_assert_eq(r, (ssize_t)n + 4);
	cr_assert_eq(rbuf[12 + 12], 0x81);
	cr_assert_eq(rbuf[12 + 13], 0x00);
	cr_assert_eq((rbuf[12 + 14] << 8 | rbuf[12 + 15]) & 0xfff, 10);
	cr_assert_eq(rbuf[12 + 16], 0x08, "the original type after the tag");
	cr_assert_eq(memcmp(rbuf + 12 + 18, payload, sizeof(payload)), 0);
	cr_assert_eq(tcount(&l), 0, "lan has no VLAN: not on the trunk");
	/* Trunk -> access: VLAN 20 is dmz, delivered untagged. */
	n = tframe(buf, 0xff, 9, 0x8100, (uint8_t[]){ 0, 20, 0x08, 0x00, 'x' },
	    5);
	tsend(&sw, &t, buf, n);
	r = trecv(&d, rbuf, sizeof(rbuf));
	cr_assert_eq(r, (ssize_t)n - 4);
	cr_assert_eq(rbuf[12 + 12], 0x08);
	cr_assert_eq(rbuf[12 + 14], 'x');
	cr_assert_eq(tcount(&a), 0, "VLAN 20 is not v10");
	/* VLAN 30 is not on this trunk; untagged is nothing on a trunk. */
	n = tframe(buf, 0xff, 9, 0x8100, (uint8_t[]){ 0, 30, 0x08, 0x00 }, 4);
	tsend(&sw, &t, buf, n);
	n = tframe(buf, 0xff, 9, 0x0800, payload, sizeof(payload));
	tsend(&sw, &t, buf, n);
	cr_assert_eq(tcount(&a) + tcount(&d) + tcount(&l), 0);
	cr_assert_eq(t.p->st.rx_vlan, 2);
	/* An access port may not send tagged frames into another VLAN. */
	memset(tagged, 0, sizeof(tagged));
	n = tframe(buf, 0xff, 1, 0x8100, (uint8_t[]){ 0, 20, 0x08, 0x00 }, 4);
	tsend(&sw, &a, buf, n);
	cr_assert_eq(tcount(&d) + tcount(&t), 0);
	cr_assert_eq(a.p->st.rx_vlan, 1);
	tport_close(&a);
	tport_close(&d);
	tport_close(&l);
	tport_close(&t);
}

Test(vswitch, malformed_messages_are_dropped_and_counted)
{
	struct tport a = tport_add(&sw, "lan", 1, 0);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	struct vsw_net_hdr *h = (struct vsw_net_hdr *)buf;
	size_t n;
	int sent;

	/* Too short for a header and an Ethernet header. */
	cr_assert_eq(tsend(&sw, &a, buf, 10), -EINVAL);
	cr_assert_eq(tsend(&sw, &a, buf, sizeof(*h) + 13), -EINVAL);
	/* A checksum offset beyond the frame. */
	n = tframe(buf, 0xff, 1, 0x0800, payload, sizeof(payload));
	h->flags = 1;
	h->csum_start = 14;
	h->csum_offset = 200;
	cr_assert_eq(tsend(&sw, &a, buf, n), -EINVAL);
	/* An unknown GSO type; GSO without a size. */
	n = tframe(buf, 0xff, 1, 0x0800, payload, sizeof(payload));
	h->gso_type = 7;
	cr_assert_eq(tsend(&sw, &a, buf, n), -EINVAL);
	h->gso_type = 1;
	cr_assert_eq(tsend(&sw, &a, buf, n), -EINVAL);
	/* A multicast source address. */
	n = tframe(buf, 0xff, 1, 0x0800, payload, sizeof(payload));
	buf[sizeof(*h) + 6] = 0x01;
	cr_assert_eq(tsend(&sw, &a, buf, n), -EINVAL);
	cr_assert_eq(a.p->st.rx_malformed, 6);
	cr_assert_eq(tcount(&b), 0);
	/* Oversized, over the real socket: seen as truncated. */
	memset(buf, 0, sizeof(buf));
	n = tframe(buf, 0xff, 1, 0x0800, payload, sizeof(payload));
	sent = (int)send(a.fd, buf, VSW_MAX_MSG + 20, 0);
	if (sent < 0)
		cr_assert_eq(errno, EMSGSIZE);	/* refused by the kernel */
	cr_assert_eq(send(a.fd, buf, n, 0), (ssize_t)n);
	cr_assert_geq(vsw_port_recv(&sw, a.p), 1);
	cr_assert_eq(a.p->st.rx_malformed, 6 + (sent > 0));
	cr_assert_eq(tcount(&b), 1, "the good frame after it still goes");
	/* A hello that is not one. */
	{
		struct vsw_hello hh = { .magic = VSW_MAGIC,
		    .version = VSW_VERSION }, out;
		char err[128];

		snprintf(hh.portgroup, sizeof(hh.portgroup), "lan");
		cr_assert_eq(vsw_hello_check(&hh, sizeof(hh), &out, err,
		    sizeof(err)), 0);
		cr_assert_eq(vsw_hello_check(&hh, sizeof(hh) - 1, &out, err,
		    sizeof(err)), -EPROTO);
		hh.version = 9;
		cr_assert_eq(vsw_hello_check(&hh, sizeof(hh), &out, err,
		    sizeof(err)), -EPROTO);
		hh.version = VSW_VERSION;
		memset(hh.portgroup, 'a', sizeof(hh.portgroup));
		cr_assert_eq(vsw_hello_check(&hh, sizeof(hh), &out, err,
		    sizeof(err)), -EINVAL);
		snprintf(hh.portgroup, sizeof(hh.portgroup), "a b");
		cr_assert_eq(vsw_hello_check(&hh, sizeof(hh), &out, err,
		    sizeof(err)), -EINVAL);
		snprintf(hh.portgroup, sizeof(hh.portgroup), "nosuch");
		cr_assert_null(vsw_port_add_nic(&sw, -1, &hh, err,
		    sizeof(err)));
		cr_assert(strstr(err, "nosuch") != NULL, "%s", err);
	}
	tport_close(&a);
	tport_close(&b);
}

/* IPv4 + UDP or TCP packet after the Ethernet header at f; returns the
 * L3 length. */
static size_t
tip(uint8_t *f, uint8_t proto, size_t l4len)
{
	uint8_t *ip = f + 14;

	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + l4len) >> 8);
	ip[3] = (uint8_t)(20 + l4len);
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, (uint8_t[]){ 10, 0, 0, 1, 10, 0, 0, 2 }, 8);
	ip[10] = 0;
	ip[11] = 0;
	{
		uint16_t c = vsw_inet_csum(ip, 20, 0);

		ip[10] = (uint8_t)(c >> 8);
		ip[11] = (uint8_t)c;
	}
	return 20 + l4len;
}

/* Pseudo-header sum of the IPv4 packet at ip for l4len bytes. */
static uint32_t
tpseudo(const uint8_t *ip, uint8_t proto, size_t l4len)
{
	uint32_t s = 0;

	for (int i = 12; i < 20; i += 2)
		s += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	return s + proto + (uint32_t)l4len;
}

Test(vswitch, checksums_are_completed_for_ports_without_offload)
{
	struct tport a = tport_add(&sw, "lan", 1, VSW_F_CSUM);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	struct vsw_net_hdr *h = (struct vsw_net_hdr *)buf, *rh;
	uint8_t *f = buf + sizeof(*h), *udp = f + 34;
	size_t n, l4 = 8 + 100;
	uint32_t ps;
	uint16_t partial;

	n = tframe(buf, 0xff, 1, 0x0800, "", 0);
	tip(f, 17, l4);
	memset(udp, 0, l4);
	udp[0] = 0x30; udp[1] = 0x39; udp[2] = 0; udp[3] = 53;
	udp[4] = (uint8_t)(l4 >> 8); udp[5] = (uint8_t)l4;
	for (size_t i = 8; i < l4; i++)
		udp[i] = (uint8_t)(i * 7);
	/* What a NIC with checksum offload sends: the pseudo-header sum
	 * in the field, NEEDS_CSUM and where to finish. */
	ps = tpseudo(f + 14, 17, l4);
	partial = (uint16_t)~vsw_inet_csum("", 0, ps);
	udp[6] = (uint8_t)(partial >> 8);
	udp[7] = (uint8_t)partial;
	h->flags = 1;
	h->csum_start = 34;
	h->csum_offset = 6;
	n = sizeof(*h) + 34 + l4;
	tsend(&sw, &a, buf, n);
	cr_assert_eq(trecv(&b, rbuf, sizeof(rbuf)), (ssize_t)n);
	rh = (struct vsw_net_hdr *)rbuf;
	cr_assert_eq(rh->flags & 1, 0, "b did not ask for NEEDS_CSUM");
	/* A complete UDP checksum sums to zero with the pseudo-header. */
	cr_assert_eq(vsw_inet_csum(rbuf + sizeof(*h) + 34, l4,
	    tpseudo(rbuf + sizeof(*h) + 14, 17, l4)), 0);
	cr_assert_eq(sw.csum_done, 1);
	tport_close(&a);
	tport_close(&b);
}

Test(vswitch, tcp_gso_frames_are_segmented_for_ports_without_gso)
{
	struct tport a = tport_add(&sw, "lan", 1, VSW_F_CSUM | VSW_F_GSO);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	struct tport g = tport_add(&sw, "lan", 3, VSW_F_CSUM | VSW_F_GSO);
	struct vsw_net_hdr *h = (struct vsw_net_hdr *)buf;
	uint8_t *f = buf + sizeof(*h), *tcp = f + 34;
	size_t data = 3500, l4 = 20 + data, seen = 0;
	ssize_t r;
	int segs = 0;

	tframe(buf, 0xff, 1, 0x0800, "", 0);
	tip(f, 6, l4);
	memset(tcp, 0, 20);
	tcp[0] = 0x04; tcp[1] = 0xd2; tcp[2] = 0; tcp[3] = 80;
	tcp[4] = 0; tcp[5] = 0; tcp[6] = 0x10; tcp[7] = 0;	/* seq 4096 */
	tcp[12] = 5 << 4;
	tcp[13] = 0x18;					/* PSH ACK */
	for (size_t i = 0; i < data; i++)
		tcp[20 + i] = (uint8_t)(i % 251);
	h->flags = 1;
	h->gso_type = 1;
	h->gso_size = 1000;
	h->hdr_len = 54;
	h->csum_start = 34;
	h->csum_offset = 16;
	tsend(&sw, &a, buf, sizeof(*h) + 34 + l4);
	/* g takes GSO: the one big frame. */
	cr_assert_eq(trecv(&g, rbuf, sizeof(rbuf)),
	    (ssize_t)(sizeof(*h) + 34 + l4));
	cr_assert_eq(tcount(&g), 0);
	while ((r = trecv(&b, rbuf, sizeof(rbuf))) >= 0) {
		uint8_t *ip = rbuf + sizeof(*h) + 14, *t = ip + 20;
		size_t plen = (size_t)r - sizeof(*h) - 54;
		uint32_t seq = (uint32_t)t[4] << 24 | (uint32_t)t[5] << 16 |
		    (uint32_t)t[6] << 8 | t[7];

		cr_assert_eq(((struct vsw_net_hdr *)rbuf)->gso_type, 0);
		cr_assert_leq(plen, 1000);
		cr_assert_eq((size_t)(ip[2] << 8 | ip[3]), 40 + plen);
		cr_assert_eq(vsw_inet_csum(ip, 20, 0), 0, "IP checksum");
		cr_assert_eq(vsw_inet_csum(t, 20 + plen, tpseudo(ip, 6,
		    20 + plen)), 0, "TCP checksum of segment %d", segs);
		cr_assert_eq(seq, 4096 + seen);
		cr_assert_eq(memcmp(t + 20, tcp + 20 + seen, plen), 0);
		cr_assert_eq(!!(t[13] & 0x08), seen + plen == data,
		    "PSH on the last segment only");
		seen += plen;
		segs++;
	}
	cr_assert_eq(segs, 4);
	cr_assert_eq(seen, data);
	cr_assert_eq(sw.segmented, 1);
	tport_close(&a);
	tport_close(&b);
	tport_close(&g);
}

Test(vswitch, a_full_destination_drops_and_counts)
{
	struct tport a = tport_add(&sw, "lan", 1, 0);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	struct tport c = tport_add(&sw, "lan", 3, 0);
	int small = 4096, i;
	size_t n;

	/* b never reads and has a tiny buffer; c must still get all. */
	setsockopt(b.p->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	static uint8_t junk[1000];

	n = tframe(buf, 0xff, 1, 0x0800, junk, sizeof(junk));
	for (i = 0; i < 50; i++) {
		tsend(&sw, &a, buf, n);
		cr_assert_eq(tcount(&c), 1, "frame %d to c", i);
	}
	cr_assert_gt(b.p->st.tx_full, 0);
	cr_assert_eq(b.p->st.tx_full + b.p->st.tx_packets, 50);
	tport_close(&a);
	tport_close(&b);
	tport_close(&c);
}

Test(vswitch, port_groups_and_vlan_lists)
{
	uint8_t bits[4096 / 8];
	char err[256];

	cr_assert_eq(vsw_pg_add(&sw, "lan", 0, NULL, err, sizeof(err)),
	    -EEXIST);
	cr_assert_eq(vsw_pg_add(&sw, "other", 20, NULL, err, sizeof(err)),
	    -EADDRINUSE, "VLAN 20 is dmz's");
	cr_assert_eq(vsw_pg_add(&sw, "bad name", 0, NULL, err, sizeof(err)),
	    -EINVAL);
	cr_assert_eq(vsw_pg_add(&sw, "x", 4095, NULL, err, sizeof(err)),
	    -EINVAL);
	cr_assert_eq(vsw_vlan_list("10,20-22", bits), 0);
	cr_assert(bits[10 / 8] & (1 << (10 % 8)));
	cr_assert(bits[21 / 8] & (1 << (21 % 8)));
	cr_assert_not(bits[23 / 8] & (1 << (23 % 8)));
	cr_assert_eq(vsw_vlan_list("0", bits), -EINVAL);
	cr_assert_eq(vsw_vlan_list("5-3", bits), -EINVAL);
	cr_assert_eq(vsw_vlan_list("10,", bits), 0);
	cr_assert_eq(vsw_vlan_list("10;20", bits), -EINVAL);
	cr_assert_eq(vsw_pg_del(&sw, "dmz"), 0);
	cr_assert_eq(vsw_pg_find(&sw, "dmz"), -ENOENT);
	{
		struct tport a = tport_add(&sw, "lan", 1, 0);

		cr_assert_eq(vsw_pg_del(&sw, "lan"), -EBUSY);
		tport_close(&a);
	}
	/* A group without a VLAN gets the same VNI on every host. */
	cr_assert_eq(sw.pgs[vsw_pg_find(&sw, "v10")].vni, 10);
	cr_assert_geq(sw.pgs[vsw_pg_find(&sw, "lan")].vni, 4096);
}

Test(vswitch, configuration_files)
{
	static const char good[] =
	    "# a switch\n"
	    "portgroup.lan.vlan = \"0\"\n"
	    "portgroup.lan.shape = \"100M/256K\"\n"
	    "portgroup.dmz.vlan = \"20\"\n"
	    "portgroup.all.trunk = \"all\"\n"
	    "uplink = \"tap:tv0\"\n"
	    "uplink.portgroup = \"lan\"\n"
	    "vxlan.peers = \"192.0.2.2,[2001:db8::2]:4790\"\n"
	    "mac.aging = \"60\"\n"
	    "autocreate = \"no\"\n";
	static const struct { const char *text, *want; } bad[] = {
		{ "portgroup.a.vlan = \"5000\"\n", "4094" },
		{ "portgroup.a.vlan = \"5\"\nportgroup.b.vlan = \"5\"\n",
		    "share VLAN 5" },
		{ "portgroup.a.trunk = \"x\"\n", "trunk" },
		{ "portgroup.a.color = \"red\"\n", "unknown port group" },
		{ "portgroup.a.shape = \"fast\"\n", "RATE[/BURST]" },
		{ "uplink = \"eth0\"\n", "tap:IFNAME" },
		{ "uplink = \"pcap:\"\n", "pcap:IFNAME" },
		{ "uplink = \"tap:x\"\n", "uplink.portgroup" },
		{ "nosuch = \"1\"\n", "unknown key" },
		{ "mac.aging = \"0\"\n", "seconds" },
		{ "portgroup.a.vlan = 3\n", "expected '\"'" },
	};
	struct vsw_conf c;
	char err[512];

	cr_assert_eq(vsw_conf_parse("g.conf", good, strlen(good), &c, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(c.npg, 3);
	cr_assert_eq(c.pg[0].shape_bps, 100000000);
	cr_assert_eq(c.pg[0].shape_burst, 256 * 1024);
	cr_assert_str_eq(c.pg[1].name, "dmz");
	cr_assert_eq(c.pg[1].vlan, 20);
	cr_assert_str_eq(c.pg[2].trunk, "all");
	cr_assert_str_eq(c.uplink, "tv0");
	cr_assert_eq(c.npeers, 2);
	cr_assert_str_eq(c.peers[1], "[2001:db8::2]:4790");
	cr_assert_eq(c.aging_s, 60);
	cr_assert_not(c.autocreate);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_lt(vsw_conf_parse("b.conf", bad[i].text,
		    strlen(bad[i].text), &c, err, sizeof(err)), 0, "%s",
		    bad[i].text);
		cr_assert(strstr(err, bad[i].want) != NULL, "%s: %s",
		    bad[i].text, err);
		cr_assert(strstr(err, "b.conf") != NULL, "%s", err);
	}
}

Test(vswitch, shaping_polices_each_port_to_its_rate)
{
	struct tport a = tport_add(&sw, "lan", 1, 0);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	static uint8_t junk[986];
	uint64_t bps, burst;
	size_t n;
	int i, passed = 0;

	cr_assert_eq(vsw_shape_parse("8M/10K", &bps, &burst), 0);
	cr_assert_eq(bps, 8000000);
	cr_assert_eq(burst, 10240);
	cr_assert_eq(vsw_shape_parse("10x", &bps, &burst), -EINVAL);
	cr_assert_eq(vsw_shape_parse("1M/100", &bps, &burst), -EINVAL);
	cr_assert_eq(vsw_shape_parse("0", &bps, &burst), -EINVAL);
	/* 1 MB/s, a 10000-byte bucket, set after the ports exist. */
	vsw_pg_shape(&sw, a.p->pg, 8000000, 10000);
	n = tframe(buf, 2, 1, 0x0800, junk, sizeof(junk));	/* 1000 B */
	for (i = 0; i < 20; i++)
		passed += tsend(&sw, &a, buf, n) == 0 && tcount(&b) == 1;
	/* The bucket of a port made before shaping starts empty, then
	 * fills at the rate: nothing yet at the same instant. */
	cr_assert_eq(passed, 0);
	vclock_advance_fake(20000000);		/* 20 ms: 20000 B, capped */
	for (i = 0, passed = 0; i < 20; i++)
		passed += tsend(&sw, &a, buf, n) == 0 && tcount(&b) == 1;
	cr_assert_eq(passed, 10, "a full bucket: 10 frames");
	vclock_advance_fake(5000000);		/* 5 ms: 5000 B */
	for (i = 0, passed = 0; i < 20; i++)
		passed += tsend(&sw, &a, buf, n) == 0 && tcount(&b) == 1;
	cr_assert_eq(passed, 5);
	cr_assert_eq(a.p->st.rx_shaped, 20 + 10 + 15);
	/* b is not held back by a's bucket. */
	vclock_advance_fake(1000000000);
	n = tframe(buf, 1, 2, 0x0800, junk, sizeof(junk));
	for (i = 0, passed = 0; i < 10; i++)
		passed += tsend(&sw, &b, buf, n) == 0 && tcount(&a) == 1;
	cr_assert_eq(passed, 10);
	vsw_pg_shape(&sw, a.p->pg, 0, 0);
	tport_close(&a);
	tport_close(&b);
}

/* IPv6 pseudo-header sum of the packet at ip6 for l4len bytes of TCP. */
static uint32_t
tpseudo6(const uint8_t *ip6, size_t l4len)
{
	uint32_t s = 0;

	for (int i = 8; i < 40; i += 2)
		s += (uint32_t)(ip6[i] << 8 | ip6[i + 1]);
	return s + 6 + (uint32_t)l4len;
}

Test(vswitch, tcp6_gso_frames_are_segmented_too)
{
	struct tport a = tport_add(&sw, "lan", 1, VSW_F_CSUM | VSW_F_GSO);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	struct vsw_net_hdr *h = (struct vsw_net_hdr *)buf;
	uint8_t *f = buf + sizeof(*h), *ip6 = f + 14, *tcp = ip6 + 40;
	size_t data = 2500, seen = 0, hl = sizeof(*h) + 14 + 40 + 20;
	ssize_t r;
	int segs = 0;

	tframe(buf, 0xff, 1, 0x86dd, "", 0);
	memset(ip6, 0, 40);
	ip6[0] = 0x60;
	ip6[4] = (uint8_t)((20 + data) >> 8);
	ip6[5] = (uint8_t)(20 + data);
	ip6[6] = 6;
	ip6[7] = 64;
	ip6[8] = 0xfd; ip6[23] = 1;		/* fd00::1 */
	ip6[24] = 0xfd; ip6[39] = 2;		/* fd00::2 */
	memset(tcp, 0, 20);
	tcp[3] = 80;
	tcp[7] = 1;				/* seq 1 */
	tcp[12] = 5 << 4;
	tcp[13] = 0x19;				/* FIN PSH ACK */
	for (size_t i = 0; i < data; i++)
		tcp[20 + i] = (uint8_t)(i * 3);
	h->flags = 1;
	h->gso_type = 4;
	h->gso_size = 1200;
	h->hdr_len = 74;
	h->csum_start = 54;
	h->csum_offset = 16;
	tsend(&sw, &a, buf, hl + data);
	while ((r = trecv(&b, rbuf, sizeof(rbuf))) >= 0) {
		uint8_t *i6 = rbuf + sizeof(*h) + 14, *t = i6 + 40;
		size_t plen = (size_t)r - hl;

		cr_assert_eq((size_t)(i6[4] << 8 | i6[5]), 20 + plen);
		cr_assert_eq(vsw_inet_csum(t, 20 + plen, tpseudo6(i6,
		    20 + plen)), 0, "TCP checksum of segment %d", segs);
		cr_assert_eq(memcmp(t + 20, tcp + 20 + seen, plen), 0);
		cr_assert_eq(!!(t[13] & 0x01), seen + plen == data,
		    "FIN on the last segment only");
		cr_assert_eq((uint32_t)t[7] | (uint32_t)t[6] << 8, 1 + seen);
		seen += plen;
		segs++;
	}
	cr_assert_eq(segs, 3);
	cr_assert_eq(seen, data);
	/* A TSO4 header on an IPv6 frame is a lie: not segmented. */
	tframe(buf, 0xff, 1, 0x86dd, "", 0);
	h->gso_type = 1;
	h->gso_size = 1200;
	tsend(&sw, &a, buf, hl + data);
	cr_assert_eq(tcount(&b), 0);
	cr_assert_eq(b.p->st.tx_offload, 1);
	tport_close(&a);
	tport_close(&b);
}
