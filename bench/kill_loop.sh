#!/usr/bin/env bash
# bench/kill_loop.sh - kill -9 during `reco train --out`, at random moments, N times; after each
# kill the target must either not exist (or be the previous complete model) or load and
# recommend. A directory that exists but does not load is a failure.
#
# Odd rounds train into the target with --force (a complete earlier model is being replaced),
# even rounds into an absent target; each waits a random time between 0 and the time one
# training takes, and sends SIGKILL.
# The model is small enough that the kill lands in every phase: loading data, fitting, and
# writing the artifact.
#
# Usage: bench/kill_loop.sh [N] [MODEL]   (default 50, a 16-factor ALS on synthetic data)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n="${1:-50}"
model="${2:-{\"model\":\"als\",\"factors\":16,\"epochs\":5}}"
[ -n "${RECO_BIN:-}" ] || cargo build --release -q -p reco-cli
reco="${RECO_BIN:-target/release/reco}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$reco" data synth --preset scalable --users 20000 --items 5000 --interactions 1000000 \
  --out "$work/data" > /dev/null 2>&1
data="$work/data"
start=$(date +%s%N)
"$reco" train --data "$data" --model "$model" --out "$work/model" > /dev/null 2>&1
full_ms=$(( ($(date +%s%N) - start) / 1000000 ))
user=$(sed -n 2p "$data/synth.inter" | cut -f1)
echo "one training: ${full_ms} ms" >&2
ok=0 absent=0 partial=0 complete_runs=0
for r in $(seq 1 "$n"); do
  delay=$(( RANDOM * full_ms / 32768 ))
  # Odd rounds replace a complete model (--force); even rounds create the directory afresh.
  force=--force
  if [ $((r % 2)) -eq 0 ]; then rm -rf "$work/model"; force=; fi
  "$reco" train --data "$data" --model "$model" --out "$work/model" $force > /dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v ms="$delay" 'BEGIN { printf "%.3f", ms / 1000 }')"
  if kill -9 "$pid" 2>/dev/null; then :; else complete_runs=$((complete_runs + 1)); fi
  wait "$pid" 2>/dev/null || true
  if [ ! -e "$work/model" ]; then
    absent=$((absent + 1))
  elif "$reco" recommend --model "$work/model" --user "$user" -k 5 > /dev/null 2>"$work/err"; then
    ok=$((ok + 1))
  else
    partial=$((partial + 1))
    echo "round $r (kill after ${delay} ms): the directory exists but does not load:" >&2
    cat "$work/err" >&2
  fi
  # The next (odd) round replaces a complete model: make one when this round left none.
  if [ ! -e "$work/model" ]; then
    "$reco" train --data "$data" --model "$model" --out "$work/model" > /dev/null 2>&1
  fi
done
leftovers=$(find "$work" -maxdepth 1 -name '.model.*' | wc -l)
printf '{"kills":%s,"finished_before_kill":%s,"loads":%s,"absent":%s,"exists_but_does_not_load":%s,"hidden_leftovers":%s,"train_ms":%s}\n' \
  "$n" "$complete_runs" "$ok" "$absent" "$partial" "$leftovers" "$full_ms"
[ "$partial" -eq 0 ]
