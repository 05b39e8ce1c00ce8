#include "hv/cpu_state.h"

#include <stdio.h>
#include <string.h>

#include "migrate/snap.h"

static void
cpu_seg_set(struct cpu_seg *s, uint16_t sel, uint64_t base, uint8_t type,
    uint8_t code_data)
{
	*s = (struct cpu_seg){ .base = base, .limit = 0xffff, .sel = sel,
	    .type = type, .s = code_data, .present = 1 };
}

void
cpu_state_reset(struct cpu_state *st)
{
	memset(st, 0, sizeof(*st));
	st->rip = 0xfff0;
	st->rflags = RFLAGS_FIXED;
	cpu_seg_set(&st->seg[SEG_CS], 0xf000, 0xffff0000, 0xb, 1);
	for (int i = 0; i < SEG_COUNT; i++) {
		if (i == SEG_CS)
			continue;
		cpu_seg_set(&st->seg[i], 0, 0, 0x3, 1);
	}
	st->seg[SEG_LDTR] = (struct cpu_seg){ .limit = 0xffff, .type = 0x2,
	    .present = 1 };
	st->seg[SEG_TR] = (struct cpu_seg){ .limit = 0xffff, .type = 0xb,
	    .present = 1 };
	st->gdt.limit = st->idt.limit = 0xffff;
	st->cr0 = CR0_ET | CR0_NW | CR0_CD;
	st->dr[6] = 0xffff0ff0;
	st->dr[7] = 0x400;
	st->gpr[R_RDX] = 0x600;		/* reset signature: family 6 */
	st->msr.pat = 0x0007040600070406ull;
	st->msr.apic_base = 0xfee00000ull | (1u << 11) | (1u << 8);
	/* FXSAVE image of FNINIT + default MXCSR. */
	st->fpu.fxsave[0] = 0x7f;	/* FCW = 0x037f */
	st->fpu.fxsave[1] = 0x03;
	st->fpu.fxsave[24] = 0x80;	/* MXCSR = 0x1f80 */
	st->fpu.fxsave[25] = 0x1f;
	st->fpu.xcr0 = 1;
}

uint8_t
cpu_state_shadow(const struct cpu_state *st)
{
	uint8_t sh = st->ev.interrupt_shadow;

	if (st->ev.halted || sh == 0)
		return 0;
	if (sh == CPU_SHADOW_STI && (st->rflags & RFLAGS_IF))
		return CPU_SHADOW_STI;
	return CPU_SHADOW_MOV_SS;
}

static void
cpu_seg_snapshot(struct snap *s, const char *pfx, struct cpu_seg *g)
{
	char n[32];

#define F(fn, field) (snprintf(n, sizeof(n), "%s.%s", pfx, #field), \
	fn(s, n, &g->field))
	F(snap_u64, base);
	F(snap_u32, limit);
	F(snap_u16, sel);
	F(snap_u8, type);
	F(snap_u8, s);
	F(snap_u8, dpl);
	F(snap_u8, present);
	F(snap_u8, avl);
	F(snap_u8, l);
	F(snap_u8, db);
	F(snap_u8, g);
	F(snap_u8, unusable);
#undef F
}

int
cpu_state_snapshot(struct cpu_state *st, struct snap *s)
{
	static const char *const segname[SEG_COUNT] = {
		"es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr" };
	char n[16];

	for (int i = 0; i < 16; i++) {
		snprintf(n, sizeof(n), "r%d", i);
		snap_u64(s, n, &st->gpr[i]);
	}
	snap_u64(s, "rip", &st->rip);
	snap_u64(s, "rflags", &st->rflags);
	for (int i = 0; i < SEG_COUNT; i++)
		cpu_seg_snapshot(s, segname[i], &st->seg[i]);
	snap_u64(s, "gdt.base", &st->gdt.base);
	snap_u16(s, "gdt.limit", &st->gdt.limit);
	snap_u64(s, "idt.base", &st->idt.base);
	snap_u16(s, "idt.limit", &st->idt.limit);
	snap_u64(s, "cr0", &st->cr0);
	snap_u64(s, "cr2", &st->cr2);
	snap_u64(s, "cr3", &st->cr3);
	snap_u64(s, "cr4", &st->cr4);
	snap_u64(s, "cr8", &st->cr8);
	snap_u64(s, "efer", &st->efer);
	snap_bytes(s, "dr", st->dr, sizeof(st->dr));
	snap_u64(s, "star", &st->msr.star);
	snap_u64(s, "lstar", &st->msr.lstar);
	snap_u64(s, "cstar", &st->msr.cstar);
	snap_u64(s, "sfmask", &st->msr.sfmask);
	snap_u64(s, "kernel_gs_base", &st->msr.kernel_gs_base);
	snap_u64(s, "sysenter_cs", &st->msr.sysenter_cs);
	snap_u64(s, "sysenter_esp", &st->msr.sysenter_esp);
	snap_u64(s, "sysenter_eip", &st->msr.sysenter_eip);
	snap_u64(s, "tsc", &st->msr.tsc);
	snap_u64(s, "tsc_aux", &st->msr.tsc_aux);
	snap_u64(s, "pat", &st->msr.pat);
	snap_u64(s, "apic_base", &st->msr.apic_base);
	snap_u64(s, "misc_enable", &st->msr.misc_enable);
	snap_u64(s, "mtrr_def_type", &st->msr.mtrr_def_type);
	snap_bytes(s, "fxsave", st->fpu.fxsave, sizeof(st->fpu.fxsave));
	snap_u64(s, "xcr0", &st->fpu.xcr0);
	snap_u8(s, "exc.pending", &st->ev.exception_pending);
	snap_u8(s, "exc.nr", &st->ev.exception_nr);
	snap_u8(s, "exc.has_error", &st->ev.exception_has_error);
	snap_u32(s, "exc.error", &st->ev.exception_error);
	snap_u8(s, "int_shadow", &st->ev.interrupt_shadow);
	snap_u8(s, "nmi.pending", &st->ev.nmi_pending);
	snap_u8(s, "nmi.masked", &st->ev.nmi_masked);
	snap_u8(s, "halted", &st->ev.halted);
	snap_bytes_since(s, "nmi.injected", &st->ev.nmi_injected, 1, 2);
	snap_bytes_since(s, "intr.injected", &st->ev.intr_injected, 1, 2);
	snap_bytes_since(s, "intr.nr", &st->ev.intr_nr, 1, 2);
	return snap_error(s);
}
