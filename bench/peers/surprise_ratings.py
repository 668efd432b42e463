"""Surprise on reco's k-fold split files: RMSE, MAE and fit+predict time per algorithm.

Usage: python bench/peers/surprise_ratings.py SPLIT_DIR [--algos baseline,knn-basic,...] [--json]

SPLIT_DIR holds fold-N/train.csv and fold-N/test.csv written by
`reco data split --protocol kfold:5 --out SPLIT_DIR`. Every algorithm is run with Surprise's
defaults except where the name says otherwise, and predictions are clipped to the rating scale
as Surprise's `test` does.
"""
import argparse
import glob
import json
import os
import time

import numpy as np
import pandas as pd
from surprise import (BaselineOnly, CoClustering, Dataset, KNNBaseline, KNNBasic, KNNWithMeans,
                      KNNWithZScore, NMF, Reader, SlopeOne, SVD, SVDpp)

ALGOS = {
    "baseline": lambda: BaselineOnly(verbose=False),
    "baseline-sgd": lambda: BaselineOnly(bsl_options={"method": "sgd"}, verbose=False),
    "knn-basic": lambda: KNNBasic(verbose=False),
    "knn-with-means": lambda: KNNWithMeans(verbose=False),
    "knn-with-zscore": lambda: KNNWithZScore(verbose=False),
    "knn-baseline": lambda: KNNBaseline(verbose=False),
    "item-knn-basic-cosine": lambda: KNNBasic(sim_options={"name": "cosine", "user_based": False}, verbose=False),
    "item-knn-means-pearson": lambda: KNNWithMeans(sim_options={"name": "pearson", "user_based": False}, verbose=False),
    "item-knn-baseline-pb": lambda: KNNBaseline(sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False),
    "slope-one": lambda: SlopeOne(),
    "svd": lambda: SVD(),
    "nmf": lambda: NMF(),
    "svdpp": lambda: SVDpp(),
    "coclustering": lambda: CoClustering(),
}


def run(name, split_dir):
    """Runs one algorithm on every fold; RMSE and MAE pooled over all test ratings, as reco does."""
    folds = sorted(glob.glob(os.path.join(split_dir, "fold-*")), key=lambda p: int(p.rsplit("-", 1)[1]))
    if not folds:
        raise SystemExit(f"no fold-N directories in {split_dir}")
    reader = Reader(rating_scale=(1, 5))
    errs, secs = [], 0.0
    for fold in folds:
        tr = pd.read_csv(os.path.join(fold, "train.csv"), dtype={"user": str, "item": str})
        te = pd.read_csv(os.path.join(fold, "test.csv"), dtype={"user": str, "item": str})
        trainset = Dataset.load_from_df(tr[["user", "item", "rating"]], reader).build_full_trainset()
        testset = list(te[["user", "item", "rating"]].itertuples(index=False, name=None))
        algo = ALGOS[name]()
        t0 = time.perf_counter()
        algo.fit(trainset)
        preds = algo.test(testset)
        secs += time.perf_counter() - t0
        errs.extend(p.est - p.r_ui for p in preds)
    e = np.array(errs)
    return {"rmse": float(np.sqrt(np.mean(e ** 2))), "mae": float(np.mean(np.abs(e))), "seconds": secs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("split_dir")
    ap.add_argument("--algos", default=",".join(ALGOS))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = {}
    for name in args.algos.split(","):
        out[name] = run(name, args.split_dir)
        if not args.json:
            print(f"{name:28s} rmse {out[name]['rmse']:.4f}  mae {out[name]['mae']:.4f}  fit+predict {out[name]['seconds']:.2f} s")
    if args.json:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
