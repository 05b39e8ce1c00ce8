/*
 * libFuzzer target: the qcow2 header and metadata reader.  The input is
 * an image file (in a memfd); whatever opens is read in places, checked
 * and repaired, then opened writable and written, discarded and read
 * again.  Crashes, hangs, leaks and sanitizer reports are bugs;
 * refusals are not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/log.h"
#include "vmfs/blkdev.h"
#include "vmfs/qcow2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_qcow2_poke(struct blkdev *bd, const uint8_t *data, size_t size,
    bool write)
{
	uint8_t buf[4096];
	uint64_t len = blkdev_length(bd), off;
	int i;

	for (i = 0; i < 6 && len > 0; i++) {
		off = size > 8 ? (uint64_t)data[i] * (len / 256) : 0;
		off = off < len ? off : len - 1;
		(void)blkdev_pread(bd, buf, len - off < sizeof(buf) ?
		    (size_t)(len - off) : sizeof(buf), off);
		if (!write)
			continue;
		memset(buf, i, sizeof(buf));
		(void)blkdev_pwrite(bd, buf, len - off < sizeof(buf) ?
		    (size_t)(len - off) : sizeof(buf), off);
		(void)blkdev_discard(bd, off, len - off < 1 << 20 ?
		    len - off : 1 << 20);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qcow2_check_result r;
	struct blkdev *bd;
	char path[64], err[1024];
	int fd;

	static FILE *quiet;

	if (size > (4u << 20))
		return 0;
	if (quiet == NULL && (quiet = fopen("/dev/null", "w")) != NULL)
		log_set_file(quiet);	/* corrupt-image warnings by the million */
	fd = memfd_create("fuzz.qcow2", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (qcow2_open(&bd, path, BLKDEV_RDONLY, NULL, err, sizeof(err)) == 0) {
		fuzz_qcow2_poke(bd, data, size, false);
		(void)qcow2_check(bd, &r, NULL, NULL);
		(void)qcow2_check_repair(bd, &r, NULL, NULL);
		blkdev_close(bd);
	}
	if (qcow2_open(&bd, path, 0, NULL, err, sizeof(err)) == 0) {
		fuzz_qcow2_poke(bd, data, size, true);
		blkdev_close(bd);
	}
	close(fd);
	return 0;
}
