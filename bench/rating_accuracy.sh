#!/usr/bin/env bash
# bench/rating_accuracy.sh - the strongest rating models on MovieLens-100K, 5-fold random split
# of all ratings, mean RMSE over folds.
#
# Usage: bench/rating_accuracy.sh [--no-tune]
#
# Rows with defaults run `reco eval` on the folds of `reco data split --protocol kfold:5`. Tuned
# rows run `reco tune --protocol kfold:5` (nested: each outer fold's search scores trials on a
# validation split of that fold's training part only; its winner is refitted and scored once on
# the fold's test part) with examples/tune-bpmf.toml and examples/tune-stack.toml. Needs
# data/ml-100k (scripts/fetch-movielens-100k.sh) and a release build.
set -euo pipefail
reco="${RECO:-./target/release/reco}"
work="${WORK:-/tmp/reco-ratings}"
mkdir -p "$work"
[ -f "$work/k5/fold-1/train.csv" ] || "$reco" data split --data data/ml-100k --protocol kfold:5 --out "$work/k5" >/dev/null
metric() { python3 -c "import json,sys; m=json.load(sys.stdin)['models'][0]; print('%.4f %.4f %.1f' % (m['metrics']['rmse']['mean'], m['metrics']['mae']['mean'], sum(m['fit_seconds'])/len(m['fit_seconds'])))"; }
iknn='{"name":"item-knn","model":"item-knn","similarity":"pearson-baseline","prediction":"baseline"}'
uknn='{"name":"user-knn","model":"user-knn","similarity":"pearson-baseline","prediction":"baseline"}'
rows=(
  "svdpp (Surprise defaults)|{\"model\":\"svdpp\"}"
  "item-knn baseline, Pearson-baseline|$iknn"
  "bpmf (10 f, 20 + 80 sweeps)|{\"model\":\"bpmf\"}"
  "stack: bpmf + item-knn|{\"model\":\"stack\",\"models\":[{\"name\":\"bpmf\",\"model\":\"bpmf\"},$iknn]}"
  "stack: bpmf + item-knn + user-knn + svdpp|{\"model\":\"stack\",\"models\":[{\"name\":\"bpmf\",\"model\":\"bpmf\"},$iknn,$uknn,{\"name\":\"svdpp\",\"model\":\"svdpp\"}]}"
)
echo "| model | RMSE | MAE | fit s / fold |"
echo "|---|---|---|---|"
for r in "${rows[@]}"; do
  read -r rmse mae fit < <("$reco" eval --splits "$work/k5" --ratings-only --json --model "${r#*|}" 2>/dev/null | metric)
  echo "| ${r%%|*} | $rmse | $mae | $fit |"
done
[ "${1:-}" = "--no-tune" ] && exit 0
for t in bpmf stack; do
  start=$(date +%s)
  out=$("$reco" tune --data data/ml-100k --protocol kfold:5 --space "examples/tune-$t.toml" --out "$work/tune-$t" --parallel 1 --json 2>/dev/null)
  rmse=$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); print('%.4f' % d['test_mean'])" "$out")
  echo "| $t, tuned in each training fold (nested, $(( $(date +%s) - start )) s in all) | $rmse | | |"
done
