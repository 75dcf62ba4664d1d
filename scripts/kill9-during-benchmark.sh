#!/usr/bin/env bash
# kill -9 during redis-benchmark, restart, and check that every acknowledged SET is present.
#
# Runs tidemark-crash against the release binary with --appendonly yes --appendfsync always:
# each cycle starts the server, runs redis-benchmark (SET, 50 clients, -P 16) as background
# load plus tidemark-crash's own client threads that record every acknowledged SET and
# INCR, SIGKILLs the server at a random instant, restarts it on the same directory and
# verifies every acknowledged SET (value exact) and every counter (exact within the
# unacknowledged window).
#
# Usage: scripts/kill9-during-benchmark.sh [shards] [cycles] [seed]
set -euo pipefail
cd "$(dirname "$0")/.."
shards=${1:-1}
cycles=${2:-10}
seed=${3:-1}
command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark (apt-get install redis-tools)" >&2; exit 2; }
cargo build --release -q -p tidemark -p tidemark-crash
target/release/tidemark-crash --binary target/release/tidemark --shards "$shards" \
  --appendfsync always --cycles "$cycles" --seed "$seed" --with-benchmark
