/*
 * The software CPU's code generator against its interpreter: random
 * 64-bit loops built from the instructions the generator compiles inline
 * (register ALU, MOV, LEA, compare-and-branch, loads and stores, ALU
 * with RAX or a register and an imm32, byte compares, shifts and
 * rotates by a constant or CL, IMUL, CMOVcc, SETcc, MOVZX/MOVSX on
 * registers, CMP and ALU/INC/DEC with a memory operand, with flags that
 * die or are read) mixed with ones it calls handlers for (INC/DEC r,
 * ADC, PUSH/POP, faulting and MMIO accesses), run once with
 * TERMVISOR_BT_JIT=0 and once with the generator on, from the same
 * state.  Registers, RIP, every
 * flag (even the undefined ones: both sides are ours), the exception
 * taken and the data page must be identical.
 *
 * BT_JIT_ITERS=N runs N programs (soak); BT_JIT_SEED=S replays one (or
 * starts the N there); BT_JIT_WILD=1 adds writes into the code and the
 * harness's tables (see wild()).
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>

#include "bt/harness.h"
#include "hv/bt/bt_internal.h"
#include "hv/bt/jit_emit.h"

#define CODE 0x200000ull
#define DATA 0x300000ull	/* r15 points here; r14 counts the loop */

struct prog {
	uint8_t b[4096];
	size_t n;
	uint64_t rng;
};

static uint64_t
rnd(struct prog *p)
{
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return p->rng;
}

static void
put(struct prog *p, int n, ...)
{
	va_list ap;

	va_start(ap, n);
	for (int k = 0; k < n; k++)
		p->b[p->n++] = (uint8_t)va_arg(ap, int);
	va_end(ap);
}

/* A register for results: any but RSP, R14 (counter), R15 (data). */
static unsigned
dreg(struct prog *p)
{
	static const uint8_t r[] = { 0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12,
	    13 };

	return r[rnd(p) % sizeof(r)];
}

static uint8_t
rex(bool w, unsigned reg, unsigned rm)
{
	return (uint8_t)(0x40 | (w ? 8 : 0) | (reg >= 8 ? 4 : 0) |
	    (rm >= 8 ? 1 : 0));
}

static uint8_t
modrm(unsigned mod, unsigned reg, unsigned rm)
{
	return (uint8_t)(mod << 6 | (reg & 7) << 3 | (rm & 7));
}

/* [r15 + disp8] with reg in the reg field */
static void
mem15(struct prog *p, unsigned reg, uint8_t disp)
{
	put(p, 2, modrm(1, reg, 7), disp);
}

/* BT_JIT_WILD=1: some memory writes go through any register, and some
 * registers start on the code page, the page tables, the GDT, the IDT
 * or its stubs, so that the programs modify their own code and the
 * harness's tables.  A soak, not the default: a program that rewrites
 * its loop may never end (both sides then stop at the watchdog, at a
 * point that depends on timing) or make itself a RDRAND/RDSEED, and
 * such a seed gives no verdict (see same()). */
static bool
wild(void)
{
	return getenv("BT_JIT_WILD") != NULL;
}

/* INC/DEC, ADD/OR/AND/SUB/XOR r, or op imm8 on [s], [s + d8] or
 * [rip + d32] (s = RBP/R13 with mod 0: near the instruction itself). */
static void
gen_wild(struct prog *p, bool w, unsigned s, unsigned t, unsigned o)
{
	static const uint8_t op[] = { 0x01, 0x09, 0x21, 0x29, 0x31 };
	unsigned k = (unsigned)(rnd(p) % 3), md = (unsigned)(rnd(p) & 1);

	if (k == 0)
		put(p, 3, rex(w, 0, s), 0xff, modrm(md, rnd(p) & 1, s));
	else if (k == 1)
		put(p, 3, rex(w, t, s), op[rnd(p) % 5], modrm(md, t, s));
	else
		put(p, 3, rex(w, 0, s), 0x83, modrm(md, o, s));
	if ((s & 7) == 4)
		put(p, 1, 0x24);		/* SIB: [rsp/r12] */
	if (md == 1) {
		put(p, 1, (uint8_t)rnd(p));
	} else if ((s & 7) == 5) {
		uint32_t d = (uint32_t)((int32_t)(rnd(p) % 48) - 24);

		put(p, 4, d & 0xff, (d >> 8) & 0xff, (d >> 16) & 0xff,
		    d >> 24);
	}
	if (k == 2)
		put(p, 1, (uint8_t)rnd(p));
}

static void
gen_one(struct prog *p)
{
	static const uint8_t alu[] = { 0x01, 0x09, 0x21, 0x29, 0x31, 0x39,
	    0x85, 0x03, 0x2b, 0x33 };
	unsigned r = dreg(p), s = (unsigned)(rnd(p) % 16), t = dreg(p);
	bool w = rnd(p) & 1;
	uint8_t d8 = (uint8_t)(rnd(p) % 0x78 * 8);

	if (s == 4)
		s = 0;
	switch (rnd(p) % 51) {
	case 48: case 49: case 50: {	/* op [mem], r / imm, INC/DEC [mem]
					 * (after a CF setter), then a flag
					 * reader */
		static const uint8_t op[] = { 0, 1, 4, 5, 6 };
		unsigned o = op[rnd(p) % 5];

		if (rnd(p) & 1)		/* CMP: CF for INC/DEC to keep */
			put(p, 3, rex(w, s, r), 0x39, modrm(3, s, r));
		switch (rnd(p) % 5) {
		case 0:
			put(p, 2, rex(w, s, 15), (uint8_t)(o << 3 | 1));
			mem15(p, s, d8);
			break;
		case 1:
			put(p, 2, rex(w, 0, 15), 0x83);
			mem15(p, o, d8);
			put(p, 1, (uint8_t)rnd(p));
			break;
		case 2:
			put(p, 2, rex(w, 0, 15), 0x81);
			mem15(p, o, d8);
			put(p, 4, (uint8_t)rnd(p), (uint8_t)rnd(p),
			    (uint8_t)rnd(p), (uint8_t)rnd(p));
			break;
		case 3:
			put(p, 2, rex(w, 0, 15), 0xff);
			mem15(p, rnd(p) & 1, d8);
			break;
		case 4:
			if (wild()) {
				gen_wild(p, w, s, t, o);
				break;
			}
			/* fall through */
		default: {		/* INC/DEC [abs32]: the data page, or
					 * unmapped (#PF; code and page
					 * tables only in the wild mode) */
			uint32_t a = rnd(p) & 1 ? (uint32_t)DATA + d8 :
			    0x7fff0000u;

			put(p, 4, rex(w, 0, 0), 0xff,
			    modrm(0, rnd(p) & 1, 4), 0x25);
			put(p, 4, a & 0xff, (a >> 8) & 0xff, (a >> 16) & 0xff,
			    a >> 24);
			break;
		}
		}
		if (rnd(p) & 1)
			put(p, 4, rex(false, 0, t), 0x0f,
			    (uint8_t)(0x90 | rnd(p) % 16), modrm(3, 0, t));
		break;
	}
	case 47:			/* CWDE/CDQE, BSWAP, a fence */
		switch (rnd(p) % 3) {
		case 0: put(p, 2, rex(w, 0, 0), 0x98); break;
		case 1: put(p, 3, rex(w, 0, r), 0x0f,
		    (uint8_t)(0xc8 | (r & 7))); break;
		default: put(p, 3, 0x0f, 0xae,
		    (uint8_t)(0xe8 + 8 * (rnd(p) % 3))); break;
		}
		break;
	case 45: case 46: {		/* SHL/SHR/SAR r, CL (a count of 0,
					 * 1, 31, 32, 63, 64 or any), then
					 * a flag reader or writer */
		static const uint8_t op[] = { 4, 5, 7 };
		static const uint8_t cnt[] = { 0, 1, 31, 32, 63, 64 };

		if (rnd(p) & 1)
			put(p, 5, 0xb9, rnd(p) & 1 ? cnt[rnd(p) % 6] :
			    (uint8_t)rnd(p), 0, 0, 0);	/* mov ecx, n */
		put(p, 3, rex(w, 0, r), 0xd3, modrm(3, op[rnd(p) % 3], r));
		switch (rnd(p) % 4) {
		case 0:			/* Jcc over an ADD */
			put(p, 2, (uint8_t)(0x70 | rnd(p) % 16), 3);
			put(p, 3, rex(true, s, t), 0x01, modrm(3, s, t));
			break;
		case 1:			/* SETcc */
			put(p, 4, rex(false, 0, t), 0x0f,
			    (uint8_t)(0x90 | rnd(p) % 16), modrm(3, 0, t));
			break;
		case 2:			/* ADC r, r */
			put(p, 3, rex(w, s, t), 0x11, modrm(3, s, t));
			break;
		default:		/* a writer */
			put(p, 3, rex(w, s, t), 0x29, modrm(3, s, t));
			break;
		}
		break;
	}
	case 42: {			/* MOVZX/MOVSX r, r8/r16 */
		static const uint8_t op[] = { 0xb6, 0xb7, 0xbe, 0xbf };
		uint8_t o = op[rnd(p) % 4];

		if (!(o & 1) && rnd(p) % 3 == 0)	/* AH..BH, no REX */
			put(p, 3, 0x0f, o, modrm(3, r & 7, s & 7));
		else
			put(p, 4, rex(w, r, s), 0x0f, o, modrm(3, r, s));
		break;
	}
	case 43:			/* CMP [mem], r / word [mem], imm;
					 * then SETcc or Jcc */
		switch (rnd(p) % 4) {
		case 0:
			put(p, 2, rex(w, s, 15), 0x39);
			mem15(p, s, d8);
			break;
		case 1:			/* through any register (may fault
					 * or reach MMIO) */
			put(p, 3, rex(w, r, s), 0x39, modrm(0, r, s));
			if ((s & 7) == 4 || (s & 7) == 5)
				p->b[p->n - 1] = modrm(0, r, 6);
			break;
		case 2:
			put(p, 3, 0x66, rex(false, 0, 15), 0x83);
			mem15(p, 7, d8);
			put(p, 1, (uint8_t)rnd(p));
			break;
		default:
			put(p, 3, 0x66, rex(false, 0, 15), 0x81);
			mem15(p, 7, d8);
			put(p, 2, (uint8_t)rnd(p), (uint8_t)rnd(p));
			break;
		}
		if (rnd(p) & 1) {
			put(p, 4, rex(false, 0, t), 0x0f,
			    (uint8_t)(0x90 | rnd(p) % 16), modrm(3, 0, t));
		} else {
			put(p, 2, (uint8_t)(0x70 | rnd(p) % 16), 3);
			put(p, 3, rex(true, s, t), 0x01, modrm(3, s, t));
		}
		break;
	case 44:			/* MOV word [mem], r16; MOVSXD r64,
					 * [mem] */
		if (rnd(p) & 1) {
			put(p, 3, 0x66, rex(false, s, 15), 0x89);
			mem15(p, s, d8);
		} else {
			put(p, 2, rex(true, r, 15), 0x63);
			mem15(p, r, d8);
		}
		break;
	case 40:			/* NOT/NEG r, TEST r8, imm8 */
		switch (rnd(p) % 3) {
		case 0: case 1:
			put(p, 3, rex(w, 0, r), 0xf7,
			    modrm(3, 2 + (rnd(p) & 1), r));
			break;
		default:		/* AH..BH without REX */
			if (rnd(p) & 1)
				put(p, 1, rex(false, 0, r));
			put(p, 3, 0xf6, modrm(3, 0, r & 7), (uint8_t)rnd(p));
			break;
		}
		break;
	case 41:			/* LEA r32, [s + t * k + d8] */
		put(p, 5, rex(false, r, s) | (t >= 8 ? 2 : 0), 0x8d,
		    modrm(1, r, 4), (uint8_t)((rnd(p) % 4) << 6 |
		    (t & 7) << 3 | (s & 7)), (uint8_t)rnd(p));
		break;
	case 38: {			/* ADC/SBB r, r / r, imm8 / imm32 */
		uint8_t op = (uint8_t)(0x11 + (rnd(p) % 4 == 0 ? 2 : 0) +
		    (rnd(p) & 1 ? 8 : 0));

		switch (rnd(p) % 3) {
		case 0:			/* the destination is r either way */
			if (op & 2)
				put(p, 3, rex(w, r, s), op, modrm(3, r, s));
			else
				put(p, 3, rex(w, s, r), op, modrm(3, s, r));
			break;
		case 1:
			put(p, 4, rex(w, 0, r), 0x83,
			    modrm(3, 2 + (rnd(p) & 1), r), (uint8_t)rnd(p));
			break;
		default:
			put(p, 3, rex(w, 0, r), 0x81,
			    modrm(3, 2 + (rnd(p) & 1), r));
			put(p, 4, (uint8_t)rnd(p), (uint8_t)rnd(p),
			    (uint8_t)rnd(p), (uint8_t)rnd(p));
			break;
		}
		break;
	}
	case 39:			/* NOP, XCHG AX, AX, XCHG r8, rax */
		switch (rnd(p) % 3) {
		case 0: put(p, 1, 0x90); break;
		case 1: put(p, 2, 0x66, 0x90); break;
		default: put(p, 2, 0x49, 0x90); break;
		}
		break;
	case 36:			/* TEST r, imm32 / TEST rAX, imm32 /
					 * MOV r, imm32 (C7) */
		switch (rnd(p) % 3) {
		case 0:
			put(p, 3, rex(w, 0, r), 0xf7, modrm(3, 0, r));
			break;
		case 1:
			put(p, 2, rex(w, 0, 0), 0xa9);
			break;
		default:
			put(p, 3, rex(w, 0, r), 0xc7, modrm(3, 0, r));
			break;
		}
		put(p, 4, (uint8_t)rnd(p), (uint8_t)rnd(p), (uint8_t)rnd(p),
		    (uint8_t)rnd(p));
		break;
	case 37:			/* byte CMP/TEST alone, then SETcc */
		switch (rnd(p) % 4) {
		case 0:
			put(p, 2, rnd(p) & 1 ? 0x3c : 0xa8, (uint8_t)rnd(p));
			break;
		case 1:			/* AH..BH without REX */
			put(p, 2, rnd(p) & 1 ? 0x84 : 0x38,
			    modrm(3, s & 7, r & 7));
			break;
		case 2:
			put(p, 3, rex(false, s, r), rnd(p) & 1 ? 0x84 : 0x3a,
			    modrm(3, s, r));
			break;
		default:
			put(p, 3, 0x80, modrm(3, 7, r & 7), (uint8_t)rnd(p));
			break;
		}
		put(p, 4, rex(false, 0, t), 0x0f,
		    (uint8_t)(0x90 | rnd(p) % 16), modrm(3, 0, t));
		break;
	case 30: {			/* ROL/ROR r, imm8 or 1 */
		static const uint8_t n[] = { 1, 2, 31, 32, 63, 0 };

		if (rnd(p) % 4 == 0) {
			put(p, 3, rex(w, 0, r), 0xd1, modrm(3, rnd(p) & 1, r));
			break;
		}
		put(p, 4, rex(w, 0, r), 0xc1, modrm(3, rnd(p) & 1, r),
		    rnd(p) & 1 ? n[rnd(p) % 6] : (uint8_t)rnd(p));
		break;
	}
	case 31:			/* IMUL r, r (, imm8 / imm32) */
		switch (rnd(p) % 3) {
		case 0:
			put(p, 4, rex(w, r, s), 0x0f, 0xaf, modrm(3, r, s));
			break;
		case 1:
			put(p, 4, rex(w, r, s), 0x6b, modrm(3, r, s),
			    (uint8_t)rnd(p));
			break;
		default:
			put(p, 3, rex(w, r, s), 0x69, modrm(3, r, s));
			put(p, 4, (uint8_t)rnd(p), (uint8_t)rnd(p),
			    (uint8_t)rnd(p), (uint8_t)rnd(p));
			break;
		}
		break;
	case 32:			/* SETcc r8 (AH..BH without REX) */
		if (rnd(p) & 1)
			put(p, 1, rex(false, 0, r));
		put(p, 3, 0x0f, (uint8_t)(0x90 | rnd(p) % 16),
		    modrm(3, 0, r));
		break;
	case 33: case 34: case 35: {	/* shift/rotate/IMUL, then a flag
					 * reader or writer */
		static const uint8_t grp2[] = { 0, 1, 4, 5, 7 };
		unsigned k = rnd(p) % 6;

		if (k == 5)
			put(p, 4, rex(w, t, s), 0x0f, 0xaf, modrm(3, t, s));
		else
			put(p, 4, rex(w, 0, t), 0xc1, modrm(3, grp2[k], t),
			    (uint8_t)(1 + rnd(p) % 63));
		switch (rnd(p) % 5) {
		case 0:			/* Jcc over an ADD */
			put(p, 2, (uint8_t)(0x70 | rnd(p) % 16), 3);
			put(p, 3, rex(true, s, t), 0x01, modrm(3, s, t));
			break;
		case 1:			/* CMOVcc */
			put(p, 4, rex(w, r, s), 0x0f,
			    (uint8_t)(0x40 | rnd(p) % 16), modrm(3, r, s));
			break;
		case 2:			/* SETcc */
			put(p, 4, rex(false, 0, r), 0x0f,
			    (uint8_t)(0x90 | rnd(p) % 16), modrm(3, 0, r));
			break;
		case 3:			/* ADC r, r */
			put(p, 3, rex(w, s, r), 0x11, modrm(3, s, r));
			break;
		default:		/* a writer: these flags die */
			put(p, 3, rex(w, s, r), 0x29, modrm(3, s, r));
			break;
		}
		break;
	}
	case 24: {			/* ALU r, imm32 (81) */
		static const uint8_t op[] = { 0, 1, 4, 5, 7, 6 };

		put(p, 3, rex(w, 0, r), 0x81, modrm(3, op[rnd(p) % 6], r));
		put(p, 4, (uint8_t)rnd(p), (uint8_t)rnd(p), (uint8_t)rnd(p),
		    (uint8_t)rnd(p));
		break;
	}
	case 25: {			/* CMP byte r/m, r or r, r/m; Jcc */
		uint8_t op = rnd(p) & 1 ? 0x38 : 0x3a;

		if (rnd(p) & 1) {	/* no REX: AH..BH for 4..7 */
			put(p, 2, op, modrm(3, s & 7, r & 7));
		} else if (rnd(p) & 1) {
			put(p, 3, rex(false, s, r), op, modrm(3, s, r));
		} else if (rnd(p) & 1) {
			put(p, 2, rex(false, s, 15), op);
			mem15(p, s, d8);
		} else {		/* [rip + d32]: a code byte nearby */
			put(p, 3, rex(false, s, 0), op, modrm(0, s, 5));
			put(p, 4, (uint8_t)(rnd(p) % 8), 0, 0, 0);
		}
		put(p, 2, (uint8_t)(0x70 | rnd(p) % 16), 3);
		put(p, 3, rex(true, s, t), 0x01, modrm(3, s, t));
		break;
	}
	case 26:			/* CMP/TEST AL or r8, imm8/r8; Jcc */
		switch (rnd(p) % 4) {
		case 0: case 1:
			put(p, 2, rnd(p) & 1 ? 0x3c : 0xa8, (uint8_t)rnd(p));
			break;
		case 2:			/* TEST r8, r8 */
			put(p, 3, rex(false, s, r), 0x84, modrm(3, s, r));
			break;
		default:		/* CMP r8, imm8 (AH..BH without REX) */
			if (rnd(p) & 1)
				put(p, 1, rex(false, 0, r));
			put(p, 3, 0x80, modrm(3, 7, r), (uint8_t)rnd(p));
			break;
		}
		put(p, 2, (uint8_t)(0x70 | rnd(p) % 16), 3);
		put(p, 3, rex(true, s, t), 0x01, modrm(3, s, t));
		break;
	case 27: {			/* op rAX, imm32; Jcc */
		static const uint8_t op[] = { 0x05, 0x0d, 0x25, 0x2d, 0x35,
		    0x3d };

		if (w)
			put(p, 1, 0x48);
		put(p, 5, op[rnd(p) % 6], (uint8_t)rnd(p), (uint8_t)rnd(p),
		    (uint8_t)rnd(p), (uint8_t)rnd(p));
		put(p, 2, (uint8_t)(0x70 | rnd(p) % 16), 3);
		put(p, 3, rex(true, s, t), 0x01, modrm(3, s, t));
		break;
	}
	case 28: {			/* JMP/CALL [r15 + d8] to what follows */
		bool call = rnd(p) & 1;

		put(p, 3, rex(true, r, 0), 0x8d, modrm(0, r, 5));
		put(p, 4, 8, 0, 0, 0);		/* lea r, [after the JMP] */
		put(p, 2, rex(true, r, 15), 0x89);
		mem15(p, r, d8);
		put(p, 2, 0x41, 0xff);
		mem15(p, call ? 2 : 4, d8);
		if (call)			/* drop the return address */
			put(p, 2, rex(false, 0, t), (uint8_t)(0x58 | (t & 7)));
		break;
	}
	case 29: {			/* JMP/CALL r to what follows */
		bool call = rnd(p) & 1;

		put(p, 3, rex(true, r, 0), 0x8d, modrm(0, r, 5));
		put(p, 4, 3, 0, 0, 0);		/* lea r, [after the JMP] */
		put(p, 3, rex(false, 0, r), 0xff, modrm(3, call ? 2 : 4, r));
		if (call)
			put(p, 2, rex(false, 0, t), (uint8_t)(0x58 | (t & 7)));
		break;
	}
	case 21:			/* MOV r, imm32/imm64 */
		if (w) {
			put(p, 2, rex(true, 0, r), (uint8_t)(0xb8 | (r & 7)));
			for (int k = 0; k < 8; k++)
				put(p, 1, (uint8_t)rnd(p));
		} else {
			put(p, 2, rex(false, 0, r), (uint8_t)(0xb8 | (r & 7)));
			put(p, 4, (uint8_t)rnd(p), (uint8_t)rnd(p),
			    (uint8_t)rnd(p), (uint8_t)rnd(p));
		}
		break;
	case 22:			/* MOVSXD r, r32 */
		put(p, 3, rex(w, r, s), 0x63, modrm(3, r, s));
		break;
	case 23:			/* JMP over an ADD */
		put(p, 2, 0xeb, 3);
		put(p, 3, rex(true, s, t), 0x01, modrm(3, s, t));
		break;
	case 16: {			/* ALU r, [r15 + d8] */
		static const uint8_t op[] = { 0x03, 0x0b, 0x23, 0x2b, 0x33,
		    0x3b };

		put(p, 2, rex(w, r, 15), op[rnd(p) % 6]);
		mem15(p, r, d8);
		break;
	}
	case 17:			/* CMP [r15 + d8], imm8 (or byte) */
		put(p, 2, rex(w, 0, 15), rnd(p) & 1 ? 0x83 : 0x80);
		mem15(p, 7, d8);
		put(p, 1, (uint8_t)rnd(p));
		break;
	case 18:			/* TEST [r15 + d8], r / byte, imm8 */
		if (rnd(p) & 1) {
			put(p, 2, rex(w, s, 15), 0x85);
			mem15(p, s, d8);
		} else {
			put(p, 2, rex(false, 0, 15), 0xf6);
			mem15(p, 0, d8);
			put(p, 1, (uint8_t)rnd(p));
		}
		break;
	case 19: case 20: {		/* flags set, a load, then Jcc */
		uint8_t cc = (uint8_t)(rnd(p) % 16);

		put(p, 3, rex(w, s, r), rnd(p) & 1 ? 0x29 : 0x21,
		    modrm(3, s, r));
		put(p, 2, rex(true, t, 15), 0x8b);
		mem15(p, t, d8);
		put(p, 2, (uint8_t)(0x70 | cc), 3);
		put(p, 3, rex(true, s, t), 0x01, modrm(3, s, t));
		break;
	}
	case 0: case 1: case 2: {	/* ALU r, r (r is written) */
		uint8_t op = alu[rnd(p) % sizeof(alu)];

		if (op & 2)
			put(p, 3, rex(w, r, s), op, modrm(3, r, s));
		else
			put(p, 3, rex(w, s, r), op, modrm(3, s, r));
		break;
	}
	case 3: {			/* ALU r, imm8: ADD OR AND SUB CMP */
		static const uint8_t op[] = { 0, 1, 4, 5, 7, 6 };

		put(p, 4, rex(w, 0, r), 0x83, modrm(3, op[rnd(p) % 6], r),
		    (uint8_t)rnd(p));
		break;
	}
	case 4:				/* MOV r, r */
		if (rnd(p) & 1)
			put(p, 3, rex(w, s, r), 0x89, modrm(3, s, r));
		else
			put(p, 3, rex(w, r, s), 0x8b, modrm(3, r, s));
		break;
	case 5:				/* LEA r, [s + t * k + d8] */
		put(p, 5, rex(true, r, s) | (t >= 8 ? 2 : 0), 0x8d,
		    modrm(1, r, 4), (uint8_t)((rnd(p) % 4) << 6 |
		    (t & 7) << 3 | (s & 7)), (uint8_t)rnd(p));
		break;
	case 6:				/* load */
		put(p, 2, rex(w, r, 15), 0x8b);
		mem15(p, r, d8);
		break;
	case 7:				/* store */
		put(p, 2, rex(w, s, 15), 0x89);
		mem15(p, s, d8);
		break;
	case 8:				/* MOVZX r, byte [r15 + d8] */
		put(p, 3, rex(w, r, 15), 0x0f, 0xb6);
		mem15(p, r, d8);
		break;
	case 9:				/* MOV [r15 + d8], imm32 */
		put(p, 2, rex(w, 0, 15), 0xc7);
		mem15(p, 0, d8);
		put(p, 4, (uint8_t)rnd(p), (uint8_t)rnd(p), 0, 0x80);
		break;
	case 10:			/* INC/DEC r */
		put(p, 3, rex(w, 0, r), 0xff, modrm(3, rnd(p) & 1, r));
		break;
	case 11:			/* SHL/SHR/SAR r, imm8 */
		put(p, 4, rex(w, 0, r), 0xc1, modrm(3, 4 + rnd(p) % 4 -
		    (rnd(p) % 4 == 2), r), (uint8_t)(rnd(p) % 70));
		break;
	case 12:			/* PUSH s; POP r */
		put(p, 4, rex(false, 0, s), (uint8_t)(0x50 | (s & 7)),
		    rex(false, 0, r), (uint8_t)(0x58 | (r & 7)));
		break;
	case 13: {			/* CMP/TEST + Jcc over an ADD */
		uint8_t cc = (uint8_t)(rnd(p) % 16);

		put(p, 3, rex(w, s, r), rnd(p) & 1 ? 0x39 : 0x85,
		    modrm(3, s, r));
		put(p, 2, (uint8_t)(0x70 | cc), 3);
		put(p, 3, rex(true, s, t), 0x01, modrm(3, s, t));
		break;
	}
	case 14:			/* load through any register (may
					 * fault or reach MMIO) */
		if (rnd(p) % 4 == 0) {
			put(p, 3, rex(true, r, s), 0x8b, modrm(0, r, s));
			if ((s & 7) == 4 || (s & 7) == 5)
				p->b[p->n - 1] = modrm(0, r, 6);
			break;
		}
		/* fall through */
	default:			/* CMOVcc r, r */
		put(p, 4, rex(w, r, s), 0x0f, (uint8_t)(0x40 | rnd(p) % 16),
		    modrm(3, r, s));
		break;
	}
}

static void
gen(struct prog *p, uint64_t seed)
{
	size_t top;
	int32_t rel;

	p->n = 0;
	p->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	put(p, 6, 0x41, 0xbe, (uint8_t)(1 + rnd(p) % 20), 0, 0, 0);
	top = p->n;
	for (int k = 0, len = 1 + (int)(rnd(p) % 40); k < len; k++)
		gen_one(p);
	put(p, 3, 0x41, 0xff, 0xce);		/* dec r14d */
	put(p, 2, 0x0f, 0x85);			/* jnz top */
	rel = (int32_t)(top - (p->n + 4));
	memcpy(p->b + p->n, &rel, 4);
	p->n += 4;
	put(p, 1, 0xf4);
}

struct result {
	enum vm_exit_kind k;
	struct cpu_state st;
	uint8_t vec;
	uint8_t data[4096];
};

/* A 16 MiB test VM whose software CPU has the JIT on or off. */
static struct tvm *
tvm_new_jit(bool jit)
{
	struct tvm *t;

	if (jit)
		unsetenv("TERMVISOR_BT_JIT");
	else
		setenv("TERMVISOR_BT_JIT", "0", 1);
	t = tvm_new(16 << 20);
	unsetenv("TERMVISOR_BT_JIT");
	return t;
}

static void
run(const struct prog *p, uint64_t seed, bool jit, bool generic,
    struct result *r)
{
	struct prog q = { .rng = seed * 31 + 7 };
	struct tvm *t;

	t = tvm_new_jit(jit);
	cr_assert_eq(((struct bt_cpu *)t->vcpu->accel)->jit != NULL, jit);
	((struct bt_cpu *)t->vcpu->accel)->generic = generic;
	tvm_put(t, CODE, p->b, p->n);
	for (int k = 0; k < 4096; k++)
		t->vm->ram[DATA + k] = (uint8_t)rnd(&q);
	t->vm->ram[TVM_FAULT_VEC] = 0xff;
	tvm_long_mode(t, &r->st, CODE);
	for (int k = 0; k < 16; k++)
		r->st.gpr[k] = rnd(&q) % 3 ? rnd(&q) % 512 : rnd(&q);
	if (wild()) {
		static const uint64_t base[] = { CODE, CODE + 0x40, TVM_PD,
		    TVM_PD + 8, TVM_GDT, TVM_IDT, TVM_STUBS, TVM_PML4,
		    TVM_PDPT, TVM_FAULT_VEC - 0x10 };

		for (int k = 0; k < 16; k++)
			if (rnd(&q) % 4 == 0)
				r->st.gpr[k] = base[rnd(&q) % 10] +
				    rnd(&q) % 64;
	}
	r->st.gpr[R_RSP] = 0x80000;
	r->st.gpr[R_R15] = DATA;
	r->st.rflags = RFLAGS_FIXED | (rnd(&q) & 0x8d5);
	bt_accel_ops.set_state(t->vcpu, &r->st);
	r->k = tvm_run(t, 5000);
	bt_accel_ops.get_state(t->vcpu, &r->st);
	r->vec = t->vm->ram[TVM_FAULT_VEC];
	memcpy(r->data, t->vm->ram + DATA, 4096);
	tvm_free(t);
}

/* The generic handlers leave the flags they architecturally define
 * as the specialized ones do; the undefined ones may differ. */
static bool
same_result(const struct result *g, const struct result *a)
{
	return g->k == a->k && g->vec == a->vec && g->st.rip == a->st.rip &&
	    g->st.rflags == a->st.rflags &&
	    memcmp(g->st.gpr, a->st.gpr, sizeof(g->st.gpr)) == 0 &&
	    memcmp(g->data, a->data, sizeof(g->data)) == 0;
}

static bool
same(uint64_t seed)
{
	static struct prog p;
	static struct result a, b, g;

	gen(&p, seed);
	run(&p, seed, false, false, &a);
	run(&p, seed, true, false, &b);
	run(&p, seed, false, true, &g);
	if ((a.k == VM_EXIT_INTR && b.k == VM_EXIT_INTR && g.k == VM_EXIT_INTR) ||
	    (wild() && (a.k == VM_EXIT_INTR || b.k == VM_EXIT_INTR ||
	    g.k == VM_EXIT_INTR))) {
		/* Stopped by the watchdog, each at a point that depends on
		 * timing: nothing to compare.  In the wild mode, one side
		 * alone may be (code rewriting the next block at every
		 * store runs at very different speeds in the two). */
		fprintf(stderr, "bt jit: seed %llu did not end in 5 s%s\n",
		    (unsigned long long)seed, wild() ? " (no verdict)" :
		    ": the generator must make programs that end");
		return wild();
	}
	if (wild()) {
		/* A program that rewrites itself may make RDRAND or RDSEED
		 * (run, not #UD, for the KVM assist): the interpreter must
		 * repeat itself before the others are held to it. */
		static struct result a2;

		run(&p, seed, false, false, &a2);
		if (!same_result(&a, &a2)) {
			fprintf(stderr, "bt jit: seed %llu does not repeat "
			    "itself (no verdict)\n",
			    (unsigned long long)seed);
			return true;
		}
	}
	if (!same_result(&g, &a)) {
		fprintf(stderr, "bt jit: seed %llu: the specialized handlers "
		    "differ from the generic ones (rip %llx/%llx rflags "
		    "%llx/%llx vector %d/%d exit %d/%d)\n",
		    (unsigned long long)seed,
		    (unsigned long long)g.st.rip, (unsigned long long)a.st.rip,
		    (unsigned long long)g.st.rflags,
		    (unsigned long long)a.st.rflags, g.vec, a.vec, g.k, a.k);
		for (int k = 0; k < 16; k++)
			if (a.st.gpr[k] != g.st.gpr[k])
				fprintf(stderr, "  r%d %llx (generic) %llx\n",
				    k, (unsigned long long)g.st.gpr[k],
				    (unsigned long long)a.st.gpr[k]);
		fprintf(stderr, "  code:");
		for (size_t k = 0; k < p.n; k++)
			fprintf(stderr, " %02x", p.b[k]);
		fprintf(stderr, "\n");
		return false;
	}
	if (a.k == b.k && a.vec == b.vec && a.st.rip == b.st.rip &&
	    a.st.rflags == b.st.rflags &&
	    memcmp(a.st.gpr, b.st.gpr, sizeof(a.st.gpr)) == 0 &&
	    memcmp(a.data, b.data, sizeof(a.data)) == 0)
		return true;
	fprintf(stderr, "bt jit: seed %llu differs: exit %d/%d vector %d/%d "
	    "rip %llx/%llx rflags %llx/%llx\n", (unsigned long long)seed,
	    a.k, b.k, a.vec, b.vec, (unsigned long long)a.st.rip,
	    (unsigned long long)b.st.rip, (unsigned long long)a.st.rflags,
	    (unsigned long long)b.st.rflags);
	for (int k = 0; k < 16; k++)
		if (a.st.gpr[k] != b.st.gpr[k])
			fprintf(stderr, "  r%d %llx (interpreter) %llx (jit)\n",
			    k, (unsigned long long)a.st.gpr[k],
			    (unsigned long long)b.st.gpr[k]);
	if (memcmp(a.data, b.data, sizeof(a.data)) != 0)
		fprintf(stderr, "  data page differs\n");
	fprintf(stderr, "  code:");
	for (size_t k = 0; k < p.n; k++)
		fprintf(stderr, " %02x", p.b[k]);
	fprintf(stderr, "\n");
	return false;
}

Test(bt_jit, random_loops_match_the_interpreter)
{
	const char *it = getenv("BT_JIT_ITERS"), *sd = getenv("BT_JIT_SEED");
	long iters = it ? atol(it) : 300;
	uint64_t seed0 = sd ? strtoull(sd, NULL, 0) : 1;
	int bad = 0;

	if (sd != NULL && it == NULL)
		iters = 1;
	for (long s = 0; s < iters && bad < 3; s++) {
		if (!same(seed0 + (uint64_t)s))
			bad++;
	}
	cr_assert_eq(bad, 0, "%d programs differ (see stderr)", bad);
}

/*
 * The inline shifts, rotates and IMUL over edge values: mov rax, a;
 * mov rcx, b; the form (on eax/rax, with ecx/rcx as a source); eight
 * SETcc (conditions base..base+7) into dl, bl, sil, dil, r8b..r11b,
 * then a Jcc over an INC r12 and HLT.  The SETcc read the flags inline
 * (from the form's lazy state or through bt_cond), the end state reads
 * them from the lazy state.
 */
static const uint64_t edge_val[] = { 0, 1, 0x7fffffff, 0x80000000,
    0xffffffff, 0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull,
    0x123456789abcdef0ull, 0xc0000001 };
#define NEDGE (sizeof(edge_val) / sizeof(edge_val[0]))

static void
put_form(uint8_t *b, size_t *n, int k, ...)
{
	va_list ap;

	va_start(ap, k);
	while (k-- > 0)
		b[(*n)++] = (uint8_t)va_arg(ap, int);
	va_end(ap);
}

static void
gen_edge(struct prog *p, const uint8_t *form, size_t flen, uint64_t a,
    uint64_t b, unsigned base)
{
	static const uint8_t setr[8] = { 2, 3, 6, 7, 8, 9, 10, 11 };

	p->n = 0;
	put(p, 2, 0x48, 0xb8);
	memcpy(p->b + p->n, &a, 8);
	p->n += 8;
	put(p, 2, 0x48, 0xb9);
	memcpy(p->b + p->n, &b, 8);
	p->n += 8;
	memcpy(p->b + p->n, form, flen);
	p->n += flen;
	for (unsigned k = 0; k < 8; k++)
		put(p, 4, rex(false, 0, setr[k]), 0x0f,
		    (uint8_t)(0x90 | (base + k)), modrm(3, 0, setr[k]));
	put(p, 2, (uint8_t)(0x70 | ((base + 3) & 15)), 3);
	put(p, 3, 0x49, 0xff, 0xc4);		/* inc r12 */
	put(p, 1, 0xf4);
}

/* Interpreter and JIT on one edge program; false (and a note) if they
 * differ. */
static bool
edge_same(const uint8_t *form, size_t flen, uint64_t a, uint64_t b)
{
	static struct prog p;
	static struct result x, y;

	for (unsigned base = 0; base < 16; base += 8) {
		gen_edge(&p, form, flen, a, b, base);
		run(&p, 5, false, false, &x);
		run(&p, 5, true, false, &y);
		if (x.k == y.k && x.st.rip == y.st.rip &&
		    x.st.rflags == y.st.rflags &&
		    memcmp(x.st.gpr, y.st.gpr, sizeof(x.st.gpr)) == 0)
			continue;
		fprintf(stderr, "bt jit edge: a %llx b %llx rflags %llx "
		    "(interpreter) %llx (jit), form", (unsigned long long)a,
		    (unsigned long long)b, (unsigned long long)x.st.rflags,
		    (unsigned long long)y.st.rflags);
		for (size_t k = 0; k < flen; k++)
			fprintf(stderr, " %02x", form[k]);
		fprintf(stderr, "\n");
		for (int k = 0; k < 16; k++)
			if (x.st.gpr[k] != y.st.gpr[k])
				fprintf(stderr, "  r%d %llx (interpreter) %llx "
				    "(jit)\n", k,
				    (unsigned long long)x.st.gpr[k],
				    (unsigned long long)y.st.gpr[k]);
		return false;
	}
	return true;
}

Test(bt_jit, shifts_and_rotates_at_edge_counts)
{
	static const uint8_t grp2[] = { 0, 1, 4, 5, 7 };
	static const uint8_t cnt[] = { 0, 1, 2, 31, 32, 63 };
	int bad = 0;

	for (int w = 0; w < 2; w++)
		for (unsigned o = 0; o < 5; o++)
			for (unsigned c = 0; c <= 6; c++) {
				uint8_t f[8] = { rex(w, 0, 0), 0xc1,
				    modrm(3, grp2[o], 0), c < 6 ? cnt[c] : 0 };
				size_t n = 4;

				if (c == 6) {		/* D1: by one */
					f[1] = 0xd1;
					n = 3;
				}
				for (unsigned v = 0; v < NEDGE && bad < 5; v++)
					bad += !edge_same(f, n, edge_val[v],
					    edge_val[(v + 3) % NEDGE]);
			}
	cr_assert_eq(bad, 0, "shift forms differ (see stderr)");
}

Test(bt_jit, rotates_keep_the_earlier_flags)
{
	static const uint8_t cnt[] = { 1, 7, 31 };
	int bad = 0;

	/* CMP rcx, rax (or ADD) leaves lazy flags the rotate must keep
	 * all but CF and OF of. */
	for (int w = 0; w < 2; w++)
		for (unsigned o = 0; o < 2; o++)
			for (unsigned c = 0; c < 3; c++)
				for (unsigned v = 0; v < NEDGE && bad < 5;
				    v++) {
					uint8_t f[7] = { 0x48, v & 1 ? 0x01 :
					    0x39, 0xc1, rex(w, 0, 0), 0xc1,
					    modrm(3, o, 0), cnt[c] };

					bad += !edge_same(f, 7, edge_val[v],
					    edge_val[(v + 5) % NEDGE]);
				}
	cr_assert_eq(bad, 0, "rotate forms differ (see stderr)");
}

Test(bt_jit, adc_sbb_at_edge_values)
{
	int bad = 0;

	/* CMP rcx, rax sets CF (or a TEST clears it), then ADC/SBB in
	 * each form; both the inline carry and bt_cf's (after a shift). */
	for (int w = 0; w < 2; w++)
		for (unsigned f = 0; f < 12; f++)
			for (unsigned v = 0; v < NEDGE && bad < 5; v++) {
				static const uint8_t pre[3][3] = {
				    { 0x48, 0x39, 0xc1 }, { 0x48, 0x85, 0xc1 },
				    { 0x48, 0xd1, 0xe9 } };	/* shr rcx */
				uint8_t b[12];
				size_t n = 3;

				memcpy(b, pre[f % 3], 3);
				switch (f / 3) {
				case 0:		/* adc eax/rax, ecx/rcx */
					put_form(b, &n, 3, rex(w, 0, 0), 0x11,
					    0xc8);
					break;
				case 1:		/* sbb ecx/rcx, eax/rax */
					put_form(b, &n, 3, rex(w, 0, 0), 0x1b,
					    0xc8);
					break;
				case 2:		/* adc eax/rax, imm8 (-1) */
					put_form(b, &n, 4, rex(w, 0, 0), 0x83,
					    0xd0, 0xff);
					break;
				default:	/* sbb eax/rax, imm32 */
					put_form(b, &n, 7, rex(w, 0, 0), 0x81,
					    0xd8, 0, 0, 0, 0x80);
					break;
				}
				bad += !edge_same(b, n, edge_val[v],
				    edge_val[(v + 4) % NEDGE]);
			}
	cr_assert_eq(bad, 0, "ADC/SBB forms differ (see stderr)");
}

Test(bt_jit, imul_at_edge_values)
{
	static const uint32_t imm[] = { 0x7f, 0x80, 0xff, 2, 0x7fffffff,
	    0x80000000, 0xffffffff, 0x10001 };
	int bad = 0;

	for (int w = 0; w < 2; w++) {
		for (unsigned v = 0; v < NEDGE; v++)
			for (unsigned u = 0; u < NEDGE && bad < 5; u++) {
				/* imul eax/rax, ecx/rcx */
				uint8_t f[4] = { rex(w, 0, 1), 0x0f, 0xaf,
				    modrm(3, 0, 1) };

				bad += !edge_same(f, 4, edge_val[v],
				    edge_val[u]);
			}
		for (unsigned m = 0; m < 8; m++)
			for (unsigned v = 0; v < NEDGE && bad < 5; v++) {
				/* imul eax/rax, ecx/rcx, imm8 / imm32 */
				uint8_t f[7] = { rex(w, 0, 1), m < 4 ? 0x6b :
				    0x69, modrm(3, 0, 1) };
				size_t n = 4;

				memcpy(f + 3, &imm[m], 4);
				if (m >= 4)
					n = 7;
				bad += !edge_same(f, n, 0, edge_val[v]);
			}
	}
	cr_assert_eq(bad, 0, "IMUL forms differ (see stderr)");
}

/* SHL/SHR/SAR eax/rax, cl after a CMP or an ADD (whose flags a count of
 * 0 keeps): cl from the edge values covers 0, 1, 31 and 63. */
Test(bt_jit, shifts_by_cl_at_edge_values)
{
	static const uint8_t op[] = { 4, 5, 7 };
	int bad = 0;

	for (int w = 0; w < 2; w++)
		for (unsigned o = 0; o < 3; o++)
			for (unsigned v = 0; v < NEDGE && bad < 5; v++)
				for (unsigned u = 0; u < NEDGE; u++) {
					uint8_t f[6] = { 0x48, u & 1 ? 0x01 :
					    0x39, 0xc1, rex(w, 0, 0), 0xd3,
					    modrm(3, op[o], 0) };

					bad += !edge_same(f + 3, 3,
					    edge_val[v], edge_val[u]);
					bad += !edge_same(f, 6, edge_val[v],
					    edge_val[u]);
				}
	cr_assert_eq(bad, 0, "shift-by-CL forms differ (see stderr)");
}

/*
 * The memory-operand forms over edge values: the value in rax is stored
 * to [r15] first (a zero-extended word of it for the 16-bit forms), then
 * compared with rcx, an immediate or loaded back (MOVSXD), and the MOVZX/
 * MOVSX register forms from cl/cx/ch, CWDE, CDQE and BSWAP, and
 * ADD/SUB/XOR/INC/DEC on [r15] (INC/DEC keeping a CMP's carry).
 */
Test(bt_jit, memory_compares_and_extensions_at_edge_values)
{
	static const uint8_t forms[][14] = {
	    /* mov [r15], rax; cmp [r15], ecx / rcx */
	    { 7, 0x49, 0x89, 0x07, 0x41, 0x39, 0x0f },
	    { 7, 0x49, 0x89, 0x07, 0x49, 0x39, 0x0f },
	    /* mov [r15], ax; cmp word [r15], imm8 (-1, 0x7f, 0x80: -128) */
	    { 9, 0x66, 0x41, 0x89, 0x07, 0x66, 0x41, 0x83, 0x3f, 0xff },
	    { 9, 0x66, 0x41, 0x89, 0x07, 0x66, 0x41, 0x83, 0x3f, 0x7f },
	    { 9, 0x66, 0x41, 0x89, 0x07, 0x66, 0x41, 0x83, 0x3f, 0x80 },
	    /* cmp word [r15], imm16 (0x8000, 0x7fff) */
	    { 10, 0x66, 0x41, 0x89, 0x07, 0x66, 0x41, 0x81, 0x3f, 0x00,
		0x80 },
	    { 10, 0x66, 0x41, 0x89, 0x07, 0x66, 0x41, 0x81, 0x3f, 0xff,
		0x7f },
	    /* mov [r15], ecx; mov word [r15], ax; movsxd rdx, [r15] */
	    { 11, 0x41, 0x89, 0x0f, 0x66, 0x41, 0x89, 0x07, 0x49, 0x63,
		0x17 },
	    /* movzx eax, cl / movsx eax, cl / movsx rax, cx / movzx eax,
	     * cx / movsx eax, ch; then a CMP so the flags say something */
	    { 6, 0x0f, 0xb6, 0xc1, 0x48, 0x39, 0xc8 },
	    { 6, 0x0f, 0xbe, 0xc1, 0x48, 0x39, 0xc8 },
	    { 7, 0x48, 0x0f, 0xbf, 0xc1, 0x48, 0x39, 0xc8 },
	    { 6, 0x0f, 0xb7, 0xc1, 0x48, 0x39, 0xc8 },
	    { 7, 0x48, 0x0f, 0xbe, 0xc5, 0x48, 0x39, 0xc8 },
	    /* mov [r15], rax; add/sub/xor [r15], ecx/rcx; add dword
	     * [r15], -1; sub qword [r15], 0x80; and dword [r15], imm32;
	     * rax = the result */
	    { 10, 0x49, 0x89, 0x07, 0x41, 0x01, 0x0f, 0x49, 0x8b, 0x07 },
	    { 10, 0x49, 0x89, 0x07, 0x49, 0x29, 0x0f, 0x49, 0x8b, 0x07 },
	    { 10, 0x49, 0x89, 0x07, 0x41, 0x31, 0x0f, 0x49, 0x8b, 0x07 },
	    { 11, 0x49, 0x89, 0x07, 0x41, 0x83, 0x07, 0xff, 0x49, 0x8b,
		0x07 },
	    { 11, 0x49, 0x89, 0x07, 0x49, 0x83, 0x2f, 0x80, 0x49, 0x8b,
		0x07 },
	    /* cmp rcx, rax (CF); inc dword / dec qword [r15] */
	    { 9, 0x49, 0x89, 0x07, 0x48, 0x39, 0xc1, 0x41, 0xff, 0x07 },
	    { 9, 0x49, 0x89, 0x07, 0x48, 0x39, 0xc1, 0x49, 0xff, 0x0f },
	    /* cwde / cdqe / bswap eax / bswap rax, then the CMP */
	    { 4, 0x98, 0x48, 0x39, 0xc8 },
	    { 5, 0x48, 0x98, 0x48, 0x39, 0xc8 },
	    { 5, 0x0f, 0xc8, 0x48, 0x39, 0xc8 },
	    { 6, 0x48, 0x0f, 0xc8, 0x48, 0x39, 0xc8 },
	};
	static const uint64_t val16[] = { 0x8000, 0x7fff, 0xffff, 0x80,
	    0x7f, 0xff7f };
	int bad = 0;

	for (unsigned f = 0; f < sizeof(forms) / sizeof(forms[0]); f++)
		for (unsigned v = 0; v < NEDGE + 6 && bad < 5; v++) {
			uint64_t a = v < NEDGE ? edge_val[v] :
			    val16[v - NEDGE];

			bad += !edge_same(forms[f] + 1, forms[f][0], a,
			    edge_val[(v + 3) % NEDGE]);
			bad += !edge_same(forms[f] + 1, forms[f][0], a, a);
		}
	cr_assert_eq(bad, 0, "memory forms differ (see stderr)");
}

/*
 * Code that calls a function at 0x400000 twice (chained, cached), runs
 * mid (which may point 0x400000 elsewhere: f2 at 0x600000) and calls
 * it again; r13 = the first two results' sum, rbx = the third.  setup
 * (may be NULL) edits the VM before it runs.
 */
static void
callf_run(bool jit, const struct prog *mid, void (*setup)(struct tvm *),
    struct cpu_state *st)
{
	static const uint8_t f1[] = { 0xb8, 1, 0, 0, 0, 0xc3 };
	static const uint8_t f2[] = { 0xb8, 2, 0, 0, 0, 0xc3 };
	struct prog p = { .n = 0 };
	struct tvm *t;
	int32_t rel;

	put(&p, 6, 0x41, 0xbc, 2, 0, 0, 0);		/* mov r12d, 2 */
	put(&p, 1, 0xe8);				/* top: call f */
	rel = (int32_t)(0x400000 - (CODE + p.n + 4));
	memcpy(p.b + p.n, &rel, 4);
	p.n += 4;
	put(&p, 3, 0x49, 0x01, 0xc5);			/* add r13, rax */
	put(&p, 3, 0x41, 0xff, 0xcc);			/* dec r12d */
	put(&p, 2, 0x75, (uint8_t)-13);			/* jnz top */
	memcpy(p.b + p.n, mid->b, mid->n);
	p.n += mid->n;
	put(&p, 1, 0xe8);				/* call f */
	rel = (int32_t)(0x400000 - (CODE + p.n + 4));
	memcpy(p.b + p.n, &rel, 4);
	p.n += 4;
	put(&p, 3, 0x48, 0x89, 0xc3);			/* mov rbx, rax */
	put(&p, 1, 0xf4);
	t = tvm_new_jit(jit);
	tvm_put(t, CODE, p.b, p.n);
	tvm_put(t, 0x400000, f1, sizeof(f1));
	tvm_put(t, 0x600000, f2, sizeof(f2));
	tvm_long_mode(t, st, CODE);
	if (setup != NULL)
		setup(t);
	st->gpr[R_R13] = 0;
	bt_accel_ops.set_state(t->vcpu, st);
	cr_assert_eq(tvm_run(t, 5000), VM_EXIT_HLT);
	bt_accel_ops.get_state(t->vcpu, st);
	tvm_free(t);
}

/*
 * Jump caches and chains survive an INVLPG that cannot remap code, so
 * one that can must still reach the new code: between the calls, point
 * 0x400000's 2 MiB page elsewhere and INVLPG one 4K page inside it
 * (off: any one of them drops the whole large page).
 */
static void
remap_run(bool jit, uint32_t off, struct cpu_state *st)
{
	struct prog mid = { .n = 0 };

	put(&mid, 5, 0xb8, (TVM_PD + 16) & 0xff, ((TVM_PD + 16) >> 8) & 0xff,
	    (TVM_PD + 16) >> 16, 0);		/* mov eax, &PD[2] */
	put(&mid, 7, 0x48, 0xc7, 0x00, 0x87, 0x00, 0x60, 0x00);	/* ->6M */
	put(&mid, 1, 0xb9);				/* mov ecx, lin */
	put(&mid, 4, (0x400000 + off) & 0xff, ((0x400000 + off) >> 8) & 0xff,
	    (0x400000 + off) >> 16, 0);
	put(&mid, 3, 0x0f, 0x01, 0x39);			/* invlpg [rcx] */
	callf_run(jit, &mid, NULL, st);
}

Test(bt_jit, invlpg_of_a_code_page_reaches_the_new_code)
{
	static const uint32_t off[] = { 0, 0x1000, 0x1ff000 };
	struct cpu_state st;

	for (int jit = 0; jit < 2; jit++)
		for (unsigned k = 0; k < 3; k++) {
			remap_run(jit, off[k], &st);
			cr_assert_eq(st.gpr[R_R13], 2, "jit %d off %#x", jit,
			    off[k]);
			cr_assert_eq(st.gpr[R_RBX], 2, "jit %d off %#x: the "
			    "old code ran", jit, off[k]);
		}
}

/* The second address space of cr3_run: the same, but 0x400000 ->
 * 0x600000; the caller's page is global in both. */
static void
cr3_setup(struct tvm *t)
{
	const uint64_t pml4 = 0x13000, pdpt = 0x14000, pd = 0x15000;

	tvm_set64(t, pml4, pdpt | 7);
	tvm_set64(t, pdpt, pd | 7);
	for (uint64_t k = 0; k < 512; k++)
		tvm_set64(t, pd + k * 8, (k << 21) | 0x87);
	tvm_set64(t, pd + 16, 0x600000 | 0x87);
	tvm_set64(t, TVM_PD + 8, 0x200000 | 0x187);
	tvm_set64(t, pd + 8, 0x200000 | 0x187);
}

/*
 * MOV CR3 keeps chains and cached blocks of globally mapped code but not
 * of the rest: the caller (global, at CODE) switches between the calls
 * to page tables where 0x400000 is other code.
 */
static void
cr3_run(bool jit, struct cpu_state *st)
{
	struct prog mid = { .n = 0 };

	put(&mid, 5, 0xb8, 0x00, 0x30, 0x01, 0);	/* mov eax, pml4 */
	put(&mid, 3, 0x0f, 0x22, 0xd8);			/* mov cr3, rax */
	callf_run(jit, &mid, cr3_setup, st);
}

Test(bt_jit, mov_cr3_reaches_the_other_address_spaces_code)
{
	struct cpu_state st;

	for (int jit = 0; jit < 2; jit++) {
		cr3_run(jit, &st);
		cr_assert_eq(st.gpr[R_R13], 2, "jit %d", jit);
		cr_assert_eq(st.gpr[R_RBX], 2, "jit %d: the old code ran", jit);
	}
}

/*
 * Chains within one page skip the TLB epoch (bt_jit_link's local slots):
 * code at 8 MiB points its own 2 MiB page elsewhere, INVLPGs it and
 * jumps 0x20 bytes on.  The first pass maps the same page again (and
 * jumps to r11++, which chains back), the second maps the copy at
 * 10 MiB, whose code at +0x20 is other: mov eax, 0x2222; hlt.  A chain
 * kept from the first pass would loop there for ever.
 */
static void
own_page_run(bool jit, struct cpu_state *st)
{
	static const uint8_t head[] = {
		0x4c, 0x89, 0x0b,		/* mov [rbx], r9: PD[4] */
		0x0f, 0x01, 0x3a,		/* invlpg [rdx] */
		0xeb, 0x18 };			/* jmp +0x20 */
	static const uint8_t same[] = {
		0x41, 0xff, 0xc3,		/* inc r11d */
		0x4d, 0x89, 0xd1,		/* mov r9, r10 */
		0xeb, 0xd8 };			/* jmp +0 */
	static const uint8_t other[] = { 0xb8, 0x22, 0x22, 0, 0, 0xf4 };
	struct tvm *t;

	t = tvm_new_jit(jit);
	for (uint64_t pa = 0x800000; pa <= 0xa00000; pa += 0x200000)
		tvm_put(t, pa, head, sizeof(head));
	tvm_put(t, 0x800020, same, sizeof(same));
	tvm_put(t, 0xa00020, other, sizeof(other));
	tvm_long_mode(t, st, 0x800000);
	st->gpr[R_RBX] = TVM_PD + 4 * 8;
	st->gpr[R_RDX] = 0x800000;
	st->gpr[R_R9] = 0x800000 | 0x87;
	st->gpr[R_R10] = 0xa00000 | 0x87;
	st->gpr[R_R11] = 0;
	bt_accel_ops.set_state(t->vcpu, st);
	cr_assert_eq(tvm_run(t, 5000), VM_EXIT_HLT, "jit %d: no end", jit);
	bt_accel_ops.get_state(t->vcpu, st);
	tvm_free(t);
}

Test(bt_jit, a_block_that_remaps_its_own_page_reaches_the_new_code)
{
	struct cpu_state st;

	for (int jit = 0; jit < 2; jit++) {
		own_page_run(jit, &st);
		cr_assert_eq(st.gpr[R_R11], 1, "jit %d", jit);
		cr_assert_eq((uint32_t)st.gpr[R_RAX], 0x2222, "jit %d", jit);
	}
}

/*
 * Loads, stores and ADD [mem] crossing from a 4K page whose TLB entry is
 * warm (the inline path's) into the next linear page, which maps to RAM
 * elsewhere (7 MiB): the bytes past the boundary must come from there,
 * never from the host memory after the first page.
 */
static void
cross_run(bool jit, struct cpu_state *st, struct tvm **tp)
{
	static const uint8_t code[] = {
		0x48, 0x8b, 0x06,		/* mov rax, [rsi]: warm */
		0x48, 0x8b, 0x56, 0x0d,		/* mov rdx, [rsi+0xd] */
		0x48, 0x89, 0x4e, 0x0e,		/* mov [rsi+0xe], rcx */
		0x01, 0x7e, 0x0e,		/* add [rsi+0xe], edi */
		0x0f, 0xb7, 0x46, 0x0f,		/* movzx eax, word [rsi+0xf] */
		0xf4 };
	const uint64_t pt = 0x16000;
	struct tvm *t;

	t = tvm_new_jit(jit);
	tvm_put(t, CODE, code, sizeof(code));
	tvm_long_mode(t, st, CODE);
	/* 4 MiB..6 MiB through a page table: 0x400000 -> itself,
	 * 0x401000 -> 0x700000 */
	tvm_set64(t, TVM_PD + 2 * 8, pt | 3);
	tvm_set64(t, pt, 0x400000 | 3);
	tvm_set64(t, pt + 8, 0x700000 | 3);
	for (int k = 0; k < 16; k++) {
		t->vm->ram[0x400ff0 + k] = (uint8_t)(0xa0 + k);
		t->vm->ram[0x401000 + k] = 0xee;	/* the wrong bytes */
		t->vm->ram[0x700000 + k] = (uint8_t)(0xb0 + k);
	}
	st->gpr[R_RSI] = 0x400ff0;
	st->gpr[R_RCX] = 0x1122334455667788ull;
	st->gpr[R_RDI] = 0x01010101;
	bt_accel_ops.set_state(t->vcpu, st);
	cr_assert_eq(tvm_run(t, 5000), VM_EXIT_HLT, "jit %d", jit);
	bt_accel_ops.get_state(t->vcpu, st);
	*tp = t;
}

Test(bt_jit, accesses_crossing_into_the_next_page_go_there)
{
	struct cpu_state st;
	struct tvm *t;

	for (int jit = 0; jit < 2; jit++) {
		const uint8_t *lo, *hi;

		cross_run(jit, &st, &t);
		lo = t->vm->ram + 0x400ff0;
		hi = t->vm->ram + 0x700000;
		/* rdx: 0x400ffd..fff then 0x700000..004, as loaded */
		cr_assert_eq(st.gpr[R_RDX], 0xb4b3b2b1b0afaeadull, "jit %d: "
		    "%#llx", jit, (unsigned long long)st.gpr[R_RDX]);
		/* rcx stored at 0x400ffe: 88 77 | 66 55 44 33 22 11, then
		 * edi added there: 88 77 | 66 55 + 01 01 | 01 01 */
		cr_assert(lo[13] == 0xad && lo[14] == 0x89 && lo[15] == 0x78,
		    "jit %d: %02x %02x %02x", jit, lo[13], lo[14], lo[15]);
		cr_assert(hi[0] == 0x67 && hi[1] == 0x56 && hi[5] == 0x11 &&
		    hi[6] == 0xb6, "jit %d: %02x %02x", jit, hi[0], hi[1]);
		cr_assert_eq(t->vm->ram[0x401000], 0xee, "jit %d", jit);
		/* ax: 0x400fff (0x78) and 0x700000 (0x67) */
		cr_assert_eq(st.gpr[R_RAX], 0x6778, "jit %d: %#llx", jit,
		    (unsigned long long)st.gpr[R_RAX]);
		tvm_free(t);
	}
}

/* Every spelling env_enabled reads as off turns the generator off; any
 * other value leaves it on. */
Test(bt_jit, off_switch_leaves_the_interpreter_alone)
{
	static const struct { const char *v; bool on; } sw[] = {
		{ "0", false }, { "off", false }, { "no", false },
		{ "1", true }, { "yes", true },
	};

	for (size_t k = 0; k < sizeof(sw) / sizeof(sw[0]); k++) {
		struct tvm *t;

		setenv("TERMVISOR_BT_JIT", sw[k].v, 1);
		t = tvm_new(1 << 20);
		unsetenv("TERMVISOR_BT_JIT");
		cr_assert_eq(((struct bt_cpu *)t->vcpu->accel)->jit != NULL,
		    sw[k].on, "TERMVISOR_BT_JIT=%s", sw[k].v);
		tvm_free(t);
	}
}

/*
 * A block that ends at a RIP known when it is compiled (here a JNZ back
 * to itself) is linked through its chain slot after its first pass,
 * not reached through the jump cache on every pass: the cache would
 * find it too, but the slot would never be linked (jit_link_chain).
 */
Test(bt_jit, a_loop_back_edge_is_chained)
{
	struct prog p = { .n = 0 };
	struct cpu_state st;
	struct tvm *t = tvm_new_jit(true);
	struct bt_cpu *c = t->vcpu->accel;
	const struct bt_block *b = NULL;
	int linked = 0;

	put(&p, 5, 0xb9, 0x10, 0x27, 0, 0);	/* mov ecx, 10000 */
	put(&p, 3, 0x83, 0xe9, 0x01);		/* L: sub ecx, 1 */
	put(&p, 2, 0x75, 0xfb);			/* jnz L */
	put(&p, 1, 0xf4);			/* hlt */
	tvm_put(t, CODE, p.b, p.n);
	tvm_long_mode(t, &st, CODE);
	bt_accel_ops.set_state(t->vcpu, &st);
	cr_assert_eq(tvm_run(t, 5000), VM_EXIT_HLT);
	bt_accel_ops.get_state(t->vcpu, &st);
	cr_assert_eq(st.gpr[R_RCX] & 0xffffffff, 0);
	for (int k = 0; k < 4096; k++)
		if (c->jc[k].lin == CODE + 5)
			b = c->jc[k].b;
	cr_assert_not_null(b, "the loop's block is not in the jump cache");
	cr_assert_not_null(b->jit, "the loop's block was not compiled");
	for (int k = 0; k < 2; k++) {
		uint64_t rip;

		memcpy(&rip, c->jit->rw + b->jslot[k] + SLOT_RIP, 8);
		linked += rip == CODE + 5;
	}
	cr_assert_eq(linked, 1, "the back edge is not linked");
	tvm_free(t);
}
