"""Artifacts and pickling: the same answers after a round trip, ids of the same type."""

import pickle
import subprocess

import numpy as np
import pytest

import reco

def test_save_and_load_give_the_same_answers_and_integer_ids(implicit, tmp_path):
    m = reco.IALS(factors=8, epochs=4).fit(implicit)
    users = implicit.user_ids[:10]
    before = m.recommend(users, n=7)
    m.save(tmp_path / "m")
    with pytest.raises(reco.ResourceError, match="already exists"):
        m.save(tmp_path / "m")
    m.save(tmp_path / "m", overwrite=True)
    back = reco.Model.load(tmp_path / "m")
    assert back.kind == "ials" and back.spec == m.spec
    after = back.recommend(users, n=7)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_allclose(after[1], before[1])
    assert back.user_ids.dtype.kind == "i", "integer ids come back as integers"
    # A loaded model saves again, and that copy loads too.
    back.save(tmp_path / "copy")
    np.testing.assert_array_equal(reco.Model.load(tmp_path / "copy").recommend(users, n=7)[0],
                                  before[0])


def test_a_damaged_artifact_is_refused(implicit, tmp_path):
    reco.Model("popularity").fit(implicit).save(tmp_path / "m")
    with open(tmp_path / "m" / "model.bin", "r+b") as f:
        f.write(b"\xff")
    with pytest.raises(reco.ArtifactError, match="checksum|model.bin"):
        reco.Model.load(tmp_path / "m")


def test_pickling_round_trips_fitted_and_unfitted_models(notebook):
    m = reco.SVD(factors=4, epochs=5).fit(notebook)
    u = notebook.user_ids[2]
    clone = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(clone.recommend(u, n=5)[0], m.recommend(u, n=5)[0])
    assert clone.predict(u, notebook.item_ids[0]) == pytest.approx(
        m.predict(u, notebook.item_ids[0]))
    fresh = pickle.loads(pickle.dumps(reco.BPR(factors=3)))
    assert not fresh.is_fitted and fresh.spec["factors"] == 3


def test_tampered_pickles_are_refused(notebook):
    state = reco.Model("popularity").fit(notebook).__getstate__()
    state["files"]["../escape"] = b"x"
    m = reco.Model.__new__(reco.Model)
    with pytest.raises(reco.SpecError, match="not a file name"):
        m.__setstate__(state)


def test_the_command_line_reads_what_python_saved(implicit, tmp_path, reco_exe):
    m = reco.Model("popularity").fit(implicit)
    m.save(tmp_path / "m")
    u = implicit.user_ids[0]
    out = subprocess.run([reco_exe, "recommend", "--model", str(tmp_path / "m"), "--user", str(u),
                          "-k", "3", "--json"], capture_output=True, text=True, check=True)
    import json

    cli = [str(r["item"]) for r in json.loads(out.stdout)["recommendations"]]
    assert cli == [str(i) for i in m.recommend(u, n=3)[0]]
