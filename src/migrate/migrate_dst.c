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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "migrate/vmstate.h"
#include "util/evloop.h"
#include "util/log.h"
#include "vmfs/blkdev.h"
#include "vmfs/qcow2.h"
#include "vmfs/raw.h"
#include "vmfs/vmfs_lock.h"
#include "vmfs/vmx.h"

enum { MIGRATE_LOAD_HELLO, MIGRATE_LOAD_CONFIG, MIGRATE_LOAD_DISKS,
    MIGRATE_LOAD_RAM, MIGRATE_LOAD_END, MIGRATE_LOAD_DONE };

struct migrate_pre;

struct migrate_load {
	struct vm *vm;		/* NULL while the storage is being created */
	struct migrate_mem mem;
	int stage;
	uint64_t pages;
	uint64_t load_ns;	/* spent loading the state record */
	struct migrate_hello hello;
	/* May the stream bring the storage?  Not into a VM whose disks
	 * are already there (a shared datastore). */
	bool disks_ok;
	struct migrate_disk disks[MIGRATE_MAX_DISKS];
	/* Creating the storage (migrate_incoming_storage), or NULL: the
	 * disk records then go to the VM's own disks (tests, fuzzing). */
	struct migrate_pre *pre;
	char err[512];
};

/*
 * A stream opened before its VM: the storage is created from it into
 * tmpdir (DATASTORE/.incoming-NAME-PID), renamed to vmdir once the
 * first copy is complete.
 */
struct migrate_pre {
	struct migrate_load l;
	struct migrate_chan ch;
	char vmdir[4096], tmpdir[4200], name[256];
	bool tmp_made, vmdir_made;	/* ours to remove on failure */
	struct vmx_doc vmx;
	bool vmx_parsed;
	char files[MIGRATE_MAX_DISKS][128];
	char formats[MIGRATE_MAX_DISKS][8];
	struct sigaction old[3];
	bool signals;
};

static uint64_t
migrate_dst_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
migrate_load_bind(struct migrate_load *l, struct vm *vm)
{
	l->vm = vm;
	l->mem.nregions = vm->nregions < 16 ? vm->nregions : 16;
	for (int i = 0; i < l->mem.nregions; i++) {
		l->mem.r[i].gpa = vm->regions[i].gpa;
		l->mem.r[i].size = vm->regions[i].size;
		l->mem.r[i].hva = vm->regions[i].hva;
	}
}

static void
migrate_load_init(struct migrate_load *l, struct vm *vm)
{
	memset(l, 0, sizeof(*l));
	if (vm != NULL)
		migrate_load_bind(l, vm);
}

static int
migrate_load_hello(struct migrate_load *l, const uint8_t *p, size_t len)
{
	struct migrate_hello h;

	if (migrate_hello_decode(&h, p, len) < 0) {
		snprintf(l->err, sizeof(l->err), "malformed hello record");
		return -EPROTO;
	}
	if (h.version < MIGRATE_VERSION_MIN || h.version > MIGRATE_VERSION) {
		snprintf(l->err, sizeof(l->err), "stream version %u; this "
		    "termvisor reads versions %u to %u", h.version,
		    MIGRATE_VERSION_MIN, MIGRATE_VERSION);
		return -EPROTO;
	}
	if ((h.flags & ~MIGRATE_HELLO_DISKS) != 0 ||
	    h.ndisks > MIGRATE_MAX_DISKS ||
	    ((h.flags & MIGRATE_HELLO_DISKS) == 0 && h.ndisks > 0)) {
		snprintf(l->err, sizeof(l->err), "hello: unknown flags %#x or "
		    "%u disks", h.flags, h.ndisks);
		return -EPROTO;
	}
	if ((h.flags & MIGRATE_HELLO_DISKS) && !l->disks_ok) {
		snprintf(l->err, sizeof(l->err), "the source copies its disks "
		    "(--copy-storage), but this host has the VM's directory "
		    "already (a shared datastore?): migrate without "
		    "--copy-storage, or to another datastore");
		return -EEXIST;
	}
	if (l->vm != NULL && (h.ram_size != l->vm->ram_size ||
	    h.nvcpus != (uint32_t)l->vm->nvcpus)) {
		snprintf(l->err, sizeof(l->err), "the source VM has %llu MiB "
		    "and %u vCPUs, this one %llu MiB and %d: start the "
		    "destination with the same configuration",
		    (unsigned long long)(h.ram_size >> 20), h.nvcpus,
		    (unsigned long long)(l->vm->ram_size >> 20),
		    l->vm->nvcpus);
		return -EINVAL;
	}
	l->hello = h;
	l->stage = (h.flags & MIGRATE_HELLO_DISKS) ? MIGRATE_LOAD_CONFIG :
	    MIGRATE_LOAD_RAM;
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

static int migrate_pre_config(struct migrate_pre *pre, const uint8_t *p,
    size_t len);
static int migrate_pre_disk(struct migrate_pre *pre,
    const struct migrate_disk_hdr *h);
static int migrate_pre_done(struct migrate_pre *pre);

/* The configuration: created from (pre), or only checked. */
static int
migrate_load_config(struct migrate_load *l, const uint8_t *p, size_t len)
{
	if (len == 0 || len > MIGRATE_CONFIG_MAX || memchr(p, '\0', len)) {
		snprintf(l->err, sizeof(l->err), "the VM's configuration: "
		    "empty, too long or not text");
		return -EPROTO;
	}
	l->stage = MIGRATE_LOAD_DISKS;
	return l->pre != NULL ? migrate_pre_config(l->pre, p, len) : 0;
}

/* Bind disk h->index to the VM's own disk of the same size. */
static int
migrate_load_vm_disk(struct migrate_load *l, const struct migrate_disk_hdr *h)
{
	struct blkdev *bd = virtio_blk_blkdev(l->vm, (int)h->index);

	if (bd == NULL || blkdev_length(bd) != h->virtual_size) {
		snprintf(l->err, sizeof(l->err), "disk %u: this VM has no disk "
		    "%u of %llu bytes", h->index, h->index,
		    (unsigned long long)h->virtual_size);
		return -EINVAL;
	}
	l->disks[h->index].bd = bd;
	return 0;
}

static int
migrate_load_disk(struct migrate_load *l, const uint8_t *p, size_t len)
{
	struct migrate_disk_hdr h;
	int r;

	if ((r = migrate_disk_hdr_decode(&h, p, len, l->err,
	    sizeof(l->err))) < 0)
		return r;
	if (h.index >= l->hello.ndisks || l->disks[h.index].bd != NULL) {
		snprintf(l->err, sizeof(l->err), "disk header %u: not one of "
		    "the %u disks the hello announced, or a second one",
		    h.index, l->hello.ndisks);
		return -EPROTO;
	}
	r = l->pre != NULL ? migrate_pre_disk(l->pre, &h) :
	    migrate_load_vm_disk(l, &h);
	if (r < 0)
		return r;
	l->disks[h.index].size = h.virtual_size;
	l->disks[h.index].chunk_shift = h.chunk_shift;
	return 0;
}

static int
migrate_load_disks_done(struct migrate_load *l)
{
	for (uint32_t i = 0; i < l->hello.ndisks; i++)
		if (l->disks[i].bd == NULL) {
			snprintf(l->err, sizeof(l->err), "the first copy ended "
			    "without disk %u's header", i);
			return -EPROTO;
		}
	l->stage = MIGRATE_LOAD_RAM;
	return l->pre != NULL ? migrate_pre_done(l->pre) : 0;
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
	case MIGRATE_LOAD_CONFIG:
		if (type == MIGRATE_REC_CONFIG)
			return migrate_load_config(l, p, len);
		break;
	case MIGRATE_LOAD_DISKS:
		if (type == MIGRATE_REC_DISK)
			return migrate_load_disk(l, p, len);
		if (type == MIGRATE_REC_BLOCKS)
			return migrate_blocks_apply(l->disks, MIGRATE_MAX_DISKS,
			    p, len, l->err, sizeof(l->err));
		if (type == MIGRATE_REC_DISKS_DONE && len == 0)
			return migrate_load_disks_done(l);
		break;
	case MIGRATE_LOAD_RAM:
		if (type == MIGRATE_REC_RAM) {
			r = migrate_ram_apply(&l->mem, p, len, l->err,
			    sizeof(l->err));
			l->pages += r == 0 && len >= 4 ? p[0] | p[1] << 8 : 0;
			return r;
		}
		if (type == MIGRATE_REC_BLOCKS && l->hello.ndisks > 0)
			return migrate_blocks_apply(l->disks, MIGRATE_MAX_DISKS,
			    p, len, l->err, sizeof(l->err));
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
	switch (l->stage) {
	case MIGRATE_LOAD_RAM:
		return MIGRATE_REC_MAX;
	case MIGRATE_LOAD_CONFIG:
		return MIGRATE_CONFIG_MAX;
	case MIGRATE_LOAD_DISKS:
		return MIGRATE_BLOCKS_MAX;
	default:
		return MIGRATE_RAM_MAX;
	}
}

int
migrate_load_buffer(struct vm *vm, const uint8_t *buf, size_t len, char *err,
    size_t errlen)
{
	struct migrate_load l;
	size_t off = 8;
	int r = 0;

	migrate_load_init(&l, vm);
	l.disks_ok = true;
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

/* Receive from ch into l until its stage is until (the magic first,
 * unless the stream was opened before). */
static int
migrate_dst_receive(struct migrate_load *l, struct migrate_chan *ch,
    int until)
{
	uint8_t magic[8], *buf = NULL;
	size_t cap = 0, len;
	int type, r = 0;

	if (l->stage == MIGRATE_LOAD_HELLO) {
		if ((r = migrate_chan_read(ch, magic, sizeof(magic))) < 0) {
			snprintf(l->err, sizeof(l->err), "%s", ch->err);
			return r;
		}
		if (memcmp(magic, MIGRATE_MAGIC, 8) != 0) {
			snprintf(l->err, sizeof(l->err), "not a termvisor "
			    "migration stream");
			return -EPROTO;
		}
	}
	while (l->stage < until) {
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

/*
 * The disks, opened without their image locks while the source ran the
 * guest on them, are ours once the source (before COMMIT) let go: open
 * them afresh, locked.  If that fails, give the lock back too, so that
 * the source finds it free and resumes.
 */
static int
migrate_dst_activate(const struct migrate_incoming *in,
    const struct migrate_load *l, char *err, size_t errlen)
{
	char msg[512];
	int r = 0;

	if (!l->vm->cfg->disks_inactive)
		return 0;
	/* As for the lock: a network filesystem may show the release late. */
	for (int i = 0; i < 20; i++) {
		r = virtio_blk_activate(l->vm, true, msg, sizeof(msg));
		if (r != -EBUSY)
			break;
		usleep(100000);
	}
	if (r < 0) {
		snprintf(err, errlen, "cannot take the disks over: %.400s", msg);
		if (in->lockp != NULL && *in->lockp != NULL) {
			vmfs_lock_release(*in->lockp);
			*in->lockp = NULL;
		}
		return r;
	}
	return 0;
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
	if ((r = migrate_dst_lock(in, err, errlen)) < 0 ||
	    (r = migrate_dst_activate(in, l, err, errlen)) < 0) {
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

/* --- the storage, created before the VM (--copy-storage) --- */

/* A termination signal while the storage is copied: give up cleanly
 * (the channel's waits see it within a slice) and remove it. */
static atomic_bool migrate_dst_stop;

static void
migrate_dst_on_signal(int sig)
{
	(void)sig;
	atomic_store(&migrate_dst_stop, true);
}

static const int migrate_dst_signals[3] = { SIGTERM, SIGINT, SIGHUP };

static void
migrate_pre_signals(struct migrate_pre *pre, bool on)
{
	struct sigaction sa;

	if (on) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = migrate_dst_on_signal;
		sigemptyset(&sa.sa_mask);
		for (int i = 0; i < 3; i++)
			sigaction(migrate_dst_signals[i], &sa, &pre->old[i]);
		pre->signals = true;
		pre->ch.cancel = &migrate_dst_stop;
	} else if (pre->signals) {
		for (int i = 0; i < 3; i++)
			sigaction(migrate_dst_signals[i], &pre->old[i], NULL);
		pre->signals = false;
		pre->ch.cancel = NULL;
	}
}

/* Remove dir and the files in it (it holds no directories). */
static void
migrate_dst_rmdir(const char *dir)
{
	char path[4500];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (unlink(path) < 0)
				log_warn("incoming migration: %s", path);
		}
		closedir(d);
	}
	if (rmdir(dir) < 0 && errno != ENOENT)
		log_warn("incoming migration: cannot remove %s", dir);
}

/*
 * A destination killed outright (SIGKILL, a crash) leaves its hidden
 * directory behind: the next incoming migration of the same name into
 * the same datastore removes those whose process is gone.
 */
static void
migrate_dst_sweep(const char *ds, const char *name)
{
	char prefix[300], path[4500];
	struct dirent *e;
	DIR *d = opendir(ds);

	if (d == NULL)
		return;
	snprintf(prefix, sizeof(prefix), ".incoming-%s-", name);
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid;

		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
			continue;
		pid = strtol(e->d_name + strlen(prefix), &end, 10);
		if (*end != '\0' || pid <= 0 || (kill((pid_t)pid, 0) == 0 ||
		    errno != ESRCH))
			continue;
		snprintf(path, sizeof(path), "%s/%s", ds, e->d_name);
		log_info("incoming migration: removing %s, left by a "
		    "destination that was killed", path);
		migrate_dst_rmdir(path);
	}
	closedir(d);
}

static void
migrate_pre_close_disks(struct migrate_pre *pre)
{
	for (int i = 0; i < MIGRATE_MAX_DISKS; i++) {
		/* Ours only until the VM takes over (then they are its). */
		if (pre->l.vm == NULL && pre->l.disks[i].bd != NULL)
			blkdev_close(pre->l.disks[i].bd);
		pre->l.disks[i].bd = NULL;
	}
}

/* Free pre; with remove, delete the directory it created. */
static void
migrate_pre_free(struct migrate_pre *pre, bool remove)
{
	if (pre == NULL)
		return;
	migrate_pre_signals(pre, false);
	if (pre->l.vm == NULL)
		migrate_pre_close_disks(pre);
	if (remove && pre->tmp_made)
		migrate_dst_rmdir(pre->tmpdir);
	if (remove && pre->vmdir_made) {
		log_info("incoming migration: removing %s, which it created",
		    pre->vmdir);
		migrate_dst_rmdir(pre->vmdir);
	}
	if (pre->vmx_parsed)
		vmx_free(&pre->vmx);
	free(pre);
}

static int
migrate_pre_config(struct migrate_pre *pre, const uint8_t *p, size_t len)
{
	char err[512], vmxpath[4500], *text = malloc(len + 1);
	struct vm_config *cfg;
	int r;

	if (text == NULL)
		return -ENOMEM;
	memcpy(text, p, len);
	text[len] = '\0';
	snprintf(vmxpath, sizeof(vmxpath), "%s/%s.vmx", pre->vmdir, pre->name);
	r = vmx_parse(&pre->vmx, vmxpath, text, len, err, sizeof(err));
	free(text);
	if (r < 0) {
		snprintf(pre->l.err, sizeof(pre->l.err), "the VM's "
		    "configuration: %.400s", err);
		return -EPROTO;
	}
	pre->vmx_parsed = true;
	/* Only what the loader would take: refused here, nothing made. */
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return -ENOMEM;
	r = vmx_to_config(&pre->vmx, pre->vmdir, cfg, err, sizeof(err));
	/* Every disk it names is one that comes (and gets its path here):
	 * none may point at a file of this host. */
	if (r == 0 && (uint32_t)cfg->ndisks > pre->l.hello.ndisks) {
		snprintf(err, sizeof(err), "%d disks, but %u come with it",
		    cfg->ndisks, pre->l.hello.ndisks);
		r = -EPROTO;
	}
	free(cfg);
	if (r < 0) {
		snprintf(pre->l.err, sizeof(pre->l.err), "the VM's "
		    "configuration: %.400s", err);
		return -EPROTO;
	}
	if (mkdir(pre->tmpdir, 0755) < 0) {
		r = -errno;
		snprintf(pre->l.err, sizeof(pre->l.err), "cannot create "
		    "%.300s: %s", pre->tmpdir, strerror(-r));
		return r;
	}
	pre->tmp_made = true;
	return 0;
}

/* Is file another disk's, or one of the VM directory's own files? */
static bool
migrate_pre_name_taken(const struct migrate_pre *pre, const char *file)
{
	char own[300];

	for (int i = 0; i < MIGRATE_MAX_DISKS; i++)
		if (strcmp(pre->files[i], file) == 0)
			return true;
	if (strcmp(file, "lease") == 0)
		return true;
	snprintf(own, sizeof(own), "%s.vmx", pre->name);
	if (strcmp(file, own) == 0)
		return true;
	snprintf(own, sizeof(own), "%s.log", pre->name);
	return strcmp(file, own) == 0;
}

/* Create disk h in the hidden directory, open for its first copy. */
static int
migrate_pre_disk(struct migrate_pre *pre, const struct migrate_disk_hdr *h)
{
	struct qcow2_create_opts o = { .cluster_size = h->cluster_size };
	char path[4500], err[512];
	int r;

	if (migrate_pre_name_taken(pre, h->file)) {
		snprintf(pre->l.err, sizeof(pre->l.err), "disk %u: file name "
		    "'%s' is taken", h->index, h->file);
		return -EPROTO;
	}
	snprintf(path, sizeof(path), "%s/%s", pre->tmpdir, h->file);
	r = strcmp(h->format, "raw") == 0 ? raw_create(path,
	    h->virtual_size, err, sizeof(err)) : qcow2_create(path,
	    h->virtual_size, &o, err, sizeof(err));
	if (r == 0)
		r = blkdev_open(&pre->l.disks[h->index].bd, path, h->format, 0,
		    err, sizeof(err));
	if (r < 0) {
		pre->l.disks[h->index].bd = NULL;
		snprintf(pre->l.err, sizeof(pre->l.err), "disk %u: %.400s",
		    h->index, err);
		return r;
	}
	snprintf(pre->files[h->index], sizeof(pre->files[0]), "%s", h->file);
	snprintf(pre->formats[h->index], sizeof(pre->formats[0]), "%s",
	    h->format);
	return 0;
}

/* The first copy is complete: write the .vmx, make it the VM's dir. */
static int
migrate_pre_done(struct migrate_pre *pre)
{
	char key[32], vmxpath[4500];
	int r = 0;

	for (uint32_t i = 0; i < pre->l.hello.ndisks; i++) {
		int f = blkdev_flush(pre->l.disks[i].bd);

		r = r < 0 ? r : f;
	}
	migrate_pre_close_disks(pre);
	for (uint32_t i = 0; r == 0 && i < pre->l.hello.ndisks; i++) {
		/* Its file name in the VM's directory; the format of the
		 * copy (a qcow2 chain arrives flattened). */
		snprintf(key, sizeof(key), "disk%u.path", i);
		r = vmx_set(&pre->vmx, key, pre->files[i]);
		if (r == 0) {
			snprintf(key, sizeof(key), "disk%u.format", i);
			r = vmx_set(&pre->vmx, key, pre->formats[i]);
		}
	}
	snprintf(vmxpath, sizeof(vmxpath), "%s/%s.vmx", pre->tmpdir, pre->name);
	if (r == 0)
		r = vmx_save(&pre->vmx, vmxpath);
	if (r == 0 && rename(pre->tmpdir, pre->vmdir) < 0)
		r = -errno;
	if (r < 0) {
		snprintf(pre->l.err, sizeof(pre->l.err), "cannot make "
		    "%.300s: %s", pre->vmdir, strerror(-r));
		return r;
	}
	pre->tmp_made = false;
	pre->vmdir_made = true;
	return 0;
}

int
migrate_incoming_storage(const struct migrate_incoming *in, const char *vmdir,
    struct migrate_pre **out)
{
	struct migrate_pre *pre = calloc(1, sizeof(*pre));
	const char *slash = strrchr(vmdir, '/');
	char ds[3800];
	int r;

	*out = NULL;
	if (pre == NULL)
		return -ENOMEM;
	if (slash == NULL || slash[1] == '\0' ||
	    (size_t)(slash - vmdir) >= sizeof(ds)) {
		free(pre);
		return -EINVAL;
	}
	snprintf(ds, sizeof(ds), "%.*s", (int)(slash - vmdir), vmdir);
	snprintf(pre->vmdir, sizeof(pre->vmdir), "%s", vmdir);
	snprintf(pre->name, sizeof(pre->name), "%s", slash + 1);
	snprintf(pre->tmpdir, sizeof(pre->tmpdir), "%s/.incoming-%s-%d", ds,
	    pre->name, (int)getpid());
	migrate_load_init(&pre->l, NULL);
	pre->l.disks_ok = true;
	pre->l.pre = pre;
	/* The datastore itself may be new on this host. */
	if (mkdir(ds, 0755) < 0 && errno != EEXIST) {
		log_warn("incoming migration: cannot create the datastore %s",
		    ds);
		free(pre);
		return -EIO;
	}
	migrate_dst_sweep(ds, pre->name);
	if ((r = migrate_dst_open(in, &pre->ch)) < 0) {
		free(pre);
		return r;
	}
	pre->ch.timeout_ms = in->timeout_ms > 0 ? in->timeout_ms : 60000;
	migrate_pre_signals(pre, true);
	r = migrate_dst_receive(&pre->l, &pre->ch, MIGRATE_LOAD_CONFIG);
	if (r == 0 && !(pre->l.hello.flags & MIGRATE_HELLO_DISKS)) {
		snprintf(pre->l.err, sizeof(pre->l.err), "this datastore has "
		    "no VM '%.64s' (%.200s): migrate with --copy-storage to bring "
		    "its disks, or start the destination on the source's "
		    "(shared) datastore", pre->name, ds);
		r = -ENOENT;
	}
	if (r == 0) {
		log_info("incoming migration: copying %u disks into %s",
		    pre->l.hello.ndisks, vmdir);
		r = migrate_dst_receive(&pre->l, &pre->ch, MIGRATE_LOAD_RAM);
	}
	if (r < 0) {
		if (atomic_load(&migrate_dst_stop))
			snprintf(pre->l.err, sizeof(pre->l.err), "stopped by a "
			    "signal while receiving the disks");
		log_warnx("incoming migration failed: %s", pre->l.err);
		migrate_dst_nack(&pre->ch, pre->l.err);
		migrate_chan_close(&pre->ch);
		migrate_pre_free(pre, true);
		return r;
	}
	*out = pre;
	return 0;
}

void
migrate_incoming_abort(struct migrate_pre *pre, const char *why)
{
	if (pre == NULL)
		return;
	log_warnx("incoming migration failed: %s", why);
	migrate_dst_nack(&pre->ch, why);
	migrate_chan_close(&pre->ch);
	migrate_pre_free(pre, true);
}

/* The storage's disks, now the VM's: its own handles take the rest. */
static int
migrate_dst_bind_disks(struct migrate_load *l)
{
	/* The hello came before the VM existed: check it now. */
	if (l->hello.ram_size != l->vm->ram_size ||
	    l->hello.nvcpus != (uint32_t)l->vm->nvcpus) {
		snprintf(l->err, sizeof(l->err), "the source VM has %llu MiB "
		    "and %u vCPUs, the one made from its configuration here "
		    "%llu MiB and %d (options given to termvisor run?)",
		    (unsigned long long)(l->hello.ram_size >> 20),
		    l->hello.nvcpus,
		    (unsigned long long)(l->vm->ram_size >> 20),
		    l->vm->nvcpus);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < l->hello.ndisks; i++) {
		struct blkdev *bd = virtio_blk_blkdev(l->vm, (int)i);

		if (bd == NULL || blkdev_length(bd) != l->disks[i].size) {
			snprintf(l->err, sizeof(l->err), "the VM made from the "
			    "copied configuration has no disk %u of %llu "
			    "bytes", i, (unsigned long long)l->disks[i].size);
			return -EINVAL;
		}
		l->disks[i].bd = bd;
	}
	return 0;
}

/*
 * The guest flushed its writes at the source; the copies here must be as
 * durable before it runs here (a crash then must not lose them).
 */
static int
migrate_dst_flush_disks(struct migrate_load *l)
{
	int r;

	for (uint32_t i = 0; i < l->hello.ndisks; i++)
		if (l->disks[i].bd != NULL &&
		    (r = blkdev_flush(l->disks[i].bd)) < 0) {
			snprintf(l->err, sizeof(l->err), "disk %u: flush: %s",
			    i, strerror(-r));
			return r;
		}
	return 0;
}

int
migrate_incoming(struct vm *vm, const struct migrate_incoming *in)
{
	struct migrate_pre *pre = in->pre;
	struct migrate_load own, *l = &own;
	struct migrate_chan own_ch, *ch = &own_ch;
	struct timespec t0, t1;
	char err[512];
	int r;

	if (pre != NULL) {
		l = &pre->l;
		ch = &pre->ch;
		migrate_load_bind(l, vm);
		if ((r = migrate_dst_bind_disks(l)) < 0)
			goto fail_load;
		/* The source waits for this before it sends the pages. */
		if ((r = migrate_rec_send(ch, MIGRATE_REC_READY, NULL, 0)) < 0) {
			snprintf(l->err, sizeof(l->err), "%s", ch->err);
			goto fail_load;
		}
	} else {
		migrate_load_init(l, vm);
		if ((r = migrate_dst_open(in, ch)) < 0)
			return r;
		ch->timeout_ms = in->timeout_ms > 0 ? in->timeout_ms : 60000;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((r = migrate_dst_receive(l, ch, MIGRATE_LOAD_DONE)) < 0 ||
	    (r = migrate_dst_flush_disks(l)) < 0)
		goto fail_load;
	if ((r = migrate_dst_handover(in, l, ch, err, sizeof(err))) < 0) {
		log_warnx("incoming migration failed: %s", err);
		migrate_chan_close(ch);
		migrate_pre_free(pre, true);
		return r;
	}
	if (pre != NULL)
		log_info("incoming migration: %u disks copied into %s",
		    l->hello.ndisks, pre->vmdir);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info("incoming migration: %llu bytes, %llu page records "
	    "in %.2f s: running the VM", (unsigned long long)ch->received,
	    (unsigned long long)l->pages, (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	migrate_chan_close(ch);
	migrate_pre_free(pre, false);
	/* A timer of the VM's loop: it fires (device lock held) as soon as
	 * vm_run() serves the loop, with the vCPUs started. */
	vtimer_init(&migrate_dst_announce_timer, vm->loop,
	    migrate_dst_announce, vm);
	vtimer_arm(&migrate_dst_announce_timer, vclock_ns());
	return 0;
fail_load:
	log_warnx("incoming migration failed: %s", l->err);
	migrate_dst_nack(ch, l->err);
	migrate_chan_close(ch);
	migrate_pre_free(pre, true);
	return r;
}
