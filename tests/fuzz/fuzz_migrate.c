/*
 * libFuzzer target: the migration stream's loader (migrate_load_buffer:
 * framing, hello, page batches, then vmstate) on a real VM object.
 *
 * The input is fed twice: as it is (the framing and its checksums must
 * refuse it cleanly), and re-framed: read as (type, u16 length, payload)
 * triples that are written out as records with correct checksums after
 * a valid hello when the first byte is even, so that edits reach the
 * hello and page-batch parsers behind the checksums.  When the first
 * byte is 2 mod 4 the hello is version 2 with one disk (--copy-storage):
 * the configuration, disk header and disk chunk records are then taken,
 * against the VM's one small raw disk.  Whatever happens the loader must
 * return 0 or an error with a message, never crash or touch memory
 * outside the VM's RAM, or write outside its disk.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "hv/accel.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/migrate.h"
#include "util/log.h"
#include "vmfs/raw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MEM	(4ull << 20)

static struct vm_config cfg;
static struct vm *vm;
static uint8_t *buf;
static size_t cap;

/* The disk is the fuzzer's own: gone with the process. */
static void
fz_unlink(void)
{
	unlink(cfg.disks[0].path);
}

static void
fz_put(const void *p, size_t n, size_t *len)
{
	if (*len + n > cap) {
		cap = (*len + n) * 2;
		if ((buf = realloc(buf, cap)) == NULL)
			abort();
	}
	memcpy(buf + *len, p, n);
	*len += n;
}

static void
fz_record(int type, const uint8_t *p, uint32_t n, size_t *len)
{
	uint8_t hdr[5] = { (uint8_t)type, (uint8_t)n, (uint8_t)(n >> 8),
	    (uint8_t)(n >> 16), (uint8_t)(n >> 24) }, tail[4];
	uLong crc = crc32(crc32(0L, hdr, 5), p, n);

	for (int i = 0; i < 4; i++)
		tail[i] = (uint8_t)(crc >> (8 * i));
	fz_put(hdr, 5, len);
	fz_put(p, n, len);
	fz_put(tail, 4, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct migrate_hello h = { .version = 1, .ram_size = FZ_MEM,
	    .nvcpus = 1, .name = "fuzz" };
	uint8_t hb[128];
	char err[512];
	size_t len = 0, off = 1;
	int err0 = 0;

	if (vm == NULL) {
		log_set_file(fopen("/dev/null", "w"));
		vm_config_defaults(&cfg);
		cfg.memory = FZ_MEM;
		snprintf(cfg.serial, sizeof(cfg.serial), "none");
		/* A disk of 3 chunks and a half, for the disk records. */
		snprintf(cfg.disks[0].path, sizeof(cfg.disks[0].path),
		    "/tmp/fuzz_migrate.%d.img", (int)getpid());
		snprintf(cfg.disks[0].format, sizeof(cfg.disks[0].format),
		    "raw");
		cfg.ndisks = 1;
		unlink(cfg.disks[0].path);
		if (raw_create(cfg.disks[0].path, (7ull << MIGRATE_CHUNK_SHIFT)
		    / 2, err, sizeof(err)) < 0)
			abort();
		atexit(fz_unlink);
		if ((vm = vm_create(&cfg, &bt_accel_ops, &err0)) == NULL)
			abort();
	}
	err[0] = '\0';
	if (migrate_load_buffer(vm, data, size, err, sizeof(err)) < 0 &&
	    err[0] == '\0')
		abort();	/* a refusal always says why */
	fz_put(MIGRATE_MAGIC, 8, &len);
	if (size > 0 && data[0] % 4 == 2) {
		h.version = 2;
		h.flags = MIGRATE_HELLO_DISKS;
		h.ndisks = 1;
	}
	if (size > 0 && data[0] % 2 == 0)
		fz_record(MIGRATE_REC_HELLO, hb,
		    (uint32_t)migrate_hello_encode(&h, hb, sizeof(hb)), &len);
	while (off + 3 <= size) {
		uint32_t n = (uint32_t)data[off + 1] | (uint32_t)data[off + 2] << 8;

		if (n > size - off - 3)
			n = (uint32_t)(size - off - 3);
		fz_record(data[off], data + off + 3, n, &len);
		off += 3 + n;
	}
	err[0] = '\0';
	if (migrate_load_buffer(vm, buf, len, err, sizeof(err)) < 0 &&
	    err[0] == '\0')
		abort();
	len = 0;
	return 0;
}
