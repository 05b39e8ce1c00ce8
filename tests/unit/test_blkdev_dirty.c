/*
 * The block layer's dirty tracking (blkdev_dirty_*), on raw and qcow2
 * images: what a copier of a disk that its guest keeps writing relies on.
 * Writes, discards and write-zeroes mark the chunks they touch, fetching
 * moves the bits out, nothing is marked before start or after stop, and
 * with writers on other threads no write is ever missed: every chunk
 * written is in some fetch that came after the write.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit/scratch.h"
#include "vmfs/blkdev.h"
#include "vmfs/qcow2.h"

#define DISK	(8u << 20)	/* 8 MiB */
#define SHIFT	16		/* 64 KiB chunks: 128 of them */
#define CHUNKS	(DISK >> SHIFT)

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tv-dirty-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
	scratch_remove(dir);
}

/* A fresh image of format fmt ("raw", "qcow2"), open read-write. */
static struct blkdev *
image(const char *fmt)
{
	char path[128], err[256];
	struct blkdev *bd;
	FILE *f;

	snprintf(path, sizeof(path), "%s/disk.%s", dir, fmt);
	if (strcmp(fmt, "qcow2") == 0) {
		cr_assert_eq(qcow2_create(path, DISK, NULL, err, sizeof(err)),
		    0, "%s", err);
	} else {
		cr_assert_not_null(f = fopen(path, "w"));
		cr_assert_eq(ftruncate(fileno(f), DISK), 0);
		fclose(f);
	}
	cr_assert_eq(blkdev_open(&bd, path, fmt, 0, err, sizeof(err)), 0,
	    "%s", err);
	return bd;
}

static bool
bit(const uint64_t *b, uint64_t c)
{
	return b[c / 64] >> (c % 64) & 1;
}

static void
marks_what_is_written(const char *fmt)
{
	struct blkdev *bd = image(fmt);
	uint64_t bits[CHUNKS / 64 + 1];
	uint8_t buf[8192];

	memset(buf, 0xa5, sizeof(buf));
	cr_assert_eq(blkdev_dirty_fetch(bd, bits, CHUNKS / 64), -ENOENT);
	/* Before start: not marked. */
	cr_assert_eq(blkdev_pwrite(bd, buf, 512, 0), 0);
	cr_assert_eq(blkdev_dirty_start(bd, SHIFT), 0);
	cr_assert_eq(blkdev_dirty_chunks(bd), CHUNKS);
	cr_assert_eq(blkdev_dirty_fetch(bd, bits, CHUNKS / 64), 0);
	/* A write across a chunk boundary marks both chunks. */
	cr_assert_eq(blkdev_pwrite(bd, buf, sizeof(buf),
	    (3u << SHIFT) - 4096), 0);
	/* Discard and write-zeroes change the contents too. */
	cr_assert_eq(blkdev_discard(bd, 10u << SHIFT, 1u << SHIFT), 0);
	cr_assert_eq(blkdev_write_zeroes(bd, (CHUNKS - 1) << SHIFT, 512), 0);
	/* Reads do not. */
	cr_assert_eq(blkdev_pread(bd, buf, sizeof(buf), 50u << SHIFT), 0);
	cr_assert_eq(blkdev_dirty_fetch(bd, bits, CHUNKS / 64), 4);
	cr_assert(bit(bits, 2) && bit(bits, 3) && bit(bits, 10) &&
	    bit(bits, CHUNKS - 1));
	cr_assert(!bit(bits, 50) && !bit(bits, 0));
	/* Fetched bits are gone. */
	cr_assert_eq(blkdev_dirty_fetch(bd, bits, CHUNKS / 64), 0);
	/* A failed (refused) write marks nothing: nothing was written. */
	cr_assert_eq(blkdev_pwrite(bd, buf, 512, DISK), -EINVAL);
	cr_assert_eq(blkdev_dirty_fetch(bd, bits, CHUNKS / 64), 0);
	/* After stop: not marked; a restart starts clean. */
	blkdev_dirty_stop(bd);
	cr_assert_eq(blkdev_pwrite(bd, buf, 512, 5u << SHIFT), 0);
	cr_assert_eq(blkdev_dirty_fetch(bd, bits, CHUNKS / 64), 0);
	cr_assert_eq(blkdev_dirty_start(bd, SHIFT + 1), -EINVAL);
	cr_assert_eq(blkdev_dirty_start(bd, SHIFT), 0);
	cr_assert_eq(blkdev_pwrite(bd, buf, 512, 7u << SHIFT), 0);
	cr_assert_eq(blkdev_dirty_fetch(bd, bits, CHUNKS / 64), 1);
	cr_assert(bit(bits, 7));
	/* Too small a buffer is refused, not overrun. */
	cr_assert_eq(blkdev_dirty_fetch(bd, bits, CHUNKS / 64 - 1), -EINVAL);
	cr_assert_eq(blkdev_dirty_start(bd, 8), -EINVAL);
	blkdev_close(bd);
}

Test(blkdev_dirty, raw_marks_what_is_written, .init = setup,
    .fini = teardown)
{
	marks_what_is_written("raw");
}

Test(blkdev_dirty, qcow2_marks_what_is_written, .init = setup,
    .fini = teardown)
{
	marks_what_is_written("qcow2");
}

/* Writers on other threads while a copier fetches. */
struct writer {
	struct blkdev *bd;
	unsigned seed;
	atomic_bool *stop;
	uint64_t written[CHUNKS / 64 + 1];	/* chunks this one wrote */
};

static void *
writer_run(void *arg)
{
	struct writer *w = arg;
	uint8_t buf[4096];

	memset(buf, 0x5a, sizeof(buf));
	while (!atomic_load(w->stop)) {
		uint64_t c = (uint64_t)rand_r(&w->seed) % CHUNKS;

		cr_assert_eq(blkdev_pwrite(w->bd, buf, sizeof(buf),
		    c << SHIFT), 0);
		w->written[c / 64] |= 1ull << (c % 64);
	}
	return NULL;
}

Test(blkdev_dirty, concurrent_writes_are_never_missed, .init = setup,
    .fini = teardown)
{
	struct blkdev *bd = image("qcow2");
	uint64_t bits[CHUNKS / 64 + 1], seen[CHUNKS / 64 + 1] = { 0 };
	struct writer w[3];
	pthread_t t[3];
	atomic_bool stop = false;

	cr_assert_eq(blkdev_dirty_start(bd, SHIFT), 0);
	for (int i = 0; i < 3; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].bd = bd;
		w[i].seed = 17u * (unsigned)i + 1;
		w[i].stop = &stop;
		cr_assert_eq(pthread_create(&t[i], NULL, writer_run, &w[i]), 0);
	}
	for (int round = 0; round < 200; round++) {
		cr_assert_geq(blkdev_dirty_fetch(bd, bits, CHUNKS / 64), 0);
		for (unsigned k = 0; k < CHUNKS / 64; k++)
			seen[k] |= bits[k];
		usleep(200);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	/* The last fetch, after every write has finished. */
	cr_assert_geq(blkdev_dirty_fetch(bd, bits, CHUNKS / 64), 0);
	for (unsigned k = 0; k < CHUNKS / 64; k++) {
		uint64_t all = w[0].written[k] | w[1].written[k] |
		    w[2].written[k];

		seen[k] |= bits[k];
		cr_assert_eq(seen[k] & all, all, "word %u: written %#llx, "
		    "fetched %#llx", k, (unsigned long long)all,
		    (unsigned long long)seen[k]);
		cr_assert_eq(seen[k] & ~all, 0, "marked but never written");
	}
	blkdev_close(bd);
}
