"""Where a pipeline run's outputs live, for the notebooks and other readers.

The project folder is `$LEADSCORE_PROJECT` when set, else the nearest folder at or above the
working directory that holds `dvc.yaml` (a notebook opened from `notebooks/` finds the
repository). The report's inputs are read with the report's own loader
(`leadscore.report.build.load_report_inputs` on `ReportPaths.in_project`), so the paths of
those outputs are defined once; the few other outputs the notebooks read are named here,
with the stage that writes them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path

import pandas as pd

from leadscore.config import Params, load_params
from leadscore.errors import InputError
from leadscore.report.build import ReportInputs, ReportPaths, load_report_inputs

ENV_VAR = "LEADSCORE_PROJECT"


def find_project(start: str | Path | None = None) -> Path:
    """The project folder: `$LEADSCORE_PROJECT`, else the nearest folder at or above `start`
    (default: the working directory) holding `dvc.yaml`. `InputError` when there is none."""
    env = os.environ.get(ENV_VAR)
    if env:
        root = Path(env).expanduser().resolve()
        if not root.is_dir():
            raise InputError(f"{ENV_VAR}={env}: not a folder; point it at a project after `make run`")
        return root
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    raise InputError(f"no dvc.yaml at or above {here}; set {ENV_VAR} to the project folder")


@dataclass(frozen=True)
class Project:
    """A project folder after `make run` (or `dvc repro`)."""

    root: Path

    @classmethod
    def find(cls, start: str | Path | None = None) -> Project:
        return cls(find_project(start))

    # outputs not among the report's inputs (stage that writes them in brackets)
    @property
    def crm(self) -> Path:
        """The validated CRM, PII-free (validate)."""
        return self.root / "data/interim/validated.duckdb"

    @property
    def train(self) -> Path:
        """The point-in-time training table (features)."""
        return self.root / "data/processed/train.parquet"

    @property
    def scorer(self) -> Path:
        """The exported challenger's artifacts (export)."""
        return self.root / "models/scorer/artifacts"

    @property
    def champion(self) -> Path:
        """The champion's artifacts, the gate's local copy (gate)."""
        return self.root / "models/champion/artifacts"

    @cached_property
    def params(self) -> Params:
        """The project's params.yaml, validated."""
        return load_params(self.root / "params.yaml")

    @cached_property
    def outputs(self) -> ReportInputs:
        """Every report input, loaded once; a missing file is None (or empty), without the
        report's warning about its section (a notebook says "not available" itself)."""
        quiet = logging.getLogger(load_report_inputs.__module__)
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            return load_report_inputs(ReportPaths.in_project(self.root))
        finally:
            quiet.setLevel(level)

    def training_table(self) -> pd.DataFrame:
        """The training table; `InputError` naming the file when it is missing."""
        if not self.train.exists():
            raise InputError(f"{self.train}: not found; run the pipeline first (`make run`)")
        return pd.read_parquet(self.train)

    def shipped_scorer(self) -> Path:
        """The artifacts of the model that scores the live leads: the champion when the gate
        has set one, else the challenger the run exported."""
        return self.champion if self.champion.is_dir() else self.scorer

    def missing(self) -> list[str]:
        """The pipeline outputs the notebooks read that are not in the project (relative
        paths): their sections show nothing until the stage that writes them has run."""
        paths = ReportPaths.in_project(self.root)
        wanted = [getattr(paths, f.name) for f in fields(paths)]
        wanted += [self.crm, self.train, self.scorer]
        return sorted(str(p.relative_to(self.root)) for p in wanted
                      if isinstance(p, Path) and not p.exists())
