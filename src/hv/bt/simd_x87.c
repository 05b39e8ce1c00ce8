/*
 * x87: decode of the D8-DF escapes, the register stack, condition codes,
 * stack faults, exceptions and the environment formats.  The arithmetic
 * itself runs on the host's x87 (simd_x87_host.c) under the guest's
 * precision and rounding control.
 *
 * The image keeps ST(i) in slot i (the FXSAVE order) and the abridged
 * tag word per physical register, so TOP changes rotate the slots.
 * Unmasked exceptions set ES/B and leave the destination alone; the
 * next waiting instruction raises #MF (vector 16).  Where the SDM leaves
 * condition codes undefined, they follow the test host (AMD EPYC).
 * XXX: #MF is raised whatever CR0.NE says (no FERR#/IRQ 13 path), and
 * the FCS/FDS selectors of the environment formats are stored as 0.
 */
#include "hv/bt/simd_impl.h"

static const uint8_t simd_x87_indef[10] = { 0, 0, 0, 0, 0, 0, 0, 0xc0,
					    0xff, 0xff };

static uint16_t
simd_x87_fcw(const struct simd_ctx *c)
{
	return simd_ld16(c->fpu->fxsave + FX_FCW);
}

static void
simd_x87_set_fsw(struct simd_ctx *c, uint16_t v)
{
	simd_st16(c->fpu->fxsave + FX_FSW, v);
}

static unsigned
simd_x87_top(const struct simd_ctx *c)
{
	return (simd_fsw(c) >> FSW_TOP_SHIFT) & 7;
}

static bool
simd_x87_valid(const struct simd_ctx *c, unsigned i)
{
	return (c->fpu->fxsave[FX_FTW] >> ((simd_x87_top(c) + i) & 7)) & 1;
}

static void
simd_x87_tag(struct simd_ctx *c, unsigned i, bool valid)
{
	uint8_t bit = 1u << ((simd_x87_top(c) + i) & 7);

	if (valid)
		c->fpu->fxsave[FX_FTW] |= bit;
	else
		c->fpu->fxsave[FX_FTW] &= ~bit;
}

static long double
simd_x87_get(const struct simd_ctx *c, unsigned i)
{
	long double v;

	memset(&v, 0, sizeof(v));
	memcpy(&v, c->fpu->fxsave + FX_ST(i & 7), 10);
	return v;
}

static void
simd_x87_put(struct simd_ctx *c, unsigned i, const void *v)
{
	memcpy(c->fpu->fxsave + FX_ST(i & 7), v, 10);
	memset(c->fpu->fxsave + FX_ST(i & 7) + 10, 0, 6);
	simd_x87_tag(c, i, true);
}

/* TOP += n, keeping slot i = ST(i). */
static void
simd_x87_rotate(struct simd_ctx *c, int n)
{
	uint8_t *fx = c->fpu->fxsave, tmp[128];
	uint16_t fsw = simd_fsw(c);

	memcpy(tmp, fx + FX_ST(0), 128);
	for (int i = 0; i < 8; i++)
		memcpy(fx + FX_ST(i), tmp + 16 * ((i + n) & 7), 16);
	fsw = (fsw & ~(7u << FSW_TOP_SHIFT)) |
	      (((simd_x87_top(c) + n) & 7) << FSW_TOP_SHIFT);
	simd_x87_set_fsw(c, fsw);
}

static void
simd_x87_pop(struct simd_ctx *c)
{
	simd_x87_tag(c, 0, false);
	simd_x87_rotate(c, 1);
}

static void
simd_x87_cc(struct simd_ctx *c, uint16_t mask, uint16_t val)
{
	simd_x87_set_fsw(c, (simd_fsw(c) & ~mask) | (val & mask));
}

/* Record flags; returns the unmasked ones (ES/B set if any). */
static uint16_t
simd_x87_raise(struct simd_ctx *c, uint16_t flags)
{
	uint16_t un = flags & ~simd_x87_fcw(c) & 0x3f, fsw;

	/* an unmasked IE/DE/ZE stops the operation before it computes */
	if (un & (FSW_IE | FSW_DE | FSW_ZE))
		flags &= FSW_IE | FSW_DE | FSW_ZE | FSW_SF;
	fsw = simd_fsw(c) | (flags & 0x7f);

	if (un)
		fsw |= FSW_ES | FSW_B;
	simd_x87_set_fsw(c, fsw);
	return un;
}

/* Stack underflow: IE+SF, C1=0; true when masked (continue with NaN). */
static bool
simd_x87_underflow(struct simd_ctx *c)
{
	simd_x87_cc(c, FSW_C1, 0);
	return !simd_x87_raise(c, FSW_IE | FSW_SF);
}

static void
simd_x87_push(struct simd_ctx *c, const void *v)
{
	if (simd_x87_valid(c, 7)) {		/* stack overflow */
		simd_x87_cc(c, FSW_C1, FSW_C1);
		if (simd_x87_raise(c, FSW_IE | FSW_SF))
			return;
		v = simd_x87_indef;
	}
	simd_x87_rotate(c, -1);
	simd_x87_put(c, 0, v);
}

#define X87_PRE_EXC (FSW_IE | FSW_DE | FSW_ZE)

/*
 * ST(d) = ST(d) k src, then pop; src NULL: the source register is empty.
 * With mem, the source is that memory operand in format fmt instead.
 */
static void
simd_x87_arith(struct simd_ctx *c, int k, unsigned d, const long double *src,
	       const uint8_t *mem, int fmt, int pops)
{
	long double a, r;
	uint16_t sw;

	if ((!src && !mem) || !simd_x87_valid(c, d)) {
		if (!simd_x87_underflow(c))
			return;
		simd_x87_put(c, d, simd_x87_indef);
	} else {
		a = simd_x87_get(c, d);
		if (mem)
			sw = simd_x87_host_opm(k, fmt, &r, &a, mem,
					       simd_x87_fcw(c));
		else
			sw = simd_x87_host_op2(k, &r, &a, src, simd_x87_fcw(c),
				       simd_fsw(c));
		simd_x87_cc(c, FSW_C1, sw);
		if (simd_x87_raise(c, sw & 0x3f) & X87_PRE_EXC)
			return;
		simd_x87_put(c, d, &r);
	}
	while (pops-- > 0)
		simd_x87_pop(c);
}

/* FCOM/FUCOM/FICOM (C0/C2/C3) and FCOMI/FUCOMI (ZF/PF/CF). */
static void
simd_x87_compare(struct simd_ctx *c, const long double *src,
		 const uint8_t *mem, int fmt, bool unordered, int pops,
		 bool to_rflags)
{
	uint16_t sw = FSW_C0 | FSW_C2 | FSW_C3;
	long double a, dummy;

	if (!to_rflags)			/* FCOMI keeps C1 (as the host does) */
		simd_x87_cc(c, FSW_C1, 0);
	if ((!src && !mem) || !simd_x87_valid(c, 0)) {
		if (!simd_x87_underflow(c))
			pops = 0;
	} else {
		a = simd_x87_get(c, 0);
		if (mem)
			sw = simd_x87_host_opm(X87H_COM, fmt, &dummy, &a, mem,
					       simd_x87_fcw(c));
		else
			sw = simd_x87_host_op2(unordered ? X87H_UCOM : X87H_COM,
					       &dummy, &a, src,
					       simd_x87_fcw(c),
				       simd_fsw(c));
		if (simd_x87_raise(c, sw & 0x3f) & X87_PRE_EXC)
			pops = 0;	/* the hardware keeps the stack */
	}
	if (to_rflags) {
		*c->rflags &= ~(uint64_t)(RFLAGS_OF | RFLAGS_SF | RFLAGS_AF |
					  RFLAGS_ZF | RFLAGS_PF | RFLAGS_CF);
		*c->rflags |= ((sw & FSW_C3) ? RFLAGS_ZF : 0) |
			      ((sw & FSW_C2) ? RFLAGS_PF : 0) |
			      ((sw & FSW_C0) ? RFLAGS_CF : 0);
	} else {
		simd_x87_cc(c, FSW_C0 | FSW_C2 | FSW_C3, sw);
	}
	while (pops-- > 0)
		simd_x87_pop(c);
}

static const int simd_x87_arith_kind[8] = {
	X87H_ADD, X87H_MUL, -1, -1, X87H_SUB, X87H_SUBR, X87H_DIV, X87H_DIVR
};

/* D8, DA, DC, DE with a memory operand: ST0 = ST0 op m. */
static void
simd_x87_arith_mem(struct simd_ctx *c, const struct simd_op *op,
		   const uint8_t *mem)
{
	static const int fmt[4] = { X87M_F32, X87M_I32, X87M_F64, X87M_I16 };
	unsigned r = op->reg & 7;
	int f = fmt[(op->opcode >> 1) & 3];

	if (r == 2 || r == 3)
		simd_x87_compare(c, NULL, mem, f, false, r == 3, false);
	else
		simd_x87_arith(c, simd_x87_arith_kind[r], 0, NULL, mem, f, 0);
}

/* D8, DC, DE register forms; DC/DE swap SUB/SUBR and DIV/DIVR. */
static void
simd_x87_arith_reg(struct simd_ctx *c, const struct simd_op *op)
{
	unsigned r = op->reg & 7, i = op->rm & 7;
	long double v;
	int k;

	if (r == 2 || r == 3) {			/* FCOM, FCOMP, aliases */
		v = simd_x87_get(c, i);
		simd_x87_compare(c, simd_x87_valid(c, i) ? &v : NULL, NULL, 0,
				 false, r == 3 || op->opcode == 0xde, false);
		return;
	}
	k = simd_x87_arith_kind[r];
	if (op->opcode == 0xd8) {
		v = simd_x87_get(c, i);
		simd_x87_arith(c, k, 0, simd_x87_valid(c, i) ? &v : NULL, NULL,
			       0, 0);
		return;
	}
	if (r >= 4)
		k ^= 1;		/* SUB<->SUBR, DIV<->DIVR (enum pairs) */
	v = simd_x87_get(c, 0);
	simd_x87_arith(c, k, i, simd_x87_valid(c, 0) ? &v : NULL, NULL, 0,
		       op->opcode == 0xde);
}

/* FLD of a value already converted (flags from the conversion). */
static void
simd_x87_load(struct simd_ctx *c, const long double *v, uint16_t flags)
{
	if (simd_x87_raise(c, flags) & X87_PRE_EXC)
		return;
	simd_x87_cc(c, FSW_C1, 0);
	simd_x87_push(c, v);
}

/* A push onto a full stack faults before the source is even converted. */
static bool
simd_x87_full(struct simd_ctx *c)
{
	if (!simd_x87_valid(c, 7))
		return false;
	simd_x87_push(c, simd_x87_indef);	/* the overflow fault */
	return true;
}

/* FST/FSTP/FIST/FISTP/FISTTP/FBSTP to memory (fmt X87M_*, -1: m80). */
static void
simd_x87_store(struct simd_ctx *c, int fmt, uint8_t *mem, int size, bool pop)
{
	long double a;
	uint8_t out[16];
	uint16_t sw = 0;

	if (!simd_x87_valid(c, 0)) {
		if (!simd_x87_underflow(c))
			return;
		memset(&a, 0, sizeof(a));
		memcpy(&a, simd_x87_indef, 10);
	} else {
		a = simd_x87_get(c, 0);
		simd_x87_cc(c, FSW_C1, 0);
	}
	if (fmt < 0) {
		memcpy(mem, &a, 10);
	} else {
		memcpy(out, mem, size);	/* what an unmasked fault leaves */
		sw = simd_x87_host_store(fmt, out, &a, simd_x87_fcw(c));
		simd_x87_cc(c, FSW_C1, sw);
		if (simd_x87_raise(c, sw & 0x3f) & (X87_PRE_EXC | FSW_OE |
						    FSW_UE))
			return;
		memcpy(mem, out, size);
	}
	if (pop)
		simd_x87_pop(c);
}

/* FSQRT, FRNDINT, FSIN, FCOS, F2XM1 on ST0. */
static void
simd_x87_unary(struct simd_ctx *c, int k)
{
	long double a, r, r1;
	uint16_t sw;
	bool trig = k == X87H_SIN || k == X87H_COS;

	if (trig)
		simd_x87_cc(c, FSW_C2, 0);
	if (!simd_x87_valid(c, 0)) {
		if (simd_x87_underflow(c))
			simd_x87_put(c, 0, simd_x87_indef);
		return;
	}
	a = simd_x87_get(c, 0);
	sw = simd_x87_host_op1(k, &r, &r1, &a, simd_x87_fcw(c),
				       simd_fsw(c));
	simd_x87_cc(c, FSW_C1 | (trig ? FSW_C2 : 0), sw);
	if (simd_x87_raise(c, sw & 0x3f) & X87_PRE_EXC)
		return;
	if (!(trig && (sw & FSW_C2)))		/* out of range: unchanged */
		simd_x87_put(c, 0, &r);
}

/* FPTAN, FSINCOS, FXTRACT: ST0 gets the deeper result, then a push. */
static void
simd_x87_unary2(struct simd_ctx *c, int k)
{
	long double a, r0, r1;
	uint16_t sw;

	if (k != X87H_XTRACT)
		simd_x87_cc(c, FSW_C2, 0);
	if (!simd_x87_valid(c, 0)) {
		/* the underflow wins over a full stack: no overflow check */
		if (simd_x87_underflow(c)) {
			simd_x87_put(c, 0, simd_x87_indef);
			simd_x87_rotate(c, -1);
			simd_x87_put(c, 0, simd_x87_indef);
		}
		return;
	}
	if (simd_x87_valid(c, 7)) {	/* overflow: both results are NaN */
		simd_x87_cc(c, FSW_C1, FSW_C1);
		if (!simd_x87_raise(c, FSW_IE | FSW_SF)) {
			simd_x87_put(c, 0, simd_x87_indef);
			simd_x87_rotate(c, -1);
			simd_x87_put(c, 0, simd_x87_indef);
		}
		return;
	}
	a = simd_x87_get(c, 0);
	sw = simd_x87_host_op1(k, &r0, &r1, &a, simd_x87_fcw(c),
				       simd_fsw(c));
	simd_x87_cc(c, FSW_C1 | (k != X87H_XTRACT ? FSW_C2 : 0), sw);
	if (simd_x87_raise(c, sw & 0x3f) & X87_PRE_EXC)
		return;
	if (k != X87H_XTRACT && (sw & FSW_C2))
		return;
	simd_x87_put(c, 0, &r1);
	simd_x87_push(c, &r0);
}

/* FPREM, FPREM1, FSCALE (ST0 result) and FPATAN, FYL2X, FYL2XP1 (ST1). */
static void
simd_x87_binary(struct simd_ctx *c, int k)
{
	bool to_st1 = k == X87H_PATAN || k == X87H_YL2X || k == X87H_YL2XP1;
	bool prem = k == X87H_PREM || k == X87H_PREM1;
	long double a, b, r;
	uint16_t sw;

	if (!simd_x87_valid(c, 0) || !simd_x87_valid(c, 1)) {
		if (prem)		/* no partial remainder pending */
			simd_x87_cc(c, FSW_C2, 0);
		if (!simd_x87_underflow(c))
			return;
		simd_x87_put(c, to_st1, simd_x87_indef);
	} else {
		a = simd_x87_get(c, 0);
		b = simd_x87_get(c, 1);
		sw = simd_x87_host_op2(k, &r, &a, &b, simd_x87_fcw(c),
				       simd_fsw(c));
		if (prem && (sw & FSW_IE))
			sw &= ~FSW_C2;
		simd_x87_cc(c, prem ? FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3 :
			    FSW_C1, sw);
		if (simd_x87_raise(c, sw & 0x3f) & X87_PRE_EXC)
			return;
		simd_x87_put(c, to_st1, &r);
	}
	if (to_st1)
		simd_x87_pop(c);
}

/* FTST, FXAM. */
static void
simd_x87_examine(struct simd_ctx *c, int k)
{
	const uint16_t cc = FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3;
	long double a, r0, r1;
	uint16_t sw;

	a = simd_x87_get(c, 0);
	if (!simd_x87_valid(c, 0)) {
		if (k == X87H_XAM) {		/* empty: C3=C0=1, C1 = sign */
			sw = FSW_C3 | FSW_C0 |
			     ((c->fpu->fxsave[FX_ST(0) + 9] & 0x80) ? FSW_C1
								    : 0);
			simd_x87_cc(c, cc, sw);
		} else {		/* unordered, masked or not */
			simd_x87_underflow(c);
			simd_x87_cc(c, FSW_C0 | FSW_C2 | FSW_C3, cc);
		}
		return;
	}
	sw = simd_x87_host_op1(k, &r0, &r1, &a, simd_x87_fcw(c),
				       simd_fsw(c));
	if (k == X87H_TST)
		simd_x87_raise(c, sw & 0x3f);
	simd_x87_cc(c, cc, sw);
}

static void
simd_x87_fxch(struct simd_ctx *c, unsigned i)
{
	long double a, b;

	simd_x87_cc(c, FSW_C1, 0);
	if (!simd_x87_valid(c, 0) || !simd_x87_valid(c, i)) {
		if (!simd_x87_underflow(c))
			return;
		if (!simd_x87_valid(c, 0))
			simd_x87_put(c, 0, simd_x87_indef);
		if (!simd_x87_valid(c, i))
			simd_x87_put(c, i, simd_x87_indef);
	}
	a = simd_x87_get(c, 0);
	b = simd_x87_get(c, i);
	simd_x87_put(c, 0, &b);
	simd_x87_put(c, i, &a);
}

/* FCMOVcc: DA /0-3 (B, E, BE, U) and DB /0-3 (the negations). */
static void
simd_x87_fcmov(struct simd_ctx *c, const struct simd_op *op)
{
	uint64_t f = *c->rflags;
	unsigned i = op->rm & 7;
	bool cond = false;
	long double v;

	switch (op->reg & 3) {
	case 0: cond = f & RFLAGS_CF; break;
	case 1: cond = f & RFLAGS_ZF; break;
	case 2: cond = f & (RFLAGS_CF | RFLAGS_ZF); break;
	case 3: cond = f & RFLAGS_PF; break;
	}
	if (op->opcode == 0xdb)
		cond = !cond;
	if (!simd_x87_valid(c, 0) || !simd_x87_valid(c, i)) {
		if (simd_x87_underflow(c))
			simd_x87_put(c, 0, simd_x87_indef);
		return;
	}
	if (cond) {
		v = simd_x87_get(c, i);
		simd_x87_put(c, 0, &v);
	}
}

/* The full 2-bit tag word of FSTENV/FSAVE, from the register contents. */
static uint16_t
simd_x87_full_tags(const struct simd_ctx *c)
{
	unsigned top = simd_x87_top(c);
	uint16_t tw = 0;

	for (unsigned p = 0; p < 8; p++) {
		const uint8_t *r = c->fpu->fxsave + FX_ST((p - top) & 7);
		uint16_t exp = simd_ld16(r + 8) & 0x7fff;
		uint64_t man = simd_ld64(r);
		unsigned t;

		if (!((c->fpu->fxsave[FX_FTW] >> p) & 1))
			t = 3;
		else if (exp == 0x7fff)
			t = 2;
		else if (exp == 0)
			t = man ? 2 : 1;
		else
			t = (man >> 63) ? 0 : 2;
		tw |= t << (2 * p);
	}
	return tw;
}

/* Real mode and virtual-8086 mode use their own environment layouts. */
static bool
simd_x87_real(const struct simd_ctx *c)
{
	return !(c->cr0 & CR0_PE) || (c->rflags && (*c->rflags & RFLAGS_VM));
}

/*
 * FNSTENV layouts: 14 bytes (16-bit operand size) or 28 (32-bit).  In
 * protected mode FIP/FDP are offsets with the selectors beside them (not
 * known here: 0); in real mode they are 20- or 32-bit linear addresses
 * split into a low 16-bit word and high bits at bit 12 of the next one,
 * which also holds FOP.
 */
static void
simd_x87_env_store(struct simd_ctx *c, uint8_t *m, int osz)
{
	const uint8_t *fx = c->fpu->fxsave;
	uint16_t tw = simd_x87_full_tags(c);
	uint16_t fop = simd_ld16(fx + FX_FOP) & 0x7ff;
	uint32_t fip = simd_ld32(fx + FX_FIP), fdp = simd_ld32(fx + FX_FDP);
	bool real = simd_x87_real(c);

	if (osz == 2) {
		simd_st16(m, simd_x87_fcw(c));
		simd_st16(m + 2, simd_fsw(c));
		simd_st16(m + 4, tw);
		simd_st16(m + 6, fip);
		simd_st16(m + 8, real ? ((fip >> 4) & 0xf000) | fop : 0);
		simd_st16(m + 10, fdp);
		simd_st16(m + 12, real ? (fdp >> 4) & 0xf000 : 0);
		return;
	}
	simd_st32(m, 0xffff0000u | simd_x87_fcw(c));
	simd_st32(m + 4, 0xffff0000u | simd_fsw(c));
	simd_st32(m + 8, 0xffff0000u | tw);
	if (real) {
		simd_st32(m + 12, 0xffff0000u | (fip & 0xffff));
		simd_st32(m + 16, ((fip >> 4) & 0x0ffff000u) | fop);
		simd_st32(m + 20, 0xffff0000u | (fdp & 0xffff));
		simd_st32(m + 24, (fdp >> 4) & 0x0ffff000u);
		return;
	}
	simd_st32(m + 12, fip);
	simd_st32(m + 16, (uint32_t)fop << 16);
	simd_st32(m + 20, fdp);
	simd_st32(m + 24, 0xffff0000u);
}

static void
simd_x87_env_load(struct simd_ctx *c, const uint8_t *m, int osz)
{
	uint8_t *fx = c->fpu->fxsave;
	uint16_t fcw = simd_fcw_fix(simd_ld16(m)), tw, fsw;
	int s = osz == 2 ? 2 : 4;
	bool real = simd_x87_real(c);
	uint8_t ftw = 0;

	fsw = simd_ld16(m + s);
	/* the registers stay where they are physically: follow the new TOP */
	simd_x87_rotate(c, (int)((fsw >> FSW_TOP_SHIFT) & 7) -
			   (int)simd_x87_top(c));
	tw = simd_ld16(m + 2 * s);
	for (unsigned p = 0; p < 8; p++)
		if (((tw >> (2 * p)) & 3) != 3)
			ftw |= 1u << p;
	simd_st16(fx + FX_FCW, fcw);
	simd_st16(fx + FX_FSW, simd_fsw_fix(fcw, fsw));
	fx[FX_FTW] = ftw;
	if (osz == 2) {
		uint16_t w8 = simd_ld16(m + 8), w12 = simd_ld16(m + 12);

		simd_st64(fx + FX_FIP, simd_ld16(m + 6) |
			  (real ? (uint32_t)(w8 & 0xf000) << 4 : 0));
		simd_st64(fx + FX_FDP, simd_ld16(m + 10) |
			  (real ? (uint32_t)(w12 & 0xf000) << 4 : 0));
		simd_st16(fx + FX_FOP, real ? w8 & 0x7ff : 0);
	} else if (real) {
		uint32_t w16 = simd_ld32(m + 16), w24 = simd_ld32(m + 24);

		simd_st64(fx + FX_FIP, simd_ld16(m + 12) |
			  ((w16 & 0x0ffff000u) << 4));
		simd_st64(fx + FX_FDP, simd_ld16(m + 20) |
			  ((w24 & 0x0ffff000u) << 4));
		simd_st16(fx + FX_FOP, w16 & 0x7ff);
	} else {
		simd_st64(fx + FX_FIP, simd_ld32(m + 12));
		simd_st16(fx + FX_FOP, (simd_ld32(m + 16) >> 16) & 0x7ff);
		simd_st64(fx + FX_FDP, simd_ld32(m + 20));
	}
}

static void
simd_x87_fninit(struct simd_ctx *c)
{
	uint8_t *fx = c->fpu->fxsave;

	simd_x87_rotate(c, -(int)simd_x87_top(c));	/* TOP = 0 */
	simd_st16(fx + FX_FCW, 0x037f);
	simd_st16(fx + FX_FSW, 0);
	fx[FX_FTW] = 0;
	memset(fx + FX_FOP, 0, 18);
}

static int
simd_x87_envsize(const struct simd_op *op)
{
	return op->op_size == 2 ? 14 : 28;
}

/* FNSAVE / FRSTOR: the environment, then ST0-ST7 as 10 bytes each. */
static void
simd_x87_save(struct simd_ctx *c, const struct simd_op *op, uint8_t *m,
	      bool restore)
{
	int es = simd_x87_envsize(op);

	if (restore) {
		simd_x87_env_load(c, m, op->op_size);
		for (int i = 0; i < 8; i++) {
			memcpy(c->fpu->fxsave + FX_ST(i), m + es + 10 * i, 10);
			memset(c->fpu->fxsave + FX_ST(i) + 10, 0, 6);
		}
		return;
	}
	simd_x87_env_store(c, m, op->op_size);
	for (int i = 0; i < 8; i++)
		memcpy(m + es + 10 * i, c->fpu->fxsave + FX_ST(i), 10);
	simd_x87_fninit(c);
}

enum { X87_R = 1, X87_W = 2, X87_RW = 3 };
#define X87_ENV		0xfe	/* size: 14 or 28 by operand size */
#define X87_SAVE	0xff	/* size: 94 or 108 */

/* Memory operand of each escape and ModRM.reg: size and direction. */
static const struct { uint8_t size, rw; } simd_x87_mtab[8][8] = {
	[0] = { { 4, X87_R }, { 4, X87_R }, { 4, X87_R }, { 4, X87_R },
		{ 4, X87_R }, { 4, X87_R }, { 4, X87_R }, { 4, X87_R } },
	[1] = { { 4, X87_R }, { 0, 0 }, { 4, X87_RW }, { 4, X87_RW },
		{ X87_ENV, X87_R }, { 2, X87_R }, { X87_ENV, X87_W },
		{ 2, X87_W } },
	[2] = { { 4, X87_R }, { 4, X87_R }, { 4, X87_R }, { 4, X87_R },
		{ 4, X87_R }, { 4, X87_R }, { 4, X87_R }, { 4, X87_R } },
	[3] = { { 4, X87_R }, { 4, X87_RW }, { 4, X87_RW }, { 4, X87_RW },
		{ 0, 0 }, { 10, X87_R }, { 0, 0 }, { 10, X87_RW } },
	[4] = { { 8, X87_R }, { 8, X87_R }, { 8, X87_R }, { 8, X87_R },
		{ 8, X87_R }, { 8, X87_R }, { 8, X87_R }, { 8, X87_R } },
	[5] = { { 8, X87_R }, { 8, X87_RW }, { 8, X87_RW }, { 8, X87_RW },
		{ X87_SAVE, X87_R }, { 0, 0 }, { X87_SAVE, X87_W },
		{ 2, X87_W } },
	[6] = { { 2, X87_R }, { 2, X87_R }, { 2, X87_R }, { 2, X87_R },
		{ 2, X87_R }, { 2, X87_R }, { 2, X87_R }, { 2, X87_R } },
	[7] = { { 2, X87_R }, { 2, X87_RW }, { 2, X87_RW }, { 2, X87_RW },
		{ 10, X87_R }, { 8, X87_R }, { 10, X87_RW }, { 8, X87_RW } },
};

/* Register forms that exist (undocumented aliases included). */
static bool
simd_x87_reg_ok(const struct simd_op *op)
{
	unsigned r = op->reg & 7, i = op->rm & 7;

	/*
	 * The undocumented aliases (FSTP1, FCOM2, FCOMP3, FXCH4, FCOMP5,
	 * FXCH7, FSTP8, FSTP9) are refused: the host does not run FSTP1 as
	 * FSTP, so their semantics are not what the name says.
	 */
	switch (op->opcode) {
	case 0xd9:
		return !((r == 2 && i) || r == 3 || (r == 4 && (i == 2 ||
			 i == 3 || i > 5)) || (r == 5 && i == 7));
	case 0xdc:
		return r != 2 && r != 3;
	case 0xda:
		return r < 4 || (r == 5 && i == 1);
	case 0xdb:
		return r != 7 && !(r == 4 && i > 4);
	case 0xdd:
		return r != 1 && r != 6 && r != 7;
	case 0xde:
		return r != 2 && (r != 3 || i == 1);
	case 0xdf:
		return r == 0 || (r == 4 && i == 0) || r == 5 || r == 6;
	}
	return true;
}

int
simd_x87_decode(const struct simd_op *op, struct simd_mem *m)
{
	uint8_t sz, rw;

	if (op->opcode == 0x9b)			/* WAIT/FWAIT */
		return 0;
	if (op->opcode < 0xd8 || op->opcode > 0xdf)
		return -1;
	if (op->mod == 3)
		return simd_x87_reg_ok(op) ? 0 : -1;
	sz = simd_x87_mtab[op->opcode - 0xd8][op->reg & 7].size;
	rw = simd_x87_mtab[op->opcode - 0xd8][op->reg & 7].rw;
	if (sz == X87_ENV)
		sz = simd_x87_envsize(op);
	else if (sz == X87_SAVE)
		sz = simd_x87_envsize(op) + 80;
	if (!sz)
		return -1;
	/*
	 * Stores also read: an unmasked exception must leave memory as it
	 * was, and the caller always writes the buffer back.
	 */
	*m = (struct simd_mem){ sz, 0, rw & X87_R, rw & X87_W, false };
	return 0;
}

static void
simd_x87_fld_m(struct simd_ctx *c, int fmt, const uint8_t *mem)
{
	long double v;

	if (simd_x87_full(c))
		return;
	simd_x87_load(c, &v, simd_x87_host_load(fmt, &v, mem,
						simd_x87_fcw(c)) & 0x3f);
}

static void
simd_x87_fild(struct simd_ctx *c, int64_t x)
{
	long double v = x;		/* exact in 64 bits of mantissa */

	simd_x87_load(c, &v, 0);
}

static void
simd_x87_mem_d9(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem)
{
	uint8_t *fx = c->fpu->fxsave;
	uint16_t fcw;

	switch (op->reg & 7) {
	case 0: simd_x87_fld_m(c, X87M_F32, mem); break;
	case 2: simd_x87_store(c, X87M_F32, mem, 4, false); break;
	case 3: simd_x87_store(c, X87M_F32, mem, 4, true); break;
	case 4: simd_x87_env_load(c, mem, op->op_size); break;
	case 5:
		fcw = simd_fcw_fix(simd_ld16(mem));
		simd_st16(fx + FX_FCW, fcw);
		simd_x87_set_fsw(c, simd_fsw_fix(fcw, simd_fsw(c)));
		break;
	case 6:
		simd_x87_env_store(c, mem, op->op_size);
		simd_st16(fx + FX_FCW, simd_x87_fcw(c) | 0x3f);
		break;
	case 7: simd_st16(mem, simd_x87_fcw(c)); break;
	}
}

static void
simd_x87_mem(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem)
{
	long double v;

	switch (op->opcode << 4 | (op->reg & 7)) {
	case 0xd90: case 0xd92: case 0xd93: case 0xd94: case 0xd95:
	case 0xd96: case 0xd97:
		simd_x87_mem_d9(c, op, mem);
		return;
	case 0xdb0: simd_x87_fild(c, (int32_t)simd_ld32(mem)); return;
	case 0xdb1: simd_x87_store(c, X87M_T32, mem, 4, true); return;
	case 0xdb2: simd_x87_store(c, X87M_I32, mem, 4, false); return;
	case 0xdb3: simd_x87_store(c, X87M_I32, mem, 4, true); return;
	case 0xdb5:
		memset(&v, 0, sizeof(v));
		memcpy(&v, mem, 10);		/* no conversion, no faults */
		simd_x87_load(c, &v, 0);
		return;
	case 0xdb7: simd_x87_store(c, -1, mem, 10, true); return;
	case 0xdd0: simd_x87_fld_m(c, X87M_F64, mem); return;
	case 0xdd1: simd_x87_store(c, X87M_T64, mem, 8, true); return;
	case 0xdd2: simd_x87_store(c, X87M_F64, mem, 8, false); return;
	case 0xdd3: simd_x87_store(c, X87M_F64, mem, 8, true); return;
	case 0xdd4: simd_x87_save(c, op, mem, true); return;
	case 0xdd6: simd_x87_save(c, op, mem, false); return;
	case 0xdd7: simd_st16(mem, simd_fsw(c)); return;
	case 0xdf0: simd_x87_fild(c, (int16_t)simd_ld16(mem)); return;
	case 0xdf1: simd_x87_store(c, X87M_T16, mem, 2, true); return;
	case 0xdf2: simd_x87_store(c, X87M_I16, mem, 2, false); return;
	case 0xdf3: simd_x87_store(c, X87M_I16, mem, 2, true); return;
	case 0xdf4: simd_x87_fld_m(c, X87M_BCD, mem); return;
	case 0xdf5: simd_x87_fild(c, (int64_t)simd_ld64(mem)); return;
	case 0xdf6: simd_x87_store(c, X87M_BCD, mem, 10, true); return;
	case 0xdf7: simd_x87_store(c, X87M_I64, mem, 8, true); return;
	}
	simd_x87_arith_mem(c, op, mem);		/* D8, DA, DC, DE */
}

/* FST/FSTP ST(i) (and the FSTP1/8/9 aliases). */
static void
simd_x87_fst_reg(struct simd_ctx *c, unsigned i, bool pop)
{
	long double v;

	simd_x87_cc(c, FSW_C1, 0);
	if (!simd_x87_valid(c, 0)) {
		if (!simd_x87_underflow(c))
			return;
		simd_x87_put(c, i, simd_x87_indef);
	} else {
		v = simd_x87_get(c, 0);
		simd_x87_put(c, i, &v);
	}
	if (pop)
		simd_x87_pop(c);
}

static void
simd_x87_sign(struct simd_ctx *c, bool abs)
{
	uint8_t *s = c->fpu->fxsave + FX_ST(0) + 9;

	if (!simd_x87_valid(c, 0)) {
		if (simd_x87_underflow(c))
			simd_x87_put(c, 0, simd_x87_indef);
		return;
	}
	simd_x87_cc(c, FSW_C1, 0);
	*s = abs ? *s & 0x7f : *s ^ 0x80;
}

static void
simd_x87_reg_d9(struct simd_ctx *c, unsigned r, unsigned i)
{
	static const int k6[8] = { X87H_F2XM1, X87H_YL2X, X87H_PTAN,
				   X87H_PATAN, X87H_XTRACT, X87H_PREM1, -1,
				   -1 };
	static const int k7[8] = { X87H_PREM, X87H_YL2XP1, X87H_SQRT,
				   X87H_SINCOS, X87H_RNDINT, X87H_SCALE,
				   X87H_SIN, X87H_COS };
	long double v;

	switch (r) {
	case 0:
		if (!simd_x87_valid(c, i)) {
			/* the underflow wins; no overflow check follows */
			if (simd_x87_underflow(c)) {
				simd_x87_rotate(c, -1);
				simd_x87_put(c, 0, simd_x87_indef);
			}
			return;
		}
		if (simd_x87_full(c))
			return;
		v = simd_x87_get(c, i);
		simd_x87_load(c, &v, 0);
		return;
	case 1: simd_x87_fxch(c, i); return;
	case 2: return;					/* FNOP */
	case 3: simd_x87_fst_reg(c, i, true); return;
	case 4:
		if (i < 2)
			simd_x87_sign(c, i == 1);
		else
			simd_x87_examine(c, i == 4 ? X87H_TST : X87H_XAM);
		return;
	case 5:
		if (simd_x87_full(c))
			return;
		simd_x87_load(c, &v, simd_x87_host_const(i, &v,
					simd_x87_fcw(c)) & 0x3f);
		return;
	case 6:
		if (i >= 6) {				/* FDECSTP, FINCSTP */
			simd_x87_cc(c, FSW_C1, 0);
			simd_x87_rotate(c, i == 6 ? -1 : 1);
			return;
		}
		break;
	}
	switch (r == 6 ? k6[i] : k7[i]) {
	case X87H_F2XM1: case X87H_SQRT: case X87H_RNDINT: case X87H_SIN:
	case X87H_COS:
		simd_x87_unary(c, r == 6 ? k6[i] : k7[i]);
		return;
	case X87H_PTAN: case X87H_SINCOS: case X87H_XTRACT:
		simd_x87_unary2(c, r == 6 ? k6[i] : k7[i]);
		return;
	default:
		simd_x87_binary(c, r == 6 ? k6[i] : k7[i]);
	}
}

static void
simd_x87_reg(struct simd_ctx *c, const struct simd_op *op)
{
	unsigned r = op->reg & 7, i = op->rm & 7;
	long double v = simd_x87_get(c, i), *src;

	src = simd_x87_valid(c, i) ? &v : NULL;
	switch (op->opcode << 4 | r) {
	case 0xd90: case 0xd91: case 0xd92: case 0xd93: case 0xd94:
	case 0xd95: case 0xd96: case 0xd97:
		simd_x87_reg_d9(c, r, i);
		return;
	case 0xda0: case 0xda1: case 0xda2: case 0xda3:
	case 0xdb0: case 0xdb1: case 0xdb2: case 0xdb3:
		simd_x87_fcmov(c, op);
		return;
	case 0xda5:					/* FUCOMPP */
		v = simd_x87_get(c, 1);
		simd_x87_compare(c, simd_x87_valid(c, 1) ? &v : NULL, NULL, 0,
				 true, 2, false);
		return;
	case 0xdb4:
		if (i == 2)				/* FNCLEX */
			simd_x87_set_fsw(c, simd_fsw(c) & ~0x80ff);
		else if (i == 3)
			simd_x87_fninit(c);
		return;				/* FNENI/FNDISI/FNSETPM: no-ops */
	case 0xdb5: simd_x87_compare(c, src, NULL, 0, true, 0, true); return;
	case 0xdb6: simd_x87_compare(c, src, NULL, 0, false, 0, true); return;
	case 0xdf5: simd_x87_compare(c, src, NULL, 0, true, 1, true); return;
	case 0xdf6: simd_x87_compare(c, src, NULL, 0, false, 1, true); return;
	case 0xdd0:				/* FFREE */
	case 0xdf0:				/* FFREEP */
		simd_x87_cc(c, FSW_C1, 0);
		simd_x87_tag(c, i, false);
		if (op->opcode == 0xdf)
			simd_x87_pop(c);
		return;
	case 0xdd1: case 0xdf1: simd_x87_fxch(c, i); return;
	case 0xdd2: simd_x87_fst_reg(c, i, false); return;
	case 0xdd3: case 0xdf2: case 0xdf3: simd_x87_fst_reg(c, i, true); return;
	case 0xdd4: simd_x87_compare(c, src, NULL, 0, true, 0, false); return;
	case 0xdd5: simd_x87_compare(c, src, NULL, 0, true, 1, false); return;
	case 0xde3:					/* FCOMPP */
		v = simd_x87_get(c, 1);
		simd_x87_compare(c, simd_x87_valid(c, 1) ? &v : NULL, NULL, 0,
				 false, 2, false);
		return;
	case 0xdf4:					/* FNSTSW AX */
		c->gpr[0] = (c->gpr[0] & ~0xffffull) | simd_fsw(c);
		return;
	}
	simd_x87_arith_reg(c, op);			/* D8, DC, DE */
}

/* No-wait forms: FNINIT, FNCLEX, FNSTSW, FNSTCW, FNSTENV, FNSAVE, ... */
static bool
simd_x87_nowait(const struct simd_op *op)
{
	unsigned r = op->reg & 7;

	if (op->mod == 3)
		return (op->opcode == 0xdb && r == 4) ||
		       (op->opcode == 0xdf && r == 4);
	return (op->opcode == 0xd9 && (r == 6 || r == 7)) ||
	       (op->opcode == 0xdd && (r == 6 || r == 7));
}

/* Control instructions do not update FIP/FDP/FOP. */
static bool
simd_x87_control(const struct simd_op *op)
{
	unsigned r = op->reg & 7;

	if (simd_x87_nowait(op))
		return true;
	return op->mod != 3 && ((op->opcode == 0xd9 && (r == 4 || r == 5)) ||
				(op->opcode == 0xdd && r == 4));
}

int
simd_x87_exec(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem)
{
	uint8_t *fx = c->fpu->fxsave;

	if (op->opcode == 0x9b) {			/* WAIT */
		if ((c->cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
			return SIMD_VEC_NM;
		return (simd_fsw(c) & FSW_ES) ? SIMD_VEC_MF : 0;
	}
	if (op->opcode < 0xd8 || op->opcode > 0xdf)
		return SIMD_VEC_UD;
	if (c->cr0 & (CR0_EM | CR0_TS))
		return SIMD_VEC_NM;
	if (!simd_x87_nowait(op) && (simd_fsw(c) & FSW_ES))
		return SIMD_VEC_MF;
	if (!simd_x87_control(op)) {
		simd_st64(fx + FX_FIP, c->fpu_ip);
		simd_st16(fx + FX_FOP, (op->opcode & 7) << 8 | op->mod << 6 |
			  (op->reg & 7) << 3 | (op->rm & 7));
		if (op->mod != 3)
			simd_st64(fx + FX_FDP, c->fpu_dp);
	}
	if (op->mod == 3)
		simd_x87_reg(c, op);
	else
		simd_x87_mem(c, op, mem);
	return 0;
}
