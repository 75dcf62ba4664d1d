#!/usr/bin/env python3
"""Records replies of real redis-server 7 for hashset_cases.txt into hashset_expected.txt
(hash and set commands; same encoding as record_redis.py).

Usage: redis-server --port 16391 --save '' --appendonly no --daemonize yes
       python3 src/cmd/testdata/record_hashset.py 16391
A case starting with `~ ` has its flat arrays sorted (set order is unspecified in Redis);
the Rust test sorts the same way. `\\e` = empty argument.
"""
import os, socket, sys

def enc_cmd(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
    def line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.s.recv(65536)
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l
    def exact(self, n):
        while len(self.buf) < n + 2:
            self.buf += self.s.recv(65536)
        d, self.buf = self.buf[:n], self.buf[n + 2:]
        return d
    def reply(self, sort):
        l = self.line()
        t, rest = l[:1], l[1:]
        if t in (b"+", b"-", b":"):
            return (t + rest).decode("latin1")
        if t == b"$":
            n = int(rest)
            return "$nil" if n < 0 else "$" + render(self.exact(n))
        if t == b"*":
            n = int(rest)
            if n < 0:
                return "*nil"
            items = [self.reply(sort) for _ in range(n)]
            if sort and not any(i.startswith("*") for i in items):
                items.sort()
            return "*[" + ", ".join(items) + "]"
        raise ValueError(l)

def render(b):
    return "".join(chr(c) if 32 < c < 127 and c != 92 else "\\x%02x" % c for c in b)

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    c = Conn(int(sys.argv[1]))
    c.s.sendall(enc_cmd([b"FLUSHALL"])); c.reply(False)
    out = []
    for line in open(os.path.join(here, "hashset_cases.txt"), encoding="utf8"):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        sort = line.startswith("~ ")
        if sort:
            line = line[2:]
        args = [b"" if w == "\\e" else w.encode() for w in line.split(" ")]
        c.s.sendall(enc_cmd(args))
        out.append(c.reply(sort))
    open(os.path.join(here, "hashset_expected.txt"), "w").write("\n".join(out) + "\n")

main()
