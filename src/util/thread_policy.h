/*
 * Scheduling policy of the VMM's own service threads.
 *
 * A VM's event thread and the switch serve queues that vCPUs fill: a
 * kick, a frame, a timer.  Under the default policy a thread woken by
 * such an event preempts the running vCPU on the spot, serves the one
 * item there is, and sleeps again, and the next item does the same: two
 * context switches per frame, the vCPU's work cut in pieces, and no
 * batching.  SCHED_BATCH keeps every fair-share rule but that one: the
 * woken thread runs on an idle CPU at once, or when the running thread's
 * slice ends, and then finds a batch waiting.  On a CPU that is idle
 * nothing changes; on a busy host the service thread's latency grows by
 * at most a scheduler slice (a few ms), the price of a much better
 * throughput (bench-net: small-frame UDP between two guests on a
 * 2-core host, 1.6x).
 */
#ifndef TV_THREAD_POLICY_H
#define TV_THREAD_POLICY_H

#include <stdbool.h>

/*
 * Put the calling thread (only it; threads it creates later inherit it)
 * under SCHED_BATCH, unless TERMVISOR_SCHED_BATCH is 0, off or no.  who
 * names the thread in the debug log.  True if the policy is now
 * SCHED_BATCH.  A refusal is not an error: the thread runs as before.
 */
bool thread_policy_batch(const char *who);

#endif
