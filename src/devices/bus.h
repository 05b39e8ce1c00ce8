/*
 * One range map for port I/O and one for MMIO, with one handler signature
 * (kvmtool style).  Ranges are kept sorted; an overlapping registration is
 * refused (bhyve).  An access nobody claims reads as all-ones and a write
 * to it is dropped, with a rate-limited debug log: a guest mistake is
 * never fatal.
 */
#ifndef TV_BUS_H
#define TV_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct vcpu;

/*
 * A device's handler.  off is relative to the start of the registered
 * range; data holds len (1, 2, 4 or 8) little-endian bytes, to be filled
 * on a read.  vcpu may be NULL when the access does not come from a vCPU
 * (tests, DMA helpers).
 */
typedef void bus_io_fn(struct vcpu *vcpu, uint64_t off, uint8_t *data,
    unsigned len, bool is_write, void *opaque);

struct bus;

struct bus *bus_new(const char *name);
void bus_free(struct bus *b);
/* Claim [base, base+len); -EEXIST if it overlaps a claimed range. */
int bus_register(struct bus *b, uint64_t base, uint64_t len,
    bus_io_fn *fn, void *opaque, const char *name);
/* Release the range that starts at base; -ENOENT if none. */
int bus_unregister(struct bus *b, uint64_t base);
/* Dispatch one access; returns true if a device claimed it. */
bool bus_access(struct bus *b, struct vcpu *vcpu, uint64_t addr,
    uint8_t *data, unsigned len, bool is_write);
/* Name of the range covering addr, or NULL (for logs and tests). */
const char *bus_lookup_name(struct bus *b, uint64_t addr);

/* Little-endian helpers for handlers. */
static inline uint64_t
bus_get(const uint8_t *d, unsigned len)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < len && i < 8; i++)
		v |= (uint64_t)d[i] << (8 * i);
	return v;
}

static inline void
bus_put(uint8_t *d, unsigned len, uint64_t v)
{
	for (unsigned i = 0; i < len && i < 8; i++)
		d[i] = (uint8_t)(v >> (8 * i));
}

#endif
