/*
 * QEMU's isa-debug-exit, so guest test suites written for it run
 * unchanged: a write of V (1 to 4 bytes) to the port ends the VMM with
 * exit status (V << 1) | 1, which can never be 0 and so never looks like
 * a clean power-off.  Only present with --debug-exit.
 */
#include "devices/debug_exit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/snap.h"
#include "util/log.h"

struct debug_exit {
	struct vm *vm;
	uint16_t port;
};

static void
debug_exit_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct debug_exit *d = opaque;
	uint32_t v;

	if (!is_write) {
		memset(data, 0xff, len);
		return;
	}
	v = (uint32_t)bus_get(data, len > 4 ? 4 : len);
	log_info("debug-exit: guest wrote %#x, exit status %d", v,
	    (int)((v << 1) | 1));
	vm_request_exit(d->vm, VM_EVENT_POWEROFF, (int)((v << 1) | 1));
}

static int
debug_exit_create(struct vm *vm)
{
	struct debug_exit *d;
	int port = vm->cfg->debug_exit_port ? vm->cfg->debug_exit_port : 0xf4;
	int err;

	if (!vm->cfg->debug_exit)
		return 0;
	if (port < 0 || port > 0xffff)
		return -EINVAL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -ENOMEM;
	d->vm = vm;
	d->port = (uint16_t)port;
	/* One port; wider accesses land here by their first byte. */
	if ((err = bus_register(vm->pio, d->port, 1, debug_exit_io, d,
	    "debug-exit")) < 0)
		goto fail;
	if ((err = vm_device_register(vm, &debug_exit_ops, d,
	    "debug-exit")) < 0) {
		bus_unregister(vm->pio, d->port);
		goto fail;
	}
	return 0;
fail:
	free(d);
	return err;
}

static void
debug_exit_fini(void *state)
{
	struct debug_exit *d = state;

	bus_unregister(d->vm->pio, d->port);
	free(d);
}

/* No state: the section exists so a snapshot of such a VM works. */
static int
debug_exit_snapshot(void *state, struct snap *s)
{
	return snap_error(s);
}

const struct device_ops debug_exit_ops = {
	.name = "debug-exit",
	.create = debug_exit_create,
	.fini = debug_exit_fini,
	.snapshot = debug_exit_snapshot,
	.snapshot_version = 1,
};
