/*
 * The UART driven through its port handlers as Linux's 8250 driver does.
 */
#include <criterion/criterion.h>
#include <unistd.h>

#include "fake_vm.h"
#include "devices/ns16550.h"
#include "hv/console.h"
#include "migrate/snap.h"

#define COM1 0x3f8
enum { THR, IER, IIR, LCR, MCR, LSR, MSR, SCR };

static struct vm *vm;

static void
setup(void)
{
	vclock_set_fake(true, 1000ull * 1000000000ull);
	vm = fake_vm_new(64 << 20);
	cr_assert_eq(ns16550_ops.create(vm), 0);
}

static void
teardown(void)
{
	/* The VMM's order: console first (it uses vm->loop), then the
	 * devices, which must not touch the freed console. */
	console_free(vm->console);
	cr_assert_null(vm->console);
	fake_vm_free(vm);
}

static uint8_t rd(unsigned r) { return (uint8_t)fake_in(vm, COM1 + r, 1); }
static void wr(unsigned r, uint8_t v) { fake_out(vm, COM1 + r, 1, v); }

TestSuite(ns16550, .init = setup, .fini = teardown, .timeout = 10);

/* Let the event loop's timers run (input bursts, character timeout). */
static void
settle(uint64_t ns)
{
	vclock_advance_fake(ns);
	evloop_run_timers(vm->loop);
}

Test(ns16550, linux_autoconfig_probe)
{
	/* Scratch test through IER: only the low nibble exists. */
	wr(IER, 0);
	cr_assert_eq(rd(IER), 0);
	wr(IER, 0xff);
	cr_assert_eq(rd(IER), 0x0f);
	wr(IER, 0);
	/* Loopback: RTS->CTS, OUT2->DCD, DTR/OUT1 low. */
	wr(MCR, 0x10 | 0x0a);
	cr_assert_eq(rd(MSR) & 0xf0, 0x90);
	wr(MCR, 0x10 | 0x05);
	cr_assert_eq(rd(MSR) & 0xf0, 0x60);
	wr(MCR, 0);
	/* FIFO detection: IIR bits 7:6 = 11 means 16550A. */
	wr(IIR, 0x01);
	cr_assert_eq(rd(IIR) >> 6, 3);
	/* With DLAB the same offset still reads IIR, never a zero EFR. */
	wr(LCR, 0xbf);
	cr_assert_neq(rd(IIR), 0);
	wr(LCR, 0);
	wr(IIR, 0);
	cr_assert_eq(rd(IIR) >> 6, 0);
	cr_assert_neq(rd(LSR), 0xff);
	wr(SCR, 0x5a);
	cr_assert_eq(rd(SCR), 0x5a);
}

Test(ns16550, divisor_latch)
{
	wr(LCR, 0x83);
	wr(THR, 0x01);
	wr(IER, 0x00);
	cr_assert_eq(rd(THR), 0x01);
	cr_assert_eq(rd(IER), 0x00);
	wr(LCR, 0x03);
	cr_assert_eq(rd(IER), 0);	/* IER untouched by the latch */
	cr_assert_eq(rd(LCR), 0x03);
}

Test(ns16550, loopback_echoes_and_overruns)
{
	wr(IIR, 0x07);
	wr(MCR, 0x10);
	for (int i = 0; i < 17; i++)
		wr(THR, (uint8_t)('a' + i));
	wr(IER, 0x04);
	cr_assert_eq(rd(IIR) & 0x0f, 0x06, "overrun is a line-status irq");
	cr_assert_eq(rd(LSR) & 0x03, 0x03, "data ready, overrun reported");
	cr_assert_eq(rd(IIR) & 0x0f, 0x01, "LSR read acknowledged it");
	cr_assert_eq(rd(LSR) & 0x02, 0, "LSR read clears errors");
	for (int i = 0; i < 16; i++)
		cr_assert_eq(rd(THR), 'a' + i);
	cr_assert_eq(rd(LSR) & 0x01, 0);
	cr_assert_eq(fake_irqs.raises[4], 0, "loopback keeps the IRQ low");
}

Test(ns16550, interrupt_driven_transmit)
{
	int p[2];
	char buf[8];

	cr_assert_eq(pipe(p), 0);
	vm->console = console_new(vm, -1, p[1]);
	wr(LCR, 0x03);
	wr(IIR, 0xc1);
	wr(MCR, 0x0b);		/* DTR RTS OUT2 */
	cr_assert_eq(fake_irqs.level[4], 0);
	wr(IER, 0x02);
	cr_assert_eq(fake_irqs.level[4], 1, "THRE raises the line");
	cr_assert_eq(rd(IIR), 0xc2);
	cr_assert_eq(fake_irqs.level[4], 0, "IIR read acknowledges THRE");
	cr_assert_eq(rd(IIR), 0xc1);
	cr_assert_eq(rd(LSR) & 0x60, 0x60);
	wr(THR, 'o');
	cr_assert_eq(fake_irqs.level[4], 1, "THRE again after the byte left");
	wr(THR, 'k');
	wr(IER, 0);		/* __stop_tx */
	cr_assert_eq(fake_irqs.level[4], 0);
	cr_assert_eq(read(p[0], buf, sizeof(buf)), 2);
	cr_assert_eq(memcmp(buf, "ok", 2), 0);
	cr_assert_eq(console_history(vm->console, (uint8_t *)buf, 8), 2);
	/* UART_BUG_THRE probe: THRI 0->1 re-asserts THRE. */
	wr(IER, 0x02);
	cr_assert_eq(rd(IIR) & 0x0f, 0x02);
	wr(IER, 0);
	wr(IER, 0x02);
	cr_assert_eq(rd(IIR) & 0x0f, 0x02);
	close(p[0]);
	close(p[1]);
}

Test(ns16550, out2_gates_the_irq)
{
	wr(IER, 0x02);
	cr_assert_eq(fake_irqs.level[4], 0);
	wr(MCR, 0x08);
	cr_assert_eq(fake_irqs.level[4], 1);
	wr(MCR, 0x00);
	cr_assert_eq(fake_irqs.level[4], 0);
}

Test(ns16550, receive_trigger_level_and_timeout)
{
	vm->console = console_new(vm, -1, -1);
	wr(IIR, 0xc1);		/* FIFO, trigger 14 */
	wr(MCR, 0x08);
	wr(IER, 0x01);
	cr_assert_eq(console_input(vm->console, (const uint8_t *)"abc", 3), 3);
	settle(100000);			/* the first burst */
	cr_assert_eq(rd(LSR) & 0x01, 1);
	cr_assert_eq(rd(IIR), 0xc1, "below the trigger: no irq yet");
	cr_assert_eq(fake_irqs.level[4], 0);
	settle(100000);			/* 100 us < 4 chars at 9600 */
	cr_assert_eq(fake_irqs.level[4], 0);
	vclock_advance_fake(10000000);
	evloop_run_timers(vm->loop);
	cr_assert_eq(rd(IIR), 0xcc, "character timeout");
	cr_assert_eq(fake_irqs.level[4], 1);
	cr_assert_eq(rd(THR), 'a');
	cr_assert_eq(rd(THR), 'b');
	cr_assert_eq(rd(THR), 'c');
	cr_assert_eq(rd(LSR) & 0x01, 0);
	cr_assert_eq(fake_irqs.level[4], 0);
	cr_assert_eq(rd(IIR), 0xc1);
	/* At the trigger level the data interrupt is immediate. */
	wr(IIR, 0x41);		/* trigger 4 */
	console_input(vm->console, (const uint8_t *)"wxyz", 4);
	settle(100000);
	cr_assert_eq(rd(IIR), 0xc4);
	cr_assert_eq(fake_irqs.level[4], 1);
	wr(IIR, 0x43);		/* clear RX */
	cr_assert_eq(rd(LSR) & 0x01, 0);
	cr_assert_eq(fake_irqs.level[4], 0);
}

Test(ns16550, back_pressure_keeps_order)
{
	uint8_t in[40], got[40];
	int n = 0;

	for (int i = 0; i < 40; i++)
		in[i] = (uint8_t)(0x20 + i);
	vm->console = console_new(vm, -1, -1);
	wr(IIR, 0x01);
	rd(LSR);		/* binds the console */
	cr_assert_eq(console_input(vm->console, in, 40), 40);
	settle(100000);
	for (int bursts = 0; bursts < 3; bursts++) {
		int start = n;

		while ((rd(LSR) & 0x01) && n < 40)
			got[n++] = rd(THR);
		cr_assert_eq(n - start, bursts < 2 ? 16 : 8,
		    "burst %d: %d bytes", bursts, n - start);
		/* The next burst waits until the FIFO has been empty a
		 * while: a draining ISR sees it empty and returns. */
		settle(50000);
		cr_assert_eq(rd(LSR) & 0x01, 0, "refilled too early");
		settle(50000);
	}
	cr_assert_eq(n, 40, "all bytes arrive as room frees");
	cr_assert_eq(memcmp(in, got, 40), 0);
	/* Without FIFO the holding register takes one at a time. */
	wr(IIR, 0x00);
	console_input(vm->console, in, 3);
	for (int i = 0; i < 3; i++) {
		settle(100000);
		cr_assert_eq(rd(THR), in[i]);
		cr_assert_eq(rd(LSR) & 0x03, 0, "no overrun");
	}
}

/* Each input burst after the guest emptied the FIFO is a fresh edge. */
Test(ns16550, every_burst_is_a_new_edge)
{
	uint8_t in[64];

	memset(in, 'p', sizeof(in));
	vm->console = console_new(vm, -1, -1);
	wr(IIR, 0x81);		/* FIFO, trigger 8 */
	wr(MCR, 0x08);
	wr(IER, 0x01);
	console_input(vm->console, in, sizeof(in));
	for (int b = 1; b <= 4; b++) {
		settle(100000);
		cr_assert_eq(fake_irqs.raises[4], b);
		while (rd(LSR) & 0x01)
			rd(THR);
		cr_assert_eq(rd(IIR), 0xc1, "ISR finds nothing more");
		cr_assert_eq(fake_irqs.level[4], 0);
	}
}

Test(ns16550, modem_status_interrupt)
{
	wr(MCR, 0x10);
	rd(MSR);
	wr(IER, 0x08);
	wr(MCR, 0x12);		/* RTS -> CTS changes */
	cr_assert_eq(rd(IIR) & 0x0f, 0x00);
	cr_assert_eq(rd(MSR), 0x11);
	cr_assert_eq(rd(IIR) & 0x0f, 0x01);
}

static void
snap_dev(const struct device_ops *ops, void *st, struct snap *s)
{
	snap_section_begin(s, "com1", ops->snapshot_version);
	ops->snapshot(st, s);
	snap_section_end(s);
}

Test(ns16550, snapshot_roundtrip)
{
	struct snap s, l;
	struct vm *vm2;
	void *u1 = fake_vm_device(vm, &ns16550_ops), *u2;

	wr(LCR, 0x80);
	wr(THR, 0x0c);
	wr(LCR, 0x1b);
	wr(IIR, 0x81);
	wr(MCR, 0x10);
	wr(THR, 'h');
	wr(THR, 'i');
	wr(MCR, 0x1b);
	wr(SCR, 0x77);
	wr(IER, 0x05);
	snap_init_save(&s);
	snap_dev(&ns16550_ops, u1, &s);
	cr_assert_eq(snap_error(&s), 0);

	vm2 = fake_vm_new(64 << 20);
	cr_assert_eq(ns16550_ops.create(vm2), 0);
	u2 = fake_vm_device(vm2, &ns16550_ops);
	snap_init_load(&l, s.buf, s.len);
	snap_dev(&ns16550_ops, u2, &l);
	cr_assert_eq(snap_error(&l), 0, "%s", l.errmsg);
	cr_assert_eq(fake_in(vm2, COM1 + LCR, 1), 0x1b);
	cr_assert_eq(fake_in(vm2, COM1 + SCR, 1), 0x77);
	cr_assert_eq(fake_in(vm2, COM1 + IER, 1), 0x05);
	cr_assert_eq(fake_in(vm2, COM1 + MCR, 1), 0x1b);
	cr_assert_eq(fake_in(vm2, COM1 + IIR, 1) & 0xc0, 0xc0);
	cr_assert_eq(fake_in(vm2, COM1 + THR, 1), 'h');
	cr_assert_eq(fake_in(vm2, COM1 + THR, 1), 'i');
	fake_out(vm2, COM1 + LCR, 1, 0x9b);
	cr_assert_eq(fake_in(vm2, COM1 + THR, 1), 0x0c);
	snap_free(&s);
	fake_vm_free(vm2);
}

Test(ns16550, snapshot_rejects_bad_fifo)
{
	struct snap s, l;
	void *u = fake_vm_device(vm, &ns16550_ops);
	uint8_t b = 0, bad = 200, rx[16] = { 0 };
	uint16_t div = 1;
	bool f = false;

	snap_init_save(&s);
	snap_section_begin(&s, "com1", 1);
	snap_u8(&s, "ier", &b);
	snap_u8(&s, "lcr", &b);
	snap_u8(&s, "mcr", &b);
	snap_u8(&s, "lsr", &b);
	snap_u8(&s, "msr", &b);
	snap_u8(&s, "scr", &b);
	snap_u8(&s, "fcr", &b);
	snap_u16(&s, "div", &div);
	snap_bytes(&s, "rx", rx, sizeof(rx));
	snap_u8(&s, "rx_head", &b);
	snap_u8(&s, "rx_count", &bad);
	snap_bool(&s, "thr_ipending", &f);
	snap_bool(&s, "timeout_ipending", &f);
	snap_section_end(&s);
	snap_init_load(&l, s.buf, s.len);
	snap_dev(&ns16550_ops, u, &l);
	cr_assert_neq(snap_error(&l), 0);
	/* The refused state did not stay: the UART still works. */
	wr(IIR, 0x01);
	wr(MCR, 0x10);
	wr(THR, 'q');
	cr_assert_eq(rd(LSR) & 0x01, 1);
	cr_assert_eq(rd(THR), 'q');
	cr_assert_eq(rd(LSR) & 0x01, 0);
	snap_free(&s);
}

/* A slow "guest" polling the UART from a timer on the event loop. */
struct slow_guest {
	struct vtimer t;
	uint8_t got[20000];
	size_t n, want;
};

static void
slow_guest_poll(void *opaque)
{
	struct slow_guest *g = opaque;

	for (int i = 0; i < 8 && (rd(LSR) & 0x01); i++)
		g->got[g->n++] = rd(THR);
	if (g->n >= g->want)
		vm_request_exit(vm, VM_EVENT_SIGNAL, 0);
	else
		vtimer_arm(&g->t, vclock_ns() + 20000);
}

Test(ns16550, paste_through_a_pipe_waits_for_the_guest)
{
	static struct slow_guest g;
	static uint8_t in[20000];
	int p[2];

	vclock_set_fake(false, 0);	/* real time: the loop runs */
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i % 251 + 2);	/* never Ctrl-a */
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(write(p[1], in, sizeof(in)), (ssize_t)sizeof(in));
	vm->console = console_new(vm, p[0], -1);
	wr(IIR, 0xc1);
	rd(LSR);			/* binds the console */
	g.want = sizeof(in);
	vtimer_init(&g.t, vm->loop, slow_guest_poll, &g);
	vtimer_arm(&g.t, vclock_ns());
	evloop_run(vm->loop);
	cr_assert_eq(g.n, sizeof(in));
	cr_assert_eq(memcmp(g.got, in, sizeof(in)), 0, "order kept");
	cr_assert_eq(rd(LSR) & 0x02, 0, "never an overrun");
	close(p[0]);
	close(p[1]);
}

/* Random register traffic: the IRQ line always equals "an enabled source
 * is pending and OUT2 is set outside loopback", and nothing breaks. */
Test(ns16550, random_traffic_keeps_the_irq_level_honest)
{
	unsigned seed = 777;

	vm->console = console_new(vm, -1, -1);
	for (int i = 0; i < 20000; i++) {
		unsigned reg;
		uint8_t v, iir, mcr, lcr;

		seed = seed * 1103515245 + 12345;
		reg = (seed >> 16) & 7;
		v = (uint8_t)(seed >> 8);
		if (reg == LCR)
			v &= 0x7f;	/* mostly leave DLAB off */
		if ((seed >> 29) & 1)
			wr(reg, v);
		else
			rd(reg);
		if ((seed & 0xff) == 3)
			console_input(vm->console, (const uint8_t *)"xyz", 3);
		if ((seed & 0x3ff) == 7) {
			vclock_advance_fake(10000000);
			evloop_run_timers(vm->loop);
		}
		lcr = rd(LCR);
		wr(LCR, lcr & 0x7f);
		mcr = rd(MCR);
		/* Peek at IIR without acknowledging a THRE: compare only
		 * when it is not THRE (reading would clear it). */
		iir = rd(IIR);
		if ((iir & 0x0f) == 0x02)
			wr(IER, rd(IER));	/* THRI stays set: no change */
		wr(LCR, lcr);
		if ((iir & 0x0f) == 0x02)
			continue;
		cr_assert_eq(fake_irqs.level[4], (iir & 1) == 0 &&
		    (mcr & 0x18) == 0x08, "step %d IIR %#x MCR %#x", i, iir,
		    mcr);
	}
}
