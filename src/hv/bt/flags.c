/*
 * Lazy arithmetic flags.  ALU handlers record (kind, size, result,
 * operands) and the six arithmetic flags are computed only when something
 * reads them: most are overwritten before anyone looks.  The carry and
 * overflow come from the carry-vector identities, which cover ADC/SBB too
 * (the carry-in is already folded into the result).
 */
#include "hv/bt/bt_internal.h"

static uint64_t
flags_compute(struct bt_cpu *c)
{
	unsigned kind = c->cc_op >> 2, sz = 1u << (c->cc_op & 3);
	uint64_t m = bt_mask(sz), sign = 1ull << (sz * 8 - 1);
	uint64_t r = c->cc_res & m, a = c->cc_a & m, b = c->cc_b & m;
	uint64_t f = 0, cv;

	if (__builtin_parity(r & 0xff) == 0)
		f |= RFLAGS_PF;
	if (r == 0)
		f |= RFLAGS_ZF;
	if (r & sign)
		f |= RFLAGS_SF;
	switch (kind) {
	case CC_ADD:
		cv = (a & b) | ((a | b) & ~r);
		if (cv & sign)
			f |= RFLAGS_CF;
		if (((a ^ r) & (b ^ r)) & sign)
			f |= RFLAGS_OF;
		f |= (a ^ b ^ r) & RFLAGS_AF;
		break;
	case CC_SUB:
		cv = (~a & b) | ((~a | b) & r);
		if (cv & sign)
			f |= RFLAGS_CF;
		if (((a ^ b) & (a ^ r)) & sign)
			f |= RFLAGS_OF;
		f |= (a ^ b ^ r) & RFLAGS_AF;
		break;
	case CC_LOGIC:
		break;
	case CC_INC:
		f |= c->flags & RFLAGS_CF;
		if (r == sign)
			f |= RFLAGS_OF;
		f |= (a ^ 1 ^ r) & RFLAGS_AF;
		break;
	case CC_DEC:
		f |= c->flags & RFLAGS_CF;
		if (r == sign - 1)
			f |= RFLAGS_OF;
		f |= (a ^ 1 ^ r) & RFLAGS_AF;
		break;
	case CC_SHL:	/* b = count, 1..63 */
		cv = b <= sz * 8 ? (a >> (sz * 8 - b)) & 1 : 0;
		f |= cv ? RFLAGS_CF : 0;
		if (!!(r & sign) != !!cv)
			f |= RFLAGS_OF;
		break;
	case CC_SHR:
		if (b <= 64 && ((a >> (b - 1)) & 1))
			f |= RFLAGS_CF;
		if (a & sign)
			f |= RFLAGS_OF;
		break;
	case CC_SAR: {
		int64_t sa = (int64_t)bt_sext(a, sz);

		if ((sa >> (b - 1 > 63 ? 63 : b - 1)) & 1)
			f |= RFLAGS_CF;
		break;
	}
	}
	return f;
}

/* The whole RFLAGS; also makes the flags eager again. */
uint64_t
bt_flags_get(struct bt_cpu *c)
{
	if (c->cc_op != CC_EAGER) {
		c->flags = (c->flags & ~CC_ARITH) | flags_compute(c);
		c->cc_op = CC_EAGER;
	}
	return c->flags | RFLAGS_FIXED;
}

/* Replace the bits of mask with f's. */
void
bt_flags_set(struct bt_cpu *c, uint64_t f, uint64_t mask)
{
	bt_flags_get(c);
	c->flags = (c->flags & ~mask) | (f & mask);
}

bool
bt_cf(struct bt_cpu *c)
{
	unsigned kind = c->cc_op >> 2, sz = 1u << (c->cc_op & 3);
	uint64_t sign = 1ull << (sz * 8 - 1);
	uint64_t r = c->cc_res, a = c->cc_a, b = c->cc_b;

	switch (kind) {
	case CC_ADD:	/* carry out of the top bit (ADC included) */
		return ((a & b) | ((a | b) & ~r)) & sign;
	case CC_SUB:	/* borrow out of the top bit (SBB included) */
		return ((~a & b) | ((~a | b) & r)) & sign;
	case CC_LOGIC:
		return false;
	case CC_EAGER:
	case CC_INC:
	case CC_DEC:
		return c->flags & RFLAGS_CF;
	}
	return bt_flags_get(c) & RFLAGS_CF;
}

/* Condition code cc (the low nibble of Jcc/SETcc/CMOVcc). */
bool
bt_cond(struct bt_cpu *c, unsigned cc)
{
	uint64_t f;
	bool r;

	if (c->cc_op != CC_EAGER && ((cc >> 1) == 2 || (cc >> 1) == 4)) {
		/* ZF and SF come from the result whatever the operation. */
		unsigned sz = 1u << (c->cc_op & 3);
		uint64_t res = c->cc_res & bt_mask(sz);

		r = (cc >> 1) == 2 ? res == 0 : (res >> (sz * 8 - 1)) & 1;
		return r ^ (cc & 1);
	}
	if (c->cc_op >> 2 == CC_LOGIC) {
		/* TEST/AND/OR/XOR: CF = OF = 0. */
		unsigned sz = 1u << (c->cc_op & 3);
		uint64_t res = c->cc_res & bt_mask(sz);
		bool sf = (res >> (sz * 8 - 1)) & 1;

		switch (cc >> 1) {
		case 0: case 1: r = false; break;
		case 2: case 3: r = res == 0; break;
		case 4: case 6: r = sf; break;
		case 5: r = !__builtin_parity(res & 0xff); break;
		default: r = res == 0 || sf; break;
		}
		return r ^ (cc & 1);
	}
	if (c->cc_op >> 2 == CC_SUB && (cc >> 1) != 0 && (cc >> 1) != 5) {
		/* CMP/SUB without SBB carry-in: compare the operands. */
		unsigned sz = 1u << (c->cc_op & 3);
		uint64_t m = bt_mask(sz), a = c->cc_a & m, b = c->cc_b & m;

		if ((c->cc_res & m) == ((a - b) & m)) {
			int64_t sa = (int64_t)bt_sext(a, sz);
			int64_t sb = (int64_t)bt_sext(b, sz);

			switch (cc >> 1) {
			case 1: r = a < b; break;
			case 2: r = a == b; break;
			case 3: r = a <= b; break;
			case 4: r = bt_sext(c->cc_res & m, sz) >> 63; break;
			case 6: r = sa < sb; break;
			default: r = sa <= sb; break;
			}
			return r ^ (cc & 1);
		}
	}
	f = bt_flags_get(c);
	switch (cc >> 1) {
	case 0: r = f & RFLAGS_OF; break;
	case 1: r = f & RFLAGS_CF; break;
	case 2: r = f & RFLAGS_ZF; break;
	case 3: r = f & (RFLAGS_CF | RFLAGS_ZF); break;
	case 4: r = f & RFLAGS_SF; break;
	case 5: r = f & RFLAGS_PF; break;
	case 6: r = !!(f & RFLAGS_SF) != !!(f & RFLAGS_OF); break;
	default:
		r = (f & RFLAGS_ZF) || (!!(f & RFLAGS_SF) != !!(f & RFLAGS_OF));
		break;
	}
	return r ^ (cc & 1);
}
