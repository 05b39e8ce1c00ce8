/*
 * The migration stream: a byte channel with timeouts, framed and
 * checksummed records, the hello record and batches of RAM pages.
 *
 * Everything read here comes from another host: every length is checked
 * against what arrived (and against a maximum, before any allocation),
 * and a page address against the destination's RAM, before use.
 */
#include "migrate/migrate.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

/* --- channel --- */

void
migrate_chan_init(struct migrate_chan *ch, int rfd, int wfd)
{
	memset(ch, 0, sizeof(*ch));
	ch->rfd = rfd;
	ch->wfd = wfd;
	ch->child = -1;
}

void
migrate_chan_close(struct migrate_chan *ch)
{
	if (ch->rfd >= 0)
		close(ch->rfd);
	if (ch->wfd >= 0 && ch->wfd != ch->rfd)
		close(ch->wfd);
	ch->rfd = ch->wfd = -1;
	if (ch->child > 0) {
		/* ssh has had its EOF; give it a moment, then make sure. */
		for (int i = 0; i < 50; i++) {
			if (waitpid(ch->child, NULL, WNOHANG) == ch->child) {
				ch->child = -1;
				return;
			}
			usleep(20000);
		}
		kill(ch->child, SIGTERM);
		for (int i = 0; i < 50; i++) {
			if (waitpid(ch->child, NULL, WNOHANG) == ch->child) {
				ch->child = -1;
				return;
			}
			usleep(20000);
		}
		kill(ch->child, SIGKILL);
		waitpid(ch->child, NULL, 0);
		ch->child = -1;
	}
}

/* Wait for fd to be ready for events; 0, or -ETIMEDOUT / -errno. */
static int
migrate_chan_wait(struct migrate_chan *ch, int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int waited = 0, r;

	/* In slices, so that a cancel from another thread is seen soon. */
	for (;;) {
		if (ch->cancel != NULL && atomic_load(ch->cancel)) {
			snprintf(ch->err, sizeof(ch->err), "cancelled");
			return -ECANCELED;
		}
		r = poll(&p, 1, 200);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			return 0;
		waited += 200;
		if (ch->timeout_ms > 0 && waited >= ch->timeout_ms) {
			snprintf(ch->err, sizeof(ch->err), "no progress for "
			    "%d ms", ch->timeout_ms);
			return -ETIMEDOUT;
		}
	}
}

int
migrate_chan_write(struct migrate_chan *ch, const void *p, size_t n)
{
	const uint8_t *b = p;
	ssize_t w;
	int r;

	while (n > 0) {
		if ((r = migrate_chan_wait(ch, ch->wfd, POLLOUT)) < 0)
			return r;
		w = write(ch->wfd, b, n);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0) {
			r = w < 0 ? -errno : -EPIPE;
			snprintf(ch->err, sizeof(ch->err), "connection lost: "
			    "%s", strerror(-r));
			return r;
		}
		b += w;
		n -= (size_t)w;
		ch->sent += (uint64_t)w;
	}
	return 0;
}

int
migrate_chan_read(struct migrate_chan *ch, void *p, size_t n)
{
	uint8_t *b = p;
	ssize_t got;
	int r;

	while (n > 0) {
		if ((r = migrate_chan_wait(ch, ch->rfd, POLLIN)) < 0)
			return r;
		got = read(ch->rfd, b, n);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0) {
			r = got < 0 ? -errno : -ECONNRESET;
			snprintf(ch->err, sizeof(ch->err), "%s", got == 0 ?
			    "the stream ended early (connection closed)" :
			    strerror(errno));
			return r;
		}
		b += got;
		n -= (size_t)got;
		ch->received += (uint64_t)got;
	}
	return 0;
}

/* --- records --- */

static void
migrate_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
migrate_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
migrate_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
migrate_get64(const uint8_t *p)
{
	return (uint64_t)migrate_get32(p) | (uint64_t)migrate_get32(p + 4) << 32;
}

int
migrate_rec_send(struct migrate_chan *ch, int type, const void *p, size_t len)
{
	uint8_t hdr[5], tail[4];
	uLong crc;
	int r;

	if (len > MIGRATE_REC_MAX)
		return -EMSGSIZE;
	hdr[0] = (uint8_t)type;
	migrate_put32(hdr + 1, (uint32_t)len);
	crc = crc32(0L, hdr, sizeof(hdr));
	if (len > 0)
		crc = crc32(crc, p, (uInt)len);
	migrate_put32(tail, (uint32_t)crc);
	if (len <= 512) {
		/* The hand-over records in one write: split in three, the
		 * later parts would wait for the peer's delayed ACK. */
		uint8_t one[5 + 512 + 4];

		memcpy(one, hdr, sizeof(hdr));
		if (len > 0)
			memcpy(one + 5, p, len);
		memcpy(one + 5 + len, tail, 4);
		return migrate_chan_write(ch, one, 9 + len);
	}
	if ((r = migrate_chan_write(ch, hdr, sizeof(hdr))) < 0 ||
	    (len > 0 && (r = migrate_chan_write(ch, p, len)) < 0) ||
	    (r = migrate_chan_write(ch, tail, sizeof(tail))) < 0)
		return r;
	return 0;
}

int
migrate_rec_recv(struct migrate_chan *ch, int *type, uint8_t **buf,
    size_t *cap, size_t *len, size_t max)
{
	uint8_t hdr[5], tail[4];
	uint32_t n;
	uLong crc;
	int r;

	if ((r = migrate_chan_read(ch, hdr, sizeof(hdr))) < 0)
		return r;
	n = migrate_get32(hdr + 1);
	if (n > max || n > MIGRATE_REC_MAX) {
		snprintf(ch->err, sizeof(ch->err), "record '%c' of %u bytes "
		    "is larger than allowed (%zu): not a termvisor migration "
		    "stream, or a corrupt one", hdr[0] >= 0x20 && hdr[0] < 0x7f
		    ? hdr[0] : '?', n, max);
		return -EPROTO;
	}
	if (n > *cap) {
		uint8_t *nb = realloc(*buf, n);

		if (nb == NULL)
			return -ENOMEM;
		*buf = nb;
		*cap = n;
	}
	if ((n > 0 && (r = migrate_chan_read(ch, *buf, n)) < 0) ||
	    (r = migrate_chan_read(ch, tail, sizeof(tail))) < 0)
		return r;
	crc = crc32(0L, hdr, sizeof(hdr));
	if (n > 0)
		crc = crc32(crc, *buf, n);
	if ((uint32_t)crc != migrate_get32(tail)) {
		snprintf(ch->err, sizeof(ch->err), "record '%c' of %u bytes: "
		    "checksum mismatch (corrupt stream)", hdr[0] >= 0x20 &&
		    hdr[0] < 0x7f ? hdr[0] : '?', n);
		return -EPROTO;
	}
	*type = hdr[0];
	*len = n;
	return 0;
}

/* --- hello --- */

#define MIGRATE_HELLO_LEN	(4 + 8 + 4 + 64)
#define MIGRATE_HELLO2_LEN	(MIGRATE_HELLO_LEN + 4 + 4)

size_t
migrate_hello_encode(const struct migrate_hello *h, uint8_t *buf, size_t len)
{
	size_t n = h->version >= 2 ? MIGRATE_HELLO2_LEN : MIGRATE_HELLO_LEN;

	if (len < n)
		return 0;
	memset(buf, 0, n);
	migrate_put32(buf, h->version);
	migrate_put64(buf + 4, h->ram_size);
	migrate_put32(buf + 12, h->nvcpus);
	memcpy(buf + 16, h->name, strnlen(h->name, sizeof(h->name) - 1));
	if (h->version >= 2) {
		migrate_put32(buf + MIGRATE_HELLO_LEN, h->flags);
		migrate_put32(buf + MIGRATE_HELLO_LEN + 4, h->ndisks);
	}
	return n;
}

int
migrate_hello_decode(struct migrate_hello *h, const uint8_t *p, size_t len)
{
	/* A newer writer may append fields; a shorter hello is not ours. */
	if (len < MIGRATE_HELLO_LEN)
		return -EPROTO;
	memset(h, 0, sizeof(*h));
	h->version = migrate_get32(p);
	h->ram_size = migrate_get64(p + 4);
	h->nvcpus = migrate_get32(p + 12);
	memcpy(h->name, p + 16, sizeof(h->name) - 1);
	if (h->version >= 2) {
		/* Version 2 has them: without them it is not version 2. */
		if (len < MIGRATE_HELLO2_LEN)
			return -EPROTO;
		h->flags = migrate_get32(p + MIGRATE_HELLO_LEN);
		h->ndisks = migrate_get32(p + MIGRATE_HELLO_LEN + 4);
	}
	return 0;
}

/* --- page batches --- */

int
migrate_batch_init(struct migrate_batch *b)
{
	memset(b, 0, sizeof(*b));
	if ((b->buf = malloc(MIGRATE_RAM_MAX)) == NULL)
		return -ENOMEM;
	migrate_batch_reset(b);
	return 0;
}

void
migrate_batch_free(struct migrate_batch *b)
{
	free(b->buf);
	b->buf = NULL;
}

void
migrate_batch_reset(struct migrate_batch *b)
{
	b->count = 0;
	b->len = 4;
}

bool
migrate_batch_full(const struct migrate_batch *b)
{
	return b->count >= MIGRATE_BATCH_PAGES;
}

static bool
migrate_page_is_zero(const uint8_t *page)
{
	const uint64_t *w = (const void *)page;
	uint64_t acc = 0;

	/* Eight words at a time: the first pass over a fresh guest is
	 * mostly zero pages, and this loop is what it costs. */
	for (unsigned i = 0; i < MIGRATE_PAGE / 8; i += 8) {
		acc |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] |
		    w[i + 5] | w[i + 6] | w[i + 7];
		if (acc != 0)
			return false;
	}
	return true;
}

void
migrate_batch_add(struct migrate_batch *b, uint64_t gpa, const uint8_t *page)
{
	/* The guest may be writing the page as we copy it: that is fine,
	 * the write marked it dirty and a later round sends it again. */
	if (migrate_page_is_zero(page)) {
		migrate_put64(b->buf + b->len, gpa | MIGRATE_PAGE_ZERO);
		b->len += 8;
		b->zero++;
	} else {
		migrate_put64(b->buf + b->len, gpa);
		memcpy(b->buf + b->len + 8, page, MIGRATE_PAGE);
		b->len += 8 + MIGRATE_PAGE;
		b->data++;
	}
	b->count++;
	migrate_put32(b->buf, b->count);
}

static uint8_t *
migrate_mem_page(const struct migrate_mem *mem, uint64_t gpa)
{
	for (int i = 0; i < mem->nregions; i++)
		if (gpa >= mem->r[i].gpa && gpa - mem->r[i].gpa <
		    mem->r[i].size && mem->r[i].size - (gpa - mem->r[i].gpa) >=
		    MIGRATE_PAGE)
			return mem->r[i].hva + (gpa - mem->r[i].gpa);
	return NULL;
}

/* Walk a batch; with apply false only check it. */
static int
migrate_ram_walk(const struct migrate_mem *mem, const uint8_t *p, size_t len,
    bool apply, char *err, size_t errlen)
{
	size_t off = 4;
	uint32_t count;

	if (len < 4 || (count = migrate_get32(p)) > MIGRATE_BATCH_PAGES) {
		snprintf(err, errlen, "RAM batch: bad page count");
		return -EPROTO;
	}
	for (uint32_t i = 0; i < count; i++) {
		uint64_t a;
		uint8_t *page;
		bool zero;

		if (len - off < 8)
			goto short_batch;
		a = migrate_get64(p + off);
		off += 8;
		zero = a & MIGRATE_PAGE_ZERO;
		if ((a & (MIGRATE_PAGE - 1) & ~(uint64_t)MIGRATE_PAGE_ZERO) ||
		    (page = migrate_mem_page(mem, a & ~(uint64_t)(MIGRATE_PAGE - 1)))
		    == NULL) {
			snprintf(err, errlen, "RAM batch: page %#llx is not "
			    "in this VM's RAM (do both sides have the same "
			    "memory size?)", (unsigned long long)a);
			return -EPROTO;
		}
		if (!zero && len - off < MIGRATE_PAGE)
			goto short_batch;
		/* A fresh destination's RAM is mostly zero and not yet
		 * allocated: writing zeros over it would allocate it all. */
		if (apply && zero) {
			if (!migrate_page_is_zero(page))
				memset(page, 0, MIGRATE_PAGE);
		} else if (apply) {
			memcpy(page, p + off, MIGRATE_PAGE);
		}
		off += zero ? 0 : MIGRATE_PAGE;
	}
	if (off != len) {
		snprintf(err, errlen, "RAM batch: %zu bytes past its pages",
		    len - off);
		return -EPROTO;
	}
	return 0;
short_batch:
	snprintf(err, errlen, "RAM batch: shorter than its pages");
	return -EPROTO;
}

int
migrate_ram_apply(const struct migrate_mem *mem, const uint8_t *p, size_t len,
    char *err, size_t errlen)
{
	int r;

	if ((r = migrate_ram_walk(mem, p, len, false, err, errlen)) < 0)
		return r;
	return migrate_ram_walk(mem, p, len, true, err, errlen);
}
