"""Shared data for the Python tests."""

import importlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import reco


@pytest.fixture(scope="session")
def notebook():
    """The notebook data: 30 users, 60 items, explicit ratings, item categories and text."""
    return reco.synthetic("notebook")


@pytest.fixture(scope="session")
def implicit():
    """Implicit data with integer ids: 300 users, 200 items, 6,000 interactions."""
    rng = np.random.default_rng(7)
    users = rng.integers(1000, 1300, size=6000)
    # Items drawn with a popularity skew so that models have something to learn.
    items = 5000 + np.minimum(rng.zipf(1.3, size=6000), 200) - 1
    return reco.Dataset.from_arrays(users, items, duplicates="sum")


def peer(name):
    """Imports a peer package (implicit, surprise) for a side-by-side test: skipped where it
    is not installed, unless RECO_REQUIRE_PEERS is set (scripts/test.sh installs them)."""
    if os.environ.get("RECO_REQUIRE_PEERS"):
        return importlib.import_module(name)
    return pytest.importorskip(name)


@pytest.fixture(scope="session")
def reco_exe():
    """The command line, to check that it agrees with the package: on the PATH or built in
    target/ (release first); the test is skipped without one."""
    root = Path(__file__).resolve().parents[2]
    built = (root / "target" / "release" / "reco", root / "target" / "debug" / "reco")
    exe = shutil.which("reco") or next((str(p) for p in built if p.exists()), None)
    if exe is None:
        pytest.skip("no reco binary built")
    return exe
