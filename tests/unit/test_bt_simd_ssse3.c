/*
 * SSSE3 (PSHUFB, PHADD/PHSUB, PMADDUBSW, PMULHRSW, PSIGN, PABS,
 * PALIGNR) in MMX and XMM forms, against the host CPU.
 */
#include "unit/test_bt_simd_harness.h"

static int
ssse3_sweep(uint8_t map, const uint8_t *opcs, int n, int per_form,
	    uint64_t seed)
{
	struct tstate in;
	int fails = 0, forms = 0;

	for (int i = 0; i < n; i++)
		for (int pfx = 0; pfx < 2; pfx++)
			for (int mod = 0; mod <= 3; mod += 3) {
				struct simd_op op = { .map = map,
					.opcode = opcs[i], .pfx = pfx,
					.mod = mod };
				struct simd_mem m;

				cr_assert_eq(simd_decode(&op, &m), 0, "%02x",
					     opcs[i]);
				forms++;
				for (int k = 0; k < h_iters(per_form); k++) {
					h_state(&in);
					op.reg = h_reg();
					op.rm = h_reg();
					op.imm8 = h_rand() % 40;
					if (!h_check(&op, &in, ~0ull, seed) &&
					    ++fails > 5)
						return fails;
				}
			}
	cr_assert(forms > 0);
	return fails;
}

Test(bt_simd_ssse3, map_0f38)
{
	static const uint8_t o[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
				     0x1c, 0x1d, 0x1e };

	h_init();
	h_seed(0x5553);
	cr_assert_eq(ssse3_sweep(SIMD_MAP_0F38, o, sizeof(o), 60, 0x5553), 0);
}

Test(bt_simd_ssse3, palignr)
{
	static const uint8_t o[] = { 0x0f };

	h_init();
	h_seed(0x5554);
	cr_assert_eq(ssse3_sweep(SIMD_MAP_0F3A, o, 1, 200, 0x5554), 0);
}

Test(bt_simd_ssse3, only_ssse3)
{
	struct simd_op op = { .map = SIMD_MAP_0F38, .opcode = 0x10,
			      .pfx = SIMD_PFX_66, .mod = 3 };
	struct simd_mem m;

	cr_expect_eq(simd_decode(&op, &m), -1, "SSE4.1 pblendvb: #UD");
	op.map = SIMD_MAP_0F3A;
	op.opcode = 0x0e;
	cr_expect_eq(simd_decode(&op, &m), -1, "SSE4.1 pblendw: #UD");
	op.opcode = 0x0f;
	op.pfx = SIMD_PFX_F3;
	cr_expect_eq(simd_decode(&op, &m), -1);
}
