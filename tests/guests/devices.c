/*
 * Device checks: each probes a chip the way an operating system does and
 * expects the answer real hardware gives.  Where Linux relies on the same
 * behaviour (the 8250 loopback probe, PIT-based TSC calibration, PCI
 * type 1 detection) that is said, since a VMM failing it breaks Linux.
 */
#include "guest.h"

#define COM1 0x3f8

static void devices_uart(void)
{
	uint8_t a, b, lcr, iir, msr, echo;

	outb(COM1 + 7, 0x5a);
	a = inb(COM1 + 7);
	outb(COM1 + 7, 0xa5);
	b = inb(COM1 + 7);
	report_check(a == 0x5a && b == 0xa5, "uart_scratch",
		     "wrote 0x5a, 0xa5, read 0x%02x, 0x%02x", a, b);

	/* Polled output has drained: holding register and shifter empty. */
	for (unsigned i = 0; i < 1000000 && (inb(COM1 + 5) & 0x60) != 0x60; i++)
		;
	a = inb(COM1 + 5);
	report_check((a & 0xe0) == 0x60, "uart_lsr_idle",
		     "LSR 0x%02x, want THRE and TEMT set, error bit clear", a);

	lcr = inb(COM1 + 3);
	outb(COM1 + 3, 0x1b);	/* 8E1 */
	a = inb(COM1 + 3);
	outb(COM1 + 3, lcr);
	report_check(a == 0x1b && lcr == 0x03, "uart_lcr",
		     "LCR read 0x%02x after init (want 0x03), 0x%02x after writing 0x1b", lcr, a);

	outb(COM1 + 1, 0x00);
	iir = inb(COM1 + 2);
	report_check((iir & 0x0f) == 0x01, "uart_iir_idle",
		     "IIR 0x%02x with IER 0, want no interrupt pending (bit 0 set)", iir);

	/* Linux's 8250 probe: in loopback, MCR's OUT2/RTS show up in MSR
	 * as DCD/CTS, and a transmitted byte comes back in RBR. */
	outb(COM1 + 4, 0x1a);
	msr = inb(COM1 + 6);
	while (inb(COM1 + 5) & 0x01)
		(void)inb(COM1);
	outb(COM1, 0x3c);
	for (unsigned i = 0; i < 100000 && !(inb(COM1 + 5) & 0x01); i++)
		;
	echo = (inb(COM1 + 5) & 0x01) ? inb(COM1) : 0;
	outb(COM1 + 4, 0x03);
	report_check((msr & 0xf0) == 0x90, "uart_loopback_msr",
		     "MSR 0x%02x in loopback with MCR 0x1a, want 0x9X", msr);
	report_check(echo == 0x3c, "uart_loopback_data",
		     "sent 0x3c in loopback, received 0x%02x", echo);
}

static uint8_t devices_cmos(uint8_t reg)
{
	outb(0x70, reg);	/* bit 7 clear: NMI stays enabled */
	return inb(0x71);
}

static int devices_bcd(uint8_t v, unsigned max, unsigned *out)
{
	if ((v & 0x0f) > 9 || (v >> 4) > 9)
		return 0;
	*out = (v >> 4) * 10 + (v & 0x0f);
	return *out <= max;
}

static void devices_rtc(const char *cmdline)
{
	static const uint8_t reg[] = { 0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32 };
	static const unsigned max[] = { 59, 59, 23, 31, 12, 99, 99 };
	static const char *const name[] = { "sec", "min", "hour", "day", "month",
					    "year", "century" };
	unsigned v[7], bad = 7, i;
	uint8_t regb, regd, raw[7];
	uint32_t want;

	/* Read outside an update cycle, as the datasheet asks. */
	for (i = 0; i < 1000000 && (devices_cmos(0x0a) & 0x80); i++)
		;
	for (i = 0; i < 7; i++)
		raw[i] = devices_cmos(reg[i]);
	regb = devices_cmos(0x0b);
	regd = devices_cmos(0x0d);
	report_check(regd & 0x80, "rtc_valid", "register D 0x%02x, want VRT (bit 7)", regd);
	report_check((regb & 0x06) == 0x02, "rtc_mode",
		     "register B 0x%02x, want BCD (bit 2 clear) and 24-hour (bit 1)", regb);
	for (i = 0; i < 7; i++)
		if (!devices_bcd(raw[i], max[i], &v[i]) && bad == 7)
			bad = i;
	if (!report_check(bad == 7 && v[3] >= 1 && v[4] >= 1, "rtc_bcd",
			  "%s register 0x%02x holds 0x%02x", name[bad < 7 ? bad : 3],
			  reg[bad < 7 ? bad : 3], raw[bad < 7 ? bad : 3]))
		return;
	report_printf("rtc %02u%02u-%02u-%02u %02u:%02u:%02u\n", v[6], v[5], v[4], v[3],
		      v[2], v[1], v[0]);
	if (cmdline_uint(cmdline, "year", &want))
		report_check(v[6] * 100 + v[5] == want, "rtc_year",
			     "RTC says %u, the host %u", v[6] * 100 + v[5], want);
	else
		report_check(v[6] == 20 && v[5] >= 24, "rtc_year",
			     "RTC year %02u%02u is not plausible", v[6], v[5]);
}

static uint16_t devices_pit2_read(void)
{
	uint8_t lo, hi;

	outb(0x43, 0x80);	/* latch channel 2 */
	lo = inb(0x42);
	hi = inb(0x42);
	return (uint16_t)(lo | hi << 8);
}

/* Linux calibrates the TSC this way: gate channel 2 through port 0x61,
 * run mode 0 and watch OUT2 in port 0x61 bit 5. */
static void devices_pit(void)
{
	uint16_t first, later = 0;
	unsigned i;
	uint8_t out2_before, out2_after = 0;

	outb(0x61, (inb(0x61) & ~0x02) | 0x01);	/* gate on, speaker off */
	outb(0x43, 0xb0);			/* ch 2, lo/hi, mode 0, binary */
	outb(0x42, 0xff);
	outb(0x42, 0xff);
	first = devices_pit2_read();
	for (i = 0; i < 1000000; i++) {
		later = devices_pit2_read();
		if (later < first && first - later > 16)
			break;
	}
	report_check(later < first, "pit_counts_down",
		     "channel 2 read 0x%04x then 0x%04x", first, later);

	/* 1193 ticks, about 1 ms: OUT2 goes low on the write, high at 0. */
	outb(0x43, 0xb0);
	outb(0x42, 1193 & 0xff);
	outb(0x42, 1193 >> 8);
	out2_before = inb(0x61) & 0x20;
	for (i = 0; i < 10000000 && !out2_after; i++)
		out2_after = inb(0x61) & 0x20;
	report_check(!out2_before && out2_after, "pit_out2",
		     "port 0x61 bit 5 was %s after programming, %s after waiting",
		     out2_before ? "high" : "low", out2_after ? "high" : "low");
	outb(0x61, inb(0x61) & ~0x03);
}

/* Channel 0 (the timer interrupt's) counts too: mode 2, full count. */
static void devices_pit_ch0(void)
{
	uint16_t a, b = 0;
	unsigned i;

	outb(0x43, 0x34);	/* ch 0, lo/hi, mode 2, binary */
	outb(0x40, 0xff);
	outb(0x40, 0xff);
	outb(0x43, 0x00);	/* latch channel 0 */
	a = (uint16_t)(inb(0x40) | inb(0x40) << 8);
	for (i = 0; i < 1000000; i++) {
		outb(0x43, 0x00);
		b = (uint16_t)(inb(0x40) | inb(0x40) << 8);
		if (b < a && a - b > 16)
			break;
	}
	report_check(b < a, "pit_ch0_counts_down", "channel 0 read 0x%04x then 0x%04x", a, b);
}

/* Linux's probe_8259A: the mask registers read back what was written,
 * else it runs with no legacy PIC at all. */
static void devices_pic(void)
{
	uint8_t master = inb(0x21), slave = inb(0xa1), m, s;

	outb(0xa1, 0xff);
	outb(0x21, 0xfb);	/* all masked but the cascade */
	m = inb(0x21);
	s = inb(0xa1);
	outb(0x21, master);
	outb(0xa1, slave);
	report_check(m == 0xfb && s == 0xff, "pic_imr",
		     "masks read 0x%02x/0x%02x after writing 0xfb/0xff", m, s);
}

void devices_delay_us(uint32_t us)
{
	uint32_t left = us;

	/* Mode 0 one-shots of at most 50 ms (59659 ticks at 1.193182 MHz). */
	while (left) {
		uint32_t chunk = left > 50000 ? 50000 : left;
		uint32_t ticks = chunk * 1193 / 1000 + 1;

		outb(0x61, (inb(0x61) & ~0x02) | 0x01);
		outb(0x43, 0xb0);
		outb(0x42, ticks & 0xff);
		outb(0x42, (ticks >> 8) & 0xff);
		for (unsigned i = 0; i < 10000000 && !(inb(0x61) & 0x20); i++)
			;
		left -= chunk;
	}
}

static uint32_t devices_pci_read(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	outl(0xcf8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc));
	return inl(0xcfc);
}

static void devices_pci(void)
{
	uint32_t addr, id, class;

	/* Linux's type 1 probe: CONFIG_ADDRESS reads back what was written. */
	outl(0xcf8, 0x80000000u);
	addr = inl(0xcf8);
	outl(0xcf8, 0);
	report_check(addr == 0x80000000u, "pci_cf8_readback",
		     "0xcf8 read 0x%08x after writing 0x80000000", addr);

	id = devices_pci_read(0, 0, 0, 0);
	class = devices_pci_read(0, 0, 0, 8) >> 8;
	report_check(id != 0xffffffffu && (class >> 8) == 0x0600, "pci_host_bridge",
		     "00:00.0 id 0x%08x class 0x%06x, want a host bridge (0x0600xx)", id, class);
	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned fn = 0; fn < 8; fn++) {
			id = devices_pci_read(0, dev, fn, 0);
			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break;
				continue;
			}
			class = devices_pci_read(0, dev, fn, 8) >> 8;
			report_printf("pci 00:%02x.%u %04x:%04x class %06x\n", dev, fn,
				      id & 0xffff, id >> 16, class);
			/* Functions 1-7 exist only on multi-function devices. */
			if (fn == 0 && !(devices_pci_read(0, dev, 0, 0x0c) & 0x800000))
				break;
		}
	}
	/* Bus 255 device 31 is absent on any small machine. */
	id = devices_pci_read(255, 31, 7, 0);
	report_check(id == 0xffffffffu, "pci_absent",
		     "ff:1f.7 read 0x%08x, want all-ones", id);
}

static void devices_i8042(void)
{
	uint8_t status = inb(0x64), reply = 0;
	unsigned i;

	/* Drain whatever the controller holds, then ask for a self-test. */
	for (i = 0; i < 32 && (inb(0x64) & 0x01); i++)
		(void)inb(0x60);
	for (i = 0; i < 1000000 && (inb(0x64) & 0x02); i++)
		;
	outb(0x64, 0xaa);
	for (i = 0; i < 1000000 && !(inb(0x64) & 0x01); i++)
		;
	if (inb(0x64) & 0x01)
		reply = inb(0x60);
	report_check(status != 0xff && reply == 0x55, "i8042_selftest",
		     "status 0x%02x, self-test (0xaa) answered 0x%02x, want 0x55", status, reply);
}

/* Nothing decodes 0x330 (an MPU-401's port) on these machines. */
static void devices_unclaimed(void)
{
	uint8_t b = inb(0x330);
	uint16_t w = inw(0x330);
	uint32_t l = inl(0x330);

	report_check(b == 0xff && w == 0xffff && l == 0xffffffffu, "port_unclaimed",
		     "port 0x330 read 0x%02x/0x%04x/0x%08x, want all-ones", b, w, l);
}

void devices_check(const char *cmdline)
{
	devices_uart();
	devices_rtc(cmdline);
	devices_pit();
	devices_pit_ch0();
	devices_pic();
	devices_pci();
	devices_i8042();
	devices_unclaimed();
}
