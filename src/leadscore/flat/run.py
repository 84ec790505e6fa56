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
from leadscore.flat.levels import choose_levels, fold_levels
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
from leadscore.modeling.metrics import ece, ece_noise_floor
from leadscore.modeling.points import LearnedPointsClassifier, learn_points
from leadscore.modeling.splits import Split, data_window
from leadscore.modeling.train import TrainResult, train_models
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
    split: Split | None = None  # the split the models saw: categorical levels capped (flat.levels)
    level_keep: dict[str, list[str]] = field(default_factory=dict)  # column -> kept levels

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


def flat_train_config(mapping: Mapping, additive: bool | None = None) -> TrainModelConfig:
    """Flat mode's training settings (`model:` in the mapping), for `train_flat` and the
    backtest (leadscore.flat.backtest): no fallback to the rules, no leakage guards inside
    (the screen runs before), no monotone constraints. Every setting is spelled out; Optuna's
    start-up trials and pruning warm-up are tune_lightgbm's defaults (no mapping key).
    `additive` overrides ``model.additive``; ``model.additive: auto`` without it gives
    single-feature trees (the backtest's; `train_flat` tries both)."""
    m = mapping.model
    if additive is None:
        additive = m.additive is not False
    return TrainModelConfig(
        min_positives=m.min_positives, fallback_to_rules=False, num_threads=m.num_threads,
        max_boost_rounds=m.max_boost_rounds, learning_rate=m.learning_rate,
        early_stopping_rounds=m.early_stopping_rounds, additive=additive, monotone_increasing=(),
        optuna=OptunaConfig(n_trials=m.n_trials, timeout_s=m.timeout_s, n_startup_trials=5,
                            pruning_warmup_rounds=30),
        calibration_methods=m.calibration_methods, calibration_folds=m.calibration_folds,
        logistic_c=m.logistic_c, leakage=LeakageConfig(enabled=False))


def _train(split: Split, table: FlatTable, mapping: Mapping, catalog: FeatureCatalog,
           additive: bool) -> tuple[TrainResult, float]:
    """`train_models` with flat mode's settings and single-feature (`additive`) or free trees;
    (result, seconds)."""
    t = time.perf_counter()
    tr, va, ca = split.train, split.valid, split.calib
    r = train_models(tr, va, ca, features=catalog.names, categorical=catalog.categorical,
                     cfg=flat_train_config(mapping, additive), seed=mapping.seed,
                     calibration_groups=None,
                     data_window=data_window(split) if table.ordered else {},  # random: no range
                     refit_rows=pd.concat([tr, va, ca], ignore_index=True),
                     metadata={"target": mapping.target, "positive": str(mapping.positive),
                               "source_file": mapping.path.name})
    return r, time.perf_counter() - t


def _shape(r: TrainResult) -> dict:
    """LightGBM's validation figures (train-slice model, before the refit): the raw log loss
    the tuning minimised, and the calibrated log loss and ROC-AUC."""
    v = r.metrics["lightgbm"]["valid"]
    return {"valid_log_loss": float(r.tuning.best_value), "valid_log_loss_calibrated": v["log_loss"],
            "valid_roc_auc": v["roc_auc"]}


def choose_shape(results: dict[bool, TrainResult], seconds: dict[bool, float], setting) -> tuple[bool, dict]:
    """Single-feature (True) or free trees (False): with both trained (``additive: auto``) the
    lower validation log loss (tuned LightGBM, raw scores; a tie keeps single-feature trees),
    with what the constraint costs: ``cost.log_loss`` (single-feature minus free, > 0: the
    constraint loses) and ``cost.roc_auc`` (free minus single-feature)."""
    name = {True: "additive", False: "free"}
    out: dict = {"setting": setting}
    if len(results) == 1:
        chosen = next(iter(results))
        return chosen, {**out, "chosen": name[chosen], name[chosen]: _shape(results[chosen]),
                        "note": f"model.additive: {str(setting).lower()} (set auto to compare both)"}
    shapes = {name[k]: _shape(r) for k, r in results.items()}
    chosen = shapes["additive"]["valid_log_loss"] <= shapes["free"]["valid_log_loss"]
    cost = {"log_loss": shapes["additive"]["valid_log_loss"] - shapes["free"]["valid_log_loss"],
            "roc_auc": shapes["free"]["valid_roc_auc"] - shapes["additive"]["valid_roc_auc"]}
    note = (f"{'single-feature' if chosen else 'free'} trees chosen on validation log loss: "
            f"single-feature {shapes['additive']['valid_log_loss']:.5f} (ROC-AUC "
            f"{shapes['additive']['valid_roc_auc']:.4f}), free {shapes['free']['valid_log_loss']:.5f} "
            f"(ROC-AUC {shapes['free']['valid_roc_auc']:.4f}); free trees change validation log loss "
            f"by {-cost['log_loss']:+.5f} and ROC-AUC by {cost['roc_auc']:+.4f}, which is what "
            f"the single-feature constraint costs (a log loss change above 0 means it costs nothing)")
    return chosen, {**out, "chosen": name[chosen], **shapes, "cost": cost, "note": note,
                    "seconds": {name[k]: round(s, 1) for k, s in seconds.items()}}


def train_flat(table: FlatTable, split: Split, mapping: Mapping, catalog: FeatureCatalog) -> FlatModels:
    """Rules (calibrated on calib), tuned LightGBM and the logistic check, both calibrated
    on the calib slice and refitted on every pre-test row; the kind that ships is chosen on
    the valid slice (before the test slice is looked at). No calibration groups (one row
    per lead).

    First the categorical level cap (``max_levels: auto``, `leadscore.flat.levels`): the
    returned `FlatModels.split` is `split` with the chosen levels, and every later step
    (evaluate, explain, score) uses it. Then, with ``model.additive: auto``, LightGBM is
    tuned with single-feature and with free trees and the lower validation log loss ships
    (`choose_shape`); the summary's ``additive`` says what the constraint costs. Without
    `rules:`, the learned points table comes from the single-feature model either way."""
    split, levels = choose_levels(split, catalog, mapping)
    tr, va, ca = split.train, split.valid, split.calib
    setting = mapping.model.additive
    flags = (True, False) if setting == "auto" else (bool(setting),)
    results, seconds = {}, {}
    for flag in flags:
        results[flag], seconds[flag] = _train(split, table, mapping, catalog, flag)
    chosen, shape = choose_shape(results, seconds, setting)
    if len(flags) > 1:
        log.info("model shape: %s", shape["note"])
    r = results[chosen]
    points_from = results.get(True, r)  # the learned table needs single-feature trees
    rules, source = flat_baseline(mapping, table, points_from.fits["lightgbm"].model.model, catalog, tr, ca)
    valid = {"rules": float(roc_auc_score(va["label"], rules.predict_proba(va)[:, 1])),
             **{k: r.metrics[k]["valid"]["roc_auc"] for k in ("logistic", "lightgbm")}}
    if source == "learned":  # as the model: the table of the refit, the calibrator kept
        rules = refit_points(rules, points_from.lightgbm.model, catalog,
                             pd.concat([tr, va, ca], ignore_index=True), ca)
    kind, why = choose_kind(valid)
    log.info("ships: %s", why)
    summary = {"tuning": r.tuning.summary(), "ships": {"kind": kind, "why": why, "valid_roc_auc": valid},
               "rules_source": source, "levels": levels.summary(), "additive": shape,
               **{k: {"valid": r.metrics[k]["valid"], "calibration": r.metrics[k]["calibration"],
                      "settings": r.summary()[k].get("settings"), "refit": r.summary()[k].get("refit")}
                  for k in ("lightgbm", "logistic")}}
    return FlatModels(rules, r.lightgbm, r.logistic, r.features, r.categorical,
                      r.tuning.best_params, r.fits["lightgbm"].model.model.best_iteration_, kind, why,
                      valid, summary, source, split, levels.keep)


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
                        folds: int = 5, params: dict | None = None, rounds: int = 300,
                        additive: bool | None = None, levels: dict[str, list[str]] | None = None) -> dict:
    """Random stratified K-fold ROC-AUC of LightGBM (given params, fixed `rounds`; `additive`:
    the run's tree shape, None: the mapping's, auto as single-feature), the logistic
    regression and the rules' points (no early stopping: no fold sees its test); without
    `rules:` in the mapping, the points table learned from each fold's LightGBM. `levels`:
    the run's kept categorical levels (`leadscore.flat.levels`), the rest folded."""
    df = fold_levels(table.frame, levels) if levels else table.frame
    additive = (mapping.model.additive is not False) if additive is None else additive
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
                                  num_threads=m.num_threads, additive=additive)
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
    scores = {"rules": models.rules, "logistic": models.logistic, "lightgbm": models.lightgbm}
    notes = []
    for name, model in scores.items():
        m[name] |= calibration_check(test["label"].to_numpy(), probs[name],
                                     model.decision_function(test), m[name]["ece_ci"], seed=mapping.seed)
        notes.append(f"{name}: {m[name]['ece_note']}")
    m["calibration_note"] = "; ".join(notes)
    m["additive"] = models.summary.get("additive", {})
    m["levels"] = models.summary.get("levels", {})
    return ev


CONSTANT_SHARE = 0.99  # one probability for this share of test rows: "constant after calibration"


def calibration_check(y: np.ndarray, p: np.ndarray, score: np.ndarray, ece_ci: list[float], *,
                      seed: int, n_bins: int = 15) -> dict:
    """What a test slice's ECE means for this many rows, and whether calibration flattened the
    ranking. ``ece_noise_floor`` (mean) and ``ece_noise_floor_p95``: the ECE a perfectly
    calibrated model shows on these predictions by chance (labels drawn from them,
    `leadscore.modeling.metrics.ece_noise_floor`); ``ece_verdict``: "miscalibrated" when the
    ECE's bootstrap interval lies above the floor's 95th percentile, "within noise" when the
    ECE itself is below it, else "unclear". ``roc_auc_uncalibrated``: the ranking of the raw
    scores (an isotonic map ties scores into steps); ``constant_after_calibration``: one
    probability for at least 99% of the rows (after a base-rate shift an isotonic map can put
    every test score on one step, and ROC-AUC 0.5 then describes the calibrator, not the
    ranking)."""
    floor = ece_noise_floor(p, n_bins=n_bins, seed=seed)
    ece_value = float(ece(y, p, n_bins))
    lo = float(ece_ci[0])
    verdict = ("miscalibrated" if lo > floor["p95"] else "within noise" if ece_value <= floor["p95"]
               else "unclear")
    values, counts = np.unique(np.round(p, 12), return_counts=True)
    constant = bool(counts.max() >= CONSTANT_SHARE * len(p))
    raw_auc = float(roc_auc_score(y, score))
    note = (f"ECE {ece_value:.3f} [{ece_ci[0]:.3f}, {ece_ci[1]:.3f}] against {floor['mean']:.3f} "
            f"(95th percentile {floor['p95']:.3f}) for a perfectly calibrated model on {len(p)} rows: "
            f"{verdict}")
    if constant:
        note += (f"; CONSTANT after calibration ({counts.max()} of {len(p)} rows get "
                 f"{values[np.argmax(counts)]:.3f}): its ROC-AUC describes the calibrator, the raw "
                 f"scores rank at {raw_auc:.3f}")
    return {"ece_noise_floor": floor["mean"], "ece_noise_floor_p95": floor["p95"],
            "ece_verdict": verdict, "ece_note": note, "distinct_probabilities": int(len(values)),
            "constant_after_calibration": constant, "roc_auc_uncalibrated": raw_auc}


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
    outputs.write_screen(screen, table.log.get("pii"))
    dropped = apply_screen(screen, mapping)
    catalog = kept_catalog(table.catalog, dropped)
    models = train_flat(table, split, mapping, catalog)
    split = models.split  # categorical levels as the models saw them (leadscore.flat.levels)
    ev = evaluate_flat(models, split, mapping, info, screen, dropped)
    explained = "logistic" if models.kind == "logistic" else "lightgbm"
    explanation = explain_model(split, models.explained, models.rules, catalog, ExplainConfig(),
                                mapping.seed, name=explained)
    ev.metrics["rules_grades"] = explanation.grades["rules"]
    ev.metrics["pii"] = table.log.get("pii", [])  # columns dropped as personal data, no values

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
                                 rounds=max(models.best_iteration, 10),
                                 additive=models.summary["additive"]["chosen"] == "additive",
                                 levels=models.level_keep)
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
