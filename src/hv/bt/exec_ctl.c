/*
 * Control transfer: near and far jumps, calls and returns, loops, INT n,
 * IRET, HLT, UD.
 */
#include "hv/bt/bt_internal.h"

static uint64_t
ctl_target(struct bt_cpu *c, const struct bt_insn *i, uint64_t t)
{
	if (i->osz == 2)
		return t & 0xffff;
	if (c->mode != BT_M64)
		return t & 0xffffffff;
	return t;
}

/* 70-7F, 0F 80-8F Jcc */
void
bt_x_jcc(struct bt_cpu *c, const struct bt_insn *i)
{
	if (bt_cond(c, i->opc & 15))
		c->npc = ctl_target(c, i, c->npc + i->imm);
}

/* E9/EB JMP rel */
void
bt_x_jmp(struct bt_cpu *c, const struct bt_insn *i)
{
	c->npc = ctl_target(c, i, c->npc + i->imm);
}

/* E8 CALL rel */
void
bt_x_call(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_push(c, i->osz, c->npc);
	c->npc = ctl_target(c, i, c->npc + i->imm);
}

/* C2/C3 RET */
void
bt_x_ret(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t t = bt_pop(c, i->osz), m = bt_sp_mask(c);

	if (i->opc == 0xc2)
		c->gpr[R_RSP] = (c->gpr[R_RSP] & ~m) |
		    ((c->gpr[R_RSP] + (i->imm & 0xffff)) & m);
	c->npc = ctl_target(c, i, t);
}

/* E0-E3 LOOPNE/LOOPE/LOOP/JrCXZ */
void
bt_x_loop(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t m = bt_mask(i->asz), cx = c->gpr[R_RCX] & m;
	bool take;

	if (i->opc == 0xe3) {
		take = cx == 0;
	} else {
		cx = (cx - 1) & m;
		c->gpr[R_RCX] = (c->gpr[R_RCX] & ~m) | cx;
		if (i->asz == 4)
			c->gpr[R_RCX] = cx;
		take = cx != 0;
		if (i->opc == 0xe0)
			take = take && !bt_cond(c, 4);
		else if (i->opc == 0xe1)
			take = take && bt_cond(c, 4);
	}
	if (take)
		c->npc = ctl_target(c, i, c->npc + i->imm);
}

/* Far transfer to sel:off (JMP/CALL/RET within the same privilege, or
 * RET to an outer one).  No call gates or task switches. */
static void
ctl_far(struct bt_cpu *c, uint16_t sel, uint64_t off, unsigned osz,
    bool call)
{
	uint64_t d;
	unsigned dpl;

	if (!(c->cr0 & CR0_PE) || (c->flags & RFLAGS_VM)) {
		if (call) {
			bt_push(c, osz, c->seg[SEG_CS].sel);
			bt_push(c, osz, c->npc);
		}
		bt_load_seg(c, SEG_CS, sel);
		c->npc = osz == 2 ? off & 0xffff : (uint32_t)off;
		return;
	}
	if ((sel & ~3) == 0 || !bt_read_desc(c, sel, &d))
		bt_raise(c, EXC_GP, sel & ~3);
	if (!((d >> 44) & 1) || !((d >> 43) & 1))
		bt_raise(c, EXC_GP, sel & ~3);	/* gates: not supported */
	dpl = (d >> 45) & 3;
	if (((d >> 42) & 1) ? dpl > c->cpl : dpl != c->cpl)
		bt_raise(c, EXC_GP, sel & ~3);
	if (!((d >> 47) & 1))
		bt_raise(c, EXC_NP, sel & ~3);
	if (call) {
		bt_push(c, osz, c->seg[SEG_CS].sel);
		bt_push(c, osz, c->npc);
	}
	bt_seg_from_desc(&c->seg[SEG_CS], (sel & ~3) | c->cpl, d);
	c->seg[SEG_CS].dpl = c->cpl;
	bt_cpu_update_mode(c);
	c->npc = c->mode == BT_M64 ? off : osz == 2 ? off & 0xffff :
	    (uint32_t)off;
}

/* EA JMP ptr16:16/32 */
void
bt_x_jmpf(struct bt_cpu *c, const struct bt_insn *i)
{
	ctl_far(c, i->imm2, i->imm, i->osz, false);
}

/* 9A CALL ptr16:16/32 */
void
bt_x_callf(struct bt_cpu *c, const struct bt_insn *i)
{
	ctl_far(c, i->imm2, i->imm, i->osz, true);
}

/* CA/CB RETF */
void
bt_x_retf(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned osz = i->osz, adj = (i->opc == 0xca) ? i->imm & 0xffff : 0;
	uint64_t m = bt_sp_mask(c), sp = c->gpr[R_RSP] & m;
	uint64_t off = bt_read(c, bt_lin(c, SEG_SS, sp), osz);
	uint16_t sel = (uint16_t)bt_read(c, bt_lin(c, SEG_SS, (sp + osz) & m),
	    osz);

	if ((c->cr0 & CR0_PE) && !(c->flags & RFLAGS_VM) &&
	    (sel & 3) > c->cpl) {
		/* Return to an outer privilege level: SS:SP follow. */
		uint64_t nsp = bt_read(c, bt_lin(c, SEG_SS, (sp + 2 * osz +
		    adj) & m), osz);
		uint16_t nss = (uint16_t)bt_read(c, bt_lin(c, SEG_SS,
		    (sp + 3 * osz + adj) & m), osz);
		uint64_t d;

		if (!bt_read_desc(c, sel, &d) || !((d >> 43) & 1))
			bt_raise(c, EXC_GP, sel & ~3);
		bt_seg_from_desc(&c->seg[SEG_CS], sel, d);
		c->seg[SEG_CS].dpl = sel & 3;
		bt_cpu_update_mode(c);
		bt_load_seg(c, SEG_SS, nss);
		c->gpr[R_RSP] = c->mode == BT_M64 ? nsp : (uint32_t)nsp;
		c->npc = c->mode == BT_M64 ? off : (uint32_t)off;
		return;
	}
	c->gpr[R_RSP] = (c->gpr[R_RSP] & ~m) | ((sp + 2 * osz + adj) & m);
	{
		uint64_t saved = c->gpr[R_RSP];

		c->gpr[R_RSP] = (c->gpr[R_RSP] & ~m) | sp;
		ctl_far(c, sel, off, osz, false);
		c->gpr[R_RSP] = saved;
	}
}

/* FF: INC DEC CALL CALLF JMP JMPF PUSH */
void
bt_x_grp5(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned r = i->reg & 7;
	uint64_t t;

	switch (r) {
	case 0: case 1:
		bt_x_incdec(c, i);
		return;
	case 2:
		t = bt_rm_read(c, i, i->osz);
		bt_push(c, i->osz, c->npc);
		c->npc = ctl_target(c, i, t);
		return;
	case 4:
		c->npc = ctl_target(c, i, bt_rm_read(c, i, i->osz));
		return;
	case 3: case 5: {
		uint64_t lin, off;
		uint16_t sel;

		if (i->mod == 3)
			bt_raise(c, EXC_UD, -1);
		lin = bt_ea_lin(c, i);
		off = bt_read(c, lin, i->osz);
		sel = (uint16_t)bt_read(c, (lin + i->osz) & c->linmask, 2);
		ctl_far(c, sel, off, i->osz, r == 3);
		return;
	}
	case 6:
		bt_push(c, i->osz, bt_rm_read(c, i, i->osz));
		return;
	default:
		bt_raise(c, EXC_UD, -1);
	}
}

/* CC INT3, CD INT n, CE INTO, F1 INT1 */
void
bt_x_int(struct bt_cpu *c, const struct bt_insn *i)
{
	switch (i->opc) {
	case 0xcc:
		bt_deliver(c, EXC_BP, -1, true, c->npc);
		break;
	case 0xcd:
		if (!(c->cr0 & CR0_PE) || !(c->flags & RFLAGS_VM) ||
		    ((c->flags & RFLAGS_IOPL) >> 12) == 3)
			bt_deliver(c, (int)(i->imm & 0xff), -1, true, c->npc);
		else
			bt_raise(c, EXC_GP, 0);
		break;
	case 0xce:
		if (!bt_cond(c, 0))
			return;
		bt_deliver(c, EXC_OF, -1, true, c->npc);
		break;
	default:
		bt_deliver(c, EXC_DB, -1, false, c->npc);
		break;
	}
	c->npc = c->rip;
}

/* CF IRET */
void
bt_x_iret(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_iret(c, i->osz);
}

/* Invalid opcodes; also the >15-byte form (#GP). */
void
bt_x_ud(struct bt_cpu *c, const struct bt_insn *i)
{
	if (i->opc == 0xffff)
		bt_raise(c, EXC_GP, 0);
	bt_raise(c, EXC_UD, -1);
}

/* F4 HLT: the run loop waits for an interrupt. */
void
bt_x_hlt(struct bt_cpu *c, const struct bt_insn *i)
{
	if (c->cpl != 0)
		bt_raise(c, EXC_GP, 0);
	c->halted = 1;
	c->evpend = 1;
	c->brk = 1;
}
