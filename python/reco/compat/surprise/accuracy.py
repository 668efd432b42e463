"""Surprise's ``accuracy``: RMSE, MSE and MAE of a list of predictions."""

from typing import Sequence

import numpy as np


def _errors(predictions: Sequence) -> np.ndarray:
    if not predictions:
        raise ValueError("Prediction list is empty.")
    return np.array([p.r_ui - p.est for p in predictions], dtype=float)


def rmse(predictions: Sequence, verbose: bool = True) -> float:
    """Root mean squared error."""
    v = float(np.sqrt(np.mean(_errors(predictions) ** 2)))
    if verbose:
        print(f"RMSE: {v:1.4f}")
    return v


def mse(predictions: Sequence, verbose: bool = True) -> float:
    """Mean squared error."""
    v = float(np.mean(_errors(predictions) ** 2))
    if verbose:
        print(f"MSE: {v:1.4f}")
    return v


def mae(predictions: Sequence, verbose: bool = True) -> float:
    """Mean absolute error."""
    v = float(np.mean(np.abs(_errors(predictions))))
    if verbose:
        print(f"MAE:  {v:1.4f}")
    return v
