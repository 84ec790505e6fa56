"""Stage `score`: score the (synthetic) live lead base as of the data cutoff.

Inputs:  the CRM source `ingest.path` (kind `ingest.source`; read through leadscore.io with
         personal data dropped inside DuckDB), the champion models/champion/ (the registry's
         `champion` alias, copied by the gate stage; promote and rollback change it).
Outputs: data/scores/ (persisted; scores.parquet: the score contract; scores.quarantine.parquet:
         quarantined leads with reasons; scores.parquet.manifest.json, written last, names the
         published pair: the reader rule; .scores.parquet.runs/<run_id>/manifest.json),
         reports/score.json (with `speed_to_lead`: median and p95 lag from a lead's creation or
         last event to its score; the stage is always a full run, `leadscore score
         --incremental` the incremental one), its headline in metrics/score.json.
Params:  score.* (as_of, chunk_size, quarantine_budget, memory_limit, threads), features.*
         (the same feature settings as training), ingest.source, ingest.path,
         ingest.free_mail_domains.
"""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.serve.batch import score_with_params
from leadscore.stage import stage

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    model: str = typer.Option("models/champion", help="MLflow model path or models:/ URI "
                              "(default: the champion's local copy, written by the gate stage)"),
    out: Path = typer.Option(Path("data/scores/scores.parquet"), help="score output"),
    metrics: Path = typer.Option(Path("metrics/score.json"), help="headline figures"),
    details: Path | None = typer.Option(None, help="summary (dvc.yaml: reports/score.json; none: all in --metrics)"),
) -> None:
    with stage("score", params) as s:
        result = score_with_params(s.params, out=out, model_uri=model, progress=False)
        s.write_metrics(result.to_dict(), metrics, details)
        s.log.info("scored %s leads as of %s (%s quarantined) -> %s [run %s]", f"{result.leads_scored:,}",
                   result.as_of.date(), f"{result.leads_quarantined:,}", result.out, result.run_id)
        speed = result.summary.get("speed_to_lead") or {}
        if speed.get("leads"):
            s.log.info("speed to lead: median %.1f h, p95 %.1f h from creation or last event to score",
                       speed["median_h"], speed["p95_h"])


if __name__ == "__main__":
    app()
