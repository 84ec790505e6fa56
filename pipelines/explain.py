"""Stage `explain`: grade cut points, the A1-D4 grade matrices, global drivers, examples.

Inputs:  data/processed/train.parquet (calibration slice: cut points; out-of-time test slice:
         reported), the feature catalog, models/{lightgbm,logistic}/, models/rules.json,
         metrics/evaluate.json (the kind that ships: its model is explained; LightGBM when the
         rules ship, for the report's drivers).
Outputs: models/grading.json, reports/grades.json (grade matrices of the model and the rules;
         headline: metrics/grades.json), reports/drivers.json, reports/examples.json,
         plots/dependence*.csv (the report's) and plots/dependence/{numeric,categorical}/ (DVC's).
Params:  seed, features.horizon_days, split.*, explain.*, mlflow.*.
"""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.errors import ModelError
from leadscore.explain.drivers import write_dependence
from leadscore.explain.explanation import explain_model
from leadscore.explain.grades import format_matrix, save_grading
from leadscore.features.catalog import load_catalog
from leadscore.io import read_json, read_parquet, write_json
from leadscore.lifecycle.choose import explained_kind
from leadscore.modeling.baseline import load_rules
from leadscore.modeling.estimators import is_fallback, load_model
from leadscore.modeling.splits import data_window, split_from_params
from leadscore.plots import write_dependence_plots
from leadscore.stage import stage

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    train: Path = typer.Option(Path("data/processed/train.parquet"), help="training table"),
    catalog: Path = typer.Option(Path("data/processed/feature_catalog.json"), help="feature catalog"),
    models: Path = typer.Option(Path("models"), help="folder holding lightgbm/ and logistic/"),
    evaluation: Path = typer.Option(Path("metrics/evaluate.json"), "--evaluate", help="its champion: the kind"),
    rules: Path = typer.Option(Path("models/rules.json"), help="rule scorer"),
    grading: Path = typer.Option(Path("models/grading.json"), help="grade cut points (output)"),
    grades: Path = typer.Option(Path("reports/grades.json"), help="grade matrices (output)"),
    metrics: Path = typer.Option(Path("metrics/grades.json"), help="headline figures (output)"),
    drivers: Path = typer.Option(Path("reports/drivers.json"), help="global drivers (output)"),
    examples: Path = typer.Option(Path("reports/examples.json"), help="example leads (output)"),
    plots: Path = typer.Option(Path("plots"), help="folder for the dependence CSVs"),
    track: bool = typer.Option(True, help="log the run to MLflow"),
) -> None:
    with stage("explain", params) as s:
        s.require(train, catalog, rules, evaluation)
        model = models / (kind := explained_kind(read_json(evaluation)))
        if is_fallback(model):
            raise ModelError(f"{model}: no model (train_model fell back to the rules): nothing to explain")
        p, cfg = s.params, s.params.explain
        split = split_from_params(read_parquet(train), p)
        e = explain_model(split, load_model(model), load_rules(rules), load_catalog(catalog), cfg,
                          p.seed, name=kind)
        cuts, report, ex = e.cuts, e.grades, e.slice
        save_grading(cuts, grading)
        s.write_metrics(report, metrics, grades)
        write_json(ex.summary("test", model=kind), drivers), write_json(e.examples, examples)
        write_dependence(ex.dependence, plots)
        write_dependence_plots(ex.dependence, plots / "dependence")
        s.log.info("grade cut points (calibration slice %s..%s): fit %s, engagement %s", *cuts.calib_window,
                   [round(c, 4) for c in cuts.fit_cuts], [round(c, 4) for c in cuts.engagement_cuts])
        for key, title in ((kind, f"{kind} grades"), ("rules", "points-rule grades")):
            s.log.info("%s", format_matrix(report[key], f"{title}, out-of-time test slice: conversion rate (leads)"))
        ex.log_summary(s.log)
        s.track(params={"seed": p.seed, "explain": cfg.model_dump(), "explainer": ex.summary()["explainer"]},
                metrics={f"{k}_monotonic": float(v["monotonic"]) for k, v in report.items()}
                | {f"{k}_violations": len(v["violations"]) for k, v in report.items()}
                | {"additivity_max_error": ex.additivity, "explain_rows_per_s": ex.rows_per_s},
                tags=data_window(split), artifacts={"grading": grading, "drivers": drivers},
                dicts={"grades.json": report}, enabled=track)


if __name__ == "__main__":
    app()
