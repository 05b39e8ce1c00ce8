/*
 * PLACEHOLDER while the software CPU is being written (issue 8): the
 * accelerator reports itself unavailable.  Replaced by the real bt/.
 */
#include <errno.h>

#include "hv/accel.h"

static int
bt_vm_init(struct vm *vm)
{
	return -ENOSYS;
}

const struct accel_ops bt_accel_ops = {
	.name = "bt",
	.vm_init = bt_vm_init,
};
