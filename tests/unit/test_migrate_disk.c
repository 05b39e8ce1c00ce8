/*
 * The disk records of a migration that copies the storage: the disk
 * header and chunk batches, encoded and decoded, and refused when
 * malformed or hostile (before anything is written); the source's first
 * copy and dirty rounds, with writes between them, landing on a second
 * image byte for byte; and a whole version 2 stream (disks, RAM, state)
 * of a real software-CPU VM with a virtio-blk disk loaded into another.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio_blk.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/migrate.h"
#include "migrate/snap.h"
#include "migrate/vmstate.h"
#include "unit/migrate_stream.h"
#include "unit/scratch.h"
#include "vmfs/blkdev.h"
#include "vmfs/raw.h"

/* A disk of 9 whole chunks and a partial one (the last is 3 sectors). */
#define DSIZE	((9ull << MIGRATE_CHUNK_SHIFT) + 3 * 512)
#define CHUNK	(1u << MIGRATE_CHUNK_SHIFT)

static char dir[] = "/tmp/test_migrate_disk.XXXXXX";

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
	scratch_remove(dir);
}

static struct blkdev *
new_disk(const char *name, uint64_t size)
{
	char path[256], err[512];
	struct blkdev *bd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(raw_create(path, size, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(blkdev_open(&bd, path, "raw", 0, err, sizeof(err)), 0,
	    "%s", err);
	return bd;
}

static void
fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

static bool
same_disks(struct blkdev *a, struct blkdev *b)
{
	uint8_t *x = malloc(DSIZE), *y = malloc(DSIZE);
	bool same;

	cr_assert_eq(blkdev_pread(a, x, DSIZE, 0), 0);
	cr_assert_eq(blkdev_pread(b, y, DSIZE, 0), 0);
	same = memcmp(x, y, DSIZE) == 0;
	free(x);
	free(y);
	return same;
}

static struct migrate_disk_hdr
good_hdr(void)
{
	struct migrate_disk_hdr h = { .index = 1,
	    .chunk_shift = MIGRATE_CHUNK_SHIFT, .virtual_size = DSIZE,
	    .cluster_size = 65536, .format = "qcow2", .file = "a.qcow2" };

	return h;
}

TestSuite(migrate_disk, .init = setup, .fini = teardown);

Test(migrate_disk, header_round_trip_and_refusals)
{
	struct migrate_disk_hdr h = good_hdr(), got, bad;
	uint8_t buf[MIGRATE_DISK_HDR_LEN + 8];
	char err[256];
	size_t n;

	n = migrate_disk_hdr_encode(&h, buf, sizeof(buf));
	cr_assert_eq(n, MIGRATE_DISK_HDR_LEN);
	cr_assert_eq(migrate_disk_hdr_encode(&h, buf, n - 1), 0);
	cr_assert_eq(migrate_disk_hdr_decode(&got, buf, n, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(got.index, 1);
	cr_assert_eq(got.virtual_size, DSIZE);
	cr_assert_eq(got.cluster_size, 65536);
	cr_assert_str_eq(got.format, "qcow2");
	cr_assert_str_eq(got.file, "a.qcow2");
	/* Not its length. */
	cr_assert_eq(migrate_disk_hdr_decode(&got, buf, n - 1, err,
	    sizeof(err)), -EPROTO);
	cr_assert_eq(migrate_disk_hdr_decode(&got, buf, n + 1, err,
	    sizeof(err)), -EPROTO);

	/* Each field out of range is refused, with a reason. */
	struct { const char *what; void (*mk)(struct migrate_disk_hdr *); }
	    cases[] = {
		{ "index", NULL }, { "shift small", NULL },
		{ "shift big", NULL }, { "size 0", NULL },
		{ "size odd", NULL }, { "format", NULL },
		{ "cluster", NULL }, { "slash", NULL }, { "dot", NULL },
		{ "dotdot", NULL }, { "empty", NULL }, { "newline", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bad = good_hdr();
		switch (i) {
		case 0: bad.index = MIGRATE_MAX_DISKS; break;
		case 1: bad.chunk_shift = MIGRATE_CHUNK_SHIFT_MIN - 1; break;
		case 2: bad.chunk_shift = MIGRATE_CHUNK_SHIFT_MAX + 1; break;
		case 3: bad.virtual_size = 0; break;
		case 4: bad.virtual_size = DSIZE + 1; break;
		case 5: snprintf(bad.format, sizeof(bad.format), "vmdk"); break;
		case 6: bad.cluster_size = 65535; break;
		case 7: snprintf(bad.file, sizeof(bad.file), "../x"); break;
		case 8: snprintf(bad.file, sizeof(bad.file), ".hidden"); break;
		case 9: snprintf(bad.file, sizeof(bad.file), ".."); break;
		case 10: bad.file[0] = '\0'; break;
		case 11: snprintf(bad.file, sizeof(bad.file), "a\nb"); break;
		}
		migrate_disk_hdr_encode(&bad, buf, sizeof(buf));
		err[0] = '\0';
		cr_assert_eq(migrate_disk_hdr_decode(&got, buf, n, err,
		    sizeof(err)), -EPROTO, "%s accepted", cases[i].what);
		cr_assert_neq(err[0], '\0', "%s: no reason", cases[i].what);
	}
	/* A name that fills its field has no terminator. */
	migrate_disk_hdr_encode(&h, buf, sizeof(buf));
	memset(buf + n - 128, 'a', 128);
	cr_assert_eq(migrate_disk_hdr_decode(&got, buf, n, err, sizeof(err)),
	    -EPROTO);
}

/* A batch: chunk 0 data, chunk 2 zero, the partial last chunk data. */
static void
good_batch(struct migrate_blocks *b, uint8_t *data)
{
	cr_assert_eq(migrate_blocks_init(b, MIGRATE_CHUNK_SHIFT), 0);
	migrate_blocks_reset(b, 0);
	fill(data, CHUNK, 1);
	migrate_blocks_add(b, 0, data, CHUNK, false);
	migrate_blocks_add(b, 2 * (uint64_t)CHUNK, NULL, CHUNK, true);
	migrate_blocks_add(b, 9 * (uint64_t)CHUNK, data, 3 * 512, false);
}

Test(migrate_disk, blocks_apply_data_zero_and_the_short_last_chunk)
{
	struct migrate_disk d[2] = { { .bd = new_disk("d", DSIZE),
	    .size = DSIZE, .chunk_shift = MIGRATE_CHUNK_SHIFT } };
	struct migrate_blocks b;
	uint8_t *data = malloc(CHUNK), *back = malloc(CHUNK), *junk;
	char err[256];

	/* Old data where the zero chunk goes: it must be overwritten. */
	junk = malloc(CHUNK);
	memset(junk, 0x5a, CHUNK);
	cr_assert_eq(blkdev_pwrite(d[0].bd, junk, CHUNK, 2 * CHUNK), 0);
	good_batch(&b, data);
	cr_assert_eq(b.len, 8 + 3 * 8 + CHUNK + 3 * 512);
	cr_assert_eq(migrate_blocks_apply(d, 2, b.buf, b.len, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(d[0].chunks_written, 3);
	cr_assert_eq(blkdev_pread(d[0].bd, back, CHUNK, 0), 0);
	cr_assert_eq(memcmp(back, data, CHUNK), 0);
	cr_assert_eq(blkdev_pread(d[0].bd, back, CHUNK, 2 * CHUNK), 0);
	cr_assert(migrate_is_zero(back, CHUNK));
	cr_assert_eq(blkdev_pread(d[0].bd, back, 3 * 512, 9 * CHUNK), 0);
	cr_assert_eq(memcmp(back, data, 3 * 512), 0);
	migrate_blocks_free(&b);
	blkdev_close(d[0].bd);
	free(data);
	free(back);
	free(junk);
}

/* Apply p (refused, with a reason) and check the disk is untouched. */
static void
refused(struct migrate_disk *d, int n, const uint8_t *p, size_t len,
    const char *what)
{
	uint8_t *back = malloc(DSIZE);
	char err[256] = "";

	cr_assert_lt(migrate_blocks_apply(d, n, p, len, err, sizeof(err)), 0,
	    "%s accepted", what);
	cr_assert_neq(err[0], '\0', "%s: no reason", what);
	cr_assert_eq(blkdev_pread(d[0].bd, back, DSIZE, 0), 0);
	cr_assert(migrate_is_zero(back, DSIZE), "%s: written before the "
	    "whole record was checked", what);
	free(back);
}

Test(migrate_disk, hostile_blocks_are_refused_before_any_write)
{
	struct migrate_disk d[2] = { { .bd = new_disk("d", DSIZE),
	    .size = DSIZE, .chunk_shift = MIGRATE_CHUNK_SHIFT } };
	struct migrate_blocks b;
	uint8_t *data = malloc(CHUNK), *p;
	size_t last;

	good_batch(&b, data);
	p = malloc(b.len + 16);
	last = 8 + 8 + CHUNK + 8;	/* the third chunk's offset */
	/* Cut anywhere: shorter than its chunks. */
	refused(d, 2, b.buf, 4, "4 bytes");
	refused(d, 2, b.buf, b.len - 1, "one byte short");
	refused(d, 2, b.buf, last + 4, "cut in an offset");
	/* A byte too many. */
	memcpy(p, b.buf, b.len);
	p[b.len] = 0;
	refused(d, 2, p, b.len + 1, "trailing byte");
	/* Disk 1 has no header; disk 7 is past the table. */
	memcpy(p, b.buf, b.len);
	p[0] = 1;
	refused(d, 2, p, b.len, "disk without header");
	p[0] = 7;
	refused(d, 2, p, b.len, "disk past the table");
	/* Too many chunks for a record. */
	memcpy(p, b.buf, b.len);
	p[4] = MIGRATE_DISK_BATCH + 1;
	refused(d, 2, p, b.len, "count");
	/* The last chunk misaligned, past the end, or at 2^64 - chunk. */
	uint64_t offs[] = { 9ull * CHUNK + 512, 10ull * CHUNK,
	    ~(uint64_t)(CHUNK - 1), DSIZE };
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		memcpy(p, b.buf, b.len);
		for (int k = 0; k < 8; k++)
			p[last + k] = (uint8_t)(offs[i] >> (8 * k));
		refused(d, 2, p, b.len, "bad offset");
	}
	/* The zero flag on the partial chunk leaves its bytes over. */
	memcpy(p, b.buf, b.len);
	p[last] |= MIGRATE_CHUNK_ZERO;
	refused(d, 2, p, b.len, "zero flag with data");
	migrate_blocks_free(&b);
	blkdev_close(d[0].bd);
	free(data);
	free(p);
}

/* Records in a file channel: read them back and apply the 'B's. */
static int
replay(int fd, off_t *pos, struct migrate_disk *dst, int *done)
{
	struct migrate_chan rd;
	uint8_t *buf = NULL;
	size_t cap = 0, len;
	char err[256];
	int type, n = 0, r;
	off_t end = lseek(fd, 0, SEEK_END);

	migrate_chan_init(&rd, fd, -1);
	lseek(fd, *pos, SEEK_SET);
	while (lseek(fd, 0, SEEK_CUR) < end) {
		cr_assert_eq(migrate_rec_recv(&rd, &type, &buf, &cap, &len,
		    MIGRATE_BLOCKS_MAX), 0, "%s", rd.err);
		if (type == MIGRATE_REC_DISK) {
			struct migrate_disk_hdr h;

			cr_assert_eq(migrate_disk_hdr_decode(&h, buf, len, err,
			    sizeof(err)), 0, "%s", err);
			cr_assert_eq(h.virtual_size, DSIZE);
			dst[h.index].size = h.virtual_size;
			dst[h.index].chunk_shift = h.chunk_shift;
		} else if (type == MIGRATE_REC_BLOCKS) {
			r = migrate_blocks_apply(dst, 1, buf, len, err,
			    sizeof(err));
			cr_assert_eq(r, 0, "%s", err);
			n++;
		} else {
			cr_assert_eq(type, MIGRATE_REC_DISKS_DONE);
			(*done)++;
		}
	}
	*pos = end;
	free(buf);
	return n;
}

Test(migrate_disk, first_copy_and_dirty_rounds_make_an_identical_image)
{
	struct blkdev *src = new_disk("src", DSIZE), *dstbd = new_disk("dst",
	    DSIZE);
	struct migrate_disk dst[1] = { { .bd = dstbd } };
	struct migrate_disk_hdr hdr = { .format = "raw", .file = "x" };
	struct migrate_disk_src s;
	struct migrate_chan ch;
	uint8_t *data = malloc(CHUNK);
	char path[256];
	off_t pos = 0;
	int fd, done = 0;
	int64_t left;

	snprintf(path, sizeof(path), "%s/stream", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	/* Data in chunks 1 and 9 (the short one); the rest stays zero. */
	fill(data, CHUNK, 3);
	cr_assert_eq(blkdev_pwrite(src, data, CHUNK, CHUNK), 0);
	cr_assert_eq(blkdev_pwrite(src, data, 512, 9 * CHUNK + 1024), 0);
	migrate_chan_init(&ch, -1, dup(fd));
	cr_assert_eq(migrate_disk_src_init(&s, &src, &hdr, 1, &ch), 0);
	cr_assert_eq(s.total_bytes, DSIZE);
	cr_assert_eq(migrate_disk_src_first(&s), 0, "%s", ch.err);
	/* Only the two chunks with data went; the 8 of zeros did not. */
	cr_assert_eq(s.sent_chunks, 2);
	cr_assert_eq(s.skipped_chunks, 8);
	cr_assert_eq(s.zero_chunks, 0);
	cr_assert_eq(replay(fd, &pos, dst, &done), 1);
	cr_assert_eq(done, 1);
	cr_assert(same_disks(src, dstbd));

	/* The guest writes: data over zeros, zeros over data. */
	fill(data, CHUNK, 9);
	cr_assert_eq(blkdev_pwrite(src, data, 4096, 5 * CHUNK + 8192), 0);
	cr_assert_eq(blkdev_write_zeroes(src, CHUNK, CHUNK), 0);
	cr_assert(!same_disks(src, dstbd));
	/* A round sends what was written before it, then fetches. */
	left = migrate_disk_src_round(&s, false);
	cr_assert_eq(left, 2 * (CHUNK / MIGRATE_PAGE), "%lld", (long long)left);
	cr_assert_eq(migrate_disk_src_round(&s, false), 0);
	/* The zeroed chunk went as a flag: it covers data there. */
	cr_assert_eq(s.zero_chunks, 1);
	cr_assert_eq(s.sent_chunks, 4);
	replay(fd, &pos, dst, &done);
	cr_assert(same_disks(src, dstbd));

	/* Written after the last live round: the final one takes it. */
	cr_assert_eq(blkdev_pwrite(src, data, 512, 9 * CHUNK), 0);
	cr_assert_eq(blkdev_pwrite(src, data, 512, 3 * CHUNK + 512), 0);
	cr_assert_eq(migrate_disk_src_round(&s, true), 0);
	replay(fd, &pos, dst, &done);
	cr_assert(same_disks(src, dstbd));
	migrate_disk_src_fini(&s);
	/* Tracking stopped: a write now is nobody's business. */
	cr_assert_eq(blkdev_pwrite(src, data, 512, 0), 0);
	cr_assert_eq(blkdev_dirty_fetch(src, (uint64_t[1]){ 0 }, 1), 0);
	migrate_chan_close(&ch);
	close(fd);
	blkdev_close(src);
	blkdev_close(dstbd);
	free(data);
}

/* --- a whole version 2 stream through the loader --- */

#define MEM	(8ull << 20)

static struct vm_config cfg;

static struct vm *
vm_with_disk(const char *name)
{
	char err[512];

	ms_config(&cfg, MEM);
	snprintf(cfg.disks[0].path, sizeof(cfg.disks[0].path), "%s/%s", dir,
	    name);
	snprintf(cfg.disks[0].format, sizeof(cfg.disks[0].format), "raw");
	cfg.ndisks = 1;
	if (access(cfg.disks[0].path, F_OK) != 0)
		cr_assert_eq(raw_create(cfg.disks[0].path, DSIZE, err,
		    sizeof(err)), 0, "%s", err);
	return ms_vm_create(&cfg);
}

struct both {
	struct vm *vm;
	struct migrate_disk_src *ds;
};

static int64_t
both_extra(void *opaque, bool final)
{
	struct both *b = opaque;

	return migrate_disk_src_round(b->ds, final);
}

static int
both_dirty(void *opaque, int region, uint64_t *bitmap)
{
	return ms_vm_dirty(((struct both *)opaque)->vm, region, bitmap);
}

static uint8_t *
disk_stream(struct vm *vm, size_t *len)
{
	static const char vmx[] = "name = \"t\"\nmemsize = \"8\"\n";
	struct migrate_disk_hdr hdr = { .format = "raw", .file = "t.img" };
	struct migrate_hello h = { 2, MEM, 1, "t", MIGRATE_HELLO_DISKS, 1 };
	struct blkdev *bd = virtio_blk_blkdev(vm, 0);
	struct migrate_mem mem;
	struct migrate_disk_src ds;
	struct both b = { vm, &ds };
	struct migrate_ram_ops ops = { .dirty = both_dirty,
	    .extra = both_extra, .opaque = &b };
	struct migrate_ram r;
	struct migrate_chan ch;
	uint8_t *data = malloc(CHUNK);
	FILE *f = ms_begin(&ch, &h);

	cr_assert_not_null(bd);
	ms_vm_mem(vm, &mem);
	cr_assert_eq(migrate_rec_send(&ch, MIGRATE_REC_CONFIG, vmx,
	    sizeof(vmx) - 1), 0);
	cr_assert_eq(migrate_disk_src_init(&ds, &bd, &hdr, 1, &ch), 0);
	cr_assert_eq(migrate_disk_src_first(&ds), 0, "%s", ch.err);
	/* Written during the RAM rounds: goes in a round. */
	fill(data, CHUNK, 77);
	cr_assert_eq(blkdev_pwrite(bd, data, CHUNK, 4 * CHUNK), 0);
	cr_assert_eq(migrate_ram_init(&r, &mem, &ops, &ch), 0);
	cr_assert_eq(migrate_ram_live(&r), 0);
	cr_assert_eq(blkdev_pwrite(bd, data, 512, 7 * CHUNK), 0);
	cr_assert_eq(migrate_ram_final(&r), 0);
	migrate_ram_fini(&r);
	migrate_disk_src_fini(&ds);
	free(data);
	return ms_end(&ch, f, vm, len);
}

Test(migrate_disk, a_version_2_stream_carries_the_disk)
{
	struct vm *src = vm_with_disk("a"), *dst;
	uint8_t *data = malloc(CHUNK), *s;
	char err[512], path[256];
	size_t len;

	fill(data, CHUNK, 5);
	cr_assert_eq(blkdev_pwrite(virtio_blk_blkdev(src, 0), data, CHUNK, 0),
	    0);
	memset(src->ram + 0x200000, 0x3c, 2 * 4096);
	s = disk_stream(src, &len);

	dst = vm_with_disk("b");
	cr_assert_eq(migrate_load_buffer(dst, s, len, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert(same_disks(virtio_blk_blkdev(src, 0),
	    virtio_blk_blkdev(dst, 0)));
	cr_assert_eq(memcmp(dst->ram, src->ram, MEM), 0);
	vm_destroy(dst);

	/* Truncated anywhere: refused. */
	for (size_t cut = 0; cut < len; cut += cut < 120 ? 1 : 9973) {
		dst = vm_with_disk("b");
		err[0] = '\0';
		cr_assert_neq(migrate_load_buffer(dst, s, cut, err,
		    sizeof(err)), 0, "cut at %zu of %zu", cut, len);
		cr_assert_neq(err[0], '\0');
		vm_destroy(dst);
	}
	/* A destination whose disk has another size refuses at its header. */
	snprintf(path, sizeof(path), "%s/c", dir);
	cr_assert_eq(raw_create(path, DSIZE + 512, err, sizeof(err)), 0);
	dst = vm_with_disk("c");
	cr_assert_eq(migrate_load_buffer(dst, s, len, err, sizeof(err)),
	    -EINVAL);
	cr_assert(strstr(err, "no disk 0") != NULL, "%s", err);
	vm_destroy(dst);
	free(s);
	vm_destroy(src);
	free(data);
}

Test(migrate_disk, hello_versions)
{
	struct migrate_hello h = { 2, MEM, 1, "t", MIGRATE_HELLO_DISKS, 3 },
	    got;
	uint8_t hb[128];
	size_t n = migrate_hello_encode(&h, hb, sizeof(hb)), n1;

	cr_assert_eq(migrate_hello_decode(&got, hb, n), 0);
	cr_assert_eq(got.flags, MIGRATE_HELLO_DISKS);
	cr_assert_eq(got.ndisks, 3);
	/* Version 2 without its fields is not version 2. */
	cr_assert_eq(migrate_hello_decode(&got, hb, n - 8), -EPROTO);
	/* Version 1: shorter, no flags. */
	h.version = 1;
	n1 = migrate_hello_encode(&h, hb, sizeof(hb));
	cr_assert_eq(n1, n - 8);
	cr_assert_eq(migrate_hello_decode(&got, hb, n1), 0);
	cr_assert_eq(got.flags, 0);
	cr_assert_eq(got.ndisks, 0);
}
