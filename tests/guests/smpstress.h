/*
 * Layout shared by the SMP stress guest's real-mode AP code
 * (smpstress_trampoline.S) and its 64-bit BSP (smpstress.c): offsets in
 * the trampoline page (control) and in a phase's data block.
 */
#ifndef SMPSTRESS_H
#define SMPSTRESS_H

#define SS_SLOTS	16	/* vCPUs with their own bytes in one line */
#define SS_PHASES	2	/* data phases; phase 3 is the code one */
#define SS_SMC_END	0xffffffff

/* Control block, from the start of the trampoline page. */
#define CTL_OFF		0x180
#define CTL_GO		(CTL_OFF + 0x00)	/* byte: phase to run */
#define CTL_SLOT	(CTL_OFF + 0x02)	/* word: next free slot */
#define CTL_ITERS	(CTL_OFF + 0x04)	/* dword: loop count */
#define CTL_STARTED	(CTL_OFF + 0x08)	/* dword: APs counted in */
#define CTL_DONE	(CTL_OFF + 0x0c)	/* dwords [1..SS_PHASES + 1] */
#define CTL_IDS		(CTL_OFF + 0x20)	/* bytes [256]: APIC IDs */
#define CTL_END		(CTL_IDS + 256)

/* Phase data: phase 1 at DATA_OFF in the trampoline page, phase 2 at
 * DATA_OFF in the next page seen from ES = CS + (0x1000 - DATA_OFF)/16,
 * i.e. at the start of the next page. */
#define DATA_OFF	0x300
#define D_INC		0x00	/* lock inc */
#define D_XADD		0x04	/* lock xadd */
#define D_LOCK1		0x08	/* byte: xchg spin lock */
#define D_LOCK2		0x0c	/* dword: cmpxchg spin lock */
#define D_CNT1		0x10	/* under LOCK1 */
#define D_CNT2		0x14	/* under LOCK2 */
#define D_BYTES		0x40	/* [SS_SLOTS] one line: incb by each slot */
#define D_LAST		0x50	/* [SS_SLOTS] movb of the iteration */
#define D_WORDS		0x60	/* [SS_SLOTS] u16, incw */
#define D_DWORDS	0x80	/* [SS_SLOTS] u32, incl */
#define D_XSUM		0xc0	/* [SS_SLOTS] u32, sum of xadd results */
#define D_SEEN		0x100	/* [SS_SLOTS] u32, phase 3 echo (next page) */
#define D_BEAT		0x140	/* [SS_SLOTS] u32, phase 3 loop count */
#define D_END		0x180

#endif
