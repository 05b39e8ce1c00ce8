/*
 * Live migration (pre-copy, as vMotion and QEMU do it): the source VM
 * process streams guest RAM while the guest runs, then rounds of the pages
 * it dirtied while the dirty set shrinks, then pauses the guest, sends the
 * last pages and the device state (vmstate.h), and the destination
 * process resumes it.  The stream format is in termvisor.migrate(7).
 *
 *   migrate_stream.c  record framing, RAM page batches, the hardened loader
 *   migrate_ram.c     RAM rounds over a dirty log, the convergence rule
 *   migrate_net.c     URIs, TCP with HMAC-SHA256 challenge-response, ssh
 *   migrate_src.c     the source side inside the VM process
 *   migrate_dst.c     `termvisor run --incoming`: the destination side
 *   migrate_disk.c    disk records: the storage copied with the VM
 *   migrate_cli.c     `termvisor migrate VM DEST`
 */
#ifndef TV_MIGRATE_H
#define TV_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define MIGRATE_MAGIC		"TVMIGR\r\n"	/* 8 bytes */
/* Version 2 adds the disk records (--copy-storage); a stream without
 * them is still written as version 1, which older readers take. */
#define MIGRATE_VERSION		2
#define MIGRATE_VERSION_MIN	1
#define MIGRATE_HELLO_DISKS	1u	/* hello flag: the storage comes too */
#define MIGRATE_PAGE		4096u
#define MIGRATE_BATCH_PAGES	256u		/* pages per 'R' record */
/* Largest record payload: a full batch of pages, or the device state. */
#define MIGRATE_RAM_MAX		(4u + MIGRATE_BATCH_PAGES * (8u + MIGRATE_PAGE))
#define MIGRATE_REC_MAX		(64u << 20)
#define MIGRATE_PAGE_ZERO	1u	/* low bits of a page's gpa: flags */

#define MIGRATE_DEFAULT_DOWNTIME_MS	300
/* The destination's TCP receive buffer (see migrate_tcp_listen()). */
#define MIGRATE_RCVBUF			(1 << 20)
#define MIGRATE_MAX_ROUNDS		30
/* Rounds in a row whose dirty set did not shrink before we stop anyway. */
#define MIGRATE_MAX_STALLS		3

/* Record types (one byte on the wire). */
enum {
	MIGRATE_REC_HELLO = 'H',	/* source: version, RAM size, vCPUs */
	MIGRATE_REC_RAM = 'R',		/* source: a batch of pages */
	MIGRATE_REC_STATE = 'S',	/* source: vmstate_save() bytes */
	MIGRATE_REC_END = 'E',		/* source: nothing follows */
	MIGRATE_REC_COMMIT = 'C',	/* source: lock released, run it */
	MIGRATE_REC_READY = 'A',	/* dest: everything loaded */
	MIGRATE_REC_GO = 'G',		/* dest: lock taken, running */
	MIGRATE_REC_NACK = 'N',		/* dest: refused; payload says why */
	/* Version 2, with MIGRATE_HELLO_DISKS (migrate_disk.c): */
	MIGRATE_REC_CONFIG = 'V',	/* source: the VM's .vmx text */
	MIGRATE_REC_DISK = 'D',		/* source: one disk's header */
	MIGRATE_REC_BLOCKS = 'B',	/* source: chunks of one disk */
	MIGRATE_REC_DISKS_DONE = 'F',	/* source: the first copy is done */
};

/* A byte channel: a socket (rfd == wfd) or a pair of pipes (ssh). */
struct migrate_chan {
	int rfd, wfd;
	pid_t child;		/* ssh, or -1 */
	int timeout_ms;		/* per read/write wait; 0: forever */
	uint64_t sent, received;
	/* Set by another thread to make a waiting read/write give up. */
	const _Atomic bool *cancel;
	char err[512];
};

void migrate_chan_init(struct migrate_chan *ch, int rfd, int wfd);
/* Close the fds, reap the child (killed if still running). */
void migrate_chan_close(struct migrate_chan *ch);
int migrate_chan_write(struct migrate_chan *ch, const void *p, size_t n);
int migrate_chan_read(struct migrate_chan *ch, void *p, size_t n);

/* One framed record: u8 type, u32 len, payload, u32 crc32 of all before. */
int migrate_rec_send(struct migrate_chan *ch, int type, const void *p,
    size_t len);
/*
 * Read one record whose payload is at most max bytes into a buffer
 * grown as needed (*buf, *cap).  0 with *type and *len, or -errno with
 * the reason in ch->err (-EPROTO: malformed or corrupt).
 */
int migrate_rec_recv(struct migrate_chan *ch, int *type, uint8_t **buf,
    size_t *cap, size_t *len, size_t max);

/* What the hello record says. */
struct migrate_hello {
	uint32_t version;
	uint64_t ram_size;
	uint32_t nvcpus;
	char name[64];
	/* Version 2 (zero when a version 1 hello is read): */
	uint32_t flags;			/* MIGRATE_HELLO_DISKS */
	uint32_t ndisks;		/* disk headers that follow */
};
size_t migrate_hello_encode(const struct migrate_hello *h, uint8_t *buf,
    size_t len);
int migrate_hello_decode(struct migrate_hello *h, const uint8_t *p,
    size_t len);

/* Guest RAM as the stream sees it: regions of gpa -> host memory. */
struct migrate_mem {
	int nregions;
	struct {
		uint64_t gpa, size;
		uint8_t *hva;
	} r[16];
};

/*
 * A batch of pages being built: migrate_batch_add() copies the page at
 * gpa (or flags it zero) into buf; full batches are sent by the caller.
 */
struct migrate_batch {
	uint8_t *buf;		/* MIGRATE_RAM_MAX bytes */
	size_t len;
	uint32_t count;
	uint64_t zero, data;	/* pages of each kind, for statistics */
};
int migrate_batch_init(struct migrate_batch *b);
void migrate_batch_free(struct migrate_batch *b);
void migrate_batch_reset(struct migrate_batch *b);
bool migrate_batch_full(const struct migrate_batch *b);
void migrate_batch_add(struct migrate_batch *b, uint64_t gpa,
    const uint8_t *page);
/*
 * Apply an 'R' record's payload to mem.  Every page address is checked
 * to be page aligned and inside mem, and the sizes to add up, before any
 * page is written; 0, or -EPROTO with the reason in err.
 */
int migrate_ram_apply(const struct migrate_mem *mem, const uint8_t *p,
    size_t len, char *err, size_t errlen);

struct migrate_ram;

/*
 * The RAM pass: what the source does before the switch-over, over a
 * dirty log that is the accelerator's (migrate_src.c) or a test's fake.
 */
struct migrate_ram_ops {
	/* Fetch-and-clear region i's dirty bitmap (one bit a page). */
	int (*dirty)(void *opaque, int region, uint64_t *bitmap);
	/* Progress after each round (may be NULL). */
	void (*progress)(void *opaque, const struct migrate_ram *r);
	/* Nonzero to give up (cancelled, VM stopped). */
	bool (*cancelled)(void *opaque);
	/*
	 * May be NULL.  After each live round's pages (final false) and
	 * after the last pages (final true): send what else is dirty (the
	 * disks' chunks) and return what is still dirty, in pages'
	 * worth of bytes (counted in the convergence rule), or -errno.
	 */
	int64_t (*extra)(void *opaque, bool final);
	void *opaque;
};

/* The convergence rule, apart from I/O so that it can be tested. */
struct migrate_conv {
	uint64_t max_downtime_ns;
	uint64_t bandwidth;	/* bytes/s measured (smoothed) */
	uint64_t prev_dirty;	/* pages dirty after the previous round */
	int rounds, stalls;
	bool forced;		/* stopped for lack of convergence */
};
enum { MIGRATE_ITERATE, MIGRATE_STOP_COPY };
/*
 * After a round that sent bytes in ns nanoseconds and left dirty pages
 * dirty: another round, or the switch-over (the expected downtime
 * dirty * 4 KiB / bandwidth is under max and the dirty set did not halve
 * since the round before (prev_dirty; set it to the pages round 1 sends
 * before the first call) or would take under max / 8; or the dirty set
 * stopped shrinking MIGRATE_MAX_STALLS times, or MIGRATE_MAX_ROUNDS
 * were run).
 */
int migrate_conv_next(struct migrate_conv *c, uint64_t dirty, uint64_t bytes,
    uint64_t ns);
/* Expected downtime in ns for dirty pages at the measured bandwidth. */
uint64_t migrate_conv_downtime(const struct migrate_conv *c, uint64_t dirty);

struct migrate_ram {
	struct migrate_mem mem;
	struct migrate_ram_ops ops;
	struct migrate_chan *ch;
	struct migrate_conv conv;
	uint64_t *bitmap[16];
	struct migrate_batch batch;
	uint64_t bandwidth_limit;	/* bytes/s, 0: none */
	uint64_t start_ns, progress_ns;
	uint64_t start_sent;		/* ch->sent when the rounds began */
	/* Progress, for events. */
	uint64_t dirty_pages;		/* left after the last round */
	uint64_t dirty_rate;		/* pages/s dirtied in the last round */
	uint64_t pages_sent, total_pages;
	uint64_t final_harvest_ns;	/* the last round's dirty-log fetch */
};

int migrate_ram_init(struct migrate_ram *r, const struct migrate_mem *mem,
    const struct migrate_ram_ops *ops, struct migrate_chan *ch);
void migrate_ram_fini(struct migrate_ram *r);
/*
 * Live rounds: every page once, then dirty pages until
 * migrate_conv_next() says stop.  0, or -errno (channel failure,
 * cancelled: -ECANCELED).
 */
int migrate_ram_live(struct migrate_ram *r);
/* With the guest stopped: the last dirty pages.  0/-errno. */
int migrate_ram_final(struct migrate_ram *r);

/* --- disks (migrate_disk.c): the storage copied with the VM --- */

#define MIGRATE_MAX_DISKS	8
#define MIGRATE_CHUNK_SHIFT	16	/* what the source sends: 64 KiB */
#define MIGRATE_CHUNK_SHIFT_MIN	12
#define MIGRATE_CHUNK_SHIFT_MAX	20
#define MIGRATE_DISK_BATCH	16	/* chunks per 'B' record */
/* Largest 'B' payload a reader takes: a full batch of the largest chunks. */
#define MIGRATE_BLOCKS_MAX	(8u + MIGRATE_DISK_BATCH * \
	(8u + (1u << MIGRATE_CHUNK_SHIFT_MAX)))
#define MIGRATE_CONFIG_MAX	(256u << 10)	/* the 'V' record */
#define MIGRATE_CHUNK_ZERO	1u	/* low bit of a chunk's offset */
#define MIGRATE_DISK_HDR_LEN	(4 + 4 + 8 + 4 + 8 + 128)

/* What a 'D' record says about disk index (its place in the config). */
struct migrate_disk_hdr {
	uint32_t index;
	uint32_t chunk_shift;		/* chunk size: 1 << chunk_shift */
	uint64_t virtual_size;		/* bytes the guest sees */
	uint32_t cluster_size;		/* qcow2's, 0 for raw */
	char format[8];			/* "raw", "qcow2" */
	char file[128];			/* its file name at the destination */
};
size_t migrate_disk_hdr_encode(const struct migrate_disk_hdr *h,
    uint8_t *buf, size_t len);
/*
 * Decode and check a 'D' payload: an index under MIGRATE_MAX_DISKS, a
 * chunk shift in range, a size that is a whole number of 512-byte
 * sectors, a known format, a plain file name (no '/', not "." or "..",
 * not starting with '.').  0, or -EPROTO with the reason in err.
 */
int migrate_disk_hdr_decode(struct migrate_disk_hdr *h, const uint8_t *p,
    size_t len, char *err, size_t errlen);

struct blkdev;

/* One disk as the loader writes it. */
struct migrate_disk {
	struct blkdev *bd;		/* NULL: no header seen for it */
	uint64_t size;
	uint32_t chunk_shift;
	uint64_t chunks_written;
};

/*
 * A 'B' record being built: u32 disk index, u32 count, then count
 * chunks, each a u64 byte offset (a multiple of the chunk size) whose
 * bit 0 says the chunk is all zeros (no data follows), else its bytes:
 * the chunk size, or what is left of the disk for the last one.
 */
struct migrate_blocks {
	uint8_t *buf;
	size_t len, cap;
	uint32_t index, count;
};
int migrate_blocks_init(struct migrate_blocks *b, unsigned chunk_shift);
void migrate_blocks_free(struct migrate_blocks *b);
void migrate_blocks_reset(struct migrate_blocks *b, uint32_t index);
/* Add a chunk of len bytes at off (zero: flagged, data not copied). */
void migrate_blocks_add(struct migrate_blocks *b, uint64_t off,
    const uint8_t *data, size_t len, bool zero);
/* Is data all zeros? */
bool migrate_is_zero(const uint8_t *data, size_t len);
/*
 * Apply a 'B' payload to disks[0..n).  The whole record is checked first
 * (a disk with a header, offsets aligned and inside the disk, sizes that
 * add up); only then is anything written, through blkdev (zero chunks
 * with blkdev_write_zeroes).  0, or -EPROTO / -errno with err set.
 */
int migrate_blocks_apply(struct migrate_disk *disks, int n,
    const uint8_t *p, size_t len, char *err, size_t errlen);

/* The source's side: the first copy, then the dirty chunks in rounds. */
struct migrate_disk_src {
	int n;
	struct {
		struct blkdev *bd;
		struct migrate_disk_hdr hdr;
		uint64_t chunks;
		uint64_t *pending;	/* dirty, not yet sent again */
		uint64_t *fetched;
		bool tracked;		/* writable: blkdev_dirty_start()ed */
	} d[MIGRATE_MAX_DISKS];
	struct migrate_blocks blocks;
	uint8_t *chunk;
	struct migrate_chan *ch;
	bool (*cancelled)(void *opaque);
	void (*progress)(void *opaque);
	void *opaque;
	uint64_t bandwidth_limit;	/* bytes/s for the first copy, 0: none */
	/* Progress: */
	uint64_t total_bytes;		/* the disks' virtual sizes */
	uint64_t copied_bytes;		/* first copy: bytes looked at */
	uint64_t sent_chunks;		/* in 'B' records, zeros included */
	uint64_t zero_chunks;		/* of those, flagged all zeros */
	uint64_t skipped_chunks;	/* zeros the first copy left out */
	uint64_t dirty_chunks, rounds;
	uint64_t progress_ns, start_ns, start_sent;
};
/*
 * Prepare to copy bds[0..n) (the VM's disks in config order; hdrs give
 * each one's header, file and format; the sizes are the devices').
 */
int migrate_disk_src_init(struct migrate_disk_src *s, struct blkdev **bds,
    const struct migrate_disk_hdr *hdrs, int n, struct migrate_chan *ch);
void migrate_disk_src_fini(struct migrate_disk_src *s);
/*
 * Start tracking writes, send each disk's header and every chunk that is
 * not all zeros (the guest runs meanwhile), then 'F'.  0/-errno.
 */
int migrate_disk_src_first(struct migrate_disk_src *s);
/*
 * A round: send the chunks written since the round before, then fetch
 * what was written meanwhile.  Those chunks, still to send, in 4 KiB
 * pages' worth; or -errno.  With final (guest stopped, requests
 * drained): fetch, then send everything, and return 0.
 */
int64_t migrate_disk_src_round(struct migrate_disk_src *s, bool final);

/* --- transports (migrate_net.c) --- */

enum migrate_uri_kind { MIGRATE_URI_TCP, MIGRATE_URI_SSH, MIGRATE_URI_STDIO };
struct migrate_uri {
	enum migrate_uri_kind kind;
	char user[64];
	char host[256];
	char port[16];
};
/*
 * Source side: "tcp://host:port", "ssh://[user@]host[:port]".
 * Destination side (listen): "tcp:[ADDR]:PORT", "tcp:PORT" (loopback),
 * "-" (stdin/stdout).  0 or -EINVAL with a sentence in err.
 */
int migrate_uri_parse(const char *s, bool listen, struct migrate_uri *u,
    char *err, size_t errlen);
/* A shared secret from a file (trailing newline dropped); 0/-errno. */
int migrate_secret_read(const char *path, char *buf, size_t len, char *err,
    size_t errlen);
int migrate_tcp_connect(const struct migrate_uri *u, struct migrate_chan *ch);
/* Listen on u; the listening fd or -errno (err says why). */
int migrate_tcp_listen(const struct migrate_uri *u, char *err, size_t errlen);
/*
 * Mutual challenge-response over ch with HMAC-SHA256 keyed by secret:
 * each side proves it knows the secret without sending it, bound to
 * both sides' fresh nonces so that nothing can be replayed.  0, or
 * -EACCES (wrong secret) / -errno.
 */
int migrate_auth_client(struct migrate_chan *ch, const char *secret);
int migrate_auth_server(struct migrate_chan *ch, const char *secret);
/* HMAC-SHA256 (exposed for tests). */
void migrate_hmac(const char *key, const void *msg, size_t len,
    uint8_t out[32]);
/*
 * Run argv (ssh ... host termvisor run NAME --incoming -) with pipes
 * for its stdin and stdout: ch gets them.  0/-errno.
 */
int migrate_spawn(char *const argv[], struct migrate_chan *ch);

/* --- the source, in the VM process (migrate_src.c) --- */

struct vm;
struct control;
struct vmfs_lock;

/* What the `migrate` control command asks for. */
struct migrate_params {
	char uri[512];
	char secret[256];
	char ssh[512];			/* ssh command, split on blanks */
	char remote_termvisor[512];	/* termvisor on the destination */
	char remote_datastore[512];	/* ssh: its --datastore, "": default */
	uint64_t max_downtime_ms;
	uint64_t bandwidth;		/* bytes/s, 0: unlimited */
	uint64_t timeout_ms;		/* whole migration; 0: none */
	bool copy_storage;		/* the disks go too (version 2) */
};

/*
 * run.c tells the source about the VM's datastore lock (*lockp, NULL
 * when the VM is not a datastore VM) so that it can hand it over; on a
 * successful migration *lockp is released and set to NULL.
 */
void migrate_source_set_lock(struct vmfs_lock **lockp, const char *vmdir,
    const char *name, const char *datastore);
/*
 * Start migrating vm (called by the control command on the event
 * thread).  0 once the migration thread runs; -errno and err otherwise.
 * Progress and the outcome are events on c.
 */
int migrate_source_start(struct vm *vm, struct control *c,
    const struct migrate_params *p, char *err, size_t errlen);
/* The `migrate` command's arguments; 0 or -EINVAL with err. */
int migrate_params_parse(json_t *args, struct migrate_params *p, char *err,
    size_t errlen);
/* Cancel a running migration (the VM keeps running).  -ENOENT if none. */
int migrate_source_cancel(struct vm *vm);
/* After vm_run() returns: stop and join the migration thread. */
void migrate_source_finish(struct vm *vm);
/* Is a migration running (for status replies)? */
bool migrate_source_active(void);

/* --- the destination (migrate_dst.c) --- */

struct migrate_incoming {
	const char *uri;		/* "-", "tcp:..." */
	const char *secret;		/* required for tcp */
	const char *vmdir;		/* the VM's directory: take its lock */
	struct vmfs_lock **lockp;	/* gets the lock */
	int timeout_ms;			/* silence from the source; 0: 60 s */
	/* The stream opened before the VM, by migrate_incoming_storage(),
	 * or NULL: migrate_incoming() opens it. */
	struct migrate_pre *pre;
};
struct migrate_pre;

/*
 * Before the VM exists (its directory is not in this datastore): open
 * the channel and read the hello.  A stream that brings the storage
 * (--copy-storage) creates vmdir: its .vmx (the source's, disk paths
 * made file names in vmdir) and its disks, with their first copy, built
 * in a hidden directory beside it and renamed to vmdir once complete.
 * 0 with *pre for migrate_incoming() (in->pre); -errno, the source told
 * and nothing left behind.
 */
int migrate_incoming_storage(const struct migrate_incoming *in,
    const char *vmdir, struct migrate_pre **pre);
/* The VM could not be made from pre: tell the source why, remove the
 * directory that pre created, free pre. */
void migrate_incoming_abort(struct migrate_pre *pre, const char *why);
/*
 * Receive a VM into vm (made by vm_create(), never run): RAM (and the
 * disks' dirty chunks), then its state, then the hand-over.  0 when vm
 * may be run; -errno when it must be destroyed (the reason is logged,
 * the source told, and a directory in->pre created is removed).
 * in->pre is freed either way.
 */
int migrate_incoming(struct vm *vm, const struct migrate_incoming *in);
/*
 * Load a whole stream already in memory into vm (the fuzz target and
 * tests): the loader without the transport and the hand-over.
 */
int migrate_load_buffer(struct vm *vm, const uint8_t *buf, size_t len,
    char *err, size_t errlen);

/* `termvisor migrate ...` (migrate_cli.c). */
int migrate_cli_main(int argc, char **argv);

#endif
