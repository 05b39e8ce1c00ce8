/*
 * The datastore: a directory holding one directory per VM
 * (NAME/NAME.vmx, its disks, its lock), and the `termvisor vm` and
 * `termvisor disk` commands.
 */
#ifndef TV_VMFS_H
#define TV_VMFS_H

#include <stddef.h>

#include "hv/vmconfig.h"

#define VMFS_NAME_MAX 63

/* 0 if name can name a VM (1-63 bytes, no '/', no control characters,
 * not starting with '.' or '-'), else -EINVAL. */
int vmfs_name_valid(const char *name);
/*
 * The datastore directory: $TERMVISOR_DATASTORE, else
 * $XDG_DATA_HOME/termvisor, else ~/.local/share/termvisor.  0/-errno.
 */
int vmfs_datastore_default(char *buf, size_t len);
/* DATASTORE/NAME and DATASTORE/NAME/NAME.vmx (datastore NULL: default). */
int vmfs_vm_dir(const char *datastore, const char *name, char *buf,
    size_t len);
int vmfs_vmx_path(const char *datastore, const char *name, char *buf,
    size_t len);
/*
 * Load VM name's configuration from the datastore (NULL: default), with
 * paths resolved against the VM's directory.  0/-errno; the reason is
 * logged with log_warnx (file:line for config errors).
 */
int vmfs_load_vm(const char *datastore, const char *name,
    struct vm_config *out);
struct vmfs_lock;
/*
 * What `termvisor run NAME` does first: take the VM's lock (refused,
 * naming who holds it, if the VM runs elsewhere), then load its
 * configuration.  0 with *lock held (renew it with vmfs_lock_attach,
 * drop it with vmfs_lock_release when the VM stops) and *out filled;
 * -errno with the reason logged.
 */
int vmfs_start_vm(const char *datastore, const char *name,
    struct vm_config *out, struct vmfs_lock **lock);
/*
 * Parse a --disk argument "FILE[,format=raw|qcow2][,readonly=on|off]
 * [,serial=S]" into d.  0, or -EINVAL with a sentence in err.
 */
int vmfs_parse_disk_arg(const char *arg, struct vmcfg_disk *d, char *err,
    size_t errlen);

/*
 * `termvisor vm ...` and `termvisor disk ...`: argv[0] is the subcommand
 * word ("create", "list", ...).  Exit status: 0 ok, 1 failed, 2 usage.
 */
int vmfs_cli_vm(int argc, char **argv);
int vmfs_cli_disk(int argc, char **argv);

#endif
