/*
 * The software MMU: page walks (2-level, PAE, 4-level), the direct-mapped
 * soft TLB, physical accesses (RAM, or MMIO through the VMM's exit path)
 * and the code-page tracking that keeps translations coherent with
 * stores.
 *
 * A TLB entry grants read, write and exec separately.  Write is granted
 * only when the walk already set the dirty bit, the page is not ROM and
 * holds no translated code, so every store the fast path takes is one
 * the architecture allows without side effects; everything else goes
 * through the slow path here.
 */
#include "hv/bt/bt_internal.h"

#include <stdio.h>

#include "devices/lapic.h"
#include "hv/exit.h"
#include "hv/vm.h"
#include "util/log.h"

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_U (1ull << 2)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_G (1ull << 8)
#define PTE_NX (1ull << 63)
#define PF_P 1u
#define PF_W 2u
#define PF_U 4u
#define PF_RSVD 8u
#define PF_I 16u
/* MAXPHYADDR reported in CPUID 0x80000008. */
#define BT_PHYS_BITS 40
#define ADDR_MASK (((1ull << BT_PHYS_BITS) - 1) & ~0xfffull)

int64_t
bt_ram_page(struct vm *vm, uint64_t gpa)
{
	for (int k = 0; k < vm->nregions; k++) {
		struct mem_region *r = &vm->regions[k];

		if (gpa >= r->gpa && gpa - r->gpa < r->size) {
			struct bt_vm *b = vm->accel_data;

			if (r->hva >= vm->ram && r->hva < vm->ram + vm->ram_size)
				return (r->hva - vm->ram +
				    (int64_t)(gpa - r->gpa)) >> 12;
			/* Device memory (bt_map_mem); a KVM assist core
			 * does not track it (vm->accel_data is KVM's). */
			return vm->accel != &bt_accel_ops ||
			    b->dev_page[r->slot] < 0 ? -1 :
			    b->dev_page[r->slot] + (int64_t)((gpa - r->gpa) >> 12);
		}
	}
	return -1;
}

/* Host pointer of RAM at gpa (page-local), NULL for MMIO or ROM when
 * writing. */
static uint8_t *
mmu_ram(struct vm *vm, uint64_t gpa, bool write)
{
	for (int k = 0; k < vm->nregions; k++) {
		struct mem_region *r = &vm->regions[k];

		if (gpa >= r->gpa && gpa - r->gpa < r->size) {
			if (write && (r->flags & MEM_READONLY))
				return NULL;
			return r->hva + (gpa - r->gpa);
		}
	}
	return NULL;
}

static uint64_t
mmu_mmio(struct bt_cpu *c, uint64_t gpa, unsigned sz, bool write, uint64_t v)
{
	struct vm_exit e = { .kind = VM_EXIT_MMIO };

	/* A KVM assist stint leaves device memory to KVM: the in-kernel
	 * LAPIC and IOAPIC are there, not on our bus. */
	if (unlikely(c->stint))
		siglongjmp(c->jb, BT_JMP_STOP);
	e.io.addr = gpa;
	e.io.len = (uint8_t)sz;
	e.io.write = write;
	if (write)
		memcpy(e.io.data, &v, sz);
	/* The LAPIC (EOIs, timer writes: several per interrupt) without
	 * waiting for the device lock the event thread may hold. */
	if (!lapic_cpu_mmio(c->vcpu, gpa, e.io.data, sz, write))
		vcpu_handle_exit(c->vcpu, &e);
	v = 0;
	if (!write)
		memcpy(&v, e.io.data, sz);
	return v;
}

uint64_t
bt_phys_read(struct bt_cpu *c, uint64_t gpa, unsigned sz)
{
	uint8_t *p = mmu_ram(c->vm, gpa, false);

	if (p != NULL && ((gpa & 0xfff) + sz <= 0x1000))
		return bt_load_host(p, sz);
	if (p != NULL) {
		uint64_t v = 0;

		for (unsigned k = 0; k < sz; k++)
			v |= bt_phys_read(c, gpa + k, 1) << (8 * k);
		return v;
	}
	return mmu_mmio(c, gpa, sz, false, 0);
}

void
bt_phys_write(struct bt_cpu *c, uint64_t gpa, unsigned sz, uint64_t v)
{
	uint8_t *p = mmu_ram(c->vm, gpa, true);
	int64_t pg;

	if (p == NULL) {
		mmu_mmio(c, gpa, sz, true, v);
		return;
	}
	if ((gpa & 0xfff) + sz > 0x1000) {
		for (unsigned k = 0; k < sz; k++)
			bt_phys_write(c, gpa + k, 1, v >> (8 * k));
		return;
	}
	pg = bt_ram_page(c->vm, gpa);
	/* Store first, then look for code: a translator that marked the
	 * page before our look gets its generation bumped after the new
	 * bytes are in place; one that marks it after reads them. */
	bt_store_host(p, sz, v);
	if (pg >= 0) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&c->bvm->code[pg], __ATOMIC_RELAXED))
			bt_code_invalidate(c, gpa);
		__atomic_store_n(&c->bvm->dirty[pg], 1, __ATOMIC_RELAXED);
	}
}

void
bt_code_invalidate(struct bt_cpu *c, uint64_t gpa)
{
	int64_t pg = bt_ram_page(c->vm, gpa);

	if (pg < 0)
		return;
	c->bvm->code[pg] = 0;
	__atomic_fetch_add(&c->bvm->gen[pg], 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&c->bvm->inval_gen, 1, __ATOMIC_SEQ_CST);
	if (c->cur != NULL && (c->cur->page[0] == pg || c->cur->page[1] == pg))
		c->brk = 1;
}

/* Read a paging-structure entry; sets A (and D on dirty) atomically. */
static uint64_t
mmu_pte(struct bt_cpu *c, uint64_t gpa, bool pae)
{
	uint8_t *p = mmu_ram(c->vm, gpa, false);

	if (p == NULL)
		return 0;
	return pae ? __atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED) :
	    __atomic_load_n((uint32_t *)p, __ATOMIC_RELAXED);
}

static void
mmu_pte_set(struct bt_cpu *c, uint64_t gpa, bool pae, uint64_t bits)
{
	uint8_t *p = mmu_ram(c->vm, gpa, true);

	if (p == NULL)
		return;
	/* The accessed and dirty bits are guest memory too: a migration
	 * must send them. */
	if (bt_ram_page(c->vm, gpa) >= 0)
		__atomic_store_n(&c->bvm->dirty[bt_ram_page(c->vm, gpa)], 1,
		    __ATOMIC_RELAXED);
	if (pae)
		__atomic_fetch_or((uint64_t *)p, bits, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_or((uint32_t *)p, (uint32_t)bits,
		    __ATOMIC_SEQ_CST);
}

int
bt_walk(struct bt_cpu *c, uint64_t lin, int acc, bool user, uint64_t *gpa,
    unsigned *info, uint32_t *err)
{
	bool nxe = c->efer & EFER_NXE, pae, wp = c->cr0 & CR0_WP;
	uint64_t ent_gpa[4], e = 0, base, rsvd = 0;
	bool rw = true, us = true, nx = false;
	int levels, lvl, n = 0;
	unsigned dummy;
	uint64_t pgmask = 0xfff;

	if (info == NULL)
		info = &dummy;
	*info = BT_WALK_DIRTY_W;
	if (!(c->cr0 & CR0_PG)) {
		*gpa = lin & c->linmask;
		return 0;
	}
	if (c->efer & EFER_LMA) {
		levels = 4;
		pae = true;
		base = c->cr3 & ADDR_MASK;
	} else if (c->cr4 & CR4_PAE) {
		uint64_t pdpte = mmu_pte(c, (c->cr3 & 0xffffffe0) +
		    ((lin >> 30) & 3) * 8, true);

		if (!(pdpte & PTE_P))
			goto notpresent;
		if (pdpte & 0x1e6)
			goto reserved;
		levels = 2;
		pae = true;
		base = pdpte & ADDR_MASK;
	} else {
		levels = 2;
		pae = false;
		base = c->cr3 & 0xfffff000;
	}
	if (pae)
		rsvd = (~ADDR_MASK & 0x000ffffffffff000ull) | (nxe ? 0 : PTE_NX);
	for (lvl = levels; lvl >= 1; lvl--) {
		unsigned shift = pae ? 12 + 9 * (lvl - 1) : 12 + 10 * (lvl - 1);
		unsigned idx = pae ? (lin >> shift) & 511 : (lin >> shift) & 1023;

		ent_gpa[n] = base + idx * (pae ? 8 : 4);
		e = mmu_pte(c, ent_gpa[n], pae);
		n++;
		if (!(e & PTE_P))
			goto notpresent;
		if (e & rsvd)
			goto reserved;
		if (levels == 4 && lvl == 4 && (e & PTE_PS))
			goto reserved;
		rw = rw && (e & PTE_W);
		us = us && (e & PTE_U);
		if (nxe && (e & PTE_NX))
			nx = true;
		if (lvl > 1 && (e & PTE_PS) && (pae || (c->cr4 & CR4_PSE))) {
			pgmask = (1ull << shift) - 1;
			if (pae) {
				base = e & ADDR_MASK & ~pgmask;
			} else {
				base = (e & 0xffc00000) |
				    ((e >> 13) & 0xff) << 32;
			}
			*info |= BT_WALK_LARGE;
			if (pgmask > 0x1fffff)
				*info |= BT_WALK_HUGE;
			break;
		}
		base = pae ? e & ADDR_MASK : e & 0xfffff000;
		if (lvl == 1) {
			pgmask = 0xfff;
			break;
		}
	}
	if (user && !us)
		goto protection;
	if (acc == BT_ACC_W && !rw && (user || wp))
		goto protection;
	if (acc == BT_ACC_X && nx)
		goto protection;
	for (int k = 0; k < n - 1; k++)
		mmu_pte_set(c, ent_gpa[k], pae, PTE_A);
	if (acc == BT_ACC_W)
		mmu_pte_set(c, ent_gpa[n - 1], pae, PTE_A | PTE_D);
	else if ((e & PTE_A) == 0)
		mmu_pte_set(c, ent_gpa[n - 1], pae, PTE_A);
	if ((e & PTE_G) && (c->cr4 & CR4_PGE))
		*info |= BT_WALK_GLOBAL;
	if (!(acc == BT_ACC_W || (e & PTE_D)) || !(rw || (!user && !wp)))
		*info &= ~BT_WALK_DIRTY_W;
	if (nx)
		*info |= 8;	/* no exec */
	*gpa = base | (lin & pgmask);
	return 0;
notpresent:
	*err = 0;
	goto out;
reserved:
	*err = PF_P | PF_RSVD;
	goto out;
protection:
	*err = PF_P;
out:
	if (acc == BT_ACC_W)
		*err |= PF_W;
	if (user)
		*err |= PF_U;
	if (acc == BT_ACC_X && nxe)
		*err |= PF_I;
	return -1;
}

static bool
mmu_canonical(struct bt_cpu *c, uint64_t lin)
{
	return !(c->efer & EFER_LMA) ||
	    (uint64_t)((int64_t)(lin << 16) >> 16) == lin;
}

static void
mmu_fill(struct bt_cpu *c, struct bt_tlb *tlb, uint64_t lin, uint64_t gpa,
    int acc, unsigned info)
{
	struct bt_tlb *e = &tlb[(lin >> 12) & (BT_TLB_SIZE - 1)];
	uint64_t page = lin & ~0xfffull;
	uint8_t *host = mmu_ram(c->vm, gpa & ~0xfffull, false);
	int64_t pg;

	if (host == NULL)
		return;		/* MMIO: always the slow path */
	if (e->tag_r != page || e->gpa != (gpa & ~0xfffull)) {
		e->tag_r = e->tag_w = e->tag_x = BT_TLB_INVALID;
		e->gpa = gpa & ~0xfffull;
		e->addend = (uintptr_t)host - page;
	}
	e->tag_r = page;
	e->global = !!(info & BT_WALK_GLOBAL);
	if (!(e->listed & (1u << e->global))) {
		e->listed |= (uint8_t)(1u << e->global);
		c->tlb_live[e->global][c->tlb_nlive[e->global]++] =
		    (uint16_t)(e - c->tlb[0]);
	}
	if (info & BT_WALK_LARGE)
		c->tlb_large |= (info & BT_WALK_HUGE) ? 3 : 1;
	if (acc == BT_ACC_X)
		e->tag_x = page;
	pg = bt_ram_page(c->vm, gpa);
	if (acc == BT_ACC_W && pg >= 0)
		__atomic_store_n(&c->bvm->dirty[pg], 1, __ATOMIC_RELAXED);
	/* Fast-path stores skip the dirty log: grant them only on pages
	 * already logged dirty (a harvest drops every write tag), and not
	 * while a harvest runs: a tag granted after this vCPU dropped its
	 * tags for the harvest, on a page the harvest then cleans, would
	 * let later stores go unlogged. */
	if ((info & BT_WALK_DIRTY_W) && mmu_ram(c->vm, gpa, true) != NULL &&
	    pg >= 0 && !c->bvm->code[pg] &&
	    __atomic_load_n(&c->bvm->dirty[pg], __ATOMIC_SEQ_CST) &&
	    !__atomic_load_n(&c->bvm->harvesting, __ATOMIC_SEQ_CST))
		e->tag_w = page;
}

uint64_t
bt_translate(struct bt_cpu *c, uint64_t lin, int acc, bool user)
{
	uint64_t gpa;
	unsigned info;
	uint32_t err;

	if (!mmu_canonical(c, lin))
		bt_raise(c, EXC_GP, 0);
	if (bt_walk(c, lin, acc, user, &gpa, &info, &err) != 0)
		bt_raise_pf(c, lin, err);
	/* tlb[1] caches user-privilege translations, tlb[0] supervisor
	 * ones (also used by implicit supervisor accesses from CPL 3). */
	mmu_fill(c, c->tlb[user], lin, gpa, acc, info);
	return gpa;
}

uint64_t
bt_read_slow(struct bt_cpu *c, uint64_t lin, unsigned sz)
{
	bool user = c->cpl == 3;

	if ((lin & 0xfff) + sz > 0x1000) {
		unsigned n0 = 0x1000 - (lin & 0xfff);
		uint64_t g0 = bt_translate(c, lin, BT_ACC_R, user);
		uint64_t g1 = bt_translate(c, (lin + n0) & c->linmask,
		    BT_ACC_R, user);
		uint64_t v = 0;

		for (unsigned k = 0; k < sz; k++)
			v |= bt_phys_read(c, k < n0 ? g0 + k : g1 + k - n0, 1)
			    << (8 * k);
		return v;
	}
	return bt_phys_read(c, bt_translate(c, lin, BT_ACC_R, user), sz);
}

void
bt_write_slow(struct bt_cpu *c, uint64_t lin, unsigned sz, uint64_t v)
{
	bool user = c->cpl == 3;

	if ((lin & 0xfff) + sz > 0x1000) {
		unsigned n0 = 0x1000 - (lin & 0xfff);
		uint64_t g0 = bt_translate(c, lin, BT_ACC_W, user);
		uint64_t g1 = bt_translate(c, (lin + n0) & c->linmask,
		    BT_ACC_W, user);

		for (unsigned k = 0; k < sz; k++)
			bt_phys_write(c, k < n0 ? g0 + k : g1 + k - n0, 1,
			    v >> (8 * k));
		return;
	}
	bt_phys_write(c, bt_translate(c, lin, BT_ACC_W, user), sz, v);
}

void *
bt_ptr_rw(struct bt_cpu *c, uint64_t lin, unsigned sz)
{
	struct bt_tlb *e = &c->tlbc[(lin >> 12) & (BT_TLB_SIZE - 1)];
	uint64_t gpa;
	uint8_t *p;
	int64_t pg;

	if ((lin & 0xfff) + sz > 0x1000) {
		/* Fault now if either page is not writable. */
		bt_translate(c, lin, BT_ACC_W, c->cpl == 3);
		bt_translate(c, (lin + sz - 1) & c->linmask, BT_ACC_W,
		    c->cpl == 3);
		return NULL;
	}
	if (likely(e->tag_w == (lin & ~0xfffull)))
		return (void *)(lin + e->addend);
	gpa = bt_translate(c, lin, BT_ACC_W, c->cpl == 3);
	p = mmu_ram(c->vm, gpa, true);
	if (p == NULL)
		return NULL;
	pg = bt_ram_page(c->vm, gpa);
	if (pg >= 0) {
		/* The caller stores after this: invalidate after it too
		 * (bt_vcpu_loop), or a decode in between keeps old bytes. */
		if (c->bvm->code[pg]) {
			bt_code_invalidate(c, gpa);
			c->smc_pend = gpa + 1;
			c->brk = 1;
		}
		__atomic_store_n(&c->bvm->dirty[pg], 1, __ATOMIC_RELAXED);
	}
	return p;
}

uint64_t
bt_sys_read(struct bt_cpu *c, uint64_t lin, unsigned sz)
{
	uint64_t v = 0;
	struct bt_tlb *e;

	lin &= c->linmask;
	e = &c->tlb[0][(lin >> 12) & (BT_TLB_SIZE - 1)];
	if (e->tag_r == (lin & ~0xfffull) && (lin & 0xfff) <= 0x1000 - sz)
		return bt_load_host((void *)(lin + e->addend), sz);
	if ((lin & 0xfff) + sz > 0x1000) {
		for (unsigned k = 0; k < sz; k++)
			v |= bt_sys_read(c, lin + k, 1) << (8 * k);
		return v;
	}
	return bt_phys_read(c, bt_translate(c, lin, BT_ACC_R, false), sz);
}

void
bt_sys_write(struct bt_cpu *c, uint64_t lin, unsigned sz, uint64_t v)
{
	struct bt_tlb *e;

	lin &= c->linmask;
	e = &c->tlb[0][(lin >> 12) & (BT_TLB_SIZE - 1)];
	if (e->tag_w == (lin & ~0xfffull) && (lin & 0xfff) <= 0x1000 - sz) {
		bt_store_host((void *)(lin + e->addend), sz, v);
		return;
	}
	if ((lin & 0xfff) + sz > 0x1000) {
		for (unsigned k = 0; k < sz; k++)
			bt_sys_write(c, lin + k, 1, v >> (8 * k));
		return;
	}
	bt_phys_write(c, bt_translate(c, lin, BT_ACC_W, false), sz, v);
}

/* Every entry, listed or not (the TLB may hold anything before the
 * first flush). */
static void
mmu_flush_all(struct bt_cpu *c)
{
	for (int u = 0; u < 2; u++)
		for (int k = 0; k < BT_TLB_SIZE; k++) {
			struct bt_tlb *e = &c->tlb[u][k];

			e->tag_r = e->tag_w = e->tag_x = BT_TLB_INVALID;
			e->listed = 0;
		}
	c->tlb_nlive[0] = c->tlb_nlive[1] = 0;
	c->tlb_large = 0;
}

/* The entries of list g that are not global (all if global), or only
 * those inside the naturally aligned region of mask + 1 bytes at base
 * (mask 0: anywhere).  An entry left in one list may still be in the
 * other with its tags dropped: harmless. */
static void
mmu_flush_list(struct bt_cpu *c, int g, bool global, uint64_t base,
    uint64_t mask)
{
	uint16_t *live = c->tlb_live[g];
	uint32_t n = 0;

	for (uint32_t k = 0; k < c->tlb_nlive[g]; k++) {
		struct bt_tlb *e = &c->tlb[0][live[k]];

		if (!global && e->global) {
			/* refilled global since it was listed here */
			if (!(e->listed & 2)) {
				e->listed |= 2;
				c->tlb_live[1][c->tlb_nlive[1]++] = live[k];
			}
			e->listed &= (uint8_t)~1u;
		} else if (mask == 0 || (e->tag_r != BT_TLB_INVALID &&
		    (e->tag_r & ~mask) == base)) {
			e->tag_r = e->tag_w = e->tag_x = BT_TLB_INVALID;
			e->listed &= (uint8_t)~(1u << g);
		} else {
			live[n++] = live[k];
		}
	}
	c->tlb_nlive[g] = n;
}

void
bt_tlb_flush(struct bt_cpu *c, bool global)
{
	if (global)
		mmu_flush_all(c);
	else
		mmu_flush_list(c, 0, false, 0, 0);
	bt_tlb_epoch_bump(c, global);
}

void
bt_tlb_drop_writes(struct bt_cpu *c)
{
	for (int u = 0; u < 2; u++)
		for (int k = 0; k < BT_TLB_SIZE; k++)
			c->tlb[u][k].tag_w = BT_TLB_INVALID;
}

void
bt_tlb_flush_page(struct bt_cpu *c, uint64_t lin)
{
	/* The kernel's fixmap and vmalloc flushes never touch code. */
	if (bt_xmark_test(c, lin))
		bt_tlb_epoch_bump(c, true);
	if (c->tlb_large) {
		/* An entry cached from a large page holding lin has its
		 * tag in that page: in lin's 2 MiB if no larger page was
		 * seen, else in its 1 GiB (a 4 MiB page's too). */
		uint64_t mask = (c->tlb_large & 2) ? (1ull << 30) - 1 :
		    (1ull << 21) - 1;

		for (int g = 0; g < 2; g++)
			mmu_flush_list(c, g, true, lin & ~mask, mask);
		return;
	}
	for (int u = 0; u < 2; u++) {
		struct bt_tlb *e = &c->tlb[u][(lin >> 12) & (BT_TLB_SIZE - 1)];

		e->tag_r = e->tag_w = e->tag_x = BT_TLB_INVALID;
	}
}
