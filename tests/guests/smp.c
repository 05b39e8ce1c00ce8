/*
 * Wakes the application processors the way an OS does (xAPIC INIT, then
 * two STARTUP IPIs to all but self) and checks that as many start as the
 * MADT lists, each with its own APIC ID: every vCPU is really there.
 */
#include "guest.h"

#define LAPIC_BASE 0xfee00000u
#define TRAMPOLINE 0x8000u	/* one page below 1 MiB, checked usable */

extern const uint8_t smp_trampoline[], smp_trampoline_end[], smp_count[], smp_ids[];

static volatile uint32_t *smp_lapic(unsigned reg)
{
	uintptr_t p = LAPIC_BASE + reg;

	__asm__("" : "+r"(p));
	return (volatile uint32_t *)p;
}

static int smp_ipi(uint32_t icr)
{
	unsigned i;

	*smp_lapic(0x310) = 0;
	*smp_lapic(0x300) = icr;
	for (i = 0; i < 100000 && (*smp_lapic(0x300) & (1u << 12)); i++)
		;
	return !(*smp_lapic(0x300) & (1u << 12));
}

void smp_check(unsigned ncpus, const struct memmap_entry *m, unsigned n)
{
	uintptr_t page = TRAMPOLINE;
	uint8_t *t;
	volatile uint32_t *count;
	volatile uint8_t *ids;
	unsigned bsp, i, seen = 0;

	__asm__("" : "+r"(page));
	t = (uint8_t *)page;
	if (!report_check(ncpus >= 1 && memmap_usable(m, n, TRAMPOLINE, 4096), "smp_trampoline",
			  "no usable page at 0x%x for the AP start code (ncpus %u)", TRAMPOLINE,
			  ncpus))
		return;
	memcpy(t, smp_trampoline, (size_t)(smp_trampoline_end - smp_trampoline));
	count = (volatile uint32_t *)(t + (smp_count - smp_trampoline));
	ids = t + (smp_ids - smp_trampoline);
	bsp = *smp_lapic(0x20) >> 24;
	*smp_lapic(0xf0) |= 0x100;	/* software-enable the local APIC */
	/* INIT, 10 ms, then STARTUP twice 200 us apart (vector = page). */
	report_check(smp_ipi(0x000c4500), "smp_init_ipi", "ICR stayed busy");
	devices_delay_us(10000);
	for (i = 0; i < 2; i++) {
		smp_ipi(0x000c4600 | TRAMPOLINE >> 12);
		devices_delay_us(200);
	}
	for (i = 0; i < 500 && *count < ncpus - 1; i++)
		devices_delay_us(1000);
	devices_delay_us(1000);		/* a late extra AP would show too */
	report_printf("smp_bsp %u\nsmp_started %u\n", bsp, *count);
	for (i = 0; i < 256; i++)
		if (ids[i] && i != bsp)
			seen++;
	report_check(*count == ncpus - 1 && seen == ncpus - 1, "smp_aps_started",
		     "%u APs counted in, %u distinct APIC IDs, want %u", *count, seen, ncpus - 1);
}
