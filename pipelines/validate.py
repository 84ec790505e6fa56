"""Stage `validate`: Great Expectations checkpoints on the ingested CRM; quarantine bad rows.

Inputs:  --in (data/interim/crm.duckdb), from stage `ingest`; --gx (gx/): the GX project,
         one suite, validation definition and checkpoint per table, synced with the code's
         suite definitions before the run (see leadscore.data.gx_project).
Outputs: --out (data/interim/validated.duckdb): clean leads, events, outcomes plus a
         `quarantine` table (table_name, row_key, reason, row_json);
         --report (reports/validation.json): per table and expectation, success and
         unexpected count; --metrics (metrics/validate.json): rows in/out/quarantined per
         table, expectations evaluated/passed/failed; --data-docs (reports/data_docs/):
         GX Data Docs of the suites and this run's results (also built when it fails).
         On failure (a table-level check, or a table's quarantined share above budget) the
         stage logs a summary (table, column, expectation, count, sample keys), exits with
         code 1 and writes nothing else; earlier outputs are left untouched.
Params:  validate.quarantine_budget, validate.max_null_share, validate.sample_keys. The
         reference time for "no future timestamps" is the current UTC time (suite
         parameter `now`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from leadscore.data.validate import validate_crm
from leadscore.io import write_json
from leadscore.stage import stage

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    crm: Path = typer.Option(Path("data/interim/crm.duckdb"), "--in", help="ingested CRM"),
    out: Path = typer.Option(Path("data/interim/validated.duckdb"), help="validated CRM"),
    report: Path = typer.Option(Path("reports/validation.json"), help="validation report"),
    metrics: Path = typer.Option(Path("metrics/validate.json"), help="summary metrics"),
    gx: Path | None = typer.Option(None, "--gx", help="GX project folder (gx/); none: in memory"),
    data_docs: Path | None = typer.Option(None, help="Data Docs folder; none: no Data Docs"),
) -> None:
    with stage("validate", params) as s:
        s.require(crm, hint="run the ingest stage first: dvc repro")
        result = validate_crm(crm, out, now=dt.datetime.now(dt.UTC), cfg=s.params.validate_,
                              gx_dir=gx, data_docs_dir=data_docs)
        write_json(result.report, report)
        write_json(result.metrics, metrics)
        for name in ("leads", "events", "outcomes"):
            m = result.metrics[name]
            s.log.info("%s: %d rows in, %d out, %d quarantined", name, m["rows_in"],
                       m["rows_out"], m["rows_quarantined"])
        s.log.info("expectations: %s -> %s", result.metrics["expectations"], out)


if __name__ == "__main__":
    app()
