"""`run_monitor`: read the score history, check it, return the report. Used by the `monitor`
stage (which writes reports/monitor.json and exits 0) and `leadscore monitor` (which exits 4,
`GuardError`, when a check alerts, so a scheduler can page someone)."""

from __future__ import annotations

from pathlib import Path

from leadscore.config import MonitorConfig, Params
from leadscore.errors import GuardError
from leadscore.monitor.checks import monitor_report
from leadscore.monitor.history import read_reference, read_runs
from leadscore.monitor.realized import OutcomeSource, realized_runs


def run_monitor(history: str | Path, cfg: MonitorConfig, outcomes: OutcomeSource | None = None) -> dict:
    """The monitoring report (`leadscore.monitor.checks.monitor_report`) of the history file;
    with `outcomes` (the CRM), realized performance of the runs whose outcomes are in."""
    runs = read_runs(history)
    refs = {}
    for version in {r["model_version"] for r in runs}:
        if (ref := read_reference(history, version)) is not None:
            refs[version] = ref
    realized = None
    if outcomes is not None and runs:
        realized = realized_runs(history, runs[-cfg.report_runs:], refs, outcomes, cfg)
    doc = monitor_report(runs, refs, cfg, realized)
    doc["history"] = str(history)
    return doc


def monitor_with_params(params: Params, *, history: str | Path | None = None,
                        source: str | Path | None = None) -> dict:
    """`run_monitor` of params `monitor` (or `history`), with outcomes from the CRM of
    `ingest` (or `source`)."""
    return run_monitor(history or params.monitor.history, params.monitor,
                       OutcomeSource.from_params(params, source))


def raise_on_alert(doc: dict, report: str | Path | None = None) -> None:
    """`GuardError` (exit 4) naming the alerts, when there are any."""
    if doc.get("alerts"):
        where = f"; see {report}" if report else ""
        raise GuardError(f"monitoring alert(s): {', '.join(doc['alerts'])}{where}")
