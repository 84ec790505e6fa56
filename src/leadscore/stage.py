"""The set-up every pipeline stage shares: logging, typed params, error to exit code, MLflow.

A stage entry point in `pipelines/` is then only its arguments and the library calls:

    with stage("train_rules", params) as s:
        s.require(train)
        ...  # call the library with s.params, write outputs
        s.track(params=..., metrics=..., artifacts=...)

Any failure inside the block is logged without a traceback and ends the process with the
code from `leadscore.errors` (the same table as the CLI).
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
from leadscore.logs import setup_logging


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

    def track(self, *, params: Mapping, metrics: Mapping, tags: Mapping[str, str] | None = None,
              artifacts: Mapping[str, str | Path] | None = None,
              dicts: Mapping[str, dict] | None = None, enabled: bool = True) -> str | None:
        """Log one MLflow run named after the stage (tracking store from params)."""
        if not enabled:
            return None
        from leadscore.tracking import git_commit, log_run, setup_mlflow

        setup_mlflow(self.params.mlflow.tracking_uri, self.params.mlflow.experiment)
        return log_run(run_name=self.name, params=params, metrics=metrics,
                       tags={"stage": self.name, "git_commit": git_commit(), **(tags or {})},
                       artifacts=artifacts, dicts=dicts)


@contextlib.contextmanager
def stage(name: str, params: Path) -> Iterator[Stage]:
    """Set up logging, load and validate params.yaml, and map failures to exit codes."""
    setup_logging()
    log = logging.getLogger(f"leadscore.{name}")
    with exit_on_error(log):
        yield Stage(name, load_params(params), log)
