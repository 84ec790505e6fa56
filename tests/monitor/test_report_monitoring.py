"""The report's monitoring section (leadscore.report.monitoring) from reports/monitor.json."""

from __future__ import annotations

import json

from leadscore.config import MonitorConfig
from leadscore.monitor.checks import monitor_report
from leadscore.report.build import ReportInputs, build_report
from leadscore.report.monitoring import monitoring_section
from tests.monitor.conftest import reference, run


def _doc() -> dict:
    ref = reference()
    runs = [run(ref, "r1", seed=1), run(ref, "r2", seed=2, days=90, shift=1.0, new_source=0.2)]
    return json.loads(json.dumps(monitor_report(runs, {"m1": ref}, MonitorConfig()), default=str))


def test_section_has_drift_per_field_over_runs_and_the_grade_mix():
    sec = monitoring_section(_doc())
    assert sec["available"] and sec["status"] == "alert"
    assert sec["columns"] == ["2026-01-01", "2026-04-01"]
    labels = [r["label"] for r in sec["rows"]]
    assert labels[:2] == ["Score (probability)", "Grade mix"] and {"x", "source"} <= set(labels)
    x = next(r for r in sec["rows"] if r["label"] == "x")
    assert float(x["cells"][1]["text"]) > float(x["cells"][0]["text"])
    assert [m["label"] for m in sec["mix"]] == ["Training reference", "2026-01-01", "2026-04-01"]
    assert {a["name"] for a in sec["alerts"]} >= {"Fields look like the training data (PSI per field)"}


def test_report_shows_the_section_or_says_it_is_not_available():
    html = build_report(ReportInputs(monitor=_doc()))
    assert 'id="monitoring-drift"' in html and 'id="monitoring-mix"' in html
    assert "alert(s) on the latest scoring run" in html
    missing = build_report(ReportInputs(monitor=None))
    assert 'id="monitoring"' in missing and "reports/monitor.json" in missing
    assert 'id="monitoring"' not in build_report(ReportInputs(monitoring=False))


def test_a_history_without_runs_is_not_available():
    assert monitoring_section({"status": "no_runs", "runs": []}) == {"available": False}
    assert monitoring_section(None) == {"available": False}
