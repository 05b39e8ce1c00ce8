/*
 * SSSE3 (0F 38 00-0B, 1C-1E and 0F 3A 0F): the byte shuffle, horizontal
 * add/subtract, multiply-add, sign and absolute-value instructions, in
 * their MMX (no prefix) and XMM (66) forms.  Lane loops on 8 or 16 bytes.
 */
#include <stdlib.h>

#include "hv/bt/simd_impl.h"

static bool
simd_ssse3_known(const struct simd_op *op)
{
	if (op->pfx != SIMD_PFX_NONE && op->pfx != SIMD_PFX_66)
		return false;
	if (op->map == SIMD_MAP_0F3A)
		return op->opcode == 0x0f;
	return op->opcode <= 0x0b ||
	       (op->opcode >= 0x1c && op->opcode <= 0x1e);
}

int
simd_ssse3_decode(const struct simd_op *op, struct simd_mem *m)
{
	bool x = op->pfx == SIMD_PFX_66;

	if (!simd_ssse3_known(op))
		return -1;
	*m = (struct simd_mem){ x ? 16 : 8, x ? 16 : 0, true, false,
				op->map == SIMD_MAP_0F3A };
	return 0;
}

static int16_t
simd_ssse3_sat16(int v)
{
	return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}

/* PHADD/PHSUB (W, D, SW): pairs of d, then pairs of s. */
static void
simd_ssse3_hadd(union simd_vec *r, const union simd_vec *d,
		const union simd_vec *s, int n, uint8_t o)
{
	bool sub = o >= 5, sat = (o & 3) == 3, dw = (o & 3) == 2;
	int half = dw ? n / 8 : n / 4;

	for (int i = 0; i < half; i++) {
		for (int k = 0; k < 2; k++) {
			const union simd_vec *v = k ? s : d;

			if (dw) {
				r->d[k * half + i] = sub ? v->d[2 * i] - v->d[2 * i + 1]
						       : v->d[2 * i] + v->d[2 * i + 1];
			} else {
				int a = v->sw[2 * i], b = v->sw[2 * i + 1];
				int t = sub ? a - b : a + b;

				r->sw[k * half + i] = sat ? simd_ssse3_sat16(t)
							  : (int16_t)t;
			}
		}
	}
}

static void
simd_ssse3_op(union simd_vec *r, const union simd_vec *d,
	      const union simd_vec *s, int n, uint8_t o)
{
	switch (o) {
	case 0x00:				/* pshufb */
		for (int i = 0; i < n; i++)
			r->b[i] = (s->b[i] & 0x80) ? 0
				  : d->b[s->b[i] & (n - 1)];
		return;
	case 0x01: case 0x02: case 0x03: case 0x05: case 0x06: case 0x07:
		simd_ssse3_hadd(r, d, s, n, o);
		return;
	case 0x04:				/* pmaddubsw */
		for (int i = 0; i < n / 2; i++)
			r->sw[i] = simd_ssse3_sat16(
				d->b[2 * i] * s->sb[2 * i] +
				d->b[2 * i + 1] * s->sb[2 * i + 1]);
		return;
	case 0x0b:				/* pmulhrsw */
		for (int i = 0; i < n / 2; i++)
			r->sw[i] = (int16_t)(((((int32_t)d->sw[i] * s->sw[i]) >>
					       14) + 1) >> 1);
		return;
	}
	for (int i = 0; i < n; i++) {		/* psign, pabs */
		switch (o) {
		case 0x08:
			r->sb[i] = s->sb[i] < 0 ? -d->sb[i] : s->sb[i] ? d->sb[i]
								     : 0;
			break;
		case 0x1c: r->b[i] = abs(s->sb[i]); break;
		}
	}
	for (int i = 0; i < n / 2; i++) {
		switch (o) {
		case 0x09:
			r->sw[i] = s->sw[i] < 0 ? -d->sw[i] : s->sw[i] ? d->sw[i]
								     : 0;
			break;
		case 0x1d: r->w[i] = abs(s->sw[i]); break;
		}
	}
	for (int i = 0; i < n / 4; i++) {
		switch (o) {
		case 0x0a:
			r->d[i] = s->sd[i] < 0 ? -d->d[i] : s->sd[i] ? d->d[i] : 0;
			break;
		case 0x1e:
			r->d[i] = s->sd[i] < 0 ? -s->d[i] : s->d[i];
			break;
		}
	}
}

/* PALIGNR: the concatenation d:s shifted right by imm8 bytes. */
static void
simd_ssse3_palignr(union simd_vec *r, const union simd_vec *d,
		   const union simd_vec *s, int n, uint8_t imm)
{
	uint8_t cat[32] = { 0 };

	memcpy(cat, s->b, n);
	memcpy(cat + n, d->b, n);
	for (int i = 0; i < n; i++)
		r->b[i] = imm + i < 2 * n ? cat[imm + i] : 0;
}

int
simd_ssse3_exec(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem)
{
	bool x = op->pfx == SIMD_PFX_66;
	int n = x ? 16 : 8, v;
	union simd_vec d = { 0 }, s = { 0 }, r = { 0 };

	if (!simd_ssse3_known(op))
		return SIMD_VEC_UD;
	if ((v = x ? simd_check_sse(c) : simd_check_mmx(c)) != 0)
		return v;
	if (!x) {
		simd_mmx_enter(c);
		d.q[0] = simd_mm_get(c, op->reg);
		if (op->mod == 3)
			s.q[0] = simd_mm_get(c, op->rm);
	} else {
		memcpy(d.b, simd_xmm(c, op->reg), 16);
		if (op->mod == 3)
			memcpy(s.b, simd_xmm(c, op->rm), 16);
	}
	if (op->mod != 3)
		memcpy(s.b, mem, n);
	if (op->map == SIMD_MAP_0F3A)
		simd_ssse3_palignr(&r, &d, &s, n, op->imm8);
	else
		simd_ssse3_op(&r, &d, &s, n, op->opcode);
	if (x)
		memcpy(simd_xmm(c, op->reg), r.b, 16);
	else
		simd_mm_set(c, op->reg, r.q[0]);
	return 0;
}
