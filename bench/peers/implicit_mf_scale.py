"""Seconds per iteration and peak memory of implicit's ALS (64 factors) and BPR (64 factors) on a
reco split file, for the scale comparison in BENCHMARKS.md.

Usage: python bench/peers/implicit_mf_scale.py TRAIN_CSV [als|bpr] [ITERATIONS]
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
