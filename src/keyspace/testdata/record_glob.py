#!/usr/bin/env python3
"""Records which of KEYS_ (below) redis-server 7 returns for each pattern in PATTERNS, via
KEYS, into glob_redis.txt: `pattern<TAB>matching keys sorted, joined by TAB`.
Usage: python3 src/keyspace/testdata/record_glob.py 16379
"""
import os, subprocess, sys

KEYS_ = ["a", "b", "ab", "abc", "abcd", "ba", "hello", "hallo", "hxllo", "hllo", "heeello",
         "-", "]", "[", "^", "\\", "a\\", "a*", "a?", "*", "?", "x-y", "a]b", "a[b", "aaa", "aXbYc",
         "user:1", "user:10", "user:2:x", "ñ", "zz", "z"]
PATTERNS = ["*", "**", "a*", "*a", "*b*", "a?", "?", "??", "???", "h?llo", "h*llo", "h[ae]llo",
            "h[^e]llo", "h[a-e]llo", "h[e-a]llo", "[a-]", "[a-]*", "[]]", "[\\]]", "[\\\\]", "[",
            "[abc", "[^a]", "[^]", "a\\*", "a\\?", "a\\", "\\a", "\\", "*\\", "[a-z]", "[!a]",
            "user:*", "user:?", "user:*:x", "*:*", "a*c", "a*b*c", "*c*", "[z-]", "[-z]", "x[-]y",
            "a[]]b", "a[[]b", "[[]", "*[", "[^\\]]", "[a-b-c]", "a**", "**a", "?*", "*?*?", "z*z"]

def r(*a):
    return subprocess.run(["redis-cli", "-p", sys.argv[1]] + list(a), capture_output=True).stdout

r("flushall")
for k in KEYS_:
    r("set", k, "1")
out = []
for p in PATTERNS:
    got = sorted(x for x in r("keys", p).decode().split("\n") if x != "")
    out.append("\t".join([p] + got))
r("flushall")
here = os.path.dirname(os.path.abspath(__file__))
open(os.path.join(here, "glob_redis.txt"), "w").write("\n".join(out) + "\n")
open(os.path.join(here, "glob_keys.txt"), "w").write("\n".join(KEYS_) + "\n")
