"""Fit time of implicit's CosineRecommender(K=100) on a reco split file (the scale comparison in BENCHMARKS.md).

Usage: python bench/peers/implicit_knn_scale.py TRAIN_CSV RUNS
"""
import sys, time, resource, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd
from scipy.sparse import csr_matrix
from implicit.nearest_neighbours import CosineRecommender
tr = pd.read_csv(sys.argv[1], usecols=["user", "item"], dtype={"user": str, "item": str})
u = pd.factorize(tr["user"])[0]; i = pd.factorize(tr["item"])[0]
ui = csr_matrix((np.ones(len(tr), dtype=np.float32), (u, i)))
times = []
for _ in range(int(sys.argv[2])):
    m = CosineRecommender(K=100)
    t0 = time.perf_counter(); m.fit(ui, show_progress=False); times.append(time.perf_counter() - t0)
print("implicit CosineRecommender K=100 fit seconds:", [round(t, 2) for t in times], "median", round(sorted(times)[len(times)//2], 2), "peak RSS GiB", round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2))
