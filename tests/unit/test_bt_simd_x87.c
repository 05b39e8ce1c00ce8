/*
 * x87 of the x87/SSE library against the host's x87: every escape
 * opcode and ModRM form, on stacks with random TOP, tags, special values
 * (zeros, denormals, pseudo-denormals, unnormals, infinities, NaNs,
 * integer edges) and random precision/rounding control.
 */
#include "unit/test_bt_simd_harness.h"

/* One 80-bit value, rich in the cases the x87 treats specially. */
static void
x87_value(uint8_t *p)
{
	long double v;
	uint64_t man = h_rand();
	uint16_t se = h_rand();

	switch (h_rand() % 16) {
	case 0: man = 0; se &= 0x8000; break;			/* zero */
	case 1: man >>= 1 + h_rand() % 60; se &= 0x8000; break;	/* denormal */
	case 2: man |= 1ull << 63; se &= 0x8000; break;	/* pseudo-denormal */
	case 3: man &= ~(1ull << 63); break;			/* unnormal */
	case 4: man = 1ull << 63; se |= 0x7fff; break;		/* infinity */
	case 5: man |= 3ull << 62; se |= 0x7fff; break;		/* QNaN */
	case 6: man = (man | 1) & ~(1ull << 62);		/* SNaN */
		man |= 1ull << 63; se |= 0x7fff; break;
	case 7: man |= 1ull << 63; se = (se & 0x8000) | (0x3fff + h_rand() % 70);
		break;						/* int-ish */
	case 8: {
		static const double d[] = { 0.5, 1.5, 2.5, -0.5, 1e308, 3.14159,
					    -2.0, 1e-310, 65535.5, 2147483647.5,
					    -9.3e18, 9.2233720368547758e18,
					    1.0, 0.0 };
		v = d[h_rand() % (sizeof(d) / sizeof(d[0]))];
		memcpy(p, &v, 10);
		return;
	}
	default:
		v = (long double)(int64_t)h_rand() /
		    (long double)(h_rand() % 1000 + 1);
		if (h_rand() % 2)
			v = v * 1e-20L;
		memcpy(p, &v, 10);
		return;
	}
	memcpy(p, &man, 8);
	memcpy(p + 8, &se, 2);
}

static void
x87_state(struct tstate *s)
{
	uint16_t fcw, fsw;

	h_state(s);
	for (int i = 0; i < 8; i++)
		x87_value(s->fx + 32 + 16 * i);
	s->fx[4] = h_rand() | h_rand();		/* mostly valid */
	memcpy(&fcw, s->fx, 2);
	memcpy(&fsw, s->fx + 2, 2);
	if (h_rand() % 4 == 0)
		fcw &= ~(1u << (h_rand() % 6));		/* unmask one */
	fsw &= ~(~fcw & 0x3f);				/* nothing pending */
	memcpy(s->fx, &fcw, 2);
	memcpy(s->fx + 2, &fsw, 2);
	for (int i = 0; i < 64; i += 16)
		x87_value(s->mem + i);
	if (h_rand() % 3 == 0)
		h_fill(s->mem, 16);
}

static int
x87_sweep(uint8_t opc, int mod, int per_form, uint64_t seed)
{
	struct tstate in;
	int fails = 0;

	for (int reg = 0; reg < 8; reg++) {
		for (int rm = 0; rm < (mod == 3 ? 8 : 1); rm++) {
			struct simd_op op = { .map = SIMD_MAP_X87, .opcode = opc,
				.mod = mod, .reg = reg, .rm = rm, .op_size = 4,
				.addr_size = 8 };
			struct simd_mem m;

			if (simd_decode(&op, &m) != 0)
				continue;
			for (int k = 0; k < h_iters(per_form); k++) {
				x87_state(&in);
				if (!h_check(&op, &in, 0x8d5, seed) &&
				    ++fails > 4)
					return fails;
			}
		}
	}
	return fails;
}

#define X87_TEST(name, opc, n)						\
Test(bt_simd_x87, name)							\
{									\
	int f;								\
									\
	h_init();							\
	h_seed(0x870 + opc);						\
	f = x87_sweep(opc, 0, n * 3, 0x870 + opc);			\
	f += x87_sweep(opc, 3, n, 0x870 + opc);				\
	cr_assert_eq(f, 0, "%d mismatches", f);				\
}

X87_TEST(d8, 0xd8, 30)
X87_TEST(d9, 0xd9, 30)
X87_TEST(da, 0xda, 30)
X87_TEST(db, 0xdb, 30)
X87_TEST(dc, 0xdc, 30)
X87_TEST(dd, 0xdd, 30)
X87_TEST(de, 0xde, 30)
X87_TEST(df, 0xdf, 30)

/* FNSTENV/FLDENV/FNSAVE/FRSTOR in their 16-bit (66 prefix) layouts. */
Test(bt_simd_x87, env_16bit)
{
	static const uint8_t f[4][2] = { { 0xd9, 4 }, { 0xd9, 6 },
					 { 0xdd, 4 }, { 0xdd, 6 } };
	struct tstate in;
	int fails = 0;

	h_init();
	h_seed(0x8716);
	for (int i = 0; i < 4; i++) {
		struct simd_op op = { .map = SIMD_MAP_X87, .opcode = f[i][0],
				      .mod = 0, .reg = f[i][1], .op_size = 2 };
		struct simd_mem m;

		cr_assert_eq(simd_decode(&op, &m), 0);
		cr_expect_eq(m.size, f[i][0] == 0xd9 ? 14 : 94);
		for (int k = 0; k < h_iters(60); k++) {
			x87_state(&in);
			if (!h_check(&op, &in, 0x8d5, 0x8716) && ++fails > 4)
				break;
		}
	}
	cr_assert_eq(fails, 0);
}

static struct cpu_fpu x87_fpu;
static uint64_t x87_gpr[16], x87_fl = 2;

static struct simd_ctx
x87_ctx(uint64_t cr0, uint16_t fcw, uint16_t fsw)
{
	memset(&x87_fpu, 0, sizeof(x87_fpu));
	memcpy(x87_fpu.fxsave, &fcw, 2);
	memcpy(x87_fpu.fxsave + 2, &fsw, 2);
	x87_fpu.fxsave[24] = 0x80;
	x87_fpu.fxsave[25] = 0x1f;
	return (struct simd_ctx){ .fpu = &x87_fpu, .gpr = x87_gpr,
				  .rflags = &x87_fl, .cr0 = cr0,
				  .cr4 = CR4_OSFXSR, .fpu_ip = 0x1234,
				  .fpu_dp = 0x5678 };
}

Test(bt_simd_x87, fault_classes)
{
	uint64_t cr0 = CR0_PE | CR0_NE | CR0_ET | CR0_MP;
	struct simd_op fld1 = { .map = SIMD_MAP_X87, .opcode = 0xd9, .mod = 3,
				.reg = 5, .rm = 0 };
	struct simd_op fnclex = { .map = SIMD_MAP_X87, .opcode = 0xdb,
				  .mod = 3, .reg = 4, .rm = 2 };
	struct simd_op fwait = { .map = SIMD_MAP_X87, .opcode = 0x9b };
	struct simd_mem m;
	uint8_t mem[512] = { 0 };
	struct simd_ctx c;

	cr_assert_eq(simd_decode(&fwait, &m), 0);
	c = x87_ctx(cr0 | CR0_TS, 0x37f, 0);
	cr_expect_eq(simd_exec(&c, &fld1, mem), 7, "TS: #NM");
	cr_expect_eq(simd_exec(&c, &fwait, mem), 7, "WAIT with TS+MP: #NM");
	c.cr0 = cr0 | CR0_EM;
	cr_expect_eq(simd_exec(&c, &fld1, mem), 7, "EM: #NM for x87");
	cr_expect_eq(simd_exec(&c, &fwait, mem), 0, "WAIT ignores EM");
	/* an unmasked pending exception: waiting forms raise #MF */
	c = x87_ctx(cr0, 0x37e, 0x8081);
	cr_expect_eq(simd_exec(&c, &fld1, mem), 16);
	cr_expect_eq(simd_exec(&c, &fwait, mem), 16);
	cr_expect_eq(x87_fpu.fxsave[4], 0, "nothing pushed");
	cr_expect_eq(simd_exec(&c, &fnclex, mem), 0, "FNCLEX does not wait");
	cr_expect_eq(simd_exec(&c, &fwait, mem), 0);
	cr_expect_eq(simd_exec(&c, &fld1, mem), 0);
}

/* An unmasked exception is recorded and raised by the next instruction. */
Test(bt_simd_x87, deferred_mf)
{
	struct simd_op fldz = { .map = SIMD_MAP_X87, .opcode = 0xd9, .mod = 3,
				.reg = 5, .rm = 6 };
	struct simd_op fld1 = { .map = SIMD_MAP_X87, .opcode = 0xd9, .mod = 3,
				.reg = 5, .rm = 0 };
	struct simd_op fdiv = { .map = SIMD_MAP_X87, .opcode = 0xd8, .mod = 3,
				.reg = 6, .rm = 1 };	/* ST0 /= ST1 */
	uint8_t mem[512] = { 0 };
	struct simd_ctx c = x87_ctx(CR0_PE | CR0_NE | CR0_MP,
				    0x37f & ~4, 0);	/* ZE unmasked */
	uint16_t fsw;

	cr_assert_eq(simd_exec(&c, &fldz, mem), 0);
	cr_assert_eq(simd_exec(&c, &fld1, mem), 0);
	cr_assert_eq(simd_exec(&c, &fdiv, mem), 0, "1/0: no fault yet");
	memcpy(&fsw, x87_fpu.fxsave + 2, 2);
	cr_expect(fsw & 4, "ZE");
	cr_expect(fsw & 0x8080, "ES and B");
	cr_expect_eq(x87_fpu.fxsave[32 + 9], 0x3f, "ST0 still 1.0");
	cr_expect_eq(simd_exec(&c, &fld1, mem), 16, "the next one: #MF");
}

/* FIP/FDP/FOP come from the context of the last non-control instruction. */
Test(bt_simd_x87, fip_fdp_fop)
{
	struct simd_op fadd = { .map = SIMD_MAP_X87, .opcode = 0xdc, .mod = 0,
				.reg = 0, .rm = 5 };
	struct simd_op fnstenv = { .map = SIMD_MAP_X87, .opcode = 0xd9,
				   .mod = 0, .reg = 6, .op_size = 4 };
	uint8_t mem[512] = { 0 };
	struct simd_ctx c = x87_ctx(CR0_PE | CR0_NE | CR0_MP, 0x37f, 0);
	uint32_t v;

	cr_assert_eq(simd_exec(&c, &fadd, mem), 0);
	c.fpu_ip = 0x9999;		/* FNSTENV is a control instruction */
	c.fpu_dp = 0x8888;
	cr_assert_eq(simd_exec(&c, &fnstenv, mem), 0);
	memcpy(&v, mem + 12, 4);
	cr_expect_eq(v, 0x1234, "FIP");
	memcpy(&v, mem + 20, 4);
	cr_expect_eq(v, 0x5678, "FDP");
	memcpy(&v, mem + 16, 4);
	cr_expect_eq(v >> 16, 0x405, "FOP = DC 05");
	cr_expect_eq(x87_fpu.fxsave[0] & 0x3f, 0x3f, "FNSTENV masks all");
}

/*
 * Real-mode environment layouts (SDM vol. 1, figures 8-10 and 8-12; the
 * host runs in long mode, so there is no native oracle): FIP/FDP split
 * into a low word and high bits at bit 12 beside FOP, and FLDENV reads
 * back what FNSTENV wrote.
 */
Test(bt_simd_x87, env_real_mode)
{
	struct simd_op fadd = { .map = SIMD_MAP_X87, .opcode = 0xdc, .mod = 0,
				.reg = 0, .rm = 5 };
	struct simd_op env = { .map = SIMD_MAP_X87, .opcode = 0xd9, .mod = 0,
			       .reg = 6, .op_size = 2 };
	uint8_t mem[512] = { 0 }, img[512];
	struct simd_ctx c = x87_ctx(0, 0x37f, 0);	/* CR0.PE = 0 */
	uint16_t w;
	uint32_t d;

	c.fpu_ip = 0x12345;
	c.fpu_dp = 0xabcde;
	cr_assert_eq(simd_exec(&c, &fadd, mem), 0);
	memcpy(img, x87_fpu.fxsave, 512);
	cr_assert_eq(simd_exec(&c, &env, mem), 0);
	memcpy(&w, mem + 6, 2);
	cr_expect_eq(w, 0x2345, "FIP 15:0");
	memcpy(&w, mem + 8, 2);
	cr_expect_eq(w, 0x1405, "FIP 19:16 at bit 12, FOP below");
	memcpy(&w, mem + 10, 2);
	cr_expect_eq(w, 0xbcde, "FDP 15:0");
	memcpy(&w, mem + 12, 2);
	cr_expect_eq(w, 0xa000, "FDP 19:16 at bit 12");
	env.reg = 4;				/* FLDENV */
	memset(x87_fpu.fxsave + 6, 0, 18);
	cr_assert_eq(simd_exec(&c, &env, mem), 0);
	cr_expect_eq(memcmp(x87_fpu.fxsave + 6, img + 6, 18), 0,
		     "FOP/FIP/FDP restored");
	env.op_size = 4;			/* 32-bit real-mode layout */
	env.reg = 6;
	cr_assert_eq(simd_exec(&c, &env, mem), 0);
	memcpy(&d, mem + 16, 4);
	cr_expect_eq(d, 0x00001405, "FIP 31:16 at bit 12, FOP");
	memcpy(&d, mem + 24, 4);
	cr_expect_eq(d, 0x0000a000);
	env.reg = 4;
	memset(x87_fpu.fxsave + 6, 0, 18);
	cr_assert_eq(simd_exec(&c, &env, mem), 0);
	cr_expect_eq(memcmp(x87_fpu.fxsave + 6, img + 6, 18), 0);
}
