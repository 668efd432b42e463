"""Neural models on MovieLens-100K: top-N (per-user temporal 20%, leave-last-one-out) and cold
start (cold-item and cold-user splits), side by side with implicit's ALS on the same files.

Usage: python bench/peers/compare_neural.py [--protocols temporal:0.2,loo]
                                            [--cold cold-items:0.2,cold-users:0.2]
                                            [--reco ./target/release/reco] [--workdir /tmp/reco-neural]

Interactions are binary (every rating a positive, --threshold 1). Metadata: items have genres,
release year (quantile bins) and title words (hashed); users have age (bins), gender and
occupation — written from data/ml-100k by this script. Every unseen item is ranked for every
test user (on cold-item splits, only the held-out items: reco reads candidates.csv).
NDCG@10 and recall@50 follow docs/metrics.md; implicit's lists are scored by
bench/recompute_metrics.py. reco's figures are one seeded run (seed 42).
"""
import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import pandas as pd

sys.path.insert(0, os.path.dirname(__file__))
from compare_topn import implicit_run  # noqa: E402

FEATURES = ["--items", "{w}/items.csv", "--title-col", "title", "--text-col", "title",
            "--category-col", "genres:|", "--numeric-col", "year",
            "--users", "{w}/users.csv", "--user-numeric-col", "age",
            "--user-category-col", "gender", "--user-category-col", "occupation"]

TOPN = {
    "two-tower, features + ids + recent items": {"model": "two-tower", "epochs": 10},
    "two-tower, ids only": {"model": "two-tower", "epochs": 10, "user_fields": [], "item_fields": [], "recent_items": 0},
    "two-tower, ids only, sampled BCE (4 negatives)": {"model": "two-tower", "epochs": 10, "loss": "bce", "temperature": 0.1,
                                                       "user_fields": [], "item_fields": [], "recent_items": 0},
    "neural-cf (GMF 16 + MLP 64-32-16)": {"model": "neural-cf", "epochs": 10},
    "ials (64 f, α=10, 15 it)": {"model": "ials", "factors": 64, "epochs": 15, "regularization": 0.05, "alpha": 9.0},
}
COLD = {
    "two-tower, features (+ ids for warm entities)": {"model": "two-tower", "epochs": 10},
    "two-tower, features only": {"model": "two-tower", "epochs": 10, "user_identity": False, "item_identity": False},
    "hybrid (LightFM-style WARP, features)": {"model": "hybrid", "loss": "warp", "factors": 32, "epochs": 30},
    "popularity": {"model": "popularity"},
}


def write_metadata(w):
    items = pd.read_csv("data/ml-100k/ml-100k.item", sep="\t", dtype=str).fillna("")
    year = items["release_year:token"].where(items["release_year:token"].str.fullmatch(r"\d{4}"), "")
    pd.DataFrame({"item": items["item_id:token"], "title": items["movie_title:token_seq"],
                  "genres": items["class:token_seq"].str.split().str.join("|"), "year": year}).to_csv(f"{w}/items.csv", index=False)
    users = pd.read_csv("data/ml-100k/ml-100k.user", sep="\t", dtype=str).fillna("")
    pd.DataFrame({"user": users["user_id:token"], "age": users["age:token"], "gender": users["gender:token"],
                  "occupation": users["occupation:token"]}).to_csv(f"{w}/users.csv", index=False)


def reco_eval(reco, d, spec, w):
    args = [a.format(w=w) for a in FEATURES]
    t0 = time.perf_counter()
    out = subprocess.run([reco, "eval", "--splits", d, "--threshold", "1", *args, "--model", json.dumps(spec),
                          "--k", "10,50", "--no-auc", "--json"], check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t0
    m = json.loads(out)["models"][0]["metrics"]
    fit = sum(json.loads(out)["models"][0]["fit_seconds"])
    return m["ndcg@10"]["mean"], m["recall@50"]["mean"], fit, wall


def split(reco, proto, w):
    d = os.path.join(w, proto.replace(":", "-"))
    if not os.path.exists(os.path.join(d, "train.csv")):
        subprocess.run([reco, "data", "split", "--data", "data/ml-100k", "--protocol", proto, "--seed", "42", "--out", d],
                       check=True, capture_output=True)
    return d


def main():
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocols", default="temporal:0.2,loo")
    ap.add_argument("--cold", default="cold-items:0.2,cold-users:0.2")
    ap.add_argument("--reco", default="./target/release/reco")
    ap.add_argument("--workdir", default="/tmp/reco-neural")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    write_metadata(args.workdir)
    for proto in filter(None, args.protocols.split(",")):
        d = split(args.reco, proto, args.workdir)
        print(f"\n{proto}\n\n| model | NDCG@10 | recall@50 | fit s |\n|---|---|---|---|")
        for name, spec in TOPN.items():
            if args.only and args.only not in name:
                continue
            ndcg, rec, fit, _ = reco_eval(args.reco, d, spec, args.workdir)
            print(f"| reco {name} | {ndcg:.4f} | {rec:.4f} | {fit:.1f} |", flush=True)
        if not args.only or "implicit" in args.only:
            m10, fit = implicit_run(os.path.join(d, "train.csv"), os.path.join(d, "test.csv"), "als", {"alpha": 10.0}, k=10)
            m50, _ = implicit_run(os.path.join(d, "train.csv"), os.path.join(d, "test.csv"), "als", {"alpha": 10.0}, k=50)
            print(f"| implicit 0.7 ALS (64 f, α=10, 15 it) | {m10['ndcg@10']:.4f} | {m50['recall@10']:.4f} | {fit:.1f} |", flush=True)
    for proto in filter(None, args.cold.split(",")):
        d = split(args.reco, proto, args.workdir)
        print(f"\n{proto}\n\n| model | NDCG@10 | recall@50 | fit s |\n|---|---|---|---|")
        for name, spec in COLD.items():
            if args.only and args.only not in name:
                continue
            ndcg, rec, fit, _ = reco_eval(args.reco, d, spec, args.workdir)
            print(f"| reco {name} | {ndcg:.4f} | {rec:.4f} | {fit:.1f} |", flush=True)


if __name__ == "__main__":
    main()
