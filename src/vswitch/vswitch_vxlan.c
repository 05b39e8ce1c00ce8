/*
 * VXLAN (RFC 7348) between switches on two hosts: each port group is
 * one VXLAN segment (VNI = its VLAN id, or a hash of its name above
 * 4095 when it has none), frames go as UDP to every peer (ingress
 * replication: no multicast underlay needed), and a peer's MACs are
 * learned on that peer's port.
 */
#include "vswitch/vswitch.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* Flags byte: I (the VNI is valid); everything else reserved, zero. */
#define VSW_VXLAN_I	0x08

void
vsw_vxlan_hdr(uint8_t out[8], uint32_t vni)
{
	memset(out, 0, 8);
	out[0] = VSW_VXLAN_I;
	out[4] = (uint8_t)(vni >> 16);
	out[5] = (uint8_t)(vni >> 8);
	out[6] = (uint8_t)vni;
}

long
vsw_vxlan_parse(const uint8_t *buf, size_t len)
{
	/* RFC 7348 5: receivers ignore the reserved fields, but the I
	 * flag must be set. */
	if (len < 8 + 14 || !(buf[0] & VSW_VXLAN_I))
		return -EINVAL;
	return (long)((uint32_t)buf[4] << 16 | (uint32_t)buf[5] << 8 | buf[6]);
}
