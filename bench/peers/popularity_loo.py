#!/usr/bin/env python3
"""Plain-Python most-popular recommender, used as an independent reference
baseline for reco's popularity model.

Usage:
  python bench/peers/popularity_loo.py TRAIN_CSV TEST_CSV --k 10 --out RUNFILE
                                       [--qrels-out QRELS] [--json]

Input: two CSV files with the header `user,item,rating[,timestamp]`
(columns are found by name; user and item are external string ids; rating
and timestamp are not used).

Model: items are ranked by their number of interactions (rows) in TRAIN,
descending; ties are broken by the order in which items first appear in
TRAIN. Items that occur only in TEST (count 0) follow, in the order in which
they first appear in TEST. Each user of TEST, in order of first appearance,
gets the top k items of that ranking that are not among the user's TRAIN
items.

Output:
  RUNFILE   TREC run lines `user Q0 item rank score popularity`, rank from 1,
            score = the item's TRAIN count as a float.
  QRELS     (with --qrels-out) `user 0 item 1` for every TEST row.
  stdout    precision, recall, ndcg, map, mrr and hit_rate at k against TEST
            (every TEST row relevant with gain 1), computed with
            bench/recompute_metrics.py; as JSON with --json.

Exit status: 0 on success, 2 on bad input.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Dict, List, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import recompute_metrics as rm  # noqa: E402  (bench/recompute_metrics.py)

MODEL_NAME = "popularity"
REPORTED = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")


class InputError(Exception):
    pass


def read_interactions(path: str) -> List[Tuple[str, str]]:
    """(user, item) pairs of a `user,item,rating[,timestamp]` CSV, in file order."""
    rows: List[Tuple[str, str]] = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise InputError(f"{path}: empty file") from None
        try:
            ui, ii = header.index("user"), header.index("item")
        except ValueError:
            raise InputError(f"{path}: header {header} lacks `user` and `item` columns") from None
        width = max(ui, ii) + 1
        for lineno, rec in enumerate(reader, start=2):
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                continue
            if len(rec) < width:
                raise InputError(f"{path}:{lineno}: expected at least {width} fields, got {len(rec)}")
            user, item = rec[ui].strip(), rec[ii].strip()
            if not user or not item:
                raise InputError(f"{path}:{lineno}: empty user or item id")
            if any(c.isspace() for c in user + item):
                raise InputError(f"{path}:{lineno}: ids with whitespace cannot be written in TREC format")
            rows.append((user, item))
    return rows


def popularity_ranking(train: Sequence[Tuple[str, str]],
                       test: Sequence[Tuple[str, str]]) -> List[Tuple[str, int]]:
    """All items as (item, train count), best first."""
    counts: Dict[str, int] = {}  # insertion order = first appearance in train
    for _, item in train:
        counts[item] = counts.get(item, 0) + 1
    order = {item: i for i, item in enumerate(counts)}
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], order[kv[0]]))
    seen = set(counts)
    for _, item in test:
        if item not in seen:
            seen.add(item)
            ranked.append((item, 0))
    return ranked


def recommend(train: Sequence[Tuple[str, str]], test: Sequence[Tuple[str, str]],
              k: int) -> Dict[str, List[Tuple[str, int]]]:
    """{test user: [(item, count), ...] up to k}, users in first-appearance order."""
    ranking = popularity_ranking(train, test)
    seen_by_user: Dict[str, set] = {}
    for user, item in train:
        seen_by_user.setdefault(user, set()).add(item)
    recs: Dict[str, List[Tuple[str, int]]] = {}
    for user, _ in test:
        if user in recs:
            continue
        seen = seen_by_user.get(user, set())
        top: List[Tuple[str, int]] = []
        for item, count in ranking:
            if item in seen:
                continue
            top.append((item, count))
            if len(top) == k:
                break
        recs[user] = top
    return recs


def write_run(path: str, recs: Dict[str, List[Tuple[str, int]]]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for user, items in recs.items():
            for rank, (item, count) in enumerate(items, start=1):
                fh.write(f"{user} Q0 {item} {rank} {float(count)!r} {MODEL_NAME}\n")
    os.replace(tmp, path)


def write_qrels(path: str, test: Sequence[Tuple[str, str]]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for user, item in test:
            fh.write(f"{user} 0 {item} 1\n")
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Most-popular baseline: TREC run file and top-k metrics.")
    ap.add_argument("train", help="train CSV (user,item,rating[,timestamp])")
    ap.add_argument("test", help="test CSV (user,item,rating[,timestamp])")
    ap.add_argument("--k", type=int, default=10, help="list length and metric cut-off (default 10)")
    ap.add_argument("--out", required=True, help="TREC run file to write")
    ap.add_argument("--qrels-out", help="also write the test rows as qrels `user 0 item 1`")
    ap.add_argument("--json", action="store_true", help="print the metrics as JSON")
    args = ap.parse_args(argv)
    if args.k < 1:
        ap.error("--k must be >= 1")

    try:
        train = read_interactions(args.train)
        test = read_interactions(args.test)
    except (InputError, OSError, UnicodeDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not test:
        print(f"error: {args.test}: no interactions", file=sys.stderr)
        return 2

    recs = recommend(train, test, args.k)
    write_run(args.out, recs)
    if args.qrels_out:
        write_qrels(args.qrels_out, test)

    qrels: rm.Qrels = {}
    for user, item in test:
        qrels.setdefault(user, {})[item] = 1.0
    run: rm.Run = {user: [item for item, _ in items] for user, items in recs.items()}
    res = rm.evaluate(run, qrels, [args.k])
    metrics = {f"{m}@{args.k}": res[f"{m}@{args.k}"]["mean"] for m in REPORTED}
    n = res[f"precision@{args.k}"]["n"]

    if args.json:
        json.dump({"model": MODEL_NAME, "k": args.k, "n": n, "metrics": metrics}, sys.stdout, indent=2)
        print()
    else:
        print(f"{MODEL_NAME}: {len(train)} train rows, {len(test)} test rows, {n} users scored, run -> {args.out}")
        for key, value in metrics.items():
            print(f"  {key:<14} {value:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
