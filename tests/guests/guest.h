/*
 * Shared by termvisor's freestanding test guests (tests/guests/).  Each
 * guest checks what its boot protocol handed it and how the devices
 * answer, prints one TAP-like line per check ("ok NAME" / "not ok NAME:
 * DETAIL") and plain fact lines the e2e scripts compare with what they
 * asked for, then ends the VM through the isa-debug-exit port.
 *
 * The same code is built three ways: -m64 (bzImage 64-bit entry), -m32
 * (multiboot, PVH) and -m16 (real-mode setup code).
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Port I/O: the only way these guests touch devices. */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* gcc may emit calls to these even in freestanding code. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* report.c: serial output and the check tally. */
void report_init(void);
void report_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "ok NAME" when good, else "not ok NAME: DETAIL"; returns good. */
int report_check(int good, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prints the closing line and exits through port 0xf4: 0 if every check
 * passed, 1 otherwise.  Halts if the port does not end the VM. */
void report_finish(void) __attribute__((noreturn));
/* Prints "cmdline "..."" with the string as it is. */
void report_cmdline(const char *s);

/* cmdline.c: "key=value" lookup in a kernel-style command line. */
int cmdline_uint(const char *cmdline, const char *key, uint32_t *out);

/* cksum.c: POSIX cksum(1) of a buffer, so scripts compare with `cksum`. */
uint32_t cksum_buf(const void *buf, uint32_t len);

/* memmap.c: one memory map, whatever protocol delivered it. */
#define MEMMAP_MAX 128
struct memmap_entry {
	uint64_t addr, size;
	uint32_t type;
};
/* Prints each entry as "e820 0xSTART-0xEND TYPE" (END exclusive), checks
 * it is sorted and free of overlaps and covers [must_lo, must_hi) with
 * usable RAM, prints "mem_kb N" (usable RAM) and returns N. */
uint32_t memmap_report(const struct memmap_entry *m, unsigned n, uint64_t must_lo,
		       uint64_t must_hi);
/* Nonzero when [addr, addr+size) lies inside usable RAM. */
int memmap_usable(const struct memmap_entry *m, unsigned n, uint64_t addr, uint64_t size);
/* Nonzero when any byte of [addr, addr+size) is usable RAM. */
int memmap_touches_usable(const struct memmap_entry *m, unsigned n, uint64_t addr,
			  uint64_t size);

/* devices.c: UART, CMOS RTC, PIT, PCI, i8042 and an unclaimed port,
 * checked as the hardware answers.  The RTC year is compared with
 * "year=YYYY" from the command line when it is there. */
void devices_check(const char *cmdline);

/* Busy-waits about us microseconds on PIT channel 2. */
void devices_delay_us(uint32_t us);

/* smp.c (32/64-bit guests): starts the APs with INIT-SIPI-SIPI and checks
 * ncpus - 1 of them, with distinct APIC IDs, run; prints "smp_started N". */
void smp_check(unsigned ncpus, const struct memmap_entry *m, unsigned n);

/* acpi.c (32/64-bit guests): validates the ACPI tables reached from the
 * RSDP at rsdp (0: scan the EBDA and 0xe0000-0xfffff), checks none lies
 * in usable RAM of the map m[n] (the OS would reuse it), prints "ncpus N"
 * from the MADT and returns N (0 on failure). */
unsigned acpi_check(uint64_t rsdp, const struct memmap_entry *m, unsigned n);

/* Physical memory as a pointer (identity-mapped or paging off).  The
 * empty asm hides the constant from gcc, which otherwise "knows" that
 * small fixed addresses point at no object. */
static inline const void *phys(uint64_t addr)
{
	uintptr_t p = (uintptr_t)addr;

	__asm__("" : "+r"(p));
	return (const void *)p;
}

#endif
