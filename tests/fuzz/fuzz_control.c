/*
 * libFuzzer target: control socket requests.  Whatever a client sends as
 * one line must come back as one well-formed reply (an object with "id"
 * and "ok", and "result" or an "error" with a code), whatever the VM's
 * state; commands run on a VM whose vCPUs never run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_vm_init(struct vm *vm) { return 0; }
static void fz_vm_fini(struct vm *vm) { }
static int fz_map_mem(struct vm *vm, struct mem_region *r) { return 0; }
static int fz_max_vcpus(struct vm *vm) { return VM_MAX_VCPUS; }
static int fz_vcpu_init(struct vcpu *v) { return 0; }
static void fz_vcpu_fini(struct vcpu *v) { }

static const struct accel_ops fz_accel = {
	.name = "fuzz",
	.kernel_irqchip = true,
	.vm_init = fz_vm_init,
	.vm_fini = fz_vm_fini,
	.map_mem = fz_map_mem,
	.max_vcpus = fz_max_vcpus,
	.vcpu_init = fz_vcpu_init,
	.vcpu_fini = fz_vcpu_fini,
};

static struct vm *fz_vm;
static struct control fz_ctl;

static void
fz_setup(void)
{
	static struct vm_config cfg;
	int err;

	vm_config_defaults(&cfg);
	cfg.memory = 16 << 20;
	cfg.cpus = 2;
	snprintf(cfg.serial, sizeof(cfg.serial), "none");
	if ((fz_vm = vm_create(&cfg, &fz_accel, &err)) == NULL)
		abort();
	control_init(&fz_ctl, fz_vm, "fuzz");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *r, *e;
	char *s;

	if (fz_vm == NULL)
		fz_setup();
	/* Each input starts from a running VM, whatever the last did. */
	fz_vm->state = size & 1 ? VM_PAUSED : VM_RUNNING;
	atomic_store(&fz_vm->exit_request, 0);
	for (int i = 0; i < fz_vm->nvcpus; i++)
		atomic_store(&fz_vm->vcpus[i]->requests, 0);
	vtimer_cancel(&fz_ctl.stop_timer);

	r = control_cmd_request(&fz_ctl, (const char *)data, size);
	if (r == NULL || !json_is_object(r) || !json_object_get(r, "id") ||
	    !json_is_boolean(json_object_get(r, "ok")))
		abort();
	e = json_object_get(r, "error");
	if (json_is_true(json_object_get(r, "ok")) ?
	    !json_is_object(json_object_get(r, "result")) :
	    !json_is_string(json_object_get(e, "code")))
		abort();
	if ((s = json_dumps(r, JSON_COMPACT)) == NULL || strchr(s, '\n'))
		abort();	/* a reply is one line */
	free(s);
	json_decref(r);
	return 0;
}
