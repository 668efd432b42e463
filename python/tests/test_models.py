"""Models through reco.Model: every kind, hand-computed answers, cross-checks, errors."""

import threading
import time

import numpy as np
import pytest

import reco


def test_popularity_ranks_by_count_and_leaves_seen_items_out():
    # a: 3 users, b: 2, c: 1, d: 1 (ties broken by the lower index, d after c).
    d = reco.Dataset.from_arrays(
        ["u1", "u1", "u2", "u2", "u3", "u4", "u4"],
        ["a", "b", "a", "b", "a", "c", "d"])
    m = reco.Model("popularity").fit(d)
    items, scores = m.recommend("u3", n=3)
    assert list(items) == ["b", "c", "d"]
    assert list(scores) == sorted(scores, reverse=True)
    items, _ = m.recommend("u3", n=4, filter_seen=False)
    assert list(items) == ["a", "b", "c", "d"]
    # u1 saw a and b: two candidates remain; the row is padded to n.
    items, scores = m.recommend(["u1", "u4"], n=3)
    assert items.shape == (2, 3)
    assert list(items[0][:2]) == ["c", "d"] and items[0][2] is None and np.isnan(scores[0][2])
    assert list(items[1][:2]) == ["a", "b"]
    # Restricting the candidates.
    items, _ = m.recommend("u4", n=2, items=["b", "c"])
    assert list(items) == ["b"] + [None]


def test_every_kind_fits_and_recommends_through_model(notebook):
    # Ranking kinds on scalable synthetic data (timestamps, item and user features, as some
    # need); rating kinds on the notebook's explicit ratings.
    implicit = reco.synthetic("users=200,items=150,interactions=5000,seed=3")
    kinds = reco.kinds()
    assert {"popularity", "ials", "item-knn", "svd", "two-tower", "pipeline"} <= set(kinds)
    for name, info in kinds.items():
        caps = info["capabilities"]
        data = notebook if "rates" in caps and "ranks" not in caps else implicit
        seen = data.to_pandas().groupby("user")["item"].apply(set)
        users = data.user_ids[:5]
        m = reco.Model(info["examples"][0]).fit(data, seed=1)
        items, scores = m.recommend(users, n=5)
        assert items.shape == (5, 5), name
        for u, row, s in zip(users, items, scores):
            assert not set(row) & seen[u], f"{name} recommended a seen item"
            assert len(set(row)) == 5, name
            if "listwise" not in caps:  # re-rankers reorder (MMR)
                finite = s[np.isfinite(s)]
                assert list(finite) == sorted(finite, reverse=True), name
        if data is notebook:
            assert np.isfinite(m.predict(users, items[:, 0])).all(), name
        if "similar-items" in caps:
            near, _ = m.similar_items(data.item_ids[0], n=3)
            assert data.item_ids[0] not in set(near), name


def test_implicit_als_scores_are_inner_products_of_its_factors(implicit):
    m = reco.IALS(factors=8, epochs=5).fit(implicit)
    U, V = m.user_factors, m.item_factors
    assert U.shape == (implicit.n_users, 8) and V.shape == (implicit.n_items, 8)
    users = implicit.user_ids[:20]
    items, scores = m.recommend(users, n=10, filter_seen=False)
    uidx = {u: k for k, u in enumerate(implicit.user_ids)}
    iidx = {i: k for k, i in enumerate(implicit.item_ids)}
    for u, row, s in zip(users, items, scores):
        expected = np.array([U[uidx[u]] @ V[iidx[i]] for i in row])
        np.testing.assert_allclose(s, expected, rtol=1e-4, atol=1e-5)
        # ... and they are the 10 best of all items.
        full = V @ U[uidx[u]]
        assert s[-1] >= np.sort(full)[-10] - 1e-5


def test_factor_matrices_are_read_only_views_that_outlive_a_refit(implicit):
    m = reco.IALS(factors=8, epochs=3).fit(implicit)
    raw = m._m
    a, b = raw.item_factors(), raw.item_factors()
    # Two calls lend the same memory: nothing was copied.
    assert np.shares_memory(a, b)
    assert not a.flags.writeable and not a.flags.owndata
    with pytest.raises(ValueError):
        a[0, 0] = 1.0
    before = a.copy()
    # A refit replaces the model; the arrays still hold the old one's values.
    m.fit(implicit, seed=99)
    del raw
    import gc

    gc.collect()
    np.testing.assert_array_equal(a, before)
    assert not np.array_equal(m.item_factors, before)


def test_rating_predictions_agree_with_the_ranking_scores(notebook):
    m = reco.SVD(factors=8, epochs=20).fit(notebook)
    u = notebook.user_ids[3]
    items, scores = m.recommend(u, n=8)
    np.testing.assert_allclose(m.predict(u, items), scores, rtol=1e-5)
    single = m.predict(u, items[0])
    assert isinstance(single, float) and abs(single - scores[0]) < 1e-4
    # An unknown user gets the model's fallback, the same for every unknown id.
    a, b = m.predict(["nobody", "ghost"], [items[0], items[0]])
    assert a == b and 1.0 <= a <= 5.0


def test_similar_items_and_histories(implicit):
    m = reco.ItemKNN(similarity="vector-cosine").fit(implicit)
    first = implicit.item_ids[0]
    items, scores = m.similar_items(first, n=5)
    assert first not in set(items)
    assert list(scores) == sorted(scores, reverse=True)
    both, _ = m.similar_items(implicit.item_ids[:2], n=5)
    assert both.shape == (2, 5) and list(both[0]) == list(items)
    # A newcomer with a history: its items are left out, unknown items ignored.
    hist = list(implicit.item_ids[:3]) + ["never-seen"]
    rec, _ = m.recommend_history(hist, n=5)
    assert not set(rec) & set(hist)
    # A known user's history through the history form gives the same list as by id.
    u = implicit.user_ids[0]
    df = implicit.to_pandas()
    own = df[df.user == u]
    by_id, _ = m.recommend(u, n=5)
    by_hist, _ = m.recommend_history(own.item.to_numpy(), own.value.to_numpy(), n=5)
    assert list(by_id) == list(by_hist)


def test_errors_are_python_exceptions_with_the_command_lines_messages(notebook):
    with pytest.raises(reco.SpecError, match="factorz"):
        reco.Model("ials", factorz=3)
    with pytest.raises(reco.SpecError, match="unknown model kind"):
        reco.Model("deep-magic")
    m = reco.Model("popularity")
    with pytest.raises(reco.UnsupportedError, match="not fitted"):
        m.recommend("1")
    m.fit(notebook)
    with pytest.raises(reco.UnsupportedError, match="a popularity model does not find similar items"):
        m.similar_items(notebook.item_ids[0])
    with pytest.raises(NotImplementedError):
        m.user_factors
    with pytest.raises(KeyError, match="user 'nobody' is not in the model's training data"):
        m.recommend("nobody")
    with pytest.raises(reco.SpecError, match="at least 1"):
        m.recommend(notebook.user_ids[0], n=0)
    with pytest.raises(reco.UnsupportedError, match="does not predict ratings"):
        m.predict(notebook.user_ids[0], notebook.item_ids[0])


def test_a_fit_reports_progress_and_stops_when_the_callback_raises(implicit):
    calls = []
    reco.IALS(factors=4, epochs=6).fit(implicit, progress=lambda *a: calls.append(a))
    assert calls and calls[-1][1] == calls[-1][2], "the last report is a finished stage"
    assert any(c[0] == "epoch" for c in calls)

    def stop(stage, done, total, loss):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        reco.IALS(factors=4, epochs=50).fit(implicit, progress=stop)
    # The stop request does not outlive the fit.
    assert reco.IALS(factors=4, epochs=2).fit(implicit).is_fitted


def _other_thread_share(work):
    """The share of `work`'s wall time during which another Python thread ran: near 1 when
    `work` releases the interpreter lock (the other thread spins freely), near 0 when it holds
    it (the other thread runs only in the few 5 ms slices at the call's edges)."""
    count = [0]
    done = threading.Event()

    def spin():
        while not done.is_set():
            count[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        c0, t0 = count[0], time.perf_counter()
        time.sleep(0.2)  # the main thread sleeps: the spinner runs alone, at full speed
        rate = (count[0] - c0) / (time.perf_counter() - t0)
        c0, t0 = count[0], time.perf_counter()
        work()
        elapsed = time.perf_counter() - t0
        during = count[0] - c0
    finally:
        done.set()
        t.join()
    return during / (rate * elapsed)


def test_fit_and_batch_recommendation_release_the_interpreter():
    data = reco.synthetic("users=3000,items=1000,interactions=150000,seed=2")
    m = reco.IALS(factors=32, epochs=15)
    assert _other_thread_share(lambda: m.fit(data)) > 0.15
    users = np.tile(data.user_ids, 10)
    assert _other_thread_share(lambda: m.recommend(users, n=50)) > 0.15
    # The measure tells a call that holds the lock: a builtin loop of C code.
    assert _other_thread_share(lambda: sum(range(20_000_000))) < 0.15


def test_a_pipeline_file_is_a_model(tmp_path):
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    m = reco.Model.from_file(root / "examples" / "pipeline.toml")
    assert m.kind == "pipeline" and not m.is_fitted
    data = reco.synthetic("users=200,items=150,interactions=5000,seed=3")
    items, _ = m.fit(data).recommend(data.user_ids[0], n=5)
    assert len(set(items)) == 5
    f = tmp_path / "m.toml"
    f.write_text('model = "ials"\nfactorz = 3\n')
    with pytest.raises(reco.SpecError, match="factorz"):
        reco.Model.from_file(f)


CTRL_C_SCRIPT = """
import signal, sys, time
import reco
signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell may start us ignoring it
data = reco.synthetic("users=5000,items=2000,interactions=200000,seed=2")
print("fitting", flush=True)
try:
    reco.IALS(factors=32, epochs=100000).fit(data)
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    print("next fit", reco.IALS(factors=4, epochs=2).fit(data).is_fitted, flush=True)
"""


def test_ctrl_c_stops_a_fit_with_keyboard_interrupt_and_the_next_fit_runs():
    import signal
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "fitting"
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=120)
    finally:
        child.kill()
    assert out.split("\n")[:2] == ["interrupted", "next fit True"], out
