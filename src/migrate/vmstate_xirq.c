/*
 * KVM's interrupt controllers into the software models (vmstate_xirq.h).
 *
 * The KVM sections are read by the field names kvm.c writes; the state
 * is then written as the software chips' own sections (same field names
 * as their snapshot functions) and loaded through those functions, so
 * every check a chip makes on a loaded value applies here too.
 *
 * The local APIC timer keeps its current count both ways (KVM reads
 * and loads TMCCT; the software LAPIC keeps the time since its count
 * started).  An event KVM was delivering travels in struct cpu_state
 * (the software CPU delivers it first); from an older stream without
 * it, an interrupt KVM was injecting goes back to the APIC's IRR.  A
 * vCPU waiting for SIPI waits on the other side too, whatever its
 * registers say.
 *
 * What does not map exactly: the PIT's "no count yet", gate-trigger and
 * "count written mid-cycle" states are not kept by KVM; the software
 * LAPIC has no TSC-deadline mode (the CPUID check refuses a guest that
 * was given it).
 */
#include "migrate/vmstate_xirq.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices/device.h"
#include "hv/cpu_state.h"
#include "migrate/snap.h"

#define XIRQ_MP_UNINITIALIZED	1	/* KVM_MP_STATE_* */
#define XIRQ_MP_INIT_RECEIVED	2
#define XIRQ_MP_SIPI_RECEIVED	4
#define XIRQ_RW_WORD1		4	/* KVM's RW_STATE_WORD1 */
#define XIRQ_RW_MSB		2
#define XIRQ_PIT_HPET_LEGACY	1	/* KVM_PIT_FLAGS_HPET_LEGACY */
#define XIRQ_PIT_SPEAKER	2	/* KVM_PIT_FLAGS_SPEAKER_DATA_ON */

int
vmstate_xirq_kvm_cpu(struct snap *s, int id, struct vmstate_xirq *x)
{
	char name[32];

	snprintf(name, sizeof(name), "kvm.cpu.%d", id);
	snap_section_begin(s, name, 1);
	snap_bytes(s, "lapic", x->lapic[id], sizeof(x->lapic[id]));
	snap_u32(s, "mp_state", &x->mp_state[id]);
	snap_u8(s, "nmi.pending", &x->nmi_pending[id]);
	snap_u8(s, "intr.injected", &x->intr_injected[id]);
	snap_u8(s, "intr.nr", &x->intr_nr[id]);
	snap_u32(s, "sipi_vector", &x->sipi_vector[id]);
	snap_section_end(s);
	return snap_error(s);
}

static void
xirq_kvm_pic(struct snap *s, const char *pfx, struct vmstate_xirq_pic *p)
{
	char n[48];

#define XIRQ_F(f) (snprintf(n, sizeof(n), "%s.%s", pfx, #f), \
	snap_u8(s, n, &p->f))
	XIRQ_F(last_irr); XIRQ_F(irr); XIRQ_F(imr); XIRQ_F(isr);
	XIRQ_F(priority_add); XIRQ_F(irq_base); XIRQ_F(read_reg_select);
	XIRQ_F(poll); XIRQ_F(special_mask); XIRQ_F(init_state);
	XIRQ_F(auto_eoi); XIRQ_F(rotate_on_auto_eoi);
	XIRQ_F(special_fully_nested_mode); XIRQ_F(init4); XIRQ_F(elcr);
	XIRQ_F(elcr_mask);
#undef XIRQ_F
}

int
vmstate_xirq_kvm_vm(struct snap *s, struct vmstate_xirq *x)
{
	uint64_t base;
	char n[48];

	snap_section_begin(s, "kvm.vm", 1);
	xirq_kvm_pic(s, "pic0", &x->pic[0]);
	xirq_kvm_pic(s, "pic1", &x->pic[1]);
	snap_u64(s, "ioapic.base", &base);
	snap_u32(s, "ioapic.regsel", &x->ioapic_regsel);
	snap_u32(s, "ioapic.id", &x->ioapic_id);
	snap_u32(s, "ioapic.irr", &x->ioapic_irr);
	for (int i = 0; i < 24; i++) {
		snprintf(n, sizeof(n), "ioapic.rte%d", i);
		snap_u64(s, n, &x->ioapic_rte[i]);
	}
	for (int i = 0; i < 3; i++) {
		struct vmstate_xirq_pit *c = &x->pit[i];

#define XIRQ_P(fn, f) (snprintf(n, sizeof(n), "pit%d.%s", i, #f), \
	fn(s, n, &c->f))
		XIRQ_P(snap_u32, count); XIRQ_P(snap_u16, latched_count);
		XIRQ_P(snap_u8, count_latched); XIRQ_P(snap_u8, status_latched);
		XIRQ_P(snap_u8, status); XIRQ_P(snap_u8, read_state);
		XIRQ_P(snap_u8, write_state); XIRQ_P(snap_u8, write_latch);
		XIRQ_P(snap_u8, rw_mode); XIRQ_P(snap_u8, mode);
		XIRQ_P(snap_u8, bcd); XIRQ_P(snap_u8, gate);
		XIRQ_P(snap_i64, load_age);
#undef XIRQ_P
	}
	snap_u32(s, "pit.flags", &x->pit_flags);
	snap_section_end(s);
	return snap_error(s);
}

bool
vmstate_xirq_soft(const struct device_inst *d)
{
	return (d->ops->flags & DEV_SOFT_IRQCHIP) != 0;
}

/* --- the software chips' sections --- */

static void
xirq_b(struct snap *w, const char *n, bool v)
{
	snap_bool(w, n, &v);
}

static void
xirq_u8(struct snap *w, const char *n, uint8_t v)
{
	snap_u8(w, n, &v);
}

static void
xirq_u16(struct snap *w, const char *n, uint16_t v)
{
	snap_u16(w, n, &v);
}

static void
xirq_u32(struct snap *w, const char *n, uint32_t v)
{
	snap_u32(w, n, &v);
}

static void
xirq_u64(struct snap *w, const char *n, uint64_t v)
{
	snap_u64(w, n, &v);
}

static void
xirq_i8259_chip(struct snap *w, const char *pfx,
    const struct vmstate_xirq_pic *p)
{
	char n[32];

#define XIRQ_U8(f, v) (snprintf(n, sizeof(n), "%s.%s", pfx, f), \
	xirq_u8(w, n, v))
#define XIRQ_B(f, v) (snprintf(n, sizeof(n), "%s.%s", pfx, f), \
	xirq_b(w, n, v))
	XIRQ_U8("irr", p->irr); XIRQ_U8("isr", p->isr);
	XIRQ_U8("imr", p->imr); XIRQ_U8("lines", p->last_irr);
	XIRQ_U8("elcr", p->elcr); XIRQ_U8("priority_add", p->priority_add);
	XIRQ_U8("irq_base", p->irq_base);
	XIRQ_U8("init_state", p->init_state);
	XIRQ_B("read_isr", p->read_reg_select); XIRQ_B("poll", p->poll);
	XIRQ_B("auto_eoi", p->auto_eoi);
	XIRQ_B("rotate_auto_eoi", p->rotate_on_auto_eoi);
	XIRQ_B("sfnm", p->special_fully_nested_mode);
	XIRQ_B("init4", p->init4); XIRQ_B("single", false);
#undef XIRQ_U8
#undef XIRQ_B
}

static void
xirq_ioapic(struct snap *w, const struct vmstate_xirq *x)
{
	char n[16];

	xirq_u32(w, "id", (x->ioapic_id & 0xf) << 24);
	xirq_u8(w, "regsel", (uint8_t)x->ioapic_regsel);
	xirq_u32(w, "lines", x->ioapic_irr);
	for (int i = 0; i < 24; i++) {
		snprintf(n, sizeof(n), "rte%d", i);
		xirq_u64(w, n, x->ioapic_rte[i]);
	}
}

static uint32_t
xirq_reg(const uint8_t *page, unsigned off)
{
	uint32_t v;

	memcpy(&v, page + off, 4);
	return v;
}

/* The APIC timer's divisor from its divide configuration register. */
static uint64_t
xirq_div(uint32_t dcr)
{
	unsigned v = ((dcr >> 1) & 4) | (dcr & 3);

	return 1ull << ((v + 1) & 7);
}

static void
xirq_lapic(struct snap *w, const struct vmstate_xirq *x, int id,
    const struct cpu_state *st)
{
	const uint8_t *r = x->lapic[id];
	uint32_t irr[8], isr[8], icr = xirq_reg(r, 0x380);
	uint32_t ccr = xirq_reg(r, 0x390), dcr = xirq_reg(r, 0x3e0);
	uint32_t mp = x->mp_state[id], vec = x->intr_nr[id];
	bool periodic = xirq_reg(r, 0x320) & (1u << 17);
	bool fired = icr != 0 && ccr == 0 && !periodic;
	char n[16];

	for (int i = 0; i < 8; i++) {
		irr[i] = xirq_reg(r, 0x200 + 0x10 * i);
		isr[i] = xirq_reg(r, 0x100 + 0x10 * i);
	}
	/* An interrupt KVM was injecting is in service already.  The vCPU
	 * state carries it (the software CPU delivers it); a stream older
	 * than that puts it back to requested, to be delivered again. */
	if (x->intr_injected[id] && !st->ev.intr_injected &&
	    (isr[vec / 32] & (1u << (vec % 32)))) {
		isr[vec / 32] &= ~(1u << (vec % 32));
		irr[vec / 32] |= 1u << (vec % 32);
	}
	xirq_u64(w, "base", st->msr.apic_base);
	xirq_u32(w, "id", xirq_reg(r, 0x20));
	xirq_u32(w, "tpr", xirq_reg(r, 0x80));
	xirq_u32(w, "ldr", xirq_reg(r, 0xd0));
	xirq_u32(w, "dfr", xirq_reg(r, 0xe0));
	xirq_u32(w, "svr", xirq_reg(r, 0xf0));
	xirq_u32(w, "esr", xirq_reg(r, 0x280));
	xirq_u32(w, "esr_acc", 0);
	xirq_u32(w, "icr_lo", xirq_reg(r, 0x300));
	xirq_u32(w, "icr_hi", xirq_reg(r, 0x310));
	for (int i = 0; i < 6; i++) {
		snprintf(n, sizeof(n), "lvt%d", i);
		xirq_u32(w, n, xirq_reg(r, 0x320 + 0x10 * i));
	}
	for (int i = 0; i < 8; i++) {
		snprintf(n, sizeof(n), "irr%d", i);
		xirq_u32(w, n, irr[i]);
		snprintf(n, sizeof(n), "isr%d", i);
		xirq_u32(w, n, isr[i]);
		snprintf(n, sizeof(n), "tmr%d", i);
		xirq_u32(w, n, xirq_reg(r, 0x180 + 0x10 * i));
	}
	xirq_b(w, "extint", false);
	xirq_u32(w, "timer_icr", icr);
	xirq_u32(w, "timer_dcr", dcr);
	xirq_u64(w, "timer_elapsed", ccr <= icr ? (uint64_t)(icr - ccr) *
	    xirq_div(dcr) : 0);
	xirq_b(w, "timer_fired", fired);
	xirq_u64(w, "timer_seen", 0);
	xirq_u32(w, "timer_owed", 0);
	xirq_b(w, "nmi", x->nmi_pending[id] != 0);
	xirq_b(w, "init", false);
	xirq_b(w, "sipi", mp == XIRQ_MP_SIPI_RECEIVED);
	xirq_u8(w, "sipi_vector", (uint8_t)x->sipi_vector[id]);
}

/*
 * The chip's status byte as a read-back would latch it (without OUT):
 * NULL COUNT, access, mode, BCD.  KVM ignores its status field until a
 * guest latches one, so while none is latched the field carries this
 * byte: it keeps what KVM has no field for (a channel whose control
 * word came but no count yet shows KVM's "not programmed" mode 0xff,
 * so channel 0 stays quiet there, and its real mode rides along here).
 */
static uint8_t
xirq_pit_status(bool null_count, uint8_t rw_mode, uint8_t mode, bool bcd)
{
	return (null_count ? 0x40 : 0) | (uint8_t)((rw_mode & 3) << 4) |
	    (uint8_t)((mode & 7) << 1) | (bcd ? 1 : 0);
}

/* One KVM channel as the software PIT's fields. */
static void
xirq_i8254_chan(struct snap *w, int i, const struct vmstate_xirq_pit *c)
{
	bool valid = c->mode <= 5 && c->rw_mode >= 1 && c->rw_mode <= 3;
	bool latched = c->count_latched != 0, sl = c->status_latched != 0;
	uint8_t rw = c->rw_mode, mode = c->mode, st = c->status;
	bool null_count = false, bcd = c->bcd != 0, word;
	char n[40];

	if (!valid && !sl && ((st >> 4) & 3) != 0) {
		/* Programmed but no count yet (our own status byte). */
		rw = (st >> 4) & 3;
		mode = (st >> 1) & 7;
		mode = mode > 5 ? mode - 4 : mode;
		bcd = st & 1;
		null_count = (st & 0x40) != 0;
	} else if (!valid) {
		rw = 3;			/* power-on: quiet until programmed */
		mode = 3;
	} else if (!sl) {
		null_count = (st & 0x40) != 0;
	}
	word = rw == 3;
#define XIRQ_C(fn, f, v) (snprintf(n, sizeof(n), "ch%d.%s", i, f), \
	fn(w, n, v))
	XIRQ_C(xirq_u32, "count", c->count & 0xffff);
	XIRQ_C(xirq_u16, "latch", c->latched_count);
	XIRQ_C(xirq_b, "latched", latched);
	XIRQ_C(xirq_u8, "status", st);
	XIRQ_C(xirq_b, "status_latched", sl);
	XIRQ_C(xirq_b, "read_msb", word && (latched ?
	    c->count_latched == XIRQ_RW_MSB : c->read_state == XIRQ_RW_WORD1));
	XIRQ_C(xirq_b, "write_msb", word && c->write_state == XIRQ_RW_WORD1);
	XIRQ_C(xirq_u8, "write_lsb", c->write_latch);
	XIRQ_C(xirq_u8, "rw_mode", rw);
	XIRQ_C(xirq_u8, "mode", mode);
	XIRQ_C(xirq_b, "bcd", bcd);
	XIRQ_C(xirq_b, "gate", c->gate != 0);
	XIRQ_C(xirq_b, "null_count", null_count);
	XIRQ_C(xirq_b, "loaded", valid);
	XIRQ_C(xirq_b, "triggered", valid && (mode == 1 || mode == 5) &&
	    c->gate);
	XIRQ_C(xirq_b, "frozen", false);
	XIRQ_C(xirq_u64, "frozen_ticks", 0);
	XIRQ_C(xirq_b, "next_pending", false);
	XIRQ_C(xirq_u32, "next_count", 0);
	XIRQ_C(xirq_u64, "next_at", 0);
	XIRQ_C(xirq_u64, "skip", 0);
	/* Negated as unsigned: a crafted stream's INT64_MIN has no
	 * signed negation. */
	XIRQ_C(xirq_u64, "since", c->load_age < 0 ? 0 - (uint64_t)c->load_age :
	    0);
#undef XIRQ_C
}

static void
xirq_i8254(struct snap *w, const struct vmstate_xirq *x)
{
	bool hpet = (x->pit_flags & XIRQ_PIT_HPET_LEGACY) != 0;

	for (int i = 0; i < 3; i++)
		xirq_i8254_chan(w, i, &x->pit[i]);
	xirq_u8(w, "port61", (x->pit[2].gate ? 1 : 0) |
	    ((x->pit_flags & XIRQ_PIT_SPEAKER) ? 2 : 0));
	xirq_b(w, "irq0", false);
	xirq_b(w, "irq0_done", false);
	xirq_u32(w, "irq0_owed", 0);
	snap_bool(w, "hpet_legacy", &hpet);
}

/* Write the section of soft device d from x. */
static void
xirq_section(struct snap *w, const struct device_inst *d,
    const struct vmstate_xirq *x, const struct cpu_state *st, int nvcpus)
{
	int id;

	snap_section_begin(w, d->name, d->ops->snapshot_version);
	if (strcmp(d->ops->name, "irqchip") == 0) {
		xirq_u32(w, "lowest_rr", 0);
	} else if (strcmp(d->ops->name, "i8259") == 0) {
		xirq_i8259_chip(w, "master", &x->pic[0]);
		xirq_i8259_chip(w, "slave", &x->pic[1]);
	} else if (strcmp(d->ops->name, "ioapic") == 0) {
		xirq_ioapic(w, x);
	} else if (strcmp(d->ops->name, "i8254") == 0) {
		xirq_i8254(w, x);
	} else if (strcmp(d->ops->name, "lapic") == 0 &&
	    sscanf(d->name, "lapic%d", &id) == 1 && id >= 0 && id < nvcpus) {
		xirq_lapic(w, x, id, &st[id]);
	} else {
		snap_fail(w, -ENOTSUP, "no KVM counterpart for %s", d->name);
	}
	snap_section_end(w);
}

/*
 * The software CPU's own section for vCPU id (bt.c's fields): whether
 * it waits for a start-up IPI follows KVM's MP state, not the mode its
 * registers are in (an AP started in real mode runs; one that got INIT
 * waits, and so does one never started: KVM's UNINITIALIZED).  Its TSC came
 * with set_state, so no adjustment.
 */
static void
xirq_bt_cpu(struct snap *w, struct vm *vm, int id, uint32_t mp)
{
	char n[32];

	snprintf(n, sizeof(n), "%s.cpu.%d", vm->accel->name, id);
	snap_section_begin(w, n, 1);
	xirq_u8(w, "wait_sipi", mp == XIRQ_MP_UNINITIALIZED ||
	    mp == XIRQ_MP_INIT_RECEIVED || mp == XIRQ_MP_SIPI_RECEIVED);
	xirq_u64(w, "tsc_adjust", 0);
	snap_section_end(w);
}

int
vmstate_xirq_load_soft(struct vm *vm, const struct vmstate_xirq *x,
    const struct cpu_state *st, struct snap *s)
{
	struct snap w, r;

	snap_init_save(&w);
	for (int i = 0; i < vm->nvcpus; i++)
		xirq_bt_cpu(&w, vm, i, x->mp_state[i]);
	for (int i = 0; i < vm->ndevices && snap_error(&w) == 0; i++)
		if (vmstate_xirq_soft(&vm->devices[i]))
			xirq_section(&w, &vm->devices[i], x, st, vm->nvcpus);
	snap_init_load(&r, w.buf, w.len);
	for (int i = 0; i < vm->nvcpus && snap_error(&w) == 0 &&
	    snap_error(&r) == 0; i++)
		if (vm->accel->vcpu_snapshot != NULL)
			vm->accel->vcpu_snapshot(vm->vcpus[i], &r);
	for (int i = 0; i < vm->ndevices && snap_error(&w) == 0 &&
	    snap_error(&r) == 0; i++) {
		struct device_inst *d = &vm->devices[i];

		if (!vmstate_xirq_soft(d))
			continue;
		if (snap_section_begin(&r, d->name,
		    d->ops->snapshot_version) == 0)
			d->ops->snapshot(d->state, &r);
		snap_section_end(&r);
	}
	if (snap_error(&w) != 0)
		snap_fail(s, snap_error(&w), "KVM's interrupt controllers: %s",
		    w.errmsg);
	else if (snap_error(&r) != 0)
		snap_fail(s, snap_error(&r), "KVM's interrupt controllers: %s",
		    r.errmsg);
	snap_free(&w);
	return snap_error(s);
}

/* --- the software chips' sections into KVM's --- */

static void
xirq_get_pic(struct snap *s, const char *pfx, struct vmstate_xirq_pic *p)
{
	bool b[7] = { 0 };
	char n[32];

#define XIRQ_G8(f, dst) (snprintf(n, sizeof(n), "%s.%s", pfx, f), \
	snap_u8(s, n, &p->dst))
#define XIRQ_GB(k, f) (snprintf(n, sizeof(n), "%s.%s", pfx, f), \
	snap_bool(s, n, &b[k]))
	XIRQ_G8("irr", irr); XIRQ_G8("isr", isr); XIRQ_G8("imr", imr);
	XIRQ_G8("lines", last_irr); XIRQ_G8("elcr", elcr);
	XIRQ_G8("priority_add", priority_add); XIRQ_G8("irq_base", irq_base);
	XIRQ_G8("init_state", init_state);
	XIRQ_GB(0, "read_isr"); XIRQ_GB(1, "poll"); XIRQ_GB(2, "auto_eoi");
	XIRQ_GB(3, "rotate_auto_eoi"); XIRQ_GB(4, "sfnm");
	XIRQ_GB(5, "init4");
#undef XIRQ_G8
#undef XIRQ_GB
	p->read_reg_select = b[0]; p->poll = b[1]; p->auto_eoi = b[2];
	p->rotate_on_auto_eoi = b[3]; p->special_fully_nested_mode = b[4];
	p->init4 = b[5];
	/* The PIIX's ELCR: what KVM lets a guest set on each chip. */
	p->elcr_mask = strcmp(pfx, "master") == 0 ? 0xf8 : 0xde;
}

static void
xirq_put_reg(uint8_t *page, unsigned off, uint32_t v)
{
	memcpy(page + off, &v, 4);
}

/*
 * The timer's current count after elapsed ns of a count of icr: the
 * remainder of the current period when periodic, 0 once a one-shot
 * count ran out.
 */
static uint32_t
xirq_ccr(uint32_t icr, uint32_t dcr, uint32_t lvt, uint64_t elapsed,
    bool fired)
{
	uint64_t ticks = elapsed / xirq_div(dcr);

	if (icr == 0)
		return 0;
	if (lvt & (1u << 17))
		return icr - (uint32_t)(ticks % icr);
	return fired || ticks >= icr ? 0 : icr - (uint32_t)ticks;
}

/* lapicN's fields into KVM's register page and events for vCPU id. */
static void
xirq_get_lapic(struct snap *s, struct vmstate_xirq *x, int id)
{
	static const struct { const char *n; unsigned off; } regs[] = {
		{ "id", 0x20 }, { "tpr", 0x80 }, { "ldr", 0xd0 },
		{ "dfr", 0xe0 }, { "svr", 0xf0 }, { "esr", 0x280 },
		{ "icr_lo", 0x300 }, { "icr_hi", 0x310 },
		{ "timer_icr", 0x380 }, { "timer_dcr", 0x3e0 },
	};
	uint8_t *r = x->lapic[id];
	uint64_t base, elapsed = 0;
	bool nmi = false, sipi = false, init = false, fired = false;
	uint8_t vec = 0;
	uint32_t v;
	char n[16];

	memset(r, 0, sizeof(x->lapic[id]));
	snap_u64(s, "base", &base);
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
		v = 0;
		snap_u32(s, regs[i].n, &v);
		xirq_put_reg(r, regs[i].off, v);
	}
	xirq_put_reg(r, 0x30, 0x50014);	/* KVM's version: 6 LVTs */
	for (int i = 0; i < 6; i++) {
		snprintf(n, sizeof(n), "lvt%d", i);
		snap_u32(s, n, &v);
		xirq_put_reg(r, 0x320 + 0x10 * i, v);
	}
	for (int i = 0; i < 8; i++) {
		snprintf(n, sizeof(n), "irr%d", i);
		snap_u32(s, n, &v);
		xirq_put_reg(r, 0x200 + 0x10 * i, v);
		snprintf(n, sizeof(n), "isr%d", i);
		snap_u32(s, n, &v);
		xirq_put_reg(r, 0x100 + 0x10 * i, v);
		snprintf(n, sizeof(n), "tmr%d", i);
		snap_u32(s, n, &v);
		xirq_put_reg(r, 0x180 + 0x10 * i, v);
	}
	snap_u64(s, "timer_elapsed", &elapsed);
	snap_bool(s, "timer_fired", &fired);
	snap_bool(s, "nmi", &nmi);
	snap_bool(s, "init", &init);
	snap_bool(s, "sipi", &sipi);
	snap_u8(s, "sipi_vector", &vec);
	/* KVM starts the timer's first period from TMCCT. */
	xirq_put_reg(r, 0x390, xirq_ccr(xirq_reg(r, 0x380),
	    xirq_reg(r, 0x3e0), xirq_reg(r, 0x320), elapsed, fired));
	x->nmi_pending[id] = nmi;
	x->sipi_vector[id] = vec;
	x->init_pending[id] = init && id != 0;
	/* A start-up IPI only counts for a vCPU that waits for one (the
	 * software CPU's section, read before this one, said so). */
	if (sipi && x->mp_state[id] == XIRQ_MP_INIT_RECEIVED)
		x->mp_state[id] = XIRQ_MP_SIPI_RECEIVED;
}

static void
xirq_get_i8254(struct snap *s, struct vmstate_xirq *x)
{
	uint8_t port61 = 0;
	bool hpet = false;
	char n[40];

	for (int i = 0; i < 3; i++) {
		struct vmstate_xirq_pit *c = &x->pit[i];
		bool latched = false, rmsb = false, wmsb = false, bcd = false;
		bool gate = false, sl = false, loaded = false, nc = false;
		uint64_t since = 0;

#define XIRQ_G(fn, f, p) (snprintf(n, sizeof(n), "ch%d.%s", i, f), \
	fn(s, n, p))
		XIRQ_G(snap_u32, "count", &c->count);
		XIRQ_G(snap_u16, "latch", &c->latched_count);
		XIRQ_G(snap_bool, "latched", &latched);
		XIRQ_G(snap_u8, "status", &c->status);
		XIRQ_G(snap_bool, "status_latched", &sl);
		XIRQ_G(snap_bool, "read_msb", &rmsb);
		XIRQ_G(snap_bool, "write_msb", &wmsb);
		XIRQ_G(snap_u8, "write_lsb", &c->write_latch);
		XIRQ_G(snap_u8, "rw_mode", &c->rw_mode);
		XIRQ_G(snap_u8, "mode", &c->mode);
		XIRQ_G(snap_bool, "bcd", &bcd);
		XIRQ_G(snap_bool, "gate", &gate);
		XIRQ_G(snap_bool, "null_count", &nc);
		XIRQ_G(snap_bool, "loaded", &loaded);
		XIRQ_G(snap_u64, "since", &since);
#undef XIRQ_G
		if (c->count == 0)
			c->count = 0x10000;
		c->status_latched = sl;
		c->bcd = bcd;
		c->gate = gate;
		/* KVM's access states: 1 LSB, 2 MSB, 3/4 first/second of a
		 * word.  KVM reads a latch with its own state, then goes on
		 * with read_state; the software PIT's one flip-flop ends a
		 * latch at the LSB. */
		c->read_state = c->rw_mode == 3 ? (rmsb && !latched ? 4 : 3) :
		    c->rw_mode;
		c->write_state = c->rw_mode == 3 ? (wmsb ? 4 : 3) : c->rw_mode;
		c->count_latched = !latched ? 0 : c->rw_mode == 3 ?
		    (rmsb ? XIRQ_RW_MSB : 3) : c->rw_mode;
		if (!sl)
			c->status = xirq_pit_status(nc, c->rw_mode, c->mode,
			    bcd);
		if (!loaded)
			c->mode = 0xff;	/* KVM's "not programmed" */
		c->load_age = since > (uint64_t)INT64_MAX ? -INT64_MAX :
		    -(int64_t)since;
	}
	snap_u8(s, "port61", &port61);
	if (snap_version(s) >= 2)
		snap_bool(s, "hpet_legacy", &hpet);
	x->pit_flags = ((port61 & 2) ? XIRQ_PIT_SPEAKER : 0) |
	    (hpet ? XIRQ_PIT_HPET_LEGACY : 0);
}

/* One software chip's section at s's cursor, named name, into x. */
static void
xirq_get_soft(struct snap *s, const char *name, struct vmstate_xirq *x,
    int nvcpus)
{
	int id;

	snap_section_begin(s, name, UINT32_MAX);
	if (strcmp(name, "i8259") == 0) {
		xirq_get_pic(s, "master", &x->pic[0]);
		xirq_get_pic(s, "slave", &x->pic[1]);
	} else if (strcmp(name, "ioapic") == 0) {
		uint8_t regsel = 0;
		char n[16];

		snap_u32(s, "id", &x->ioapic_id);
		x->ioapic_id = (x->ioapic_id >> 24) & 0xf;
		snap_u8(s, "regsel", &regsel);
		x->ioapic_regsel = regsel;
		snap_u32(s, "lines", &x->ioapic_irr);
		for (int i = 0; i < 24; i++) {
			snprintf(n, sizeof(n), "rte%d", i);
			snap_u64(s, n, &x->ioapic_rte[i]);
		}
	} else if (strcmp(name, "i8254") == 0) {
		xirq_get_i8254(s, x);
	} else if (sscanf(name, "lapic%d", &id) == 1 && id >= 0 &&
	    id < nvcpus) {
		xirq_get_lapic(s, x, id);
	}
	snap_section_end(s);
}

bool
vmstate_xirq_soft_name(const char *name)
{
	int id;

	return strcmp(name, "irqchip") == 0 || strcmp(name, "i8259") == 0 ||
	    strcmp(name, "i8254") == 0 || strcmp(name, "ioapic") == 0 ||
	    sscanf(name, "lapic%d", &id) == 1;
}

int
vmstate_xirq_read_soft(struct snap *s, const char *name,
    struct vmstate_xirq *x, int nvcpus)
{
	xirq_get_soft(s, name, x, nvcpus);
	return snap_error(s);
}

/*
 * An INIT the software LAPIC held for an AP that had not taken it yet:
 * KVM has no such state, so the AP takes it now (into *r, the registers
 * INIT gives, given to KVM; then it waits for SIPI), as it would have
 * at its next step.
 */
static int
xirq_kvm_init(struct vm *vm, int i, struct vmstate_xirq *x,
    const struct cpu_state *st, struct cpu_state *r, struct snap *s)
{
	int err;

	cpu_state_reset(r);
	r->msr.apic_base = st->msr.apic_base;
	r->msr.tsc = st->msr.tsc;
	if ((err = vm->accel->set_state(vm->vcpus[i], r)) < 0) {
		snap_fail(s, err, "vCPU %d: INIT state refused: %s", i,
		    strerror(-err));
		return err;
	}
	x->mp_state[i] = XIRQ_MP_INIT_RECEIVED;
	return 0;
}

/* KVM's sections for x and the vCPUs' state st, loaded through KVM's
 * own snapshot hooks. */
int
vmstate_xirq_load_kvm(struct vm *vm, struct vmstate_xirq *x,
    const struct cpu_state *st, struct snap *s)
{
	uint8_t xsave[4096];
	struct snap w, r;
	int64_t age;
	char n[48];

	snap_init_save(&w);
	for (int i = 0; i < vm->nvcpus; i++) {
		const struct cpu_state *c = &st[i];
		struct cpu_state init;
		uint32_t mp;

		if (i > 0 && x->init_pending[i]) {
			if (xirq_kvm_init(vm, i, x, c, &init, s) < 0)
				break;
			c = &init;
		}
		mp = x->mp_state[i] ? x->mp_state[i] : c->ev.halted ? 3 : 0;

		memset(xsave, 0, sizeof(xsave));
		memcpy(xsave, c->fpu.fxsave, sizeof(c->fpu.fxsave));
		xsave[512] = 3;		/* XSTATE_BV: x87 and SSE */
		snprintf(n, sizeof(n), "kvm.cpu.%d", i);
		snap_section_begin(&w, n, 1);
		snap_bytes(&w, "xsave", xsave, sizeof(xsave));
		snap_bytes(&w, "lapic", x->lapic[i], sizeof(x->lapic[i]));
		xirq_u8(&w, "exc.injected", c->ev.exception_pending);
		xirq_u8(&w, "exc.nr", c->ev.exception_nr);
		xirq_u8(&w, "exc.has_error", c->ev.exception_has_error);
		xirq_u8(&w, "exc.pending", 0);
		xirq_u32(&w, "exc.error", c->ev.exception_error);
		xirq_u8(&w, "intr.injected", c->ev.intr_injected);
		xirq_u8(&w, "intr.nr", c->ev.intr_nr);
		xirq_u8(&w, "intr.soft", 0);
		xirq_u8(&w, "intr.shadow", cpu_state_shadow(c));
		xirq_u8(&w, "nmi.injected", c->ev.nmi_injected);
		xirq_u8(&w, "nmi.pending", c->ev.nmi_pending ||
		    x->nmi_pending[i]);
		xirq_u8(&w, "nmi.masked", c->ev.nmi_masked);
		xirq_u32(&w, "sipi_vector", x->sipi_vector[i]);
		xirq_u8(&w, "smi.smm", 0);
		xirq_u8(&w, "smi.pending", 0);
		xirq_u8(&w, "smi.inside_nmi", 0);
		xirq_u8(&w, "smi.latched_init", 0);
		xirq_u32(&w, "mp_state", mp);
		xirq_u32(&w, "msrs.n", 0);
		snap_bytes(&w, "msrs", xsave, 0);
		snap_section_end(&w);
	}
	snap_section_begin(&w, "kvm.vm", 1);
	for (int k = 0; k < 2; k++) {
		const struct vmstate_xirq_pic *p = &x->pic[k];
		const char *pfx = k == 0 ? "pic0" : "pic1";

#define XIRQ_W(f) (snprintf(n, sizeof(n), "%s.%s", pfx, #f), \
	xirq_u8(&w, n, p->f))
		XIRQ_W(last_irr); XIRQ_W(irr); XIRQ_W(imr); XIRQ_W(isr);
		XIRQ_W(priority_add); XIRQ_W(irq_base);
		XIRQ_W(read_reg_select); XIRQ_W(poll); XIRQ_W(special_mask);
		XIRQ_W(init_state); XIRQ_W(auto_eoi);
		XIRQ_W(rotate_on_auto_eoi); XIRQ_W(special_fully_nested_mode);
		XIRQ_W(init4); XIRQ_W(elcr); XIRQ_W(elcr_mask);
#undef XIRQ_W
	}
	xirq_u64(&w, "ioapic.base", 0xfec00000ull);
	xirq_u32(&w, "ioapic.regsel", x->ioapic_regsel);
	xirq_u32(&w, "ioapic.id", x->ioapic_id);
	xirq_u32(&w, "ioapic.irr", x->ioapic_irr);
	for (int i = 0; i < 24; i++) {
		snprintf(n, sizeof(n), "ioapic.rte%d", i);
		xirq_u64(&w, n, x->ioapic_rte[i]);
	}
	for (int i = 0; i < 3; i++) {
		const struct vmstate_xirq_pit *c = &x->pit[i];

#define XIRQ_P(fn, f) (snprintf(n, sizeof(n), "pit%d.%s", i, #f), \
	fn(&w, n, c->f))
		XIRQ_P(xirq_u32, count); XIRQ_P(xirq_u16, latched_count);
		XIRQ_P(xirq_u8, count_latched); XIRQ_P(xirq_u8, status_latched);
		XIRQ_P(xirq_u8, status); XIRQ_P(xirq_u8, read_state);
		XIRQ_P(xirq_u8, write_state); XIRQ_P(xirq_u8, write_latch);
		XIRQ_P(xirq_u8, rw_mode); XIRQ_P(xirq_u8, mode);
		XIRQ_P(xirq_u8, bcd); XIRQ_P(xirq_u8, gate);
#undef XIRQ_P
		age = c->load_age;
		snprintf(n, sizeof(n), "pit%d.load_age", i);
		snap_i64(&w, n, &age);
	}
	xirq_u32(&w, "pit.flags", x->pit_flags);
	xirq_u64(&w, "clock", 0);
	snap_section_end(&w);
	snap_init_load(&r, w.buf, w.len);
	for (int i = 0; i < vm->nvcpus && snap_error(s) == 0 &&
	    snap_error(&w) == 0 && snap_error(&r) == 0; i++)
		vm->accel->vcpu_snapshot(vm->vcpus[i], &r);
	if (snap_error(s) == 0 && snap_error(&w) == 0 && snap_error(&r) == 0)
		vm->accel->vm_snapshot(vm, &r);
	if (snap_error(s) == 0 && (snap_error(&w) != 0 || snap_error(&r) != 0))
		snap_fail(s, snap_error(&w) ? snap_error(&w) : snap_error(&r),
		    "the software interrupt controllers into KVM's: %s",
		    snap_error(&w) ? w.errmsg : r.errmsg);
	snap_free(&w);
	return snap_error(s);
}
