/*
 * Differential harness for the x87/SSE library (hv/bt/simd.h): the host
 * CPU executes the same instruction on the same state and is the oracle.
 * An instruction is re-encoded from its struct simd_op (memory operand
 * always [rdi], pointing at a 512-byte buffer), placed in an executable
 * page followed by RET, and called from a trampoline that loads the
 * FXSAVE image, the general registers and the flags from a struct and
 * stores them back.  Shared by the test_bt_simd*.c binaries.
 */
#ifndef TEST_BT_SIMD_HARNESS_H
#define TEST_BT_SIMD_HARNESS_H

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "hv/bt/simd.h"

/* Each test binary uses a different part of the harness. */
#pragma GCC diagnostic ignored "-Wunused-function"

struct tstate {
	uint8_t fx[512] __attribute__((aligned(16)));	/* 0 */
	uint64_t gpr[16];				/* 512 */
	uint64_t rflags;				/* 640 */
	uint64_t code;					/* 648 */
	uint8_t mem[512] __attribute__((aligned(16)));	/* 656 */
};

_Static_assert(__builtin_offsetof(struct tstate, mem) == 656, "layout");

void tramp_run(struct tstate *s);
__asm__(
	".text\n"
	".globl tramp_run\n"
	"tramp_run:\n"
	"push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n"
	"push %r15\n push %rdi\n"
	"fxrstor64 (%rdi)\n"
	"pushq 648(%rdi)\n"
	"pushq 640(%rdi)\n popfq\n"
	"mov 512(%rdi),%rax\n mov 520(%rdi),%rcx\n mov 528(%rdi),%rdx\n"
	"mov 536(%rdi),%rbx\n mov 552(%rdi),%rbp\n mov 560(%rdi),%rsi\n"
	"mov 576(%rdi),%r8\n mov 584(%rdi),%r9\n mov 592(%rdi),%r10\n"
	"mov 600(%rdi),%r11\n mov 608(%rdi),%r12\n mov 616(%rdi),%r13\n"
	"mov 624(%rdi),%r14\n mov 632(%rdi),%r15\n"
	"mov 568(%rdi),%rdi\n"
	"call *(%rsp)\n"
	"pushfq\n push %rdi\n"
	"mov 24(%rsp),%rdi\n"
	"mov %rax,512(%rdi)\n mov %rcx,520(%rdi)\n mov %rdx,528(%rdi)\n"
	"mov %rbx,536(%rdi)\n mov %rbp,552(%rdi)\n mov %rsi,560(%rdi)\n"
	"mov %r8,576(%rdi)\n mov %r9,584(%rdi)\n mov %r10,592(%rdi)\n"
	"mov %r11,600(%rdi)\n mov %r12,608(%rdi)\n mov %r13,616(%rdi)\n"
	"mov %r14,624(%rdi)\n mov %r15,632(%rdi)\n"
	"pop %rax\n mov %rax,568(%rdi)\n"
	"pop %rax\n mov %rax,640(%rdi)\n"
	"add $8,%rsp\n"
	"fxsave64 (%rdi)\n"
	"pushq $0x1f80\n ldmxcsr (%rsp)\n add $8,%rsp\n"
	"pop %rdi\n"
	"pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
	"fninit\n"
	"ret\n");

static uint8_t *h_code;
static uint64_t h_rng;

static uint64_t
h_rand(void)
{
	/* xorshift64*: reproducible from the printed seed */
	h_rng ^= h_rng >> 12;
	h_rng ^= h_rng << 25;
	h_rng ^= h_rng >> 27;
	return h_rng * 0x2545f4914f6cdd1dull;
}

static void
h_seed(uint64_t seed)
{
	const char *e = getenv("BT_SIMD_SEED");

	h_rng = e ? strtoull(e, NULL, 0) : seed;
	if (!h_rng)
		h_rng = 1;
}

/* Iterations: small by default, BT_SIMD_SOAK=n multiplies. */
static int
h_iters(int base)
{
	const char *e = getenv("BT_SIMD_SOAK");

	return e ? base * atoi(e) : base;
}

static void
h_init(void)
{
	if (h_code)
		return;
	h_code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(h_code != MAP_FAILED);
}

/* Register numbers safe as operands: never RSP, never RDI (the base). */
static uint8_t
h_reg(void)
{
	static const uint8_t ok[] = { 0, 1, 2, 3, 5, 6, 8, 9, 10, 11, 12,
				      13, 14, 15 };

	return ok[h_rand() % sizeof(ok)];
}

static const uint32_t h_f32[] = {
	0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000,
	0xff800000, 0x7fc00000, 0xffc00000, 0x7fa00000, 0x00000001,
	0x807fffff, 0x00800000, 0x7f7fffff, 0x4f000000, 0xcf000000,
	0x5f000000, 0x3effffff, 0x3f000000, 0x4b000000, 0x7fffffff,
	0x80000001, 0x40490fdb,
};
static const uint64_t h_f64[] = {
	0x0000000000000000ull, 0x8000000000000000ull, 0x3ff0000000000000ull,
	0xbff0000000000000ull, 0x7ff0000000000000ull, 0xfff0000000000000ull,
	0x7ff8000000000000ull, 0xfff8000000000000ull, 0x7ff4000000000000ull,
	0x0000000000000001ull, 0x800fffffffffffffull, 0x0010000000000000ull,
	0x7fefffffffffffffull, 0x41e0000000000000ull, 0xc1e0000000000000ull,
	0x43e0000000000000ull, 0xc3e0000000000000ull, 0x3fe0000000000000ull,
	0x4330000000000000ull, 0x47efffffe0000000ull, 0x3810000000000000ull,
	0x400921fb54442d18ull,
};

/* 16 bytes mixing random bits with special float/double/int values. */
static void
h_fill(uint8_t *p, int len)
{
	for (int i = 0; i < len; i += 8) {
		uint64_t v = h_rand();
		unsigned k = h_rand() % 10;

		if (k == 0)
			v = h_f64[h_rand() % (sizeof(h_f64) / 8)];
		else if (k == 1)
			v = h_f32[h_rand() % (sizeof(h_f32) / 4)] |
			    (uint64_t)h_f32[h_rand() % (sizeof(h_f32) / 4)]
			    << 32;
		else if (k == 2)
			v = (h_rand() & 1) ? 0 : ~0ull;
		else if (k == 3)
			v = (int64_t)(int16_t)h_rand();
		else if (k == 4)
			v = 0x3ff0000000000000ull + (h_rand() & 0xfffffffffull);
		else if (k == 5)
			v = 0x3f8000003f800000ull + (h_rand() & 0xfff000fffull);
		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* A random but sane vCPU: all exceptions masked, random RC/DAZ/FTZ. */
static void
h_state(struct tstate *s)
{
	uint32_t mxcsr = 0x1f80 | ((h_rand() & 3) << 13);
	uint16_t fcw = 0x037f, fsw;

	memset(s, 0, sizeof(*s));
	if (h_rand() % 4 == 0)
		mxcsr |= (1u << 6);
	if (h_rand() % 4 == 0)
		mxcsr |= (1u << 15);
	if (h_rand() % 4 == 0)
		fcw = (fcw & ~0xf00) | ((h_rand() & 3) << 10) |
		      ((h_rand() & 1) ? 0x300 : 0x200 * (h_rand() & 1));
	memcpy(s->fx, &fcw, 2);
	/* random TOP and condition codes; flags only under their masks */
	fsw = (h_rand() & 0x7f3f) & ~0x80;
	memcpy(s->fx + 2, &fsw, 2);
	s->fx[4] = h_rand();
	memcpy(s->fx + 24, &mxcsr, 4);
	for (int i = 0; i < 8; i++)
		h_fill(s->fx + 32 + 16 * i, 10);
	for (int i = 0; i < 16; i++)
		h_fill(s->fx + 160 + 16 * i, 16);
	for (int i = 0; i < 16; i++) {
		s->gpr[i] = h_rand();
		if (h_rand() % 4 == 0)
			s->gpr[i] = h_f64[h_rand() % (sizeof(h_f64) / 8)];
		if (h_rand() % 4 == 0)
			s->gpr[i] = (int64_t)(int32_t)h_rand();
	}
	s->rflags = 0x202 | (h_rand() & 0x8d5);
	h_fill(s->mem, 512);
}

/* Encode op as machine code ([rdi] for memory) followed by RET. */
static int
h_encode(const struct simd_op *op, uint8_t *p)
{
	int n = 0;
	uint8_t rex = 0x40;

	if (op->map == SIMD_MAP_X87) {
		if (op->opcode == 0x9b) {
			p[n++] = 0x9b;
		} else {
			if (op->op_size == 2)
				p[n++] = 0x66;
			if (op->rex_w)
				p[n++] = 0x48;
			p[n++] = op->opcode;
			p[n++] = (op->mod << 6) | ((op->reg & 7) << 3) |
				 (op->mod == 3 ? (op->rm & 7) : 7);
		}
		return n;
	}
	if (op->pfx == SIMD_PFX_66)
		p[n++] = 0x66;
	else if (op->pfx == SIMD_PFX_F3)
		p[n++] = 0xf3;
	else if (op->pfx == SIMD_PFX_F2)
		p[n++] = 0xf2;
	if (op->rex_w)
		rex |= 8;
	if (op->reg & 8)
		rex |= 4;
	if (op->mod == 3 && (op->rm & 8))
		rex |= 1;
	if (rex != 0x40)
		p[n++] = rex;
	p[n++] = 0x0f;
	if (op->map == SIMD_MAP_0F38)
		p[n++] = 0x38;
	else if (op->map == SIMD_MAP_0F3A)
		p[n++] = 0x3a;
	p[n++] = op->opcode;
	if (op->map == SIMD_MAP_0F && op->opcode == 0x77)
		return n;		/* EMMS has no ModRM */
	p[n++] = (op->mod << 6) | ((op->reg & 7) << 3) |
		 (op->mod == 3 ? (op->rm & 7) : 7);
	return n;
}

/* Offset of the memory operand from the aligned buffer (alignment tests). */
static unsigned h_mem_off;

/* An unmasked SIMD exception natively: #XM arrives as SIGFPE. */
static sigjmp_buf h_trap_env;
static volatile uint32_t h_trap_mxcsr;

static void
h_trap(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;

	(void)sig;
	(void)si;
	h_trap_mxcsr = uc->uc_mcontext.fpregs->mxcsr;
	siglongjmp(h_trap_env, 1);
}

/* Run natively; returns true when it trapped (#XM), MXCSR in h_trap_mxcsr. */
static bool
h_native(struct tstate *s, const struct simd_op *op, bool imm)
{
	static bool installed;
	int n = h_encode(op, h_code);

	if (!installed) {
		struct sigaction sa = { .sa_sigaction = h_trap,
					.sa_flags = SA_SIGINFO };

		sigaction(SIGFPE, &sa, NULL);
		installed = true;
	}
	if (imm)
		h_code[n++] = op->imm8;
	h_code[n++] = 0xc3;
	s->code = (uint64_t)(uintptr_t)h_code;
	s->gpr[7] = (uint64_t)(uintptr_t)s->mem + h_mem_off;
	if (sigsetjmp(h_trap_env, 1)) {
		uint32_t def = 0x1f80;

		__asm__ volatile("fninit\n\tldmxcsr %0" : : "m"(def));
		return true;
	}
	tramp_run(s);
	return false;
}

static void
h_dump(const char *what, const uint8_t *p, int len)
{
	fprintf(stderr, "  %s:", what);
	for (int i = 0; i < len; i++)
		fprintf(stderr, "%s%02x", (i % 16) ? "" : " ", p[i]);
	fprintf(stderr, "\n");
}

static void
h_describe(const struct simd_op *op, const struct tstate *in)
{
	uint8_t code[16];
	int n = h_encode(op, code);

	fprintf(stderr, "insn map %d pfx %d opc %02x mod %d reg %d rm %d w %d "
		"imm %02x bytes", op->map, op->pfx, op->opcode, op->mod,
		op->reg, op->rm, op->rex_w, op->imm8);
	for (int i = 0; i < n; i++)
		fprintf(stderr, " %02x", code[i]);
	fprintf(stderr, "\n");
	if (in) {
		h_dump("in fx", in->fx, 32);
		h_dump("in xmm reg", in->fx + 160 + 16 * (op->reg & 15), 16);
		h_dump("in xmm rm", in->fx + 160 + 16 * (op->rm & 15), 16);
		h_dump("in st", in->fx + 32, 128);
		h_dump("in mem", in->mem, 16);
	}
}

/* Which FXSAVE bytes to compare: not FOP/FIP/FDP, not reserved bytes. */
static bool
h_fx_cmp_byte(int i)
{
	if ((i >= 6 && i < 24) || (i >= 28 && i < 32))
		return false;
	if (i >= 32 && i < 160)
		return (i - 32) % 16 < 10;
	return i < 416;
}

struct h_result {
	int vec;		/* what simd_exec returned */
	bool ok;		/* matched */
};

static struct simd_ctx
h_ctx(struct cpu_fpu *fpu, struct tstate *s)
{
	return (struct simd_ctx){
		.fpu = fpu, .gpr = s->gpr, .rflags = &s->rflags,
		.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG,
		.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT,
	};
}

/*
 * Run op on both and compare.  flag_mask: rflags bits to compare.
 * Returns false (after printing everything) on a mismatch.
 */
static bool
h_check(const struct simd_op *op, const struct tstate *in,
	uint64_t flag_mask, uint64_t seed)
{
	static struct tstate nat, emu;
	static struct cpu_fpu fpu;
	static uint8_t buf[512];
	struct simd_mem m;
	struct simd_ctx c;
	bool ok = true, trapped;
	int vec;

	if (simd_decode(op, &m) != 0) {
		h_describe(op, NULL);
		fprintf(stderr, "  decode refused\n");
		return false;
	}
	nat = *in;
	emu = *in;
	trapped = h_native(&nat, op, m.has_imm8);
	memcpy(fpu.fxsave, in->fx, 512);
	for (int i = 0; i < 8; i++)
		memset(fpu.fxsave + 32 + 16 * i + 10, 0, 6);
	c = h_ctx(&fpu, &emu);
	emu.gpr[7] = nat.gpr[7];
	/* the library sees only the bytes simd_decode asked for */
	memset(buf, 0xa5, sizeof(buf));
	if (op->mod != 3 && m.read)
		memcpy(buf, emu.mem, m.size);
	vec = simd_exec(&c, op, buf);
	if (vec == 0 && op->mod != 3 && m.write)
		memcpy(emu.mem, buf, m.size);
	if (trapped) {
		/* #XM: flags recorded, everything else as it was */
		nat = *in;
		nat.gpr[7] = emu.gpr[7];
		memcpy(nat.fx + 24, (const void *)&h_trap_mxcsr, 4);
		/*
		 * With underflow/overflow unmasked, PE depends on exactness
		 * at unbounded exponent, which the library does not model.
		 */
		if (((h_trap_mxcsr & 0x10) && !(h_trap_mxcsr & 0x800)) ||
		    ((h_trap_mxcsr & 0x08) && !(h_trap_mxcsr & 0x400))) {
			nat.fx[24] &= ~0x20;
			fpu.fxsave[24] &= ~0x20;
		}
		if (vec != 19) {
			fprintf(stderr, "  native #XM, simd_exec returned %d\n",
				vec);
			ok = false;
		}
	} else if (vec != 0) {
		fprintf(stderr, "  simd_exec returned vector %d\n", vec);
		ok = false;
	}
	for (int i = 0; i < 512 && ok; i++)
		if (h_fx_cmp_byte(i) && fpu.fxsave[i] != nat.fx[i]) {
			fprintf(stderr, "  fxsave byte %d differs\n", i);
			ok = false;
		}
	for (int i = 0; i < 16 && ok; i++)
		if (i != 7 && i != 4 && emu.gpr[i] != nat.gpr[i]) {
			fprintf(stderr, "  gpr %d: emu %016" PRIx64 " native %016"
				PRIx64 "\n", i, emu.gpr[i], nat.gpr[i]);
			ok = false;
		}
	if (ok && ((emu.rflags ^ nat.rflags) & flag_mask)) {
		fprintf(stderr, "  rflags: emu %" PRIx64 " native %" PRIx64 "\n",
			emu.rflags, nat.rflags);
		ok = false;
	}
	for (int i = 0; i < 512 && ok; i++) {
		/* an FXSAVE image holds host-specific FIP/FDP/MXCSR_MASK */
		bool fxsave = op->map == SIMD_MAP_0F && op->opcode == 0xae &&
			      (op->reg & 7) == 0;

		if (emu.mem[i] != nat.mem[i] &&
		    (!fxsave || h_fx_cmp_byte(i) || i >= 464)) {
			fprintf(stderr, "  memory byte %d differs\n", i);
			ok = false;
		}
	}
	if (!ok) {
		h_describe(op, in);
		h_dump("emu fx", fpu.fxsave, 32);
		h_dump("nat fx", nat.fx, 32);
		h_dump("emu xmm reg", fpu.fxsave + 160 + 16 * (op->reg & 15), 16);
		h_dump("nat xmm reg", nat.fx + 160 + 16 * (op->reg & 15), 16);
		h_dump("emu xmm rm", fpu.fxsave + 160 + 16 * (op->rm & 15), 16);
		h_dump("nat xmm rm", nat.fx + 160 + 16 * (op->rm & 15), 16);
		h_dump("emu st", fpu.fxsave + 32, 128);
		h_dump("nat st", nat.fx + 32, 128);
		h_dump("emu mem", emu.mem, 16);
		h_dump("nat mem", nat.mem, 16);
		fprintf(stderr, "  seed %" PRIu64 " (BT_SIMD_SEED to replay)\n",
			seed);
	}
	return ok;
}

#endif
