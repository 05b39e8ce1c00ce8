/*
 * The driver's side of a virtio PCI function, for the virtio device
 * tests (test_virtio_*.c): what Linux's virtio_pci_modern does to find
 * and start a device, and what a driver does on a split ring.
 *
 * Every access goes through the VM's buses under the device lock, as a
 * vCPU's exit would; nothing here looks at the device's own state.  A
 * test file includes this once: it holds the driver's view of the one
 * function under test (vm, slot, and where the capabilities put the
 * structures), set by vh_probe().  Everything is static inline, so a
 * test pays only for what it uses (the makefile links one .c per test).
 */
#ifndef TV_TEST_VIRTIO_HARNESS_H
#define TV_TEST_VIRTIO_HARNESS_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/bus.h"
#include "devices/pci.h"
#include "devices/virtio.h"
#include "hv/vm.h"
#include "util/evloop.h"

/* Where the MSI-X vectors the tests program send: vector v as data
 * VH_MSI_DATA + v. */
#define VH_MSI_ADDR	0xfee00000ull
#define VH_MSI_DATA	0x40u

static struct vm *vm;
static int slot;			/* of the function, on bus 0 */
/* Where its capabilities put the structures (0: not there). */
static uint64_t common, isr, devcfg, notify, msix_table;
static uint32_t notify_mult;

static inline uint64_t
mmio_rd(uint64_t addr, unsigned len)
{
	uint8_t d[8] = { 0 };

	pthread_mutex_lock(&vm->devlock);
	bus_access(vm->mmio, NULL, addr, d, len, false);
	pthread_mutex_unlock(&vm->devlock);
	return bus_get(d, len);
}

static inline void
mmio_wr(uint64_t addr, unsigned len, uint64_t v)
{
	uint8_t d[8];

	bus_put(d, len, v);
	pthread_mutex_lock(&vm->devlock);
	bus_access(vm->mmio, NULL, addr, d, len, true);
	pthread_mutex_unlock(&vm->devlock);
}

/* Configuration space of the function at slot, mechanism 1. */
static inline uint32_t
cfg_rd(unsigned reg, unsigned len)
{
	uint8_t d[4];

	pthread_mutex_lock(&vm->devlock);
	bus_put(d, 4, 0x80000000u | (unsigned)slot << 11 | (reg & 0xfc));
	bus_access(vm->pio, NULL, 0xcf8, d, 4, true);
	bus_access(vm->pio, NULL, 0xcfc + (reg & 3), d, len, false);
	pthread_mutex_unlock(&vm->devlock);
	return (uint32_t)bus_get(d, len);
}

static inline void
cfg_wr(unsigned reg, unsigned len, uint32_t v)
{
	uint8_t d[4];

	pthread_mutex_lock(&vm->devlock);
	bus_put(d, 4, 0x80000000u | (unsigned)slot << 11 | (reg & 0xfc));
	bus_access(vm->pio, NULL, 0xcf8, d, 4, true);
	bus_put(d, len, v);
	bus_access(vm->pio, NULL, 0xcfc + (reg & 3), d, len, true);
	pthread_mutex_unlock(&vm->devlock);
}

/* Guest RAM at gpa, len bytes of it (the test fails if it is not). */
static inline void *
ram(uint64_t gpa, uint64_t len)
{
	void *p = vm_gpa_to_hva(vm, gpa, len);

	cr_assert_not_null(p, "gpa %#llx+%llu is not RAM",
	    (unsigned long long)gpa, (unsigned long long)len);
	return p;
}

static inline uint64_t
bar_addr(int bar)
{
	uint64_t lo = cfg_rd(PCI_BAR0 + 4 * bar, 4);

	if ((lo & 6) == 4)
		lo |= (uint64_t)cfg_rd(PCI_BAR0 + 4 * bar + 4, 4) << 32;
	return lo & ~0xfull;
}

/* Put slot on the first function with the modern virtio id 0x1040 +
 * type; false (slot 32) if there is none. */
static inline bool
vh_find(unsigned type)
{
	for (slot = 1; slot < 32; slot++)
		if (cfg_rd(0, 4) == ((0x1040u + type) << 16 | 0x1af4))
			return true;
	return false;
}

/*
 * Find the function of virtio type and its structures as
 * virtio_pci_modern_probe does: walk the capability list, note where
 * the vendor capabilities point (the PCI_CFG window aside) and the MSI-X
 * table; enable MSI-X if msix (as the PCI core does), then memory
 * decoding and bus mastering.  The test asserts which it needs.
 */
static inline void
vh_probe(unsigned type, bool msix)
{
	cr_assert(vh_find(type), "no virtio device %#x (1af4:%04x) on bus 0",
	    type, 0x1040u + type);
	common = isr = devcfg = notify = msix_table = 0;
	notify_mult = 0;
	for (unsigned cap = cfg_rd(PCI_CAP_PTR, 1); cap != 0;
	    cap = cfg_rd(cap + 1, 1)) {
		unsigned id = cfg_rd(cap, 1), kind = cfg_rd(cap + 3, 1);
		uint64_t at;

		if (id == PCI_CAP_ID_MSIX) {
			uint32_t t = cfg_rd(cap + 4, 4);

			msix_table = bar_addr(t & 7) + (t & ~7u);
			if (msix)
				cfg_wr(cap + 2, 2, cfg_rd(cap + 2, 2) | 0x8000);
			continue;
		}
		if (id != PCI_CAP_ID_VENDOR || kind == VIRTIO_PCI_CAP_PCI_CFG)
			continue;
		cr_assert_neq(bar_addr(cfg_rd(cap + 4, 1)), 0, "BAR assigned");
		at = bar_addr(cfg_rd(cap + 4, 1)) + cfg_rd(cap + 8, 4);
		if (kind == VIRTIO_PCI_CAP_COMMON_CFG)
			common = at;
		else if (kind == VIRTIO_PCI_CAP_ISR_CFG)
			isr = at;
		else if (kind == VIRTIO_PCI_CAP_DEVICE_CFG)
			devcfg = at;
		else if (kind == VIRTIO_PCI_CAP_NOTIFY_CFG) {
			notify = at;
			notify_mult = cfg_rd(cap + 16, 4);
		}
	}
	cr_assert(common && notify, "no common or notify structure");
	cfg_wr(PCI_COMMAND, 2, cfg_rd(PCI_COMMAND, 2) | PCI_CMD_MEM |
	    PCI_CMD_MASTER);
}

/* MSI-X table entry v: to VH_MSI_ADDR with data VH_MSI_DATA + v,
 * unmasked. */
static inline void
msix_vector(unsigned v)
{
	uint64_t e = msix_table + 16 * v;

	mmio_wr(e, 4, (uint32_t)VH_MSI_ADDR);
	mmio_wr(e + 4, 4, 0);
	mmio_wr(e + 8, 4, VH_MSI_DATA + v);
	mmio_wr(e + 12, 4, 0);
}

static inline uint8_t
dev_status(void)
{
	return (uint8_t)mmio_rd(common + VIRTIO_COMMON_STATUS, 1);
}

static inline uint64_t
device_features(void)
{
	uint64_t f;

	mmio_wr(common + VIRTIO_COMMON_DFSELECT, 4, 0);
	f = mmio_rd(common + VIRTIO_COMMON_DF, 4);
	mmio_wr(common + VIRTIO_COMMON_DFSELECT, 4, 1);
	return f | mmio_rd(common + VIRTIO_COMMON_DF, 4) << 32;
}

/* The start of every driver's probe: reset, ACKNOWLEDGE and DRIVER. */
static inline void
vh_begin(void)
{
	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, 0);
	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, VIRTIO_S_ACKNOWLEDGE |
	    VIRTIO_S_DRIVER);
}

/* Then the driver's features f (both halves) and FEATURES_OK, which
 * must stick. */
static inline void
vh_negotiate(uint64_t f)
{
	mmio_wr(common + VIRTIO_COMMON_GFSELECT, 4, 0);
	mmio_wr(common + VIRTIO_COMMON_GF, 4, (uint32_t)f);
	mmio_wr(common + VIRTIO_COMMON_GFSELECT, 4, 1);
	mmio_wr(common + VIRTIO_COMMON_GF, 4, (uint32_t)(f >> 32));
	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, VIRTIO_S_ACKNOWLEDGE |
	    VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
	cr_assert(dev_status() & VIRTIO_S_FEATURES_OK, "features %#llx "
	    "refused", (unsigned long long)f);
}

/* The end of it: DRIVER_OK. */
static inline void
vh_driver_ok(void)
{
	mmio_wr(common + VIRTIO_COMMON_STATUS, 1, VIRTIO_S_ACKNOWLEDGE |
	    VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK);
}

/* --- a split ring the test lays out in guest RAM --- */

struct vh_ring {
	uint64_t desc, avail, used;	/* guest addresses */
	uint16_t size;
};

/* Queue q of size r->size on r's rings, zeroed, with MSI-X vector
 * (VIRTIO_NO_VECTOR for none), enabled.  Addresses in two 32-bit
 * halves, as vp_iowrite64_twopart writes them. */
static inline void
vh_queue_setup(unsigned q, const struct vh_ring *r, uint16_t vector)
{
	const uint64_t a[3] = { r->desc, r->avail, r->used };
	const unsigned reg[3] = { VIRTIO_COMMON_Q_DESC, VIRTIO_COMMON_Q_AVAIL,
	    VIRTIO_COMMON_Q_USED };

	mmio_wr(common + VIRTIO_COMMON_Q_SELECT, 2, q);
	mmio_wr(common + VIRTIO_COMMON_Q_SIZE, 2, r->size);
	if (vector != VIRTIO_NO_VECTOR) {
		mmio_wr(common + VIRTIO_COMMON_Q_MSIX, 2, vector);
		cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_Q_MSIX, 2), vector);
	}
	memset(ram(r->desc, 16u * r->size), 0, 16u * r->size);
	memset(ram(r->avail, 6 + 2u * r->size), 0, 6 + 2u * r->size);
	memset(ram(r->used, 6 + 8u * r->size), 0, 6 + 8u * r->size);
	for (int i = 0; i < 3; i++) {
		mmio_wr(common + reg[i], 4, (uint32_t)a[i]);
		mmio_wr(common + reg[i] + 4, 4, (uint32_t)(a[i] >> 32));
	}
	mmio_wr(common + VIRTIO_COMMON_Q_ENABLE, 2, 1);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_Q_ENABLE, 2), 1);
}

static inline void
vh_desc(const struct vh_ring *r, unsigned i, uint64_t addr, uint32_t len,
    uint16_t flags, uint16_t next)
{
	uint8_t *d = ram(r->desc + 16u * i, 16);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* Make head available as entry *idx, then publish *idx + 1. */
static inline void
vh_avail(const struct vh_ring *r, uint16_t *idx, uint16_t head)
{
	uint8_t *a = ram(r->avail, 4 + 2u * r->size);

	memcpy(a + 4 + 2 * (*idx % r->size), &head, 2);
	(*idx)++;
	__atomic_store_n((uint16_t *)(void *)(a + 2), *idx, __ATOMIC_RELEASE);
}

/* Kick queue q: its notify address, with its index as the value. */
static inline void
vh_notify(unsigned q)
{
	mmio_wr(notify + q * notify_mult, 2, q);
}

static inline uint16_t
vh_used_idx(const struct vh_ring *r)
{
	return __atomic_load_n((uint16_t *)ram(r->used + 2, 2),
	    __ATOMIC_ACQUIRE);
}

/* Used entry k (mod the size): its id and length. */
static inline void
vh_used_elem(const struct vh_ring *r, unsigned k, uint32_t *id,
    uint32_t *len)
{
	uint8_t *e = ram(r->used + 4 + 8u * (k % r->size), 8);

	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
}

/*
 * Wait (at most ms) until the device has used n entries past seen.  The
 * event thread publishes used entries and then signals, both under the
 * device lock: that is waited out too, so that a caller may count the
 * interrupts.  False on time-out.
 */
static inline bool
vh_wait_used(const struct vh_ring *r, uint16_t seen, unsigned n, int ms)
{
	for (int i = 0; i < ms; i++) {
		if ((uint16_t)(vh_used_idx(r) - seen) >= n) {
			pthread_mutex_lock(&vm->devlock);
			pthread_mutex_unlock(&vm->devlock);
			return true;
		}
		usleep(1000);
	}
	return false;
}

/* --- the VM's event thread and the interrupts it sends --- */

#define VH_NVEC		16

/* MSIs received per vector (data - VH_MSI_DATA), by vh_rec_msi. */
static int msis[VH_NVEC];

/* An accelerator's msi hook that counts what msix_vector() programmed. */
static inline int
vh_rec_msi(struct vm *v, uint64_t addr, uint32_t data)
{
	if (addr == VH_MSI_ADDR && data >= VH_MSI_DATA &&
	    data < VH_MSI_DATA + VH_NVEC)
		__atomic_fetch_add(&msis[data - VH_MSI_DATA], 1,
		    __ATOMIC_SEQ_CST);
	return 0;
}

/* The VM's event thread (completions, backends), for pthread_create. */
static inline void *
vh_loop_main(void *arg)
{
	evloop_run(arg);
	return NULL;
}

/* --- kicks as a vCPU makes them (ioeventfd) --- */

struct vh_exit_kick {
	uint64_t addr;
	uint16_t value;
};

/* A vCPU's 2-byte notify write as both accelerators hand it over:
 * vcpu_handle_exit(). */
static inline void *
vh_exit_kick_thread(void *arg)
{
	const struct vh_exit_kick *k = arg;
	struct vm_exit e = { .kind = VM_EXIT_MMIO };

	e.io.addr = k->addr;
	e.io.len = 2;
	e.io.write = true;
	bus_put(e.io.data, 2, k->value);
	vcpu_handle_exit(vm->vcpus[0], &e);
	return NULL;
}

/*
 * Write value to the notify register at addr from a "vCPU" thread while
 * this thread holds the device lock (as the event thread does while it
 * serves a batch).  True if the write completed while the lock was held,
 * i.e. the kick did not need it.
 */
static inline bool
vh_exit_kick_locked(uint64_t addr, uint16_t value)
{
	struct vh_exit_kick k = { addr, value };
	struct timespec ts;
	pthread_t t;
	bool done;

	pthread_mutex_lock(&vm->devlock);
	cr_assert_eq(pthread_create(&t, NULL, vh_exit_kick_thread, &k), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	done = pthread_timedjoin_np(t, NULL, &ts) == 0;
	pthread_mutex_unlock(&vm->devlock);
	if (!done)
		pthread_join(t, NULL);
	return done;
}

#endif
