/*
 * A VM built by hand for device tests (qtest style): buses, an event loop
 * and a recording accelerator whose irq_line/msi hooks remember what the
 * devices drove.  No vCPUs, no guest code.
 */
#ifndef TV_TEST_FAKE_VM_H
#define TV_TEST_FAKE_VM_H

#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "util/evloop.h"

#define FAKE_GSIS 24
#define FAKE_MSIS 64

struct fake_irqs {
	int level[FAKE_GSIS];
	int raises[FAKE_GSIS];	/* 0 -> 1 transitions seen */
	int calls[FAKE_GSIS];
	int nmsi;
	uint64_t msi_addr[FAKE_MSIS];
	uint32_t msi_data[FAKE_MSIS];
};

static struct fake_irqs fake_irqs;
static struct vm_config fake_cfg;

static int
fake_irq_line(struct vm *vm, unsigned gsi, int level)
{
	if (gsi >= FAKE_GSIS)
		return -1;
	if (level && !fake_irqs.level[gsi])
		fake_irqs.raises[gsi]++;
	fake_irqs.level[gsi] = level;
	fake_irqs.calls[gsi]++;
	return 0;
}

static int
fake_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	if (fake_irqs.nmsi < FAKE_MSIS) {
		fake_irqs.msi_addr[fake_irqs.nmsi] = addr;
		fake_irqs.msi_data[fake_irqs.nmsi] = data;
	}
	fake_irqs.nmsi++;
	return 0;
}

static const struct accel_ops fake_accel = {
	.name = "fake",
	.irq_line = fake_irq_line,
	.msi = fake_msi,
};

static inline struct vm *
fake_vm_new(uint64_t ram_size)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	memset(&fake_irqs, 0, sizeof(fake_irqs));
	vm_config_defaults(&fake_cfg);
	fake_cfg.memory = ram_size;
	vm->cfg = &fake_cfg;
	vm->accel = &fake_accel;
	vm->ram_size = ram_size;
	pthread_mutex_init(&vm->devlock, NULL);
	vm->pio = bus_new("pio");
	vm->mmio = bus_new("mmio");
	vm->loop = evloop_new();
	return vm;
}

static inline void
fake_vm_free(struct vm *vm)
{
	devices_destroy(vm);
	evloop_free(vm->loop);
	bus_free(vm->pio);
	bus_free(vm->mmio);
	free(vm);
}

/* The state of the first instance created by ops (after ops->create). */
static inline void *
fake_vm_device(struct vm *vm, const struct device_ops *ops)
{
	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].ops == ops)
			return vm->devices[i].state;
	return NULL;
}

static inline uint32_t
fake_in(struct vm *vm, uint16_t port, unsigned len)
{
	uint8_t d[4];

	bus_access(vm->pio, NULL, port, d, len, false);
	return (uint32_t)bus_get(d, len);
}

static inline void
fake_out(struct vm *vm, uint16_t port, unsigned len, uint32_t v)
{
	uint8_t d[4];

	bus_put(d, len, v);
	bus_access(vm->pio, NULL, port, d, len, true);
}

static inline uint64_t
fake_mmio_read(struct vm *vm, uint64_t addr, unsigned len)
{
	uint8_t d[8];

	bus_access(vm->mmio, NULL, addr, d, len, false);
	return bus_get(d, len);
}

static inline void
fake_mmio_write(struct vm *vm, uint64_t addr, unsigned len, uint64_t v)
{
	uint8_t d[8];

	bus_put(d, len, v);
	bus_access(vm->mmio, NULL, addr, d, len, true);
}

#endif
