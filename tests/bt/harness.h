/*
 * Test harness for the software CPU: a minimal struct vm built by hand
 * (RAM, the two buses, one vCPU on bt_accel_ops, no device table), a
 * debug port that collects guest output, a watchdog that stops a guest
 * spinning forever, and helpers that put a vCPU straight into 64-bit
 * mode with identity-mapped page tables.
 */
#ifndef TV_TEST_BT_HARNESS_H
#define TV_TEST_BT_HARNESS_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "devices/bus.h"
#include "hv/accel.h"
#include "hv/cpu_state.h"
#include "hv/exit.h"
#include "hv/vm.h"

#define TVM_DEBUG_PORT 0xe9

struct tvm {
	struct vm *vm;
	struct vcpu *vcpu;
	char out[4096];
	size_t nout;
	uint64_t last_out;	/* last value written to port 0xea */
	void (*on_out)(struct tvm *t, uint64_t v);	/* after 0xea writes */
};

static __attribute__((unused)) void
tvm_debug_io(struct vcpu *v, uint64_t off, uint8_t *d, unsigned len,
    bool w, void *opaque)
{
	struct tvm *t = opaque;

	if (!w) {
		memset(d, 0, len);
		return;
	}
	if (off == 0 && t->nout + 1 < sizeof(t->out))
		t->out[t->nout++] = (char)d[0];
	if (off == 1) {
		t->last_out = bus_get(d, len);
		if (t->on_out != NULL)
			t->on_out(t, t->last_out);
	}
}

static __attribute__((unused)) struct tvm *
tvm_new(uint64_t ram)
{
	struct tvm *t = calloc(1, sizeof(*t));
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vcpu *v = calloc(1, sizeof(*v));

	vm->pio = bus_new("pio");
	vm->mmio = bus_new("mmio");
	pthread_mutex_init(&vm->devlock, NULL);
	vm->ram = mmap(NULL, ram, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	vm->ram_size = ram;
	vm->regions[0] = (struct mem_region){ .gpa = 0, .size = ram,
	    .hva = vm->ram, .name = "ram" };
	vm->nregions = 1;
	if (bt_accel_ops.vm_init(vm) != 0)
		abort();
	vm->accel = &bt_accel_ops;
	v->vm = vm;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->wake, NULL);
	if (bt_accel_ops.vcpu_init(v) != 0)
		abort();
	vm->vcpus[0] = v;
	vm->nvcpus = 1;
	bus_register(vm->pio, TVM_DEBUG_PORT, 2, tvm_debug_io, t, "debug");
	t->vm = vm;
	t->vcpu = v;
	return t;
}

static __attribute__((unused)) void
tvm_free(struct tvm *t)
{
	bt_accel_ops.vcpu_fini(t->vcpu);
	bt_accel_ops.vm_fini(t->vm);
	munmap(t->vm->ram, t->vm->ram_size);
	bus_free(t->vm->pio);
	bus_free(t->vm->mmio);
	free(t->vcpu);
	free(t->vm);
	free(t);
}

struct tvm_watch {
	struct vcpu *v;
	int ms;
	volatile int done;
};

static __attribute__((unused)) void *
tvm_watchdog(void *arg)
{
	struct tvm_watch *w = arg;

	for (int k = 0; k < w->ms && !w->done; k++) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
	if (!w->done)
		atomic_fetch_or(&w->v->requests, VCPU_REQ_STOP);
	return NULL;
}

/* Run until HLT, a triple fault, an error or ms milliseconds. */
static __attribute__((unused)) enum vm_exit_kind
tvm_run(struct tvm *t, int ms)
{
	struct tvm_watch w = { t->vcpu, ms, 0 };
	struct vm_exit e;
	pthread_t th;

	pthread_create(&th, NULL, tvm_watchdog, &w);
	for (;;) {
		memset(&e, 0, sizeof(e));
		if (bt_accel_ops.vcpu_run(t->vcpu, &e) != 0) {
			e.kind = VM_EXIT_INTERNAL_ERROR;
			break;
		}
		if (e.kind == VM_EXIT_HLT || e.kind == VM_EXIT_SHUTDOWN ||
		    e.kind == VM_EXIT_INTERNAL_ERROR || e.kind == VM_EXIT_INTR)
			break;
	}
	w.done = 1;
	pthread_join(th, NULL);
	atomic_fetch_and(&t->vcpu->requests, ~(unsigned)VCPU_REQ_STOP);
	return e.kind;
}

static __attribute__((unused)) void
tvm_put(struct tvm *t, uint64_t gpa, const void *p, size_t n)
{
	memcpy(t->vm->ram + gpa, p, n);
}

static __attribute__((unused)) uint64_t
tvm_get64(struct tvm *t, uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, t->vm->ram + gpa, 8);
	return v;
}

static __attribute__((unused)) void
tvm_set64(struct tvm *t, uint64_t gpa, uint64_t v)
{
	memcpy(t->vm->ram + gpa, &v, 8);
}

/* Layout of the 64-bit setup. */
#define TVM_GDT 0x800
#define TVM_IDT 0x3000
#define TVM_STUBS 0x4000	/* 16 bytes per vector */
#define TVM_PML4 0x10000
#define TVM_PDPT 0x11000
#define TVM_PD 0x12000		/* 1 GiB of 2 MiB pages, user-accessible */
#define TVM_FAULT_VEC 0x5100	/* stubs store the vector here */

static __attribute__((unused)) void
tvm_seg(struct cpu_seg *s, uint16_t sel, bool code, bool l, unsigned dpl)
{
	*s = (struct cpu_seg){ .base = 0, .limit = 0xffffffff, .sel = sel,
	    .type = code ? 0xb : 0x3, .s = 1, .dpl = (uint8_t)dpl,
	    .present = 1, .l = l, .db = !l, .g = 1 };
}

/* Long mode at CPL0, RIP = rip, identity map of the first GiB with
 * 2 MiB pages, a GDT (0x08 code64, 0x10 data, 0x18 user code32, 0x20
 * user data, 0x28 user code64, 0x30 TSS) and an IDT whose stubs record
 * the vector at TVM_FAULT_VEC and halt. */
static __attribute__((unused)) void
tvm_long_mode(struct tvm *t, struct cpu_state *st, uint64_t rip)
{
	static const uint64_t gdt[] = { 0, 0x00af9a000000ffffull,
	    0x00cf92000000ffffull, 0x00cffa000000ffffull,
	    0x00cff2000000ffffull, 0x00affa000000ffffull,
	    0x00008b0060000067ull, 0 };

	tvm_put(t, TVM_GDT, gdt, sizeof(gdt));
	tvm_set64(t, TVM_PML4, TVM_PDPT | 7);
	tvm_set64(t, TVM_PDPT, TVM_PD | 7);
	for (uint64_t k = 0; k < 512; k++)
		tvm_set64(t, TVM_PD + k * 8, (k << 21) | 0x87);
	for (int v = 0; v < 32; v++) {
		uint64_t h = TVM_STUBS + v * 16;
		uint8_t stub[16] = { 0xc6, 0x04, 0x25, 0x00, 0x51, 0x00, 0x00,
		    (uint8_t)v, 0xf4, 0xeb, 0xfd };
		uint64_t lo = (h & 0xffff) | (0x08ull << 16) | (0x8eull << 40) |
		    ((h >> 16) & 0xffff) << 48;

		tvm_put(t, h, stub, sizeof(stub));
		tvm_set64(t, TVM_IDT + v * 16, lo);
		tvm_set64(t, TVM_IDT + v * 16 + 8, h >> 32);
	}
	tvm_set64(t, 0x6004, 0x70000);	/* TSS.RSP0 */
	cpu_state_reset(st);
	tvm_seg(&st->seg[SEG_CS], 0x08, true, true, 0);
	for (int s = SEG_ES; s <= SEG_GS; s++)
		if (s != SEG_CS)
			tvm_seg(&st->seg[s], 0x10, false, false, 0);
	st->seg[SEG_TR] = (struct cpu_seg){ .base = 0x6000, .limit = 0x67,
	    .sel = 0x30, .type = 0xb, .present = 1 };
	st->gdt.base = TVM_GDT;
	st->gdt.limit = sizeof(gdt) - 1;
	st->idt.base = TVM_IDT;
	st->idt.limit = 32 * 16 - 1;
	st->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	st->cr3 = TVM_PML4;
	st->cr4 = CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	st->efer = EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE;
	st->rip = rip;
	st->gpr[R_RSP] = 0x80000;
	st->rflags = RFLAGS_FIXED;
}

#endif
