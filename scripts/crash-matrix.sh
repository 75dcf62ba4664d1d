#!/usr/bin/env bash
# The full real-binary crash matrix: shards {1,2,4} × appendfsync {always,everysec} ×
# {plain, BGREWRITEAOF in flight, BGSAVE in flight}, SIGKILL + restart each cycle.
#
# Each cell preloads 200k values (so a rewrite/save takes long enough to be hit), then per
# cycle runs tidemark-crash's client threads (unique-key SETs + per-client INCR counters,
# every acknowledgement recorded), issues the operation from a side connection and
# SIGKILLs the server while INFO persistence still shows it running, restarts on the same
# directory and checks: `always` — every acknowledged SET present, counters exact within
# the unacknowledged window; `everysec` — ≥ 99% of acknowledged SETs present; both — no
# key or value that was never written, and the server starts. Prints a markdown table
# (docs/durability.md, "Real-binary crash matrix"); exit 1 on any violation.
#
# Usage: scripts/crash-matrix.sh [cycles] [seed] [extra tidemark-crash matrix flags...]
#   e.g. scripts/crash-matrix.sh 10 1 --cells 2:always:rewrite
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-10}
seed=${2:-1}
shift $(( $# > 2 ? 2 : $# ))
cargo build --release -q -p tidemark -p tidemark-crash
exec target/release/tidemark-crash matrix --binary target/release/tidemark \
  --cycles "$cycles" --seed "$seed" "$@"
