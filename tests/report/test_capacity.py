"""The report's hand-over sections (leadscore.report.capacity): how the grades are defined,
the MQL handoff by capacity and quality by segment."""

from __future__ import annotations

from dataclasses import replace

from leadscore.report.build import ReportPaths, build_report, load_report_inputs
from leadscore.report.capacity import (
    grade_definition_section,
    handoff_section,
    segments_section,
)
from tests.report.inputs import make_inputs, visible_text

GRADING = {"fit_cuts": [1.2, 0.5, -0.4], "engagement_cuts": [0.3, -0.001, -0.2],
           "shares": {"fit": {"A": 0.1, "B": 0.2, "C": 0.3, "D": 0.4},
                      "engagement": {"1": 0.2, "2": 0.2, "3": 0.3, "4": 0.3}},
           "calib_window": ["2025-03-01", "2025-04-01"], "fit_features": ["a", "b"],
           "engagement_features": ["c"]}
SCORE = {"as_of": "2025-12-31T00:00:00", "model_version": "abcdef1234567890",
         "grades": {"A1": 10, "A2": 30, "D4": 60}}
CAPACITY = {
    "model": "lightgbm", "capacity_per_month": 1000, "threshold": 0.1489,
    "grade_order": ["A1", "B1", "A2"], "grade_cut": ["A1"],
    "calib": {"months": 2, "threshold_leads_per_month": 1000.0, "grade_cut_leads_per_month": 716.5},
    "test": {"months": 3,
             "threshold": {"leads_per_month": 736.7, "expected_conversions": 635.4, "observed_conversions": 656,
                           "conversion_rate": 0.2968, "share_of_conversions": 0.2579},
             "rules_mql": {"leads_per_month": 4014.3, "expected_conversions": 905.8, "observed_conversions": 1066,
                           "conversion_rate": 0.0886, "share_of_conversions": 0.419, "mql_threshold": 50.0}},
    "speed_to_lead": {"top_grades": {"grades": ["A1", "A2"], "in_top_per_month": 1431.3, "in_top_per_day": 68.16,
                                     "new_per_day": 44.9, "sla_hours": 1, "working_days_per_month": 21}},
}
SEGMENTS = {"min_positives": 30, "models": ["lightgbm", "rules"], "missing_columns": [], "columns": {
    "industry": {"omitted": 2, "segments": [
        {"value": "education", "rows": 4062, "positives": 89, "rate": 0.022,
         "lightgbm": {"roc_auc": 0.70, "roc_auc_ci": [0.65, 0.76], "by_grade": {"B1": [21, 3]}},
         "rules": {"roc_auc": 0.627, "roc_auc_ci": None}}]},
    "source": {"omitted": 0, "segments": [
        {"value": "referral", "rows": 3526, "positives": 264, "rate": 0.075,
         "lightgbm": {"roc_auc": 0.80, "roc_auc_ci": [0.77, 0.83], "by_grade": {"A1": [187, 67]}},
         "rules": {"roc_auc": 0.668, "roc_auc_ci": None}}]}}}


def test_grade_definition_sentences_use_the_actual_cut_shares_and_contributions():
    d = grade_definition_section(GRADING, SCORE)
    assert d["fit"][0] == "A: the best 10% of leads, whose fit score adds at least +1.20 in log-odds (odds ×3.3)."
    assert d["fit"][1].startswith("B: the next 20% of leads (top 30% in all), whose fit score adds at least +0.50")
    assert "adds at least +0.00 in log-odds (odds ×1)" in d["engagement"][1]  # 0.0, never "-0.00"
    assert d["fit"][3].startswith("D: the remaining 40% of leads") and "less than -0.40" in d["fit"][3]
    assert d["engagement"][0].startswith("1: the best 20% of leads")
    mix = d["mix"]
    assert mix["total"] == "100" and mix["rows"][0]["total"] == "40.0%" and mix["digit_totals"][3] == "60.0%"


def test_grade_definition_without_grading_or_score_is_not_available():
    d = grade_definition_section(None, {"leads_scored": 5})
    assert d["available"] is False and d["mix"]["available"] is False


def test_handoff_section_lists_the_recommendation_beside_the_rules_mql():
    h = handoff_section({"capacity": CAPACITY})
    assert h["threshold"] == "14.9%" and h["grade_cut"] == "A1" and h["calib_fill"] == "1,000"
    assert [r["key"] for r in h["rows"]] == ["threshold", "rules_mql"]  # grade_cut figures absent
    assert h["rows"][1]["name"] == "Points rules: MQL at 50 points" and h["rows"][1]["observed"] == "1,066"
    assert h["order_differs"] is True and h["speed"][0]["new_per_day"] == "44.9"
    assert handoff_section({"rules": {}}) == {"available": False}


def test_segments_section_flags_weak_segments_and_keeps_column_order():
    s = segments_section({"lightgbm": {"roc_auc": 0.81}, "segments": SEGMENTS})
    assert [t["column"] for t in s["tables"]] == ["source", "industry"]
    edu = s["tables"][1]["rows"][0]
    assert edu["weak"] is True and edu["top"] == "B1: 14.3% of 21" and edu["rules_auc"] == "0.627"
    assert s["tables"][0]["rows"][0]["weak"] is False and s["tables"][1]["omitted"] == 2


def test_report_renders_the_sections_and_says_what_is_missing(tmp_path):
    ev = dict(make_inputs().evaluate or {}) | {"capacity": CAPACITY, "segments": SEGMENTS}
    html = build_report(replace(make_inputs(), evaluate=ev, grading=GRADING, score=SCORE))
    text = visible_text(html.split('<section id="handoff">', 1)[1].split("</section>", 1)[0])
    assert "Points rules: MQL at 50 points 4,014 906 1,066 8.9% 41.9%" in text
    assert "A: the best 10% of leads" in visible_text(html)
    bare = build_report(make_inputs())  # no capacity, segments, grading or score
    for what in ("models/grading.json", "reports/score.json", "the capacity figures in reports/evaluate.json",
                 "the segment figures in reports/evaluate.json"):
        assert f"Not available: {what}" in visible_text(bare)
    # the project layout names both new inputs; a missing file loads as None
    paths = ReportPaths.in_project(tmp_path)
    assert paths.grading == tmp_path / "models/grading.json" and paths.score == tmp_path / "reports/score.json"
    assert load_report_inputs(paths).grading is None
