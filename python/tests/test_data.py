"""Data in: DataFrames, sparse matrices, arrays, files; ids kept; bad input refused."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import reco

ROOT = Path(__file__).resolve().parents[2]


def test_a_dataframe_keeps_its_ids_and_merges_duplicates():
    df = pd.DataFrame({
        "uid": [10, 10, 20, 30, 10],
        "iid": ["a", "b", "a", "c", "a"],
        "r": [4.0, 3.0, 5.0, 1.0, 2.0],
    })
    d = reco.Dataset.from_pandas(df, user="uid", item="iid", value="r", duplicates="mean")
    assert (d.n_users, d.n_items, d.nnz) == (3, 3, 4)
    assert d.feedback == "explicit"
    assert list(d.user_ids) == [10, 20, 30] and d.user_ids.dtype.kind == "i"
    assert list(d.item_ids) == ["a", "b", "c"]
    back = d.to_pandas().sort_values(["user", "item"]).reset_index(drop=True)
    # (10, a) was rated 4 then 2: the mean is 3.
    assert back.to_dict("list") == {
        "user": [10, 10, 20, 30], "item": ["a", "b", "a", "c"], "value": [3.0, 3.0, 5.0, 1.0]}


def test_sparse_matrices_in_any_format_give_the_same_dataset():
    dense = np.array([[1, 0, 2], [0, 0, 0], [0, 3, 0]], dtype=np.float32)
    for m in (sp.csr_matrix(dense), sp.coo_matrix(dense), sp.csc_matrix(dense)):
        d = reco.Dataset.from_sparse(m)
        assert (d.n_users, d.n_items, d.nnz) == (3, 3, 3)
        assert d.feedback == "implicit"
        # The empty row is a user without interactions, kept in the id space.
        np.testing.assert_array_equal(d.to_sparse().toarray(), dense)
    named = reco.Dataset.from_sparse(sp.csr_matrix(dense), user_ids=["x", "y", "z"],
                                     item_ids=[7, 8, 9])
    u, i, v, _ = named.to_arrays()
    assert sorted(zip(u.tolist(), i.tolist(), v.tolist())) == [
        ("x", 7, 1.0), ("x", 9, 2.0), ("z", 8, 3.0)]


def test_timestamps_from_datetimes_become_unix_seconds():
    t = np.array(["2020-01-01T00:00:00", "2020-01-01T00:00:10"], dtype="datetime64[ns]")
    d = reco.Dataset.from_arrays(["u", "u"], ["a", "b"], timestamps=t)
    _, _, _, ts = d.to_arrays()
    assert ts.tolist() == [1577836800, 1577836810]
    assert d.has_timestamps


@pytest.mark.parametrize("kwargs, error, words", [
    ({"users": [1, 2], "items": ["a"]}, ValueError, "different lengths"),
    ({"users": [1, None], "items": ["a", "b"]}, ValueError, "missing ids"),
    ({"users": [1, 2], "items": ["a", "b"], "values": [1.0, float("nan")]}, reco.DataError,
     "not a finite number"),
    ({"users": np.array([1, "1"], dtype=object), "items": ["a", "b"]}, reco.DataError,
     "appears twice"),
    ({"users": [1], "items": ["a"], "duplicates": "median"}, reco.SpecError,
     "last, first, sum, max, mean"),
    ({"users": [1], "items": ["a"], "feedback": "both"}, reco.SpecError, "explicit, implicit"),
])
def test_bad_input_raises_a_clear_exception(kwargs, error, words):
    with pytest.raises(error, match=words):
        reco.Dataset.from_arrays(**kwargs)


def test_a_missing_column_is_named():
    df = pd.DataFrame({"user": [1], "item": [2]})
    with pytest.raises(KeyError, match="no column 'rating'"):
        reco.Dataset.from_pandas(df, value="rating")


def test_splits_partition_the_interactions(notebook):
    folds = notebook.split("kfold:3", seed=1)
    assert len(folds) == 3
    tests = [set(zip(*[a.tolist() for a in t.to_arrays()[:2]])) for _, t in folds]
    everything = set(zip(*[a.tolist() for a in notebook.to_arrays()[:2]]))
    assert set().union(*tests) == everything
    assert sum(len(t) for t in tests) == len(everything), "each interaction is tested once"
    for train, test in folds:
        assert train.nnz + test.nnz == notebook.nnz
        assert list(train.user_ids) == list(notebook.user_ids)
    with pytest.raises(reco.SpecError, match="kfold"):
        notebook.split("kfold:1")


def test_loaders_and_the_synthetic_generator():
    nb = reco.synthetic("notebook")
    assert (nb.n_users, nb.n_items, nb.nnz) == (30, 60, 360)
    big = reco.synthetic("users=200,items=100,interactions=3000,seed=3")
    assert (big.n_users, big.n_items) == (200, 100)
    assert big.nnz <= 3000 and big.has_timestamps
    with pytest.raises(reco.SpecError, match="unknown notebook parameter"):
        reco.synthetic("notebook,colour=3")
    with pytest.raises(reco.RecoError, match="not a known dataset directory|No such file"):
        reco.load(ROOT / "python")
    ml = ROOT / "data" / "ml-100k"
    if ml.exists():
        d = reco.load(ml)
        assert (d.n_users, d.n_items, d.nnz) == (943, 1682, 100000)


def test_a_delimited_file_loads(tmp_path):
    f = tmp_path / "ratings.csv"
    f.write_text("user,item,rating\n1,10,4\n1,11,5\n2,10,3\n")
    d = reco.load(f)
    assert (d.n_users, d.n_items, d.nnz, d.feedback) == (2, 2, 3, "explicit")
    assert reco.load(os.fspath(f), threshold=4).nnz == 2
