#!/usr/bin/env python3
"""Hostile VNC clients against a server without a password.

vnc-bad-clients.py HOST PORT

Each must be dropped by the server (it closes the connection) without
taking the server down:
  garbage    a protocol version that is not one
  half       half a protocol version, then the socket closed
  flood      a megabyte of garbage as fast as the socket takes it
  badmsg     a good handshake, then an unknown message type
  noread     a good handshake, then a flood of update requests and
             pointer events while never reading what comes back (the
             server's writes block; it must give up on this client)
While `noread` is stuck, another client must still be served: that part
is checked by the caller, which runs a real client meanwhile (this
script prints NOREAD-STARTED and holds that connection until stdin
closes).  Prints one "ok NAME" line per client; exits 1 on the first
failure.
"""
import os
import socket
import struct
import sys
import time

HOST, PORT = sys.argv[1], int(sys.argv[2])


def connect():
    s = socket.create_connection((HOST, PORT), timeout=10)
    version = recv_exact(s, 12)
    if not version.startswith(b"RFB "):
        fail("server greeted with %r" % version)
    return s


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            fail("server closed while %d bytes were expected" % n)
        b += c
    return b


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def dropped(s, within=12.0):
    """Does the server close s within `within` seconds?"""
    s.settimeout(0.5)
    end = time.time() + within
    while time.time() < end:
        try:
            if s.recv(65536) == b"":
                return True
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def handshake():
    s = connect()
    s.sendall(b"RFB 003.008\n")
    n = recv_exact(s, 1)[0]
    if n == 0:
        fail("server refused the version")
    types = recv_exact(s, n)
    if 1 not in types:
        fail("server wants a password (types %r): run it without" % types)
    s.sendall(b"\x01")
    if struct.unpack(">I", recv_exact(s, 4))[0] != 0:
        fail("security handshake failed")
    s.sendall(b"\x01")  # ClientInit, shared
    w, h = struct.unpack(">HH", recv_exact(s, 4))
    rest = recv_exact(s, 16 + 4)
    name_len = struct.unpack(">I", rest[16:20])[0]
    recv_exact(s, name_len)
    return s, w, h


def garbage():
    s = connect()
    s.sendall(b"GARBAGE!!!!\n")
    return dropped(s)


def half():
    s = connect()
    s.sendall(b"RFB 003.0")
    s.close()
    return True


def flood():
    s = connect()
    junk = os.urandom(1 << 20)
    try:
        s.settimeout(10)
        s.sendall(junk)
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        return True
    return dropped(s)


def badmsg():
    s, w, h = handshake()
    s.sendall(b"\xee" + b"\x00" * 32)
    return dropped(s)


def noread():
    s, w, h = handshake()
    # Raw only: every frame is the whole screen, so buffers fill fast.
    s.sendall(struct.pack(">BBHi", 2, 0, 1, 0))
    s.setblocking(False)
    # Incremental=0 update requests for the whole screen, with pointer
    # moves between them: each asks for a full frame we never read.
    req = struct.pack(">BBHHHH", 3, 0, 0, 0, w, h)
    sent = 0
    end = time.time() + 15
    while time.time() < end:
        msg = b"".join(req + struct.pack(">BBHH", 5, 0, i % w, i % h)
                       for i in range(64))
        try:
            sent += s.send(msg)
        except BlockingIOError:
            time.sleep(0.05)  # our side is full too: the server stalls
            if sent > 0:
                break
        except (ConnectionResetError, BrokenPipeError):
            return True
    print("NOREAD-STARTED", flush=True)
    sys.stdin.read()
    s.setblocking(True)
    # The server must have given up on us (its write timeout).
    return dropped(s, within=15)


for name, fn in (("garbage", garbage), ("half", half), ("flood", flood),
                 ("badmsg", badmsg), ("noread", noread)):
    if not fn():
        fail("the server did not drop the %s client" % name)
    print("ok", name, flush=True)
