"""Stage `features`: the point-in-time training table.

Inputs:  the validated CRM (DuckDB, from stage `validate`).
Outputs: the training table (Parquet), the feature catalog (JSON), reports/features.json
         (summary, per as_of date) and its headline figures in metrics/features.json.
Params:  seed is not used; features.* (schedule, horizon, target stage, windows, half-life).
"""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.features.build import feature_catalog, training_table_from_crm
from leadscore.features.catalog import save_catalog
from leadscore.io import write_parquet
from leadscore.stage import stage

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    crm: Path = typer.Option(Path("data/interim/validated.duckdb"), "--in", help="validated CRM"),
    out: Path = typer.Option(Path("data/processed/train.parquet"), help="training table"),
    catalog: Path = typer.Option(Path("data/processed/feature_catalog.json"), help="feature catalog"),
    metrics: Path = typer.Option(Path("metrics/features.json"), help="headline figures"),
    details: Path | None = typer.Option(None, help="summary (per as_of date) (dvc.yaml: reports/features.json; none: all in --metrics)"),
) -> None:
    with stage("features", params) as s:
        s.require(crm, hint="run the validate stage first: dvc repro")
        cfg = s.params.features
        table, summary = training_table_from_crm(crm, cfg)
        write_parquet(table, out)
        save_catalog(feature_catalog(cfg.windows_days, cfg.content_types), catalog)
        s.write_metrics(summary, metrics, details)
        s.log.info("training table: %d rows, %d positives (base rate %.2f%%), %d as_of dates %s..%s",
                   summary["rows"], summary["positives"], 100 * (summary["base_rate"] or 0),
                   summary["as_of_dates"], summary["as_of_first"], summary["as_of_last"])


if __name__ == "__main__":
    app()
