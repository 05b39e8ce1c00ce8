/*
 * virtio-input tablet on the virtio transport (virtio.c).  See
 * virtio_input.h.  Events are produced on the VNC thread and the driver
 * posts buffers from a vCPU; both hold the device lock.
 */
#include "devices/virtio_input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "devices/virtio.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/snap.h"
#include "util/log.h"
#include "vnc/vnc.h"

#define VIRTIO_INPUT_EVENTQ	0
#define VIRTIO_INPUT_STATUSQ	1
#define VIRTIO_INPUT_EV_SIZE	8	/* le16 type, le16 code, le32 value */
#define VIRTIO_INPUT_PENDING	128	/* events held for want of buffers */
#define VIRTIO_INPUT_BUTTONS	5
/* PCI class: input device, other (as other hypervisors' virtio-input). */
#define VIRTIO_INPUT_CLASS	0x098000
#define VIRTIO_INPUT_NAME	"termvisor tablet"
#define VIRTIO_INPUT_BUS_VIRTUAL 0x06

struct virtio_input_ev {
	uint16_t type, code;
	uint32_t value;
};

struct virtio_input {
	struct virtio_dev vd;
	struct vm *vm;
	uint8_t select, subsel;
	/* What the driver was last told, so a report carries changes. */
	bool have_pos;
	unsigned x, y, buttons;
	struct virtio_input_ev pending[VIRTIO_INPUT_PENDING];
	unsigned npending;
	uint64_t dropped;
};

/* --- configuration space --- */

static void
virtio_input_set_bit(uint8_t *bitmap, unsigned bit, uint8_t *size)
{
	bitmap[bit / 8] |= (uint8_t)(1u << (bit % 8));
	if (*size < bit / 8 + 1)
		*size = (uint8_t)(bit / 8 + 1);
}

/* Fill the union (u, 128 bytes) for select/subsel; its size. */
static uint8_t
virtio_input_cfg_fill(const struct virtio_input *vi, uint8_t *u)
{
	uint8_t size = 0;

	switch (vi->select) {
	case VIRTIO_INPUT_CFG_ID_NAME:
		if (vi->subsel != 0)
			return 0;
		memcpy(u, VIRTIO_INPUT_NAME, sizeof(VIRTIO_INPUT_NAME) - 1);
		return sizeof(VIRTIO_INPUT_NAME) - 1;
	case VIRTIO_INPUT_CFG_ID_DEVIDS:
		if (vi->subsel != 0)
			return 0;
		bus_put(u + 0, 2, VIRTIO_INPUT_BUS_VIRTUAL);
		bus_put(u + 2, 2, VIRTIO_PCI_VENDOR);
		bus_put(u + 4, 2, 0x0003);	/* tablet */
		bus_put(u + 6, 2, 1);
		return 8;
	case VIRTIO_INPUT_CFG_EV_BITS:
		if (vi->subsel == VIRTIO_INPUT_EV_KEY)
			for (unsigned b = 0; b < VIRTIO_INPUT_BUTTONS; b++)
				virtio_input_set_bit(u,
				    VIRTIO_INPUT_BTN_LEFT + b, &size);
		if (vi->subsel == VIRTIO_INPUT_EV_REL)
			virtio_input_set_bit(u, VIRTIO_INPUT_REL_WHEEL, &size);
		if (vi->subsel == VIRTIO_INPUT_EV_ABS) {
			virtio_input_set_bit(u, VIRTIO_INPUT_ABS_X, &size);
			virtio_input_set_bit(u, VIRTIO_INPUT_ABS_Y, &size);
		}
		return size;
	case VIRTIO_INPUT_CFG_ABS_INFO:
		if (vi->subsel != VIRTIO_INPUT_ABS_X &&
		    vi->subsel != VIRTIO_INPUT_ABS_Y)
			return 0;
		/* min 0, max, fuzz 0, flat 0, resolution 0 */
		bus_put(u + 4, 4, VIRTIO_INPUT_ABS_MAX);
		return 20;
	default:
		/* No serial, no properties, nothing else. */
		return 0;
	}
}

static void
virtio_input_cfg_read(struct virtio_dev *vd, unsigned off, uint8_t *data,
    unsigned len)
{
	struct virtio_input *vi = vd->opaque;
	uint8_t c[VIRTIO_INPUT_CFG_SIZE] = { 0 };

	c[0] = vi->select;
	c[1] = vi->subsel;
	c[2] = virtio_input_cfg_fill(vi, c + 8);
	memcpy(data, c + off, len);
}

static void
virtio_input_cfg_write(struct virtio_dev *vd, unsigned off,
    const uint8_t *data, unsigned len)
{
	struct virtio_input *vi = vd->opaque;

	/* Only select and subsel are the driver's to write. */
	for (unsigned i = 0; i < len; i++) {
		if (off + i == 0)
			vi->select = data[i];
		else if (off + i == 1)
			vi->subsel = data[i];
	}
}

/* --- events --- */

/* Hand pending events to the driver, one per posted buffer. */
static void
virtio_input_flush(struct virtio_input *vi)
{
	struct virtio_chain *c;
	unsigned done = 0;

	if (!virtio_running(&vi->vd) || vi->npending == 0)
		return;
	if ((c = malloc(sizeof(*c))) == NULL)
		return;
	while (done < vi->npending &&
	    virtq_pop(&vi->vd, VIRTIO_INPUT_EVENTQ, c) == 1) {
		const struct virtio_input_ev *e = &vi->pending[done];
		uint8_t b[VIRTIO_INPUT_EV_SIZE];
		uint32_t n;

		bus_put(b + 0, 2, e->type);
		bus_put(b + 2, 2, e->code);
		bus_put(b + 4, 4, e->value);
		n = virtio_chain_copy(c, true, 0, b, sizeof(b));
		for (unsigned k = 0; k < c->niov; k++)
			if (c->iov[k].write)
				vm_dma_written(vi->vd.vm, c->iov[k].gpa,
				    c->iov[k].len);
		virtq_push(&vi->vd, VIRTIO_INPUT_EVENTQ, c->head, n);
		done++;
	}
	free(c);
	if (done == 0)
		return;
	memmove(vi->pending, vi->pending + done,
	    (vi->npending - done) * sizeof(vi->pending[0]));
	vi->npending -= done;
	virtq_notify(&vi->vd, VIRTIO_INPUT_EVENTQ);
}

/* Drain the status queue: LED and force-feedback requests we ignore. */
static void
virtio_input_status(struct virtio_input *vi)
{
	struct virtio_chain *c = malloc(sizeof(*c));
	bool any = false;

	if (c == NULL)
		return;
	while (virtq_pop(&vi->vd, VIRTIO_INPUT_STATUSQ, c) == 1) {
		virtq_push(&vi->vd, VIRTIO_INPUT_STATUSQ, c->head, 0);
		any = true;
	}
	free(c);
	if (any)
		virtq_notify(&vi->vd, VIRTIO_INPUT_STATUSQ);
}

static void
virtio_input_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_input *vi = vd->opaque;

	if (q == VIRTIO_INPUT_EVENTQ)
		virtio_input_flush(vi);
	else if (q == VIRTIO_INPUT_STATUSQ)
		virtio_input_status(vi);
}

static void
virtio_input_dev_reset(struct virtio_dev *vd)
{
	struct virtio_input *vi = vd->opaque;

	vi->npending = 0;
	vi->have_pos = false;
	vi->buttons = 0;
}

static const struct virtio_dev_ops virtio_input_vops = {
	.cfg_read = virtio_input_cfg_read,
	.cfg_write = virtio_input_cfg_write,
	.notify = virtio_input_notify,
	.reset = virtio_input_dev_reset,
};

struct virtio_input *
virtio_input_find(struct vm *vm)
{
	return devices_find(vm, &virtio_input_ops);
}

bool
virtio_input_ready(const struct virtio_input *vi)
{
	return virtio_running(&vi->vd);
}

void
virtio_input_pointer(struct virtio_input *vi, unsigned x, unsigned y,
    unsigned buttons, int wheel)
{
	struct virtio_input_ev r[4 + VIRTIO_INPUT_BUTTONS];
	unsigned n = 0;

	if (x > VIRTIO_INPUT_ABS_MAX)
		x = VIRTIO_INPUT_ABS_MAX;
	if (y > VIRTIO_INPUT_ABS_MAX)
		y = VIRTIO_INPUT_ABS_MAX;
	if (!vi->have_pos || x != vi->x)
		r[n++] = (struct virtio_input_ev){ VIRTIO_INPUT_EV_ABS,
		    VIRTIO_INPUT_ABS_X, x };
	if (!vi->have_pos || y != vi->y)
		r[n++] = (struct virtio_input_ev){ VIRTIO_INPUT_EV_ABS,
		    VIRTIO_INPUT_ABS_Y, y };
	for (unsigned b = 0; b < VIRTIO_INPUT_BUTTONS; b++)
		if (((buttons ^ vi->buttons) >> b) & 1)
			r[n++] = (struct virtio_input_ev){ VIRTIO_INPUT_EV_KEY,
			    (uint16_t)(VIRTIO_INPUT_BTN_LEFT + b),
			    (buttons >> b) & 1 };
	if (wheel != 0)
		r[n++] = (struct virtio_input_ev){ VIRTIO_INPUT_EV_REL,
		    VIRTIO_INPUT_REL_WHEEL, (uint32_t)wheel };
	if (n == 0)
		return;
	r[n++] = (struct virtio_input_ev){ VIRTIO_INPUT_EV_SYN, 0, 0 };
	/* A report goes whole or not at all; a dropped one leaves the
	 * state as last sent, so the next report makes up for it. */
	if (vi->npending + n > VIRTIO_INPUT_PENDING) {
		vi->dropped++;
		log_guest_once("%s: the driver takes no events: report "
		    "dropped", vi->vd.pci.name);
		return;
	}
	memcpy(vi->pending + vi->npending, r, n * sizeof(r[0]));
	vi->npending += n;
	vi->x = x;
	vi->y = y;
	vi->buttons = buttons;
	vi->have_pos = true;
	virtio_input_flush(vi);
}

/* --- device class --- */

static bool
virtio_input_wanted(const struct vm *vm)
{
	return vnc_wanted(vm->cfg);
}

static int
virtio_input_create(struct vm *vm)
{
	struct virtio_input *vi;
	int err;

	if (!virtio_input_wanted(vm))
		return 0;
	if ((vi = calloc(1, sizeof(*vi))) == NULL)
		return -ENOMEM;
	vi->vm = vm;
	if ((err = virtio_dev_init(&vi->vd, vm, "virtio-input0",
	    VIRTIO_ID_INPUT, VIRTIO_INPUT_CLASS, 2, 0, VIRTIO_INPUT_CFG_SIZE,
	    &virtio_input_vops, vi)) < 0)
		goto fail;
	if ((err = vm_device_register(vm, &virtio_input_ops, vi,
	    "virtio-input0")) < 0)
		goto fail_pci;
	/* devices_create() places the BARs once every function exists. */
	return 0;
fail_pci:
	virtio_dev_fini(&vi->vd);
fail:
	free(vi);
	return err;
}

static void
virtio_input_fini(void *state)
{
	struct virtio_input *vi = state;

	virtio_dev_fini(&vi->vd);
	free(vi);
}

static void
virtio_input_reset(void *state)
{
	struct virtio_input *vi = state;

	/* devices_reset() places the BARs again after all resets. */
	virtio_dev_reset(&vi->vd);
}

/* Events not yet taken are not saved: input is transient, and the next
 * report carries the whole position again. */
static int
virtio_input_snapshot(void *state, struct snap *s)
{
	struct virtio_input *vi = state;

	snap_u8(s, "select", &vi->select);
	snap_u8(s, "subsel", &vi->subsel);
	if (!snap_saving(s)) {
		vi->npending = 0;
		vi->have_pos = false;
		vi->buttons = 0;
	}
	return virtio_dev_snapshot(&vi->vd, s);
}

const struct device_ops virtio_input_ops = {
	.name = "virtio-input",
	.create = virtio_input_create,
	.fini = virtio_input_fini,
	.snapshot = virtio_input_snapshot,
	.snapshot_version = 1,
	.reset = virtio_input_reset,
};
