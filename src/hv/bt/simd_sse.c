/* SSE/SSE2/SSE3 floating point: not yet implemented (raises #UD). */
#include "hv/bt/simd_impl.h"

int
simd_sse_decode(const struct simd_op *op, struct simd_mem *m)
{
	return -1;
}

int
simd_sse_exec(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem)
{
	return SIMD_VEC_UD;
}
