/*
 * virtio-rng, the entropy device (virtio 1.x, device type 4, PCI device
 * 0x1044): one queue, "requestq", whose device-writable buffers the
 * device fills with bytes from the host's getrandom(2).  Guests get no
 * RDRAND from the software CPU, and a PVH boot carries no RNG seed, so
 * without this device a guest's CRNG waits on jitter entropy.
 *
 * Present on every VM unless vm_config.rng is "off" (`rng = "off"` in a
 * .vmx file, `termvisor run --rng off`).  No device configuration, no
 * device state beyond the transport's.
 */
#ifndef TV_VIRTIO_RNG_H
#define TV_VIRTIO_RNG_H

#include <stdbool.h>
#include <stdint.h>

struct device_ops;
struct virtio_rng;
struct vm;
struct vm_config;

#define VIRTIO_ID_RNG		4
/* The most one request gets, however big the guest's buffers. */
#define VIRTIO_RNG_REQ_MAX	(64u << 10)

extern const struct device_ops virtio_rng_ops;

/* Does cfg ask for the device (rng other than "off")? */
bool virtio_rng_wanted(const struct vm_config *cfg);

/* The VM's virtio-rng, or NULL if it has none. */
struct virtio_rng *virtio_rng_find(struct vm *vm);

/* Bytes handed to the guest so far (any thread, relaxed). */
uint64_t virtio_rng_bytes(const struct virtio_rng *vr);

#endif
