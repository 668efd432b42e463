"""Surprise's everyday API on reco's models: change ``from surprise import ...`` lines to
this module.

    from reco.compat.surprise import Dataset, Reader, SVD, accuracy
    from reco.compat.surprise.model_selection import cross_validate
    data = Dataset.load_from_df(df[["user", "item", "rating"]], Reader(rating_scale=(1, 5)))
    cross_validate(SVD(), data, measures=["RMSE", "MAE"], cv=5, verbose=True)

Predictions are clipped to the reader's rating scale as Surprise does; unknown users or items
get the model's fallback and ``details["was_impossible"] = True``.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..._data import Dataset as _RecoDataset
from ..._model import Model

__all__ = [
    "Reader", "Dataset", "Trainset", "Prediction", "AlgoBase", "SVD", "SVDpp", "NMF",
    "KNNBasic", "KNNWithMeans", "KNNWithZScore", "KNNBaseline", "BaselineOnly", "SlopeOne",
    "CoClustering", "accuracy", "model_selection",
]

Prediction = namedtuple("Prediction", ["uid", "iid", "r_ui", "est", "details"])
Prediction.__doc__ = "A rating prediction: raw ids, true rating, estimate, details."


class Reader:
    """How ratings are read: the rating scale (and, for files, the line format)."""

    def __init__(self, name: Optional[str] = None, line_format: str = "user item rating",
                 sep: Optional[str] = None, rating_scale: Tuple[float, float] = (1, 5),
                 skip_lines: int = 0) -> None:
        if name == "ml-100k":
            line_format, sep, rating_scale = "user item rating timestamp", "\t", (1, 5)
        self.line_format = line_format.split()
        self.sep = sep
        self.rating_scale = rating_scale
        self.skip_lines = skip_lines


class Dataset:
    """Raw ratings ``(user, item, rating)`` and their reader."""

    def __init__(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                 reader: Reader) -> None:
        self.users, self.items = users, items
        self.ratings = ratings.astype(np.float32)
        self.reader = reader

    @classmethod
    def load_from_df(cls, df: Any, reader: Reader) -> "Dataset":
        """A DataFrame whose first three columns are user, item and rating."""
        cols = list(df.columns[:3])
        return cls(df[cols[0]].to_numpy(), df[cols[1]].to_numpy(), df[cols[2]].to_numpy(),
                   reader)

    @classmethod
    def load_from_file(cls, file_path: str, reader: Reader) -> "Dataset":
        """A text file in the reader's line format."""
        users, items, ratings = [], [], []
        fields = reader.line_format
        with open(file_path) as f:
            for n, line in enumerate(f):
                if n < reader.skip_lines or not line.strip():
                    continue
                parts = line.rstrip("\n").split(reader.sep)
                row = dict(zip(fields, parts))
                users.append(row["user"].strip())
                items.append(row["item"].strip())
                ratings.append(float(row["rating"]))
        return cls(np.array(users, dtype=object), np.array(items, dtype=object),
                   np.array(ratings), reader)

    def build_full_trainset(self) -> "Trainset":
        """Every rating, for training."""
        return Trainset(self.users, self.items, self.ratings, self.reader.rating_scale)

    def _subset(self, idx: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.users[idx], self.items[idx], self.ratings[idx]


class Trainset:
    """Ratings to fit on, with Surprise's descriptive attributes."""

    def __init__(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                 rating_scale: Tuple[float, float]) -> None:
        self._raw = (users, items, ratings)
        self.rating_scale = rating_scale
        self.data = _RecoDataset.from_arrays(users, items, ratings, feedback="explicit")
        self.n_users = self.data.n_users
        self.n_items = self.data.n_items
        self.n_ratings = len(ratings)
        self.global_mean = float(np.mean(ratings)) if len(ratings) else 0.0

    def all_users(self) -> range:
        """Inner user ids."""
        return range(self.n_users)

    def all_items(self) -> range:
        """Inner item ids."""
        return range(self.n_items)

    def to_raw_uid(self, inner: int) -> Any:
        """The raw id of an inner user id."""
        return self.data.user_ids[inner]

    def to_raw_iid(self, inner: int) -> Any:
        """The raw id of an inner item id."""
        return self.data.item_ids[inner]

    def build_testset(self) -> List[Tuple[Any, Any, float]]:
        """The training ratings as a test set."""
        u, i, r = self._raw
        return list(zip(u.tolist(), i.tolist(), r.tolist()))

    def build_anti_testset(self, fill: Optional[float] = None) -> List[Tuple[Any, Any, float]]:
        """Every (user, item) pair without a rating, with ``fill`` (default the mean)."""
        value = self.global_mean if fill is None else fill
        u, i, _ = self._raw
        known = set(zip(u.tolist(), i.tolist()))
        users, items = self.data.user_ids.tolist(), self.data.item_ids.tolist()
        return [(a, b, value) for a in users for b in items if (a, b) not in known]


class AlgoBase:
    """fit / predict / test over a reco model built from the subclass's parameters."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._model: Optional[Model] = None
        self._known_users: set = set()
        self._known_items: set = set()
        self._scale = (1.0, 5.0)

    def _spec(self) -> Dict[str, Any]:
        raise NotImplementedError

    def fit(self, trainset: Trainset) -> "AlgoBase":
        """Fits on a trainset; returns the algorithm."""
        seed = self._kwargs.get("random_state")
        self._model = Model(self._spec()).fit(trainset.data, seed=42 if seed is None else int(seed))
        self._known_users = set(trainset.data.user_ids.tolist())
        self._known_items = set(trainset.data.item_ids.tolist())
        self._scale = trainset.rating_scale
        self.trainset = trainset
        return self

    def predict(self, uid: Any, iid: Any, r_ui: Optional[float] = None, clip: bool = True,
                verbose: bool = False) -> Prediction:
        """The estimated rating of ``iid`` by ``uid`` (raw ids)."""
        if self._model is None:
            raise ValueError("fit the algorithm before predicting")
        est = float(self._model.predict(uid, iid))
        impossible = uid not in self._known_users or iid not in self._known_items
        if clip:
            est = min(max(est, self._scale[0]), self._scale[1])
        details = {"was_impossible": impossible}
        if impossible:
            details["reason"] = "User and/or item is unknown."
        pred = Prediction(uid, iid, r_ui, est, details)
        if verbose:
            print(pred)
        return pred

    def test(self, testset: Sequence[Tuple[Any, Any, float]], verbose: bool = False) -> List[Prediction]:
        """Predictions for every ``(uid, iid, r_ui)`` of a test set, computed in one batch."""
        if self._model is None:
            raise ValueError("fit the algorithm before testing")
        if not testset:
            return []
        users, items, truth = zip(*testset)
        est = np.asarray(self._model.predict(np.asarray(users, dtype=object),
                                             np.asarray(items, dtype=object)), dtype=float)
        est = np.clip(est, self._scale[0], self._scale[1])
        out = []
        for u, i, r, e in zip(users, items, truth, est.tolist()):
            impossible = u not in self._known_users or i not in self._known_items
            out.append(Prediction(u, i, r, e, {"was_impossible": impossible}))
        if verbose:
            for p in out:
                print(p)
        return out


def _lr_reg(kw: Dict[str, Any], lr: float, reg: float) -> Dict[str, Any]:
    spec: Dict[str, Any] = {"learning_rate": kw.get("lr_all", lr),
                            "regularization": kw.get("reg_all", reg)}
    for part in ("bu", "bi", "pu", "qi"):
        if kw.get(f"lr_{part}") is not None:
            spec[f"learning_rate_{part}"] = kw[f"lr_{part}"]
        if kw.get(f"reg_{part}") is not None:
            spec[f"regularization_{part}"] = kw[f"reg_{part}"]
    return spec


class SVD(AlgoBase):
    """Surprise's SVD (Funk SVD with biases): reco's ``svd``."""

    def __init__(self, n_factors: int = 100, n_epochs: int = 20, biased: bool = True,
                 init_mean: float = 0, init_std_dev: float = 0.1, lr_all: float = 0.005,
                 reg_all: float = 0.02, random_state: Any = None, verbose: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(n_factors=n_factors, n_epochs=n_epochs, biased=biased,
                         init_mean=init_mean, init_std_dev=init_std_dev, lr_all=lr_all,
                         reg_all=reg_all, random_state=random_state, **kwargs)

    def _spec(self) -> Dict[str, Any]:
        kw = self._kwargs
        return {"model": "svd", "factors": kw["n_factors"], "epochs": kw["n_epochs"],
                "biased": kw["biased"], "init_mean": kw["init_mean"],
                "init_std": kw["init_std_dev"], **_lr_reg(kw, 0.005, 0.02)}


class SVDpp(AlgoBase):
    """Surprise's SVD++: reco's ``svdpp``."""

    def __init__(self, n_factors: int = 20, n_epochs: int = 20, init_mean: float = 0,
                 init_std_dev: float = 0.1, lr_all: float = 0.007, reg_all: float = 0.02,
                 random_state: Any = None, verbose: bool = False, **kwargs: Any) -> None:
        super().__init__(n_factors=n_factors, n_epochs=n_epochs, init_std_dev=init_std_dev,
                         lr_all=lr_all, reg_all=reg_all, random_state=random_state)

    def _spec(self) -> Dict[str, Any]:
        kw = self._kwargs
        return {"model": "svdpp", "factors": kw["n_factors"], "epochs": kw["n_epochs"],
                "init_std": kw["init_std_dev"], "learning_rate": kw["lr_all"],
                "regularization": kw["reg_all"]}


class NMF(AlgoBase):
    """Surprise's NMF: reco's ``nmf``."""

    def __init__(self, n_factors: int = 15, n_epochs: int = 50, reg_pu: float = 0.06,
                 reg_qi: float = 0.06, init_low: float = 0, init_high: float = 1,
                 random_state: Any = None, verbose: bool = False, **kwargs: Any) -> None:
        super().__init__(n_factors=n_factors, n_epochs=n_epochs, reg_pu=reg_pu, reg_qi=reg_qi,
                         init_low=init_low, init_high=init_high, random_state=random_state)

    def _spec(self) -> Dict[str, Any]:
        kw = self._kwargs
        return {"model": "nmf", "factors": kw["n_factors"], "epochs": kw["n_epochs"],
                "regularization_pu": kw["reg_pu"], "regularization_qi": kw["reg_qi"],
                "init_low": kw["init_low"], "init_high": kw["init_high"]}


def _baseline(bsl: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {"method": bsl.get("method", "als")}
    names = {"n_epochs": "epochs", "reg_u": "regularization_bu", "reg_i": "regularization_bi",
             "reg": "regularization", "learning_rate": "learning_rate"}
    for k, v in bsl.items():
        if k in names:
            out[names[k]] = v
    return out


class _KNN(AlgoBase):
    prediction = "basic"

    def __init__(self, k: int = 40, min_k: int = 1, sim_options: Optional[Dict[str, Any]] = None,
                 bsl_options: Optional[Dict[str, Any]] = None, verbose: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(k=k, min_k=min_k, sim_options=dict(sim_options or {}),
                         bsl_options=dict(bsl_options or {}))

    def _spec(self) -> Dict[str, Any]:
        kw = self._kwargs
        sim = kw["sim_options"]
        name = sim.get("name", "msd").replace("_", "-")
        spec = {"model": "user-knn" if sim.get("user_based", True) else "item-knn",
                "k": kw["k"], "min_k": kw["min_k"], "similarity": name,
                "min_support": sim.get("min_support", 1), "prediction": self.prediction}
        if "shrinkage" in sim:
            spec["shrinkage"] = sim["shrinkage"]
        if kw["bsl_options"]:
            spec["baseline"] = _baseline(kw["bsl_options"])
        return spec


class KNNBasic(_KNN):
    """Surprise's KNNBasic: reco's ``user-knn`` or ``item-knn``, basic prediction."""


class KNNWithMeans(_KNN):
    """Surprise's KNNWithMeans."""

    prediction = "with-means"


class KNNWithZScore(_KNN):
    """Surprise's KNNWithZScore."""

    prediction = "with-zscore"


class KNNBaseline(_KNN):
    """Surprise's KNNBaseline (baselines by ALS unless ``bsl_options`` says otherwise)."""

    prediction = "baseline"


class BaselineOnly(AlgoBase):
    """Surprise's BaselineOnly: μ + b_u + b_i, reco's ``baseline``."""

    def __init__(self, bsl_options: Optional[Dict[str, Any]] = None, verbose: bool = True) -> None:
        super().__init__(bsl_options=dict(bsl_options or {}))

    def _spec(self) -> Dict[str, Any]:
        return {"model": "baseline", **_baseline(self._kwargs["bsl_options"])}


class SlopeOne(AlgoBase):
    """Surprise's SlopeOne: reco's ``slope-one``."""

    def _spec(self) -> Dict[str, Any]:
        return {"model": "slope-one"}


class CoClustering(AlgoBase):
    """Surprise's CoClustering: reco's ``coclustering``."""

    def __init__(self, n_cltr_u: int = 3, n_cltr_i: int = 3, n_epochs: int = 20,
                 random_state: Any = None, verbose: bool = False) -> None:
        super().__init__(n_cltr_u=n_cltr_u, n_cltr_i=n_cltr_i, n_epochs=n_epochs,
                         random_state=random_state)

    def _spec(self) -> Dict[str, Any]:
        kw = self._kwargs
        return {"model": "coclustering", "user_clusters": kw["n_cltr_u"],
                "item_clusters": kw["n_cltr_i"], "epochs": kw["n_epochs"]}


from . import accuracy, model_selection  # noqa: E402 - they use the classes above
