/*
 * Data movement: MOV forms, extensions, LEA, stack operations, CMOVcc and
 * SETcc, flag register transfers, ENTER/LEAVE.
 */
#include "hv/bt/bt_internal.h"

/* 88-8B MOV */
void
bt_x_mov(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned sz = i->osz;

	if (i->opc & 2)
		bt_reg_set(c, i, i->reg, sz, bt_rm_read(c, i, sz));
	else
		bt_rm_write(c, i, sz, bt_reg_get(c, i, i->reg, sz));
}

/* C6/C7 MOV Ev,imm */
void
bt_x_mov_imm(struct bt_cpu *c, const struct bt_insn *i)
{
	if ((i->reg & 7) != 0)
		bt_raise(c, EXC_UD, -1);
	bt_rm_write(c, i, i->osz, i->imm);
}

/* B0-BF MOV r,imm */
void
bt_x_mov_rimm(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_reg_set(c, i, (i->opc & 7) | ((i->rex & 1) << 3), i->osz, i->imm);
}

/* A0-A3 MOV AL/rAX <-> moffs */
void
bt_x_mov_moffs(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t lin = bt_lin(c, i->seg, (uint64_t)i->disp);

	if (i->opc & 2)
		bt_write(c, lin, i->osz, bt_reg_get(c, i, R_RAX, i->osz));
	else
		bt_reg_set(c, i, R_RAX, i->osz, bt_read(c, lin, i->osz));
}

/* 0F B6/B7 MOVZX, 0F BE/BF MOVSX */
void
bt_x_movx(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned ssz = (i->opc & 1) ? 2 : 1;
	uint64_t v;

	if (i->mod == 3 && ssz == 1)
		v = *bt_breg(c, i, i->rm);
	else
		v = bt_rm_read(c, i, ssz);
	if (i->opc >= 0x1be)
		v = bt_sext(v, ssz);
	bt_reg_set(c, i, i->reg, i->osz, v);
}

/* 63 MOVSXD (64-bit mode) */
void
bt_x_movsxd(struct bt_cpu *c, const struct bt_insn *i)
{
	if (c->mode != BT_M64)
		bt_raise(c, EXC_UD, -1);	/* ARPL: not supported */
	bt_reg_set(c, i, i->reg, i->osz, bt_sext(bt_rm_read(c, i, 4), 4));
}

/* 8D LEA */
void
bt_x_lea(struct bt_cpu *c, const struct bt_insn *i)
{
	if (i->mod == 3)
		bt_raise(c, EXC_UD, -1);
	bt_reg_set(c, i, i->reg, i->osz, bt_ea(c, i));
}

/* 98 CBW/CWDE/CDQE */
void
bt_x_cbw(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned h = i->osz / 2;

	bt_reg_set(c, i, R_RAX, i->osz, bt_sext(bt_reg_get(c, i, R_RAX, h), h));
}

/* 99 CWD/CDQ/CQO */
void
bt_x_cwd(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned sz = i->osz;
	uint64_t a = bt_reg_get(c, i, R_RAX, sz);

	bt_reg_set(c, i, R_RDX, sz, (a >> (sz * 8 - 1)) & 1 ? ~0ull : 0);
}

/* 50-57 PUSH r */
void
bt_x_push(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned r = (i->opc & 7) | ((i->rex & 1) << 3);

	bt_push(c, i->osz, bt_reg_get(c, i, r, i->osz));
}

/* 58-5F POP r */
void
bt_x_pop(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned r = (i->opc & 7) | ((i->rex & 1) << 3);
	uint64_t v = bt_pop(c, i->osz);

	bt_reg_set(c, i, r, i->osz, v);
}

/* 68/6A PUSH imm */
void
bt_x_push_imm(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_push(c, i->osz, i->imm);
}

/* 8F /0 POP Ev */
void
bt_x_pop_rm(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t m = bt_sp_mask(c), sp = c->gpr[R_RSP];
	uint64_t v;

	if ((i->reg & 7) != 0)
		bt_raise(c, EXC_UD, -1);
	v = bt_read(c, bt_lin(c, SEG_SS, sp & m), i->osz);
	/* The address is computed with RSP already incremented. */
	c->gpr[R_RSP] = (sp & ~m) | ((sp + i->osz) & m);
	if (i->mod == 3) {
		bt_reg_set(c, i, i->rm, i->osz, v);
		return;
	}
	{
		uint64_t lin = bt_ea_lin(c, i);

		c->gpr[R_RSP] = sp;	/* restartable if the store faults */
		bt_ptr_rw(c, lin, i->osz);
		c->gpr[R_RSP] = (sp & ~m) | ((sp + i->osz) & m);
		bt_write(c, lin, i->osz, v);
	}
}

/* 60 PUSHA */
void
bt_x_pusha(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t sp = c->gpr[R_RSP];

	for (unsigned r = 0; r < 8; r++)
		bt_push(c, i->osz, r == R_RSP ? sp : c->gpr[r]);
}

/* 61 POPA */
void
bt_x_popa(struct bt_cpu *c, const struct bt_insn *i)
{
	for (int r = 7; r >= 0; r--) {
		uint64_t v = bt_pop(c, i->osz);

		if (r != R_RSP)
			bt_reg_set(c, i, (unsigned)r, i->osz, v);
	}
}

/* 0F 40-4F CMOVcc */
void
bt_x_cmov(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t v = bt_rm_read(c, i, i->osz);

	if (bt_cond(c, i->opc & 15))
		bt_reg_set(c, i, i->reg, i->osz, v);
	else if (i->osz == 4)
		c->gpr[i->reg] = (uint32_t)c->gpr[i->reg];
}

/* 0F 90-9F SETcc */
void
bt_x_setcc(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_rm_write(c, i, 1, bt_cond(c, i->opc & 15));
}

/* F5 CMC, F8 CLC, F9 STC, FC CLD, FD STD */
void
bt_x_flagop(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t f = bt_flags_get(c);

	switch (i->opc) {
	case 0xf5: f ^= RFLAGS_CF; break;
	case 0xf8: f &= ~RFLAGS_CF; break;
	case 0xf9: f |= RFLAGS_CF; break;
	case 0xfc: f &= ~RFLAGS_DF; break;
	default: f |= RFLAGS_DF; break;
	}
	c->flags = f;
}

/* 9F LAHF */
void
bt_x_lahf(struct bt_cpu *c, const struct bt_insn *i)
{
	*((uint8_t *)&c->gpr[R_RAX] + 1) = (uint8_t)(bt_flags_get(c) | 2);
}

/* 9E SAHF */
void
bt_x_sahf(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_flags_set(c, (c->gpr[R_RAX] >> 8) & 0xff, RFLAGS_CF | RFLAGS_PF |
	    RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF);
}

/* 9C PUSHF */
void
bt_x_pushf(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t f = bt_flags_get(c) & ~(RFLAGS_VM | RFLAGS_RF);

	bt_push(c, i->osz, f);
}

/* 9D POPF */
void
bt_x_popf(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t f = bt_pop(c, i->osz);
	uint64_t mask = CC_ARITH | RFLAGS_TF | RFLAGS_DF | RFLAGS_NT |
	    RFLAGS_AC | RFLAGS_ID;
	unsigned iopl = (c->flags & RFLAGS_IOPL) >> 12;

	if (c->cpl == 0)
		mask |= RFLAGS_IOPL;
	if (c->cpl <= iopl || !(c->cr0 & CR0_PE))
		mask |= RFLAGS_IF;
	if (i->osz == 2)
		mask &= 0xffff;
	bt_flags_set(c, f, mask);
}

/* NOP forms (0F 0D, 0F 18-1F hints, ENDBR). */
void
bt_x_nop(struct bt_cpu *c, const struct bt_insn *i)
{
}

/* D7 XLAT */
void
bt_x_xlat(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t ea = c->gpr[R_RBX] + (uint8_t)c->gpr[R_RAX];

	if (i->asz == 4)
		ea = (uint32_t)ea;
	else if (i->asz == 2)
		ea = (uint16_t)ea;
	*(uint8_t *)&c->gpr[R_RAX] = (uint8_t)bt_read(c, bt_lin(c, i->seg, ea),
	    1);
}

/* C8 ENTER */
void
bt_x_enter(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned sz = i->osz, level = i->imm2 & 31;
	uint64_t m = bt_sp_mask(c), oldsp = c->gpr[R_RSP];
	uint64_t bp = c->gpr[R_RBP], frame;

	bt_push(c, sz, bp);
	frame = c->gpr[R_RSP] & m;
	for (unsigned k = 1; k < level; k++) {
		bp = (bp - sz) & m;
		bt_push(c, sz, bt_read(c, bt_lin(c, SEG_SS, bp), sz));
	}
	if (level > 0)
		bt_push(c, sz, frame);
	{
		uint64_t nsp = ((c->gpr[R_RSP] & m) - (i->imm & 0xffff)) & m;

		/* Probe the new stack top so a fault leaves RSP intact. */
		if (i->imm & 0xffff)
			bt_ptr_rw(c, bt_lin(c, SEG_SS, nsp), 1);
		(void)oldsp;
		bt_reg_set(c, i, R_RBP, sz == 2 ? 2 : m == 0xffff ? 2 :
		    sz, frame);
		c->gpr[R_RSP] = (c->gpr[R_RSP] & ~m) | nsp;
	}
}

/* C9 LEAVE */
void
bt_x_leave(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t m = bt_sp_mask(c), bp = c->gpr[R_RBP] & m;
	uint64_t v = bt_read(c, bt_lin(c, SEG_SS, bp), i->osz);

	c->gpr[R_RSP] = (c->gpr[R_RSP] & ~m) | ((bp + i->osz) & m);
	bt_reg_set(c, i, R_RBP, i->osz, v);
}

/* 0F C3 MOVNTI */
void
bt_x_movnti(struct bt_cpu *c, const struct bt_insn *i)
{
	if (i->mod == 3)
		bt_raise(c, EXC_UD, -1);
	bt_rm_write(c, i, i->osz == 8 ? 8 : 4, bt_reg_get(c, i, i->reg,
	    i->osz == 8 ? 8 : 4));
}

static uint64_t
mov_bswap(uint64_t v, unsigned sz)
{
	return sz == 8 ? __builtin_bswap64(v) : sz == 4 ?
	    __builtin_bswap32((uint32_t)v) : __builtin_bswap16((uint16_t)v);
}

/* 0F 38 F0/F1 MOVBE: not advertised to bt guests, but KVM guests on
 * hosts that have it use it, and the KVM assist runs it here. */
void
bt_x_movbe(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t lin = bt_ea_lin(c, i);

	if (i->opc == 0x2f0)
		bt_reg_set(c, i, i->reg, i->osz,
		    mov_bswap(bt_read(c, lin, i->osz), i->osz));
	else
		bt_write(c, lin, i->osz,
		    mov_bswap(bt_reg_get(c, i, i->reg, i->osz), i->osz));
}
