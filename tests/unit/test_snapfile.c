/*
 * Snapshot files on real VM objects (software CPU): a counting guest is
 * written to a file (RAM by a forked copy-on-write child, as a running
 * VM's snapshot is taken), a second VM maps its RAM from the file and
 * counts on from the saved value; damaged files are refused by name of
 * the damage, and a stream from another accelerator is refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bt/harness.h"
#include "hv/vmconfig.h"
#include "migrate/snap.h"
#include "migrate/snapfile.h"
#include "migrate/vmstate.h"

#define MEM		(16ull << 20)
#define CODE		0x200000ull

/* 1: inc rax; mov [0x5000], rax; pause; jmp 1b */
static const uint8_t count_loop[] = {
	0x48, 0xff, 0xc0, 0x48, 0x89, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00,
	0xf3, 0x90, 0xeb, 0xf2,
};

static char dir[] = "/tmp/tv-snapfile-XXXXXX";
static char path[64];

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.tvsnap", dir);
}

static void
teardown(void)
{
	unlink(path);
	rmdir(dir);
}

TestSuite(snapfile, .init = setup, .fini = teardown, .timeout = 60);

static struct vm *
new_vm(struct vm_config *cfg, const char *ram_file, uint64_t off)
{
	struct vm *vm;
	int err = 0;

	vm_config_defaults(cfg);
	cfg->memory = MEM;
	if (ram_file != NULL) {
		snprintf(cfg->ram_file, sizeof(cfg->ram_file), "%s", ram_file);
		cfg->ram_file_offset = off;
	}
	vm = vm_create(cfg, &bt_accel_ops, &err);
	cr_assert_not_null(vm, "vm_create: %d", err);
	return vm;
}

static uint64_t
rax(struct vm *vm)
{
	struct cpu_state st;

	cr_assert_eq(vm->accel->get_state(vm->vcpus[0], &st), 0);
	return st.gpr[R_RAX];
}

/* A counting guest saved to path, RAM written by a forked child. */
static uint64_t
take(struct vm_config *cfg)
{
	struct vm *vm = new_vm(cfg, NULL, 0);
	struct tvm t = { .vm = vm, .vcpu = vm->vcpus[0] };
	struct cpu_state st;
	uint64_t count, paused;
	bool resumed = false;
	char err[512];

	tvm_long_mode(&t, &st, CODE);
	tvm_put(&t, CODE, count_loop, sizeof(count_loop));
	memset(vm->ram + 8 * 4096, 0x5a, 4096);	/* a page of data */
	cr_assert_eq(vm->accel->set_state(vm->vcpus[0], &st), 0);
	cr_assert_eq(tvm_run(&t, 50), VM_EXIT_INTR);
	count = rax(vm);
	cr_assert_gt(count, 0);
	pthread_mutex_lock(&vm->devlock);
	cr_assert_eq(vm_pause(vm, 1000), 0);
	cr_assert_eq(snapfile_write(vm, path, "s1", true, NULL, &resumed,
	    &paused, err, sizeof(err)), 0, "%s", err);
	pthread_mutex_unlock(&vm->devlock);
	cr_assert(resumed, "the guest ran again once its RAM was forked off");
	cr_assert_eq(vm->pause_depth, 0);
	vm_destroy(vm);
	return count;
}

Test(snapfile, restore_maps_ram_and_counts_on)
{
	struct vm_config c1, c2;
	struct snapfile_info info;
	uint8_t *st;
	char err[512];
	struct stat sb;
	uint64_t count = take(&c1);
	struct vm *vm;
	struct tvm t;

	cr_assert_eq(snapfile_open(path, &info, &st, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_str_eq(info.name, "s1");
	cr_assert_str_eq(info.accel, "bt");
	cr_assert_eq(info.ram_size, MEM);
	cr_assert_eq(info.ram_offset % SNAPFILE_RAM_ALIGN, 0);
	cr_assert_lt(info.ram_pages, MEM / 4096 / 4, "zero pages are holes");
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_lt((uint64_t)sb.st_blocks * 512, MEM / 2, "sparse file");
	cr_assert_eq(snapfile_check_ram(path, &info, err, sizeof(err)), 0,
	    "%s", err);
	vm = new_vm(&c2, path, info.ram_offset);
	cr_assert_eq(vm->ram[8 * 4096 + 100], 0x5a, "RAM comes from the file");
	cr_assert_eq(snapfile_load(vm, st, &info, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(rax(vm), count);
	t = (struct tvm){ .vm = vm, .vcpu = vm->vcpus[0] };
	cr_assert_eq(tvm_run(&t, 30), VM_EXIT_INTR);
	cr_assert_gt(rax(vm), count);
	/* Copy-on-write: the guest's writes never reach the file. */
	memset(vm->ram + 8 * 4096, 0, 4096);
	cr_assert_eq(snapfile_check_ram(path, &info, err, sizeof(err)), 0,
	    "%s", err);
	free(st);
	vm_destroy(vm);
}

/* Flip one byte of the file at off and expect refusal naming what. */
static void
damaged(off_t off, const char *what)
{
	struct snapfile_info info;
	uint8_t *st = NULL, b;
	char err[512] = "";
	int fd = open(path, O_RDWR);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &b, 1, off), 1);
	b ^= 0x40;
	cr_assert_eq(pwrite(fd, &b, 1, off), 1);
	cr_assert_neq(snapfile_open(path, &info, &st, err, sizeof(err)), 0,
	    "byte %lld: loaded", (long long)off);
	cr_assert(strstr(err, what) != NULL, "byte %lld: %s", (long long)off,
	    err);
	cr_assert_null(st);
	b ^= 0x40;
	cr_assert_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

Test(snapfile, damage_is_refused_with_its_name)
{
	struct vm_config c;
	struct snapfile_info info;
	uint8_t *st;
	char err[512];
	int fd;

	take(&c);
	damaged(0, "magic");
	damaged(9, "version");
	damaged(20, "header is corrupt");
	damaged(4096 + 50, "state is corrupt");
	cr_assert_eq(snapfile_open(path, &info, &st, err, sizeof(err)), 0);
	free(st);
	/* A page of RAM changed: found by the memory check. */
	fd = open(path, O_RDWR);
	cr_assert_eq(pwrite(fd, "x", 1, (off_t)info.ram_offset + 12345), 1);
	close(fd);
	cr_assert_eq(snapfile_check_ram(path, &info, err, sizeof(err)),
	    -EBADMSG);
	cr_assert(strstr(err, "memory is corrupt") != NULL, "%s", err);
	cr_assert_eq(truncate(path, (off_t)info.ram_offset + 4096), 0);
	cr_assert_neq(snapfile_open(path, &info, &st, err, sizeof(err)), 0);
	cr_assert(strstr(err, "truncated") != NULL, "%s", err);
	cr_assert_eq(truncate(path, 100), 0);
	cr_assert_neq(snapfile_open(path, &info, &st, err, sizeof(err)), 0);
	cr_assert(strstr(err, "truncated") != NULL, "%s", err);
}

/* A bt guest cannot go to KVM: the CPU features it was given (this
 * host's KVM may lack some) or, failing that, the interrupt controllers
 * (not converted between KVM's in-kernel ones and the software CPU's)
 * refuse it, with a message and nothing run. */
Test(snapfile, other_accelerator_is_refused)
{
	struct vm_config c1, c2;
	struct snapfile_info info;
	struct vm *vm;
	uint8_t *st;
	char err[512];
	int e = 0;

	if (access("/dev/kvm", R_OK | W_OK) != 0)
		cr_skip_test("no /dev/kvm");
	take(&c1);
	cr_assert_eq(snapfile_open(path, &info, &st, err, sizeof(err)), 0);
	vm_config_defaults(&c2);
	c2.memory = MEM;
	snprintf(c2.ram_file, sizeof(c2.ram_file), "%s", path);
	c2.ram_file_offset = info.ram_offset;
	vm = vm_create(&c2, &kvm_accel_ops, &e);
	cr_assert_not_null(vm, "KVM: %d", e);
	cr_assert_neq(snapfile_load(vm, st, &info, err, sizeof(err)), 0);
	/* Refused for what the KVM here lacks first, else for the
	 * accelerator itself: either way naming it. */
	cr_assert(strstr(err, "kvm") != NULL, "%s", err);
	cr_assert_neq(atomic_load(&vm->exit_request), 0, "nothing may run");
	free(st);
	vm_destroy(vm);
}
