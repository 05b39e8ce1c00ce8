/*
 * `termvisor snapshot take|list|revert|delete VM NAME`: the snapshot tree
 * of a datastore VM (termvisor(1), SNAPSHOTS).
 *
 * The tree lives in VMDIR/snapshots.json; a snapshot of a running VM
 * also has VMDIR/snapshots/NAME.tvsnap (termvisor.snapshot(5)).  Disks
 * follow VMware's scheme: taking a snapshot freezes each disk's current
 * image (the snapshot records it) and puts a new qcow2 overlay on top
 * for the VM to write; reverting puts a fresh overlay over the frozen
 * images, and the discarded overlay is deleted.  Deleting a snapshot
 * keeps every image some other snapshot or the VM still reads through
 * a backing chain (overlays are not merged).
 */
#include "migrate/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control/control_client.h"
#include "hv/vmconfig.h"
#include "util/log.h"
#include "vmfs/blkdev.h"
#include "vmfs/qcow2.h"
#include "vmfs/vmfs.h"
#include "vmfs/vmfs_lock.h"
#include "vmfs/vmx.h"

#define SNAPSHOT_TREE_VERSION	1
#define SNAPSHOT_MAX		256
#define SNAPSHOT_WAIT_MS	30000

static const char snapshot_usage[] =
"usage: termvisor snapshot take [-d DIR] VM NAME\n"
"       termvisor snapshot list [-d DIR] VM\n"
"       termvisor snapshot revert [-d DIR] VM NAME\n"
"       termvisor snapshot delete [-d DIR] VM NAME\n"
"\n"
"A tree of snapshots of the datastore VM VM.  Each holds the VM's disks\n"
"as they were (the VM goes on writing to qcow2 overlays over them) and,\n"
"when VM was running, its memory and device state.\n"
"\n"
"  take     snapshot VM now (a running VM is paused only briefly); the\n"
"           new snapshot's parent is the one the VM's state came from\n"
"  list     the tree, oldest first; * marks the current state's parent\n"
"  revert   go back to NAME: a running VM is stopped; a snapshot of a\n"
"           running VM is resumed where it was, in the background.  A\n"
"           revert that would be refused (CPU features, configuration)\n"
"           is refused first, the VM running on\n"
"  delete   forget NAME and free what only it used\n"
"\n"
"  -d, --datastore DIR  the datastore holding VM\n"
"  -h, --help           this help\n"
"\n"
"Exit status: 0 done, 1 failed, 2 usage.\n";

struct snapshot_ctx {
	const char *datastore;	/* NULL: the default */
	const char *vm;
	char dir[PATH_MAX];	/* the VM's directory */
	char tree_path[PATH_MAX + 32];
	json_t *tree;		/* {"version", "current", "snapshots": [...]} */
	struct vmx_doc vmx;
	char vmx_path[PATH_MAX + 80];
};

/* --- the tree file --- */

static json_t *
snapshot_list_of(struct snapshot_ctx *x)
{
	return json_object_get(x->tree, "snapshots");
}

static json_t *
snapshot_find(struct snapshot_ctx *x, const char *name)
{
	size_t i;
	json_t *s;

	json_array_foreach(snapshot_list_of(x), i, s)
		if (strcmp(json_string_value(json_object_get(s, "name")),
		    name) == 0)
			return s;
	return NULL;
}

static const char *
snapshot_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Check what was read: types, names, parents that exist, no loops. */
static int
snapshot_tree_check(struct snapshot_ctx *x)
{
	json_t *list = snapshot_list_of(x), *s, *cur, *d;
	size_t i, k;

	if (!json_is_object(x->tree) || !json_is_array(list) ||
	    json_integer_value(json_object_get(x->tree, "version")) !=
	    SNAPSHOT_TREE_VERSION || json_array_size(list) > SNAPSHOT_MAX)
		return -EINVAL;
	json_array_foreach(list, i, s) {
		const char *n = snapshot_str(s, "name");
		json_t *par = json_object_get(s, "parent");
		json_t *mem = json_object_get(s, "memory");

		if (n == NULL || vmfs_name_valid(n) != 0 ||
		    !json_is_integer(json_object_get(s, "time")) ||
		    !(json_is_null(par) || (json_is_string(par) &&
		    snapshot_find(x, json_string_value(par)) != NULL)) ||
		    !(json_is_null(mem) || json_is_string(mem)) ||
		    !json_is_array(json_object_get(s, "disks")))
			return -EINVAL;
		json_array_foreach(json_object_get(s, "disks"), k, d)
			if (!json_is_string(d))
				return -EINVAL;
		for (k = 0; json_is_string(par) && k <= SNAPSHOT_MAX; k++)
			par = json_object_get(snapshot_find(x,
			    json_string_value(par)), "parent");
		if (k > SNAPSHOT_MAX)
			return -EINVAL;	/* a loop */
	}
	cur = json_object_get(x->tree, "current");
	if (!json_is_null(cur) && !(json_is_string(cur) &&
	    snapshot_find(x, json_string_value(cur)) != NULL))
		return -EINVAL;
	return 0;
}

static int
snapshot_tree_load(struct snapshot_ctx *x)
{
	json_error_t je;

	snprintf(x->tree_path, sizeof(x->tree_path), "%s/snapshots.json",
	    x->dir);
	if (access(x->tree_path, F_OK) != 0) {
		x->tree = json_pack("{s:i, s:n, s:[]}", "version",
		    SNAPSHOT_TREE_VERSION, "current", "snapshots");
		return x->tree != NULL ? 0 : -ENOMEM;
	}
	x->tree = json_load_file(x->tree_path, JSON_REJECT_DUPLICATES, &je);
	if (x->tree == NULL) {
		log_warnx("%s:%d: %s", x->tree_path, je.line, je.text);
		return -EINVAL;
	}
	if (snapshot_tree_check(x) < 0) {
		log_warnx("%s: not a snapshot tree this version understands",
		    x->tree_path);
		return -EINVAL;
	}
	return 0;
}

static int
snapshot_tree_save(struct snapshot_ctx *x)
{
	char tmp[sizeof(x->tree_path) + 8];

	snprintf(tmp, sizeof(tmp), "%s.tmp", x->tree_path);
	if (json_dump_file(x->tree, tmp, JSON_INDENT(1) | JSON_SORT_KEYS) < 0 ||
	    rename(tmp, x->tree_path) < 0) {
		log_warn("%s", x->tree_path);
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

/* --- the VM --- */

static int
snapshot_open(struct snapshot_ctx *x)
{
	char err[1024];

	if (vmfs_name_valid(x->vm) != 0 ||
	    vmfs_vm_dir(x->datastore, x->vm, x->dir, sizeof(x->dir)) < 0 ||
	    vmfs_vmx_path(x->datastore, x->vm, x->vmx_path,
	    sizeof(x->vmx_path)) < 0 || access(x->vmx_path, R_OK) != 0) {
		log_warnx("%s: no such VM in the datastore", x->vm);
		return -ENOENT;
	}
	if (vmx_load(&x->vmx, x->vmx_path, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return -EINVAL;
	}
	return snapshot_tree_load(x);
}

static void
snapshot_close(struct snapshot_ctx *x)
{
	vmx_free(&x->vmx);
	json_decref(x->tree);
}

static int
snapshot_ndisks(struct snapshot_ctx *x)
{
	char key[32];
	int n = 0;

	for (;;) {
		snprintf(key, sizeof(key), "disk%d.path", n);
		if (vmx_get(&x->vmx, key) == NULL)
			return n;
		n++;
	}
}

/* A path as the VM directory's files name it: absolute, or relative to
 * the VM's directory. */
static void
snapshot_abs(struct snapshot_ctx *x, const char *p, char *out, size_t len)
{
	int n = p[0] == '/' ? snprintf(out, len, "%s", p) :
	    snprintf(out, len, "%s/%s", x->dir, p);

	if (n < 0 || (size_t)n >= len)
		out[0] = '\0';	/* too long: names nothing */
}

/* Is the VM's control socket answering? */
static bool
snapshot_running(struct snapshot_ctx *x)
{
	struct control_conn cc;
	char err[256];

	if (control_client_open(&cc, x->vm, err, sizeof(err)) < 0)
		return false;
	control_client_close(&cc);
	return true;
}

static int
snapshot_call(struct snapshot_ctx *x, const char *cmd, json_t *args,
    int timeout_ms, json_t **res)
{
	struct control_conn cc;
	char err[512];
	int r;

	if ((r = control_client_open(&cc, x->vm, err, sizeof(err))) < 0) {
		json_decref(args);
		log_warnx("%s", err);
		return r;
	}
	r = control_client_call(&cc, cmd, args, timeout_ms, res, err,
	    sizeof(err));
	control_client_close(&cc);
	if (r < 0)
		log_warnx("%s: %s", x->vm, err);
	return r;
}

/*
 * A new qcow2 overlay over image (a path as the .vmx holds it), in the
 * VM's directory; its name (relative) goes to out.
 */
static int
snapshot_overlay(struct snapshot_ctx *x, int disk, const char *image,
    char *out, size_t len)
{
	struct qcow2_create_opts o = { 0 };
	char base[PATH_MAX], path[PATH_MAX + 64], fmt[8], err[1024];
	struct timespec ts;
	struct blkdev *bd;
	uint64_t size;

	snapshot_abs(x, image, base, sizeof(base));
	if (blkdev_probe(base, fmt, sizeof(fmt)) < 0) {
		log_warn("%s", base);
		return -EIO;
	}
	/* Its size without its lock: a running VM holds that. */
	if (blkdev_open(&bd, base, fmt, BLKDEV_RDONLY | BLKDEV_NOLOCK, err,
	    sizeof(err)) < 0) {
		log_warnx("%s", err);
		return -EIO;
	}
	size = blkdev_length(bd);
	blkdev_close(bd);
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, len, "%s-disk%d-%llx.qcow2", x->vm, disk,
	    (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec);
	snprintf(path, sizeof(path), "%s/%s", x->dir, out);
	/* Relative when both are in the VM's directory: it can move. */
	o.backing = strncmp(base, x->dir, strlen(x->dir)) == 0 &&
	    base[strlen(x->dir)] == '/' && strchr(base + strlen(x->dir) + 1,
	    '/') == NULL ? base + strlen(x->dir) + 1 : base;
	o.backing_format = fmt;
	if (qcow2_create(path, size, &o, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return -EIO;
	}
	return 0;
}

/* Point disk i of the .vmx at file (qcow2, in the VM's directory). */
static int
snapshot_set_disk(struct snapshot_ctx *x, int i, const char *file)
{
	char key[32];
	int r;

	snprintf(key, sizeof(key), "disk%d.path", i);
	if ((r = vmx_set(&x->vmx, key, file)) < 0)
		return r;
	snprintf(key, sizeof(key), "disk%d.format", i);
	return vmx_set(&x->vmx, key, "qcow2");
}

static const char *
snapshot_disk(struct snapshot_ctx *x, int i)
{
	char key[32];

	snprintf(key, sizeof(key), "disk%d.path", i);
	return vmx_get(&x->vmx, key);
}

/* Is file (a .vmx-style path) a frozen image of some snapshot? */
static bool
snapshot_frozen(struct snapshot_ctx *x, const char *file)
{
	size_t i, k;
	json_t *s, *d;

	json_array_foreach(snapshot_list_of(x), i, s)
		json_array_foreach(json_object_get(s, "disks"), k, d)
			if (strcmp(json_string_value(d), file) == 0)
				return true;
	return false;
}

/* --- take --- */

/* A new overlay over every disk's current image into made[]; the
 * images' names go to frozen.  On failure none is left. */
static int
snapshot_make_overlays(struct snapshot_ctx *x, json_t *frozen,
    char (*made)[128], int n)
{
	char path[PATH_MAX + 200];
	int i;

	for (i = 0; i < n; i++) {
		const char *cur = snapshot_disk(x, i);

		json_array_append_new(frozen, json_string(cur));
		if (snapshot_overlay(x, i, cur, made[i], sizeof(made[i])) < 0)
			break;
	}
	if (i == n)
		return 0;
	while (--i >= 0) {
		snapshot_abs(x, made[i], path, sizeof(path));
		unlink(path);
	}
	return -EIO;
}

/* Point the .vmx's disks at the overlays and save it. */
static int
snapshot_use_overlays(struct snapshot_ctx *x, char (*made)[128], int n)
{
	for (int i = 0; i < n; i++)
		if (snapshot_set_disk(x, i, made[i]) < 0)
			return -ENOMEM;
	if (vmx_save(&x->vmx, x->vmx_path) < 0) {
		log_warn("%s", x->vmx_path);
		return -EIO;
	}
	return 0;
}

static void
snapshot_drop_overlays(struct snapshot_ctx *x, char (*made)[128], int n)
{
	char path[PATH_MAX + 200];

	for (int i = 0; i < n; i++) {
		snapshot_abs(x, made[i], path, sizeof(path));
		unlink(path);
	}
}

/* The VM's child writing the memory renames mem.tmp to mem when done,
 * and the VM removes mem.tmp if it failed. */
static int
snapshot_wait_file(struct snapshot_ctx *x, const char *mem)
{
	char tmp[PATH_MAX + 80];
	struct timespec t0, t1;

	snprintf(tmp, sizeof(tmp), "%s.tmp", mem);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int ms = 0; ms < 600000; ms += 50) {
		if (access(mem, F_OK) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			printf("memory written in %.1f s\n", (double)(t1.tv_sec -
			    t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
			return 0;
		}
		if (access(tmp, F_OK) != 0 && access(mem, F_OK) != 0) {
			log_warnx("%s: writing the memory file failed (see %s/"
			    "%s.log)", x->vm, x->dir, x->vm);
			return -EIO;
		}
		poll(NULL, 0, 50);
	}
	log_warnx("%s: the memory file is not complete after 600 s", x->vm);
	return -ETIMEDOUT;
}

/* The running VM writes its memory file and moves onto the overlays. */
static int
snapshot_take_running_vm(struct snapshot_ctx *x, const char *name,
    const char *mem, char (*made)[128], int n)
{
	json_t *disks = json_array(), *res;
	char path[PATH_MAX + 200], err[512];
	struct control_conn cc;
	int r;

	for (int i = 0; i < n; i++) {
		snapshot_abs(x, made[i], path, sizeof(path));
		json_array_append_new(disks, json_string(path));
	}
	if ((r = control_client_open(&cc, x->vm, err, sizeof(err))) == 0) {
		r = control_client_call(&cc, "snapshot-take", json_pack(
		    "{s:s, s:s, s:o}", "file", mem, "name", name, "disks",
		    disks), 120000, &res, err, sizeof(err));
		control_client_close(&cc);
	} else {
		json_decref(disks);
	}
	if (r < 0) {
		log_warnx("%s: %s", x->vm, err);
		/* Once the guest wrote to the overlays they are its disks. */
		if (strstr(err, "overlays now") != NULL)
			snapshot_use_overlays(x, made, n);
		else
			snapshot_drop_overlays(x, made, n);
		return r;
	}
	printf("%s: the guest was paused %.1f ms; its memory is being "
	    "written\n", name, json_number_value(json_object_get(res,
	    "paused_ms")));
	json_decref(res);
	/* The disks moved whatever happens to the memory file. */
	if ((r = snapshot_use_overlays(x, made, n)) < 0)
		return r;
	return snapshot_wait_file(x, mem);
}

static int
snapshot_take(struct snapshot_ctx *x, const char *name)
{
	char mem[PATH_MAX + 64], rel[128], made[VMCFG_MAX_DISKS][128];
	json_t *frozen = json_array(), *res = NULL, *node;
	bool running = snapshot_running(x);
	int n = snapshot_ndisks(x);
	const char *accel = NULL;

	if (vmfs_name_valid(name) != 0 || snapshot_find(x, name) != NULL) {
		log_warnx("%s: %s", name, snapshot_find(x, name) ?
		    "a snapshot of that name exists" : "not a snapshot name");
		json_decref(frozen);
		return 1;
	}
	if (n > VMCFG_MAX_DISKS) {
		log_warnx("%s has %d disks (at most %d)", x->vm, n,
		    VMCFG_MAX_DISKS);
		json_decref(frozen);
		return 1;
	}
	if (snapshot_make_overlays(x, frozen, made, n) < 0) {
		json_decref(frozen);
		return 1;
	}
	if (running) {
		snprintf(rel, sizeof(rel), "snapshots/%s.tvsnap", name);
		snprintf(mem, sizeof(mem), "%s/snapshots", x->dir);
		mkdir(mem, 0700);
		snapshot_abs(x, rel, mem, sizeof(mem));
		if (snapshot_take_running_vm(x, name, mem, made, n) < 0) {
			json_decref(frozen);
			return 1;
		}
		if (snapshot_call(x, "status", NULL, 10000, &res) == 0) {
			accel = json_string_value(json_object_get(res, "accel"));
			accel = accel ? strdupa(accel) : NULL;
			json_decref(res);
		}
	} else if (snapshot_use_overlays(x, made, n) < 0) {
		snapshot_drop_overlays(x, made, n);
		json_decref(frozen);
		return 1;
	}
	node = json_pack("{s:s, s:O, s:I, s:s?, s:s?, s:o}", "name", name,
	    "parent", json_object_get(x->tree, "current"),
	    "time", (json_int_t)time(NULL), "memory", running ? rel : NULL,
	    "accel", accel, "disks", frozen);
	if (node == NULL)
		fatalx("out of memory");
	if (!running)
		json_object_set_new(node, "memory", json_null());
	json_array_append_new(snapshot_list_of(x), node);
	json_object_set_new(x->tree, "current", json_string(name));
	if (snapshot_tree_save(x) < 0)
		return 1;
	printf("%s: snapshot of %s taken (%s)\n", name, x->vm, running ?
	    "running: memory, devices" : "disks");
	return 0;
}

/* --- list --- */

static void
snapshot_print(struct snapshot_ctx *x, const char *parent, int depth)
{
	const char *cur = json_string_value(json_object_get(x->tree,
	    "current"));
	size_t i;
	json_t *s;

	json_array_foreach(snapshot_list_of(x), i, s) {
		const char *p = snapshot_str(s, "parent");
		time_t t = (time_t)json_integer_value(json_object_get(s,
		    "time"));
		char when[32];

		if ((p == NULL) != (parent == NULL) ||
		    (p != NULL && strcmp(p, parent) != 0))
			continue;
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S",
		    localtime(&t));
		printf("%*s%s%-*s %s  %s\n", depth * 2, "",
		    cur && strcmp(cur, snapshot_str(s, "name")) == 0 ? "*" :
		    " ", 24 - depth * 2, snapshot_str(s, "name"), when,
		    json_is_string(json_object_get(s, "memory")) ?
		    "running" : "powered off");
		snapshot_print(x, snapshot_str(s, "name"), depth + 1);
	}
}

/* --- revert --- */

/* Power the VM off and wait until its process has gone. */
/* Until the VM's datastore lock is free: a VM process that is ending
 * closes its control socket before it releases the lock. */
static int
snapshot_wait_unlocked(struct snapshot_ctx *x)
{
	for (int ms = 0; ms < SNAPSHOT_WAIT_MS; ms += 50) {
		struct vmfs_lock_holder h;

		if (vmfs_lock_query(x->dir, &h) == 0)
			return 0;
		poll(NULL, 0, 50);
	}
	log_warnx("%s did not stop within %d s (its lock is still held)",
	    x->vm, SNAPSHOT_WAIT_MS / 1000);
	return -ETIMEDOUT;
}

static int
snapshot_stop(struct snapshot_ctx *x)
{
	json_t *res;

	if (snapshot_call(x, "stop", json_pack("{s:b}", "force", 1), 10000,
	    &res) < 0)
		return -EIO;
	json_decref(res);
	return snapshot_wait_unlocked(x);
}

/* `termvisor run --restore FILE VM`, detached as `vm start` runs it. */
static pid_t
snapshot_spawn(struct snapshot_ctx *x, const char *file, char *log,
    size_t loglen)
{
	pid_t pid;
	int fd;

	snprintf(log, loglen, "%s/%s.log", x->dir, x->vm);
	if ((pid = fork()) != 0)
		return pid;
	setsid();
	if ((fd = open("/dev/null", O_RDONLY)) >= 0)
		dup2(fd, 0);
	if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	close_range(3, ~0u, 0);
	if (x->datastore != NULL)
		execl("/proc/self/exe", "termvisor", "run", "--datastore",
		    x->datastore, "--restore", file, x->vm, (char *)NULL);
	else
		execl("/proc/self/exe", "termvisor", "run", "--restore", file,
		    x->vm, (char *)NULL);
	_exit(127);
}

/* The VM's last log lines from offset from, on stderr: why it failed. */
static void
snapshot_log_tail(const char *log, off_t from)
{
	char buf[2048];
	ssize_t n;
	int fd = open(log, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size - from > (off_t)sizeof(buf) - 1)
		from = st.st_size - (off_t)sizeof(buf) + 1;
	n = pread(fd, buf, sizeof(buf) - 1, from);
	close(fd);
	if (n > 0)
		fprintf(stderr, "%.*s", (int)n, buf);
}

/* Wait until the spawned VM answers as running, or its process ends. */
static int
snapshot_wait_running(struct snapshot_ctx *x, pid_t pid, const char *log,
    off_t from)
{
	int status;

	for (int ms = 0; ms < SNAPSHOT_WAIT_MS; ms += 100) {
		json_t *res;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			log_warnx("%s did not resume; from %s:", x->vm, log);
			snapshot_log_tail(log, from);
			return -EIO;
		}
		if (snapshot_running(x) && snapshot_call(x, "status", NULL,
		    5000, &res) == 0) {
			const char *st = snapshot_str(res, "state") ?
			    snapshot_str(res, "state") : "";
			/* A snapshot of a VM paused by a guest panic comes
			 * back paused, as it was. */
			bool up = strcmp(st, "running") == 0 ||
			    strcmp(st, "panicked") == 0;

			json_decref(res);
			if (up)
				return 0;
		}
		poll(NULL, 0, 100);
	}
	log_warnx("%s: not running after %d s (see %s)", x->vm,
	    SNAPSHOT_WAIT_MS / 1000, log);
	return -ETIMEDOUT;
}

/* New overlays over the snapshot's frozen images; the discarded
 * current ones are deleted. */
static int
snapshot_restore_disks(struct snapshot_ctx *x, json_t *snap)
{
	json_t *disks = json_object_get(snap, "disks");
	int n = snapshot_ndisks(x);
	char made[VMCFG_MAX_DISKS][128], old[VMCFG_MAX_DISKS][PATH_MAX];
	char path[PATH_MAX + 200];
	int i;

	if ((size_t)n != json_array_size(disks) || n > VMCFG_MAX_DISKS) {
		log_warnx("%s has %d disks, the snapshot %zu: cannot revert",
		    x->vm, n, json_array_size(disks));
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		snprintf(old[i], sizeof(old[i]), "%s", snapshot_disk(x, i));
		if (snapshot_overlay(x, i, json_string_value(
		    json_array_get(disks, i)), made[i], sizeof(made[i])) < 0)
			goto fail;
	}
	for (i = 0; i < n; i++)
		snapshot_set_disk(x, i, made[i]);
	if (vmx_save(&x->vmx, x->vmx_path) < 0) {
		log_warn("%s", x->vmx_path);
		i = n;
		goto fail;
	}
	for (i = 0; i < n; i++) {
		if (snapshot_frozen(x, old[i]) || strchr(old[i], '/') != NULL)
			continue;	/* still someone's, or not ours */
		snapshot_abs(x, old[i], path, sizeof(path));
		unlink(path);
	}
	return 0;
fail:
	while (--i >= 0) {
		snapshot_abs(x, made[i], path, sizeof(path));
		unlink(path);
	}
	return -EIO;
}

/*
 * Everything that could make the revert fail after the VM was stopped,
 * checked while it still runs: the disks the snapshot has, and for a
 * snapshot with memory (file), whether the restore would accept it here
 * (file intact, accelerator, CPU features, the VM's shape and devices)
 * on a VM made from today's configuration with the snapshot's disks.
 */
static int
snapshot_revert_check(struct snapshot_ctx *x, json_t *snap, const char *file)
{
	json_t *disks = json_object_get(snap, "disks");
	int n = snapshot_ndisks(x), r;
	struct vm_config *cfg;
	char err[512];

	if ((size_t)n != json_array_size(disks) || n > VMCFG_MAX_DISKS) {
		log_warnx("%s has %d disks, the snapshot %zu: cannot revert",
		    x->vm, n, json_array_size(disks));
		return -EINVAL;
	}
	if (file == NULL)
		return 0;
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return -ENOMEM;
	vm_config_defaults(cfg);
	if ((r = vmfs_load_vm(x->datastore, x->vm, cfg)) < 0) {
		free(cfg);
		return r;
	}
	for (int i = 0; i < n && i < cfg->ndisks; i++)
		snapshot_abs(x, json_string_value(json_array_get(disks, i)),
		    cfg->disks[i].path, sizeof(cfg->disks[i].path));
	if ((r = snapshot_restore_check(file, cfg, err, sizeof(err))) < 0)
		log_warnx("%s: cannot revert to %s (%s keeps running as it "
		    "is): %s", x->vm, snapshot_str(snap, "name"), x->vm, err);
	free(cfg);
	return r;
}

static int
snapshot_revert(struct snapshot_ctx *x, const char *name)
{
	json_t *s = snapshot_find(x, name);
	const char *mem;
	char file[PATH_MAX + 64], log[PATH_MAX + 64];
	struct stat st;
	off_t from;
	pid_t pid;

	if (s == NULL) {
		log_warnx("%s has no snapshot %s", x->vm, name);
		return 1;
	}
	mem = snapshot_str(s, "memory");
	if (mem != NULL)
		snapshot_abs(x, mem, file, sizeof(file));
	/* Refuse before the current state is lost. */
	if (snapshot_revert_check(x, s, mem != NULL ? file : NULL) < 0)
		return 1;
	if (snapshot_running(x) && snapshot_stop(x) < 0)
		return 1;
	/* Not answering is not gone: one still ending holds the lock. */
	if (snapshot_wait_unlocked(x) < 0)
		return 1;
	if (snapshot_restore_disks(x, s) < 0)
		return 1;
	json_object_set_new(x->tree, "current", json_string(name));
	if (snapshot_tree_save(x) < 0)
		return 1;
	if (mem == NULL) {
		printf("%s: reverted to %s (powered off)\n", x->vm, name);
		return 0;
	}
	snprintf(log, sizeof(log), "%s/%s.log", x->dir, x->vm);
	from = stat(log, &st) == 0 ? st.st_size : 0;
	if ((pid = snapshot_spawn(x, file, log, sizeof(log))) < 0 ||
	    snapshot_wait_running(x, pid, log, from) < 0)
		return 1;
	printf("%s: reverted to %s and running (log %s)\n", x->vm, name, log);
	return 0;
}

/* --- delete --- */

/* Does any chain the VM or a snapshot reads go through file (absolute)? */
static bool
snapshot_needed(struct snapshot_ctx *x, const char *file, const char *skip)
{
	char start[PATH_MAX], path[PATH_MAX], want[PATH_MAX], dir[PATH_MAX];
	struct blkdev_info info;
	struct blkdev *bd;
	int n = snapshot_ndisks(x), total;
	size_t i;
	json_t *s;

	if (realpath(file, want) == NULL)
		return false;
	total = n;
	json_array_foreach(snapshot_list_of(x), i, s)
		if (strcmp(snapshot_str(s, "name"), skip) != 0)
			total += (int)json_array_size(json_object_get(s,
			    "disks"));
	for (int k = 0; k < total; k++) {
		const char *img = NULL;
		int idx = k - n;

		if (k < n)
			img = snapshot_disk(x, k);
		json_array_foreach(snapshot_list_of(x), i, s) {
			json_t *d = json_object_get(s, "disks");

			if (img != NULL || strcmp(snapshot_str(s, "name"),
			    skip) == 0)
				continue;
			if (idx < (int)json_array_size(d)) {
				img = json_string_value(json_array_get(d, idx));
				break;
			}
			idx -= (int)json_array_size(d);
		}
		if (img == NULL)
			continue;
		snapshot_abs(x, img, start, sizeof(start));
		for (int depth = 0; depth < BLKDEV_MAX_CHAIN; depth++) {
			if (realpath(start, path) == NULL)
				break;
			if (strcmp(path, want) == 0)
				return true;
			if (blkdev_open(&bd, path, NULL, BLKDEV_RDONLY |
			    BLKDEV_NOLOCK, NULL, 0) < 0)
				break;
			blkdev_info(bd, &info);
			blkdev_close(bd);
			if (info.backing[0] == '\0')
				break;
			snprintf(dir, sizeof(dir), "%s", path);
			if ((info.backing[0] == '/' ? snprintf(start,
			    sizeof(start), "%s", info.backing) :
			    snprintf(start, sizeof(start), "%s/%s",
			    dirname(dir), info.backing)) >= (int)sizeof(start))
				break;
		}
	}
	return false;
}

static int
snapshot_delete(struct snapshot_ctx *x, const char *name)
{
	json_t *s = snapshot_find(x, name), *parent, *c;
	char path[PATH_MAX + 64];
	size_t i, idx = 0;

	if (s == NULL) {
		log_warnx("%s has no snapshot %s", x->vm, name);
		return 1;
	}
	parent = json_object_get(s, "parent");
	json_array_foreach(snapshot_list_of(x), i, c) {
		if (c == s)
			idx = i;
		else if (json_is_string(json_object_get(c, "parent")) &&
		    strcmp(snapshot_str(c, "parent"), name) == 0)
			json_object_set(c, "parent", parent);
	}
	if (json_is_string(json_object_get(x->tree, "current")) &&
	    strcmp(snapshot_str(x->tree, "current"), name) == 0)
		json_object_set(x->tree, "current", parent);
	if (snapshot_str(s, "memory") != NULL) {
		snapshot_abs(x, snapshot_str(s, "memory"), path, sizeof(path));
		unlink(path);
	}
	json_array_foreach(json_object_get(s, "disks"), i, c) {
		const char *img = json_string_value(c);

		snapshot_abs(x, img, path, sizeof(path));
		if (strchr(img, '/') == NULL &&
		    !snapshot_needed(x, path, name))
			unlink(path);
	}
	json_array_remove(snapshot_list_of(x), idx);
	if (snapshot_tree_save(x) < 0)
		return 1;
	printf("%s: snapshot %s deleted\n", x->vm, name);
	return 0;
}

/* --- the command --- */

int
snapshot_cli_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "datastore", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct snapshot_ctx x = { 0 };
	const char *sub = argc > 0 ? argv[0] : "";
	bool list = strcmp(sub, "list") == 0;
	int c, r;

	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
	    strcmp(sub, "help") == 0) {
		fputs(snapshot_usage, stdout);
		return 0;
	}
	optind = 1;
	opterr = 0;
	while (argc > 0 && (c = getopt_long(argc, argv, "d:h", opts,
	    NULL)) != -1) {
		if (c == 'h') {
			fputs(snapshot_usage, stdout);
			return 0;
		}
		if (c != 'd') {
			log_warnx("unknown or incomplete option '%s' (see "
			    "termvisor snapshot --help)", argv[optind - 1]);
			return 2;
		}
		x.datastore = optarg;
	}
	if (argc < 1 || (!list && strcmp(sub, "take") != 0 &&
	    strcmp(sub, "revert") != 0 && strcmp(sub, "delete") != 0) ||
	    argc - optind != (list ? 1 : 2)) {
		fputs(snapshot_usage, stderr);
		return 2;
	}
	x.vm = argv[optind];
	if (snapshot_open(&x) < 0) {
		snapshot_close(&x);
		return 1;
	}
	if (list)
		r = json_array_size(snapshot_list_of(&x)) == 0 ?
		    (printf("%s has no snapshots\n", x.vm), 0) :
		    (snapshot_print(&x, NULL, 0), 0);
	else if (strcmp(sub, "take") == 0)
		r = snapshot_take(&x, argv[optind + 1]);
	else if (strcmp(sub, "revert") == 0)
		r = snapshot_revert(&x, argv[optind + 1]);
	else
		r = snapshot_delete(&x, argv[optind + 1]);
	snapshot_close(&x);
	return r;
}
