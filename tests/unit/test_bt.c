/*
 * The software CPU, driven through bt_accel_ops on a hand-built VM:
 * guests in real, protected and long mode run to completion; faults are
 * delivered with the architectural error codes and state; a spinning
 * guest can always be stopped.
 */
#include <criterion/criterion.h>

#include "bt/guests.h"
#include "bt/harness.h"
#include "hv/bt/bt.h"

static void
run_ok(struct tvm *t, int ms)
{
	enum vm_exit_kind k = tvm_run(t, ms);

	cr_assert_eq(k, VM_EXIT_HLT, "exit %d, output \"%.*s\"", k,
	    (int)t->nout, t->out);
}

/* Run st on t until it halts, from a clean fault marker, and read st
 * back: the vector the guest's fault stub recorded, 0xff for none. */
static uint8_t
run_fault_vec(struct tvm *t, struct cpu_state *st)
{
	t->vm->ram[TVM_FAULT_VEC] = 0xff;
	cr_assert_eq(bt_accel_ops.set_state(t->vcpu, st), 0);
	run_ok(t, 2000);
	bt_accel_ops.get_state(t->vcpu, st);
	return t->vm->ram[TVM_FAULT_VEC];
}

static void
rm_pm(uint16_t cs, uint16_t ip)
{
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;

	tvm_put(t, 0x7c00, guest_rm_pm, sizeof(guest_rm_pm));
	cpu_state_reset(&st);
	st.seg[SEG_CS].sel = cs;
	st.seg[SEG_CS].base = (uint64_t)cs << 4;
	st.rip = ip;
	cr_assert_eq(bt_accel_ops.set_state(t->vcpu, &st), 0);
	run_ok(t, 2000);
	cr_assert_str_eq(t->out, "RM\nPM\n");
	cr_assert_eq(*(uint16_t *)(t->vm->ram + 0x500), 6912);
	cr_assert_eq(*(uint16_t *)(t->vm->ram + 0x502), 55);
	cr_assert_eq(*(uint16_t *)(t->vm->ram + 0x504), 0x4242);
	cr_assert_eq(*(uint16_t *)(t->vm->ram + 0x506), 0x77);
	cr_assert_eq(memcmp(t->vm->ram + 0x600, "RM\n", 3), 0);
	cr_assert_eq(*(uint32_t *)(t->vm->ram + 0x508), 0xdeadbeef);
	cr_assert_eq(*(uint32_t *)(t->vm->ram + 0x50c), 0x12345678);
	cr_assert_eq(bt_accel_ops.get_state(t->vcpu, &st), 0);
	cr_assert(st.cr0 & CR0_PG);
	cr_assert_eq(st.seg[SEG_CS].sel, 0x08);
	tvm_free(t);
}

Test(bt, real_then_protected_mode_with_paging)
{
	rm_pm(0, 0x7c00);
}

/* Same code entered as 07c0:0000: a non-zero CS base (as an AP after
 * SIPI) must not be applied twice. */
Test(bt, real_mode_with_a_code_segment_base)
{
	rm_pm(0x07c0, 0);
}

Test(bt, long_mode_syscall_sysret_cpuid_sse_x87)
{
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;
	uint32_t v[4];
	float f[4];

	tvm_put(t, 0x100000, guest_lm, sizeof(guest_lm));
	tvm_long_mode(t, &st, 0x100000);
	cr_assert_eq(bt_accel_ops.set_state(t->vcpu, &st), 0);
	run_ok(t, 2000);
	cr_assert_str_eq(t->out, "LM\nOK\n");
	cr_assert_eq(tvm_get64(t, 0x5000), 42);
	cr_assert_eq(*(uint16_t *)(t->vm->ram + 0x5010), 0x08);
	cr_assert_eq(tvm_get64(t, 0x5018) & 0x200, 0x200, "R11 = user RFLAGS");
	cr_assert_eq(memcmp(t->vm->ram + 0x5020, "Auth", 4), 0);
	cr_assert_gt(tvm_get64(t, 0x5028), 0);
	memcpy(v, t->vm->ram + 0x5040, 16);
	cr_assert(v[0] == 11 && v[1] == 22 && v[2] == 33 && v[3] == 0x80000003u);
	memcpy(f, t->vm->ram + 0x5050, 16);
	cr_assert(f[0] == 1.5f && f[1] == 2.5f && f[2] == 3.5f && f[3] == 4.5f);
	cr_assert_eq(*(uint32_t *)(t->vm->ram + 0x5060), 2);
	tvm_free(t);
}

/* Run code at 0x200000 in long mode; returns the halted state. */
static struct tvm *
run64(const uint8_t *code, size_t n, struct cpu_state *st,
    enum vm_exit_kind want)
{
	struct tvm *t = tvm_new(16 << 20);
	enum vm_exit_kind k;

	tvm_put(t, 0x200000, code, n);
	tvm_long_mode(t, st, 0x200000);
	t->vm->ram[TVM_FAULT_VEC] = 0xff;
	cr_assert_eq(bt_accel_ops.set_state(t->vcpu, st), 0);
	k = tvm_run(t, 2000);
	cr_assert_eq(k, want, "exit kind %d", k);
	bt_accel_ops.get_state(t->vcpu, st);
	return t;
}

Test(bt, ud_on_invalid_opcodes)
{
	static const uint8_t ud2[] = { 0x90, 0x0f, 0x0b };
	static const uint8_t push_es[] = { 0x06 };	/* invalid in 64-bit */
	struct cpu_state st;
	struct tvm *t = run64(ud2, sizeof(ud2), &st, VM_EXIT_HLT);

	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 6);
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 0x200001, "RIP of ud2");
	tvm_free(t);
	t = run64(push_es, sizeof(push_es), &st, VM_EXIT_HLT);
	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 6);
	tvm_free(t);
}

Test(bt, page_fault_error_codes_and_cr2)
{
	/* mov rax, [0x40000010]: beyond the mapped GiB, a read */
	static const uint8_t rd[] = { 0x48, 0x8b, 0x04, 0x25, 0x10, 0x00,
	    0x00, 0x40 };
	/* mov [0x40000020], eax: a write */
	static const uint8_t wr[] = { 0x89, 0x04, 0x25, 0x20, 0x00, 0x00,
	    0x40 };
	struct cpu_state st;
	struct tvm *t = run64(rd, sizeof(rd), &st, VM_EXIT_HLT);

	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 14);
	cr_assert_eq(st.cr2, 0x40000010);
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 0, "error code");
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP] + 8), 0x200000);
	tvm_free(t);
	t = run64(wr, sizeof(wr), &st, VM_EXIT_HLT);
	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 14);
	cr_assert_eq(st.cr2, 0x40000020);
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 2, "W");
	tvm_free(t);
}

Test(bt, page_fault_write_protect_and_nx)
{
	/* mov [0x600000], eax; with the 2M page at 6M read-only */
	static const uint8_t wr[] = { 0x89, 0x04, 0x25, 0x00, 0x00, 0x60,
	    0x00 };
	/* jmp to 0x800000, an NX page */
	static const uint8_t jmp[] = { 0xb8, 0x00, 0x00, 0x80, 0x00,
	    0xff, 0xe0 };
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;

	tvm_put(t, 0x200000, wr, sizeof(wr));
	tvm_long_mode(t, &st, 0x200000);
	tvm_set64(t, TVM_PD + 3 * 8, (3ull << 21) | 0x85);	/* RO */
	bt_accel_ops.set_state(t->vcpu, &st);
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT);
	bt_accel_ops.get_state(t->vcpu, &st);
	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 14);
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 3, "P|W under CR0.WP");
	tvm_free(t);

	t = tvm_new(16 << 20);
	tvm_put(t, 0x200000, jmp, sizeof(jmp));
	tvm_long_mode(t, &st, 0x200000);
	tvm_set64(t, TVM_PD + 4 * 8, (4ull << 21) | 0x87 | (1ull << 63));
	bt_accel_ops.set_state(t->vcpu, &st);
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT);
	bt_accel_ops.get_state(t->vcpu, &st);
	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 14);
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 0x11, "P|I/D");
	cr_assert_eq(st.cr2, 0x800000);
	tvm_free(t);
}

Test(bt, gp_on_non_canonical_and_de_on_divide)
{
	/* mov rax, 0x8000000000000000; mov rbx, [rax] */
	static const uint8_t nc[] = { 0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0x80,
	    0x48, 0x8b, 0x18 };
	/* xor ecx, ecx; div ecx */
	static const uint8_t de[] = { 0x31, 0xc9, 0xf7, 0xf1 };
	struct cpu_state st;
	struct tvm *t = run64(nc, sizeof(nc), &st, VM_EXIT_HLT);

	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 13);
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP] + 8), 0x20000a);
	tvm_free(t);
	t = run64(de, sizeof(de), &st, VM_EXIT_HLT);
	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 0);
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 0x200002);
	tvm_free(t);
}

Test(bt, triple_fault_shuts_down)
{
	static const uint8_t ud2[] = { 0x0f, 0x0b };
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;

	tvm_put(t, 0x200000, ud2, sizeof(ud2));
	tvm_long_mode(t, &st, 0x200000);
	st.idt.limit = 0;
	bt_accel_ops.set_state(t->vcpu, &st);
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_SHUTDOWN);
	tvm_free(t);
}

Test(bt, spinning_guest_is_stoppable)
{
	static const uint8_t spin[] = { 0xeb, 0xfe };
	/* rep stosb over 8 MiB with RCX huge: stopped mid-way */
	static const uint8_t rep[] = { 0xbf, 0, 0, 0x40, 0, 0x48, 0xc7, 0xc1,
	    0xff, 0xff, 0xff, 0x7f, 0xf3, 0xaa };
	struct cpu_state st;
	struct tvm *t = run64(spin, sizeof(spin), &st, VM_EXIT_INTR);

	cr_assert_eq(st.rip, 0x200000);
	tvm_free(t);
	t = run64(rep, sizeof(rep), &st, VM_EXIT_INTR);
	tvm_free(t);
}

Test(bt, self_modifying_code)
{
	/*
	 * 0: mov byte [rip+1], 0x2a   (patches the imm of the next insn)
	 * 7: mov eax, 0x11
	 * c: hlt
	 * the next instruction's immediate is rewritten before it runs.
	 */
	static const uint8_t smc[] = { 0xc6, 0x05, 0x01, 0x00, 0x00, 0x00,
	    0x2a, 0xb8, 0x11, 0x00, 0x00, 0x00, 0xf4 };
	struct cpu_state st;
	struct tvm *t = run64(smc, sizeof(smc), &st, VM_EXIT_HLT);

	cr_assert_eq(st.gpr[R_RAX], 0x2a);
	tvm_free(t);
}

Test(bt, rep_movs_overlap_keeps_byte_semantics)
{
	/* rsi=0x300000 rdi=0x300001 rcx=15 rep movsb: smears byte 0 */
	static const uint8_t code[] = { 0xbe, 0, 0, 0x30, 0, 0xbf, 1, 0, 0x30,
	    0, 0xb9, 15, 0, 0, 0, 0xf3, 0xa4, 0xf4 };
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;

	tvm_put(t, 0x200000, code, sizeof(code));
	memcpy(t->vm->ram + 0x300000, "abcdefghijklmnop", 16);
	tvm_long_mode(t, &st, 0x200000);
	bt_accel_ops.set_state(t->vcpu, &st);
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT);
	cr_assert_eq(memcmp(t->vm->ram + 0x300000, "aaaaaaaaaaaaaaaa", 16), 0);
	tvm_free(t);
}

/* The KVM assist: one instruction on a cpu_state, memory through the
 * VM, exceptions through the guest IDT. */
static struct tvm *
assist_setup(const uint8_t *code, size_t n, struct cpu_state *st)
{
	struct tvm *t = tvm_new(16 << 20);

	tvm_put(t, 0x200000, code, n);
	tvm_long_mode(t, st, 0x200000);
	return t;
}

Test(bt, assist_cmpxchg16b_movbe_xgetbv)
{
	static const uint8_t cx16[] = { 0xf0, 0x48, 0x0f, 0xc7, 0x0f };
	static const uint8_t movbe[] = { 0x0f, 0x38, 0xf0, 0x07 };
	static const uint8_t xgetbv[] = { 0x0f, 0x01, 0xd0 };
	struct cpu_state st;
	struct tvm *t = assist_setup(cx16, sizeof(cx16), &st);

	tvm_set64(t, 0x300000, 1);
	tvm_set64(t, 0x300008, 2);
	st.gpr[R_RDI] = 0x300000;
	st.gpr[R_RAX] = 1;
	st.gpr[R_RDX] = 2;
	st.gpr[R_RBX] = 5;
	st.gpr[R_RCX] = 6;
	cr_assert_eq(bt_assist_step(t->vcpu, &st), 0);
	cr_assert_eq(st.rip, 0x200005);
	cr_assert(st.rflags & RFLAGS_ZF);
	cr_assert_eq(tvm_get64(t, 0x300000), 5);
	cr_assert_eq(tvm_get64(t, 0x300008), 6);
	/* Now it fails: RDX:RAX get the memory value, ZF clear. */
	st.rip = 0x200000;
	cr_assert_eq(bt_assist_step(t->vcpu, &st), 0);
	cr_assert(!(st.rflags & RFLAGS_ZF));
	cr_assert_eq(st.gpr[R_RAX], 5);
	cr_assert_eq(st.gpr[R_RDX], 6);
	tvm_free(t);

	t = assist_setup(movbe, sizeof(movbe), &st);
	tvm_set64(t, 0x300000, 0x11223344);
	st.gpr[R_RDI] = 0x300000;
	cr_assert_eq(bt_assist_step(t->vcpu, &st), 0);
	cr_assert_eq(st.gpr[R_RAX], 0x44332211);
	cr_assert_eq(st.rip, 0x200004);
	tvm_free(t);

	t = assist_setup(xgetbv, sizeof(xgetbv), &st);
	st.cr4 |= 1u << 18;
	st.fpu.xcr0 = 7;
	st.gpr[R_RCX] = 0;
	cr_assert_eq(bt_assist_step(t->vcpu, &st), 0);
	cr_assert_eq(st.gpr[R_RAX], 7);
	tvm_free(t);
}

Test(bt, assist_int3_goes_through_the_idt)
{
	static const uint8_t int3[] = { 0xcc };
	struct cpu_state st;
	struct tvm *t = assist_setup(int3, sizeof(int3), &st);
	uint64_t sp = st.gpr[R_RSP];

	cr_assert_eq(bt_assist_step(t->vcpu, &st), 0);
	cr_assert_eq(st.rip, TVM_STUBS + 3 * 16, "at the #BP handler");
	cr_assert_eq(st.gpr[R_RSP], (sp & ~15ull) - 40);
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 0x200001, "trap: next RIP");
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP] + 8), 0x08);
	tvm_free(t);
}

static void
dma_patch(struct tvm *t, uint64_t v)
{
	static const uint8_t v2[] = { 0xb8, 2, 0, 0, 0, 0xc3 };

	tvm_put(t, 0x200100, v2, sizeof(v2));
	bt_dma_invalidate(t->vm, 0x200100, sizeof(v2));
}

Test(bt, dma_into_code_drops_translations)
{
	/* call f; out 0xea (the "device" rewrites f); call f; hlt */
	static const uint8_t code[] = { 0xe8, 0xfb, 0, 0, 0, 0xe7, 0xea,
	    0xe8, 0xf4, 0, 0, 0, 0xf4 };
	static const uint8_t f[] = { 0xb8, 1, 0, 0, 0, 0xc3 };	/* eax=1 */
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;

	tvm_put(t, 0x200000, code, sizeof(code));
	tvm_put(t, 0x200100, f, sizeof(f));
	tvm_long_mode(t, &st, 0x200000);
	t->on_out = dma_patch;
	bt_accel_ops.set_state(t->vcpu, &st);
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT);
	bt_accel_ops.get_state(t->vcpu, &st);
	cr_assert_eq(t->last_out, 1);
	cr_assert_eq(st.gpr[R_RAX], 2, "stale translation ran");
	tvm_free(t);
}

static uint64_t dirty_seen[4];
static int ndirty;

static void
dirty_harvest(struct tvm *t, uint64_t v)
{
	uint64_t bm[(16 << 20) / 4096 / 64];

	cr_assert_eq(bt_accel_ops.dirty_log(t->vm, &t->vm->regions[0], bm), 0);
	dirty_seen[ndirty++] = bm[0x300000 / 4096 / 64] >> ((0x300000 / 4096) % 64);
}

Test(bt, dirty_log_catches_fast_path_stores)
{
	/*
	 * mov byte [0x300000], 1; mov byte [0x300000], 2; out 0xea, al
	 * (harvest); mov byte [0x300000], 3; out 0xea, al (harvest);
	 * out 0xea, al (harvest, nothing written); hlt
	 */
	static const uint8_t code[] = {
	    0xc6, 0x04, 0x25, 0x00, 0x00, 0x30, 0x00, 0x01,
	    0xc6, 0x04, 0x25, 0x00, 0x00, 0x30, 0x00, 0x02,
	    0xe6, 0xea,
	    0xc6, 0x04, 0x25, 0x00, 0x00, 0x30, 0x00, 0x03,
	    0xe6, 0xea, 0xe6, 0xea, 0xf4 };
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;

	tvm_put(t, 0x200000, code, sizeof(code));
	tvm_long_mode(t, &st, 0x200000);
	t->on_out = dirty_harvest;
	ndirty = 0;
	bt_accel_ops.set_state(t->vcpu, &st);
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT);
	cr_assert_eq(ndirty, 3);
	cr_assert_eq(dirty_seen[0] & 3, 1, "page 0x300 dirty, 0x301 clean");
	cr_assert_eq(dirty_seen[1] & 1, 1, "re-dirtied after a harvest");
	cr_assert_eq(dirty_seen[2] & 1, 0, "clean when nothing was written");
	tvm_free(t);
}

Test(bt, fused_compare_and_branch)
{
	/* tests/bt: loops closed by DEC/CMP/CMP imm/TEST/SUB + Jcc, then
	 * SETcc/SBB reading the flags the fused pair left (see the
	 * comments for the expected values). */
	static const uint8_t code[] = {
	    0xb9, 0x0a, 0x00, 0x00, 0x00, 0x31, 0xc0, 0x01, 0xc8, 0xff, 0xc9,
	    0x75, 0xfa, 0x48, 0xc7, 0xc3, 0x05, 0x00, 0x00, 0x00, 0x31, 0xd2,
	    0x48, 0xff, 0xc2, 0x48, 0x39, 0xda, 0x72, 0xf8, 0x41, 0x0f, 0x93,
	    0xc1, 0x31, 0xf6, 0x48, 0x83, 0xc6, 0x01, 0x48, 0x83, 0xfe, 0x07,
	    0x75, 0xf6, 0x49, 0xc7, 0xc0, 0xfd, 0xff, 0xff, 0xff, 0x31, 0xff,
	    0xff, 0xc7, 0x49, 0x83, 0xc0, 0x01, 0x4d, 0x85, 0xc0, 0x78, 0xf5,
	    0x49, 0xc7, 0xc2, 0x64, 0x00, 0x00, 0x00, 0x49, 0x83, 0xea, 0x1e,
	    0x7f, 0xfa, 0x4d, 0x19, 0xdb, 0xf4 };
	struct cpu_state st;
	struct tvm *t;

	st.gpr[R_R11] = 0;
	t = run64(code, sizeof(code), &st, VM_EXIT_HLT);
	cr_assert_eq(st.gpr[R_RAX], 55, "dec ecx; jnz");
	cr_assert_eq(st.gpr[R_RDX], 5, "cmp rdx, rbx; jb");
	cr_assert_eq(st.gpr[R_R9] & 0xff, 1, "setae after the fused cmp");
	cr_assert_eq(st.gpr[R_RSI], 7, "cmp rsi, 7; jne");
	cr_assert_eq(st.gpr[R_RDI], 3, "test r8, r8; js");
	cr_assert_eq(st.gpr[R_R10], (uint64_t)-20, "sub r10, 30; jg");
	cr_assert_eq(st.gpr[R_R11], (uint64_t)-1, "sbb: 10 - 30 borrowed");
	tvm_free(t);
}

Test(bt, single_step_traps_after_the_next_instruction)
{
	/* pushf; or dword [rsp], 0x100; popf; nop; nop; hlt */
	static const uint8_t code[] = { 0x9c, 0x81, 0x0c, 0x24, 0x00, 0x01,
	    0x00, 0x00, 0x9d, 0x90, 0x90, 0xf4 };
	struct cpu_state st;
	struct tvm *t = run64(code, sizeof(code), &st, VM_EXIT_HLT);

	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 1, "#DB");
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 0x20000a,
	    "trap after the first NOP following POPF");
	cr_assert(st.dr[6] & (1u << 14), "DR6.BS");
	cr_assert(!(st.rflags & RFLAGS_TF), "cleared on delivery");
	tvm_free(t);
}

Test(bt, protected_mode_pae_paging_and_32bit_page_fault)
{
	/*
	 * 32-bit code: store through an alias at 1 GiB (a 4 KiB PTE under
	 * PAE) and read it back through the 2 MiB identity map, then read
	 * an unmapped address: #PF through a 32-bit interrupt gate.
	 */
	static const uint8_t code[] = { 0xc7, 0x05, 0x00, 0x01, 0x00, 0x40,
	    0x44, 0x33, 0x22, 0x11, 0xa1, 0x00, 0x01, 0x30, 0x00, 0xa3, 0x00,
	    0x50, 0x00, 0x00, 0x8b, 0x1d, 0x00, 0x00, 0xf0, 0x7f, 0xf4 };
	static const uint64_t gdt[] = { 0, 0x00cf9a000000ffffull,
	    0x00cf92000000ffffull };
	static const uint8_t stub[] = { 0xc6, 0x04, 0x25, 0x00, 0x51, 0x00,
	    0x00, 14, 0xf4, 0xeb, 0xfd };
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;
	uint64_t h = 0x4000;

	tvm_put(t, 0x200000, code, sizeof(code));
	tvm_put(t, 0x800, gdt, sizeof(gdt));
	tvm_put(t, h, stub, sizeof(stub));
	tvm_set64(t, 0x3000 + 14 * 8, (h & 0xffff) | (0x08ull << 16) |
	    (0x8eull << 40) | ((h >> 16) & 0xffff) << 48);
	tvm_set64(t, 0x20000, 0x21000 | 1);		/* PDPT[0] */
	tvm_set64(t, 0x20008, 0x22000 | 1);		/* PDPT[1] */
	for (uint64_t k = 0; k < 512; k++)
		tvm_set64(t, 0x21000 + k * 8, (k << 21) | 0x83);
	tvm_set64(t, 0x22000, 0x23000 | 3);
	tvm_set64(t, 0x23000, 0x300000 | 3);
	t->vm->ram[TVM_FAULT_VEC] = 0xff;
	cpu_state_reset(&st);
	tvm_seg(&st.seg[SEG_CS], 0x08, true, false, 0);
	for (int s = SEG_ES; s <= SEG_GS; s++)
		if (s != SEG_CS)
			tvm_seg(&st.seg[s], 0x10, false, false, 0);
	st.gdt.base = 0x800;
	st.gdt.limit = sizeof(gdt) - 1;
	st.idt.base = 0x3000;
	st.idt.limit = 0xff;
	st.cr0 = CR0_PE | CR0_ET | CR0_WP | CR0_PG;
	st.cr3 = 0x20000;
	st.cr4 = CR4_PAE;
	st.rip = 0x200000;
	st.gpr[R_RSP] = 0x80000;
	bt_accel_ops.set_state(t->vcpu, &st);
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT);
	bt_accel_ops.get_state(t->vcpu, &st);
	cr_assert_eq(*(uint32_t *)(t->vm->ram + 0x5000), 0x11223344);
	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 14);
	cr_assert_eq(st.cr2, 0x7ff00000);
	cr_assert_eq(*(uint32_t *)(t->vm->ram + st.gpr[R_RSP]), 0, "error");
	cr_assert_eq(*(uint32_t *)(t->vm->ram + st.gpr[R_RSP] + 4), 0x200014,
	    "EIP of the faulting load");
	cr_assert_eq(*(uint32_t *)(t->vm->ram + st.gpr[R_RSP] + 8), 0x08);
	tvm_free(t);
}

/* Run code at 0x200000 in long mode with data at 0x300000. */
static struct tvm *
run64_data(const uint8_t *code, size_t n, const void *data, size_t dn,
    struct cpu_state *st)
{
	struct tvm *t = tvm_new(16 << 20);

	tvm_put(t, 0x200000, code, n);
	tvm_put(t, 0x300000, data, dn);
	tvm_long_mode(t, st, 0x200000);
	t->vm->ram[TVM_FAULT_VEC] = 0xff;
	cr_assert_eq(bt_accel_ops.set_state(t->vcpu, st), 0);
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT);
	bt_accel_ops.get_state(t->vcpu, st);
	return t;
}

/* An unmasked x87 exception stays pending until the next waiting
 * instruction: FWAIT must raise #MF for it. */
Test(bt, fwait_raises_mf_for_a_pending_x87_exception)
{
	/* fldcw [0x300000] (ZM clear); fld1; fldz; fdivp; fwait; hlt */
	static const uint8_t code[] = { 0xd9, 0x2c, 0x25, 0, 0, 0x30, 0,
	    0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9, 0x9b, 0xf4 };
	static const uint16_t fcw = 0x037b;
	struct cpu_state st;
	struct tvm *t = run64_data(code, sizeof(code), &fcw, sizeof(fcw), &st);

	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 16, "#MF");
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 0x20000d, "RIP of FWAIT");
	tvm_free(t);
}

/* #GP from the x87/SSE library carries error code 0. */
Test(bt, ldmxcsr_reserved_bits_gp_has_error_code_0)
{
	static const uint8_t code[] = { 0x0f, 0xae, 0x14, 0x25, 0, 0, 0x30, 0,
	    0xf4 };
	static const uint32_t mxcsr = 0xffffffff;
	struct cpu_state st;
	struct tvm *t = run64_data(code, sizeof(code), &mxcsr, sizeof(mxcsr),
	    &st);

	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 13, "#GP");
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 0, "error code");
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP] + 8), 0x200000, "RIP");
	tvm_free(t);
}

/* FXSAVE's FIP/FDP are the last x87 instruction's RIP and operand. */
Test(bt, fxsave_records_the_last_x87_fip_and_fdp)
{
	/* nop; fld qword [0x300008]; fxsave64 [0x301000]; hlt */
	static const uint8_t code[] = { 0x90, 0xdd, 0x04, 0x25, 8, 0, 0x30, 0,
	    0x48, 0x0f, 0xae, 0x04, 0x25, 0, 0x10, 0x30, 0, 0xf4 };
	static const double d[2] = { 0, 2.5 };
	struct cpu_state st;
	struct tvm *t = run64_data(code, sizeof(code), d, sizeof(d), &st);

	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 0xff, "no fault");
	cr_assert_eq(tvm_get64(t, 0x301000 + 8), 0x200001, "FIP");
	cr_assert_eq(tvm_get64(t, 0x301000 + 16), 0x300008, "FDP");
	tvm_free(t);
}

/* SSSE3 runs through the decoder's 0F 38 / 0F 3A maps and CPUID says
 * so (glibc picks its SSSE3 string functions from the bit). */
Test(bt, ssse3_pshufb_palignr_and_cpuid_bit)
{
	static const uint8_t code[] = {
	    0xf3, 0x0f, 0x6f, 0x04, 0x25, 0x00, 0x00, 0x30, 0x00, /* movdqu */
	    0xf3, 0x0f, 0x6f, 0x0c, 0x25, 0x10, 0x00, 0x30, 0x00,
	    0x66, 0x0f, 0x38, 0x00, 0xc1,		/* pshufb xmm0, xmm1 */
	    0xf3, 0x0f, 0x7f, 0x04, 0x25, 0x20, 0x00, 0x30, 0x00,
	    0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x04,	/* palignr xmm0, xmm1, 4 */
	    0xf3, 0x0f, 0x7f, 0x04, 0x25, 0x30, 0x00, 0x30, 0x00,
	    0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2,	/* cpuid(1) */
	    0xf4 };
	uint8_t data[32], want[16];
	struct cpu_state st;
	struct tvm *t;

	for (int k = 0; k < 16; k++) {
		data[k] = (uint8_t)(0x10 + k);
		data[16 + k] = (uint8_t)(15 - k);
	}
	t = run64_data(code, sizeof(code), data, sizeof(data), &st);
	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 0xff, "no fault");
	for (int k = 0; k < 16; k++)
		want[k] = (uint8_t)(0x1f - k);
	cr_assert_eq(memcmp(t->vm->ram + 0x300020, want, 16), 0, "pshufb");
	/* palignr: bytes 4.. of xmm1 then bytes 0..3 of xmm0 */
	for (int k = 0; k < 16; k++)
		want[k] = k < 12 ? (uint8_t)(15 - (k + 4)) :
		    (uint8_t)(0x1f - (k - 12));
	cr_assert_eq(memcmp(t->vm->ram + 0x300030, want, 16), 0, "palignr");
	cr_assert(st.gpr[R_RCX] & (1u << 9), "CPUID.1:ECX.SSSE3");
	tvm_free(t);
}

/*
 * Runs the code at 0x200000 (ring 0) with the 2 MiB page at 4M made
 * supervisor-only and kern at 0x400000; entered at rip.  Expects a
 * ring-3 instruction fetch #PF at 0x400000 + off.
 */
static void
user_fetch_of_kernel_page(const uint8_t *code, size_t n, const uint8_t *kern,
    size_t kn, uint64_t rip, uint64_t off)
{
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;

	tvm_put(t, 0x200000, code, n);
	tvm_put(t, 0x400000, kern, kn);
	tvm_long_mode(t, &st, rip);
	tvm_set64(t, TVM_PD + 2 * 8, (2ull << 21) | 0x83);	/* U=0 */
	t->vm->ram[TVM_FAULT_VEC] = 0xff;
	cr_assert_eq(bt_accel_ops.set_state(t->vcpu, &st), 0);
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT, "halts in the #PF stub");
	bt_accel_ops.get_state(t->vcpu, &st);
	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 14, "#PF, not vector %d",
	    t->vm->ram[TVM_FAULT_VEC]);
	cr_assert_eq(st.cr2, 0x400000 + off);
	cr_assert_eq(st.gpr[R_RSP], 0x70000 - 48, "from ring 3 (RSP0)");
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 0x15, "P|U|I/D, got %#lx",
	    (unsigned long)tvm_get64(t, st.gpr[R_RSP]));
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP] + 8), 0x400000 + off, "RIP");
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP] + 16), 0x2b, "CS: ring 3");
	tvm_free(t);
}

/* The jump cache holds the kernel's block from a ring-0 call; the same
 * linear RIP from ring 3 must still be fetch-checked as a user access
 * (in the JIT's inline probe and in bt_next_block). */
Test(bt, ring3_jump_to_a_cached_kernel_block_faults)
{
	static const uint8_t code[0x110] = {
	    0xb8, 0x00, 0x00, 0x40, 0x00,	/* mov eax, 0x400000 */
	    0xff, 0xd0,				/* call rax (ring 0) */
	    0x6a, 0x23,				/* push 0x23: SS */
	    0x68, 0x00, 0x00, 0x09, 0x00,	/* push 0x90000: RSP */
	    0x6a, 0x02,				/* push 2: RFLAGS */
	    0x6a, 0x2b,				/* push 0x2b: CS */
	    0x68, 0x00, 0x01, 0x20, 0x00,	/* push 0x200100: RIP */
	    0x48, 0xcf,				/* iretq */
	    [0x100] = 0xb8, 0x00, 0x00, 0x40, 0x00,	/* mov eax, 0x400000 */
	    0xff, 0xe0 };			/* jmp rax (ring 3) */
	static const uint8_t kern[] = { 0xc3 };	/* ret */

	user_fetch_of_kernel_page(code, sizeof(code), kern, sizeof(kern),
	    0x200000, 0);
}

/* An IRETQ block on a supervisor page linked to a block on the same
 * page while at ring 0: the same link must not be followed into ring 3. */
Test(bt, iret_to_ring3_on_a_kernel_page_does_not_follow_its_link)
{
	static const uint8_t kern[0x120] = {
	    0x6a, 0x10,				/* push 0x10: SS */
	    0x68, 0x00, 0x00, 0x08, 0x00,	/* push 0x80000: RSP */
	    0x6a, 0x02,				/* push 2 */
	    0x6a, 0x08,				/* push 0x08: CS, ring 0 */
	    0x68, 0x00, 0x01, 0x40, 0x00,	/* push 0x400100 */
	    0xe9, 0x6b, 0x00, 0x00, 0x00,	/* jmp 0x400080 */
	    [0x80] = 0x48, 0xcf,		/* iretq */
	    [0x100] = 0x6a, 0x23,		/* push 0x23 */
	    0x68, 0x00, 0x00, 0x09, 0x00,	/* push 0x90000 */
	    0x6a, 0x02,				/* push 2 */
	    0x6a, 0x2b,				/* push 0x2b: CS, ring 3 */
	    0x68, 0x00, 0x01, 0x40, 0x00,	/* push 0x400100 */
	    0xe9, 0x6b, 0xff, 0xff, 0xff };	/* jmp 0x400080 */
	static const uint8_t hlt[] = { 0xf4 };

	user_fetch_of_kernel_page(hlt, sizeof(hlt), kern, sizeof(kern),
	    0x400000, 0x100);
}

/*
 * Data translations cached from 2 MiB pages: an INVLPG of another 4K
 * page inside the large page still drops them (the TLB looks at the
 * large page's whole region), and MOV CR3 drops the non-global ones.
 */
Test(bt, invlpg_in_a_large_page_and_mov_cr3_drop_data_translations)
{
	static const uint8_t code[] = {
	    0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x40, 0x00, /* rbx = [4M] */
	    0xb8, 0x10, 0x20, 0x01, 0x00,		/* eax = &PD[2] */
	    0x48, 0xc7, 0x00, 0x87, 0x00, 0x60, 0x00,	/* PD[2] -> 6M */
	    0xb9, 0x00, 0x10, 0x40, 0x00,		/* ecx = 4M + 4K */
	    0x0f, 0x01, 0x39,				/* invlpg [rcx] */
	    0x48, 0x8b, 0x14, 0x25, 0x00, 0x00, 0x40, 0x00, /* rdx = [4M] */
	    0xb8, 0x00, 0x30, 0x01, 0x00,		/* eax = 0x13000 */
	    0x0f, 0x22, 0xd8,				/* mov cr3, rax */
	    0x48, 0x8b, 0x34, 0x25, 0x00, 0x00, 0x40, 0x00, /* rsi = [4M] */
	    0xf4 };
	const uint64_t pml4 = 0x13000, pdpt = 0x14000, pd = 0x15000;
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;

	tvm_put(t, 0x200000, code, sizeof(code));
	tvm_long_mode(t, &st, 0x200000);
	tvm_set64(t, 0x400000, 0x1111);
	tvm_set64(t, 0x600000, 0x2222);
	tvm_set64(t, 0x800000, 0x3333);
	/* the other address space: 4M -> 8M */
	tvm_set64(t, pml4, pdpt | 7);
	tvm_set64(t, pdpt, pd | 7);
	for (uint64_t k = 0; k < 512; k++)
		tvm_set64(t, pd + k * 8, (k << 21) | 0x87);
	tvm_set64(t, pd + 16, 0x800000 | 0x87);
	cr_assert_eq(run_fault_vec(t, &st), 0xff, "no fault");
	cr_assert_eq(st.gpr[R_RBX], 0x1111);
	cr_assert_eq(st.gpr[R_RDX], 0x2222, "stale after INVLPG: %#lx",
	    (unsigned long)st.gpr[R_RDX]);
	cr_assert_eq(st.gpr[R_RSI], 0x3333, "stale after MOV CR3: %#lx",
	    (unsigned long)st.gpr[R_RSI]);
	tvm_free(t);
}

/* A TLB entry first filled from a global page, then from a non-global
 * one 8 MiB away (the same entry): MOV CR3 must still drop it. */
Test(bt, mov_cr3_drops_an_entry_a_global_page_used_before)
{
	static const uint8_t code[] = {
	    0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x40, 0x00, /* rbx = [4M] */
	    0x48, 0x8b, 0x0c, 0x25, 0x00, 0x00, 0xc0, 0x00, /* rcx = [12M] */
	    0xb8, 0x30, 0x20, 0x01, 0x00,		/* eax = &PD[6] */
	    0x48, 0xc7, 0x00, 0x87, 0x00, 0xe0, 0x00,	/* PD[6] -> 14M */
	    0x0f, 0x20, 0xd8,				/* mov rax, cr3 */
	    0x0f, 0x22, 0xd8,				/* mov cr3, rax */
	    0x48, 0x8b, 0x14, 0x25, 0x00, 0x00, 0xc0, 0x00, /* rdx = [12M] */
	    0xf4 };
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;

	tvm_put(t, 0x200000, code, sizeof(code));
	tvm_long_mode(t, &st, 0x200000);
	tvm_set64(t, TVM_PD + 2 * 8, (2ull << 21) | 0x187);	/* global */
	tvm_set64(t, 0x400000, 0x1111);
	tvm_set64(t, 0xc00000, 0x2222);
	tvm_set64(t, 0xe00000, 0x3333);
	cr_assert_eq(run_fault_vec(t, &st), 0xff, "no fault");
	cr_assert_eq(st.gpr[R_RBX], 0x1111);
	cr_assert_eq(st.gpr[R_RCX], 0x2222);
	cr_assert_eq(st.gpr[R_RDX], 0x3333, "stale after MOV CR3: %#lx",
	    (unsigned long)st.gpr[R_RDX]);
	tvm_free(t);
}

/* 1 GiB at 1 GiB -> 0 (PDPT[1], a 1 GiB page); runs code at 0x200000
 * and expects a #PF at 0x40400000 with error code err. */
static void
huge_page_run(const uint8_t *code, size_t n, uint32_t err)
{
	static const uint8_t f[] = { 0xb8, 1, 0, 0, 0, 0xc3 };	/* eax=1 */
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;
	uint8_t vec;

	tvm_put(t, 0x200000, code, n);
	tvm_put(t, 0x400000, f, sizeof(f));
	tvm_long_mode(t, &st, 0x200000);
	tvm_set64(t, TVM_PDPT + 8, 0x87);
	st.gpr[R_RBX] = 0;
	vec = run_fault_vec(t, &st);
	cr_assert_eq(vec, 14, "no #PF (vector %d), "
	    "rbx %#lx: a stale translation was used",
	    vec, (unsigned long)st.gpr[R_RBX]);
	cr_assert_eq(st.cr2, 0x40400000);
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), err, "error code");
	tvm_free(t);
}

/* An INVLPG anywhere in a 1 GiB page drops what was cached through it,
 * data (another 2 MiB of it) and code (jump caches, chains). */
Test(bt, invlpg_in_a_1g_page_drops_its_data_and_code)
{
	static const uint8_t data[] = {
	    0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x40, 0x40, /* rbx = [..] */
	    0x48, 0xc7, 0x04, 0x25, 0x08, 0x10, 0x01, 0x00, /* PDPT[1] = 0 */
	    0x00, 0x00, 0x00, 0x00,
	    0xb8, 0x00, 0x10, 0x00, 0x40,		/* eax = 1G + 4K */
	    0x0f, 0x01, 0x38,				/* invlpg [rax] */
	    0x48, 0x8b, 0x14, 0x25, 0x00, 0x00, 0x40, 0x40, /* #PF */
	    0xf4 };
	static const uint8_t code[] = {
	    0x41, 0xbc, 0x02, 0x00, 0x00, 0x00,		/* r12d = 2 */
	    0xb8, 0x00, 0x00, 0x40, 0x40,		/* top: eax = f */
	    0xff, 0xd0,					/* call rax */
	    0x49, 0x01, 0xc5,				/* add r13, rax */
	    0x41, 0xff, 0xcc,				/* dec r12d */
	    0x75, 0xf1,					/* jnz top */
	    0x48, 0xc7, 0x04, 0x25, 0x08, 0x10, 0x01, 0x00, /* PDPT[1] = 0 */
	    0x00, 0x00, 0x00, 0x00,
	    0xb8, 0x00, 0x00, 0x00, 0x40,		/* eax = 1G */
	    0x0f, 0x01, 0x38,				/* invlpg [rax] */
	    0xb8, 0x00, 0x00, 0x40, 0x40,		/* eax = f */
	    0xff, 0xd0,					/* call rax: #PF */
	    0x48, 0x89, 0xc3,				/* rbx = rax */
	    0xf4 };

	huge_page_run(data, sizeof(data), 0);
	huge_page_run(code, sizeof(code), 0x10);	/* I/D */
}

/* A block decoded in ring 0 whose last instruction spills onto a
 * supervisor page: run from ring 3, that instruction's fetch faults
 * (and the ones before it run). */
Test(bt, ring3_block_spilling_onto_a_kernel_page_faults)
{
	static const uint8_t code[0x110] = {
	    0xb8, 0xf8, 0xff, 0x3f, 0x00,	/* mov eax, 0x3ffff8 */
	    0xff, 0xd0,				/* call rax (ring 0) */
	    0x6a, 0x23, 0x68, 0x00, 0x00, 0x09, 0x00, 0x6a, 0x02,
	    0x6a, 0x2b, 0x68, 0x00, 0x01, 0x20, 0x00,
	    0x48, 0xcf,				/* iretq to 0x200100 */
	    [0x100] = 0xb8, 0xf8, 0xff, 0x3f, 0x00,	/* mov eax, .. */
	    0xff, 0xe0 };			/* jmp rax (ring 3) */
	/* six NOPs, then mov eax, imm32 across 0x400000, then ret */
	static const uint8_t f[] = { 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
	    0xb8, 0x11, 0x22, 0x33, 0x44, 0xc3 };
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;
	uint8_t vec;

	tvm_put(t, 0x200000, code, sizeof(code));
	tvm_put(t, 0x3ffff8, f, sizeof(f));
	tvm_long_mode(t, &st, 0x200000);
	tvm_set64(t, TVM_PD + 2 * 8, (2ull << 21) | 0x83);	/* U=0 */
	vec = run_fault_vec(t, &st);
	cr_assert_eq(vec, 14, "#PF, not vector %d", vec);
	cr_assert_eq(st.cr2, 0x400000, "cr2 %#lx", (unsigned long)st.cr2);
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 0x15, "P|U|I/D");
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP] + 8), 0x3ffffe,
	    "RIP of the spilling instruction");
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP] + 16), 0x2b, "from ring 3");
	tvm_free(t);
}
