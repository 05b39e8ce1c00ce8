/*
 * virtio-rng on the virtio transport (virtio.c).  See virtio_rng.h.
 *
 * Requests are served where the transport delivers the kick (the event
 * loop through the queue's ioeventfd, or the vCPU's exit), with the
 * device lock held: Linux's driver posts one small buffer at a time (at
 * most a few hundred bytes), and getrandom(2) never blocks once the
 * host's own CRNG is ready, so the work is a bounded copy.  A request
 * gets at most VIRTIO_RNG_REQ_MAX bytes, so that a guest posting huge
 * buffers only slows itself.
 */
#include "devices/virtio_rng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "devices/device.h"
#include "devices/virtio.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/snap.h"
#include "util/log.h"

#define VIRTIO_RNG_REQUESTQ	0
/* PCI class: unclassified, other (as other hypervisors' virtio-rng). */
#define VIRTIO_RNG_CLASS	0x00ff00

struct virtio_rng {
	struct virtio_dev vd;
	struct vm *vm;
	struct virtio_chain *chain;	/* scratch for virtq_pop (large) */
	uint64_t bytes;			/* handed to the guest */
	uint64_t refused;		/* requests with nothing to fill */
};

/*
 * Fill len bytes at p from the host's CRNG.  getrandom() may return
 * short or fail with EINTR when a signal arrives; it does not block
 * after the host has booted.  0 or -errno.
 */
static int
virtio_rng_fill(uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Fill c's device-writable buffers, up to VIRTIO_RNG_REQ_MAX bytes in
 * all; the number of bytes written. */
static uint32_t
virtio_rng_serve(struct virtio_rng *vr, struct virtio_chain *c)
{
	uint32_t done = 0;

	for (unsigned i = 0; i < c->niov && done < VIRTIO_RNG_REQ_MAX; i++) {
		struct virtio_iov *v = &c->iov[i];
		uint32_t n = v->len;
		int err;

		if (!v->write)
			continue;
		if (n > VIRTIO_RNG_REQ_MAX - done)
			n = VIRTIO_RNG_REQ_MAX - done;
		if ((err = virtio_rng_fill(v->base, n)) < 0) {
			log_warnx("%s: getrandom: %s", vr->vd.pci.name,
			    strerror(-err));
			break;
		}
		/* The software CPU may have translated code there. */
		vm_dma_written(vr->vm, v->gpa, n);
		done += n;
	}
	return done;
}

static void
virtio_rng_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_rng *vr = vd->opaque;
	struct virtio_chain *c = vr->chain;
	bool any = false;

	if (q != VIRTIO_RNG_REQUESTQ)
		return;
	while (virtq_pop(vd, q, c) == 1) {
		uint32_t n = 0;

		if (c->in_len == 0) {
			/* Nothing the device may write: a driver bug. */
			__atomic_fetch_add(&vr->refused, 1, __ATOMIC_RELAXED);
			log_guest_once("%s: request without a writable buffer",
			    vd->pci.name);
		} else {
			n = virtio_rng_serve(vr, c);
		}
		__atomic_fetch_add(&vr->bytes, n, __ATOMIC_RELAXED);
		virtq_push(vd, q, c->head, n);
		any = true;
	}
	if (any)
		virtq_notify(vd, q);
}

static const struct virtio_dev_ops virtio_rng_vops = {
	.notify = virtio_rng_notify,
};

bool
virtio_rng_wanted(const struct vm_config *cfg)
{
	return cfg == NULL || strcmp(cfg->rng, "off") != 0;
}

struct virtio_rng *
virtio_rng_find(struct vm *vm)
{
	return devices_find(vm, &virtio_rng_ops);
}

uint64_t
virtio_rng_bytes(const struct virtio_rng *vr)
{
	return __atomic_load_n(&vr->bytes, __ATOMIC_RELAXED);
}

/* --- device class --- */

static int
virtio_rng_create(struct vm *vm)
{
	struct virtio_rng *vr;
	int err;

	if (!virtio_rng_wanted(vm->cfg))
		return 0;
	if ((vr = calloc(1, sizeof(*vr))) == NULL)
		return -ENOMEM;
	vr->vm = vm;
	if ((vr->chain = malloc(sizeof(*vr->chain))) == NULL) {
		err = -ENOMEM;
		goto fail;
	}
	if ((err = virtio_dev_init(&vr->vd, vm, "virtio-rng0", VIRTIO_ID_RNG,
	    VIRTIO_RNG_CLASS, 1, 0, 0, &virtio_rng_vops, vr)) < 0)
		goto fail;
	if ((err = vm_device_register(vm, &virtio_rng_ops, vr,
	    "virtio-rng0")) < 0)
		goto fail_pci;
	/* devices_create() places the BARs once every function exists. */
	return 0;
fail_pci:
	virtio_dev_fini(&vr->vd);
fail:
	free(vr->chain);
	free(vr);
	return err;
}

static void
virtio_rng_fini(void *state)
{
	struct virtio_rng *vr = state;

	virtio_dev_fini(&vr->vd);
	free(vr->chain);
	free(vr);
}

static void
virtio_rng_reset(void *state)
{
	struct virtio_rng *vr = state;

	/* devices_reset() places the BARs again after all resets. */
	virtio_dev_reset(&vr->vd);
}

/* Nothing is in flight between kicks: the transport's state is all. */
static int
virtio_rng_snapshot(void *state, struct snap *s)
{
	struct virtio_rng *vr = state;

	return virtio_dev_snapshot(&vr->vd, s);
}

const struct device_ops virtio_rng_ops = {
	.name = "virtio-rng",
	.create = virtio_rng_create,
	.fini = virtio_rng_fini,
	.snapshot = virtio_rng_snapshot,
	.snapshot_version = 1,
	.reset = virtio_rng_reset,
};
