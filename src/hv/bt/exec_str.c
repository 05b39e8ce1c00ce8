/*
 * String instructions (MOVS CMPS STOS LODS SCAS INS OUTS, with REP) and
 * port I/O.  REP commits RCX/RSI/RDI after every element so a fault
 * mid-way restarts where it stopped; it also yields to pending vCPU
 * requests every few thousand elements, so a guest doing a huge REP can
 * still be paused.  Forward MOVS/STOS within RAM pages take a bulk path.
 */
#include "hv/bt/bt_internal.h"

#include "hv/exit.h"
#include "hv/vm.h"

uint64_t
bt_pio_in(struct bt_cpu *c, uint16_t port, unsigned sz)
{
	struct vm_exit e = { .kind = VM_EXIT_PIO };
	uint64_t v = 0;

	if (unlikely(c->stint))
		siglongjmp(c->jb, BT_JMP_STOP);
	e.io.addr = port;
	e.io.len = (uint8_t)sz;
	e.io.write = false;
	vcpu_handle_exit(c->vcpu, &e);
	memcpy(&v, e.io.data, sz);
	return v;
}

void
bt_pio_out(struct bt_cpu *c, uint16_t port, unsigned sz, uint64_t v)
{
	struct vm_exit e = { .kind = VM_EXIT_PIO };

	if (unlikely(c->stint))
		siglongjmp(c->jb, BT_JMP_STOP);
	e.io.addr = port;
	e.io.len = (uint8_t)sz;
	e.io.write = true;
	memcpy(e.io.data, &v, sz);
	vcpu_handle_exit(c->vcpu, &e);
}

/* IOPL, then the TSS's I/O permission bitmap (sz bytes from port). */
static void
io_check(struct bt_cpu *c, uint16_t port, unsigned sz)
{
	const struct cpu_seg *tr = &c->seg[SEG_TR];
	uint64_t map;

	if (!(c->cr0 & CR0_PE) || c->cpl <= ((c->flags & RFLAGS_IOPL) >> 12))
		return;
	if ((tr->type & 0x5) != 0x1 || tr->limit < 0x67)
		bt_raise(c, EXC_GP, 0);		/* no 32/64-bit TSS */
	map = bt_sys_read(c, tr->base + 0x66, 2) + port / 8;
	if (map + 1 > tr->limit ||
	    (bt_sys_read(c, tr->base + map, 2) >> (port & 7)) &
	    ((1u << sz) - 1))
		bt_raise(c, EXC_GP, 0);
}

/* E4-E7, EC-EF IN/OUT */
void
bt_x_io(struct bt_cpu *c, const struct bt_insn *i)
{
	uint16_t port = (i->opc & 8) ? (uint16_t)c->gpr[R_RDX] :
	    (uint16_t)(i->imm & 0xff);
	unsigned sz = i->osz == 8 ? 4 : i->osz;

	io_check(c, port, sz);
	if (i->opc & 2)
		bt_pio_out(c, port, sz, c->gpr[R_RAX]);
	else
		bt_reg_set(c, i, R_RAX, sz, bt_pio_in(c, port, sz));
}

/* Readable host pointer for [lin, lin+n) within one page, or NULL. */
static const void *
str_ptr_r(struct bt_cpu *c, uint64_t lin)
{
	struct bt_tlb *e = &c->tlbc[(lin >> 12) & (BT_TLB_SIZE - 1)];

	if (e->tag_r != (lin & ~0xfffull)) {
		bt_read(c, lin, 1);	/* fill (or fault) */
		if (e->tag_r != (lin & ~0xfffull))
			return NULL;
	}
	return (const void *)(lin + e->addend);
}

/* Bulk forward MOVS/STOS: as many whole elements as fit in the current
 * source and destination pages.  Returns the elements done. */
static uint64_t
str_bulk(struct bt_cpu *c, const struct bt_insn *i, uint64_t n, bool movs)
{
	unsigned sz = i->osz;
	uint64_t am = bt_mask(i->asz);
	uint64_t di = c->gpr[R_RDI] & am, si = c->gpr[R_RSI] & am;
	uint64_t dl = bt_lin(c, SEG_ES, di), sl = bt_lin(c, i->seg, si);
	uint64_t room = (0x1000 - (dl & 0xfff)) / sz, k;
	uint8_t *d;
	const uint8_t *s = NULL;

	if (movs)
		room = room < (0x1000 - (sl & 0xfff)) / sz ? room :
		    (0x1000 - (sl & 0xfff)) / sz;
	if (room > n)
		room = n;
	/* Keep the index registers from wrapping inside the chunk. */
	if (room == 0 || di + room * sz > am || si + room * sz > am)
		return 0;
	if (movs && (s = str_ptr_r(c, sl)) == NULL)
		return 0;
	if ((d = bt_ptr_rw(c, dl, sz)) == NULL)
		return 0;
	if (!movs) {
		uint64_t v = c->gpr[R_RAX];

		if (sz == 1)
			memset(d, (int)(v & 0xff), room);
		else
			for (k = 0; k < room; k++)
				bt_store_host(d + k * sz, sz, v);
	} else if (d >= s + room * sz || s >= d + room * sz || d <= s) {
		/* Forward element order equals memmove when d <= s. */
		memmove(d, s, room * sz);
	} else {
		for (k = 0; k < room * sz; k++)
			d[k] = s[k];
	}
	return room;
}

static void
str_adv(struct bt_cpu *c, unsigned r, uint64_t am, int64_t delta)
{
	if (am == 0xffffffffull)
		c->gpr[r] = (uint32_t)(c->gpr[r] + delta);
	else
		c->gpr[r] = (c->gpr[r] & ~am) | ((c->gpr[r] + delta) & am);
}

/* One element of the string operation; returns false when a REPE/REPNE
 * condition ends the loop. */
static void
str_one(struct bt_cpu *c, const struct bt_insn *i, uint64_t am, int64_t d)
{
	unsigned sz = i->osz;
	uint64_t di = bt_lin(c, SEG_ES, c->gpr[R_RDI] & am);
	uint64_t si = bt_lin(c, i->seg, c->gpr[R_RSI] & am);
	uint64_t a, b;

	switch (i->opc) {
	case 0xa4: case 0xa5:
		bt_write(c, di, sz, bt_read(c, si, sz));
		str_adv(c, R_RSI, am, d);
		str_adv(c, R_RDI, am, d);
		break;
	case 0xa6: case 0xa7:
		a = bt_read(c, si, sz);
		b = bt_read(c, di, sz);
		bt_cc(c, CC_SUB, sz, a - b, a, b);
		str_adv(c, R_RSI, am, d);
		str_adv(c, R_RDI, am, d);
		break;
	case 0xaa: case 0xab:
		bt_write(c, di, sz, c->gpr[R_RAX]);
		str_adv(c, R_RDI, am, d);
		break;
	case 0xac: case 0xad:
		bt_reg_set(c, i, R_RAX, sz, bt_read(c, si, sz));
		str_adv(c, R_RSI, am, d);
		break;
	case 0xae: case 0xaf:
		a = bt_reg_get(c, i, R_RAX, sz);
		b = bt_read(c, di, sz);
		bt_cc(c, CC_SUB, sz, a - b, a, b);
		str_adv(c, R_RDI, am, d);
		break;
	case 0x6c: case 0x6d:
		/* Probe the destination before the (side-effecting) read. */
		bt_ptr_rw(c, di, sz);
		bt_write(c, di, sz, bt_pio_in(c, (uint16_t)c->gpr[R_RDX], sz));
		str_adv(c, R_RDI, am, d);
		break;
	default:
		bt_pio_out(c, (uint16_t)c->gpr[R_RDX], sz, bt_read(c, si, sz));
		str_adv(c, R_RSI, am, d);
		break;
	}
}

void
bt_x_string(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t am = bt_mask(i->asz), n;
	int64_t d = (c->flags & RFLAGS_DF) ? -(int64_t)i->osz : i->osz;
	bool cmp = (i->opc >= 0xa6 && i->opc <= 0xa7) || i->opc >= 0xae;
	bool bulk = !(c->flags & RFLAGS_DF) && (i->opc <= 0xa5 &&
	    i->opc >= 0xa4 ? true : i->opc == 0xaa || i->opc == 0xab);
	unsigned budget = 0;

	if (i->opc < 0x70)
		io_check(c, (uint16_t)c->gpr[R_RDX], i->osz == 8 ? 4 : i->osz);
	if (!i->rep) {
		str_one(c, i, am, d);
		return;
	}
	while ((n = c->gpr[R_RCX] & am) != 0) {
		if (bulk) {
			uint64_t k = str_bulk(c, i, n, i->opc <= 0xa5);

			if (k != 0) {
				str_adv(c, R_RDI, am, (int64_t)(k * i->osz));
				if (i->opc <= 0xa5)
					str_adv(c, R_RSI, am,
					    (int64_t)(k * i->osz));
				str_adv(c, R_RCX, am, -(int64_t)k);
				budget += (unsigned)k / 64 + 1;
				/* Wrote over translated code: the run loop
				 * invalidates that page (bt_ptr_rw) before the
				 * next chunk can hit another one. */
				if (c->smc_pend && (c->gpr[R_RCX] & am) != 0) {
					c->npc = c->rip;
					c->brk = 1;
					return;
				}
				goto next;
			}
		}
		str_one(c, i, am, d);
		str_adv(c, R_RCX, am, -1);
		if (cmp && bt_cond(c, 4) != (i->rep == 0xf3))
			break;
		budget++;
next:
		if (budget >= 4096 && (c->gpr[R_RCX] & am) != 0) {
			if (atomic_load_explicit(&c->vcpu->requests,
			    memory_order_relaxed) != 0 || c->brk) {
				c->npc = c->rip;	/* resume later */
				c->brk = 1;
				return;
			}
			budget = 0;
		}
	}
	if (i->asz == 4)
		c->gpr[R_RCX] = (uint32_t)c->gpr[R_RCX];
}
