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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hv/accel.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "devices/virtio_blk.h"
#include "migrate/migrate.h"
#include "migrate/snapfile.h"
#include "util/evloop.h"
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

/* Does the host CPU show VMX or SVM?  (run.c's rule for --accel auto:
 * a /dev/kvm without them is a software KVM, slower than our own CPU.) */
static bool
snapshot_hw_virt(void)
{
	char line[4096];
	bool yes = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (f == NULL)
		return true;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "flags", 5) == 0) {
			yes = strstr(line, " vmx") != NULL ||
			    strstr(line, " svm") != NULL;
			break;
		}
	fclose(f);
	return yes;
}

static struct vm *
snapshot_check_create(const struct vm_config *cfg, const char *accel,
    int *errp)
{
	const struct accel_ops *a = accel_find(accel);

	if (a == NULL) {
		*errp = -ENOSYS;
		return NULL;
	}
	return vm_create(cfg, a, errp);
}

/* The VM the restore would make, on the accelerator it would pick. */
static struct vm *
snapshot_check_vm(const struct vm_config *cfg, int *errp)
{
	struct vm *vm;

	if (strcmp(cfg->accel, "auto") != 0)
		return snapshot_check_create(cfg, cfg->accel, errp);
	if (snapshot_hw_virt()) {
		vm = snapshot_check_create(cfg, "kvm", errp);
		if (vm != NULL || (*errp != -ENOENT && *errp != -ENODEV &&
		    *errp != -ENXIO && *errp != -EACCES && *errp != -ENOSYS &&
		    *errp != -ENOTSUP))
			return vm;
	}
	return snapshot_check_create(cfg, "bt", errp);
}

int
snapshot_restore_check(const char *path, struct vm_config *cfg, char *err,
    size_t errlen)
{
	struct vm *vm;
	int r = 0;

	if ((r = snapshot_restore_prepare(path, cfg, err, errlen)) < 0)
		return r;
	/* Nothing of it may reach the outside: no console; VNC is started
	 * by run.c, not here; NICs connect from the VM's loop, which never
	 * runs here. */
	snprintf(cfg->serial, sizeof(cfg->serial), "none");
	for (int i = 0; i < cfg->ndisks; i++)
		cfg->disks[i].readonly = true;
	if ((vm = snapshot_check_vm(cfg, &r)) == NULL) {
		snprintf(err, errlen, "cannot create the VM to check it on: %s",
		    strerror(-r));
		free(snapshot_restore_state);
		snapshot_restore_state = NULL;
		return r;
	}
	r = snapfile_load(vm, snapshot_restore_state, &snapshot_restore_info,
	    err, errlen);
	free(snapshot_restore_state);
	snapshot_restore_state = NULL;
	vm_destroy(vm);
	return r;
}

/* The child writing a snapshot's RAM, reaped from the event loop. */
struct snapshot_child {
	struct vm *vm;
	pid_t pid;
	int pidfd;
	char tmp[4200];
};

static void
snapshot_reap(void *opaque, int fd)
{
	struct snapshot_child *c = opaque;
	int status;

	if (waitpid(c->pid, &status, WNOHANG) != c->pid)
		return;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log_warnx("snapshot: writing guest memory to %s failed (%s)",
		    c->tmp, WIFEXITED(status) ? strerror(WEXITSTATUS(status)) :
		    "killed");
		unlink(c->tmp);
	}
	evloop_del_fd(c->vm->loop, c->pidfd);
	close(c->pidfd);
	free(c);
}

/* Reap pid from the event loop; without a pidfd, wait for it now. */
static void
snapshot_watch(struct vm *vm, pid_t pid, const char *path)
{
	struct snapshot_child *c = calloc(1, sizeof(*c));
	int status;

	if (c != NULL) {
		c->vm = vm;
		c->pid = pid;
		snprintf(c->tmp, sizeof(c->tmp), "%s.tmp", path);
		c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (c->pidfd >= 0 && evloop_add_fd(vm->loop, c->pidfd,
		    snapshot_reap, c) == 0)
			return;
		if (c->pidfd >= 0)
			close(c->pidfd);
	}
	pthread_mutex_unlock(&vm->devlock);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&vm->devlock);
	if (c != NULL && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		unlink(c->tmp);
	free(c);
}

/* Put disks 0..n-1 back on the images they used before. */
static void
snapshot_disks_back(struct vm *vm, char (*old)[4096], int n)
{
	char msg[512];

	for (int i = 0; i < n; i++)
		if (virtio_blk_reopen(vm, i, old[i], "", NULL, 0, msg,
		    sizeof(msg)) < 0)
			log_warnx("disk %d: %s", i, msg);
}

int
snapshot_take_running(struct vm *vm, const char *path, const char *name,
    const char *const *overlays, int n, uint64_t *paused_ns, char *err,
    size_t errlen)
{
	char (*old)[4096] = NULL;
	bool resumed = false;
	pid_t child = -1;
	int i, r = 0;

	*paused_ns = 0;
	/* A migration copying the storage reads the disks through their
	 * handles, which the overlays would replace under it. */
	if (n > 0 && migrate_source_active()) {
		snprintf(err, errlen, "a migration is running: take the "
		    "snapshot once it has ended");
		return -EBUSY;
	}
	if (n != vm->cfg->ndisks) {
		snprintf(err, errlen, "the VM has %d disks, %d overlays given",
		    vm->cfg->ndisks, n);
		return -EINVAL;
	}
	if (n > 0 && (old = calloc((size_t)n, sizeof(*old))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((r = vm_pause(vm, 5000)) < 0) {
		snprintf(err, errlen, "a vCPU did not stop within 5 s; the VM "
		    "goes on running");
		free(old);
		return r;
	}
	/* Disks first, so that the state saved next goes with them. */
	for (i = 0; i < n && r == 0; i++)
		r = virtio_blk_reopen(vm, i, overlays[i], "qcow2", old[i],
		    sizeof(old[i]), err, errlen);
	if (r < 0)
		snapshot_disks_back(vm, old, i - 1);
	else if ((r = snapfile_write(vm, path, name, true, &child, &resumed,
	    paused_ns, err, errlen)) < 0 && !resumed)
		snapshot_disks_back(vm, old, n);
	if (r == 0)
		snapshot_watch(vm, child, path);
	/*
	 * The overlays are the disks for good now: a guest reset makes
	 * run.c create the VM again from this configuration, which must
	 * not open the frozen images for writing.
	 */
	for (i = 0; i < n && (r == 0 || resumed); i++) {
		struct vmcfg_disk *d = (struct vmcfg_disk *)&vm->cfg->disks[i];

		snprintf(d->path, sizeof(d->path), "%s", overlays[i]);
		snprintf(d->format, sizeof(d->format), "qcow2");
	}
	if (r < 0 && resumed && n > 0) {
		/* The guest has written to the overlays: they stay. */
		size_t l = strlen(err);

		snprintf(err + l, errlen - l, " (the disks write to the new "
		    "overlays now)");
	}
	if (!resumed)
		vm_resume(vm);
	free(old);
	return r;
}
