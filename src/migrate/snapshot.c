/*
 * Snapshots inside the VM process: take one of the running VM (control
 * command snapshot-take) and resume one (`termvisor run --restore`).
 */
#include "migrate/snapshot.h"

#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/snapfile.h"
#include "util/log.h"

/* What --restore opened, until the VM exists to load it into. */
static struct snapfile_info snapshot_restore_info;
static uint8_t *snapshot_restore_state;

int
snapshot_restore_prepare(const char *path, struct vm_config *cfg,
    char *err, size_t errlen)
{
	char abs[PATH_MAX];
	int r;

	if (realpath(path, abs) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -errno;
	}
	free(snapshot_restore_state);
	snapshot_restore_state = NULL;
	if ((r = snapfile_open(abs, &snapshot_restore_info,
	    &snapshot_restore_state, err, errlen)) < 0)
		return r;
	if (strlen(abs) >= sizeof(cfg->ram_file)) {
		snprintf(err, errlen, "path too long");
		return -ENAMETOOLONG;
	}
	if (cfg->memory != snapshot_restore_info.ram_size)
		log_info("memory: %llu MiB, as in the snapshot",
		    (unsigned long long)(snapshot_restore_info.ram_size >> 20));
	cfg->memory = snapshot_restore_info.ram_size;
	snprintf(cfg->ram_file, sizeof(cfg->ram_file), "%s", abs);
	cfg->ram_file_offset = snapshot_restore_info.ram_offset;
	return 0;
}

int
snapshot_restore_load(struct vm *vm, char *err, size_t errlen)
{
	int r;

	if (snapshot_restore_state == NULL) {
		snprintf(err, errlen, "no snapshot state to load");
		return -EINVAL;
	}
	r = snapfile_load(vm, snapshot_restore_state, &snapshot_restore_info,
	    err, errlen);
	free(snapshot_restore_state);
	snapshot_restore_state = NULL;
	if (r == 0)
		log_info("resumed the snapshot taken under %s",
		    snapshot_restore_info.accel);
	return r;
}

int
snapshot_take_running(struct vm *vm, const char *path, const char *name,
    uint64_t *paused_ns, char *err, size_t errlen)
{
	bool resumed = false;
	int r;

	*paused_ns = 0;
	if (vm->cfg->ndisks > 0) {
		/* XXX: switching a running VM's disks to overlays needs the
		 * block device to be reopened under the paused guest. */
		snprintf(err, errlen, "the VM has disks: their state cannot "
		    "be frozen while it runs yet (stop it first)");
		return -ENOTSUP;
	}
	if ((r = vm_pause(vm, 5000)) < 0) {
		snprintf(err, errlen, "a vCPU did not stop within 5 s; the VM "
		    "goes on running");
		return r;
	}
	r = snapfile_write(vm, path, name, true, &resumed, paused_ns, err,
	    errlen);
	if (!resumed)
		vm_resume(vm);
	return r;
}
