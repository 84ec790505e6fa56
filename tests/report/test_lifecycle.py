"""The report's lifecycle sections (leadscore.report.lifecycle): backtest, promotion gate and
what changed, from the fixture documents of tests/report/inputs.py."""

from __future__ import annotations

import copy
import html as html_lib
import re
from dataclasses import replace

import pytest

from leadscore.report.build import ReportInputs, ReportPaths, build_report, load_report_inputs
from leadscore.report.charts import heat_color
from leadscore.report.lifecycle import changes_section, gate_section, rules_sentence
from tests.report.inputs import (
    backtest,
    changes,
    gate,
    make_inputs,
    visible_text,
    write_inputs,
)


@pytest.fixture(scope="module")
def html() -> str:
    return build_report(make_inputs())


def _section(html: str, name: str) -> str:
    return html.split(f'<section id="{name}">', 1)[1].split("</section>", 1)[0]


def _check_row(block: str, name: str) -> str:
    return visible_text(block.split(f'data-check="{name}"', 1)[1].split("</tr>", 1)[0])


# --------------------------------------------------------------------------- backtest


def test_backtest_chart_has_one_line_per_model_over_the_cutoffs(html):
    block = _section(html, "backtest")
    chart = block.split('id="backtest-chart"', 1)[1].split("</figure>", 1)[0]
    assert "<svg" in chart and chart.count("<polyline") == 5  # 3 models + 2 not refitted
    assert chart.count('stroke-dasharray="5 3"') == 2  # the no-refit lines are dashed
    assert chart.count("<circle") == 20  # 5 lines x 4 folds
    for month in ("Mar 2025", "Apr 2025", "May 2025", "Jun 2025"):
        assert month in chart
    assert "fold 2, cutoff 2025-04-01: ROC AUC 0.801 on 20,000 test rows (902 conversions)" in chart


def test_backtest_table_and_refit_sentence(html):
    text = visible_text(_section(html, "backtest"))
    assert "4 past cutoff dates (2025-03-01 to 2025-06-01)" in text
    assert "Predictive model (LightGBM) 0.799 0.791 to 0.807 0.200" in text
    assert "Points rules (today's baseline) 0.694 0.684 to 0.704 n/a" in text
    assert "Predictive model (LightGBM), not refitted 0.792 0.785 to 0.800" in text
    assert ("did not win for the logistic check model (mean ROC AUC change -0.0002, better in "
            "1 of 4 folds) and won for the LightGBM model (mean ROC AUC change +0.0065, better "
            "in 4 of 4 folds)") in text


def test_backtest_without_folds_keeps_the_table():
    doc = backtest()
    doc["folds"] = []
    html = build_report(ReportInputs(backtest=doc))
    block = _section(html, "backtest")
    assert "No fold has a ROC AUC to draw" in block and "0.799" in block and "<svg" not in block


# --------------------------------------------------------------------------- gate


def test_gate_decision_sides_and_window(html):
    block = _section(html, "gate")
    text = visible_text(block)
    assert "Refused: the champion stays. It failed 2 of 5 checks: calibration, beats the rules." in text
    assert "Champion (scores the leads today) 3 Points rules (today's baseline) ab12cd34ef56" in text
    assert "Challenger (the new retrain) 4 Predictive model (LightGBM) cd34ef56ab12" in text
    assert "as-of dates 2025-08-01 to 2025-10-01 (61,763 lead-months, 2,544 conversions)" in text


def test_gate_rows_show_figures_tolerance_and_fail(html):
    block = _section(html, "gate")
    assert block.count('class="failed"') == 2 and block.count('class="passed"') == 3
    cal = _check_row(block, "calibration")
    assert "✘ FAIL" in cal and "calibration error 0.0312" in cal and "off by 16.5%" in cal
    assert "calibration error at most 0.020" in cal and "off by at most 15%" in cal
    auc = _check_row(block, "auc_not_worse")
    assert "✔ PASS" in auc and "champion 0.701" in auc and "95% interval -0.009 to +0.004" in auc
    assert "lower end of the 95% interval at least -0.010" in auc
    seg = _check_row(block, "segments")
    assert "worst Industry = Retail (0.680 → 0.660)" in seg and "at least 100 conversions" in seg
    assert "✘ FAIL" in _check_row(block, "beats_rules")


def test_gate_says_the_rules_won_and_why(html):
    text = visible_text(_section(html, "gate"))
    assert ("The points rules won: the model did not beat the rules on the latest window: "
            "AUC 0.69 vs 0.70, so they stay the champion.") in text


def _gate(**changes) -> dict:
    g = copy.deepcopy(gate())
    g.update(changes)
    return g


def test_rules_sentence_when_the_challenger_is_the_rules():
    g = _gate(decision="promoted", promoted=True, passed=True,
              champion={"registry_version": "3", "model_version": "x", "kind": "lightgbm"},
              challenger={"registry_version": "4", "model_version": "y", "kind": "rules"})
    g["checks"][-1] = {"name": "beats_rules", "figures": {}, "tolerance": {"min_ci_low": 0.0},
                       "passed": True, "detail": "the challenger is the points rules themselves"}
    # auc_not_worse: challenger (the rules) 0.691 against the champion model's 0.701
    assert rules_sentence(g) == (
        "The points rules won: the retrained model did not beat the rules, so the retrain "
        "offered the rules; on the latest window the rules score AUC 0.69 against the champion "
        "model’s 0.70. As a result the points rules are now the champion, so leads are graded "
        "by their points.")


def test_rules_sentence_when_the_model_replaces_the_rules_or_neither_is_rules():
    g = _gate(decision="promoted", promoted=True, passed=True)
    g["checks"][-1]["figures"] |= {"challenger": 0.75, "rules": 0.70}
    g["checks"][-1]["passed"] = True
    assert rules_sentence(g) == ("The model replaced the points rules as champion: it beat them "
                                 "on the latest window (AUC 0.75 vs 0.70).")
    assert rules_sentence(_gate(champion={"kind": "lightgbm"})) is None
    forced = _gate(decision="forced", promoted=True)  # the fixture's model does not beat the rules
    assert rules_sentence(forced) == ("The model replaced the points rules as champion although "
                                      "it did not beat them on the latest window (AUC 0.69 vs 0.70).")


def test_rules_sentence_uses_three_decimals_when_two_look_equal():
    g = _gate()
    g["checks"][-1]["figures"] |= {"challenger": 0.7012, "rules": 0.6981}
    assert "AUC 0.701 vs 0.698, a gap small enough to be chance" in rules_sentence(g)


@pytest.mark.parametrize(("decision", "extra", "expected"), [
    ("forced", {"forced": {"reason": "Q3 campaign shift", "by": "ops", "at": "2025-11-02T10:00:00+00:00"}},
     "Forced: the challenger was made champion by ops at 2025-11-02 10:00 without the gate’s "
     "approval. Reason given: “Q3 campaign shift”."),
    ("kept (experiment)", {}, "Kept: this was an experiment run, which never changes the champion."),
    ("first champion", {"champion": None},
     "First champion: there was no champion yet, so the challenger became the champion."),
    ("refused (rolled back)", {}, "Refused (this version was rolled back before): the champion stays."),
])
def test_gate_decision_lines(decision, extra, expected):
    section = gate_section(_gate(decision=decision, **extra))
    assert section["decision"].startswith(expected)


def test_first_champion_has_no_champion_row():
    html = build_report(ReportInputs(gate=_gate(decision="first champion", champion=None)))
    text = visible_text(_section(html, "gate"))
    assert "Champion (scores the leads today) none yet" in text


# --------------------------------------------------------------------------- what changed


def test_changes_drivers_largest_change_first(html):
    block = _section(html, "changes")
    rows = re.findall(r"<tr><td>([^<]+)</td>", block.split('id="changes-drivers"', 1)[1]
                      .split("</table>", 1)[0])
    assert rows == ["Pricing-page views (30 days)", "Seniority", "Webinars attended (90 days)"]
    assert "+0.070" in block and "-0.050" in block


def test_changes_drivers_are_capped_and_resorted():
    doc = changes()
    doc["drivers"] = [{"feature": f"f{i}", "label": f"F{i}", "champion": 0.0, "challenger": i / 100,
                       "change": i / 100} for i in range(15)]
    rows = changes_section(doc)["drivers"]
    assert len(rows) == 10 and rows[0]["label"] == "F14" and rows[-1]["label"] == "F5"


def test_changes_grade_mix_before_and_after(html):
    text = visible_text(_section(html, "changes").split('id="changes-mix"', 1)[1]
                        .split("</table>", 1)[0])
    assert "Grade A1 A2 A3 A4 B1" in text and text.count("%") == 32
    assert "After 8.2% 6.2%" in text and "Change (points) +2.0 0.0" in text and "-2.0" in text


def test_migration_matrix_places_counts_and_shades_cells(html):
    block = _section(html, "changes")
    table = block.split('id="migration-table"', 1)[1].split("</table>", 1)[0]
    assert table.count("<td") == 256 and table.count('class="diag"') == 16

    def cell(a: str, b: str) -> str:
        return table.split(f'data-cell="{a}-{b}"', 1)[1].split("</td>", 1)[0]

    assert cell("B2", "A1").endswith(">37") and cell("A1", "B2").endswith(">·")
    assert ("37 of the champion's B2 leads (26.1%) are A1 for the challenger"
            in html_lib.unescape(cell("B2", "A1")))
    # shaded by the share of the champion grade's row (B2: 105 stay, 37 move); empty: grey

    def bg(a: str, b: str) -> str:
        return re.search(r"background:(#[0-9a-f]{6})",
                         table.split(f'data-cell="{a}-{b}"', 1)[0].rsplit("<td", 1)[1])[1]

    assert bg("B2", "B2") == heat_color(105 / 142, 1.0)[0]
    assert bg("B2", "A1") == heat_color(37 / 142, 1.0)[0] != bg("B2", "B2")
    assert bg("A1", "B2") == "#fafafa"
    assert ("1,720 of 1,762 lead-months (97.6%) keep their grade; 0 (0.0%) move one step "
            "(one letter or one digit) and 42 (2.4%) move further.") in visible_text(block)


def test_malformed_migration_is_left_out():
    doc = changes()
    doc["migration"]["counts"] = doc["migration"]["counts"][:3]
    html = build_report(ReportInputs(changes=doc))
    block = _section(html, "changes")
    assert 'id="migration-table"' not in block and 'id="changes-drivers"' in block


def test_changes_note_from_the_gate_stage_is_shown():
    note = {"available": False, "reason": "no champion to compare with (first run)"}
    block = _section(build_report(ReportInputs(changes=note)), "changes")
    assert "Nothing to compare: no champion to compare with (first run)." in visible_text(block)
    assert "Not available" not in block and "<table" not in block


def test_movers_show_grades_probabilities_and_reasons(html):
    text = visible_text(_section(html, "changes").split('id="changes-movers"', 1)[1])
    assert "L00000777 B2 → A1 8.1% → 24.5%" in text
    assert "Viewed the pricing page 6 times in the last 30 days (+0.83)" in text
    assert "Uses a free e-mail address (-0.31)" in text


# --------------------------------------------------------------------------- missing inputs


@pytest.mark.parametrize(("section", "what", "stage"), [
    ("backtest", "reports/backtest.json", "backtest"), ("gate", "reports/gate.json", "gate"),
    ("changes", "reports/changes.json", "gate")])
def test_missing_lifecycle_input_says_not_available(section, what, stage):
    html = build_report(make_inputs(lifecycle=False))
    block = _section(html, section)
    assert "Not available" in block and what in block and f"<code>{stage}</code>" in block
    assert "<table" not in block and "<svg" not in block


def test_loader_reads_lifecycle_files_and_tolerates_missing(tmp_path):
    paths = write_inputs(tmp_path, lifecycle=False)
    inp = load_report_inputs(paths)
    assert inp.backtest is None and inp.gate is None and inp.changes is None and inp.lifecycle
    full = load_report_inputs(write_inputs(tmp_path / "full"))
    assert full.gate["decision"] == "refused" and len(full.backtest["folds"]) == 4
    assert full.changes["migration"]["counts"][5][0] == 37


def test_without_lifecycle_paths_the_sections_are_left_out(tmp_path):
    """Flat mode names no lifecycle paths: no backtest, gate or what-changed section at all."""
    paths = write_inputs(tmp_path)
    flat = replace(paths, backtest=None, gate=None, changes=None)
    inp = load_report_inputs(flat)
    assert not inp.lifecycle and inp.gate is None
    html = build_report(inp)
    for name in ("backtest", "gate", "changes"):
        assert f'<section id="{name}">' not in html and f'href="#{name}"' not in html
    assert '<section id="checks">' in html
    assert ReportPaths.in_project(tmp_path).gate == paths.gate


def test_odd_shapes_do_not_crash_or_leak():
    doc = changes()
    doc |= {"drivers": {"a": 1}, "movers": "L1", "migration": None,
            "grade_mix": {"champion": [1], "challenger": doc["grade_mix"]["challenger"]}}
    section = changes_section(doc)
    assert section["available"] and section["drivers"] == [] and section["movers"] == []
    assert section["migration"] is None and section["mix"][0]["champion"] == "n/a"
    assert section["mix"][0]["challenger"] == "8.2%"
    g = gate_section(_gate(checks={"auc_not_worse": 1}, window="2025", challenger="x"))
    assert g["rows"] == [] and g["window"] is None and g["challenger"] is None


def test_only_the_named_lifecycle_sections_are_shown(tmp_path):
    """Flat mode with --backtest names only the backtest: no gate or what-changed section."""
    paths = replace(write_inputs(tmp_path), gate=None, changes=None)
    html = build_report(load_report_inputs(paths))
    assert 'id="backtest"' in html and 'href="#backtest"' in html
    assert 'id="gate"' not in html and 'id="changes"' not in html and 'href="#gate"' not in html
