/*
 * Specialized handlers for the SSE/SSE2 instructions glibc's string and
 * memory functions and compiler-generated struct copies run most: XMM
 * moves, the 66-prefixed integer operations, PMOVMSKB, PSHUFD, MOVD/MOVQ
 * and the immediate shifts.  The generic path (bt_x_simd -> simd_exec)
 * re-decodes the operation, builds a context and copies the operand
 * through a 512-byte buffer on every execution; these do the operation
 * straight on the FXSAVE image with the host's own SSE2.
 *
 * Each handler covers only its common case and otherwise hands the
 * instruction to bt_x_simd before changing anything: SSE disabled or
 * trapping (CR0.EM/TS, CR4.OSFXSR), a misaligned operand that must raise
 * #GP, a store whose page has no write tag in the soft TLB (MMIO, a code
 * page, the dirty log, a page crossing).  So faults, their priority and
 * the state they leave stay exactly the generic path's, which
 * tests/unit/test_bt_sse.c checks instruction by instruction.
 */
#include "hv/bt/bt_internal.h"

#include <emmintrin.h>

#define SSE_XMM(c, r) ((c)->fpu.fxsave + 160 + 16 * ((r) & 15))

static inline bool
sse_ok(const struct bt_cpu *c)
{
	return !(c->cr0 & (CR0_EM | CR0_TS)) && (c->cr4 & CR4_OSFXSR);
}

static inline __m128i
sse_get(struct bt_cpu *c, unsigned r)
{
	return _mm_loadu_si128((const __m128i *)SSE_XMM(c, r));
}

static inline void
sse_put(struct bt_cpu *c, unsigned r, __m128i v)
{
	_mm_storeu_si128((__m128i *)SSE_XMM(c, r), v);
}

/* 16 bytes at lin; faults (precisely) through bt_read when the soft TLB
 * cannot serve them in one piece. */
static inline __m128i
sse_load16(struct bt_cpu *c, uint64_t lin)
{
	struct bt_tlb *e = &c->tlbc[(lin >> 12) & (BT_TLB_SIZE - 1)];
	uint64_t lo, hi;

	if (likely(e->tag_r == (lin & ~0xfffull) && (lin & 0xfff) <= 0xff0))
		return _mm_loadu_si128((const __m128i *)(lin + e->addend));
	lo = bt_read(c, lin, 8);
	hi = bt_read(c, (lin + 8) & c->linmask, 8);
	return _mm_set_epi64x((long long)hi, (long long)lo);
}

/* Host address for a 16-byte store at lin, or NULL (generic path). */
static inline void *
sse_wptr16(struct bt_cpu *c, uint64_t lin)
{
	struct bt_tlb *e = &c->tlbc[(lin >> 12) & (BT_TLB_SIZE - 1)];

	if (likely(e->tag_w == (lin & ~0xfffull) && (lin & 0xfff) <= 0xff0))
		return (void *)(lin + e->addend);
	return NULL;
}

/* The source operand (XMM register or 16 bytes of memory) into *v;
 * false when the generic path ran instead. */
static inline __attribute__((always_inline)) bool
sse_src(struct bt_cpu *c, const struct bt_insn *i, __m128i *v)
{
	uint64_t lin;

	if (unlikely(!sse_ok(c)))
		goto generic;
	if (i->mod == 3) {
		*v = sse_get(c, i->rm);
		return true;
	}
	lin = bt_ea_lin(c, i);
	if (unlikely(i->smem.align && (lin & (i->smem.align - 1u))))
		goto generic;
	*v = sse_load16(c, lin);
	return true;
generic:
	bt_x_simd(c, i);
	return false;
}

#define SSE_BINOP(name, expr)						\
static void								\
sse_x_##name(struct bt_cpu *c, const struct bt_insn *i)		\
{									\
	__m128i a, b;							\
									\
	if (!sse_src(c, i, &b))						\
		return;							\
	a = sse_get(c, i->reg);						\
	sse_put(c, i->reg, (expr));					\
}

SSE_BINOP(punpcklbw, _mm_unpacklo_epi8(a, b))
SSE_BINOP(punpcklwd, _mm_unpacklo_epi16(a, b))
SSE_BINOP(punpckldq, _mm_unpacklo_epi32(a, b))
SSE_BINOP(punpcklqdq, _mm_unpacklo_epi64(a, b))
SSE_BINOP(punpckhbw, _mm_unpackhi_epi8(a, b))
SSE_BINOP(punpckhwd, _mm_unpackhi_epi16(a, b))
SSE_BINOP(punpckhdq, _mm_unpackhi_epi32(a, b))
SSE_BINOP(punpckhqdq, _mm_unpackhi_epi64(a, b))
SSE_BINOP(packsswb, _mm_packs_epi16(a, b))
SSE_BINOP(packuswb, _mm_packus_epi16(a, b))
SSE_BINOP(packssdw, _mm_packs_epi32(a, b))
SSE_BINOP(pcmpgtb, _mm_cmpgt_epi8(a, b))
SSE_BINOP(pcmpgtw, _mm_cmpgt_epi16(a, b))
SSE_BINOP(pcmpgtd, _mm_cmpgt_epi32(a, b))
SSE_BINOP(pcmpeqb, _mm_cmpeq_epi8(a, b))
SSE_BINOP(pcmpeqw, _mm_cmpeq_epi16(a, b))
SSE_BINOP(pcmpeqd, _mm_cmpeq_epi32(a, b))
SSE_BINOP(paddq, _mm_add_epi64(a, b))
SSE_BINOP(pmullw, _mm_mullo_epi16(a, b))
SSE_BINOP(psubusb, _mm_subs_epu8(a, b))
SSE_BINOP(psubusw, _mm_subs_epu16(a, b))
SSE_BINOP(pminub, _mm_min_epu8(a, b))
SSE_BINOP(pand, _mm_and_si128(a, b))
SSE_BINOP(paddusb, _mm_adds_epu8(a, b))
SSE_BINOP(paddusw, _mm_adds_epu16(a, b))
SSE_BINOP(pmaxub, _mm_max_epu8(a, b))
SSE_BINOP(pandn, _mm_andnot_si128(a, b))
SSE_BINOP(pavgb, _mm_avg_epu8(a, b))
SSE_BINOP(pavgw, _mm_avg_epu16(a, b))
SSE_BINOP(pmulhuw, _mm_mulhi_epu16(a, b))
SSE_BINOP(pmulhw, _mm_mulhi_epi16(a, b))
SSE_BINOP(psubsb, _mm_subs_epi8(a, b))
SSE_BINOP(psubsw, _mm_subs_epi16(a, b))
SSE_BINOP(pminsw, _mm_min_epi16(a, b))
SSE_BINOP(por, _mm_or_si128(a, b))
SSE_BINOP(paddsb, _mm_adds_epi8(a, b))
SSE_BINOP(paddsw, _mm_adds_epi16(a, b))
SSE_BINOP(pmaxsw, _mm_max_epi16(a, b))
SSE_BINOP(pxor, _mm_xor_si128(a, b))
SSE_BINOP(pmuludq, _mm_mul_epu32(a, b))
SSE_BINOP(pmaddwd, _mm_madd_epi16(a, b))
SSE_BINOP(psadbw, _mm_sad_epu8(a, b))
SSE_BINOP(psubb, _mm_sub_epi8(a, b))
SSE_BINOP(psubw, _mm_sub_epi16(a, b))
SSE_BINOP(psubd, _mm_sub_epi32(a, b))
SSE_BINOP(psubq, _mm_sub_epi64(a, b))
SSE_BINOP(paddb, _mm_add_epi8(a, b))
SSE_BINOP(paddw, _mm_add_epi16(a, b))
SSE_BINOP(paddd, _mm_add_epi32(a, b))
#undef SSE_BINOP

/* PSHUFD: the immediate picks each dword of the source. */
static void
sse_x_pshufd_imm(struct bt_cpu *c, const struct bt_insn *i)
{
	uint32_t s[4], d[4];
	unsigned imm = i->sop.imm8;
	__m128i b;

	if (!sse_src(c, i, &b))
		return;
	_mm_storeu_si128((__m128i *)s, b);
	for (int k = 0; k < 4; k++)
		d[k] = s[(imm >> (2 * k)) & 3];
	sse_put(c, i->reg, _mm_loadu_si128((const __m128i *)d));
}

/* MOVAPS/MOVUPS/MOVDQA/MOVDQU/LDDQU xmm, xmm/m128 */
static void
sse_x_load(struct bt_cpu *c, const struct bt_insn *i)
{
	__m128i v;

	if (sse_src(c, i, &v))
		sse_put(c, i->reg, v);
}

/* MOVAPS/MOVUPS/MOVDQA/MOVDQU/MOVNT* xmm/m128, xmm */
static void
sse_x_store(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t lin;
	void *p;

	if (unlikely(!sse_ok(c)))
		goto generic;
	if (i->mod == 3) {
		sse_put(c, i->rm, sse_get(c, i->reg));
		return;
	}
	lin = bt_ea_lin(c, i);
	if (unlikely(i->smem.align && (lin & (i->smem.align - 1u))))
		goto generic;
	if (unlikely((p = sse_wptr16(c, lin)) == NULL))
		goto generic;
	_mm_storeu_si128((__m128i *)p, sse_get(c, i->reg));
	return;
generic:
	bt_x_simd(c, i);
}

/* PMOVMSKB r32, xmm */
static void
sse_x_pmovmskb(struct bt_cpu *c, const struct bt_insn *i)
{
	if (unlikely(!sse_ok(c))) {
		bt_x_simd(c, i);
		return;
	}
	c->gpr[i->reg & 15] = (uint32_t)_mm_movemask_epi8(sse_get(c, i->rm));
}

/* MOVD/MOVQ xmm, r/m32/64 (66 0F 6E) */
static void
sse_x_movd_to(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned len = i->sop.rex_w ? 8 : 4;
	uint64_t v;

	if (unlikely(!sse_ok(c))) {
		bt_x_simd(c, i);
		return;
	}
	if (i->mod == 3)
		v = c->gpr[i->rm & 15];
	else
		v = bt_read(c, bt_ea_lin(c, i), len);
	if (len == 4)
		v = (uint32_t)v;
	sse_put(c, i->reg, _mm_set_epi64x(0, (long long)v));
}

/* MOVD/MOVQ r/m32/64, xmm (66 0F 7E) */
static void
sse_x_movd_from(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned len = i->sop.rex_w ? 8 : 4;
	uint64_t v;

	if (unlikely(!sse_ok(c))) {
		bt_x_simd(c, i);
		return;
	}
	v = (uint64_t)_mm_cvtsi128_si64(sse_get(c, i->reg));
	if (len == 4)
		v = (uint32_t)v;
	if (i->mod == 3)
		c->gpr[i->rm & 15] = v;
	else
		bt_write(c, bt_ea_lin(c, i), len, v);
}

/* MOVQ xmm, xmm/m64 (F3 0F 7E): the upper half is cleared. */
static void
sse_x_movq_load(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t v;

	if (unlikely(!sse_ok(c))) {
		bt_x_simd(c, i);
		return;
	}
	if (i->mod == 3)
		v = (uint64_t)_mm_cvtsi128_si64(sse_get(c, i->rm));
	else
		v = bt_read(c, bt_ea_lin(c, i), 8);
	sse_put(c, i->reg, _mm_set_epi64x(0, (long long)v));
}

/* MOVQ xmm/m64, xmm (66 0F D6): a register destination's upper half is
 * cleared. */
static void
sse_x_movq_store(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t v;

	if (unlikely(!sse_ok(c))) {
		bt_x_simd(c, i);
		return;
	}
	v = (uint64_t)_mm_cvtsi128_si64(sse_get(c, i->reg));
	if (i->mod == 3)
		sse_put(c, i->rm, _mm_set_epi64x(0, (long long)v));
	else
		bt_write(c, bt_ea_lin(c, i), 8, v);
}

/* The immediate shifts 66 0F 71/72/73 (register form only). */
static void
sse_x_shimm(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned n = i->sop.imm8, op = (i->opc & 0xff) << 4 | (i->reg & 7);
	__m128i a, r;
	uint8_t b[32];

	if (unlikely(!sse_ok(c))) {
		bt_x_simd(c, i);
		return;
	}
	a = sse_get(c, i->rm);
	switch (op) {
	/* Counts past the element width clear it (arithmetic: fill it
	 * with the sign), as the hardware's own shift does. */
	case 0x712: r = _mm_srli_epi16(a, (int)(n > 16 ? 16 : n)); break;
	case 0x714: r = _mm_srai_epi16(a, (int)(n > 16 ? 16 : n)); break;
	case 0x716: r = _mm_slli_epi16(a, (int)(n > 16 ? 16 : n)); break;
	case 0x722: r = _mm_srli_epi32(a, (int)(n > 32 ? 32 : n)); break;
	case 0x724: r = _mm_srai_epi32(a, (int)(n > 32 ? 32 : n)); break;
	case 0x726: r = _mm_slli_epi32(a, (int)(n > 32 ? 32 : n)); break;
	case 0x732: r = _mm_srli_epi64(a, (int)(n > 64 ? 64 : n)); break;
	case 0x736: r = _mm_slli_epi64(a, (int)(n > 64 ? 64 : n)); break;
	case 0x733:	/* PSRLDQ: bytes toward byte 0 */
		memset(b, 0, sizeof(b));
		_mm_storeu_si128((__m128i *)b, a);
		r = _mm_loadu_si128((const __m128i *)(b + (n > 16 ? 16 : n)));
		break;
	case 0x737:	/* PSLLDQ */
		memset(b, 0, sizeof(b));
		_mm_storeu_si128((__m128i *)(b + 16), a);
		r = _mm_loadu_si128((const __m128i *)(b + 16 -
		    (n > 16 ? 16 : n)));
		break;
	default:
		bt_x_simd(c, i);
		return;
	}
	sse_put(c, i->rm, r);
}

static bt_fn *const sse_binop_tab[256] = {
	[0x60] = sse_x_punpcklbw, [0x61] = sse_x_punpcklwd,
	[0x62] = sse_x_punpckldq, [0x63] = sse_x_packsswb,
	[0x64] = sse_x_pcmpgtb, [0x65] = sse_x_pcmpgtw,
	[0x66] = sse_x_pcmpgtd, [0x67] = sse_x_packuswb,
	[0x68] = sse_x_punpckhbw, [0x69] = sse_x_punpckhwd,
	[0x6a] = sse_x_punpckhdq, [0x6b] = sse_x_packssdw,
	[0x6c] = sse_x_punpcklqdq, [0x6d] = sse_x_punpckhqdq,
	[0x74] = sse_x_pcmpeqb, [0x75] = sse_x_pcmpeqw,
	[0x76] = sse_x_pcmpeqd,
	[0xd4] = sse_x_paddq, [0xd5] = sse_x_pmullw,
	[0xd8] = sse_x_psubusb, [0xd9] = sse_x_psubusw,
	[0xda] = sse_x_pminub, [0xdb] = sse_x_pand,
	[0xdc] = sse_x_paddusb, [0xdd] = sse_x_paddusw,
	[0xde] = sse_x_pmaxub, [0xdf] = sse_x_pandn,
	[0xe0] = sse_x_pavgb, [0xe3] = sse_x_pavgw,
	[0xe4] = sse_x_pmulhuw, [0xe5] = sse_x_pmulhw,
	[0xe8] = sse_x_psubsb, [0xe9] = sse_x_psubsw,
	[0xea] = sse_x_pminsw, [0xeb] = sse_x_por,
	[0xec] = sse_x_paddsb, [0xed] = sse_x_paddsw,
	[0xee] = sse_x_pmaxsw, [0xef] = sse_x_pxor,
	[0xf4] = sse_x_pmuludq, [0xf5] = sse_x_pmaddwd,
	[0xf6] = sse_x_psadbw,
	[0xf8] = sse_x_psubb, [0xf9] = sse_x_psubw,
	[0xfa] = sse_x_psubd, [0xfb] = sse_x_psubq,
	[0xfc] = sse_x_paddb, [0xfd] = sse_x_paddw,
	[0xfe] = sse_x_paddd,
};

void
bt_sse_specialize(struct bt_insn *i)
{
	const struct simd_op *o = &i->sop;
	const struct simd_mem *m = &i->smem;
	bool reg = o->mod == 3, px = o->pfx == SIMD_PFX_NONE,
	    p66 = o->pfx == SIMD_PFX_66, pf3 = o->pfx == SIMD_PFX_F3;
	bool m16 = reg || m->size == 16;

	if (i->fn != bt_x_simd || o->map != SIMD_MAP_0F)
		return;
	switch (o->opcode) {
	case 0x10: case 0x28:			/* MOVUPS/MOVAPS(D) load */
		if ((px || p66) && m16)
			i->fn = sse_x_load;
		return;
	case 0x11: case 0x29:			/* MOVUPS/MOVAPS(D) store */
		if ((px || p66) && m16)
			i->fn = sse_x_store;
		return;
	case 0x2b:				/* MOVNTPS/PD */
		if ((px || p66) && !reg && m->size == 16)
			i->fn = sse_x_store;
		return;
	case 0x6f:				/* MOVDQA/MOVDQU load */
		if ((p66 || pf3) && m16)
			i->fn = sse_x_load;
		return;
	case 0x7f:				/* MOVDQA/MOVDQU store */
		if ((p66 || pf3) && m16)
			i->fn = sse_x_store;
		return;
	case 0xe7:				/* MOVNTDQ */
		if (p66 && !reg && m->size == 16)
			i->fn = sse_x_store;
		return;
	case 0xf0:				/* LDDQU */
		if (o->pfx == SIMD_PFX_F2 && !reg && m->size == 16)
			i->fn = sse_x_load;
		return;
	case 0x70:
		if (p66 && m16)
			i->fn = sse_x_pshufd_imm;
		return;
	case 0xd7:
		if (p66 && reg)
			i->fn = sse_x_pmovmskb;
		return;
	case 0x6e:
		if (p66)
			i->fn = sse_x_movd_to;
		return;
	case 0x7e:
		if (p66)
			i->fn = sse_x_movd_from;
		else if (pf3)
			i->fn = sse_x_movq_load;
		return;
	case 0xd6:
		if (p66)
			i->fn = sse_x_movq_store;
		return;
	case 0x71: case 0x72: case 0x73:
		if (p66 && reg)
			i->fn = sse_x_shimm;
		return;
	}
	if (p66 && m16 && sse_binop_tab[o->opcode] != NULL)
		i->fn = sse_binop_tab[o->opcode];
}
