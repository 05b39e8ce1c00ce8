/* PLACEHOLDER: replaced in the next commit by the KVM accelerator. */
#include <errno.h>

#include "hv/accel.h"

static int
kvm_vm_init(struct vm *vm)
{
	return -ENOSYS;
}

const struct accel_ops kvm_accel_ops = {
	.name = "kvm",
	.kernel_irqchip = true,
	.vm_init = kvm_vm_init,
};
