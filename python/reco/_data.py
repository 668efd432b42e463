"""Datasets: from pandas DataFrames, scipy sparse matrices, numpy arrays, files and the
synthetic generator, keeping the caller's ids."""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import _reco
from ._errors import UnknownIdError
from ._ids import IdIndex, factorize


class Dataset:
    """Interactions in one dense id space, with the caller's user and item ids.

    Build one with :meth:`from_pandas`, :meth:`from_sparse`, :meth:`from_arrays`,
    :func:`reco.load` or :func:`reco.synthetic`. Models fitted on it answer in its ids.
    """

    def __init__(self, inner: _reco.Dataset, user_ids: Optional[np.ndarray] = None,
                 item_ids: Optional[np.ndarray] = None) -> None:
        self._d = inner
        self._users = _as_ids(user_ids if user_ids is not None else inner.user_ids())
        self._items = _as_ids(item_ids if item_ids is not None else inner.item_ids())
        self._uindex: Optional[IdIndex] = None
        self._iindex: Optional[IdIndex] = None

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_arrays(cls, users: Any, items: Any, values: Any = None, timestamps: Any = None,
                    feedback: Optional[str] = None, duplicates: str = "last",
                    name: str = "data") -> "Dataset":
        """One interaction per position of ``users``/``items`` (ids of any hashable type),
        with optional ``values`` (ratings or weights; 1 when absent) and ``timestamps`` (Unix
        seconds or numpy datetimes). ``feedback`` is "explicit" or "implicit" (default:
        explicit when values are given); ``duplicates`` merges repeated (user, item) rows:
        "last", "first", "sum", "max" or "mean"."""
        ucodes, uids = factorize(users, "users")
        icodes, iids = factorize(items, "items")
        vals = None if values is None else _floats(values, "values")
        ts = None if timestamps is None else _seconds(timestamps)
        inner = _reco.Dataset.from_codes(ucodes, icodes, [_text(u) for u in uids],
                                         [_text(i) for i in iids], vals, ts, feedback,
                                         duplicates, name)
        return cls(inner, uids, iids)

    @classmethod
    def from_pandas(cls, df: Any, user: str = "user", item: str = "item",
                    value: Optional[str] = None, timestamp: Optional[str] = None,
                    feedback: Optional[str] = None, duplicates: str = "last",
                    name: str = "data") -> "Dataset":
        """A DataFrame with one row per interaction; ``user``, ``item``, ``value`` and
        ``timestamp`` name its columns (``value`` and ``timestamp`` are optional)."""
        missing = [c for c in (user, item, value, timestamp)
                   if c is not None and c not in df.columns]
        if missing:
            raise UnknownIdError(
                f"the DataFrame has no column {missing[0]!r} (its columns: {list(df.columns)})")
        return cls.from_arrays(df[user].to_numpy(), df[item].to_numpy(),
                               None if value is None else df[value].to_numpy(),
                               None if timestamp is None else df[timestamp].to_numpy(),
                               feedback=feedback, duplicates=duplicates, name=name)

    @classmethod
    def from_sparse(cls, matrix: Any, user_ids: Optional[Sequence[Any]] = None,
                    item_ids: Optional[Sequence[Any]] = None, feedback: str = "implicit",
                    name: str = "data") -> "Dataset":
        """A users × items scipy.sparse matrix (CSR, CSC, COO, ...): each stored entry is an
        interaction with its value. Ids default to the row and column numbers; rows and
        columns without entries stay in the id space (cold users and items)."""
        coo = matrix.tocoo()
        n_users, n_items = coo.shape
        uids = np.arange(n_users) if user_ids is None else _as_ids(user_ids)
        iids = np.arange(n_items) if item_ids is None else _as_ids(item_ids)
        if len(uids) != n_users or len(iids) != n_items:
            raise ValueError(
                f"the matrix is {n_users} x {n_items} but {len(uids)} user ids and "
                f"{len(iids)} item ids were given")
        inner = _reco.Dataset.from_codes(
            np.asarray(coo.row, dtype=np.int64), np.asarray(coo.col, dtype=np.int64),
            [_text(u) for u in uids], [_text(i) for i in iids],
            _floats(coo.data, "values"), None, feedback, "sum", name)
        return cls(inner, uids, iids)

    # -- description -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The dataset's name (file or preset)."""
        return self._d.name

    @property
    def n_users(self) -> int:
        """Number of users."""
        return self._d.n_users

    @property
    def n_items(self) -> int:
        """Number of items."""
        return self._d.n_items

    @property
    def nnz(self) -> int:
        """Number of (user, item) interactions after merging duplicates."""
        return self._d.nnz

    def __len__(self) -> int:
        return self._d.nnz

    @property
    def feedback(self) -> str:
        """"explicit" (ratings) or "implicit"."""
        return self._d.feedback

    @property
    def has_timestamps(self) -> bool:
        """Whether interactions carry timestamps."""
        return self._d.has_timestamps

    @property
    def user_ids(self) -> np.ndarray:
        """The user ids, in index order."""
        return self._users

    @property
    def item_ids(self) -> np.ndarray:
        """The item ids, in index order."""
        return self._items

    def user_index(self) -> IdIndex:
        """Looks user ids up as indices."""
        if self._uindex is None:
            self._uindex = IdIndex(self._users, "user")
        return self._uindex

    def item_index(self) -> IdIndex:
        """Looks item ids up as indices."""
        if self._iindex is None:
            self._iindex = IdIndex(self._items, "item")
        return self._iindex

    def to_arrays(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """``(users, items, values, timestamps or None)``, one entry per interaction, in the
        caller's ids."""
        u, i, v, t = self._d.arrays()
        return self._users[u], self._items[i], v, t

    def to_pandas(self) -> Any:
        """The interactions as a DataFrame with columns user, item, value (and timestamp)."""
        import pandas as pd

        u, i, v, t = self.to_arrays()
        cols = {"user": u, "item": i, "value": v}
        if t is not None:
            cols["timestamp"] = t
        return pd.DataFrame(cols)

    def to_sparse(self) -> Any:
        """The interactions as a users × items scipy.sparse CSR matrix of values."""
        import scipy.sparse as sp

        u, i, v, _ = self._d.arrays()
        return sp.csr_matrix((v, (u, i)), shape=(self.n_users, self.n_items))

    def split(self, protocol: str = "temporal:0.2", seed: int = 42) -> List[Tuple["Dataset", "Dataset"]]:
        """Cuts the data with a protocol of ``reco eval`` ("kfold:5", "holdout:0.2",
        "loo", "temporal:0.2", "timecut:0.9", "cold-users:0.1",
        "cold-items:0.1") into ``(train, test)`` pairs in the same ids."""
        return [(Dataset(a, self._users, self._items), Dataset(b, self._users, self._items))
                for a, b in self._d.split(protocol, seed)]

    def __repr__(self) -> str:
        return repr(self._d)


def load(path: Any, feedback: Optional[str] = None, threshold: Optional[float] = None,
         duplicates: str = "last", skip_bad_rows: bool = False) -> Dataset:
    """Loads what ``reco --data`` reads: a MovieLens 100K/1M/20M directory, RecBole atomic
    files, or a delimited file with a header. ``feedback`` forces "explicit" or "implicit";
    ``threshold`` keeps ratings at or above it as implicit positives."""
    import os

    return Dataset(_reco.load(os.fspath(path), feedback, threshold, duplicates, skip_bad_rows))


def synthetic(spec: str = "notebook") -> Dataset:
    """The embedded synthetic data: "notebook" (30 users, 60 items, 6 categories, as in
    ``reco demo``) or "users=1000,items=500,interactions=20000,seed=7" for the scalable
    generator (Zipf popularity, categories, text, timestamps)."""
    return Dataset(_reco.synthetic(spec))


def _as_ids(ids: Iterable[Any]) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.dtype.kind == "U" or arr.dtype.kind == "S":
        arr = arr.astype(object)
    return arr


def _text(x: Any) -> str:
    if isinstance(x, (bytes, np.bytes_)):
        return x.decode()
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return str(int(x))
    return str(x)


def _floats(values: Any, what: str) -> np.ndarray:
    try:
        return np.ascontiguousarray(values, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: {e}") from None


def _seconds(ts: Any) -> np.ndarray:
    arr = np.asarray(ts)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[s]").astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError("timestamps: missing or non-finite values")
        return arr.astype(np.int64)
    return np.ascontiguousarray(arr, dtype=np.int64)
