/*
 * Host-side decompression of a bzImage's payload (issue 2 welcomes it
 * where it is faster).  A bzImage is a small decompressor plus the real
 * kernel, an ELF vmlinux, compressed.  When that vmlinux carries a PVH
 * entry note, decompressing it here (liblzma or zlib, at native speed)
 * and entering it at the PVH entry skips running the decompressor in
 * the guest, which costs seconds on a software CPU and far more on a
 * /dev/kvm that emulates kernel code.  The result is cached under
 * $XDG_CACHE_HOME/termvisor/kernels, keyed by the payload's CRC and
 * length, so later boots only map it.
 */
#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "hv/boot.h"
#include "migrate/snap.h"
#include "util/log.h"

#define HDR_VERSION		0x206
#define HDR_SETUP_SECTS		0x1f1
#define HDR_PAYLOAD_OFFSET	0x248
#define HDR_PAYLOAD_LENGTH	0x24c
#define UNPACK_MAX		(1ull << 30)	/* refuse absurd sizes */

static uint32_t
up_rd32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int
unpack_xz(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen,
    size_t *got)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret r;

	if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK)
		return -ENOMEM;
	s.next_in = in;
	s.avail_in = inlen;
	s.next_out = out;
	s.avail_out = outlen;
	r = lzma_code(&s, LZMA_FINISH);
	*got = outlen - s.avail_out;
	lzma_end(&s);
	return r == LZMA_STREAM_END ? 0 : -EINVAL;
}

static int
unpack_gzip(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen,
    size_t *got)
{
	z_stream z = { 0 };
	int r;

	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	r = inflate(&z, Z_FINISH);
	*got = outlen - z.avail_out;
	inflateEnd(&z);
	return r == Z_STREAM_END ? 0 : -EINVAL;
}

static void
unpack_cache_path(char *buf, size_t len, uint32_t crc, size_t plen)
{
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");

	if (x != NULL && *x == '/')
		snprintf(buf, len, "%s/termvisor/kernels/vmlinux-%08x-%zx", x,
		    crc, plen);
	else
		snprintf(buf, len, "%s/.cache/termvisor/kernels/vmlinux-%08x-%zx",
		    h ? h : "/tmp", crc, plen);
}

/* Write the unpacked kernel to the cache (temp file, then rename). */
static void
unpack_cache_store(const char *path, const uint8_t *p, size_t len)
{
	char tmp[4400], dir[4200];
	char *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		return;
	*slash = '\0';
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		mkdir(dir, 0755);
		*slash = '/';
	}
	mkdir(dir, 0755);
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, p + off, len - off);

		if (n <= 0) {
			close(fd);
			unlink(tmp);
			return;
		}
		off += n;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0)
		unlink(tmp);
}

int
boot_unpack(const struct boot_file *k, struct boot_file *elf)
{
	const uint8_t *h = k->data, *pl;
	size_t setup, plen, outlen, got = 0;
	char cache[4200];
	uint8_t *out;
	uint32_t crc;
	int r, (*fn)(const uint8_t *, size_t, uint8_t *, size_t, size_t *);

	if (k->size < 0x300 || (h[HDR_VERSION] | h[HDR_VERSION + 1] << 8) < 0x208)
		return -ENOTSUP;
	setup = (size_t)((h[HDR_SETUP_SECTS] ? h[HDR_SETUP_SECTS] : 4) + 1) * 512;
	plen = up_rd32(h + HDR_PAYLOAD_LENGTH);
	if (setup > k->size || up_rd32(h + HDR_PAYLOAD_OFFSET) > k->size - setup ||
	    plen > k->size - setup - up_rd32(h + HDR_PAYLOAD_OFFSET) || plen < 16)
		return -EINVAL;
	pl = h + setup + up_rd32(h + HDR_PAYLOAD_OFFSET);
	if (memcmp(pl, "\xfd" "7zXZ", 6) == 0)
		fn = unpack_xz;
	else if (pl[0] == 0x1f && pl[1] == 0x8b)
		fn = unpack_gzip;
	else
		return -ENOTSUP;
	/* The kernel's build appends the decompressed size. */
	outlen = up_rd32(pl + plen - 4);
	if (outlen < 64 || outlen > UNPACK_MAX)
		return -EINVAL;
	crc = snap_crc32(pl, plen);
	unpack_cache_path(cache, sizeof(cache), crc, plen);
	if (boot_map_file(cache, elf, "kernel cache", NULL, 0) == 0) {
		if (elf->size == outlen)
			return 0;
		boot_unmap_file(elf);
	}
	out = mmap(NULL, outlen, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (out == MAP_FAILED)
		return -ENOMEM;
	r = fn(pl, plen - 4, out, outlen, &got);
	if (r < 0 || got != outlen) {
		munmap(out, outlen);
		return r < 0 ? r : -EINVAL;
	}
	unpack_cache_store(cache, out, outlen);
	elf->data = out;
	elf->size = outlen;
	return 0;
}
