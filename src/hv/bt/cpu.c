/*
 * The vCPU core's mode bookkeeping and its conversion to and from the
 * accelerator-neutral struct cpu_state.
 */
#include "hv/bt/bt_internal.h"

#include <x86intrin.h>

#include "hv/vm.h"
#include "util/evloop.h"

/* Recompute what depends on CS/SS/CR0/EFER: decode mode, CPL, stack
 * width, effective segment bases, TLB set. */
void
bt_cpu_update_mode(struct bt_cpu *c)
{
	bool lma = c->efer & EFER_LMA;

	if (!(c->cr0 & CR0_PE)) {
		c->cpl = 0;
		c->mode = c->seg[SEG_CS].db ? BT_M32 : BT_M16;
	} else {
		c->cpl = (c->flags & RFLAGS_VM) ? 3 : c->seg[SEG_CS].dpl;
		if (lma && c->seg[SEG_CS].l)
			c->mode = BT_M64;
		else
			c->mode = c->seg[SEG_CS].db ? BT_M32 : BT_M16;
	}
	c->ss32 = c->seg[SEG_SS].db;
	c->linmask = lma ? ~0ull : 0xffffffffull;
	for (int s = 0; s < SEG_COUNT; s++)
		c->segbase[s] = c->seg[s].base;
	if (c->mode == BT_M64)
		c->segbase[SEG_ES] = c->segbase[SEG_CS] =
		    c->segbase[SEG_SS] = c->segbase[SEG_DS] = 0;
	c->tlbc = c->tlb[c->cpl == 3];
}

uint64_t
bt_tsc(struct bt_cpu *c)
{
	if (unlikely(c->stint))
		return __rdtsc() + c->stint_tsc;
	return vclock_ns() + __atomic_load_n(&c->bvm->tsc_offset,
	    __ATOMIC_RELAXED) + c->tsc_adjust;
}

/* Load st into c, except the TSC: it is the VM's clock, which INIT
 * leaves alone; bt_tsc_set() is for the callers that mean to set it. */
void
bt_cpu_from_state(struct bt_cpu *c, const struct cpu_state *st)
{
	memcpy(c->gpr, st->gpr, sizeof(c->gpr));
	c->rip = st->rip;
	c->flags = st->rflags | RFLAGS_FIXED;
	c->cc_op = CC_EAGER;
	memcpy(c->seg, st->seg, sizeof(c->seg));
	c->gdt = st->gdt;
	c->idt = st->idt;
	c->cr0 = st->cr0 | CR0_ET;
	c->cr2 = st->cr2;
	c->cr3 = st->cr3;
	c->cr4 = st->cr4;
	c->efer = st->efer;
	memcpy(c->dr, st->dr, sizeof(c->dr));
	c->msr = st->msr;
	c->fpu = st->fpu;
	c->shadow = st->ev.interrupt_shadow;
	c->halted = st->ev.halted;
	c->nmi_pending = st->ev.nmi_pending;
	c->nmi_masked = st->ev.nmi_masked;
	c->evpend = c->halted | c->wait_sipi | c->nmi_pending;
	/* CR8 lives in the LAPIC's TPR: bt.c syncs it. */
	bt_cpu_update_mode(c);
	bt_tlb_flush(c, true);
}

/* A host write of the TSC (boot, restore): it sets the VM's clock, which
 * every vCPU follows, so the vCPUs never disagree by the time between
 * their set_state calls. */
void
bt_tsc_set(struct bt_cpu *c, uint64_t tsc)
{
	c->tsc_adjust = 0;
	__atomic_store_n(&c->bvm->tsc_offset, tsc - vclock_ns(),
	    __ATOMIC_RELAXED);
}

void
bt_cpu_to_state(struct bt_cpu *c, struct cpu_state *st)
{
	memcpy(st->gpr, c->gpr, sizeof(st->gpr));
	st->rip = c->rip;
	st->rflags = bt_flags_get(c);
	memcpy(st->seg, c->seg, sizeof(st->seg));
	st->gdt = c->gdt;
	st->idt = c->idt;
	st->cr0 = c->cr0;
	st->cr2 = c->cr2;
	st->cr3 = c->cr3;
	st->cr4 = c->cr4;
	st->efer = c->efer;
	memcpy(st->dr, c->dr, sizeof(st->dr));
	st->msr = c->msr;
	st->msr.tsc = bt_tsc(c);
	st->fpu = c->fpu;
	memset(&st->ev, 0, sizeof(st->ev));
	st->ev.interrupt_shadow = c->shadow;
	st->ev.halted = c->halted;
	st->ev.nmi_pending = c->nmi_pending;
	st->ev.nmi_masked = c->nmi_masked;
}
