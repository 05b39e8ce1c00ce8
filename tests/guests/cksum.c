/*
 * POSIX cksum(1): CRC-32 (polynomial 0x04c11db7, MSB first) over the data
 * and then its length, complemented.  The e2e scripts compare the value
 * with `cksum FILE` on the host, so they need nothing beyond coreutils.
 */
#include "guest.h"

static uint32_t cksum_table[256];

static void cksum_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i << 24;

		for (int k = 0; k < 8; k++)
			c = (c & 0x80000000u) ? (c << 1) ^ 0x04c11db7u : c << 1;
		cksum_table[i] = c;
	}
}

uint32_t cksum_buf(const void *buf, uint32_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = 0;

	if (!cksum_table[1])
		cksum_init();
	for (uint32_t i = 0; i < len; i++)
		crc = (crc << 8) ^ cksum_table[(crc >> 24) ^ p[i]];
	for (uint32_t n = len; n; n >>= 8)
		crc = (crc << 8) ^ cksum_table[(crc >> 24) ^ (n & 0xff)];
	return ~crc;
}
