#!/bin/bash
# A distributed switch: two switches in two network namespaces joined by
# a veth pair, each with the other as its VXLAN peer.  NICs on the same
# port group on both sides reach each other (learned per peer), port
# groups stay apart across the tunnel, and tshark on the wire sees
# RFC 7348 VXLAN with the group's VNI.  Then Linux's own VXLAN device
# stands in for the second switch: a NIC on VLAN 10 resolves the
# kernel's address over VNI 10.
set -u
. "$(dirname "$0")/vswitch-lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)"; exit 77; }
na=tv-vxa-$$ nb=tv-vxb-$$ va=tvxa$$ vb=tvxb$$
ip netns add "$na" && ip netns add "$nb" || { echo "cannot make network namespaces"; exit 77; }
vsw_cleanup_hooks+=("ip netns del $na 2>/dev/null; ip netns del $nb 2>/dev/null")
ip link add "$va" type veth peer name "$vb" || { echo "cannot make a veth pair"; exit 77; }
ip link set "$va" netns "$na"
ip link set "$vb" netns "$nb"
ip -n "$na" addr add 10.88.0.1/24 dev "$va"
ip -n "$nb" addr add 10.88.0.2/24 dev "$vb"
for n in "$na" "$nb"; do ip -n "$n" link set lo up; done
ip -n "$na" link set "$va" up
ip -n "$nb" link set "$vb" up

# side A B: its own runtime directory and datastore
side() {
	export XDG_RUNTIME_DIR="$tmp/run$1" TERMVISOR_DATASTORE="$tmp/ds$1"
	mkdir -p -m 700 "$XDG_RUNTIME_DIR"
}
for s in A B; do
	side $s
	"$tv" switch portgroup add vswitch0 lan || bad "lan on $s"
	"$tv" switch portgroup add vswitch0 dmz --vlan 20 || bad "dmz on $s"
	"$tv" switch portgroup add vswitch0 v10 --vlan 10 || bad "v10 on $s"
done
side A; "$tv" switch set vswitch0 vxlan.peers=10.88.0.2 vxlan.local=10.88.0.1 || bad "peers A"
ip netns exec "$na" "$tv" switch run --daemon || bad "switch A"
side B; "$tv" switch set vswitch0 vxlan.peers=10.88.0.1 || bad "peers B"
ip netns exec "$nb" "$tv" switch run --daemon || bad "switch B"
command -v tshark >/dev/null && {
	ip netns exec "$nb" timeout 20 tshark -i "$vb" -c 1 -f "udp port 4789" \
		-T fields -e vxlan.vni -e eth.src >"$tmp/wire" 2>/dev/null &
	sleep 2
}

python3 - "$tmp" <<'EOF' || fails=$((fails + 1))
from vswitch_nic import *
import os, sys, time
tmp = sys.argv[1]
ck = Check()
def on(side):
    os.environ["XDG_RUNTIME_DIR"] = tmp + "/run" + side
a = {}
on("A"); a1, ad = Nic("lan", 0x31), Nic("dmz", 0x33)
on("B"); b1, bd = Nic("lan", 0x41), Nic("dmz", 0x43)
b2 = Nic("lan", 0x42)
a1.send(BCAST, b"across the tunnel")
got = b1.drain(1.0)
ck(len(got) == 1 and got[0][14:31] == b"across the tunnel",
   "a broadcast crosses to the other host")
ck(len(b2.drain()) == 1, "and floods there in its port group")
ck(bd.drain() == [] and ad.drain() == [], "not into dmz on either side")
b1.send(a1.mac, b"reply")
ck([f[14:19] for f in a1.drain(1.0)] == [b"reply"], "unicast back, learned")
ck(b2.drain() == [], "the reply was not flooded on B")
big = bytes(range(256)) * 5 + b"end"
a1.send(b1.mac, big)
got = b1.drain(1.0)
ck(len(got) == 1 and got[0][14:] == big, "a full-size frame crosses intact")
# A reload (a new port group) keeps the tunnel and what it learned.
import subprocess
env = dict(os.environ, XDG_RUNTIME_DIR=tmp + "/runA",
           TERMVISOR_DATASTORE=tmp + "/dsA")
ck(subprocess.run([os.environ["tv"], "switch", "portgroup", "add", "vswitch0",
                   "later"], env=env).returncode == 0, "portgroup add on A")
import json
j = json.loads(subprocess.run([os.environ["tv"], "switch", "show", "--json"],
                              env=env, capture_output=True, text=True).stdout)
ck(any(m["mac"] == "52:54:00:00:00:41" for m in j["macs"]),
   "A still knows b1's MAC behind the peer after the reload")
a1.send(b1.mac, b"after reload")
ck([f[14:26] for f in b1.drain(1.0)] == [b"after reload"] and
   b2.drain() == [], "still unicast to b1 after A's reload")
bd.send(BCAST, b"dmz")
ck(len(ad.drain(1.0)) == 1 and a1.drain() == [], "dmz crosses as dmz only")
ck.exit()
EOF
wait 2>/dev/null
if [ -s "$tmp/wire" ]; then
	read -r vni src <"$tmp/wire"
	[ -n "$vni" ] && ok "tshark saw VXLAN VNI $vni from $src on the wire" ||
		bad "tshark did not decode VXLAN: $(cat "$tmp/wire")"
fi
vni_lan=$(ip netns exec "$na" "$tv" switch show --json | python3 -c '
import json, sys
print([p["vni"] for p in json.load(sys.stdin)["portgroups"] if p["name"] == "lan"][0])')
[ -s "$tmp/wire" ] && { [ "$vni" = "$vni_lan" ] && ok "it is lan's VNI" || bad "VNI $vni, lan has $vni_lan"; }

# Linux's VXLAN in place of switch B.
side B; "$tv" switch stop || bad "stop B"
ip -n "$nb" link add vx10 type vxlan id 10 remote 10.88.0.1 dstport 4789 dev "$vb" ||
	bad "a Linux vxlan device"
ip -n "$nb" addr add 10.10.0.1/24 dev vx10
ip -n "$nb" link set vx10 up
side A
python3 - <<'EOF' || fails=$((fails + 1))
from vswitch_nic import *
import socket, struct
ck = Check()
n = Nic("v10", 0x51)
body = struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, n.mac,
                   socket.inet_aton("10.10.0.2"), b"\0" * 6,
                   socket.inet_aton("10.10.0.1"))
reply = None
for i in range(3):
    n.send(BCAST, body + b"\0" * 18, etype=0x0806)
    for f in n.drain(1.0):
        if f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02":
            reply = f
    if reply:
        break
ck(reply is not None and reply[28:32] == socket.inet_aton("10.10.0.1"),
   "Linux's VXLAN (VNI 10) answered ARP for 10.10.0.1")
ck.exit()
EOF
"$tv" switch stop || bad "stop A"
finish
