/*
 * Real-mode test guest (built with -m16).  Checks the segments it was
 * entered with and the zeropage fields the loader filled: loader type,
 * command line, initrd, and the e820 map (from the zeropage; when it is
 * empty and a BIOS is there, from INT 15h E820 as Linux's own setup code
 * does), then the devices, all over port I/O.
 */
#include "guest.h"

extern uint16_t entry_ds, entry_es, entry_ss, entry_sp, entry_cs;
extern volatile uint8_t zeropage[];	/* offset 0 of the setup segment */
void realmode_main(void);

#define ZP8(off) (*(volatile uint8_t *)(zeropage + (off)))
#define ZP16(off) (*(volatile uint16_t *)(zeropage + (off)))
#define ZP32(off) (*(volatile uint32_t *)(zeropage + (off)))

/* A byte at a linear address below 1 MiB + 64 KiB, through %fs. */
static uint8_t rm_peek(uint32_t lin)
{
	uint8_t v;

	__asm__ volatile("movw %w1, %%fs\n\tmovb %%fs:(%2), %0"
			 : "=q"(v) : "r"((uint16_t)(lin >> 4)), "r"(lin & 15));
	return v;
}

static uint32_t rm_peek32(uint32_t lin)
{
	return rm_peek(lin) | (uint32_t)rm_peek(lin + 1) << 8 |
	       (uint32_t)rm_peek(lin + 2) << 16 | (uint32_t)rm_peek(lin + 3) << 24;
}

struct rm_e820 {
	uint64_t addr, size;
	uint32_t type, ext;
} __attribute__((packed));

/* One INT 15h AX=E820 call; returns 0 at the end of the map or on error. */
static int rm_bios_e820(uint32_t *cont, struct rm_e820 *buf)
{
	uint32_t eax = 0xe820, ebx = *cont, ecx = 20, edx = 0x534d4150;
	uint8_t cf;

	__asm__ volatile("int $0x15\n\tsetc %4"
			 : "+a"(eax), "+b"(ebx), "+c"(ecx), "+d"(edx), "=qm"(cf)
			 : "D"(buf) : "memory", "esi", "cc");
	if (cf || eax != 0x534d4150 || ecx < 20)
		return 0;
	*cont = ebx;
	return 1;
}

static unsigned rm_e820_bios(struct memmap_entry *m)
{
	static struct rm_e820 e;
	uint32_t cont = 0;
	unsigned n = 0;

	do {
		if (!rm_bios_e820(&cont, &e))
			break;
		m[n].addr = e.addr;
		m[n].size = e.size;
		m[n].type = e.type;
		n++;
	} while (cont && n < MEMMAP_MAX);
	return n;
}

static void rm_memory(void)
{
	static struct memmap_entry m[MEMMAP_MAX];
	unsigned n = ZP8(0x1e8), i;
	/* INT 15h's vector: a BIOS has set it, a bare VMM leaves 0. */
	uint32_t int15 = rm_peek32(0x15 * 4);

	if (n && n <= MEMMAP_MAX) {
		report_printf("e820_source zeropage\n");
		for (i = 0; i < n; i++) {
			const volatile uint8_t *e = zeropage + 0x2d0 + i * 20;

			m[i].addr = *(const volatile uint64_t *)e;
			m[i].size = *(const volatile uint64_t *)(e + 8);
			m[i].type = *(const volatile uint32_t *)(e + 16);
		}
	} else if (int15) {
		report_printf("e820_source bios\n");
		n = rm_e820_bios(m);
	} else {
		report_check(0, "rm_e820", "zeropage e820_entries is %u and there is no BIOS", n);
		return;
	}
	memmap_report(m, n, 0x100000, 0x100000 + ZP32(0x1f4) * 16);
}

static void rm_segments(void)
{
	report_printf("entry cs 0x%x ds 0x%x es 0x%x ss 0x%x sp 0x%x\n", entry_cs, entry_ds,
		      entry_es, entry_ss, entry_sp);
	report_check(entry_cs == entry_ds + 0x20 && entry_es == entry_ds && entry_ss == entry_ds,
		     "rm_segments", "want CS = DS + 0x20 and ES = SS = DS");
	/* The setup segment must leave room below 640 KiB for the setup. */
	report_check(entry_ds >= 0x1000 && entry_ds <= 0x9000, "rm_segment_range",
		     "setup segment 0x%x", entry_ds);
}

static void rm_cmdline(char *buf, unsigned size)
{
	uint32_t ptr = ZP32(0x228), max = ZP32(0x238), i;

	buf[0] = 0;
	if (!report_check(ptr != 0, "rm_cmdline", "cmd_line_ptr is 0"))
		return;
	/* Protocol 2.02+: between the setup heap's end and 0xa0000. */
	if (!report_check(ptr < 0xa0000 && ptr >= entry_ds * 16u + 0x1000, "rm_cmdline_place",
			  "cmd_line_ptr 0x%lx", (unsigned long)ptr))
		return;
	for (i = 0; i + 1 < size && i <= max && (buf[i] = (char)rm_peek(ptr + i)); i++)
		;
	buf[i] = 0;
	report_check(i <= max, "rm_cmdline_size", "longer than cmdline_size %lu",
		     (unsigned long)max);
	report_cmdline(buf);
}

static void rm_initrd(void)
{
	uint32_t addr = ZP32(0x218), size = ZP32(0x21c), max = ZP32(0x22c);
	uint32_t kend = 0x100000 + ZP32(0x1f4) * 16;

	report_printf("initrd 0x%lx size %lu\n", (unsigned long)addr, (unsigned long)size);
	if (!size)
		return;
	report_check(addr + size - 1 <= max && addr >= kend, "rm_initrd_place",
		     "initrd 0x%lx-0x%lx, kernel ends 0x%lx, initrd_addr_max 0x%lx",
		     (unsigned long)addr, (unsigned long)(addr + size), (unsigned long)kend,
		     (unsigned long)max);
}

void realmode_main(void)
{
	static char cmdline[2048];
	uint8_t loader = ZP8(0x210), flags = ZP8(0x211);

	report_init();
	report_printf("termvisor test guest: realmode\nentry 16\n");
	rm_segments();
	report_printf("loader 0x%02x loadflags 0x%02x heap_end_ptr 0x%x\n", loader, flags,
		      ZP16(0x224));
	report_check(loader != 0, "rm_type_of_loader", "type_of_loader is 0");
	if (flags & 0x80)
		report_check(ZP16(0x224) > 0x1000 && ZP16(0x224) <= 0xfe00, "rm_heap_end",
			     "heap_end_ptr 0x%x", ZP16(0x224));
	rm_cmdline(cmdline, sizeof(cmdline));
	rm_initrd();
	rm_memory();
	devices_check(cmdline);
	report_finish();
}
