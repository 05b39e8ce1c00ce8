/*
 * ioeventfd (src/hv/vm_ioeventfd.c): the table's rules (widths, clashes,
 * removal, room), and the software CPU's MMIO path, which must signal a
 * registered write's eventfd without the device lock.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fake_vm.h"
#include "hv/bt/bt_internal.h"

#define NOTIFY	0xc0003000ull

static struct vm *vm;
static struct vcpu vcpu;
static int efd[2];
static int dev_writes;		/* writes that reached the bus device */

static void
dev_io(struct vcpu *v, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	if (is_write)
		dev_writes++;
	else
		memset(data, 0x5a, len);
}

static void
setup(void)
{
	vm = fake_vm_new(1 << 20);
	vcpu.vm = vm;
	cr_assert_eq(bus_register(vm->mmio, NOTIFY, 0x1000, dev_io, NULL,
	    "dev"), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_geq(efd[i] = eventfd(0, EFD_NONBLOCK), 0);
}

static void
teardown(void)
{
	for (int i = 0; i < 2; i++)
		close(efd[i]);
	fake_vm_free(vm);
}

/* The eventfd's count (read clears it). */
static uint64_t
count(int fd)
{
	uint64_t n = 0;

	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

/* One MMIO access the way a vCPU thread makes it. */
static void
vcpu_access(uint64_t gpa, unsigned len, bool write)
{
	struct vm_exit e = { .kind = VM_EXIT_MMIO };

	e.io.addr = gpa;
	e.io.len = (uint8_t)len;
	e.io.write = write;
	vcpu_handle_exit(&vcpu, &e);
}

TestSuite(vm_ioeventfd, .init = setup, .fini = teardown, .timeout = 20);

Test(vm_ioeventfd, exact_width_or_any)
{
	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY, 2, efd[0]), 0);
	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY + 4, 0, efd[1]), 0);
	vcpu_access(NOTIFY, 2, true);
	cr_assert_eq(count(efd[0]), 1);
	cr_assert_eq(dev_writes, 0, "a registered write skips the device");
	/* Other widths, other addresses and reads reach the device. */
	vcpu_access(NOTIFY, 4, true);
	vcpu_access(NOTIFY, 1, true);
	vcpu_access(NOTIFY + 1, 2, true);
	vcpu_access(NOTIFY, 2, false);
	cr_assert_eq(count(efd[0]), 0);
	cr_assert_eq(dev_writes, 3);
	/* len 0: any width. */
	vcpu_access(NOTIFY + 4, 1, true);
	vcpu_access(NOTIFY + 4, 2, true);
	vcpu_access(NOTIFY + 4, 4, true);
	vcpu_access(NOTIFY + 4, 8, true);
	cr_assert_eq(count(efd[1]), 4);
	cr_assert_eq(dev_writes, 3);
}

Test(vm_ioeventfd, clashes_and_bad_widths_refused)
{
	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY, 3, efd[0]), -EINVAL);
	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY, 2, -1), -EINVAL);
	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY, 2, efd[0]), 0);
	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY, 2, efd[1]), -EEXIST);
	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY, 0, efd[1]), -EEXIST);
	/* Another width at the same address is another register. */
	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY, 4, efd[1]), 0);
	vcpu_access(NOTIFY, 4, true);
	cr_assert_eq(count(efd[1]), 1);
	cr_assert_eq(count(efd[0]), 0);
}

Test(vm_ioeventfd, move_and_remove)
{
	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY, 2, efd[0]), 0);
	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY + 4, 2, efd[1]), 0);
	cr_assert_eq(vm_ioeventfd_del(vm, NOTIFY, 4, efd[0]), -ENOENT);
	cr_assert_eq(vm_ioeventfd_del(vm, NOTIFY, 2, efd[1]), -ENOENT);
	/* Remove the first: the second, moved into its slot, still works. */
	cr_assert_eq(vm_ioeventfd_del(vm, NOTIFY, 2, efd[0]), 0);
	vcpu_access(NOTIFY, 2, true);
	vcpu_access(NOTIFY + 4, 2, true);
	cr_assert_eq(count(efd[0]), 0);
	cr_assert_eq(count(efd[1]), 1);
	cr_assert_eq(dev_writes, 1);
	/* A move is a removal and an addition. */
	cr_assert_eq(vm_ioeventfd_del(vm, NOTIFY + 4, 2, efd[1]), 0);
	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY + 8, 2, efd[1]), 0);
	vcpu_access(NOTIFY + 4, 2, true);
	vcpu_access(NOTIFY + 8, 2, true);
	cr_assert_eq(count(efd[1]), 1);
	cr_assert_eq(dev_writes, 2);
	vm_ioeventfd_signal_all(vm);
	cr_assert_eq(count(efd[1]), 1, "signal_all kicks what is registered");
	cr_assert_eq(count(efd[0]), 0);
}

Test(vm_ioeventfd, table_full)
{
	unsigned i;

	for (i = 0; i < VM_MAX_IOEVENTFDS; i++)
		cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY + 4 * i, 2, efd[0]),
		    0);
	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY + 4 * i, 2, efd[0]),
	    -ENOSPC);
	vcpu_access(NOTIFY + 4 * (i - 1), 2, true);
	cr_assert_eq(count(efd[0]), 1);
}

/* --- the software CPU's path, with the device lock taken elsewhere --- */

struct bt_write {
	struct bt_cpu *c;
	uint64_t gpa;
	unsigned len;
};

static void *
bt_write_thread(void *arg)
{
	struct bt_write *w = arg;

	bt_phys_write(w->c, w->gpa, w->len, 0);
	return NULL;
}

/*
 * A guest-physical write by the software CPU (bt_phys_write, as its
 * stores to device memory go) on another thread while this one holds
 * the device lock.  True if it completed with the lock still held.
 */
static bool
bt_write_locked(uint64_t gpa, unsigned len)
{
	struct bt_cpu *c = calloc(1, sizeof(*c));
	struct bt_write w = { c, gpa, len };
	struct timespec ts;
	pthread_t t;
	bool done;

	cr_assert_not_null(c);
	c->vm = vm;
	c->vcpu = &vcpu;
	pthread_mutex_lock(&vm->devlock);
	cr_assert_eq(pthread_create(&t, NULL, bt_write_thread, &w), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 300 * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	done = pthread_timedjoin_np(t, NULL, &ts) == 0;
	pthread_mutex_unlock(&vm->devlock);
	if (!done)
		pthread_join(t, NULL);
	free(c);
	return done;
}

Test(vm_ioeventfd, software_cpu_kick_takes_no_device_lock)
{
	struct pollfd p = { .events = POLLIN };

	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY, 2, efd[0]), 0);
	cr_assert(bt_write_locked(NOTIFY, 2),
	    "the kick waited for the device lock");
	p.fd = efd[0];
	cr_assert_eq(poll(&p, 1, 1000), 1, "the eventfd fired");
	cr_assert_eq(count(efd[0]), 1);
	cr_assert_eq(dev_writes, 0);
	/* Anything else still goes through the lock to the device. */
	cr_assert_not(bt_write_locked(NOTIFY, 4),
	    "a write nobody registered passed the device lock");
	cr_assert_eq(dev_writes, 1);
	cr_assert_eq(count(efd[0]), 0);
}

/* Writers change the table under the device lock while vCPU threads
 * kick: every kick lands on the eventfd or on the device, never lost. */
static atomic_bool stop;

static void *
churn(void *arg)
{
	while (!atomic_load(&stop)) {
		pthread_mutex_lock(&vm->devlock);
		vm_ioeventfd_add(vm, NOTIFY + 4, 2, efd[1]);
		vm_ioeventfd_del(vm, NOTIFY + 4, 2, efd[1]);
		pthread_mutex_unlock(&vm->devlock);
	}
	return NULL;
}

Test(vm_ioeventfd, kicks_survive_table_changes)
{
	pthread_t t;
	uint64_t n = 0;
	const int kicks = 20000;

	cr_assert_eq(vm_ioeventfd_add(vm, NOTIFY, 2, efd[0]), 0);
	cr_assert_eq(pthread_create(&t, NULL, churn, NULL), 0);
	for (int i = 0; i < kicks; i++) {
		vcpu_access(NOTIFY, 2, true);
		n += count(efd[0]);
	}
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	n += count(efd[0]);
	cr_assert_eq(n + (uint64_t)dev_writes, kicks);
	cr_assert_eq(dev_writes, 0, "the registered entry never vanished");
}
