"""Flat-export mode in one call: `leadscore flat --mapping my_mapping.yaml --out DIR`.

`run_flat` validates the mapping and the file, screens for leakage, trains the rule
baseline and the models, evaluates, explains, scores and reports, with the same library
functions as the DVC stages (`train_models`, `evaluate_models`, `explain_model`, `Scorer`,
`build_report`). It writes the folder described in `leadscore.flat.outputs`.

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

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from leadscore.config import ExplainConfig, LeakageConfig, OptunaConfig, TrainModelConfig
from leadscore.explain.explanation import Explanation, explain_model
from leadscore.explain.grades import format_matrix
from leadscore.features.catalog import FeatureCatalog
from leadscore.flat.mapping import Mapping
from leadscore.flat.outputs import FlatOutputs, staged_output
from leadscore.flat.rules import FlatRuleClassifier
from leadscore.flat.table import FlatTable, flat_split, load_flat
from leadscore.lifecycle.backtest import BacktestResult
from leadscore.lifecycle.choose import champion_entry, choose_kind
from leadscore.modeling.calibration import Calibrator
from leadscore.modeling.estimators import CalibratedModel, LightGBMClassifier, LogisticClassifier
from leadscore.modeling.evaluate import Evaluation, evaluate_models, metrics_table
from leadscore.modeling.leakage import LeakageReport, check_leakage, screen_columns
from leadscore.modeling.points import LearnedPointsClassifier, learn_points
from leadscore.modeling.splits import Split, data_window
from leadscore.modeling.train import train_models
from leadscore.serve.export import model_version
from leadscore.serve.scorer import Scorer

log = logging.getLogger(__name__)

MODELS = ("rules", "logistic", "lightgbm")
FLAT_MQL_SHARE = 0.10  # the learned table's MQL threshold: the top 10% (evaluate's K)


@dataclass
class FlatModels:
    """The three fitted models of a flat run (`rules`: the mapping's points table, or without
    one the `LearnedPointsClassifier` learned from LightGBM, `rules_source` "learned")."""

    rules: FlatRuleClassifier
    lightgbm: CalibratedModel
    logistic: CalibratedModel
    features: list[str]
    categorical: list[str]
    best_params: dict
    best_iteration: int
    kind: str = "lightgbm"  # what ships: chosen on the valid slice (leadscore.lifecycle.choose)
    why: str = ""
    valid_auc: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    rules_source: str = "mapping"  # "learned": no rules: in the mapping, the learned points table

    @property
    def explained(self) -> CalibratedModel:
        """The model the explanation describes: the shipped one, LightGBM when the rules ship."""
        return self.logistic if self.kind == "logistic" else self.lightgbm


@dataclass
class FlatRunResult:
    out: Path
    metrics: dict  # evaluate.json
    screen: LeakageReport
    cv: dict | None
    seconds: float
    backtest: BacktestResult | None = None  # with backtest=True


# ---- building blocks ---------------------------------------------------------------------
def split_info(table: FlatTable, mapping: Mapping, split: Split) -> dict:
    """What the test slice is, in words, for the metrics and the report."""
    if mapping.created_at:
        kind, note = "time", f"out-of-time test: the latest {mapping.split.test:.0%} of rows by {mapping.created_at}"
    elif mapping.time_order:
        kind, note = "rows", f"out-of-time test: the last {mapping.split.test:.0%} of rows (the file is in time order)"
    else:
        shares = ", ".join(f"{label} {split.windows[name]['share']:.0%}" for name, label in
                           (("train", "training"), ("valid", "validation"),
                            ("calib", "calibration"), ("test", "test")))
        kind, note = "random", ("no out-of-time test: the file has no date and is not marked as "
                                "time-ordered, so its rows were split at random, stratified by the "
                                f"outcome, into shares of rows ({shares})")
    return {"kind": kind, "out_of_time": kind != "random", "note": note,
            "slices": split.windows}


def screen_flat(table: FlatTable, split: Split, mapping: Mapping,
                extra_allow: tuple[str, ...] = ()) -> LeakageReport:
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


def flat_train_config(mapping: Mapping) -> TrainModelConfig:
    """Flat mode's training settings (`model:` in the mapping), for `train_flat` and the
    backtest (leadscore.flat.backtest): no fallback to the rules, no leakage guards inside
    (the screen runs before), no monotone constraints. Every setting is spelled out; Optuna's
    start-up trials and pruning warm-up are tune_lightgbm's defaults (no mapping key)."""
    m = mapping.model
    return TrainModelConfig(
        min_positives=m.min_positives, fallback_to_rules=False, num_threads=m.num_threads,
        max_boost_rounds=m.max_boost_rounds, learning_rate=m.learning_rate,
        early_stopping_rounds=m.early_stopping_rounds, additive=m.additive, monotone_increasing=(),
        optuna=OptunaConfig(n_trials=m.n_trials, timeout_s=m.timeout_s, n_startup_trials=5,
                            pruning_warmup_rounds=30),
        calibration_methods=m.calibration_methods, calibration_folds=m.calibration_folds,
        logistic_c=m.logistic_c, leakage=LeakageConfig(enabled=False))


def train_flat(table: FlatTable, split: Split, mapping: Mapping, catalog: FeatureCatalog) -> FlatModels:
    """Rules (calibrated on calib), tuned LightGBM and the logistic check, both calibrated
    on the calib slice and refitted on every pre-test row; the kind that ships is chosen on
    the valid slice (before the test slice is looked at). No calibration groups (one row
    per lead)."""
    tr, va, ca = split.train, split.valid, split.calib
    cfg = flat_train_config(mapping)
    r = train_models(tr, va, ca, features=catalog.names, categorical=catalog.categorical, cfg=cfg,
                     seed=mapping.seed, calibration_groups=None,
                     data_window=data_window(split) if table.ordered else {},  # random: no range
                     refit_rows=pd.concat([tr, va, ca], ignore_index=True),
                     metadata={"target": mapping.target, "positive": str(mapping.positive),
                               "source_file": mapping.path.name})
    rules, source = flat_baseline(mapping, table, r.fits["lightgbm"].model.model, catalog, tr, ca)
    valid = {"rules": float(roc_auc_score(va["label"], rules.predict_proba(va)[:, 1])),
             **{k: r.metrics[k]["valid"]["roc_auc"] for k in ("logistic", "lightgbm")}}
    if source == "learned":  # as the model: the table of the refit, the calibrator kept
        rules = refit_points(rules, r.lightgbm.model, catalog, pd.concat([tr, va, ca], ignore_index=True), ca)
    kind, why = choose_kind(valid)
    log.info("ships: %s", why)
    summary = {"tuning": r.tuning.summary(), "ships": {"kind": kind, "why": why, "valid_roc_auc": valid},
               "rules_source": source,
               **{k: {"valid": r.metrics[k]["valid"], "calibration": r.metrics[k]["calibration"],
                      "settings": r.summary()[k].get("settings"), "refit": r.summary()[k].get("refit")}
                  for k in ("lightgbm", "logistic")}}
    return FlatModels(rules, r.lightgbm, r.logistic, r.features, r.categorical,
                      r.tuning.best_params, r.fits["lightgbm"].model.model.best_iteration_, kind, why,
                      valid, summary, source)


def has_rules(mapping: Mapping) -> bool:
    """True when the mapping writes a points table (`rules:` with fit or engagement lines)."""
    return bool(mapping.rules.fit or mapping.rules.engagement)


def flat_baseline(mapping: Mapping, table: FlatTable, lgbm: LightGBMClassifier,
                  catalog: FeatureCatalog, train: pd.DataFrame, calib: pd.DataFrame
                  ) -> tuple[FlatRuleClassifier, str]:
    """The baseline and where it comes from ("mapping" or "learned"): the mapping's `rules:`
    calibrated on `calib`; without them, the points table learned from the additive
    LightGBM fitted on the train slice (`leadscore.modeling.points.learn_points`: bands
    weighed on `train`; grade bands, the MQL threshold at the top 10% and the isotonic map
    on `calib`, as the model's own calibration; `train_flat` then swaps in the refit's
    table, `refit_points`). A non-additive model gives no table: the mapping's (empty)
    rules stay, a constant, with a warning."""
    if not has_rules(mapping):
        if not lgbm.additive:
            log.warning("the mapping has no rules: and the model is not additive (model.additive: "
                        "false), so the baseline is a constant")
        else:
            est = learn_points(lgbm, catalog, train, calib, mql_share=FLAT_MQL_SHARE)
            log.info("the mapping has no rules: the baseline is the points table learned from "
                     "LightGBM (%d fit, %d engagement fields)", len(est.fit_rules),
                     len(est.engagement_rules))
            return est, "learned"
    rules = FlatRuleClassifier.from_mapping(mapping, table.source_names).fit(calib, calib["label"])
    return rules, "mapping"


def refit_points(table: LearnedPointsClassifier, refit: LightGBMClassifier, catalog: FeatureCatalog,
                 rows: pd.DataFrame, calib: pd.DataFrame) -> LearnedPointsClassifier:
    """The points table of the refitted LightGBM (bands weighed on `rows`, every pre-test
    row; grade bands and MQL threshold on `calib`'s points, which use no labels) with the
    points -> probability map of `table`, the train-slice model's table: the refit has seen
    the calibration slice, so, as for the model, the calibrator is kept. Each table's points
    are relative to its own reference bands, so the kept map is shifted by the difference of
    their intercepts (same log-odds, same probability)."""
    out = learn_points(refit, catalog, rows, calib, mql_share=FLAT_MQL_SHARE)
    shift = (out.intercept_log_odds - table.intercept_log_odds) * out.points_per_doubling / math.log(2)
    kept = table.calibrator_
    out.calibrator_ = Calibrator(kept.method, x_=[x - shift for x in kept.x_], y_=list(kept.y_))
    return out


def cross_validate_flat(table: FlatTable, mapping: Mapping, catalog: FeatureCatalog, *,
                        folds: int = 5, params: dict | None = None, rounds: int = 300) -> dict:
    """Random stratified K-fold ROC-AUC of LightGBM (given params, fixed `rounds`), the
    logistic regression and the rules' points (no early stopping: no fold sees its test);
    without `rules:` in the mapping, the points table learned from each fold's LightGBM."""
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
        fold_rules = (rules if has_rules(mapping) or not lgbm.additive
                      else learn_points(lgbm, catalog, a, a, mql_share=FLAT_MQL_SHARE))
        aucs["rules"].append(float(roc_auc_score(yb, fold_rules.decision_function(b))))
    return {"folds": folds, "split": "random stratified", "features": names, "rounds": rounds,
            **{k: {"roc_auc_mean": float(np.mean(v)), "roc_auc_std": float(np.std(v)),
                   "roc_auc_folds": v} for k, v in aucs.items()}}


def apply_screen(screen: LeakageReport, mapping: Mapping) -> list[str]:
    """Refuse (LeakageError) or, with ``screen.on_flag: drop``, return the columns to drop.
    Columns flagged on their name or values alone (`LeakageReport.dropped_by_name`) are
    dropped either way; the screen's warning says how to keep them (``allow:``). Dropping
    every feature column is refused too (LeakageError)."""
    if not mapping.screen.enabled:
        return []
    if mapping.screen.on_flag != "drop":
        check_leakage(screen, refuse=True)
        dropped = list(screen.dropped_by_name)
    else:
        check_leakage(screen, refuse=False)
        if screen.refused:
            log.warning("screen.on_flag = drop: training without %s", screen.refused)
        dropped = list(screen.refused) + list(screen.dropped_by_name)
    screen.check_left(dropped)
    return dropped


def evaluate_flat(models: FlatModels, split: Split, mapping: Mapping, info: dict,
                  screen: LeakageReport, dropped: list[str]) -> Evaluation:
    """The three models on the test slice (K = the top 10% of test rows)."""
    test = split.test
    probs = {"rules": models.rules.predict_proba(test)[:, 1],
             "logistic": models.logistic.predict_proba(test)[:, 1],
             "lightgbm": models.lightgbm.predict_proba(test)[:, 1]}
    ev = evaluate_models(test["label"].to_numpy(), probs, k=max(1, round(0.1 * len(test))),
                         seed=mapping.seed)
    m = ev.metrics
    m["auc_diff_ci_lower"], m["auc_diff_ci_upper"] = m["auc_diff_ci"]
    m["fallback_to_rules"] = False
    m["rules_source"] = models.rules_source
    m["split"] = info
    m["test"]["k_note"] = "K = the top 10% of test rows"
    m["calibration_slice_base_rate"] = split.windows["calib"]["base_rate"]
    m["screen"] = {"refused": screen.refused, "allowed": screen.allowed, "dropped": dropped}
    m["champion"] = champion_entry(models.kind, models.why, models.valid_auc, m)
    return ev


def score_rows(split: Split, models: FlatModels, explanation: Explanation, catalog: FeatureCatalog,
               version: str) -> pd.DataFrame:
    """Every row of the file (all slices, in file order): the score contract + `slice`."""
    version_info = {"model_version": version, "kind": models.kind}
    scorer = (Scorer.from_rules(models.rules, catalog, version=version_info) if models.kind == "rules"
              else Scorer.from_model(models.explained, explanation.cuts, catalog, models.rules, version_info))
    rows = pd.concat([split[s].assign(slice=s) for s in ("train", "valid", "calib", "test")],
                     ignore_index=True).sort_values("row", kind="stable", ignore_index=True)
    scored = scorer.score(rows)
    as_of = (rows[["as_of"]] if "as_of" in rows else
             pd.DataFrame({"as_of": pd.Series(pd.NaT, index=rows.index, dtype="datetime64[us]")}))
    scores = pd.concat([rows[["lead_id"]], as_of, scored], axis=1)
    scores["model_version"] = version
    scores["run_id"] = f"flat-{version[:8]}-{len(rows)}"
    scores["scored_at"] = pd.Timestamp.now(tz="UTC").floor("s")
    scores["slice"] = rows["slice"].to_numpy()
    return scores


# ---- the one command ---------------------------------------------------------------------
def run_flat(mapping: Mapping, out: str | Path, *, nrows: int | None = None, cv_folds: int = 0,
             extra_allow: tuple[str, ...] = (), backtest: bool = False) -> FlatRunResult:
    """Validate, screen, train, evaluate, explain, score and report one flat export (with
    `backtest`, also the rolling-origin backtest, leadscore.flat.backtest).

    Everything is written into a staging folder next to `out` and swapped in at the end
    (`leadscore.flat.outputs.staged_output`): on any failure `out` is left as it was.
    Raises `ConfigError` (an `out` a run may not replace, no order with `backtest`, exit 2),
    `MappingError` (wrong mapping or file, exit 1), `LeakageError` (the screen refused, exit
    4; the message lists every flagged column), `TooFewPositivesError` (exit 4).
    """
    t0 = time.perf_counter()
    if backtest:
        from leadscore.flat.backtest import require_order

        require_order(mapping)  # refuse before training, not after
    with staged_output(out) as staging:
        result = _run_into(FlatOutputs(staging), mapping, nrows=nrows, cv_folds=cv_folds,
                           extra_allow=extra_allow, backtest=backtest)
    result.out = Path(out)
    result.seconds = time.perf_counter() - t0
    log.info("leadscore flat done in %.1fs -> %s", result.seconds, out)
    return result


def _run_into(outputs: FlatOutputs, mapping: Mapping, *, nrows: int | None, cv_folds: int,
              extra_allow: tuple[str, ...], backtest: bool) -> FlatRunResult:
    """`run_flat`'s steps, writing into `outputs` (the staging folder)."""
    table = load_flat(mapping, nrows=nrows)
    log.info("prepared %d rows (%d positives, base rate %.1f%%), %d feature columns",
             len(table.frame), table.log["positives"], 100 * table.frame["label"].mean(),
             len(table.features))
    split = flat_split(table, mapping)
    info = split_info(table, mapping, split)
    log.info("%s", info["note"])
    for name, w in split.windows.items():
        where = (f"{w['as_of_first']}..{w['as_of_last']}" if "as_of_first" in w
                 else f"a random {w['share']:.0%} of rows")
        log.info("%-5s %s: %d rows, base rate %.1f%%", name, where, w["rows"], 100 * w["base_rate"])

    screen = screen_flat(table, split, mapping, extra_allow)
    outputs.write_screen(screen)
    dropped = apply_screen(screen, mapping)
    catalog = kept_catalog(table.catalog, dropped)
    models = train_flat(table, split, mapping, catalog)
    ev = evaluate_flat(models, split, mapping, info, screen, dropped)
    explained = "logistic" if models.kind == "logistic" else "lightgbm"
    explanation = explain_model(split, models.explained, models.rules, catalog, ExplainConfig(),
                                mapping.seed, name=explained)
    ev.metrics["rules_grades"] = explanation.grades["rules"]

    outputs.write_models(models, explanation, catalog)
    version = model_version(outputs.model_files(models.kind))
    scores = score_rows(split, models, explanation, catalog, version)
    outputs.write_results(scores=scores, metrics=ev.metrics, evaluation=ev, explanation=explanation,
                          train_summary={"cleaning": table.log, "source_names": table.source_names,
                                         "split": info, **models.summary})
    log.info("test metrics (%s):\n%s", info["note"], metrics_table(ev.metrics))
    log.info("%s", format_matrix(explanation.grades[explained], f"{explained} grades on the test slice"))

    cv = None
    if cv_folds:
        cv = cross_validate_flat(table, mapping, catalog, folds=cv_folds, params=models.best_params,
                                 rounds=max(models.best_iteration, 10))
        outputs.write_cv(cv)
        log.info("random stratified %d-fold ROC-AUC: %s", cv_folds,
                 ", ".join(f"{k} {cv[k]['roc_auc_mean']:.3f} ± {cv[k]['roc_auc_std']:.3f}" for k in MODELS))

    bt = None
    if backtest:
        from leadscore.flat.backtest import backtest_flat, backtest_json

        bt = backtest_flat(mapping, nrows=nrows, extra_allow=extra_allow)
        outputs.write_backtest(backtest_json(bt))
    outputs.write_report(info["out_of_time"], backtest=backtest, rules_source=models.rules_source)
    return FlatRunResult(outputs.root, ev.metrics, screen, cv, 0.0, bt)
