/* x87: not yet implemented (raises #UD). */
#include "hv/bt/simd_impl.h"

int
simd_x87_decode(const struct simd_op *op, struct simd_mem *m)
{
	return -1;
}

int
simd_x87_exec(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem)
{
	return SIMD_VEC_UD;
}
