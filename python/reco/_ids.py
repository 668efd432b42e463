"""The caller's ids ↔ reco's dense indices."""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from ._errors import UnknownIdError

try:  # pandas' hash tables factorize and look up object arrays several times faster
    import pandas as _pd
except ImportError:  # pragma: no cover - exercised where pandas is absent
    _pd = None


def factorize(values: Any, what: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)``: ``uniques[codes] == values``, uniques in order of appearance."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what}: expected a 1-dimensional sequence, got shape {arr.shape}")
    if _pd is not None:
        codes, uniques = _pd.factorize(arr)
        if (codes < 0).any():
            raise ValueError(f"{what}: missing ids (None or NaN) at position "
                             f"{int(np.argmax(codes < 0))}")
        return codes.astype(np.int64, copy=False), np.asarray(uniques)
    if arr.dtype == object and any(v is None for v in arr):
        raise ValueError(f"{what}: missing ids (None)")
    uniques, first, codes = np.unique(arr, return_index=True, return_inverse=True)
    # np.unique sorts; keep the order of appearance like pandas.
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[codes.reshape(-1)].astype(np.int64), uniques[order]


def as_array(ids: Any) -> np.ndarray:
    """``ids`` as a 1-D array; a list mixing strings with other ids stays a list of objects
    (numpy would turn every id into a string, and ``5`` would be looked up as ``"5"``)."""
    arr = np.asarray(ids)
    if arr.ndim == 0:
        return arr.reshape(1)
    if (arr.dtype.kind in "US" and not isinstance(ids, np.ndarray)
            and any(not isinstance(x, (str, bytes)) for x in ids)):
        out = np.empty(len(ids), dtype=object)
        out[:] = list(ids)
        return out
    return arr


class IdIndex:
    """Looks ids up as indices: ``index(ids)`` for arrays, ``one(id)`` for a single id."""

    def __init__(self, ids: np.ndarray, what: str) -> None:
        self._ids = ids
        self._what = what
        if _pd is not None:
            self._index = _pd.Index(ids)
            self._map = None
        else:
            self._index = None
            self._map = {v: k for k, v in enumerate(ids.tolist())}

    def lookup(self, ids: Any) -> np.ndarray:
        """Indices of ``ids``, -1 where unknown."""
        arr = as_array(ids)
        if self._index is not None:
            return self._index.get_indexer(arr).astype(np.int64, copy=False)
        m = self._map
        return np.fromiter((m.get(v, -1) for v in arr.tolist()), dtype=np.int64,
                           count=len(arr))

    def index(self, ids: Any) -> np.ndarray:
        """Indices of ``ids``; an unknown id raises :class:`reco.UnknownIdError`."""
        idx = self.lookup(ids)
        bad = np.flatnonzero(idx < 0)
        if len(bad):
            first = as_array(ids)[bad[0]]
            shown = first.item() if isinstance(first, np.generic) else first
            raise UnknownIdError(
                f"{self._what} {shown!r} is not in the model's training data"
                + (f" ({len(bad)} unknown ids in all)" if len(bad) > 1 else ""))
        return idx

    def ids(self, idx: np.ndarray) -> np.ndarray:
        """The ids at ``idx``; -1 (padding) becomes a missing value of the ids' type."""
        out = self._ids[np.where(idx < 0, 0, idx)]
        pad = idx < 0
        if pad.any():
            if out.dtype.kind in "iu":
                out = out.astype(np.int64)
                out[pad] = -1
            elif out.dtype.kind == "f":
                out[pad] = np.nan
            else:
                out = out.astype(object)
                out[pad] = None
        return out
