/*
 * The x87 arithmetic of the software CPU, run on the host's x87 unit.
 * Each helper loads the guest's control word as it is (precision,
 * rounding and exception masks), runs one instruction on values loaded
 * from memory, and returns the host status word from right after it:
 * exception flags and C0-C3 are the hardware's own.  x87 exceptions are
 * delayed to the next waiting instruction, so an unmasked one is cleared
 * with FNCLEX before anything else runs, after it left what the hardware
 * leaves (the operand untouched, or the exponent-adjusted result of an
 * unmasked overflow/underflow).  The host stack is empty around every
 * helper (the x86-64 ABI); FNINIT empties it whatever the instruction
 * pushed or popped.
 */
#include "hv/bt/simd_impl.h"

#define X87_PRE  "fnstcw %[hcw]\n\tfldcw %[cw]\n\tfnclex\n\t"
#define X87_POST "\n\tfninit\n\tfldcw %[hcw]"
#define X87_CLOB "st", "st(1)", "memory"

/*
 * Some instructions leave condition codes as they were (FPREM on a NaN),
 * so the arithmetic helpers start from the guest's C0-C3: FLDENV loads
 * them with the control word, an empty stack and no pending flags.
 */
#define X87_ENV_PRE "fnstcw %[hcw]\n\tfldenv %[env]\n\t"

static void
simd_x87_host_env(uint8_t env[28], uint16_t cw, uint16_t sw)
{
	memset(env, 0, 28);
	simd_st16(env, cw);
	simd_st16(env + 4, sw & (FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3));
	simd_st16(env + 8, 0xffff);
}

/* a in ST0, b in ST1; the body leaves two, one or no values. */
#define X87_OP2_KEEP(body)						\
	__asm__ volatile(X87_ENV_PRE "fldt %[b]\n\tfldt %[a]\n\t" body	\
			 "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]\n\tfstp %%st(0)"	\
			 X87_POST					\
			 : [r] "=m"(*r), [sw] "=m"(sw), [hcw] "=m"(hcw)	\
			 : [a] "m"(*a), [b] "m"(*b), [env] "m"(env)		\
			 : X87_CLOB)
#define X87_OP2_POP1(body)						\
	__asm__ volatile(X87_ENV_PRE "fldt %[b]\n\tfldt %[a]\n\t" body	\
			 "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]" X87_POST		\
			 : [r] "=m"(*r), [sw] "=m"(sw), [hcw] "=m"(hcw)	\
			 : [a] "m"(*a), [b] "m"(*b), [env] "m"(env)		\
			 : X87_CLOB)
#define X87_OP2_POP2(body)						\
	__asm__ volatile(X87_ENV_PRE "fldt %[b]\n\tfldt %[a]\n\t" body	\
			 "\n\tfnstsw %[sw]\n\tfnclex" X87_POST			\
			 : [sw] "=m"(sw), [hcw] "=m"(hcw)		\
			 : [a] "m"(*a), [b] "m"(*b), [env] "m"(env)		\
			 : X87_CLOB)

uint16_t
simd_x87_host_op2(int k, long double *r, const long double *a,
		  const long double *b, uint16_t cw, uint16_t gsw)
{
	uint16_t sw = 0, hcw;
	uint8_t env[28];

	simd_x87_host_env(env, cw, gsw);
	switch (k) {
	case X87H_ADD: X87_OP2_KEEP("fadd %%st(1), %%st"); break;
	case X87H_MUL: X87_OP2_KEEP("fmul %%st(1), %%st"); break;
	case X87H_SUB: X87_OP2_KEEP("fsub %%st(1), %%st"); break;
	case X87H_SUBR: X87_OP2_KEEP("fsubr %%st(1), %%st"); break;
	case X87H_DIV: X87_OP2_KEEP("fdiv %%st(1), %%st"); break;
	case X87H_DIVR: X87_OP2_KEEP("fdivr %%st(1), %%st"); break;
	case X87H_PREM: X87_OP2_KEEP("fprem"); break;
	case X87H_PREM1: X87_OP2_KEEP("fprem1"); break;
	case X87H_SCALE: X87_OP2_KEEP("fscale"); break;
	case X87H_PATAN: X87_OP2_POP1("fpatan"); break;
	case X87H_YL2X: X87_OP2_POP1("fyl2x"); break;
	case X87H_YL2XP1: X87_OP2_POP1("fyl2xp1"); break;
	case X87H_COM: X87_OP2_POP2("fcompp"); break;
	case X87H_UCOM: X87_OP2_POP2("fucompp"); break;
	}
	return sw;
}

/* a in ST0; the body leaves one value, two (r0 = ST0), or none. */
#define X87_OP1(body, tail)						\
	__asm__ volatile(X87_ENV_PRE "fldt %[a]\n\t" body		\
			 "\n\tfnstsw %[sw]\n\tfnclex\n\t" tail X87_POST		\
			 : [r0] "=m"(*r0), [r1] "=m"(*r1), [sw] "=m"(sw),	\
			   [hcw] "=m"(hcw)				\
			 : [a] "m"(*a), [env] "m"(env)			\
			 : X87_CLOB)
#define X87_ONE "fstpt %[r0]"
#define X87_TWO "fstpt %[r0]\n\tfstpt %[r1]"
#define X87_NONE "fstp %%st(0)"

uint16_t
simd_x87_host_op1(int k, long double *r0, long double *r1,
		  const long double *a, uint16_t cw, uint16_t gsw)
{
	uint16_t sw = 0, hcw;
	uint8_t env[28];

	simd_x87_host_env(env, cw, gsw);
	switch (k) {
	case X87H_SQRT: X87_OP1("fsqrt", X87_ONE); break;
	case X87H_RNDINT: X87_OP1("frndint", X87_ONE); break;
	case X87H_SIN: X87_OP1("fsin", X87_ONE); break;
	case X87H_COS: X87_OP1("fcos", X87_ONE); break;
	case X87H_F2XM1: X87_OP1("f2xm1", X87_ONE); break;
	case X87H_XTRACT: X87_OP1("fxtract", X87_TWO); break;
	case X87H_PTAN: X87_OP1("fptan", X87_TWO); break;
	case X87H_SINCOS: X87_OP1("fsincos", X87_TWO); break;
	case X87H_TST: X87_OP1("ftst", X87_NONE); break;
	case X87H_XAM: X87_OP1("fxam", X87_NONE); break;
	}
	return sw;
}

#define X87_LD(insn)							\
	__asm__ volatile(X87_PRE insn " %[m]\n\tfnstsw %[sw]\n\tfnclex\n\t"	\
			 "fstpt %[r]" X87_POST				\
			 : [r] "=m"(*r), [sw] "=m"(sw), [hcw] "=m"(hcw)	\
			 : [m] "m"(*(const uint8_t (*)[10])m), [cw] "m"(cw)	\
			 : X87_CLOB)

/* Memory formats to 80 bits: m32/m64 real (may raise IE/DE), BCD. */
uint16_t
simd_x87_host_load(int k, long double *r, const uint8_t *m, uint16_t cw)
{
	uint16_t sw = 0, hcw;

	switch (k) {
	case X87M_F32: X87_LD("flds"); break;
	case X87M_F64: X87_LD("fldl"); break;
	case X87M_BCD: X87_LD("fbld"); break;
	}
	return sw;
}

#define X87_ST(insn)							\
	__asm__ volatile(X87_PRE "fldt %[a]\n\t" insn " %[m]\n\t"	\
			 "fnstsw %[sw]\n\tfnclex" X87_POST			\
			 : [m] "=m"(*(uint8_t (*)[10])m), [sw] "=m"(sw),	\
			   [hcw] "=m"(hcw)				\
			 : [a] "m"(*a), [cw] "m"(cw)			\
			 : X87_CLOB)

/* 80 bits to memory formats, rounding under cw (FST, FIST, FISTTP). */
uint16_t
simd_x87_host_store(int k, uint8_t *m, const long double *a, uint16_t cw)
{
	uint16_t sw = 0, hcw;

	switch (k) {
	case X87M_F32: X87_ST("fstps"); break;
	case X87M_F64: X87_ST("fstpl"); break;
	case X87M_BCD: X87_ST("fbstp"); break;
	case X87M_I16: X87_ST("fistps"); break;
	case X87M_I32: X87_ST("fistpl"); break;
	case X87M_I64: X87_ST("fistpll"); break;
	case X87M_T16: X87_ST("fisttps"); break;
	case X87M_T32: X87_ST("fisttpl"); break;
	case X87M_T64: X87_ST("fisttpll"); break;
	}
	return sw;
}

#define X87_K(insn)							\
	__asm__ volatile(X87_PRE insn "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]"	\
			 X87_POST					\
			 : [r] "=m"(*r), [sw] "=m"(sw), [hcw] "=m"(hcw)	\
			 : [cw] "m"(cw) : X87_CLOB)

/* FLD1, FLDL2T, ..., FLDZ (D9 E8+k): rounded under the guest's RC. */
uint16_t
simd_x87_host_const(int k, long double *r, uint16_t cw)
{
	uint16_t sw = 0, hcw;

	switch (k) {
	case 0: X87_K("fld1"); break;
	case 1: X87_K("fldl2t"); break;
	case 2: X87_K("fldl2e"); break;
	case 3: X87_K("fldpi"); break;
	case 4: X87_K("fldlg2"); break;
	case 5: X87_K("fldln2"); break;
	default: X87_K("fldz"); break;
	}
	return sw;
}

#define X87_M(insn, tail)						\
	__asm__ volatile(X87_PRE "fldt %[a]\n\t" insn " %[m]\n\t"	\
			 "fnstsw %[sw]\n\tfnclex\n\t" tail X87_POST		\
			 : [r] "=m"(*r), [sw] "=m"(sw), [hcw] "=m"(hcw)	\
			 : [a] "m"(*a), [m] "m"(*(const uint8_t (*)[8])m),	\
			   [cw] "m"(cw)					\
			 : X87_CLOB)
#define X87_MROW(p, s)							\
	switch (k) {							\
	case X87H_ADD: X87_M(p "add" s, "fstpt %[r]"); break;		\
	case X87H_MUL: X87_M(p "mul" s, "fstpt %[r]"); break;		\
	case X87H_SUB: X87_M(p "sub" s, "fstpt %[r]"); break;		\
	case X87H_SUBR: X87_M(p "subr" s, "fstpt %[r]"); break;		\
	case X87H_DIV: X87_M(p "div" s, "fstpt %[r]"); break;		\
	case X87H_DIVR: X87_M(p "divr" s, "fstpt %[r]"); break;		\
	default: X87_M(p "com" s, "fstp %%st(0)"); break;		\
	}

/*
 * ST0 op memory in one host instruction (FADD m32, FIMUL m16, FCOM m64,
 * ...): converting the operand separately would report exceptions the
 * hardware drops by priority (a denormal operand next to an invalid one).
 */
uint16_t
simd_x87_host_opm(int k, int fmt, long double *r, const long double *a,
		  const uint8_t *m, uint16_t cw)
{
	uint16_t sw = 0, hcw;

	switch (fmt) {
	case X87M_F32: X87_MROW("f", "s"); break;
	case X87M_F64: X87_MROW("f", "l"); break;
	case X87M_I32: X87_MROW("fi", "l"); break;
	default: X87_MROW("fi", "s"); break;
	}
	return sw;
}
