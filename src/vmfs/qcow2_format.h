/*
 * The qcow2 on-disk format, shared by the driver (qcow2.c), image
 * creation (qcow2_create.c) and the checker (qcow2_check.c).  Numbers
 * from QEMU's docs/interop/qcow2.txt.  All fields are big-endian.
 */
#ifndef TV_QCOW2_FORMAT_H
#define TV_QCOW2_FORMAT_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define QCOW2_MAGIC		0x514649fbu
#define QCOW2_HDR_V3		104
#define QCOW2_OFF_MASK		0x00fffffffffffe00ull
#define QCOW2_COPIED		(1ull << 63)
#define QCOW2_COMPRESSED	(1ull << 62)
#define QCOW2_ZERO		1ull
#define QCOW2_L1_RESERVED	(~(QCOW2_OFF_MASK | QCOW2_COPIED))
#define QCOW2_L2_RESERVED	(~(QCOW2_OFF_MASK | QCOW2_COPIED | \
				    QCOW2_COMPRESSED | QCOW2_ZERO))
#define QCOW2_RT_RESERVED	0x1ffull

#define QCOW2_EXT_END		0
#define QCOW2_EXT_BACKING_FMT	0xe2792acau

#define QCOW2_INCOMPAT_DIRTY	(1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT	(1ull << 1)
#define QCOW2_INCOMPAT_DATAFILE	(1ull << 2)
#define QCOW2_INCOMPAT_COMPRTYPE (1ull << 3)
#define QCOW2_INCOMPAT_KNOWN	(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | \
				    QCOW2_INCOMPAT_COMPRTYPE)

#define QCOW2_MAX_L1_BYTES	(32u << 20)	/* as QEMU */
#define QCOW2_MAX_RT_BYTES	(8u << 20)
#define QCOW2_MAX_BACKING_NAME	1023

static inline uint32_t
qcow2_format_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static inline uint64_t
qcow2_format_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static inline void
qcow2_format_put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

static inline void
qcow2_format_put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

/* Refcount entry i of block b, for refcounts of bits (1..64) bits:
 * sub-byte entries are packed least significant bits first. */
static inline uint64_t
qcow2_format_rc_get(const uint8_t *b, uint64_t i, unsigned bits)
{
	uint64_t bit = i * bits;

	switch (bits) {
	case 8:
		return b[i];
	case 16:
		return (uint64_t)b[2 * i] << 8 | b[2 * i + 1];
	case 32:
		return qcow2_format_get32(b + 4 * i);
	case 64:
		return qcow2_format_get64(b + 8 * i);
	default:
		return (b[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
	}
}

/* Store v as refcount entry i of block b; *boff, *blen: the bytes that
 * changed, for writing them back. */
static inline void
qcow2_format_rc_put(uint8_t *b, uint64_t i, unsigned bits, uint64_t v,
    size_t *boff, size_t *blen)
{
	uint64_t bit = i * bits, max = (1ull << (bits & 63)) - 1;

	*boff = bit / 8;
	*blen = bits < 8 ? 1 : bits / 8;
	switch (bits) {
	case 8:
		b[i] = (uint8_t)v;
		break;
	case 16:
		b[2 * i] = (uint8_t)(v >> 8);
		b[2 * i + 1] = (uint8_t)v;
		break;
	case 32:
		qcow2_format_put32(b + 4 * i, (uint32_t)v);
		break;
	case 64:
		qcow2_format_put64(b + 8 * i, v);
		break;
	default:
		b[bit / 8] = (uint8_t)((b[bit / 8] & ~(max << (bit % 8))) |
		    (v << (bit % 8)));
		break;
	}
}

#endif
