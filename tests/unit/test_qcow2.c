/*
 * qcow2 through our block layer, judged by qemu-img: everything written
 * must pass `qemu-img check` and `qemu-img compare` equal to a raw image
 * written with the same pattern; images qemu made must read back right.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit/scratch.h"
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
	scratch_remove(dir);
}

TestSuite(qcow2, .init = setup, .fini = teardown, .timeout = 120);

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

/* --- corrupt images: refused with a clear message, left untouched --- */

static uint8_t *
slurp(const char *path, size_t *n)
{
	struct stat st;
	uint8_t *b;
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	b = malloc((size_t)st.st_size + 1);
	cr_assert_eq(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*n = (size_t)st.st_size;
	return b;
}

static void
poke(const char *path, off_t off, uint64_t v, int width)
{
	unsigned char b[8];
	int i, fd = open(path, O_WRONLY);

	for (i = 0; i < width; i++)
		b[i] = (unsigned char)(v >> (8 * (width - 1 - i)));
	cr_assert_eq(pwrite(fd, b, (size_t)width, off), width);
	close(fd);
}

static uint64_t
hdr64(const char *path, off_t off)
{
	return (uint64_t)hdr32(path, off) << 32 | hdr32(path, off + 4);
}

/* A qemu-made image with data, corrupted by fn, must be refused. */
static void
refused(const char *phrase, void (*fn)(const char *img), unsigned flags)
{
	char img[512], e[512];
	struct blkdev *bd = NULL;
	uint8_t *before, *after;
	size_t nb, na;

	snprintf(img, sizeof(img), "%s/bad.qcow2", dir);
	cr_assert_eq(sh("qemu-img create -q -f qcow2 %s 16M && qemu-io -c "
	    "'write -P 1 0 128k' %s >/dev/null", img, img), 0);
	fn(img);
	before = slurp(img, &nb);
	e[0] = '\0';
	cr_assert_lt(blkdev_open(&bd, img, "qcow2", flags, e, sizeof(e)), 0,
	    "opened a corrupt image (%s)", phrase);
	cr_assert_null(bd);
	cr_assert_not_null(strstr(e, img), "message does not name the file: %s",
	    e);
	cr_assert_not_null(strstr(e, phrase), "expected '%s' in: %s", phrase, e);
	after = slurp(img, &na);
	cr_assert(nb == na && memcmp(before, after, nb) == 0,
	    "refused image was modified");
	free(before);
	free(after);
}

static void c_magic(const char *p) { poke(p, 0, 0x51464900, 4); }
static void c_version(const char *p) { poke(p, 4, 2, 4); }
static void c_cbits(const char *p) { poke(p, 20, 30, 4); }
static void c_l1_eof(const char *p) { poke(p, 40, 0x7fff0000, 8); }
static void c_l1_hdr(const char *p) { poke(p, 40, 0, 8); }
static void c_rt_over(const char *p) { poke(p, 56, 0xffffffff, 4); }
static void c_rt_eof(const char *p) { poke(p, 48, 0x10000000, 8); }
static void c_rorder(const char *p) { poke(p, 96, 7, 4); }
static void c_incompat(const char *p) { poke(p, 72, 0x20, 8); }
static void c_dirty(const char *p) { poke(p, 72, 1, 8); }
static void c_l1size(const char *p) { poke(p, 36, 0, 4); }
static void c_trunc(const char *p) { cr_assert_eq(truncate(p, 50), 0); }
static void c_backoff(const char *p) { poke(p, 8, 65530, 8); poke(p, 16, 20, 4); }
static void c_ext(const char *p) { poke(p, 112, 0x12345678, 4); poke(p, 116, 100000, 4); }

static void
c_l1_entry(const char *p)
{
	poke(p, (off_t)hdr64(p, 40), 0x8000000000f00000ull, 8);
}

/* Zero the refcount of the L1 table's cluster: it would be reused. */
static void
c_rc_zero(const char *p)
{
	uint64_t rb = hdr64(p, (off_t)hdr64(p, 48));
	uint64_t l1c = hdr64(p, 40) / 65536;

	poke(p, (off_t)(rb + 2 * l1c), 0, 2);
}

Test(qcow2, corrupt_bad_magic) { refused("bad magic", c_magic, 0); }
Test(qcow2, corrupt_version) { refused("version 2", c_version, 0); }
Test(qcow2, corrupt_cluster_bits) { refused("cluster_bits 30", c_cbits, 0); }
Test(qcow2, corrupt_l1_past_eof) { refused("past the end", c_l1_eof, 0); }
Test(qcow2, corrupt_l1_overlaps_header) { refused("L1 table at 0", c_l1_hdr, 0); }
Test(qcow2, corrupt_refcount_table_overflow) { refused("refcount table of", c_rt_over, 0); }
Test(qcow2, corrupt_refcount_table_past_eof) { refused("refcount table at", c_rt_eof, 0); }
Test(qcow2, corrupt_refcount_order) { refused("refcount_order 7", c_rorder, 0); }
Test(qcow2, corrupt_unknown_incompat) { refused("unknown incompatible", c_incompat, BLKDEV_RDONLY); }
Test(qcow2, corrupt_dirty_rw) { refused("dirty", c_dirty, 0); }
Test(qcow2, corrupt_l1_too_small) { refused("needed for the virtual size", c_l1size, 0); }
Test(qcow2, corrupt_truncated) { refused("too short", c_trunc, 0); }
Test(qcow2, corrupt_backing_name) { refused("backing file name", c_backoff, 0); }
Test(qcow2, corrupt_header_extension) { refused("header extension", c_ext, 0); }
Test(qcow2, corrupt_l1_entry) { refused("L1 entry 0", c_l1_entry, 0); }
Test(qcow2, corrupt_metadata_refcount_zero) { refused("refcount 0", c_rc_zero, 0); }

Test(qcow2, missing_backing_file)
{
	char img[512], e[512];
	struct blkdev *bd;

	snprintf(img, sizeof(img), "%s/o.qcow2", dir);
	cr_assert_eq(sh("cd %s && qemu-img create -q -f qcow2 b.qcow2 1M && "
	    "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 o.qcow2 && "
	    "rm b.qcow2", dir), 0);
	cr_assert_lt(blkdev_open(&bd, img, NULL, 0, e, sizeof(e)), 0);
	cr_assert_not_null(strstr(e, img), "%s", e);
	cr_assert_not_null(strstr(e, "backing file"), "%s", e);
	cr_assert_not_null(strstr(e, "No such file"), "%s", e);
}

Test(qcow2, backing_loop_refused)
{
	char img[512], e[512];
	struct blkdev *bd;

	snprintf(img, sizeof(img), "%s/a.qcow2", dir);
	cr_assert_eq(sh("cd %s && qemu-img create -q -f qcow2 a.qcow2 1M && "
	    "qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 b.qcow2 && "
	    "qemu-img rebase -u -b b.qcow2 -F qcow2 a.qcow2", dir), 0);
	cr_assert_lt(blkdev_open(&bd, img, NULL, 0, e, sizeof(e)), 0);
	cr_assert_not_null(strstr(e, "backing chain"), "%s", e);
}

static int our_check(const char *img, struct qcow2_check_result *r);
static int our_repair(const char *img, struct qcow2_check_result *r);
static uint64_t qemu_leaks(const char *img);

/* --- kill -9 in the middle of writing: no corruption, leaks allowed --- */

static void
writer(const char *img, uint64_t seed)
{
	struct blkdev *bd;
	uint8_t buf[20000];
	uint64_t off, len;
	char e[512];

	if (blkdev_open(&bd, img, NULL, 0, e, sizeof(e)) < 0)
		_exit(3);
	memset(buf, (int)seed, sizeof(buf));
	for (;;) {
		off = rnd(&seed) % (blkdev_length(bd) - sizeof(buf));
		len = 1 + rnd(&seed) % sizeof(buf);
		if (rnd(&seed) % 8 == 0)
			(void)blkdev_discard(bd, off, len);
		else if (blkdev_pwrite(bd, buf, len, off) < 0)
			_exit(4);
	}
}

Test(qcow2, kill9_during_writes_leaves_no_corruption)
{
	struct qcow2_create_opts o = { .cluster_size = 512 };
	struct qcow2_check_result res;
	char img[512], e[512];
	int round, st, rc;
	pid_t pid;

	snprintf(img, sizeof(img), "%s/k.qcow2", dir);
	cr_assert_eq(sh("qemu-img create -q -f raw %s/kb.raw 8M", dir), 0);
	o.backing = "kb.raw";
	o.backing_format = "raw";
	cr_assert_eq(qcow2_create(img, 0, &o, e, sizeof(e)), 0, "%s", e);
	for (round = 0; round < 8; round++) {
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0)
			writer(img, 0x1234567ull * (uint64_t)(round + 1));
		usleep(30000 + 40000 * (useconds_t)round);
		kill(pid, SIGKILL);
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFSIGNALED(st), "writer died by itself: %d", st);
		/* 0: clean, 3: leaked clusters only; 2 would be corruption */
		rc = sh("qemu-img check -q %s >/dev/null 2>&1", img);
		cr_assert(rc == 0 || rc == 3, "round %d: qemu-img check exit %d",
		    round, rc);
		cr_assert_eq(our_check(img, &res), 0);
		cr_assert_eq(res.errors, 0, "round %d", round);
		cr_assert_eq(res.leaks, qemu_leaks(img), "round %d", round);
	}
	/* and what the crashes leaked can be reclaimed */
	cr_assert_eq(our_repair(img, &res), 0);
	cr_assert_eq(res.repaired, res.leaks);
	cr_assert_eq(sh("qemu-img check -q %s", img), 0);
}

/* --- our checker against qemu-img check --- */

static int
our_check(const char *img, struct qcow2_check_result *r)
{
	struct blkdev *bd;
	char e[512];
	int ret;

	cr_assert_eq(blkdev_open(&bd, img, "qcow2", BLKDEV_RDONLY, e, sizeof(e)),
	    0, "%s", e);
	ret = qcow2_check(bd, r, NULL, NULL);
	blkdev_close(bd);
	return ret;
}

static int
our_repair(const char *img, struct qcow2_check_result *r)
{
	struct blkdev *bd;
	char e[512];
	int ret;

	cr_assert_eq(blkdev_open(&bd, img, "qcow2", BLKDEV_RDONLY, e, sizeof(e)),
	    0, "%s", e);
	ret = qcow2_check_repair(bd, r, NULL, NULL);
	blkdev_close(bd);
	return ret;
}

static uint64_t
qemu_leaks(const char *img)
{
	char cmd[600], out[64] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "qemu-img check --output=json %s 2>/dev/null"
	    " | sed -n 's/.*\"leaks\": \\([0-9]*\\).*/\\1/p'", img);
	cr_assert_not_null(p = popen(cmd, "r"));
	if (fgets(out, sizeof(out), p) == NULL)
		out[0] = '\0';
	pclose(p);
	return strtoull(out, NULL, 10);
}

Test(qcow2, checker_agrees_with_qemu)
{
	struct qcow2_check_result r;
	char img[512];
	uint64_t rb, l1, l2, data;

	snprintf(img, sizeof(img), "%s/chk.qcow2", dir);
	cr_assert_eq(sh("qemu-img create -q -f qcow2 %s 64M && qemu-io -c "
	    "'write -P 7 0 1M' -c 'write -P 8 40M 100k' %s >/dev/null", img,
	    img), 0);
	cr_assert_eq(our_check(img, &r), 0);
	cr_assert_eq(r.errors, 0);
	cr_assert_eq(r.leaks, 0);
	cr_assert_eq(r.allocated, 18);
	/* a leak: count a cluster nothing uses (one more at the end) */
	rb = hdr64(img, (off_t)hdr64(img, 48));
	cr_assert_eq(sh("truncate -s 24M %s", img), 0);
	poke(img, (off_t)(rb + 2 * 200), 1, 2);
	cr_assert_eq(sh("qemu-img check -q %s >/dev/null 2>&1", img), 3);
	cr_assert_eq(our_check(img, &r), 0);
	cr_assert_eq(r.errors, 0);
	cr_assert_eq(r.leaks, qemu_leaks(img));
	cr_assert_eq(r.leaks, 1);
	cr_assert_eq(our_repair(img, &r), 0);
	cr_assert_eq(r.repaired, 1);
	cr_assert_eq(sh("qemu-img check -q %s", img), 0, "leak not repaired");
	cr_assert_eq(sh("qemu-io -c 'read -P 7 0 1M' %s | grep -q 'read 1048576'",
	    img), 0, "data harmed by the repair");
	poke(img, (off_t)(rb + 2 * 200), 1, 2);
	/* an error: the first data cluster's refcount dropped to 0 */
	l1 = hdr64(img, 40);
	l2 = hdr64(img, (off_t)l1) & 0x00fffffffffffe00ull;
	data = hdr64(img, (off_t)l2) & 0x00fffffffffffe00ull;
	poke(img, (off_t)(rb + 2 * (data / 65536)), 0, 2);
	cr_assert_eq(sh("qemu-img check -q %s >/dev/null 2>&1", img), 2);
	cr_assert_eq(our_check(img, &r), 0);
	cr_assert_geq(r.errors, 1);
	cr_assert_eq(our_repair(img, &r), 0);
	cr_assert_eq(r.repaired, 0, "repaired leaks on an image with errors");
}

Test(qcow2, checker_clean_after_our_writes)
{
	struct qcow2_check_result r;
	char img[512];

	roundtrip(512, 16, 12 << 20, 800);
	snprintf(img, sizeof(img), "%s/t.qcow2", dir);
	cr_assert_eq(our_check(img, &r), 0);
	cr_assert_eq(r.errors, 0);
	cr_assert_eq(r.leaks, 0);
}

/* --- several threads on one image (virtio-blk will do this) --- */

struct tjob {
	struct blkdev *bd;
	uint8_t *ref;		/* the whole disk's reference */
	uint64_t base, span, cs, seed;
	int failed;
};

static void *
tjob_run(void *arg)
{
	struct tjob *j = arg;
	uint8_t *buf = malloc(3 * j->cs + 4096), *rd = malloc(3 * j->cs + 4096);
	uint64_t off, len, i;
	int r, op;

	for (r = 0; r < 300 && !j->failed; r++) {
		op = (int)(rnd(&j->seed) % 10);
		off = j->base + rnd(&j->seed) % j->span;
		len = 1 + rnd(&j->seed) % (3 * j->cs + 4096);
		if (off + len > j->base + j->span)
			len = j->base + j->span - off;
		if (op < 6) {
			for (i = 0; i < len; i++)
				buf[i] = (uint8_t)(j->seed >> (i % 40)) ^ (uint8_t)i;
			j->failed |= blkdev_pwrite(j->bd, buf, len, off) != 0;
			memcpy(j->ref + off, buf, len);
		} else if (op < 8) {
			j->failed |= blkdev_pread(j->bd, rd, len, off) != 0;
			j->failed |= memcmp(rd, j->ref + off, len) != 0;
		} else {
			off &= ~(j->cs - 1);
			len = (len + j->cs - 1) & ~(j->cs - 1);
			if (off < j->base)
				continue;
			if (off + len > j->base + j->span)
				len = j->base + j->span - off;
			j->failed |= blkdev_write_zeroes(j->bd, off, len) != 0;
			memset(j->ref + off, 0, len);
		}
	}
	free(buf);
	free(rd);
	return NULL;
}

Test(qcow2, threads_on_disjoint_regions)
{
	struct qcow2_create_opts o = { .cluster_size = 4096 };
	uint64_t size = 16 << 20;
	uint8_t *ref = calloc(1, size), *back = malloc(size);
	char img[512], raw[512], e[512];
	struct tjob jobs[4];
	pthread_t th[4];
	struct blkdev *bd;
	int i;

	snprintf(img, sizeof(img), "%s/th.qcow2", dir);
	snprintf(raw, sizeof(raw), "%s/th.raw", dir);
	cr_assert_eq(qcow2_create(img, size, &o, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(blkdev_open(&bd, img, NULL, 0, e, sizeof(e)), 0, "%s", e);
	for (i = 0; i < 4; i++) {
		jobs[i] = (struct tjob){ bd, ref, (uint64_t)i * (size / 4),
		    size / 4, 4096, 77 + (uint64_t)i, 0 };
		cr_assert_eq(pthread_create(&th[i], NULL, tjob_run, &jobs[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(jobs[i].failed, 0, "thread %d saw an error", i);
	}
	read_all(bd, back, size);
	cr_assert_eq(memcmp(ref, back, size), 0);
	blkdev_close(bd);
	write_file(raw, ref, size);
	cr_assert_eq(sh("qemu-img check -q %s", img), 0);
	cr_assert_eq(sh("qemu-img compare -q -F raw %s %s", img, raw), 0);
	free(ref);
	free(back);
}

/* --- image locks: ours and QEMU's see each other --- */

Test(qcow2, image_locks)
{
	struct blkdev *a, *b, *o;
	char img[512], raw[512], over[512], e[512];

	snprintf(img, sizeof(img), "%s/l.qcow2", dir);
	snprintf(raw, sizeof(raw), "%s/l.raw", dir);
	snprintf(over, sizeof(over), "%s/lo.qcow2", dir);
	cr_assert_eq(qcow2_create(img, 1 << 20, NULL, e, sizeof(e)), 0);
	cr_assert_eq(raw_create(raw, 1 << 20, e, sizeof(e)), 0);
	cr_assert_eq(blkdev_open(&a, img, NULL, 0, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(blkdev_open(&b, img, NULL, 0, e, sizeof(e)), -EBUSY);
	cr_assert_not_null(strstr(e, img), "%s", e);
	cr_assert_eq(blkdev_open(&b, img, NULL, BLKDEV_RDONLY, e, sizeof(e)),
	    -EBUSY);
	cr_assert_not_null(strstr(e, "being written"), "%s", e);
	cr_assert_eq(blkdev_open(&b, img, NULL, BLKDEV_RDONLY | BLKDEV_NOLOCK, e,
	    sizeof(e)), 0, "%s", e);
	blkdev_close(b);
	/* qemu refuses an image we write, and we one that qemu writes */
	cr_assert_neq(sh("qemu-io -r -c 'read 0 512' %s >/dev/null 2>&1", img),
	    0);
	cr_assert_eq(sh("qemu-io -r -U -c 'read 0 512' %s >/dev/null 2>&1", img),
	    0);
	blkdev_close(a);
	cr_assert_eq(sh("(qemu-io -c 'sleep 1500' %s >/dev/null 2>&1 &) ; "
	    "sleep 0.5", raw), 0);
	cr_assert_eq(blkdev_open(&a, raw, "raw", 0, e, sizeof(e)), -EBUSY);
	cr_assert_eq(sh("sleep 1.5"), 0);
	cr_assert_eq(blkdev_open(&a, raw, "raw", 0, e, sizeof(e)), 0, "%s", e);
	blkdev_close(a);
	/* readers share; a base under an overlay cannot be written */
	cr_assert_eq(blkdev_open(&a, img, NULL, BLKDEV_RDONLY, e, sizeof(e)), 0);
	cr_assert_eq(blkdev_open(&b, img, NULL, BLKDEV_RDONLY, e, sizeof(e)), 0);
	blkdev_close(a);
	blkdev_close(b);
	cr_assert_eq(sh("cd %s && qemu-img create -q -f qcow2 -b l.qcow2 -F "
	    "qcow2 lo.qcow2", dir), 0);
	cr_assert_eq(blkdev_open(&o, over, NULL, 0, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(blkdev_open(&a, img, NULL, 0, e, sizeof(e)), -EBUSY);
	cr_assert_not_null(strstr(e, "does not allow writers"), "%s", e);
	blkdev_close(o);
}

/* A live migration's hand-over: the source lets go of the image locks
 * and takes them back; the destination, open without them, takes them
 * with a fresh open; the base stays shared by both. */
Test(qcow2, image_locks_handed_over)
{
	struct blkdev *src, *dst, *dst2;
	char base[512], top[512], e[512];
	uint8_t b[512];

	snprintf(base, sizeof(base), "%s/hb.qcow2", dir);
	snprintf(top, sizeof(top), "%s/ht.qcow2", dir);
	cr_assert_eq(qcow2_create(base, 1 << 20, NULL, e, sizeof(e)), 0);
	cr_assert_eq(sh("cd %s && qemu-img create -q -f qcow2 -b hb.qcow2 -F "
	    "qcow2 ht.qcow2", dir), 0);
	cr_assert_eq(blkdev_open(&src, top, NULL, 0, e, sizeof(e)), 0, "%s", e);
	cr_assert(src->locked);
	cr_assert_eq(blkdev_open(&dst, top, NULL, BLKDEV_NOLOCK, e, sizeof(e)),
	    0, "%s", e);
	cr_assert_not(dst->locked);
	cr_assert_eq(blkdev_open(&dst2, top, NULL, 0, e, sizeof(e)), -EBUSY);
	/* The source writes on; then lets go. */
	memset(b, 0x77, sizeof(b));
	cr_assert_eq(blkdev_pwrite(src, b, sizeof(b), 4096), 0);
	cr_assert_eq(blkdev_flush(src), 0);
	cr_assert_eq(blkdev_unlock(src), 0);
	cr_assert_not(src->locked);
	cr_assert_eq(blkdev_open(&dst2, top, NULL, 0, e, sizeof(e)), 0, "%s", e);
	cr_assert(dst2->locked);
	/* A fresh open sees what the source wrote after the first one. */
	memset(b, 0, sizeof(b));
	cr_assert_eq(blkdev_pread(dst2, b, sizeof(b), 4096), 0);
	cr_assert_eq(b[0], 0x77);
	cr_assert_eq(b[511], 0x77);
	/* Nor can the source take the image back now. */
	cr_assert_eq(blkdev_relock(src, e, sizeof(e)), -EBUSY);
	cr_assert_not_null(strstr(e, top), "%s", e);
	cr_assert_not(src->locked);
	blkdev_close(dst2);
	blkdev_close(dst);
	/* The destination failed and went: the source takes it back. */
	cr_assert_eq(blkdev_relock(src, e, sizeof(e)), 0, "%s", e);
	cr_assert(src->locked);
	cr_assert_eq(blkdev_relock(src, e, sizeof(e)), 0, "twice is once");
	cr_assert_eq(blkdev_open(&dst2, top, NULL, 0, e, sizeof(e)), -EBUSY);
	cr_assert_neq(sh("qemu-img info %s >/dev/null 2>&1", top), 0);
	cr_assert_eq(blkdev_unlock(src), 0);
	cr_assert_eq(sh("qemu-img info %s >/dev/null 2>&1", top), 0);
	blkdev_close(src);
}

/* What was flushed survives kill -9, even with writes still going on. */
Test(qcow2, flushed_data_survives_kill9)
{
	struct qcow2_create_opts o = { .cluster_size = 4096 };
	uint8_t pat[65536], buf[65536], junk[8192];
	char img[512], e[512], c;
	struct blkdev *bd;
	uint64_t seed = 99, i;
	int p[2], st, rc;
	pid_t pid;

	snprintf(img, sizeof(img), "%s/f.qcow2", dir);
	cr_assert_eq(qcow2_create(img, 64 << 20, &o, e, sizeof(e)), 0, "%s", e);
	for (i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 13 + 7);
	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (blkdev_open(&bd, img, NULL, 0, e, sizeof(e)) < 0 ||
		    blkdev_pwrite(bd, pat, sizeof(pat), 1 << 20) < 0 ||
		    blkdev_pwrite(bd, pat, 1000, 5 << 20) < 0 ||
		    blkdev_flush(bd) < 0 || write(p[1], "f", 1) != 1)
			_exit(1);
		memset(junk, 0xee, sizeof(junk));
		for (;;)	/* never flushed: may be lost, must not corrupt */
			(void)blkdev_pwrite(bd, junk, sizeof(junk), (8 << 20) +
			    rnd(&seed) % (48 << 20));
	}
	cr_assert_eq(read(p[0], &c, 1), 1);
	usleep(100000);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	rc = sh("qemu-img check -q %s >/dev/null 2>&1", img);
	cr_assert(rc == 0 || rc == 3, "qemu-img check exit %d", rc);
	cr_assert_eq(blkdev_open(&bd, img, NULL, BLKDEV_RDONLY, e, sizeof(e)), 0,
	    "%s", e);
	cr_assert_eq(blkdev_pread(bd, buf, sizeof(buf), 1 << 20), 0);
	cr_assert_eq(memcmp(buf, pat, sizeof(pat)), 0, "flushed data lost");
	cr_assert_eq(blkdev_pread(bd, buf, 1000, 5 << 20), 0);
	cr_assert_eq(memcmp(buf, pat, 1000), 0, "flushed data lost");
	blkdev_close(bd);
}

/* A backing file of odd size under an overlay that is not a multiple of
 * the cluster size (qemu-img rounds 1000001 up to sectors). */
Test(qcow2, odd_size)
{
	char img[512], raw[512], e[512];
	uint64_t size = 1000448;
	uint8_t *ref = calloc(1, size);
	struct blkdev *bd;

	snprintf(img, sizeof(img), "%s/odd.qcow2", dir);
	snprintf(raw, sizeof(raw), "%s/odd.raw", dir);
	cr_assert_eq(sh("qemu-img create -q -f raw %s/oddb.raw 999999", dir), 0);
	cr_assert_eq(sh("qemu-io -f raw -c 'write -P 0x44 0 999999' %s/oddb.raw "
	    ">/dev/null", dir), 0);
	memset(ref, 0x44, 999999);
	cr_assert_eq(sh("cd %s && qemu-img create -q -f qcow2 -b oddb.raw -F raw "
	    "odd.qcow2 1000001", dir), 0);
	cr_assert_eq(blkdev_open(&bd, img, NULL, 0, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(blkdev_length(bd), size);
	pattern(bd, ref, size, 65536, 4242, 100, true);
	cr_assert_eq(blkdev_pwrite(bd, "end", 3, size - 3), 0);
	memcpy(ref + size - 3, "end", 3);
	cr_assert_eq(blkdev_pwrite(bd, "x", 1, size), -EINVAL);
	blkdev_close(bd);
	write_file(raw, ref, size);
	cr_assert_eq(sh("qemu-img check -q %s", img), 0);
	cr_assert_eq(sh("qemu-img compare -q -F raw %s %s", img, raw), 0);
	free(ref);
}
