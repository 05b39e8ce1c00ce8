/*
 * KVM assist (issue 8): when KVM's instruction emulator gives up, the
 * software CPU executes the instruction.  Until the software CPU exports
 * its single-step entry point, this reports failure and the VM stops with
 * a clear message, as QEMU would.
 */
#include <errno.h>
#include <linux/kvm.h>

#include "hv/kvm.h"
#include "hv/vm.h"
#include "util/log.h"

int
kvm_assist(struct vcpu *vcpu, struct kvm_run *run)
{
	if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION)
		return -ENOTSUP;
	return -ENOSYS;	/* XXX: wire bt_assist_step() when bt/ lands */
}
