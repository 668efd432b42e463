"""implicit's everyday API on reco's models: change ``import implicit`` lines to this module.

    from reco.compat.implicit import AlternatingLeastSquares
    model = AlternatingLeastSquares(factors=64, regularization=0.05, iterations=15)
    model.fit(user_items)                       # scipy.sparse CSR, users x items
    ids, scores = model.recommend(userid, user_items[userid], N=10)

Ids are row and column numbers of the matrix, as in implicit. Differences, by design:

- Confidence: implicit weighs a positive by ``alpha * r``, reco by ``1 + alpha * r``; the
  layer passes ``alpha - 1`` (the same confidence on binary data, where most users are).
- ``filter_already_liked_items`` leaves out the items of the training matrix, which is the
  ``user_items`` row implicit's callers pass; with ``recalculate_user=True`` the given row is
  the user's history (reco folds it in without refitting).
- ``similar_items`` returns the item itself first, with the best score, like implicit.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from .._data import Dataset
from .._model import Model

__all__ = [
    "AlternatingLeastSquares",
    "BayesianPersonalizedRanking",
    "LogisticMatrixFactorization",
    "CosineRecommender",
    "BM25Recommender",
    "TFIDFRecommender",
]


class _Recommender:
    """The parts every implicit model shares: fit on a CSR matrix, recommend, similar items."""

    def __init__(self, spec: dict, random_state: Optional[int] = None) -> None:
        self._model = Model(spec)
        self._seed = 42 if random_state is None else int(random_state)
        self._n_items = 0

    def fit(self, user_items: Any, show_progress: bool = True, callback: Any = None) -> None:
        """Fits on a users × items scipy.sparse matrix of interaction strengths."""
        if user_items.shape[0] == 0 or user_items.shape[1] == 0:
            raise ValueError("user_items is empty")
        data = Dataset.from_sparse(user_items, feedback="implicit")
        self._n_items = user_items.shape[1]
        self._model.fit(data, seed=self._seed, progress=bool(show_progress))

    def recommend(self, userid: Any, user_items: Any = None, N: int = 10,
                  filter_already_liked_items: bool = True, filter_items: Any = None,
                  recalculate_user: bool = False, items: Any = None) -> Tuple[np.ndarray, np.ndarray]:
        """The ``N`` best item ids and scores for a user id (1-D arrays) or an array of user
        ids (2-D arrays, one row per user)."""
        allow = self._allowed(filter_items, items)
        if recalculate_user:
            return self._recalculate(userid, user_items, N, filter_already_liked_items, allow)
        ids, scores = self._model.recommend(userid, n=N, filter_seen=filter_already_liked_items,
                                            items=allow)
        return ids, scores

    def _recalculate(self, userid: Any, user_items: Any, N: int, filter_liked: bool,
                     allow: Any) -> Tuple[np.ndarray, np.ndarray]:
        if user_items is None:
            raise ValueError("recalculate_user needs the user's row of user_items")
        rows = user_items.tocsr()
        out_ids, out_scores = [], []
        for r in range(rows.shape[0]):
            row = rows.getrow(r)
            ids, scores = self._model.recommend_history(row.indices, row.data, n=N,
                                                        filter_seen=filter_liked,
                                                        candidates=allow)
            out_ids.append(ids)
            out_scores.append(scores)
        if np.ndim(userid) == 0:
            return out_ids[0], out_scores[0]
        return np.vstack(out_ids), np.vstack(out_scores)

    def _allowed(self, filter_items: Any, items: Any) -> Optional[np.ndarray]:
        if filter_items is None and items is None:
            return None
        allow = np.arange(self._n_items) if items is None else np.asarray(items)
        if filter_items is not None:
            allow = np.setdiff1d(allow, np.asarray(filter_items))
        return allow

    def similar_items(self, itemid: Any, N: int = 10, recalculate_item: bool = False,
                      item_users: Any = None, filter_items: Any = None,
                      items: Any = None) -> Tuple[np.ndarray, np.ndarray]:
        """The item itself, then its ``N - 1`` most similar items, with scores."""
        single = np.ndim(itemid) == 0
        ids = np.atleast_1d(np.asarray(itemid))
        near, scores = self._model.similar_items(ids, n=max(N - 1, 1))
        near, scores = near[:, : N - 1], scores[:, : N - 1]
        top = np.where(np.isfinite(scores[:, :1]), scores[:, :1], 1.0)
        out_ids = np.hstack([ids[:, None], near])
        out_scores = np.hstack([np.maximum(top, 1.0), scores])
        if filter_items is not None or items is not None:
            keep = np.ones_like(out_ids, dtype=bool)
            if filter_items is not None:
                keep &= ~np.isin(out_ids, np.asarray(filter_items))
            if items is not None:
                keep &= np.isin(out_ids, np.asarray(items))
            out_scores = np.where(keep, out_scores, -np.inf)
            order = np.argsort(-out_scores, axis=1, kind="stable")
            out_ids = np.take_along_axis(out_ids, order, axis=1)
            out_scores = np.take_along_axis(out_scores, order, axis=1)
        return (out_ids[0], out_scores[0]) if single else (out_ids, out_scores)

    def save(self, fileobj_or_path: Any) -> None:
        """Writes the model as a reco artifact directory."""
        self._model.save(fileobj_or_path, overwrite=True)


class _Factors(_Recommender):
    @property
    def user_factors(self) -> np.ndarray:
        """User vectors, one row per user (row of the matrix)."""
        return self._model.user_factors

    @property
    def item_factors(self) -> np.ndarray:
        """Item vectors, one row per item (column of the matrix)."""
        return self._model.item_factors


class AlternatingLeastSquares(_Factors):
    """implicit.als.AlternatingLeastSquares: reco's ``ials`` (conjugate gradient)."""

    def __init__(self, factors: int = 100, regularization: float = 0.01, alpha: float = 1.0,
                 dtype: Any = np.float32, use_native: bool = True, use_cg: bool = True,
                 use_gpu: bool = False, iterations: int = 15,
                 calculate_training_loss: bool = False, num_threads: int = 0,
                 random_state: Optional[int] = None) -> None:
        super().__init__({"model": "ials", "factors": factors, "regularization": regularization,
                          "alpha": max(alpha - 1.0, 0.0), "epochs": iterations,
                          "solver": "cg" if use_cg else "cholesky"}, random_state)


class BayesianPersonalizedRanking(_Factors):
    """implicit.bpr.BayesianPersonalizedRanking: reco's ``bpr``."""

    def __init__(self, factors: int = 100, learning_rate: float = 0.01,
                 regularization: float = 0.01, dtype: Any = np.float32, use_gpu: bool = False,
                 iterations: int = 100, verify_negative_samples: bool = True,
                 num_threads: int = 0, random_state: Optional[int] = None) -> None:
        super().__init__({"model": "bpr", "factors": factors, "learning_rate": learning_rate,
                          "regularization": regularization, "epochs": iterations,
                          "verify_negatives": verify_negative_samples}, random_state)


class LogisticMatrixFactorization(_Factors):
    """implicit.lmf.LogisticMatrixFactorization: reco's ``lmf``."""

    def __init__(self, factors: int = 30, learning_rate: float = 1.0,
                 regularization: float = 0.6, dtype: Any = np.float32, iterations: int = 30,
                 neg_prop: int = 30, use_gpu: bool = False, num_threads: int = 0,
                 random_state: Optional[int] = None) -> None:
        super().__init__({"model": "lmf", "factors": factors, "learning_rate": learning_rate,
                          "regularization": regularization, "epochs": iterations},
                         random_state)


class CosineRecommender(_Recommender):
    """implicit.nearest_neighbours.CosineRecommender: item-kNN, whole-vector cosine, ``K``
    neighbours per item."""

    def __init__(self, K: int = 20, num_threads: int = 0) -> None:
        super().__init__({"model": "item-knn", "similarity": "vector-cosine",
                          "max_neighbours": K})


class TFIDFRecommender(_Recommender):
    """implicit.nearest_neighbours.TFIDFRecommender: item-kNN on TF-IDF weighted vectors."""

    def __init__(self, K: int = 20, num_threads: int = 0) -> None:
        super().__init__({"model": "item-knn", "similarity": "tfidf", "max_neighbours": K})


class BM25Recommender(_Recommender):
    """implicit.nearest_neighbours.BM25Recommender: item-kNN on BM25 weighted vectors."""

    def __init__(self, K: int = 20, K1: float = 1.2, B: float = 0.75,
                 num_threads: int = 0) -> None:
        super().__init__({"model": "item-knn", "similarity": "bm25", "max_neighbours": K,
                          "bm25_k1": K1, "bm25_b": B})
