/*
 * Loading a guest kernel into guest memory and setting up the boot CPU:
 * the Linux x86 boot protocol (bzImage, 64-bit entry or the classic
 * real-mode entry), PVH ELF kernels, and multiboot v1 kernels with the
 * initrd as their module, as QEMU's -kernel does.  ACPI tables describe
 * the vCPUs and the power-off/reset hardware.
 */
#ifndef TV_BOOT_H
#define TV_BOOT_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct vm_config;
struct cpu_state;

/* Guest-physical addresses of what the loaders place below 1 MiB. */
#define BOOT_GDT_ADDR		0x500ull
#define BOOT_START_INFO_ADDR	0x6000ull	/* PVH start info / MBI */
#define BOOT_ZEROPAGE_ADDR	0x7000ull
#define BOOT_PML4_ADDR		0x9000ull	/* + PDPT + 4 PDs */
#define BOOT_REALMODE_ADDR	0x10000ull	/* real-mode setup segment */
#define BOOT_CMDLINE_ADDR	0x20000ull
#define BOOT_CMDLINE_MAX	0x10000u
#define BOOT_EBDA_ADDR		0x9fc00ull
#define BOOT_ACPI_ADDR		0xe0000ull	/* RSDP + tables, 64 KiB */
#define BOOT_ACPI_SIZE		0x10000u
#define BOOT_HIGH_ADDR		0x100000ull

enum e820_type { E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3 };

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
};

#define BOOT_E820_MAX 16

/* A loaded kernel/initrd file: mapped read-only. */
struct boot_file {
	const uint8_t *data;
	size_t size;
};

/*
 * Load cfg->kernel (and initrd, cmdline) into vm's memory and fill *bsp
 * with the boot vCPU's entry state.  On failure returns -errno and writes
 * one line for the user into err.
 */
int boot_load(struct vm *vm, const struct vm_config *cfg,
    struct cpu_state *bsp, char *err, size_t errlen);

/* The guest's memory map; returns the number of entries. */
int boot_e820(const struct vm *vm, struct e820_entry *tab, int max);
/* Build ACPI tables at BOOT_ACPI_ADDR; returns the RSDP's address. */
uint64_t acpi_build(struct vm *vm);

/* Shared by the loaders (boot.c, boot_elf.c). */
int boot_map_file(const char *path, struct boot_file *f, const char *what,
    char *err, size_t errlen);
void boot_unmap_file(struct boot_file *f);
/* Flat 32-bit protected mode, paging off (PVH, multiboot). */
void boot_state_flat32(struct vm *vm, struct cpu_state *st, uint32_t entry);
int boot_load_multiboot(struct vm *vm, const struct vm_config *cfg,
    const struct boot_file *k, struct cpu_state *bsp, char *err, size_t n);
int boot_load_pvh(struct vm *vm, const struct vm_config *cfg,
    const struct boot_file *k, struct cpu_state *bsp, char *err, size_t n);
/* Load a 64-bit ELF's segments at their physical addresses; *entry is
 * its entry point (checked to lie in them), *end the highest byte + 1. */
int boot_elf_load(struct vm *vm, const struct boot_file *k, uint64_t *entry,
    uint64_t *end, char *err, size_t n);
/* Is this an ELF with a PVH entry note / a multiboot header? */
int boot_pvh_entry(const struct boot_file *k, uint32_t *entry);
int boot_multiboot_header(const struct boot_file *k, size_t *off);
/* Copy an initrd/module as high as possible below min(addr_max + 1, low
 * RAM end) and above floor; *addr gets its address. */
int boot_place_initrd(struct vm *vm, const struct boot_file *rd,
    uint64_t addr_max, uint64_t floor, uint64_t *addr, char *err, size_t n);
/*
 * Decompress a bzImage's payload on the host (cached); 0 with *elf the
 * vmlinux ELF, -ENOTSUP when the payload's format is not one we unpack.
 */
int boot_unpack(const struct boot_file *k, struct boot_file *elf);
/* Highest guest-physical RAM address below 4 GiB, exclusive. */
uint64_t boot_low_ram_end(const struct vm *vm);

#endif
