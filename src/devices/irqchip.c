/*
 * The software interrupt controllers as one unit: the 8259 pair, the
 * 8254, the I/O APIC and one local APIC per vCPU, for accelerators
 * without an in-kernel irqchip.  First cut: the interface links and
 * reports "nothing pending" while the chips are being written.
 */
#include "devices/irqchip.h"

#include <errno.h>

#include "hv/vm.h"

int
irqchip_create(struct vm *vm)
{
	(void)vm;
	return 0;
}

int
irqchip_set_irq(struct vm *vm, unsigned gsi, int level)
{
	if (gsi >= 24)
		return -EINVAL;
	return 0;
}

int
irqchip_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	return 0;
}

bool
irqchip_pending(struct vcpu *vcpu)
{
	return false;
}

int
irqchip_ack(struct vcpu *vcpu)
{
	return -1;
}

bool
irqchip_take_nmi(struct vcpu *vcpu)
{
	return false;
}

bool
irqchip_take_init(struct vcpu *vcpu)
{
	return false;
}

bool
irqchip_take_sipi(struct vcpu *vcpu, uint8_t *vector)
{
	return false;
}

uint64_t
irqchip_apic_base(struct vcpu *vcpu)
{
	/* Power-on value: enabled at the default base, BSP flag on vCPU 0. */
	return GPA_LAPIC | (1u << 11) | (vcpu->id == 0 ? 1u << 8 : 0);
}

int
irqchip_set_apic_base(struct vcpu *vcpu, uint64_t value)
{
	return 0;
}

uint8_t
irqchip_get_tpr(struct vcpu *vcpu)
{
	return 0;
}

void
irqchip_set_tpr(struct vcpu *vcpu, uint8_t cr8)
{
}
