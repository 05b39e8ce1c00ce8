/*
 * The VMM's event loop: file descriptors (serial stdin, control socket,
 * VNC) and timers (PIT, RTC, LAPIC timer, UART pacing) served by one
 * thread.  Callbacks of fds and timers that belong to devices run with
 * the VM's device lock held (evloop_set_lock), so device code has one
 * locking rule whoever calls it.
 *
 * Time is the virtual clock: vclock_ns() is CLOCK_MONOTONIC in ns, unless
 * a test has frozen it with vclock_set_fake(), which makes timer tests
 * deterministic (evloop_run_timers() then fires what is due).
 */
#ifndef TV_EVLOOP_H
#define TV_EVLOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct evloop;

struct vtimer {
	uint64_t deadline;	/* absolute vclock_ns() */
	void (*fn)(void *opaque);
	void *opaque;
	struct evloop *loop;
	int heap_idx;		/* -1 when not armed */
};

uint64_t vclock_ns(void);
/* Freeze the clock at ns (tests); vclock_set_fake(false, 0) unfreezes. */
void vclock_set_fake(bool on, uint64_t ns);
void vclock_advance_fake(uint64_t delta_ns);
/* Hold the clock still (on) and let it run again (off), so that a VM's
 * whole state is saved or loaded at one instant (the TSC and every
 * timer agree).  No effect while a test fakes the clock. */
void vclock_hold(bool on);

struct evloop *evloop_new(void);
void evloop_free(struct evloop *l);
/* Lock taken around device callbacks (may be NULL). */
void evloop_set_lock(struct evloop *l, pthread_mutex_t *lock);

/* Watch fd for input: fn(opaque, fd) is called when readable.  0/-errno */
int evloop_add_fd(struct evloop *l, int fd, void (*fn)(void *opaque, int fd),
    void *opaque);
int evloop_del_fd(struct evloop *l, int fd);

void vtimer_init(struct vtimer *t, struct evloop *l, void (*fn)(void *),
    void *opaque);
/* (Re)arm t to fire at absolute time deadline; thread-safe.  Wakes the
 * loop only if it would otherwise sleep past deadline. */
void vtimer_arm(struct vtimer *t, uint64_t deadline);
/*
 * Arm t without waking the loop: t fires at deadline or at the loop's
 * next wake for anything else, whichever is later, or as soon as
 * evloop_flush_lazy() is called.  For a deadline that is a bound, not a
 * promise (interrupt moderation), armed often from a vCPU thread whose
 * going idle calls evloop_flush_lazy() (vm_exit_hlt): a busy guest's own
 * timer interrupts wake the loop soon enough, and waking it from the
 * vCPU each time would cost more than the timer saves.
 */
void vtimer_arm_lazy(struct vtimer *t, uint64_t deadline);
/* Wake the loop if a lazily armed timer is due before it would look
 * (any thread; cheap when there is none). */
void evloop_flush_lazy(struct evloop *l);
void vtimer_cancel(struct vtimer *t);
bool vtimer_armed(const struct vtimer *t);

/* Fire every timer due at vclock_ns(); returns the next deadline or
 * UINT64_MAX.  The caller must hold the device lock if one is set, and
 * be the loop's own thread or run while no thread runs the loop: the
 * loop takes the result as the end of its coming sleep. */
uint64_t evloop_run_timers(struct evloop *l);
/* Serve fds and timers until evloop_stop(); returns 0. */
int evloop_run(struct evloop *l);
/* Make evloop_run() return (any thread, async-signal-safe). */
void evloop_stop(struct evloop *l);
/* Wake the loop so it re-reads the timer heap (any thread). */
void evloop_wake(struct evloop *l);

#endif
