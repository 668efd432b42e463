"""Top-N on MovieLens-100K: reco's item-kNN (cosine, BM25), EASE, RP3β vs implicit 0.7
(CosineRecommender, BM25Recommender, K = 100) on the same split files.

Usage: python bench/peers/compare_topn.py [--protocols loo,temporal:0.2] [--runs 3]

Both sides see binary interactions (every training rating is a positive; reco reads the files
with --threshold 1) and rank unseen items for every test user; every test item is relevant.
Metrics use the definitions of docs/metrics.md (bench/recompute_metrics.py computes the implicit
side). Fit time is the median of N runs; implicit and reco both use all cores.
"""
import os

# implicit's advice: its own threads, not OpenBLAS's on top (set before numpy loads OpenBLAS).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import warnings  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.sparse import csr_matrix  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import recompute_metrics  # noqa: E402

RECO_MODELS = {
    "item-knn cosine (K=100)": {"model": "item-knn", "similarity": "vector-cosine", "max_neighbours": 100},
    "item-knn bm25 (K=100)": {"model": "item-knn", "similarity": "bm25", "max_neighbours": 100},
    # implicit's confidence is α·r, reco's 1 + α·r: on binary data implicit α = reco α + 1.
    "ials α=1 (64 f, 15 it, reg 0.05)": {"model": "ials", "factors": 64, "epochs": 15, "regularization": 0.05, "alpha": 0.0},
    "ials α=10": {"model": "ials", "factors": 64, "epochs": 15, "regularization": 0.05, "alpha": 9.0},
    "ials α=40": {"model": "ials", "factors": 64, "epochs": 15, "regularization": 0.05, "alpha": 39.0},
    "bpr (64 f, 100 epochs)": {"model": "bpr", "factors": 64, "epochs": 100, "learning_rate": 0.01, "regularization": 0.01},
    "lmf (30 f, 30 epochs)": {"model": "lmf"},
    "ease (λ=500)": {"model": "ease", "regularization": 500.0},
    "rp3beta (α=1, β=0.5)": {"model": "rp3beta"},
    "popularity": {"model": "popularity"},
}
PEER = {
    "item-knn cosine (K=100)": ("cosine", {}),
    "item-knn bm25 (K=100)": ("bm25", {}),
    "ials α=1 (64 f, 15 it, reg 0.05)": ("als", {"alpha": 1.0}),
    "ials α=10": ("als", {"alpha": 10.0}),
    "ials α=40": ("als", {"alpha": 40.0}),
    "bpr (64 f, 100 epochs)": ("bpr", {}),
    "lmf (30 f, 30 epochs)": ("lmf", {}),
}


def make_peer(kind, extra):
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
    if kind == "cosine":
        return CosineRecommender(K=100)
    if kind == "bm25":
        return BM25Recommender(K=100, K1=1.2, B=0.75)
    if kind == "als":
        return AlternatingLeastSquares(factors=64, iterations=15, regularization=0.05, alpha=extra["alpha"], random_state=42)
    if kind == "lmf":
        from implicit.lmf import LogisticMatrixFactorization
        return LogisticMatrixFactorization(factors=30, iterations=30, learning_rate=1.0, regularization=0.6, neg_prop=30, random_state=42)
    return BayesianPersonalizedRanking(factors=64, iterations=100, learning_rate=0.01, regularization=0.01, random_state=42)


def implicit_run(train_csv, test_csv, kind, extra=None, k=10):
    tr = pd.read_csv(train_csv, dtype={"user": str, "item": str})
    te = pd.read_csv(test_csv, dtype={"user": str, "item": str})
    users = {u: n for n, u in enumerate(dict.fromkeys(tr["user"]))}
    items = {i: n for n, i in enumerate(dict.fromkeys(tr["item"]))}
    inv_items = list(items)
    ui = csr_matrix((np.ones(len(tr), dtype=np.float32), (tr["user"].map(users), tr["item"].map(items))), shape=(len(users), len(items)))
    model = make_peer(kind, extra or {})
    t0 = time.perf_counter()
    model.fit(ui, show_progress=False)
    fit = time.perf_counter() - t0
    run, qrels = {}, {}
    for u, grp in te.groupby("user"):
        qrels[u] = {i: 1.0 for i in grp["item"]}
        if u in users:
            ids, _ = model.recommend(users[u], ui[users[u]], N=k, filter_already_liked_items=True)
            run[u] = [inv_items[i] for i in ids]
        else:
            run[u] = []
    vals = {"ndcg@10": [], "recall@10": []}
    for u, rel in qrels.items():
        m = recompute_metrics.metrics_at_k(run.get(u, []), rel, k)
        vals["ndcg@10"].append(m["ndcg"])
        vals["recall@10"].append(m["recall"])
    return {name: float(np.mean(v)) for name, v in vals.items()}, fit


def reco_run(reco, split_dir, spec, extra_args=()):
    """NDCG@10 and recall@10 of `reco eval` on a split directory, and the summed fit seconds."""
    out = subprocess.run([reco, "eval", "--splits", split_dir, "--threshold", "1", "--model", json.dumps(spec), "--k", "10", "--no-auc", "--json", *extra_args],
                         check=True, capture_output=True, text=True).stdout
    m = json.loads(out)["models"][0]
    return {"ndcg@10": m["metrics"]["ndcg@10"]["mean"], "recall@10": m["metrics"]["recall@10"]["mean"]}, sum(m["fit_seconds"])


def main():
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocols", default="loo,temporal:0.2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reco", default="./target/release/reco")
    ap.add_argument("--workdir", default="/tmp/reco-topn")
    ap.add_argument("--only", default="", help="comma-separated substrings of model names")
    args = ap.parse_args()
    for proto in args.protocols.split(","):
        d = os.path.join(args.workdir, proto.replace(":", "-"))
        if not os.path.exists(os.path.join(d, "train.csv")):
            subprocess.run([args.reco, "data", "split", "--data", "data/ml-100k", "--protocol", proto, "--out", d], check=True, capture_output=True)
        print(f"\n{proto}\n")
        print("| model | reco NDCG@10 | implicit NDCG@10 | reco recall@10 | implicit recall@10 | reco fit s | implicit fit s | speed-up |")
        print("|---|---|---|---|---|---|---|---|")
        for name, spec in RECO_MODELS.items():
            if args.only and not any(o in name for o in args.only.split(",")):
                continue
            runs = [reco_run(args.reco, d, spec) for _ in range(args.runs)]
            r_m, r_t = runs[0][0], statistics.median(r[1] for r in runs)
            if name in PEER:
                kind, extra = PEER[name]
                peer = [implicit_run(os.path.join(d, "train.csv"), os.path.join(d, "test.csv"), kind, extra) for _ in range(args.runs)]
                p_m, p_t = peer[0][0], statistics.median(p[1] for p in peer)
                print(f"| {name} | {r_m['ndcg@10']:.4f} | {p_m['ndcg@10']:.4f} | {r_m['recall@10']:.4f} | {p_m['recall@10']:.4f} | {r_t:.3f} | {p_t:.3f} | {p_t / r_t:.1f}× |", flush=True)
            else:
                print(f"| {name} | {r_m['ndcg@10']:.4f} | – | {r_m['recall@10']:.4f} | – | {r_t:.3f} | – | – |", flush=True)


if __name__ == "__main__":
    main()
