"""Seconds per iteration and peak memory of implicit's ALS (64 factors) and BPR (64 factors) on a
reco split file, for the scale comparison in BENCHMARKS.md.

Usage: python bench/peers/implicit_mf_scale.py TRAIN_CSV [als|bpr] [ITERATIONS]
"""
import resource
import sys
import time
import warnings

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

warnings.filterwarnings("ignore")
path, kind = sys.argv[1], sys.argv[2]
iters = int(sys.argv[3]) if len(sys.argv) > 3 else 3
tr = pd.read_csv(path, usecols=["user", "item"], dtype={"user": str, "item": str})
u = pd.factorize(tr["user"])[0]
i = pd.factorize(tr["item"])[0]
ui = csr_matrix((np.ones(len(tr), dtype=np.float32), (u, i)))
if kind == "als":
    from implicit.als import AlternatingLeastSquares
    model = AlternatingLeastSquares(factors=64, iterations=iters, regularization=0.05, random_state=1)
else:
    from implicit.bpr import BayesianPersonalizedRanking
    model = BayesianPersonalizedRanking(factors=64, iterations=iters, random_state=1)
t0 = time.perf_counter()
model.fit(ui, show_progress=False)
secs = time.perf_counter() - t0
print(f"implicit {kind}: {iters} iterations in {secs:.2f} s = {secs / iters:.2f} s/iteration; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
