/*
 * The software CPU with the software irqchip attached: interrupts are
 * taken at the first instruction boundary where the architecture allows
 * them, and the TSC is one clock for every vCPU of the VM.
 */
#include <criterion/criterion.h>

#include "bt/harness.h"
#include "devices/device.h"
#include "devices/irqchip.h"
#include "hv/bt/bt.h"
#include "hv/bt/jit_emit.h"
#include "util/evloop.h"

#define T0 1000000000000ull	/* fake clock start: 1000 s */

/* The harness VM with ncpus vCPUs (vCPU 0 from tvm_new) and the
 * irqchip, on a frozen clock. */
static struct tvm *
irq_tvm(int ncpus)
{
	struct tvm *t;

	vclock_set_fake(true, T0);
	t = tvm_new(16 << 20);
	for (int k = 1; k < ncpus; k++) {
		struct vcpu *v = calloc(1, sizeof(*v));

		cr_assert_not_null(v);
		v->vm = t->vm;
		v->id = k;
		pthread_mutex_init(&v->lock, NULL);
		pthread_cond_init(&v->wake, NULL);
		cr_assert_eq(bt_accel_ops.vcpu_init(v), 0);
		t->vm->vcpus[k] = v;
	}
	t->vm->nvcpus = ncpus;
	t->vm->loop = evloop_new();
	cr_assert_not_null(t->vm->loop);
	cr_assert_eq(irqchip_create(t->vm), 0);
	return t;
}

static void
irq_tvm_free(struct tvm *t)
{
	struct vm *vm = t->vm;

	devices_destroy(vm);
	evloop_free(vm->loop);
	for (int k = 1; k < vm->nvcpus; k++) {
		bt_accel_ops.vcpu_fini(vm->vcpus[k]);
		free(vm->vcpus[k]);
	}
	tvm_free(t);
}

static void
apic_write(struct vm *vm, int cpu, unsigned reg, uint32_t v)
{
	uint8_t d[4];

	bus_put(d, 4, v);
	cr_assert(bus_access(vm->mmio, vm->vcpus[cpu], GPA_LAPIC + reg, d, 4,
	    true));
}

/*
 * sti; nop; cli; hlt with an interrupt already pending: STI's shadow
 * covers the NOP only, so the interrupt must be taken between NOP and
 * CLI even though all four instructions could sit in one block.
 */
Test(bt_irq, pending_interrupt_taken_right_after_the_sti_shadow)
{
	static const uint8_t code[] = { 0xfb, 0x90, 0xfa, 0xf4 };
	struct tvm *t = irq_tvm(1);
	struct cpu_state st;

	tvm_put(t, 0x200000, code, sizeof(code));
	tvm_long_mode(t, &st, 0x200000);
	t->vm->ram[TVM_FAULT_VEC] = 0xff;
	cr_assert_eq(bt_accel_ops.set_state(t->vcpu, &st), 0);
	apic_write(t->vm, 0, 0xf0, 0x1ff);	/* software-enable */
	cr_assert_eq(irqchip_msi(t->vm, GPA_LAPIC, 0x1f), 0);
	cr_assert(irqchip_pending(t->vcpu));
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT);
	bt_accel_ops.get_state(t->vcpu, &st);
	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 0x1f, "interrupt not taken");
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 0x200002,
	    "taken after the NOP, before the CLI");
	irq_tvm_free(t);
}

/* The same with the interrupt taken on the HLT of `sti; hlt` (the idle
 * loop): the HLT is shadowed, so the interrupt wakes it. */
Test(bt_irq, sti_hlt_wakes_on_a_pending_interrupt)
{
	static const uint8_t code[] = { 0xfb, 0xf4, 0xfa, 0xf4 };
	struct tvm *t = irq_tvm(1);
	struct cpu_state st;

	tvm_put(t, 0x200000, code, sizeof(code));
	tvm_long_mode(t, &st, 0x200000);
	t->vm->ram[TVM_FAULT_VEC] = 0xff;
	cr_assert_eq(bt_accel_ops.set_state(t->vcpu, &st), 0);
	apic_write(t->vm, 0, 0xf0, 0x1ff);
	cr_assert_eq(irqchip_msi(t->vm, GPA_LAPIC, 0x1f), 0);
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT);
	bt_accel_ops.get_state(t->vcpu, &st);
	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 0x1f);
	cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 0x200002, "after the HLT");
	irq_tvm_free(t);
}

static void
irq_raise_on_out(struct tvm *t, uint64_t v)
{
	cr_assert_eq(irqchip_msi(t->vm, GPA_LAPIC, 0x1f), 0);
}

/* Three passes of top: cli; sti; nop; inc esi; ... with an interrupt
 * raised (port 0xea) with IF=0 during the second; then HLT. */
static const uint8_t warm_chain_code[] = {
	0xb9, 3, 0, 0, 0,	/* mov ecx, 3 */
	0xfa, 0xfb, 0x90,	/* top: cli; sti; nop */
	0xff, 0xc6,		/* inc esi */
	0xfa,			/* cli */
	0x83, 0xf9, 0x02,	/* cmp ecx, 2 */
	0x75, 0x02,		/* jne +2 */
	0xe6, 0xea,		/* out 0xea, al: raise it */
	0xff, 0xc9,		/* dec ecx */
	0x75, 0xef,		/* jnz top */
	0xf4 };

/*
 * The same boundary with warm chains: three passes of cli; sti; nop;
 * inc esi; ... and an interrupt raised (port 0xea) with IF=0 during the
 * second.  The third pass must take it right after its NOP although the
 * generated code of that block already jumps straight to the next one
 * (jit_chain's irq_hint & IF test).
 */
Test(bt_irq, interrupt_waiting_for_sti_stops_a_warm_chain)
{

	for (int jit = 0; jit < 2; jit++) {
		struct tvm *t;
		struct cpu_state st;

		if (jit)
			unsetenv("TERMVISOR_BT_JIT");
		else
			setenv("TERMVISOR_BT_JIT", "0", 1);
		t = irq_tvm(1);
		unsetenv("TERMVISOR_BT_JIT");
		t->on_out = irq_raise_on_out;
		tvm_put(t, 0x200000, warm_chain_code,
		    sizeof(warm_chain_code));
		tvm_long_mode(t, &st, 0x200000);
		st.gpr[R_RSI] = 0;
		t->vm->ram[TVM_FAULT_VEC] = 0xff;
		cr_assert_eq(bt_accel_ops.set_state(t->vcpu, &st), 0);
		apic_write(t->vm, 0, 0xf0, 0x1ff);
		cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT);
		bt_accel_ops.get_state(t->vcpu, &st);
		cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 0x1f, "jit %d: not "
		    "taken", jit);
		cr_assert_eq(tvm_get64(t, st.gpr[R_RSP]), 0x200008,
		    "jit %d: taken at %#llx", jit, (unsigned long long)
		    tvm_get64(t, st.gpr[R_RSP]));
		cr_assert_eq(st.gpr[R_RSI], 2, "jit %d", jit);
		irq_tvm_free(t);
	}
}

/*
 * The interrupt of the test above leaves the block "top: cli; sti; nop"
 * at its end, and the handler runs next: the block's chain slots must
 * not be spent on the handler (bt_vcpu_loop forgets the block that left
 * when it delivers an event), only on its one successor.
 */
Test(bt_irq, an_interrupt_does_not_take_a_chain_slot)
{
	const struct bt_block *b = NULL;
	struct tvm *t;
	struct bt_cpu *c;
	struct cpu_state st;

	unsetenv("TERMVISOR_BT_JIT");
	t = irq_tvm(1);
	c = t->vcpu->accel;
	cr_assert_not_null(c->jit);
	t->on_out = irq_raise_on_out;
	tvm_put(t, 0x200000, warm_chain_code,
	    sizeof(warm_chain_code));
	tvm_long_mode(t, &st, 0x200000);
	t->vm->ram[TVM_FAULT_VEC] = 0xff;
	cr_assert_eq(bt_accel_ops.set_state(t->vcpu, &st), 0);
	apic_write(t->vm, 0, 0xf0, 0x1ff);
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT);
	cr_assert_eq(t->vm->ram[TVM_FAULT_VEC], 0x1f, "not taken");
	for (int k = 0; k < 4096; k++)
		if (c->jc[k].lin == 0x200005)
			b = c->jc[k].b;
	cr_assert(b != NULL && b->jit != NULL, "no code for the block");
	for (int k = 0; k < 2; k++) {
		uint64_t rip;

		memcpy(&rip, c->jit->rw + b->jslot[k] + SLOT_RIP, 8);
		cr_assert(rip == 1ull << 63 || rip == 0x200008,
		    "slot %d linked for %#llx", k, (unsigned long long)rip);
	}
	irq_tvm_free(t);
}

/*
 * An AP's TSC is the VM's clock: INIT, seconds after boot, must not
 * restart it from 0 (Linux measured that as a warp between CPUs and
 * marked the TSC unstable).  A guest write of the TSC MSR moves only
 * the writing vCPU's TSC.
 */
Test(bt_irq, tsc_is_one_clock_across_vcpus_and_init)
{
	static const uint8_t wrmsr[] = { 0x0f, 0x30, 0xf4 };
	struct tvm *t = irq_tvm(2);
	struct vm *vm = t->vm;
	struct cpu_state s0, s1;
	struct vm_exit e;

	vclock_advance_fake(4000000000ull);
	apic_write(vm, 0, 0xf0, 0x1ff);
	apic_write(vm, 0, 0x310, 1u << 24);	/* INIT to APIC ID 1 */
	apic_write(vm, 0, 0x300, 0x4500);
	memset(&e, 0, sizeof(e));
	cr_assert_eq(bt_accel_ops.vcpu_run(vm->vcpus[1], &e), 0);
	cr_assert_eq(e.kind, VM_EXIT_HLT, "waiting for SIPI");
	vclock_advance_fake(1000);
	bt_accel_ops.get_state(vm->vcpus[0], &s0);
	bt_accel_ops.get_state(vm->vcpus[1], &s1);
	cr_assert_eq(s0.msr.tsc, s1.msr.tsc, "TSC warp %lld",
	    (long long)(s0.msr.tsc - s1.msr.tsc));
	cr_assert_geq(s0.msr.tsc, 4000000000ull);

	/* vCPU 0 writes its TSC: vCPU 1 keeps the VM's clock. */
	tvm_put(t, 0x200000, wrmsr, sizeof(wrmsr));
	tvm_long_mode(t, &s0, 0x200000);
	s0.msr.tsc = s1.msr.tsc;
	s0.gpr[R_RCX] = 0x10;
	s0.gpr[R_RAX] = 5;
	s0.gpr[R_RDX] = 0;
	cr_assert_eq(bt_accel_ops.set_state(vm->vcpus[0], &s0), 0);
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT);
	vclock_advance_fake(1000);
	bt_accel_ops.get_state(vm->vcpus[0], &s0);
	bt_accel_ops.get_state(vm->vcpus[1], &s1);
	cr_assert_eq(s0.msr.tsc, 5 + 1000);
	cr_assert_eq(s1.msr.tsc, 4000000000ull + 2000);
	irq_tvm_free(t);
}
