#!/usr/bin/env bash
# Two reco binaries on the same MovieLens-100K evaluations: every metric of every model must be
# the same, and fit times are compared. For refactors that must not move a figure.
#
# Usage: bench/same_results.sh OLD_RECO NEW_RECO [RUNS]   (run on an idle machine)
#
# The specs use the parameter names both binaries accept (older names are still read, with a
# warning). Prints, per model: the largest metric difference between the two binaries and the
# median fit time of each over RUNS alternating runs (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1 NEW=$2 RUNS=${3:-3}
DATA=data/ml-100k
[ -f "$DATA/ml-100k.inter" ] || scripts/fetch-movielens-100k.sh > /dev/null
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
rating=(
  '{"name":"baseline-als","model":"baseline"}'
  '{"name":"knn-baseline-item","model":"item-knn","similarity":"pearson-baseline","prediction":"baseline"}'
  '{"name":"knn-means-user","model":"user-knn","similarity":"msd","prediction":"with-means"}'
  '{"name":"slope-one","model":"slope-one","weighted":false}'
  '{"name":"svd","model":"svd","factors":100,"epochs":20}'
  '{"name":"svdpp","model":"svdpp"}'
  '{"name":"nmf","model":"nmf"}'
  '{"name":"fm","model":"fm"}'
)
ranking=(
  '{"name":"item-knn-bm25","model":"item-knn","similarity":"bm25","max_neighbours":100}'
  '{"name":"ials","model":"ials","factors":64,"iterations":15,"alpha":9.0}'
  '{"name":"bpr","model":"bpr","factors":64,"epochs":100}'
  '{"name":"lmf","model":"lmf"}'
  '{"name":"ease","model":"ease"}'
  '{"name":"rp3beta","model":"rp3beta"}'
  '{"name":"covisit","model":"covisit","source":"histories"}'
  '{"name":"content","model":"content"}'
  '{"name":"hybrid-warp","model":"hybrid","user_fields":[]}'
)
run() { # binary, out dir, protocol args..., then specs
  local bin=$1 out=$2; shift 2
  "$bin" eval --data "$DATA" --out "$out" --no-auc "$@" > /dev/null 2> "$out.err"
}
args_of() { local a=(); for s in "$@"; do a+=(--model "$s"); done; printf '%s\0' "${a[@]}"; }
mapfile -d '' RATING < <(args_of "${rating[@]}")
mapfile -d '' RANKING < <(args_of "${ranking[@]}")
for r in $(seq 1 "$RUNS"); do
  for side in old new; do
    bin=$OLD; [ "$side" = new ] && bin=$NEW
    run "$bin" "$W/$side-rating-$r" --protocol kfold:5 --ratings-only "${RATING[@]}"
    run "$bin" "$W/$side-ranking-$r" --protocol loo --threshold 1 --k 10 "${RANKING[@]}"
  done
done
python3 - "$W" "$RUNS" <<'PY'
import json, statistics, sys
w, runs = sys.argv[1], int(sys.argv[2])
def load(side, kind, r):
    return {m["name"]: m for m in json.load(open(f"{w}/{side}-{kind}-{r}/results.json"))["models"]}
print(f"{'model':<20} {'metrics':>7} {'max |diff|':>11} {'old fit s':>10} {'new fit s':>10} {'new/old':>8}")
worst = 0.0
for kind in ("rating", "ranking"):
    old = [load("old", kind, r) for r in range(1, runs + 1)]
    new = [load("new", kind, r) for r in range(1, runs + 1)]
    for name in old[0]:
        a, b = old[0][name]["metrics"], new[0][name]["metrics"]
        assert set(a) == set(b), (name, set(a) ^ set(b))
        diff = max(abs(a[k]["mean"] - b[k]["mean"]) for k in a)
        worst = max(worst, diff)
        to = statistics.median(sum(o[name]["fit_seconds"]) for o in old)
        tn = statistics.median(sum(n[name]["fit_seconds"]) for n in new)
        print(f"{name:<20} {len(a):>7} {diff:>11.2e} {to:>10.3f} {tn:>10.3f} {tn / to:>8.2f}")
print(f"largest metric difference: {worst:.2e}")
PY
