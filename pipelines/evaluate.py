"""Stage `evaluate`: rules vs logistic regression vs LightGBM on the out-of-time test slice
(`leadscore.modeling.evaluate.evaluate_release`).

Inputs:  the training table (only its test slice is scored), models/rules.json, models/{logistic,
         lightgbm}/, metrics/train_{model,rules}.json (validation figures: which kind ships), the
         feature catalog (grade groups), --crm (the validated CRM: its optional mql_feedback).
Outputs: reports/evaluate.json (per model: metrics with CIs; auc_diff_ci, test, rules_grades,
         lightgbm_behaviour; champion: kind chosen on validation; capacity: MQL handoff; segments:
         quality by source, size, BANT...; feedback: sales' acceptance by grade), its headline
         figures in metrics/evaluate.json, plots/*.csv.
Params:  seed, features.*, split.*, evaluate.*, explain.*, mlflow.*.
"""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.explain.grades import format_matrix
from leadscore.features.catalog import load_catalog
from leadscore.io import read_json, read_parquet, write_csv
from leadscore.modeling.baseline import load_rules
from leadscore.modeling.capacity import capacity_summary
from leadscore.modeling.evaluate import (
    evaluate_release,
    gains_frame,
    load_trained,
    metrics_table,
    tracked_metrics,
)
from leadscore.modeling.feedback import read_feedback
from leadscore.modeling.splits import data_window, split_from_params
from leadscore.stage import stage

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    train: Path = typer.Option(Path("data/processed/train.parquet"), help="training table"),
    rules: Path = typer.Option(Path("models/rules.json"), help="rule scorer"),
    logistic: Path = typer.Option(Path("models/logistic"), help="logistic model folder"),
    lightgbm: Path = typer.Option(Path("models/lightgbm"), help="LightGBM model folder"),
    catalog: Path = typer.Option(Path("data/processed/feature_catalog.json"), help="feature catalog"),
    train_metrics: Path = typer.Option(Path("metrics/train_model.json"), help="validation figures of the models"),
    rules_metrics: Path = typer.Option(Path("metrics/train_rules.json"), help="validation figures of the rules"),
    crm: Path = typer.Option(Path("data/interim/validated.duckdb"), help="validated CRM (its mql_feedback)"),
    metrics: Path = typer.Option(Path("metrics/evaluate.json"), help="headline figures (output)"),
    details: Path | None = typer.Option(None, help="evaluation (output) (dvc.yaml: reports/evaluate.json; none: all in --metrics)"),
    plots: Path = typer.Option(Path("plots"), help="folder for reliability/gains CSVs"),
    track: bool = typer.Option(True, help="log the run to MLflow"),
) -> None:
    with stage("evaluate", params) as s:
        s.require(train, rules, train_metrics, rules_metrics, catalog)
        p = s.params
        split = split_from_params(read_parquet(train), p)
        models = load_trained({"logistic": logistic, "lightgbm": lightgbm})
        result = evaluate_release(split, load_rules(rules), models, params=p, catalog=load_catalog(catalog),
                                  feedback=read_feedback(crm), train_summary=read_json(train_metrics),
                                  rules_summary=read_json(rules_metrics))
        out, grades = result.metrics, result.metrics["rules_grades"]
        s.write_metrics(out, metrics, details)
        for name, rc in result.reliability.items():
            write_csv(rc, plots / f"reliability_{name}.csv")
        write_csv(gains := gains_frame(result.gains), plots / "gains.csv")
        s.log.info("ships: %s\n%s", out["champion"]["why"], capacity_summary(out["capacity"]))
        s.log.info("out-of-time test metrics (95%% bootstrap CI of ROC-AUC below each row):\n%s\n"
                   "pricing-page direction: %s", metrics_table(out), out.get("lightgbm_behaviour"))
        (s.log.info if grades["monotonic"] else s.log.warning)("%s", format_matrix(
            grades, "points-rule grades, out-of-time test slice: conversion rate (leads)"))
        s.track(params={"seed": p.seed, "evaluate": p.evaluate.model_dump(), "split": p.split.model_dump()},
                metrics=tracked_metrics(out, models), tags=data_window(split), enabled=track,
                dicts={"evaluate.json": out, "plots/gains.json": gains.to_dict(orient="list"),
                       **{f"plots/reliability_{m}.json": rc.to_dict(orient="list")
                          for m, rc in result.reliability.items()}})

if __name__ == "__main__":
    app()
