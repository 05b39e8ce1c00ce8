/*
 * The architectural state of one x86-64 vCPU, in a form both accelerators
 * share: KVM converts to and from its kvm_regs/kvm_sregs/kvm_fpu/MSRs, the
 * software CPU keeps (a superset of) it natively.  Snapshots, migration and
 * the KVM-assist path all go through this struct, which is why a guest saved
 * on one accelerator resumes on the other.  Never written to disk raw:
 * cpu_state_snapshot() describes it field by field.
 */
#ifndef TV_CPU_STATE_H
#define TV_CPU_STATE_H

#include <stdbool.h>
#include <stdint.h>

enum { R_RAX, R_RCX, R_RDX, R_RBX, R_RSP, R_RBP, R_RSI, R_RDI,
       R_R8, R_R9, R_R10, R_R11, R_R12, R_R13, R_R14, R_R15 };

/* Segment register indices, in the hardware's encoding order. */
enum { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_LDTR, SEG_TR,
       SEG_COUNT };

struct cpu_seg {
	uint64_t base;
	uint32_t limit;		/* byte-granular (already scaled by G) */
	uint16_t sel;
	uint8_t type;		/* 4-bit descriptor type */
	uint8_t s, dpl, present, avl, l, db, g;
	uint8_t unusable;
};

struct cpu_dtable {
	uint64_t base;
	uint16_t limit;
};

/* The MSRs both accelerators carry across (the list is fixed and named). */
struct cpu_msrs {
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t tsc, tsc_aux, pat, apic_base, misc_enable;
	uint64_t mtrr_def_type;
};

/* FXSAVE-layout x87/SSE state (512 bytes), plus XCR0. */
struct cpu_fpu {
	uint8_t fxsave[512] __attribute__((aligned(16)));
	uint64_t xcr0;
};

/*
 * Events between instructions.  "Injected" events were being delivered
 * when the state was taken (KVM stopped in the middle of delivering
 * them: an exception, an NMI or an external interrupt already acked
 * from its controller); whoever runs the state next delivers them
 * first, whatever IF and the shadow say, and they are in no
 * controller's request register any more.  A software INT n / INT3 /
 * INTO is never here: its RIP still points at the instruction, which
 * runs again.
 */
struct cpu_events {
	uint8_t exception_pending;	/* an exception is injected */
	uint8_t exception_nr, exception_has_error;
	uint32_t exception_error;
	uint8_t interrupt_shadow;	/* CPU_SHADOW_* */
	uint8_t nmi_pending, nmi_masked;
	uint8_t halted;			/* in HLT, waiting for an interrupt */
	uint8_t nmi_injected;
	uint8_t intr_injected, intr_nr;
};

/* interrupt_shadow: which instruction opened it (KVM's encoding).  MOV SS
 * is the safe reading of "some shadow": it is valid with IF clear. */
#define CPU_SHADOW_MOV_SS	1
#define CPU_SHADOW_STI		2

/* The version of the section cpu_state_snapshot() describes (fields
 * added later are tagged with the version that added them). */
#define CPU_STATE_VERSION	2

struct cpu_state {
	uint64_t gpr[16];
	uint64_t rip, rflags;
	struct cpu_seg seg[SEG_COUNT];
	struct cpu_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t efer;
	uint64_t dr[8];			/* dr0-3, dr6, dr7 at [6], [7] */
	struct cpu_msrs msr;
	struct cpu_fpu fpu;
	struct cpu_events ev;
};

/* Bits used across the tree. */
#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_AM (1ull << 18)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_PGE (1ull << 7)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)
#define RFLAGS_CF (1ull << 0)
#define RFLAGS_FIXED (1ull << 1)
#define RFLAGS_PF (1ull << 2)
#define RFLAGS_AF (1ull << 4)
#define RFLAGS_ZF (1ull << 6)
#define RFLAGS_SF (1ull << 7)
#define RFLAGS_TF (1ull << 8)
#define RFLAGS_IF (1ull << 9)
#define RFLAGS_DF (1ull << 10)
#define RFLAGS_OF (1ull << 11)
#define RFLAGS_IOPL (3ull << 12)
#define RFLAGS_NT (1ull << 14)
#define RFLAGS_RF (1ull << 16)
#define RFLAGS_VM (1ull << 17)
#define RFLAGS_AC (1ull << 18)
#define RFLAGS_ID (1ull << 21)

#define MSR_IA32_TSC		0x10
#define MSR_IA32_APIC_BASE	0x1b
#define MSR_IA32_SYSENTER_CS	0x174
#define MSR_IA32_SYSENTER_ESP	0x175
#define MSR_IA32_SYSENTER_EIP	0x176
#define MSR_IA32_MISC_ENABLE	0x1a0
#define MSR_IA32_PAT		0x277
#define MSR_MTRR_DEF_TYPE	0x2ff
#define MSR_EFER		0xc0000080
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SFMASK		0xc0000084
#define MSR_FS_BASE		0xc0000100
#define MSR_GS_BASE		0xc0000101
#define MSR_KERNEL_GS_BASE	0xc0000102
#define MSR_TSC_AUX		0xc0000103

struct snap;

/* The state a vCPU has after power-on / INIT (real mode at F000:FFF0). */
void cpu_state_reset(struct cpu_state *st);
/* The shadow of st as KVM's entry checks accept it (CPU_SHADOW_*): an
 * STI shadow only with IF set, none while halted, one kind at most. */
uint8_t cpu_state_shadow(const struct cpu_state *st);
/* Describe st to a snapshot stream (both directions); 0 or -errno. */
int cpu_state_snapshot(struct cpu_state *st, struct snap *s);

#endif
