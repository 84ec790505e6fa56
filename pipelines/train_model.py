"""Stage `train_model`: leakage probe, Optuna-tuned LightGBM, calibration, logistic check.

Inputs:  the training table (Parquet) and the feature catalog (JSON), stage `features`.
Outputs: models/lightgbm/ (model.txt LightGBM text model, estimator.json, calibrator.json,
         metadata.json, importance.csv, tuning.json), models/logistic/ (model.json,
         calibrator.json, metadata.json), metrics/train_model.json. With too few positives
         and train_model.fallback_to_rules, both folders hold only a fallback marker.
Params:  seed, features.horizon_days, split.*, train_model.* (min_positives,
         fallback_to_rules, num_threads, boosting rounds, additive (single-feature trees,
         for fast exact explanations), optuna budget, calibration,
         logistic_c, leakage thresholds), mlflow.*.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from pathlib import Path

import pandas as pd
import typer

from leadscore.config import load_params
from leadscore.errors import ConfigError
from leadscore.features.catalog import load_catalog
from leadscore.io import atomic_path, write_json
from leadscore.logs import setup_logging
from leadscore.modeling.calibration import choose_calibrator
from leadscore.modeling.estimators import (
    CalibratedModel,
    LogisticClassifier,
    TooFewPositivesError,
    check_positives,
    model_features,
    save_fallback,
    save_model,
)
from leadscore.modeling.leakage import LeakageError, check_leakage, probe_leakage
from leadscore.modeling.metrics import core_metrics
from leadscore.modeling.screen import ScreenError, check_screen, screen_training_table
from leadscore.modeling.splits import SplitError, data_window, split_from_params
from leadscore.modeling.tuning import fit_tuned_lightgbm
from leadscore.tracking import git_commit, log_run, setup_mlflow

log = logging.getLogger("leadscore.train_model")
app = typer.Typer(add_completion=False)


def _params_hash(p) -> str:
    blob = json.dumps(p.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    train: Path = typer.Option(Path("data/processed/train.parquet"), help="training table"),
    catalog: Path = typer.Option(Path("data/processed/feature_catalog.json"), help="feature catalog"),
    out: Path = typer.Option(Path("models/lightgbm"), help="LightGBM model folder"),
    logistic_out: Path = typer.Option(Path("models/logistic"), help="logistic model folder"),
    metrics: Path = typer.Option(Path("metrics/train_model.json"), help="summary metrics"),
    track: bool = typer.Option(True, help="log the run to MLflow"),
) -> None:
    setup_logging()
    t0 = time.perf_counter()
    try:
        p = load_params(params)
        cfg = p.train_model
        for f in (train, catalog):
            if not f.exists():
                raise FileNotFoundError(f"{f}: not found (run the features stage)")
        cat = load_catalog(catalog)
        split = split_from_params(pd.read_parquet(train), p)
        names, cats = model_features(split.train, cat)
        tr, va, ca = split.train, split.valid, split.calib
        for name, w in split.windows.items():
            log.info("%-5s as_of %s..%s: %d rows, %d positives", name, w["as_of_first"],
                     w["as_of_last"], w["rows"], w["positives"])
        try:
            check_positives(int(tr["label"].sum()), cfg.min_positives)
        except TooFewPositivesError as err:
            if not cfg.fallback_to_rules:
                raise
            log.warning("%s\nFalling back to the rule baseline (train_model.fallback_to_rules): "
                        "no LightGBM or logistic model is trained.", err)
            for folder in (out, logistic_out):
                save_fallback(folder, str(err))
            write_json({"status": "fallback_to_rules", "reason": str(err),
                        "windows": split.windows}, metrics)
            return

        leakage = None
        if cfg.leakage.enabled:
            t = time.perf_counter()
            report = probe_leakage(tr, va, features=names, categorical=cats,
                                   max_auc=cfg.leakage.max_auc,
                                   max_random_gap=cfg.leakage.max_random_gap,
                                   max_rows=cfg.leakage.max_rows, seed=p.seed,
                                   num_threads=cfg.num_threads)
            leakage = report.summary()
            log.info("leakage probe (%.1fs): top out-of-time univariate AUC %s; all features: "
                     "out-of-time %.3f, random split %.3f", time.perf_counter() - t,
                     ", ".join(f"{r['feature']} {r['oot_auc']:.3f}" for r in leakage["top_features"][:3]),
                     report.model_oot_auc or float("nan"), report.model_random_auc or float("nan"))
            check_leakage(report)
            # leakage screen (leadscore.modeling.screen): univariate AUC and missingness rules
            # One AUC limit for both guards. The flat-export heuristics are off here: a
            # "dominant column" or a telling missing value (never viewed the pricing page) is
            # honest when our own point-in-time code computed the feature.
            screen = screen_training_table(tr, va, features=names, categorical=cats,
                                           max_auc=cfg.leakage.max_auc, dominant_auc=cfg.leakage.max_auc,
                                           max_missing_auc=1.0, max_rows=cfg.leakage.max_rows,
                                           seed=p.seed)
            leakage["screen"] = screen.summary()
            check_screen(screen)

        tuning, lgbm = fit_tuned_lightgbm(
            tr, va, feature_names=names, categorical_features=cats, seed=p.seed,
            num_threads=cfg.num_threads, max_boost_rounds=cfg.max_boost_rounds,
            early_stopping_rounds=cfg.early_stopping_rounds, additive=cfg.additive,
            n_trials=cfg.optuna.n_trials, timeout_s=cfg.optuna.timeout_s,
            n_startup_trials=cfg.optuna.n_startup_trials,
            pruning_warmup_rounds=cfg.optuna.pruning_warmup_rounds, learning_rate=cfg.learning_rate)
        logistic = LogisticClassifier(feature_names=names, categorical_features=cats,
                                      C=cfg.logistic_c).fit(tr, tr["label"])

        groups = ca["lead_id"].to_numpy() if "lead_id" in ca else None
        summary: dict = {"windows": split.windows, "embargo_months": split.embargo_months,
                         "features": len(names), "tuning": tuning.summary(), "leakage": leakage}
        common = {"data_window": data_window(split), "git_commit": git_commit(),
                  "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                  "params_hash": _params_hash(p), "features": names, "categorical": cats,
                  "horizon_days": p.features.horizon_days, "target_stage": p.features.target_stage}
        fitted = {}
        for key, est in (("lightgbm", lgbm), ("logistic", logistic)):
            calibrator, cal_report = choose_calibrator(
                est.decision_function(ca), ca["label"], methods=cfg.calibration_methods,
                n_folds=cfg.calibration_folds, seed=p.seed, groups=groups)
            model = CalibratedModel(est, calibrator, {**common, "kind": key, "calibration": cal_report})
            fitted[key] = model
            summary[key] = {
                "valid": core_metrics(va["label"], model.predict_proba(va)[:, 1]),
                "calib": core_metrics(ca["label"], model.predict_proba(ca)[:, 1]),
                "calibration": cal_report,
            }
            log.info("%s: valid ROC-AUC %.4f, calibration %s (cross-fitted log loss %s)", key,
                     summary[key]["valid"]["roc_auc"], cal_report["chosen"],
                     {k: round(v, 5) for k, v in cal_report["cv_log_loss"].items()})
        fitted["lightgbm"].metadata.update({"best_iteration": lgbm.best_iteration_,
                                            "best_params": tuning.best_params})
    except (ConfigError, FileNotFoundError, SplitError, TooFewPositivesError, LeakageError,
            ScreenError, ValueError, RuntimeError) as err:
        log.error("%s", err)
        raise typer.Exit(1) from None

    save_model(fitted["lightgbm"], out)
    save_model(fitted["logistic"], logistic_out)
    importance = lgbm.feature_importance()
    with atomic_path(out / "importance.csv") as tmp:
        importance.to_csv(tmp, index=False)
    write_json(tuning.summary(), out / "tuning.json")
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(summary, metrics)
    log.info("train_model done in %.1fs; top features by gain: %s", summary["seconds"],
             ", ".join(importance["feature"].head(5)))
    if track:
        setup_mlflow(p.mlflow.tracking_uri, p.mlflow.experiment)
        log_run(
            run_name="train_model",
            params={"seed": p.seed, "split": p.split.model_dump(),
                    "train_model": p.train_model.model_dump(mode="json"),
                    "features.horizon_days": p.features.horizon_days,
                    "best": tuning.best_params},
            metrics={k: {"valid": summary[k]["valid"], "calib": summary[k]["calib"]}
                     for k in ("lightgbm", "logistic")} | {"optuna_trials": tuning.n_trials,
                                                            "best_iteration": lgbm.best_iteration_},
            tags={"stage": "train_model", "git_commit": common["git_commit"],
                  "params_hash": common["params_hash"], **common["data_window"]},
            artifacts={"lightgbm": out, "logistic": logistic_out},
            dicts={"optuna_study.json": tuning.summary(), "leakage.json": leakage or {},
                   "summary.json": summary},
        )


if __name__ == "__main__":
    app()
