/*
 * The x86 decoder: prefixes, REX, the one-byte and 0F maps, ModRM/SIB and
 * immediates, producing a struct bt_insn with its handler chosen.
 *
 * Why our own decoder rather than Zydis: the output we need is not a
 * generic operand list but an executable record (handler pointer plus the
 * ModRM pieces pre-split into base/index/scale/disp the way the handlers
 * compute addresses), and the x87/SSE half must be handed to simd.h in
 * its own shape.  Zydis would leave us translating its representation
 * into ours for every instruction anyway; the length/prefix logic is the
 * small part and is checked in the tests against the host CPU.
 */
#include "hv/bt/bt_internal.h"

#include <pthread.h>

#include "hv/vm.h"

enum {
	F_MODRM = 1 << 0,
	F_BYTE = 1 << 1,	/* 8-bit operand */
	F_I8 = 1 << 2,		/* imm8, sign-extended */
	F_I16 = 1 << 3,		/* imm16, zero-extended */
	F_IZ = 1 << 4,		/* imm16/32 by operand size (sign-extended) */
	F_IV = 1 << 5,		/* imm16/32/64 by operand size */
	F_ENTER = 1 << 6,	/* imm16 + imm8 */
	F_FAR = 1 << 7,		/* offset (z) + selector */
	F_MOFFS = 1 << 8,	/* offset of address size */
	F_D64 = 1 << 9,		/* 64-bit operand by default in long mode */
	F_F64 = 1 << 10,	/* always 64-bit in long mode */
	F_INV64 = 1 << 11,	/* #UD in 64-bit mode */
	F_END = 1 << 12,	/* ends a block */
	F_REL = 1 << 13,	/* immediate is a branch displacement */
	F_VALID = 1 << 14,
};

struct opinfo {
	bt_fn *fn;
	uint32_t f;
};

static struct opinfo op1[256], op2[256];
static pthread_once_t decode_once = PTHREAD_ONCE_INIT;

static void
set1(unsigned lo, unsigned hi, bt_fn *fn, uint32_t f)
{
	for (unsigned o = lo; o <= hi; o++)
		op1[o] = (struct opinfo){ fn, f | F_VALID };
}

static void
set2(unsigned lo, unsigned hi, bt_fn *fn, uint32_t f)
{
	for (unsigned o = lo; o <= hi; o++)
		op2[o] = (struct opinfo){ fn, f | F_VALID };
}

static void
decode_init(void)
{
	for (unsigned o = 0; o < 0x40; o += 8) {
		set1(o + 0, o + 0, bt_x_alu, F_MODRM | F_BYTE);
		set1(o + 1, o + 1, bt_x_alu, F_MODRM);
		set1(o + 2, o + 2, bt_x_alu, F_MODRM | F_BYTE);
		set1(o + 3, o + 3, bt_x_alu, F_MODRM);
		set1(o + 4, o + 4, bt_x_alu, F_BYTE | F_I8);
		set1(o + 5, o + 5, bt_x_alu, F_IZ);
	}
	set1(0x06, 0x06, bt_x_pushseg, F_INV64);
	set1(0x07, 0x07, bt_x_popseg, F_INV64);
	set1(0x0e, 0x0e, bt_x_pushseg, F_INV64);
	set1(0x16, 0x16, bt_x_pushseg, F_INV64);
	set1(0x17, 0x17, bt_x_popseg, F_INV64 | F_END);
	set1(0x1e, 0x1e, bt_x_pushseg, F_INV64);
	set1(0x1f, 0x1f, bt_x_popseg, F_INV64);
	set1(0x27, 0x27, bt_x_bcd, F_INV64);
	set1(0x2f, 0x2f, bt_x_bcd, F_INV64);
	set1(0x37, 0x37, bt_x_bcd, F_INV64);
	set1(0x3f, 0x3f, bt_x_bcd, F_INV64);
	set1(0x40, 0x4f, bt_x_incdec, F_INV64);
	set1(0x50, 0x57, bt_x_push, F_D64);
	set1(0x58, 0x5f, bt_x_pop, F_D64);
	set1(0x60, 0x60, bt_x_pusha, F_INV64);
	set1(0x61, 0x61, bt_x_popa, F_INV64);
	set1(0x63, 0x63, bt_x_movsxd, F_MODRM);
	set1(0x68, 0x68, bt_x_push_imm, F_IZ | F_D64);
	set1(0x69, 0x69, bt_x_imul, F_MODRM | F_IZ);
	set1(0x6a, 0x6a, bt_x_push_imm, F_I8 | F_D64);
	set1(0x6b, 0x6b, bt_x_imul, F_MODRM | F_I8);
	set1(0x6c, 0x6c, bt_x_string, F_BYTE);
	set1(0x6d, 0x6d, bt_x_string, 0);
	set1(0x6e, 0x6e, bt_x_string, F_BYTE);
	set1(0x6f, 0x6f, bt_x_string, 0);
	set1(0x70, 0x7f, bt_x_jcc, F_I8 | F_REL | F_F64 | F_END);
	set1(0x80, 0x80, bt_x_alu_imm, F_MODRM | F_BYTE | F_I8);
	set1(0x81, 0x81, bt_x_alu_imm, F_MODRM | F_IZ);
	set1(0x82, 0x82, bt_x_alu_imm, F_MODRM | F_BYTE | F_I8 | F_INV64);
	set1(0x83, 0x83, bt_x_alu_imm, F_MODRM | F_I8);
	set1(0x84, 0x84, bt_x_test, F_MODRM | F_BYTE);
	set1(0x85, 0x85, bt_x_test, F_MODRM);
	set1(0x86, 0x86, bt_x_xchg, F_MODRM | F_BYTE);
	set1(0x87, 0x87, bt_x_xchg, F_MODRM);
	set1(0x88, 0x88, bt_x_mov, F_MODRM | F_BYTE);
	set1(0x89, 0x89, bt_x_mov, F_MODRM);
	set1(0x8a, 0x8a, bt_x_mov, F_MODRM | F_BYTE);
	set1(0x8b, 0x8b, bt_x_mov, F_MODRM);
	set1(0x8c, 0x8c, bt_x_movseg, F_MODRM);
	set1(0x8d, 0x8d, bt_x_lea, F_MODRM);
	set1(0x8e, 0x8e, bt_x_movseg, F_MODRM);
	set1(0x8f, 0x8f, bt_x_pop_rm, F_MODRM | F_D64);
	set1(0x90, 0x97, bt_x_xchg, 0);
	set1(0x98, 0x98, bt_x_cbw, 0);
	set1(0x99, 0x99, bt_x_cwd, 0);
	set1(0x9a, 0x9a, bt_x_callf, F_FAR | F_INV64 | F_END);
	set1(0x9b, 0x9b, bt_x_simd, 0);
	set1(0x9c, 0x9c, bt_x_pushf, F_D64);
	set1(0x9d, 0x9d, bt_x_popf, F_D64 | F_END);
	set1(0x9e, 0x9e, bt_x_sahf, 0);
	set1(0x9f, 0x9f, bt_x_lahf, 0);
	set1(0xa0, 0xa0, bt_x_mov_moffs, F_MOFFS | F_BYTE);
	set1(0xa1, 0xa1, bt_x_mov_moffs, F_MOFFS);
	set1(0xa2, 0xa2, bt_x_mov_moffs, F_MOFFS | F_BYTE);
	set1(0xa3, 0xa3, bt_x_mov_moffs, F_MOFFS);
	set1(0xa4, 0xa4, bt_x_string, F_BYTE);
	set1(0xa5, 0xa5, bt_x_string, 0);
	set1(0xa6, 0xa6, bt_x_string, F_BYTE);
	set1(0xa7, 0xa7, bt_x_string, 0);
	set1(0xa8, 0xa8, bt_x_test, F_BYTE | F_I8);
	set1(0xa9, 0xa9, bt_x_test, F_IZ);
	set1(0xaa, 0xaa, bt_x_string, F_BYTE);
	set1(0xab, 0xab, bt_x_string, 0);
	set1(0xac, 0xac, bt_x_string, F_BYTE);
	set1(0xad, 0xad, bt_x_string, 0);
	set1(0xae, 0xae, bt_x_string, F_BYTE);
	set1(0xaf, 0xaf, bt_x_string, 0);
	set1(0xb0, 0xb7, bt_x_mov_rimm, F_BYTE | F_I8);
	set1(0xb8, 0xbf, bt_x_mov_rimm, F_IV);
	set1(0xc0, 0xc0, bt_x_shift, F_MODRM | F_BYTE | F_I8);
	set1(0xc1, 0xc1, bt_x_shift, F_MODRM | F_I8);
	set1(0xc2, 0xc2, bt_x_ret, F_I16 | F_F64 | F_END);
	set1(0xc3, 0xc3, bt_x_ret, F_F64 | F_END);
	set1(0xc4, 0xc5, bt_x_lxs, F_MODRM | F_INV64);
	set1(0xc6, 0xc6, bt_x_mov_imm, F_MODRM | F_BYTE | F_I8);
	set1(0xc7, 0xc7, bt_x_mov_imm, F_MODRM | F_IZ);
	set1(0xc8, 0xc8, bt_x_enter, F_ENTER | F_D64);
	set1(0xc9, 0xc9, bt_x_leave, F_D64);
	set1(0xca, 0xca, bt_x_retf, F_I16 | F_END);
	set1(0xcb, 0xcb, bt_x_retf, F_END);
	set1(0xcc, 0xcc, bt_x_int, F_END);
	set1(0xcd, 0xcd, bt_x_int, F_I8 | F_END);
	set1(0xce, 0xce, bt_x_int, F_INV64 | F_END);
	set1(0xcf, 0xcf, bt_x_iret, F_END);
	set1(0xd0, 0xd0, bt_x_shift, F_MODRM | F_BYTE);
	set1(0xd1, 0xd1, bt_x_shift, F_MODRM);
	set1(0xd2, 0xd2, bt_x_shift, F_MODRM | F_BYTE);
	set1(0xd3, 0xd3, bt_x_shift, F_MODRM);
	set1(0xd4, 0xd5, bt_x_bcd, F_I8 | F_INV64);
	set1(0xd7, 0xd7, bt_x_xlat, 0);
	set1(0xd8, 0xdf, bt_x_simd, F_MODRM);
	set1(0xe0, 0xe3, bt_x_loop, F_I8 | F_REL | F_F64 | F_END);
	set1(0xe4, 0xe4, bt_x_io, F_BYTE | F_I8);
	set1(0xe5, 0xe5, bt_x_io, F_I8);
	set1(0xe6, 0xe6, bt_x_io, F_BYTE | F_I8);
	set1(0xe7, 0xe7, bt_x_io, F_I8);
	set1(0xe8, 0xe8, bt_x_call, F_IZ | F_REL | F_F64 | F_END);
	set1(0xe9, 0xe9, bt_x_jmp, F_IZ | F_REL | F_F64 | F_END);
	set1(0xea, 0xea, bt_x_jmpf, F_FAR | F_INV64 | F_END);
	set1(0xeb, 0xeb, bt_x_jmp, F_I8 | F_REL | F_F64 | F_END);
	set1(0xec, 0xec, bt_x_io, F_BYTE);
	set1(0xed, 0xed, bt_x_io, 0);
	set1(0xee, 0xee, bt_x_io, F_BYTE);
	set1(0xef, 0xef, bt_x_io, 0);
	set1(0xf1, 0xf1, bt_x_int, F_END);
	set1(0xf4, 0xf4, bt_x_hlt, F_END);
	set1(0xf5, 0xf5, bt_x_flagop, 0);
	set1(0xf6, 0xf6, bt_x_grp3, F_MODRM | F_BYTE);
	set1(0xf7, 0xf7, bt_x_grp3, F_MODRM);
	set1(0xf8, 0xf9, bt_x_flagop, 0);
	set1(0xfa, 0xfa, bt_x_cli, 0);
	set1(0xfb, 0xfb, bt_x_sti, F_END);
	set1(0xfc, 0xfd, bt_x_flagop, 0);
	set1(0xfe, 0xfe, bt_x_incdec, F_MODRM | F_BYTE);
	set1(0xff, 0xff, bt_x_grp5, F_MODRM);

	set2(0x00, 0x00, bt_x_grp6, F_MODRM | F_END);
	set2(0x01, 0x01, bt_x_grp7, F_MODRM | F_END);
	set2(0x02, 0x02, bt_x_lar, F_MODRM);
	set2(0x03, 0x03, bt_x_lsl, F_MODRM);
	set2(0x05, 0x05, bt_x_syscall, F_END);
	set2(0x06, 0x06, bt_x_clts, F_END);
	set2(0x07, 0x07, bt_x_sysret, F_END);
	set2(0x08, 0x09, bt_x_invd, 0);
	set2(0x0b, 0x0b, bt_x_ud, F_END);
	set2(0x0d, 0x0d, bt_x_nop, F_MODRM);
	set2(0x18, 0x1f, bt_x_nop, F_MODRM);
	set2(0x20, 0x20, bt_x_movcr, F_MODRM | F_END);
	set2(0x21, 0x21, bt_x_movdr, F_MODRM);
	set2(0x22, 0x22, bt_x_movcr, F_MODRM | F_END);
	set2(0x23, 0x23, bt_x_movdr, F_MODRM | F_END);
	set2(0x30, 0x30, bt_x_wrmsr, F_END);
	set2(0x31, 0x31, bt_x_rdtsc, 0);
	set2(0x32, 0x32, bt_x_rdmsr, 0);
	set2(0x34, 0x34, bt_x_sysenter, F_END);
	set2(0x35, 0x35, bt_x_sysexit, F_END);
	set2(0x40, 0x4f, bt_x_cmov, F_MODRM);
	set2(0x80, 0x8f, bt_x_jcc, F_IZ | F_REL | F_F64 | F_END);
	set2(0x90, 0x9f, bt_x_setcc, F_MODRM | F_BYTE);
	set2(0xa0, 0xa0, bt_x_pushseg, F_D64);
	set2(0xa1, 0xa1, bt_x_popseg, F_D64);
	set2(0xa2, 0xa2, bt_x_cpuid, 0);
	set2(0xa3, 0xa3, bt_x_bt, F_MODRM);
	set2(0xa4, 0xa4, bt_x_shd, F_MODRM | F_I8);
	set2(0xa5, 0xa5, bt_x_shd, F_MODRM);
	set2(0xa8, 0xa8, bt_x_pushseg, F_D64);
	set2(0xa9, 0xa9, bt_x_popseg, F_D64);
	set2(0xab, 0xab, bt_x_bt, F_MODRM);
	set2(0xac, 0xac, bt_x_shd, F_MODRM | F_I8);
	set2(0xad, 0xad, bt_x_shd, F_MODRM);
	set2(0xae, 0xae, bt_x_grp15, F_MODRM);
	set2(0xaf, 0xaf, bt_x_imul, F_MODRM);
	set2(0xb0, 0xb0, bt_x_cmpxchg, F_MODRM | F_BYTE);
	set2(0xb1, 0xb1, bt_x_cmpxchg, F_MODRM);
	set2(0xb2, 0xb2, bt_x_lxs, F_MODRM);
	set2(0xb3, 0xb3, bt_x_bt, F_MODRM);
	set2(0xb4, 0xb5, bt_x_lxs, F_MODRM);
	set2(0xb6, 0xb6, bt_x_movx, F_MODRM);
	set2(0xb7, 0xb7, bt_x_movx, F_MODRM);
	set2(0xb8, 0xb8, bt_x_popcnt, F_MODRM);
	set2(0xba, 0xba, bt_x_bt, F_MODRM | F_I8);
	set2(0xbb, 0xbb, bt_x_bt, F_MODRM);
	set2(0xbc, 0xbd, bt_x_bitscan, F_MODRM);
	set2(0xbe, 0xbe, bt_x_movx, F_MODRM);
	set2(0xbf, 0xbf, bt_x_movx, F_MODRM);
	set2(0xc0, 0xc0, bt_x_xadd, F_MODRM | F_BYTE);
	set2(0xc1, 0xc1, bt_x_xadd, F_MODRM);
	set2(0xc3, 0xc3, bt_x_movnti, F_MODRM);
	set2(0xc7, 0xc7, bt_x_cmpxchg8b, F_MODRM);
	set2(0xc8, 0xcf, bt_x_bswap, 0);
}

static bool
decode_is_simd(unsigned op)
{
	return (op >= 0x10 && op <= 0x17) || (op >= 0x28 && op <= 0x2f) ||
	    (op >= 0x50 && op <= 0x7f) || op == 0xc2 ||
	    (op >= 0xc4 && op <= 0xc6) || op >= 0xd0;
}

/* Byte source for one instruction, which may cross into the next page. */
struct fetch {
	struct bt_cpu *c;
	uint64_t lin;		/* instruction start */
	const uint8_t *p0, *p1;	/* host bytes of the two pages */
	unsigned n0;		/* bytes available on the first page */
	unsigned pos;
	bool fault, toolong;
	uint32_t pf_err;
	uint64_t pf_lin;
};

static const uint8_t *
fetch_page(struct bt_cpu *c, uint64_t lin, uint32_t *err)
{
	uint64_t gpa;
	const uint8_t *p;

	if (bt_walk(c, lin, BT_ACC_X, c->cpl == 3, &gpa, NULL, err) != 0)
		return NULL;
	p = vm_gpa_to_hva(c->vm, gpa & ~0xfffull, 4096);
	if (p == NULL)
		*err = 0xffffffffu;	/* executing MMIO: not supported */
	return p ? p + (gpa & 0xfff) : NULL;
}

static uint8_t
fetch_u8(struct fetch *f)
{
	unsigned pos = f->pos++;

	if (f->fault || pos >= 15) {
		if (!f->fault)
			f->toolong = true;	/* longer than 15: #GP */
		f->fault = true;
		return 0;
	}
	if (pos < f->n0)
		return f->p0[pos];
	if (f->p1 == NULL) {
		uint64_t l = (f->lin + f->n0) & f->c->linmask;

		f->p1 = fetch_page(f->c, l, &f->pf_err);
		if (f->p1 == NULL) {
			f->fault = true;
			f->pf_lin = l;
			return 0;
		}
	}
	return f->p1[pos - f->n0];
}

static uint64_t
fetch_n(struct fetch *f, unsigned n)
{
	uint64_t v = 0;

	for (unsigned k = 0; k < n; k++)
		v |= (uint64_t)fetch_u8(f) << (8 * k);
	return v;
}

static void
decode_modrm(struct fetch *f, struct bt_insn *i, uint8_t rex, int seg_ovr)
{
	uint8_t m = fetch_u8(f);
	unsigned rm = m & 7;
	int seg = SEG_DS;

	i->mod = m >> 6;
	i->reg = ((m >> 3) & 7) | ((rex & 4) << 1);
	i->rm = rm | ((rex & 1) << 3);
	i->base = i->index = BT_NOREG;
	i->scale = 0;
	i->disp = 0;
	if (i->mod == 3)
		return;
	if (i->asz == 2) {
		static const uint8_t b16[8] = { R_RBX, R_RBX, R_RBP, R_RBP,
		    BT_NOREG, BT_NOREG, R_RBP, R_RBX };
		static const uint8_t x16[8] = { R_RSI, R_RDI, R_RSI, R_RDI,
		    R_RSI, R_RDI, BT_NOREG, BT_NOREG };

		i->base = b16[rm];
		i->index = x16[rm];
		if (rm == 4 || rm == 5) {
			i->base = i->index;
			i->index = BT_NOREG;
		}
		if (i->mod == 0 && rm == 6)
			i->base = BT_NOREG;
		if (i->base == R_RBP)
			seg = SEG_SS;
		if (i->mod == 1)
			i->disp = (int8_t)fetch_u8(f);
		else if (i->mod == 2 || (i->mod == 0 && rm == 6))
			i->disp = (int16_t)fetch_n(f, 2);
	} else {
		if (rm == 4) {
			uint8_t sib = fetch_u8(f);
			unsigned idx = ((sib >> 3) & 7) | ((rex & 2) << 2);

			i->scale = sib >> 6;
			i->index = idx == 4 ? BT_NOREG : idx;
			i->base = (sib & 7) | ((rex & 1) << 3);
			if ((sib & 7) == 5 && i->mod == 0) {
				i->base = BT_NOREG;
				i->disp = (int32_t)fetch_n(f, 4);
			}
		} else if (rm == 5 && i->mod == 0) {
			i->base = f->c->mode == BT_M64 ? BT_RIPREL : BT_NOREG;
			i->disp = (int32_t)fetch_n(f, 4);
		} else {
			i->base = rm | ((rex & 1) << 3);
		}
		if (i->base == R_RSP || i->base == R_RBP)
			seg = SEG_SS;
		if (i->mod == 1)
			i->disp = (int8_t)fetch_u8(f);
		else if (i->mod == 2)
			i->disp = (int32_t)fetch_n(f, 4);
	}
	i->seg = seg_ovr >= 0 ? seg_ovr : seg;
}

static void
decode_simd(struct fetch *f, struct bt_insn *i, uint8_t rex, unsigned map,
    unsigned op, unsigned rep, int seg_ovr)
{
	if (map == SIMD_MAP_0F && op == 0x77) {
		i->mod = 3;	/* EMMS has no ModRM byte */
		i->base = i->index = BT_NOREG;
	} else {
		decode_modrm(f, i, rex, seg_ovr);
	}
	i->sop = (struct simd_op){ .map = map, .opcode = op,
	    .pfx = rep == 0xf3 ? SIMD_PFX_F3 : rep == 0xf2 ? SIMD_PFX_F2 :
	    i->p66 ? SIMD_PFX_66 : SIMD_PFX_NONE,
	    .mod = i->mod, .reg = i->reg, .rm = i->rm, .rex_w = !!(rex & 8),
	    .addr_size = i->asz, .op_size = i->osz == 2 ? 2 : 4 };
	if (simd_decode(&i->sop, &i->smem) != 0) {
		i->fn = bt_x_ud;
		return;
	}
	i->fn = bt_x_simd;
	if (i->smem.has_imm8) {
		i->imm = fetch_u8(f);
		i->sop.imm8 = (uint8_t)i->imm;
	}
	if (!f->c->generic)
		bt_sse_specialize(i);
}

int
bt_decode(struct bt_cpu *c, uint64_t lin, struct bt_insn *i, uint32_t *pf_err,
    uint64_t *pf_lin)
{
	struct fetch f = { .c = c, .lin = lin };
	unsigned b, rep = 0, map = 0, mode = c->mode;
	int seg_ovr = -1;
	uint8_t rex = 0;
	bool p67 = false;
	struct opinfo oi;

	pthread_once(&decode_once, decode_init);
	memset(i, 0, sizeof(*i));
	f.p0 = fetch_page(c, lin, pf_err);
	if (f.p0 == NULL) {
		*pf_lin = lin;
		return -1;
	}
	f.n0 = 0x1000 - (lin & 0xfff);
	for (;;) {
		b = fetch_u8(&f);
		switch (b) {
		case 0xf0: i->lock = 1; rex = 0; continue;
		case 0xf2: case 0xf3: rep = b; rex = 0; continue;
		case 0x26: case 0x2e: case 0x36: case 0x3e:
			if (mode != BT_M64)
				seg_ovr = (b >> 3) & 3;
			rex = 0;
			continue;
		case 0x64: case 0x65: seg_ovr = b - 0x60; rex = 0; continue;
		case 0x66: i->p66 = 1; rex = 0; continue;
		case 0x67: p67 = true; rex = 0; continue;
		}
		if (mode == BT_M64 && (b & 0xf0) == 0x40) {
			rex = b;
			continue;
		}
		break;
	}
	if (f.fault)
		goto fault;
	i->rex = rex;
	i->rep = rep;
	i->asz = mode == BT_M64 ? (p67 ? 4 : 8) :
	    ((mode == BT_M32) ^ p67) ? 4 : 2;
	i->osz = mode == BT_M16 ? (i->p66 ? 4 : 2) : (i->p66 ? 2 : 4);
	if (b == 0x0f) {
		b = fetch_u8(&f);
		map = 1;
		if (b == 0x38 || b == 0x3a) {
			map = b == 0x38 ? 2 : 3;
			b = fetch_u8(&f);
		}
	}
	i->opc = (uint16_t)(map << 8 | b);
	i->seg = seg_ovr >= 0 ? (uint8_t)seg_ovr : SEG_DS;
	i->base = i->index = BT_NOREG;
	if (map == 2 && (b == 0xf0 || b == 0xf1) && rep != 0xf2) {
		/* MOVBE: not advertised, but the KVM assist needs it. */
		if (rex & 8)
			i->osz = 8;
		decode_modrm(&f, i, rex, seg_ovr);
		i->fn = i->mod == 3 ? bt_x_ud : bt_x_movbe;
		goto done;
	}
	if (map >= 2 || (map == 1 && decode_is_simd(b))) {
		if (rex & 8)
			i->osz = 8;
		decode_simd(&f, i, rex, map == 1 ? SIMD_MAP_0F :
		    map == 2 ? SIMD_MAP_0F38 : SIMD_MAP_0F3A, b, rep, seg_ovr);
		goto done;
	}
	oi = map ? op2[b] : op1[b];
	if (!(oi.f & F_VALID) || (mode == BT_M64 && (oi.f & F_INV64)) ||
	    (map == 0 && (b == 0xc4 || b == 0xc5) && mode == BT_M64)) {
		i->fn = bt_x_ud;
		goto done;
	}
	i->fn = oi.fn;
	if (mode == BT_M64) {
		if (rex & 8)
			i->osz = 8;
		if (oi.f & F_F64)
			i->osz = 8;
		else if ((oi.f & F_D64) && !i->p66)
			i->osz = 8;
	}
	if (oi.f & F_BYTE)
		i->osz = 1;
	if (oi.f & F_MODRM) {
		if (map == 0 && b >= 0xd8 && b <= 0xdf) {
			decode_simd(&f, i, rex, SIMD_MAP_X87, b, 0, seg_ovr);
			goto done;
		}
		if (map == 1 && b >= 0x20 && b <= 0x23) {
			/* MOV CR/DR: always registers, whatever mod says. */
			uint8_t m = fetch_u8(&f);

			i->mod = 3;
			i->reg = ((m >> 3) & 7) | ((rex & 4) << 1);
			i->rm = (m & 7) | ((rex & 1) << 3);
			goto imm;
		}
		decode_modrm(&f, i, rex, seg_ovr);
		if (map == 1 && b == 0xae && i->mod != 3 && (i->reg & 7) <= 3) {
			i->sop = (struct simd_op){ .map = SIMD_MAP_0F,
			    .opcode = 0xae, .mod = i->mod, .reg = i->reg & 7,
			    .rm = i->rm, .rex_w = !!(rex & 8),
			    .addr_size = i->asz, .op_size = 4 };
			if (simd_decode(&i->sop, &i->smem) != 0)
				i->fn = bt_x_ud;
			else
				i->fn = bt_x_simd;
			goto done;
		}
		/* 8F /1-7 is AMD's XOP escape: not implemented. */
		if (map == 0 && b == 0x8f && (i->reg & 7) != 0)
			i->fn = bt_x_ud;
		/* LES/LDS with a register operand would be VEX: no AVX. */
		if (map == 0 && (b == 0xc4 || b == 0xc5) && i->mod == 3)
			i->fn = bt_x_ud;
		/* F6/F7 /0 and /1 (TEST) carry an immediate. */
		if (map == 0 && (b == 0xf6 || b == 0xf7) && (i->reg & 7) < 2)
			oi.f |= b == 0xf6 ? F_I8 : F_IZ;
		/* FF /2 /4 (near call/jmp) are 64-bit; /3 /5 far. */
		if (map == 0 && b == 0xff && mode == BT_M64) {
			unsigned r = i->reg & 7;

			if (r == 2 || r == 4)
				i->osz = 8;
			else if (r == 6 && !i->p66)
				i->osz = 8;
		}
	}
imm:
	if (oi.f & F_I8)
		i->imm = (uint64_t)(int64_t)(int8_t)fetch_u8(&f);
	else if (oi.f & F_I16)
		i->imm = fetch_n(&f, 2);
	else if (oi.f & F_IZ)
		i->imm = i->osz == 2 ? (uint64_t)(int64_t)(int16_t)fetch_n(&f, 2)
		    : (uint64_t)(int64_t)(int32_t)fetch_n(&f, 4);
	else if (oi.f & F_IV)
		i->imm = i->osz == 2 ? fetch_n(&f, 2) : i->osz == 4 ?
		    fetch_n(&f, 4) : fetch_n(&f, 8);
	else if (oi.f & F_ENTER) {
		i->imm = fetch_n(&f, 2);
		i->imm2 = fetch_u8(&f);
	} else if (oi.f & F_FAR) {
		i->imm = fetch_n(&f, i->osz == 2 ? 2 : 4);
		i->imm2 = (uint16_t)fetch_n(&f, 2);
	} else if (oi.f & F_MOFFS) {
		i->disp = (int64_t)fetch_n(&f, i->asz);
	}
	/* F_REL: the handler adds imm to the next RIP. */
done:
	if (f.fault)
		goto fault;
	i->len = (uint8_t)f.pos;
	return 0;
fault:
	if (f.toolong) {
		/* Longer than 15 bytes: #GP(0) when executed. */
		i->fn = bt_x_ud;
		i->imm = EXC_GP;
		i->len = 15;
		i->opc = 0xffff;
		return 0;
	}
	*pf_err = f.pf_err;
	*pf_lin = f.pf_lin;
	return -1;
}

bool
bt_insn_ends_block(const struct bt_insn *i)
{
	struct opinfo oi;

	if (i->fn == bt_x_ud)
		return true;
	if (i->opc >= 0x200)
		return false;
	oi = i->opc >= 0x100 ? op2[i->opc & 0xff] : op1[i->opc];
	if (oi.f & F_END)
		return true;
	/* MOV SS (shadow), far JMP/CALL through FF. */
	if (i->opc == 0x8e && (i->reg & 7) == SEG_SS)
		return true;
	if (i->opc == 0xff && (i->reg & 7) >= 2 && (i->reg & 7) <= 5)
		return true;
	if (i->opc == 0x1ae)
		return true;
	return false;
}
