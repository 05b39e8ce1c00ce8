/*
 * Multiboot (v1) test guest: checks the machine state and the
 * multiboot_info the loader hands over (memory sizes, memory map,
 * command line, module 0 = --initrd), the ACPI tables and the devices.
 */
#include "guest.h"

#define MB_BOOT_MAGIC 0x2badb002

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
	uint32_t mods_count, mods_addr, syms[4], mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr, config_table, boot_loader_name;
} __attribute__((packed));

struct mb_module {
	uint32_t start, end, string, reserved;
} __attribute__((packed));

extern uint32_t entry_eax, entry_ebx, entry_cr0, entry_eflags;
extern uint16_t entry_cs;
extern char _image_start[], _bss_end[];
void multiboot_main(void);

static void multiboot_state(void)
{
	report_check(entry_eax == MB_BOOT_MAGIC, "mb_magic", "eax 0x%x, want 0x%x",
		     entry_eax, MB_BOOT_MAGIC);
	/* Protected mode, paging off, interrupts off, as the spec says. */
	report_check((entry_cr0 & 0x80000001u) == 1, "mb_cr0", "cr0 0x%x: want PE, no PG",
		     entry_cr0);
	report_check(!(entry_eflags & 0x200), "mb_irqs_off", "eflags 0x%x has IF", entry_eflags);
}

static unsigned multiboot_mmap(const struct mb_info *mbi, struct memmap_entry *m)
{
	uint32_t off = 0;
	unsigned n = 0;

	while (off + 24 <= mbi->mmap_length && n < MEMMAP_MAX) {
		const uint8_t *e = phys(mbi->mmap_addr + off);
		uint32_t size = *(const uint32_t *)e;

		m[n].addr = *(const uint64_t *)(e + 4);
		m[n].size = *(const uint64_t *)(e + 12);
		m[n].type = *(const uint32_t *)(e + 20);
		n++;
		off += size + 4;
		if (size < 20)
			break;
	}
	return n;
}

static struct memmap_entry mb_map[MEMMAP_MAX];
static unsigned mb_map_n;

static void multiboot_memory(const struct mb_info *mbi)
{
	struct memmap_entry *m = mb_map;
	unsigned n = 0;
	uint32_t kb = 0;

	if (report_check(mbi->flags & 1, "mb_mem", "flags 0x%x lack bit 0", mbi->flags)) {
		report_printf("mem_lower %u\nmem_upper %u\n", mbi->mem_lower, mbi->mem_upper);
		report_check(mbi->mem_lower >= 512 && mbi->mem_lower <= 640, "mb_mem_lower",
			     "%u KiB", mbi->mem_lower);
	}
	if (report_check(mbi->flags & 0x40, "mb_mmap", "flags 0x%x lack bit 6", mbi->flags)) {
		n = multiboot_mmap(mbi, m);
		kb = memmap_report(m, n, (uintptr_t)_image_start, (uintptr_t)_bss_end);
		mb_map_n = n;
	}
	/* mem_upper is the RAM from 1 MiB to the first hole: within the map. */
	if ((mbi->flags & 0x41) == 0x41)
		report_check(memmap_usable(m, n, 0x100000, (uint64_t)mbi->mem_upper << 10) &&
			     mbi->mem_upper <= kb, "mb_mem_upper",
			     "mem_upper %u KiB is not usable RAM above 1 MiB", mbi->mem_upper);
}

static void multiboot_modules(const struct mb_info *mbi)
{
	const struct mb_module *mod;

	/* No module is a fact, not a failure: the e2e script knows whether
	 * it passed one (and then compares its checksum). */
	report_printf("mods_count %u\n", mbi->flags & 8 ? mbi->mods_count : 0);
	if (!(mbi->flags & 8) || !mbi->mods_count)
		return;
	mod = phys(mbi->mods_addr);
	report_printf("module 0 0x%x-0x%x\n", mod->start, mod->end);
	report_check(mod->end >= mod->start, "mb_mod_range", "end before start");
	/* Header flag 0 asked for page-aligned modules. */
	report_check(!(mod->start & 0xfff), "mb_mod_aligned", "start 0x%x", mod->start);
	report_check(mod->start >= (uintptr_t)_bss_end ||
		     mod->end <= (uintptr_t)_image_start, "mb_mod_apart",
		     "module overlaps this image");
	report_check(memmap_usable(mb_map, mb_map_n, mod->start, mod->end - mod->start),
		     "mb_mod_in_ram", "0x%x-0x%x is not usable RAM in the map", mod->start,
		     mod->end);
	report_printf("module 0 cksum %u %u\n", cksum_buf(phys(mod->start), mod->end - mod->start),
		      mod->end - mod->start);
	if (report_check(mod->string != 0, "mb_mod_string", "module 0 has no string"))
		report_printf("module 0 string \"%s\"\n", (const char *)phys(mod->string));
}

void multiboot_main(void)
{
	const struct mb_info *mbi = phys(entry_ebx);
	const char *cmdline = "";
	unsigned ncpus;

	report_init();
	report_printf("termvisor test guest: multiboot\n");
	multiboot_state();
	report_printf("mb_flags 0x%x\n", mbi->flags);
	if (report_check(mbi->flags & 4, "mb_cmdline", "flags 0x%x lack bit 2", mbi->flags)) {
		cmdline = phys(mbi->cmdline);
		report_cmdline(cmdline);
	}
	if (mbi->flags & 0x200)
		report_printf("loader \"%s\"\n", (const char *)phys(mbi->boot_loader_name));
	multiboot_memory(mbi);
	multiboot_modules(mbi);
	ncpus = acpi_check(0, mb_map, mb_map_n);
	devices_check(cmdline);
	smp_check(ncpus, mb_map, mb_map_n);
	report_finish();
}
