#include "util/evloop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

/* Watched fds live in chunks that never move (epoll holds pointers to
 * them) and are never freed before the loop: a VM with many queues (an
 * ioeventfd each) adds chunks, there is no fixed limit. */
#define EVLOOP_FD_CHUNK 64

struct evloop_fd {
	int fd;
	void (*fn)(void *opaque, int fd);
	void *opaque;
};

struct evloop_fdchunk {
	struct evloop_fdchunk *next;
	struct evloop_fd fds[EVLOOP_FD_CHUNK];
};

struct evloop {
	int epfd, wakefd;
	pthread_mutex_t *devlock;
	pthread_mutex_t tlock;		/* protects the heap and sleep_until */
	struct vtimer **heap;
	int nheap, capheap;
	/* When the loop next looks at the heap by itself (the timeout of
	 * its current or coming sleep): a timer armed for then or later
	 * needs no wake. */
	uint64_t sleep_until;
	/* A lazily armed timer is due before sleep_until, and nobody has
	 * woken the loop for it yet (vtimer_arm_lazy). */
	atomic_bool lazy_due;
	pthread_mutex_t fdlock;		/* protects the chunks' slots */
	struct evloop_fdchunk *fdchunks;
	atomic_bool stop;
};

static atomic_bool vclock_fake_on;
static _Atomic uint64_t vclock_fake;

uint64_t
vclock_ns(void)
{
	struct timespec ts;

	if (atomic_load(&vclock_fake_on))
		return atomic_load(&vclock_fake);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void
vclock_set_fake(bool on, uint64_t ns)
{
	atomic_store(&vclock_fake, ns);
	atomic_store(&vclock_fake_on, on);
}

static bool vclock_held;	/* by vclock_hold(), not by a test */

void
vclock_hold(bool on)
{
	if (on && !atomic_load(&vclock_fake_on)) {
		vclock_set_fake(true, vclock_ns());
		vclock_held = true;
	} else if (!on && vclock_held) {
		vclock_held = false;
		atomic_store(&vclock_fake_on, false);
	}
}

void
vclock_advance_fake(uint64_t delta_ns)
{
	atomic_fetch_add(&vclock_fake, delta_ns);
}

struct evloop *
evloop_new(void)
{
	struct evloop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN };

	if (l == NULL)
		return NULL;
	pthread_mutex_init(&l->tlock, NULL);
	pthread_mutex_init(&l->fdlock, NULL);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->epfd < 0 || l->wakefd < 0)
		goto fail;
	ev.data.ptr = NULL;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0)
		goto fail;
	return l;
fail:
	evloop_free(l);
	return NULL;
}

void
evloop_free(struct evloop *l)
{
	if (l == NULL)
		return;
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wakefd > 0)
		close(l->wakefd);
	free(l->heap);
	while (l->fdchunks != NULL) {
		struct evloop_fdchunk *c = l->fdchunks;

		l->fdchunks = c->next;
		free(c);
	}
	pthread_mutex_destroy(&l->tlock);
	pthread_mutex_destroy(&l->fdlock);
	free(l);
}

void
evloop_set_lock(struct evloop *l, pthread_mutex_t *lock)
{
	l->devlock = lock;
}

/* The slot watching fd (-1: a free one), or NULL; fdlock held. */
static struct evloop_fd *
evloop_fd_find(struct evloop *l, int fd)
{
	for (struct evloop_fdchunk *c = l->fdchunks; c != NULL; c = c->next)
		for (int i = 0; i < EVLOOP_FD_CHUNK; i++)
			if (c->fds[i].fd == fd)
				return &c->fds[i];
	return NULL;
}

int
evloop_add_fd(struct evloop *l, int fd, void (*fn)(void *, int), void *opaque)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct evloop_fdchunk *c;
	struct evloop_fd *f;
	int ret = 0;

	pthread_mutex_lock(&l->fdlock);
	if ((f = evloop_fd_find(l, -1)) == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			ret = -ENOMEM;
			goto out;
		}
		for (int i = 0; i < EVLOOP_FD_CHUNK; i++)
			c->fds[i].fd = -1;
		c->next = l->fdchunks;
		l->fdchunks = c;
		f = &c->fds[0];
	}
	*f = (struct evloop_fd){ fd, fn, opaque };
	ev.data.ptr = f;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		ret = -errno;
		f->fd = -1;
	}
out:
	pthread_mutex_unlock(&l->fdlock);
	return ret;
}

int
evloop_del_fd(struct evloop *l, int fd)
{
	struct evloop_fd *f;

	if (fd < 0)
		return -ENOENT;
	pthread_mutex_lock(&l->fdlock);
	if ((f = evloop_fd_find(l, fd)) != NULL) {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		f->fd = -1;
	}
	pthread_mutex_unlock(&l->fdlock);
	return f != NULL ? 0 : -ENOENT;
}

/* Binary min-heap on deadline. */
static void
heap_swap(struct evloop *l, int a, int b)
{
	struct vtimer *t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->heap_idx = a;
	l->heap[b]->heap_idx = b;
}

static void
heap_up(struct evloop *l, int i)
{
	while (i > 0 && l->heap[(i - 1) / 2]->deadline > l->heap[i]->deadline) {
		heap_swap(l, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct evloop *l, int i)
{
	for (;;) {
		int m = i, c1 = 2 * i + 1, c2 = 2 * i + 2;

		if (c1 < l->nheap && l->heap[c1]->deadline < l->heap[m]->deadline)
			m = c1;
		if (c2 < l->nheap && l->heap[c2]->deadline < l->heap[m]->deadline)
			m = c2;
		if (m == i)
			return;
		heap_swap(l, i, m);
		i = m;
	}
}

static void
heap_remove(struct evloop *l, struct vtimer *t)
{
	int i = t->heap_idx;

	if (i < 0)
		return;
	l->nheap--;
	if (i != l->nheap) {
		l->heap[i] = l->heap[l->nheap];
		l->heap[i]->heap_idx = i;
		heap_up(l, i);
		heap_down(l, l->heap[i]->heap_idx);
	}
	t->heap_idx = -1;
}

void
vtimer_init(struct vtimer *t, struct evloop *l, void (*fn)(void *),
    void *opaque)
{
	t->deadline = 0;
	t->fn = fn;
	t->opaque = opaque;
	t->loop = l;
	t->heap_idx = -1;
}

/* Put t in the heap at deadline; true when the loop sleeps past it.
 * With wake, the caller wakes the loop then, and the loop's sleep is
 * taken as ending at deadline. */
static bool
vtimer_insert(struct vtimer *t, uint64_t deadline, bool wake)
{
	struct evloop *l = t->loop;
	bool early;

	pthread_mutex_lock(&l->tlock);
	heap_remove(l, t);
	if (l->nheap == l->capheap) {
		int cap = l->capheap ? l->capheap * 2 : 16;
		struct vtimer **nh = realloc(l->heap, cap * sizeof(*nh));

		if (nh == NULL)
			fatalx("out of memory arming a timer");
		l->heap = nh;
		l->capheap = cap;
	}
	t->deadline = deadline;
	t->heap_idx = l->nheap;
	l->heap[l->nheap++] = t;
	heap_up(l, t->heap_idx);
	early = deadline < l->sleep_until;
	if (early && wake)
		l->sleep_until = deadline;
	pthread_mutex_unlock(&l->tlock);
	return early;
}

void
vtimer_arm(struct vtimer *t, uint64_t deadline)
{
	if (vtimer_insert(t, deadline, true))
		evloop_wake(t->loop);
}

void
vtimer_arm_lazy(struct vtimer *t, uint64_t deadline)
{
	if (vtimer_insert(t, deadline, false))
		atomic_store(&t->loop->lazy_due, true);
}

void
evloop_flush_lazy(struct evloop *l)
{
	if (l != NULL && atomic_load(&l->lazy_due) &&
	    atomic_exchange(&l->lazy_due, false))
		evloop_wake(l);
}

void
vtimer_cancel(struct vtimer *t)
{
	if (t->loop == NULL)
		return;
	pthread_mutex_lock(&t->loop->tlock);
	heap_remove(t->loop, t);
	pthread_mutex_unlock(&t->loop->tlock);
}

bool
vtimer_armed(const struct vtimer *t)
{
	return t->heap_idx >= 0;
}

uint64_t
evloop_run_timers(struct evloop *l)
{
	uint64_t now = vclock_ns(), next = UINT64_MAX;

	pthread_mutex_lock(&l->tlock);
	while (l->nheap > 0 && l->heap[0]->deadline <= now) {
		struct vtimer *t = l->heap[0];

		heap_remove(l, t);
		pthread_mutex_unlock(&l->tlock);
		t->fn(t->opaque);	/* may re-arm t */
		pthread_mutex_lock(&l->tlock);
	}
	if (l->nheap > 0)
		next = l->heap[0]->deadline;
	/* What the caller sleeps to, if it is the loop; lazy timers are
	 * in the heap, so this covers them. */
	l->sleep_until = next;
	atomic_store(&l->lazy_due, false);
	pthread_mutex_unlock(&l->tlock);
	return next;
}

void
evloop_wake(struct evloop *l)
{
	uint64_t one = 1;

	if (write(l->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("evloop wake: %d", errno);
}

void
evloop_stop(struct evloop *l)
{
	atomic_store(&l->stop, true);
	evloop_wake(l);
}

static void
evloop_lock(struct evloop *l)
{
	if (l->devlock != NULL)
		pthread_mutex_lock(l->devlock);
}

static void
evloop_unlock(struct evloop *l)
{
	if (l->devlock != NULL)
		pthread_mutex_unlock(l->devlock);
}

int
evloop_run(struct evloop *l)
{
	struct epoll_event evs[16];

	while (!atomic_load(&l->stop)) {
		struct timespec ts, *tsp = NULL;
		uint64_t next, now;
		int n;

		evloop_lock(l);
		next = evloop_run_timers(l);
		evloop_unlock(l);
		now = vclock_ns();
		if (next != UINT64_MAX) {
			uint64_t d = next <= now ? 0 : next - now;

			ts.tv_sec = d / 1000000000ull;
			ts.tv_nsec = d % 1000000000ull;
			tsp = &ts;
		}
		/* ns resolution: LAPIC one-shot timers need better than ms. */
		n = epoll_pwait2(l->epfd, evs, 16, tsp, NULL);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n; i++) {
			struct evloop_fd *f = evs[i].data.ptr;
			uint64_t v;

			if (f == NULL) {
				if (read(l->wakefd, &v, sizeof(v)) < 0)
					continue;
				continue;
			}
			if (f->fd < 0)
				continue;
			evloop_lock(l);
			f->fn(f->opaque, f->fd);
			evloop_unlock(l);
		}
	}
	return 0;
}
