/*
 * Disk records: the storage copied with the VM (`migrate --copy-storage`,
 * stream version 2), as QEMU's drive-mirror or vMotion's Storage vMotion.
 *
 * The source sends each disk's header ('D') and every chunk that is not
 * all zeros ('B') while the guest runs, having started the block layer's
 * dirty tracking first; then, interleaved with the RAM rounds, the chunks
 * written since; then, with the guest stopped and its requests drained,
 * the last ones.  A chunk seen again later simply overwrites.
 *
 * Everything a loader reads here comes from another host: a 'B' record is
 * walked once to check it (a disk with a header, offsets aligned and
 * inside that disk, sizes that add up) before anything is written.
 */
#include "migrate/migrate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmfs/blkdev.h"

static void
migrate_disk_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
migrate_disk_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
migrate_disk_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
migrate_disk_get64(const uint8_t *p)
{
	return (uint64_t)migrate_disk_get32(p) |
	    (uint64_t)migrate_disk_get32(p + 4) << 32;
}

static uint64_t
migrate_disk_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- the disk header --- */

size_t
migrate_disk_hdr_encode(const struct migrate_disk_hdr *h, uint8_t *buf,
    size_t len)
{
	if (len < MIGRATE_DISK_HDR_LEN)
		return 0;
	memset(buf, 0, MIGRATE_DISK_HDR_LEN);
	migrate_disk_put32(buf, h->index);
	migrate_disk_put32(buf + 4, h->chunk_shift);
	migrate_disk_put64(buf + 8, h->virtual_size);
	migrate_disk_put32(buf + 16, h->cluster_size);
	memcpy(buf + 20, h->format, strnlen(h->format, sizeof(h->format) - 1));
	memcpy(buf + 28, h->file, strnlen(h->file, sizeof(h->file) - 1));
	return MIGRATE_DISK_HDR_LEN;
}

/* A name a file may have in the VM's directory. */
static bool
migrate_disk_file_ok(const char *f)
{
	if (f[0] == '\0' || f[0] == '.')
		return false;
	for (const char *c = f; *c; c++)
		if (*c == '/' || (unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	return true;
}

int
migrate_disk_hdr_decode(struct migrate_disk_hdr *h, const uint8_t *p,
    size_t len, char *err, size_t errlen)
{
	memset(h, 0, sizeof(*h));
	if (len != MIGRATE_DISK_HDR_LEN) {
		snprintf(err, errlen, "disk header of %zu bytes (expected %d)",
		    len, MIGRATE_DISK_HDR_LEN);
		return -EPROTO;
	}
	h->index = migrate_disk_get32(p);
	h->chunk_shift = migrate_disk_get32(p + 4);
	h->virtual_size = migrate_disk_get64(p + 8);
	h->cluster_size = migrate_disk_get32(p + 16);
	memcpy(h->format, p + 20, sizeof(h->format));
	memcpy(h->file, p + 28, sizeof(h->file));
	/* NUL-padded fields that fill their room are not ours. */
	if (h->format[sizeof(h->format) - 1] != '\0' ||
	    h->file[sizeof(h->file) - 1] != '\0') {
		snprintf(err, errlen, "disk header: unterminated name");
		return -EPROTO;
	}
	if (h->index >= MIGRATE_MAX_DISKS) {
		snprintf(err, errlen, "disk header: disk %u (at most %d "
		    "disks)", h->index, MIGRATE_MAX_DISKS);
		return -EPROTO;
	}
	if (h->chunk_shift < MIGRATE_CHUNK_SHIFT_MIN ||
	    h->chunk_shift > MIGRATE_CHUNK_SHIFT_MAX) {
		snprintf(err, errlen, "disk %u: chunk size 2^%u out of range",
		    h->index, h->chunk_shift);
		return -EPROTO;
	}
	if (h->virtual_size == 0 || h->virtual_size % 512 != 0 ||
	    h->virtual_size > (UINT64_C(1) << 60)) {
		snprintf(err, errlen, "disk %u: bad size %llu", h->index,
		    (unsigned long long)h->virtual_size);
		return -EPROTO;
	}
	if (strcmp(h->format, "raw") != 0 && (strcmp(h->format, "qcow2") != 0 ||
	    h->cluster_size < 512 || h->cluster_size > (2u << 20) ||
	    (h->cluster_size & (h->cluster_size - 1)) != 0)) {
		snprintf(err, errlen, "disk %u: format '%s' (cluster size %u) "
		    "is not one this termvisor writes", h->index, h->format,
		    h->cluster_size);
		return -EPROTO;
	}
	if (!migrate_disk_file_ok(h->file)) {
		snprintf(err, errlen, "disk %u: '%s' is not a plain file name",
		    h->index, h->file);
		return -EPROTO;
	}
	return 0;
}

/* --- chunk batches --- */

int
migrate_blocks_init(struct migrate_blocks *b, unsigned chunk_shift)
{
	memset(b, 0, sizeof(*b));
	b->cap = 8 + MIGRATE_DISK_BATCH * (8 + ((size_t)1 << chunk_shift));
	if ((b->buf = malloc(b->cap)) == NULL)
		return -ENOMEM;
	migrate_blocks_reset(b, 0);
	return 0;
}

void
migrate_blocks_free(struct migrate_blocks *b)
{
	free(b->buf);
	b->buf = NULL;
}

void
migrate_blocks_reset(struct migrate_blocks *b, uint32_t index)
{
	b->index = index;
	b->count = 0;
	b->len = 8;
	migrate_disk_put32(b->buf, index);
	migrate_disk_put32(b->buf + 4, 0);
}

void
migrate_blocks_add(struct migrate_blocks *b, uint64_t off,
    const uint8_t *data, size_t len, bool zero)
{
	/* Our own bug if it does not fit: the caller sized the buffer. */
	if (b->count >= MIGRATE_DISK_BATCH || b->cap - b->len < 8 + len)
		abort();
	migrate_disk_put64(b->buf + b->len, off | (zero ? MIGRATE_CHUNK_ZERO :
	    0));
	b->len += 8;
	if (!zero) {
		memcpy(b->buf + b->len, data, len);
		b->len += len;
	}
	b->count++;
	migrate_disk_put32(b->buf + 4, b->count);
}

bool
migrate_is_zero(const uint8_t *data, size_t len)
{
	size_t i = 0;

	for (; i + 64 <= len; i += 64) {
		uint64_t w[8], acc = 0;

		memcpy(w, data + i, 64);
		for (int k = 0; k < 8; k++)
			acc |= w[k];
		if (acc != 0)
			return false;
	}
	for (; i < len; i++)
		if (data[i] != 0)
			return false;
	return true;
}

/* Walk a 'B' payload; with apply false only check it. */
static int
migrate_blocks_walk(struct migrate_disk *disks, int n, const uint8_t *p,
    size_t len, bool apply, char *err, size_t errlen)
{
	struct migrate_disk *d;
	uint32_t index, count;
	size_t off = 8;
	int r;

	if (len < 8) {
		snprintf(err, errlen, "disk chunks: record too short");
		return -EPROTO;
	}
	index = migrate_disk_get32(p);
	count = migrate_disk_get32(p + 4);
	if (index >= (uint32_t)n || disks[index].bd == NULL) {
		snprintf(err, errlen, "disk chunks for disk %u, which has no "
		    "header", index);
		return -EPROTO;
	}
	d = &disks[index];
	if (count > MIGRATE_DISK_BATCH) {
		snprintf(err, errlen, "disk %u: %u chunks in one record (at "
		    "most %d)", index, count, MIGRATE_DISK_BATCH);
		return -EPROTO;
	}
	for (uint32_t i = 0; i < count; i++) {
		uint64_t a, pos, clen, csize = UINT64_C(1) << d->chunk_shift;
		bool zero;

		if (len - off < 8)
			goto short_rec;
		a = migrate_disk_get64(p + off);
		off += 8;
		zero = a & MIGRATE_CHUNK_ZERO;
		pos = a & ~(uint64_t)MIGRATE_CHUNK_ZERO;
		if ((pos & (csize - 1)) != 0 || pos >= d->size) {
			snprintf(err, errlen, "disk %u: chunk at %#llx is not "
			    "a chunk of the disk (%llu bytes)", index,
			    (unsigned long long)a,
			    (unsigned long long)d->size);
			return -EPROTO;
		}
		clen = d->size - pos < csize ? d->size - pos : csize;
		if (!zero && len - off < clen)
			goto short_rec;
		if (apply) {
			r = zero ? blkdev_write_zeroes(d->bd, pos, clen) :
			    blkdev_pwrite(d->bd, p + off, clen, pos);
			if (r < 0) {
				snprintf(err, errlen, "disk %u: cannot write "
				    "%llu bytes at %llu: %s", index,
				    (unsigned long long)clen,
				    (unsigned long long)pos, strerror(-r));
				return r;
			}
			d->chunks_written++;
		}
		off += zero ? 0 : clen;
	}
	if (off != len) {
		snprintf(err, errlen, "disk %u: %zu bytes past its chunks",
		    index, len - off);
		return -EPROTO;
	}
	return 0;
short_rec:
	snprintf(err, errlen, "disk %u: record shorter than its chunks", index);
	return -EPROTO;
}

int
migrate_blocks_apply(struct migrate_disk *disks, int n, const uint8_t *p,
    size_t len, char *err, size_t errlen)
{
	int r;

	if ((r = migrate_blocks_walk(disks, n, p, len, false, err,
	    errlen)) < 0)
		return r;
	return migrate_blocks_walk(disks, n, p, len, true, err, errlen);
}

/* --- the source --- */

int
migrate_disk_src_init(struct migrate_disk_src *s, struct blkdev **bds,
    const struct migrate_disk_hdr *hdrs, int n, struct migrate_chan *ch)
{
	memset(s, 0, sizeof(*s));
	if (n > MIGRATE_MAX_DISKS)
		return -E2BIG;
	s->ch = ch;
	s->n = n;
	for (int i = 0; i < n; i++) {
		uint64_t words;

		s->d[i].bd = bds[i];
		s->d[i].hdr = hdrs[i];
		s->d[i].hdr.index = (uint32_t)i;
		s->d[i].hdr.chunk_shift = MIGRATE_CHUNK_SHIFT;
		s->d[i].hdr.virtual_size = blkdev_length(bds[i]);
		s->d[i].chunks = (s->d[i].hdr.virtual_size +
		    (1u << MIGRATE_CHUNK_SHIFT) - 1) >> MIGRATE_CHUNK_SHIFT;
		words = (s->d[i].chunks + 63) / 64 + 1;
		s->d[i].pending = calloc(words, sizeof(uint64_t));
		s->d[i].fetched = calloc(words, sizeof(uint64_t));
		if (s->d[i].pending == NULL || s->d[i].fetched == NULL)
			goto fail;
		s->total_bytes += s->d[i].hdr.virtual_size;
	}
	if ((s->chunk = malloc(1u << MIGRATE_CHUNK_SHIFT)) == NULL ||
	    migrate_blocks_init(&s->blocks, MIGRATE_CHUNK_SHIFT) < 0)
		goto fail;
	return 0;
fail:
	migrate_disk_src_fini(s);
	return -ENOMEM;
}

void
migrate_disk_src_fini(struct migrate_disk_src *s)
{
	for (int i = 0; i < s->n; i++) {
		if (s->d[i].tracked)
			blkdev_dirty_stop(s->d[i].bd);
		s->d[i].tracked = false;
		free(s->d[i].pending);
		free(s->d[i].fetched);
		s->d[i].pending = s->d[i].fetched = NULL;
	}
	free(s->chunk);
	s->chunk = NULL;
	migrate_blocks_free(&s->blocks);
}

/* The first copy keeps under the bandwidth limit: sleep off what it is
 * ahead.  (The rounds' chunks go with the pages, which keep to it.) */
static void
migrate_disk_src_throttle(struct migrate_disk_src *s)
{
	uint64_t due, el;
	struct timespec ts;

	if (s->bandwidth_limit == 0 || s->start_ns == 0)
		return;
	due = (uint64_t)((double)(s->ch->sent - s->start_sent) * 1e9 /
	    (double)s->bandwidth_limit);
	el = migrate_disk_now() - s->start_ns;
	if (due <= el)
		return;
	ts.tv_sec = (time_t)((due - el) / 1000000000ull);
	ts.tv_nsec = (long)((due - el) % 1000000000ull);
	nanosleep(&ts, NULL);
}

static int
migrate_disk_src_flush(struct migrate_disk_src *s)
{
	int r;

	if (s->blocks.count == 0)
		return 0;
	r = migrate_rec_send(s->ch, MIGRATE_REC_BLOCKS, s->blocks.buf,
	    s->blocks.len);
	migrate_blocks_reset(&s->blocks, s->blocks.index);
	migrate_disk_src_throttle(s);
	if (s->progress != NULL &&
	    migrate_disk_now() - s->progress_ns > 250000000ull) {
		s->progress_ns = migrate_disk_now();
		s->progress(s->opaque);
	}
	return r;
}

/*
 * Read chunk c of disk i and add it to the batch.  skip_zero: the first
 * copy leaves out chunks of zeros (a fresh destination image reads as
 * zeros); later rounds send them flagged, they may cover old data.
 */
static int
migrate_disk_src_chunk(struct migrate_disk_src *s, int i, uint64_t c,
    bool skip_zero)
{
	uint64_t off = c << MIGRATE_CHUNK_SHIFT, size = s->d[i].hdr.virtual_size;
	size_t len = (size_t)(size - off < (1u << MIGRATE_CHUNK_SHIFT) ?
	    size - off : (1u << MIGRATE_CHUNK_SHIFT));
	bool zero;
	int r;

	if ((r = blkdev_pread(s->d[i].bd, s->chunk, len, off)) < 0) {
		snprintf(s->ch->err, sizeof(s->ch->err), "disk %d: cannot "
		    "read %zu bytes at %llu: %s", i, len,
		    (unsigned long long)off, strerror(-r));
		return r;
	}
	zero = migrate_is_zero(s->chunk, len);
	if (zero && skip_zero) {
		s->skipped_chunks++;
		return 0;
	}
	s->zero_chunks += zero;
	if (s->blocks.index != (uint32_t)i || s->blocks.count >=
	    MIGRATE_DISK_BATCH) {
		if ((r = migrate_disk_src_flush(s)) < 0)
			return r;
		migrate_blocks_reset(&s->blocks, (uint32_t)i);
	}
	migrate_blocks_add(&s->blocks, off, s->chunk, len, zero);
	s->sent_chunks++;
	return 0;
}

static bool
migrate_disk_src_cancelled(struct migrate_disk_src *s)
{
	if (s->cancelled == NULL || !s->cancelled(s->opaque))
		return false;
	snprintf(s->ch->err, sizeof(s->ch->err), "cancelled");
	return true;
}

/* How far one block-status question looks (bounds the time the block
 * layer's metadata lock is held). */
#define MIGRATE_DISK_STATUS_MAX	(1ull << 30)

/*
 * Is chunk c of disk i a hole, as the block layer says without reading
 * it (a sparse file's hole, a qcow2 cluster never written)?  *known:
 * the end of the last answer's range, *zero: whether that was zeros;
 * the block layer is asked again once c is past it.  A hole is skipped
 * like a chunk read as zeros: the fresh copy reads zeros there, and a
 * write since tracking began is sent in a round.  A block layer that
 * cannot tell, or fails, means: read it.
 */
static bool
migrate_disk_src_hole(struct migrate_disk_src *s, int i, uint64_t c,
    uint64_t *known, bool *zero)
{
	uint64_t off = c << MIGRATE_CHUNK_SHIFT, size = s->d[i].hdr.virtual_size;
	uint64_t end = size - off < (1u << MIGRATE_CHUNK_SHIFT) ? size :
	    off + (1u << MIGRATE_CHUNK_SHIFT), n, len;
	int st;

	if (off >= *known) {
		len = size - off < MIGRATE_DISK_STATUS_MAX ? size - off :
		    MIGRATE_DISK_STATUS_MAX;
		st = blkdev_block_status(s->d[i].bd, off, len, &n);
		*zero = st == BLKDEV_STATUS_ZERO;
		*known = st < 0 ? size : off + n;
	}
	if (!*zero || end > *known)
		return false;	/* data, or zeros that end inside it */
	s->skipped_chunks++;
	return true;
}

int
migrate_disk_src_first(struct migrate_disk_src *s)
{
	uint8_t hdr[MIGRATE_DISK_HDR_LEN];
	uint64_t known;
	bool zero;
	int r;

	for (int i = 0; i < s->n; i++) {
		/* Before the first read: whatever the guest writes from now
		 * on is sent again. */
		if (!s->d[i].bd->readonly) {
			if ((r = blkdev_dirty_start(s->d[i].bd,
			    MIGRATE_CHUNK_SHIFT)) < 0)
				return r;
			s->d[i].tracked = true;
		}
	}
	s->start_ns = migrate_disk_now();
	s->start_sent = s->ch->sent;
	for (int i = 0; i < s->n; i++) {
		migrate_disk_hdr_encode(&s->d[i].hdr, hdr, sizeof(hdr));
		if ((r = migrate_disk_src_flush(s)) < 0 ||
		    (r = migrate_rec_send(s->ch, MIGRATE_REC_DISK, hdr,
		    sizeof(hdr))) < 0)
			return r;
		migrate_blocks_reset(&s->blocks, (uint32_t)i);
		known = 0;
		zero = false;
		for (uint64_t c = 0; c < s->d[i].chunks; c++) {
			if (c % 256 == 0 && migrate_disk_src_cancelled(s))
				return -ECANCELED;
			if (!migrate_disk_src_hole(s, i, c, &known, &zero) &&
			    (r = migrate_disk_src_chunk(s, i, c, true)) < 0)
				return r;
			s->copied_bytes += (uint64_t)1 << MIGRATE_CHUNK_SHIFT;
		}
	}
	if (s->copied_bytes > s->total_bytes)
		s->copied_bytes = s->total_bytes;
	if ((r = migrate_disk_src_flush(s)) < 0)
		return r;
	return migrate_rec_send(s->ch, MIGRATE_REC_DISKS_DONE, NULL, 0);
}

/* Fetch each tracked disk's dirty bits into pending; how many pending. */
static int64_t
migrate_disk_src_fetch(struct migrate_disk_src *s)
{
	int64_t total = 0;

	for (int i = 0; i < s->n; i++) {
		uint64_t words = (s->d[i].chunks + 63) / 64;
		int64_t got;

		if (!s->d[i].tracked)
			continue;
		got = blkdev_dirty_fetch(s->d[i].bd, s->d[i].fetched, words);
		if (got < 0)
			return got;
		for (uint64_t w = 0; w < words; w++) {
			s->d[i].pending[w] |= s->d[i].fetched[w];
			total += __builtin_popcountll(s->d[i].pending[w]);
		}
	}
	return total;
}

/* Send every pending chunk (and clear pending). */
static int
migrate_disk_src_send_pending(struct migrate_disk_src *s)
{
	int r;

	for (int i = 0; i < s->n; i++) {
		uint64_t words = (s->d[i].chunks + 63) / 64;

		for (uint64_t w = 0; w < words; w++) {
			uint64_t bits = s->d[i].pending[w];

			s->d[i].pending[w] = 0;
			while (bits != 0) {
				uint64_t c = w * 64 +
				    (uint64_t)__builtin_ctzll(bits);

				bits &= bits - 1;
				if (c >= s->d[i].chunks)
					break;
				if ((r = migrate_disk_src_chunk(s, i, c,
				    false)) < 0)
					return r;
			}
		}
	}
	return migrate_disk_src_flush(s);
}

int64_t
migrate_disk_src_round(struct migrate_disk_src *s, bool final)
{
	int64_t pending;
	int r;

	s->rounds++;
	if (final && (pending = migrate_disk_src_fetch(s)) < 0)
		return pending;
	if ((r = migrate_disk_src_send_pending(s)) < 0)
		return r;
	if (final) {
		s->dirty_chunks = 0;
		return 0;
	}
	s->start_ns = 0;	/* the first copy's limit is done with */
	if ((pending = migrate_disk_src_fetch(s)) < 0)
		return pending;
	s->dirty_chunks = (uint64_t)pending;
	return pending * ((1 << MIGRATE_CHUNK_SHIFT) / MIGRATE_PAGE);
}
