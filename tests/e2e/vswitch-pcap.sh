#!/bin/bash
# A host NIC as the uplink through libpcap (uplink = "pcap:IF"): the
# switch runs in a network namespace with one end of a veth pair as its
# uplink; the other end, in a second namespace, is "the physical
# network" with an address and a UDP echo process.  A synthetic NIC
# resolves it with ARP and talks UDP to it, with checksums complete on
# the wire (the switch finishes them: a wire takes no offloads).
set -u
. "$(dirname "$0")/vswitch-lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, packet capture)"; exit 77; }
na=tv-pca-$$ nb=tv-pcb-$$
ip netns add "$na" && ip netns add "$nb" || { echo "cannot make network namespaces"; exit 77; }
vsw_cleanup_hooks+=("ip netns del $na 2>/dev/null; ip netns del $nb 2>/dev/null")
# Made inside the namespaces: no name is ever taken in the host's.
ip -n "$na" link add tvpa type veth peer name tvpb netns "$nb" ||
	{ echo "cannot make a veth pair"; exit 77; }
ip -n "$na" link set tvpa up
ip -n "$nb" addr add 10.77.0.1/24 dev tvpb
ip -n "$nb" link set tvpb up
ip -n "$nb" link set lo up

"$tv" switch portgroup add vswitch0 lan || bad "portgroup lan"
"$tv" switch portgroup add vswitch0 other --vlan 5 || bad "portgroup other"
"$tv" switch set vswitch0 uplink=pcap:tvpa uplink.portgroup=lan || bad "set uplink"
ip netns exec "$na" "$tv" switch run --daemon || bad "switch run in $na"
vsw_udp_echo "$nb" 10.77.0.1 7777
sleep 0.5

python3 - <<'EOF' || fails=$((fails + 1))
from vswitch_nic import *
import socket, struct
ck = Check()
a = Nic("lan", 0x21)
o = Nic("other", 0x22)
me, host = "10.77.0.2", "10.77.0.1"
r = arp(a, me, host)
hmac = r[0][6:12] if r else None
ck(hmac is not None, "the far end answered ARP through the uplink")
ck(arp(o, "10.77.0.3", host) == [], "not from another port group")
# Sent as a NIC with checksum offload would: the UDP checksum field
# holds only the pseudo-header sum and NEEDS_CSUM asks to finish it.
# The far end's kernel drops a bad checksum, so an answer proves the
# switch completed it for the wire.
pkt = bytearray(ipv4_udp(me, host, 5555, 7777, b"hello host"))
ph = socket.inet_aton(me) + socket.inet_aton(host) + struct.pack(
    ">BBH", 0, 17, len(pkt) - 20)
pkt[26:28] = struct.pack(">H", ~csum(ph) & 0xffff)
a.send(hmac, bytes(pkt), hdr=struct.pack("<BBHHHHH", 1, 0, 0, 0, 34, 6, 0))
got = [f for f in a.drain(1.0) if f[12:14] == b"\x08\x00" and f[23] == 17]
ck(len(got) == 1 and got[0][42:57] == b"echo:hello host",
   "a process on the wire answered over UDP")
ck.exit()
EOF
ip netns exec "$na" "$tv" switch show | grep -q "pcap:tvpa" && ok "show names the uplink" ||
	bad "show does not name the uplink"
"$tv" switch stop || bad "switch stop"
finish
