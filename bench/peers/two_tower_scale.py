"""Top-N accuracy of reco's two-tower model beside implicit's ALS on a large split (BENCHMARKS.md,
"Two-tower at 20M interactions"): both score every item of the catalogue for every test user
(exact top-k, training items excluded), computed here by the same numpy code from each side's
user and item vectors (reco's from `reco export-vectors`).

Usage: python bench/peers/two_tower_scale.py TRAIN_CSV TEST_CSV RECO_VECTORS_DIR [ALS_ITERATIONS]
"""
import os

# implicit's advice: its own threads, not OpenBLAS's on top (set before numpy loads OpenBLAS).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.sparse import csr_matrix  # noqa: E402

from compare_tfrs import read_tsv  # noqa: E402  (the same directory: `reco export-vectors` files)

warnings.filterwarnings("ignore")


def scores_of(user_vecs, item_vecs, train, test_rows, test_items, k_max=50, chunk=2048):
    """NDCG@10 and recall@50 (means over test users), top-k over the whole catalogue."""
    ndcg, recall = [], []
    discounts = 1.0 / np.log2(np.arange(2, k_max + 2))
    for start in range(0, len(test_rows), chunk):
        rows = test_rows[start:start + chunk]
        s = user_vecs[rows] @ item_vecs.T
        # Training items out of the ranking.
        sub = train[rows]
        s[np.repeat(np.arange(len(rows)), np.diff(sub.indptr)), sub.indices] = -np.inf
        top = np.argpartition(-s, k_max, axis=1)[:, :k_max]
        order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        for r, u in enumerate(rows):
            rel = test_items[u]
            hits = np.isin(top[r], rel)
            idcg = discounts[:min(len(rel), 10)].sum()
            ndcg.append((hits[:10] * discounts[:10]).sum() / idcg)
            recall.append(hits[:50].sum() / len(rel))
    return float(np.mean(ndcg)), float(np.mean(recall))


def main():
    train_path, test_path, vec_dir = sys.argv[1:4]
    iters = int(sys.argv[4]) if len(sys.argv) > 4 else 15
    tr = pd.read_csv(train_path, usecols=["user", "item"], dtype=str)
    te = pd.read_csv(test_path, usecols=["user", "item"], dtype=str)
    user_ids, users = read_tsv(os.path.join(vec_dir, "users.tsv"))
    item_ids, items = read_tsv(os.path.join(vec_dir, "items.tsv"))
    uidx = {u: n for n, u in enumerate(user_ids)}
    iidx = {i: n for n, i in enumerate(item_ids)}
    tr = tr[tr["user"].isin(uidx) & tr["item"].isin(iidx)]
    te = te[te["user"].isin(uidx) & te["item"].isin(iidx)]
    tu = tr["user"].map(uidx).to_numpy()
    ti = tr["item"].map(iidx).to_numpy()
    train = csr_matrix((np.ones(len(tr), dtype=np.float32), (tu, ti)), shape=(len(user_ids), len(item_ids)))
    test_items = {}
    for u, i in zip(te["user"].map(uidx), te["item"].map(iidx)):
        test_items.setdefault(u, []).append(i)
    test_items = {u: np.array(sorted(set(v))) for u, v in test_items.items()}
    test_rows = np.array(sorted(test_items))
    print(f"{len(user_ids)} users × {len(item_ids)} items, {train.nnz} training interactions, {len(test_rows)} test users")
    t0 = time.perf_counter()
    n, r = scores_of(users, items, train, test_rows, test_items)
    print(f"| reco two-tower | {n:.4f} | {r:.4f} | (scored in {time.perf_counter() - t0:.0f} s) |", flush=True)
    from implicit.als import AlternatingLeastSquares
    model = AlternatingLeastSquares(factors=64, iterations=iters, regularization=0.05, random_state=1)
    t0 = time.perf_counter()
    model.fit(train, show_progress=False)
    fit = time.perf_counter() - t0
    n, r = scores_of(np.asarray(model.user_factors), np.asarray(model.item_factors), train, test_rows, test_items)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"| implicit ALS (64 f, {iters} it, reg 0.05) | {n:.4f} | {r:.4f} | fit {fit:.0f} s, peak {peak:.2f} GiB |")


if __name__ == "__main__":
    main()
