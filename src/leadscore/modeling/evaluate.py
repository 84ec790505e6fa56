"""Side-by-side out-of-time evaluation of the rules, the logistic regression and LightGBM.

`evaluate_models` takes the test slice's labels and each model's calibrated probabilities
and returns one metrics object per model (roc_auc, pr_auc, log_loss, brier, ece, precision
and recall at sales capacity, base rate, bootstrap 95% intervals) plus `auc_diff_ci`, the
bootstrap interval of LightGBM - rules ROC-AUC, and the reliability and gains tables for the
plots. Sales capacity K = reps x leads_per_rep leads per as_of date: each month the team
works its top K open leads, and precision/recall at K pool the months of the test slice.
The grade matrix of the rules (A1-D4 by their points bands) is
`leadscore.explain.grades.grade_matrix`, the same report as for the model.
`handoff_and_segments` adds the MQL handoff by capacity (leadscore.modeling.capacity) and the
quality by segment (leadscore.modeling.segments) for the model that ships.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.config import EvaluateConfig
from leadscore.errors import InputError
from leadscore.modeling.metrics import (
    CORE,
    bootstrap_ci,
    core_metrics,
    gains_table,
    reliability_curve,
    top_k,
)

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    metrics: dict  # {model: {...}, "auc_diff_ci": [lo, hi], ...}
    reliability: dict[str, pd.DataFrame]
    gains: dict[str, pd.DataFrame]


def evaluate_models(
    y,
    probs: dict[str, np.ndarray],
    *,
    period=None,
    groups=None,
    k: int = 1000,
    n_boot: int = 200,
    seed: int = 0,
    n_bins: int = 15,
    deciles: int = 10,
    diff: tuple[str, str] = ("lightgbm", "rules"),
) -> Evaluation:
    """Metrics, bootstrap intervals, reliability and gains for each model in `probs`."""
    y = np.asarray(y, dtype=int)
    if len(np.unique(y)) < 2:
        raise InputError(f"the test slice has a single class ({int(y.sum())} positives in {len(y)} rows)")
    use_diff = diff if all(m in probs for m in diff) else None
    ci = bootstrap_ci(y, probs, n_boot=n_boot, seed=seed, groups=groups, n_bins=n_bins, diff=use_diff)
    metrics: dict = {}
    reliability, gains = {}, {}
    for name, p in probs.items():
        m = core_metrics(y, p, n_bins)
        m.update({f"{key}_ci": ci[name][key] for key in CORE})
        tk = top_k(y, p, k, period)
        g = gains_table(y, p, deciles)
        m.update({"precision_at_k": tk["precision_at_k"], "recall_at_k": tk["recall_at_k"],
                  "lift_top_decile": float(g["lift"].iloc[0]),
                  "mean_probability": float(np.mean(p))})
        metrics[name] = m
        reliability[name] = reliability_curve(y, p, n_bins)
        gains[name] = g
    metrics["test"] = {"rows": int(len(y)), "positives": int(y.sum()), "base_rate": float(y.mean()),
                       "k_per_period": int(k), "periods": int(len(np.unique(period))) if period is not None else 1}
    if use_diff is not None:
        a, b = use_diff
        metrics["auc_diff"] = metrics[a]["roc_auc"] - metrics[b]["roc_auc"]
        metrics["auc_diff_ci"] = ci["auc_diff"]
    return Evaluation(metrics, reliability, gains)


def evaluate_test_slice(test: pd.DataFrame, rules, models: dict, *, cfg: EvaluateConfig, seed: int,
                        significance: float, direction_features: list[str]) -> Evaluation:
    """The evaluate stage on the out-of-time `test` slice: the rules (`rules`) and every model
    in `models` ({"logistic": ..., "lightgbm": ...}, fallback-free), lead-grouped bootstrap
    CIs, the rules' grade matrix (`rules_grades`) and, for LightGBM, the direction check of
    `direction_features` on a seeded sample (`lightgbm_behaviour`)."""
    from leadscore.explain.grades import grade_matrix
    from leadscore.modeling.behaviour import direction_check

    probs = {"rules": rules.predict_proba(test)[:, 1]}
    probs |= {name: model.predict_proba(test)[:, 1] for name, model in models.items()}
    result = evaluate_models(test["label"], probs, period=test["as_of"].to_numpy(),
                             groups=test["lead_id"].to_numpy(), k=cfg.reps * cfg.leads_per_rep,
                             n_boot=cfg.n_bootstrap, seed=seed, n_bins=cfg.ece_bins, deciles=cfg.deciles)
    out = result.metrics
    out["fallback_to_rules"] = len(probs) < 3  # a model folder held the fallback marker
    grades = rules.grade(test)
    out["rules_grades"] = grade_matrix(test["label"], grades["fit_grade"], grades["engagement_grade"],
                                       probs["rules"], alpha=significance)
    if "auc_diff_ci" in out:
        out["auc_diff_ci_lower"], out["auc_diff_ci_upper"] = out["auc_diff_ci"]
    if "lightgbm" in models:  # more pricing-page views must never lower a lead's score
        sample = test.sample(min(len(test), cfg.behaviour_rows), random_state=seed)
        out["lightgbm_behaviour"] = direction_check(models["lightgbm"], sample, direction_features)
    return result


def handoff_and_segments(split, rules, model, *, kind: str, catalog, cfg: EvaluateConfig,
                         fit_shares=None, engagement_shares=None, seed: int = 0,
                         feedback: pd.DataFrame | None = None, horizon_days: int = 90) -> dict:
    """evaluate.json's `capacity` (leadscore.modeling.capacity: the threshold and grade cut that
    fill reps x leads_per_rep per month, chosen on `split.calib`, reported on `split.test`
    against the rules' MQL threshold, and speed to lead) and `segments`
    (leadscore.modeling.segments: ROC-AUC and conversion by grade per source, country,
    industry and size band, for the model that ships (`kind`, `model`) and the rules).
    With `kind == "rules"` (or no model) the rules' own probability and point-band grades
    are handed over; otherwise `model`'s A1-D4 grades, cut on calib as in the explain stage.
    Also `feedback` (leadscore.modeling.feedback): sales' acceptance of the MQLs by those
    grades and by the rules' (`feedback` is the mql_feedback table, None when there is none)."""
    from leadscore.modeling.capacity import capacity_handoff, model_grades
    from leadscore.modeling.feedback import acceptance_by_grade
    from leadscore.modeling.segments import segment_quality, with_bant_answers

    calib, test = split.calib, split.test
    rule_grades = {name: rules.grade(df)["rule_grade"].to_numpy().astype(str)
                   for name, df in (("calib", calib), ("test", test))}
    rules_p = rules.predict_proba(test)[:, 1]
    if kind == "rules" or model is None:
        kind, p_calib, p_test = "rules", rules.predict_proba(calib)[:, 1], rules_p
        g_calib, g_test = rule_grades["calib"], rule_grades["test"]
    else:
        _, g_calib, g_test = model_grades(model, catalog, split, fit_shares=fit_shares,
                                          engagement_shares=engagement_shares)
        p_calib, p_test = model.predict_proba(calib)[:, 1], model.predict_proba(test)[:, 1]
    capacity = capacity_handoff(
        calib, test, p_calib=p_calib, p_test=p_test, grades_calib=g_calib, grades_test=g_test,
        rules_points_test=rules.decision_function(test), mql_threshold=float(rules.mql_threshold),
        rules_points_calib=rules.decision_function(calib),
        capacity=cfg.reps * cfg.leads_per_rep, working_days=cfg.working_days_per_month,
        sla_hours=cfg.sla_hours)
    probs, grades = {kind: p_test}, {kind: g_test}
    if kind != "rules":
        probs["rules"], grades["rules"] = rules_p, rule_grades["test"]
    segments = segment_quality(with_bant_answers(test), probs, grades,
                               min_positives=cfg.segment_min_positives,
                               n_boot=cfg.segment_n_bootstrap, seed=seed)
    accept = acceptance_by_grade(test, feedback, grades, horizon_days=horizon_days)
    return {"capacity": capacity | {"model": kind}, "segments": segments, "feedback": accept}


def metrics_table(metrics: dict, models: tuple[str, ...] = ("rules", "logistic", "lightgbm")) -> str:
    """A readable fixed-width table of the headline metrics."""
    cols = ["roc_auc", "pr_auc", "log_loss", "brier", "ece", "precision_at_k", "recall_at_k",
            "lift_top_decile"]
    present = [m for m in models if m in metrics]
    lines = [f"{'model':<10}" + "".join(f"{c:>16}" for c in cols)]
    for m in present:
        lines.append(f"{m:<10}" + "".join(f"{metrics[m][c]:>16.4f}" for c in cols))
        lo, hi = metrics[m]["roc_auc_ci"]
        lines.append(f"{'':<10}{f'[{lo:.3f}, {hi:.3f}]':>16}")
    if "auc_diff_ci" in metrics:
        lo, hi = metrics["auc_diff_ci"]
        lines.append(f"ROC-AUC lightgbm - rules: {metrics['auc_diff']:+.4f}  95% CI [{lo:+.4f}, {hi:+.4f}]")
    t = metrics.get("test", {})
    if t:
        lines.append(f"test slice: {t['rows']} rows, {t['positives']} positives "
                     f"(base rate {t['base_rate']:.2%}), K = {t['k_per_period']} per as_of date "
                     f"x {t['periods']} dates")
    return "\n".join(lines)


def gains_frame(gains: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One wide table for `dvc plots`: decile, share of leads, then per model cum_gain/lift."""
    first = next(iter(gains.values()))
    out = pd.DataFrame({"decile": first["decile"], "share_of_leads": first["cum_share_leads"]})
    for name, g in gains.items():
        out[f"cum_gain_{name}"] = g["cum_gain"].to_numpy()
        out[f"lift_{name}"] = g["lift"].to_numpy()
    return out


def load_trained(folders: dict[str, str | Path]) -> dict:
    """name -> the calibrated model saved in each folder; a fallback marker (train_model fell
    back to the rules) is skipped with a warning."""
    from leadscore.modeling.estimators import is_fallback, load_model

    models = {}
    for name, folder in folders.items():
        if is_fallback(folder):
            log.warning("%s: no model (fallback to the rule baseline); evaluating rules only", name)
        else:
            models[name] = load_model(folder)
    return models


def evaluate_release(split, rules, models: dict, *, params, catalog, train_summary: dict,
                     rules_summary: dict, feedback: pd.DataFrame | None = None) -> Evaluation:
    """The evaluate stage's whole evaluation: the test-slice comparison
    (`evaluate_test_slice`), the kind that ships chosen on validation (`champion`, from the
    stages' validation figures `train_summary` / `rules_summary`), and the capacity handoff
    and segment quality of that kind, and sales' feedback on the MQLs by grade (`feedback`:
    the mql_feedback table, None when the CRM has none; `handoff_and_segments`)."""
    from leadscore.lifecycle.choose import champion_entry, choose_kind, valid_aucs

    p = params
    result = evaluate_test_slice(
        split.test, rules, models, cfg=p.evaluate, seed=p.seed, significance=p.explain.significance,
        direction_features=[f"pricing_page_view_{d}d" for d in p.features.windows_days])
    out = result.metrics
    valid = valid_aucs(train_summary, rules_summary)
    out["champion"] = champion_entry(*choose_kind(valid), valid, out)
    kind = out["champion"]["name"]
    out |= handoff_and_segments(split, rules, models.get(kind), kind=kind, catalog=catalog,
                                cfg=p.evaluate, seed=p.seed, fit_shares=p.explain.fit_shares,
                                engagement_shares=p.explain.engagement_shares,
                                feedback=feedback, horizon_days=p.features.horizon_days)
    return result


def tracked_metrics(metrics: dict, models) -> dict:
    """The headline figures logged to MLflow: per model every metric but the intervals, and
    the LightGBM - rules AUC difference."""
    return ({m: {k: v for k, v in metrics[m].items() if not k.endswith("_ci")} for m in ("rules", *models)}
            | {"auc_diff": metrics.get("auc_diff", float("nan"))})
