#!/usr/bin/env bash
# bench/serve_load.sh - load benchmark of `reco serve` on loopback (wrk from Debian).
#
# Starts a release `reco serve` on an SQLite file seeded from DATA with MODEL (no retraining
# during the run), waits until the model is trained, then measures, RUNS times each, for
# SECONDS each (bounded; loopback only):
#   recommend      GET /v1/recommend/{random known user}?n=10      req/s, p50, p99
#   feedback-1     POST /v1/feedback, 1 event per request          events/s acknowledged, p50, p99
#   feedback-100   POST /v1/feedback, 100 events per request       events/s acknowledged, p50, p99
# then a mixed load (90% recommend, 10% feedback of 1 event) for MIXED seconds with the
# freshness probe (bench/serve_probe.py) beside it and a retrain every RETRAIN_EVERY seconds
# (as `retrain.after_events` would), and the server's resident memory after it.
# Prints JSON lines and a markdown table of the medians.
#
# Usage: bench/serve_load.sh DATA USER_PREFIX N_USERS ITEM_PREFIX N_ITEMS [MODEL] [SECONDS] [RUNS] [MIXED]
#   MovieLens-100K: bench/serve_load.sh data/ml-100k "" 943 "" 1682
#     (user ids 1..943; the script skips id 0, which the data lacks)
#   20M-sized:      bench/serve_load.sh synth:users=140000,items=27000,interactions=20000000 u 140000 i 27000
# MODEL defaults to iALS 64 factors; SECONDS 20; RUNS 3; MIXED 600.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
data="${1:?DATA}"; uprefix="${2?USER_PREFIX}"; nusers="${3:?N_USERS}"
iprefix="${4?ITEM_PREFIX}"; nitems="${5:?N_ITEMS}"
default_model='{"model":"ials","factors":64,"epochs":15,"regularization":0.05,"alpha":2.0}'
model="${6:-$default_model}"
seconds="${7:-20}"; runs="${8:-3}"; mixed="${9:-600}"
port="${PORT:-18181}"
cargo build --release -p reco-cli >&2
bin=target/release/reco
work=$(mktemp -d /tmp/reco-serve-load.XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/serve.toml" <<TOML
listen = "127.0.0.1:$port"
database = "sqlite://$work/load.db"
[retrain]
after_events = 0
holdout_users = 2000
TOML
start=$(date +%s)
"$bin" serve --config "$work/serve.toml" --model "$model" --data "$data" > "$work/server.log" 2>&1 &
pid=$!
until curl -sf "127.0.0.1:$port/health/ready" > /dev/null; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 2
done
ready=$(( $(date +%s) - start ))
echo "{\"phase\":\"ready\",\"seconds\":$ready,\"rss_mib\":$(( $(awk '/VmRSS/{print $2}' /proc/$pid/status) / 1024 ))}"

# wrk scripts: random known users and items; one JSON line from done().
cat > "$work/common.lua" <<LUA
local uprefix, nusers, iprefix, nitems = "$uprefix", $nusers, "$iprefix", $nitems
math.randomseed(os.time())
function user() return uprefix .. tostring(math.random(1, nusers - 1)) end
function item() return iprefix .. tostring(math.random(1, nitems - 1)) end
function events(n)
  local t = {}
  for k = 1, n do
    t[k] = '{"user":"' .. user() .. '","item":"' .. item() .. '","type":"view"}'
  end
  return '{"events":[' .. table.concat(t, ",") .. ']}'
end
function done(summary, latency, requests)
  io.write(string.format('{"requests":%d,"seconds":%.2f,"errors":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
cat > "$work/recommend.lua" <<LUA
dofile("$work/common.lua")
request = function() return wrk.format("GET", "/v1/recommend/" .. user() .. "?n=10") end
LUA
for n in 1 100; do
cat > "$work/feedback$n.lua" <<LUA
dofile("$work/common.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function() return wrk.format("POST", "/v1/feedback", nil, events($n)) end
LUA
done
cat > "$work/mixed.lua" <<LUA
dofile("$work/common.lua")
wrk.headers["Content-Type"] = "application/json"
request = function()
  if math.random() < 0.9 then return wrk.format("GET", "/v1/recommend/" .. user() .. "?n=10") end
  return wrk.format("POST", "/v1/feedback", nil, events(1))
end
LUA

results="$work/results.jsonl"
# Recommendation runs first, on the model as trained (no live events yet, as right after a
# retrain); the feedback runs then leave every user with many live events, which the mixed
# phase measures.
for phase in recommend feedback1 feedback100; do
  for r in $(seq 1 "$runs"); do
    line=$(wrk -t1 -c16 -d"${seconds}s" -s "$work/$phase.lua" "http://127.0.0.1:$port" | tail -1)
    echo "{\"phase\":\"$phase\",\"run\":$r,${line#\{}" | tee -a "$results"
  done
done
# The feedback runs left every user with thousands of events the model has not learnt; a
# production server retrains after `retrain.after_events`. Retrain now, and every
# RETRAIN_EVERY seconds (default 120) during the mixed load, in the background as a server does.
curl -sf -XPOST "127.0.0.1:$port/v1/models/retrain" > "$work/retrain0.json"
( while sleep "${RETRAIN_EVERY:-120}"; do
    curl -s -XPOST "127.0.0.1:$port/v1/models/retrain" >> "$work/retrains.jsonl"; echo >> "$work/retrains.jsonl"
  done ) &
retrainer=$!
python3 bench/serve_probe.py "http://127.0.0.1:$port" "$uprefix" "$nusers" "$mixed" > "$work/probe.json" &
probe=$!
line=$(wrk -t1 -c16 -d"${mixed}s" -s "$work/mixed.lua" "http://127.0.0.1:$port" | tail -1)
wait "$probe"
kill "$retrainer" 2>/dev/null || true
echo "{\"phase\":\"retrains\",\"during_mixed\":$(grep -c version "$work/retrains.jsonl" 2>/dev/null || echo 0)}" | tee -a "$results"
rss=$(( $(awk '/VmRSS/{print $2}' /proc/$pid/status) / 1024 ))
echo "{\"phase\":\"mixed\",\"rss_mib_after\":$rss,${line#\{}" | tee -a "$results"
echo "{\"phase\":\"freshness\",$(tail -c +2 "$work/probe.json")" | tee -a "$results"
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| phase | runs | req/s | events/s | p50 ms | p99 ms | errors |")
print("|---|---:|---:|---:|---:|---:|---:|")
for phase, per in (("recommend", 1), ("feedback1", 1), ("feedback100", 100)):
    rs = [r for r in rows if r["phase"] == phase]
    if not rs:
        continue
    med = lambda k: statistics.median(r[k] for r in rs)
    rps = statistics.median(r["requests"] / r["seconds"] for r in rs)
    print(f"| {phase} | {len(rs)} | {rps:,.0f} | {rps * per:,.0f} | {med('p50_ms'):.2f} | {med('p99_ms'):.2f} | {sum(r['errors'] for r in rs)} |")
PY
