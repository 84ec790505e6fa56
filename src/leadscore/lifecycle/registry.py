"""The MLflow registry aliases of the exported scorer: challenger, champion, and their history.

- `register_scorer` logs the scorer, registers it (reusing the version that already holds the
  same content hash, `model_version`) and points the challenger alias at it.
- `promote` points the champion alias at a version and pushes it on the alias's **history**
  (a stack kept in the registered model's tag ``<alias>_history``), with who, why and when in
  the tag ``<alias>_log``. A forced promotion records its reason.
- `rollback` pops the stack: the alias goes back one step, and the version it left is tagged
  ``rolled_back_from_<alias>`` so the gate never promotes it again on its own; a second
  rollback goes one step further back, never forward to what it just left.
- `log_metrics_to_version` puts the evaluation's test metrics and the gate's result on a
  version, where `mlflow ui` compares versions: as version tags (the registered model's
  versions table), as metrics of the version's source run (the `export` run; select versions
  and "Compare" in the registry) and of its logged model (the experiment's Models tab).

MLflow is imported inside the functions. Names and aliases are validated by the config
(letters, digits, ``_ . -``), and every value put into an MLflow filter string (they take no
parameters) goes through `leadscore.tracking.filter_literal`, which refuses quotes.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from leadscore.errors import ModelError
from leadscore.io import atomic_path, file_sha256, read_json
from leadscore.tracking import filter_literal

log = logging.getLogger(__name__)

HISTORY_KEEP = 50  # entries kept in each alias tag (MLflow tag values are bounded)


@dataclass(frozen=True)
class ModelRef:
    """One registry version of the scorer: its registry number, content hash and kind."""

    registry_version: str
    model_version: str
    kind: str

    def to_dict(self) -> dict:
        return asdict(self)


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def operator() -> str:
    """Who runs the command (the OS user name), for the alias log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user database entry (containers)
        return "unknown"


def model_ref(name: str, version: str | int) -> ModelRef:
    """The registry version `version` of `name`; `ModelError` when there is none."""
    from mlflow.exceptions import MlflowException

    try:
        mv = _client().get_model_version(name, str(version))
    except MlflowException:
        raise ModelError(f"registry: model '{name}' has no version {version}") from None
    return ModelRef(str(mv.version), mv.tags.get("model_version", "unknown"), mv.tags.get("kind", "lightgbm"))


def alias_ref(name: str, alias: str) -> ModelRef | None:
    """The version `alias` points at, or None (no such model or alias)."""
    from mlflow.exceptions import MlflowException

    try:
        mv = _client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return ModelRef(str(mv.version), mv.tags.get("model_version", "unknown"), mv.tags.get("kind", "lightgbm"))


def _tag_list(name: str, key: str) -> list:
    from mlflow.exceptions import MlflowException

    try:
        raw = _client().get_registered_model(name).tags.get(key)
    except MlflowException:
        return []
    try:
        value = json.loads(raw) if raw else []
    except json.JSONDecodeError:
        raise ModelError(f"registry: tag '{key}' of model '{name}' is not valid JSON") from None
    return value if isinstance(value, list) else []


def _set_tag_list(name: str, key: str, values: list) -> None:
    _client().set_registered_model_tag(name, key, json.dumps(values[-HISTORY_KEEP:]))


def alias_history(name: str, alias: str) -> list[str]:
    """The versions `alias` has held, oldest first; the last one is the current target."""
    return [str(v) for v in _tag_list(name, f"{alias}_history")]


def alias_log(name: str, alias: str) -> list[dict]:
    """Every move of `alias`: action, version, previous, at, by, reason."""
    return _tag_list(name, f"{alias}_log")


def is_rolled_back(name: str, version: str, alias: str) -> bool:
    """True when a rollback left `version` (the gate then never promotes it on its own)."""
    mv = _client().get_model_version(name, str(version))
    return f"rolled_back_from_{alias}" in mv.tags


def _record(name: str, alias: str, action: str, version: str, previous: str | None,
            reason: str | None) -> None:
    entries = alias_log(name, alias)
    entries.append({"action": action, "version": version, "previous": previous, "at": _now(),
                    "by": operator(), "reason": reason})
    _set_tag_list(name, f"{alias}_log", entries)


def set_alias(name: str, alias: str, version: str | int) -> str | None:
    """Point `alias` at `version` without history (the challenger); return the previous one."""
    ref = model_ref(name, version)
    previous = alias_ref(name, alias)
    _client().set_registered_model_alias(name, alias, ref.registry_version)
    log.info("registry: %s@%s -> version %s (was %s)", name, alias, ref.registry_version,
             previous.registry_version if previous else None)
    return previous.registry_version if previous else None


def promote(name: str, alias: str, version: str | int, *, reason: str | None = None,
            forced: bool = False) -> str | None:
    """Point `alias` at `version` and push it on the alias history; return the previous
    target. Promoting the current target changes nothing. A forced promotion needs a reason."""
    if forced and not (reason and reason.strip()):
        raise ModelError("a forced promotion needs --reason \"why\"")
    ref = model_ref(name, version)
    previous = alias_ref(name, alias)
    if previous is not None and previous.registry_version == ref.registry_version:
        log.info("registry: %s@%s already points at version %s", name, alias, ref.registry_version)
        return previous.registry_version
    client = _client()
    client.set_registered_model_alias(name, alias, ref.registry_version)
    history = alias_history(name, alias)
    if previous is not None and (not history or history[-1] != previous.registry_version):
        history.append(previous.registry_version)  # set before history was kept
    history.append(ref.registry_version)
    _set_tag_list(name, f"{alias}_history", history)
    if is_rolled_back(name, ref.registry_version, alias):  # promoted again on purpose
        client.delete_model_version_tag(name, ref.registry_version, f"rolled_back_from_{alias}")
    _record(name, alias, "force" if forced else "promote", ref.registry_version,
            previous.registry_version if previous else None, reason)
    log.info("registry: %s@%s -> version %s (was %s)%s", name, alias, ref.registry_version,
             previous.registry_version if previous else None, " [forced]" if forced else "")
    return previous.registry_version if previous else None


def rollback(name: str, alias: str, *, reason: str | None = None) -> str:
    """Move `alias` one step back in its history; return the version it now points at."""
    history = alias_history(name, alias)
    current = alias_ref(name, alias)
    if current is None:
        raise ModelError(f"registry: {name}@{alias} is not set: nothing to roll back")
    if history and history[-1] == current.registry_version:
        history.pop()
    if not history:
        raise ModelError(f"registry: {name}@{alias} (version {current.registry_version}) has no "
                         "earlier version to roll back to")
    target = history[-1]
    client = _client()
    client.set_registered_model_alias(name, alias, target)
    client.set_model_version_tag(name, current.registry_version, f"rolled_back_from_{alias}", _now())
    _set_tag_list(name, f"{alias}_history", history)
    _record(name, alias, "rollback", target, current.registry_version, reason)
    log.info("registry: %s@%s rolled back to version %s (left %s)", name, alias, target,
             current.registry_version)
    return target


def register_scorer(files: Mapping[str, Path], *, name: str, alias: str,
                    tags: Mapping[str, str] | None = None) -> str:
    """Log the scorer built from `files` to the active MLflow experiment, register it as
    `name` (reusing the version that already holds this `model_version`) and point `alias`
    (the challenger) at it. Returns the registry version. Call
    `leadscore.tracking.setup_mlflow` first."""
    import mlflow

    from leadscore.serve.export import pyfunc_kwargs

    kwargs = pyfunc_kwargs(files)
    version_str = kwargs["metadata"]["model_version"]
    code = code_hash(kwargs.get("code_paths") or [])
    meta = read_json(files["version"])
    client = _client()
    registry_version = find_version(client, name, version_str, code)
    if registry_version is not None:
        log.info("registry: %s version %s already holds model %s with this code", name, registry_version,
                 version_str)
    else:
        run_tags = {"stage": "export", "model_version": version_str,
                    "git_commit": str(meta.get("git_commit")), "params_hash": str(meta.get("params_hash")),
                    **{k: str(v) for k, v in (meta.get("data_window") or {}).items()},
                    **{k: str(v) for k, v in (tags or {}).items()}}
        from leadscore.tracking import stage_run

        with stage_run("export", tags=run_tags):  # nested under the pipeline run
            info = mlflow.pyfunc.log_model(name="scorer", registered_model_name=name, **kwargs)
        registry_version = str(info.registered_model_version)
        client.set_model_version_tag(name, registry_version, "model_version", version_str)
        client.set_model_version_tag(name, registry_version, "code_hash", code)
        client.set_model_version_tag(name, registry_version, "kind", str(meta.get("kind", "lightgbm")))
        for k in ("git_commit", "params_hash"):
            client.set_model_version_tag(name, registry_version, k, str(meta.get(k)))
    set_alias(name, alias, registry_version)
    return registry_version


def code_hash(code_paths: list[str]) -> str:
    """SHA-256 (16 hex digits) of the code a model carries (the leadscore wheel: byte-identical
    for the same code), "none" when it carries none."""
    if not code_paths:
        return "none"
    h = hashlib.sha256()
    for path in sorted(code_paths):
        h.update(file_sha256(Path(path)).encode())
    return h.hexdigest()[:16]


def find_version(client, name: str, model_version: str, code: str) -> str | None:
    """The newest registry version of `name` holding the model `model_version` with the code
    `code` (`code_hash`), None when there is none: a model exported again with other code
    (e.g. a version from before the wheel was carried) becomes a new version."""
    quoted = filter_literal(name, "registered model name")
    if not client.search_registered_models(filter_string=f"name = {quoted}"):
        return None
    found = client.search_model_versions(
        f"name = {quoted} and tags.model_version = {filter_literal(model_version, 'model version')} "
        f"and tags.code_hash = {filter_literal(code, 'code hash')}")
    return str(max(int(v.version) for v in found)) if found else None


def download_alias(name: str, alias: str, out: str | Path) -> ModelRef:
    """Copy the MLflow model `alias` points at to the folder `out` (swapped in whole), so
    DVC and the batch job read a local file; return its reference."""
    import mlflow.artifacts

    ref = alias_ref(name, alias)
    if ref is None:
        raise ModelError(f"registry: {name}@{alias} is not set (no model has passed the gate yet)")
    with atomic_path(out) as tmp:
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}@{alias}", dst_path=str(tmp))
    return ref


def log_metrics_to_version(name: str, version: str, metrics: Mapping[str, float],
                           tags: Mapping[str, str] | None = None) -> dict[str, float]:
    """Put `metrics` (finite numbers; nothing per lead) on registry version `version` of
    `name`: as version tags, and as metrics of the version's source run linked to its logged
    model (MLflow 3 `model_id`), so `mlflow ui` lists and compares them per version. `tags`
    are set on the version too. Returns the metrics logged."""
    import math

    from mlflow.entities import Metric
    from mlflow.utils.time import get_current_time_millis

    client = _client()
    mv = client.get_model_version(name, str(version))
    nums = {k: float(v) for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
    for key, value in nums.items():
        client.set_model_version_tag(name, str(version), key, f"{value:.6g}")
    for key, value in (tags or {}).items():
        client.set_model_version_tag(name, str(version), key, str(value))
    if mv.run_id and nums:
        now = get_current_time_millis()
        model_id = version_model_id(mv)
        client.log_batch(mv.run_id, metrics=[Metric(k, v, now, 0, model_id=model_id, run_id=mv.run_id)
                                             for k, v in nums.items()])
    log.info("registry: %s version %s: %s", name, version,
             ", ".join(f"{k} {v:.4g}" for k, v in nums.items()))
    return nums


def version_model_id(mv) -> str | None:
    """The logged model (MLflow 3) behind a registry version: its `model_id`, or the id in a
    ``models:/<model_id>`` source (the SQL registry returns no `model_id`); None for a version
    registered from a plain path."""
    if getattr(mv, "model_id", None):
        return mv.model_id
    source = str(mv.source or "")
    rest = source.removeprefix("models:/")
    return rest if rest != source and rest.startswith("m-") and "/" not in rest else None


def version_figures(evaluation: Mapping, gate: Mapping) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, tags) for `log_metrics_to_version`: the shipped kind's out-of-time test
    metrics from the evaluation (``test_roc_auc``...) and the gate's result (``gate_passed``,
    ``gate_promoted``, ``gate_check_<name>`` as 1/0; tag ``gate_decision``)."""
    champion = evaluation.get("champion") or {}
    keys = ("roc_auc", "pr_auc", "ece", "brier", "log_loss", "lift_top_decile", "precision_at_k",
            "recall_at_k")
    metrics = {f"test_{k}": champion[k] for k in keys if k in champion}
    metrics |= {"gate_passed": float(bool(gate.get("passed"))),
                "gate_promoted": float(bool(gate.get("promoted")))}
    metrics |= {f"gate_check_{c['name']}": float(bool(c.get("passed"))) for c in gate.get("checks", [])}
    tags = {"gate_decision": str(gate.get("decision"))} if gate.get("decision") else {}
    if champion.get("name"):
        tags["evaluated_kind"] = str(champion["name"])
    return metrics, tags
