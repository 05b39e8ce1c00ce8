/*
 * KVM assist (issue 8): when KVM's in-kernel instruction emulator gives
 * up (KVM_EXIT_INTERNAL_ERROR with the emulation suberror), QEMU stops
 * the VM.  We take the vCPU's state, execute that one instruction on the
 * software CPU (bt_assist_step: memory and I/O through the same bus),
 * write the state back and re-enter KVM.  On any host it turns a class
 * of hard stops into working guests.
 *
 * Stints (experimental, off unless TERMVISOR_KVM_STINT=N asks for them,
 * N the longest stint in instructions, e.g. 20000).  This project's
 * machines have a /dev/kvm that runs guest user mode natively but
 * emulates guest kernel code one instruction at a time (about 0.5 us
 * each).  With stints, whenever the vCPU is back from KVM_RUN in ring 0
 * (the failed instruction, a port or MMIO exit, or a 1 ms timer that
 * interrupts KVM_RUN) the kernel goes on on the software CPU
 * (bt_assist_stint) until it returns to user mode, halts, or reaches
 * something only KVM can do (its in-kernel LAPIC, IOAPIC and PIT, MSRs,
 * CPUID, SYSRET).  User mode keeps running in KVM.  Debian's kernel then
 * reaches its /init in minutes instead of not at all, but its first
 * processes die at their first system call, and no VMM can change that:
 * on this KVM a guest's SYSCALL from ring 3 jumps to LSTAR without
 * leaving ring 3 (the kernel's entry code then page-faults as user code;
 * tests/e2e/guest-syscall.sh shows it with a test guest), and no exit
 * reaches the VMM in between to repair it: that KVM honours neither
 * hardware breakpoints nor single-stepping in guest user mode, and the
 * fault goes straight to the guest.  A hazard remains besides: a KVM
 * that shadows page tables learns of their changes only through writes
 * it traps, and a stint's are not trapped; stores to page-table pages
 * (found by walking CR3), INVLPG and MOV CR3 should go through KVM
 * before stints are on by default.  On a VMX/SVM host (two-dimensional
 * paging) KVM runs kernel code natively and stints would only slow it
 * down.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hv/accel.h"
#include "hv/bt/bt.h"
#include "hv/kvm.h"
#include "hv/vm.h"
#include "util/log.h"

/* Longest stint allowed: interrupts the in-kernel LAPIC holds wait until
 * a stint ends (20000 instructions are about a millisecond). */
#define KVM_STINT_MAX		1000000
/* How often KVM_RUN is interrupted to look for kernel code to move. */
#define KVM_STINT_PERIOD_NS	1000000

static long kvm_stint_limit = -1;	/* 0: stints off */
static __thread bool kvm_stint_armed;

static long
kvm_stint_max(void)
{
	long v = __atomic_load_n(&kvm_stint_limit, __ATOMIC_RELAXED);
	const char *e;

	if (v >= 0)
		return v;
	e = getenv("TERMVISOR_KVM_STINT");
	v = e != NULL ? strtol(e, NULL, 0) : 0;
	if (v <= 1 || accel_host_has_hw_virt())
		v = 0;
	else if (v > KVM_STINT_MAX)
		v = KVM_STINT_MAX;
	__atomic_store_n(&kvm_stint_limit, v, __ATOMIC_RELAXED);
	return v;
}

bool
kvm_stint_on(void)
{
	return kvm_stint_max() > 0;
}

void
kvm_stint_thread(void)
{
	struct sigevent sev;
	struct itimerspec its = {
		.it_value.tv_nsec = KVM_STINT_PERIOD_NS,
		.it_interval.tv_nsec = KVM_STINT_PERIOD_NS,
	};
	timer_t t;

	if (kvm_stint_armed || kvm_stint_max() == 0)
		return;
	kvm_stint_armed = true;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGUSR1;	/* KVM's kick: only interrupts KVM_RUN */
	sev._sigev_un._tid = gettid();
	if (timer_create(CLOCK_MONOTONIC, &sev, &t) < 0 ||
	    timer_settime(t, 0, &its, NULL) < 0)
		log_warn("KVM assist stints: no periodic timer");
}

/*
 * KVM_RUN is back (the stint timer, a port or MMIO exit): if the vCPU is
 * in ring 0 with nothing being injected, run the kernel on the software
 * CPU for a while.  Not while a migration logs dirty pages: KVM's log
 * does not see the software CPU's writes.
 */
int
kvm_stint(struct vcpu *vcpu)
{
	struct cpu_state st, before;
	long n;
	int r;

	if (kvm_stint_max() == 0 || atomic_load_explicit(&vcpu->vm->dma_log,
	    memory_order_relaxed) || !kvm_stint_ready(vcpu))
		return 0;
	if ((r = kvm_get_state_for_assist(vcpu, &st)) < 0)
		return r;
	before = st;
	n = bt_assist_stint(vcpu, &st, kvm_stint_max(), false);
	if (n <= 0)
		return (int)n;
	vcpu->stint_insns += (uint64_t)n;
	vcpu->stints++;
	if ((r = kvm_set_state_for_assist(vcpu, &st, &before)) < 0)
		return r;
	return 1;
}

void
kvm_stint_report(const struct vcpu *vcpu)
{
	if (vcpu->stints > 0)
		log_info("vcpu %d: KVM assist stints: %llu, %llu instructions "
		    "on the software CPU", vcpu->id,
		    (unsigned long long)vcpu->stints,
		    (unsigned long long)vcpu->stint_insns);
}

/*
 * kvm_pvm (this project's machines) reports the caller's ring-3 CS and SS
 * after a SYSCALL while it runs the kernel's entry code.  A vCPU that KVM
 * stopped in the kernel half of a long-mode address space with a ring-3
 * CS is in that window: give it the segments SYSCALL loads (STAR), or the
 * software CPU would run the entry code in ring 3 and fault.
 */
static void
kvm_assist_fix_syscall(struct cpu_state *st)
{
	uint16_t sel = (uint16_t)((st->msr.star >> 32) & 0xfffc);

	if (!(st->efer & EFER_LMA) || (st->seg[SEG_CS].sel & 3) != 3 ||
	    st->rip < 0xffff800000000000ull || sel == 0)
		return;
	st->seg[SEG_CS] = (struct cpu_seg){ .sel = sel, .limit = 0xffffffff,
	    .type = 0xb, .s = 1, .dpl = 0, .present = 1, .l = 1, .g = 1 };
	st->seg[SEG_SS] = (struct cpu_seg){ .sel = (uint16_t)(sel + 8),
	    .limit = 0xffffffff, .type = 0x3, .s = 1, .dpl = 0, .present = 1,
	    .db = 1, .g = 1 };
}

int
kvm_assist(struct vcpu *vcpu, struct kvm_run *run)
{
	struct cpu_state st;
	uint64_t rip;
	long n;
	int r;

	if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION)
		return -ENOTSUP;
	if ((r = kvm_get_state_for_assist(vcpu, &st)) < 0)
		return r;
	kvm_assist_fix_syscall(&st);
	rip = st.rip;
	if (kvm_stint_max() > 0 && !atomic_load_explicit(&vcpu->vm->dma_log,
	    memory_order_relaxed) && kvm_stint_ready(vcpu)) {
		n = bt_assist_stint(vcpu, &st, kvm_stint_max(), true);
		r = n < 0 ? (int)n : 0;
		if (n > 1) {
			vcpu->stint_insns += (uint64_t)n;
			vcpu->stints++;
		}
	} else
		r = bt_assist_step(vcpu, &st);
	if (r < 0) {
		log_warnx("vcpu %d: KVM could not emulate the instruction at "
		    "%#llx and neither could the software CPU (%s)", vcpu->id,
		    (unsigned long long)rip, strerror(-r));
		return r;
	}
	vcpu->assists++;
	log_guest_once("vcpu %d: KVM assist ran the instruction at %#llx on "
	    "the software CPU", vcpu->id, (unsigned long long)rip);
	return kvm_set_state_for_assist(vcpu, &st, NULL);
}
