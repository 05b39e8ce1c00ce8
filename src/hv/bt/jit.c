/*
 * Host code for 64-bit blocks: a small x86-64 code generator on top of
 * the pre-decoded blocks.  Each instruction becomes either inline host
 * code (register MOV/ALU/LEA, shifts and rotates by a constant, IMUL,
 * CMOVcc, SETcc and compare-and-branch, which cannot fault; loads and
 * stores with the soft TLB inline) or a direct call of its pre-decoded
 * handler with RIP and the next RIP stored first, exactly as bt_tc_run
 * would have them.  Inline ops record the lazy flags as their handlers
 * do, unless a later op of the block overwrites them before anything
 * can read them (dead flags: nothing between may fault or call out);
 * flag readers take the host flags from the lazy state an inline op of
 * the block left, else call bt_cond.  That keeps every
 * exception precise (a faulting handler longjmps out with c->rip at the
 * instruction, as in the interpreter) and leaves the semantics in one
 * place: the generated code only replaces the dispatch loop and the
 * commonest register operations.
 *
 * Registers inside generated code: rbx = struct bt_cpu *, r12 = the
 * block's first RIP (every RIP in the block is r12 + a constant), rax,
 * rcx, rdx, rsi, rdi scratch.  A block is entered through a trampoline
 * that saves the callee-saved registers and left through a common exit.
 *
 * W^X: the buffer is one memfd mapped twice, writable at one address and
 * executable at another, so no page is ever writable and executable at
 * the same address.  TERMVISOR_BT_JIT=0 (or off, no) turns the generator
 * off (the interpreter alone runs; the tests run both).
 *
 * The pieces: jit_emit.h (the buffer, the cursor, the x86-64 encoders),
 * this file (buffer set-up, the instruction forms, bt_jit_compile) and
 * jit_link.c (block ends: chain slots, bt_jit_link, the inline
 * jump-cache probe).
 *
 * TV_BT_PERFMAP=1 writes /tmp/perf-PID.map, one line per block ("host
 * address, size, bt_<guest linear RIP>"); tests/bt/jitprof.py turns perf
 * script's samples into host time per guest function with it (perf
 * report does not apply the map to this memfd mapping).
 */
#include "hv/bt/jit_emit.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv/vm.h"
#include "util/env.h"
#include "util/log.h"

/* The entry trampoline (c in rdi, code in rsi) and the common exit. */
static void
jit_trampolines(struct bt_jit *j)
{
	struct jx x = { j, j->rw };

	j->entry = 0;
	e1(&x, 0x53);			/* push rbx */
	e1(&x, 0x41); e1(&x, 0x54);	/* push r12 */
	e1(&x, 0x55);			/* push rbp: rsp is 16-aligned */
	e1(&x, 0x48); e1(&x, 0x89); e1(&x, 0xfb);	/* mov rbx, rdi */
	e1(&x, 0xff); e1(&x, 0xe6);	/* jmp rsi */
	j->exit = (size_t)(x.p - j->rw);
	e1(&x, 0x5d);			/* pop rbp */
	e1(&x, 0x41); e1(&x, 0x5c);	/* pop r12 */
	e1(&x, 0x5b);			/* pop rbx */
	e1(&x, 0xc3);			/* ret */
	j->used = ((size_t)(x.p - j->rw) + 63) & ~(size_t)63;
}

int
bt_jit_init(struct bt_cpu *c)
{
	struct bt_jit *j;

	c->jit = NULL;
	if (!env_enabled("TERMVISOR_BT_JIT"))
		return 0;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -ENOMEM;
	j->size = JIT_SIZE;
	j->fd = memfd_create("termvisor-bt-jit", MFD_CLOEXEC);
	if (j->fd < 0 || ftruncate(j->fd, (off_t)j->size) < 0)
		goto fail;
	j->rw = mmap(NULL, j->size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    j->fd, 0);
	j->rx = mmap(NULL, j->size, PROT_READ | PROT_EXEC, MAP_SHARED,
	    j->fd, 0);
	if (j->rw == MAP_FAILED || j->rx == MAP_FAILED)
		goto fail;
	jit_trampolines(j);
	if (getenv("TV_BT_PERFMAP") != NULL) {
		char path[64];

		snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
		if ((j->perfmap = fopen(path, "a")) == NULL)
			log_warn("software CPU: %s", path);
		else	/* whole lines, even if we are killed */
			setvbuf(j->perfmap, NULL, _IOLBF, 0);
	}
	c->jit = j;
	c->jit_last = NULL;
	c->reqp = (const uint32_t *)&c->vcpu->requests;
	c->inval_p = &c->bvm->inval_gen;
	return 0;
fail:
	/* Not fatal: the interpreter does the same work, slower. */
	log_warn("software CPU: no code buffer, interpreting only");
	if (j->rw != NULL && j->rw != MAP_FAILED)
		munmap(j->rw, j->size);
	if (j->rx != NULL && j->rx != MAP_FAILED)
		munmap(j->rx, j->size);
	if (j->fd >= 0)
		close(j->fd);
	free(j);
	return 0;
}

void
bt_jit_fini(struct bt_cpu *c)
{
	struct bt_jit *j = c->jit;

	if (j == NULL)
		return;
	if (j->perfmap != NULL)
		fclose(j->perfmap);
	munmap(j->rw, j->size);
	munmap(j->rx, j->size);
	close(j->fd);
	free(j);
	c->jit = NULL;
}

void
bt_jit_flush(struct bt_cpu *c)
{
	if (c->jit != NULL)
		jit_trampolines(c->jit);
	c->jit_last = NULL;
}

bool
bt_jit_room(struct bt_cpu *c)
{
	return c->jit == NULL || c->jit->used + JIT_BLOCK_MAX <= c->jit->size;
}

/* The lazy-flag kind of each ALU op (ADC/SBB: the carry-in is folded
 * into the result, so jit_flags cannot redo them; see jit_carry). */
static const uint8_t jit_kind[9] = { CC_ADD, CC_LOGIC, CC_ADD, CC_SUB,
    CC_LOGIC, CC_SUB, CC_LOGIC, CC_SUB, CC_LOGIC };

static unsigned
jit_lg(unsigned sz)
{
	return sz == 1 ? 0 : sz == 2 ? 1 : sz == 4 ? 2 : 3;
}

/* With the operands in rax and rcx (zero-extended): the ALU op, its
 * lazy flags recorded as the handlers record them, the result to dst
 * if write; host flags left as the guest's (for a following branch). */
static void
jit_alu_tail(struct jx *x, unsigned op, unsigned sz, bool write,
    unsigned dst, bool dead)
{
	/* CMP as SUB, TEST as AND: same flags, result unused */
	static const uint8_t opc[9] = { 0x01, 0x09, 0x11, 0x19, 0x21, 0x29,
	    0x31, 0x29, 0x21 };

	if (dead) {		/* flags overwritten before any read */
		if (!write)
			return;
		if (sz == 2)
			e1(x, 0x66);
		if (sz == 8)
			e1(x, 0x48);
		e1(x, (uint8_t)(sz == 1 ? opc[op] - 1 : opc[op]));
		e1(x, 0xc8);
		e_st(x, true, RAX, GPR(dst));
		return;
	}
	if (op == 8) {		/* TEST records no operands */
		e_st_imm(x, true, OFF(cc_a), 0);
		e_st_imm(x, true, OFF(cc_b), 0);
	} else {
		e_st(x, true, RAX, OFF(cc_a));
		e_st(x, true, RCX, OFF(cc_b));
	}
	if (sz == 2)		/* the upper bits of rax stay 0 */
		e1(x, 0x66);
	if (sz == 8)
		e1(x, 0x48);
	e1(x, (uint8_t)(sz == 1 ? opc[op] - 1 : opc[op]));
	e1(x, 0xc8);			/* op al/eax/rax, cl/ecx/rcx */
	e_st(x, true, RAX, OFF(cc_res));
	if (write)
		e_st(x, true, RAX, GPR(dst));
	e_st_imm(x, false, OFF(cc_op), jit_kind[op] * 4 + jit_lg(sz));
}

/* Inline register ALU op. */
static void
jit_alu(struct jx *x, const struct bt_insn *i, const struct bt_fdesc *d,
    bool dead)
{
	bool w = d->sz == 8;

	if (dead && !d->write)
		return;		/* a CMP or TEST nobody reads */
	if (d->sz == 1) {	/* CMP/TEST: movzx both operands */
		e1(x, 0x0f); e1(x, 0xb6);
		e_mem(x, RAX, GPR(d->dst) + d->hi);
		if (d->imm) {
			e_mov_imm64(x, RCX, (uint8_t)i->imm);
		} else {
			e1(x, 0x0f); e1(x, 0xb6);
			e_mem(x, RCX, GPR(d->src) + d->shi);
		}
		jit_alu_tail(x, d->op, 1, false, d->dst, dead);
		return;
	}
	e_ld(x, w, RAX, GPR(d->dst));
	if (d->imm)
		e_mov_imm64(x, RCX, w ? i->imm : (uint32_t)i->imm);
	else
		e_ld(x, w, RCX, GPR(d->src));
	jit_alu_tail(x, d->op, d->sz, d->write, d->dst, dead);
}

/* The host flags again from the lazy state an inline ALU op of this
 * block left (op, sz known here), for a Jcc after other instructions. */
static void
jit_flags(struct jx *x, unsigned op, unsigned sz)
{
	bool w = sz == 8;

	if (jit_kind[op] == CC_LOGIC) {
		e_ld(x, true, RAX, OFF(cc_res));
		if (sz == 2)
			e1(x, 0x66);
		if (w)
			e1(x, 0x48);
		e1(x, sz == 1 ? 0x84 : 0x85);
		e1(x, 0xc0);		/* test al/eax/rax, itself */
		return;
	}
	e_ld(x, true, RAX, OFF(cc_a));
	/* add/cmp al/ax/eax/rax, [cc_b] */
	if (sz == 2)
		e1(x, 0x66);
	e_rm(x, w, (uint8_t)((op == 0 ? 0x03 : 0x3b) - (sz == 1)), RAX,
	    OFF(cc_b));
}

/* c->rip = cc ? r12 + target : r12 + next, from the host flags. */
static void
jit_cmov_rip(struct jx *x, unsigned cc, int64_t next, int64_t target)
{
	e_lea_rip(x, RAX, next);
	e_lea_rip(x, RCX, target);
	e1(x, 0x48); e1(x, 0x0f);
	e1(x, (uint8_t)(0x40 | cc));
	e1(x, 0xc1);	/* cmovcc rax, rcx */
	e_st(x, true, RAX, OFF(rip));
}

/* What the flags of this block are known to be at a point: FOP_NONE
 * (whatever the lazy state in memory says), an ALU op index 0..8 (the
 * lazy state an inline op of that kind left), or FOP_RES (a shift's:
 * ZF, SF and PF follow cc_res, the others need flags.c). */
enum { FOP_NONE = -1, FOP_RES = 16 };

/* mov rdi, rbx (c as the first argument) */
static void
e_arg_c(struct jx *x)
{
	e1(x, 0x48); e1(x, 0x89); e1(x, 0xdf);
}

/* Host CF = the guest's CF (for ADC/SBB), from the lazy state an inline
 * op of this block left, else from bt_cf. */
static void
jit_carry(struct jx *x, int fop, unsigned fsz)
{
	if (fop >= 0 && fop <= 8 && fop != 2 && fop != 3) {
		jit_flags(x, (unsigned)fop, fsz);
		return;
	}
	e_arg_c(x);
	e_call(x, (const void *)bt_cf);
	e1(x, 0x0f); e1(x, 0xba); e1(x, 0xe0); e1(x, 0);	/* bt eax, 0 */
}

/* Host flags such that host condition (the return value) is the guest's
 * condition cc: from the lazy state an inline op of this block left,
 * else from bt_cond (no RIP needed: it cannot fault). */
static unsigned
jit_cond(struct jx *x, unsigned cc, int fop, unsigned fsz)
{
	unsigned k = cc >> 1;

	if (fop >= 0 && fop <= 8) {
		jit_flags(x, (unsigned)fop, fsz);
		return cc;
	}
	if (fop == FOP_RES && (k == 2 || k == 4 || k == 5)) {
		jit_flags(x, 8, fsz);	/* test res, res */
		return cc;
	}
	e_arg_c(x);
	e1(x, 0xbe); e4(x, cc);			/* mov esi, cc */
	e_call(x, (const void *)bt_cond);
	e1(x, 0x84); e1(x, 0xc0);		/* test al, al */
	return 5;				/* nz */
}

/* The lazy flags into c->flags unless already eager (ROL/ROR keep all
 * but CF and OF). */
static void
jit_flags_eager(struct jx *x)
{
	uint8_t *skip;

	e1(x, 0x83);				/* cmp dword [cc_op], 0 */
	e_mem(x, 7, OFF(cc_op));
	e1(x, 0);
	e1(x, 0x74);				/* je skip */
	skip = x->p;
	e1(x, 0);
	e_arg_c(x);
	e_call(x, (const void *)bt_flags_get);
	*skip = (uint8_t)(x->p - (skip + 1));
}

/* SHL/SHR/SAR/ROL/ROR r, n as fx_shl64.. and fx_rol64.. do it; dead:
 * the flags are overwritten before anything reads them. */
static void
jit_shift(struct jx *x, const struct bt_fdesc *d, bool dead)
{
	bool w = d->sz == 8, rot = d->op < 2;
	unsigned bits = d->sz * 8u;

	if (rot && !dead)
		jit_flags_eager(x);
	e_ld(x, w, RAX, GPR(d->dst));
	if (!rot && !dead)
		e_st(x, true, RAX, OFF(cc_a));
	if (w)
		e1(x, 0x48);
	e1(x, 0xc1); e1(x, (uint8_t)(0xc0 | d->op << 3)); e1(x, d->n);
	e_st(x, true, RAX, GPR(d->dst));
	if (dead)
		return;
	if (!rot) {
		unsigned kind = d->op == 4 ? CC_SHL : d->op == 5 ? CC_SHR :
		    CC_SAR;

		e_st(x, true, RAX, OFF(cc_res));
		e_st_imm(x, true, OFF(cc_b), d->n);
		e_st_imm(x, false, OFF(cc_op), kind * 4 + jit_lg(d->sz));
		return;
	}
	/* ecx = the top bit of the result */
	e1(x, 0x48); e1(x, 0x89); e1(x, 0xc1);		/* mov rcx, rax */
	e1(x, 0x48); e1(x, 0xc1); e1(x, 0xe9); e1(x, (uint8_t)(bits - 1));
	if (d->op == 0) {	/* ROL: CF = bit 0, OF = top ^ CF */
		e1(x, 0x89); e1(x, 0xc2);		/* mov edx, eax */
		e1(x, 0x83); e1(x, 0xe2); e1(x, 1);	/* and edx, 1 */
		e1(x, 0x31); e1(x, 0xd1);		/* xor ecx, edx */
		/* now CF in edx, OF in ecx: swap into CF ecx, OF edx */
		e1(x, 0x87); e1(x, 0xd1);		/* xchg ecx, edx */
	} else {		/* ROR: CF = top, OF = top ^ next */
		e1(x, 0x48); e1(x, 0x89); e1(x, 0xc2);	/* mov rdx, rax */
		e1(x, 0x48); e1(x, 0xc1); e1(x, 0xea);	/* shr rdx, */
		e1(x, (uint8_t)(bits - 2));
		e1(x, 0x83); e1(x, 0xe2); e1(x, 1);	/* and edx, 1 */
		e1(x, 0x31); e1(x, 0xca);		/* xor edx, ecx */
	}
	e_ld(x, true, RSI, OFF(flags));
	e1(x, 0x48); e1(x, 0x81); e1(x, 0xe6);		/* and rsi, */
	e4(x, (uint32_t)~(RFLAGS_CF | RFLAGS_OF));
	e1(x, 0x48); e1(x, 0x83); e1(x, 0xce); e1(x, RFLAGS_FIXED);
	e1(x, 0x48); e1(x, 0x09); e1(x, 0xce);		/* or rsi, rcx */
	e1(x, 0x48); e1(x, 0xc1); e1(x, 0xe2); e1(x, 11);	/* shl rdx */
	e1(x, 0x48); e1(x, 0x09); e1(x, 0xd6);		/* or rsi, rdx */
	e_st(x, true, RSI, OFF(flags));
}

/* IMUL r, r (, imm) as fx_imul64/32: CF = OF = truncation, the other
 * flags as a logic op on the low half. */
static void
jit_imul(struct jx *x, const struct bt_insn *i, const struct bt_fdesc *d,
    bool dead)
{
	bool w = d->sz == 8;
	uint8_t *skip;

	e_ld(x, w, RAX, GPR(d->src));
	if (w)
		e1(x, 0x48);
	if (d->imm) {
		e1(x, 0x69); e1(x, 0xc0);	/* imul eax/rax, itself, imm32 */
		e4(x, (uint32_t)(int32_t)i->imm);
	} else {
		e1(x, 0x0f); e1(x, 0xaf);	/* imul eax/rax, [dst] */
		e_mem(x, RAX, GPR(d->dst));
	}
	e_st(x, true, RAX, GPR(d->dst));
	if (dead)
		return;
	e_st(x, true, RAX, OFF(cc_res));
	e_st_imm(x, true, OFF(cc_a), 0);
	e_st_imm(x, true, OFF(cc_b), 0);
	e_st_imm(x, false, OFF(cc_op), CC_LOGIC * 4 + jit_lg(d->sz));
	e1(x, 0x71);				/* jno skip */
	skip = x->p;
	e1(x, 0);
	e_arg_c(x);
	e_call(x, (const void *)bt_flags_get);
	e1(x, 0x81);				/* or dword [flags], CF|OF */
	e_mem(x, 1, OFF(flags));
	e4(x, RFLAGS_CF | RFLAGS_OF);
	*skip = (uint8_t)(x->p - (skip + 1));
}

/* NOT r (no flags) and NEG r (flags as SUB 0, r). */
static void
jit_unary(struct jx *x, const struct bt_fdesc *d, bool dead)
{
	bool w = d->sz == 8;

	if (d->op == 2) {
		e_ld(x, w, RAX, GPR(d->dst));
		if (w)
			e1(x, 0x48);
		e1(x, 0xf7); e1(x, 0xd0);		/* not eax/rax */
		e_st(x, true, RAX, GPR(d->dst));
		return;
	}
	e1(x, 0x31); e1(x, 0xc0);			/* xor eax, eax */
	e_ld(x, w, RCX, GPR(d->dst));
	jit_alu_tail(x, 5, d->sz, true, d->dst, dead);
}

/* SHL/SHR/SAR r, CL as bt_x_shift: a masked count of 0 changes no
 * flag (but a 32-bit register is still zero-extended). */
static void
jit_shift_cl(struct jx *x, const struct bt_fdesc *d, bool dead)
{
	bool w = d->sz == 8;
	unsigned kind = d->op == 4 ? CC_SHL : d->op == 5 ? CC_SHR : CC_SAR;
	uint8_t *skip;

	e_ld(x, w, RAX, GPR(d->dst));
	e1(x, 0x0f); e1(x, 0xb6);		/* movzx ecx, cl */
	e_mem(x, RCX, GPR(R_RCX));
	e1(x, 0x83); e1(x, 0xe1); e1(x, w ? 63 : 31);	/* and ecx, mask */
	e1(x, 0x48); e1(x, 0x89); e1(x, 0xc2);	/* mov rdx, rax */
	if (w)
		e1(x, 0x48);
	e1(x, 0xd3); e1(x, (uint8_t)(0xc0 | d->op << 3));	/* op eax, cl */
	e_st(x, true, RAX, GPR(d->dst));
	if (dead)
		return;
	e1(x, 0x85); e1(x, 0xc9);		/* test ecx, ecx */
	e1(x, 0x74);				/* jz skip */
	skip = x->p;
	e1(x, 0);
	e_st(x, true, RDX, OFF(cc_a));
	e_st(x, true, RAX, OFF(cc_res));
	e_st(x, true, RCX, OFF(cc_b));
	e_st_imm(x, false, OFF(cc_op), kind * 4 + jit_lg(d->sz));
	*skip = (uint8_t)(x->p - (skip + 1));
}

/* MOVZX/MOVSX r32/r64, r8/r16. */
static void
jit_movx(struct jx *x, const struct bt_fdesc *d)
{
	/* movzx/movsx eax (rax if sign-extending to 64), byte/word */
	if (d->op && d->sz == 8)
		e1(x, 0x48);
	e1(x, 0x0f);
	e1(x, (uint8_t)((d->op ? 0xbe : 0xb6) | (d->n == 2)));
	e_mem(x, RAX, GPR(d->src) + d->shi);
	e_st(x, true, RAX, GPR(d->dst));
}

/* CMOVcc r, r and SETcc r8. */
static void
jit_cmov_setcc(struct jx *x, const struct bt_fdesc *d, int fop,
    unsigned fsz)
{
	unsigned h = jit_cond(x, d->n, fop, fsz);
	bool w = d->sz == 8;

	if (d->kind == BT_FD_SETCC) {
		e1(x, 0x0f); e1(x, (uint8_t)(0x90 | h)); e1(x, 0xc0);
		e_rm(x, false, 0x88, RAX, GPR(d->dst) + d->hi);
		return;
	}
	e_ld(x, w, RAX, GPR(d->dst));	/* 32-bit: cleared upper half */
	if (w)
		e1(x, 0x48);
	e1(x, 0x0f); e1(x, (uint8_t)(0x40 | h));
	e_mem(x, RAX, GPR(d->src));
	e_st(x, true, RAX, GPR(d->dst));
}

/* How an instruction treats the arithmetic flags, for the dead-flag
 * pass: FL_READ also for anything that may leave the block before its
 * end (a fault or a handler's brk), where the flags must be exact. */
enum { FL_NONE, FL_WRITE, FL_READ, FL_KEEP };

static unsigned
jit_fclass(const struct bt_insn *i)
{
	struct bt_fdesc d;

	if ((i->fn == bt_x_mov_rimm && i->opc >= 0xb8) ||
	    (i->fn == bt_x_movsxd && i->mod == 3) || i->fn == bt_x_nop ||
	    (i->fn == bt_x_cbw && i->osz >= 4) ||
	    (i->fn == bt_x_bswap && i->osz >= 4))
		return FL_NONE;		/* inline or a handler that cannot
					 * fault */
	if (!bt_fast_desc(i, &d))
		return FL_READ;
	switch (d.kind) {
	case BT_FD_MOV: case BT_FD_LEA:
		return FL_NONE;
	case BT_FD_ALU:		/* ADC/SBB read CF */
		return d.branch || d.op == 2 || d.op == 3 ? FL_READ :
		    FL_WRITE;
	case BT_FD_SHIFT:	/* a rotate keeps all but CF and OF */
		return d.op < 2 ? FL_KEEP : FL_WRITE;
	case BT_FD_IMUL:
		return FL_WRITE;
	case BT_FD_UNARY:	/* NOT keeps the flags */
		return d.op == 2 ? FL_NONE : FL_WRITE;
	case BT_FD_MOVX:
		return FL_NONE;
	case BT_FD_SHIFTCL:	/* a count of 0 keeps them all */
		return FL_KEEP;
	}
	return FL_READ;
}

/* LEA r64/r32, [base + index * scale + disp] (64-bit addressing). */
static void
jit_lea(struct jx *x, const struct bt_insn *i, int64_t next, unsigned sz)
{
	if (i->base == BT_RIPREL)
		e_lea_rip(x, RAX, next + i->disp);
	else if (i->base < 16) {
		e_ld(x, true, RAX, GPR(i->base));
		if (i->disp != 0) {	/* add rax, simm32 */
			e1(x, 0x48); e1(x, 0x05);
			e4(x, (uint32_t)(int32_t)i->disp);
		}
	} else {
		e_mov_imm64(x, RAX, (uint64_t)i->disp);
	}
	if (i->index < 16) {
		e_ld(x, true, RCX, GPR(i->index));
		/* lea rax, [rax + rcx * scale] */
		e1(x, 0x48); e1(x, 0x8d); e1(x, 0x04);
		e1(x, (uint8_t)(i->scale << 6 | RCX << 3 | RAX));
	}
	if (sz == 4) {
		e1(x, 0x89); e1(x, 0xc0);		/* mov eax, eax */
	}
	e_st(x, true, RAX, GPR(i->reg));
}


/* A memory access's slow path, emitted after the block's end. */
struct jstub {
	uint8_t *from[2];	/* rel32 fields of the jumps to it */
	uint8_t *back;		/* where the fast path resumes */
	uint8_t *back2;		/* PUSH: after its RSP update */
	const struct bt_insn *i;
	struct bt_fdesc d;
	int64_t off, next;
	uint16_t k;		/* instruction index in the block */
	bool store, last;
	bool dead;		/* LALU, RMW: its flags are never read */
	bool rmw;		/* the slow path is the handler itself */
};

_Static_assert(sizeof(struct bt_tlb) == 64 && BT_TLB_SIZE * 64 <= 1u << 31,
    "jit_tlb scales by 64 in 32 bits");

/* rax = linear address of i's memory operand (64-bit mode: no limits,
 * bases only for FS and GS). */
static void
jit_ea(struct jx *x, const struct bt_insn *i, int64_t next)
{
	if (i->base == BT_RIPREL)
		e_lea_rip(x, RAX, next + i->disp);
	else if (i->base < 16) {
		e_ld(x, true, RAX, GPR(i->base));
		if (i->disp != 0) {	/* add rax, simm32 */
			e1(x, 0x48); e1(x, 0x05);
			e4(x, (uint32_t)(int32_t)i->disp);
		}
	} else {
		e_mov_imm64(x, RAX, (uint64_t)i->disp);
	}
	if (i->index < 16) {
		e_ld(x, true, RCX, GPR(i->index));
		e1(x, 0x48); e1(x, 0x8d); e1(x, 0x04);	/* lea rax, [rax+rcx*s] */
		e1(x, (uint8_t)(i->scale << 6 | RCX << 3 | RAX));
	}
	if (i->asz == 4) {
		e1(x, 0x89); e1(x, 0xc0);		/* mov eax, eax */
	}
	if (i->seg == SEG_FS || i->seg == SEG_GS)	/* add rax, base */
		e_rm(x, true, 0x03, RAX, OFF(segbase) + 8 * i->seg);
}

/* With the linear address in rax: the soft TLB probe for a tag (tag_r
 * or tag_w) and sz bytes within the page; rax = host address after it,
 * st->from = the jumps to the slow path. */
static void
jit_tlb(struct jx *x, int32_t tag, unsigned sz, struct jstub *st)
{
	e_ld(x, true, RDX, OFF(tlbc));
	e1(x, 0x48); e1(x, 0x89); e1(x, 0xc1);	/* mov rcx, rax */
	/* ((rax >> 12) & (BT_TLB_SIZE - 1)) * 64 */
	e1(x, 0x48); e1(x, 0xc1); e1(x, 0xe9); e1(x, 6);	/* shr rcx,6 */
	e1(x, 0x81); e1(x, 0xe1); e4(x, (BT_TLB_SIZE - 1) << 6); /* and ecx */
	e1(x, 0x48); e1(x, 0x01); e1(x, 0xca);	/* add rdx, rcx */
	/* The page of the last byte against the tag of the first byte's
	 * entry: an access crossing into the next page finds that page's
	 * tag only in the next entry, so it never matches here. */
	e1(x, 0x48); e1(x, 0x8d); e1(x, 0x48);	/* lea rcx, [rax+sz-1] */
	e1(x, (uint8_t)(sz - 1));
	e1(x, 0x48); e1(x, 0x81); e1(x, 0xe1); e4(x, 0xfffff000u);
	e1(x, 0x48); e1(x, 0x3b); e1(x, 0x4a); e1(x, (uint8_t)tag);
	st->from[0] = e_jmp(x, 5, NULL);	/* jne slow */
	st->from[1] = NULL;
	e1(x, 0x48); e1(x, 0x03); e1(x, 0x42);	/* add rax, [rdx+addend] */
	e1(x, (uint8_t)offsetof(struct bt_tlb, addend));
}

/* rcx = the value a store writes. */
static void
jit_store_value(struct jx *x, const struct jstub *st)
{
	const struct bt_fdesc *d = &st->d;

	if (d->kind == BT_FD_PUSH)
		e_ld(x, true, RCX, GPR(d->src));
	else if (d->kind == BT_FD_CALL)
		e_lea_rip(x, RCX, st->next);
	else if (d->imm)
		e_mov_imm64(x, RCX, d->sz == 8 ? st->i->imm :
		    d->sz == 4 ? (uint32_t)st->i->imm : (uint8_t)st->i->imm);
	else if (d->sz == 1) {
		e1(x, 0x0f); e1(x, 0xb6);	/* movzx ecx, byte */
		e_mem(x, RCX, GPR(d->src) + d->hi);
	} else
		e_ld(x, d->sz == 8, RCX, GPR(d->src));
}

/* The host load or store of sz bytes at [rax] (value in/out: rax for
 * loads, rcx for stores). */
static void
jit_host_access(struct jx *x, bool store, unsigned sz)
{
	static const uint8_t ld[4][3] = { { 0x0f, 0xb6, 0x00 },
	    { 0x0f, 0xb7, 0x00 }, { 0x8b, 0x00, 0 }, { 0x48, 0x8b, 0x00 } };
	static const uint8_t st[4][3] = { { 0x88, 0x08, 0 },
	    { 0x66, 0x89, 0x08 }, { 0x89, 0x08, 0 }, { 0x48, 0x89, 0x08 } };
	unsigned k = sz == 1 ? 0 : sz == 2 ? 1 : sz == 4 ? 2 : 3;
	const uint8_t *b = store ? st[k] : ld[k];
	unsigned n = (store ? (k == 0 || k == 2) : k == 2) ? 2 : 3;

	for (unsigned m = 0; m < n; m++)
		e1(x, b[m]);
}

/* A load, store, PUSH, POP, CALL or RET with the TLB hit inline.
 * Returns true when it set c->rip (CALL, RET). */
static bool
jit_mem(struct jx *x, struct jstub *st)
{
	const struct bt_fdesc *d = &st->d;
	const struct bt_insn *i = st->i;
	bool stack = d->kind >= BT_FD_PUSH && d->kind <= BT_FD_RET;

	st->store = d->kind == BT_FD_STORE || d->kind == BT_FD_PUSH ||
	    d->kind == BT_FD_CALL;
	if (!stack)
		jit_ea(x, i, st->next);
	else {
		e_ld(x, true, RAX, GPR(R_RSP));
		if (st->store) {
			e1(x, 0x48); e1(x, 0x83); e1(x, 0xe8); e1(x, 8);
		}
	}
	jit_tlb(x, st->store ? (int32_t)offsetof(struct bt_tlb, tag_w) :
	    (int32_t)offsetof(struct bt_tlb, tag_r), d->sz, st);
	if (st->store)
		jit_store_value(x, st);
	jit_host_access(x, st->store, d->sz);
	st->back = x->p;
	switch (d->kind) {
	case BT_FD_LALU:
		if (!d->amem) {
			e1(x, 0x48); e1(x, 0x89); e1(x, 0xc1);	/* mov rcx, rax */
			e_ld(x, d->sz == 8, RAX, GPR(d->dst));
		} else if (d->imm) {
			e_mov_imm64(x, RCX, d->sz == 8 ? i->imm : d->sz == 4 ?
			    (uint32_t)i->imm : d->sz == 2 ?
			    (uint16_t)i->imm : (uint8_t)i->imm);
		} else {
			e_ld(x, d->sz == 8, RCX, GPR(d->src));
		}
		jit_alu_tail(x, d->op, d->sz, d->write, d->dst, st->dead);
		return false;
	case BT_FD_LOAD:
		if (d->n) {	/* movsxd rax, eax */
			e1(x, 0x48); e1(x, 0x63); e1(x, 0xc0);
		}
		if (d->op)	/* mov [gpr + hi], al */
			e_rm(x, false, 0x88, RAX, GPR(d->dst) + d->hi);
		else
			e_st(x, true, RAX, GPR(d->dst));
		return false;
	case BT_FD_STORE:
		return false;
	case BT_FD_PUSH:
	case BT_FD_CALL:	/* sub qword [rbx + rsp], 8 */
		e1(x, 0x48); e1(x, 0x83);
		e_mem(x, 5, GPR(R_RSP));
		e1(x, 8);
		st->back2 = x->p;
		if (d->kind == BT_FD_PUSH)
			return false;
		e_lea_rip(x, RAX, st->next + (int64_t)i->imm);
		e_st(x, true, RAX, OFF(rip));
		return true;
	default:		/* POP, RET: add qword [rbx + rsp], 8 */
		e1(x, 0x48); e1(x, 0x83);
		e_mem(x, 0, GPR(R_RSP));
		e1(x, 8);
		e_st(x, true, RAX, d->kind == BT_FD_POP ? GPR(d->dst) :
		    OFF(rip));
		return d->kind == BT_FD_RET;
	}
}

/*
 * ADD/OR/AND/SUB/XOR [mem], r / imm and INC/DEC [mem] with the write
 * tag's hit inline, flags recorded as the handlers record them (INC/DEC
 * first put the current CF in c->flags, as alu_inc does); a miss runs
 * the whole instruction through its handler (jit_stub).
 */
static void
jit_rmw(struct jx *x, struct jstub *st, int fop, unsigned fsz)
{
	const struct bt_fdesc *d = &st->d;
	const struct bt_insn *i = st->i;
	bool w = d->sz == 8;

	st->store = st->rmw = true;
	if (d->n && !st->dead) {
		jit_carry(x, fop, fsz);			/* host CF = CF */
		e1(x, 0x0f); e1(x, 0x92); e1(x, 0xc0);	/* setc al */
		e1(x, 0x0f); e1(x, 0xb6); e1(x, 0xc0);	/* movzx eax, al */
		e1(x, 0x48); e1(x, 0x83);		/* and qword [flags], */
		e_mem(x, 4, OFF(flags));
		e1(x, 0xfe);				/* ~CF */
		e_rm(x, true, 0x09, RAX, OFF(flags));	/* or [flags], rax */
	}
	jit_ea(x, i, st->next);
	jit_tlb(x, (int32_t)offsetof(struct bt_tlb, tag_w), d->sz, st);
	e1(x, 0x48); e1(x, 0x89); e1(x, 0xc6);	/* mov rsi, rax */
	if (w)
		e1(x, 0x48);
	e1(x, 0x8b); e1(x, 0x06);		/* mov eax/rax, [rsi] */
	if (d->n) {
		if (!st->dead)
			e_st(x, true, RAX, OFF(cc_a));
		if (w)
			e1(x, 0x48);
		e1(x, 0xff); e1(x, (uint8_t)(0xc0 | d->op << 3));
		if (!st->dead) {
			e_st(x, true, RAX, OFF(cc_res));
			e_st_imm(x, true, OFF(cc_b), 1);
			e_st_imm(x, false, OFF(cc_op),
			    (d->op ? CC_DEC : CC_INC) * 4 + jit_lg(d->sz));
		}
	} else {
		if (d->imm)
			e_mov_imm64(x, RCX, w ? i->imm : (uint32_t)i->imm);
		else
			e_ld(x, w, RCX, GPR(d->src));
		if (st->dead) {		/* op eax/rax, ecx/rcx */
			static const uint8_t opc[7] = { 0x01, 0x09, 0, 0,
			    0x21, 0x29, 0x31 };

			if (w)
				e1(x, 0x48);
			e1(x, opc[d->op]); e1(x, 0xc8);
		} else {
			jit_alu_tail(x, d->op, d->sz, false, 0, false);
		}
	}
	if (w)
		e1(x, 0x48);
	e1(x, 0x89); e1(x, 0x06);		/* mov [rsi], eax/rax */
	st->back = x->p;
}

/* The slow path: the access through bt_read_slow/bt_write_slow with RIP
 * set (they may fault, or reach MMIO), or for RMW the handler; a store
 * into code may ask to leave the block (brk), which *brk_at gets to
 * patch. */
static void
jit_stub(struct jx *x, const struct jstub *st, uint8_t **brk_at)
{
	for (int k = 0; k < 2; k++)
		if (st->from[k] != NULL)
			jit_patch(st->from[k], x->p);
	e_lea_rip(x, RSI, st->off);
	e_st(x, true, RSI, OFF(rip));
	e_lea_rip(x, RSI, st->next);
	e_st(x, true, RSI, OFF(npc));
	if (st->rmw) {
		e1(x, 0x48); e1(x, 0x89); e1(x, 0xdf);	/* mov rdi, rbx */
		e_mov_imm64(x, RSI, (uint64_t)(uintptr_t)st->i);
		e_call(x, (const void *)st->i->fn);
		*brk_at = NULL;
		if (!st->last) {
			e1(x, 0x80);		/* cmp byte [rbx+brk], 0 */
			e_mem(x, 7, OFF(brk));
			e1(x, 0);
			*brk_at = e_jmp(x, 5, NULL);
		}
		e_jmp(x, -1, st->back);
		return;
	}
	e1(x, 0x48); e1(x, 0x89); e1(x, 0xc6);	/* mov rsi, rax */
	e1(x, 0x48); e1(x, 0x89); e1(x, 0xdf);	/* mov rdi, rbx */
	e1(x, 0xba); e4(x, st->d.sz);		/* mov edx, sz */
	if (st->store) {
		jit_store_value(x, st);
		e_call(x, (const void *)bt_write_slow);
	} else {
		e_call(x, (const void *)bt_read_slow);
	}
	*brk_at = NULL;
	if (st->d.kind == BT_FD_PUSH && !st->last) {
		/* The interpreter leaves after the whole PUSH. */
		e1(x, 0x48); e1(x, 0x83);	/* sub qword [rbx+rsp], 8 */
		e_mem(x, 5, GPR(R_RSP));
		e1(x, 8);
		e1(x, 0x80);			/* cmp byte [rbx+brk], 0 */
		e_mem(x, 7, OFF(brk));
		e1(x, 0);
		*brk_at = e_jmp(x, 5, NULL);
		e_jmp(x, -1, st->back2);
		return;
	}
	if (st->store && !st->last) {
		e1(x, 0x80);			/* cmp byte [rbx+brk], 0 */
		e_mem(x, 7, OFF(brk));
		e1(x, 0);
		*brk_at = e_jmp(x, 5, NULL);
	}
	e_jmp(x, -1, st->back);
}

/* Can disp fit the rel32 forms used for RIPs in this block? */
static bool
jit_fits(int64_t v)
{
	return v >= INT32_MIN && v <= INT32_MAX;
}

/* JMP rel, MOV r32/r64, imm, MOVSXD r64, r32, CWDE/CDQE, BSWAP and the
 * fences: emitted inline if i is one of them (true; *rip_done when it
 * set c->rip). */
static bool
jit_simple(struct jx *x, const struct bt_insn *i, int64_t next, bool last,
    bool *rip_done)
{
	unsigned r = (i->opc & 7) | ((i->rex & 1) << 3);

	if (i->fn == bt_x_nop)
		return true;
	if (i->fn == bt_x_jmp && i->osz == 8 && last &&
	    jit_fits(next + (int64_t)i->imm)) {
		e_lea_rip(x, RAX, next + (int64_t)i->imm);
		e_st(x, true, RAX, OFF(rip));
		*rip_done = true;
		return true;
	}
	if (i->fn == bt_x_mov_rimm && i->opc >= 0xb8 &&
	    (i->osz == 8 || i->osz == 4)) {
		e_mov_imm64(x, RAX, i->osz == 8 ? i->imm : (uint32_t)i->imm);
		e_st(x, true, RAX, GPR(r));
		return true;
	}
	if (i->fn == bt_x_grp15 && i->mod == 3 && (i->reg & 7) >= 5 &&
	    !i->rep) {
		e1(x, 0x0f); e1(x, 0xae); e1(x, 0xf0);	/* mfence, as it */
		return true;
	}
	if (i->fn == bt_x_cbw && (i->osz == 8 || i->osz == 4)) {
		if (i->osz == 8)	/* movsxd rax, dword [rax] (CDQE) */
			e_rm(x, true, 0x63, RAX, GPR(R_RAX));
		else {			/* movsx eax, word [rax] (CWDE) */
			e1(x, 0x0f); e1(x, 0xbf);
			e_mem(x, RAX, GPR(R_RAX));
		}
		e_st(x, true, RAX, GPR(R_RAX));
		return true;
	}
	if (i->fn == bt_x_bswap && (i->osz == 8 || i->osz == 4)) {
		e_ld(x, i->osz == 8, RAX, GPR(r));
		if (i->osz == 8)
			e1(x, 0x48);
		e1(x, 0x0f); e1(x, 0xc8);		/* bswap eax/rax */
		e_st(x, true, RAX, GPR(r));
		return true;
	}
	if (i->fn == bt_x_movsxd && i->mod == 3 &&
	    (i->osz == 8 || i->osz == 4)) {
		if (i->osz == 8)	/* movsxd rax, dword [gpr] */
			e_rm(x, true, 0x63, RAX, GPR(i->rm));
		else
			e_ld(x, false, RAX, GPR(i->rm));
		e_st(x, true, RAX, GPR(i->reg));
		return true;
	}
	return false;
}


void
bt_jit_compile(struct bt_cpu *c, struct bt_block *b)
{
	struct bt_jit *j = c->jit;
	struct jx x;
	uint8_t *start, *brk_at[128];
	int64_t off = 0;
	bool last_call = false, rip_done = false, ret = false;
	unsigned n = b->ninsn, nbrk = 0;
	uint16_t brk_k[128];
	uint8_t *ex_at[32], *nolink_at = NULL;
	unsigned nex = 0, nstub = 0, fsz = 0;
	struct jstub stubs[64];
	int fop = FOP_NONE;	/* inline op whose flags are current */
	bool dead[64], live = true;

	b->jit = NULL;
	if (j == NULL || b->mode != BT_M64 || n == 0 || n > 64 ||
	    j->used + JIT_BLOCK_MAX > j->size)
		return;
	/* Dead flags: an op whose flags a later one overwrites before
	 * anything reads them (or the block may be left) records none. */
	for (unsigned k = n; k-- > 0;) {
		unsigned fc = jit_fclass(&b->insn[k]);

		dead[k] = !live;
		if (fc == FL_WRITE)
			live = false;
		else if (fc == FL_READ)
			live = true;
	}
	start = x.p = j->rw + j->used;
	x.j = j;
	/* mov r12, [rbx + rip]; c->cur = b */
	e_ld(&x, true, R12, OFF(rip));
	e_mov_imm64(&x, RAX, (uint64_t)(uintptr_t)b);
	e_st(&x, true, RAX, OFF(cur));
	for (unsigned k = 0; k < n; k++) {
		const struct bt_insn *i = &b->insn[k];
		int64_t next = off + i->len;
		struct bt_fdesc d;
		bool last = k + 1 == n, fast;

		if (!jit_fits(off + i->len + (int64_t)i->disp) ||
		    !jit_fits(next))
			return;		/* absurd displacement: interpret */
		if (jit_simple(&x, i, next, last, &rip_done)) {
			last_call = false;
			off = next;
			continue;
		}
		fast = bt_fast_desc(i, &d);
		if (fast && d.kind == BT_FD_RMW && nstub < 64) {
			struct jstub *st = &stubs[nstub++];

			*st = (struct jstub){ .i = i, .d = d, .off = off,
			    .next = next, .k = (uint16_t)k, .last = last,
			    .dead = dead[k] };
			jit_rmw(&x, st, fop, fsz);
			fop = dead[k] || d.n ? FOP_NONE : d.op;
			fsz = d.sz;
			last_call = false;
			off = next;
			continue;
		}
		if (fast && d.kind == BT_FD_SHIFTCL) {
			jit_shift_cl(&x, &d, dead[k]);
			fop = FOP_NONE;
			last_call = false;
			off = next;
			continue;
		}
		if (fast && d.kind == BT_FD_MOVX) {
			jit_movx(&x, &d);
			last_call = false;
			off = next;
			continue;
		}
		if (fast && d.kind == BT_FD_JCC) {
			/* The host flags again (from an inline op of this
			 * block, else bt_cond), then as a fused branch. */
			if (last && jit_fits(next + (int64_t)i->imm)) {
				jit_cmov_rip(&x, jit_cond(&x, i->opc & 15,
				    fop, fsz), next, next + (int64_t)i->imm);
				rip_done = true;
				last_call = false;
				off = next;
				continue;
			}
			fast = false;
		}
		if (fast && d.kind >= BT_FD_SHIFT) {
			if (d.kind == BT_FD_SHIFT) {
				jit_shift(&x, &d, dead[k]);
				/* a rotate leaves the flags eager */
				fop = d.op >= 4 && !dead[k] ? FOP_RES :
				    FOP_NONE;
				fsz = d.sz;
			} else if (d.kind == BT_FD_IMUL) {
				jit_imul(&x, i, &d, dead[k]);
				fop = FOP_NONE;
			} else if (d.kind == BT_FD_UNARY) {
				jit_unary(&x, &d, dead[k]);
				if (d.op == 3) {	/* NEG: as SUB 0, r */
					fop = dead[k] ? FOP_NONE : 5;
					fsz = d.sz;
				}
			} else {
				jit_cmov_setcc(&x, &d, fop, fsz);
			}
			last_call = false;
			off = next;
			continue;
		}
		if (fast && d.kind >= BT_FD_LOAD && d.kind <= BT_FD_LALU &&
		    nstub < 64 &&
		    (d.kind != BT_FD_CALL ||
		    jit_fits(next + (int64_t)i->imm))) {
			struct jstub *st = &stubs[nstub++];

			*st = (struct jstub){ .i = i, .d = d, .off = off,
			    .next = next, .k = (uint16_t)k, .last = last,
			    .dead = dead[k] };
			rip_done = jit_mem(&x, st);
			ret = d.kind == BT_FD_RET;
			if (d.kind == BT_FD_LALU) {
				fop = dead[k] ? FOP_NONE : d.op;
				fsz = d.sz;
			}
			last_call = false;
			off = next;
			continue;
		}
		if (fast && d.kind <= BT_FD_LEA && (!d.branch ||
		    (last && jit_fits(next + d.rel)))) {
			if (d.kind == BT_FD_MOV) {
				if (d.imm)
					e_mov_imm64(&x, RAX, d.sz == 8 ?
					    i->imm : (uint32_t)i->imm);
				else
					e_ld(&x, d.sz == 8, RAX, GPR(d.src));
				e_st(&x, true, RAX, GPR(d.dst));
			} else if (d.kind == BT_FD_LEA) {
				jit_lea(&x, i, next, d.sz);
			} else if (d.op == 2 || d.op == 3) {	/* ADC/SBB */
				jit_carry(&x, fop, fsz);
				jit_alu(&x, i, &d, dead[k]);
				fop = dead[k] ? FOP_NONE : FOP_RES;
				fsz = d.sz;
			} else {
				jit_alu(&x, i, &d, dead[k] && !d.branch);
				fop = dead[k] ? FOP_NONE : d.op;
				fsz = d.sz;
			}
			if (d.branch) {
				jit_cmov_rip(&x, d.n, next, next + d.rel);
				rip_done = true;
			}
			last_call = false;
			off = next;
			continue;
		}
		fop = FOP_NONE;	/* a handler may change the flags */
		e_lea_rip(&x, RAX, off);
		e_st(&x, true, RAX, OFF(rip));
		e_lea_rip(&x, RAX, next);
		e_st(&x, true, RAX, OFF(npc));
		e1(&x, 0x48); e1(&x, 0x89); e1(&x, 0xdf);	/* mov rdi, rbx */
		e_mov_imm64(&x, RSI, (uint64_t)(uintptr_t)i);
		e_call(&x, (const void *)i->fn);
		if (!last) {
			/* cmp byte [rbx + brk], 0; jne brk exit k */
			e1(&x, 0x80);
			e_mem(&x, 7, OFF(brk));
			e1(&x, 0);
			brk_at[nbrk] = e_jmp(&x, 5, NULL);
			brk_k[nbrk++] = (uint16_t)(k + 1);
		}
		last_call = true;
		off = next;
	}
	/* Normal end: RIP = the last handler's next RIP, or the end. */
	if (!rip_done) {
		if (last_call)
			e_ld(&x, true, RAX, OFF(npc));
		else
			e_lea_rip(&x, RAX, off);
		e_st(&x, true, RAX, OFF(rip));
	}
	e1(&x, 0x48); e1(&x, 0x81);	/* add qword [rbx + ninsns], n */
	e_mem(&x, 0, OFF(ninsns));
	e4(&x, n);
	/* A brk from the last instruction (or a slow path) ends the block
	 * anyway, but it also says the TLB epoch may have moved since the
	 * block was entered (bt_tlb_epoch_bump): no chaining then, as
	 * local slots do not compare the epoch (bt_jit_link). */
	if (last_call || nstub > 0) {
		e1(&x, 0x80);			/* cmp byte [rbx+brk], 0 */
		e_mem(&x, 7, OFF(brk));
		e1(&x, 0);
		nolink_at = e_jmp(&x, 5, NULL);
	}
	/* Only a RET or a handler's RIP can be anything: after any other
	 * last instruction the block goes on at one of two RIPs, which
	 * its chain slots hold once the run loop has linked them. */
	jit_link_chain(&x, b, last_call || (rip_done && ret), ex_at, &nex);
	for (unsigned k = 0; k < nstub; k++) {
		uint8_t *at;

		jit_stub(&x, &stubs[k], &at);
		if (at != NULL) {
			brk_at[nbrk] = at;
			brk_k[nbrk++] = (uint16_t)(stubs[k].k + 1);
		}
	}
	/* A handler asked to leave after it (brk): RIP = its next RIP. */
	if (nbrk > 0) {
		uint8_t *common;
		uint8_t *to_common[64];

		for (unsigned k = 0; k < nbrk; k++) {
			jit_patch(brk_at[k], x.p);
			e1(&x, 0x48); e1(&x, 0x81);
			e_mem(&x, 0, OFF(ninsns));
			e4(&x, brk_k[k]);
			to_common[k] = e_jmp(&x, -1, NULL);
		}
		common = x.p;
		for (unsigned k = 0; k < nbrk; k++)
			jit_patch(to_common[k], common);
		/* mov byte [rbx + brk], 0 */
		e1(&x, 0xc6);
		e_mem(&x, 0, OFF(brk));
		e1(&x, 0);
		e_ld(&x, true, RAX, OFF(npc));
		e_st(&x, true, RAX, OFF(rip));
		e_st_imm(&x, true, OFF(cur), 0);
		e_jmp(&x, -1, j->rw + j->exit);
	}
	/* The last instruction asked to leave (RIP is set): no link. */
	if (nolink_at != NULL) {
		jit_patch(nolink_at, x.p);
		e1(&x, 0xc6);			/* mov byte [rbx+brk], 0 */
		e_mem(&x, 0, OFF(brk));
		e1(&x, 0);
		e_st_imm(&x, true, OFF(cur), 0);
		e_jmp(&x, -1, j->rw + j->exit);
	}
	/* Leaving to the run loop: it may link this block to the next. */
	for (unsigned k = 0; k < nex; k++)
		jit_patch(ex_at[k], x.p);
	e_mov_imm64(&x, RAX, (uint64_t)(uintptr_t)b);
	e_st(&x, true, RAX, OFF(jit_last));
	e_st_imm(&x, true, OFF(cur), 0);
	e_jmp(&x, -1, j->rw + j->exit);
	if ((size_t)(x.p - start) > JIT_BLOCK_MAX)
		abort();	/* our own bug: the bound above is wrong */
	b->jit = (void *)jit_rx(j, start);
	if (j->perfmap != NULL)	/* c->rip is the block's first RIP */
		fprintf(j->perfmap, "%lx %lx bt_%llx\n",
		    (unsigned long)(uintptr_t)b->jit,
		    (unsigned long)(x.p - start), (unsigned long long)
		    ((c->segbase[SEG_CS] + c->rip) & c->linmask));
	j->used = ((size_t)(x.p - j->rw) + 15) & ~(size_t)15;
}

void
bt_jit_run(struct bt_cpu *c, struct bt_block *b)
{
	void (*entry)(struct bt_cpu *, void *) =
	    (void (*)(struct bt_cpu *, void *))(c->jit->rx + c->jit->entry);

	entry(c, b->jit);
}
