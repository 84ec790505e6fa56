"""The report's hand-over sections: "How the grades are defined", the MQL handoff by sales
capacity (with speed to lead) and quality by segment.

Each function turns loaded files into the plain values its template section prints, reading
only the keys named here: models/grading.json (the grade cut points, explain stage),
reports/score.json (the grade counts of the latest scoring run, score stage) and
reports/evaluate.json's `capacity` and `segments` (evaluate stage,
leadscore.modeling.capacity and leadscore.modeling.segments). A missing file or key gives
`{"available": False}`: the template then says which stage writes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from leadscore.explain.grades import DIGITS, LETTERS
from leadscore.report.charts import as_float
from leadscore.report.formatting import GRADES, MODEL_NAMES, count, fmt, pct

SEGMENT_TITLES: dict[str, str] = {"source": "Lead source", "country": "Country",
                                  "industry": "Industry", "company_size_band": "Company size band",
                                  "bant_budget": "BANT: budget confirmed",
                                  "bant_timeline": "BANT: purchase timeline",
                                  "bant_answers": "BANT: questions answered"}
WEAK_AUC_GAP = 0.05  # a segment whose model ROC AUC is this far under the overall one is flagged


def _odds(logit: float) -> str:
    """A log-odds contribution in words: "+1.46 (odds x4.3)"."""
    logit = round(logit, 2) + 0.0  # no "-0.00"
    return f"{logit:+.2f} in log-odds (odds ×{math.exp(logit):.2g})"


def _band_sentences(cuts: Any, shares: Mapping, labels: tuple[str, ...], what: str) -> list[str]:
    """One sentence per label: its share of calib leads and its minimum score."""
    if not (isinstance(cuts, list | tuple) and len(cuts) == 3):
        return []
    out, above = [], 0.0
    for i, label in enumerate(labels):
        share = as_float(shares.get(label))
        part = (f"the next {pct(share, 0)} of leads (top {pct(above + (share or 0), 0)} in all)" if i
                else f"the best {pct(share, 0)} of leads")
        if i == len(labels) - 1:
            out.append(f"{label}: the remaining {pct(share, 0)} of leads, whose {what} adds less "
                       f"than {_odds(float(cuts[-1]))}.")
        else:
            out.append(f"{label}: {part}, whose {what} adds at least {_odds(float(cuts[i]))}.")
        above += share or 0.0
    return out


def grade_definition_section(grading: Mapping | None, score: Mapping | None) -> dict:
    """What A..D and 1..4 mean (cut points as shares of the calibration leads and as log-odds
    contributions) and the grade mix of the latest scoring run."""
    g = grading or {}
    if "fit_cuts" not in g or "engagement_cuts" not in g:
        return {"available": False, "mix": _grade_mix(score)}
    shares = g.get("shares") or {}
    window = g.get("calib_window")
    return {
        "available": True,
        "window": f"{window[0]} to {window[1]}" if isinstance(window, list | tuple) and len(window) == 2 else None,
        "fit": _band_sentences(g["fit_cuts"], shares.get("fit") or {}, LETTERS, "fit score"),
        "engagement": _band_sentences(g["engagement_cuts"], shares.get("engagement") or {}, DIGITS,
                                      "engagement score"),
        "n_fit": len(g.get("fit_features") or []),
        "n_engagement": len(g.get("engagement_features") or []),
        "mix": _grade_mix(score),
    }


def _grade_mix(score: Mapping | None) -> dict:
    """The latest scoring run's grade counts as a 4x4 table of shares, with letter and digit
    totals; `available` False without counts."""
    counts = {k: as_float(v) or 0.0 for k, v in ((score or {}).get("grades") or {}).items() if k in GRADES}
    total = sum(counts.values())
    if not total:
        return {"available": False}
    rows = [{"letter": a, "cells": [{"grade": f"{a}{d}", "count": count(counts.get(f"{a}{d}", 0)),
                                     "share": pct(counts.get(f"{a}{d}", 0) / total)} for d in DIGITS],
             "total": pct(sum(counts.get(f"{a}{d}", 0) for d in DIGITS) / total)} for a in LETTERS]
    digits = [pct(sum(counts.get(f"{a}{d}", 0) for a in LETTERS) / total) for d in DIGITS]
    return {"available": True, "rows": rows, "digit_totals": digits, "total": count(total),
            "as_of": str((score or {}).get("as_of") or "")[:10] or None,
            "model_version": str((score or {}).get("model_version") or "")[:12] or None}


def handoff_section(evaluation: Mapping | None) -> dict:
    """The recommended threshold and grade cut, their hand-over on the test months beside the
    rules' MQL threshold, and speed to lead."""
    c = (evaluation or {}).get("capacity")
    if not isinstance(c, Mapping) or not isinstance(c.get("test"), Mapping):
        return {"available": False}
    t = c["test"]
    mql = t.get("rules_mql") or {}
    names = {"threshold": f"Model: probability at least {pct(c.get('threshold'))}",
             "grade_cut": f"Model grades {', '.join(c.get('grade_cut') or [])}",
             "rules_mql": f"Points rules: MQL at {fmt(mql.get('mql_threshold'), 0)} points",
             "rules_at_capacity": "Points rules, cut at capacity"
             + (f" ({fmt((t.get('rules_at_capacity') or {}).get('points_threshold'), 0)} points)"
                if t.get("rules_at_capacity") else "")}
    rows = []
    for key, name in names.items():
        f = t.get(key)
        if not isinstance(f, Mapping):
            continue
        rows.append({"key": key, "name": name, "per_month": count(f.get("leads_per_month")),
                     "expected": fmt(f.get("expected_conversions"), 0),
                     "observed": count(f.get("observed_conversions")),
                     "rate": pct(f.get("conversion_rate")), "share": pct(f.get("share_of_conversions"))})
    speed = []
    for key in ("top_grades", "grade_cut"):
        s = (c.get("speed_to_lead") or {}).get(key)
        if isinstance(s, Mapping):
            speed.append({"grades": ", ".join(s.get("grades") or []), "per_month": count(s.get("in_top_per_month")),
                          "per_day": fmt(s.get("in_top_per_day"), 1),
                          "new_per_day": fmt(s.get("new_per_day"), 1),
                          "sla_hours": fmt(s.get("sla_hours"), 0),
                          "working_days": count(s.get("working_days_per_month"))})
    order = c.get("grade_order") or []
    return {"available": True, "capacity": count(c.get("capacity_per_month")),
            "model": MODEL_NAMES.get(str(c.get("model")), str(c.get("model"))),
            "threshold": pct(c.get("threshold")), "grade_cut": ", ".join(c.get("grade_cut") or []),
            "calib_fill": count((c.get("calib") or {}).get("threshold_leads_per_month")),
            "calib_cut_fill": count((c.get("calib") or {}).get("grade_cut_leads_per_month")),
            "order": ", ".join(order), "order_differs": list(order) != list(GRADES),
            "test_months": count(t.get("months")), "rows": rows, "speed": speed}


def segments_section(evaluation: Mapping | None) -> dict:
    """Per segment column, a table: rows, conversions, the model's and the rules' ROC AUC, the
    conversion of the model's best grade present; segments well under the overall AUC flagged."""
    ev = evaluation or {}
    seg = ev.get("segments")
    if not isinstance(seg, Mapping) or not seg.get("columns"):
        return {"available": False}
    models = list(seg.get("models") or [])
    main = models[0] if models else None
    overall = as_float((ev.get(main) or {}).get("roc_auc")) if main else None
    tables = []
    columns = seg["columns"]
    for col in [c for c in SEGMENT_TITLES if c in columns] + [c for c in columns if c not in SEGMENT_TITLES]:
        info = columns[col]
        rows = []
        for s in info.get("segments") or []:
            m, r = s.get(main) or {}, s.get("rules") or {}
            auc = as_float(m.get("roc_auc"))
            ci = m.get("roc_auc_ci")
            top = _best_grade(m.get("by_grade") or {})
            rows.append({"value": str(s.get("value")), "rows": count(s.get("rows")),
                         "positives": count(s.get("positives")), "rate": pct(s.get("rate")),
                         "auc": fmt(auc, 3),
                         "ci": f"{fmt(ci[0], 3)} to {fmt(ci[1], 3)}" if isinstance(ci, list) and len(ci) == 2 else "n/a",
                         "rules_auc": fmt(r.get("roc_auc"), 3) if main != "rules" else None,
                         "top": top,
                         "weak": auc is not None and overall is not None and auc < overall - WEAK_AUC_GAP})
        tables.append({"title": SEGMENT_TITLES.get(col, col), "column": col, "rows": rows,
                       "omitted": int(info.get("omitted") or 0)})
    return {"available": True, "model": MODEL_NAMES.get(str(main), str(main)), "tables": tables,
            "show_rules": main != "rules", "min_positives": count(seg.get("min_positives")),
            "overall": fmt(overall, 3)}


def _best_grade(by_grade: Mapping) -> str:
    """"A1: 27.8% of 1,527" for the first grade in A1..D4 order with leads ([leads,
    conversions]), else "–"."""
    for g in GRADES:
        v = by_grade.get(g)
        if isinstance(v, list | tuple) and len(v) >= 2 and v[0]:
            return f"{g}: {pct(v[1] / v[0])} of {count(v[0])}"
    return "–"
