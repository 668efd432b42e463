#!/usr/bin/env python3
"""hnswlib on the vectors reco's ANN benchmark wrote, with the same ground truth.

Usage (after bench/peers/setup.sh and the reco side, which writes the files):
    cargo run --release -p reco-ann --example ann_bench -- /tmp/reco-ann 1000000 64 ip
    ~/.cache/reco/peers-venv/bin/python bench/peers/compare_hnswlib.py /tmp/reco-ann 64 ip

Prints one JSON line per ef: recall@10 against reco's exact top-10, and single-thread
queries/s (one query per call, as a recommender serves them), plus build time and memory.
"""
import json
import resource
import sys
import time

import hnswlib
import numpy as np

QUERIES, K = 1000, 10


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/reco-ann"
    dim = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    metric = sys.argv[3] if len(sys.argv) > 3 else "ip"
    space, truth_name = {"ip": ("ip", "InnerProduct"), "cosine": ("cosine", "Cosine"),
                         "l2": ("l2", "L2")}[metric]
    base = np.fromfile(f"{d}/base.f32", dtype="<f4").reshape(-1, dim)
    queries = np.fromfile(f"{d}/queries.f32", dtype="<f4").reshape(-1, dim)
    truth = np.fromfile(f"{d}/truth-{truth_name}.u32", dtype="<u4").reshape(-1, K)
    n = base.shape[0]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    index = hnswlib.Index(space=space, dim=dim)
    index.init_index(max_elements=n, M=16, ef_construction=200)
    t0 = time.perf_counter()
    index.add_items(base, np.arange(n), num_threads=2)
    build = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"index": "hnswlib", "build_s": round(build, 1),
                      "memory_mb": round((after - before) / 1e3), "threads": 2}))
    index.set_num_threads(1)
    for ef in [16, 32, 64, 128, 256, 512]:
        index.set_ef(max(ef, K))
        t0 = time.perf_counter()
        found = 0
        for q in range(QUERIES):
            labels, _ = index.knn_query(queries[q:q + 1], k=K)
            found += len(set(labels[0].tolist()) & set(truth[q].tolist()))
        secs = time.perf_counter() - t0
        print(json.dumps({"index": "hnswlib", "ef": ef, "recall_at_10": round(found / (QUERIES * K), 4),
                          "queries_per_s": round(QUERIES / secs)}))


if __name__ == "__main__":
    main()
