/*
 * A sampling profile of where the guest spends the software CPU's time:
 * with TV_BT_PROF=FILE in the environment, a thread reads every vCPU's
 * RIP every 100 us and keeps a count per RIP, rewritten to FILE.PID
 * ("rip count" lines) every two seconds and at the end.  Guest kernel
 * RIPs map to functions through the guest's /proc/kallsyms.  The RIP is
 * read without synchronisation: a sample is a hint, never state.
 */
#include "hv/bt/bt_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "hv/vm.h"
#include "util/log.h"

#define PROF_SLOTS	(1u << 18)

struct bt_prof {
	struct vm *vm;
	pthread_t thr;
	int stop;		/* atomic */
	char path[256];
	uint64_t rip[PROF_SLOTS];
	uint32_t n[PROF_SLOTS];
};

static void
prof_count(struct bt_prof *p, uint64_t rip)
{
	uint32_t h = (uint32_t)((rip * 0x9e3779b97f4a7c15ull) >> 46);

	for (unsigned k = 0; k < 64; k++, h = (h + 1) & (PROF_SLOTS - 1)) {
		if (p->n[h] == 0 || p->rip[h] == rip) {
			p->rip[h] = rip;
			p->n[h]++;
			return;
		}
	}
}

static void
prof_dump(struct bt_prof *p)
{
	char tmp[300];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", p->path);
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	for (unsigned h = 0; h < PROF_SLOTS; h++)
		if (p->n[h] != 0)
			fprintf(f, "%llx %u\n", (unsigned long long)p->rip[h],
			    p->n[h]);
	fclose(f);
	rename(tmp, p->path);
}

static void *
prof_main(void *arg)
{
	struct bt_prof *p = arg;
	struct timespec ts = { 0, 100000 };
	unsigned tick = 0;

	while (!__atomic_load_n(&p->stop, __ATOMIC_RELAXED)) {
		nanosleep(&ts, NULL);
		for (int i = 0; i < p->vm->nvcpus; i++) {
			struct vcpu *v = p->vm->vcpus[i];
			struct bt_cpu *c = v ? v->accel : NULL;

			if (c == NULL)
				continue;
			if (c->halted)
				prof_count(p, 1);	/* idle */
			else
				prof_count(p, __atomic_load_n(&c->rip,
				    __ATOMIC_RELAXED));
		}
		if (++tick % 20000 == 0)
			prof_dump(p);
	}
	prof_dump(p);
	return NULL;
}

/* Start the profile if TV_BT_PROF asks for one; NULL if not. */
struct bt_prof *
bt_prof_start(struct vm *vm)
{
	const char *env = getenv("TV_BT_PROF");
	struct bt_prof *p;

	if (env == NULL || *env == '\0' || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->vm = vm;
	snprintf(p->path, sizeof(p->path), "%s.%d", env, (int)getpid());
	if (pthread_create(&p->thr, NULL, prof_main, p) != 0) {
		free(p);
		return NULL;
	}
	log_info("bt: sampling guest RIPs into %s", p->path);
	return p;
}

/* Stop the profile (NULL: none) and write it out a last time. */
void
bt_prof_stop(struct bt_prof *p)
{
	if (p == NULL)
		return;
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
	pthread_join(p->thr, NULL);
	free(p);
}
