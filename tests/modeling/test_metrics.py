"""Metrics against sklearn and hand-computed values; the bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from leadscore.modeling.metrics import (
    bootstrap_ci,
    core_metrics,
    ece,
    ece_noise_floor,
    gains_table,
    reliability_curve,
    top_k,
)


def _data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 8, n)
    y = (rng.random(n) < p).astype(int)
    return y, p


def test_core_metrics_match_sklearn():
    y, p = _data()
    m = core_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert m["log_loss"] == pytest.approx(log_loss(y, p))
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))


def test_ece_on_known_inputs():
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    p = np.array([.1, .1, .1, .1, .9, .9, .9, .9])
    # two bins: predicted .1 vs observed .25, predicted .9 vs observed .75
    assert ece(y, p, n_bins=2) == pytest.approx(0.15)
    assert ece(np.array([0, 1] * 50), np.full(100, 0.5)) == pytest.approx(0.0)


def test_ece_noise_floor_is_the_ece_of_labels_drawn_from_the_predictions():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.5, 4000)
    draws = [ece((rng.random(len(p)) < p).astype(int), p) for _ in range(100)]
    floor = ece_noise_floor(p, n_draws=300, seed=1)
    assert floor["mean"] == pytest.approx(np.mean(draws), rel=0.1)
    assert floor["mean"] < floor["p95"]
    small = ece_noise_floor(p[:400], seed=1)
    assert small["mean"] > 2 * floor["mean"]  # fewer rows, more noise (about 1/sqrt(rows))
    assert ece_noise_floor(p, seed=3) == ece_noise_floor(p, seed=3)


def test_weights_equal_repeated_rows():
    y, p = _data(300)
    w = np.random.default_rng(1).integers(0, 4, len(y))
    rep = np.repeat(np.arange(len(y)), w)
    a = core_metrics(y, p, sample_weight=w.astype(float))
    b = core_metrics(y[rep], p[rep])
    for k in ("roc_auc", "pr_auc", "log_loss", "brier"):
        assert a[k] == pytest.approx(b[k])
    assert reliability_curve(y, p, 5, w)["count"].sum() == w.sum()


def test_gains_and_lift():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.linspace(1, 0, 10)
    g = gains_table(y, p, n_groups=5)
    assert g["cum_gain"].iloc[0] == 1.0
    assert g["lift"].iloc[0] == pytest.approx(5.0)
    assert g["cum_share_leads"].iloc[-1] == 1.0


def test_top_k_per_period():
    y = np.array([1, 0, 0, 1, 0, 1])
    p = np.array([.9, .8, .1, .2, .7, .6])
    period = np.array([1, 1, 1, 2, 2, 2])
    r = top_k(y, p, k=1, period=period)
    assert (r["hits"], r["worked"]) == (1, 2)
    assert r["precision_at_k"] == 0.5 and r["recall_at_k"] == pytest.approx(1 / 3)


def test_bootstrap_ci_contains_the_point_estimate_and_is_reproducible():
    y, p = _data(3000)
    q = np.clip(p + np.random.default_rng(2).normal(0, .05, len(p)), 1e-3, 1 - 1e-3)
    groups = np.arange(len(y)) // 3
    ci = bootstrap_ci(y, {"a": p, "b": q}, n_boot=60, seed=0, groups=groups, diff=("a", "b"))
    point = core_metrics(y, p)
    for k, v in point.items():
        assert ci["a"][k][0] <= v <= ci["a"][k][1]
    diff = point["roc_auc"] - core_metrics(y, q)["roc_auc"]
    assert ci["auc_diff"][0] <= diff <= ci["auc_diff"][1]
    assert ci == bootstrap_ci(y, {"a": p, "b": q}, n_boot=60, seed=0, groups=groups, diff=("a", "b"))


def test_bootstrap_fast_path_matches_weighted_sklearn_metrics():
    from leadscore.modeling.metrics import _Prepared

    y, p = _data(1500, seed=3)
    p = np.round(p, 2)  # ties
    w = np.random.default_rng(4).integers(0, 3, len(y)).astype(float)
    fast = _Prepared(y, p, 10).metrics(w)
    ref = core_metrics(y, p, sample_weight=w)
    for k in ("roc_auc", "pr_auc", "log_loss", "brier"):
        assert fast[k] == pytest.approx(ref[k], rel=1e-9), k
    assert _Prepared(y, p, 10).metrics(np.ones(len(y)))["ece"] == pytest.approx(ece(y, p, 10), abs=1e-9)
