/*
 * The block layer: one small interface that every disk image format
 * implements (raw.c, qcow2.c), so virtio-blk and `termvisor disk` call
 * the same functions whatever the file holds.
 *
 * All offsets and lengths are in bytes of the virtual disk.  Requests
 * must lie inside [0, length); anything else is -EINVAL (a guest that
 * asks for sector past the end gets an I/O error, as on QEMU).  Functions
 * return 0 or a negative errno.  A struct blkdev may be used from several
 * threads: each format serializes what needs it.
 */
#ifndef TV_BLKDEV_H
#define TV_BLKDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BLKDEV_RDONLY	0x1	/* open read-only: writes are -EROFS */
#define BLKDEV_NOLOCK	0x2	/* take no image lock (like qemu-img -U) */

/* Longest chain of backing files followed before giving up (loops). */
#define BLKDEV_MAX_CHAIN 16

struct blkdev;

struct blkdev_info {
	char format[8];			/* "raw", "qcow2" */
	uint64_t virtual_size;		/* bytes the guest sees */
	uint64_t disk_size;		/* bytes allocated on the host */
	uint32_t cluster_size;		/* 0 for raw */
	char backing[4096];		/* as stored in the image, "" if none */
	char backing_format[16];
	bool readonly;
};

struct blkdev_ops {
	const char *name;
	int (*pread)(struct blkdev *bd, void *buf, size_t len, uint64_t off);
	int (*pwrite)(struct blkdev *bd, const void *buf, size_t len,
	    uint64_t off);
	int (*flush)(struct blkdev *bd);
	int (*discard)(struct blkdev *bd, uint64_t off, uint64_t len);
	int (*write_zeroes)(struct blkdev *bd, uint64_t off, uint64_t len);
	/* optional (NULL: unknown); see blkdev_block_status */
	int (*block_status)(struct blkdev *bd, uint64_t off, uint64_t len,
	    uint64_t *n);
	void (*info)(struct blkdev *bd, struct blkdev_info *info);
	void (*close)(struct blkdev *bd);
};

struct blkdev_dirty;

/* Every format's private state starts with this. */
struct blkdev {
	const struct blkdev_ops *ops;
	char path[4096];
	uint64_t length;
	bool readonly;
	struct blkdev_dirty *dirty;	/* blkdev_dirty_start(), or NULL */
	int lock_fd;			/* the image's file (its locks) */
	bool locked;			/* holds its image locks */
};

/*
 * Open the image at path.  format is "raw", "qcow2", or NULL/"" to probe
 * (a file that starts with the qcow2 magic is qcow2, anything else raw).
 * flags: BLKDEV_RDONLY.  On failure returns -errno and, if err is not
 * NULL, writes a sentence naming the file and the problem into err.
 */
int blkdev_open(struct blkdev **out, const char *path, const char *format,
    unsigned flags, char *err, size_t errlen);
/* The images above a backing file being opened: no loops, no more than
 * BLKDEV_MAX_CHAIN of them. */
struct blkdev_chain {
	dev_t dev;
	ino_t ino;
	int depth;			/* 0: the top image */
	const struct blkdev_chain *up;
};

/* blkdev_open for a backing file of the images in up. */
int blkdev_open_chain(struct blkdev **out, const char *path,
    const char *format, unsigned flags, const struct blkdev_chain *up,
    char *err, size_t errlen);
struct vmcfg_disk;
/* Open a VM's disk as configured (format, readonly).  Like blkdev_open. */
int blkdev_open_disk(struct blkdev **out, const struct vmcfg_disk *d,
    char *err, size_t errlen);
/*
 * A live migration's hand-over of an image that both hosts see (QEMU's
 * inactive images): the source, paused and flushed, drops its image
 * locks so that the destination can take them, and takes them again if
 * the migration fails.  The destination opens its disks with
 * BLKDEV_NOLOCK and opens them afresh, locked, once the source let go.
 * blkdev_unlock: 0.  blkdev_relock: 0, or -EBUSY with err set when
 * another process took them meanwhile.  The backing files' shared read
 * locks are kept: readers on both sides agree.
 */
int blkdev_unlock(struct blkdev *bd);
int blkdev_relock(struct blkdev *bd, char *err, size_t errlen);
/* Guess the format of path: "qcow2" or "raw" into fmt.  0/-errno. */
int blkdev_probe(const char *path, char *fmt, size_t fmtlen);
void blkdev_close(struct blkdev *bd);

/* Read/write len bytes at off of the virtual disk.  0/-errno. */
/*
 * Whole-buffer file I/O for the formats: retries short transfers and
 * EINTR.  A read past the end of the file reads zeros (a truncated raw
 * image, a qcow2 data cluster left partly written at the end); a write
 * that makes no progress is -EIO.  0 or -errno.
 */
int blkdev_fd_pread(int fd, void *buf, size_t len, uint64_t off);
int blkdev_fd_pwrite(int fd, const void *buf, size_t len, uint64_t off);
int blkdev_pread(struct blkdev *bd, void *buf, size_t len, uint64_t off);
int blkdev_pwrite(struct blkdev *bd, const void *buf, size_t len,
    uint64_t off);
/* Make every completed write durable (the guest's FLUSH).  0/-errno. */
int blkdev_flush(struct blkdev *bd);
/* Advisory: the range's contents become unspecified.  0/-errno. */
int blkdev_discard(struct blkdev *bd, uint64_t off, uint64_t len);
/* The range reads back as zeros afterwards.  0/-errno. */
int blkdev_write_zeroes(struct blkdev *bd, uint64_t off, uint64_t len);
uint64_t blkdev_length(const struct blkdev *bd);

/*
 * What [off, off + *n) holds, for len > 0 (QEMU's bdrv_block_status),
 * so that a copier can skip holes without reading them:
 * BLKDEV_STATUS_DATA: stored data (read it; it may still be zeros);
 * BLKDEV_STATUS_ZERO: reads as zeros (a hole, a zero cluster, a qcow2
 * cluster that is unallocated down the whole backing chain);
 * BLKDEV_STATUS_UNKNOWN: the format cannot tell (treat as data).
 * *n is at least 1 and at most len: the range the answer holds for
 * (the next call continues at off + *n).  The status, or -errno.  A
 * write racing with the call may or may not be seen, as with a read.
 */
#define BLKDEV_STATUS_UNKNOWN	0
#define BLKDEV_STATUS_DATA	1
#define BLKDEV_STATUS_ZERO	2
int blkdev_block_status(struct blkdev *bd, uint64_t off, uint64_t len,
    uint64_t *n);
void blkdev_info(struct blkdev *bd, struct blkdev_info *info);

/*
 * Dirty tracking, for copying a disk while its guest writes it (a
 * migration that copies the storage too).  From blkdev_dirty_start() on,
 * every write, discard and write-zeroes, once done, sets the bit of each
 * chunk of 1 << shift bytes it touched (done first, then marked: a copier
 * that fetched the bits and then read the chunk sees the write in its
 * next fetch).  Any thread may write meanwhile.  Starting again clears
 * the bitmap.  0, -EINVAL (shift not 9 to 30, or not the shift of an
 * earlier start), -ENOMEM.
 */
int blkdev_dirty_start(struct blkdev *bd, unsigned shift);
/* Stop marking (the bitmap stays allocated until blkdev_close). */
void blkdev_dirty_stop(struct blkdev *bd);
/* Chunks the bitmap covers (0 when never started). */
uint64_t blkdev_dirty_chunks(const struct blkdev *bd);
/*
 * Move the bitmap into out (words: at least (chunks + 63) / 64) and
 * clear it, word by word.  The number of dirty chunks, or -ENOENT when
 * tracking was never started, -EINVAL when out is too small.
 */
int64_t blkdev_dirty_fetch(struct blkdev *bd, uint64_t *out, size_t words);

/*
 * Lock the image open on fd the way QEMU does (see blkdev.c), so that
 * two VMs, or a VM and qemu, never write one image, and nobody writes an
 * image that others read (the base of a snapshot).  0, or -EBUSY with a
 * sentence naming path in err.  The locks go with the fd's last close.
 */
int blkdev_lock_image(int fd, bool write, const char *path, char *err,
    size_t errlen);

/* printf into an error buffer that may be NULL; returns ret. */
int blkdev_err(int ret, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
