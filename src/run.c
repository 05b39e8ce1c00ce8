/*
 * `termvisor run`: one VMM process for one VM, in the foreground with the
 * serial console on stdin/stdout.
 *
 * Exit status: the guest's power-off gives 0 (or, with --debug-exit, the
 * status it wrote); a guest reboot with --no-reboot gives 0; a guest
 * panic with --on-panic stop gives 1 (PVPANIC_STOP_STATUS); a bad option,
 * kernel or resource gives 2 with one line on stderr; a failure of the
 * accelerator while running gives 1; a signal gives 128 + its number.
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "control/control.h"
#include "control/control_client.h"
#include "devices/pvpanic.h"
#include "devices/virtio_net.h"
#include "hv/boot.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/migrate.h"
#include "migrate/snapshot.h"
#include "util/evloop.h"
#include "util/log.h"
#include "vmfs/vmfs.h"
#include "vmfs/vmfs_lock.h"
#include "vnc/vnc.h"

#define RUN_MIN_MEMORY	(4ull << 20)
#define RUN_MAX_MEMORY	(1ull << 40)
/* getopt values of the migration options (above every short option). */
#define RUN_OPT_INCOMING	0x1000
#define RUN_OPT_SECRET_FILE	0x1001
#define RUN_OPT_RESTORE	0x1002	/* getopt value of --restore */
#define RUN_OPT_DISPLAY	0x1003	/* getopt value of --display */
#define RUN_OPT_RNG	0x1004	/* getopt value of --rng */
/* The crypto self-tests cost 5 s of a 16 s boot on the software CPU; the
 * test suite keeps them on (they check the CPU), an interactive run skips. */
#define RUN_DEFAULT_APPEND "console=ttyS0 panic=-1 cryptomgr.notests=1"

static const char run_usage[] =
"usage: termvisor run [options] [NAME]\n"
"\n"
"Run one virtual machine in the foreground; its serial console is this\n"
"terminal (Ctrl-a x quits, Ctrl-a Ctrl-a sends Ctrl-a).  With NAME, the VM\n"
"is the datastore's (its lock is held while it runs) and the options below\n"
"override its configuration.\n"
"\n"
"  -k, --kernel FILE     bzImage, PVH ELF or multiboot kernel\n"
"                        (default: the reference guest built by make guest)\n"
"  -i, --initrd FILE     initial ramdisk (multiboot: the first module)\n"
"  -a, --append ARGS     kernel command line\n"
"  -m, --memory SIZE     guest memory, e.g. 512M, 2G (default 512M)\n"
"  -c, --cpus N          number of vCPUs (default 1)\n"
"      --accel NAME      kvm, bt (software CPU) or auto (default: KVM\n"
"                        when the CPU has VMX/SVM, else the software CPU)\n"
"  -d, --disk FILE[,format=raw|qcow2][,readonly=on][,serial=S]\n"
"                        add a virtio-blk disk (/dev/vda, vdb... in order;\n"
"                        repeatable)\n"
"  -n, --nic [portgroup=]NAME[,mac=MAC][,queues=N]\n"
"                        add a virtio-net NIC on the host switch's port\n"
"                        group NAME (repeatable; default MAC derived from\n"
"                        the VM name; queues: pairs, default min(cpus, 4))\n"
"      --datastore DIR   the datastore holding NAME\n"
"      --incoming URI    receive a migrating VM instead of booting one:\n"
"                        '-' (stdin/stdout, as termvisor migrate ssh://\n"
"                        runs it) or tcp:[ADDR:]PORT (default 127.0.0.1);\n"
"                        a NAME not in the datastore is created from the\n"
"                        stream (termvisor migrate --copy-storage)\n"
"      --secret-file FILE  the secret shared with the source (tcp:)\n"
"      --restore FILE    resume the VM saved in snapshot FILE instead of\n"
"                        booting it (same memory, vCPUs and devices)\n"
"      --no-reboot       exit when the guest reboots instead of restarting\n"
"      --on-panic pause|stop|reset|none\n"
"                        when the guest's kernel panics: keep it paused\n"
"                        for a look (the default), power it off (exit\n"
"                        status 1), reboot it, or only report it\n"
"      --display std|none  the display: a bochs-display PCI device with VGA\n"
"                        text mode, whose framebuffer Linux is told of\n"
"                        (std, the default), or none\n"
"      --rng on|off      a virtio-rng device feeding the guest's kernel\n"
"                        entropy from the host (on, the default)\n"
"      --bzimage-entry   boot a bzImage through its own decompressor instead\n"
"                        of unpacking it on the host (the default when its\n"
"                        kernel has a PVH entry)\n"
"      --debug-exit[=PORT]  isa-debug-exit device (default port 0xf4): a\n"
"                        guest write of V exits with status (V<<1)|1\n"
"      --vnc ADDR:DISPLAY|unix:PATH|auto|none\n"
"                        serve the screen over VNC: TCP port 5900+DISPLAY\n"
"                        (no ADDR: 127.0.0.1), a Unix socket, or the first\n"
"                        free display on 127.0.0.1 (auto, the default\n"
"                        unless --display none)\n"
"      --vnc-password-file FILE  VNC password (first line of FILE; else\n"
"                        $TERMVISOR_VNC_PASSWORD; else none)\n"
"  -v, --verbose         more messages (repeat for debug)\n"
"  -h, --help            this help\n";

uint64_t
run_parse_size(const char *s)
{
	unsigned long long v;
	char *end;
	int shift = 20;	/* a bare number is MiB, as QEMU's -m */

	if (s == NULL || *s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	case '\0': break;
	default: return 0;
	}
	if (strcasecmp(end, "ib") == 0 || strcasecmp(end, "b") == 0)
		end += strlen(end);
	if (*end != '\0' || v == 0 || v > (UINT64_MAX >> shift))
		return 0;
	return (uint64_t)v << shift;
}

void
run_guest_dir(char *buf, size_t len)
{
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");

	if (x != NULL && *x == '/')
		snprintf(buf, len, "%s/termvisor/guest", x);
	else
		snprintf(buf, len, "%s/.cache/termvisor/guest", h ? h : "/");
}

static int
run_copy(char *dst, size_t n, const char *src, const char *what, char *err,
    size_t errlen)
{
	if (strlen(src) >= n) {
		snprintf(err, errlen, "%s is too long", what);
		return -1;
	}
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

/* No --kernel: the reference guest, if make guest has built it. */
static int
run_default_guest(struct vm_config *cfg, bool append_set, char *err,
    size_t errlen)
{
	char dir[PATH_MAX - 32];

	run_guest_dir(dir, sizeof(dir));
	snprintf(cfg->kernel, sizeof(cfg->kernel), "%s/vmlinuz", dir);
	if (access(cfg->kernel, R_OK) != 0) {
		snprintf(err, errlen, "no --kernel given and the reference "
		    "guest is not built (%s): run `make guest`", cfg->kernel);
		return -1;
	}
	if (cfg->initrd[0] == '\0')
		snprintf(cfg->initrd, sizeof(cfg->initrd), "%s/initrd.img",
		    dir);
	if (!append_set)
		snprintf(cfg->append, sizeof(cfg->append), "%s",
		    RUN_DEFAULT_APPEND);
	return 0;
}

int
run_parse_args(int argc, char **argv, struct vm_config *cfg,
    struct run_args *a, char *err, size_t errlen)
{
	enum { OPT_ACCEL = 256, OPT_NO_REBOOT, OPT_DEBUG_EXIT, OPT_DATASTORE,
	    OPT_BZIMAGE_ENTRY, OPT_VNC, OPT_VNC_PASSWORD_FILE, OPT_ON_PANIC };
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "append", required_argument, NULL, 'a' },
		{ "memory", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "accel", required_argument, NULL, OPT_ACCEL },
		{ "no-reboot", no_argument, NULL, OPT_NO_REBOOT },
		{ "on-panic", required_argument, NULL, OPT_ON_PANIC },
		{ "debug-exit", optional_argument, NULL, OPT_DEBUG_EXIT },
		{ "disk", required_argument, NULL, 'd' },
		{ "nic", required_argument, NULL, 'n' },
		{ "datastore", required_argument, NULL, OPT_DATASTORE },
		{ "incoming", required_argument, NULL, RUN_OPT_INCOMING },
		{ "secret-file", required_argument, NULL, RUN_OPT_SECRET_FILE },
		{ "restore", required_argument, NULL, RUN_OPT_RESTORE },
		{ "display", required_argument, NULL, RUN_OPT_DISPLAY },
		{ "rng", required_argument, NULL, RUN_OPT_RNG },
		{ "bzimage-entry", no_argument, NULL, OPT_BZIMAGE_ENTRY },
		{ "vnc", required_argument, NULL, OPT_VNC },
		{ "vnc-password-file", required_argument, NULL,
		    OPT_VNC_PASSWORD_FILE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool append_set = false;
	char *end;
	long n;
	int c;

	vm_config_defaults(cfg);
	memset(a, 0, sizeof(*a));
	snprintf(cfg->serial, sizeof(cfg->serial), "stdio");
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+k:i:a:m:c:d:n:vh", opts, NULL)) != -1) {
		a->set |= c == 'k' ? RUN_SET_KERNEL : c == 'i' ? RUN_SET_INITRD :
		    c == 'a' ? RUN_SET_APPEND : c == 'm' ? RUN_SET_MEMORY :
		    c == 'c' ? RUN_SET_CPUS : c == OPT_ACCEL ? RUN_SET_ACCEL :
		    c == OPT_NO_REBOOT ? RUN_SET_NO_REBOOT :
		    c == OPT_DEBUG_EXIT ? RUN_SET_DEBUG_EXIT :
		    c == OPT_VNC ? RUN_SET_VNC :
		    c == OPT_VNC_PASSWORD_FILE ? RUN_SET_VNC_PASSWORD : 0;
		switch (c) {
		case 'd':
			if (cfg->ndisks >= VMCFG_MAX_DISKS) {
				snprintf(err, errlen, "at most %d --disk "
				    "options", VMCFG_MAX_DISKS);
				return -1;
			}
			if (vmfs_parse_disk_arg(optarg,
			    &cfg->disks[cfg->ndisks], err, errlen) < 0)
				return -1;
			cfg->ndisks++;
			break;
		case 'n':
			if (cfg->nnics >= VMCFG_MAX_NICS) {
				snprintf(err, errlen, "at most %d --nic "
				    "options", VMCFG_MAX_NICS);
				return -1;
			}
			if (virtio_net_parse_arg(optarg,
			    &cfg->nics[cfg->nnics], err, errlen) < 0)
				return -1;
			cfg->nnics++;
			break;
		case RUN_OPT_RESTORE:
			if (run_copy(a->restore, sizeof(a->restore), optarg,
			    "--restore file", err, errlen))
				return -1;
			break;
		case RUN_OPT_INCOMING:
			if (run_copy(a->incoming, sizeof(a->incoming), optarg,
			    "--incoming URI", err, errlen))
				return -1;
			break;
		case RUN_OPT_SECRET_FILE:
			if (run_copy(a->secret_file, sizeof(a->secret_file),
			    optarg, "--secret-file path", err, errlen))
				return -1;
			break;
		case OPT_DATASTORE:
			if (run_copy(a->datastore, sizeof(a->datastore), optarg,
			    "--datastore path", err, errlen))
				return -1;
			break;
		case 'k':
			if (run_copy(cfg->kernel, sizeof(cfg->kernel), optarg,
			    "--kernel path", err, errlen))
				return -1;
			break;
		case 'i':
			if (run_copy(cfg->initrd, sizeof(cfg->initrd), optarg,
			    "--initrd path", err, errlen))
				return -1;
			break;
		case 'a':
			if (run_copy(cfg->append, sizeof(cfg->append), optarg,
			    "--append", err, errlen))
				return -1;
			append_set = true;
			break;
		case 'm':
			cfg->memory = run_parse_size(optarg);
			if (cfg->memory < RUN_MIN_MEMORY ||
			    cfg->memory > RUN_MAX_MEMORY) {
				snprintf(err, errlen, "--memory %s: expected a "
				    "size from 4M to 1T, like 512M or 2G",
				    optarg);
				return -1;
			}
			break;
		case 'c':
			errno = 0;
			n = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || n < 1 ||
			    n > VM_MAX_VCPUS) {
				snprintf(err, errlen, "--cpus %s: expected a "
				    "number from 1 to %d", optarg,
				    VM_MAX_VCPUS);
				return -1;
			}
			cfg->cpus = (int)n;
			break;
		case OPT_ACCEL:
			if (strcmp(optarg, "kvm") && strcmp(optarg, "bt") &&
			    strcmp(optarg, "auto")) {
				snprintf(err, errlen, "--accel %s: expected "
				    "kvm, bt or auto", optarg);
				return -1;
			}
			snprintf(cfg->accel, sizeof(cfg->accel), "%s", optarg);
			break;
		case OPT_NO_REBOOT:
			cfg->no_reboot = true;
			break;
		case OPT_ON_PANIC:
			if (pvpanic_parse_action(optarg) < 0) {
				snprintf(err, errlen, "--on-panic %s: expected "
				    "pause, stop, reset or none", optarg);
				return -1;
			}
			snprintf(cfg->on_panic, sizeof(cfg->on_panic), "%s",
			    optarg);
			a->set |= RUN_SET_ON_PANIC;
			break;
		case RUN_OPT_DISPLAY:
			if (strcmp(optarg, "std") != 0 &&
			    strcmp(optarg, "none") != 0) {
				snprintf(err, errlen, "--display %s: expected "
				    "std or none", optarg);
				return -1;
			}
			snprintf(cfg->display, sizeof(cfg->display), "%s",
			    optarg);
			a->set |= RUN_SET_DISPLAY;
			break;
		case RUN_OPT_RNG:
			if (strcmp(optarg, "on") != 0 &&
			    strcmp(optarg, "off") != 0) {
				snprintf(err, errlen, "--rng %s: expected on "
				    "or off", optarg);
				return -1;
			}
			snprintf(cfg->rng, sizeof(cfg->rng), "%s", optarg);
			a->set |= RUN_SET_RNG;
			break;
		case OPT_VNC: {
			struct vnc_listen l;

			if (vnc_parse_listen(optarg, &l, err, errlen) < 0 ||
			    run_copy(cfg->vnc, sizeof(cfg->vnc), optarg,
			    "--vnc", err, errlen))
				return -1;
			break;
		}
		case OPT_VNC_PASSWORD_FILE:
			if (run_copy(cfg->vnc_password_file,
			    sizeof(cfg->vnc_password_file), optarg,
			    "--vnc-password-file path", err, errlen))
				return -1;
			break;
		case OPT_BZIMAGE_ENTRY:
			cfg->bzimage_entry = true;
			break;
		case OPT_DEBUG_EXIT:
			cfg->debug_exit = true;
			if (optarg != NULL) {
				n = strtol(optarg, &end, 0);
				if (*end || end == optarg || n < 0 ||
				    n > 0xffff) {
					snprintf(err, errlen, "--debug-exit=%s: "
					    "expected a port number", optarg);
					return -1;
				}
				cfg->debug_exit_port = (int)n;
			}
			break;
		case 'v':
			cfg->verbose++;
			break;
		case 'h':
			fputs(run_usage, stdout);
			return 1;
		default:
			snprintf(err, errlen, "unknown or incomplete option "
			    "'%s' (see termvisor run --help)",
			    argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc && vmfs_name_valid(argv[optind]) == 0 &&
	    strlen(argv[optind]) < sizeof(a->name))
		snprintf(a->name, sizeof(a->name), "%s", argv[optind++]);
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see "
		    "termvisor run --help)", argv[optind]);
		return -1;
	}
	if (cfg->kernel[0] == '\0' && a->name[0] == '\0')
		return run_default_guest(cfg, append_set, err, errlen);
	return 0;
}

int
run_merge(struct vm_config *vm, const struct vm_config *cmd,
    const struct run_args *a, char *err, size_t errlen)
{
	if (a->set & RUN_SET_KERNEL)
		memcpy(vm->kernel, cmd->kernel, sizeof(vm->kernel));
	if (a->set & RUN_SET_INITRD)
		memcpy(vm->initrd, cmd->initrd, sizeof(vm->initrd));
	if (a->set & RUN_SET_APPEND)
		memcpy(vm->append, cmd->append, sizeof(vm->append));
	if (a->set & RUN_SET_MEMORY)
		vm->memory = cmd->memory;
	if (a->set & RUN_SET_CPUS)
		vm->cpus = cmd->cpus;
	if (a->set & RUN_SET_ACCEL)
		memcpy(vm->accel, cmd->accel, sizeof(vm->accel));
	if (a->set & RUN_SET_NO_REBOOT)
		vm->no_reboot = cmd->no_reboot;
	vm->bzimage_entry |= cmd->bzimage_entry;
	if (a->set & RUN_SET_VNC)
		memcpy(vm->vnc, cmd->vnc, sizeof(vm->vnc));
	if (a->set & RUN_SET_VNC_PASSWORD)
		memcpy(vm->vnc_password_file, cmd->vnc_password_file,
		    sizeof(vm->vnc_password_file));
	if (a->set & RUN_SET_DISPLAY)
		memcpy(vm->display, cmd->display, sizeof(vm->display));
	if (a->set & RUN_SET_ON_PANIC)
		memcpy(vm->on_panic, cmd->on_panic, sizeof(vm->on_panic));
	if (a->set & RUN_SET_RNG)
		memcpy(vm->rng, cmd->rng, sizeof(vm->rng));
	if (a->set & RUN_SET_DEBUG_EXIT) {
		vm->debug_exit = cmd->debug_exit;
		vm->debug_exit_port = cmd->debug_exit_port;
	}
	if (vm->ndisks + cmd->ndisks > VMCFG_MAX_DISKS) {
		snprintf(err, errlen, "%s has %d disks; at most %d in all",
		    a->name, vm->ndisks, VMCFG_MAX_DISKS);
		return -1;
	}
	for (int i = 0; i < cmd->ndisks; i++)
		vm->disks[vm->ndisks++] = cmd->disks[i];
	if (vm->nnics + cmd->nnics > VMCFG_MAX_NICS) {
		snprintf(err, errlen, "%s has %d NICs; at most %d in all",
		    a->name, vm->nnics, VMCFG_MAX_NICS);
		return -1;
	}
	for (int i = 0; i < cmd->nnics; i++)
		vm->nics[vm->nnics++] = cmd->nics[i];
	memcpy(vm->serial, cmd->serial, sizeof(vm->serial));
	vm->verbose = cmd->verbose;
	if (vm->kernel[0] == '\0') {
		snprintf(err, errlen, "%s has no kernel configured (set one "
		    "with termvisor vm set %s kernel=FILE)", a->name, a->name);
		return -1;
	}
	return 0;
}

/* Why an accelerator could not make the VM, for the user. */
static void
run_create_error(const struct vm_config *cfg, const struct accel_ops *a,
    int err)
{
	if (err == -ERANGE)
		return;	/* vm_create said which range */
	if (strcmp(a->name, "kvm") == 0 && (err == -ENOENT || err == -ENODEV ||
	    err == -ENXIO))
		log_warnx("no /dev/kvm on this host: KVM is not available "
		    "(use --accel bt for the software CPU)");
	else if (strcmp(a->name, "kvm") == 0 && err == -EACCES)
		log_warnx("/dev/kvm: permission denied (join the kvm group, "
		    "or use --accel bt)");
	else if (err == -ENOMEM)
		log_warnx("cannot allocate %llu MiB of guest memory",
		    (unsigned long long)(cfg->memory >> 20));
	else if (err == -ENOSYS)
		log_warnx("the %s accelerator is not available in this build",
		    a->name);
	else
		log_warnx("cannot create the VM on %s: %s", a->name,
		    strerror(-err));
}

/* Is err "this accelerator is not here", so auto may try the next? */
static bool
run_accel_absent(int err)
{
	return err == -ENOENT || err == -ENODEV || err == -ENXIO ||
	    err == -EACCES || err == -ENOSYS || err == -ENOTSUP;
}

static struct vm *
run_create(const struct vm_config *cfg)
{
	const struct accel_ops *a;
	struct vm *vm;
	int err = 0;

	if (strcmp(cfg->accel, "auto") != 0) {
		a = accel_find(cfg->accel);
		vm = vm_create(cfg, a, &err);
		if (vm == NULL)
			run_create_error(cfg, a, err);
		return vm;
	}
	/*
	 * A /dev/kvm on a CPU without VMX/SVM (a software KVM backend such
	 * as kvm_pvm) emulates guest kernel code an instruction at a time,
	 * thousands of times slower than the software CPU: auto takes KVM
	 * only where the CPU shows hardware virtualization.
	 */
	if (accel_host_has_hw_virt()) {
		a = accel_find("kvm");
		vm = vm_create(cfg, a, &err);
		if (vm != NULL || !run_accel_absent(err)) {
			if (vm == NULL)
				run_create_error(cfg, a, err);
			return vm;
		}
		log_info("KVM not available (%s): using the software CPU",
		    strerror(-err));
	} else {
		log_info("no VMX/SVM on this CPU: using the software CPU "
		    "(--accel kvm forces KVM)");
	}
	a = accel_find("bt");
	vm = vm_create(cfg, a, &err);
	if (vm == NULL)
		run_create_error(cfg, a, err);
	return vm;
}

/* The datastore lock of the VM being run (renewed from its event loop). */
static struct vmfs_lock *run_lock;

/* The datastore VM's name for its control socket ("" unnamed). */
static const char *run_name;
/* --datastore as given ("" = the default), for a migration's remote side. */
static const char *run_datastore = "";
/* The control server kept across guest resets (control_reset). */
static struct control *run_ctl;

/* Someone took our lease over: stop at once, we are no longer the owner. */
static void
run_lock_lost(void *opaque)
{
	log_warnx("the VM's lock was taken over by another host: stopping");
	vm_request_exit(opaque, VM_EVENT_ERROR, 1);
}

/* --incoming: the first run receives the VM instead of booting it. */
static const struct run_args *run_incoming;
static char run_vmdir[4096];
/* Its secret (tcp:), and the stream when it was opened before the VM
 * (the storage came with it: run_incoming_storage). */
static char run_secret[256];
static struct migrate_pre *run_pre;

static int
run_incoming_secret(const struct run_args *a)
{
	char err[512];

	if (a->secret_file[0] == '\0' || run_secret[0] != '\0')
		return 0;
	if (migrate_secret_read(a->secret_file, run_secret,
	    sizeof(run_secret), err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return -1;
	}
	return 0;
}

/* The VM could not be made from what the stream brought: undo it. */
static void
run_incoming_abort(const char *why)
{
	migrate_incoming_abort(run_pre, why);
	run_pre = NULL;
}

/*
 * The ssh session that brought the VM ends with the source: let it go,
 * the VM stays, its messages going where `vm start` puts them.
 */
static void
run_detach(void)
{
	char log[4200];
	int fd = open("/dev/null", O_RDWR), lfd = -1;

	if (run_vmdir[0] != '\0' && run_name[0] != '\0') {
		snprintf(log, sizeof(log), "%s/%s.log", run_vmdir, run_name);
		lfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	}
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(lfd >= 0 ? lfd : fd, 2);
		close(fd);
	}
	if (lfd >= 0)
		close(lfd);
	setsid();
}

/*
 * Receive a migrating VM into vm.  The datastore lock moves with it:
 * migrate_incoming() takes it into run_lock only after the source has
 * handed everything over and released it (see migrate_src.c).
 */
static int
run_receive(struct vm *vm)
{
	struct migrate_incoming in = { .uri = run_incoming->incoming,
	    .vmdir = run_vmdir[0] ? run_vmdir : NULL, .lockp = &run_lock,
	    .pre = run_pre };
	int r;

	run_pre = NULL;		/* migrate_incoming() frees it */
	if (in.pre == NULL && run_incoming_secret(run_incoming) < 0)
		return -1;
	in.secret = run_secret;
	r = migrate_incoming(vm, &in);
	explicit_bzero(run_secret, sizeof(run_secret));
	if (r == 0 && strcmp(in.uri, "-") == 0)
		run_detach();
	/* The source answers on the VM's control socket until it has told
	 * its clients "migrated": take the name over once it is gone.  The
	 * guest waits for this (part of the migration's downtime): look
	 * often, the source is gone within a few tens of ms. */
	for (int i = 0; r == 0 && run_name[0] != '\0' && i < 1000; i++) {
		struct control_conn cc;
		char cerr[256];

		if (control_client_open(&cc, run_name, cerr, sizeof(cerr)) < 0)
			break;
		control_client_close(&cc);
		usleep(5000);
	}
	run_incoming = NULL;
	return r;
}

/* Create, load and run the VM once; how it ended, or -1 (set-up error). */
static int
run_once(const struct vm_config *cfg, int *status)
{
	struct cpu_state bsp;
	struct control *ctl;
	struct vnc *vnc;
	char err[512];
	struct vm *vm;
	int how, r;

	if ((vm = run_create(cfg)) == NULL) {
		if (run_pre != NULL)
			run_incoming_abort("cannot create the VM from the copied "
			    "configuration (see the destination's log)");
		return -1;
	}
	if (run_incoming != NULL) {
		if (run_receive(vm) < 0) {
			vm_destroy(vm);
			return -1;
		}
		goto loaded;
	}
	if (cfg->ram_file[0] != '\0') {
		/* --restore: RAM is the snapshot's already; load the rest. */
		if (snapshot_restore_load(vm, err, sizeof(err)) < 0) {
			log_warnx("%s: %s", cfg->ram_file, err);
			vm_destroy(vm);
			return -1;
		}
	} else if ((r = boot_load(vm, cfg, &bsp, err, sizeof(err))) < 0) {
		log_warnx("%s", err);
		vm_destroy(vm);
		return -1;
	}
	if (cfg->ram_file[0] == '\0' &&
	    (r = vm->accel->set_state(vm->vcpus[0], &bsp)) < 0) {
		log_warnx("cannot set the boot CPU's state: %s", strerror(-r));
		vm_destroy(vm);
		return -1;
	}
loaded:
	if (run_lock != NULL &&
	    (r = vmfs_lock_attach(run_lock, vm->loop, run_lock_lost, vm)) < 0) {
		log_warnx("cannot renew the VM's lock: %s", strerror(-r));
		vm_destroy(vm);
		return -1;
	}
	vnc = vnc_start(vm, &r);
	if (r < 0) {
		if (run_lock != NULL)
			vmfs_lock_detach(run_lock);
		vm_destroy(vm);
		return -1;
	}
	ctl = run_ctl != NULL ? control_rebind(run_ctl, vm) :
	    control_start(vm, run_name);
	run_ctl = NULL;
	control_set_vnc_addr(ctl, vnc != NULL ? vnc_address(vnc) : NULL);
	migrate_source_set_lock(&run_lock, run_vmdir, run_name,
	    run_datastore);
	how = vm_run(vm);
	migrate_source_finish(vm);
	*status = vm->exit_status;
	if (how == VM_EVENT_RESET && !cfg->no_reboot)
		run_ctl = control_reset(ctl);	/* same socket after it */
	else
		control_stop(ctl, how, *status);
	/* A reboot keeps the VNC clients for the next boot's VM. */
	if (how == VM_EVENT_RESET && !cfg->no_reboot)
		vnc_park(vnc);
	else
		vnc_stop(vnc);
	if (run_lock != NULL)
		vmfs_lock_detach(run_lock);
	vm_destroy(vm);
	return how;
}

/*
 * --incoming NAME where the datastore has no NAME: open the stream now,
 * before the VM exists, and let it create the VM's directory (0 with
 * run_pre set, or -errno).  0 at once when NAME is here (the VM is made
 * first, and migrate_incoming() opens the stream).
 */
static int
run_incoming_storage(const struct run_args *a)
{
	struct migrate_incoming in = { .uri = a->incoming, .vmdir = run_vmdir,
	    .lockp = &run_lock };
	char vmx[4200];

	if (vmfs_vmx_path(a->datastore[0] ? a->datastore : NULL, a->name,
	    vmx, sizeof(vmx)) < 0 || access(vmx, F_OK) == 0 || errno != ENOENT)
		return 0;
	if (run_incoming_secret(a) < 0)
		return -EINVAL;
	in.secret = run_secret;
	return migrate_incoming_storage(&in, run_vmdir, &run_pre);
}

/* The datastore VM's configuration under the command line's options,
 * with its lock taken; 0, or the exit status. */
static int
run_datastore_vm(struct vm_config *cfg, const struct run_args *a,
    struct vmfs_lock **lock)
{
	struct vm_config *vmcfg = calloc(1, sizeof(*vmcfg));
	char err[512];
	int r;

	if (vmcfg == NULL)
		fatalx("out of memory");
	vmfs_vm_dir(a->datastore[0] ? a->datastore : NULL, a->name, run_vmdir,
	    sizeof(run_vmdir));
	/* An incoming VM runs elsewhere until the hand-over: its lock is
	 * taken then (migrate_incoming), not now.  One that is not here
	 * comes with its storage: the stream creates its directory. */
	if (a->incoming[0] != '\0') {
		if ((r = run_incoming_storage(a)) == 0)
			r = vmfs_load_vm(a->datastore[0] ? a->datastore : NULL,
			    a->name, vmcfg);
		if (r < 0 && run_pre != NULL)
			run_incoming_abort("cannot load the copied "
			    "configuration (see the destination's log)");
	} else
		r = vmfs_start_vm(a->datastore[0] ? a->datastore : NULL,
		    a->name, vmcfg, lock);
	if (r < 0) {
		free(vmcfg);
		return r == -EBUSY ? 1 : 2;
	}
	if (run_merge(vmcfg, cfg, a, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		if (run_pre != NULL)
			run_incoming_abort(err);
		if (*lock != NULL)
			vmfs_lock_release(*lock);
		*lock = NULL;
		free(vmcfg);
		return 2;
	}
	*cfg = *vmcfg;
	free(vmcfg);
	return 0;
}

int
run_main(int argc, char **argv)
{
	struct vm_config *cfg = calloc(1, sizeof(*cfg));
	struct vmfs_lock *lock = NULL;
	struct run_args a;
	char err[512];
	int r, status = 0, how;

	if (cfg == NULL)
		fatalx("out of memory");
	r = run_parse_args(argc, argv, cfg, &a, err, sizeof(err));
	if (r != 0) {
		if (r < 0)
			log_warnx("%s", err);
		free(cfg);
		return r < 0 ? 2 : 0;
	}
	log_init("termvisor", cfg->verbose);
	if (a.name[0] != '\0' && (r = run_datastore_vm(cfg, &a, &lock)) != 0) {
		free(cfg);
		return r;
	}
	if (a.restore[0] != '\0' &&
	    snapshot_restore_prepare(a.restore, cfg, err, sizeof(err)) < 0) {
		log_warnx("%s: %s", a.restore, err);
		if (lock != NULL)
			vmfs_lock_release(lock);
		free(cfg);
		return 2;
	}
	if (a.incoming[0] != '\0') {
		run_incoming = &a;
		/* The source runs the VM on the same images until the
		 * hand-over; copied storage is ours already. */
		cfg->disks_inactive = run_pre == NULL;
		/* stdin and stdout carry the stream */
		if (strcmp(a.incoming, "-") == 0)
			snprintf(cfg->serial, sizeof(cfg->serial), "none");
	}
	run_datastore = a.datastore;
	/* Migration may hand the lock over (run_lock becomes NULL) or take
	 * it back (a new one): run_lock is the one to release. */
	run_lock = lock;
	for (;;) {
		run_name = a.name;
		how = run_once(cfg, &status);
		cfg->ram_file[0] = '\0';	/* a reboot boots afresh */
		cfg->disks_inactive = false;
		if (how < 0) {
			status = 2;
			break;
		}
		if (how != VM_EVENT_RESET || cfg->no_reboot)
			break;
		log_info("guest reset: restarting");
	}
	control_stop(run_ctl, VM_EVENT_ERROR, status);	/* a restart failed */
	if (run_lock != NULL)
		vmfs_lock_release(run_lock);
	free(cfg);
	return status;
}
