/*
 * ELF-based boot protocols: PVH (an ELF note XEN_ELFNOTE_PHYS32_ENTRY
 * names a 32-bit entry point; xen/include/public/arch-x86/hvm/start_info.h
 * is the contract) and multiboot v1 (the a.out kludge or ELF), with the
 * initrd passed as the first module as QEMU's -kernel does.  Every offset
 * and size in the file is checked before use: a kernel is input.
 */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hv/boot.h"
#include "hv/cpu_state.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC		0x336ec578u
#define MB_HEADER_MAGIC		0x1badb002u
#define MB_BOOT_MAGIC		0x2badb002u
#define MB_SEARCH		8192u
#define MB_FLAG_AOUT		(1u << 16)
#define MB_INFO_MEM		(1u << 0)
#define MB_INFO_CMDLINE		(1u << 2)
#define MB_INFO_MODS		(1u << 3)
#define MB_INFO_MMAP		(1u << 6)
#define MB_INFO_LOADER		(1u << 9)

/* Layout of the information block at BOOT_START_INFO_ADDR. */
#define INFO_MODLIST	(BOOT_START_INFO_ADDR + 0x100)
#define INFO_MEMMAP	(BOOT_START_INFO_ADDR + 0x200)
#define INFO_STRINGS	(BOOT_START_INFO_ADDR + 0x600)	/* to 0x7000 */

static int
elf_err(char *err, size_t n, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return code;
}

/* A program header, whatever the ELF class. */
struct elf_seg {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

static bool
elf_is(const struct boot_file *k, int *cls)
{
	if (k->size < sizeof(Elf32_Ehdr) || memcmp(k->data, ELFMAG, SELFMAG))
		return false;
	*cls = k->data[EI_CLASS];
	if (*cls == ELFCLASS64 && k->size < sizeof(Elf64_Ehdr))
		return false;
	return (*cls == ELFCLASS32 || *cls == ELFCLASS64) &&
	    k->data[EI_DATA] == ELFDATA2LSB;
}

/* Program header i, bounds-checked; -1 if out of the file. */
static int
elf_phdr(const struct boot_file *k, int cls, unsigned i, struct elf_seg *s,
    unsigned *count)
{
	uint64_t off, ent;

	if (cls == ELFCLASS64) {
		Elf64_Ehdr eh;

		memcpy(&eh, k->data, sizeof(eh));
		off = eh.e_phoff;
		ent = eh.e_phentsize;
		*count = eh.e_phnum;
		if (ent < sizeof(Elf64_Phdr))
			return -1;
	} else {
		Elf32_Ehdr eh;

		memcpy(&eh, k->data, sizeof(eh));
		off = eh.e_phoff;
		ent = eh.e_phentsize;
		*count = eh.e_phnum;
		if (ent < sizeof(Elf32_Phdr))
			return -1;
	}
	if (i >= *count)
		return -1;
	if (off > k->size || ent * (i + 1) > k->size - off)
		return -1;
	if (cls == ELFCLASS64) {
		Elf64_Phdr ph;

		memcpy(&ph, k->data + off + ent * i, sizeof(ph));
		*s = (struct elf_seg){ ph.p_type, ph.p_offset, ph.p_paddr,
		    ph.p_filesz, ph.p_memsz };
	} else {
		Elf32_Phdr ph;

		memcpy(&ph, k->data + off + ent * i, sizeof(ph));
		*s = (struct elf_seg){ ph.p_type, ph.p_offset, ph.p_paddr,
		    ph.p_filesz, ph.p_memsz };
	}
	if (s->offset > k->size || s->filesz > k->size - s->offset)
		return -1;
	return 0;
}

int
boot_pvh_entry(const struct boot_file *k, uint32_t *entry)
{
	struct elf_seg s;
	unsigned count = 1;
	int cls;

	if (!elf_is(k, &cls))
		return -ENOEXEC;
	for (unsigned i = 0; i < count; i++) {
		const uint8_t *p, *end;

		if (elf_phdr(k, cls, i, &s, &count) < 0)
			return -ENOEXEC;
		if (s.type != PT_NOTE)
			continue;
		p = k->data + s.offset;
		end = p + s.filesz;
		while (end - p >= 12) {
			uint32_t nsz, dsz, type;
			size_t nal, dal;

			memcpy(&nsz, p, 4);
			memcpy(&dsz, p + 4, 4);
			memcpy(&type, p + 8, 4);
			nal = ((size_t)nsz + 3) & ~3ul;
			dal = ((size_t)dsz + 3) & ~3ul;
			if (nal > (size_t)(end - p - 12) ||
			    dal > (size_t)(end - p - 12) - nal)
				break;
			if (nsz == 4 && memcmp(p + 12, "Xen", 4) == 0 &&
			    type == XEN_ELFNOTE_PHYS32_ENTRY && dsz >= 4) {
				memcpy(entry, p + 12 + nal, 4);
				return 0;
			}
			p += 12 + nal + dal;
		}
	}
	return -ENOENT;
}

/* Load every PT_LOAD segment at its physical address; *end = highest. */
static int
elf_load(struct vm *vm, const struct boot_file *k, uint64_t *end, char *err,
    size_t n)
{
	struct elf_seg s;
	unsigned count = 1;
	int cls, loaded = 0;

	*end = 0;
	if (!elf_is(k, &cls))
		return elf_err(err, n, -ENOEXEC, "not an ELF file");
	for (unsigned i = 0; i < count; i++) {
		uint8_t *dst;

		if (elf_phdr(k, cls, i, &s, &count) < 0)
			return elf_err(err, n, -ENOEXEC, "ELF program header "
			    "%u lies outside the file", i);
		if (s.type != PT_LOAD || s.memsz == 0)
			continue;
		if (s.filesz > s.memsz || s.paddr < BOOT_HIGH_ADDR ||
		    s.paddr + s.memsz < s.paddr ||
		    (dst = vm_gpa_to_hva(vm, s.paddr, s.memsz)) == NULL)
			return elf_err(err, n, -ENOMEM, "memory too small "
			    "for the kernel: ELF segment %u [%#llx, +%#llx) "
			    "is not inside guest RAM above 1 MiB; raise "
			    "--memory", i, (unsigned long long)s.paddr,
			    (unsigned long long)s.memsz);
		memcpy(dst, k->data + s.offset, s.filesz);
		memset(dst + s.filesz, 0, s.memsz - s.filesz);
		if (s.paddr + s.memsz > *end)
			*end = s.paddr + s.memsz;
		loaded++;
	}
	if (loaded == 0)
		return elf_err(err, n, -ENOEXEC, "ELF file has nothing to load");
	return 0;
}

int
boot_elf_load(struct vm *vm, const struct boot_file *k, uint64_t *entry,
    uint64_t *end, char *err, size_t n)
{
	Elf64_Ehdr eh;
	int cls, r;

	if (!elf_is(k, &cls) || cls != ELFCLASS64)
		return elf_err(err, n, -ENOEXEC, "not a 64-bit ELF file");
	memcpy(&eh, k->data, sizeof(eh));
	*entry = eh.e_entry;
	if ((r = elf_load(vm, k, end, err, n)) < 0)
		return r;
	if (*entry < BOOT_HIGH_ADDR || *entry >= *end)
		return elf_err(err, n, -ENOEXEC, "ELF entry %#llx is not in "
		    "the loaded kernel", (unsigned long long)*entry);
	return 0;
}

/* Load the initrd (if any) high; fills addr/size. */
static int
elf_initrd(struct vm *vm, const struct vm_config *cfg, uint64_t floor,
    uint64_t *addr, uint64_t *size, char *err, size_t n)
{
	struct boot_file rd;
	int r;

	*addr = *size = 0;
	if (cfg->initrd[0] == '\0')
		return 0;
	if ((r = boot_map_file(cfg->initrd, &rd, "initrd", err, n)) < 0)
		return r;
	r = boot_place_initrd(vm, &rd, 0xffffffffull, floor, addr, err, n);
	*size = rd.size;
	boot_unmap_file(&rd);
	return r;
}

static int
elf_cmdline(struct vm *vm, const char *s, char *err, size_t n)
{
	size_t len = strlen(s);

	if (len >= BOOT_CMDLINE_MAX)
		return elf_err(err, n, -E2BIG, "command line too long");
	return vm_write(vm, BOOT_CMDLINE_ADDR, s, len + 1);
}

int
boot_load_pvh(struct vm *vm, const struct vm_config *cfg,
    const struct boot_file *k, struct cpu_state *bsp, char *err, size_t n)
{
	struct e820_entry t[BOOT_E820_MAX];
	uint8_t info[56] = { 0 }, mod[32] = { 0 }, ent[24];
	uint64_t end, rdaddr, rdsize, v;
	uint32_t entry, u;
	int r, ne;

	if ((r = boot_pvh_entry(k, &entry)) < 0)
		return elf_err(err, n, r, "no PVH entry note");
	if ((r = elf_load(vm, k, &end, err, n)) < 0 ||
	    (r = elf_initrd(vm, cfg, end, &rdaddr, &rdsize, err, n)) < 0 ||
	    (r = elf_cmdline(vm, cfg->append, err, n)) < 0)
		return r;
	ne = boot_e820(vm, t, BOOT_E820_MAX);
	for (int i = 0; i < ne; i++) {
		memset(ent, 0, sizeof(ent));
		memcpy(ent, &t[i].addr, 8);
		memcpy(ent + 8, &t[i].size, 8);
		memcpy(ent + 16, &t[i].type, 4);
		vm_write(vm, INFO_MEMMAP + 24 * i, ent, sizeof(ent));
	}
	u = HVM_START_MAGIC; memcpy(info, &u, 4);
	u = 1; memcpy(info + 4, &u, 4);			/* version */
	u = rdsize ? 1 : 0; memcpy(info + 12, &u, 4);	/* nr_modules */
	v = INFO_MODLIST; memcpy(info + 16, &v, 8);
	v = BOOT_CMDLINE_ADDR; memcpy(info + 24, &v, 8);
	v = acpi_build(vm); memcpy(info + 32, &v, 8);	/* rsdp */
	v = INFO_MEMMAP; memcpy(info + 40, &v, 8);
	u = ne; memcpy(info + 48, &u, 4);
	memcpy(mod, &rdaddr, 8);
	memcpy(mod + 8, &rdsize, 8);
	vm_write(vm, BOOT_START_INFO_ADDR, info, sizeof(info));
	vm_write(vm, INFO_MODLIST, mod, sizeof(mod));
	boot_state_flat32(vm, bsp, entry);
	bsp->gpr[R_RBX] = BOOT_START_INFO_ADDR;
	return 0;
}

int
boot_multiboot_header(const struct boot_file *k, size_t *off)
{
	size_t lim = k->size < MB_SEARCH ? k->size : MB_SEARCH;

	for (size_t o = 0; o + 12 <= lim; o += 4) {
		uint32_t h[3];

		memcpy(h, k->data + o, sizeof(h));
		if (h[0] == MB_HEADER_MAGIC && h[0] + h[1] + h[2] == 0) {
			*off = o;
			return 0;
		}
	}
	return -ENOENT;
}

/* The a.out kludge: header fields say where the file goes. */
static int
mb_load_aout(struct vm *vm, const struct boot_file *k, size_t off,
    uint32_t *entry, uint64_t *end, char *err, size_t n)
{
	uint32_t f[8];	/* magic flags sum header load load_end bss entry */
	uint64_t start, len, bss;
	uint8_t *dst;

	if (off + sizeof(f) > k->size)
		return elf_err(err, n, -ENOEXEC, "multiboot header truncated");
	memcpy(f, k->data + off, sizeof(f));
	if (f[4] > f[3] || f[3] - f[4] > off)
		return elf_err(err, n, -ENOEXEC, "multiboot load_addr %#x "
		    "is not before header_addr %#x in the file", f[4], f[3]);
	start = off - (f[3] - f[4]);
	len = f[5] ? (uint64_t)f[5] - f[4] : k->size - start;
	if (f[5] && f[5] < f[4])
		return elf_err(err, n, -ENOEXEC, "multiboot load_end_addr "
		    "before load_addr");
	if (len > k->size - start)
		return elf_err(err, n, -ENOEXEC, "multiboot image claims "
		    "%llu bytes, the file has %zu", (unsigned long long)len,
		    k->size - start);
	bss = f[6] > f[4] + len ? f[6] - f[4] - len : 0;
	if (f[4] < BOOT_HIGH_ADDR ||
	    (dst = vm_gpa_to_hva(vm, f[4], len + bss)) == NULL)
		return elf_err(err, n, -ENOMEM, "multiboot image [%#x, "
		    "+%#llx) is not in guest RAM above 1 MiB", f[4],
		    (unsigned long long)(len + bss));
	memcpy(dst, k->data + start, len);
	memset(dst + len, 0, bss);
	*entry = f[7];
	*end = f[4] + len + bss;
	return 0;
}

static int
mb_entry_elf(const struct boot_file *k, uint32_t *entry)
{
	int cls;

	if (!elf_is(k, &cls))
		return -ENOEXEC;
	if (cls == ELFCLASS32) {
		Elf32_Ehdr eh;

		memcpy(&eh, k->data, sizeof(eh));
		*entry = eh.e_entry;
	} else {
		Elf64_Ehdr eh;

		memcpy(&eh, k->data, sizeof(eh));
		*entry = (uint32_t)eh.e_entry;
	}
	return 0;
}

/* Strings for the MBI go into INFO_STRINGS, one after another. */
static uint32_t
mb_string(struct vm *vm, uint64_t *cursor, const char *s)
{
	size_t len = strlen(s) + 1;
	uint32_t at = (uint32_t)*cursor;

	if (*cursor + len > BOOT_ZEROPAGE_ADDR)
		len = BOOT_ZEROPAGE_ADDR - *cursor;
	vm_write(vm, *cursor, s, len);
	vm_write(vm, *cursor + len - 1, "", 1);
	*cursor += len;
	return at;
}

int
boot_load_multiboot(struct vm *vm, const struct vm_config *cfg,
    const struct boot_file *k, struct cpu_state *bsp, char *err, size_t n)
{
	struct e820_entry t[BOOT_E820_MAX];
	uint32_t mbi[18] = { 0 }, hdr[3], entry = 0, mod[4] = { 0 };
	uint64_t end, rdaddr, rdsize, strs = INFO_STRINGS;
	char cmd[BOOT_CMDLINE_MAX];
	size_t off;
	int r, ne;

	boot_multiboot_header(k, &off);
	memcpy(hdr, k->data + off, sizeof(hdr));
	if (hdr[1] & MB_FLAG_AOUT)
		r = mb_load_aout(vm, k, off, &entry, &end, err, n);
	else if ((r = mb_entry_elf(k, &entry)) == 0)
		r = elf_load(vm, k, &end, err, n);
	else
		r = elf_err(err, n, -ENOEXEC, "multiboot kernel is neither "
		    "ELF nor has the a.out kludge flag (bit 16)");
	if (r < 0)
		return r;
	/* The module goes right after the kernel, page aligned, as QEMU. */
	if ((r = elf_initrd(vm, cfg, (end + 0xfff) & ~0xfffull, &rdaddr, &rdsize,
	    err, n)) < 0)
		return r;
	/* Like QEMU: the command line starts with the kernel's path. */
	if ((size_t)snprintf(cmd, sizeof(cmd), "%s%s%s", cfg->kernel,
	    cfg->append[0] ? " " : "", cfg->append) >= sizeof(cmd))
		return elf_err(err, n, -E2BIG, "command line too long");
	if ((r = elf_cmdline(vm, cmd, err, n)) < 0)
		return r;
	ne = boot_e820(vm, t, BOOT_E820_MAX);
	for (int i = 0; i < ne; i++) {
		uint32_t e[6] = { 20, (uint32_t)t[i].addr,
		    (uint32_t)(t[i].addr >> 32), (uint32_t)t[i].size,
		    (uint32_t)(t[i].size >> 32), t[i].type };

		vm_write(vm, INFO_MEMMAP + 24 * i, e, sizeof(e));
	}
	mbi[0] = MB_INFO_MEM | MB_INFO_CMDLINE | MB_INFO_MMAP | MB_INFO_LOADER;
	mbi[1] = BOOT_EBDA_ADDR / 1024;				/* mem_lower */
	mbi[2] = (uint32_t)((boot_low_ram_end(vm) - BOOT_HIGH_ADDR) / 1024);
	mbi[4] = BOOT_CMDLINE_ADDR;
	if (rdsize) {
		mbi[0] |= MB_INFO_MODS;
		mod[0] = (uint32_t)rdaddr;
		mod[1] = (uint32_t)(rdaddr + rdsize);
		mod[2] = mb_string(vm, &strs, cfg->initrd);
		vm_write(vm, INFO_MODLIST, mod, sizeof(mod));
		mbi[5] = 1;
		mbi[6] = INFO_MODLIST;
	}
	mbi[11] = 24 * ne;					/* mmap_length */
	mbi[12] = INFO_MEMMAP;
	mbi[16] = mb_string(vm, &strs, "termvisor");
	vm_write(vm, BOOT_START_INFO_ADDR, mbi, sizeof(mbi));
	acpi_build(vm);
	boot_state_flat32(vm, bsp, entry);
	bsp->gpr[R_RAX] = MB_BOOT_MAGIC;
	bsp->gpr[R_RBX] = BOOT_START_INFO_ADDR;
	return 0;
}
