"""The report's section "What sales said about the MQLs": acceptance by grade, model against
rules, and the top rejection reasons by grade.

Reads only reports/evaluate.json's `feedback` block (evaluate stage,
leadscore.modeling.feedback.acceptance_by_grade). A missing file or block gives
`{"available": False}` (the template says which stage writes it); a CRM without the optional
mql_feedback table gives `{"available": False, "no_table": True}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadscore.explain.grades import LETTERS
from leadscore.report.formatting import GRADES, MODEL_NAMES, count, pct

REASON_LABELS: dict[str, str] = {
    "no_budget": "no budget", "no_authority": "no authority", "no_need": "no need",
    "bad_timing": "bad timing", "bad_contact": "bad contact data", "duplicate": "duplicate",
    "other": "other", "unknown": "no reason given",
}


def _rate(cell: Mapping | None) -> str:
    """"62.5% (55.1% to 69.4%)", or "too few" when the grade has too few decisions."""
    if not cell or not cell.get("decisions"):
        return "–"
    if cell.get("acceptance_rate") is None:
        return "too few"
    ci = cell.get("acceptance_ci") or [None, None]
    return f"{pct(cell['acceptance_rate'])} ({pct(ci[0])} to {pct(ci[1])})"


def _reasons(cell: Mapping | None) -> str:
    """"no budget 40% · no authority 25%" (shares of the grade's rejections)."""
    parts = [f"{REASON_LABELS.get(r.get('reason'), str(r.get('reason')))} {pct(r.get('share'), 0)}"
             for r in (cell or {}).get("top_rejection_reasons") or []]
    return " · ".join(parts) or "–"


def _rows(blocks: Mapping, schemes: list[str], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for key in keys:
        cells = [(blocks.get(s) or {}).get(key) for s in schemes]
        if not any(c and c.get("decisions") for c in cells):
            continue
        rows.append({"grade": key, "cells": [
            {"decisions": count((c or {}).get("decisions", 0)), "rate": _rate(c), "reasons": _reasons(c)}
            for c in cells]})
    return rows


def feedback_section(evaluation: Mapping | None) -> dict:
    """Acceptance by fit letter and by grade for the model that ships and the rules, and the
    top rejection reasons per grade."""
    fb = (evaluation or {}).get("feedback")
    if not isinstance(fb, Mapping):
        return {"available": False}
    if not fb.get("available"):
        return {"available": False, "no_table": True}
    by_grade, by_letter = fb.get("by_grade") or {}, fb.get("by_letter") or {}
    schemes = sorted(by_grade, key=lambda s: (s == "rules", s))  # the model first, the rules last
    overall = fb.get("overall") or {}
    return {
        "available": True,
        "schemes": [MODEL_NAMES.get(s, s) for s in schemes],
        "decisions": count(overall.get("decisions")),
        "accepted": count(overall.get("accepted")),
        "rate": _rate(overall),
        "reasons": _reasons(overall),
        "in_table": count(fb.get("decisions_in_table")),
        "horizon_days": fb.get("horizon_days"),
        "min_decisions": fb.get("min_decisions"),
        "letters": _rows(by_letter, schemes, LETTERS),
        "grades": _rows(by_grade, schemes, GRADES),
    }
