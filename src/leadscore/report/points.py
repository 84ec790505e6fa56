"""The report's "points table learned from the model" section, beside the hand-written rules.

`learned_points_section` turns the `points` stage's outputs (reports/points.json: the three
out-of-time ROC-AUCs, grade bands, MQL threshold and hand-over; models/points.csv: one row
per field and condition; models/points.yaml: the block to paste) and the hand-written rows
of `train_rules` (models/rules.json, as `leadscore.report.build` lists them) into the plain
values the template prints, in words a marketer reads. Only the keys named here are read.
A missing points record gives `{"available": False}` (the template says which stage writes
it); a stage that could not learn a table (`available: false` in the file) gives its reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.report.charts import as_float, pretty
from leadscore.report.formatting import count, fmt, pct

LEARNED = "learned_points"
AUC_ROWS: tuple[tuple[str, str], ...] = (
    (LEARNED, "Learned points table (its points, calibrated)"),
    (f"{LEARNED}_raw", "Learned points table (ranked by its raw points)"),
    ("lightgbm", "The model it came from (LightGBM)"),
    ("rules", "Hand-written points rules (today)"),
)
CSV_COLUMNS = ("field", "group", "label", "condition", "points")


def read_points_csv(path: Path) -> pd.DataFrame:
    """models/points.csv with every text column as text (a country code "NA" stays "NA")."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _number(text: str) -> str:
    """A band edge for humans: "422000" -> "422,000", "0.2647" -> "0.2647"."""
    x = as_float(text)
    if x is None:
        return text
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.6g}"


def condition_text(cond: str) -> str:
    """A condition of the flat rules syntax in words: "<1" -> "under 1", "1..3" -> "1 to
    under 3", ">=3" -> "3 or more", "missing" -> "not known", "(other)" -> "any other value",
    a category value -> its readable name."""
    cond = str(cond)
    if cond == "missing":
        return "not known"
    if cond == "(other)":
        return "any other value"
    if cond.startswith(">="):
        return f"{_number(cond[2:])} or more"
    if cond.startswith("<"):
        return f"under {_number(cond[1:])}"
    lo, sep, hi = cond.partition("..")
    if sep and as_float(lo) is not None and as_float(hi) is not None:
        return f"{_number(lo)} to under {_number(hi)}"
    return pretty(cond)


def _signed(v: Any) -> str:
    f = as_float(v)
    return "n/a" if f is None else "0" if f == 0 else f"{f:+g}"


def _learned_rows(table: pd.DataFrame | None) -> list[dict]:
    """One row per field (fit first, then engagement; widest points spread first)."""
    if table is None or not set(CSV_COLUMNS) <= set(table.columns) or table.empty:
        return []
    rows = []
    for (group, field), g in table.groupby(["group", "field"], sort=False):
        pts = [as_float(p) or 0.0 for p in g["points"]]
        rows.append({"field": str(field), "label": str(g["label"].iloc[0]) or pretty(field),
                     "group": "Profile fit" if group == "fit" else "Engagement", "group_key": group,
                     "spread": max(pts) - min(pts),
                     "points": ", ".join(f"{condition_text(c)} {_signed(p)}"
                                         for c, p in zip(g["condition"], g["points"], strict=True))})
    rows.sort(key=lambda r: (r["group_key"] != "fit", -r["spread"]))
    return rows


def _bands(fit: Any, engagement: Any, unit: str = "points") -> str | None:
    """ "Fit grade A at 3 points or more, ..., else D; engagement 1 at ..., else 4." """
    if not isinstance(fit, Mapping) or not isinstance(engagement, Mapping) or not fit or not engagement:
        return None
    def part(bands: Mapping) -> str:
        return ", ".join(f"{k} at {as_float(v):g} {unit} or more" for k, v in bands.items()
                         if as_float(v) is not None)
    return f"Fit grade {part(fit)}, else D; engagement {part(engagement)}, else 4."


def _auc_words(auc: Mapping, months: Any) -> str | None:
    learned, model, rules = (as_float(auc.get(k)) for k in (f"{LEARNED}_raw", "lightgbm", "rules"))
    if learned is None or model is None or rules is None:
        return None
    gap = model - learned
    close = ("about as well as" if abs(gap) < 0.01
             else "a little less well than" if gap < 0.03 else "less well than")
    on = f"the {count(months)} out-of-time test months" if months else "the out-of-time test months"
    return (f"On {on}, which the table never saw, ranking leads by the learned points ranks them "
            f"{close} the model it came from (ROC AUC {fmt(learned, 3)} against {fmt(model, 3)}) "
            f"and {'better' if learned > rules else 'no better'} than today's hand-written rules "
            f"({fmt(rules, 3)}). 0.5 is a coin toss, 1.0 a perfect ranking.")


def _mql_words(m: Mapping, rules_mql: Mapping) -> str | None:
    t = as_float(m.get("threshold"))
    test = m.get("test") or {}
    if t is None:
        return None
    words = (f"Hand a lead to sales as an MQL at {t:g} points or more. That threshold was set to "
             f"fill sales capacity ({count(m.get('capacity_per_month'))} leads a month) on the "
             f"calibration months ({count(m.get('calib_leads_per_month'))} a month there). On the "
             f"test months it handed over {count(test.get('leads_per_month'))} leads a month, "
             f"{pct(test.get('conversion_rate'))} of whom converted "
             f"({pct(test.get('share_of_conversions'), 0)} of all conversions).")
    r, rt = as_float(rules_mql.get("threshold")), rules_mql.get("test") or {}
    if r is not None and rt:
        words += (f" Today's rules (MQL at {r:g} points) handed over "
                  f"{count(rt.get('leads_per_month'))} a month, {pct(rt.get('conversion_rate'))} "
                  f"converting ({pct(rt.get('share_of_conversions'), 0)} of all conversions).")
    return words


def learned_points_section(metrics: Mapping | None, table: pd.DataFrame | None,
                           yaml_text: str | None, *, rules: Mapping | None,
                           hand_written: Sequence[Mapping], labels: Mapping[str, str]) -> dict:
    """The learned table beside the hand-written one: per field its bands / values and
    points, the grade bands and MQL thresholds of both, the three ROC-AUCs (with 95%
    intervals) and the hand-over at the MQL threshold, in words."""
    m = metrics if isinstance(metrics, Mapping) else None
    if m is None:
        return {"available": False}
    if not m.get("available"):
        return {"available": False, "reason": str(m.get("reason") or "the points stage wrote no table")}
    auc, ci = m.get("roc_auc") or {}, m.get("roc_auc_ci") or {}
    test = m.get("test") or {}
    aucs = [{"key": k, "name": name, "roc_auc": fmt(auc.get(k), 3),
             "ci": (f"{fmt(ci[k][0], 3)} to {fmt(ci[k][1], 3)}"
                    if isinstance(ci.get(k), Sequence) and len(ci[k]) == 2 else "–")}
            for k, name in AUC_ROWS if auc.get(k) is not None]
    p = (rules or {}).get("params") or {}
    hand = [{"label": labels.get(str(r.get("field"))) or pretty(r.get("field")).capitalize(),
             "group": "Profile fit" if r.get("group") == "fit" else "Engagement",
             "points": r.get("points", "")} for r in hand_written]
    ppd = as_float(m.get("points_per_doubling"))
    return {
        "available": True,
        "points_per_doubling": f"{ppd:g}" if ppd else None,
        "half": f"{ppd / 2:g}" if ppd else None,
        "half_factor": f"{math.sqrt(2):.2f}",
        "auc_words": _auc_words(auc, test.get("months")),
        "aucs": aucs,
        "mql_words": _mql_words(m.get("mql") or {}, m.get("rules_mql") or {}),
        "fields": {k: count(v) for k, v in (m.get("fields") or {}).items()},
        "learned": _learned_rows(table),
        "learned_bands": _bands(m.get("fit_bands"), m.get("engagement_bands")),
        "learned_mql": fmt((m.get("mql") or {}).get("threshold"), 0),
        "hand_written": hand,
        "hand_bands": _bands(p.get("fit_bands"), p.get("engagement_bands")),
        "hand_mql": f"{as_float(p.get('mql_threshold')):g}" if as_float(p.get("mql_threshold")) is not None else None,
        "yaml": yaml_text or None,
    }
