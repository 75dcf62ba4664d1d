#!/usr/bin/env bash
# Side-by-side throughput/latency of tidemark and redis-server on loopback, in one run.
#
# Starts redis-server and tidemark with the same persistence settings, then runs
# redis-benchmark (SET/GET, 50 clients, -P 1 and -P 16) against each, alternating the two
# servers ROUNDS times so machine noise hits both alike. Prints a table with requests/s,
# p50 and p99 for each, and the tidemark/redis throughput ratio (median of the rounds).
#
# Usage: scripts/bench-vs-redis.sh [aof-mode]     aof-mode: off (default) | always | everysec
# Env:   REQUESTS (default 200000), ROUNDS (default 3), SHARDS (default 1), CLIENTS (50)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-off}
requests=${REQUESTS:-200000}
rounds=${ROUNDS:-3}
shards=${SHARDS:-1}
clients=${CLIENTS:-50}
redis_port=${REDIS_PORT:-16379}
tide_port=${TIDEMARK_PORT:-16380}

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
  echo "needs redis-server and redis-benchmark (apt-get install redis-server redis-tools)" >&2; exit 2; }

cargo build --release -q -p tidemark
work=$(mktemp -d "${TMPDIR:-/tmp}/tidemark-bench.XXXXXX")
cleanup() {
  redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  [ -n "${tide_pid:-}" ] && kill "$tide_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

case "$mode" in
  off)      redis_aof=(--appendonly no);  tide_aof=(--appendonly no) ;;
  always)   redis_aof=(--appendonly yes --appendfsync always);   tide_aof=(--appendonly yes --appendfsync always) ;;
  everysec) redis_aof=(--appendonly yes --appendfsync everysec); tide_aof=(--appendonly yes --appendfsync everysec) ;;
  *) echo "unknown mode $mode (off|always|everysec)" >&2; exit 2 ;;
esac

mkdir -p "$work/redis" "$work/tidemark"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --dir "$work/redis" "${redis_aof[@]}" \
  --daemonize yes --logfile "$work/redis.log"
target/release/tidemark --port "$tide_port" --dir "$work/tidemark" --shards "$shards" "${tide_aof[@]}" \
  2>"$work/tidemark.log" &
tide_pid=$!
for port in "$redis_port" "$tide_port"; do
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

results="$work/results.csv"
: >"$results"
for round in $(seq "$rounds"); do
  for pipeline in 1 16; do
    for server in redis tidemark; do
      port=$redis_port; [ "$server" = tidemark ] && port=$tide_port
      redis-cli -p "$port" flushall >/dev/null
      redis-benchmark -p "$port" -t set,get -n "$requests" -c "$clients" -P "$pipeline" -r 100000 --csv 2>/dev/null \
        | tail -n +2 | tr -d '"' | while IFS=, read -r test rps _avg _min p50 _p95 p99 _max; do
            echo "$server,$pipeline,$test,$rps,$p50,$p99,$round" >>"$results"
          done
    done
  done
done

echo "mode=$mode requests=$requests clients=$clients rounds=$rounds tidemark_shards=$shards"
echo "redis: $(redis-server --version | cut -d' ' -f3)  tidemark: $(target/release/tidemark --version 2>/dev/null || echo dev)"
python3 - "$results" <<'PY'
import csv, statistics, sys
rows = list(csv.reader(open(sys.argv[1])))
def med(server, p, test, col):
    vals = [float(r[col]) for r in rows if r[0] == server and r[1] == p and r[2] == test]
    return statistics.median(vals) if vals else float('nan')
print(f"{'test':<5} {'-P':>3} {'redis rps':>12} {'tidemark rps':>13} {'ratio':>6} {'redis p50/p99 ms':>17} {'tidemark p50/p99 ms':>20}")
for p in ("1", "16"):
    for test in ("SET", "GET"):
        r, t = med("redis", p, test, 3), med("tidemark", p, test, 3)
        print(f"{test:<5} {p:>3} {r:>12.0f} {t:>13.0f} {t / r:>6.2f} "
              f"{med('redis', p, test, 4):>8.3f}/{med('redis', p, test, 5):<8.3f} "
              f"{med('tidemark', p, test, 4):>10.3f}/{med('tidemark', p, test, 5):<8.3f}")
PY
