/*
 * Snapshot files (termvisor.snapshot(5)): a checked header, the vmstate
 * stream (vmstate.h) and guest RAM at an aligned offset, so that a
 * restore maps RAM from the file (vm_config.ram_file) instead of reading
 * it.  A file is written once, under a temporary name renamed into place
 * when complete, and never changed after: mapping it MAP_PRIVATE is
 * sound.
 */
#ifndef TV_SNAPFILE_H
#define TV_SNAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SNAPFILE_MAGIC		"TVSNAPSH"
#define SNAPFILE_VERSION	1
#define SNAPFILE_HEADER		4096
#define SNAPFILE_RAM_ALIGN	(2u << 20)	/* huge-page friendly */
#define SNAPFILE_VMSTATE_MAX	(256u << 20)

struct vm;

struct snapfile_info {
	uint32_t version;
	uint64_t created;		/* Unix time */
	uint64_t vmstate_offset, vmstate_length;
	uint32_t vmstate_crc, ram_crc;
	uint64_t ram_offset, ram_size;
	uint64_t ram_pages;		/* non-zero pages stored */
	char accel[16];
	char name[64];
};

/*
 * Write vm's state and RAM to path (replacing it only once complete).
 * vm must be paused (vm_pause) and its device lock held by the caller.
 * With cow, RAM is written by a forked child from a copy-on-write view
 * of memory, and vm_resume() is called as soon as the child exists: the
 * guest runs while its RAM is written (*resumed is then true, even if
 * the write fails later).  With child non-NULL, the child's pid is
 * returned at once: it renames the file into place when done and exits
 * 0, and the caller reaps it (and removes path.tmp if it failed); else
 * this waits for it.  Without cow the VM stays paused and the caller
 * resumes it.  *paused_ns: how long the guest was kept paused here.
 * resumed and paused_ns may be NULL.  0 or -errno, err set.
 */
int snapfile_write(struct vm *vm, const char *path, const char *name,
    bool cow, pid_t *child, bool *resumed, uint64_t *paused_ns, char *err,
    size_t errlen);

/*
 * Open and check path: magic, version, header checksum, sizes, and the
 * vmstate stream's checksum.  On success *vmstate is the stream (free
 * it) and *info describes the file.  RAM is not read (see
 * snapfile_check_ram).  0 or -errno with a sentence in err.
 */
int snapfile_open(const char *path, struct snapfile_info *info,
    uint8_t **vmstate, char *err, size_t errlen);

/* Read the RAM part and compare its checksum: 0, -EBADMSG, -errno. */
int snapfile_check_ram(const char *path, const struct snapfile_info *info,
    char *err, size_t errlen);

/*
 * Load a snapshot file into vm, made by vm_create() with
 * cfg->ram_file = path and ram_file_offset = info->ram_offset (so its
 * RAM already is the snapshot's), and with the same shape.  0 or -errno,
 * err set; on failure vm must not run (vmstate_load).
 */
int snapfile_load(struct vm *vm, const uint8_t *vmstate,
    const struct snapfile_info *info, char *err, size_t errlen);

#endif
