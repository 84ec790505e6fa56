"""Stage `generate`: the synthetic B2B CRM (DuckDB file with leads, events, outcomes).

    python -m pipelines.generate --params params.yaml --out data/raw/crm.duckdb

Inputs:  params.yaml
Outputs: --out (DuckDB file, written atomically); optional --details (JSON summary, no PII)
         and --metrics (its headline figures, for `dvc metrics show`)
Params:  seed, generate.* (n_leads, start, end, events_per_lead, junk_share,
         duplicate_event_share, chunk_leads), ingest.source

When `ingest.source` is not `synthetic` the generator is skipped and an empty DuckDB file with
the three tables (schema only) is written, so the stage's output still exists.
"""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.data.synthetic import generate_crm, write_empty_crm
from leadscore.stage import stage

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), "--params", help="params.yaml to read."),
    out: Path = typer.Option(Path("data/raw/crm.duckdb"), "--out", help="DuckDB file to write."),
    metrics: Path | None = typer.Option(None, "--metrics", help="Optional headline figures (JSON)."),
    details: Path | None = typer.Option(None, "--details", help="Optional JSON summary to write."),
) -> None:
    """Generate the synthetic CRM into OUT."""
    with stage("generate", params) as s:
        p = s.params
        if p.ingest.source != "synthetic":
            s.log.info("ingest.source=%s: generator skipped; writing empty tables to %s",
                       p.ingest.source, out)
            write_empty_crm(out)
            summary = {"skipped": True, "reason": f"ingest.source={p.ingest.source}"}
        else:
            cfg = p.generate
            s.log.info("generating %d leads (%s to %s, seed %d) into %s", cfg.n_leads, cfg.start,
                       cfg.end, p.seed, out)
            summary = generate_crm(cfg, p.seed, out)
            s.log.info("wrote %d leads, %d events, %d outcomes in %.1f s; base rate %.2f%% over %d "
                       "(lead, as_of) pairs", summary["leads"], summary["events"],
                       summary["outcomes"], summary["seconds"], 100 * summary["base_rate"],
                       summary["base_rate_pairs"])
            s.log.info("summary: %s", summary)
        if metrics is not None:
            s.write_metrics(summary, metrics, details)


if __name__ == "__main__":
    app()
