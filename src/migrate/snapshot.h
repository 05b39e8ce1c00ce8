/*
 * Snapshots of datastore VMs: a tree per VM (snapshot_cli.c: `termvisor
 * snapshot take|list|revert|delete`) whose nodes hold disk state (the
 * disks as they were, frozen under qcow2 overlays) and, for a VM that
 * was running, a snapshot file (snapfile.h) with its memory and device
 * state.  This header is the side inside the VM process: taking a
 * running VM's snapshot (control command snapshot-take) and resuming
 * one (`termvisor run --restore FILE`).
 */
#ifndef TV_SNAPSHOT_H
#define TV_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct vm_config;

/*
 * --restore: open and check snapshot file path and point cfg at it (its
 * RAM is mapped from the file, its memory size is the snapshot's).  The
 * state stream is kept for snapshot_restore_load().  0 or -errno, err.
 */
int snapshot_restore_prepare(const char *path, struct vm_config *cfg,
    char *err, size_t errlen);
/* Load the state kept by snapshot_restore_prepare into vm (made from
 * that cfg); on failure vm must not run.  0 or -errno, err set. */
int snapshot_restore_load(struct vm *vm, char *err, size_t errlen);
/*
 * Would `termvisor run --restore path` resume here with cfg (the VM's
 * configuration, disks pointed at the images the restore will read)?
 * Every check the restore makes (the file, the accelerator, the CPU
 * features the guest was given, the VM's shape and devices) is made on
 * a VM created for the purpose and never run, so that a revert can be
 * refused while the running VM is still untouched.  cfg's disks are
 * opened read-only.  0 or -errno with the reason in err.
 */
int snapshot_restore_check(const char *path, struct vm_config *cfg,
    char *err, size_t errlen);

/*
 * Take a snapshot file of the running vm at path.  The VM is paused;
 * its n disks (n must be its disk count) switch to overlays[i], qcow2
 * overlays the caller made over their current images, so that those
 * stay as they are now; its state is saved and its RAM forked off, and
 * the guest runs again while a child writes the RAM (snapfile_write).
 * This returns then: path appears once the child is done (the event
 * loop reaps it; path.tmp is removed if it failed).
 * Called on the event thread with the device lock held.  *paused_ns:
 * how long the guest was stopped.  0 or -errno with err set; when the
 * guest already ran on the overlays, err says so and they stay.
 */
int snapshot_take_running(struct vm *vm, const char *path, const char *name,
    const char *const *overlays, int n, uint64_t *paused_ns, char *err,
    size_t errlen);

/* `termvisor snapshot ...` (argv[0] is the subcommand): exit status. */
int snapshot_cli_main(int argc, char **argv);

#endif
