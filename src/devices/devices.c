/*
 * The device table, listed by hand, and the loops over device instances.
 */
#include "devices/device.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices/acpi_pm.h"
#include "devices/debug_exit.h"
#include "devices/fb.h"
#include "devices/i8042.h"
#include "devices/irqchip.h"
#include "devices/mc146818.h"
#include "devices/ns16550.h"
#include "devices/pci.h"
#include "devices/pvpanic.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_input.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/log.h"

/* Each chip's file exports its ops; list them here in creation order. */
const struct device_ops *const device_table[] = {
	&irqchip_device,	/* first: others may raise lines at creation */
	&ns16550_ops,		/* COM1: the console */
	&mc146818_ops,
	&i8042_ops,
	&acpi_pm_ops,
	&debug_exit_ops,
	&pvpanic_ops,		/* guest panics: port 0x505, DSDT QEMU0001 */
	&pci_host_ops,		/* before any PCI device */
	&virtio_blk_ops,	/* one per --disk */
	&virtio_input_ops,	/* the VNC pointer, when --vnc */
	&virtio_net_ops,	/* one per --nic */
	&display_ops,		/* bochs-display + VGA text, unless --display none */
	&virtio_rng_ops,	/* unless --rng off; last, so the others keep
				 * their PCI slots */
	NULL	/* sentinel: keep last */
};
const int device_table_len =
    sizeof(device_table) / sizeof(device_table[0]) - 1;

/*
 * No firmware runs before a direct kernel boot: place every PCI BAR as
 * firmware would, once all functions exist (and again after a reset,
 * which clears them).
 */
static int
devices_place_bars(struct vm *vm)
{
	int err;

	if (devices_find(vm, &pci_host_ops) == NULL)
		return 0;
	if ((err = pci_assign_bars(vm)) < 0)
		log_warnx("PCI: the devices' BARs do not fit the MMIO window");
	return err;
}

int
devices_create(struct vm *vm)
{
	for (int i = 0; i < device_table_len; i++) {
		const struct device_ops *d = device_table[i];
		int err;

		if ((d->flags & DEV_SOFT_IRQCHIP) && vm->accel != NULL &&
		    vm->accel->kernel_irqchip)
			continue;
		if (d->create == NULL)
			continue;
		err = d->create(vm);
		if (err < 0) {
			log_warnx("device %s: %s", d->name, strerror(-err));
			return err;
		}
	}
	return devices_place_bars(vm);
}

void
devices_destroy(struct vm *vm)
{
	for (int i = vm->ndevices - 1; i >= 0; i--) {
		struct device_inst *d = &vm->devices[i];

		if (d->ops->fini != NULL)
			d->ops->fini(d->state);
	}
	vm->ndevices = 0;
}

void
devices_reset(struct vm *vm)
{
	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].ops->reset != NULL)
			vm->devices[i].ops->reset(vm->devices[i].state);
	devices_place_bars(vm);
}

void
devices_pause(struct vm *vm)
{
	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].ops->pause != NULL)
			vm->devices[i].ops->pause(vm->devices[i].state);
}

void
devices_resume(struct vm *vm)
{
	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].ops->resume != NULL)
			vm->devices[i].ops->resume(vm->devices[i].state);
}

void *
devices_find(struct vm *vm, const struct device_ops *ops)
{
	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].ops == ops)
			return vm->devices[i].state;
	return NULL;
}

int
devices_snapshot(struct vm *vm, struct snap *s)
{
	return devices_snapshot_n(vm, s, vm->ndevices);
}

int
devices_snapshot_n(struct vm *vm, struct snap *s, int n)
{
	for (int i = 0; i < n && i < vm->ndevices; i++) {
		struct device_inst *d = &vm->devices[i];

		if (d->ops->snapshot == NULL) {
			snap_fail(s, -ENOTSUP, "device %s cannot be "
			    "snapshotted", d->name);
			return snap_error(s);
		}
		if (snap_section_begin(s, d->name, d->ops->snapshot_version))
			return snap_error(s);
		d->ops->snapshot(d->state, s);
		if (snap_section_end(s))
			return snap_error(s);
	}
	return snap_error(s);
}

int
vm_device_register(struct vm *vm, const struct device_ops *ops, void *state,
    const char *name)
{
	struct device_inst *d;

	if (vm->ndevices >= VM_MAX_DEVICES)
		return -ENOSPC;
	for (int i = 0; i < vm->ndevices; i++)
		if (strcmp(vm->devices[i].name, name) == 0)
			return -EEXIST;
	d = &vm->devices[vm->ndevices++];
	d->ops = ops;
	d->state = state;
	snprintf(d->name, sizeof(d->name), "%s", name);
	return 0;
}
