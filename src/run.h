#ifndef TV_RUN_H
#define TV_RUN_H

#include <stddef.h>
#include <stdint.h>

struct vm_config;

/* What the command line said besides the VM's configuration. */
struct run_args {
	char name[64];		/* a datastore VM, or "" */
	char datastore[4096];	/* "" = the default datastore */
	unsigned set;		/* RUN_SET_* options given explicitly */
	char incoming[512];	/* --incoming URI: receive a migrating VM */
	char secret_file[4096];	/* --secret-file for --incoming tcp: */
	char restore[4096];	/* --restore FILE: resume a snapshot file */
};

enum {
	RUN_SET_KERNEL = 1 << 0, RUN_SET_INITRD = 1 << 1,
	RUN_SET_APPEND = 1 << 2, RUN_SET_MEMORY = 1 << 3,
	RUN_SET_CPUS = 1 << 4, RUN_SET_ACCEL = 1 << 5,
	RUN_SET_NO_REBOOT = 1 << 6, RUN_SET_DEBUG_EXIT = 1 << 7,
	RUN_SET_VNC = 1 << 8, RUN_SET_VNC_PASSWORD = 1 << 9,
	RUN_SET_DISPLAY = 1 << 10, RUN_SET_ON_PANIC = 1 << 11,
	RUN_SET_RNG = 1 << 12,
};

/*
 * Parse `termvisor run` arguments (argv[0] is "run") into cfg, starting
 * from defaults, and *a.  Returns 0, 1 when --help was printed, or -1
 * with a one-line message in err.  Without --kernel or NAME, cfg is the
 * reference guest.
 */
int run_parse_args(int argc, char **argv, struct vm_config *cfg,
    struct run_args *a, char *err, size_t errlen);
/* Lay the options set on the command line (cmd, a->set) over vm. */
int run_merge(struct vm_config *vm, const struct vm_config *cmd,
    const struct run_args *a, char *err, size_t errlen);
/* "512M", "2G", "1024" (MiB): bytes, or 0 on a malformed size. */
uint64_t run_parse_size(const char *s);
/* The reference guest's cache directory (make guest puts it there). */
void run_guest_dir(char *buf, size_t len);
/* `termvisor run ...`: the process's exit status. */
int run_main(int argc, char **argv);

#endif
