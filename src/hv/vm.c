/*
 * The VM object: guest memory, vCPU threads and the exit table.
 */
#include "hv/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "hv/bt/bt.h"
#include "hv/console.h"
#include "hv/vmconfig.h"
#include "util/evloop.h"
#include "util/log.h"
#include "util/thread_policy.h"

/* --- guest memory --- */

static int
vm_add_ram(struct vm *vm, uint64_t gpa, uint64_t size, uint8_t *hva,
    const char *name)
{
	struct mem_region *r;

	if (vm->nregions >= VM_MAX_REGIONS)
		return -ENOSPC;
	r = &vm->regions[vm->nregions];
	*r = (struct mem_region){ .gpa = gpa, .size = size, .hva = hva,
	    .slot = vm->nregions, .name = name };
	vm->nregions++;
	return 0;
}

/* Guest RAM from a snapshot file, copy-on-write: pages are read when
 * first touched rather than all before the guest starts. */
static uint8_t *
vm_map_ram_file(const struct vm_config *cfg, uint64_t size)
{
	int fd = open(cfg->ram_file, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	uint8_t *p = MAP_FAILED;

	if (fd < 0)
		return MAP_FAILED;
	if (fstat(fd, &sb) == 0 && (uint64_t)sb.st_size >= size &&
	    (uint64_t)sb.st_size - size >= cfg->ram_file_offset)
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_NORESERVE, fd, (off_t)cfg->ram_file_offset);
	else
		errno = EINVAL;	/* shorter than the RAM it should hold */
	close(fd);
	return p;
}

/* Allocate RAM: below the 32-bit PCI hole, the rest above 4 GiB. */
static int
vm_alloc_ram(struct vm *vm, uint64_t size)
{
	uint64_t low = size < GPA_LOW_RAM_END ? size : GPA_LOW_RAM_END;
	uint8_t *p;
	int err;

	if (vm->cfg->ram_file[0] != '\0')
		p = vm_map_ram_file(vm->cfg, size);
	else
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	madvise(p, size, MADV_HUGEPAGE);
	vm->ram = p;
	vm->ram_size = size;
	err = vm_add_ram(vm, 0, low, p, "ram-low");
	if (err == 0 && size > low)
		err = vm_add_ram(vm, GPA_HIGH_RAM_START, size - low, p + low,
		    "ram-high");
	return err;
}

int
vm_map_device_mem(struct vm *vm, uint64_t gpa, uint64_t size, uint8_t *hva,
    const char *name)
{
	int idx = vm->nregions, err;

	if ((err = vm_add_ram(vm, 0, 0, hva, name)) < 0)
		return err;
	if ((err = vm_move_device_mem(vm, idx, gpa, size)) < 0) {
		vm->nregions--;
		return err;
	}
	return idx;
}

/*
 * The software CPU reads vm->regions without a lock: a moved region is
 * first emptied (size 0 matches no address), then given its new place.
 * KVM cannot resize or move a slot in one step either: delete, re-add.
 */
int
vm_move_device_mem(struct vm *vm, int idx, uint64_t gpa, uint64_t size)
{
	struct mem_region *r;
	int err = 0;

	if (idx < 0 || idx >= vm->nregions)
		return -EINVAL;
	r = &vm->regions[idx];
	if (r->size != 0) {
		__atomic_store_n(&r->size, 0, __ATOMIC_SEQ_CST);
		if (vm->accel != NULL && vm->accel->map_mem != NULL &&
		    (err = vm->accel->map_mem(vm, r)) < 0)
			return err;
	}
	if (size == 0)
		return 0;
	__atomic_store_n(&r->gpa, gpa, __ATOMIC_SEQ_CST);
	__atomic_store_n(&r->size, size, __ATOMIC_SEQ_CST);
	if (vm->accel != NULL && vm->accel->map_mem != NULL &&
	    (err = vm->accel->map_mem(vm, r)) < 0)
		__atomic_store_n(&r->size, 0, __ATOMIC_SEQ_CST);
	return err;
}

void *
vm_gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < vm->nregions; i++) {
		struct mem_region *r = &vm->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size &&
		    len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int
vm_read(struct vm *vm, uint64_t gpa, void *buf, size_t len)
{
	void *p = vm_gpa_to_hva(vm, gpa, len);

	if (p == NULL)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

int
vm_write(struct vm *vm, uint64_t gpa, const void *buf, size_t len)
{
	void *p = vm_gpa_to_hva(vm, gpa, len);

	if (p == NULL)
		return -EFAULT;
	memcpy(p, buf, len);
	return 0;
}

/* --- interrupts and requests --- */

void
vm_irq_set(struct vm *vm, unsigned gsi, int level)
{
	if (vm->accel != NULL && vm->accel->irq_line != NULL)
		vm->accel->irq_line(vm, gsi, level);
}

void
vm_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	if (vm->accel != NULL && vm->accel->msi != NULL)
		vm->accel->msi(vm, addr, data);
}

void
vcpu_kick(struct vcpu *vcpu, unsigned req)
{
	atomic_fetch_or(&vcpu->requests, req);
	pthread_mutex_lock(&vcpu->lock);
	pthread_cond_broadcast(&vcpu->wake);
	vm_idle_kick(vcpu);
	pthread_mutex_unlock(&vcpu->lock);
	if (vcpu->vm->accel != NULL && vcpu->vm->accel->vcpu_kick != NULL)
		vcpu->vm->accel->vcpu_kick(vcpu);
}

void
vm_request_exit(struct vm *vm, int reason, int status)
{
	int expected = 0;

	/* The first reason wins: a power-off racing a reset stays one. */
	if (atomic_compare_exchange_strong(&vm->exit_request, &expected,
	    reason))
		vm->exit_status = status;
	for (int i = 0; i < vm->nvcpus; i++)
		vcpu_kick(vm->vcpus[i], VCPU_REQ_STOP);
	if (vm->loop != NULL)
		evloop_stop(vm->loop);
}

/* --- the exit table --- */

static int
vm_exit_io(struct vcpu *vcpu, struct vm_exit *e)
{
	struct vm *vm = vcpu->vm;
	struct bus *b = e->kind == VM_EXIT_PIO ? vm->pio : vm->mmio;

	if (e->kind == VM_EXIT_PIO)
		vcpu->pio_exits++;
	else
		vcpu->mmio_exits++;
	/* A queue kick: signal its eventfd, and leave the device lock to
	 * whoever holds it (the event thread, mid-batch). */
	if (e->kind == VM_EXIT_MMIO && e->io.write &&
	    vm_ioeventfd_signal(vm, e->io.addr, e->io.len))
		return VMEXIT_CONTINUE;
	pthread_mutex_lock(&vm->devlock);
	bus_access(b, vcpu, e->io.addr, e->io.data, e->io.len, e->io.write);
	pthread_mutex_unlock(&vm->devlock);
	return VMEXIT_CONTINUE;
}

/* Wait for an interrupt or a request (accelerators without in-kernel
 * HLT handling return VM_EXIT_HLT). */
static int
vm_exit_hlt(struct vcpu *vcpu, struct vm_exit *e)
{
	const unsigned wake = VCPU_REQ_IRQ | VCPU_REQ_STOP | VCPU_REQ_PAUSE |
	    VCPU_REQ_RESET | VCPU_REQ_STATE;

	/* An idle guest may wait for what a lazy timer holds back (a
	 * moderated interrupt): the loop must not sleep past it now. */
	evloop_flush_lazy(vcpu->vm->loop);
	vm_idle_wait(vcpu, wake);
	return VMEXIT_CONTINUE;
}

static int
vm_exit_shutdown(struct vcpu *vcpu, struct vm_exit *e)
{
	struct cpu_state st;

	if (vcpu->vm->accel->get_state != NULL &&
	    vcpu->vm->accel->get_state(vcpu, &st) == 0)
		log_info("vcpu %d: triple fault at %04x:%#llx (cr0 %#llx)",
		    vcpu->id, st.seg[SEG_CS].sel, (unsigned long long)st.rip,
		    (unsigned long long)st.cr0);
	else
		log_info("vcpu %d: triple fault", vcpu->id);
	vm_request_exit(vcpu->vm, VM_EVENT_RESET, 0);
	return VMEXIT_ABORT;
}

static int
vm_exit_system(struct vcpu *vcpu, struct vm_exit *e)
{
	vm_request_exit(vcpu->vm, e->system.type, 0);
	return VMEXIT_ABORT;
}

static int
vm_exit_continue(struct vcpu *vcpu, struct vm_exit *e)
{
	return VMEXIT_CONTINUE;
}

static int
vm_exit_internal(struct vcpu *vcpu, struct vm_exit *e)
{
	log_warnx("vcpu %d: %s accelerator stopped: %s (suberror %u)",
	    vcpu->id, vcpu->vm->accel->name, e->internal.msg,
	    e->internal.suberror);
	vm_request_exit(vcpu->vm, VM_EVENT_ERROR, 1);
	return VMEXIT_ABORT;
}

typedef int vm_exit_fn(struct vcpu *, struct vm_exit *);

static vm_exit_fn *const vm_exit_table[VM_EXIT_KINDS] = {
	[VM_EXIT_NONE] = vm_exit_continue,
	[VM_EXIT_PIO] = vm_exit_io,
	[VM_EXIT_MMIO] = vm_exit_io,
	[VM_EXIT_HLT] = vm_exit_hlt,
	[VM_EXIT_SHUTDOWN] = vm_exit_shutdown,
	[VM_EXIT_INTR] = vm_exit_continue,
	[VM_EXIT_SYSTEM_EVENT] = vm_exit_system,
	[VM_EXIT_INTERNAL_ERROR] = vm_exit_internal,
};

int
vcpu_handle_exit(struct vcpu *vcpu, struct vm_exit *e)
{
	if ((unsigned)e->kind >= VM_EXIT_KINDS)
		fatalx("vcpu %d: exit kind %d out of range", vcpu->id, e->kind);
	vcpu->exits[e->kind]++;
	return vm_exit_table[e->kind](vcpu, e);
}

/* --- vCPUs --- */

static void
vcpu_park(struct vcpu *vcpu)
{
	pthread_mutex_lock(&vcpu->lock);
	vcpu->parked = true;
	pthread_cond_broadcast(&vcpu->wake);
	while ((atomic_load(&vcpu->requests) &
	    (VCPU_REQ_PAUSE | VCPU_REQ_STOP)) == VCPU_REQ_PAUSE)
		pthread_cond_wait(&vcpu->wake, &vcpu->lock);
	vcpu->parked = false;
	pthread_mutex_unlock(&vcpu->lock);
}

/* Wait until vcpu is parked or has no thread; false on timeout. */
static bool
vcpu_wait_parked(struct vcpu *vcpu, const struct timespec *deadline)
{
	bool ok = true;

	pthread_mutex_lock(&vcpu->lock);
	while (vcpu->thread_live && !vcpu->parked)
		if (pthread_cond_timedwait(&vcpu->wake, &vcpu->lock,
		    deadline) == ETIMEDOUT) {
			ok = vcpu->parked || !vcpu->thread_live;
			break;
		}
	pthread_mutex_unlock(&vcpu->lock);
	return ok;
}

static void
vcpu_unpause(struct vcpu *vcpu)
{
	atomic_fetch_and(&vcpu->requests, ~VCPU_REQ_PAUSE);
	vcpu_kick(vcpu, 0);
}

/* --- device writes to guest RAM --- */

void
vm_dma_written(struct vm *vm, uint64_t gpa, uint64_t len)
{
	uint8_t *hva;
	uint64_t first, last;

	bt_dma_invalidate(vm, gpa, len);
	if (len == 0 || !atomic_load_explicit(&vm->dma_log,
	    memory_order_acquire))
		return;
	/* vm->ram is one mapping: a page's bit is its offset there. */
	if ((hva = vm_gpa_to_hva(vm, gpa, len)) == NULL ||
	    hva < vm->ram || hva >= vm->ram + vm->ram_size)
		return;
	first = (uint64_t)(hva - vm->ram) >> 12;
	last = ((uint64_t)(hva - vm->ram) + len - 1) >> 12;
	for (uint64_t p = first; p <= last; p++)
		atomic_fetch_or_explicit(&vm->dma_dirty[p / 64],
		    1ull << (p % 64), memory_order_release);
}

int
vm_dma_log_start(struct vm *vm)
{
	size_t words = (vm->ram_size / 4096 + 63) / 64;

	if (vm->dma_dirty == NULL &&
	    (vm->dma_dirty = calloc(words ? words : 1, 8)) == NULL)
		return -ENOMEM;
	atomic_store_explicit(&vm->dma_log, true, memory_order_release);
	return 0;
}

void
vm_dma_log_stop(struct vm *vm)
{
	size_t words = (vm->ram_size / 4096 + 63) / 64;

	atomic_store_explicit(&vm->dma_log, false, memory_order_release);
	if (vm->dma_dirty != NULL)
		for (size_t i = 0; i < words; i++)
			atomic_store(&vm->dma_dirty[i], 0);
}

void
vm_dma_log_fetch(struct vm *vm, const struct mem_region *r,
    uint64_t *bitmap)
{
	uint64_t base, npages;

	if (vm->dma_dirty == NULL || r->hva < vm->ram ||
	    r->hva >= vm->ram + vm->ram_size)
		return;
	base = (uint64_t)(r->hva - vm->ram) >> 12;
	npages = r->size >> 12;
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t p = base + i, bit = 1ull << (p % 64);

		if (!(atomic_load_explicit(&vm->dma_dirty[p / 64],
		    memory_order_relaxed) & bit))
			continue;
		atomic_fetch_and(&vm->dma_dirty[p / 64], ~bit);
		bitmap[i / 64] |= 1ull << (i % 64);
	}
}

int
vm_pause(struct vm *vm, int timeout_ms)
{
	struct timespec deadline;
	bool ok = true;

	if (vm->pause_depth++ > 0)
		return 0;
	for (int i = 0; i < vm->nvcpus; i++)
		vcpu_kick(vm->vcpus[i], VCPU_REQ_PAUSE);
	/* vcpu->wake is signalled with the vCPU's own lock; it is
	 * CLOCK_REALTIME by default. */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_unlock(&vm->devlock);
	for (int i = 0; i < vm->nvcpus && ok; i++)
		ok = vcpu_wait_parked(vm->vcpus[i], &deadline);
	pthread_mutex_lock(&vm->devlock);
	if (!ok) {
		for (int i = 0; i < vm->nvcpus; i++)
			vcpu_unpause(vm->vcpus[i]);
		vm->pause_depth--;
		/* Kicks seen while we were pausing were dropped. */
		vm_ioeventfd_signal_all(vm);
		return -ETIMEDOUT;
	}
	devices_pause(vm);
	vm->state_before_pause = vm->state;
	if (vm->state == VM_RUNNING)
		vm->state = VM_PAUSED;
	return 0;
}

void
vm_resume(struct vm *vm)
{
	TV_ASSERT(vm->pause_depth > 0);
	if (--vm->pause_depth > 0)
		return;
	devices_resume(vm);
	/* Devices drop queue kicks that arrive while the VM is paused
	 * (their eventfds may fire then): kick every queue once now. */
	vm_ioeventfd_signal_all(vm);
	if (vm->state == VM_PAUSED)
		vm->state = vm->state_before_pause == VM_PAUSED ?
		    VM_RUNNING : vm->state_before_pause;
	for (int i = 0; i < vm->nvcpus; i++)
		vcpu_unpause(vm->vcpus[i]);
}

static void *
vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	struct vm_exit exit;
	sigset_t set;

	/* Signals go to the event thread's signalfd, never here. */
	sigfillset(&set);
	sigdelset(&set, SIGUSR1);	/* KVM's kick */
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	for (;;) {
		unsigned req = atomic_load(&vcpu->requests);
		int err;

		if (req & VCPU_REQ_STOP)
			break;
		if (req & VCPU_REQ_PAUSE) {
			vcpu_park(vcpu);
			continue;
		}
		/*
		 * XXX: nothing serves state requests or per-vCPU resets yet
		 * (a guest reset rebuilds the VM); drop them so that an
		 * accelerator that returns VM_EXIT_INTR on them does not spin.
		 */
		if (req & (VCPU_REQ_STATE | VCPU_REQ_RESET))
			atomic_fetch_and(&vcpu->requests,
			    ~(VCPU_REQ_STATE | VCPU_REQ_RESET));
		memset(&exit, 0, sizeof(exit));
		err = vm->accel->vcpu_run(vcpu, &exit);
		if (err < 0) {
			log_warnx("vcpu %d: %s run failed: %s", vcpu->id,
			    vm->accel->name, strerror(-err));
			vm_request_exit(vm, VM_EVENT_ERROR, 1);
			break;
		}
		if (vcpu_handle_exit(vcpu, &exit) == VMEXIT_ABORT)
			break;
	}
	pthread_mutex_lock(&vcpu->lock);
	vcpu->thread_live = false;
	pthread_cond_broadcast(&vcpu->wake);
	pthread_mutex_unlock(&vcpu->lock);
	return NULL;
}

static struct vcpu *
vcpu_new(struct vm *vm, int id)
{
	struct vcpu *v = calloc(1, sizeof(*v));

	if (v == NULL)
		return NULL;
	v->vm = vm;
	v->id = id;
	/* Without its eventfd a vCPU only sleeps when halted. */
	if (vm_idle_vcpu_init(v) < 0)
		log_warn("vcpu %d: idle eventfd", id);
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->wake, NULL);
	return v;
}

static void
vcpu_free(struct vcpu *v)
{
	vm_idle_vcpu_fini(v);
	pthread_mutex_destroy(&v->lock);
	pthread_cond_destroy(&v->wake);
	free(v);
}

struct vm *
vm_create(const struct vm_config *cfg, const struct accel_ops *accel, int *errp)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int err = -ENOMEM, max;

	if (vm == NULL)
		goto fail;
	vm->cfg = cfg;
	vm->idle_owner = -1;
	vm->idle_on = vm_idle_enabled();
	pthread_mutex_init(&vm->devlock, NULL);
	vm->pio = bus_new("pio");
	vm->mmio = bus_new("mmio");
	vm->loop = evloop_new();
	if (vm->pio == NULL || vm->mmio == NULL || vm->loop == NULL)
		goto fail;
	evloop_set_lock(vm->loop, &vm->devlock);
	if ((err = vm_alloc_ram(vm, cfg->memory)) < 0)
		goto fail;
	if ((err = accel->vm_init(vm)) < 0)
		goto fail;
	vm->accel = accel;
	max = accel->max_vcpus(vm);
	if (cfg->cpus < 1 || cfg->cpus > max || cfg->cpus > VM_MAX_VCPUS) {
		log_warnx("--cpus %d: %s allows 1 to %d", cfg->cpus,
		    accel->name, max < VM_MAX_VCPUS ? max : VM_MAX_VCPUS);
		err = -ERANGE;
		goto fail;
	}
	for (int i = 0; i < vm->nregions; i++)
		if ((err = accel->map_mem(vm, &vm->regions[i])) < 0)
			goto fail;
	for (int i = 0; i < cfg->cpus; i++) {
		if ((vm->vcpus[i] = vcpu_new(vm, i)) == NULL) {
			err = -ENOMEM;
			goto fail;
		}
		vm->nvcpus = i + 1;
		if ((err = accel->vcpu_init(vm->vcpus[i])) < 0) {
			vcpu_free(vm->vcpus[i]);
			vm->vcpus[i] = NULL;
			vm->nvcpus = i;
			goto fail;
		}
	}
	/* The UART's create hook connects to the console: make it first. */
	if (strcmp(cfg->serial, "stdio") == 0)
		vm->console = console_new(vm, STDIN_FILENO, STDOUT_FILENO);
	else
		vm->console = console_new(vm, -1, -1);
	if (vm->console == NULL) {
		err = -ENOMEM;
		goto fail;
	}
	if ((err = devices_create(vm)) < 0)
		goto fail;
	vm->state = VM_CREATED;
	return vm;
fail:
	if (errp != NULL)
		*errp = err;
	vm_destroy(vm);
	return NULL;
}

void
vm_destroy(struct vm *vm)
{
	if (vm == NULL)
		return;
	devices_destroy(vm);
	if (vm->console != NULL)
		console_free(vm->console);
	for (int i = 0; i < vm->nvcpus; i++) {
		if (vm->accel != NULL)
			vm->accel->vcpu_fini(vm->vcpus[i]);
		vcpu_free(vm->vcpus[i]);
	}
	if (vm->accel != NULL)
		vm->accel->vm_fini(vm);
	if (vm->ram != NULL)
		munmap(vm->ram, vm->ram_size);
	free((void *)vm->dma_dirty);
	evloop_free(vm->loop);
	bus_free(vm->pio);
	bus_free(vm->mmio);
	pthread_mutex_destroy(&vm->devlock);
	free(vm);
}

/* SIGINT/SIGTERM/SIGHUP end the VM from the event thread. */
static void
vm_on_signal(void *opaque, int fd)
{
	struct vm *vm = opaque;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_info("signal %u: stopping the VM", si.ssi_signo);
	vm_request_exit(vm, VM_EVENT_SIGNAL, 128 + (int)si.ssi_signo);
}

int
vm_run(struct vm *vm)
{
	sigset_t set, old;
	int sfd, err;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd >= 0)
		evloop_add_fd(vm->loop, sfd, vm_on_signal, vm);
	vm->state = VM_RUNNING;
	for (int i = 0; i < vm->nvcpus; i++) {
		/* Live from before it starts, so that vm_pause() never
		 * mistakes a thread about to run for one that is gone. */
		vm->vcpus[i]->thread_live = true;
		err = pthread_create(&vm->vcpus[i]->thread, NULL, vcpu_thread,
		    vm->vcpus[i]);
		if (err != 0) {
			vm->vcpus[i]->thread_live = false;
			log_warnx("vcpu %d: thread: %s", i, strerror(err));
			vm->nvcpus = i;
			vm_request_exit(vm, VM_EVENT_ERROR, 1);
			break;
		}
	}
	/* After the vCPU threads exist, so they keep the default policy:
	 * a kick or a frame must not preempt the vCPU that made it. */
	thread_policy_batch("event thread");
	if (atomic_load(&vm->exit_request) == 0)
		evloop_run(vm->loop);
	for (int i = 0; i < vm->nvcpus; i++)
		vcpu_kick(vm->vcpus[i], VCPU_REQ_STOP);
	for (int i = 0; i < vm->nvcpus; i++)
		pthread_join(vm->vcpus[i]->thread, NULL);
	vm->state = VM_STOPPED;
	if (sfd >= 0) {
		evloop_del_fd(vm->loop, sfd);
		close(sfd);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return atomic_load(&vm->exit_request);
}
