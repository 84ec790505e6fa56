"""Stage `train_rules`: the points-rule baseline, calibrated on the calibration slice.

Inputs:  the training table (Parquet, stage `features`).
Outputs: the rule scorer as JSON (points table + isotonic points -> probability map),
         metrics/train_rules.json (calibration-slice metrics, MQL share, grade mix).
Params:  seed, features.horizon_days, split.*, train_rules.* (points table, bands, MQL
         threshold), mlflow.*.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from leadscore.config import ConfigError, load_params
from leadscore.io import write_json
from leadscore.logs import setup_logging
from leadscore.modeling.baseline import PointsRuleScorer, save_rules
from leadscore.modeling.metrics import core_metrics
from leadscore.modeling.splits import SplitError, data_window, split_from_params
from leadscore.tracking import git_commit, log_run, setup_mlflow

log = logging.getLogger("leadscore.train_rules")
app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    train: Path = typer.Option(Path("data/processed/train.parquet"), help="training table"),
    out: Path = typer.Option(Path("models/rules.json"), help="rule scorer (JSON)"),
    metrics: Path = typer.Option(Path("metrics/train_rules.json"), help="summary metrics"),
    track: bool = typer.Option(True, help="log the run to MLflow"),
) -> None:
    setup_logging()
    try:
        p = load_params(params)
        if not train.exists():
            raise FileNotFoundError(f"{train}: training table not found (run the features stage)")
        split = split_from_params(pd.read_parquet(train), p)
        calib = split.calib
        rules = PointsRuleScorer.from_config(p.train_rules).fit(calib, calib["label"])
        proba = rules.predict_proba(calib)[:, 1]
        mql = rules.predict(calib) == 1
        grades = rules.grade(calib)
        summary = {
            "calib": core_metrics(calib["label"], proba),
            "calib_rows": len(calib),
            "mql_share": float(np.mean(mql)),
            "mql_conversion": float(calib["label"][mql].mean()) if mql.any() else None,
            "grade_share": grades["rule_grade"].value_counts(normalize=True).sort_index().round(4).to_dict(),
            "missing_features": rules.missing_features_,
        }
    except (ConfigError, FileNotFoundError, SplitError, ValueError) as err:
        log.error("%s", err)
        raise typer.Exit(1) from None
    save_rules(rules, out)
    write_json(summary, metrics)
    log.info("rules: calibration slice %d rows, ROC-AUC %.4f, %.1f%% MQL (converting %.1f%%)",
             len(calib), summary["calib"]["roc_auc"], 100 * summary["mql_share"],
             100 * (summary["mql_conversion"] or 0))
    if track:
        setup_mlflow(p.mlflow.tracking_uri, p.mlflow.experiment)
        log_run(run_name="train_rules", params={"train_rules": p.train_rules.model_dump(),
                                                "split": p.split.model_dump(), "seed": p.seed},
                metrics={"calib": summary["calib"], "mql_share": summary["mql_share"]},
                tags={"stage": "train_rules", "git_commit": git_commit(), **data_window(split)},
                artifacts={"model": out}, dicts={"summary.json": summary})


if __name__ == "__main__":
    app()
