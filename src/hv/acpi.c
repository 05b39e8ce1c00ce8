/*
 * ACPI tables for the guest: RSDP, RSDT/XSDT, FADT (+FACS), MADT and a
 * DSDT written in AML by the small encoder below.  They tell the guest
 * how many vCPUs exist (MADT), where the PM registers are for power-off
 * and reset (FADT -> src/devices/acpi_pm.c at 0x600/0x604/0x608/0xcf9),
 * how PCI INTx pins route to GSIs (_PRT: slot S pin P -> 16 +
 * (S + P) % 4, matching src/devices/pci.c), and where the pvpanic port is.
 */
#include <stdlib.h>
#include <string.h>

#include "devices/pvpanic.h"
#include "hv/boot.h"
#include "hv/vm.h"
#include "util/log.h"

#define ACPI_PM1A_EVT	0x600
#define ACPI_PM1A_CNT	0x604
#define ACPI_PM_TMR	0x608
#define ACPI_RESET_PORT	0xcf9
#define ACPI_SCI_GSI	9
#define ACPI_S5_TYPE	5

struct aml {
	uint8_t *b;
	size_t len, cap;
};

static void
aml_put(struct aml *a, const void *p, size_t n)
{
	if (a->len + n > a->cap) {
		size_t cap = a->cap ? a->cap : 256;

		while (cap < a->len + n)
			cap *= 2;
		if ((a->b = realloc(a->b, cap)) == NULL)
			fatalx("out of memory building ACPI tables");
		a->cap = cap;
	}
	memcpy(a->b + a->len, p, n);
	a->len += n;
}

static void
aml_byte(struct aml *a, uint8_t v)
{
	aml_put(a, &v, 1);
}

static void
aml_le(struct aml *a, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

/* Integer with the shortest encoding. */
static void
aml_int(struct aml *a, uint64_t v)
{
	if (v == 0 || v == 1)
		aml_byte(a, (uint8_t)v);		/* ZeroOp, OneOp */
	else if (v <= 0xff)
		aml_byte(a, 0x0a), aml_le(a, v, 1);
	else if (v <= 0xffff)
		aml_byte(a, 0x0b), aml_le(a, v, 2);
	else if (v <= 0xffffffff)
		aml_byte(a, 0x0c), aml_le(a, v, 4);
	else
		aml_byte(a, 0x0e), aml_le(a, v, 8);
}

/* "\\_SB.PCI0" or "_HID": name segments padded to 4 with '_'. */
static void
aml_name(struct aml *a, const char *path)
{
	const char *seg[8];
	int nseg = 0;

	if (*path == '\\')
		aml_byte(a, '\\'), path++;
	while (*path && nseg < 8) {
		seg[nseg++] = path;
		while (*path && *path != '.')
			path++;
		if (*path == '.')
			path++;
	}
	if (nseg == 2)
		aml_byte(a, 0x2e);
	else if (nseg > 2)
		aml_byte(a, 0x2f), aml_byte(a, nseg);
	for (int i = 0; i < nseg; i++) {
		char s[4] = { '_', '_', '_', '_' };

		for (int j = 0; j < 4 && seg[i][j] && seg[i][j] != '.'; j++)
			s[j] = seg[i][j];
		aml_put(a, s, 4);
	}
}

/* op (1 or 2 bytes), PkgLength, then body; frees body. */
static void
aml_wrap(struct aml *a, const uint8_t *op, int oplen, struct aml *body)
{
	size_t len = body->len;
	int extra = len + 1 < 0x40 ? 0 : len + 2 < 0x1000 ? 1 :
	    len + 3 < 0x100000 ? 2 : 3;

	len += 1 + extra;
	aml_put(a, op, oplen);
	if (extra == 0) {
		aml_byte(a, (uint8_t)len);
	} else {
		aml_byte(a, (uint8_t)((extra << 6) | (len & 0xf)));
		for (int i = 0; i < extra; i++)
			aml_byte(a, (uint8_t)(len >> (4 + 8 * i)));
	}
	aml_put(a, body->b, body->len);
	free(body->b);
	*body = (struct aml){ 0 };
}

static void
aml_package_ints(struct aml *a, const uint64_t *v, int n)
{
	static const uint8_t op = 0x12;
	struct aml body = { 0 };

	aml_byte(&body, (uint8_t)n);
	for (int i = 0; i < n; i++)
		aml_int(&body, v[i]);
	aml_wrap(a, &op, 1, &body);
}

static void
aml_name_int(struct aml *a, const char *name, uint64_t v)
{
	aml_byte(a, 0x08);
	aml_name(a, name);
	aml_int(a, v);
}

/* EISA ID "PNP0A03" compressed to its 32-bit form. */
static uint32_t
aml_eisaid(const char *id)
{
	uint32_t v = ((id[0] - '@') & 0x1f) << 26 | ((id[1] - '@') & 0x1f) << 21 |
	    ((id[2] - '@') & 0x1f) << 16 | (uint32_t)strtoul(id + 3, NULL, 16);

	return __builtin_bswap32(v);
}

static void
res_word(struct aml *r, uint8_t type, uint8_t tflags, uint16_t min,
    uint16_t max)
{
	aml_byte(r, 0x88);
	aml_le(r, 0x0d, 2);
	aml_byte(r, type);
	aml_byte(r, 0x0c);		/* min and max fixed, producer */
	aml_byte(r, tflags);
	aml_le(r, 0, 2);		/* granularity */
	aml_le(r, min, 2);
	aml_le(r, max, 2);
	aml_le(r, 0, 2);		/* translation */
	aml_le(r, (uint32_t)max - min + 1, 2);
}

static void
res_dword_mem(struct aml *r, uint32_t min, uint32_t max)
{
	aml_byte(r, 0x87);
	aml_le(r, 0x17, 2);
	aml_byte(r, 0);			/* memory */
	aml_byte(r, 0x0c);
	aml_byte(r, 0x03);		/* read-write, cacheable */
	aml_le(r, 0, 4);
	aml_le(r, min, 4);
	aml_le(r, max, 4);
	aml_le(r, 0, 4);
	aml_le(r, (uint64_t)max - min + 1, 4);
}

static void
aml_pci_crs(struct aml *a)
{
	static const uint8_t bufop = 0x11;
	struct aml r = { 0 }, body = { 0 };
	static const uint8_t io_cf8[] = { 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c,
	    0x01, 0x08 };

	res_word(&r, 2, 0, 0, 0xff);			/* bus numbers */
	aml_put(&r, io_cf8, sizeof(io_cf8));
	res_word(&r, 1, 0x03, 0x0000, 0x0cf7);
	res_word(&r, 1, 0x03, 0x0d00, 0xffff);
	res_dword_mem(&r, 0x000a0000, 0x000bffff);
	res_dword_mem(&r, (uint32_t)GPA_PCI_MMIO_START,
	    (uint32_t)GPA_PCI_MMIO_END - 1);
	aml_byte(&r, 0x79);				/* end tag */
	aml_byte(&r, 0);
	aml_int(&body, r.len);
	aml_put(&body, r.b, r.len);
	free(r.b);
	aml_byte(a, 0x08);
	aml_name(a, "_CRS");
	aml_wrap(a, &bufop, 1, &body);
}

static void
aml_pci_prt(struct aml *a)
{
	static const uint8_t pkgop = 0x12;
	struct aml body = { 0 };

	aml_byte(&body, 32 * 4);
	for (uint64_t slot = 0; slot < 32; slot++)
		for (uint64_t pin = 0; pin < 4; pin++) {
			uint64_t e[4] = { slot << 16 | 0xffff, pin, 0,
			    16 + (slot + pin) % 4 };

			aml_package_ints(&body, e, 4);
		}
	aml_byte(a, 0x08);
	aml_name(a, "_PRT");
	aml_wrap(a, &pkgop, 1, &body);
}

/*
 * The pvpanic device (src/devices/pvpanic.c) as QEMU describes it, so
 * Linux's pvpanic-mmio driver binds to it by its _HID: QEMU0001 with one
 * I/O port.
 */
static void
aml_pvpanic(struct aml *a)
{
	static const uint8_t device[2] = { 0x5b, 0x82 }, bufop = 0x11;
	static const uint8_t hid[] = "QEMU0001";
	static const uint8_t io[] = { 0x47, 0x01,	/* IO, Decode16 */
	    PVPANIC_PORT & 0xff, PVPANIC_PORT >> 8,	/* min */
	    PVPANIC_PORT & 0xff, PVPANIC_PORT >> 8,	/* max */
	    0x01, 0x01,					/* align, length */
	    0x79, 0x00 };				/* end tag */
	struct aml dev = { 0 }, crs = { 0 };

	aml_name(&dev, "PEVT");
	aml_byte(&dev, 0x08);
	aml_name(&dev, "_HID");
	aml_byte(&dev, 0x0d);				/* String */
	aml_put(&dev, hid, sizeof(hid));		/* with its NUL */
	aml_name_int(&dev, "_STA", 0x0f);		/* present, enabled */
	aml_int(&crs, sizeof(io));
	aml_put(&crs, io, sizeof(io));
	aml_byte(&dev, 0x08);
	aml_name(&dev, "_CRS");
	aml_wrap(&dev, &bufop, 1, &crs);
	aml_wrap(a, device, 2, &dev);
}

/* The DSDT's AML (without the table header). */
static void
acpi_dsdt_aml(struct aml *a)
{
	static const uint8_t scope = 0x10, device[2] = { 0x5b, 0x82 };
	struct aml sb = { 0 }, pci = { 0 };
	uint64_t s5[4] = { ACPI_S5_TYPE, ACPI_S5_TYPE, 0, 0 };

	aml_name(&pci, "PCI0");
	aml_name_int(&pci, "_HID", aml_eisaid("PNP0A03"));
	aml_name_int(&pci, "_ADR", 0);
	aml_name_int(&pci, "_UID", 0);
	aml_name_int(&pci, "_BBN", 0);
	aml_pci_crs(&pci);
	aml_pci_prt(&pci);
	aml_pvpanic(&pci);
	aml_name(&sb, "\\_SB");
	aml_wrap(&sb, device, 2, &pci);
	aml_wrap(a, &scope, 1, &sb);
	aml_byte(a, 0x08);
	aml_name(a, "\\_S5");
	aml_package_ints(a, s5, 4);
}

/* --- tables --- */

static void
acpi_checksum(uint8_t *t, size_t len, size_t at)
{
	uint8_t sum = 0;

	t[at] = 0;
	for (size_t i = 0; i < len; i++)
		sum += t[i];
	t[at] = (uint8_t)-sum;
}

static void
wr(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	wr(t + 4, len, 4);
	t[8] = rev;
	memcpy(t + 10, "TVISOR", 6);
	memcpy(t + 16, "TERMVSR ", 8);
	wr(t + 24, 1, 4);
	memcpy(t + 28, "TVSR", 4);
	wr(t + 32, 1, 4);
}

/* Generic Address Structure for a port. */
static void
acpi_gas_io(uint8_t *g, uint16_t port, uint8_t bits, uint8_t access)
{
	g[0] = 1;		/* system I/O */
	g[1] = bits;
	g[2] = 0;
	g[3] = access;
	wr(g + 4, port, 8);
}

/* Allocator inside the ACPI area, 16-byte (or 64-byte) aligned. */
struct acpi_area {
	uint8_t *base;
	uint64_t gpa;
	size_t used;
};

static uint8_t *
acpi_alloc(struct acpi_area *ar, size_t len, size_t align, uint64_t *gpa)
{
	size_t at = (ar->used + align - 1) & ~(align - 1);

	TV_ASSERT(at + len <= BOOT_ACPI_SIZE);
	ar->used = at + len;
	*gpa = ar->gpa + at;
	return ar->base + at;
}

static uint64_t
acpi_build_dsdt(struct acpi_area *ar)
{
	struct aml a = { 0 };
	uint64_t gpa;
	uint8_t *t;

	acpi_dsdt_aml(&a);
	t = acpi_alloc(ar, 36 + a.len, 16, &gpa);
	acpi_header(t, "DSDT", 36 + a.len, 2);
	memcpy(t + 36, a.b, a.len);
	acpi_checksum(t, 36 + a.len, 9);
	free(a.b);
	return gpa;
}

static uint64_t
acpi_build_fadt(struct acpi_area *ar, uint64_t dsdt)
{
	uint64_t facs_gpa, gpa;
	uint8_t *facs = acpi_alloc(ar, 64, 64, &facs_gpa);
	uint8_t *t = acpi_alloc(ar, 244, 16, &gpa);

	memcpy(facs, "FACS", 4);
	wr(facs + 4, 64, 4);
	facs[32] = 2;				/* version */
	acpi_header(t, "FACP", 244, 3);
	wr(t + 36, facs_gpa, 4);
	wr(t + 40, dsdt, 4);
	wr(t + 46, ACPI_SCI_GSI, 2);
	wr(t + 56, ACPI_PM1A_EVT, 4);
	wr(t + 64, ACPI_PM1A_CNT, 4);
	wr(t + 76, ACPI_PM_TMR, 4);
	t[88] = 4;				/* PM1_EVT_LEN */
	t[89] = 2;				/* PM1_CNT_LEN */
	t[91] = 4;				/* PM_TMR_LEN */
	wr(t + 96, 101, 2);			/* no C2 */
	wr(t + 98, 1001, 2);			/* no C3 */
	t[108] = 0x32;				/* CMOS century */
	wr(t + 109, 0x3, 2);			/* legacy devices, 8042 */
	/* WBINVD, PROC_C1, SLP_BUTTON (none), RESET_REG_SUP. */
	wr(t + 112, (1u << 0) | (1u << 2) | (1u << 5) | (1u << 10), 4);
	acpi_gas_io(t + 116, ACPI_RESET_PORT, 8, 1);
	t[128] = 0x06;				/* RESET_VALUE */
	wr(t + 132, facs_gpa, 8);
	wr(t + 140, dsdt, 8);
	acpi_gas_io(t + 148, ACPI_PM1A_EVT, 32, 2);
	acpi_gas_io(t + 172, ACPI_PM1A_CNT, 16, 2);
	acpi_gas_io(t + 208, ACPI_PM_TMR, 32, 3);
	acpi_checksum(t, 244, 9);
	return gpa;
}

static uint64_t
acpi_build_madt(struct acpi_area *ar, int ncpus)
{
	size_t len = 44 + 8 * ncpus + 12 + 10 + 10 + 6;
	uint64_t gpa;
	uint8_t *t = acpi_alloc(ar, len, 16, &gpa), *e = t + 44;

	acpi_header(t, "APIC", len, 3);
	wr(t + 36, GPA_LAPIC, 4);
	wr(t + 40, 1, 4);			/* PCAT_COMPAT: 8259s too */
	for (int i = 0; i < ncpus; i++, e += 8) {
		e[0] = 0;			/* processor local APIC */
		e[1] = 8;
		e[2] = i;			/* ACPI processor UID */
		e[3] = i;			/* APIC ID */
		wr(e + 4, 1, 4);		/* enabled */
	}
	e[0] = 1; e[1] = 12; e[2] = 0;		/* I/O APIC 0, GSI base 0 */
	wr(e + 4, GPA_IOAPIC, 4);
	e += 12;
	e[0] = 2; e[1] = 10; e[2] = 0; e[3] = 0;	/* IRQ0 -> GSI2 */
	wr(e + 4, 2, 4);
	e += 10;
	e[0] = 2; e[1] = 10; e[2] = 0; e[3] = ACPI_SCI_GSI;
	wr(e + 4, ACPI_SCI_GSI, 4);
	wr(e + 8, 0x000d, 2);			/* level, active high */
	e += 10;
	e[0] = 4; e[1] = 6; e[2] = 0xff;	/* LINT1 is NMI on all CPUs */
	wr(e + 3, 0, 2);
	e[5] = 1;
	acpi_checksum(t, len, 9);
	return gpa;
}

uint64_t
acpi_build(struct vm *vm)
{
	struct acpi_area ar = { .gpa = BOOT_ACPI_ADDR };
	uint64_t rsdp_gpa, dsdt, tabs[2], xsdt_gpa, rsdt_gpa;
	uint8_t *rsdp, *xsdt, *rsdt;

	ar.base = vm_gpa_to_hva(vm, BOOT_ACPI_ADDR, BOOT_ACPI_SIZE);
	TV_ASSERT(ar.base != NULL);
	memset(ar.base, 0, BOOT_ACPI_SIZE);
	rsdp = acpi_alloc(&ar, 36, 16, &rsdp_gpa);
	dsdt = acpi_build_dsdt(&ar);
	tabs[0] = acpi_build_fadt(&ar, dsdt);
	tabs[1] = acpi_build_madt(&ar, vm->nvcpus);
	xsdt = acpi_alloc(&ar, 36 + 8 * 2, 16, &xsdt_gpa);
	acpi_header(xsdt, "XSDT", 36 + 8 * 2, 1);
	rsdt = acpi_alloc(&ar, 36 + 4 * 2, 16, &rsdt_gpa);
	acpi_header(rsdt, "RSDT", 36 + 4 * 2, 1);
	for (int i = 0; i < 2; i++) {
		wr(xsdt + 36 + 8 * i, tabs[i], 8);
		wr(rsdt + 36 + 4 * i, tabs[i], 4);
	}
	acpi_checksum(xsdt, 36 + 16, 9);
	acpi_checksum(rsdt, 36 + 8, 9);
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, "TVISOR", 6);
	rsdp[15] = 2;				/* revision: ACPI 2.0+ */
	wr(rsdp + 16, rsdt_gpa, 4);
	wr(rsdp + 20, 36, 4);
	wr(rsdp + 24, xsdt_gpa, 8);
	acpi_checksum(rsdp, 20, 8);
	acpi_checksum(rsdp, 36, 32);
	return rsdp_gpa;
}
