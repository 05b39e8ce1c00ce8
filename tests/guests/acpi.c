/*
 * ACPI tables as an OS finds them: RSDP (given, or found by the scan the
 * ACPI spec describes), then XSDT (or RSDT), FADT, DSDT and MADT.  Every
 * table's checksum and length is checked; the MADT's enabled processors
 * are the CPU count.
 */
#include "guest.h"

struct acpi_header {
	char sig[4];
	uint32_t length;
	uint8_t revision, checksum;
	char oem[6], oem_table[8];
	uint32_t oem_rev, creator, creator_rev;
} __attribute__((packed));

/* The memory map the tables are checked against, and the first table
 * found in usable RAM (reported once, at the end). */
static const struct memmap_entry *acpi_map;
static unsigned acpi_map_n;
static uint64_t acpi_in_ram;

static void acpi_note_place(uint64_t addr, uint32_t len)
{
	if (!acpi_in_ram && memmap_touches_usable(acpi_map, acpi_map_n, addr, len))
		acpi_in_ram = addr;
}

static uint8_t acpi_sum(const void *p, uint32_t len)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *b++);
	return s;
}

static int acpi_rsdp_valid(const uint8_t *p)
{
	if (memcmp(p, "RSD PTR ", 8) || acpi_sum(p, 20))
		return 0;
	return p[15] < 2 || (*(const uint32_t *)(p + 20) >= 36 && !acpi_sum(p, 36));
}

static uint64_t acpi_scan(uint64_t from, uint64_t to)
{
	for (uint64_t a = from; a + 36 <= to; a += 16)
		if (acpi_rsdp_valid(phys(a)))
			return a;
	return 0;
}

/* Checks one table's signature, length and checksum; prints a fact line. */
static const struct acpi_header *acpi_table(uint64_t addr, const char *sig)
{
	const struct acpi_header *h;
	char name[16] = "acpi_";

	memcpy(name + 5, sig, 4);
	if (!addr || addr >= 0xffffffffu) {
		report_check(0, name, "table address 0x%llx", (unsigned long long)addr);
		return 0;
	}
	h = phys(addr);
	report_printf("acpi %c%c%c%c 0x%llx len %u rev %u\n", h->sig[0], h->sig[1], h->sig[2],
		      h->sig[3], (unsigned long long)addr, h->length, h->revision);
	if (!report_check(!memcmp(h->sig, sig, 4) && h->length >= sizeof(*h) &&
			  h->length < (1u << 20) && !acpi_sum(h, h->length), name,
			  "at 0x%llx: signature %c%c%c%c, length %u, checksum off by 0x%02x",
			  (unsigned long long)addr, h->sig[0], h->sig[1], h->sig[2], h->sig[3],
			  h->length, h->length < (1u << 20) ? acpi_sum(h, h->length) : 0))
		return 0;
	acpi_note_place(addr, h->length);
	return h;
}

static unsigned acpi_madt(const struct acpi_header *madt)
{
	const uint8_t *p = (const uint8_t *)madt + 44, *end = (const uint8_t *)madt + madt->length;
	unsigned cpus = 0, ioapics = 0;
	int bad = 0;

	for (; p + 2 <= end; p += p[1]) {
		if (p[1] < 2 || p + p[1] > end) {
			bad = 1;
			break;
		}
		if (p[0] == 0 && p[1] == 8 && (*(const uint32_t *)(p + 4) & 1))
			cpus++;		/* processor local APIC, enabled */
		else if (p[0] == 9 && p[1] == 16 && (*(const uint32_t *)(p + 8) & 1))
			cpus++;		/* processor local x2APIC, enabled */
		else if (p[0] == 1)
			ioapics++;
	}
	report_check(!bad, "acpi_madt_entries", "entry at offset %u has length %u",
		     (unsigned)(p - (const uint8_t *)madt), p[1]);
	report_check(ioapics >= 1, "acpi_madt_ioapic", "no I/O APIC entry");
	report_printf("ncpus %u\n", cpus);
	return cpus;
}

/* Powering off needs \_S5 (the SLP_TYP values) in the DSDT's AML. */
static void acpi_dsdt(const struct acpi_header *dsdt)
{
	const char *p, *end;

	if (!dsdt)
		return;
	p = (const char *)dsdt + sizeof(*dsdt);
	end = (const char *)dsdt + dsdt->length;
	for (; p + 4 <= end; p++)
		if (!memcmp(p, "_S5_", 4))
			break;
	report_check(p + 4 <= end, "acpi_dsdt_s5", "no _S5_ object: the OS cannot power off");
}

static void acpi_fadt(const struct acpi_header *fadt)
{
	const uint8_t *f = (const uint8_t *)fadt;
	uint64_t dsdt = *(const uint32_t *)(f + 40);
	uint32_t pm1a_cnt = *(const uint32_t *)(f + 64);

	/* X_DSDT (ACPI 2.0+, offset 140) wins over DSDT when present. */
	if (fadt->length >= 148 && *(const uint64_t *)(f + 140))
		dsdt = *(const uint64_t *)(f + 140);
	if (fadt->length >= 244 && !pm1a_cnt)
		pm1a_cnt = (uint32_t)*(const uint64_t *)(f + 172 + 4);
	report_printf("acpi pm1a_cnt 0x%x\n", pm1a_cnt);
	/* Without PM1a control, an OS has no ACPI way to power off. */
	report_check(pm1a_cnt != 0, "acpi_fadt_pm1a", "PM1a control block is 0");
	/* ACPI 2.0 reset register (FADT flags bit 10): a fact, since a
	 * revision 1 FADT (QEMU's pc) has none and Linux then resets
	 * through the keyboard controller. */
	if (fadt->length >= 129 && (*(const uint32_t *)(f + 112) & (1u << 10)))
		report_printf("acpi reset_reg space %u addr 0x%llx value 0x%x\n", f[116],
			      (unsigned long long)*(const uint64_t *)(f + 120), f[128]);
	else
		report_printf("acpi reset_reg none\n");
	acpi_dsdt(acpi_table(dsdt, "DSDT"));
}

unsigned acpi_check(uint64_t rsdp, const struct memmap_entry *map, unsigned map_n)
{
	const uint8_t *r;
	uint64_t root;
	unsigned width, n, cpus = 0;
	const struct acpi_header *rt;
	int fadt = 0, madt = 0;

	acpi_map = map;
	acpi_map_n = map_n;
	if (!rsdp) {
		/* EBDA first 1 KiB, then the BIOS area, as the spec says. */
		uint64_t ebda = (uint64_t)*(const uint16_t *)phys(0x40e) << 4;

		if (ebda >= 0x80000 && ebda < 0xa0000)
			rsdp = acpi_scan(ebda, ebda + 1024);
		if (!rsdp)
			rsdp = acpi_scan(0xe0000, 0x100000);
	}
	if (!report_check(rsdp != 0, "acpi_rsdp", "no RSDP found"))
		return 0;
	r = phys(rsdp);
	report_printf("rsdp 0x%llx rev %u\n", (unsigned long long)rsdp, r[15]);
	if (!report_check(acpi_rsdp_valid(r), "acpi_rsdp_checksum", "bad signature or checksum"))
		return 0;
	acpi_note_place(rsdp, r[15] >= 2 ? 36 : 20);
	width = r[15] >= 2 && *(const uint64_t *)(r + 24) ? 8 : 4;
	root = width == 8 ? *(const uint64_t *)(r + 24) : *(const uint32_t *)(r + 16);
	rt = acpi_table(root, width == 8 ? "XSDT" : "RSDT");
	if (!rt)
		return 0;
	n = (rt->length - 36) / width;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = (const uint8_t *)rt + 36 + i * width;
		uint64_t a = width == 8 ? *(const uint64_t *)e : *(const uint32_t *)e;
		const struct acpi_header *h = phys(a);

		if (!a || a >= 0xffffffffu)
			continue;
		if (!memcmp(h->sig, "FACP", 4) && acpi_table(a, "FACP")) {
			fadt = 1;
			acpi_fadt(h);
		} else if (!memcmp(h->sig, "APIC", 4) && acpi_table(a, "APIC")) {
			madt = 1;
			cpus = acpi_madt(h);
		} else {
			report_printf("acpi %c%c%c%c 0x%llx len %u\n", h->sig[0], h->sig[1],
				      h->sig[2], h->sig[3], (unsigned long long)a, h->length);
		}
	}
	report_check(fadt, "acpi_has_fadt", "no FACP table in the %s", width == 8 ? "XSDT" : "RSDT");
	report_check(madt, "acpi_has_madt", "no APIC table in the %s", width == 8 ? "XSDT" : "RSDT");
	report_check(!acpi_in_ram, "acpi_not_in_ram",
		     "table at 0x%llx lies in usable RAM (e820 type 1), the OS may overwrite it",
		     (unsigned long long)acpi_in_ram);
	return cpus;
}
