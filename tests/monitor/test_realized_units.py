"""The pure parts of realized performance (leadscore.monitor.realized): intervals, the
per-run figures, the control-arm lift, the alert rules, and the report's table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.config import MonitorConfig
from leadscore.modeling.metrics import wilson_interval
from leadscore.monitor.realized import lift, newcombe, performance, realized_checks
from leadscore.report.build import ReportInputs, build_report
from leadscore.report.monitoring import realized_rows
from leadscore.serve.arms import assign_arms, control_fraction

CFG = MonitorConfig()


def test_wilson_and_newcombe_match_published_values():
    lo, hi = wilson_interval(81, 263)  # Newcombe (1998), example: 0.2553 to 0.3662
    assert lo == pytest.approx(0.2553, abs=1e-4) and hi == pytest.approx(0.3662, abs=1e-4)
    d_lo, d_hi = newcombe(56, 70, 48, 80)  # Newcombe (1998) method 10: 0.0524 to 0.3339
    assert d_lo == pytest.approx(0.0524, abs=1e-3) and d_hi == pytest.approx(0.3339, abs=1e-3)


def test_performance_counts_grades_and_brackets_the_auc():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.3, 4000)
    y = (rng.uniform(size=4000) < p).astype(int)
    grades = np.where(p > 0.15, "A1", "D4")
    doc = performance(y, p, grades, n_boot=50)
    assert doc["n"] == 4000 and doc["conversions"] == y.sum()
    assert doc["roc_auc_ci"][0] < doc["roc_auc"] < doc["roc_auc_ci"][1]
    assert doc["grades"]["A1"]["rate"] > doc["grades"]["D4"]["rate"]
    assert abs(doc["calibration_gap"]) < 0.1  # drawn from its own probabilities
    assert performance([0, 0], [0.1, 0.2], ["A1", "A1"])["roc_auc"] is None


def _frame(model_good: bool, n: int = 20000) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    ids = [f"L{i:06d}" for i in range(n)]
    signal = rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(signal * 2 - 3)))).astype(int)
    noise = rng.normal(size=n)
    return pd.DataFrame({"lead_id": ids, "label": y, "arm": assign_arms(ids, 0.2, "s"),
                         "probability": signal if model_good else noise,
                         "rule_points": noise if model_good else signal})


def test_lift_hands_over_each_arms_top_share_in_its_own_order():
    good, bad = lift(_frame(True), 0.05), lift(_frame(False), 0.05)
    assert good["model"]["handed_over"] == pytest.approx(0.05 * good["model"]["leads"], abs=1)
    assert good["difference_ci"][0] > 0 and bad["difference_ci"][1] < 0
    assert lift(_frame(True).assign(arm="model"), 0.05) is None


def test_arms_are_a_stable_share_of_lead_ids():
    ids = [f"lead-{i}" for i in range(20000)]
    arms = assign_arms(ids, 0.1, "salt")
    assert 0.09 < (arms == "control").mean() < 0.11
    assert (assign_arms(ids[::-1], 0.1, "salt")[::-1] == arms).all()  # a property of the id
    assert (assign_arms(ids, 0.1, "other") != arms).any()  # the salt reshuffles
    assert (assign_arms(ids, 0.0, "salt") == "model").all()
    assert 0.0 <= control_fraction("x", "salt") < 1.0
    with pytest.raises(ValueError):
        assign_arms(ids, 0.9, "salt")


def _run(**kw) -> dict:
    base = {"status": "matured", "as_of": "2026-01-01T00:00:00", "run_id": "r", "model_version": "m",
            "matures_on": "2026-04-01", "n": 5000, "conversions": 200, "observed_rate": 0.04,
            "observed_rate_ci": [0.035, 0.046], "mean_probability": 0.042, "calibration_gap": 0.05,
            "roc_auc": 0.80, "roc_auc_ci": [0.77, 0.83],
            "lift": {"share": 0.05, "model": {"rate": 0.2}, "control": {"rate": 0.1},
                     "difference": 0.1, "difference_ci": [0.02, 0.18]},
            "expected": {"roc_auc": 0.81, "roc_auc_ci": [0.80, 0.82],
                         "backtest": {"roc_auc_min": 0.79, "roc_auc_max": 0.82}}}
    return base | kw


def _alerts(*runs) -> set[str]:
    return {c["name"] for c in realized_checks({"runs": list(runs)}, CFG) if not c["passed"]}


def test_checks_alert_on_auc_below_the_backtest_miscalibration_and_negative_lift():
    assert _alerts(_run()) == set()
    assert _alerts(_run(roc_auc=0.74, roc_auc_ci=[0.71, 0.78])) == {"realized_auc"}
    assert _alerts(_run(roc_auc=0.76, roc_auc_ci=[0.73, 0.80])) == set()  # overlaps the range
    no_bt = _run(roc_auc=0.78, roc_auc_ci=[0.76, 0.795], expected={"roc_auc_ci": [0.80, 0.82]})
    assert _alerts(no_bt) == {"realized_auc"}  # without a backtest: the out-of-time interval
    assert _alerts(_run(mean_probability=0.06, calibration_gap=0.5)) == {"realized_calibration"}
    small = _run(n=300, conversions=20, observed_rate=0.0667, observed_rate_ci=[0.04, 0.1],
                 mean_probability=0.1, calibration_gap=0.5)
    assert _alerts(small) == set()  # too few conversions: reported, not judged
    worse = _run(lift={"share": 0.05, "model": {"rate": 0.05}, "control": {"rate": 0.2},
                       "difference": -0.15, "difference_ci": [-0.25, -0.05]})
    assert _alerts(worse) == {"realized_lift"}
    # the latest matured run is judged; a later pending run does not hide it
    assert _alerts(_run(roc_auc=0.7, roc_auc_ci=[0.68, 0.72]), {"status": "pending", "matures_on": "x"}) == {
        "realized_auc"}
    none = realized_checks({"runs": [{"status": "pending", "matures_on": "2026-04-01"}]}, CFG)
    assert all(c["passed"] for c in none) and "2026-04-01" in none[0]["message"]


def test_report_table_shows_matured_and_pending_runs():
    grades = {"A1": {"n": 100, "rate": 0.3, "mean_probability": 0.25}}
    matured = _run(grades=grades, expected=_run()["expected"] | {"grades": {"A1": {"rate": 0.28}}})
    doc = {"runs": [matured, {"status": "pending", "as_of": "2026-02-01", "matures_on": "2026-05-02"}]}
    sec = realized_rows(doc)
    assert [r["status"] for r in sec["rows"]] == ["matured", "pending"]
    assert sec["rows"][0]["auc"] == "0.800 (0.770–0.830)" and "backtest" in sec["rows"][0]["expected"]
    assert sec["grades"] == [{"grade": "A1", "leads": "100", "observed": "30.0%", "predicted": "25.0%",
                              "expected": "28.0%"}]
    html = build_report(ReportInputs(monitor={"runs": [{"as_of": "2026-01-01", "run_id": "r"}],
                                              "status": "ok", "checks": [], "realized": doc}))
    assert 'id="monitoring-realized"' in html and "judged from 2026-05-02" in html
    assert 'id="monitoring-realized-grades"' in html
