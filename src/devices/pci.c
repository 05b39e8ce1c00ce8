/*
 * PCI host bridge (configuration mechanism 1) and the PCI device model.
 *
 * Configuration space is 256 bytes per function with two masks: wmask
 * (bits the guest may write) and w1cmask (status bits a 1 clears).  BAR
 * sizing needs no special case: the BAR's wmask holds only the address
 * bits its size allows, so writing all-ones reads back the size mask.
 * After any write that touches the command register or a BAR, each BAR
 * is re-evaluated and its range registered, moved or removed on
 * vm->mmio / vm->pio.
 *
 * Port 0xcf8 is registered one byte wide: a dword access to 0xcf8 still
 * lands here (the bus dispatches by first byte), while a byte access to
 * 0xcf9 reaches the ACPI reset register, as on PC chipsets.
 *
 * INTx lines are shared (slots fold onto four GSIs), so the host keeps a
 * count of asserting devices per GSI and drives the line while any is.
 */
#include "devices/pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/log.h"

#define PCI_ADDR_PORT	0xcf8
#define PCI_DATA_PORT	0xcfc
#define PCI_ENABLE	0x80000000u

/* MSI-X capability fields. */
#define MSIX_CTRL	2		/* 16-bit message control */
#define MSIX_ENABLE	0x8000
#define MSIX_MASKALL	0x4000
#define MSIX_ENTRY	16
#define MSIX_VCTRL_MASK	0x1

struct pci_host {
	struct vm *vm;
	uint32_t addr;			/* 0xcf8 latch */
	struct pci_dev *dev[PCI_SLOTS * 8];
	unsigned gsi_count[4];		/* asserting devices per INTx GSI */
	struct pci_dev bridge;
};

static struct pci_host *
pci_host_find(struct vm *vm)
{
	return devices_find(vm, &pci_host_ops);
}

/* --- configuration space helpers --- */

static uint32_t
pci_cfg_get(const struct pci_dev *d, unsigned off, unsigned len)
{
	return (uint32_t)bus_get(d->cfg + off, len);
}

static void
pci_cfg_put(struct pci_dev *d, unsigned off, unsigned len, uint32_t v)
{
	bus_put(d->cfg + off, len, v);
}

static uint16_t
pci_command(const struct pci_dev *d)
{
	return (uint16_t)pci_cfg_get(d, PCI_COMMAND, 2);
}

void
pci_dev_set_wmask(struct pci_dev *d, unsigned off, unsigned len,
    uint32_t mask)
{
	if (off + len <= PCI_CFG_SIZE)
		bus_put(d->wmask + off, len, mask);
}

/*
 * A fresh type-0 function: identity read-only, command/latency/interrupt
 * line writable, the error bits of status write-1-to-clear.
 */
void
pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor,
    uint16_t device, uint32_t class_code, uint8_t revision)
{
	memset(d->cfg, 0, sizeof(d->cfg));
	memset(d->wmask, 0, sizeof(d->wmask));
	memset(d->w1cmask, 0, sizeof(d->w1cmask));
	snprintf(d->name, sizeof(d->name), "%s", name);
	pci_cfg_put(d, PCI_VENDOR_ID, 2, vendor);
	pci_cfg_put(d, PCI_DEVICE_ID, 2, device);
	d->cfg[PCI_REVISION] = revision;
	pci_cfg_put(d, PCI_CLASS_PROG, 3, class_code);
	d->cfg[PCI_INT_PIN] = 1;
	pci_dev_set_wmask(d, PCI_COMMAND, 2, PCI_CMD_IO | PCI_CMD_MEM |
	    PCI_CMD_MASTER | 0x0040 | 0x0100 | PCI_CMD_INTX_DISABLE);
	bus_put(d->w1cmask + PCI_STATUS, 2, 0xf900);
	d->wmask[0x0c] = 0xff;		/* cache line size */
	d->wmask[0x0d] = 0xff;		/* latency timer */
	d->wmask[PCI_INT_LINE] = 0xff;
	d->cap_end = 0x40;
	d->cap_last = 0;
}

void
pci_dev_set_subsystem(struct pci_dev *d, uint16_t vendor, uint16_t id)
{
	pci_cfg_put(d, PCI_SUBSYS_VENDOR, 2, vendor);
	pci_cfg_put(d, PCI_SUBSYS_ID, 2, id);
}

void
pci_dev_set_irq_pin(struct pci_dev *d, uint8_t pin)
{
	d->cfg[PCI_INT_PIN] = pin <= 4 ? pin : 1;
}

static uint64_t
pci_pow2(uint64_t v)
{
	uint64_t p = 1;

	while (p < v && p != 0)
		p <<= 1;
	return p;
}

int
pci_dev_set_bar(struct pci_dev *d, int bar, uint64_t size, unsigned kind,
    bus_io_fn *fn, void *opaque)
{
	unsigned type = kind & 0xff, off = PCI_BAR0 + 4 * bar;
	uint32_t flags;
	uint64_t mask;

	if (bar < 0 || bar > 5 || fn == NULL || size == 0 ||
	    (type == PCI_BAR_MEM64 && bar == 5) || type > PCI_BAR_IO)
		return -EINVAL;
	size = pci_pow2(size < (type == PCI_BAR_IO ? 4 : 16) ?
	    (type == PCI_BAR_IO ? 4 : 16) : size);
	if (size == 0 || (type == PCI_BAR_IO && size > 256) ||
	    (type == PCI_BAR_MEM32 && size > (1ull << 31)))
		return -EINVAL;
	d->bar[bar] = (struct pci_bar){ .size = size, .kind = kind, .fn = fn,
	    .opaque = opaque };
	mask = ~(size - 1);
	if (type == PCI_BAR_IO) {
		flags = 0x1;
		pci_dev_set_wmask(d, off, 4, (uint32_t)mask & 0xfffc);
	} else {
		flags = (type == PCI_BAR_MEM64 ? 0x4 : 0) |
		    ((kind & PCI_BAR_PREFETCH) ? 0x8 : 0);
		pci_dev_set_wmask(d, off, 4, (uint32_t)mask & 0xfffffff0);
		if (type == PCI_BAR_MEM64)
			pci_dev_set_wmask(d, off + 4, 4,
			    (uint32_t)(mask >> 32));
	}
	pci_cfg_put(d, off, 4, flags);
	return 0;
}

int
pci_cap_add(struct pci_dev *d, uint8_t id, unsigned len)
{
	unsigned at = (d->cap_end + 3) & ~3u;

	if (len < 2 || at + len > PCI_CFG_SIZE)
		return -ENOSPC;
	d->cfg[at] = id;
	d->cfg[at + 1] = 0;
	if (d->cap_last == 0)
		d->cfg[PCI_CAP_PTR] = (uint8_t)at;
	else
		d->cfg[d->cap_last + 1] = (uint8_t)at;
	d->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	d->cap_last = (uint8_t)at;
	d->cap_end = (uint16_t)(at + len);
	return (int)at;
}

/* --- BAR mapping --- */

static struct bus *
pci_bar_bus(const struct pci_dev *d, int i)
{
	return (d->bar[i].kind & 0xff) == PCI_BAR_IO ? d->vm->pio : d->vm->mmio;
}

/* The address BAR i is programmed with. */
static uint64_t
pci_bar_addr(const struct pci_dev *d, int i)
{
	unsigned off = PCI_BAR0 + 4 * i;
	uint64_t lo = pci_cfg_get(d, off, 4);

	switch (d->bar[i].kind & 0xff) {
	case PCI_BAR_IO:
		return lo & 0xfffc;
	case PCI_BAR_MEM64:
		return (lo & ~0xfull) | (uint64_t)pci_cfg_get(d, off + 4, 4) << 32;
	default:
		return lo & ~0xfull;
	}
}

/* Should BAR i decode at addr now? */
static bool
pci_bar_wanted(const struct pci_dev *d, int i, uint64_t addr)
{
	const struct pci_bar *b = &d->bar[i];
	bool io = (b->kind & 0xff) == PCI_BAR_IO;

	if (!d->registered || !(pci_command(d) & (io ? PCI_CMD_IO : PCI_CMD_MEM)))
		return false;
	if (addr == 0 || addr + b->size - 1 < addr)
		return false;	/* unassigned, or mid-sizing at the top */
	return !io || addr + b->size <= 0x10000;
}

static void
pci_bar_unmap(struct pci_dev *d, int i)
{
	if (!d->bar[i].is_mapped)
		return;
	bus_unregister(pci_bar_bus(d, i), d->bar[i].mapped);
	d->bar[i].is_mapped = false;
	if (d->bar_change != NULL)
		d->bar_change(d, i);
}

/*
 * Make the buses match the BARs and command register.  All stale
 * mappings go first, so a BAR may take the place a sibling just left.
 */
static void
pci_update_bars(struct pci_dev *d)
{
	for (int i = 0; i < 6; i++) {
		uint64_t addr = pci_bar_addr(d, i);

		if (d->bar[i].size != 0 && (!pci_bar_wanted(d, i, addr) ||
		    d->bar[i].mapped != addr))
			pci_bar_unmap(d, i);
	}
	for (int i = 0; i < 6; i++) {
		struct pci_bar *b = &d->bar[i];
		uint64_t addr = pci_bar_addr(d, i);
		char name[48];

		if (b->size == 0 || b->is_mapped ||
		    !pci_bar_wanted(d, i, addr))
			continue;
		snprintf(name, sizeof(name), "%s-bar%d", d->name, i);
		if (bus_register(pci_bar_bus(d, i), addr, b->size, b->fn,
		    b->opaque, name) < 0) {
			log_guest_once("pci %s: BAR%d at %#llx overlaps "
			    "another range; not decoded", d->name, i,
			    (unsigned long long)addr);
			continue;
		}
		b->mapped = addr;
		b->is_mapped = true;
		if (d->bar_change != NULL)
			d->bar_change(d, i);
	}
}

/* --- INTx --- */

static unsigned
pci_intx_gsi(const struct pci_dev *d)
{
	unsigned slot = d->devfn >> 3, pin = d->cfg[PCI_INT_PIN];

	return PCI_GSI_BASE + (slot + pin - 1) % 4;
}

/* Drive the shared GSI from what the device asserts now. */
static void
pci_intx_update(struct pci_dev *d)
{
	struct pci_host *h = d->host;
	bool want = d->irq_level && d->registered && d->cfg[PCI_INT_PIN] &&
	    !(pci_command(d) & PCI_CMD_INTX_DISABLE) && !pci_msix_enabled(d);
	unsigned g;

	if (d->irq_level)
		d->cfg[PCI_STATUS] |= PCI_STATUS_INTX;
	else
		d->cfg[PCI_STATUS] &= ~PCI_STATUS_INTX;
	if (h == NULL || want == d->intx_driven)
		return;
	d->intx_driven = want;
	g = pci_intx_gsi(d) - PCI_GSI_BASE;
	if (want && h->gsi_count[g]++ == 0)
		vm_irq_set(d->vm, PCI_GSI_BASE + g, 1);
	else if (!want && --h->gsi_count[g] == 0)
		vm_irq_set(d->vm, PCI_GSI_BASE + g, 0);
}

void
pci_irq_set(struct pci_dev *d, int level)
{
	d->irq_level = level != 0;
	pci_intx_update(d);
}

/* --- MSI-X --- */

static uint16_t
pci_msix_ctrl(const struct pci_dev *d)
{
	return (uint16_t)pci_cfg_get(d, d->msix.cap + MSIX_CTRL, 2);
}

bool
pci_msix_enabled(const struct pci_dev *d)
{
	return d->msix.nvec > 0 && (pci_msix_ctrl(d) & MSIX_ENABLE);
}

static bool
pci_msix_masked(const struct pci_dev *d, unsigned v)
{
	return (pci_msix_ctrl(d) & MSIX_MASKALL) ||
	    (d->msix.table[v * MSIX_ENTRY + 12] & MSIX_VCTRL_MASK);
}

static void
pci_msix_send(struct pci_dev *d, unsigned v)
{
	const uint8_t *e = d->msix.table + v * MSIX_ENTRY;

	vm_msi(d->vm, bus_get(e, 8), (uint32_t)bus_get(e + 8, 4));
}

bool
pci_msix_notify(struct pci_dev *d, unsigned v)
{
	if (v >= d->msix.nvec || !pci_msix_enabled(d))
		return false;
	if (pci_msix_masked(d, v))
		d->msix.pba[v / 8] |= (uint8_t)(1u << (v % 8));
	else
		pci_msix_send(d, v);
	return true;
}

/* After a mask changed: deliver what is pending and now unmasked. */
static void
pci_msix_flush(struct pci_dev *d)
{
	if (!pci_msix_enabled(d))
		return;
	for (unsigned v = 0; v < d->msix.nvec; v++) {
		if (!(d->msix.pba[v / 8] & (1u << (v % 8))) ||
		    pci_msix_masked(d, v))
			continue;
		d->msix.pba[v / 8] &= (uint8_t)~(1u << (v % 8));
		pci_msix_send(d, v);
	}
}

static unsigned
pci_msix_pba_len(const struct pci_dev *d)
{
	return ((d->msix.nvec + 63) / 64) * 8;
}

bool
pci_msix_access(struct pci_dev *d, int bar, uint64_t off, uint8_t *data,
    unsigned len, bool is_write)
{
	struct pci_msix *m = &d->msix;
	uint64_t tlen = (uint64_t)m->nvec * MSIX_ENTRY;

	if (m->nvec == 0 || bar != m->bar)
		return false;
	if (off >= m->table_off && off + len <= m->table_off + tlen) {
		uint8_t *p = m->table + (off - m->table_off);

		if (!is_write) {
			memcpy(data, p, len);
			return true;
		}
		memcpy(p, data, len);
		pci_msix_flush(d);
		return true;
	}
	if (off >= m->pba_off && off + len <= m->pba_off + pci_msix_pba_len(d)) {
		if (!is_write) {
			uint64_t pba_bytes = (m->nvec + 7) / 8;

			memset(data, 0, len);
			for (unsigned i = 0; i < len; i++)
				if (off - m->pba_off + i < pba_bytes)
					data[i] = m->pba[off - m->pba_off + i];
		}
		return true;	/* the PBA is read-only */
	}
	return false;
}

/* The BAR pci.c serves when the device gave MSI-X a BAR of its own. */
static void
pci_msix_bar_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct pci_dev *d = opaque;

	if (!pci_msix_access(d, d->msix.bar, off, data, len, is_write)) {
		log_guest_once("pci %s: MSI-X BAR access at %#llx outside "
		    "table and PBA", d->name, (unsigned long long)off);
		if (!is_write)
			memset(data, 0, len);
	}
}

int
pci_msix_init(struct pci_dev *d, unsigned nvec, int bar, uint32_t table_off,
    uint32_t pba_off)
{
	struct pci_msix *m = &d->msix;
	uint64_t end;
	int cap, err;

	if (nvec == 0 || nvec > 2048 || bar < 0 || bar > 5 ||
	    (table_off & 7) || (pba_off & 7) || m->nvec != 0)
		return -EINVAL;
	end = table_off + nvec * MSIX_ENTRY;
	if (pba_off + ((nvec + 63) / 64) * 8 > end)
		end = pba_off + ((nvec + 63) / 64) * 8;
	if (d->bar[bar].size == 0 && (err = pci_dev_set_bar(d, bar,
	    end < 4096 ? 4096 : end, PCI_BAR_MEM32, pci_msix_bar_io, d)) < 0)
		return err;
	if (end > d->bar[bar].size)
		return -EINVAL;
	if ((cap = pci_cap_add(d, PCI_CAP_ID_MSIX, 12)) < 0)
		return cap;
	m->table = calloc(nvec, MSIX_ENTRY);
	m->pba = calloc(1, ((nvec + 63) / 64) * 8);
	if (m->table == NULL || m->pba == NULL) {
		free(m->table);
		free(m->pba);
		return -ENOMEM;
	}
	m->nvec = nvec;
	m->bar = bar;
	m->table_off = table_off;
	m->pba_off = pba_off;
	m->cap = (uint8_t)cap;
	for (unsigned v = 0; v < nvec; v++)
		m->table[v * MSIX_ENTRY + 12] = MSIX_VCTRL_MASK;
	pci_cfg_put(d, cap + MSIX_CTRL, 2, nvec - 1);
	pci_cfg_put(d, cap + 4, 4, table_off | (uint32_t)bar);
	pci_cfg_put(d, cap + 8, 4, pba_off | (uint32_t)bar);
	pci_dev_set_wmask(d, cap + MSIX_CTRL, 2, MSIX_ENABLE | MSIX_MASKALL);
	return 0;
}

/* --- configuration access --- */

static bool
pci_overlaps(unsigned off, unsigned len, unsigned start, unsigned n)
{
	return off < start + n && start < off + len;
}

static void
pci_cfg_read(struct pci_dev *d, unsigned off, uint8_t *data, unsigned len)
{
	if (d->cfg_read != NULL)
		d->cfg_read(d, off, len);
	memcpy(data, d->cfg + off, len);
}

static void
pci_cfg_write(struct pci_dev *d, unsigned off, const uint8_t *data,
    unsigned len)
{
	for (unsigned i = 0; i < len; i++) {
		unsigned o = off + i;

		d->cfg[o] = (d->cfg[o] & ~d->wmask[o]) | (data[i] & d->wmask[o]);
		d->cfg[o] &= ~(data[i] & d->w1cmask[o]);
	}
	if (pci_overlaps(off, len, PCI_COMMAND, 2) ||
	    pci_overlaps(off, len, PCI_BAR0, 24))
		pci_update_bars(d);
	if (pci_overlaps(off, len, PCI_COMMAND, 2) || (d->msix.nvec &&
	    pci_overlaps(off, len, d->msix.cap + MSIX_CTRL, 2))) {
		pci_intx_update(d);
		pci_msix_flush(d);
	}
	if (d->cfg_write != NULL)
		d->cfg_write(d, off, len);
}

static void
pci_addr_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct pci_host *h = opaque;

	if (len != 4) {
		/* Only dword accesses select a configuration address. */
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (is_write)
		h->addr = (uint32_t)bus_get(data, 4) & 0x80fffffc;
	else
		bus_put(data, 4, h->addr);
}

static void
pci_data_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct pci_host *h = opaque;
	unsigned reg = (h->addr & 0xfc) + (unsigned)(off & 3);
	struct pci_dev *d = NULL;

	if ((h->addr & PCI_ENABLE) && ((h->addr >> 16) & 0xff) == 0)
		d = h->dev[(h->addr >> 8) & 0xff];
	if (d == NULL || off + len > 4) {
		if (!is_write)
			memset(data, 0xff, len);	/* no device */
		return;
	}
	if (is_write)
		pci_cfg_write(d, reg, data, len);
	else
		pci_cfg_read(d, reg, data, len);
}

/* --- devices on the bus --- */

static int
pci_host_attach(struct pci_host *h, struct pci_dev *d, int slot)
{
	if (slot < 0) {
		for (slot = 1; slot < PCI_SLOTS && h->dev[slot << 3]; slot++)
			;
		if (slot == PCI_SLOTS)
			return -ENOSPC;
	}
	if (slot >= PCI_SLOTS)
		return -EINVAL;
	if (h->dev[slot << 3] != NULL)
		return -EBUSY;
	d->vm = h->vm;
	d->host = h;
	d->devfn = (uint8_t)(slot << 3);
	d->registered = true;
	if (d->cfg[PCI_INT_PIN])
		d->cfg[PCI_INT_LINE] = (uint8_t)pci_intx_gsi(d);
	h->dev[d->devfn] = d;
	pci_update_bars(d);
	return 0;
}

int
pci_register_device(struct vm *vm, struct pci_dev *d, int slot)
{
	struct pci_host *h = pci_host_find(vm);

	if (h == NULL)
		return -ENODEV;
	return pci_host_attach(h, d, slot);
}

void
pci_unregister_device(struct pci_dev *d)
{
	if (!d->registered)
		return;
	pci_irq_set(d, 0);
	d->registered = false;
	for (int i = 0; i < 6; i++)
		pci_bar_unmap(d, i);
	d->host->dev[d->devfn] = NULL;
	free(d->msix.table);
	free(d->msix.pba);
	d->msix.table = d->msix.pba = NULL;
	d->msix.nvec = 0;
}

void
pci_dev_reset(struct pci_dev *d)
{
	pci_cfg_put(d, PCI_COMMAND, 2, 0);
	pci_cfg_put(d, PCI_STATUS, 2,
	    pci_cfg_get(d, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	for (int i = 0; i < 6; i++) {
		unsigned off = PCI_BAR0 + 4 * i;

		/* Keep the read-only type bits, clear the address. */
		pci_cfg_put(d, off, 4, pci_cfg_get(d, off, 4) &
		    ~(uint32_t)bus_get(d->wmask + off, 4));
	}
	if (d->msix.nvec) {
		pci_cfg_put(d, d->msix.cap + MSIX_CTRL, 2, d->msix.nvec - 1);
		memset(d->msix.table, 0, d->msix.nvec * MSIX_ENTRY);
		for (unsigned v = 0; v < d->msix.nvec; v++)
			d->msix.table[v * MSIX_ENTRY + 12] = MSIX_VCTRL_MASK;
		memset(d->msix.pba, 0, pci_msix_pba_len(d));
	}
	d->irq_level = false;
	pci_intx_update(d);
	pci_update_bars(d);
}

int
pci_dev_snapshot(struct pci_dev *d, struct snap *s)
{
	uint8_t cfg[PCI_CFG_SIZE];
	bool level = d->irq_level;

	memcpy(cfg, d->cfg, sizeof(cfg));
	snap_bytes(s, "pci.cfg", cfg, sizeof(cfg));
	snap_bool(s, "pci.irq", &level);
	if (d->msix.nvec) {
		snap_bytes(s, "pci.msix.table", d->msix.table,
		    d->msix.nvec * MSIX_ENTRY);
		snap_bytes(s, "pci.msix.pba", d->msix.pba,
		    pci_msix_pba_len(d));
	}
	if (snap_saving(s) || snap_error(s))
		return snap_error(s);
	/* Identity and layout are ours; only what the guest could write
	 * comes from the stream. */
	for (unsigned i = 0; i < PCI_CFG_SIZE; i++) {
		uint8_t m = d->wmask[i] | d->w1cmask[i];

		d->cfg[i] = (d->cfg[i] & ~m) | (cfg[i] & m);
	}
	pci_update_bars(d);
	pci_irq_set(d, level);
	pci_msix_flush(d);
	return 0;
}

/* --- firmware-style BAR assignment --- */

struct pci_alloc {
	struct pci_dev *d;
	int bar;
	uint64_t size;
};

static int
pci_alloc_cmp(const void *a, const void *b)
{
	const struct pci_alloc *x = a, *y = b;

	return x->size < y->size ? 1 : x->size > y->size ? -1 :
	    (x->d->devfn - y->d->devfn) * 8 + (x->bar - y->bar);
}

static void
pci_probe_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
}

/* Is [addr, addr+size) free on b?  (Something else may live in the
 * window already, e.g. a framebuffer.) */
static bool
pci_range_free(struct bus *b, uint64_t addr, uint64_t size)
{
	if (bus_register(b, addr, size, pci_probe_io, NULL, "pci-probe") < 0)
		return false;
	bus_unregister(b, addr);
	return true;
}

static void
pci_bar_program(struct pci_dev *d, int i, uint64_t addr)
{
	unsigned off = PCI_BAR0 + 4 * i;
	uint32_t m = (uint32_t)bus_get(d->wmask + off, 4);

	pci_cfg_put(d, off, 4, (pci_cfg_get(d, off, 4) & ~m) |
	    ((uint32_t)addr & m));
	if ((d->bar[i].kind & 0xff) == PCI_BAR_MEM64)
		pci_cfg_put(d, off + 4, 4, (uint32_t)(addr >> 32));
	pci_cfg_put(d, PCI_COMMAND, 2, pci_command(d) |
	    ((d->bar[i].kind & 0xff) == PCI_BAR_IO ? PCI_CMD_IO : PCI_CMD_MEM));
}

static int
pci_alloc_one(struct pci_dev *d, int i, uint64_t size, uint64_t *io,
    uint64_t *mem)
{
	bool isio = (d->bar[i].kind & 0xff) == PCI_BAR_IO;
	uint64_t *cur = isio ? io : mem;
	uint64_t limit = isio ? PCI_IO_WINDOW_END : GPA_PCI_MMIO_END;
	uint64_t addr = (*cur + size - 1) & ~(size - 1);

	while (addr + size <= limit &&
	    !pci_range_free(pci_bar_bus(d, i), addr, size))
		addr += size;
	if (addr + size > limit) {
		log_warnx("pci %s: no room for BAR%d (%llu bytes) in the %s "
		    "window", d->name, i, (unsigned long long)size,
		    isio ? "I/O" : "MMIO");
		return -ENOSPC;
	}
	pci_bar_program(d, i, addr);
	*cur = addr + size;
	return 0;
}

int
pci_assign_bars(struct vm *vm)
{
	struct pci_host *h = pci_host_find(vm);
	struct pci_alloc a[PCI_SLOTS * 8 * 6];
	uint64_t io = PCI_IO_WINDOW_START, mem = GPA_PCI_MMIO_START;
	int n = 0, err = 0;

	if (h == NULL)
		return -ENODEV;
	for (int f = 0; f < PCI_SLOTS * 8; f++)
		for (int i = 0; h->dev[f] != NULL && i < 6; i++)
			if (h->dev[f]->bar[i].size != 0 &&
			    pci_bar_addr(h->dev[f], i) == 0)
				a[n++] = (struct pci_alloc){ h->dev[f], i,
				    h->dev[f]->bar[i].size };
	/* Largest first: each aligned start is then the previous end. */
	qsort(a, n, sizeof(a[0]), pci_alloc_cmp);
	for (int k = 0; k < n && err == 0; k++)
		err = pci_alloc_one(a[k].d, a[k].bar, a[k].size, &io, &mem);
	for (int f = 0; f < PCI_SLOTS * 8; f++)
		if (h->dev[f] != NULL)
			pci_update_bars(h->dev[f]);
	return err;
}

/* --- the host bridge device --- */

/* Every function on the bus back to power-on (a PCI reset reaches them
 * all); pci_assign_bars() must run again before the guest starts. */
static void
pci_host_reset(void *state)
{
	struct pci_host *h = state;

	h->addr = 0;
	for (int f = 0; f < PCI_SLOTS * 8; f++)
		if (h->dev[f] != NULL)
			pci_dev_reset(h->dev[f]);
}

static int
pci_host_create(struct vm *vm)
{
	struct pci_host *h = calloc(1, sizeof(*h));
	int err;

	if (h == NULL)
		return -ENOMEM;
	h->vm = vm;
	pci_dev_init(&h->bridge, "host", PCI_HOST_VENDOR, PCI_HOST_DEVICE,
	    0x060000, 0);
	pci_dev_set_subsystem(&h->bridge, 0x1af4, 0x1100);
	pci_dev_set_irq_pin(&h->bridge, 0);
	pci_host_attach(h, &h->bridge, 0);
	if ((err = bus_register(vm->pio, PCI_ADDR_PORT, 1, pci_addr_io, h,
	    "pci-addr")) < 0)
		goto fail;
	if ((err = bus_register(vm->pio, PCI_DATA_PORT, 4, pci_data_io, h,
	    "pci-data")) < 0)
		goto fail_addr;
	if ((err = vm_device_register(vm, &pci_host_ops, h, "pci")) < 0)
		goto fail_data;
	return 0;
fail_data:
	bus_unregister(vm->pio, PCI_DATA_PORT);
fail_addr:
	bus_unregister(vm->pio, PCI_ADDR_PORT);
fail:
	free(h);
	return err;
}

static void
pci_host_fini(void *state)
{
	struct pci_host *h = state;

	bus_unregister(h->vm->pio, PCI_ADDR_PORT);
	bus_unregister(h->vm->pio, PCI_DATA_PORT);
	free(h);
}

static int
pci_host_snapshot(void *state, struct snap *s)
{
	struct pci_host *h = state;

	snap_u32(s, "addr", &h->addr);
	h->addr &= 0x80fffffc;
	return pci_dev_snapshot(&h->bridge, s);
}

const struct device_ops pci_host_ops = {
	.name = "pci",
	.create = pci_host_create,
	.fini = pci_host_fini,
	.snapshot = pci_host_snapshot,
	.snapshot_version = 1,
	.reset = pci_host_reset,
};
