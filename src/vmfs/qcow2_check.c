/*
 * `termvisor disk check` for qcow2: count every reference the metadata
 * makes (header, L1, refcount table and blocks, L2 tables, data and
 * compressed clusters) and compare with the stored refcounts, as
 * `qemu-img check` does.  Stored > counted is a leak (harmless: space
 * lost, what a crash mid-write may leave); stored < counted is an error
 * (the cluster could be handed out twice).  Also checks the COPIED flag
 * that promises "refcount is exactly 1".
 */
#include "vmfs/qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmfs/blkdev.h"
#include "vmfs/qcow2_format.h"

#define QCOW2_CHECK_MAX_CLUSTERS (1ull << 28)

struct qcow2_check_ctx {
	struct qcow2_geometry g;
	struct qcow2_check_result *res;
	void (*report)(void *opaque, const char *msg);
	void *opaque;
	int fd;
	uint64_t nc;		/* clusters in the file */
	uint32_t *counts;
	uint8_t *buf;		/* one cluster */
	uint64_t *rt;
	uint64_t rb_off;	/* refcount block in rb, 0: none */
	uint8_t *rb;
	bool repair;		/* lower leaked refcounts (fd is read-write) */
};

static void __attribute__((format(printf, 2, 3)))
qcow2_check_say(struct qcow2_check_ctx *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (c->report == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->report(c->opaque, msg);
}

static int
qcow2_check_read(struct qcow2_check_ctx *c, void *b, size_t len, uint64_t off)
{
	ssize_t n = pread(c->fd, b, len, (off_t)off);

	if (n < 0)
		return -errno;
	memset((uint8_t *)b + n, 0, len - (size_t)n);
	return 0;
}

/* One more reference to each cluster of [off, off + len). */
static void
qcow2_check_ref(struct qcow2_check_ctx *c, uint64_t off, uint64_t len,
    const char *what)
{
	uint64_t cl;

	if (len == 0)
		return;
	for (cl = off / c->g.cluster_size;
	    cl <= (off + len - 1) / c->g.cluster_size; cl++) {
		if (cl >= c->nc) {
			qcow2_check_say(c, "ERROR %s at %#llx is past the end of "
			    "the file", what, (unsigned long long)off);
			c->res->errors++;
			return;
		}
		c->counts[cl]++;
	}
}

static int
qcow2_check_rc(struct qcow2_check_ctx *c, uint64_t cl, uint64_t *rc)
{
	uint64_t rbe = c->g.cluster_size * 8 / c->g.refcount_bits;
	uint64_t rti = cl / rbe, rtn = c->g.rt_clusters * c->g.cluster_size / 8;
	int ret;

	*rc = 0;
	if (rti >= rtn || c->rt[rti] == 0)
		return 0;
	if (c->rb_off != c->rt[rti]) {
		if ((ret = qcow2_check_read(c, c->rb, c->g.cluster_size,
		    c->rt[rti])) < 0)
			return ret;
		c->rb_off = c->rt[rti];
	}
	*rc = qcow2_format_rc_get(c->rb, cl % rbe, c->g.refcount_bits);
	return 0;
}

/* A COPIED flag must be set exactly when the refcount is 1. */
static int
qcow2_check_copied(struct qcow2_check_ctx *c, uint64_t e, uint64_t off,
    const char *what)
{
	uint64_t rc;
	int ret;

	if ((ret = qcow2_check_rc(c, off / c->g.cluster_size, &rc)) < 0)
		return ret;
	if (((e & QCOW2_COPIED) != 0) != (rc == 1)) {
		qcow2_check_say(c, "ERROR OFLAG_COPIED %s at %#llx: refcount "
		    "%llu", what, (unsigned long long)off, (unsigned long long)rc);
		c->res->errors++;
	}
	return 0;
}

static int
qcow2_check_l2(struct qcow2_check_ctx *c, uint64_t l2off)
{
	unsigned x = 62 - (c->g.cluster_bits - 8);
	uint64_t i, e, off, len, sectors;
	int ret;

	if ((ret = qcow2_check_read(c, c->buf, c->g.cluster_size, l2off)) < 0)
		return ret;
	for (i = 0; i < c->g.cluster_size / 8; i++) {
		e = qcow2_format_get64(c->buf + 8 * i);
		if (e & QCOW2_COMPRESSED) {
			off = e & ((1ull << x) - 1);
			sectors = ((e >> x) & ((1ull << (c->g.cluster_bits - 8)) -
			    1)) + 1;
			len = sectors * 512 - (off & 511);
			qcow2_check_ref(c, off, len, "compressed cluster");
			c->res->allocated++;
			continue;
		}
		off = e & QCOW2_OFF_MASK;
		if ((e & QCOW2_L2_RESERVED) || off % c->g.cluster_size) {
			qcow2_check_say(c, "ERROR L2 table at %#llx entry %llu: bad "
			    "entry %#llx", (unsigned long long)l2off,
			    (unsigned long long)i, (unsigned long long)e);
			c->res->errors++;
			continue;
		}
		if (off == 0)
			continue;
		qcow2_check_ref(c, off, c->g.cluster_size, "data cluster");
		c->res->allocated++;
		if ((ret = qcow2_check_copied(c, e, off, "data cluster")) < 0)
			return ret;
	}
	return 0;
}

static int
qcow2_check_refs(struct qcow2_check_ctx *c)
{
	uint64_t i, e, off, rtn = c->g.rt_clusters * c->g.cluster_size / 8;
	uint8_t *l1;
	int ret;

	qcow2_check_ref(c, 0, c->g.cluster_size, "header");
	qcow2_check_ref(c, c->g.l1_offset, c->g.l1_size * 8ull, "L1 table");
	qcow2_check_ref(c, c->g.rt_offset, rtn * 8, "refcount table");
	for (i = 0; i < rtn; i++)
		if (c->rt[i] != 0)
			qcow2_check_ref(c, c->rt[i], c->g.cluster_size,
			    "refcount block");
	if ((l1 = malloc(c->g.l1_size * 8ull + 8)) == NULL)
		return -ENOMEM;
	ret = qcow2_check_read(c, l1, c->g.l1_size * 8ull, c->g.l1_offset);
	for (i = 0; ret == 0 && i < c->g.l1_size; i++) {
		e = qcow2_format_get64(l1 + 8 * i);
		off = e & QCOW2_OFF_MASK;
		if (off == 0)
			continue;
		qcow2_check_ref(c, off, c->g.cluster_size, "L2 table");
		if ((ret = qcow2_check_copied(c, e, off, "L2 table")) == 0)
			ret = qcow2_check_l2(c, off);
	}
	free(l1);
	return ret;
}

/* Lower cluster cl's refcount (in c->rb, just read) to its references. */
static int
qcow2_check_fix(struct qcow2_check_ctx *c, uint64_t cl)
{
	uint64_t rbe = c->g.cluster_size * 8 / c->g.refcount_bits;
	size_t boff, blen;

	qcow2_format_rc_put(c->rb, cl % rbe, c->g.refcount_bits, c->counts[cl],
	    &boff, &blen);
	if (pwrite(c->fd, c->rb + boff, blen, (off_t)(c->rb_off + boff)) !=
	    (ssize_t)blen)
		return -EIO;
	qcow2_check_say(c, "Repaired cluster %#llx: refcount %u",
	    (unsigned long long)cl, c->counts[cl]);
	c->res->repaired++;
	return 0;
}

/* Refcounts of clusters past the end of the file count nothing there,
 * and qemu-img ignores them too. */
static int
qcow2_check_compare(struct qcow2_check_ctx *c)
{
	uint64_t cl, rc;
	int ret;

	for (cl = 0; cl < c->nc; cl++) {
		if ((ret = qcow2_check_rc(c, cl, &rc)) < 0)
			return ret;
		if (rc < c->counts[cl]) {
			qcow2_check_say(c, "ERROR cluster %#llx: refcount %llu, "
			    "referenced %u times", (unsigned long long)cl,
			    (unsigned long long)rc, c->counts[cl]);
			c->res->errors++;
		} else if (rc > c->counts[cl]) {
			qcow2_check_say(c, "Leaked cluster %#llx: refcount %llu, "
			    "referenced %u times", (unsigned long long)cl,
			    (unsigned long long)rc, c->counts[cl]);
			c->res->leaks++;
		}
	}
	return 0;
}

/* A second pass, only on an image without errors: an error may mean
 * references this walk could not see, and a cluster they use must not
 * be made free. */
static int
qcow2_check_fix_all(struct qcow2_check_ctx *c)
{
	uint64_t cl, rc;
	int ret;

	for (cl = 0; cl < c->nc; cl++) {
		if ((ret = qcow2_check_rc(c, cl, &rc)) < 0)
			return ret;
		if (rc > c->counts[cl] && (ret = qcow2_check_fix(c, cl)) < 0)
			return ret;
	}
	return fdatasync(c->fd) < 0 ? -errno : 0;
}

static int
qcow2_check_setup(struct qcow2_check_ctx *c, const char *path)
{
	uint64_t i, rtn = c->g.rt_clusters * c->g.cluster_size / 8;
	struct stat st;
	int ret;

	if ((c->fd = open(path, (c->repair ? O_RDWR : O_RDONLY) |
	    O_CLOEXEC)) < 0 ||
	    fstat(c->fd, &st) < 0)
		return -errno;
	c->nc = ((uint64_t)st.st_size + c->g.cluster_size - 1) /
	    c->g.cluster_size;
	if (c->nc > QCOW2_CHECK_MAX_CLUSTERS)
		return -EFBIG;
	c->counts = calloc(c->nc + 1, sizeof(*c->counts));
	c->buf = malloc(c->g.cluster_size);
	c->rb = malloc(c->g.cluster_size);
	c->rt = malloc(rtn * 8);
	if (!c->counts || !c->buf || !c->rb || !c->rt)
		return -ENOMEM;
	if ((ret = qcow2_check_read(c, c->rt, rtn * 8, c->g.rt_offset)) < 0)
		return ret;
	for (i = 0; i < rtn; i++)
		c->rt[i] = qcow2_format_get64((uint8_t *)&c->rt[i]) &
		    ~QCOW2_RT_RESERVED;
	return 0;
}

static int
qcow2_check_run(struct blkdev *bd, struct qcow2_check_result *res,
    void (*report)(void *opaque, const char *msg), void *opaque, bool repair)
{
	struct qcow2_check_ctx c = { .res = res, .report = report,
	    .opaque = opaque, .fd = -1, .repair = repair };
	int ret;

	memset(res, 0, sizeof(*res));
	if ((ret = qcow2_geometry(bd, &c.g)) < 0)
		return ret;
	if (c.g.nb_snapshots != 0)
		return -ENOTSUP;
	res->total = (c.g.size + c.g.cluster_size - 1) / c.g.cluster_size;
	if ((ret = qcow2_check_setup(&c, bd->path)) == 0 &&
	    (ret = qcow2_check_refs(&c)) == 0)
		ret = qcow2_check_compare(&c);
	if (ret == 0 && repair && res->errors == 0 && res->leaks > 0)
		ret = qcow2_check_fix_all(&c);
	if (c.fd >= 0)
		close(c.fd);
	free(c.counts);
	free(c.buf);
	free(c.rb);
	free(c.rt);
	return ret;
}

int
qcow2_check(struct blkdev *bd, struct qcow2_check_result *res,
    void (*report)(void *opaque, const char *msg), void *opaque)
{
	return qcow2_check_run(bd, res, report, opaque, false);
}

int
qcow2_check_repair(struct blkdev *bd, struct qcow2_check_result *res,
    void (*report)(void *opaque, const char *msg), void *opaque)
{
	if (!bd->readonly)
		return -EINVAL;
	return qcow2_check_run(bd, res, report, opaque, true);
}
