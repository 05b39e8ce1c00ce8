#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "devices/display.h"
#include "devices/fb_internal.h"
#include "hv/boot.h"
#include "null_accel.h"
#include "run.h"

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint8_t
sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static char guest_kernel[4096], guest_initrd[4096];

static bool
have_reference_guest(void)
{
	char dir[4000];

	run_guest_dir(dir, sizeof(dir));
	snprintf(guest_kernel, sizeof(guest_kernel), "%s/vmlinuz", dir);
	snprintf(guest_initrd, sizeof(guest_initrd), "%s/initrd.img", dir);
	return access(guest_kernel, R_OK) == 0 && access(guest_initrd, R_OK) == 0;
}

static const char *
tmpfile_with(const void *data, size_t len)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/tv-boot-XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

Test(boot, debian_bzimage_64bit_entry)
{
	struct vm_config cfg;
	struct cpu_state st;
	struct vm *vm;
	char err[256];
	uint8_t *bp;
	FILE *f;
	long rdsize;

	if (!have_reference_guest())
		cr_skip_test("reference guest not built (make guest)");
	vm = null_vm(&cfg, 512ull << 20, 2);
	cr_assert_not_null(vm);
	snprintf(cfg.kernel, sizeof(cfg.kernel), "%s", guest_kernel);
	snprintf(cfg.initrd, sizeof(cfg.initrd), "%s", guest_initrd);
	snprintf(cfg.append, sizeof(cfg.append), "console=ttyS0 hello=1");
	cfg.bzimage_entry = true;
	cr_assert_eq(boot_load(vm, &cfg, &st, err, sizeof(err)), 0, "%s", err);
	bp = vm_gpa_to_hva(vm, BOOT_ZEROPAGE_ADDR, 4096);
	cr_assert_eq(rd32(bp + 0x202), 0x53726448, "setup header copied");
	cr_assert_eq(bp[0x210], 0xff, "type_of_loader");
	cr_assert_str_eq((char *)vm_gpa_to_hva(vm, rd32(bp + 0x228), 1),
	    "console=ttyS0 hello=1");
	f = fopen(guest_initrd, "rb");
	fseek(f, 0, SEEK_END);
	rdsize = ftell(f);
	fclose(f);
	cr_assert_eq(rd32(bp + 0x21c), (uint32_t)rdsize);
	cr_assert_eq(rd32(bp + 0x218) % 4096, 0);
	cr_assert_leq(rd32(bp + 0x218) + rdsize, 512u << 20);
	cr_assert_eq(bp[0x1e8], 4, "e820 entries");
	cr_assert_eq(rd64(bp + 0x2d0 + 3 * 20), 0x100000);
	cr_assert_eq(rd64(bp + 0x2d0 + 3 * 20 + 8), (512u << 20) - 0x100000);
	cr_assert_eq(rd64(bp + 0x70), BOOT_ACPI_ADDR, "acpi_rsdp_addr");
	/* Entered at the 64-bit entry with long mode on. */
	cr_assert_eq(st.rip, rd64(bp + 0x258) + 0x200);
	cr_assert_eq(st.gpr[R_RSI], BOOT_ZEROPAGE_ADDR);
	cr_assert(st.efer & EFER_LMA);
	cr_assert(st.seg[SEG_CS].l);
	cr_assert_eq(st.seg[SEG_CS].sel, 0x10);
	cr_assert_eq(st.seg[SEG_DS].sel, 0x18);
	/* Identity map covers the kernel's entry point. */
	cr_assert_eq(rd64(vm_gpa_to_hva(vm, BOOT_PML4_ADDR + 0x2000 +
	    8 * (st.rip >> 21), 8)) & ~0xfffull, st.rip & ~0x1fffffull);
	vm_destroy(vm);
}

/* Without a display the bzImage is unpacked on the host and entered via
 * PVH. */
Test(boot, debian_bzimage_unpacked_to_pvh)
{
	struct vm_config cfg;
	struct cpu_state st;
	struct boot_file k, elf;
	struct vm *vm;
	char err[256];
	uint8_t *si, *mod;
	uint32_t entry;
	int r;

	if (!have_reference_guest())
		cr_skip_test("reference guest not built (make guest)");
	cr_assert_eq(boot_map_file(guest_kernel, &k, "kernel", err,
	    sizeof(err)), 0);
	cr_assert_eq(boot_unpack(&k, &elf), 0);
	cr_assert_eq(memcmp(elf.data, "\177ELF", 4), 0);
	cr_assert_eq(boot_pvh_entry(&elf, &entry), 0, "Debian's kernel has "
	    "a PVH note");
	vm_config_defaults(&cfg);
	cfg.memory = 256ull << 20;
	cfg.cpus = 1;
	snprintf(cfg.display, sizeof(cfg.display), "none");
	vm = vm_create(&cfg, &null_accel_ops, &r);
	cr_assert_not_null(vm);
	snprintf(cfg.kernel, sizeof(cfg.kernel), "%s", guest_kernel);
	snprintf(cfg.initrd, sizeof(cfg.initrd), "%s", guest_initrd);
	snprintf(cfg.append, sizeof(cfg.append), "console=ttyS0");
	cr_assert_eq(boot_load(vm, &cfg, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(st.rip, entry);
	cr_assert_eq(st.cr0 & (CR0_PE | CR0_PG), CR0_PE);
	si = vm_gpa_to_hva(vm, st.gpr[R_RBX], 56);
	cr_assert_eq(rd32(si), 0x336ec578);
	cr_assert_eq(rd32(si + 12), 1, "one module: the initrd");
	cr_assert_str_eq((char *)vm_gpa_to_hva(vm, rd64(si + 24), 1),
	    "console=ttyS0");
	cr_assert_eq(rd64(si + 32), BOOT_ACPI_ADDR);
	mod = vm_gpa_to_hva(vm, rd64(si + 16), 32);
	{
		struct boot_file rd;

		cr_assert_eq(boot_map_file(guest_initrd, &rd, "initrd", err,
		    sizeof(err)), 0);
		cr_assert_eq(rd64(mod + 8), rd.size);
		cr_assert_eq(memcmp(vm_gpa_to_hva(vm, rd64(mod), rd.size),
		    rd.data, rd.size), 0, "the initrd is where the module says");
		boot_unmap_file(&rd);
	}
	/* The kernel's text is where its ELF header says. */
	cr_assert_eq(memcmp(vm_gpa_to_hva(vm, 0x1000000, 4096),
	    elf.data + 0x200000, 4096), 0);
	boot_unmap_file(&elf);
	boot_unmap_file(&k);
	vm_destroy(vm);
}

/*
 * With a display (the default) the unpacked vmlinux is entered at its
 * 64-bit entry with a zeropage whose screen_info names the framebuffer:
 * PVH has no way to carry it.
 */
Test(boot, debian_vmlinux_64bit_entry_announces_the_framebuffer)
{
	struct vm_config cfg;
	struct cpu_state st;
	struct boot_file k, elf;
	struct display *d;
	struct vm *vm;
	char err[256];
	uint8_t *bp;
	uint64_t entry;

	if (!have_reference_guest())
		cr_skip_test("reference guest not built (make guest)");
	cr_assert_eq(boot_map_file(guest_kernel, &k, "kernel", err,
	    sizeof(err)), 0);
	cr_assert_eq(boot_unpack(&k, &elf), 0);
	memcpy(&entry, elf.data + 24, 8);	/* e_entry */
	vm = null_vm(&cfg, 256ull << 20, 1);
	cr_assert_not_null(d = display_find(vm), "a display by default");
	snprintf(cfg.kernel, sizeof(cfg.kernel), "%s", guest_kernel);
	snprintf(cfg.initrd, sizeof(cfg.initrd), "%s", guest_initrd);
	snprintf(cfg.append, sizeof(cfg.append), "console=tty0");
	cr_assert_eq(boot_load(vm, &cfg, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(st.rip, entry, "startup_64, a physical address");
	cr_assert_eq(entry, 0x1000000);
	cr_assert_eq(st.gpr[R_RSI], BOOT_ZEROPAGE_ADDR);
	cr_assert(st.efer & EFER_LMA);
	bp = vm_gpa_to_hva(vm, BOOT_ZEROPAGE_ADDR, 4096);
	cr_assert_eq(rd32(bp + 0x202), 0x53726448, "setup header copied");
	cr_assert_str_eq((char *)vm_gpa_to_hva(vm, rd32(bp + 0x228), 1),
	    "console=tty0");
	cr_assert_neq(rd32(bp + 0x218), 0, "initrd placed");
	cr_assert_eq(rd64(bp + 0x70), BOOT_ACPI_ADDR, "acpi_rsdp_addr");
	/* screen_info: a VESA LFB at the display's BAR0, 1024x768x32. */
	cr_assert_eq(bp[0x0f], 0x23, "VIDEO_TYPE_VLFB");
	cr_assert_eq(rd32(bp + 0x12), 1024 | 768u << 16);
	cr_assert_eq(rd32(bp + 0x18), d->pci.bar[0].mapped);
	cr_assert(d->pci.bar[0].is_mapped);
	cr_assert_eq(vm_gpa_to_hva(vm, rd32(bp + 0x18), 4), d->vram,
	    "the LFB is the display's memory");
	cr_assert_eq(memcmp(vm_gpa_to_hva(vm, 0x1000000, 4096),
	    elf.data + 0x200000, 4096), 0, "the kernel's text is loaded");
	boot_unmap_file(&elf);
	boot_unmap_file(&k);
	vm_destroy(vm);
}

Test(boot, bzimage_errors_are_clear)
{
	struct vm_config cfg;
	struct cpu_state st;
	struct vm *vm;
	char err[256];
	static uint8_t junk[8192];

	vm = null_vm(&cfg, 64ull << 20, 1);
	snprintf(cfg.kernel, sizeof(cfg.kernel), "/nonexistent/vmlinuz");
	cr_assert_eq(boot_load(vm, &cfg, &st, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/vmlinuz") != NULL, "%s", err);
	memset(junk, 0x90, sizeof(junk));
	snprintf(cfg.kernel, sizeof(cfg.kernel), "%s",
	    tmpfile_with(junk, sizeof(junk)));
	cr_assert_eq(boot_load(vm, &cfg, &st, err, sizeof(err)), -ENOEXEC);
	cr_assert(strstr(err, "not a bzImage") != NULL, "%s", err);
	unlink(cfg.kernel);
	vm_destroy(vm);
	if (!have_reference_guest())
		return;
	/* 20 MiB cannot hold Debian's kernel at 16 MiB plus init_size. */
	vm = null_vm(&cfg, 20ull << 20, 1);
	snprintf(cfg.kernel, sizeof(cfg.kernel), "%s", guest_kernel);
	cr_assert_eq(boot_load(vm, &cfg, &st, err, sizeof(err)), -ENOMEM);
	cr_assert(strstr(err, "memory too small") != NULL, "%s", err);
	vm_destroy(vm);
	/* An initrd bigger than the memory above the kernel. */
	vm = null_vm(&cfg, 96ull << 20, 1);
	snprintf(cfg.kernel, sizeof(cfg.kernel), "%s", guest_kernel);
	snprintf(cfg.initrd, sizeof(cfg.initrd), "%s", guest_kernel);
	{
		static uint8_t big[80 << 20];
		snprintf(cfg.initrd, sizeof(cfg.initrd), "%s",
		    tmpfile_with(big, sizeof(big)));
	}
	cr_assert_eq(boot_load(vm, &cfg, &st, err, sizeof(err)), -ENOMEM);
	cr_assert(strstr(err, "initrd too big") != NULL, "%s", err);
	unlink(cfg.initrd);
	/* A command line longer than the kernel's cmdline_size. */
	cfg.initrd[0] = '\0';
	memset(cfg.append, 'x', 3000);
	cfg.append[3000] = '\0';
	cr_assert_eq(boot_load(vm, &cfg, &st, err, sizeof(err)), -E2BIG);
	vm_destroy(vm);
}

/* A multiboot image with the a.out kludge, built byte by byte. */
Test(boot, multiboot_info_and_module)
{
	uint32_t img[16] = { 0x1badb002, 0x00010003, 0 };
	struct vm_config cfg;
	struct cpu_state st;
	struct vm *vm;
	char err[256];
	uint32_t *mbi, *mod;
	const char *rd = "module-bytes";

	img[2] = -(img[0] + img[1]);
	img[3] = 0x100000;	/* header_addr */
	img[4] = 0x100000;	/* load_addr */
	img[7] = 0x100020;	/* entry */
	vm = null_vm(&cfg, 32ull << 20, 1);
	snprintf(cfg.kernel, sizeof(cfg.kernel), "%s",
	    tmpfile_with(img, sizeof(img)));
	snprintf(cfg.initrd, sizeof(cfg.initrd), "%s",
	    tmpfile_with(rd, strlen(rd)));
	snprintf(cfg.append, sizeof(cfg.append), "a=b");
	cr_assert_eq(boot_load(vm, &cfg, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(st.gpr[R_RAX], 0x2badb002);
	cr_assert_eq(st.rip, 0x100020);
	cr_assert_eq(st.cr0 & CR0_PG, 0);
	mbi = vm_gpa_to_hva(vm, st.gpr[R_RBX], 72);
	cr_assert_eq(mbi[0] & 0x4d, 0x4d, "mem, cmdline, mods, mmap flags");
	cr_assert_eq(mbi[1], 639);
	cr_assert_eq(mbi[2], (32u << 10) - 1024);
	cr_assert(strstr(vm_gpa_to_hva(vm, mbi[4], 1), " a=b") != NULL);
	cr_assert_eq(mbi[5], 1);
	mod = vm_gpa_to_hva(vm, mbi[6], 16);
	cr_assert_eq(mod[1] - mod[0], strlen(rd));
	cr_assert_eq(memcmp(vm_gpa_to_hva(vm, mod[0], 1), rd, strlen(rd)), 0);
	cr_assert_eq(mbi[11] % 24, 0);
	unlink(cfg.kernel);
	unlink(cfg.initrd);
	vm_destroy(vm);
}

static void
check_table(struct vm *vm, uint64_t gpa, const char *sig)
{
	uint8_t *t = vm_gpa_to_hva(vm, gpa, 36);

	cr_assert_not_null(t);
	cr_assert_eq(memcmp(t, sig, 4), 0, "%.4s != %s", t, sig);
	cr_assert_eq(sum(t, rd32(t + 4)), 0, "%s checksum", sig);
}

Test(acpi, tables_are_consistent)
{
	struct vm_config cfg;
	struct vm *vm = null_vm(&cfg, 64ull << 20, 4);
	uint8_t *rsdp, *xsdt, *madt = NULL, *fadt = NULL, *dsdt;
	uint64_t addr = acpi_build(vm);
	int ncpu = 0;

	rsdp = vm_gpa_to_hva(vm, addr, 36);
	cr_assert_eq(memcmp(rsdp, "RSD PTR ", 8), 0);
	cr_assert_eq(addr, BOOT_ACPI_ADDR, "RSDP inside the BIOS scan area");
	cr_assert_eq(sum(rsdp, 20), 0);
	cr_assert_eq(sum(rsdp, 36), 0);
	check_table(vm, rd32(rsdp + 16), "RSDT");
	check_table(vm, rd64(rsdp + 24), "XSDT");
	xsdt = vm_gpa_to_hva(vm, rd64(rsdp + 24), 36);
	for (uint32_t i = 36; i < rd32(xsdt + 4); i += 8) {
		uint8_t *t = vm_gpa_to_hva(vm, rd64(xsdt + i), 36);

		if (memcmp(t, "APIC", 4) == 0)
			madt = t;
		if (memcmp(t, "FACP", 4) == 0)
			fadt = t;
	}
	cr_assert_not_null(madt);
	cr_assert_not_null(fadt);
	check_table(vm, rd64(xsdt + 36), "FACP");
	for (uint8_t *e = madt + 44; e < madt + rd32(madt + 4); e += e[1]) {
		cr_assert_geq(e[1], 2);
		if (e[0] == 0 && (rd32(e + 4) & 1))
			ncpu++;
	}
	cr_assert_eq(ncpu, 4);
	cr_assert_eq(rd32(fadt + 64), 0x604, "PM1a_CNT");
	cr_assert_eq(fadt[128], 0x06, "reset value");
	check_table(vm, rd64(fadt + 140), "DSDT");
	dsdt = vm_gpa_to_hva(vm, rd64(fadt + 140), rd32(
	    vm_gpa_to_hva(vm, rd64(fadt + 140), 8) + 4));
	/* \_S5 = Package(4) { 5, 5, 0, 0 } */
	{
		static const uint8_t s5[] = { 0x08, '\\', '_', 'S', '5', '_',
		    0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00 };
		cr_assert_not_null(memmem(dsdt, rd32(dsdt + 4), s5, sizeof(s5)));
	}
	/* EISAID("PNP0A03") */
	{
		static const uint8_t hid[] = { 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
		cr_assert_not_null(memmem(dsdt, rd32(dsdt + 4), hid, sizeof(hid)));
	}
	vm_destroy(vm);
}
