"""The stages' JSON outputs as frames for a review: out-of-time metrics per model,
segments, grade matrices, the backtest, the gate, the drivers, example leads and a
lead-by-lead walk through grades and reasons. Pure reshaping: every figure was computed
by its stage (or, for `walk`, by the one `Scorer`); nothing is re-estimated here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

MODELS: tuple[str, ...] = ("rules", "logistic", "lightgbm")
METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "precision_at_k",
                            "recall_at_k", "lift_top_decile")


def _ci(block: Mapping, name: str) -> tuple[float | None, float | None]:
    ci = block.get(f"{name}_ci")
    return (ci[0], ci[1]) if isinstance(ci, Sequence) and len(ci) == 2 else (None, None)


def metrics_table(evaluate: Mapping, models: Sequence[str] = MODELS) -> pd.DataFrame:
    """Out-of-time test metrics, one row per model present, ROC-AUC with its 95% interval."""
    rows = []
    for m in models:
        block = evaluate.get(m)
        if not isinstance(block, Mapping):
            continue
        lo, hi = _ci(block, "roc_auc")
        rows.append({"model": m, **{k: block.get(k) for k in METRICS},
                     "roc_auc_low": lo, "roc_auc_high": hi})
    cols = ["model", *METRICS, "roc_auc_low", "roc_auc_high"]
    return pd.DataFrame(rows, columns=cols).set_index("model")


def segments_table(evaluate: Mapping, column: str) -> pd.DataFrame:
    """ROC-AUC per value of one segment column (evaluate's `segments`), model against rules."""
    block = (evaluate.get("segments") or {}).get("columns", {}).get(column) or {}
    rows = []
    for seg in block.get("segments", []):
        row = {"value": seg.get("value"), "rows": seg.get("rows"), "positives": seg.get("positives"),
               "rate": seg.get("rate")}
        for m in MODELS:
            if isinstance(seg.get(m), Mapping):
                row[f"roc_auc_{m}"] = seg[m].get("roc_auc")
        rows.append(row)
    return pd.DataFrame(rows).set_index("value") if rows else pd.DataFrame()


def segment_columns(evaluate: Mapping) -> list[str]:
    """The segment columns evaluate reported."""
    return list(((evaluate.get("segments") or {}).get("columns") or {}).keys())


def grade_matrix(grades: Mapping, model: str, value: str = "rate") -> pd.DataFrame:
    """A 4x4 grade matrix (fit letter x engagement digit) of one model from reports/grades.json:
    `value` is rate (observed conversion), count, conversions or mean_predicted."""
    cells = (grades.get(model) or {}).get("cells") or []
    if not cells:
        return pd.DataFrame()
    df = pd.DataFrame(cells)
    out = df.pivot(index="fit", columns="engagement", values=value)
    out.columns.name, out.index.name = "engagement", "fit"
    return out.sort_index().sort_index(axis=1)


def grade_breaks(grades: Mapping, model: str) -> pd.DataFrame:
    """Where a better grade converts less than a worse one, and whether that is significant."""
    return pd.DataFrame((grades.get(model) or {}).get("violations") or [])


def backtest_table(backtest: Mapping, value: str = "roc_auc") -> pd.DataFrame:
    """One row per fold (its cutoff), one column per model: `value` (roc_auc, pr_auc, ece)."""
    rows = [{"fold": f["fold"], "cutoff": f.get("cutoff"), "test_rows": f.get("test_rows"),
             "test_positives": f.get("test_positives"),
             **{m: (r or {}).get(value) for m, r in (f.get("models") or {}).items()}}
            for f in backtest.get("folds", [])]
    return pd.DataFrame(rows).set_index("fold") if rows else pd.DataFrame()


def backtest_summary(backtest: Mapping) -> pd.DataFrame:
    """Per model and metric: the backtest's mean with its 95% interval, as it reported them."""
    rows = []
    for model, metrics in (backtest.get("summary") or {}).items():
        for metric, s in (metrics or {}).items():
            row = {"model": model, "metric": metric}
            if isinstance(s, Mapping):
                row.update(s)
            else:
                row["mean"] = s
            rows.append(row)
    return pd.DataFrame(rows)


def gate_table(gate: Mapping) -> pd.DataFrame:
    """The gate's checks: name, passed, what it found (detail)."""
    return pd.DataFrame([{"check": c.get("name"), "passed": c.get("passed"), "detail": c.get("detail")}
                         for c in gate.get("checks", [])], columns=["check", "passed", "detail"])


def gate_sides(gate: Mapping) -> pd.DataFrame:
    """Champion and challenger as the gate saw them: kind, model and registry version."""
    rows = {side: dict(gate.get(side) or {}) for side in ("champion", "challenger")}
    return pd.DataFrame(rows).T


def drivers_table(drivers: Mapping) -> pd.DataFrame:
    """Global drivers, strongest first: field, group, mean |contribution| and the words."""
    rows = [{"field": d.get("field"), "label": d.get("label"), "group": d.get("group"),
             "mean_abs_contribution": d.get("mean_abs_contribution"), "direction": d.get("direction"),
             "in_words": d.get("direction_text")} for d in drivers.get("drivers", [])]
    df = pd.DataFrame(rows, columns=["field", "label", "group", "mean_abs_contribution",
                                     "direction", "in_words"])
    return df.sort_values("mean_abs_contribution", ascending=False, ignore_index=True)


def _reason_texts(reasons: Any, positive: bool) -> str:
    picked = [r for r in (reasons or []) if (r.get("contribution", 0) > 0) == positive]
    return "; ".join(r.get("text", "") for r in picked)


def examples_table(examples: Mapping) -> pd.DataFrame:
    """The explain stage's example leads (pseudonymous ids only), one row each, grade order,
    with their reasons for and against in words."""
    rows = [{"grade": grade, "lead_id": e.get("lead_id"), "as_of": e.get("as_of"),
             "probability": e.get("probability"), "for": _reason_texts(e.get("reasons"), True),
             "against": _reason_texts(e.get("reasons"), False)}
            for grade, leads in sorted(examples.items()) for e in leads]
    return pd.DataFrame(rows)


def reasons_table(reasons: Any) -> pd.DataFrame:
    """One lead's reasons: code, words and signed contribution (log-odds or points)."""
    return pd.DataFrame(list(reasons or []), columns=["code", "text", "contribution"])


def walk(scorer: Any, rows: pd.DataFrame) -> pd.DataFrame:
    """Score `rows` (training-table rows: lead_id, as_of, features) with a
    `leadscore.serve.scorer.Scorer`: lead_id, as_of, label, then the score contract (the
    model's grade beside the rules' points and grade; reasons as lists of dicts)."""
    keep = [c for c in ("lead_id", "as_of", "label") if c in rows.columns]
    return pd.concat([rows[keep], scorer.score(rows)], axis=1)


def example_rows(table: pd.DataFrame, examples: Mapping) -> pd.DataFrame:
    """The training-table rows of the explain stage's example leads (lead_id and as_of), in
    grade order, so they can be scored again, e.g. by `walk`."""
    keys = pd.DataFrame([{"grade": g, "lead_id": e["lead_id"], "as_of": pd.Timestamp(e["as_of"])}
                         for g, leads in sorted(examples.items()) for e in leads])
    if keys.empty:
        return table.iloc[:0]
    as_of = pd.to_datetime(table["as_of"])
    rows = table.assign(_as_of=as_of.dt.tz_localize(None) if as_of.dt.tz else as_of)
    merged = keys.merge(rows, left_on=["lead_id", "as_of"], right_on=["lead_id", "_as_of"],
                        suffixes=("", "_table"))
    return merged.drop(columns=["grade", "_as_of", "as_of_table"], errors="ignore").reset_index(drop=True)


def dependence_curve(dependence: pd.DataFrame, bins: int = 12) -> pd.DataFrame:
    """A dependence plot's points (value, contribution) summarised: numeric values in up to
    `bins` equal-count bins (x = the bin's median value), text values per level; with the
    mean contribution and the row count (missing numeric values are left out). `numeric`
    says which."""
    values = pd.to_numeric(dependence["value"], errors="coerce")
    contrib = pd.to_numeric(dependence["contribution"], errors="coerce")
    present = dependence["value"].notna() & (dependence["value"].astype(str) != "")
    numeric = bool(present.any()) and values[present].notna().all() and values.nunique() > 2
    if numeric:
        ok = values.notna()
        groups = pd.qcut(values[ok].rank(method="first"), min(bins, int(ok.sum())), labels=False)
        out = pd.DataFrame({"x": values[ok], "c": contrib[ok]}).groupby(groups).agg(
            value=("x", "median"), mean_contribution=("c", "mean"), rows=("c", "size"))
    else:
        out = contrib.groupby(dependence["value"].astype(str)).agg(
            mean_contribution="mean", rows="size").sort_values("mean_contribution").reset_index()
    out = out.reset_index(drop=True)
    out["numeric"] = bool(numeric)
    return out


def points_summary(points: Mapping) -> pd.DataFrame:
    """Out-of-time ROC-AUC of the learned points table, its model and the hand-written
    rules (reports/points.json), with 95% intervals where reported."""
    auc, ci = points.get("roc_auc") or {}, points.get("roc_auc_ci") or {}
    rows = [{"scorer": k, "roc_auc": v, "low": (ci.get(k) or [None, None])[0],
             "high": (ci.get(k) or [None, None])[1]} for k, v in auc.items()]
    return pd.DataFrame(rows).set_index("scorer") if rows else pd.DataFrame()
