/*
 * Random sequences mixing every group (x87, MMX, SSE, SSE2, SSE3, SSSE3,
 * state instructions) run natively as one block and through the library
 * one instruction at a time, sharing one memory operand: catches state
 * that does not carry from one instruction to the next (TOP and tags
 * across x87/MMX transitions, sticky flags, stores feeding loads).
 * Exceptions stay masked so the host never traps mid-block.
 */
#include "unit/test_bt_simd_harness.h"

#define SEQ_LEN 24

/* A random form the library accepts and that keeps exceptions masked. */
static void
seq_pick(struct simd_op *op, struct simd_mem *m)
{
	for (;;) {
		unsigned k = h_rand() % 8;

		*op = (struct simd_op){ .mod = (h_rand() & 1) ? 3 : 0,
			.reg = h_reg(), .rm = h_reg(), .rex_w = h_rand() & 1,
			.imm8 = h_rand(), .op_size = 4, .addr_size = 8 };
		if (k < 3) {
			op->map = SIMD_MAP_X87;
			op->opcode = 0xd8 + h_rand() % 8;
			op->reg = h_rand() % 8;
			op->rm = h_rand() % 8;
			/*
			 * Nothing that loads a control word or environment
			 * (could unmask), nor FNSTENV/FNSAVE (their FIP/FDP
			 * bytes are the host's and would feed later loads).
			 */
			if (op->mod != 3 && ((op->opcode == 0xd9 &&
			    op->reg >= 4 && op->reg <= 6) ||
			    (op->opcode == 0xdd && (op->reg == 4 ||
						    op->reg == 6))))
				continue;
		} else if (k < 7) {
			op->map = SIMD_MAP_0F;
			op->opcode = h_rand();
			op->pfx = h_rand() % 4;
			if (op->opcode == 0xae)		/* STMXCSR only */
				op->reg = 3;
			if (op->opcode >= 0x71 && op->opcode <= 0x73)
				op->reg = h_rand() % 8;
		} else {
			op->map = (h_rand() & 1) ? SIMD_MAP_0F38 : SIMD_MAP_0F3A;
			op->opcode = op->map == SIMD_MAP_0F3A ? 0x0f
							      : h_rand() % 0x20;
			op->pfx = h_rand() % 2;
		}
		if (simd_decode(op, m) == 0)
			return;
	}
}

static struct tstate seq_nat, seq_emu;
static struct cpu_fpu seq_fpu;

/* Run the first count operations both ways from in; true if they agree. */
static bool
seq_compare(const struct tstate *in, const struct simd_op *ops,
	    const struct simd_mem *ms, int count, bool verbose)
{
	uint8_t buf[512];
	struct simd_ctx c;
	int n = 0;

	for (int i = 0; i < count; i++) {
		n += h_encode(&ops[i], h_code + n);
		if (ms[i].has_imm8)
			h_code[n++] = ops[i].imm8;
	}
	h_code[n++] = 0xc3;
	seq_nat = *in;
	seq_nat.code = (uint64_t)(uintptr_t)h_code;
	seq_nat.gpr[7] = (uint64_t)(uintptr_t)seq_nat.mem;
	tramp_run(&seq_nat);

	seq_emu = *in;
	seq_emu.gpr[7] = seq_nat.gpr[7];
	memcpy(seq_fpu.fxsave, in->fx, 512);
	for (int i = 0; i < 8; i++)
		memset(seq_fpu.fxsave + 32 + 16 * i + 10, 0, 6);
	c = h_ctx(&seq_fpu, &seq_emu);
	for (int i = 0; i < count; i++) {
		bool mem = ops[i].mod != 3 && ms[i].size;
		int vec;

		memset(buf, 0xa5, sizeof(buf));
		if (mem && ms[i].read)
			memcpy(buf, seq_emu.mem, ms[i].size);
		vec = simd_exec(&c, &ops[i], buf);
		if (vec) {
			if (verbose)
				fprintf(stderr, "  step %d: vector %d\n", i, vec);
			return false;
		}
		if (mem && ms[i].write)
			memcpy(seq_emu.mem, buf, ms[i].size);
	}
	for (int i = 0; i < 512; i++)
		if (h_fx_cmp_byte(i) && seq_fpu.fxsave[i] != seq_nat.fx[i]) {
			if (verbose)
				fprintf(stderr, "  fxsave byte %d differs\n", i);
			return false;
		}
	for (int i = 0; i < 16; i++)
		if (i != 4 && i != 7 && seq_emu.gpr[i] != seq_nat.gpr[i]) {
			if (verbose)
				fprintf(stderr, "  gpr %d differs\n", i);
			return false;
		}
	if (memcmp(seq_emu.mem, seq_nat.mem, 512)) {
		if (verbose)
			fprintf(stderr, "  memory differs\n");
		return false;
	}
	if ((seq_emu.rflags ^ seq_nat.rflags) & 0x8d5) {
		if (verbose)
			fprintf(stderr, "  rflags differ\n");
		return false;
	}
	return true;
}

static bool
seq_run(uint64_t seed)
{
	static struct tstate in;
	struct simd_op ops[SEQ_LEN];
	struct simd_mem ms[SEQ_LEN];
	int k;

	h_state(&in);
	memset(in.fx + 24, 0, 4);
	in.fx[24] = 0x80 | (h_rand() & 0x40);	/* masked; maybe DAZ */
	in.fx[25] = 0x1f | (h_rand() & 0xe0);	/* RC, FTZ */
	for (int i = 0; i < SEQ_LEN; i++)
		seq_pick(&ops[i], &ms[i]);
	if (seq_compare(&in, ops, ms, SEQ_LEN, false))
		return true;
	/* the shortest failing prefix points at the culprit */
	for (k = 1; k < SEQ_LEN && seq_compare(&in, ops, ms, k, false); k++)
		;
	seq_compare(&in, ops, ms, k, true);
	fprintf(stderr, "sequence fails at step %d of:\n", k - 1);
	for (int i = 0; i < k; i++)
		h_describe(&ops[i], NULL);
	seq_compare(&in, ops, ms, k - 1, false);	/* state before it */
	h_dump("before fx", seq_fpu.fxsave, 32);
	h_dump("before xmm reg", seq_fpu.fxsave + 160 + 16 * (ops[k - 1].reg & 15), 16);
	h_dump("before xmm rm", seq_fpu.fxsave + 160 + 16 * (ops[k - 1].rm & 15), 16);
	h_dump("before st", seq_fpu.fxsave + 32, 128);
	h_dump("before mem", seq_emu.mem, 32);
	seq_compare(&in, ops, ms, k, false);
	h_dump("emu fx", seq_fpu.fxsave, 32);
	h_dump("nat fx", seq_nat.fx, 32);
	h_dump("emu xmm reg", seq_fpu.fxsave + 160 + 16 * (ops[k - 1].reg & 15), 16);
	h_dump("nat xmm reg", seq_nat.fx + 160 + 16 * (ops[k - 1].reg & 15), 16);
	h_dump("emu st", seq_fpu.fxsave + 32, 128);
	h_dump("nat st", seq_nat.fx + 32, 128);
	fprintf(stderr, "  seed %" PRIu64 "\n", seed);
	return false;
}

Test(bt_simd_seq, random_sequences)
{
	int fails = 0;

	h_init();
	h_seed(0x5e9);
	for (int k = 0; k < h_iters(300) && fails < 3; k++)
		if (!seq_run(0x5e9))
			fails++;
	cr_assert_eq(fails, 0);
}
