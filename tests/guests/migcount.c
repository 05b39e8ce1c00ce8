/*
 * Migration test guest (a bzImage entered at its 64-bit entry, like
 * bzimage64.bin): sets up ring 0 in a few dozen instructions, drops to
 * ring 3 (64-bit) and from then on loops there,
 * writing memory and printing a counter on the serial port:
 *
 *   migcount sum0 XXXXXXXX       the buffer's checksum after filling it
 *   count N                      every pass, N = 1, 2, 3 ...
 *   check N OK | check N BAD     every 32 passes: the whole buffer's
 *                                checksum recomputed against the one
 *                                kept up to date as it was written
 *
 * With "timer" on its command line it counts timer interrupts instead,
 * in ring 0: the local APIC's periodic timer at 100 Hz (vector 0x40),
 * "count N" at each tick, between them STI; HLT.  That one tests that
 * the timer keeps ticking where the guest moved to.  With "pit", the
 * same with the PIT's channel 0 (mode 2, 100 Hz) through the 8259
 * (IRQ0 at vector 0x20) and the LAPIC's LINT0 as ExtINT.
 *
 * With "syscall", every pass also makes two system calls (SYSCALL to a
 * ring-0 handler that counts them and returns by SYSRETQ) and the line
 * reads "sys N count M" (N = 2M).  "iret" enters ring 3 by IRETQ
 * rather than SYSEXIT, "linuxgdt" uses Linux's user segments (data
 * 0x2b, 64-bit code 0x33).  tests/e2e/guest-syscall.sh runs them.
 *
 * Each pass rewrites one word of a 1 MiB buffer (keeping the running
 * checksum) and dirties a page of a 4 MiB scratch area, so a migration
 * always has pages to copy again.  A page the migration lost or sent
 * stale shows as BAD at the next check; a lost or repeated pass shows
 * in the counts.
 *
 * Why ring 3: on this project's machines /dev/kvm (kvm_pvm) runs guest
 * ring 3 natively but emulates ring 0 one instruction at a time, so the
 * loop lives in ring 3 and ring 0 only sets up.  Ring 3 reaches the
 * UART by OUT only (see user_puts), allowed by IOPL 3 and by the TSS's
 * I/O bitmap too, in case a KVM's POPF left IOPL out.  Ring 3 is entered
 * by SYSEXIT, which that KVM's emulator runs itself: IRET it cannot,
 * and the software CPU would run it for KVM (KVM assist) and set the
 * vCPU to CPL 3, which that KVM then tends never to run again.  Paging
 * is on (that KVM runs ring 3 natively only then).  No INT n from
 * ring 3 (#UD there) and no interrupts: IF stays clear; a fault stops
 * the guest with a line saying which.  That KVM also sometimes never runs
 * again a vCPU whose state the VMM set straight to CPL 3, which is what
 * a migration's destination does: the e2e script says so when it sees
 * it (tests/e2e/migrate-kvm-running.sh).
 */
#include "guest.h"

#define BUF		0x00400000ull	/* 1 MiB, checked */
#define BUF_WORDS	(0x100000u / 4)
#define SCRATCH		0x00800000ull	/* 4 MiB, dirtied */
#define SCRATCH_PAGES	1024u
#define USTACK		0x00300000ull
#define CHECK_EVERY	32u
/* Busy-wait between passes: a few ms, so the log stays small. */
#define SPIN		500000u

void bzimage64_main(void *boot_params);
void migcount_user(void);
void migcount_fault(uint64_t vec, const uint64_t *frame);

/* With an I/O bitmap that lets ring 3 at ports 0-0x3ff (the UART). */
struct tss64 {
	uint32_t rsvd0;
	uint64_t rsp[3];
	uint64_t rsvd1, ist[7], rsvd2;
	uint16_t rsvd3, iomap;
	uint8_t bitmap[0x400 / 8 + 1];
} __attribute__((packed));

static struct tss64 tss __attribute__((aligned(16)));
static uint64_t gdt[9] __attribute__((aligned(16)));
#define TICK_VEC	0x40
#define PIT_VEC		0x20
static uint64_t idt[2 * (TICK_VEC + 1)] __attribute__((aligned(16)));
static uint8_t kstack[8192] __attribute__((aligned(16)));
static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[512] __attribute__((aligned(4096)));
static uint64_t pd_apic[512] __attribute__((aligned(4096)));
volatile uint32_t migcount_ticks;
volatile uint32_t migcount_syscalls;
static int migcount_sc;
void migcount_syscall_entry(void);

/* SYSCALL from ring 3: count it, SYSRET back (RCX, R11 kept). */
__asm__(".text\n.globl migcount_syscall_entry\nmigcount_syscall_entry:\n"
    "\tlock incl migcount_syscalls\n"
    "\tsysretq\n");
void migcount_tick(void);
void migcount_pit_tick(void);

/* IRQ0 through the 8259: count it, EOI to the PIC. */
__asm__(".text\n.globl migcount_pit_tick\nmigcount_pit_tick:\n"
    "\tpushq %rax\n\tlock incl migcount_ticks\n"
    "\tmovb $0x20, %al\n\toutb %al, $0x20\n"
    "\tpopq %rax\n\tiretq\n");

/* The timer's interrupt: count it, EOI, back (ring 0 to ring 0). */
__asm__(".text\n.globl migcount_tick\nmigcount_tick:\n"
    "\tpushq %rax\n\tlock incl migcount_ticks\n"
    "\tmovabsq $0xfee000b0, %rax\n\tmovl $0, (%rax)\n"
    "\tpopq %rax\n\tiretq\n");

/* Every exception: which one, then stop (ring 0, so slow: fine). */
#define STUB(n) \
	__asm__(".text\n.globl migcount_stub" #n "\nmigcount_stub" #n ":\n" \
	    "\tmovq %rsp, %rsi\n\tmovq $" #n ", %rdi\n" \
	    "\tandq $-16, %rsp\n\tcall migcount_fault\n")
STUB(0); STUB(1); STUB(2); STUB(3); STUB(4); STUB(5); STUB(6); STUB(7);
STUB(8); STUB(9); STUB(10); STUB(11); STUB(12); STUB(13); STUB(14);
STUB(15); STUB(16); STUB(17); STUB(18); STUB(19);
extern char migcount_stub0[], migcount_stub1[], migcount_stub2[],
    migcount_stub3[], migcount_stub4[], migcount_stub5[], migcount_stub6[],
    migcount_stub7[], migcount_stub8[], migcount_stub9[], migcount_stub10[],
    migcount_stub11[], migcount_stub12[], migcount_stub13[],
    migcount_stub14[], migcount_stub15[], migcount_stub16[],
    migcount_stub17[], migcount_stub18[], migcount_stub19[];

extern char migcount_sysexit[];

/* Into ring 3 by IRETQ (IOPL 3, IF clear). */
static int migcount_linux_gdt;

static void __attribute__((noreturn)) migcount_iret(void)
{
	if (migcount_linux_gdt)
		__asm__ volatile("pushq $0x2b\npushq %0\npushq $0x3002\n"
		    "pushq $0x33\npushq %1\niretq"
		    : : "r"(USTACK), "r"((uint64_t)migcount_user) : "memory");
	__asm__ volatile("pushq $0x33\npushq %0\npushq $0x3002\n"
	    "pushq $0x2b\npushq %1\niretq"
	    : : "r"(USTACK), "r"((uint64_t)migcount_user) : "memory");
	__builtin_unreachable();
}

void migcount_fault(uint64_t vec, const uint64_t *frame)
{
	/* No SYSEXIT (the software CPU has none): IRETQ instead, which
	 * that KVM would not have taken well (see the top). */
	if (vec == 6 && frame[0] == (uint64_t)migcount_sysexit)
		migcount_iret();
	/* frame: [error code,] RIP, CS, RFLAGS, RSP, SS */
	report_printf("not ok migcount: exception %u (%lx %lx %lx %lx)\n",
	    (unsigned)vec, (unsigned long)frame[0], (unsigned long)frame[1],
	    (unsigned long)frame[2], (unsigned long)frame[3]);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static uint64_t seg_desc(uint32_t access, uint32_t flags)
{
	return 0xffffull | (uint64_t)access << 40 | 0xfull << 48 |
	    (uint64_t)flags << 52;
}

static void migcount_tables(void)
{
	char *stubs[20] = { migcount_stub0, migcount_stub1, migcount_stub2,
	    migcount_stub3, migcount_stub4, migcount_stub5, migcount_stub6,
	    migcount_stub7, migcount_stub8, migcount_stub9, migcount_stub10,
	    migcount_stub11, migcount_stub12, migcount_stub13,
	    migcount_stub14, migcount_stub15, migcount_stub16,
	    migcount_stub17, migcount_stub18, migcount_stub19 };
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) d;
	uint64_t t = (uint64_t)&tss;

	/* SYSEXIT's layout: SYSENTER_CS = 0x08, then +16 / +24 (32-bit
	 * user code, data), +32 / +40 (64-bit user code, data). */
	gdt[1] = seg_desc(0x9a, 0xa);		/* 0x08 code64, ring 0 */
	gdt[2] = seg_desc(0x92, 0xc);		/* 0x10 data */
	gdt[3] = seg_desc(0xfa, 0xc);		/* 0x1b code32, ring 3 */
	gdt[4] = seg_desc(0xf2, 0xc);		/* 0x23 data */
	gdt[5] = seg_desc(0xfa, 0xa);		/* 0x2b code64, ring 3 */
	gdt[6] = seg_desc(0xf2, 0xc);		/* 0x33 data */
	gdt[7] = (sizeof(tss) - 1) | (t & 0xffffff) << 16 | 0x89ull << 40 |
	    (t >> 24 & 0xff) << 56;		/* 0x38 TSS */
	gdt[8] = t >> 32;
	tss.rsp[0] = (uint64_t)(kstack + sizeof(kstack));
	tss.iomap = offsetof(struct tss64, bitmap);
	tss.bitmap[sizeof(tss.bitmap) - 1] = 0xff;
	for (int v = 0; v < 20; v++) {
		uint64_t h = (uint64_t)stubs[v];

		idt[2 * v] = (h & 0xffff) | 0x08ull << 16 | 0x8eull << 40 |
		    (h >> 16 & 0xffff) << 48;
		idt[2 * v + 1] = h >> 32;
	}
	idt[2 * TICK_VEC] = ((uint64_t)migcount_tick & 0xffff) |
	    0x08ull << 16 | 0x8eull << 40 |
	    ((uint64_t)migcount_tick >> 16 & 0xffff) << 48;
	idt[2 * PIT_VEC] = ((uint64_t)migcount_pit_tick & 0xffff) |
	    0x08ull << 16 | 0x8eull << 40 |
	    ((uint64_t)migcount_pit_tick >> 16 & 0xffff) << 48;
	d.limit = sizeof(gdt) - 1;
	d.base = (uint64_t)gdt;
	__asm__ volatile("lgdt %0" : : "m"(d));
	d.limit = sizeof(idt) - 1;
	d.base = (uint64_t)idt;
	__asm__ volatile("lidt %0" : : "m"(d));
	__asm__ volatile("pushq $0x08\nleaq 1f(%%rip), %%rax\npushq %%rax\n"
	    "lretq\n1:\nmovw $0x10, %%ax\nmovw %%ax, %%ds\n"
	    "movw %%ax, %%es\nmovw %%ax, %%ss\nmovw $0x38, %%ax\nltr %%ax"
	    : : : "rax", "memory");
}

/* The first GiB identity-mapped, 2 MiB pages, user-accessible. */
static void migcount_paging(void)
{
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = i << 21 | 0x87;		/* P, RW, US, 2 MiB */
	pdpt[0] = (uint64_t)pd | 7;
	/* The local APIC's page, uncached, supervisor only. */
	pd_apic[0x1f7] = 0xfee00000ull | 0x9b;
	pdpt[3] = (uint64_t)pd_apic | 3;
	pml4[0] = (uint64_t)pdpt | 7;
	__asm__ volatile("movq %0, %%cr3" : : "r"(pml4) : "memory");
}

/*
 * Ring 3 writes the UART without reading its status: that KVM faults a
 * ring-3 IN whatever IOPL and the I/O bitmap say, while OUT goes
 * through (and termvisor's 16550 takes every byte written).
 */
static void user_puts(const char *s)
{
	while (*s)
		outb(0x3f8, (uint8_t)*s++);
}

static void user_putu(uint32_t v)
{
	char b[12];
	int k = sizeof(b) - 1;

	b[k] = 0;
	do
		b[--k] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	user_puts(b + k);
}

static void user_puthex(uint32_t v)
{
	char b[9];

	for (int k = 7; k >= 0; k--, v >>= 4)
		b[k] = "0123456789abcdef"[v & 15];
	b[8] = 0;
	user_puts(b);
}

static int migcount_has(const char *s, const char *word)
{
	size_t n = strlen(word);

	for (; s != NULL && *s; s++)
		if (memcmp(s, word, n) == 0)
			return 1;
	return 0;
}

static void apic_write(unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(0xfee00000ull + off) = v;
}

/*
 * Ring 0: count timer ticks at 100 Hz: the local APIC's (1 GHz / 16 /
 * 625000, as KVM's and the software LAPIC's timers both run), or the
 * PIT's through the 8259 (1193182 Hz / 11932).
 */
static void __attribute__((noreturn)) migcount_timer(int pit)
{
	uint32_t seen = 0;

	apic_write(0xf0, 0x1ff);		/* enabled */
	if (pit) {
		/* The 8259 pair at vectors 0x20 and 0x28, only IRQ0 open,
		 * reaching the CPU through LINT0 (ExtINT). */
		outb(0x20, 0x11); outb(0x21, PIT_VEC); outb(0x21, 0x04);
		outb(0x21, 0x01);
		outb(0xa0, 0x11); outb(0xa1, PIT_VEC + 8); outb(0xa1, 0x02);
		outb(0xa1, 0x01);
		outb(0x21, 0xfe);
		outb(0xa1, 0xff);
		apic_write(0x350, 0x700);
		outb(0x43, 0x34);		/* ch0, word, mode 2 */
		outb(0x40, 11932 & 0xff);
		outb(0x40, 11932 >> 8);
	} else {
		apic_write(0x3e0, 0x3);		/* divide by 16 */
		apic_write(0x320, 1u << 17 | TICK_VEC);	/* periodic */
		apic_write(0x380, 625000);
	}
	for (;;) {
		__asm__ volatile("sti; hlt; cli" : : : "memory");
		while (seen != migcount_ticks) {
			seen++;
			user_puts("count ");
			user_putu(seen);
			user_puts("\n");
		}
	}
}

void bzimage64_main(void *boot_params)
{
	const uint8_t *bp = boot_params;
	uint32_t cmd;

	report_init();
	report_printf("termvisor test guest: migcount\n");
	migcount_tables();
	migcount_paging();
	memcpy(&cmd, bp + 0x228, 4);
	if (migcount_has((const char *)(uint64_t)cmd, "timer"))
		migcount_timer(0);
	if (migcount_has((const char *)(uint64_t)cmd, "pit"))
		migcount_timer(1);
	if (migcount_has((const char *)(uint64_t)cmd, "linuxgdt")) {
		/* Linux's user segments: 0x2b data, 0x33 64-bit code. */
		uint64_t t = gdt[5];

		gdt[5] = gdt[6];
		gdt[6] = t;
		migcount_linux_gdt = 1;
	}
	if (migcount_has((const char *)(uint64_t)cmd, "syscall")) {
		/* EFER.SCE; STAR: kernel CS 0x08, SYSRET base 0x1b (CS
		 * 0x2b, SS 0x23); LSTAR the entry; SFMASK clears IF. */
		__asm__ volatile("movl $0xc0000080, %%ecx\nrdmsr\n"
		    "orl $1, %%eax\nwrmsr\n"
		    "movl $0xc0000081, %%ecx\nxorl %%eax, %%eax\n"
		    "movl %1, %%edx\nwrmsr\n"
		    "movl $0xc0000082, %%ecx\nmovq %0, %%rax\n"
		    "movq %%rax, %%rdx\nshrq $32, %%rdx\nwrmsr\n"
		    "movl $0xc0000084, %%ecx\nmovl $0x200, %%eax\n"
		    "xorl %%edx, %%edx\nwrmsr"
		    : : "r"((uint64_t)migcount_syscall_entry),
		    "r"(migcount_linux_gdt ? 0x00230008u : 0x001b0008u)
		    : "rax", "rcx", "rdx", "memory");
		migcount_sc = 1;
	}
	if (migcount_has((const char *)(uint64_t)cmd, "iret"))
		migcount_iret();
	/* SYSENTER_CS, IOPL 3 with IF clear, then SYSEXIT (REX.W: to
	 * 64-bit ring 3 at RDX with RSP = RCX). */
	__asm__ volatile("movl $0x174, %%ecx\nmovl $0x08, %%eax\n"
	    "xorl %%edx, %%edx\nwrmsr\n"
	    "pushq $0x3002\npopfq\n"
	    "movq %0, %%rcx\nmovq %1, %%rdx\n"
	    ".globl migcount_sysexit\nmigcount_sysexit:\nsysexitq"
	    : : "r"(USTACK), "r"((uint64_t)migcount_user)
	    : "rax", "rcx", "rdx", "memory");
	for (;;)
		;
}

static uint32_t rng = 0x2545f491u;

static uint32_t migcount_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static uint32_t migcount_sum(const volatile uint32_t *b)
{
	uint32_t s = 0;

	for (uint32_t i = 0; i < BUF_WORDS; i++)
		s += b[i] ^ i;
	return s;
}

/* Ring 3 from here on. */
void migcount_user(void)
{
	volatile uint32_t *buf = (volatile uint32_t *)BUF;
	volatile uint32_t *scratch = (volatile uint32_t *)SCRATCH;
	uint32_t sum, n = 0;

	for (uint32_t i = 0; i < BUF_WORDS; i++)
		buf[i] = migcount_rand();
	sum = migcount_sum(buf);
	user_puts("migcount sum0 ");
	user_puthex(sum);
	user_puts("\n");
	for (;;) {
		uint32_t i = migcount_rand() % BUF_WORDS, v = migcount_rand();

		n++;
		/* The running checksum follows the write. */
		sum += (v ^ i) - (buf[i] ^ i);
		buf[i] = v;
		for (uint32_t k = 0; k < 1024; k++)
			scratch[(n % SCRATCH_PAGES) * 1024 + k] = n + k;
		if (migcount_sc) {
			__asm__ volatile("syscall" : : : "rcx", "r11",
			    "memory");
			__asm__ volatile("syscall" : : : "rcx", "r11",
			    "memory");
			user_puts("sys ");
			user_putu(migcount_syscalls);
			user_puts(" ");
		}
		user_puts("count ");
		user_putu(n);
		user_puts("\n");
		if (n % CHECK_EVERY == 0) {
			user_puts("check ");
			user_putu(n);
			user_puts(migcount_sum(buf) == sum ? " OK\n" : " BAD\n");
		}
		for (volatile uint32_t k = 0; k < SPIN; k++)
			;
	}
}
