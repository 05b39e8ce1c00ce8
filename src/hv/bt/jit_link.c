/*
 * The ends of generated blocks and how they find the next one without
 * the run loop: each 64-bit block ends in two chain slots that
 * bt_jit_link fills with (RIP, TLB epoch or page test, invalidation
 * count, CPL, jump), then an inline probe of the run loop's jump cache.
 * Every test that fails leaves through the common exit to bt_vcpu_loop,
 * which finds the block the slow way and links it here.
 */
#include "hv/bt/jit_emit.h"

#include <stdint.h>
#include <string.h>

/*
 * A block's normal end: if nothing waits for the run loop (the test
 * bt_vcpu_loop makes before each block, plus the interrupt shadow and
 * the mode), try the two chain slots.  A slot holds a RIP, the TLB
 * epoch, the code-invalidation count and the CPL it was made under, and
 * a jump to that block's code; until bt_jit_link fills it, its RIP never
 * matches.  Every failed test jumps to the exit (patched by the caller).
 */
void
jit_link_chain(struct jx *x, struct bt_block *b, bool probe,
    uint8_t **ex_at, unsigned *nex)
{
	e_ld(x, true, RAX, OFF(reqp));
	e1(x, 0x8b); e1(x, 0x00);		/* mov eax, [rax] */
	/* evpend, shadow, mode ^ BT_M64, and irq_hint if IF: ecx */
	e_ld(x, false, RCX, OFF(evpend));
	e1(x, 0x81); e1(x, 0xf1); e4(x, BT_M64 << 16);	/* xor ecx, imm */
	e_ld(x, false, RDX, OFF(flags));
	e1(x, 0xc1); e1(x, 0xe2); e1(x, 22);	/* shl edx, 22: IF -> 31 */
	e1(x, 0xc1); e1(x, 0xfa); e1(x, 7);	/* sar edx, 7: IF -> 31..24 */
	e1(x, 0x81); e1(x, 0xca); e4(x, 0x00ffffff);	/* or edx, imm */
	e1(x, 0x21); e1(x, 0xd1);		/* and ecx, edx */
	e1(x, 0x09); e1(x, 0xc8);		/* or eax, ecx */
	ex_at[(*nex)++] = e_jmp(x, 5, NULL);	/* jnz exit */
	e1(x, 0xf6);			/* test byte [rbx+flags+1], 1: TF */
	e_mem(x, 0, OFF(flags) + 1);
	e1(x, 1);
	ex_at[(*nex)++] = e_jmp(x, 5, NULL);	/* jnz exit */
	e_ld(x, true, RAX, OFF(rip));
	for (int k = 0; k < 2; k++) {
		uint8_t *slot = x->p, *miss;

		b->jslot[k] = (uint32_t)(slot - x->j->rw);
		e1(x, 0x48); e1(x, 0xb9);		/* mov rcx, imm64 */
		e8(x, 1ull << 63);	/* +2: never a RIP */
		e1(x, 0x48); e1(x, 0x39); e1(x, 0xc8);	/* cmp rax, rcx */
		miss = e_jmp(x, 5, NULL);
		e1(x, 0x81);			/* cmp dword [rbx+tlb_epoch] */
		e1(x, 0xbb);		/* (or tlb_gepoch: bt_jit_link) */
		e4(x, (uint32_t)OFF(tlb_epoch));
		e4(x, 0);		/* +25: TLB epoch */
		ex_at[(*nex)++] = e_jmp(x, 5, NULL);
		e1(x, 0x48); e1(x, 0x8b); e1(x, 0x93);	/* mov rdx, inval_p */
		e4(x, (uint32_t)OFF(inval_p));
		e1(x, 0x81); e1(x, 0x3a);	/* cmp dword [rdx], imm32 */
		e4(x, 0);		/* +44: invalidation count */
		ex_at[(*nex)++] = e_jmp(x, 5, NULL);
		e1(x, 0x80); e1(x, 0xbb);	/* cmp byte [rbx+cpl], imm8 */
		e4(x, (uint32_t)OFF(cpl));
		e1(x, 0);		/* +60: CPL */
		ex_at[(*nex)++] = e_jmp(x, 5, NULL);
		e1(x, 0xe9);		/* +68: jmp to the block (exit) */
		ex_at[(*nex)++] = x->p;
		e4(x, 0);
		jit_patch(miss, x->p);
	}
	/*
	 * No slot matched.  A block that ends at one of two known RIPs
	 * leaves to the run loop, which links the slot for that RIP: a
	 * jump-cache hit here would never link it, and the probe would
	 * run on every pass (80M times in a 15 s UDP run).  Any other
	 * block probes the run loop's jump cache as bt_next_block does
	 * (the mode is known to be 64-bit).
	 */
	if (!probe) {
		ex_at[(*nex)++] = e_jmp(x, -1, NULL);
		return;
	}
	e1(x, 0x48); e1(x, 0x89); e1(x, 0xc1);	/* mov rcx, rax */
	e1(x, 0x48); e1(x, 0xc1); e1(x, 0xe9); e1(x, 12);	/* shr rcx,12 */
	e1(x, 0x48); e1(x, 0x31); e1(x, 0xc1);	/* xor rcx, rax */
	e1(x, 0x81); e1(x, 0xe1); e4(x, 4095);	/* and ecx, 4095 */
	e1(x, 0x48); e1(x, 0x8d); e1(x, 0x0c); e1(x, 0x89); /* rcx*5 */
	e1(x, 0x48); e1(x, 0x8d); e1(x, 0x94); e1(x, 0xcb); /* lea rdx, */
	e4(x, (uint32_t)OFF(jc));		/* [rbx + rcx*8 + jc] */
	e1(x, 0x48); e1(x, 0x3b); e1(x, 0x42);	/* cmp rax, [rdx+lin] */
	e1(x, (uint8_t)offsetof(struct bt_jc, lin));
	ex_at[(*nex)++] = e_jmp(x, 5, NULL);
	e1(x, 0x48); e1(x, 0x8b); e1(x, 0x4a);	/* mov rcx, [rdx+code] */
	e1(x, (uint8_t)offsetof(struct bt_jc, code));
	e1(x, 0x48); e1(x, 0x85); e1(x, 0xc9);	/* test rcx, rcx */
	ex_at[(*nex)++] = e_jmp(x, 4, NULL);
	/* the CPL the entry's fetch was checked at */
	e1(x, 0x0f); e1(x, 0xb6);		/* movzx eax, byte cpl */
	e_mem(x, RAX, OFF(cpl));
	e1(x, 0x3b); e1(x, 0x42);		/* cmp eax, [rdx+cpl] */
	e1(x, (uint8_t)offsetof(struct bt_jc, cpl));
	ex_at[(*nex)++] = e_jmp(x, 5, NULL);
	/* the entry's epoch: tlb_epoch, or tlb_gepoch | BT_GTAG */
	e1(x, 0x8b); e1(x, 0x42);		/* mov eax, [rdx+tlb] */
	e1(x, (uint8_t)offsetof(struct bt_jc, tlb));
	e_rm(x, false, 0x3b, RAX, OFF(tlb_epoch));	/* cmp eax, epoch */
	e1(x, 0x74);				/* je +n */
	{
		uint8_t *skip = x->p++;

		e1(x, 0x35); e4(x, BT_GTAG);	/* xor eax, BT_GTAG */
		e_rm(x, false, 0x3b, RAX, OFF(tlb_gepoch));
		ex_at[(*nex)++] = e_jmp(x, 5, NULL);
		*skip = (uint8_t)(x->p - (skip + 1));
	}
	e_ld(x, false, RAX, OFF(tc_epoch));
	e1(x, 0x3b); e1(x, 0x42);		/* cmp eax, [rdx+tc] */
	e1(x, (uint8_t)offsetof(struct bt_jc, tc));
	ex_at[(*nex)++] = e_jmp(x, 5, NULL);
	e_ld(x, true, RAX, OFF(inval_p));
	e1(x, 0x8b); e1(x, 0x00);		/* mov eax, [rax] */
	e1(x, 0x3b); e1(x, 0x42);		/* cmp eax, [rdx+inval] */
	e1(x, (uint8_t)offsetof(struct bt_jc, inval));
	ex_at[(*nex)++] = e_jmp(x, 5, NULL);
	e1(x, 0xff); e1(x, 0xe1);		/* jmp rcx */
}

_Static_assert(sizeof(struct bt_jc) == 40, "jit_link_chain scales by 40");
_Static_assert(offsetof(struct bt_cpu, shadow) == OFF(evpend) + 1 &&
    offsetof(struct bt_cpu, mode) == OFF(evpend) + 2 &&
    offsetof(struct bt_cpu, irq_hint) == OFF(evpend) + 3 &&
    OFF(evpend) % 4 == 0, "jit_link_chain loads these four as one");

/* cmp dword [rbx + disp], tlb at a slot's epoch test. */
static void
jit_slot_epoch(uint8_t *s, int32_t disp, uint32_t tlb)
{
	s[SLOT_TLB - 6] = 0x81;
	s[SLOT_TLB - 5] = 0xbb;
	memcpy(s + SLOT_TLB - 4, &disp, 4);
	memcpy(s + SLOT_TLB, &tlb, 4);
}

/*
 * A local slot: to starts at rip on the physical page from starts on,
 * and fits in it.  At run time its RIP test is followed by a test that
 * RIP is on the page of the RIP from was entered at (r12) instead of the
 * TLB epoch: that page mapped to from's page when from was entered, and
 * still does when from ends without a brk (every epoch change sets one),
 * so RIP maps to to's first byte under any CR3 — as the run loop's
 * same-page links (bt_next_block), which outlive MOV CR3 the same way.
 */
static bool
jit_local(const struct bt_block *from, const struct bt_block *to,
    uint64_t rip)
{
	return to->page[1] == ~0u &&
	    to->gpa == ((from->gpa & ~0xfffull) | (rip & 0xfff));
}

void
bt_jit_link(struct bt_cpu *c, struct bt_block *from, struct bt_block *to)
{
	struct bt_jit *j = c->jit;
	uint64_t rip = c->rip, old;
	uint32_t inval = __atomic_load_n(c->inval_p, __ATOMIC_RELAXED);
	uint32_t tlb = c->tlb_epoch;
	uint8_t *s;
	int k;

	c->jit_last = NULL;
	if (c->mode != BT_M64 || from->jit == NULL)
		return;
	/* A slot already for this RIP, else a free one, else by RIP. */
	int free_k = -1;

	for (k = 0; k < 2; k++) {
		memcpy(&old, j->rw + from->jslot[k] + SLOT_RIP, 8);
		if (old == rip)
			break;
		if (old == 1ull << 63 && free_k < 0)
			free_k = k;
	}
	if (k == 2)
		k = free_k >= 0 ? free_k : (int)((rip >> 2) & 1);
	s = j->rw + from->jslot[k];
	memcpy(s + SLOT_RIP, &rip, 8);
	if (jit_local(from, to, rip)) {
		/* mov rdx, r12; xor rdx, rax; shr rdx, 12: the jne after
		 * it leaves unless RIP is on the entry RIP's page */
		static const uint8_t page[10] = { 0x4c, 0x89, 0xe2, 0x48,
		    0x31, 0xc2, 0x48, 0xc1, 0xea, 0x0c };

		memcpy(s + SLOT_TLB - 6, page, sizeof(page));
	} else if (c->xglobal) {
		/* Code mapped globally stays chained across MOV CR3. */
		int32_t disp = OFF(tlb_gepoch);

		tlb = c->tlb_gepoch;
		jit_slot_epoch(s, disp, tlb);
	} else {
		jit_slot_epoch(s, OFF(tlb_epoch), tlb);
	}
	memcpy(s + SLOT_INVAL, &inval, 4);
	s[SLOT_CPL] = c->cpl;
	jit_patch(s + SLOT_JMP, (uint8_t *)to->jit - j->rx + j->rw);
}
