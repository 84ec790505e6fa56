"""`run_monitor`: read the score history, check it, return the report. Used by the `monitor`
stage (which writes reports/monitor.json and exits 0) and `leadscore monitor` (which exits 4,
`GuardError`, when a check alerts, so a scheduler can page someone)."""

from __future__ import annotations

from pathlib import Path

from leadscore.config import MonitorConfig
from leadscore.errors import GuardError
from leadscore.monitor.checks import monitor_report
from leadscore.monitor.history import read_reference, read_runs


def run_monitor(history: str | Path, cfg: MonitorConfig) -> dict:
    """The monitoring report (`leadscore.monitor.checks.monitor_report`) of the history file."""
    runs = read_runs(history)
    refs = {}
    for version in {r["model_version"] for r in runs}:
        if (ref := read_reference(history, version)) is not None:
            refs[version] = ref
    doc = monitor_report(runs, refs, cfg)
    doc["history"] = str(history)
    return doc


def raise_on_alert(doc: dict, report: str | Path | None = None) -> None:
    """`GuardError` (exit 4) naming the alerts, when there are any."""
    if doc.get("alerts"):
        where = f"; see {report}" if report else ""
        raise GuardError(f"monitoring alert(s): {', '.join(doc['alerts'])}{where}")
