"""Calibration: calibrated probabilities match observed rates; choice; JSON round trip."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.modeling.calibration import PROBA_FLOOR, Calibrator, choose_calibrator
from leadscore.modeling.metrics import ece


def _miscalibrated(n: int, seed: int):
    """True probability p; the model's score is an overconfident distortion of logit(p)."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(-2.5, 1.2, n)
    p = 1 / (1 + np.exp(-true_logit))
    y = (rng.random(n) < p).astype(int)
    score = 2.5 * true_logit + 1.0  # overconfident, shifted
    return score, y, p


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibrated_probabilities_match_observed_rates(method):
    s_fit, y_fit, _ = _miscalibrated(20_000, 0)
    s_new, y_new, _ = _miscalibrated(20_000, 1)
    raw = 1 / (1 + np.exp(-s_new))
    assert ece(y_new, raw) > 0.05  # the raw score is badly calibrated
    cal = Calibrator(method).fit(s_fit, y_fit)
    p = cal.predict(s_new)
    assert ece(y_new, p) < 0.01
    assert abs(p.mean() - y_new.mean()) < 0.01


def test_sigmoid_recovers_a_linear_distortion():
    s, y, _ = _miscalibrated(50_000, 2)
    cal = Calibrator("sigmoid").fit(s, y)
    assert cal.a_ == pytest.approx(1 / 2.5, rel=0.1)


def test_choice_prefers_sigmoid_when_data_are_thin_and_returns_a_report():
    s, y, _ = _miscalibrated(400, 3)
    cal, report = choose_calibrator(s, y, n_folds=5, seed=0)
    assert set(report["cv_log_loss"]) == {"isotonic", "sigmoid"}
    assert report["chosen"] == min(report["cv_log_loss"], key=report["cv_log_loss"].get)
    assert cal.method == report["chosen"] and cal.fitted


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_round_trip_and_clipping(method):
    s, y, _ = _miscalibrated(2_000, 4)
    cal = Calibrator(method).fit(s, y)
    again = Calibrator.from_dict(cal.to_dict())
    grid = np.linspace(-40, 40, 101)
    np.testing.assert_array_equal(again.predict(grid), cal.predict(grid))
    assert cal.predict(grid).min() >= PROBA_FLOOR and cal.predict(grid).max() <= 1 - PROBA_FLOOR


def test_unknown_method_is_an_error():
    with pytest.raises(ValueError, match="not one of"):
        Calibrator("beta").fit(np.array([0.0, 1.0]), np.array([0, 1]))
