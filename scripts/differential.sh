#!/usr/bin/env bash
# Long differential run: the seeded random command generator of tests/differential.rs
# against tidemark (--shards 1) and a real redis-server 7, in release mode.
#
# Every reply is compared (normalized only where Redis leaves order/choice unspecified) and
# the whole key pool is compared every 250 commands. Stops at the first divergence,
# printing the seed, command index, command, both replies and the previous commands.
#
# Usage: scripts/differential.sh [commands]      (default 100000; at least 100000 runs)
# Env:   TIDEMARK_DIFF_SEED=<n>   run only that seed (reproduce a failure)
#        TIDEMARK_DIFF_KEEP_GOING=1   report every divergence, resync with FLUSHALL, go on
set -euo pipefail
cd "$(dirname "$0")/.."

commands=${1:-100000}
command -v redis-server >/dev/null || {
  echo "needs redis-server 7 on PATH (apt-get install redis-server)" >&2; exit 2; }

export TIDEMARK_DIFF_COMMANDS=$commands
out=$(mktemp "${TMPDIR:-/tmp}/tidemark-diff.XXXXXX")
trap 'rm -f "$out"' EXIT
status=0
cargo test --release -q -p tidemark --test differential -- --nocapture >"$out" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  cat "$out"
  echo "differential: FAILED after the output above (exit $status)" >&2
  exit "$status"
fi
line=$(grep -o 'differential: [0-9]* commands agreed.*' "$out" || true)
echo "${line:-differential: no summary line (see output above)}"
