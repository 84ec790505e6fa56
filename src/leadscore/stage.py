"""The set-up every pipeline stage shares: logging, typed params, error to exit code, MLflow.

A stage entry point in `pipelines/` is then only its arguments and the library calls:

    with stage("train_rules", params) as s:
        s.require(train)
        ...  # call the library with s.params, write outputs
        s.track(params=..., metrics=..., artifacts=...)

Any failure inside the block is logged without a traceback and ends the process with the
code from `leadscore.errors` (the same table as the CLI).

`Stage.write_metrics` splits what a stage measured in two: the whole record goes to a plain
output (`reports/<stage>.json`, read by the report, the CLI and later stages), and only its
headline figures (`HEADLINE`) go to `metrics/<stage>.json`, the file `dvc metrics show` /
`dvc exp show` list. `Stage.track` logs the stage's MLflow run, nested under the pipeline
run (`leadscore.tracking`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from leadscore.config import Params, load_params
from leadscore.errors import InputError, exit_on_error
from leadscore.io import write_json
from leadscore.logs import setup_logging

# What `dvc metrics show` lists per stage: dotted paths into the stage's record ("*" is any
# key at that level). Everything else stays in the record's plain output (reports/<stage>.json).
HEADLINE: dict[str, tuple[str, ...]] = {
    "generate": ("leads", "events", "outcomes", "base_rate", "junk_leads", "duplicate_events",
                 "seconds"),
    "features": ("rows", "positives", "base_rate", "leads", "features", "as_of_dates",
                 "as_of_first", "as_of_last", "data_cutoff"),
    "train_rules": ("valid.roc_auc", "valid.pr_auc", "calib.roc_auc", "calib.ece", "mql_share",
                    "mql_conversion"),
    "train_model": ("status", "reason", "features", "seconds", "*.valid.roc_auc", "*.valid.pr_auc",
                    "*.valid.log_loss", "*.valid.ece", "tuning.best_valid_log_loss",
                    "tuning.best_iteration"),
    "points": ("available", "reason", "roc_auc.*", "auc_diff_vs_model", "auc_diff_vs_rules", "lines",
               "mql.threshold", "mql.test.share_of_conversions"),
    "evaluate": ("fallback_to_rules", "champion.name", "champion.roc_auc", "champion.pr_auc",
                 "champion.ece", "champion.brier", "champion.log_loss", "champion.lift_top_decile",
                 "champion.precision_at_k", "champion.recall_at_k", "*.roc_auc", "*.pr_auc", "*.ece",
                 "auc_diff", "auc_diff_ci_lower", "auc_diff_ci_upper", "test.rows", "test.positives",
                 "test.base_rate"),
    "explain": ("*.monotonic", "*.significant_violations"),
    "backtest": ("seconds", "summary.*.roc_auc.mean", "summary.*.roc_auc.ci_low",
                 "summary.*.roc_auc.ci_high", "refit.*.wins"),
    "score": ("as_of", "model_version", "mode", "leads_in", "leads_scored", "leads_quarantined",
              "seconds", "speed_to_lead.median_h", "speed_to_lead.p95_h"),
}


def headline(doc: Mapping, paths: tuple[str, ...]) -> dict:
    """The entries of `doc` at the dotted `paths` ("*" matches every key at that level), nested
    as in `doc`; a path that is absent is skipped, and only scalars are kept (no lists)."""
    out: dict = {}

    def take(node: Mapping, parts: list[str], into: dict) -> None:
        keys = list(node) if parts[0] == "*" else [parts[0]] if parts[0] in node else []
        for key in keys:
            value = node[key]
            if len(parts) == 1:
                if value is None or isinstance(value, str | int | float | bool):
                    into[key] = value
            elif isinstance(value, Mapping):
                sub: dict = into.get(key) if isinstance(into.get(key), dict) else {}
                take(value, parts[1:], sub)
                if sub:
                    into[key] = sub

    for path in paths:
        take(doc, path.split("."), out)
    return out


def params_hash(params: Params) -> str:
    """A short, stable hash of every parameter (recorded with each model)."""
    blob = json.dumps(params.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Stage:
    """A running stage: its name, typed params, logger and clock."""

    name: str
    params: Params
    log: logging.Logger
    started: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        return round(time.perf_counter() - self.started, 1)

    def require(self, *paths: Path, hint: str = "run the earlier stages: dvc repro") -> None:
        """Fail with exit 1, naming the file, when an input of the stage is missing."""
        for path in paths:
            if not Path(path).exists():
                raise InputError(f"{path}: not found ({hint} {self.name})")

    def write_metrics(self, doc: Mapping, metrics: Path, details: Path | None = None) -> dict:
        """`details`: the whole record (a plain output); `metrics`: its headline figures
        (`HEADLINE[self.name]`, what `dvc metrics show` lists). Without `details` (a stage run
        by hand or in a test), `metrics` gets the whole record. Returns what `metrics` got."""
        if details is None:
            write_json(dict(doc), metrics)
            return dict(doc)
        write_json(dict(doc), details)
        top = headline(doc, HEADLINE[self.name])
        write_json(top, metrics)
        return top

    def track(self, *, params: Mapping, metrics: Mapping, tags: Mapping[str, str] | None = None,
              artifacts: Mapping[str, str | Path] | None = None,
              dicts: Mapping[str, dict] | None = None, enabled: bool = True) -> str | None:
        """Log one MLflow run named after the stage (tracking store from params), nested
        under the pipeline run (which gets every param and the params hash when created)."""
        if not enabled:
            return None
        from leadscore.tracking import git_commit, log_run, setup_mlflow

        setup_mlflow(self.params.mlflow.tracking_uri, self.params.mlflow.experiment)
        return log_run(run_name=self.name, params=params, metrics=metrics,
                       tags={"stage": self.name, "git_commit": git_commit(), **(tags or {})},
                       artifacts=artifacts, dicts=dicts,
                       parent_tags={"params_hash": params_hash(self.params)},
                       parent_params=self.params.model_dump(mode="json", by_alias=True))


@contextlib.contextmanager
def stage(name: str, params: Path) -> Iterator[Stage]:
    """Set up logging, load and validate params.yaml, and map failures to exit codes."""
    setup_logging()
    log = logging.getLogger(f"leadscore.{name}")
    with exit_on_error(log):
        yield Stage(name, load_params(params), log)
