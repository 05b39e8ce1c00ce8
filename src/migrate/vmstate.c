/*
 * The whole state of a VM as one stream of snap sections (vmstate.h).
 *
 * Stream order:
 *   "vmstate"        header: shape of the VM, device list, CPU features
 *   "cpu.0" ...      every vCPU's struct cpu_state
 *   "<accel>.cpu.N"  what the writer's accelerator keeps per vCPU
 *   devices          one section per device instance, in list order
 *   "<accel>.vm"     what the writer's accelerator keeps per VM
 *   "end"            so that a stream cut at a section boundary is
 *                    refused like any other truncation
 *
 * Loading walks the whole stream first (framing, checksums, versions of
 * the sections this build knows), then checks the header against the
 * VM, then reads every vCPU's state into scratch, and only then starts
 * changing the VM.  The VM may have gained virtio devices at the end of
 * its list since the save: they have no section and are put in reset
 * state (vmstate_may_be_absent).  A failure after that point (a device refusing a
 * value) leaves the VM unfit to run: vmstate_load() then also asks the
 * VM to exit, so that even a caller that forgot to destroy it runs no
 * guest code.
 */
#include "migrate/vmstate.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "devices/pci.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_input.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "hv/cpu_state.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "migrate/vmstate_xirq.h"
#include "util/evloop.h"
#include "util/log.h"

#define VMSTATE_VERSION		1	/* of the "vmstate" section */
/* Of "cpu.N": the version of what cpu_state_snapshot() describes. */
#define VMSTATE_CPU_VERSION	CPU_STATE_VERSION
#define VMSTATE_END_VERSION	1

/*
 * CPUID feature words compared between the writer and the reader.  Bits
 * that follow guest-controlled state (OSXSAVE, OSPKE, the APIC bit
 * while the APIC is off) or the VM's shape (HTT, CMP_LEGACY) are masked.
 */
struct vmstate_fword {
	const char *name;	/* field name in the header */
	uint32_t leaf, sub;
	int reg;		/* 0 eax, 1 ebx, 2 ecx, 3 edx */
	uint32_t ignore;
	const char *bits[32];
};

static const struct vmstate_fword vmstate_fwords[] = {
	{ "cpuid.1.ecx", 1, 0, 2, 1u << 27, {
	    "sse3", "pclmulqdq", "dtes64", "monitor", "ds_cpl", "vmx", "smx",
	    "est", "tm2", "ssse3", "cnxt_id", "sdbg", "fma", "cx16", "xtpr",
	    "pdcm", NULL, "pcid", "dca", "sse4_1", "sse4_2", "x2apic",
	    "movbe", "popcnt", "tsc_deadline", "aes", "xsave", NULL, "avx",
	    "f16c", "rdrand", "hypervisor" } },
	{ "cpuid.1.edx", 1, 0, 3, 1u << 9 | 1u << 28, {
	    "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8",
	    "apic", NULL, "sep", "mtrr", "pge", "mca", "cmov", "pat", "pse36",
	    "pn", "clflush", NULL, "ds", "acpi", "mmx", "fxsr", "sse", "sse2",
	    "ss", "ht", "tm", NULL, "pbe" } },
	{ "cpuid.7.ebx", 7, 0, 1, 0, {
	    "fsgsbase", "tsc_adjust", "sgx", "bmi1", "hle", "avx2", NULL,
	    "smep", "bmi2", "erms", "invpcid", "rtm", NULL, NULL, "mpx", NULL,
	    "avx512f", "avx512dq", "rdseed", "adx", "smap", "avx512ifma",
	    NULL, "clflushopt", "clwb", NULL, "avx512pf", "avx512er",
	    "avx512cd", "sha_ni", "avx512bw", "avx512vl" } },
	{ "cpuid.7.ecx", 7, 0, 2, 1u << 4, {
	    NULL, "avx512vbmi", "umip", "pku", NULL, "waitpkg",
	    "avx512_vbmi2", "cet_ss", "gfni", "vaes", "vpclmulqdq",
	    "avx512_vnni", "avx512_bitalg", NULL, "avx512_vpopcntdq", NULL,
	    "la57", NULL, NULL, NULL, NULL, NULL, "rdpid", NULL, NULL,
	    "cldemote", NULL, "movdiri", "movdir64b" } },
	{ "cpuid.7.edx", 7, 0, 3, 0, {
	    NULL, NULL, "avx512_4vnniw", "avx512_4fmaps", "fsrm", NULL,
	    NULL, NULL, "avx512_vp2intersect", NULL, "md_clear", NULL, NULL,
	    NULL, "serialize", NULL, "tsxldtrk", NULL, "pconfig", NULL,
	    "cet_ibt", NULL, "amx_bf16", "avx512_fp16", "amx_tile",
	    "amx_int8", "spec_ctrl", "stibp", "flush_l1d",
	    "arch_capabilities", "core_capabilities", "ssbd" } },
	{ "cpuid.80000001.ecx", 0x80000001, 0, 2, 1u << 1, {
	    "lahf_lm", NULL, "svm", "extapic", "cr8_legacy", "abm", "sse4a",
	    "misalignsse", "3dnowprefetch", "osvw", "ibs", "xop", "skinit",
	    "wdt", NULL, "lwp", "fma4", "tce", NULL, "nodeid_msr", NULL,
	    "tbm", "topoext" } },
	/* AMD repeats leaf 1's EDX bits here (not Intel): nobody reads them
	 * from this leaf, so they are not compared. */
	{ "cpuid.80000001.edx", 0x80000001, 0, 3, 0x0183f3ff, {
	    [11] = "syscall", [19] = "mp", [20] = "nx", [22] = "mmxext",
	    [25] = "fxsr_opt", [26] = "pdpe1gb", [27] = "rdtscp", [29] = "lm",
	    [30] = "3dnowext", [31] = "3dnow" } },
	{ "cpuid.d.1.eax", 0xd, 1, 0, 0, {
	    "xsaveopt", "xsavec", "xgetbv1", "xsaves" } },
};
#define VMSTATE_NFWORDS (sizeof(vmstate_fwords) / sizeof(vmstate_fwords[0]))

struct vmstate_hdr {
	char accel[16];
	uint64_t ram_size;
	uint32_t nregions;
	uint64_t gpa[VM_MAX_REGIONS], size[VM_MAX_REGIONS];
	uint32_t nvcpus;
	uint32_t ndevices;
	char devices[VM_MAX_DEVICES][32];
	uint32_t feat[VMSTATE_NFWORDS];
};

/* The feature words vm's guest sees (vCPU 0 speaks for all). */
static void
vmstate_features(struct vm *vm, uint32_t feat[VMSTATE_NFWORDS])
{
	for (size_t i = 0; i < VMSTATE_NFWORDS; i++) {
		const struct vmstate_fword *w = &vmstate_fwords[i];
		uint32_t r[4] = { 0 };

		if (vm->accel->cpuid != NULL && vm->nvcpus > 0)
			vm->accel->cpuid(vm->vcpus[0], w->leaf, w->sub, r);
		feat[i] = r[w->reg] & ~w->ignore;
	}
}

static void
vmstate_hdr_fill(struct vm *vm, struct vmstate_hdr *h)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->accel, sizeof(h->accel), "%s", vm->accel->name);
	h->ram_size = vm->ram_size;
	/* Guest RAM only: device memory (a framebuffer) is the device's. */
	for (int i = 0; i < vm->nregions; i++) {
		const struct mem_region *r = &vm->regions[i];

		if (r->hva < vm->ram || r->hva >= vm->ram + vm->ram_size)
			continue;
		h->gpa[h->nregions] = r->gpa;
		h->size[h->nregions++] = r->size;
	}
	h->nvcpus = (uint32_t)vm->nvcpus;
	h->ndevices = (uint32_t)vm->ndevices;
	for (int i = 0; i < vm->ndevices; i++)
		snprintf(h->devices[i], sizeof(h->devices[i]), "%s",
		    vm->devices[i].name);
	vmstate_features(vm, h->feat);
}

/* The header, both directions; counts are bounded before they index. */
static void
vmstate_hdr_snap(struct snap *s, struct vmstate_hdr *h)
{
	char n[32];

	snap_section_begin(s, "vmstate", VMSTATE_VERSION);
	snap_bytes(s, "accel", h->accel, sizeof(h->accel));
	snap_u64(s, "ram_size", &h->ram_size);
	snap_u32(s, "nregions", &h->nregions);
	if (snap_error(s) == 0 && h->nregions > VM_MAX_REGIONS)
		snap_fail(s, -EINVAL, "%u memory regions (at most %d)",
		    h->nregions, VM_MAX_REGIONS);
	for (uint32_t i = 0; i < h->nregions && snap_error(s) == 0; i++) {
		snprintf(n, sizeof(n), "region%u.gpa", i);
		snap_u64(s, n, &h->gpa[i]);
		snprintf(n, sizeof(n), "region%u.size", i);
		snap_u64(s, n, &h->size[i]);
	}
	snap_u32(s, "nvcpus", &h->nvcpus);
	snap_u32(s, "ndevices", &h->ndevices);
	if (snap_error(s) == 0 && h->ndevices > VM_MAX_DEVICES)
		snap_fail(s, -EINVAL, "%u devices (at most %d)", h->ndevices,
		    VM_MAX_DEVICES);
	for (uint32_t i = 0; i < h->ndevices && snap_error(s) == 0; i++) {
		snprintf(n, sizeof(n), "device%u", i);
		snap_bytes(s, n, h->devices[i], sizeof(h->devices[i]));
		if (memchr(h->devices[i], 0, sizeof(h->devices[i])) == NULL)
			snap_fail(s, -EINVAL, "device %u: name not terminated",
			    i);
	}
	for (size_t i = 0; i < VMSTATE_NFWORDS; i++)
		snap_u32(s, vmstate_fwords[i].name, &h->feat[i]);
	if (memchr(h->accel, 0, sizeof(h->accel)) == NULL)
		snap_fail(s, -EINVAL, "accelerator name not terminated");
	snap_section_end(s);
}

/* Append the names of the features in have but not in want to buf. */
static void
vmstate_missing_names(const struct vmstate_fword *w, uint32_t missing,
    char *buf, size_t len)
{
	for (int b = 0; b < 32; b++) {
		size_t used = strlen(buf);

		if (!(missing & (1u << b)))
			continue;
		if (w->bits[b] != NULL)
			snprintf(buf + used, len - used, " %s", w->bits[b]);
		else
			snprintf(buf + used, len - used, " %s[%d]", w->name, b);
	}
}

/* State moves between KVM and the software CPU: the interrupt
 * controllers are converted (vmstate_xirq.c). */
static bool
vmstate_cross(struct vm *vm, const struct vmstate_hdr *h)
{
	if (strcmp(h->accel, "kvm") == 0)
		return strcmp(vm->accel->name, "bt") == 0;
	return strcmp(h->accel, "bt") == 0 &&
	    strcmp(vm->accel->name, "kvm") == 0;
}

/*
 * The devices a VM may have gained since its state was saved, which
 * then keep their power-on state (QEMU's rule for a device without a
 * section): the virtio PCI functions.  The guest finds one only by
 * scanning PCI configuration space, which it did before the save, so it
 * holds no belief about it to contradict; a rescan finds a function in
 * reset, as after a hot-plug.  Because they come last in creation order
 * and take the first free slot, the functions the saved VM had keep
 * their slots and interrupt pins.  Everything else is refused: the
 * chips at fixed ports and addresses (the serial port, RTC, i8042, ACPI,
 * pvpanic, the interrupt controllers, the PCI host) and the display,
 * whose VGA text and framebuffer the boot protocol told the kernel
 * about, were probed at boot; a guest that found nothing there could
 * not be trusted to stay away.
 */
static const struct device_ops *const vmstate_addable[] = {
	&virtio_blk_ops, &virtio_input_ops, &virtio_net_ops, &virtio_rng_ops,
};

static bool
vmstate_may_be_absent(const struct device_inst *d)
{
	for (size_t i = 0; i < sizeof(vmstate_addable) /
	    sizeof(vmstate_addable[0]); i++)
		if (d->ops == vmstate_addable[i])
			return true;
	return false;
}

/*
 * The same devices in the same order; across accelerators, without
 * the software interrupt controllers (KVM has them in the kernel).  The
 * saved list may be a prefix of vm's when what follows may be absent
 * (vmstate_may_be_absent); *nsaved is then where vm's devices stop
 * having a section.  A device the saved VM had and vm lacks is refused
 * (its state would be lost), as is any other order or device.
 */
static int
vmstate_devices_check(struct vm *vm, const struct vmstate_hdr *h,
    struct snap *s, int *nsaved)
{
	bool cross = strcmp(h->accel, vm->accel->name) != 0;
	uint32_t i = 0;
	int k = 0;

	for (;;) {
		while (cross && k < vm->ndevices &&
		    vmstate_xirq_soft(&vm->devices[k]))
			k++;
		while (cross && i < h->ndevices &&
		    vmstate_xirq_soft_name(h->devices[i]))
			i++;
		if (i >= h->ndevices)
			break;
		if (k >= vm->ndevices ||
		    strcmp(h->devices[i], vm->devices[k].name) != 0)
			goto fail;
		i++;
		k++;
	}
	*nsaved = k;
	for (; k < vm->ndevices; k++)
		if (!vmstate_may_be_absent(&vm->devices[k])) {
			snap_fail(s, -EINVAL, "device %u is (none) in the saved "
			    "VM but %s here (only virtio devices can be added "
			    "to a VM with saved state)", i, vm->devices[k].name);
			return snap_error(s);
		}
	return 0;
fail:
	snap_fail(s, -EINVAL, "device %u is %s in the saved VM but %s here", i,
	    h->devices[i], k < vm->ndevices ? vm->devices[k].name : "(none)");
	return snap_error(s);
}

/* Is the saved VM the same shape as vm, and can vm's CPU run it? */
static int
vmstate_hdr_check(struct vm *vm, const struct vmstate_hdr *h,
    struct snap *s, int *nsaved)
{
	struct vmstate_hdr mine;
	char missing[512] = "";

	vmstate_hdr_fill(vm, &mine);
	if (h->ram_size != mine.ram_size) {
		snap_fail(s, -EINVAL, "the saved VM has %llu MiB of memory, "
		    "this one %llu MiB", (unsigned long long)(h->ram_size >> 20),
		    (unsigned long long)(mine.ram_size >> 20));
		return snap_error(s);
	}
	if (h->nregions != mine.nregions ||
	    memcmp(h->gpa, mine.gpa, sizeof(h->gpa)) != 0 ||
	    memcmp(h->size, mine.size, sizeof(h->size)) != 0) {
		snap_fail(s, -EINVAL, "the saved VM's memory layout differs "
		    "from this one's");
		return snap_error(s);
	}
	if (h->nvcpus != mine.nvcpus) {
		snap_fail(s, -EINVAL, "the saved VM has %u vCPUs, this one %u",
		    h->nvcpus, mine.nvcpus);
		return snap_error(s);
	}
	for (size_t i = 0; i < VMSTATE_NFWORDS; i++)
		vmstate_missing_names(&vmstate_fwords[i],
		    h->feat[i] & ~mine.feat[i], missing, sizeof(missing));
	if (missing[0] != '\0') {
		/* The message has room for about 80 characters of names. */
		if (strlen(missing) > 80) {
			missing[76] = '\0';
			strcpy(strrchr(missing, ' '), " ...");	/* it starts
								 * with one */
		}
		snap_fail(s, -ENOTSUP, "the guest was given CPU features the "
		    "%s accelerator here lacks:%s", vm->accel->name, missing);
		return snap_error(s);
	}
	if (strcmp(h->accel, mine.accel) != 0 && !vmstate_cross(vm, h)) {
		snap_fail(s, -ENOTSUP, "state saved under the %s accelerator "
		    "cannot be loaded under %s yet", h->accel, mine.accel);
		return snap_error(s);
	}
	return vmstate_devices_check(vm, h, s, nsaved);
}

/* The highest version this build reads of section name, 0 if it does
 * not know the name (the accelerator's hooks check their own). */
static uint32_t
vmstate_known_version(struct vm *vm, const char *name)
{
	if (strcmp(name, "vmstate") == 0)
		return VMSTATE_VERSION;
	if (strcmp(name, "end") == 0)
		return VMSTATE_END_VERSION;
	if (strncmp(name, "cpu.", 4) == 0)
		return VMSTATE_CPU_VERSION;
	for (int i = 0; i < vm->ndevices; i++)
		if (strcmp(vm->devices[i].name, name) == 0)
			return vm->devices[i].ops->snapshot_version;
	return 0;
}

/* Why the section at w's cursor cannot be framed: cut short, or bad. */
static void
vmstate_scan_fail(struct snap *s, const struct snap *w)
{
	size_t rem = w->len - w->pos, nl;
	uint32_t plen;

	if (rem == 0) {
		snap_fail(s, -EINVAL, "the state stream is truncated (it ends "
		    "before its end section)");
		return;
	}
	nl = rem >= 2 ? w->buf[w->pos + 1] : 0;
	if (w->buf[w->pos] == 'S' && (rem < 2 || rem < 10 + nl)) {
		snap_fail(s, -EINVAL, "the state stream is truncated at "
		    "offset %zu", s->pos + w->len);
		return;
	}
	if (w->buf[w->pos] == 'S') {
		memcpy(&plen, w->buf + w->pos + 6 + nl, 4);
		plen = le32toh(plen);
		if ((uint64_t)plen + 4 > rem - 10 - nl) {
			snap_fail(s, -EINVAL, "the state stream is truncated "
			    "at offset %zu", s->pos + w->len);
			return;
		}
	}
	snap_fail(s, -EINVAL, "malformed section header at offset %zu",
	    s->pos + w->pos);
}

/*
 * Walk every section from the cursor to "end" without changing
 * anything: framing, checksums and the versions this build knows.
 */
static int
vmstate_scan(struct vm *vm, struct snap *s)
{
	struct snap w;
	char name[64];
	bool ended = false;

	snap_init_load(&w, s->buf + s->pos, s->len - s->pos);
	while (!ended && snap_error(&w) == 0) {
		uint32_t known;

		if (snap_peek_section(&w, name, sizeof(name)) == NULL) {
			vmstate_scan_fail(s, &w);
			return snap_error(s);
		}
		known = vmstate_known_version(vm, name);
		snap_section_begin(&w, name, known ? known : UINT32_MAX);
		snap_section_end(&w);
		ended = strcmp(name, "end") == 0;
	}
	if (snap_error(&w) != 0) {
		snap_fail(s, snap_error(&w), "%s", w.errmsg);
		return snap_error(s);
	}
	return 0;
}

/* Skip the next section whatever it holds (checksum still checked). */
static void
vmstate_skip(struct snap *s, const char *name)
{
	snap_section_begin(s, name, UINT32_MAX);
	snap_section_end(s);
}

int
vmstate_save(struct vm *vm, struct snap *s)
{
	struct vmstate_hdr *h = calloc(1, sizeof(*h));
	struct cpu_state st;
	char n[32];
	int err;

	if (h == NULL) {
		snap_fail(s, -ENOMEM, "out of memory");
		return snap_error(s);
	}
	vmstate_hdr_fill(vm, h);
	vmstate_hdr_snap(s, h);
	free(h);
	/* One instant for the TSC and every device timer. */
	vclock_hold(true);
	for (int i = 0; i < vm->nvcpus && snap_error(s) == 0; i++) {
		if ((err = vm->accel->get_state(vm->vcpus[i], &st)) < 0) {
			snap_fail(s, err, "vCPU %d: cannot read its state: %s",
			    i, strerror(-err));
			break;
		}
		snprintf(n, sizeof(n), "cpu.%d", i);
		snap_section_begin(s, n, VMSTATE_CPU_VERSION);
		cpu_state_snapshot(&st, s);
		snap_section_end(s);
	}
	for (int i = 0; i < vm->nvcpus && snap_error(s) == 0; i++)
		if (vm->accel->vcpu_snapshot != NULL)
			vm->accel->vcpu_snapshot(vm->vcpus[i], s);
	if (snap_error(s) == 0)
		devices_snapshot(vm, s);
	if (snap_error(s) == 0 && vm->accel->vm_snapshot != NULL)
		vm->accel->vm_snapshot(vm, s);
	vclock_hold(false);
	snap_section_begin(s, "end", VMSTATE_END_VERSION);
	snap_section_end(s);
	return snap_error(s);
}

/* Read every vCPU's state into st[] (nothing changes yet). */
static int
vmstate_load_cpus(struct vm *vm, struct snap *s, struct cpu_state *st)
{
	char n[32];

	for (int i = 0; i < vm->nvcpus && snap_error(s) == 0; i++) {
		snprintf(n, sizeof(n), "cpu.%d", i);
		memset(&st[i], 0, sizeof(st[i]));
		snap_section_begin(s, n, VMSTATE_CPU_VERSION);
		cpu_state_snapshot(&st[i], s);
		snap_section_end(s);
	}
	return snap_error(s);
}

/* The writer's accelerator sections at the cursor: loaded by our hook
 * when the writer was this accelerator, else skipped. */
static void
vmstate_load_accel(struct vm *vm, struct snap *s, const char *writer,
    struct vcpu *vcpu)
{
	char name[64], pfx[24];

	snprintf(pfx, sizeof(pfx), "%s.", writer);
	if (strcmp(writer, vm->accel->name) == 0) {
		if (vcpu != NULL && vm->accel->vcpu_snapshot != NULL)
			vm->accel->vcpu_snapshot(vcpu, s);
		if (vcpu == NULL && vm->accel->vm_snapshot != NULL)
			vm->accel->vm_snapshot(vm, s);
		return;
	}
	if (snap_peek_section(s, name, sizeof(name)) != NULL &&
	    strncmp(name, pfx, strlen(pfx)) == 0)
		vmstate_skip(s, name);
}

/* The rest of a KVM stream into the software CPU's VM: KVM's sections
 * are read for the interrupt controllers, the other devices load as
 * they are. */
static void
vmstate_load_cross(struct vm *vm, struct snap *s, const struct cpu_state *st,
    int nsaved)
{
	struct vmstate_xirq *x = calloc(1, sizeof(*x));

	if (x == NULL) {
		snap_fail(s, -ENOMEM, "out of memory");
		return;
	}
	for (int i = 0; i < vm->nvcpus && snap_error(s) == 0; i++)
		vmstate_xirq_kvm_cpu(s, i, x);
	for (int i = 0; i < nsaved && snap_error(s) == 0; i++) {
		struct device_inst *d = &vm->devices[i];

		if (vmstate_xirq_soft(d))
			continue;
		if (snap_section_begin(s, d->name,
		    d->ops->snapshot_version) == 0)
			d->ops->snapshot(d->state, s);
		snap_section_end(s);
	}
	if (snap_error(s) == 0 && vmstate_xirq_kvm_vm(s, x) == 0)
		vmstate_xirq_load_soft(vm, x, st, s);
	free(x);
}

/* The rest of a software CPU's stream into a KVM VM: its interrupt
 * controllers' sections are read and given to KVM; the vCPUs waiting
 * for a start-up IPI wait in KVM too. */
static void
vmstate_load_to_kvm(struct vm *vm, struct snap *s, const struct cpu_state *st,
    int nsaved)
{
	struct vmstate_xirq *x = calloc(1, sizeof(*x));
	char name[64], n[32];
	int k = 0;

	if (x == NULL) {
		snap_fail(s, -ENOMEM, "out of memory");
		return;
	}
	for (int i = 0; i < vm->nvcpus && snap_error(s) == 0; i++) {
		uint8_t wait = 0;

		snprintf(n, sizeof(n), "bt.cpu.%d", i);
		snap_section_begin(s, n, UINT32_MAX);
		snap_u8(s, "wait_sipi", &wait);
		snap_section_end(s);
		x->mp_state[i] = wait ? 2 : 0;	/* KVM_MP_STATE_INIT_RECEIVED */
	}
	while (snap_error(s) == 0 &&
	    snap_peek_section(s, name, sizeof(name)) != NULL &&
	    strcmp(name, "bt.vm") != 0 && strcmp(name, "end") != 0) {
		struct device_inst *d;

		if (vmstate_xirq_soft_name(name)) {
			vmstate_xirq_read_soft(s, name, x, vm->nvcpus);
			continue;
		}
		if (k >= nsaved) {
			snap_fail(s, -EINVAL, "unexpected section %s", name);
			break;
		}
		d = &vm->devices[k++];
		if (snap_section_begin(s, d->name,
		    d->ops->snapshot_version) == 0)
			d->ops->snapshot(d->state, s);
		snap_section_end(s);
	}
	/* A device the header listed but the stream lacks: the same
	 * "expected section" refusal as on the other paths. */
	if (snap_error(s) == 0 && k < nsaved)
		snap_section_begin(s, vm->devices[k].name,
		    vm->devices[k].ops->snapshot_version);
	if (snap_error(s) == 0 && snap_peek_section(s, name, sizeof(name)) &&
	    strcmp(name, "bt.vm") == 0)
		vmstate_skip(s, name);	/* the TSC came with each vCPU */
	if (snap_error(s) == 0)
		vmstate_xirq_load_kvm(vm, x, st, s);
	free(x);
}

/*
 * Put the devices the saved VM lacked, [nsaved, ndevices), at power-on,
 * before any device loads.  vm_create() placed their BARs as firmware
 * would, beside BARs placed without them in the saved VM: left there,
 * they could hold an address a loaded BAR must take.  The PCI host's
 * reset takes every function's PCI part to power-on (decoding off, BARs
 * 0); the functions with a section then get theirs back from it, and
 * each absent one's own reset does the rest.  No BARs are assigned
 * afterwards: in the saved VM firmware had run without the device, and
 * assigning would also move any BAR a loaded function has at 0.  A
 * guest that rescans assigns them, as for a hot-plugged function.
 */
static void
vmstate_reset_absent(struct vm *vm, int nsaved)
{
	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].ops == &pci_host_ops &&
		    vm->devices[i].ops->reset != NULL)
			vm->devices[i].ops->reset(vm->devices[i].state);
	for (int i = nsaved; i < vm->ndevices; i++)
		if (vm->devices[i].ops->reset != NULL)
			vm->devices[i].ops->reset(vm->devices[i].state);
}

/* Say which devices came up in reset state (after a load that worked):
 * a warning, since the guest does not see them until it looks again
 * (a PCI rescan), which the user should know without -v. */
static void
vmstate_log_absent(struct vm *vm, int nsaved)
{
	char names[256] = "";

	for (int i = nsaved; i < vm->ndevices; i++) {
		size_t used = strlen(names);

		snprintf(names + used, sizeof(names) - used, "%s%s",
		    used ? ", " : "", vm->devices[i].name);
	}
	log_warnx("the saved VM had no %s: left in reset state", names);
}

int
vmstate_load(struct vm *vm, struct snap *s)
{
	struct vmstate_hdr *h = calloc(1, sizeof(*h));
	struct cpu_state *st = calloc(VM_MAX_VCPUS, sizeof(*st));
	int err, nsaved = 0;

	if (h == NULL || st == NULL) {
		snap_fail(s, -ENOMEM, "out of memory");
		goto out;
	}
	if (vmstate_scan(vm, s) < 0)
		goto out;
	vmstate_hdr_snap(s, h);
	if (snap_error(s) != 0 || vmstate_hdr_check(vm, h, s, &nsaved) < 0)
		goto out;
	if (vmstate_load_cpus(vm, s, st) < 0)
		goto out;
	/* From here on the VM changes, at one instant of the clock. */
	vclock_hold(true);
	for (int i = 0; i < vm->nvcpus; i++) {
		if ((err = vm->accel->set_state(vm->vcpus[i], &st[i])) < 0) {
			snap_fail(s, err, "vCPU %d: the %s accelerator refused "
			    "its state: %s", i, vm->accel->name,
			    strerror(-err));
			goto out;
		}
	}
	if (nsaved < vm->ndevices)
		vmstate_reset_absent(vm, nsaved);
	if (strcmp(h->accel, vm->accel->name) != 0) {
		if (vm->accel->kernel_irqchip)
			vmstate_load_to_kvm(vm, s, st, nsaved);
		else
			vmstate_load_cross(vm, s, st, nsaved);
		goto end;
	}
	for (int i = 0; i < vm->nvcpus && snap_error(s) == 0; i++)
		vmstate_load_accel(vm, s, h->accel, vm->vcpus[i]);
	if (snap_error(s) == 0)
		devices_snapshot_n(vm, s, nsaved);
	if (snap_error(s) == 0)
		vmstate_load_accel(vm, s, h->accel, NULL);
end:
	snap_section_begin(s, "end", VMSTATE_END_VERSION);
	snap_section_end(s);
	if (snap_error(s) == 0 && nsaved < vm->ndevices)
		vmstate_log_absent(vm, nsaved);
out:
	vclock_hold(false);
	free(h);
	free(st);
	if (snap_error(s) != 0)
		vm_request_exit(vm, VM_EVENT_ERROR, 1);
	return snap_error(s);
}
