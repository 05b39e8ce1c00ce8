/*
 * REP MOVSB/STOSB as Linux runs them once CPUID offers ERMS/FSRM
 * (copy_user, memcpy, clear_page): exec_str.c copies a page at a time
 * on the host, and must still stop exactly where a page fault strikes
 * (the kernel's fixup counts the bytes not copied from RCX), copy
 * overlapping and backward moves element by element, and drop
 * translated code it writes over.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "bt/harness.h"
#include "hv/bt/bt.h"
#include "hv/vmconfig.h"

#define PT 0x13000	/* a 4 KiB page table for 0x400000-0x5fffff */

static struct tvm *
str_vm(const uint8_t *code, size_t n, struct cpu_state *st)
{
	struct tvm *t = tvm_new(16 << 20);

	tvm_put(t, 0x200000, code, n);
	tvm_long_mode(t, st, 0x200000);
	t->vm->ram[TVM_FAULT_VEC] = 0xff;
	return t;
}

static void
str_run(struct tvm *t, struct cpu_state *st)
{
	enum vm_exit_kind k;

	cr_assert_eq(bt_accel_ops.set_state(t->vcpu, st), 0);
	k = tvm_run(t, 5000);
	cr_assert_eq(k, VM_EXIT_HLT, "exit kind %d", k);
	bt_accel_ops.get_state(t->vcpu, st);
}

/* CPUID.7.0: ERMS (EBX 9) and FSRM (EDX 4), none under "baseline". */
static void
str_cpuid7(const char *model, uint32_t ebx, uint32_t edx)
{
	/* mov eax, 7; xor ecx, ecx; cpuid; hlt */
	static const uint8_t code[] = { 0xb8, 7, 0, 0, 0, 0x31, 0xc9, 0x0f,
	    0xa2, 0xf4 };
	struct vm_config cfg;
	struct cpu_state st;
	struct tvm *t = str_vm(code, sizeof(code), &st);

	if (model != NULL) {
		vm_config_defaults(&cfg);
		snprintf(cfg.cpu, sizeof(cfg.cpu), "%s", model);
		t->vm->cfg = &cfg;
	}
	str_run(t, &st);
	cr_assert_eq((uint32_t)st.gpr[R_RBX], ebx, "%s: ebx %#x", model,
	    (unsigned)st.gpr[R_RBX]);
	cr_assert_eq((uint32_t)st.gpr[R_RDX], edx);
	t->vm->cfg = NULL;
	tvm_free(t);
}

Test(bt_str, cpuid_offers_fast_strings_outside_baseline)
{
	str_cpuid7(NULL, 1u << 9, 1u << 4);
	str_cpuid7("baseline", 0, 0);
}

/*
 * rep movsb of 0x2000 bytes from 0x300000 to 0x401800, where the page
 * at 0x403000 is not present: the #PF comes with 0x1800 bytes copied,
 * RSI/RDI advanced by exactly that, RCX = 0x800, CR2 = 0x403000 and the
 * REP instruction's own address on the stack, to be restarted.
 */
Test(bt_str, rep_movsb_fault_mid_copy_is_exact)
{
	/* mov esi, 0x300000; mov edi, 0x401800; mov ecx, 0x2000;
	 * rep movsb; hlt */
	static const uint8_t code[] = { 0xbe, 0, 0, 0x30, 0, 0xbf, 0, 0x18,
	    0x40, 0, 0xb9, 0, 0x20, 0, 0, 0xf3, 0xa4, 0xf4 };
	struct cpu_state st;
	struct tvm *t = str_vm(code, sizeof(code), &st);
	uint8_t *ram = t->vm->ram;

	tvm_set64(t, TVM_PD + 2 * 8, PT | 7);
	for (uint64_t k = 0; k < 512; k++)
		tvm_set64(t, PT + k * 8, k == 3 ? 0 : (0x400000 + k * 4096) | 7);
	for (int k = 0; k < 0x2000; k++)
		ram[0x300000 + k] = (uint8_t)(k * 7 + 1);
	str_run(t, &st);
	cr_assert_eq(ram[TVM_FAULT_VEC], 14);
	cr_assert_eq(st.cr2, 0x403000);
	cr_assert_eq(st.gpr[R_RCX], 0x800);
	cr_assert_eq(st.gpr[R_RSI], 0x301800);
	cr_assert_eq(st.gpr[R_RDI], 0x403000);
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP] + 8), 0x20000f, "faulting RIP");
	cr_assert_eq(memcmp(ram + 0x401800, ram + 0x300000, 0x1800), 0);
	cr_assert_eq(ram[0x4017ff], 0, "nothing before the destination");
	tvm_free(t);
}

/* The same for rep stosb (clear_page_erms, memset) at a fault. */
Test(bt_str, rep_stosb_fault_mid_fill_is_exact)
{
	/* mov edi, 0x402100; mov ecx, 0x3000; mov al, 0x5a; rep stosb */
	static const uint8_t code[] = { 0xbf, 0, 0x21, 0x40, 0, 0xb9, 0, 0x30,
	    0, 0, 0xb0, 0x5a, 0xf3, 0xaa, 0xf4 };
	struct cpu_state st;
	struct tvm *t = str_vm(code, sizeof(code), &st);
	uint8_t *ram = t->vm->ram;

	tvm_set64(t, TVM_PD + 2 * 8, PT | 7);
	for (uint64_t k = 0; k < 512; k++)
		tvm_set64(t, PT + k * 8, k == 3 ? 0 : (0x400000 + k * 4096) | 7);
	str_run(t, &st);
	cr_assert_eq(ram[TVM_FAULT_VEC], 14);
	cr_assert_eq(st.cr2, 0x403000);
	cr_assert_eq(st.gpr[R_RCX], 0x3000 - 0xf00);
	cr_assert_eq(st.gpr[R_RDI], 0x403000);
	for (int k = 0x402100; k < 0x403000; k++)
		cr_assert_eq(ram[k], 0x5a, "byte %#x", k);
	cr_assert_eq(ram[0x4020ff], 0);
	tvm_free(t);
}

/* Backward (DF=1) and overlapping forward moves keep their element by
 * element meaning: memmove when the source is above, smearing when the
 * destination overlaps it from above. */
Test(bt_str, rep_movsb_backward_and_overlap)
{
	/* std; mov esi, 0x3000ff; mov edi, 0x30017f; mov ecx, 0x100;
	 * rep movsb; cld; mov esi, 0x310000; mov edi, 0x310003;
	 * mov ecx, 0x1000; rep movsb; hlt */
	static const uint8_t code[] = { 0xfd, 0xbe, 0xff, 0, 0x30, 0, 0xbf,
	    0x7f, 1, 0x30, 0, 0xb9, 0, 1, 0, 0, 0xf3, 0xa4, 0xfc, 0xbe, 0,
	    0, 0x31, 0, 0xbf, 3, 0, 0x31, 0, 0xb9, 0, 0x10, 0, 0, 0xf3,
	    0xa4, 0xf4 };
	uint8_t want[0x180];
	struct cpu_state st;
	struct tvm *t = str_vm(code, sizeof(code), &st);
	uint8_t *ram = t->vm->ram;

	for (int k = 0; k < 0x180; k++)
		ram[0x300000 + k] = want[k] = (uint8_t)(k + 3);
	memmove(want + 0x80, want, 0x100);
	memcpy(ram + 0x310000, "xyz", 3);
	str_run(t, &st);
	cr_assert_eq(memcmp(ram + 0x300000, want, sizeof(want)), 0);
	cr_assert_eq(st.gpr[R_RSI], 0x311000);
	cr_assert_eq(st.gpr[R_RDI], 0x311003);
	for (int k = 0; k < 0x1003; k++)
		cr_assert_eq(ram[0x310000 + k], "xyz"[k % 3], "byte %d", k);
	tvm_free(t);
}

/*
 * Code run once (so translated), then overwritten by rep movsb across
 * two pages, then run again: the new bytes run, in both pages.
 */
Test(bt_str, rep_movsb_over_translated_code)
{
	/* 0: call 0x201000; call 0x202000; mov esi, 0x300000;
	 * mov edi, 0x201000; mov ecx, 0x2000; rep movsb;
	 * call 0x201000; call 0x202000; hlt */
	static const uint8_t code[] = { 0xe8, 0xfb, 0x0f, 0, 0, 0xe8, 0xf6,
	    0x1f, 0, 0, 0xbe, 0, 0, 0x30, 0, 0xbf, 0, 0x10, 0x20, 0, 0xb9,
	    0, 0x20, 0, 0, 0xf3, 0xa4, 0xe8, 0xe0, 0x0f, 0, 0, 0xe8, 0xdb,
	    0x1f, 0, 0, 0xf4 };
	/* mov eax, 1; ret / mov ebx, 1; ret, and the same with 2 */
	static const uint8_t f1[] = { 0xb8, 1, 0, 0, 0, 0xc3 };
	static const uint8_t g1[] = { 0xbb, 1, 0, 0, 0, 0xc3 };
	struct cpu_state st;
	struct tvm *t = str_vm(code, sizeof(code), &st);
	uint8_t *ram = t->vm->ram;

	tvm_put(t, 0x201000, f1, sizeof(f1));
	tvm_put(t, 0x202000, g1, sizeof(g1));
	tvm_put(t, 0x300000, f1, sizeof(f1));
	tvm_put(t, 0x301000, g1, sizeof(g1));
	ram[0x300001] = 2;
	ram[0x301001] = 2;
	str_run(t, &st);
	cr_assert_eq(ram[TVM_FAULT_VEC], 0xff, "no fault");
	cr_assert_eq(st.gpr[R_RAX], 2);
	cr_assert_eq(st.gpr[R_RBX], 2);
	cr_assert_eq(st.gpr[R_RCX], 0);
	tvm_free(t);
}
