#include <criterion/criterion.h>
#include <stdio.h>

#include "hv/vmconfig.h"
#include "run.h"

static int
parse(struct vm_config *c, char *err, int n, ...)
{
	char *argv[16] = { "run" };
	struct run_args a;
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		argv[i + 1] = va_arg(ap, char *);
	va_end(ap);
	return run_parse_args(n + 1, argv, c, &a, err, 256);
}

Test(run_opts, sizes)
{
	cr_assert_eq(run_parse_size("512M"), 512ull << 20);
	cr_assert_eq(run_parse_size("2G"), 2ull << 30);
	cr_assert_eq(run_parse_size("1024"), 1024ull << 20);
	cr_assert_eq(run_parse_size("64MiB"), 64ull << 20);
	cr_assert_eq(run_parse_size("1T"), 1ull << 40);
	cr_assert_eq(run_parse_size("0"), 0);
	cr_assert_eq(run_parse_size("-1G"), 0);
	cr_assert_eq(run_parse_size("12Q"), 0);
	cr_assert_eq(run_parse_size("G"), 0);
	cr_assert_eq(run_parse_size(""), 0);
	cr_assert_eq(run_parse_size("99999999999999999999G"), 0);
	cr_assert_eq(run_parse_size("17179869184G"), 0, "overflow");
}

Test(run_opts, full_command_line)
{
	struct vm_config c;
	char err[256];

	cr_assert_eq(parse(&c, err, 12, "--kernel", "/k", "--initrd", "/i",
	    "--append", "a b", "-m", "2G", "--cpus", "4", "--accel", "bt"), 0,
	    "%s", err);
	cr_assert_str_eq(c.kernel, "/k");
	cr_assert_str_eq(c.initrd, "/i");
	cr_assert_str_eq(c.append, "a b");
	cr_assert_eq(c.memory, 2ull << 30);
	cr_assert_eq(c.cpus, 4);
	cr_assert_str_eq(c.accel, "bt");
	cr_assert_str_eq(c.serial, "stdio");
	cr_assert_eq(parse(&c, err, 4, "-k", "/k", "--debug-exit=0x501",
	    "--no-reboot"), 0, "%s", err);
	cr_assert(c.debug_exit);
	cr_assert_eq(c.debug_exit_port, 0x501);
	cr_assert(c.no_reboot);
}

Test(run_opts, bad_values_name_the_option)
{
	struct vm_config c;
	char err[256];

	cr_assert_eq(parse(&c, err, 4, "-k", "/k", "--cpus", "0"), -1);
	cr_assert(strstr(err, "--cpus 0") != NULL, "%s", err);
	cr_assert_eq(parse(&c, err, 4, "-k", "/k", "--cpus", "4x"), -1);
	cr_assert_eq(parse(&c, err, 4, "-k", "/k", "--cpus", "100000"), -1);
	cr_assert_eq(parse(&c, err, 4, "-k", "/k", "--memory", "1M"), -1);
	cr_assert(strstr(err, "--memory 1M") != NULL, "%s", err);
	cr_assert_eq(parse(&c, err, 4, "-k", "/k", "--accel", "hvf"), -1);
	cr_assert(strstr(err, "--accel hvf") != NULL, "%s", err);
	cr_assert_eq(parse(&c, err, 3, "-k", "/k", "--bogus"), -1);
	cr_assert(strstr(err, "--bogus") != NULL, "%s", err);
	cr_assert_eq(parse(&c, err, 4, "-k", "/k", "vm1", "stray"), -1);
	cr_assert(strstr(err, "stray") != NULL, "%s", err);
	cr_assert_eq(parse(&c, err, 3, "-k", "/k", "bad/name"), -1);
	cr_assert_eq(parse(&c, err, 3, "-k", "/k", "--disk=x,format=vhd"), -1);
	cr_assert_eq(parse(&c, err, 1, "--kernel"), -1);
}

Test(run_opts, datastore_vm_and_overrides)
{
	struct vm_config c, vm;
	struct run_args a;
	char *argv[] = { "run", "--cpus", "2", "--disk", "/d.img,readonly=on",
	    "--datastore", "/ds", "web", NULL };
	char err[256];

	cr_assert_eq(run_parse_args(8, argv, &c, &a, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_str_eq(a.name, "web");
	cr_assert_str_eq(a.datastore, "/ds");
	cr_assert_eq(c.ndisks, 1);
	cr_assert(c.disks[0].readonly);
	vm_config_defaults(&vm);
	vm.memory = 1ull << 30;
	vm.cpus = 1;
	snprintf(vm.kernel, sizeof(vm.kernel), "/vmlinuz");
	cr_assert_eq(run_merge(&vm, &c, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(vm.cpus, 2, "--cpus overrides the config");
	cr_assert_eq(vm.memory, 1ull << 30, "unset options keep the config");
	cr_assert_str_eq(vm.kernel, "/vmlinuz");
	cr_assert_eq(vm.ndisks, 1);
	cr_assert_str_eq(vm.serial, "stdio");
	vm.kernel[0] = '\0';
	cr_assert_eq(run_merge(&vm, &c, &a, err, sizeof(err)), -1);
	cr_assert(strstr(err, "no kernel") != NULL, "%s", err);
}

/* --display: std by default, none leaves it out, it overrides a config. */
Test(run_opts, display)
{
	struct vm_config c, vm;
	struct run_args a;
	char *argv[] = { "run", "--display", "none", "web", NULL };
	char err[256];

	cr_assert_eq(parse(&c, err, 2, "-k", "/k"), 0, "%s", err);
	cr_assert_str_eq(c.display, "std");
	cr_assert_eq(parse(&c, err, 4, "-k", "/k", "--display", "vga"), -1);
	cr_assert(strstr(err, "--display vga") != NULL, "%s", err);
	cr_assert_eq(run_parse_args(4, argv, &c, &a, err, sizeof(err)), 0,
	    "%s", err);
	vm_config_defaults(&vm);
	snprintf(vm.kernel, sizeof(vm.kernel), "/vmlinuz");
	cr_assert_eq(run_merge(&vm, &c, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(vm.display, "none");
}

Test(run_opts, default_guest_needs_make_guest)
{
	struct vm_config c;
	char err[256];

	setenv("XDG_CACHE_HOME", "/nonexistent-cache", 1);
	cr_assert_eq(parse(&c, err, 0), -1);
	cr_assert(strstr(err, "make guest") != NULL, "%s", err);
}
