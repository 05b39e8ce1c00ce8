/*
 * virtio queue kicks (multiboot, paging off): finds the first virtio-blk
 * function on bus 0, brings it up as a modern driver would (no
 * interrupts: it polls the used ring), then sends "kicks=N" GET_ID
 * requests one at a time, each announced by a 16-bit write of the queue
 * index to its notify address, as Linux's iowrite16.  Prints
 * "tsc per request T", "kicks N done" and, with "hold=1" on the command line, waits there
 * (so a script can read the VM's exit counters) instead of exiting.
 * tests/e2e/ioeventfd.sh counts how many of those kicks were MMIO exits.
 */
#include "guest.h"

#define VENDOR_VIRTIO	0x1af4
#define DEVICE_BLK	0x1042
#define QSIZE		8
#define T_GET_ID	8	/* no disk I/O: the kick path, not the disk */

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
} __attribute__((packed));

extern uint32_t entry_ebx;
void multiboot_main(void);

/* The split ring, in our image (paging off: virtual = physical). */
static uint8_t desc[16 * QSIZE] __attribute__((aligned(16)));
static uint16_t avail[3 + QSIZE] __attribute__((aligned(2)));
static uint32_t used[1 + 2 * QSIZE + 1] __attribute__((aligned(4)));
static struct { uint32_t type, ioprio; uint64_t sector; } hdr;
static volatile uint8_t status;
static uint8_t id[20];

static uint32_t pci_read(unsigned dev, unsigned reg)
{
	outl(0xcf8, 0x80000000u | dev << 11 | (reg & 0xfc));
	return inl(0xcfc);
}

static void pci_write16(unsigned dev, unsigned reg, uint16_t v)
{
	outl(0xcf8, 0x80000000u | dev << 11 | (reg & 0xfc));
	outw(0xcfc + (reg & 2), v);
}

static volatile uint8_t *mmio(uint32_t addr)
{
	return (volatile uint8_t *)(uintptr_t)addr;
}

static void wr8(uint32_t a, uint8_t v) { *mmio(a) = v; }
static void wr16(uint32_t a, uint16_t v) { *(volatile uint16_t *)mmio(a) = v; }
static void wr32(uint32_t a, uint32_t v) { *(volatile uint32_t *)mmio(a) = v; }
static uint8_t rd8(uint32_t a) { return *mmio(a); }
static uint16_t rd16(uint32_t a) { return *(volatile uint16_t *)mmio(a); }

/* BAR4 + the common and notify offsets from the vendor capabilities. */
static int virtio_find(unsigned *devp, uint32_t *common, uint32_t *notify,
		       uint32_t *mult)
{
	for (unsigned dev = 1; dev < 32; dev++) {
		uint32_t bar, cap;

		if (pci_read(dev, 0) != (DEVICE_BLK << 16 | VENDOR_VIRTIO))
			continue;
		bar = pci_read(dev, 0x10 + 4 * 4) & ~0xfu;
		if (bar == 0 || pci_read(dev, 0x10 + 5 * 4) != 0)
			return -1;	/* unplaced, or above 4 GiB */
		*common = *notify = 0;
		for (cap = pci_read(dev, 0x34) & 0xff; cap != 0;
		     cap = pci_read(dev, cap) >> 8 & 0xff) {
			uint32_t w0 = pci_read(dev, cap), off = pci_read(dev, cap + 8);
			unsigned type = w0 >> 24;

			if ((w0 & 0xff) != 0x09 || (pci_read(dev, cap + 4) & 0xff) != 4)
				continue;
			if (type == 1)
				*common = bar + off;
			else if (type == 2) {
				*notify = bar + off;
				*mult = pci_read(dev, cap + 16);
			}
		}
		*devp = dev;
		return *common && *notify ? 0 : -1;
	}
	return -1;
}

/* vp_modern's order: reset, ACKNOWLEDGE, DRIVER, VERSION_1, FEATURES_OK,
 * queue 0, DRIVER_OK.  Returns queue 0's notify address, or 0. */
static uint32_t virtio_up(uint32_t c, uint32_t notify, uint32_t mult)
{
	wr8(c + 0x14, 0);
	wr8(c + 0x14, 1);
	wr8(c + 0x14, 3);
	wr32(c + 0x08, 1);		/* driver features, word 1 */
	wr32(c + 0x0c, 1);		/* VERSION_1 */
	wr32(c + 0x08, 0);
	wr32(c + 0x0c, 0);
	wr8(c + 0x14, 0xb);
	if (!(rd8(c + 0x14) & 8))
		return 0;
	wr16(c + 0x16, 0);
	wr16(c + 0x18, QSIZE);
	wr32(c + 0x20, (uint32_t)(uintptr_t)desc);
	wr32(c + 0x24, 0);
	wr32(c + 0x28, (uint32_t)(uintptr_t)avail);
	wr32(c + 0x2c, 0);
	wr32(c + 0x30, (uint32_t)(uintptr_t)used);
	wr32(c + 0x34, 0);
	wr16(c + 0x1c, 1);
	wr8(c + 0x14, 0xf);
	return notify + mult * rd16(c + 0x1e);
}

static void put_desc(unsigned i, const volatile void *p, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = desc + 16 * i;
	uint64_t a = (uint32_t)(uintptr_t)p;

	memcpy(d, &a, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* ticks / n without libgcc's 64-bit division (approximate above 2^32). */
static uint32_t tsc_per(uint64_t ticks, uint32_t n)
{
	unsigned shift = 0;

	if (n == 0)
		return 0;
	while (ticks >> 32) {
		ticks >>= 1;
		shift++;
	}
	return ((uint32_t)ticks / n) << shift;
}

/* One GET_ID, kicked, waited for; 0 if the device answered OK. */
static int virtio_flush(uint32_t qnotify, uint16_t n)
{
	volatile uint16_t *used_idx = (volatile uint16_t *)&used[0] + 1;

	status = 0xee;
	avail[2 + n % QSIZE] = 0;
	__asm__ volatile("" ::: "memory");
	((volatile uint16_t *)avail)[1] = (uint16_t)(n + 1);
	__asm__ volatile("mfence" ::: "memory");
	wr16(qnotify, 0);
	for (uint32_t spin = 0; *used_idx != (uint16_t)(n + 1); spin++) {
		if (spin > 200000000u)
			return -1;
		__asm__ volatile("pause" ::: "memory");
	}
	return status == 0 ? 0 : -1;
}

void multiboot_main(void)
{
	const struct mb_info *mbi = phys(entry_ebx);
	const char *cmdline = (mbi->flags & 4) ? phys(mbi->cmdline) : "";
	uint32_t kicks = 1000, hold = 0, common = 0, notify = 0, mult = 0, q;
	unsigned dev = 0, done = 0;
	uint64_t t0, t1;

	report_init();
	report_printf("termvisor test guest: virtiokick\n");
	cmdline_uint(cmdline, "kicks", &kicks);
	cmdline_uint(cmdline, "hold", &hold);
	if (!report_check(virtio_find(&dev, &common, &notify, &mult) == 0,
			  "virtio_blk_found", "no virtio-blk with BAR4 below 4 GiB"))
		report_finish();
	pci_write16(dev, 0x04, (uint16_t)(pci_read(dev, 0x04) | 0x6));
	q = virtio_up(common, notify, mult);
	if (!report_check(q != 0, "virtio_up", "FEATURES_OK refused"))
		report_finish();
	put_desc(0, &hdr, sizeof(hdr), 1, 1);
	put_desc(1, id, sizeof(id), 3, 2);
	put_desc(2, &status, 1, 2, 0);
	hdr.type = T_GET_ID;
	t0 = rdtsc();
	while (done < kicks && virtio_flush(q, (uint16_t)done) == 0)
		done++;
	t1 = rdtsc();
	report_check(done == kicks, "virtio_kicks", "request %u failed", done);
	/* For measurements: TSC ticks per request, kick to completion. */
	report_printf("tsc per request %u\n", tsc_per(t1 - t0, done));
	report_printf("kicks %u done\n", done);
	while (hold)
		__asm__ volatile("cli; hlt");
	report_finish();
}
