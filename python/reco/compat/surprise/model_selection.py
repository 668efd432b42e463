"""Surprise's ``model_selection``: KFold, train_test_split, cross_validate, GridSearchCV."""

from __future__ import annotations

import itertools
import time
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np

from . import AlgoBase, Dataset, Trainset, accuracy


class KFold:
    """Ratings dealt into ``n_splits`` folds; each is the test set once."""

    def __init__(self, n_splits: int = 5, random_state: Any = None,
                 shuffle: bool = True) -> None:
        if n_splits < 2:
            raise ValueError("n_splits must be at least 2")
        self.n_splits, self.random_state, self.shuffle = n_splits, random_state, shuffle

    def split(self, data: Dataset) -> Iterator[Tuple[Trainset, List[Tuple[Any, Any, float]]]]:
        """``(trainset, testset)`` pairs."""
        n = len(data.ratings)
        if n < self.n_splits:
            raise ValueError(f"cannot split {n} ratings into {self.n_splits} folds")
        order = np.arange(n)
        if self.shuffle:
            seed = self.random_state if isinstance(self.random_state, int) else None
            np.random.default_rng(seed).shuffle(order)
        for fold in np.array_split(order, self.n_splits):
            mask = np.ones(n, dtype=bool)
            mask[fold] = False
            u, i, r = data._subset(np.flatnonzero(mask))
            train = Trainset(u, i, r, data.reader.rating_scale)
            tu, ti, tr = data._subset(fold)
            yield train, list(zip(tu.tolist(), ti.tolist(), tr.tolist()))

def train_test_split(data: Dataset, test_size: float = 0.2, train_size: Any = None,
                     random_state: Any = None,
                     shuffle: bool = True) -> Tuple[Trainset, List[Tuple[Any, Any, float]]]:
    """One random split; ``test_size`` is a share (< 1) or a count."""
    n = len(data.ratings)
    n_test = int(np.ceil(test_size * n)) if test_size < 1 else int(test_size)
    order = np.arange(n)
    if shuffle:
        seed = random_state if isinstance(random_state, int) else None
        np.random.default_rng(seed).shuffle(order)
    test, train = order[:n_test], order[n_test:]
    u, i, r = data._subset(train)
    tu, ti, tr = data._subset(test)
    return (Trainset(u, i, r, data.reader.rating_scale),
            list(zip(tu.tolist(), ti.tolist(), tr.tolist())))

def cross_validate(algo: AlgoBase, data: Dataset, measures: Sequence[str] = ("rmse", "mae"),
                   cv: Any = None, return_train_measures: bool = False, n_jobs: int = 1,
                   pre_dispatch: Any = None, verbose: bool = False) -> Dict[str, np.ndarray]:
    """``{"test_rmse": per-fold array, ..., "fit_time": ..., "test_time": ...}``."""
    folds = _folds(cv)
    out: Dict[str, list] = {f"test_{m.lower()}": [] for m in measures}
    out["fit_time"], out["test_time"] = [], []
    for train, test in folds.split(data):
        t = time.perf_counter()
        algo.fit(train)
        out["fit_time"].append(time.perf_counter() - t)
        t = time.perf_counter()
        preds = algo.test(test)
        out["test_time"].append(time.perf_counter() - t)
        for m in measures:
            out[f"test_{m.lower()}"].append(getattr(accuracy, m.lower())(preds, verbose=False))
    result = {k: np.array(v) for k, v in out.items()}
    if verbose:
        for k, v in result.items():
            print(f"{k:<12} {' '.join(f'{x:.4f}' for x in v)}  mean {v.mean():.4f}")
    return result

def _folds(cv: Any) -> "KFold":
    if cv is None:
        return KFold(5)
    if isinstance(cv, int):
        return KFold(cv)
    return cv

class GridSearchCV:
    """Every combination of ``param_grid`` cross-validated; the best by each measure."""

    def __init__(self, algo_class: type, param_grid: Dict[str, Sequence[Any]],
                 measures: Sequence[str] = ("rmse", "mae"), cv: Any = None,
                 refit: bool = False, return_train_measures: bool = False, n_jobs: int = 1,
                 pre_dispatch: Any = None, joblib_verbose: int = 0) -> None:
        self.algo_class, self.param_grid = algo_class, param_grid
        self.measures = [m.lower() for m in measures]
        self.cv, self.refit = cv, refit

    def fit(self, data: Dataset) -> None:
        """Runs the search."""
        keys = list(self.param_grid)
        combos = [dict(zip(keys, values))
                  for values in itertools.product(*(self.param_grid[k] for k in keys))]
        results = []
        for params in combos:
            scores = cross_validate(self.algo_class(**params), data,
                                                    self.measures, self.cv)
            results.append((params, {m: float(scores[f"test_{m}"].mean())
                                     for m in self.measures}))
        self.cv_results = {"params": [p for p, _ in results]}
        for m in self.measures:
            self.cv_results[f"mean_test_{m}"] = np.array([s[m] for _, s in results])
        self.best_params, self.best_score, self.best_index, self.best_estimator = {}, {}, {}, {}
        for m in self.measures:
            k = int(np.argmin(self.cv_results[f"mean_test_{m}"]))  # errors: lower is better
            self.best_index[m] = k
            self.best_params[m] = results[k][0]
            self.best_score[m] = results[k][1][m]
            self.best_estimator[m] = self.algo_class(**results[k][0])
        if self.refit:
            best = self.best_estimator[self.measures[0]]
            best.fit(data.build_full_trainset())
            self.test = best.test
            self.predict = best.predict

