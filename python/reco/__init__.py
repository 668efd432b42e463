"""reco from Python: every reco model, split and metric, in the caller's ids.

    >>> import reco
    >>> data = reco.synthetic("notebook")
    >>> model = reco.IALS(factors=16, epochs=10).fit(data)
    >>> items, scores = model.recommend(data.user_ids[0], n=5)

Data come in as pandas DataFrames (:meth:`Dataset.from_pandas`), scipy.sparse matrices
(:meth:`Dataset.from_sparse`), arrays (:meth:`Dataset.from_arrays`) or files
(:func:`load`); models are built from the specifications of ``reco train --model``
(:class:`Model`, :func:`kinds`) and answer in the caller's ids. Long work releases the
interpreter lock and batch calls use every core.
"""

from . import _reco
from ._data import Dataset, load, synthetic
from ._eval import evaluate
from ._errors import (
    ArtifactError,
    DataError,
    RecoError,
    ResourceError,
    SpecError,
    StoppedError,
    StorageError,
    TrainingError,
    UnknownIdError,
    UnsupportedError,
)
from ._model import ALS, BPR, IALS, SVD, Hybrid, ItemKNN, Model, Pipeline, SVDpp, TwoTower, UserKNN

__version__ = _reco.version()


def kinds() -> dict:
    """The model kinds, as ``reco models --json`` lists them: ``{name: {"summary",
    "capabilities", "renamed", "examples"}}``; every example is a specification
    :class:`Model` accepts."""
    import json

    return {k.pop("kind"): k for k in json.loads(_reco.kinds_json())}


__all__ = [
    "ALS", "BPR", "IALS", "SVD", "SVDpp", "Hybrid", "ItemKNN", "UserKNN", "TwoTower", "Pipeline",
    "Model", "Dataset", "load", "synthetic", "kinds", "evaluate",
    "RecoError", "DataError", "SpecError", "TrainingError", "ArtifactError", "StorageError",
    "UnsupportedError", "ResourceError", "StoppedError", "UnknownIdError",
]
