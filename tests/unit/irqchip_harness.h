/*
 * A hand-built VM with vCPUs (no accelerator, no guest code) for the
 * irqchip tests: every access goes through the real bus handlers, as a
 * vCPU's exit would, with the clock frozen and advanced by hand.
 */
#ifndef TV_TEST_IRQCHIP_HARNESS_H
#define TV_TEST_IRQCHIP_HARNESS_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "devices/irqchip.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/evloop.h"

#define TH_T0	1000000000000ull	/* fake clock start: 1000 s */

static bool th_clock_frozen;

static inline struct vm *
th_vm_new(int ncpus)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	cr_assert_not_null(vm);
	if (!th_clock_frozen)	/* a second VM shares the first's clock */
		vclock_set_fake(true, TH_T0);
	th_clock_frozen = true;
	pthread_mutex_init(&vm->devlock, NULL);
	vm->pio = bus_new("pio");
	vm->mmio = bus_new("mmio");
	vm->loop = evloop_new();
	cr_assert(vm->pio && vm->mmio && vm->loop);
	for (int i = 0; i < ncpus; i++) {
		struct vcpu *v = calloc(1, sizeof(*v));

		cr_assert_not_null(v);
		v->vm = vm;
		v->id = i;
		pthread_mutex_init(&v->lock, NULL);
		pthread_cond_init(&v->wake, NULL);
		vm->vcpus[i] = v;
	}
	vm->nvcpus = ncpus;
	cr_assert_eq(irqchip_create(vm), 0);
	cr_assert_not_null(vm->irqchip);
	return vm;
}

static inline void
th_vm_free(struct vm *vm)
{
	devices_destroy(vm);
	for (int i = 0; i < vm->nvcpus; i++) {
		cr_assert_null(vm->vcpus[i]->lapic);
		pthread_mutex_destroy(&vm->vcpus[i]->lock);
		pthread_cond_destroy(&vm->vcpus[i]->wake);
		free(vm->vcpus[i]);
	}
	evloop_free(vm->loop);
	bus_free(vm->pio);
	bus_free(vm->mmio);
	pthread_mutex_destroy(&vm->devlock);
	free(vm);
}

static inline uint8_t
th_inb(struct vm *vm, uint16_t port)
{
	uint8_t d = 0;

	cr_assert(bus_access(vm->pio, vm->vcpus[0], port, &d, 1, false),
	    "port %#x unclaimed", port);
	return d;
}

static inline void
th_outb(struct vm *vm, uint16_t port, uint8_t v)
{
	cr_assert(bus_access(vm->pio, vm->vcpus[0], port, &v, 1, true),
	    "port %#x unclaimed", port);
}

/* LAPIC register of vCPU cpu at the default base. */
static inline uint32_t
th_apic_read(struct vm *vm, int cpu, unsigned reg)
{
	uint8_t d[4];

	cr_assert(bus_access(vm->mmio, vm->vcpus[cpu], GPA_LAPIC + reg, d, 4,
	    false));
	return (uint32_t)bus_get(d, 4);
}

static inline void
th_apic_write(struct vm *vm, int cpu, unsigned reg, uint32_t v)
{
	uint8_t d[4];

	bus_put(d, 4, v);
	cr_assert(bus_access(vm->mmio, vm->vcpus[cpu], GPA_LAPIC + reg, d, 4,
	    true));
}

static inline uint32_t
th_ioapic_read(struct vm *vm, uint8_t reg)
{
	uint8_t d[4];

	bus_access(vm->mmio, vm->vcpus[0], GPA_IOAPIC, &reg, 1, true);
	bus_access(vm->mmio, vm->vcpus[0], GPA_IOAPIC + 0x10, d, 4, false);
	return (uint32_t)bus_get(d, 4);
}

static inline void
th_ioapic_write(struct vm *vm, uint8_t reg, uint32_t v)
{
	uint8_t d[4];

	bus_put(d, 4, v);
	bus_access(vm->mmio, vm->vcpus[0], GPA_IOAPIC, &reg, 1, true);
	bus_access(vm->mmio, vm->vcpus[0], GPA_IOAPIC + 0x10, d, 4, true);
}

static inline void
th_ioapic_route(struct vm *vm, unsigned pin, uint64_t rte)
{
	th_ioapic_write(vm, 0x10 + 2 * pin + 1, (uint32_t)(rte >> 32));
	th_ioapic_write(vm, 0x10 + 2 * pin, (uint32_t)rte);
}

/* Linux's init_8259A (arch/x86/kernel/i8259.c): vectors 0x30/0x38,
 * cascade on IR2, normal EOI; then unmask as given. */
static inline void
th_pic_init_linux(struct vm *vm, uint8_t master_mask, uint8_t slave_mask)
{
	th_outb(vm, 0x21, 0xff);
	th_outb(vm, 0xa1, 0xff);
	th_outb(vm, 0x20, 0x11);
	th_outb(vm, 0x21, 0x30);
	th_outb(vm, 0x21, 0x04);
	th_outb(vm, 0x21, 0x01);
	th_outb(vm, 0xa0, 0x11);
	th_outb(vm, 0xa1, 0x38);
	th_outb(vm, 0xa1, 0x02);
	th_outb(vm, 0xa1, 0x01);
	th_outb(vm, 0x21, master_mask);
	th_outb(vm, 0xa1, slave_mask);
}

/* Software-enable vCPU cpu's LAPIC the way Linux's setup_local_APIC
 * does (spurious vector 0xff). */
static inline void
th_apic_enable(struct vm *vm, int cpu)
{
	th_apic_write(vm, cpu, 0xf0, 0x1ff);
}

/* Advance the frozen clock by ns in steps, firing due timers. */
static inline void
th_run(struct vm *vm, uint64_t ns, uint64_t step)
{
	for (uint64_t t = 0; t < ns; t += step) {
		vclock_advance_fake(step);
		evloop_run_timers(vm->loop);
	}
}

static inline bool
th_kicked(struct vm *vm, int cpu)
{
	return atomic_fetch_and(&vm->vcpus[cpu]->requests, ~VCPU_REQ_IRQ) &
	    VCPU_REQ_IRQ;
}

static inline struct device_inst *
th_instance(struct vm *vm, const char *name)
{
	for (int i = 0; i < vm->ndevices; i++)
		if (strcmp(vm->devices[i].name, name) == 0)
			return &vm->devices[i];
	cr_assert_fail("no instance %s", name);
	return NULL;
}

/* Append instance name of vm to s as its own section. */
static inline void
th_snap_save(struct vm *vm, const char *name, struct snap *s)
{
	struct device_inst *a = th_instance(vm, name);

	snap_section_begin(s, name, a->ops->snapshot_version);
	cr_assert_eq(a->ops->snapshot(a->state, s), 0, "%s", s->errmsg);
	snap_section_end(s);
	cr_assert_eq(snap_error(s), 0, "%s", s->errmsg);
}

/* Load the next section of l into instance name of vm. */
static inline void
th_snap_load(struct vm *vm, const char *name, struct snap *l)
{
	struct device_inst *b = th_instance(vm, name);

	snap_section_begin(l, name, b->ops->snapshot_version);
	cr_assert_eq(b->ops->snapshot(b->state, l), 0, "%s", l->errmsg);
	snap_section_end(l);
	cr_assert_eq(snap_error(l), 0, "%s", l->errmsg);
}

/* Save instance name of from and load it into the same one of to. */
static inline void
th_snap_copy(struct vm *from, struct vm *to, const char *name)
{
	struct snap s, l;

	snap_init_save(&s);
	th_snap_save(from, name, &s);
	snap_init_load(&l, s.buf, s.len);
	th_snap_load(to, name, &l);
	snap_free(&s);
}

#endif
