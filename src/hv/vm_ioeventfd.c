/*
 * ioeventfd: guest MMIO writes that only signal an eventfd (virtio queue
 * notifications).  A kick then costs the vCPU one write(2), takes no
 * device lock (the event thread may hold it for a whole batch of
 * frames) and, on KVM with KVM_IOEVENTFD, not even an exit to user
 * space.  The device's eventfd callback runs on the event thread with
 * the device lock held, as every device callback does.
 *
 * The table in struct vm is read by vCPU threads on every MMIO write
 * (vm_exit_io) without a lock, and changed rarely (BAR moves, queue
 * enables, resets) under the device lock: a seqlock over a fixed array,
 * so there is nothing to reclaim.  A reader that raced a change and
 * signals an fd that was just taken out causes one spurious kick, which
 * the virtio rules make harmless; the fds themselves stay open while
 * vCPUs run (the owner closes them only at teardown).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/vm.h"
#include "util/env.h"
#include "util/log.h"

static bool
vm_ioeventfd_len_ok(unsigned len)
{
	return len == 0 || len == 1 || len == 2 || len == 4 || len == 8;
}

/* Would writes matched by (gpa, len) and by e overlap? */
static bool
vm_ioeventfd_clash(const struct vm_ioeventfd *e, uint64_t gpa, unsigned len)
{
	return e->gpa == gpa && (e->len == len || e->len == 0 || len == 0);
}

static void
vm_ioeventfd_write_begin(struct vm *vm)
{
	atomic_fetch_add_explicit(&vm->ioev_seq, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void
vm_ioeventfd_write_end(struct vm *vm)
{
	atomic_fetch_add_explicit(&vm->ioev_seq, 1, memory_order_release);
}

static void
vm_ioeventfd_store(struct vm_ioeventfd *dst, const struct vm_ioeventfd *src)
{
	__atomic_store_n(&dst->gpa, src->gpa, __ATOMIC_RELAXED);
	__atomic_store_n(&dst->len, src->len, __ATOMIC_RELAXED);
	__atomic_store_n(&dst->fd, src->fd, __ATOMIC_RELAXED);
	dst->in_accel = src->in_accel;	/* writers only */
}

int
vm_ioeventfd_add(struct vm *vm, uint64_t gpa, unsigned len, int fd)
{
	struct vm_ioeventfd e = { .gpa = gpa, .len = len, .fd = fd };
	int err;

	if (!vm_ioeventfd_len_ok(len) || fd < 0)
		return -EINVAL;
	for (unsigned i = 0; i < vm->ioev_n; i++)
		if (vm_ioeventfd_clash(&vm->ioev[i], gpa, len))
			return -EEXIST;
	if (vm->ioev_n >= VM_MAX_IOEVENTFDS)
		return -ENOSPC;
	/* Our own table serves it when the accelerator cannot, and for
	 * the software CPU (and KVM's assists) in any case. */
	if (vm->accel != NULL && vm->accel->ioeventfd != NULL) {
		err = vm->accel->ioeventfd(vm, gpa, len, fd, true);
		if (err == 0)
			e.in_accel = true;
		else
			log_debug("ioeventfd at %#llx: %s: %s; the VMM "
			    "serves it", (unsigned long long)gpa,
			    vm->accel->name, strerror(-err));
	}
	vm_ioeventfd_write_begin(vm);
	vm_ioeventfd_store(&vm->ioev[vm->ioev_n], &e);
	__atomic_store_n(&vm->ioev_n, vm->ioev_n + 1, __ATOMIC_RELAXED);
	vm_ioeventfd_write_end(vm);
	return 0;
}

int
vm_ioeventfd_del(struct vm *vm, uint64_t gpa, unsigned len, int fd)
{
	unsigned i, last;

	for (i = 0; i < vm->ioev_n; i++)
		if (vm->ioev[i].gpa == gpa && vm->ioev[i].len == len &&
		    vm->ioev[i].fd == fd)
			break;
	if (i == vm->ioev_n)
		return -ENOENT;
	if (vm->ioev[i].in_accel &&
	    vm->accel->ioeventfd(vm, gpa, len, fd, false) < 0)
		log_debug("ioeventfd at %#llx: %s would not let go",
		    (unsigned long long)gpa, vm->accel->name);
	last = vm->ioev_n - 1;
	vm_ioeventfd_write_begin(vm);
	if (i != last)
		vm_ioeventfd_store(&vm->ioev[i], &vm->ioev[last]);
	__atomic_store_n(&vm->ioev_n, last, __ATOMIC_RELAXED);
	vm_ioeventfd_write_end(vm);
	return 0;
}

static void
vm_ioeventfd_kick(int fd)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is full, so a kick is pending anyway. */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("ioeventfd %d: %s", fd, strerror(errno));
}

/* The fd registered for a write of len at gpa, or -1; lock-free. */
static int
vm_ioeventfd_find(struct vm *vm, uint64_t gpa, unsigned len)
{
	unsigned seq, n;
	int fd;

	for (;;) {
		seq = atomic_load_explicit(&vm->ioev_seq, memory_order_acquire);
		if (seq & 1)
			continue;	/* a writer is at it: rare and short */
		fd = -1;
		n = __atomic_load_n(&vm->ioev_n, __ATOMIC_RELAXED);
		for (unsigned i = 0; i < n && i < VM_MAX_IOEVENTFDS; i++) {
			struct vm_ioeventfd *e = &vm->ioev[i];
			uint32_t elen = __atomic_load_n(&e->len,
			    __ATOMIC_RELAXED);

			if (__atomic_load_n(&e->gpa, __ATOMIC_RELAXED) == gpa &&
			    (elen == 0 || elen == len)) {
				fd = __atomic_load_n(&e->fd, __ATOMIC_RELAXED);
				break;
			}
		}
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&vm->ioev_seq,
		    memory_order_relaxed) == seq)
			return fd;
	}
}

bool
vm_ioeventfd_signal(struct vm *vm, uint64_t gpa, unsigned len)
{
	int fd;

	if (__atomic_load_n(&vm->ioev_n, __ATOMIC_RELAXED) == 0)
		return false;
	if ((fd = vm_ioeventfd_find(vm, gpa, len)) < 0)
		return false;
	vm_ioeventfd_kick(fd);
	return true;
}

void
vm_ioeventfd_signal_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ioev_n; i++)
		vm_ioeventfd_kick(vm->ioev[i].fd);
}

bool
vm_ioeventfd_enabled(void)
{
	return env_enabled("TERMVISOR_IOEVENTFD");
}
