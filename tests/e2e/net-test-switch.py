#!/usr/bin/env python3
"""A minimal learning switch speaking termvisor's NIC protocol
(src/vswitch/vswitch_proto.h), for the NIC's tests when the real switch
is not the thing under test: SOCK_SEQPACKET at PATH, hello/welcome, then
one frame per message; frames never leave their port group.

With --host PORTGROUP:IP, a host lives on that port group at IP (MAC
02:00:00:00:00:fe) and answers ARP requests and pings, so one guest has
someone to talk to.

usage: net-test-switch.py PATH [--host PORTGROUP:IP]
"""
import os
import selectors
import socket
import struct
import sys

MAGIC = 0x57535654
HELLO = struct.Struct("<IHHI6s2s64s64s16s")
WELCOME = struct.Struct("<IHHiI128s")
MAX_MSG = 12 + 65535 + 14


HOST_MAC = bytes([2, 0, 0, 0, 0, 0xfe])


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def host_answer(f, ip):
    """The host's reply to frame f (no header), or None."""
    if f[12:14] == b"\x08\x06" and len(f) >= 42 and f[20:22] == b"\0\1" \
            and f[38:42] == ip:
        return f[6:12] + HOST_MAC + b"\x08\x06" + f[14:20] + b"\0\2" + \
            HOST_MAC + ip + f[22:28] + f[28:32]
    if f[12:14] == b"\x08\x00" and len(f) >= 34 and f[23] == 1 and \
            f[30:34] == ip:
        ihl = (f[14] & 15) * 4
        tot = struct.unpack("!H", f[16:18])[0]
        icmp = bytearray(f[14 + ihl:14 + tot])
        if len(icmp) < 8 or icmp[0] != 8:
            return None
        icmp[0] = 0
        icmp[2:4] = b"\0\0"
        icmp[2:4] = struct.pack("!H", csum(bytes(icmp)))
        iph = bytearray(f[14:14 + ihl])
        iph[12:16], iph[16:20] = f[30:34], f[26:30]
        iph[8] = 64
        iph[10:12] = b"\0\0"
        iph[10:12] = struct.pack("!H", csum(bytes(iph)))
        return f[6:12] + HOST_MAC + b"\x08\x00" + bytes(iph) + bytes(icmp)
    return None


def main():
    path = sys.argv[1]
    host = None
    if len(sys.argv) == 4 and sys.argv[2] == "--host":
        pg, ip = sys.argv[3].split(":")
        host = (pg.encode(), socket.inet_aton(ip))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    lsock.bind(path)
    lsock.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    ports = {}      # socket -> port group, or None before the hello
    fdb = {}        # (port group, mac) -> socket
    nport = 0
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is lsock:
                c, _ = lsock.accept()
                ports[c] = None
                sel.register(c, selectors.EVENT_READ)
                continue
            try:
                m = s.recv(MAX_MSG)
            except OSError:
                m = b""
            if not m:
                sel.unregister(s)
                pg = ports.pop(s, None)
                for k in [k for k, v in fdb.items() if v is s]:
                    del fdb[k]
                s.close()
                continue
            if ports[s] is None:
                if len(m) != HELLO.size:
                    continue
                f = HELLO.unpack(m)
                if f[0] != MAGIC:
                    continue
                ports[s] = f[6].split(b"\0")[0]
                nport += 1
                s.send(WELCOME.pack(MAGIC, 1, 0, 0, nport, b""))
                continue
            if len(m) < 12 + 14:
                continue
            pg = ports[s]
            dst, src = m[12:18], m[18:24]
            if host is not None and pg == host[0] and \
                    (dst == HOST_MAC or dst[0] & 1):
                r = host_answer(m[12:], host[1])
                if r is not None:
                    try:
                        s.send(bytes(12) + r, socket.MSG_DONTWAIT)
                    except OSError:
                        pass
                    continue
            fdb[(pg, src)] = s
            out = fdb.get((pg, dst)) if not dst[0] & 1 else None
            targets = [out] if out is not None else \
                [p for p, g in ports.items() if g == pg and p is not s]
            for t in targets:
                try:
                    t.send(m, socket.MSG_DONTWAIT)
                except OSError:
                    pass


if __name__ == "__main__":
    main()
