/*
 * An accelerator that runs nothing, for tests that need a VM's memory,
 * buses and devices but no CPU (loaders, ACPI, device models).
 */
#ifndef TV_TEST_NULL_ACCEL_H
#define TV_TEST_NULL_ACCEL_H

#include <stdlib.h>
#include <string.h>

#include "hv/vm.h"
#include "hv/vmconfig.h"

static int null_vm_init(struct vm *vm) { return 0; }
static void null_vm_fini(struct vm *vm) { }
static int null_map_mem(struct vm *vm, struct mem_region *r) { return 0; }
static int null_max_vcpus(struct vm *vm) { return VM_MAX_VCPUS; }
static int null_vcpu_init(struct vcpu *v) { return 0; }
static void null_vcpu_fini(struct vcpu *v) { }
static int null_state(struct vcpu *v, const struct cpu_state *st) { return 0; }

static const struct accel_ops null_accel_ops = {
	.name = "null",
	.kernel_irqchip = true,
	.vm_init = null_vm_init,
	.vm_fini = null_vm_fini,
	.map_mem = null_map_mem,
	.max_vcpus = null_max_vcpus,
	.vcpu_init = null_vcpu_init,
	.vcpu_fini = null_vcpu_fini,
	.set_state = null_state,
};

static inline struct vm *
null_vm(struct vm_config *cfg, uint64_t mem, int cpus)
{
	int err;

	vm_config_defaults(cfg);
	cfg->memory = mem;
	cfg->cpus = cpus;
	return vm_create(cfg, &null_accel_ops, &err);
}

#endif
