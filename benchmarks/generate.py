"""Speed and memory of the synthetic CRM generator.

    .venv/bin/python benchmarks/generate.py --leads 1000000

Generates into a temporary folder (deleted afterwards) and prints seconds, row counts, peak
RSS and the measured base rate. The last line is one JSON object.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import typer

from leadscore.config import GenerateConfig
from leadscore.data.synthetic import generate_crm

app = typer.Typer(add_completion=False)


def _peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB (ru_maxrss is KB on Linux)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 1024 / 1024


@app.command()
def main(
    leads: int = typer.Option(1_000_000, "--leads", help="Number of leads to generate."),
    events_per_lead: float = typer.Option(40.0, "--events-per-lead"),
    chunk_leads: int = typer.Option(100_000, "--chunk-leads"),
    seed: int = typer.Option(42, "--seed"),
) -> None:
    """Generate a synthetic CRM of `leads` leads and report time and memory."""
    cfg = GenerateConfig(n_leads=leads, events_per_lead=events_per_lead, chunk_leads=chunk_leads)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "crm.duckdb"
        t0 = time.perf_counter()
        summary = generate_crm(cfg, seed, path)
        seconds = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
    result = {
        "benchmark": "generate",
        "leads": summary["leads"],
        "events": summary["events"],
        "outcomes": summary["outcomes"],
        "seconds": round(seconds, 1),
        "events_per_second": round(summary["events"] / seconds),
        "peak_rss_mb": round(_peak_rss_mb()),
        "file_mb": round(size_mb),
        "base_rate": summary["base_rate"],
    }
    print(f"generated {result['leads']:,} leads, {result['events']:,} events in {seconds:.1f} s")
    print(
        f"peak RSS {result['peak_rss_mb']:,} MB, file {result['file_mb']:,} MB, base rate {result['base_rate']:.3%}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    app()
