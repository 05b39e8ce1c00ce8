/*
 * SSE/SSE2/SSE3 floating point of the x87/SSE library against the host
 * CPU: random operands rich in zeros, denormals, infinities, NaNs and
 * integer limits, under random MXCSR rounding/DAZ/FTZ.
 */
#include "unit/test_bt_simd_harness.h"

static void
sse_sweep(const uint8_t *opcs, int n, int per_form, uint64_t seed)
{
	struct tstate in;
	int fails = 0, forms = 0;

	h_init();
	h_seed(seed);
	for (int i = 0; i < n; i++) {
		for (int pfx = 0; pfx < 4; pfx++) {
			for (int mod = 0; mod <= 3; mod += 3) {
				struct simd_op op = { .map = SIMD_MAP_0F,
					.opcode = opcs[i], .pfx = pfx,
					.mod = mod };
				struct simd_mem m;

				if (simd_decode(&op, &m) != 0)
					continue;
				forms++;
				for (int k = 0; k < h_iters(per_form); k++) {
					h_state(&in);
					if (h_rand() % 3 == 0)	/* unmask some */
						in.fx[25] &= ~(h_rand() & 0x1f) |
							     ~0x1f;
					op.reg = h_reg();
					op.rm = h_reg();
					op.rex_w = h_rand() & 1;
					op.imm8 = h_rand();
					if (h_rand() % 2)
						op.imm8 &= 7;
					if (!h_check(&op, &in, 0x8d5, seed) &&
					    ++fails > 5)
						cr_assert_fail("too many failures");
				}
			}
		}
	}
	cr_assert(forms > 0);
	cr_assert_eq(fails, 0, "%d mismatches", fails);
}

Test(bt_simd_sse, moves)
{
	static const uint8_t o[] = { 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
				     0x17, 0x28, 0x29, 0x2b, 0x50, 0xc6 };

	sse_sweep(o, sizeof(o), 60, 301);
}

Test(bt_simd_sse, arith)
{
	static const uint8_t o[] = { 0x51, 0x52, 0x53, 0x58, 0x59, 0x5c, 0x5d,
				     0x5e, 0x5f, 0x54, 0x55, 0x56, 0x57 };

	sse_sweep(o, sizeof(o), 60, 302);
}

Test(bt_simd_sse, compare)
{
	static const uint8_t o[] = { 0xc2, 0x2e, 0x2f };

	sse_sweep(o, sizeof(o), 150, 303);
}

Test(bt_simd_sse, convert)
{
	static const uint8_t o[] = { 0x2a, 0x2c, 0x2d, 0x5a, 0x5b, 0xe6 };

	sse_sweep(o, sizeof(o), 100, 304);
}

Test(bt_simd_sse, sse3)
{
	static const uint8_t o[] = { 0x7c, 0x7d, 0xd0 };

	sse_sweep(o, sizeof(o), 60, 305);
}

Test(bt_simd_sse, forms_that_exist)
{
	/* movss/movsd/cvtsi2sd/comisd/movddup/movshdup: glibc and libm */
	static const struct { uint8_t pfx, opc, mod, size, align; } f[] = {
		{ 2, 0x10, 0, 4, 0 }, { 3, 0x10, 0, 8, 0 }, { 0, 0x28, 0, 16, 16 },
		{ 1, 0x2f, 0, 8, 0 }, { 3, 0x12, 0, 8, 0 }, { 2, 0x16, 0, 16, 16 },
		{ 3, 0x2a, 0, 4, 0 }, { 1, 0x58, 0, 16, 16 }, { 2, 0x58, 0, 4, 0 },
		{ 0, 0x11, 0, 16, 0 }, { 1, 0xe6, 0, 16, 16 }, { 2, 0xe6, 0, 8, 0 },
	};
	for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		struct simd_op op = { .map = SIMD_MAP_0F, .opcode = f[i].opc,
				      .pfx = f[i].pfx, .mod = f[i].mod };
		struct simd_mem m;

		cr_assert_eq(simd_decode(&op, &m), 0, "%02x", f[i].opc);
		cr_expect(m.size == f[i].size && m.align == f[i].align,
			  "%02x pfx %d: size %d align %d", f[i].opc, f[i].pfx,
			  m.size, m.align);
	}
}

/* divps by zero with ZM clear: #XM, ZE recorded, destination kept. */
Test(bt_simd_sse, unmasked_exception)
{
	static struct cpu_fpu fpu;
	uint64_t gpr[16] = { 0 }, fl = 2;
	uint8_t mem[512] = { 0 };
	float one = 1.0f, zero = 0.0f;
	struct simd_op op = { .map = SIMD_MAP_0F, .opcode = 0x5e, .mod = 3,
			      .reg = 1, .rm = 2 };
	struct simd_ctx c = { .fpu = &fpu, .gpr = gpr, .rflags = &fl,
			      .cr0 = CR0_PE | CR0_NE,
			      .cr4 = CR4_OSFXSR | CR4_OSXMMEXCPT };
	uint32_t csr = 0x1f80 & ~(1u << 9);	/* unmask ZE */

	memcpy(fpu.fxsave + 24, &csr, 4);
	for (int i = 0; i < 4; i++) {
		memcpy(fpu.fxsave + 160 + 16 + 4 * i, &one, 4);
		memcpy(fpu.fxsave + 160 + 32 + 4 * i, i == 2 ? &zero : &one, 4);
	}
	cr_expect_eq(simd_exec(&c, &op, mem), 19);
	memcpy(&csr, fpu.fxsave + 24, 4);
	cr_expect(csr & 4, "ZE recorded");
	cr_expect_eq(memcmp(fpu.fxsave + 160 + 16, &one, 4), 0, "dest kept");
	c.cr4 &= ~CR4_OSXMMEXCPT;
	cr_expect_eq(simd_exec(&c, &op, mem), 6, "#UD without OSXMMEXCPT");
	csr = 0x1f80;
	memcpy(fpu.fxsave + 24, &csr, 4);
	cr_expect_eq(simd_exec(&c, &op, mem), 0, "masked: no fault");
	memcpy(&csr, fpu.fxsave + 24, 4);
	cr_expect_eq(csr, 0x1f84);
}
