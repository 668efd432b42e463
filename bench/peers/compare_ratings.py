"""Rating prediction on MovieLens-100K 5-fold: reco vs Surprise on the same split files.

Usage: python bench/peers/compare_ratings.py [--splits DIR] [--reco PATH] [--runs N]

Writes the split with `reco data split --protocol kfold:5` unless DIR already holds one, runs
every pair (reco spec, Surprise algorithm with the same parameters), and prints RMSE, MAE,
fit+predict seconds (median of N runs) and the time ratio Surprise / reco.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import surprise_ratings  # noqa: E402

PAIRS = [
    ("baseline", {"model": "baseline"}),
    ("baseline-sgd", {"model": "baseline", "method": "sgd"}),
    ("knn-basic", {"model": "user-knn", "similarity": "msd"}),
    ("knn-with-means", {"model": "user-knn", "similarity": "msd", "prediction": "with-means"}),
    ("knn-with-zscore", {"model": "user-knn", "similarity": "msd", "prediction": "with-zscore"}),
    ("knn-baseline", {"model": "user-knn", "similarity": "msd", "prediction": "baseline"}),
    ("item-knn-basic-cosine", {"model": "item-knn", "similarity": "cosine"}),
    ("item-knn-means-pearson", {"model": "item-knn", "similarity": "pearson", "prediction": "with-means"}),
    ("item-knn-baseline-pb", {"model": "item-knn", "similarity": "pearson-baseline", "prediction": "baseline"}),
    ("slope-one", {"model": "slope-one", "weighted": False}),
    ("svd", {"model": "svd"}),
    ("nmf", {"model": "nmf"}),
    ("svdpp", {"model": "svdpp"}),
    ("coclustering", {"model": "coclustering"}),
]


def run_reco(reco, splits, spec):
    out = subprocess.run([reco, "eval", "--splits", splits, "--model", json.dumps(spec), "--ratings-only", "--json"],
                         check=True, capture_output=True, text=True).stdout
    m = json.loads(out)["models"][0]
    return m["metrics"]["rmse"]["mean"], m["metrics"]["mae"]["mean"], sum(m["fit_seconds"]) + m["predict_seconds"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--splits", default="/tmp/reco-ml100k-kfold5")
    ap.add_argument("--reco", default="./target/release/reco")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(args.splits, "fold-1")):
        subprocess.run([args.reco, "data", "split", "--data", "data/ml-100k", "--protocol", "kfold:5", "--out", args.splits], check=True)
    print(f"| algorithm | reco RMSE | Surprise RMSE | reco MAE | Surprise MAE | reco s | Surprise s | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for name, spec in PAIRS:
        if args.only and name not in args.only.split(","):
            continue
        reco_runs = [run_reco(args.reco, args.splits, spec) for _ in range(args.runs)]
        sur_runs = [surprise_ratings.run(name, args.splits) for _ in range(args.runs)]
        r_rmse, r_mae = reco_runs[0][0], reco_runs[0][1]
        s_rmse, s_mae = sur_runs[0]["rmse"], sur_runs[0]["mae"]
        r_t = statistics.median(r[2] for r in reco_runs)
        s_t = statistics.median(s["seconds"] for s in sur_runs)
        print(f"| {name} | {r_rmse:.4f} | {s_rmse:.4f} | {r_mae:.4f} | {s_mae:.4f} | {r_t:.3f} | {s_t:.2f} | {s_t / r_t:.0f}× |", flush=True)


if __name__ == "__main__":
    main()
