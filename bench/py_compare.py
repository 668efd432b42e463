#!/usr/bin/env python3
"""reco's Python package beside implicit and Surprise, both called from Python in one process.

For each model: fit time, and the time to recommend 10 items to every user (implicit's batch
`recommend` against `reco.Model.recommend` on all users) or to predict every training rating
(Surprise's `test` against reco's batched `predict`), as medians of RUNS runs, with the ratio
peer / reco. Both sides get the same interactions: the MovieLens-100K ratings (binary for the
implicit models, ratings for the Surprise ones) or a 20M-interaction synthetic set.

Usage (the peers' virtualenv with reco installed: `pip install .` in it):
    python bench/py_compare.py --data data/ml-100k --runs 3
    python bench/py_compare.py --data synth:users=140000,items=27000,interactions=20000000 \
        --runs 1 --only als,bpr,cosine
"""

import argparse
import statistics
import time

import numpy as np
import scipy.sparse as sp

import reco


def timed(f, runs):
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def implicit_rows(data, runs, only):
    import implicit
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    u, i, _, _ = data._d.arrays()
    ui = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)),
                       shape=(data.n_users, data.n_items))
    binary = reco.Dataset.from_sparse(ui)
    users = np.arange(data.n_users)
    cases = {
        # implicit's confidence is alpha * r, reco's 1 + alpha * r: alpha 2 here is 1 there.
        "als": (lambda: AlternatingLeastSquares(factors=64, iterations=15, regularization=0.05,
                                                alpha=2.0, random_state=1),
                lambda: reco.IALS(factors=64, epochs=15, regularization=0.05, alpha=1.0)),
        "bpr": (lambda: BayesianPersonalizedRanking(factors=64, iterations=100, learning_rate=0.01,
                                                    regularization=0.01, random_state=1),
                lambda: reco.BPR(factors=64, epochs=100, learning_rate=0.01,
                                 regularization=0.01)),
        "cosine": (lambda: CosineRecommender(K=100),
                   lambda: reco.ItemKNN(similarity="vector-cosine", max_neighbours=100)),
        "bm25": (lambda: BM25Recommender(K=100, K1=1.2, B=0.75),
                 lambda: reco.ItemKNN(similarity="bm25", max_neighbours=100)),
    }
    for name, (peer, ours) in cases.items():
        if only and name not in only:
            continue
        pm = peer()
        pfit, _ = timed(lambda: pm.fit(ui, show_progress=False), runs)
        prec, _ = timed(lambda: pm.recommend(users, ui[users], N=10), runs)
        rm = ours()
        rfit, _ = timed(lambda: rm.fit(binary), runs)
        rrec, _ = timed(lambda: rm.recommend(binary.user_ids, n=10), runs)
        yield (f"implicit {implicit.__version__} {name}", pfit, rfit, prec, rrec)


def surprise_rows(data, runs, only):
    import surprise
    import pandas as pd

    u, i, r, _ = data.to_arrays()
    df = pd.DataFrame({"u": u, "i": i, "r": r})
    sdata = surprise.Dataset.load_from_df(df, surprise.Reader(rating_scale=(1, 5)))
    train = sdata.build_full_trainset()
    test = train.build_testset()
    rdata = reco.Dataset.from_arrays(u, i, r, feedback="explicit")
    cases = {
        "svd": (lambda: surprise.SVD(n_factors=100, n_epochs=20, random_state=1),
                lambda: reco.SVD(factors=100, epochs=20)),
        "svdpp": (lambda: surprise.SVDpp(n_factors=20, n_epochs=20, random_state=1),
                  lambda: reco.SVDpp(factors=20, epochs=20)),
        "knnbaseline": (lambda: surprise.KNNBaseline(k=40, sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False),
                        lambda: reco.Model({"model": "item-knn", "similarity": "pearson-baseline",
                                            "prediction": "baseline", "k": 40})),
        "baseline": (lambda: surprise.BaselineOnly(verbose=False),
                     lambda: reco.Model("baseline")),
    }
    for name, (peer, ours) in cases.items():
        if only and name not in only:
            continue
        pm = peer()
        pfit, _ = timed(lambda: pm.fit(train), runs)
        ppred, _ = timed(lambda: pm.test(test), runs)
        rm = ours()
        rfit, _ = timed(lambda: rm.fit(rdata), runs)
        rpred, _ = timed(lambda: rm.predict(u, i), runs)
        yield (f"surprise {surprise.__version__} {name}", pfit, rfit, ppred, rpred)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/ml-100k")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--peers", default="implicit,surprise")
    a = ap.parse_args()
    only = set(filter(None, a.only.split(",")))
    data = reco.synthetic(a.data[6:]) if a.data.startswith("synth:") else reco.load(a.data)
    print(f"{data!r}; median of {a.runs} runs; seconds")
    print("| model | peer fit | reco fit | fit ratio | peer recommend/predict all | reco | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    gens = []
    if "implicit" in a.peers:
        gens.append(implicit_rows(data, a.runs, only))
    if "surprise" in a.peers:
        gens.append(surprise_rows(data, a.runs, only))
    for g in gens:
        for name, pfit, rfit, pq, rq in g:
            print(f"| {name} | {pfit:.3f} | {rfit:.3f} | {pfit / rfit:.1f}× | {pq:.3f} | "
                  f"{rq:.3f} | {pq / rq:.1f}× |", flush=True)


if __name__ == "__main__":
    main()
