/*
 * The datastore and the .vmx format: paired good/bad fixtures in
 * tests/fixtures/vmx (each bad one says on its first line which line
 * must be named and what the message must say), the writer that keeps
 * comments and order, VM names, and the --disk syntax.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmfs/vmfs.h"
#include "vmfs/vmfs_lock.h"
#include "vmfs/vmx.h"

static void
fixdir(char *out, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n;

	if (access("tests/fixtures/vmx", R_OK) == 0) {
		snprintf(out, len, "tests/fixtures/vmx");
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	cr_assert_gt(n, 0);
	exe[n] = '\0';
	snprintf(out, len, "%s/../../tests/fixtures/vmx", dirname(exe));
}

static int
load(const char *name, struct vm_config *c, char *err, size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	struct vmx_doc doc;
	int ret;

	fixdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((ret = vmx_load(&doc, path, err, errlen)) < 0)
		return ret;
	ret = vmx_to_config(&doc, "/vms/x", c, err, errlen);
	vmx_free(&doc);
	return ret;
}

Test(vmx, good_full)
{
	struct vm_config c;
	char e[512];

	cr_assert_eq(load("good-full.vmx", &c, e, sizeof(e)), 0, "%s", e);
	cr_assert_str_eq(c.name, "web01");
	cr_assert_eq(c.memory, 2048ull << 20);
	cr_assert_eq(c.cpus, 4);
	cr_assert_str_eq(c.accel, "kvm");
	cr_assert_str_eq(c.kernel, "/vms/x/vmlinuz");
	cr_assert_str_eq(c.initrd, "/boot/initrd.img");
	cr_assert_str_eq(c.append, "console=ttyS0 root=/dev/vda quiet msg=\"hi\" "
	    "path=C:\\x");
	cr_assert_eq(c.ndisks, 2);
	cr_assert_str_eq(c.disks[0].path, "/vms/x/web01.qcow2");
	cr_assert_str_eq(c.disks[0].format, "qcow2");
	cr_assert_str_eq(c.disks[0].serial, "WEB01-ROOT");
	cr_assert(!c.disks[0].readonly);
	cr_assert_str_eq(c.disks[1].path, "/srv/iso/data.raw");
	cr_assert(c.disks[1].readonly);
	cr_assert_eq(c.nnics, 2);
	cr_assert_str_eq(c.nics[0].portgroup, "VM-Network");
	cr_assert(c.nics[0].mac_set);
	cr_assert_eq(c.nics[0].mac[5], 0x56);
	cr_assert(!c.nics[1].mac_set);
	cr_assert_str_eq(c.vnc, "127.0.0.1:5");
	cr_assert_str_eq(c.serial, "stdio");
	cr_assert(c.no_reboot);
	cr_assert(c.debug_exit);
	cr_assert_eq(c.debug_exit_port, 0x501);
}

Test(vmx, good_others)
{
	struct vm_config c;
	char e[512];

	cr_assert_eq(load("good-minimal.vmx", &c, e, sizeof(e)), 0, "%s", e);
	cr_assert_str_eq(c.name, "tiny");
	cr_assert_eq(c.memory, 512ull << 20, "defaults kept");
	cr_assert_eq(load("good-vmware-case.vmx", &c, e, sizeof(e)), 0, "%s", e);
	cr_assert_str_eq(c.name, "legacy");
	cr_assert_eq(c.ndisks, 1);
	cr_assert(!c.no_reboot);
	cr_assert_eq(load("good-crlf.vmx", &c, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(c.memory, 64ull << 20);
}

/* The display is on unless the file says display = "none". */
Test(vmx, good_display)
{
	struct vm_config c;
	char e[512];

	cr_assert_eq(load("good-minimal.vmx", &c, e, sizeof(e)), 0, "%s", e);
	cr_assert_str_eq(c.display, "std");
	cr_assert_eq(load("good-display-none.vmx", &c, e, sizeof(e)), 0, "%s",
	    e);
	cr_assert_str_eq(c.display, "none");
}

/* Every bad fixture fails, naming file:line and the problem. */
Test(vmx, bad_fixtures)
{
	char dir[PATH_MAX], path[PATH_MAX + 300], want[600], e[1024], first[512];
	struct vm_config c;
	struct dirent *de;
	int n = 0, line;
	FILE *f;
	DIR *d;

	fixdir(dir, sizeof(dir));
	cr_assert_not_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "bad-", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		cr_assert_not_null(f = fopen(path, "r"));
		cr_assert_not_null(fgets(first, sizeof(first), f));
		fclose(f);
		first[strcspn(first, "\n")] = '\0';
		cr_assert_eq(sscanf(first, "# expect: %d:", &line), 1,
		    "%s: first line must be '# expect: LINE: text'", path);
		e[0] = '\0';
		cr_assert_eq(load(de->d_name, &c, e, sizeof(e)), -EINVAL,
		    "%s was accepted", de->d_name);
		if (line > 0)
			snprintf(want, sizeof(want), "%s:%d: ", de->d_name, line);
		else
			snprintf(want, sizeof(want), "%s: ", de->d_name);
		cr_assert_not_null(strstr(e, want), "%s: message '%s' does not "
		    "name '%s'", de->d_name, e, want);
		cr_assert_not_null(strstr(e, strchr(first + 10, ':') + 2),
		    "%s: message '%s' lacks '%s'", de->d_name, e,
		    strchr(first + 10, ':') + 2);
		n++;
	}
	closedir(d);
	cr_assert_geq(n, 15, "only %d bad fixtures found", n);
}

/* Setting keys rewrites their line only: comments, order, unknown
 * keys and spacing elsewhere survive. */
Test(vmx, writer_preserves)
{
	const char *in = "# top\nname = \"a\"   # the name\n\nx-tool = \"keep\"\n"
	    "memsize = \"128\"\n# tail\n";
	struct vmx_doc doc;
	char e[256], *out;

	cr_assert_eq(vmx_parse(&doc, "t.vmx", in, strlen(in), e, sizeof(e)), 0,
	    "%s", e);
	cr_assert_eq(vmx_set(&doc, "memsize", "4096"), 0);
	cr_assert_eq(vmx_set(&doc, "NAME", "b \"q\" \\"), 0);
	cr_assert_eq(vmx_set(&doc, "numvcpus", "2"), 0);
	cr_assert_eq(vmx_set(&doc, "x-tool", NULL), 0);
	out = vmx_format(&doc);
	cr_assert_str_eq(out, "# top\nname = \"b \\\"q\\\" \\\\\"   # the name\n\n"
	    "memsize = \"4096\"\n# tail\nnumvcpus = \"2\"\n");
	vmx_free(&doc);
	cr_assert_eq(vmx_parse(&doc, "t.vmx", out, strlen(out), e, sizeof(e)), 0,
	    "%s", e);
	cr_assert_str_eq(vmx_get(&doc, "name"), "b \"q\" \\");
	cr_assert_str_eq(vmx_get(&doc, "MemSize"), "4096");
	vmx_free(&doc);
	free(out);
}

Test(vmx, from_config_roundtrip)
{
	struct vm_config c, back;
	struct vmx_doc doc = { 0 };
	char e[256], *out;

	vm_config_defaults(&c);
	snprintf(c.name, sizeof(c.name), "rt");
	c.memory = 3ull << 30;
	c.cpus = 3;
	snprintf(c.append, sizeof(c.append), "a=\"b\"");
	c.ndisks = 1;
	snprintf(c.disks[0].path, sizeof(c.disks[0].path), "/d/rt.qcow2");
	snprintf(c.disks[0].format, sizeof(c.disks[0].format), "qcow2");
	c.disks[0].readonly = true;
	c.nnics = 1;
	snprintf(c.nics[0].portgroup, sizeof(c.nics[0].portgroup), "lan");
	c.nics[0].mac_set = true;
	memcpy(c.nics[0].mac, "\x52\x54\x00\xab\xcd\xef", 6);
	cr_assert_eq(vmx_from_config(&doc, &c), 0);
	out = vmx_format(&doc);
	vmx_free(&doc);
	cr_assert_eq(vmx_parse(&doc, "rt.vmx", out, strlen(out), e, sizeof(e)), 0);
	cr_assert_eq(vmx_to_config(&doc, NULL, &back, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(back.memory, c.memory);
	cr_assert_eq(back.cpus, 3);
	cr_assert_str_eq(back.append, c.append);
	cr_assert(back.disks[0].readonly);
	cr_assert_eq(memcmp(back.nics[0].mac, c.nics[0].mac, 6), 0);
	vmx_free(&doc);
	free(out);
}

Test(vmx, check_single_key)
{
	char e[256];

	cr_assert_eq(vmx_check("memsize", "1024", e, sizeof(e)), 0);
	cr_assert_eq(vmx_check("memsize", "-1", e, sizeof(e)), -EINVAL);
	cr_assert_eq(vmx_check("x-anything", "goes", e, sizeof(e)), 0);
	cr_assert_eq(vmx_check("bogus", "1", e, sizeof(e)), -EINVAL);
	cr_assert_not_null(strstr(e, "unknown key"), "%s", e);
}

Test(vmfs, names)
{
	cr_assert_eq(vmfs_name_valid("web-01_a.b"), 0);
	cr_assert_eq(vmfs_name_valid("with space"), 0);
	cr_assert_eq(vmfs_name_valid(""), -EINVAL);
	cr_assert_eq(vmfs_name_valid("."), -EINVAL);
	cr_assert_eq(vmfs_name_valid(".."), -EINVAL);
	cr_assert_eq(vmfs_name_valid("..."), -EINVAL);
	cr_assert_eq(vmfs_name_valid(".hidden"), -EINVAL);
	cr_assert_eq(vmfs_name_valid("a/b"), -EINVAL);
	cr_assert_eq(vmfs_name_valid("-rf"), -EINVAL);
	cr_assert_eq(vmfs_name_valid("tab\there"), -EINVAL);
	cr_assert_eq(vmfs_name_valid("del\x7f"), -EINVAL);
	cr_assert_eq(vmfs_name_valid(
	    "0123456789012345678901234567890123456789012345678901234567890123"),
	    -EINVAL);
}

Test(vmfs, datastore_default)
{
	char b[4096];

	setenv("TERMVISOR_DATASTORE", "/ds", 1);
	cr_assert_eq(vmfs_datastore_default(b, sizeof(b)), 0);
	cr_assert_str_eq(b, "/ds");
	unsetenv("TERMVISOR_DATASTORE");
	setenv("XDG_DATA_HOME", "/xdg", 1);
	cr_assert_eq(vmfs_datastore_default(b, sizeof(b)), 0);
	cr_assert_str_eq(b, "/xdg/termvisor");
	unsetenv("XDG_DATA_HOME");
	setenv("HOME", "/home/u", 1);
	cr_assert_eq(vmfs_datastore_default(b, sizeof(b)), 0);
	cr_assert_str_eq(b, "/home/u/.local/share/termvisor");
	cr_assert_eq(vmfs_vmx_path("/ds", "vm1", b, sizeof(b)), 0);
	cr_assert_str_eq(b, "/ds/vm1/vm1.vmx");
	cr_assert_eq(vmfs_vm_dir("/ds", "../x", b, sizeof(b)), -EINVAL);
}

Test(vmfs, disk_arg)
{
	struct vmcfg_disk d;
	char e[256];

	cr_assert_eq(vmfs_parse_disk_arg("a.img", &d, e, sizeof(e)), 0);
	cr_assert_str_eq(d.path, "a.img");
	cr_assert_str_eq(d.format, "");
	cr_assert(!d.readonly);
	cr_assert_eq(vmfs_parse_disk_arg("/x/b.qcow2,format=qcow2,readonly=on,"
	    "serial=S1", &d, e, sizeof(e)), 0, "%s", e);
	cr_assert_str_eq(d.format, "qcow2");
	cr_assert(d.readonly);
	cr_assert_str_eq(d.serial, "S1");
	cr_assert_eq(vmfs_parse_disk_arg("a,format=vmdk", &d, e, sizeof(e)),
	    -EINVAL);
	cr_assert_not_null(strstr(e, "format=vmdk"), "%s", e);
	cr_assert_eq(vmfs_parse_disk_arg("a,readonly", &d, e, sizeof(e)),
	    -EINVAL);
	cr_assert_eq(vmfs_parse_disk_arg(",format=raw", &d, e, sizeof(e)),
	    -EINVAL);
}

Test(vmfs, load_vm)
{
	char ds[] = "/tmp/tv-ds-XXXXXX", p[512];
	struct vm_config c;
	FILE *f;

	cr_assert_not_null(mkdtemp(ds));
	snprintf(p, sizeof(p), "%s/vm1", ds);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/vm1/vm1.vmx", ds);
	cr_assert_not_null(f = fopen(p, "w"));
	fprintf(f, "name = \"vm1\"\nmemsize = \"256\"\ndisk0.path = \"vm1.qcow2\"\n");
	fclose(f);
	cr_assert_eq(vmfs_load_vm(ds, "vm1", &c), 0);
	cr_assert_eq(c.memory, 256ull << 20);
	snprintf(p, sizeof(p), "%s/vm1/vm1.qcow2", ds);
	cr_assert_str_eq(c.disks[0].path, p);
	cr_assert_eq(vmfs_load_vm(ds, "nope", &c), -ENOENT);
	cr_assert_eq(vmfs_load_vm(ds, "../vm1", &c), -EINVAL);
	snprintf(p, sizeof(p), "rm -rf %s", ds);
	cr_assert_eq(system(p), 0);
}

Test(vmfs, start_vm_takes_the_lock)
{
	char ds[] = "/tmp/tv-ds-XXXXXX", p[512];
	struct vmfs_lock *l1, *l2;
	struct vm_config c;
	FILE *f;

	cr_assert_not_null(mkdtemp(ds));
	snprintf(p, sizeof(p), "%s/s1", ds);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/s1/s1.vmx", ds);
	cr_assert_not_null(f = fopen(p, "w"));
	fprintf(f, "name = \"s1\"\nnumvcpus = \"2\"\n");
	fclose(f);
	cr_assert_eq(vmfs_start_vm(ds, "s1", &c, &l1), 0);
	cr_assert_eq(c.cpus, 2);
	cr_assert_eq(vmfs_start_vm(ds, "s1", &c, &l2), -EBUSY);
	cr_assert_null(l2);
	vmfs_lock_release(l1);
	cr_assert_eq(vmfs_start_vm(ds, "s1", &c, &l2), 0);
	vmfs_lock_release(l2);
	cr_assert_eq(vmfs_start_vm(ds, "s2", &c, &l2), -ENOENT);
	snprintf(p, sizeof(p), "rm -rf %s", ds);
	cr_assert_eq(system(p), 0);
}
