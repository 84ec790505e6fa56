"""Export the approved model as one MLflow pyfunc model, and manage its registry alias.

`export_scorer` collects the trained artifacts (LightGBM text model, estimator, calibrator,
grade cut points, feature catalog, rule table) plus a `version.json` (model version, data
window, git commit, params hash) and saves them as an MLflow "models from code" pyfunc
(`leadscore/serve/model_code.py` is the code, which hands MLflow the
`leadscore.serve.pyfunc.ScorerModel` around `leadscore.serve.scorer.Scorer`; nothing is
pickled) with an enforced signature:

- inputs: the feature table's columns in catalog (= booster) order; categorical columns are
  ``string``, the rest ``double``, all required;
- outputs: probability, grade, fit_grade, engagement_grade, rule_points, rule_grade and
  reasons (an array of {code, text, contribution}).

`model_version` is a content hash of the artifacts, so the same model always has the same
version string, whether it is loaded from `models/scorer` or from the registry.

`save_scorer` writes the model to a temporary folder next to the target and swaps it in
(`leadscore.io.atomic_path`): the previous model stays in place until the new one is
complete, and a failed export leaves it untouched.

`register_scorer` logs the same model to the tracking store, registers it (reusing an
existing registry version that holds the same `model_version`), and points an alias
(`champion`) at it. `promote` / `rollback` move the alias; the previous target is kept in
the registered model's tag ``previous_<alias>`` so a rollback can undo a promotion.

The model holds no copy of the `leadscore` package (its source holds the test canaries, and a
copy on sys.path would shadow the installed package): the serving environment installs
`leadscore` plus the pinned requirements. Spark: `mlflow.pyfunc.spark_udf(spark, uri,
result_type=...)` runs the same artifact on executors that have `leadscore` installed;
pyspark is not a dependency of this project, so that path is not tested here. MLflow is
imported inside the functions that need it, so importing this module does not load it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from leadscore.errors import ModelError
from leadscore.io import atomic_path, read_json, write_json
from leadscore.serve.scorer import ARTIFACT_FILES, Scorer

log = logging.getLogger(__name__)

CODE_FILE = Path(__file__).with_name("model_code.py")
_REQUIREMENTS = ("mlflow", "lightgbm", "numpy", "pandas", "scikit-learn", "pyarrow")


def model_version(files: Mapping[str, str | Path]) -> str:
    """Content hash of the scoring artifacts (excluding version.json): 16 hex digits."""
    h = hashlib.sha256()
    for key in sorted(files):
        if key == "version":
            continue
        h.update(key.encode() + b"\0" + Path(files[key]).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def signature_for(scorer) -> object:
    """The MLflow signature of `scorer` (a `leadscore.serve.scorer.Scorer`)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import Array, Object, Property

    inputs = Schema([ColSpec(t, n) for n, t in scorer.input_types().items()])
    reason = Object([Property("code", "string"), Property("text", "string"),
                     Property("contribution", "double")])
    outputs = Schema([
        ColSpec("double", "probability"), ColSpec("string", "grade"),
        ColSpec("string", "fit_grade"), ColSpec("string", "engagement_grade"),
        ColSpec("double", "rule_points"), ColSpec("string", "rule_grade"),
        ColSpec(Array(reason), "reasons"),
    ])
    return ModelSignature(inputs=inputs, outputs=outputs)


def _requirements() -> list[str]:
    out = []
    for name in _REQUIREMENTS:
        try:
            out.append(f"{name}=={md.version(name)}")
        except md.PackageNotFoundError:  # pragma: no cover - all are installed here
            out.append(name)
    return out


def scorer_sources(model_dir: str | Path, *, grading: str | Path, catalog: str | Path,
                   rules: str | Path | None) -> dict[str, Path]:
    """Artifact key -> the file the pipeline wrote: the trained LightGBM folder (model.txt,
    estimator.json, calibrator.json), the grade cut points, the catalog and the rules."""
    model_dir = Path(model_dir)
    sources = {"booster": model_dir / "model.txt", "estimator": model_dir / "estimator.json",
               "calibrator": model_dir / "calibrator.json", "grading": Path(grading),
               "catalog": Path(catalog)}
    if rules is not None:
        sources["rules"] = Path(rules)
    return sources


def collect_artifacts(
    model_dir: str | Path, *, grading: str | Path, catalog: str | Path, rules: str | Path | None,
    out_dir: str | Path, git_commit: str | None = None,
) -> dict[str, Path]:
    """Copy the scoring artifacts into `out_dir` and write `version.json`; return key -> path.

    `model_dir` is the trained LightGBM folder (model.txt, estimator.json, calibrator.json,
    metadata.json). The version metadata takes the data window and params hash from the
    training metadata; `git_commit` defaults to the one recorded at training.
    """
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    sources = scorer_sources(model_dir, grading=grading, catalog=catalog, rules=rules)
    missing = [str(p) for p in sources.values() if not p.is_file()]
    if missing:
        raise ModelError(f"cannot export the scorer: missing artifact(s) {missing} "
                         "(run the train_model, train_rules and explain stages)")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, src in sources.items():
        files[key] = out_dir / ARTIFACT_FILES[key]
        shutil.copyfile(src, files[key])
    meta = read_json(model_dir / "metadata.json") if (model_dir / "metadata.json").exists() else {}
    version = {
        "model_version": model_version(files),
        "data_window": meta.get("data_window", {}),
        "git_commit": git_commit or meta.get("git_commit", "unknown"),
        "params_hash": meta.get("params_hash", "unknown"),
        "target_stage": meta.get("target_stage"),
        "horizon_days": meta.get("horizon_days"),
        "calibration": (meta.get("calibration") or {}).get("chosen"),
        "best_iteration": meta.get("best_iteration"),
    }
    files["version"] = out_dir / ARTIFACT_FILES["version"]
    write_json(version, files["version"])
    return files


def _pyfunc_kwargs(files: Mapping[str, Path]) -> dict:
    scorer = Scorer.from_artifacts(files)
    return {
        "python_model": str(CODE_FILE),
        "artifacts": {k: str(v) for k, v in files.items()},
        "signature": signature_for(scorer),
        "pip_requirements": _requirements(),
        "metadata": {"model_version": scorer.model_version},
    }


def save_scorer(files: Mapping[str, Path], out: str | Path) -> str:
    """Save the MLflow model to the folder `out` (swapped in as a whole once complete; see
    `leadscore.io.atomic_path`); return its version."""
    import mlflow.pyfunc

    kwargs = _pyfunc_kwargs(files)
    with atomic_path(out) as tmp:
        mlflow.pyfunc.save_model(path=str(tmp), **kwargs)
    return kwargs["metadata"]["model_version"]


def export_scorer(
    model_dir: str | Path, *, grading: str | Path, catalog: str | Path, rules: str | Path | None,
    out: str | Path, git_commit: str | None = None, register_as: tuple[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict:
    """Collect the artifacts, save the MLflow model to `out` and, with `register_as`
    (name, alias), register it and point the alias at it (call
    `leadscore.tracking.setup_mlflow` first). Returns the version metadata plus the
    registry name, version and alias (None when not registered)."""
    with tempfile.TemporaryDirectory(prefix="leadscore-export-") as tmp:
        files = collect_artifacts(model_dir, grading=grading, catalog=catalog, rules=rules,
                                  out_dir=tmp, git_commit=git_commit)
        version = save_scorer(files, out)
        log.info("exported scorer %s to %s", version, out)
        meta = read_json(files["version"])
        name, alias, registry_version = None, None, None
        if register_as is not None:
            name, alias = register_as
            registry_version = register_scorer(files, name=name, alias=alias, tags=tags)
    return {**meta, "registered_model": name, "registry_version": registry_version, "alias": alias}


def register_scorer(
    files: Mapping[str, Path], *, name: str, alias: str, tags: Mapping[str, str] | None = None,
) -> str:
    """Log the scorer to the active MLflow experiment, register it as `name` and set `alias`
    to it. Reuses the registry version that already holds this `model_version`. Returns the
    registry version (a string of digits). Call `leadscore.tracking.setup_mlflow` first."""
    import mlflow
    from mlflow import MlflowClient

    kwargs = _pyfunc_kwargs(files)
    version_str = kwargs["metadata"]["model_version"]
    meta = read_json(files["version"])
    client = MlflowClient()
    existing = []
    if client.search_registered_models(filter_string=f"name = '{name}'"):
        existing = client.search_model_versions(
            f"name = '{name}' and tags.model_version = '{version_str}'")
    if existing:
        registry_version = str(max(int(v.version) for v in existing))
        log.info("registry: %s version %s already holds model %s", name, registry_version, version_str)
    else:
        run_tags = {"stage": "export", "model_version": version_str,
                    "git_commit": str(meta.get("git_commit")), "params_hash": str(meta.get("params_hash")),
                    **{k: str(v) for k, v in (meta.get("data_window") or {}).items()},
                    **{k: str(v) for k, v in (tags or {}).items()}}
        with mlflow.start_run(run_name="export", tags=run_tags):
            info = mlflow.pyfunc.log_model(name="scorer", registered_model_name=name, **kwargs)
        registry_version = str(info.registered_model_version)
        client.set_model_version_tag(name, registry_version, "model_version", version_str)
        for k in ("git_commit", "params_hash"):
            client.set_model_version_tag(name, registry_version, k, str(meta.get(k)))
    promote(name, alias, registry_version)
    return registry_version


def current_alias_version(name: str, alias: str) -> str | None:
    """The registry version `alias` points at, or None."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def promote(name: str, alias: str, version: str | int) -> str | None:
    """Point `alias` at `version`; remember the previous target. Returns the previous one."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        client.get_model_version(name, str(version))
    except MlflowException:
        raise ModelError(f"registry: model '{name}' has no version {version}") from None
    previous = current_alias_version(name, alias)
    if previous == str(version):
        return previous
    client.set_registered_model_alias(name, alias, str(version))
    if previous is not None:
        client.set_registered_model_tag(name, f"previous_{alias}", previous)
    log.info("registry: %s@%s -> version %s (was %s)", name, alias, version, previous)
    return previous


def rollback(name: str, alias: str) -> str:
    """Point `alias` back at the version it held before the last promotion; return it."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException:
        raise ModelError(f"registry: no registered model '{name}'") from None
    previous = tags.get(f"previous_{alias}")
    if not previous:
        raise ModelError(f"registry: {name}@{alias} has no previous version to roll back to")
    promote(name, alias, previous)
    return previous
