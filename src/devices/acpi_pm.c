/*
 * ACPI fixed hardware, as the FADT describes it (acpi_pm.h has the
 * ports).  We are always in ACPI mode (SCI_EN reads 1, the FADT's SMI_CMD
 * is 0), which is what lets a kernel use it without firmware.
 *
 * PM1_STS bits are write-1-to-clear; the SCI (GSI 9, level) is up while
 * an enabled status bit is set.  Writing SLP_EN with SLP_TYP 5 is the S5
 * soft-off and ends the VM with status 0; the reset register at 0xcf9
 * resets the VM when the CPU-reset bit is written (0x06 or 0x0e).
 *
 * XXX TMR_STS (timer carry) is never set: Linux does not enable it.
 */
#include "devices/acpi_pm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "hv/vm.h"
#include "migrate/snap.h"
#include "util/evloop.h"
#include "util/log.h"

#define PM_TMR_HZ	3579545ull

/* PM1_STS / PM1_EN bits. */
#define PM1_TMR		0x0001
#define PM1_GBL		0x0020
#define PM1_PWRBTN	0x0100
#define PM1_SLPBTN	0x0200
#define PM1_RTC		0x0400
#define PM1_STS_WAK	0x8000
#define PM1_STS_W1C	0xc731	/* WAK, PCIEXP_WAKE, RTC, SLPBTN, PWRBTN, GBL, BM, TMR */
#define PM1_EN_MASK	0x0721

/* PM1_CNT bits. */
#define CNT_SCI_EN	0x0001
#define CNT_SLP_TYP(v)	(((v) >> 10) & 7)
#define CNT_SLP_EN	0x2000
#define CNT_RW		0x1c06	/* SLP_TYP, GBL_RLS, BM_RLD */

#define RESET_CPU	0x04

struct acpi_pm {
	struct vm *vm;
	uint16_t sts, en, cnt;
	uint8_t reset;
	int64_t tmr_offset_ns;	/* PM timer = vclock + offset */
	bool sci;
};

static void
acpi_pm_update_sci(struct acpi_pm *pm)
{
	bool level = (pm->sts & pm->en & PM1_EN_MASK) != 0;

	if (level != pm->sci) {
		pm->sci = level;
		vm_irq_set(pm->vm, ACPI_SCI_GSI, level);
	}
}

static uint32_t
acpi_pm_timer(const struct acpi_pm *pm)
{
	uint64_t ns = vclock_ns() + (uint64_t)pm->tmr_offset_ns;

	return (uint32_t)((unsigned __int128)ns * PM_TMR_HZ / 1000000000u) &
	    0xffffff;
}

static void
acpi_pm_sleep(struct acpi_pm *pm, unsigned typ)
{
	if (typ == ACPI_SLP_TYP_S5) {
		log_info("acpi: guest entered S5 (soft off)");
		vm_request_exit(pm->vm, VM_EVENT_POWEROFF, 0);
		return;
	}
	/* XXX S1-S4 are not offered in the DSDT; a guest asking anyway
	 * keeps running. */
	log_info("acpi: guest asked for sleep type %u, ignored", typ);
}

static void
acpi_pm_write_cnt(struct acpi_pm *pm, uint16_t v)
{
	pm->cnt = (pm->cnt & ~CNT_RW) | (v & CNT_RW);
	if (v & CNT_SLP_EN)
		acpi_pm_sleep(pm, CNT_SLP_TYP(v));
}

/* Register file at 0x600-0x60b, byte by byte (drivers use 8/16/32). */
static uint8_t
acpi_pm_read_byte(struct acpi_pm *pm, unsigned off)
{
	uint16_t cnt = pm->cnt | CNT_SCI_EN;

	switch (off) {
	case 0: case 1: return (uint8_t)(pm->sts >> (8 * off));
	case 2: case 3: return (uint8_t)(pm->en >> (8 * (off - 2)));
	case 4: case 5: return (uint8_t)(cnt >> (8 * (off - 4)));
	case 8: case 9: case 10: case 11:
		return (uint8_t)(acpi_pm_timer(pm) >> (8 * (off - 8)));
	default: return 0xff;
	}
}

static void
acpi_pm_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct acpi_pm *pm = opaque;
	uint32_t v = 0;

	if (!is_write) {
		for (unsigned i = 0; i < len; i++)
			data[i] = off + i < 12 ?
			    acpi_pm_read_byte(pm, (unsigned)(off + i)) : 0xff;
		return;
	}
	v = (uint32_t)bus_get(data, len);
	/* Split the write into the 16-bit registers it covers. */
	for (unsigned i = 0; i < len; i++) {
		unsigned o = (unsigned)off + i, sh = 8 * (o & 1);
		uint16_t b = (uint16_t)(((v >> (8 * i)) & 0xff) << sh);
		uint16_t m = (uint16_t)(0xff << sh);

		if (o < 2)
			pm->sts &= ~(b & PM1_STS_W1C);
		else if (o < 4)
			pm->en = (pm->en & ~m) | (b & PM1_EN_MASK);
		else if (o < 6)	/* SLP_TYP and SLP_EN share the high byte */
			acpi_pm_write_cnt(pm, (pm->cnt & ~m) | b);
	}
	acpi_pm_update_sci(pm);
}

static void
acpi_pm_reset_io(struct vcpu *vcpu, uint64_t off, uint8_t *data, unsigned len,
    bool is_write, void *opaque)
{
	struct acpi_pm *pm = opaque;

	if (!is_write) {
		memset(data, 0xff, len);
		data[0] = pm->reset;
		return;
	}
	pm->reset = data[0];
	if (data[0] & RESET_CPU) {
		log_info("acpi: reset register written (%#x)", data[0]);
		vm_request_exit(pm->vm, VM_EVENT_RESET, 0);
	}
}

void
acpi_pm_power_button(struct acpi_pm *pm)
{
	pm->sts |= PM1_PWRBTN;
	acpi_pm_update_sci(pm);
}

struct acpi_pm *
acpi_pm_find(struct vm *vm)
{
	return devices_find(vm, &acpi_pm_ops);
}

static void
acpi_pm_reset(void *state)
{
	struct acpi_pm *pm = state;

	pm->sts = 0;
	pm->en = 0;
	pm->cnt = 0;
	pm->reset = 0;
	acpi_pm_update_sci(pm);
}

static int
acpi_pm_create(struct vm *vm)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	int err;

	if (pm == NULL)
		return -ENOMEM;
	pm->vm = vm;
	if ((err = bus_register(vm->pio, ACPI_PM1A_EVT_BLK,
	    ACPI_PM_TMR_BLK + ACPI_PM_TMR_LEN - ACPI_PM1A_EVT_BLK, acpi_pm_io,
	    pm, "acpi-pm")) < 0)
		goto fail;
	if ((err = bus_register(vm->pio, ACPI_RESET_REG, 1, acpi_pm_reset_io,
	    pm, "acpi-reset")) < 0)
		goto fail_pm;
	if ((err = vm_device_register(vm, &acpi_pm_ops, pm, "acpi-pm")) < 0)
		goto fail_reset;
	return 0;
fail_reset:
	bus_unregister(vm->pio, ACPI_RESET_REG);
fail_pm:
	bus_unregister(vm->pio, ACPI_PM1A_EVT_BLK);
fail:
	free(pm);
	return err;
}

static void
acpi_pm_fini(void *state)
{
	struct acpi_pm *pm = state;

	bus_unregister(pm->vm->pio, ACPI_PM1A_EVT_BLK);
	bus_unregister(pm->vm->pio, ACPI_RESET_REG);
	free(pm);
}

/* The PM timer is saved as its current count in ns so it continues,
 * rather than jumping, on a host whose vclock differs. */
static int
acpi_pm_snapshot(void *state, struct snap *s)
{
	struct acpi_pm *pm = state;
	uint64_t now = vclock_ns() + (uint64_t)pm->tmr_offset_ns;

	snap_u16(s, "sts", &pm->sts);
	snap_u16(s, "en", &pm->en);
	snap_u16(s, "cnt", &pm->cnt);
	snap_u8(s, "reset", &pm->reset);
	snap_u64(s, "timer_ns", &now);
	if (snap_saving(s) || snap_error(s))
		return snap_error(s);
	pm->tmr_offset_ns = (int64_t)(now - vclock_ns());
	pm->sci = (pm->sts & pm->en & PM1_EN_MASK) != 0;
	vm_irq_set(pm->vm, ACPI_SCI_GSI, pm->sci);
	return 0;
}

const struct device_ops acpi_pm_ops = {
	.name = "acpi-pm",
	.create = acpi_pm_create,
	.fini = acpi_pm_fini,
	.snapshot = acpi_pm_snapshot,
	.snapshot_version = 1,
	.reset = acpi_pm_reset,
};
