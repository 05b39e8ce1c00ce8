/*
 * i8042 keyboard controller with its two PS/2 devices.
 *
 * The controller has one output buffer (port 0x60, OBF in the status
 * register); bytes reach it from three places, in this order: a reply to
 * a controller command, the keyboard's queue (unless the keyboard port is
 * disabled) and the mouse's queue (unless the aux port is disabled).  The
 * interrupt line of the byte's source (IRQ 1 or 12) is up while it sits
 * in the buffer and the command byte enables that interrupt.
 *
 * The keyboard queue holds what a set-2 keyboard sends; with the command
 * byte's XLATE bit the controller translates to set 1 on the way out, as
 * PC controllers do (0xf0 prefixes become bit 7 of the next code).
 *
 * Every command Linux's i8042, atkbd and psmouse drivers send is answered
 * at once, so probing costs no timeouts.
 */
#include "devices/i8042.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/log.h"

#define I8042_KBD_IRQ	1
#define I8042_AUX_IRQ	12
#define I8042_QUEUE	256

/* Status register. */
#define STS_OBF		0x01
#define STS_SYS		0x04
#define STS_CMD		0x08	/* last write went to 0x64 */
#define STS_UNLOCKED	0x10
#define STS_AUXOBF	0x20

/* Command byte. */
#define CCB_KBDINT	0x01
#define CCB_AUXINT	0x02
#define CCB_SYS		0x04
#define CCB_KBDDIS	0x10
#define CCB_AUXDIS	0x20
#define CCB_XLATE	0x40

/* Output port. */
#define OUT_RESET	0x01	/* active low: 0 holds the CPU in reset */
#define OUT_A20		0x02
#define OUT_ONES	0xcc	/* lines nothing drives read high */

#define PS2_ACK		0xfa
#define PS2_RESEND	0xfe
#define PS2_BAT_OK	0xaa

struct i8042_queue {
	uint8_t data[I8042_QUEUE];
	uint16_t head, count;
};

struct i8042_kbd {
	struct i8042_queue q;
	uint8_t pending;	/* command waiting for its parameter */
	uint8_t set;		/* scancode set 1-3 */
	uint8_t leds;
	bool scanning;
	bool f0;		/* set-1 emulation: break prefix seen */
};

struct i8042_mouse {
	struct i8042_queue q;
	uint8_t pending;
	uint8_t rate, res, id;
	uint8_t rate_hist[3];	/* IntelliMouse knock: 200,100,80 */
	uint8_t buttons;
	bool reporting, scaling21, remote, wrap;
};

struct i8042 {
	struct vm *vm;
	uint8_t ram[32];	/* ram[0] is the command byte */
	uint8_t outport;
	uint8_t pending;	/* controller command waiting for data */
	uint8_t obuf;
	bool obf, obf_aux;
	bool last_cmd;
	bool reply_pending, reply_aux;	/* controller's own reply */
	uint8_t reply;
	bool xlate_f0;		/* translating: 0xf0 seen */
	bool irq1, irq12;
	struct i8042_kbd kbd;
	struct i8042_mouse mouse;
};

/* Set 2 -> set 1 translation as PC controllers do it (keys only). */
static const uint8_t i8042_xlate[128] = {
	[0x00] = 0xff, [0x01] = 0x43, [0x03] = 0x3f, [0x04] = 0x3d,
	[0x05] = 0x3b, [0x06] = 0x3c, [0x07] = 0x58, [0x09] = 0x44,
	[0x0a] = 0x42, [0x0b] = 0x40, [0x0c] = 0x3e, [0x0d] = 0x0f,
	[0x0e] = 0x29, [0x11] = 0x38, [0x12] = 0x2a, [0x14] = 0x1d,
	[0x15] = 0x10, [0x16] = 0x02, [0x1a] = 0x2c, [0x1b] = 0x1f,
	[0x1c] = 0x1e, [0x1d] = 0x11, [0x1e] = 0x03, [0x21] = 0x2e,
	[0x22] = 0x2d, [0x23] = 0x20, [0x24] = 0x12, [0x25] = 0x05,
	[0x26] = 0x04, [0x29] = 0x39, [0x2a] = 0x2f, [0x2b] = 0x21,
	[0x2c] = 0x14, [0x2d] = 0x13, [0x2e] = 0x06, [0x31] = 0x31,
	[0x32] = 0x30, [0x33] = 0x23, [0x34] = 0x22, [0x35] = 0x15,
	[0x36] = 0x07, [0x3a] = 0x32, [0x3b] = 0x24, [0x3c] = 0x16,
	[0x3d] = 0x08, [0x3e] = 0x09, [0x41] = 0x33, [0x42] = 0x25,
	[0x43] = 0x17, [0x44] = 0x18, [0x45] = 0x0b, [0x46] = 0x0a,
	[0x49] = 0x34, [0x4a] = 0x35, [0x4b] = 0x26, [0x4c] = 0x27,
	[0x4d] = 0x19, [0x4e] = 0x0c, [0x52] = 0x28, [0x54] = 0x1a,
	[0x55] = 0x0d, [0x58] = 0x3a, [0x59] = 0x36, [0x5a] = 0x1c,
	[0x5b] = 0x1b, [0x5d] = 0x2b, [0x61] = 0x56, [0x66] = 0x0e,
	[0x69] = 0x4f, [0x6b] = 0x4b, [0x6c] = 0x47, [0x70] = 0x52,
	[0x71] = 0x53, [0x72] = 0x50, [0x73] = 0x4c, [0x74] = 0x4d,
	[0x75] = 0x48, [0x76] = 0x01, [0x77] = 0x45, [0x78] = 0x57,
	[0x79] = 0x4e, [0x7a] = 0x51, [0x7b] = 0x4a, [0x7c] = 0x37,
	[0x7d] = 0x49, [0x7e] = 0x46,
};

/* One set-2 byte in set 1 (prefixes and replies pass unchanged). */
static uint8_t
i8042_to_set1(uint8_t b)
{
	if (b == 0x83)
		return 0x41;	/* F7, and the keyboard ID's second byte */
	if (b == 0x84)
		return 0x54;	/* Alt+SysRq */
	if (b < 0x80 && i8042_xlate[b] != 0)
		return i8042_xlate[b];
	return b;
}

/* --- queues --- */

static bool
i8042_q_push(struct i8042_queue *q, uint8_t b)
{
	if (q->count >= I8042_QUEUE)
		return false;
	q->data[(q->head + q->count) % I8042_QUEUE] = b;
	q->count++;
	return true;
}

static uint8_t
i8042_q_pop(struct i8042_queue *q)
{
	uint8_t b = q->data[q->head];

	q->head = (q->head + 1) % I8042_QUEUE;
	q->count--;
	return b;
}

static void
i8042_q_clear(struct i8042_queue *q)
{
	q->head = q->count = 0;
}

/* --- controller output --- */

static uint8_t
i8042_ccb(const struct i8042 *k)
{
	return k->ram[0];
}

/* Drive IRQ 1 and 12 from the output buffer; only changes unless force. */
static void
i8042_drive_irq(struct i8042 *k, bool force)
{
	bool kbd = k->obf && !k->obf_aux && (i8042_ccb(k) & CCB_KBDINT);
	bool aux = k->obf && k->obf_aux && (i8042_ccb(k) & CCB_AUXINT);

	if (kbd != k->irq1 || force) {
		k->irq1 = kbd;
		vm_irq_set(k->vm, I8042_KBD_IRQ, kbd);
	}
	if (aux != k->irq12 || force) {
		k->irq12 = aux;
		vm_irq_set(k->vm, I8042_AUX_IRQ, aux);
	}
}

static void
i8042_update_irq(struct i8042 *k)
{
	i8042_drive_irq(k, false);
}

/* The next keyboard byte as the guest sees it (translated or not);
 * false if there is none yet. */
static bool
i8042_next_kbd(struct i8042 *k, uint8_t *out)
{
	while (k->kbd.q.count > 0) {
		uint8_t b = i8042_q_pop(&k->kbd.q);

		if (!(i8042_ccb(k) & CCB_XLATE)) {
			*out = b;
			return true;
		}
		if (b == 0xf0) {
			k->xlate_f0 = true;
			continue;
		}
		*out = i8042_to_set1(b) | (k->xlate_f0 ? 0x80 : 0);
		k->xlate_f0 = false;
		return true;
	}
	return false;
}

/* Fill an empty output buffer from the highest-priority source. */
static void
i8042_refill(struct i8042 *k)
{
	if (k->obf)
		goto out;
	if (k->reply_pending) {
		k->obuf = k->reply;
		k->obf_aux = k->reply_aux;
		k->reply_pending = false;
		k->obf = true;
	} else if (!(i8042_ccb(k) & CCB_KBDDIS) &&
	    i8042_next_kbd(k, &k->obuf)) {
		k->obf_aux = false;
		k->obf = true;
	} else if (!(i8042_ccb(k) & CCB_AUXDIS) && k->mouse.q.count > 0) {
		k->obuf = i8042_q_pop(&k->mouse.q);
		k->obf_aux = true;
		k->obf = true;
	}
out:
	i8042_update_irq(k);
}

static void
i8042_reply(struct i8042 *k, uint8_t b, bool aux)
{
	k->reply = b;
	k->reply_aux = aux;
	k->reply_pending = true;
}

/* --- the keyboard --- */

static void
i8042_kbd_send(struct i8042 *k, uint8_t b)
{
	i8042_q_push(&k->kbd.q, b);
}

static void
i8042_kbd_defaults(struct i8042_kbd *kb)
{
	kb->set = 2;
	kb->leds = 0;
	kb->pending = 0;
}

static void
i8042_kbd_param(struct i8042 *k, uint8_t cmd, uint8_t v)
{
	switch (cmd) {
	case 0xed:
		k->kbd.leds = v & 7;
		break;
	case 0xf0:
		if (v == 0) {
			i8042_kbd_send(k, PS2_ACK);
			i8042_kbd_send(k, k->kbd.set);
			return;
		}
		if (v > 3) {
			i8042_kbd_send(k, PS2_RESEND);
			return;
		}
		k->kbd.set = v;
		break;
	default:		/* 0xf3 typematic, 0xfb-0xfd set-3 keys */
		break;
	}
	i8042_kbd_send(k, PS2_ACK);
}

static void
i8042_kbd_write(struct i8042 *k, uint8_t v)
{
	struct i8042_kbd *kb = &k->kbd;
	uint8_t cmd = kb->pending;

	if (cmd != 0 && v < 0xed) {
		kb->pending = 0;
		i8042_kbd_param(k, cmd, v);
		return;
	}
	kb->pending = 0;
	switch (v) {
	case 0xed: case 0xf0: case 0xf3: case 0xfb: case 0xfc: case 0xfd:
		kb->pending = v;
		i8042_kbd_send(k, PS2_ACK);
		break;
	case 0xee:
		i8042_kbd_send(k, 0xee);	/* echo */
		break;
	case 0xf2:
		i8042_kbd_send(k, PS2_ACK);
		i8042_kbd_send(k, 0xab);	/* MF2 keyboard */
		i8042_kbd_send(k, 0x83);
		break;
	case 0xf4:
		kb->scanning = true;
		i8042_kbd_send(k, PS2_ACK);
		break;
	case 0xf5:
		i8042_kbd_defaults(kb);
		kb->scanning = false;
		i8042_kbd_send(k, PS2_ACK);
		break;
	case 0xf6:
		i8042_kbd_defaults(kb);
		kb->scanning = true;
		i8042_kbd_send(k, PS2_ACK);
		break;
	case 0xf7: case 0xf8: case 0xf9: case 0xfa:
		i8042_kbd_send(k, PS2_ACK);
		break;
	case 0xff:
		i8042_q_clear(&kb->q);
		i8042_kbd_defaults(kb);
		kb->scanning = true;
		i8042_kbd_send(k, PS2_ACK);
		i8042_kbd_send(k, PS2_BAT_OK);
		break;
	default:
		log_guest_once("i8042: unknown keyboard command %#x", v);
		i8042_kbd_send(k, PS2_RESEND);
		break;
	}
}

/* Convert a set-2 sequence to set 1 for a keyboard told to use set 1
 * without the controller translating. */
static void
i8042_kbd_send_set1(struct i8042 *k, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (b[i] == 0xf0) {
			k->kbd.f0 = true;
			continue;
		}
		i8042_kbd_send(k, i8042_to_set1(b[i]) |
		    (k->kbd.f0 ? 0x80 : 0));
		k->kbd.f0 = false;
	}
}

void
i8042_key_event(struct i8042 *k, const uint8_t *set2, size_t len)
{
	if (k == NULL || !k->kbd.scanning ||
	    (size_t)(I8042_QUEUE - k->kbd.q.count) < len)
		return;
	if (k->kbd.set == 1 && !(i8042_ccb(k) & CCB_XLATE))
		i8042_kbd_send_set1(k, set2, len);
	else	/* XXX set 3 guests get set 2 */
		for (size_t i = 0; i < len; i++)
			i8042_kbd_send(k, set2[i]);
	i8042_refill(k);
}

/* --- the mouse --- */

static void
i8042_mouse_send(struct i8042 *k, uint8_t b)
{
	i8042_q_push(&k->mouse.q, b);
}

static void
i8042_mouse_defaults(struct i8042_mouse *m)
{
	m->rate = 100;
	m->res = 2;
	m->scaling21 = false;
	m->reporting = false;
	m->remote = false;
	m->pending = 0;
}

static int
i8042_clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* One movement packet (3 bytes, 4 with a wheel). */
static void
i8042_mouse_packet(struct i8042 *k, int dx, int dy, int dz)
{
	struct i8042_mouse *m = &k->mouse;
	uint8_t b0 = 0x08 | (m->buttons & 7);

	dx = i8042_clamp(dx, -255, 255);
	dy = i8042_clamp(-dy, -255, 255);	/* PS/2: up is positive */
	if (dx < 0)
		b0 |= 0x10;
	if (dy < 0)
		b0 |= 0x20;
	i8042_mouse_send(k, b0);
	i8042_mouse_send(k, (uint8_t)dx);
	i8042_mouse_send(k, (uint8_t)dy);
	if (m->id == 3)
		i8042_mouse_send(k, (uint8_t)i8042_clamp(dz, -8, 7));
	else if (m->id == 4)
		i8042_mouse_send(k, ((uint8_t)i8042_clamp(dz, -8, 7) & 0x0f) |
		    ((m->buttons & 0x18) << 1));
}

void
i8042_mouse_event(struct i8042 *k, int dx, int dy, int dz, unsigned buttons)
{
	if (k == NULL)
		return;
	k->mouse.buttons = buttons & 0x1f;
	if (!k->mouse.reporting || k->mouse.remote ||
	    I8042_QUEUE - k->mouse.q.count < 4)
		return;
	i8042_mouse_packet(k, dx, dy, dz);
	i8042_refill(k);
}

static void
i8042_mouse_rate(struct i8042_mouse *m, uint8_t rate)
{
	m->rate = rate;
	m->rate_hist[0] = m->rate_hist[1];
	m->rate_hist[1] = m->rate_hist[2];
	m->rate_hist[2] = rate;
	if (m->rate_hist[0] == 200 && m->rate_hist[2] == 80) {
		if (m->rate_hist[1] == 100)
			m->id = 3;	/* IntelliMouse: wheel */
		else if (m->rate_hist[1] == 200 && m->id == 3)
			m->id = 4;	/* Explorer: wheel and 5 buttons */
	}
}

static void
i8042_mouse_status(struct i8042 *k)
{
	struct i8042_mouse *m = &k->mouse;
	uint8_t st = (m->remote ? 0x40 : 0) | (m->reporting ? 0x20 : 0) |
	    (m->scaling21 ? 0x10 : 0) | ((m->buttons & 1) << 2) |
	    ((m->buttons & 2) >> 1) | ((m->buttons & 4) >> 1);

	i8042_mouse_send(k, PS2_ACK);
	i8042_mouse_send(k, st);
	i8042_mouse_send(k, m->res);
	i8042_mouse_send(k, m->rate);
}

static void
i8042_mouse_write(struct i8042 *k, uint8_t v)
{
	struct i8042_mouse *m = &k->mouse;
	uint8_t cmd = m->pending;

	if (m->wrap && v != 0xec && v != 0xff) {
		i8042_mouse_send(k, v);
		return;
	}
	m->pending = 0;
	if (cmd == 0xf3 || cmd == 0xe8) {
		if (cmd == 0xf3)
			i8042_mouse_rate(m, v);
		else
			m->res = v & 3;
		i8042_mouse_send(k, PS2_ACK);
		return;
	}
	switch (v) {
	case 0xe6: case 0xe7:
		m->scaling21 = v == 0xe7;
		i8042_mouse_send(k, PS2_ACK);
		break;
	case 0xe8: case 0xf3:
		m->pending = v;
		i8042_mouse_send(k, PS2_ACK);
		break;
	case 0xe9:
		i8042_mouse_status(k);
		break;
	case 0xea: case 0xf0:
		m->remote = v == 0xf0;
		i8042_mouse_send(k, PS2_ACK);
		break;
	case 0xeb:
		i8042_mouse_send(k, PS2_ACK);
		i8042_mouse_packet(k, 0, 0, 0);
		break;
	case 0xec: case 0xee:
		m->wrap = v == 0xee;
		i8042_mouse_send(k, PS2_ACK);
		break;
	case 0xf2:
		i8042_mouse_send(k, PS2_ACK);
		i8042_mouse_send(k, m->id);
		break;
	case 0xf4: case 0xf5:
		m->reporting = v == 0xf4;
		i8042_mouse_send(k, PS2_ACK);
		break;
	case 0xf6:
		i8042_mouse_defaults(m);
		i8042_mouse_send(k, PS2_ACK);
		break;
	case 0xff:
		i8042_q_clear(&m->q);
		i8042_mouse_defaults(m);
		m->wrap = false;
		m->id = 0;
		i8042_mouse_send(k, PS2_ACK);
		i8042_mouse_send(k, PS2_BAT_OK);
		i8042_mouse_send(k, 0x00);
		break;
	default:
		log_guest_once("i8042: unknown mouse command %#x", v);
		i8042_mouse_send(k, PS2_RESEND);
		break;
	}
}

/* --- the controller --- */

static void
i8042_reset_line(struct i8042 *k)
{
	log_info("i8042: guest pulsed the reset line");
	vm_request_exit(k->vm, VM_EVENT_RESET, 0);
}

static void
i8042_write_outport(struct i8042 *k, uint8_t v)
{
	k->outport = v;
	if (!(v & OUT_RESET))
		i8042_reset_line(k);
}

/* A data byte after a command that takes one. */
static void
i8042_command_data(struct i8042 *k, uint8_t cmd, uint8_t v)
{
	if (cmd >= 0x60 && cmd <= 0x7f) {
		k->ram[cmd & 0x1f] = v;
		return;
	}
	switch (cmd) {
	case 0xd1:
		i8042_write_outport(k, v);
		break;
	case 0xd2:
	case 0xd3:
		i8042_reply(k, v, cmd == 0xd3);	/* loop back to the guest */
		break;
	case 0xd4:
		i8042_mouse_write(k, v);
		break;
	}
}

static void
i8042_command(struct i8042 *k, uint8_t cmd)
{
	if (cmd >= 0x20 && cmd <= 0x3f) {
		i8042_reply(k, k->ram[cmd & 0x1f], false);
		return;
	}
	if ((cmd >= 0x60 && cmd <= 0x7f) || cmd == 0xd1 || cmd == 0xd2 ||
	    cmd == 0xd3 || cmd == 0xd4) {
		k->pending = cmd;
		return;
	}
	if (cmd >= 0xf0) {
		/* Pulse output port bits whose mask bit is 0. */
		if (!(cmd & 1))
			i8042_reset_line(k);
		return;
	}
	switch (cmd) {
	case 0xa4:
		i8042_reply(k, 0xf1, false);	/* no password */
		break;
	case 0xa7: k->ram[0] |= CCB_AUXDIS; break;
	case 0xa8: k->ram[0] &= ~CCB_AUXDIS; break;
	case 0xa9: i8042_reply(k, 0x00, false); break;
	case 0xaa: i8042_reply(k, 0x55, false); break;
	case 0xab: i8042_reply(k, 0x00, false); break;
	case 0xad: k->ram[0] |= CCB_KBDDIS; break;
	case 0xae: k->ram[0] &= ~CCB_KBDDIS; break;
	case 0xc0: i8042_reply(k, 0x80, false); break;	/* not inhibited */
	case 0xd0: i8042_reply(k, k->outport, false); break;
	case 0xdd: k->outport &= ~OUT_A20; break;
	case 0xdf: k->outport |= OUT_A20; break;
	case 0xe0: i8042_reply(k, 0x00, false); break;
	default:
		log_guest_once("i8042: unknown controller command %#x", cmd);
		break;
	}
}

static uint8_t
i8042_status(const struct i8042 *k)
{
	uint8_t st = STS_UNLOCKED;

	if (k->obf)
		st |= STS_OBF | (k->obf_aux ? STS_AUXOBF : 0);
	if (i8042_ccb(k) & CCB_SYS)
		st |= STS_SYS;
	if (k->last_cmd)
		st |= STS_CMD;
	return st;
}

static void
i8042_write_data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending;

	k->last_cmd = false;
	k->pending = 0;
	if (cmd != 0) {
		i8042_command_data(k, cmd, v);
		return;
	}
	/* Writing to the keyboard re-enables its interface. */
	k->ram[0] &= ~CCB_KBDDIS;
	i8042_kbd_write(k, v);
}

static void
i8042_io_data(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct i8042 *k = opaque;

	if (is_write) {
		i8042_write_data(k, data[0]);
	} else {
		memset(data, 0xff, len);
		data[0] = k->obuf;	/* stale byte when empty, as real */
		k->obf = false;
		/* Drop the line before the next byte loads: ISA IRQs are
		 * edge-triggered, and a line that stayed up would never
		 * signal that byte (the chip has a gap here too). */
		i8042_update_irq(k);
	}
	i8042_refill(k);
}

static void
i8042_io_cmd(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct i8042 *k = opaque;

	if (!is_write) {
		memset(data, 0xff, len);
		data[0] = i8042_status(k);
		return;
	}
	k->last_cmd = true;
	k->pending = 0;
	i8042_command(k, data[0]);
	i8042_refill(k);
}

/* --- device --- */

static void
i8042_reset(void *state)
{
	struct i8042 *k = state;

	memset(k->ram, 0, sizeof(k->ram));
	/* As a BIOS leaves it: POST passed, translation, both IRQs. */
	k->ram[0] = CCB_XLATE | CCB_SYS | CCB_KBDINT | CCB_AUXINT;
	k->outport = OUT_RESET | OUT_A20 | OUT_ONES;
	k->pending = 0;
	k->obf = k->obf_aux = k->last_cmd = false;
	k->reply_pending = false;
	k->xlate_f0 = false;
	i8042_q_clear(&k->kbd.q);
	i8042_kbd_defaults(&k->kbd);
	k->kbd.scanning = true;
	k->kbd.f0 = false;
	i8042_q_clear(&k->mouse.q);
	i8042_mouse_defaults(&k->mouse);
	k->mouse.wrap = false;
	k->mouse.id = 0;
	memset(k->mouse.rate_hist, 0, sizeof(k->mouse.rate_hist));
	i8042_update_irq(k);
}

static int
i8042_create(struct vm *vm)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	int err;

	if (k == NULL)
		return -ENOMEM;
	k->vm = vm;
	i8042_reset(k);
	if ((err = bus_register(vm->pio, 0x60, 1, i8042_io_data, k,
	    "i8042-data")) < 0)
		goto fail;
	if ((err = bus_register(vm->pio, 0x64, 1, i8042_io_cmd, k,
	    "i8042-cmd")) < 0)
		goto fail_data;
	if ((err = vm_device_register(vm, &i8042_ops, k, "i8042")) < 0)
		goto fail_cmd;
	return 0;
fail_cmd:
	bus_unregister(vm->pio, 0x64);
fail_data:
	bus_unregister(vm->pio, 0x60);
fail:
	free(k);
	return err;
}

static void
i8042_fini(void *state)
{
	struct i8042 *k = state;

	bus_unregister(k->vm->pio, 0x60);
	bus_unregister(k->vm->pio, 0x64);
	free(k);
}

struct i8042 *
i8042_find(struct vm *vm)
{
	return devices_find(vm, &i8042_ops);
}

static void
i8042_snap_queue(struct snap *s, const char *pfx, struct i8042_queue *q)
{
	char name[32];

	snprintf(name, sizeof(name), "%s.data", pfx);
	snap_bytes(s, name, q->data, sizeof(q->data));
	snprintf(name, sizeof(name), "%s.head", pfx);
	snap_u16(s, name, &q->head);
	snprintf(name, sizeof(name), "%s.count", pfx);
	snap_u16(s, name, &q->count);
	if (!snap_saving(s) && (q->head >= I8042_QUEUE ||
	    q->count > I8042_QUEUE))
		snap_fail(s, -EINVAL, "i8042: %s queue %u+%u out of range",
		    pfx, q->head, q->count);
}

static int
i8042_snapshot(void *state, struct snap *s)
{
	struct i8042 *k = state;
	struct i8042_kbd *kb = &k->kbd;
	struct i8042_mouse *m = &k->mouse;

	snap_bytes(s, "ram", k->ram, sizeof(k->ram));
	snap_u8(s, "outport", &k->outport);
	snap_u8(s, "pending", &k->pending);
	snap_u8(s, "obuf", &k->obuf);
	snap_bool(s, "obf", &k->obf);
	snap_bool(s, "obf_aux", &k->obf_aux);
	snap_bool(s, "last_cmd", &k->last_cmd);
	snap_bool(s, "reply_pending", &k->reply_pending);
	snap_bool(s, "reply_aux", &k->reply_aux);
	snap_u8(s, "reply", &k->reply);
	snap_bool(s, "xlate_f0", &k->xlate_f0);
	i8042_snap_queue(s, "kbd", &kb->q);
	snap_u8(s, "kbd.pending", &kb->pending);
	snap_u8(s, "kbd.set", &kb->set);
	snap_u8(s, "kbd.leds", &kb->leds);
	snap_bool(s, "kbd.scanning", &kb->scanning);
	snap_bool(s, "kbd.f0", &kb->f0);
	i8042_snap_queue(s, "mouse", &m->q);
	snap_u8(s, "mouse.pending", &m->pending);
	snap_u8(s, "mouse.rate", &m->rate);
	snap_u8(s, "mouse.res", &m->res);
	snap_u8(s, "mouse.id", &m->id);
	snap_bytes(s, "mouse.rate_hist", m->rate_hist, sizeof(m->rate_hist));
	snap_u8(s, "mouse.buttons", &m->buttons);
	snap_bool(s, "mouse.reporting", &m->reporting);
	snap_bool(s, "mouse.scaling21", &m->scaling21);
	snap_bool(s, "mouse.remote", &m->remote);
	snap_bool(s, "mouse.wrap", &m->wrap);
	if (snap_saving(s))
		return snap_error(s);
	if (snap_error(s)) {
		i8042_reset(k);	/* never keep queue indexes we refused */
		return snap_error(s);
	}
	i8042_drive_irq(k, true);
	return 0;
}

const struct device_ops i8042_ops = {
	.name = "i8042",
	.create = i8042_create,
	.fini = i8042_fini,
	.snapshot = i8042_snapshot,
	.snapshot_version = 1,
	.reset = i8042_reset,
};
