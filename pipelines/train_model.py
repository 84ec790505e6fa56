"""Stage `train_model`: leakage probe, Optuna-tuned LightGBM, recency settings, calibration,
logistic check, and the refit of both models on every row mature before the test slice.

Inputs:  the training table (Parquet) and the feature catalog (JSON), stage `features`.
Outputs: models/lightgbm/ (model.txt, estimator.json, calibrator.json, metadata.json,
         importance.csv, tuning.json), models/logistic/, reports/train_model.json (the record:
         every Optuna trial, leakage tables) and its headline in metrics/train_model.json; the
         Optuna study in `train_model.optuna.storage`. With too few positives
         and train_model.fallback_to_rules, both folders hold only a fallback marker.
Params:  seed, features.horizon_days, split.* (cutoff: the retrain date), train_model.*
         (min_positives, fallback_to_rules, num_threads, boosting rounds, additive
         (single-feature trees, for fast exact explanations), optuna budget, calibration,
         logistic_c, leakage thresholds, recency candidates, refit), mlflow.*.
"""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.features.catalog import load_catalog
from leadscore.io import read_parquet, write_csv, write_json
from leadscore.modeling.estimators import model_features, save_fallback, save_model
from leadscore.modeling.splits import data_window, log_windows, split_from_params
from leadscore.modeling.train import train_models
from leadscore.stage import params_hash, stage

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    train: Path = typer.Option(Path("data/processed/train.parquet"), help="training table"),
    catalog: Path = typer.Option(Path("data/processed/feature_catalog.json"), help="feature catalog"),
    out: Path = typer.Option(Path("models/lightgbm"), help="LightGBM model folder"),
    logistic_out: Path = typer.Option(Path("models/logistic"), help="logistic model folder"),
    metrics: Path = typer.Option(Path("metrics/train_model.json"), help="headline figures"),
    details: Path | None = typer.Option(None, help="training record (dvc.yaml: reports/train_model.json; none: all in --metrics)"),
    track: bool = typer.Option(True, help="log the run to MLflow"),
) -> None:
    with stage("train_model", params) as s:
        s.require(train, catalog)
        p = s.params
        split = split_from_params(read_parquet(train), p)
        names, cats = model_features(split.train, load_catalog(catalog))
        log_windows(split, s.log)
        s.log.info("mature before the test slice (the refit's rows): %d rows", len(split.mature))
        meta = {"horizon_days": p.features.horizon_days, "target_stage": p.features.target_stage}
        r = train_models(split.train, split.valid, split.calib, features=names, categorical=cats,
                         cfg=p.train_model, seed=p.seed, data_window=data_window(split),
                         refit_rows=split.mature, params_hash=params_hash(p), metadata=meta)
        if r.fallback:
            for folder in (out, logistic_out):
                save_fallback(folder, r.reason)
            s.write_metrics({**r.summary(), "windows": split.windows}, metrics, details)
            return
        save_model(r.lightgbm, out), save_model(r.logistic, logistic_out)
        importance = r.lightgbm.model.feature_importance()
        write_csv(importance, out / "importance.csv", float_format=None)
        write_json(r.tuning.summary(), out / "tuning.json")
        summary = {"windows": split.windows, "embargo_months": split.embargo_months,
                   **r.summary(), "seconds": s.seconds()}
        s.write_metrics(summary, metrics, details)
        s.log.info("train_model done in %.1fs; top features by gain: %s; Optuna study %s",
                   summary["seconds"], ", ".join(importance["feature"].head(5)), r.tuning.study_name)
        s.track(params={"seed": p.seed, "split": p.split.model_dump(mode="json"), "best": r.tuning.best_params,
                        "train_model": p.train_model.model_dump(mode="json"), "features.horizon_days": p.features.horizon_days},
                metrics=r.run_metrics(),
                tags={"params_hash": params_hash(p), **data_window(split),
                      "optuna_study": r.tuning.study_name, "optuna_storage": str(r.tuning.storage)},
                artifacts={"lightgbm": out, "logistic": logistic_out},
                dicts={"optuna_study.json": r.tuning.summary(),
                       "leakage.json": summary["leakage"] or {}, "summary.json": summary},
                enabled=track)

if __name__ == "__main__":
    app()
