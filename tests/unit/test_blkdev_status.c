/*
 * blkdev_block_status judged by `qemu-img map --output=json` on the same
 * images: a sparse raw file, qcow2 images with a backing chain (one
 * shorter than its overlay), zero clusters made by qemu and by us, and
 * ranges that cross an allocation boundary.  And the migration's first
 * copy, which uses it to skip holes without reading them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migrate/migrate.h"
#include "unit/scratch.h"
#include "vmfs/blkdev.h"
#include "vmfs/qcow2.h"
#include "vmfs/raw.h"

#define MiB	(1ull << 20)
#define KiB	1024ull

static char dir[256];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tv-bstatus-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
	scratch_remove(dir);
}

TestSuite(blkdev_status, .init = setup, .fini = teardown, .timeout = 120);

static void
need_qemu(void)
{
	if (sh("command -v qemu-img >/dev/null && command -v qemu-io "
	    ">/dev/null") != 0)
		cr_skip_test("qemu-img/qemu-io not installed (qemu-utils)");
}

static struct blkdev *
open_img(const char *name, unsigned flags)
{
	char path[512], err[1024];
	struct blkdev *bd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(blkdev_open(&bd, path, NULL, flags, err, sizeof(err)), 0,
	    "%s", err);
	return bd;
}

static void
put(struct blkdev *bd, uint64_t off, size_t len, int seed)
{
	uint8_t *b = malloc(len);

	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + i * 13 + 1);
	cr_assert_eq(blkdev_pwrite(bd, b, len, off), 0);
	free(b);
}

static uint64_t
num(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	cr_assert_not_null(p, "%s not in %s", key, line);
	return strtoull(p + strlen(key), NULL, 10);
}

static bool
flag(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	cr_assert_not_null(p, "%s not in %s", key, line);
	return strncmp(p + strlen(key), "true", 4) == 0;
}

/*
 * Walk qemu-img's map of the image (opened by us read-only as bd) and
 * ask ours over each of its extents, in pieces: qemu's zero must be our
 * ZERO, its data (not zero) our DATA.  The extents qemu gave.
 */
static int
compare_with_qemu(struct blkdev *bd, const char *name, const char *fmt)
{
	char line[1024], cmd[1024];
	uint64_t start, len, pos, n, next = 0;
	int extents = 0, st, want;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "qemu-img map -U -f %s --output=json %s/%s",
	    fmt, dir, name);
	cr_assert_not_null(f = popen(cmd, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "\"start\"") == NULL)
			continue;
		start = num(line, "\"start\": ");
		len = num(line, "\"length\": ");
		cr_assert_eq(start, next, "qemu's map has a gap at %llu",
		    (unsigned long long)next);
		next = start + len;
		if (flag(line, "\"zero\": "))
			want = BLKDEV_STATUS_ZERO;
		else if (flag(line, "\"data\": "))
			want = BLKDEV_STATUS_DATA;
		else
			cr_assert_fail("qemu says neither data nor zero: %s", line);
		extents++;
		for (pos = start; pos < start + len; pos += n) {
			st = blkdev_block_status(bd, pos, start + len - pos, &n);
			cr_assert_eq(st, want, "%s at %llu: ours %d, qemu's %d "
			    "(%s)", name, (unsigned long long)pos, st, want, line);
			cr_assert(n > 0 && n <= start + len - pos);
		}
	}
	cr_assert_eq(pclose(f), 0);
	cr_assert_eq(next, blkdev_length(bd), "qemu's map ends at %llu",
	    (unsigned long long)next);
	return extents;
}

Test(blkdev_status, raw_sparse_file)
{
	struct blkdev *bd;
	uint64_t n;
	char path[512], err[512];

	need_qemu();
	snprintf(path, sizeof(path), "%s/a.raw", dir);
	cr_assert_eq(raw_create(path, 8 * MiB, err, sizeof(err)), 0, "%s", err);
	bd = open_img("a.raw", 0);
	cr_assert_eq(blkdev_block_status(bd, 0, 8 * MiB, &n),
	    BLKDEV_STATUS_ZERO);
	cr_assert_eq(n, 8 * MiB, "a fresh file is one hole");
	put(bd, 1 * MiB, 64 * KiB, 1);
	put(bd, 5 * MiB + 4 * KiB, 8 * KiB, 2);
	put(bd, 8 * MiB - 4 * KiB, 4 * KiB, 3);
	cr_assert_eq(blkdev_flush(bd), 0);
	/* across the boundaries: the answer stops where the state changes */
	cr_assert_eq(blkdev_block_status(bd, 1 * MiB - 4 * KiB, 64 * KiB, &n),
	    BLKDEV_STATUS_ZERO);
	cr_assert_eq(n, 4 * KiB);
	cr_assert_eq(blkdev_block_status(bd, 1 * MiB + 60 * KiB, 64 * KiB, &n),
	    BLKDEV_STATUS_DATA);
	cr_assert_eq(n, 4 * KiB);
	cr_assert_eq(blkdev_block_status(bd, 1 * MiB + 64 * KiB, 7 * MiB -
	    64 * KiB, &n), BLKDEV_STATUS_ZERO);
	cr_assert_eq(n, 4 * MiB - 60 * KiB);
	/* out of range */
	cr_assert_eq(blkdev_block_status(bd, 8 * MiB, 1, &n), -EINVAL);
	cr_assert_eq(blkdev_block_status(bd, 0, 0, &n), -EINVAL);
	/* a punched hole is a hole again */
	cr_assert_eq(blkdev_write_zeroes(bd, 5 * MiB, 64 * KiB), 0);
	cr_assert_eq(blkdev_block_status(bd, 5 * MiB, 64 * KiB, &n),
	    BLKDEV_STATUS_ZERO);
	cr_assert_eq(n, 64 * KiB);
	blkdev_close(bd);
	bd = open_img("a.raw", BLKDEV_RDONLY);
	cr_assert_geq(compare_with_qemu(bd, "a.raw", "raw"), 4);
	blkdev_close(bd);
}

/*
 * base.qcow2 (4 MiB, made by qemu): data at [0, 256K) and [1M, 1M+64K),
 * a zero cluster at 2M.  top.qcow2 (8 MiB, ours) over it: a zero
 * cluster over base data at 0, data over base data at 128K, a partial
 * write (copy-on-write) at 3M+4K, data at 6M past the base's end.
 */
Test(blkdev_status, qcow2_backing_chain_and_zero_clusters)
{
	struct qcow2_create_opts o = { .backing = "base.qcow2",
	    .backing_format = "qcow2" };
	struct blkdev *bd;
	char path[512], err[512];
	uint64_t n;

	need_qemu();
	cr_assert_eq(sh("cd %s && qemu-img create -q -f qcow2 base.qcow2 4M && "
	    "qemu-io -f qcow2 -c 'write -P 7 0 256k' -c 'write -P 8 1M 64k' "
	    "-c 'write -z 2M 64k' -c 'write -P 9 2112k 64k' "
	    "-c 'write -z 2112k 64k' base.qcow2 >/dev/null", dir), 0);
	snprintf(path, sizeof(path), "%s/top.qcow2", dir);
	cr_assert_eq(qcow2_create(path, 8 * MiB, &o, err, sizeof(err)), 0,
	    "%s", err);
	bd = open_img("top.qcow2", 0);
	cr_assert_eq(blkdev_write_zeroes(bd, 0, 64 * KiB), 0);
	put(bd, 128 * KiB, 64 * KiB, 4);
	put(bd, 3 * MiB + 4 * KiB, 512, 5);
	put(bd, 6 * MiB, 128 * KiB, 6);
	/* before any flush: the answer comes from the cached tables */
	cr_assert_eq(blkdev_block_status(bd, 32 * KiB, 64 * KiB, &n),
	    BLKDEV_STATUS_ZERO);
	cr_assert_eq(n, 32 * KiB, "the zero cluster ends at 64K");
	cr_assert_eq(blkdev_block_status(bd, 64 * KiB, 1 * MiB, &n),
	    BLKDEV_STATUS_DATA);
	cr_assert_eq(n, 64 * KiB, "base data [64K, 128K), then our own");
	cr_assert_eq(blkdev_block_status(bd, 128 * KiB - 512, 1024, &n),
	    BLKDEV_STATUS_DATA);
	cr_assert_eq(n, 512);
	/* qemu's zero cluster in the base shows through */
	cr_assert_eq(blkdev_block_status(bd, 2 * MiB, 64 * KiB, &n),
	    BLKDEV_STATUS_ZERO);
	/* past the base's end: zeros up to our data at 6M */
	cr_assert_eq(blkdev_block_status(bd, 4 * MiB, 4 * MiB, &n),
	    BLKDEV_STATUS_ZERO);
	cr_assert_eq(n, 2 * MiB);
	cr_assert_eq(blkdev_block_status(bd, 4 * MiB - 64 * KiB, 4 * MiB, &n),
	    BLKDEV_STATUS_ZERO);
	cr_assert_eq(n, 2 * MiB + 64 * KiB, "unallocated in base and top");
	blkdev_close(bd);
	bd = open_img("top.qcow2", BLKDEV_RDONLY);
	cr_assert_geq(compare_with_qemu(bd, "top.qcow2", "qcow2"), 6);
	blkdev_close(bd);
	bd = open_img("base.qcow2", BLKDEV_RDONLY);
	cr_assert_geq(compare_with_qemu(bd, "base.qcow2", "qcow2"), 4);
	blkdev_close(bd);
}

/* Without a backing file: our zeroing unallocates, qemu's sets the flag;
 * both read as zeros.  A raw backing file's holes show through. */
Test(blkdev_status, qcow2_zero_clusters_and_raw_backing)
{
	struct qcow2_create_opts o = { .backing = "b.raw",
	    .backing_format = "raw", .cluster_size = 4096 };
	struct blkdev *bd;
	char path[512], err[512];
	uint64_t n;

	need_qemu();
	snprintf(path, sizeof(path), "%s/z.qcow2", dir);
	cr_assert_eq(qcow2_create(path, 4 * MiB, NULL, err, sizeof(err)), 0,
	    "%s", err);
	bd = open_img("z.qcow2", 0);
	put(bd, 0, 512 * KiB, 1);
	cr_assert_eq(blkdev_write_zeroes(bd, 64 * KiB, 128 * KiB), 0);
	cr_assert_eq(blkdev_block_status(bd, 0, 4 * MiB, &n),
	    BLKDEV_STATUS_DATA);
	cr_assert_eq(n, 64 * KiB);
	cr_assert_eq(blkdev_block_status(bd, 64 * KiB, 4 * MiB - 64 * KiB, &n),
	    BLKDEV_STATUS_ZERO);
	cr_assert_eq(n, 128 * KiB);
	blkdev_close(bd);
	cr_assert_eq(sh("cd %s && qemu-io -f qcow2 -c 'write -z 256k 64k' "
	    "z.qcow2 >/dev/null", dir), 0);
	bd = open_img("z.qcow2", BLKDEV_RDONLY);
	cr_assert_eq(blkdev_block_status(bd, 256 * KiB, 64 * KiB, &n),
	    BLKDEV_STATUS_ZERO);
	cr_assert_geq(compare_with_qemu(bd, "z.qcow2", "qcow2"), 4);
	blkdev_close(bd);

	cr_assert_eq(sh("cd %s && truncate -s 2M b.raw && qemu-io -f raw "
	    "-c 'write -P 3 64k 8k' b.raw >/dev/null", dir), 0);
	snprintf(path, sizeof(path), "%s/o.qcow2", dir);
	cr_assert_eq(qcow2_create(path, 2 * MiB, &o, err, sizeof(err)), 0,
	    "%s", err);
	bd = open_img("o.qcow2", 0);
	put(bd, 1 * MiB, 4096, 2);
	blkdev_close(bd);
	bd = open_img("o.qcow2", BLKDEV_RDONLY);
	cr_assert_eq(blkdev_block_status(bd, 0, 2 * MiB, &n),
	    BLKDEV_STATUS_ZERO);
	cr_assert_eq(n, 64 * KiB, "the raw base's hole");
	cr_assert_geq(compare_with_qemu(bd, "o.qcow2", "qcow2"), 4);
	blkdev_close(bd);
}

static uint64_t
rchar(void)
{
	char line[128];
	uint64_t v = 0;
	FILE *f = fopen("/proc/self/io", "r");

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "rchar: %lu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/*
 * The first copy of a 1 GiB disk holding 2 MiB: the holes are not read
 * (raw: no 1 GiB of zeros through read(2)); what arrives is the disk.
 */
static void
first_copy_skips_holes(const char *fmt)
{
	struct migrate_disk_hdr hdr = { .file = "x" };
	struct migrate_disk_src s;
	struct migrate_chan ch;
	struct blkdev *bd;
	char path[512], err[512];
	uint64_t before, nread;
	int fd;

	snprintf(hdr.format, sizeof(hdr.format), "%s", fmt);
	snprintf(path, sizeof(path), "%s/d.%s", dir, fmt);
	if (strcmp(fmt, "raw") == 0)
		cr_assert_eq(raw_create(path, 1024 * MiB, err, sizeof(err)), 0);
	else
		cr_assert_eq(qcow2_create(path, 1024 * MiB, NULL, err,
		    sizeof(err)), 0, "%s", err);
	bd = open_img(strrchr(path, '/') + 1, 0);
	put(bd, 100 * MiB + 4 * KiB, 1 * MiB, 1);
	put(bd, 1024 * MiB - 1 * MiB, 1 * MiB, 2);
	snprintf(path, sizeof(path), "%s/stream", dir);
	cr_assert_geq(fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600), 0);
	migrate_chan_init(&ch, -1, fd);
	cr_assert_eq(migrate_disk_src_init(&s, &bd, &hdr, 1, &ch), 0);
	before = rchar();
	cr_assert_eq(migrate_disk_src_first(&s), 0, "%s", ch.err);
	nread = rchar() - before;
	/* 1 MiB at 100M+4K touches 17 chunks, the last MiB 16 */
	cr_assert_eq(s.sent_chunks, 33);
	cr_assert_eq(s.skipped_chunks, 16384 - 33);
	cr_assert_lt(nread, 8 * MiB, "%s: the first copy read %llu bytes",
	    fmt, (unsigned long long)nread);
	migrate_disk_src_fini(&s);
	migrate_chan_close(&ch);
	blkdev_close(bd);
}

Test(blkdev_status, first_copy_skips_raw_holes)
{
	first_copy_skips_holes("raw");
}

Test(blkdev_status, first_copy_skips_qcow2_holes)
{
	first_copy_skips_holes("qcow2");
}
