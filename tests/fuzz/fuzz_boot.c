/*
 * The kernel loaders on hostile kernel files: the bzImage header and
 * setup code placement, the host-side unpacking of a bzImage's payload
 * (its decompressors and the ELF inside), PVH ELF notes and program
 * headers, multiboot headers and their address fields.  The input is the
 * kernel file; a small initrd and a command line go with it.  A loader
 * may refuse anything, but must say why, and never write outside guest
 * memory, read outside the file or crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv/accel.h"
#include "hv/boot.h"
#include "hv/cpu_state.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm_config cfg;
static struct vm *vm;
static int kfd = -1;

static void
fuzz_setup(void)
{
	static const char rd[4096] = "an initrd";
	int err, rfd;

	vm_config_defaults(&cfg);
	cfg.memory = 32ull << 20;
	cfg.cpus = 1;
	vm = vm_create(&cfg, &bt_accel_ops, &err);
	kfd = memfd_create("fuzz-kernel", 0);
	rfd = memfd_create("fuzz-initrd", 0);
	if (vm == NULL || kfd < 0 || rfd < 0 ||
	    write(rfd, rd, sizeof(rd)) != (ssize_t)sizeof(rd))
		abort();
	snprintf(cfg.kernel, sizeof(cfg.kernel), "/proc/self/fd/%d", kfd);
	snprintf(cfg.initrd, sizeof(cfg.initrd), "/proc/self/fd/%d", rfd);
	snprintf(cfg.append, sizeof(cfg.append), "console=ttyS0 panic=-1");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpu_state bsp;
	char err[512];
	int r;

	if (vm == NULL)
		fuzz_setup();
	if (ftruncate(kfd, 0) < 0 || pwrite(kfd, data, size, 0) !=
	    (ssize_t)size)
		abort();
	memset(&bsp, 0, sizeof(bsp));
	err[0] = '\0';
	r = boot_load(vm, &cfg, &bsp, err, sizeof(err));
	if (r < 0 && err[0] == '\0')
		abort();	/* every refusal says why */
	return 0;
}
