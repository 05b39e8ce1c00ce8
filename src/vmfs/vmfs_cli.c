/*
 * `termvisor vm ...` and `termvisor disk ...`: the scriptable side of
 * the datastore.  Each subcommand parses its options with getopt_long
 * (argv[0] is the subcommand word), does one thing, and exits 0 (done),
 * 1 (it failed: the message says why) or 2 (bad usage or input).
 */
#include "vmfs/vmfs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/control_client.h"
#include "devices/virtio_net.h"
#include "util/log.h"
#include "vmfs/blkdev.h"
#include "vmfs/qcow2.h"
#include "vmfs/raw.h"
#include "vmfs/vmfs_lock.h"
#include "vmfs/vmx.h"

#define VMFS_CLI_OK	0
#define VMFS_CLI_FAIL	1
#define VMFS_CLI_USAGE	2

static const char vmfs_cli_vm_usage[] =
    "usage: termvisor vm [--datastore DIR] COMMAND ...\n"
    "  vm create NAME [--memory SIZE] [--cpus N] [--kernel FILE]\n"
    "                 [--initrd FILE] [--append CMDLINE] [--accel kvm|bt|auto]\n"
    "                 [--disk FILE[,format=raw|qcow2][,readonly=on]]...\n"
    "                 [--new-disk SIZE]...  (a new qcow2 in the VM's directory)\n"
    "                 [--nic PORTGROUP[,mac=XX:XX:XX:XX:XX:XX][,queues=N]]...\n"
    "                 [--vnc ADDR]  (a NIC without mac= gets a fixed random one)\n"
    "  vm list\n"
    "  vm show NAME\n"
    "  vm set NAME KEY=VALUE...   (KEY= removes the key)\n"
    "  vm rm NAME                 (refused while the VM runs)\n"
    "  vm nic-link NAME N up|down set a running VM's NIC N link up or down\n"
    "Running VMs (termvisor vm status --help for more):\n"
    "  vm start NAME   run it detached, its output to NAME.log\n"
    "  vm console NAME its serial console (Ctrl-] detaches)\n"
    "  vm status|stats|pause|resume|stop|reset NAME\n"
    "  vm stats --watch NAME  every second, with rates, until Ctrl-C\n"
    "  vm screenshot NAME FILE.png  what its display shows, as PNG\n"
    "The datastore is --datastore DIR, else $TERMVISOR_DATASTORE, else\n"
    "$XDG_DATA_HOME/termvisor, else ~/.local/share/termvisor.\n"
    "See termvisor.vmx(5) for the keys.\n";

static const char vmfs_cli_disk_usage[] =
    "usage: termvisor disk COMMAND ...\n"
    "  disk create FILE SIZE [--format qcow2|raw] [--backing FILE]\n"
    "                        [--backing-format raw|qcow2] [--cluster-size N]\n"
    "  disk info FILE\n"
    "  disk check [--repair] FILE (--repair: reclaim leaked clusters)\n"
    "  disk snapshot FILE NEW     (NEW: a qcow2 overlay backed by FILE)\n"
    "SIZE takes K, M, G or T (powers of 1024); with --backing it may be 0\n"
    "for the backing file's size.\n";

/* "512", "512M", "2G", "1.5G" -> bytes; unit multiplies suffix-less. */
static int
vmfs_cli_size(const char *s, uint64_t unit, uint64_t *out)
{
	char *end;
	double v;
	uint64_t mul = unit;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 'K': mul = 1ull << 10; end++; break;
	case 'M': mul = 1ull << 20; end++; break;
	case 'G': mul = 1ull << 30; end++; break;
	case 'T': mul = 1ull << 40; end++; break;
	case '\0': break;
	default: return -EINVAL;
	}
	if (strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0)
		end += strlen(end);
	if (*end != '\0' || v * (double)mul >= 18e18)
		return -EINVAL;
	*out = (uint64_t)(v * (double)mul);
	return 0;
}

static void
vmfs_cli_human(uint64_t n, char *buf, size_t len)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	int i = 0;

	while (v >= 1024 && i < 5) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.3g %s" : "%.0f %s", v, u[i]);
}

/* Remove --datastore DIR / --datastore=DIR from argv; 0 or -EINVAL. */
static int
vmfs_cli_take_datastore(int *argc, char **argv, char *ds, size_t len)
{
	int i, j, skip;

	ds[0] = '\0';
	for (i = 0; i < *argc;) {
		skip = 0;
		if (strcmp(argv[i], "--datastore") == 0) {
			if (i + 1 >= *argc)
				return -EINVAL;
			snprintf(ds, len, "%s", argv[i + 1]);
			skip = 2;
		} else if (strncmp(argv[i], "--datastore=", 12) == 0) {
			snprintf(ds, len, "%s", argv[i] + 12);
			skip = 1;
		}
		if (skip == 0) {
			i++;
			continue;
		}
		for (j = i; j + skip <= *argc; j++)
			argv[j] = argv[j + skip];
		*argc -= skip;
	}
	if (ds[0] == '\0' && vmfs_datastore_default(ds, len) < 0)
		return -ENOENT;
	return 0;
}

static bool
vmfs_cli_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

/* --- vm create --- */

/* A file the VM will use, as an absolute path; it must exist. */
static int
vmfs_cli_abs(const char *what, const char *in, char *out, size_t len)
{
	char real[PATH_MAX];

	if (realpath(in, real) == NULL) {
		log_warn("%s %s", what, in);
		return -errno;
	}
	if (strlen(real) >= len)
		return -ENAMETOOLONG;
	snprintf(out, len, "%s", real);
	return 0;
}

/* A NIC gets its MAC once, here, and keeps it in the .vmx: the guest
 * sees the same address at every start. */
static int
vmfs_cli_nic(const char *arg, struct vmcfg_nic *n)
{
	char err[512];

	if (virtio_net_parse_arg(arg, n, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return -EINVAL;
	}
	if (!n->mac_set) {
		virtio_net_random_mac(n->mac);
		n->mac_set = true;
	}
	return 0;
}

/* Record the disk's format now, so a guest that writes a qcow2 header
 * into a raw disk cannot turn it into a qcow2 on the next start. */
static int
vmfs_cli_disk_opt(struct vm_config *c, const char *arg)
{
	struct vmcfg_disk *d;
	char err[512];

	if (c->ndisks >= VMCFG_MAX_DISKS) {
		log_warnx("at most %d disks", VMCFG_MAX_DISKS);
		return -EINVAL;
	}
	d = &c->disks[c->ndisks];
	if (vmfs_parse_disk_arg(arg, d, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return -EINVAL;
	}
	if (vmfs_cli_abs("disk", d->path, d->path, sizeof(d->path)) < 0)
		return -EINVAL;
	if (d->format[0] == '\0' &&
	    blkdev_probe(d->path, d->format, sizeof(d->format)) < 0)
		return -EINVAL;
	c->ndisks++;
	return 0;
}

/* Disks `vm create --new-disk SIZE` makes in the VM's directory. */
struct vmfs_cli_new {
	int n;
	int idx[VMCFG_MAX_DISKS];
	uint64_t size[VMCFG_MAX_DISKS];
};

static int
vmfs_cli_new_disk(struct vm_config *c, struct vmfs_cli_new *nd,
    const char *arg)
{
	uint64_t size;

	if (c->ndisks >= VMCFG_MAX_DISKS || vmfs_cli_size(arg, 1, &size) < 0 ||
	    size == 0) {
		log_warnx("--new-disk: expected a size like 10G (at most %d "
		    "disks)", VMCFG_MAX_DISKS);
		return -EINVAL;
	}
	nd->idx[nd->n] = c->ndisks;
	nd->size[nd->n++] = size;
	memset(&c->disks[c->ndisks], 0, sizeof(c->disks[0]));
	/* its path once the name is known: vmfs_cli_make_disks */
	snprintf(c->disks[c->ndisks].format, sizeof(c->disks[0].format),
	    "qcow2");
	c->ndisks++;
	return 0;
}

static int
vmfs_cli_create_opts(int argc, char **argv, struct vm_config *c,
    struct vmfs_cli_new *nd)
{
	static const struct option opts[] = {
		{ "memory", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "append", required_argument, NULL, 'a' },
		{ "accel", required_argument, NULL, 'A' },
		{ "disk", required_argument, NULL, 'd' },
		{ "new-disk", required_argument, NULL, 'N' },
		{ "nic", required_argument, NULL, 'n' },
		{ "vnc", required_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};
	char err[256];
	uint64_t u;
	int ch;

	optind = 0;
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (vmfs_cli_size(optarg, 1ull << 20, &u) < 0 ||
			    u < (4ull << 20) || u > (1ull << 40) ||
			    u % (1ull << 20)) {
				log_warnx("--memory: expected a size from 4M to 1T "
				    "in MiB or with a unit (512M, 2G), got '%s'",
				    optarg);
				return -EINVAL;
			}
			c->memory = u;
			break;
		case 'c':
			if (vmx_check("numvcpus", optarg, err, sizeof(err)) < 0) {
				log_warnx("--cpus: %s", err);
				return -EINVAL;
			}
			c->cpus = atoi(optarg);
			break;
		case 'k':
		case 'i':
			if (vmfs_cli_abs(ch == 'k' ? "kernel" : "initrd", optarg,
			    ch == 'k' ? c->kernel : c->initrd,
			    sizeof(c->kernel)) < 0)
				return -EINVAL;
			break;
		case 'a':
			snprintf(c->append, sizeof(c->append), "%s", optarg);
			break;
		case 'A':
			if (vmx_check("accel", optarg, err, sizeof(err)) < 0) {
				log_warnx("--accel: %s", err);
				return -EINVAL;
			}
			snprintf(c->accel, sizeof(c->accel), "%s", optarg);
			break;
		case 'd':
			if (vmfs_cli_disk_opt(c, optarg) < 0)
				return -EINVAL;
			break;
		case 'N':
			if (vmfs_cli_new_disk(c, nd, optarg) < 0)
				return -EINVAL;
			break;
		case 'n':
			if (c->nnics >= VMCFG_MAX_NICS ||
			    vmfs_cli_nic(optarg, &c->nics[c->nnics]) < 0) {
				log_warnx("--nic: expected [portgroup=]NAME[,mac="
				    "XX:XX:XX:XX:XX:XX][,queues=N] (at most %d NICs)",
				    VMCFG_MAX_NICS);
				return -EINVAL;
			}
			c->nnics++;
			break;
		case 'v':
			snprintf(c->vnc, sizeof(c->vnc), "%s", optarg);
			break;
		default:
			return -EINVAL;
		}
	}
	return optind == argc - 1 ? 0 : -EINVAL;
}

static int
vmfs_cli_mkdir_p(const char *path)
{
	char tmp[PATH_MAX], *p;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

static int vmfs_cli_rmtree(const char *dir);

static const char vmfs_cli_vmx_head[] =
    "# Made by `termvisor vm create`; edit by hand or with `termvisor vm set`.\n"
    "# The keys are described in termvisor.vmx(5).\n";

/* The new disks, after the VM's directory exists. */
static int
vmfs_cli_make_disks(const char *dir, const char *name, struct vm_config *c,
    const struct vmfs_cli_new *nd)
{
	char path[PATH_MAX + 4096], err[1024];
	int i;

	for (i = 0; i < nd->n; i++) {
		snprintf(c->disks[nd->idx[i]].path, sizeof(c->disks[0].path),
		    "%s-disk%d.qcow2", name, nd->idx[i]);
		snprintf(path, sizeof(path), "%s/%s", dir,
		    c->disks[nd->idx[i]].path);
		if (qcow2_create(path, nd->size[i], NULL, err, sizeof(err)) < 0) {
			log_warnx("%s", err);
			return -EIO;
		}
	}
	return 0;
}

static int
vmfs_cli_create(const char *ds, int argc, char **argv)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	struct vmx_doc doc = { 0 };
	struct vmfs_cli_new nd = { 0 };
	struct vm_config c;
	const char *name;
	int ret;

	vm_config_defaults(&c);
	if (vmfs_cli_create_opts(argc, argv, &c, &nd) < 0) {
		fputs(vmfs_cli_vm_usage, stderr);
		return VMFS_CLI_USAGE;
	}
	name = argv[argc - 1];	/* getopt_long moved it last */
	if (vmfs_name_valid(name) < 0) {
		log_warnx("'%s' is not a valid VM name (1-63 characters, no '/', "
		    "not starting with '.' or '-')", name);
		return VMFS_CLI_USAGE;
	}
	snprintf(c.name, sizeof(c.name), "%s", name);
	if (vmfs_cli_mkdir_p(ds) < 0 ||
	    vmfs_vm_dir(ds, name, dir, sizeof(dir)) < 0) {
		log_warn("datastore %s", ds);
		return VMFS_CLI_FAIL;
	}
	if (mkdir(dir, 0755) < 0) {
		if (errno == EEXIST)
			log_warnx("a VM named '%s' already exists in %s", name, ds);
		else
			log_warn("%s", dir);
		return VMFS_CLI_FAIL;
	}
	snprintf(path, sizeof(path), "%s/%s.vmx", dir, name);
	if ((ret = vmx_parse(&doc, path, vmfs_cli_vmx_head,
	    strlen(vmfs_cli_vmx_head), NULL, 0)) == 0 &&
	    (ret = vmfs_cli_make_disks(dir, name, &c, &nd)) == 0 &&
	    (ret = vmx_from_config(&doc, &c)) == 0 &&
	    (ret = vmx_save(&doc, path)) < 0)
		log_warnx("%s: %s", path, strerror(-ret));
	vmx_free(&doc);
	if (ret < 0) {
		vmfs_cli_rmtree(dir);
		return VMFS_CLI_FAIL;
	}
	printf("created VM '%s' in %s\n", name, dir);
	return VMFS_CLI_OK;
}

/* --- vm list / show --- */

/*
 * A VM's state for `vm list`: from its lock, and for a VM running on
 * this host from its control socket's greeting (running, paused,
 * panicked...), so a paused VM does not show as running.
 */
static void
vmfs_cli_state(const char *dir, const char *name, char *buf, size_t len)
{
	struct vmfs_lock_holder h;
	struct control_conn cc;
	char who[512], host[256] = "", err[512];
	const char *live = "running";
	int r = vmfs_lock_query(dir, &h);

	if (r <= 0) {
		snprintf(buf, len, r == 0 ? "stopped" : "unknown");
		return;
	}
	vmfs_lock_describe(&h, who, sizeof(who));
	if (h.expired) {
		snprintf(buf, len, "stale lock (%s)", who);
		return;
	}
	gethostname(host, sizeof(host) - 1);
	if (strcmp(host, h.host) != 0) {
		snprintf(buf, len, "running (%s)", who);
		return;
	}
	r = control_client_open(&cc, name, err, sizeof(err));
	if (r == 0) {
		const char *s = json_string_value(json_object_get(cc.greeting,
		    "state"));

		snprintf(buf, len, "%s (%s)", s != NULL ? s : live, who);
		control_client_close(&cc);
		return;
	}
	if (r == -EPROTO || r == -EAGAIN)
		live = "unresponsive";
	snprintf(buf, len, "%s (%s)", live, who);
}

static int
vmfs_cli_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
vmfs_cli_list(const char *ds)
{
	char dir[PATH_MAX], st[600], mem[32], *names[4096];
	struct vm_config c;
	struct dirent *de;
	int n = 0, i;
	DIR *d;

	if ((d = opendir(ds)) == NULL) {
		if (errno == ENOENT)
			return VMFS_CLI_OK;	/* no datastore yet: no VMs */
		log_warn("datastore %s", ds);
		return VMFS_CLI_FAIL;
	}
	while ((de = readdir(d)) != NULL && n < 4096)
		if (vmfs_name_valid(de->d_name) == 0)
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), vmfs_cli_name_cmp);
	printf("%-24s %10s %5s %5s  %s\n", "NAME", "MEMORY", "CPUS", "DISKS",
	    "STATE");
	for (i = 0; i < n; i++) {
		snprintf(st, sizeof(st), "%s/%s/%s.vmx", ds, names[i], names[i]);
		if (access(st, F_OK) < 0 ||
		    vmfs_vm_dir(ds, names[i], dir, sizeof(dir)) < 0) {
			free(names[i]);
			continue;	/* not a VM directory */
		}
		vmfs_cli_state(dir, names[i], st, sizeof(st));
		if (vmfs_load_vm(ds, names[i], &c) == 0) {
			vmfs_cli_human(c.memory, mem, sizeof(mem));
			printf("%-24s %10s %5d %5d  %s\n", names[i], mem, c.cpus,
			    c.ndisks, st);
		} else {
			printf("%-24s %10s %5s %5s  %s, bad config (see above)\n",
			    names[i], "-", "-", "-", st);
		}
		free(names[i]);
	}
	return VMFS_CLI_OK;
}

static void
vmfs_cli_show_devices(const struct vm_config *c)
{
	const struct vmcfg_nic *n;
	int i;

	for (i = 0; i < c->ndisks; i++)
		printf("disk%d:    %s (%s%s%s%s)\n", i, c->disks[i].path,
		    c->disks[i].format[0] ? c->disks[i].format : "probed",
		    c->disks[i].readonly ? ", read-only" : "",
		    c->disks[i].serial[0] ? ", serial " : "", c->disks[i].serial);
	for (i = 0; i < c->nnics; i++) {
		n = &c->nics[i];
		printf("nic%d:     port group %s", i, n->portgroup);
		if (n->mac_set)
			printf(", mac %02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
			    n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
		printf("\n");
	}
}

static int
vmfs_cli_show(const char *ds, const char *name)
{
	char dir[PATH_MAX], st[600], mem[32];
	struct vm_config c;

	if (vmfs_load_vm(ds, name, &c) < 0)
		return VMFS_CLI_FAIL;
	vmfs_vm_dir(ds, name, dir, sizeof(dir));
	vmfs_cli_state(dir, name, st, sizeof(st));
	vmfs_cli_human(c.memory, mem, sizeof(mem));
	printf("name:     %s\nconfig:   %s/%s.vmx\nstate:    %s\n", c.name, dir,
	    name, st);
	printf("memory:   %s\ncpus:     %d\naccel:    %s\n", mem, c.cpus,
	    c.accel);
	if (c.kernel[0])
		printf("kernel:   %s\n", c.kernel);
	if (c.initrd[0])
		printf("initrd:   %s\n", c.initrd);
	if (c.append[0])
		printf("append:   %s\n", c.append);
	vmfs_cli_show_devices(&c);
	printf("vnc:      %s\nserial:   %s\n", c.vnc, c.serial);
	printf("display:  %s\n", c.display[0] ? c.display : "std");
	printf("rng:      %s\n", c.rng);
	return VMFS_CLI_OK;
}

/* --- vm set --- */

static int
vmfs_cli_set_one(struct vmx_doc *doc, const char *kv)
{
	char key[256], err[512];
	const char *eq = strchr(kv, '=');

	if (eq == NULL || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
		log_warnx("expected KEY=VALUE, got '%s'", kv);
		return -EINVAL;
	}
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	if (strcasecmp(key, "name") == 0) {
		log_warnx("the name is the VM's directory: it cannot be set");
		return -EINVAL;
	}
	if (eq[1] != '\0' && vmx_check(key, eq + 1, err, sizeof(err)) < 0) {
		log_warnx("%s: %s", key, err);
		return -EINVAL;
	}
	return vmx_set(doc, key, eq[1] ? eq + 1 : NULL);
}

static int
vmfs_cli_set(const char *ds, int argc, char **argv)
{
	char path[PATH_MAX], dir[PATH_MAX], err[1024];
	struct vmx_doc doc;
	struct vm_config c;
	int i, ret;

	if (argc < 3 || vmfs_vmx_path(ds, argv[1], path, sizeof(path)) < 0 ||
	    vmfs_vm_dir(ds, argv[1], dir, sizeof(dir)) < 0) {
		fputs(vmfs_cli_vm_usage, stderr);
		return VMFS_CLI_USAGE;
	}
	if (vmx_load(&doc, path, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return VMFS_CLI_FAIL;
	}
	for (i = 2; i < argc; i++)
		if (vmfs_cli_set_one(&doc, argv[i]) < 0) {
			vmx_free(&doc);
			return VMFS_CLI_USAGE;
		}
	/* the whole file must still make sense (no disk1 without disk0) */
	if (vmx_to_config(&doc, dir, &c, err, sizeof(err)) < 0) {
		log_warnx("not saved: %s", err);
		vmx_free(&doc);
		return VMFS_CLI_USAGE;
	}
	ret = vmx_save(&doc, path);
	vmx_free(&doc);
	if (ret < 0) {
		log_warnx("%s: %s", path, strerror(-ret));
		return VMFS_CLI_FAIL;
	}
	return VMFS_CLI_OK;
}

/* --- vm rm --- */

static int
vmfs_cli_rm_entry(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	const char *base = path + ftw->base;

	if (ftw->level == 0)
		return 0;	/* the VM directory itself: after the lock */
	if (ftw->level == 1 && (strcmp(base, ".lock") == 0 ||
	    strcmp(base, "lease") == 0))
		return 0;
	return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

/* Remove dir and what it holds (no symlinks followed). */
static int
vmfs_cli_rmtree(const char *dir)
{
	char path[PATH_MAX + 16];

	if (nftw(dir, vmfs_cli_rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/.lock", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lease", dir);
	unlink(path);
	return rmdir(dir) < 0 ? -errno : 0;
}

static int
vmfs_cli_rm(const char *ds, const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], err[1024];
	struct vmfs_lock *l;
	int ret;

	if (vmfs_vm_dir(ds, name, dir, sizeof(dir)) < 0) {
		log_warnx("'%s' is not a valid VM name", name);
		return VMFS_CLI_USAGE;
	}
	snprintf(path, sizeof(path), "%s/%s.vmx", dir, name);
	if (access(path, F_OK) < 0) {
		log_warnx("no VM named '%s' in %s", name, ds);
		return VMFS_CLI_FAIL;
	}
	if ((ret = vmfs_lock_take(dir, NULL, &l, err, sizeof(err))) < 0) {
		log_warnx("refusing to remove: %s", err);
		return VMFS_CLI_FAIL;
	}
	ret = nftw(dir, vmfs_cli_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	vmfs_lock_release(l);
	snprintf(path, sizeof(path), "%s/.lock", dir);
	unlink(path);
	if (ret != 0 || rmdir(dir) < 0) {
		log_warn("removing %s", dir);
		return VMFS_CLI_FAIL;
	}
	printf("removed VM '%s'\n", name);
	return VMFS_CLI_OK;
}

/* `vm nic-link NAME N up|down`: the running VM's nic-link command. */
static int
vmfs_cli_nic_link(const char *name, const char *nic, const char *state)
{
	struct control_conn cc;
	json_t *res = NULL;
	char err[512], *end;
	long n = strtol(nic, &end, 10);
	int r;

	if (*end != '\0' || end == nic || n < 0 || n >= VMCFG_MAX_NICS ||
	    (strcmp(state, "up") != 0 && strcmp(state, "down") != 0)) {
		log_warnx("usage: termvisor vm nic-link NAME N up|down (N from "
		    "0 to %d)", VMCFG_MAX_NICS - 1);
		return VMFS_CLI_USAGE;
	}
	if (control_client_open(&cc, name, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return VMFS_CLI_FAIL;
	}
	r = control_client_call(&cc, "nic-link", json_pack("{s:i, s:b}",
	    "nic", (int)n, "up", state[0] == 'u'), 5000, &res, err,
	    sizeof(err));
	control_client_close(&cc);
	if (r < 0) {
		log_warnx("%s: %s", name, err);
		return VMFS_CLI_FAIL;
	}
	printf("%s: nic%ld link %s\n", name, n, json_is_true(json_object_get(
	    res, "link")) ? "up" : "down");
	json_decref(res);
	return VMFS_CLI_OK;
}

int
vmfs_cli_vm(int argc, char **argv)
{
	char ds[PATH_MAX];

	if (argc < 1 || strcmp(argv[0], "--help") == 0 ||
	    strcmp(argv[0], "help") == 0 || vmfs_cli_help(argc, argv)) {
		fputs(vmfs_cli_vm_usage, argc < 1 ? stderr : stdout);
		return argc < 1 ? VMFS_CLI_USAGE : VMFS_CLI_OK;
	}
	if (vmfs_cli_take_datastore(&argc, argv, ds, sizeof(ds)) < 0) {
		log_warnx("no datastore: use --datastore DIR or set "
		    "TERMVISOR_DATASTORE");
		return VMFS_CLI_USAGE;
	}
	if (strcmp(argv[0], "create") == 0)
		return vmfs_cli_create(ds, argc, argv);
	if (strcmp(argv[0], "list") == 0 && argc == 1)
		return vmfs_cli_list(ds);
	if (strcmp(argv[0], "show") == 0 && argc == 2)
		return vmfs_cli_show(ds, argv[1]);
	if (strcmp(argv[0], "set") == 0)
		return vmfs_cli_set(ds, argc, argv);
	if (strcmp(argv[0], "rm") == 0 && argc == 2)
		return vmfs_cli_rm(ds, argv[1]);
	if (strcmp(argv[0], "nic-link") == 0 && argc == 4)
		return vmfs_cli_nic_link(argv[1], argv[2], argv[3]);
	fputs(vmfs_cli_vm_usage, stderr);
	return VMFS_CLI_USAGE;
}


/* --- disk --- */

static int
vmfs_cli_disk_create_opts(int argc, char **argv, char *fmt, size_t fmtlen,
    struct qcow2_create_opts *o)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "backing", required_argument, NULL, 'b' },
		{ "backing-format", required_argument, NULL, 'F' },
		{ "cluster-size", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 }
	};
	uint64_t u;
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			snprintf(fmt, fmtlen, "%s", optarg);
			break;
		case 'b':
			o->backing = optarg;
			break;
		case 'F':
			o->backing_format = optarg;
			break;
		case 'c':
			if (vmfs_cli_size(optarg, 1, &u) < 0 || u > (2u << 20))
				return -EINVAL;
			o->cluster_size = (uint32_t)u;
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

static int
vmfs_cli_disk_create(int argc, char **argv)
{
	struct qcow2_create_opts o = { 0 };
	char fmt[16] = "qcow2", err[1024];
	uint64_t size = 0;
	int ret, npos;

	if (vmfs_cli_disk_create_opts(argc, argv, fmt, sizeof(fmt), &o) < 0)
		goto usage;
	npos = argc - optind;
	if (npos < 1 || npos > 2 || (npos == 1 && o.backing == NULL) ||
	    (npos == 2 && vmfs_cli_size(argv[optind + 1], 1, &size) < 0))
		goto usage;
	if (strcmp(fmt, "raw") == 0 && o.backing == NULL) {
		ret = raw_create(argv[optind], size, err, sizeof(err));
	} else if (strcmp(fmt, "qcow2") == 0) {
		ret = qcow2_create(argv[optind], size, &o, err, sizeof(err));
	} else {
		log_warnx("--format: expected qcow2 or raw (raw takes no "
		    "--backing)");
		return VMFS_CLI_USAGE;
	}
	if (ret < 0) {
		log_warnx("%s", err);
		return ret == -EINVAL ? VMFS_CLI_USAGE : VMFS_CLI_FAIL;
	}
	return VMFS_CLI_OK;
usage:
	fputs(vmfs_cli_disk_usage, stderr);
	return VMFS_CLI_USAGE;
}

static int
vmfs_cli_disk_info(const char *file)
{
	char err[1024], vs[32], ds[32], path[PATH_MAX], dir[PATH_MAX];
	struct blkdev_info info;
	struct blkdev *bd;
	int depth;

	snprintf(path, sizeof(path), "%s", file);
	for (depth = 0; depth < BLKDEV_MAX_CHAIN; depth++) {
		/* like qemu-img info -U: a running VM's disk can be looked at */
		if (blkdev_open(&bd, path, NULL, BLKDEV_RDONLY | BLKDEV_NOLOCK,
		    err, sizeof(err)) < 0) {
			log_warnx("%s", err);
			return VMFS_CLI_FAIL;
		}
		blkdev_info(bd, &info);
		blkdev_close(bd);
		vmfs_cli_human(info.virtual_size, vs, sizeof(vs));
		vmfs_cli_human(info.disk_size, ds, sizeof(ds));
		printf("%simage: %s\nformat: %s\nvirtual size: %s (%" PRIu64
		    " bytes)\ndisk size: %s\n", depth ? "\n" : "", path,
		    info.format, vs, info.virtual_size, ds);
		if (info.cluster_size)
			printf("cluster size: %u\n", info.cluster_size);
		if (info.backing[0] == '\0')
			return VMFS_CLI_OK;
		printf("backing file: %s%s%s%s\n", info.backing,
		    info.backing_format[0] ? " (format " : "",
		    info.backing_format, info.backing_format[0] ? ")" : "");
		snprintf(dir, sizeof(dir), "%s", path);
		if (info.backing[0] == '/')
			snprintf(path, sizeof(path), "%s", info.backing);
		else
			snprintf(path, sizeof(path), "%.2047s/%.2047s",
			    dirname(dir), info.backing);
	}
	return VMFS_CLI_OK;
}

static void
vmfs_cli_report(void *opaque, const char *msg)
{
	printf("%s\n", msg);
}

static int
vmfs_cli_disk_check(const char *file, bool repair)
{
	struct qcow2_check_result r;
	struct blkdev *bd;
	char err[1024];
	int ret;

	if (blkdev_open(&bd, file, NULL, BLKDEV_RDONLY, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return VMFS_CLI_FAIL;
	}
	if (strcmp(bd->ops->name, "qcow2") != 0) {
		printf("%s: raw image, nothing to check\n", file);
		blkdev_close(bd);
		return VMFS_CLI_OK;
	}
	ret = repair ? qcow2_check_repair(bd, &r, vmfs_cli_report, NULL) :
	    qcow2_check(bd, &r, vmfs_cli_report, NULL);
	blkdev_close(bd);
	if (ret < 0) {
		log_warnx("%s: check not completed: %s", file, ret == -ENOTSUP ?
		    "internal snapshots are not checked (use qemu-img check)" :
		    strerror(-ret));
		return VMFS_CLI_FAIL;
	}
	if (r.errors == 0 && r.leaks == 0)
		printf("No errors were found on the image.\n");
	if (r.leaks != 0)
		printf("%" PRIu64 " leaked clusters were found on the image.\n"
		    "This means waste of disk space, but no harm to data.\n",
		    r.leaks);
	if (r.repaired != 0)
		printf("%" PRIu64 " leaked clusters were reclaimed.\n",
		    r.repaired);
	else if (repair && r.leaks != 0)
		printf("Not repaired: the image has errors.\n");
	if (r.errors != 0)
		printf("%" PRIu64 " errors were found on the image.\n"
		    "Data may be corrupted, or further writes to the image may "
		    "corrupt it.\n", r.errors);
	printf("%" PRIu64 "/%" PRIu64 " clusters allocated\n", r.allocated,
	    r.total);
	return r.errors != 0 ? VMFS_CLI_FAIL : VMFS_CLI_OK;
}

/*
 * The overlay names its backing file relative to itself when both are
 * in one directory (the pair can be moved together), else absolutely.
 */
static int
vmfs_cli_disk_snapshot(const char *file, const char *newf)
{
	char base[PATH_MAX], ndir[PATH_MAX], bdir[PATH_MAX], tmp[PATH_MAX];
	char fmt[8], err[1024];
	struct qcow2_create_opts o = { 0 };

	if (realpath(file, base) == NULL) {
		log_warn("%s", file);
		return VMFS_CLI_FAIL;
	}
	snprintf(tmp, sizeof(tmp), "%s", newf);
	if (realpath(dirname(tmp), ndir) == NULL) {
		log_warn("%s", newf);
		return VMFS_CLI_FAIL;
	}
	snprintf(bdir, sizeof(bdir), "%s", base);
	dirname(bdir);
	o.backing = strcmp(bdir, ndir) == 0 ? base + strlen(bdir) + 1 : base;
	if (blkdev_probe(base, fmt, sizeof(fmt)) < 0) {
		log_warn("%s", base);
		return VMFS_CLI_FAIL;
	}
	o.backing_format = fmt;
	if (qcow2_create(newf, 0, &o, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return VMFS_CLI_FAIL;
	}
	printf("created %s on top of %s\n", newf, base);
	return VMFS_CLI_OK;
}

int
vmfs_cli_disk(int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "--help") == 0 ||
	    strcmp(argv[0], "help") == 0 || vmfs_cli_help(argc, argv)) {
		fputs(vmfs_cli_disk_usage, argc < 1 ? stderr : stdout);
		return argc < 1 ? VMFS_CLI_USAGE : VMFS_CLI_OK;
	}
	if (strcmp(argv[0], "create") == 0)
		return vmfs_cli_disk_create(argc, argv);
	if (strcmp(argv[0], "info") == 0 && argc == 2)
		return vmfs_cli_disk_info(argv[1]);
	if (strcmp(argv[0], "check") == 0 && argc == 2)
		return vmfs_cli_disk_check(argv[1], false);
	if (strcmp(argv[0], "check") == 0 && argc == 3 &&
	    strcmp(argv[1], "--repair") == 0)
		return vmfs_cli_disk_check(argv[2], true);
	if (strcmp(argv[0], "snapshot") == 0 && argc == 3)
		return vmfs_cli_disk_snapshot(argv[1], argv[2]);
	fputs(vmfs_cli_disk_usage, stderr);
	return VMFS_CLI_USAGE;
}
