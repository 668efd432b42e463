#!/usr/bin/env bash
# The lectures' content DNN on MovieLens-100K: user features (age, gender, occupation) and item
# features (genres, release year, title words) → two 256-128-32 towers → L2-normalised dot
# product → rating; RMSE on a random 80/20 split (seed 42), next to the rating models that use
# ids. Needs data/ml-100k (scripts/fetch-movielens-100k.sh) and the peers venv for the metadata
# files (bench/peers/setup.sh).
# Usage: bench/content_dnn_rmse.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
W="${1:-/tmp/reco-neural}"
PY="${PYTHON:-$HOME/.cache/reco/peers-venv/bin/python}"
cargo build --release -q -p reco-cli
R=./target/release/reco
mkdir -p "$W"
"$PY" bench/peers/compare_neural.py --protocols '' --cold '' --workdir "$W" > /dev/null
[ -f "$W/holdout-0.2/train.csv" ] || $R data split --data data/ml-100k --protocol holdout:0.2 --seed 42 --out "$W/holdout-0.2" > /dev/null
F=(--items "$W/items.csv" --title-col title --text-col title --category-col 'genres:|' --numeric-col year
   --users "$W/users.csv" --user-numeric-col age --user-category-col gender --user-category-col occupation)
$R eval --splits "$W/holdout-0.2" "${F[@]}" --ratings-only --json \
  --model '{"model":"content-dnn","name":"content-dnn"}' \
  --model '{"model":"content-dnn","name":"content-dnn+ids","user_identity":true,"item_identity":true}' \
  --model '{"model":"two-tower","name":"two-tower-mse-ids-only","loss":"mse","user_fields":[],"item_fields":[],"recent_items":0,"temperature":1.0,"epochs":30,"batch_size":256,"learning_rate":0.001}' \
  --model '{"model":"fm","name":"fm+features"}' \
  --model '{"model":"svd","name":"svd"}' \
  --model '{"model":"baseline","name":"baseline"}' > "$W/rmse.json"
"$PY" - "$W/rmse.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("| model | RMSE | MAE | fit s |\n|---|---|---|---|")
for m in r["models"]:
    x = m["metrics"]
    print(f"| {m['name']} | {x['rmse']['mean']:.4f} | {x['mae']['mean']:.4f} | {sum(m['fit_seconds']):.1f} |")
PY
