"""The `leadscore` command line for operators.

Each command reads params.yaml at the edge and calls the same library functions as the DVC
stages, so there is no second copy of any logic. Every command exits non-zero on failure.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path

import typer

from leadscore.config import ConfigError, load_params
from leadscore.io import InputError
from leadscore.logs import setup_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Predictive B2B lead scoring.")
log = logging.getLogger("leadscore")

PARAMS = typer.Option(Path("params.yaml"), "--params", help="params.yaml to read.")


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    setup_logging(logging.DEBUG if verbose else logging.INFO)


@app.command()
def generate(
    out: Path = typer.Option(Path("data/raw/crm.duckdb"), "--out", help="DuckDB file to write."),
    n_leads: int | None = typer.Option(None, "--leads", help="Override generate.n_leads."),
    params: Path = PARAMS,
) -> None:
    """Generate the synthetic CRM (leads, events, outcomes) into a DuckDB file."""
    from leadscore.generate import generate_crm

    try:
        p = load_params(params)
    except ConfigError as err:
        log.error("%s", err)
        raise typer.Exit(2) from None
    cfg = p.generate if n_leads is None else p.generate.model_copy(update={"n_leads": n_leads})
    summary = generate_crm(cfg, p.seed, out)
    typer.echo(
        f"wrote {out}: {summary['leads']:,} leads, {summary['events']:,} events, "
        f"{summary['outcomes']:,} outcomes"
    )


@app.command()
def validate(
    source: Path = typer.Argument(..., help="A DuckDB file, or a folder of Parquet/CSV files."),
    kind: str = typer.Option("duckdb", "--kind", help="duckdb | parquet | csv"),
    out: Path | None = typer.Option(None, "--out", help="Write the validated CRM here."),
    params: Path = PARAMS,
) -> None:
    """Ingest and validate a CRM source; print a summary; exit 1 if it fails the checks."""
    from leadscore.ingest import ingest
    from leadscore.validation import ValidationFailed, validate_crm

    try:
        p = load_params(params)
        with tempfile.TemporaryDirectory() as tmp:
            ingested = Path(tmp) / "crm.duckdb"
            ingest(kind, source, ingested, p.ingest.free_mail_domains)
            target = out or Path(tmp) / "validated.duckdb"
            result = validate_crm(ingested, target, now=dt.datetime.now(dt.UTC), cfg=p.validate_)
    except ConfigError as err:
        log.error("%s", err)
        raise typer.Exit(2) from None
    except (InputError, ValidationFailed) as err:
        log.error("%s", err)
        raise typer.Exit(1) from None
    for name in ("leads", "events", "outcomes"):
        m = result.metrics[name]
        typer.echo(f"{name}: {m['rows_in']:,} rows in, {m['rows_out']:,} clean, {m['rows_quarantined']:,} quarantined")
    typer.echo(f"expectations: {result.metrics['expectations']}")


@app.command()
def metrics(
    path: Path = typer.Option(Path("metrics/evaluate.json"), "--path", help="evaluate stage metrics"),
) -> None:
    """Print the out-of-time comparison of the rules, logistic regression and LightGBM."""
    from leadscore.evaluate import metrics_table
    from leadscore.io import read_json

    if not path.exists():
        log.error("%s: not found; run `make run` (or `dvc repro evaluate`) first", path)
        raise typer.Exit(1)
    typer.echo(metrics_table(read_json(path)))


if __name__ == "__main__":
    app()
