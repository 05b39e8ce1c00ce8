/*
 * virtio-blk (virtio 1.x, device type 2): one PCI function per disk of
 * the VM's configuration (--disk), backed by the block layer (raw or
 * qcow2).  Requests run on a small pool of I/O threads, several at once;
 * they complete on the event thread under the device lock.
 *
 * Offered: SIZE_MAX, SEG_MAX, BLK_SIZE, FLUSH, and for
 * writable disks DISCARD and WRITE_ZEROES; RO for read-only disks (whose
 * writes, discards and zeroings fail with VIRTIO_BLK_S_IOERR).  GET_ID
 * returns the disk's serial.  MQ: one request queue per vCPU (at most
 * VIRTIO_MAX_QUEUES).
 */
#ifndef TV_VIRTIO_BLK_H
#define TV_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIRTIO_ID_BLOCK			2

#define VIRTIO_BLK_F_SIZE_MAX		1
#define VIRTIO_BLK_F_SEG_MAX		2
#define VIRTIO_BLK_F_RO			5
#define VIRTIO_BLK_F_BLK_SIZE		6
#define VIRTIO_BLK_F_FLUSH		9
#define VIRTIO_BLK_F_MQ			12
#define VIRTIO_BLK_F_DISCARD		13
#define VIRTIO_BLK_F_WRITE_ZEROES	14

#define VIRTIO_BLK_T_IN			0
#define VIRTIO_BLK_T_OUT		1
#define VIRTIO_BLK_T_FLUSH		4
#define VIRTIO_BLK_T_GET_ID		8
#define VIRTIO_BLK_T_DISCARD		11
#define VIRTIO_BLK_T_WRITE_ZEROES	13

#define VIRTIO_BLK_S_OK			0
#define VIRTIO_BLK_S_IOERR		1
#define VIRTIO_BLK_S_UNSUPP		2

#define VIRTIO_BLK_ID_BYTES		20
#define VIRTIO_BLK_SECTOR		512

/* Limits the device advertises (the discard/zeroes ones enforced). */
#define VIRTIO_BLK_SIZE_MAX		(1u << 20)	/* bytes per segment */
#define VIRTIO_BLK_MAX_DISCARD_SECTORS	(1u << 22)
#define VIRTIO_BLK_MAX_DISCARD_SEG	32

/* Device configuration offsets (struct virtio_blk_config). */
#define VIRTIO_BLK_CFG_CAPACITY		0x00
#define VIRTIO_BLK_CFG_SIZE_MAX		0x08
#define VIRTIO_BLK_CFG_SEG_MAX		0x0c
#define VIRTIO_BLK_CFG_BLK_SIZE		0x14
#define VIRTIO_BLK_CFG_NUM_QUEUES	0x22
#define VIRTIO_BLK_CFG_MAX_DISCARD	0x24
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG	0x28
#define VIRTIO_BLK_CFG_DISCARD_ALIGN	0x2c
#define VIRTIO_BLK_CFG_MAX_WZ		0x30
#define VIRTIO_BLK_CFG_MAX_WZ_SEG	0x34
#define VIRTIO_BLK_CFG_WZ_UNMAP		0x38
#define VIRTIO_BLK_CFG_SIZE		0x3c

struct device_ops;

/* The device class: one instance per configured disk. */
extern const struct device_ops virtio_blk_ops;

struct vm;
/* Snapshots of a running VM: disk index (its place in the
 * configuration) switches to the image at path, of format ("":
 * probe), from now on; the image it used goes to oldpath (may be
 * NULL).  The VM paused, device lock held.  0 or -errno, err set. */
int virtio_blk_reopen(struct vm *vm, int index, const char *path,
    const char *format, char *oldpath, size_t oldlen, char *err,
    size_t errlen);
struct blkdev;
/* A migration that copies the storage reads (source) or writes (a
 * destination not yet running) disk index through the device's own
 * handle, whose caches a second handle would not see.  NULL if none. */
struct blkdev *virtio_blk_blkdev(struct vm *vm, int index);
/* A live migration's hand-over of images both hosts open: the source
 * (paused) lets go of them and takes them back on failure, the
 * destination takes them, opened afresh (reopen), before the guest runs
 * there.  0 or -errno, err set (may be NULL). */
int virtio_blk_inactivate(struct vm *vm, char *err, size_t errlen);
int virtio_blk_activate(struct vm *vm, bool reopen, char *err,
    size_t errlen);

#endif
