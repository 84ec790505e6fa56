"""One command for a flat export: `leadscore run --mapping my_mapping.yaml --out DIR`.

`run_flat` validates the mapping and the file, screens for leakage, trains the rule
baseline and the models, evaluates, explains, scores and reports, with the same library
functions as the DVC stages (`PointsRuleClassifier` via `FlatRuleClassifier`, `tune_lightgbm`,
`LightGBMClassifier`, `LogisticClassifier`, `choose_calibrator`, `evaluate_models`,
`Explainer`, `fit_grade_cuts`, `grade_matrix`, `global_drivers`, `LeadScorer`,
`build_report`). It writes, under DIR::

    metrics/evaluate.json   same keys as the main pipeline (rules / logistic / lightgbm:
                            roc_auc, pr_auc, log_loss, brier, ece, ... ; auc_diff_ci; test)
                            plus `split` (out_of_time true/false and what the test slice is)
    metrics/screen.json     the leakage screen (also written when it refuses)
    metrics/train.json      cleaning log, slices, tuning, calibration
    metrics/grades.json     A1-D4 grade matrices on the test slice (model and rules)
    metrics/cv.json         with --cv K: random stratified K-fold ROC-AUC
    models/                 lightgbm/, logistic/, rules.json, grading.json, feature_catalog.json
    plots/                  reliability_<model>.csv, gains.csv, dependence_<field>.csv
    reports/                drivers.json, examples.json
    scores.parquet          every row of the file: the score contract + `slice`
    report.html             the marketing report

Splits (leadscore.flat.table.flat_split): with a created date or ``time_order: rows`` the slices
are train | valid | calib | test, latest last: tuning and early stopping on valid, the
calibration and the grade cut points on calib (the latest rows before the test), the
out-of-time test on the latest rows. Without an order, a stratified random split, and
`split.out_of_time` is false (the report title says so too).

The calibration is fitted on the latest pre-test slice because the base rate may drift; it
is not adjusted to the test slice (which a deployed model could not see). A drifting base
rate therefore shows up as calibration error on the test slice (`ece`, `mean_probability`
against `test.base_rate`), and it is reported, not hidden.

`cross_validate_flat` is the random stratified K-fold comparison (`--cv 5`): LightGBM with
the tuned parameters and the tuned number of rounds, the logistic regression and the rules'
points, refitted per fold, ROC-AUC per fold. It answers "what would a random split have
said", the figure most published results on such data use.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from leadscore.config import ExplainConfig, ReportConfig
from leadscore.explain.contributions import Explainer, group_sums
from leadscore.explain.drivers import dependence_frame, global_drivers
from leadscore.explain.grades import fit_grade_cuts, format_matrix, grade_matrix, save_grading
from leadscore.features.catalog import FeatureCatalog, save_catalog
from leadscore.flat.mapping import Mapping
from leadscore.flat.table import FlatRuleClassifier, FlatTable, flat_split, load_flat
from leadscore.io import atomic_path, write_json, write_parquet
from leadscore.modeling.baseline import save_rules
from leadscore.modeling.calibration import choose_calibrator
from leadscore.modeling.estimators import (
    CalibratedModel,
    LightGBMClassifier,
    LogisticClassifier,
    check_positives,
    save_model,
)
from leadscore.modeling.evaluate import evaluate_models, gains_frame, metrics_table
from leadscore.modeling.metrics import core_metrics
from leadscore.modeling.screen import ScreenReport, check_screen, screen_columns
from leadscore.modeling.splits import Split, data_window
from leadscore.modeling.tuning import fit_tuned_lightgbm
from leadscore.tracking import git_commit

log = logging.getLogger(__name__)

MODELS = ("rules", "logistic", "lightgbm")


@dataclass
class FlatModels:
    """The three fitted models of a flat run."""

    rules: FlatRuleClassifier
    lightgbm: CalibratedModel
    logistic: CalibratedModel
    features: list[str]
    categorical: list[str]
    best_params: dict
    best_iteration: int
    summary: dict = field(default_factory=dict)


@dataclass
class FlatRunResult:
    out: Path
    metrics: dict  # evaluate.json
    screen: ScreenReport
    cv: dict | None
    seconds: float
    missing: list[str]  # outputs not produced, with the reason


# ---- building blocks ---------------------------------------------------------------------
def split_info(table: FlatTable, mapping: Mapping, split: Split) -> dict:
    """What the test slice is, in words, for the metrics and the report."""
    if mapping.created_at:
        kind, note = "time", f"out-of-time test: the latest {mapping.split.test:.0%} of rows by {mapping.created_at}"
    elif mapping.time_order:
        kind, note = "rows", f"out-of-time test: the last {mapping.split.test:.0%} of rows (the file is in time order)"
    else:
        kind, note = "random", ("no out-of-time test: the file has no date and is not marked as "
                                "time-ordered, so the test slice is a stratified random "
                                f"{mapping.split.test:.0%} of rows")
    return {"kind": kind, "out_of_time": kind != "random", "note": note,
            "slices": split.windows}


def screen_flat(table: FlatTable, split: Split, mapping: Mapping,
                extra_allow: tuple[str, ...] = ()) -> ScreenReport:
    """The leakage screen on the non-test rows (train + valid + calib)."""
    rows = pd.concat([split.train, split.valid, split.calib], ignore_index=True)
    cfg = mapping.screen
    return screen_columns(rows, features=table.features, categorical=table.catalog.categorical,
                          allow=tuple(mapping.allow) + tuple(extra_allow),
                          source_names=table.source_names, max_auc=cfg.max_auc,
                          max_missing_auc=cfg.max_missing_auc, dominant_auc=cfg.dominant_auc,
                          dominant_gap=cfg.dominant_gap, extra_words=cfg.extra_names,
                          max_rows=cfg.max_rows, seed=mapping.seed)


def kept_catalog(catalog: FeatureCatalog, drop: list[str]) -> FeatureCatalog:
    return FeatureCatalog(tuple(f for f in catalog.features if f.name not in set(drop)))


def train_flat(table: FlatTable, split: Split, mapping: Mapping, catalog: FeatureCatalog) -> FlatModels:
    """Rules (calibrated on calib), tuned LightGBM and the logistic check, both calibrated
    on the calib slice."""
    m = mapping.model
    tr, va, ca = split.train, split.valid, split.calib
    check_positives(int(tr["label"].sum()), m.min_positives)
    names, cats = catalog.names, catalog.categorical
    rules = FlatRuleClassifier.from_mapping(mapping, table.source_names).fit(ca, ca["label"])
    tuning, lgbm = fit_tuned_lightgbm(
        tr, va, feature_names=names, categorical_features=cats, seed=mapping.seed,
        num_threads=m.num_threads, max_boost_rounds=m.max_boost_rounds,
        early_stopping_rounds=m.early_stopping_rounds, additive=m.additive,
        n_trials=m.n_trials, timeout_s=m.timeout_s, learning_rate=m.learning_rate)
    logistic = LogisticClassifier(feature_names=names, categorical_features=cats,
                                  C=m.logistic_c).fit(tr, tr["label"])
    window = data_window(split)
    common = {"data_window": window, "git_commit": git_commit(), "features": names,
              "categorical": cats, "target": mapping.target, "positive": str(mapping.positive),
              "source_file": mapping.path.name,
              "trained_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}
    fitted, summary = {}, {"tuning": tuning.summary()}
    for key, est in (("lightgbm", lgbm), ("logistic", logistic)):
        cal, cal_report = choose_calibrator(est.decision_function(ca), ca["label"],
                                            methods=m.calibration_methods,
                                            n_folds=m.calibration_folds, seed=mapping.seed)
        fitted[key] = CalibratedModel(est, cal, {**common, "kind": key, "calibration": cal_report})
        summary[key] = {"valid": core_metrics(va["label"], fitted[key].predict_proba(va)[:, 1]),
                        "calibration": cal_report}
    fitted["lightgbm"].metadata.update({"best_iteration": lgbm.best_iteration_,
                                        "best_params": tuning.best_params})
    return FlatModels(rules, fitted["lightgbm"], fitted["logistic"], names, cats,
                      tuning.best_params, lgbm.best_iteration_, summary)


def cross_validate_flat(table: FlatTable, mapping: Mapping, catalog: FeatureCatalog, *,
                        folds: int = 5, params: dict | None = None, rounds: int = 300) -> dict:
    """Random stratified K-fold ROC-AUC of LightGBM (given params, fixed `rounds`), the
    logistic regression and the rules' points (no early stopping: no fold sees its test)."""
    df = table.frame
    y = df["label"].to_numpy()
    names, cats = catalog.names, catalog.categorical
    m = mapping.model
    rules = FlatRuleClassifier.from_mapping(mapping, table.source_names)
    aucs: dict[str, list[float]] = {k: [] for k in MODELS}
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=mapping.seed)
    for fit_idx, test_idx in skf.split(y, y):
        a, b = df.iloc[fit_idx], df.iloc[test_idx]
        lgbm = LightGBMClassifier(feature_names=names, categorical_features=cats,
                                  params=params or {"learning_rate": m.learning_rate},
                                  max_boost_rounds=rounds, seed=mapping.seed,
                                  num_threads=m.num_threads, additive=m.additive)
        lgbm.fit(a, a["label"])
        logistic = LogisticClassifier(feature_names=names, categorical_features=cats,
                                      C=m.logistic_c).fit(a, a["label"])
        yb = b["label"].to_numpy()
        aucs["lightgbm"].append(float(roc_auc_score(yb, lgbm.decision_function(b))))
        aucs["logistic"].append(float(roc_auc_score(yb, logistic.decision_function(b))))
        aucs["rules"].append(float(roc_auc_score(yb, rules.decision_function(b))))
    return {"folds": folds, "split": "random stratified", "features": names, "rounds": rounds,
            **{k: {"roc_auc_mean": float(np.mean(v)), "roc_auc_std": float(np.std(v)),
                   "roc_auc_folds": v} for k, v in aucs.items()}}


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


def _examples(test: pd.DataFrame, scored: pd.DataFrame, per_grade: int, seed: int) -> dict:
    """Up to `per_grade` test leads per grade with their reasons (seeded)."""
    rng = np.random.default_rng(seed)
    out: dict = {}
    for grade in sorted(scored["grade"].unique()):
        pos = np.flatnonzero(scored["grade"].to_numpy() == grade)
        pick = np.sort(rng.choice(pos, size=min(per_grade, len(pos)), replace=False))
        out[str(grade)] = [
            {"lead_id": str(test["lead_id"].iloc[i]), "as_of": None,
             "probability": float(scored["probability"].iloc[i]), "grade": str(grade),
             "fit_grade": str(scored["fit_grade"].iloc[i]),
             "engagement_grade": str(scored["engagement_grade"].iloc[i]),
             "reasons": list(scored["reasons"].iloc[i])} for i in pick]
    return out


# ---- the one command ---------------------------------------------------------------------
def run_flat(mapping: Mapping, out: str | Path, *, nrows: int | None = None, cv_folds: int = 0,
             extra_allow: tuple[str, ...] = ()) -> FlatRunResult:
    """Validate, screen, train, evaluate, explain, score and report one flat export.

    Raises `MappingError` (wrong mapping or file), `ScreenError` (leakage screen refused;
    metrics/screen.json is written first), `TooFewPositivesError`.
    """
    t0 = time.perf_counter()
    out = Path(out)
    table = load_flat(mapping, nrows=nrows)
    log.info("prepared %d rows (%d positives, base rate %.1f%%), %d feature columns",
             len(table.frame), table.log["positives"], 100 * table.frame["label"].mean(),
             len(table.features))
    split = flat_split(table, mapping)
    info = split_info(table, mapping, split)
    log.info("%s", info["note"])
    for name, w in split.windows.items():
        log.info("%-5s %s..%s: %d rows, base rate %.1f%%", name, w["as_of_first"], w["as_of_last"],
                 w["rows"], 100 * w["base_rate"])

    screen = screen_flat(table, split, mapping, extra_allow)
    write_json(screen.summary(), out / "metrics" / "screen.json")
    drop: list[str] = []
    if mapping.screen.enabled:
        if mapping.screen.on_flag == "drop":
            drop = screen.refused
            check_screen(screen, refuse=False)
            if drop:
                log.warning("screen.on_flag = drop: training without %s", drop)
        else:
            check_screen(screen, refuse=True)
    catalog = kept_catalog(table.catalog, drop)

    models = train_flat(table, split, mapping, catalog)
    test = split.test
    y = test["label"].to_numpy()
    probs = {"rules": models.rules.predict_proba(test)[:, 1],
             "logistic": models.logistic.predict_proba(test)[:, 1],
             "lightgbm": models.lightgbm.predict_proba(test)[:, 1]}
    k = max(1, round(0.1 * len(test)))
    ev = evaluate_models(y, probs, k=k, seed=mapping.seed)
    metrics = ev.metrics
    metrics["auc_diff_ci_lower"], metrics["auc_diff_ci_upper"] = metrics["auc_diff_ci"]
    metrics["fallback_to_rules"] = False
    metrics["split"] = info
    metrics["test"]["k_note"] = "K = the top 10% of test rows"
    metrics["calibration_slice_base_rate"] = split.windows["calib"]["base_rate"]
    metrics["screen"] = {"refused": screen.refused, "allowed": screen.allowed, "dropped": drop}

    # grades and explanations (explain engineer's functions)
    ex_cfg = ExplainConfig()
    explainer = Explainer.for_model(models.lightgbm)
    names = explainer.feature_names
    groups = {g: [n for n in catalog.group(g) if n in names] for g in ("fit", "engagement")}
    sums = group_sums(explainer.contributions(split.calib, raw=True), names, groups)
    w = split.windows["calib"]
    cuts = fit_grade_cuts(sums["fit"], sums["engagement"], fit_shares=ex_cfg.fit_shares,
                          engagement_shares=ex_cfg.engagement_shares,
                          calib_window=(w["as_of_first"], w["as_of_last"]),
                          fit_features=groups["fit"], engagement_features=groups["engagement"])

    models_dir = out / "models"
    save_model(models.lightgbm, models_dir / "lightgbm")
    save_model(models.logistic, models_dir / "logistic")
    with atomic_path(models_dir / "lightgbm" / "importance.csv") as tmp:
        models.lightgbm.model.feature_importance().to_csv(tmp, index=False)
    save_rules(models.rules, models_dir / "rules.json")
    save_grading(cuts, models_dir / "grading.json")
    save_catalog(catalog, models_dir / "feature_catalog.json")

    # scores: every row, with the same scorer object as the batch job
    from leadscore.serve.export import model_version
    from leadscore.serve.scorer import LeadScorer

    lgb_dir = models_dir / "lightgbm"
    version = model_version({"booster": lgb_dir / "model.txt", "estimator": lgb_dir / "estimator.json",
                             "calibrator": lgb_dir / "calibrator.json",
                             "grading": models_dir / "grading.json",
                             "catalog": models_dir / "feature_catalog.json",
                             "rules": models_dir / "rules.json"})
    scorer = LeadScorer(models.lightgbm.model, models.lightgbm.calibrator, cuts.to_dict(), catalog,
                        models.rules, {"model_version": version})
    everything = pd.concat([split[s].assign(slice=s) for s in ("train", "valid", "calib", "test")],
                           ignore_index=True).sort_values("row", kind="stable", ignore_index=True)
    scored = scorer.score(everything)
    run_id = f"flat-{version[:8]}-{len(everything)}"
    scores = pd.concat([everything[["lead_id"]],
                        everything[["as_of"]] if "as_of" in everything else
                        pd.DataFrame({"as_of": pd.Series(pd.NaT, index=everything.index,
                                                         dtype="datetime64[us]")}),
                        scored], axis=1)
    scores["model_version"] = version
    scores["run_id"] = run_id
    scores["scored_at"] = pd.Timestamp.now(tz="UTC").floor("s")
    scores["slice"] = everything["slice"].to_numpy()
    write_parquet(scores, out / "scores.parquet")

    is_test = scores["slice"].to_numpy() == "test"
    test_scored = scored.loc[is_test].reset_index(drop=True)
    rg = models.rules.grade(test)
    grades = {
        "lightgbm": grade_matrix(y, test_scored["fit_grade"], test_scored["engagement_grade"],
                                 test_scored["probability"], alpha=ex_cfg.significance),
        "rules": grade_matrix(y, rg["fit_grade"], rg["engagement_grade"], probs["rules"],
                              alpha=ex_cfg.significance),
    }
    metrics["rules_grades"] = grades["rules"]
    write_json(grades, out / "metrics" / "grades.json")
    contrib = explainer.contributions(test, raw=True)
    drivers = global_drivers(contrib, test, names, catalog, min_corr=ex_cfg.min_direction_corr)
    write_json({"base_value": explainer.expected_value(), "model": "lightgbm", "rows": int(len(test)),
                "slice": "test", "drivers": drivers}, out / "reports" / "drivers.json")
    rng = np.random.default_rng(mapping.seed)
    sample = np.sort(rng.choice(len(test), size=min(ex_cfg.dependence_rows, len(test)), replace=False))
    for d in drivers[: ex_cfg.top_drivers]:
        _write_csv(dependence_frame(contrib, test, names, d, sample),
                   out / "plots" / f"dependence_{d['field']}.csv")
    write_json(_examples(test, test_scored, ex_cfg.examples_per_grade, mapping.seed),
               out / "reports" / "examples.json")

    for name, rc in ev.reliability.items():
        _write_csv(rc, out / "plots" / f"reliability_{name}.csv")
    _write_csv(gains_frame(ev.gains), out / "plots" / "gains.csv")
    write_json(metrics, out / "metrics" / "evaluate.json")
    write_json({"cleaning": table.log, "source_names": table.source_names, "split": info,
                **models.summary}, out / "metrics" / "train.json")
    log.info("test metrics (%s):\n%s", info["note"], metrics_table(metrics))
    log.info("%s", format_matrix(grades["lightgbm"], "LightGBM grades on the test slice"))

    cv = None
    if cv_folds:
        cv = cross_validate_flat(table, mapping, catalog, folds=cv_folds, params=models.best_params,
                                 rounds=max(models.best_iteration, 10))
        write_json(cv, out / "metrics" / "cv.json")
        log.info("random stratified %d-fold ROC-AUC: %s", cv_folds,
                 ", ".join(f"{k} {cv[k]['roc_auc_mean']:.3f} ± {cv[k]['roc_auc_std']:.3f}" for k in MODELS))

    missing = write_flat_report(out, info)
    seconds = time.perf_counter() - t0
    log.info("leadscore run done in %.1fs -> %s", seconds, out)
    return FlatRunResult(out, metrics, screen, cv, seconds, missing)


def write_flat_report(out: Path, info: dict) -> list[str]:
    """DIR/report.html with the report engineer's `build_report`; returns what is missing."""
    try:
        from leadscore.report.build import (
            ReportPaths,
            build_report,
            load_report_inputs,
            write_report,
        )
    except ImportError as err:
        log.warning("report.html not written: leadscore.report.build is not available (%s)", err)
        return [f"report.html: leadscore.report.build not importable ({err})"]
    paths = ReportPaths(evaluate=out / "metrics" / "evaluate.json", gains=out / "plots" / "gains.csv",
                        plots=out / "plots", model=out / "models" / "lightgbm",
                        rules=out / "models" / "rules.json",
                        validation=out / "reports" / "validation.json",
                        validate_metrics=out / "metrics" / "validate.json",
                        catalog=out / "models" / "feature_catalog.json",
                        features=out / "metrics" / "features.json",
                        grades=out / "metrics" / "grades.json",
                        drivers=out / "reports" / "drivers.json",
                        examples=out / "reports" / "examples.json")
    title = ("Lead scoring report: " + ("out-of-time test" if info["out_of_time"]
                                        else "random split, NO out-of-time test"))
    html = build_report(load_report_inputs(paths), ReportConfig(), title=title,
                        generated_at=dt.datetime.now(dt.UTC))
    write_report(html, out / "report.html")
    return []
