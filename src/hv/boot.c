/*
 * The Linux x86 boot protocol (Documentation/arch/x86/boot.rst is the
 * contract): a bzImage is entered at its 64-bit entry point when it has
 * one (XLF_KERNEL_64), with identity-mapped page tables, or else at its
 * real-mode setup code as classic boot loaders do.  Other formats are
 * dispatched from boot_load(): PVH ELF and multiboot v1 (boot_elf.c).
 */
#include "hv/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/display.h"
#include "devices/fb.h"
#include "hv/cpu_state.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "util/log.h"

/* Setup header offsets inside boot_params (the "zeropage"). */
#define HDR_SETUP_SECTS		0x1f1
#define HDR_BOOT_FLAG		0x1fe
#define HDR_JUMP		0x200
#define HDR_MAGIC		0x202
#define HDR_VERSION		0x206
#define HDR_TYPE_OF_LOADER	0x210
#define HDR_LOADFLAGS		0x211
#define HDR_RAMDISK_IMAGE	0x218
#define HDR_RAMDISK_SIZE	0x21c
#define HDR_HEAP_END_PTR	0x224
#define HDR_CMD_LINE_PTR	0x228
#define HDR_INITRD_ADDR_MAX	0x22c
#define HDR_KERNEL_ALIGNMENT	0x230
#define HDR_RELOCATABLE		0x234
#define HDR_XLOADFLAGS		0x236
#define HDR_CMDLINE_SIZE	0x238
#define HDR_SETUP_DATA		0x250	/* protocol 2.09+ */
#define HDR_PREF_ADDRESS	0x258
#define HDR_INIT_SIZE		0x260
#define BP_ACPI_RSDP_ADDR	0x070
#define BP_EXT_RAMDISK_IMAGE	0x0c0
#define BP_EXT_RAMDISK_SIZE	0x0c4
#define BP_EXT_CMD_LINE_PTR	0x0c8
#define BP_E820_ENTRIES		0x1e8
#define BP_E820_TABLE		0x2d0
#define BP_SIZE			0x1000

#define LOADED_HIGH		0x01
#define CAN_USE_HEAP		0x80
#define XLF_KERNEL_64		0x01
#define REALMODE_HEAP_END	0xe000u

/*
 * The RNG seed, a setup_data entry (struct setup_data: le64 next, le32
 * type, le32 len, then len bytes) in the page between the zeropage and
 * the page tables, which no loader uses: below 1 MiB, away from where a
 * kernel decompresses itself, and reserved by the kernel until it has
 * read the seed (early in setup_arch(), which then zeroes it).
 */
#define BOOT_SEED_ADDR		(BOOT_ZEROPAGE_ADDR + BP_SIZE)
#define BOOT_SEED_LEN		32
#define SETUP_RNG_SEED		9

static int
boot_err(char *err, size_t n, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return code;
}

static uint16_t rd16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, v); wr16(p + 2, v >> 16); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, v); wr32(p + 4, v >> 32); }

int
boot_map_file(const char *path, struct boot_file *f, const char *what,
    char *err, size_t errlen)
{
	struct stat sb;
	void *p;
	int fd;

	f->data = NULL;
	f->size = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return boot_err(err, errlen, -errno, "%s %s: %s", what, path,
		    strerror(errno));
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return boot_err(err, errlen, -EINVAL, "%s %s: not a regular "
		    "file", what, path);
	}
	if (sb.st_size == 0) {
		close(fd);
		return boot_err(err, errlen, -EINVAL, "%s %s: empty file",
		    what, path);
	}
	p = mmap(NULL, sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return boot_err(err, errlen, -errno, "%s %s: %s", what, path,
		    strerror(errno));
	f->data = p;
	f->size = sb.st_size;
	return 0;
}

void
boot_unmap_file(struct boot_file *f)
{
	if (f->data != NULL)
		munmap((void *)f->data, f->size);
	f->data = NULL;
}

uint64_t
boot_low_ram_end(const struct vm *vm)
{
	return vm->ram_size < GPA_LOW_RAM_END ? vm->ram_size : GPA_LOW_RAM_END;
}

int
boot_e820(const struct vm *vm, struct e820_entry *t, int max)
{
	uint64_t low = boot_low_ram_end(vm);
	int n = 0;

	if (max < 5)
		return 0;
	t[n++] = (struct e820_entry){ 0, BOOT_EBDA_ADDR, E820_RAM };
	t[n++] = (struct e820_entry){ BOOT_EBDA_ADDR, 0xa0000 - BOOT_EBDA_ADDR,
	    E820_RESERVED };
	t[n++] = (struct e820_entry){ BOOT_ACPI_ADDR,
	    BOOT_HIGH_ADDR - BOOT_ACPI_ADDR, E820_RESERVED };
	if (low > BOOT_HIGH_ADDR)
		t[n++] = (struct e820_entry){ BOOT_HIGH_ADDR,
		    low - BOOT_HIGH_ADDR, E820_RAM };
	if (vm->ram_size > low)
		t[n++] = (struct e820_entry){ GPA_HIGH_RAM_START,
		    vm->ram_size - low, E820_RAM };
	return n;
}

/* GDT: 0x08 flat code32, 0x10 code64 (__BOOT_CS), 0x18 flat data. */
static void
boot_write_gdt(struct vm *vm)
{
	static const uint64_t gdt[] = {
		0, 0x00cf9b000000ffffull, 0x00af9b000000ffffull,
		0x00cf93000000ffffull,
	};

	vm_write(vm, BOOT_GDT_ADDR, gdt, sizeof(gdt));
}

static void
boot_seg(struct cpu_seg *s, uint16_t sel, uint8_t type, int l, int db)
{
	*s = (struct cpu_seg){ .base = 0, .limit = 0xffffffff, .sel = sel,
	    .type = type, .s = 1, .present = 1, .l = l, .db = db, .g = 1 };
}

static void
boot_state_common(struct vm *vm, struct cpu_state *st)
{
	cpu_state_reset(st);
	boot_write_gdt(vm);
	st->gdt = (struct cpu_dtable){ BOOT_GDT_ADDR, 4 * 8 - 1 };
	st->idt = (struct cpu_dtable){ 0, 0 };
	st->seg[SEG_TR] = (struct cpu_seg){ .limit = 0x67, .type = 0xb,
	    .present = 1 };
	st->seg[SEG_LDTR] = (struct cpu_seg){ .type = 0x2, .present = 1,
	    .unusable = 1 };
	st->rflags = RFLAGS_FIXED;
}

void
boot_state_flat32(struct vm *vm, struct cpu_state *st, uint32_t entry)
{
	boot_state_common(vm, st);
	st->cr0 = CR0_PE | CR0_ET;
	boot_seg(&st->seg[SEG_CS], 0x08, 0xb, 0, 1);
	for (int i = 0; i < SEG_LDTR; i++)
		if (i != SEG_CS)
			boot_seg(&st->seg[i], 0x18, 0x3, 0, 1);
	st->rip = entry;
	st->gpr[R_RDX] = 0;
}

/* Identity map the low 4 GiB with 2 MiB pages at BOOT_PML4_ADDR. */
static void
boot_write_page_tables(struct vm *vm)
{
	uint64_t pml4 = BOOT_PML4_ADDR, pdpt = pml4 + 0x1000, pd = pdpt + 0x1000;
	uint64_t e;

	e = pdpt | 3;
	vm_write(vm, pml4, &e, 8);
	for (uint64_t i = 0; i < 4; i++) {
		e = (pd + i * 0x1000) | 3;
		vm_write(vm, pdpt + i * 8, &e, 8);
	}
	for (uint64_t i = 0; i < 4 * 512; i++) {
		e = (i << 21) | 0x83;	/* present, writable, 2 MiB */
		vm_write(vm, pd + i * 8, &e, 8);
	}
}

static void
boot_state_long64(struct vm *vm, struct cpu_state *st, uint64_t entry,
    uint64_t zeropage)
{
	boot_state_common(vm, st);
	boot_write_page_tables(vm);
	st->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
	st->cr3 = BOOT_PML4_ADDR;
	st->cr4 = CR4_PAE;
	st->efer = EFER_LME | EFER_LMA;
	boot_seg(&st->seg[SEG_CS], 0x10, 0xb, 1, 0);
	for (int i = 0; i < SEG_LDTR; i++)
		if (i != SEG_CS)
			boot_seg(&st->seg[i], 0x18, 0x3, 0, 1);
	st->rip = entry;
	st->gpr[R_RSI] = zeropage;
}

/*
 * The firmware a real-mode kernel setup expects, reduced to the one call
 * it cannot do without: INT 15h AX=E820h, the memory map.  Every other
 * vector points at an IRET.  16-bit code, hand-assembled; offsets of the
 * F000 segment: 0x00 IRET, 0x10 the INT 15h handler, 0xfe the entry
 * count, 0x100 the 20-byte entries.
 */
static const uint8_t bios_int15[] = {
	0x66, 0x3d, 0x20, 0xe8, 0x00, 0x00,		/* cmp eax, 0xe820 */
	0x75, 0x4f,					/* jne unsupported */
	0x66, 0x81, 0xfa, 0x50, 0x41, 0x4d, 0x53,	/* cmp edx, 'SMAP' */
	0x75, 0x46,					/* jne unsupported */
	0x2e, 0x3b, 0x1e, 0xfe, 0x00,			/* cmp bx, cs:[0xfe] */
	0x73, 0x3f,					/* jae unsupported */
	0x53, 0x56, 0x57, 0x1e, 0x51,			/* push bx si di ds cx */
	0x6b, 0xf3, 0x14,				/* imul si, bx, 20 */
	0x81, 0xc6, 0x00, 0x01,				/* add si, 0x100 */
	0x0e, 0x1f,					/* ds = cs */
	0xb9, 0x14, 0x00,				/* mov cx, 20 */
	0xfc, 0xf3, 0xa4,				/* cld; rep movsb */
	0x59, 0x1f, 0x5f, 0x5e, 0x5b,			/* pop cx ds di si bx */
	0x43,						/* inc bx */
	0x2e, 0x3b, 0x1e, 0xfe, 0x00,			/* cmp bx, cs:[0xfe] */
	0x72, 0x02,					/* jb 1f */
	0x31, 0xdb,					/* xor bx, bx: last */
	0x66, 0xb8, 0x50, 0x41, 0x4d, 0x53,		/* 1: mov eax, 'SMAP' */
	0x66, 0xb9, 0x14, 0x00, 0x00, 0x00,		/* mov ecx, 20 */
	0x66, 0x81, 0xe3, 0xff, 0xff, 0x00, 0x00,	/* and ebx, 0xffff */
	0x55, 0x89, 0xe5,				/* push bp; mov bp, sp */
	0x80, 0x66, 0x06, 0xfe,				/* clear CF in FLAGS */
	0x5d, 0xcf,					/* pop bp; iret */
	0x55, 0x89, 0xe5,				/* unsupported: */
	0x80, 0x4e, 0x06, 0x01,				/* set CF in FLAGS */
	0x5d, 0xb4, 0x86, 0xcf,				/* pop bp; ah=86h; iret */
};

static void
boot_realmode_bios(struct vm *vm)
{
	struct e820_entry t[BOOT_E820_MAX];
	uint8_t *f = vm_gpa_to_hva(vm, 0xf0000, 0x10000);
	uint8_t ivt[256 * 4];
	int n = boot_e820(vm, t, BOOT_E820_MAX);

	TV_ASSERT(f != NULL);
	memset(f, 0, 0x10000);
	f[0] = 0xcf;					/* iret */
	memcpy(f + 0x10, bios_int15, sizeof(bios_int15));
	wr16(f + 0xfe, n);
	for (int i = 0; i < n; i++) {
		wr64(f + 0x100 + 20 * i, t[i].addr);
		wr64(f + 0x108 + 20 * i, t[i].size);
		wr32(f + 0x110 + 20 * i, t[i].type);
	}
	for (int v = 0; v < 256; v++) {
		wr16(ivt + 4 * v, v == 0x15 ? 0x10 : 0);
		wr16(ivt + 4 * v + 2, 0xf000);
	}
	vm_write(vm, 0, ivt, sizeof(ivt));
}

/* Classic 16-bit entry: CS = seg + 0x20, the others = seg, SP = heap end. */
static void
boot_state_real(struct cpu_state *st, uint16_t seg)
{
	cpu_state_reset(st);
	for (int i = 0; i < SEG_LDTR; i++) {
		uint16_t sel = i == SEG_CS ? seg + 0x20 : seg;

		st->seg[i] = (struct cpu_seg){ .base = (uint64_t)sel << 4,
		    .limit = 0xffff, .sel = sel, .type = i == SEG_CS ? 0xb : 0x3,
		    .s = 1, .present = 1 };
	}
	st->rip = 0;
	st->gpr[R_RSP] = REALMODE_HEAP_END;
	st->gpr[R_RDX] = 0;
}

/* Place the initrd as high as the kernel allows, below low RAM's end. */
int
boot_place_initrd(struct vm *vm, const struct boot_file *rd, uint64_t addr_max,
    uint64_t floor, uint64_t *addr, char *err, size_t n)
{
	uint64_t top = boot_low_ram_end(vm);

	if (addr_max + 1 < top)
		top = addr_max + 1;
	if (rd->size > top || ((top - rd->size) & ~0xfffull) < floor)
		return boot_err(err, n, -ENOMEM, "initrd too big for guest "
		    "memory: %zu MiB initrd, %llu MiB free above the kernel; "
		    "raise --memory", rd->size >> 20, (unsigned long long)
		    (top > floor ? (top - floor) >> 20 : 0));
	*addr = (top - rd->size) & ~0xfffull;
	return vm_write(vm, *addr, rd->data, rd->size);
}

static void
boot_fill_e820(const struct vm *vm, uint8_t *bp)
{
	struct e820_entry t[BOOT_E820_MAX];
	int n = boot_e820(vm, t, BOOT_E820_MAX);

	bp[BP_E820_ENTRIES] = n;
	for (int i = 0; i < n; i++) {
		uint8_t *e = bp + BP_E820_TABLE + 20 * i;

		wr64(e, t[i].addr);
		wr64(e + 8, t[i].size);
		wr32(e + 16, t[i].type);
	}
}

/*
 * Hand the kernel BOOT_SEED_LEN bytes of the host's entropy as a
 * SETUP_RNG_SEED setup_data entry, so that its CRNG is ready before
 * userspace starts (as QEMU does since 7.1): the software CPU hides
 * RDRAND, and jitter entropy takes seconds.  hdr is the setup header as
 * it will reach the guest (offsets as in boot_params).  Only protocol
 * 2.09 and later have the setup_data field.
 */
static void
boot_rng_seed(struct vm *vm, int ver, uint8_t *hdr)
{
	uint8_t sd[16 + BOOT_SEED_LEN] = { 0 };
	size_t got = 0;

	if (ver < 0x209)
		return;
	while (got < BOOT_SEED_LEN) {
		ssize_t r = getrandom(sd + 16 + got, BOOT_SEED_LEN - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			log_warn("getrandom: the guest gets no RNG seed");
			return;
		}
		got += (size_t)r;
	}
	/* next stays 0: the only entry (the kernel's own header has none). */
	wr32(sd + 8, SETUP_RNG_SEED);
	wr32(sd + 12, BOOT_SEED_LEN);
	if (vm_write(vm, BOOT_SEED_ADDR, sd, sizeof(sd)) < 0)
		return;
	wr64(hdr + HDR_SETUP_DATA, BOOT_SEED_ADDR);
}

/* Validate the setup header; returns the protocol version or -errno. */
static int
boot_linux_check(const struct boot_file *k, size_t *setup_size, char *err,
    size_t n)
{
	const uint8_t *h = k->data;
	unsigned sects;
	uint16_t ver;

	if (k->size < 0x300 || rd16(h + HDR_BOOT_FLAG) != 0xaa55 ||
	    rd32(h + HDR_MAGIC) != 0x53726448)	/* "HdrS" */
		return boot_err(err, n, -ENOEXEC, "not a bzImage (no Linux "
		    "setup header)");
	ver = rd16(h + HDR_VERSION);
	if (ver < 0x206)
		return boot_err(err, n, -ENOEXEC, "boot protocol %u.%02u is "
		    "too old (2.06 or later needed)", ver >> 8, ver & 0xff);
	if (!(h[HDR_LOADFLAGS] & LOADED_HIGH))
		return boot_err(err, n, -ENOEXEC, "zImage kernels (not loaded "
		    "high) are not supported");
	sects = h[HDR_SETUP_SECTS] ? h[HDR_SETUP_SECTS] : 4;
	*setup_size = (size_t)(sects + 1) * 512;
	if (*setup_size >= k->size)
		return boot_err(err, n, -ENOEXEC, "bzImage truncated: setup "
		    "code claims %zu of %zu bytes", *setup_size, k->size);
	return ver;
}

/*
 * The zeropage of a 64-bit entry, written at BOOT_ZEROPAGE_ADDR: the
 * kernel's own setup header, the initrd, command line, ACPI root, e820
 * map, and the display's framebuffer in screen_info (offset 0) when the
 * VM has one.
 */
static void
boot_zeropage64(struct vm *vm, const struct vm_config *cfg, const uint8_t *h,
    int ver, uint64_t rdaddr, uint64_t rdsize, uint8_t *bp)
{
	struct display *d = display_find(vm);
	uint64_t rsdp = acpi_build(vm);

	memset(bp, 0, BP_SIZE);
	memcpy(bp + HDR_SETUP_SECTS, h + HDR_SETUP_SECTS,
	    0x202 + h[HDR_JUMP + 1] - HDR_SETUP_SECTS);
	bp[HDR_TYPE_OF_LOADER] = 0xff;
	wr32(bp + HDR_RAMDISK_IMAGE, (uint32_t)rdaddr);
	wr32(bp + HDR_RAMDISK_SIZE, (uint32_t)rdsize);
	wr32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(rdaddr >> 32));
	boot_rng_seed(vm, ver, bp);
	wr32(bp + HDR_CMD_LINE_PTR, BOOT_CMDLINE_ADDR);
	vm_write(vm, BOOT_CMDLINE_ADDR, cfg->append, strlen(cfg->append) + 1);
	if (ver >= 0x20e)
		wr64(bp + BP_ACPI_RSDP_ADDR, rsdp);
	boot_fill_e820(vm, bp);
	if (d != NULL)
		display_boot_screen_info(d, bp);
	vm_write(vm, BOOT_ZEROPAGE_ADDR, bp, BP_SIZE);
}

static int
boot_linux(struct vm *vm, const struct vm_config *cfg,
    const struct boot_file *k, struct cpu_state *bsp, char *err, size_t n)
{
	const uint8_t *h = k->data;
	static uint8_t bp[BP_SIZE];
	struct boot_file rd = { 0 };
	size_t setup_size = 0, ksize, rdsize = 0, cmdlen = strlen(cfg->append);
	uint64_t load = BOOT_HIGH_ADDR, need, rdaddr = 0;
	bool is64;
	int ver, r;

	if ((ver = boot_linux_check(k, &setup_size, err, n)) < 0)
		return ver;
	ksize = k->size - setup_size;
	is64 = rd16(h + HDR_XLOADFLAGS) & XLF_KERNEL_64;
	if (cmdlen > rd32(h + HDR_CMDLINE_SIZE) || cmdlen >= BOOT_CMDLINE_MAX)
		return boot_err(err, n, -E2BIG, "command line of %zu bytes is "
		    "longer than the kernel accepts (%u)", cmdlen,
		    rd32(h + HDR_CMDLINE_SIZE));
	if (is64 && h[HDR_RELOCATABLE] && ver >= 0x20a &&
	    rd64(h + HDR_PREF_ADDRESS) >= BOOT_HIGH_ADDR &&
	    rd64(h + HDR_PREF_ADDRESS) < GPA_LOW_RAM_END)
		load = rd64(h + HDR_PREF_ADDRESS);
	need = ver >= 0x20a && rd32(h + HDR_INIT_SIZE) > ksize ?
	    rd32(h + HDR_INIT_SIZE) : ksize;
	if (load + need > boot_low_ram_end(vm))
		return boot_err(err, n, -ENOMEM, "memory too small for the "
		    "kernel: it needs %llu MiB at %#llx; raise --memory",
		    (unsigned long long)((load + need + (1 << 20) - 1) >> 20),
		    (unsigned long long)load);
	vm_write(vm, load, h + setup_size, ksize);
	if (cfg->initrd[0] != '\0') {
		if ((r = boot_map_file(cfg->initrd, &rd, "initrd", err, n)) < 0)
			return r;
		r = boot_place_initrd(vm, &rd, rd32(h + HDR_INITRD_ADDR_MAX),
		    load + need, &rdaddr, err, n);
		rdsize = rd.size;
		boot_unmap_file(&rd);
		if (r < 0)
			return r;
	}
	if (is64) {
		boot_zeropage64(vm, cfg, h, ver, rdaddr, rdsize, bp);
		boot_state_long64(vm, bsp, load + 0x200, BOOT_ZEROPAGE_ADDR);
		return 0;
	}
	acpi_build(vm);
	memset(bp, 0, sizeof(bp));
	memcpy(bp + HDR_SETUP_SECTS, h + HDR_SETUP_SECTS,
	    0x202 + h[HDR_JUMP + 1] - HDR_SETUP_SECTS);
	bp[HDR_TYPE_OF_LOADER] = 0xff;
	wr32(bp + HDR_RAMDISK_IMAGE, (uint32_t)rdaddr);
	wr32(bp + HDR_RAMDISK_SIZE, (uint32_t)rdsize);
	wr32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(rdaddr >> 32));
	/*
	 * Real-mode entry: the setup code is loaded at BOOT_REALMODE_ADDR
	 * and its first page doubles as the zeropage, so only the setup
	 * header may be filled in (the e820 table would land on code; the
	 * setup code asks the firmware for it, as with any boot loader).
	 */
	if (setup_size > REALMODE_HEAP_END - 0x200)
		return boot_err(err, n, -ENOEXEC, "real-mode setup code too "
		    "large (%zu bytes)", setup_size);
	bp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	wr16(bp + HDR_HEAP_END_PTR, REALMODE_HEAP_END - 0x200);
	boot_rng_seed(vm, ver, bp);
	wr32(bp + HDR_CMD_LINE_PTR, BOOT_REALMODE_ADDR + REALMODE_HEAP_END);
	vm_write(vm, BOOT_REALMODE_ADDR, h, setup_size);
	vm_write(vm, BOOT_REALMODE_ADDR + HDR_SETUP_SECTS, bp + HDR_SETUP_SECTS,
	    0x202 + h[HDR_JUMP + 1] - HDR_SETUP_SECTS);
	vm_write(vm, BOOT_REALMODE_ADDR + REALMODE_HEAP_END, cfg->append,
	    cmdlen + 1);
	boot_realmode_bios(vm);
	boot_state_real(bsp, BOOT_REALMODE_ADDR >> 4);
	return 0;
}

/*
 * A bzImage's vmlinux, unpacked on the host, entered at its 64-bit entry
 * (startup_64; a vmlinux's ELF entry is its physical address) with a
 * zeropage made from the bzImage's setup header, as boot.rst's 64-bit
 * boot protocol allows and Firecracker boots vmlinux.  PVH's start_info
 * has no video fields (Linux builds its boot_params from start_info
 * alone), so this is the way in that can announce a display.
 */
static int
boot_vmlinux64(struct vm *vm, const struct vm_config *cfg,
    const struct boot_file *k, const struct boot_file *elf,
    struct cpu_state *bsp, char *err, size_t n)
{
	static uint8_t bp[BP_SIZE];
	const uint8_t *h = k->data;
	struct boot_file rd = { 0 };
	uint64_t entry, end, rdaddr = 0, rdsize = 0;
	int r;

	if ((r = boot_elf_load(vm, elf, &entry, &end, err, n)) < 0)
		return r;
	if (cfg->initrd[0] != '\0') {
		if ((r = boot_map_file(cfg->initrd, &rd, "initrd", err, n)) < 0)
			return r;
		r = boot_place_initrd(vm, &rd, rd32(h + HDR_INITRD_ADDR_MAX),
		    end, &rdaddr, err, n);
		rdsize = rd.size;
		boot_unmap_file(&rd);
		if (r < 0)
			return r;
	}
	boot_zeropage64(vm, cfg, h, rd16(h + HDR_VERSION), rdaddr, rdsize,
	    bp);
	boot_state_long64(vm, bsp, entry, BOOT_ZEROPAGE_ADDR);
	return 0;
}

/*
 * A bzImage whose vmlinux has a PVH note is unpacked on the host and
 * entered there (see boot_unpack.c); any other goes through its own
 * decompressor.  With a display, a 64-bit kernel's vmlinux is entered at
 * its 64-bit entry instead, so that screen_info reaches it.
 * PVH's start_info has no setup_data list, so a PVH boot carries no RNG
 * seed (boot_rng_seed()): there the guest's CRNG is fed by virtio-rng
 * once its driver loads.
 */
static int
boot_bzimage(struct vm *vm, const struct vm_config *cfg,
    const struct boot_file *k, struct cpu_state *bsp, char *err, size_t n)
{
	struct boot_file elf;
	size_t setup_size;
	uint32_t entry;
	int ver, r;

	if ((ver = boot_linux_check(k, &setup_size, err, n)) < 0)
		return ver;
	if (strlen(cfg->append) > rd32(k->data + HDR_CMDLINE_SIZE))
		return boot_err(err, n, -E2BIG, "command line of %zu bytes is "
		    "longer than the kernel accepts (%u)", strlen(cfg->append),
		    rd32(k->data + HDR_CMDLINE_SIZE));
	if (cfg->bzimage_entry || boot_unpack(k, &elf) < 0)
		return boot_linux(vm, cfg, k, bsp, err, n);
	if (display_find(vm) != NULL &&
	    (rd16(k->data + HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
		r = boot_vmlinux64(vm, cfg, k, &elf, bsp, err, n);
		boot_unmap_file(&elf);
		return r;
	}
	if (boot_pvh_entry(&elf, &entry) == 0) {
		r = boot_load_pvh(vm, cfg, &elf, bsp, err, n);
		boot_unmap_file(&elf);
		return r;
	}
	boot_unmap_file(&elf);
	return boot_linux(vm, cfg, k, bsp, err, n);
}

int
boot_load(struct vm *vm, const struct vm_config *cfg, struct cpu_state *bsp,
    char *err, size_t errlen)
{
	struct boot_file k;
	uint32_t entry;
	size_t off;
	int r;

	if ((r = boot_map_file(cfg->kernel, &k, "kernel", err, errlen)) < 0)
		return r;
	if (k.size >= 0x206 && rd32(k.data + HDR_MAGIC) == 0x53726448)
		r = boot_bzimage(vm, cfg, &k, bsp, err, errlen);
	else if (boot_pvh_entry(&k, &entry) == 0)
		r = boot_load_pvh(vm, cfg, &k, bsp, err, errlen);
	else if (boot_multiboot_header(&k, &off) == 0)
		r = boot_load_multiboot(vm, cfg, &k, bsp, err, errlen);
	else
		r = boot_err(err, errlen, -ENOEXEC, "kernel %s: not a bzImage, "
		    "a PVH ELF or a multiboot kernel", cfg->kernel);
	boot_unmap_file(&k);
	return r;
}
