/*
 * VM locks: what keeps a VM from running twice, on one host or on
 * several hosts sharing a datastore over NFS.  See vmfs_lock.c for the
 * design and termvisor.vmx(5) for the files.
 */
#ifndef TV_VMFS_LOCK_H
#define TV_VMFS_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct evloop;
struct vmfs_lock;

struct vmfs_lock_opts {
	unsigned renew_ms;	/* renewal interval; 0: 5000.  Expiry is 3x. */
	unsigned settle_ms;	/* wait before re-reading a lease; 0: 200 */
	bool shared;		/* settle even on a local filesystem (tests) */
};

/* Who holds a VM's lease, as its lease file says. */
struct vmfs_lock_holder {
	char host[256];
	long pid;
	int64_t since_ms, renewed_ms;	/* wall clock, ms since the epoch */
	unsigned renew_ms;
	char token[33];
	bool expired;
};

/*
 * Take the lock of the VM whose directory is vmdir.  0 and *out on
 * success; -EBUSY with "held by pid P on host H since T" in err when
 * someone else holds it; other -errno on failure.
 */
int vmfs_lock_take(const char *vmdir, const struct vmfs_lock_opts *o,
    struct vmfs_lock **out, char *err, size_t errlen);
/*
 * Renew the lease (call every renew_ms).  0, or -ESTALE when the lease
 * is no longer ours (taken over after we failed to renew in time): the
 * caller must stop the VM at once.
 */
int vmfs_lock_renew(struct vmfs_lock *l);
/* Release the lock (drops the lease if it is still ours) and free l. */
void vmfs_lock_release(struct vmfs_lock *l);
/*
 * Renew l from the event loop's timers; lost(opaque) is called if the
 * lease is lost.  0/-errno.  vmfs_lock_release() stops the timer.
 */
int vmfs_lock_attach(struct vmfs_lock *l, struct evloop *loop,
    void (*lost)(void *opaque), void *opaque);
/* Stop renewing from the event loop (before that loop is freed). */
void vmfs_lock_detach(struct vmfs_lock *l);
/*
 * Read vmdir's lease: 1 and *h if a lease file exists (h->expired tells
 * whether it may be taken over), 0 if none, -errno on error.
 */
int vmfs_lock_query(const char *vmdir, struct vmfs_lock_holder *h);
/* "pid P on host H since T" for messages. */
void vmfs_lock_describe(const struct vmfs_lock_holder *h, char *buf,
    size_t len);

#endif
