/*
 * libFuzzer target: the one loader of snapshot files and the migration
 * stream (vmstate_load) on a real VM object (software CPU, every device),
 * and the snapshot file header.
 *
 * Random bytes rarely get past the section checksums, so most inputs
 * are edits of a valid stream saved from the VM itself, or from a KVM
 * VM when there is /dev/kvm (its interrupt controllers then go through
 * the conversion to the software ones): (offset, xor)
 * pairs and a length cut, after which every section's checksum is made
 * right again, so the edits reach the field parsers of every device.
 * Whatever happens the loader must return (0 or an error with a
 * message), never crash or read out of bounds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv/accel.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/snap.h"
#include "migrate/snapfile.h"
#include "migrate/vmstate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm_config cfg;
static struct vm *vm;
static struct snap good, good_kvm;	/* good_kvm: empty without KVM */

static void
fuzz_setup(void)
{
	int err;

	vm_config_defaults(&cfg);
	cfg.memory = 16ull << 20;
	cfg.cpus = 2;
	vm = vm_create(&cfg, &bt_accel_ops, &err);
	if (vm == NULL)
		abort();
	snap_init_save(&good);
	if (vmstate_save(vm, &good) != 0)
		abort();
	/* A stream from KVM exercises the conversion of its interrupt
	 * controllers into the software ones (cpu = baseline fits). */
	snap_init_save(&good_kvm);
	snprintf(cfg.cpu, sizeof(cfg.cpu), "baseline");
	if (access("/dev/kvm", R_OK | W_OK) == 0) {
		struct vm *k = vm_create(&cfg, &kvm_accel_ops, &err);

		if (k != NULL && vmstate_save(k, &good_kvm) != 0)
			abort();
		vm_destroy(k);
	}
}

static uint32_t
fuzz_le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* Make every section's checksum right again, as far as framing holds. */
static void
fuzz_reseal(uint8_t *b, size_t len)
{
	size_t p = 0;

	while (p + 2 <= len && b[p] == 'S') {
		size_t nl = b[p + 1], end;
		uint32_t crc;

		if (p + 10 + nl > len)
			return;
		end = p + 10 + nl + fuzz_le32(b + p + 6 + nl);
		if (end < p || end + 4 > len)
			return;
		crc = snap_crc32(b + p, end - p);
		b[end] = crc; b[end + 1] = crc >> 8;
		b[end + 2] = crc >> 16; b[end + 3] = crc >> 24;
		p = end + 4;
	}
}

static void
fuzz_load(const uint8_t *buf, size_t len)
{
	struct snap s;
	int r;

	snap_init_load(&s, buf, len);
	r = vmstate_load(vm, &s);
	if (r != 0 && s.errmsg[0] == '\0')
		abort();	/* every refusal says why */
	if (r != 0)
		atomic_store(&vm->exit_request, 0);
}

/* The snapshot file reader on the input as a whole file. */
static void
fuzz_file(const uint8_t *data, size_t size)
{
	struct snapfile_info info;
	uint8_t *st = NULL;
	char path[64], err[512];
	int fd = memfd_create("fuzz", 0);

	if (fd < 0)
		return;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (snapfile_open(path, &info, &st, err, sizeof(err)) == 0)
			fuzz_load(st, info.vmstate_length);
		else if (err[0] == '\0')
			abort();
	}
	free(st);
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct snap *src;
	uint8_t *b;
	size_t len;

	if (vm == NULL)
		fuzz_setup();
	if (size == 0)
		return 0;
	switch (data[0] % 4) {
	case 0:
		fuzz_load(data + 1, size - 1);
		return 0;
	case 1:
		fuzz_file(data + 1, size - 1);
		return 0;
	}
	/* Edits of a valid stream (bit 3: KVM's, when there is one):
	 * [cut:u16] then (offset:u16, xor:u8)... */
	src = (data[0] & 8) && good_kvm.len > 0 ? &good_kvm : &good;
	if ((b = malloc(src->len)) == NULL)
		return 0;
	memcpy(b, src->buf, src->len);
	len = src->len;
	if (size >= 3 && (data[0] & 4))
		len = (data[1] | (size_t)data[2] << 8) % (src->len + 1);
	for (size_t i = 3; i + 3 <= size; i += 3) {
		size_t off = (data[i] | (size_t)data[i + 1] << 8) * 7 % src->len;

		b[off] ^= data[i + 2];
	}
	if (data[0] % 4 == 2)
		fuzz_reseal(b, len);
	fuzz_load(b, len);
	free(b);
	return 0;
}
