/*
 * raw disk images: the file is the disk.
 */
#ifndef TV_RAW_H
#define TV_RAW_H

#include <stddef.h>
#include <stdint.h>

#include "vmfs/blkdev.h"

/* Open path as a raw image (flags: BLKDEV_RDONLY).  0/-errno, err set. */
int raw_open(struct blkdev **out, const char *path, unsigned flags,
    char *err, size_t errlen);
/* Create a sparse raw image of size bytes; refuses an existing file. */
int raw_create(const char *path, uint64_t size, char *err, size_t errlen);

#endif
