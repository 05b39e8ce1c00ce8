/*
 * KVM assist (issue 8): when KVM's in-kernel instruction emulator gives
 * up (KVM_EXIT_INTERNAL_ERROR with the emulation suberror), QEMU stops
 * the VM.  We take the vCPU's state, execute that one instruction on the
 * software CPU (bt_assist_step: memory and I/O through the same bus),
 * write the state back and re-enter KVM.  On any host it turns a class
 * of hard stops into working guests.
 *
 * Stints.  This project's machines have a /dev/kvm that runs guest user
 * mode natively but emulates guest kernel code one instruction at a time
 * (about 0.5 us each).  There the assist goes further: whenever the
 * vCPU is back from KVM_RUN in ring 0 (the failed instruction, a port or
 * MMIO exit, or a periodic timer that interrupts KVM_RUN) the kernel
 * goes on on the software CPU (bt_assist_stint) until it returns to user
 * mode, halts, or reaches something only KVM can do (its in-kernel LAPIC,
 * IOAPIC and PIT, MSRs, CPUID).  User mode keeps running in KVM.  Stints
 * are on where the host CPU shows neither VMX nor SVM (where KVM runs
 * kernel code natively they would only slow it down); the environment
 * variable TERMVISOR_KVM_STINT=0 turns them off, =N sets the longest
 * stint in instructions.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hv/bt/bt.h"
#include "hv/kvm.h"
#include "hv/vm.h"
#include "util/log.h"

/* Longest stint: about a millisecond of kernel code on the software CPU,
 * so interrupts the in-kernel LAPIC holds wait no longer than that. */
#define KVM_STINT_MAX		20000
/* How often KVM_RUN is interrupted to look for kernel code to move. */
#define KVM_STINT_PERIOD_NS	1000000

static long kvm_stint_limit = -1;	/* 0: stints off */
static __thread bool kvm_stint_armed;

static bool
kvm_stint_host_emulates(void)
{
	char line[4096];
	bool hw = true;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		hw = strstr(line, " vmx") != NULL || strstr(line, " svm") != NULL;
		break;
	}
	fclose(f);
	return !hw;
}

static long
kvm_stint_max(void)
{
	long v = __atomic_load_n(&kvm_stint_limit, __ATOMIC_RELAXED);
	const char *e;

	if (v >= 0)
		return v;
	e = getenv("TERMVISOR_KVM_STINT");
	if (e != NULL && *e != '\0')
		v = strtol(e, NULL, 0) > 1 ? strtol(e, NULL, 0) : 0;
	else
		v = kvm_stint_host_emulates() ? KVM_STINT_MAX : 0;
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
	struct cpu_state st;
	long n;
	int r;

	if (kvm_stint_max() == 0 || atomic_load_explicit(&vcpu->vm->dma_log,
	    memory_order_relaxed) || !kvm_stint_ready(vcpu))
		return 0;
	if ((r = kvm_get_state_for_assist(vcpu, &st)) < 0)
		return r;
	n = bt_assist_stint(vcpu, &st, kvm_stint_max(), false);
	if (n <= 0)
		return (int)n;
	vcpu->stint_insns += (uint64_t)n;
	vcpu->stints++;
	if ((r = kvm_set_state_for_assist(vcpu, &st)) < 0)
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
	return kvm_set_state_for_assist(vcpu, &st);
}
