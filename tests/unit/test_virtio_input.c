/*
 * The virtio-input tablet, driven as Linux's virtio_input driver probes
 * it: find the function, read its configuration (name, ids, event and
 * axis bits, axis ranges) through select/subsel, set the event queue up
 * with buffers, then pointer reports arrive as evdev events.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "null_accel.h"
#include "virtio_harness.h"
#include "devices/bus.h"
#include "devices/pci.h"
#include "devices/virtio.h"
#include "devices/virtio_input.h"

#define RAM		(32u << 20)
#define QSIZE		64
#define Q_DESC		0x100000ull
#define Q_AVAIL		0x101000ull
#define Q_USED		0x102000ull
#define EVBUF		0x110000ull	/* 8-byte event buffers */

static const struct vh_ring eq = { Q_DESC, Q_AVAIL, Q_USED, QSIZE };
static struct vm_config cfg;
static uint16_t avail_idx, used_seen;

static void
probe(void)
{
	vh_probe(VIRTIO_ID_INPUT, false);
	cr_assert_eq(cfg_rd(PCI_CLASS_PROG + 2, 1), 0x09, "input class");
	cr_assert(devcfg);
}

static void
setup(void)
{
	int err;

	vm_config_defaults(&cfg);
	cfg.memory = RAM;
	snprintf(cfg.vnc, sizeof(cfg.vnc), "127.0.0.1:5");
	vm = vm_create(&cfg, &null_accel_ops, &err);
	cr_assert_not_null(vm, "vm_create: %d", err);
	probe();
	avail_idx = used_seen = 0;
}

static void
teardown(void)
{
	vm_destroy(vm);
}

TestSuite(virtio_input, .init = setup, .fini = teardown, .timeout = 10);

/* select/subsel, then the size byte and the union, as virtinput_cfg_select. */
static uint8_t
cfg_select(uint8_t sel, uint8_t sub, uint8_t *u)
{
	uint8_t size;

	mmio_wr(devcfg + 0, 1, sel);
	mmio_wr(devcfg + 1, 1, sub);
	size = (uint8_t)mmio_rd(devcfg + 2, 1);
	for (unsigned i = 0; i < 128; i++)
		u[i] = (uint8_t)mmio_rd(devcfg + 8 + i, 1);
	return size;
}

static bool
bit(const uint8_t *u, unsigned b)
{
	return u[b / 8] >> (b % 8) & 1;
}

Test(virtio_input, config_space_describes_a_tablet)
{
	uint8_t u[128];
	uint8_t size;

	size = cfg_select(VIRTIO_INPUT_CFG_ID_NAME, 0, u);
	cr_assert_gt(size, 0);
	cr_assert(memcmp(u, "termvisor tablet", size) == 0);
	cr_assert_eq(cfg_select(VIRTIO_INPUT_CFG_ID_DEVIDS, 0, u), 8);
	cr_assert_eq(u[0] | u[1] << 8, 0x06, "BUS_VIRTUAL");
	cr_assert_eq(cfg_select(VIRTIO_INPUT_CFG_ID_SERIAL, 0, u), 0);
	cr_assert_eq(cfg_select(VIRTIO_INPUT_CFG_PROP_BITS, 0, u), 0);

	size = cfg_select(VIRTIO_INPUT_CFG_EV_BITS, VIRTIO_INPUT_EV_ABS, u);
	cr_assert_eq(size, 1);
	cr_assert(bit(u, VIRTIO_INPUT_ABS_X) && bit(u, VIRTIO_INPUT_ABS_Y));
	size = cfg_select(VIRTIO_INPUT_CFG_EV_BITS, VIRTIO_INPUT_EV_KEY, u);
	cr_assert_eq(size, 0x114 / 8 + 1);
	for (unsigned b = 0x110; b <= 0x114; b++)
		cr_assert(bit(u, b), "button %#x", b);
	cr_assert_not(bit(u, 0x10f));
	cr_assert_not(bit(u, 30), "no keyboard keys");
	size = cfg_select(VIRTIO_INPUT_CFG_EV_BITS, VIRTIO_INPUT_EV_REL, u);
	cr_assert_eq(size, 2);
	cr_assert(bit(u, VIRTIO_INPUT_REL_WHEEL));
	cr_assert_eq(cfg_select(VIRTIO_INPUT_CFG_EV_BITS, 0x11 /* EV_LED */,
	    u), 0);

	for (uint8_t axis = 0; axis < 2; axis++) {
		uint32_t v[5];

		cr_assert_eq(cfg_select(VIRTIO_INPUT_CFG_ABS_INFO, axis,
		    u), 20);
		memcpy(v, u, sizeof(v));
		cr_assert_eq(v[0], 0, "min");
		cr_assert_eq(v[1], VIRTIO_INPUT_ABS_MAX, "max");
		cr_assert_eq(v[2] | v[3] | v[4], 0);
	}
	cr_assert_eq(cfg_select(VIRTIO_INPUT_CFG_ABS_INFO, 2, u), 0);
	cr_assert_eq(cfg_select(0x7f, 0, u), 0, "unknown select");
	/* The rest of the space is not the driver's to write. */
	mmio_wr(devcfg + 2, 1, 0x55);
	cr_assert_eq(mmio_rd(devcfg + 2, 1), 0);
	cr_assert_eq(mmio_rd(devcfg + 0, 1), 0x7f, "select reads back");
}

/* Reset, features, event queue with QSIZE 8-byte buffers, DRIVER_OK. */
static void
driver_init(void)
{
	vh_begin();
	cr_assert(device_features() >> VIRTIO_F_VERSION_1 & 1, "VERSION_1");
	vh_negotiate(1ull << VIRTIO_F_VERSION_1);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_NUMQ, 2), 2);
	vh_queue_setup(0, &eq, VIRTIO_NO_VECTOR);
	vh_driver_ok();
}

/* Post n event buffers (descriptor i -> EVBUF + 8 i) and kick. */
static void
post(unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		uint16_t i = avail_idx % QSIZE;

		vh_desc(&eq, i, EVBUF + 8u * i, 8, VIRTQ_DESC_F_WRITE, 0);
		vh_avail(&eq, &avail_idx, i);
	}
	mmio_wr(notify, 2, 0);
}

/* The next used event: type, code, value. */
static bool
next_event(uint16_t *type, uint16_t *code, int32_t *value)
{
	uint8_t *ev;
	uint32_t id, len;

	if (vh_used_idx(&eq) == used_seen)
		return false;
	vh_used_elem(&eq, used_seen, &id, &len);
	cr_assert_eq(len, 8);
	ev = ram(EVBUF + 8 * id, 8);
	memcpy(type, ev, 2);
	memcpy(code, ev + 2, 2);
	memcpy(value, ev + 4, 4);
	used_seen++;
	return true;
}

static void
want(uint16_t type, uint16_t code, int32_t value)
{
	uint16_t t, c;
	int32_t v;

	cr_assert(next_event(&t, &c, &v), "no event (wanted %u/%#x/%d)",
	    type, code, value);
	cr_assert(t == type && c == code && v == value, "event %u/%#x/%d, "
	    "wanted %u/%#x/%d", t, c, v, type, code, value);
}

static void
pointer(unsigned x, unsigned y, unsigned buttons, int wheel)
{
	struct virtio_input *vi = virtio_input_find(vm);

	pthread_mutex_lock(&vm->devlock);
	virtio_input_pointer(vi, x, y, buttons, wheel);
	pthread_mutex_unlock(&vm->devlock);
}

Test(virtio_input, pointer_reports_become_events)
{
	struct virtio_input *vi = virtio_input_find(vm);
	uint16_t t, c;
	int32_t v;

	cr_assert_not_null(vi);
	cr_assert_not(virtio_input_ready(vi));
	driver_init();
	cr_assert(virtio_input_ready(vi));
	post(QSIZE);
	pointer(100, 200, 0, 0);
	want(VIRTIO_INPUT_EV_ABS, VIRTIO_INPUT_ABS_X, 100);
	want(VIRTIO_INPUT_EV_ABS, VIRTIO_INPUT_ABS_Y, 200);
	want(VIRTIO_INPUT_EV_SYN, 0, 0);
	cr_assert_not(next_event(&t, &c, &v));
	/* Only what changed: a left press where it is. */
	pointer(100, 200, 1, 0);
	want(VIRTIO_INPUT_EV_KEY, VIRTIO_INPUT_BTN_LEFT, 1);
	want(VIRTIO_INPUT_EV_SYN, 0, 0);
	/* Move in Y, release left, press right, wheel towards the user. */
	pointer(100, 32767 + 5, 2, -1);
	want(VIRTIO_INPUT_EV_ABS, VIRTIO_INPUT_ABS_Y, 32767);
	want(VIRTIO_INPUT_EV_KEY, VIRTIO_INPUT_BTN_LEFT, 0);
	want(VIRTIO_INPUT_EV_KEY, VIRTIO_INPUT_BTN_LEFT + 1, 1);
	want(VIRTIO_INPUT_EV_REL, VIRTIO_INPUT_REL_WHEEL, -1);
	want(VIRTIO_INPUT_EV_SYN, 0, 0);
	/* Nothing new: no report at all. */
	pointer(100, 32767, 2, 0);
	cr_assert_not(next_event(&t, &c, &v));
}

Test(virtio_input, events_wait_for_buffers_and_overflow_drops_reports)
{
	uint16_t t, c;
	int32_t v;
	unsigned n = 0;

	driver_init();
	/* No buffers yet: reports wait (each 3 events with its SYN). */
	for (unsigned i = 0; i < 100; i++)
		pointer(i, i, 0, 0);
	cr_assert_not(next_event(&t, &c, &v));
	post(QSIZE);
	while (next_event(&t, &c, &v))
		n++;
	cr_assert_eq(n, QSIZE, "the queue's worth delivered");
	post(QSIZE);
	while (next_event(&t, &c, &v))
		n++;
	/* What was kept was whole reports: a multiple of 3 events. */
	cr_assert_eq(n % 3, 0, "%u events", n);
	cr_assert_lt(n, 300, "the overflow dropped reports");
	cr_assert_gt(n, QSIZE);
	/* The last report delivered ends in SYN; the next one is whole. */
	cr_assert_eq(t, VIRTIO_INPUT_EV_SYN);
	post(1);	/* 2 were left over: 3 for the next report */
	pointer(5000, 6000, 0, 0);
	want(VIRTIO_INPUT_EV_ABS, VIRTIO_INPUT_ABS_X, 5000);
	want(VIRTIO_INPUT_EV_ABS, VIRTIO_INPUT_ABS_Y, 6000);
	want(VIRTIO_INPUT_EV_SYN, 0, 0);
}

Test(virtio_input, reset_forgets_pending_events)
{
	uint16_t t, c;
	int32_t v;

	driver_init();
	pointer(1, 2, 0, 0);
	driver_init();		/* status 0 resets the device */
	avail_idx = used_seen = 0;
	post(8);
	cr_assert_not(next_event(&t, &c, &v), "stale events after reset");
	pointer(1, 2, 0, 0);
	want(VIRTIO_INPUT_EV_ABS, VIRTIO_INPUT_ABS_X, 1);
}

/* Is there a tablet in a VM with these vnc and display settings? */
static bool
has_tablet(const char *vnc, const char *display)
{
	struct vm *v2;
	struct vm_config c2;
	bool yes;
	int err;

	vm_config_defaults(&c2);
	c2.memory = RAM;
	if (vnc != NULL)
		snprintf(c2.vnc, sizeof(c2.vnc), "%s", vnc);
	if (display != NULL)
		snprintf(c2.display, sizeof(c2.display), "%s", display);
	v2 = vm_create(&c2, &null_accel_ops, &err);
	cr_assert_not_null(v2, "vm_create: %d", err);
	yes = virtio_input_find(v2) != NULL;
	vm_destroy(v2);
	return yes;
}

Test(virtio_input, there_by_default_absent_without_vnc)
{
	cr_assert(has_tablet(NULL, NULL), "VNC (auto) is the default");
	cr_assert_not(has_tablet("none", NULL));
	cr_assert_not(has_tablet(NULL, "none"), "no display: no VNC, no "
	    "tablet");
	cr_assert(has_tablet("unix:/x", "none"), "VNC asked for");
}
