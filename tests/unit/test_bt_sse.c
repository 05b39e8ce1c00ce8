/*
 * The software CPU's specialized SSE handlers (src/hv/bt/exec_sse.c)
 * against the generic SIMD path they short-cut: random 64-bit loops of
 * the specialized forms (XMM moves, 66-prefixed integer operations,
 * PMOVMSKB, PSHUFD, MOVD/MOVQ, immediate shifts), register and memory
 * operands, aligned, misaligned (#GP for the aligned forms), across a
 * page, and through arbitrary registers (page faults, MMIO), run once
 * with every SSE instruction decoded as bt_x_simd (generic) and once
 * with the specialized handlers, from the same state; some runs start
 * with CR0.TS or CR4.OSFXSR clear (#NM, #UD).  Registers, XMM registers,
 * RIP, flags, the exception taken and the data pages must be identical.
 *
 * BT_SSE_ITERS=N runs N programs (soak); BT_SSE_SEED=S replays one.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "bt/harness.h"
#include "hv/bt/bt_internal.h"

#define CODE 0x200000ull
#define DATA 0x300000ull	/* r15 points here; r14 counts the loop */
#define NDATA 0x2000

struct prog {
	uint8_t b[4096];
	size_t n;
	uint64_t rng;
	uint64_t cr0_or, cr4_clear;
};

static uint64_t
rnd(struct prog *p)
{
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return p->rng;
}

static void
put1(struct prog *p, unsigned v)
{
	p->b[p->n++] = (uint8_t)v;
}

/* A general register any test may clobber (not RSP, R14, R15). */
static unsigned
dreg(struct prog *p)
{
	static const uint8_t r[] = { 0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12,
	    13 };

	return r[rnd(p) % sizeof(r)];
}

enum { K_RM, K_ST, K_STM, K_LDM, K_SHIFT, K_MSK, K_MOVD, K_MOVDF, K_IMM };

static const struct form {
	uint8_t pfx, op, kind;
} forms[] = {
	{ 0, 0x10, K_RM }, { 0x66, 0x10, K_RM }, { 0, 0x28, K_RM },
	{ 0x66, 0x28, K_RM }, { 0, 0x11, K_ST }, { 0x66, 0x11, K_ST },
	{ 0, 0x29, K_ST }, { 0x66, 0x29, K_ST }, { 0, 0x2b, K_STM },
	{ 0x66, 0x2b, K_STM }, { 0x66, 0x6f, K_RM }, { 0xf3, 0x6f, K_RM },
	{ 0x66, 0x7f, K_ST }, { 0xf3, 0x7f, K_ST }, { 0x66, 0xe7, K_STM },
	{ 0xf2, 0xf0, K_LDM }, { 0x66, 0x70, K_IMM }, { 0x66, 0xd7, K_MSK },
	{ 0x66, 0x6e, K_MOVD }, { 0x66, 0x7e, K_MOVDF }, { 0xf3, 0x7e, K_RM },
	{ 0x66, 0xd6, K_ST }, { 0x66, 0x71, K_SHIFT }, { 0x66, 0x72, K_SHIFT },
	{ 0x66, 0x73, K_SHIFT },
	/* the integer operations, each 66 0F op xmm, xmm/m128 */
	{ 0x66, 0x60, K_RM }, { 0x66, 0x61, K_RM }, { 0x66, 0x62, K_RM },
	{ 0x66, 0x63, K_RM }, { 0x66, 0x64, K_RM }, { 0x66, 0x65, K_RM },
	{ 0x66, 0x66, K_RM }, { 0x66, 0x67, K_RM }, { 0x66, 0x68, K_RM },
	{ 0x66, 0x69, K_RM }, { 0x66, 0x6a, K_RM }, { 0x66, 0x6b, K_RM },
	{ 0x66, 0x6c, K_RM }, { 0x66, 0x6d, K_RM }, { 0x66, 0x74, K_RM },
	{ 0x66, 0x75, K_RM }, { 0x66, 0x76, K_RM }, { 0x66, 0xd4, K_RM },
	{ 0x66, 0xd5, K_RM }, { 0x66, 0xd8, K_RM }, { 0x66, 0xd9, K_RM },
	{ 0x66, 0xda, K_RM }, { 0x66, 0xdb, K_RM }, { 0x66, 0xdc, K_RM },
	{ 0x66, 0xdd, K_RM }, { 0x66, 0xde, K_RM }, { 0x66, 0xdf, K_RM },
	{ 0x66, 0xe0, K_RM }, { 0x66, 0xe3, K_RM }, { 0x66, 0xe4, K_RM },
	{ 0x66, 0xe5, K_RM }, { 0x66, 0xe8, K_RM }, { 0x66, 0xe9, K_RM },
	{ 0x66, 0xea, K_RM }, { 0x66, 0xeb, K_RM }, { 0x66, 0xec, K_RM },
	{ 0x66, 0xed, K_RM }, { 0x66, 0xee, K_RM }, { 0x66, 0xef, K_RM },
	{ 0x66, 0xf4, K_RM }, { 0x66, 0xf5, K_RM }, { 0x66, 0xf6, K_RM },
	{ 0x66, 0xf8, K_RM }, { 0x66, 0xf9, K_RM }, { 0x66, 0xfa, K_RM },
	{ 0x66, 0xfb, K_RM }, { 0x66, 0xfc, K_RM }, { 0x66, 0xfd, K_RM },
	{ 0x66, 0xfe, K_RM },
};

/* The memory operand: mostly [r15 + disp32] inside the data pages
 * (aligned, misaligned or across the page), sometimes [reg] anywhere. */
static void
gen_mem(struct prog *p, unsigned reg, uint8_t *rexb)
{
	unsigned s = dreg(p);
	uint32_t d;

	if (rnd(p) % 12 == 0) {		/* [s]: may fault or reach MMIO */
		*rexb = s >= 8;
		if ((s & 7) == 5) {		/* [rbp/r13] needs a disp8 */
			put1(p, (uint8_t)(0x40 | (reg & 7) << 3 | 5));
			put1(p, 0);
		} else {
			put1(p, (uint8_t)((reg & 7) << 3 | (s & 7)));
		}
		return;
	}
	*rexb = 1;
	switch (rnd(p) % 4) {
	case 0: d = 0xff0 + (uint32_t)(rnd(p) % 16); break;
	case 1: d = (uint32_t)(rnd(p) % (NDATA - 16)); break;
	default: d = (uint32_t)(rnd(p) % (NDATA / 16)) * 16; break;
	}
	put1(p, (uint8_t)(0x80 | (reg & 7) << 3 | 7));	/* [r15 + disp32] */
	for (int k = 0; k < 4; k++)
		put1(p, d >> (8 * k));
}

static void
gen_one(struct prog *p)
{
	const struct form *f = &forms[rnd(p) % (sizeof(forms) /
	    sizeof(forms[0]))];
	unsigned x = (unsigned)(rnd(p) % 16), y = (unsigned)(rnd(p) % 16);
	bool mem, w = rnd(p) & 1;
	uint8_t rex, rexb = 0, *rexp;
	size_t at;

	switch (f->kind) {
	case K_STM: case K_LDM: mem = true; break;
	case K_SHIFT: case K_MSK: mem = false; break;
	default: mem = rnd(p) % 3 == 0; break;
	}
	if (f->kind == K_MSK || ((f->kind == K_MOVD || f->kind == K_MOVDF) &&
	    !mem)) {
		/* one side is a general register */
		if (f->kind == K_MSK)
			x = dreg(p);
		else
			y = dreg(p);
	}
	if (f->kind == K_SHIFT) {
		static const uint8_t ext[3][4] = { { 2, 4, 6, 2 },
		    { 2, 4, 6, 6 }, { 2, 3, 6, 7 } };

		x = ext[f->op - 0x71][rnd(p) % 4];
	}
	if (f->pfx)
		put1(p, f->pfx);
	at = p->n;
	put1(p, 0x40);		/* REX, filled in below */
	put1(p, 0x0f);
	put1(p, f->op);
	if (mem)
		gen_mem(p, x, &rexb);
	else
		put1(p, (uint8_t)(0xc0 | (x & 7) << 3 | (y & 7)));
	if (f->kind == K_SHIFT || f->kind == K_IMM)
		put1(p, (uint8_t)(rnd(p) % 4 ? rnd(p) % 20 : rnd(p)));
	rex = (uint8_t)(0x40 | ((f->kind == K_MOVD || f->kind == K_MOVDF) &&
	    w ? 8 : 0) | (x >= 8 ? 4 : 0) |
	    (mem ? rexb : y >= 8 ? 1 : 0));
	rexp = &p->b[at];
	*rexp = rex;
}

static void
gen(struct prog *p, uint64_t seed)
{
	size_t top;
	int32_t rel;

	p->n = 0;
	p->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	p->cr0_or = 0;
	p->cr4_clear = 0;
	if (rnd(p) % 16 == 0)
		p->cr0_or = rnd(p) & 1 ? CR0_TS : CR0_EM;
	else if (rnd(p) % 16 == 0)
		p->cr4_clear = CR4_OSFXSR;
	put1(p, 0x41); put1(p, 0xbe);		/* mov r14d, imm32 */
	put1(p, (uint8_t)(1 + rnd(p) % 6)); put1(p, 0); put1(p, 0); put1(p, 0);
	top = p->n;
	for (int k = 0, len = 1 + (int)(rnd(p) % 30); k < len; k++)
		gen_one(p);
	put1(p, 0x41); put1(p, 0xff); put1(p, 0xce);	/* dec r14d */
	put1(p, 0x0f); put1(p, 0x85);			/* jnz top */
	rel = (int32_t)(top - (p->n + 4));
	memcpy(p->b + p->n, &rel, 4);
	p->n += 4;
	put1(p, 0xf4);
}

struct result {
	enum vm_exit_kind k;
	struct cpu_state st;
	uint8_t vec;
	uint8_t data[NDATA];
};

static void
run(const struct prog *p, uint64_t seed, bool generic, struct result *r)
{
	struct prog q = { .rng = seed * 31 + 7 };
	struct tvm *t = tvm_new(16 << 20);

	((struct bt_cpu *)t->vcpu->accel)->generic = generic;
	tvm_put(t, CODE, p->b, p->n);
	for (int k = 0; k < NDATA; k++)
		t->vm->ram[DATA + k] = (uint8_t)rnd(&q);
	t->vm->ram[TVM_FAULT_VEC] = 0xff;
	tvm_long_mode(t, &r->st, CODE);
	for (int k = 0; k < 16; k++)
		r->st.gpr[k] = rnd(&q) % 3 ? DATA + rnd(&q) % NDATA : rnd(&q);
	r->st.gpr[R_RSP] = 0x80000;
	r->st.gpr[R_R15] = DATA;
	r->st.cr0 |= p->cr0_or;
	r->st.cr4 &= ~p->cr4_clear;
	for (int k = 160; k < 160 + 256; k++)
		r->st.fpu.fxsave[k] = (uint8_t)rnd(&q);
	bt_accel_ops.set_state(t->vcpu, &r->st);
	r->k = tvm_run(t, 5000);
	bt_accel_ops.get_state(t->vcpu, &r->st);
	r->vec = t->vm->ram[TVM_FAULT_VEC];
	memcpy(r->data, t->vm->ram + DATA, NDATA);
	tvm_free(t);
}

static bool
same(uint64_t seed)
{
	static struct prog p;
	static struct result a, b;

	gen(&p, seed);
	run(&p, seed, true, &a);
	run(&p, seed, false, &b);
	if (a.k == b.k && a.vec == b.vec && a.st.rip == b.st.rip &&
	    a.st.rflags == b.st.rflags &&
	    memcmp(a.st.gpr, b.st.gpr, sizeof(a.st.gpr)) == 0 &&
	    memcmp(a.st.fpu.fxsave, b.st.fpu.fxsave, 416) == 0 &&
	    memcmp(a.data, b.data, sizeof(a.data)) == 0)
		return true;
	fprintf(stderr, "bt sse: seed %llu differs: exit %d/%d vector %d/%d "
	    "rip %llx/%llx rflags %llx/%llx\n", (unsigned long long)seed,
	    a.k, b.k, a.vec, b.vec, (unsigned long long)a.st.rip,
	    (unsigned long long)b.st.rip, (unsigned long long)a.st.rflags,
	    (unsigned long long)b.st.rflags);
	for (int k = 0; k < 16; k++)
		if (a.st.gpr[k] != b.st.gpr[k])
			fprintf(stderr, "  r%d %llx (generic) %llx (fast)\n",
			    k, (unsigned long long)a.st.gpr[k],
			    (unsigned long long)b.st.gpr[k]);
	for (int k = 0; k < 416; k++)
		if (a.st.fpu.fxsave[k] != b.st.fpu.fxsave[k]) {
			fprintf(stderr, "  FXSAVE image differs at %d\n", k);
			break;
		}
	if (memcmp(a.data, b.data, sizeof(a.data)) != 0)
		fprintf(stderr, "  data pages differ\n");
	fprintf(stderr, "  code:");
	for (size_t k = 0; k < p.n; k++)
		fprintf(stderr, " %02x", p.b[k]);
	fprintf(stderr, "\n");
	return false;
}

Test(bt_sse, specialized_handlers_match_the_generic_path)
{
	const char *it = getenv("BT_SSE_ITERS"), *sd = getenv("BT_SSE_SEED");
	long iters = it ? atol(it) : 400;
	uint64_t seed0 = sd ? strtoull(sd, NULL, 0) : 1;
	int bad = 0;

	if (sd != NULL)
		iters = 1;
	for (long s = 0; s < iters && bad < 3; s++) {
		if (!same(seed0 + (uint64_t)s))
			bad++;
	}
	cr_assert_eq(bad, 0, "%d programs differ (see stderr)", bad);
}

/* The test above must exercise the fast handlers, not only fall back. */
Test(bt_sse, common_forms_get_a_specialized_handler)
{
	static const uint8_t code[][8] = {
		{ 0x66, 0x0f, 0xef, 0xc1 },		/* pxor xmm0, xmm1 */
		{ 0x0f, 0x29, 0x07 },			/* movaps [rdi], xmm0 */
		{ 0xf3, 0x0f, 0x6f, 0x06 },		/* movdqu xmm0, [rsi] */
		{ 0x66, 0x0f, 0xd7, 0xc0 },		/* pmovmskb eax, xmm0 */
		{ 0x66, 0x0f, 0x70, 0xc0, 0x1b },	/* pshufd */
	};
	struct tvm *t = tvm_new(16 << 20);
	struct bt_cpu *c = t->vcpu->accel;
	struct cpu_state st;

	tvm_long_mode(t, &st, CODE);
	bt_accel_ops.set_state(t->vcpu, &st);
	for (size_t k = 0; k < sizeof(code) / sizeof(code[0]); k++) {
		struct bt_insn i;
		uint32_t err;
		uint64_t lin;

		tvm_put(t, CODE, code[k], sizeof(code[k]));
		c->generic = 0;
		cr_assert_eq(bt_decode(c, CODE, &i, &err, &lin), 0);
		cr_assert_neq((void *)i.fn, (void *)bt_x_simd, "form %zu", k);
		c->generic = 1;
		cr_assert_eq(bt_decode(c, CODE, &i, &err, &lin), 0);
		cr_assert_eq((void *)i.fn, (void *)bt_x_simd, "form %zu", k);
	}
	tvm_free(t);
}
