/*
 * qcow2 version 3 images (QEMU's docs/interop/qcow2.txt is the contract;
 * `qemu-img check` the judge).
 */
#ifndef TV_QCOW2_H
#define TV_QCOW2_H

#include <stddef.h>
#include <stdint.h>

#include "vmfs/blkdev.h"

struct qcow2_create_opts {
	uint32_t cluster_size;		/* 0: 64 KiB */
	uint32_t refcount_bits;		/* 0: 16 */
	const char *backing;		/* stored as given; NULL: none */
	const char *backing_format;	/* NULL: probed */
};

struct qcow2_check_result {
	uint64_t leaks;			/* clusters counted but unused */
	uint64_t repaired;		/* leaks fixed (qcow2_check_repair) */
	uint64_t errors;		/* refcount too low, bad entries */
	uint64_t allocated;		/* data clusters in use */
	uint64_t total;			/* guest clusters */
};

/*
 * Open path as qcow2 (flags: BLKDEV_RDONLY, BLKDEV_NOLOCK; up: the
 * images it is a backing file of, or NULL).  Every piece of metadata is
 * validated before use and nothing is written on open, so a refused
 * image is left byte-identical.  0/-errno with a sentence in err.
 */
int qcow2_open(struct blkdev **out, const char *path, unsigned flags,
    const struct blkdev_chain *up, char *err, size_t errlen);
/*
 * Create a qcow2 v3 image of size bytes (0 with a backing file: the
 * backing file's size).  Refuses an existing file.  0/-errno, err set.
 */
int qcow2_create(const char *path, uint64_t size,
    const struct qcow2_create_opts *o, char *err, size_t errlen);
/* Where an open qcow2 image keeps its tables (for qcow2_check). */
struct qcow2_geometry {
	uint64_t cluster_size, size;
	uint64_t l1_offset, rt_offset;
	uint32_t l1_size, rt_clusters, nb_snapshots;
	unsigned cluster_bits, refcount_bits;
};

/* Fill g from an open image; -EINVAL if bd is not qcow2. */
int qcow2_geometry(struct blkdev *bd, struct qcow2_geometry *g);

/*
 * Walk all metadata of an open qcow2 image and compare the refcounts it
 * stores with the references it holds, reading the file afresh (not
 * the driver's caches).  Each problem is passed to report (may be NULL)
 * as one sentence.  0 when the walk completed (see res), -errno when it
 * could not (-ENOTSUP: internal snapshots are not walked).
 */
int qcow2_check(struct blkdev *bd, struct qcow2_check_result *res,
    void (*report)(void *opaque, const char *msg), void *opaque);
/*
 * qcow2_check, and lower each leaked cluster's refcount to the number of
 * references it has (what `qemu-img check -r leaks` does), so the space
 * is used again.  bd must be open read-only (its lock keeps writers
 * away; this writes the refcounts through a descriptor of its own).
 * Errors are reported, not repaired.  0/-errno.
 */
int qcow2_check_repair(struct blkdev *bd, struct qcow2_check_result *res,
    void (*report)(void *opaque, const char *msg), void *opaque);

#endif
