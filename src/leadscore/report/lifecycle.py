"""The report's model-lifecycle sections: backtest, promotion gate and "what changed".

Each function turns one loaded file (docs/lifecycle.md: reports/backtest.json,
reports/gate.json, reports/changes.json) into the plain values its template section prints,
reading only the keys named here, so a stray field never reaches the page. A missing file
(None) gives `{"available": False}`: the template then says which stage writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from leadscore.report.charts import COLORS, Series, as_float, bar, date_chart, heat_color, pretty
from leadscore.report.formatting import GRADES, MODEL_NAMES, count, fmt, pct

BACKTEST_MODELS: tuple[str, ...] = ("rules", "logistic", "lightgbm")
REFIT_MODELS: tuple[str, ...] = ("logistic", "lightgbm")
SHORT_NAMES: dict[str, str] = {"lightgbm": "the LightGBM model",
                               "logistic": "the logistic check model", "rules": "the points rules"}
CHECK_NAMES: dict[str, str] = {
    "auc_not_worse": "Ranks leads at least as well as the champion (ROC AUC)",
    "calibration": "Probabilities match observed conversion (calibration)",
    "grade_order": "Better grades convert more (grade order)",
    "segments": "No segment ranks much worse (source, country, industry, size)",
    "beats_rules": "Beats the points rules (ROC AUC)",
}
CHECK_SHORT: dict[str, str] = {"auc_not_worse": "ranking quality", "calibration": "calibration",
                               "grade_order": "grade order", "segments": "segments",
                               "beats_rules": "beats the rules"}
CHANGED_DRIVERS = 10  # driver changes listed
MAX_MOVERS = 10


def _signed(v: Any, digits: int = 3) -> str:
    f = as_float(v)
    return "n/a" if f is None else f"{f:+.{digits}f}"


def _kind(info: Mapping) -> str:
    kind = str(info.get("kind", ""))
    return MODEL_NAMES.get(kind, pretty(kind) if kind else "unknown kind")


def _identity(info: Any) -> dict | None:
    """registry version, model version (first 12 characters) and kind of one side."""
    if not isinstance(info, Mapping):
        return None
    return {"kind": _kind(info), "kind_key": str(info.get("kind", "")),
            "registry_version": str(info.get("registry_version") or "–"),
            "model_version": str(info.get("model_version") or "")[:12] or "–"}


# --------------------------------------------------------------------------- backtest


def backtest_section(backtest: Mapping | None) -> dict:
    """ROC AUC per fold over time (chart), mean and interval per model, and whether refit won."""
    bt = backtest or {}
    folds = sorted((f for f in bt.get("folds") or [] if isinstance(f, Mapping) and f.get("cutoff")),
                   key=lambda f: str(f["cutoff"]))
    if not folds and not bt.get("summary"):
        return {"available": False}
    series, legend = [], []
    for key in (*BACKTEST_MODELS, *(f"{k}_no_refit" for k in REFIT_MODELS)):
        base = key.removesuffix("_no_refit")
        xs, ys, tips = [], [], []
        for f in folds:
            auc = as_float(((f.get("models") or {}).get(key) or {}).get("roc_auc"))
            if auc is None:
                continue
            xs.append(str(f["cutoff"])[:10])
            ys.append(auc)
            tips.append(f"fold {f.get('fold', '?')}, cutoff {str(f['cutoff'])[:10]}: ROC AUC "
                        f"{auc:.3f} on {count(f.get('test_rows'))} test rows "
                        f"({count(f.get('test_positives'))} conversions)")
        if not xs:
            continue
        name = MODEL_NAMES[base] + (", not refitted" if key != base else "")
        dash = "5 3" if key != base else ""
        series.append(Series(name, xs, ys, COLORS[base], dash=dash, tips=tips))
        legend.append({"name": name, "color": COLORS[base], "dash": bool(dash)})
    chart = date_chart(series, title="ROC AUC per backtest fold", y_label="ROC AUC",
                       x_label="Fold cutoff (retrain date)") if series else None
    summary = bt.get("summary") or {}
    rows = []
    for key in (*BACKTEST_MODELS, *(f"{k}_no_refit" for k in REFIT_MODELS)):
        s = summary.get(key)
        if not isinstance(s, Mapping):
            continue
        auc, pr = s.get("roc_auc") or {}, s.get("pr_auc") or {}
        base = key.removesuffix("_no_refit")
        rows.append({"name": MODEL_NAMES[base] + (", not refitted" if key != base else ""),
                     "roc_auc": fmt(auc.get("mean"), 3),
                     "roc_auc_ci": f"{fmt(auc.get('ci_low'), 3)} to {fmt(auc.get('ci_high'), 3)}",
                     "pr_auc": fmt(pr.get("mean"), 3) if pr else None})
    return {"available": True, "chart": chart, "legend": legend, "rows": rows,
            "show_pr": any(r["pr_auc"] for r in rows), "refit": _refit_sentence(bt, len(folds)),
            "folds": len(folds),
            "span": (f"{str(folds[0]['cutoff'])[:10]} to {str(folds[-1]['cutoff'])[:10]}"
                     if folds else None)}


def _refit_sentence(bt: Mapping, n_folds: int) -> str | None:
    parts = []
    for key in REFIT_MODELS:
        r = (bt.get("refit") or {}).get(key)
        if not isinstance(r, Mapping) or r.get("wins") is None:
            continue
        won = as_float(r.get("folds_won"))
        of = f" in {count(won)} of {n_folds} folds" if won is not None and n_folds else ""
        parts.append(f"{'won' if r['wins'] else 'did not win'} for {SHORT_NAMES[key]} (mean ROC "
                     f"AUC change {_signed(r.get('mean_auc_gain'), 4)}, better{of})")
    if not parts:
        return None
    return ("Refitting (training again on every row mature before the test months) "
            + " and ".join(parts) + ".")


# --------------------------------------------------------------------------- gate


def _number(key: str, v: Any) -> str:
    if key in ("mean_predicted", "observed_rate"):
        return pct(v, 2)
    if key == "calibration_in_the_large":
        return pct(v, 1)
    if key == "ece":
        return fmt(v, 4)
    if key in ("diff", "ci_low", "ci_high"):
        return _signed(v)
    f = as_float(v)
    if f is not None and float(f).is_integer() and not isinstance(v, float):
        return count(f)
    return fmt(v, 3)


FIGURE_WORDS: dict[str, str] = {
    "challenger": "challenger", "champion": "champion", "rules": "points rules",
    "diff": "difference", "ece": "calibration error", "mean_predicted": "mean predicted",
    "observed_rate": "observed rate", "calibration_in_the_large": "off by",
    "violations": "order breaks", "significant_violations": "significant breaks",
    "judged": "segments judged",
}


def _segment(s: Any) -> str | None:
    if not isinstance(s, Mapping):
        return None
    return (f"{pretty(s.get('segment', '?'))} = {pretty(s.get('value', '?'))} "
            f"({fmt(s.get('champion'), 3)} → {fmt(s.get('challenger'), 3)})")


def _figures(figures: Any) -> list[str]:
    """A check's figures as short phrases ("champion 0.790", "95% interval -0.002 to +0.020")."""
    if not isinstance(figures, Mapping):
        return []
    out = []
    for key, word in FIGURE_WORDS.items():
        if as_float(figures.get(key)) is not None:
            out.append(f"{word} {_number(key, figures[key])}")
    if as_float(figures.get("ci_low")) is not None:
        out.append(f"95% interval {_signed(figures['ci_low'])} to {_signed(figures.get('ci_high'))}")
    breaks = [f"{b.get('worse')} above {b.get('better')}" for b in figures.get("breaks") or []
              if isinstance(b, Mapping)]
    if breaks:
        out.append("breaks: " + ", ".join(breaks))
    if worst := _segment(figures.get("worst")):
        out.append(f"worst {worst}")
    failed = [s for s in map(_segment, figures.get("failed") or []) if s]
    if failed:
        out.append("fell too far: " + "; ".join(failed))
    missing = [pretty(c) for c in figures.get("not_in_window") or [] if isinstance(c, str)]
    if missing:
        out.append("not in the window: " + ", ".join(missing))
    return out


TOLERANCE_WORDS: dict[str, Callable[[Any], str]] = {
    "min_ci_low": lambda v: f"lower end of the 95% interval at least {_signed(v)}",
    "max_ece": lambda v: f"calibration error at most {fmt(v, 3)}",
    "max_calibration_in_the_large": lambda v: f"off by at most {pct(v, 0)}",
    "significance": lambda v: f"significance level {fmt(v, 2)}",
    "max_auc_drop": lambda v: f"ROC AUC may fall by at most {fmt(v, 3)}",
    "min_positives": lambda v: f"segments with at least {count(v)} conversions",
}


def _tolerance(tol: Any) -> list[str]:
    if not isinstance(tol, Mapping):
        return []
    return [words(tol[k]) for k, words in TOLERANCE_WORDS.items() if as_float(tol.get(k)) is not None]


def _aucs(checks: dict[str, Mapping], challenger_kind: str) -> tuple[float | None, float | None]:
    """(model AUC, rules AUC): from `beats_rules` (challenger model vs rules), else, when the
    challenger is the rules, from `auc_not_worse` (rules vs the champion model)."""
    f = checks.get("beats_rules", {}).get("figures") or {}
    model, rules = as_float(f.get("challenger")), as_float(f.get("rules"))
    if model is not None and rules is not None:
        return model, rules
    if challenger_kind == "rules":
        f = checks.get("auc_not_worse", {}).get("figures") or {}
        return as_float(f.get("champion")), as_float(f.get("challenger"))
    return None, None


def _pair(a: float, b: float) -> tuple[str, str]:
    """Two AUCs with 2 decimals, or 3 when 2 would make them look equal."""
    digits = 2 if round(a, 2) != round(b, 2) else 3
    return f"{a:.{digits}f}", f"{b:.{digits}f}"


def _auc_pair(model: float, rules: float) -> str:
    return "AUC {} vs {}".format(*_pair(model, rules))


def rules_sentence(gate: Mapping) -> str | None:
    """When either side is the points rules: in plain words whether the rules won, and why."""
    challenger = gate.get("challenger") if isinstance(gate.get("challenger"), Mapping) else {}
    champion = gate.get("champion") if isinstance(gate.get("champion"), Mapping) else {}
    ck, hk = str(challenger.get("kind", "")), str(champion.get("kind", ""))
    if "rules" not in (ck, hk):
        return None
    checks = {str(c.get("name")): c for c in gate.get("checks") or [] if isinstance(c, Mapping)}
    moved = bool(gate.get("promoted"))
    model, rules = _aucs(checks, ck)
    if ck == "rules":
        why = "the retrained model did not beat the rules, so the retrain offered the rules"
        if model is not None and rules is not None and hk and hk != "rules":
            r, m = _pair(rules, model)
            why += f"; on the latest window the rules score AUC {r} against the champion model’s {m}"
        then = ("the points rules are now the champion, so leads are graded by their points"
                if moved else "the gate did not promote them, so the champion stays as it is")
        return f"The points rules won: {why}. As a result {then}."
    beat = (checks.get("beats_rules") or {}).get("passed")
    if moved:
        gap = f" ({_auc_pair(model, rules)})" if model is not None and rules is not None else ""
        if beat is False:
            return ("The model replaced the points rules as champion although it did not beat "
                    f"them on the latest window{gap}.")
        return ("The model replaced the points rules as champion: it beat them on the latest "
                f"window{gap}.")
    if beat is False:
        if model is not None and rules is not None:
            why = (f"the model did not beat the rules on the latest window: {_auc_pair(model, rules)}"
                   + ("" if model <= rules else ", a gap small enough to be chance"))
        else:
            why = "the model did not clearly beat the rules on the latest window"
        return f"The points rules won: {why}, so they stay the champion."
    failed = [CHECK_SHORT.get(n, pretty(n)) for n, c in checks.items() if c.get("passed") is False]
    why = (f"the model beat them but failed the check(s) {', '.join(failed)}" if failed
           else "the model was not promoted")
    return f"The points rules stay the champion: {why}."


def _decision(gate: Mapping, failed: list[str], n_checks: int) -> tuple[str, str]:
    """(css class, one line) for the gate's decision."""
    d = str(gate.get("decision") or "")
    fails = (f" It failed {len(failed)} of {n_checks} checks: {', '.join(failed)}." if failed
             else "")
    if d == "promoted":
        return "ok", "Promoted: the challenger passed every check and is now the champion."
    if d == "first champion":
        return "ok", ("First champion: there was no champion yet, so the challenger became the "
                      "champion." + (fails or " It passed every check."))
    if d == "forced":
        forced = gate.get("forced") if isinstance(gate.get("forced"), Mapping) else {}
        who = f" by {forced['by']}" if forced.get("by") else ""
        when = f" at {str(forced['at'])[:16].replace('T', ' ')}" if forced.get("at") else ""
        reason = forced.get("reason") or "none recorded"
        return "warn", (f"Forced: the challenger was made champion{who}{when} without the gate’s "
                        f"approval. Reason given: “{reason}”.{fails}")
    if d.startswith("refused"):
        extra = " (this version was rolled back before)" if "rolled back" in d else ""
        return "warn", f"Refused{extra}: the champion stays.{fails}"
    if d.startswith("kept"):
        return "muted", ("Kept: this was an experiment run, which never changes the champion. "
                         + ("The challenger passed every check." if not failed else fails.strip()))
    if d == "unchanged":
        return "muted", "Unchanged: the challenger is already the champion."
    if d.startswith("passed"):
        return "muted", "Passed, not promoted: promotion is switched off (gate.promote: false)."
    return "muted", f"Decision: {d or 'not recorded'}."


def gate_section(gate: Mapping | None) -> dict:
    """The decision in one line, who was compared, one row per check, and the rules sentence."""
    if not gate:
        return {"available": False}
    rows = []
    for c in gate.get("checks") or []:
        if not isinstance(c, Mapping):
            continue
        name = str(c.get("name", ""))
        rows.append({"name": CHECK_NAMES.get(name, pretty(name)), "key": name,
                     "passed": c.get("passed") is True, "figures": _figures(c.get("figures")),
                     "tolerance": _tolerance(c.get("tolerance")),
                     "detail": str(c.get("detail") or "")})
    failed = [CHECK_SHORT.get(r["key"], pretty(r["key"])) for r in rows if not r["passed"]]
    css, line = _decision(gate, failed, len(rows))
    w = gate.get("window") if isinstance(gate.get("window"), Mapping) else {}
    window = None
    if w.get("as_of_first"):
        window = (f"Both were scored on the same leads: as-of dates {w['as_of_first']} to "
                  f"{w.get('as_of_last')} ({count(w.get('rows'))} lead-months, "
                  f"{count(w.get('positives'))} conversions).")
    return {"available": True, "decision_class": css, "decision": line,
            "champion": _identity(gate.get("champion")),
            "challenger": _identity(gate.get("challenger")), "window": window, "rows": rows,
            "n_failed": len(failed), "rules": rules_sentence(gate)}


# --------------------------------------------------------------------------- what changed


def _migration(migration: Any) -> dict | None:
    """The 16 x 16 table: counts, cells shaded by the share of the champion grade's row."""
    if not isinstance(migration, Mapping):
        return None
    grades = [str(g) for g in migration.get("grades") or []]
    counts = migration.get("counts") or []
    if (sorted(grades) != sorted(GRADES) or len(counts) != len(grades)
            or any(not isinstance(r, list) or len(r) != len(grades) for r in counts)):
        return None
    values = [[as_float(v) or 0.0 for v in row] for row in counts]
    rows, n, same, one = [], 0.0, 0.0, 0.0
    for i, g in enumerate(grades):
        total = sum(values[i])
        cells = []
        for j, h in enumerate(grades):
            v = values[i][j]
            share = v / total if total else None
            bg, fg = heat_color(share, 1.0) if v else ("#fafafa", "#9aa0a6")
            steps = abs(GRADES.index(g) // 4 - GRADES.index(h) // 4) + abs(
                GRADES.index(g) % 4 - GRADES.index(h) % 4)
            same += v if steps == 0 else 0
            one += v if steps == 1 else 0
            cells.append({"to": h, "count": count(v) if v else "·", "bg": bg, "fg": fg,
                          "diag": i == j, "tip": f"{count(v)} of the champion's {g} leads "
                          f"({pct(share)}) are {h} for the challenger" if v else ""})
        n += total
        rows.append({"from": g, "cells": cells})
    summary = None
    if n:
        summary = (f"{count(same)} of {count(n)} lead-months ({pct(same / n)}) keep their grade; "
                   f"{count(one)} ({pct(one / n)}) move one step (one letter or one digit) and "
                   f"{count(n - same - one)} ({pct((n - same - one) / n)}) move further.")
    return {"grades": grades, "rows": rows, "summary": summary}


def _grade_mix(mix: Any) -> list[dict]:
    if not isinstance(mix, Mapping):
        return []
    a, b = ({} if not isinstance(m := mix.get(side), Mapping) else m
            for side in ("champion", "challenger"))
    out = []
    for g in GRADES:
        va, vb = as_float(a.get(g)), as_float(b.get(g))
        change = None if va is None or vb is None else vb - va
        out.append({"grade": g, "champion": pct(va), "challenger": pct(vb),
                    "change": "n/a" if change is None else "0.0" if abs(change) < 5e-4
                    else f"{100 * change:+.1f}",
                    "dir": "" if not change else ("up" if change > 0 else "down")})
    return out if any(r["champion"] != "n/a" or r["challenger"] != "n/a" for r in out) else []


def _driver_changes(drivers: Any) -> list[dict]:
    rows = [d for d in drivers if isinstance(d, Mapping)] if isinstance(drivers, list) else []
    rows.sort(key=lambda d: -abs(as_float(d.get("change")) or 0.0))
    rows = rows[:CHANGED_DRIVERS]
    top = max([as_float(d.get(s)) or 0.0 for d in rows for s in ("champion", "challenger")] or [0])
    out = []
    for d in rows:
        a, b, c = (as_float(d.get(k)) for k in ("champion", "challenger", "change"))
        out.append({"label": str(d.get("label") or d.get("feature") or ""),
                    "champion": fmt(a, 3), "challenger": fmt(b, 3), "change": _signed(c),
                    "bar_a": bar(a or 0.0, top, "#9aa3ad", width=90),
                    "bar_b": bar(b or 0.0, top, COLORS["lightgbm"], width=90),
                    "dir": "" if not c else ("up" if c > 0 else "down")})
    return out


def _movers(movers: Any) -> list[dict]:
    out = []
    for m in (movers if isinstance(movers, list) else [])[:MAX_MOVERS]:
        if not isinstance(m, Mapping):
            continue
        reasons = [{"text": str(r.get("text", "")), "contribution": as_float(r.get("contribution"))}
                   for r in m.get("reasons") or [] if isinstance(r, Mapping)]
        out.append({"lead_id": str(m.get("lead_id", "")), "from": str(m.get("from", "")),
                    "to": str(m.get("to", "")),
                    "before": pct(m.get("champion_probability")),
                    "after": pct(m.get("challenger_probability")),
                    "up": [r for r in reasons if (r["contribution"] or 0) > 0],
                    "down": [r for r in reasons if (r["contribution"] or 0) < 0]})
    return out


def changes_section(changes: Mapping | None) -> dict:
    """Driver changes, grade mix before and after, the migration matrix and example movers;
    or the gate stage's note (`{"available": false, "reason": ...}`) when there was nothing
    to compare (the first champion, or the challenger is the champion)."""
    if not changes:
        return {"available": False}
    if changes.get("available") is False:  # the gate stage's note: nothing to compare
        return {"available": False, "note": str(changes.get("reason") or "nothing to compare")}
    return {"available": True, "champion": _identity(changes.get("champion")),
            "challenger": _identity(changes.get("challenger")),
            "drivers": _driver_changes(changes.get("drivers")),
            "mix": _grade_mix(changes.get("grade_mix")),
            "migration": _migration(changes.get("migration")),
            "movers": _movers(changes.get("movers"))}
