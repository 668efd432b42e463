#!/usr/bin/env bash
# Training throughput of the neural models on a synthetic 1M-interaction set with features
# (20,000 users with age band and country, 10,000 items with category, year and price, text).
# Examples/s = interactions × epochs / (train wall time − load time); median of RUNS runs,
# with the binary's default (candle on one thread per operation, the towers side by side on
# two cores) and with candle on 1 and on 2 threads (RAYON_NUM_THREADS=1, 2). Then one full
# two-tower training with early stopping on a 5% validation split.
# Usage: bench/neural_throughput.sh [WORKDIR] [RUNS]   (run on an idle machine)
set -euo pipefail
cd "$(dirname "$0")/.."
W="${1:-/tmp/reco-neural-1m}"
RUNS="${2:-3}"
mkdir -p "$W"
cargo build --release -q -p reco-cli
R=./target/release/reco
if [ ! -f "$W/s1m/s1m.inter" ]; then
  $R data synth --preset scalable --users 20000 --items 10000 --interactions 1000000 --out "$W/s1m" --name s1m > /dev/null
fi
D="$W/s1m"
secs() { /usr/bin/time -f "%e" -o "$W/t.txt" "$@" > /dev/null 2> "$W/err.txt" || { cat "$W/err.txt"; exit 1; }; cat "$W/t.txt"; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
load=$(for _ in $(seq "$RUNS"); do secs $R data inspect --data "$D"; done | median)
nnz=$($R data inspect --data "$D" | awk '/^interactions/ { print $2 }')
echo "data: $nnz interactions; load ${load} s (median of $RUNS)"
echo
echo "| model | threads | epochs | train s (median) | examples/s |"
echo "|---|---|---|---|---|"
threads() { # "default" leaves RAYON_NUM_THREADS unset
  if [ "$1" = default ]; then (unset RAYON_NUM_THREADS; "${@:2}"); else (export RAYON_NUM_THREADS="$1"; "${@:2}"); fi
}
run() { # label, threads, epochs, spec
  local label=$1 th=$2 epochs=$3 spec=$4
  local t
  t=$(for _ in $(seq "$RUNS"); do threads "$th" secs $R train --data "$D" --model "$spec" --out "$W/model"; done | median)
  printf '| %s | %s | %s | %.1f | %.0f |\n' "$label" "$threads" "$epochs" "$(echo "$t - $load" | bc -l)" "$(echo "$nnz * $epochs / ($t - $load)" | bc -l)"
}
for th in default 1 2; do
  run "two-tower, features + ids + recent items (softmax)" $th 1 '{"model":"two-tower","epochs":1,"patience":0}'
done
run "two-tower, ids only (softmax)" default 1 '{"model":"two-tower","epochs":1,"user_fields":[],"item_fields":[],"recent_items":0}'
run "two-tower, features, sampled BCE (4 negatives)" default 1 '{"model":"two-tower","epochs":1,"loss":"bce"}'
run "content-dnn (features, MSE)" default 1 '{"model":"content-dnn","epochs":1}'
run "neural-cf (4 negatives)" default 1 '{"model":"neural-cf","epochs":1}'
# Cost per example at MovieLens-20M's id space (140k users, 27k items): 1M interactions over that
# catalogue, one epoch; an epoch of 20M interactions costs 20× this (the embedding tables train
# row-sparse, so a step costs about the same as on the smaller catalogue).
if [ ! -f "$W/s1m-wide/s1m-wide.inter" ]; then
  $R data synth --preset scalable --users 140000 --items 27000 --interactions 1000000 --out "$W/s1m-wide" --name s1m-wide > /dev/null
fi
wide_load=$(secs $R data inspect --data "$W/s1m-wide")
for spec in '{"model":"two-tower","epochs":1}' '{"model":"two-tower","epochs":1,"user_fields":[],"item_fields":[]}'; do
  for th in default 1 2; do
    t=$(for _ in $(seq "$RUNS"); do threads "$th" secs $R train --data "$W/s1m-wide" --model "$spec" --out "$W/model"; done | median)
    printf '140k users × 27k items, 1M interactions, %s, threads %s: %.1f s per epoch → %.0f examples/s\n' "$spec" "$th" "$(echo "$t - $wide_load" | bc -l)" "$(echo "1000000 / ($t - $wide_load)" | bc -l)"
  done
done
echo
echo "full training: two-tower with features, up to 20 epochs, early stopping (patience 3) on 5% validation, default threads"
t=$(secs $R train --data "$D" --model '{"model":"two-tower"}' --validation 0.05 --out "$W/model")
echo "wall ${t} s (including ${load} s of loading)"
