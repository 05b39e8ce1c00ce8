/*
 * qcow2 version 3 images: read, write with allocation on demand, backing
 * files, discard and zero clusters, refcounts kept exact.
 *
 * Crash consistency.  This driver does not use the dirty bit or lazy
 * refcounts.  Refcount blocks are written through at once; new L2 tables
 * are written (zeroed) when allocated; but the references themselves, L2
 * and L1 entries, change in memory first (the L2 cache holds them dirty)
 * and reach the file at a commit, in an order that keeps the image valid
 * whenever the process dies:
 *
 *   1. a cluster's refcount is raised before anything points at it;
 *   2. guest data and new (zeroed) L2 tables are written next;
 *   3. at commit: a barrier (fdatasync), then the dirty L2 entries and L1
 *      entries that reference the new clusters;
 *   4. a cluster that a write, discard or zero replaced is freed only
 *      after that commit and a second barrier.
 *
 * A commit happens on a guest FLUSH (then one more fdatasync makes it
 * durable), when a dirty L2 table would leave the cache, when the lists
 * of pending L1 entries or clusters to free fill up, and at close.
 * Killed at any point, the image has at worst clusters with a refcount
 * and no reference: leaks, which `qemu-img check` reports as such (not as
 * corruption) and `qemu-img check -r leaks` reclaims; what the guest
 * wrote since its last flush may be lost, as with any write-back disk
 * cache.  The barriers make the same hold after a host crash, since the
 * disk may otherwise reorder the writes.
 */
#include "vmfs/qcow2.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/log.h"
#include "vmfs/blkdev.h"
#include "vmfs/qcow2_format.h"

#define QCOW2_L2C_N		32
#define QCOW2_RBC_N		8
#define QCOW2_MAX_PEND		256	/* pending L1 entries, clusters to free */

struct qcow2_cent {
	uint64_t off;		/* host offset of the cached cluster, 0 = free */
	uint8_t *buf;
	uint64_t lru;
	bool dirty;		/* L2 entries [dlo, dhi] not yet in the file */
	uint32_t dlo, dhi;
};

struct qcow2 {
	struct blkdev bd;
	int fd;
	pthread_mutex_t lock;	/* metadata and caches; not data I/O */
	pthread_cond_t idle;	/* inflight dropped to 0 */
	int inflight;		/* data reads/writes running unlocked */
	unsigned cluster_bits, l2_bits;
	uint64_t cs, l2_entries;
	uint64_t incompat, compat, autoclear;
	uint32_t l1_size;
	uint64_t l1_off, *l1;
	uint64_t rt_off, rt_n, *rt;
	uint32_t rt_clusters;
	unsigned rc_bits;
	uint64_t rb_entries, rc_max;
	uint32_t nb_snapshots;
	uint64_t snap_off;
	uint64_t file_end;	/* bytes: the file's size, or more once allocated */
	uint64_t free_hint;	/* cluster index to start looking for free ones */
	struct blkdev *backing;
	char backing_name[QCOW2_MAX_BACKING_NAME + 1];
	char backing_fmt[16];
	struct qcow2_cent l2c[QCOW2_L2C_N], rbc[QCOW2_RBC_N];
	uint64_t lru;
	uint8_t *cow;		/* one cluster of scratch */
	bool barriers;
	/* L1 entries changed in memory, not yet written (see commit) */
	uint32_t pend_l1[QCOW2_MAX_PEND];
	int npend_l1;
	/* L2 entries replaced in memory, whose clusters commit frees */
	uint64_t rel[QCOW2_MAX_PEND];
	int nrel;
};

static bool
qcow2_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* --- file I/O --- */

/* Read from the file; bytes past its end read as zeros (a data cluster
 * QEMU left partly written at the end of the file). */
static int
qcow2_file_read(struct qcow2 *q, void *buf, size_t len, uint64_t off)
{
	return blkdev_fd_pread(q->fd, buf, len, off);
}

/* Safe without the lock: touches nothing but the file. */
static int
qcow2_data_write(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
	return blkdev_fd_pwrite(q->fd, buf, len, off);
}

static int
qcow2_file_write(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
	int ret = qcow2_data_write(q, buf, len, off);

	if (ret == 0 && off + len > q->file_end)
		q->file_end = off + len;
	return ret;
}

static int
qcow2_barrier(struct qcow2 *q)
{
	if (!q->barriers)
		return 0;
	return fdatasync(q->fd) < 0 ? -errno : 0;
}

/* --- cluster caches (refcount blocks write-through, L2 write-back) --- */

static int qcow2_commit(struct qcow2 *q);

static int
qcow2_cache_get(struct qcow2 *q, struct qcow2_cent *c, int n, uint64_t off,
    bool fresh, uint8_t **out, bool *loaded)
{
	struct qcow2_cent *victim = &c[0];
	int i, ret;

	if (loaded != NULL)
		*loaded = false;
	for (i = 0; i < n; i++) {
		if (c[i].off == off && off != 0) {
			c[i].lru = ++q->lru;
			if (fresh)
				memset(c[i].buf, 0, q->cs);
			*out = c[i].buf;
			return 0;
		}
		if (c[i].lru < victim->lru)
			victim = &c[i];
	}
	/* its entries must reach the file, in order, before it goes */
	if (victim->dirty && (ret = qcow2_commit(q)) < 0)
		return ret;
	victim->off = 0;
	/* buffers come on first use: a backing image read in a few places
	 * should not cost 40 clusters of memory */
	if (victim->buf == NULL && (victim->buf = malloc(q->cs)) == NULL)
		return -ENOMEM;
	if (fresh)
		memset(victim->buf, 0, q->cs);
	else if ((ret = qcow2_file_read(q, victim->buf, q->cs, off)) < 0)
		return ret;
	victim->off = off;
	victim->lru = ++q->lru;
	if (loaded != NULL)
		*loaded = !fresh;
	*out = victim->buf;
	return 0;
}

static void
qcow2_cache_drop(struct qcow2_cent *c, int n, uint64_t off)
{
	int i;

	for (i = 0; i < n; i++)
		if (c[i].off == off)
			c[i].off = 0;
}

/* --- refcounts --- */

static int
qcow2_rc_get(struct qcow2 *q, uint64_t ci, uint64_t *rc)
{
	uint64_t rti = ci / q->rb_entries;
	uint8_t *b;
	int ret;

	*rc = 0;
	if (rti >= q->rt_n || q->rt[rti] == 0)
		return 0;
	ret = qcow2_cache_get(q, q->rbc, QCOW2_RBC_N, q->rt[rti], false, &b,
	    NULL);
	if (ret < 0)
		return ret;
	*rc = qcow2_format_rc_get(b, ci % q->rb_entries, q->rc_bits);
	return 0;
}

/*
 * A range of clusters with no refcount block holds nothing (all its
 * refcounts are zero), so the new block goes at the range's first
 * cluster that is not `avoid` and counts itself: no recursion.
 */
static int
qcow2_rb_new(struct qcow2 *q, uint64_t rti, uint64_t avoid)
{
	uint64_t c = rti * q->rb_entries, be;
	size_t boff, blen;
	uint8_t *b;
	int ret;

	if (c == avoid)
		c++;
	ret = qcow2_cache_get(q, q->rbc, QCOW2_RBC_N, c * q->cs, true, &b,
	    NULL);
	if (ret < 0)
		return ret;
	qcow2_format_rc_put(b, c % q->rb_entries, q->rc_bits, 1, &boff,
	    &blen);
	if ((ret = qcow2_file_write(q, b, q->cs, c * q->cs)) < 0 ||
	    (ret = qcow2_barrier(q)) < 0)
		goto fail;
	be = htobe64(c * q->cs);
	ret = qcow2_file_write(q, &be, 8, q->rt_off + rti * 8);
	if (ret < 0)
		goto fail;
	q->rt[rti] = c * q->cs;
	return 0;
fail:
	qcow2_cache_drop(q->rbc, QCOW2_RBC_N, c * q->cs);
	return ret;
}

static int qcow2_rc_set(struct qcow2 *q, uint64_t ci, uint64_t v);

/* Which refcount blocks are missing for clusters [first, end)? */
static uint64_t
qcow2_rt_missing(const struct qcow2 *q, uint64_t first, uint64_t end)
{
	uint64_t r, n = 0;

	for (r = first / q->rb_entries; r <= (end - 1) / q->rb_entries; r++)
		if (r >= q->rt_n || q->rt[r] == 0)
			n++;
	return n;
}

/* Size the new table and its area [t, t + tc + k) until it covers itself. */
static void
qcow2_rt_plan(const struct qcow2 *q, uint64_t need, uint64_t t,
    uint64_t *new_n, uint64_t *tc, uint64_t *k)
{
	uint64_t per = q->cs / 8, n = need > 2 * q->rt_n ? need : 2 * q->rt_n;
	uint64_t m;

	for (;;) {
		n = (n + per - 1) / per * per;
		*tc = n / per;
		*k = 0;
		while ((m = qcow2_rt_missing(q, t, t + *tc + *k)) != *k)
			*k = m;
		if ((t + *tc + *k - 1) / q->rb_entries < n)
			break;
		n = (t + *tc + *k - 1) / q->rb_entries + 1;
	}
	*new_n = n;
}

/* Fill the new table and the new blocks for area [t, end). */
static int
qcow2_rt_fill(struct qcow2 *q, uint8_t *tbl, uint64_t t, uint64_t tc,
    uint64_t end)
{
	uint64_t i, r, rb = t + tc, c;
	size_t boff, blen;
	uint8_t *b;
	int ret;

	for (i = 0; i < q->rt_n; i++)
		qcow2_format_put64(tbl + 8 * i, q->rt[i]);
	/* not q->cow: growth happens inside a write that holds data there */
	if ((b = malloc(q->cs)) == NULL)
		return -ENOMEM;
	for (r = t / q->rb_entries; r <= (end - 1) / q->rb_entries; r++) {
		if (r < q->rt_n && q->rt[r] != 0)
			continue;
		memset(b, 0, q->cs);
		for (c = r * q->rb_entries; c < (r + 1) * q->rb_entries; c++)
			if (c >= t && c < end)
				qcow2_format_rc_put(b, c % q->rb_entries,
				    q->rc_bits, 1, &boff, &blen);
		if ((ret = qcow2_file_write(q, b, q->cs, rb * q->cs)) < 0)
			goto out;
		qcow2_format_put64(tbl + 8 * r, rb * q->cs);
		rb++;
	}
	/* clusters of the area that fall under blocks we already have */
	for (c = t; c < end; c++) {
		r = c / q->rb_entries;
		if (r < q->rt_n && q->rt[r] != 0 &&
		    (ret = qcow2_rc_set(q, c, 1)) < 0)
			goto out;
	}
	ret = 0;
out:
	free(b);
	return ret;
}

/*
 * Grow the refcount table so cluster ci is covered: a new, larger table
 * at the end of the file with the blocks that count it, written and
 * flushed before the header points at it; the old table is freed last.
 */
static int
qcow2_rt_grow(struct qcow2 *q, uint64_t ci)
{
	uint64_t t, new_n, tc, k, end, i, old_off, old_c, *rt;
	uint8_t *tbl = NULL, hdr[12];
	int ret;

	t = (q->file_end + q->cs - 1) / q->cs;
	if (t <= ci)
		t = ci + 1;
	qcow2_rt_plan(q, ci / q->rb_entries + 1, t, &new_n, &tc, &k);
	if (tc * q->cs > QCOW2_MAX_RT_BYTES)
		return -EFBIG;
	end = t + tc + k;
	tbl = calloc(tc, q->cs);
	rt = calloc(new_n, sizeof(*rt));
	if (tbl == NULL || rt == NULL) {
		ret = -ENOMEM;
		goto fail;
	}
	if ((ret = qcow2_rt_fill(q, tbl, t, tc, end)) < 0 ||
	    (ret = qcow2_file_write(q, tbl, tc * q->cs, t * q->cs)) < 0 ||
	    (ret = qcow2_barrier(q)) < 0)
		goto fail;
	qcow2_format_put64(hdr, t * q->cs);
	qcow2_format_put32(hdr + 8, (uint32_t)tc);
	if ((ret = qcow2_file_write(q, hdr, 12, 48)) < 0 ||
	    (ret = qcow2_barrier(q)) < 0)
		goto fail;
	for (i = 0; i < new_n; i++)
		rt[i] = qcow2_format_get64(tbl + 8 * i);
	old_off = q->rt_off;
	old_c = q->rt_clusters;
	free(q->rt);
	q->rt = rt;
	q->rt_n = new_n;
	q->rt_off = t * q->cs;
	q->rt_clusters = (uint32_t)tc;
	free(tbl);
	if (end * q->cs > q->file_end)
		q->file_end = end * q->cs;
	for (i = 0; i < old_c; i++)
		if ((ret = qcow2_rc_set(q, old_off / q->cs + i, 0)) < 0)
			return ret;
	if (old_off / q->cs < q->free_hint)
		q->free_hint = old_off / q->cs;
	return 0;
fail:
	free(tbl);
	free(rt);
	return ret;
}

static int
qcow2_rc_set(struct qcow2 *q, uint64_t ci, uint64_t v)
{
	uint64_t rti = ci / q->rb_entries;
	size_t boff, blen;
	uint8_t *b;
	int ret;

	if (v > q->rc_max)
		return -ERANGE;
	if (rti >= q->rt_n && (ret = qcow2_rt_grow(q, ci)) < 0)
		return ret;
	if (q->rt[rti] == 0 && (ret = qcow2_rb_new(q, rti, ci)) < 0)
		return ret;
	ret = qcow2_cache_get(q, q->rbc, QCOW2_RBC_N, q->rt[rti], false, &b,
	    NULL);
	if (ret < 0)
		return ret;
	qcow2_format_rc_put(b, ci % q->rb_entries, q->rc_bits, v, &boff,
	    &blen);
	return qcow2_file_write(q, b + boff, blen, q->rt[rti] + boff);
}

/* Allocate one cluster: its refcount is 1 on return. */
static int
qcow2_alloc(struct qcow2 *q, uint64_t *off)
{
	uint64_t c, rc;
	int ret;

	for (c = q->free_hint;; c++) {
		if ((ret = qcow2_rc_get(q, c, &rc)) < 0)
			return ret;
		if (rc == 0)
			break;
	}
	if ((ret = qcow2_rc_set(q, c, 1)) < 0)
		return ret;
	q->free_hint = c + 1;
	*off = c * q->cs;
	return 0;
}

static int
qcow2_free_cluster(struct qcow2 *q, uint64_t c)
{
	uint64_t rc;
	int ret;

	if ((ret = qcow2_rc_get(q, c, &rc)) < 0)
		return ret;
	if (rc == 0) {
		log_warnx("%s: cluster %#llx freed twice: refcounts are "
		    "corrupt (run qemu-img check)", q->bd.path,
		    (unsigned long long)(c * q->cs));
		return -EIO;
	}
	if (rc == 1 && c < q->free_hint)
		q->free_hint = c;
	return qcow2_rc_set(q, c, rc - 1);
}

/* Host clusters a compressed L2 entry spans. */
static void
qcow2_compressed_span(const struct qcow2 *q, uint64_t e, uint64_t *off,
    uint64_t *len)
{
	unsigned x = 62 - (q->cluster_bits - 8);
	uint64_t sectors = ((e >> x) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;

	*off = e & ((1ull << x) - 1);
	*len = sectors * 512 - (*off & 511);
}

/* Drop the host clusters an L2 entry referenced (after it is gone). */
static int
qcow2_release(struct qcow2 *q, uint64_t e)
{
	uint64_t off, len, c;
	int ret;

	if (e & QCOW2_COMPRESSED) {
		qcow2_compressed_span(q, e, &off, &len);
		for (c = off / q->cs; c <= (off + len - 1) / q->cs; c++)
			if ((ret = qcow2_free_cluster(q, c)) < 0)
				return ret;
		return 0;
	}
	off = e & QCOW2_OFF_MASK;
	return off != 0 ? qcow2_free_cluster(q, off / q->cs) : 0;
}

/* --- L1/L2 --- */

static int
qcow2_l2_check(struct qcow2 *q, uint64_t l2off, const uint8_t *t)
{
	uint64_t i, e, off;

	for (i = 0; i < q->l2_entries; i++) {
		e = qcow2_format_get64(t + 8 * i);
		if (e & QCOW2_COMPRESSED)
			continue;
		off = e & QCOW2_OFF_MASK;
		if ((e & QCOW2_L2_RESERVED) || off % q->cs != 0 ||
		    (off != 0 && off >= q->file_end) ||
		    (off != 0 && off < q->cs)) {
			log_warnx("%s: L2 table at %#llx, entry %llu: bad entry "
			    "%#llx (reserved bits, misaligned, in the header or "
			    "past the end of the file)", q->bd.path,
			    (unsigned long long)l2off, (unsigned long long)i,
			    (unsigned long long)e);
			return -EIO;
		}
	}
	return 0;
}

static int
qcow2_l2_table(struct qcow2 *q, uint64_t l2off, bool fresh, uint8_t **t)
{
	bool loaded;
	int ret;

	ret = qcow2_cache_get(q, q->l2c, QCOW2_L2C_N, l2off, fresh, t, &loaded);
	if (ret < 0 || !loaded)
		return ret;
	ret = qcow2_l2_check(q, l2off, *t);
	if (ret < 0)
		qcow2_cache_drop(q->l2c, QCOW2_L2C_N, l2off);
	return ret;
}

static int
qcow2_l2_get(struct qcow2 *q, uint64_t vc, uint64_t *e)
{
	uint64_t l2off = q->l1[vc >> q->l2_bits] & QCOW2_OFF_MASK;
	uint8_t *t;
	int ret;

	*e = 0;
	if (l2off == 0)
		return 0;
	if ((ret = qcow2_l2_table(q, l2off, false, &t)) < 0)
		return ret;
	*e = qcow2_format_get64(t + 8 * (vc & (q->l2_entries - 1)));
	return 0;
}

/* Make sure guest cluster vc has an L2 table; its L1 entry is written at
 * commit, after the barrier. */
static int
qcow2_l2_ensure(struct qcow2 *q, uint64_t vc)
{
	uint64_t l1i = vc >> q->l2_bits, off;
	uint8_t *t;
	int ret;

	if (q->l1[l1i] != 0)
		return 0;
	if ((ret = qcow2_alloc(q, &off)) < 0)
		return ret;
	if ((ret = qcow2_l2_table(q, off, true, &t)) < 0 ||
	    (ret = qcow2_file_write(q, t, q->cs, off)) < 0)
		return ret;
	q->l1[l1i] = off | QCOW2_COPIED;
	q->pend_l1[q->npend_l1++] = (uint32_t)l1i;
	return 0;
}

/* Set guest cluster vc's L2 entry in the cache; the file gets it at
 * commit.  old: the entry it replaces, whose clusters commit frees. */
static int
qcow2_l2_set(struct qcow2 *q, uint64_t vc, uint64_t e, uint64_t old)
{
	uint64_t l2off = q->l1[vc >> q->l2_bits] & QCOW2_OFF_MASK;
	uint32_t i = (uint32_t)(vc & (q->l2_entries - 1));
	struct qcow2_cent *c;
	uint8_t *t;
	int ret;

	if ((ret = qcow2_l2_table(q, l2off, false, &t)) < 0)
		return ret;
	qcow2_format_put64(t + 8 * i, e);
	c = &q->l2c[0];
	while (c->buf != t)
		c++;
	c->dlo = c->dirty && c->dlo < i ? c->dlo : i;
	c->dhi = c->dirty && c->dhi > i ? c->dhi : i;
	c->dirty = true;
	if (old & (QCOW2_OFF_MASK | QCOW2_COMPRESSED))
		q->rel[q->nrel++] = old;
	return 0;
}

/* Commit early when the pending lists could overflow in one more step. */
static int
qcow2_commit_if_full(struct qcow2 *q)
{
	if (q->npend_l1 < QCOW2_MAX_PEND - 1 && q->nrel < QCOW2_MAX_PEND - 1)
		return 0;
	return qcow2_commit(q);
}

/* An image whose autoclear bits we do not understand must have them
 * cleared once we modify it (the spec's rule); done at the first commit. */
static int
qcow2_clear_autoclear(struct qcow2 *q)
{
	uint64_t z = 0;
	int ret;

	if (q->autoclear == 0)
		return 0;
	if ((ret = qcow2_file_write(q, &z, 8, 88)) < 0)
		return ret;
	q->autoclear = 0;
	return 0;
}

/* The dirty L2 entries into the file. */
static int
qcow2_commit_l2(struct qcow2 *q)
{
	struct qcow2_cent *c;
	int i, ret;

	for (i = 0; i < QCOW2_L2C_N; i++) {
		c = &q->l2c[i];
		if (!c->dirty)
			continue;
		ret = qcow2_file_write(q, c->buf + 8ull * c->dlo,
		    8ull * (c->dhi - c->dlo + 1), c->off + 8ull * c->dlo);
		if (ret < 0)
			return ret;
		c->dirty = false;
	}
	return 0;
}

/* Steps 3 and 4 of the ordering described at the top of the file. */
static int
qcow2_commit(struct qcow2 *q)
{
	bool dirty = q->npend_l1 > 0 || q->nrel > 0;
	uint64_t be;
	int i, ret;

	for (i = 0; i < QCOW2_L2C_N; i++)
		dirty |= q->l2c[i].dirty;
	if (!dirty)
		return 0;
	if ((ret = qcow2_barrier(q)) < 0 ||
	    (ret = qcow2_clear_autoclear(q)) < 0 ||
	    (ret = qcow2_commit_l2(q)) < 0)
		return ret;
	for (i = 0; i < q->npend_l1; i++) {
		be = htobe64(q->l1[q->pend_l1[i]]);
		ret = qcow2_file_write(q, &be, 8, q->l1_off + 8ull * q->pend_l1[i]);
		if (ret < 0)
			return ret;
	}
	q->npend_l1 = 0;
	if (q->nrel == 0)
		return 0;
	if ((ret = qcow2_barrier(q)) < 0)
		return ret;
	/* a reader that looked up an old cluster before we dropped it may
	 * still be reading it: let it finish before the cluster is reused */
	while (q->inflight > 0)
		pthread_cond_wait(&q->idle, &q->lock);
	for (i = 0; i < q->nrel; i++)
		if ((ret = qcow2_release(q, q->rel[i])) < 0)
			return ret;
	q->nrel = 0;
	return 0;
}

/* --- reading --- */

static int
qcow2_read_compressed(struct qcow2 *q, uint64_t e, uint8_t *out)
{
	uint64_t off, len;
	z_stream z;
	uint8_t *in;
	int ret;

	qcow2_compressed_span(q, e, &off, &len);
	if (off >= q->file_end)
		return -EIO;
	in = malloc(len);
	if (in == NULL)
		return -ENOMEM;
	if ((ret = qcow2_file_read(q, in, len, off)) < 0)
		goto out;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, -12) != Z_OK) {
		ret = -ENOMEM;
		goto out;
	}
	z.next_in = in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)q->cs;
	ret = inflate(&z, Z_FINISH);
	ret = (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && z.avail_out == 0 ?
	    0 : -EIO;
	inflateEnd(&z);
	if (ret < 0)
		log_warnx("%s: compressed cluster at %#llx does not inflate",
		    q->bd.path, (unsigned long long)off);
out:
	free(in);
	return ret;
}

/* Read len bytes at byte inoff of guest cluster vc. */
static int
qcow2_read_cluster(struct qcow2 *q, uint64_t vc, uint8_t *buf, uint64_t inoff,
    size_t len)
{
	uint64_t e, off, pos = vc * q->cs + inoff, blen;
	size_t n;
	int ret;

	if ((ret = qcow2_l2_get(q, vc, &e)) < 0)
		return ret;
	if (e & QCOW2_COMPRESSED) {
		uint8_t *tmp = malloc(q->cs);

		if (tmp == NULL)
			return -ENOMEM;
		if ((ret = qcow2_read_compressed(q, e, tmp)) == 0)
			memcpy(buf, tmp + inoff, len);
		free(tmp);
		return ret;
	}
	off = e & QCOW2_OFF_MASK;
	if (e & QCOW2_ZERO) {
		memset(buf, 0, len);
		return 0;
	}
	if (off != 0)
		return qcow2_file_read(q, buf, len, off + inoff);
	blen = q->backing != NULL ? blkdev_length(q->backing) : 0;
	n = pos >= blen ? 0 : (blen - pos < len ? (size_t)(blen - pos) : len);
	if (n > 0 && (ret = blkdev_pread(q->backing, buf, n, pos)) < 0)
		return ret;
	memset(buf + n, 0, len - n);
	return 0;
}

/*
 * With the lock held: how much of [off, off + len) maps to one run of
 * plain allocated clusters that follow each other in the file.  *n = 0
 * when the cluster at off is not plain (unallocated, zero, compressed).
 */
static int
qcow2_extent(struct qcow2 *q, uint64_t off, size_t len, uint64_t *host,
    size_t *n)
{
	uint64_t inoff = off & (q->cs - 1), vc = off >> q->cluster_bits, e, h;
	int ret;

	*n = 0;
	if ((ret = qcow2_l2_get(q, vc, &e)) < 0)
		return ret;
	h = e & QCOW2_OFF_MASK;
	if (h == 0 || (e & (QCOW2_ZERO | QCOW2_COMPRESSED)))
		return 0;
	*host = h + inoff;
	*n = q->cs - inoff < len ? (size_t)(q->cs - inoff) : len;
	while (*n < len) {
		if ((ret = qcow2_l2_get(q, ++vc, &e)) < 0)
			return ret;
		if ((e & (QCOW2_ZERO | QCOW2_COMPRESSED)) ||
		    (e & QCOW2_OFF_MASK) != h + q->cs)
			break;
		h += q->cs;
		*n += q->cs < len - *n ? (size_t)q->cs : len - *n;
	}
	return 0;
}

/* Data I/O on clusters found by qcow2_extent, without the lock. */
static int
qcow2_unlocked_io(struct qcow2 *q, void *rbuf, const void *wbuf, size_t n,
    uint64_t host)
{
	int ret;

	q->inflight++;
	pthread_mutex_unlock(&q->lock);
	ret = wbuf != NULL ? qcow2_data_write(q, wbuf, n, host) :
	    qcow2_file_read(q, rbuf, n, host);
	pthread_mutex_lock(&q->lock);
	if (--q->inflight == 0)
		pthread_cond_broadcast(&q->idle);
	return ret;
}

static int
qcow2_pread(struct blkdev *bd, void *buf, size_t len, uint64_t off)
{
	struct qcow2 *q = (struct qcow2 *)bd;
	uint8_t *p = buf;
	uint64_t inoff, host = 0;
	size_t n;
	int ret = 0;

	pthread_mutex_lock(&q->lock);
	while (len > 0) {
		if ((ret = qcow2_extent(q, off, len, &host, &n)) < 0)
			break;
		if (n > 0) {
			ret = qcow2_unlocked_io(q, p, NULL, n, host);
		} else {
			inoff = off & (q->cs - 1);
			n = q->cs - inoff < len ? (size_t)(q->cs - inoff) : len;
			ret = qcow2_read_cluster(q, off >> q->cluster_bits, p,
			    inoff, n);
		}
		if (ret < 0)
			break;
		p += n;
		off += n;
		len -= n;
	}
	pthread_mutex_unlock(&q->lock);
	return ret;
}

/* --- writing --- */

/* Write into guest cluster vc, allocating it if it is not plain. */
static int
qcow2_write_cluster(struct qcow2 *q, uint64_t vc, const uint8_t *buf,
    uint64_t inoff, size_t len)
{
	uint64_t e, off;
	int ret;

	if ((ret = qcow2_l2_get(q, vc, &e)) < 0)
		return ret;
	off = e & QCOW2_OFF_MASK;
	if (off != 0 && !(e & (QCOW2_ZERO | QCOW2_COMPRESSED)))
		return qcow2_file_write(q, buf, len, off + inoff);
	if ((ret = qcow2_l2_ensure(q, vc)) < 0)
		return ret;
	if (len < q->cs &&
	    (ret = qcow2_read_cluster(q, vc, q->cow, 0, q->cs)) < 0)
		return ret;
	memcpy(q->cow + inoff, buf, len);
	if ((ret = qcow2_alloc(q, &off)) < 0 ||
	    (ret = qcow2_file_write(q, q->cow, q->cs, off)) < 0)
		return ret;
	/* only now may anything point at it (in memory; the file: commit) */
	return qcow2_l2_set(q, vc, off | QCOW2_COPIED, e);
}

static int
qcow2_pwrite(struct blkdev *bd, const void *buf, size_t len, uint64_t off)
{
	struct qcow2 *q = (struct qcow2 *)bd;
	const uint8_t *s = buf;
	uint64_t inoff, host = 0;
	int ret = 0;
	size_t k;

	pthread_mutex_lock(&q->lock);
	while (len > 0) {
		if ((ret = qcow2_commit_if_full(q)) < 0 ||
		    (ret = qcow2_extent(q, off, len, &host, &k)) < 0)
			break;
		if (k > 0) {
			ret = qcow2_unlocked_io(q, NULL, s, k, host);
		} else {
			inoff = off & (q->cs - 1);
			k = q->cs - inoff < len ? (size_t)(q->cs - inoff) : len;
			ret = qcow2_write_cluster(q, off >> q->cluster_bits, s,
			    inoff, k);
		}
		if (ret < 0)
			break;
		s += k;
		off += k;
		len -= k;
	}
	pthread_mutex_unlock(&q->lock);
	return ret;
}

static int
qcow2_flush(struct blkdev *bd)
{
	struct qcow2 *q = (struct qcow2 *)bd;
	int ret;

	pthread_mutex_lock(&q->lock);
	ret = qcow2_commit(q);
	pthread_mutex_unlock(&q->lock);
	if (ret < 0)
		return ret;
	return fdatasync(q->fd) < 0 ? -errno : 0;
}

/* Zero [off, off + len) inside one cluster by writing zeros. */
static int
qcow2_zero_part(struct blkdev *bd, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[4096];
	uint64_t done;
	int ret;

	for (done = 0; done < len; done += sizeof(zeros))
		if ((ret = qcow2_pwrite(bd, zeros, len - done < sizeof(zeros) ?
		    len - done : sizeof(zeros), off + done)) < 0)
			return ret;
	return 0;
}

/*
 * Whole clusters become unallocated (no backing file: they read as
 * zeros) or zero clusters (so the backing file does not show through);
 * partial clusters are zeroed by writing when zero is set, else left.
 * Clusters given up are freed at once (a commit), not at the next flush.
 */
static int
qcow2_unmap(struct blkdev *bd, uint64_t off, uint64_t len, bool zero)
{
	struct qcow2 *q = (struct qcow2 *)bd;
	uint64_t k, e, ne = q->backing != NULL ? QCOW2_ZERO : 0, vc;
	int ret = 0, cret;

	if ((off & (q->cs - 1)) != 0) {
		k = q->cs - (off & (q->cs - 1));
		k = k < len ? k : len;
		if (zero && (ret = qcow2_zero_part(bd, off, k)) < 0)
			return ret;
		off += k;
		len -= k;
	}
	pthread_mutex_lock(&q->lock);
	for (; len >= q->cs; off += q->cs, len -= q->cs) {
		vc = off >> q->cluster_bits;
		if ((ret = qcow2_commit_if_full(q)) < 0 ||
		    (ret = qcow2_l2_get(q, vc, &e)) < 0)
			break;
		if ((e & ~QCOW2_COPIED) == ne)
			continue;
		if ((ret = qcow2_l2_ensure(q, vc)) < 0 ||
		    (ret = qcow2_l2_set(q, vc, ne, e)) < 0)
			break;
	}
	cret = q->nrel > 0 ? qcow2_commit(q) : 0;
	pthread_mutex_unlock(&q->lock);
	if (ret < 0 || cret < 0)
		return ret < 0 ? ret : cret;
	return zero && len > 0 ? qcow2_zero_part(bd, off, len) : 0;
}

static int
qcow2_discard(struct blkdev *bd, uint64_t off, uint64_t len)
{
	return qcow2_unmap(bd, off, len, false);
}

static int
qcow2_write_zeroes(struct blkdev *bd, uint64_t off, uint64_t len)
{
	return qcow2_unmap(bd, off, len, true);
}

/* What guest cluster vc is: data here, zeros, or up to the backing file. */
#define QCOW2_ST_BACKING	(-1)
static int
qcow2_cluster_status(struct qcow2 *q, uint64_t vc, int *st)
{
	uint64_t e;
	int ret;

	if ((ret = qcow2_l2_get(q, vc, &e)) < 0)
		return ret;
	if (e & QCOW2_COMPRESSED)
		*st = BLKDEV_STATUS_DATA;
	else if (e & QCOW2_ZERO)
		*st = BLKDEV_STATUS_ZERO;
	else if (e & QCOW2_OFF_MASK)
		*st = BLKDEV_STATUS_DATA;
	else
		*st = q->backing != NULL ? QCOW2_ST_BACKING : BLKDEV_STATUS_ZERO;
	return 0;
}

/*
 * From the L1/L2 tables (the cached, current ones): the run of clusters
 * from off that are alike.  Unallocated clusters ask the backing file,
 * past whose end they read as zeros, as pread does.
 */
static int
qcow2_block_status(struct blkdev *bd, uint64_t off, uint64_t len,
    uint64_t *n)
{
	struct qcow2 *q = (struct qcow2 *)bd;
	uint64_t vc = off >> q->cluster_bits, end = off + len, run, blen;
	int st, next, ret;

	pthread_mutex_lock(&q->lock);
	ret = qcow2_cluster_status(q, vc, &st);
	run = (vc + 1) << q->cluster_bits;
	while (ret == 0 && run < end) {
		if ((ret = qcow2_cluster_status(q, run >> q->cluster_bits,
		    &next)) < 0 || next != st)
			break;
		run += q->cs;
	}
	pthread_mutex_unlock(&q->lock);
	if (ret < 0)
		return ret;
	*n = (run < end ? run : end) - off;
	if (st != QCOW2_ST_BACKING)
		return st;
	/* the backing file is read-only and has its own lock */
	blen = blkdev_length(q->backing);
	if (off >= blen)
		return BLKDEV_STATUS_ZERO;
	run = *n;
	st = blkdev_block_status(q->backing, off, run < blen - off ? run :
	    blen - off, n);
	/* zeros up to the backing file's end go on past it */
	if (st == BLKDEV_STATUS_ZERO && off + *n == blen)
		*n = run;
	return st;
}

static void
qcow2_info(struct blkdev *bd, struct blkdev_info *info)
{
	struct qcow2 *q = (struct qcow2 *)bd;
	struct stat st;

	snprintf(info->format, sizeof(info->format), "qcow2");
	info->cluster_size = (uint32_t)q->cs;
	if (fstat(q->fd, &st) == 0)
		info->disk_size = (uint64_t)st.st_blocks * 512;
	snprintf(info->backing, sizeof(info->backing), "%s", q->backing_name);
	snprintf(info->backing_format, sizeof(info->backing_format), "%s",
	    q->backing_fmt);
}

static void
qcow2_free(struct qcow2 *q)
{
	int i;

	if (q->fd >= 0)
		close(q->fd);
	blkdev_close(q->backing);
	for (i = 0; i < QCOW2_L2C_N; i++)
		free(q->l2c[i].buf);
	for (i = 0; i < QCOW2_RBC_N; i++)
		free(q->rbc[i].buf);
	free(q->l1);
	free(q->rt);
	free(q->cow);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->idle);
	free(q);
}

static void
qcow2_close(struct blkdev *bd)
{
	struct qcow2 *q = (struct qcow2 *)bd;

	if (!bd->readonly && qcow2_flush(bd) < 0)
		log_warn("%s: writing back metadata at close", bd->path);
	qcow2_free(q);
}

static const struct blkdev_ops qcow2_ops = {
	.name = "qcow2",
	.pread = qcow2_pread,
	.pwrite = qcow2_pwrite,
	.flush = qcow2_flush,
	.discard = qcow2_discard,
	.write_zeroes = qcow2_write_zeroes,
	.block_status = qcow2_block_status,
	.info = qcow2_info,
	.close = qcow2_close,
};

/* --- opening: validate everything before trusting any of it --- */

struct qcow2_hdr {
	uint32_t magic, version, backing_size, cluster_bits, crypt, l1_size;
	uint32_t rt_clusters, nb_snapshots, rc_order, hdr_len;
	uint64_t backing_off, size, l1_off, rt_off, snap_off;
	uint64_t incompat, compat, autoclear;
};

static void
qcow2_hdr_parse(const uint8_t *b, struct qcow2_hdr *h)
{
	h->magic = qcow2_format_get32(b);
	h->version = qcow2_format_get32(b + 4);
	h->backing_off = qcow2_format_get64(b + 8);
	h->backing_size = qcow2_format_get32(b + 16);
	h->cluster_bits = qcow2_format_get32(b + 20);
	h->size = qcow2_format_get64(b + 24);
	h->crypt = qcow2_format_get32(b + 32);
	h->l1_size = qcow2_format_get32(b + 36);
	h->l1_off = qcow2_format_get64(b + 40);
	h->rt_off = qcow2_format_get64(b + 48);
	h->rt_clusters = qcow2_format_get32(b + 56);
	h->nb_snapshots = qcow2_format_get32(b + 60);
	h->snap_off = qcow2_format_get64(b + 64);
	h->incompat = qcow2_format_get64(b + 72);
	h->compat = qcow2_format_get64(b + 80);
	h->autoclear = qcow2_format_get64(b + 88);
	h->rc_order = qcow2_format_get32(b + 96);
	h->hdr_len = qcow2_format_get32(b + 100);
}

#define QCOW2_BAD(...) blkdev_err(-EINVAL, err, errlen, __VA_ARGS__)

static int
qcow2_check_basic(const struct qcow2_hdr *h, const char *p, uint64_t fsize,
    bool ro, char *err, size_t errlen)
{
	if (h->magic != QCOW2_MAGIC)
		return QCOW2_BAD("%s: not a qcow2 image (bad magic)", p);
	if (h->version != 3)
		return QCOW2_BAD("%s: qcow2 version %u; termvisor reads version 3 "
		    "(upgrade with: qemu-img amend -o compat=1.1 %s)", p,
		    h->version, p);
	if (fsize < QCOW2_HDR_V3)
		return QCOW2_BAD("%s: file too short for a qcow2 v3 header", p);
	if (h->cluster_bits < 9 || h->cluster_bits > 21)
		return QCOW2_BAD("%s: cluster_bits %u out of range 9..21", p,
		    h->cluster_bits);
	if (h->hdr_len < QCOW2_HDR_V3 || h->hdr_len > (1u << h->cluster_bits))
		return QCOW2_BAD("%s: header_length %u out of range", p,
		    h->hdr_len);
	if (h->crypt != 0)
		return QCOW2_BAD("%s: encrypted images are not supported", p);
	if (h->incompat & ~QCOW2_INCOMPAT_KNOWN)
		return QCOW2_BAD("%s: unknown incompatible features %#llx "
		    "(external data file or newer format); refusing to open", p,
		    (unsigned long long)(h->incompat & ~QCOW2_INCOMPAT_KNOWN));
	if (!ro && (h->incompat & QCOW2_INCOMPAT_CORRUPT))
		return QCOW2_BAD("%s: image is marked corrupt; repair it with "
		    "qemu-img check -r all, or open it read-only", p);
	if (!ro && (h->incompat & QCOW2_INCOMPAT_DIRTY))
		return QCOW2_BAD("%s: image is dirty (refcounts may be stale); "
		    "repair it with qemu-img check -r all", p);
	if (h->rc_order > 6)
		return QCOW2_BAD("%s: refcount_order %u overflows 64-bit "
		    "refcounts", p, h->rc_order);
	if (!ro && h->nb_snapshots != 0)
		return QCOW2_BAD("%s: has %u internal snapshots; termvisor can "
		    "only read such images", p, h->nb_snapshots);
	return 0;
}

/* Is [off, off + len) a cluster-aligned region inside the file that
 * leaves the header cluster alone? */
static bool
qcow2_region_ok(uint64_t off, uint64_t len, uint64_t cs, uint64_t fsize)
{
	return off % cs == 0 && off >= cs && off <= fsize && len <= fsize - off;
}

static int
qcow2_check_layout(const struct qcow2_hdr *h, const char *p, uint64_t fsize,
    char *err, size_t errlen)
{
	uint64_t cs = 1ull << h->cluster_bits, per_l2 = cs * (cs / 8);
	uint64_t need = h->size / per_l2 + (h->size % per_l2 != 0);
	uint64_t rtlen = (uint64_t)h->rt_clusters * cs;

	if (h->size > (1ull << 62))
		return QCOW2_BAD("%s: virtual size %llu is absurd", p,
		    (unsigned long long)h->size);
	if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES || h->l1_size < need)
		return QCOW2_BAD("%s: L1 table has %u entries, %llu needed for "
		    "the virtual size", p, h->l1_size, (unsigned long long)need);
	if (h->l1_size != 0 && !qcow2_region_ok(h->l1_off, h->l1_size * 8ull,
	    cs, fsize))
		return QCOW2_BAD("%s: L1 table at %#llx overlaps the header, is "
		    "misaligned or runs past the end of the file", p,
		    (unsigned long long)h->l1_off);
	if (h->rt_clusters == 0 || rtlen > QCOW2_MAX_RT_BYTES)
		return QCOW2_BAD("%s: refcount table of %u clusters overflows the "
		    "limit", p, h->rt_clusters);
	if (!qcow2_region_ok(h->rt_off, rtlen, cs, fsize))
		return QCOW2_BAD("%s: refcount table at %#llx overlaps the header, "
		    "is misaligned or runs past the end of the file", p,
		    (unsigned long long)h->rt_off);
	if (h->l1_size != 0 && qcow2_overlap(h->l1_off, h->l1_size * 8ull,
	    h->rt_off, rtlen))
		return QCOW2_BAD("%s: L1 table overlaps the refcount table", p);
	if (h->nb_snapshots != 0 && !qcow2_region_ok(h->snap_off, 8, cs, fsize))
		return QCOW2_BAD("%s: snapshot table offset %#llx is bad", p,
		    (unsigned long long)h->snap_off);
	if (h->backing_off != 0 && (h->backing_size == 0 ||
	    h->backing_size > QCOW2_MAX_BACKING_NAME ||
	    h->backing_off < h->hdr_len ||
	    h->backing_off + h->backing_size > cs))
		return QCOW2_BAD("%s: backing file name (offset %llu, %u bytes) "
		    "is not inside the header cluster", p,
		    (unsigned long long)h->backing_off, h->backing_size);
	return 0;
}

/* Header extensions: only the backing format matters to us. */
static int
qcow2_parse_ext(struct qcow2 *q, const uint8_t *c, const struct qcow2_hdr *h,
    char *err, size_t errlen)
{
	uint64_t pos = h->hdr_len, end = h->backing_off ? h->backing_off : q->cs;
	uint32_t type, len;

	while (pos + 8 <= end) {
		type = qcow2_format_get32(c + pos);
		len = qcow2_format_get32(c + pos + 4);
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - pos - 8)
			return QCOW2_BAD("%s: header extension %#x at %llu runs past "
			    "the header", q->bd.path, type,
			    (unsigned long long)pos);
		if (type == QCOW2_EXT_BACKING_FMT) {
			if (len >= sizeof(q->backing_fmt))
				return QCOW2_BAD("%s: backing format name too long",
				    q->bd.path);
			memcpy(q->backing_fmt, c + pos + 8, len);
			q->backing_fmt[len] = '\0';
		}
		pos += 8 + ((len + 7ull) & ~7ull);
	}
	return 0;
}

static int
qcow2_load_tables(struct qcow2 *q, const char *p, char *err, size_t errlen)
{
	uint64_t i, e, off;
	uint8_t *b;
	int ret;

	q->l1 = calloc(q->l1_size ? q->l1_size : 1, 8);
	q->rt = calloc(q->rt_n, 8);
	b = malloc(q->rt_n * 8 > q->l1_size * 8ull ? q->rt_n * 8 :
	    q->l1_size * 8ull + 8);
	if (q->l1 == NULL || q->rt == NULL || b == NULL) {
		ret = blkdev_err(-ENOMEM, err, errlen, "%s: out of memory", p);
		goto out;
	}
	if ((ret = qcow2_file_read(q, b, q->l1_size * 8ull, q->l1_off)) < 0)
		goto io;
	for (i = 0; i < q->l1_size; i++) {
		e = qcow2_format_get64(b + 8 * i);
		off = e & QCOW2_OFF_MASK;
		if ((e & QCOW2_L1_RESERVED) || (off != 0 &&
		    (!qcow2_region_ok(off, q->cs, q->cs, q->file_end) ||
		    qcow2_overlap(off, q->cs, q->l1_off, q->l1_size * 8ull) ||
		    qcow2_overlap(off, q->cs, q->rt_off, q->rt_n * 8)))) {
			ret = QCOW2_BAD("%s: L1 entry %llu (%#llx) points outside "
			    "the file, at other metadata, or has reserved bits",
			    p, (unsigned long long)i, (unsigned long long)e);
			goto out;
		}
		q->l1[i] = e;
	}
	if ((ret = qcow2_file_read(q, b, q->rt_n * 8, q->rt_off)) < 0)
		goto io;
	for (i = 0; i < q->rt_n; i++) {
		e = qcow2_format_get64(b + 8 * i);
		if ((e & QCOW2_RT_RESERVED) || (e != 0 &&
		    (!qcow2_region_ok(e, q->cs, q->cs, q->file_end) ||
		    qcow2_overlap(e, q->cs, q->rt_off, q->rt_n * 8)))) {
			ret = QCOW2_BAD("%s: refcount table entry %llu (%#llx) "
			    "points outside the file or at other metadata", p,
			    (unsigned long long)i, (unsigned long long)e);
			goto out;
		}
		q->rt[i] = e;
	}
	ret = 0;
	goto out;
io:
	blkdev_err(ret, err, errlen, "%s: %s", p, strerror(-ret));
out:
	free(b);
	return ret;
}

/* Metadata with a zero refcount would be handed out again as free space
 * and overwritten: refuse such an image rather than destroy it. */
static int
qcow2_check_meta_refs(struct qcow2 *q, const char *p, char *err,
    size_t errlen)
{
	uint64_t c, rc, i, what_off;
	const char *what;
	int ret;

	for (i = 0; i < 3 + q->rt_n + q->l1_size; i++) {
		if (i == 0) {
			what = "header", what_off = 0;
		} else if (i == 1) {
			what = "L1 table", what_off = q->l1_off;
		} else if (i == 2) {
			what = "refcount table", what_off = q->rt_off;
		} else if (i < 3 + q->rt_n) {
			what = "refcount block", what_off = q->rt[i - 3];
		} else {
			what = "L2 table";
			what_off = q->l1[i - 3 - q->rt_n] & QCOW2_OFF_MASK;
		}
		if ((i > 2 && what_off == 0) || (i == 1 && q->l1_size == 0))
			continue;
		c = what_off / q->cs;
		if ((ret = qcow2_rc_get(q, c, &rc)) < 0)
			return blkdev_err(ret, err, errlen, "%s: %s", p,
			    strerror(-ret));
		if (rc == 0)
			return QCOW2_BAD("%s: %s at %#llx has refcount 0 (corrupt "
			    "refcounts; repair with qemu-img check -r all)", p,
			    what, (unsigned long long)what_off);
	}
	return 0;
}

static int
qcow2_open_backing(struct qcow2 *q, const uint8_t *c,
    const struct qcow2_hdr *h, unsigned flags, const struct blkdev_chain *me,
    char *err, size_t errlen)
{
	char path[8192], dir[4096], sub[1024];
	int ret;

	memcpy(q->backing_name, c + h->backing_off, h->backing_size);
	q->backing_name[h->backing_size] = '\0';
	if (strlen(q->backing_name) != h->backing_size)
		return QCOW2_BAD("%s: backing file name contains a NUL byte",
		    q->bd.path);
	snprintf(dir, sizeof(dir), "%s", q->bd.path);
	if (q->backing_name[0] == '/')
		snprintf(path, sizeof(path), "%s", q->backing_name);
	else
		snprintf(path, sizeof(path), "%s/%s", dirname(dir),
		    q->backing_name);
	ret = blkdev_open_chain(&q->backing, path, q->backing_fmt,
	    BLKDEV_RDONLY | (flags & BLKDEV_NOLOCK), me, sub, sizeof(sub));
	if (ret == -ELOOP)	/* the innermost message says it all */
		return blkdev_err(ret, err, errlen, "%s", sub);
	if (ret < 0)
		return blkdev_err(ret, err, errlen, "%s: backing file: %s",
		    q->bd.path, sub);
	return 0;
}

static int
qcow2_setup(struct qcow2 *q, const struct qcow2_hdr *h)
{
	q->cluster_bits = h->cluster_bits;
	q->cs = 1ull << h->cluster_bits;
	q->l2_bits = h->cluster_bits - 3;
	q->l2_entries = q->cs / 8;
	q->incompat = h->incompat;
	q->compat = h->compat;
	q->autoclear = h->autoclear;
	q->l1_size = h->l1_size;
	q->l1_off = h->l1_off;
	q->rt_off = h->rt_off;
	q->rt_clusters = h->rt_clusters;
	q->rt_n = h->rt_clusters * q->cs / 8;
	q->rc_bits = 1u << h->rc_order;
	q->rb_entries = q->cs * 8 / q->rc_bits;
	q->rc_max = q->rc_bits == 64 ? UINT64_MAX : (1ull << q->rc_bits) - 1;
	q->nb_snapshots = h->nb_snapshots;
	q->snap_off = h->snap_off;
	q->bd.length = h->size;
	q->cow = malloc(q->cs);
	return q->cow == NULL ? -ENOMEM : 0;
}

static int
qcow2_open_fd(struct qcow2 *q, unsigned flags, const struct blkdev_chain *up,
    char *err, size_t errlen)
{
	const char *p = q->bd.path;
	uint8_t hb[QCOW2_HDR_V3], *c = NULL;
	struct blkdev_chain me;
	struct qcow2_hdr h;
	struct stat st;
	int ret;

	if (fstat(q->fd, &st) < 0)
		return blkdev_err(-errno, err, errlen, "%s: %s", p, strerror(errno));
	q->file_end = (uint64_t)st.st_size;
	for (me.up = up; up != NULL; up = up->up)
		if (up->dev == st.st_dev && up->ino == st.st_ino)
			return blkdev_err(-ELOOP, err, errlen, "%s: the backing chain "
			    "loops back to this image", p);
	me.dev = st.st_dev;
	me.ino = st.st_ino;
	me.depth = me.up != NULL ? me.up->depth + 1 : 0;
	if (!(flags & BLKDEV_NOLOCK) && (ret = blkdev_lock_image(q->fd,
	    !q->bd.readonly, p, err, errlen)) < 0)
		return ret;
	if ((ret = qcow2_file_read(q, hb, sizeof(hb), 0)) < 0)
		return blkdev_err(ret, err, errlen, "%s: %s", p, strerror(-ret));
	if (q->file_end < 8)
		return QCOW2_BAD("%s: file too short to be a qcow2 image", p);
	qcow2_hdr_parse(hb, &h);
	if ((ret = qcow2_check_basic(&h, p, q->file_end, q->bd.readonly, err,
	    errlen)) < 0 ||
	    (ret = qcow2_check_layout(&h, p, q->file_end, err, errlen)) < 0)
		return ret;
	/* the whole header cluster: extensions and backing name live there */
	if ((c = calloc(1, 1u << h.cluster_bits)) == NULL)
		return blkdev_err(-ENOMEM, err, errlen, "%s: out of memory", p);
	if ((ret = qcow2_file_read(q, c, 1u << h.cluster_bits, 0)) < 0) {
		blkdev_err(ret, err, errlen, "%s: %s", p, strerror(-ret));
		goto out;
	}
	if ((ret = qcow2_setup(q, &h)) < 0) {
		blkdev_err(ret, err, errlen, "%s: out of memory", p);
		goto out;
	}
	if ((ret = qcow2_parse_ext(q, c, &h, err, errlen)) < 0 ||
	    (ret = qcow2_load_tables(q, p, err, errlen)) < 0 ||
	    (ret = qcow2_check_meta_refs(q, p, err, errlen)) < 0)
		goto out;
	if (h.backing_off != 0)
		ret = qcow2_open_backing(q, c, &h, flags, &me, err, errlen);
out:
	free(c);
	return ret;
}

int
qcow2_open(struct blkdev **out, const char *path, unsigned flags,
    const struct blkdev_chain *up, char *err, size_t errlen)
{
	struct qcow2 *q;
	int ret;

	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return blkdev_err(-ENOMEM, err, errlen, "%s: out of memory", path);
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->idle, NULL);
	q->bd.ops = &qcow2_ops;
	q->bd.readonly = (flags & BLKDEV_RDONLY) != 0;
	q->barriers = true;
	snprintf(q->bd.path, sizeof(q->bd.path), "%s", path);
	q->fd = open(path, (q->bd.readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (q->fd < 0) {
		ret = blkdev_err(-errno, err, errlen, "%s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if ((ret = qcow2_open_fd(q, flags, up, err, errlen)) < 0)
		goto fail;
	q->bd.lock_fd = q->fd;
	q->bd.locked = !(flags & BLKDEV_NOLOCK);
	q->free_hint = 1;
	*out = &q->bd;
	return 0;
fail:
	qcow2_free(q);
	return ret;
}

int
qcow2_geometry(struct blkdev *bd, struct qcow2_geometry *g)
{
	struct qcow2 *q = (struct qcow2 *)bd;

	if (bd->ops != &qcow2_ops)
		return -EINVAL;
	pthread_mutex_lock(&q->lock);
	*g = (struct qcow2_geometry){ .cluster_size = q->cs,
	    .size = q->bd.length, .l1_offset = q->l1_off, .rt_offset = q->rt_off,
	    .l1_size = q->l1_size, .rt_clusters = q->rt_clusters,
	    .nb_snapshots = q->nb_snapshots, .cluster_bits = q->cluster_bits,
	    .refcount_bits = q->rc_bits };
	pthread_mutex_unlock(&q->lock);
	return 0;
}
