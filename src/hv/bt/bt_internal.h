/*
 * The software CPU's private interfaces: the vCPU core, pre-decoded
 * instructions, the soft TLB and the lazy flags.  Everything in src/hv/bt/
 * includes this; nothing outside does (the outside sees bt.h and accel.h).
 *
 * Execution model: guest code is decoded once per basic block into an
 * array of struct bt_insn, each carrying a direct pointer to its handler
 * and every operand pre-extracted (registers, displacement, immediate).
 * Blocks are cached by (guest physical address, decode mode).  A handler
 * runs with c->rip at the instruction and c->npc at the next one; a fault
 * longjmps out with c->rip still at the faulting instruction, which is
 * what makes every exception precise and restartable.
 */
#ifndef TV_BT_INTERNAL_H
#define TV_BT_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "hv/bt/simd.h"
#include "hv/cpu_state.h"

struct vm;
struct vcpu;
struct bt_cpu;
struct bt_insn;

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

typedef void bt_fn(struct bt_cpu *c, const struct bt_insn *i);

/* Decode modes: the default operand/address size of the code segment. */
enum { BT_M16 = 0, BT_M32 = 1, BT_M64 = 2 };

#define BT_NOREG 0xff
#define BT_RIPREL 0xfe

/* One pre-decoded instruction. */
struct bt_insn {
	bt_fn *fn;
	int64_t disp;
	uint64_t imm;
	uint16_t imm2;		/* ENTER level, far pointer selector */
	uint16_t opc;		/* 0x0xx one-byte map, 0x1xx 0F, 0x2xx 0F38,
				 * 0x3xx 0F3A */
	uint8_t len;
	uint8_t osz;		/* operand size: 1, 2, 4 or 8 bytes */
	uint8_t asz;		/* address size: 2, 4 or 8 */
	uint8_t seg;		/* segment of the memory operand */
	uint8_t mod, reg, rm;	/* reg/rm include REX.R/REX.B */
	uint8_t base, index, scale;
	uint8_t rep;		/* 0, 0xf3 or 0xf2 */
	uint8_t lock;
	uint8_t rex;		/* REX byte, 0 if none */
	uint8_t p66;
	struct simd_op sop;	/* x87/SSE forms only */
	struct simd_mem smem;
};

/* A block: straight-line instructions ending at a branch, a mode
 * change or the end of a page. */
struct bt_block {
	uint64_t gpa;		/* guest physical address of the first byte */
	uint32_t mode;		/* decode mode it was decoded for */
	uint32_t page[2];	/* RAM page numbers it spans (~0u: none) */
	uint32_t gen[2];	/* page generations when decoded */
	struct bt_block *hnext;
	struct bt_block *link[2];	/* successors on the same page */
	uint64_t link_lin[2];		/* their linear addresses */
	uint32_t link_inval[2];		/* bt_vm.inval_gen when linked */
	uint16_t ninsn;
	void *jit;		/* generated host code, or NULL */
	uint32_t jslot[2];	/* its two chain slots (jit.c) */
	struct bt_insn insn[];
};

/* 64 bytes, aligned: an entry is one cache line (at 48 bytes a third
 * of them straddled two), and jit_tlb finds it with a shift and a mask. */
struct __attribute__((aligned(64))) bt_tlb {
	uint64_t tag_r, tag_w, tag_x;	/* page-aligned linear address or 1 */
	uintptr_t addend;		/* host = linear + addend */
	uint64_t gpa;			/* page-aligned guest physical */
	uint8_t global;
	uint8_t listed;			/* in bt_cpu.tlb_live[0] (bit 0:
					 * non-global), [1] (bit 1) */
};

/* 2048: a guest-loopback iperf3 walked the page tables 3.9M times with
 * 512 entries, 2.3M with 2048 (network buffers spread over the direct
 * map); MOV CR3 scans them all, which stays well under 1%. */
#define BT_TLB_SIZE 2048
#define BT_TLB_INVALID 1ull

/* Lazy flags: cc_op = kind * 4 + log2(size). */
enum { CC_EAGER = 0, CC_ADD = 1, CC_SUB = 2, CC_LOGIC = 3, CC_INC = 4,
       CC_DEC = 5, CC_SHL = 6, CC_SHR = 7, CC_SAR = 8 };
#define CC_ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | \
	RFLAGS_SF | RFLAGS_OF)

struct bt_vm;

struct bt_cpu {
	uint64_t gpr[16];
	uint64_t rip;		/* current instruction */
	uint64_t npc;		/* next instruction (handlers may change) */
	uint64_t flags;		/* RFLAGS; arithmetic bits stale if lazy */
	uint64_t cc_res, cc_a, cc_b;
	uint32_t cc_op;

	/* What the JIT's block end tests in one 32-bit load (jit_chain):
	 * keep these four together and in this order. */
	_Alignas(4) uint8_t evpend;	/* halted | wait_sipi | nmi_pending */
	uint8_t shadow;		/* interrupt shadow for the next insn */
	uint8_t mode;		/* BT_M16/32/64 */
	uint8_t irq_hint;	/* an interrupt waits for IF=1 */
	uint8_t cpl;
	uint8_t ss32;		/* stack uses ESP (else SP); RSP in 64-bit */
	uint8_t brk;		/* leave the block after this instruction */
	uint64_t smc_pend;	/* gpa + 1 of a code page bt_ptr_rw handed out */
	uint64_t segbase[8];	/* effective bases (0 for ES/CS/SS/DS in 64) */
	uint64_t linmask;	/* 2^32-1 outside long mode */

	struct cpu_seg seg[SEG_COUNT];
	struct cpu_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, efer;
	uint64_t dr[8];
	struct cpu_msrs msr;
	uint64_t tsc_adjust;	/* this vCPU's TSC minus the VM's (guest
				 * writes to the TSC MSR) */
	struct cpu_fpu fpu;

	uint8_t halted;
	uint8_t nmi_masked, nmi_pending;
	uint8_t wait_sipi;	/* AP before its first SIPI */
	/* An event another accelerator was delivering when its state was
	 * taken (set_state): delivered first on the next run. */
	struct cpu_events inj;
	uint8_t assist;		/* one-instruction KVM assist: no irqchip */
	uint8_t stint;		/* KVM assist stint: stop before what KVM
				 * must do itself (I/O, MSRs, HLT, CPUID) */
	uint64_t stint_tsc;	/* in a stint: guest TSC - host TSC */
	uint64_t cr8;		/* assist only: CR8 from the caller's state */
	int exc_depth;		/* nesting while delivering exceptions */
	uint8_t exc_vec;	/* vector being delivered (for #DF) */
	int pend_vec, pend_err;	/* fault raised by bt_raise() */

	struct bt_tlb tlb[2][BT_TLB_SIZE];	/* [0] supervisor, [1] user */
	struct bt_tlb *tlbc;			/* tlb[cpl == 3] */
	/* The entries filled since the last full flush (u << 11 | k),
	 * non-global ones in [0], global ones in [0] or [1]: MOV CR3
	 * looks at [0] only, INVLPG under large pages at both, instead
	 * of all 4096. */
	uint16_t tlb_live[2][2 * BT_TLB_SIZE];
	uint32_t tlb_nlive[2];
	uint8_t tlb_large;			/* a large page was cached
						 * (bit 0), one above 2 MiB
						 * (bit 1) */
	uint32_t tlb_code_gen;			/* last seen vm code gen */
	uint32_t tlb_epoch;			/* bumped by every flush
						 * that may remap code */
	uint32_t tlb_gepoch;			/* the same for globally
						 * mapped code (not MOV CR3) */
	uint8_t xglobal;			/* bt_tc_lookup's block was
						 * fetched through a global
						 * mapping */
	/* Where code was fetched from since the epoch began: bit
	 * (lin >> 21) % 256 of x2m, (lin >> 30) % 64 of x1g.  An INVLPG
	 * elsewhere cannot remap a block the jump caches and chains hold,
	 * so it leaves the epoch alone (see bt_tlb_flush_page). */
	uint64_t x2m[4], x1g;
	uint32_t seen_dirty_epoch;		/* write tags dropped for it */
	int in_run;				/* inside vcpu_run (atomic) */
	uint32_t tc_epoch;			/* bumped by every TC flush */

	sigjmp_buf jb;
	struct vm *vm;
	struct vcpu *vcpu;
	struct bt_vm *bvm;
	struct bt_block *cur;	/* block being executed */
	struct bt_block *prev;	/* last block run, for chaining */
	struct bt_jc {		/* linear RIP -> block, while no flush */
		uint64_t lin;
		struct bt_block *b;
		uint32_t tlb, tc, inval;
		uint32_t cpl;	/* the fetch was checked at this CPL */
		void *code;	/* b->jit if a 64-bit block (jit.c) */
	} jc[4096];
	uint64_t prev_lin;
	uint32_t prev_tlb, prev_tc;
	uint8_t prev_cpl;	/* CPL c->prev ran at */

	/* Host code generation (jit.c); NULL when off. */
	struct bt_jit *jit;
	struct bt_block *jit_last;	/* block whose code just exited */
	const uint32_t *reqp;		/* &vcpu->requests */
	const uint32_t *inval_p;	/* &bvm->inval_gen */
	uint8_t generic;	/* no specialized handlers (tests: the
				 * reference for exec_fast.c, exec_sse.c) */

	/* Translation cache. */
	struct bt_block **hash;
	uint8_t *arena;
	size_t arena_used, arena_size;

	uint64_t ninsns;	/* statistics */
	uint64_t nblocks;
};

/* Per-VM state shared by the vCPUs. */
struct bt_vm {
	uint8_t *code;		/* per RAM page: has translated code */
	uint32_t *gen;		/* per RAM page: generation */
	uint64_t npages;
	uint32_t code_gen;	/* bumped when a page becomes code */
	uint32_t inval_gen;	/* bumped when any page's code is dropped */
	uint8_t *dirty;		/* per RAM page: written since last harvest */
	uint32_t dirty_epoch;	/* bumped by each dirty-log harvest */
	uint8_t harvesting;	/* a harvest runs: grant no write tags */
	uint64_t tsc_offset;	/* VM-wide TSC = vclock_ns() + this: one
				 * clock for every vCPU, kept across INIT */
	/* Device memory (video RAM) outside vm->ram gets page numbers
	 * after RAM's, BT_DEV_PAGES at most: per region slot, its first
	 * (-1: none yet), and the next free one. */
	int64_t dev_page[16];
	uint64_t dev_next;
	struct bt_prof *prof;	/* TV_BT_PROF sampling (prof.c), or NULL */
};
struct bt_prof *bt_prof_start(struct vm *vm);
void bt_prof_stop(struct bt_prof *p);
#define BT_DEV_PAGES	(256ull << 20 >> 12)

/* --- cpu.c: registers, modes --- */
static inline uint8_t *
bt_breg(struct bt_cpu *c, const struct bt_insn *i, unsigned r)
{
	if (!i->rex && r >= 4 && r < 8)
		return (uint8_t *)&c->gpr[r - 4] + 1;
	return (uint8_t *)&c->gpr[r];
}

static inline void
bt_set16(uint64_t *r, uint16_t v)
{
	*r = (*r & ~0xffffull) | v;
}

static inline uint64_t
bt_reg_get(struct bt_cpu *c, const struct bt_insn *i, unsigned r, unsigned sz)
{
	switch (sz) {
	case 1: return *bt_breg(c, i, r);
	case 2: return (uint16_t)c->gpr[r];
	case 4: return (uint32_t)c->gpr[r];
	default: return c->gpr[r];
	}
}

static inline void
bt_reg_set(struct bt_cpu *c, const struct bt_insn *i, unsigned r, unsigned sz,
    uint64_t v)
{
	switch (sz) {
	case 1: *bt_breg(c, i, r) = (uint8_t)v; break;
	case 2: bt_set16(&c->gpr[r], (uint16_t)v); break;
	case 4: c->gpr[r] = (uint32_t)v; break;
	default: c->gpr[r] = v; break;
	}
}

static inline uint64_t
bt_mask(unsigned sz)
{
	return sz == 8 ? ~0ull : (1ull << (sz * 8)) - 1;
}

static inline uint64_t
bt_sext(uint64_t v, unsigned sz)
{
	switch (sz) {
	case 1: return (uint64_t)(int64_t)(int8_t)v;
	case 2: return (uint64_t)(int64_t)(int16_t)v;
	case 4: return (uint64_t)(int64_t)(int32_t)v;
	default: return v;
	}
}

/* Offset (effective address) of the memory operand, before segments. */
static inline uint64_t
bt_ea(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t ea = (uint64_t)i->disp;

	if (i->base < 16)
		ea += c->gpr[i->base];
	else if (i->base == BT_RIPREL)
		ea += c->npc;
	if (i->index < 16)
		ea += c->gpr[i->index] << i->scale;
	if (i->asz == 4)
		ea = (uint32_t)ea;
	else if (i->asz == 2)
		ea = (uint16_t)ea;
	return ea;
}

static inline uint64_t
bt_lin(struct bt_cpu *c, unsigned seg, uint64_t ea)
{
	return (c->segbase[seg] + ea) & c->linmask;
}

static inline uint64_t
bt_ea_lin(struct bt_cpu *c, const struct bt_insn *i)
{
	return bt_lin(c, i->seg, bt_ea(c, i));
}

void bt_cpu_update_mode(struct bt_cpu *c);
void bt_cpu_from_state(struct bt_cpu *c, const struct cpu_state *st);
void bt_cpu_to_state(struct bt_cpu *c, struct cpu_state *st);

/* --- flags.c --- */
uint64_t bt_flags_get(struct bt_cpu *c);
void bt_flags_set(struct bt_cpu *c, uint64_t f, uint64_t mask);
bool bt_cond(struct bt_cpu *c, unsigned cc);
bool bt_cf(struct bt_cpu *c);

/* bt_cond() with the commonest case (JZ/JNZ after any lazy op) inline. */
static inline bool
bt_cond_fast(struct bt_cpu *c, unsigned cc)
{
	if ((cc >> 1) == 2 && c->cc_op != CC_EAGER) {
		unsigned sh = 64 - (8u << (c->cc_op & 3));

		return ((c->cc_res << sh) == 0) ^ (cc & 1);
	}
	return bt_cond(c, cc);
}

static inline void
bt_cc(struct bt_cpu *c, unsigned kind, unsigned sz, uint64_t res, uint64_t a,
    uint64_t b)
{
	static const uint8_t lg[9] = { 0, 0, 1, 0, 2, 0, 0, 0, 3 };

	c->cc_op = kind * 4 + lg[sz];
	c->cc_res = res;
	c->cc_a = a;
	c->cc_b = b;
}

/* --- except.c --- */
#define EXC_DE 0
#define EXC_DB 1
#define EXC_NMI 2
#define EXC_BP 3
#define EXC_OF 4
#define EXC_BR 5
#define EXC_UD 6
#define EXC_NM 7
#define EXC_DF 8
#define EXC_TS 10
#define EXC_NP 11
#define EXC_SS 12
#define EXC_GP 13
#define EXC_PF 14
#define EXC_MF 16
#define EXC_AC 17
#define EXC_XM 19

/* Raise a fault at c->rip (no error code: err < 0); never returns. */
__attribute__((noreturn)) void bt_raise(struct bt_cpu *c, int vec, int err);
__attribute__((noreturn)) void bt_raise_pf(struct bt_cpu *c, uint64_t lin,
    uint32_t err);
/* Deliver vector through the IDT now with return address ret; soft =
 * INT n (checks the gate DPL).  May longjmp (nested fault). */
void bt_deliver(struct bt_cpu *c, int vec, int err, bool soft, uint64_t ret);
/* IRET of every width. */
void bt_iret(struct bt_cpu *c, unsigned osz);
/* Load a segment register in the current mode (checks for protected
 * mode descriptors); raises #GP/#NP/#SS on bad selectors. */
void bt_load_seg(struct bt_cpu *c, int seg, uint16_t sel);
/* Fetch a descriptor (8 bytes) from the GDT/LDT; false if past the limit. */
bool bt_read_desc(struct bt_cpu *c, uint16_t sel, uint64_t *d);
void bt_seg_from_desc(struct cpu_seg *s, uint16_t sel, uint64_t d);

/* --- mmu.c --- */
enum { BT_ACC_R = 0, BT_ACC_W = 1, BT_ACC_X = 2 };

uint64_t bt_read_slow(struct bt_cpu *c, uint64_t lin, unsigned sz);
void bt_write_slow(struct bt_cpu *c, uint64_t lin, unsigned sz, uint64_t v);
/* Host pointer for a read-modify-write of sz bytes at lin (faults like a
 * write), or NULL when the access is MMIO or crosses a page. */
void *bt_ptr_rw(struct bt_cpu *c, uint64_t lin, unsigned sz);
/* Translate lin for access acc as CPL user?; returns the GPA or raises. */
uint64_t bt_translate(struct bt_cpu *c, uint64_t lin, int acc, bool user);
/* Same, without raising or caching: 0 with *gpa, or -1 with the #PF
 * error code in *err.  info (may be NULL) gets BT_WALK_* bits. */
int bt_walk(struct bt_cpu *c, uint64_t lin, int acc, bool user,
    uint64_t *gpa, unsigned *info, uint32_t *err);
enum { BT_WALK_GLOBAL = 1, BT_WALK_LARGE = 2, BT_WALK_DIRTY_W = 4,
       BT_WALK_HUGE = 16 /* 1 GiB, or 4 MiB without PAE */ };
/* Supervisor-implicit accesses (descriptor tables, TSS, IDT). */
uint64_t bt_sys_read(struct bt_cpu *c, uint64_t lin, unsigned sz);
void bt_sys_write(struct bt_cpu *c, uint64_t lin, unsigned sz, uint64_t v);
void bt_tlb_flush(struct bt_cpu *c, bool global);

/* Code at lin was fetched through the TLB (bt_tc_lookup). */
static inline void
bt_xmark(struct bt_cpu *c, uint64_t lin)
{
	c->x2m[(lin >> 27) & 3] |= 1ull << ((lin >> 21) & 63);
	c->x1g |= 1ull << ((lin >> 30) & 63);
}

/* Could an INVLPG of lin (a 4K, 2M or 1G page) remap code fetched
 * since the epoch began? */
static inline bool
bt_xmark_test(const struct bt_cpu *c, uint64_t lin)
{
	return (c->x2m[(lin >> 27) & 3] >> ((lin >> 21) & 63) & 1) ||
	    ((c->tlb_large & 2) && (c->x1g >> ((lin >> 30) & 63) & 1));
}

/*
 * A new TLB epoch: every jump cache entry and chain made before is stale
 * (global: also those for code fetched through global mappings, which a
 * MOV CR3 keeps).  A jump cache entry or chain slot holds the epoch it
 * was made under: tlb_epoch (below 2^31), or bt_tlb_gtag(c) for code
 * mapped globally.
 */
#define BT_GTAG 0x80000000u

static inline uint32_t
bt_tlb_gtag(const struct bt_cpu *c)
{
	return c->tlb_gepoch | BT_GTAG;
}

static inline bool
bt_tlb_current(const struct bt_cpu *c, uint32_t tag)
{
	return tag == c->tlb_epoch || tag == bt_tlb_gtag(c);
}

static inline void
bt_tlb_epoch_bump(struct bt_cpu *c, bool global)
{
	/* Leave the block after this instruction: the run loop and the
	 * JIT's local chain slots take the page the block was entered at
	 * as still mapped to the block's page while no brk was seen. */
	if (c->cur != NULL)
		c->brk = 1;
	c->tlb_epoch = (c->tlb_epoch + 1) & ~BT_GTAG;
	if (!global)
		return;		/* the marks stay: global code stays */
	c->tlb_gepoch = (c->tlb_gepoch + 1) & ~BT_GTAG;
	memset(c->x2m, 0, sizeof(c->x2m));
	c->x1g = 0;
}
void bt_tlb_flush_page(struct bt_cpu *c, uint64_t lin);
/* Make every later store take the slow path (dirty log, new code). */
void bt_tlb_drop_writes(struct bt_cpu *c);
/* RAM page number of gpa, or -1 if not RAM. */
int64_t bt_ram_page(struct vm *vm, uint64_t gpa);
/* A write hit a page with translated code: drop its blocks. */
void bt_code_invalidate(struct bt_cpu *c, uint64_t gpa);
/* Physical memory (MMIO when not RAM). */
uint64_t bt_phys_read(struct bt_cpu *c, uint64_t gpa, unsigned sz);
void bt_phys_write(struct bt_cpu *c, uint64_t gpa, unsigned sz, uint64_t v);

static inline uint64_t
bt_load_host(const void *p, unsigned sz)
{
	switch (sz) {
	case 1: return *(const uint8_t *)p;
	case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
	case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
	default: { uint64_t v; memcpy(&v, p, 8); return v; }
	}
}

static inline void
bt_store_host(void *p, unsigned sz, uint64_t v)
{
	switch (sz) {
	case 1: *(uint8_t *)p = (uint8_t)v; break;
	case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
	case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
	default: memcpy(p, &v, 8); break;
	}
}

static inline uint64_t
bt_read(struct bt_cpu *c, uint64_t lin, unsigned sz)
{
	struct bt_tlb *e = &c->tlbc[(lin >> 12) & (BT_TLB_SIZE - 1)];

	if (likely(e->tag_r == (lin & ~0xfffull) &&
	    (lin & 0xfff) <= 0x1000 - sz))
		return bt_load_host((void *)(lin + e->addend), sz);
	return bt_read_slow(c, lin, sz);
}

static inline void
bt_write(struct bt_cpu *c, uint64_t lin, unsigned sz, uint64_t v)
{
	struct bt_tlb *e = &c->tlbc[(lin >> 12) & (BT_TLB_SIZE - 1)];

	if (likely(e->tag_w == (lin & ~0xfffull) &&
	    (lin & 0xfff) <= 0x1000 - sz)) {
		bt_store_host((void *)(lin + e->addend), sz, v);
		return;
	}
	bt_write_slow(c, lin, sz, v);
}

/* --- stack --- */
static inline uint64_t
bt_sp_mask(struct bt_cpu *c)
{
	return c->mode == BT_M64 ? ~0ull : c->ss32 ? 0xffffffffull : 0xffff;
}

static inline void
bt_push(struct bt_cpu *c, unsigned sz, uint64_t v)
{
	uint64_t m = bt_sp_mask(c);
	uint64_t sp = (c->gpr[R_RSP] - sz) & m;

	bt_write(c, bt_lin(c, SEG_SS, sp), sz, v);
	c->gpr[R_RSP] = (c->gpr[R_RSP] & ~m) | sp;
}

static inline uint64_t
bt_pop(struct bt_cpu *c, unsigned sz)
{
	uint64_t m = bt_sp_mask(c);
	uint64_t sp = c->gpr[R_RSP] & m;
	uint64_t v = bt_read(c, bt_lin(c, SEG_SS, sp), sz);

	c->gpr[R_RSP] = (c->gpr[R_RSP] & ~m) | ((sp + sz) & m);
	return v;
}

/* The ModRM r/m operand. */
static inline uint64_t
bt_rm_read(struct bt_cpu *c, const struct bt_insn *i, unsigned sz)
{
	if (i->mod == 3)
		return bt_reg_get(c, i, i->rm, sz);
	return bt_read(c, bt_ea_lin(c, i), sz);
}

static inline void
bt_rm_write(struct bt_cpu *c, const struct bt_insn *i, unsigned sz,
    uint64_t v)
{
	if (i->mod == 3)
		bt_reg_set(c, i, i->rm, sz, v);
	else
		bt_write(c, bt_ea_lin(c, i), sz, v);
}

/* Atomic compare-and-swap on guest RAM (LOCK prefix). */
static inline bool
bt_cas(void *p, unsigned sz, uint64_t old, uint64_t nv)
{
	switch (sz) {
	case 1: { uint8_t o = (uint8_t)old; return __atomic_compare_exchange_n(
	    (uint8_t *)p, &o, (uint8_t)nv, false, __ATOMIC_SEQ_CST,
	    __ATOMIC_SEQ_CST); }
	case 2: { uint16_t o = (uint16_t)old; return __atomic_compare_exchange_n(
	    (uint16_t *)p, &o, (uint16_t)nv, false, __ATOMIC_SEQ_CST,
	    __ATOMIC_SEQ_CST); }
	case 4: { uint32_t o = (uint32_t)old; return __atomic_compare_exchange_n(
	    (uint32_t *)p, &o, (uint32_t)nv, false, __ATOMIC_SEQ_CST,
	    __ATOMIC_SEQ_CST); }
	default: return __atomic_compare_exchange_n((uint64_t *)p, &old, nv,
	    false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
}

/* Read-modify-write of the r/m operand: fn(c, ctx, old) gives the new
 * value (and sets flags).  Atomic when LOCKed and in RAM; write=false
 * computes without storing (CMP/TEST). */
typedef uint64_t bt_rmw_fn(struct bt_cpu *c, uint64_t ctx, unsigned sz,
    uint64_t old);
void bt_rmw(struct bt_cpu *c, const struct bt_insn *i, unsigned sz,
    bt_rmw_fn *fn, uint64_t ctx);

/* --- decode.c --- */
/* Decode one instruction at lin (fetching through the exec path) into *i.
 * Returns 0, or -1 when fetching faulted (*pf_err, *pf_lin set). */
int bt_decode(struct bt_cpu *c, uint64_t lin, struct bt_insn *i,
    uint32_t *pf_err, uint64_t *pf_lin);
/* exec_fast.c: swap in a specialized handler where one applies. */
void bt_specialize(struct bt_cpu *c, struct bt_insn *i);
/* Fuse a register CMP/TEST/DEC... with the Jcc after it; true if done
 * (first then covers both). */
bool bt_fuse(struct bt_insn *first, const struct bt_insn *jcc);
/* What an inline-compilable fast handler does (for jit.c). */
enum { BT_FD_MOV = 1, BT_FD_ALU, BT_FD_LEA, BT_FD_LOAD, BT_FD_STORE,
       BT_FD_PUSH, BT_FD_POP, BT_FD_CALL, BT_FD_RET, BT_FD_LALU,
       BT_FD_JCC, BT_FD_SHIFT, BT_FD_IMUL, BT_FD_CMOV, BT_FD_SETCC,
       BT_FD_UNARY, BT_FD_MOVX, BT_FD_SHIFTCL, BT_FD_RMW };
struct bt_fdesc {
	uint8_t kind;		/* BT_FD_* */
	uint8_t op;		/* ALU: x86 group-1 index (0 ADD .. 7 CMP),
				 * 8 TEST; UNARY: group 3 (2 NOT, 3 NEG) */
	uint8_t sz;		/* 4 or 8 (1 and 2 in some forms) */
	uint8_t dst, src;	/* register numbers */
	uint8_t imm;		/* source is i->imm */
	uint8_t write;		/* result goes to dst */
	uint8_t branch;		/* fused Jcc: condition in n,
				 * displacement in rel */
	uint8_t hi;		/* byte register AH..BH: byte 1 of dst/src */
	uint8_t shi;		/* ALU on bytes: the same for src */
	uint8_t amem;		/* LALU: the memory operand is the first
				 * (else the second, after register dst) */
	uint8_t n;		/* SHIFT: the count (1..size-1, op is the
				 * group-2 index: 0 ROL 1 ROR 4 SHL 5 SHR
				 * 7 SAR); CMOV, SETCC: the condition;
				 * MOVX: the source size (op: sign-extend);
				 * SHIFTCL: op as SHIFT, the count in CL;
				 * RMW: 1 = INC (op 0) / DEC (op 1);
				 * LOAD: 1 = sign-extend 32 to 64 bits */
	int64_t rel;		/* fused Jcc: from the next RIP */
};
bool bt_fast_desc(const struct bt_insn *i, struct bt_fdesc *d);
/* True if the instruction ends a block. */
bool bt_insn_ends_block(const struct bt_insn *i);

/* --- handlers, by group (exec_*.c) --- */
#define H(name) bt_fn name
/* exec_alu.c */
H(bt_x_alu); H(bt_x_alu_imm); H(bt_x_test); H(bt_x_incdec);
H(bt_x_grp3); H(bt_x_shift); H(bt_x_shd); H(bt_x_imul); H(bt_x_bt);
H(bt_x_bitscan); H(bt_x_popcnt); H(bt_x_xadd); H(bt_x_cmpxchg);
H(bt_x_cmpxchg8b); H(bt_x_xchg); H(bt_x_bswap); H(bt_x_bcd);
/* exec_mov.c */
H(bt_x_mov); H(bt_x_mov_imm); H(bt_x_mov_rimm); H(bt_x_mov_moffs);
H(bt_x_movx); H(bt_x_movsxd); H(bt_x_lea); H(bt_x_cbw); H(bt_x_cwd);
H(bt_x_push); H(bt_x_pop); H(bt_x_push_imm); H(bt_x_pop_rm);
H(bt_x_pusha); H(bt_x_popa); H(bt_x_cmov); H(bt_x_setcc);
H(bt_x_flagop); H(bt_x_lahf); H(bt_x_sahf); H(bt_x_pushf); H(bt_x_popf);
H(bt_x_nop); H(bt_x_xlat); H(bt_x_enter); H(bt_x_leave); H(bt_x_movnti);
H(bt_x_movbe);
/* exec_ctl.c */
H(bt_x_jcc); H(bt_x_jmp); H(bt_x_call); H(bt_x_ret); H(bt_x_grp5);
H(bt_x_loop); H(bt_x_jmpf); H(bt_x_callf); H(bt_x_retf); H(bt_x_int);
H(bt_x_iret); H(bt_x_ud); H(bt_x_hlt);
/* exec_str.c */
H(bt_x_string); H(bt_x_io);
/* exec_sys.c */
H(bt_x_movseg); H(bt_x_pushseg); H(bt_x_popseg); H(bt_x_lxs);
H(bt_x_grp6); H(bt_x_grp7); H(bt_x_movcr); H(bt_x_movdr); H(bt_x_clts);
H(bt_x_rdmsr); H(bt_x_wrmsr); H(bt_x_rdtsc); H(bt_x_cpuid);
H(bt_x_syscall); H(bt_x_sysret); H(bt_x_sysenter); H(bt_x_sysexit);
H(bt_x_lar); H(bt_x_lsl); H(bt_x_cli); H(bt_x_sti); H(bt_x_grp15);
H(bt_x_sti_paired);
H(bt_x_invd);
/* exec_simd.c */
H(bt_x_simd);
#undef H
/* exec_sse.c: a specialized handler for a common SSE form decoded as
 * bt_x_simd (it falls back to bt_x_simd for anything unusual). */
void bt_sse_specialize(struct bt_insn *i);

/* --- system.c / msr.c / cpuid.c --- */
int bt_msr_read(struct bt_cpu *c, uint32_t idx, uint64_t *v);
int bt_msr_write(struct bt_cpu *c, uint32_t idx, uint64_t v);
void bt_cpuid(struct bt_cpu *c, uint32_t leaf, uint32_t sub, uint32_t r[4]);
uint64_t bt_tsc(struct bt_cpu *c);
void bt_tsc_set(struct bt_cpu *c, uint64_t tsc);
void bt_set_cr0(struct bt_cpu *c, uint64_t v);
void bt_set_cr4(struct bt_cpu *c, uint64_t v);
void bt_set_cr3(struct bt_cpu *c, uint64_t v);
/* TSC frequency: 1 GHz, so the TSC is vclock_ns() plus the VM's offset
 * plus the vCPU's own adjustment. */
#define BT_TSC_HZ 1000000000ull

/* --- translate.c --- */
int bt_tc_init(struct bt_cpu *c);
void bt_tc_fini(struct bt_cpu *c);
void bt_tc_flush(struct bt_cpu *c);
/* The block at CS:RIP (decoded on first use); may raise #PF.  hint
 * (or NULL): a block that may be it, tried before the hash table. */
struct bt_block *bt_tc_lookup(struct bt_cpu *c, struct bt_block *hint);
/* Still current (no store hit its pages since it was decoded)? */
bool bt_tc_valid(struct bt_cpu *c, const struct bt_block *b);
/* Execute exactly one instruction without caching it. */
void bt_tc_step(struct bt_cpu *c);

/* Run one block from its first instruction (inline: it is the inner
 * loop of the whole CPU). */
static inline void
bt_tc_run(struct bt_cpu *c, struct bt_block *b)
{
	const struct bt_insn *i = b->insn, *end = b->insn + b->ninsn;
	uint64_t ipmask = b->mode == BT_M64 ? ~0ull : b->mode == BT_M32 ?
	    0xffffffffull : 0xffffull;
	bool shadow = c->shadow;

	/* The instruction after STI or MOV SS runs alone (those end their
	 * block): once its shadow is over, a pending interrupt must be
	 * taken before the next one, so the run loop must look again. */
	if (unlikely(shadow) && b->ninsn > 1)
		end = b->insn + 1;
	c->cur = b;
	for (; i < end; i++) {
		c->npc = (c->rip + i->len) & ipmask;
		i->fn(c, i);
		c->rip = c->npc;
		if (unlikely(c->brk)) {
			c->brk = 0;
			i++;
			break;
		}
	}
	c->ninsns += (uint64_t)(i - b->insn);
	c->cur = NULL;
	if (unlikely(shadow))
		c->shadow = 0;
}

/* --- jit.c, jit_link.c: host code for 64-bit blocks --- */
/* Set up c->jit unless TERMVISOR_BT_JIT is 0, off or no (or the host
 * refuses the mapping, then the interpreter runs alone); 0 or -errno. */
int bt_jit_init(struct bt_cpu *c);
void bt_jit_fini(struct bt_cpu *c);
/* Forget every generated block (with the translation cache). */
void bt_jit_flush(struct bt_cpu *c);
/* Room for one more block?  false: flush first. */
bool bt_jit_room(struct bt_cpu *c);
/* Generate code for b (sets b->jit, or leaves it NULL). */
void bt_jit_compile(struct bt_cpu *c, struct bt_block *b);
/* Make from's code jump straight to to's when it ends at to's RIP
 * (until the TLB or any code changes). */
void bt_jit_link(struct bt_cpu *c, struct bt_block *from,
    struct bt_block *to);
/* Run b's code: what bt_tc_run(c, b) does, then maybe the blocks
 * linked after it, up to the first with an event pending. */
void bt_jit_run(struct bt_cpu *c, struct bt_block *b);

/* Run one block, through its host code when it has some. */
static inline void
bt_tc_exec(struct bt_cpu *c, struct bt_block *b)
{
	if (b->jit != NULL && likely(!c->shadow)) {
		if (c->jit_last != NULL)
			bt_jit_link(c, c->jit_last, b);
		bt_jit_run(c, b);
	} else {
		c->jit_last = NULL;
		bt_tc_run(c, b);
	}
}

/* I/O through the VMM's exit path. */
uint64_t bt_pio_in(struct bt_cpu *c, uint16_t port, unsigned sz);
void bt_pio_out(struct bt_cpu *c, uint16_t port, unsigned sz, uint64_t v);

/* Set by bt_raise paths: a triple fault happened. */
#define BT_JMP_FAULT 1
#define BT_JMP_SHUTDOWN 2
#define BT_JMP_ERROR 3
/* A KVM assist stint reached an instruction KVM must run: the state is
 * at its start. */
#define BT_JMP_STOP 4

#endif
