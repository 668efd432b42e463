#!/usr/bin/env bash
# bench/impression_overhead.sh - what impression logging costs recommend throughput.
#
# Starts two release `reco serve` processes on loopback, each on its own SQLite file seeded
# from DATA with iALS (64 factors): one logging impressions (the default), one with
# `impressions.enabled = false`. Then measures GET /v1/recommend/{random known user}?n=10 with
# wrk (1 thread, 16 connections, SECONDS each), alternating the two servers RUNS times so that
# drift of the machine falls on both, and prints each run, the medians and their ratio, and the
# impressions the logging server wrote and dropped.
#
# Usage: bench/impression_overhead.sh [DATA] [N_USERS] [SECONDS] [RUNS]
#   default: data/ml-100k 943 20 5  (user ids 1..943)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
data="${1:-data/ml-100k}"; nusers="${2:-943}"; seconds="${3:-20}"; runs="${4:-5}"
cargo build --release -p reco-cli >&2
bin=target/release/reco
work=$(mktemp -d /tmp/reco-impressions.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
model='{"model":"ials","factors":64,"epochs":15,"regularization":0.05,"alpha":2.0}'
for mode in on off; do
  port=$([ "$mode" = on ] && echo 18191 || echo 18192)
  cat > "$work/$mode.toml" <<TOML
listen = "127.0.0.1:$port"
database = "sqlite://$work/$mode.db"
[retrain]
after_events = 0
[impressions]
enabled = $([ "$mode" = on ] && echo true || echo false)
[experiments]
check_seconds = 0
TOML
  "$bin" serve --config "$work/$mode.toml" --model "$model" --data "$data" > "$work/$mode.log" 2>&1 &
  pids+=($!)
done
for port in 18191 18192; do
  until curl -sf "127.0.0.1:$port/health/ready" > /dev/null; do sleep 1; done
done
cat > "$work/recommend.lua" <<LUA
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/v1/recommend/" .. tostring(math.random(1, $nusers)) .. "?n=10")
end
function done(summary, latency, requests)
  io.write(string.format('{"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"errors":%d}\n',
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
LUA
for r in $(seq 1 "$runs"); do
  for mode in on off; do
    port=$([ "$mode" = on ] && echo 18191 || echo 18192)
    line=$(wrk -t1 -c16 -d"${seconds}s" -s "$work/recommend.lua" "http://127.0.0.1:$port" | tail -1)
    echo "{\"impressions\":\"$mode\",\"run\":$r,${line#\{}" | tee -a "$work/results.jsonl"
  done
done
written=$(curl -s 127.0.0.1:18191/metrics | awk '/^reco_impressions_written_total/{print $2}')
dropped=$(curl -s 127.0.0.1:18191/metrics | awk '/^reco_impressions_dropped_total/{print $2}')
python3 - "$work/results.jsonl" "${written:-0}" "${dropped:-0}" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda m, k: statistics.median(r[k] for r in rows if r["impressions"] == m)
on, off = med("on", "rps"), med("off", "rps")
print("| impressions | runs | req/s (median) | p50 ms | p99 ms |")
print("|---|---:|---:|---:|---:|")
for m in ("on", "off"):
    n = sum(1 for r in rows if r["impressions"] == m)
    print(f"| {m} | {n} | {med(m, 'rps'):,.0f} | {med(m, 'p50_ms'):.2f} | {med(m, 'p99_ms'):.2f} |")
print(f"throughput with logging / without: {on / off:.3f} ({(1 - on / off) * 100:.1f}% cost); "
      f"impressions written {sys.argv[2]}, dropped {sys.argv[3]}")
PY
