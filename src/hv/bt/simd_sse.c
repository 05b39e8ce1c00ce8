/*
 * SSE/SSE2/SSE3 floating point: arithmetic, compares, conversions, and
 * the FP data moves and shuffles.
 *
 * The arithmetic runs on the host's own SSE unit under the guest's MXCSR
 * (rounding, DAZ, FTZ; exceptions masked), one instruction per inline
 * asm block that also loads and reads MXCSR, so the compiler cannot move
 * other FP code in between.  The software CPU only runs on x86-64 hosts
 * (x87 long double is assumed too), and the host unit gives bit-exact
 * results, NaN propagation and exception flags for free.  Unmasked
 * exceptions are decided here from the flags the masked run reports.
 * Data moves, logic and shuffles need no FP unit and are plain C.
 */
#include "hv/bt/simd_impl.h"

typedef long long simd_sse_v __attribute__((vector_size(16)));
typedef uint32_t (*simd_sse_fn)(simd_sse_v *d, simd_sse_v s, uint32_t csr);

#define SIMD_SSE_HOST(name, insn)					\
static uint32_t								\
simd_sse_h_##name(simd_sse_v *d, simd_sse_v s, uint32_t csr)		\
{									\
	uint32_t host, out;						\
									\
	__asm__ volatile("stmxcsr %[h]\n\tldmxcsr %[c]\n\t"		\
			 insn " %[s], %[d]\n\t"				\
			 "stmxcsr %[o]\n\tldmxcsr %[h]"			\
			 : [d] "+x"(*d), [h] "=m"(host), [o] "=m"(out)	\
			 : [s] "x"(s), [c] "m"(csr));			\
	return out;							\
}

#define SIMD_SSE_HOST4(op)						\
	SIMD_SSE_HOST(op##ps, #op "ps") SIMD_SSE_HOST(op##pd, #op "pd")	\
	SIMD_SSE_HOST(op##ss, #op "ss") SIMD_SSE_HOST(op##sd, #op "sd")

SIMD_SSE_HOST4(sqrt)
SIMD_SSE_HOST4(add)
SIMD_SSE_HOST4(mul)
SIMD_SSE_HOST4(sub)
SIMD_SSE_HOST4(min)
SIMD_SSE_HOST4(div)
SIMD_SSE_HOST4(max)
SIMD_SSE_HOST(rsqrtps, "rsqrtps")
SIMD_SSE_HOST(rsqrtss, "rsqrtss")
SIMD_SSE_HOST(rcpps, "rcpps")
SIMD_SSE_HOST(rcpss, "rcpss")
SIMD_SSE_HOST(cvtps2pd, "cvtps2pd")
SIMD_SSE_HOST(cvtpd2ps, "cvtpd2ps")
SIMD_SSE_HOST(cvtss2sd, "cvtss2sd")
SIMD_SSE_HOST(cvtsd2ss, "cvtsd2ss")
SIMD_SSE_HOST(cvtdq2ps, "cvtdq2ps")
SIMD_SSE_HOST(cvtps2dq, "cvtps2dq")
SIMD_SSE_HOST(cvttps2dq, "cvttps2dq")
SIMD_SSE_HOST(cvttpd2dq, "cvttpd2dq")
SIMD_SSE_HOST(cvtdq2pd, "cvtdq2pd")
SIMD_SSE_HOST(cvtpd2dq, "cvtpd2dq")
SIMD_SSE_HOST(haddpd, "haddpd")
SIMD_SSE_HOST(haddps, "haddps")
SIMD_SSE_HOST(hsubpd, "hsubpd")
SIMD_SSE_HOST(hsubps, "hsubps")
SIMD_SSE_HOST(addsubpd, "addsubpd")
SIMD_SSE_HOST(addsubps, "addsubps")

/* CMPxx: the predicate is an immediate, so one function per value. */
#define SIMD_SSE_CMP(n)							\
	SIMD_SSE_HOST(cmpps##n, "cmpps $" #n ",")			\
	SIMD_SSE_HOST(cmppd##n, "cmppd $" #n ",")			\
	SIMD_SSE_HOST(cmpss##n, "cmpss $" #n ",")			\
	SIMD_SSE_HOST(cmpsd##n, "cmpsd $" #n ",")
SIMD_SSE_CMP(0) SIMD_SSE_CMP(1) SIMD_SSE_CMP(2) SIMD_SSE_CMP(3)
SIMD_SSE_CMP(4) SIMD_SSE_CMP(5) SIMD_SSE_CMP(6) SIMD_SSE_CMP(7)

#define SIMD_SSE_CMPROW(n)						\
	{ simd_sse_h_cmpps##n, simd_sse_h_cmppd##n, simd_sse_h_cmpss##n,	\
	  simd_sse_h_cmpsd##n }
static const simd_sse_fn simd_sse_cmp[8][4] = {
	SIMD_SSE_CMPROW(0), SIMD_SSE_CMPROW(1), SIMD_SSE_CMPROW(2),
	SIMD_SSE_CMPROW(3), SIMD_SSE_CMPROW(4), SIMD_SSE_CMPROW(5),
	SIMD_SSE_CMPROW(6), SIMD_SSE_CMPROW(7),
};

/*
 * The "op xmm, xmm/mem" instructions run on the host: function and
 * memory operand size per prefix (none, 66, F3, F2).  A 16-byte memory
 * operand must be aligned, a smaller one need not be.
 */
struct simd_sse_arith {
	uint8_t opc;
	simd_sse_fn fn[4];
	uint8_t size[4];
};

#define SIMD_SSE_ROW4(o, op)						\
	{ o, { simd_sse_h_##op##ps, simd_sse_h_##op##pd,		\
	       simd_sse_h_##op##ss, simd_sse_h_##op##sd }, { 16, 16, 4, 8 } }

static const struct simd_sse_arith simd_sse_arith_tab[] = {
	SIMD_SSE_ROW4(0x51, sqrt),
	{ 0x52, { simd_sse_h_rsqrtps, NULL, simd_sse_h_rsqrtss, NULL },
	  { 16, 0, 4, 0 } },
	{ 0x53, { simd_sse_h_rcpps, NULL, simd_sse_h_rcpss, NULL },
	  { 16, 0, 4, 0 } },
	SIMD_SSE_ROW4(0x58, add),
	SIMD_SSE_ROW4(0x59, mul),
	{ 0x5a, { simd_sse_h_cvtps2pd, simd_sse_h_cvtpd2ps,
		  simd_sse_h_cvtss2sd, simd_sse_h_cvtsd2ss }, { 8, 16, 4, 8 } },
	{ 0x5b, { simd_sse_h_cvtdq2ps, simd_sse_h_cvtps2dq,
		  simd_sse_h_cvttps2dq, NULL }, { 16, 16, 16, 0 } },
	SIMD_SSE_ROW4(0x5c, sub),
	SIMD_SSE_ROW4(0x5d, min),
	SIMD_SSE_ROW4(0x5e, div),
	SIMD_SSE_ROW4(0x5f, max),
	{ 0x7c, { NULL, simd_sse_h_haddpd, NULL, simd_sse_h_haddps },
	  { 0, 16, 0, 16 } },
	{ 0x7d, { NULL, simd_sse_h_hsubpd, NULL, simd_sse_h_hsubps },
	  { 0, 16, 0, 16 } },
	{ 0xd0, { NULL, simd_sse_h_addsubpd, NULL, simd_sse_h_addsubps },
	  { 0, 16, 0, 16 } },
	{ 0xe6, { NULL, simd_sse_h_cvttpd2dq, simd_sse_h_cvtdq2pd,
		  simd_sse_h_cvtpd2dq }, { 0, 16, 8, 16 } },
	{ 0xc2, { NULL, NULL, NULL, NULL }, { 16, 16, 4, 8 } },
};

static const struct simd_sse_arith *
simd_sse_arith_find(uint8_t opc, uint8_t pfx)
{
	for (unsigned i = 0; i < sizeof(simd_sse_arith_tab) /
			       sizeof(simd_sse_arith_tab[0]); i++)
		if (simd_sse_arith_tab[i].opc == opc)
			return simd_sse_arith_tab[i].size[pfx & 3]
				       ? &simd_sse_arith_tab[i] : NULL;
	return NULL;
}

/*
 * Memory operand of the other forms: size, alignment, read/write.
 * Returns -1 for encodings that do not exist.
 */
static int
simd_sse_moves_decode(const struct simd_op *op, struct simd_mem *m)
{
	static const uint8_t scal[4] = { 16, 16, 4, 8 };
	uint8_t p = op->pfx, o = op->opcode, sz = scal[p & 3];
	bool ps_pd = p == SIMD_PFX_NONE || p == SIMD_PFX_66;
	bool reg = op->mod == 3;

	switch (o) {
	case 0x10:
	case 0x11:
		*m = (struct simd_mem){ sz, 0, o == 0x10, o == 0x11, false };
		return 0;
	case 0x12:
	case 0x16:
		if (p == SIMD_PFX_66 && reg)
			return -1;
		if (p == SIMD_PFX_F3)		/* movsldup/movshdup */
			*m = (struct simd_mem){ 16, 16, true, false, false };
		else
			*m = (struct simd_mem){ 8, 0, true, false, false };
		return 0;
	case 0x13:
	case 0x17:
		if (!ps_pd || reg)
			return -1;
		*m = (struct simd_mem){ 8, 0, false, true, false };
		return 0;
	case 0x14: case 0x15: case 0x54: case 0x55: case 0x56: case 0x57:
	case 0x28: case 0x29:
		if (!ps_pd)
			return -1;
		*m = (struct simd_mem){ 16, 16, o != 0x29, o == 0x29, false };
		return 0;
	case 0x2b:
		if (!ps_pd || reg)
			return -1;
		*m = (struct simd_mem){ 16, 16, false, true, false };
		return 0;
	case 0x2a:
		*m = (struct simd_mem){ ps_pd ? 8 : op->rex_w ? 8 : 4, 0,
					true, false, false };
		return 0;
	case 0x2c:
	case 0x2d:
		*m = (struct simd_mem){ p == SIMD_PFX_NONE ? 8 : sz,
					p == SIMD_PFX_66 ? 16 : 0, true, false,
					false };
		return 0;
	case 0x2e:
	case 0x2f:
		if (!ps_pd)
			return -1;
		*m = (struct simd_mem){ p == SIMD_PFX_66 ? 8 : 4, 0, true,
					false, false };
		return 0;
	case 0x50:
		return ps_pd && reg ? 0 : -1;
	case 0xc6:
		if (!ps_pd)
			return -1;
		*m = (struct simd_mem){ 16, 16, true, false, true };
		return 0;
	}
	return -1;
}

int
simd_sse_decode(const struct simd_op *op, struct simd_mem *m)
{
	const struct simd_sse_arith *a;

	if (op->opcode == 0x12 || op->opcode == 0x16) {
		/* F2 0F 16 does not exist; F2 0F 12 is movddup */
		if (op->opcode == 0x16 && op->pfx == SIMD_PFX_F2)
			return -1;
	}
	a = simd_sse_arith_find(op->opcode, op->pfx);
	if (a) {
		uint8_t sz = a->size[op->pfx & 3];

		*m = (struct simd_mem){ sz, sz == 16 ? 16 : 0, true, false,
					op->opcode == 0xc2 };
		return 0;
	}
	if (op->opcode == 0x12 && op->pfx == SIMD_PFX_F2) {	/* movddup */
		*m = (struct simd_mem){ 8, 0, true, false, false };
		return 0;
	}
	return simd_sse_moves_decode(op, m);
}

/* Source operand: a register, or memory zero-extended to 16 bytes. */
static void
simd_sse_src(struct simd_ctx *c, const struct simd_op *op, const uint8_t *mem,
	     int size, union simd_vec *s)
{
	memset(s, 0, sizeof(*s));
	if (op->mod == 3)
		memcpy(s->b, simd_xmm(c, op->rm), 16);
	else
		memcpy(s->b, mem, size);
}

/*
 * Fold the flags of a masked host run into MXCSR.  An unmasked one makes
 * the instruction fault instead (#XM, or #UD without CR4.OSXMMEXCPT)
 * with the destination untouched; the flags are still recorded, because
 * that is how the handler learns the cause.  Pre-computation exceptions
 * (IE, DE, ZE) win over the post-computation ones.
 * XXX: with underflow or overflow unmasked the hardware reports PE only
 * if the result is inexact at unbounded exponent; the masked run here
 * reports whether the delivered (denormal/infinite) result was, which
 * can differ.
 */
static int
simd_sse_flags(struct simd_ctx *c, uint32_t flags)
{
	uint32_t csr = simd_mxcsr(c), un;

	flags &= 0x3f;
	un = flags & ~(csr >> 7) & 0x3f;
	if (un & 7)
		flags &= 7;
	simd_set_mxcsr(c, csr | flags);
	if (!un)
		return 0;
	return (c->cr4 & CR4_OSXMMEXCPT) ? SIMD_VEC_XM : SIMD_VEC_UD;
}

/*
 * What the host runs under: the guest's RC/DAZ, all masked, clean.  FTZ
 * only acts while underflow is masked, so it is dropped otherwise.
 */
static uint32_t
simd_sse_host_csr(const struct simd_ctx *c)
{
	uint32_t csr = simd_mxcsr(c);

	if (!(csr & (1u << 11)))
		csr &= ~MXCSR_FTZ;
	return (csr & 0xffc0) | 0x1f80;
}

/*
 * Lanes an instruction can underflow in: with underflow unmasked, a tiny
 * result raises UE even when exact, which a masked run does not flag, so
 * a denormal in one of these lanes stands for it.  Returns the lane
 * count; *dbl tells doubles from floats.
 */
static int
simd_sse_ue_lanes(const struct simd_op *op, bool *dbl)
{
	static const uint8_t n[4] = { 4, 2, 1, 1 };
	uint8_t o = op->opcode, p = op->pfx & 3;

	*dbl = p == SIMD_PFX_66 || p == SIMD_PFX_F2;
	switch (o) {
	case 0x58: case 0x59: case 0x5c: case 0x5e:
		return n[p];
	case 0x7c: case 0x7d: case 0xd0:	/* F2 is the ps form here */
		*dbl = p == SIMD_PFX_66;
		return p == SIMD_PFX_66 ? 2 : 4;
	case 0x5a:
		*dbl = false;
		return p == SIMD_PFX_66 ? 2 : p == SIMD_PFX_F2 ? 1 : 0;
	}
	return 0;
}

static bool
simd_sse_has_denormal(const union simd_vec *v, int lanes, bool dbl)
{
	for (int i = 0; i < lanes; i++) {
		if (dbl ? ((v->q[i] >> 52) & 0x7ff) == 0 &&
			  (v->q[i] & ((1ull << 52) - 1))
			: ((v->d[i] >> 23) & 0xff) == 0 &&
			  (v->d[i] & ((1u << 23) - 1)))
			return true;
	}
	return false;
}

static int
simd_sse_run(struct simd_ctx *c, simd_sse_fn fn, union simd_vec *d,
	     const union simd_vec *s)
{
	simd_sse_v vd, vs;
	int v;

	memcpy(&vd, d->b, 16);
	memcpy(&vs, s->b, 16);
	v = simd_sse_flags(c, fn(&vd, vs, simd_sse_host_csr(c)));
	memcpy(d->b, &vd, 16);
	return v;
}

static int
simd_sse_arith_exec(struct simd_ctx *c, const struct simd_op *op,
		    const uint8_t *mem, const struct simd_sse_arith *a)
{
	simd_sse_fn fn = a->fn[op->pfx & 3];
	union simd_vec d, s;
	int v, lanes;
	bool dbl;

	if (op->opcode == 0xc2)
		fn = simd_sse_cmp[op->imm8 & 7][op->pfx & 3];
	memcpy(d.b, simd_xmm(c, op->reg), 16);
	simd_sse_src(c, op, mem, a->size[op->pfx & 3], &s);
	if (!(simd_mxcsr(c) & (1u << 11)) &&
	    (lanes = simd_sse_ue_lanes(op, &dbl)) != 0) {
		simd_sse_v vd, vs;
		uint32_t fl;

		memcpy(&vd, d.b, 16);
		memcpy(&vs, s.b, 16);
		fl = fn(&vd, vs, simd_sse_host_csr(c));
		memcpy(d.b, &vd, 16);
		if (simd_sse_has_denormal(&d, lanes, dbl))
			fl |= FSW_UE;		/* same bit in MXCSR */
		if ((v = simd_sse_flags(c, fl)) != 0)
			return v;
	} else if ((v = simd_sse_run(c, fn, &d, &s)) != 0) {
		return v;
	}
	memcpy(simd_xmm(c, op->reg), d.b, 16);
	return 0;
}

/* COMISS/UCOMISS/COMISD/UCOMISD: ZF/PF/CF from the compare, OF/SF/AF 0. */
static int
simd_sse_comis(struct simd_ctx *c, const struct simd_op *op,
	       const uint8_t *mem)
{
	union simd_vec d, s;
	simd_sse_v vd, vs;
	uint32_t host, out, csr = simd_sse_host_csr(c);
	uint8_t zf, pf, cf;
	int v;

	memcpy(d.b, simd_xmm(c, op->reg), 16);
	simd_sse_src(c, op, mem, op->pfx == SIMD_PFX_66 ? 8 : 4, &s);
	memcpy(&vd, d.b, 16);
	memcpy(&vs, s.b, 16);
/* early-clobber outputs: they are written before MXCSR is stored */
#define SIMD_SSE_COMIS(insn)						\
	__asm__ volatile("stmxcsr %[h]\n\tldmxcsr %[c]\n\t"		\
			 insn " %[s], %[d]\n\t"				\
			 "setz %[z]\n\tsetp %[p]\n\tsetc %[cf]\n\t"	\
			 "stmxcsr %[o]\n\tldmxcsr %[h]"			\
			 : [h] "=m"(host), [o] "=m"(out), [z] "=&q"(zf),	\
			   [p] "=&q"(pf), [cf] "=&q"(cf)		\
			 : [d] "x"(vd), [s] "x"(vs), [c] "m"(csr) : "cc")
	switch ((op->opcode & 1) | (op->pfx == SIMD_PFX_66) << 1) {
	case 0: SIMD_SSE_COMIS("ucomiss"); break;
	case 1: SIMD_SSE_COMIS("comiss"); break;
	case 2: SIMD_SSE_COMIS("ucomisd"); break;
	default: SIMD_SSE_COMIS("comisd"); break;
	}
#undef SIMD_SSE_COMIS
	if ((v = simd_sse_flags(c, out)) != 0)
		return v;
	*c->rflags &= ~(uint64_t)(RFLAGS_OF | RFLAGS_SF | RFLAGS_AF |
				  RFLAGS_ZF | RFLAGS_PF | RFLAGS_CF);
	*c->rflags |= (zf ? RFLAGS_ZF : 0) | (pf ? RFLAGS_PF : 0) |
		      (cf ? RFLAGS_CF : 0);
	return 0;
}

/* CVTSI2SS/CVTSI2SD from a 32- or 64-bit integer register or memory. */
static int
simd_sse_cvtsi2f(struct simd_ctx *c, const struct simd_op *op,
		 const uint8_t *mem)
{
	int64_t x = op->mod == 3 ? (int64_t)c->gpr[op->rm & 15]
				 : (int64_t)simd_ld64(mem);
	simd_sse_v vd;
	uint32_t host, out, csr = simd_sse_host_csr(c);
	int v;

	if (!op->rex_w)
		x = (int32_t)x;
	memcpy(&vd, simd_xmm(c, op->reg), 16);
#define SIMD_SSE_CVTSI(insn)						\
	__asm__ volatile("stmxcsr %[h]\n\tldmxcsr %[c]\n\t"		\
			 insn " %[s], %[d]\n\t"				\
			 "stmxcsr %[o]\n\tldmxcsr %[h]"			\
			 : [d] "+x"(vd), [h] "=m"(host), [o] "=m"(out)	\
			 : [s] "r"(x), [c] "m"(csr))
	if (op->pfx == SIMD_PFX_F3)
		SIMD_SSE_CVTSI("cvtsi2ssq");
	else
		SIMD_SSE_CVTSI("cvtsi2sdq");
#undef SIMD_SSE_CVTSI
	/* a 32-bit source was sign-extended: the 64-bit form is the same */
	if ((v = simd_sse_flags(c, out)) != 0)
		return v;
	memcpy(simd_xmm(c, op->reg), &vd, 16);
	return 0;
}

/* CVT(T)SS2SI/CVT(T)SD2SI into a 32- or 64-bit general register. */
static int
simd_sse_cvtf2si(struct simd_ctx *c, const struct simd_op *op,
		 const uint8_t *mem)
{
	union simd_vec s;
	simd_sse_v vs;
	uint32_t host, out, csr = simd_sse_host_csr(c);
	uint64_t r;
	int v, k;

	simd_sse_src(c, op, mem, op->pfx == SIMD_PFX_F2 ? 8 : 4, &s);
	memcpy(&vs, s.b, 16);
	k = (op->opcode == 0x2c) | (op->pfx == SIMD_PFX_F2) << 1 |
	    (op->rex_w != 0) << 2;
#define SIMD_SSE_CVT2SI(insn, reg)					\
	__asm__ volatile("stmxcsr %[h]\n\tldmxcsr %[c]\n\t"		\
			 insn " %[s], %" reg "[r]\n\t"			\
			 "stmxcsr %[o]\n\tldmxcsr %[h]"			\
			 : [r] "=&r"(r), [h] "=m"(host), [o] "=m"(out)	\
			 : [s] "x"(vs), [c] "m"(csr))
	switch (k) {
	case 0: SIMD_SSE_CVT2SI("cvtss2si", "k"); break;
	case 1: SIMD_SSE_CVT2SI("cvttss2si", "k"); break;
	case 2: SIMD_SSE_CVT2SI("cvtsd2si", "k"); break;
	case 3: SIMD_SSE_CVT2SI("cvttsd2si", "k"); break;
	case 4: SIMD_SSE_CVT2SI("cvtss2si", "q"); break;
	case 5: SIMD_SSE_CVT2SI("cvttss2si", "q"); break;
	case 6: SIMD_SSE_CVT2SI("cvtsd2si", "q"); break;
	default: SIMD_SSE_CVT2SI("cvttsd2si", "q"); break;
	}
#undef SIMD_SSE_CVT2SI
	if ((v = simd_sse_flags(c, out)) != 0)
		return v;
	c->gpr[op->reg & 15] = op->rex_w ? r : (uint32_t)r;
	return 0;
}

/*
 * The MMX conversions (CVTPI2PS/PD, CVT(T)PS2PI, CVT(T)PD2PI) are the
 * packed-dword ones on a half-filled vector: the extra lanes are zero,
 * which converts exactly and raises nothing.
 */
static int
simd_sse_cvt_mmx(struct simd_ctx *c, const struct simd_op *op,
		 const uint8_t *mem)
{
	bool pd = op->pfx == SIMD_PFX_66;
	union simd_vec d = { 0 }, s = { 0 };
	simd_sse_fn fn;
	int v;

	if (op->opcode == 0x2a) {
		if (op->mod == 3) {
			if ((v = simd_check_mmx(c)) != 0)
				return v;
			s.q[0] = simd_mm_peek(c, op->rm);
		} else {
			s.q[0] = simd_ld64(mem);
		}
		memcpy(d.b, simd_xmm(c, op->reg), 16);
		fn = pd ? simd_sse_h_cvtdq2pd : simd_sse_h_cvtdq2ps;
		if ((v = simd_sse_run(c, fn, &d, &s)) != 0)
			return v;
		if (op->mod == 3)	/* only once nothing can fault */
			simd_mmx_enter(c);
		if (pd)
			memcpy(simd_xmm(c, op->reg), d.b, 16);
		else
			simd_st64(simd_xmm(c, op->reg), d.q[0]);
		return 0;
	}
	if ((v = simd_check_mmx(c)) != 0)
		return v;
	simd_sse_src(c, op, mem, pd ? 16 : 8, &s);
	if (!pd)
		s.q[1] = 0;
	if (op->opcode == 0x2c)
		fn = pd ? simd_sse_h_cvttpd2dq : simd_sse_h_cvttps2dq;
	else
		fn = pd ? simd_sse_h_cvtpd2dq : simd_sse_h_cvtps2dq;
	if ((v = simd_sse_run(c, fn, &d, &s)) != 0)
		return v;
	simd_mmx_enter(c);
	simd_mm_set(c, op->reg, d.q[0]);
	return 0;
}

static void
simd_sse_shuf_unpck(union simd_vec *r, const union simd_vec *d,
		    const union simd_vec *s, const struct simd_op *op)
{
	bool pd = op->pfx == SIMD_PFX_66;
	uint8_t i = op->imm8;

	switch (op->opcode) {
	case 0x14:
		if (pd)
			*r = (union simd_vec){ .q = { d->q[0], s->q[0] } };
		else
			*r = (union simd_vec){ .d = { d->d[0], s->d[0],
						      d->d[1], s->d[1] } };
		return;
	case 0x15:
		if (pd)
			*r = (union simd_vec){ .q = { d->q[1], s->q[1] } };
		else
			*r = (union simd_vec){ .d = { d->d[2], s->d[2],
						      d->d[3], s->d[3] } };
		return;
	case 0xc6:
		if (pd)
			*r = (union simd_vec){ .q = { d->q[i & 1],
						      s->q[(i >> 1) & 1] } };
		else
			*r = (union simd_vec){ .d = { d->d[i & 3],
				d->d[(i >> 2) & 3], s->d[(i >> 4) & 3],
				s->d[i >> 6] } };
		return;
	}
	for (int k = 0; k < 2; k++) {		/* 54-57: logic */
		switch (op->opcode) {
		case 0x54: r->q[k] = d->q[k] & s->q[k]; break;
		case 0x55: r->q[k] = ~d->q[k] & s->q[k]; break;
		case 0x56: r->q[k] = d->q[k] | s->q[k]; break;
		case 0x57: r->q[k] = d->q[k] ^ s->q[k]; break;
		}
	}
}

/* 0F 12/16 in all their shapes (MOVLPS, MOVHLPS, MOVDDUP, ...). */
static void
simd_sse_mov_lh(union simd_vec *d, const union simd_vec *s,
		const struct simd_op *op)
{
	bool lo = op->opcode == 0x12;

	switch (op->pfx) {
	case SIMD_PFX_F2:			/* movddup */
		d->q[0] = d->q[1] = s->q[0];
		return;
	case SIMD_PFX_F3:			/* movsldup / movshdup */
		for (int i = 0; i < 4; i += 2)
			d->d[i] = d->d[i + 1] = s->d[i + !lo];
		return;
	}
	if (lo)					/* movlps/movlpd or movhlps */
		d->q[0] = op->mod == 3 ? s->q[1] : s->q[0];
	else					/* movhps/movhpd or movlhps */
		d->q[1] = s->q[0];
}

static int
simd_sse_moves(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem,
	       const struct simd_mem *m)
{
	uint8_t *dr = simd_xmm(c, op->reg);
	union simd_vec d, s, r;

	memcpy(d.b, dr, 16);
	switch (op->opcode) {
	case 0x10:
		simd_sse_src(c, op, mem, m->size, &s);
		if (op->mod == 3 && m->size < 16)	/* merge, keep upper */
			memcpy(dr, s.b, m->size);
		else
			memcpy(dr, s.b, 16);
		return 0;
	case 0x11: case 0x13: case 0x17: case 0x29: case 0x2b: {
		const uint8_t *from = dr + (op->opcode == 0x17 ? 8 : 0);

		if (op->mod == 3)
			memcpy(simd_xmm(c, op->rm), from,
			       op->opcode == 0x11 ? m->size : 16);
		else
			memcpy(mem, from, m->size);
		return 0;
	}
	case 0x28:
		simd_sse_src(c, op, mem, 16, &s);
		memcpy(dr, s.b, 16);
		return 0;
	case 0x12:
	case 0x16:
		simd_sse_src(c, op, mem, m->size, &s);
		simd_sse_mov_lh(&d, &s, op);
		memcpy(dr, d.b, 16);
		return 0;
	case 0x50: {
		uint32_t mask = 0;

		memcpy(s.b, simd_xmm(c, op->rm), 16);
		for (int i = 0; i < 4; i++)
			if (op->pfx == SIMD_PFX_66)
				mask |= i < 2 ? (uint32_t)(s.q[i] >> 63) << i : 0;
			else
				mask |= (s.d[i] >> 31) << i;
		simd_gpr_set32(c, op->reg, mask);
		return 0;
	}
	}
	simd_sse_src(c, op, mem, 16, &s);
	simd_sse_shuf_unpck(&r, &d, &s, op);
	memcpy(dr, r.b, 16);
	return 0;
}

int
simd_sse_exec(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem)
{
	const struct simd_sse_arith *a;
	struct simd_mem m;
	int v;

	if (simd_sse_decode(op, &m) != 0)
		return SIMD_VEC_UD;
	if ((v = simd_check_sse(c)) != 0)
		return v;
	if ((a = simd_sse_arith_find(op->opcode, op->pfx)) != NULL)
		return simd_sse_arith_exec(c, op, mem, a);
	switch (op->opcode) {
	case 0x2a:
		if (op->pfx == SIMD_PFX_F3 || op->pfx == SIMD_PFX_F2)
			return simd_sse_cvtsi2f(c, op, mem);
		return simd_sse_cvt_mmx(c, op, mem);
	case 0x2c:
	case 0x2d:
		if (op->pfx == SIMD_PFX_F3 || op->pfx == SIMD_PFX_F2)
			return simd_sse_cvtf2si(c, op, mem);
		return simd_sse_cvt_mmx(c, op, mem);
	case 0x2e:
	case 0x2f:
		return simd_sse_comis(c, op, mem);
	}
	return simd_sse_moves(c, op, mem, &m);
}
