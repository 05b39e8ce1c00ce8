/*
 * PCI bus 0 behind a host bridge with configuration mechanism 1 (0xcf8
 * address, 0xcfc-0xcff data), and the API PCI devices (virtio) use:
 * configuration space with write masks, BARs that follow the guest's
 * programming onto vm->mmio / vm->pio, a capability list builder, MSI-X
 * and INTx.
 *
 * A device embeds struct pci_dev, fills it with pci_dev_init(),
 * pci_dev_set_bar(), pci_cap_add() and pci_msix_init(), then calls
 * pci_register_device().  Its own snapshot function calls
 * pci_dev_snapshot() for the PCI part (the host's reset already resets
 * every function's PCI part).  All calls with the device lock held.
 *
 * Routing the lead's DSDT must match: slot S, pin P (1 = INTA) raises
 * GSI 16 + ((S + P - 1) % 4), level-triggered, active high (shared).
 */
#ifndef TV_PCI_H
#define TV_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/bus.h"

struct vm;
struct snap;
struct device_ops;
struct pci_host;

#define PCI_SLOTS		32
#define PCI_CFG_SIZE		256
#define PCI_GSI_BASE		16	/* INTx: GSIs 16-19 */
/* Windows the guest (and pci_assign_bars) may place BARs in; the MMIO
 * window is GPA_PCI_MMIO_START..GPA_PCI_MMIO_END in hv/vm.h. */
#define PCI_IO_WINDOW_START	0xc000
#define PCI_IO_WINDOW_END	0x10000	/* exclusive */

/* Host bridge identity (QEMU's generic PCIe host, no chipset quirks). */
#define PCI_HOST_VENDOR		0x1b36
#define PCI_HOST_DEVICE		0x0008

/* Configuration space offsets. */
#define PCI_VENDOR_ID		0x00
#define PCI_DEVICE_ID		0x02
#define PCI_COMMAND		0x04
#define PCI_STATUS		0x06
#define PCI_REVISION		0x08
#define PCI_CLASS_PROG		0x09
#define PCI_HEADER_TYPE		0x0e
#define PCI_BAR0		0x10
#define PCI_SUBSYS_VENDOR	0x2c
#define PCI_SUBSYS_ID		0x2e
#define PCI_CAP_PTR		0x34
#define PCI_INT_LINE		0x3c
#define PCI_INT_PIN		0x3d

#define PCI_CMD_IO		0x0001
#define PCI_CMD_MEM		0x0002
#define PCI_CMD_MASTER		0x0004
#define PCI_CMD_INTX_DISABLE	0x0400
#define PCI_STATUS_INTX		0x0008
#define PCI_STATUS_CAP_LIST	0x0010

#define PCI_CAP_ID_MSIX		0x11
#define PCI_CAP_ID_VENDOR	0x09

/* BAR kinds for pci_dev_set_bar(). */
enum pci_bar_kind {
	PCI_BAR_MEM32,
	PCI_BAR_MEM64,		/* takes two BAR slots: bar and bar + 1 */
	PCI_BAR_IO,
};
#define PCI_BAR_PREFETCH	0x100	/* or'ed into the kind */

struct pci_bar {
	uint64_t size;		/* 0: not implemented */
	unsigned kind;		/* enum pci_bar_kind | PCI_BAR_PREFETCH */
	bus_io_fn *fn;		/* gets off relative to the BAR */
	void *opaque;
	uint64_t mapped;	/* where it is on the bus, if is_mapped */
	bool is_mapped;
};

struct pci_msix {
	unsigned nvec;		/* 0: no MSI-X */
	int bar;
	uint32_t table_off, pba_off;
	uint8_t cap;		/* capability offset in config space */
	uint8_t *table;		/* nvec entries of 16 bytes */
	uint8_t *pba;		/* pending bits */
};

struct pci_dev {
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];	/* bits the guest may write */
	uint8_t w1cmask[PCI_CFG_SIZE];	/* bits a 1 clears */
	struct pci_bar bar[6];
	struct pci_msix msix;
	char name[32];
	/*
	 * Optional hooks: cfg_read before a configuration read of
	 * [off, off+len) (to refresh dynamic bytes), cfg_write after a
	 * write has been applied.
	 */
	void (*cfg_read)(struct pci_dev *d, unsigned off, unsigned len);
	void (*cfg_write)(struct pci_dev *d, unsigned off, unsigned len);
	/* Optional: BAR bar was just mapped, moved or unmapped on its bus
	 * (bar[bar].is_mapped and .mapped say where it is now). */
	void (*bar_change)(struct pci_dev *d, int bar);
	void *opaque;			/* the device's own state */

	/* Owned by pci.c. */
	struct vm *vm;
	struct pci_host *host;
	uint8_t devfn;
	bool registered;
	bool irq_level;			/* INTx as the device drives it */
	bool intx_driven;		/* counted on its GSI */
	uint8_t cap_last;		/* last capability, 0 if none */
	uint16_t cap_end;		/* first free byte for capabilities */
};

extern const struct device_ops pci_host_ops;

/* Header type 0 with IDs, class (base << 16 | sub << 8 | prog-if), INTA. */
void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor,
    uint16_t device, uint32_t class_code, uint8_t revision);
void pci_dev_set_subsystem(struct pci_dev *d, uint16_t vendor, uint16_t id);
/* Interrupt pin 1-4 (INTA-INTD), 0 for none. */
void pci_dev_set_irq_pin(struct pci_dev *d, uint8_t pin);
/* Let the guest write mask bits of [off, off+len) (len 1, 2 or 4). */
void pci_dev_set_wmask(struct pci_dev *d, unsigned off, unsigned len,
    uint32_t mask);

/*
 * Describe BAR bar: size is a power of two (rounded up; at least 16 bytes
 * for memory, 4 for I/O); fn handles accesses once the guest (or
 * pci_assign_bars) placed it and enabled decoding.  0 or -EINVAL.
 */
int pci_dev_set_bar(struct pci_dev *d, int bar, uint64_t size, unsigned kind,
    bus_io_fn *fn, void *opaque);

/*
 * Append a capability of len bytes (id and next pointer included) to the
 * list; returns its offset in config space (fill bytes 2.. of it), or
 * -ENOSPC.
 */
int pci_cap_add(struct pci_dev *d, uint8_t id, unsigned len);

/*
 * MSI-X with nvec vectors, table at table_off and PBA at pba_off of BAR
 * bar.  If that BAR is not set yet, pci.c creates it (32-bit memory,
 * at least 4 KiB) and serves it; if the device's own handler owns the
 * BAR, it must pass accesses to pci_msix_access() first.  0 or -errno.
 */
int pci_msix_init(struct pci_dev *d, unsigned nvec, int bar,
    uint32_t table_off, uint32_t pba_off);
/* Serve an access to the MSI-X table or PBA; false if off is outside. */
bool pci_msix_access(struct pci_dev *d, int bar, uint64_t off, uint8_t *data,
    unsigned len, bool is_write);
bool pci_msix_enabled(const struct pci_dev *d);
/*
 * Signal vector: delivered with vm_msi() now, or left pending while the
 * function or the vector is masked (delivered on unmask).  Returns
 * false if MSI-X is not enabled (use INTx) or vector is out of range.
 */
bool pci_msix_notify(struct pci_dev *d, unsigned vector);

/* Drive the device's INTx pin (level); honours INTx-disable and MSI-X. */
void pci_irq_set(struct pci_dev *d, int level);

/*
 * Put d on bus 0 at slot (1-31, or -1 for the first free one).  Needs
 * the host bridge (pci_host_ops) created first.  0 or -errno.
 */
int pci_register_device(struct vm *vm, struct pci_dev *d, int slot);
/* Unmap its BARs, drop its interrupt, take it off the bus, and free
 * what pci_msix_init() allocated (the device's fini calls this). */
void pci_unregister_device(struct pci_dev *d);

/* Power-on state: decoding off, BARs at 0, MSI-X off, INTx low.  The
 * host's reset (devices_reset) does this for every registered function. */
void pci_dev_reset(struct pci_dev *d);
/*
 * Save or load the PCI part of a device (inside its section).  Loading
 * takes only the guest-writable bits, then remaps BARs and redrives
 * interrupts.  Returns snap_error(s).
 */
int pci_dev_snapshot(struct pci_dev *d, struct snap *s);

/*
 * Assign every unassigned BAR on the bus an address in the windows, as
 * firmware would, and enable decoding.  Call after devices are created
 * (and after a reset).  0 or -ENOSPC.
 */
int pci_assign_bars(struct vm *vm);

#endif
