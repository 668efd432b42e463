#!/usr/bin/env bash
# Scale check at MovieLens-20M size: generate 20M synthetic interactions (140k users, 27k items),
# then time and measure peak memory of (1) loading the RecBole files, (2) loading the same rows as
# a 20M-line ratings CSV, (3) load + temporal split + popularity evaluation.
# Usage: bench/scale.sh [WORKDIR]   (needs ~2 GB of disk; run on an idle machine)
set -euo pipefail
cd "$(dirname "$0")/.."
W="${1:-/tmp/reco-scale}"
mkdir -p "$W"
cargo build --release -q -p reco-cli
R=./target/release/reco
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$W/time.txt" "$@" > "$W/out.txt"
  read -r secs kb < "$W/time.txt"
  printf '%-42s %8.1f s %8.2f GiB peak\n' "$label" "$secs" "$(echo "$kb / 1048576" | bc -l)"
}
if [ ! -f "$W/s20m/s20m.inter" ]; then
  measure "synth 20M (generate + write files)" $R data synth --preset scalable --users 140000 --items 27000 --interactions 20000000 --out "$W/s20m" --name s20m
fi
if [ ! -f "$W/ratings.csv" ]; then
  awk -F'\t' 'NR == 1 { print "userId,movieId,rating,timestamp"; next } { print $1 "," $2 "," $3 "," $4 }' "$W/s20m/s20m.inter" > "$W/ratings.csv"
fi
measure "load RecBole dir (inter+item+user+session)" $R data inspect --data "$W/s20m"
measure "load 20M-row ratings.csv" $R data inspect --data "$W/ratings.csv"
measure "load + temporal:0.2 + popularity eval" $R eval --data "$W/ratings.csv" --protocol temporal:0.2 --model popularity --k 10 --no-auc
measure "load + temporal:0.2 + popularity eval + AUC" $R eval --data "$W/ratings.csv" --protocol temporal:0.2 --model popularity --k 10
