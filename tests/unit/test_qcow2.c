/*
 * qcow2 through our block layer, judged by qemu-img: everything written
 * must pass `qemu-img check` and `qemu-img compare` equal to a raw image
 * written with the same pattern; images qemu made must read back right.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmfs/blkdev.h"
#include "vmfs/qcow2.h"
#include "vmfs/raw.h"

static char dir[256];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tv-qcow2-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(qcow2, .init = setup, .fini = teardown, .timeout = 120);

/* Run a shell command; its exit status. */
static int __attribute__((format(printf, 1, 2)))
sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Apply the same seeded sequence of writes, zeroes and discards to bd
 * and to the memory image ref (discards only on whole clusters, which
 * both our qcow2 and the reference turn into zeros or backing-less
 * holes: see qcow2_unmap).
 */
static void
pattern(struct blkdev *bd, uint8_t *ref, uint64_t size, uint64_t cs,
    uint64_t seed, int rounds, bool backed)
{
	uint8_t *buf = malloc(3 * cs + 4096);
	uint64_t off, len, i;
	int r, op;

	for (r = 0; r < rounds; r++) {
		op = (int)(rnd(&seed) % 10);
		off = rnd(&seed) % size;
		len = 1 + rnd(&seed) % (3 * cs + 4096);
		if (len > size - off)
			len = size - off;
		if (op < 8) {
			for (i = 0; i < len; i++)
				buf[i] = (uint8_t)(seed >> (i % 48)) ^ (uint8_t)i;
			cr_assert_eq(blkdev_pwrite(bd, buf, len, off), 0);
			memcpy(ref + off, buf, len);
		} else if (op == 8) {
			cr_assert_eq(blkdev_write_zeroes(bd, off, len), 0);
			memset(ref + off, 0, len);
		} else {
			off &= ~(cs - 1);
			len = (len + cs - 1) & ~(cs - 1);
			if (len > size - off)
				len = size - off;
			cr_assert_eq(blkdev_discard(bd, off, len), 0);
			memset(ref + off, 0, len);	/* unbacked or zero flag */
		}
	}
	(void)backed;
	free(buf);
}

static void
write_file(const char *path, const uint8_t *b, size_t n)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(b, 1, n, f), n);
	fclose(f);
}

static void
read_all(struct blkdev *bd, uint8_t *out, uint64_t size)
{
	uint64_t off;

	for (off = 0; off < size; off += 1 << 20)
		cr_assert_eq(blkdev_pread(bd, out + off,
		    size - off < (1 << 20) ? size - off : 1 << 20, off), 0);
}

static void
roundtrip(uint32_t cs, uint32_t rcbits, uint64_t size, int rounds)
{
	struct qcow2_create_opts o = { .cluster_size = cs,
	    .refcount_bits = rcbits };
	char img[512], raw[512], e[512];
	uint8_t *ref = calloc(1, size), *back = malloc(size);
	struct blkdev *bd;

	snprintf(img, sizeof(img), "%s/t.qcow2", dir);
	snprintf(raw, sizeof(raw), "%s/t.raw", dir);
	cr_assert_eq(qcow2_create(img, size, &o, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(blkdev_open(&bd, img, NULL, 0, e, sizeof(e)), 0, "%s", e);
	pattern(bd, ref, size, cs, 0x9e3779b97f4a7c15ull ^ cs ^ rcbits, rounds,
	    false);
	read_all(bd, back, size);
	cr_assert_eq(memcmp(ref, back, size), 0, "read back differs");
	cr_assert_eq(blkdev_flush(bd), 0);
	blkdev_close(bd);
	write_file(raw, ref, size);
	cr_assert_eq(sh("qemu-img check -q %s", img), 0, "qemu-img check (cs %u)",
	    cs);
	cr_assert_eq(sh("qemu-img compare -q -f qcow2 -F raw %s %s", img, raw),
	    0, "qemu-img compare (cs %u)", cs);
	free(ref);
	free(back);
}

Test(qcow2, create_is_clean)
{
	char img[512], e[512];

	snprintf(img, sizeof(img), "%s/c.qcow2", dir);
	cr_assert_eq(qcow2_create(img, 1ull << 30, NULL, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(sh("qemu-img check -q %s", img), 0);
	cr_assert_eq(sh("qemu-img info --output=json %s | "
	    "grep -q '\"virtual-size\": 1073741824'", img), 0);
	cr_assert_neq(qcow2_create(img, 1 << 20, NULL, e, sizeof(e)), 0,
	    "overwrote an existing file");
}

Test(qcow2, roundtrip_64k)
{
	roundtrip(65536, 16, 16 << 20, 400);
}

Test(qcow2, roundtrip_4k_refcount8)
{
	roundtrip(4096, 8, 8 << 20, 600);
}

/* 512-byte clusters: the refcount table outgrows its first cluster. */
Test(qcow2, roundtrip_512_grows_refcount_table)
{
	roundtrip(512, 16, 12 << 20, 1500);
}

Test(qcow2, roundtrip_refcount_bits_1_and_64)
{
	roundtrip(4096, 1, 4 << 20, 200);
	cr_assert_eq(sh("rm -f %s/t.qcow2 %s/t.raw", dir, dir), 0);
	roundtrip(4096, 64, 4 << 20, 200);
}

/* Overlay on a qcow2 base written by qemu-io; ours on top. */
static void
backed(uint32_t cs, const char *basefmt)
{
	struct qcow2_create_opts o = { .cluster_size = cs, .backing = "base.img",
	    .backing_format = basefmt };
	uint64_t size = 8 << 20;
	char base[512], img[512], raw[512], e[512];
	uint8_t *ref = malloc(size), *back = malloc(size);
	struct blkdev *bd;

	snprintf(base, sizeof(base), "%s/base.img", dir);
	snprintf(img, sizeof(img), "%s/over.qcow2", dir);
	snprintf(raw, sizeof(raw), "%s/ref.raw", dir);
	cr_assert_eq(sh("qemu-img create -q -f %s %s 8M && qemu-io -f %s -c "
	    "'write -P 0x5a 0 3M' -c 'write -P 0xa5 5M 1M' -c "
	    "'write -P 0x11 7777k 13k' %s >/dev/null", basefmt, base, basefmt,
	    base), 0);
	cr_assert_eq(qcow2_create(img, 0, &o, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(blkdev_open(&bd, base, basefmt, BLKDEV_RDONLY, e,
	    sizeof(e)), 0, "%s", e);
	read_all(bd, ref, size);
	blkdev_close(bd);
	cr_assert_eq(blkdev_open(&bd, img, NULL, 0, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(blkdev_length(bd), size);
	pattern(bd, ref, size, cs, 12345 + cs, 300, true);
	read_all(bd, back, size);
	cr_assert_eq(memcmp(ref, back, size), 0, "read back differs");
	blkdev_close(bd);
	write_file(raw, ref, size);
	cr_assert_eq(sh("qemu-img check -q %s", img), 0);
	cr_assert_eq(sh("qemu-img compare -q -F raw %s %s", img, raw), 0);
	free(ref);
	free(back);
}

Test(qcow2, backing_qcow2_cow)
{
	backed(65536, "qcow2");
}

Test(qcow2, backing_raw_small_clusters)
{
	backed(4096, "raw");
}

/* Images qemu made read back what qemu wrote. */
Test(qcow2, reads_qemu_images)
{
	char base[512], over[512], e[512];
	uint8_t *b = malloc(4 << 20);
	struct blkdev *bd;
	uint64_t i;

	snprintf(base, sizeof(base), "%s/q.qcow2", dir);
	snprintf(over, sizeof(over), "%s/o.qcow2", dir);
	cr_assert_eq(sh("qemu-img create -q -f qcow2 %s 4M && qemu-io -c "
	    "'write -P 0x5a 0 1M' %s >/dev/null", base, base), 0);
	cr_assert_eq(blkdev_open(&bd, base, NULL, BLKDEV_RDONLY, e, sizeof(e)),
	    0, "%s", e);
	read_all(bd, b, 4 << 20);
	for (i = 0; i < 4 << 20; i++)
		cr_assert_eq(b[i], i < (1 << 20) ? 0x5a : 0, "byte %lu", i);
	blkdev_close(bd);
	cr_assert_eq(sh("qemu-img create -q -f qcow2 -b q.qcow2 -F qcow2 %s && "
	    "qemu-io -c 'write -P 0x33 512k 64k' -c 'write -z 2M 64k' %s "
	    ">/dev/null", over, over), 0);
	cr_assert_eq(blkdev_open(&bd, over, NULL, 0, e, sizeof(e)), 0, "%s", e);
	read_all(bd, b, 4 << 20);
	for (i = 0; i < 4 << 20; i++)
		cr_assert_eq(b[i], i >= 512 << 10 && i < 576 << 10 ? 0x33 :
		    i < (1 << 20) ? 0x5a : 0, "byte %lu", i);
	/* and we can write to it, qemu still happy */
	memset(b, 0x77, 100000);
	cr_assert_eq(blkdev_pwrite(bd, b, 100000, 1000000), 0);
	blkdev_close(bd);
	cr_assert_eq(sh("qemu-img check -q %s", over), 0);
	cr_assert_eq(sh("qemu-io -c 'read -P 0x77 1000000 100000' %s | "
	    "grep -q 'read 100000'", over), 0);
	free(b);
}

/* Compressed clusters (qemu-img convert -c) read back. */
Test(qcow2, reads_compressed)
{
	char src[512], img[512], e[512];
	uint8_t *b = malloc(2 << 20);
	struct blkdev *bd;
	uint64_t i;

	snprintf(src, sizeof(src), "%s/s.raw", dir);
	snprintf(img, sizeof(img), "%s/z.qcow2", dir);
	for (i = 0; i < 2 << 20; i++)
		b[i] = (uint8_t)(i / 1000);
	write_file(src, b, 2 << 20);
	cr_assert_eq(sh("qemu-img convert -c -O qcow2 %s %s", src, img), 0);
	memset(b, 0, 2 << 20);
	cr_assert_eq(blkdev_open(&bd, img, NULL, 0, e, sizeof(e)), 0, "%s", e);
	read_all(bd, b, 2 << 20);
	for (i = 0; i < 2 << 20; i++)
		cr_assert_eq(b[i], (uint8_t)(i / 1000), "byte %lu", i);
	/* overwrite part of a compressed cluster: COW from inflated data */
	cr_assert_eq(blkdev_pwrite(bd, "xyz", 3, 70000), 0);
	blkdev_close(bd);
	cr_assert_eq(sh("qemu-img check -q %s", img), 0);
	free(b);
}

static uint32_t
hdr32(const char *path, off_t off)
{
	unsigned char b[4];
	int fd = open(path, O_RDONLY);

	cr_assert_eq(pread(fd, b, 4, off), 4);
	close(fd);
	return (uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3];
}

/* Fill a disk of 512-byte clusters: the refcount table must move. */
Test(qcow2, refcount_table_growth_full_disk)
{
	struct qcow2_create_opts o = { .cluster_size = 512 };
	uint64_t size = 24 << 20, off;
	char img[512], raw[512], e[512];
	uint8_t *ref = malloc(size);
	struct blkdev *bd;

	snprintf(img, sizeof(img), "%s/g.qcow2", dir);
	snprintf(raw, sizeof(raw), "%s/g.raw", dir);
	for (off = 0; off < size; off++)
		ref[off] = (uint8_t)(off * 7 / 512);
	cr_assert_eq(qcow2_create(img, size, &o, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(hdr32(img, 56), 1);
	cr_assert_eq(blkdev_open(&bd, img, NULL, 0, e, sizeof(e)), 0, "%s", e);
	for (off = 0; off < size; off += 65536 + 512)
		cr_assert_eq(blkdev_pwrite(bd, ref + off, size - off < 66048 ?
		    size - off : 66048, off), 0);
	blkdev_close(bd);
	cr_assert_gt(hdr32(img, 56), 1, "refcount table did not grow");
	write_file(raw, ref, size);
	cr_assert_eq(sh("qemu-img check -q %s", img), 0);
	cr_assert_eq(sh("qemu-img compare -q -F raw %s %s", img, raw), 0);
	free(ref);
}
