/*
 * x87, MMX, SSE, SSE2 and SSE3 execution for the software CPU, apart from
 * its decoder.  The decoder (bt core) parses prefixes, ModRM/SIB and the
 * immediate, computes the effective address and does the memory access;
 * this library decides what an instruction means and executes it on the
 * vCPU's FXSAVE image, so FXSAVE/FXRSTOR and snapshots need no
 * conversion.  The host CPU is its test oracle (tests/unit/test_bt_simd.c).
 *
 * Flow for one instruction:
 *   struct simd_op op = { ...from the decoder... };
 *   struct simd_mem m;
 *   if (simd_decode(&op, &m) != 0)      -> raise #UD
 *   if (op.mod != 3 && m.size) {
 *       if (m.align && (ea % m.align))  -> raise #GP(0)
 *       if (m.read)  load m.size bytes at ea into buf (may fault: #PF)
 *   }
 *   vec = simd_exec(&ctx, &op, buf);    -> 0, or a vector to raise
 *   if (vec == 0 && m.write)            store m.size bytes of buf at ea
 * A memory write is only ever done after simd_exec succeeded, so a fault
 * leaves the architectural state as it was (precise exceptions).  For a
 * store whose target faults, the caller must check the page is writable
 * before simd_exec (probe) or run simd_exec on a copy of the state.
 */
#ifndef TV_BT_SIMD_H
#define TV_BT_SIMD_H

#include <stdbool.h>
#include <stdint.h>

#include "hv/cpu_state.h"

enum simd_pfx { SIMD_PFX_NONE, SIMD_PFX_66, SIMD_PFX_F3, SIMD_PFX_F2 };

enum simd_map {
	SIMD_MAP_X87 = 0,	/* escape opcodes D8..DF; opcode 9B (no
				 * ModRM) is WAIT/FWAIT: #NM/#MF checks */
	SIMD_MAP_0F = 1,	/* 0F xx */
	SIMD_MAP_0F38 = 2,	/* 0F 38 xx */
	SIMD_MAP_0F3A = 3,	/* 0F 3A xx */
};

struct simd_op {
	uint8_t map;		/* enum simd_map */
	uint8_t opcode;		/* the opcode byte within the map */
	uint8_t pfx;		/* enum simd_pfx: the mandatory prefix that
				 * applies (F2/F3 win over 66, last wins) */
	uint8_t mod;		/* ModRM.mod: 3 = register operand */
	uint8_t reg;		/* ModRM.reg | REX.R << 3 */
	uint8_t rm;		/* ModRM.rm | REX.B << 3 (register form) */
	uint8_t rex_w;		/* REX.W (movq/cvtsi2sd 64-bit forms) */
	uint8_t imm8;		/* immediate, when the opcode has one */
	uint8_t addr_size;	/* 2, 4 or 8: for x87 FSTENV/FSAVE layout */
	uint8_t op_size;	/* 2 or 4 (66 prefix) for FSTENV/FSAVE forms */
};

struct simd_mem {
	uint16_t size;		/* bytes of the memory operand (0: none) */
	uint8_t align;		/* required alignment (16 for movaps...), 0 */
	bool read, write;
	bool has_imm8;		/* the decoder must fetch an imm8 */
};

struct simd_ctx {
	struct cpu_fpu *fpu;	/* FXSAVE image: FCW, FSW, FTW, MXCSR,
				 * ST0-7 and XMM0-15 */
	uint64_t *gpr;		/* 16 general registers (movd, cvt*, pmovmskb) */
	uint64_t *rflags;	/* comis/ucomis write ZF/PF/CF */
	uint64_t cr0, cr4;	/* EM/TS/MP/NE and OSFXSR/OSXMMEXCPT */
	uint64_t fpu_ip, fpu_dp;	/* this instruction's address and
					 * its memory operand's linear
					 * address: an x87 non-control
					 * instruction records them in the
					 * image (FIP/FDP) for FSTENV and
					 * FXSAVE, so pass the current
					 * ones, not the previous ones */
};

/*
 * What op needs.  Call after the ModRM byte is known but before the
 * immediate is fetched (has_imm8 tells whether there is one).  Returns 0
 * when the library implements op, -1 when it must raise #UD.  Only the
 * fields map, opcode, pfx, mod, reg, rex_w and (x87 FSTENV/FSAVE forms)
 * op_size are read.  x87 stores also ask for a read: when an unmasked
 * exception suppresses the store, the buffer still holds the old bytes.
 */
int simd_decode(const struct simd_op *op, struct simd_mem *m);

/*
 * Execute op.  mem holds the loaded memory operand (m.read) and receives
 * the value to store (m.write); it must have room for 512 bytes (FXSAVE).
 * Returns 0 or the exception vector to raise (6 #UD, 7 #NM, 13 #GP with
 * error code 0, 16 #MF, 19 #XM); when non-zero, no register was changed,
 * except that #XM records its cause in the MXCSR flags as the hardware
 * does.
 */
int simd_exec(struct simd_ctx *c, const struct simd_op *op, uint8_t *mem);

#endif
