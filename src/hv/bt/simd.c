/*
 * x87/MMX/SSE/SSE2 dispatch (see simd.h for the contract).  First cut:
 * every opcode is refused so the core links and raises #UD; groups are
 * added one by one.
 */
#include "hv/bt/simd.h"

int
simd_decode(const struct simd_op *op, struct simd_mem *m)
{
	(void)op;
	(void)m;
	return -1;
}

int
simd_exec(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem)
{
	(void)c;
	(void)op;
	(void)mem;
	return 6;
}
