/*
 * virtio-input (virtio 1.x, device type 18) as an absolute pointer: a
 * tablet with ABS_X/ABS_Y over 0..VIRTIO_INPUT_ABS_MAX, left, right,
 * middle, side and extra buttons and a wheel, so the guest's pointer is
 * where the VNC client's is.  Created when the VM serves its display
 * over VNC (vm_config.vnc other than "none").
 *
 * Queue 0 (eventq) carries struct virtio_input_event to the driver;
 * queue 1 (statusq) brings LED and similar events back, which are
 * consumed and ignored.  Events wait in a small queue while the driver
 * has no buffers posted; if it overflows, whole reports are dropped
 * (the next report carries the absolute position again).
 */
#ifndef TV_VIRTIO_INPUT_H
#define TV_VIRTIO_INPUT_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct device_ops;
struct virtio_input;

#define VIRTIO_ID_INPUT			18

/* Device configuration (virtio spec 5.8.4). */
#define VIRTIO_INPUT_CFG_UNSET		0x00
#define VIRTIO_INPUT_CFG_ID_NAME	0x01
#define VIRTIO_INPUT_CFG_ID_SERIAL	0x02
#define VIRTIO_INPUT_CFG_ID_DEVIDS	0x03
#define VIRTIO_INPUT_CFG_PROP_BITS	0x10
#define VIRTIO_INPUT_CFG_EV_BITS	0x11
#define VIRTIO_INPUT_CFG_ABS_INFO	0x12
#define VIRTIO_INPUT_CFG_SIZE		136	/* select..union of 128 */

/* Linux input event codes the tablet uses. */
#define VIRTIO_INPUT_EV_SYN		0x00
#define VIRTIO_INPUT_EV_KEY		0x01
#define VIRTIO_INPUT_EV_REL		0x02
#define VIRTIO_INPUT_EV_ABS		0x03
#define VIRTIO_INPUT_REL_WHEEL		0x08
#define VIRTIO_INPUT_ABS_X		0x00
#define VIRTIO_INPUT_ABS_Y		0x01
#define VIRTIO_INPUT_BTN_LEFT		0x110	/* then RIGHT, MIDDLE, SIDE, EXTRA */
#define VIRTIO_INPUT_ABS_MAX		32767

extern const struct device_ops virtio_input_ops;

/* The VM's tablet, or NULL if it has none. */
struct virtio_input *virtio_input_find(struct vm *vm);

/* Has the guest's driver set the device up (so events reach it)? */
bool virtio_input_ready(const struct virtio_input *vi);

/*
 * The pointer is at (x, y) in 0..VIRTIO_INPUT_ABS_MAX, with buttons
 * down (bit 0 left, 1 right, 2 middle, 3 side, 4 extra) and wheel
 * notches (> 0 away from the user).  Sends what changed since the last
 * call, then a SYN_REPORT.  Device lock held.
 */
void virtio_input_pointer(struct virtio_input *vi, unsigned x, unsigned y,
    unsigned buttons, int wheel);

#endif
