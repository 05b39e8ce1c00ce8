/*
 * virtio-rng driven as Linux's virtio_rng driver uses it: find the
 * function on bus 0, set its one queue up, post device-writable buffers
 * and kick; the used ring says how many bytes the device wrote.  Then
 * what a hostile driver may post instead: read-only buffers, buffers
 * outside RAM, huge buffers, descriptor loops.  Last, the device across
 * a whole-VM snapshot, and a snapshot from before the device existed
 * (the device then starts in reset state).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "null_accel.h"
#include "run.h"
#include "virtio_harness.h"
#include "devices/bus.h"
#include "devices/pci.h"
#include "devices/virtio.h"
#include "devices/virtio_rng.h"
#include "hv/accel.h"
#include "migrate/snap.h"
#include "migrate/vmstate.h"
#include "vmfs/vmx.h"

#define RAM		(32u << 20)
#define QSIZE		16
#define Q_DESC		0x100000ull
#define Q_AVAIL		0x101000ull
#define Q_USED		0x102000ull
#define BUF		0x200000ull	/* request buffers from here */

static const struct vh_ring rq = { Q_DESC, Q_AVAIL, Q_USED, QSIZE };
static struct vm_config cfg;
static uint16_t avail_idx, used_seen;

/* Find the function as the PCI core does; false if there is none. */
static bool
find(void)
{
	return vh_find(VIRTIO_ID_RNG);
}

static void
probe(void)
{
	vh_probe(VIRTIO_ID_RNG, false);
}

static void
setup(void)
{
	int err;

	vm_config_defaults(&cfg);
	cfg.memory = RAM;
	vm = vm_create(&cfg, &null_accel_ops, &err);
	cr_assert_not_null(vm, "vm_create: %d", err);
	probe();
	avail_idx = used_seen = 0;
}

static void
teardown(void)
{
	vm_destroy(vm);
}

TestSuite(virtio_rng, .init = setup, .fini = teardown, .timeout = 30);

/* Reset, VERSION_1, the request queue, DRIVER_OK. */
static void
driver_init(void)
{
	vh_begin();
	cr_assert(device_features() >> VIRTIO_F_VERSION_1 & 1, "VERSION_1");
	vh_negotiate(1ull << VIRTIO_F_VERSION_1);
	cr_assert_eq(mmio_rd(common + VIRTIO_COMMON_NUMQ, 2), 1,
	    "one queue, requestq");
	vh_queue_setup(0, &rq, VIRTIO_NO_VECTOR);
	vh_driver_ok();
	avail_idx = used_seen = 0;
}

/* Make head available and kick. */
static void
kick(uint16_t head)
{
	vh_avail(&rq, &avail_idx, head);
	vh_notify(0);
}

/* The next used element's length (its id must be head); -1 if none. */
static int64_t
used(uint16_t head)
{
	uint32_t id, len;

	if (vh_used_idx(&rq) == used_seen)
		return -1;
	vh_used_elem(&rq, used_seen++, &id, &len);
	cr_assert_eq(id, head, "used id %u, posted %u", id, head);
	return len;
}

static uint8_t *
buf(uint64_t off, size_t len)
{
	return vm_gpa_to_hva(vm, BUF + off, len);
}

static bool
all(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* One writable buffer of len at BUF + off, as descriptor 0: used len. */
static int64_t
request(uint64_t off, uint32_t len)
{
	vh_desc(&rq, 0, BUF + off, len, VIRTQ_DESC_F_WRITE, 0);
	kick(0);
	return used(0);
}

Test(virtio_rng, looks_like_virtio_rng)
{
	cr_assert_eq(cfg_rd(PCI_CLASS_PROG + 2, 1), 0x00, "class");
	cr_assert_eq(cfg_rd(PCI_CLASS_PROG + 1, 1), 0xff, "subclass");
	cr_assert_eq(cfg_rd(PCI_REVISION, 1), 1, "modern-only");
	cr_assert_not(devcfg, "virtio-rng has no configuration");
	cr_assert_not_null(virtio_rng_find(vm));
}

Test(virtio_rng, requests_are_filled_with_fresh_bytes)
{
	uint8_t first[64];

	driver_init();
	memset(buf(0, 4096), 0, 4096);
	cr_assert_eq(request(0, 64), 64);
	cr_assert_not(all(buf(0, 64), 64, 0), "64 zero bytes");
	cr_assert(all(buf(64, 64), 64, 0), "wrote past the buffer");
	memcpy(first, buf(0, 64), 64);
	cr_assert_eq(request(0, 64), 64);
	cr_assert(memcmp(first, buf(0, 64), 64) != 0, "the same bytes twice");
	/* Linux's driver posts odd sizes too. */
	cr_assert_eq(request(1000, 1), 1);
	cr_assert_eq(used(0), -1, "one used element per request");
	cr_assert_eq(virtio_rng_bytes(virtio_rng_find(vm)), 129);
	cr_assert(dev_status() & VIRTIO_S_DRIVER_OK);
}

/* A chain: read-only bytes are left alone and not counted. */
Test(virtio_rng, only_writable_buffers_are_written)
{
	driver_init();
	memset(buf(0, 4096), 0, 4096);
	memset(buf(0, 32), 0xaa, 32);
	vh_desc(&rq, 0, BUF, 32, VIRTQ_DESC_F_NEXT, 1);
	vh_desc(&rq, 1, BUF + 512, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
	    2);
	vh_desc(&rq, 2, BUF + 1024, 48, VIRTQ_DESC_F_WRITE, 0);
	kick(0);
	cr_assert_eq(used(0), 64, "16 + 48 writable bytes");
	cr_assert(all(buf(0, 32), 32, 0xaa), "a read-only buffer was written");
	cr_assert_not(all(buf(512, 16), 16, 0));
	cr_assert_not(all(buf(1024, 48), 48, 0));
	cr_assert(all(buf(1024 + 48, 64), 64, 0));
}

/* Nothing writable: an empty answer, no write, the device goes on. */
Test(virtio_rng, read_only_request_gets_nothing)
{
	driver_init();
	memset(buf(0, 64), 0x55, 64);
	vh_desc(&rq, 0, BUF, 64, 0, 0);
	kick(0);
	cr_assert_eq(used(0), 0);
	cr_assert(all(buf(0, 64), 64, 0x55));
	cr_assert_eq(dev_status() & VIRTIO_S_NEEDS_RESET, 0);
	cr_assert_eq(request(0, 8), 8, "the queue still works");
}

/* Huge buffers get VIRTIO_RNG_REQ_MAX bytes, not more. */
Test(virtio_rng, huge_request_is_bounded)
{
	uint32_t big = 4 * VIRTIO_RNG_REQ_MAX;

	driver_init();
	memset(buf(0, big), 0, big);
	cr_assert_eq(request(0, big), VIRTIO_RNG_REQ_MAX);
	cr_assert_not(all(buf(VIRTIO_RNG_REQ_MAX - 64, 64), 64, 0));
	cr_assert(all(buf(VIRTIO_RNG_REQ_MAX, big - VIRTIO_RNG_REQ_MAX),
	    big - VIRTIO_RNG_REQ_MAX, 0), "wrote past the bound");
	/* Split over a chain, the bound is for the request. */
	memset(buf(0, big), 0, big);
	vh_desc(&rq, 0, BUF, VIRTIO_RNG_REQ_MAX - 100, VIRTQ_DESC_F_WRITE |
	    VIRTQ_DESC_F_NEXT, 1);
	vh_desc(&rq, 1, BUF + VIRTIO_RNG_REQ_MAX, 1000, VIRTQ_DESC_F_WRITE, 0);
	kick(0);
	cr_assert_eq(used(0), VIRTIO_RNG_REQ_MAX);
	cr_assert(all(buf(VIRTIO_RNG_REQ_MAX + 100, 900), 900, 0));
}

static void
expect_needs_reset(const char *what)
{
	cr_assert(dev_status() & VIRTIO_S_NEEDS_RESET, "%s: no NEEDS_RESET",
	    what);
	cr_assert_eq(used(0), -1, "%s: answered", what);
	driver_init();
	cr_assert_eq(request(0, 16), 16, "%s: no recovery after reset", what);
}

Test(virtio_rng, buffers_outside_ram_are_refused)
{
	driver_init();
	/* Straddling the end of RAM. */
	vh_desc(&rq, 0, RAM - 8, 64, VIRTQ_DESC_F_WRITE, 0);
	kick(0);
	expect_needs_reset("across the end of RAM");
	/* Far outside, and a length that wraps the address. */
	vh_desc(&rq, 0, 0xfffffffff0000000ull, 4096, VIRTQ_DESC_F_WRITE, 0);
	kick(0);
	expect_needs_reset("outside RAM");
	vh_desc(&rq, 0, BUF, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
	kick(0);
	expect_needs_reset("4 GiB in 32 MiB of RAM");
	vh_desc(&rq, 0, 0xfffffffffffff000ull, 0x2000, VIRTQ_DESC_F_WRITE, 0);
	kick(0);
	expect_needs_reset("an address that wraps");
}

Test(virtio_rng, descriptor_loop_is_refused)
{
	driver_init();
	vh_desc(&rq, 0, BUF, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	vh_desc(&rq, 1, BUF + 8, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	kick(0);
	expect_needs_reset("a loop");
	vh_desc(&rq, 0, BUF, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
	    QSIZE + 3);
	kick(0);
	expect_needs_reset("next out of the table");
}

/* Is there a virtio-rng in a VM with this rng setting (NULL: default)? */
static bool
has_rng(const char *rng)
{
	struct vm *v2;
	struct vm_config c2;
	bool yes;
	int err;

	vm_config_defaults(&c2);
	c2.memory = RAM;
	if (rng != NULL)
		snprintf(c2.rng, sizeof(c2.rng), "%s", rng);
	v2 = vm_create(&c2, &null_accel_ops, &err);
	cr_assert_not_null(v2, "vm_create: %d", err);
	yes = virtio_rng_find(v2) != NULL;
	vm_destroy(v2);
	return yes;
}

Test(virtio_rng, there_by_default_absent_when_off)
{
	cr_assert(has_rng(NULL));
	cr_assert(has_rng("on"));
	cr_assert_not(has_rng("off"));
}

/* rng = "off" in a .vmx file, and back out of a configuration. */
Test(virtio_rng, vmx_key)
{
	static const char in[] = "name = \"a\"\nrng = \"off\"\n";
	struct vmx_doc doc = { 0 }, out = { 0 };
	struct vm_config c;
	char e[256];

	cr_assert_eq(vmx_parse(&doc, "t.vmx", in, strlen(in), e, sizeof(e)),
	    0, "%s", e);
	cr_assert_eq(vmx_to_config(&doc, NULL, &c, e, sizeof(e)), 0, "%s", e);
	cr_assert_str_eq(c.rng, "off");
	cr_assert_not(virtio_rng_wanted(&c));
	cr_assert_eq(vmx_from_config(&out, &c), 0);
	cr_assert_str_eq(vmx_get(&out, "rng"), "off");
	vmx_free(&out);
	vm_config_defaults(&c);
	cr_assert_eq(vmx_from_config(&out, &c), 0);
	cr_assert_null(vmx_get(&out, "rng"), "the default is not written");
	vmx_free(&out);
	vmx_free(&doc);
	cr_assert_neq(vmx_check("rng", "maybe", e, sizeof(e)), 0);
	cr_assert(strstr(e, "on or off") != NULL, "%s", e);
}

/* termvisor run --rng, alone and over a datastore VM's configuration. */
Test(virtio_rng, run_option)
{
	char *on[] = { "run", "--kernel", "/k", "--rng", "on", NULL };
	char *off[] = { "run", "--kernel", "/k", "--rng", "off", NULL };
	char *bad[] = { "run", "--kernel", "/k", "--rng", "yes", NULL };
	char *none[] = { "run", "--kernel", "/k", NULL };
	struct vm_config c, vmc;
	struct run_args a;
	char e[256];

	cr_assert_eq(run_parse_args(3, none, &c, &a, e, sizeof(e)), 0, "%s", e);
	cr_assert(virtio_rng_wanted(&c), "on by default");
	cr_assert_eq(run_parse_args(5, on, &c, &a, e, sizeof(e)), 0, "%s", e);
	cr_assert(virtio_rng_wanted(&c));
	cr_assert_eq(run_parse_args(5, bad, &c, &a, e, sizeof(e)), -1);
	cr_assert(strstr(e, "--rng yes") != NULL, "%s", e);
	cr_assert_eq(run_parse_args(5, off, &c, &a, e, sizeof(e)), 0, "%s", e);
	cr_assert_not(virtio_rng_wanted(&c));
	/* Over a configuration that has it: the option wins ... */
	vm_config_defaults(&vmc);
	cr_assert_eq(run_merge(&vmc, &c, &a, e, sizeof(e)), 0, "%s", e);
	cr_assert_not(virtio_rng_wanted(&vmc));
	/* ... and without the option, the configuration's rng stays. */
	cr_assert_eq(run_parse_args(3, none, &c, &a, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(run_merge(&vmc, &c, &a, e, sizeof(e)), 0, "%s", e);
	cr_assert_not(virtio_rng_wanted(&vmc));
}

/* --- whole-VM state, on the software CPU (vmstate reads its vCPUs) --- */

static struct vm *
bt_vm(const char *rng)
{
	static struct vm_config c[2];
	static int n;
	struct vm_config *cp = &c[n++ % 2];
	struct vm *v;
	int err = 0;

	vm_config_defaults(cp);
	cp->memory = RAM;
	snprintf(cp->rng, sizeof(cp->rng), "%s", rng);
	v = vm_create(cp, &bt_accel_ops, &err);
	cr_assert_not_null(v, "vm_create: %d", err);
	return v;
}

Test(virtio_rng, snapshot_restores_the_queue)
{
	struct vm *b;
	struct snap s, l;
	uint16_t seen;

	/* vmstate reads the vCPUs: the software CPU, not the null one. */
	vm_destroy(vm);
	vm = bt_vm("on");
	probe();
	driver_init();
	cr_assert_eq(request(0, 32), 32);
	cr_assert_eq(request(0, 32), 32);
	seen = used_seen;
	snap_init_save(&s);
	cr_assert_eq(vmstate_save(vm, &s), 0, "%s", s.errmsg);
	b = bt_vm("on");
	memcpy(b->ram, vm->ram, RAM);
	snap_init_load(&l, s.buf, s.len);
	cr_assert_eq(vmstate_load(b, &l), 0, "%s", l.errmsg);
	cr_assert_eq(l.pos, l.len, "the whole stream was read");
	vm_destroy(vm);
	vm = b;
	probe();
	cr_assert(dev_status() & VIRTIO_S_DRIVER_OK);
	/* The rings continue where they were. */
	used_seen = avail_idx = seen;
	memset(buf(0, 32), 0, 32);
	cr_assert_eq(request(0, 32), 32);
	cr_assert_not(all(buf(0, 32), 32, 0));
	snap_free(&s);
}

/* A snapshot taken before the device existed (or with rng off) loads
 * into a VM that has it: the rng is left at power-on (whatever the
 * driver had done), where a guest that rescans the bus finds it and can
 * use it.  The other way the saved VM's rng would be lost: refused,
 * naming it. */
Test(virtio_rng, snapshot_without_the_device_leaves_it_in_reset)
{
	struct vm *a = bt_vm("off");
	struct snap s, l;

	snap_init_save(&s);
	cr_assert_eq(vmstate_save(a, &s), 0, "%s", s.errmsg);
	vm_destroy(vm);
	vm = bt_vm("on");
	probe();
	driver_init();
	cr_assert_eq(request(0, 32), 32);
	snap_init_load(&l, s.buf, s.len);
	cr_assert_eq(vmstate_load(vm, &l), 0, "%s", l.errmsg);
	cr_assert_eq(l.pos, l.len, "the whole stream was read");
	cr_assert(find(), "the function is still on the bus");
	cr_assert_eq(cfg_rd(PCI_COMMAND, 2) & (PCI_CMD_IO | PCI_CMD_MEM |
	    PCI_CMD_MASTER), 0);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(cfg_rd(PCI_BAR0 + 4 * i, 4) & ~0xfu, 0, "BAR%d",
		    i);
	/* A rescan assigns its BARs; the driver finds it fresh. */
	pthread_mutex_lock(&vm->devlock);
	cr_assert_eq(pci_assign_bars(vm), 0);
	pthread_mutex_unlock(&vm->devlock);
	probe();
	cr_assert_eq(dev_status(), 0);
	driver_init();
	memset(buf(0, 32), 0, 32);
	cr_assert_eq(request(0, 32), 32);
	cr_assert_not(all(buf(0, 32), 32, 0));
	vm_destroy(a);
	snap_free(&s);

	snap_init_save(&s);
	cr_assert_eq(vmstate_save(vm, &s), 0, "%s", s.errmsg);
	a = bt_vm("off");
	snap_init_load(&l, s.buf, s.len);
	cr_assert_eq(vmstate_load(a, &l), -EINVAL);
	cr_assert(strstr(l.errmsg, "virtio-rng0 in the saved VM but (none) "
	    "here") != NULL, "%s", l.errmsg);
	vm_destroy(a);
	snap_free(&s);
}
