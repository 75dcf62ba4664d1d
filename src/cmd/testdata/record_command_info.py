#!/usr/bin/env python3
"""Records `COMMAND INFO` of redis-server 7 for every command in our table into
command_info.txt: `name arity flags first last step acl-categories group` (lists comma-joined).
Usage: python3 src/cmd/testdata/record_command_info.py 16379 get set ...
"""
import os, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
port, names = sys.argv[1], sys.argv[2:]
out = []
for n in names:
    # Raw mode: one field per line, nested arrays flattened.
    raw = subprocess.run(["redis-cli", "-p", port, "command", "info", n],
                         capture_output=True, text=True).stdout.split("\n")
    name, arity = raw[0], raw[1]
    i, flags = 2, []
    while not raw[i].lstrip("-").isdigit():
        flags.append(raw[i]); i += 1
    first, last, step = raw[i], raw[i + 1], raw[i + 2]
    i += 3
    acl = []
    while i < len(raw) and raw[i].startswith("@"):
        acl.append(raw[i]); i += 1
    docs = subprocess.run(["redis-cli", "-p", port, "command", "docs", n],
                          capture_output=True, text=True).stdout.split("\n")
    group = docs[docs.index("group") + 1]
    out.append(" ".join([name, arity, ",".join(flags) or "-", first, last, step, ",".join(acl) or "-", group]))
open(os.path.join(here, "command_info.txt"), "w").write("\n".join(out) + "\n")
