#!/usr/bin/env python3
"""Recompute top-k ranking metrics from the files written by `reco eval --out DIR`
and compare them with the values reco reported.

This is an independent implementation (standard library only, no reco code)
used to cross-check reco's evaluator.

Input layout (DIR):
  qrels.fold{F}.txt        lines `user 0 item gain`; gain > 0 means relevant,
                           lines with gain <= 0 are ignored.
  runs/{MODEL}.fold{F}.run TREC run lines `user Q0 item rank score model`
                           (rank starts at 1).
  results.json             {"ks": [...], "models": [{"name": MODEL,
                           "metrics": {"precision@10": {"mean": .., "ci95": ..,
                           "n": ..}, ...}}, ...]}; unknown keys and metrics
                           are ignored.

Protocol: every (fold, user) pair where the user has at least one relevant
item in that fold's qrels is scored (a user without run lines gets an empty
list); users without relevant items are skipped. The run list is sorted by
rank and truncated to k. The reported mean pools all (fold, user) pairs.

Metrics (R = relevant set, hits = relevant items in the top k):
  precision@k    hits / k
  recall@k       hits / |R|
  hit_rate@k     1 if hits > 0 else 0
  f1@k           2PR / (P + R), 0 when P + R = 0
  mrr@k          1 / rank of the first relevant item in the top k, else 0
  map@k          sum of precision@r over ranks r <= k holding a relevant item,
                 divided by min(|R|, k)
  ndcg@k         binary gain: DCG = sum rel_r / log2(r + 1),
                 IDCG = sum_{r=1..min(|R|,k)} 1 / log2(r + 1)
  ndcg_graded@k  same with the qrels gain (linear); IDCG uses the min(|R|, k)
                 largest gains

Usage:
  python bench/recompute_metrics.py DIR [--tol 1e-6] [--ignore-n]
  python bench/recompute_metrics.py --self-test

Exit status: 0 when every compared value is within --tol (and, unless
--ignore-n, every reported n equals the number of scored pairs); 1 on any
mismatch; 2 on unreadable or inconsistent input.

The functions `metrics_at_k`, `evaluate` and friends are importable (see
bench/peers/popularity_loo.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

METRICS: Tuple[str, ...] = (
    "precision",
    "recall",
    "f1",
    "hit_rate",
    "mrr",
    "map",
    "ndcg",
    "ndcg_graded",
)

Qrels = Dict[str, Dict[str, float]]  # user -> {item: gain > 0}
Run = Dict[str, List[str]]  # user -> items sorted by rank


class InputError(Exception):
    """Malformed or inconsistent input files."""


# --------------------------------------------------------------------------
# Metric definitions
# --------------------------------------------------------------------------


def _discount(rank: int) -> float:
    """1 / log2(rank + 1) for a 1-based rank."""
    return 1.0 / math.log2(rank + 1)


def metrics_at_k(ranked: Sequence[str], gains: Mapping[str, float], k: int) -> Dict[str, float]:
    """All metrics of METRICS for one user at cut-off k.

    ranked: the recommended items, best first (only the first k are used).
    gains:  the user's relevant items with their gain (> 0); must be non-empty.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not gains:
        raise ValueError("a user without relevant items cannot be scored")
    top = list(ranked[:k])
    n_rel = len(gains)

    hits = 0
    first_hit_rank = 0
    ap_sum = 0.0
    dcg = 0.0
    dcg_graded = 0.0
    for r, item in enumerate(top, start=1):
        g = gains.get(item)
        if g is None:
            continue
        hits += 1
        if first_hit_rank == 0:
            first_hit_rank = r
        ap_sum += hits / r
        dcg += _discount(r)
        dcg_graded += g * _discount(r)

    cut = min(n_rel, k)
    idcg = sum(_discount(r) for r in range(1, cut + 1))
    ideal_gains = sorted(gains.values(), reverse=True)[:cut]
    idcg_graded = sum(g * _discount(r) for r, g in enumerate(ideal_gains, start=1))

    precision = hits / k
    recall = hits / n_rel
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "hit_rate": 1.0 if hits > 0 else 0.0,
        "mrr": 1.0 / first_hit_rank if first_hit_rank else 0.0,
        "map": ap_sum / cut,
        "ndcg": dcg / idcg,
        "ndcg_graded": dcg_graded / idcg_graded,
    }


def score_pairs(run: Run, qrels: Qrels, ks: Iterable[int]) -> Dict[str, List[float]]:
    """Per-user values for every `metric@k`, over users with relevant items.

    Users of `run` that are absent from `qrels` are ignored; users of `qrels`
    absent from `run` are scored with an empty list. Returned lists are in
    sorted user order.
    """
    ks = sorted(set(ks))
    out: Dict[str, List[float]] = {f"{m}@{k}": [] for m in METRICS for k in ks}
    for user in sorted(qrels):
        gains = qrels[user]
        if not gains:
            continue
        ranked = run.get(user, [])
        for k in ks:
            for name, value in metrics_at_k(ranked, gains, k).items():
                out[f"{name}@{k}"].append(value)
    return out


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else float("nan")


def evaluate(run: Run, qrels: Qrels, ks: Iterable[int]) -> Dict[str, Dict[str, float]]:
    """Mean of every `metric@k` for a single run against a single qrels.

    Returns {"precision@10": {"mean": .., "n": ..}, ...}.
    """
    per_user = score_pairs(run, qrels, ks)
    return {key: {"mean": mean(vals), "n": len(vals)} for key, vals in per_user.items()}


# --------------------------------------------------------------------------
# File readers
# --------------------------------------------------------------------------


def read_qrels(path: str) -> Qrels:
    """Read `user 0 item gain` lines; keep only gain > 0.

    If an item is listed twice for a user, the largest gain wins.
    """
    qrels: Qrels = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) != 4:
                raise InputError(f"{path}:{lineno}: expected 4 fields `user 0 item gain`, got {len(parts)}")
            user, _, item, gain_s = parts
            try:
                gain = float(gain_s)
            except ValueError:
                raise InputError(f"{path}:{lineno}: gain {gain_s!r} is not a number") from None
            if not math.isfinite(gain):
                raise InputError(f"{path}:{lineno}: gain {gain_s!r} is not finite")
            if gain <= 0:
                continue
            user_q = qrels.setdefault(user, {})
            user_q[item] = max(gain, user_q.get(item, gain))
    return qrels


def read_run(path: str) -> Tuple[Run, int]:
    """Read TREC run lines `user Q0 item rank score model`.

    Returns ({user: items sorted by rank}, number of duplicate (user, item)
    lines seen). Ties in rank keep file order.
    """
    rows: Dict[str, List[Tuple[int, int, str]]] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) < 4:
                raise InputError(f"{path}:{lineno}: expected `user Q0 item rank score model`, got {len(parts)} fields")
            user, _, item, rank_s = parts[:4]
            try:
                rank = int(rank_s)
            except ValueError:
                raise InputError(f"{path}:{lineno}: rank {rank_s!r} is not an integer") from None
            if rank < 1:
                raise InputError(f"{path}:{lineno}: rank {rank} < 1")
            rows.setdefault(user, []).append((rank, lineno, item))
    run: Run = {}
    dups = 0
    for user, lst in rows.items():
        lst.sort()
        items = [item for _, _, item in lst]
        dups += len(items) - len(set(items))
        run[user] = items
    return run, dups


_QRELS_RE = re.compile(r"^qrels\.fold(.+)\.txt$")


def find_folds(directory: str) -> List[str]:
    folds = []
    for name in os.listdir(directory):
        m = _QRELS_RE.match(name)
        if m:
            folds.append(m.group(1))
    # numeric folds in numeric order, others after, alphabetically
    return sorted(folds, key=lambda f: (0, int(f), "") if f.isdigit() else (1, 0, f))


def parse_metric_key(key: str) -> Tuple[str, int] | None:
    name, sep, k_s = key.rpartition("@")
    if not sep or name not in METRICS or not k_s.isdigit() or int(k_s) < 1:
        return None
    return name, int(k_s)


def reported_value(entry: object) -> Tuple[float | None, int | None]:
    """(mean, n) from a results.json metric entry (a dict or a bare number)."""
    if isinstance(entry, bool):
        return None, None
    if isinstance(entry, (int, float)):
        return float(entry), None
    if isinstance(entry, dict):
        m = entry.get("mean")
        n = entry.get("n")
        mean_v = float(m) if isinstance(m, (int, float)) and not isinstance(m, bool) else None
        n_v = int(n) if isinstance(n, int) and not isinstance(n, bool) else None
        return mean_v, n_v
    return None, None


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------


def recompute(directory: str, model: str, folds: Sequence[str], qrels_by_fold: Mapping[str, Qrels],
              ks: Iterable[int]) -> Tuple[Dict[str, Dict[str, float]], List[str]]:
    """Pooled means over (fold, user) pairs for one model, plus warnings."""
    ks = sorted(set(ks))
    pooled: Dict[str, List[float]] = {f"{m}@{k}": [] for m in METRICS for k in ks}
    warnings: List[str] = []
    for fold in folds:
        path = os.path.join(directory, "runs", f"{model}.fold{fold}.run")
        if not os.path.isfile(path):
            raise InputError(f"missing run file {path}")
        run, dups = read_run(path)
        if dups:
            warnings.append(f"{path}: {dups} duplicate (user, item) lines (each counted as listed)")
        for key, vals in score_pairs(run, qrels_by_fold[fold], ks).items():
            pooled[key].extend(vals)
    return {key: {"mean": mean(v), "n": len(v)} for key, v in pooled.items()}, warnings


def compare(directory: str, tol: float, check_n: bool = True, out=sys.stdout) -> int:
    """Compare reco's results.json with recomputed values; returns exit code."""
    results_path = os.path.join(directory, "results.json")
    try:
        with open(results_path, encoding="utf-8") as fh:
            results = json.load(fh)
    except FileNotFoundError:
        raise InputError(f"missing {results_path}") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{results_path}: invalid JSON: {e}") from None
    models = results.get("models") if isinstance(results, dict) else None
    if not isinstance(models, list):
        raise InputError(f"{results_path}: no \"models\" list")

    folds = find_folds(directory)
    if not folds:
        raise InputError(f"no qrels.fold*.txt file in {directory}")
    qrels_by_fold = {f: read_qrels(os.path.join(directory, f"qrels.fold{f}.txt")) for f in folds}

    rows = []  # (model, key, reco, mine, diff, status)
    failures = 0
    compared = 0
    for entry in models:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InputError(f"{results_path}: a model entry has no \"name\"")
        name = entry["name"]
        metrics = entry.get("metrics") or {}
        wanted = {}
        for key, val in metrics.items():
            parsed = parse_metric_key(key)
            if parsed is None:
                continue
            wanted[key] = (parsed, val)
        if not wanted:
            print(f"note: model {name}: no recomputable metric in results.json", file=sys.stderr)
            continue
        mine, warns = recompute(directory, name, folds, qrels_by_fold, {k for (_, k), _ in wanted.values()})
        for w in warns:
            print(f"warning: {w}", file=sys.stderr)
        for key in sorted(wanted, key=lambda x: (METRICS.index(wanted[x][0][0]), wanted[x][0][1])):
            reco_mean, reco_n = reported_value(wanted[key][1])
            got = mine[key]
            if reco_mean is None:
                rows.append((name, key, "n/a", f"{got['mean']:.8f}", "", "SKIP (no mean)"))
                continue
            compared += 1
            diff = abs(reco_mean - got["mean"]) if not math.isnan(got["mean"]) else float("inf")
            status = "ok"
            if not diff <= tol:
                status = "DIFF"
            if check_n and reco_n is not None and reco_n != got["n"]:
                status = f"N {reco_n}!={got['n']}" if status == "ok" else status + f", N {reco_n}!={got['n']}"
            if status != "ok":
                failures += 1
            rows.append((name, key, f"{reco_mean:.8f}", f"{got['mean']:.8f}", f"{diff:.2e}", status))

    header = ("model", "metric", "reco", "recomputed", "abs_diff", "status")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 or i == 5 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*header), file=out)
    print(fmt.format(*("-" * w for w in widths)), file=out)
    for r in rows:
        print(fmt.format(*r), file=out)
    n_pairs = sum(sum(1 for g in q.values() if g) for q in qrels_by_fold.values())
    print(f"\nfolds: {', '.join(folds)}; scored (fold, user) pairs: {n_pairs}; "
          f"compared values: {compared}; tolerance: {tol:g}", file=out)
    if failures:
        print(f"MISMATCH: {failures} value(s) differ", file=out)
        return 1
    if compared == 0:
        print("nothing compared", file=out)
        return 1
    print("all values match", file=out)
    return 0


# --------------------------------------------------------------------------
# Self-test
# --------------------------------------------------------------------------


def _check(cond: bool, what: str) -> None:
    # explicit raise rather than `assert`, which `python -O` would strip
    if not cond:
        raise AssertionError(what)


def _close(a: float, b: float, what: str) -> None:
    _check(abs(a - b) <= 1e-12, f"{what}: got {a!r}, expected {b!r}")


L3 = math.log2(3)  # 1 / discount at rank 2


def _case_hand_example() -> None:
    """Relevant {a, b}, run [a, x, b]."""
    m = metrics_at_k(["a", "x", "b"], {"a": 1, "b": 1}, 3)
    _close(m["precision"], 2 / 3, "precision@3")
    _close(m["recall"], 1.0, "recall@3")
    _close(m["f1"], 2 * (2 / 3) * 1 / (2 / 3 + 1), "f1@3")
    _close(m["f1"], 0.8, "f1@3 literal")
    _close(m["hit_rate"], 1.0, "hit_rate@3")
    _close(m["mrr"], 1.0, "mrr@3")
    _close(m["map"], (1 + 2 / 3) / 2, "map@3")
    _close(m["ndcg"], (1 + 1 / 2) / (1 + 1 / L3), "ndcg@3")
    _close(m["ndcg_graded"], m["ndcg"], "ndcg_graded@3 with unit gains")


def _case_k1() -> None:
    """Same at k=1: min(|R|, k) = 1."""
    m = metrics_at_k(["a", "x", "b"], {"a": 1, "b": 1}, 1)
    _close(m["precision"], 1.0, "precision@1")
    _close(m["recall"], 0.5, "recall@1")
    _close(m["map"], 1.0, "map@1")
    _close(m["ndcg"], 1.0, "ndcg@1")


def _case_k_beyond_list() -> None:
    """k beyond the list length: precision divides by k."""
    m = metrics_at_k(["a", "x", "b"], {"a": 1, "b": 1}, 5)
    _close(m["precision"], 2 / 5, "precision@5")
    _close(m["map"], (1 + 2 / 3) / 2, "map@5")
    _close(m["ndcg"], (1 + 1 / 2) / (1 + 1 / L3), "ndcg@5")


def _case_empty_list() -> None:
    """Empty list."""
    m = metrics_at_k([], {"a": 1}, 10)
    for name in METRICS:
        _close(m[name], 0.0, f"{name}@10 on empty list")


def _case_mrr() -> None:
    """MRR with the first hit at rank 3."""
    m = metrics_at_k(["x", "y", "b"], {"b": 1}, 3)
    _close(m["mrr"], 1 / 3, "mrr@3")
    _close(m["map"], 1 / 3, "map@3 single relevant at 3")
    _close(m["ndcg"], 0.5, "ndcg@3 single relevant at 3")
    _close(metrics_at_k(["x", "y", "b"], {"b": 1}, 2)["mrr"], 0.0, "mrr@2 miss")


def _case_graded() -> None:
    """Graded gains: R = {a:3, b:1, c:2}, run [b, a, x], k = 2."""
    g = {"a": 3.0, "b": 1.0, "c": 2.0}
    m = metrics_at_k(["b", "a", "x"], g, 2)
    _close(m["ndcg"], 1.0, "binary ndcg@2")
    _close(m["ndcg_graded"], (1 + 3 / L3) / (3 + 2 / L3), "ndcg_graded@2")
    _close(m["map"], (1 + 1) / 2, "map@2 graded set")
    m = metrics_at_k(["b", "a", "x"], g, 3)
    _close(m["ndcg_graded"], (1 + 3 / L3) / (3 + 2 / L3 + 1 / 2), "ndcg_graded@3")
    _close(m["recall"], 2 / 3, "recall@3 graded set")


def _case_files_two_folds() -> None:
    """End to end through files, two folds, pooled over (fold, user) pairs."""
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(os.path.join(d, "runs"))

        def write(rel: str, text: str) -> None:
            with open(os.path.join(d, rel), "w", encoding="utf-8") as fh:
                fh.write(text)

        # fold 0: u1 rel {a, b} (x has gain 0: not relevant), u2 rel {c} but
        # no run lines, u3 only non-relevant lines (skipped).
        write("qrels.fold0.txt", "u1 0 a 1\nu1 0 b 1\nu1 0 x 0\nu2 0 c 1\nu3 0 a 0\n")
        # fold 1: u1 graded {a:3, b:1, c:2}
        write("qrels.fold1.txt", "u1 0 a 3\nu1 0 b 1\nu1 0 c 2\n")
        # rank order differs from file order on purpose; u9 has no qrels.
        write("runs/m.fold0.run",
              "u1 Q0 b 3 0.1 m\nu1 Q0 a 1 0.9 m\nu1 Q0 x 2 0.5 m\nu3 Q0 a 1 1 m\nu9 Q0 a 1 1 m\n")
        write("runs/m.fold1.run", "u1 Q0 b 1 3 m\nu1 Q0 a 2 2 m\nu1 Q0 x 3 1 m\n")

        pairs = [
            metrics_at_k(["a", "x", "b"], {"a": 1, "b": 1}, 3),
            metrics_at_k([], {"c": 1}, 3),
            metrics_at_k(["b", "a", "x"], {"a": 3.0, "b": 1.0, "c": 2.0}, 3),
        ]
        expected = {f"{n}@3": math.fsum(p[n] for p in pairs) / 3 for n in METRICS}
        _close(expected["precision@3"], (2 / 3 + 0 + 2 / 3) / 3, "pooled precision@3")
        _close(expected["recall@3"], (1 + 0 + 2 / 3) / 3, "pooled recall@3")

        def write_results(values: Mapping[str, float], n: int = 3) -> None:
            metrics = {k: {"mean": v, "ci95": 0.0, "n": n} for k, v in values.items()}
            metrics["coverage@3"] = {"mean": 0.5}  # unknown metric: ignored
            write("results.json", json.dumps({"ks": [3], "extra": 1,
                                              "models": [{"name": "m", "metrics": metrics}]}))

        sink = open(os.devnull, "w", encoding="utf-8")
        try:
            write_results(expected)
            _check(compare(d, 1e-9, out=sink) == 0, "exact results should match")
            bad = dict(expected)
            bad["map@3"] += 1e-3
            write_results(bad)
            _check(compare(d, 1e-6, out=sink) == 1, "perturbed map@3 should be flagged")
            _check(compare(d, 1e-2, out=sink) == 0, "perturbation within tolerance should pass")
            write_results(expected, n=4)
            _check(compare(d, 1e-9, out=sink) == 1, "wrong n should be flagged")
            _check(compare(d, 1e-9, check_n=False, out=sink) == 0, "--ignore-n should accept")
            os.remove(os.path.join(d, "runs", "m.fold1.run"))
            try:
                compare(d, 1e-9, out=sink)
            except InputError:
                pass
            else:
                raise AssertionError("missing run file should be an input error")
        finally:
            sink.close()


_SELF_TESTS = (
    _case_hand_example,
    _case_k1,
    _case_k_beyond_list,
    _case_empty_list,
    _case_mrr,
    _case_graded,
    _case_files_two_folds,
)


def self_test() -> int:
    """Run the hand-computed cases; print a summary and return the exit code."""
    passed = failed = 0
    for case in _SELF_TESTS:
        try:
            case()
        except AssertionError as e:
            failed += 1
            print(f"FAIL {case.__name__[1:]}: {e}")
        else:
            passed += 1
            print(f"ok   {case.__name__[1:]}")
    print(f"self-test: {passed} passed, {failed} failed")
    return 1 if failed else 0


# --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Recompute reco's top-k metrics from `reco eval --out DIR` files and compare.")
    ap.add_argument("dir", nargs="?", help="directory written by `reco eval --out`")
    ap.add_argument("--tol", type=float, default=1e-6, help="maximum absolute difference (default 1e-6)")
    ap.add_argument("--ignore-n", action="store_true",
                    help="do not compare the reported n with the number of scored pairs")
    ap.add_argument("--self-test", action="store_true", help="run the built-in hand-computed cases")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.dir:
        ap.error("DIR is required (or use --self-test)")
    if not os.path.isdir(args.dir):
        print(f"error: {args.dir} is not a directory", file=sys.stderr)
        return 2
    try:
        return compare(args.dir, args.tol, check_n=not args.ignore_n)
    except (InputError, OSError, UnicodeDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
