/*
 * The decoder's instruction lengths against Zydis (libzydis-dev), used
 * here as an oracle only: random byte strings, biased toward prefixes
 * and the 0F/0F38/0F3A maps, in 64-, 32- and 16-bit modes.  Wherever
 * Zydis decodes a valid instruction that our decoder does not turn into
 * #UD, the lengths must agree (a wrong length derails every instruction
 * after it).  Zydis is loaded with dlopen so the product never links it;
 * without it the test is skipped.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdio.h>

#include <Zydis/Zydis.h>

#include "bt/harness.h"
#include "hv/bt/bt_internal.h"

typedef ZyanStatus (*zinit_fn)(ZydisDecoder *, ZydisMachineMode,
    ZydisStackWidth);
typedef ZyanStatus (*zdec_fn)(const ZydisDecoder *, ZydisDecoderContext *,
    const void *, ZyanUSize, ZydisDecodedInstruction *);

static uint64_t
xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
random_insn(uint64_t *s, uint8_t *b, int mode)
{
	static const uint8_t pfx[] = { 0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e,
	    0x64, 0x65 };
	int n = 0;

	for (int k = 0; k < 16; k++)
		b[k] = (uint8_t)xs(s);
	while (xs(s) % 3 == 0 && n < 3)
		b[n++] = pfx[xs(s) % sizeof(pfx)];
	if (mode == BT_M64 && xs(s) % 2)
		b[n++] = 0x40 | (uint8_t)(xs(s) & 15);
	switch (xs(s) % 4) {
	case 0: break;
	case 1: b[n++] = 0x0f; break;
	case 2: b[n++] = 0x0f; b[n++] = 0x38; break;
	case 3: b[n++] = 0x0f; b[n++] = 0x3a; break;
	}
}

Test(bt_decode, lengths_match_zydis)
{
	static const struct { int mode; ZydisMachineMode zm;
	    ZydisStackWidth sw; } modes[] = {
		{ BT_M64, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64 },
		{ BT_M32, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32 },
		{ BT_M16, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16 },
	};
	void *lib = dlopen("libZydis.so.4.0", RTLD_NOW);
	struct tvm *t;
	struct bt_cpu *c;
	uint64_t seed = 12345;
	int checked = 0, bad = 0;
	const char *it = getenv("BT_DECODE_ITERS");
	long iters = it ? atol(it) : 60000;

	if (lib == NULL)
		cr_skip_test("libZydis.so.4.0 not installed (libzydis4.0)");
	zinit_fn zinit = (zinit_fn)dlsym(lib, "ZydisDecoderInit");
	zdec_fn zdec = (zdec_fn)dlsym(lib, "ZydisDecoderDecodeInstruction");
	cr_assert(zinit != NULL && zdec != NULL);
	t = tvm_new(1 << 20);
	c = t->vcpu->accel;
	c->cr0 = CR0_PE | CR0_ET;	/* no paging: linear = physical */
	for (unsigned m = 0; m < 3; m++) {
		ZydisDecoder d;

		zinit(&d, modes[m].zm, modes[m].sw);
		c->efer = modes[m].mode == BT_M64 ? EFER_LME | EFER_LMA : 0;
		c->seg[SEG_CS].l = modes[m].mode == BT_M64;
		c->seg[SEG_CS].db = modes[m].mode == BT_M32;
		bt_cpu_update_mode(c);
		cr_assert_eq(c->mode, modes[m].mode);
		for (long k = 0; k < iters && bad < 10; k++) {
			ZydisDecodedInstruction zi;
			struct bt_insn bi;
			uint8_t b[16];
			uint32_t err;
			uint64_t pflin;

			random_insn(&seed, b, modes[m].mode);
			if (!ZYAN_SUCCESS(zdec(&d, NULL, b, 15, &zi)))
				continue;
			memcpy(t->vm->ram + 0x1000, b, 16);
			cr_assert_eq(bt_decode(c, 0x1000, &bi, &err, &pflin), 0);
			if (bi.fn == bt_x_ud)
				continue;
			checked++;
			if (bi.len != zi.length) {
				bad++;
				fprintf(stderr, "mode %d: length %u, zydis %u:",
				    modes[m].mode, bi.len, zi.length);
				for (int j = 0; j < zi.length + 2 && j < 15; j++)
					fprintf(stderr, " %02x", b[j]);
				fprintf(stderr, "\n");
			}
		}
	}
	tvm_free(t);
	dlclose(lib);
	cr_assert_eq(bad, 0, "%d length mismatches of %d checked", bad,
	    checked);
	cr_assert_gt(checked, 10000);
}
