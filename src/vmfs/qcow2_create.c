/*
 * Creating qcow2 v3 images: the layout `qemu-img create` also uses
 * (header, refcount table, refcount blocks, L1 table, in that order),
 * every cluster counted, written in one go and fsync'd.
 */
#include "vmfs/qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmfs/blkdev.h"
#include "vmfs/qcow2_format.h"

#define QCOW2_HDR_OURS		112	/* v3 header with compression_type */

#define QCOW2_BAD(...) blkdev_err(-EINVAL, err, errlen, __VA_ARGS__)

struct qcow2_create_layout {
	uint64_t cs, size, l1_size, l1c, rtc, rbc, rbe;
	unsigned cluster_bits, rc_order;
};

static int
qcow2_create_plan(struct qcow2_create_layout *l,
    const struct qcow2_create_opts *o, uint64_t size)
{
	uint64_t per_l2, n, rbc, rtc;

	l->cs = o->cluster_size ? o->cluster_size : 65536;
	if (l->cs < 512 || l->cs > (2u << 20) || (l->cs & (l->cs - 1)))
		return -EINVAL;
	n = o->refcount_bits ? o->refcount_bits : 16;
	if (n > 64 || (n & (n - 1)))
		return -EINVAL;
	l->cluster_bits = (unsigned)__builtin_ctzll(l->cs);
	l->rc_order = (unsigned)__builtin_ctzll(n);
	l->rbe = l->cs * 8 / n;
	per_l2 = l->cs * (l->cs / 8);
	l->size = size;
	l->l1_size = size / per_l2 + (size % per_l2 != 0);
	if (l->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return -EFBIG;
	l->l1c = (l->l1_size * 8 + l->cs - 1) / l->cs;
	if (l->l1c == 0)
		l->l1c = 1;
	l->rtc = l->rbc = 1;
	for (;;) {
		n = 1 + l->rtc + l->rbc + l->l1c;
		rbc = (n + l->rbe - 1) / l->rbe;
		rtc = (rbc * 8 + l->cs - 1) / l->cs;
		if (rbc == l->rbc && rtc == l->rtc)
			return 0;
		l->rbc = rbc;
		l->rtc = rtc;
	}
}

/* Header, extensions and backing name into cluster 0 of img. */
static int
qcow2_create_header(uint8_t *img, const struct qcow2_create_layout *l,
    const struct qcow2_create_opts *o)
{
	size_t pos = QCOW2_HDR_OURS, blen, flen;

	qcow2_format_put32(img, QCOW2_MAGIC);
	qcow2_format_put32(img + 4, 3);
	qcow2_format_put32(img + 20, l->cluster_bits);
	qcow2_format_put64(img + 24, l->size);
	qcow2_format_put32(img + 36, (uint32_t)l->l1_size);
	qcow2_format_put64(img + 40, (1 + l->rtc + l->rbc) * l->cs);
	qcow2_format_put64(img + 48, l->cs);
	qcow2_format_put32(img + 56, (uint32_t)l->rtc);
	qcow2_format_put32(img + 96, l->rc_order);
	qcow2_format_put32(img + 100, QCOW2_HDR_OURS);
	if (o->backing == NULL)
		return 0;
	blen = strlen(o->backing);
	flen = o->backing_format ? strlen(o->backing_format) : 0;
	if (blen == 0 || blen > QCOW2_MAX_BACKING_NAME || flen >= 16 ||
	    QCOW2_HDR_OURS + 16 + 8 + blen + 8 > l->cs)
		return -ENAMETOOLONG;
	if (flen > 0) {
		qcow2_format_put32(img + pos, QCOW2_EXT_BACKING_FMT);
		qcow2_format_put32(img + pos + 4, (uint32_t)flen);
		memcpy(img + pos + 8, o->backing_format, flen);
		pos += 8 + ((flen + 7) & ~(size_t)7);
	}
	pos += 8;	/* end of extensions: zeros */
	memcpy(img + pos, o->backing, blen);
	qcow2_format_put64(img + 8, pos);
	qcow2_format_put32(img + 16, (uint32_t)blen);
	return 0;
}

/* Set refcount entry i of block b to 1 (entries are big-endian, or
 * packed least significant bits first below 8 bits). */
static void
qcow2_create_rc_one(uint8_t *b, uint64_t i, unsigned bits)
{
	uint64_t bit = i * bits;

	if (bits < 8)
		b[bit / 8] |= (uint8_t)(1u << (bit % 8));
	else
		b[(bit + bits) / 8 - 1] = 1;
}

static void
qcow2_create_refcounts(uint8_t *img, const struct qcow2_create_layout *l)
{
	uint64_t total = 1 + l->rtc + l->rbc + l->l1c, c, r;

	for (r = 0; r < l->rbc; r++)
		qcow2_format_put64(img + l->cs + 8 * r, (1 + l->rtc + r) * l->cs);
	for (c = 0; c < total; c++)
		qcow2_create_rc_one(img + (1 + l->rtc + c / l->rbe) * l->cs,
		    c % l->rbe, 1u << l->rc_order);
}

/* Size of the backing file for an overlay that does not give one. */
static int
qcow2_create_backing_size(const char *path, const struct qcow2_create_opts *o,
    uint64_t *size, char *err, size_t errlen)
{
	char full[8192], dir[4096], sub[1024];
	struct blkdev *b;
	int ret;

	snprintf(dir, sizeof(dir), "%s", path);
	if (o->backing[0] == '/')
		snprintf(full, sizeof(full), "%s", o->backing);
	else
		snprintf(full, sizeof(full), "%s/%s", dirname(dir), o->backing);
	ret = blkdev_open(&b, full, o->backing_format, BLKDEV_RDONLY, sub,
	    sizeof(sub));
	if (ret < 0)
		return blkdev_err(ret, err, errlen, "%s: backing file: %s", path,
		    sub);
	if (*size == 0)
		*size = blkdev_length(b);
	blkdev_close(b);
	return 0;
}

int
qcow2_create(const char *path, uint64_t size,
    const struct qcow2_create_opts *o, char *err, size_t errlen)
{
	static const struct qcow2_create_opts none;
	struct qcow2_create_layout l;
	uint8_t *img = NULL;
	uint64_t total;
	int fd = -1, ret;

	if (o == NULL)
		o = &none;
	if (o->backing != NULL && size == 0 &&
	    (ret = qcow2_create_backing_size(path, o, &size, err, errlen)) < 0)
		return ret;
	size = (size + 511) & ~511ull;	/* whole sectors, as qemu-img does */
	if ((ret = qcow2_create_plan(&l, o, size)) < 0)
		return QCOW2_BAD("%s: bad options (cluster size a power of two in "
		    "512..2M, refcount bits a power of two up to 64, size under "
		    "the L1 limit)", path);
	total = 1 + l.rtc + l.rbc + l.l1c;
	img = calloc(total, l.cs);
	if (img == NULL)
		return blkdev_err(-ENOMEM, err, errlen, "%s: out of memory", path);
	if ((ret = qcow2_create_header(img, &l, o)) < 0) {
		QCOW2_BAD("%s: backing file name too long", path);
		goto out;
	}
	qcow2_create_refcounts(img, &l);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = blkdev_err(-errno, err, errlen, "%s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (pwrite(fd, img, total * l.cs, 0) != (ssize_t)(total * l.cs) ||
	    fsync(fd) < 0) {
		ret = blkdev_err(-EIO, err, errlen, "%s: write failed", path);
		unlink(path);
	}
out:
	if (fd >= 0)
		close(fd);
	free(img);
	return ret;
}
