"""A synthetic NIC for the switch's end-to-end tests: speaks the
seqpacket protocol of src/vswitch/vswitch_proto.h (hello, welcome, then
one vsw_net_hdr + Ethernet frame per message) from Python, so the tests
need no guest.  Imported by tests/e2e/vswitch-*.sh."""

import os
import select
import socket
import struct
import time

MAGIC = 0x57535654
VERSION = 1
HELLO = struct.Struct("<IHHI6s2s64s64s16s")
WELCOME = struct.Struct("<IHHiI128s")
HDR = b"\0" * 12
BCAST = b"\xff" * 6


def mac(n, prefix=b"\x52\x54\x00\x00\x00"):
    return prefix + bytes([n])


def sock_path(name="vswitch0"):
    rt = os.environ.get("XDG_RUNTIME_DIR")
    if rt:
        d = rt + "/termvisor"
    elif os.geteuid() == 0:
        d = "/run/termvisor"
    else:
        d = "/tmp/termvisor-%d" % os.geteuid()
    return "%s/%s.vswitch" % (d, name)


class Refused(Exception):
    pass


class Nic:
    def __init__(self, pg, n, switch="vswitch0", vm=None, features=0,
                 hello=None):
        self.mac = mac(n)
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(5)
        self.s.connect(sock_path(switch))
        if hello is None:
            hello = HELLO.pack(MAGIC, VERSION, 0, features, self.mac,
                               b"\0\0", pg.encode(),
                               (vm or "py%d" % n).encode(), b"net0")
        self.s.send(hello)
        w = self.s.recv(4096)
        if len(w) != WELCOME.size:
            raise Refused("welcome of %d bytes" % len(w))
        magic, ver, _, status, port, msg = WELCOME.unpack(w)
        if magic != MAGIC or status != 0:
            raise Refused(msg.rstrip(b"\0").decode())
        self.port = port
        self.s.setblocking(False)

    def send(self, dst, payload=b"x" * 46, etype=0x0800, hdr=HDR, raw=None,
             wait=1.0):
        """One frame from this NIC, waiting up to wait seconds for room
        in the socket; False when it stayed full."""
        m = raw if raw is not None else (
            hdr + dst + self.mac + struct.pack(">H", etype) + payload)
        end = time.time() + wait
        while True:
            try:
                self.s.send(m)
                return True
            except BlockingIOError:
                left = end - time.time()
                if left <= 0:
                    return False
                select.select([], [self.s], [], left)

    def recv(self, timeout=0.5):
        """The next frame (without the header), or None."""
        r, _, _ = select.select([self.s], [], [], timeout)
        if not r:
            return None
        m = self.s.recv(70000)
        if not m:
            raise EOFError("the switch closed the port")
        return m[12:]

    def drain(self, timeout=0.3):
        out = []
        while True:
            f = self.recv(timeout)
            if f is None:
                return out
            out.append(f)

    def closed(self, timeout=3):
        """Did the switch close this port (EOF) within timeout?"""
        end = time.time() + timeout
        while time.time() < end:
            try:
                if self.recv(0.2) is None:
                    continue
            except (EOFError, ConnectionResetError):
                return True
        return False

    def close(self):
        self.s.close()


def arp(nic, me, host, timeout=1.0):
    """Ask from nic, as address me, who has address host: the ARP
    replies that came back within timeout (whole Ethernet frames; the
    replier's MAC is f[6:12]).  Other frames that arrive are dropped."""
    body = struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, nic.mac,
                       socket.inet_aton(me), b"\0" * 6,
                       socket.inet_aton(host))
    nic.send(BCAST, body + b"\0" * 18, etype=0x0806)
    return [f for f in nic.drain(timeout)
            if f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02"]


def ipv4_udp(src, dst, sport, dport, data):
    """An IPv4/UDP packet (checksums filled) after the Ethernet header."""
    ulen = 8 + len(data)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 1, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack(">H", csum(ip)) + ip[12:]
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(
        ">BBH", 0, 17, ulen)
    u = struct.pack(">HHHH", sport, dport, ulen, 0) + data
    c = csum(ph + u) or 0xffff
    return ip + u[:6] + struct.pack(">H", c) + u[8:]


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(">%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


class Check:
    """Counts failures; each check prints one line."""

    def __init__(self):
        self.fails = 0

    def __call__(self, cond, what):
        print(("ok " if cond else "FAIL ") + what, flush=True)
        if not cond:
            self.fails += 1

    def exit(self):
        raise SystemExit(1 if self.fails else 0)
