/*
 * MC146818 real-time clock and CMOS memory at ports 0x70-0x71, IRQ 8.
 */
#ifndef TV_MC146818_H
#define TV_MC146818_H

#include <stdint.h>

struct device_ops;

extern const struct device_ops mc146818_ops;

/* CMOS layout worth naming (what SeaBIOS and the FADT look at). */
#define MC146818_CENTURY	0x32	/* FADT century field points here */
#define MC146818_MEM_ABOVE_16M	0x34	/* 0x34-0x35, 64 KiB units */
#define MC146818_MEM_ABOVE_4G	0x5b	/* 0x5b-0x5d, 64 KiB units */
#define MC146818_NR_CPUS	0x5f	/* CPUs - 1 */

#endif
