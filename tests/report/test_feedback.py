"""The report's section "What sales said about the MQLs" (leadscore.report.feedback)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from leadscore.modeling.feedback import NO_FEEDBACK, acceptance_by_grade
from leadscore.report.build import build_report
from leadscore.report.feedback import feedback_section
from tests.report.inputs import PII_STRINGS, make_inputs, visible_text


def _block() -> dict:
    """40 decisions on 40 test rows: grade A accepted 18 of 20, grade D 4 of 20 (the rules
    grade them all B1)."""
    n = 40
    rows = pd.DataFrame({"lead_id": [f"L{i}" for i in range(n)],
                         "as_of": pd.to_datetime(["2025-01-01"] * n)})
    accepted = [i % 10 != 0 for i in range(20)] + [i % 5 == 0 for i in range(20)]
    reasons = ["no_budget" if i < 30 else "bad_contact" for i in range(n)]
    fb = pd.DataFrame({"lead_id": rows["lead_id"], "decided_at": pd.to_datetime(["2025-01-04"] * n),
                       "accepted": accepted,
                       "reason": [None if a else r for a, r in zip(accepted, reasons, strict=True)]})
    return acceptance_by_grade(rows, fb, {"lightgbm": ["A1"] * 20 + ["D4"] * 20, "rules": ["B1"] * n},
                               horizon_days=90, min_decisions=10)


def _section(html: str) -> str:
    return visible_text(html.split('<section id="feedback">', 1)[1].split("</section>", 1)[0])


def test_section_data_puts_the_model_first_and_reads_the_reasons():
    s = feedback_section({"feedback": _block()})
    assert s["schemes"] == ["Predictive model (LightGBM)", "Points rules (today's baseline)"]
    assert [r["grade"] for r in s["letters"]] == ["A", "B", "D"]
    a1 = s["grades"][0]
    assert a1["grade"] == "A1" and a1["cells"][0]["rate"].startswith("90.0% (")
    assert a1["cells"][1]["decisions"] == "0" and a1["cells"][1]["rate"] == "–"
    d4 = next(r for r in s["grades"] if r["grade"] == "D4")
    assert d4["cells"][0]["reasons"] == "bad contact data 50% · no budget 50%"  # 8 each, a tie


def test_report_renders_acceptance_by_grade_model_against_rules():
    ev = dict(make_inputs().evaluate or {}) | {"feedback": _block()}
    html = build_report(replace(make_inputs(), evaluate=ev))
    text = _section(html)
    assert "What sales said about the MQLs" in text
    assert "Sales accepted or rejected 40 MQLs" in text and "they accepted 22: 55.0%" in text
    assert "A 20 90.0% (" in text and "D 20 20.0% (" in text
    assert "B 0 – 40 55.0% (" in text  # the rules put every decision in B
    assert "no budget" in text and not [p for p in PII_STRINGS if p in html]
    assert 'href="#feedback"' in html


def test_report_says_when_there_is_no_feedback():
    ev = dict(make_inputs().evaluate or {}) | {"feedback": dict(NO_FEEDBACK)}
    text = _section(build_report(replace(make_inputs(), evaluate=ev)))
    assert "the CRM has no mql_feedback table" in text
    bare = _section(build_report(make_inputs()))  # an evaluate.json without the block
    assert "Not available: the feedback figures in reports/evaluate.json" in bare
