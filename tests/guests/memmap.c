/* Checks a memory map, whichever boot protocol delivered it. */
#include "guest.h"

#define E820_RAM 1

int memmap_usable(const struct memmap_entry *m, unsigned n, uint64_t addr, uint64_t size)
{
	/* Walk forward through adjacent usable entries from addr. */
	uint64_t end = addr + size;
	int moved = 1;

	while (addr < end && moved) {
		moved = 0;
		for (unsigned i = 0; i < n; i++) {
			if (m[i].type == E820_RAM && m[i].addr <= addr &&
			    addr < m[i].addr + m[i].size) {
				addr = m[i].addr + m[i].size;
				moved = 1;
			}
		}
	}
	return addr >= end;
}

int memmap_touches_usable(const struct memmap_entry *m, unsigned n, uint64_t addr,
			  uint64_t size)
{
	for (unsigned i = 0; i < n; i++)
		if (m[i].type == E820_RAM && addr < m[i].addr + m[i].size &&
		    m[i].addr < addr + size)
			return 1;
	return 0;
}

uint32_t memmap_report(const struct memmap_entry *m, unsigned n, uint64_t must_lo,
		       uint64_t must_hi)
{
	uint64_t usable = 0;
	unsigned bad = n;

	for (unsigned i = 0; i < n; i++) {
		report_printf("e820 0x%llx-0x%llx %u\n", (unsigned long long)m[i].addr,
			      (unsigned long long)(m[i].addr + m[i].size), m[i].type);
		if (m[i].type == E820_RAM)
			usable += m[i].size;
		if (i && m[i].addr < m[i - 1].addr + m[i - 1].size && bad == n)
			bad = i;
	}
	report_check(n > 0 && n <= MEMMAP_MAX, "e820_count", "%u entries", n);
	report_check(bad == n, "e820_sorted",
		     "entry %u starts before the end of the one before it", bad);
	report_check(memmap_usable(m, n, 0x1000, 0x9f000 - 0x1000), "e820_lowmem",
		     "0x1000-0x9f000 is not all usable RAM");
	report_check(memmap_usable(m, n, must_lo, must_hi - must_lo), "e820_covers_image",
		     "0x%llx-0x%llx (this guest) is not usable RAM",
		     (unsigned long long)must_lo, (unsigned long long)must_hi);
	report_printf("mem_kb %lu\n", (unsigned long)(usable >> 10));
	return (uint32_t)(usable >> 10);
}
