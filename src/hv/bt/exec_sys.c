/*
 * System instructions: segment loads, descriptor tables, control and
 * debug registers, MSRs, CPUID, TSC, SYSCALL/SYSRET, CLI/STI, fences and
 * cache control.
 */
#include "hv/bt/bt_internal.h"

#include "devices/irqchip.h"
#include "hv/vm.h"

static void
sys_cpl0(struct bt_cpu *c)
{
	if (c->cpl != 0)
		bt_raise(c, EXC_GP, 0);
}

void
bt_set_cr0(struct bt_cpu *c, uint64_t v)
{
	uint64_t old = c->cr0;

	v |= CR0_ET;
	if ((v >> 32) || ((v & CR0_PG) && !(v & CR0_PE)))
		bt_raise(c, EXC_GP, 0);
	if ((v & CR0_PG) && !(old & CR0_PG) && (c->efer & EFER_LME)) {
		if (!(c->cr4 & CR4_PAE))
			bt_raise(c, EXC_GP, 0);
		c->efer |= EFER_LMA;
	}
	if (!(v & CR0_PG) && (old & CR0_PG))
		c->efer &= ~EFER_LMA;
	c->cr0 = v;
	if ((old ^ v) & (CR0_PG | CR0_WP | CR0_PE))
		bt_tlb_flush(c, true);
	bt_cpu_update_mode(c);
	c->brk = 1;
}

void
bt_set_cr3(struct bt_cpu *c, uint64_t v)
{
	c->cr3 = v;
	bt_tlb_flush(c, false);
	c->brk = 1;
}

void
bt_set_cr4(struct bt_cpu *c, uint64_t v)
{
	/* Bits we let the guest set: what CPUID advertises. */
	const uint64_t ok = 0x1 | 0x2 | 0x4 | 0x8 | CR4_PSE | CR4_PAE |
	    (1u << 6) | CR4_PGE | (1u << 8) | CR4_OSFXSR | CR4_OSXMMEXCPT;
	uint64_t old = c->cr4;

	if (v & ~ok)
		bt_raise(c, EXC_GP, 0);
	if ((c->efer & EFER_LMA) && !(v & CR4_PAE))
		bt_raise(c, EXC_GP, 0);
	c->cr4 = v;
	if ((old ^ v) & (CR4_PGE | CR4_PAE | CR4_PSE))
		bt_tlb_flush(c, true);
	c->brk = 1;
}

/* 8C MOV Ev,Sreg / 8E MOV Sreg,Ew */
void
bt_x_movseg(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned s = i->reg & 7;

	if (s > SEG_GS)
		bt_raise(c, EXC_UD, -1);
	if (i->opc == 0x8c) {
		if (i->mod == 3)
			bt_reg_set(c, i, i->rm, i->osz, c->seg[s].sel);
		else
			bt_rm_write(c, i, 2, c->seg[s].sel);
		return;
	}
	if (s == SEG_CS)
		bt_raise(c, EXC_UD, -1);
	bt_load_seg(c, (int)s, (uint16_t)bt_rm_read(c, i, 2));
	if (s == SEG_SS)
		c->shadow = 1;
}

static int
sys_seg_of(unsigned opc)
{
	switch (opc) {
	case 0x06: case 0x07: return SEG_ES;
	case 0x0e: return SEG_CS;
	case 0x16: case 0x17: return SEG_SS;
	case 0x1e: case 0x1f: return SEG_DS;
	case 0x1a0: case 0x1a1: return SEG_FS;
	default: return SEG_GS;
	}
}

/* PUSH ES/CS/SS/DS/FS/GS */
void
bt_x_pushseg(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_push(c, i->osz, c->seg[sys_seg_of(i->opc)].sel);
}

/* POP ES/SS/DS/FS/GS */
void
bt_x_popseg(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t m = bt_sp_mask(c), sp = c->gpr[R_RSP] & m;
	uint16_t sel = (uint16_t)bt_read(c, bt_lin(c, SEG_SS, sp), 2);
	int s = sys_seg_of(i->opc);

	bt_load_seg(c, s, sel);
	c->gpr[R_RSP] = (c->gpr[R_RSP] & ~m) | ((sp + i->osz) & m);
	if (s == SEG_SS)
		c->shadow = 1;
}

/* C4 LES, C5 LDS, 0F B2 LSS, 0F B4 LFS, 0F B5 LGS */
void
bt_x_lxs(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t lin, off;
	uint16_t sel;
	int s;

	if (i->mod == 3)
		bt_raise(c, EXC_UD, -1);
	switch (i->opc) {
	case 0xc4: s = SEG_ES; break;
	case 0xc5: s = SEG_DS; break;
	case 0x1b2: s = SEG_SS; break;
	case 0x1b4: s = SEG_FS; break;
	default: s = SEG_GS; break;
	}
	lin = bt_ea_lin(c, i);
	off = bt_read(c, lin, i->osz);
	sel = (uint16_t)bt_read(c, (lin + i->osz) & c->linmask, 2);
	bt_load_seg(c, s, sel);
	bt_reg_set(c, i, i->reg, i->osz, off);
}

/* 0F 00: SLDT STR LLDT LTR VERR VERW */
void
bt_x_grp6(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned r = i->reg & 7;
	uint16_t sel;
	uint64_t d, hi = 0;

	if (!(c->cr0 & CR0_PE))
		bt_raise(c, EXC_UD, -1);
	switch (r) {
	case 0: case 1:
		if (i->mod == 3)
			bt_reg_set(c, i, i->rm, i->osz,
			    c->seg[r == 0 ? SEG_LDTR : SEG_TR].sel);
		else
			bt_rm_write(c, i, 2,
			    c->seg[r == 0 ? SEG_LDTR : SEG_TR].sel);
		return;
	case 2: case 3:
		sys_cpl0(c);
		sel = (uint16_t)bt_rm_read(c, i, 2);
		if ((sel & ~3) == 0 && r == 2) {
			memset(&c->seg[SEG_LDTR], 0, sizeof(struct cpu_seg));
			c->seg[SEG_LDTR].unusable = 1;
			return;
		}
		if ((sel & 4) || !bt_read_desc(c, sel, &d))
			bt_raise(c, EXC_GP, sel & ~3);
		if ((d >> 44) & 1)
			bt_raise(c, EXC_GP, sel & ~3);
		if (r == 2 ? ((d >> 40) & 0xf) != 2 :
		    (((d >> 40) & 0xf) != 9 && ((d >> 40) & 0xf) != 1))
			bt_raise(c, EXC_GP, sel & ~3);
		if (!((d >> 47) & 1))
			bt_raise(c, EXC_NP, sel & ~3);
		if (c->efer & EFER_LMA)
			hi = bt_sys_read(c, c->gdt.base + (sel & ~7) + 8, 8);
		{
			struct cpu_seg *s = &c->seg[r == 2 ? SEG_LDTR : SEG_TR];

			bt_seg_from_desc(s, sel, d);
			s->base |= (hi & 0xffffffff) << 32;
			if (r == 3) {
				/* Mark the TSS busy. */
				bt_sys_write(c, c->gdt.base + (sel & ~7) + 5, 1,
				    ((d >> 40) & 0xff) | 2);
				s->type |= 2;
			}
		}
		return;
	default: {
		bool ok = false;

		sel = (uint16_t)bt_rm_read(c, i, 2);
		if ((sel & ~3) && bt_read_desc(c, sel, &d) && ((d >> 44) & 1)) {
			unsigned dpl = (d >> 45) & 3;
			bool code = (d >> 43) & 1, conf = code && ((d >> 42) & 1);

			if (conf || (dpl >= c->cpl && dpl >= (sel & 3u)))
				ok = r == 4 ? (!code || ((d >> 41) & 1)) :
				    (!code && ((d >> 41) & 1));
		}
		bt_flags_set(c, ok ? RFLAGS_ZF : 0, RFLAGS_ZF);
		return;
	}
	}
}

static void
sys_grp7_reg(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned modrm = 0xc0 | (i->reg & 7) << 3 | (i->rm & 7);

	switch (modrm) {
	case 0xd0:	/* XGETBV */
		if (!(c->cr4 & (1u << 18)) || (uint32_t)c->gpr[R_RCX] != 0)
			bt_raise(c, (c->cr4 & (1u << 18)) ? EXC_GP : EXC_UD,
			    (c->cr4 & (1u << 18)) ? 0 : -1);
		c->gpr[R_RAX] = (uint32_t)c->fpu.xcr0;
		c->gpr[R_RDX] = c->fpu.xcr0 >> 32;
		return;
	case 0xd1:	/* XSETBV */
		if (!(c->cr4 & (1u << 18)))
			bt_raise(c, EXC_UD, -1);
		sys_cpl0(c);
		c->fpu.xcr0 = (uint32_t)c->gpr[R_RAX] |
		    (c->gpr[R_RDX] << 32);
		return;
	case 0xf8:	/* SWAPGS */
		if (c->mode != BT_M64)
			bt_raise(c, EXC_UD, -1);
		sys_cpl0(c);
		{
			uint64_t t = c->seg[SEG_GS].base;

			c->seg[SEG_GS].base = c->msr.kernel_gs_base;
			c->msr.kernel_gs_base = t;
			c->segbase[SEG_GS] = c->seg[SEG_GS].base;
		}
		return;
	case 0xca:	/* CLAC, STAC: for KVM guests with SMAP (assist) */
	case 0xcb:
		sys_cpl0(c);
		bt_flags_set(c, modrm == 0xcb ? RFLAGS_AC : 0, RFLAGS_AC);
		return;
	case 0xf9:	/* RDTSCP */
		{
			uint64_t t = bt_tsc(c);

			c->gpr[R_RAX] = (uint32_t)t;
			c->gpr[R_RDX] = t >> 32;
			c->gpr[R_RCX] = (uint32_t)c->msr.tsc_aux;
		}
		return;
	}
	if ((i->reg & 7) == 4) {	/* SMSW r */
		bt_reg_set(c, i, i->rm, i->osz, c->cr0 & bt_mask(i->osz));
		return;
	}
	if ((i->reg & 7) == 6) {	/* LMSW r */
		sys_cpl0(c);
		bt_set_cr0(c, (c->cr0 & ~0xeull) |
		    (bt_reg_get(c, i, i->rm, 2) & 0xf) | (c->cr0 & CR0_PE));
		return;
	}
	bt_raise(c, EXC_UD, -1);
}

/* 0F 01: SGDT SIDT LGDT LIDT SMSW LMSW INVLPG and the register forms */
void
bt_x_grp7(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned r = i->reg & 7;
	uint64_t lin;
	struct cpu_dtable *t;
	bool m64 = c->mode == BT_M64;

	if (i->mod == 3) {
		sys_grp7_reg(c, i);
		return;
	}
	lin = bt_ea_lin(c, i);
	t = (r & 1) ? &c->idt : &c->gdt;
	switch (r) {
	case 0: case 1:
		bt_write(c, lin, 2, t->limit);
		bt_write(c, (lin + 2) & c->linmask, m64 ? 8 : 4,
		    m64 ? t->base : (uint32_t)t->base);
		return;
	case 2: case 3: {
		uint16_t limit;
		uint64_t base;

		sys_cpl0(c);
		limit = (uint16_t)bt_read(c, lin, 2);
		base = bt_read(c, (lin + 2) & c->linmask, m64 ? 8 : 4);
		if (!m64 && i->osz == 2)
			base &= 0xffffff;
		t->limit = limit;
		t->base = base;
		return;
	}
	case 4:
		bt_write(c, lin, 2, c->cr0 & 0xffff);
		return;
	case 6:
		sys_cpl0(c);
		bt_set_cr0(c, (c->cr0 & ~0xeull) | (bt_read(c, lin, 2) & 0xf) |
		    (c->cr0 & CR0_PE));
		return;
	case 7:
		sys_cpl0(c);
		bt_tlb_flush_page(c, lin);
		return;
	default:
		bt_raise(c, EXC_UD, -1);
	}
}

/* 0F 20/22 MOV r,CRn / MOV CRn,r */
void
bt_x_movcr(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned sz = c->mode == BT_M64 ? 8 : 4, n = i->reg;
	uint64_t v;

	sys_cpl0(c);
	if (i->opc == 0x120) {
		switch (n) {
		case 0: v = c->cr0; break;
		case 2: v = c->cr2; break;
		case 3: v = c->cr3; break;
		case 4: v = c->cr4; break;
		case 8: v = c->assist ? c->cr8 : irqchip_get_tpr(c->vcpu); break;
		default: bt_raise(c, EXC_UD, -1);
		}
		bt_reg_set(c, i, i->rm, sz, v);
		return;
	}
	v = bt_reg_get(c, i, i->rm, sz);
	switch (n) {
	case 0: bt_set_cr0(c, v); break;
	case 2: c->cr2 = v; break;
	case 3: bt_set_cr3(c, v); break;
	case 4: bt_set_cr4(c, v); break;
	case 8:
		if (c->assist)
			c->cr8 = v & 15;
		else
			irqchip_set_tpr(c->vcpu, v & 15);
		c->brk = 1;
		break;
	default: bt_raise(c, EXC_UD, -1);
	}
}

/* 0F 21/23 MOV r,DRn / MOV DRn,r (no breakpoints are armed) */
void
bt_x_movdr(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned sz = c->mode == BT_M64 ? 8 : 4, n = i->reg & 7;

	sys_cpl0(c);
	if (n == 4 || n == 5)
		n += 2;
	if (i->opc == 0x121)
		bt_reg_set(c, i, i->rm, sz, c->dr[n]);
	else
		c->dr[n] = bt_reg_get(c, i, i->rm, sz);
}

/* 0F 06 CLTS */
void
bt_x_clts(struct bt_cpu *c, const struct bt_insn *i)
{
	sys_cpl0(c);
	c->cr0 &= ~CR0_TS;
}

/* 0F 32 RDMSR */
void
bt_x_rdmsr(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t v;

	sys_cpl0(c);
	if (bt_msr_read(c, (uint32_t)c->gpr[R_RCX], &v) != 0)
		bt_raise(c, EXC_GP, 0);
	c->gpr[R_RAX] = (uint32_t)v;
	c->gpr[R_RDX] = v >> 32;
}

/* 0F 30 WRMSR */
void
bt_x_wrmsr(struct bt_cpu *c, const struct bt_insn *i)
{
	sys_cpl0(c);
	if (bt_msr_write(c, (uint32_t)c->gpr[R_RCX],
	    (uint32_t)c->gpr[R_RAX] | (c->gpr[R_RDX] << 32)) != 0)
		bt_raise(c, EXC_GP, 0);
	c->brk = 1;
}

/* 0F 31 RDTSC */
void
bt_x_rdtsc(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t t = bt_tsc(c);

	c->gpr[R_RAX] = (uint32_t)t;
	c->gpr[R_RDX] = t >> 32;
}

/* 0F A2 CPUID */
void
bt_x_cpuid(struct bt_cpu *c, const struct bt_insn *i)
{
	uint32_t r[4];

	bt_cpuid(c, (uint32_t)c->gpr[R_RAX], (uint32_t)c->gpr[R_RCX], r);
	c->gpr[R_RAX] = r[0];
	c->gpr[R_RBX] = r[1];
	c->gpr[R_RCX] = r[2];
	c->gpr[R_RDX] = r[3];
}

static void
sys_flat(struct cpu_seg *s, uint16_t sel, bool code, bool l, unsigned dpl)
{
	*s = (struct cpu_seg){ .base = 0, .limit = 0xffffffff, .sel = sel,
	    .type = code ? 0xb : 0x3, .s = 1, .dpl = (uint8_t)dpl,
	    .present = 1, .l = l, .db = !l, .g = 1 };
}

/* 0F 05 SYSCALL */
void
bt_x_syscall(struct bt_cpu *c, const struct bt_insn *i)
{
	uint16_t sel = (uint16_t)(c->msr.star >> 32);
	uint64_t f = bt_flags_get(c);

	if (!(c->efer & EFER_SCE) || !(c->efer & EFER_LMA))
		bt_raise(c, EXC_UD, -1);
	c->gpr[R_RCX] = c->npc;
	c->gpr[R_R11] = f & ~RFLAGS_RF;
	sys_flat(&c->seg[SEG_CS], sel & ~3, true, true, 0);
	sys_flat(&c->seg[SEG_SS], (sel + 8) & ~3, false, false, 0);
	c->flags = (f & ~c->msr.sfmask & ~RFLAGS_RF) | RFLAGS_FIXED;
	c->npc = c->mode == BT_M64 ? c->msr.lstar : c->msr.cstar;
	bt_cpu_update_mode(c);
}

/* 0F 07 SYSRET */
void
bt_x_sysret(struct bt_cpu *c, const struct bt_insn *i)
{
	uint16_t sel = (uint16_t)(c->msr.star >> 48);
	bool q = i->rex & 8;
	uint64_t rip = c->gpr[R_RCX];

	if (!(c->efer & EFER_SCE) || !(c->efer & EFER_LMA))
		bt_raise(c, EXC_UD, -1);
	sys_cpl0(c);
	if (q && (uint64_t)((int64_t)(rip << 16) >> 16) != rip)
		bt_raise(c, EXC_GP, 0);
	c->flags = (c->gpr[R_R11] & 0x3c7fd7) | RFLAGS_FIXED;
	c->cc_op = CC_EAGER;
	if (q)
		sys_flat(&c->seg[SEG_CS], (sel + 16) | 3, true, true, 3);
	else
		sys_flat(&c->seg[SEG_CS], sel | 3, true, false, 3);
	sys_flat(&c->seg[SEG_SS], (sel + 8) | 3, false, false, 3);
	c->npc = q ? rip : (uint32_t)rip;
	bt_cpu_update_mode(c);
}

/* SYSENTER/SYSEXIT: SEP is not advertised. */
void
bt_x_sysenter(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_raise(c, EXC_UD, -1);
}

void
bt_x_sysexit(struct bt_cpu *c, const struct bt_insn *i)
{
	bt_raise(c, EXC_UD, -1);
}

/* Descriptor visible to LAR/LSL at the current privilege? */
static bool
sys_lxx_desc(struct bt_cpu *c, uint16_t sel, uint64_t *d, bool lsl)
{
	unsigned type, dpl;

	if ((sel & ~3) == 0 || !bt_read_desc(c, sel, d))
		return false;
	type = (*d >> 40) & 0xf;
	dpl = (*d >> 45) & 3;
	if (!((*d >> 44) & 1)) {
		/* System: LDT and TSS types (and gates for LAR). */
		if (!(type == 1 || type == 2 || type == 3 || type == 9 ||
		    type == 11 || (!lsl && (type == 4 || type == 12))))
			return false;
	} else if ((type & 0xc) == 0xc) {
		return true;	/* conforming code */
	}
	return dpl >= c->cpl && dpl >= (sel & 3u);
}

/* 0F 02 LAR */
void
bt_x_lar(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t d;
	bool ok = sys_lxx_desc(c, (uint16_t)bt_rm_read(c, i, 2), &d, false);

	if (ok)
		bt_reg_set(c, i, i->reg, i->osz, (d >> 32) & 0x00f0ff00);
	bt_flags_set(c, ok ? RFLAGS_ZF : 0, RFLAGS_ZF);
}

/* 0F 03 LSL */
void
bt_x_lsl(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t d;
	bool ok = sys_lxx_desc(c, (uint16_t)bt_rm_read(c, i, 2), &d, true);

	if (ok) {
		uint32_t lim = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));

		if ((d >> 55) & 1)
			lim = (lim << 12) | 0xfff;
		bt_reg_set(c, i, i->reg, i->osz, lim);
	}
	bt_flags_set(c, ok ? RFLAGS_ZF : 0, RFLAGS_ZF);
}

static void
sys_if_check(struct bt_cpu *c)
{
	if ((c->cr0 & CR0_PE) && c->cpl > ((c->flags & RFLAGS_IOPL) >> 12))
		bt_raise(c, EXC_GP, 0);
}

/* FA CLI */
void
bt_x_cli(struct bt_cpu *c, const struct bt_insn *i)
{
	sys_if_check(c);
	c->flags &= ~RFLAGS_IF;
}

/* FB STI: interrupts stay blocked for one more instruction. */
void
bt_x_sti(struct bt_cpu *c, const struct bt_insn *i)
{
	sys_if_check(c);
	if (!(c->flags & RFLAGS_IF))	/* the kind matters to KVM */
		c->shadow = CPU_SHADOW_STI;
	c->flags |= RFLAGS_IF;
}

/* STI with the instruction it shields in its block, which ends after
 * that one (tc_translate): interrupts are looked at between blocks
 * only, so no shadow is needed. */
void
bt_x_sti_paired(struct bt_cpu *c, const struct bt_insn *i)
{
	sys_if_check(c);
	c->flags |= RFLAGS_IF;
}

/* XSAVE/XRSTOR of the x87 and SSE components only (used by the KVM
 * assist path; XSAVE is not advertised to bt guests). */
static void
sys_xsave(struct bt_cpu *c, uint64_t lin, bool restore)
{
	uint64_t rfbm = ((uint32_t)c->gpr[R_RAX] | (c->gpr[R_RDX] << 32)) &
	    c->fpu.xcr0 & 3;
	uint8_t *f = c->fpu.fxsave;

	if (lin & 63)
		bt_raise(c, EXC_GP, 0);
	if (!restore) {
		uint64_t bv = bt_read(c, lin + 512, 8);

		for (unsigned k = 0; k < 512; k += 8) {
			bool x87 = k < 160 && !(k >= 24 && k < 32);
			bool sse = (k >= 24 && k < 32) || k >= 160;

			if ((x87 && (rfbm & 1)) || (sse && (rfbm & 2)))
				bt_write(c, lin + k, 8, bt_load_host(f + k, 8));
		}
		bt_write(c, lin + 512, 8, (bv & ~3ull) | rfbm);
		return;
	}
	{
		uint64_t bv = bt_read(c, lin + 512, 8);
		uint8_t img[512];

		for (unsigned k = 0; k < 512; k += 8)
			bt_store_host(img + k, 8, bt_read(c, lin + k, 8));
		if (rfbm & 1) {
			if (bv & 1) {
				memcpy(f, img, 24);
				memcpy(f + 32, img + 32, 128);
			} else {
				memset(f, 0, 24);
				memset(f + 32, 0, 128);
				f[0] = 0x7f;
				f[1] = 0x03;
			}
		}
		if (rfbm & 2) {
			if (bv & 2) {
				memcpy(f + 24, img + 24, 8);
				memcpy(f + 160, img + 160, 256);
			} else {
				memset(f + 160, 0, 256);
			}
		}
	}
}

/* 0F AE register forms (fences) and XSAVE/XRSTOR/CLFLUSH */
void
bt_x_grp15(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned r = i->reg & 7;

	if (i->mod == 3) {
		if (r >= 5 && !i->rep) {
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			return;
		}
		bt_raise(c, EXC_UD, -1);	/* RD/WR FS/GS BASE hidden */
	}
	switch (r) {
	case 4:
		if (!(c->cr4 & (1u << 18)))
			bt_raise(c, EXC_UD, -1);
		sys_xsave(c, bt_ea_lin(c, i), false);
		return;
	case 5:
		if (!(c->cr4 & (1u << 18)))
			bt_raise(c, EXC_UD, -1);
		sys_xsave(c, bt_ea_lin(c, i), true);
		return;
	case 6: case 7:
		/* CLWB / CLFLUSH(OPT) / XSAVEOPT: the fault check only. */
		if (r == 6 && !i->p66) {
			if (!(c->cr4 & (1u << 18)))
				bt_raise(c, EXC_UD, -1);
			sys_xsave(c, bt_ea_lin(c, i), false);
			return;
		}
		bt_read(c, bt_ea_lin(c, i), 1);
		return;
	default:
		bt_raise(c, EXC_UD, -1);
	}
}

/* 0F 08 INVD, 0F 09 WBINVD */
void
bt_x_invd(struct bt_cpu *c, const struct bt_insn *i)
{
	sys_cpl0(c);
}
