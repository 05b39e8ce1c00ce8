/*
 * Model-specific registers: the ones Linux touches on the CPU model that
 * cpuid.c describes.  Anything else raises #GP, which Linux's *_safe
 * accessors expect for features we do not advertise.
 */
#include "hv/bt/bt_internal.h"

#include "devices/irqchip.h"
#include "hv/vm.h"
#include "util/evloop.h"

#define MSR_MTRRCAP		0xfe
#define MSR_MCG_CAP		0x179
#define MSR_MCG_STATUS		0x17a
#define MSR_BIOS_SIGN		0x8b
#define MSR_PLATFORM_ID		0x17
#define MSR_K7_HWCR		0xc0010015

int
bt_msr_read(struct bt_cpu *c, uint32_t idx, uint64_t *v)
{
	switch (idx) {
	case MSR_IA32_TSC: *v = bt_tsc(c); break;
	case MSR_IA32_APIC_BASE:
		*v = c->assist ? c->msr.apic_base : irqchip_apic_base(c->vcpu);
		break;
	case MSR_EFER: *v = c->efer; break;
	case MSR_STAR: *v = c->msr.star; break;
	case MSR_LSTAR: *v = c->msr.lstar; break;
	case MSR_CSTAR: *v = c->msr.cstar; break;
	case MSR_SFMASK: *v = c->msr.sfmask; break;
	case MSR_FS_BASE: *v = c->seg[SEG_FS].base; break;
	case MSR_GS_BASE: *v = c->seg[SEG_GS].base; break;
	case MSR_KERNEL_GS_BASE: *v = c->msr.kernel_gs_base; break;
	case MSR_TSC_AUX: *v = c->msr.tsc_aux; break;
	case MSR_IA32_SYSENTER_CS: *v = c->msr.sysenter_cs; break;
	case MSR_IA32_SYSENTER_ESP: *v = c->msr.sysenter_esp; break;
	case MSR_IA32_SYSENTER_EIP: *v = c->msr.sysenter_eip; break;
	case MSR_IA32_PAT: *v = c->msr.pat; break;
	case MSR_IA32_MISC_ENABLE: *v = c->msr.misc_enable; break;
	case MSR_MTRR_DEF_TYPE: *v = c->msr.mtrr_def_type; break;
	case MSR_MTRRCAP: case MSR_MCG_CAP: case MSR_MCG_STATUS:
	case MSR_BIOS_SIGN: case MSR_PLATFORM_ID: case MSR_K7_HWCR:
		*v = 0;
		break;
	default:
		return -1;
	}
	return 0;
}

static bool
msr_canonical(uint64_t v)
{
	return (uint64_t)((int64_t)(v << 16) >> 16) == v;
}

int
bt_msr_write(struct bt_cpu *c, uint32_t idx, uint64_t v)
{
	switch (idx) {
	case MSR_IA32_TSC:
		/* This vCPU's TSC only, as on hardware. */
		c->tsc_adjust = v - bt_tsc(c) + c->tsc_adjust;
		break;
	case MSR_IA32_APIC_BASE:
		if (!c->assist && irqchip_set_apic_base(c->vcpu, v) != 0)
			return -1;
		c->msr.apic_base = v;
		break;
	case MSR_EFER: {
		uint64_t ok = EFER_SCE | EFER_LME | EFER_NXE;

		if (v & ~(ok | EFER_LMA))
			return -1;
		if ((c->cr0 & CR0_PG) && ((v ^ c->efer) & EFER_LME))
			return -1;
		c->efer = (v & ok) | (c->efer & EFER_LMA);
		bt_tlb_flush(c, true);
		bt_cpu_update_mode(c);
		break;
	}
	case MSR_STAR: c->msr.star = v; break;
	case MSR_LSTAR:
	case MSR_CSTAR:
		if (!msr_canonical(v))
			return -1;
		*(idx == MSR_LSTAR ? &c->msr.lstar : &c->msr.cstar) = v;
		break;
	case MSR_SFMASK: c->msr.sfmask = (uint32_t)v; break;
	case MSR_FS_BASE:
	case MSR_GS_BASE:
		if (!msr_canonical(v))
			return -1;
		c->seg[idx == MSR_FS_BASE ? SEG_FS : SEG_GS].base = v;
		bt_cpu_update_mode(c);
		break;
	case MSR_KERNEL_GS_BASE:
		if (!msr_canonical(v))
			return -1;
		c->msr.kernel_gs_base = v;
		break;
	case MSR_TSC_AUX: c->msr.tsc_aux = (uint32_t)v; break;
	case MSR_IA32_SYSENTER_CS: c->msr.sysenter_cs = v; break;
	case MSR_IA32_SYSENTER_ESP: c->msr.sysenter_esp = v; break;
	case MSR_IA32_SYSENTER_EIP: c->msr.sysenter_eip = v; break;
	case MSR_IA32_PAT: c->msr.pat = v; break;
	case MSR_IA32_MISC_ENABLE: c->msr.misc_enable = v; break;
	case MSR_MTRR_DEF_TYPE: c->msr.mtrr_def_type = v; break;
	case MSR_MCG_STATUS: case MSR_BIOS_SIGN: case MSR_K7_HWCR:
		break;
	default:
		return -1;
	}
	return 0;
}
