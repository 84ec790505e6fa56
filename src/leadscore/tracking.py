"""MLflow tracking: a local store, no server (`mlflow ui --backend-store-uri sqlite:///mlruns.db`).

Entry points call `setup_mlflow` once; `log_run` takes plain values. What is logged:
params (flattened `section.key` names), metrics, artifact files, tags (git commit, data
window, stage). Nothing row-level is ever logged: no input examples, no lead ids, no PII.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)


def git_commit(cwd: str | Path | None = None) -> str:
    """HEAD's commit hash (with "-dirty" when the tree has changes), or "unknown"."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{sha}-dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(d: Mapping, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists/tuples become strings."""
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = ",".join(map(str, v)) if isinstance(v, list | tuple) else v
    return out


def _key(name: str) -> str:
    """MLflow allows alphanumerics, _ - . space : / in names ("5001+" -> "5001plus")."""
    return re.sub(r"[^0-9A-Za-z_\-. :/]", "_", name.replace("+", "plus"))


def project_root() -> Path:
    """The project folder: `DVC_ROOT` when DVC runs the stage (for `dvc exp run --temp` and
    queued experiments it names the real repository, not the temporary copy), else the
    current folder."""
    return Path(os.environ.get("DVC_ROOT") or ".").resolve()


def resolve_tracking_uri(uri: str) -> str:
    """A relative SQLite store (``sqlite:///mlruns.db``) made absolute under `project_root`,
    so every stage, experiment and command shares one store and one registry."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(project_root() / uri[len(prefix):])
    return uri


def setup_mlflow(tracking_uri: str, experiment: str) -> str:
    """Point MLflow at the local store (MLFLOW_TRACKING_URI wins; a relative SQLite path is
    resolved under the project root) and pick the experiment; a new experiment keeps its
    artifacts in <project root>/mlruns."""
    import mlflow

    uri = resolve_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri)
    mlflow.set_tracking_uri(uri)
    if uri.startswith("sqlite:") and mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=(project_root() / "mlruns").as_uri())
    mlflow.set_experiment(experiment)
    return uri


def log_run(
    *,
    run_name: str,
    params: Mapping,
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts: Mapping[str, str | Path] | None = None,
    dicts: Mapping[str, dict] | None = None,
) -> str:
    """One MLflow run: params, finite numeric metrics, tags, artifact files and JSON dicts.
    Returns the run id."""
    import math

    import mlflow

    flat = {_key(k): str(v)[:6000] for k, v in flatten(params).items()}
    nums = {_key(k): float(v) for k, v in flatten(metrics).items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
    with mlflow.start_run(run_name=run_name) as run:
        keys = sorted(flat)
        for i in range(0, len(keys), 100):  # MLflow's batch limit
            mlflow.log_params({k: flat[k] for k in keys[i:i + 100]})
        mlflow.log_metrics(nums)
        mlflow.set_tags({k: str(v) for k, v in tags.items()})
        for sub, path in (artifacts or {}).items():
            if Path(path).exists():
                if Path(path).is_dir():
                    mlflow.log_artifacts(str(path), artifact_path=sub)
                else:
                    mlflow.log_artifact(str(path), artifact_path=sub)
        for name, d in (dicts or {}).items():
            mlflow.log_dict(d, name)
        log.info("mlflow: run %s (%s) logged to %s", run.info.run_id, run_name,
                 mlflow.get_tracking_uri())
        return run.info.run_id
