/*
 * The software CPU as an accelerator (accel.h): per-VM code-page
 * tracking, per-vCPU cores, the run loop with interrupt delivery between
 * blocks, state conversion, and the KVM assist entry point.
 */
#include "hv/bt/bt.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <x86intrin.h>

#include "devices/irqchip.h"
#include "hv/bt/bt_internal.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/evloop.h"
#include "util/log.h"

static struct bt_vm *
bt_vm_alloc(struct vm *vm)
{
	struct bt_vm *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->npages = ((vm->ram_size + 0xfff) >> 12) + BT_DEV_PAGES;
	b->dev_next = (vm->ram_size + 0xfff) >> 12;
	for (int k = 0; k < 16; k++)
		b->dev_page[k] = -1;
	b->tsc_offset = -vclock_ns();	/* the TSC starts at 0 */
	b->code = calloc(b->npages ? b->npages : 1, 1);
	b->dirty = calloc(b->npages ? b->npages : 1, 1);
	b->gen = calloc(b->npages ? b->npages : 1, sizeof(*b->gen));
	if (b->code == NULL || b->gen == NULL || b->dirty == NULL) {
		free(b->code);
		free(b->dirty);
		free(b->gen);
		free(b);
		return NULL;
	}
	return b;
}

static void
bt_vm_free(struct bt_vm *b)
{
	if (b == NULL)
		return;
	free(b->code);
	free(b->dirty);
	free(b->gen);
	free(b);
}

static int
bt_vm_init(struct vm *vm)
{
	struct bt_vm *b = bt_vm_alloc(vm);

	vm->accel_data = b;
	if (b == NULL)
		return -ENOMEM;
	b->prof = bt_prof_start(vm);
	return 0;
}

static void
bt_vm_fini(struct vm *vm)
{
	struct bt_vm *b = vm->accel_data;

	if (b != NULL)
		bt_prof_stop(b->prof);
	bt_vm_free(vm->accel_data);
	vm->accel_data = NULL;
}

/*
 * Guest memory is read through vm->regions directly; device memory
 * outside vm->ram (mapped once the devices exist, maybe moved later)
 * only needs page numbers for the code and dirty tracking, kept across
 * moves since its host memory stays.
 */
static int
bt_map_mem(struct vm *vm, struct mem_region *r)
{
	struct bt_vm *b = vm->accel_data;
	uint64_t pages = (r->size + 0xfff) >> 12;

	_Static_assert(VM_MAX_REGIONS <= 16, "bt_vm.dev_page too small");
	if (r->size == 0 || (r->hva >= vm->ram &&
	    r->hva < vm->ram + vm->ram_size) || b->dev_page[r->slot] >= 0)
		return 0;
	if (b->dev_next + pages > b->npages)
		return -ENOSPC;
	b->dev_page[r->slot] = (int64_t)b->dev_next;
	b->dev_next += pages;
	return 0;
}

static int
bt_max_vcpus(struct vm *vm)
{
	return VM_MAX_VCPUS;
}

static int
bt_vcpu_init(struct vcpu *vcpu)
{
	struct bt_cpu *c;
	struct cpu_state st;
	int err;

	c = aligned_alloc(64, (sizeof(*c) + 63) & ~(size_t)63);
	if (c == NULL)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	c->vm = vcpu->vm;
	c->vcpu = vcpu;
	c->bvm = vcpu->vm->accel_data;
	if ((err = bt_tc_init(c)) < 0) {
		free(c);
		return err;
	}
	cpu_state_reset(&st);
	bt_cpu_from_state(c, &st);
	c->wait_sipi = vcpu->id != 0;
	c->evpend = c->wait_sipi;
	vcpu->accel = c;
	return 0;
}

static void
bt_vcpu_fini(struct vcpu *vcpu)
{
	struct bt_cpu *c = vcpu->accel;

	if (c == NULL)
		return;
	log_debug("vcpu %d: %llu instructions, stopped at "
	    "%04x:%#llx (mode %u, cr0 %#llx, rsp %#llx, rflags %#llx)",
	    vcpu->id, (unsigned long long)c->ninsns, c->seg[SEG_CS].sel,
	    (unsigned long long)c->rip, c->mode, (unsigned long long)c->cr0,
	    (unsigned long long)c->gpr[R_RSP],
	    (unsigned long long)bt_flags_get(c));
	/* The RIP sampler reads every vCPU: it stops before one goes. */
	if (c->bvm != NULL && c->bvm->prof != NULL) {
		bt_prof_stop(c->bvm->prof);
		c->bvm->prof = NULL;
	}
	bt_tc_fini(c);
	free(c);
	vcpu->accel = NULL;
}

static void
bt_vcpu_kick(struct vcpu *vcpu)
{
	/* The run loop polls vcpu->requests at every block end and every
	 * few thousand REP iterations: nothing more to do. */
}

static int
bt_get_state(struct vcpu *vcpu, struct cpu_state *st)
{
	struct bt_cpu *c = vcpu->accel;

	bt_cpu_to_state(c, st);
	st->cr8 = irqchip_get_tpr(vcpu);
	st->ev.exception_pending = c->inj.exception_pending;
	st->ev.exception_nr = c->inj.exception_nr;
	st->ev.exception_has_error = c->inj.exception_has_error;
	st->ev.exception_error = c->inj.exception_error;
	st->ev.nmi_injected = c->inj.nmi_injected;
	st->ev.intr_injected = c->inj.intr_injected;
	st->ev.intr_nr = c->inj.intr_nr;
	return 0;
}

static int
bt_set_state(struct vcpu *vcpu, const struct cpu_state *st)
{
	struct bt_cpu *c = vcpu->accel;

	bt_cpu_from_state(c, st);
	bt_tsc_set(c, st->msr.tsc);
	irqchip_set_tpr(vcpu, (uint8_t)st->cr8);
	if (st->cr0 & CR0_PE)
		c->wait_sipi = 0;
	c->evpend = c->halted | c->wait_sipi | c->nmi_pending;
	c->inj = st->ev;
	if (st->ev.exception_pending | st->ev.nmi_injected |
	    st->ev.intr_injected)	/* so that bt_events() runs */
		atomic_fetch_or(&vcpu->requests, VCPU_REQ_IRQ);
	/* Memory may have been rewritten behind our back (restore). */
	bt_tc_flush(c);
	return 0;
}

static int
bt_irq_line(struct vm *vm, unsigned gsi, int level)
{
	return irqchip_set_irq(vm, gsi, level);
}

static int
bt_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	return irqchip_msi(vm, addr, data);
}

static __thread struct bt_cpu *bt_self;	/* the vCPU this thread runs */

/*
 * Fetch-and-clear the pages written since the last call.  Stores that
 * take the TLB fast path are not logged one by one: a write tag is only
 * granted on a page already marked dirty.  So before harvesting, every
 * running vCPU must have dropped its write tags (it does at its next
 * block boundary once kicked); then every later store goes through the
 * slow path and marks its page again.  Device DMA is not tracked here,
 * as with KVM.
 */
static int
bt_dirty_log(struct vm *vm, struct mem_region *r, uint64_t *bitmap)
{
	struct bt_vm *b = vm->accel_data;
	uint32_t epoch;
	uint64_t npages = r->size >> 12;

	/* Before the epoch: a vCPU that has seen the new epoch sees this
	 * and takes no new write tag until the bitmap is harvested. */
	__atomic_store_n(&b->harvesting, 1, __ATOMIC_SEQ_CST);
	epoch = __atomic_add_fetch(&b->dirty_epoch, 1, __ATOMIC_SEQ_CST);

	for (int k = 0; k < vm->nvcpus; k++) {
		struct bt_cpu *c = vm->vcpus[k]->accel;

		if (c == bt_self) {
			bt_tlb_drop_writes(c);
			__atomic_store_n(&c->seen_dirty_epoch, epoch,
			    __ATOMIC_SEQ_CST);
			continue;
		}
		vcpu_kick(vm->vcpus[k], VCPU_REQ_IRQ);
		for (int spin = 0; __atomic_load_n(&c->in_run,
		    __ATOMIC_SEQ_CST) && __atomic_load_n(&c->seen_dirty_epoch,
		    __ATOMIC_SEQ_CST) != epoch; spin++) {
			if (spin > 1000000) {
				log_warnx("vcpu %d: no dirty-log ack", k);
				break;
			}
			sched_yield();
		}
	}
	memset(bitmap, 0, ((npages + 63) / 64) * sizeof(*bitmap));
	for (uint64_t k = 0; k < npages; k++) {
		int64_t pg = bt_ram_page(vm, r->gpa + (k << 12));

		if (pg >= 0 && __atomic_exchange_n(&b->dirty[pg], 0,
		    __ATOMIC_SEQ_CST))
			bitmap[k / 64] |= 1ull << (k % 64);
	}
	__atomic_store_n(&b->harvesting, 0, __ATOMIC_SEQ_CST);
	return 0;
}

/* INIT: the state of a vCPU waiting for SIPI. */
static void
bt_init_vcpu(struct bt_cpu *c)
{
	struct cpu_state st;
	uint64_t apic = c->msr.apic_base;

	cpu_state_reset(&st);
	st.msr.apic_base = apic;
	bt_cpu_from_state(c, &st);
	c->wait_sipi = 1;
}

static void
bt_sipi(struct bt_cpu *c, uint8_t v)
{
	c->seg[SEG_CS].sel = (uint16_t)(v << 8);
	c->seg[SEG_CS].base = (uint64_t)v << 12;
	c->rip = 0;
	c->wait_sipi = 0;
	c->halted = 0;
	bt_cpu_update_mode(c);
}

/* Deliver the event set_state said was being delivered (KVM's state). */
static void
bt_inject(struct bt_cpu *c)
{
	struct cpu_events e = c->inj;

	memset(&c->inj, 0, sizeof(c->inj));
	c->halted = 0;
	if (e.exception_pending)
		bt_deliver(c, e.exception_nr, e.exception_has_error ?
		    (int)e.exception_error : -1, false, c->rip);
	else if (e.nmi_injected)
		bt_deliver(c, EXC_NMI, -1, false, c->rip);
	else if (e.intr_injected)
		bt_deliver(c, e.intr_nr, -1, false, c->rip);
}

/* Between blocks: requests, INIT/SIPI, NMI, interrupts, HLT.  Returns
 * true with *exit filled when vcpu_run must return. */
static bool
bt_events(struct bt_cpu *c, struct vm_exit *exit)
{
	struct vcpu *vcpu = c->vcpu;
	const unsigned stop = VCPU_REQ_STOP | VCPU_REQ_PAUSE | VCPU_REQ_STATE |
	    VCPU_REQ_RESET;
	unsigned req = atomic_load(&vcpu->requests);
	uint8_t v;

	if (req & stop) {
		exit->kind = VM_EXIT_INTR;
		return true;
	}
	if (c->seen_dirty_epoch != __atomic_load_n(&c->bvm->dirty_epoch,
	    __ATOMIC_SEQ_CST)) {
		/* A dirty-log harvest: stop storing through old write tags. */
		uint32_t e = __atomic_load_n(&c->bvm->dirty_epoch,
		    __ATOMIC_SEQ_CST);

		bt_tlb_drop_writes(c);
		__atomic_store_n(&c->seen_dirty_epoch, e, __ATOMIC_SEQ_CST);
	}
	if (c->tlb_code_gen != __atomic_load_n(&c->bvm->code_gen,
	    __ATOMIC_RELAXED)) {
		/* Another vCPU found code in a page we may hold writable:
		 * drop the write tags only (reads, fetches and the block
		 * links that depend on them stay). */
		c->tlb_code_gen = __atomic_load_n(&c->bvm->code_gen,
		    __ATOMIC_RELAXED);
		bt_tlb_drop_writes(c);
	}
	if (req & VCPU_REQ_IRQ)
		atomic_fetch_and(&vcpu->requests, ~(unsigned)VCPU_REQ_IRQ);
	if (irqchip_take_init(vcpu) && vcpu->id != 0)
		bt_init_vcpu(c);
	if (c->wait_sipi) {
		if (!irqchip_take_sipi(vcpu, &v)) {
			c->evpend = 1;
			exit->kind = VM_EXIT_HLT;
			return true;
		}
		bt_sipi(c, v);
	}
	if (c->inj.exception_pending | c->inj.nmi_injected |
	    c->inj.intr_injected)
		bt_inject(c);
	if (irqchip_take_nmi(vcpu))
		c->nmi_pending = 1;
	if (c->nmi_pending && !c->nmi_masked && !c->shadow) {
		c->nmi_pending = 0;
		c->halted = 0;
		bt_deliver(c, EXC_NMI, -1, false, c->rip);
	}
	c->irq_hint = 0;
	if (irqchip_pending(vcpu)) {
		if ((c->flags & RFLAGS_IF) && !c->shadow) {
			int vec = irqchip_ack(vcpu);

			if (vec >= 0) {
				c->halted = 0;
				bt_deliver(c, vec, -1, false, c->rip);
			}
		} else {
			c->irq_hint = 1;
		}
	}
	c->evpend = c->halted | c->wait_sipi | c->nmi_pending;
	if (c->halted) {
		exit->kind = VM_EXIT_HLT;
		return true;
	}
	return false;
}

static struct bt_block *bt_next_block(struct bt_cpu *c);

static int bt_vcpu_loop(struct vcpu *vcpu, struct vm_exit *exit);

static int
bt_vcpu_run(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct bt_cpu *c = vcpu->accel;
	int err;

	bt_self = c;
	__atomic_store_n(&c->in_run, 1, __ATOMIC_SEQ_CST);
	err = bt_vcpu_loop(vcpu, exit);
	__atomic_store_n(&c->in_run, 0, __ATOMIC_SEQ_CST);
	bt_self = NULL;
	return err;
}

static int
bt_vcpu_loop(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct bt_cpu *c = vcpu->accel;
	int r;

	r = sigsetjmp(c->jb, 0);
	if (r == BT_JMP_SHUTDOWN) {
		c->cur = NULL;
		exit->kind = VM_EXIT_SHUTDOWN;
		return 0;
	}
	if (r == BT_JMP_ERROR) {
		c->cur = NULL;
		exit->kind = VM_EXIT_INTERNAL_ERROR;
		snprintf(exit->internal.msg, sizeof(exit->internal.msg),
		    "executing outside RAM at %#llx",
		    (unsigned long long)c->rip);
		return 0;
	}
	c->prev = NULL;
	if (r == BT_JMP_FAULT) {
		c->cur = NULL;
		c->brk = 0;
		bt_deliver(c, c->pend_vec, c->pend_err, false, c->rip);
	}
	for (;;) {
		if (unlikely(c->smc_pend)) {
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			bt_code_invalidate(c, c->smc_pend - 1);
			c->smc_pend = 0;
		}
		/* Everything that needs bt_events() in as few loads as
		 * possible: this runs once per block. */
		if (unlikely((atomic_load_explicit(&vcpu->requests,
		    memory_order_relaxed) | c->evpend |
		    (c->irq_hint & (c->flags >> 9)) | (c->flags & RFLAGS_TF))
		    != 0)) {
			if (bt_events(c, exit))
				return 0;
			/* What runs next need not be what the block that
			 * left goes on to (an interrupt, a single step):
			 * linking it would take one of that block's two
			 * chain slots from a real successor. */
			c->jit_last = NULL;
			if (c->flags & RFLAGS_TF) {
				/* Single-step: one instruction, then the
				 * #DB trap (unless it faulted). */
				c->prev = NULL;
				bt_tc_step(c);
				if (!c->halted) {
					c->dr[6] |= 1u << 14;	/* BS */
					bt_deliver(c, EXC_DB, -1, false,
					    c->rip);
				}
				continue;
			}
		}
		bt_tc_exec(c, bt_next_block(c));
	}
}

/*
 * The next block, following the previous block's links when it starts
 * on the same linear page: that page still maps to the same physical
 * page as long as no TLB flush happened in between, so the hash lookup
 * and the TLB probe can be skipped.
 */
static struct bt_block *
bt_next_block(struct bt_cpu *c)
{
	uint64_t lin = (c->segbase[SEG_CS] + c->rip) & c->linmask;
	uint32_t inval = __atomic_load_n(&c->bvm->inval_gen, __ATOMIC_RELAXED);
	struct bt_block *p = c->prev, *b;
	struct bt_jc *j;
	/* A link stays on its block's page, whose fetch was checked at
	 * the previous block's CPL: only good at the same CPL (an IRET
	 * to ring 3 on a supervisor page must still raise #PF). */
	bool chain = p != NULL && c->prev_tlb == c->tlb_epoch &&
	    c->prev_tc == c->tc_epoch && c->prev_cpl == c->cpl &&
	    ((lin ^ c->prev_lin) & ~0xfffull) == 0;
	int k = -1;

	/* A link or jump-cache entry made since the last code
	 * invalidation anywhere needs no page-generation check. */
	if (chain) {
		k = p->link_lin[0] == lin ? 0 : p->link_lin[1] == lin ? 1 : -1;
		if (k >= 0 && (b = p->link[k]) != NULL && b->mode == c->mode &&
		    (p->link_inval[k] == inval || bt_tc_valid(c, b))) {
			struct bt_tlb *e = &c->tlbc[(lin >> 12) &
			    (BT_TLB_SIZE - 1)];

			p->link_inval[k] = inval;
			/* Code mapped globally: the JIT's chain to it may
			 * outlive MOV CR3 (as after bt_tc_lookup). */
			c->xglobal = e->tag_x == (lin & ~0xfffull) &&
			    e->global;
			goto out;
		}
	}
	j = &c->jc[(lin ^ (lin >> 12)) & 4095];
	/* The entry's fetch was permission-checked at j->cpl: a ring-3
	 * jump to a kernel address must not find the kernel's block. */
	if (j->b != NULL && j->lin == lin && j->cpl == c->cpl &&
	    bt_tlb_current(c, j->tlb) &&
	    j->tc == c->tc_epoch && j->b->mode == c->mode &&
	    (j->inval == inval || bt_tc_valid(c, j->b))) {
		b = j->b;
		j->inval = inval;
		c->xglobal = j->tlb != c->tlb_epoch;
	} else {
		/* An entry for this RIP made before the last TLB flush
		 * (user code after MOV CR3, mostly): still the block if
		 * RIP still maps to its page, which the lookup checks. */
		b = bt_tc_lookup(c, j->lin == lin && j->cpl == c->cpl &&
		    j->tc == c->tc_epoch ? j->b : NULL);
		*j = (struct bt_jc){ lin, b, c->xglobal ? bt_tlb_gtag(c) :
		    c->tlb_epoch, c->tc_epoch, inval, c->cpl,
		    b->mode == BT_M64 ? b->jit : NULL };
	}
	if (chain && c->prev_tc == c->tc_epoch) {
		if (k < 0)
			k = p->link[0] == NULL ? 0 : p->link[1] == NULL ? 1 :
			    (int)(lin & 1);	/* cheap replacement choice */
		p->link[k] = b;
		p->link_lin[k] = lin;
		p->link_inval[k] = inval;
	}
out:
	c->prev = b;
	c->prev_lin = lin;
	c->prev_tlb = c->tlb_epoch;
	c->prev_tc = c->tc_epoch;
	c->prev_cpl = c->cpl;
	return b;
}

/*
 * Snapshots: beside struct cpu_state, a vCPU keeps whether it waits for
 * SIPI and its own TSC adjustment; the VM keeps the TSC every vCPU
 * follows.  set_state (run before these on load) sets the VM's TSC from
 * each vCPU's in turn, so the VM section puts the saved clock back.
 */
static int
bt_vcpu_snapshot(struct vcpu *vcpu, struct snap *s)
{
	struct bt_cpu *c = vcpu->accel;
	char name[32];

	snprintf(name, sizeof(name), "bt.cpu.%d", vcpu->id);
	snap_section_begin(s, name, 1);
	snap_u8(s, "wait_sipi", &c->wait_sipi);
	snap_u64(s, "tsc_adjust", &c->tsc_adjust);
	snap_section_end(s);
	if (!snap_saving(s) && snap_error(s) == 0) {
		c->wait_sipi = c->wait_sipi != 0;
		c->evpend = c->halted | c->wait_sipi | c->nmi_pending;
	}
	return snap_error(s);
}

static int
bt_vm_snapshot(struct vm *vm, struct snap *s)
{
	struct bt_vm *b = vm->accel_data;
	uint64_t tsc = vclock_ns() + b->tsc_offset;

	snap_section_begin(s, "bt.vm", 1);
	snap_u64(s, "tsc", &tsc);
	snap_section_end(s);
	if (!snap_saving(s) && snap_error(s) == 0)
		__atomic_store_n(&b->tsc_offset, tsc - vclock_ns(),
		    __ATOMIC_RELAXED);
	return snap_error(s);
}

static void
bt_cpuid_of(struct vcpu *vcpu, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	bt_cpuid(vcpu->accel, leaf, sub, r);
}

const struct accel_ops bt_accel_ops = {
	.name = "bt",
	.kernel_irqchip = false,
	.kicks_on_vcpu = true,
	.vm_init = bt_vm_init,
	.vm_fini = bt_vm_fini,
	.map_mem = bt_map_mem,
	.max_vcpus = bt_max_vcpus,
	.vcpu_init = bt_vcpu_init,
	.vcpu_fini = bt_vcpu_fini,
	.vcpu_run = bt_vcpu_run,
	.vcpu_kick = bt_vcpu_kick,
	.get_state = bt_get_state,
	.set_state = bt_set_state,
	.irq_line = bt_irq_line,
	.msi = bt_msi,
	.dirty_log = bt_dirty_log,
	.vcpu_snapshot = bt_vcpu_snapshot,
	.vm_snapshot = bt_vm_snapshot,
	.cpuid = bt_cpuid_of,
};

void
bt_dma_invalidate(struct vm *vm, uint64_t gpa, uint64_t len)
{
	struct bt_vm *b = vm->accel_data;

	if (vm->accel != &bt_accel_ops || b == NULL || len == 0)
		return;
	for (uint64_t p = gpa & ~0xfffull; p < gpa + len; p += 4096) {
		int64_t pg = bt_ram_page(vm, p);

		if (pg >= 0 && (uint64_t)pg < b->npages && b->code[pg]) {
			b->code[pg] = 0;
			__atomic_fetch_add(&b->gen[pg], 1, __ATOMIC_SEQ_CST);
			__atomic_fetch_add(&b->inval_gen, 1, __ATOMIC_SEQ_CST);
		}
	}
}

/* --- KVM assist --- */

/* One core per thread, remade when the VM changes. */
static __thread struct bt_cpu *assist_cpu;
static __thread struct bt_vm *assist_bvm;

/* Not inlined: its locals would live across bt_assist_stint's
 * sigsetjmp. */
static __attribute__((noinline)) struct bt_cpu *
bt_assist_cpu(struct vcpu *vcpu)
{
	struct bt_cpu *c = assist_cpu;

	if (c != NULL && c->vm == vcpu->vm)
		return c;
	if (c != NULL) {
		bt_vm_free(assist_bvm);
		free(c);
	}
	assist_cpu = NULL;
	c = aligned_alloc(64, (sizeof(*c) + 63) & ~(size_t)63);
	assist_bvm = bt_vm_alloc(vcpu->vm);
	if (c == NULL || assist_bvm == NULL) {
		free(c);
		bt_vm_free(assist_bvm);
		assist_bvm = NULL;
		return NULL;
	}
	memset(c, 0, sizeof(*c));
	c->vm = vcpu->vm;
	c->bvm = assist_bvm;
	c->assist = 1;
	assist_cpu = c;
	return c;
}

static int
bt_assist_run(struct bt_cpu *c)
{
	int r = sigsetjmp(c->jb, 0);

	if (r == BT_JMP_SHUTDOWN)
		return -EFAULT;
	if (r == BT_JMP_ERROR)
		return -ENOTSUP;
	if (r == BT_JMP_FAULT)
		bt_deliver(c, c->pend_vec, c->pend_err, false, c->rip);
	else
		bt_tc_step(c);
	/* As bt_vcpu_loop does: a read-modify-write into a code page
	 * invalidates again once its store is done. */
	if (c->smc_pend) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		bt_code_invalidate(c, c->smc_pend - 1);
		c->smc_pend = 0;
	}
	return 0;
}

int
bt_assist_step(struct vcpu *vcpu, struct cpu_state *st)
{
	long n = bt_assist_stint(vcpu, st, 1, true);

	return n < 0 ? (int)n : 0;
}

/*
 * A KVM assist stint: run the instruction KVM could not, then go on here
 * while the guest stays in ring 0, for at most max instructions.  On a
 * host whose KVM emulates guest kernel code one instruction at a time
 * (this project's machines), that moves the kernel's work from KVM's
 * emulator to the software CPU, while user mode still runs in KVM.  The
 * stint stops before anything that belongs to KVM (bt_stint_deny, port
 * and device-memory I/O), at a change of privilege level, at HLT, or when
 * the vCPU has a request; the state then is that of the instruction KVM
 * goes on with.  failed: the first instruction is one KVM could not
 * run (so it runs here whatever it is); max 1 with failed is the plain
 * one-instruction assist.  Instructions are decoded afresh each time
 * (bt_tc_step): guest code that KVM ran may have rewritten itself,
 * unseen by the software CPU's code tracking.  Returns the instructions run, or -errno
 * if the first one could not be.
 */
long
bt_assist_stint(struct vcpu *vcpu, struct cpu_state *st, long max,
    bool failed)
{
	struct bt_cpu *c = bt_assist_cpu(vcpu);
	struct cpu_events ev = st->ev;
	volatile long n = 0;
	int r, err;

	if (c == NULL)
		return -ENOMEM;
	c->vcpu = vcpu;
	bt_cpu_from_state(c, st);
	bt_tsc_set(c, st->msr.tsc);
	c->cr8 = st->cr8;
	c->exc_depth = 0;
	if (failed) {
		if ((err = bt_assist_run(c)) < 0)
			return err;
		n = 1;
	}
	/* KVM's guest TSC is the host's plus an offset: follow it, so
	 * time runs at one rate in and out of stints. */
	c->stint_tsc = st->msr.tsc - __rdtsc();
	c->stint = 1;
	r = sigsetjmp(c->jb, 0);
	if (r == BT_JMP_SHUTDOWN) {
		c->stint = 0;
		return -EFAULT;
	}
	if (r == BT_JMP_FAULT && c->pend_vec != EXC_PF) {
		/* Only a page fault is the guest's business for sure: a
		 * #UD or #GP may be a feature KVM has and the software CPU
		 * lacks (FSGSBASE in CR4, an AMD-only instruction).  KVM
		 * runs it, and raises the fault if it is one. */
		r = BT_JMP_STOP;
	} else if (r == BT_JMP_FAULT) {
		bt_deliver(c, c->pend_vec, c->pend_err, false, c->rip);
		n++;
		r = 0;
	}
	if (r == 0) {
		while (n < max && c->cpl == 0 && !c->halted &&
		    atomic_load_explicit(&vcpu->requests,
		    memory_order_relaxed) == 0) {
			bt_tc_step(c);
			if (c->smc_pend) {
				__atomic_thread_fence(__ATOMIC_SEQ_CST);
				bt_code_invalidate(c, c->smc_pend - 1);
				c->smc_pend = 0;
			}
			n++;
		}
	}
	/* BT_JMP_STOP and BT_JMP_ERROR: KVM runs (or reports) it. */
	c->stint = 0;
	bt_cpu_to_state(c, st);
	st->cr8 = c->cr8;
	st->ev.nmi_pending = ev.nmi_pending;
	st->ev.nmi_masked = c->nmi_masked;
	return n;
}
