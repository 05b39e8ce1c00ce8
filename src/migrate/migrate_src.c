/*
 * The source side of a live migration, inside the VM process.
 *
 * A migration thread does the slow part (connect, RAM rounds while the
 * guest runs) and never touches the VM's CPU or device state itself:
 * what needs the event thread (vm_pause(), vmstate_save(), the lock, the
 * control events, the end of the VM) it asks for through an eventfd the
 * event loop watches, and waits for the answer.
 *
 * The datastore lock moves with the VM.  Order of the hand-over:
 *   1. the source sends everything (RAM, state, end); the guest is paused;
 *   2. the destination loads it all and answers READY (not running);
 *   3. the source releases the lock and sends COMMIT;
 *   4. the destination takes the lock and answers GO, then runs;
 *   5. the source ends (exit status 0, "migrated" event).
 * A source with a lock does 3 right after 1, without waiting for READY:
 * the destination reads COMMIT only after its READY, so it still takes
 * the lock only once loaded, and one round trip is saved.
 * The lock is the arbiter whenever the two lose each other: before 3 the
 * source still holds it, so it resumes, and a destination cannot run
 * without it; after 3 a source that hears no GO tries to take the lock
 * back: if it can, the destination never took it (and never will run:
 * it would find it held), so the source resumes; if it cannot, the
 * destination owns the VM and the source ends.  A VM without a lock
 * (not a datastore VM) has no arbiter: a source that sent COMMIT and
 * heard nothing stays paused and says so, rather than risk two copies.
 *
 * Guest memory written by the VMM's devices (virtio used rings, disk
 * reads, received frames) is in no accelerator's dirty log: the devices
 * report those writes (vm_dma_written()) and the rounds take them from
 * the VM's own log too (vm_dma_log_fetch()).
 */
#include "migrate/migrate.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "control/control.h"
#include "devices/virtio_blk.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/snap.h"
#include "migrate/vmstate.h"
#include "util/evloop.h"
#include "util/log.h"
#include "vmfs/blkdev.h"
#include "vmfs/vmfs_lock.h"

/* What the migration thread asks of the event thread. */
enum {
	MIGRATE_REQ_NONE,
	MIGRATE_REQ_PAUSE,	/* vm_pause + vmstate_save */
	MIGRATE_REQ_RELEASE,	/* release the datastore lock */
	MIGRATE_REQ_DONE,	/* the destination runs it: end the VM */
	MIGRATE_REQ_FAIL,	/* give the VM back to the guest */
};

struct migrate_src {
	struct vm *vm;
	struct control *ctl;
	struct migrate_params p;
	pthread_t thread;
	bool thread_started;
	int efd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int req, reply;
	bool replied;
	json_t *progress;	/* latest progress event not yet sent */
	atomic_bool cancel;
	bool finished;		/* the outcome was handled */
	/* Only the migration thread touches these until it ends. */
	struct migrate_chan ch;
	struct migrate_ram ram;
	struct migrate_disk_src disk;	/* with copy_storage */
	bool disk_init;
	/* The VM's region behind each of ram's (guest RAM only). */
	int region[16];
	struct snap state;
	bool paused;		/* we paused the guest (event thread) */
	bool committed;		/* COMMIT sent: the destination may run */
	bool lock_released;
	bool disks_released;	/* image locks dropped for the destination */
	uint64_t start_ns, pause_ns, downtime_ns;
	/* When each step of the switch-over ended (migrate_src_now()), and
	 * what the destination says its own steps took (the go record). */
	struct {
		uint64_t ask, saved, ram, sent, ready, released, go;
		uint64_t release_ns;
		uint64_t final_pages, dst_load_us, dst_lock_us;
	} t;
	char err[512];
};

/* One VM per process: the migration in flight, if any. */
static struct migrate_src *migrate_cur;
/* The VM's datastore lock (run.c), to hand over. */
static struct vmfs_lock **migrate_lockp;
static char migrate_vmdir[4096], migrate_name[64], migrate_datastore[4096];

void
migrate_source_set_lock(struct vmfs_lock **lockp, const char *vmdir,
    const char *name, const char *datastore)
{
	migrate_lockp = lockp;
	snprintf(migrate_vmdir, sizeof(migrate_vmdir), "%s",
	    vmdir ? vmdir : "");
	snprintf(migrate_name, sizeof(migrate_name), "%s", name ? name : "");
	snprintf(migrate_datastore, sizeof(migrate_datastore), "%s",
	    datastore ? datastore : "");
}

bool
migrate_source_active(void)
{
	return migrate_cur != NULL && !migrate_cur->finished;
}

static uint64_t
migrate_src_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- the event thread's side --- */

static void
migrate_src_event(struct migrate_src *m, json_t *ev)
{
	if (m->ctl != NULL)
		control_event(m->ctl, ev);
	else
		json_decref(ev);
}

static int
migrate_src_do_pause(struct migrate_src *m)
{
	int r;

	if (m->vm->state != VM_RUNNING) {
		snprintf(m->err, sizeof(m->err), "the VM stopped running");
		return -ESRCH;
	}
	if ((r = vm_pause(m->vm, 5000)) < 0) {
		snprintf(m->err, sizeof(m->err), "a vCPU did not stop within "
		    "5 s");
		return r;
	}
	m->paused = true;
	m->pause_ns = migrate_src_now();
	snap_init_save(&m->state);
	if ((r = vmstate_save(m->vm, &m->state)) < 0)
		snprintf(m->err, sizeof(m->err), "cannot save the VM's state: "
		    "%s", m->state.errmsg);
	m->t.saved = migrate_src_now();
	return r;
}

static int
migrate_src_do_release(struct migrate_src *m)
{
	if (migrate_lockp != NULL && *migrate_lockp != NULL) {
		vmfs_lock_release(*migrate_lockp);
		*migrate_lockp = NULL;
		m->lock_released = true;
	}
	return 0;
}

/*
 * Is the lock the hand-over's arbiter?  Not when the storage is copied:
 * the destination takes its own VM directory's lock, not ours, so ours
 * says nothing about it, and the hand-over is the lockless one.
 */
static bool
migrate_src_arbiter(const struct migrate_src *m)
{
	return migrate_lockp != NULL && *migrate_lockp != NULL &&
	    !m->p.copy_storage;
}

static double
migrate_src_ms(uint64_t from, uint64_t to)
{
	return to > from ? (double)(to - from) / 1e6 : 0.0;
}

/*
 * Where the downtime went, step by step (ms): for the "migrated" event
 * and the debug log.  The destination's load and lock are inside the
 * source's waits for its answers; what is left of those waits is the
 * channel and the scheduling.
 */
static json_t *
migrate_src_breakdown(const struct migrate_src *m)
{
	double stop = migrate_src_ms(m->t.ask, m->pause_ns),
	    state = migrate_src_ms(m->pause_ns, m->t.saved),
	    ram = migrate_src_ms(m->t.saved, m->t.ram),
	    ramlog = (double)m->ram.final_harvest_ns / 1e6,
	    send = migrate_src_ms(m->t.ram, m->t.sent),
	    load = (double)m->t.dst_load_us / 1000.0,
	    ready = migrate_src_ms(m->t.sent, m->t.ready) - load,
	    release = (double)m->t.release_ns / 1e6,
	    lock = (double)m->t.dst_lock_us / 1000.0,
	    go = migrate_src_ms(m->t.ready > m->t.released ? m->t.ready :
	    m->t.released, m->t.go) - lock;

	log_debug("migration downtime %.1f ms: (stopping the vCPUs %.1f) "
	    "device state %.1f (%zu bytes), last RAM %.1f (%llu pages, dirty "
	    "log %.1f), send state %.1f, destination load %.1f (+%.1f "
	    "waiting), lock release %.1f, destination lock %.1f (+%.1f "
	    "waiting)", (double)m->downtime_ns / 1e6, stop, state,
	    m->state.len, ram, (unsigned long long)m->t.final_pages, ramlog,
	    send, load, ready, release, lock, go);
	return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, "
	    "s:I, s:I}", "stop_vcpus", stop, "device_state", state,
	    "last_ram", ram, "last_ram_log", ramlog, "send_state", send,
	    "dest_load", load, "ready_wait", ready, "lock_release", release,
	    "dest_lock", lock, "go_wait", go,
	    "last_ram_pages", (json_int_t)m->t.final_pages,
	    "state_bytes", (json_int_t)m->state.len);
}

static void
migrate_src_do_done(struct migrate_src *m)
{
	json_t *ev = json_pack("{s:s, s:I, s:I, s:I, s:i, s:o}", "event",
	    "migrated", "bytes", (json_int_t)m->ch.sent,
	    "total_ms", (json_int_t)((migrate_src_now() - m->start_ns) / 1000000),
	    "downtime_ms", (json_int_t)(m->downtime_ns / 1000000),
	    "rounds", m->ram.conv.rounds,
	    "downtime_parts", migrate_src_breakdown(m));

	log_info("migrated to %s: %llu bytes, %d rounds, downtime %llu ms",
	    m->p.uri, (unsigned long long)m->ch.sent, m->ram.conv.rounds,
	    (unsigned long long)(m->downtime_ns / 1000000));
	if (m->disk_init)
		json_object_set_new(ev, "disk", json_pack("{s:I, s:I, s:I, "
		    "s:I, s:I, s:I}", "total_bytes",
		    (json_int_t)m->disk.total_bytes,
		    "sent_chunks", (json_int_t)m->disk.sent_chunks,
		    "zero_chunks", (json_int_t)m->disk.zero_chunks,
		    "skipped_chunks", (json_int_t)m->disk.skipped_chunks,
		    "rounds", (json_int_t)m->disk.rounds,
		    "chunk_size", (json_int_t)(1 << MIGRATE_CHUNK_SHIFT)));
	migrate_src_event(m, ev);
	m->finished = true;
	/* The guest lives on at the destination: this copy ends, status 0. */
	vm_request_exit(m->vm, VM_EVENT_POWEROFF, 0);
}

static void
migrate_src_lock_lost(void *opaque)
{
	log_warnx("the VM's lock was taken over by another host: stopping");
	vm_request_exit(opaque, VM_EVENT_ERROR, 1);
}

/* After COMMIT with no GO: is the destination running the VM? */
static bool
migrate_src_dest_owns(struct migrate_src *m)
{
	char err[512];
	int r;

	if (!m->lock_released)
		return false;
	r = vmfs_lock_take(migrate_vmdir, NULL, migrate_lockp, err,
	    sizeof(err));
	if (r == 0) {
		/* Renewed from the loop again, as run.c had it. */
		vmfs_lock_attach(*migrate_lockp, m->vm->loop,
		    migrate_src_lock_lost, m->vm);
		return false;
	}
	log_warnx("migration: the destination holds the lock (%s): it owns "
	    "the VM now", err);
	return true;
}

static void
migrate_src_do_fail(struct migrate_src *m)
{
	const char *what = "the VM keeps running here";
	json_t *ev;

	m->finished = true;
	if (m->committed && migrate_src_dest_owns(m)) {
		migrate_src_do_done(m);
		return;
	}
	if (m->committed && !m->lock_released) {
		/* No lock to arbitrate: the destination may be running. */
		what = "the destination may be running the VM: this copy stays "
		    "paused (resume it only if the destination does not run it)";
		m->paused = false;
	}
	if (m->paused && m->disks_released) {
		char err[512];

		/* Whoever holds the images now may run the guest. */
		if (virtio_blk_activate(m->vm, false, err, sizeof(err)) < 0) {
			log_warnx("migration: cannot take the disks back: %s",
			    err);
			what = "the destination holds the disks and may be "
			    "running the VM: this copy stays paused";
			m->paused = false;
		} else
			m->disks_released = false;
	}
	if (m->paused) {
		vm_resume(m->vm);
		m->paused = false;
	}
	log_warnx("migration to %s failed: %s; %s", m->p.uri, m->err, what);
	ev = json_pack("{s:s, s:s, s:s, s:s}", "event", "migration",
	    "status", "failed", "error", m->err, "outcome", what);
	migrate_src_event(m, ev);
	if (m->ctl != NULL)
		control_event_state(m->ctl);
}

static void
migrate_src_on_event(void *opaque, int fd)
{
	struct migrate_src *m = opaque;
	json_t *ev;
	uint64_t v;
	int req;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
	pthread_mutex_lock(&m->mu);
	ev = m->progress;
	m->progress = NULL;
	req = m->req;
	pthread_mutex_unlock(&m->mu);
	if (ev != NULL)
		migrate_src_event(m, ev);
	if (req == MIGRATE_REQ_NONE)
		return;
	switch (req) {
	case MIGRATE_REQ_PAUSE:
		v = (uint64_t)migrate_src_do_pause(m);
		break;
	case MIGRATE_REQ_RELEASE:
		v = (uint64_t)migrate_src_do_release(m);
		break;
	case MIGRATE_REQ_DONE:
		migrate_src_do_done(m);
		v = 0;
		break;
	default:
		migrate_src_do_fail(m);
		v = 0;
		break;
	}
	pthread_mutex_lock(&m->mu);
	m->req = MIGRATE_REQ_NONE;
	m->reply = (int)v;
	m->replied = true;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

/* --- the migration thread's side --- */

static void
migrate_src_kick(struct migrate_src *m)
{
	uint64_t one = 1;

	if (write(m->efd, &one, sizeof(one)) < 0)
		log_debug("migration: eventfd: %s", strerror(errno));
}

/* Ask the event thread for req and wait for its answer. */
static int
migrate_src_ask(struct migrate_src *m, int req)
{
	int r;

	/* A cancel ends waits for PAUSE and RELEASE; the outcome (DONE,
	 * FAIL) must still reach the event thread, or the VM would go on
	 * as if migrating (no "failed" event, migrate-cancel answering ok
	 * for ever).  Only a VM being torn down gives up on it. */
	bool outcome = req == MIGRATE_REQ_DONE || req == MIGRATE_REQ_FAIL;

	pthread_mutex_lock(&m->mu);
	m->req = req;
	m->replied = false;
	migrate_src_kick(m);
	while (!m->replied && (outcome ? !atomic_load(&m->vm->exit_request) :
	    !atomic_load(&m->cancel))) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&m->cv, &m->mu, &ts);
	}
	r = m->replied ? m->reply : -ECANCELED;
	if (!m->replied)
		m->req = MIGRATE_REQ_NONE;
	pthread_mutex_unlock(&m->mu);
	return r;
}

static void
migrate_src_progress(void *opaque, const struct migrate_ram *r)
{
	struct migrate_src *m = opaque;
	uint64_t down = migrate_conv_downtime(&r->conv, r->dirty_pages);
	json_t *ev;

	ev = json_pack("{s:s, s:s, s:I, s:i, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "event", "migration", "status", "active",
	    "bytes", (json_int_t)r->ch->sent, "round", r->conv.rounds + 1,
	    "pages_sent", (json_int_t)r->pages_sent,
	    "total_pages", (json_int_t)r->total_pages,
	    "remaining_pages", (json_int_t)r->dirty_pages,
	    "dirty_rate", (json_int_t)(r->dirty_rate * MIGRATE_PAGE),
	    "bandwidth", (json_int_t)r->conv.bandwidth,
	    "expected_downtime_ms", (json_int_t)(down == UINT64_MAX ? -1 :
	    (json_int_t)(down / 1000000)));
	if (m->disk_init)
		json_object_set_new(ev, "disk", json_pack("{s:I, s:I, s:I, "
		    "s:I, s:I}", "total_bytes", (json_int_t)m->disk.total_bytes,
		    "copied_bytes", (json_int_t)m->disk.copied_bytes,
		    "sent_chunks", (json_int_t)m->disk.sent_chunks,
		    "dirty_chunks", (json_int_t)m->disk.dirty_chunks,
		    "chunk_size", (json_int_t)(1 << MIGRATE_CHUNK_SHIFT)));
	pthread_mutex_lock(&m->mu);
	if (m->progress != NULL)
		json_decref(m->progress);
	m->progress = ev;
	pthread_mutex_unlock(&m->mu);
	migrate_src_kick(m);
}

static int
migrate_src_dirty(void *opaque, int region, uint64_t *bitmap)
{
	struct migrate_src *m = opaque;

	int r;

	struct mem_region *mr = &m->vm->regions[m->region[region]];

	r = m->vm->accel->dirty_log(m->vm, mr, bitmap);
	/* What devices wrote (virtio buffers and rings): no accelerator
	 * sees those stores. */
	if (r == 0)
		vm_dma_log_fetch(m->vm, mr, bitmap);
	return r;
}

static bool
migrate_src_cancelled(void *opaque)
{
	struct migrate_src *m = opaque;

	if (m->p.timeout_ms > 0 && migrate_src_now() - m->start_ns >
	    m->p.timeout_ms * 1000000ull) {
		snprintf(m->err, sizeof(m->err), "timed out after %llu ms",
		    (unsigned long long)m->p.timeout_ms);
		return true;
	}
	return atomic_load(&m->cancel) || atomic_load(&m->vm->exit_request);
}

/* Switch the accelerator's dirty log on (KVM logs only when asked). */
static int
migrate_src_log(struct migrate_src *m, bool on)
{
	int r = 0;

	if (!on)
		vm_dma_log_stop(m->vm);
	else if ((r = vm_dma_log_start(m->vm)) < 0)
		return r;
	for (int i = 0; i < m->vm->nregions; i++) {
		struct mem_region *mr = &m->vm->regions[i];
		unsigned old = mr->flags;

		if (on)
			mr->flags |= MEM_DIRTY_LOG;
		else
			mr->flags &= ~(unsigned)MEM_DIRTY_LOG;
		if (mr->flags != old && (r = m->vm->accel->map_mem(m->vm,
		    mr)) < 0)
			return r;
	}
	return r;
}

/* Split the ssh command on blanks and add the remote command. */
static int
migrate_src_ssh_argv(struct migrate_src *m, const struct migrate_uri *u,
    char *buf, size_t len, char **argv, int max)
{
	int n = 0;
	char *save, *tok;

	if (migrate_name[0] == '\0') {
		snprintf(m->err, sizeof(m->err), "ssh:// needs a datastore VM "
		    "(the destination starts it by name); for others start "
		    "termvisor run --incoming yourself and use tcp://");
		return -EINVAL;
	}
	snprintf(buf, len, "%s", m->p.ssh[0] ? m->p.ssh : "ssh");
	for (tok = strtok_r(buf, " \t", &save); tok != NULL && n < max - 16;
	    tok = strtok_r(NULL, " \t", &save))
		argv[n++] = tok;
	if (n == 0) {
		snprintf(m->err, sizeof(m->err), "empty ssh command");
		return -EINVAL;
	}
	argv[n++] = "-o";
	argv[n++] = "BatchMode=yes";
	if (u->port[0] != '\0') {
		argv[n++] = "-p";
		argv[n++] = (char *)u->port;
	}
	if (u->user[0] != '\0') {
		argv[n++] = "-l";
		argv[n++] = (char *)u->user;
	}
	argv[n++] = "--";
	argv[n++] = (char *)u->host;
	argv[n++] = m->p.remote_termvisor[0] ? m->p.remote_termvisor :
	    "termvisor";
	argv[n++] = "run";
	/* The datastore both share, unless told; with the storage, the
	 * destination's own (its default unless told). */
	if (m->p.remote_datastore[0] != '\0') {
		argv[n++] = "--datastore";
		argv[n++] = m->p.remote_datastore;
	} else if (migrate_datastore[0] != '\0' && !m->p.copy_storage) {
		argv[n++] = "--datastore";
		argv[n++] = migrate_datastore;
	}
	argv[n++] = "--incoming";
	argv[n++] = "-";
	argv[n++] = migrate_name;
	argv[n] = NULL;
	return 0;
}

static int
migrate_src_connect(struct migrate_src *m)
{
	struct migrate_uri u;
	char buf[512], *argv[64];
	int r;

	if ((r = migrate_uri_parse(m->p.uri, false, &u, m->err,
	    sizeof(m->err))) < 0)
		return r;
	if (u.kind == MIGRATE_URI_TCP) {
		if ((r = migrate_tcp_connect(&u, &m->ch)) < 0)
			goto chan_err;
		m->ch.timeout_ms = 30000;
		m->ch.cancel = &m->cancel;
		if ((r = migrate_auth_client(&m->ch, m->p.secret)) < 0)
			goto chan_err;
		return 0;
	}
	if ((r = migrate_src_ssh_argv(m, &u, buf, sizeof(buf), argv, 64)) < 0)
		return r;
	if ((r = migrate_spawn(argv, &m->ch)) < 0)
		goto chan_err;
	m->ch.timeout_ms = 30000;
	m->ch.cancel = &m->cancel;
	return 0;
chan_err:
	snprintf(m->err, sizeof(m->err), "%s", m->ch.err);
	return r;
}

/*
 * Wait for the destination's answer: want, or NACK with its reason.
 * The answer's payload goes to out (up to *outlen bytes; *outlen is set
 * to what was copied) when out is not NULL.
 */
static int
migrate_src_expect(struct migrate_src *m, int want, int timeout_ms,
    uint8_t *out, size_t *outlen)
{
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0;
	int type, r, old = m->ch.timeout_ms;

	m->ch.timeout_ms = timeout_ms;
	r = migrate_rec_recv(&m->ch, &type, &buf, &cap, &len, 4096);
	m->ch.timeout_ms = old;
	if (r == 0 && type == want && out != NULL) {
		*outlen = len < *outlen ? len : *outlen;
		memcpy(out, buf, *outlen);
	}
	if (r < 0) {
		snprintf(m->err, sizeof(m->err), "no answer from the "
		    "destination: %.400s", m->ch.err);
	} else if (type == MIGRATE_REC_NACK) {
		snprintf(m->err, sizeof(m->err), "the destination refused: "
		    "%.*s", (int)(len < 400 ? len : 400), (char *)buf);
		r = -EREMOTEIO;
	} else if (type != want) {
		snprintf(m->err, sizeof(m->err), "unexpected answer '%c' from "
		    "the destination", type >= 0x20 && type < 0x7f ? type : '?');
		r = -EPROTO;
	}
	free(buf);
	return r;
}

static int
migrate_src_hello(struct migrate_src *m)
{
	/* Version 1 unless the disks come: older destinations read it. */
	struct migrate_hello h = { .version = m->p.copy_storage ? 2 : 1,
	    .ram_size = m->vm->ram_size, .nvcpus = (uint32_t)m->vm->nvcpus,
	    .flags = m->p.copy_storage ? MIGRATE_HELLO_DISKS : 0,
	    .ndisks = m->p.copy_storage ? (uint32_t)m->disk.n : 0 };
	uint8_t buf[256];
	size_t n;
	int r;

	snprintf(h.name, sizeof(h.name), "%s", migrate_name);
	n = migrate_hello_encode(&h, buf, sizeof(buf));
	if ((r = migrate_chan_write(&m->ch, MIGRATE_MAGIC, 8)) < 0 ||
	    (r = migrate_rec_send(&m->ch, MIGRATE_REC_HELLO, buf, n)) < 0)
		snprintf(m->err, sizeof(m->err), "%s", m->ch.err);
	return r;
}

/* What the go record says the destination's steps took (µs). */
static void
migrate_src_go_times(struct migrate_src *m, const uint8_t *p, size_t len)
{
	if (len < 8)
		return;		/* an older destination: an empty go */
	m->t.dst_load_us = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	m->t.dst_lock_us = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
	    (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
}

/*
 * Release the lock (if any) and send COMMIT.  Only the event thread
 * touches the lock (its renewal timer runs there); a VM without one
 * needs no trip there, which on a busy host can cost more than all the
 * rest of the hand-over.  Nothing else sets *migrate_lockp meanwhile.
 */
static int
migrate_src_commit(struct migrate_src *m)
{
	uint64_t t0 = migrate_src_now();
	int r;

	/* Disks that both hosts open: flushed, and their image locks for
	 * the destination to take (the guest is paused, its requests
	 * drained).  Copied storage is the destination's own. */
	if (!m->p.copy_storage && !m->disks_released) {
		if ((r = virtio_blk_inactivate(m->vm, m->err,
		    sizeof(m->err))) < 0)
			return r;
		m->disks_released = true;
	}
	if (migrate_src_arbiter(m) &&
	    (r = migrate_src_ask(m, MIGRATE_REQ_RELEASE)) < 0)
		return r;
	m->t.released = migrate_src_now();
	m->t.release_ns = m->t.released - t0;
	m->committed = true;
	if ((r = migrate_rec_send(&m->ch, MIGRATE_REC_COMMIT, NULL, 0)) < 0) {
		snprintf(m->err, sizeof(m->err), "%s", m->ch.err);
		/* An early commit meets a destination that has just refused
		 * and gone: its reason may still be there to read. */
		if (m->t.ready == 0 && migrate_src_expect(m, MIGRATE_REC_READY,
		    1000, NULL, NULL) == 0)
			snprintf(m->err, sizeof(m->err), "%s", m->ch.err);
	}
	return r;
}

/* Bytes written to the channel that the destination has not taken yet
 * (a socket's send queue, a pipe's contents); -1 if it cannot say. */
static int
migrate_src_unsent(struct migrate_src *m)
{
	struct stat st;
	int n;

	if (fstat(m->ch.wfd, &st) < 0)
		return -1;
	if (ioctl(m->ch.wfd, S_ISSOCK(st.st_mode) ? SIOCOUTQ : FIONREAD,
	    &n) < 0)
		return -1;
	return n;
}

/*
 * Before the guest stops: let the destination take what the rounds left
 * in the channel (megabytes, in the socket buffers), which it would
 * otherwise read and apply while the guest is stopped.  At most the
 * maximum downtime (and 2 s): a destination that slow pays it either way.
 */
static void
migrate_src_drain(struct migrate_src *m)
{
	uint64_t t0 = migrate_src_now(), end = t0 + (m->p.max_downtime_ms <
	    2000 ? m->p.max_downtime_ms : 2000) * 1000000ull;
	int n = 0;

	while ((n = migrate_src_unsent(m)) > 0 && migrate_src_now() < end &&
	    !atomic_load(&m->cancel))
		usleep(1000);
	log_debug("migration: %.1f ms for the destination to take the "
	    "rounds' last bytes (%d left)", migrate_src_ms(t0,
	    migrate_src_now()), n);
}

/* The switch-over: pause, last pages, state, end; then the hand-over. */
static int
migrate_src_switch(struct migrate_src *m)
{
	uint8_t go[64];
	size_t golen = sizeof(go);
	uint64_t pages0 = m->ram.pages_sent;
	int r;

	migrate_src_drain(m);
	m->t.ask = migrate_src_now();
	if ((r = migrate_src_ask(m, MIGRATE_REQ_PAUSE)) < 0)
		return r;
	r = migrate_ram_final(&m->ram);
	m->t.ram = migrate_src_now();
	m->t.final_pages = m->ram.pages_sent - pages0;
	if (r < 0 ||
	    (r = migrate_rec_send(&m->ch, MIGRATE_REC_STATE, m->state.buf,
	    m->state.len)) < 0 ||
	    (r = migrate_rec_send(&m->ch, MIGRATE_REC_END, NULL, 0)) < 0) {
		snprintf(m->err, sizeof(m->err), "%s", m->ch.err);
		return r;
	}
	m->t.sent = migrate_src_now();
	/* With a lock to arbitrate, commit at once, while the destination
	 * loads: it reads the commit only after its ready, so it takes the
	 * lock only once loaded, and a refusal or silence is settled by
	 * the lock as after any commit.  Without one, a commit must wait
	 * for the ready, or a lost destination would leave us unsure. */
	if (migrate_src_arbiter(m) && (r = migrate_src_commit(m)) < 0)
		return r;
	/* Loading is quick, but a destination may be slow to create the VM
	 * (big memory, a slow disk to open). */
	if ((r = migrate_src_expect(m, MIGRATE_REC_READY, 60000, NULL,
	    NULL)) < 0)
		return r;
	m->t.ready = migrate_src_now();
	if (!m->committed && (r = migrate_src_commit(m)) < 0)
		return r;
	if ((r = migrate_src_expect(m, MIGRATE_REC_GO, 60000, go,
	    &golen)) < 0)
		return r;
	m->t.go = migrate_src_now();
	migrate_src_go_times(m, go, golen);
	m->downtime_ns = m->t.go - m->pause_ns;
	return 0;
}

/* --- the storage (copy_storage) --- */

static bool
migrate_src_disk_cancelled(void *opaque)
{
	return migrate_src_cancelled(opaque);
}

static void
migrate_src_disk_progress(void *opaque)
{
	struct migrate_src *m = opaque;

	migrate_src_progress(m, &m->ram);
}

static int64_t
migrate_src_extra(void *opaque, bool final)
{
	struct migrate_src *m = opaque;

	return migrate_disk_src_round(&m->disk, final);
}

/* Disk i's file name at the destination: its own, unless that is not a
 * plain name or another disk's already. */
static void
migrate_src_disk_file(struct migrate_disk_hdr *hdrs, int i, const char *path)
{
	const char *base = strrchr(path, '/');
	bool ok;

	base = base != NULL ? base + 1 : path;
	ok = base[0] != '\0' && base[0] != '.' &&
	    strlen(base) < sizeof(hdrs[i].file) &&
	    strcmp(base, "lease") != 0 && strchr(base, '\n') == NULL;
	for (int k = 0; ok && k < i; k++)
		ok = strcmp(hdrs[k].file, base) != 0;
	if (ok)
		snprintf(hdrs[i].file, sizeof(hdrs[i].file), "%.127s", base);
	else
		snprintf(hdrs[i].file, sizeof(hdrs[i].file), "%.63s-disk%d.%.7s",
		    migrate_name, i, hdrs[i].format);
}

/* The VM's disks, as the device model has them open. */
static int
migrate_src_disks_init(struct migrate_src *m)
{
	struct migrate_disk_hdr hdrs[MIGRATE_MAX_DISKS];
	struct blkdev *bds[MIGRATE_MAX_DISKS];
	int n = m->vm->cfg->ndisks, r;

	if (n > MIGRATE_MAX_DISKS) {
		snprintf(m->err, sizeof(m->err), "%d disks: at most %d can be "
		    "copied", n, MIGRATE_MAX_DISKS);
		return -E2BIG;
	}
	memset(hdrs, 0, sizeof(hdrs));
	for (int i = 0; i < n; i++) {
		struct blkdev_info info;

		if ((bds[i] = virtio_blk_blkdev(m->vm, i)) == NULL) {
			snprintf(m->err, sizeof(m->err), "disk %d is not open",
			    i);
			return -ENOENT;
		}
		blkdev_info(bds[i], &info);
		/* A qcow2 chain is read through: it arrives flattened into
		 * one image of the same format and size. */
		snprintf(hdrs[i].format, sizeof(hdrs[i].format), "%s",
		    info.format);
		hdrs[i].cluster_size = strcmp(info.format, "qcow2") == 0 ?
		    info.cluster_size : 0;
		migrate_src_disk_file(hdrs, i, bds[i]->path);
	}
	if ((r = migrate_disk_src_init(&m->disk, bds, hdrs, n, &m->ch)) < 0) {
		snprintf(m->err, sizeof(m->err), "cannot copy the disks: %s",
		    strerror(-r));
		return r;
	}
	m->disk.cancelled = migrate_src_disk_cancelled;
	m->disk.progress = migrate_src_disk_progress;
	m->disk.opaque = m;
	m->disk.bandwidth_limit = m->p.bandwidth;
	m->disk_init = true;
	return 0;
}

/* The VM's .vmx, for a destination whose datastore has none. */
static int
migrate_src_config(struct migrate_src *m)
{
	char path[4200];
	uint8_t *buf = malloc(MIGRATE_CONFIG_MAX);
	size_t n = 0;
	FILE *f;
	int r;

	if (buf == NULL)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/%s.vmx", migrate_vmdir, migrate_name);
	if ((f = fopen(path, "re")) == NULL) {
		r = -errno;
		snprintf(m->err, sizeof(m->err), "%.300s: %s", path,
		    strerror(errno));
		free(buf);
		return r;
	}
	n = fread(buf, 1, MIGRATE_CONFIG_MAX, f);
	r = ferror(f) || n == 0 || n == MIGRATE_CONFIG_MAX ? -EIO : 0;
	fclose(f);
	if (r < 0)
		snprintf(m->err, sizeof(m->err), "%.300s: cannot read it, or "
		    "too large", path);
	else if ((r = migrate_rec_send(&m->ch, MIGRATE_REC_CONFIG, buf,
	    n)) < 0)
		snprintf(m->err, sizeof(m->err), "%s", m->ch.err);
	free(buf);
	return r;
}

/*
 * Guest RAM, as the rounds copy it.  Device memory mapped into the guest
 * (the display's VRAM) is its device's: it travels once, in the device's
 * state section, as in a snapshot file.
 */
static void
migrate_src_mem(struct migrate_src *m, struct migrate_mem *mem)
{
	struct vm *vm = m->vm;

	mem->nregions = 0;
	for (int i = 0; i < vm->nregions && mem->nregions < 16; i++) {
		const struct mem_region *r = &vm->regions[i];

		if (r->hva < vm->ram || r->hva >= vm->ram + vm->ram_size)
			continue;
		m->region[mem->nregions] = i;
		mem->r[mem->nregions].gpa = r->gpa;
		mem->r[mem->nregions].size = r->size;
		mem->r[mem->nregions++].hva = r->hva;
	}
}

static void *
migrate_src_thread(void *arg)
{
	struct migrate_src *m = arg;
	struct migrate_ram_ops ops = { .dirty = migrate_src_dirty,
	    .progress = migrate_src_progress,
	    .cancelled = migrate_src_cancelled, .opaque = m };
	struct migrate_mem mem;
	int r;

	migrate_src_mem(m, &mem);
	if (m->p.copy_storage) {
		ops.extra = migrate_src_extra;
		if ((r = migrate_src_disks_init(m)) < 0)
			goto fail;
	}
	if ((r = migrate_src_connect(m)) < 0 ||
	    (r = migrate_src_hello(m)) < 0 ||
	    (m->p.copy_storage && (r = migrate_src_config(m)) < 0))
		goto fail;
	if ((r = migrate_ram_init(&m->ram, &mem, &ops, &m->ch)) < 0 ||
	    (r = migrate_src_log(m, true)) < 0) {
		snprintf(m->err, sizeof(m->err), "cannot track dirty pages: "
		    "%s", strerror(-r));
		goto fail;
	}
	/* The disks first, while the guest runs: the RAM rounds then
	 * carry what it writes to them meanwhile. */
	if (m->p.copy_storage && (r = migrate_disk_src_first(&m->disk)) < 0) {
		if (m->err[0] == '\0')
			snprintf(m->err, sizeof(m->err), "copying the disks: "
			    "%.450s", m->ch.err);
		goto fail;
	}
	/* The destination now makes the VM from what it got, which takes
	 * a while: pages sent meanwhile would wait in the socket buffers
	 * and be applied after the pause.  It says when it is ready. */
	if (m->p.copy_storage && (r = migrate_src_expect(m,
	    MIGRATE_REC_READY, 60000, NULL, NULL)) < 0)
		goto fail;
	m->ram.bandwidth_limit = m->p.bandwidth;
	m->ram.conv.max_downtime_ns = m->p.max_downtime_ms * 1000000ull;
	if ((r = migrate_ram_live(&m->ram)) < 0) {
		if (m->err[0] == '\0')
			snprintf(m->err, sizeof(m->err), "%s", r == -ECANCELED ?
			    "cancelled" : m->ch.err);
		goto fail;
	}
	if ((r = migrate_src_switch(m)) < 0)
		goto fail;
	if (m->disk_init)
		log_info("migration: disks copied: %llu chunks sent (%llu of "
		    "zeros), %llu left out, %llu rounds", (unsigned long long)
		    m->disk.sent_chunks, (unsigned long long)m->disk.zero_chunks,
		    (unsigned long long)m->disk.skipped_chunks,
		    (unsigned long long)m->disk.rounds);
	migrate_src_ask(m, MIGRATE_REQ_DONE);
	migrate_chan_close(&m->ch);
	return NULL;
fail:
	if (m->err[0] == '\0')
		snprintf(m->err, sizeof(m->err), "%s", strerror(-r));
	migrate_src_log(m, false);
	/* Tell the destination why, if it still listens (best effort; a
	 * cancel must not stop this one write). */
	m->ch.timeout_ms = 1000;
	m->ch.cancel = NULL;
	if (m->ch.wfd >= 0 && !m->committed)
		migrate_rec_send(&m->ch, MIGRATE_REC_NACK, m->err,
		    strlen(m->err));
	migrate_chan_close(&m->ch);
	migrate_src_ask(m, MIGRATE_REQ_FAIL);
	return NULL;
}

/* --- entry points (event thread) --- */

static void
migrate_src_free(struct migrate_src *m)
{
	if (m->efd >= 0) {
		evloop_del_fd(m->vm->loop, m->efd);
		close(m->efd);
	}
	if (m->progress != NULL)
		json_decref(m->progress);
	migrate_ram_fini(&m->ram);
	if (m->disk_init)
		migrate_disk_src_fini(&m->disk);
	if (m->state.buf != NULL)
		snap_free(&m->state);
	pthread_mutex_destroy(&m->mu);
	pthread_cond_destroy(&m->cv);
	free(m);
}

/* A migration that has ended: join its thread and forget it. */
static void
migrate_src_reap(struct vm *vm)
{
	struct migrate_src *m = migrate_cur;

	if (m == NULL || m->vm != vm)
		return;
	atomic_store(&m->cancel, true);
	pthread_mutex_lock(&m->mu);
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	if (m->thread_started)
		pthread_join(m->thread, NULL);
	migrate_cur = NULL;
	migrate_src_free(m);
}

int
migrate_source_start(struct vm *vm, struct control *c,
    const struct migrate_params *p, char *err, size_t errlen)
{
	struct migrate_src *m;
	int r;

	if (migrate_source_active()) {
		snprintf(err, errlen, "a migration is already running");
		return -EBUSY;
	}
	if (vm->state != VM_RUNNING) {
		snprintf(err, errlen, "the VM is not running");
		return -EINVAL;
	}
	if (p->copy_storage && migrate_name[0] == '\0') {
		snprintf(err, errlen, "--copy-storage needs a datastore VM (its "
		    "configuration goes with it)");
		return -EINVAL;
	}
	if (vm->accel->dirty_log == NULL) {
		snprintf(err, errlen, "the %s accelerator cannot track dirty "
		    "pages", vm->accel->name);
		return -ENOTSUP;
	}
	migrate_src_reap(vm);
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -ENOMEM;
	m->vm = vm;
	m->ctl = c;
	m->p = *p;
	if (m->p.max_downtime_ms == 0)
		m->p.max_downtime_ms = MIGRATE_DEFAULT_DOWNTIME_MS;
	m->start_ns = migrate_src_now();
	migrate_chan_init(&m->ch, -1, -1);
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	m->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->efd < 0 || (r = evloop_add_fd(vm->loop, m->efd,
	    migrate_src_on_event, m)) < 0) {
		snprintf(err, errlen, "cannot watch the migration: %s",
		    strerror(errno));
		migrate_src_free(m);
		return -EIO;
	}
	if ((r = pthread_create(&m->thread, NULL, migrate_src_thread, m))
	    != 0) {
		snprintf(err, errlen, "cannot start the migration thread: %s",
		    strerror(r));
		migrate_src_free(m);
		return -r;
	}
	m->thread_started = true;
	migrate_cur = m;
	log_info("migrating to %s (max downtime %llu ms)", p->uri,
	    (unsigned long long)m->p.max_downtime_ms);
	return 0;
}

int
migrate_source_cancel(struct vm *vm)
{
	if (!migrate_source_active() || migrate_cur->vm != vm)
		return -ENOENT;
	/* Past COMMIT the destination may already run the VM. */
	if (migrate_cur->committed)
		return -EBUSY;
	atomic_store(&migrate_cur->cancel, true);
	return 0;
}

void
migrate_source_finish(struct vm *vm)
{
	struct migrate_src *m = migrate_cur;

	if (m == NULL || m->vm != vm)
		return;
	/* The VM is gone: a thread waiting for the event thread gets
	 * -ECANCELED, one in the middle of I/O sees cancel within its next
	 * wait slice. */
	migrate_src_reap(vm);
}

static int
migrate_src_json_u64(json_t *args, const char *key, uint64_t *v,
    uint64_t max, char *err, size_t errlen)
{
	json_t *j = json_object_get(args, key);

	if (j == NULL)
		return 0;
	if (!json_is_integer(j) || json_integer_value(j) < 0 ||
	    (uint64_t)json_integer_value(j) > max) {
		snprintf(err, errlen, "\"%s\" must be an integer from 0 to "
		    "%llu", key, (unsigned long long)max);
		return -EINVAL;
	}
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

static int
migrate_src_json_str(json_t *args, const char *key, char *out, size_t len,
    char *err, size_t errlen)
{
	json_t *j = json_object_get(args, key);

	if (j == NULL)
		return 0;
	if (!json_is_string(j) || json_string_length(j) >= len ||
	    strlen(json_string_value(j)) != json_string_length(j)) {
		snprintf(err, errlen, "\"%s\" must be a string shorter than "
		    "%zu bytes", key, len);
		return -EINVAL;
	}
	snprintf(out, len, "%s", json_string_value(j));
	return 0;
}

int
migrate_params_parse(json_t *args, struct migrate_params *p, char *err,
    size_t errlen)
{
	struct migrate_uri u;

	memset(p, 0, sizeof(*p));
	p->max_downtime_ms = MIGRATE_DEFAULT_DOWNTIME_MS;
	if (!json_is_object(args) || json_object_get(args, "uri") == NULL) {
		snprintf(err, errlen, "migrate needs \"uri\": "
		    "\"ssh://HOST\" or \"tcp://HOST:PORT\"");
		return -EINVAL;
	}
	if (migrate_src_json_str(args, "uri", p->uri, sizeof(p->uri), err,
	    errlen) < 0 ||
	    migrate_src_json_str(args, "secret", p->secret, sizeof(p->secret),
	    err, errlen) < 0 ||
	    migrate_src_json_str(args, "ssh", p->ssh, sizeof(p->ssh), err,
	    errlen) < 0 ||
	    migrate_src_json_str(args, "remote_termvisor", p->remote_termvisor,
	    sizeof(p->remote_termvisor), err, errlen) < 0 ||
	    migrate_src_json_str(args, "remote_datastore", p->remote_datastore,
	    sizeof(p->remote_datastore), err, errlen) < 0 ||
	    migrate_src_json_u64(args, "max_downtime_ms", &p->max_downtime_ms,
	    3600000, err, errlen) < 0 ||
	    migrate_src_json_u64(args, "bandwidth", &p->bandwidth,
	    UINT64_C(1) << 40, err, errlen) < 0 ||
	    migrate_src_json_u64(args, "timeout_ms", &p->timeout_ms,
	    86400000, err, errlen) < 0)
		return -EINVAL;
	if (json_object_get(args, "copy_storage") != NULL) {
		if (!json_is_boolean(json_object_get(args, "copy_storage"))) {
			snprintf(err, errlen, "\"copy_storage\" must be true "
			    "or false");
			return -EINVAL;
		}
		p->copy_storage = json_is_true(json_object_get(args,
		    "copy_storage"));
	}
	if (migrate_uri_parse(p->uri, false, &u, err, errlen) < 0)
		return -EINVAL;
	if (u.kind == MIGRATE_URI_TCP && p->secret[0] == '\0') {
		snprintf(err, errlen, "tcp:// needs \"secret\", shared with "
		    "the destination");
		return -EINVAL;
	}
	if (p->max_downtime_ms == 0)
		p->max_downtime_ms = MIGRATE_DEFAULT_DOWNTIME_MS;
	return 0;
}
