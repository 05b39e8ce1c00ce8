/*
 * Virtio 1.x PCI transport (modern interface) and split virtqueues.
 * See virtio.h for the register layout and what is checked.
 */
#include "devices/virtio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/evloop.h"
#include "util/log.h"

/* Split ring layout (virtio 1.1, 2.6). */
#define VIRTQ_DESC_SIZE		16
#define VIRTQ_AVAIL_RING	4	/* flags, idx, then ring[] */
#define VIRTQ_USED_RING		4	/* flags, idx, then {id, len}[] */
#define VIRTQ_USED_ELEM		8

/* The vendor capability (struct virtio_pci_cap), notify adds 4 bytes. */
#define VIRTIO_CAP_LEN		16
#define VIRTIO_NOTIFY_CAP_LEN	20
#define VIRTIO_PCICFG_CAP_LEN	20	/* the cap, then pci_cfg_data[4] */

/* --- guest memory shared with the driver ---
 *
 * The rings live in guest RAM that vCPUs touch concurrently (on KVM for
 * real): index loads acquire, the used index store releases, and a full
 * fence orders our used index against reading the driver's flags.
 */

static inline uint16_t
virtio_ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static inline uint16_t
virtio_ld16_acq(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)(const void *)p,
	    __ATOMIC_ACQUIRE);
}

static inline void
virtio_st16_rel(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, v, __ATOMIC_RELEASE);
}

static void virtio_ioev_sync(struct virtio_dev *vd);

/* --- interrupts --- */

static void
virtio_signal(struct virtio_dev *vd, uint16_t vector, uint8_t isr_bit)
{
	if (pci_msix_enabled(&vd->pci)) {
		if (vector != VIRTIO_NO_VECTOR)
			pci_msix_notify(&vd->pci, vector);
		return;
	}
	vd->isr |= isr_bit;
	pci_irq_set(&vd->pci, 1);
}

/* The index of used_event (after avail's ring) and avail_event (after
 * used's ring), VIRTIO_F_RING_EVENT_IDX's two fields (2.7.10). */
static inline uint8_t *
virtq_used_event(struct virtq *vq)
{
	return vq->avail_p + VIRTQ_AVAIL_RING + 2 * (size_t)vq->size;
}

static inline uint64_t
virtq_avail_event_off(const struct virtq *vq)
{
	return VIRTQ_USED_RING + VIRTQ_USED_ELEM * (uint64_t)vq->size;
}

void
virtq_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtq *vq = &vd->vq[q];
	uint16_t old, event;

	if (q >= vd->nqueues || !vq->enabled)
		return;
	/* Our used index must be visible before we read the driver's
	 * flags or used_event. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!virtio_has_feature(vd, VIRTIO_F_RING_EVENT_IDX)) {
		if (virtio_ld16_acq(vq->avail_p) & VIRTQ_AVAIL_F_NO_INTERRUPT)
			return;
	} else {
		/* Interrupt only if used_event lies in what we added since
		 * the last check (vring_need_event). */
		old = vq->signalled_used;
		vq->signalled_used = vq->used_idx;
		event = virtio_ld16_acq(virtq_used_event(vq));
		if ((uint16_t)(vq->used_idx - event - 1) >=
		    (uint16_t)(vq->used_idx - old))
			return;
	}
	virtio_signal(vd, vq->vector, 1);
}

void
virtio_config_notify(struct virtio_dev *vd)
{
	vd->cfg_generation++;
	if (vd->status & VIRTIO_S_DRIVER_OK ||
	    vd->status & VIRTIO_S_NEEDS_RESET)
		virtio_signal(vd, vd->config_vector, 2);
}

void
virtio_needs_reset(struct virtio_dev *vd, const char *why)
{
	log_guest_once("virtio %s: %s: device needs reset", vd->pci.name, why);
	if (vd->status & VIRTIO_S_NEEDS_RESET)
		return;
	vd->status |= VIRTIO_S_NEEDS_RESET;
	virtio_config_notify(vd);
}

bool
virtio_has_feature(const struct virtio_dev *vd, unsigned f)
{
	return f < 64 && (vd->guest_features >> f & 1);
}

bool
virtio_running(const struct virtio_dev *vd)
{
	return (vd->status & (VIRTIO_S_DRIVER_OK | VIRTIO_S_NEEDS_RESET |
	    VIRTIO_S_FAILED)) == VIRTIO_S_DRIVER_OK;
}

/* --- descriptor chains --- */

struct virtio_walk {
	const uint8_t *table;	/* descriptor table being walked */
	unsigned tsize;		/* its entries */
	unsigned seen;		/* descriptors taken, all tables */
	uint64_t total;		/* bytes, for the overflow check */
};

static int
virtio_take_buffer(struct virtio_dev *vd, struct virtio_chain *c,
    struct virtio_walk *w, uint64_t addr, uint32_t len, bool write)
{
	struct virtio_iov *iov;
	uint8_t *p;

	if (len == 0)
		return 0;
	if (c->niov >= VIRTIO_QUEUE_MAX)
		return -EINVAL;
	if ((p = vm_gpa_to_hva(vd->vm, addr, len)) == NULL)
		return -EFAULT;
	w->total += len;
	if (w->total > UINT32_MAX)
		return -EOVERFLOW;
	iov = &c->iov[c->niov++];
	iov->base = p;
	iov->gpa = addr;
	iov->len = len;
	iov->write = write;
	if (write)
		c->in_len += len;
	else
		c->out_len += len;
	return 0;
}

/* Walk the chain starting at idx of w->table (direct or indirect). */
static int
virtio_walk_table(struct virtio_dev *vd, struct virtq *vq,
    struct virtio_chain *c, struct virtio_walk *w, unsigned idx,
    bool indirect)
{
	for (;;) {
		const uint8_t *d;
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
		int err;

		if (idx >= w->tsize)
			return -ERANGE;
		/* A chain longer than the queue is a loop (2.6.5). */
		if (++w->seen > vq->size)
			return -ELOOP;
		d = w->table + (size_t)idx * VIRTQ_DESC_SIZE;
		memcpy(&addr, d, 8);
		memcpy(&len, d + 8, 4);
		flags = virtio_ld16(d + 12);
		next = virtio_ld16(d + 14);
		if (flags & VIRTQ_DESC_F_INDIRECT) {
			struct virtio_walk iw = *w;

			if (indirect || (flags & VIRTQ_DESC_F_NEXT) ||
			    !virtio_has_feature(vd,
			    VIRTIO_F_RING_INDIRECT_DESC) ||
			    len == 0 || len % VIRTQ_DESC_SIZE != 0 ||
			    len / VIRTQ_DESC_SIZE > vq->size)
				return -EINVAL;
			if ((iw.table = vm_gpa_to_hva(vd->vm, addr, len)) ==
			    NULL)
				return -EFAULT;
			iw.tsize = len / VIRTQ_DESC_SIZE;
			w->seen--;	/* the table itself is no buffer */
			iw.seen = w->seen;
			return virtio_walk_table(vd, vq, c, &iw, 0, true);
		}
		err = virtio_take_buffer(vd, c, w, addr, len,
		    flags & VIRTQ_DESC_F_WRITE);
		if (err < 0)
			return err;
		if (!(flags & VIRTQ_DESC_F_NEXT))
			return 0;
		idx = next;
	}
}

int
virtq_pop(struct virtio_dev *vd, unsigned q, struct virtio_chain *c)
{
	struct virtq *vq = &vd->vq[q];
	struct virtio_walk w = { 0 };
	uint16_t avail_idx, head;
	int err;

	if (q >= vd->nqueues || !vq->enabled || !virtio_running(vd))
		return 0;
	avail_idx = virtio_ld16_acq(vq->avail_p + 2);
	if (avail_idx == vq->last_avail && virtio_has_feature(vd,
	    VIRTIO_F_RING_EVENT_IDX)) {
		/* Empty: ask for a kick at the next entry, then look again,
		 * or an entry added before the driver saw avail_event would
		 * wait for ever. */
		virtio_st16_rel(vq->used_p + virtq_avail_event_off(vq),
		    vq->last_avail);
		vm_dma_written(vd->vm, vq->used + virtq_avail_event_off(vq),
		    2);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = virtio_ld16_acq(vq->avail_p + 2);
	}
	if (avail_idx == vq->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
		virtio_needs_reset(vd, "avail index ran ahead of the ring");
		return -EINVAL;
	}
	head = virtio_ld16(vq->avail_p + VIRTQ_AVAIL_RING +
	    2 * (vq->last_avail % vq->size));
	vq->last_avail++;
	c->head = head;
	c->niov = 0;
	c->in_len = c->out_len = 0;
	w.table = vq->desc_p;
	w.tsize = vq->size;
	if ((err = virtio_walk_table(vd, vq, c, &w, head, false)) < 0) {
		char why[80];

		snprintf(why, sizeof(why), "bad descriptor chain at head %u "
		    "(%s)", head, strerror(-err));
		virtio_needs_reset(vd, why);
		return -EINVAL;
	}
	return 1;
}

void
virtq_fill(struct virtio_dev *vd, unsigned q, uint16_t head, uint32_t len,
    uint16_t ahead)
{
	struct virtq *vq = &vd->vq[q];
	uint8_t *e;
	uint64_t off;

	if (q >= vd->nqueues || !vq->enabled)
		return;
	off = VIRTQ_USED_RING + VIRTQ_USED_ELEM *
	    (uint64_t)((uint16_t)(vq->used_idx + ahead) % vq->size);
	e = vq->used_p + off;
	memcpy(e, &(uint32_t){ head }, 4);
	memcpy(e + 4, &len, 4);
	/* The software CPU may have translated code in what we wrote. */
	vm_dma_written(vd->vm, vq->used + off, VIRTQ_USED_ELEM);
}

void
virtq_flush(struct virtio_dev *vd, unsigned q, uint16_t n)
{
	struct virtq *vq = &vd->vq[q];

	if (q >= vd->nqueues || !vq->enabled)
		return;
	vq->used_idx = (uint16_t)(vq->used_idx + n);
	virtio_st16_rel(vq->used_p + 2, vq->used_idx);
	vm_dma_written(vd->vm, vq->used + 2, 2);
}

void
virtq_push(struct virtio_dev *vd, unsigned q, uint16_t head, uint32_t len)
{
	virtq_fill(vd, q, head, len, 0);
	virtq_flush(vd, q, 1);
}

uint32_t
virtio_chain_copy(struct virtio_chain *c, bool write, uint32_t off,
    void *buf, uint32_t len)
{
	uint8_t *b = buf;
	uint32_t done = 0;

	for (unsigned i = 0; i < c->niov && done < len; i++) {
		struct virtio_iov *v = &c->iov[i];
		uint32_t n;

		if (v->write != write)
			continue;
		if (off >= v->len) {
			off -= v->len;
			continue;
		}
		n = v->len - off;
		if (n > len - done)
			n = len - done;
		if (write)
			memcpy(v->base + off, b + done, n);
		else
			memcpy(b + done, v->base + off, n);
		off = 0;
		done += n;
	}
	return done;
}

/* --- queues and status --- */

static void
virtq_reset(struct virtq *vq)
{
	uint16_t max = vq->max_size;

	memset(vq, 0, sizeof(*vq));
	vq->max_size = max;
	vq->size = max;
	vq->vector = VIRTIO_NO_VECTOR;
}

/* Check and map the rings of a queue the driver enables. */
static int
virtq_map(struct virtio_dev *vd, struct virtq *vq)
{
	uint64_t n = vq->size;

	if ((vq->desc & 15) || (vq->avail & 1) || (vq->used & 3))
		return -EINVAL;
	vq->desc_p = vm_gpa_to_hva(vd->vm, vq->desc, n * VIRTQ_DESC_SIZE);
	vq->avail_p = vm_gpa_to_hva(vd->vm, vq->avail,
	    VIRTQ_AVAIL_RING + 2 * n + 2);
	vq->used_p = vm_gpa_to_hva(vd->vm, vq->used,
	    VIRTQ_USED_RING + VIRTQ_USED_ELEM * n + 2);
	if (vq->desc_p == NULL || vq->avail_p == NULL || vq->used_p == NULL)
		return -EFAULT;
	return 0;
}

void
virtio_dev_reset(struct virtio_dev *vd)
{
	if (vd->ops->reset != NULL)
		vd->ops->reset(vd);
	vd->guest_features = 0;
	vd->dfselect = vd->gfselect = 0;
	vd->status = 0;
	vd->isr = 0;
	vd->config_vector = VIRTIO_NO_VECTOR;
	vd->queue_sel = 0;
	for (unsigned q = 0; q < vd->nqueues; q++)
		virtq_reset(&vd->vq[q]);
	virtio_ioev_sync(vd);
	pci_irq_set(&vd->pci, 0);
}

static void
virtio_set_status(struct virtio_dev *vd, uint8_t v)
{
	if (v == 0) {
		virtio_dev_reset(vd);
		return;
	}
	/* FEATURES_OK sticks only for a subset with VERSION_1 (3.1.1). */
	if ((v & VIRTIO_S_FEATURES_OK) &&
	    !(vd->status & VIRTIO_S_FEATURES_OK) &&
	    ((vd->guest_features & ~vd->host_features) ||
	    !virtio_has_feature(vd, VIRTIO_F_VERSION_1))) {
		log_guest_once("virtio %s: driver features %#llx refused",
		    vd->pci.name, (unsigned long long)vd->guest_features);
		v &= ~VIRTIO_S_FEATURES_OK;
	}
	if ((v & VIRTIO_S_DRIVER_OK) && !(v & VIRTIO_S_FEATURES_OK))
		log_guest_once("virtio %s: DRIVER_OK without FEATURES_OK",
		    vd->pci.name);
	vd->status = (uint8_t)(v | (vd->status & VIRTIO_S_NEEDS_RESET));
}

static uint16_t
virtio_check_vector(struct virtio_dev *vd, uint16_t v)
{
	/* A vector the device cannot use reads back as NO_VECTOR, which
	 * is how the driver learns (4.1.5.1.2). */
	return v < vd->pci.msix.nvec ? v : VIRTIO_NO_VECTOR;
}

/* --- common configuration --- */

static void
virtio_common_image(struct virtio_dev *vd, uint8_t *img)
{
	struct virtq *vq = vd->queue_sel < vd->nqueues ?
	    &vd->vq[vd->queue_sel] : NULL;
	uint32_t df = vd->dfselect < 2 ?
	    (uint32_t)(vd->host_features >> (32 * vd->dfselect)) : 0;
	uint32_t gf = vd->gfselect < 2 ?
	    (uint32_t)(vd->guest_features >> (32 * vd->gfselect)) : 0;

	memset(img, 0, VIRTIO_COMMON_LEN);
	bus_put(img + VIRTIO_COMMON_DFSELECT, 4, vd->dfselect);
	bus_put(img + VIRTIO_COMMON_DF, 4, df);
	bus_put(img + VIRTIO_COMMON_GFSELECT, 4, vd->gfselect);
	bus_put(img + VIRTIO_COMMON_GF, 4, gf);
	bus_put(img + VIRTIO_COMMON_MSIX, 2, vd->config_vector);
	bus_put(img + VIRTIO_COMMON_NUMQ, 2, vd->nqueues);
	img[VIRTIO_COMMON_STATUS] = vd->status;
	img[VIRTIO_COMMON_CFGGEN] = vd->cfg_generation;
	bus_put(img + VIRTIO_COMMON_Q_SELECT, 2, vd->queue_sel);
	if (vq == NULL)
		return;		/* an absent queue reads as size 0 */
	bus_put(img + VIRTIO_COMMON_Q_SIZE, 2, vq->size);
	bus_put(img + VIRTIO_COMMON_Q_MSIX, 2, vq->vector);
	bus_put(img + VIRTIO_COMMON_Q_ENABLE, 2, vq->enabled);
	bus_put(img + VIRTIO_COMMON_Q_NOFF, 2, vd->queue_sel);
	bus_put(img + VIRTIO_COMMON_Q_DESC, 8, vq->desc);
	bus_put(img + VIRTIO_COMMON_Q_AVAIL, 8, vq->avail);
	bus_put(img + VIRTIO_COMMON_Q_USED, 8, vq->used);
}

static void
virtio_queue_enable(struct virtio_dev *vd, struct virtq *vq, uint16_t v)
{
	if (v != 1 || vq->enabled)
		return;		/* 0 is not how a queue is disabled */
	if (virtq_map(vd, vq) < 0) {
		virtio_needs_reset(vd, "queue rings outside guest RAM or "
		    "misaligned");
		return;
	}
	vq->enabled = true;
	virtio_ioev_sync(vd);
}

static void
virtio_queue_size(struct virtio_dev *vd, struct virtq *vq, uint16_t v)
{
	if (v == 0 || v > vq->max_size || (v & (v - 1))) {
		log_guest_once("virtio %s: queue size %u refused",
		    vd->pci.name, v);
		return;
	}
	vq->size = v;
}

/* Apply the field at reg (of width len) the driver just wrote. */
static void
virtio_common_field(struct virtio_dev *vd, unsigned reg, const uint8_t *img)
{
	struct virtq *vq = vd->queue_sel < vd->nqueues ?
	    &vd->vq[vd->queue_sel] : NULL;
	bool qlive = vq != NULL && !vq->enabled;

	switch (reg) {
	case VIRTIO_COMMON_DFSELECT:
		vd->dfselect = (uint32_t)bus_get(img + reg, 4);
		break;
	case VIRTIO_COMMON_GFSELECT:
		vd->gfselect = (uint32_t)bus_get(img + reg, 4);
		break;
	case VIRTIO_COMMON_GF:
		if (vd->gfselect >= 2 || (vd->status & VIRTIO_S_FEATURES_OK))
			break;
		vd->guest_features &= ~(0xffffffffull << (32 * vd->gfselect));
		vd->guest_features |= bus_get(img + reg, 4) <<
		    (32 * vd->gfselect);
		break;
	case VIRTIO_COMMON_MSIX:
		vd->config_vector = virtio_check_vector(vd,
		    (uint16_t)bus_get(img + reg, 2));
		break;
	case VIRTIO_COMMON_STATUS:
		virtio_set_status(vd, img[reg]);
		break;
	case VIRTIO_COMMON_Q_SELECT:
		vd->queue_sel = (uint16_t)bus_get(img + reg, 2);
		break;
	case VIRTIO_COMMON_Q_SIZE:
		if (qlive)
			virtio_queue_size(vd, vq, (uint16_t)bus_get(img + reg,
			    2));
		break;
	case VIRTIO_COMMON_Q_MSIX:
		if (vq != NULL)
			vq->vector = virtio_check_vector(vd,
			    (uint16_t)bus_get(img + reg, 2));
		break;
	case VIRTIO_COMMON_Q_ENABLE:
		if (vq != NULL)
			virtio_queue_enable(vd, vq,
			    (uint16_t)bus_get(img + reg, 2));
		break;
	case VIRTIO_COMMON_Q_DESC:
		if (qlive)
			vq->desc = bus_get(img + reg, 8);
		break;
	case VIRTIO_COMMON_Q_AVAIL:
		if (qlive)
			vq->avail = bus_get(img + reg, 8);
		break;
	case VIRTIO_COMMON_Q_USED:
		if (qlive)
			vq->used = bus_get(img + reg, 8);
		break;
	default:
		break;		/* read-only */
	}
}

/* Register starts and widths, to find the fields a write touched. */
static const struct { uint8_t off, len; } virtio_common_regs[] = {
	{ VIRTIO_COMMON_DFSELECT, 4 }, { VIRTIO_COMMON_DF, 4 },
	{ VIRTIO_COMMON_GFSELECT, 4 }, { VIRTIO_COMMON_GF, 4 },
	{ VIRTIO_COMMON_MSIX, 2 }, { VIRTIO_COMMON_NUMQ, 2 },
	{ VIRTIO_COMMON_STATUS, 1 }, { VIRTIO_COMMON_CFGGEN, 1 },
	{ VIRTIO_COMMON_Q_SELECT, 2 }, { VIRTIO_COMMON_Q_SIZE, 2 },
	{ VIRTIO_COMMON_Q_MSIX, 2 }, { VIRTIO_COMMON_Q_ENABLE, 2 },
	{ VIRTIO_COMMON_Q_NOFF, 2 }, { VIRTIO_COMMON_Q_DESC, 8 },
	{ VIRTIO_COMMON_Q_AVAIL, 8 }, { VIRTIO_COMMON_Q_USED, 8 },
};

/*
 * Any width at any offset works the same way: read the registers as
 * bytes, patch the bytes written, then apply each register touched.
 * Drivers write 64-bit addresses as two 32-bit halves.
 */
static void
virtio_common_io(struct virtio_dev *vd, uint64_t off, uint8_t *data,
    unsigned len, bool is_write)
{
	uint8_t img[VIRTIO_COMMON_LEN];

	virtio_common_image(vd, img);
	if (!is_write) {
		memcpy(data, img + off, len);
		return;
	}
	memcpy(img + off, data, len);
	for (size_t i = 0; i < sizeof(virtio_common_regs) /
	    sizeof(virtio_common_regs[0]); i++) {
		unsigned r = virtio_common_regs[i].off;

		if (off < r + virtio_common_regs[i].len && r < off + len)
			virtio_common_field(vd, r, img);
	}
}

/* --- BAR4 --- */

static void
virtio_notify_io(struct virtio_dev *vd, uint64_t off)
{
	unsigned q = (unsigned)(off / VIRTIO_NOTIFY_MULT);

	if (q >= vd->nqueues || !vd->vq[q].enabled) {
		log_guest_once("virtio %s: notify of queue %u not enabled",
		    vd->pci.name, q);
		return;
	}
	if (virtio_running(vd) && vd->ops->notify != NULL)
		vd->ops->notify(vd, q);
}

static void
virtio_bar_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct virtio_dev *vd = opaque;

	if (!is_write)
		memset(data, 0, len);
	if (off + len <= VIRTIO_COMMON_OFF + VIRTIO_COMMON_LEN) {
		virtio_common_io(vd, off - VIRTIO_COMMON_OFF, data, len,
		    is_write);
	} else if (off == VIRTIO_ISR_OFF && !is_write) {
		/* Reading ISR acknowledges the interrupt (4.1.4.5). */
		data[0] = vd->isr;
		vd->isr = 0;
		pci_irq_set(&vd->pci, 0);
	} else if (off >= VIRTIO_DEVCFG_OFF &&
	    off + len <= VIRTIO_DEVCFG_OFF + vd->cfg_size) {
		if (is_write && vd->ops->cfg_write != NULL)
			vd->ops->cfg_write(vd, off - VIRTIO_DEVCFG_OFF, data,
			    len);
		else if (!is_write && vd->ops->cfg_read != NULL)
			vd->ops->cfg_read(vd, off - VIRTIO_DEVCFG_OFF, data,
			    len);
	} else if (off >= VIRTIO_NOTIFY_OFF && is_write &&
	    off < VIRTIO_NOTIFY_OFF + VIRTIO_NOTIFY_MULT * vd->nqueues) {
		virtio_notify_io(vd, off - VIRTIO_NOTIFY_OFF);
	} else {
		log_guest_once("virtio %s: %s of %u bytes at BAR offset %#llx",
		    vd->pci.name, is_write ? "write" : "read", len,
		    (unsigned long long)off);
	}
}

/* --- ioeventfd ---
 *
 * Each queue's eventfd is registered at its notify address while the
 * queue is enabled and BAR4 decodes; virtio_ioev_sync() makes the
 * registrations match that after anything that changes it (BAR moves,
 * queue enables, resets, state loads, teardown).
 */

static void
virtio_ioev_ready(void *opaque, int fd)
{
	struct virtio_dev *vd = opaque;
	uint64_t n;

	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	/* Paused (snapshot, migration): the device must not move; the
	 * kick is not lost, vm_resume() kicks every queue again. */
	if (vd->vm->pause_depth > 0)
		return;
	for (unsigned q = 0; q < vd->nqueues; q++)
		if (vd->ioev_fd[q] == fd && vd->ioev_at[q] != 0) {
			virtio_notify_io(vd, VIRTIO_NOTIFY_MULT * q);
			return;
		}
}

/* Where queue q's eventfd belongs now, or 0 for nowhere. */
static uint64_t
virtio_ioev_where(const struct virtio_dev *vd, unsigned q)
{
	const struct pci_bar *b = &vd->pci.bar[VIRTIO_BAR];

	if (vd->ioev_fd[q] < 0 || !b->is_mapped || !vd->vq[q].enabled ||
	    (vd->kick_inline & 1u << q))
		return 0;
	return b->mapped + VIRTIO_NOTIFY_OFF + VIRTIO_NOTIFY_MULT * q;
}

static void
virtio_ioev_unregister(struct virtio_dev *vd, unsigned q)
{
	if (vd->ioev_at[q] == 0)
		return;
	vm_ioeventfd_del(vd->vm, vd->ioev_at[q], 0, vd->ioev_fd[q]);
	evloop_del_fd(vd->vm->loop, vd->ioev_fd[q]);
	vd->ioev_at[q] = 0;
}

/* Any width: a driver's 2-byte write (Linux's iowrite16) or another
 * one kicks the queue, as through the bus.  On failure the bus path
 * stays. */
static void
virtio_ioev_register(struct virtio_dev *vd, unsigned q, uint64_t gpa)
{
	int err;

	if ((err = evloop_add_fd(vd->vm->loop, vd->ioev_fd[q],
	    virtio_ioev_ready, vd)) < 0)
		goto fail;
	if ((err = vm_ioeventfd_add(vd->vm, gpa, 0, vd->ioev_fd[q])) < 0) {
		evloop_del_fd(vd->vm->loop, vd->ioev_fd[q]);
		goto fail;
	}
	vd->ioev_at[q] = gpa;
	return;
fail:
	log_debug("virtio %s: queue %u kicks through the bus: %s",
	    vd->pci.name, q, strerror(-err));
}

static void
virtio_ioev_sync(struct virtio_dev *vd)
{
	for (unsigned q = 0; q < vd->nqueues; q++) {
		uint64_t where = virtio_ioev_where(vd, q);

		if (vd->ioev_at[q] == where)
			continue;
		virtio_ioev_unregister(vd, q);
		if (where != 0)
			virtio_ioev_register(vd, q, where);
	}
}

static void
virtio_bar_change(struct pci_dev *d, int bar)
{
	if (bar == VIRTIO_BAR)
		virtio_ioev_sync(d->opaque);
}

bool
virtio_kick_inline(struct virtio_dev *vd, uint32_t mask)
{
	if (vd->vm->accel == NULL || !vd->vm->accel->kicks_on_vcpu)
		return false;
	vd->kick_inline = mask;
	virtio_ioev_sync(vd);
	return true;
}

/* One eventfd per queue, unless turned off or there is no event loop. */
static int
virtio_ioev_open(struct virtio_dev *vd)
{
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vd->ioev_fd[q] = -1;
	if (!vm_ioeventfd_enabled() || vd->vm->loop == NULL)
		return 0;
	for (unsigned q = 0; q < vd->nqueues; q++)
		if ((vd->ioev_fd[q] = eventfd(0, EFD_NONBLOCK |
		    EFD_CLOEXEC)) < 0)
			return -errno;
	vd->pci.bar_change = virtio_bar_change;
	return 0;
}

/* After the BAR is off the bus: no vCPU can reach the eventfds. */
static void
virtio_ioev_close(struct virtio_dev *vd)
{
	for (unsigned q = 0; q < vd->nqueues; q++) {
		virtio_ioev_unregister(vd, q);
		if (vd->ioev_fd[q] >= 0)
			close(vd->ioev_fd[q]);
		vd->ioev_fd[q] = -1;
	}
}

/* --- setup --- */

static int
virtio_add_cap(struct virtio_dev *vd, uint8_t type, uint32_t off,
    uint32_t len, unsigned caplen)
{
	int at = pci_cap_add(&vd->pci, PCI_CAP_ID_VENDOR, caplen);
	uint8_t *c;

	if (at < 0)
		return at;
	c = vd->pci.cfg + at;
	c[2] = (uint8_t)caplen;
	c[3] = type;
	c[4] = VIRTIO_BAR;
	bus_put(c + 8, 4, off);
	bus_put(c + 12, 4, len);
	if (type == VIRTIO_PCI_CAP_NOTIFY_CFG)
		bus_put(c + 16, 4, VIRTIO_NOTIFY_MULT);
	return 0;
}

/*
 * VIRTIO_PCI_CAP_PCI_CFG (4.1.4.8): a window onto the BARs through
 * configuration space, for firmware that cannot map them.  The driver
 * writes bar, offset and length into the capability, then reads or
 * writes pci_cfg_data.
 */
static void
virtio_pcicfg_access(struct virtio_dev *vd, bool is_write)
{
	uint8_t *c = vd->pci.cfg + vd->pcicfg;
	uint32_t off = (uint32_t)bus_get(c + 8, 4);
	uint32_t len = (uint32_t)bus_get(c + 12, 4);

	if ((len != 1 && len != 2 && len != 4) || off % len != 0) {
		log_guest_once("virtio %s: PCI_CFG window of %u bytes at %#x",
		    vd->pci.name, len, off);
		return;
	}
	if (c[4] == VIRTIO_BAR && off + len <= VIRTIO_BAR_SIZE)
		virtio_bar_io(NULL, off, c + VIRTIO_CAP_LEN, len, is_write,
		    vd);
	else if (!pci_msix_access(&vd->pci, c[4], off, c + VIRTIO_CAP_LEN,
	    len, is_write) && !is_write)
		memset(c + VIRTIO_CAP_LEN, 0xff, len);
}

static void
virtio_pcicfg_read(struct pci_dev *d, unsigned off, unsigned len)
{
	struct virtio_dev *vd = d->opaque;
	unsigned data = vd->pcicfg + VIRTIO_CAP_LEN;

	if (off < data + 4 && data < off + len)
		virtio_pcicfg_access(vd, false);
}

static void
virtio_pcicfg_write(struct pci_dev *d, unsigned off, unsigned len)
{
	struct virtio_dev *vd = d->opaque;
	unsigned data = vd->pcicfg + VIRTIO_CAP_LEN;

	if (off < data + 4 && data < off + len)
		virtio_pcicfg_access(vd, true);
}

static int
virtio_add_pcicfg(struct virtio_dev *vd)
{
	int at = pci_cap_add(&vd->pci, PCI_CAP_ID_VENDOR, VIRTIO_PCICFG_CAP_LEN);

	if (at < 0)
		return at;
	vd->pcicfg = (uint8_t)at;
	vd->pci.cfg[at + 2] = VIRTIO_PCICFG_CAP_LEN;
	vd->pci.cfg[at + 3] = VIRTIO_PCI_CAP_PCI_CFG;
	pci_dev_set_wmask(&vd->pci, at + 4, 1, 0xff);		/* bar */
	pci_dev_set_wmask(&vd->pci, at + 8, 4, 0xffffffff);	/* offset */
	pci_dev_set_wmask(&vd->pci, at + 12, 4, 0xffffffff);	/* length */
	pci_dev_set_wmask(&vd->pci, at + 16, 4, 0xffffffff);	/* data */
	vd->pci.cfg_read = virtio_pcicfg_read;
	vd->pci.cfg_write = virtio_pcicfg_write;
	return 0;
}

static int
virtio_add_caps(struct virtio_dev *vd)
{
	int err;

	if ((err = virtio_add_cap(vd, VIRTIO_PCI_CAP_COMMON_CFG,
	    VIRTIO_COMMON_OFF, VIRTIO_COMMON_LEN, VIRTIO_CAP_LEN)) < 0 ||
	    (err = virtio_add_cap(vd, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_ISR_OFF,
	    1, VIRTIO_CAP_LEN)) < 0 ||
	    (err = virtio_add_cap(vd, VIRTIO_PCI_CAP_NOTIFY_CFG,
	    VIRTIO_NOTIFY_OFF, VIRTIO_NOTIFY_MULT * vd->nqueues,
	    VIRTIO_NOTIFY_CAP_LEN)) < 0)
		return err;
	if (vd->cfg_size != 0 && (err = virtio_add_cap(vd,
	    VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_DEVCFG_OFF, vd->cfg_size,
	    VIRTIO_CAP_LEN)) < 0)
		return err;
	return virtio_add_pcicfg(vd);
}

int
virtio_dev_init(struct virtio_dev *vd, struct vm *vm, const char *name,
    unsigned type, uint32_t class_code, unsigned nqueues,
    uint64_t host_features, uint32_t cfg_size,
    const struct virtio_dev_ops *ops, void *opaque)
{
	int err;

	if (nqueues == 0 || nqueues > VIRTIO_MAX_QUEUES ||
	    cfg_size > VIRTIO_DEVCFG_MAX)
		return -EINVAL;
	memset(vd, 0, sizeof(*vd));
	vd->vm = vm;
	vd->ops = ops;
	vd->opaque = opaque;
	vd->type = type;
	vd->cfg_size = cfg_size;
	vd->nqueues = nqueues;
	vd->host_features = host_features | 1ull << VIRTIO_F_VERSION_1 |
	    1ull << VIRTIO_F_RING_INDIRECT_DESC |
	    1ull << VIRTIO_F_RING_EVENT_IDX;
	for (unsigned q = 0; q < nqueues; q++) {
		vd->vq[q].max_size = VIRTIO_QUEUE_MAX;
		virtq_reset(&vd->vq[q]);
	}
	vd->config_vector = VIRTIO_NO_VECTOR;
	/* Revision 1: a modern-only device (4.1.2.1). */
	pci_dev_init(&vd->pci, name, VIRTIO_PCI_VENDOR,
	    (uint16_t)(VIRTIO_PCI_DEVICE_BASE + type), class_code, 1);
	pci_dev_set_subsystem(&vd->pci, VIRTIO_PCI_VENDOR, 0x1100);
	vd->pci.opaque = vd;
	if ((err = pci_dev_set_bar(&vd->pci, VIRTIO_BAR, VIRTIO_BAR_SIZE,
	    PCI_BAR_MEM64 | PCI_BAR_PREFETCH, virtio_bar_io, vd)) < 0 ||
	    (err = virtio_add_caps(vd)) < 0 ||
	    (err = pci_msix_init(&vd->pci, nqueues + 1, VIRTIO_MSIX_BAR,
	    0, 0x800)) < 0)
		return err;
	if ((err = virtio_ioev_open(vd)) < 0 ||
	    (err = pci_register_device(vm, &vd->pci, -1)) < 0)
		goto fail;
	return 0;
fail:
	virtio_ioev_close(vd);
	free(vd->pci.msix.table);
	free(vd->pci.msix.pba);
	vd->pci.msix.table = vd->pci.msix.pba = NULL;
	return err;
}

void
virtio_dev_fini(struct virtio_dev *vd)
{
	pci_unregister_device(&vd->pci);
	virtio_ioev_close(vd);
}

/* --- state --- */

/*
 * After a load: register what the loaded state enables, and kick each
 * registered queue once, since a kick the source's eventfd held when
 * its VM paused is not in the stream (a spurious kick is harmless).
 */
static void
virtio_ioev_loaded(struct virtio_dev *vd)
{
	virtio_ioev_sync(vd);
	for (unsigned q = 0; q < vd->nqueues; q++)
		if (vd->ioev_at[q] != 0 &&
		    write(vd->ioev_fd[q], &(uint64_t){ 1 }, 8) < 0 &&
		    errno != EAGAIN)
			log_debug("virtio %s: queue %u eventfd: %s",
			    vd->pci.name, q, strerror(errno));
}

/* Field names carry the queue number: "q0.size". */
static const char *
virtq_field(char *buf, size_t len, unsigned q, const char *f)
{
	snprintf(buf, len, "q%u.%s", q, f);
	return buf;
}

static void
virtq_snapshot(struct virtio_dev *vd, unsigned q, struct snap *s)
{
	struct virtq *vq = &vd->vq[q];
	char n[32];

	snap_u16(s, virtq_field(n, sizeof(n), q, "size"), &vq->size);
	snap_u16(s, virtq_field(n, sizeof(n), q, "vector"), &vq->vector);
	snap_bool(s, virtq_field(n, sizeof(n), q, "enabled"), &vq->enabled);
	snap_u64(s, virtq_field(n, sizeof(n), q, "desc"), &vq->desc);
	snap_u64(s, virtq_field(n, sizeof(n), q, "avail"), &vq->avail);
	snap_u64(s, virtq_field(n, sizeof(n), q, "used"), &vq->used);
	snap_u16(s, virtq_field(n, sizeof(n), q, "last_avail"),
	    &vq->last_avail);
	snap_u16(s, virtq_field(n, sizeof(n), q, "used_idx"), &vq->used_idx);
	snap_u16(s, virtq_field(n, sizeof(n), q, "signalled_used"),
	    &vq->signalled_used);
	if (snap_saving(s) || snap_error(s))
		return;
	/* A stream is outside input: check it as a driver's writes, and
	 * leave no half-mapped queue behind a refusal. */
	if (vq->size == 0 || vq->size > vq->max_size ||
	    (vq->size & (vq->size - 1))) {
		snap_fail(s, -EINVAL, "virtio %s: queue %u size %u",
		    vd->pci.name, q, vq->size);
		virtq_reset(vq);
	} else if (vq->enabled && virtq_map(vd, vq) < 0) {
		snap_fail(s, -EINVAL, "virtio %s: queue %u rings outside RAM",
		    vd->pci.name, q);
		virtq_reset(vq);
	}
}

int
virtio_dev_snapshot(struct virtio_dev *vd, struct snap *s)
{
	if (pci_dev_snapshot(&vd->pci, s) < 0)
		return snap_error(s);
	snap_u64(s, "guest_features", &vd->guest_features);
	snap_u32(s, "dfselect", &vd->dfselect);
	snap_u32(s, "gfselect", &vd->gfselect);
	snap_u8(s, "status", &vd->status);
	snap_u8(s, "isr", &vd->isr);
	snap_u8(s, "cfg_generation", &vd->cfg_generation);
	snap_u16(s, "config_vector", &vd->config_vector);
	snap_u16(s, "queue_sel", &vd->queue_sel);
	for (unsigned q = 0; q < vd->nqueues; q++)
		virtq_snapshot(vd, q, s);
	if (!snap_saving(s) && snap_error(s) == 0) {
		vd->config_vector = virtio_check_vector(vd,
		    vd->config_vector);
		for (unsigned q = 0; q < vd->nqueues; q++)
			vd->vq[q].vector = virtio_check_vector(vd,
			    vd->vq[q].vector);
	}
	if (!snap_saving(s))
		virtio_ioev_loaded(vd);
	return snap_error(s);
}
