#!/usr/bin/env bash
# bench/ann_pairs.sh - reco's HNSW against hnswlib on the same 1M x 64 vectors, as medians.
#
# One build of each (build time, memory; both save their graph), then PAIRS rounds of search
# that alternate reco and hnswlib on the saved graphs, so a slow spell of the machine hits both
# sides. Each round already reports the median of 5 passes over 1,000 queries per ef; the table
# gives the median over rounds and the ratio of queries/s.
#
# Usage: bench/ann_pairs.sh [PAIRS] [DIR] [N]   (default 5, /tmp/reco-ann, 1000000)
# Needs the peers venv (bench/peers/setup.sh). Run on an idle machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pairs="${1:-5}"
dir="${2:-/tmp/reco-ann}"
n="${3:-1000000}"
py="${RECO_PEERS_VENV:-$HOME/.cache/reco/peers-venv}/bin/python"
cargo build --release -p reco-ann --example ann_bench
bin=target/release/examples/ann_bench
log="$dir/pairs.jsonl"
mkdir -p "$dir"
rm -rf "$dir/graph-InnerProduct" "$dir/hnswlib-ip.bin"
"$bin" "$dir" "$n" 64 ip | sed 's/^/{"round":0,"row":/; s/$/}/' > "$log"
"$py" bench/peers/compare_hnswlib.py "$dir" 64 ip | sed 's/^/{"round":0,"row":/; s/$/}/' >> "$log"
for r in $(seq 1 "$pairs"); do
  "$bin" "$dir" "$n" 64 ip reuse | sed "s/^/{\"round\":$r,\"row\":/; s/\$/}/" >> "$log"
  "$py" bench/peers/compare_hnswlib.py "$dir" 64 ip reuse | sed "s/^/{\"round\":$r,\"row\":/; s/\$/}/" >> "$log"
done
"$py" - "$log" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
build = {r["row"]["index"]: r["row"] for r in rows if "build_s" in r["row"]}
qps, rec = {}, {}
for r in rows:
    x = r["row"]
    if "ef" in x and r["round"] > 0:
        qps.setdefault((x["index"], x["ef"]), []).append(x["queries_per_s"])
        rec[(x["index"], x["ef"])] = x["recall_at_10"]
rounds = max(r["round"] for r in rows)
print(f"median of {rounds} alternating rounds (each the median of 5 passes x 1,000 queries)\n")
print("| ef | reco recall@10 | reco queries/s | hnswlib recall@10 | hnswlib queries/s | ratio |")
print("|---|---|---|---|---|---|")
for ef in sorted({k[1] for k in qps}):
    a = statistics.median(qps[("reco-hnsw", ef)])
    b = statistics.median(qps[("hnswlib", ef)])
    print(f"| {ef} | {rec[('reco-hnsw', ef)]:.4f} | {a:,.0f} | {rec[('hnswlib', ef)]:.4f} | {b:,.0f} | {a / b:.2f} |")
for k, v in build.items():
    print(f"\n{k}: build {v['build_s']} s on {v['threads']} threads, memory {v['memory_mb']} MB")
PY
