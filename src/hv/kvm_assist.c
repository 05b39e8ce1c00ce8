/*
 * KVM assist (issue 8): when KVM's in-kernel instruction emulator gives
 * up (KVM_EXIT_INTERNAL_ERROR with the emulation suberror), QEMU stops
 * the VM.  We take the vCPU's state, execute that one instruction on the
 * software CPU (bt_assist_step: memory and I/O through the same bus),
 * write the state back and re-enter KVM.  On this project's machines,
 * whose /dev/kvm emulates all guest kernel code, that is what lets
 * Debian's kernel (cmpxchg16b, xrstor, int3, clac, movbe, xgetbv, clwb)
 * run under --accel kvm; on any host it turns a class of hard stops into
 * working guests.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>

#include "hv/bt/bt.h"
#include "hv/kvm.h"
#include "hv/vm.h"
#include "util/log.h"

int
kvm_assist(struct vcpu *vcpu, struct kvm_run *run)
{
	struct cpu_state st;
	uint64_t rip;
	int r;

	if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION)
		return -ENOTSUP;
	if ((r = kvm_get_state_for_assist(vcpu, &st)) < 0)
		return r;
	rip = st.rip;
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
