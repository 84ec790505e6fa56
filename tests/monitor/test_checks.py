"""The monitoring checks and their thresholds (params `monitor`)."""

from __future__ import annotations

import pytest

from leadscore.config import MonitorConfig, params_from_dict
from leadscore.errors import EXIT_GUARD, ConfigError, GuardError, exit_code_for
from leadscore.monitor.checks import format_report, monitor_report
from leadscore.monitor.run import raise_on_alert
from tests.monitor.conftest import reference, run

CFG = MonitorConfig()


def _report(*runs, cfg: MonitorConfig = CFG, ref=None):
    ref = ref or reference()
    return monitor_report([r(ref) if callable(r) else r for r in runs], {"m1": ref}, cfg)


def _failed(doc) -> set[str]:
    return {c["name"] for c in doc["checks"] if not c["passed"]}


def test_unshifted_runs_are_quiet():
    ref = reference()
    doc = monitor_report([run(ref, "r1", seed=1), run(ref, "r2", seed=2, days=1)], {"m1": ref}, CFG)
    assert doc["status"] == "ok" and doc["alerts"] == [] and _failed(doc) == set()
    assert {c["name"] for c in doc["checks"]} == {
        "feature_drift", "score_drift", "grade_mix_drift", "run_to_run_drift", "new_levels",
        "null_rate", "volume", "freshness"}
    assert len(doc["runs"]) == 2 and doc["runs"][-1]["psi"]["features"]["x"] < 0.05
    raise_on_alert(doc)  # no alert, no error


def test_a_shifted_feature_and_a_new_source_alert():
    ref = reference()
    doc = monitor_report([run(ref, "r1"), run(ref, "r2", days=1, shift=1.0, new_source=0.2)],
                         {"m1": ref}, CFG)
    assert {"feature_drift", "new_levels"} <= _failed(doc)
    drift = next(c for c in doc["checks"] if c["name"] == "feature_drift")
    assert "x (PSI" in drift["message"] and "source" in drift["message"]
    assert doc["status"] == "alert"
    with pytest.raises(GuardError, match="feature_drift") as err:
        raise_on_alert(doc, "reports/monitor.json")
    assert exit_code_for(err.value) == EXIT_GUARD


def test_score_and_grade_mix_drift_alert_against_the_reference_and_the_previous_run():
    ref = reference()
    doc = monitor_report([run(ref, "r1"), run(ref, "r2", days=1, high=0.4)], {"m1": ref}, CFG)
    assert {"score_drift", "grade_mix_drift", "run_to_run_drift"} <= _failed(doc)


def test_null_rate_rise_alerts():
    ref = reference()
    doc = monitor_report([run(ref, "r1", nulls=0.3)], {"m1": ref}, CFG)
    assert "null_rate" in _failed(doc)
    assert monitor_report([run(ref, "r1", nulls=0.1)], {"m1": ref}, CFG)["alerts"] == []


def test_volume_is_judged_against_the_median_of_previous_runs():
    ref = reference()
    runs = [run(ref, f"r{i}", n=2000, seed=i, days=i) for i in range(3)]
    low = monitor_report([*runs, run(ref, "r3", n=1000, seed=3, days=3)], {"m1": ref}, CFG)
    assert "volume" in _failed(low)
    vol = next(c for c in low["checks"] if c["name"] == "volume")
    assert vol["value"] == pytest.approx(0.5)
    high = monitor_report([*runs, run(ref, "r3", n=3500, seed=3, days=3)], {"m1": ref}, CFG)
    assert "volume" in _failed(high)
    loose = CFG.model_copy(update={"min_volume_ratio": 0.4})
    assert "volume" not in _failed(monitor_report([*runs, run(ref, "r3", n=1000, seed=3, days=3)],
                                                  {"m1": ref}, loose))


def test_freshness_alerts_when_the_newest_event_is_older_than_the_threshold():
    ref = reference()
    assert "freshness" in _failed(monitor_report([run(ref, "r1", newest_lag_days=10)], {"m1": ref}, CFG))
    assert "freshness" not in _failed(monitor_report([run(ref, "r1", newest_lag_days=6)], {"m1": ref}, CFG))


def test_thresholds_come_from_the_config():
    ref = reference()
    strict = CFG.model_copy(update={"psi_warn": 0.0001, "feature_psi_alert": 0.001})
    doc = monitor_report([run(ref, "r1")], {"m1": ref}, strict)
    assert "feature_drift" in _failed(doc)  # sampling noise is above a tiny threshold


def test_no_runs_and_no_reference_are_reported_not_alerted():
    assert monitor_report([], {}, CFG)["status"] == "no_runs"
    ref = reference()
    doc = monitor_report([run(ref, "r1")], {}, CFG)
    assert doc["status"] == "no_reference" and doc["alerts"] == []
    assert "no training reference" in format_report(doc)


def test_summary_lists_alerts_first_with_what_to_do():
    ref = reference()
    doc = monitor_report([run(ref, "r1", new_source=0.2)], {"m1": ref}, CFG)
    text = format_report(doc).splitlines()
    assert text[0].startswith("monitor: ALERT")
    alerts = [line for line in text[1:] if line.startswith("  ALERT")]
    assert [line.split()[1].rstrip(":") for line in alerts] == ["feature_drift", "new_levels"]
    assert text[1:3] == alerts and all("->" in line for line in alerts)


def test_bad_thresholds_are_config_errors_naming_the_key():
    with pytest.raises(ConfigError, match="monitor"):
        params_from_dict({"monitor": {"psi_warn": 0.3, "psi_alert": 0.2}})
    with pytest.raises(ConfigError, match=r"monitor\.bins"):
        params_from_dict({"monitor": {"bins": 1}})
