"""Stage `points`: the integer points table learned from the additive LightGBM model, measured
out of time against that model and the hand-written rules (`leadscore.modeling.points`).

Inputs:  the training table (train slice: the bands; calib slice: grade bands, MQL threshold
         at capacity, points -> probability; test slice: measured only), the feature catalog,
         models/lightgbm/, models/rules.json.
Outputs: models/points.yaml (the flat mapping's `rules:` block, the shape of `train_rules`),
         models/points.csv (one row per field and condition), reports/points.json (test
         ROC-AUC of the table, the model and the rules with bootstrap CIs; the MQL threshold
         and the leads a month it hands over; headline figures: metrics/points.json).
Params:  seed, features.horizon_days, features.data_cutoff, split.*, points.*,
         evaluate.reps, evaluate.leads_per_rep, evaluate.n_bootstrap,
         explain.fit_shares, explain.engagement_shares, mlflow.*.
"""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.features.catalog import load_catalog
from leadscore.io import read_parquet
from leadscore.modeling.baseline import load_rules
from leadscore.modeling.estimators import is_fallback, load_model
from leadscore.modeling.points import points_release, points_summary, write_points
from leadscore.modeling.splits import data_window, split_from_params
from leadscore.stage import stage

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    train: Path = typer.Option(Path("data/processed/train.parquet"), help="training table"),
    catalog: Path = typer.Option(Path("data/processed/feature_catalog.json"), help="feature catalog"),
    lightgbm: Path = typer.Option(Path("models/lightgbm"), help="LightGBM model folder"),
    rules: Path = typer.Option(Path("models/rules.json"), help="hand-written rule scorer"),
    out_yaml: Path = typer.Option(Path("models/points.yaml"), help="learned table (YAML, output)"),
    out_csv: Path = typer.Option(Path("models/points.csv"), help="learned table (CSV, output)"),
    metrics: Path = typer.Option(Path("metrics/points.json"), help="headline figures (output)"),
    details: Path | None = typer.Option(None, help="figures (output) (dvc.yaml: reports/points.json; none: all in --metrics)"),
    track: bool = typer.Option(True, help="log the run to MLflow"),
) -> None:
    with stage("points", params) as s:
        s.require(train, catalog, lightgbm, rules)
        p = s.params
        split = split_from_params(read_parquet(train), p)
        model = None if is_fallback(lightgbm) else load_model(lightgbm)
        release = points_release(split, model, load_rules(rules), load_catalog(catalog), p)
        write_points(release, out_yaml, out_csv)
        s.write_metrics(release.metrics, metrics, details)
        s.log.info("%s", points_summary(release.metrics))
        m = release.metrics
        s.track(params={"points": p.points.model_dump(), "seed": p.seed},
                metrics={k: m[k] for k in ("roc_auc", "auc_diff_vs_model", "auc_diff_vs_rules") if k in m},
                tags=data_window(split),
                artifacts={"points_yaml": out_yaml, "points_csv": out_csv},
                dicts={"points.json": m}, enabled=track)


if __name__ == "__main__":
    app()
