#!/usr/bin/env bash
# Popularity on MovieLens-100K leave-last-one-out: reco vs a plain-Python count, on the same
# split files. Prints both metric sets and compares the ranked lists item by item.
# Needs: scripts/fetch-movielens-100k.sh and bench/peers/setup.sh run first, and a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${RECO_PEERS_VENV:-$HOME/.cache/reco/peers-venv}/bin/python"
RECO=./target/release/reco
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$RECO" data split --data data/ml-100k --protocol loo --out "$OUT/split"
"$RECO" eval --train "$OUT/split/train.csv" --test "$OUT/split/test.csv" --model popularity --k 10 --no-auc --out "$OUT/reco" > /dev/null
echo "reco:"
"$PY" -c "import json,sys; m=json.load(open(sys.argv[1]))['models'][0]['metrics']; print({k: round(m[k]['mean'], 6) for k in ['precision@10','recall@10','ndcg@10','map@10','mrr@10','hit_rate@10']})" "$OUT/reco/results.json"
echo "plain Python count:"
"$PY" bench/peers/popularity_loo.py "$OUT/split/train.csv" "$OUT/split/test.csv" --k 10 --out "$OUT/py.run"
# Same users, same items, same ranks (scores are printed differently, so compare columns 1-4).
if diff <(awk '{print $1, $3, $4}' "$OUT/reco/runs/popularity.fold0.run" | sort) <(awk '{print $1, $3, $4}' "$OUT/py.run" | sort) > /dev/null; then
  echo "ranked lists: identical"
else
  echo "ranked lists: DIFFER"; exit 1
fi
