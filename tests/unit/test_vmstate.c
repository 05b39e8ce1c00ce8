/*
 * The whole-VM state on real VM objects (vm_create on the software CPU,
 * every device of the table): a guest counting in a register is saved,
 * keeps running, and a second VM loaded from the saved state continues
 * from the saved count.  Damaged, truncated, newer and foreign streams
 * are refused with a message and change nothing.
 */
#include <criterion/criterion.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bt/harness.h"
#include "devices/bus.h"
#include "hv/vmconfig.h"
#include "migrate/snap.h"
#include "migrate/vmstate.h"
#include "util/evloop.h"

#define MEM		(16ull << 20)
#define CODE		0x200000ull
#define COUNTER		0x5000ull

/* 1: inc rax; mov [0x5000], rax; pause; jmp 1b */
static const uint8_t count_loop[] = {
	0x48, 0xff, 0xc0,
	0x48, 0x89, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00,
	0xf3, 0x90,
	0xeb, 0xf2,
};

static struct vm_config cfg;

TestSuite(vmstate, .timeout = 180);

static struct vm *
new_vm(uint64_t mem, int cpus)
{
	struct vm *vm;
	int err = 0;

	vm_config_defaults(&cfg);
	cfg.memory = mem;
	cfg.cpus = cpus;
	vm = vm_create(&cfg, &bt_accel_ops, &err);
	cr_assert_not_null(vm, "vm_create: %d", err);
	return vm;
}

/* The counting guest on vm, in long mode through the test harness. */
static struct tvm
guest_vm(struct vm *vm)
{
	struct tvm t = { .vm = vm, .vcpu = vm->vcpus[0] };
	struct cpu_state st;

	tvm_long_mode(&t, &st, CODE);
	tvm_put(&t, CODE, count_loop, sizeof(count_loop));
	cr_assert_eq(vm->accel->set_state(vm->vcpus[0], &st), 0);
	return t;
}

static uint64_t
counter(struct vm *vm)
{
	uint64_t v;

	memcpy(&v, vm->ram + COUNTER, 8);
	return v;
}

static uint64_t
reg(struct vm *vm, int r)
{
	struct cpu_state st;

	cr_assert_eq(vm->accel->get_state(vm->vcpus[0], &st), 0);
	return r < 0 ? st.msr.tsc : st.gpr[r];
}

/* A guest that has counted for a while, its state and a RAM copy. */
struct saved {
	struct vm *vm;
	struct snap s;
	uint8_t *ram;
	uint64_t count, tsc;
};

static void
save_running(struct saved *sv)
{
	struct tvm t;

	sv->vm = new_vm(MEM, 1);
	t = guest_vm(sv->vm);
	cr_assert_eq(tvm_run(&t, 50), VM_EXIT_INTR);
	sv->count = reg(sv->vm, R_RAX);
	cr_assert_gt(sv->count, 100, "the guest did not count");
	snap_init_save(&sv->s);
	cr_assert_eq(vmstate_save(sv->vm, &sv->s), 0, "%s", sv->s.errmsg);
	sv->tsc = reg(sv->vm, -1);
	sv->ram = malloc(MEM);
	memcpy(sv->ram, sv->vm->ram, MEM);
}

static void
saved_free(struct saved *sv)
{
	snap_free(&sv->s);
	free(sv->ram);
	vm_destroy(sv->vm);
}

Test(vmstate, guest_resumes_from_the_saved_count)
{
	struct saved sv;
	struct snap l;
	struct tvm t;
	struct vm *b;
	uint64_t later, tsc;

	save_running(&sv);
	/* The source goes on counting past the saved value. */
	t = (struct tvm){ .vm = sv.vm, .vcpu = sv.vm->vcpus[0] };
	cr_assert_eq(tvm_run(&t, 30), VM_EXIT_INTR);
	later = reg(sv.vm, R_RAX);
	cr_assert_gt(later, sv.count);
	/* Long enough that the source's TSC is well past the saved one. */
	cr_assert_eq(tvm_run(&t, 300), VM_EXIT_INTR);

	b = new_vm(MEM, 1);
	memcpy(b->ram, sv.ram, MEM);
	snap_init_load(&l, sv.s.buf, sv.s.len);
	cr_assert_eq(vmstate_load(b, &l), 0, "%s", l.errmsg);
	cr_assert_eq(l.pos, l.len, "the whole stream was read");
	cr_assert_eq(reg(b, R_RAX), sv.count);
	/* The TSC continues from the saved value, not from 0 and not from
	 * the source's later value (1 GHz: within 200 ms). */
	tsc = reg(b, -1);
	cr_assert_lt(tsc > sv.tsc ? tsc - sv.tsc : sv.tsc - tsc, 200000000ull,
	    "TSC %llu, saved %llu", (unsigned long long)tsc,
	    (unsigned long long)sv.tsc);
	t = (struct tvm){ .vm = b, .vcpu = b->vcpus[0] };
	cr_assert_eq(tvm_run(&t, 30), VM_EXIT_INTR);
	cr_assert_gt(reg(b, R_RAX), sv.count);
	cr_assert_gt(counter(b), sv.count, "memory and registers agree");
	cr_assert_eq(atomic_load(&b->exit_request), 0);
	vm_destroy(b);
	saved_free(&sv);
}

/* Every cut of the stream and many bit flips are refused before the
 * VM changes: vCPU 0 keeps its reset state. */
Test(vmstate, truncated_or_corrupted_streams_change_nothing)
{
	struct saved sv;
	struct snap l;
	struct vm *b;
	uint8_t *copy;

	save_running(&sv);
	b = new_vm(MEM, 1);
	for (size_t n = 0; n < sv.s.len; n += n < 512 ? 1 : 7) {
		snap_init_load(&l, sv.s.buf, n);
		cr_assert_neq(vmstate_load(b, &l), 0, "cut at %zu loaded", n);
		cr_assert_neq(l.errmsg[0], '\0');
		cr_assert_eq(reg(b, R_RAX), 0, "cut at %zu changed vCPU 0", n);
	}
	snap_init_load(&l, sv.s.buf, sv.s.len - 1);
	vmstate_load(b, &l);
	cr_assert(strstr(l.errmsg, "truncated") != NULL, "%s", l.errmsg);
	copy = malloc(sv.s.len);
	for (size_t i = 0; i < sv.s.len * 8; i += 13) {
		memcpy(copy, sv.s.buf, sv.s.len);
		copy[i / 8] ^= 1u << (i % 8);
		snap_init_load(&l, copy, sv.s.len);
		cr_assert_neq(vmstate_load(b, &l), 0, "bit %zu loaded", i);
		cr_assert_eq(reg(b, R_RAX), 0, "bit %zu changed vCPU 0", i);
	}
	/* Nothing of it may run. */
	cr_assert_neq(atomic_load(&b->exit_request), 0);
	free(copy);
	vm_destroy(b);
	saved_free(&sv);
}

/* Offset of section name's header in buf, or -1. */
static long
find_section(const uint8_t *buf, size_t len, const char *name)
{
	size_t p = 0, nl = strlen(name);

	while (p + 10 < len) {
		unsigned l = buf[p + 1];
		uint32_t plen;

		memcpy(&plen, buf + p + 6 + l, 4);
		if (l == nl && memcmp(buf + p + 2, name, nl) == 0)
			return (long)p;
		p += 10 + l + plen + 4;
	}
	return -1;
}

/* Recompute the CRC of the section at off after an edit. */
static void
reseal(uint8_t *buf, long off)
{
	unsigned l = buf[off + 1];
	uint32_t plen, crc;

	memcpy(&plen, buf + off + 6 + l, 4);
	crc = snap_crc32(buf + off, 10 + l + plen);
	memcpy(buf + off + 10 + l + plen, &crc, 4);
}

Test(vmstate, newer_section_version_is_refused)
{
	struct saved sv;
	struct snap l;
	struct vm *b;
	uint32_t v;
	long off;

	save_running(&sv);
	off = find_section(sv.s.buf, sv.s.len, "com1");
	cr_assert_geq(off, 0);
	memcpy(&v, sv.s.buf + off + 2 + 4, 4);
	v++;
	memcpy(sv.s.buf + off + 2 + 4, &v, 4);
	reseal(sv.s.buf, off);
	b = new_vm(MEM, 1);
	memcpy(b->ram, sv.ram, MEM);
	snap_init_load(&l, sv.s.buf, sv.s.len);
	cr_assert_eq(vmstate_load(b, &l), -ENOTSUP);
	cr_assert(strstr(l.errmsg, "com1") && strstr(l.errmsg, "newer"),
	    "%s", l.errmsg);
	cr_assert_eq(reg(b, R_RAX), 0, "refused before any change");
	vm_destroy(b);
	saved_free(&sv);
}

/* A guest that was given AVX cannot resume on a CPU without it. */
Test(vmstate, missing_cpu_feature_is_refused_by_name)
{
	static const char field[] = "cpuid.1.ecx";
	struct saved sv;
	struct snap l;
	struct vm *b;
	uint8_t *p;
	long off;

	save_running(&sv);
	off = find_section(sv.s.buf, sv.s.len, "vmstate");
	cr_assert_geq(off, 0);
	p = memmem(sv.s.buf + off, sv.s.len - off, field, strlen(field));
	cr_assert_not_null(p);
	p[strlen(field) + 4 + 3] |= 1u << (28 - 24);	/* AVX */
	reseal(sv.s.buf, off);
	b = new_vm(MEM, 1);
	snap_init_load(&l, sv.s.buf, sv.s.len);
	cr_assert_eq(vmstate_load(b, &l), -ENOTSUP);
	cr_assert(strstr(l.errmsg, "avx") && strstr(l.errmsg, "bt"), "%s",
	    l.errmsg);
	vm_destroy(b);
	saved_free(&sv);
}

Test(vmstate, other_shape_is_refused)
{
	struct saved sv;
	struct snap l;
	struct vm *b;

	save_running(&sv);
	b = new_vm(MEM * 2, 1);
	snap_init_load(&l, sv.s.buf, sv.s.len);
	cr_assert_eq(vmstate_load(b, &l), -EINVAL);
	cr_assert(strstr(l.errmsg, "MiB") != NULL, "%s", l.errmsg);
	vm_destroy(b);
	b = new_vm(MEM, 2);
	snap_init_load(&l, sv.s.buf, sv.s.len);
	cr_assert_eq(vmstate_load(b, &l), -EINVAL);
	cr_assert(strstr(l.errmsg, "vCPU") != NULL, "%s", l.errmsg);
	vm_destroy(b);
	saved_free(&sv);
}

/* Two vCPUs, an AP still waiting for SIPI: both come back as they were. */
Test(vmstate, smp_state_roundtrip)
{
	struct vm *a = new_vm(MEM, 2), *b = new_vm(MEM, 2);
	struct cpu_state sa, sb;
	struct snap s, l;

	guest_vm(a);
	snap_init_save(&s);
	cr_assert_eq(vmstate_save(a, &s), 0, "%s", s.errmsg);
	snap_init_load(&l, s.buf, s.len);
	cr_assert_eq(vmstate_load(b, &l), 0, "%s", l.errmsg);
	for (int i = 0; i < 2; i++) {
		memset(&sa, 0, sizeof(sa));	/* padding compares equal */
		memset(&sb, 0, sizeof(sb));
		cr_assert_eq(a->accel->get_state(a->vcpus[i], &sa), 0);
		cr_assert_eq(b->accel->get_state(b->vcpus[i], &sb), 0);
		sa.msr.tsc = sb.msr.tsc = 0;
		/* Everything before the events byte for byte; the events
		 * field by field, as their padding (and the struct's tail)
		 * need not match: an ASan build showed it differ. */
		cr_assert_eq(memcmp(&sa, &sb, offsetof(struct cpu_state, ev)),
		    0, "vCPU %d", i);
		cr_assert_eq(sa.ev.exception_pending, sb.ev.exception_pending);
		cr_assert_eq(sa.ev.exception_nr, sb.ev.exception_nr);
		cr_assert_eq(sa.ev.exception_has_error,
		    sb.ev.exception_has_error);
		cr_assert_eq(sa.ev.exception_error, sb.ev.exception_error);
		cr_assert_eq(sa.ev.interrupt_shadow, sb.ev.interrupt_shadow);
		cr_assert_eq(sa.ev.nmi_pending, sb.ev.nmi_pending);
		cr_assert_eq(sa.ev.nmi_masked, sb.ev.nmi_masked);
		cr_assert_eq(sa.ev.halted, sb.ev.halted, "vCPU %d", i);
	}
	snap_free(&s);
	vm_destroy(a);
	vm_destroy(b);
}

struct kick { struct vcpu *v; int ms; };

static void *
kick_later(void *arg)
{
	struct kick *k = arg;

	usleep((useconds_t)k->ms * 1000);
	vcpu_kick(k->v, VCPU_REQ_STOP);
	return NULL;
}

/* Run vCPU 0 on whatever accelerator for about ms milliseconds. */
static void
run_for(struct vm *vm, int ms)
{
	struct kick k = { vm->vcpus[0], ms };
	struct vm_exit e;
	pthread_t th;

	pthread_create(&th, NULL, kick_later, &k);
	do {
		memset(&e, 0, sizeof(e));
		cr_assert_eq(vm->accel->vcpu_run(vm->vcpus[0], &e), 0);
	} while (e.kind != VM_EXIT_INTR && e.kind != VM_EXIT_SHUTDOWN &&
	    e.kind != VM_EXIT_INTERNAL_ERROR);
	pthread_join(th, NULL);
	atomic_fetch_and(&vm->vcpus[0]->requests, ~(unsigned)VCPU_REQ_STOP);
	cr_assert_eq(e.kind, VM_EXIT_INTR);
}

/* b, loaded from a guest saved at count, counts on from there (about
 * ms milliseconds), in its registers and in memory. */
static void
resumes_counting(struct vm *b, uint64_t count, int ms)
{
	cr_assert_eq(reg(b, R_RAX), count);
	run_for(b, ms);
	cr_assert_gt(reg(b, R_RAX), count);
	cr_assert_gt(counter(b), count);
}

/* The same round trip under KVM: its own sections (XSAVE, LAPIC,
 * events, MSRs, the in-kernel PIC, IOAPIC, PIT and clock) go along. */
Test(vmstate, kvm_guest_resumes_from_the_saved_count)
{
	struct vm *a, *b;
	struct snap s, l;
	uint64_t count;
	int err = 0;

	if (access("/dev/kvm", R_OK | W_OK) != 0)
		cr_skip_test("no /dev/kvm");
	vm_config_defaults(&cfg);
	cfg.memory = MEM;
	a = vm_create(&cfg, &kvm_accel_ops, &err);
	b = vm_create(&cfg, &kvm_accel_ops, &err);
	cr_assert(a != NULL && b != NULL, "vm_create on KVM: %d", err);
	guest_vm(a);
	run_for(a, 300);
	count = reg(a, R_RAX);
	cr_assert_gt(count, 0, "the guest did not count under KVM");
	snap_init_save(&s);
	cr_assert_eq(vmstate_save(a, &s), 0, "%s", s.errmsg);
	cr_assert_not_null(memmem(s.buf, s.len, "kvm.vm", 6));
	memcpy(b->ram, a->ram, MEM);
	snap_init_load(&l, s.buf, s.len);
	cr_assert_eq(vmstate_load(b, &l), 0, "%s", l.errmsg);
	resumes_counting(b, count, 300);
	snap_free(&s);
	vm_destroy(a);
	vm_destroy(b);
}

/* KVM to the software CPU: a guest given the baseline CPU under KVM
 * resumes counting on bt, KVM's interrupt controllers converted into
 * the software ones (which check what they load). */
Test(vmstate, kvm_guest_resumes_on_the_software_cpu)
{
	struct vm *a, *b;
	struct snap s, l;
	struct tvm t;
	uint64_t count;
	int err = 0;

	if (access("/dev/kvm", R_OK | W_OK) != 0)
		cr_skip_test("no /dev/kvm");
	vm_config_defaults(&cfg);
	cfg.memory = MEM;
	snprintf(cfg.cpu, sizeof(cfg.cpu), "baseline");
	a = vm_create(&cfg, &kvm_accel_ops, &err);
	b = vm_create(&cfg, &bt_accel_ops, &err);
	cr_assert(a != NULL && b != NULL, "vm_create: %d", err);
	t = guest_vm(a);
	run_for(a, 300);
	count = reg(a, R_RAX);
	cr_assert_gt(count, 0);
	snap_init_save(&s);
	cr_assert_eq(vmstate_save(a, &s), 0, "%s", s.errmsg);
	memcpy(b->ram, a->ram, MEM);
	snap_init_load(&l, s.buf, s.len);
	cr_assert_eq(vmstate_load(b, &l), 0, "%s", l.errmsg);
	cr_assert_eq(l.pos, l.len);
	cr_assert_eq(reg(b, R_RAX), count);
	t = (struct tvm){ .vm = b, .vcpu = b->vcpus[0] };
	cr_assert_eq(tvm_run(&t, 50), VM_EXIT_INTR);
	cr_assert_gt(reg(b, R_RAX), count);
	cr_assert_gt(counter(b), count);
	/* Without the baseline CPU the same is refused, naming features. */
	vm_destroy(a);
	cfg.cpu[0] = '\0';
	a = vm_create(&cfg, &kvm_accel_ops, &err);
	cr_assert_not_null(a);
	snap_free(&s);
	snap_init_save(&s);
	cr_assert_eq(vmstate_save(a, &s), 0, "%s", s.errmsg);
	snap_init_load(&l, s.buf, s.len);
	if (vmstate_load(b, &l) != 0)
		cr_assert(strstr(l.errmsg, "lacks") != NULL, "%s", l.errmsg);
	snap_free(&s);
	vm_destroy(a);
	vm_destroy(b);
}

/* And back: a guest given the baseline CPU on the software CPU resumes
 * counting under KVM, the software interrupt controllers given to KVM's
 * in-kernel ones. */
Test(vmstate, bt_guest_resumes_under_kvm)
{
	struct vm *a, *b;
	struct snap s, l;
	struct tvm t;
	uint64_t count;
	int err = 0;

	if (access("/dev/kvm", R_OK | W_OK) != 0)
		cr_skip_test("no /dev/kvm");
	vm_config_defaults(&cfg);
	cfg.memory = MEM;
	snprintf(cfg.cpu, sizeof(cfg.cpu), "baseline");
	a = vm_create(&cfg, &bt_accel_ops, &err);
	b = vm_create(&cfg, &kvm_accel_ops, &err);
	cr_assert(a != NULL && b != NULL, "vm_create: %d", err);
	t = guest_vm(a);
	cr_assert_eq(tvm_run(&t, 50), VM_EXIT_INTR);
	count = reg(a, R_RAX);
	cr_assert_gt(count, 0);
	snap_init_save(&s);
	cr_assert_eq(vmstate_save(a, &s), 0, "%s", s.errmsg);
	memcpy(b->ram, a->ram, MEM);
	snap_init_load(&l, s.buf, s.len);
	cr_assert_eq(vmstate_load(b, &l), 0, "%s", l.errmsg);
	cr_assert_eq(l.pos, l.len);
	resumes_counting(b, count, 300);
	snap_free(&s);
	vm_destroy(a);
	vm_destroy(b);
}

/* --- a VM that has gained a device since its state was saved --- */

static struct vm_config gcfg[4];
static int ngcfg;

/* A VM on accel with the rng and display settings given. */
static struct vm *
vm_with(const struct accel_ops *accel, const char *rng, const char *display)
{
	struct vm_config *c = &gcfg[ngcfg++ % 4];
	struct vm *vm;
	int err = 0;

	vm_config_defaults(c);
	c->memory = MEM;
	snprintf(c->cpu, sizeof(c->cpu), "baseline");
	snprintf(c->rng, sizeof(c->rng), "%s", rng);
	snprintf(c->display, sizeof(c->display), "%s", display);
	/* A VNC pointer (virtio-input) even without a display; nothing
	 * listens until run starts the server. */
	snprintf(c->vnc, sizeof(c->vnc), "127.0.0.1:99");
	vm = vm_create(c, accel, &err);
	cr_assert_not_null(vm, "vm_create: %d", err);
	return vm;
}

static uint32_t
pci_rd(struct vm *vm, int slot, unsigned reg)
{
	uint8_t d[4];

	bus_put(d, 4, 0x80000000u | (unsigned)slot << 11 | reg);
	bus_access(vm->pio, NULL, 0xcf8, d, 4, true);
	bus_access(vm->pio, NULL, 0xcfc, d, 4, false);
	return (uint32_t)bus_get(d, 4);
}

/* What the guest sees of bus 0: command and BARs of every function. */
struct pci_view {
	uint32_t id[32], cmd[32], bar[32][6];
};

static void
pci_view(struct vm *vm, struct pci_view *v)
{
	memset(v, 0, sizeof(*v));
	pthread_mutex_lock(&vm->devlock);
	for (int s = 0; s < 32; s++) {
		v->id[s] = pci_rd(vm, s, 0);
		if (v->id[s] == 0xffffffffu)
			continue;
		v->cmd[s] = pci_rd(vm, s, 4) & 0xffff;
		for (int b = 0; b < 6; b++)
			v->bar[s][b] = pci_rd(vm, s, 0x10 + 4 * b);
	}
	pthread_mutex_unlock(&vm->devlock);
}

/* The slot of virtio-rng (1af4:1044), or -1. */
static int
rng_slot(const struct pci_view *v)
{
	for (int s = 0; s < 32; s++)
		if (v->id[s] == 0x10441af4u)
			return s;
	return -1;
}

/* Memory BAR b of slot s decodes where the guest put it, in vm as in
 * the saved VM sv: the same function's range is there in both. */
static void
bar_decodes(struct vm *sv, struct vm *vm, const struct pci_view *v, int s,
    int b)
{
	uint32_t lo = v->bar[s][b];
	uint64_t addr;
	const char *want, *name;

	if ((lo & 1) || (lo & ~0xfu) == 0)
		return;		/* I/O, or not implemented */
	addr = lo & ~0xfull;
	if ((lo & 6) == 4)
		addr |= (uint64_t)v->bar[s][b + 1] << 32;
	want = bus_lookup_name(sv->mmio, addr);
	name = bus_lookup_name(vm->mmio, addr);
	cr_assert(want != NULL && strstr(want, "-bar") != NULL,
	    "slot %d BAR%d: %s", s, b, want);
	cr_assert(name != NULL && strcmp(name, want) == 0, "%s: slot %d BAR%d "
	    "at %#llx is %s, not %s", vm->accel->name, s, b,
	    (unsigned long long)addr, name ? name : "nothing", want);
}

/*
 * Save a counting guest on accel `from` without the rng, load it on
 * `to` with it: the guest counts on from where it was, every function
 * the saved VM had decodes at the saved addresses, and the rng is at
 * power-on (decoding off, BARs 0) though vm_create placed it.
 */
static void
gained_rng(const struct accel_ops *from, const struct accel_ops *to)
{
	/* No display, whose creation places the BARs before the rng
	 * exists: vm_create() then places the rng's 16 KiB BAR where the
	 * saved VM has virtio-input's 4 KiB one. */
	struct vm *a = vm_with(from, "off", "none"), *b;
	struct pci_view va, vb;
	struct snap s, l;
	uint64_t count;
	int rs;

	guest_vm(a);
	run_for(a, 100);
	count = reg(a, R_RAX);
	cr_assert_gt(count, 0, "the guest did not count");
	pci_view(a, &va);
	cr_assert_eq(rng_slot(&va), -1);
	snap_init_save(&s);
	cr_assert_eq(vmstate_save(a, &s), 0, "%s", s.errmsg);

	b = vm_with(to, "on", "none");
	pci_view(b, &vb);
	rs = rng_slot(&vb);
	cr_assert_geq(rs, 0, "no virtio-rng on the loading VM");
	cr_assert_neq(vb.cmd[rs] & 2, 0, "vm_create placed the rng's BARs");
	memcpy(b->ram, a->ram, MEM);
	snap_init_load(&l, s.buf, s.len);
	cr_assert_eq(vmstate_load(b, &l), 0, "%s", l.errmsg);
	cr_assert_eq(l.pos, l.len, "the whole stream was read");
	cr_assert_eq(atomic_load(&b->exit_request), 0);

	pci_view(b, &vb);
	for (int sl = 0; sl < 32; sl++) {
		if (va.id[sl] == 0xffffffffu)
			continue;
		cr_assert_eq(vb.id[sl], va.id[sl], "slot %d", sl);
		cr_assert_eq(vb.cmd[sl], va.cmd[sl], "slot %d command", sl);
		cr_assert_eq(memcmp(vb.bar[sl], va.bar[sl], sizeof(va.bar[sl])),
		    0, "slot %d BARs", sl);
		for (int i = 0; i < 6; i++)
			bar_decodes(a, b, &vb, sl, i);
	}
	cr_assert_eq(rng_slot(&vb), rs, "the rng keeps its slot");
	cr_assert_eq(vb.cmd[rs] & 7, 0, "rng command %#x", vb.cmd[rs]);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(vb.bar[rs][i] & ~0xfu, 0, "rng BAR%d %#x", i,
		    vb.bar[rs][i]);

	resumes_counting(b, count, 100);
	snap_free(&s);
	vm_destroy(a);
	vm_destroy(b);
}

Test(vmstate, gained_rng_is_in_reset_state)
{
	gained_rng(&bt_accel_ops, &bt_accel_ops);
}

/* The same on the two paths between accelerators and under KVM. */
Test(vmstate, gained_rng_is_in_reset_state_across_accels)
{
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		cr_skip_test("no /dev/kvm");
	gained_rng(&kvm_accel_ops, &kvm_accel_ops);
	gained_rng(&bt_accel_ops, &kvm_accel_ops);
	gained_rng(&kvm_accel_ops, &bt_accel_ops);
}

/* Load s into b: refused, with what in the message, nothing changed. */
static void
refused(struct vm *b, const struct snap *s, const char *what)
{
	struct snap l;

	snap_init_load(&l, s->buf, s->len);
	cr_assert_eq(vmstate_load(b, &l), -EINVAL, "%s", l.errmsg);
	cr_assert_not_null(strstr(l.errmsg, what), "%s", l.errmsg);
	cr_assert_eq(reg(b, R_RAX), 0, "refused before any change");
	vm_destroy(b);
}

/* Offset of header field name's value in buf (after its length). */
static size_t
hdr_field(uint8_t *buf, size_t len, const char *name)
{
	size_t nl = strlen(name) + 1;
	char key[40];
	uint8_t *p;

	key[0] = (char)(nl - 1);
	memcpy(key + 1, name, nl - 1);
	p = memmem(buf, len, key, nl);
	cr_assert_not_null(p, "no header field %s", name);
	return (size_t)(p - buf) + nl + 4;
}

Test(vmstate, lost_added_or_reordered_devices_are_refused)
{
	struct vm *a = vm_with(&bt_accel_ops, "on", "std");
	struct snap s, o;
	char n1[32], n2[32], tmp[64];
	size_t f1, f2;
	long off;

	guest_vm(a);
	snap_init_save(&s);
	cr_assert_eq(vmstate_save(a, &s), 0, "%s", s.errmsg);
	/* The saved VM's rng would be lost. */
	refused(vm_with(&bt_accel_ops, "off", "std"), &s,
	    "virtio-rng0 in the saved VM but (none) here");
	/* A display is probed at boot: it may not appear afterwards. */
	snap_init_save(&o);
	vm_destroy(a);
	a = vm_with(&bt_accel_ops, "off", "none");
	cr_assert_eq(vmstate_save(a, &o), 0, "%s", o.errmsg);
	refused(vm_with(&bt_accel_ops, "off", "std"), &o,
	    "is (none) in the saved VM but display here (only virtio");
	/* Nor before a device that may be added (the rng after it). */
	refused(vm_with(&bt_accel_ops, "on", "std"), &o,
	    "is (none) in the saved VM but display here (only virtio");
	snap_free(&o);

	/* Two devices swapped in the saved list. */
	off = find_section(s.buf, s.len, "vmstate");
	cr_assert_geq(off, 0);
	f1 = hdr_field(s.buf, s.len, "device1");
	f2 = hdr_field(s.buf, s.len, "device2");
	memcpy(n1, s.buf + f1, 32);
	memcpy(n2, s.buf + f2, 32);
	memcpy(s.buf + f1, n2, 32);
	memcpy(s.buf + f2, n1, 32);
	reseal(s.buf, off);
	snprintf(tmp, sizeof(tmp), "device 1 is %s", n2);
	refused(vm_with(&bt_accel_ops, "on", "std"), &s, tmp);
	/* A device this VM does not have at all. */
	memcpy(s.buf + f1, n1, 32);
	memcpy(s.buf + f2, "nosuchchip", 11);
	reseal(s.buf, off);
	refused(vm_with(&bt_accel_ops, "on", "std"), &s,
	    "device 2 is nosuchchip in the saved VM");
	snap_free(&s);
	vm_destroy(a);
}
