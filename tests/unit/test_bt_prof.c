/*
 * TV_BT_PROF: the guest RIP sampler (prof.c) writes "rip count" lines
 * naming where a spinning guest is, and nothing runs without it.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bt/harness.h"
#include "hv/bt/bt.h"

Test(bt_prof, samples_name_the_spinning_rip)
{
	/* nop; nop; jmp .-2: RIP is 0x200001 or 0x200002 */
	static const uint8_t spin[] = { 0x90, 0x90, 0xeb, 0xfe };
	char base[] = "/tmp/tv-prof-XXXXXX", path[64], line[128];
	unsigned long long rip;
	unsigned n, total = 0, at_spin = 0;
	struct cpu_state st;
	struct tvm *t;
	FILE *f;

	cr_assert_not_null(mkdtemp(base));
	snprintf(path, sizeof(path), "%s/p", base);
	setenv("TV_BT_PROF", path, 1);
	t = tvm_new(16 << 20);
	unsetenv("TV_BT_PROF");
	tvm_put(t, 0x200000, spin, sizeof(spin));
	tvm_long_mode(t, &st, 0x200000);
	cr_assert_eq(bt_accel_ops.set_state(t->vcpu, &st), 0);
	cr_assert_eq(tvm_run(t, 300), VM_EXIT_INTR);
	tvm_free(t);		/* writes the profile a last time */
	snprintf(path, sizeof(path), "%s/p.%d", base, (int)getpid());
	f = fopen(path, "r");
	cr_assert_not_null(f, "no profile at %s", path);
	while (fgets(line, sizeof(line), f) != NULL) {
		cr_assert_eq(sscanf(line, "%llx %u", &rip, &n), 2, "%s", line);
		total += n;
		if (rip >= 0x200000 && rip < 0x200004)
			at_spin += n;
	}
	fclose(f);
	unlink(path);
	rmdir(base);
	cr_assert_gt(total, 10, "%u samples in 300 ms", total);
	cr_assert_geq(at_spin * 10, total * 9, "%u of %u in the loop",
	    at_spin, total);
}
