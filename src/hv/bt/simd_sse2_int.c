/*
 * SSE2 integer instructions and their MMX forms, plus the integer data
 * moves (MOVD/MOVQ/MOVDQA/MOVDQU/LDDQU, PINSRW/PEXTRW, PMOVMSKB, ...).
 * One lane loop per operation on a 8-byte (MMX, no prefix) or 16-byte
 * (XMM, 66 prefix) vector; no state but the registers, so every result
 * is computed first and written last.
 */
#include <stdlib.h>

#include "hv/bt/simd_impl.h"

/* The "op reg, reg/mem" family sharing operand shape and alignment. */
static bool
simd_sse2_int_is_binop(uint8_t o)
{
	return (o >= 0x60 && o <= 0x6d) || (o >= 0x74 && o <= 0x76) ||
	       (o >= 0xd1 && o <= 0xd5) || (o >= 0xd8 && o <= 0xdf) ||
	       (o >= 0xe0 && o <= 0xe5) || (o >= 0xe8 && o <= 0xef) ||
	       (o >= 0xf1 && o <= 0xf6) || (o >= 0xf8 && o <= 0xfe);
}

static bool
simd_sse2_int_shimm_ok(const struct simd_op *op)
{
	unsigned r = op->reg & 7;

	if (op->mod != 3)
		return false;
	if (op->opcode == 0x73)
		return r == 2 || r == 6 ||
		       ((r == 3 || r == 7) && op->pfx == SIMD_PFX_66);
	return r == 2 || r == 4 || r == 6;
}

int
simd_sse2_int_decode(const struct simd_op *op, struct simd_mem *m)
{
	bool x = op->pfx == SIMD_PFX_66, mmx = op->pfx == SIMD_PFX_NONE;
	uint16_t vs = x ? 16 : 8;
	uint8_t al = x ? 16 : 0, o = op->opcode, q = op->rex_w ? 8 : 4;

	if (simd_sse2_int_is_binop(o)) {
		if (!(x || mmx) || ((o == 0x6c || o == 0x6d) && !x))
			return -1;
		*m = (struct simd_mem){ vs, al, true, false, false };
		return 0;
	}
	switch (o) {
	case 0x6e:
		if (!(x || mmx))
			return -1;
		*m = (struct simd_mem){ q, 0, true, false, false };
		return 0;
	case 0x7e:
		if (op->pfx == SIMD_PFX_F3)
			*m = (struct simd_mem){ 8, 0, true, false, false };
		else if (x || mmx)
			*m = (struct simd_mem){ q, 0, false, true, false };
		else
			return -1;
		return 0;
	case 0x6f:
	case 0x7f:
		if (op->pfx == SIMD_PFX_F2)
			return -1;
		*m = (struct simd_mem){ op->pfx == SIMD_PFX_F3 ? 16 : vs, al,
					o == 0x6f, o == 0x7f, false };
		return 0;
	case 0x70:
		*m = (struct simd_mem){ mmx ? 8 : 16, mmx ? 0 : 16, true,
					false, true };
		return 0;
	case 0x71:
	case 0x72:
	case 0x73:
		if (!(x || mmx) || !simd_sse2_int_shimm_ok(op))
			return -1;
		m->has_imm8 = true;
		return 0;
	case 0xc4:
		if (!(x || mmx))
			return -1;
		*m = (struct simd_mem){ 2, 0, true, false, true };
		return 0;
	case 0xc5:
	case 0xd7:
		if (!(x || mmx) || op->mod != 3)
			return -1;
		m->has_imm8 = o == 0xc5;
		return 0;
	case 0xd6:
		if (x) {
			*m = (struct simd_mem){ 8, 0, false, true, false };
			return 0;
		}
		return (mmx || op->mod != 3) ? -1 : 0;
	case 0xe7:
		if (!(x || mmx) || op->mod == 3)
			return -1;
		*m = (struct simd_mem){ vs, al, false, true, false };
		return 0;
	case 0xf0:
		if (op->pfx != SIMD_PFX_F2 || op->mod == 3)
			return -1;
		*m = (struct simd_mem){ 16, 0, true, false, false };
		return 0;
	}
	return -1;
}

static void
simd_sse2_int_get(struct simd_ctx *c, bool x, unsigned i, union simd_vec *v)
{
	if (x) {
		memcpy(v->b, simd_xmm(c, i), 16);
	} else {
		v->q[0] = simd_mm_get(c, i);
		v->q[1] = 0;
	}
}

static void
simd_sse2_int_set(struct simd_ctx *c, bool x, unsigned i,
		  const union simd_vec *v)
{
	if (x)
		memcpy(simd_xmm(c, i), v->b, 16);
	else
		simd_mm_set(c, i, v->q[0]);
}

static int8_t
simd_sat8(int v)
{
	return v > 127 ? 127 : v < -128 ? -128 : v;
}

static uint8_t
simd_satu8(int v)
{
	return v > 255 ? 255 : v < 0 ? 0 : v;
}

static int16_t
simd_sat16(int v)
{
	return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}

static uint16_t
simd_satu16(int v)
{
	return v > 65535 ? 65535 : v < 0 ? 0 : v;
}

/* Interleave the low (hi=0) or high halves of d and s, esize-byte lanes. */
static void
simd_sse2_int_unpack(union simd_vec *r, const union simd_vec *d,
		     const union simd_vec *s, int n, int esize, bool hi)
{
	int lanes = n / esize, base = hi ? lanes / 2 : 0;

	for (int i = 0; i < lanes / 2; i++) {
		memcpy(r->b + 2 * i * esize, d->b + (base + i) * esize, esize);
		memcpy(r->b + (2 * i + 1) * esize, s->b + (base + i) * esize,
		       esize);
	}
}

static void
simd_sse2_int_pack(union simd_vec *r, const union simd_vec *d,
		   const union simd_vec *s, int n, uint8_t o)
{
	if (o == 0x6b) {		/* packssdw */
		for (int i = 0; i < n / 4; i++) {
			r->sw[i] = simd_sat16(d->sd[i]);
			r->sw[n / 4 + i] = simd_sat16(s->sd[i]);
		}
		return;
	}
	for (int i = 0; i < n / 2; i++) {	/* packsswb, packuswb */
		if (o == 0x63) {
			r->sb[i] = simd_sat8(d->sw[i]);
			r->sb[n / 2 + i] = simd_sat8(s->sw[i]);
		} else {
			r->b[i] = simd_satu8(d->sw[i]);
			r->b[n / 2 + i] = simd_satu8(s->sw[i]);
		}
	}
}

/*
 * Shifts by a count (from a register, memory or imm8): kind 0 logical
 * right, 1 arithmetic right, 2 left; esize 2, 4 or 8.  Counts beyond the
 * lane width give zero (or the sign) instead of C's undefined behaviour.
 */
static void
simd_sse2_int_shift(union simd_vec *r, int n, int esize, int kind,
		    uint64_t cnt)
{
	int bits = esize * 8;

	for (int i = 0; i < n / esize; i++) {
		uint64_t v = 0;
		int64_t sv;

		memcpy(&v, r->b + i * esize, esize);
		sv = (int64_t)(v << (64 - bits)) >> (64 - bits);
		if (kind == 1)
			v = sv >> (cnt >= (uint64_t)bits ? bits - 1 : (int)cnt);
		else if (cnt >= (uint64_t)bits)
			v = 0;
		else
			v = kind == 0 ? v >> cnt : v << cnt;
		memcpy(r->b + i * esize, &v, esize);
	}
}

/* PSRLDQ/PSLLDQ: whole-register byte shifts. */
static void
simd_sse2_int_bshift(union simd_vec *r, unsigned cnt, bool left)
{
	union simd_vec t = { 0 };

	if (cnt > 16)
		cnt = 16;
	if (left)
		memcpy(t.b + cnt, r->b, 16 - cnt);
	else
		memcpy(t.b, r->b + cnt, 16 - cnt);
	*r = t;
}

static void
simd_sse2_int_arith(union simd_vec *r, const union simd_vec *s, int n,
		    uint8_t o)
{
	for (int i = 0; i < n; i++) {
		switch (o) {
		case 0xd8: r->b[i] = simd_satu8(r->b[i] - s->b[i]); break;
		case 0xdc: r->b[i] = simd_satu8(r->b[i] + s->b[i]); break;
		case 0xe8: r->sb[i] = simd_sat8(r->sb[i] - s->sb[i]); break;
		case 0xec: r->sb[i] = simd_sat8(r->sb[i] + s->sb[i]); break;
		case 0xf8: r->b[i] -= s->b[i]; break;
		case 0xfc: r->b[i] += s->b[i]; break;
		case 0xda: r->b[i] = r->b[i] < s->b[i] ? r->b[i] : s->b[i];
			break;
		case 0xde: r->b[i] = r->b[i] > s->b[i] ? r->b[i] : s->b[i];
			break;
		case 0xe0: r->b[i] = (r->b[i] + s->b[i] + 1) >> 1; break;
		case 0x64: r->b[i] = r->sb[i] > s->sb[i] ? 0xff : 0; break;
		case 0x74: r->b[i] = r->b[i] == s->b[i] ? 0xff : 0; break;
		case 0xdb: r->b[i] &= s->b[i]; break;
		case 0xdf: r->b[i] = ~r->b[i] & s->b[i]; break;
		case 0xeb: r->b[i] |= s->b[i]; break;
		case 0xef: r->b[i] ^= s->b[i]; break;
		}
	}
	for (int i = 0; i < n / 2; i++) {
		int a = r->sw[i], b = s->sw[i];
		unsigned ua = r->w[i], ub = s->w[i];

		switch (o) {
		case 0xd9: r->w[i] = simd_satu16(ua - ub); break;
		case 0xdd: r->w[i] = simd_satu16(ua + ub); break;
		case 0xe9: r->sw[i] = simd_sat16(a - b); break;
		case 0xed: r->sw[i] = simd_sat16(a + b); break;
		case 0xf9: r->w[i] = ua - ub; break;
		case 0xfd: r->w[i] = ua + ub; break;
		case 0xd5: r->w[i] = (uint16_t)(a * b); break;
		case 0xe5: r->w[i] = (uint32_t)(a * b) >> 16; break;
		case 0xe4: r->w[i] = (ua * ub) >> 16; break;
		case 0xea: r->sw[i] = a < b ? a : b; break;
		case 0xee: r->sw[i] = a > b ? a : b; break;
		case 0xe3: r->w[i] = (ua + ub + 1) >> 1; break;
		case 0x65: r->w[i] = a > b ? 0xffff : 0; break;
		case 0x75: r->w[i] = ua == ub ? 0xffff : 0; break;
		}
	}
	for (int i = 0; i < n / 4; i++) {
		switch (o) {
		case 0xfa: r->d[i] -= s->d[i]; break;
		case 0xfe: r->d[i] += s->d[i]; break;
		case 0x66: r->d[i] = r->sd[i] > s->sd[i] ? ~0u : 0; break;
		case 0x76: r->d[i] = r->d[i] == s->d[i] ? ~0u : 0; break;
		case 0xf5:
			r->sd[i] = (int32_t)((uint32_t)(r->sw[2 * i] *
				   s->sw[2 * i]) + (uint32_t)(r->sw[2 * i + 1] *
				   s->sw[2 * i + 1]));
			break;
		}
	}
	for (int i = 0; i < n / 8; i++) {
		switch (o) {
		case 0xd4: r->q[i] += s->q[i]; break;
		case 0xfb: r->q[i] -= s->q[i]; break;
		case 0xf4:
			r->q[i] = (uint64_t)r->d[2 * i] * s->d[2 * i];
			break;
		case 0xf6: {
			unsigned sum = 0;

			for (int j = 0; j < 8; j++)
				sum += abs(r->b[8 * i + j] - s->b[8 * i + j]);
			r->q[i] = sum;
			break;
		}
		}
	}
}

typedef uint8_t simd_vu8 __attribute__((vector_size(16)));
typedef int8_t simd_vs8 __attribute__((vector_size(16)));
typedef uint16_t simd_vu16 __attribute__((vector_size(16)));
typedef int16_t simd_vs16 __attribute__((vector_size(16)));
typedef uint32_t simd_vu32 __attribute__((vector_size(16)));
typedef int32_t simd_vs32 __attribute__((vector_size(16)));
typedef uint64_t simd_vu64 __attribute__((vector_size(16)));

#define SIMD_V(type, expr)						\
	do {								\
		type a_, b_, r_;					\
									\
		memcpy(&a_, r->b, 16);					\
		memcpy(&b_, s->b, 16);					\
		r_ = (type)(expr);					\
		memcpy(r->b, &r_, 16);					\
	} while (0)

/*
 * The operations glibc's string functions run in their inner loops, as
 * whole-vector expressions (the compiler emits one host instruction for
 * most); an MMX operand just has a zero upper half.  false: not here.
 */
static bool
simd_sse2_int_fast(union simd_vec *r, const union simd_vec *s, uint8_t o)
{
	switch (o) {
	case 0x74: SIMD_V(simd_vu8, a_ == b_); return true;
	case 0x75: SIMD_V(simd_vu16, a_ == b_); return true;
	case 0x76: SIMD_V(simd_vu32, a_ == b_); return true;
	case 0x64: SIMD_V(simd_vs8, a_ > b_); return true;
	case 0x65: SIMD_V(simd_vs16, a_ > b_); return true;
	case 0x66: SIMD_V(simd_vs32, a_ > b_); return true;
	case 0xdb: SIMD_V(simd_vu64, a_ & b_); return true;
	case 0xdf: SIMD_V(simd_vu64, ~a_ & b_); return true;
	case 0xeb: SIMD_V(simd_vu64, a_ | b_); return true;
	case 0xef: SIMD_V(simd_vu64, a_ ^ b_); return true;
	case 0xfc: SIMD_V(simd_vu8, a_ + b_); return true;
	case 0xfd: SIMD_V(simd_vu16, a_ + b_); return true;
	case 0xfe: SIMD_V(simd_vu32, a_ + b_); return true;
	case 0xd4: SIMD_V(simd_vu64, a_ + b_); return true;
	case 0xf8: SIMD_V(simd_vu8, a_ - b_); return true;
	case 0xf9: SIMD_V(simd_vu16, a_ - b_); return true;
	case 0xfa: SIMD_V(simd_vu32, a_ - b_); return true;
	case 0xfb: SIMD_V(simd_vu64, a_ - b_); return true;
	case 0xda:
		SIMD_V(simd_vu8, (a_ & (simd_vu8)(a_ < b_)) |
				 (b_ & ~(simd_vu8)(a_ < b_)));
		return true;
	case 0xde:
		SIMD_V(simd_vu8, (a_ & (simd_vu8)(a_ > b_)) |
				 (b_ & ~(simd_vu8)(a_ > b_)));
		return true;
	case 0xea:
		SIMD_V(simd_vs16, (a_ & (a_ < b_)) | (b_ & ~(a_ < b_)));
		return true;
	case 0xee:
		SIMD_V(simd_vs16, (a_ & (a_ > b_)) | (b_ & ~(a_ > b_)));
		return true;
	}
	return false;
}

/* Every "op reg, reg/mem" of the family: r = d op s on n bytes. */
static void
simd_sse2_int_binop(union simd_vec *r, const union simd_vec *s, int n,
		    uint8_t o)
{
	union simd_vec d = *r;

	switch (o) {
	case 0x60: simd_sse2_int_unpack(r, &d, s, n, 1, false); return;
	case 0x61: simd_sse2_int_unpack(r, &d, s, n, 2, false); return;
	case 0x62: simd_sse2_int_unpack(r, &d, s, n, 4, false); return;
	case 0x6c: simd_sse2_int_unpack(r, &d, s, n, 8, false); return;
	case 0x68: simd_sse2_int_unpack(r, &d, s, n, 1, true); return;
	case 0x69: simd_sse2_int_unpack(r, &d, s, n, 2, true); return;
	case 0x6a: simd_sse2_int_unpack(r, &d, s, n, 4, true); return;
	case 0x6d: simd_sse2_int_unpack(r, &d, s, n, 8, true); return;
	case 0x63: case 0x67: case 0x6b:
		simd_sse2_int_pack(r, &d, s, n, o);
		return;
	case 0xd1: simd_sse2_int_shift(r, n, 2, 0, s->q[0]); return;
	case 0xd2: simd_sse2_int_shift(r, n, 4, 0, s->q[0]); return;
	case 0xd3: simd_sse2_int_shift(r, n, 8, 0, s->q[0]); return;
	case 0xe1: simd_sse2_int_shift(r, n, 2, 1, s->q[0]); return;
	case 0xe2: simd_sse2_int_shift(r, n, 4, 1, s->q[0]); return;
	case 0xf1: simd_sse2_int_shift(r, n, 2, 2, s->q[0]); return;
	case 0xf2: simd_sse2_int_shift(r, n, 4, 2, s->q[0]); return;
	case 0xf3: simd_sse2_int_shift(r, n, 8, 2, s->q[0]); return;
	}
	if (!simd_sse2_int_fast(r, s, o))
		simd_sse2_int_arith(r, s, n, o);
}

/* 0F 71-73: shift a register by imm8. */
static void
simd_sse2_int_shimm(union simd_vec *r, int n, uint8_t o, unsigned reg,
		    uint8_t imm)
{
	int esize = o == 0x71 ? 2 : o == 0x72 ? 4 : 8;

	switch (reg & 7) {
	case 2: simd_sse2_int_shift(r, n, esize, 0, imm); break;
	case 4: simd_sse2_int_shift(r, n, esize, 1, imm); break;
	case 6: simd_sse2_int_shift(r, n, esize, 2, imm); break;
	case 3: simd_sse2_int_bshift(r, imm, false); break;
	case 7: simd_sse2_int_bshift(r, imm, true); break;
	}
}

/* PSHUFW/PSHUFD/PSHUFHW/PSHUFLW. */
static void
simd_sse2_int_pshuf(union simd_vec *r, const union simd_vec *s, uint8_t pfx,
		    uint8_t imm)
{
	*r = *s;
	for (int i = 0; i < 4; i++) {
		int sel = (imm >> (2 * i)) & 3;

		switch (pfx) {
		case SIMD_PFX_NONE: r->w[i] = s->w[sel]; break;
		case SIMD_PFX_66: r->d[i] = s->d[sel]; break;
		case SIMD_PFX_F2: r->w[i] = s->w[sel]; break;
		case SIMD_PFX_F3: r->w[4 + i] = s->w[4 + sel]; break;
		}
	}
}

/* MOVD/MOVQ between general registers or memory and MMX/XMM. */
static void
simd_sse2_int_movd(struct simd_ctx *c, const struct simd_op *op, bool x,
		   uint8_t *mem)
{
	int len = op->rex_w ? 8 : 4;
	union simd_vec v = { 0 };
	uint64_t g;

	if (op->opcode == 0x6e) {
		if (op->mod == 3)
			g = c->gpr[op->rm & 15];
		else
			g = simd_ld64(mem);
		memcpy(v.b, &g, len);
		simd_sse2_int_set(c, x, op->reg, &v);
		return;
	}
	simd_sse2_int_get(c, x, op->reg, &v);
	if (op->mod == 3)
		c->gpr[op->rm & 15] = len == 8 ? v.q[0] : v.d[0];
	else
		memcpy(mem, v.b, len);
}

static uint32_t
simd_sse2_int_movmsk(const union simd_vec *v, int n)
{
	uint32_t r = 0;

	for (int i = 0; i < n; i++)
		r |= (uint32_t)(v->b[i] >> 7) << i;
	return r;
}

/* The moves and odd shapes outside the binop family. */
static int
simd_sse2_int_misc(struct simd_ctx *c, const struct simd_op *op, bool x,
		   uint8_t *mem)
{
	int n = x ? 16 : 8;
	union simd_vec s = { 0 }, r = { 0 };

	switch (op->opcode) {
	case 0x6e:
	case 0x7e:
		if (op->pfx == SIMD_PFX_F3) {	/* movq xmm, xmm/m64 */
			if (op->mod == 3)
				r.q[0] = simd_ld64(simd_xmm(c, op->rm));
			else
				r.q[0] = simd_ld64(mem);
			simd_sse2_int_set(c, true, op->reg, &r);
		} else {
			simd_sse2_int_movd(c, op, x, mem);
		}
		return 0;
	case 0x6f:
		if (op->mod == 3)
			simd_sse2_int_get(c, x, op->rm, &r);
		else
			memcpy(r.b, mem, n);
		simd_sse2_int_set(c, x, op->reg, &r);
		return 0;
	case 0x7f:
	case 0xe7:
		simd_sse2_int_get(c, x, op->reg, &r);
		if (op->mod == 3)
			simd_sse2_int_set(c, x, op->rm, &r);
		else
			memcpy(mem, r.b, n);
		return 0;
	case 0xf0:				/* lddqu */
		memcpy(r.b, mem, 16);
		simd_sse2_int_set(c, true, op->reg, &r);
		return 0;
	case 0x70:
		if (op->mod == 3)
			simd_sse2_int_get(c, x, op->rm, &s);
		else
			memcpy(s.b, mem, n);
		simd_sse2_int_pshuf(&r, &s, op->pfx, op->imm8);
		simd_sse2_int_set(c, x, op->reg, &r);
		return 0;
	case 0x71:
	case 0x72:
	case 0x73:
		simd_sse2_int_get(c, x, op->rm, &r);
		simd_sse2_int_shimm(&r, n, op->opcode, op->reg, op->imm8);
		simd_sse2_int_set(c, x, op->rm, &r);
		return 0;
	case 0xc4: {
		uint16_t w = op->mod == 3 ? (uint16_t)c->gpr[op->rm & 15]
					  : simd_ld16(mem);

		simd_sse2_int_get(c, x, op->reg, &r);
		r.w[op->imm8 & (x ? 7 : 3)] = w;
		simd_sse2_int_set(c, x, op->reg, &r);
		return 0;
	}
	case 0xc5:
		simd_sse2_int_get(c, x, op->rm, &s);
		simd_gpr_set32(c, op->reg, s.w[op->imm8 & (x ? 7 : 3)]);
		return 0;
	case 0xd7:
		simd_sse2_int_get(c, x, op->rm, &s);
		simd_gpr_set32(c, op->reg, simd_sse2_int_movmsk(&s, n));
		return 0;
	}
	return SIMD_VEC_UD;
}

/* 0F D6: MOVQ xmm/m64, xmm; MOVQ2DQ; MOVDQ2Q. */
static int
simd_sse2_int_d6(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem)
{
	union simd_vec r = { 0 };

	switch (op->pfx) {
	case SIMD_PFX_66:
		r.q[0] = simd_ld64(simd_xmm(c, op->reg));
		if (op->mod == 3)
			memcpy(simd_xmm(c, op->rm), r.b, 16);
		else
			simd_st64(mem, r.q[0]);
		return 0;
	case SIMD_PFX_F3:			/* movq2dq xmm, mm */
		simd_mmx_enter(c);
		r.q[0] = simd_mm_get(c, op->rm);
		memcpy(simd_xmm(c, op->reg), r.b, 16);
		return 0;
	case SIMD_PFX_F2:			/* movdq2q mm, xmm */
		simd_mmx_enter(c);
		simd_mm_set(c, op->reg, simd_ld64(simd_xmm(c, op->rm)));
		return 0;
	}
	return SIMD_VEC_UD;
}

int
simd_sse2_int_exec(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem)
{
	/* F3 0F 7E and the lddqu/pshufhw/pshuflw forms are XMM too. */
	bool x = op->pfx != SIMD_PFX_NONE;
	int v;

	if (x && (v = simd_check_sse(c)) != 0)
		return v;
	if (!x || (op->opcode == 0xd6 && op->pfx != SIMD_PFX_66)) {
		if ((v = simd_check_mmx(c)) != 0)
			return v;
		if (op->opcode != 0xd6)
			simd_mmx_enter(c);
	}
	if (op->opcode == 0xd6)
		return simd_sse2_int_d6(c, op, mem);
	if (simd_sse2_int_is_binop(op->opcode)) {
		union simd_vec r, s = { 0 };

		simd_sse2_int_get(c, x, op->reg, &r);
		if (op->mod == 3)
			simd_sse2_int_get(c, x, op->rm, &s);
		else
			memcpy(s.b, mem, x ? 16 : 8);
		simd_sse2_int_binop(&r, &s, x ? 16 : 8, op->opcode);
		simd_sse2_int_set(c, x, op->reg, &r);
		return 0;
	}
	return simd_sse2_int_misc(c, op, x, mem);
}
