/*
 * What the pieces of the JIT share (jit.c: buffer and instruction
 * forms, jit_link.c: block ends, chain slots and the jump-cache probe):
 * the code buffer, the emission cursor and the x86-64 encoders.  The
 * encoders are static inline so each piece keeps them private and the
 * compiler inlines them as it did when they were one file.
 */
#ifndef TV_BT_JIT_EMIT_H
#define TV_BT_JIT_EMIT_H

#include "hv/bt/bt_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define JIT_SIZE (64ull << 20)
/* Worst case for one instruction and one block's fixed parts. */
#define JIT_INSN_MAX 256
#define JIT_BLOCK_MAX (48 * (JIT_INSN_MAX + 16) + 512)

struct bt_jit {
	uint8_t *rw, *rx;	/* the same pages, two views */
	size_t used, size;
	int fd;
	size_t entry, exit;	/* trampoline offsets */
	FILE *perfmap;		/* TV_BT_PERFMAP: perf's JIT symbol map */
};

/* The code being emitted. */
struct jx {
	struct bt_jit *j;
	uint8_t *p;		/* write position (rw view) */
};

enum { RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6,
       RDI = 7, R12 = 12 };

#define OFF(f) ((int32_t)offsetof(struct bt_cpu, f))
#define GPR(r) (OFF(gpr) + 8 * (int32_t)(r))

static inline void
e1(struct jx *x, uint8_t b)
{
	*x->p++ = b;
}

static inline void
e4(struct jx *x, uint32_t v)
{
	memcpy(x->p, &v, 4);
	x->p += 4;
}

static inline void
e8(struct jx *x, uint64_t v)
{
	memcpy(x->p, &v, 8);
	x->p += 8;
}

/* Executable address of the rw position p. */
static inline uintptr_t
jit_rx(struct bt_jit *j, const uint8_t *p)
{
	return (uintptr_t)(j->rx + (p - j->rw));
}

/* ModRM (+disp) for [rbx + disp] with reg in the reg field. */
static inline void
e_mem(struct jx *x, unsigned reg, int32_t disp)
{
	if (disp >= -128 && disp < 128) {
		e1(x, (uint8_t)(0x40 | (reg & 7) << 3 | RBX));
		e1(x, (uint8_t)disp);
	} else {
		e1(x, (uint8_t)(0x80 | (reg & 7) << 3 | RBX));
		e4(x, (uint32_t)disp);
	}
}

/* op reg, [rbx + disp] / op [rbx + disp], reg: w = 64-bit. */
static inline void
e_rm(struct jx *x, bool w, uint8_t opc, unsigned reg, int32_t disp)
{
	if (w || reg >= 8)
		e1(x, (uint8_t)(0x40 | (w ? 8 : 0) | (reg >= 8 ? 4 : 0)));
	e1(x, opc);
	e_mem(x, reg, disp);
}

static inline void
e_ld(struct jx *x, bool w, unsigned reg, int32_t disp)
{
	e_rm(x, w, 0x8b, reg, disp);
}

static inline void
e_st(struct jx *x, bool w, unsigned reg, int32_t disp)
{
	e_rm(x, w, 0x89, reg, disp);
}

/* mov dword/qword [rbx + disp], simm32 */
static inline void
e_st_imm(struct jx *x, bool w, int32_t disp, uint32_t imm)
{
	if (w)
		e1(x, 0x48);
	e1(x, 0xc7);
	e_mem(x, 0, disp);
	e4(x, imm);
}

/* lea reg, [r12 + disp] (a RIP of this block) */
static inline void
e_lea_rip(struct jx *x, unsigned reg, int64_t disp)
{
	e1(x, (uint8_t)(0x49 | (reg >= 8 ? 4 : 0)));
	e1(x, 0x8d);
	e1(x, (uint8_t)(0x84 | (reg & 7) << 3));
	e1(x, 0x24);
	e4(x, (uint32_t)(int32_t)disp);
}

static inline void
e_mov_imm64(struct jx *x, unsigned reg, uint64_t v)
{
	if (v <= 0xffffffffull) {	/* mov r32, imm32 zero-extends */
		if (reg >= 8)
			e1(x, 0x41);
		e1(x, (uint8_t)(0xb8 | (reg & 7)));
		e4(x, (uint32_t)v);
		return;
	}
	e1(x, (uint8_t)(0x48 | (reg >= 8 ? 1 : 0)));
	e1(x, (uint8_t)(0xb8 | (reg & 7)));
	e8(x, v);
}

/* mov rax, fn; call rax (one target per site: always predicted) */
static inline void
e_call(struct jx *x, const void *fn)
{
	e_mov_imm64(x, RAX, (uint64_t)(uintptr_t)fn);
	e1(x, 0xff);
	e1(x, 0xd0);
}

/* jmp rel32 / jcc rel32 to the rw position `to` (may be patched later:
 * returns where the rel32 sits). */
static inline uint8_t *
e_jmp(struct jx *x, int cc, const uint8_t *to)
{
	uint8_t *at;

	if (cc < 0) {
		e1(x, 0xe9);
	} else {
		e1(x, 0x0f);
		e1(x, (uint8_t)(0x80 | cc));
	}
	at = x->p;
	e4(x, to != NULL ? (uint32_t)(int32_t)(to - (at + 4)) : 0);
	return at;
}

static inline void
jit_patch(uint8_t *at, const uint8_t *to)
{
	int32_t rel = (int32_t)(to - (at + 4));

	memcpy(at, &rel, 4);
}

/* Offsets inside a chain slot (see jit_link_chain; the tests read the
 * RIP a slot is linked for at SLOT_RIP). */
enum { SLOT_RIP = 2, SLOT_TLB = 25, SLOT_INVAL = 44, SLOT_CPL = 60,
       SLOT_JMP = 68 };

/* Emit b's normal block end (jit_link.c), with the jump-cache probe
 * after the chain slots if probe; each jump to the common exit is
 * recorded in ex_at[(*nex)++] for the caller to patch. */
void jit_link_chain(struct jx *x, struct bt_block *b, bool probe,
    uint8_t **ex_at, unsigned *nex);

#endif
