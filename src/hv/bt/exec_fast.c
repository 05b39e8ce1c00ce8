/*
 * Specialized handlers for the instructions that dominate real code
 * (register and simple memory MOVs, 32/64-bit ALU on registers, Jcc),
 * chosen at decode time so the common case runs without the generic
 * handlers' size and form switches.  Each must behave exactly as the
 * generic handler it replaces; the differential test covers both.
 */
#include "hv/bt/bt_internal.h"

static void
fx_mov_rr64(struct bt_cpu *c, const struct bt_insn *i)
{
	c->gpr[i->opc == 0x89 ? i->rm : i->reg] =
	    c->gpr[i->opc == 0x89 ? i->reg : i->rm];
}

static void
fx_mov_rr32(struct bt_cpu *c, const struct bt_insn *i)
{
	c->gpr[i->opc == 0x89 ? i->rm : i->reg] =
	    (uint32_t)c->gpr[i->opc == 0x89 ? i->reg : i->rm];
}

static void
fx_load64(struct bt_cpu *c, const struct bt_insn *i)
{
	c->gpr[i->reg] = bt_read(c, bt_ea_lin(c, i), 8);
}

static void
fx_load32(struct bt_cpu *c, const struct bt_insn *i)
{
	c->gpr[i->reg] = bt_read(c, bt_ea_lin(c, i), 4);
}

static void
fx_store64(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_write(c, bt_ea_lin(c, i), 8, c->gpr[i->reg]);
}

static void
fx_store32(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_write(c, bt_ea_lin(c, i), 4, c->gpr[i->reg]);
}

static void
fx_movzx8_rr(struct bt_cpu *c, const struct bt_insn *i)
{
	c->gpr[i->reg] = *bt_breg(c, i, i->rm);
}

static void
fx_movzx8_load(struct bt_cpu *c, const struct bt_insn *i)
{
	c->gpr[i->reg] = bt_read(c, bt_ea_lin(c, i), 1);
}

static void
fx_movzx16_load(struct bt_cpu *c, const struct bt_insn *i)
{
	c->gpr[i->reg] = bt_read(c, bt_ea_lin(c, i), 2);
}

/* ALU Gv,Ev / Ev,Gv on two registers, 32 or 64 bits (no ADC/SBB). */
#define FX_ALU(name, sz, T, expr, kind, write)				\
static void								\
name(struct bt_cpu *c, const struct bt_insn *i)				\
{									\
	unsigned d = (i->opc & 2) ? i->reg : i->rm;			\
	unsigned s = (i->opc & 2) ? i->rm : i->reg;			\
	T a = (T)c->gpr[d], b = (T)c->gpr[s], r = (T)(expr);		\
									\
	bt_cc(c, kind, sz, r, a, b);					\
	if (write)							\
		c->gpr[d] = r;						\
}
FX_ALU(fx_add64, 8, uint64_t, a + b, CC_ADD, 1)
FX_ALU(fx_sub64, 8, uint64_t, a - b, CC_SUB, 1)
FX_ALU(fx_cmp64, 8, uint64_t, a - b, CC_SUB, 0)
FX_ALU(fx_and64, 8, uint64_t, a & b, CC_LOGIC, 1)
FX_ALU(fx_or64, 8, uint64_t, a | b, CC_LOGIC, 1)
FX_ALU(fx_xor64, 8, uint64_t, a ^ b, CC_LOGIC, 1)
FX_ALU(fx_add32, 4, uint32_t, a + b, CC_ADD, 1)
FX_ALU(fx_sub32, 4, uint32_t, a - b, CC_SUB, 1)
FX_ALU(fx_cmp32, 4, uint32_t, a - b, CC_SUB, 0)
FX_ALU(fx_and32, 4, uint32_t, a & b, CC_LOGIC, 1)
FX_ALU(fx_or32, 4, uint32_t, a | b, CC_LOGIC, 1)
FX_ALU(fx_xor32, 4, uint32_t, a ^ b, CC_LOGIC, 1)

static void
fx_test_rr64(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_cc(c, CC_LOGIC, 8, c->gpr[i->rm] & c->gpr[i->reg], 0, 0);
}

static void
fx_test_rr32(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_cc(c, CC_LOGIC, 4, (uint32_t)(c->gpr[i->rm] & c->gpr[i->reg]),
	    0, 0);
}

/* 83 /0 /5 /7 on a register: add/sub/cmp with imm8 */
#define FX_IMM(name, sz, T, expr, kind, write)				\
static void								\
name(struct bt_cpu *c, const struct bt_insn *i)				\
{									\
	T a = (T)c->gpr[i->rm], b = (T)i->imm, r = (T)(expr);		\
									\
	bt_cc(c, kind, sz, r, a, b);					\
	if (write)							\
		c->gpr[i->rm] = r;					\
}
FX_IMM(fx_addi64, 8, uint64_t, a + b, CC_ADD, 1)
FX_IMM(fx_subi64, 8, uint64_t, a - b, CC_SUB, 1)
FX_IMM(fx_cmpi64, 8, uint64_t, a - b, CC_SUB, 0)
FX_IMM(fx_andi64, 8, uint64_t, a & b, CC_LOGIC, 1)
FX_IMM(fx_addi32, 4, uint32_t, a + b, CC_ADD, 1)
FX_IMM(fx_subi32, 4, uint32_t, a - b, CC_SUB, 1)
FX_IMM(fx_cmpi32, 4, uint32_t, a - b, CC_SUB, 0)
FX_IMM(fx_andi32, 4, uint32_t, a & b, CC_LOGIC, 1)
FX_IMM(fx_ori64, 8, uint64_t, a | b, CC_LOGIC, 1)
FX_IMM(fx_xori64, 8, uint64_t, a ^ b, CC_LOGIC, 1)
FX_IMM(fx_testi64, 8, uint64_t, a & b, CC_LOGIC, 0)
FX_IMM(fx_ori32, 4, uint32_t, a | b, CC_LOGIC, 1)
FX_IMM(fx_xori32, 4, uint32_t, a ^ b, CC_LOGIC, 1)
FX_IMM(fx_testi32, 4, uint32_t, a & b, CC_LOGIC, 0)

/* NOT/NEG r (F7 /2 /3), TEST r8, imm8 (F6 /0) and 32-bit LEA. */
static void
fx_not(struct bt_cpu *c, const struct bt_insn *i)
{
	c->gpr[i->rm] = i->osz == 8 ? ~c->gpr[i->rm] :
	    (uint32_t)~c->gpr[i->rm];
}

static void
fx_neg64(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t a = c->gpr[i->rm];

	bt_cc(c, CC_SUB, 8, 0 - a, 0, a);
	c->gpr[i->rm] = 0 - a;
}

static void
fx_neg32(struct bt_cpu *c, const struct bt_insn *i)
{
	uint32_t a = (uint32_t)c->gpr[i->rm];

	bt_cc(c, CC_SUB, 4, (uint32_t)(0 - a), 0, a);
	c->gpr[i->rm] = (uint32_t)(0 - a);
}

static void
fx_testi8_r(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_cc(c, CC_LOGIC, 1, *bt_breg(c, i, i->rm) & (uint8_t)i->imm, 0, 0);
}

static void
fx_lea32(struct bt_cpu *c, const struct bt_insn *i)
{
	c->gpr[i->reg] = (uint32_t)bt_ea(c, i);
}

/* MOV r, imm32 (C7 /0 on a register; sign-extended in 64 bits) */
static void
fx_mov_ri(struct bt_cpu *c, const struct bt_insn *i)
{
	c->gpr[i->rm] = i->osz == 8 ? i->imm : (uint32_t)i->imm;
}

static void
fx_jcc64(struct bt_cpu *c, const struct bt_insn *i)
{
	if (bt_cond_fast(c, i->opc & 15))
		c->npc += i->imm;
}

static void
fx_lea64(struct bt_cpu *c, const struct bt_insn *i)
{
	c->gpr[i->reg] = bt_ea(c, i);
}

/* IMUL r, r/m (0F AF) and IMUL r, r/m, imm (69/6B), 32 and 64 bits */
static void
fx_imul64(struct bt_cpu *c, const struct bt_insn *i)
{
	int64_t a = (int64_t)(i->mod == 3 ? c->gpr[i->rm] :
	    bt_read(c, bt_ea_lin(c, i), 8));
	int64_t b = i->opc == 0x1af ? (int64_t)c->gpr[i->reg] : (int64_t)i->imm;
	__int128 p = (__int128)a * b;
	uint64_t lo = (uint64_t)p;

	c->gpr[i->reg] = lo;
	/* CF = OF = truncation; SF/ZF/PF undefined: take them from lo. */
	bt_cc(c, CC_LOGIC, 8, lo, 0, 0);
	if (p != (__int128)(int64_t)lo) {
		bt_flags_get(c);
		c->flags |= RFLAGS_CF | RFLAGS_OF;
	}
}

static void
fx_imul32(struct bt_cpu *c, const struct bt_insn *i)
{
	int64_t a = (int32_t)(i->mod == 3 ? c->gpr[i->rm] :
	    bt_read(c, bt_ea_lin(c, i), 4));
	int64_t b = i->opc == 0x1af ? (int32_t)c->gpr[i->reg] :
	    (int32_t)i->imm;
	int64_t p = a * b;

	c->gpr[i->reg] = (uint32_t)p;
	bt_cc(c, CC_LOGIC, 4, (uint32_t)p, 0, 0);
	if (p != (int64_t)(int32_t)p) {
		bt_flags_get(c);
		c->flags |= RFLAGS_CF | RFLAGS_OF;
	}
}

/* SHL/SHR/SAR r, imm8 or 1, 32 and 64 bits, count already known. */
#define FX_SHIFT(name, sz, T, kind, expr)				static void								name(struct bt_cpu *c, const struct bt_insn *i)				{										unsigned n = (unsigned)i->imm;						T a = (T)c->gpr[i->rm];							T r = (T)(expr);																c->gpr[i->rm] = r;							bt_cc(c, kind, sz, r, a, n);					}
FX_SHIFT(fx_shl64, 8, uint64_t, CC_SHL, a << n)
FX_SHIFT(fx_shr64, 8, uint64_t, CC_SHR, a >> n)
FX_SHIFT(fx_sar64, 8, uint64_t, CC_SAR, (uint64_t)((int64_t)a >> n))
FX_SHIFT(fx_shl32, 4, uint32_t, CC_SHL, a << n)
FX_SHIFT(fx_shr32, 4, uint32_t, CC_SHR, a >> n)
FX_SHIFT(fx_sar32, 4, uint32_t, CC_SAR, (uint32_t)((int32_t)a >> n))

/* PUSH/POP r64, CALL rel32, RET in 64-bit mode (stack is flat). */
static void
fx_push64(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t sp = c->gpr[R_RSP] - 8;

	bt_write(c, sp, 8, c->gpr[(i->opc & 7) | ((i->rex & 1) << 3)]);
	c->gpr[R_RSP] = sp;
}

static void
fx_pop64(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t v = bt_read(c, c->gpr[R_RSP], 8);

	c->gpr[R_RSP] += 8;
	c->gpr[(i->opc & 7) | ((i->rex & 1) << 3)] = v;
}

static void
fx_call64(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t sp = c->gpr[R_RSP] - 8;

	bt_write(c, sp, 8, c->npc);
	c->gpr[R_RSP] = sp;
	c->npc += i->imm;
}

/* JMP r/m64 and CALL r/m64 (FF /4, /2): busybox's shell dispatches
 * through tables of function pointers. */
static void
fx_jmp_ind64(struct bt_cpu *c, const struct bt_insn *i)
{
	c->npc = i->mod == 3 ? c->gpr[i->rm] :
	    bt_read(c, bt_ea_lin(c, i), 8);
}

static void
fx_call_ind64(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t t = i->mod == 3 ? c->gpr[i->rm] :
	    bt_read(c, bt_ea_lin(c, i), 8);
	uint64_t sp = c->gpr[R_RSP] - 8;

	bt_write(c, sp, 8, c->npc);
	c->gpr[R_RSP] = sp;
	c->npc = t;
}

static void
fx_ret64(struct bt_cpu *c, const struct bt_insn *i)
{
	c->npc = bt_read(c, c->gpr[R_RSP], 8);
	c->gpr[R_RSP] += 8;
}

/* bt_cf() without the call for the kinds that need no arithmetic (a
 * loop's INC after INC, or after TEST). */
static inline bool
fx_cf(struct bt_cpu *c)
{
	switch (c->cc_op >> 2) {
	case CC_LOGIC:
		return false;
	case CC_EAGER: case CC_INC: case CC_DEC:
		return c->flags & RFLAGS_CF;
	}
	return bt_cf(c);
}

/* INC/DEC r32/r64 (FF /0 /1): CF is kept, so it is carried over. */
#define FX_INCDEC(name, sz, T, d, kind)					\
static void								\
name(struct bt_cpu *c, const struct bt_insn *i)				\
{									\
	T a = (T)c->gpr[i->rm], r = (T)(a + (d));			\
									\
	c->flags = (c->flags & ~RFLAGS_CF) | (fx_cf(c) ? RFLAGS_CF : 0);\
	c->gpr[i->rm] = r;						\
	bt_cc(c, kind, sz, r, a, 1);					\
}
FX_INCDEC(fx_inc64, 8, uint64_t, 1, CC_INC)
FX_INCDEC(fx_dec64, 8, uint64_t, -1, CC_DEC)
FX_INCDEC(fx_inc32, 4, uint32_t, 1, CC_INC)
FX_INCDEC(fx_dec32, 4, uint32_t, -1, CC_DEC)

/* ADC/SBB r, r (11 13 19 1B) and r, imm (81/83 /2 /3), 32 and 64 bits:
 * checksum loops chain ADCs on registers. */
#define FX_ADC(name, sz, T, is_sub, is_imm)					\
static void								\
name(struct bt_cpu *c, const struct bt_insn *i)				\
{									\
	unsigned d = (is_imm || !(i->opc & 2)) ? i->rm : i->reg;		\
	T a = (T)c->gpr[d];						\
	T b = is_imm ? (T)i->imm : (T)c->gpr[(i->opc & 2) ? i->rm : i->reg];\
	T r = is_sub ? (T)(a - b - fx_cf(c)) : (T)(a + b + fx_cf(c));	\
									\
	bt_cc(c, is_sub ? CC_SUB : CC_ADD, sz, r, a, b);			\
	c->gpr[d] = r;							\
}
FX_ADC(fx_adc64, 8, uint64_t, 0, 0)
FX_ADC(fx_sbb64, 8, uint64_t, 1, 0)
FX_ADC(fx_adc32, 4, uint32_t, 0, 0)
FX_ADC(fx_sbb32, 4, uint32_t, 1, 0)
FX_ADC(fx_adci64, 8, uint64_t, 0, 1)
FX_ADC(fx_sbbi64, 8, uint64_t, 1, 1)
FX_ADC(fx_adci32, 4, uint32_t, 0, 1)
FX_ADC(fx_sbbi32, 4, uint32_t, 1, 1)

/* ALU Gv,[mem] (03 0B 23 2B 33 3B), 32 and 64 bits. */
#define FX_ALU_LOAD(name, sz, T, expr, kind, write)			\
static void								\
name(struct bt_cpu *c, const struct bt_insn *i)				\
{									\
	T a = (T)c->gpr[i->reg], b = (T)bt_read(c, bt_ea_lin(c, i), sz);\
	T r = (T)(expr);						\
									\
	bt_cc(c, kind, sz, r, a, b);					\
	if (write)							\
		c->gpr[i->reg] = r;					\
}
FX_ALU_LOAD(fm_add64, 8, uint64_t, a + b, CC_ADD, 1)
FX_ALU_LOAD(fm_or64, 8, uint64_t, a | b, CC_LOGIC, 1)
FX_ALU_LOAD(fm_and64, 8, uint64_t, a & b, CC_LOGIC, 1)
FX_ALU_LOAD(fm_sub64, 8, uint64_t, a - b, CC_SUB, 1)
FX_ALU_LOAD(fm_xor64, 8, uint64_t, a ^ b, CC_LOGIC, 1)
FX_ALU_LOAD(fm_cmp64, 8, uint64_t, a - b, CC_SUB, 0)
FX_ALU_LOAD(fm_add32, 4, uint32_t, a + b, CC_ADD, 1)
FX_ALU_LOAD(fm_or32, 4, uint32_t, a | b, CC_LOGIC, 1)
FX_ALU_LOAD(fm_and32, 4, uint32_t, a & b, CC_LOGIC, 1)
FX_ALU_LOAD(fm_sub32, 4, uint32_t, a - b, CC_SUB, 1)
FX_ALU_LOAD(fm_xor32, 4, uint32_t, a ^ b, CC_LOGIC, 1)
FX_ALU_LOAD(fm_cmp32, 4, uint32_t, a - b, CC_SUB, 0)

/* CMP [mem], imm (81/83 /7), 32 and 64 bits. */
static void
fm_cmpi64(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t a = bt_read(c, bt_ea_lin(c, i), 8);

	bt_cc(c, CC_SUB, 8, a - i->imm, a, i->imm);
}

static void
fm_cmpi32(struct bt_cpu *c, const struct bt_insn *i)
{
	uint32_t a = (uint32_t)bt_read(c, bt_ea_lin(c, i), 4);
	uint32_t b = (uint32_t)i->imm;

	bt_cc(c, CC_SUB, 4, (uint32_t)(a - b), a, b);
}

/* ROL/ROR r, imm (C1 /0 /1), count 1..size-1: CF and OF change, the
 * other flags stay, so the lazy ones must be materialized first. */
#define FX_ROT(name, sz, T, left)					\
static void								\
name(struct bt_cpu *c, const struct bt_insn *i)				\
{									\
	unsigned n = (unsigned)i->imm, bits = sz * 8;			\
	T a = (T)c->gpr[i->rm];						\
	T r = left ? (T)(a << n | a >> (bits - n)) :			\
	    (T)(a >> n | a << (bits - n));				\
	uint64_t f = bt_flags_get(c) & ~(RFLAGS_CF | RFLAGS_OF);	\
	bool cf = left ? r & 1 : r >> (bits - 1);			\
	bool of = left ? ((r >> (bits - 1)) & 1) ^ cf :			\
	    ((r >> (bits - 1)) ^ (r >> (bits - 2))) & 1;		\
									\
	c->gpr[i->rm] = r;						\
	c->flags = f | (cf ? RFLAGS_CF : 0) | (of ? RFLAGS_OF : 0);	\
}
FX_ROT(fx_rol64, 8, uint64_t, 1)
FX_ROT(fx_ror64, 8, uint64_t, 0)
FX_ROT(fx_rol32, 4, uint32_t, 1)
FX_ROT(fx_ror32, 4, uint32_t, 0)

/* CMOVcc r, r (0F 40-4F) and SETcc r8 (0F 90-9F): the 32-bit CMOV
 * clears the upper half whether or not it moves. */
static void
fx_cmov64(struct bt_cpu *c, const struct bt_insn *i)
{
	if (bt_cond_fast(c, i->opc & 15))
		c->gpr[i->reg] = c->gpr[i->rm];
}

static void
fx_cmov32(struct bt_cpu *c, const struct bt_insn *i)
{
	c->gpr[i->reg] = (uint32_t)c->gpr[bt_cond_fast(c, i->opc & 15) ?
	    i->rm : i->reg];
}

static void
fx_setcc_r(struct bt_cpu *c, const struct bt_insn *i)
{
	*bt_breg(c, i, i->rm) = bt_cond_fast(c, i->opc & 15);
}

/* MOV [mem], imm (C7 /0) and MOV byte loads/stores (88/8A/C6). */
static void
fm_store_imm64(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_write(c, bt_ea_lin(c, i), 8, i->imm);
}

static void
fm_store_imm32(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_write(c, bt_ea_lin(c, i), 4, i->imm);
}

static void
fm_store_imm8(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_write(c, bt_ea_lin(c, i), 1, i->imm);
}

static void
fm_store8(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_write(c, bt_ea_lin(c, i), 1, *bt_breg(c, i, i->reg));
}

static void
fm_load8(struct bt_cpu *c, const struct bt_insn *i)
{
	*bt_breg(c, i, i->reg) = (uint8_t)bt_read(c, bt_ea_lin(c, i), 1);
}

/* TEST [mem], imm (F6 /0, F7 /0) and TEST [mem], r (84/85). */
static void
fm_testi8(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_cc(c, CC_LOGIC, 1, bt_read(c, bt_ea_lin(c, i), 1) & i->imm, 0, 0);
}

static void
fm_testi32(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_cc(c, CC_LOGIC, 4, bt_read(c, bt_ea_lin(c, i), 4) & (uint32_t)i->imm,
	    0, 0);
}

static void
fm_test64(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_cc(c, CC_LOGIC, 8, bt_read(c, bt_ea_lin(c, i), 8) & c->gpr[i->reg],
	    0, 0);
}

static void
fm_test32(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_cc(c, CC_LOGIC, 4, (uint32_t)(bt_read(c, bt_ea_lin(c, i), 4) &
	    c->gpr[i->reg]), 0, 0);
}

/* CMP r/m8, imm8 (80 /7) and TEST r8, r8 (84). */
static void
fx_cmpi8(struct bt_cpu *c, const struct bt_insn *i)
{
	uint8_t a = (uint8_t)(i->mod == 3 ? *bt_breg(c, i, i->rm) :
	    bt_read(c, bt_ea_lin(c, i), 1));
	uint8_t b = (uint8_t)i->imm;

	bt_cc(c, CC_SUB, 1, (uint8_t)(a - b), a, b);
}

static void
fx_test_rr8(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_cc(c, CC_LOGIC, 1, *bt_breg(c, i, i->rm) & *bt_breg(c, i, i->reg),
	    0, 0);
}

/* CMP r/m8, r8 (38) and CMP r8, r/m8 (3A): string and character-class
 * loops compare bytes from memory all the time. */
static void
fx_cmp8(struct bt_cpu *c, const struct bt_insn *i)
{
	uint8_t r = *bt_breg(c, i, i->reg);
	uint8_t m = (uint8_t)(i->mod == 3 ? *bt_breg(c, i, i->rm) :
	    bt_read(c, bt_ea_lin(c, i), 1));
	uint8_t a = i->opc == 0x3a ? r : m, b = i->opc == 0x3a ? m : r;

	bt_cc(c, CC_SUB, 1, (uint8_t)(a - b), a, b);
}

/* CMP AL, imm8 (3C) */
static void
fx_cmp_al(struct bt_cpu *c, const struct bt_insn *i)
{
	uint8_t a = (uint8_t)c->gpr[R_RAX], b = (uint8_t)i->imm;

	bt_cc(c, CC_SUB, 1, (uint8_t)(a - b), a, b);
}

/* TEST AL, imm8 (A8) */
static void
fx_test_al(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_cc(c, CC_LOGIC, 1, (uint8_t)c->gpr[R_RAX] & (uint8_t)i->imm, 0, 0);
}

/* ADD/OR/AND/SUB/XOR [mem], imm (81/83), 32 and 64 bits, not LOCKed. */
#define FX_RMW_IMM(name, sz, T, expr, kind)				\
static void								\
name(struct bt_cpu *c, const struct bt_insn *i)				\
{									\
	uint64_t lin = bt_ea_lin(c, i);					\
	void *p = bt_ptr_rw(c, lin, sz);				\
	T a = (T)(p ? bt_load_host(p, sz) : bt_read(c, lin, sz));	\
	T b = (T)i->imm, r = (T)(expr);					\
									\
	if (p)								\
		bt_store_host(p, sz, r);				\
	else								\
		bt_write(c, lin, sz, r);				\
	bt_cc(c, kind, sz, r, a, b);					\
}
FX_RMW_IMM(fm_addi64, 8, uint64_t, a + b, CC_ADD)
FX_RMW_IMM(fm_ori64, 8, uint64_t, a | b, CC_LOGIC)
FX_RMW_IMM(fm_andi64, 8, uint64_t, a & b, CC_LOGIC)
FX_RMW_IMM(fm_subi64, 8, uint64_t, a - b, CC_SUB)
FX_RMW_IMM(fm_addi32, 4, uint32_t, a + b, CC_ADD)
FX_RMW_IMM(fm_ori32, 4, uint32_t, a | b, CC_LOGIC)
FX_RMW_IMM(fm_andi32, 4, uint32_t, a & b, CC_LOGIC)
FX_RMW_IMM(fm_subi32, 4, uint32_t, a - b, CC_SUB)

/* Specializations for byte operands (bt_specialize handles 32/64). */
static void
fx_specialize8(struct bt_insn *i)
{
	if (i->opc == 0x80 && (i->reg & 7) == 7) {
		i->fn = fx_cmpi8;
		return;
	}
	if (i->opc == 0x84 && i->mod == 3) {
		i->fn = fx_test_rr8;
		return;
	}
	switch (i->opc) {
	case 0x38: case 0x3a: i->fn = fx_cmp8; return;
	case 0x3c: i->fn = fx_cmp_al; return;
	case 0xa8: i->fn = fx_test_al; return;
	}
	if (i->opc == 0xf6 && i->mod == 3 && (i->reg & 7) == 0) {
		i->fn = fx_testi8_r;
		return;
	}
	if (i->opc >= 0x190 && i->opc <= 0x19f && i->mod == 3) {
		i->fn = fx_setcc_r;
		return;
	}
	if (i->mod == 3)
		return;
	switch (i->opc) {
	case 0x88: i->fn = fm_store8; break;
	case 0x8a: i->fn = fm_load8; break;
	case 0xc6: if ((i->reg & 7) == 0) i->fn = fm_store_imm8; break;
	case 0xf6: if ((i->reg & 7) == 0) i->fn = fm_testi8; break;
	}
}

/* Pick a specialized handler for i, if one applies. */
void
bt_specialize(struct bt_cpu *c, struct bt_insn *i)
{
	unsigned sz = i->osz;
	bool reg = i->mod == 3, w = sz == 8;

	if (i->lock || i->rep)
		return;
	if (sz == 1) {
		fx_specialize8(i);
		return;
	}
	if (i->opc == 0x90 && !(i->rex & 1)) {
		i->fn = bt_x_nop;	/* XCHG eAX, eAX: 66 90 is the
					 * kernel's 2-byte NOP */
		return;
	}
	if (sz != 4 && sz != 8)
		return;
	if (c->mode == BT_M64 && sz == 8 && !i->p66) {
		/* FS/GS never apply to the stack; SS base is 0 in 64-bit. */
		switch (i->opc) {
		case 0x50: case 0x51: case 0x52: case 0x53:
		case 0x54: case 0x55: case 0x56: case 0x57:
			/* PUSH RSP pushes the old value: generic (R12,
			 * a common callee-saved register, is fine). */
			if ((i->opc & 7) != R_RSP || (i->rex & 1))
				i->fn = fx_push64;
			return;
		case 0x58: case 0x59: case 0x5a: case 0x5b:
		case 0x5c: case 0x5d: case 0x5e: case 0x5f:
			if ((i->opc & 7) != R_RSP || (i->rex & 1))
				i->fn = fx_pop64;
			return;
		case 0xe8: i->fn = fx_call64; return;
		case 0xc3: i->fn = fx_ret64; return;
		}
	}
	switch (i->opc) {
	case 0x05: case 0x25: case 0x2d: case 0x3d:
	case 0x0d: case 0x35: case 0xa9:
		/* ADD/AND/SUB/CMP/OR/XOR/TEST rAX, imm32: the register-
		 * immediate forms with RAX as the register (so the JIT
		 * inlines them too). */
		i->mod = 3;
		i->rm = R_RAX;
		i->fn = i->opc == 0x05 ? (w ? fx_addi64 : fx_addi32) :
		    i->opc == 0x25 ? (w ? fx_andi64 : fx_andi32) :
		    i->opc == 0x2d ? (w ? fx_subi64 : fx_subi32) :
		    i->opc == 0x0d ? (w ? fx_ori64 : fx_ori32) :
		    i->opc == 0x35 ? (w ? fx_xori64 : fx_xori32) :
		    i->opc == 0xa9 ? (w ? fx_testi64 : fx_testi32) :
		    (w ? fx_cmpi64 : fx_cmpi32);
		return;
	case 0xff:
		if (reg && (i->reg & 7) < 2)
			i->fn = (i->reg & 7) ? (w ? fx_dec64 : fx_dec32) :
			    (w ? fx_inc64 : fx_inc32);
		else if (c->mode == BT_M64 && w && (i->reg & 7) == 4)
			i->fn = fx_jmp_ind64;
		else if (c->mode == BT_M64 && w && (i->reg & 7) == 2)
			i->fn = fx_call_ind64;
		return;
	case 0x140: case 0x141: case 0x142: case 0x143:
	case 0x144: case 0x145: case 0x146: case 0x147:
	case 0x148: case 0x149: case 0x14a: case 0x14b:
	case 0x14c: case 0x14d: case 0x14e: case 0x14f:
		if (reg)
			i->fn = w ? fx_cmov64 : fx_cmov32;
		return;
	case 0x1af: case 0x69: case 0x6b:
		i->fn = w ? fx_imul64 : fx_imul32;
		return;
	case 0xc1: case 0xd1: {
		unsigned op = i->reg & 7, n = i->opc == 0xd1 ? 1 :
		    (unsigned)i->imm & (w ? 63 : 31);

		if (!reg || n == 0)
			return;
		if (op < 2) {
			if (n >= sz * 8u)
				return;	/* 32-bit ROL by 32..31: generic */
			i->imm = n;
			i->fn = op == 0 ? (w ? fx_rol64 : fx_rol32) :
			    (w ? fx_ror64 : fx_ror32);
			return;
		}
		if (op != 4 && op != 5 && op != 7)
			return;
		if (i->opc == 0xd1)
			i->imm = 1;
		else
			i->imm = n;
		i->fn = op == 4 ? (w ? fx_shl64 : fx_shl32) :
		    op == 5 ? (w ? fx_shr64 : fx_shr32) :
		    (w ? fx_sar64 : fx_sar32);
		return;
	}
	case 0x89: case 0x8b:
		if (reg)
			i->fn = w ? fx_mov_rr64 : fx_mov_rr32;
		else if (i->opc == 0x8b)
			i->fn = w ? fx_load64 : fx_load32;
		else
			i->fn = w ? fx_store64 : fx_store32;
		return;
	case 0x1b6:
		i->fn = reg ? fx_movzx8_rr : fx_movzx8_load;
		return;
	case 0x1b7:
		if (!reg)
			i->fn = fx_movzx16_load;
		return;
	case 0x8d:
		if (!reg && c->mode == BT_M64 && i->asz == 8)
			i->fn = w ? fx_lea64 : fx_lea32;
		return;
	case 0x85:
		if (reg)
			i->fn = w ? fx_test_rr64 : fx_test_rr32;
		else
			i->fn = w ? fm_test64 : fm_test32;
		return;
	case 0xc7:
		if ((i->reg & 7) == 0)
			i->fn = reg ? fx_mov_ri : w ? fm_store_imm64 :
			    fm_store_imm32;
		return;
	case 0xf7:
		if (reg && (i->reg & 7) == 0)
			i->fn = w ? fx_testi64 : fx_testi32;
		else if (reg && (i->reg & 7) == 2)
			i->fn = fx_not;
		else if (reg && (i->reg & 7) == 3)
			i->fn = w ? fx_neg64 : fx_neg32;
		else if (!reg && (i->reg & 7) == 0 && !w)
			i->fn = fm_testi32;
		return;
	case 0x81: case 0x83:
		if (!reg) {
			static bt_fn *const r64[8] = { fm_addi64, fm_ori64,
			    NULL, NULL, fm_andi64, fm_subi64, NULL, fm_cmpi64 };
			static bt_fn *const r32[8] = { fm_addi32, fm_ori32,
			    NULL, NULL, fm_andi32, fm_subi32, NULL, fm_cmpi32 };
			bt_fn *f = (w ? r64 : r32)[i->reg & 7];

			if (f != NULL)
				i->fn = f;
			return;
		}
		switch (i->reg & 7) {
		case 0: i->fn = w ? fx_addi64 : fx_addi32; break;
		case 1: i->fn = w ? fx_ori64 : fx_ori32; break;
		case 2: i->fn = w ? fx_adci64 : fx_adci32; break;
		case 3: i->fn = w ? fx_sbbi64 : fx_sbbi32; break;
		case 6: i->fn = w ? fx_xori64 : fx_xori32; break;
		case 4: i->fn = w ? fx_andi64 : fx_andi32; break;
		case 5: i->fn = w ? fx_subi64 : fx_subi32; break;
		case 7: i->fn = w ? fx_cmpi64 : fx_cmpi32; break;
		}
		return;
	}
	if (i->opc < 0x40 && (i->opc & 7) == 3 && !reg) {
		static bt_fn *const m64[8] = { fm_add64, fm_or64, NULL, NULL,
		    fm_and64, fm_sub64, fm_xor64, fm_cmp64 };
		static bt_fn *const m32[8] = { fm_add32, fm_or32, NULL, NULL,
		    fm_and32, fm_sub32, fm_xor32, fm_cmp32 };
		bt_fn *f = (w ? m64 : m32)[i->opc >> 3];

		if (f != NULL)
			i->fn = f;
		return;
	}
	if ((i->opc == 0x11 || i->opc == 0x13 || i->opc == 0x19 ||
	    i->opc == 0x1b) && reg) {
		i->fn = i->opc < 0x18 ? (w ? fx_adc64 : fx_adc32) :
		    (w ? fx_sbb64 : fx_sbb32);
		return;
	}
	if (i->opc < 0x40 && (i->opc & 7) <= 3 && (i->opc & 5) == 1 && reg) {
		static bt_fn *const f64[8] = { fx_add64, fx_or64, NULL, NULL,
		    fx_and64, fx_sub64, fx_xor64, fx_cmp64 };
		static bt_fn *const f32[8] = { fx_add32, fx_or32, NULL, NULL,
		    fx_and32, fx_sub32, fx_xor32, fx_cmp32 };
		bt_fn *f = (w ? f64 : f32)[i->opc >> 3];

		if (f != NULL)
			i->fn = f;
		return;
	}
	if (c->mode == BT_M64 && ((i->opc >= 0x70 && i->opc <= 0x7f) ||
	    (i->opc >= 0x180 && i->opc <= 0x18f)))
		i->fn = fx_jcc64;
}

/*
 * Compare-and-branch fusion: CMP/TEST/DEC on registers followed by Jcc
 * (a quarter of all branches) run as one pre-decoded instruction.  The
 * flags are still recorded as the first instruction would; the branch
 * displacement goes in disp and the condition in scale, both unused by
 * register forms.  Neither half can fault, so RIP stays exact.
 */
#define FX_FUSE(name, inner)						\
static void								\
name(struct bt_cpu *c, const struct bt_insn *i)				\
{									\
	inner(c, i);							\
	if (bt_cond_fast(c, i->scale))					\
		c->npc += i->disp;					\
}
FX_FUSE(fj_cmp64, fx_cmp64)
FX_FUSE(fj_cmp32, fx_cmp32)
FX_FUSE(fj_cmpi64, fx_cmpi64)
FX_FUSE(fj_cmpi32, fx_cmpi32)
FX_FUSE(fj_test64, fx_test_rr64)
FX_FUSE(fj_test32, fx_test_rr32)
FX_FUSE(fj_dec64, fx_dec64)
FX_FUSE(fj_dec32, fx_dec32)
FX_FUSE(fj_sub64, fx_sub64)
FX_FUSE(fj_and64, fx_and64)
FX_FUSE(fj_add64, fx_add64)
FX_FUSE(fj_subi64, fx_subi64)

/* Condition cc after CMP a, b (bytes), straight from the operands. */
static inline bool
fj_cc_sub8(uint8_t a, uint8_t b, unsigned cc)
{
	uint8_t r = (uint8_t)(a - b);
	bool v;

	switch (cc >> 1) {
	case 0: v = (((a ^ b) & (a ^ r)) >> 7) & 1; break;	/* O */
	case 1: v = a < b; break;				/* B */
	case 2: v = a == b; break;				/* Z */
	case 3: v = a <= b; break;				/* BE */
	case 4: v = r >> 7; break;				/* S */
	case 5: v = !__builtin_parity(r); break;		/* P */
	case 6: v = (int8_t)a < (int8_t)b; break;		/* L */
	default: v = (int8_t)a <= (int8_t)b; break;		/* LE */
	}
	return v ^ (cc & 1);
}

/* Condition cc after TEST (result r; CF = OF = 0). */
static inline bool
fj_cc_logic8(uint8_t r, unsigned cc)
{
	bool v;

	switch (cc >> 1) {
	case 0: case 1: v = false; break;
	case 2: case 3: v = r == 0; break;
	case 4: case 6: v = r >> 7; break;
	case 5: v = !__builtin_parity(r); break;
	default: v = r == 0 || (r >> 7); break;
	}
	return v ^ (cc & 1);
}

/*
 * Byte compares fused with the Jcc after them: the condition in imm2,
 * the branch displacement in imm where the compare has no immediate
 * (CMP r/m8, r8 may have a memory operand, so disp is taken), else in
 * disp (the register and AL forms have no memory operand).
 */
static void
fj_cmp8(struct bt_cpu *c, const struct bt_insn *i)
{
	uint8_t r = *bt_breg(c, i, i->reg);
	uint8_t m = (uint8_t)(i->mod == 3 ? *bt_breg(c, i, i->rm) :
	    bt_read(c, bt_ea_lin(c, i), 1));
	uint8_t a = i->opc == 0x3a ? r : m, b = i->opc == 0x3a ? m : r;

	bt_cc(c, CC_SUB, 1, (uint8_t)(a - b), a, b);
	if (fj_cc_sub8(a, b, i->imm2))
		c->npc += i->imm;
}

static void
fj_test8(struct bt_cpu *c, const struct bt_insn *i)
{
	uint8_t r = *bt_breg(c, i, i->rm) & *bt_breg(c, i, i->reg);

	bt_cc(c, CC_LOGIC, 1, r, 0, 0);
	if (fj_cc_logic8(r, i->imm2))
		c->npc += i->imm;
}

static void
fj_cmpi8(struct bt_cpu *c, const struct bt_insn *i)
{
	uint8_t a = *bt_breg(c, i, i->rm), b = (uint8_t)i->imm;

	bt_cc(c, CC_SUB, 1, (uint8_t)(a - b), a, b);
	if (fj_cc_sub8(a, b, i->imm2))
		c->npc += (uint64_t)i->disp;
}

static void
fj_cmp_al(struct bt_cpu *c, const struct bt_insn *i)
{
	uint8_t a = (uint8_t)c->gpr[R_RAX], b = (uint8_t)i->imm;

	bt_cc(c, CC_SUB, 1, (uint8_t)(a - b), a, b);
	if (fj_cc_sub8(a, b, i->imm2))
		c->npc += (uint64_t)i->disp;
}

static void
fj_test_al(struct bt_cpu *c, const struct bt_insn *i)
{
	uint8_t r = (uint8_t)c->gpr[R_RAX] & (uint8_t)i->imm;

	bt_cc(c, CC_LOGIC, 1, r, 0, 0);
	if (fj_cc_logic8(r, i->imm2))
		c->npc += (uint64_t)i->disp;
}

/* bt_fuse for the byte compares (see fj_cmp8). */
static bool
fj_fuse8(struct bt_insn *first, const struct bt_insn *jcc)
{
	bool in_imm;

	/* RIP-relative addressing counts from the end of the compare,
	 * which fusion would move past the Jcc. */
	if (first->fn == fx_cmp8 && first->mod != 3 &&
	    first->base == BT_RIPREL)
		return false;
	if (first->fn == fx_cmp8) {
		first->fn = fj_cmp8;
		in_imm = true;
	} else if (first->fn == fx_test_rr8) {
		first->fn = fj_test8;
		in_imm = true;
	} else if (first->fn == fx_cmpi8 && first->mod == 3) {
		first->fn = fj_cmpi8;
		in_imm = false;
	} else if (first->fn == fx_cmp_al) {
		first->fn = fj_cmp_al;
		in_imm = false;
	} else if (first->fn == fx_test_al) {
		first->fn = fj_test_al;
		in_imm = false;
	} else {
		return false;
	}
	first->imm2 = jcc->opc & 15;
	if (in_imm)
		first->imm = jcc->imm;
	else
		first->disp = (int64_t)jcc->imm;
	first->len += jcc->len;
	return true;
}

bool
bt_fuse(struct bt_insn *first, const struct bt_insn *jcc)
{
	static const struct { bt_fn *from, *to; } map[] = {
		{ fx_cmp64, fj_cmp64 }, { fx_cmp32, fj_cmp32 },
		{ fx_cmpi64, fj_cmpi64 }, { fx_cmpi32, fj_cmpi32 },
		{ fx_test_rr64, fj_test64 }, { fx_test_rr32, fj_test32 },
		{ fx_dec64, fj_dec64 }, { fx_dec32, fj_dec32 },
		{ fx_sub64, fj_sub64 }, { fx_and64, fj_and64 },
		{ fx_add64, fj_add64 }, { fx_subi64, fj_subi64 },
	};

	if (jcc->fn != fx_jcc64 || first->len + jcc->len > 255)
		return false;
	if (fj_fuse8(first, jcc))
		return true;
	if (first->mod != 3)
		return false;
	for (unsigned k = 0; k < sizeof(map) / sizeof(map[0]); k++) {
		if (first->fn != map[k].from)
			continue;
		first->fn = map[k].to;
		first->scale = jcc->opc & 15;
		first->disp = (int64_t)jcc->imm;
		first->len += jcc->len;
		return true;
	}
	return false;
}

/* A byte register operand: AH..BH are byte 1 of RAX..RBX. */
static void
fd_breg(const struct bt_insn *i, unsigned r, uint8_t *reg, uint8_t *hi)
{
	*hi = !i->rex && r >= 4 && r < 8;
	*reg = (uint8_t)(*hi ? r - 4 : r);
}

/* Memory forms still run by the generic handlers that the JIT can do
 * with the soft TLB inline: CMP [mem], r (39), CMP word [mem], imm
 * (81/83 /7), ADD/OR/AND/SUB/XOR [mem], r / imm, INC/DEC [mem], MOV
 * word [mem], r (89) and MOVSXD r64, [mem]. */
static bool
jit_generic_mem_desc(const struct bt_insn *i, struct bt_fdesc *d)
{
	if (i->fn == bt_x_alu && i->opc == 0x39 &&
	    (i->osz == 4 || i->osz == 8)) {
		d->kind = BT_FD_LALU;
		d->op = 7;
		d->sz = i->osz;
		d->amem = 1;
		d->dst = d->src = i->reg;
		return true;
	}
	if (i->fn == bt_x_alu_imm && (i->opc == 0x81 || i->opc == 0x83) &&
	    (i->reg & 7) == 7 && i->osz == 2) {
		d->kind = BT_FD_LALU;
		d->op = 7;
		d->sz = 2;
		d->amem = 1;
		d->imm = 1;
		return true;
	}
	if ((i->osz == 4 || i->osz == 8) && ((i->fn == bt_x_alu &&
	    (i->opc == 0x01 || i->opc == 0x09 || i->opc == 0x21 ||
	    i->opc == 0x29 || i->opc == 0x31)) ||
	    (i->fn == bt_x_alu_imm && (i->opc == 0x81 || i->opc == 0x83) &&
	    (i->reg & 7) != 2 && (i->reg & 7) != 3 && (i->reg & 7) != 7) ||
	    (i->fn == bt_x_grp5 && (i->reg & 7) < 2))) {
		/* op [mem], r / imm; INC/DEC [mem] */
		d->kind = BT_FD_RMW;
		d->sz = i->osz;
		if (i->fn == bt_x_grp5) {
			d->n = 1;
			d->op = i->reg & 7;
		} else if (i->fn == bt_x_alu) {
			d->op = (uint8_t)(i->opc >> 3);
			d->src = i->reg;
		} else {
			d->op = i->reg & 7;
			d->imm = 1;
		}
		return true;
	}
	if (i->fn == bt_x_mov && i->opc == 0x89 && i->osz == 2) {
		d->kind = BT_FD_STORE;
		d->sz = 2;
		d->dst = d->src = i->reg;
		return true;
	}
	if (i->fn == bt_x_movsxd && i->osz == 8) {
		d->kind = BT_FD_LOAD;
		d->sz = 4;
		d->n = 1;		/* sign-extend to 64 bits */
		d->dst = d->src = i->reg;
		return true;
	}
	return false;
}

/* Loads, stores and the 64-bit stack operations. */
static bool
jit_mem_desc(const struct bt_insn *i, struct bt_fdesc *d)
{
	static const struct { bt_fn *fn; uint8_t kind, sz, imm; } t[] = {
		{ fx_load64, BT_FD_LOAD, 8, 0 }, { fx_load32, BT_FD_LOAD, 4, 0 },
		{ fx_movzx8_load, BT_FD_LOAD, 1, 0 },
		{ fx_movzx16_load, BT_FD_LOAD, 2, 0 },
		{ fx_store64, BT_FD_STORE, 8, 0 },
		{ fx_store32, BT_FD_STORE, 4, 0 },
		{ fm_store_imm64, BT_FD_STORE, 8, 1 },
		{ fm_store_imm32, BT_FD_STORE, 4, 1 },
		{ fm_store_imm8, BT_FD_STORE, 1, 1 },
		{ fm_store8, BT_FD_STORE, 1, 0 }, { fm_load8, BT_FD_LOAD, 1, 0 },
		{ fx_push64, BT_FD_PUSH, 8, 0 }, { fx_pop64, BT_FD_POP, 8, 0 },
		{ fx_call64, BT_FD_CALL, 8, 0 }, { fx_ret64, BT_FD_RET, 8, 0 },
	};

	static const struct { bt_fn *fn; uint8_t op, sz, amem, imm; } a[] = {
		{ fm_add64, 0, 8, 0, 0 }, { fm_or64, 1, 8, 0, 0 },
		{ fm_and64, 4, 8, 0, 0 }, { fm_sub64, 5, 8, 0, 0 },
		{ fm_xor64, 6, 8, 0, 0 }, { fm_cmp64, 7, 8, 0, 0 },
		{ fm_add32, 0, 4, 0, 0 }, { fm_or32, 1, 4, 0, 0 },
		{ fm_and32, 4, 4, 0, 0 }, { fm_sub32, 5, 4, 0, 0 },
		{ fm_xor32, 6, 4, 0, 0 }, { fm_cmp32, 7, 4, 0, 0 },
		{ fm_cmpi64, 7, 8, 1, 1 }, { fm_cmpi32, 7, 4, 1, 1 },
		{ fm_testi8, 8, 1, 1, 1 }, { fm_testi32, 8, 4, 1, 1 },
		{ fm_test64, 8, 8, 1, 0 }, { fm_test32, 8, 4, 1, 0 },
		{ fx_cmpi8, 7, 1, 1, 1 },
	};

	if (i->fn == fx_jcc64) {
		d->kind = BT_FD_JCC;
		return true;
	}
	if (i->mod != 3 && !i->lock && jit_generic_mem_desc(i, d))
		return true;
	static const struct { bt_fn *fn; uint8_t op, sz; } rmw[] = {
		{ fm_addi64, 0, 8 }, { fm_ori64, 1, 8 }, { fm_andi64, 4, 8 },
		{ fm_subi64, 5, 8 }, { fm_addi32, 0, 4 }, { fm_ori32, 1, 4 },
		{ fm_andi32, 4, 4 }, { fm_subi32, 5, 4 },
	};

	for (unsigned k = 0; k < sizeof(rmw) / sizeof(rmw[0]); k++) {
		if (i->fn != rmw[k].fn)
			continue;
		d->kind = BT_FD_RMW;
		d->op = rmw[k].op;
		d->sz = rmw[k].sz;
		d->imm = 1;
		return true;
	}
	for (unsigned k = 0; k < sizeof(a) / sizeof(a[0]); k++) {
		if (i->fn != a[k].fn || i->mod == 3)
			continue;
		d->kind = BT_FD_LALU;
		d->op = a[k].op;
		d->sz = a[k].sz;
		d->amem = a[k].amem;
		d->imm = a[k].imm;
		d->dst = d->src = i->reg;
		d->write = !a[k].amem && a[k].op != 7;
		return true;
	}
	for (unsigned k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		if (i->fn != t[k].fn)
			continue;
		d->kind = t[k].kind;
		d->sz = t[k].sz;
		d->imm = t[k].imm;
		d->dst = d->src = i->reg;
		if (i->fn == fm_store8 || i->fn == fm_load8)
			fd_breg(i, i->reg, &d->dst, &d->hi);
		d->src = d->dst;
		d->op = i->fn == fm_load8;	/* merge into the byte */
		if (d->kind == BT_FD_PUSH || d->kind == BT_FD_POP)
			d->dst = d->src = (uint8_t)((i->opc & 7) |
			    ((i->rex & 1) << 3));
		return true;
	}
	return false;
}

/* Byte CMP and TEST on registers (AL, imm8 included), alone or with
 * the Jcc fused (fj_cmp8 has the displacement in imm, the others in
 * disp; the condition in imm2). */
static bool
jit_byte_desc(const struct bt_insn *i, struct bt_fdesc *d)
{
	bool fused = i->fn == fj_cmp8 || i->fn == fj_test8 ||
	    i->fn == fj_cmpi8 || i->fn == fj_cmp_al || i->fn == fj_test_al;
	unsigned a, b;

	if (i->fn == fx_cmp8 || i->fn == fj_cmp8) {
		if (i->mod != 3)
			return false;
		a = i->opc == 0x3a ? i->reg : i->rm;
		b = i->opc == 0x3a ? i->rm : i->reg;
		d->op = 7;
	} else if (i->fn == fx_test_rr8 || i->fn == fj_test8) {
		a = i->rm;
		b = i->reg;
		d->op = 8;
	} else if (i->fn == fx_cmpi8 || i->fn == fj_cmpi8 ||
	    i->fn == fx_testi8_r) {
		if (i->mod != 3)
			return false;
		a = b = i->rm;
		d->op = i->fn == fx_testi8_r ? 8 : 7;
		d->imm = 1;
	} else if (i->fn == fx_cmp_al || i->fn == fj_cmp_al ||
	    i->fn == fx_test_al || i->fn == fj_test_al) {
		a = b = R_RAX;
		d->op = i->fn == fx_cmp_al || i->fn == fj_cmp_al ? 7 : 8;
		d->imm = 1;
	} else {
		return false;
	}
	d->kind = BT_FD_ALU;
	d->sz = 1;
	fd_breg(i, a, &d->dst, &d->hi);
	fd_breg(i, b, &d->src, &d->shi);
	if (fused) {
		d->branch = 1;
		d->n = (uint8_t)i->imm2;
		d->rel = i->fn == fj_cmp8 || i->fn == fj_test8 ?
		    (int64_t)i->imm : i->disp;
	}
	return true;
}

/* Shifts and rotates by a known count, IMUL, CMOVcc and SETcc on
 * registers. */
static bool
jit_reg_desc(const struct bt_insn *i, struct bt_fdesc *d)
{
	static const struct { bt_fn *fn; uint8_t op, sz; } sh[] = {
		{ fx_rol64, 0, 8 }, { fx_ror64, 1, 8 }, { fx_shl64, 4, 8 },
		{ fx_shr64, 5, 8 }, { fx_sar64, 7, 8 },
		{ fx_rol32, 0, 4 }, { fx_ror32, 1, 4 }, { fx_shl32, 4, 4 },
		{ fx_shr32, 5, 4 }, { fx_sar32, 7, 4 },
	};

	for (unsigned k = 0; k < sizeof(sh) / sizeof(sh[0]); k++) {
		if (i->fn != sh[k].fn)
			continue;
		d->kind = BT_FD_SHIFT;
		d->op = sh[k].op;
		d->sz = sh[k].sz;
		d->dst = i->rm;
		d->n = (uint8_t)i->imm;
		return true;
	}
	if ((i->fn == fx_imul64 || i->fn == fx_imul32) && i->mod == 3) {
		d->kind = BT_FD_IMUL;
		d->sz = i->fn == fx_imul64 ? 8 : 4;
		d->dst = i->reg;
		d->src = i->rm;
		d->imm = i->opc != 0x1af;
		return true;
	}
	if (i->fn == fx_cmov64 || i->fn == fx_cmov32) {
		d->kind = BT_FD_CMOV;
		d->sz = i->fn == fx_cmov64 ? 8 : 4;
		d->dst = i->reg;
		d->src = i->rm;
		d->n = i->opc & 15;
		return true;
	}
	if (jit_byte_desc(i, d))
		return true;
	if (i->fn == fx_not || i->fn == fx_neg64 || i->fn == fx_neg32) {
		d->kind = BT_FD_UNARY;
		d->op = i->fn == fx_not ? 2 : 3;
		d->sz = i->osz;
		d->dst = i->rm;
		return true;
	}
	if (i->fn == bt_x_shift && i->opc == 0xd3 && i->mod == 3 &&
	    (i->osz == 4 || i->osz == 8) && ((i->reg & 7) == 4 ||
	    (i->reg & 7) == 5 || (i->reg & 7) == 7)) {
		d->kind = BT_FD_SHIFTCL;
		d->op = i->reg & 7;
		d->sz = i->osz;
		d->dst = i->rm;
		return true;
	}
	if (i->fn == fx_movzx8_rr || (i->fn == bt_x_movx && i->mod == 3 &&
	    (i->osz == 4 || i->osz == 8))) {
		d->kind = BT_FD_MOVX;
		d->sz = i->osz;
		d->n = (i->opc & 1) ? 2 : 1;
		d->op = i->opc >= 0x1be;	/* sign-extend */
		d->dst = i->reg;
		if (d->n == 1)
			fd_breg(i, i->rm, &d->src, &d->shi);
		else
			d->src = i->rm;
		return true;
	}
	if (i->fn == fx_setcc_r) {
		d->kind = BT_FD_SETCC;
		d->sz = 1;
		fd_breg(i, i->rm, &d->dst, &d->hi);
		d->n = i->opc & 15;
		return true;
	}
	return false;
}

/*
 * What the JIT may compile inline: the register-only fast handlers, whose
 * effects (a register, the lazy flags, maybe a branch) are described
 * here so the code generator never has to know the handlers by name.
 */
bool
bt_fast_desc(const struct bt_insn *i, struct bt_fdesc *d)
{
	static const struct { bt_fn *fn; uint8_t op, sz, form, write; } t[] = {
		{ fx_add64, 0, 8, 0, 1 }, { fx_or64, 1, 8, 0, 1 },
		{ fx_and64, 4, 8, 0, 1 }, { fx_sub64, 5, 8, 0, 1 },
		{ fx_xor64, 6, 8, 0, 1 }, { fx_cmp64, 7, 8, 0, 0 },
		{ fx_add32, 0, 4, 0, 1 }, { fx_or32, 1, 4, 0, 1 },
		{ fx_and32, 4, 4, 0, 1 }, { fx_sub32, 5, 4, 0, 1 },
		{ fx_xor32, 6, 4, 0, 1 }, { fx_cmp32, 7, 4, 0, 0 },
		{ fx_test_rr64, 8, 8, 0, 0 }, { fx_test_rr32, 8, 4, 0, 0 },
		{ fx_addi64, 0, 8, 1, 1 }, { fx_subi64, 5, 8, 1, 1 },
		{ fx_cmpi64, 7, 8, 1, 0 }, { fx_andi64, 4, 8, 1, 1 },
		{ fx_addi32, 0, 4, 1, 1 }, { fx_subi32, 5, 4, 1, 1 },
		{ fx_cmpi32, 7, 4, 1, 0 }, { fx_andi32, 4, 4, 1, 1 },
		{ fj_cmp64, 7, 8, 2, 0 }, { fj_cmp32, 7, 4, 2, 0 },
		{ fj_cmpi64, 7, 8, 3, 0 }, { fj_cmpi32, 7, 4, 3, 0 },
		{ fj_test64, 8, 8, 2, 0 }, { fj_test32, 8, 4, 2, 0 },
		{ fj_sub64, 5, 8, 2, 1 }, { fj_and64, 4, 8, 2, 1 },
		{ fj_add64, 0, 8, 2, 1 }, { fj_subi64, 5, 8, 3, 1 },
		{ fx_ori64, 1, 8, 1, 1 }, { fx_xori64, 6, 8, 1, 1 },
		{ fx_ori32, 1, 4, 1, 1 }, { fx_xori32, 6, 4, 1, 1 },
		{ fx_testi64, 8, 8, 1, 0 }, { fx_testi32, 8, 4, 1, 0 },
		{ fx_adc64, 2, 8, 0, 1 }, { fx_sbb64, 3, 8, 0, 1 },
		{ fx_adc32, 2, 4, 0, 1 }, { fx_sbb32, 3, 4, 0, 1 },
		{ fx_adci64, 2, 8, 1, 1 }, { fx_sbbi64, 3, 8, 1, 1 },
		{ fx_adci32, 2, 4, 1, 1 }, { fx_sbbi32, 3, 4, 1, 1 },
	};

	memset(d, 0, sizeof(*d));
	if (jit_reg_desc(i, d))
		return true;
	if (i->fn == fx_mov_ri) {
		d->kind = BT_FD_MOV;
		d->sz = i->osz;
		d->dst = i->rm;
		d->imm = 1;
		return true;
	}
	if (i->fn == fx_mov_rr64 || i->fn == fx_mov_rr32) {
		d->kind = BT_FD_MOV;
		d->sz = i->fn == fx_mov_rr64 ? 8 : 4;
		d->dst = i->opc == 0x89 ? i->rm : i->reg;
		d->src = i->opc == 0x89 ? i->reg : i->rm;
		return true;
	}
	if (jit_mem_desc(i, d))
		return true;
	if (i->fn == fx_lea64 || i->fn == fx_lea32) {
		d->kind = BT_FD_LEA;
		d->sz = i->fn == fx_lea64 ? 8 : 4;
		d->dst = i->reg;
		return true;
	}
	for (unsigned k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		if (i->fn != t[k].fn)
			continue;
		d->kind = BT_FD_ALU;
		d->op = t[k].op;
		d->sz = t[k].sz;
		d->write = t[k].write;
		d->imm = (t[k].form & 1) != 0;
		d->branch = (t[k].form & 2) != 0;
		d->n = i->scale;
		d->rel = i->disp;
		if (d->imm) {
			d->dst = i->rm;
		} else {
			d->dst = (i->opc & 2) ? i->reg : i->rm;
			d->src = (i->opc & 2) ? i->rm : i->reg;
		}
		if (d->op == 8)		/* TEST: operands are symmetric */
			d->src = i->reg, d->dst = i->rm;
		return true;
	}
	return false;
}
