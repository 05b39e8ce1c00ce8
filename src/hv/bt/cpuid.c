/*
 * CPUID: exactly what this CPU implements.  The model follows QEMU's
 * qemu64 (AuthenticAMD family 6), which Linux 6.1 knows well: AMD keeps
 * it off the Meltdown list (no PTI) and away from Intel-only MSR pokes.
 * XSAVE/AVX, PCID, FSGSBASE, SMEP/SMAP, TSC-deadline, x2APIC, RDRAND and
 * MTRR are hidden; the hypervisor bit is set; of leaf 7, only the fast
 * string bits (ERMS, FSRM) outside the baseline model.
 */
#include "hv/bt/bt_internal.h"

#include "hv/vm.h"
#include "hv/vmconfig.h"

static void
cpuid_str(uint32_t r[4], const char *s)
{
	memcpy(r, s, 16);
}

/* cpu = "baseline" (vmconfig.h): x86-64 as first defined (no SSE3,
 * SSSE3, CX16, LAHF), which every KVM host can give too, so that
 * snapshots move between the accelerators. */
static bool
bt_cpuid_baseline(const struct bt_cpu *c)
{
	return c->vm != NULL && c->vm->cfg != NULL &&
	    strcmp(c->vm->cfg->cpu, "baseline") == 0;
}

void
bt_cpuid(struct bt_cpu *c, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	/* FPU PSE TSC MSR PAE CX8 APIC PGE CMOV PAT PSE36 CLFSH MMX FXSR
	 * SSE SSE2 */
	const uint32_t edx1 = 1u << 0 | 1u << 3 | 1u << 4 | 1u << 5 |
	    1u << 6 | 1u << 8 | 1u << 9 | 1u << 13 | 1u << 15 | 1u << 16 |
	    1u << 17 | 1u << 19 | 1u << 23 | 1u << 24 | 1u << 25 | 1u << 26;
	int ncpu = c->vm ? c->vm->nvcpus : 1, id = c->vcpu ? c->vcpu->id : 0;

	r[0] = r[1] = r[2] = r[3] = 0;
	switch (leaf) {
	case 0:
		r[0] = 7;
		memcpy(&r[1], "Auth", 4);
		memcpy(&r[3], "enti", 4);
		memcpy(&r[2], "cAMD", 4);
		break;
	case 1:
		r[0] = 0x663;
		r[1] = 8u << 8 | (uint32_t)ncpu << 16 | (uint32_t)id << 24;
		/* SSE3 SSSE3 CX16 hypervisor (SSSE3: the SIMD library runs
		 * all of it, 0F 38 and 0F 3A, in MMX and XMM forms) */
		r[2] = 1u << 0 | 1u << 9 | 1u << 13 | 1u << 31;
		if (bt_cpuid_baseline(c))
			r[2] = 1u << 31;
		r[3] = edx1 | (ncpu > 1 ? 1u << 28 : 0);
		break;
	case 7:
		/* ERMS and FSRM: Linux then copies to and from user space,
		 * clears pages and runs memcpy/memset with REP MOVSB/STOSB,
		 * which exec_str.c runs a page at a time on the host, where
		 * its unrolled MOV loops cost a dispatch per 8 bytes.  Like
		 * SSSE3 and CX16 they are left out of "baseline": a snapshot
		 * of this model moves to KVM only on a host with both
		 * (vmstate.c checks). */
		if (sub == 0 && !bt_cpuid_baseline(c)) {
			r[1] = 1u << 9;		/* ERMS */
			r[3] = 1u << 4;		/* FSRM */
		}
		break;
	case 0x40000000:
		r[0] = 0x40000000;
		memcpy(&r[1], "Term", 4);
		memcpy(&r[2], "viso", 4);
		memcpy(&r[3], "r BT", 4);
		break;
	case 0x80000000:
		r[0] = 0x80000008;
		memcpy(&r[1], "Auth", 4);
		memcpy(&r[3], "enti", 4);
		memcpy(&r[2], "cAMD", 4);
		break;
	case 0x80000001:
		r[0] = 0x663;
		r[2] = bt_cpuid_baseline(c) ? 0 : 1u << 0;	/* LAHF_LM */
		r[3] = (edx1 & 0x0183f3ff) | 1u << 11 | 1u << 20 | 1u << 29;
		break;
	case 0x80000002: cpuid_str(r, "termvisor softwa"); break;
	case 0x80000003: cpuid_str(r, "re x86-64 CPU\0\0\0"); break;
	case 0x80000004: break;
	case 0x80000005:
		r[2] = 64u << 24 | 2u << 16 | 1u << 8 | 64;	/* L1d */
		r[3] = 64u << 24 | 2u << 16 | 1u << 8 | 64;	/* L1i */
		break;
	case 0x80000006:
		r[2] = 512u << 16 | 0x8u << 12 | 1u << 8 | 64;	/* L2 */
		break;
	case 0x80000007:
		r[3] = 1u << 8;		/* invariant TSC */
		break;
	case 0x80000008:
		r[0] = 40 | 48 << 8;
		r[2] = (uint32_t)(ncpu - 1);
		break;
	default:
		break;
	}
}
