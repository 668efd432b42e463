"""Evaluation from Python: ``reco eval`` on a dataset, results as a DataFrame."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _reco
from ._data import Dataset
from ._model import Model


def evaluate(data: Dataset, models: Union[Dict[str, Any], Sequence[Any]],
             protocol: str = "temporal:0.2", k: Union[int, Iterable[int]] = 10, seed: int = 42,
             relevance_threshold: Optional[float] = None, baseline: Optional[str] = None,
             auc: bool = False, ratings_only: bool = False,
             report: Optional[Any] = None, groups: Sequence[str] = ()) -> Any:
    """Evaluates models as ``reco eval`` does: the data cut by ``protocol`` (``kfold:5``,
    ``temporal:0.2``, ``loo``, ...), every model fitted on each fold's training
    part and ranking the catalogue for its test users, metrics at each cutoff ``k`` with 95%
    intervals (RMSE and MAE for rating models), and paired t-tests against ``baseline``.

    ``models`` is ``{name: spec or Model}`` or a sequence of specs or models (named by kind).
    Returns a pandas DataFrame with one row per (model, metric): ``mean``, ``ci95``, ``low``,
    ``high``, ``n`` and, with a baseline, ``diff`` and ``p_value``; the full report (fit times,
    settings, and with ``groups=["gender", ...]`` the accuracy per group of those user fields)
    is in ``df.attrs["report"]``. With ``report="file.html"`` the HTML report that
    ``reco eval --report`` writes (inline SVG charts, opens offline) is written there too.
    """
    named = _named(models)
    ks = [k] if isinstance(k, int) else list(k)
    text = _reco.evaluate_json(data._d, named, protocol, ks, seed, relevance_threshold, baseline,
                               auc, not ratings_only, list(groups))
    if report is not None:
        with open(report, "w", encoding="utf-8") as f:
            f.write(_reco.report_html(text))
    parsed = json.loads(text)
    rows: List[Dict[str, Any]] = []
    for m in parsed["models"]:
        tests = m.get("vs_baseline", {})
        for metric, stat in m["metrics"].items():
            row = {"model": m["name"], "metric": metric, "mean": stat["mean"],
                   "ci95": stat["ci95"], "low": stat["mean"] - stat["ci95"],
                   "high": stat["mean"] + stat["ci95"], "n": stat["n"]}
            if metric in tests:
                row["diff"] = tests[metric].get("diff")
                row["p_value"] = tests[metric].get("p_value")
            rows.append(row)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in the test extras
        return rows
    df = pd.DataFrame(rows)
    df.attrs["report"] = parsed
    return df


def _named(models: Union[Dict[str, Any], Sequence[Any]]) -> List[Tuple[str, str]]:
    items = models.items() if isinstance(models, dict) else [(None, m) for m in models]
    out: List[Tuple[str, str]] = []
    seen: Dict[str, int] = {}
    for name, m in items:
        spec = m.spec if isinstance(m, Model) else ({"model": m} if isinstance(m, str) else m)
        if name is None:
            base = spec["model"]
            seen[base] = seen.get(base, 0) + 1
            name = base if seen[base] == 1 else f"{base}#{seen[base]}"
        out.append((name, json.dumps(spec)))
    return out
