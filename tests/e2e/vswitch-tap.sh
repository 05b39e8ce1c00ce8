#!/bin/bash
# The TAP uplink, in a network namespace this test makes: the switch
# runs inside it with uplink tap:IF in port group lan; a synthetic NIC
# on lan resolves the host side's address with ARP (answered by the
# kernel) and talks UDP to a process listening in the namespace; the
# kernel's replies arrive with checksums the switch completed for a NIC
# that did not ask for checksum offload.  A NIC on another port group
# does not reach the host.
set -u
. "$(dirname "$0")/vswitch-lib.sh"
export tv
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, TAP)"; exit 77; }
[ -c /dev/net/tun ] || { echo "no /dev/net/tun"; exit 77; }
ns=tv-tap-$$
ip netns add "$ns" || { echo "cannot make a network namespace"; exit 77; }
vsw_cleanup_hooks+=("ip netns del $ns 2>/dev/null")
ip -n "$ns" link set lo up

"$tv" switch portgroup add vswitch0 lan || bad "portgroup lan"
"$tv" switch portgroup add vswitch0 other --vlan 5 || bad "portgroup other"
"$tv" switch set vswitch0 uplink=tap:tvup0 uplink.portgroup=lan || bad "set uplink"
ip netns exec "$ns" "$tv" switch run --daemon || bad "switch run in $ns"
ip -n "$ns" addr add 10.77.0.1/24 dev tvup0 || bad "address on the TAP"
ip -n "$ns" link show tvup0 | grep -q "UP" && ok "the switch brought tvup0 up" ||
	bad "tvup0 is not up"
ip netns exec "$ns" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.77.0.1", 7777))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b"echo:" + d, a)
' &
echo_pid=$!
vsw_cleanup_hooks+=("kill $echo_pid 2>/dev/null")
sleep 0.5

python3 - <<'EOF' || fails=$((fails + 1))
from vswitch_nic import *
import socket, struct
ck = Check()
a = Nic("lan", 0x21)
o = Nic("other", 0x22)
me, host = "10.77.0.2", "10.77.0.1"

def arp(nic, ip):
    body = struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, nic.mac,
                       socket.inet_aton(ip), b"\0" * 6,
                       socket.inet_aton(host))
    nic.send(BCAST, body + b"\0" * 18, etype=0x0806)
    for f in nic.drain(1.0):
        if f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02":
            return f[6:12]
    return None

hmac = arp(a, me)
ck(hmac is not None, "the host answered ARP through the uplink")
ck(arp(o, "10.77.0.3") is None, "not from another port group")
a.send(hmac, ipv4_udp(me, host, 5555, 7777, b"hello host"))
got = [f for f in a.drain(1.0) if f[12:14] == b"\x08\x00" and f[23] == 17]
ck(len(got) == 1 and got[0][42:57] == b"echo:hello host",
   "a process on the host answered over UDP")
if got:
    ip = got[0][14:34]
    udp = got[0][34:]
    ph = ip[12:20] + struct.pack(">BBH", 0, 17, len(udp))
    ck(csum(ip) == 0 and (udp[6:8] == b"\0\0" or csum(ph + udp) == 0),
       "its IP and UDP checksums are complete")
ck.exit()
EOF
ip netns exec "$ns" "$tv" switch show | grep -q "tap:tvup0" && ok "show names the uplink" ||
	bad "show does not name the uplink"
"$tv" switch stop || bad "switch stop"
finish
