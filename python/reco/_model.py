"""Models: any reco kind through :class:`Model`, and typed classes for the common ones."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np

from . import _reco
from ._data import Dataset, _as_ids
from ._ids import IdIndex

Spec = Union[str, Dict[str, Any]]


class Model:
    """A recommender of any kind.

    ``Model({"model": "ials", "factors": 64})``, ``Model("ials", factors=64)`` or a typed
    class such as :class:`IALS`. The specification is the one of ``reco train --model``
    (``reco models`` lists kinds and parameters); unknown keys raise :class:`SpecError`.
    Queries take and return the ids of the dataset the model was fitted on.
    """

    #: The kind a typed subclass builds (None: given in the specification).
    kind_name: Optional[str] = None

    def __init__(self, spec: Optional[Spec] = None, **params: Any) -> None:
        if self.kind_name is not None:
            if spec is not None:
                raise TypeError(f"{type(self).__name__} takes keyword parameters only")
            spec = {"model": self.kind_name}
        if spec is None:
            raise TypeError("Model needs a specification, e.g. Model('ials', factors=64)")
        if isinstance(spec, str):
            spec = {"model": spec}
        self._wrap(_reco.Model(json.dumps({**spec, **params})))

    def _wrap(self, inner: Any, users: Optional[np.ndarray] = None,
              items: Optional[np.ndarray] = None, uindex: Optional[IdIndex] = None,
              iindex: Optional[IdIndex] = None) -> None:
        """Holds the extension's model, with the ids it answers in when it is fitted (and
        their lookups, when the dataset has built them already)."""
        self._m = inner
        self._users: Optional[np.ndarray] = users
        self._items: Optional[np.ndarray] = items
        self._uindex = None if users is None else (uindex or IdIndex(users, "user"))
        self._iindex = None if items is None else (iindex or IdIndex(items, "item"))
        self._factors: Dict[str, np.ndarray] = {}

    # -- description -----------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """The model kind ("ials", "item-knn", ...)."""
        return self._m.kind

    @property
    def spec(self) -> Dict[str, Any]:
        """The full specification, defaults filled in."""
        return json.loads(self._m.spec_json())

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has given the model its parameters."""
        return self._m.is_fitted

    @property
    def user_ids(self) -> np.ndarray:
        """Ids of the users the model was fitted on, in index order."""
        self._require()
        return self._users

    @property
    def item_ids(self) -> np.ndarray:
        """Ids of the items the model scores, in index order."""
        self._require()
        return self._items

    def __repr__(self) -> str:
        return repr(self._m)

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, data: Any, seed: int = 42,
            progress: Union[bool, Callable[[str, int, int, Optional[float]], None]] = False
            ) -> "Model":
        """Fits the model on a :class:`Dataset` (a scipy.sparse users × items matrix or a
        DataFrame with columns user and item is converted). ``progress=True`` shows a bar
        (tqdm when installed); a callable receives ``(stage, done, total, loss)``. Returns
        the model. Other Python threads run during the fit; Ctrl-C stops it."""
        data = _as_dataset(data)
        callback = _progress(progress)
        try:
            self._m.fit(data._d, seed, callback)
        finally:
            close = getattr(callback, "close", None)
            if close is not None:
                close()
        self._wrap(self._m, data.user_ids, data.item_ids, data.user_index(), data.item_index())
        return self

    def _require(self) -> None:
        if self._users is None:
            from ._errors import UnsupportedError

            raise UnsupportedError(
                f"this {self.kind} model is not fitted yet: call fit(dataset) first")

    # -- queries ---------------------------------------------------------------------------

    def recommend(self, users: Any, n: int = 10, filter_seen: bool = True,
                  items: Any = None) -> Tuple[np.ndarray, np.ndarray]:
        """The ``n`` best items for a user id (1-D ``(items, scores)``) or for a sequence of
        user ids (2-D arrays, one row per user), best first. ``filter_seen`` leaves out the
        items each user had in training; ``items`` restricts the candidates. Rows with fewer
        candidates than ``n`` end with a missing id (-1 or None) and a NaN score. Users are
        scored in parallel."""
        self._require()
        single = np.ndim(users) == 0
        idx = self._uindex.index(users)
        allow = None if items is None else self._iindex.index(items)
        top, scores = self._m.recommend(idx, n, filter_seen, allow)
        ids = self._iindex.ids(top)
        return (ids[0], scores[0]) if single else (ids, scores)

    def recommend_history(self, items: Any, values: Any = None, n: int = 10,
                          filter_seen: bool = True, candidates: Any = None
                          ) -> Tuple[np.ndarray, np.ndarray]:
        """The ``n`` best items for someone with this history of item ids (and optional
        values), who need not be a training user: a newcomer, or a known user with newer
        interactions, scored without refitting (models without a history form answer as
        for an unknown user). Unknown item ids in the history are ignored."""
        self._require()
        idx = self._iindex.lookup(items)
        keep = idx >= 0
        vals = None
        if values is not None:
            vals = np.ascontiguousarray(np.atleast_1d(values), dtype=np.float32)[keep]
        allow = None if candidates is None else self._iindex.index(candidates)
        top, scores = self._m.recommend_history(idx[keep], vals, n, filter_seen, allow)
        return self._iindex.ids(top), scores

    def similar_items(self, items: Any, n: int = 10) -> Tuple[np.ndarray, np.ndarray]:
        """The ``n`` items most similar to an item id (1-D arrays) or to each of a sequence
        of item ids (2-D arrays), for models with item neighbours or item vectors."""
        self._require()
        single = np.ndim(items) == 0
        top, scores = self._m.similar_items(self._iindex.index(items), n)
        ids = self._iindex.ids(top)
        return (ids[0], scores[0]) if single else (ids, scores)

    def predict(self, users: Any, items: Any) -> Union[float, np.ndarray]:
        """Predicted ratings of ``items`` by ``users`` (ids, scalars or equal-length
        sequences), for rating models; unknown ids get the model's fallback (global mean or
        bias)."""
        self._require()
        single = np.ndim(users) == 0 and np.ndim(items) == 0
        u = self._uindex.lookup(users)
        i = self._iindex.lookup(items)
        if len(u) != len(i):
            if len(u) == 1:
                u = np.repeat(u, len(i))
            elif len(i) == 1:
                i = np.repeat(i, len(u))
        out = self._m.predict(u, i)
        return float(out[0]) if single else out

    @property
    def user_factors(self) -> np.ndarray:
        """User vectors, ``(n_users, dim)``, rows in :attr:`user_ids` order."""
        self._require()
        if "user" not in self._factors:
            self._factors["user"] = self._m.user_factors()
        return self._factors["user"]

    @property
    def item_factors(self) -> np.ndarray:
        """Item vectors, ``(n_items, dim)``, rows in :attr:`item_ids` order."""
        self._require()
        if "item" not in self._factors:
            self._factors["item"] = self._m.item_factors()
        return self._factors["item"]

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: Any, overwrite: bool = False) -> None:
        """Writes the model as an artifact directory (what ``reco recommend --model`` and
        ``reco serve`` read); an existing path is refused unless ``overwrite``."""
        self._require()
        self._m.save(os.fspath(path), overwrite)

    @classmethod
    def from_file(cls, path: Any) -> "Model":
        """An unfitted model from a model file, as ``reco train --model FILE`` reads it: TOML
        (pipeline files such as ``examples/pipeline.toml`` included) or JSON."""
        p = os.fspath(path)
        with open(p, encoding="utf-8") as f:
            text = f.read()
        self = object.__new__(cls)
        self._wrap(_reco.Model.from_text(text, p.endswith(".toml")))
        return self

    @classmethod
    def load(cls, path: Any) -> "Model":
        """Reads an artifact directory (from :meth:`save` or ``reco train --out``), checking
        its checksums. Ids come back as the strings the artifact stores, integers when every
        id is one."""
        inner = _reco.Model.load(os.fspath(path))
        self = object.__new__(cls)
        self._wrap(inner, _native(inner.user_ids()), _native(inner.item_ids()))
        return self

    def __getstate__(self) -> Dict[str, Any]:
        if not self.is_fitted:
            return {"spec": self._m.spec_json()}
        return {"files": self._m.to_files(), "users": self._users, "items": self._items}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        if "files" in state:
            self._wrap(_reco.Model.from_files(state["files"]), state["users"], state["items"])
        else:
            self._wrap(_reco.Model(state["spec"]))


def _native(ids: Any) -> np.ndarray:
    """String ids as integers when every one is the decimal form of an integer."""
    arr = _as_ids(ids)
    if len(arr) and all(isinstance(s, str) and s.lstrip("-").isdigit()
                        and str(int(s)) == s for s in arr):
        return arr.astype(np.int64)
    return arr


def _as_dataset(data: Any) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if hasattr(data, "tocoo"):
        return Dataset.from_sparse(data)
    if hasattr(data, "columns"):
        return Dataset.from_pandas(data)
    raise TypeError(f"cannot fit on a {type(data).__name__}: give a reco.Dataset, a "
                    "scipy.sparse matrix or a DataFrame with user and item columns")


class _Bar:
    """A progress bar for fits: tqdm when installed, else a line on stderr."""

    def __init__(self) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        self._tqdm = tqdm
        self._bar = None
        self._stage = None

    def __call__(self, stage: str, done: int, total: int, loss: Optional[float]) -> None:
        if stage != self._stage:
            self.close()
            self._stage = stage
            if self._tqdm is not None:
                self._bar = self._tqdm(total=total, desc=stage, leave=False)
        if self._bar is not None:
            self._bar.n = done
            if loss is not None:
                self._bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            self._bar.refresh()
        else:
            width = 30
            filled = width * done // max(total, 1)
            tail = f" loss {loss:.4g}" if loss is not None else ""
            sys.stderr.write(f"\r{stage} [{'=' * filled}{' ' * (width - filled)}] "
                             f"{done}/{total}{tail}")
            sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._stage is not None and self._tqdm is None:
            sys.stderr.write("\n")
        self._stage = None


def _progress(progress: Any) -> Optional[Callable[..., None]]:
    if progress is True:
        return _Bar()
    if progress is False or progress is None:
        return None
    if callable(progress):
        return progress
    raise TypeError("progress is True, False or a callable (stage, done, total, loss)")


def _typed(kind: str, name: str, doc: str) -> type:
    return type(name, (Model,), {"kind_name": kind, "__doc__": doc, "__module__": "reco"})


IALS = _typed("ials", "IALS", "Implicit ALS (Hu, Koren & Volinsky): `factors`, `regularization`, `alpha`, `epochs`.")
ALS = _typed("als", "ALS", "ALS on explicit ratings with biases: `factors`, `regularization`, `epochs`.")
BPR = _typed("bpr", "BPR", "Bayesian personalised ranking: `factors`, `learning_rate`, `regularization`, `epochs`.")
ItemKNN = _typed("item-knn", "ItemKNN", "Item-based k nearest neighbours: `similarity`, `k`, `max_neighbours`, `shrinkage`.")
UserKNN = _typed("user-knn", "UserKNN", "User-based k nearest neighbours: `similarity`, `k`, `shrinkage`.")
SVD = _typed("svd", "SVD", "Funk SVD with biases (Surprise's SVD): `factors`, `epochs`, `learning_rate`, `regularization`.")
SVDpp = _typed("svdpp", "SVDpp", "SVD++ (Koren): SVD with implicit feedback from the rated items.")
Hybrid = _typed("hybrid", "Hybrid", "LightFM-style hybrid factorisation with user and item features (WARP, BPR or logistic loss).")
TwoTower = _typed("two-tower", "TwoTower", "Two-tower neural retrieval model with in-batch negatives.")
Pipeline = _typed("pipeline", "Pipeline", "Retrieval + ranking pipeline: candidate sources, a learned ranker, re-rankers (docs/pipeline.md).")
