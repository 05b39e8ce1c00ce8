/*
 * Robustness: random bytes executed as ring-0 64-bit code, with an IDT
 * whose handlers halt.  Whatever the guest does (faults, triple faults,
 * wild MSR/CR writes, port and MMIO accesses, endless loops), vcpu_run
 * must come back with an exit and the process must survive.  The state
 * afterwards must still convert through cpu_state.
 *   BT_FUZZ_ITERS=N for a longer run.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "bt/harness.h"

static uint64_t
xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

Test(bt_fuzz, random_code_never_crashes_the_vmm)
{
	const char *it = getenv("BT_FUZZ_ITERS");
	long iters = it ? atol(it) : 300;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	int kinds[VM_EXIT_KINDS] = { 0 };
	struct tvm *t = tvm_new(16 << 20);

	for (long n = 0; n < iters; n++) {
		struct cpu_state st;
		uint8_t code[256];
		enum vm_exit_kind k;

		for (size_t j = 0; j < sizeof(code); j++)
			code[j] = (uint8_t)xs(&seed);
		/* Some runs start with plausible prefixes/opcodes. */
		if (n % 3 == 0)
			code[0] = 0x48;
		memset(t->vm->ram, 0, 16 << 20);
		tvm_put(t, 0x200000, code, sizeof(code));
		tvm_long_mode(t, &st, 0x200000);
		for (int r = 0; r < 16; r++)
			st.gpr[r] = xs(&seed) % 3 == 0 ? xs(&seed) :
			    0x300000 + (xs(&seed) & 0xffff);
		st.gpr[R_RSP] = 0x80000;
		bt_accel_ops.set_state(t->vcpu, &st);
		k = tvm_run(t, 20);
		cr_assert(k > VM_EXIT_NONE && k < VM_EXIT_KINDS);
		kinds[k]++;
		cr_assert_eq(bt_accel_ops.get_state(t->vcpu, &st), 0);
	}
	tvm_free(t);
	fprintf(stderr, "fuzz: %d hlt, %d shutdown, %d stopped, %d error\n",
	    kinds[VM_EXIT_HLT], kinds[VM_EXIT_SHUTDOWN], kinds[VM_EXIT_INTR],
	    kinds[VM_EXIT_INTERNAL_ERROR]);
}
