#!/usr/bin/env python3
"""hnswlib on the vectors reco's ANN benchmark wrote, with the same ground truth.

Usage (after bench/peers/setup.sh and the reco side, which writes the files):
    cargo run --release -p reco-ann --example ann_bench -- /tmp/reco-ann 1000000 64 ip
    ~/.cache/reco/peers-venv/bin/python bench/peers/compare_hnswlib.py /tmp/reco-ann 64 ip [reuse]

With `reuse`, the index saved by an earlier run (DIR/hnswlib-METRIC.bin) is loaded, not built.

Prints one JSON line per ef: recall@10 against reco's exact top-10, and single-thread
queries/s (one query per call, as a recommender serves them), plus build time and memory.
Every ef runs the query set PASSES times and reports the median pass, as the reco side does.
"""
import json
import os
import resource
import sys
import time

import hnswlib
import numpy as np

QUERIES, K, PASSES = 1000, 10, 5


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/reco-ann"
    dim = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    metric = sys.argv[3] if len(sys.argv) > 3 else "ip"
    reuse = len(sys.argv) > 4 and sys.argv[4] == "reuse"
    space, truth_name = {"ip": ("ip", "InnerProduct"), "cosine": ("cosine", "Cosine"),
                         "l2": ("l2", "L2")}[metric]
    base = np.fromfile(f"{d}/base.f32", dtype="<f4").reshape(-1, dim)
    queries = np.fromfile(f"{d}/queries.f32", dtype="<f4").reshape(-1, dim)
    truth = np.fromfile(f"{d}/truth-{truth_name}.u32", dtype="<u4").reshape(-1, K)
    n = base.shape[0]
    saved = f"{d}/hnswlib-{metric}.bin"
    index = hnswlib.Index(space=space, dim=dim)
    if reuse and os.path.exists(saved):
        index.load_index(saved, max_elements=n)
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        index.init_index(max_elements=n, M=16, ef_construction=200)
        t0 = time.perf_counter()
        index.add_items(base, np.arange(n), num_threads=2)
        build = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"index": "hnswlib", "build_s": round(build, 1),
                          "memory_mb": round((after - before) / 1e3), "threads": 2}))
        index.save_index(saved)
    index.set_num_threads(1)
    for ef in [16, 32, 64, 128, 256, 512]:
        index.set_ef(max(ef, K))
        rates = []
        for _ in range(PASSES):
            # Only the calls are timed; recall is counted afterwards.
            t0 = time.perf_counter()
            answers = [index.knn_query(queries[q:q + 1], k=K)[0] for q in range(QUERIES)]
            rates.append(QUERIES / (time.perf_counter() - t0))
            found = sum(len(set(a[0].tolist()) & set(truth[q].tolist()))
                        for q, a in enumerate(answers))
        rates.sort()
        print(json.dumps({"index": "hnswlib", "ef": ef, "recall_at_10": round(found / (QUERIES * K), 4),
                          "queries_per_s": round(rates[PASSES // 2])}))


if __name__ == "__main__":
    main()
