/*
 * 16550A UART.
 *
 * Transmission is instantaneous: a THR write goes straight to the console
 * (which never blocks, see console.c), so THR and the transmitter are
 * always empty and the THRE interrupt re-asserts right after each write,
 * which keeps an interrupt-driven guest driver moving without baud-rate
 * pacing.  Reception fills the 16-byte FIFO from the console in bursts,
 * each once the guest has emptied the FIFO (see ns16550_announce); the
 * console holds back the rest, so nothing is ever overrun.
 * The character-timeout interrupt fires after four character times at the
 * programmed divisor, as on the chip, so FIFO trigger levels behave.
 *
 * Interrupt sources, highest first: line status (OE/PE/FE/BI), received
 * data (at the trigger level) or character timeout, THR empty, modem
 * status.  The IRQ is a level: up while an enabled source is pending and
 * MCR OUT2 is set, as on a PC where OUT2 gates the ISA IRQ driver; in
 * loopback mode OUT2 is looped back internally, so the line stays low.
 */
#include "devices/ns16550.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "hv/console.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/evloop.h"
#include "util/log.h"

#define UART_FIFO	16
#define UART_CLOCK	1843200u	/* 16 x 115200 */
#define RX_REFILL_NS	100000u		/* pause between input bursts */

/* Register offsets. */
enum { R_DATA, R_IER, R_IIR, R_LCR, R_MCR, R_LSR, R_MSR, R_SCR };

#define IER_RDI		0x01
#define IER_THRI	0x02
#define IER_RLSI	0x04
#define IER_MSI		0x08

#define IIR_NONE	0x01
#define IIR_MSI		0x00
#define IIR_THRI	0x02
#define IIR_RDI		0x04
#define IIR_RLSI	0x06
#define IIR_CTI		0x0c
#define IIR_FIFO	0xc0

#define FCR_ENABLE	0x01
#define FCR_CLEAR_RX	0x02
#define FCR_CLEAR_TX	0x04

#define LCR_DLAB	0x80

#define MCR_DTR		0x01
#define MCR_RTS		0x02
#define MCR_OUT1	0x04
#define MCR_OUT2	0x08
#define MCR_LOOP	0x10

#define LSR_DR		0x01
#define LSR_OE		0x02
#define LSR_ERRORS	0x9e	/* OE, PE, FE, BI, FIFO error */
#define LSR_THRE	0x20
#define LSR_TEMT	0x40

#define MSR_DCTS	0x01
#define MSR_DDSR	0x02
#define MSR_TERI	0x04
#define MSR_DDCD	0x08
#define MSR_DELTAS	0x0f
#define MSR_CTS		0x10
#define MSR_DSR		0x20
#define MSR_RI		0x40
#define MSR_DCD		0x80
/* Outside loopback a terminal is connected: CTS, DSR and DCD up. */
#define MSR_CONNECTED	(MSR_CTS | MSR_DSR | MSR_DCD)

struct ns16550 {
	struct vm *vm;
	uint16_t base;
	unsigned irq;
	bool wants_console;	/* COM1: binds vm->console when it exists */
	struct console *con;
	struct vtimer rx_timer;		/* character timeout */
	struct vtimer refill_timer;	/* next burst of host input */

	/* Guest-visible state (snapshotted). */
	uint8_t ier, lcr, mcr, lsr, msr, scr, fcr;
	uint16_t div;
	uint8_t rx[UART_FIFO];
	uint8_t rx_head, rx_count;
	bool thr_ipending;	/* THRE interrupt not yet acknowledged */
	bool timeout_ipending;	/* character timeout reached */
	bool irq_level;
};

static bool
ns16550_fifo_on(const struct ns16550 *u)
{
	return u->fcr & FCR_ENABLE;
}

static unsigned
ns16550_rx_cap(const struct ns16550 *u)
{
	return ns16550_fifo_on(u) ? UART_FIFO : 1;
}

static unsigned
ns16550_trigger(const struct ns16550 *u)
{
	static const uint8_t levels[4] = { 1, 4, 8, 14 };

	return levels[u->fcr >> 6];
}

/* The pending interrupt of highest priority, as IIR bits 3:0. */
static uint8_t
ns16550_iir_code(const struct ns16550 *u)
{
	if ((u->ier & IER_RLSI) && (u->lsr & (LSR_ERRORS & 0x1e)))
		return IIR_RLSI;
	if ((u->ier & IER_RDI) && u->rx_count > 0) {
		if (!ns16550_fifo_on(u) || u->rx_count >= ns16550_trigger(u))
			return IIR_RDI;
		if (u->timeout_ipending)
			return IIR_CTI;
	}
	if ((u->ier & IER_THRI) && u->thr_ipending)
		return IIR_THRI;
	if ((u->ier & IER_MSI) && (u->msr & MSR_DELTAS))
		return IIR_MSI;
	return IIR_NONE;
}

static bool
ns16550_irq_wanted(const struct ns16550 *u)
{
	return ns16550_iir_code(u) != IIR_NONE &&
	    (u->mcr & (MCR_OUT2 | MCR_LOOP)) == MCR_OUT2;
}

static void
ns16550_update_irq(struct ns16550 *u)
{
	bool level = ns16550_irq_wanted(u);

	if (level != u->irq_level) {
		u->irq_level = level;
		vm_irq_set(u->vm, u->irq, level);
	}
}

/* Four character times at the current divisor and frame format. */
static uint64_t
ns16550_timeout_ns(const struct ns16550 *u)
{
	unsigned bits = 1 + 5 + (u->lcr & 3) + ((u->lcr & 4) ? 2 : 1) +
	    ((u->lcr & 8) ? 1 : 0);
	uint64_t div = u->div ? u->div : 1;

	return 4ull * bits * div * 16 * 1000000000ull / UART_CLOCK;
}

/* The receiver got or lost a byte: restart the character timeout. */
static void
ns16550_restart_timeout(struct ns16550 *u)
{
	u->timeout_ipending = false;
	if (u->rx_count == 0 || !ns16550_fifo_on(u)) {
		if (u->rx_timer.loop != NULL)
			vtimer_cancel(&u->rx_timer);
		return;
	}
	if (u->rx_timer.loop != NULL)
		vtimer_arm(&u->rx_timer, vclock_ns() + ns16550_timeout_ns(u));
	else
		u->timeout_ipending = true;	/* no event loop: at once */
}

static void
ns16550_on_timeout(void *opaque)
{
	struct ns16550 *u = opaque;

	if (u->rx_count > 0)
		u->timeout_ipending = true;
	ns16550_update_irq(u);
}

static void
ns16550_refill(struct ns16550 *u)
{
	if (u->con != NULL && !(u->mcr & MCR_LOOP))
		console_input_space(u->con, ns16550_rx_cap(u) - u->rx_count);
}

static void
ns16550_on_refill(void *opaque)
{
	ns16550_refill(opaque);
}

/*
 * Tell the console what the receiver takes.  Host input arrives in
 * FIFO-sized bursts, the next one only once the guest has emptied the
 * FIFO and RX_REFILL_NS have passed: a guest ISR that drains the FIFO
 * then sees it empty and returns, and the next burst raises a fresh edge
 * on the (edge-triggered) ISA line.  Refilling on every read instead
 * would let a long paste keep Linux's 8250 ISR busy until it gives up
 * ("too much work") with the line still up, and no edge ever again.
 */
static void
ns16550_announce(struct ns16550 *u)
{
	if (u->con == NULL)
		return;
	/* Withdraw what was offered before (the FIFO may have shrunk). */
	console_input_space(u->con, 0);
	if ((u->mcr & MCR_LOOP) || u->rx_count > 0)
		return;
	if (u->refill_timer.loop == NULL)
		ns16550_refill(u);
	else if (!vtimer_armed(&u->refill_timer))
		vtimer_arm(&u->refill_timer, vclock_ns() + RX_REFILL_NS);
}

static void
ns16550_rx_push(struct ns16550 *u, uint8_t b)
{
	if (u->rx_count >= ns16550_rx_cap(u)) {
		u->lsr |= LSR_OE;	/* the byte is lost, as on the wire */
		return;
	}
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO] = b;
	u->rx_count++;
	u->lsr |= LSR_DR;
}

/*
 * Bytes from the host side; returns how many fit in the receiver (the
 * console never offers more than announced).
 */
size_t
ns16550_receive(struct ns16550 *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	while (n < len && u->rx_count < ns16550_rx_cap(u))
		ns16550_rx_push(u, buf[n++]);
	if (n > 0) {
		ns16550_restart_timeout(u);
		ns16550_update_irq(u);
	}
	return n;
}

static void
ns16550_on_input(void *opaque, const uint8_t *buf, size_t len)
{
	ns16550_receive(opaque, buf, len);
}

static void
ns16550_bind_console(struct ns16550 *u)
{
	if (u->con != NULL || !u->wants_console || u->vm->console == NULL)
		return;
	u->con = u->vm->console;
	console_set_input(u->con, ns16550_on_input, u);
	ns16550_announce(u);
}

static void
ns16550_clear_rx(struct ns16550 *u)
{
	u->rx_count = 0;
	u->rx_head = 0;
	u->lsr &= ~LSR_DR;
	ns16550_restart_timeout(u);
}

static uint8_t
ns16550_read_rbr(struct ns16550 *u)
{
	uint8_t b;

	if (u->rx_count == 0)
		return u->rx[u->rx_head];	/* the last byte again */
	b = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_FIFO;
	u->rx_count--;
	if (u->rx_count == 0)
		u->lsr &= ~LSR_DR;
	ns16550_restart_timeout(u);
	ns16550_announce(u);
	return b;
}

/* MSR as the modem lines are now (loopback feeds MCR back). */
static uint8_t
ns16550_lines(const struct ns16550 *u)
{
	uint8_t m = 0;

	if (!(u->mcr & MCR_LOOP))
		return MSR_CONNECTED;
	if (u->mcr & MCR_RTS)
		m |= MSR_CTS;
	if (u->mcr & MCR_DTR)
		m |= MSR_DSR;
	if (u->mcr & MCR_OUT1)
		m |= MSR_RI;
	if (u->mcr & MCR_OUT2)
		m |= MSR_DCD;
	return m;
}

/* New modem lines: latch the delta bits as the chip does. */
static void
ns16550_set_lines(struct ns16550 *u, uint8_t lines)
{
	uint8_t old = u->msr, chg = (old ^ lines) & 0xf0;
	uint8_t d = old & MSR_DELTAS;

	if (chg & MSR_CTS)
		d |= MSR_DCTS;
	if (chg & MSR_DSR)
		d |= MSR_DDSR;
	if (chg & MSR_DCD)
		d |= MSR_DDCD;
	if ((old & MSR_RI) && !(lines & MSR_RI))
		d |= MSR_TERI;	/* trailing edge only */
	u->msr = lines | d;
}

static void
ns16550_transmit(struct ns16550 *u, uint8_t b)
{
	if (u->mcr & MCR_LOOP) {
		ns16550_rx_push(u, b);
		ns16550_restart_timeout(u);
	} else {
		ns16550_bind_console(u);
		console_output(u->con, &b, 1);
	}
	/* Sent at once: THR is empty again and says so. */
	u->lsr |= LSR_THRE | LSR_TEMT;
	u->thr_ipending = true;
}

static void
ns16550_write_fcr(struct ns16550 *u, uint8_t v)
{
	if ((v ^ u->fcr) & FCR_ENABLE) {
		/* Switching FIFO mode resets both FIFOs. */
		v |= FCR_CLEAR_RX | FCR_CLEAR_TX;
	}
	u->fcr = (v & FCR_ENABLE) ? (v & 0xc9) : 0;
	if (v & FCR_CLEAR_RX)
		ns16550_clear_rx(u);
	ns16550_announce(u);
}

static void
ns16550_write_reg(struct ns16550 *u, unsigned reg, uint8_t v)
{
	uint8_t old;

	if ((u->lcr & LCR_DLAB) && reg <= R_IER) {
		if (reg == R_DATA)
			u->div = (u->div & 0xff00) | v;
		else
			u->div = (u->div & 0x00ff) | (v << 8);
		return;
	}
	switch (reg) {
	case R_DATA:
		ns16550_transmit(u, v);
		break;
	case R_IER:
		old = u->ier;
		u->ier = v & 0x0f;
		/* A 0->1 THRI with THR empty raises THRE again (Linux's
		 * UART_BUG_THRE probe relies on it). */
		if ((u->ier & IER_THRI) && !(old & IER_THRI))
			u->thr_ipending = (u->lsr & LSR_THRE) != 0;
		break;
	case R_IIR:
		ns16550_write_fcr(u, v);
		break;
	case R_LCR:
		u->lcr = v;
		break;
	case R_MCR:
		old = u->mcr;
		u->mcr = v & 0x1f;
		ns16550_set_lines(u, ns16550_lines(u));
		if ((old ^ u->mcr) & MCR_LOOP)
			ns16550_announce(u);
		break;
	case R_SCR:
		u->scr = v;
		break;
	default:
		/* LSR and MSR writes are factory test modes: ignored. */
		log_guest_once("ns16550 %#x: write %#x to read-only "
		    "register %u", u->base, v, reg);
		break;
	}
}

static uint8_t
ns16550_read_reg(struct ns16550 *u, unsigned reg)
{
	uint8_t v;

	if ((u->lcr & LCR_DLAB) && reg <= R_IER)
		return reg == R_DATA ? u->div & 0xff : u->div >> 8;
	switch (reg) {
	case R_DATA:
		return ns16550_read_rbr(u);
	case R_IER:
		return u->ier;
	case R_IIR:
		v = ns16550_iir_code(u);
		if (v == IIR_THRI)
			u->thr_ipending = false;	/* acknowledged */
		return v | (ns16550_fifo_on(u) ? IIR_FIFO : 0);
	case R_LCR:
		return u->lcr;
	case R_MCR:
		return u->mcr;
	case R_LSR:
		v = u->lsr;
		u->lsr &= ~LSR_ERRORS;
		return v;
	case R_MSR:
		v = u->msr;
		u->msr &= ~MSR_DELTAS;
		return v;
	default:
		return u->scr;
	}
}

static void
ns16550_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct ns16550 *u = opaque;

	ns16550_bind_console(u);
	/* Wider accesses are taken as consecutive byte registers. */
	for (unsigned i = 0; i < len; i++) {
		unsigned reg = (unsigned)(off + i);

		if (reg > R_SCR) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		if (is_write)
			ns16550_write_reg(u, reg, data[i]);
		else
			data[i] = ns16550_read_reg(u, reg);
	}
	ns16550_update_irq(u);
}

static void
ns16550_reset(void *state)
{
	struct ns16550 *u = state;

	u->ier = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->fcr = 0;
	u->scr = 0;
	u->div = 12;	/* 9600 baud; undefined on the chip */
	u->lsr = LSR_THRE | LSR_TEMT;
	u->msr = MSR_CONNECTED;
	u->thr_ipending = false;
	ns16550_clear_rx(u);
	ns16550_update_irq(u);
	ns16550_announce(u);
}

struct ns16550 *
ns16550_new(struct vm *vm, uint16_t base, unsigned irq,
    struct console *console, int *err)
{
	struct ns16550 *u = calloc(1, sizeof(*u));
	char name[16];

	if (u == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	u->vm = vm;
	u->base = base;
	u->irq = irq;
	if (vm->loop != NULL) {
		vtimer_init(&u->rx_timer, vm->loop, ns16550_on_timeout, u);
		vtimer_init(&u->refill_timer, vm->loop, ns16550_on_refill, u);
	}
	snprintf(name, sizeof(name), "uart@%#x", base);
	if ((*err = bus_register(vm->pio, base, 8, ns16550_io, u, name)) < 0) {
		free(u);
		return NULL;
	}
	ns16550_reset(u);
	if (console != NULL) {
		u->con = console;
		console_set_input(console, ns16550_on_input, u);
		ns16550_announce(u);
	}
	return u;
}

void
ns16550_free(struct ns16550 *u)
{
	if (u == NULL)
		return;
	if (u->rx_timer.loop != NULL) {
		vtimer_cancel(&u->rx_timer);
		vtimer_cancel(&u->refill_timer);
	}
	/* Only a console that still exists (console_free clears
	 * vm->console) has our input hook to remove. */
	if (u->con != NULL && u->con == u->vm->console)
		console_set_input(u->con, NULL, NULL);
	bus_unregister(u->vm->pio, u->base);
	free(u);
}

static int
ns16550_create(struct vm *vm)
{
	struct ns16550 *u;
	int err;

	/* COM1 is the console; the guest may touch it before the console
	 * exists (it is created after the devices), so it binds lazily. */
	if ((u = ns16550_new(vm, 0x3f8, 4, vm->console, &err)) == NULL)
		return err;
	u->wants_console = true;
	if ((err = vm_device_register(vm, &ns16550_ops, u, "com1")) < 0) {
		ns16550_free(u);
		return err;
	}
	return 0;
}

static void
ns16550_fini(void *state)
{
	ns16550_free(state);
}

static int
ns16550_snapshot(void *state, struct snap *s)
{
	struct ns16550 *u = state;

	snap_u8(s, "ier", &u->ier);
	snap_u8(s, "lcr", &u->lcr);
	snap_u8(s, "mcr", &u->mcr);
	snap_u8(s, "lsr", &u->lsr);
	snap_u8(s, "msr", &u->msr);
	snap_u8(s, "scr", &u->scr);
	snap_u8(s, "fcr", &u->fcr);
	snap_u16(s, "div", &u->div);
	snap_bytes(s, "rx", u->rx, sizeof(u->rx));
	snap_u8(s, "rx_head", &u->rx_head);
	snap_u8(s, "rx_count", &u->rx_count);
	snap_bool(s, "thr_ipending", &u->thr_ipending);
	snap_bool(s, "timeout_ipending", &u->timeout_ipending);
	if (snap_saving(s) || snap_error(s))
		return snap_error(s);
	if (u->rx_head >= UART_FIFO || u->rx_count > ns16550_rx_cap(u)) {
		snap_fail(s, -EINVAL, "ns16550: receive FIFO %u+%u out of "
		    "range", u->rx_head, u->rx_count);
		ns16550_reset(u);	/* never keep indexes we refused */
		return snap_error(s);
	}
	/* Re-derive the outside world from the loaded registers. */
	u->ier &= 0x0f;
	u->mcr &= 0x1f;
	if (u->rx_count > 0 && !u->timeout_ipending)
		ns16550_restart_timeout(u);
	u->irq_level = ns16550_irq_wanted(u);
	vm_irq_set(u->vm, u->irq, u->irq_level);
	ns16550_announce(u);
	return 0;
}

const struct device_ops ns16550_ops = {
	.name = "ns16550",
	.create = ns16550_create,
	.fini = ns16550_fini,
	.snapshot = ns16550_snapshot,
	.snapshot_version = 1,
	.reset = ns16550_reset,
};
