"""Stage `score`: score the (synthetic) live lead base as of the data cutoff.

Inputs:  the CRM source `ingest.path` (kind `ingest.source`; read through leadscore.io with
         personal data dropped inside DuckDB), the exported scorer models/scorer/.
Outputs: data/scores/ (scores.parquet: the score contract; scores.quarantine.parquet:
         quarantined leads with reasons; .scores.parquet.runs/<run_id>/manifest.json),
         metrics/score.json.
Params:  score.* (as_of, chunk_size, quarantine_budget, memory_limit, threads), features.*
         (the same feature settings as training), ingest.free_mail_domains.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from leadscore.cli import run_score
from leadscore.logs import setup_logging

log = logging.getLogger("leadscore.score")
app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    model: str = typer.Option("models/scorer", help="MLflow model path or models:/ URI"),
    out: Path = typer.Option(Path("data/scores/scores.parquet"), help="score output"),
    metrics: Path = typer.Option(Path("metrics/score.json"), help="summary"),
) -> None:
    setup_logging()
    code = run_score(params=params, as_of=None, source_kind=None, source=None, out=out, fmt=None,
                     model=model, chunk_size=None, run_id=None, metrics=metrics, progress=False)
    if code:
        raise typer.Exit(code)


if __name__ == "__main__":
    app()
