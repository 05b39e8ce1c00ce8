#include <criterion/criterion.h>

#include "hv/vmconfig.h"
#include "run.h"

static int
parse(struct vm_config *c, char *err, int n, ...)
{
	char *argv[16] = { "run" };
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		argv[i + 1] = va_arg(ap, char *);
	va_end(ap);
	return run_parse_args(n + 1, argv, c, err, 256);
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
	cr_assert_eq(parse(&c, err, 3, "-k", "/k", "stray"), -1);
	cr_assert_eq(parse(&c, err, 1, "--kernel"), -1);
}

Test(run_opts, default_guest_needs_make_guest)
{
	struct vm_config c;
	char err[256];

	setenv("XDG_CACHE_HOME", "/nonexistent-cache", 1);
	cr_assert_eq(parse(&c, err, 0), -1);
	cr_assert(strstr(err, "make guest") != NULL, "%s", err);
}
