"""Stage `ingest`: read the CRM source and write the canonical, PII-free CRM as DuckDB.

Inputs:  the CRM source named in params: a DuckDB file (ingest.source synthetic|duckdb) or a
         folder with leads.*, events.*, outcomes.* Parquet or CSV files (parquet|csv).
Outputs: --out (data/interim/crm.duckdb): tables leads, events, outcomes cast to the
         contract; on leads the PII columns email, first_name, last_name are replaced by the
         flags free_mail, email_invalid, placeholder_name. Written atomically; nothing is
         written when the input is bad (exit code 1, with a message naming file and column).
Params:  ingest.source, ingest.path, ingest.free_mail_domains.
"""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.data.ingest import ingest
from leadscore.stage import stage

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    out: Path = typer.Option(Path("data/interim/crm.duckdb"), help="ingested CRM (DuckDB)"),
) -> None:
    with stage("ingest", params) as s:
        cfg = s.params.ingest
        # the source's files are checked by `ingest` (InputError naming the missing file)
        kind = "duckdb" if cfg.source == "synthetic" else cfg.source
        summary = ingest(kind, cfg.path, out, cfg.free_mail_domains)
        rows = ", ".join(f"{name} {t['rows']}" for name, t in summary["tables"].items())
        s.log.info("ingested %s (%s) -> %s: %s rows; PII dropped, flags %s",
                   cfg.path, cfg.source, out, rows, summary["derived_flags"])


if __name__ == "__main__":
    app()
