#!/usr/bin/env python3
"""`reco tune` (TPE around reco's iALS) against Optuna's TPE around implicit's ALS, on the
same split files, the same number of trials and the same ranges.

Both searches see only the outer training file: each trial fits on the inner training part
and is scored by NDCG@10 on the inner validation part (each user's latest 20% of training
interactions, written by `reco data split`); the winner of each is then refitted on the whole
training file and scored once on the outer test file by the same NDCG@10 function here
(binary relevance, seen items filtered), so the two are judged alike. Each winner is refitted
`--refits` times with seeds none of the searches used and its test NDCG@10 averaged: a search
whose trials and final refit share one seed would otherwise carry that seed's luck into the
test figure. Prints the wall time of each search and the test NDCG@10 of each winner.

Usage (the peers' virtualenv with reco, implicit and optuna installed; a release reco binary):
    python bench/tune_compare.py --data data/ml-100k --trials 30 --runs 3
"""

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

import reco

ROOT = Path(__file__).resolve().parents[1]
SPACE = """
metric = "ndcg@10"
strategy = "tpe"

[model]
model = "ials"
epochs = 15

[space]
factors = { int = [16, 256], log = true }
regularization = { float = [0.001, 1.0], log = true }
alpha = { float = [0.25, 20.0], log = true }
"""


def read(path):
    return pd.read_csv(path)


def matrix(df, users, items):
    u = df.user.map(users).to_numpy()
    i = df.item.map(items).to_numpy()
    return sp.csr_matrix((np.ones(len(df), dtype=np.float32), (u, i)),
                         shape=(len(users), len(items)))


def ndcg_at_10(recs, truth):
    """Mean NDCG@10 over users with test items: recs[u] is a ranked list, truth[u] a set."""
    scores = []
    for u, rel in truth.items():
        got = recs.get(u, [])[:10]
        dcg = sum(1.0 / math.log2(r + 2) for r, i in enumerate(got) if i in rel)
        ideal = sum(1.0 / math.log2(r + 2) for r in range(min(10, len(rel))))
        scores.append(dcg / ideal)
    return float(np.mean(scores))


def implicit_recs(params, train_df, users, items, for_users, seed=1):
    from implicit.als import AlternatingLeastSquares
    m = AlternatingLeastSquares(factors=params["factors"], regularization=params["regularization"],
                                alpha=params["alpha"], iterations=15, random_state=seed)
    ui = matrix(train_df, users, items)
    m.fit(ui, show_progress=False)
    idx = np.array([users[u] for u in for_users])
    ids, _ = m.recommend(idx, ui[idx], N=10, filter_already_liked_items=True)
    inv = np.array(list(items))
    return {u: list(inv[row[row >= 0]]) for u, row in zip(for_users, ids)}


def reco_recs(params, train_df, for_users, seed=42):
    m = reco.IALS(factors=params["factors"], regularization=params["regularization"],
                  alpha=params["alpha"], epochs=15)
    m.fit(reco.Dataset.from_pandas(train_df, user="user", item="item"), seed=seed)
    known = set(train_df.user)
    asked = [u for u in for_users if u in known]
    ids, _ = m.recommend(asked, n=10)
    return {u: list(r) for u, r in zip(asked, ids)}


def truth_of(df):
    return {u: set(g.item) for u, g in df.groupby("user")}


def optuna_search(inner_train, inner_val, trials, seed, model="implicit"):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    users = {u: k for k, u in enumerate(sorted(set(inner_train.user) | set(inner_val.user)))}
    items = {i: k for k, i in enumerate(sorted(set(inner_train.item) | set(inner_val.item)))}
    truth = truth_of(inner_val)
    val_users = list(truth)

    def objective(trial):
        p = {"factors": trial.suggest_int("factors", 16, 256, log=True),
             "regularization": trial.suggest_float("regularization", 1e-3, 1.0, log=True),
             "alpha": trial.suggest_float("alpha", 0.25, 20.0, log=True)}
        if model == "reco":
            return ndcg_at_10(reco_recs(p, inner_train, val_users), truth)
        return ndcg_at_10(implicit_recs(p, inner_train, users, items, val_users), truth)

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    return study.best_params, study.best_value


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/ml-100k")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reco", default=str(ROOT / "target" / "release" / "reco"))
    ap.add_argument("--reco-args", default="", help="more `reco tune` flags, e.g. '--confirm 5'")
    ap.add_argument("--only-reco", action="store_true", help="skip the Optuna searches")
    ap.add_argument("--refits", type=int, default=5,
                    help="each winner's test NDCG@10 is its mean over this many refits with seeds "
                         "1000, 1001, ... (none of them a search's seed)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="reco-tune-compare-"))
    split = [a.reco, "data", "split", "--implicit", "--protocol", "temporal:0.2", "--seed", "42"]
    subprocess.run(split + ["--data", a.data, "--out", str(work / "outer")], check=True,
                   capture_output=True)
    subprocess.run(split + ["--data", str(work / "outer" / "train.csv"), "--out",
                            str(work / "inner")], check=True, capture_output=True)
    # Both sides see binary interactions: every rating is one positive of value 1.
    for part in ("outer", "inner"):
        for f in ("train.csv", "test.csv"):
            df = read(work / part / f)
            df["rating"] = 1
            df.to_csv(work / part / f, index=False)
    (work / "space.toml").write_text(SPACE)
    train, test = read(work / "outer" / "train.csv"), read(work / "outer" / "test.csv")
    inner_train, inner_val = read(work / "inner" / "train.csv"), read(work / "inner" / "test.csv")
    users = {u: k for k, u in enumerate(sorted(set(train.user) | set(test.user)))}
    items = {i: k for k, i in enumerate(sorted(set(train.item) | set(test.item)))}
    truth = truth_of(test)
    rows = {"reco": [], "optuna": [], "optuna-reco": []}

    # A search that fits every trial with one seed and refits its winner with the same seed
    # carries that seed's luck into the test figure; refits with other seeds measure the
    # configuration alone.
    def refitted(score):
        return statistics.mean(score(1000 + k) for k in range(a.refits))
    for run in range(a.runs):
        out = work / f"tune-{run}"
        t0 = time.perf_counter()
        subprocess.run([a.reco, "tune", "--implicit", "--train", str(work / "outer" / "train.csv"),
                        "--test", str(work / "outer" / "test.csv"), "--space",
                        str(work / "space.toml"), "--trials", str(a.trials), "--validation",
                        "temporal:0.2", "--seed", str(42 + run), "--out", str(out)]
                       + a.reco_args.split(),
                       check=True, capture_output=True)
        reco_secs = time.perf_counter() - t0
        best = json.loads((out / "best.json").read_text())
        data = reco.Dataset.from_pandas(train, user="user", item="item")

        def reco_test(seed):
            m = reco.Model(best).fit(data, seed=seed)
            recs_ids, _ = m.recommend(list(truth), n=10)
            return ndcg_at_10({u: list(r) for u, r in zip(truth, recs_ids)}, truth)
        rows["reco"].append((reco_secs, refitted(reco_test), best))
        if a.only_reco:
            print(f"run {run}: reco tune {reco_secs:.1f} s, test NDCG@10 {rows['reco'][-1][1]:.4f}",
                  file=sys.stderr)
            continue
        t0 = time.perf_counter()
        params, _ = optuna_search(inner_train, inner_val, a.trials, 42 + run)
        opt_secs = time.perf_counter() - t0
        score = refitted(lambda seed: ndcg_at_10(
            implicit_recs(params, train, users, items, list(truth), seed=seed), truth))
        rows["optuna"].append((opt_secs, score, params))
        # The same sampler question with the model held fixed: Optuna's TPE around reco's iALS.
        t0 = time.perf_counter()
        params, _ = optuna_search(inner_train, inner_val, a.trials, 42 + run, model="reco")
        secs = time.perf_counter() - t0
        rows["optuna-reco"].append((secs, refitted(lambda seed: ndcg_at_10(
            reco_recs(params, train, list(truth), seed=seed), truth)), params))
        print(f"run {run}: reco tune {reco_secs:.1f} s, test NDCG@10 {rows['reco'][-1][1]:.4f}; "
              f"optuna+implicit {opt_secs:.1f} s, test NDCG@10 {score:.4f}; optuna+reco "
              f"{secs:.1f} s, test NDCG@10 {rows['optuna-reco'][-1][1]:.4f}", file=sys.stderr)
    print(f"{a.trials} trials per search, {a.runs} runs (seeds 42..{41 + a.runs}); each winner's "
          f"test NDCG@10 averaged over {a.refits} refits; medians over runs")
    print("| search | wall s | test NDCG@10 (median) | test NDCG@10 (each run) |")
    print("| --- | ---: | ---: | --- |")
    for name, label in [(n, l) for n, l in [("reco", f"reco tune {a.reco_args}, TPE, reco iALS"),
                        ("optuna-reco", "Optuna TPE, reco iALS (from Python)"),
                        ("optuna", "Optuna TPE, implicit ALS")] if rows[n]]:
        secs = statistics.median(r[0] for r in rows[name])
        nd = statistics.median(r[1] for r in rows[name])
        each = ", ".join(f"{r[1]:.4f}" for r in rows[name])
        print(f"| {label} | {secs:.1f} | {nd:.4f} | {each} |")
    if rows["optuna"]:
        ratio = statistics.median(r[0] for r in rows["optuna"]) / statistics.median(
            r[0] for r in rows["reco"])
        print(f"wall-time ratio optuna / reco: {ratio:.1f}x")


if __name__ == "__main__":
    main()
