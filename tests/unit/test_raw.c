/*
 * raw images and the block layer's common rules: bounds, read-only,
 * probing, and a file truncated underneath an open disk.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/vmconfig.h"
#include "vmfs/blkdev.h"
#include "vmfs/raw.h"

static char dir[256], path[300];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tv-raw-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/d.raw", dir);
}

static void
teardown(void)
{
	unlink(path);
	rmdir(dir);
}

TestSuite(raw, .init = setup, .fini = teardown);

Test(raw, create_write_read)
{
	struct blkdev *bd;
	uint8_t b[8192], r[8192];
	struct blkdev_info info;
	char e[256];
	int i;

	cr_assert_eq(raw_create(path, 1 << 20, e, sizeof(e)), 0, "%s", e);
	cr_assert_lt(raw_create(path, 1 << 20, e, sizeof(e)), 0);
	cr_assert_eq(blkdev_open(&bd, path, NULL, 0, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(blkdev_length(bd), 1 << 20);
	for (i = 0; i < 8192; i++)
		b[i] = (uint8_t)(i * 31);
	cr_assert_eq(blkdev_pwrite(bd, b, sizeof(b), 1000), 0);
	cr_assert_eq(blkdev_pread(bd, r, sizeof(r), 1000), 0);
	cr_assert_eq(memcmp(b, r, sizeof(b)), 0);
	cr_assert_eq(blkdev_write_zeroes(bd, 4096, 4096), 0);
	cr_assert_eq(blkdev_pread(bd, r, 4096, 4096), 0);
	for (i = 0; i < 4096; i++)
		cr_assert_eq(r[i], 0);
	cr_assert_eq(blkdev_pread(bd, r, 1, 1000), 0);
	cr_assert_eq(r[0], b[0]);
	cr_assert_eq(blkdev_flush(bd), 0);
	blkdev_info(bd, &info);
	cr_assert_str_eq(info.format, "raw");
	cr_assert_eq(info.virtual_size, 1 << 20);
	blkdev_close(bd);
}

Test(raw, bounds_and_readonly)
{
	struct blkdev *bd;
	uint8_t b[512] = { 0 };
	char e[256];

	cr_assert_eq(raw_create(path, 4096, e, sizeof(e)), 0);
	cr_assert_eq(blkdev_open(&bd, path, "raw", BLKDEV_RDONLY, e, sizeof(e)),
	    0);
	cr_assert_eq(blkdev_pread(bd, b, 512, 4096 - 511), -EINVAL);
	cr_assert_eq(blkdev_pread(bd, b, 512, UINT64_MAX - 10), -EINVAL);
	cr_assert_eq(blkdev_pwrite(bd, b, 512, 0), -EROFS);
	cr_assert_eq(blkdev_discard(bd, 0, 512), -EROFS);
	blkdev_close(bd);
}

/* Like QEMU's file driver: a file shrunk under us reads as zeros past
 * its new end, never as stale or invented data, and no error. */
Test(raw, truncated_underneath_reads_zero)
{
	struct blkdev *bd;
	uint8_t b[4096];
	char e[256];
	int i;

	cr_assert_eq(raw_create(path, 8192, e, sizeof(e)), 0);
	cr_assert_eq(blkdev_open(&bd, path, NULL, 0, e, sizeof(e)), 0);
	memset(b, 0xee, sizeof(b));
	cr_assert_eq(blkdev_pwrite(bd, b, 4096, 4096), 0);
	cr_assert_eq(truncate(path, 6000), 0);
	memset(b, 0x11, sizeof(b));
	cr_assert_eq(blkdev_pread(bd, b, 4096, 4096), 0);
	for (i = 0; i < 4096; i++)
		cr_assert_eq(b[i], i < 6000 - 4096 ? 0xee : 0, "byte %d", i);
	blkdev_close(bd);
}

Test(raw, errors_name_the_file)
{
	struct blkdev *bd;
	char e[256];

	cr_assert_eq(blkdev_open(&bd, "/nonexistent/x.img", NULL, 0, e,
	    sizeof(e)), -ENOENT);
	cr_assert_not_null(strstr(e, "/nonexistent/x.img"), "%s", e);
	cr_assert_eq(blkdev_open(&bd, path, "vmdk", 0, e, sizeof(e)), -EINVAL);
	cr_assert_not_null(strstr(e, "unknown disk format"), "%s", e);
}

Test(raw, open_configured_disk)
{
	struct vmcfg_disk d = { .readonly = true };
	struct blkdev *bd;
	char e[256];

	cr_assert_eq(raw_create(path, 4096, e, sizeof(e)), 0);
	snprintf(d.path, sizeof(d.path), "%s", path);
	cr_assert_eq(blkdev_open_disk(&bd, &d, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(blkdev_pwrite(bd, "x", 1, 0), -EROFS);
	blkdev_close(bd);
	snprintf(d.format, sizeof(d.format), "qcow2");
	cr_assert_eq(blkdev_open_disk(&bd, &d, e, sizeof(e)), -EINVAL);
	cr_assert_not_null(strstr(e, "bad magic"), "%s", e);
}

Test(raw, probe)
{
	char fmt[8], e[256];
	int fd;

	cr_assert_eq(raw_create(path, 4096, e, sizeof(e)), 0);
	cr_assert_eq(blkdev_probe(path, fmt, sizeof(fmt)), 0);
	cr_assert_str_eq(fmt, "raw");
	fd = open(path, O_WRONLY);
	cr_assert_eq(pwrite(fd, "QFI\xfb", 4, 0), 4);
	close(fd);
	cr_assert_eq(blkdev_probe(path, fmt, sizeof(fmt)), 0);
	cr_assert_str_eq(fmt, "qcow2");
}
