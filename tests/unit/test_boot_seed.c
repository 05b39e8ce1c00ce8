/*
 * The boot-time RNG seed: a bzImage fixture (a setup header built byte by
 * byte, a payload of NOPs) loaded through boot_load(), then the
 * setup_data list read back from guest memory as Linux's
 * parse_setup_data() walks it: one SETUP_RNG_SEED entry of 32 bytes, in
 * RAM the e820 map offers, clear of everything else the loader placed.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hv/boot.h"
#include "hv/cpu_state.h"
#include "null_accel.h"

#define MEM		(64ull << 20)
#define SETUP_SECTS	4
#define SETUP_SIZE	((SETUP_SECTS + 1) * 512)
#define PAYLOAD		8192
#define SETUP_RNG_SEED	9

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static char kpath[64], rdpath[64];

/* A bzImage of boot protocol ver, 64-bit entry or not. */
static void
write_kernel(uint16_t ver, bool is64)
{
	static uint8_t k[SETUP_SIZE + PAYLOAD];
	int fd;

	memset(k, 0, sizeof(k));
	memset(k + SETUP_SIZE, 0x90, PAYLOAD);
	k[0x1f1] = SETUP_SECTS;
	wr16(k + 0x1fe, 0xaa55);
	k[0x200] = 0xeb;		/* jmp to the end of the header */
	k[0x201] = 0x68 - 2;		/* header up to 0x268 */
	memcpy(k + 0x202, "HdrS", 4);
	wr16(k + 0x206, ver);
	k[0x211] = 0x01;		/* LOADED_HIGH */
	wr32(k + 0x22c, 0x37ffffff);	/* initrd_addr_max */
	wr32(k + 0x230, 0x200000);	/* kernel_alignment */
	wr32(k + 0x238, 2048);		/* cmdline_size */
	if (is64)
		wr16(k + 0x236, 0x01);	/* XLF_KERNEL_64 */
	snprintf(kpath, sizeof(kpath), "/tmp/tv-seed-k-XXXXXX");
	cr_assert((fd = mkstemp(kpath)) >= 0);
	cr_assert_eq(write(fd, k, sizeof(k)), (ssize_t)sizeof(k));
	close(fd);
}

static void
write_initrd(void)
{
	static uint8_t rd[100000];
	int fd;

	memset(rd, 0x5a, sizeof(rd));
	snprintf(rdpath, sizeof(rdpath), "/tmp/tv-seed-rd-XXXXXX");
	cr_assert((fd = mkstemp(rdpath)) >= 0);
	cr_assert_eq(write(fd, rd, sizeof(rd)), (ssize_t)sizeof(rd));
	close(fd);
}

/* Boot the fixture; the guest address of its setup header. */
static uint64_t
boot(struct vm **vmp, struct vm_config *cfg, uint16_t ver, bool is64)
{
	struct cpu_state st;
	char err[256];

	*vmp = null_vm(cfg, MEM, 1);
	cr_assert_not_null(*vmp);
	write_kernel(ver, is64);
	write_initrd();
	snprintf(cfg->kernel, sizeof(cfg->kernel), "%s", kpath);
	snprintf(cfg->initrd, sizeof(cfg->initrd), "%s", rdpath);
	snprintf(cfg->append, sizeof(cfg->append), "console=ttyS0");
	cfg->bzimage_entry = true;
	cr_assert_eq(boot_load(*vmp, cfg, &st, err, sizeof(err)), 0, "%s",
	    err);
	unlink(kpath);
	unlink(rdpath);
	if (is64) {
		cr_assert_eq(st.gpr[R_RSI], BOOT_ZEROPAGE_ADDR);
		return BOOT_ZEROPAGE_ADDR;
	}
	cr_assert_eq(st.seg[SEG_DS].base, BOOT_REALMODE_ADDR);
	return BOOT_REALMODE_ADDR;
}

static bool
overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/*
 * Walk the setup_data list from the header at hdr as the kernel does;
 * check the one seed entry and return its address.
 */
static uint64_t
check_seed(struct vm *vm, uint64_t hdr, uint8_t seed[32])
{
	uint8_t *bp = vm_gpa_to_hva(vm, hdr, 4096), *sd;
	struct e820_entry t[BOOT_E820_MAX];
	uint64_t pa = rd64(bp + 0x250), rd = rd32(bp + 0x218);
	bool in_ram = false;
	int n;

	cr_assert_neq(pa, 0, "no setup_data");
	sd = vm_gpa_to_hva(vm, pa, 16 + 32);
	cr_assert_not_null(sd, "setup_data at %#llx is outside RAM",
	    (unsigned long long)pa);
	cr_assert_eq(rd64(sd), 0, "one entry: next is 0");
	cr_assert_eq(rd32(sd + 8), SETUP_RNG_SEED, "type");
	cr_assert_eq(rd32(sd + 12), 32, "len");
	memcpy(seed, sd + 16, 32);
	for (int i = 0, zero = 0; i < 32; i++)
		if (seed[i] == 0 && ++zero == 32)
			cr_assert_fail("a seed of zeros");
	/* Usable RAM in the memory map, so the kernel can reserve it. */
	n = boot_e820(vm, t, BOOT_E820_MAX);
	for (int i = 0; i < n; i++)
		if (t[i].type == E820_RAM && pa >= t[i].addr &&
		    pa + 48 <= t[i].addr + t[i].size)
			in_ram = true;
	cr_assert(in_ram, "setup_data at %#llx not in e820 RAM",
	    (unsigned long long)pa);
	/* Clear of what the loader put elsewhere. */
	cr_assert_not(overlaps(pa, 48, hdr, 4096), "zeropage");
	cr_assert_not(overlaps(pa, 48, BOOT_GDT_ADDR, 32), "GDT");
	cr_assert_not(overlaps(pa, 48, BOOT_PML4_ADDR, 6 * 4096),
	    "page tables");
	cr_assert_not(overlaps(pa, 48, BOOT_CMDLINE_ADDR, BOOT_CMDLINE_MAX),
	    "command line");
	cr_assert_not(overlaps(pa, 48, BOOT_REALMODE_ADDR, 0x10000 + 2048),
	    "real-mode setup, heap and command line");
	cr_assert_not(overlaps(pa, 48, BOOT_HIGH_ADDR, PAYLOAD), "kernel");
	cr_assert_not(overlaps(pa, 48, rd, 100000), "initrd");
	cr_assert_eq(rd32(bp + 0x21c), 100000, "initrd size");
	return pa;
}

Test(boot_seed, bzimage_64bit_entry_gets_a_seed)
{
	struct vm_config cfg;
	struct vm *vm;
	uint8_t a[32], b[32];
	uint64_t hdr;

	hdr = boot(&vm, &cfg, 0x20f, true);
	check_seed(vm, hdr, a);
	cr_assert_eq(rd16((uint8_t *)vm_gpa_to_hva(vm, hdr + 0x206, 2)),
	    0x20f, "the kernel's header");
	vm_destroy(vm);
	/* Each boot draws a new seed. */
	hdr = boot(&vm, &cfg, 0x20f, true);
	check_seed(vm, hdr, b);
	cr_assert(memcmp(a, b, 32) != 0, "the same seed twice");
	vm_destroy(vm);
}

Test(boot_seed, real_mode_entry_gets_a_seed)
{
	struct vm_config cfg;
	struct vm *vm;
	uint8_t s[32];
	uint64_t hdr;

	hdr = boot(&vm, &cfg, 0x209, false);
	check_seed(vm, hdr, s);
	vm_destroy(vm);
}

/* Protocol 2.08 has no setup_data field: nothing is written there. */
Test(boot_seed, before_2_09_no_seed)
{
	struct vm_config cfg;
	struct vm *vm;
	uint64_t hdr;

	hdr = boot(&vm, &cfg, 0x208, true);
	cr_assert_eq(rd64(vm_gpa_to_hva(vm, hdr + 0x250, 8)), 0);
	vm_destroy(vm);
	hdr = boot(&vm, &cfg, 0x208, false);
	cr_assert_eq(rd64(vm_gpa_to_hva(vm, hdr + 0x250, 8)), 0);
	vm_destroy(vm);
}
