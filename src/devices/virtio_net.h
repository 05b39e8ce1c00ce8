/*
 * virtio-net (virtio 1.x, device type 1): one PCI function per NIC of the
 * VM's configuration (--nic, nicN.* keys), plugged into the host's
 * switch through netdev_vsw.c.
 *
 * Offered: MAC (from the configuration), STATUS (link up while the
 * switch port is up and the administrator has not set it down), CSUM
 * and GUEST_CSUM (partial checksums travel in the switch protocol's
 * header; a guest that did not take GUEST_CSUM gets its checksums
 * completed here), HOST_TSO4 and HOST_TSO6 (the guest sends TCP frames
 * of up to 64 KiB; the switch segments them for every port that did
 * not ask for GSO), CTRL_VQ with MQ (up to VIRTIO_NET_MAX_PAIRS queue
 * pairs, by default min(vCPUs, 4)) and GUEST_ANNOUNCE.  Not offered:
 * GUEST_TSO (it would need 64 KiB receive buffers without MRG_RXBUF),
 * HOST_ECN and HOST_UFO (the switch does not segment those),
 * MRG_RXBUF (one frame fills one receive buffer; the driver's buffers
 * hold a full 1514-byte frame), CTRL_RX filtering (the switch does
 * that job).
 *
 * Queues: receiveq0, transmitq0, ... receiveqN-1, transmitqN-1, then
 * the control queue (at 2 without MQ negotiated, as the spec puts it).
 * Received frames are steered to a queue by a hash of their IP flow.
 *
 * Work per event is bounded (a guest flood or a switch flood cannot keep
 * a vCPU or the event thread for ever); hostile descriptors put the
 * device in NEEDS_RESET (virtio.c); frames that are too short, too long
 * or carry offloads nobody asked for are dropped and counted.
 */
#ifndef TV_VIRTIO_NET_H
#define TV_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIRTIO_ID_NET			1

#define VIRTIO_NET_F_CSUM		0
#define VIRTIO_NET_F_GUEST_CSUM		1
#define VIRTIO_NET_F_MAC		5
#define VIRTIO_NET_F_GUEST_TSO4		7
#define VIRTIO_NET_F_GUEST_TSO6		8
#define VIRTIO_NET_F_HOST_TSO4		11
#define VIRTIO_NET_F_HOST_TSO6		12
#define VIRTIO_NET_F_MRG_RXBUF		15
#define VIRTIO_NET_F_STATUS		16
#define VIRTIO_NET_F_CTRL_VQ		17
#define VIRTIO_NET_F_GUEST_ANNOUNCE	21
#define VIRTIO_NET_F_MQ			22

#define VIRTIO_NET_S_LINK_UP		1
#define VIRTIO_NET_S_ANNOUNCE		2

/* Device configuration (struct virtio_net_config). */
#define VIRTIO_NET_CFG_MAC		0x00
#define VIRTIO_NET_CFG_STATUS		0x06
#define VIRTIO_NET_CFG_MAX_PAIRS	0x08
#define VIRTIO_NET_CFG_MTU		0x0a
#define VIRTIO_NET_CFG_SIZE		0x0c

/* struct virtio_net_hdr_v1 (= struct vsw_net_hdr). */
#define VIRTIO_NET_HDR_LEN		12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM	1
#define VIRTIO_NET_HDR_F_DATA_VALID	2
#define VIRTIO_NET_HDR_GSO_TCPV4	1
#define VIRTIO_NET_HDR_GSO_TCPV6	4

/* Control queue: class, command, data; then one ack byte. */
#define VIRTIO_NET_OK			0
#define VIRTIO_NET_ERR			1
#define VIRTIO_NET_CTRL_ANNOUNCE	3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK	0
#define VIRTIO_NET_CTRL_MQ		4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET	0

#define VIRTIO_NET_MAX_PAIRS		8
#define VIRTIO_NET_DEFAULT_PAIRS	4	/* at most, and at most vCPUs */

struct vm;
struct device_ops;

/* The device class: one instance per configured NIC. */
extern const struct device_ops virtio_net_ops;

/*
 * After a move to another host (migration): make every NIC of vm
 * announce itself so the switches learn where it is now.  A guest that
 * negotiated GUEST_ANNOUNCE is asked (configuration change with
 * VIRTIO_NET_S_ANNOUNCE; it sends gratuitous ARPs and acks); for the
 * others the NIC sends a RARP with its MAC itself.  A NIC whose link is
 * down announces when it comes up.  Device lock held.
 */
void virtio_net_announce(struct vm *vm);

/*
 * Set NIC nic's (0-based, configuration order) administrative link state:
 * down keeps the link down whatever the switch does.  0, or -ENODEV if
 * the VM has no such NIC.  Device lock held.
 */
int virtio_net_set_link(struct vm *vm, int nic, bool up);

/* Is NIC nic's link up as the guest sees it?  -ENODEV, 0 or 1. */
int virtio_net_link(struct vm *vm, int nic);

struct vmcfg_nic;

/*
 * Parse a --nic argument, "[portgroup=]NAME[,mac=MAC][,queues=N]", into
 * *n (cleared first), each value checked as its nicN.* key of
 * termvisor.vmx(5) is.  0, or -EINVAL with a sentence in err.
 */
int virtio_net_parse_arg(const char *arg, struct vmcfg_nic *n, char *err,
    size_t errlen);
/* A random MAC in QEMU's locally administered 52:54:00 block. */
void virtio_net_random_mac(uint8_t mac[6]);

#endif
