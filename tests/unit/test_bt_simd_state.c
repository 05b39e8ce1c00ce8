/*
 * FXSAVE/FXRSTOR/LDMXCSR/STMXCSR/EMMS of the x87/SSE library against
 * the host's own.
 */
#include "unit/test_bt_simd_harness.h"

static void
state_run(uint8_t opc, uint8_t reg, int w, int iters, uint64_t seed)
{
	struct tstate in;
	int fails = 0;

	h_init();
	h_seed(seed);
	for (int k = 0; k < h_iters(iters); k++) {
		struct simd_op op = { .map = SIMD_MAP_0F, .opcode = opc,
				      .mod = opc == 0x77 ? 3 : 0, .reg = reg,
				      .rex_w = w };

		h_state(&in);
		if (opc == 0xae && reg == 1) {
			/* the image to load: random but with a valid MXCSR */
			h_fill(in.mem, 512);
			in.mem[26] = in.mem[27] = 0;
			memset(in.mem + 464, 0, 48);
		}
		if (opc == 0xae && reg == 2) {
			in.mem[0] = h_rand();
			in.mem[1] = h_rand();
			in.mem[2] = in.mem[3] = 0;
		}
		if (!h_check(&op, &in, ~0ull, seed) && ++fails > 3)
			break;
	}
	cr_assert_eq(fails, 0);
}

Test(bt_simd_state, fxsave64)
{
	state_run(0xae, 0, 1, 200, 201);
}

Test(bt_simd_state, fxsave_fxrstor_32bit_forms)
{
	/* FCS/FDS are unknown here; the harness masks FIP/FDP bytes */
	state_run(0xae, 0, 0, 100, 206);
	state_run(0xae, 1, 0, 100, 207);
}

Test(bt_simd_state, fxrstor64)
{
	state_run(0xae, 1, 1, 200, 202);
}

Test(bt_simd_state, ldmxcsr_stmxcsr)
{
	state_run(0xae, 2, 0, 100, 203);
	state_run(0xae, 3, 0, 20, 204);
}

Test(bt_simd_state, emms)
{
	state_run(0x77, 0, 0, 20, 205);
}

Test(bt_simd_state, reserved_mxcsr_is_gp)
{
	static struct cpu_fpu fpu;
	uint64_t gpr[16] = { 0 }, fl = 2;
	uint8_t mem[512] = { 0 };
	struct simd_op op = { .map = SIMD_MAP_0F, .opcode = 0xae, .mod = 0,
			      .reg = 2 };
	struct simd_ctx c = { .fpu = &fpu, .gpr = gpr, .rflags = &fl,
			      .cr0 = CR0_PE | CR0_NE, .cr4 = CR4_OSFXSR };

	fpu.fxsave[24] = 0x80;
	fpu.fxsave[25] = 0x1f;
	mem[2] = 1;				/* bit 16: reserved */
	cr_expect_eq(simd_exec(&c, &op, mem), 13);
	cr_expect_eq(fpu.fxsave[26], 0, "MXCSR unchanged");
	op.reg = 1;
	mem[26] = 1;
	mem[2] = 0;
	cr_expect_eq(simd_exec(&c, &op, mem), 13, "FXRSTOR too");
	c.cr0 |= CR0_TS;
	cr_expect_eq(simd_exec(&c, &op, mem), 7, "TS: #NM");
}
