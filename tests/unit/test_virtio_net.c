/*
 * virtio-net driven as Linux's virtio_pci_modern and virtio_net drivers
 * do (capabilities, MSI-X, features, rings laid out in guest RAM, kicks),
 * with the VM's event thread running and the NIC's backend connected to
 * a fake switch this test serves: a SOCK_SEQPACKET listener at the
 * switch's socket path in a private XDG_RUNTIME_DIR that answers the
 * hello with a welcome, then sends and receives frames as the protocol
 * of vswitch_proto.h says.  Then the hostile side: descriptors outside
 * RAM, frames too short or too long, a switch that goes away.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "null_accel.h"
#include "virtio_harness.h"
#include "devices/bus.h"
#include "devices/device.h"
#include "devices/pci.h"
#include "devices/virtio.h"
#include "devices/virtio_net.h"
#include "migrate/snap.h"
#include "run.h"
#include "util/evloop.h"
#include "vmfs/vmx.h"
#include "vswitch/vswitch_proto.h"

#define RAM		(64u << 20)
#define QSIZE		128
#define QBASE		0x100000ull	/* queue q's rings at QBASE + q * QSTRIDE */
#define QSTRIDE		0x4000ull
#define BUFS		0x400000ull	/* buffers, 4 KiB each */
#define NQ		5		/* 2 pairs and the control queue */
#define CTRLQ		4
#define HDR		VIRTIO_NET_HDR_LEN

static const uint8_t test_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

static struct accel_ops rec_ops;	/* records MSIs (vh_rec_msi) */

static struct vm_config cfg;
static pthread_t loop_thread;
static bool loop_gone;		/* the test stopped the event thread */
static bool kicks_on_vcpu;	/* the accelerator's, for vm_up */
static char rundir[64];
static int lfd = -1, sw = -1;	/* the fake switch: listener, port */
static struct vsw_hello hello;

static uint16_t avail_idx[NQ], used_seen[NQ];

static void
probe(void)
{
	vh_probe(VIRTIO_ID_NET, true);
	cr_assert_eq(cfg_rd(PCI_CLASS_PROG + 2, 1), 0x02, "network class");
	cr_assert(devcfg && msix_table);
}

static uint64_t
rings(unsigned q)
{
	return QBASE + q * QSTRIDE;
}

/* Queue q's rings: the descriptors, then avail and used a page apart. */
static struct vh_ring
ring(unsigned q)
{
	return (struct vh_ring){ rings(q), rings(q) + 0x1000,
	    rings(q) + 0x2000, QSIZE };
}

static void
queue_setup(unsigned q)
{
	struct vh_ring r = ring(q);

	vh_queue_setup(q, &r, (uint16_t)(q + 1));
	avail_idx[q] = used_seen[q] = 0;
}

/* Negotiate every offered feature except those in drop. */
static void
driver_init(uint64_t drop)
{
	uint64_t f;

	vh_begin();
	f = device_features() & ~drop;
	vh_negotiate(f);
	for (unsigned v = 0; v <= NQ; v++)
		msix_vector(v);
	mmio_wr(common + VIRTIO_COMMON_MSIX, 2, 0);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_NUMQ, 2), NQ);
	for (unsigned q = 0; q < NQ; q++)
		queue_setup(q);
	vh_driver_ok();
}

/* --- the driver's side of the rings --- */

static void
desc(unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
    uint16_t next)
{
	struct vh_ring r = ring(q);

	vh_desc(&r, i, addr, len, flags, next);
}

static void
avail_add(unsigned q, uint16_t head)
{
	struct vh_ring r = ring(q);

	vh_avail(&r, &avail_idx[q], head);
}

static void
kick(unsigned q)
{
	vh_notify(q);
}

static uint16_t
used_idx(unsigned q)
{
	struct vh_ring r = ring(q);

	return vh_used_idx(&r);
}

/* Wait (at most 5 s) for n more used entries of queue q, and for the
 * interrupts that go with them. */
static bool
wait_used(unsigned q, unsigned n)
{
	struct vh_ring r = ring(q);

	return vh_wait_used(&r, used_seen[q], n, 5000);
}

/* Wait (at most 2 s) for vector v to have fired n times in all: a
 * transmit completion's interrupt may be held a little (moderation). */
static bool
wait_msi(unsigned v, int n)
{
	for (int i = 0; i < 2000; i++) {
		if (__atomic_load_n(&msis[v], __ATOMIC_ACQUIRE) >= n)
			return true;
		usleep(1000);
	}
	return false;
}

/* The driver's used_event of queue q (EVENT_IDX): after avail's ring. */
static void
set_used_event(unsigned q, uint16_t v)
{
	__atomic_store_n((uint16_t *)ram(ring(q).avail + 4 + 2 * QSIZE, 2), v,
	    __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Wait (at most 2 s) for the device to ask for a reset: transmit
 * kicks are served by the event thread, after the kick returned. */
static bool
wait_needs_reset(void)
{
	for (int i = 0; i < 2000; i++) {
		if (mmio_rd(common + VIRTIO_COMMON_STATUS, 1) &
		    VIRTIO_S_NEEDS_RESET)
			return true;
		usleep(1000);
	}
	return false;
}

/* The next used entry of q (after wait_used). */
static void
used_next(unsigned q, uint32_t *id, uint32_t *len)
{
	struct vh_ring r = ring(q);

	vh_used_elem(&r, used_seen[q]++, id, len);
}

static uint64_t
buf(unsigned i)
{
	return BUFS + 0x1000ull * i;
}

/* Give receive queue q buffers i0..i0+n-1 (2 KiB each, one descriptor). */
static void
rx_post(unsigned q, unsigned i0, unsigned n, uint32_t len)
{
	for (unsigned i = i0; i < i0 + n; i++) {
		memset(ram(buf(i), len), 0xee, len);
		desc(q, i % QSIZE, buf(i), len, VIRTQ_DESC_F_WRITE, 0);
		avail_add(q, (uint16_t)(i % QSIZE));
	}
	kick(q);
}

/* A test frame of len bytes: broadcast, from our MAC, seeded payload. */
static void
frame(uint8_t *f, size_t len, unsigned seed)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, test_mac, 6);
	f[12] = 0x88;
	f[13] = 0xb5;		/* local experimental ethertype */
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(i * 13 + seed);
}

/* Put one frame on queue 1 with buffer i: header and frame in
 * separate descriptors, as a driver may lay them out. */
static void
tx_queue_frame(unsigned i, const uint8_t *h, const uint8_t *f, uint32_t flen)
{
	unsigned d = (2 * i) % QSIZE;

	memcpy(ram(buf(i), HDR), h, HDR);
	memcpy(ram(buf(i) + 64, flen), f, flen);
	desc(1, d, buf(i), HDR, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
	desc(1, d + 1, buf(i) + 64, flen, 0, 0);
	avail_add(1, (uint16_t)d);
}

/* ... and kick. */
static void
tx_send(unsigned i, const uint8_t *h, const uint8_t *f, uint32_t flen)
{
	tx_queue_frame(i, h, f, flen);
	kick(1);
}

/* --- the fake switch --- */

static void
switch_listen(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[128];

	snprintf(rundir, sizeof(rundir), "/tmp/tv-vnet-XXXXXX");
	cr_assert_not_null(mkdtemp(rundir));
	setenv("XDG_RUNTIME_DIR", rundir, 1);
	snprintf(dir, sizeof(dir), "%s/termvisor", rundir);
	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(vsw_socket_path(NULL, sa.sun_path, sizeof(sa.sun_path)),
	    0);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(lfd, 4), 0);
}

/* Take the NIC's connection: read its hello, answer status. */
static void
switch_accept(int32_t status)
{
	struct pollfd p = { lfd, POLLIN, 0 };
	struct vsw_welcome w = { VSW_MAGIC, VSW_VERSION, 0, status, 7, "" };

	cr_assert_eq(poll(&p, 1, 5000), 1, "the NIC never connected");
	sw = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(sw, 0);
	cr_assert_eq(recv(sw, &hello, sizeof(hello), 0), sizeof(hello));
	if (status != 0)
		snprintf(w.message, sizeof(w.message), "no such port group");
	cr_assert_eq(send(sw, &w, sizeof(w), 0), sizeof(w));
}

/* One message from the NIC within 2 s into m; its length or -1. */
static ssize_t
switch_recv(uint8_t *m, size_t len, int ms)
{
	struct pollfd p = { sw, POLLIN, 0 };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return recv(sw, m, len, MSG_DONTWAIT);
}

static void
switch_send(const struct vsw_net_hdr *h, const uint8_t *f, size_t flen)
{
	uint8_t m[HDR + 4096];

	cr_assert_leq(flen, 4096);
	memcpy(m, h, HDR);
	memcpy(m + HDR, f, flen);
	cr_assert_eq(send(sw, m, HDR + flen, 0), (ssize_t)(HDR + flen));
}

static uint16_t
link_status(void)
{
	return (uint16_t)mmio_rd(devcfg + VIRTIO_NET_CFG_STATUS, 2);
}

static bool
wait_link(bool up)
{
	for (int i = 0; i < 5000; i++) {
		if (!!(link_status() & VIRTIO_NET_S_LINK_UP) == up)
			return true;
		usleep(1000);
	}
	return false;
}

static struct device_stats
stats(void)
{
	struct device_stats st = { 0 };

	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].ops == &virtio_net_ops)
			vm->devices[i].ops->stats(vm->devices[i].state, &st);
	return st;
}

/* --- set up and tear down --- */

static void
vm_up(void)
{
	int err;

	memset(msis, 0, sizeof(msis));
	rec_ops = null_accel_ops;
	rec_ops.msi = vh_rec_msi;
	rec_ops.kicks_on_vcpu = kicks_on_vcpu;
	vm_config_defaults(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "vnet-test");
	cfg.memory = RAM;
	cfg.cpus = 2;		/* two queue pairs by default */
	cfg.nnics = 1;
	snprintf(cfg.nics[0].portgroup, sizeof(cfg.nics[0].portgroup),
	    "pg-test");
	memcpy(cfg.nics[0].mac, test_mac, 6);
	cfg.nics[0].mac_set = true;
	vm = vm_create(&cfg, &rec_ops, &err);
	cr_assert_not_null(vm, "vm_create: %s", strerror(-err));
	cr_assert_eq(pthread_create(&loop_thread, NULL, vh_loop_main,
	    vm->loop), 0);
	probe();
}

static void
setup_nocsum(void)
{
	switch_listen();
	vm_up();
	switch_accept(0);
	driver_init(1ull << VIRTIO_NET_F_GUEST_CSUM);
	cr_assert(wait_link(true), "link up once the switch welcomed us");
}

static void
setup_nomrg(void)
{
	switch_listen();
	vm_up();
	switch_accept(0);
	driver_init(1ull << VIRTIO_NET_F_MRG_RXBUF);
	cr_assert(wait_link(true), "link up once the switch welcomed us");
}

static void
setup_notso(void)
{
	switch_listen();
	vm_up();
	switch_accept(0);
	driver_init(1ull << VIRTIO_NET_F_GUEST_TSO4 |
	    1ull << VIRTIO_NET_F_GUEST_TSO6);
	cr_assert(wait_link(true), "link up once the switch welcomed us");
}

static void
setup(void)
{
	switch_listen();
	vm_up();
	switch_accept(0);
	driver_init(0);
	cr_assert(wait_link(true), "link up once the switch welcomed us");
}

/* As setup, on an accelerator that exits for every kick (bt). */
static void
setup_kicks_on_vcpu(void)
{
	kicks_on_vcpu = true;
	setup();
}

static void
teardown(void)
{
	char path[128];

	if (vm != NULL) {
		if (!loop_gone) {
			evloop_stop(vm->loop);
			pthread_join(loop_thread, NULL);
		}
		vm_destroy(vm);
		vm = NULL;
	}
	if (sw >= 0)
		close(sw);
	if (lfd >= 0)
		close(lfd);
	sw = lfd = -1;
	if (vsw_socket_path(NULL, path, sizeof(path)) == 0)
		unlink(path);
	snprintf(path, sizeof(path), "%s/termvisor", rundir);
	rmdir(path);
	rmdir(rundir);
}

TestSuite(virtio_net, .init = setup, .fini = teardown, .timeout = 30);

Test(virtio_net, config_space_hello_and_features)
{
	uint64_t f = device_features();

	for (unsigned i = 0; i < 6; i++)
		cr_assert_eq(mmio_rd(devcfg + VIRTIO_NET_CFG_MAC + i, 1),
		    test_mac[i]);
	cr_assert_eq(mmio_rd(devcfg + VIRTIO_NET_CFG_MAX_PAIRS, 2), 2);
	cr_assert(f >> VIRTIO_NET_F_MAC & 1);
	cr_assert(f >> VIRTIO_NET_F_STATUS & 1);
	cr_assert(f >> VIRTIO_NET_F_CTRL_VQ & 1);
	cr_assert(f >> VIRTIO_NET_F_MQ & 1);
	cr_assert(f >> VIRTIO_NET_F_GUEST_ANNOUNCE & 1);
	cr_assert(f >> VIRTIO_F_RING_EVENT_IDX & 1);
	/* GSO frames both ways: the switch segments for those that take
	 * none, and so does the NIC for a driver that takes none. */
	cr_assert(f >> VIRTIO_NET_F_HOST_TSO4 & 1);
	cr_assert(f >> VIRTIO_NET_F_HOST_TSO6 & 1);
	cr_assert(f >> VIRTIO_NET_F_GUEST_TSO4 & 1);
	cr_assert(f >> VIRTIO_NET_F_GUEST_TSO6 & 1);
	cr_assert(f >> VIRTIO_NET_F_MRG_RXBUF & 1);
	/* The hello named the NIC as the protocol says. */
	cr_assert_eq(hello.magic, VSW_MAGIC);
	cr_assert_eq(hello.version, VSW_VERSION);
	cr_assert_arr_eq(hello.mac, test_mac, 6);
	cr_assert_str_eq(hello.portgroup, "pg-test");
	cr_assert_str_eq(hello.vm, "vnet-test");
	cr_assert_str_eq(hello.nic, "net0");
	cr_assert_eq(hello.features, VSW_F_CSUM | VSW_F_GSO);
}

Test(virtio_net, transmit_reaches_the_switch_with_header)
{
	uint8_t h[HDR] = { 0 }, f[200], m[512];
	struct device_stats st;
	uint32_t id, len;
	ssize_t n;

	frame(f, sizeof(f), 3);
	/* A partial checksum at 34+16 (a TCP-like offset) travels on. */
	h[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	bus_put(h + 6, 2, 34);
	bus_put(h + 8, 2, 16);
	bus_put(h + 10, 2, 0x5555);	/* num_buffers: not the wire's */
	tx_send(0, h, f, sizeof(f));
	n = switch_recv(m, sizeof(m), 2000);
	cr_assert_eq(n, HDR + sizeof(f), "one message: header and frame");
	cr_assert_eq(m[0], VIRTIO_NET_HDR_F_NEEDS_CSUM);
	cr_assert_eq(bus_get(m + 6, 2), 34);
	cr_assert_eq(bus_get(m + 8, 2), 16);
	cr_assert_eq(bus_get(m + 10, 2), 0, "num_buffers 0 on the wire");
	cr_assert_arr_eq(m + HDR, f, sizeof(f));
	cr_assert(wait_used(1, 1));
	used_next(1, &id, &len);
	cr_assert_eq(id, 0);
	cr_assert(wait_msi(2, 1), "transmit queue's vector fired");
	st = stats();
	cr_assert_str_eq(st.kind, "net");
	cr_assert_eq(st.tx_ops, 1);
	cr_assert_eq(st.tx_bytes, sizeof(f));
}

Test(virtio_net, transmit_batch_of_many_frames)
{
	uint8_t h[HDR] = { 0 }, f[100], m[512];

	for (unsigned i = 0; i < 50; i++) {
		frame(f, sizeof(f), i);
		tx_send(i, h, f, sizeof(f));
	}
	for (unsigned i = 0; i < 50; i++) {
		cr_assert_eq(switch_recv(m, sizeof(m), 2000), HDR + sizeof(f),
		    "frame %u", i);
		frame(f, sizeof(f), i);
		cr_assert_arr_eq(m + HDR, f, sizeof(f), "frame %u in order", i);
	}
	cr_assert(wait_used(1, 50));
	cr_assert_eq(stats().tx_ops, 50);
}

Test(virtio_net, receive_fills_buffers)
{
	struct vsw_net_hdr h = { 0 };
	uint8_t f[300], *b;
	uint32_t id, len;

	rx_post(0, 0, 4, 2048);
	for (unsigned i = 0; i < 3; i++) {
		frame(f, sizeof(f), 10 + i);
		switch_send(&h, f, sizeof(f));
	}
	cr_assert(wait_used(0, 3), "three frames received");
	for (unsigned i = 0; i < 3; i++) {
		used_next(0, &id, &len);
		cr_assert_eq(id, i);
		cr_assert_eq(len, HDR + sizeof(f));
		b = ram(buf(i), 2048);
		cr_assert_eq(bus_get(b + 10, 2), 1, "num_buffers 1");
		frame(f, sizeof(f), 10 + i);
		cr_assert_arr_eq(b + HDR, f, sizeof(f));
	}
	cr_assert_gt(msis[1], 0, "receive queue's vector fired");
	cr_assert_eq(stats().rx_ops, 3);
	cr_assert_eq(stats().rx_bytes, 3 * sizeof(f));
}

Test(virtio_net, receive_waits_for_buffers)
{
	struct vsw_net_hdr h = { 0 };
	uint8_t f[80];
	uint32_t id, len;

	/* Frames before any buffer wait in the socket, not dropped. */
	rx_post(0, 0, 0, 0);
	frame(f, sizeof(f), 1);
	switch_send(&h, f, sizeof(f));
	switch_send(&h, f, sizeof(f));
	usleep(100000);
	cr_assert_eq(used_idx(0), 0);
	rx_post(0, 0, 1, 2048);
	cr_assert(wait_used(0, 1));
	used_next(0, &id, &len);
	usleep(50000);
	cr_assert_eq(used_idx(0), 1, "one buffer, one frame");
	rx_post(0, 1, 1, 2048);
	cr_assert(wait_used(0, 1), "the second frame came with a buffer");
	cr_assert_eq(stats().errors, 0);
}

/* Without MRG_RXBUF, one frame per buffer: one too large is dropped. */
Test(virtio_net, bad_frames_from_the_switch_are_dropped,
    .init = setup_nomrg)
{
	struct vsw_net_hdr h = { 0 }, gso = { .gso_type = 1, .gso_size = 1448 };
	uint8_t f[3000];
	uint32_t id, len;

	rx_post(0, 0, 1, 1024);
	frame(f, sizeof(f), 2);
	switch_send(&h, f, 10);			/* shorter than Ethernet */
	switch_send(&gso, f, 1000);		/* GSO of a non-TCP frame */
	switch_send(&h, f, 2000);		/* larger than the buffer */
	switch_send(&h, f, 500);		/* fine */
	cr_assert(wait_used(0, 1));
	used_next(0, &id, &len);
	cr_assert_eq(len, HDR + 500, "the buffer waited for a frame it holds");
	cr_assert_arr_eq((uint8_t *)ram(buf(0), 1024) + HDR, f, 500);
	cr_assert_eq(stats().errors, 3);
	cr_assert_eq(stats().rx_ops, 1);
}

Test(virtio_net, partial_checksum_completed_for_a_driver_without_csum,
    .init = setup_nocsum)
{
	struct vsw_net_hdr h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
	    .csum_start = 34, .csum_offset = 16 };
	uint8_t f[101], *b;
	uint32_t id, len, sum = 0;

	frame(f, sizeof(f), 5);
	f[50] = f[51] = 0;
	rx_post(0, 0, 1, 2048);
	switch_send(&h, f, sizeof(f));
	cr_assert(wait_used(0, 1));
	used_next(0, &id, &len);
	b = ram(buf(0), 2048);
	cr_assert_eq(b[0], 0, "no NEEDS_CSUM for this driver");
	/* The one's-complement sum from csum_start now checks out. */
	for (unsigned i = 34; i < sizeof(f); i += 2)
		sum += (uint32_t)b[HDR + i] << 8 |
		    (i + 1 < sizeof(f) ? b[HDR + i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	cr_assert_eq(sum, 0xffff);
}

Test(virtio_net, hostile_transmit_descriptors)
{
	uint8_t h[HDR] = { 0 }, f[60];
	uint32_t id, len;

	/* A header without a frame: dropped, counted, the buffer back. */
	memcpy(ram(buf(0), HDR), h, HDR);
	desc(1, 0, buf(0), HDR, 0, 0);
	avail_add(1, 0);
	kick(1);
	cr_assert(wait_used(1, 1));
	used_next(1, &id, &len);
	cr_assert_eq(stats().errors, 1);
	cr_assert_eq(switch_recv(f, sizeof(f), 100), -1, "nothing sent");
	/* GSO without a partial checksum, and UDP GSO (never offered):
	 * dropped. */
	frame(f, sizeof(f), 0);
	h[1] = 1;
	tx_send(1, h, f, sizeof(f));
	cr_assert(wait_used(1, 1));
	used_next(1, &id, &len);
	cr_assert_eq(stats().errors, 2);
	h[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	bus_put(h + 2, 2, 54);
	bus_put(h + 4, 2, 1448);
	bus_put(h + 6, 2, 34);
	bus_put(h + 8, 2, 6);
	h[1] = 3;
	tx_send(1, h, f, sizeof(f));
	cr_assert(wait_used(1, 1));
	used_next(1, &id, &len);
	cr_assert_eq(stats().errors, 3);
	memset(h, 0, HDR);
	/* A buffer past the end of RAM: NEEDS_RESET, nothing else. */
	desc(1, 10, RAM - 16, 4096, 0, 0);
	avail_add(1, 10);
	kick(1);
	cr_assert(wait_needs_reset());
	cr_assert_eq(switch_recv(f, sizeof(f), 100), -1);
	/* A reset brings it back. */
	driver_init(0);
	frame(f, sizeof(f), 9);
	h[1] = 0;
	tx_send(0, h, f, sizeof(f));
	{
		uint8_t m[256];

		cr_assert_eq(switch_recv(m, sizeof(m), 2000), HDR + sizeof(f));
	}
}

Test(virtio_net, descriptor_loop_and_index_run_ahead)
{
	uint8_t *a;

	desc(1, 0, buf(0), 64, VIRTQ_DESC_F_NEXT, 1);
	desc(1, 1, buf(0), 64, VIRTQ_DESC_F_NEXT, 0);
	avail_add(1, 0);
	kick(1);
	cr_assert(wait_needs_reset());
	driver_init(0);
	/* The receive side: avail index far beyond the ring. */
	a = ram(rings(0) + 0x1000, 4);
	__atomic_store_n((uint16_t *)(a + 2), 1000, __ATOMIC_RELEASE);
	kick(0);
	cr_assert(mmio_rd(common + VIRTIO_COMMON_STATUS, 1) &
	    VIRTIO_S_NEEDS_RESET);
}

Test(virtio_net, link_down_by_command_and_by_switch)
{
	uint8_t h[HDR] = { 0 }, f[60], m[128];
	int cfgirq = msis[0];

	/* The administrator's link down. */
	pthread_mutex_lock(&vm->devlock);
	cr_assert_eq(virtio_net_set_link(vm, 0, false), 0);
	cr_assert_eq(virtio_net_link(vm, 0), 0);
	cr_assert_eq(virtio_net_set_link(vm, 1, false), -ENODEV);
	pthread_mutex_unlock(&vm->devlock);
	cr_assert_not(link_status() & VIRTIO_NET_S_LINK_UP);
	cr_assert_gt(msis[0], cfgirq, "configuration change signalled");
	frame(f, sizeof(f), 1);
	tx_send(0, h, f, sizeof(f));
	cr_assert(wait_used(1, 1), "dropped frames are still completed");
	used_next(1, &(uint32_t){ 0 }, &(uint32_t){ 0 });
	cr_assert_eq(switch_recv(m, sizeof(m), 200), -1, "nothing sent");
	pthread_mutex_lock(&vm->devlock);
	virtio_net_set_link(vm, 0, true);
	pthread_mutex_unlock(&vm->devlock);
	cr_assert(link_status() & VIRTIO_NET_S_LINK_UP);
	/* The switch goes away: link down, and back with a new switch. */
	close(sw);
	sw = -1;
	cr_assert(wait_link(false), "link down when the switch is gone");
	switch_accept(0);
	cr_assert(wait_link(true), "link up again after the reconnect");
	tx_send(1, h, f, sizeof(f));
	cr_assert_eq(switch_recv(m, sizeof(m), 2000), HDR + sizeof(f));
}

Test(virtio_net, switch_refusal_keeps_link_down)
{
	close(sw);
	sw = -1;
	cr_assert(wait_link(false));
	switch_accept(-ENOENT);
	usleep(200000);
	cr_assert_not(link_status() & VIRTIO_NET_S_LINK_UP);
	close(sw);
	switch_accept(0);
	cr_assert(wait_link(true), "a later attempt succeeds");
}

/* A control command on the control queue (index 4: 2 pairs, MQ). */
static uint8_t
ctrl(uint8_t cls, uint8_t cmd, const void *data, uint32_t dlen)
{
	uint8_t *b = ram(buf(100), 64);
	uint32_t id, len;

	b[0] = cls;
	b[1] = cmd;
	memcpy(b + 2, data, dlen);
	b[40] = 0xee;
	desc(CTRLQ, 0, buf(100), 2, VIRTQ_DESC_F_NEXT, 1);
	desc(CTRLQ, 1, buf(100) + 2, dlen, VIRTQ_DESC_F_NEXT, 2);
	desc(CTRLQ, 2, buf(100) + 40, 1, VIRTQ_DESC_F_WRITE, 0);
	avail_add(CTRLQ, 0);
	kick(CTRLQ);
	cr_assert(wait_used(CTRLQ, 1));
	used_next(CTRLQ, &id, &len);
	cr_assert_eq(len, 1);
	return b[40];
}

Test(virtio_net, multiqueue_through_the_control_queue)
{
	struct vsw_net_hdr h = { 0 };
	uint8_t f[100];
	uint16_t n;

	n = 3;
	cr_assert_eq(ctrl(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
	    &n, 2), VIRTIO_NET_ERR, "more pairs than offered");
	n = 0;
	cr_assert_eq(ctrl(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
	    &n, 2), VIRTIO_NET_ERR);
	cr_assert_eq(ctrl(99, 0, &n, 2), VIRTIO_NET_ERR, "unknown class");
	n = 2;
	cr_assert_eq(ctrl(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
	    &n, 2), VIRTIO_NET_OK);
	/* With two pairs, the second receive queue is used: here it is the
	 * only one with buffers. */
	rx_post(2, 0, 2, 2048);
	frame(f, sizeof(f), 4);
	switch_send(&h, f, sizeof(f));
	cr_assert(wait_used(2, 1), "frame on receiveq2");
	cr_assert_eq(used_idx(0), 0);
	/* The second transmit queue sends too. */
	memcpy(ram(buf(50), HDR), &h, HDR);
	memcpy(ram(buf(50) + HDR, sizeof(f)), f, sizeof(f));
	desc(3, 0, buf(50), HDR + sizeof(f), 0, 0);
	avail_add(3, 0);
	kick(3);
	{
		uint8_t m[256];

		cr_assert_eq(switch_recv(m, sizeof(m), 2000), HDR + sizeof(f));
		cr_assert_arr_eq(m + HDR, f, sizeof(f));
	}
}

Test(virtio_net, announce_by_guest_or_by_rarp)
{
	uint8_t m[128];
	int cfgirq = msis[0];

	pthread_mutex_lock(&vm->devlock);
	virtio_net_announce(vm);
	pthread_mutex_unlock(&vm->devlock);
	cr_assert(link_status() & VIRTIO_NET_S_ANNOUNCE);
	cr_assert_gt(msis[0], cfgirq);
	cr_assert_eq(ctrl(VIRTIO_NET_CTRL_ANNOUNCE,
	    VIRTIO_NET_CTRL_ANNOUNCE_ACK, m, 0), VIRTIO_NET_OK);
	cr_assert_not(link_status() & VIRTIO_NET_S_ANNOUNCE);
	/* A driver without GUEST_ANNOUNCE: the NIC sends a RARP. */
	driver_init(1ull << VIRTIO_NET_F_GUEST_ANNOUNCE);
	pthread_mutex_lock(&vm->devlock);
	virtio_net_announce(vm);
	pthread_mutex_unlock(&vm->devlock);
	cr_assert_eq(switch_recv(m, sizeof(m), 2000), HDR + 60);
	cr_assert_eq(m[HDR + 12], 0x80);
	cr_assert_eq(m[HDR + 13], 0x35, "RARP");
	cr_assert_arr_eq(m + HDR + 6, test_mac, 6);
	cr_assert_not(link_status() & VIRTIO_NET_S_ANNOUNCE);
	/* Link down (no port yet after a move): the RARP waits for it. */
	pthread_mutex_lock(&vm->devlock);
	virtio_net_set_link(vm, 0, false);
	virtio_net_announce(vm);
	pthread_mutex_unlock(&vm->devlock);
	cr_assert_eq(switch_recv(m, sizeof(m), 200), -1, "nothing yet");
	pthread_mutex_lock(&vm->devlock);
	virtio_net_set_link(vm, 0, true);
	pthread_mutex_unlock(&vm->devlock);
	cr_assert_eq(switch_recv(m, sizeof(m), 2000), HDR + 60);
	cr_assert_eq(m[HDR + 13], 0x35, "the RARP once the link is up");
}

Test(virtio_net, snapshot_gives_held_buffers_back)
{
	struct vsw_net_hdr h = { 0 };
	struct snap s, l;
	uint8_t f[90];
	/* Buffers the device took but did not fill yet. */
	rx_post(0, 0, 8, 2048);
	usleep(50000);
	snap_init_save(&s);
	pthread_mutex_lock(&vm->devlock);
	cr_assert_eq(devices_snapshot(vm, &s), 0);
	pthread_mutex_unlock(&vm->devlock);
	snap_init_load(&l, s.buf, s.len);
	pthread_mutex_lock(&vm->devlock);
	cr_assert_eq(devices_snapshot(vm, &l), 0, "%s", l.errmsg);
	pthread_mutex_unlock(&vm->devlock);
	snap_free(&l);
	snap_free(&s);
	/* All eight buffers still serve frames after the load. */
	frame(f, sizeof(f), 6);
	for (int i = 0; i < 8; i++)
		switch_send(&h, f, sizeof(f));
	cr_assert(wait_used(0, 8), "no buffer lost across the snapshot");
}

Test(virtio_net, parse_nic_argument, .init = NULL, .fini = NULL)
{
	struct vmcfg_nic n;
	char err[256];

	cr_assert_eq(virtio_net_parse_arg("lan", &n, err, sizeof(err)), 0);
	cr_assert_str_eq(n.portgroup, "lan");
	cr_assert_not(n.mac_set);
	cr_assert_eq(virtio_net_parse_arg("portgroup=VM-Net,mac=52:54:00:"
	    "01:02:03,queues=2", &n, err, sizeof(err)), 0);
	cr_assert_str_eq(n.portgroup, "VM-Net");
	cr_assert(n.mac_set);
	cr_assert_eq(n.mac[5], 3);
	cr_assert_eq(n.queues, 2);
	cr_assert_lt(virtio_net_parse_arg("lan,mac=01:00:00:00:00:01", &n,
	    err, sizeof(err)), 0, "multicast MAC refused");
	cr_assert_lt(virtio_net_parse_arg("lan,queues=9", &n, err,
	    sizeof(err)), 0);
	cr_assert_lt(virtio_net_parse_arg("mac=52:54:00:01:02:03", &n, err,
	    sizeof(err)), 0, "no port group");
	cr_assert_lt(virtio_net_parse_arg("a b", &n, err, sizeof(err)), 0);
	cr_assert_lt(virtio_net_parse_arg("lan,speed=10", &n, err,
	    sizeof(err)), 0);
}

/* Large frames faster than the switch reads: the socket fills, the
 * device waits (no drop, no spinning) and sends the rest in order once
 * there is room. */
Test(virtio_net, transmit_waits_for_a_full_socket)
{
	enum { N = 100, LEN = 60000 };
	static uint8_t m[HDR + LEN + 16];
	uint8_t h[HDR] = { 0 };
	unsigned got = 0;
	ssize_t n;

	for (unsigned i = 0; i < N; i++) {
		uint8_t *f = ram(BUFS + 0x10000ull * i, HDR + LEN);

		/* Header and frame in one buffer (VERSION_1's any layout). */
		memcpy(f, h, HDR);
		frame(f + HDR, 64, i);
		f[HDR + 20] = (uint8_t)i;
		desc(1, i, BUFS + 0x10000ull * i, HDR + LEN, 0, 0);
		avail_add(1, (uint16_t)i);
	}
	kick(1);
	usleep(100000);
	cr_assert_lt((uint16_t)(used_idx(1) - used_seen[1]), N,
	    "2 MiB of socket cannot hold 6 MB: some frames wait");
	while ((n = switch_recv(m, sizeof(m), 2000)) > 0) {
		cr_assert_eq(n, HDR + LEN);
		cr_assert_eq(m[HDR + 20], got, "frame %u in order", got);
		if (++got == N)
			break;
	}
	cr_assert_eq(got, N, "every frame arrived (%u, used %u, errors %llu)", got,
	    (uint16_t)(used_idx(1) - used_seen[1]),
	    (unsigned long long)stats().errors);
	cr_assert(wait_used(1, N));
	cr_assert_eq(stats().errors, 0);
	cr_assert_eq(stats().tx_ops, N);
}

/* A switch that floods: each readable event takes a bounded batch, so
 * a vCPU's access to the device still gets the lock promptly, and the
 * frames the buffers cannot take wait in the socket. */
Test(virtio_net, receive_flood_is_bounded)
{
	struct vsw_net_hdr h = { 0 };
	struct timespec t0, t1;
	uint8_t f[200];
	double worst = 0;

	frame(f, sizeof(f), 1);
	for (int i = 0; i < 2000; i++)
		if (send(sw, &(uint8_t[HDR + sizeof(f)]){ 0 }, HDR +
		    sizeof(f), MSG_DONTWAIT) < 0)
			break;
	(void)h;
	rx_post(0, 0, QSIZE, 2048);
	for (int i = 0; i < 200; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		(void)link_status();
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9 >
		    worst)
			worst = (t1.tv_sec - t0.tv_sec) +
			    (t1.tv_nsec - t0.tv_nsec) / 1e9;
	}
	cr_assert(wait_used(0, QSIZE), "every buffer filled");
	cr_assert_lt(worst, 0.5, "a register read waited %.3f s", worst);
	usleep(100000);
	cr_assert_eq((uint16_t)(used_idx(0) - used_seen[0]), QSIZE,
	    "no more frames than buffers");
}

/* A guest reboot (the VM's reset) keeps the switch port; the driver
 * sets the device up again and frames flow both ways. */
Test(virtio_net, vm_reset_keeps_the_port)
{
	struct vsw_net_hdr h = { 0 };
	uint8_t f[80], m[256];

	rx_post(0, 0, 4, 2048);
	usleep(20000);
	pthread_mutex_lock(&vm->devlock);
	devices_reset(vm);
	pthread_mutex_unlock(&vm->devlock);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_STATUS, 1), 0);
	probe();
	driver_init(0);
	cr_assert(link_status() & VIRTIO_NET_S_LINK_UP, "the port stayed");
	rx_post(0, 0, 2, 2048);
	frame(f, sizeof(f), 8);
	switch_send(&h, f, sizeof(f));
	cr_assert(wait_used(0, 1), "receive after the reset");
	tx_send(0, (uint8_t[HDR]){ 0 }, f, sizeof(f));
	cr_assert_eq(switch_recv(m, sizeof(m), 2000), HDR + sizeof(f));
}

/* Paused (snapshot, migration): no frame goes into guest memory; on
 * resume the waiting ones are delivered. */
Test(virtio_net, pause_holds_frames_until_resume)
{
	struct vsw_net_hdr h = { 0 };
	uint8_t f[80];

	rx_post(0, 0, 4, 2048);
	usleep(20000);
	pthread_mutex_lock(&vm->devlock);
	devices_pause(vm);
	pthread_mutex_unlock(&vm->devlock);
	frame(f, sizeof(f), 3);
	switch_send(&h, f, sizeof(f));
	switch_send(&h, f, sizeof(f));
	usleep(200000);
	cr_assert_eq(used_idx(0), 0, "nothing written while paused");
	pthread_mutex_lock(&vm->devlock);
	devices_resume(vm);
	pthread_mutex_unlock(&vm->devlock);
	cr_assert(wait_used(0, 2), "both frames after the resume");
}

Test(virtio_net, run_options_and_vmx_keys, .init = NULL, .fini = NULL)
{
	char *argv[] = { "run", "--kernel", "/k", "--nic", "lan", "-n",
	    "portgroup=dmz,mac=52:54:00:00:00:02,queues=3", NULL };
	char *bad[] = { "run", "--kernel", "/k", "--nic", "lan,queues=0",
	    NULL };
	struct vm_config c, ds;
	struct vmx_doc doc;
	struct run_args a;
	char err[256];

	cr_assert_eq(run_parse_args(7, argv, &c, &a, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(c.nnics, 2);
	cr_assert_str_eq(c.nics[0].portgroup, "lan");
	cr_assert_str_eq(c.nics[1].portgroup, "dmz");
	cr_assert_eq(c.nics[1].queues, 3);
	cr_assert_lt(run_parse_args(5, bad, &c, &a, err, sizeof(err)), 0);
	cr_assert(strstr(err, "queues") != NULL, "%s", err);
	/* The command line's NICs come after the datastore VM's. */
	cr_assert_eq(run_parse_args(7, argv, &c, &a, err, sizeof(err)), 0);
	vm_config_defaults(&ds);
	snprintf(ds.kernel, sizeof(ds.kernel), "/k");
	ds.nnics = 3;
	cr_assert_lt(run_merge(&ds, &c, &a, err, sizeof(err)), 0,
	    "five NICs are too many");
	ds.nnics = 1;
	snprintf(ds.nics[0].portgroup, sizeof(ds.nics[0].portgroup), "vm");
	cr_assert_eq(run_merge(&ds, &c, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ds.nnics, 3);
	cr_assert_str_eq(ds.nics[2].portgroup, "dmz");
	/* nicN.queues goes into a .vmx and comes back. */
	snprintf(ds.name, sizeof(ds.name), "q");
	cr_assert_eq(vmx_parse(&doc, "/tmp/q.vmx", "", 0, err, sizeof(err)),
	    0);
	cr_assert_eq(vmx_from_config(&doc, &ds), 0);
	cr_assert_eq(vmx_to_config(&doc, NULL, &c, err, sizeof(err)), 0,
	    "%s", err);
	vmx_free(&doc);
	cr_assert_eq(c.nnics, 3);
	cr_assert_eq(c.nics[2].queues, 3);
	cr_assert_eq(c.nics[0].queues, 0);
}

/* A TCP segmentation frame (HOST_TSO4) goes to the switch whole, its
 * header as the driver wrote it: the switch segments.  Its interrupt is
 * not held (TCP's small queues wait for it): it comes on a frozen
 * clock. */
Test(virtio_net, tso_frame_reaches_the_switch_whole)
{
	static uint8_t f[30000], m[HDR + 30000];
	uint8_t h[HDR] = { VIRTIO_NET_HDR_F_NEEDS_CSUM,
	    VIRTIO_NET_HDR_GSO_TCPV4 };

	vclock_set_fake(true, 1000000000ull);
	bus_put(h + 2, 2, 66);		/* hdr_len */
	bus_put(h + 4, 2, 1448);	/* gso_size */
	bus_put(h + 6, 2, 34);		/* csum_start: the TCP header */
	bus_put(h + 8, 2, 16);
	frame(f, sizeof(f), 4);
	memcpy(ram(buf(0), HDR + sizeof(f)), h, HDR);
	memcpy(ram(buf(0), HDR + sizeof(f)) + HDR, f, sizeof(f));
	desc(1, 0, buf(0), HDR + sizeof(f), 0, 0);
	avail_add(1, 0);
	kick(1);
	cr_assert_eq(switch_recv(m, sizeof(m), 2000), HDR + sizeof(f));
	cr_assert_arr_eq(m, h, 10, "flags, gso_type, hdr_len, gso_size, "
	    "csum_start, csum_offset kept");
	cr_assert_arr_eq(m + HDR, f, sizeof(f));
	/* Counted before the buffer goes back (on the event thread). */
	cr_assert(wait_used(1, 1));
	cr_assert_eq(stats().tx_bytes, sizeof(f));
	cr_assert(wait_msi(2, 1), "a GSO frame's interrupt is not held");
	vclock_set_fake(false, 0);
}

/* A TCP/IPv4 frame of len bytes (payload seeded), sequence number 1000,
 * and the GSO header a peer's TSO sends it with (MSS 1448). */
static void
tcp_frame(uint8_t *f, size_t len, struct vsw_net_hdr *h)
{
	frame(f, len, 9);
	memcpy(f, (uint8_t[]){ 0x52, 0x54, 0, 0, 0, 9 }, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(f + 14, 0, 40);
	f[14] = 0x45;
	bus_put(f + 16, 1, (len - 14) >> 8);
	bus_put(f + 17, 1, (len - 14) & 0xff);
	f[14 + 8] = 64;
	f[14 + 9] = 6;
	memcpy(f + 26, (uint8_t[]){ 10, 0, 0, 1, 10, 0, 0, 2 }, 8);
	f[34 + 4] = 0;
	f[34 + 5] = 0;
	f[34 + 6] = 0x03;
	f[34 + 7] = 0xe8;			/* seq 1000 */
	f[34 + 12] = 5 << 4;
	f[34 + 13] = 0x18;			/* ACK, PSH */
	*h = (struct vsw_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
	    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .hdr_len = 54,
	    .gso_size = 1448, .csum_start = 34, .csum_offset = 16 };
}

/* A driver with GUEST_TSO4 (Linux's big-packet buffers) gets a peer's
 * TSO frame whole, one buffer, its GSO header kept. */
Test(virtio_net, gso_frame_arrives_whole_for_a_driver_with_guest_tso)
{
	static uint8_t f[4000];
	struct vsw_net_hdr h;
	uint32_t id, len;
	uint8_t *b;

	tcp_frame(f, sizeof(f), &h);
	rx_post(0, 0, 1, 4096);
	switch_send(&h, f, sizeof(f));
	cr_assert(wait_used(0, 1));
	used_next(0, &id, &len);
	cr_assert_eq(len, HDR + sizeof(f), "one frame, not segments");
	b = ram(buf(0), 4096);
	cr_assert_eq(b[0], VIRTIO_NET_HDR_F_NEEDS_CSUM);
	cr_assert_eq(b[1], VIRTIO_NET_HDR_GSO_TCPV4);
	cr_assert_eq(bus_get(b + 4, 2), 1448, "gso_size kept");
	cr_assert_eq(bus_get(b + 6, 2), 34);
	cr_assert_eq(bus_get(b + 10, 2), 1, "num_buffers");
	cr_assert_arr_eq(b + HDR, f, sizeof(f));
	cr_assert_eq(stats().errors, 0);
}

/* A driver without GUEST_TSO gets the same frame as MSS-sized TCP
 * segments with complete checksums and consecutive sequence numbers. */
Test(virtio_net, gso_frame_is_segmented_for_a_driver_without_guest_tso,
    .init = setup_notso)
{
	static uint8_t f[4000];
	struct vsw_net_hdr h;
	uint32_t id, len, seq, want = 1000, total = 0;
	uint8_t *b;

	tcp_frame(f, sizeof(f), &h);
	rx_post(0, 0, 4, 2048);
	switch_send(&h, f, sizeof(f));
	cr_assert(wait_used(0, 3), "3946 bytes at MSS 1448: 3 segments");
	for (unsigned i = 0; i < 3; i++) {
		used_next(0, &id, &len);
		b = ram(buf(id), 2048);
		cr_assert_eq(b[1], 0, "no GSO for this driver");
		cr_assert_eq(b[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM, 0);
		cr_assert_leq(len - HDR, 54 + 1448);
		seq = (uint32_t)b[HDR + 38] << 24 | (uint32_t)b[HDR + 39] << 16 |
		    (uint32_t)b[HDR + 40] << 8 | b[HDR + 41];
		cr_assert_eq(seq, want, "segment %u's sequence number", i);
		cr_assert_eq(bus_get(b + HDR + 16, 1) << 8 | b[HDR + 17],
		    len - HDR - 14, "IP total length of segment %u", i);
		want += len - HDR - 54;
		total += len - HDR - 54;
	}
	cr_assert_eq(total, sizeof(f) - 54, "every payload byte");
	usleep(50000);
	cr_assert_eq((uint16_t)(used_idx(0) - used_seen[0]), 0);
	cr_assert_eq(stats().rx_ops, 3);
	cr_assert_eq(stats().errors, 0);
}

/* MRG_RXBUF: a frame larger than one buffer is spread over several,
 * num_buffers in the first says how many; one that needs more than the
 * driver gave waits for the next buffers (with the frame behind it),
 * nothing is dropped. */
Test(virtio_net, mergeable_buffers_take_a_large_frame)
{
	static uint8_t f[3000], g[100], out[HDR + 3000];
	struct vsw_net_hdr h = { 0 };
	uint32_t id, len, at = 0;

	frame(f, sizeof(f), 6);
	frame(g, sizeof(g), 7);
	rx_post(0, 0, 1, 1024);
	switch_send(&h, f, sizeof(f));
	switch_send(&h, g, sizeof(g));
	usleep(100000);
	cr_assert_eq(used_idx(0), 0, "3012 bytes wait: one 1 KiB buffer");
	rx_post(0, 1, 3, 1024);
	cr_assert(wait_used(0, 4), "the frame in 3 buffers, then the next");
	for (unsigned i = 0; i < 3; i++) {
		used_next(0, &id, &len);
		cr_assert_eq(id, i);
		cr_assert_eq(len, i < 2 ? 1024 : HDR + sizeof(f) - 2048);
		memcpy(out + at, ram(buf(id), 1024), len);
		at += len;
	}
	cr_assert_eq(bus_get(out + 10, 2), 3, "num_buffers");
	cr_assert_arr_eq(out + HDR, f, sizeof(f));
	used_next(0, &id, &len);
	cr_assert_eq(len, HDR + sizeof(g));
	cr_assert_eq(bus_get((uint8_t *)ram(buf(id), 1024) + 10, 2), 1);
	cr_assert_arr_eq((uint8_t *)ram(buf(id), 1024) + HDR, g, sizeof(g));
	cr_assert_eq(stats().errors, 0);
	cr_assert_eq(stats().rx_ops, 2);
}

/*
 * A frame's mergeable buffers reach the driver together (virtio 1.1
 * 5.1.6.4): Linux's driver that sees the first (num_buffers = 3) before
 * the others drops the frame as "buffers missing".  A driver polling
 * the used index while frames arrive only ever sees whole frames.
 */
Test(virtio_net, mergeable_frame_buffers_are_published_together)
{
	static uint8_t f[3000];
	struct vsw_net_hdr h = { 0 };
	const unsigned n = 40;
	uint16_t u, seen = 0;
	unsigned odd = 0;

	frame(f, sizeof(f), 8);
	rx_post(0, 0, 3 * n, 1024);
	for (unsigned i = 0; i < n; i++)
		switch_send(&h, f, sizeof(f));
	for (unsigned spins = 0; seen < 3 * n && spins < 200000000u;
	    spins++) {
		u = used_idx(0);
		if (u != seen) {
			odd += u % 3 != 0;
			seen = u;
		}
	}
	cr_assert_eq(seen, 3 * n, "every frame delivered");
	cr_assert_eq(odd, 0, "%u times the driver saw part of a frame", odd);
	cr_assert_eq(stats().errors, 0);
}

/* avail_event of queue q: where the device asks to be kicked. */
static uint16_t
avail_event(unsigned q)
{
	return __atomic_load_n((uint16_t *)ram(rings(q) + 0x2004 + 8 * QSIZE,
	    2), __ATOMIC_ACQUIRE);
}

/* A driver's EVENT_IDX kick: only if the device asked for one between
 * old and the new avail index (vring_need_event). */
static bool
kick_if_asked(unsigned q, uint16_t old)
{
	uint16_t ev = avail_event(q), now = avail_idx[q];

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if ((uint16_t)(now - ev - 1) >= (uint16_t)(now - old))
		return false;
	kick(q);
	return true;
}

/*
 * A driver that kicks only when the device asks (EVENT_IDX) loses no
 * frame of a stream, and a ring the device found empty asks for a kick
 * at the next entry.
 */
Test(virtio_net, transmit_stream_kicks_only_when_asked)
{
	uint8_t h[HDR] = { 0 }, f[100], m[512];
	unsigned kicks = 0, n = 3 * QSIZE / 2;

	for (unsigned i = 0; i < n; i++) {
		unsigned d = (2 * i) % QSIZE;
		uint16_t old = avail_idx[1];

		if (i >= QSIZE / 2)	/* keep within the ring */
			while ((uint16_t)(avail_idx[1] - used_idx(1)) >=
			    QSIZE / 2)
				usleep(100);
		frame(f, sizeof(f), i);
		memcpy(ram(buf(i % 64), HDR), h, HDR);
		memcpy(ram(buf(i % 64) + 64, sizeof(f)), f, sizeof(f));
		desc(1, d, buf(i % 64), HDR, VIRTQ_DESC_F_NEXT,
		    (uint16_t)(d + 1));
		desc(1, d + 1, buf(i % 64) + 64, sizeof(f), 0, 0);
		avail_add(1, (uint16_t)d);
		kicks += kick_if_asked(1, old);
		if (i % 8 == 7)
			usleep(20);
		/* Take what has arrived (the socket holds little). */
		while (switch_recv(m, sizeof(m), 0) > 0)
			;
	}
	cr_assert(wait_used(1, n), "every frame sent, kicks or none");
	cr_assert_gt(kicks, 0);
	for (int i = 0; i < 200 && avail_event(1) != avail_idx[1]; i++)
		usleep(1000);
	cr_assert_eq(avail_event(1), avail_idx[1],
	    "an idle ring asks for a kick at the next entry");
	cr_assert_eq(stats().tx_ops, n);
}

/*
 * Transmit interrupts are moderated: the used entries come at once, the
 * interrupt is decided at the driver's next kick (by then a driver that
 * keeps sending has reclaimed them itself and moved used_event on: no
 * interrupt) or when the hold runs out (the driver stopped: it gets
 * one).  On a frozen clock, so that the hold cannot run out by itself.
 */
Test(virtio_net, transmit_interrupt_waits_for_the_next_kick_or_the_hold)
{
	uint8_t h[HDR] = { 0 }, f[100], m[512];
	uint32_t id, len;

	vclock_set_fake(true, 1000000000ull);
	frame(f, sizeof(f), 1);
	set_used_event(1, 0);		/* an interrupt at the first entry */
	tx_send(0, h, f, sizeof(f));
	cr_assert(wait_used(1, 1));
	cr_assert_gt(switch_recv(m, sizeof(m), 2000), 0);
	usleep(20000);
	cr_assert_eq(msis[2], 0, "held while the clock stands");
	/* The driver reclaims entry 0 itself, asks for an interrupt at the
	 * next one, and sends again: the kick decides for entry 0 (no
	 * interrupt: the driver has it) and holds the one for entry 1. */
	used_next(1, &id, &len);
	set_used_event(1, 1);
	tx_send(1, h, f, sizeof(f));
	cr_assert(wait_used(1, 1));
	cr_assert_gt(switch_recv(m, sizeof(m), 2000), 0);
	usleep(20000);
	cr_assert_eq(msis[2], 0, "the kick found used_event moved on");
	/* The driver stops: the hold runs out and it gets its interrupt. */
	vclock_advance_fake(1000000);
	cr_assert(wait_msi(2, 1), "the interrupt came when the hold ran out");
	usleep(20000);
	cr_assert_eq(msis[2], 1, "one interrupt for the two entries");
	vclock_set_fake(false, 0);
}

/*
 * Receive buffers the driver adds while the device holds some are
 * taken without a kick (avail_event stays put: Linux refills after
 * every NAPI poll); only a device out of buffers asks for one.
 */
Test(virtio_net, receive_refills_kick_only_when_short)
{
	struct vsw_net_hdr h = { 0 };
	uint8_t f[200];
	uint16_t old;

	rx_post(0, 0, 8, 2048);
	frame(f, sizeof(f), 1);
	switch_send(&h, f, sizeof(f));
	cr_assert(wait_used(0, 1));
	cr_assert_eq(avail_event(0), 0, "8 buffers given: no kick wanted");
	/* Eight more, kicked only if asked: not asked. */
	old = avail_idx[0];
	for (unsigned i = 8; i < 16; i++) {
		desc(0, i, buf(i), 2048, VIRTQ_DESC_F_WRITE, 0);
		avail_add(0, (uint16_t)i);
	}
	cr_assert(!kick_if_asked(0, old));
	for (unsigned i = 1; i < 17; i++)
		switch_send(&h, f, sizeof(f));
	cr_assert(wait_used(0, 16), "15 more frames in the 15 buffers left");
	usleep(50000);
	cr_assert_eq(used_idx(0), 16, "the 17th waits for a buffer");
	cr_assert_eq(avail_event(0), 16, "and the device asks for a kick");
	old = avail_idx[0];
	desc(0, 16, buf(16), 2048, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0, 16);
	cr_assert(kick_if_asked(0, old));
	cr_assert(wait_used(0, 17), "the 17th frame came with the buffer");
	cr_assert_eq(stats().rx_ops, 17);
	cr_assert_eq(stats().errors, 0);
}

/* --- kicks through ioeventfd --- */

/* Kick q from a "vCPU" thread while this one holds the device lock (as
 * the event thread does while it sends a batch); true if the kick
 * returned before the lock was let go. */
static bool
exit_kick_locked(unsigned q)
{
	return vh_exit_kick_locked(notify + q * notify_mult, (uint16_t)q);
}

Test(virtio_net, kicks_through_ioeventfd_without_the_device_lock)
{
	struct vsw_net_hdr sh = { 0 };
	uint8_t h[HDR] = { 0 }, f[300], m[512];
	uint32_t id, len;
	unsigned n = 0;

	/* The driver enabled the queues: each notify address is an
	 * ioeventfd now. */
	for (unsigned i = 0; i < vm->ioev_n; i++)
		if (vm->ioev[i].gpa == notify + 1 * notify_mult)
			n++;
	cr_assert_eq(n, 1, "transmit queue 0's notify address registered");
	/* Transmit: the frame reaches the switch after the lock is free. */
	frame(f, sizeof(f), 9);
	memcpy(ram(buf(0), HDR), h, HDR);
	memcpy(ram(buf(0) + 64, sizeof(f)), f, sizeof(f));
	desc(1, 0, buf(0), HDR, VIRTQ_DESC_F_NEXT, 1);
	desc(1, 1, buf(0) + 64, sizeof(f), 0, 0);
	avail_add(1, 0);
	cr_assert(exit_kick_locked(1), "the transmit kick waited for the lock");
	cr_assert_eq(switch_recv(m, sizeof(m), 2000), HDR + sizeof(f));
	cr_assert_arr_eq(m + HDR, f, sizeof(f));
	cr_assert(wait_used(1, 1));
	used_next(1, &id, &len);
	cr_assert_eq(id, 0);
	/* Receive buffers kicked the same way take a frame from the
	 * switch. */
	memset(ram(buf(8), 2048), 0xee, 2048);
	desc(0, 0, buf(8), 2048, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0, 0);
	cr_assert(exit_kick_locked(0));
	frame(f, sizeof(f), 10);
	switch_send(&sh, f, sizeof(f));
	cr_assert(wait_used(0, 1));
	used_next(0, &id, &len);
	cr_assert_eq(len, HDR + sizeof(f));
	cr_assert_arr_eq(ram(buf(8) + HDR, sizeof(f)), f, sizeof(f));
}

/*
 * Where the CPU leaves guest code for every kick anyway (the software
 * CPU), a transmit kick is served on the kicking vCPU, not handed to the
 * event thread: with that thread gone, a vCPU's kick still sends, before
 * the exit returns.  The moderated interrupt is still decided at the
 * driver's next kick, on the vCPU too.
 */
Test(virtio_net, transmit_on_the_kicking_vcpu_where_the_cpu_exits_anyway,
    .init = setup_kicks_on_vcpu)
{
	uint8_t h[HDR] = { 0 }, f[120], m[512];
	struct vh_exit_kick k = { notify + 1 * notify_mult, 1 };

	evloop_stop(vm->loop);
	pthread_join(loop_thread, NULL);
	loop_gone = true;
	frame(f, sizeof(f), 5);
	set_used_event(1, 0);		/* an interrupt at the first entry */
	tx_queue_frame(0, h, f, sizeof(f));
	vh_exit_kick_thread(&k);
	cr_assert_eq(switch_recv(m, sizeof(m), 0), HDR + sizeof(f),
	    "sent before the vCPU's exit returned");
	cr_assert_arr_eq(m + HDR, f, sizeof(f));
	cr_assert_eq(used_idx(1), 1, "and given back");
	cr_assert_eq(msis[2], 0, "its interrupt is held for the next kick");
	tx_queue_frame(1, h, f, sizeof(f));
	vh_exit_kick_thread(&k);
	cr_assert_eq(msis[2], 1, "the kick decided: used_event 0 was passed");
	cr_assert_gt(switch_recv(m, sizeof(m), 0), 0, "second frame sent");
}

/* A vCPU halted in vcpu_handle_exit(), as both accelerators hand HLT
 * over when they have no wait of their own. */
static void *
halt_thread(void *arg)
{
	struct vm_exit e = { .kind = VM_EXIT_HLT };

	vcpu_handle_exit(vm->vcpus[0], &e);
	return NULL;
}

/* Stop the event thread, halt vCPU 0, send a frame from the switch:
 * true if it reached the receive ring within ms. */
static bool
halted_vcpu_receives(int ms)
{
	struct vsw_net_hdr h = { 0 };
	struct vh_ring r = ring(0);
	uint8_t f[200];
	pthread_t t;
	bool got;

	rx_post(0, 0, 4, 2048);
	kick(0);
	usleep(100 * 1000);	/* the loop saw the buffers: frames wanted */
	evloop_stop(vm->loop);
	pthread_join(loop_thread, NULL);
	loop_gone = true;
	cr_assert_eq(pthread_create(&t, NULL, halt_thread, NULL), 0);
	usleep(50 * 1000);	/* halted, and polling if it may */
	frame(f, sizeof(f), 7);
	switch_send(&h, f, sizeof(f));
	got = vh_wait_used(&r, used_seen[0], 1, ms);
	vcpu_kick(vm->vcpus[0], VCPU_REQ_IRQ);
	pthread_join(t, NULL);
	if (got) {
		frame(f, sizeof(f), 7);
		cr_assert_arr_eq(ram(buf(0), 2048) + HDR, f, sizeof(f));
	}
	return got;
}

Test(virtio_net, a_halted_vcpu_receives_with_no_event_thread)
{
	cr_assert(halted_vcpu_receives(3000),
	    "the halted vCPU took the frame itself");
	cr_assert_gt(msis[1], 0, "and raised the receive interrupt");
}

static void
setup_no_idle_poll(void)
{
	setenv("TERMVISOR_IDLE_POLL", "0", 1);
	setup();
	unsetenv("TERMVISOR_IDLE_POLL");
}

Test(virtio_net, without_idle_poll_only_the_event_thread_receives,
    .init = setup_no_idle_poll)
{
	cr_assert_not(halted_vcpu_receives(300),
	    "TERMVISOR_IDLE_POLL=0: the halted vCPU only sleeps");
	cr_assert_eq(msis[1], 0);
}
