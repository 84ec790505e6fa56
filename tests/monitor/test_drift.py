"""PSI and the per-feature summaries it is computed on."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from leadscore.monitor import drift


def test_psi_of_identical_distributions_is_zero():
    assert drift.psi([10, 20, 70], [1, 2, 7]) == pytest.approx(0.0)


def test_psi_known_value():
    # shares 0.5/0.5 -> 0.25/0.75: (-0.25) ln(0.5) + 0.25 ln(1.5)
    expected = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    assert drift.psi([50, 50], [25, 75]) == pytest.approx(expected)
    assert expected == pytest.approx(0.2747, abs=1e-4)


def test_psi_is_symmetric():
    assert drift.psi([30, 70], [60, 40]) == pytest.approx(drift.psi([60, 40], [30, 70]))


def test_psi_empty_bin_uses_the_floor_and_stays_finite():
    value = drift.psi([100, 0], [90, 10], floor=1e-4)
    expected = (0.9 - 1.0) * math.log(0.9 / 1.0) + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    assert math.isfinite(value)
    assert value == pytest.approx(expected)
    assert drift.psi([100, 0], [90, 10], floor=1e-2) < value  # a larger floor damps it


def test_psi_of_an_empty_side_is_zero_and_bin_mismatch_is_an_error():
    assert drift.psi([0, 0], [1, 2]) == 0.0
    with pytest.raises(ValueError, match="bins"):
        drift.psi([1, 2], [1, 2, 3])


def _frames(n: int, seed: int, shift: float = 0.0, source: str = "web") -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    x[:n // 10] = np.nan
    feats = pd.DataFrame({"x": x, "flag": rng.random(n) < 0.3,
                          "source": rng.choice(["web", "event", "referral", source], n)})
    scored = pd.DataFrame({"probability": rng.beta(2, 8, n),
                           "grade": rng.choice(["A1", "B2", "C3", "D4"], n)})
    return feats, scored


def test_summary_counts_every_row_once_and_chunks_merge_to_the_whole():
    feats, scored = _frames(1000, 1)
    spec = drift.bin_spec(feats, scored["probability"], categorical=["source"], bins=5, top_levels=2)
    whole = drift.summarize(feats, scored, spec)
    parts = drift.merge(drift.summarize(feats[:400], scored[:400], spec),
                        drift.summarize(feats[400:], scored[400:], spec))
    assert parts == whole
    for f in whole["features"].values():
        assert sum(f["counts"]) + f["nulls"] == 1000
    assert whole["features"]["x"]["nulls"] == 100
    assert len(spec["features"]["source"]["levels"]) == 2  # the rest is "other"
    assert sum(whole["grades"].values()) == 1000 and set(whole["grades"]) == set(drift.GRADES)
    assert drift.merge(drift.empty_summary(spec), whole) == whole


def test_summary_holds_counts_only():
    feats, scored = _frames(200, 2)
    feats["lead_id"] = [f"L{i}" for i in range(200)]
    spec = drift.bin_spec(feats.drop(columns="lead_id"), scored["probability"], categorical=["source"])
    text = repr(drift.summarize(feats, scored, spec))
    assert "L1" not in text


def test_reference_against_itself_has_no_drift_and_a_shift_has_some():
    ref_f, ref_s = _frames(5000, 3)
    spec = drift.bin_spec(ref_f, ref_s["probability"], categorical=["source"])
    ref = drift.summarize(ref_f, ref_s, spec)
    same = drift.summarize(*_frames(5000, 4), spec)
    moved = drift.summarize(*_frames(5000, 5, shift=1.0, source="partner"), spec)
    assert max(drift.feature_psi(ref, same).values()) < 0.02
    psi = drift.feature_psi(ref, moved)
    assert psi["x"] > 0.25 and psi["source"] > 0.25 and psi["flag"] < 0.02
    assert drift.unseen_share(same, "source") == 0.0
    assert drift.unseen_share(moved, "source") == pytest.approx(0.25, abs=0.03)
    assert drift.unseen_share(moved, "x") is None  # numeric features have no levels


def test_quantiles_and_null_rate():
    feats, scored = _frames(10_000, 6)
    spec = drift.bin_spec(feats, scored["probability"], categorical=["source"])
    s = drift.summarize(feats, scored, spec)
    q = drift.quantiles(s)
    assert q["p50"] == pytest.approx(np.median(scored["probability"]), abs=0.002)
    assert drift.null_rate(s, "x") == pytest.approx(0.1)
    assert drift.quantiles(drift.empty_summary(spec))["p50"] is None


def test_a_mostly_zero_count_feature_gets_few_bins():
    edges = drift.quantile_edges(np.array([0.0] * 95 + [1, 2, 3, 4, 5]), 10)
    assert edges == [0.0]  # bins: (-inf, 0] and (0, inf)
