/*
 * `termvisor vm` and `termvisor disk` run against a private datastore
 * (tmux regress style): exit codes, what they print, what they leave
 * on disk.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit/scratch.h"
#include "vmfs/vmfs.h"
#include "vmfs/vmfs_lock.h"

static char dir[256], ds[300];
static char out[65536];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tv-cli-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(ds, sizeof(ds), "%s/ds", dir);
	setenv("TERMVISOR_DATASTORE", ds, 1);
}

static void
teardown(void)
{
	scratch_remove(dir);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

/* Run fn on a space-separated command line; stdout and stderr in out. */
static int __attribute__((format(printf, 2, 3)))
run(int (*fn)(int, char **), const char *fmt, ...)
{
	char line[4096], *argv[64], *save = NULL, *tok, path[320];
	int argc = 0, ret, fd, o1, o2;
	ssize_t n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (tok = strtok_r(line, " ", &save); tok && argc < 63;
	    tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	snprintf(path, sizeof(path), "%s/out", dir);
	fflush(stdout);
	fflush(stderr);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	o1 = dup(1);
	o2 = dup(2);
	dup2(fd, 1);
	dup2(fd, 2);
	ret = fn(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(o1, 1);
	dup2(o2, 2);
	close(o1);
	close(o2);
	n = pread(fd, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	return ret;
}

static void
slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	cr_assert_not_null(f, "%s", path);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

Test(cli, create_show_list)
{
	char img[400];

	snprintf(img, sizeof(img), "%s/d.qcow2", dir);
	cr_assert_eq(run(vmfs_cli_disk, "create %s 64M", img), 0, "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "create web --memory 1G --cpus 2 --disk "
	    "%s,readonly=on --nic lan,mac=52:54:00:00:00:01 --append "
	    "console=ttyS0", img), 0, "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "show web"), 0, "%s", out);
	cr_assert_not_null(strstr(out, "memory:   1 GiB"), "%s", out);
	cr_assert_not_null(strstr(out, "cpus:     2"), "%s", out);
	cr_assert_not_null(strstr(out, "(qcow2, read-only)"), "%s", out);
	cr_assert_not_null(strstr(out, "mac 52:54:00:00:00:01"), "%s", out);
	cr_assert_not_null(strstr(out, "state:    stopped"), "%s", out);
	cr_assert_not_null(strstr(out, "rng:      on"), "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "set web rng=off"), 0, "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "show web"), 0, "%s", out);
	cr_assert_not_null(strstr(out, "rng:      off"), "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "create db"), 0, "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "list"), 0, "%s", out);
	cr_assert(strstr(out, "db") && strstr(out, "web") &&
	    strstr(out, "db") < strstr(out, "web"), "%s", out);
}

Test(cli, create_refusals)
{
	cr_assert_eq(run(vmfs_cli_vm, "create a"), 0, "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "create a"), 1);
	cr_assert_not_null(strstr(out, "already exists"), "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "create ../evil"), 2);
	cr_assert_eq(run(vmfs_cli_vm, "create .hidden"), 2);
	cr_assert_eq(run(vmfs_cli_vm, "create b --memory lots"), 2);
	cr_assert_not_null(strstr(out, "--memory"), "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "create b --disk /no/such.img"), 2);
	cr_assert_eq(run(vmfs_cli_vm, "create b --cpus 0"), 2);
	cr_assert_eq(run(vmfs_cli_vm, "create"), 2);
	cr_assert_eq(run(vmfs_cli_vm, "frobnicate"), 2);
	cr_assert_eq(run(vmfs_cli_vm, "show nope"), 1);
	cr_assert_not_null(strstr(out, "no VM named 'nope'"), "%s", out);
}

Test(cli, set_keeps_comments)
{
	char path[400], text[8192];
	FILE *f;

	cr_assert_eq(run(vmfs_cli_vm, "create s"), 0, "%s", out);
	snprintf(path, sizeof(path), "%s/s/s.vmx", ds);
	cr_assert_not_null(f = fopen(path, "a"));
	fprintf(f, "# my note\nx-owner = \"bob\"\n");
	fclose(f);
	cr_assert_eq(run(vmfs_cli_vm, "set s memsize=2048 numvcpus=3"), 0, "%s",
	    out);
	slurp(path, text, sizeof(text));
	cr_assert_not_null(strstr(text, "memsize = \"2048\""), "%s", text);
	cr_assert_not_null(strstr(text, "# my note\nx-owner = \"bob\"\n"), "%s",
	    text);
	cr_assert_eq(run(vmfs_cli_vm, "set s bogus=1"), 2);
	cr_assert_eq(run(vmfs_cli_vm, "set s memsize=many"), 2);
	cr_assert_not_null(strstr(out, "expected a number of MiB"), "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "set s disk1.path=x.img"), 2);
	cr_assert_not_null(strstr(out, "disk0"), "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "set s name=t"), 2);
	cr_assert_eq(run(vmfs_cli_vm, "set s x-owner="), 0);
	slurp(path, text, sizeof(text));
	cr_assert_null(strstr(text, "x-owner"), "%s", text);
	cr_assert_not_null(strstr(text, "memsize = \"2048\""), "unchanged by "
	    "refused sets: %s", text);
}

Test(cli, rm_refused_while_locked)
{
	struct vmfs_lock *l;
	char vmdir[400], e[512];
	struct stat st;

	cr_assert_eq(run(vmfs_cli_vm, "create r"), 0, "%s", out);
	snprintf(vmdir, sizeof(vmdir), "%s/r", ds);
	cr_assert_eq(vmfs_lock_take(vmdir, NULL, &l, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(run(vmfs_cli_vm, "rm r"), 1);
	cr_assert_not_null(strstr(out, "locked by pid"), "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "list"), 0);
	cr_assert_not_null(strstr(out, "running"), "%s", out);
	cr_assert_eq(stat(vmdir, &st), 0);
	vmfs_lock_release(l);
	cr_assert_eq(run(vmfs_cli_vm, "rm r"), 0, "%s", out);
	cr_assert_eq(stat(vmdir, &st), -1, "directory left behind");
	cr_assert_eq(run(vmfs_cli_vm, "rm r"), 1);
}

Test(cli, datastore_option)
{
	char other[400], path[500];
	struct stat st;

	snprintf(other, sizeof(other), "%s/other", dir);
	cr_assert_eq(run(vmfs_cli_vm, "--datastore %s create o", other), 0, "%s",
	    out);
	cr_assert_eq(run(vmfs_cli_vm, "list --datastore=%s", other), 0);
	cr_assert_not_null(strstr(out, "\no "), "%s", out);
	snprintf(path, sizeof(path), "%s/o/o.vmx", other);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(run(vmfs_cli_vm, "show o"), 1, "found in the default");
}

Test(cli, help)
{
	cr_assert_eq(run(vmfs_cli_vm, "--help"), 0);
	cr_assert_not_null(strstr(out, "vm create NAME"));
	cr_assert_eq(run(vmfs_cli_vm, "create --help"), 0);
	cr_assert_eq(run(vmfs_cli_disk, "--help"), 0);
	cr_assert_not_null(strstr(out, "disk snapshot FILE NEW"));
	cr_assert_eq(run(vmfs_cli_disk, "info"), 2);
}

Test(cli, disk_commands)
{
	char base[400], over[400], raw[400], cmd[1024];

	snprintf(base, sizeof(base), "%s/base.qcow2", dir);
	snprintf(over, sizeof(over), "%s/over.qcow2", dir);
	snprintf(raw, sizeof(raw), "%s/r.raw", dir);
	cr_assert_eq(run(vmfs_cli_disk, "create %s 10M --cluster-size 4K", base),
	    0, "%s", out);
	cr_assert_eq(run(vmfs_cli_disk, "info %s", base), 0, "%s", out);
	cr_assert_not_null(strstr(out, "virtual size: 10 MiB (10485760 bytes)"),
	    "%s", out);
	cr_assert_not_null(strstr(out, "cluster size: 4096"), "%s", out);
	cr_assert_eq(run(vmfs_cli_disk, "check %s", base), 0, "%s", out);
	cr_assert_not_null(strstr(out, "No errors"), "%s", out);
	cr_assert_eq(run(vmfs_cli_disk, "check --repair %s", base), 0, "%s",
	    out);
	snprintf(cmd, sizeof(cmd), "qemu-io -c 'write -P 3 0 1M' %s >/dev/null",
	    base);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(run(vmfs_cli_disk, "snapshot %s %s", base, over), 0, "%s",
	    out);
	cr_assert_eq(run(vmfs_cli_disk, "info %s", over), 0, "%s", out);
	cr_assert_not_null(strstr(out, "backing file: base.qcow2 (format "
	    "qcow2)"), "%s", out);
	cr_assert_not_null(strstr(out, "image: "), "%s", out);
	snprintf(cmd, sizeof(cmd), "qemu-img check -q %s && qemu-io -c "
	    "'read -P 3 0 1M' %s | grep -q 'read 1048576'", over, over);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(run(vmfs_cli_disk, "create %s 1M --format raw", raw), 0);
	cr_assert_eq(run(vmfs_cli_disk, "check %s", raw), 0);
	cr_assert_eq(run(vmfs_cli_disk, "create %s 1M", raw), 1, "overwrote");
	cr_assert_eq(run(vmfs_cli_disk, "create %s/x 1Q", dir), 2);
	cr_assert_eq(run(vmfs_cli_disk, "snapshot /no/such %s/y", dir), 1);
}

Test(cli, create_with_new_disks)
{
	char path[600], cmd[2400];

	cr_assert_eq(run(vmfs_cli_vm, "create nd --new-disk 1G --memory 256 "
	    "--new-disk 64M"), 0, "%s", out);
	snprintf(path, sizeof(path), "%s/nd/nd.vmx", ds);
	snprintf(cmd, sizeof(cmd), "grep -q 'disk0.path = \"nd-disk0.qcow2\"' %s "
	    "&& grep -q 'disk1.format = \"qcow2\"' %s && qemu-img check -q "
	    "%s/nd/nd-disk0.qcow2 && qemu-img info %s/nd/nd-disk1.qcow2 | "
	    "grep -q 'virtual size: 64 MiB'", path, path, ds, ds);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(run(vmfs_cli_vm, "show nd"), 0);
	snprintf(path, sizeof(path), "%s/nd/nd-disk0.qcow2 (qcow2)", ds);
	cr_assert_not_null(strstr(out, path), "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "rm nd"), 0, "%s", out);
	cr_assert_eq(run(vmfs_cli_vm, "create nd2 --new-disk 0"), 2);
}
