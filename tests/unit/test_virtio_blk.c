/*
 * virtio-blk over the modern virtio PCI transport, driven as Linux's
 * virtio_pci_modern and virtio_blk drivers do: find the function on bus
 * 0, walk its vendor capabilities, program MSI-X, reset, negotiate
 * features, lay queues out in guest RAM, then submit requests and wait
 * for the used ring.  The VM has real RAM (null accelerator) and its
 * event thread runs, so completions take the real path.  Then the
 * hostile driver: descriptors outside RAM, loops, overflowing lengths,
 * indexes past the queue.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "null_accel.h"
#include "virtio_harness.h"
#include "devices/bus.h"
#include "devices/device.h"
#include "devices/pci.h"
#include "devices/virtio.h"
#include "devices/virtio_blk.h"
#include "migrate/snap.h"
#include "util/evloop.h"
#include "vmfs/qcow2.h"

#define RAM		(64u << 20)
#define DISK		(8u << 20)
#define QSIZE		128
#define Q_DESC		0x100000ull
#define Q_AVAIL		0x101000ull
#define Q_USED		0x102000ull
#define HDRS		0x110000ull	/* request headers, 16 bytes each */
#define STATUS		0x120000ull	/* status bytes, one per request */
#define DATA		0x200000ull	/* data buffers */

/* --- a VM with RAM whose accelerator records interrupts --- */

static struct accel_ops rec_ops;	/* records MSIs (vh_rec_msi) */
static int gsi_level[32];

static int
rec_irq(struct vm *v, unsigned gsi, int level)
{
	if (gsi < 32)
		gsi_level[gsi] = level;
	return 0;
}

static const struct vh_ring rq = { Q_DESC, Q_AVAIL, Q_USED, QSIZE };
static struct vm_config cfg;
static pthread_t loop_thread;
static char img_path[] = "/tmp/tv-vblk-XXXXXX";
static char img2_path[64];

static int vcpus = 1;		/* cfg.cpus: the number of request queues */
static uint16_t used_seen;	/* used entries consumed */
static uint16_t avail_idx;

/* Find the device and its structures as virtio_pci_modern_probe does. */
static void
probe(void)
{
	vh_probe(VIRTIO_ID_BLOCK, true);
	cr_assert_eq(cfg_rd(PCI_REVISION, 1), 1, "modern device: revision 1");
	cr_assert(cfg_rd(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	cr_assert(isr && devcfg && msix_table);
}

/* Reset, negotiate, set queue 0 up, DRIVER_OK: vp_modern's order. */
static void
driver_init(bool use_msix)
{
	uint64_t f;

	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, 0);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_STATUS, 1), 0);
	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, VIRTIO_S_ACKNOWLEDGE);
	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, VIRTIO_S_ACKNOWLEDGE |
	    VIRTIO_S_DRIVER);
	f = device_features();
	cr_assert(f >> VIRTIO_F_VERSION_1 & 1);
	cr_assert(f >> VIRTIO_F_RING_INDIRECT_DESC & 1);
	vh_negotiate(f);
	if (use_msix) {
		msix_vector(0);
		msix_vector(1);
		mmio_wr(common + VIRTIO_COMMON_MSIX, 2, 0);
		cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_MSIX, 2), 0);
	}
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_NUMQ, 2), vcpus);
	mmio_wr(common + VIRTIO_COMMON_Q_SELECT, 2, 0);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_Q_SIZE, 2),
	    VIRTIO_QUEUE_MAX);
	vh_queue_setup(0, &rq, use_msix ? 1 : VIRTIO_NO_VECTOR);
	vh_driver_ok();
	used_seen = avail_idx = 0;
}

static void
vm_up(const char *format, bool readonly)
{
	int err;

	memset(msis, 0, sizeof(msis));
	memset(gsi_level, 0, sizeof(gsi_level));
	rec_ops = null_accel_ops;
	rec_ops.msi = vh_rec_msi;
	rec_ops.irq_line = rec_irq;
	vm_config_defaults(&cfg);
	cfg.memory = RAM;
	cfg.cpus = vcpus;
	cfg.ndisks = 1;
	snprintf(cfg.disks[0].path, sizeof(cfg.disks[0].path), "%s",
	    format[0] == 'q' ? img2_path : img_path);
	snprintf(cfg.disks[0].format, sizeof(cfg.disks[0].format), "%s",
	    format);
	snprintf(cfg.disks[0].serial, sizeof(cfg.disks[0].serial),
	    "TV-SERIAL-0042");
	cfg.disks[0].readonly = readonly;
	vm = vm_create(&cfg, &rec_ops, &err);
	cr_assert_not_null(vm, "vm_create: %s", strerror(-err));
	cr_assert_eq(pthread_create(&loop_thread, NULL, vh_loop_main,
	    vm->loop), 0);
	probe();
	driver_init(true);
}

static void
setup_raw(void)
{
	int fd = mkstemp(img_path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, DISK), 0);
	close(fd);
	img2_path[0] = 0;
}

static void
vm_down(void)
{
	if (vm != NULL) {
		evloop_stop(vm->loop);
		pthread_join(loop_thread, NULL);
		vm_destroy(vm);
		vm = NULL;
	}
}

static void
teardown(void)
{
	vm_down();
	unlink(img_path);
	if (img2_path[0])
		unlink(img2_path);
	strcpy(img_path, "/tmp/tv-vblk-XXXXXX");
}

static void
setup(void)
{
	setup_raw();
	vm_up("raw", false);
}

/* --- the driver's side of the ring --- */

/* Make head available and kick. */
static void
kick(uint16_t head)
{
	vh_avail(&rq, &avail_idx, head);
	vh_notify(0);
}

static uint16_t
used_idx(void)
{
	return vh_used_idx(&rq);
}

/* Wait (at most 10 s) for n more used entries. */
static void
wait_used(unsigned n)
{
	if (!vh_wait_used(&rq, used_seen, n, 10000))
		cr_assert_fail("device did not complete %u requests", n);
	used_seen += n;
}

static void
used_elem(unsigned k, uint32_t *id, uint32_t *len)
{
	vh_used_elem(&rq, k, id, len);
}

/*
 * One request in descriptors 3*slot.. (header, data, status), data at
 * DATA + slot * 64 KiB.  Returns the head.
 */
static uint16_t
req(unsigned rslot, uint32_t type, uint64_t sector, uint32_t len,
    bool data_write)
{
	uint16_t d0 = (uint16_t)(3 * rslot);
	uint8_t *h = ram(HDRS + 16 * rslot, 16);
	uint64_t data = DATA + (uint64_t)rslot * 0x10000;

	memset(h, 0, 16);
	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	*(uint8_t *)ram(STATUS + rslot, 1) = 0xee;
	if (len == 0) {
		vh_desc(&rq, d0, HDRS + 16 * rslot, 16, VIRTQ_DESC_F_NEXT,
		    d0 + 2);
	} else {
		vh_desc(&rq, d0, HDRS + 16 * rslot, 16, VIRTQ_DESC_F_NEXT,
		    d0 + 1);
		vh_desc(&rq, d0 + 1, data, len, VIRTQ_DESC_F_NEXT |
		    (data_write ? VIRTQ_DESC_F_WRITE : 0), d0 + 2);
	}
	vh_desc(&rq, d0 + 2, STATUS + rslot, 1, VIRTQ_DESC_F_WRITE, 0);
	return d0;
}

static uint8_t
status(unsigned rslot)
{
	return *(uint8_t *)ram(STATUS + rslot, 1);
}

static uint8_t *
data(unsigned rslot)
{
	return ram(DATA + (uint64_t)rslot * 0x10000, 0x10000);
}

/* Submit one request and wait for it; returns its status. */
static uint8_t
run(uint32_t type, uint64_t sector, uint32_t len, bool data_write)
{
	kick(req(0, type, sector, len, data_write));
	wait_used(1);
	/* The event thread publishes the used entry, then signals, both
	 * under the device lock: wait that out before callers look at
	 * the interrupts. */
	pthread_mutex_lock(&vm->devlock);
	pthread_mutex_unlock(&vm->devlock);
	return status(0);
}

static void
pattern(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed + (i >> 9));
}

TestSuite(virtio_blk, .init = setup, .fini = teardown, .timeout = 30);

Test(virtio_blk, config_space_and_features)
{
	uint64_t f;

	cr_assert_eq(cfg_rd(PCI_SUBSYS_VENDOR, 2), 0x1af4);
	cr_assert_eq(cfg_rd(PCI_CLASS_PROG + 2, 1), 0x01, "mass storage");
	cr_assert_eq(mmio_rd(devcfg + VIRTIO_BLK_CFG_CAPACITY, 4),
	    DISK / 512);
	cr_assert_eq(mmio_rd(devcfg + VIRTIO_BLK_CFG_CAPACITY + 4, 4), 0);
	cr_assert_eq(mmio_rd(devcfg + VIRTIO_BLK_CFG_BLK_SIZE, 4), 512);
	cr_assert_gt(mmio_rd(devcfg + VIRTIO_BLK_CFG_SEG_MAX, 4), 0);
	f = device_features();
	cr_assert(f >> VIRTIO_BLK_F_FLUSH & 1);
	cr_assert(f >> VIRTIO_BLK_F_DISCARD & 1);
	cr_assert(f >> VIRTIO_BLK_F_WRITE_ZEROES & 1);
	cr_assert_not(f >> VIRTIO_BLK_F_RO & 1);
	cr_assert(f >> VIRTIO_F_RING_EVENT_IDX & 1);
	/* Split rings are a power of two long, at most the maximum; an
	 * enabled queue's size no longer changes. */
	mmio_wr(common + VIRTIO_COMMON_Q_SELECT, 2, 0);
	mmio_wr(common + VIRTIO_COMMON_Q_SIZE, 2, 64);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_Q_SIZE, 2), QSIZE);
	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, 0);
	mmio_wr(common + VIRTIO_COMMON_Q_SIZE, 2, 100);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_Q_SIZE, 2),
	    VIRTIO_QUEUE_MAX);
	mmio_wr(common + VIRTIO_COMMON_Q_SIZE, 2, 2 * VIRTIO_QUEUE_MAX);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_Q_SIZE, 2),
	    VIRTIO_QUEUE_MAX);
	mmio_wr(common + VIRTIO_COMMON_Q_SIZE, 2, 16);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_Q_SIZE, 2), 16);
	/* An absent queue reads as size 0; a bad vector as NO_VECTOR. */
	mmio_wr(common + VIRTIO_COMMON_Q_SELECT, 2, 5);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_Q_SIZE, 2), 0);
	mmio_wr(common + VIRTIO_COMMON_MSIX, 2, 77);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_MSIX, 2),
	    VIRTIO_NO_VECTOR);
}

Test(virtio_blk, features_without_version_1_refused)
{
	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, 0);
	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, VIRTIO_S_ACKNOWLEDGE |
	    VIRTIO_S_DRIVER);
	mmio_wr(common + VIRTIO_COMMON_GFSELECT, 4, 0);
	mmio_wr(common + VIRTIO_COMMON_GF, 4, 1u << VIRTIO_BLK_F_FLUSH);
	mmio_wr(common + VIRTIO_COMMON_GFSELECT, 4, 1);
	mmio_wr(common + VIRTIO_COMMON_GF, 4, 0);
	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, VIRTIO_S_ACKNOWLEDGE |
	    VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
	cr_assert_not(mmio_rd(common + VIRTIO_COMMON_STATUS, 1) &
	    VIRTIO_S_FEATURES_OK, "a legacy-only driver is refused");
}

Test(virtio_blk, write_then_read_back)
{
	uint8_t buf[4096];
	uint32_t id, len;
	int fd;

	pattern(data(0), 4096, 1);
	cr_assert_eq(run(VIRTIO_BLK_T_OUT, 10, 4096, false), VIRTIO_BLK_S_OK);
	cr_assert_gt(msis[1], 0, "queue vector fired");
	/* The image holds it at sector 10. */
	fd = open(img_path, O_RDONLY);
	cr_assert_eq(pread(fd, buf, sizeof(buf), 10 * 512), sizeof(buf));
	close(fd);
	cr_assert_arr_eq(buf, data(0), sizeof(buf));

	memset(data(0), 0, 4096);
	cr_assert_eq(run(VIRTIO_BLK_T_IN, 10, 4096, true), VIRTIO_BLK_S_OK);
	cr_assert_arr_eq(buf, data(0), sizeof(buf));
	used_elem(1, &id, &len);
	cr_assert_eq(id, 0);
	cr_assert_eq(len, 4097, "data and status written");
}

Test(virtio_blk, flush_get_id_discard_write_zeroes)
{
	uint8_t seg[16] = { 0 };
	uint64_t sector = 64;
	uint32_t n = 16;

	cr_assert_eq(run(VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
	memset(data(0), 0xff, 64);
	cr_assert_eq(run(VIRTIO_BLK_T_GET_ID, 0, 20, true), VIRTIO_BLK_S_OK);
	cr_assert_str_eq((char *)data(0), "TV-SERIAL-0042");
	cr_assert_eq(data(0)[19], 0, "padded with NULs");
	cr_assert_eq(data(0)[20], 0xff, "not past the buffer");

	pattern(data(0), 8192, 3);
	cr_assert_eq(run(VIRTIO_BLK_T_OUT, 64, 8192, false), VIRTIO_BLK_S_OK);
	memcpy(seg, &sector, 8);
	memcpy(seg + 8, &n, 4);
	memcpy(data(0), seg, 16);
	cr_assert_eq(run(VIRTIO_BLK_T_DISCARD, 0, 16, false),
	    VIRTIO_BLK_S_OK);
	/* Write zeroes over the same range: it must then read zeros. */
	pattern(data(0), 8192, 3);
	cr_assert_eq(run(VIRTIO_BLK_T_OUT, 64, 8192, false), VIRTIO_BLK_S_OK);
	memcpy(data(0), seg, 16);
	cr_assert_eq(run(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
	    VIRTIO_BLK_S_OK);
	memset(data(0), 0x55, 8192);
	cr_assert_eq(run(VIRTIO_BLK_T_IN, 64, 8192, true), VIRTIO_BLK_S_OK);
	for (int i = 0; i < 8192; i++)
		cr_assert_eq(data(0)[i], 0, "byte %d", i);
	/* Discard with the unmap flag (only write-zeroes has one). */
	seg[12] = 1;
	memcpy(data(0), seg, 16);
	cr_assert_eq(run(VIRTIO_BLK_T_DISCARD, 0, 16, false),
	    VIRTIO_BLK_S_UNSUPP);
	cr_assert_eq(run(99, 0, 0, false), VIRTIO_BLK_S_UNSUPP);
}

Test(virtio_blk, stats_count_bytes_ops_and_errors)
{
	const struct device_inst *di = NULL;
	struct device_stats st = { 0 };

	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].ops == &virtio_blk_ops)
			di = &vm->devices[i];
	cr_assert_not_null(di);
	cr_assert_not_null(di->ops->stats);
	pattern(data(0), 8192, 5);
	cr_assert_eq(run(VIRTIO_BLK_T_OUT, 8, 8192, false), VIRTIO_BLK_S_OK);
	cr_assert_eq(run(VIRTIO_BLK_T_IN, 8, 4096, true), VIRTIO_BLK_S_OK);
	cr_assert_eq(run(VIRTIO_BLK_T_IN, 8, 512, true), VIRTIO_BLK_S_OK);
	cr_assert_eq(run(VIRTIO_BLK_T_IN, DISK / 512, 512, true),
	    VIRTIO_BLK_S_IOERR);
	di->ops->stats(di->state, &st);
	cr_assert_str_eq(st.kind, "disk");
	cr_assert_eq(st.tx_bytes, 8192);
	cr_assert_eq(st.tx_ops, 1);
	cr_assert_eq(st.rx_bytes, 4096 + 512);
	cr_assert_eq(st.rx_ops, 2);
	cr_assert_eq(st.errors, 1);
}

/* Pages a read wrote are in the VM's DMA log (no accelerator sees such
 * stores; migration needs them): the data, the status byte and the used
 * ring, nothing else, and only once. */
static bool
page_bit(const uint64_t *bm, uint64_t gpa)
{
	const struct mem_region *r = &vm->regions[0];

	return bm[(gpa - r->gpa) / 4096 / 64] >> ((gpa - r->gpa) / 4096 % 64) &
	    1;
}

Test(virtio_blk, reads_are_in_the_dma_log)
{
	const struct mem_region *r = &vm->regions[0];
	size_t words = (r->size / 4096 + 63) / 64;
	uint64_t *bm = calloc(words, 8);
	size_t set = 0;

	cr_assert_eq(vm_dma_log_start(vm), 0);
	cr_assert_eq(run(VIRTIO_BLK_T_IN, 0, 8192, true), VIRTIO_BLK_S_OK);
	vm_dma_log_fetch(vm, r, bm);
	cr_assert(page_bit(bm, DATA) && page_bit(bm, DATA + 4096),
	    "the data pages");
	cr_assert(page_bit(bm, STATUS), "the status byte's page");
	cr_assert(page_bit(bm, Q_USED), "the used ring");
	cr_assert_not(page_bit(bm, DATA + 8192), "not past the data");
	cr_assert_not(page_bit(bm, HDRS), "the header is only read");
	for (size_t i = 0; i < words; i++)
		set += (size_t)__builtin_popcountll(bm[i]);
	cr_assert_eq(set, 4, "%zu pages", set);
	memset(bm, 0, words * 8);
	vm_dma_log_fetch(vm, r, bm);
	for (size_t i = 0; i < words; i++)
		cr_assert_eq(bm[i], 0, "fetched once");
	vm_dma_log_stop(vm);
	cr_assert_eq(run(VIRTIO_BLK_T_IN, 0, 512, true), VIRTIO_BLK_S_OK);
	vm_dma_log_fetch(vm, r, bm);
	for (size_t i = 0; i < words; i++)
		cr_assert_eq(bm[i], 0, "not logged while off");
	free(bm);
}

Test(virtio_blk, out_of_range_and_partial_sectors_fail)
{
	cr_assert_eq(run(VIRTIO_BLK_T_IN, DISK / 512 - 1, 1024, true),
	    VIRTIO_BLK_S_IOERR);
	cr_assert_eq(run(VIRTIO_BLK_T_IN, DISK / 512 - 2, 1024, true),
	    VIRTIO_BLK_S_OK);
	cr_assert_eq(run(VIRTIO_BLK_T_OUT, UINT64_MAX / 2, 512, false),
	    VIRTIO_BLK_S_IOERR);
	cr_assert_eq(run(VIRTIO_BLK_T_IN, 0, 100, true), VIRTIO_BLK_S_IOERR);
}

Test(virtio_blk, many_requests_in_flight)
{
	enum { N = 32 };

	/* Writes of distinct patterns to distinct sectors, all at once. */
	for (unsigned i = 0; i < N; i++) {
		pattern(data(i), 4096, i);
		(void)req(i, VIRTIO_BLK_T_OUT, 100 + 8 * i, 4096, false);
	}
	for (unsigned i = 0; i < N; i++) {
		uint8_t *a = ram(Q_AVAIL, 4 + 2 * QSIZE);
		uint16_t head = (uint16_t)(3 * i);

		memcpy(a + 4 + 2 * (avail_idx % QSIZE), &head, 2);
		avail_idx++;
	}
	__atomic_store_n((uint16_t *)ram(Q_AVAIL + 2, 2), avail_idx,
	    __ATOMIC_RELEASE);
	mmio_wr(notify, 2, 0);
	wait_used(N);
	for (unsigned i = 0; i < N; i++) {
		cr_assert_eq(status(i), VIRTIO_BLK_S_OK);
		memset(data(i), 0, 4096);
		(void)req(i, VIRTIO_BLK_T_IN, 100 + 8 * i, 4096, true);
		kick((uint16_t)(3 * i));
	}
	wait_used(N);
	for (unsigned i = 0; i < N; i++) {
		uint8_t want[4096];

		pattern(want, sizeof(want), i);
		cr_assert_eq(status(i), VIRTIO_BLK_S_OK);
		cr_assert_arr_eq(data(i), want, sizeof(want), "request %u", i);
	}
}

Test(virtio_blk, indirect_descriptors)
{
	uint64_t table = DATA + 0x100000;
	uint8_t *t = ram(table, 48);
	uint64_t a[3] = { HDRS, DATA, STATUS };
	uint32_t l[3] = { 16, 2048, 1 };
	uint16_t fl[3] = { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_NEXT |
	    VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_WRITE };

	pattern(data(0), 2048, 9);
	cr_assert_eq(run(VIRTIO_BLK_T_OUT, 5, 2048, false), VIRTIO_BLK_S_OK);
	(void)req(0, VIRTIO_BLK_T_IN, 5, 0, false);	/* header, status */
	for (int i = 0; i < 3; i++) {
		uint16_t next = (uint16_t)(i + 1);

		memcpy(t + 16 * i, &a[i], 8);
		memcpy(t + 16 * i + 8, &l[i], 4);
		memcpy(t + 16 * i + 12, &fl[i], 2);
		memcpy(t + 16 * i + 14, &next, 2);
	}
	memset(data(0), 0, 2048);
	vh_desc(&rq, 10, table, 48, VIRTQ_DESC_F_INDIRECT, 0);
	kick(10);
	wait_used(1);
	cr_assert_eq(status(0), VIRTIO_BLK_S_OK);
	{
		uint8_t want[2048];

		pattern(want, sizeof(want), 9);
		cr_assert_arr_eq(data(0), want, sizeof(want));
	}
}

Test(virtio_blk, intx_fallback_through_isr)
{
	uint32_t pin = cfg_rd(PCI_INT_PIN, 1);
	unsigned gsi = PCI_GSI_BASE + (slot + pin - 1) % 4;

	cr_assert_eq(pin, 1);
	/* The driver without MSI-X (pci=nomsi): disable it, re-init. */
	for (unsigned cap = cfg_rd(PCI_CAP_PTR, 1); cap; cap = cfg_rd(cap + 1,
	    1))
		if (cfg_rd(cap, 1) == PCI_CAP_ID_MSIX)
			cfg_wr(cap + 2, 2, 0);
	driver_init(false);
	cr_assert_eq(run(VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
	for (int i = 0; i < 1000 && !gsi_level[gsi]; i++)
		usleep(1000);
	cr_assert_eq(gsi_level[gsi], 1, "INTA raised on GSI %u", gsi);
	cr_assert_eq(mmio_rd(isr, 1), 1, "queue interrupt");
	cr_assert_eq(gsi_level[gsi], 0, "reading the ISR lowers INTA");
	cr_assert_eq(mmio_rd(isr, 1), 0, "and clears it");
}

/* --- read-only and qcow2 (after the suite's setup: a VM of their own) --- */

static void
setup_ro(void)
{
	int fd;

	vm_down();
	fd = open(img_path, O_WRONLY);
	cr_assert_eq(pwrite(fd, "KEEP", 4, 0), 4);
	close(fd);
	vm_up("raw", true);
}

Test(virtio_blk, readonly_disk_refuses_writes, .init = setup_ro)
{
	char buf[4];
	int fd;

	cr_assert(device_features() >> VIRTIO_BLK_F_RO & 1);
	memset(data(0), 'X', 512);
	cr_assert_eq(run(VIRTIO_BLK_T_OUT, 0, 512, false), VIRTIO_BLK_S_IOERR);
	cr_assert_eq(run(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
	    VIRTIO_BLK_S_IOERR);
	cr_assert_eq(run(VIRTIO_BLK_T_IN, 0, 512, true), VIRTIO_BLK_S_OK);
	cr_assert_arr_eq(data(0), "KEEP", 4);
	fd = open(img_path, O_RDONLY);
	cr_assert_eq(pread(fd, buf, 4, 0), 4);
	close(fd);
	cr_assert_arr_eq(buf, "KEEP", 4, "image untouched");
}

static void
setup_qcow2(void)
{
	char err[256];

	vm_down();
	snprintf(img2_path, sizeof(img2_path), "%s.qcow2", img_path);
	cr_assert_eq(qcow2_create(img2_path, DISK, &(struct qcow2_create_opts)
	    { .cluster_size = 65536 }, err, sizeof(err)), 0, "%s", err);
	vm_up("qcow2", false);
}

Test(virtio_blk, qcow2_image, .init = setup_qcow2)
{
	uint8_t want[65536];

	memset(data(0), 0x77, 512);
	cr_assert_eq(run(VIRTIO_BLK_T_IN, 1000, 512, true), VIRTIO_BLK_S_OK);
	cr_assert_eq(data(0)[0], 0, "unallocated reads as zeros");
	/* Across a cluster boundary: sector 120 + 64 KiB. */
	pattern(data(0), sizeof(want), 5);
	cr_assert_eq(run(VIRTIO_BLK_T_OUT, 120, sizeof(want), false),
	    VIRTIO_BLK_S_OK);
	cr_assert_eq(run(VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
	memset(data(0), 0, sizeof(want));
	cr_assert_eq(run(VIRTIO_BLK_T_IN, 120, sizeof(want), true),
	    VIRTIO_BLK_S_OK);
	pattern(want, sizeof(want), 5);
	cr_assert_arr_eq(data(0), want, sizeof(want));
}

/* --- the hostile driver --- */

/* The device gave up on the queue, told the driver, and recovers after
 * a reset. */
static void
expect_needs_reset(const char *what)
{
	uint16_t before = used_idx();

	usleep(20000);
	cr_assert(dev_status() & VIRTIO_S_NEEDS_RESET, "%s", what);
	cr_assert_gt(msis[0], 0, "config vector fired for %s", what);
	cr_assert_eq(used_idx(), before, "nothing completed for %s", what);
	driver_init(true);
	cr_assert_not(dev_status() & VIRTIO_S_NEEDS_RESET);
	pattern(data(0), 512, 1);
	cr_assert_eq(run(VIRTIO_BLK_T_OUT, 0, 512, false), VIRTIO_BLK_S_OK,
	    "works again after %s", what);
}

Test(virtio_blk, buffer_past_ram)
{
	(void)req(0, VIRTIO_BLK_T_IN, 0, 512, true);
	vh_desc(&rq, 1, RAM - 256, 512, VIRTQ_DESC_F_NEXT |
	    VIRTQ_DESC_F_WRITE, 2);
	kick(0);
	expect_needs_reset("a buffer crossing the end of RAM");
	(void)req(0, VIRTIO_BLK_T_IN, 0, 512, true);
	vh_desc(&rq, 1, UINT64_MAX - 255, 512, VIRTQ_DESC_F_NEXT |
	    VIRTQ_DESC_F_WRITE, 2);
	kick(0);
	expect_needs_reset("an address that wraps");
}

Test(virtio_blk, descriptor_loop)
{
	(void)req(0, VIRTIO_BLK_T_IN, 0, 512, true);
	vh_desc(&rq, 2, STATUS, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	kick(0);
	expect_needs_reset("a descriptor loop");
}

Test(virtio_blk, indirect_loop_and_nesting)
{
	uint64_t table = DATA + 0x100000;
	uint8_t *t = ram(table, 32);
	uint16_t f = VIRTQ_DESC_F_NEXT, zero = 0;
	uint64_t a = HDRS;
	uint32_t l = 16;

	/* Two entries pointing at each other. */
	for (int i = 0; i < 2; i++) {
		uint16_t next = (uint16_t)(1 - i);

		memcpy(t + 16 * i, &a, 8);
		memcpy(t + 16 * i + 8, &l, 4);
		memcpy(t + 16 * i + 12, &f, 2);
		memcpy(t + 16 * i + 14, &next, 2);
	}
	vh_desc(&rq, 0, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
	kick(0);
	expect_needs_reset("a loop inside an indirect table");
	/* An indirect table that points at itself (nesting). */
	f = VIRTQ_DESC_F_INDIRECT;
	memcpy(t, &table, 8);
	l = 16;
	memcpy(t + 8, &l, 4);
	memcpy(t + 12, &f, 2);
	memcpy(t + 14, &zero, 2);
	vh_desc(&rq, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	kick(0);
	expect_needs_reset("a nested indirect table");
}

Test(virtio_blk, lengths_that_overflow)
{
	uint64_t table = DATA + 0x100000;
	uint32_t big = 32u << 20;	/* 32 MiB of RAM, many times */
	uint16_t f = VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE;
	uint8_t *t = ram(table, 16 * QSIZE);

	for (uint16_t i = 0; i < QSIZE; i++) {
		uint16_t next = (uint16_t)(i + 1);
		uint64_t a = 0x1000000;

		memcpy(t + 16 * i, &a, 8);
		memcpy(t + 16 * i + 8, &big, 4);
		memcpy(t + 16 * i + 12, &f, 2);
		memcpy(t + 16 * i + 14, &next, 2);
	}
	f = VIRTQ_DESC_F_WRITE;
	memcpy(t + 16 * (QSIZE - 1) + 12, &f, 2);
	vh_desc(&rq, 0, table, 16 * QSIZE, VIRTQ_DESC_F_INDIRECT, 0);
	kick(0);
	expect_needs_reset("a chain of more than 4 GiB");
	/* An indirect table of length 0 and one not a multiple of 16. */
	vh_desc(&rq, 0, table, 0, VIRTQ_DESC_F_INDIRECT, 0);
	kick(0);
	expect_needs_reset("an empty indirect table");
	vh_desc(&rq, 0, table, 24, VIRTQ_DESC_F_INDIRECT, 0);
	kick(0);
	expect_needs_reset("an indirect table of 1.5 descriptors");
}

Test(virtio_blk, indexes_beyond_the_queue)
{
	uint16_t next = 5000;

	(void)req(0, VIRTIO_BLK_T_IN, 0, 512, true);
	vh_desc(&rq, 0, HDRS, 16, VIRTQ_DESC_F_NEXT, next);
	kick(0);
	expect_needs_reset("a next index past the table");
	kick(QSIZE + 3);
	expect_needs_reset("a head past the table");
	/* avail->idx running ahead by more than the queue size. */
	avail_idx = QSIZE + 10;
	kick(0);
	expect_needs_reset("an avail index ahead of the ring");
}

Test(virtio_blk, rings_outside_ram_refused)
{
	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, 0);
	mmio_wr(common + VIRTIO_COMMON_Q_SELECT, 2, 0);
	mmio_wr(common + VIRTIO_COMMON_Q_DESC, 4, (uint32_t)(RAM - 16));
	mmio_wr(common + VIRTIO_COMMON_Q_DESC + 4, 4, 0);
	mmio_wr(common + VIRTIO_COMMON_Q_ENABLE, 2, 1);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_Q_ENABLE, 2), 0);
	cr_assert(dev_status() & VIRTIO_S_NEEDS_RESET);
	mmio_wr(notify, 2, 0);		/* a kick of it does nothing */
	driver_init(true);
	cr_assert_eq(run(VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, request_without_status_byte)
{
	vh_desc(&rq, 0, HDRS, 16, 0, 0);
	kick(0);
	expect_needs_reset("a request with no writable byte");
}

/* --- state --- */

Test(virtio_blk, snapshot_round_trip)
{
	struct snap s, l;
	void *st;

	cr_assert_eq(run(VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
	st = devices_find(vm, &virtio_blk_ops);
	cr_assert_not_null(st);
	snap_init_save(&s);
	pthread_mutex_lock(&vm->devlock);
	cr_assert_eq(snap_section_begin(&s, "virtio-blk0", 1), 0);
	cr_assert_eq(virtio_blk_ops.snapshot(st, &s), 0);
	cr_assert_eq(snap_section_end(&s), 0);
	/* Forget everything, then load it back. */
	virtio_blk_ops.reset(st);
	pthread_mutex_unlock(&vm->devlock);
	cr_assert_eq(dev_status(), 0);
	snap_init_load(&l, s.buf, s.len);
	pthread_mutex_lock(&vm->devlock);
	cr_assert_eq(snap_section_begin(&l, "virtio-blk0", 1), 0);
	cr_assert_eq(virtio_blk_ops.snapshot(st, &l), 0, "%s", l.errmsg);
	cr_assert_eq(snap_section_end(&l), 0);
	pthread_mutex_unlock(&vm->devlock);
	snap_free(&s);
	cr_assert(dev_status() & VIRTIO_S_DRIVER_OK);
	/* The queue continues where it was. */
	pattern(data(0), 512, 4);
	cr_assert_eq(run(VIRTIO_BLK_T_OUT, 3, 512, false), VIRTIO_BLK_S_OK);
}

/* --- the configuration-space window onto the BARs --- */

Test(virtio_blk, pci_cfg_window)
{
	unsigned cap, at = 0;

	for (cap = cfg_rd(PCI_CAP_PTR, 1); cap != 0; cap = cfg_rd(cap + 1, 1))
		if (cfg_rd(cap, 1) == PCI_CAP_ID_VENDOR &&
		    cfg_rd(cap + 3, 1) == VIRTIO_PCI_CAP_PCI_CFG)
			at = cap;
	cr_assert_neq(at, 0, "VIRTIO_PCI_CAP_PCI_CFG present");
	cr_assert_eq(cfg_rd(at + 2, 1), 20);
	/* num_queues through the window. */
	cfg_wr(at + 4, 1, VIRTIO_BAR);
	cfg_wr(at + 8, 4, VIRTIO_COMMON_OFF + VIRTIO_COMMON_NUMQ);
	cfg_wr(at + 12, 4, 2);
	cr_assert_eq(cfg_rd(at + 16, 2), 1);
	/* Capacity from the device configuration. */
	cfg_wr(at + 8, 4, VIRTIO_DEVCFG_OFF + VIRTIO_BLK_CFG_CAPACITY);
	cfg_wr(at + 12, 4, 4);
	cr_assert_eq(cfg_rd(at + 16, 4), DISK / 512);
	/* A write: reset through the window. */
	cfg_wr(at + 8, 4, VIRTIO_COMMON_OFF + VIRTIO_COMMON_STATUS);
	cfg_wr(at + 12, 4, 1);
	cfg_wr(at + 16, 1, 0);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_STATUS, 1), 0);
	/* Misaligned or odd lengths do nothing. */
	cfg_wr(at + 12, 4, 3);
	cfg_wr(at + 16, 1, VIRTIO_S_ACKNOWLEDGE);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_STATUS, 1), 0);
}

/* A reset while requests are in flight: none completes afterwards. */
Test(virtio_blk, reset_with_requests_in_flight)
{
	enum { N = 24 };

	for (unsigned i = 0; i < N; i++) {
		pattern(data(i), 0x10000, i);
		(void)req(i, VIRTIO_BLK_T_OUT, 128 * i, 0x10000, false);
		kick((uint16_t)(3 * i));
	}
	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, 0);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_STATUS, 1), 0);
	memset(ram(Q_USED, 4 + 8 * QSIZE), 0, 4 + 8 * QSIZE);
	usleep(50000);
	cr_assert_eq(used_idx(), 0, "nothing pushed after the reset");
	driver_init(true);
	cr_assert_eq(run(VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
}

/* VIRTIO_F_RING_EVENT_IDX: interrupts only when used_event is passed,
 * and avail_event tells the driver when to kick. */
Test(virtio_blk, event_idx)
{
	uint16_t *used_event = ram(Q_AVAIL + 4 + 2 * QSIZE, 2);
	uint16_t *avail_event = ram(Q_USED + 4 + 8 * QSIZE, 2);
	int base;

	*used_event = 2;	/* wake me when entry 2 is used */
	base = msis[1];
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(run(VIRTIO_BLK_T_FLUSH, 0, 0, false),
		    VIRTIO_BLK_S_OK);
		/* The completion runs under the lock: wait it out. */
		pthread_mutex_lock(&vm->devlock);
		pthread_mutex_unlock(&vm->devlock);
		cr_assert_eq(msis[1] - base, i == 2 ? 1 : 0,
		    "after %d requests", i + 1);
		cr_assert_eq(*avail_event, i + 1, "kick me at the next entry");
	}
}

/* A guest reboot: the host bridge clears every BAR, the device puts
 * them back (no firmware runs again), and a driver starts over. */
Test(virtio_blk, vm_reset)
{
	uint64_t bar4 = bar_addr(VIRTIO_BAR);

	cr_assert_eq(run(VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
	pthread_mutex_lock(&vm->devlock);
	devices_reset(vm);
	pthread_mutex_unlock(&vm->devlock);
	cr_assert_eq(bar_addr(VIRTIO_BAR), bar4);
	cr_assert(cfg_rd(PCI_COMMAND, 2) & PCI_CMD_MEM);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_STATUS, 1), 0);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_Q_ENABLE, 2), 0);
	probe();
	driver_init(true);
	cr_assert_eq(run(VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
}

/* A snapshot stream is outside input: a queue size that is no power of
 * two, or rings outside RAM, are refused. */
Test(virtio_blk, snapshot_with_bad_queue_refused)
{
	struct virtio_dev *vd = NULL;
	struct snap s, l;
	void *st;

	st = devices_find(vm, &virtio_blk_ops);
	vd = st;	/* struct virtio_blk starts with its virtio_dev */
	for (int bad = 0; bad < 2; bad++) {
		pthread_mutex_lock(&vm->devlock);
		if (bad == 0)
			vd->vq[0].size = 100;
		else
			vd->vq[0].used = RAM - 8;
		snap_init_save(&s);
		snap_section_begin(&s, "virtio-blk0", 1);
		virtio_blk_ops.snapshot(st, &s);
		snap_section_end(&s);
		cr_assert_eq(snap_error(&s), 0);
		snap_init_load(&l, s.buf, s.len);
		snap_section_begin(&l, "virtio-blk0", 1);
		virtio_blk_ops.snapshot(st, &l);
		cr_assert_eq(snap_error(&l), -EINVAL, "case %d", bad);
		pthread_mutex_unlock(&vm->devlock);
		cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_Q_ENABLE, 2), 0,
		    "no half-loaded queue left enabled");
		mmio_wr(notify, 2, 0);
		snap_free(&s);
		driver_init(true);
	}
}

/* F_MQ: one queue per vCPU, each with its own MSI-X vector. */
static void
setup_mq(void)
{
	vm_down();
	vcpus = 2;
	vm_up("raw", false);
}

Test(virtio_blk, multiqueue, .init = setup_mq)
{
	const struct vh_ring q1 = { 0x180000, 0x181000, 0x182000, 16 };
	uint8_t *hdr = ram(0x183000, 16), *st = ram(0x183010, 1);
	uint16_t idx1 = 0;
	uint32_t type = VIRTIO_BLK_T_GET_ID;

	cr_assert(device_features() >> VIRTIO_BLK_F_MQ & 1);
	cr_assert_eq(mmio_rd(devcfg + VIRTIO_BLK_CFG_NUM_QUEUES, 2), 2);
	/* Queue 1 at its own rings, vector 2. */
	msix_vector(2);
	vh_queue_setup(1, &q1, 2);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_Q_NOFF, 2), 1);
	/* GET_ID on queue 1: header, 20 bytes of ID, status. */
	memset(hdr, 0, 16);
	memcpy(hdr, &type, 4);
	{
		uint64_t addr[3] = { 0x183000, 0x183100, 0x183010 };
		uint32_t len[3] = { 16, 20, 1 };
		uint16_t fl[3] = { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_NEXT |
		    VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_WRITE };

		for (uint16_t i = 0; i < 3; i++)
			vh_desc(&q1, i, addr[i], len[i], fl[i], i + 1);
	}
	*st = 0xee;
	vh_avail(&q1, &idx1, 0);
	mmio_wr(notify + 1 * notify_mult, 2, 1);
	cr_assert(vh_wait_used(&q1, 0, 1, 5000), "queue 1 completed");
	cr_assert_eq(vh_used_idx(&q1), 1);
	cr_assert_eq(*st, VIRTIO_BLK_S_OK);
	cr_assert_str_eq((char *)ram(0x183100, 20), "TV-SERIAL-0042");
	cr_assert_eq(msis[2], 1, "queue 1's vector");
	cr_assert_eq(used_idx(), 0, "queue 0 untouched");
	/* Queue 0 still works beside it. */
	cr_assert_eq(run(VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
}

/*
 * Random rings: descriptor tables and avail entries of random bytes,
 * biased towards the edges (end of RAM, huge lengths, indexes just past
 * the queue, flag mixes).  Whatever the device makes of them, it must
 * not crash, hang or write outside RAM (run under ASan: make
 * check-asan); a reset always brings it back.
 */
static uint64_t
pick_addr(void)
{
	switch (rand() % 4) {
	case 0: return (uint64_t)rand() % RAM;
	case 1: return RAM - (uint64_t)(rand() % 8192);
	case 2: return ((uint64_t)rand() << 33) ^ (uint64_t)rand();
	default: return DATA + (uint64_t)(rand() % 0x10000);
	}
}

static uint32_t
pick_len(void)
{
	switch (rand() % 4) {
	case 0: return (uint32_t)(rand() % 64);
	case 1: return 512 * (uint32_t)(rand() % 9);
	case 2: return (uint32_t)rand() * 2u;
	default: return 0xffffffffu - (uint32_t)(rand() % 16);
	}
}

Test(virtio_blk, random_rings)
{
	srand(20261121);
	for (int iter = 0; iter < 300; iter++) {
		unsigned n = 1 + (unsigned)rand() % 8;

		for (unsigned i = 0; i < QSIZE; i++)
			vh_desc(&rq, i, pick_addr(), pick_len(),
			    (uint16_t)(rand() % 8),
			    (uint16_t)(rand() % (QSIZE + 8)));
		for (unsigned i = 0; i < 4; i++) {
			uint8_t *h = ram(HDRS + 16 * i, 16);

			memset(h, 0, 16);
			h[0] = (uint8_t)(rand() % 16);
			vh_desc(&rq, i, HDRS + 16 * i, 16, VIRTQ_DESC_F_NEXT |
			    (rand() % 4 == 0 ? VIRTQ_DESC_F_INDIRECT : 0),
			    (uint16_t)(rand() % (QSIZE + 2)));
		}
		for (unsigned i = 0; i < n; i++)
			kick((uint16_t)(rand() % (QSIZE + 4)));
		/* The reset waits for whatever the device started. */
		mmio_wr(common + VIRTIO_COMMON_STATUS, 1, 0);
		cr_assert_eq(dev_status(), 0);
		driver_init(true);
	}
	cr_assert_eq(run(VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
}

/* --- kicks through ioeventfd --- */

/* Queue a request and kick it the way a vCPU does; its status. */
static uint8_t
run_exit(uint32_t type, uint64_t sector, uint32_t len, bool data_write,
    bool *lockfree)
{
	vh_avail(&rq, &avail_idx, req(0, type, sector, len, data_write));
	*lockfree = vh_exit_kick_locked(notify, 0);
	wait_used(1);
	return status(0);
}

Test(virtio_blk, kick_through_ioeventfd_without_the_device_lock)
{
	bool lockfree;

	cr_assert_eq(vm->ioev_n, 1, "queue 0's notify address registered");
	cr_assert_eq(vm->ioev[0].gpa, notify);
	pattern(data(0), 4096, 3);
	cr_assert_eq(run_exit(VIRTIO_BLK_T_OUT, 20, 4096, false, &lockfree),
	    VIRTIO_BLK_S_OK);
	cr_assert(lockfree, "the kick did not wait for the device lock");
	memset(data(0), 0, 4096);
	cr_assert_eq(run_exit(VIRTIO_BLK_T_IN, 20, 4096, true, &lockfree),
	    VIRTIO_BLK_S_OK);
	cr_assert(lockfree);
	for (unsigned i = 0; i < 4096; i++)
		cr_assert_eq(data(0)[i], (uint8_t)(i * 7 + 3 + (i >> 9)));
	/* The same kick through the bus (a test's or the PCI_CFG
	 * window's) still works, synchronously. */
	cr_assert_eq(run(VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
}

static void
setup_no_ioeventfd(void)
{
	vm_down();
	setenv("TERMVISOR_IOEVENTFD", "0", 1);
	vm_up("raw", false);
}

Test(virtio_blk, ioeventfd_turned_off_kicks_through_the_bus,
    .init = setup_no_ioeventfd)
{
	bool lockfree;

	cr_assert_eq(vm->ioev_n, 0);
	cr_assert_eq(run_exit(VIRTIO_BLK_T_FLUSH, 0, 0, false, &lockfree),
	    VIRTIO_BLK_S_OK);
	cr_assert_not(lockfree, "without ioeventfd a kick takes the lock");
}

/* Moved with BAR4, gone while decoding is off and after a reset. */
Test(virtio_blk, ioeventfd_follows_bar4)
{
	uint64_t bar = bar_addr(VIRTIO_BAR), nb = 0xe0000000ull;
	uint16_t cmd = (uint16_t)cfg_rd(PCI_COMMAND, 2);
	bool lockfree;

	cr_assert_neq(bar, nb);
	cr_assert_eq(vm->ioev_n, 1);
	cfg_wr(PCI_COMMAND, 2, cmd & ~PCI_CMD_MEM);
	cr_assert_eq(vm->ioev_n, 0, "decoding off: no ioeventfd");
	cfg_wr(PCI_BAR0 + 4 * VIRTIO_BAR, 4, (uint32_t)nb);
	cfg_wr(PCI_BAR0 + 4 * VIRTIO_BAR + 4, 4, (uint32_t)(nb >> 32));
	cr_assert_eq(vm->ioev_n, 0);
	cfg_wr(PCI_COMMAND, 2, cmd);
	cr_assert_eq(vm->ioev_n, 1);
	cr_assert_eq(vm->ioev[0].gpa, nb + (notify - bar));
	/* The old address is nobody's now. */
	pthread_mutex_lock(&vm->devlock);
	cr_assert_not(vm_ioeventfd_signal(vm, notify, 2));
	pthread_mutex_unlock(&vm->devlock);
	notify = nb + (notify - bar);
	common = nb + (common - bar);
	cr_assert_eq(run_exit(VIRTIO_BLK_T_FLUSH, 0, 0, false, &lockfree),
	    VIRTIO_BLK_S_OK);
	cr_assert(lockfree);
	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, 0);
	cr_assert_eq(vm->ioev_n, 0, "reset: queues disabled, no ioeventfd");
}

/* A kick that fired while the VM was paused is held back, then given
 * to the device when it resumes. */
Test(virtio_blk, kick_while_paused_runs_on_resume)
{
	uint16_t head = req(0, VIRTIO_BLK_T_FLUSH, 0, 0, false);

	pthread_mutex_lock(&vm->devlock);
	cr_assert_eq(vm_pause(vm, 1000), 0);
	pthread_mutex_unlock(&vm->devlock);
	vh_avail(&rq, &avail_idx, head);
	cr_assert(vh_exit_kick_locked(notify, 0));
	usleep(100000);		/* the event thread sees the eventfd */
	cr_assert_eq(used_idx(), used_seen, "nothing done while paused");
	pthread_mutex_lock(&vm->devlock);
	vm_resume(vm);
	pthread_mutex_unlock(&vm->devlock);
	wait_used(1);
	cr_assert_eq(status(0), VIRTIO_BLK_S_OK);
}

/*
 * A kick the source's eventfd still held when its VM paused is in no
 * stream: a request the driver queued and kicked, saved before the
 * device saw it, must still be served after the load.
 */
Test(virtio_blk, kick_pending_at_save_served_after_load)
{
	uint16_t head = req(0, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	struct snap s, l;
	void *st;

	st = devices_find(vm, &virtio_blk_ops);
	cr_assert_not_null(st);
	snap_init_save(&s);
	pthread_mutex_lock(&vm->devlock);
	/* Queued (the kick "lost" in the source's eventfd), then saved. */
	vh_avail(&rq, &avail_idx, head);
	cr_assert_eq(snap_section_begin(&s, "virtio-blk0", 1), 0);
	cr_assert_eq(virtio_blk_ops.snapshot(st, &s), 0);
	cr_assert_eq(snap_section_end(&s), 0);
	virtio_blk_ops.reset(st);
	snap_init_load(&l, s.buf, s.len);
	cr_assert_eq(snap_section_begin(&l, "virtio-blk0", 1), 0);
	cr_assert_eq(virtio_blk_ops.snapshot(st, &l), 0, "%s", l.errmsg);
	cr_assert_eq(snap_section_end(&l), 0);
	cr_assert_eq(vm->ioev_n, 1, "the loaded queue's ioeventfd registered");
	pthread_mutex_unlock(&vm->devlock);
	snap_free(&s);
	wait_used(1);
	cr_assert_eq(status(0), VIRTIO_BLK_S_OK);
}
