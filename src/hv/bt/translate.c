/*
 * The translation cache: guest code decoded once into blocks of pre-
 * decoded instructions, found again by (guest physical address, decode
 * mode).  Each vCPU has its own cache (no locking, no freeing under a
 * running vCPU); coherence with stores comes from per-page generations
 * shared by all vCPUs: a store into a page holding code bumps the page's
 * generation, and a block whose recorded generation is stale is decoded
 * again the next time it is looked up.
 */
#include "hv/bt/bt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "hv/vm.h"
#include "util/log.h"

#define TC_HASH_BITS 16
#define TC_HASH_SIZE (1u << TC_HASH_BITS)
#define TC_ARENA (96ull << 20)
#define TC_MAX_INSNS 48

int
bt_tc_init(struct bt_cpu *c)
{
	c->hash = calloc(TC_HASH_SIZE, sizeof(*c->hash));
	c->arena = mmap(NULL, TC_ARENA, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->hash == NULL || c->arena == MAP_FAILED) {
		free(c->hash);
		c->hash = NULL;
		c->arena = NULL;
		return -ENOMEM;
	}
	c->arena_size = TC_ARENA;
	c->arena_used = 0;
	return bt_jit_init(c);
}

void
bt_tc_fini(struct bt_cpu *c)
{
	bt_jit_fini(c);
	free(c->hash);
	if (c->arena != NULL)
		munmap(c->arena, c->arena_size);
	c->hash = NULL;
	c->arena = NULL;
}

void
bt_tc_flush(struct bt_cpu *c)
{
	memset(c->hash, 0, TC_HASH_SIZE * sizeof(*c->hash));
	c->arena_used = 0;
	bt_jit_flush(c);
	c->tc_epoch++;
	c->cur = NULL;
}

static unsigned
tc_hash(uint64_t gpa, unsigned mode)
{
	uint64_t h = (gpa ^ ((uint64_t)mode << 62)) * 0x9e3779b97f4a7c15ull;

	return (unsigned)(h >> (64 - TC_HASH_BITS));
}

/* Record that RAM page pg holds code: stores to it must take the slow
 * path (in this vCPU's TLB now, in the others' at their next block). */
static void
tc_mark_code(struct bt_cpu *c, int64_t pg, uint64_t gpa_page)
{
	if (c->bvm->code[pg])
		return;
	c->bvm->code[pg] = 1;
	for (int u = 0; u < 2; u++)
		for (int k = 0; k < BT_TLB_SIZE; k++)
			if (c->tlb[u][k].gpa == gpa_page)
				c->tlb[u][k].tag_w = BT_TLB_INVALID;
	__atomic_fetch_add(&c->bvm->code_gen, 1, __ATOMIC_SEQ_CST);
	c->tlb_code_gen = __atomic_load_n(&c->bvm->code_gen, __ATOMIC_RELAXED);
	/* The others may hold the page writable: make them look (their
	 * bt_events() compares code_gen and flushes). */
	for (int k = 0; k < c->vm->nvcpus; k++)
		if (c->vm->vcpus[k] != NULL && c->vm->vcpus[k] != c->vcpu)
			vcpu_kick(c->vm->vcpus[k], VCPU_REQ_IRQ);
}

static uint32_t
tc_page(struct bt_cpu *c, uint64_t gpa)
{
	int64_t pg = bt_ram_page(c->vm, gpa);

	if (pg < 0)
		return ~0u;
	tc_mark_code(c, pg, gpa & ~0xfffull);
	return (uint32_t)pg;
}

static struct bt_block *
tc_translate(struct bt_cpu *c, uint64_t lin, uint64_t gpa)
{
	size_t need = sizeof(struct bt_block) +
	    TC_MAX_INSNS * sizeof(struct bt_insn);
	struct bt_block *b;
	uint64_t pc = c->rip, ipmask;	/* offset in CS; lin includes the base */
	unsigned n = 0;
	unsigned h;
	bool sti = false;	/* an STI took the next instruction in */

	if (c->arena_used + need > c->arena_size || !bt_jit_room(c))
		bt_tc_flush(c);
	b = (struct bt_block *)(c->arena + c->arena_used);
	memset(b, 0, sizeof(*b));
	b->gpa = gpa;
	b->mode = c->mode;
	b->page[0] = b->page[1] = ~0u;
	ipmask = c->mode == BT_M64 ? ~0ull : c->mode == BT_M32 ?
	    0xffffffffull : 0xffffull;
	/* Mark the page as code and take its generation before reading a
	 * byte: a store that lands during the decode then either sees the
	 * mark (and bumps the generation past ours) or is seen by it. */
	/* An invalidation clears the mark, then bumps the generation: a
	 * mark it cleared after we set it shows here, so mark again. */
	for (;;) {
		b->page[0] = tc_page(c, gpa);
		if (b->page[0] == ~0u)
			break;
		b->gen[0] = __atomic_load_n(&c->bvm->gen[b->page[0]],
		    __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&c->bvm->code[b->page[0]], __ATOMIC_SEQ_CST))
			break;
	}
	while (n < TC_MAX_INSNS) {
		struct bt_insn *i = &b->insn[n];
		uint32_t err;
		uint64_t pflin, end;

		if (bt_decode(c, (c->segbase[SEG_CS] + pc) & c->linmask, i,
		    &err, &pflin) != 0) {
			if (n > 0)
				break;
			if (err == 0xffffffffu)
				siglongjmp(c->jb, BT_JMP_ERROR);
			bt_raise_pf(c, pflin, err);
		}
		if (!c->generic)
			bt_specialize(c, i);
		n++;
		end = (c->segbase[SEG_CS] + pc + i->len - 1) & c->linmask;
		if (((end ^ lin) & ~0xfffull) != 0 && b->page[1] == ~0u) {
			uint64_t g2;

			/* The instruction spills onto the next page: the
			 * block depends on that page too. */
			if (bt_walk(c, end, BT_ACC_X, c->cpl == 3, &g2, NULL,
			    &err) == 0) {
				b->page[1] = tc_page(c, g2);
				if (b->page[1] != ~0u) {
					b->gen[1] = __atomic_load_n(
					    &c->bvm->gen[b->page[1]],
					    __ATOMIC_SEQ_CST);
					n--;	/* decode it again, marked */
					continue;
				}
			}
		}
		if (n >= 2 && bt_fuse(&b->insn[n - 2], i)) {
			n--;
			break;	/* the Jcc ended the block */
		}
		if (sti)
			break;		/* the instruction after STI */
		if (i->fn == bt_x_sti && n < TC_MAX_INSNS) {
			/* Its shadow covers the next instruction: run that
			 * one in this block, then end it (the run loop, or
			 * the JIT's chain test, takes a waiting interrupt). */
			i->fn = bt_x_sti_paired;
			sti = true;
		} else if (bt_insn_ends_block(i)) {
			break;
		}
		pc = (pc + i->len) & ipmask;
		if ((((c->segbase[SEG_CS] + pc) ^ lin) & ~0xfffull) != 0)
			break;
	}
	if (b->insn[n - 1].fn == bt_x_sti_paired)
		b->insn[n - 1].fn = bt_x_sti;	/* alone at the end after all */
	b->ninsn = (uint16_t)n;
	c->arena_used += (sizeof(struct bt_block) + n *
	    sizeof(struct bt_insn) + 15) & ~(size_t)15;
	bt_jit_compile(c, b);
	h = tc_hash(gpa, b->mode);
	b->hnext = c->hash[h];
	c->hash[h] = b;
	return b;
}

bool
bt_tc_valid(struct bt_cpu *c, const struct bt_block *b)
{
	for (int k = 0; k < 2; k++)
		if (b->page[k] != ~0u && b->gen[k] !=
		    __atomic_load_n(&c->bvm->gen[b->page[k]], __ATOMIC_RELAXED))
			return false;
	return true;
}

/*
 * A block whose last instruction spills onto the next page fits this
 * lookup only if that page maps, for this CPL, to the page it was
 * decoded from: it may not be executable from ring 3, or lin may be
 * another mapping of the first page with something else after it.
 */
static bool
tc_next_page_fits(struct bt_cpu *c, const struct bt_block *b, uint64_t lin)
{
	uint64_t l2 = ((lin & ~0xfffull) + 0x1000) & c->linmask, g;
	struct bt_tlb *e = &c->tlbc[(l2 >> 12) & (BT_TLB_SIZE - 1)];
	uint32_t err;

	bt_xmark(c, l2);	/* an INVLPG there must drop the block too */
	if (e->tag_x == l2)
		g = e->gpa;
	else if (bt_walk(c, l2, BT_ACC_X, c->cpl == 3, &g, NULL, &err) != 0)
		return false;
	return bt_ram_page(c->vm, g) == (int64_t)b->page[1];
}

/* The block at CS:RIP, decoding it if needed.  May raise #PF. */
struct bt_block *
bt_tc_lookup(struct bt_cpu *c, struct bt_block *hint)
{
	uint64_t lin = (c->segbase[SEG_CS] + c->rip) & c->linmask, gpa;
	struct bt_tlb *e = &c->tlbc[(lin >> 12) & (BT_TLB_SIZE - 1)];
	struct bt_block **pp, *b;

	if (likely(e->tag_x == (lin & ~0xfffull)))
		gpa = e->gpa | (lin & 0xfff);
	else
		gpa = bt_translate(c, lin, BT_ACC_X, c->cpl == 3);
	bt_xmark(c, lin);
	c->xglobal = e->tag_x == (lin & ~0xfffull) && e->global;
	/* The hint passes the tests the hash chain's blocks pass. */
	if (hint != NULL && hint->gpa == gpa && hint->mode == c->mode &&
	    bt_tc_valid(c, hint) && (hint->page[1] == ~0u ||
	    tc_next_page_fits(c, hint, lin)))
		return hint;
	for (pp = &c->hash[tc_hash(gpa, c->mode)]; (b = *pp) != NULL;
	    pp = &b->hnext) {
		if (b->gpa != gpa || b->mode != c->mode)
			continue;
		if (likely(bt_tc_valid(c, b))) {
			if (likely(b->page[1] == ~0u) ||
			    tc_next_page_fits(c, b, lin))
				return b;
			continue;	/* decode anew (the new block, ending
					 * before the spill, goes first) */
		}
		*pp = b->hnext;		/* stale: drop and decode again */
		break;
	}
	return tc_translate(c, lin, gpa);
}

/*
 * Instructions a KVM assist stint leaves to KVM: HLT (the in-kernel
 * irqchip wakes it), MSRs and CPUID (KVM's values, the in-kernel x2APIC
 * and TSC deadline), and 0F 01's VMX/SVM calls and MONITOR/MWAIT.  Port
 * and device-memory accesses stop at bt_pio_in/out and mmu_mmio.
 */
static bool
bt_stint_deny(const struct bt_insn *i)
{
	if (i->fn == bt_x_hlt || i->fn == bt_x_rdmsr || i->fn == bt_x_wrmsr ||
	    i->fn == bt_x_cpuid || i->opc == 0x133 /* RDPMC */ ||
	    i->opc == 0x107 /* SYSRET */)
		return true;
	if (i->opc == 0x101 && i->mod == 3) {
		unsigned rm = i->rm & 7;

		return i->reg == 0 || i->reg == 3 || (i->reg == 1 && rm <= 1);
	}
	return false;
}

/* Execute one instruction at CS:RIP without caching it (KVM assist). */
void
bt_tc_step(struct bt_cpu *c)
{
	struct bt_insn insn;
	uint64_t lin = (c->segbase[SEG_CS] + c->rip) & c->linmask, pflin;
	uint64_t ipmask = c->mode == BT_M64 ? ~0ull : c->mode == BT_M32 ?
	    0xffffffffull : 0xffffull;
	uint32_t err;
	bool shadow = c->shadow;

	if (bt_decode(c, lin, &insn, &err, &pflin) != 0) {
		if (err == 0xffffffffu)
			siglongjmp(c->jb, BT_JMP_ERROR);
		bt_raise_pf(c, pflin, err);
	}
	if (unlikely(c->stint) && bt_stint_deny(&insn))
		siglongjmp(c->jb, BT_JMP_STOP);
	c->npc = (c->rip + insn.len) & ipmask;
	insn.fn(c, &insn);
	c->rip = c->npc;
	c->brk = 0;
	c->ninsns++;
	if (shadow)	/* this was the shadowed instruction */
		c->shadow = 0;
}
