/*
 * Exceptions, interrupts and IRET; segment descriptors.  A fault is
 * raised by longjmp back to the run loop with c->rip still at the
 * faulting instruction; the loop then delivers it through the IDT as the
 * architecture says for the current mode (real-mode IVT, 32-bit gates
 * with a TSS stack switch, or 64-bit gates with IST).
 */
#include "hv/bt/bt_internal.h"

#include "util/log.h"

/* Pending fault, filled by bt_raise() for the run loop. */
void
bt_raise(struct bt_cpu *c, int vec, int err)
{
	c->pend_vec = vec;
	c->pend_err = err;
	c->brk = 0;
	siglongjmp(c->jb, BT_JMP_FAULT);
}

void
bt_raise_pf(struct bt_cpu *c, uint64_t lin, uint32_t err)
{
	c->cr2 = lin;
	bt_raise(c, EXC_PF, (int)err);
}

bool
bt_read_desc(struct bt_cpu *c, uint16_t sel, uint64_t *d)
{
	uint64_t base;
	uint32_t limit;

	if (sel & 4) {
		if (c->seg[SEG_LDTR].unusable || !c->seg[SEG_LDTR].present)
			return false;
		base = c->seg[SEG_LDTR].base;
		limit = c->seg[SEG_LDTR].limit;
	} else {
		base = c->gdt.base;
		limit = c->gdt.limit;
	}
	if ((uint32_t)(sel & ~7) + 7 > limit)
		return false;
	*d = bt_sys_read(c, base + (sel & ~7), 8);
	return true;
}

void
bt_seg_from_desc(struct cpu_seg *s, uint16_t sel, uint64_t d)
{
	uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));

	s->sel = sel;
	s->base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
	s->g = (d >> 55) & 1;
	s->limit = s->g ? (limit << 12) | 0xfff : limit;
	s->type = (d >> 40) & 0xf;
	s->s = (d >> 44) & 1;
	s->dpl = (d >> 45) & 3;
	s->present = (d >> 47) & 1;
	s->avl = (d >> 52) & 1;
	s->l = (d >> 53) & 1;
	s->db = (d >> 54) & 1;
	s->unusable = 0;
}

static void
except_set_accessed(struct bt_cpu *c, uint16_t sel, uint64_t d)
{
	uint64_t base = (sel & 4) ? c->seg[SEG_LDTR].base : c->gdt.base;

	if (!(d & (1ull << 40)))
		bt_sys_write(c, base + (sel & ~7) + 5, 1,
		    ((d >> 40) & 0xff) | 1);
}

void
bt_load_seg(struct bt_cpu *c, int seg, uint16_t sel)
{
	struct cpu_seg *s = &c->seg[seg];
	uint64_t d;
	unsigned dpl, rpl = sel & 3;

	if (!(c->cr0 & CR0_PE) || (c->flags & RFLAGS_VM)) {
		s->sel = sel;
		s->base = (uint64_t)sel << 4;
		s->unusable = 0;
		s->present = 1;
		if (seg == SEG_CS) {
			s->db = 0;
			s->l = 0;
		}
		bt_cpu_update_mode(c);
		return;
	}
	if ((sel & ~3) == 0) {
		if (seg == SEG_SS && (c->mode != BT_M64 || c->cpl == 3))
			bt_raise(c, EXC_GP, 0);
		memset(s, 0, sizeof(*s));
		s->sel = sel;
		s->unusable = 1;
		if (seg == SEG_SS)
			s->dpl = c->cpl;
		bt_cpu_update_mode(c);
		return;
	}
	if (!bt_read_desc(c, sel, &d))
		bt_raise(c, EXC_GP, sel & ~3);
	dpl = (d >> 45) & 3;
	if (!((d >> 44) & 1))
		bt_raise(c, EXC_GP, sel & ~3);
	if (seg == SEG_SS) {
		/* Writable data, RPL = DPL = CPL. */
		if ((d & (1ull << 43)) || !(d & (1ull << 41)) ||
		    rpl != c->cpl || dpl != c->cpl)
			bt_raise(c, EXC_GP, sel & ~3);
		if (!((d >> 47) & 1))
			bt_raise(c, EXC_SS, sel & ~3);
	} else {
		/* Data, or readable code. */
		if ((d & (1ull << 43)) && !(d & (1ull << 41)))
			bt_raise(c, EXC_GP, sel & ~3);
		if (!((d >> 47) & 1))
			bt_raise(c, EXC_NP, sel & ~3);
	}
	except_set_accessed(c, sel, d);
	bt_seg_from_desc(s, sel, d | (1ull << 40));
	bt_cpu_update_mode(c);
}

/* Stack used while delivering: a local SP committed at the end. */
struct dstack {
	uint64_t sp, base, mask;
};

static void
dpush(struct bt_cpu *c, struct dstack *s, unsigned sz, uint64_t v)
{
	s->sp = (s->sp - sz) & s->mask;
	bt_sys_write(c, s->base + s->sp, sz, v);
}

static void
except_real(struct bt_cpu *c, int vec)
{
	uint64_t ent, flags = bt_flags_get(c);
	struct dstack s = { c->gpr[R_RSP], c->seg[SEG_SS].base, 0xffff };

	if ((unsigned)vec * 4 + 3 > c->idt.limit)
		bt_raise(c, EXC_GP, vec * 8 + 2);
	ent = bt_sys_read(c, c->idt.base + vec * 4, 4);
	dpush(c, &s, 2, flags);
	dpush(c, &s, 2, c->seg[SEG_CS].sel);
	dpush(c, &s, 2, c->rip);
	c->gpr[R_RSP] = (c->gpr[R_RSP] & ~0xffffull) | s.sp;
	c->flags &= ~(RFLAGS_IF | RFLAGS_TF | RFLAGS_AC | RFLAGS_RF);
	bt_load_seg(c, SEG_CS, (uint16_t)(ent >> 16));
	c->rip = ent & 0xffff;
}

/* Load CS from a descriptor at privilege cpl (call gates excluded). */
static void
except_set_cs(struct bt_cpu *c, uint16_t sel, uint64_t d, unsigned cpl)
{
	bt_seg_from_desc(&c->seg[SEG_CS], (sel & ~3) | cpl, d);
	c->seg[SEG_CS].dpl = cpl;
	bt_cpu_update_mode(c);
}

static uint64_t
except_tss_sp(struct bt_cpu *c, unsigned off, unsigned sz)
{
	if (off + sz - 1 > c->seg[SEG_TR].limit)
		bt_raise(c, EXC_TS, c->seg[SEG_TR].sel & ~3);
	return bt_sys_read(c, c->seg[SEG_TR].base + off, sz);
}

/*
 * A fault-class exception (not #DB, NMI, #BP, #OF, #DF, #MC): the RFLAGS
 * image the handler gets has RF set, so that returning to the faulting
 * instruction does not hit an instruction breakpoint there again (SDM
 * vol. 3, 17.3.1.1).  External interrupts never use vectors below 32 in
 * protected mode.
 */
static bool
except_is_fault(int vec)
{
	return vec < 32 && vec != EXC_DB && vec != EXC_NMI && vec != EXC_BP &&
	    vec != EXC_OF && vec != EXC_DF && vec != 18 /* #MC */;
}

static void
except_prot(struct bt_cpu *c, int vec, int err, bool soft)
{
	bool lm = c->efer & EFER_LMA;
	unsigned gsz = lm ? 16 : 8, type, dpl, newcpl, psz;
	uint64_t lo, hi = 0, target, cd, flags = bt_flags_get(c);
	uint16_t sel;
	struct dstack s;
	uint16_t oldss = c->seg[SEG_SS].sel, oldcs = c->seg[SEG_CS].sel;
	uint64_t oldsp = c->gpr[R_RSP];
	bool stack_switch;
	unsigned ist;

	if (!soft && except_is_fault(vec))
		flags |= RFLAGS_RF;
	if ((unsigned)vec * gsz + gsz - 1 > c->idt.limit)
		bt_raise(c, EXC_GP, vec * 8 + 2);
	lo = bt_sys_read(c, c->idt.base + vec * gsz, 8);
	if (lm)
		hi = bt_sys_read(c, c->idt.base + vec * gsz + 8, 8);
	type = (lo >> 40) & 0x1f;
	dpl = (lo >> 45) & 3;
	if (lm ? (type != 0xe && type != 0xf) :
	    (type != 0xe && type != 0xf && type != 0x6 && type != 0x7))
		bt_raise(c, EXC_GP, vec * 8 + 2);
	if (soft && dpl < c->cpl)
		bt_raise(c, EXC_GP, vec * 8 + 2);
	if (!((lo >> 47) & 1))
		bt_raise(c, EXC_NP, vec * 8 + 2);
	sel = (uint16_t)(lo >> 16);
	target = (lo & 0xffff) | ((lo >> 32) & 0xffff0000);
	if (lm)
		target |= hi << 32;
	if ((sel & ~3) == 0 || !bt_read_desc(c, sel, &cd))
		bt_raise(c, EXC_GP, sel & ~3);
	if (!((cd >> 43) & 1) || !((cd >> 44) & 1))
		bt_raise(c, EXC_GP, sel & ~3);
	newcpl = (cd >> 42) & 1 ? c->cpl : (cd >> 45) & 3;
	if (!((cd >> 47) & 1))
		bt_raise(c, EXC_NP, sel & ~3);
	stack_switch = newcpl < c->cpl;
	ist = lm ? (lo >> 32) & 7 : 0;
	psz = lm ? 8 : (type & 8) ? 4 : 2;
	if (lm) {
		s.base = 0;
		s.mask = ~0ull;
		if (ist)
			s.sp = except_tss_sp(c, 0x24 + (ist - 1) * 8, 8);
		else if (stack_switch)
			s.sp = except_tss_sp(c, 4 + newcpl * 8, 8);
		else
			s.sp = c->gpr[R_RSP];
		s.sp &= ~0xfull;
		dpush(c, &s, 8, oldss);
		dpush(c, &s, 8, oldsp);
	} else if (stack_switch) {
		uint16_t nss = (uint16_t)except_tss_sp(c, 8 + newcpl * 8, 2);
		uint64_t nsp = except_tss_sp(c, 4 + newcpl * 8, 4), sd;

		if (!bt_read_desc(c, nss, &sd))
			bt_raise(c, EXC_TS, nss & ~3);
		c->cpl = newcpl;	/* SS load checks against the new CPL */
		bt_load_seg(c, SEG_SS, nss);
		s.base = c->seg[SEG_SS].base;
		s.mask = c->seg[SEG_SS].db ? 0xffffffff : 0xffff;
		s.sp = nsp & s.mask;
		dpush(c, &s, psz, oldss);
		dpush(c, &s, psz, oldsp);
	} else {
		s.base = c->seg[SEG_SS].base;
		s.mask = c->ss32 ? 0xffffffff : 0xffff;
		s.sp = c->gpr[R_RSP] & s.mask;
	}
	dpush(c, &s, psz, flags);
	dpush(c, &s, psz, oldcs);
	dpush(c, &s, psz, c->rip);
	if (err >= 0)
		dpush(c, &s, psz, (uint32_t)err);
	if (lm) {
		if (stack_switch) {
			memset(&c->seg[SEG_SS], 0, sizeof(c->seg[SEG_SS]));
			c->seg[SEG_SS].sel = newcpl;
			c->seg[SEG_SS].unusable = 1;
			c->seg[SEG_SS].dpl = newcpl;
		}
		c->gpr[R_RSP] = s.sp;
	} else {
		c->gpr[R_RSP] = (c->gpr[R_RSP] & ~s.mask) | s.sp;
	}
	if (!(type & 1))
		c->flags &= ~RFLAGS_IF;
	c->flags &= ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM);
	except_set_cs(c, sel, cd, newcpl);
	c->rip = psz == 2 ? target & 0xffff : target;
}

static void
except_log(struct bt_cpu *c, int vec, int err, uint64_t ret)
{
	uint8_t b[8] = { 0 };
	uint64_t lin = (c->segbase[SEG_CS] + ret) & c->linmask, gpa;
	uint32_t e;

	if (vec == EXC_UD && bt_walk(c, lin, BT_ACC_R, false, &gpa, NULL,
	    &e) == 0)
		for (int k = 0; k < 8; k++)
			b[k] = (uint8_t)bt_phys_read(c, gpa + k, 1);
	log_debug("bt: exception %d (error %#x) at %#llx, cpl %u, bytes "
	    "%02x %02x %02x %02x %02x %02x %02x %02x", vec, err,
	    (unsigned long long)ret, c->cpl, b[0], b[1], b[2], b[3], b[4],
	    b[5], b[6], b[7]);
}

static bool
except_contributory(int v)
{
	return v == EXC_DE || (v >= EXC_TS && v <= EXC_GP);
}

/*
 * Deliver vec.  A fault while delivering becomes #DF where the
 * architecture says so, and a fault while delivering #DF shuts down.
 */
void
bt_deliver(struct bt_cpu *c, int vec, int err, bool soft, uint64_t ret)
{
	int prev = c->exc_depth ? c->exc_vec : -1;

	if (vec < 32 && vec != EXC_PF && vec != EXC_BP)
		except_log(c, vec, err, ret);
	if (prev == EXC_DF) {
		log_info("bt: triple fault: exception %d during #DF at %#llx "
		    "(cr0 %#llx cr3 %#llx cr4 %#llx efer %#llx idt %#llx/%#x)",
		    vec, (unsigned long long)ret, (unsigned long long)c->cr0,
		    (unsigned long long)c->cr3, (unsigned long long)c->cr4,
		    (unsigned long long)c->efer,
		    (unsigned long long)c->idt.base, c->idt.limit);
		c->exc_depth = 0;
		siglongjmp(c->jb, BT_JMP_SHUTDOWN);
	}
	if (prev >= 0 && (prev == EXC_PF || except_contributory(prev)) &&
	    (vec == EXC_PF || except_contributory(vec))) {
		vec = EXC_DF;
		err = 0;
	}
	c->exc_depth++;
	c->exc_vec = (uint8_t)vec;
	c->rip = ret;
	if (!(c->cr0 & CR0_PE))
		except_real(c, vec);
	else
		except_prot(c, vec, err, soft);
	c->exc_depth = 0;
	if (vec == EXC_NMI)
		c->nmi_masked = 1;
}

static void
except_set_flags(struct bt_cpu *c, uint64_t f, unsigned osz, unsigned oldcpl)
{
	uint64_t mask = CC_ARITH | RFLAGS_TF | RFLAGS_DF | RFLAGS_NT |
	    RFLAGS_RF | RFLAGS_AC | RFLAGS_ID | (1ull << 19) | (1ull << 20);

	if (oldcpl == 0)
		mask |= RFLAGS_IOPL | RFLAGS_VM;
	if (oldcpl <= ((c->flags & RFLAGS_IOPL) >> 12))
		mask |= RFLAGS_IF;
	if (osz == 2)
		mask &= 0xffff;
	bt_flags_set(c, f, mask);
}

/* Null data segments the new (outer) CPL may not use. */
static void
except_null_segs(struct bt_cpu *c)
{
	static const int segs[] = { SEG_ES, SEG_DS, SEG_FS, SEG_GS };

	for (unsigned k = 0; k < 4; k++) {
		struct cpu_seg *s = &c->seg[segs[k]];
		bool conf_code = (s->type & 0xc) == 0xc;

		if (!s->unusable && s->dpl < c->cpl && !conf_code) {
			uint64_t base = s->base;

			s->sel = 0;
			s->unusable = 1;
			s->present = 0;
			/* FS/GS bases stay in 64-bit mode (MSR-loaded). */
			if (c->efer & EFER_LMA)
				s->base = base;
		}
	}
	bt_cpu_update_mode(c);
}

void
bt_iret(struct bt_cpu *c, unsigned osz)
{
	uint64_t ip, cs, f, sp = 0, ss = 0, cd;
	unsigned oldcpl = c->cpl, newcpl;
	bool lm64 = c->mode == BT_M64;

	if (!(c->cr0 & CR0_PE)) {
		ip = bt_pop(c, osz);
		cs = bt_pop(c, osz);
		f = bt_pop(c, osz);
		bt_load_seg(c, SEG_CS, (uint16_t)cs);
		except_set_flags(c, f, osz, 0);
		c->npc = ip & (osz == 2 ? 0xffff : 0xffffffff);
		c->nmi_masked = 0;
		return;
	}
	if (!lm64 && (c->flags & RFLAGS_NT))
		bt_raise(c, EXC_GP, 0);	/* task return: not supported */
	{
		uint64_t m = bt_sp_mask(c), p = c->gpr[R_RSP] & m;

		ip = bt_read(c, bt_lin(c, SEG_SS, p), osz);
		cs = bt_read(c, bt_lin(c, SEG_SS, (p + osz) & m), osz) & 0xffff;
		f = bt_read(c, bt_lin(c, SEG_SS, (p + 2 * osz) & m), osz);
		newcpl = cs & 3;
		if (lm64 || newcpl > oldcpl) {
			sp = bt_read(c, bt_lin(c, SEG_SS, (p + 3 * osz) & m), osz);
			ss = bt_read(c, bt_lin(c, SEG_SS, (p + 4 * osz) & m),
			    osz) & 0xffff;
		} else {
			sp = (p + 3 * osz) & m;
			sp = (c->gpr[R_RSP] & ~m) | sp;
		}
	}
	if (newcpl < oldcpl || (cs & ~3) == 0 || !bt_read_desc(c, (uint16_t)cs,
	    &cd) || !((cd >> 43) & 1))
		bt_raise(c, EXC_GP, (int)(cs & ~3));
	if (!((cd >> 47) & 1))
		bt_raise(c, EXC_NP, (int)(cs & ~3));
	except_set_flags(c, f, osz, oldcpl);
	except_set_cs(c, (uint16_t)cs, cd, newcpl);
	c->cpl = newcpl;
	if (lm64 || newcpl > oldcpl) {
		if ((c->efer & EFER_LMA) && (ss & ~3) == 0 &&
		    c->mode == BT_M64 && newcpl < 3) {
			memset(&c->seg[SEG_SS], 0, sizeof(c->seg[SEG_SS]));
			c->seg[SEG_SS].sel = (uint16_t)ss;
			c->seg[SEG_SS].unusable = 1;
			c->seg[SEG_SS].dpl = newcpl;
			bt_cpu_update_mode(c);
		} else {
			bt_load_seg(c, SEG_SS, (uint16_t)ss);
		}
		c->gpr[R_RSP] = osz == 4 && !(c->mode == BT_M64) ?
		    (uint32_t)sp : sp;
		if (osz == 2)
			c->gpr[R_RSP] = (c->gpr[R_RSP] & ~0xffffull) |
			    (sp & 0xffff);
	} else {
		c->gpr[R_RSP] = sp;
	}
	if (newcpl > oldcpl)
		except_null_segs(c);
	c->npc = osz == 2 ? ip & 0xffff : osz == 4 ? (uint32_t)ip : ip;
	c->nmi_masked = 0;
}
