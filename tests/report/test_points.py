"""The report's learned points table section (leadscore.report.points), beside the
hand-written rules, from small fixture files of the `points` stage's shapes."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

from leadscore.report.build import ReportPaths, build_report, load_report_inputs
from leadscore.report.points import condition_text, learned_points_section
from tests.report.inputs import make_inputs, visible_text, write_inputs

METRICS = {
    "available": True, "points_per_doubling": 20.0, "fields": {"fit": 2, "engagement": 1}, "lines": 7,
    "roc_auc": {"learned_points": 0.8096, "learned_points_raw": 0.8107, "lightgbm": 0.8145, "rules": 0.7042},
    "roc_auc_ci": {"learned_points": [0.7987, 0.8195], "lightgbm": [0.804, 0.8246], "rules": [0.6902, 0.7151]},
    "auc_diff_vs_model": -0.005, "auc_diff_vs_model_ci": [-0.0075, -0.0022], "auc_diff_vs_rules": 0.1053,
    "fit_bands": {"A": 3, "B": -17, "C": -41}, "engagement_bands": {"1": 8, "2": 2, "3": -2},
    "mql": {"threshold": 30, "capacity_per_month": 1000, "calib_leads_per_month": 959.0,
            "test": {"leads_per_month": 706.3, "conversion_rate": 0.3006, "share_of_conversions": 0.2504}},
    "rules_mql": {"threshold": 50.0,
                  "test": {"leads_per_month": 4470.7, "conversion_rate": 0.0884, "share_of_conversions": 0.4658}},
    "test": {"rows": 61763, "positives": 2544, "months": 3},
}
ROWS = [("seniority", "fit", "Seniority (from job title)", "vp", "28"),
        ("seniority", "fit", "Seniority (from job title)", "student", "-127"),
        ("seniority", "fit", "Seniority (from job title)", "(other)", "0"),
        ("country", "fit", "Country", "NA", "-3"),
        ("country", "fit", "Country", "(other)", "0"),
        ("form_submit_7d", "engagement", "Form fills, last 7 days", "<1", "0"),
        ("form_submit_7d", "engagement", "Form fills, last 7 days", ">=3", "29")]
TABLE = pd.DataFrame(ROWS, columns=["field", "group", "label", "condition", "points"])
YAML = "rules:\n  fit:\n    seniority:\n      vp: 28\n  mql_threshold: 30\n"


def _section(html: str) -> str:
    return html.split('<section id="learned-points">', 1)[1].split("</section>", 1)[0]


@pytest.fixture(scope="module")
def html() -> str:
    return build_report(replace(make_inputs(), points=METRICS, points_table=TABLE, points_yaml=YAML))


def test_section_shows_both_tables_side_by_side(html):
    sec = _section(html)
    hand = visible_text(sec.split('id="points-hand-written"', 1)[1].split("</figure>", 1)[0])
    learned = visible_text(sec.split('id="points-learned"', 1)[1].split("</figure>", 1)[0])
    assert "Hand-written" in hand and "Seniority" in hand and "C-level +20" in hand  # train_rules
    assert "MQL at 50 points" in hand and "A at 40 points or more" in hand
    assert "VP +28, Student -127, any other value 0" in learned
    assert "NA -3" in learned and "under 1 0, 3 or more +29" in learned
    assert "MQL at 30 points" in learned and "A at 3 points or more, B at -17 points or more" in learned
    assert learned.index("Seniority") < learned.index("Country") < learned.index("Form fills")


def test_section_gives_the_three_aucs_and_the_handover_in_words(html):
    text = visible_text(_section(html))
    assert "Paste this into your marketing-automation tool" in text and "models/points.yaml" in text
    assert "20 points double a lead's odds" in text
    assert "about as well as the model it came from (ROC AUC 0.811 against 0.815)" in text
    assert "better than today's hand-written rules (0.704)" in text
    assert "0.799 to 0.820" in text and "0.690 to 0.715" in text
    assert "MQL at 30 points or more" in text and "706 leads a month, 30.1% of whom converted" in text
    assert "Today's rules (MQL at 50 points) handed over 4,471 a month" in text
    assert "seniority:" in _section(html).split('id="learned-points-yaml"', 1)[1]  # the block to paste
    assert 'href="#learned-points"' in html


def test_missing_points_metrics_is_a_note_not_a_crash(tmp_path):
    paths = write_inputs(tmp_path)  # no points stage outputs
    inputs = load_report_inputs(paths)
    assert inputs.points is None and inputs.points_table is None and inputs.learned_points
    sec = _section(build_report(inputs))
    assert "Not available" in sec and "reports/points.json" in sec and "points-learned" not in sec


def test_a_model_without_a_table_shows_the_reason():
    reason = "a points table needs an additive LightGBM model"
    sec = visible_text(_section(build_report(replace(make_inputs(),
                                                     points={"available": False, "reason": reason}))))
    assert f"No learned points table: {reason}." in sec and "ROC AUC" not in sec


def test_no_points_path_leaves_the_section_out(tmp_path):
    paths = replace(write_inputs(tmp_path), points=None, points_csv=None, points_yaml=None)  # flat mode
    html = build_report(load_report_inputs(paths))
    assert '<section id="learned-points">' not in html and 'href="#learned-points"' not in html


def test_points_files_are_read_from_the_pipeline_layout(tmp_path):
    paths = write_inputs(tmp_path)
    assert paths == ReportPaths.in_project(tmp_path)
    paths.points.write_text(json.dumps(METRICS))
    TABLE.to_csv(paths.points_csv, index=False)
    paths.points_yaml.write_text(YAML)
    inputs = load_report_inputs(paths)
    assert inputs.points_table["condition"].tolist() == TABLE["condition"].tolist()  # "NA" stays text
    assert "NA -3" in visible_text(_section(build_report(inputs)))


def test_section_without_the_csv_still_gives_the_figures():
    sec = learned_points_section(METRICS, None, None, rules=None, hand_written=[], labels={})
    assert sec["available"] and sec["learned"] == [] and sec["aucs"][0]["roc_auc"] == "0.810"
    assert learned_points_section(None, TABLE, YAML, rules=None, hand_written=[], labels={}) == {"available": False}


@pytest.mark.parametrize(("cond", "words"), [("<1", "under 1"), (">=32", "32 or more"),
                                             ("422000..1648000", "422,000 to under 1,648,000"),
                                             ("0.2647..1.2735", "0.2647 to under 1.2735"),
                                             ("missing", "not known"), ("(other)", "any other value"),
                                             ("financial_services", "Financial services"), ("1-10", "1-10")])
def test_condition_text(cond, words):
    assert condition_text(cond) == words
