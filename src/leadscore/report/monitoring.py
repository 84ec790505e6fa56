"""The report's monitoring section: drift per feature over the scoring runs, the grade mix
over runs, and the latest checks (from reports/monitor.json, the `monitor` stage).

`monitoring_section` reads only the keys named here, so a stray field never reaches the
page. A missing file (None) or a history without a run gives `{"available": False}`: the
template then says which stage writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadscore.report.charts import as_float, heat_color
from leadscore.report.formatting import pct

MAX_FEATURES = 10  # features shown: the largest PSI in any run shown
MAX_RUNS = 8  # runs shown as columns
LETTERS, DIGITS = ("A", "B", "C", "D"), ("1", "2", "3", "4")
CHECK_NAMES: dict[str, str] = {
    "feature_drift": "Fields look like the training data (PSI per field)",
    "score_drift": "Scores look like the training data (PSI of the probability)",
    "grade_mix_drift": "Grade mix looks like the training data (PSI)",
    "run_to_run_drift": "Scores did not jump since the previous run",
    "new_levels": "No new categories (a new lead source, say)",
    "null_rate": "Fields still arrive (null rates)",
    "volume": "The usual number of leads was scored",
    "freshness": "The CRM has recent activity",
    "realized_auc": "Realized ranking holds (ROC-AUC on the outcomes that came in)",
    "realized_calibration": "Realized conversion matches the probabilities",
    "realized_lift": "The model's hand-over beats the rules' (control arm)",
}
GRADES = tuple(f"{x}{d}" for x in LETTERS for d in DIGITS)


def _cell(v: Any, vmax: float) -> dict:
    f = as_float(v)
    bg, fg = heat_color(f, vmax)
    return {"text": "–" if f is None else f"{f:.2f}", "bg": bg, "fg": fg}


def _mix(shares: Mapping | None) -> dict[str, str]:
    s = {str(k): as_float(v) or 0.0 for k, v in (shares or {}).items()}
    out = {x: pct(sum(v for g, v in s.items() if g.startswith(x)), 0) for x in LETTERS}
    out |= {x: pct(sum(v for g, v in s.items() if g.endswith(x)), 0) for x in DIGITS}
    return out


def _interval(v: Any, ci: Any, digits: int = 3) -> str:
    f = as_float(v)
    if f is None:
        return "–"
    if isinstance(ci, list | tuple) and len(ci) == 2 and None not in ci:
        return f"{f:.{digits}f} ({as_float(ci[0]):.{digits}f}–{as_float(ci[1]):.{digits}f})"
    return f"{f:.{digits}f}"


def realized_rows(realized: Mapping | None) -> dict:
    """The realized-performance table (one row per run, oldest first) and, for the latest
    matured run, observed against expected conversion per grade."""
    runs = [r for r in ((realized or {}).get("runs") or []) if isinstance(r, Mapping)][-MAX_RUNS:]
    rows = []
    for r in runs:
        row = {"as_of": str(r.get("as_of", ""))[:10], "model": str(r.get("model_version", ""))[:12],
               "status": str(r.get("status", "")), "matures_on": str(r.get("matures_on", ""))}
        if r.get("status") == "matured":
            exp = r.get("expected") or {}
            bt = exp.get("backtest") or {}
            lf = r.get("lift") or {}
            row |= {"leads": f"{int(r.get('n') or 0):,}", "conversions": f"{int(r.get('conversions') or 0):,}",
                    "auc": _interval(r.get("roc_auc"), r.get("roc_auc_ci")),
                    "expected": (f"{as_float(bt['roc_auc_min']):.3f}–{as_float(bt['roc_auc_max']):.3f} (backtest)"
                                 if bt else _interval(exp.get("roc_auc"), exp.get("roc_auc_ci"))),
                    "predicted": pct(r.get("mean_probability"), 1), "observed": pct(r.get("observed_rate"), 1),
                    "lift": (f"{pct((lf.get('model') or {}).get('rate'), 1)} vs {pct((lf.get('control') or {}).get('rate'), 1)}"
                             if lf else "–")}
        rows.append(row)
    done = [r for r in runs if r.get("status") == "matured"]
    grades = []
    if done:
        last = done[-1]
        exp = ((last.get("expected") or {}).get("grades")) or {}
        for g in GRADES:
            got = (last.get("grades") or {}).get(g)
            if got:
                grades.append({"grade": g, "leads": f"{int(got.get('n') or 0):,}",
                               "observed": pct(got.get("rate"), 1), "predicted": pct(got.get("mean_probability"), 1),
                               "expected": pct((exp.get(g) or {}).get("rate"), 1)})
    return {"rows": rows, "grades": grades, "grades_as_of": str(done[-1].get("as_of", ""))[:10] if done else "",
            "handover_share": pct((((done[-1].get("lift") or {}).get("share")) if done else None), 0)}


def monitoring_section(doc: Mapping | None) -> dict:
    """Status and alerts, a PSI heat table (features x runs) and the grade mix per run."""
    if not isinstance(doc, Mapping) or not doc.get("runs"):
        return {"available": False}
    runs = [r for r in doc["runs"] if isinstance(r, Mapping)][-MAX_RUNS:]
    th = doc.get("thresholds") or {}
    f_alert = as_float(th.get("feature_psi_alert")) or 0.5
    alert = as_float(th.get("psi_alert")) or 0.25
    worst: dict[str, float] = {}
    for r in runs:
        for k, v in ((r.get("psi") or {}).get("features") or {}).items():
            worst[str(k)] = max(worst.get(str(k), 0.0), as_float(v) or 0.0)
    names = sorted(worst, key=lambda k: -worst[k])[:MAX_FEATURES]
    rows = [{"label": "Score (probability)",
             "cells": [_cell((r.get("psi") or {}).get("probability"), alert) for r in runs]},
            {"label": "Grade mix",
             "cells": [_cell((r.get("psi") or {}).get("grades"), alert) for r in runs]}]
    rows += [{"label": n, "cells": [_cell(((r.get("psi") or {}).get("features") or {}).get(n), f_alert)
                                    for r in runs]} for n in names]
    ref = doc.get("reference") or {}
    mix = [{"label": "Training reference", **_mix(ref.get("grade_shares"))}] if ref else []
    mix += [{"label": str(r.get("as_of", ""))[:10], "leads": f"{int(r.get('leads_scored') or 0):,}",
             **_mix(r.get("grade_shares"))} for r in runs]
    checks = [{"name": CHECK_NAMES.get(str(c.get("name")), str(c.get("name"))),
               "passed": bool(c.get("passed")), "message": str(c.get("message", ""))}
              for c in doc.get("checks") or [] if isinstance(c, Mapping)]
    return {
        "available": True, "status": doc.get("status"),
        "alerts": [c for c in checks if not c["passed"]],
        "warnings": [str(w) for w in doc.get("warnings") or []][:10],
        "checks": checks, "columns": [str(r.get("as_of", ""))[:10] for r in runs], "rows": rows,
        "mix": mix, "letters": LETTERS, "digits": DIGITS,
        "reference": (f"{ref.get('source')} ({int(ref['rows']):,} rows), model "
                      f"{str(ref.get('model_version', ''))[:12]}") if ref.get("rows") else None,
        "alert": alert, "feature_alert": f_alert,
        "realized": realized_rows(doc.get("realized")),
    }
