/*
 * Integer arithmetic and logic: ALU ops, INC/DEC, NEG/NOT/MUL/DIV,
 * shifts and rotates, bit tests and scans, exchange-and-add, compare-and-
 * exchange.  Arithmetic sets lazy flags (flags.c); the rarer groups
 * compute their flags eagerly.
 */
#include "hv/bt/bt_internal.h"

#include <sys/random.h>

void
bt_rmw(struct bt_cpu *c, const struct bt_insn *i, unsigned sz, bt_rmw_fn *fn,
    uint64_t ctx)
{
	uint64_t lin, a, r;
	void *p;

	if (i->mod == 3) {
		a = bt_reg_get(c, i, i->rm, sz);
		bt_reg_set(c, i, i->rm, sz, fn(c, ctx, sz, a));
		return;
	}
	lin = bt_ea_lin(c, i);
	p = bt_ptr_rw(c, lin, sz);
	if (p == NULL) {
		a = bt_read(c, lin, sz);
		bt_write(c, lin, sz, fn(c, ctx, sz, a));
		return;
	}
	if (i->lock) {
		do {
			a = bt_load_host(p, sz);
			r = fn(c, ctx, sz, a);
		} while (!bt_cas(p, sz, a, r));
		return;
	}
	a = bt_load_host(p, sz);
	bt_store_host(p, sz, fn(c, ctx, sz, a));
}

static uint64_t
alu_add(struct bt_cpu *c, uint64_t b, unsigned sz, uint64_t a)
{
	bt_cc(c, CC_ADD, sz, a + b, a, b);
	return a + b;
}

static uint64_t
alu_or(struct bt_cpu *c, uint64_t b, unsigned sz, uint64_t a)
{
	bt_cc(c, CC_LOGIC, sz, a | b, 0, 0);
	return a | b;
}

static uint64_t
alu_adc(struct bt_cpu *c, uint64_t b, unsigned sz, uint64_t a)
{
	uint64_t r = a + b + bt_cf(c);

	bt_cc(c, CC_ADD, sz, r, a, b);
	return r;
}

static uint64_t
alu_sbb(struct bt_cpu *c, uint64_t b, unsigned sz, uint64_t a)
{
	uint64_t r = a - b - bt_cf(c);

	bt_cc(c, CC_SUB, sz, r, a, b);
	return r;
}

static uint64_t
alu_and(struct bt_cpu *c, uint64_t b, unsigned sz, uint64_t a)
{
	bt_cc(c, CC_LOGIC, sz, a & b, 0, 0);
	return a & b;
}

static uint64_t
alu_sub(struct bt_cpu *c, uint64_t b, unsigned sz, uint64_t a)
{
	bt_cc(c, CC_SUB, sz, a - b, a, b);
	return a - b;
}

static uint64_t
alu_xor(struct bt_cpu *c, uint64_t b, unsigned sz, uint64_t a)
{
	bt_cc(c, CC_LOGIC, sz, a ^ b, 0, 0);
	return a ^ b;
}

static bt_rmw_fn *const alu_fns[8] = { alu_add, alu_or, alu_adc, alu_sbb,
    alu_and, alu_sub, alu_xor, alu_sub };

static void
alu_do(struct bt_cpu *c, const struct bt_insn *i, unsigned op, unsigned sz,
    uint64_t b)
{
	if (op == 7) {		/* CMP: no write, and no write fault */
		alu_sub(c, b, sz, bt_rm_read(c, i, sz));
		return;
	}
	bt_rmw(c, i, sz, alu_fns[op], b);
}

/* 00-3F: op Eb,Gb / Ev,Gv / Gb,Eb / Gv,Ev / AL,Ib / rAX,Iz */
void
bt_x_alu(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned op = (i->opc >> 3) & 7, sz = i->osz;
	uint64_t a, r;

	switch (i->opc & 7) {
	case 0: case 1:
		alu_do(c, i, op, sz, bt_reg_get(c, i, i->reg, sz));
		return;
	case 2: case 3:
		a = bt_reg_get(c, i, i->reg, sz);
		r = alu_fns[op](c, bt_rm_read(c, i, sz), sz, a);
		if (op != 7)
			bt_reg_set(c, i, i->reg, sz, r);
		return;
	default:
		a = bt_reg_get(c, i, R_RAX, sz);
		r = alu_fns[op](c, i->imm & bt_mask(sz), sz, a);
		if (op != 7)
			bt_reg_set(c, i, R_RAX, sz, r);
		return;
	}
}

/* 80-83: op Ev,imm */
void
bt_x_alu_imm(struct bt_cpu *c, const struct bt_insn *i)
{
	alu_do(c, i, i->reg & 7, i->osz, i->imm & bt_mask(i->osz));
}

/* 84/85 TEST Ev,Gv; A8/A9 TEST rAX,imm */
void
bt_x_test(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned sz = i->osz;
	uint64_t a, b;

	if (i->opc == 0x84 || i->opc == 0x85) {
		a = bt_rm_read(c, i, sz);
		b = bt_reg_get(c, i, i->reg, sz);
	} else {
		a = bt_reg_get(c, i, R_RAX, sz);
		b = i->imm;
	}
	bt_cc(c, CC_LOGIC, sz, a & b, 0, 0);
}

static uint64_t
alu_inc(struct bt_cpu *c, uint64_t dec, unsigned sz, uint64_t a)
{
	uint64_t r = dec ? a - 1 : a + 1;

	c->flags = (c->flags & ~RFLAGS_CF) | (bt_cf(c) ? RFLAGS_CF : 0);
	bt_cc(c, dec ? CC_DEC : CC_INC, sz, r, a, 1);
	return r;
}

/* 40-4F INC/DEC r (16/32-bit modes), FE /0 /1 */
void
bt_x_incdec(struct bt_cpu *c, const struct bt_insn *i)
{
	if (i->opc < 0x50) {
		unsigned r = i->opc & 7;

		bt_reg_set(c, i, r, i->osz, alu_inc(c, i->opc >= 0x48, i->osz,
		    bt_reg_get(c, i, r, i->osz)));
		return;
	}
	if ((i->reg & 7) > 1)
		bt_raise(c, EXC_UD, -1);
	bt_rmw(c, i, i->osz, alu_inc, i->reg & 7);
}

static void
set_eager(struct bt_cpu *c, uint64_t f, uint64_t mask)
{
	if (mask == CC_ARITH) {
		/* All six replaced: no need to evaluate the lazy ones. */
		c->flags = (c->flags & ~mask) | (f & mask);
		c->cc_op = CC_EAGER;
		return;
	}
	bt_flags_set(c, f, mask);
}

static uint64_t
szf(uint64_t r, unsigned sz)
{
	uint64_t f = 0;

	r &= bt_mask(sz);
	if (r == 0)
		f |= RFLAGS_ZF;
	if (r >> (sz * 8 - 1))
		f |= RFLAGS_SF;
	if (!__builtin_parity(r & 0xff))
		f |= RFLAGS_PF;
	return f;
}

static uint64_t
alu_not(struct bt_cpu *c, uint64_t u, unsigned sz, uint64_t a)
{
	return ~a;
}

static uint64_t
alu_neg(struct bt_cpu *c, uint64_t u, unsigned sz, uint64_t a)
{
	bt_cc(c, CC_SUB, sz, 0 - a, 0, a);
	return 0 - a;
}

static void
grp3_mul(struct bt_cpu *c, const struct bt_insn *i, bool sgn)
{
	unsigned sz = i->osz;
	uint64_t b = bt_rm_read(c, i, sz), a = bt_reg_get(c, i, R_RAX, sz);
	uint64_t lo, hi;
	bool of;

	if (sz == 8) {
		unsigned __int128 p = sgn ? (unsigned __int128)((__int128)(int64_t)a *
		    (int64_t)b) : (unsigned __int128)a * b;

		lo = (uint64_t)p;
		hi = (uint64_t)(p >> 64);
		of = sgn ? hi != (uint64_t)((int64_t)lo >> 63) : hi != 0;
	} else {
		uint64_t p = sgn ? (uint64_t)((int64_t)bt_sext(a, sz) *
		    (int64_t)bt_sext(b, sz)) : a * b;

		lo = p & bt_mask(sz);
		hi = (p >> (sz * 8)) & bt_mask(sz);
		of = sgn ? bt_sext(lo, sz) != p : hi != 0;
	}
	if (sz == 1) {
		bt_set16(&c->gpr[R_RAX], (uint16_t)(lo | hi << 8));
	} else {
		bt_reg_set(c, i, R_RAX, sz, lo);
		bt_reg_set(c, i, R_RDX, sz, hi);
	}
	set_eager(c, (of ? RFLAGS_CF | RFLAGS_OF : 0) | szf(lo, sz), CC_ARITH);
}

static void
grp3_div(struct bt_cpu *c, const struct bt_insn *i, bool sgn)
{
	unsigned sz = i->osz;
	uint64_t d = bt_rm_read(c, i, sz), q, r;
	unsigned __int128 n;

	if (d == 0)
		bt_raise(c, EXC_DE, -1);
	if (sz == 1)
		n = (uint16_t)c->gpr[R_RAX];
	else
		n = ((unsigned __int128)bt_reg_get(c, i, R_RDX, sz) << (sz * 8)) |
		    bt_reg_get(c, i, R_RAX, sz);
	if (!sgn) {
		unsigned __int128 qq = n / d;

		if (qq >> (sz * 8))
			bt_raise(c, EXC_DE, -1);
		q = (uint64_t)qq;
		r = (uint64_t)(n % d);
	} else {
		__int128 sn, sd = (int64_t)bt_sext(d, sz), qq;

		/* sign-extend the double-width dividend */
		if (sz == 8)
			sn = (__int128)n;
		else
			sn = (__int128)(((int64_t)(n << (64 - 2 * sz * 8))) >>
			    (64 - 2 * sz * 8));
		if (sd == -1 && sz == 8 && sn == (__int128)((unsigned __int128)1 << 127))
			bt_raise(c, EXC_DE, -1);
		qq = sn / sd;
		if (qq > (((__int128)1 << (sz * 8 - 1)) - 1) ||
		    qq < -((__int128)1 << (sz * 8 - 1)))
			bt_raise(c, EXC_DE, -1);
		q = (uint64_t)qq;
		r = (uint64_t)(sn % sd);
	}
	if (sz == 1) {
		bt_set16(&c->gpr[R_RAX], (uint16_t)((q & 0xff) |
		    (r & 0xff) << 8));
	} else {
		bt_reg_set(c, i, R_RAX, sz, q);
		bt_reg_set(c, i, R_RDX, sz, r);
	}
}

/* F6/F7: TEST NOT NEG MUL IMUL DIV IDIV */
void
bt_x_grp3(struct bt_cpu *c, const struct bt_insn *i)
{
	switch (i->reg & 7) {
	case 0: case 1:
		bt_cc(c, CC_LOGIC, i->osz, bt_rm_read(c, i, i->osz) & i->imm,
		    0, 0);
		break;
	case 2: bt_rmw(c, i, i->osz, alu_not, 0); break;
	case 3: bt_rmw(c, i, i->osz, alu_neg, 0); break;
	case 4: grp3_mul(c, i, false); break;
	case 5: grp3_mul(c, i, true); break;
	case 6: grp3_div(c, i, false); break;
	default: grp3_div(c, i, true); break;
	}
}

/* 0F AF, 69, 6B: IMUL Gv, Ev(, imm) */
void
bt_x_imul(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned sz = i->osz;
	int64_t a = (int64_t)bt_sext(bt_rm_read(c, i, sz), sz), b;
	uint64_t lo;
	bool of;

	b = i->opc == 0x1af ? (int64_t)bt_sext(bt_reg_get(c, i, i->reg, sz),
	    sz) : (int64_t)bt_sext(i->imm, sz);
	if (sz == 8) {
		__int128 p = (__int128)a * b;

		lo = (uint64_t)p;
		of = p != (__int128)(int64_t)lo;
	} else {
		int64_t p = a * b;

		lo = (uint64_t)p & bt_mask(sz);
		of = (int64_t)bt_sext(lo, sz) != p;
	}
	bt_reg_set(c, i, i->reg, sz, lo);
	set_eager(c, (of ? RFLAGS_CF | RFLAGS_OF : 0) | szf(lo, sz), CC_ARITH);
}

/* Shift/rotate a by n (already masked, non-zero); sets flags. */
static uint64_t
shift_do(struct bt_cpu *c, unsigned op, unsigned sz, uint64_t a, unsigned n)
{
	unsigned bits = sz * 8;
	uint64_t m = bt_mask(sz), r = 0;
	uint64_t cf = 0, of = 0, msb = 1ull << (bits - 1);
	unsigned k;

	a &= m;
	switch (op) {
	case 0:	/* ROL */
		k = n % bits;
		r = k ? ((a << k) | (a >> (bits - k))) & m : a;
		cf = r & 1;
		of = !!(r & msb) ^ cf;
		break;
	case 1:	/* ROR */
		k = n % bits;
		r = k ? ((a >> k) | (a << (bits - k))) & m : a;
		cf = !!(r & msb);
		of = cf ^ !!(r & (msb >> 1));
		break;
	case 2:	/* RCL */
		cf = bt_cf(c);
		r = a;
		for (k = n % (bits + 1); k > 0; k--) {
			uint64_t out = !!(r & msb);

			r = ((r << 1) | cf) & m;
			cf = out;
		}
		of = !!(r & msb) ^ cf;
		break;
	case 3:	/* RCR */
		cf = bt_cf(c);
		r = a;
		of = !!(r & msb) ^ cf;
		for (k = n % (bits + 1); k > 0; k--) {
			uint64_t out = r & 1;

			r = (r >> 1) | (cf << (bits - 1));
			cf = out;
		}
		break;
	case 4: case 6:	/* SHL: lazy flags */
		r = n < 64 ? (a << n) & m : 0;
		bt_cc(c, CC_SHL, sz, r, a, n);
		return r;
	case 5:	/* SHR */
		r = n < 64 ? a >> n : 0;
		bt_cc(c, CC_SHR, sz, r, a, n);
		return r;
	default: {	/* SAR */
		int64_t s = (int64_t)bt_sext(a, sz);

		r = (uint64_t)(s >> (n > 63 ? 63 : n)) & m;
		bt_cc(c, CC_SAR, sz, r, a, n);
		return r;
	}
	}
	if (op < 4) {
		set_eager(c, (cf ? RFLAGS_CF : 0) | (of ? RFLAGS_OF : 0),
		    RFLAGS_CF | RFLAGS_OF);
	} else {
		set_eager(c, (cf ? RFLAGS_CF : 0) | (of ? RFLAGS_OF : 0) |
		    szf(r, sz), CC_ARITH);
	}
	return r;
}

static uint64_t
shift_rmw(struct bt_cpu *c, uint64_t ctx, unsigned sz, uint64_t a)
{
	return shift_do(c, ctx & 7, sz, a, (unsigned)(ctx >> 8));
}

/* C0/C1/D0-D3: shifts and rotates */
void
bt_x_shift(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned n;

	if (i->opc == 0xc0 || i->opc == 0xc1)
		n = (unsigned)i->imm & 0xff;
	else if (i->opc == 0xd0 || i->opc == 0xd1)
		n = 1;
	else
		n = (uint8_t)c->gpr[R_RCX];
	n &= i->osz == 8 ? 63 : 31;
	if (n == 0) {
		/* No flags change; still a memory access (and its fault),
		 * and a 32-bit register is still zero-extended. */
		if (i->mod != 3)
			bt_ptr_rw(c, bt_ea_lin(c, i), i->osz);
		else if (i->osz == 4)
			c->gpr[i->rm] = (uint32_t)c->gpr[i->rm];
		return;
	}
	bt_rmw(c, i, i->osz, shift_rmw, (i->reg & 7) | (uint64_t)n << 8);
}

static uint64_t
shd_rmw(struct bt_cpu *c, uint64_t ctx, unsigned sz, uint64_t a)
{
	unsigned n = (ctx >> 1) & 0xff, bits = sz * 8;
	uint64_t b = c->gpr[ctx >> 16] & bt_mask(sz), r, cf, m = bt_mask(sz);
	bool left = ctx & 1;

	a &= m;
	if (left) {
		unsigned __int128 w = ((unsigned __int128)a << bits) | b;

		r = (uint64_t)((w << n) >> bits) & m;
		cf = (a >> (bits - n)) & 1;
	} else {
		unsigned __int128 w = ((unsigned __int128)b << bits) | a;

		r = (uint64_t)(w >> n) & m;
		cf = (a >> (n - 1)) & 1;
	}
	set_eager(c, (cf ? RFLAGS_CF : 0) |
	    ((((r ^ a) >> (bits - 1)) & 1) ? RFLAGS_OF : 0) | szf(r, sz),
	    CC_ARITH);
	return r;
}

/* 0F A4/A5 SHLD, 0F AC/AD SHRD */
void
bt_x_shd(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned n = (i->opc & 1) ? (uint8_t)c->gpr[R_RCX] :
	    (unsigned)i->imm & 0xff;

	n &= i->osz == 8 ? 63 : 31;
	if (n == 0) {
		if (i->mod == 3 && i->osz == 4)
			c->gpr[i->rm] = (uint32_t)c->gpr[i->rm];
		return;
	}
	bt_rmw(c, i, i->osz, shd_rmw, (i->opc < 0x1a8) | (uint64_t)n << 1 |
	    (uint64_t)i->reg << 16);
}

static uint64_t
bt_rmw_bit(struct bt_cpu *c, uint64_t ctx, unsigned sz, uint64_t a)
{
	unsigned op = ctx & 3, bit = (unsigned)(ctx >> 2);
	uint64_t m = 1ull << bit;

	c->flags = (bt_flags_get(c) & ~RFLAGS_CF) | ((a & m) ? RFLAGS_CF : 0);
	switch (op) {
	case 1: return a | m;
	case 2: return a & ~m;
	case 3: return a ^ m;
	}
	return a;
}

/* 0F A3/AB/B3/BB BT/BTS/BTR/BTC Ev,Gv; 0F BA /4-7 Ev,Ib */
void
bt_x_bt(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned sz = i->osz, op;
	int64_t off;

	if (i->opc == 0x1ba) {
		if ((i->reg & 7) < 4)
			bt_raise(c, EXC_UD, -1);
		op = i->reg & 3;
		off = (int64_t)(i->imm & (sz * 8 - 1));
	} else {
		op = (i->opc >> 3) & 3;
		off = (int64_t)bt_sext(bt_reg_get(c, i, i->reg, sz), sz);
	}
	if (i->mod == 3) {
		if (op == 0)	/* BT writes nothing (no zero-extension) */
			bt_rmw_bit(c, (uint64_t)(off & (sz * 8 - 1)) << 2, sz,
			    bt_reg_get(c, i, i->rm, sz));
		else
			bt_rmw(c, i, sz, bt_rmw_bit, op | (uint64_t)(off &
			    (sz * 8 - 1)) << 2);
		return;
	}
	{
		/* Register bit offsets address memory beyond the operand. */
		struct bt_insn j = *i;
		int64_t bytes = (off >> (sz == 8 ? 6 : sz == 4 ? 5 : 4)) *
		    (int64_t)sz;

		j.disp += bytes;
		if (op == 0)
			bt_rmw_bit(c, 0 | (uint64_t)(off & (sz * 8 - 1)) << 2,
			    sz, bt_read(c, bt_ea_lin(c, &j), sz));
		else
			bt_rmw(c, &j, sz, bt_rmw_bit, op |
			    (uint64_t)(off & (sz * 8 - 1)) << 2);
	}
}

/* 0F BC/BD BSF/BSR (and TZCNT/LZCNT encodings: BMI is not advertised,
 * so they run as BSF/BSR as on CPUs without it). */
void
bt_x_bitscan(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned sz = i->osz;
	uint64_t v = bt_rm_read(c, i, sz);

	if (v == 0) {
		set_eager(c, RFLAGS_ZF, CC_ARITH);
		return;
	}
	bt_reg_set(c, i, i->reg, sz, i->opc == 0x1bc ? (uint64_t)__builtin_ctzll(v) :
	    (uint64_t)(63 - __builtin_clzll(v)));
	set_eager(c, 0, CC_ARITH);
}

/* F3 0F B8 POPCNT */
void
bt_x_popcnt(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t v;

	if (i->rep != 0xf3)
		bt_raise(c, EXC_UD, -1);
	v = bt_rm_read(c, i, i->osz);
	bt_reg_set(c, i, i->reg, i->osz, (uint64_t)__builtin_popcountll(v));
	set_eager(c, v ? 0 : RFLAGS_ZF, CC_ARITH);
}

/* 0F C0/C1 XADD */
void
bt_x_xadd(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned sz = i->osz;
	uint64_t b = bt_reg_get(c, i, i->reg, sz), a;
	void *p;

	if (i->mod == 3) {
		a = bt_reg_get(c, i, i->rm, sz);
		bt_reg_set(c, i, i->reg, sz, a);
		bt_reg_set(c, i, i->rm, sz, a + b);
	} else {
		uint64_t lin = bt_ea_lin(c, i);

		p = bt_ptr_rw(c, lin, sz);
		if (p == NULL) {
			a = bt_read(c, lin, sz);
			bt_write(c, lin, sz, a + b);
		} else {
			do
				a = bt_load_host(p, sz);
			while (!bt_cas(p, sz, a, a + b));
		}
		bt_reg_set(c, i, i->reg, sz, a);
	}
	bt_cc(c, CC_ADD, sz, a + b, a, b);
}

/* 0F B0/B1 CMPXCHG */
void
bt_x_cmpxchg(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned sz = i->osz;
	uint64_t acc = bt_reg_get(c, i, R_RAX, sz), src = bt_reg_get(c, i,
	    i->reg, sz), cur;

	if (i->mod == 3) {
		cur = bt_reg_get(c, i, i->rm, sz);
		if (cur == acc)
			bt_reg_set(c, i, i->rm, sz, src);
	} else {
		uint64_t lin = bt_ea_lin(c, i);
		void *p = bt_ptr_rw(c, lin, sz);

		if (p == NULL) {
			cur = bt_read(c, lin, sz);
			bt_write(c, lin, sz, cur == acc ? src : cur);
		} else {
			/* A failed CAS whose reload equals acc raced with
			 * another store: try again. */
			for (;;) {
				if (bt_cas(p, sz, acc, src)) {
					cur = acc;
					break;
				}
				cur = bt_load_host(p, sz) & bt_mask(sz);
				if (cur != acc)
					break;
			}
		}
	}
	bt_cc(c, CC_SUB, sz, acc - cur, acc, cur);
	if (cur != acc)
		bt_reg_set(c, i, R_RAX, sz, cur);
}

/* 0F C7 /6 RDRAND, /7 RDSEED or (F3) RDPID: not advertised to bt
 * guests; here for KVM guests whose CPUID has them (assist). */
static void
grp9_reg(struct bt_cpu *c, const struct bt_insn *i)
{
	uint64_t v = 0;
	bool ok;

	if ((i->reg & 7) == 7 && i->rep == 0xf3) {
		c->gpr[i->rm] = (uint32_t)c->msr.tsc_aux;
		return;
	}
	ok = getrandom(&v, sizeof(v), GRND_NONBLOCK) == sizeof(v);
	bt_reg_set(c, i, i->rm, i->osz, v);
	set_eager(c, ok ? RFLAGS_CF : 0, CC_ARITH);
}

/* 0F C7 /1 CMPXCHG8B / CMPXCHG16B */
void
bt_x_cmpxchg8b(struct bt_cpu *c, const struct bt_insn *i)
{
	bool wide = i->rex & 8;
	uint64_t lin;
	void *p;
	bool ok;

	if (i->mod == 3 && (i->reg & 7) >= 6) {
		grp9_reg(c, i);
		return;
	}
	if ((i->reg & 7) != 1 || i->mod == 3)
		bt_raise(c, EXC_UD, -1);
	lin = bt_ea_lin(c, i);
	if (wide) {
		uint64_t lo = c->gpr[R_RAX], hi = c->gpr[R_RDX];

		if (lin & 15)
			bt_raise(c, EXC_GP, 0);
		p = bt_ptr_rw(c, lin, 16);
		if (p == NULL) {
			uint64_t m0 = bt_read(c, lin, 8), m1 = bt_read(c,
			    lin + 8, 8);

			ok = m0 == lo && m1 == hi;
			if (ok) {
				bt_write(c, lin, 8, c->gpr[R_RBX]);
				bt_write(c, lin + 8, 8, c->gpr[R_RCX]);
			}
			lo = m0;
			hi = m1;
		} else {
			__asm__ volatile("lock cmpxchg16b %0"
			    : "+m"(*(unsigned __int128 *)p), "=@ccz"(ok),
			    "+a"(lo), "+d"(hi)
			    : "b"(c->gpr[R_RBX]), "c"(c->gpr[R_RCX])
			    : "memory");
		}
		if (!ok) {
			c->gpr[R_RAX] = lo;
			c->gpr[R_RDX] = hi;
		}
	} else {
		uint64_t old = (uint32_t)c->gpr[R_RAX] |
		    (c->gpr[R_RDX] << 32), nv = (uint32_t)c->gpr[R_RBX] |
		    (c->gpr[R_RCX] << 32), cur;

		p = bt_ptr_rw(c, lin, 8);
		if (p == NULL) {
			cur = bt_read(c, lin, 8);
			ok = cur == old;
			bt_write(c, lin, 8, ok ? nv : cur);
		} else {
			cur = old;
			ok = __atomic_compare_exchange_n((uint64_t *)p, &cur,
			    nv, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		}
		if (!ok) {
			c->gpr[R_RAX] = (uint32_t)cur;
			c->gpr[R_RDX] = cur >> 32;
		}
	}
	bt_flags_set(c, ok ? RFLAGS_ZF : 0, RFLAGS_ZF);
}

/* 86/87 XCHG Ev,Gv (always locked); 90-97 XCHG rAX,r */
void
bt_x_xchg(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned sz = i->osz;

	if (i->opc >= 0x90) {
		unsigned r = (i->opc & 7) | ((i->rex & 1) << 3);
		uint64_t a, b;

		if (r == 0) {
			if (i->rep == 0xf3)
				__builtin_ia32_pause();
			return;	/* NOP */
		}
		a = bt_reg_get(c, i, R_RAX, sz);
		b = bt_reg_get(c, i, r, sz);
		bt_reg_set(c, i, R_RAX, sz, b);
		bt_reg_set(c, i, r, sz, a);
		return;
	}
	if (i->mod == 3) {
		uint64_t a = bt_reg_get(c, i, i->rm, sz);
		uint64_t b = bt_reg_get(c, i, i->reg, sz);

		bt_reg_set(c, i, i->rm, sz, b);
		bt_reg_set(c, i, i->reg, sz, a);
		return;
	}
	{
		uint64_t lin = bt_ea_lin(c, i), v = bt_reg_get(c, i, i->reg, sz);
		uint64_t a;
		void *p = bt_ptr_rw(c, lin, sz);

		if (p == NULL) {
			a = bt_read(c, lin, sz);
			bt_write(c, lin, sz, v);
		} else {
			switch (sz) {
			case 1: a = __atomic_exchange_n((uint8_t *)p,
			    (uint8_t)v, __ATOMIC_SEQ_CST); break;
			case 2: a = __atomic_exchange_n((uint16_t *)p,
			    (uint16_t)v, __ATOMIC_SEQ_CST); break;
			case 4: a = __atomic_exchange_n((uint32_t *)p,
			    (uint32_t)v, __ATOMIC_SEQ_CST); break;
			default: a = __atomic_exchange_n((uint64_t *)p, v,
			    __ATOMIC_SEQ_CST); break;
			}
		}
		bt_reg_set(c, i, i->reg, sz, a);
	}
}

/* 0F C8+r BSWAP */
void
bt_x_bswap(struct bt_cpu *c, const struct bt_insn *i)
{
	unsigned r = (i->opc & 7) | ((i->rex & 1) << 3);

	if (i->osz == 8)
		c->gpr[r] = __builtin_bswap64(c->gpr[r]);
	else if (i->osz == 4)
		c->gpr[r] = __builtin_bswap32((uint32_t)c->gpr[r]);
	else
		bt_set16(&c->gpr[r], 0);	/* undefined; zero as hw */
}

/* DAA/DAS/AAA/AAS/AAM/AAD: legacy BCD, 16/32-bit code only. */
void
bt_x_bcd(struct bt_cpu *c, const struct bt_insn *i)
{
	uint8_t al = (uint8_t)c->gpr[R_RAX], ah = (uint8_t)(c->gpr[R_RAX] >> 8);
	uint64_t f = bt_flags_get(c);
	bool cf = f & RFLAGS_CF, af = f & RFLAGS_AF;

	switch (i->opc) {
	case 0x27: case 0x2f: {
		uint8_t old = al;
		bool sub = i->opc == 0x2f;

		if ((al & 0xf) > 9 || af) {
			al = sub ? al - 6 : al + 6;
			af = true;
		} else {
			af = false;
		}
		if (old > 0x99 || cf) {
			al = sub ? al - 0x60 : al + 0x60;
			cf = true;
		} else {
			cf = false;
		}
		break;
	}
	case 0x37: case 0x3f:
		if ((al & 0xf) > 9 || af) {
			al = i->opc == 0x37 ? al + 6 : al - 6;
			ah = i->opc == 0x37 ? ah + 1 : ah - 1;
			af = cf = true;
		} else {
			af = cf = false;
		}
		al &= 0xf;
		break;
	case 0xd4:
		if ((uint8_t)i->imm == 0)
			bt_raise(c, EXC_DE, -1);
		ah = al / (uint8_t)i->imm;
		al = al % (uint8_t)i->imm;
		break;
	default:
		al = (uint8_t)(al + ah * (uint8_t)i->imm);
		ah = 0;
		break;
	}
	bt_set16(&c->gpr[R_RAX], (uint16_t)(al | ah << 8));
	set_eager(c, szf(al, 1) | (cf ? RFLAGS_CF : 0) | (af ? RFLAGS_AF : 0),
	    CC_ARITH);
}
