#!/bin/bash
# The real switch (`termvisor switch run --daemon`) with synthetic NICs
# (tests/e2e/vswitch_nic.py) on its socket: learning, isolation between
# port groups, a trunk's 802.1Q tags, the configuration commands, `switch
# show` and its JSON, and the socket's permissions.
set -u
. "$(dirname "$0")/vswitch-lib.sh"

"$tv" switch create sw1 || bad "switch create"
"$tv" switch portgroup add sw1 lan || bad "portgroup add lan"
"$tv" switch portgroup add sw1 dmz --vlan 20 || bad "portgroup add dmz"
"$tv" switch portgroup add sw1 trk --trunk 20,30 || bad "portgroup add trk"
if "$tv" switch portgroup add sw1 dmz2 --vlan 20 2>"$tmp/err"; then
	bad "a second group on VLAN 20 was accepted"
else
	ok "VLAN 20 twice refused: $(cat "$tmp/err")"
fi
"$tv" switch portgroup add sw1 gone --vlan 99 && "$tv" switch portgroup rm sw1 gone ||
	bad "portgroup rm"
grep -q 'portgroup.dmz.vlan = "20"' "$TERMVISOR_DATASTORE/switches/sw1.conf" ||
	bad "dmz not in the configuration file"
"$tv" switch show sw1 | grep -q "not running" || bad "show of a stopped switch"
"$tv" switch run sw1 --daemon || bad "switch run --daemon"
sock="$XDG_RUNTIME_DIR/termvisor/sw1.vswitch"
"$tv" switch list | grep -q "^sw1 *running" && ok "switch list: sw1 running" ||
	bad "switch list: $("$tv" switch list)"
[ "$(stat -c %a "$sock")" = 600 ] || bad "socket mode $(stat -c %a "$sock")"
[ "$(stat -c %a "$(dirname "$sock")")" = 700 ] || bad "directory not 0700"

python3 - <<'EOF' || fails=$((fails + 1))
from vswitch_nic import *
import struct
ck = Check()
a, b = Nic("lan", 1, "sw1"), Nic("lan", 2, "sw1")
d = Nic("dmz", 4, "sw1")
t = Nic("trk", 9, "sw1")
a.send(BCAST)
ck(len(b.drain()) == 1, "broadcast reaches its port group")
ck(d.drain() == [] and t.drain() == [], "broadcast stays in its port group")
b.send(a.mac)
ck(len(a.drain()) == 1, "b answers a (a learned)")
a.send(b.mac, b"unicast" * 10)
got = b.drain()
ck(len(got) == 1 and got[0][14:84] == b"unicast" * 10, "unicast a -> b intact")
a.send(d.mac)
ck(d.drain() == [], "no unicast across port groups")
ck(len(b.drain()) == 1, "unknown in lan: flooded in lan only")
d.send(BCAST, b"dmz!" * 12)
f = t.drain()
ck(len(f) == 1 and f[0][12:14] == b"\x81\x00" and
   struct.unpack(">H", f[0][14:16])[0] & 0xfff == 20 and
   f[0][18:22] == b"dmz!", "the trunk sees dmz's frame tagged 20")
t.send(d.mac, struct.pack(">HH", 20, 0x0800) + b"from trunk" * 5, etype=0x8100)
f = d.drain()
ck(len(f) == 1 and f[0][12:14] == b"\x08\x00" and f[0][14:24] == b"from trunk",
   "a tagged frame from the trunk reaches dmz untagged")
t.send(BCAST, struct.pack(">HH", 30, 0x0800) + b"x" * 46, etype=0x8100)
ck(a.drain() + b.drain() + d.drain() == [], "VLAN 30 has no group: dropped")
try:
    Nic("nosuch name", 7, "sw1")
    ck(False, "a bad port group name was accepted")
except Refused as e:
    ck("port group" in str(e), "bad port group name refused: %s" % e)
n = Nic("auto", 8, "sw1")
n.send(BCAST)
ck(a.drain() == [], "an automatic port group is a network of its own")
# While the NICs are attached: show, as text and JSON.
import json, os, subprocess
tv = os.environ["tv"]
out = subprocess.run([tv, "switch", "show", "sw1"], capture_output=True,
                     text=True).stdout
ck("py1:net0" in out and "dmz" in out and "52:54:00:00:00:01" in out,
   "switch show lists ports, groups, MACs")
j = json.loads(subprocess.run([tv, "switch", "show", "sw1", "--json"],
                              capture_output=True, text=True).stdout)
pg = {p["name"]: p for p in j["portgroups"]}
ck(j["running"] and j["switch"] == "sw1", "show --json: the switch")
ck(pg["dmz"]["vlan"] == 20 and pg["trk"]["trunk"] and pg["auto"]["automatic"]
   and sorted(pg["trk"]["trunk_vlans"]) == [20, 30], "show --json: groups")
ck(any(m["mac"] == "52:54:00:00:00:02" and m["portgroup"] == "lan"
       for m in j["macs"]), "show --json: the MAC table")
ports = {p["name"]: p for p in j["ports"]}
ck(ports["py1:net0"]["counters"]["rx_packets"] == 3 and
   ports["py9:net0"]["counters"]["rx_vlan"] == 1, "show --json: counters")
ck.exit()
EOF

"$tv" switch stop sw1 || bad "switch stop"
[ ! -e "$sock" ] && ok "stop removed the socket" || bad "socket left after stop"
"$tv" switch --help | grep -q capture || bad "switch --help"
"$tv" switch capture --help | grep -q FILTER || bad "switch capture --help"
finish
