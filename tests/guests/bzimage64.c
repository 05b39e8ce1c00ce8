/*
 * bzImage test guest, 64-bit part.  Checks the boot_params the loader
 * built (copied setup header, loader type, command line, initrd, e820
 * map, ACPI RSDP), the ACPI tables and the devices.  Prints "entry 64"
 * when the VMM entered startup_64 itself (termvisor's path), "entry
 * 64-setup" when our real-mode setup did it for a classic loader (QEMU's
 * path) and "entry 32" for the 32-bit protocol's startup_32.
 */
#include "guest.h"

extern uint32_t entry_mode, entry_flags;
extern char _image_start[], _image_end[];
void bzimage64_main(const uint8_t *bp);

#define BP8(off) (*(const uint8_t *)(bp + (off)))
#define BP16(off) (*(const uint16_t *)(bp + (off)))
#define BP32(off) (*(const uint32_t *)(bp + (off)))
#define BP64(off) (*(const uint64_t *)(bp + (off)))

static void bz_header(const uint8_t *bp)
{
	report_printf("boot_params 0x%lx\n", (unsigned long)(uintptr_t)bp);
	report_check(!memcmp(bp + 0x202, "HdrS", 4) && BP16(0x206) == 0x020e, "bz_hdr_copied",
		     "boot_params holds no copy of the setup header (version 0x%x)", BP16(0x206));
	report_printf("loader 0x%02x loadflags 0x%02x\n", BP8(0x210), BP8(0x211));
	report_check(BP8(0x210) != 0, "bz_type_of_loader", "type_of_loader is 0");
	report_check(BP8(0x211) & 1, "bz_loaded_high", "loadflags 0x%02x lost LOADED_HIGH",
		     BP8(0x211));
	report_check(!(entry_flags & 0x200), "bz_irqs_off", "entered with IF set");
}

static const char *bz_cmdline(const uint8_t *bp)
{
	uint64_t ptr = BP32(0x228) | (uint64_t)BP32(0x0c8) << 32;
	const char *s = phys(ptr);

	if (!report_check(ptr != 0, "bz_cmdline", "cmd_line_ptr is 0"))
		return "";
	report_check(strlen(s) <= BP32(0x238), "bz_cmdline_size", "%lu bytes, cmdline_size %u",
		     (unsigned long)strlen(s), BP32(0x238));
	report_cmdline(s);
	return s;
}

static void bz_memory(const uint8_t *bp, struct memmap_entry *m, unsigned *np)
{
	unsigned n = BP8(0x1e8);

	if (n > MEMMAP_MAX)
		n = MEMMAP_MAX;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = bp + 0x2d0 + i * 20;

		m[i].addr = *(const uint64_t *)e;
		m[i].size = *(const uint64_t *)(e + 8);
		m[i].type = *(const uint32_t *)(e + 16);
	}
	*np = n;
	memmap_report(m, n, (uintptr_t)_image_start, (uintptr_t)_image_end);
}

static void bz_initrd(const uint8_t *bp, const struct memmap_entry *m, unsigned n)
{
	uint64_t addr = BP32(0x218) | (uint64_t)BP32(0x0c0) << 32;
	uint64_t size = BP32(0x21c) | (uint64_t)BP32(0x0c4) << 32;

	report_printf("initrd 0x%llx size %llu\n", (unsigned long long)addr,
		      (unsigned long long)size);
	if (!size)
		return;
	/* Not loadable above initrd_addr_max, and never over the kernel. */
	report_check(addr + size - 1 <= BP32(0x22c), "bz_initrd_max",
		     "ends at 0x%llx, initrd_addr_max 0x%x", (unsigned long long)(addr + size),
		     BP32(0x22c));
	report_check(addr >= (uintptr_t)_image_end || addr + size <= (uintptr_t)_image_start,
		     "bz_initrd_apart", "overlaps the kernel at 0x%lx-0x%lx",
		     (unsigned long)(uintptr_t)_image_start, (unsigned long)(uintptr_t)_image_end);
	report_check(memmap_usable(m, n, addr, size), "bz_initrd_in_ram",
		     "0x%llx-0x%llx is not usable RAM in e820", (unsigned long long)addr,
		     (unsigned long long)(addr + size));
	if (addr + size <= 0x100000000ull)
		report_printf("initrd cksum %u %u\n", cksum_buf(phys(addr), (uint32_t)size),
			      (uint32_t)size);
}

void bzimage64_main(const uint8_t *bp)
{
	static struct memmap_entry m[MEMMAP_MAX];
	unsigned n = 0, ncpus;
	const char *cmdline;

	report_init();
	report_printf("termvisor test guest: bzimage64\nentry %u%s\n", entry_mode,
		      BP32(0xcd0) == 0x55535654 ? "-setup" : "");
	bz_header(bp);
	cmdline = bz_cmdline(bp);
	bz_memory(bp, m, &n);
	bz_initrd(bp, m, n);
	/* boot protocol 2.14: the loader may say where the RSDP is. */
	report_printf("acpi_rsdp_addr 0x%llx\n", (unsigned long long)BP64(0x070));
	ncpus = acpi_check(BP64(0x070), m, n);
	devices_check(cmdline);
	smp_check(ncpus, m, n);
	report_finish();
}
