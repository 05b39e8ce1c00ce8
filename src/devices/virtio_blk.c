/*
 * virtio-blk: the block device on top of the virtio transport (virtio.c)
 * and the block layer (vmfs/blkdev.h).  See virtio_blk.h.
 *
 * A kick pops every available chain on the vCPU thread (cheap: checks
 * and translation only), and hands each to the I/O threads.  A thread
 * runs the request against the image, writing guest buffers through the
 * host pointers the chain was checked into, then queues it as done and
 * pokes an eventfd.  The event thread, under the device lock, writes the
 * status bytes, fills the used ring and interrupts the driver.  A reset
 * (or snapshot, pause) first waits until no thread holds a request.
 */
#include "devices/virtio_blk.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/device.h"
#include "devices/virtio.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/snap.h"
#include "util/evloop.h"
#include "util/log.h"
#include "vmfs/blkdev.h"

#define VIRTIO_BLK_THREADS	4
#define VIRTIO_BLK_BATCH	8	/* completions per wake-up, at most */
#define VIRTIO_BLK_HDR		16	/* type, reserved, sector */
#define VIRTIO_BLK_SEG		16	/* discard/write-zeroes segment */
/* The ring holds the header and status descriptors besides data. */
#define VIRTIO_BLK_SEG_MAX	(VIRTIO_QUEUE_MAX - 2)
/* PCI class: mass storage, SCSI (as other hypervisors' virtio-blk). */
#define VIRTIO_BLK_CLASS	0x010000

struct virtio_blk_req {
	struct virtio_blk_req *next;
	unsigned q;
	uint8_t status;
	uint32_t used_len;	/* bytes written into the chain */
	struct virtio_chain chain;
};

struct virtio_blk {
	struct virtio_dev vd;
	struct vm *vm;
	struct blkdev *bd;
	uint64_t sectors;
	bool readonly;
	char serial[VIRTIO_BLK_ID_BYTES];
	char name[32];

	pthread_t threads[VIRTIO_BLK_THREADS];
	int nthreads;
	int efd;
	/* Guards the lists below; never held while doing I/O. */
	pthread_mutex_t lock;
	pthread_cond_t work;	/* todo got a request, or stop */
	pthread_cond_t idle;	/* a thread finished a request */
	struct virtio_blk_req *todo, **todo_tail;
	struct virtio_blk_req *done;
	unsigned pending;	/* submitted, not yet on done */
	unsigned unsignalled;	/* on done, event thread not woken yet */
	bool stop;
	/* Statistics, relaxed atomics: the I/O threads count, anyone
	 * reads (virtio_blk_stats). */
	uint64_t rd_bytes, wr_bytes, rd_ops, wr_ops, errors;
};

static void
virtio_blk_count(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* --- requests (I/O threads) --- */

/* Is [sector, sector + bytes / 512) on the disk? */
static bool
virtio_blk_in_range(const struct virtio_blk *vb, uint64_t sector,
    uint64_t bytes)
{
	return sector <= vb->sectors &&
	    bytes / VIRTIO_BLK_SECTOR <= vb->sectors - sector;
}

/*
 * Move len bytes between the disk at off and the chain's data buffers:
 * the writable ones for a read (write = false), the readable ones after
 * the header for a write.
 */
static int
virtio_blk_rw(struct virtio_blk *vb, struct virtio_chain *c, bool write,
    uint64_t off, uint32_t len)
{
	uint32_t skip = write ? VIRTIO_BLK_HDR : 0;

	for (unsigned i = 0; i < c->niov && len > 0; i++) {
		struct virtio_iov *v = &c->iov[i];
		uint32_t n;
		int err;

		if (v->write == write)
			continue;	/* wrong direction for this request */
		if (skip >= v->len) {
			skip -= v->len;
			continue;
		}
		n = v->len - skip < len ? v->len - skip : len;
		err = write ? blkdev_pwrite(vb->bd, v->base + skip, n, off) :
		    blkdev_pread(vb->bd, v->base + skip, n, off);
		if (err < 0)
			return err;
		skip = 0;
		off += n;
		len -= n;
	}
	return 0;
}

static uint8_t
virtio_blk_readwrite(struct virtio_blk *vb, struct virtio_blk_req *r,
    bool write, uint64_t sector)
{
	struct virtio_chain *c = &r->chain;
	uint32_t len = write ? c->out_len - VIRTIO_BLK_HDR : c->in_len - 1;

	if (write && vb->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (len % VIRTIO_BLK_SECTOR || !virtio_blk_in_range(vb, sector, len))
		return VIRTIO_BLK_S_IOERR;
	if (virtio_blk_rw(vb, c, write, sector * VIRTIO_BLK_SECTOR, len) < 0)
		return VIRTIO_BLK_S_IOERR;
	virtio_blk_count(write ? &vb->wr_bytes : &vb->rd_bytes, len);
	virtio_blk_count(write ? &vb->wr_ops : &vb->rd_ops, 1);
	if (!write)
		r->used_len = len + 1;
	return VIRTIO_BLK_S_OK;
}

/* DISCARD and WRITE_ZEROES: a list of segments after the header. */
static uint8_t
virtio_blk_segments(struct virtio_blk *vb, struct virtio_blk_req *r,
    uint32_t type)
{
	struct virtio_chain *c = &r->chain;
	uint32_t bytes = c->out_len - VIRTIO_BLK_HDR;
	uint32_t nseg = bytes / VIRTIO_BLK_SEG;

	if (vb->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (nseg == 0 || bytes % VIRTIO_BLK_SEG ||
	    nseg > VIRTIO_BLK_MAX_DISCARD_SEG)
		return VIRTIO_BLK_S_UNSUPP;
	for (uint32_t i = 0; i < nseg; i++) {
		uint8_t seg[VIRTIO_BLK_SEG];
		uint64_t sector;
		uint32_t num, flags;
		int err;

		virtio_chain_copy(c, false, VIRTIO_BLK_HDR + i *
		    VIRTIO_BLK_SEG, seg, sizeof(seg));
		sector = bus_get(seg, 8);
		num = (uint32_t)bus_get(seg + 8, 4);
		flags = (uint32_t)bus_get(seg + 12, 4);
		/* Only WRITE_ZEROES knows a flag: unmap (bit 0). */
		if (flags & ~(type == VIRTIO_BLK_T_WRITE_ZEROES ? 1u : 0u))
			return VIRTIO_BLK_S_UNSUPP;
		if (num > VIRTIO_BLK_MAX_DISCARD_SECTORS ||
		    !virtio_blk_in_range(vb, sector,
		    (uint64_t)num * VIRTIO_BLK_SECTOR))
			return VIRTIO_BLK_S_IOERR;
		err = type == VIRTIO_BLK_T_DISCARD ?
		    blkdev_discard(vb->bd, sector * VIRTIO_BLK_SECTOR,
		    (uint64_t)num * VIRTIO_BLK_SECTOR) :
		    blkdev_write_zeroes(vb->bd, sector * VIRTIO_BLK_SECTOR,
		    (uint64_t)num * VIRTIO_BLK_SECTOR);
		if (err < 0)
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t
virtio_blk_get_id(struct virtio_blk *vb, struct virtio_blk_req *r)
{
	uint32_t n = r->chain.in_len - 1;

	if (n > VIRTIO_BLK_ID_BYTES)
		n = VIRTIO_BLK_ID_BYTES;
	/* Shorter than 20 bytes: NUL-padded, as the spec's driver reads. */
	virtio_chain_copy(&r->chain, true, 0, vb->serial, n);
	r->used_len = n + 1;
	return VIRTIO_BLK_S_OK;
}

/* Run one request; returns its status byte. */
static uint8_t
virtio_blk_execute(struct virtio_blk *vb, struct virtio_blk_req *r)
{
	uint8_t hdr[VIRTIO_BLK_HDR];
	uint32_t type;
	uint64_t sector;

	if (virtio_chain_copy(&r->chain, false, 0, hdr, sizeof(hdr)) !=
	    sizeof(hdr))
		return VIRTIO_BLK_S_IOERR;
	type = (uint32_t)bus_get(hdr, 4);
	sector = bus_get(hdr + 8, 8);
	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return virtio_blk_readwrite(vb, r, type == VIRTIO_BLK_T_OUT,
		    sector);
	case VIRTIO_BLK_T_FLUSH:
		return blkdev_flush(vb->bd) < 0 ? VIRTIO_BLK_S_IOERR :
		    VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		return virtio_blk_get_id(vb, r);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (vb->readonly)
			return VIRTIO_BLK_S_IOERR;
		return virtio_blk_segments(vb, r, type);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

static void *
virtio_blk_thread(void *opaque)
{
	struct virtio_blk *vb = opaque;
	struct virtio_blk_req *r;

	pthread_mutex_lock(&vb->lock);
	for (;;) {
		while (vb->todo == NULL && !vb->stop)
			pthread_cond_wait(&vb->work, &vb->lock);
		if (vb->stop)
			break;
		r = vb->todo;
		if ((vb->todo = r->next) == NULL)
			vb->todo_tail = &vb->todo;
		pthread_mutex_unlock(&vb->lock);
		r->status = virtio_blk_execute(vb, r);
		if (r->status == VIRTIO_BLK_S_IOERR)
			virtio_blk_count(&vb->errors, 1);
		pthread_mutex_lock(&vb->lock);
		r->next = vb->done;
		vb->done = r;
		vb->pending--;
		pthread_cond_broadcast(&vb->idle);
		/*
		 * Completions go to the event thread (and the guest, as one
		 * interrupt) in batches: while requests wait to be started,
		 * a thread takes the next one rather than waking the event
		 * thread for each, up to VIRTIO_BLK_BATCH.  Nothing waits
		 * on work that is not already running, so latency grows by
		 * at most a few requests' time, and only under a backlog.
		 */
		if (vb->todo == NULL || ++vb->unsignalled >= VIRTIO_BLK_BATCH) {
			vb->unsignalled = 0;
			if (eventfd_write(vb->efd, 1) < 0)
				log_warn("virtio-blk %s: eventfd", vb->name);
		}
	}
	pthread_mutex_unlock(&vb->lock);
	return NULL;
}

/* --- completion (device lock held) --- */

static void
virtio_blk_finish(struct virtio_blk *vb, struct virtio_blk_req *r)
{
	struct virtio_chain *c = &r->chain;

	virtio_chain_copy(c, true, c->in_len - 1, &r->status, 1);
	/* The software CPU may have translated code where we wrote. */
	for (unsigned i = 0; i < c->niov; i++)
		if (c->iov[i].write)
			vm_dma_written(vb->vm, c->iov[i].gpa, c->iov[i].len);
	virtq_push(&vb->vd, r->q, c->head, r->used_len);
}

/* Take what the threads finished; push it (complete) or drop it. */
static void
virtio_blk_reap(struct virtio_blk *vb, bool complete)
{
	struct virtio_blk_req *r, *next;
	unsigned touched = 0;	/* queues that got used entries */

	pthread_mutex_lock(&vb->lock);
	r = vb->done;
	vb->done = NULL;
	pthread_mutex_unlock(&vb->lock);
	for (; r != NULL; r = next) {
		next = r->next;
		if (complete) {
			virtio_blk_finish(vb, r);
			touched |= 1u << r->q;
		}
		free(r);
	}
	for (unsigned q = 0; q < vb->vd.nqueues; q++)
		if (touched & 1u << q)
			virtq_notify(&vb->vd, q);
}

static void
virtio_blk_on_done(void *opaque, int fd)
{
	struct virtio_blk *vb = opaque;
	eventfd_t n;

	(void)eventfd_read(fd, &n);
	virtio_blk_reap(vb, true);
}

/* Wait until no thread holds a request, then complete or drop all. */
static void
virtio_blk_drain(struct virtio_blk *vb, bool complete)
{
	pthread_mutex_lock(&vb->lock);
	/* Requests nobody started yet go straight to done. */
	while (vb->todo != NULL) {
		struct virtio_blk_req *r = vb->todo;

		vb->todo = r->next;
		r->status = complete ? virtio_blk_execute(vb, r) :
		    VIRTIO_BLK_S_IOERR;
		r->next = vb->done;
		vb->done = r;
		vb->pending--;
	}
	vb->todo_tail = &vb->todo;
	while (vb->pending > 0)
		pthread_cond_wait(&vb->idle, &vb->lock);
	pthread_mutex_unlock(&vb->lock);
	virtio_blk_reap(vb, complete);
}

/* --- virtio hooks (device lock held) --- */

static void
virtio_blk_submit(struct virtio_blk *vb, struct virtio_blk_req *r)
{
	pthread_mutex_lock(&vb->lock);
	r->next = NULL;
	*vb->todo_tail = r;
	vb->todo_tail = &r->next;
	vb->pending++;
	pthread_cond_signal(&vb->work);
	pthread_mutex_unlock(&vb->lock);
}

static void
virtio_blk_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_blk *vb = vd->opaque;

	/* Bounded: a driver that keeps moving avail->idx cannot keep the
	 * vCPU here for ever.  A driver that follows the rules has at most
	 * size chains out, so the last pop finds the ring empty. */
	for (unsigned i = 0; i <= vd->vq[q].size; i++) {
		struct virtio_blk_req *r = malloc(sizeof(*r));

		if (r == NULL) {
			log_warnx("virtio-blk %s: out of memory", vb->name);
			return;
		}
		if (virtq_pop(vd, q, &r->chain) <= 0) {
			free(r);
			return;
		}
		r->q = q;
		r->used_len = 1;
		/* Header readable and a status byte writable, or the
		 * request cannot even be answered. */
		if (r->chain.in_len == 0 || r->chain.out_len <
		    VIRTIO_BLK_HDR) {
			free(r);
			virtio_needs_reset(vd, "request without header or "
			    "status byte");
			return;
		}
		virtio_blk_submit(vb, r);
	}
}

static void
virtio_blk_cfg_read(struct virtio_dev *vd, unsigned off, uint8_t *data,
    unsigned len)
{
	struct virtio_blk *vb = vd->opaque;
	uint8_t c[VIRTIO_BLK_CFG_SIZE] = { 0 };

	bus_put(c + VIRTIO_BLK_CFG_CAPACITY, 8, vb->sectors);
	bus_put(c + VIRTIO_BLK_CFG_SIZE_MAX, 4, VIRTIO_BLK_SIZE_MAX);
	bus_put(c + VIRTIO_BLK_CFG_SEG_MAX, 4, VIRTIO_BLK_SEG_MAX);
	bus_put(c + VIRTIO_BLK_CFG_BLK_SIZE, 4, VIRTIO_BLK_SECTOR);
	bus_put(c + VIRTIO_BLK_CFG_NUM_QUEUES, 2, vd->nqueues);
	bus_put(c + VIRTIO_BLK_CFG_MAX_DISCARD, 4,
	    VIRTIO_BLK_MAX_DISCARD_SECTORS);
	bus_put(c + VIRTIO_BLK_CFG_MAX_DISCARD_SEG, 4,
	    VIRTIO_BLK_MAX_DISCARD_SEG);
	bus_put(c + VIRTIO_BLK_CFG_DISCARD_ALIGN, 4, 1);
	bus_put(c + VIRTIO_BLK_CFG_MAX_WZ, 4, VIRTIO_BLK_MAX_DISCARD_SECTORS);
	bus_put(c + VIRTIO_BLK_CFG_MAX_WZ_SEG, 4, VIRTIO_BLK_MAX_DISCARD_SEG);
	memcpy(data, c + off, len);
}

static void
virtio_blk_dev_reset(struct virtio_dev *vd)
{
	virtio_blk_drain(vd->opaque, false);
}

static const struct virtio_dev_ops virtio_blk_vops = {
	.cfg_read = virtio_blk_cfg_read,
	.notify = virtio_blk_notify,
	.reset = virtio_blk_dev_reset,
};

/* --- device class --- */

static void
virtio_blk_free(struct virtio_blk *vb)
{
	pthread_mutex_lock(&vb->lock);
	vb->stop = true;
	pthread_cond_broadcast(&vb->work);
	pthread_mutex_unlock(&vb->lock);
	for (int i = 0; i < vb->nthreads; i++)
		pthread_join(vb->threads[i], NULL);
	vb->nthreads = 0;
	vb->stop = false;
	virtio_blk_drain(vb, false);
	if (vb->efd >= 0) {
		evloop_del_fd(vb->vm->loop, vb->efd);
		close(vb->efd);
	}
	blkdev_close(vb->bd);
	pthread_cond_destroy(&vb->work);
	pthread_cond_destroy(&vb->idle);
	pthread_mutex_destroy(&vb->lock);
	free(vb);
}

static uint64_t
virtio_blk_features(const struct virtio_blk *vb)
{
	uint64_t f = 1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_MQ |
	    1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
	    1ull << VIRTIO_BLK_F_FLUSH;

	if (vb->readonly)
		return f | 1ull << VIRTIO_BLK_F_RO;
	return f | 1ull << VIRTIO_BLK_F_DISCARD |
	    1ull << VIRTIO_BLK_F_WRITE_ZEROES;
}

static int
virtio_blk_start(struct virtio_blk *vb)
{
	int err;

	if ((vb->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return -errno;
	if ((err = evloop_add_fd(vb->vm->loop, vb->efd, virtio_blk_on_done,
	    vb)) < 0) {
		close(vb->efd);
		vb->efd = -1;
		return err;
	}
	for (; vb->nthreads < VIRTIO_BLK_THREADS; vb->nthreads++)
		if ((err = pthread_create(&vb->threads[vb->nthreads], NULL,
		    virtio_blk_thread, vb)) != 0)
			return -err;
	return 0;
}

/* One request queue per vCPU (F_MQ), so vCPUs do not share a ring. */
static unsigned
virtio_blk_nqueues(const struct vm *vm)
{
	int n = vm->cfg->cpus;

	return n < 1 ? 1 : n > VIRTIO_MAX_QUEUES ? VIRTIO_MAX_QUEUES :
	    (unsigned)n;
}

static int
virtio_blk_new(struct vm *vm, int i, const struct vmcfg_disk *d)
{
	struct virtio_blk *vb = calloc(1, sizeof(*vb));
	char msg[512];
	int err;

	if (vb == NULL)
		return -ENOMEM;
	vb->vm = vm;
	vb->efd = -1;
	vb->todo_tail = &vb->todo;
	pthread_mutex_init(&vb->lock, NULL);
	pthread_cond_init(&vb->work, NULL);
	pthread_cond_init(&vb->idle, NULL);
	snprintf(vb->name, sizeof(vb->name), "virtio-blk%d", i);
	if ((err = vm->cfg->disks_inactive ? blkdev_open(&vb->bd, d->path,
	    d->format, (d->readonly ? BLKDEV_RDONLY : 0) | BLKDEV_NOLOCK, msg,
	    sizeof(msg)) : blkdev_open_disk(&vb->bd, d, msg,
	    sizeof(msg))) < 0) {
		log_warnx("%s", msg);
		vb->bd = NULL;
		goto fail;
	}
	vb->readonly = d->readonly || vb->bd->readonly;
	vb->sectors = blkdev_length(vb->bd) / VIRTIO_BLK_SECTOR;
	/* Not a C string: 20 bytes, NUL-padded when shorter. */
	memcpy(vb->serial, d->serial, strnlen(d->serial, sizeof(vb->serial)));
	if ((err = virtio_blk_start(vb)) < 0)
		goto fail;
	if ((err = virtio_dev_init(&vb->vd, vm, vb->name, VIRTIO_ID_BLOCK,
	    VIRTIO_BLK_CLASS, virtio_blk_nqueues(vm), virtio_blk_features(vb),
	    VIRTIO_BLK_CFG_SIZE,
	    &virtio_blk_vops, vb)) < 0)
		goto fail;
	if ((err = vm_device_register(vm, &virtio_blk_ops, vb, vb->name)) < 0)
		goto fail_pci;
	return 0;
fail_pci:
	virtio_dev_fini(&vb->vd);
fail:
	virtio_blk_free(vb);
	return err;
}

static int
virtio_blk_create(struct vm *vm)
{
	int err;

	for (int i = 0; i < vm->cfg->ndisks; i++)
		if ((err = virtio_blk_new(vm, i, &vm->cfg->disks[i])) < 0)
			return err;
	/* devices_create() places the BARs once every function exists. */
	return 0;
}

static void
virtio_blk_fini(void *state)
{
	struct virtio_blk *vb = state;

	virtio_dev_fini(&vb->vd);
	virtio_blk_free(vb);
}

static void
virtio_blk_reset(void *state)
{
	struct virtio_blk *vb = state;

	/* The host bridge's reset cleared every BAR before us;
	 * devices_reset() places them again after all resets. */
	virtio_dev_reset(&vb->vd);
}

static void
virtio_blk_pause(void *state)
{
	virtio_blk_drain(state, true);
}

static int
virtio_blk_snapshot(void *state, struct snap *s)
{
	struct virtio_blk *vb = state;
	uint64_t sectors = vb->sectors;

	/* Requests in flight are finished first: a stream holds none. */
	virtio_blk_drain(vb, snap_saving(s));
	snap_u64(s, "sectors", &sectors);
	if (!snap_saving(s) && snap_error(s) == 0 && sectors != vb->sectors)
		snap_fail(s, -EINVAL, "%s: disk has %llu sectors, the "
		    "snapshot %llu", vb->name,
		    (unsigned long long)vb->sectors,
		    (unsigned long long)sectors);
	return virtio_dev_snapshot(&vb->vd, s);
}

static struct virtio_blk *
virtio_blk_find(struct vm *vm, int index)
{
	char name[32];

	snprintf(name, sizeof(name), "virtio-blk%d", index);
	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].ops == &virtio_blk_ops &&
		    strcmp(vm->devices[i].name, name) == 0)
			return vm->devices[i].state;
	return NULL;
}

struct blkdev *
virtio_blk_blkdev(struct vm *vm, int index)
{
	struct virtio_blk *vb = virtio_blk_find(vm, index);

	return vb != NULL ? vb->bd : NULL;
}

/*
 * Snapshots of a running VM: from now on disk index reads and writes
 * path (an overlay over its current image).  The device is drained and
 * the image flushed first; if the new image cannot be opened the old one
 * is opened again.  The old image's path goes to oldpath (may be NULL).
 * Device lock held, VM paused.  0 or -errno, err set.
 */
int
virtio_blk_reopen(struct vm *vm, int index, const char *path,
    const char *format, char *oldpath, size_t oldlen, char *err,
    size_t errlen)
{
	struct vmcfg_disk old, d;
	struct virtio_blk *vb = virtio_blk_find(vm, index);
	struct blkdev_info info;
	struct blkdev *nb = NULL;
	char msg[512];
	int r;

	if (vb == NULL || vb->bd == NULL) {
		snprintf(err, errlen, "no disk %d", index);
		return -ENOENT;
	}
	virtio_blk_drain(vb, true);
	if ((r = blkdev_flush(vb->bd)) < 0) {
		snprintf(err, errlen, "%s: flush: %s", vb->bd->path,
		    strerror(-r));
		return r;
	}
	memset(&old, 0, sizeof(old));
	blkdev_info(vb->bd, &info);
	snprintf(old.path, sizeof(old.path), "%s", vb->bd->path);
	snprintf(old.format, sizeof(old.format), "%s", info.format);
	if (oldpath != NULL)
		snprintf(oldpath, oldlen, "%s", old.path);
	old.readonly = vb->readonly;
	d = old;
	snprintf(d.path, sizeof(d.path), "%s", path);
	snprintf(d.format, sizeof(d.format), "%s", format);
	/* The image locks refuse a second open of the old image (the new
	 * one's backing) while this handle writes it: close it first. */
	blkdev_close(vb->bd);
	r = blkdev_open_disk(&nb, &d, err, errlen);
	if (r == 0 && blkdev_length(nb) / VIRTIO_BLK_SECTOR != vb->sectors) {
		snprintf(err, errlen, "%s: not the disk's size", path);
		blkdev_close(nb);
		r = -EINVAL;
	}
	if (r < 0 && blkdev_open_disk(&nb, &old, msg, sizeof(msg)) < 0)
		fatalx("%s: cannot open its image again: %s", vb->name, msg);
	vb->bd = nb;
	return r;
}

/*
 * A live migration's hand-over of disks that both hosts open (see
 * blkdev_unlock()).  Source, VM paused (vm_pause() drained the
 * requests; any thread may call these then): virtio_blk_inactivate() flushes
 * every disk and drops its image locks; virtio_blk_activate(vm, false)
 * takes them again when the migration fails.  Destination, before the
 * guest runs: virtio_blk_activate(vm, true) opens every disk afresh with
 * its locks (the source wrote the images, metadata included, since they
 * were opened) in place of the unlocked handle.  0 or -errno, err set;
 * a failed activation changes nothing.
 */
int
virtio_blk_inactivate(struct vm *vm, char *err, size_t errlen)
{
	struct virtio_blk *vb;
	int r;

	for (int i = 0; (vb = virtio_blk_find(vm, i)) != NULL; i++) {
		if ((r = blkdev_flush(vb->bd)) < 0) {
			snprintf(err, errlen, "%s: flush: %s", vb->bd->path,
			    strerror(-r));
			virtio_blk_activate(vm, false, NULL, 0);
			return r;
		}
		blkdev_unlock(vb->bd);
	}
	return 0;
}

int
virtio_blk_activate(struct vm *vm, bool reopen, char *err, size_t errlen)
{
	struct blkdev *nb[VMCFG_MAX_DISKS] = { NULL };
	struct virtio_blk *vb;
	char msg[512];
	int i, n = vm->cfg->ndisks, r = 0;

	/* One device per configured disk (virtio_blk_create). */
	for (i = 0; i < n && r == 0; i++) {
		vb = virtio_blk_find(vm, i);
		if (!reopen)
			r = blkdev_relock(vb->bd, msg, sizeof(msg));
		else if ((r = blkdev_open_disk(&nb[i], &vm->cfg->disks[i], msg,
		    sizeof(msg))) == 0 &&
		    blkdev_length(nb[i]) / VIRTIO_BLK_SECTOR != vb->sectors) {
			snprintf(msg, sizeof(msg), "%.400s: no longer the "
			    "disk's size", nb[i]->path);
			r = -EINVAL;
		}
	}
	if (r < 0) {
		if (err != NULL)
			snprintf(err, errlen, "%s", msg);
		/* All or nothing. */
		for (int k = 0; k < i; k++) {
			if (!reopen)
				blkdev_unlock(virtio_blk_find(vm, k)->bd);
			blkdev_close(nb[k]);
		}
		return r;
	}
	for (i = 0; reopen && i < n; i++) {
		vb = virtio_blk_find(vm, i);
		blkdev_close(vb->bd);
		vb->bd = nb[i];
	}
	return 0;
}

static void
virtio_blk_stats(void *state, struct device_stats *st)
{
	struct virtio_blk *vb = state;

	st->kind = "disk";
	st->rx_bytes = __atomic_load_n(&vb->rd_bytes, __ATOMIC_RELAXED);
	st->tx_bytes = __atomic_load_n(&vb->wr_bytes, __ATOMIC_RELAXED);
	st->rx_ops = __atomic_load_n(&vb->rd_ops, __ATOMIC_RELAXED);
	st->tx_ops = __atomic_load_n(&vb->wr_ops, __ATOMIC_RELAXED);
	st->errors = __atomic_load_n(&vb->errors, __ATOMIC_RELAXED);
}

const struct device_ops virtio_blk_ops = {
	.name = "virtio-blk",
	.create = virtio_blk_create,
	.fini = virtio_blk_fini,
	.snapshot = virtio_blk_snapshot,
	.snapshot_version = 1,
	.pause = virtio_blk_pause,
	.reset = virtio_blk_reset,
	.stats = virtio_blk_stats,
};
