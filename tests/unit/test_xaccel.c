/*
 * State moving between KVM and the software CPU (vmstate_xirq.c, the
 * conversions in kvm.c and cpu_state.c): real VMs on both accelerators,
 * the software devices driven through their bus handlers, KVM's through
 * its own ioctls (by its snapshot hooks, or by a few guest
 * instructions).  Each test converts one way or round trip and compares
 * what a guest would see: the LAPIC timer's current count, the PIT's
 * channel states and flags, APs waiting for SIPI or running in real
 * mode, and events KVM was in the middle of delivering.
 *
 * This host's KVM emulates guest ring 0 one instruction at a time: the
 * guest code run under KVM here is a handful of instructions.  Tests
 * that need /dev/kvm skip without it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bt/harness.h"
#include "devices/bus.h"
#include "devices/lapic.h"
#include "hv/vmconfig.h"
#include "migrate/snap.h"
#include "migrate/vmstate.h"
#include "util/evloop.h"

#define MEM		(16ull << 20)
#define CODE		0x200000ull
#define APIC		0xfee00000ull
#define T0		5000000000000ull	/* fake clock: 5000 s */

TestSuite(xaccel, .timeout = 120);

static struct vm_config cfg, hcfg;

static void
need_kvm(void)
{
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		cr_skip_test("no /dev/kvm");
}

static struct vm *
xa_vm(const struct accel_ops *ops, int cpus)
{
	struct vm *vm;
	int err = 0;

	vm_config_defaults(&cfg);
	cfg.memory = MEM;
	cfg.cpus = cpus;
	snprintf(cfg.cpu, sizeof(cfg.cpu), "baseline");
	vm = vm_create(&cfg, ops, &err);
	cr_assert_not_null(vm, "vm_create(%s): %d", ops->name, err);
	return vm;
}

static uint32_t
xa_mmio(struct vm *vm, int cpu, uint64_t addr, uint32_t v, bool wr)
{
	uint8_t d[4];

	memcpy(d, &v, 4);
	cr_assert(bus_access(vm->mmio, vm->vcpus[cpu], addr, d, 4, wr),
	    "nothing at %#llx", (unsigned long long)addr);
	memcpy(&v, d, 4);
	return v;
}

static uint8_t
xa_pio(struct vm *vm, uint16_t port, uint8_t v, bool wr)
{
	cr_assert(bus_access(vm->pio, vm->vcpus[0], port, &v, 1, wr),
	    "nothing at port %#x", port);
	return v;
}

struct xa_kick { struct vcpu *v; int ms; };

static void *
xa_kick_later(void *arg)
{
	struct xa_kick *k = arg;

	usleep((useconds_t)k->ms * 1000);
	vcpu_kick(k->v, VCPU_REQ_STOP);
	return NULL;
}

/* Run vCPU cpu under KVM for about ms milliseconds (a HLT blocks in
 * the kernel: only a kick ends it); the last exit's kind. */
static enum vm_exit_kind
xa_kvm_run(struct vm *vm, int cpu, int ms)
{
	struct xa_kick k = { vm->vcpus[cpu], ms };
	struct vm_exit e;
	pthread_t th;

	pthread_create(&th, NULL, xa_kick_later, &k);
	do {
		memset(&e, 0, sizeof(e));
		cr_assert_eq(vm->accel->vcpu_run(vm->vcpus[cpu], &e), 0);
	} while (e.kind != VM_EXIT_INTR && e.kind != VM_EXIT_SHUTDOWN &&
	    e.kind != VM_EXIT_INTERNAL_ERROR);
	pthread_join(th, NULL);
	atomic_fetch_and(&vm->vcpus[cpu]->requests, ~(unsigned)VCPU_REQ_STOP);
	cr_assert_eq(e.kind, VM_EXIT_INTR, "KVM: exit %d (%s)", e.kind,
	    e.internal.msg);
	return e.kind;
}

static void xa_kvm_mp(struct vm *k, int id, uint32_t mp, uint32_t sipi);

/* Save a, give b a's RAM and load the state into it. */
static void
xa_move(struct vm *a, struct vm *b)
{
	struct snap s, l;

	snap_init_save(&s);
	cr_assert_eq(vmstate_save(a, &s), 0, "save (%s): %s", a->accel->name,
	    s.errmsg);
	memcpy(b->ram, a->ram, MEM);
	snap_init_load(&l, s.buf, s.len);
	cr_assert_eq(vmstate_load(b, &l), 0, "%s -> %s: %s", a->accel->name,
	    b->accel->name, l.errmsg);
	cr_assert_eq(l.pos, l.len);
	snap_free(&s);
}

/* Field fld (len bytes) of section sec in s's stream; false if absent. */
static bool
xa_field(const struct snap *s, const char *sec, const char *fld, void *p,
    size_t len)
{
	struct snap r;
	char name[64];

	snap_init_load(&r, s->buf, s->len);
	while (snap_peek_section(&r, name, sizeof(name)) != NULL) {
		bool it = strcmp(name, sec) == 0;

		snap_section_begin(&r, name, UINT32_MAX);
		if (it)
			snap_bytes(&r, fld, p, len);
		snap_section_end(&r);
		if (it)
			return snap_error(&r) == 0;
		if (snap_error(&r) != 0)
			break;
	}
	return false;
}

static uint64_t
xa_u(const struct snap *s, const char *sec, const char *fld, size_t len)
{
	uint64_t v = 0;

	cr_assert(xa_field(s, sec, fld, &v, len), "no %s in %s", fld, sec);
	return v;
}

static void
xa_save(struct vm *vm, struct snap *s)
{
	snap_init_save(s);
	cr_assert_eq(vmstate_save(vm, s), 0, "%s", s->errmsg);
}

/* --- 1. the local APIC timer keeps its current count --- */

static void
xa_apic_timer(struct vm *vm, uint32_t lvt, uint32_t icr)
{
	xa_mmio(vm, 0, APIC + 0xf0, 0x1ff, true);	/* SVR: enabled */
	xa_mmio(vm, 0, APIC + 0x3e0, 0xb, true);	/* divide by 1 */
	xa_mmio(vm, 0, APIC + 0x320, lvt, true);
	xa_mmio(vm, 0, APIC + 0x380, icr, true);
}

static uint64_t
xa_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Ticks (ns at divide-by-1) from count was to count now: modulo the
 * period when periodic; a count that went up is "never". */
static uint64_t
xa_counted(uint32_t lvt, uint32_t was, uint32_t now)
{
	if (lvt & (1u << 17))
		return ((uint64_t)was + 100000000 - now) % 100000000;
	return now <= was ? was - now : UINT64_MAX;
}

/*
 * bt (count at a known point, the clock frozen) -> KVM -> bt: the count
 * goes on from where it was, less the real time KVM held it (its timer
 * runs on the host's clock), and not from the start of the period.
 */
static void
xa_timer_roundtrip(uint32_t lvt, uint64_t wait, uint32_t want)
{
	struct vm *a, *k, *b;
	struct snap s;
	uint32_t ccr, kccr;
	uint8_t page[1024];
	uint64_t t0, held;

	need_kvm();
	vclock_set_fake(true, T0);
	a = xa_vm(&bt_accel_ops, 1);
	k = xa_vm(&kvm_accel_ops, 1);
	b = xa_vm(&bt_accel_ops, 1);
	xa_apic_timer(a, lvt, 100000000);
	vclock_advance_fake(wait);
	cr_assert_eq(xa_mmio(a, 0, APIC + 0x390, 0, false), want);
	t0 = xa_now();
	xa_move(a, k);
	xa_save(k, &s);
	held = xa_now() - t0;
	cr_assert(xa_field(&s, "kvm.cpu.0", "lapic", page, sizeof(page)));
	memcpy(&kccr, page + 0x390, 4);
	cr_assert(xa_counted(lvt, want, kccr) <= held,
	    "KVM's count %u, the software LAPIC's was %u (%llu ns ago)", kccr,
	    want, (unsigned long long)held);
	snap_free(&s);
	xa_move(k, b);
	held = xa_now() - t0;
	ccr = xa_mmio(b, 0, APIC + 0x390, 0, false);
	cr_assert(xa_counted(lvt, want, ccr) <= held,
	    "count %u after bt -> KVM -> bt, %u before (%llu ns ago)", ccr,
	    want, (unsigned long long)held);
	cr_assert_eq(xa_mmio(b, 0, APIC + 0x380, 0, false), 100000000);
	cr_assert_eq(xa_mmio(b, 0, APIC + 0x320, 0, false), lvt);
	vm_destroy(a);
	vm_destroy(k);
	vm_destroy(b);
	vclock_set_fake(false, 0);
}

Test(xaccel, apic_timer_periodic_count_survives)
{
	/* 2.5 periods of 100 ms in: half a period left. */
	xa_timer_roundtrip(0x30030 | (1u << 17), 250000000, 50000000);
}

Test(xaccel, apic_timer_one_shot_count_survives)
{
	xa_timer_roundtrip(0x10031, 30000000, 70000000);
}

/* An expired one-shot stays expired (no second interrupt). */
Test(xaccel, apic_timer_one_shot_expired_stays_expired)
{
	xa_timer_roundtrip(0x10031, 300000000, 0);
}

/* --- 2. the PIT's channels and flags --- */

struct xa_pitch {
	uint32_t count;
	uint16_t latch;
	bool latched, status_latched, read_msb, write_msb, bcd, gate;
	bool null_count, loaded;
	uint8_t status, write_lsb, rw_mode, mode;
};

static void
xa_pit_read(const struct snap *s, struct xa_pitch ch[3], uint8_t *port61)
{
	char n[40];

	memset(ch, 0, 3 * sizeof(*ch));
	for (int i = 0; i < 3; i++) {
#define XA_F(f) do { snprintf(n, sizeof(n), "ch%d.%s", i, #f); \
	cr_assert(xa_field(s, "i8254", n, &ch[i].f, sizeof(ch[i].f)), "%s", \
	    n); } while (0)
		XA_F(count); XA_F(latch); XA_F(latched); XA_F(status_latched);
		XA_F(read_msb); XA_F(write_msb); XA_F(bcd); XA_F(gate);
		XA_F(null_count); XA_F(loaded); XA_F(write_lsb);
		XA_F(rw_mode); XA_F(mode);
		if (ch[i].status_latched)
			XA_F(status);
#undef XA_F
	}
	cr_assert(xa_field(s, "i8254", "port61", port61, 1));
}

static void
xa_pit_same(struct vm *a, struct vm *b)
{
	struct xa_pitch ca[3], cb[3];
	uint8_t pa, pb;
	struct snap sa, sb;

	xa_save(a, &sa);
	xa_save(b, &sb);
	xa_pit_read(&sa, ca, &pa);
	xa_pit_read(&sb, cb, &pb);
	for (int i = 0; i < 3; i++) {
#define XA_EQ(f) cr_assert_eq(ca[i].f, cb[i].f, "channel %d: " #f " %u, " \
	"%u after the round trip", i, (unsigned)ca[i].f, (unsigned)cb[i].f)
		XA_EQ(count); XA_EQ(latch); XA_EQ(latched);
		XA_EQ(status_latched); XA_EQ(status); XA_EQ(read_msb);
		XA_EQ(write_msb); XA_EQ(bcd); XA_EQ(gate); XA_EQ(null_count);
		XA_EQ(loaded); XA_EQ(write_lsb); XA_EQ(rw_mode); XA_EQ(mode);
#undef XA_EQ
	}
	cr_assert_eq(pa, pb, "port 0x61: %#x, %#x after", pa, pb);
	snap_free(&sa);
	snap_free(&sb);
}

/* Channels caught between the accesses of a guest's sequences, through
 * the port handlers, go bt -> KVM -> bt and read back the same. */
Test(xaccel, pit_channels_survive_bt_kvm_bt)
{
	struct vm *a, *k, *b;

	need_kvm();
	vclock_set_fake(true, T0);
	a = xa_vm(&bt_accel_ops, 1);
	k = xa_vm(&kvm_accel_ops, 1);
	b = xa_vm(&bt_accel_ops, 1);
	/* ch0: mode 2, word access, counting; then a latch, LSB read. */
	xa_pio(a, 0x43, 0x34, true);
	xa_pio(a, 0x40, 0x34, true);
	xa_pio(a, 0x40, 0x12, true);
	vclock_advance_fake(1000000);
	xa_pio(a, 0x43, 0x00, true);
	xa_pio(a, 0x40, 0, false);
	/* ch1: control word written, only the LSB of the count so far. */
	xa_pio(a, 0x43, 0x76, true);
	xa_pio(a, 0x41, 0x77, true);
	/* ch2: gate and speaker on, mode 3 counting, status latched. */
	xa_pio(a, 0x61, 0x03, true);
	xa_pio(a, 0x43, 0xb6, true);
	xa_pio(a, 0x42, 0x00, true);
	xa_pio(a, 0x42, 0x10, true);
	xa_pio(a, 0x43, 0xe8, true);
	xa_move(a, k);
	xa_move(k, b);
	xa_pit_same(a, b);
	/* And what the guest reads next is the same on both. */
	cr_assert_eq(xa_pio(b, 0x40, 0, false), xa_pio(a, 0x40, 0, false));
	cr_assert_eq(xa_pio(b, 0x42, 0, false), xa_pio(a, 0x42, 0, false));
	vm_destroy(a);
	vm_destroy(k);
	vm_destroy(b);
	vclock_set_fake(false, 0);
}

/* A PIT at power-on (no channel programmed) stays that way. */
Test(xaccel, pit_at_reset_survives_bt_kvm_bt)
{
	struct vm *a, *k, *b;

	need_kvm();
	vclock_set_fake(true, T0);
	a = xa_vm(&bt_accel_ops, 1);
	k = xa_vm(&kvm_accel_ops, 1);
	b = xa_vm(&bt_accel_ops, 1);
	xa_move(a, k);
	xa_move(k, b);
	xa_pit_same(a, b);
	vm_destroy(a);
	vm_destroy(k);
	vm_destroy(b);
	vclock_set_fake(false, 0);
}

/* KVM's own PIT state, set through its hook, goes KVM -> bt -> KVM:
 * flags (HPET legacy, speaker data) and every channel field. */
static void
xa_kvm_pit_put(struct vm *k, uint32_t flags)
{
	struct snap w, r, s;
	char n[48];

	/* Start from KVM's own section, change the PIT part. */
	xa_save(k, &s);
	snap_init_save(&w);
	snap_section_begin(&w, "kvm.vm", 1);
	{
		static const char *const pic[] = { "last_irr", "irr", "imr",
		    "isr", "priority_add", "irq_base", "read_reg_select",
		    "poll", "special_mask", "init_state", "auto_eoi",
		    "rotate_on_auto_eoi", "special_fully_nested_mode", "init4",
		    "elcr", "elcr_mask" };

		for (int c = 0; c < 2; c++)
			for (size_t f = 0; f < sizeof(pic) / sizeof(pic[0]);
			    f++) {
				uint8_t v;

				snprintf(n, sizeof(n), "pic%d.%s", c, pic[f]);
				v = (uint8_t)xa_u(&s, "kvm.vm", n, 1);
				snap_u8(&w, n, &v);
			}
	}
	{
		uint64_t v = xa_u(&s, "kvm.vm", "ioapic.base", 8);
		uint32_t u;

		snap_u64(&w, "ioapic.base", &v);
		u = (uint32_t)xa_u(&s, "kvm.vm", "ioapic.regsel", 4);
		snap_u32(&w, "ioapic.regsel", &u);
		u = (uint32_t)xa_u(&s, "kvm.vm", "ioapic.id", 4);
		snap_u32(&w, "ioapic.id", &u);
		u = (uint32_t)xa_u(&s, "kvm.vm", "ioapic.irr", 4);
		snap_u32(&w, "ioapic.irr", &u);
		for (int i = 0; i < 24; i++) {
			snprintf(n, sizeof(n), "ioapic.rte%d", i);
			v = xa_u(&s, "kvm.vm", n, 8);
			snap_u64(&w, n, &v);
		}
	}
	for (int i = 0; i < 3; i++) {
		/* ch0 mode 2 word, count latched and half read; ch1 mode 0
		 * LSB only, status latched; ch2 mode 3 word, the LSB of a
		 * new count written, gate on. */
		uint32_t count = i == 0 ? 0x1234 : i == 1 ? 0x80 : 0x1000;
		uint16_t lc = i == 0 ? 0x1200 : 0;
		uint8_t v[10] = {
			i == 0 ? 2 : 0,			/* count_latched */
			i == 1,				/* status_latched */
			i == 1 ? 0x10 : 0,		/* status */
			i == 0 ? 3 : i == 1 ? 1 : 3,	/* read_state */
			i == 2 ? 4 : i == 1 ? 1 : 3,	/* write_state */
			i == 2 ? 0x66 : 0,		/* write_latch */
			i == 1 ? 1 : 3,			/* rw_mode */
			i == 0 ? 2 : i == 1 ? 0 : 3,	/* mode */
			0,				/* bcd */
			1,				/* gate */
		};
		static const char *const f[10] = { "count_latched",
		    "status_latched", "status", "read_state", "write_state",
		    "write_latch", "rw_mode", "mode", "bcd", "gate" };
		int64_t age = -1000000;

		snprintf(n, sizeof(n), "pit%d.count", i);
		snap_u32(&w, n, &count);
		snprintf(n, sizeof(n), "pit%d.latched_count", i);
		snap_u16(&w, n, &lc);
		for (int j = 0; j < 10; j++) {
			snprintf(n, sizeof(n), "pit%d.%s", i, f[j]);
			snap_u8(&w, n, &v[j]);
		}
		snprintf(n, sizeof(n), "pit%d.load_age", i);
		snap_i64(&w, n, &age);
	}
	snap_u32(&w, "pit.flags", &flags);
	{
		uint64_t clk = xa_u(&s, "kvm.vm", "clock", 8);

		snap_u64(&w, "clock", &clk);
	}
	snap_section_end(&w);
	snap_init_load(&r, w.buf, w.len);
	cr_assert_eq(k->accel->vm_snapshot(k, &r), 0, "%s", r.errmsg);
	snap_free(&w);
	snap_free(&s);
}

Test(xaccel, kvm_pit_survives_kvm_bt_kvm)
{
	static const char *const f[] = { "count", "latched_count",
	    "count_latched", "status_latched", "read_state", "write_state",
	    "write_latch", "rw_mode", "mode", "bcd", "gate" };
	static const size_t len[] = { 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	struct vm *k, *b, *k2;
	struct snap s1, s2;
	char n[48];

	need_kvm();
	k = xa_vm(&kvm_accel_ops, 1);
	b = xa_vm(&bt_accel_ops, 1);
	k2 = xa_vm(&kvm_accel_ops, 1);
	xa_kvm_pit_put(k, 3);	/* HPET legacy, speaker data on */
	xa_save(k, &s1);
	cr_assert_eq(xa_u(&s1, "kvm.vm", "pit.flags", 4) & 3, 3);
	xa_move(k, b);
	xa_move(b, k2);
	xa_save(k2, &s2);
	for (int i = 0; i < 3; i++)
		for (size_t j = 0; j < sizeof(f) / sizeof(f[0]); j++) {
			snprintf(n, sizeof(n), "pit%d.%s", i, f[j]);
			cr_assert_eq(xa_u(&s1, "kvm.vm", n, len[j]),
			    xa_u(&s2, "kvm.vm", n, len[j]), "%s: %#llx, then "
			    "%#llx", n, (unsigned long long)xa_u(&s1, "kvm.vm",
			    n, len[j]), (unsigned long long)xa_u(&s2,
			    "kvm.vm", n, len[j]));
		}
	cr_assert_eq(xa_u(&s2, "kvm.vm", "pit.flags", 4) & 3, 3,
	    "PIT flags %#llx after KVM -> bt -> KVM",
	    (unsigned long long)xa_u(&s2, "kvm.vm", "pit.flags", 4));
	snap_free(&s1);
	snap_free(&s2);
	vm_destroy(k);
	vm_destroy(b);
	vm_destroy(k2);
}

/* --- 3. APs before their SIPI, and in real mode --- */

/* A fresh AP waits for SIPI: KVM says INIT_RECEIVED, and back on the
 * software CPU it still waits. */
Test(xaccel, ap_waiting_for_sipi_survives)
{
	struct vm *a, *k, *b;
	struct snap s;

	need_kvm();
	a = xa_vm(&bt_accel_ops, 2);
	k = xa_vm(&kvm_accel_ops, 2);
	b = xa_vm(&bt_accel_ops, 2);
	xa_move(a, k);
	xa_save(k, &s);
	cr_assert_eq(xa_u(&s, "kvm.cpu.1", "mp_state", 4), 2,
	    "KVM's AP is not waiting for SIPI");
	snap_free(&s);
	xa_move(k, b);
	xa_save(b, &s);
	cr_assert_eq(xa_u(&s, "bt.cpu.1", "wait_sipi", 1), 1);
	cr_assert_eq(xa_u(&s, "bt.cpu.0", "wait_sipi", 1), 0);
	snap_free(&s);
	vm_destroy(a);
	vm_destroy(k);
	vm_destroy(b);
}

/* An AP KVM never started (KVM_MP_STATE_UNINITIALIZED, as KVM makes
 * every AP) waits for SIPI on the software CPU: it must not run from
 * the reset vector. */
Test(xaccel, kvm_ap_never_started_waits_on_bt)
{
	struct vm *k, *b;
	struct snap s;

	need_kvm();
	k = xa_vm(&kvm_accel_ops, 2);
	b = xa_vm(&bt_accel_ops, 2);
	xa_kvm_mp(k, 1, 1, 0);			/* UNINITIALIZED */
	xa_save(k, &s);
	cr_assert_eq(xa_u(&s, "kvm.cpu.1", "mp_state", 4), 1);
	snap_free(&s);
	xa_move(k, b);
	xa_save(b, &s);
	cr_assert_eq(xa_u(&s, "bt.cpu.1", "wait_sipi", 1), 1,
	    "the AP KVM never started runs on bt");
	snap_free(&s);
	vm_destroy(k);
	vm_destroy(b);
}

/* 1: inc word [0x700]; jmp 1b (real mode, DS = 0) */
static const uint8_t rm_loop[] = { 0xff, 0x06, 0x00, 0x07, 0xeb, 0xfa };

static void
xa_real_mode(struct cpu_state *st, uint16_t cs)
{
	cpu_state_reset(st);
	st->seg[SEG_CS].sel = cs;
	st->seg[SEG_CS].base = (uint64_t)cs << 4;
	st->rip = 0;
	st->msr.apic_base &= ~APIC_BASE_BSP;	/* for an AP */
}

static uint16_t
xa_rm_count(struct vm *vm)
{
	uint16_t v;

	memcpy(&v, vm->ram + 0x700, 2);
	return v;
}

/* An AP that got its SIPI and runs real-mode code under KVM goes on
 * running it on the software CPU (it must not wait for a second SIPI
 * because its CR0.PE is clear). */
Test(xaccel, ap_in_real_mode_runs_on_after_kvm_to_bt)
{
	struct vm *k, *b;
	struct cpu_state st;
	struct tvm t;
	uint16_t n;

	need_kvm();
	k = xa_vm(&kvm_accel_ops, 2);
	b = xa_vm(&bt_accel_ops, 2);
	memcpy(k->ram + 0x9000, rm_loop, sizeof(rm_loop));
	xa_real_mode(&st, 0x900);
	cr_assert_eq(k->accel->set_state(k->vcpus[1], &st), 0);
	xa_move(k, b);
	n = xa_rm_count(b);
	t = (struct tvm){ .vm = b, .vcpu = b->vcpus[1] };
	cr_assert_eq(tvm_run(&t, 30), VM_EXIT_INTR);
	cr_assert_neq(xa_rm_count(b), n, "the AP did not run on bt");
	vm_destroy(k);
	vm_destroy(b);
}

/* The other way, with segment caches a protected-mode null selector
 * left behind (type 0, not present) as real-mode code inherits them:
 * KVM takes the state and runs the loop. */
Test(xaccel, ap_in_real_mode_runs_on_after_bt_to_kvm)
{
	struct vm *a, *k;
	struct cpu_state st;
	struct tvm t;
	uint16_t n;

	need_kvm();
	a = xa_vm(&bt_accel_ops, 2);
	k = xa_vm(&kvm_accel_ops, 2);
	memcpy(a->ram + 0x9000, rm_loop, sizeof(rm_loop));
	/* The BSP counts too, so both can be checked. */
	memcpy(a->ram + 0xa000, rm_loop, sizeof(rm_loop));
	xa_real_mode(&st, 0xa00);
	st.msr.apic_base |= APIC_BASE_BSP;
	cr_assert_eq(a->accel->set_state(a->vcpus[0], &st), 0);
	/* Start the AP the architectural way: INIT, SIPI to 0x9000. */
	xa_mmio(a, 0, APIC + 0xf0, 0x1ff, true);
	xa_mmio(a, 0, APIC + 0x310, 1u << 24, true);
	xa_mmio(a, 0, APIC + 0x300, 0x4500, true);
	xa_mmio(a, 0, APIC + 0x300, 0x4609, true);
	t = (struct tvm){ .vm = a, .vcpu = a->vcpus[1] };
	cr_assert_eq(tvm_run(&t, 30), VM_EXIT_INTR);
	n = xa_rm_count(a);
	cr_assert_gt(n, 0, "the AP did not start on bt");
	cr_assert_eq(a->accel->get_state(a->vcpus[1], &st), 0);
	cr_assert_eq(st.seg[SEG_CS].base, 0x9000);
	/* What a null selector loaded in protected mode leaves in a cache
	 * (no type, not present), with a real-mode limit. */
	st.seg[SEG_DS] = (struct cpu_seg){ .limit = 0xffff, .unusable = 1 };
	st.seg[SEG_ES] = (struct cpu_seg){ .limit = 0xffff, .unusable = 1 };
	cr_assert_eq(a->accel->set_state(a->vcpus[1], &st), 0);
	xa_move(a, k);
	{
		struct snap s;

		xa_save(k, &s);
		cr_assert_eq(xa_u(&s, "kvm.cpu.1", "mp_state", 4), 0,
		    "the running AP is not runnable under KVM");
		snap_free(&s);
	}
	n = xa_rm_count(k);
	/* An IVT whose handlers put their vector in AL and halt. */
	for (int v = 0; v < 256; v++) {
		uint32_t ivt = (0x800u << 16) | (uint32_t)(v * 4);
		uint8_t stub[4] = { 0xb0, (uint8_t)v, 0xf4, 0xf4 };

		memcpy(k->ram + v * 4, &ivt, 4);
		memcpy(k->ram + 0x8000 + v * 4, stub, 4);
	}
	xa_kvm_run(k, 1, 300);
	{
		struct cpu_state d;

		cr_assert_eq(k->accel->get_state(k->vcpus[1], &d), 0);
		cr_assert_neq(xa_rm_count(k), n, "the AP did not run under "
		    "KVM (at %04x:%#llx, halted %d, cr0 %#llx, AL %#llx)",
		    d.seg[SEG_CS].sel, (unsigned long long)d.rip, d.ev.halted,
		    (unsigned long long)d.cr0, (unsigned long long)d.gpr[0]);
	}
	vm_destroy(a);
	vm_destroy(k);
}

/* An INIT the software LAPIC holds for an AP that has not taken it yet
 * arrives in KVM as taken: the AP's registers are INIT's, and it waits
 * for SIPI. */
Test(xaccel, ap_pending_init_survives_bt_to_kvm)
{
	struct vm *a, *k;
	struct cpu_state st;
	struct tvm t;
	struct snap s;

	need_kvm();
	a = xa_vm(&bt_accel_ops, 2);
	k = xa_vm(&kvm_accel_ops, 2);
	memcpy(a->ram + 0x9000, rm_loop, sizeof(rm_loop));
	xa_mmio(a, 0, APIC + 0xf0, 0x1ff, true);
	xa_mmio(a, 0, APIC + 0x310, 1u << 24, true);
	xa_mmio(a, 0, APIC + 0x300, 0x4500, true);
	xa_mmio(a, 0, APIC + 0x300, 0x4609, true);
	t = (struct tvm){ .vm = a, .vcpu = a->vcpus[1] };
	cr_assert_eq(tvm_run(&t, 20), VM_EXIT_INTR);
	/* A second INIT, not taken yet. */
	xa_mmio(a, 0, APIC + 0x300, 0x4500, true);
	xa_move(a, k);
	xa_save(k, &s);
	cr_assert_eq(xa_u(&s, "kvm.cpu.1", "mp_state", 4), 2);
	cr_assert_eq(k->accel->get_state(k->vcpus[1], &st), 0);
	cr_assert_eq(st.seg[SEG_CS].sel, 0xf000, "CS %#x: not INIT's",
	    st.seg[SEG_CS].sel);
	cr_assert_eq(st.rip, 0xfff0);
	snap_free(&s);
	vm_destroy(a);
	vm_destroy(k);
}

/* What xa_kvm_cpu() changes in KVM's per-vCPU section. */
struct xa_kvm_put {
	uint32_t mp, sipi;
	bool timer;		/* lvtt and the TSC-deadline MSR too */
	uint32_t lvtt;
	uint64_t deadline;
};

static void xa_kvm_cpu(struct vm *k, int id, const struct xa_kvm_put *p);

/* Put KVM's section kvm.cpu.id back with another MP state and SIPI
 * vector, through KVM's own hook (KVM_SET_MP_STATE and friends). */
static void
xa_kvm_mp(struct vm *k, int id, uint32_t mp, uint32_t sipi)
{
	struct xa_kvm_put p = { .mp = mp, .sipi = sipi };

	xa_kvm_cpu(k, id, &p);
}

/* The value of MSR idx in a kvm.cpu section's msrs blob (12 bytes per
 * MSR: index, value); -1 if it is not there. */
static int
xa_msr_slot(const uint8_t *msrs, uint32_t n, uint32_t idx)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t v;

		memcpy(&v, msrs + i * 12, 4);
		if (v == idx)
			return (int)i;
	}
	return -1;
}

static void
xa_kvm_cpu(struct vm *k, int id, const struct xa_kvm_put *p)
{
	static const char *const ev8[] = { "exc.injected", "exc.nr",
	    "exc.has_error", "exc.pending", "intr.injected", "intr.nr",
	    "intr.soft", "intr.shadow", "nmi.injected", "nmi.pending",
	    "nmi.masked", "smi.smm", "smi.pending", "smi.inside_nmi",
	    "smi.latched_init" };
	static uint8_t xsave[4096], lapic[1024], msrs[64 * 12];
	struct snap s, w, r;
	char sec[32];
	uint32_t v, n, mp = p->mp, sipi = p->sipi;
	int slot;

	snprintf(sec, sizeof(sec), "kvm.cpu.%d", id);
	xa_save(k, &s);
	snap_init_save(&w);
	snap_section_begin(&w, sec, 1);
	cr_assert(xa_field(&s, sec, "xsave", xsave, sizeof(xsave)));
	snap_bytes(&w, "xsave", xsave, sizeof(xsave));
	cr_assert(xa_field(&s, sec, "lapic", lapic, sizeof(lapic)));
	if (p->timer)
		memcpy(lapic + 0x320, &p->lvtt, 4);
	snap_bytes(&w, "lapic", lapic, sizeof(lapic));
	for (size_t i = 0; i < sizeof(ev8) / sizeof(ev8[0]); i++) {
		uint8_t b = (uint8_t)xa_u(&s, sec, ev8[i], 1);

		snap_u8(&w, ev8[i], &b);
	}
	v = (uint32_t)xa_u(&s, sec, "exc.error", 4);
	snap_u32(&w, "exc.error", &v);
	snap_u32(&w, "sipi_vector", &sipi);
	snap_u32(&w, "mp_state", &mp);
	n = (uint32_t)xa_u(&s, sec, "msrs.n", 4);
	cr_assert_leq(n, 64);
	cr_assert(xa_field(&s, sec, "msrs", msrs, n * 12));
	if (p->timer) {
		slot = xa_msr_slot(msrs, n, 0x6e0);
		cr_assert_geq(slot, 0, "KVM keeps no TSC deadline here");
		memcpy(msrs + slot * 12 + 4, &p->deadline, 8);
	}
	snap_u32(&w, "msrs.n", &n);
	snap_bytes(&w, "msrs", msrs, n * 12);
	snap_section_end(&w);
	snap_init_load(&r, w.buf, w.len);
	cr_assert_eq(k->accel->vcpu_snapshot(k->vcpus[id], &r), 0, "%s",
	    r.errmsg);
	snap_free(&w);
	snap_free(&s);
}

/*
 * An AP KVM holds with a start-up IPI received but not yet acted on
 * (KVM_MP_STATE_SIPI_RECEIVED): KVM acts on it when its MP state is
 * read, so the registers saved with that state must be read after it.
 * On the software CPU the AP then runs the code the SIPI points at.
 */
Test(xaccel, kvm_ap_sipi_received_runs_on_bt)
{
	struct vm *k, *b;
	struct cpu_state st;
	struct tvm t;
	struct snap s;

	need_kvm();
	k = xa_vm(&kvm_accel_ops, 2);
	b = xa_vm(&bt_accel_ops, 2);
	memcpy(k->ram + 0x9000, rm_loop, sizeof(rm_loop));
	xa_kvm_mp(k, 1, 2, 0);			/* INIT_RECEIVED */
	xa_save(k, &s);
	cr_assert_eq(xa_u(&s, "kvm.cpu.1", "mp_state", 4), 2);
	snap_free(&s);
	xa_kvm_mp(k, 1, 4, 0x09);		/* SIPI_RECEIVED, 0x9000 */
	xa_save(k, &s);
	cr_assert_eq(xa_u(&s, "cpu.1", "cs.sel", 2), 0x0900,
	    "the AP's registers were saved before KVM took its SIPI "
	    "(CS %#llx, MP state %llu)",
	    (unsigned long long)xa_u(&s, "cpu.1", "cs.sel", 2),
	    (unsigned long long)xa_u(&s, "kvm.cpu.1", "mp_state", 4));
	snap_free(&s);
	xa_move(k, b);
	cr_assert_eq(b->accel->get_state(b->vcpus[1], &st), 0);
	t = (struct tvm){ .vm = b, .vcpu = b->vcpus[1] };
	cr_assert_eq(tvm_run(&t, 30), VM_EXIT_INTR);
	cr_assert_gt(xa_rm_count(b), 0, "the AP did not run its SIPI code "
	    "on bt");
	vm_destroy(k);
	vm_destroy(b);
}

/* A halted AP stays halted both ways (it runs nothing on bt, and KVM
 * gets it back as HALTED). */
Test(xaccel, ap_halted_survives_kvm_bt_kvm)
{
	struct vm *k, *b, *k2;
	struct cpu_state st;
	struct tvm t;
	struct snap s;

	need_kvm();
	k = xa_vm(&kvm_accel_ops, 2);
	b = xa_vm(&bt_accel_ops, 2);
	k2 = xa_vm(&kvm_accel_ops, 2);
	memcpy(k->ram + 0x9000, rm_loop, sizeof(rm_loop));
	xa_real_mode(&st, 0x900);
	cr_assert_eq(k->accel->set_state(k->vcpus[1], &st), 0);
	xa_kvm_mp(k, 1, 3, 0);			/* HALTED */
	xa_move(k, b);
	t = (struct tvm){ .vm = b, .vcpu = b->vcpus[1] };
	cr_assert_eq(tvm_run(&t, 20), VM_EXIT_HLT);
	cr_assert_eq(xa_rm_count(b), 0, "the halted AP ran on bt");
	xa_move(b, k2);
	xa_save(k2, &s);
	cr_assert_eq(xa_u(&s, "kvm.cpu.1", "mp_state", 4), 3,
	    "MP state %llu after KVM -> bt -> KVM, was HALTED",
	    (unsigned long long)xa_u(&s, "kvm.cpu.1", "mp_state", 4));
	snap_free(&s);
	vm_destroy(k);
	vm_destroy(b);
	vm_destroy(k2);
}

/* --- 4. events KVM was delivering --- */

/* 1: inc rax; jmp 1b */
static const uint8_t spin[] = { 0x48, 0xff, 0xc0, 0xeb, 0xfb };

static struct vm *
xa_kvm_event(struct cpu_events ev, uint64_t rflags)
{
	struct vm *k = xa_vm(&kvm_accel_ops, 1);
	struct tvm t = { .vm = k, .vcpu = k->vcpus[0] };
	struct cpu_state st;

	tvm_long_mode(&t, &st, CODE);
	tvm_put(&t, CODE, spin, sizeof(spin));
	st.rflags |= rflags;
	st.ev = ev;
	cr_assert_eq(k->accel->set_state(k->vcpus[0], &st), 0);
	return k;
}

/* The event set under KVM is delivered first on bt: the IDT stub of
 * its vector runs (it records the vector and halts). */
static void
xa_event_delivered(struct cpu_events ev, int vec, uint64_t err)
{
	struct vm *k, *b;
	struct tvm t;
	struct cpu_state st;

	need_kvm();
	k = xa_kvm_event(ev, 0);
	b = xa_vm(&bt_accel_ops, 1);
	xa_move(k, b);
	t = (struct tvm){ .vm = b, .vcpu = b->vcpus[0] };
	memset(b->ram + TVM_FAULT_VEC, 0xee, 1);
	cr_assert_eq(tvm_run(&t, 50), VM_EXIT_HLT);
	cr_assert_eq(b->ram[TVM_FAULT_VEC], vec, "vector %d delivered, "
	    "%d was being injected", b->ram[TVM_FAULT_VEC], vec);
	cr_assert_eq(b->accel->get_state(b->vcpus[0], &st), 0);
	/* The frame: [error code,] RIP = CODE, CS, RFLAGS, RSP, SS. */
	if (err != UINT64_MAX) {
		cr_assert_eq(tvm_get64(&t, st.gpr[R_RSP]), err);
		st.gpr[R_RSP] += 8;
	}
	cr_assert_eq(tvm_get64(&t, st.gpr[R_RSP]), CODE);
	/* Once, not twice: it is gone from the state. */
	cr_assert_eq(st.ev.exception_pending | st.ev.intr_injected |
	    st.ev.nmi_injected, 0);
	vm_destroy(k);
	vm_destroy(b);
}

Test(xaccel, kvm_injected_exception_delivered_on_bt)
{
	xa_event_delivered((struct cpu_events){ .exception_pending = 1,
	    .exception_nr = 13, .exception_has_error = 1,
	    .exception_error = 0x18 }, 13, 0x18);
}

Test(xaccel, kvm_injected_interrupt_delivered_on_bt)
{
	xa_event_delivered((struct cpu_events){ .intr_injected = 1,
	    .intr_nr = 30 }, 30, UINT64_MAX);
}

Test(xaccel, kvm_injected_nmi_delivered_on_bt)
{
	xa_event_delivered((struct cpu_events){ .nmi_injected = 1 }, 2,
	    UINT64_MAX);
}

/* KVM -> bt -> KVM with nothing run in between: every event field
 * KVM reports comes back as it was. */
static void
xa_events_roundtrip(struct cpu_events ev, uint64_t rflags)
{
	static const char *const f[] = { "exc.injected", "exc.nr",
	    "exc.has_error", "intr.injected", "intr.nr", "intr.shadow",
	    "nmi.injected", "nmi.pending", "nmi.masked" };
	struct vm *k, *b, *k2;
	struct snap s1, s2;

	need_kvm();
	k = xa_kvm_event(ev, rflags);
	b = xa_vm(&bt_accel_ops, 1);
	k2 = xa_vm(&kvm_accel_ops, 1);
	xa_move(k, b);
	xa_move(b, k2);
	xa_save(k, &s1);
	xa_save(k2, &s2);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		cr_assert_eq(xa_u(&s1, "kvm.cpu.0", f[i], 1),
		    xa_u(&s2, "kvm.cpu.0", f[i], 1), "%s: %llu, then %llu",
		    f[i], (unsigned long long)xa_u(&s1, "kvm.cpu.0", f[i], 1),
		    (unsigned long long)xa_u(&s2, "kvm.cpu.0", f[i], 1));
	cr_assert_eq(xa_u(&s1, "kvm.cpu.0", "exc.error", 4),
	    xa_u(&s2, "kvm.cpu.0", "exc.error", 4));
	snap_free(&s1);
	snap_free(&s2);
	vm_destroy(k);
	vm_destroy(b);
	vm_destroy(k2);
}

Test(xaccel, events_exception_roundtrip)
{
	xa_events_roundtrip((struct cpu_events){ .exception_pending = 1,
	    .exception_nr = 14, .exception_has_error = 1,
	    .exception_error = 0x7 }, 0);
}

Test(xaccel, events_interrupt_roundtrip)
{
	xa_events_roundtrip((struct cpu_events){ .intr_injected = 1,
	    .intr_nr = 0x31 }, RFLAGS_IF);
}

Test(xaccel, events_nmi_roundtrip)
{
	xa_events_roundtrip((struct cpu_events){ .nmi_injected = 1,
	    .nmi_masked = 1 }, 0);
	xa_events_roundtrip((struct cpu_events){ .nmi_pending = 1,
	    .nmi_masked = 1 }, 0);
}

/* A MOV SS shadow stays one (with IF clear, an STI shadow would be
 * refused by VM entry); an STI shadow with IF set stays STI. */
Test(xaccel, events_shadow_roundtrip)
{
	xa_events_roundtrip((struct cpu_events){ .interrupt_shadow =
	    CPU_SHADOW_MOV_SS }, 0);
	xa_events_roundtrip((struct cpu_events){ .interrupt_shadow =
	    CPU_SHADOW_STI }, RFLAGS_IF);
}

/* --- 1, again: the TSC-deadline timer (helpers from 3) --- */

/* TSC-deadline mode, KVM to KVM: the deadline is an absolute guest TSC
 * and the TSC goes along, so what is left of it stays. */
Test(xaccel, kvm_tsc_deadline_survives_kvm_to_kvm)
{
	struct vm *k, *k2;
	struct snap s;
	struct cpu_state st;
	struct xa_kvm_put p = { .timer = true, .lvtt = 0x40031 };
	uint8_t msrs[64 * 12], page[1024];
	uint64_t dl, tsc;
	uint32_t n, lvtt;
	int err = 0, slot;

	need_kvm();
	vm_config_defaults(&cfg);
	cfg.memory = MEM;
	k = vm_create(&cfg, &kvm_accel_ops, &err);
	k2 = vm_create(&cfg, &kvm_accel_ops, &err);
	cr_assert(k && k2, "vm_create: %d", err);
	cr_assert_eq(k->accel->get_state(k->vcpus[0], &st), 0);
	{
		uint32_t r[4];

		k->accel->cpuid(k->vcpus[0], 1, 0, r);
		if (!(r[2] & (1u << 24)))
			cr_skip_test("KVM gives no TSC-deadline timer here");
	}
	p.deadline = st.msr.tsc + 50000000000ull;	/* far ahead */
	xa_kvm_cpu(k, 0, &p);
	xa_move(k, k2);
	xa_save(k2, &s);
	n = (uint32_t)xa_u(&s, "kvm.cpu.0", "msrs.n", 4);
	cr_assert(xa_field(&s, "kvm.cpu.0", "msrs", msrs, n * 12));
	cr_assert(xa_field(&s, "kvm.cpu.0", "lapic", page, sizeof(page)));
	slot = xa_msr_slot(msrs, n, 0x6e0);
	cr_assert_geq(slot, 0);
	memcpy(&dl, msrs + slot * 12 + 4, 8);
	memcpy(&lvtt, page + 0x320, 4);
	tsc = xa_u(&s, "cpu.0", "tsc", 8);
	cr_assert_eq((lvtt >> 17) & 3, 2, "LVT timer %#x: not TSC-deadline",
	    lvtt);
	cr_assert_eq(dl, p.deadline, "deadline %#llx, was %#llx",
	    (unsigned long long)dl, (unsigned long long)p.deadline);
	cr_assert(tsc >= st.msr.tsc && tsc < p.deadline);
	snap_free(&s);
	vm_destroy(k);
	vm_destroy(k2);
}

/* A guest given the TSC-deadline timer under KVM cannot go to the
 * software CPU (its LAPIC has none): refused by name before anything
 * changes. */
Test(xaccel, kvm_tsc_deadline_guest_refused_on_bt)
{
	struct vm *k, *b;
	struct snap s, l;
	uint32_t r[4];
	int err = 0;

	need_kvm();
	/* Its own configuration: a VM keeps a pointer to it. */
	vm_config_defaults(&hcfg);
	hcfg.memory = MEM;
	k = vm_create(&hcfg, &kvm_accel_ops, &err);
	cr_assert_not_null(k, "vm_create: %d", err);
	k->accel->cpuid(k->vcpus[0], 1, 0, r);
	if (!(r[2] & (1u << 24)))
		cr_skip_test("KVM gives no TSC-deadline timer here");
	b = xa_vm(&bt_accel_ops, 1);
	xa_save(k, &s);
	snap_init_load(&l, s.buf, s.len);
	cr_assert_neq(vmstate_load(b, &l), 0);
	cr_assert(strstr(l.errmsg, "tsc_deadline") != NULL, "%s", l.errmsg);
	snap_free(&s);
	vm_destroy(k);
	vm_destroy(b);
}

/* --- 5. ring-3 port I/O after KVM (which keeps no IOPL) --- */

/*
 * The software CPU lets ring 3 at a port its TSS's I/O bitmap allows
 * even with IOPL 0 (what a guest's state under this host's KVM says),
 * and raises #GP for one it does not.
 */
Test(xaccel, bt_ring3_io_follows_the_tss_bitmap)
{
	/* mov dx, 0x3f8; mov al, 'x'; out dx, al; mov byte [0x5200], 1;
	 * inc dx; out dx, al; 1: jmp 1b */
	static const uint8_t code[] = {
		0x66, 0xba, 0xf8, 0x03, 0xb0, 0x78, 0xee,
		0xc6, 0x04, 0x25, 0x00, 0x52, 0x00, 0x00, 0x01,
		0x66, 0xff, 0xc2, 0xee, 0xeb, 0xfe,
	};
	struct vm *b = xa_vm(&bt_accel_ops, 1);
	struct tvm t = { .vm = b, .vcpu = b->vcpus[0] };
	struct cpu_state st;
	uint8_t map[0x400 / 8 + 1];

	tvm_long_mode(&t, &st, CODE);
	tvm_put(&t, CODE, code, sizeof(code));
	/* The I/O bitmap right after the TSS: 0x3f8 allowed, 0x3f9 not. */
	memset(map, 0xff, sizeof(map));
	map[0x3f8 / 8] = (uint8_t)~1u;
	tvm_put(&t, 0x6068, map, sizeof(map));
	b->ram[0x6066] = 0x68;
	b->ram[0x6067] = 0;
	st.seg[SEG_TR].limit = 0x68 + sizeof(map) - 1;
	tvm_seg(&st.seg[SEG_CS], 0x2b, true, true, 3);
	tvm_seg(&st.seg[SEG_SS], 0x23, false, false, 3);
	st.rflags = RFLAGS_FIXED;		/* IOPL 0 */
	cr_assert_eq(b->accel->set_state(b->vcpus[0], &st), 0);
	b->ram[TVM_FAULT_VEC] = 0xee;
	cr_assert_eq(tvm_run(&t, 50), VM_EXIT_HLT);
	cr_assert_eq(b->ram[0x5200], 1, "OUT to an allowed port faulted");
	cr_assert_eq(b->ram[TVM_FAULT_VEC], 13, "vector %d, not #GP",
	    b->ram[TVM_FAULT_VEC]);
	cr_assert_eq(b->accel->get_state(b->vcpus[0], &st), 0);
	/* The frame: error code 0, then the RIP of the second OUT. */
	cr_assert_eq(tvm_get64(&t, st.gpr[R_RSP]), 0);
	cr_assert_eq(tvm_get64(&t, st.gpr[R_RSP] + 8), CODE + 18);
	vm_destroy(b);
}
