/*
 * The block layer's format-independent half: probing, bounds checks and
 * dispatch to raw.c or qcow2.c.
 */
#include "vmfs/blkdev.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/vmconfig.h"
#include "util/log.h"
#include "vmfs/qcow2.h"
#include "vmfs/raw.h"

int
blkdev_err(int ret, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return ret;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

/*
 * QEMU's image locking (file-posix), spoken byte for byte so that
 * termvisor and QEMU see each other: an OFD read lock on byte 100 + p
 * for each permission p an opener holds, and on byte 200 + p for each
 * permission it will not share.  p: 0 consistent read, 1 write,
 * 3 resize.  Before locking, an opener checks that nobody refuses to
 * share what it wants (200 + p) and that nobody holds what it refuses
 * to share (100 + p).  Writers hold read and write and share neither
 * write nor resize; readers hold read and share neither either (a base
 * image must not change under its overlays).
 */
#define BLKDEV_LOCK_PERM	100
#define BLKDEV_LOCK_SHARED	200
#define BLKDEV_PERM_READ	0
#define BLKDEV_PERM_WRITE	1
#define BLKDEV_PERM_RESIZE	3

/* Is byte off free of other openers' locks? */
static bool
blkdev_lock_free(int fd, off_t off)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
	    .l_start = off, .l_len = 1 };

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return true;	/* no locks here (some FUSE): do not refuse */
	return fl.l_type == F_UNLCK;
}

static int
blkdev_lock_byte(int fd, off_t off)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
	    .l_start = off, .l_len = 1 };

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0 || errno == EINVAL ||
	    errno == ENOLCK)
		return 0;
	return -errno;
}

int
blkdev_lock_image(int fd, bool write, const char *path, char *err,
    size_t errlen)
{
	static const int held[] = { BLKDEV_PERM_READ, BLKDEV_PERM_WRITE };
	size_t i, n = write ? 2 : 1;

	for (i = 0; i < n; i++)
		if (!blkdev_lock_free(fd, BLKDEV_LOCK_SHARED + held[i]))
			return blkdev_err(-EBUSY, err, errlen, "%s: image is in use "
			    "by another process that does not allow %s (a "
			    "running VM, or qemu?)", path, held[i] ? "writers" :
			    "readers");
	if (!blkdev_lock_free(fd, BLKDEV_LOCK_PERM + BLKDEV_PERM_WRITE) ||
	    !blkdev_lock_free(fd, BLKDEV_LOCK_PERM + BLKDEV_PERM_RESIZE))
		return blkdev_err(-EBUSY, err, errlen, "%s: image is being written "
		    "by another process (a running VM, or qemu?)", path);
	for (i = 0; i < n; i++)
		if (blkdev_lock_byte(fd, BLKDEV_LOCK_PERM + held[i]) < 0)
			goto busy;
	if (blkdev_lock_byte(fd, BLKDEV_LOCK_SHARED + BLKDEV_PERM_WRITE) < 0 ||
	    blkdev_lock_byte(fd, BLKDEV_LOCK_SHARED + BLKDEV_PERM_RESIZE) < 0)
		goto busy;
	return 0;
busy:
	return blkdev_err(-EBUSY, err, errlen, "%s: image is in use by another "
	    "process (a running VM, or qemu?)", path);
}

int
blkdev_unlock(struct blkdev *bd)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET,
	    .l_start = BLKDEV_LOCK_PERM,
	    .l_len = BLKDEV_LOCK_SHARED + 100 - BLKDEV_LOCK_PERM };

	if (!bd->locked)
		return 0;
	if (fcntl(bd->lock_fd, F_OFD_SETLK, &fl) < 0)
		log_warn("%s: cannot drop the image's locks", bd->path);
	bd->locked = false;
	return 0;
}

int
blkdev_relock(struct blkdev *bd, char *err, size_t errlen)
{
	int r;

	if (bd->locked)
		return 0;
	if ((r = blkdev_lock_image(bd->lock_fd, !bd->readonly, bd->path, err,
	    errlen)) < 0)
		return r;
	bd->locked = true;
	return 0;
}

int
blkdev_probe(const char *path, char *fmt, size_t fmtlen)
{
	unsigned char magic[4];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, magic, sizeof(magic), 0);
	close(fd);
	if (n < 0)
		return -errno;
	snprintf(fmt, fmtlen, "%s", n == 4 && memcmp(magic, "QFI\xfb", 4) == 0 ?
	    "qcow2" : "raw");
	return 0;
}

int
blkdev_open_chain(struct blkdev **out, const char *path, const char *format,
    unsigned flags, const struct blkdev_chain *up, char *err, size_t errlen)
{
	char probed[8];
	int ret;

	*out = NULL;
	if (up != NULL && up->depth + 1 >= BLKDEV_MAX_CHAIN)
		return blkdev_err(-ELOOP, err, errlen, "%s: backing chain longer "
		    "than %d images (a loop?)", path, BLKDEV_MAX_CHAIN);
	if (format == NULL || format[0] == '\0') {
		ret = blkdev_probe(path, probed, sizeof(probed));
		if (ret < 0)
			return blkdev_err(ret, err, errlen, "%s: %s", path,
			    strerror(-ret));
		format = probed;
	}
	if (strcmp(format, "raw") == 0)
		return raw_open(out, path, flags, err, errlen);
	if (strcmp(format, "qcow2") == 0)
		return qcow2_open(out, path, flags, up, err, errlen);
	return blkdev_err(-EINVAL, err, errlen, "%s: unknown disk format '%s' "
	    "(expected raw or qcow2)", path, format);
}

int
blkdev_open(struct blkdev **out, const char *path, const char *format,
    unsigned flags, char *err, size_t errlen)
{
	return blkdev_open_chain(out, path, format, flags, NULL, err, errlen);
}

int
blkdev_open_disk(struct blkdev **out, const struct vmcfg_disk *d, char *err,
    size_t errlen)
{
	return blkdev_open(out, d->path, d->format,
	    d->readonly ? BLKDEV_RDONLY : 0, err, errlen);
}

struct blkdev_dirty {
	uint64_t *bits;
	uint64_t chunks;
	unsigned shift;
	bool on;
};

void
blkdev_close(struct blkdev *bd)
{
	if (bd == NULL)
		return;
	if (bd->dirty != NULL) {
		free(bd->dirty->bits);
		free(bd->dirty);
	}
	bd->ops->close(bd);
}

int
blkdev_dirty_start(struct blkdev *bd, unsigned shift)
{
	struct blkdev_dirty *d = bd->dirty;
	uint64_t chunks;

	if (shift < 9 || shift > 30)
		return -EINVAL;
	chunks = (bd->length + (1ull << shift) - 1) >> shift;
	if (d != NULL && d->shift != shift)
		return -EINVAL;		/* one bitmap, one chunk size */
	if (d == NULL) {
		if ((d = calloc(1, sizeof(*d))) == NULL ||
		    (d->bits = calloc((chunks + 63) / 64 + 1,
		    sizeof(uint64_t))) == NULL) {
			free(d);
			return -ENOMEM;
		}
		d->chunks = chunks;
		d->shift = shift;
		__atomic_store_n(&bd->dirty, d, __ATOMIC_RELEASE);
	}
	for (uint64_t w = 0; w < (chunks + 63) / 64; w++)
		__atomic_store_n(&d->bits[w], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&d->on, true, __ATOMIC_RELEASE);
	return 0;
}

void
blkdev_dirty_stop(struct blkdev *bd)
{
	if (bd->dirty != NULL)
		__atomic_store_n(&bd->dirty->on, false, __ATOMIC_RELEASE);
}

uint64_t
blkdev_dirty_chunks(const struct blkdev *bd)
{
	return bd->dirty != NULL ? bd->dirty->chunks : 0;
}

int64_t
blkdev_dirty_fetch(struct blkdev *bd, uint64_t *out, size_t words)
{
	struct blkdev_dirty *d = bd->dirty;
	int64_t n = 0;

	if (d == NULL)
		return -ENOENT;
	if (words < (d->chunks + 63) / 64)
		return -EINVAL;
	for (uint64_t w = 0; w < (d->chunks + 63) / 64; w++) {
		out[w] = __atomic_exchange_n(&d->bits[w], 0, __ATOMIC_ACQ_REL);
		n += __builtin_popcountll(out[w]);
	}
	return n;
}

/* After a write to [off, off + len): mark its chunks, if tracking. */
static void
blkdev_dirty_mark(struct blkdev *bd, uint64_t off, uint64_t len)
{
	struct blkdev_dirty *d = __atomic_load_n(&bd->dirty, __ATOMIC_ACQUIRE);

	if (d == NULL || len == 0 || !__atomic_load_n(&d->on, __ATOMIC_ACQUIRE))
		return;
	for (uint64_t c = off >> d->shift; c <= (off + len - 1) >> d->shift &&
	    c < d->chunks; c++)
		__atomic_fetch_or(&d->bits[c / 64], 1ull << (c % 64),
		    __ATOMIC_RELEASE);
}

static int
blkdev_check(const struct blkdev *bd, uint64_t len, uint64_t off)
{
	if (off > bd->length || len > bd->length - off)
		return -EINVAL;
	return 0;
}

int
blkdev_pread(struct blkdev *bd, void *buf, size_t len, uint64_t off)
{
	int ret = blkdev_check(bd, len, off);

	if (ret < 0 || len == 0)
		return ret;
	return bd->ops->pread(bd, buf, len, off);
}

int
blkdev_pwrite(struct blkdev *bd, const void *buf, size_t len, uint64_t off)
{
	int ret = blkdev_check(bd, len, off);

	if (ret < 0 || len == 0)
		return ret;
	if (bd->readonly)
		return -EROFS;
	ret = bd->ops->pwrite(bd, buf, len, off);
	/* Even a failed write may have changed part of the range. */
	blkdev_dirty_mark(bd, off, len);
	return ret;
}

int
blkdev_flush(struct blkdev *bd)
{
	if (bd->readonly)
		return 0;
	return bd->ops->flush(bd);
}

int
blkdev_discard(struct blkdev *bd, uint64_t off, uint64_t len)
{
	int ret = blkdev_check(bd, len, off);

	if (ret < 0 || len == 0)
		return ret;
	if (bd->readonly)
		return -EROFS;
	ret = bd->ops->discard(bd, off, len);
	blkdev_dirty_mark(bd, off, len);
	return ret;
}

int
blkdev_write_zeroes(struct blkdev *bd, uint64_t off, uint64_t len)
{
	int ret = blkdev_check(bd, len, off);

	if (ret < 0 || len == 0)
		return ret;
	if (bd->readonly)
		return -EROFS;
	ret = bd->ops->write_zeroes(bd, off, len);
	blkdev_dirty_mark(bd, off, len);
	return ret;
}

uint64_t
blkdev_length(const struct blkdev *bd)
{
	return bd->length;
}

int
blkdev_block_status(struct blkdev *bd, uint64_t off, uint64_t len,
    uint64_t *n)
{
	int ret = blkdev_check(bd, len, off);

	*n = 0;
	if (ret == 0 && len == 0)
		ret = -EINVAL;
	if (ret < 0)
		return ret;
	if (bd->ops->block_status == NULL) {
		*n = len;
		return BLKDEV_STATUS_UNKNOWN;
	}
	ret = bd->ops->block_status(bd, off, len, n);
	if (ret >= 0 && (*n == 0 || *n > len))
		fatalx("%s: block status answered for %llu bytes of %llu",
		    bd->path, (unsigned long long)*n, (unsigned long long)len);
	return ret;
}

void
blkdev_info(struct blkdev *bd, struct blkdev_info *info)
{
	memset(info, 0, sizeof(*info));
	info->virtual_size = bd->length;
	info->readonly = bd->readonly;
	bd->ops->info(bd, info);
}

int
blkdev_fd_pread(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			memset(p, 0, len);
			return 0;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int
blkdev_fd_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}
