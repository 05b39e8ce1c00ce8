/*
 * The event loop's timers, run by a real loop thread on the real clock:
 * a timer armed from another thread fires on time whether it is the
 * loop's next one or not, a lazily armed one waits for the loop's next
 * wake or evloop_flush_lazy(), more fds than a VM used to be allowed
 * (one ioeventfd a queue) all served, and the service-thread policy.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/thread_policy.h"

static struct evloop *loop;
static pthread_t thr;

struct fired {
	int n;			/* atomic */
	uint64_t at;		/* vclock_ns() of the last firing */
};

static void
on_fire(void *opaque)
{
	struct fired *f = opaque;

	f->at = vclock_ns();
	__atomic_fetch_add(&f->n, 1, __ATOMIC_SEQ_CST);
}

static void *
loop_main(void *arg)
{
	evloop_run(arg);
	return NULL;
}

static void
setup(void)
{
	loop = evloop_new();
	cr_assert_not_null(loop);
	cr_assert_eq(pthread_create(&thr, NULL, loop_main, loop), 0);
	usleep(20000);		/* asleep in epoll, no timer */
}

static void
teardown(void)
{
	evloop_stop(loop);
	pthread_join(thr, NULL);
	evloop_free(loop);
}

/* Wait up to ms for f to have fired n times. */
static bool
wait_fired(struct fired *f, int n, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (__atomic_load_n(&f->n, __ATOMIC_SEQ_CST) >= n)
			return true;
		usleep(1000);
	}
	return __atomic_load_n(&f->n, __ATOMIC_SEQ_CST) >= n;
}

TestSuite(evloop, .init = setup, .fini = teardown, .timeout = 30);

Test(evloop, timer_armed_while_the_loop_sleeps_fires)
{
	struct fired f = { 0 };
	struct vtimer t;

	vtimer_init(&t, loop, on_fire, &f);
	vtimer_arm(&t, vclock_ns() + 5000000);
	cr_assert(wait_fired(&f, 1, 5000), "the sleeping loop was woken");
	cr_assert_not(vtimer_armed(&t));
}

/* An earlier timer must wake a loop that sleeps to a later one; a later
 * one needs no wake (and must still fire when its time comes). */
Test(evloop, earlier_timer_cuts_the_sleep_short_later_one_waits_its_turn)
{
	struct fired far = { 0 }, near = { 0 }, later = { 0 };
	struct vtimer tf, tn, tl;
	uint64_t now = vclock_ns();

	vtimer_init(&tf, loop, on_fire, &far);
	vtimer_init(&tn, loop, on_fire, &near);
	vtimer_init(&tl, loop, on_fire, &later);
	vtimer_arm(&tf, now + 20000000000ull);	/* the loop sleeps 20 s */
	usleep(20000);
	vtimer_arm(&tn, vclock_ns() + 10000000);	/* then 10 ms */
	cr_assert(wait_fired(&near, 1, 5000), "woken for the earlier timer");
	cr_assert_eq(far.n, 0);
	/* The second needs no wake: the loop looks at the heap again when
	 * the first fires. */
	vtimer_arm(&tn, near.at + 20000000);
	vtimer_arm(&tl, near.at + 30000000);
	cr_assert(wait_fired(&later, 1, 5000), "the later timer fired too");
	cr_assert_eq(near.n, 2);
	cr_assert_geq(later.at, near.at, "in deadline order");
	vtimer_cancel(&tf);
}

/* A lazy timer does not wake the loop; the flush (a vCPU going idle)
 * or the loop's next wake for anything else fires it. */
Test(evloop, lazy_timer_waits_for_a_flush)
{
	struct fired lazy = { 0 }, other = { 0 };
	struct vtimer tz, to;

	vtimer_init(&tz, loop, on_fire, &lazy);
	vtimer_init(&to, loop, on_fire, &other);
	vtimer_arm_lazy(&tz, vclock_ns() + 1000000);
	usleep(100000);
	cr_assert_eq(lazy.n, 0, "1 ms lazy timer still waits after 100 ms");
	evloop_flush_lazy(loop);
	cr_assert(wait_fired(&lazy, 1, 5000), "the flush woke the loop");
	evloop_flush_lazy(loop);	/* nothing due: harmless */

	vtimer_arm_lazy(&tz, vclock_ns() + 1000000);
	usleep(50000);
	cr_assert_eq(lazy.n, 1);
	vtimer_arm(&to, vclock_ns() + 1000000);
	cr_assert(wait_fired(&other, 1, 5000));
	cr_assert(wait_fired(&lazy, 2, 5000), "fired at the loop's next wake");
}

/* One watched eventfd: how often its callback ran. */
struct watched {
	int fd;
	int n;			/* atomic */
};

static void
on_fd(void *opaque, int fd)
{
	struct watched *w = opaque;
	uint64_t v;

	cr_assert_eq(fd, w->fd, "called with its own fd");
	if (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		__atomic_fetch_add(&w->n, 1, __ATOMIC_SEQ_CST);
}

/* Up to ms for every w[i] with i % step == 0 to have fired n times. */
static bool
wait_watched(struct watched *w, int nw, int step, int n, int ms)
{
	for (int t = 0; t <= ms; t++) {
		int i;

		for (i = 0; i < nw; i += step)
			if (__atomic_load_n(&w[i].n, __ATOMIC_SEQ_CST) < n)
				break;
		if (i >= nw)
			return true;
		usleep(1000);
	}
	return false;
}

/* A VM with many queues (virtio-net queue pairs, several disks) has an
 * ioeventfd each: well over the 64 fds the loop once held.  All are
 * added while the loop runs, all fire; removed ones stop firing, and
 * their slots serve new fds. */
#define NWATCH 300
Test(evloop, many_fds_all_fire)
{
	static struct watched w[NWATCH];
	uint64_t one = 1;
	int i;

	for (i = 0; i < NWATCH; i++) {
		w[i].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		cr_assert_geq(w[i].fd, 0, "eventfd %d", i);
		cr_assert_eq(evloop_add_fd(loop, w[i].fd, on_fd, &w[i]), 0,
		    "fd %d of %d added", i + 1, NWATCH);
	}
	for (i = 0; i < NWATCH; i++)
		cr_assert_eq(write(w[i].fd, &one, sizeof(one)), sizeof(one));
	cr_assert(wait_watched(w, NWATCH, 1, 1, 5000), "all %d fired", NWATCH);

	/* Every other one out, then all written again: only the rest. */
	for (i = 0; i < NWATCH; i += 2)
		cr_assert_eq(evloop_del_fd(loop, w[i].fd), 0);
	cr_assert_eq(evloop_del_fd(loop, w[0].fd), -ENOENT, "gone already");
	for (i = 0; i < NWATCH; i++)
		cr_assert_eq(write(w[i].fd, &one, sizeof(one)), sizeof(one));
	cr_assert(wait_watched(w + 1, NWATCH - 1, 2, 2, 5000),
	    "the ones still watched fired again");
	usleep(50000);
	for (i = 0; i < NWATCH; i += 2)
		cr_assert_eq(__atomic_load_n(&w[i].n, __ATOMIC_SEQ_CST), 1,
		    "removed fd %d did not fire", i);

	/* Back in (in the freed slots): what they hold fires them. */
	for (i = 0; i < NWATCH; i += 2)
		cr_assert_eq(evloop_add_fd(loop, w[i].fd, on_fd, &w[i]), 0);
	cr_assert(wait_watched(w, NWATCH, 2, 2, 5000), "re-added ones fire");
	for (i = 0; i < NWATCH; i++) {
		cr_assert_eq(evloop_del_fd(loop, w[i].fd), 0);
		close(w[i].fd);
	}
}

Test(evloop, service_thread_policy, .init = NULL, .fini = NULL)
{
	setenv("TERMVISOR_SCHED_BATCH", "0", 1);
	cr_assert_not(thread_policy_batch("test"));
	cr_assert_eq(sched_getscheduler(0), SCHED_OTHER, "opted out");
	unsetenv("TERMVISOR_SCHED_BATCH");
	cr_assert(thread_policy_batch("test"));
	cr_assert_eq(sched_getscheduler(0), SCHED_BATCH);
}
