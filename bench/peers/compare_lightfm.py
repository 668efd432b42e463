"""Top-N on MovieLens-100K: reco's hybrid model vs LightFM 1.17 on the same split files.

Usage: python bench/peers/compare_lightfm.py [--protocols loo,temporal:0.2,cold-items:0.2]
                                             [--runs 3] [--threads 1,2] [--only warp]

Both sides see binary interactions (every training rating is a positive; reco reads the files
with --threshold 1), the same hyper-parameters (32 components, 30 epochs, AdaGrad lr 0.05,
max_sampled 10, no regularisation) and, for the "+ genres, year" rows, the same item features:
an identity feature plus one feature per genre and one per release year, rows normalised to sum
1 (LightFM's Dataset default). reco gives identity features only to items with training data;
LightFM gives every item one (its documented behaviour).

Every unseen item is ranked for every test user, except on cold-item splits, where both sides
rank only the held-out items (reco reads them from candidates.csv, written by `reco data
split`). Metrics follow docs/metrics.md (bench/recompute_metrics.py computes the LightFM side).
Fit time is the median of N runs; threads = 1 is reco's `parallel = false` against LightFM's
num_threads = 1, threads = 2 is Hogwild on both sides.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import recompute_metrics  # noqa: E402
from compare_topn import reco_run  # noqa: E402

COMMON = {"factors": 32, "epochs": 30, "learning_rate": 0.05, "max_sampled": 10, "user_fields": []}
MODELS = {
    "warp": ({"loss": "warp", "item_fields": []}, {"loss": "warp"}, False),
    "warp + genres, year": ({"loss": "warp", "item_fields": ["*"]}, {"loss": "warp"}, True),
    "bpr": ({"loss": "bpr", "item_fields": []}, {"loss": "bpr"}, False),
    "k-os warp (k=5, n=10)": ({"loss": "kos-warp", "item_fields": []}, {"loss": "warp-kos", "k": 5, "n": 10}, False),
}


def item_metadata(path, out):
    """RecBole's ml-100k.item → item,genres,year (genres joined with '|')."""
    df = pd.read_csv(path, sep="\t", dtype=str).fillna("")
    meta = pd.DataFrame({
        "item": df["item_id:token"],
        "genres": df["class:token_seq"].str.split().str.join("|"),
        "year": df["release_year:token"],
    })
    meta.to_csv(out, index=False)
    return {r.item: [f"genres={g}" for g in r.genres.split("|") if g] + ([f"year={r.year}"] if r.year else []) for r in meta.itertuples()}


def lightfm_run(d, meta, peer, features, threads, k=10):
    from lightfm import LightFM
    from lightfm.data import Dataset
    tr = pd.read_csv(os.path.join(d, "train.csv"), dtype={"user": str, "item": str})
    te = pd.read_csv(os.path.join(d, "test.csv"), dtype={"user": str, "item": str})
    cands_path = os.path.join(d, "candidates.csv")
    cands = pd.read_csv(cands_path, dtype=str)["item"].tolist() if os.path.exists(cands_path) else None
    all_items = list(dict.fromkeys(list(tr["item"]) + list(te["item"])))
    ds = Dataset(user_identity_features=True, item_identity_features=True)
    ds.fit(users=dict.fromkeys(list(tr["user"]) + list(te["user"])), items=all_items,
           item_features=sorted({f for i in all_items for f in meta.get(i, [])}) if features else None)
    inter, _ = ds.build_interactions(zip(tr["user"], tr["item"]))
    ifeat = ds.build_item_features((i, meta.get(i, [])) for i in all_items) if features else None
    epochs = peer.get("epochs", COMMON["epochs"])
    model = LightFM(no_components=COMMON["factors"], loss=peer["loss"], learning_rate=COMMON["learning_rate"],
                    max_sampled=COMMON["max_sampled"], k=peer.get("k", 5), n=peer.get("n", 10), random_state=42)
    t0 = time.perf_counter()
    model.fit(inter, item_features=ifeat, epochs=epochs, num_threads=threads)
    fit = time.perf_counter() - t0
    umap, _, imap, _ = ds.mapping()
    inv = {v: i for i, v in imap.items()}
    pool = np.array([imap[i] for i in (cands or all_items)], dtype=np.int32)
    seen = tr.groupby("user")["item"].apply(lambda s: {imap[i] for i in s}).to_dict()
    vals = {"ndcg@10": [], "recall@10": []}
    for u, grp in te.groupby("user"):
        rel = {i: 1.0 for i in grp["item"]}
        s = model.predict(np.full(len(pool), umap[u], dtype=np.int32), pool, item_features=ifeat, num_threads=threads)
        order = np.argsort(-s, kind="stable")
        ranked = [inv[pool[j]] for j in order if pool[j] not in seen.get(u, ())][:k]
        m = recompute_metrics.metrics_at_k(ranked, rel, k)
        vals["ndcg@10"].append(m["ndcg"])
        vals["recall@10"].append(m["recall"])
    return {n: float(np.mean(v)) for n, v in vals.items()}, fit


def main():
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocols", default="loo,temporal:0.2,cold-items:0.2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reco", default="./target/release/reco")
    ap.add_argument("--workdir", default="/tmp/reco-lightfm")
    ap.add_argument("--only", default="", help="comma-separated substrings of model names")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    items_csv = os.path.join(args.workdir, "items.csv")
    meta = item_metadata("data/ml-100k/ml-100k.item", items_csv)
    for proto in args.protocols.split(","):
        d = os.path.join(args.workdir, proto.replace(":", "-"))
        if not os.path.exists(os.path.join(d, "train.csv")):
            subprocess.run([args.reco, "data", "split", "--data", "data/ml-100k", "--protocol", proto, "--out", d], check=True, capture_output=True)
        print(f"\n{proto}\n")
        print("| model | threads | reco NDCG@10 | LightFM NDCG@10 | reco recall@10 | LightFM recall@10 | reco fit s | LightFM fit s | speed-up |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, (ours, peer, features) in MODELS.items():
            if args.only and not any(o in name for o in args.only.split(",")):
                continue
            # Without item features every held-out item looks the same to reco (a score of 0,
            # ties broken by file order) and is an untrained random vector to LightFM: no row.
            if proto.startswith("cold-items") and not features:
                continue
            for threads in [int(t) for t in args.threads.split(",")]:
                spec = {"model": "hybrid", **COMMON, **ours, "parallel": threads > 1}
                meta_args = ["--items", items_csv, "--category-col", "genres:|", "--category-col", "year"]
                runs = [reco_run(args.reco, d, spec, meta_args) for _ in range(args.runs)]
                peers = [lightfm_run(d, meta, peer, features, threads) for _ in range(args.runs)]
                r_t = statistics.median(r[1] for r in runs)
                p_t = statistics.median(p[1] for p in peers)
                r_m = {k: statistics.median(r[0][k] for r in runs) for k in runs[0][0]}
                p_m = {k: statistics.median(p[0][k] for p in peers) for k in peers[0][0]}
                print(f"| {name} | {threads} | {r_m['ndcg@10']:.4f} | {p_m['ndcg@10']:.4f} | {r_m['recall@10']:.4f} | {p_m['recall@10']:.4f} | {r_t:.2f} | {p_t:.2f} | {p_t / r_t:.1f}× |", flush=True)


if __name__ == "__main__":
    main()
