/*
 * The PCI host bridge and device model, driven through 0xcf8/0xcfc and
 * the MMIO/PIO buses as a kernel's PCI core would.
 */
#include <criterion/criterion.h>
#include <errno.h>

#include "fake_vm.h"
#include "devices/pci.h"
#include "migrate/snap.h"

static struct vm *vm;

struct rec { uint64_t off; unsigned len; int calls; uint64_t val; };

static void
rec_io(struct vcpu *v, uint64_t off, uint8_t *d, unsigned len, bool w, void *op)
{
	struct rec *r = op;

	r->off = off;
	r->len = len;
	r->calls++;
	if (w)
		r->val = bus_get(d, len);
	else
		bus_put(d, len, 0xabcd0000 | off);
}

static void
setup(void)
{
	vm = fake_vm_new(64 << 20);
	cr_assert_eq(pci_host_ops.create(vm), 0);
}

static void
teardown(void)
{
	fake_vm_free(vm);
}

TestSuite(pci, .init = setup, .fini = teardown, .timeout = 10);

static uint32_t
cfg_addr(int slot, unsigned reg)
{
	return 0x80000000u | (unsigned)slot << 11 | (reg & 0xfc);
}

static uint32_t
cfg_rd(int slot, unsigned reg, unsigned len)
{
	fake_out(vm, 0xcf8, 4, cfg_addr(slot, reg));
	return fake_in(vm, 0xcfc + (reg & 3), len);
}

static void
cfg_wr(int slot, unsigned reg, unsigned len, uint32_t v)
{
	fake_out(vm, 0xcf8, 4, cfg_addr(slot, reg));
	fake_out(vm, 0xcfc + (reg & 3), len, v);
}

Test(pci, host_bridge_and_mechanism_1)
{
	cr_assert_eq(cfg_rd(0, 0, 4), 0x00081b36);
	cr_assert_eq(cfg_rd(0, 0, 2), 0x1b36);
	cr_assert_eq(cfg_rd(0, 2, 2), 0x0008);
	cr_assert_eq(cfg_rd(0, 3, 1), 0x00);
	cr_assert_eq(cfg_rd(0, 0x08, 4) >> 8, 0x060000, "host bridge class");
	cr_assert_eq(cfg_rd(0, 0x0b, 1), 0x06);
	cr_assert_eq(cfg_rd(0, 0x0e, 1), 0x00, "header type 0");
	cr_assert_eq(fake_in(vm, 0xcf8, 4), cfg_addr(0, 0x0c));
	cr_assert_eq(cfg_rd(7, 0, 4), 0xffffffff, "absent device");
	cr_assert_eq(cfg_rd(7, 0, 2), 0xffff);
	fake_out(vm, 0xcf8, 4, 0x00000000);	/* enable bit clear */
	cr_assert_eq(fake_in(vm, 0xcfc, 4), 0xffffffff);
	fake_out(vm, 0xcf8, 4, 0x80010000);	/* bus 1 */
	cr_assert_eq(fake_in(vm, 0xcfc, 4), 0xffffffff);
	/* A byte write to 0xcf9 is not the address register. */
	fake_out(vm, 0xcf8, 4, cfg_addr(0, 0));
	fake_out(vm, 0xcf9, 1, 0x00);
	cr_assert_eq(fake_in(vm, 0xcf8, 4), cfg_addr(0, 0));
	/* Read-only identity, writable interrupt line. */
	cfg_wr(0, 0, 4, 0x12345678);
	cr_assert_eq(cfg_rd(0, 0, 4), 0x00081b36);
}

static void
dev_setup(struct pci_dev *d, struct rec *r)
{
	memset(d, 0, sizeof(*d));
	pci_dev_init(d, "t", 0x1af4, 0x1041, 0x020000, 1);
	cr_assert_eq(pci_dev_set_bar(d, 0, 4096, PCI_BAR_MEM32, rec_io, r), 0);
	cr_assert_eq(pci_dev_set_bar(d, 1, 32, PCI_BAR_IO, rec_io, r), 0);
	cr_assert_eq(pci_dev_set_bar(d, 2, 16384, PCI_BAR_MEM64 |
	    PCI_BAR_PREFETCH, rec_io, r), 0);
}

Test(pci, bar_sizing_and_remap)
{
	struct pci_dev d;
	struct rec r = { 0 };

	dev_setup(&d, &r);
	cr_assert_eq(pci_register_device(vm, &d, 3), 0);
	cr_assert_eq(cfg_rd(3, 0, 4), 0x10411af4);
	/* Sizing as Linux's __pci_read_base does. */
	cfg_wr(3, 0x10, 4, 0xffffffff);
	cr_assert_eq(cfg_rd(3, 0x10, 4), 0xfffff000);
	cfg_wr(3, 0x14, 4, 0xffffffff);
	cr_assert_eq(cfg_rd(3, 0x14, 4), 0x0000ffe1);
	cfg_wr(3, 0x18, 4, 0xffffffff);
	cfg_wr(3, 0x1c, 4, 0xffffffff);
	cr_assert_eq(cfg_rd(3, 0x18, 4), 0xffffc00c, "64-bit prefetchable");
	cr_assert_eq(cfg_rd(3, 0x1c, 4), 0xffffffff);
	cr_assert_eq(cfg_rd(3, 0x20, 4), 0, "unimplemented BAR");
	cfg_wr(3, 0x10, 4, 0xc0001000);
	cfg_wr(3, 0x14, 4, 0xc040);
	cfg_wr(3, 0x18, 4, 0xd0000000);
	cfg_wr(3, 0x1c, 4, 0x1);
	cr_assert_null(bus_lookup_name(vm->mmio, 0xc0001000), "decode off");
	cfg_wr(3, 0x04, 2, 0x0003);
	cr_assert_eq(fake_mmio_read(vm, 0xc0001004, 4), 0xabcd0004);
	cr_assert_eq(r.calls, 1);
	fake_out(vm, 0xc042, 2, 0x55);
	cr_assert_eq(r.off, 2);
	cr_assert_eq(r.val, 0x55);
	cr_assert_not_null(bus_lookup_name(vm->mmio, 0x1d0000000ull));
	/* Move BAR0: the handler follows. */
	cfg_wr(3, 0x10, 4, 0xc0008000);
	cr_assert_null(bus_lookup_name(vm->mmio, 0xc0001000));
	fake_mmio_write(vm, 0xc0008010, 4, 0x99);
	cr_assert_eq(r.off, 0x10);
	cr_assert_eq(r.val, 0x99);
	/* Byte write to the BAR's high byte also moves it. */
	cfg_wr(3, 0x13, 1, 0xc1);
	cr_assert_not_null(bus_lookup_name(vm->mmio, 0xc1008000));
	cfg_wr(3, 0x04, 2, 0x0001);	/* memory decode off */
	cr_assert_null(bus_lookup_name(vm->mmio, 0xc1008000));
	cr_assert_null(bus_lookup_name(vm->mmio, 0x1d0000000ull));
	cr_assert_not_null(bus_lookup_name(vm->pio, 0xc040));
	pci_unregister_device(&d);
	cr_assert_null(bus_lookup_name(vm->pio, 0xc040));
	cr_assert_eq(cfg_rd(3, 0, 4), 0xffffffff);
}

Test(pci, masks_status_and_capabilities)
{
	struct pci_dev d;
	struct rec r = { 0 };
	int c1, c2;

	dev_setup(&d, &r);
	c1 = pci_cap_add(&d, PCI_CAP_ID_VENDOR, 16);
	c2 = pci_cap_add(&d, PCI_CAP_ID_VENDOR, 5);
	cr_assert_eq(c1, 0x40);
	cr_assert_eq(c2, 0x50);
	d.cfg[c2 + 2] = 0x77;
	d.cfg[0x07] = 0x20;		/* a latched error bit (RW1C) */
	cr_assert_eq(pci_register_device(vm, &d, -1), 0);
	cr_assert_eq(d.devfn, 1 << 3, "first free slot");
	cr_assert(cfg_rd(1, 0x06, 2) & 0x10, "capability list");
	cr_assert_eq(cfg_rd(1, 0x34, 1), 0x40);
	cr_assert_eq(cfg_rd(1, 0x41, 1), 0x50);
	cr_assert_eq(cfg_rd(1, 0x51, 1), 0x00);
	cr_assert_eq(cfg_rd(1, 0x52, 1), 0x77);
	cfg_wr(1, 0x52, 1, 0x11);
	cr_assert_eq(cfg_rd(1, 0x52, 1), 0x77, "read-only by default");
	cfg_wr(1, 0x06, 2, 0x0010);	/* writing 0 to the error bit */
	cr_assert_eq(cfg_rd(1, 0x07, 1), 0x20);
	cfg_wr(1, 0x06, 2, 0x2000);	/* 1 clears it */
	cr_assert_eq(cfg_rd(1, 0x07, 1), 0x00);
	cr_assert(cfg_rd(1, 0x06, 2) & 0x10, "cap bit is read-only");
	cfg_wr(1, 0x3c, 1, 0x0b);
	cr_assert_eq(cfg_rd(1, 0x3c, 1), 0x0b);
	cr_assert_eq(cfg_rd(1, 0x3d, 1), 1, "INTA");
	cfg_wr(1, 0x3d, 1, 3);
	cr_assert_eq(cfg_rd(1, 0x3d, 1), 1);
}

Test(pci, intx_routing_and_sharing)
{
	struct pci_dev a, b;
	struct rec r = { 0 };

	dev_setup(&a, &r);
	dev_setup(&b, &r);
	cr_assert_eq(pci_register_device(vm, &a, 1), 0);
	cr_assert_eq(pci_register_device(vm, &b, 5), 0);
	cr_assert_eq(pci_register_device(vm, &b, 5), -EBUSY);
	cr_assert_eq(cfg_rd(1, 0x3c, 1), 17, "slot 1 INTA -> GSI 17");
	cr_assert_eq(cfg_rd(5, 0x3c, 1), 17, "slot 5 INTA -> GSI 17");
	pci_irq_set(&a, 1);
	cr_assert_eq(fake_irqs.level[17], 1);
	cr_assert(cfg_rd(1, 0x06, 2) & 0x08, "interrupt status");
	pci_irq_set(&b, 1);
	pci_irq_set(&a, 0);
	cr_assert_eq(fake_irqs.level[17], 1, "b still asserts the line");
	cr_assert_eq(cfg_rd(1, 0x06, 2) & 0x08, 0);
	cfg_wr(5, 0x04, 2, 0x0400);	/* INTx disable */
	cr_assert_eq(fake_irqs.level[17], 0);
	cr_assert(cfg_rd(5, 0x06, 2) & 0x08, "status still shows it");
	cfg_wr(5, 0x04, 2, 0x0000);
	cr_assert_eq(fake_irqs.level[17], 1);
	pci_irq_set(&b, 0);
	cr_assert_eq(fake_irqs.level[17], 0);
}

static void
msix_entry(uint64_t table, unsigned v, uint64_t addr, uint32_t data,
    uint32_t ctrl)
{
	fake_mmio_write(vm, table + v * 16, 4, (uint32_t)addr);
	fake_mmio_write(vm, table + v * 16 + 4, 4, (uint32_t)(addr >> 32));
	fake_mmio_write(vm, table + v * 16 + 8, 4, data);
	fake_mmio_write(vm, table + v * 16 + 12, 4, ctrl);
}

Test(pci, msix_masks_and_pending_bits)
{
	struct pci_dev d;
	struct rec r = { 0 };
	uint64_t bar;
	int cap;

	dev_setup(&d, &r);
	cr_assert_eq(pci_msix_init(&d, 4, 4, 0, 0x800), 0);
	cr_assert_eq(pci_register_device(vm, &d, 2), 0);
	cr_assert_eq(pci_assign_bars(vm), 0);
	bar = cfg_rd(2, 0x20, 4) & ~0xfu;
	cr_assert_geq(bar, GPA_PCI_MMIO_START);
	cap = cfg_rd(2, 0x34, 1);
	cr_assert_eq(cfg_rd(2, cap, 1), 0x11);
	cr_assert_eq(cfg_rd(2, cap + 2, 2), 3, "table size - 1");
	cr_assert_eq(cfg_rd(2, cap + 4, 4), 4, "table in BAR4 at 0");
	cr_assert_eq(cfg_rd(2, cap + 8, 4), 0x800 | 4);
	cr_assert_eq(fake_mmio_read(vm, bar + 12, 4), 1, "masked at reset");
	cr_assert_not(pci_msix_notify(&d, 0), "MSI-X not enabled");
	msix_entry(bar, 0, 0xfee00000, 0x41, 0);
	msix_entry(bar, 1, 0xfee01000, 0x42, 1);
	cfg_wr(2, cap + 2, 2, 0xc000);	/* enable + function mask */
	cr_assert(pci_msix_notify(&d, 0));
	cr_assert_eq(fake_irqs.nmsi, 0);
	cr_assert_eq(fake_mmio_read(vm, bar + 0x800, 8), 1, "pending");
	fake_mmio_write(vm, bar + 0x800, 8, 0);	/* PBA is read-only */
	cr_assert_eq(fake_mmio_read(vm, bar + 0x800, 8), 1);
	cfg_wr(2, cap + 2, 2, 0x8000);	/* unmask the function */
	cr_assert_eq(fake_irqs.nmsi, 1);
	cr_assert_eq(fake_irqs.msi_addr[0], 0xfee00000);
	cr_assert_eq(fake_irqs.msi_data[0], 0x41);
	cr_assert_eq(fake_mmio_read(vm, bar + 0x800, 8), 0);
	pci_msix_notify(&d, 1);		/* vector 1 is masked */
	cr_assert_eq(fake_irqs.nmsi, 1);
	cr_assert_eq(fake_mmio_read(vm, bar + 0x800, 8), 2);
	fake_mmio_write(vm, bar + 16 + 12, 4, 0);
	cr_assert_eq(fake_irqs.nmsi, 2);
	cr_assert_eq(fake_irqs.msi_data[1], 0x42);
	pci_msix_notify(&d, 0);
	cr_assert_eq(fake_irqs.nmsi, 3, "unmasked: sent at once");
	cr_assert_not(pci_msix_notify(&d, 4), "out of range");
	/* With MSI-X on, INTx stays quiet. */
	pci_irq_set(&d, 1);
	cr_assert_eq(fake_irqs.level[16 + (2 + 0) % 4], 0);
	cfg_wr(2, cap + 2, 2, 0x0000);
	cr_assert_eq(fake_irqs.level[16 + (2 + 0) % 4], 1);
	pci_unregister_device(&d);
	cr_assert_eq(fake_irqs.level[16 + (2 + 0) % 4], 0);
}

Test(pci, assign_bars_like_firmware)
{
	struct pci_dev a, b;
	struct rec r = { 0 }, occupant = { 0 };
	uint64_t a0, a2, b0;
	uint32_t a1;

	/* Something already lives at the window's start. */
	cr_assert_eq(bus_register(vm->mmio, GPA_PCI_MMIO_START, 0x1000,
	    rec_io, &occupant, "fb"), 0);
	dev_setup(&a, &r);
	dev_setup(&b, &r);
	cr_assert_eq(pci_register_device(vm, &a, 1), 0);
	cr_assert_eq(pci_register_device(vm, &b, 2), 0);
	cr_assert_eq(pci_assign_bars(vm), 0);
	a0 = cfg_rd(1, 0x10, 4) & ~0xfu;
	a1 = cfg_rd(1, 0x14, 4) & ~3u;
	a2 = (cfg_rd(1, 0x18, 4) & ~0xfu) | (uint64_t)cfg_rd(1, 0x1c, 4) << 32;
	b0 = cfg_rd(2, 0x10, 4) & ~0xfu;
	cr_assert_eq(a0 % 4096, 0);
	cr_assert_eq(a2 % 16384, 0);
	cr_assert_eq(a1 % 32, 0);
	cr_assert_geq(a1, PCI_IO_WINDOW_START);
	cr_assert_lt(a1, PCI_IO_WINDOW_END);
	cr_assert_geq(a0, GPA_PCI_MMIO_START + 0x1000, "skips the occupant");
	cr_assert_lt(a2 + 16384, GPA_PCI_MMIO_END);
	cr_assert_neq(a0, b0);
	cr_assert_eq(cfg_rd(1, 0x04, 2) & 3, 3, "decoding enabled");
	cr_assert_eq(fake_mmio_read(vm, a0 + 8, 4), 0xabcd0008);
	cr_assert_eq(fake_mmio_read(vm, b0 + 8, 4), 0xabcd0008);
	cr_assert_eq(fake_in(vm, (uint16_t)a1 + 1, 1), 0x01);
	cr_assert_eq(occupant.calls, 0);
	/* Already-assigned BARs are left where they are. */
	cr_assert_eq(pci_assign_bars(vm), 0);
	cr_assert_eq(cfg_rd(1, 0x10, 4) & ~0xfu, a0);
	/* The host's reset reaches every function (guest reboot). */
	pci_host_ops.reset(fake_vm_device(vm, &pci_host_ops));
	cr_assert_eq(cfg_rd(1, 0x04, 2), 0);
	cr_assert_eq(cfg_rd(1, 0x10, 4), 0);
	cr_assert_eq(cfg_rd(1, 0x18, 4), 0x0c, "type bits survive reset");
	cr_assert_eq(cfg_rd(2, 0x10, 4), 0);
	cr_assert_null(bus_lookup_name(vm->mmio, a0));
	cr_assert_null(bus_lookup_name(vm->mmio, b0));
	cr_assert_eq(cfg_rd(0, 0, 4), 0x00081b36, "identity survives");
	cr_assert_eq(pci_assign_bars(vm), 0);
	cr_assert_eq(fake_mmio_read(vm, (cfg_rd(1, 0x10, 4) & ~0xfu) + 8, 4),
	    0xabcd0008, "reassigned after reset");
}

static int
save_dev(struct pci_dev *d, struct snap *s)
{
	snap_section_begin(s, "dev", 1);
	pci_dev_snapshot(d, s);
	snap_section_end(s);
	return snap_error(s);
}

Test(pci, snapshot_roundtrip)
{
	struct pci_dev d, d2;
	struct rec r = { 0 }, r2 = { 0 };
	struct snap s, l;
	struct vm *vm2;
	uint64_t bar0, mbar;
	int cap;

	dev_setup(&d, &r);
	cr_assert_eq(pci_msix_init(&d, 2, 4, 0, 0x800), 0);
	cr_assert_eq(pci_register_device(vm, &d, 4), 0);
	cr_assert_eq(pci_assign_bars(vm), 0);
	bar0 = cfg_rd(4, 0x10, 4) & ~0xfu;
	mbar = cfg_rd(4, 0x20, 4) & ~0xfu;
	cap = cfg_rd(4, 0x34, 1);
	msix_entry(mbar, 1, 0xfee00000, 0x55, 0);
	cfg_wr(4, cap + 2, 2, 0xc000);
	pci_msix_notify(&d, 1);		/* pending under the function mask */
	cfg_wr(4, 0x3c, 1, 0x0a);
	snap_init_save(&s);
	cr_assert_eq(save_dev(&d, &s), 0);

	vm2 = fake_vm_new(64 << 20);
	cr_assert_eq(pci_host_ops.create(vm2), 0);
	dev_setup(&d2, &r2);
	cr_assert_eq(pci_msix_init(&d2, 2, 4, 0, 0x800), 0);
	cr_assert_eq(pci_register_device(vm2, &d2, 4), 0);
	snap_init_load(&l, s.buf, s.len);
	cr_assert_eq(save_dev(&d2, &l), 0, "%s", l.errmsg);
	cr_assert_eq(fake_mmio_read(vm2, bar0 + 4, 4), 0xabcd0004);
	cr_assert_eq(r2.calls, 1, "BAR0 mapped where the guest had it");
	cr_assert_eq(d2.cfg[0x3c], 0x0a);
	cr_assert_eq(fake_mmio_read(vm2, mbar + 0x800, 8), 2, "pending kept");
	/* Unmasking on the restored VM delivers the pending vector. */
	fake_irqs.nmsi = 0;
	d2.cfg[cap + 3] &= ~0x40;
	{
		uint8_t v[2] = { 0x00, 0x80 };
		uint8_t a[4];

		bus_put(a, 4, cfg_addr(4, cap));
		bus_access(vm2->pio, NULL, 0xcf8, a, 4, true);
		bus_access(vm2->pio, NULL, 0xcfe, v, 2, true);
	}
	cr_assert_eq(fake_irqs.nmsi, 1);
	cr_assert_eq(fake_irqs.msi_data[0], 0x55);
	pci_unregister_device(&d2);
	pci_unregister_device(&d);
	snap_free(&s);
	fake_vm_free(vm2);
}

Test(pci, host_snapshot_roundtrip)
{
	struct snap s, l;
	struct vm *vm2;
	void *h = fake_vm_device(vm, &pci_host_ops);

	fake_out(vm, 0xcf8, 4, cfg_addr(0, 0x3c));
	fake_out(vm, 0xcfc, 1, 0x33);	/* host bridge's line register */
	snap_init_save(&s);
	snap_section_begin(&s, "pci", 1);
	pci_host_ops.snapshot(h, &s);
	snap_section_end(&s);
	vm2 = fake_vm_new(64 << 20);
	cr_assert_eq(pci_host_ops.create(vm2), 0);
	snap_init_load(&l, s.buf, s.len);
	snap_section_begin(&l, "pci", 1);
	pci_host_ops.snapshot(fake_vm_device(vm2, &pci_host_ops), &l);
	snap_section_end(&l);
	cr_assert_eq(snap_error(&l), 0, "%s", l.errmsg);
	cr_assert_eq(fake_in(vm2, 0xcf8, 4), cfg_addr(0, 0x3c));
	cr_assert_eq(fake_in(vm2, 0xcfc, 1), 0x33);
	snap_free(&s);
	fake_vm_free(vm2);
}

/* Random configuration writes, as a confused or hostile guest: the bus
 * must always decode exactly what the BARs and command register say. */
Test(pci, random_config_writes_keep_bus_and_config_in_step)
{
	struct pci_dev d;
	struct rec r = { 0 };
	unsigned seed = 12345;

	dev_setup(&d, &r);
	cr_assert_eq(pci_msix_init(&d, 3, 4, 0, 0x800), 0);
	cr_assert_eq(pci_register_device(vm, &d, 6), 0);
	for (int i = 0; i < 20000; i++) {
		static const unsigned lens[] = { 1, 2, 4 };
		unsigned reg, len;
		uint32_t v;

		seed = seed * 1103515245 + 12345;
		len = lens[(seed >> 8) % 3];
		reg = (seed >> 12) % 0x40;
		if (i % 3 == 0)
			reg = 0x04 + (seed >> 20) % 2 * 2;	/* command */
		reg &= ~(len - 1);
		v = seed ^ (seed << 7);
		if ((seed >> 28) & 1)
			v = (seed & 0x100) ? 0xffffffff : 0xc0000000 |
			    ((v & 0xff) << 12);
		cfg_wr(6, reg, len, v);
		for (int b = 0; b < 6; b++) {
			uint16_t cmd = (uint16_t)cfg_rd(6, 0x04, 2);
			bool io = b == 1;
			uint64_t addr;
			bool on;

			if (d.bar[b].size == 0)
				continue;
			addr = io ? cfg_rd(6, 0x10 + 4 * b, 4) & 0xfffc :
			    cfg_rd(6, 0x10 + 4 * b, 4) & ~0xfu;
			if (b == 2)
				addr |= (uint64_t)cfg_rd(6, 0x1c, 4) << 32;
			on = (cmd & (io ? 1 : 2)) && addr != 0 &&
			    addr + d.bar[b].size - 1 >= addr &&
			    (!io || addr + d.bar[b].size <= 0x10000);
			if (on && !d.bar[b].is_mapped) {
				/* Refused only because another range (a
				 * sibling BAR mid-sizing) holds the space. */
				struct bus *bus = io ? vm->pio : vm->mmio;

				cr_assert_neq(bus_register(bus, addr,
				    d.bar[b].size, rec_io, &r, "x"), 0,
				    "BAR%d at %#llx free but not decoded, "
				    "step %d", b, (unsigned long long)addr, i);
				continue;
			}
			cr_assert_eq(d.bar[b].is_mapped, on, "BAR%d at %#llx "
			    "cmd %#x, step %d", b, (unsigned long long)addr,
			    cmd, i);
			if (on)
				cr_assert_eq(d.bar[b].mapped, addr);
		}
	}
	pci_unregister_device(&d);
	cr_assert_null(bus_lookup_name(vm->mmio, GPA_PCI_MMIO_START));
}
