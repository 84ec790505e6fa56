"""The promotion gate: may the challenger replace the champion?

Champion and challenger are scored on the same window (the most recent mature one: the test
slice, which neither trained on) and every check must pass:

1. ``auc_not_worse``: the lower end of the paired 95% bootstrap interval (resampling leads)
   of ROC-AUC(challenger) - ROC-AUC(champion) is at least ``-gate.auc_tolerance``;
2. ``calibration``: the challenger's ECE is at most ``gate.max_ece`` and its
   calibration-in-the-large, |mean predicted / observed rate - 1|, at most
   ``gate.max_calibration_in_the_large``;
3. ``grade_order``: no significant break in the order of the challenger's A1-D4 grades
   (`leadscore.explain.grades.grade_matrix`). The 24 neighbour pairs are tested together,
   so each at ``gate.significance / 24`` (Bonferroni): at 5% per pair a perfectly ordered
   model would show a "significant" break in most windows by chance alone;
4. ``segments``: in every segment value (``gate.segments``) with at least
   ``gate.segment_min_positives`` positives and as many negatives, ROC-AUC falls by at most
   ``gate.segment_auc_tolerance`` from the champion's;
5. ``beats_rules``: the lower end of the paired interval of ROC-AUC(challenger) -
   ROC-AUC(points rules) is above 0. A challenger that *is* the rules passes this check.

Without a champion (the first run) the comparisons 1 and 4 pass with a note. `evaluate_gate`
is pure: it scores and measures, `leadscore.lifecycle.promotion` decides and moves aliases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from leadscore.config import GateConfig
from leadscore.errors import InputError
from leadscore.explain.grades import grade_matrix
from leadscore.modeling.metrics import bootstrap_ci, ece

GRADE_PAIRS = 24  # neighbour pairs in the 4x4 grid: 12 along the letters, 12 along the digits
CHECKS: tuple[str, ...] = ("auc_not_worse", "calibration", "grade_order", "segments", "beats_rules")


@dataclass
class GateResult:
    """The checks (name, figures, tolerance, passed, detail) and the window they ran on."""

    checks: list[dict]
    window: dict
    scored: dict[str, pd.DataFrame] = field(default_factory=dict)  # per side: score columns

    @property
    def passed(self) -> bool:
        return all(c["passed"] for c in self.checks)

    def failed(self) -> list[str]:
        return [c["name"] for c in self.checks if not c["passed"]]


def _check(name: str, passed: bool, detail: str, figures: dict, tolerance: dict) -> dict:
    return {"name": name, "figures": figures, "tolerance": tolerance, "passed": bool(passed),
            "detail": detail}


def _auc_diff(y, a: np.ndarray, b: np.ndarray, groups, n_boot: int, seed: int) -> dict:
    ci = bootstrap_ci(y, {"a": a, "b": b}, n_boot=n_boot, seed=seed, groups=groups, diff=("a", "b"))
    auc_a, auc_b = float(roc_auc_score(y, a)), float(roc_auc_score(y, b))
    return {"a": auc_a, "b": auc_b, "diff": auc_a - auc_b, "ci_low": ci["auc_diff"][0],
            "ci_high": ci["auc_diff"][1]}


def _auc_not_worse(y, p, p_champion, groups, cfg: GateConfig, seed: int) -> dict:
    tol = {"min_ci_low": -cfg.auc_tolerance}
    if p_champion is None:
        return _check("auc_not_worse", True, "no champion yet: nothing to compare with", {}, tol)
    d = _auc_diff(y, p, p_champion, groups, cfg.n_bootstrap, seed)
    figures = {"challenger": d["a"], "champion": d["b"], "diff": d["diff"],
               "ci_low": d["ci_low"], "ci_high": d["ci_high"]}
    ok = d["ci_low"] >= -cfg.auc_tolerance
    detail = (f"ROC-AUC {d['a']:.3f} vs the champion's {d['b']:.3f} (difference {d['diff']:+.3f}, "
              f"95% interval {d['ci_low']:+.3f} to {d['ci_high']:+.3f}; may not fall below "
              f"{-cfg.auc_tolerance:+.3f})")
    return _check("auc_not_worse", ok, detail, figures, tol)


def _calibration(y, p, cfg: GateConfig) -> dict:
    observed, predicted = float(np.mean(y)), float(np.mean(p))
    citl = abs(predicted / observed - 1) if observed > 0 else float("inf")
    e = ece(y, p)
    ok = e <= cfg.max_ece and citl <= cfg.max_calibration_in_the_large
    detail = (f"expected calibration error {e:.4f} (at most {cfg.max_ece}); mean predicted "
              f"{predicted:.4f} against an observed rate of {observed:.4f} (off by {citl:.1%}, "
              f"at most {cfg.max_calibration_in_the_large:.0%})")
    return _check("calibration", ok, detail,
                  {"ece": e, "mean_predicted": predicted, "observed_rate": observed,
                   "calibration_in_the_large": citl},
                  {"max_ece": cfg.max_ece, "max_calibration_in_the_large": cfg.max_calibration_in_the_large})


def _grade_order(y, scored: pd.DataFrame, cfg: GateConfig) -> dict:
    alpha = cfg.significance / GRADE_PAIRS
    m = grade_matrix(y, scored["fit_grade"], scored["engagement_grade"], scored["probability"],
                     alpha=alpha)
    breaks = [dict(v) for v in m["violations"] if v["significant"]]
    detail = ("the grades keep their order: better grades convert more" if not breaks else
              "significant breaks in the grade order: " + ", ".join(
                  f"{v['worse']} converts more than {v['better']}" for v in breaks))
    return _check("grade_order", not breaks, detail,
                  {"violations": len(m["violations"]), "significant_violations": len(breaks),
                   "breaks": breaks}, {"significance": cfg.significance, "per_pair": alpha})


def _segments(window: pd.DataFrame, y, p, p_champion, cfg: GateConfig) -> dict:
    tol = {"max_auc_drop": cfg.segment_auc_tolerance, "min_positives": cfg.segment_min_positives}
    if p_champion is None:
        return _check("segments", True, "no champion yet: nothing to compare with", {}, tol)
    rows, missing = [], [c for c in cfg.segments if c not in window.columns]
    for col in cfg.segments:
        if col in missing:
            continue
        values = window[col].astype("string").fillna("(missing)").to_numpy()
        for value in pd.unique(values):
            mask = values == value
            pos = int(y[mask].sum())
            if pos < cfg.segment_min_positives or int(mask.sum()) - pos < cfg.segment_min_positives:
                continue
            a, b = float(roc_auc_score(y[mask], p[mask])), float(roc_auc_score(y[mask], p_champion[mask]))
            rows.append({"segment": col, "value": str(value), "positives": pos, "challenger": a,
                         "champion": b, "diff": a - b})
    worst = min(rows, key=lambda r: r["diff"]) if rows else None
    bad = [r for r in rows if r["diff"] < -cfg.segment_auc_tolerance]
    if not rows:
        detail = "no segment has enough positives to judge"
    elif bad:
        detail = "ROC-AUC fell beyond the tolerance in " + ", ".join(
            f"{r['segment']}={r['value']} ({r['champion']:.3f} -> {r['challenger']:.3f})" for r in bad)
    else:
        detail = (f"no segment fell by more than {cfg.segment_auc_tolerance} in ROC-AUC "
                  f"({len(rows)} judged; worst {worst['segment']}={worst['value']} {worst['diff']:+.3f})")
    return _check("segments", not bad, detail,
                  {"judged": len(rows), "failed": bad, "worst": worst, "not_in_window": missing}, tol)


def _beats_rules(y, p, p_rules, groups, kind: str, cfg: GateConfig, seed: int) -> dict:
    tol = {"min_ci_low": 0.0}
    if kind == "rules":
        return _check("beats_rules", True, "the challenger is the points rules themselves", {}, tol)
    d = _auc_diff(y, p, p_rules, groups, cfg.n_bootstrap, seed)
    ok = d["ci_low"] > 0
    detail = (f"ROC-AUC {d['a']:.3f} against the points rules' {d['b']:.3f} (difference "
              f"{d['diff']:+.3f}, 95% interval {d['ci_low']:+.3f} to {d['ci_high']:+.3f})"
              + ("" if ok else "; the model does not clearly beat the rules, so the rules stay"))
    return _check("beats_rules", ok, detail,
                  {"challenger": d["a"], "rules": d["b"], "diff": d["diff"], "ci_low": d["ci_low"],
                   "ci_high": d["ci_high"]}, tol)


def evaluate_gate(window: pd.DataFrame, challenger, champion, rules, cfg: GateConfig, *,
                  seed: int, label: str = "label", group: str = "lead_id") -> GateResult:
    """Score `window` with the challenger, the champion (a scorer or None) and the fitted
    points `rules`, and run the checks of the module docstring."""
    y = window[label].to_numpy(dtype=int)
    if len(np.unique(y)) < 2:
        raise InputError(f"gate window has a single class ({int(y.sum())} positives in {len(y)} rows)")
    groups = window[group].to_numpy() if group in window else None
    scored = {"challenger": challenger.explain(window, reasons=False)[0]}
    p = scored["challenger"]["probability"].to_numpy()
    p_champion = None
    if champion is not None:
        scored["champion"] = champion.explain(window, reasons=False)[0]
        p_champion = scored["champion"]["probability"].to_numpy()
    p_rules = rules.predict_proba(window)[:, 1]
    checks = [
        _auc_not_worse(y, p, p_champion, groups, cfg, seed),
        _calibration(y, p, cfg),
        _grade_order(y, scored["challenger"], cfg),
        _segments(window, y, p, p_champion, cfg),
        _beats_rules(y, p, p_rules, groups, getattr(challenger, "kind", "lightgbm"), cfg, seed),
    ]
    as_of = pd.to_datetime(window["as_of"]) if "as_of" in window else None
    info = {"rows": int(len(window)), "positives": int(y.sum()),
            "as_of_first": str(as_of.min().date()) if as_of is not None else None,
            "as_of_last": str(as_of.max().date()) if as_of is not None else None}
    return GateResult(checks, info, scored)


def format_gate(report: dict) -> str:
    """The gate report as lines a person can read (decision first, then one line per check)."""
    lines = [f"gate: {report['decision']} (all checks passed: {report['passed']})"]
    for c in report["checks"]:
        lines.append(f"  [{'pass' if c['passed'] else 'FAIL'}] {c['name']}: {c['detail']}")
    if report.get("forced"):
        lines.append(f"  forced by {report['forced']['by']}: {report['forced']['reason']}")
    return "\n".join(lines)
