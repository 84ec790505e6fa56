"""Stage `monitor`: drift, null-rate, volume and freshness checks of the latest scoring run.

Inputs:  the score history `monitor.history` (data/monitoring/history.duckdb: `score_runs`,
         one row per scoring run, and the training `reference` of each model version, both
         written by the score stage), metrics/score.json (so the stage reruns after scoring),
         the CRM `ingest.path` (outcomes that judge earlier runs: realized performance).
Outputs: reports/monitor.json (every check, the alerts and warnings, PSI per feature, of the
         probability and of the grade mix per run).
Params:  ingest.source, features.target_stage, features.horizon_days, monitor.* (thresholds: psi_warn, psi_alert, max_null_rate_increase, min/max_volume_ratio,
         volume_runs, max_days_since_event; report_runs; history).
An alert is reported, not a failed stage (like the gate): the pipeline goes on to the report.
`leadscore monitor` runs the same checks and exits 4 on an alert, so a scheduler can page.
"""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.io import write_json
from leadscore.monitor.checks import format_report
from leadscore.monitor.run import monitor_with_params
from leadscore.stage import stage

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    report: Path = typer.Option(Path("reports/monitor.json"), help="monitoring report (output)"),
) -> None:
    with stage("monitor", params) as s:
        doc = monitor_with_params(s.params)
        write_json(doc, report)
        text = format_report(doc)
        (s.log.warning if doc.get("alerts") else s.log.info)("%s", text)


if __name__ == "__main__":
    app()
