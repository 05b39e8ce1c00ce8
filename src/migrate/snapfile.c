/*
 * Snapshot files: header, vmstate stream, RAM (snapfile.h and
 * termvisor.snapshot(5)).
 *
 * Header (little-endian, SNAPFILE_HEADER bytes, the rest zero):
 *   0   magic "TVSNAPSH"          8   u32 version      12  u32 header size
 *   16  u64 created               24  u64 vmstate offset
 *   32  u64 vmstate length        40  u32 vmstate crc  44  u32 RAM crc
 *   48  u64 RAM offset            56  u64 RAM size     64  u64 pages stored
 *   72  accel[16]                 88  name[64]
 *   152 u32 crc32 of bytes 0-151
 */
#include "migrate/snapfile.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "hv/vm.h"
#include "migrate/snap.h"
#include "migrate/vmstate.h"
#include "util/evloop.h"

#define SNAPFILE_HDR_USED	152
#define SNAPFILE_PAGE		4096u

static void
snapfile_put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void
snapfile_put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint32_t
snapfile_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t
snapfile_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static void
snapfile_hdr_encode(uint8_t *h, const struct snapfile_info *in)
{
	memset(h, 0, SNAPFILE_HEADER);
	memcpy(h, SNAPFILE_MAGIC, 8);
	snapfile_put32(h + 8, SNAPFILE_VERSION);
	snapfile_put32(h + 12, SNAPFILE_HEADER);
	snapfile_put64(h + 16, in->created);
	snapfile_put64(h + 24, in->vmstate_offset);
	snapfile_put64(h + 32, in->vmstate_length);
	snapfile_put32(h + 40, in->vmstate_crc);
	snapfile_put32(h + 44, in->ram_crc);
	snapfile_put64(h + 48, in->ram_offset);
	snapfile_put64(h + 56, in->ram_size);
	snapfile_put64(h + 64, in->ram_pages);
	memcpy(h + 72, in->accel, sizeof(in->accel));
	memcpy(h + 88, in->name, sizeof(in->name));
	snapfile_put32(h + SNAPFILE_HDR_USED,
	    snap_crc32(h, SNAPFILE_HDR_USED));
}

/* Decode and check a header read from a file of file_size bytes. */
static int
snapfile_hdr_decode(const uint8_t *h, uint64_t file_size,
    struct snapfile_info *o, char *err, size_t errlen)
{
	memset(o, 0, sizeof(*o));
	if (memcmp(h, SNAPFILE_MAGIC, 8) != 0) {
		snprintf(err, errlen, "not a termvisor snapshot file (bad "
		    "magic)");
		return -EINVAL;
	}
	o->version = snapfile_get32(h + 8);
	if (o->version != SNAPFILE_VERSION) {
		snprintf(err, errlen, "snapshot file version %u; this build "
		    "reads version %u", o->version, SNAPFILE_VERSION);
		return -ENOTSUP;
	}
	if (snapfile_get32(h + SNAPFILE_HDR_USED) !=
	    snap_crc32(h, SNAPFILE_HDR_USED) ||
	    snapfile_get32(h + 12) != SNAPFILE_HEADER) {
		snprintf(err, errlen, "the snapshot file's header is "
		    "corrupt (checksum mismatch)");
		return -EBADMSG;
	}
	o->created = snapfile_get64(h + 16);
	o->vmstate_offset = snapfile_get64(h + 24);
	o->vmstate_length = snapfile_get64(h + 32);
	o->vmstate_crc = snapfile_get32(h + 40);
	o->ram_crc = snapfile_get32(h + 44);
	o->ram_offset = snapfile_get64(h + 48);
	o->ram_size = snapfile_get64(h + 56);
	o->ram_pages = snapfile_get64(h + 64);
	memcpy(o->accel, h + 72, sizeof(o->accel));
	memcpy(o->name, h + 88, sizeof(o->name));
	o->accel[sizeof(o->accel) - 1] = '\0';
	o->name[sizeof(o->name) - 1] = '\0';
	if (o->vmstate_offset < SNAPFILE_HEADER ||
	    o->vmstate_length == 0 ||
	    o->vmstate_length > SNAPFILE_VMSTATE_MAX ||
	    o->ram_offset % SNAPFILE_PAGE != 0 ||
	    o->ram_offset < o->vmstate_offset + o->vmstate_length ||
	    o->ram_size == 0 || o->ram_size % SNAPFILE_PAGE != 0 ||
	    o->ram_size > (1ull << 40) || o->ram_pages > o->ram_size / 4096) {
		snprintf(err, errlen, "the snapshot file's header describes "
		    "an impossible layout");
		return -EINVAL;
	}
	if (file_size < o->ram_offset + o->ram_size) {
		snprintf(err, errlen, "the snapshot file is truncated: %llu "
		    "bytes, its header says %llu", (unsigned long long)file_size,
		    (unsigned long long)(o->ram_offset + o->ram_size));
		return -EINVAL;
	}
	return 0;
}

static int
snapfile_pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p = (const uint8_t *)p + w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int
snapfile_pread_all(int fd, void *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t r = pread(fd, p, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		p = (uint8_t *)p + r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static bool
snapfile_page_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (unsigned i = 0; i < SNAPFILE_PAGE / 8; i++)
		if (q[i] != 0)
			return false;
	return true;
}

/*
 * Write RAM (non-zero pages only: the file is sparse), then the header
 * with the RAM checksum, and sync.  Runs in the forked child too, so it
 * allocates nothing and takes no lock.
 */
static int
snapfile_write_ram(int fd, const uint8_t *ram, struct snapfile_info *in,
    uint8_t *hdr)
{
	uint64_t run = 0, pages = 0;
	int err;

	for (uint64_t off = 0; off <= in->ram_size; off += SNAPFILE_PAGE) {
		bool zero = off == in->ram_size ||
		    snapfile_page_zero(ram + off);

		if (!zero) {
			pages++;
			continue;
		}
		/* Flush the run of non-zero pages ending here. */
		run = off - pages * SNAPFILE_PAGE;
		if (pages > 0 && (err = snapfile_pwrite_all(fd, ram + run,
		    pages * SNAPFILE_PAGE, in->ram_offset + run)) < 0)
			return err;
		in->ram_pages += pages;
		pages = 0;
	}
	in->ram_crc = snap_crc32(ram, in->ram_size);
	snapfile_hdr_encode(hdr, in);
	if ((err = snapfile_pwrite_all(fd, hdr, SNAPFILE_HEADER, 0)) < 0)
		return err;
	return fsync(fd) < 0 ? -errno : 0;
}

/*
 * RAM through a child holding a copy-on-write view; the guest resumes as
 * soon as the child exists.  The child renames tmp to path once all is
 * written and synced.  With childp, its pid is returned at once (the
 * caller reaps it); else this waits, and its status says how it went.
 */
static int
snapfile_write_ram_cow(struct vm *vm, int fd, struct snapfile_info *in,
    uint8_t *hdr, const char *tmp, const char *path, pid_t *childp,
    uint64_t *resumed_at)
{
	int status, err;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		err = snapfile_write_ram(fd, vm->ram, in, hdr);
		if (err == 0 && rename(tmp, path) < 0)
			err = -errno;
		_exit(err < 0 ? (-err & 0x7f) : 0);
	}
	*resumed_at = vclock_ns();
	vm_resume(vm);
	if (childp != NULL) {
		*childp = pid;
		return 0;
	}
	/* vCPUs that do I/O meanwhile need the device lock. */
	pthread_mutex_unlock(&vm->devlock);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&vm->devlock);
	if (!WIFEXITED(status))
		return -EIO;
	return WEXITSTATUS(status) == 0 ? 0 : -WEXITSTATUS(status);
}

int
snapfile_write(struct vm *vm, const char *path, const char *name, bool cow,
    pid_t *child, bool *resumed_out, uint64_t *paused_ns, char *err,
    size_t errlen)
{
	struct snapfile_info in = { 0 };
	uint64_t t0 = vclock_ns(), resumed = 0;
	char tmp[4200];
	uint8_t *hdr = NULL;
	struct snap s;
	int fd = -1, r;

	snap_init_save(&s);
	if ((r = vmstate_save(vm, &s)) < 0) {
		snprintf(err, errlen, "cannot save the VM's state: %s",
		    s.errmsg);
		goto fail;
	}
	in.created = (uint64_t)time(NULL);
	in.vmstate_offset = SNAPFILE_HEADER;
	in.vmstate_length = s.len;
	in.vmstate_crc = snap_crc32(s.buf, s.len);
	in.ram_offset = (SNAPFILE_HEADER + s.len + SNAPFILE_RAM_ALIGN - 1) &
	    ~(uint64_t)(SNAPFILE_RAM_ALIGN - 1);
	in.ram_size = vm->ram_size;
	snprintf(in.accel, sizeof(in.accel), "%s", vm->accel->name);
	snprintf(in.name, sizeof(in.name), "%s", name ? name : "");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	hdr = calloc(1, SNAPFILE_HEADER);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (hdr == NULL || fd < 0) {
		r = hdr == NULL ? -ENOMEM : -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(-r));
		goto fail;
	}
	if ((r = snapfile_pwrite_all(fd, s.buf, s.len, in.vmstate_offset)) < 0 ||
	    (ftruncate(fd, (off_t)(in.ram_offset + in.ram_size)) < 0 &&
	    (r = -errno) < 0)) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(-r));
		goto fail;
	}
	r = cow ? snapfile_write_ram_cow(vm, fd, &in, hdr, tmp, path, child,
	    &resumed) : snapfile_write_ram(fd, vm->ram, &in, hdr);
	if (r < 0) {
		snprintf(err, errlen, "%s: writing guest memory: %s", tmp,
		    strerror(-r));
		goto fail;
	}
	if (!cow && rename(tmp, path) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	r = 0;
fail:
	if (fd >= 0)
		close(fd);
	if (r < 0 && fd >= 0)
		unlink(tmp);
	free(hdr);
	snap_free(&s);
	if (resumed_out != NULL)
		*resumed_out = resumed != 0;
	if (paused_ns != NULL)
		*paused_ns = (resumed ? resumed : vclock_ns()) - t0;
	return r < 0 ? r : 0;
}

int
snapfile_open(const char *path, struct snapfile_info *info,
    uint8_t **vmstate, char *err, size_t errlen)
{
	uint8_t hdr[SNAPFILE_HEADER];
	struct stat sb;
	uint8_t *buf = NULL;
	int fd, r;

	*vmstate = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size < SNAPFILE_HEADER) {
		snprintf(err, errlen, "%s: the snapshot file is truncated "
		    "(no complete header)", path);
		r = -EINVAL;
		goto out;
	}
	if ((r = snapfile_pread_all(fd, hdr, sizeof(hdr), 0)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	if ((r = snapfile_hdr_decode(hdr, (uint64_t)sb.st_size, info, err,
	    errlen)) < 0)
		goto out;
	if ((buf = malloc(info->vmstate_length)) == NULL) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((r = snapfile_pread_all(fd, buf, info->vmstate_length,
	    info->vmstate_offset)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	if (snap_crc32(buf, info->vmstate_length) != info->vmstate_crc) {
		snprintf(err, errlen, "the snapshot file's device and CPU "
		    "state is corrupt (checksum mismatch)");
		r = -EBADMSG;
		goto out;
	}
	*vmstate = buf;
	buf = NULL;
	r = 0;
out:
	free(buf);
	close(fd);
	return r;
}

int
snapfile_check_ram(const char *path, const struct snapfile_info *info,
    char *err, size_t errlen)
{
	size_t chunk = 4u << 20;
	uint8_t *buf = malloc(chunk);
	uLong crc = crc32(0L, Z_NULL, 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0 || buf == NULL) {
		r = fd < 0 ? -errno : -ENOMEM;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	for (uint64_t off = 0; off < info->ram_size; off += chunk) {
		size_t n = info->ram_size - off < chunk ?
		    (size_t)(info->ram_size - off) : chunk;

		if ((r = snapfile_pread_all(fd, buf, n,
		    info->ram_offset + off)) < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
			goto out;
		}
		crc = crc32(crc, buf, (uInt)n);
	}
	if ((uint32_t)crc != info->ram_crc) {
		snprintf(err, errlen, "the snapshot file's guest memory is "
		    "corrupt (checksum mismatch)");
		r = -EBADMSG;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

int
snapfile_load(struct vm *vm, const uint8_t *vmstate,
    const struct snapfile_info *info, char *err, size_t errlen)
{
	struct snap s;
	int r;

	if (info->ram_size != vm->ram_size) {
		snprintf(err, errlen, "the snapshot holds %llu MiB of memory, "
		    "the VM has %llu MiB", (unsigned long long)(info->ram_size
		    >> 20), (unsigned long long)(vm->ram_size >> 20));
		return -EINVAL;
	}
	snap_init_load(&s, vmstate, info->vmstate_length);
	if ((r = vmstate_load(vm, &s)) < 0)
		snprintf(err, errlen, "%s", s.errmsg);
	return r;
}
