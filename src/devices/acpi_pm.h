/*
 * ACPI fixed hardware (PM1a event and control blocks, PM timer, reset
 * register) at the ports the FADT names.  The FADT must say exactly:
 */
#ifndef TV_ACPI_PM_H
#define TV_ACPI_PM_H

#include <stdint.h>

struct vm;
struct device_ops;
struct acpi_pm;

#define ACPI_PM1A_EVT_BLK	0x600	/* PM1_STS 0x600, PM1_EN 0x602 */
#define ACPI_PM1_EVT_LEN	4
#define ACPI_PM1A_CNT_BLK	0x604
#define ACPI_PM1_CNT_LEN	2
#define ACPI_PM_TMR_BLK		0x608	/* 24-bit, 3.579545 MHz */
#define ACPI_PM_TMR_LEN		4
#define ACPI_RESET_REG		0xcf9	/* I/O, byte; reset value below */
#define ACPI_RESET_VALUE	0x06
#define ACPI_SCI_GSI		9	/* level, active high */
#define ACPI_SLP_TYP_S5		5	/* the DSDT's _S5 is {5, 5, 0, 0} */

extern const struct device_ops acpi_pm_ops;

/* The VM's ACPI PM device, or NULL. */
struct acpi_pm *acpi_pm_find(struct vm *vm);

/*
 * Press the power button: PWRBTN_STS is set and, when the guest enabled
 * it, the SCI rises until the guest clears the status (its ACPI button
 * driver then starts an orderly shutdown).  Device lock held.
 */
void acpi_pm_power_button(struct acpi_pm *pm);

#endif
