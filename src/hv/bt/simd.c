/*
 * x87/MMX/SSE/SSE2/SSE3 dispatch (the contract is simd.h): routes each
 * opcode to its group file and owns the state instructions (FXSAVE,
 * FXRSTOR, LDMXCSR, STMXCSR, EMMS).
 *
 * CPUID: what this library implements, so the core advertises exactly
 * that and nothing more:
 *   leaf 1 EDX: FPU, MMX, FXSR, SSE, SSE2
 *   leaf 1 ECX: SSE3 (bit 0: MOVDDUP, MOVSLDUP, MOVSHDUP, LDDQU,
 *               HADDPS/PD, HSUBPS/PD, ADDSUBPS/PD, FISTTP) and SSSE3
 *               (bit 9: PSHUFB, PHADD*, PHSUB*, PMADDUBSW, PMULHRSW,
 *               PSIGN*, PABS*, PALIGNR; simd_ssse3.c)
 * Not implemented (do not advertise): SSE4.1/4.2, POPCNT is the core's,
 * AVX, XSAVE, FMA, 3DNow!, AMD SSE4a, MMXEXT beyond what SSE implies.
 * MASKMOVQ/MASKMOVDQU raise #UD (their implicit DS:rDI operand is not in
 * the simd.h contract).  MXCSR_MASK is 0xffff (DAZ supported).
 *
 * Extension of simd.h, agreed compatible: {map X87, opcode 0x9B} is
 * WAIT/FWAIT (no ModRM), and vector 13 means #GP(0) (FXRSTOR/LDMXCSR
 * with reserved MXCSR bits).
 */
#include "hv/bt/simd_impl.h"

enum simd_group { SIMD_G_NONE, SIMD_G_INT, SIMD_G_SSE, SIMD_G_STATE };

/* Owner of each 0F opcode; the group files refine by prefix and ModRM. */
static const uint8_t simd_group_tab[256] = {
	[0x10 ... 0x17] = SIMD_G_SSE,
	[0x28 ... 0x2f] = SIMD_G_SSE,
	[0x50 ... 0x5f] = SIMD_G_SSE,
	[0x60 ... 0x76] = SIMD_G_INT,
	[0x77] = SIMD_G_STATE,
	[0x78 ... 0x7b] = SIMD_G_INT,
	[0x7c ... 0x7d] = SIMD_G_SSE,
	[0x7e ... 0x7f] = SIMD_G_INT,
	[0xae] = SIMD_G_STATE,
	[0xc2] = SIMD_G_SSE,
	[0xc4 ... 0xc5] = SIMD_G_INT,
	[0xc6] = SIMD_G_SSE,
	[0xd0] = SIMD_G_SSE,
	[0xd1 ... 0xe5] = SIMD_G_INT,
	[0xe6] = SIMD_G_SSE,
	[0xe7 ... 0xfe] = SIMD_G_INT,
};

static uint8_t
simd_group_0f(uint8_t opc)
{
	return simd_group_tab[opc];
}

int
simd_check_sse(const struct simd_ctx *c)
{
	if ((c->cr0 & CR0_EM) || !(c->cr4 & CR4_OSFXSR))
		return SIMD_VEC_UD;
	if (c->cr0 & CR0_TS)
		return SIMD_VEC_NM;
	return 0;
}

int
simd_check_mmx(const struct simd_ctx *c)
{
	if (c->cr0 & CR0_EM)
		return SIMD_VEC_UD;
	if (c->cr0 & CR0_TS)
		return SIMD_VEC_NM;
	if (simd_fsw(c) & FSW_ES)
		return SIMD_VEC_MF;
	return 0;
}

static int
simd_state_decode(const struct simd_op *op, struct simd_mem *m)
{
	if (op->opcode == 0x77)
		return op->pfx == SIMD_PFX_NONE ? 0 : -1;
	/* 0F AE with mod 3 is the fences (core); /4 and up are XSAVE & co. */
	if (op->mod == 3 || op->pfx != SIMD_PFX_NONE || (op->reg & 7) > 3)
		return -1;
	switch (op->reg & 7) {
	case 0:		/* FXSAVE: 464..511 are left as they were in memory */
		*m = (struct simd_mem){ 512, 16, true, true, false };
		break;
	case 1:		/* FXRSTOR */
		*m = (struct simd_mem){ 512, 16, true, false, false };
		break;
	case 2:		/* LDMXCSR */
		*m = (struct simd_mem){ 4, 0, true, false, false };
		break;
	case 3:		/* STMXCSR */
		*m = (struct simd_mem){ 4, 0, false, true, false };
		break;
	}
	return 0;
}

static void
simd_fxsave(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem)
{
	memcpy(mem, c->fpu->fxsave, 464);
	simd_st32(mem + FX_MXCSR_MASK, SIMD_MXCSR_MASK);
	if (!op->rex_w) {
		/* 32-bit layout: FIP, FCS, FDP, FDS (selectors unknown: 0) */
		simd_st32(mem + 12, 0);
		simd_st32(mem + 20, 0);
	}
}

static int
simd_fxrstor(struct simd_ctx *c, const struct simd_op *op, const uint8_t *mem)
{
	uint8_t *fx = c->fpu->fxsave;

	if (simd_ld32(mem + FX_MXCSR) & ~SIMD_MXCSR_MASK)
		return SIMD_VEC_GP;
	memcpy(fx, mem, 464);
	if (!op->rex_w) {
		simd_st32(fx + 12, 0);
		simd_st32(fx + 20, 0);
	}
	fx[5] = 0;
	/* reserved FCW and FOP bits do not exist in the register */
	simd_st16(fx + FX_FCW, simd_fcw_fix(simd_ld16(fx + FX_FCW)));
	simd_st16(fx + FX_FSW, simd_fsw_fix(simd_ld16(fx + FX_FCW),
					    simd_ld16(fx + FX_FSW)));
	simd_st16(fx + FX_FOP, simd_ld16(fx + FX_FOP) & 0x7ff);
	simd_st32(fx + FX_MXCSR_MASK, SIMD_MXCSR_MASK);
	for (int i = 0; i < 8; i++)
		memset(fx + FX_ST(i) + 10, 0, 6);
	return 0;
}

static int
simd_state_exec(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem)
{
	int v;

	if (op->opcode == 0x77) {		/* EMMS */
		if ((v = simd_check_mmx(c)) != 0)
			return v;
		simd_mmx_enter(c);	/* the host clears TOP too */
		c->fpu->fxsave[FX_FTW] = 0;
		return 0;
	}
	switch (op->reg & 7) {
	case 0:
	case 1:
		if (c->cr0 & (CR0_TS | CR0_EM))
			return SIMD_VEC_NM;
		if ((op->reg & 7) == 1)
			return simd_fxrstor(c, op, mem);
		simd_fxsave(c, op, mem);
		return 0;
	case 2:
		if ((v = simd_check_sse(c)) != 0)
			return v;
		if (simd_ld32(mem) & ~SIMD_MXCSR_MASK)
			return SIMD_VEC_GP;
		simd_set_mxcsr(c, simd_ld32(mem));
		return 0;
	case 3:
		if ((v = simd_check_sse(c)) != 0)
			return v;
		simd_st32(mem, simd_mxcsr(c));
		return 0;
	}
	return SIMD_VEC_UD;
}

int
simd_decode(const struct simd_op *op, struct simd_mem *m)
{
	*m = (struct simd_mem){ 0 };
	switch (op->map) {
	case SIMD_MAP_X87:
		return simd_x87_decode(op, m);
	case SIMD_MAP_0F:
		switch (simd_group_0f(op->opcode)) {
		case SIMD_G_STATE:
			return simd_state_decode(op, m);
		case SIMD_G_INT:
			return simd_sse2_int_decode(op, m);
		case SIMD_G_SSE:
			return simd_sse_decode(op, m);
		}
		return -1;
	case SIMD_MAP_0F38:
	case SIMD_MAP_0F3A:
		return simd_ssse3_decode(op, m);
	}
	return -1;
}

int
simd_exec(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem)
{
	switch (op->map) {
	case SIMD_MAP_X87:
		return simd_x87_exec(c, op, mem);
	case SIMD_MAP_0F:
		switch (simd_group_0f(op->opcode)) {
		case SIMD_G_STATE:
			return simd_state_exec(c, op, mem);
		case SIMD_G_INT:
			return simd_sse2_int_exec(c, op, mem);
		case SIMD_G_SSE:
			return simd_sse_exec(c, op, mem);
		}
		break;
	case SIMD_MAP_0F38:
	case SIMD_MAP_0F3A:
		return simd_ssse3_exec(c, op, mem);
	}
	return SIMD_VEC_UD;
}
