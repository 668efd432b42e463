"""Evaluation from Python agrees with the command line and with metrics recomputed here."""

import json
import subprocess

import numpy as np
import pytest

import reco


def test_evaluate_gives_intervals_and_paired_tests(notebook):
    df = reco.evaluate(notebook, {"pop": "popularity", "knn": {"model": "item-knn"}},
                       protocol="loo", k=[5, 10], baseline="pop")
    assert set(df.model) == {"pop", "knn"}
    ndcg = df[(df.model == "knn") & (df.metric == "ndcg@10")].iloc[0]
    assert ndcg.low <= ndcg["mean"] <= ndcg.high and ndcg.n == 30
    assert "p_value" in df.columns and np.isfinite(ndcg.p_value)
    assert df.attrs["report"]["protocol"] == "loo"
    rmse = df[(df.model == "knn") & (df.metric == "rmse")]
    assert len(rmse) == 1, "rating errors for a rating model"


def test_the_html_report_is_written_and_self_contained(notebook, tmp_path):
    page = tmp_path / "report.html"
    df = reco.evaluate(notebook, {"pop": "popularity", "rnd": "random"}, protocol="loo",
                       k=[1, 5, 10], baseline="rnd", report=page)
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert 'id="ndcg-at-k"' in html and 'id="comparison"' in html
    # Two models over three cutoffs: three marks each on the NDCG curve.
    fig = html[html.index('<figure id="ndcg-at-k"'):]
    fig = fig[:fig.index("</figure>")]
    assert fig.count("<circle") == 6
    assert f"{df[(df.model == 'pop') & (df.metric == 'ndcg@10')]['mean'].iloc[0]:.4f}" in html


def test_a_leave_last_out_hit_rate_recomputed_by_hand(notebook):
    # Popularity on loo: each user's held-out item either is or is not in the top 10
    # of unseen items by count; recompute that here from the split.
    (train, test), = notebook.split("loo", seed=42)
    df = reco.evaluate(notebook, ["popularity"], protocol="loo", k=10, seed=42)
    m = reco.Model("popularity").fit(train)
    tu, ti, _, _ = test.to_arrays()
    hits = []
    for u, i in zip(tu, ti):
        top, _ = m.recommend(u, n=10)
        hits.append(float(i in set(top)))
    got = df[df.metric == "recall@10"]["mean"].iloc[0]
    assert got == pytest.approx(np.mean(hits))


def test_python_and_the_command_line_report_the_same_figures(notebook, reco_exe):
    df = reco.evaluate(notebook, ["item-knn"], protocol="kfold:3", k=10, seed=7)
    out = subprocess.run([reco_exe, "eval", "--data", "synth:notebook", "--protocol", "kfold:3",
                          "--seed", "7", "--k", "10", "--model", "item-knn", "--no-auc", "--json"],
                         capture_output=True, text=True, check=True)
    cli = json.loads(out.stdout)["models"][0]["metrics"]
    for metric in ("ndcg@10", "recall@10", "rmse"):
        py = df[df.metric == metric]["mean"].iloc[0]
        assert py == pytest.approx(cli[metric]["mean"], rel=1e-9), metric
