/*
 * PVH test guest: checks the machine state and the hvm_start_info the
 * loader hands over (memory map, command line, module 0 = --initrd,
 * RSDP), the ACPI tables and the devices.
 */
#include "guest.h"

#define HVM_START_MAGIC 0x336ec578

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr;
	uint64_t memmap_paddr;		/* version 1 and later */
	uint32_t memmap_entries, reserved;
} __attribute__((packed));

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
} __attribute__((packed));

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
} __attribute__((packed));

extern uint32_t entry_ebx, entry_cr0, entry_eflags;
extern uint16_t entry_cs;
extern char _image_start[], _bss_end[];
void pvh_main(void);

static struct memmap_entry pvh_map[MEMMAP_MAX];
static unsigned pvh_map_n;

static void pvh_memory(const struct hvm_start_info *si)
{
	struct memmap_entry *m = pvh_map;
	const struct hvm_memmap_entry *e = phys(si->memmap_paddr);
	unsigned n = si->memmap_entries;

	if (!report_check(si->version >= 1 && si->memmap_paddr && n, "pvh_memmap",
			  "version %u, memmap at 0x%llx with %u entries", si->version,
			  (unsigned long long)si->memmap_paddr, n))
		return;
	if (n > MEMMAP_MAX)
		n = MEMMAP_MAX;
	for (unsigned i = 0; i < n; i++) {
		m[i].addr = e[i].addr;
		m[i].size = e[i].size;
		m[i].type = e[i].type;
	}
	memmap_report(m, n, (uintptr_t)_image_start, (uintptr_t)_bss_end);
	pvh_map_n = n;
}

static void pvh_modules(const struct hvm_start_info *si)
{
	const struct hvm_modlist_entry *mod = phys(si->modlist_paddr);

	/* No module is a fact, not a failure: the e2e script knows whether
	 * it passed one (and then compares its checksum). */
	report_printf("nr_modules %u\n", si->nr_modules);
	if (!si->nr_modules)
		return;
	if (!report_check(si->modlist_paddr != 0, "pvh_modlist", "nr_modules %u, modlist_paddr 0",
			  si->nr_modules))
		return;
	report_printf("module 0 0x%llx size %llu\n", (unsigned long long)mod->paddr,
		      (unsigned long long)mod->size);
	if (!report_check(mod->paddr + mod->size < 0x100000000ull && mod->size < 0x80000000u,
			  "pvh_mod_range", "module beyond 4 GiB"))
		return;
	report_check(mod->paddr >= (uintptr_t)_bss_end || mod->paddr + mod->size <=
		     (uintptr_t)_image_start, "pvh_mod_apart", "module overlaps this image");
	report_check(memmap_usable(pvh_map, pvh_map_n, mod->paddr, mod->size), "pvh_mod_in_ram",
		     "0x%llx-0x%llx is not usable RAM in the map", (unsigned long long)mod->paddr,
		     (unsigned long long)(mod->paddr + mod->size));
	report_printf("module 0 cksum %u %u\n", cksum_buf(phys(mod->paddr), (uint32_t)mod->size),
		      (uint32_t)mod->size);
}

void pvh_main(void)
{
	const struct hvm_start_info *si = phys(entry_ebx);
	const char *cmdline = "";
	unsigned ncpus;

	report_init();
	report_printf("termvisor test guest: pvh\n");
	if (!report_check(si->magic == HVM_START_MAGIC, "pvh_magic", "start_info at 0x%x has magic 0x%x",
			  entry_ebx, si->magic))
		report_finish();
	report_check((entry_cr0 & 0x80000001u) == 1, "pvh_cr0", "cr0 0x%x: want PE, no PG",
		     entry_cr0);
	report_check(!(entry_eflags & 0x200), "pvh_irqs_off", "eflags 0x%x has IF", entry_eflags);
	report_printf("pvh_version %u\n", si->version);
	if (report_check(si->cmdline_paddr != 0, "pvh_cmdline", "cmdline_paddr is 0")) {
		cmdline = phys(si->cmdline_paddr);
		report_cmdline(cmdline);
	}
	pvh_memory(si);
	pvh_modules(si);
	report_check(si->rsdp_paddr != 0, "pvh_rsdp", "rsdp_paddr is 0");
	ncpus = acpi_check(si->rsdp_paddr, pvh_map, pvh_map_n);
	devices_check(cmdline);
	smp_check(ncpus, pvh_map, pvh_map_n);
	report_finish();
}
