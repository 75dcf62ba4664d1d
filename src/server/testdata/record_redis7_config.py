#!/usr/bin/env python3
"""Records `CONFIG GET *` of a redis-server 7 into redis7_config.txt (`name value` lines,
sorted; the value is the rest of the line, possibly empty). Instance-specific settings
(port, dir, pidfile, daemonize, save, appendonly) are written with Redis's defaults.
Usage: python3 src/server/testdata/record_redis7_config.py 16379
"""
import os, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
port = sys.argv[1]
raw = subprocess.run(["redis-cli", "-p", port, "--raw", "config", "get", "*"],
                     capture_output=True, text=True).stdout.split("\n")
pairs = dict(zip(raw[0::2], raw[1::2]))
pairs.update({"port": "6379", "dir": "./", "pidfile": "", "daemonize": "no",
              "save": "3600 1 300 100 60 10000", "appendonly": "no"})
with open(os.path.join(here, "redis7_config.txt"), "w") as out:
    for name in sorted(k for k in pairs if k):
        out.write(f"{name} {pairs[name]}\n")
