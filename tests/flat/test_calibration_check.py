"""ECE against its noise floor, and a constant-after-calibration flag (issue 12 item 12)."""

from __future__ import annotations

import numpy as np

from leadscore.flat.run import calibration_check
from leadscore.modeling.metrics import bootstrap_ci, ece


def _check(y, p, score):
    ci = bootstrap_ci(y, {"m": p}, n_boot=100, seed=0)["m"]["ece"]
    return calibration_check(y, p, score, ci, seed=0)


def test_a_calibrated_model_on_few_rows_is_within_noise():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.4, 300)
    y = (rng.random(300) < p).astype(int)
    out = _check(y, p, p)
    assert out["ece_verdict"] == "within noise"
    assert out["ece_noise_floor"] > 0.03  # 300 rows: several points of ECE from noise alone
    assert ece(y, p) <= out["ece_noise_floor_p95"]
    assert out["constant_after_calibration"] is False and out["distinct_probabilities"] == 300


def test_a_shifted_model_is_miscalibrated_beyond_noise():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.4, 3000)
    y = (rng.random(3000) < np.clip(p + 0.2, 0, 1)).astype(int)  # the base rate moved
    out = _check(y, p, p)
    assert out["ece_verdict"] == "miscalibrated" and "miscalibrated" in out["ece_note"]


def test_a_constant_after_calibration_is_flagged_with_the_raw_ranking():
    rng = np.random.default_rng(2)
    score = rng.normal(size=2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(-(score - 1)))).astype(int)
    p = np.full(2000, 0.12)  # an isotonic map with every test score on one step
    out = _check(y, p, score)
    assert out["constant_after_calibration"] is True and out["distinct_probabilities"] == 1
    assert out["roc_auc_uncalibrated"] > 0.7
    assert "CONSTANT after calibration" in out["ece_note"]


def test_the_report_reads_the_ece_against_its_noise_floor():
    from leadscore.report.build import _ece_words

    e = {"ece": 0.162, "ece_ci": [0.153, 0.172], "ece_noise_floor": 0.011, "ece_verdict": "miscalibrated"}
    words = _ece_words(e, {"rows": 8238})
    assert "16.2%" in words and "1.1% on 8,238 leads by chance" in words and "beyond chance" in words
    assert _ece_words({"ece": 0.05}, {}) == "5.0%"  # the main pipeline's evaluate.json: as before
