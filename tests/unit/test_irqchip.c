/*
 * The irqchip as one unit: the device table entry and its instances,
 * whole-VM snapshots, the PIT/LAPIC/IOAPIC working together as in
 * Linux's APIC timer calibration, and the vCPU side's lock-free pending
 * summary and wake-ups under threads.
 */
#include "irqchip_harness.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "devices/i8254.h"
#include "devices/lapic.h"

static struct vm *vm;

static void
setup(void)
{
	vm = th_vm_new(2);
}

static void
teardown(void)
{
	th_vm_free(vm);
}

TestSuite(irqchip, .init = setup, .fini = teardown);

Test(irqchip, table_entry_and_instances)
{
	static const char *const names[] = { "irqchip", "i8259", "i8254",
	    "ioapic", "lapic0", "lapic1" };
	bool listed = false;

	for (int i = 0; i < device_table_len; i++)
		if (device_table[i] == &irqchip_device)
			listed = true;
	cr_assert(listed, "the irqchip class is in the device table");
	cr_assert(irqchip_device.flags & DEV_SOFT_IRQCHIP);
	cr_assert_eq(vm->ndevices, 6);
	for (int i = 0; i < 6; i++) {
		cr_assert_str_eq(vm->devices[i].name, names[i]);
		cr_assert_not_null(vm->devices[i].ops->snapshot);
	}
	cr_assert_eq(irqchip_create(vm), -EEXIST);
	cr_assert_str_eq(bus_lookup_name(vm->pio, 0x20), "i8259-master");
	cr_assert_str_eq(bus_lookup_name(vm->pio, 0x61), "port61");
	cr_assert_str_eq(bus_lookup_name(vm->mmio, GPA_IOAPIC), "ioapic");
	cr_assert_str_eq(bus_lookup_name(vm->mmio, GPA_LAPIC + 0x300),
	    "lapic");
}

Test(irqchip, lines_and_messages_checked)
{
	cr_assert_eq(irqchip_set_irq(vm, 24, 1), -EINVAL);
	cr_assert_eq(irqchip_set_irq(vm, 2, 1), 0, "the cascade: ignored");
	cr_assert_eq(irqchip_msi(vm, 0x12345678, 0x30), -EINVAL);
	cr_assert_not(irqchip_pending(vm->vcpus[0]));
	cr_assert_eq(irqchip_ack(vm->vcpus[0]), -1, "nothing to take");
}

/*
 * Linux's calibrate_APIC_clock(): the PIT ticks at HZ through IOAPIC
 * pin 2 while the LAPIC timer counts down (masked, divide by 16) from
 * 0xffffffff; over HZ/10 ticks the count difference gives the timer's
 * rate, which must match the LAPIC's 1 GHz bus against the PIT's clock.
 */
Test(irqchip, lapic_timer_calibrated_against_pit)
{
	const unsigned hz = 250, loops = hz / 10;
	const uint16_t latch = (I8254_HZ + hz / 2) / hz;
	struct vcpu *v = vm->vcpus[0];
	uint32_t t1 = 0, t2 = 0;
	unsigned ticks = 0;
	uint64_t period, expect;

	/* The APIC setup Linux does before calibrating. */
	th_apic_enable(vm, 0);
	th_apic_write(vm, 0, 0x350, 0x10700);	/* LINT0 masked */
	th_outb(vm, 0x21, 0xff);		/* PIC masked */
	th_outb(vm, 0xa1, 0xff);
	th_ioapic_route(vm, 2, 0x30);
	th_outb(vm, 0x43, 0x34);
	th_outb(vm, 0x40, latch & 0xff);
	th_outb(vm, 0x40, latch >> 8);
	th_apic_write(vm, 0, 0x3e0, 0x3);
	th_apic_write(vm, 0, 0x320, 0x300ec);	/* periodic, masked */
	th_apic_write(vm, 0, 0x380, 0xffffffff);
	for (int i = 0; i < 200000 && ticks <= loops; i++) {
		vclock_advance_fake(10000);
		evloop_run_timers(vm->loop);
		if (!irqchip_pending(v))
			continue;
		cr_assert_eq(irqchip_ack(v), 0x30);
		/* lapic_cal_handler() */
		if (ticks == 0)
			t1 = th_apic_read(vm, 0, 0x390);
		else if (ticks == loops)
			t2 = th_apic_read(vm, 0, 0x390);
		ticks++;
		th_apic_write(vm, 0, 0xb0, 0);
	}
	cr_assert_gt(ticks, loops);
	period = (uint64_t)(t1 - t2) * 16 / loops;
	/* 1 GHz for one PIT period of latch ticks. */
	expect = (uint64_t)latch * 1000000000ull / I8254_HZ;
	cr_assert(period > expect - expect / 1000 &&
	    period < expect + expect / 1000, "period %llu, expected %llu",
	    (unsigned long long)period, (unsigned long long)expect);
	cr_assert_not(irqchip_pending(v), "the masked LAPIC timer is quiet");
}

Test(irqchip, early_boot_pic_then_ioapic)
{
	struct vcpu *v = vm->vcpus[0];

	/* Before Linux sets up the APIC: PIT ticks arrive through the
	 * PIC and the BSP's virtual wire, software-disabled APIC or not. */
	th_pic_init_linux(vm, 0xfa, 0xff);
	irqchip_set_irq(vm, 0, 1);
	irqchip_set_irq(vm, 0, 0);
	cr_assert(irqchip_pending(v));
	cr_assert_not(irqchip_pending(vm->vcpus[1]), "APs' LINT0 masked");
	cr_assert_eq(irqchip_set_apic_base(vm->vcpus[1], 0xfee00000), 0);
	cr_assert_not(irqchip_pending(vm->vcpus[1]), "only the BSP's INTR");
	cr_assert_eq(irqchip_ack(v), 0x30);
	th_outb(vm, 0x20, 0x20);
	/* Switch to the IOAPIC: PIC masked, pin 2 routed. */
	th_outb(vm, 0x21, 0xff);
	th_apic_enable(vm, 0);
	th_ioapic_route(vm, 2, 0xef);
	irqchip_set_irq(vm, 0, 1);
	irqchip_set_irq(vm, 0, 0);
	cr_assert_eq(irqchip_ack(v), 0xef);
	cr_assert_not(irqchip_pending(v));
}

/* A guest that routes the PIT through the IOAPIC but leaves IRQ 0 open
 * on a PIC nobody listens to (LINT0 masked) still gets every tick: the
 * request stuck in the PIC does not count as one waiting for a CPU. */
Test(irqchip, dead_pic_path_does_not_hold_back_irq0)
{
	const uint16_t latch = (I8254_HZ + 125) / 250;
	struct vcpu *v = vm->vcpus[0];
	int n = 0;

	th_pic_init_linux(vm, 0xfe, 0xff);
	th_apic_enable(vm, 0);
	th_apic_write(vm, 0, 0x350, 0x10700);
	th_ioapic_route(vm, 2, 0x40);
	th_outb(vm, 0x43, 0x34);
	th_outb(vm, 0x40, latch & 0xff);
	th_outb(vm, 0x40, latch >> 8);
	for (int i = 0; i < 1000; i++) {
		vclock_advance_fake(100000);
		evloop_run_timers(vm->loop);
		while (irqchip_pending(v)) {
			cr_assert_eq(irqchip_ack(v), 0x40);
			th_apic_write(vm, 0, 0xb0, 0);
			n++;
		}
	}
	cr_assert_eq(n, 24, "100 ms at HZ=250: %d", n);
}

Test(irqchip, whole_vm_snapshot)
{
	struct snap s, l;
	struct vm *b;

	th_pic_init_linux(vm, 0xfe, 0xff);
	th_apic_enable(vm, 1);
	th_ioapic_route(vm, 10, 0x66 | (1ull << 15) | (1ull << 56));
	irqchip_set_irq(vm, 10, 1);
	th_outb(vm, 0x43, 0x34);
	th_outb(vm, 0x40, 0x00);
	th_outb(vm, 0x40, 0x10);
	snap_init_save(&s);
	cr_assert_eq(devices_snapshot(vm, &s), 0, "%s", s.errmsg);
	b = th_vm_new(2);
	snap_init_load(&l, s.buf, s.len);
	cr_assert_eq(devices_snapshot(b, &l), 0, "%s", l.errmsg);
	snap_free(&s);
	cr_assert(irqchip_pending(b->vcpus[1]));
	cr_assert_eq(irqchip_ack(b->vcpus[1]), 0x66);
	cr_assert_eq(th_inb(b, 0x21), 0xfe);
	th_vm_free(b);
}

Test(irqchip, truncated_snapshot_is_refused)
{
	struct snap s, l;
	struct vm *b = th_vm_new(2);
	int refused = 0;

	snap_init_save(&s);
	cr_assert_eq(devices_snapshot(vm, &s), 0);
	for (size_t n = 0; n < s.len; n += 97) {
		snap_init_load(&l, s.buf, n);
		if (devices_snapshot(b, &l) != 0)
			refused++;
	}
	cr_assert_eq(refused, (int)((s.len + 96) / 97));
	snap_free(&s);
	th_vm_free(b);
}

/* Walk the sections of a saved stream: fix up each one's CRC after its
 * payload was tampered with, so the loader's own checks are what is
 * tested. */
static void
refresh_crcs(uint8_t *b, size_t len)
{
	size_t p = 0;

	while (p + 2 <= len && b[p] == 'S') {
		size_t nl = b[p + 1], hdr = 2 + nl + 8, plen;

		if (p + hdr > len)
			return;
		plen = bus_get(b + p + 2 + nl + 4, 4);
		if (p + hdr + plen + 4 > len)
			return;
		bus_put(b + p + hdr + plen, 4, snap_crc32(b + p, hdr + plen));
		p += hdr + plen + 4;
	}
}

/* Offsets of the field value bytes of every section (what a loader
 * trusts once the framing checks out). */
static size_t
value_bytes(const uint8_t *b, size_t len, size_t *off, size_t max)
{
	size_t p = 0, n = 0;

	while (p + 2 <= len && b[p] == 'S') {
		size_t nl = b[p + 1], hdr = 2 + nl + 8, plen, q, end;

		plen = bus_get(b + p + 2 + nl + 4, 4);
		q = p + hdr;
		end = q + plen;
		while (q < end) {
			size_t fl = b[q], vl = bus_get(b + q + 1 + fl, 4);

			for (size_t i = 0; i < vl && n < max; i++)
				off[n++] = q + 1 + fl + 4 + i;
			q += 1 + fl + 4 + vl;
		}
		p = end + 4;
	}
	return n;
}

static void
poke_around(struct vm *t, unsigned *seed)
{
	for (int i = 0; i < 300; i++) {
		uint8_t d[4];
		unsigned r = rand_r(seed);
		int c = r % 2;

		bus_put(d, 4, (uint32_t)rand_r(seed));
		switch (r % 4) {
		case 0:
			bus_access(t->pio, t->vcpus[c], (uint16_t[]){ 0x20,
			    0x21, 0xa0, 0xa1, 0x40, 0x42, 0x43, 0x61 }[i % 8],
			    d, 1, (r >> 3) & 1);
			break;
		case 1:
			bus_access(t->mmio, t->vcpus[c], GPA_LAPIC +
			    (rand_r(seed) & 0x3f0), d, 4, (r >> 3) & 1);
			break;
		case 2:
			bus_access(t->mmio, t->vcpus[c], GPA_IOAPIC +
			    (rand_r(seed) & 0x10), d, 4, (r >> 3) & 1);
			break;
		default:
			vclock_advance_fake(rand_r(seed) % 2000000);
			evloop_run_timers(t->loop);
			irqchip_set_irq(t, rand_r(seed) % 24, r & 1);
			break;
		}
		if (irqchip_pending(t->vcpus[c])) {
			int v = irqchip_ack(t->vcpus[c]);

			cr_assert(v >= -1 && v < 256, "vector %d", v);
		}
	}
}

Test(irqchip, tampered_snapshots_load_cleanly_or_not_at_all)
{
	struct snap s, l;
	unsigned seed = 5;
	int loaded = 0;
	static size_t voff[8192];
	size_t nv;

	/* A busy state worth saving. */
	th_pic_init_linux(vm, 0x00, 0x00);
	th_apic_enable(vm, 0);
	th_apic_enable(vm, 1);
	th_apic_write(vm, 0, 0x320, 0x200ec);
	th_apic_write(vm, 0, 0x380, 100000);
	th_ioapic_route(vm, 2, 0x30);
	th_outb(vm, 0x43, 0x34);
	th_outb(vm, 0x40, 0x00);
	th_outb(vm, 0x40, 0x10);
	poke_around(vm, &seed);
	snap_init_save(&s);
	cr_assert_eq(devices_snapshot(vm, &s), 0);
	nv = value_bytes(s.buf, s.len, voff, sizeof(voff) / sizeof(voff[0]));
	cr_assert_gt(nv, 100);
	for (int i = 0; i < 150; i++) {
		uint8_t *b = malloc(s.len);
		struct vm *t = th_vm_new(2);

		memcpy(b, s.buf, s.len);
		/* Mostly values (other states), sometimes the framing. */
		for (int k = 0; k < 1 + i % 8; k++) {
			size_t at = i % 4 == 3 ? rand_r(&seed) % s.len :
			    voff[rand_r(&seed) % nv];

			b[at] = (uint8_t)rand_r(&seed);
		}
		refresh_crcs(b, s.len);
		snap_init_load(&l, b, s.len);
		if (devices_snapshot(t, &l) == 0)
			loaded++;
		/* Loaded or refused half-way, the VM must stay sound. */
		poke_around(t, &seed);
		th_vm_free(t);
		free(b);
	}
	cr_assert_gt(loaded, 0, "some tampering is just other values");
	snap_free(&s);
}

Test(irqchip, reset_returns_to_power_on)
{
	th_pic_init_linux(vm, 0x00, 0x00);
	th_apic_enable(vm, 0);
	th_apic_write(vm, 0, 0x80, 0x70);
	th_ioapic_route(vm, 3, 0x33);
	cr_assert_eq(irqchip_set_apic_base(vm->vcpus[1], 0xfed40800), 0);
	devices_reset(vm);
	cr_assert_eq(th_inb(vm, 0x21), 0xff);
	cr_assert_eq(th_apic_read(vm, 0, 0x80), 0);
	cr_assert_eq(th_apic_read(vm, 0, 0xf0), 0xff);
	cr_assert_eq(th_ioapic_read(vm, 0x10 + 6), 0x10000);
	cr_assert_eq(irqchip_apic_base(vm->vcpus[1]), 0xfee00800);
	cr_assert_eq(th_apic_read(vm, 1, 0x20), 1u << 24);
}

/* --- threads: devices raising lines, a vCPU sleeping and acking --- */

struct race {
	atomic_int acked;
	atomic_bool stop;
	int rounds;
};

static void *
race_cpu(void *arg)
{
	struct race *r = arg;
	struct vcpu *v = vm->vcpus[1];

	while (!atomic_load(&r->stop)) {
		pthread_mutex_lock(&v->lock);
		/* The HLT wait: sleep until kicked, re-checking pending. */
		while (!irqchip_pending(v) && !atomic_load(&r->stop) &&
		    !(atomic_load(&v->requests) & VCPU_REQ_IRQ))
			pthread_cond_wait(&v->wake, &v->lock);
		pthread_mutex_unlock(&v->lock);
		atomic_fetch_and(&v->requests, ~VCPU_REQ_IRQ);
		while (irqchip_pending(v)) {
			int vec = irqchip_ack(v);

			if (vec < 0)
				break;
			cr_assert_eq(vec, 0x45);
			pthread_mutex_lock(&vm->devlock);
			th_apic_write(vm, 1, 0xb0, 0);
			pthread_mutex_unlock(&vm->devlock);
			atomic_fetch_add(&r->acked, 1);
		}
	}
	return NULL;
}

static void *
race_device(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < r->rounds; i++) {
		struct timespec ts = { 0, 1000 };
		int spins = 0;

		pthread_mutex_lock(&vm->devlock);
		irqchip_set_irq(vm, 5, 1);
		irqchip_set_irq(vm, 5, 0);
		pthread_mutex_unlock(&vm->devlock);
		/* The next edge only once this one was taken: none lost. */
		while (atomic_load(&r->acked) <= i && spins++ < 200000)
			nanosleep(&ts, NULL);
		cr_assert_gt(atomic_load(&r->acked), i, "round %d lost", i);
	}
	return NULL;
}

Test(irqchip, no_lost_wakeups_across_threads)
{
	struct race r = { .rounds = 2000 };
	pthread_t cpu, dev;

	th_apic_enable(vm, 1);
	th_ioapic_route(vm, 5, 0x45 | (1ull << 56));
	pthread_create(&cpu, NULL, race_cpu, &r);
	pthread_create(&dev, NULL, race_device, &r);
	pthread_join(dev, NULL);
	atomic_store(&r.stop, true);
	vcpu_kick(vm->vcpus[1], VCPU_REQ_STOP);
	pthread_join(cpu, NULL);
	cr_assert_eq(atomic_load(&r.acked), r.rounds);
}
