/*
 * KVM's interrupt controllers into the software models (vmstate_xirq.h).
 *
 * The KVM sections are read by the field names kvm.c writes; the state
 * is then written as the software chips' own sections (same field names
 * as their snapshot functions) and loaded through those functions, so
 * every check a chip makes on a loaded value applies here too.
 *
 * What does not map exactly: the local APIC timer restarts its current
 * period where KVM's count stood; an interrupt KVM was injecting goes
 * back to the APIC's IRR; the PIT's "no count yet" and gate-trigger
 * flags are not kept by KVM and start clear.
 */
#include "migrate/vmstate_xirq.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices/device.h"
#include "hv/cpu_state.h"
#include "migrate/snap.h"

#define XIRQ_MP_INIT_RECEIVED	2	/* KVM_MP_STATE_* */
#define XIRQ_MP_SIPI_RECEIVED	4
#define XIRQ_RW_WORD1		4	/* KVM's RW_STATE_WORD1 */
#define XIRQ_RW_MSB		2
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
    uint64_t base)
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
	/* An interrupt KVM was injecting is in service already: it goes
	 * back to requested, to be delivered again. */
	if (x->intr_injected[id] && (isr[vec / 32] & (1u << (vec % 32)))) {
		isr[vec / 32] &= ~(1u << (vec % 32));
		irr[vec / 32] |= 1u << (vec % 32);
	}
	xirq_u64(w, "base", base);
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

static void
xirq_i8254(struct snap *w, const struct vmstate_xirq *x)
{
	char n[40];

	for (int i = 0; i < 3; i++) {
		const struct vmstate_xirq_pit *c = &x->pit[i];
		bool valid = c->mode <= 5 && c->rw_mode >= 1 && c->rw_mode <= 3;
		bool latched = c->count_latched != 0;
		bool word = c->rw_mode == 3;

#define XIRQ_C(fn, f, v) (snprintf(n, sizeof(n), "ch%d.%s", i, f), \
	fn(w, n, v))
		XIRQ_C(xirq_u32, "count", c->count & 0xffff);
		XIRQ_C(xirq_u16, "latch", c->latched_count);
		XIRQ_C(xirq_b, "latched", latched);
		XIRQ_C(xirq_u8, "status", c->status);
		XIRQ_C(xirq_b, "status_latched", c->status_latched != 0);
		XIRQ_C(xirq_b, "read_msb", word && (latched ?
		    c->count_latched == XIRQ_RW_MSB :
		    c->read_state == XIRQ_RW_WORD1));
		XIRQ_C(xirq_b, "write_msb", word &&
		    c->write_state == XIRQ_RW_WORD1);
		XIRQ_C(xirq_u8, "write_lsb", c->write_latch);
		XIRQ_C(xirq_u8, "rw_mode", valid ? c->rw_mode : 3);
		XIRQ_C(xirq_u8, "mode", valid ? c->mode : 0);
		XIRQ_C(xirq_b, "bcd", c->bcd != 0);
		XIRQ_C(xirq_b, "gate", c->gate != 0);
		XIRQ_C(xirq_b, "null_count", !valid);
		XIRQ_C(xirq_b, "loaded", valid);
		XIRQ_C(xirq_b, "triggered", valid && (c->mode == 1 ||
		    c->mode == 5) && c->gate);
		XIRQ_C(xirq_b, "frozen", false);
		XIRQ_C(xirq_u64, "frozen_ticks", 0);
		XIRQ_C(xirq_b, "next_pending", false);
		XIRQ_C(xirq_u32, "next_count", 0);
		XIRQ_C(xirq_u64, "next_at", 0);
		XIRQ_C(xirq_u64, "skip", 0);
		XIRQ_C(xirq_u64, "since", c->load_age < 0 ?
		    (uint64_t)-c->load_age : 0);
#undef XIRQ_C
	}
	xirq_u8(w, "port61", (x->pit[2].gate ? 1 : 0) |
	    ((x->pit_flags & XIRQ_PIT_SPEAKER) ? 2 : 0));
	xirq_b(w, "irq0", false);
	xirq_b(w, "irq0_done", false);
	xirq_u32(w, "irq0_owed", 0);
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
		xirq_lapic(w, x, id, st[id].msr.apic_base);
	} else {
		snap_fail(w, -ENOTSUP, "no KVM counterpart for %s", d->name);
	}
	snap_section_end(w);
}

int
vmstate_xirq_load_soft(struct vm *vm, const struct vmstate_xirq *x,
    const struct cpu_state *st, struct snap *s)
{
	struct snap w, r;

	snap_init_save(&w);
	for (int i = 0; i < vm->ndevices && snap_error(&w) == 0; i++)
		if (vmstate_xirq_soft(&vm->devices[i]))
			xirq_section(&w, &vm->devices[i], x, st, vm->nvcpus);
	snap_init_load(&r, w.buf, w.len);
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
