"""Small report inputs of the real files' shapes, shared by the report tests.

`make_inputs()` builds every input in memory; `write_inputs(folder)` writes them to the
pipeline's layout under `folder` (`leadscore.report.build.ReportPaths.in_project`). Numbers are chosen so a test can find them in
the HTML (e.g. grade B2 converts at 12.3% for the model). `PII_STRINGS` are planted in keys
the report must not read.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.report.build import GRADES, ReportInputs, ReportPaths

PII_STRINGS: tuple[str, ...] = ("ann.lee@acme-corp.com", "Ann Lee", "+1 555 0100")


def visible_text(html: str) -> str:
    """The page's visible text (no style or SVG titles), whitespace collapsed."""
    class P(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.skip = 0

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("style", "title")

        def handle_endtag(self, tag):
            self.skip -= tag in ("style", "title")

        def handle_data(self, data):
            if not self.skip:
                self.parts.append(data)

    p = P()
    p.feed(html)
    return re.sub(r"\s+", " ", " ".join(p.parts))

# model conversion rate per grade: falls along both axes except C2 > B2 (one planted break)
_RATES = {"A1": 0.41, "A2": 0.30, "A3": 0.22, "A4": 0.15, "B1": 0.25, "B2": 0.123, "B3": 0.09,
          "B4": 0.06, "C1": 0.14, "C2": 0.131, "C3": 0.05, "C4": 0.03, "D1": 0.05, "D2": 0.03,
          "D3": 0.02, "D4": 0.011}


def _block(rates: dict[str, float], violations: list[dict]) -> dict:
    """A grade matrix in the schema of `leadscore.explain.grades.grade_matrix`."""
    cells = []
    for i, g in enumerate(GRADES):
        n = 100 + 37 * i
        r = rates[g]
        cells.append({"grade": g, "fit": g[0], "engagement": g[1], "count": n,
                      "conversions": round(r * n), "rate": r,
                      "ci": [max(r - 0.03, 0.0), min(r + 0.03, 1.0)],
                      "mean_predicted": round(r * 0.97, 4)})
    return {"cells": cells, "violations": violations, "monotonic": not violations}


def grades() -> dict:
    model_break = [{"axis": "letter", "within": "2", "better": "B2", "worse": "C2",
                    "rate_better": 0.123, "rate_worse": 0.131, "significant": False}]
    rule_rates = {g: r * 0.8 for g, r in _RATES.items()} | {"B2": 0.09, "C2": 0.07}
    return {"lightgbm": _block(_RATES, model_break), "rules": _block(rule_rates, [])}


def drivers() -> dict:
    return {"base_value": -3.1, "model": "lightgbm", "drivers": [
        {"field": "pricing_page_view", "label": "Pricing-page views", "group": "engagement",
         "mean_abs_contribution": 0.42, "direction": "+",
         "direction_text": "More pricing-page views raise the score.", "top_up": [],
         "top_down": [], "features": ["pricing_page_view_7d", "pricing_page_view_30d"]},
        {"field": "seniority", "label": "Seniority", "group": "fit",
         "mean_abs_contribution": 0.31, "direction": "mixed",
         "direction_text": "Seniority matters: VP, C-level raise the score; Student lowers it.",
         "top_up": ["VP", "C-level"], "top_down": ["Student"], "features": ["seniority"]},
        {"field": "free_mail", "label": "Uses a free e-mail address", "group": "fit",
         "mean_abs_contribution": 0.12, "direction": "-",
         "direction_text": "\"Uses a free e-mail address\" lowers the score.", "top_up": [],
         "top_down": [], "features": ["free_mail"]},
        {"field": "lead_age_days", "label": "Days since the lead was created", "group": "fit",
         "mean_abs_contribution": 0.08, "direction": "-",
         "direction_text": "The more days since the lead was created, the lower the score.",
         "top_up": [], "top_down": [], "features": ["lead_age_days"]},
    ]}


def dependence() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    v = rng.integers(0, 12, 300).astype(float)
    return {
        "pricing_page_view": pd.DataFrame({"value": v, "contribution": 0.1 * v - 0.3}),
        "seniority": pd.DataFrame({"value": ["vp", "c_level", "student", "manager"] * 25,
                                   "contribution": [0.5, 0.6, -0.8, 0.1] * 25}),
        "free_mail": pd.DataFrame({"value": [0.0, 1.0] * 50, "contribution": [0.05, -0.4] * 50}),
    }


def examples() -> dict:
    def lead(i: int, grade: str, p: float) -> dict:
        return {"lead_id": f"L{i:08d}", "as_of": "2025-09-01", "probability": p, "grade": grade,
                "fit_grade": grade[0], "engagement_grade": grade[1],
                "email": PII_STRINGS[0], "name": PII_STRINGS[1], "phone": PII_STRINGS[2],
                "reasons": [
                    {"code": "pricing_page_view+", "contribution": 0.61,
                     "text": "Viewed the pricing page 4 times in the last 30 days"},
                    {"code": "seniority+", "contribution": 0.35, "text": "Seniority: VP"},
                    {"code": "free_mail-", "contribution": -0.22,
                     "text": "Uses a free e-mail address"}]}
    return {"A1": [lead(101, "A1", 0.41), lead(102, "A1", 0.38)], "D4": [lead(103, "D4", 0.01)]}


def evaluate() -> dict:
    def m(auc: float, prec: float) -> dict:
        return {"roc_auc": auc, "roc_auc_ci": [auc - 0.01, auc + 0.01], "pr_auc": auc / 3,
                "pr_auc_ci": [auc / 3 - 0.02, auc / 3 + 0.02], "brier": 0.035, "ece": 0.0026,
                "log_loss": 0.14, "lift_top_decile": 4.3 if auc > 0.75 else 2.6,
                "precision_at_k": prec, "recall_at_k": prec * 1.2}
    return {"lightgbm": m(0.8013, 0.254), "logistic": m(0.8038, 0.255), "rules": m(0.6949, 0.128),
            "auc_diff": 0.1064, "auc_diff_ci": [0.0963, 0.1194], "fallback_to_rules": False,
            "test": {"base_rate": 0.0412, "k_per_period": 1000, "periods": 3, "positives": 2544,
                     "rows": 61763},
            "rules_grades": _block({g: 0.05 for g in GRADES} | {"D1": 0.08}, [
                {"axis": "letter", "within": "1", "better": "C1", "worse": "D1",
                 "rate_better": 0.05, "rate_worse": 0.08, "significant": True}])}


def gains() -> pd.DataFrame:
    share = np.round(np.arange(1, 11) / 10, 6)
    return pd.DataFrame({"decile": range(1, 11), "share_of_leads": share,
                         "cum_gain_rules": [0.26, 0.43, 0.56, 0.66, 0.75, 0.83, 0.9, 0.95, 0.99, 1],
                         "cum_gain_logistic": [0.43, 0.6, 0.72, 0.8, 0.88, 0.93, 0.97, 0.99, 1, 1],
                         "cum_gain_lightgbm": [0.43, 0.61, 0.72, 0.8, 0.87, 0.93, 0.96, 0.99, 1, 1]})


def reliability() -> dict[str, pd.DataFrame]:
    p = np.array([0.002, 0.01, 0.03, 0.06, 0.12, 0.22])
    return {k: pd.DataFrame({"bin": range(6), "mean_predicted": p, "observed": p * f,
                             "count": [4000, 3000, 2000, 1000, 500, 200]})
            for k, f in (("lightgbm", 1.0), ("logistic", 1.02), ("rules", 0.9))}


def metadata() -> dict:
    return {"kind": "lightgbm", "git_commit": "0123456789abcdef0123456789abcdef01234567",
            "params_hash": "2073ecf4d77d48f7", "target_stage": "opportunity", "horizon_days": 90,
            "calibration": {"chosen": "sigmoid"}, "features": ["a", "b", "c"],
            "data_window": {"train_as_of_first": "2024-04-01", "train_as_of_last": "2024-09-01",
                            "valid_as_of_first": "2025-01-01", "valid_as_of_last": "2025-02-01",
                            "calib_as_of_first": "2025-03-01", "calib_as_of_last": "2025-04-01",
                            "test_as_of_first": "2025-08-01", "test_as_of_last": "2025-10-01"}}


def rules() -> dict:
    return {"kind": "points_rules", "params": {
        "window_days": 90, "max_points_per_activity": 30, "mql_threshold": 50,
        "fit_points": {"seniority": {"c_level": 20, "vp": 20, "student": -10}},
        "fit_negative_points": {"free_mail": -10},
        "engagement_points": {"pricing_page_view": 10, "demo_request": 30},
        "content_points": {"whitepaper": 3},
        "engagement_negative_points": {"unsubscribed": -30},
        "fit_bands": {"A": 40, "B": 25, "C": 10}, "engagement_bands": {"1": 40, "2": 20, "3": 5}}}


def catalog() -> list[dict]:
    return [
        {"name": "seniority", "group": "fit", "kind": "categorical",
         "label": "Seniority (from job title)", "unit": "level"},
        {"name": "free_mail", "group": "fit", "kind": "numeric",
         "label": "Uses a free e-mail address", "unit": "yes/no"},
        {"name": "lead_age_days", "group": "fit", "kind": "numeric",
         "label": "Days since the lead was created", "unit": "days"},
        {"name": "pricing_page_view_7d", "group": "engagement", "kind": "numeric",
         "label": "Pricing-page views, last 7 days", "unit": "count"},
        {"name": "pricing_page_view_30d", "group": "engagement", "kind": "numeric",
         "label": "Pricing-page views, last 30 days", "unit": "count"},
        {"name": "demo_request_30d", "group": "engagement", "kind": "numeric",
         "label": "Demo requests, last 30 days", "unit": "count"},
    ]


def importance() -> pd.DataFrame:
    return pd.DataFrame({"feature": ["seniority", "pricing_page_view_7d", "pricing_page_view_30d",
                                     "lead_age_days", "demo_request_30d"],
                         "gain": [50.0, 20.0, 10.0, 15.0, 5.0], "split": [10, 5, 5, 4, 1]})


def validate_metrics() -> dict:
    return {"leads": {"rows_in": 1234, "rows_out": 1200, "rows_quarantined": 34,
                      "quarantined_share": 34 / 1234},
            "events": {"rows_in": 56789, "rows_out": 56789, "rows_quarantined": 0,
                       "quarantined_share": 0.0},
            "outcomes": {"rows_in": 999, "rows_out": 999, "rows_quarantined": 0,
                         "quarantined_share": 0.0},
            "expectations": {"evaluated": 65, "failed": 1, "passed": 64}}


def validation() -> dict:
    return {"quarantine_budget": 0.02, "reference_time": "2026-01-01T00:00:00",
            "tables": {"leads": {"expectations": [
                {"column": "country", "expectation": "expect_column_values_to_not_be_null",
                 "success": False, "unexpected_count": 34, "observed_value": PII_STRINGS[0]}]}}}


def features() -> dict:
    return {"rows": 321873, "leads": 41938, "as_of_first": "2024-04-01",
            "as_of_last": "2025-10-01", "features": 63, "base_rate": 0.0489}


_FOLD_AUC = {  # per fold: rules, logistic, lightgbm, logistic_no_refit, lightgbm_no_refit
    "2025-03-01": (0.691, 0.781, 0.792, 0.776, 0.785),
    "2025-04-01": (0.702, 0.779, 0.801, 0.775, 0.796),
    "2025-05-01": (0.688, 0.785, 0.797, 0.781, 0.790),
    "2025-06-01": (0.695, 0.772, 0.806, 0.774, 0.799),
}


def backtest() -> dict:
    """metrics/backtest.json (docs/lifecycle.md): four folds; refit wins for LightGBM only."""
    folds = []
    for i, (cutoff, aucs) in enumerate(_FOLD_AUC.items(), 1):
        models = {k: {"roc_auc": a, "pr_auc": a / 4, "ece": 0.004} for k, a in zip(
            ("rules", "logistic", "lightgbm", "logistic_no_refit", "lightgbm_no_refit"), aucs,
            strict=True)}
        folds.append({"fold": i, "cutoff": cutoff, "test_as_of_first": cutoff,
                      "test_as_of_last": cutoff, "train_rows": 100_000 + i, "test_rows": 20_000,
                      "test_positives": 900 + i, "models": models,
                      "settings": {"lightgbm": {"window_months": None, "half_life_days": 180}},
                      "operator": PII_STRINGS[1]})
    summary = {"rules": {"roc_auc": {"mean": 0.694, "ci_low": 0.684, "ci_high": 0.704}},
               "logistic": {"roc_auc": {"mean": 0.779, "ci_low": 0.771, "ci_high": 0.787}},
               "lightgbm": {"roc_auc": {"mean": 0.799, "ci_low": 0.7912, "ci_high": 0.8068},
                            "pr_auc": {"mean": 0.2, "ci_low": 0.19, "ci_high": 0.21}},
               "lightgbm_no_refit": {"roc_auc": {"mean": 0.7925, "ci_low": 0.785, "ci_high": 0.80}}}
    refit = {"lightgbm": {"mean_auc_gain": 0.0065, "folds_won": 4, "wins": True},
             "logistic": {"mean_auc_gain": -0.0002, "folds_won": 1, "wins": False}}
    return {"folds": folds, "summary": summary, "refit": refit, "seconds": 12.5}


def gate() -> dict:
    """reports/gate.json: the LightGBM challenger refused against a points-rules champion
    (it does not beat the rules: AUC 0.69 vs 0.70) and fails calibration too."""
    return {
        "passed": False, "promoted": False, "decision": "refused",
        "window": {"as_of_first": "2025-08-01", "as_of_last": "2025-10-01", "rows": 61763,
                   "positives": 2544},
        "champion": {"registry_version": "3", "model_version": "ab12cd34ef56ab12cd34",
                     "kind": "rules"},
        "challenger": {"registry_version": "4", "model_version": "cd34ef56ab12cd34ef56",
                       "kind": "lightgbm", "email": PII_STRINGS[0]},
        "checks": [
            {"name": "auc_not_worse", "figures": {"challenger": 0.6912, "champion": 0.7013,
                                                  "diff": -0.0101, "ci_low": -0.0093,
                                                  "ci_high": 0.004},
             "tolerance": {"min_ci_low": -0.01}, "passed": True,
             "detail": "ROC-AUC 0.691 vs the champion's 0.701"},
            {"name": "calibration", "figures": {"ece": 0.0312, "mean_predicted": 0.048,
                                                "observed_rate": 0.0412,
                                                "calibration_in_the_large": 0.165},
             "tolerance": {"max_ece": 0.02, "max_calibration_in_the_large": 0.15},
             "passed": False, "detail": "expected calibration error 0.0312 (at most 0.02)"},
            {"name": "grade_order", "figures": {"violations": 2, "significant_violations": 0,
                                                "breaks": []},
             "tolerance": {"significance": 0.05}, "passed": True,
             "detail": "the grades keep their order: better grades convert more"},
            {"name": "segments", "figures": {
                "judged": 7, "failed": [], "not_in_window": [],
                "worst": {"segment": "industry", "value": "retail", "positives": 120,
                          "challenger": 0.66, "champion": 0.68, "diff": -0.02}},
             "tolerance": {"max_auc_drop": 0.03, "min_positives": 100}, "passed": True,
             "detail": "no segment fell by more than 0.03 in ROC-AUC"},
            {"name": "beats_rules", "figures": {"challenger": 0.6912, "rules": 0.7013,
                                                "diff": -0.0101, "ci_low": -0.0093,
                                                "ci_high": 0.004},
             "tolerance": {"min_ci_low": 0.0}, "passed": False,
             "detail": "the model does not clearly beat the rules, so the rules stay"},
        ],
        "forced": None,
    }


def changes() -> dict:
    """reports/changes.json: LightGBM (registry 3) against LightGBM (registry 4)."""
    grades = list(GRADES)
    counts = [[0] * 16 for _ in grades]
    for i in range(16):
        counts[i][i] = 100 + i
    counts[grades.index("B2")][grades.index("A1")] = 37  # the planted move
    counts[grades.index("A1")][grades.index("C3")] = 5
    mix_a = {g: 1 / 16 for g in grades}
    mix_b = mix_a | {"A1": 0.0825, "B2": 0.0425}
    reasons = [{"code": "pricing_page_view_30d+", "text": "Viewed the pricing page 6 times in the "
                "last 30 days", "contribution": 0.83, "email": PII_STRINGS[0]},
               {"code": "free_mail-", "text": "Uses a free e-mail address", "contribution": -0.31}]
    return {
        "champion": {"model_version": "ab12cd34ef56ab12", "kind": "lightgbm", "registry_version": "3"},
        "challenger": {"model_version": "cd34ef56ab12cd34", "kind": "lightgbm",
                       "registry_version": "4"},
        "rows": sum(map(sum, counts)),
        "drivers": [
            {"feature": "pricing_page_view_30d", "label": "Pricing-page views (30 days)",
             "champion": 0.12, "challenger": 0.19, "change": 0.07},
            {"feature": "seniority", "label": "Seniority", "champion": 0.31, "challenger": 0.26,
             "change": -0.05},
            {"feature": "webinar_attended_90d", "label": "Webinars attended (90 days)",
             "champion": 0.0, "challenger": 0.02, "change": 0.02},
        ],
        "grade_mix": {"champion": mix_a, "challenger": mix_b},
        "migration": {"grades": grades, "counts": counts},
        "movers": [{"lead_id": "L00000777", "from": "B2", "to": "A1", "steps": 2,
                    "champion_probability": 0.081, "challenger_probability": 0.245,
                    "reasons": reasons, "name": PII_STRINGS[1], "phone": PII_STRINGS[2]}],
    }


def make_inputs(*, new: bool = True, lifecycle: bool = True) -> ReportInputs:
    """All inputs; with `new=False`, without the explain stage's (grades, drivers, examples,
    dependence); with `lifecycle=False`, without backtest, gate and what changed (the
    sections still shown, as not available)."""
    return ReportInputs(
        backtest=backtest() if lifecycle else None, gate=gate() if lifecycle else None,
        changes=changes() if lifecycle else None,
        evaluate=evaluate(), gains=gains(), reliability=reliability(), metadata=metadata(),
        importance=importance(), rules=rules(), validation=validation(),
        validate_metrics=validate_metrics(), catalog=catalog(), features=features(),
        grades=grades() if new else None, drivers=drivers() if new else None,
        dependence=dependence() if new else {}, examples=examples() if new else None)


def write_inputs(folder: Path, *, new: bool = True, lifecycle: bool = True) -> ReportPaths:
    """Write the fixture inputs under `folder`; return the paths to read them from."""
    inp = make_inputs(new=new, lifecycle=lifecycle)
    paths = ReportPaths.in_project(folder)

    def js(obj: object, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj))

    for obj, path in ((inp.evaluate, paths.evaluate), (inp.metadata, paths.model / "metadata.json"),
                      (inp.rules, paths.rules), (inp.validation, paths.validation),
                      (inp.validate_metrics, paths.validate_metrics), (inp.catalog, paths.catalog),
                      (inp.features, paths.features), (inp.grades, paths.grades),
                      (inp.drivers, paths.drivers), (inp.examples, paths.examples),
                      (inp.backtest, paths.backtest), (inp.gate, paths.gate),
                      (inp.changes, paths.changes)):
        if obj is not None:
            js(obj, path)
    paths.plots.mkdir(parents=True, exist_ok=True)
    inp.gains.to_csv(paths.gains, index=False)
    for k, df in inp.reliability.items():
        df.to_csv(paths.plots / f"reliability_{k}.csv", index=False)
    for k, df in inp.dependence.items():
        df.to_csv(paths.plots / f"dependence_{k}.csv", index=False)
    inp.importance.to_csv(paths.model / "importance.csv", index=False)
    return paths
