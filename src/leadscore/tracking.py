"""MLflow tracking: a local store, no server (`mlflow ui --backend-store-uri sqlite:///mlruns.db`).

Entry points call `setup_mlflow` once; `log_run` takes plain values. What is logged:
params (flattened `section.key` names), metrics, artifact files, tags (git commit, data
window, stage). Nothing row-level is ever logged: no input examples, no lead ids, no PII.

**One parent run per pipeline run.** Each DVC stage is its own process, so the stages find
their common parent in the store: every stage run is nested under the run tagged
``leadscore.pipeline_run = <key>`` (created by the first stage that logs, named
``pipeline <date time>``, with the git commit and the params hash; each later stage moves its
end time on). The key (`pipeline_key`) is, in this order:

1. ``LEADSCORE_PIPELINE_RUN`` from the environment (set it to group any set of runs, e.g.
   ``LEADSCORE_PIPELINE_RUN=nightly-2026-01-05 dvc repro``);
2. under DVC (``DVC_STAGE`` is set), the DVC process that runs the stages: the nearest
   ancestor process that is not a shell, as ``dvc-<pid>-<start time>[-<experiment name>]``
   (Linux ``/proc``), so one ``dvc repro`` / ``dvc exp run`` is one parent and the next one a
   new parent;
3. otherwise none: a stage run by hand (or the CLI) logs a top-level run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
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
    """A relative SQLite store (``sqlite:///mlruns.db``, ``sqlite:///optuna.db``) made
    absolute under `project_root`, so every stage, experiment and command shares one store
    (one registry, one Optuna storage)."""
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


PIPELINE_TAG = "leadscore.pipeline_run"
PIPELINE_ENV = "LEADSCORE_PIPELINE_RUN"
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "fish", "busybox"}


def _proc_stat(pid: int) -> tuple[str, int, str] | None:
    """(command name, parent pid, start time in clock ticks) of `pid` from /proc, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    return name, int(fields[1]), fields[19]  # state ppid ... starttime (field 22)


def pipeline_key(environ: Mapping[str, str] | None = None, pid: int | None = None) -> str | None:
    """What identifies the pipeline run this process belongs to (module docstring); None
    when it is not part of one."""
    env = os.environ if environ is None else environ
    if env.get(PIPELINE_ENV):
        return re.sub(r"[^0-9A-Za-z_\-.:]", "_", env[PIPELINE_ENV])[:200]
    if not env.get("DVC_STAGE"):
        return None
    stat = _proc_stat(os.getpid() if pid is None else pid)
    for _ in range(8):  # stage -> (shell ->) dvc
        if stat is None or stat[1] <= 1:
            return None
        ppid = stat[1]
        stat = _proc_stat(ppid)
        if stat is not None and stat[0] not in _SHELLS:
            exp = re.sub(r"[^0-9A-Za-z_\-.]", "_", env.get("DVC_EXP_NAME", ""))
            return f"dvc-{ppid}-{stat[2]}" + (f"-{exp}" if exp else "")
    return None


_FILTER_VALUE = re.compile(r"[A-Za-z0-9_.:@/+ -]{1,250}")


def filter_literal(value: str, what: str = "value") -> str:
    """`value` as a quoted literal of an MLflow filter string. Those take no parameters, so a
    value is accepted only from a safe alphabet (letters, digits, ``_.:@/+ -``): a quote could
    otherwise change the filter. Raises `ConfigError` naming `what`."""
    from leadscore.errors import ConfigError

    if not isinstance(value, str) or not _FILTER_VALUE.fullmatch(value):
        raise ConfigError(f"{what} {str(value)[:60]!r}: use letters, digits and _.:@/+- only "
                          "(it goes into an MLflow search filter)")
    return f"'{value}'"


def pipeline_parent(key: str | None, *, tags: Mapping[str, str] | None = None,
                    params: Mapping | None = None) -> str | None:
    """The id of the parent run tagged with `key` in the active experiment, created (with
    `tags` and `params`) when there is none; None when `key` is None. The parent is left
    FINISHED; each stage moves its end time on (`touch_parent`)."""
    if key is None:
        return None
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    exp_id = mlflow.tracking.fluent._get_experiment_id()  # the one `setup_mlflow` set
    where = f"tags.`{PIPELINE_TAG}` = {filter_literal(key, 'pipeline run key')}"
    found = client.search_runs([exp_id], filter_string=where,
                               order_by=["attributes.start_time ASC"], max_results=1)
    if found:
        return found[0].info.run_id
    now = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    run = client.create_run(exp_id, run_name=f"pipeline {now}",
                            tags={PIPELINE_TAG: key, "git_commit": git_commit(),
                                  **{k: str(v) for k, v in (tags or {}).items()}})
    flat = {_key(k): str(v)[:6000] for k, v in flatten(params or {}).items()}
    keys = sorted(flat)
    for i in range(0, len(keys), 100):  # MLflow's batch limit
        from mlflow.entities import Param

        client.log_batch(run.info.run_id, params=[Param(k, flat[k]) for k in keys[i:i + 100]])
    client.set_terminated(run.info.run_id, "FINISHED")
    log.info("mlflow: pipeline run %s (%s) created", run.info.run_id, key)
    return run.info.run_id


def touch_parent(parent: str | None, status: str = "FINISHED") -> None:
    """Move the parent's end time to now (its duration spans the stages logged so far); a
    failed stage marks it FAILED."""
    if parent is not None:
        from mlflow import MlflowClient

        MlflowClient().set_terminated(parent, status)


@contextlib.contextmanager
def stage_run(run_name: str, *, tags: Mapping[str, str] | None = None,
              parent_tags: Mapping[str, str] | None = None,
              parent_params: Mapping | None = None) -> Iterator:
    """An MLflow run named `run_name`, nested under this process's pipeline run when it has
    one (`pipeline_key`); yields the active run. Call `setup_mlflow` first."""
    import mlflow

    parent = pipeline_parent(pipeline_key(), tags=parent_tags, params=parent_params)
    run_tags = {k: str(v) for k, v in (tags or {}).items()}
    if parent is not None:
        run_tags[PIPELINE_TAG] = pipeline_key() or ""
    status = "FAILED"
    try:
        with mlflow.start_run(run_name=run_name, parent_run_id=parent, nested=parent is not None,
                              tags=run_tags) as run:
            yield run
            status = "FINISHED"
    finally:
        touch_parent(parent, status)


def log_run(
    *,
    run_name: str,
    params: Mapping,
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts: Mapping[str, str | Path] | None = None,
    dicts: Mapping[str, dict] | None = None,
    parent_tags: Mapping[str, str] | None = None,
    parent_params: Mapping | None = None,
) -> str:
    """One MLflow run (nested under the pipeline run, `stage_run`): params, finite numeric
    metrics, tags, artifact files and JSON dicts. Returns the run id."""
    import mlflow

    flat = {_key(k): str(v)[:6000] for k, v in flatten(params).items()}
    nums = numeric(metrics)
    with stage_run(run_name, tags=tags, parent_tags=parent_tags, parent_params=parent_params) as run:
        keys = sorted(flat)
        for i in range(0, len(keys), 100):  # MLflow's batch limit
            mlflow.log_params({k: flat[k] for k in keys[i:i + 100]})
        mlflow.log_metrics(nums)
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


def numeric(metrics: Mapping) -> dict[str, float]:
    """The finite numbers of a (nested) mapping, under flattened MLflow-safe names."""
    import math

    return {_key(k): float(v) for k, v in flatten(metrics).items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
