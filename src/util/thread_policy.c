/* Scheduling policy of service threads: see thread_policy.h. */
#include "util/thread_policy.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "util/env.h"
#include "util/log.h"

bool
thread_policy_batch(const char *who)
{
	struct sched_param p = { .sched_priority = 0 };

	/* A thread the user put under a real-time or idle policy keeps it. */
	if (!env_enabled("TERMVISOR_SCHED_BATCH") || sched_getscheduler(0) != SCHED_OTHER)
		return sched_getscheduler(0) == SCHED_BATCH;
	/* pid 0: the calling thread, not the whole process. */
	if (sched_setscheduler(0, SCHED_BATCH, &p) < 0) {
		log_debug("%s: SCHED_BATCH: %s", who, strerror(errno));
		return false;
	}
	return true;
}
