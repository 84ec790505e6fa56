"""Stage `train_rules`: the points-rule baseline, calibrated on the calibration slice.

Inputs:  the training table (Parquet, stage `features`).
Outputs: the rule estimator as JSON (points table + isotonic points -> probability map),
         reports/train_rules.json (calibration-slice metrics, MQL share, grade mix) and its
         headline figures in metrics/train_rules.json.
Params:  seed, features.horizon_days, split.*, train_rules.* (points table, bands, MQL
         threshold), mlflow.*.
"""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.io import read_parquet
from leadscore.modeling.baseline import PointsRuleClassifier, rules_summary, save_rules
from leadscore.modeling.metrics import core_metrics
from leadscore.modeling.splits import data_window, split_from_params
from leadscore.stage import stage

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    train: Path = typer.Option(Path("data/processed/train.parquet"), help="training table"),
    out: Path = typer.Option(Path("models/rules.json"), help="rule estimator (JSON)"),
    metrics: Path = typer.Option(Path("metrics/train_rules.json"), help="headline figures"),
    details: Path | None = typer.Option(None, help="summary (dvc.yaml: reports/train_rules.json; none: all in --metrics)"),
    track: bool = typer.Option(True, help="log the run to MLflow"),
) -> None:
    with stage("train_rules", params) as s:
        s.require(train)
        p = s.params
        split = split_from_params(read_parquet(train), p)
        rules = PointsRuleClassifier.from_config(p.train_rules).fit(split.calib, split.calib["label"])
        summary = {**rules_summary(rules, split.calib),
                   "valid": core_metrics(split.valid["label"], rules.predict_proba(split.valid)[:, 1])}
        save_rules(rules, out)
        s.write_metrics(summary, metrics, details)
        s.log.info("rules: calibration slice %d rows, ROC-AUC %.4f, %.1f%% MQL (converting %.1f%%)",
                   summary["calib_rows"], summary["calib"]["roc_auc"], 100 * summary["mql_share"],
                   100 * (summary["mql_conversion"] or 0))
        s.track(params={"train_rules": p.train_rules.model_dump(), "split": p.split.model_dump(),
                        "seed": p.seed},
                metrics={"calib": summary["calib"], "valid": summary["valid"], "mql_share": summary["mql_share"]},
                tags=data_window(split), artifacts={"model": out}, dicts={"summary.json": summary},
                enabled=track)


if __name__ == "__main__":
    app()
