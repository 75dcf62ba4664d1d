#!/usr/bin/env python3
"""Records `COMMAND DOCS` (every command) of redis-server 7 as the raw RESP3 reply bytes
(after HELLO 3) into redis7_command_docs.resp3; src/cmd/docs.rs embeds and parses it.
Usage: python3 src/cmd/testdata/record_command_docs.py 16379
"""
import os, socket, sys

here = os.path.dirname(os.path.abspath(__file__))

def enc(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a.encode())
    return out

sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.sendall(enc(["HELLO", "3"]) + enc(["PING"]))
buf = b""
while not buf.endswith(b"+PONG\r\n"):
    buf += sock.recv(1 << 16)
sock.sendall(enc(["COMMAND", "DOCS"]) + enc(["PING"]))
buf = b""
while not buf.endswith(b"+PONG\r\n"):
    buf += sock.recv(1 << 20)
open(os.path.join(here, "redis7_command_docs.resp3"), "wb").write(buf[: -len(b"+PONG\r\n")])
