/*
 * KVM as the oracle of the software CPU.  The same machine state (long
 * mode, paging, a GDT/IDT/TSS, registers, memory) is loaded into a VM on
 * /dev/kvm and into one on the software CPU; the same instruction
 * sequence runs on both until it ends with an OUT to the end port or
 * takes an exception (every IDT stub reports its vector on a port and
 * stops).  Registers, the flags the architecture defines, CR2, the
 * exception frame and the data page must then be equal.
 *
 * This covers what the host-CPU differential test (test_bt_diff.c)
 * cannot run in a process: ring 0, privileged instructions, exceptions
 * and their error codes, page faults, stack switches through the TSS.
 *
 * On this project's machines /dev/kvm (kvm_pvm) runs guest ring 3
 * natively and emulates ring 0 in the host kernel, whose emulator gives
 * up on some instructions; KVM then hands them to the software CPU (KVM
 * assist), which would make the oracle judge itself: such sequences are
 * counted and not compared.  That KVM also differs from hardware in ways
 * the generator avoids: INT n from ring 3 raises #UD, IN/OUT in ring 3
 * ignore IOPL, SYSCALL leaves the user CS in the reported state, and a
 * vCPU whose state was set to CPL 3 sometimes never runs again (counted,
 * not compared).  On a VMX/SVM host none of this applies.
 *
 * BT_ORACLE_ITERS=N runs N sequences per test from seed BT_ORACLE_BASE
 * (default 1, so that `make check` always runs the same ones; the soak,
 * tests/e2e/slow-bt-soak.sh, picks a new base each time);
 * BT_ORACLE_SEED=S replays one sequence.  Skips when /dev/kvm cannot be
 * opened.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bt/harness.h"
#include "hv/bt/bt.h"
#include "hv/vmconfig.h"

#define RAM (16ull << 20)
#define CODE_GPA 0x100000ull
#define DATA_GPA 0x180000ull	/* data page: compared */
#define USTACK 0x190000ull	/* ring-3 stack top (inside the data area) */
#define KSTACK 0x70000ull	/* TSS.RSP0 */
#define NP_PAGE 0x400000ull	/* 2 MiB page: not present */
#define SUP_PAGE 0x600000ull	/* supervisor only */
#define RO_PAGE 0x800000ull	/* read-only */
#define DATA_LEN 0x10000u
/* IDT stubs OUT to a port that names their vector, so that they change
 * no register: 0xa0 + vector for exceptions, then int 0x80, the end of a
 * sequence, any other vector. */
#define PORT_BASE 0xa0
#define PORT_INT80 0xc0
#define PORT_END 0xc2
#define PORT_OTHER 0xc3
#define IRET_STUB 0x5800ull
#define ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | \
    RFLAGS_SF | RFLAGS_OF)
#define NO_VEC -1

struct ovm {
	struct vm *vm;
	struct vcpu *vcpu;
	const struct accel_ops *ops;
	struct vm_config cfg;
	int vec;		/* vector of the exception taken, or NO_VEC */
	bool ended;
};

static void
ovm_io(struct vcpu *v, uint64_t off, uint8_t *d, unsigned len, bool w,
    void *opaque)
{
	struct ovm *o = opaque;

	if (!w) {
		memset(d, 0xff, len);
		return;
	}
	/* The software CPU may finish its block after the OUT: every OUT
	 * here is followed by `jmp .`, which ends one, so both stop with
	 * RIP on it. */
	if (off < 32)
		o->vec = (int)off;
	else if (off == PORT_INT80 - PORT_BASE)
		o->vec = 0x80;
	else if (off == PORT_OTHER - PORT_BASE)
		o->vec = 0xff;
	o->ended = true;
	atomic_fetch_or(&v->requests, VCPU_REQ_STOP);
}

static int
ovm_new(struct ovm *o, const struct accel_ops *ops)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vcpu *v = calloc(1, sizeof(*v));
	int err;

	memset(o, 0, sizeof(*o));
	vm_config_defaults(&o->cfg);
	o->cfg.cpus = 1;
	o->cfg.memory = RAM;
	vm->cfg = &o->cfg;
	vm->pio = bus_new("pio");
	vm->mmio = bus_new("mmio");
	pthread_mutex_init(&vm->devlock, NULL);
	vm->ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	vm->ram_size = RAM;
	vm->regions[0] = (struct mem_region){ .gpa = 0, .size = RAM,
	    .hva = vm->ram, .name = "ram" };
	vm->nregions = 1;
	if ((err = ops->vm_init(vm)) < 0)
		goto fail;
	vm->accel = ops;
	if ((err = ops->map_mem(vm, &vm->regions[0])) < 0)
		goto fail_vm;
	v->vm = vm;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->wake, NULL);
	vm->vcpus[0] = v;
	vm->nvcpus = 1;
	if ((err = ops->vcpu_init(v)) < 0)
		goto fail_vm;
	bus_register(vm->pio, PORT_BASE, PORT_OTHER - PORT_BASE + 1, ovm_io,
	    o, "oracle");
	o->vm = vm;
	o->vcpu = v;
	o->ops = ops;
	return 0;
fail_vm:
	ops->vm_fini(vm);
fail:
	munmap(vm->ram, RAM);
	bus_free(vm->pio);
	bus_free(vm->mmio);
	free(v);
	free(vm);
	return err;
}

static void
ovm_free(struct ovm *o)
{
	o->ops->vcpu_fini(o->vcpu);
	o->ops->vm_fini(o->vm);
	munmap(o->vm->ram, RAM);
	bus_free(o->vm->pio);
	bus_free(o->vm->mmio);
	free(o->vcpu);
	free(o->vm);
}

/* Stops a vCPU that neither ends nor faults (a generator bug, or a
 * guest loop): the sequence then counts as a mismatch. */
static void *
ovm_watchdog(void *arg)
{
	struct tvm_watch *w = arg;

	for (int k = 0; k < w->ms && !w->done; k++) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
	if (!w->done)
		vcpu_kick(w->v, VCPU_REQ_STOP);
	return NULL;
}

/* Run from st until the end port or an exception; st gets the result. */
static int
ovm_run(struct ovm *o, struct cpu_state *st, int ms)
{
	struct tvm_watch w = { o->vcpu, ms, 0 };
	struct vm_exit e;
	pthread_t th;
	int err;

	o->vec = NO_VEC;
	o->ended = false;
	o->vcpu->assists = 0;
	if ((err = o->ops->set_state(o->vcpu, st)) < 0)
		return err;
	pthread_create(&th, NULL, ovm_watchdog, &w);
	for (;;) {
		memset(&e, 0, sizeof(e));
		if ((err = o->ops->vcpu_run(o->vcpu, &e)) < 0)
			break;
		if (o->ended || e.kind == VM_EXIT_SHUTDOWN ||
		    e.kind == VM_EXIT_INTERNAL_ERROR ||
		    (atomic_load(&o->vcpu->requests) & VCPU_REQ_STOP))
			break;
	}
	w.done = 1;
	pthread_join(th, NULL);
	atomic_fetch_and(&o->vcpu->requests, ~(unsigned)VCPU_REQ_STOP);
	if (err < 0)
		return err;
	if (!o->ended)
		return -ETIMEDOUT;
	return o->ops->get_state(o->vcpu, st);
}

static bool
kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static struct ovm okvm, obt;

static void
setup(void)
{
	if (!kvm_usable())
		cr_skip_test("/dev/kvm cannot be opened: no oracle here");
	/* The oracle is KVM alone: no assist stints, which would run the
	 * ring-0 sequences on the software CPU under test. */
	setenv("TERMVISOR_KVM_STINT", "0", 1);
	cr_assert_eq(ovm_new(&okvm, &kvm_accel_ops), 0);
	cr_assert_eq(ovm_new(&obt, &bt_accel_ops), 0);
}

static void
teardown(void)
{
	if (okvm.vm != NULL)
		ovm_free(&okvm);
	if (obt.vm != NULL)
		ovm_free(&obt);
}

static void
put(struct vm *vm, uint64_t gpa, const void *p, size_t n)
{
	memcpy(vm->ram + gpa, p, n);
	bt_dma_invalidate(vm, gpa, n);
}

static void
set64(struct vm *vm, uint64_t gpa, uint64_t v)
{
	put(vm, gpa, &v, 8);
}

/*
 * The machine both VMs start from: harness.h's long mode set-up (GDT,
 * TSS, identity map of 1 GiB in 2 MiB pages), with IDT stubs that report
 * their vector on a port, gates for int3/into/int 0x80 callable from
 * ring 3, and a not-present, a supervisor-only and a read-only page.
 */
static void
machine(struct vm *vm, struct cpu_state *st, bool user)
{
	struct tvm t = { .vm = vm };

	tvm_long_mode(&t, st, CODE_GPA);
	for (int v = 0; v < 256; v++) {
		uint64_t h = TVM_STUBS + (uint64_t)v * 16;
		/* out %al, $port; jmp . */
		uint8_t port = v < 32 ? PORT_BASE + v : v == 0x80 ?
		    PORT_INT80 : PORT_OTHER;
		uint8_t stub[16] = { 0xe6, port, 0xeb, 0xfe };
		unsigned dpl = (v == 3 || v == 4 || v == 0x80) ? 3 : 0;
		uint64_t lo = (h & 0xffff) | (0x08ull << 16) |
		    ((0x8eull | dpl << 5) << 40) | ((h >> 16) & 0xffff) << 48;

		put(vm, h, stub, sizeof(stub));
		set64(vm, TVM_IDT + (uint64_t)v * 16, lo);
		set64(vm, TVM_IDT + (uint64_t)v * 16 + 8, h >> 32);
	}
	st->idt.limit = 256 * 16 - 1;
	set64(vm, TVM_PD + (NP_PAGE >> 21) * 8, 0);
	set64(vm, TVM_PD + (SUP_PAGE >> 21) * 8, SUP_PAGE | 0x83);
	set64(vm, TVM_PD + (RO_PAGE >> 21) * 8, RO_PAGE | 0x85);
	set64(vm, 0x6004, KSTACK);
	st->msr.lstar = 0x5000;
	st->msr.star = (0x08ull << 32) | (0x1bull << 48);
	st->msr.sfmask = RFLAGS_TF | RFLAGS_DF;
	st->msr.pat = 0x0007040600070406ull;
	st->gpr[R_RSP] = KSTACK;
	st->rflags = RFLAGS_FIXED;
	if (user) {
		/*
		 * Into ring 3 the way an OS goes there, through IRETQ from
		 * ring 0, rather than by loading a ring-3 state: this host's
		 * KVM sometimes never runs a vCPU whose state was set
		 * straight to CPL 3.  User mode runs with interrupts on, as
		 * in every OS (no interrupt source is programmed).
		 */
		uint64_t frame[5] = { CODE_GPA, 0x2b, RFLAGS_FIXED |
		    RFLAGS_IF, USTACK, 0x23 };
		static const uint8_t iretq[] = { 0x48, 0xcf };

		put(vm, KSTACK - sizeof(frame), frame, sizeof(frame));
		put(vm, IRET_STUB, iretq, sizeof(iretq));
		st->gpr[R_RSP] = KSTACK - sizeof(frame);
		st->rip = IRET_STUB;
	}
}

Test(bt_oracle, harness_runs_both, .init = setup, .fini = teardown)
{
	/* mov $0x1234, %eax; add %eax, %eax; then the end: out %al,
	 * $PORT_END in ring 0, ud2 in ring 3 (#UD's stub reports it) */
	static const uint8_t code[] = { 0xb8, 0x34, 0x12, 0, 0, 0x01, 0xc0,
	    0xe6, PORT_END, 0xeb, 0xfe };
	static const uint8_t ucode[] = { 0xb8, 0x34, 0x12, 0, 0, 0x01, 0xc0,
	    0x0f, 0x0b, 0xeb, 0xfe };
	struct ovm *vms[2] = { &okvm, &obt };

	for (int user = 0; user < 2; user++)
		for (int k = 0; k < 2; k++) {
			struct cpu_state st;

			machine(vms[k]->vm, &st, user);
			put(vms[k]->vm, CODE_GPA, user ? ucode : code,
			    sizeof(code));
			cr_assert_eq(ovm_run(vms[k], &st, 5000), 0,
			    "%s ring %d", vms[k]->ops->name, user * 3);
			cr_assert_eq(vms[k]->vec, user ? 6 : NO_VEC,
			    "%s ring %d: vector %d", vms[k]->ops->name,
			    user * 3, vms[k]->vec);
			cr_assert_eq(st.gpr[R_RAX], 0x2468, "%s ring %d: rax %#"
			    PRIx64, vms[k]->ops->name, user * 3,
			    st.gpr[R_RAX]);
			cr_assert_eq(st.rip, user ? TVM_STUBS + 6 * 16 + 2 :
			    CODE_GPA + sizeof(code) - 2, "%s ring %d: rip %#"
			    PRIx64, vms[k]->ops->name, user * 3, st.rip);
		}
}

/* --- sequences --- */

#define SEQ_MAX 64

struct seq {
	uint8_t code[2048];
	size_t n;
	size_t starts[SEQ_MAX + 8];	/* instruction starts */
	int ninsn;
	uint64_t defined;		/* arithmetic flags defined at the end */
	uint64_t defined_min;		/* ... at every instruction boundary */
	uint64_t rng;
	bool user;
};

static uint64_t
rnd(struct seq *q)
{
	q->rng ^= q->rng << 13;
	q->rng ^= q->rng >> 7;
	q->rng ^= q->rng << 17;
	return q->rng;
}

static unsigned
rn(struct seq *q, unsigned n)
{
	return (unsigned)(rnd(q) % n);
}

static void
emit(struct seq *q, const uint8_t *p, size_t n)
{
	memcpy(q->code + q->n, p, n);
	q->n += n;
}

#define E(q, ...) do {							\
	static const uint8_t b_[] = { __VA_ARGS__ };			\
	emit(q, b_, sizeof(b_));					\
} while (0)

static void
emit8(struct seq *q, unsigned v)
{
	q->code[q->n++] = (uint8_t)v;
}

static void
emit64(struct seq *q, uint64_t v)
{
	memcpy(q->code + q->n, &v, 8);
	q->n += 8;
}

/*
 * Registers the sequences may write: never RSP, RBP (the base of memory
 * operands: the data page), RBX or RSI (pointers the generator chooses,
 * so that accesses go where it means them to: the data page, a page that
 * faults, or a non-canonical address, never outside RAM).
 */
static unsigned
wreg(struct seq *q)
{
	static const uint8_t ok[] = { 0, 1, 2, 7, 8, 9, 10, 11, 12, 13, 14,
	    15 };

	return ok[rn(q, sizeof(ok))];
}

/* REX.W op /r with reg r and rm m (register forms). */
static void
rr64(struct seq *q, unsigned op, unsigned r, unsigned m)
{
	emit8(q, 0x48 | (r & 8) >> 1 | (m & 8) >> 3);
	emit8(q, op);
	emit8(q, 0xc0 | (r & 7) << 3 | (m & 7));
}

/* REX.W op /r with [rbp + disp8] inside the data page. */
static void
rm64(struct seq *q, unsigned op, unsigned r)
{
	emit8(q, 0x48 | (r & 8) >> 1);
	emit8(q, op);
	emit8(q, 0x45 | (r & 7) << 3);
	emit8(q, (rn(q, 32) * 8 - 0x80) & 0xff);
}

/* Make every arithmetic flag defined (cmp r, r'). */
static void
flags_all(struct seq *q)
{
	if (q->defined != ARITH) {
		rr64(q, 0x39, wreg(q), wreg(q));
		q->defined = ARITH;
	}
}

/* Ordinary work between the interesting instructions. */
static void
gen_plain(struct seq *q)
{
	unsigned r = wreg(q), m = wreg(q), op = rn(q, 8);

	switch (rn(q, 7)) {
	case 0:		/* ALU r, r' (ADC/SBB read CF) */
		if (op == 2 || op == 3)
			flags_all(q);
		rr64(q, op * 8 + 1, r, m);
		q->defined = op == 1 || op == 4 || op == 6 ?
		    ARITH & ~RFLAGS_AF : ARITH;
		break;
	case 1:		/* ALU r, [rbp + d] / [rbp + d], r */
		if (op == 2 || op == 3)
			flags_all(q);
		rm64(q, op * 8 + 1 + 2 * rn(q, 2), r);
		q->defined = op == 1 || op == 4 || op == 6 ?
		    ARITH & ~RFLAGS_AF : ARITH;
		break;
	case 2:		/* MOVABS r, imm64 */
		emit8(q, 0x48 | (r & 8) >> 3);
		emit8(q, 0xb8 + (r & 7));
		emit64(q, rnd(q));
		break;
	case 3:		/* PUSH r / POP r' */
		if (r & 8)
			emit8(q, 0x41);
		emit8(q, 0x50 + (r & 7));
		if (m & 8)
			emit8(q, 0x41);
		emit8(q, 0x58 + (m & 7));
		break;
	case 4:		/* SHL/SHR/SAR r, 1: AF undefined */
		rr64(q, 0xd1, (unsigned[]){ 4, 5, 7 }[rn(q, 3)], m);
		q->defined = ARITH & ~RFLAGS_AF;
		break;
	case 5:		/* SETcc / CMOVcc */
		flags_all(q);
		if (rn(q, 2)) {
			emit8(q, 0x40 | (m & 8) >> 3);
			emit8(q, 0x0f);
			emit8(q, 0x90 + rn(q, 16));
			emit8(q, 0xc0 | (m & 7));
		} else {
			emit8(q, 0x48 | (r & 8) >> 1 | (m & 8) >> 3);
			emit8(q, 0x0f);
			emit8(q, 0x40 + rn(q, 16));
			emit8(q, 0xc0 | (r & 7) << 3 | (m & 7));
		}
		break;
	default:	/* MOV [rbp + d], r or back */
		rm64(q, rn(q, 2) ? 0x89 : 0x8b, r);
		break;
	}
}

/* Point RBX at a place chosen to fault (or not). */
static void
gen_pointer(struct seq *q)
{
	static const uint64_t where[] = { DATA_GPA + 0x400, NP_PAGE + 0x88,
	    SUP_PAGE + 0x1000, RO_PAGE + 0x2000, 0x8000000000001000ull,
	    DATA_GPA + 0xffc };

	E(q, 0x48, 0xbb);	/* movabs rbx */
	emit64(q, where[rn(q, sizeof(where) / sizeof(where[0]))]);
}

/* Instructions for ring 0: system state both CPUs must model alike. */
static void
gen_system(struct seq *q)
{
	unsigned r = wreg(q);

	switch (rn(q, 12)) {
	case 0:		/* mov %cr2, r / mov r, %cr2 */
		E(q, 0x0f, 0x20, 0xd0 | 0);	/* mov %cr2, %rax */
		if (rn(q, 2))
			E(q, 0x0f, 0x22, 0xd1);	/* mov %rcx, %cr2 */
		break;
	case 1:		/* sgdt / sidt [rbp + d] */
		emit8(q, 0x0f);
		emit8(q, 0x01);
		emit8(q, rn(q, 2) ? 0x45 : 0x4d);
		emit8(q, rn(q, 16) * 8);
		break;
	case 2:		/* str / sldt %ax */
		E(q, 0x0f, 0x00, 0xc8);		/* str %eax */
		break;
	case 3:		/* wrmsr / rdmsr of KERNEL_GS_BASE, then swapgs */
		E(q, 0xb9, 0x02, 0x01, 0x00, 0xc0);	/* mov $0xc0000102, %ecx */
		E(q, 0x0f, 0x30);			/* wrmsr */
		E(q, 0x0f, 0x01, 0xf8);			/* swapgs */
		E(q, 0x0f, 0x32);			/* rdmsr */
		break;
	case 4:		/* pushfq / popfq */
		flags_all(q);
		E(q, 0x9c);			/* pushfq */
		if (rn(q, 2)) {
			E(q, 0x48, 0x83, 0x34, 0x24, 0x01);	/* xorq $1, (%rsp) */
			q->defined = ARITH;
		}
		E(q, 0x9d);			/* popfq */
		break;
	case 5:		/* cli / clc / stc / cmc / cld / std+cld */
		E(q, 0xfa, 0xf9, 0xf5, 0xfc);
		q->defined |= RFLAGS_CF;
		break;
	case 6:		/* rdmsr of STAR / LSTAR / SFMASK */
		emit8(q, 0xb9);
		emit8(q, (unsigned[]){ 0x81, 0x82, 0x84 }[rn(q, 3)]);
		E(q, 0x00, 0x00, 0xc0, 0x0f, 0x32);
		break;
	case 7:		/* rdmsr of an MSR nobody has: #GP(0) */
		E(q, 0xb9, 0x78, 0x56, 0x34, 0x12, 0x0f, 0x32);
		break;
	case 8:		/* invlpg [rbx] */
		gen_pointer(q);
		E(q, 0x0f, 0x01, 0x3b);
		break;
	case 9:		/* mov %cr0/%cr3/%cr4, r */
		emit8(q, 0x48 | (r & 8) >> 3);
		emit8(q, 0x0f);
		emit8(q, 0x20);
		emit8(q, 0xc0 | (unsigned[]){ 0, 3, 4 }[rn(q, 3)] << 3 |
		    (r & 7));
		break;
	case 10:	/* lea/xchg around the stack */
		E(q, 0x48, 0x87, 0x45, 0x10);	/* xchg %rax, 0x10(%rbp) */
		break;
	default:	/* mov %ss, %ax / mov %ax, %ds */
		E(q, 0x8c, 0xd0);
		break;
	}
}

/* The last instruction: often one that faults. */
static void
gen_last(struct seq *q)
{
	unsigned k = rn(q, 14);

	switch (k) {
	case 0:		/* mov (%rbx), %rax */
		gen_pointer(q);
		E(q, 0x48, 0x8b, 0x03);
		break;
	case 1:		/* mov %rax, (%rbx) */
		gen_pointer(q);
		E(q, 0x48, 0x89, 0x03);
		break;
	case 2:		/* div %rcx (rdx:rax / rcx: #DE often) */
		if (rn(q, 2))
			E(q, 0x31, 0xc9);	/* xor %ecx, %ecx */
		E(q, 0x48, 0xf7, 0xf1);
		q->defined = 0;
		break;
	case 3:		/* ud2 (in ring 3 the end is one already) */
		if (!q->user)
			E(q, 0x0f, 0x0b);
		break;
	case 4:		/* opcodes invalid in 64-bit mode */
		emit8(q, (unsigned[]){ 0x06, 0x27, 0xd6, 0xce, 0x60 }[rn(q,
		    5)]);
		break;
	case 5:		/* int $0x80 (a gate ring 3 may use) */
	case 6:		/* int $0x21 (DPL 0: #GP from ring 3) */
		/* Not from ring 3: this host's KVM turns INT n there into
		 * #UD. */
		if (!q->user) {
			emit8(q, 0xcd);
			emit8(q, k == 5 ? 0x80 : 0x21);
		}
		break;
	case 7:		/* jump into a page that is not there */
		E(q, 0x48, 0xb8);
		emit64(q, NP_PAGE + 0x123);
		E(q, 0xff, 0xe0);
		break;
	case 8:		/* privileged: hlt (ring 0: skip) / cli */
		if (q->user)
			E(q, 0xf4);
		else
			E(q, 0x0f, 0x0b);
		break;
	case 9:		/* mov %cr0, %rax; wrmsr; lgdt (%rbp): #GP in ring 3 */
		if (q->user)
			emit(q, (const uint8_t *[]){
			    (const uint8_t []){ 0x0f, 0x20, 0xc0 },
			    (const uint8_t []){ 0x0f, 0x30, 0x90 },
			    (const uint8_t []){ 0x0f, 0x01, 0x55 } }[rn(q, 3)],
			    3);
		else
			E(q, 0x0f, 0x0b);
		break;
	case 10:	/* cli without I/O privilege (not IN/OUT: this
			 * host's KVM lets ring 3 do port I/O whatever IOPL) */
		if (q->user)
			E(q, 0xfa);
		else
			E(q, 0x0f, 0x0b);
		break;
	case 11:	/* push past the top of RAM's mapping? pop from it */
		gen_pointer(q);
		E(q, 0xff, 0x33);	/* push (%rbx) */
		break;
	default:
		break;		/* just end */
	}
}

static void
seq_gen(struct seq *q, uint64_t seed, bool user)
{
	int n;

	memset(q, 0, sizeof(*q));
	q->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	q->user = user;
	q->defined = ARITH;
	n = 1 + (int)rn(q, 12);
	q->defined_min = ARITH;
	for (int i = 0; i < n; i++) {
		q->starts[q->ninsn++] = q->n;
		if (!user && rn(q, 3) == 0)
			gen_system(q);
		else
			gen_plain(q);
		q->defined_min &= q->defined;
	}
	q->starts[q->ninsn++] = q->n;
	gen_last(q);
	q->defined_min &= q->defined;
	q->starts[q->ninsn++] = q->n;
	/* The end: the flags must all be defined where they get saved
	 * (the interrupt frame). */
	if (user) {
		flags_all(q);
		E(q, 0x0f, 0x0b);	/* ud2: #UD */
	} else {
		E(q, 0xe6, PORT_END);
	}
	E(q, 0xeb, 0xfe);
}

/* --- running and comparing --- */

struct outcome {
	struct cpu_state st;
	int vec;
	int err;
	uint8_t data[DATA_LEN];
	uint8_t kstack[0x1000];
	uint64_t assists;
};

static void
run_one(struct ovm *o, const struct seq *q, uint64_t seed,
    struct outcome *out)
{
	struct seq init = { .rng = seed ^ 0x5bd1e995u };
	struct cpu_state st;
	uint8_t data[DATA_LEN];

	memset(o->vm->ram + KSTACK - sizeof(out->kstack), 0,
	    sizeof(out->kstack));
	machine(o->vm, &st, q->user);
	for (int r = 0; r < 16; r++)
		if (r != R_RSP)
			st.gpr[r] = rn(&init, 4) ? rnd(&init) : rn(&init, 64);
	st.gpr[R_RBP] = DATA_GPA + 0x800;
	st.gpr[R_RBX] = DATA_GPA + 0x100;
	st.gpr[R_RSI] = DATA_GPA + 0x200;
	st.rflags |= rnd(&init) & ARITH;
	for (size_t i = 0; i < sizeof(data); i += 8) {
		uint64_t v = rnd(&init);

		memcpy(data + i, &v, 8);
	}
	put(o->vm, DATA_GPA, data, sizeof(data));
	put(o->vm, CODE_GPA, q->code, q->n);
	out->err = ovm_run(o, &st, 1000);
	out->st = st;
	out->vec = o->vec;
	out->assists = o->vcpu->assists;
	memcpy(out->data, o->vm->ram + DATA_GPA, sizeof(out->data));
	memcpy(out->kstack, o->vm->ram + KSTACK - sizeof(out->kstack),
	    sizeof(out->kstack));
}

static bool
vec_has_error(int vec)
{
	return vec == 8 || (vec >= 10 && vec <= 14) || vec == 17;
}

/* Which instruction of q is at rip (or -1). */
static int
seq_index(const struct seq *q, uint64_t rip)
{
	for (int i = q->ninsn - 1; i >= 0; i--)
		if (rip >= CODE_GPA + q->starts[i])
			return i;
	return -1;
}

#define DIFF(...) do {							\
	n += snprintf(why + n, n < len ? len - n : 0, __VA_ARGS__);	\
	bad = true;							\
} while (0)

static bool
compare(const struct seq *q, const struct outcome *k, const struct outcome *b,
    char *why, size_t len)
{
	uint64_t undef = ARITH & ~(k->vec == NO_VEC ? q->defined :
	    q->defined_min);
	size_t n = 0;
	bool bad = false;

	if (k->err != b->err)
		DIFF("run: kvm %d, bt %d; ", k->err, b->err);
	if (k->vec != b->vec)
		DIFF("vector: kvm %d, bt %d; ", k->vec, b->vec);
	if (k->st.rip != b->st.rip)
		DIFF("rip: kvm %#" PRIx64 ", bt %#" PRIx64 "; ", k->st.rip,
		    b->st.rip);
	for (int r = 0; r < 16; r++) {
		if (k->st.gpr[r] != b->st.gpr[r])
			DIFF("r%d: kvm %#" PRIx64 ", bt %#" PRIx64 "; ", r,
			    k->st.gpr[r], b->st.gpr[r]);
	}
	if ((k->st.rflags ^ b->st.rflags) & ~undef)
		DIFF("rflags: kvm %#" PRIx64 ", bt %#" PRIx64 "; ",
		    k->st.rflags, b->st.rflags);
	if (k->vec == 14 && k->st.cr2 != b->st.cr2)
		DIFF("cr2: kvm %#" PRIx64 ", bt %#" PRIx64 "; ", k->st.cr2,
		    b->st.cr2);
	if (k->st.seg[SEG_CS].sel != b->st.seg[SEG_CS].sel ||
	    k->st.seg[SEG_SS].sel != b->st.seg[SEG_SS].sel)
		DIFF("cs/ss: kvm %#x/%#x, bt %#x/%#x; ",
		    k->st.seg[SEG_CS].sel, k->st.seg[SEG_SS].sel,
		    b->st.seg[SEG_CS].sel, b->st.seg[SEG_SS].sel);
	if (k->st.seg[SEG_GS].base != b->st.seg[SEG_GS].base ||
	    k->st.msr.kernel_gs_base != b->st.msr.kernel_gs_base)
		DIFF("gs base/kernel gs base: kvm %#" PRIx64 "/%#" PRIx64
		    ", bt %#" PRIx64 "/%#" PRIx64 "; ",
		    k->st.seg[SEG_GS].base, k->st.msr.kernel_gs_base,
		    b->st.seg[SEG_GS].base, b->st.msr.kernel_gs_base);
	for (size_t i = 0; i < DATA_LEN; i++)
		if (k->data[i] != b->data[i]) {
			DIFF("data+%#zx: kvm %#x, bt %#x; ", i, k->data[i],
			    b->data[i]);
			break;
		}
	for (size_t i = 0; i < sizeof(k->kstack); i += 8) {
		uint64_t a, c, m = ~0ull, gpa = KSTACK - sizeof(k->kstack) + i;

		memcpy(&a, k->kstack + i, 8);
		memcpy(&c, b->kstack + i, 8);
		/* The RFLAGS image of an exception frame. */
		if (k->vec >= 0 && k->vec < 256 &&
		    gpa == k->st.gpr[R_RSP] + (vec_has_error(k->vec) ? 24 : 16))
			m = ~undef;
		if ((a ^ c) & m) {
			DIFF("stack %#" PRIx64 ": kvm %#" PRIx64 ", bt %#"
			    PRIx64 "; ", gpa, a, c);
			break;
		}
	}
	return !bad;
}

static unsigned
iterations(unsigned dflt)
{
	const char *e = getenv("BT_ORACLE_ITERS");

	return e != NULL ? (unsigned)strtoul(e, NULL, 0) : dflt;
}

static void
oracle(bool user, unsigned dflt)
{
	static struct outcome k, b;
	const char *seed_env = getenv("BT_ORACLE_SEED");
	const char *base_env = getenv("BT_ORACLE_BASE");
	uint64_t base = seed_env != NULL ? strtoull(seed_env, NULL, 0) :
	    base_env != NULL ? strtoull(base_env, NULL, 0) : 1;
	unsigned iters = seed_env != NULL ? 1 : iterations(dflt);
	unsigned bad = 0, assisted = 0, compared = 0, stuck = 0;

	for (unsigned i = 0; i < iters; i++) {
		uint64_t seed = base + i;
		struct seq q;
		char why[2048];

		seq_gen(&q, seed, user);
		run_one(&okvm, &q, seed, &k);
		if (k.assists > 0) {
			assisted++;
			continue;
		}
		/* This host's KVM sometimes never resumes a vCPU whose state
		 * the VMM set to CPL 3 (here after the assisted IRETQ): no
		 * verdict then. */
		if (k.err == -ETIMEDOUT) {
			stuck++;
			continue;
		}
		run_one(&obt, &q, seed, &b);
		compared++;
		if (compare(&q, &k, &b, why, sizeof(why)))
			continue;
		if (++bad <= 5) {
			char hex[3 * sizeof(q.code) + 1];
			size_t h = 0;

			for (size_t j = 0; j < q.n; j++)
				h += (size_t)sprintf(hex + h, "%02x%s",
				    q.code[j], (j + 1 < q.n && q.n > 0 &&
				    seq_index(&q, CODE_GPA + j + 1) !=
				    seq_index(&q, CODE_GPA + j)) ? " | " : " ");
			cr_log_error("ring %d, BT_ORACLE_SEED=%#" PRIx64
			    ": stopped at instruction %d (kvm) / %d (bt)\n"
			    "  code: %s\n  %s", user ? 3 : 0, seed,
			    seq_index(&q, k.st.rip), seq_index(&q, b.st.rip),
			    hex, why);
		}
	}
	cr_log_info("ring %d: %u sequences compared, %u mismatches; not "
	    "compared: %u where KVM handed an instruction to the software "
	    "CPU, %u where KVM did not run", user ? 3 : 0, compared, bad,
	    assisted, stuck);
	cr_assert_eq(bad, 0, "%u of %u sequences differ (see above)", bad,
	    compared);
	cr_assert_gt(compared, 0, "nothing was compared");
}

Test(bt_oracle, ring3_faults_and_integer, .init = setup, .fini = teardown)
{
	oracle(true, 80);
}

Test(bt_oracle, ring0_system_and_faults, .init = setup, .fini = teardown)
{
	oracle(false, 80);
}
