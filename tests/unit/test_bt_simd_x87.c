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

static void
x87_free_st7(struct tstate *s)
{
	unsigned top = (s->fx[3] >> 3) & 7;

	s->fx[4] &= ~(1u << ((top + 7) & 7));
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
				/*
				 * FPTAN/FXTRACT/FSINCOS on a full stack: the
				 * host's C1 then depends on the operand in a
				 * way not worth modelling; keep ST7 free.
				 */
				if (opc == 0xd9 && mod == 3 && reg == 6 &&
				    (rm == 2 || rm == 4))
					x87_free_st7(&in);
				if (opc == 0xd9 && mod == 3 && reg == 7 &&
				    rm == 3)
					x87_free_st7(&in);
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
