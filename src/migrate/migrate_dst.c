/*
 * The destination side: `termvisor run --incoming URI` receives a VM
 * into a VM object made from the same configuration and never run.
 *
 * The loader is one small state machine fed record by record, from the
 * channel or (fuzz target, tests) from a buffer:
 *   magic -> HELLO -> RAM* -> STATE -> END
 * Anything else, out of order, malformed, or failing a check is refused
 * with a reason; the caller then destroys the VM, so a half-loaded VM
 * never runs.  The hand-over that follows (READY, COMMIT, lock, GO) is
 * described in migrate_src.c.
 */
#include "migrate/migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "devices/virtio_net.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "migrate/vmstate.h"
#include "util/evloop.h"
#include "util/log.h"
#include "vmfs/vmfs_lock.h"

enum { MIGRATE_LOAD_HELLO, MIGRATE_LOAD_RAM, MIGRATE_LOAD_END,
    MIGRATE_LOAD_DONE };

struct migrate_load {
	struct vm *vm;
	struct migrate_mem mem;
	int stage;
	uint64_t pages;
	uint64_t load_ns;	/* spent loading the state record */
	char err[512];
};

static uint64_t
migrate_dst_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
migrate_load_init(struct migrate_load *l, struct vm *vm)
{
	memset(l, 0, sizeof(*l));
	l->vm = vm;
	l->mem.nregions = vm->nregions < 16 ? vm->nregions : 16;
	for (int i = 0; i < l->mem.nregions; i++) {
		l->mem.r[i].gpa = vm->regions[i].gpa;
		l->mem.r[i].size = vm->regions[i].size;
		l->mem.r[i].hva = vm->regions[i].hva;
	}
}

static int
migrate_load_hello(struct migrate_load *l, const uint8_t *p, size_t len)
{
	struct migrate_hello h;

	if (migrate_hello_decode(&h, p, len) < 0) {
		snprintf(l->err, sizeof(l->err), "malformed hello record");
		return -EPROTO;
	}
	if (h.version != MIGRATE_VERSION) {
		snprintf(l->err, sizeof(l->err), "stream version %u; this "
		    "termvisor reads version %u", h.version, MIGRATE_VERSION);
		return -EPROTO;
	}
	if (h.ram_size != l->vm->ram_size ||
	    h.nvcpus != (uint32_t)l->vm->nvcpus) {
		snprintf(l->err, sizeof(l->err), "the source VM has %llu MiB "
		    "and %u vCPUs, this one %llu MiB and %d: start the "
		    "destination with the same configuration",
		    (unsigned long long)(h.ram_size >> 20), h.nvcpus,
		    (unsigned long long)(l->vm->ram_size >> 20),
		    l->vm->nvcpus);
		return -EINVAL;
	}
	l->stage = MIGRATE_LOAD_RAM;
	return 0;
}

static int
migrate_load_state(struct migrate_load *l, const uint8_t *p, size_t len)
{
	uint64_t t0 = migrate_dst_now();
	struct snap s;
	int r;

	snap_init_load(&s, p, len);
	r = vmstate_load(l->vm, &s);
	l->load_ns = migrate_dst_now() - t0;
	if (r < 0)
		snprintf(l->err, sizeof(l->err), "the VM's state: %s",
		    s.errmsg[0] ? s.errmsg : strerror(-r));
	snap_free(&s);
	if (r == 0)
		l->stage = MIGRATE_LOAD_END;
	return r;
}

/* Feed one record to the loader.  0, or -errno with l->err. */
static int
migrate_load_record(struct migrate_load *l, int type, const uint8_t *p,
    size_t len)
{
	int r;

	if (type == MIGRATE_REC_NACK) {
		snprintf(l->err, sizeof(l->err), "the source gave up: %.*s",
		    (int)(len < 400 ? len : 400), (const char *)p);
		return -ECANCELED;
	}
	switch (l->stage) {
	case MIGRATE_LOAD_HELLO:
		if (type == MIGRATE_REC_HELLO)
			return migrate_load_hello(l, p, len);
		break;
	case MIGRATE_LOAD_RAM:
		if (type == MIGRATE_REC_RAM) {
			r = migrate_ram_apply(&l->mem, p, len, l->err,
			    sizeof(l->err));
			l->pages += r == 0 && len >= 4 ? p[0] | p[1] << 8 : 0;
			return r;
		}
		if (type == MIGRATE_REC_STATE)
			return migrate_load_state(l, p, len);
		break;
	case MIGRATE_LOAD_END:
		if (type == MIGRATE_REC_END && len == 0) {
			l->stage = MIGRATE_LOAD_DONE;
			return 0;
		}
		break;
	}
	snprintf(l->err, sizeof(l->err), "unexpected record '%c' (%zu bytes) "
	    "in the stream", type >= 0x20 && type < 0x7f ? type : '?', len);
	return -EPROTO;
}

/* Largest payload the loader takes in its current stage. */
static size_t
migrate_load_max(const struct migrate_load *l)
{
	return l->stage == MIGRATE_LOAD_RAM ? MIGRATE_REC_MAX : MIGRATE_RAM_MAX;
}

int
migrate_load_buffer(struct vm *vm, const uint8_t *buf, size_t len, char *err,
    size_t errlen)
{
	struct migrate_load l;
	size_t off = 8;
	int r = 0;

	migrate_load_init(&l, vm);
	if (len < 8 || memcmp(buf, MIGRATE_MAGIC, 8) != 0) {
		snprintf(err, errlen, "not a termvisor migration stream");
		return -EPROTO;
	}
	while (l.stage != MIGRATE_LOAD_DONE) {
		uint32_t n;
		uLong crc;
		int type;

		if (len - off < 9) {
			snprintf(l.err, sizeof(l.err), "the stream ends early");
			r = -EPROTO;
			break;
		}
		type = buf[off];
		n = (uint32_t)buf[off + 1] | (uint32_t)buf[off + 2] << 8 |
		    (uint32_t)buf[off + 3] << 16 | (uint32_t)buf[off + 4] << 24;
		if (n > migrate_load_max(&l) || len - off - 9 < n) {
			snprintf(l.err, sizeof(l.err), "record '%c' of %u "
			    "bytes: too large or cut short", type >= 0x20 &&
			    type < 0x7f ? type : '?', n);
			r = -EPROTO;
			break;
		}
		crc = crc32(0L, buf + off, 5 + n);
		if (memcmp(buf + off + 5 + n, (uint8_t[4]){ (uint8_t)crc,
		    (uint8_t)(crc >> 8), (uint8_t)(crc >> 16),
		    (uint8_t)(crc >> 24) }, 4) != 0) {
			snprintf(l.err, sizeof(l.err), "record '%c': checksum "
			    "mismatch", type >= 0x20 && type < 0x7f ? type : '?');
			r = -EPROTO;
			break;
		}
		if ((r = migrate_load_record(&l, type, buf + off + 5, n)) < 0)
			break;
		off += 9 + n;
	}
	if (r < 0)
		snprintf(err, errlen, "%s", l.err);
	return r;
}

/* Receive the whole stream from ch into vm. */
static int
migrate_dst_receive(struct migrate_load *l, struct migrate_chan *ch)
{
	uint8_t magic[8], *buf = NULL;
	size_t cap = 0, len;
	int type, r;

	if ((r = migrate_chan_read(ch, magic, sizeof(magic))) < 0) {
		snprintf(l->err, sizeof(l->err), "%s", ch->err);
		return r;
	}
	if (memcmp(magic, MIGRATE_MAGIC, 8) != 0) {
		snprintf(l->err, sizeof(l->err), "not a termvisor migration "
		    "stream");
		return -EPROTO;
	}
	while (l->stage != MIGRATE_LOAD_DONE) {
		r = migrate_rec_recv(ch, &type, &buf, &cap, &len,
		    migrate_load_max(l));
		if (r < 0) {
			snprintf(l->err, sizeof(l->err), "%s", ch->err);
			break;
		}
		if ((r = migrate_load_record(l, type, buf, len)) < 0)
			break;
	}
	free(buf);
	return r;
}

/* Accept connections until one proves it knows the secret. */
static int
migrate_dst_accept(int lfd, const char *secret, struct migrate_chan *ch)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), r, one = 1;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return -errno;
		}
		migrate_chan_init(ch, fd, fd);
		ch->timeout_ms = 10000;
		/* Our answers are small records the source waits for. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if ((r = migrate_auth_server(ch, secret)) == 0)
			return 0;
		log_warnx("incoming migration: refused a connection: %s",
		    ch->err);
		migrate_chan_close(ch);
	}
}

static int
migrate_dst_open(const struct migrate_incoming *in, struct migrate_chan *ch)
{
	struct migrate_uri u;
	char err[512];
	int lfd, r;

	if (migrate_uri_parse(in->uri, true, &u, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return -EINVAL;
	}
	if (u.kind == MIGRATE_URI_STDIO) {
		/* ssh: the stream on stdin, our answers on stdout. */
		migrate_chan_init(ch, dup(0), dup(1));
		return ch->rfd < 0 || ch->wfd < 0 ? -errno : 0;
	}
	if (in->secret == NULL || in->secret[0] == '\0') {
		log_warnx("--incoming %s needs --secret-file: the same secret "
		    "as the source's", in->uri);
		return -EINVAL;
	}
	if ((lfd = migrate_tcp_listen(&u, err, sizeof(err))) < 0) {
		log_warnx("%s", err);
		return lfd;
	}
	log_info("waiting for an incoming migration on %s:%s", u.host, u.port);
	r = migrate_dst_accept(lfd, in->secret, ch);
	close(lfd);
	return r;
}

static void
migrate_dst_nack(struct migrate_chan *ch, const char *why)
{
	int old = ch->timeout_ms;
	uint8_t sink[4096];

	ch->timeout_ms = 2000;
	migrate_rec_send(ch, MIGRATE_REC_NACK, why, strlen(why));
	/* Closing with the source's next records unread would reset the
	 * connection, and the reset can discard the refusal before the
	 * source reads it: say we are done, take what still comes (a
	 * commit sent at once, see migrate_src.c) until the source closes,
	 * a second at most. */
	shutdown(ch->wfd, SHUT_WR);
	for (uint64_t end = migrate_dst_now() + 1000000000ull;
	    migrate_dst_now() < end; ) {
		struct pollfd p = { .fd = ch->rfd, .events = POLLIN };

		if (poll(&p, 1, 100) < 0 || (p.revents != 0 &&
		    read(ch->rfd, sink, sizeof(sink)) <= 0))
			break;
	}
	ch->timeout_ms = old;
}

/* Take the VM's lock, which the source has just released. */
static int
migrate_dst_lock(const struct migrate_incoming *in, char *err, size_t errlen)
{
	int r = 0;

	if (in->vmdir == NULL || in->lockp == NULL)
		return 0;
	/* The source released it before COMMIT; on NFS the release may
	 * take a moment to show: retry for a few seconds. */
	for (int i = 0; i < 50; i++) {
		r = vmfs_lock_take(in->vmdir, NULL, in->lockp, err, errlen);
		if (r != -EBUSY)
			break;
		usleep(100000);
	}
	return r;
}

static void
migrate_dst_put32(uint8_t *p, uint64_t v)
{
	if (v > UINT32_MAX)
		v = UINT32_MAX;
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* When the go record left, for the resume's debug log. */
static uint64_t migrate_dst_go_ns;

/* Wait for COMMIT, take the lock, answer GO (with what loading and the
 * lock took, for the source's downtime breakdown). */
static int
migrate_dst_handover(const struct migrate_incoming *in,
    const struct migrate_load *l, struct migrate_chan *ch, char *err,
    size_t errlen)
{
	uint8_t *buf = NULL, go[8];
	size_t cap = 0, len;
	uint64_t t0;
	int type, r;

	if ((r = migrate_rec_send(ch, MIGRATE_REC_READY, NULL, 0)) < 0 ||
	    (r = migrate_rec_recv(ch, &type, &buf, &cap, &len, 4096)) < 0) {
		snprintf(err, errlen, "the source went away before handing the "
		    "VM over: %.400s", ch->err);
		free(buf);
		return r;
	}
	free(buf);
	if (type != MIGRATE_REC_COMMIT) {
		snprintf(err, errlen, "the source kept the VM");
		return -ECANCELED;
	}
	t0 = migrate_dst_now();
	if ((r = migrate_dst_lock(in, err, errlen)) < 0) {
		migrate_dst_nack(ch, err);
		return r;
	}
	migrate_dst_put32(go, l->load_ns / 1000);
	migrate_dst_put32(go + 4, (migrate_dst_now() - t0) / 1000);
	migrate_dst_go_ns = migrate_dst_now();
	if ((r = migrate_rec_send(ch, MIGRATE_REC_GO, go, sizeof(go))) < 0) {
		/* Harmless: the source finds the lock taken and ends. */
		log_warnx("incoming migration: could not confirm to the "
		    "source (%s); running the VM", ch->err);
	}
	return 0;
}

/* Once the VM runs here, its NICs tell the switches where it went. */
static struct vtimer migrate_dst_announce_timer;

static void
migrate_dst_announce(void *opaque)
{
	log_debug("incoming migration: the guest runs here %.1f ms after the "
	    "go", (double)(migrate_dst_now() - migrate_dst_go_ns) / 1e6);
	virtio_net_announce(opaque);
}

int
migrate_incoming(struct vm *vm, const struct migrate_incoming *in)
{
	struct migrate_load l;
	struct migrate_chan ch;
	struct timespec t0, t1;
	char err[512];
	int r;

	migrate_load_init(&l, vm);
	if ((r = migrate_dst_open(in, &ch)) < 0)
		return r;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ch.timeout_ms = in->timeout_ms > 0 ? in->timeout_ms : 60000;
	if ((r = migrate_dst_receive(&l, &ch)) < 0) {
		log_warnx("incoming migration failed: %s", l.err);
		migrate_dst_nack(&ch, l.err);
		migrate_chan_close(&ch);
		return r;
	}
	if ((r = migrate_dst_handover(in, &l, &ch, err, sizeof(err))) < 0) {
		log_warnx("incoming migration failed: %s", err);
		migrate_chan_close(&ch);
		return r;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info("incoming migration: %llu bytes, %llu page records "
	    "in %.2f s: running the VM", (unsigned long long)ch.received,
	    (unsigned long long)l.pages, (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	migrate_chan_close(&ch);
	/* A timer of the VM's loop: it fires (device lock held) as soon as
	 * vm_run() serves the loop, with the vCPUs started. */
	vtimer_init(&migrate_dst_announce_timer, vm->loop,
	    migrate_dst_announce, vm);
	vtimer_arm(&migrate_dst_announce_timer, vclock_ns());
	return 0;
}
