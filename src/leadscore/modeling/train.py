"""Train the conversion models: one function for the pipeline stage and for flat mode.

`train_models` runs, in this order:

1. **positives check**: too few positive labels in the train slice raise
   `TooFewPositivesError`, or, with `cfg.fallback_to_rules`, return a result whose status is
   ``"fallback"`` with the reason (no model is trained; the caller keeps the rule baseline);
2. **leakage guards** (with `cfg.leakage.enabled`): the probe, then the screen
   (`leadscore.modeling.leakage`); either may refuse with `LeakageError`;
3. **LightGBM** tuned with Optuna on the valid slice (`fit_tuned_lightgbm`), then the
   **logistic regression** check, both fitted on the train slice;
4. **calibration** per model on the calib slice (`choose_calibrator`; folds grouped by the
   `calibration_groups` column when it is given and present);
5. per-model valid/calib metrics and the model metadata (data window, git commit,
   trained_at, params hash, features, categorical, plus the caller's extra metadata).

No paths, no MLflow: the caller saves the models and logs the run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

import pandas as pd

from leadscore.config import TrainModelConfig
from leadscore.modeling.calibration import choose_calibrator
from leadscore.modeling.estimators import (
    CalibratedModel,
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
from leadscore.modeling.tuning import TuningResult, fit_tuned_lightgbm
from leadscore.tracking import git_commit

log = logging.getLogger(__name__)

MODELS = ("lightgbm", "logistic")


@dataclass
class TrainResult:
    """The calibrated models and what training measured; or, status ``"fallback"``, why no
    model was trained."""

    status: str  # "trained" | "fallback"
    features: list[str]
    categorical: list[str]
    reason: str | None = None  # why the fallback
    lightgbm: CalibratedModel | None = None
    logistic: CalibratedModel | None = None
    tuning: TuningResult | None = None
    leakage: LeakageReport | None = None  # None when the guards are off (or fallback)
    metrics: dict = field(default_factory=dict)  # per model: valid, calib, calibration

    @property
    def fallback(self) -> bool:
        return self.status == "fallback"

    @property
    def models(self) -> dict[str, CalibratedModel]:
        return {"lightgbm": self.lightgbm, "logistic": self.logistic}

    def run_metrics(self) -> dict:
        """The headline numbers of a run (for MLflow): per model the valid and calib metrics,
        the Optuna trial count and LightGBM's best iteration."""
        return {**{k: {"valid": self.metrics[k]["valid"], "calib": self.metrics[k]["calib"]}
                   for k in MODELS},
                "optuna_trials": self.tuning.n_trials,
                "best_iteration": self.lightgbm.model.best_iteration_}

    def summary(self) -> dict:
        """features (count), tuning, leakage and per-model metrics; or the fallback reason."""
        if self.fallback:
            return {"status": "fallback_to_rules", "reason": self.reason}
        return {"features": len(self.features), "tuning": self.tuning.summary(),
                "leakage": self.leakage.summary() if self.leakage is not None else None,
                **{k: self.metrics[k] for k in MODELS}}


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
    metadata: dict | None = None,
    params_hash: str | None = None,
    calibration_groups: str | None = "lead_id",
    label: str = "label",
) -> TrainResult:
    """Positives check, leakage guards, tuned LightGBM, logistic check, calibration.

    `cfg`: min_positives, fallback_to_rules, the LightGBM and Optuna settings, calibration
    methods and folds, logistic_c and the leakage guards (`cfg.leakage.enabled`).
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
    tuning, lgbm = fit_tuned_lightgbm(
        train, valid, feature_names=features, categorical_features=categorical, seed=seed,
        num_threads=cfg.num_threads, max_boost_rounds=cfg.max_boost_rounds,
        early_stopping_rounds=cfg.early_stopping_rounds, additive=cfg.additive,
        monotone_increasing=tuple(cfg.monotone_increasing), label=label,
        n_trials=opt.n_trials, timeout_s=opt.timeout_s, n_startup_trials=opt.n_startup_trials,
        pruning_warmup_rounds=opt.pruning_warmup_rounds, learning_rate=cfg.learning_rate)
    logistic = LogisticClassifier(feature_names=features, categorical_features=categorical,
                                  C=cfg.logistic_c).fit(train, train[label])

    common = {"data_window": data_window, "git_commit": git_commit(),
              "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "features": features, "categorical": categorical, **(metadata or {})}
    if params_hash is not None:
        common["params_hash"] = params_hash
    groups = (calib[calibration_groups].to_numpy()
              if calibration_groups and calibration_groups in calib else None)
    fitted, metrics = {}, {}
    for key, est in (("lightgbm", lgbm), ("logistic", logistic)):
        calibrator, cal_report = choose_calibrator(
            est.decision_function(calib), calib[label], methods=cfg.calibration_methods,
            n_folds=cfg.calibration_folds, seed=seed, groups=groups)
        fitted[key] = CalibratedModel(est, calibrator, {**common, "kind": key,
                                                        "calibration": cal_report})
        metrics[key] = {"valid": core_metrics(valid[label], fitted[key].predict_proba(valid)[:, 1]),
                        "calib": core_metrics(calib[label], fitted[key].predict_proba(calib)[:, 1]),
                        "calibration": cal_report}
        log.info("%s: valid ROC-AUC %.4f, calibration %s (cross-fitted log loss %s)", key,
                 metrics[key]["valid"]["roc_auc"], cal_report["chosen"],
                 {k: round(v, 5) for k, v in cal_report["cv_log_loss"].items()})
    fitted["lightgbm"].metadata.update({"best_iteration": lgbm.best_iteration_,
                                        "best_params": tuning.best_params})
    return TrainResult("trained", features, categorical, lightgbm=fitted["lightgbm"],
                       logistic=fitted["logistic"], tuning=tuning, leakage=leakage,
                       metrics=metrics)
