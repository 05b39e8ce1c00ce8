/*
 * raw images.  The virtual disk is the file, its length the file's size
 * at open.  Requests past that length are refused by blkdev.c.  If the
 * file shrinks while open (someone truncated it), reads past the new end
 * return zeros, as QEMU's file driver does: the guest sees a hole rather
 * than an error it cannot explain, and nothing beyond EOF is invented.
 */
#include "vmfs/raw.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmfs/blkdev.h"

#ifndef FALLOC_FL_PUNCH_HOLE
#include <linux/falloc.h>
#endif

struct raw {
	struct blkdev bd;
	int fd;
};

static int
raw_pread(struct blkdev *bd, void *buf, size_t len, uint64_t off)
{
	return blkdev_fd_pread(((struct raw *)bd)->fd, buf, len, off);
}

static int
raw_pwrite(struct blkdev *bd, const void *buf, size_t len, uint64_t off)
{
	return blkdev_fd_pwrite(((struct raw *)bd)->fd, buf, len, off);
}

static int
raw_flush(struct blkdev *bd)
{
	struct raw *r = (struct raw *)bd;

	return fdatasync(r->fd) < 0 ? -errno : 0;
}

/* Zero through a bounded buffer when the filesystem cannot punch. */
static int
raw_zero_slow(struct blkdev *bd, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[65536];
	size_t n;
	int ret;

	while (len > 0) {
		n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		ret = raw_pwrite(bd, zeros, n, off);
		if (ret < 0)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

static int
raw_write_zeroes(struct blkdev *bd, uint64_t off, uint64_t len)
{
	struct raw *r = (struct raw *)bd;

	if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	    (off_t)off, (off_t)len) == 0)
		return 0;
	return raw_zero_slow(bd, off, len);
}

/* A punched hole reads as zeros, so discard is write_zeroes that may
 * quietly do nothing where the filesystem cannot punch. */
static int
raw_discard(struct blkdev *bd, uint64_t off, uint64_t len)
{
	struct raw *r = (struct raw *)bd;

	(void)fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	    (off_t)off, (off_t)len);
	return 0;
}

/*
 * The file's holes, as the filesystem knows them (SEEK_DATA/SEEK_HOLE).
 * Where it cannot say (EINVAL, ENOTSUP: an old filesystem, some block
 * devices), everything is data.  Past the file's end (a file truncated
 * underneath) reads are zeros.
 */
static int
raw_block_status(struct blkdev *bd, uint64_t off, uint64_t len, uint64_t *n)
{
	struct raw *r = (struct raw *)bd;
	off_t d, h;

	*n = len;
	d = lseek(r->fd, (off_t)off, SEEK_DATA);
	if (d < 0 && errno == ENXIO)
		return BLKDEV_STATUS_ZERO;	/* a hole up to the end */
	if (d < 0)
		return BLKDEV_STATUS_DATA;
	if ((uint64_t)d > off) {
		if ((uint64_t)d - off < len)
			*n = (uint64_t)d - off;
		return BLKDEV_STATUS_ZERO;
	}
	h = lseek(r->fd, (off_t)off, SEEK_HOLE);
	if (h >= 0 && (uint64_t)h > off && (uint64_t)h - off < len)
		*n = (uint64_t)h - off;
	return BLKDEV_STATUS_DATA;
}

static void
raw_info(struct blkdev *bd, struct blkdev_info *info)
{
	struct raw *r = (struct raw *)bd;
	struct stat st;

	snprintf(info->format, sizeof(info->format), "raw");
	if (fstat(r->fd, &st) == 0)
		info->disk_size = (uint64_t)st.st_blocks * 512;
}

static void
raw_close(struct blkdev *bd)
{
	struct raw *r = (struct raw *)bd;

	close(r->fd);
	free(r);
}

static const struct blkdev_ops raw_ops = {
	.name = "raw",
	.pread = raw_pread,
	.pwrite = raw_pwrite,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.block_status = raw_block_status,
	.info = raw_info,
	.close = raw_close,
};

int
raw_open(struct blkdev **out, const char *path, unsigned flags, char *err,
    size_t errlen)
{
	bool ro = (flags & BLKDEV_RDONLY) != 0;
	struct raw *r;
	struct stat st;
	int ret;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return blkdev_err(-ENOMEM, err, errlen, "%s: out of memory", path);
	r->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (r->fd < 0) {
		ret = -errno;
		blkdev_err(ret, err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(r->fd, &st) < 0 || !(S_ISREG(st.st_mode) ||
	    S_ISBLK(st.st_mode))) {
		ret = blkdev_err(-EINVAL, err, errlen, "%s: not a regular file "
		    "or block device", path);
		goto fail;
	}
	if (!(flags & BLKDEV_NOLOCK) &&
	    (ret = blkdev_lock_image(r->fd, !ro, path, err, errlen)) < 0)
		goto fail;
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(r->fd, 0, SEEK_END);

		st.st_size = end < 0 ? 0 : end;
	}
	r->bd.ops = &raw_ops;
	r->bd.length = (uint64_t)st.st_size;
	r->bd.readonly = ro;
	r->bd.lock_fd = r->fd;
	r->bd.locked = !(flags & BLKDEV_NOLOCK);
	snprintf(r->bd.path, sizeof(r->bd.path), "%s", path);
	*out = &r->bd;
	return 0;
fail:
	if (r->fd >= 0)
		close(r->fd);
	free(r);
	return ret;
}

int
raw_create(const char *path, uint64_t size, char *err, size_t errlen)
{
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return blkdev_err(-errno, err, errlen, "%s: %s", path,
		    strerror(errno));
	if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0) {
		ret = blkdev_err(-errno, err, errlen, "%s: %s", path,
		    strerror(errno));
		unlink(path);
	}
	close(fd);
	return ret;
}
