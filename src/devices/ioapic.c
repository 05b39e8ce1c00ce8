/*
 * The I/O APIC, after the 82093AA datasheet with the version 0x20 EOI
 * register.  A pin's state is its input level; an entry sends a message
 * on the APIC bus (lapic_deliver) on a rising edge, or while a level pin
 * is asserted and no earlier message is awaiting its EOI (remote IRR).
 *
 * Polarity is recorded but not applied: devices report "asserted", as
 * they do to KVM's IOAPIC, and the ACPI tables describe the wiring.
 */
#include "devices/ioapic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "devices/irqchip.h"
#include "devices/lapic.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/log.h"

#define IOAPIC_MMIO_SIZE	0x100
#define IOAPIC_VERSION		0x20

/* Redirection entry bits. */
#define RTE_DELIVERY_STATUS	(1ull << 12)
#define RTE_REMOTE_IRR		(1ull << 14)
#define RTE_LEVEL		(1ull << 15)
#define RTE_MASKED		(1ull << 16)
/* What the guest may write: vector, mode, dest mode, polarity, trigger,
 * mask, destination. */
#define RTE_WRITABLE		(0xff000000000000ffull | 0x1af00ull)

struct ioapic {
	struct irqchip *ic;
	uint32_t id;		/* ID register (bits 27:24) */
	uint8_t regsel;
	uint32_t lines;		/* input level of each pin */
	uint64_t rte[IOAPIC_NPINS];
	bool registered;
};

/* Send pin's message if the entry allows one now. */
static void
ioapic_service(struct ioapic *io, unsigned pin)
{
	uint64_t e = io->rte[pin];
	struct lapic_msg m = {
		.vector = e & 0xff, .mode = (e >> 8) & 7,
		.logical = e & (1u << 11), .level = e & RTE_LEVEL,
		.dest = e >> 56,
	};

	if (e & RTE_MASKED)
		return;
	if (m.level) {
		if (e & RTE_REMOTE_IRR)
			return;
		/* NMI, INIT and ExtINT get no EOI back: no remote IRR. */
		if (m.mode == APIC_DM_FIXED || m.mode == APIC_DM_LOWEST)
			io->rte[pin] |= RTE_REMOTE_IRR;
	}
	if (m.mode == APIC_DM_STARTUP) {
		log_guest_once("ioapic: pin %u: start-up delivery ignored",
		    pin);
		return;
	}
	lapic_deliver(io->ic, &m);
}

void
ioapic_set_irq(struct ioapic *io, unsigned pin, int level)
{
	uint32_t bit;
	bool was;

	if (pin >= IOAPIC_NPINS)
		return;
	bit = 1u << pin;
	was = io->lines & bit;
	if (level)
		io->lines |= bit;
	else
		io->lines &= ~bit;
	if (!level)
		return;
	if ((io->rte[pin] & RTE_LEVEL) || !was)
		ioapic_service(io, pin);
}

bool
ioapic_pin_pending(const struct ioapic *io, unsigned pin)
{
	uint64_t e;
	struct vm *vm = io->ic->vm;

	if (pin >= IOAPIC_NPINS)
		return false;
	e = io->rte[pin];
	if (e & RTE_MASKED)
		return false;
	if ((e & RTE_LEVEL) && (e & RTE_REMOTE_IRR))
		return true;
	for (int i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i] != NULL && vm->vcpus[i]->lapic != NULL &&
		    lapic_in_irr(vm->vcpus[i]->lapic, e & 0xff))
			return true;
	return false;
}

void
ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	for (unsigned pin = 0; pin < IOAPIC_NPINS; pin++) {
		uint64_t *e = &io->rte[pin];

		if ((*e & 0xff) != vector || !(*e & RTE_LEVEL) ||
		    !(*e & RTE_REMOTE_IRR))
			continue;
		*e &= ~RTE_REMOTE_IRR;
		if (io->lines & (1u << pin))
			ioapic_service(io, pin);
	}
}

static uint32_t
ioapic_read_reg(struct ioapic *io)
{
	unsigned r = io->regsel, pin;

	switch (r) {
	case 0x00:
		return io->id;
	case 0x01:
		return IOAPIC_VERSION | ((IOAPIC_NPINS - 1) << 16);
	case 0x02:
		return io->id;		/* arbitration ID */
	}
	if (r < 0x10 || r >= 0x10 + 2 * IOAPIC_NPINS)
		return 0;
	pin = (r - 0x10) / 2;
	return (r & 1) ? io->rte[pin] >> 32 : (uint32_t)io->rte[pin];
}

static void
ioapic_write_rte(struct ioapic *io, unsigned pin, bool high, uint32_t v)
{
	uint64_t e = io->rte[pin], keep;

	if (high)
		e = (e & 0xffffffffull) | ((uint64_t)v << 32);
	else
		e = (e & ~0xffffffffull) | v;
	keep = io->rte[pin] & (RTE_REMOTE_IRR | RTE_DELIVERY_STATUS);
	e = (e & RTE_WRITABLE) | keep;
	/* An edge entry has no EOI to wait for (Linux relies on this to
	 * unstick a remote IRR by flipping the trigger mode). */
	if (!(e & RTE_LEVEL))
		e &= ~RTE_REMOTE_IRR;
	io->rte[pin] = e;
	/* Unmasking a level pin still asserted delivers it now. */
	if ((e & RTE_LEVEL) && (io->lines & (1u << pin)))
		ioapic_service(io, pin);
}

static void
ioapic_write_reg(struct ioapic *io, uint32_t v)
{
	unsigned r = io->regsel;

	if (r == 0x00) {
		io->id = v & 0x0f000000;
	} else if (r >= 0x10 && r < 0x10 + 2 * IOAPIC_NPINS) {
		ioapic_write_rte(io, (r - 0x10) / 2, r & 1, v);
	} else {
		log_guest_once("ioapic: write %#x to register %#x ignored",
		    v, r);
	}
}

static void
ioapic_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct ioapic *io = opaque;
	uint32_t v = 0;

	irqchip_lock(io->ic);
	switch (off & ~3ull) {
	case 0x00:		/* IOREGSEL */
		if (is_write)
			io->regsel = data[0];
		else
			v = io->regsel;
		break;
	case 0x10:		/* IOWIN */
		if (is_write && len >= 4)
			ioapic_write_reg(io, (uint32_t)bus_get(data, 4));
		else if (is_write)
			log_guest_once("ioapic: %u-byte IOWIN write", len);
		else
			v = ioapic_read_reg(io);
		break;
	case 0x40:		/* EOI (version 0x20) */
		if (is_write)
			ioapic_eoi(io, data[0]);
		break;
	default:
		break;
	}
	if (!is_write)
		bus_put(data, len, (uint64_t)v >> (8 * (off & 3)));
	irqchip_unlock(io->ic);
}

static void
ioapic_reset_nolock(struct ioapic *io)
{
	io->id = 0;
	io->regsel = 0;
	for (unsigned i = 0; i < IOAPIC_NPINS; i++)
		io->rte[i] = RTE_MASKED;
}

struct ioapic *
ioapic_new(struct irqchip *ic)
{
	struct ioapic *io = calloc(1, sizeof(*io));

	if (io == NULL)
		return NULL;
	io->ic = ic;
	ioapic_reset_nolock(io);
	return io;
}

void
ioapic_free(struct ioapic *io)
{
	free(io);
}

int
ioapic_register(struct ioapic *io)
{
	int err = bus_register(io->ic->vm->mmio, GPA_IOAPIC, IOAPIC_MMIO_SIZE,
	    ioapic_io, io, "ioapic");

	io->registered = err == 0;
	return err;
}

void
ioapic_unregister(struct ioapic *io)
{
	if (io->registered)
		bus_unregister(io->ic->vm->mmio, GPA_IOAPIC);
	io->registered = false;
}

static void
ioapic_reset(void *state)
{
	struct ioapic *io = state;

	irqchip_lock(io->ic);
	ioapic_reset_nolock(io);
	irqchip_unlock(io->ic);
}

static int
ioapic_snapshot(void *state, struct snap *s)
{
	struct ioapic *io = state;
	struct ioapic tmp;
	char n[16];

	/* Loaded into a copy: a refused stream leaves the chip as it was. */
	irqchip_lock(io->ic);
	tmp = *io;
	snap_u32(s, "id", &tmp.id);
	snap_u8(s, "regsel", &tmp.regsel);
	snap_u32(s, "lines", &tmp.lines);
	for (unsigned i = 0; i < IOAPIC_NPINS; i++) {
		snprintf(n, sizeof(n), "rte%u", i);
		snap_u64(s, n, &tmp.rte[i]);
	}
	if (!snap_saving(s) && snap_error(s) == 0) {
		io->id = tmp.id & 0x0f000000;
		io->regsel = tmp.regsel;
		io->lines = tmp.lines & ((1u << IOAPIC_NPINS) - 1);
		for (unsigned i = 0; i < IOAPIC_NPINS; i++)
			io->rte[i] = tmp.rte[i] & (RTE_WRITABLE |
			    RTE_REMOTE_IRR);
	}
	irqchip_unlock(io->ic);
	return snap_error(s);
}

const struct device_ops ioapic_device = {
	.name = "ioapic",
	.flags = DEV_SOFT_IRQCHIP,
	.snapshot = ioapic_snapshot,
	.snapshot_version = 1,
	.reset = ioapic_reset,
};
