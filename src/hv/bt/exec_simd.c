/*
 * The bridge to x87/MMX/SSE execution (simd.h): this side does the
 * addressing, alignment, the memory access and its faults; simd_exec()
 * does the arithmetic on the FXSAVE image.  A store is probed before
 * executing so a fault leaves every register as it was.
 */
#include "hv/bt/bt_internal.h"

static void
simd_load(struct bt_cpu *c, uint64_t lin, uint8_t *buf, unsigned n)
{
	unsigned k = 0;

	for (; k + 8 <= n; k += 8)
		bt_store_host(buf + k, 8, bt_read(c, (lin + k) & c->linmask, 8));
	for (; k < n; k++)
		buf[k] = (uint8_t)bt_read(c, (lin + k) & c->linmask, 1);
}

static void
simd_store(struct bt_cpu *c, uint64_t lin, const uint8_t *buf, unsigned n)
{
	unsigned k = 0;

	for (; k + 8 <= n; k += 8)
		bt_write(c, (lin + k) & c->linmask, 8, bt_load_host(buf + k, 8));
	for (; k < n; k++)
		bt_write(c, (lin + k) & c->linmask, 1, buf[k]);
}

/* FWAIT: the library checks #NM and a pending unmasked x87 exception
 * (#MF); it is never a memory operation. */
static void
simd_fwait(struct bt_cpu *c)
{
	static const struct simd_op wait = { .map = SIMD_MAP_X87,
	    .opcode = 0x9b, .mod = 3 };
	struct simd_ctx ctx = { .fpu = &c->fpu, .gpr = c->gpr,
	    .rflags = &c->flags, .cr0 = c->cr0, .cr4 = c->cr4,
	    .fpu_ip = c->rip };
	uint8_t buf[16] = { 0 };
	int vec = simd_exec(&ctx, &wait, buf);

	if (vec != 0)
		bt_raise(c, vec, vec == EXC_GP ? 0 : -1);
}

void
bt_x_simd(struct bt_cpu *c, const struct bt_insn *i)
{
	uint8_t buf[512] __attribute__((aligned(16)));
	const struct simd_mem *m = &i->smem;
	struct simd_ctx ctx;
	uint64_t lin = 0;
	bool mem = i->mod != 3 && m->size != 0;
	int vec;

	if (i->opc == 0x9b) {
		simd_fwait(c);
		return;
	}
	bt_flags_get(c);
	/* Only what the operation can see: a 512-byte memset per SSE
	 * instruction was a visible cost in string-heavy glibc code. */
	if (!mem)
		memset(buf, 0, 16);
	else if (!m->read)
		memset(buf, 0, m->size);
	if (mem) {
		lin = bt_ea_lin(c, i);
		if (m->align && (lin & (m->align - 1u)))
			bt_raise(c, EXC_GP, 0);
		if (m->write)
			bt_ptr_rw(c, lin, m->size);
		if (m->read)
			simd_load(c, lin, buf, m->size);
	}
	/* The library records FIP/FDP in the image itself, from these: this
	 * instruction's address and its operand's linear address. */
	ctx = (struct simd_ctx){ .fpu = &c->fpu, .gpr = c->gpr,
	    .rflags = &c->flags, .cr0 = c->cr0, .cr4 = c->cr4,
	    .fpu_ip = c->rip, .fpu_dp = lin };
	vec = simd_exec(&ctx, &i->sop, buf);
	if (vec != 0)	/* #GP carries error code 0; the others none */
		bt_raise(c, vec, vec == EXC_GP ? 0 : -1);
	if (mem && m->write)
		simd_store(c, lin, buf, m->size);
}
