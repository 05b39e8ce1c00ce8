/*
 * Idle sources: work a halted vCPU does itself instead of sleeping
 * until the event thread has done it.
 *
 * A guest that waits for frames halts; when they come, the event thread
 * must be scheduled to copy them in and raise the interrupt, and only
 * then is the vCPU woken.  On a busy host that first wake is the slow
 * one: the event thread runs under SCHED_BATCH (thread_policy.c) and
 * waits out the running thread's slice, while the vCPU that would use
 * the frames sits idle.  So one halted vCPU at a time (the "idle owner")
 * sleeps in poll(2) on the sources' fds as well as on its own wake
 * eventfd, and serves a source that becomes readable on its own thread,
 * with the device lock held, exactly as the event thread's callback
 * would.  The event thread keeps watching the same fds: whichever thread
 * comes first takes the frames, the other finds none.  Other halted
 * vCPUs sleep on their condition variable as before.
 *
 * Sources are added and removed with the device lock held; a halted
 * vCPU reads them under the same lock, and checks again that a source
 * still wants the fd it polled before it runs it.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hv/vm.h"
#include "util/env.h"
#include "util/log.h"

int
vm_idle_add(struct vm *vm, int (*fd)(void *), void (*run)(void *),
    void *opaque)
{
	if (vm->nidle >= VM_MAX_IDLE)
		return -ENOSPC;
	vm->idle[vm->nidle++] = (struct vm_idle_source){ fd, run, opaque };
	return 0;
}

void
vm_idle_del(struct vm *vm, void *opaque)
{
	for (unsigned i = 0; i < vm->nidle; i++)
		if (vm->idle[i].opaque == opaque) {
			vm->idle[i] = vm->idle[--vm->nidle];
			return;
		}
}

bool
vm_idle_enabled(void)
{
	return env_enabled("TERMVISOR_IDLE_POLL");
}

/* Become the idle owner, or false if another vCPU is. */
static bool
vm_idle_claim(struct vcpu *vcpu)
{
	int none = -1;

	return atomic_compare_exchange_strong(&vcpu->vm->idle_owner, &none,
	    vcpu->id);
}

/* Fill p[1..] with the fds the sources want now, under the device lock;
 * how many. */
static unsigned
vm_idle_fds(struct vm *vm, struct pollfd *p, void **who)
{
	unsigned n = 0;

	pthread_mutex_lock(&vm->devlock);
	for (unsigned i = 0; i < vm->nidle; i++) {
		int fd = vm->idle[i].fd(vm->idle[i].opaque);

		if (fd < 0)
			continue;
		p[1 + n] = (struct pollfd){ .fd = fd, .events = POLLIN };
		who[n++] = vm->idle[i].opaque;
	}
	pthread_mutex_unlock(&vm->devlock);
	return n;
}

/* Run the source that polled fd, if it is still there and still wants
 * that fd. */
static void
vm_idle_serve(struct vm *vm, void *opaque, int fd)
{
	pthread_mutex_lock(&vm->devlock);
	for (unsigned i = 0; i < vm->nidle; i++)
		if (vm->idle[i].opaque == opaque &&
		    vm->idle[i].fd(opaque) == fd) {
			vm->idle[i].run(opaque);
			break;
		}
	pthread_mutex_unlock(&vm->devlock);
}

static void
vm_idle_set_polling(struct vcpu *vcpu, bool on)
{
	pthread_mutex_lock(&vcpu->lock);
	vcpu->idle_polling = on;
	pthread_mutex_unlock(&vcpu->lock);
}

/*
 * Wait as the idle owner until one of the wake requests is set.  Any
 * vcpu_kick() in the meantime writes idle_efd (vm_idle_kick), so poll
 * never sleeps through one.
 */
static void
vm_idle_poll(struct vcpu *vcpu, unsigned wake)
{
	struct vm *vm = vcpu->vm;
	struct pollfd p[1 + VM_MAX_IDLE];
	void *who[VM_MAX_IDLE];
	uint64_t v;

	p[0] = (struct pollfd){ .fd = vcpu->idle_efd, .events = POLLIN };
	for (;;) {
		unsigned n = vm_idle_fds(vm, p, who);

		pthread_mutex_lock(&vcpu->lock);
		vcpu->idle_polling = true;
		if (atomic_load(&vcpu->requests) & wake) {
			vcpu->idle_polling = false;
			pthread_mutex_unlock(&vcpu->lock);
			return;
		}
		pthread_mutex_unlock(&vcpu->lock);
		if (poll(p, 1 + n, -1) < 0 && errno != EINTR) {
			log_warn("vcpu %d: idle poll", vcpu->id);
			vm_idle_set_polling(vcpu, false);
			return;
		}
		vm_idle_set_polling(vcpu, false);
		if (p[0].revents & POLLIN &&
		    read(vcpu->idle_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			log_debug("vcpu %d: idle eventfd: %d", vcpu->id, errno);
		for (unsigned i = 0; i < n; i++)
			if (p[1 + i].revents & (POLLIN | POLLHUP | POLLERR))
				vm_idle_serve(vm, who[i], p[1 + i].fd);
	}
}

void
vm_idle_wait(struct vcpu *vcpu, unsigned wake)
{
	struct vm *vm = vcpu->vm;

	if (vm->nidle > 0 && vm->idle_on && vcpu->idle_efd >= 0 &&
	    vm_idle_claim(vcpu)) {
		vm_idle_poll(vcpu, wake);
		atomic_store(&vm->idle_owner, -1);
		return;
	}
	pthread_mutex_lock(&vcpu->lock);
	while ((atomic_load(&vcpu->requests) & wake) == 0)
		pthread_cond_wait(&vcpu->wake, &vcpu->lock);
	pthread_mutex_unlock(&vcpu->lock);
}

void
vm_idle_kick(struct vcpu *vcpu)
{
	static const uint64_t one = 1;

	if (vcpu->idle_polling &&
	    write(vcpu->idle_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("vcpu %d: idle kick: %d", vcpu->id, errno);
}

int
vm_idle_vcpu_init(struct vcpu *vcpu)
{
	vcpu->idle_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return vcpu->idle_efd < 0 ? -errno : 0;
}

void
vm_idle_vcpu_fini(struct vcpu *vcpu)
{
	if (vcpu->idle_efd >= 0)
		close(vcpu->idle_efd);
	vcpu->idle_efd = -1;
}
