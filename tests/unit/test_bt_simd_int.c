/*
 * SSE2/MMX integer instructions and the state instructions of the
 * x87/SSE library, checked against the host CPU (see the harness).
 */
#include "unit/test_bt_simd_harness.h"

/* Every 0F opcode of the integer group, each prefix, both operand kinds. */
static void
int_sweep(uint8_t lo, uint8_t hi, int per_form, uint64_t seed)
{
	struct tstate in;
	int fails = 0, forms = 0;

	h_init();
	h_seed(seed);
	for (int o = lo; o <= hi; o++) {
		for (int pfx = 0; pfx < 4; pfx++) {
			for (int mod = 0; mod <= 3; mod += 3) {
				for (int sub = 0; sub < 8; sub++) {
					struct simd_op op = { .map = SIMD_MAP_0F,
						.opcode = o, .pfx = pfx, .mod = mod,
						.reg = sub };
					struct simd_mem m;
					bool grp = o >= 0x71 && o <= 0x73;

					if (!grp && sub > 0)
						break;
					if (o == 0xae || o == 0x77 ||
					    simd_decode(&op, &m) != 0)
						continue;
					forms++;
					for (int k = 0; k < h_iters(per_form); k++) {
						h_state(&in);
						op.reg = grp ? sub : h_reg();
						op.rm = h_reg();
						op.rex_w = h_rand() & 1;
						op.imm8 = h_rand();
						if (grp && h_rand() % 2)
							op.imm8 &= 0x1f;
						if (!h_check(&op, &in, 0x8d5, seed))
							fails++;
						if (fails > 5)
							cr_assert_fail("too many failures");
					}
				}
			}
		}
	}
	cr_assert(forms > 0);
	cr_assert_eq(fails, 0, "%d mismatches", fails);
}

Test(bt_simd_int, unpack_pack_cmp_mov)
{
	int_sweep(0x60, 0x7f, 40, 101);
}

Test(bt_simd_int, pinsrw_pextrw)
{
	int_sweep(0xc4, 0xc5, 40, 102);
}

Test(bt_simd_int, arith_logic_shift)
{
	int_sweep(0xd1, 0xfe, 40, 103);
}

/* The forms glibc's SSE2 string functions rely on must all be accepted. */
Test(bt_simd_int, glibc_forms_decoded)
{
	static const struct { uint8_t pfx, opc, mod, reg; } f[] = {
		{ 1, 0x74, 0, 0 }, { 1, 0x74, 3, 0 }, { 1, 0xd7, 3, 0 },
		{ 1, 0xda, 3, 0 }, { 1, 0xeb, 3, 0 }, { 1, 0xdb, 3, 0 },
		{ 1, 0xef, 3, 0 }, { 1, 0x6f, 0, 0 }, { 2, 0x6f, 0, 0 },
		{ 1, 0x7f, 0, 0 }, { 2, 0x7f, 0, 0 }, { 1, 0x60, 3, 0 },
		{ 1, 0x61, 3, 0 }, { 1, 0x70, 3, 0 }, { 1, 0xf8, 3, 0 },
		{ 1, 0x73, 3, 3 }, { 1, 0x73, 3, 7 }, { 1, 0x6e, 3, 0 },
		{ 1, 0x7e, 3, 0 }, { 2, 0x7e, 0, 0 }, { 1, 0xd6, 0, 0 },
		{ 1, 0xe7, 0, 0 }, { 3, 0xf0, 0, 0 }, { 1, 0x6c, 3, 0 },
		{ 1, 0x64, 3, 0 }, { 1, 0xde, 3, 0 }, { 1, 0xfc, 3, 0 },
	};
	for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		struct simd_op op = { .map = SIMD_MAP_0F, .opcode = f[i].opc,
			.pfx = f[i].pfx, .mod = f[i].mod, .reg = f[i].reg };
		struct simd_mem m;

		cr_expect_eq(simd_decode(&op, &m), 0, "opcode %02x pfx %d",
			     f[i].opc, f[i].pfx);
	}
}

Test(bt_simd_int, alignment_and_sizes)
{
	struct simd_op op = { .map = SIMD_MAP_0F, .opcode = 0x6f,
			      .pfx = SIMD_PFX_66, .mod = 0 };
	struct simd_mem m;

	cr_assert_eq(simd_decode(&op, &m), 0);
	cr_expect(m.size == 16 && m.align == 16 && m.read && !m.write);
	op.pfx = SIMD_PFX_F3;
	cr_assert_eq(simd_decode(&op, &m), 0);
	cr_expect(m.size == 16 && m.align == 0);
	op.pfx = SIMD_PFX_NONE;
	cr_assert_eq(simd_decode(&op, &m), 0);
	cr_expect(m.size == 8 && m.align == 0);
	op = (struct simd_op){ .map = SIMD_MAP_0F, .opcode = 0x7e,
			       .pfx = SIMD_PFX_66, .mod = 0, .rex_w = 1 };
	cr_assert_eq(simd_decode(&op, &m), 0);
	cr_expect(m.size == 8 && m.write && !m.read);
	op.opcode = 0xd7;			/* pmovmskb has no memory form */
	cr_expect_eq(simd_decode(&op, &m), -1);
	op = (struct simd_op){ .map = SIMD_MAP_0F, .opcode = 0x73,
			       .pfx = SIMD_PFX_NONE, .mod = 3, .reg = 7 };
	cr_expect_eq(simd_decode(&op, &m), -1, "pslldq has no MMX form");
	op.pfx = SIMD_PFX_66;
	cr_assert_eq(simd_decode(&op, &m), 0);
	cr_expect(m.has_imm8);
}

static int
exec_with(uint64_t cr0, uint64_t cr4, uint16_t fsw, uint8_t pfx, uint8_t opc)
{
	static struct cpu_fpu fpu;
	uint64_t gpr[16] = { 0 }, fl = 2;
	uint8_t mem[512] = { 0 };
	struct simd_op op = { .map = SIMD_MAP_0F, .opcode = opc, .pfx = pfx,
			      .mod = 3, .reg = 1, .rm = 2 };
	struct simd_ctx c = { .fpu = &fpu, .gpr = gpr, .rflags = &fl,
			      .cr0 = cr0, .cr4 = cr4 };

	memset(&fpu, 0, sizeof(fpu));
	memcpy(fpu.fxsave + 2, &fsw, 2);
	fpu.fxsave[24] = 0x80;
	fpu.fxsave[25] = 0x1f;
	return simd_exec(&c, &op, mem);
}

Test(bt_simd_int, fault_classes)
{
	uint64_t cr0 = CR0_PE | CR0_NE | CR0_ET | CR0_MP, cr4 = CR4_OSFXSR;

	cr_expect_eq(exec_with(cr0, cr4, 0, 1, 0xef), 0);
	cr_expect_eq(exec_with(cr0 | CR0_TS, cr4, 0, 1, 0xef), 7, "TS: #NM");
	cr_expect_eq(exec_with(cr0 | CR0_EM, cr4, 0, 1, 0xef), 6, "EM: #UD");
	cr_expect_eq(exec_with(cr0, 0, 0, 1, 0xef), 6, "no OSFXSR: #UD");
	cr_expect_eq(exec_with(cr0, 0, 0, 0, 0xef), 0, "MMX needs no OSFXSR");
	cr_expect_eq(exec_with(cr0 | CR0_TS, cr4, 0, 0, 0xef), 7);
	cr_expect_eq(exec_with(cr0 | CR0_EM, cr4, 0, 0, 0xef), 6);
	cr_expect_eq(exec_with(cr0, cr4, 0x80, 0, 0xef), 16,
		     "pending x87 exception: MMX raises #MF");
	cr_expect_eq(exec_with(cr0, cr4, 0x80, 1, 0xef), 0,
		     "but SSE does not");
	cr_expect_eq(exec_with(cr0, cr4, 0x80, 0, 0x77), 16, "EMMS #MF");
}
