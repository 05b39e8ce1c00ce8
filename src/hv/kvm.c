/*
 * The KVM accelerator: /dev/kvm with the in-kernel irqchip and PIT.
 *
 * Port I/O and MMIO exits are handled inside vcpu_run through
 * vcpu_handle_exit(), like the software CPU does, so the vCPU thread
 * re-enters the guest without a trip through vm.c.  An instruction the
 * kernel cannot emulate (KVM_EXIT_INTERNAL_ERROR, emulation suberror) is
 * executed on the software CPU (kvm_assist) instead of killing the VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "hv/kvm.h"
#include "hv/vmconfig.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/log.h"

#define KVM_TSS_ADDR	0xfffbd000ull
#define KVM_IDMAP_ADDR	0xfffbc000ull

struct kvm_vm {
	int kvm_fd, vm_fd;
	int run_size;
	struct kvm_cpuid2 *cpuid;	/* filtered supported CPUID */
	int max_vcpus;
};

struct kvm_vcpu_data {
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	_Atomic bool thread_valid;
};

static int
kvm_ioctl_err(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

static void
kvm_sigusr1(int sig)
{
	(void)sig;	/* only there to interrupt KVM_RUN */
}

static struct kvm_cpuid2 *
kvm_get_cpuid(int kvm_fd)
{
	for (int n = 64; n <= 1024; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) +
		    n * sizeof(struct kvm_cpuid_entry2));

		if (c == NULL)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	return NULL;
}

static int
kvm_vm_init(struct vm *vm)
{
	struct kvm_vm *k = calloc(1, sizeof(*k));
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t idmap = KVM_IDMAP_ADDR;
	/* SA_RESTART: the kick (and the assist stints' timer) must only
	 * interrupt KVM_RUN, which returns EINTR anyway, never a device's
	 * read or write on the vCPU thread. */
	struct sigaction sa = { .sa_handler = kvm_sigusr1,
	    .sa_flags = SA_RESTART };
	int err;

	if (k == NULL)
		return -ENOMEM;
	k->vm_fd = -1;
	k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0) {
		err = -errno;
		goto fail;
	}
	if (ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		err = -ENOTSUP;
		goto fail;
	}
	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0) {
		err = -errno;
		goto fail;
	}
	k->run_size = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	k->max_vcpus = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (k->max_vcpus <= 0)
		k->max_vcpus = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION,
		    KVM_CAP_NR_VCPUS);
	if (k->max_vcpus <= 0)
		k->max_vcpus = 4;
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0 ||
	    ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0 ||
	    ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0 ||
	    ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		err = -errno;
		goto fail;
	}
	/*
	 * Without this, KVM answers an instruction its emulator cannot run
	 * by injecting #UD into the guest; with it, KVM stops and we run
	 * the instruction on the software CPU (kvm_assist.c).
	 */
	if (ioctl(k->kvm_fd, KVM_CHECK_EXTENSION,
	    KVM_CAP_EXIT_ON_EMULATION_FAILURE) > 0) {
		struct kvm_enable_cap cap = {
			.cap = KVM_CAP_EXIT_ON_EMULATION_FAILURE,
			.args[0] = 1,
		};

		if (ioctl(k->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
			log_info("KVM: cannot enable exit on emulation "
			    "failure: %s", strerror(errno));
	}
	if ((k->cpuid = kvm_get_cpuid(k->kvm_fd)) == NULL) {
		err = -EIO;
		goto fail;
	}
	sigaction(SIGUSR1, &sa, NULL);
	vm->accel_data = k;
	return 0;
fail:
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
	free(k);
	return err;
}

static void
kvm_vm_fini(struct vm *vm)
{
	struct kvm_vm *k = vm->accel_data;

	if (k == NULL)
		return;
	close(k->vm_fd);
	close(k->kvm_fd);
	free(k->cpuid);
	free(k);
	vm->accel_data = NULL;
}

static int
kvm_max_vcpus(struct vm *vm)
{
	return ((struct kvm_vm *)vm->accel_data)->max_vcpus;
}

static int
kvm_map_mem(struct vm *vm, struct mem_region *r)
{
	struct kvm_vm *k = vm->accel_data;
	struct kvm_userspace_memory_region m = {
		.slot = r->slot,
		.guest_phys_addr = r->gpa,
		.memory_size = r->size,
		.userspace_addr = (uintptr_t)r->hva,
	};

	if (r->flags & MEM_DIRTY_LOG)
		m.flags |= KVM_MEM_LOG_DIRTY_PAGES;
	if (r->flags & MEM_READONLY)
		m.flags |= KVM_MEM_READONLY;
	return kvm_ioctl_err(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &m);
}

/*
 * cpu = "baseline": x86-64 as first defined, as the software CPU gives
 * it then (bt/cpuid.c), so that a snapshot moves between the two; no
 * XSAVE, no KVM paravirtual leaves.  False: leave the entry out.
 */
static bool
kvm_cpuid_model(const struct vm *vm, struct kvm_cpuid_entry2 *e)
{
	if (vm->cfg == NULL || strcmp(vm->cfg->cpu, "baseline") != 0)
		return true;
	switch (e->function) {
	case 1:
		e->ecx &= 0x80000000;	/* hypervisor */
		e->edx &= 0x178ba379;
		break;
	case 7:
		e->ebx = e->ecx = e->edx = 0;
		break;
	case 0xd:
		e->eax = e->ebx = e->ecx = e->edx = 0;
		break;
	case 0x80000001:
		e->ecx = 0;
		e->edx &= 0x2193fbff;	/* SYSCALL NX LM, AMD's copies */
		break;
	}
	return e->function < 0x40000000 || e->function > 0x4fffffff;
}

/*
 * Per-vCPU CPUID: KVM's supported set (under the VM's CPU model), with
 * this vCPU's APIC ID and the package size filled in and the hypervisor
 * bit set.
 */
static int
kvm_set_cpuid(struct vcpu *vcpu, int fd)
{
	struct kvm_vm *k = vcpu->vm->accel_data;
	size_t sz = sizeof(*k->cpuid) +
	    k->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = malloc(sz);
	int err;

	if (c == NULL)
		return -ENOMEM;
	memcpy(c, k->cpuid, sz);
	c->nent = 0;
	for (unsigned i = 0; i < k->cpuid->nent; i++)
		if (kvm_cpuid_model(vcpu->vm, &k->cpuid->entries[i]))
			c->entries[c->nent++] = k->cpuid->entries[i];
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) |
			    ((uint32_t)vcpu->vm->nvcpus << 16) |
			    ((uint32_t)vcpu->id << 24);
			e->ecx |= 1u << 31;		/* hypervisor */
			if (vcpu->vm->cfg->cpus > 1)
				e->edx |= 1u << 28;	/* HTT: count valid */
			break;
		case 0xb:
		case 0x1f:
			e->edx = vcpu->id;		/* x2APIC ID */
			break;
		}
	}
	err = kvm_ioctl_err(fd, KVM_SET_CPUID2, c);
	free(c);
	return err;
}

static int
kvm_vcpu_init(struct vcpu *vcpu)
{
	struct kvm_vm *k = vcpu->vm->accel_data;
	struct kvm_vcpu_data *d = calloc(1, sizeof(*d));
	int err;

	if (d == NULL)
		return -ENOMEM;
	d->fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, vcpu->id);
	if (d->fd < 0) {
		err = -errno;
		free(d);
		return err;
	}
	d->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    d->fd, 0);
	if (d->run == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	/* nvcpus is still growing here; CPUID wants the final count. */
	vcpu->accel = d;
	if ((err = kvm_set_cpuid(vcpu, d->fd)) < 0)
		goto fail_unmap;
	return 0;
fail_unmap:
	munmap(d->run, k->run_size);
fail:
	close(d->fd);
	free(d);
	vcpu->accel = NULL;
	return err;
}

static void
kvm_vcpu_fini(struct vcpu *vcpu)
{
	struct kvm_vm *k = vcpu->vm->accel_data;
	struct kvm_vcpu_data *d = vcpu->accel;

	if (d == NULL)
		return;
	kvm_stint_report(vcpu);
	munmap(d->run, k->run_size);
	close(d->fd);
	free(d);
	vcpu->accel = NULL;
}

static void
kvm_vcpu_kick(struct vcpu *vcpu)
{
	struct kvm_vcpu_data *d = vcpu->accel;

	if (d == NULL)
		return;
	d->run->immediate_exit = 1;
	if (atomic_load(&d->thread_valid))
		pthread_kill(d->thread, SIGUSR1);
}

/* --- state conversion --- */

static void
kvm_seg_from(struct cpu_seg *o, const struct kvm_segment *s)
{
	*o = (struct cpu_seg){ .base = s->base, .limit = s->limit,
	    .sel = s->selector, .type = s->type, .s = s->s, .dpl = s->dpl,
	    .present = s->present, .avl = s->avl, .l = s->l, .db = s->db,
	    .g = s->g, .unusable = s->unusable };
}

static void
kvm_seg_to(struct kvm_segment *s, const struct cpu_seg *o)
{
	*s = (struct kvm_segment){ .base = o->base, .limit = o->limit,
	    .selector = o->sel, .type = o->type, .s = o->s, .dpl = o->dpl,
	    .present = o->present, .avl = o->avl, .l = o->l, .db = o->db,
	    .g = o->g, .unusable = o->unusable };
}

/*
 * A real-mode segment cache as VM entry accepts it.  A software CPU
 * keeps the attributes a protected-mode load left (as hardware does:
 * "unreal" limits stay) and only sets selector and base on a real-mode
 * load, so a null selector loaded before the switch leaves type 0, not
 * present; VMX refuses that for a usable segment in real mode.  Base,
 * limit and granularity stay as they are.
 */
static void
kvm_seg_real(struct kvm_segment *s, bool cs)
{
	if (cs) {
		s->type = (s->s && (s->type & 8)) ? s->type | 3 : 0xb;
		s->dpl = 0;
	} else {
		s->type = (s->s && !(s->type & 8)) ? s->type | 3 : 3;
	}
	s->s = 1;
	s->present = 1;
	s->unusable = 0;
}

/* The MSRs carried in struct cpu_msrs, by index. */
static const uint32_t kvm_msr_list[] = {
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SFMASK, MSR_KERNEL_GS_BASE,
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
	MSR_IA32_TSC, MSR_TSC_AUX, MSR_IA32_PAT, MSR_IA32_MISC_ENABLE,
	MSR_MTRR_DEF_TYPE,
};
#define KVM_NMSRS (sizeof(kvm_msr_list) / sizeof(kvm_msr_list[0]))

static uint64_t *
kvm_msr_slot(struct cpu_msrs *m, uint32_t idx)
{
	switch (idx) {
	case MSR_STAR: return &m->star;
	case MSR_LSTAR: return &m->lstar;
	case MSR_CSTAR: return &m->cstar;
	case MSR_SFMASK: return &m->sfmask;
	case MSR_KERNEL_GS_BASE: return &m->kernel_gs_base;
	case MSR_IA32_SYSENTER_CS: return &m->sysenter_cs;
	case MSR_IA32_SYSENTER_ESP: return &m->sysenter_esp;
	case MSR_IA32_SYSENTER_EIP: return &m->sysenter_eip;
	case MSR_IA32_TSC: return &m->tsc;
	case MSR_TSC_AUX: return &m->tsc_aux;
	case MSR_IA32_PAT: return &m->pat;
	case MSR_IA32_MISC_ENABLE: return &m->misc_enable;
	case MSR_MTRR_DEF_TYPE: return &m->mtrr_def_type;
	}
	return NULL;
}

struct kvm_msr_buf {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[KVM_NMSRS];
};

static int
kvm_get_msrs(int fd, struct cpu_msrs *m)
{
	struct kvm_msr_buf b = { .hdr.nmsrs = KVM_NMSRS };
	int n;

	for (size_t i = 0; i < KVM_NMSRS; i++)
		b.e[i].index = kvm_msr_list[i];
	n = ioctl(fd, KVM_GET_MSRS, &b);
	if (n < 0)
		return -errno;
	/* KVM stops at the first MSR it does not know; keep what it gave. */
	for (int i = 0; i < n; i++)
		*kvm_msr_slot(m, b.e[i].index) = b.e[i].data;
	return 0;
}

static int
kvm_set_msrs(int fd, const struct cpu_msrs *m, bool with_tsc)
{
	struct kvm_msr_buf b = { .hdr.nmsrs = 0 };
	struct cpu_msrs copy = *m;

	for (size_t i = 0; i < KVM_NMSRS; i++) {
		if (kvm_msr_list[i] == MSR_IA32_TSC && !with_tsc)
			continue;
		b.e[b.hdr.nmsrs].index = kvm_msr_list[i];
		b.e[b.hdr.nmsrs].data = *kvm_msr_slot(&copy, kvm_msr_list[i]);
		b.hdr.nmsrs++;
	}
	return ioctl(fd, KVM_SET_MSRS, &b) < 0 ? -errno : 0;
}

/*
 * KVM's events into the neutral form.  A software interrupt or a
 * software exception (INT3, INTO) KVM was delivering is dropped: the
 * guest's RIP still points at the instruction (KVM would re-inject it
 * with the instruction's length), so it simply runs again.
 */
static void
kvm_events_from(struct cpu_events *o, const struct kvm_vcpu_events *ev)
{
	bool soft_exc = ev->exception.nr == 3 || ev->exception.nr == 4;

	o->exception_pending = (ev->exception.injected ||
	    ev->exception.pending) && !soft_exc;
	o->exception_nr = o->exception_pending ? ev->exception.nr : 0;
	o->exception_has_error = o->exception_pending &&
	    ev->exception.has_error_code;
	o->exception_error = o->exception_has_error ?
	    ev->exception.error_code : 0;
	o->interrupt_shadow = ev->interrupt.shadow &
	    (KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI);
	o->nmi_pending = ev->nmi.pending != 0;
	o->nmi_masked = ev->nmi.masked != 0;
	o->nmi_injected = ev->nmi.injected != 0;
	o->intr_injected = ev->interrupt.injected && !ev->interrupt.soft;
	o->intr_nr = o->intr_injected ? ev->interrupt.nr : 0;
}

/*
 * The neutral events into KVM's (ev holds KVM's own already), the
 * shadow as VM entry accepts it.  full: also the injected NMI and
 * interrupt (the KVM-assist path leaves those to KVM, which still
 * holds them).
 */
static void
kvm_events_to(struct kvm_vcpu_events *ev, const struct cpu_state *st,
    bool full)
{
	const struct cpu_events *e = &st->ev;

	ev->exception.injected = e->exception_pending;
	ev->exception.pending = 0;
	ev->exception.nr = e->exception_nr;
	ev->exception.has_error_code = e->exception_has_error;
	ev->exception.error_code = e->exception_error;
	ev->interrupt.shadow = cpu_state_shadow(st);
	ev->nmi.pending = e->nmi_pending;
	ev->nmi.masked = e->nmi_masked;
	ev->flags = KVM_VCPUEVENT_VALID_NMI_PENDING |
	    KVM_VCPUEVENT_VALID_SHADOW;
	if (!full)
		return;
	ev->nmi.injected = e->nmi_injected;
	ev->interrupt.injected = e->intr_injected;
	ev->interrupt.nr = e->intr_nr;
	ev->interrupt.soft = 0;
}

static int
kvm_get_state(struct vcpu *vcpu, struct cpu_state *st)
{
	struct kvm_vcpu_data *d = vcpu->accel;
	struct kvm_regs r;
	struct kvm_sregs s;
	struct kvm_xsave xs;
	struct kvm_xcrs xcrs;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_debugregs dr;
	int err;

	/*
	 * The MP state first: reading it makes KVM act on a pending INIT
	 * or SIPI (it resets the registers, or sets CS:IP), so the
	 * registers read after it go with the state it reports.
	 */
	if (ioctl(d->fd, KVM_GET_MP_STATE, &mp) < 0 ||
	    ioctl(d->fd, KVM_GET_REGS, &r) < 0 ||
	    ioctl(d->fd, KVM_GET_SREGS, &s) < 0 ||
	    ioctl(d->fd, KVM_GET_XSAVE, &xs) < 0 ||
	    ioctl(d->fd, KVM_GET_VCPU_EVENTS, &ev) < 0 ||
	    ioctl(d->fd, KVM_GET_DEBUGREGS, &dr) < 0)
		return -errno;
	memset(st, 0, sizeof(*st));
	st->gpr[R_RAX] = r.rax; st->gpr[R_RBX] = r.rbx;
	st->gpr[R_RCX] = r.rcx; st->gpr[R_RDX] = r.rdx;
	st->gpr[R_RSI] = r.rsi; st->gpr[R_RDI] = r.rdi;
	st->gpr[R_RSP] = r.rsp; st->gpr[R_RBP] = r.rbp;
	st->gpr[R_R8] = r.r8; st->gpr[R_R9] = r.r9;
	st->gpr[R_R10] = r.r10; st->gpr[R_R11] = r.r11;
	st->gpr[R_R12] = r.r12; st->gpr[R_R13] = r.r13;
	st->gpr[R_R14] = r.r14; st->gpr[R_R15] = r.r15;
	st->rip = r.rip;
	st->rflags = r.rflags;
	kvm_seg_from(&st->seg[SEG_ES], &s.es);
	kvm_seg_from(&st->seg[SEG_CS], &s.cs);
	kvm_seg_from(&st->seg[SEG_SS], &s.ss);
	kvm_seg_from(&st->seg[SEG_DS], &s.ds);
	kvm_seg_from(&st->seg[SEG_FS], &s.fs);
	kvm_seg_from(&st->seg[SEG_GS], &s.gs);
	kvm_seg_from(&st->seg[SEG_LDTR], &s.ldt);
	kvm_seg_from(&st->seg[SEG_TR], &s.tr);
	st->gdt = (struct cpu_dtable){ s.gdt.base, s.gdt.limit };
	st->idt = (struct cpu_dtable){ s.idt.base, s.idt.limit };
	st->cr0 = s.cr0; st->cr2 = s.cr2; st->cr3 = s.cr3;
	st->cr4 = s.cr4; st->cr8 = s.cr8; st->efer = s.efer;
	st->msr.apic_base = s.apic_base;
	for (int i = 0; i < 4; i++)
		st->dr[i] = dr.db[i];
	st->dr[6] = dr.dr6;
	st->dr[7] = dr.dr7;
	memcpy(st->fpu.fxsave, xs.region, sizeof(st->fpu.fxsave));
	st->fpu.xcr0 = 1;
	if (ioctl(d->fd, KVM_GET_XCRS, &xcrs) == 0)
		for (unsigned i = 0; i < xcrs.nr_xcrs; i++)
			if (xcrs.xcrs[i].xcr == 0)
				st->fpu.xcr0 = xcrs.xcrs[i].value;
	kvm_events_from(&st->ev, &ev);
	st->ev.halted = mp.mp_state == KVM_MP_STATE_HALTED;
	if ((err = kvm_get_msrs(d->fd, &st->msr)) < 0)
		return err;
	return 0;
}

/*
 * with_tsc: a whole state (restore, boot); without: the KVM-assist
 * path's, which leaves the TSC and KVM's injected events alone.  before
 * (assist stints; may be NULL): the state as read, so that only what
 * changed is written back: on this project's machines every vCPU ioctl
 * costs tens of microseconds.
 */
static int
kvm_set_state_tsc(struct vcpu *vcpu, const struct cpu_state *st, bool with_tsc,
    const struct cpu_state *before)
{
	struct kvm_vcpu_data *d = vcpu->accel;
	struct kvm_regs r = {
		.rax = st->gpr[R_RAX], .rbx = st->gpr[R_RBX],
		.rcx = st->gpr[R_RCX], .rdx = st->gpr[R_RDX],
		.rsi = st->gpr[R_RSI], .rdi = st->gpr[R_RDI],
		.rsp = st->gpr[R_RSP], .rbp = st->gpr[R_RBP],
		.r8 = st->gpr[R_R8], .r9 = st->gpr[R_R9],
		.r10 = st->gpr[R_R10], .r11 = st->gpr[R_R11],
		.r12 = st->gpr[R_R12], .r13 = st->gpr[R_R13],
		.r14 = st->gpr[R_R14], .r15 = st->gpr[R_R15],
		.rip = st->rip, .rflags = st->rflags,
	};
	struct kvm_sregs s;
	struct kvm_xsave xs;
	struct kvm_xcrs xcrs = { .nr_xcrs = 1,
	    .xcrs[0] = { .xcr = 0, .value = st->fpu.xcr0 } };
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp = { .mp_state = st->ev.halted ?
	    KVM_MP_STATE_HALTED : KVM_MP_STATE_RUNNABLE };
	struct kvm_debugregs dr = { .dr6 = st->dr[6], .dr7 = st->dr[7] };
	int err;

	bool sregs = true, fpu = true, events = true, dregs = true, mps = true;

	if (before != NULL) {
		sregs = memcmp(st->seg, before->seg, sizeof(st->seg)) != 0 ||
		    memcmp(&st->gdt, &before->gdt, sizeof(st->gdt)) != 0 ||
		    memcmp(&st->idt, &before->idt, sizeof(st->idt)) != 0 ||
		    st->cr0 != before->cr0 || st->cr2 != before->cr2 ||
		    st->cr3 != before->cr3 || st->cr4 != before->cr4 ||
		    st->cr8 != before->cr8 || st->efer != before->efer ||
		    st->msr.apic_base != before->msr.apic_base;
		fpu = memcmp(&st->fpu, &before->fpu, sizeof(st->fpu)) != 0;
		events = memcmp(&st->ev, &before->ev, sizeof(st->ev)) != 0;
		dregs = memcmp(st->dr, before->dr, sizeof(st->dr)) != 0;
		mps = st->ev.halted != before->ev.halted;
	}
	/* Start from KVM's own sregs so the interrupt bitmap stays. */
	if ((sregs && ioctl(d->fd, KVM_GET_SREGS, &s) < 0) ||
	    (fpu && ioctl(d->fd, KVM_GET_XSAVE, &xs) < 0) ||
	    (events && ioctl(d->fd, KVM_GET_VCPU_EVENTS, &ev) < 0))
		return -errno;
	kvm_seg_to(&s.es, &st->seg[SEG_ES]);
	kvm_seg_to(&s.cs, &st->seg[SEG_CS]);
	kvm_seg_to(&s.ss, &st->seg[SEG_SS]);
	kvm_seg_to(&s.ds, &st->seg[SEG_DS]);
	kvm_seg_to(&s.fs, &st->seg[SEG_FS]);
	kvm_seg_to(&s.gs, &st->seg[SEG_GS]);
	kvm_seg_to(&s.ldt, &st->seg[SEG_LDTR]);
	kvm_seg_to(&s.tr, &st->seg[SEG_TR]);
	if (!(st->cr0 & CR0_PE) && !(st->rflags & RFLAGS_VM)) {
		kvm_seg_real(&s.cs, true);
		kvm_seg_real(&s.ss, false);
		s.ss.dpl = 0;
		kvm_seg_real(&s.es, false);
		kvm_seg_real(&s.ds, false);
		kvm_seg_real(&s.fs, false);
		kvm_seg_real(&s.gs, false);
	}
	s.gdt = (struct kvm_dtable){ .base = st->gdt.base,
	    .limit = st->gdt.limit };
	s.idt = (struct kvm_dtable){ .base = st->idt.base,
	    .limit = st->idt.limit };
	s.cr0 = st->cr0; s.cr2 = st->cr2; s.cr3 = st->cr3;
	s.cr4 = st->cr4; s.cr8 = st->cr8; s.efer = st->efer;
	s.apic_base = st->msr.apic_base;
	for (int i = 0; i < 4; i++)
		dr.db[i] = st->dr[i];
	memcpy(xs.region, st->fpu.fxsave, sizeof(st->fpu.fxsave));
	xs.region[128] |= 3;	/* XSTATE_BV: x87 and SSE are valid */
	kvm_events_to(&ev, st, with_tsc);
	if ((sregs && ioctl(d->fd, KVM_SET_SREGS, &s) < 0) ||
	    ioctl(d->fd, KVM_SET_REGS, &r) < 0 ||
	    (fpu && ioctl(d->fd, KVM_SET_XCRS, &xcrs) < 0) ||
	    (fpu && ioctl(d->fd, KVM_SET_XSAVE, &xs) < 0) ||
	    (events && ioctl(d->fd, KVM_SET_VCPU_EVENTS, &ev) < 0) ||
	    (dregs && ioctl(d->fd, KVM_SET_DEBUGREGS, &dr) < 0) ||
	    (mps && ioctl(d->fd, KVM_SET_MP_STATE, &mp) < 0))
		return -errno;
	if (before != NULL) {
		struct cpu_msrs m = before->msr;

		m.tsc = st->msr.tsc;	/* not written here anyway */
		if (memcmp(&st->msr, &m, sizeof(m)) == 0)
			return 0;
	}
	if ((err = kvm_set_msrs(d->fd, &st->msr, with_tsc)) < 0)
		return err;
	return 0;
}

static int
kvm_set_state(struct vcpu *vcpu, const struct cpu_state *st)
{
	return kvm_set_state_tsc(vcpu, st, true, NULL);
}

bool
kvm_stint_ready(struct vcpu *vcpu)
{
	struct kvm_vcpu_data *d = vcpu->accel;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_sregs sr;

	if (ioctl(d->fd, KVM_GET_MP_STATE, &mp) < 0 ||
	    mp.mp_state != KVM_MP_STATE_RUNNABLE ||
	    ioctl(d->fd, KVM_GET_SREGS, &sr) < 0 ||
	    (sr.cs.selector & 3) != 0 || sr.ss.dpl != 0 || !(sr.cr0 & CR0_PE) ||
	    ioctl(d->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return false;
	return !ev.exception.injected && !ev.exception.pending &&
	    !ev.interrupt.injected && !ev.nmi.injected && !ev.nmi.pending;
}

int
kvm_get_state_for_assist(struct vcpu *vcpu, struct cpu_state *st)
{
	return kvm_get_state(vcpu, st);
}

int
kvm_set_state_for_assist(struct vcpu *vcpu, const struct cpu_state *st,
    const struct cpu_state *before)
{
	return kvm_set_state_tsc(vcpu, st, false, before);
}

/* --- running --- */

static void
kvm_handle_pio(struct vcpu *vcpu, struct kvm_run *run)
{
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	struct vm_exit e = { .kind = VM_EXIT_PIO };

	e.io.addr = run->io.port;
	e.io.len = run->io.size;
	e.io.write = run->io.direction == KVM_EXIT_IO_OUT;
	/* REP INS/OUTS arrive as count elements back to back. */
	for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size) {
		if (e.io.write)
			memcpy(e.io.data, p, e.io.len);
		vcpu_handle_exit(vcpu, &e);
		if (!e.io.write)
			memcpy(p, e.io.data, e.io.len);
	}
}

static void
kvm_handle_mmio(struct vcpu *vcpu, struct kvm_run *run)
{
	struct vm_exit e = { .kind = VM_EXIT_MMIO };

	e.io.addr = run->mmio.phys_addr;
	e.io.len = run->mmio.len <= 8 ? run->mmio.len : 8;
	e.io.write = run->mmio.is_write;
	if (e.io.write)
		memcpy(e.io.data, run->mmio.data, e.io.len);
	vcpu_handle_exit(vcpu, &e);
	if (!e.io.write)
		memcpy(run->mmio.data, e.io.data, e.io.len);
}

/*
 * After a port or MMIO exit: KVM completes the instruction (an IN's
 * register, RIP) only at the next KVM_RUN, so enter with immediate_exit
 * first, then see whether a stint can take the kernel on.
 */
static int
kvm_stint_after_io(struct vcpu *vcpu)
{
	struct kvm_vcpu_data *d = vcpu->accel;

	if (!kvm_stint_on())
		return 0;
	d->run->immediate_exit = 1;
	if (ioctl(d->fd, KVM_RUN, 0) == 0 || (errno != EINTR &&
	    errno != EAGAIN)) {
		/* An exit of its own: cannot happen with immediate_exit. */
		d->run->immediate_exit = 0;
		return -EIO;
	}
	d->run->immediate_exit = 0;
	return kvm_stint(vcpu);
}

static int
kvm_vcpu_run(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct kvm_vcpu_data *d = vcpu->accel;
	struct kvm_run *run = d->run;
	const unsigned stop = VCPU_REQ_STOP | VCPU_REQ_PAUSE | VCPU_REQ_STATE |
	    VCPU_REQ_RESET;

	if (!atomic_load(&d->thread_valid)) {
		d->thread = pthread_self();
		atomic_store(&d->thread_valid, true);
		kvm_stint_thread();
	}
	for (;;) {
		if (atomic_load(&vcpu->requests) & stop) {
			exit->kind = VM_EXIT_INTR;
			return 0;
		}
		if (ioctl(d->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				run->immediate_exit = 0;
				/* The stint timer's tick, not a kick? */
				if (atomic_load(&vcpu->requests) == 0 &&
				    kvm_stint(vcpu) >= 0)
					continue;
				exit->kind = VM_EXIT_INTR;
				return 0;
			}
			return -errno;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			kvm_handle_pio(vcpu, run);
			if (kvm_stint_after_io(vcpu) < 0)
				return -EIO;
			break;
		case KVM_EXIT_MMIO:
			kvm_handle_mmio(vcpu, run);
			if (kvm_stint_after_io(vcpu) < 0)
				return -EIO;
			break;
		case KVM_EXIT_HLT:
			exit->kind = VM_EXIT_HLT;
			return 0;
		case KVM_EXIT_SHUTDOWN:
			exit->kind = VM_EXIT_SHUTDOWN;
			return 0;
		case KVM_EXIT_SYSTEM_EVENT:
			exit->kind = VM_EXIT_SYSTEM_EVENT;
			exit->system.type =
			    run->system_event.type == KVM_SYSTEM_EVENT_RESET ?
			    VM_EVENT_RESET : VM_EVENT_POWEROFF;
			return 0;
		case KVM_EXIT_INTR:
			exit->kind = VM_EXIT_INTR;
			return 0;
		case KVM_EXIT_INTERNAL_ERROR:
			if (kvm_assist(vcpu, run) == 0)
				break;
			exit->kind = VM_EXIT_INTERNAL_ERROR;
			exit->internal.suberror = run->internal.suberror;
			snprintf(exit->internal.msg, sizeof(exit->internal.msg),
			    "KVM internal error at the instruction before "
			    "RIP (suberror %u)", run->internal.suberror);
			return 0;
		case KVM_EXIT_FAIL_ENTRY:
			exit->kind = VM_EXIT_INTERNAL_ERROR;
			snprintf(exit->internal.msg, sizeof(exit->internal.msg),
			    "VM entry failed (reason %#llx)", (unsigned long long)
			    run->fail_entry.hardware_entry_failure_reason);
			return 0;
		default:
			log_guest_once("vcpu %d: unhandled KVM exit %u",
			    vcpu->id, run->exit_reason);
			break;
		}
	}
}

static int
kvm_irq_line(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_vm *k = vm->accel_data;
	struct kvm_irq_level l = { .irq = gsi, .level = level };

	return kvm_ioctl_err(k->vm_fd, KVM_IRQ_LINE, &l);
}

static int
kvm_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	struct kvm_vm *k = vm->accel_data;
	struct kvm_msi m = { .address_lo = (uint32_t)addr,
	    .address_hi = (uint32_t)(addr >> 32), .data = data };

	return ioctl(k->vm_fd, KVM_SIGNAL_MSI, &m) < 0 ? -errno : 0;
}

static int
kvm_dirty_log(struct vm *vm, struct mem_region *r, uint64_t *bitmap)
{
	struct kvm_vm *k = vm->accel_data;
	struct kvm_dirty_log l = { .slot = r->slot, .dirty_bitmap = bitmap };

	return kvm_ioctl_err(k->vm_fd, KVM_GET_DIRTY_LOG, &l);
}

/* --- snapshots: what struct cpu_state does not carry --- */

/*
 * MSRs beyond struct cpu_msrs that a guest's state needs, kept when KVM
 * has them: TSC_ADJUST, TSC deadline, the MTRRs, SPEC_CTRL, and KVM's
 * paravirtual ones (kvmclock, async page faults, steal time, PV EOI).
 */
static const uint32_t kvm_snap_msrs[] = {
	0x3b, 0x48, 0x6e0, 0x250, 0x258, 0x259,
	0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f,
	0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207,
	0x208, 0x209, 0x20a, 0x20b, 0x20c, 0x20d, 0x20e, 0x20f,
	0x11, 0x12, 0x4b564d00, 0x4b564d01, 0x4b564d02, 0x4b564d03,
	0x4b564d04, 0x4b564d05,
};
#define KVM_SNAP_NMSRS (sizeof(kvm_snap_msrs) / sizeof(kvm_snap_msrs[0]))

static int
kvm_msr_one(int fd, unsigned long req, uint32_t idx, uint64_t *v)
{
	struct { struct kvm_msrs h; struct kvm_msr_entry e; } b = {
		.h.nmsrs = 1, .e = { .index = idx, .data = *v } };
	int n = ioctl(fd, req, &b);

	if (n == 1 && req == KVM_GET_MSRS)
		*v = b.e.data;
	return n == 1 ? 0 : -EINVAL;
}

static void
kvm_snap_events(struct snap *s, struct kvm_vcpu_events *e)
{
	snap_u8(s, "exc.injected", &e->exception.injected);
	snap_u8(s, "exc.nr", &e->exception.nr);
	snap_u8(s, "exc.has_error", &e->exception.has_error_code);
	snap_u8(s, "exc.pending", &e->exception.pending);
	snap_u32(s, "exc.error", &e->exception.error_code);
	snap_u8(s, "intr.injected", &e->interrupt.injected);
	snap_u8(s, "intr.nr", &e->interrupt.nr);
	snap_u8(s, "intr.soft", &e->interrupt.soft);
	snap_u8(s, "intr.shadow", &e->interrupt.shadow);
	snap_u8(s, "nmi.injected", &e->nmi.injected);
	snap_u8(s, "nmi.pending", &e->nmi.pending);
	snap_u8(s, "nmi.masked", &e->nmi.masked);
	snap_u32(s, "sipi_vector", &e->sipi_vector);
	snap_u8(s, "smi.smm", &e->smi.smm);
	snap_u8(s, "smi.pending", &e->smi.pending);
	snap_u8(s, "smi.inside_nmi", &e->smi.smm_inside_nmi);
	snap_u8(s, "smi.latched_init", &e->smi.latched_init);
}

/* Per vCPU: the whole XSAVE area, the local APIC's registers, every
 * event KVM holds, the multiprocessor state and the extra MSRs. */
static int
kvm_vcpu_snapshot(struct vcpu *vcpu, struct snap *s)
{
	struct kvm_vcpu_data *d = vcpu->accel;
	struct kvm_xsave xs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	uint8_t msrs[KVM_SNAP_NMSRS * 12];
	uint32_t nmsrs = 0;
	char name[32];

	memset(&ev, 0, sizeof(ev));
	if (snap_saving(s)) {
		if (ioctl(d->fd, KVM_GET_XSAVE, &xs) < 0 ||
		    ioctl(d->fd, KVM_GET_LAPIC, &lapic) < 0 ||
		    ioctl(d->fd, KVM_GET_VCPU_EVENTS, &ev) < 0 ||
		    ioctl(d->fd, KVM_GET_MP_STATE, &mp) < 0) {
			snap_fail(s, -errno, "vCPU %d: KVM state: %s",
			    vcpu->id, strerror(errno));
			return snap_error(s);
		}
		for (size_t i = 0; i < KVM_SNAP_NMSRS; i++) {
			uint64_t v = 0;

			if (kvm_msr_one(d->fd, KVM_GET_MSRS, kvm_snap_msrs[i],
			    &v) < 0)
				continue;	/* not on this host's KVM */
			for (int k = 0; k < 4; k++)
				msrs[nmsrs * 12 + k] = kvm_snap_msrs[i] >> (8 * k);
			for (int k = 0; k < 8; k++)
				msrs[nmsrs * 12 + 4 + k] = v >> (8 * k);
			nmsrs++;
		}
	}
	snprintf(name, sizeof(name), "kvm.cpu.%d", vcpu->id);
	snap_section_begin(s, name, 1);
	snap_bytes(s, "xsave", xs.region, sizeof(xs.region));
	snap_bytes(s, "lapic", lapic.regs, sizeof(lapic.regs));
	kvm_snap_events(s, &ev);
	snap_u32(s, "mp_state", &mp.mp_state);
	snap_u32(s, "msrs.n", &nmsrs);
	if (!snap_saving(s) && snap_error(s) == 0 && nmsrs > KVM_SNAP_NMSRS)
		snap_fail(s, -EINVAL, "%u MSRs", nmsrs);
	snap_bytes(s, "msrs", msrs, nmsrs * 12);
	snap_section_end(s);
	if (snap_saving(s) || snap_error(s) != 0)
		return snap_error(s);
	ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING |
	    KVM_VCPUEVENT_VALID_SIPI_VECTOR | KVM_VCPUEVENT_VALID_SHADOW |
	    KVM_VCPUEVENT_VALID_SMM;
	if (ioctl(d->fd, KVM_SET_XSAVE, &xs) < 0 ||
	    ioctl(d->fd, KVM_SET_LAPIC, &lapic) < 0 ||
	    ioctl(d->fd, KVM_SET_VCPU_EVENTS, &ev) < 0 ||
	    ioctl(d->fd, KVM_SET_MP_STATE, &mp) < 0) {
		snap_fail(s, -errno, "vCPU %d: KVM refused the state: %s",
		    vcpu->id, strerror(errno));
		return snap_error(s);
	}
	for (uint32_t i = 0; i < nmsrs; i++) {
		uint32_t idx = 0;
		uint64_t v = 0;

		for (int k = 0; k < 4; k++)
			idx |= (uint32_t)msrs[i * 12 + k] << (8 * k);
		for (int k = 0; k < 8; k++)
			v |= (uint64_t)msrs[i * 12 + 4 + k] << (8 * k);
		if (kvm_msr_one(d->fd, KVM_SET_MSRS, idx, &v) < 0)
			snap_fail(s, -EINVAL, "vCPU %d: KVM refused MSR %#x "
			    "= %#llx", vcpu->id, idx, (unsigned long long)v);
	}
	return snap_error(s);
}

static void
kvm_snap_pic(struct snap *s, const char *pfx, struct kvm_pic_state *p)
{
	char n[48];

#define KVM_PIC_F(f) (snprintf(n, sizeof(n), "%s.%s", pfx, #f), \
	snap_u8(s, n, &p->f))
	KVM_PIC_F(last_irr); KVM_PIC_F(irr); KVM_PIC_F(imr); KVM_PIC_F(isr);
	KVM_PIC_F(priority_add); KVM_PIC_F(irq_base);
	KVM_PIC_F(read_reg_select); KVM_PIC_F(poll); KVM_PIC_F(special_mask);
	KVM_PIC_F(init_state); KVM_PIC_F(auto_eoi);
	KVM_PIC_F(rotate_on_auto_eoi); KVM_PIC_F(special_fully_nested_mode);
	KVM_PIC_F(init4); KVM_PIC_F(elcr); KVM_PIC_F(elcr_mask);
#undef KVM_PIC_F
}

static void
kvm_snap_pit(struct snap *s, struct kvm_pit_state2 *p, int64_t shift)
{
	char n[48];

	for (int i = 0; i < 3; i++) {
		struct kvm_pit_channel_state *c = &p->channels[i];
		int64_t t = c->count_load_time + shift;

#define KVM_PIT_F(fn, f) (snprintf(n, sizeof(n), "pit%d.%s", i, #f), \
	fn(s, n, &c->f))
		KVM_PIT_F(snap_u32, count); KVM_PIT_F(snap_u16, latched_count);
		KVM_PIT_F(snap_u8, count_latched);
		KVM_PIT_F(snap_u8, status_latched); KVM_PIT_F(snap_u8, status);
		KVM_PIT_F(snap_u8, read_state); KVM_PIT_F(snap_u8, write_state);
		KVM_PIT_F(snap_u8, write_latch); KVM_PIT_F(snap_u8, rw_mode);
		KVM_PIT_F(snap_u8, mode); KVM_PIT_F(snap_u8, bcd);
		KVM_PIT_F(snap_u8, gate);
#undef KVM_PIT_F
		snprintf(n, sizeof(n), "pit%d.load_age", i);
		snap_i64(s, n, &t);	/* load time minus now */
		c->count_load_time = t - shift;
	}
	snap_u32(s, "pit.flags", &p->flags);
}

/* The in-kernel PIC pair, I/O APIC and PIT, and kvmclock. */
static int
kvm_vm_snapshot(struct vm *vm, struct snap *s)
{
	struct kvm_vm *k = vm->accel_data;
	struct kvm_irqchip chip[3] = { { .chip_id = KVM_IRQCHIP_PIC_MASTER },
	    { .chip_id = KVM_IRQCHIP_PIC_SLAVE }, { .chip_id = KVM_IRQCHIP_IOAPIC } };
	struct kvm_ioapic_state *io = &chip[2].chip.ioapic;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clk;
	struct timespec ts;
	int64_t now;
	uint64_t v;
	char n[32];

	memset(&pit, 0, sizeof(pit));
	memset(&clk, 0, sizeof(clk));
	clock_gettime(CLOCK_MONOTONIC, &ts);	/* the kernel's ktime */
	now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (snap_saving(s) && (ioctl(k->vm_fd, KVM_GET_IRQCHIP, &chip[0]) < 0 ||
	    ioctl(k->vm_fd, KVM_GET_IRQCHIP, &chip[1]) < 0 ||
	    ioctl(k->vm_fd, KVM_GET_IRQCHIP, &chip[2]) < 0 ||
	    ioctl(k->vm_fd, KVM_GET_PIT2, &pit) < 0 ||
	    ioctl(k->vm_fd, KVM_GET_CLOCK, &clk) < 0)) {
		snap_fail(s, -errno, "KVM irqchip state: %s", strerror(errno));
		return snap_error(s);
	}
	snap_section_begin(s, "kvm.vm", 1);
	kvm_snap_pic(s, "pic0", &chip[0].chip.pic);
	kvm_snap_pic(s, "pic1", &chip[1].chip.pic);
	v = io->base_address;
	snap_u64(s, "ioapic.base", &v);
	io->base_address = v;
	snap_u32(s, "ioapic.regsel", &io->ioregsel);
	snap_u32(s, "ioapic.id", &io->id);
	snap_u32(s, "ioapic.irr", &io->irr);
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++) {
		snprintf(n, sizeof(n), "ioapic.rte%d", i);
		v = io->redirtbl[i].bits;
		snap_u64(s, n, &v);
		io->redirtbl[i].bits = v;
	}
	kvm_snap_pit(s, &pit, -now);
	v = clk.clock;
	snap_u64(s, "clock", &v);
	clk.clock = v;
	snap_section_end(s);
	if (snap_saving(s) || snap_error(s) != 0)
		return snap_error(s);
	clk.flags = 0;
	if (ioctl(k->vm_fd, KVM_SET_IRQCHIP, &chip[0]) < 0 ||
	    ioctl(k->vm_fd, KVM_SET_IRQCHIP, &chip[1]) < 0 ||
	    ioctl(k->vm_fd, KVM_SET_IRQCHIP, &chip[2]) < 0 ||
	    ioctl(k->vm_fd, KVM_SET_PIT2, &pit) < 0 ||
	    ioctl(k->vm_fd, KVM_SET_CLOCK, &clk) < 0)
		snap_fail(s, -errno, "KVM refused the irqchip state: %s",
		    strerror(errno));
	return snap_error(s);
}

/* The CPUID the guest sees: KVM's supported set as kvm_set_cpuid()
 * gives it (features only; the per-vCPU IDs do not matter here). */
static void
kvm_cpuid_of(struct vcpu *vcpu, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	struct kvm_vm *k = vcpu->vm->accel_data;

	r[0] = r[1] = r[2] = r[3] = 0;
	for (unsigned i = 0; i < k->cpuid->nent; i++) {
		struct kvm_cpuid_entry2 e = k->cpuid->entries[i];

		if (e.function != leaf || ((e.flags &
		    KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e.index != sub))
			continue;
		if (kvm_cpuid_model(vcpu->vm, &e)) {
			r[0] = e.eax; r[1] = e.ebx; r[2] = e.ecx; r[3] = e.edx;
		}
		break;
	}
	if (leaf == 1)
		r[2] |= 1u << 31;		/* hypervisor */
}

/*
 * KVM_IOEVENTFD on MMIO.  Any width (len 0) needs
 * KVM_CAP_IOEVENTFD_ANY_LENGTH; without it, each width is its own entry.
 */
static int
kvm_ioeventfd(struct vm *vm, uint64_t gpa, unsigned len, int fd, bool assign)
{
	struct kvm_vm *k = vm->accel_data;
	struct kvm_ioeventfd io = { .addr = gpa, .len = len, .fd = fd,
	    .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN };
	static const unsigned widths[] = { 1, 2, 4, 8 };
	int err = 0;

	if (ioctl(k->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD) <= 0)
		return -ENOTSUP;
	if (len != 0 || ioctl(k->vm_fd, KVM_CHECK_EXTENSION,
	    KVM_CAP_IOEVENTFD_ANY_LENGTH) > 0)
		return kvm_ioctl_err(k->vm_fd, KVM_IOEVENTFD, &io);
	for (unsigned i = 0; i < 4 && err == 0; i++) {
		io.len = widths[i];
		err = kvm_ioctl_err(k->vm_fd, KVM_IOEVENTFD, &io);
	}
	if (err < 0 && assign)
		kvm_ioeventfd(vm, gpa, 0, fd, false);	/* the ones taken */
	return err;
}

const struct accel_ops kvm_accel_ops = {
	.name = "kvm",
	.kernel_irqchip = true,
	.vm_init = kvm_vm_init,
	.vm_fini = kvm_vm_fini,
	.map_mem = kvm_map_mem,
	.max_vcpus = kvm_max_vcpus,
	.vcpu_init = kvm_vcpu_init,
	.vcpu_fini = kvm_vcpu_fini,
	.vcpu_run = kvm_vcpu_run,
	.vcpu_kick = kvm_vcpu_kick,
	.get_state = kvm_get_state,
	.set_state = kvm_set_state,
	.irq_line = kvm_irq_line,
	.msi = kvm_msi,
	.dirty_log = kvm_dirty_log,
	.ioeventfd = kvm_ioeventfd,
	.vcpu_snapshot = kvm_vcpu_snapshot,
	.vm_snapshot = kvm_vm_snapshot,
	.cpuid = kvm_cpuid_of,
};
