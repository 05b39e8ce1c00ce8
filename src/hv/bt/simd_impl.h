/*
 * Private to the simd*.c files: the FXSAVE image layout, the exception
 * vectors and the entry points of each instruction group.  The image is
 * the architectural state itself (see simd.h), kept in its 64-bit form:
 * FIP and FDP are 64-bit at offsets 8 and 16.
 */
#ifndef TV_BT_SIMD_IMPL_H
#define TV_BT_SIMD_IMPL_H

#include <string.h>

#include "hv/bt/simd.h"

#define FX_FCW		0
#define FX_FSW		2
#define FX_FTW		4
#define FX_FOP		6
#define FX_FIP		8
#define FX_FDP		16
#define FX_MXCSR	24
#define FX_MXCSR_MASK	28
#define FX_ST(i)	(32 + 16 * (i))
#define FX_XMM(i)	(160 + 16 * (i))

#define SIMD_VEC_UD	6
#define SIMD_VEC_NM	7
#define SIMD_VEC_GP	13
#define SIMD_VEC_MF	16
#define SIMD_VEC_XM	19

/* MXCSR bits that exist; anything else in LDMXCSR/FXRSTOR is #GP(0). */
#define SIMD_MXCSR_MASK	0xffffu
#define MXCSR_DAZ	(1u << 6)
#define MXCSR_FTZ	(1u << 15)

/* FSW bits. */
#define FSW_IE	0x0001
#define FSW_DE	0x0002
#define FSW_ZE	0x0004
#define FSW_OE	0x0008
#define FSW_UE	0x0010
#define FSW_PE	0x0020
#define FSW_SF	0x0040
#define FSW_ES	0x0080
#define FSW_C0	0x0100
#define FSW_C1	0x0200
#define FSW_C2	0x0400
#define FSW_C3	0x4000
#define FSW_B	0x8000
#define FSW_TOP_SHIFT	11

/* Lane views of one 64- or 128-bit register (the host is little-endian). */
union simd_vec {
	uint8_t b[16];
	int8_t sb[16];
	uint16_t w[8];
	int16_t sw[8];
	uint32_t d[4];
	int32_t sd[4];
	uint64_t q[2];
	int64_t sq[2];
	float f[4];
	double g[2];
};

static inline uint16_t
simd_ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t
simd_ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t
simd_ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void
simd_st16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline void
simd_st32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline void
simd_st64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline uint8_t *
simd_xmm(struct simd_ctx *c, unsigned i)
{
	return c->fpu->fxsave + FX_XMM(i & 15);
}

static inline uint32_t
simd_mxcsr(const struct simd_ctx *c)
{
	return simd_ld32(c->fpu->fxsave + FX_MXCSR);
}

static inline void
simd_set_mxcsr(struct simd_ctx *c, uint32_t v)
{
	simd_st32(c->fpu->fxsave + FX_MXCSR, v);
}

static inline uint16_t
simd_fsw(const struct simd_ctx *c)
{
	return simd_ld16(c->fpu->fxsave + FX_FSW);
}

/*
 * The control word keeps no reserved bits (bit 6 reads as one), and the
 * status word's ES/B summarise the flags left unmasked: FXRSTOR, FLDCW,
 * FLDENV and FRSTOR all go through here, as the hardware recomputes them.
 */
static inline uint16_t
simd_fcw_fix(uint16_t fcw)
{
	return (fcw & 0x1f3f) | 0x40;
}

static inline uint16_t
simd_fsw_fix(uint16_t fcw, uint16_t fsw)
{
	fsw &= ~(FSW_ES | FSW_B);
	if (fsw & ~fcw & 0x3f)
		fsw |= FSW_ES | FSW_B;
	return fsw;
}

/*
 * MMX registers are the low 64 bits of the physical x87 registers R0-R7.
 * The image keeps the x87 registers in stack order (slot i = ST(i), as
 * FXSAVE does), and an MMX instruction sets TOP to 0, so entering MMX
 * rotates the slots until slot i = Ri, then tags every register valid.
 * A write also sets the exponent/sign word to all ones.
 */
static inline void
simd_mmx_enter(struct simd_ctx *c)
{
	uint8_t *fx = c->fpu->fxsave, tmp[128];
	uint16_t fsw = simd_fsw(c);
	unsigned top = (fsw >> FSW_TOP_SHIFT) & 7;

	if (top) {
		/* Ri sits in slot (i - top) & 7 */
		memcpy(tmp, fx + FX_ST(0), 128);
		for (unsigned i = 0; i < 8; i++)
			memcpy(fx + FX_ST(i), tmp + 16 * ((i - top) & 7), 16);
		simd_st16(fx + FX_FSW, fsw & ~(7u << FSW_TOP_SHIFT));
	}
	fx[FX_FTW] = 0xff;
}

/* MMi before entering MMX: physical Ri, at slot (i - TOP) & 7. */
static inline uint64_t
simd_mm_peek(const struct simd_ctx *c, unsigned i)
{
	unsigned top = (simd_fsw(c) >> FSW_TOP_SHIFT) & 7;

	return simd_ld64(c->fpu->fxsave + FX_ST((i - top) & 7));
}

static inline uint64_t
simd_mm_get(const struct simd_ctx *c, unsigned i)
{
	return simd_ld64(c->fpu->fxsave + FX_ST(i & 7));
}

static inline void
simd_mm_set(struct simd_ctx *c, unsigned i, uint64_t v)
{
	uint8_t *r = c->fpu->fxsave + FX_ST(i & 7);

	simd_st64(r, v);
	simd_st16(r + 8, 0xffff);
}

static inline void
simd_gpr_set32(struct simd_ctx *c, unsigned r, uint32_t v)
{
	c->gpr[r & 15] = v;	/* 32-bit destinations zero-extend */
}

/* Common fault checks, in the priority order of the SDM. */
int simd_check_sse(const struct simd_ctx *c);
int simd_check_mmx(const struct simd_ctx *c);

/* SSE2 integer, MMX and integer data moves (simd_sse2_int.c). */
int simd_sse2_int_decode(const struct simd_op *op, struct simd_mem *m);
int simd_sse2_int_exec(struct simd_ctx *c, const struct simd_op *op,
		       uint8_t *mem);

/* SSSE3, maps 0F 38 and 0F 3A (simd_ssse3.c). */
int simd_ssse3_decode(const struct simd_op *op, struct simd_mem *m);
int simd_ssse3_exec(struct simd_ctx *c, const struct simd_op *op,
		    uint8_t *mem);

/* SSE/SSE2/SSE3 floating point and FP data moves (simd_sse.c). */
int simd_sse_decode(const struct simd_op *op, struct simd_mem *m);
int simd_sse_exec(struct simd_ctx *c, const struct simd_op *op,
		  uint8_t *mem);

/* Host x87 helpers (simd_x87_host.c); they return the host FSW. */
enum { X87H_ADD, X87H_MUL, X87H_SUB, X87H_SUBR, X87H_DIV, X87H_DIVR,
       X87H_PREM, X87H_PREM1, X87H_SCALE, X87H_PATAN, X87H_YL2X,
       X87H_YL2XP1, X87H_COM, X87H_UCOM };
enum { X87H_SQRT = 16, X87H_RNDINT, X87H_SIN, X87H_COS, X87H_F2XM1,
       X87H_XTRACT, X87H_PTAN, X87H_SINCOS, X87H_TST, X87H_XAM };
enum { X87M_F32, X87M_F64, X87M_BCD, X87M_I16, X87M_I32, X87M_I64,
       X87M_T16, X87M_T32, X87M_T64 };
uint16_t simd_x87_host_op2(int k, long double *r, const long double *a,
			   const long double *b, uint16_t cw, uint16_t gsw);
uint16_t simd_x87_host_op1(int k, long double *r0, long double *r1,
			   const long double *a, uint16_t cw, uint16_t gsw);
uint16_t simd_x87_host_load(int k, long double *r, const uint8_t *m,
			    uint16_t cw);
uint16_t simd_x87_host_store(int k, uint8_t *m, const long double *a,
			     uint16_t cw);
uint16_t simd_x87_host_opm(int k, int fmt, long double *r,
			   const long double *a, const uint8_t *m, uint16_t cw);
uint16_t simd_x87_host_const(int k, long double *r, uint16_t cw);

/* x87 (simd_x87.c). */
int simd_x87_decode(const struct simd_op *op, struct simd_mem *m);
int simd_x87_exec(struct simd_ctx *c, const struct simd_op *op,
		  uint8_t *mem);

#endif
