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
vsw_udp_echo "$ns" 10.77.0.1 7777
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
ck(hmac is not None, "the host answered ARP through the uplink")
ck(arp(o, "10.77.0.3", host) == [], "not from another port group")
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

# The uplink on a trunk: Linux's own 802.1Q interface on the TAP answers
# a NIC of the VLAN 20 port group (the tags are checked by the kernel,
# not by us).
"$tv" switch portgroup add vswitch0 dmz --vlan 20 || bad "portgroup dmz"
"$tv" switch portgroup add vswitch0 trk --trunk 20 || bad "portgroup trk"
"$tv" switch set vswitch0 uplink.portgroup=trk || bad "uplink on the trunk"
# Without the kernel's VLANs: tshark decodes the tag we put on the wire,
# and a raw socket on the host side sends a tagged frame in.
if command -v tshark >/dev/null; then
	ip netns exec "$ns" timeout 15 tshark -i tvup0 -c 1 -f "vlan and ether src 52:54:00:00:00:25" \
		-T fields -e vlan.id -e eth.type >"$tmp/tagged" 2>/dev/null &
	tpid=$!
fi
python3 - "$ns" "$tmp/tagged" <<'EOF' || fails=$((fails + 1))
from vswitch_nic import *
import os, subprocess, sys, time
ck = Check()
d = Nic("dmz", 0x25)
# Until tshark (slow to start on a busy host) has seen one.
watching = subprocess.run(["pgrep", "-f", "tshark -i tvup0"],
                          capture_output=True).returncode == 0
end = time.time() + (12 if watching else 0)
while True:
    d.send(BCAST, b"to the trunk")
    time.sleep(0.3)
    if time.time() > end or (os.path.exists(sys.argv[2]) and
                             os.path.getsize(sys.argv[2]) > 0):
        break
# In: an 802.1Q frame for VLAN 20 written on the host's side of the TAP.
code = ("import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW);"
        "s.bind(('tvup0', 0)); s.send(bytes.fromhex('%s'))" % (
            (BCAST + mac(0x99) + b"\x81\x00\x00\x14\x08\x00" +
             b"from the host" + b"\0" * 33).hex()))
subprocess.run(["ip", "netns", "exec", sys.argv[1], "python3", "-c", code])
got = d.drain(1.0)
ck(any(f[12:14] == b"\x08\x00" and f[14:27] == b"from the host" for f in got),
   "a VLAN 20 frame from the trunk uplink reaches dmz untagged")
ck.exit()
EOF
if [ -n "${tpid:-}" ]; then
	wait "$tpid"
	read -r vid etype <"$tmp/tagged"
	[ "$vid" = 20 ] && ok "tshark on the TAP: the dmz frame went out tagged 20 ($etype)" ||
		bad "tshark on the TAP saw: $(cat "$tmp/tagged")"
fi
if ! ip -n "$ns" link add link tvup0 name tvup0.20 type vlan id 20 2>/dev/null; then
	echo "skip: this kernel has no 802.1Q VLAN interfaces (8021q)"
else
ip -n "$ns" addr add 10.20.0.1/24 dev tvup0.20 &&
	ip -n "$ns" link set tvup0.20 up || bad "a VLAN interface on the TAP"
python3 - <<'EOF' || fails=$((fails + 1))
from vswitch_nic import *
import socket, struct
ck = Check()
d, l = Nic("dmz", 0x23), Nic("lan", 0x24)

r = arp(d, "10.20.0.2", "10.20.0.1")
ck(len(r) == 1 and r[0][28:32] == socket.inet_aton("10.20.0.1"),
   "the host's VLAN 20 interface answered the dmz NIC through the trunk")
ck(arp(l, "10.20.0.3", "10.20.0.1") == [],
   "lan (no VLAN) is not carried on the trunk")
ck.exit()
EOF
fi
"$tv" switch stop || bad "switch stop"

# Without root: a TAP made for the user (ip tuntap add ... user U), which
# the switch may open but not bring up.
if ! command -v setpriv >/dev/null || ! id nobody >/dev/null 2>&1 ||
	! setpriv --reuid=nobody --regid=nogroup --clear-groups test -w /dev/net/tun; then
	echo "skip: no unprivileged run (no setpriv or nobody, or /dev/net/tun is not 0666)"
else
	u=$(id -u nobody) g=$(id -g nobody)
	ip -n "$ns" tuntap add tvuser0 mode tap user "$u" || bad "tuntap add"
	ip -n "$ns" link set tvuser0 up
	ud=$tmp/user
	mkdir -p "$ud/run" "$ud/ds" && chmod 755 "$tmp" && chown -R "$u:$g" "$ud" && chmod 700 "$ud/run"
	asuser() {
		ip netns exec "$ns" setpriv --reuid="$u" --regid="$g" --clear-groups \
			env XDG_RUNTIME_DIR="$ud/run" TERMVISOR_DATASTORE="$ud/ds" "$tv" "$@"
	}
	asuser switch portgroup add vswitch0 lan &&
		asuser switch set vswitch0 uplink=tap:tvuser0 uplink.portgroup=lan ||
		bad "configuration as nobody"
	if asuser switch run --daemon; then
		asuser switch show | grep -q "tap:tvuser0" &&
			ok "a switch without root runs its uplink on a TAP made for it" ||
			bad "no uplink in the unprivileged switch: $(asuser switch show)"
		asuser switch stop || bad "stop the unprivileged switch"
	else
		bad "the unprivileged switch did not start: $(cat "$ud/run/termvisor/vswitch0.vswitch.log")"
	fi
fi
finish
