"""Train the conversion models: one function for the pipeline stage and for flat mode.

`train_models` runs, in this order:

1. **positives check**: too few positive labels in the train slice raise
   `TooFewPositivesError`, or, with `cfg.fallback_to_rules`, return a result whose status is
   ``"fallback"`` with the reason (no model is trained; the caller keeps the rule baseline);
2. **leakage guards** (with `cfg.leakage.enabled`): the probe, then the screen
   (`leadscore.modeling.leakage`); either may refuse with `LeakageError`;
3. **LightGBM** tuned with Optuna on the valid slice (`tune_lightgbm`, unweighted train and
   valid slices; with `cfg.optuna.storage` the study is kept there and resumed);
4. per model (LightGBM with the tuned parameters and early stopping, then the logistic
   regression check), `fit_calibrate_refit`:
   a. **recency settings** (`cfg.recency`: training window, sample-weight half-life) chosen
      on the valid slice (`leadscore.modeling.recency.choose_settings`), each candidate
      fitted on the train slice;
   b. **calibration** of the chosen train-slice model on the calib slice
      (`choose_calibrator`; folds grouped by the `calibration_groups` column when present);
   c. **refit** (with `cfg.refit` and `refit_rows`, the rows mature before the test slice):
      the model trained again on those rows, restricted to the chosen window and weighted,
      LightGBM with best_iteration x (refit rows / train rows) rounds and no early stopping.
      It keeps the calibrator of step b: a time cross-fit, those calib-slice scores are out
      of time for the train-slice model as new leads are for the refit;
5. per-model valid/calib metrics **of the pre-refit models** (the refit has seen both slices)
   and the model metadata (data window, git commit, trained_at, params hash, features,
   categorical, settings, candidates, refit rows and rounds, plus the caller's metadata).

`fit_calibrate_refit` (steps 4a-c) is also the backtest's procedure
(`leadscore.lifecycle.backtest`), with fixed LightGBM parameters instead of Optuna's.
No paths, no MLflow: the caller saves the models and logs the run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.config import TrainModelConfig
from leadscore.modeling.calibration import choose_calibrator
from leadscore.modeling.estimators import (
    CalibratedModel,
    LightGBMClassifier,
    LogisticClassifier,
    TooFewPositivesError,
    check_positives,
)
from leadscore.modeling.leakage import (
    LeakageReport,
    check_leakage,
    probe_leakage,
    screen_training_table,
)
from leadscore.modeling.metrics import core_metrics
from leadscore.modeling.recency import (
    Settings,
    SettingsChoice,
    candidates,
    choose_settings,
    settings_rows,
)
from leadscore.modeling.tuning import TuningResult, tune_lightgbm
from leadscore.tracking import git_commit, resolve_tracking_uri

log = logging.getLogger(__name__)

MODELS = ("lightgbm", "logistic")


# ---- the recipes: how each kind of model is fitted on the train slice and refitted ----------
@dataclass(frozen=True)
class LightGBMRecipe:
    """LightGBM with fixed parameters: fitted with early stopping on the valid slice, refitted
    with the rounds scaled by the row ratio and no early stopping."""

    features: list[str]
    categorical: list[str]
    params: dict
    seed: int
    num_threads: int = 1
    max_boost_rounds: int = 2000
    early_stopping_rounds: int = 50
    additive: bool = False
    monotone_increasing: tuple[str, ...] = ()
    kind: str = "lightgbm"

    @classmethod
    def from_config(cls, cfg: TrainModelConfig, params: dict, *, features: list[str],
                    categorical: list[str], seed: int) -> LightGBMRecipe:
        """`params` (tuned or fixed) with the learning rate, rounds, threads and constraints
        of `cfg` (a `learning_rate` in `params` wins)."""
        return cls(list(features), list(categorical), {"learning_rate": cfg.learning_rate, **params},
                   seed, cfg.num_threads, cfg.max_boost_rounds, cfg.early_stopping_rounds,
                   cfg.additive, tuple(cfg.monotone_increasing))

    def estimator(self, max_boost_rounds: int | None = None) -> LightGBMClassifier:
        return LightGBMClassifier(
            feature_names=self.features, categorical_features=self.categorical,
            params=dict(self.params), max_boost_rounds=max_boost_rounds or self.max_boost_rounds,
            early_stopping_rounds=self.early_stopping_rounds, seed=self.seed,
            num_threads=self.num_threads, additive=self.additive,
            monotone_increasing=self.monotone_increasing)

    def fit(self, rows: pd.DataFrame, weights, valid: pd.DataFrame, label: str) -> LightGBMClassifier:
        return self.estimator().fit(rows, rows[label], eval_set=(valid, valid[label]),
                                    sample_weight=weights)

    def refit_rounds(self, model: LightGBMClassifier, refit_rows: int, train_rows: int) -> int:
        """best_iteration x (refit rows / train rows), at least 1."""
        return max(1, round(model.best_iteration_ * refit_rows / train_rows))

    def refit(self, model: LightGBMClassifier, rows: pd.DataFrame, weights, *, train_rows: int,
              label: str) -> tuple[LightGBMClassifier, int]:
        rounds = self.refit_rounds(model, len(rows), train_rows)
        return self.estimator(rounds).fit(rows, rows[label], sample_weight=weights), rounds


@dataclass(frozen=True)
class LogisticRecipe:
    """The logistic-regression check: the same fit on the train slice and on the refit rows."""

    features: list[str]
    categorical: list[str]
    C: float = 0.1
    kind: str = "logistic"

    def estimator(self) -> LogisticClassifier:
        return LogisticClassifier(feature_names=self.features,
                                  categorical_features=self.categorical, C=self.C)

    def fit(self, rows: pd.DataFrame, weights, valid: pd.DataFrame, label: str) -> LogisticClassifier:
        return self.estimator().fit(rows, rows[label], sample_weight=weights)

    def refit(self, model: LogisticClassifier, rows: pd.DataFrame, weights, *, train_rows: int,
              label: str) -> tuple[LogisticClassifier, None]:
        return self.estimator().fit(rows, rows[label], sample_weight=weights), None


Recipe = LightGBMRecipe | LogisticRecipe


@dataclass
class ModelFit:
    """One kind of model through settings choice, calibration and (optionally) refit."""

    kind: str
    choice: SettingsChoice
    model: CalibratedModel  # fitted on the train slice, calibrated on calib (pre-refit)
    calibration: dict  # choose_calibrator's report
    refit: CalibratedModel | None = None  # refitted on the mature rows, same calibrator
    refit_info: dict | None = None  # rows, positives, as_of window, rounds

    @property
    def shipped(self) -> CalibratedModel:
        """The refit when there is one, else the train-slice model."""
        return self.refit if self.refit is not None else self.model

    def summary(self) -> dict:
        """settings (chosen), candidates, skipped, train_rows and refit (None: no refit)."""
        return {"settings": self.choice.settings.to_dict(), "candidates": self.choice.candidates,
                "skipped": self.choice.skipped, "train_rows": self.choice.train_rows,
                "refit": self.refit_info}


def _window(rows: pd.DataFrame, label: str, as_of_col: str = "as_of") -> dict:
    out = {"rows": int(len(rows)), "positives": int(rows[label].sum())}
    if as_of_col in rows.columns and len(rows):
        as_of = pd.to_datetime(rows[as_of_col])
        out |= {"as_of_first": str(as_of.min().date()), "as_of_last": str(as_of.max().date())}
    return out


def fit_calibrate_refit(
    recipe: Recipe,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    calib: pd.DataFrame,
    *,
    settings: Sequence[Settings],
    calibration_methods: Sequence[str],
    calibration_folds: int,
    seed: int,
    refit_rows: pd.DataFrame | None = None,
    calibration_groups: str | None = "lead_id",
    label: str = "label",
    metadata: dict | None = None,
) -> ModelFit:
    """Choose the recency settings on `valid` (each candidate fitted on `train`), calibrate
    the chosen model on `calib`, and with `refit_rows` refit it on those rows (chosen window,
    weighted; LightGBM: rounds scaled by the row ratio) keeping that calibrator.

    The one implementation of this sequence: `train_models` and the backtest both call it.
    """
    choice = choose_settings(lambda rows, w: recipe.fit(rows, w, valid, label), train, valid,
                             settings, label=label, name=recipe.kind)
    groups = (calib[calibration_groups].to_numpy()
              if calibration_groups and calibration_groups in calib else None)
    calibrator, report = choose_calibrator(
        choice.model.decision_function(calib), calib[label], methods=calibration_methods,
        n_folds=calibration_folds, seed=seed, groups=groups)
    meta = {**(metadata or {}), "kind": recipe.kind, "calibration": report}
    fit = ModelFit(recipe.kind, choice, CalibratedModel(choice.model, calibrator, meta), report)
    if refit_rows is None:
        return fit
    rows, weights = settings_rows(refit_rows, choice.settings)
    if rows.empty or rows[label].nunique() < 2:
        raise ValueError(f"{recipe.kind} refit: {len(rows)} rows with "
                         f"{int(rows[label].sum()) if len(rows) else 0} positives; both classes "
                         f"are needed")
    estimator, rounds = recipe.refit(choice.model, rows, weights, train_rows=choice.train_rows,
                                     label=label)
    fit.refit_info = {**_window(rows, label), "rounds": rounds}
    refit = CalibratedModel(estimator, calibrator, dict(meta))
    kept, why = refit_keeps_calibration(fit.model, refit, calib, label)
    fit.refit_info |= {"kept": kept, "check": why}
    if not kept:  # the refit's scores moved off the calibrator: ship the train-slice model
        log.warning("%s refit not shipped: %s", recipe.kind, why)
        return fit
    fit.refit = refit
    log.info("%s refit on %d rows (%s)%s, calibrator kept", recipe.kind, len(rows),
             choice.settings, f", {rounds} rounds" if rounds is not None else "")
    return fit


def refit_keeps_calibration(model: CalibratedModel, refit: CalibratedModel, calib: pd.DataFrame,
                            label: str = "label") -> tuple[bool, str]:
    """Whether the refit, with the calibrator fitted on `model`'s scores, still fits `calib`:
    its calibrated log loss there must not be worse than `model`'s. The refit has seen the
    calib rows, so a worse figure means its scores sit on another scale than the calibrator
    learned (a time-ordered file whose later rows differ: every score lands on one step)."""
    from sklearn.metrics import log_loss

    y = calib[label].to_numpy(dtype=int)
    if len(np.unique(y)) < 2:
        return True, "calib slice has one class: not checked"
    before = log_loss(y, np.clip(model.predict_proba(calib)[:, 1], 1e-6, 1 - 1e-6), labels=[0, 1])
    after = log_loss(y, np.clip(refit.predict_proba(calib)[:, 1], 1e-6, 1 - 1e-6), labels=[0, 1])
    text = f"calibrated log loss on calib {after:.5f} after the refit, {before:.5f} before"
    return after <= before, text


# ---- the training sequence ------------------------------------------------------------------
@dataclass
class TrainResult:
    """The calibrated models and what training measured; or, status ``"fallback"``, why no
    model was trained. `lightgbm` / `logistic` are the shipped models: the refits when
    training refitted, else the train-slice models; `fits` holds both."""

    status: str  # "trained" | "fallback"
    features: list[str]
    categorical: list[str]
    reason: str | None = None  # why the fallback
    lightgbm: CalibratedModel | None = None
    logistic: CalibratedModel | None = None
    tuning: TuningResult | None = None
    leakage: LeakageReport | None = None  # None when the guards are off (or fallback)
    metrics: dict = field(default_factory=dict)  # per model: valid, calib, calibration (pre-refit)
    fits: dict[str, ModelFit] = field(default_factory=dict)

    @property
    def fallback(self) -> bool:
        return self.status == "fallback"

    @property
    def models(self) -> dict[str, CalibratedModel]:
        return {"lightgbm": self.lightgbm, "logistic": self.logistic}

    def run_metrics(self) -> dict:
        """The headline numbers of a run (for MLflow): per model the valid and calib metrics
        (pre-refit), the Optuna trial count, LightGBM's best iteration (early stopping on the
        train slice) and, per refitted model, its rows (and LightGBM's rounds)."""
        out = {**{k: {"valid": self.metrics[k]["valid"], "calib": self.metrics[k]["calib"]}
                  for k in MODELS},
               "optuna_trials": self.tuning.n_trials,
               "best_iteration": self.fits["lightgbm"].choice.model.best_iteration_}
        refit = {k: {"rows": f.refit_info["rows"], **({"rounds": f.refit_info["rounds"]}
                                                      if f.refit_info["rounds"] else {})}
                 for k, f in self.fits.items() if f.refit_info is not None}
        return {**out, "refit": refit} if refit else out

    def summary(self) -> dict:
        """features (count), tuning, leakage and per model its metrics, settings, the
        candidate table and the refit; or the fallback reason."""
        if self.fallback:
            return {"status": "fallback_to_rules", "reason": self.reason}
        return {"features": len(self.features), "tuning": self.tuning.summary(),
                "leakage": self.leakage.summary() if self.leakage is not None else None,
                **{k: {**self.metrics[k], **self.fits[k].summary()} for k in MODELS}}


def _guard_leakage(train: pd.DataFrame, valid: pd.DataFrame, features: list[str],
                   categorical: list[str], cfg: TrainModelConfig, seed: int) -> LeakageReport:
    """The probe, then the screen; either raises `LeakageError`."""
    lk = cfg.leakage
    t = time.perf_counter()
    report = probe_leakage(train, valid, features=features, categorical=categorical,
                           max_auc=lk.max_auc, max_random_gap=lk.max_random_gap,
                           max_rows=lk.max_rows, seed=seed, num_threads=cfg.num_threads)
    top = report.features.sort_values("oot_auc", ascending=False).head(3)
    log.info("leakage probe (%.1fs): top out-of-time univariate AUC %s; all features: "
             "out-of-time %.3f, random split %.3f", time.perf_counter() - t,
             ", ".join(f"{f} {a:.3f}" for f, a in zip(top["feature"], top["oot_auc"].round(4),
                                                       strict=True)),
             report.model_oot_auc or float("nan"), report.model_random_auc or float("nan"))
    check_leakage(report)
    # The screen's univariate AUC and missingness rules, with one AUC limit for both guards.
    # The flat-export heuristics are off here: a "dominant column" or a telling missing value
    # (never viewed the pricing page) is honest when our own point-in-time code computed the
    # feature.
    screen = screen_training_table(train, valid, features=features, categorical=categorical,
                                   max_auc=lk.max_auc, dominant_auc=lk.max_auc,
                                   max_missing_auc=1.0, max_rows=lk.max_rows, seed=seed)
    report = report.with_screen(screen)
    check_leakage(report)
    return report


def train_models(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    calib: pd.DataFrame,
    *,
    features: list[str],
    categorical: list[str],
    cfg: TrainModelConfig,
    seed: int,
    data_window: dict[str, str],
    refit_rows: pd.DataFrame | None = None,
    metadata: dict | None = None,
    params_hash: str | None = None,
    calibration_groups: str | None = "lead_id",
    label: str = "label",
) -> TrainResult:
    """Positives check, leakage guards, Optuna, then per model settings, calibration, refit.

    `cfg`: min_positives, fallback_to_rules, the LightGBM and Optuna settings, calibration
    methods and folds, logistic_c, the leakage guards (`cfg.leakage.enabled`), the recency
    candidates (`cfg.recency`) and `cfg.refit`. `refit_rows`: the rows mature before the test
    slice (`Split.mature`), never test rows; the models are refitted on them when given and
    `cfg.refit` is on (None: the shipped models are the train-slice ones).
    `data_window` (`leadscore.modeling.splits.data_window`) and `metadata` (e.g.
    horizon_days and target_stage, or target, positive and source_file) go into every
    model's metadata, with `params_hash` when given. `calibration_groups`: the column whose
    rows stay in one calibration fold (None: stratified folds).
    """
    try:
        check_positives(int(train[label].sum()), cfg.min_positives)
    except TooFewPositivesError as err:
        if not cfg.fallback_to_rules:
            raise
        log.warning("%s\nFalling back to the rule baseline (train_model.fallback_to_rules): "
                    "no LightGBM or logistic model is trained.", err)
        return TrainResult("fallback", list(features), list(categorical), reason=str(err))

    leakage = (_guard_leakage(train, valid, features, categorical, cfg, seed)
               if cfg.leakage.enabled else None)

    opt = cfg.optuna
    tuning = tune_lightgbm(
        train, train[label], valid, valid[label], feature_names=features,
        categorical_features=categorical, seed=seed, num_threads=cfg.num_threads,
        max_boost_rounds=cfg.max_boost_rounds, early_stopping_rounds=cfg.early_stopping_rounds,
        additive=cfg.additive, monotone_increasing=tuple(cfg.monotone_increasing),
        n_trials=opt.n_trials, timeout_s=opt.timeout_s, n_startup_trials=opt.n_startup_trials,
        pruning_warmup_rounds=opt.pruning_warmup_rounds, learning_rate=cfg.learning_rate,
        storage=resolve_tracking_uri(opt.storage) if opt.storage else None)
    recipes = {"lightgbm": LightGBMRecipe.from_config(cfg, tuning.best_params, features=features,
                                                      categorical=categorical, seed=seed),
               "logistic": LogisticRecipe(list(features), list(categorical), cfg.logistic_c)}
    if cfg.refit and refit_rows is None:
        log.info("no refit rows given: the shipped models are the train-slice models")
    refit_on = refit_rows if cfg.refit else None

    common = {"data_window": data_window, "git_commit": git_commit(),
              "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "features": features, "categorical": categorical, **(metadata or {})}
    if params_hash is not None:
        common["params_hash"] = params_hash
    settings = candidates(cfg.recency.window_months, cfg.recency.half_life_days)
    fits, metrics = {}, {}
    for key in MODELS:
        t = time.perf_counter()
        fit = fit_calibrate_refit(
            recipes[key], train, valid, calib, settings=settings,
            calibration_methods=cfg.calibration_methods, calibration_folds=cfg.calibration_folds,
            seed=seed, refit_rows=refit_on, calibration_groups=calibration_groups, label=label,
            metadata=common)
        pre = fit.model
        metrics[key] = {"valid": core_metrics(valid[label], pre.predict_proba(valid)[:, 1]),
                        "calib": core_metrics(calib[label], pre.predict_proba(calib)[:, 1]),
                        "calibration": fit.calibration}
        extra = {"settings": fit.choice.settings.to_dict(),
                 "settings_candidates": fit.choice.candidates, "refit": fit.refit_info}
        if key == "lightgbm":
            extra |= {"best_iteration": pre.model.best_iteration_,
                      "best_params": tuning.best_params}
        for model in {id(pre): pre, id(fit.shipped): fit.shipped}.values():
            model.metadata.update(extra)
        fits[key] = fit
        log.info("%s (%.1fs): valid ROC-AUC %.4f (train-slice model), calibration %s "
                 "(cross-fitted log loss %s), settings: %s, %s", key, time.perf_counter() - t,
                 metrics[key]["valid"]["roc_auc"], fit.calibration["chosen"],
                 {k: round(v, 5) for k, v in fit.calibration["cv_log_loss"].items()},
                 fit.choice.settings,
                 (f"refit on {fit.refit_info['rows']} rows" if fit.refit is not None
                 else "refit not shipped (calibration check)" if fit.refit_info else "no refit"))
    return TrainResult("trained", list(features), list(categorical),
                       lightgbm=fits["lightgbm"].shipped, logistic=fits["logistic"].shipped,
                       tuning=tuning, leakage=leakage, metrics=metrics, fits=fits)
