"""Stage `report`: the marketing report, one self-contained HTML file that opens offline.

Inputs:  evaluate (metrics, gains, reliability), the models, data checks, the feature catalog;
         explain (grades, drivers, examples, dependence, grading); backtest; gate (gate,
         changes); score and monitor (live grade mix, drift); points (the learned table).
         Paths: `leadscore.report.build.ReportPaths.in_project`. A missing input becomes a
         "not available" note in its section, not a failure.
Outputs: reports/report.html; with `report.log_mlflow`, a new MLflow run named `report`
         holding the file as the artifact report/report.html.
Params:  report.* (top_share, max_drivers, dependence_charts, examples_per_grade,
         log_mlflow), mlflow.*.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from leadscore.report.build import (
    ReportPaths,
    build_report,
    load_report_inputs,
    log_report,
    write_report,
)
from leadscore.stage import stage

app = typer.Typer(add_completion=False)
_D = ReportPaths.in_project(".")  # the option defaults: dvc.yaml's layout


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    out: Path = typer.Option(Path("reports/report.html"), help="HTML file to write"),
    evaluate: Path = typer.Option(_D.evaluate, help="evaluate metrics"),
    gains: Path = typer.Option(_D.gains, help="cumulative gains CSV"),
    plots: Path = typer.Option(_D.plots, help="folder with reliability_* and dependence_* CSVs"),
    model: Path = typer.Option(_D.model, help="LightGBM model folder (metadata, importance)"),
    rules: Path = typer.Option(_D.rules, help="rule scorer"),
    validation: Path = typer.Option(_D.validation, help="validation report"),
    validate_metrics: Path = typer.Option(_D.validate_metrics, help="validate metrics"),
    catalog: Path = typer.Option(_D.catalog, help="feature catalog"),
    features: Path = typer.Option(_D.features, help="features metrics"),
    grades: Path = typer.Option(_D.grades, help="grade matrices (explain stage)"),
    drivers: Path = typer.Option(_D.drivers, help="global drivers (explain stage)"),
    examples: Path = typer.Option(_D.examples, help="example leads (explain stage)"),
    backtest: Path = typer.Option(_D.backtest, help="backtest metrics (backtest stage)"),
    gate: Path = typer.Option(_D.gate, help="promotion gate report (gate stage)"),
    changes: Path = typer.Option(_D.changes, help="what changed, champion vs challenger"),
    monitor: Path = typer.Option(_D.monitor, help="monitoring report (monitor stage)"),
    grading: Path = typer.Option(_D.grading, help="grade cut points (explain stage)"),
    score: Path = typer.Option(_D.score, help="metrics of the latest scoring run (score stage)"),
    points: Path = typer.Option(_D.points, help="learned points table's figures (points stage)"),
    points_csv: Path = typer.Option(_D.points_csv, help="learned points table (CSV)"),
    points_yaml: Path = typer.Option(_D.points_yaml, help="learned points table (YAML)"),
    data_docs: Path = typer.Option(_D.data_docs, help="Great Expectations Data Docs (validate stage)"),
    track: bool = typer.Option(True, help="log the report to MLflow (if report.log_mlflow)"),
) -> None:
    with stage("report", params) as s:
        p = s.params
        inputs = load_report_inputs(ReportPaths(
            evaluate=evaluate, gains=gains, plots=plots, model=model, rules=rules,
            validation=validation, validate_metrics=validate_metrics, catalog=catalog,
            features=features, grades=grades, drivers=drivers, examples=examples,
            backtest=backtest, gate=gate, changes=changes, monitor=monitor, grading=grading, score=score,
            points=points, points_csv=points_csv, points_yaml=points_yaml, data_docs=data_docs),
            report_path=out)
        write_report(build_report(inputs, p.report, generated_at=dt.datetime.now(dt.UTC)), out)
        s.log.info("report: wrote %s (%.0f kB)", out, out.stat().st_size / 1024)
        if track and p.report.log_mlflow:
            log_report(out, inputs, tracking_uri=p.mlflow.tracking_uri,
                       experiment=p.mlflow.experiment)


if __name__ == "__main__":
    app()
