#!/usr/bin/env bash
# bench/dp_tradeoff.sh - RMSE against privacy for DP-SGD biased MF on MovieLens-100K.
#
# Usage: bench/dp_tradeoff.sh [NOISE ...]     (default noise multipliers: 1 2 4 8 16)
#
# For each noise multiplier σ: 5-fold RMSE/MAE of `svd` with 10 factors trained with
# {"dp": {"noise": σ, "clip": 1, "batch_size": 5000, "delta": 1e-5}} (Surprise's other defaults), and
# the ε of the (ε, 1e-5) guarantee for one fold's training part (80,000 ratings), printed by
# `reco train`. The first row is the same model without privacy. Few factors and large batches
# suit private training: the noise grows with the number of parameters and of steps. Needs data/ml-100k
# (scripts/fetch-movielens-100k.sh) and a release build.
set -euo pipefail
reco="${RECO:-./target/release/reco}"
work="${WORK:-/tmp/reco-dp}"
noises=("$@")
[ ${#noises[@]} -eq 0 ] && noises=(1 2 4 8 16)
mkdir -p "$work"
[ -f "$work/k5/fold-1/train.csv" ] || "$reco" data split --data data/ml-100k --protocol kfold:5 --out "$work/k5" >/dev/null
metric() { python3 -c "import json,sys; m=json.load(sys.stdin)['models'][0]; print('%.4f %.4f %.1f' % (m['metrics']['rmse']['mean'], m['metrics']['mae']['mean'], sum(m['fit_seconds'])/len(m['fit_seconds'])))"; }
echo "| noise σ | ε (δ = 1e-5) | RMSE | MAE | fit s / fold |"
echo "|---|---|---|---|---|"
read -r rmse mae fit < <("$reco" eval --splits "$work/k5" --ratings-only --json --model '{"model":"svd","factors":10}' | metric)
echo "| no privacy | ∞ | $rmse | $mae | $fit |"
for s in "${noises[@]}"; do
  spec="{\"model\":\"svd\",\"factors\":10,\"dp\":{\"noise\":$s,\"clip\":1.0,\"batch_size\":5000,\"delta\":1e-5}}"
  eps=$("$reco" train --data "$work/k5/fold-1/train.csv" --model "$spec" --out "$work/m.reco" | sed -n 's/^privacy: (\([0-9.]*\),.*/\1/p')
  read -r rmse mae fit < <("$reco" eval --splits "$work/k5" --ratings-only --json --model "$spec" | metric)
  echo "| $s | $eps | $rmse | $mae | $fit |"
done
