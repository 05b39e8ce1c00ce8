/*
 * The software interrupt controllers as one unit: the 8259 pair, the
 * 8254, the I/O APIC and one local APIC per vCPU, wired as on a PC:
 * ISA IRQ 0 (the PIT) reaches PIC pin 0 and IOAPIC pin 2, other ISA
 * lines the same pin on both, the PIC's INT reaches every LAPIC's LINT0
 * (and IOAPIC pin 0, for ExtINT routing through the IOAPIC).
 *
 * The LAPIC MMIO page is one bus range per distinct APIC base in use;
 * the handler's vcpu argument picks the LAPIC, as each CPU sees its own.
 */
#include "devices/irqchip.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "devices/i8254.h"
#include "devices/i8259.h"
#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/log.h"

#define IRQCHIP_APIC_SIZE	0x1000

/* --- locking and kicks --- */

void
irqchip_lock(struct irqchip *ic)
{
	pthread_mutex_lock(&ic->lock);
}

void
irqchip_unlock(struct irqchip *ic)
{
	uint64_t kick = ic->kick;

	ic->kick = 0;
	pthread_mutex_unlock(&ic->lock);
	while (kick != 0) {
		int i = __builtin_ctzll(kick);

		kick &= kick - 1;
		if (i < ic->vm->nvcpus && ic->vm->vcpus[i] != NULL)
			vcpu_kick(ic->vm->vcpus[i], VCPU_REQ_IRQ);
	}
}

void
irqchip_kick_later(struct irqchip *ic, struct vcpu *vcpu)
{
	if (vcpu != NULL && vcpu->id >= 0 && vcpu->id < 64)
		ic->kick |= 1ull << vcpu->id;
}

void
irqchip_pic_changed(struct irqchip *ic)
{
	struct vm *vm = ic->vm;
	bool out = ic->pic != NULL && i8259_output(ic->pic);

	for (int i = 0; i < vm->nvcpus; i++) {
		struct lapic *l;

		if (vm->vcpus[i] == NULL || (l = vm->vcpus[i]->lapic) == NULL)
			continue;
		/* An ExtINT message is moot once the request is gone. */
		if (!out)
			l->extint = false;
		lapic_update(l);
	}
	if (ic->ioapic != NULL && ic->pic != NULL)
		ioapic_set_irq(ic->ioapic, 0, i8259_output(ic->pic));
}

/* --- the LAPIC windows --- */

static void
irqchip_apic_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct irqchip_apic_window *w = opaque;
	struct irqchip *ic = w->ic;
	struct lapic *l = vcpu != NULL ? vcpu->lapic : NULL;

	if (l == NULL) {
		/* Not from a CPU: a device write here is an MSI. */
		if (is_write && len >= 4)
			irqchip_msi(ic->vm, w->base + off,
			    (uint32_t)bus_get(data, 4));
		else if (!is_write)
			bus_put(data, len, ~0ull);
		return;
	}
	irqchip_lock(ic);
	if (l->window == w->base)
		lapic_mmio(l, off, data, len, is_write);
	else if (!is_write)	/* this CPU's APIC is elsewhere or off */
		bus_put(data, len, ~0ull);
	irqchip_unlock(ic);
}

static struct irqchip_apic_window *
irqchip_window(struct irqchip *ic, uint64_t base)
{
	for (int i = 0; i < IRQCHIP_APIC_WINDOWS; i++)
		if (ic->win[i].base == base)
			return &ic->win[i];
	return NULL;
}

int
irqchip_apic_move(struct irqchip *ic, uint64_t old_base, uint64_t new_base)
{
	struct irqchip_apic_window *w;
	int err;

	if (new_base != 0) {
		w = irqchip_window(ic, new_base);
		if (w == NULL) {
			if ((w = irqchip_window(ic, 0)) == NULL)
				return -ENOSPC;
			err = bus_register(ic->vm->mmio, new_base,
			    IRQCHIP_APIC_SIZE, irqchip_apic_io, w, "lapic");
			if (err < 0)
				return err;
			w->ic = ic;
			w->base = new_base;
			w->users = 0;
		}
		w->users++;
	}
	if (old_base != 0 && (w = irqchip_window(ic, old_base)) != NULL) {
		if (w->users > 0)
			w->users--;
		/* The default page stays: device MSIs land there. */
		if (w->users == 0 && old_base != GPA_LAPIC) {
			bus_unregister(ic->vm->mmio, old_base);
			w->base = 0;
		}
	}
	return 0;
}

/* --- life cycle --- */

static void
irqchip_fini(void *state)
{
	struct irqchip *ic = state;
	struct vm *vm = ic->vm;

	for (int i = 0; i < IRQCHIP_APIC_WINDOWS; i++)
		if (ic->win[i].base != 0)
			bus_unregister(vm->mmio, ic->win[i].base);
	for (int i = 0; i < vm->nvcpus; i++) {
		if (vm->vcpus[i] == NULL)
			continue;
		lapic_free(vm->vcpus[i]->lapic);
		vm->vcpus[i]->lapic = NULL;
	}
	if (ic->pic != NULL)
		i8259_unregister(ic->pic);
	if (ic->pit != NULL)
		i8254_unregister(ic->pit);
	if (ic->ioapic != NULL)
		ioapic_unregister(ic->ioapic);
	i8259_free(ic->pic);
	i8254_free(ic->pit);
	ioapic_free(ic->ioapic);
	if (vm->irqchip == ic)
		vm->irqchip = NULL;
	pthread_mutex_destroy(&ic->lock);
	free(ic);
}

/* Allocate every chip; nothing is visible to the guest yet. */
static struct irqchip *
irqchip_alloc(struct vm *vm)
{
	struct irqchip *ic = calloc(1, sizeof(*ic));

	if (ic == NULL)
		return NULL;
	ic->vm = vm;
	pthread_mutex_init(&ic->lock, NULL);
	ic->pic = i8259_new(ic);
	ic->pit = i8254_new(ic);
	ic->ioapic = ioapic_new(ic);
	if (ic->pic == NULL || ic->pit == NULL || ic->ioapic == NULL)
		goto fail;
	for (int i = 0; i < vm->nvcpus; i++) {
		if ((vm->vcpus[i]->lapic = lapic_new(ic, vm->vcpus[i])) == NULL)
			goto fail;
	}
	return ic;
fail:
	irqchip_fini(ic);
	return NULL;
}

/* Claim the I/O ranges and name each chip as its own device instance
 * (its own snapshot section). */
static int
irqchip_attach(struct irqchip *ic)
{
	struct vm *vm = ic->vm;
	char name[32];
	int err;

	if ((err = i8259_register(ic->pic)) < 0 ||
	    (err = i8254_register(ic->pit)) < 0 ||
	    (err = ioapic_register(ic->ioapic)) < 0)
		return err;
	irqchip_lock(ic);
	for (int i = 0; i < vm->nvcpus && err == 0; i++) {
		struct lapic *l = vm->vcpus[i]->lapic;

		err = lapic_set_base(l, l->base);	/* maps its page */
		if (err == 0 && l->window == 0)
			err = -EEXIST;
	}
	irqchip_unlock(ic);
	if (err < 0)
		return err;
	if ((err = vm_device_register(vm, &i8259_device, ic->pic,
	    "i8259")) < 0 ||
	    (err = vm_device_register(vm, &i8254_device, ic->pit,
	    "i8254")) < 0 ||
	    (err = vm_device_register(vm, &ioapic_device, ic->ioapic,
	    "ioapic")) < 0)
		return err;
	for (int i = 0; i < vm->nvcpus; i++) {
		snprintf(name, sizeof(name), "lapic%d", i);
		err = vm_device_register(vm, &lapic_device, vm->vcpus[i]->lapic,
		    name);
		if (err < 0)
			return err;
	}
	return 0;
}

int
irqchip_create(struct vm *vm)
{
	struct irqchip *ic;
	int err;

	if (vm->irqchip != NULL)
		return -EEXIST;
	if ((ic = irqchip_alloc(vm)) == NULL)
		return -ENOMEM;
	/* Registered first, so its fini (which frees every chip) runs
	 * last and also cleans up after a failure below. */
	err = vm_device_register(vm, &irqchip_device, ic, "irqchip");
	if (err < 0) {
		irqchip_fini(ic);
		return err;
	}
	vm->irqchip = ic;
	err = irqchip_attach(ic);
	if (err < 0)
		log_warnx("irqchip: cannot claim its I/O ranges: %d", err);
	return err;
}

/* Shared state is only the arbitration rotation; the chips have their
 * own sections. */
static int
irqchip_snapshot(void *state, struct snap *s)
{
	struct irqchip *ic = state;
	uint32_t rr = ic->lowest_rr;

	snap_u32(s, "lowest_rr", &rr);
	if (!snap_saving(s))
		ic->lowest_rr = rr;
	return snap_error(s);
}

const struct device_ops irqchip_device = {
	.name = "irqchip",
	.flags = DEV_SOFT_IRQCHIP,
	.create = irqchip_create,
	.fini = irqchip_fini,
	.snapshot = irqchip_snapshot,
	.snapshot_version = 1,
};

/* --- lines and messages --- */

int
irqchip_set_irq(struct vm *vm, unsigned gsi, int level)
{
	struct irqchip *ic = vm->irqchip;

	if (ic == NULL)
		return -ENODEV;
	if (gsi >= IOAPIC_NPINS)
		return -EINVAL;
	if (gsi == 2)
		return 0;	/* the cascade: no device drives it */
	irqchip_lock(ic);
	if (gsi < 16)
		i8259_set_irq(ic->pic, gsi, level);
	/* The usual interrupt source override: ISA IRQ 0 is pin 2. */
	ioapic_set_irq(ic->ioapic, gsi == 0 ? 2 : gsi, level);
	irqchip_unlock(ic);
	return 0;
}

/* Does any CPU take the PIC's INT (virtual wire, ExtINT, APIC off)? */
static bool
irqchip_pic_live(struct irqchip *ic)
{
	struct vm *vm = ic->vm;

	for (int i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i] != NULL && vm->vcpus[i]->lapic != NULL &&
		    lapic_accepts_pic(vm->vcpus[i]->lapic))
			return true;
	return false;
}

bool
irqchip_gsi_pending(struct vm *vm, unsigned gsi)
{
	struct irqchip *ic = vm->irqchip;
	bool pending = false;

	if (ic == NULL || gsi >= IOAPIC_NPINS)
		return false;
	irqchip_lock(ic);
	/* A request latched in a PIC nobody listens to is not waiting for
	 * anyone: it must not hold back the IOAPIC path. */
	if (gsi < 16 && irqchip_pic_live(ic))
		pending = i8259_irq_pending(ic->pic, gsi);
	if (!pending && gsi != 2)
		pending = ioapic_pin_pending(ic->ioapic, gsi == 0 ? 2 : gsi);
	irqchip_unlock(ic);
	return pending;
}

int
irqchip_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	struct irqchip *ic = vm->irqchip;
	struct lapic_msg m = {
		.vector = data & 0xff, .mode = (data >> 8) & 7,
		.logical = addr & 4, .dest = (addr >> 12) & 0xff,
	};

	if (ic == NULL)
		return -ENODEV;
	if ((addr >> 20) != (GPA_LAPIC >> 20)) {
		log_guest_once("irqchip: MSI to %#llx dropped",
		    (unsigned long long)addr);
		return -EINVAL;
	}
	irqchip_lock(ic);
	lapic_deliver(ic, &m);
	irqchip_unlock(ic);
	return 0;
}

/* --- the vCPU side --- */

bool
irqchip_pending(struct vcpu *vcpu)
{
	struct lapic *l = vcpu->lapic;

	return l != NULL &&
	    atomic_load_explicit(&l->pending, memory_order_acquire);
}

int
irqchip_ack(struct vcpu *vcpu)
{
	struct lapic *l = vcpu->lapic;
	int v;

	if (l == NULL)
		return -1;
	irqchip_lock(l->ic);
	v = lapic_ack(l);
	irqchip_unlock(l->ic);
	return v;
}

bool
irqchip_take_nmi(struct vcpu *vcpu)
{
	struct lapic *l = vcpu->lapic;

	return l != NULL && atomic_exchange(&l->nmi, false);
}

bool
irqchip_take_init(struct vcpu *vcpu)
{
	struct lapic *l = vcpu->lapic;

	return l != NULL && atomic_exchange(&l->init, false);
}

bool
irqchip_take_sipi(struct vcpu *vcpu, uint8_t *vector)
{
	struct lapic *l = vcpu->lapic;

	if (l == NULL || !atomic_exchange(&l->sipi, false))
		return false;
	if (vector != NULL)
		*vector = atomic_load(&l->sipi_vector);
	return true;
}

uint64_t
irqchip_apic_base(struct vcpu *vcpu)
{
	struct lapic *l = vcpu->lapic;
	uint64_t v;

	if (l == NULL)
		return 0;
	irqchip_lock(l->ic);
	v = l->base;
	irqchip_unlock(l->ic);
	return v;
}

int
irqchip_set_apic_base(struct vcpu *vcpu, uint64_t value)
{
	struct lapic *l = vcpu->lapic;
	int err;

	if (l == NULL)
		return -ENODEV;
	irqchip_lock(l->ic);
	err = lapic_set_base(l, value);
	irqchip_unlock(l->ic);
	return err;
}

uint8_t
irqchip_get_tpr(struct vcpu *vcpu)
{
	struct lapic *l = vcpu->lapic;
	uint8_t v;

	if (l == NULL)
		return 0;
	irqchip_lock(l->ic);
	v = (l->tpr >> 4) & 0xf;
	irqchip_unlock(l->ic);
	return v;
}

void
irqchip_set_tpr(struct vcpu *vcpu, uint8_t cr8)
{
	struct lapic *l = vcpu->lapic;

	if (l == NULL)
		return;
	irqchip_lock(l->ic);
	lapic_set_tpr(l, (uint8_t)((cr8 & 0xf) << 4));
	irqchip_unlock(l->ic);
}
