/*
 * Serial output (polled 16550 at 0x3f8) and the tally of checks.  Output
 * is polled because these guests run with interrupts off; the UART's
 * interrupt path is the reference Linux guest's job to exercise.
 */
#include "guest.h"

#define COM1 0x3f8
#define DEBUG_EXIT_PORT 0xf4

static unsigned report_failed, report_passed;

void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;

	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

void report_init(void)
{
	outb(COM1 + 1, 0x00);	/* no interrupts */
	outb(COM1 + 3, 0x80);	/* DLAB: divisor 1 = 115200 baud */
	outb(COM1 + 0, 0x01);
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);	/* 8N1 */
	outb(COM1 + 2, 0x07);	/* FIFOs on and cleared */
	outb(COM1 + 4, 0x03);	/* DTR, RTS */
}

static void report_putc(char c)
{
	/* Bounded, so a UART that never says "empty" costs time, not a hang. */
	for (unsigned i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
		;
	outb(COM1, (uint8_t)c);
}

static void report_puts(const char *s)
{
	while (*s)
		report_putc(*s++);
}

static void report_number(unsigned long long v, unsigned base, int width, char pad)
{
	char buf[24];
	int i = 0;

	do {
		unsigned d;

		/* Shifts for hex keep 64-bit values free of libgcc division. */
		if (base == 16) {
			d = (unsigned)(v & 15);
			v >>= 4;
		} else {
			unsigned long w = (unsigned long)v;

			d = (unsigned)(w % 10);
			v = w / 10;
		}
		buf[i++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
	} while (v && i < (int)sizeof(buf));
	while (i < width--)
		report_putc(pad);
	while (i)
		report_putc(buf[--i]);
}

/* A printf subset: %s %c %d %u %x with l/ll and a zero-padded width.
 * Decimal is for values that fit an unsigned long (32 bits in the
 * 16/32-bit builds); 64-bit values go out in hex. */
static void report_vprintf(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		int width = 0, longs = 0;
		char pad = ' ';
		unsigned long long v;

		if (*fmt != '%') {
			report_putc(*fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0')
			pad = '0';
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l')
			longs++, fmt++;
		switch (*fmt) {
		case 's':
			report_puts(va_arg(ap, const char *));
			break;
		case 'c':
			report_putc((char)va_arg(ap, int));
			break;
		case 'd': {
			long long s = longs == 2 ? va_arg(ap, long long) :
				      longs == 1 ? va_arg(ap, long) : va_arg(ap, int);
			if (s < 0) {
				report_putc('-');
				s = -s;
			}
			report_number((unsigned long long)s, 10, width, pad);
			break;
		}
		case 'u':
		case 'x':
			v = longs == 2 ? va_arg(ap, unsigned long long) :
			    longs == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
			report_number(v, *fmt == 'x' ? 16 : 10, width, pad);
			break;
		case '%':
			report_putc('%');
			break;
		default:
			report_putc('?');
			return;
		}
	}
}

void report_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report_vprintf(fmt, ap);
	va_end(ap);
}

int report_check(int good, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (good) {
		report_passed++;
		report_printf("ok %s\n", name);
		return 1;
	}
	report_failed++;
	report_printf("not ok %s: ", name);
	va_start(ap, fmt);
	report_vprintf(fmt, ap);
	va_end(ap);
	report_putc('\n');
	return 0;
}

void report_cmdline(const char *s)
{
	report_puts("cmdline \"");
	report_puts(s);
	report_puts("\"\n");
}

void report_finish(void)
{
	report_printf("checks %u passed, %u failed\n", report_passed, report_failed);
	/* isa-debug-exit: the VMM exits with status (V << 1) | 1. */
	outb(DEBUG_EXIT_PORT, report_failed ? 1 : 0);
	report_printf("debug-exit port 0xf4 did not end the VM; halting\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}
