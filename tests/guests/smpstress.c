/*
 * SMP stress guest (bzImage, 64-bit BSP): do guest stores and LOCKed
 * read-modify-writes stay exact when several vCPUs hit the same memory
 * at once?  The APs run real-mode code (smpstress_trampoline.S) from a
 * page below 1 MiB; the BSP runs the same operations from 64-bit code on
 * the same data.  Phase 1 keeps the data in the page holding the APs'
 * code, so every store there is a self-modifying-code store while the
 * other vCPUs execute from that page; phase 2 uses the next page.  Each
 * phase then checks every total exactly:
 *   lock inc, lock xadd (totals, and the values xadd handed out), an xchg
 *   spin lock and a lock cmpxchg spin lock each guarding a plain counter,
 *   and per-vCPU bytes, words and dwords side by side in one cache line
 *   (plain inc and mov: a neighbour's store must never undo ours).
 * Phase 3 (cross-modifying code): the BSP rewrites an instruction the APs
 * are executing, round after round, and each AP must run the new one.
 * Command line: cpus=N (required: the vCPUs to expect), iters=N, smc=N.
 */
#include "guest.h"
#include "smpstress.h"

#define LAPIC_BASE 0xfee00000u
#define TRAMPOLINE 0x30000u	/* above the command line, below the EBDA */

extern const uint8_t smpstress_rm[], smpstress_rm_end[], smpstress_smc_imm[];
void bzimage64_main(const uint8_t *bp);

static uint8_t *ss_page;

static volatile uint32_t *ss_lapic(unsigned reg)
{
	uintptr_t p = LAPIC_BASE + reg;

	__asm__("" : "+r"(p));
	return (volatile uint32_t *)p;
}

static void ss_ipi(uint32_t icr)
{
	*ss_lapic(0x310) = 0;
	*ss_lapic(0x300) = icr;
	for (unsigned i = 0; i < 100000 && (*ss_lapic(0x300) & (1u << 12)); i++)
		;
}

static volatile uint32_t *ss_ctl32(unsigned off)
{
	return (volatile uint32_t *)(ss_page + off);
}

/* Waits (bounded, about ms milliseconds) until *p reaches want. */
static uint32_t ss_wait(volatile uint32_t *p, uint32_t want, unsigned ms)
{
	for (unsigned i = 0; i < ms && *p < want; i++)
		devices_delay_us(1000);
	return *p;
}

/* The BSP's share of a phase: the AP loop's operations, from 64-bit
 * code, as slot 0. */
static void ss_run(uint8_t *d, uint32_t iters)
{
	volatile uint32_t *xsum = (volatile uint32_t *)(d + D_XSUM);

	for (uint32_t n = 1; n <= iters; n++) {
		uint32_t v = 1;
		uint8_t b;

		__asm__ volatile("lock incl %0" : "+m"(*(uint32_t *)(d + D_INC)));
		__asm__ volatile("lock xaddl %0, %1"
				 : "+r"(v), "+m"(*(uint32_t *)(d + D_XADD)));
		*xsum += v;
		do {
			b = 1;
			__asm__ volatile("xchgb %0, %1"
					 : "+q"(b), "+m"(*(uint8_t *)(d + D_LOCK1)) : : "memory");
			if (b)
				__asm__ volatile("pause");
		} while (b);
		(*(volatile uint32_t *)(d + D_CNT1))++;
		__asm__ volatile("movb $0, %0" : "=m"(*(uint8_t *)(d + D_LOCK1)) : : "memory");
		for (;;) {
			uint32_t old = 0;
			uint8_t ok;

			__asm__ volatile("lock cmpxchgl %3, %1; sete %2"
					 : "+a"(old), "+m"(*(uint32_t *)(d + D_LOCK2)), "=q"(ok)
					 : "r"(1u) : "memory");
			if (ok)
				break;
			__asm__ volatile("pause");
		}
		__asm__ volatile("addl $1, %0" : "+m"(*(uint32_t *)(d + D_CNT2)) : : "memory");
		{
			uint32_t z = 0;

			__asm__ volatile("xchgl %0, %1"
					 : "+r"(z), "+m"(*(uint32_t *)(d + D_LOCK2)) : : "memory");
		}
		__asm__ volatile("incb %0" : "+m"(*(uint8_t *)(d + D_BYTES)));
		__asm__ volatile("incw %0" : "+m"(*(uint16_t *)(d + D_WORDS)));
		__asm__ volatile("incl %0" : "+m"(*(uint32_t *)(d + D_DWORDS)));
		*(volatile uint8_t *)(d + D_LAST) = (uint8_t)n;
	}
}

/* Checks phase p's data d after nslots vCPUs ran iters loops each. */
static void ss_check(unsigned p, const uint8_t *d, unsigned nslots, uint32_t iters)
{
	static const char *const names[][2] = {
		{ "ss_smc_lock_inc", "ss_page_lock_inc" },
		{ "ss_smc_lock_xadd", "ss_page_lock_xadd" },
		{ "ss_smc_xadd_values", "ss_page_xadd_values" },
		{ "ss_smc_xchg_lock", "ss_page_xchg_lock" },
		{ "ss_smc_cmpxchg_lock", "ss_page_cmpxchg_lock" },
		{ "ss_smc_line_bytes", "ss_page_line_bytes" },
	};
	const unsigned k = p - 1;
	uint32_t total = nslots * iters, sum = 0, want_sum;
	unsigned bad = 0, first = 0;

#define D32(off) (*(const volatile uint32_t *)(d + (off)))
	report_check(D32(D_INC) == total, names[0][k], "lock inc total %u, want %u", D32(D_INC),
		     total);
	report_check(D32(D_XADD) == total, names[1][k], "lock xadd total %u, want %u",
		     D32(D_XADD), total);
	/* xadd hands out 0..total-1, each once: the sum (mod 2^32) tells. */
	for (unsigned s = 0; s < nslots; s++)
		sum += D32(D_XSUM + 4 * s);
	want_sum = (uint32_t)((uint64_t)total * (total - 1) / 2);
	report_check(sum == want_sum, names[2][k], "xadd results sum to 0x%x, want 0x%x", sum,
		     want_sum);
	report_check(D32(D_CNT1) == total && d[D_LOCK1] == 0, names[3][k],
		     "counter %u under the xchg lock, want %u (lock byte %u)", D32(D_CNT1), total,
		     d[D_LOCK1]);
	report_check(D32(D_CNT2) == total && D32(D_LOCK2) == 0, names[4][k],
		     "counter %u under the cmpxchg lock, want %u (lock %u)", D32(D_CNT2), total,
		     D32(D_LOCK2));
	for (unsigned s = 0; s < SS_SLOTS; s++) {
		uint32_t n = s < nslots ? iters : 0;
		int good = d[D_BYTES + s] == (uint8_t)n && d[D_LAST + s] == (uint8_t)n &&
			   *(const volatile uint16_t *)(d + D_WORDS + 2 * s) == (uint16_t)n &&
			   D32(D_DWORDS + 4 * s) == n;

		if (!good && !bad++)
			first = s;
	}
	report_check(!bad, names[5][k],
		     "%u slots wrong, first %u: byte %u last %u word %u dword %u, want %u", bad,
		     first, d[D_BYTES + first], d[D_LAST + first],
		     *(const volatile uint16_t *)(d + D_WORDS + 2 * first),
		     D32(D_DWORDS + 4 * first), first < nslots ? iters : 0);
#undef D32
}

/*
 * Phase 3, cross-modifying code: each round the BSP stores a new
 * immediate into the movl the APs spin on (odd rounds with mov, even
 * ones with xchg) and waits until each AP has echoed it.  A translation
 * decoded from the old bytes that stays valid after the store (the
 * store's invalidation raced with a decode) never sees the new value:
 * the round times out.  Such a round is rewritten
 * with the same value (a second store invalidates again) and counted.
 */
static void ss_smc(uint32_t naps, uint32_t rounds)
{
	volatile uint32_t *imm = (volatile uint32_t *)(ss_page + (smpstress_smc_imm - smpstress_rm));
	volatile uint32_t *seen = (volatile uint32_t *)(ss_page + 0x1000 + D_SEEN);
	volatile uint32_t *beat = (volatile uint32_t *)(ss_page + 0x1000 + D_BEAT);
	uint32_t stale = 0, first = 0, lost = 0, done;

	*(volatile uint8_t *)(ss_page + CTL_GO) = SS_PHASES + 1;
	for (uint32_t r = 1; r <= rounds && lost < 3; r++) {
		unsigned tries = 0;

		/* Odd rounds: a plain store; even ones: xchg, a locked
		 * read-modify-write (another path in a software CPU). */
		if (r & 1) {
			*imm = r;
		} else {
			uint32_t v = r;

			__asm__ volatile("xchgl %0, %1" : "+r"(v), "+m"(*imm) : : "memory");
		}
		for (unsigned s = 1; s <= naps; s++) {
			/* Spin first (cheap), then about 200 ms by the PIT. */
			uint32_t beat0;

			for (unsigned k = 0; k < 2000000 && seen[s] != r; k++)
				__asm__ volatile("pause");
			/* Stale only if the AP keeps looping on the old value
			 * (its beat goes on): a starved thread is just slow. */
			beat0 = beat[s];
			while (seen[s] != r && (tries < 50 || beat[s] - beat0 < 100000) &&
			       tries < 10000) {
				devices_delay_us(1000);
				tries++;
			}
			if (seen[s] != r) {
				report_printf("smc round %u: AP slot %u still runs the old code "
					      "(sees %u, %u loops since)\n", r, s, seen[s], beat[s] - beat0);
				if (!stale++)
					first = r;
				*imm = r;	/* again: invalidate once more */
				for (unsigned k = 0; k < 200 && seen[s] != r; k++)
					devices_delay_us(1000);
				if (seen[s] != r)
					lost++;
			}
		}
	}
	*imm = SS_SMC_END;
	done = ss_wait(ss_ctl32(CTL_DONE + 4 * (SS_PHASES + 1)), naps, 10000);
	report_printf("smc_rounds %u stale %u\n", rounds, stale);
	report_check(done == naps && !lost, "ss_xmc_done", "%u of %u APs left the code loop, "
		     "%u never saw a rewrite", done, naps, lost);
	report_check(!stale, "ss_xmc_fresh",
		     "%u of %u rounds ran stale code after the store (first round %u)", stale,
		     rounds, first);
}

void bzimage64_main(const uint8_t *bp)
{
	uint64_t cptr = *(const uint32_t *)(bp + 0x228) | (uint64_t)*(const uint32_t *)(bp + 0xc8)
			<< 32;
	const char *cmdline = cptr ? phys(cptr) : "";
	uintptr_t page = TRAMPOLINE;
	uint32_t ncpus = 1, iters = 20000, rounds = 2000, started, seen = 0;
	unsigned bsp;

	report_init();
	report_printf("termvisor test guest: smpstress\n");
	report_cmdline(cmdline);
	cmdline_uint(cmdline, "cpus", &ncpus);
	cmdline_uint(cmdline, "iters", &iters);
	cmdline_uint(cmdline, "smc", &rounds);
	if (!report_check(ncpus >= 1 && ncpus <= SS_SLOTS && iters >= 1, "ss_args",
			  "cpus=%u (1..%u) iters=%u", ncpus, SS_SLOTS, iters))
		report_finish();
	__asm__("" : "+r"(page));
	ss_page = (uint8_t *)page;
	memset(ss_page, 0, 0x2000);
	memcpy(ss_page, smpstress_rm, (size_t)(smpstress_rm_end - smpstress_rm));
	*ss_ctl32(CTL_ITERS) = iters;
	*(volatile uint16_t *)(ss_page + CTL_SLOT) = 1;	/* slot 0 is the BSP's */
	bsp = *ss_lapic(0x20) >> 24;
	*ss_lapic(0xf0) |= 0x100;
	ss_ipi(0x000c4500);
	devices_delay_us(10000);
	for (unsigned i = 0; i < 2; i++) {
		ss_ipi(0x000c4600 | TRAMPOLINE >> 12);
		devices_delay_us(200);
	}
	started = ss_wait(ss_ctl32(CTL_STARTED), ncpus - 1, 5000);
	devices_delay_us(1000);		/* a late extra AP would show too */
	started = *ss_ctl32(CTL_STARTED);
	for (unsigned i = 0; i < 256; i++)
		if (ss_page[CTL_IDS + i] && i != bsp)
			seen++;
	report_printf("smp_bsp %u\nsmp_started %u\niters %u\n", bsp, started, iters);
	report_check(started == ncpus - 1 && seen == ncpus - 1, "ss_aps_started",
		     "%u APs counted in, %u distinct APIC IDs, want %u", started, seen, ncpus - 1);
	for (unsigned p = 1; p <= SS_PHASES; p++) {
		uint8_t *d = ss_page + (p == 1 ? DATA_OFF : 0x1000);
		uint32_t done;

		*(volatile uint8_t *)(ss_page + CTL_GO) = (uint8_t)p;
		ss_run(d, iters);
		/* Generous: a loaded host runs the APs' threads rarely. */
		done = ss_wait(ss_ctl32(CTL_DONE + 4 * p), started, 100000);
		report_check(done == started, p == 1 ? "ss_smc_done" : "ss_page_done",
			     "%u of %u APs finished phase %u", done, started, p);
		ss_check(p, d, 1 + done, iters);
	}
	ss_smc(started, rounds);
	report_finish();
}
