/*
 * Virtio 1.x over PCI (the modern interface only) and split virtqueues,
 * shared by every virtio device (virtio_blk.c, ...).
 *
 * Layout a driver finds through the vendor capabilities:
 *   BAR1  MSI-X table (0x000) and PBA (0x800), served by pci.c
 *   BAR4  64-bit memory, 16 KiB:
 *         0x0000 common configuration
 *         0x1000 ISR status (read clears)
 *         0x2000 device-specific configuration (the device's cfg hooks)
 *         0x3000 notifications, queue q at 0x3000 + 4 * q
 * MSI-X has one vector per queue plus one for configuration changes;
 * without MSI-X the device falls back to INTA and the ISR byte.
 *
 * Everything the guest hands us (ring addresses, descriptor indexes,
 * addresses, lengths, flags) is checked before use: a descriptor that
 * points outside guest RAM, a chain longer than the queue (a loop), a
 * length that overflows or an avail index that runs ahead by more than
 * the queue size puts the device into DEVICE_NEEDS_RESET: it stops using
 * the queues until the driver resets it.  No access outside guest RAM,
 * no crash, no hang.
 *
 * The VIRTIO_PCI_CAP_PCI_CFG window reaches BAR4 and the MSI-X BAR
 * through configuration space.
 *
 * VIRTIO_F_RING_EVENT_IDX is offered (used_event / avail_event);
 * without it the avail ring's NO_INTERRUPT flag is honoured.
 *
 * Queue notifications use ioeventfd (vm_ioeventfd_add) where they can:
 * each enabled queue's notify address, while BAR4 decodes, signals an
 * eventfd that the event loop serves by calling ops->notify, with the
 * device lock held as for any kick, but without the vCPU waiting for
 * that lock (or, on KVM, even leaving the kernel).  Kicks that fire
 * while the VM is paused are dropped: vm_resume() kicks every queue once.
 * TERMVISOR_IOEVENTFD=0 turns this off.  Queues a device gives to
 * virtio_kick_inline() keep the plain kick on an accelerator that exits
 * for every MMIO write anyway (the software CPU).
 *
 * Not implemented: packed rings, notification data, legacy I/O.
 *
 * All calls with the device lock held.
 */
#ifndef TV_VIRTIO_H
#define TV_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/pci.h"

struct vm;
struct snap;

#define VIRTIO_PCI_VENDOR	0x1af4
#define VIRTIO_PCI_DEVICE_BASE	0x1040	/* + device type */
/* virtio-net: 8 queue pairs and its control queue. */
#define VIRTIO_MAX_QUEUES	17
#define VIRTIO_QUEUE_MAX	256	/* largest (and default) queue size */
#define VIRTIO_NO_VECTOR	0xffff

/* Device status bits. */
#define VIRTIO_S_ACKNOWLEDGE	0x01
#define VIRTIO_S_DRIVER		0x02
#define VIRTIO_S_DRIVER_OK	0x04
#define VIRTIO_S_FEATURES_OK	0x08
#define VIRTIO_S_NEEDS_RESET	0x40
#define VIRTIO_S_FAILED		0x80

/* Transport feature bits. */
#define VIRTIO_F_RING_INDIRECT_DESC	28
#define VIRTIO_F_RING_EVENT_IDX		29
#define VIRTIO_F_VERSION_1		32

/* Descriptor flags. */
#define VIRTQ_DESC_F_NEXT	1
#define VIRTQ_DESC_F_WRITE	2
#define VIRTQ_DESC_F_INDIRECT	4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

/* PCI capability types (cfg_type). */
#define VIRTIO_PCI_CAP_COMMON_CFG	1
#define VIRTIO_PCI_CAP_NOTIFY_CFG	2
#define VIRTIO_PCI_CAP_ISR_CFG		3
#define VIRTIO_PCI_CAP_DEVICE_CFG	4
#define VIRTIO_PCI_CAP_PCI_CFG		5

/* Where things are in BAR4 (see the layout above). */
#define VIRTIO_BAR		4
#define VIRTIO_BAR_SIZE		0x4000
#define VIRTIO_COMMON_OFF	0x0000
#define VIRTIO_COMMON_LEN	0x0040
#define VIRTIO_ISR_OFF		0x1000
#define VIRTIO_DEVCFG_OFF	0x2000
#define VIRTIO_DEVCFG_MAX	0x1000
#define VIRTIO_NOTIFY_OFF	0x3000
#define VIRTIO_NOTIFY_MULT	4
#define VIRTIO_MSIX_BAR		1

/* Common configuration registers (offsets in the common cfg). */
#define VIRTIO_COMMON_DFSELECT	0x00
#define VIRTIO_COMMON_DF	0x04
#define VIRTIO_COMMON_GFSELECT	0x08
#define VIRTIO_COMMON_GF	0x0c
#define VIRTIO_COMMON_MSIX	0x10
#define VIRTIO_COMMON_NUMQ	0x12
#define VIRTIO_COMMON_STATUS	0x14
#define VIRTIO_COMMON_CFGGEN	0x15
#define VIRTIO_COMMON_Q_SELECT	0x16
#define VIRTIO_COMMON_Q_SIZE	0x18
#define VIRTIO_COMMON_Q_MSIX	0x1a
#define VIRTIO_COMMON_Q_ENABLE	0x1c
#define VIRTIO_COMMON_Q_NOFF	0x1e
#define VIRTIO_COMMON_Q_DESC	0x20
#define VIRTIO_COMMON_Q_AVAIL	0x28
#define VIRTIO_COMMON_Q_USED	0x30

/* A buffer of a descriptor chain, already translated and checked. */
struct virtio_iov {
	uint8_t *base;		/* host address inside guest RAM */
	uint64_t gpa;
	uint32_t len;
	bool write;		/* device-writable */
};

/* One popped descriptor chain. */
struct virtio_chain {
	uint16_t head;
	unsigned niov;
	uint32_t in_len, out_len;	/* writable / readable bytes */
	struct virtio_iov iov[VIRTIO_QUEUE_MAX];
};

struct virtq {
	uint16_t size, max_size;
	uint16_t vector;
	bool enabled;
	uint64_t desc, avail, used;	/* guest-physical addresses */
	uint16_t last_avail;		/* next avail entry to take */
	uint16_t used_idx;		/* our copy of used->idx */
	uint16_t signalled_used;	/* used_idx at the last interrupt check */
	/* Host views of the rings, checked when the queue is enabled. */
	uint8_t *desc_p, *avail_p, *used_p;
};

struct virtio_dev;

struct virtio_dev_ops {
	/* Device-specific configuration: reads and writes of [off,
	 * off+len) inside cfg_size (checked by virtio.c). */
	void (*cfg_read)(struct virtio_dev *vd, unsigned off, uint8_t *data,
	    unsigned len);
	void (*cfg_write)(struct virtio_dev *vd, unsigned off,
	    const uint8_t *data, unsigned len);
	/* The driver kicked queue q (enabled, device running). */
	void (*notify)(struct virtio_dev *vd, unsigned q);
	/* Device reset: drop every request in flight before returning. */
	void (*reset)(struct virtio_dev *vd);
};

struct virtio_dev {
	struct pci_dev pci;
	struct vm *vm;
	const struct virtio_dev_ops *ops;
	void *opaque;			/* the device's state */
	unsigned type;			/* virtio device type (2: block) */
	uint32_t cfg_size;
	uint64_t host_features;
	uint64_t guest_features;
	uint32_t dfselect, gfselect;
	uint8_t status;
	uint8_t isr;
	uint8_t cfg_generation;
	uint16_t config_vector;
	uint16_t queue_sel;
	uint8_t pcicfg;			/* PCI_CFG capability offset */
	unsigned nqueues;
	struct virtq vq[VIRTIO_MAX_QUEUES];
	/* Owned by virtio.c: each queue's ioeventfd (-1: none, the kick
	 * then goes through the bus) and the address it is registered at
	 * (0: not registered). */
	int ioev_fd[VIRTIO_MAX_QUEUES];
	uint64_t ioev_at[VIRTIO_MAX_QUEUES];
	uint32_t kick_inline;		/* queues kicked without an eventfd */
};

/*
 * Set up vd as PCI function name of virtio device type with nqueues
 * queues, host_features (VERSION_1, INDIRECT_DESC and EVENT_IDX are added)
 * and cfg_size bytes of device configuration; then pci_register_device()
 * it.  0 or -errno.
 */
int virtio_dev_init(struct virtio_dev *vd, struct vm *vm, const char *name,
    unsigned type, uint32_t class_code, unsigned nqueues,
    uint64_t host_features, uint32_t cfg_size,
    const struct virtio_dev_ops *ops, void *opaque);
/* Take vd off the bus and free what init allocated. */
void virtio_dev_fini(struct virtio_dev *vd);
/*
 * Serve kicks of the queues in mask on the kicking thread (ops->notify
 * from the vCPU's exit, as without ioeventfd) if the accelerator leaves
 * guest code for every MMIO write anyway (accel_ops.kicks_on_vcpu):
 * there an eventfd only adds a wake of the event thread.  For work that
 * is short and never blocks.  True if the kicks will come inline.
 */
bool virtio_kick_inline(struct virtio_dev *vd, uint32_t mask);
/* Device reset (the driver's status write of 0, or a VM reset). */
void virtio_dev_reset(struct virtio_dev *vd);
/* Is feature bit f negotiated? */
bool virtio_has_feature(const struct virtio_dev *vd, unsigned f);
/* Is the device running (DRIVER_OK, not NEEDS_RESET)? */
bool virtio_running(const struct virtio_dev *vd);

/*
 * Take the next available chain of queue q into c (with EVENT_IDX, an
 * empty ring asks the driver to kick for the next one: pop until 0 to
 * be sure of seeing every kick).  Returns 1 with c
 * filled, 0 if the ring is empty, or -EINVAL when the driver broke the
 * rules (the device is then in NEEDS_RESET and the driver told).
 */
int virtq_pop(struct virtio_dev *vd, unsigned q, struct virtio_chain *c);
/* Put chain head on queue q's used ring with len bytes written. */
void virtq_push(struct virtio_dev *vd, unsigned q, uint16_t head,
    uint32_t len);
/* The same in two steps, for buffers the driver must see together (a
 * mergeable receive frame's, virtio 1.1 5.1.6.4): virtq_fill writes the
 * entry ahead slots past the used index without publishing it;
 * virtq_flush publishes n filled entries at once. */
void virtq_fill(struct virtio_dev *vd, unsigned q, uint16_t head,
    uint32_t len, uint16_t ahead);
void virtq_flush(struct virtio_dev *vd, unsigned q, uint16_t n);
/* Interrupt the driver for queue q, unless it asked not to be (call once
 * after pushing a batch). */
void virtq_notify(struct virtio_dev *vd, unsigned q);
/* Signal a configuration change (or NEEDS_RESET). */
void virtio_config_notify(struct virtio_dev *vd);
/* Enter DEVICE_NEEDS_RESET after a driver mistake (why for the log). */
void virtio_needs_reset(struct virtio_dev *vd, const char *why);

/*
 * Gather: copy len bytes at byte offset off of the chain's readable
 * (write = false) or writable buffers into/out of buf.  Returns the
 * bytes copied.
 */
uint32_t virtio_chain_copy(struct virtio_chain *c, bool write, uint32_t off,
    void *buf, uint32_t len);

/* Save or load the transport and queue state (PCI part included). */
int virtio_dev_snapshot(struct virtio_dev *vd, struct snap *s);

#endif
