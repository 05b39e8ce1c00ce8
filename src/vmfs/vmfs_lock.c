/*
 * VM locks.  Two mechanisms, because neither alone is enough:
 *
 * - An fcntl lock (Linux open-file-description lock, F_OFD_SETLK) on
 *   VMDIR/.lock.  The kernel grants it atomically and drops it when the
 *   holder dies, and over NFS the server's lock manager (lockd, or NFSv4
 *   locking) extends it to every host.  But when a *host* crashes, the
 *   NFS server keeps its locks until that host comes back and says it
 *   rebooted: if it never does, the VM would stay locked forever.  And
 *   an NFS mount with -o nolock keeps fcntl locks local to each host.
 *
 * - A lease file VMDIR/lease: host, pid, a random owner token, when the
 *   lock was taken and when it was last renewed.  The holder rewrites it
 *   every renew_ms (write a temporary file, rename it over the lease:
 *   readers see the old or the new lease, never half of one).  A lease
 *   not renewed for 3 * renew_ms has expired and may be taken over; a
 *   holder that finds its lease gone or not its own stops the VM.
 *   A lease alone is racy, though: two hosts may both read "expired"
 *   and both write theirs.  So a taker writes its lease, waits settle_ms
 *   (longer than any one write takes to become visible), and reads it
 *   back: the last rename wins and every other taker sees a token not
 *   its own and backs off.  That works only if the read-to-rename step
 *   was fast, so a taker that took longer than settle_ms / 2 between
 *   reading the old lease and renaming its own starts over.
 *
 * Together: the fcntl lock decides at once among live processes (no
 * waiting on a local filesystem, where it is authoritative); the lease
 * is checked even when the fcntl lock was granted (it may be held by a
 * host the fcntl lock cannot see) and is the only way past an fcntl lock
 * left behind by a dead host.  Clocks of hosts sharing a datastore are
 * assumed synchronized to well under renew_ms (NTP).
 */
#include "vmfs/vmfs_lock.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"

#define VMFS_LOCK_RENEW_MS	5000
#define VMFS_LOCK_SETTLE_MS	200
/* How long a lock held without a lease may be waited out. */
#define VMFS_LOCK_TRANSIENT_MS	3000
#define VMFS_LOCK_EXPIRY	3	/* renewal intervals */
#define VMFS_NFS_MAGIC		0x6969

struct vmfs_lock {
	char dir[4096];
	int fd;			/* OFD-locked VMDIR/.lock, or -1 (lease only) */
	struct vmfs_lock_holder me;
	unsigned settle_ms;
	int64_t last_ok_ms;	/* our last successful renewal */
	struct vtimer timer;
	bool attached;
	void (*lost)(void *opaque);
	void *lost_opaque;
};

static int64_t
vmfs_lock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
vmfs_lock_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static bool
vmfs_lock_expired(const struct vmfs_lock_holder *h, int64_t now)
{
	return now - h->renewed_ms > (int64_t)VMFS_LOCK_EXPIRY * h->renew_ms;
}

/* Parse a lease file's "key=value" lines; -EINVAL if incomplete. */
static int
vmfs_lock_parse(char *text, struct vmfs_lock_holder *h)
{
	char *line, *save = NULL, *eq;
	int seen = 0;

	memset(h, 0, sizeof(*h));
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((eq = strchr(line, '=')) == NULL)
			continue;
		*eq++ = '\0';
		if (strcmp(line, "host") == 0)
			seen |= 1, snprintf(h->host, sizeof(h->host), "%s", eq);
		else if (strcmp(line, "pid") == 0)
			seen |= 2, h->pid = strtol(eq, NULL, 10);
		else if (strcmp(line, "token") == 0)
			seen |= 4, snprintf(h->token, sizeof(h->token), "%s", eq);
		else if (strcmp(line, "since") == 0)
			seen |= 8, h->since_ms = strtoll(eq, NULL, 10);
		else if (strcmp(line, "renewed") == 0)
			seen |= 16, h->renewed_ms = strtoll(eq, NULL, 10);
		else if (strcmp(line, "interval") == 0)
			seen |= 32, h->renew_ms = (unsigned)strtoul(eq, NULL, 10);
	}
	return seen == 63 && h->renew_ms > 0 ? 0 : -EINVAL;
}

int
vmfs_lock_query(const char *vmdir, struct vmfs_lock_holder *h)
{
	char path[4200], buf[1024];
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/lease", vmdir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0 || fstat(fd, &st) < 0) {
		close(fd);
		return -EIO;
	}
	close(fd);
	buf[n] = '\0';
	if (vmfs_lock_parse(buf, h) < 0) {
		/* unreadable: judge it by its age, with the default interval */
		memset(h, 0, sizeof(*h));
		snprintf(h->host, sizeof(h->host), "(unreadable lease)");
		h->renew_ms = VMFS_LOCK_RENEW_MS;
		h->since_ms = h->renewed_ms = (int64_t)st.st_mtime * 1000;
	}
	h->expired = vmfs_lock_expired(h, vmfs_lock_now_ms());
	return 1;
}

void
vmfs_lock_describe(const struct vmfs_lock_holder *h, char *buf, size_t len)
{
	time_t t = (time_t)(h->since_ms / 1000);
	char when[64];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	snprintf(buf, len, "pid %ld on host %s since %s, renewed %llds ago",
	    h->pid, h->host, when,
	    (long long)((vmfs_lock_now_ms() - h->renewed_ms) / 1000));
}

/* Where our lease is written before it is renamed into place. */
static void
vmfs_lock_tmp_path(const struct vmfs_lock *l, char *tmp, size_t len)
{
	snprintf(tmp, len, "%s/.lease.%s", l->dir, l->me.token);
}

/* Our lease, written and synced to its temporary file (not in place). */
static int
vmfs_lock_prepare(struct vmfs_lock *l, int64_t renewed)
{
	char tmp[4200], buf[1024];
	int fd, n, ret = 0;

	vmfs_lock_tmp_path(l, tmp, sizeof(tmp));
	n = snprintf(buf, sizeof(buf), "# termvisor VM lease, see "
	    "termvisor.vmx(5)\nhost=%s\npid=%ld\ntoken=%s\nsince=%lld\n"
	    "renewed=%lld\ninterval=%u\n", l->me.host, l->me.pid, l->me.token,
	    (long long)l->me.since_ms, (long long)renewed, l->me.renew_ms);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)n) != n || fdatasync(fd) < 0)
		ret = -EIO;
	close(fd);
	if (ret < 0)
		unlink(tmp);
	return ret;
}

static void
vmfs_lock_unprepare(struct vmfs_lock *l)
{
	char tmp[4200];

	vmfs_lock_tmp_path(l, tmp, sizeof(tmp));
	unlink(tmp);
}

/* The prepared lease becomes VMDIR/lease (an atomic rename). */
static int
vmfs_lock_commit(struct vmfs_lock *l)
{
	char tmp[4200], path[4200];
	int ret = 0;

	vmfs_lock_tmp_path(l, tmp, sizeof(tmp));
	snprintf(path, sizeof(path), "%s/lease", l->dir);
	if (rename(tmp, path) < 0) {
		ret = -errno;
		unlink(tmp);
	}
	return ret;
}

/* Write our lease: temporary file, then rename over VMDIR/lease. */
static int
vmfs_lock_write(struct vmfs_lock *l, int64_t renewed)
{
	int ret = vmfs_lock_prepare(l, renewed);

	return ret < 0 ? ret : vmfs_lock_commit(l);
}

static void
vmfs_lock_token(char *out)
{
	unsigned char r[16];
	int i;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		/* no entropy source: time and pid still separate takers */
		uint64_t x = (uint64_t)vmfs_lock_now_ms() * 2654435761u ^
		    (uint64_t)getpid() << 32;

		for (i = 0; i < 16; i++)
			r[i] = (unsigned char)(x >> (8 * (i % 8)) ^ (unsigned)i);
	}
	for (i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", r[i]);
}

/* The fcntl half: 0 locked, -EAGAIN held elsewhere, other -errno. */
static int
vmfs_lock_fcntl(struct vmfs_lock *l)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char path[4200];

	snprintf(path, sizeof(path), "%s/.lock", l->dir);
	l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (l->fd < 0)
		return -errno;
	if (fcntl(l->fd, F_OFD_SETLK, &fl) == 0) {
		/* who, and its mtime says when (see vmfs_lock_take) */
		char id[320];
		int n = snprintf(id, sizeof(id), "%s %ld\n", l->me.host,
		    l->me.pid);

		if (ftruncate(l->fd, 0) < 0 || pwrite(l->fd, id, (size_t)n, 0) < 0)
			log_debug("%s: cannot note the holder", path);
		return 0;
	}
	close(l->fd);
	l->fd = -1;
	return errno == EACCES || errno == EAGAIN ? -EAGAIN : -errno;
}

/* May the lease h (1: exists, 0: none) be replaced by us? */
static bool
vmfs_lock_can_replace(const struct vmfs_lock *l, int have,
    const struct vmfs_lock_holder *h)
{
	if (have == 0 || h->expired || strcmp(h->token, l->me.token) == 0)
		return true;	/* free, dead, or ours from a slow first try */
	/* same host, fcntl lock granted, holder gone: it died (kill -9) */
	return l->fd >= 0 && strcmp(h->host, l->me.host) == 0 &&
	    kill((pid_t)h->pid, 0) < 0 && errno == ESRCH;
}

static bool
vmfs_lock_needs_settle(const struct vmfs_lock *l, bool shared)
{
	struct statfs sf;

	if (shared || l->fd < 0)
		return true;
	return statfs(l->dir, &sf) < 0 || sf.f_type == VMFS_NFS_MAGIC;
}

/*
 * Prepare, read, decide, rename, settle, verify; -EAGAIN: too slow, try
 * again.  The slow part (writing and syncing our lease) comes before the
 * read, and the time from the read to the rename is checked before the
 * rename: a taker that stalled there must not replace a lease that
 * another taker wrote and has confirmed meanwhile.
 */
static int
vmfs_lock_lease(struct vmfs_lock *l, bool settle, char *err, size_t errlen)
{
	struct vmfs_lock_holder h;
	char who[512];
	int64_t t0;
	int have, ret;

	if ((ret = vmfs_lock_prepare(l, vmfs_lock_now_ms())) < 0)
		return ret;
	t0 = vmfs_lock_now_ms();
	if ((have = vmfs_lock_query(l->dir, &h)) < 0)
		goto unprepare;
	if (!vmfs_lock_can_replace(l, have, &h)) {
		vmfs_lock_describe(&h, who, sizeof(who));
		snprintf(err, errlen, "%s: VM is locked by %s", l->dir, who);
		have = -EBUSY;
		goto unprepare;
	}
	if (settle && vmfs_lock_now_ms() - t0 > l->settle_ms / 2) {
		have = -EAGAIN;
		goto unprepare;
	}
	if ((ret = vmfs_lock_commit(l)) < 0)
		return ret;
	if (!settle)
		return 0;
	vmfs_lock_sleep_ms(l->settle_ms);
	if (vmfs_lock_query(l->dir, &h) == 1 && strcmp(h.token, l->me.token) == 0)
		return 0;
	vmfs_lock_describe(&h, who, sizeof(who));
	snprintf(err, errlen, "%s: VM is locked by %s (lost a race to take it)",
	    l->dir, who);
	return -EBUSY;
unprepare:
	vmfs_lock_unprepare(l);
	return have;
}

/*
 * An fcntl lock held, but no lease: a taker between the two steps, or
 * one that died there with its host (the NFS lock outliving it).  The
 * fcntl lock file's mtime, set when it was granted, tells them apart.
 */
static bool
vmfs_lock_orphan(const struct vmfs_lock *l)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/.lock", l->dir);
	if (stat(path, &st) < 0)
		return false;
	return vmfs_lock_now_ms() - (int64_t)st.st_mtime * 1000 >
	    (int64_t)VMFS_LOCK_EXPIRY * l->me.renew_ms + 1000;
}

static int
vmfs_lock_init(struct vmfs_lock *l, const char *vmdir,
    const struct vmfs_lock_opts *o)
{
	snprintf(l->dir, sizeof(l->dir), "%s", vmdir);
	l->fd = -1;
	if (gethostname(l->me.host, sizeof(l->me.host) - 1) < 0)
		snprintf(l->me.host, sizeof(l->me.host), "localhost");
	l->me.pid = (long)getpid();
	vmfs_lock_token(l->me.token);
	l->me.renew_ms = o && o->renew_ms ? o->renew_ms : VMFS_LOCK_RENEW_MS;
	l->settle_ms = o && o->settle_ms ? o->settle_ms : VMFS_LOCK_SETTLE_MS;
	l->me.since_ms = vmfs_lock_now_ms();
	return 0;
}

/* Temporary leases of takers that died before renaming them. */
static void
vmfs_lock_sweep(const struct vmfs_lock *l)
{
	char path[4400];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if ((d = opendir(l->dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".lease.", 7) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", l->dir, de->d_name);
		if (stat(path, &st) == 0 && vmfs_lock_now_ms() -
		    (int64_t)st.st_mtime * 1000 > 4 * (int64_t)VMFS_LOCK_EXPIRY *
		    VMFS_LOCK_RENEW_MS)
			unlink(path);
	}
	closedir(d);
}

int
vmfs_lock_take(const char *vmdir, const struct vmfs_lock_opts *o,
    struct vmfs_lock **out, char *err, size_t errlen)
{
	struct vmfs_lock_holder h;
	struct vmfs_lock *l;
	char who[512];
	int ret, tries;

	*out = NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return -ENOMEM;
	vmfs_lock_init(l, vmdir, o);
	ret = vmfs_lock_fcntl(l);
	/*
	 * The fcntl lock held but no lease: its holder is between taking
	 * the lock and writing its lease, or between clearing the lease and
	 * closing (a VM ending, e.g. stopped for a snapshot revert).  Both
	 * are moments, longer on a loaded host: look again for a while
	 * before calling it a concurrent start.
	 */
	for (int ms = 0; ret == -EAGAIN && ms < VMFS_LOCK_TRANSIENT_MS &&
	    vmfs_lock_query(vmdir, &h) == 0 && !vmfs_lock_orphan(l); ms += 50) {
		poll(NULL, 0, 50);
		ret = vmfs_lock_fcntl(l);
	}
	if (ret == -EAGAIN && vmfs_lock_query(vmdir, &h) == 1 && !h.expired) {
		vmfs_lock_describe(&h, who, sizeof(who));
		snprintf(err, errlen, "%s: VM is locked by %s", vmdir, who);
		ret = -EBUSY;
		goto fail;
	}
	if (ret == -EAGAIN && vmfs_lock_query(vmdir, &h) == 0 &&
	    !vmfs_lock_orphan(l)) {
		snprintf(err, errlen, "%s: VM is being started by another "
		    "process", vmdir);
		ret = -EBUSY;
		goto fail;
	}
	if (ret < 0 && ret != -EAGAIN) {
		snprintf(err, errlen, "%s/.lock: %s", vmdir, strerror(-ret));
		goto fail;
	}
	/* granted, or held by a holder whose lease expired (a dead host) */
	for (tries = 0; tries < 5; tries++) {
		ret = vmfs_lock_lease(l, vmfs_lock_needs_settle(l, o && o->shared),
		    err, errlen);
		if (ret != -EAGAIN)
			break;
	}
	if (ret == -EAGAIN)
		snprintf(err, errlen, "%s: lease file I/O too slow to take the "
		    "lock safely", vmdir);
	if (ret < 0)
		goto fail;
	l->last_ok_ms = vmfs_lock_now_ms();
	vmfs_lock_sweep(l);
	*out = l;
	return 0;
fail:
	/* a lease we wrote but could not confirm must not linger */
	if (vmfs_lock_query(vmdir, &h) == 1 && strcmp(h.token, l->me.token) == 0) {
		snprintf(who, sizeof(who), "%s/lease", vmdir);
		unlink(who);
	}
	if (l->fd >= 0)
		close(l->fd);
	free(l);
	return ret;
}

int
vmfs_lock_renew(struct vmfs_lock *l)
{
	struct vmfs_lock_holder h;
	int64_t now = vmfs_lock_now_ms();
	int ret;

	/* Too late: someone may rightly have taken over already. */
	if (now - l->last_ok_ms > (int64_t)VMFS_LOCK_EXPIRY * l->me.renew_ms -
	    l->settle_ms)
		return -ESTALE;
	if (vmfs_lock_query(l->dir, &h) != 1 || strcmp(h.token, l->me.token))
		return -ESTALE;
	if ((ret = vmfs_lock_write(l, now)) < 0)
		return ret;
	l->last_ok_ms = now;
	return 0;
}

void
vmfs_lock_release(struct vmfs_lock *l)
{
	struct vmfs_lock_holder h;
	char path[4200];

	if (l == NULL)
		return;
	if (l->attached)
		vtimer_cancel(&l->timer);
	snprintf(path, sizeof(path), "%s/lease", l->dir);
	if (vmfs_lock_query(l->dir, &h) == 1 && strcmp(h.token, l->me.token) == 0)
		unlink(path);
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}

static void
vmfs_lock_tick(void *opaque)
{
	struct vmfs_lock *l = opaque;
	int ret = vmfs_lock_renew(l);

	if (ret == 0) {
		vtimer_arm(&l->timer, vclock_ns() + l->me.renew_ms * 1000000ull);
		return;
	}
	if (ret != -ESTALE) {
		/* a transient I/O error: retry soon, expiry still guards us */
		log_warnx("%s: renewing the VM lease: %s", l->dir, strerror(-ret));
		vtimer_arm(&l->timer, vclock_ns() + l->me.renew_ms * 250000ull);
		return;
	}
	log_warnx("%s: the VM lease was lost (taken over by another host or "
	    "process); stopping", l->dir);
	if (l->lost != NULL)
		l->lost(l->lost_opaque);
}

void
vmfs_lock_detach(struct vmfs_lock *l)
{
	if (l->attached)
		vtimer_cancel(&l->timer);
	l->attached = false;
}

int
vmfs_lock_attach(struct vmfs_lock *l, struct evloop *loop,
    void (*lost)(void *opaque), void *opaque)
{
	l->lost = lost;
	l->lost_opaque = opaque;
	vtimer_init(&l->timer, loop, vmfs_lock_tick, l);
	vtimer_arm(&l->timer, vclock_ns() + l->me.renew_ms * 1000000ull);
	l->attached = true;
	return 0;
}
