"""Export the approved model as one MLflow pyfunc model, and manage its registry alias.

`export_scorer` collects the artifacts of one **kind** of scorer (`leadscore.serve.scorer`:
``lightgbm``, ``logistic`` or ``rules``) plus a `version.json` (kind, model version, data
window, git commit, params hash) and saves them as an MLflow "models from code" pyfunc
(`leadscore/serve/model_code.py` is the code, which hands MLflow the
`leadscore.serve.pyfunc.ScorerModel` around `leadscore.serve.scorer.Scorer`; nothing is
pickled) with an enforced signature. The artifacts per kind (`scorer_sources`):

- ``lightgbm``: the trained folder's model.txt, estimator.json and calibrator.json, the grade
  cut points, the catalog and (optional) the rules;
- ``logistic``: the trained folder's model.json and calibrator.json, the grade cut points
  learned on its contributions, the catalog and (optional) the rules;
- ``rules``: the fitted rules (rules.json) and the catalog; no model folder, no grading.

The signature is the same for every kind:

- inputs: the feature table's columns in catalog (= model) order; categorical columns are
  ``string``, the rest ``double``, all required;
- outputs: probability, grade, fit_grade, engagement_grade, rule_points, rule_grade and
  reasons (an array of {code, text, contribution}).

`model_version` is a content hash of the artifacts, so the same model always has the same
version string, whether it is loaded from `models/scorer` or from the registry.

`save_scorer` writes the model to a temporary folder next to the target and swaps it in
(`leadscore.io.atomic_path`): the previous model stays in place until the new one is
complete, and a failed export leaves it untouched.

`export_scorer` with `register_as=(name, alias)` registers the model through
`leadscore.lifecycle.registry.register_scorer` (the challenger alias); moving `champion` is
the gate's job (`leadscore.lifecycle.promotion`).

The model carries the `leadscore` package it imports as a **wheel**, not as source on sys.path:
`leadscore_wheel` packs the installed package's files into
``code/leadscore-<version>-py3-none-any.whl`` (MLflow `code_paths`; byte-identical for the
same code), and the model's requirements name it (``code/leadscore-...whl``, resolved by pip
inside the model folder) next to the pinned third-party packages the scoring code imports
(`_REQUIREMENTS`). So `mlflow models serve -m <model>` with its default environment manager
installs leadscore from the model, and `--env-manager local` uses the installed one. MLflow
prepends ``code/`` to sys.path at load, but a wheel file there is not importable: the
installed `leadscore` is never shadowed by a copy, and the source (which holds the test
canaries) is not stored as plain text. The wheel is not an artifact: `model_version` (the
content hash of the scoring artifacts) does not change with the code, and the load-time
check (`leadscore.serve.batch.verify_model_folder`) is unchanged.

Spark: `mlflow.pyfunc.spark_udf(spark, uri, result_type=...)` runs the same artifact on
executors that have `leadscore` installed (or install it from the model's wheel);
pyspark is not a dependency of this project, so that path is not tested here. MLflow is
imported inside the functions that need it, so importing this module does not load it.
"""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import importlib.metadata as md
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from leadscore.errors import ConfigError, ModelError
from leadscore.io import atomic_path, read_json, write_json
from leadscore.serve.scorer import ARTIFACT_FILES, KIND_ARTIFACTS, Scorer

log = logging.getLogger(__name__)

CODE_FILE = Path(__file__).with_name("model_code.py")
# the third-party packages that loading and running the scorer imports (leadscore.serve.pyfunc)
_REQUIREMENTS = ("mlflow", "lightgbm", "numpy", "pandas", "scikit-learn", "scipy", "pyarrow", "duckdb")
_WHEEL_DATE = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same code gives the same wheel
WHEEL_DIR = "code"  # where MLflow stores code_paths inside the model folder


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


def _requirements(wheel: Path | None = None) -> list[str]:
    """The model's pip requirements: the pinned `_REQUIREMENTS` and, with `wheel`, the
    leadscore wheel carried in the model (a path relative to the model folder)."""
    out = []
    for name in _REQUIREMENTS:
        try:
            out.append(f"{name}=={md.version(name)}")
        except md.PackageNotFoundError:  # pragma: no cover - all are installed here
            out.append(name)
    if wheel is not None:
        out.append(f"{WHEEL_DIR}/{wheel.name}")
    return out


def _leadscore_version() -> str:
    try:
        return md.version("leadscore")
    except md.PackageNotFoundError:  # pragma: no cover - leadscore runs from its install
        return "0.0.0"


def build_wheel(out_dir: str | Path) -> Path:
    """Pack the installed `leadscore` package (its files, without bytecode caches) into a
    pure-Python wheel in `out_dir`; return its path. No build backend is needed, and the
    same code gives a byte-identical wheel (sorted entries, fixed timestamps). It declares
    no dependencies: the model's requirements pin the ones scoring needs."""
    import leadscore

    root = Path(leadscore.__file__).parent
    version = _leadscore_version()
    dist_info = f"leadscore-{version}.dist-info"
    path = Path(out_dir) / f"leadscore-{version}-py3-none-any.whl"
    entries: list[tuple[str, bytes]] = []
    for f in sorted(root.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".pyc", ".pyo"):
            entries.append((f"leadscore/{f.relative_to(root).as_posix()}", f.read_bytes()))
    entries.append((f"{dist_info}/METADATA",
                    f"Metadata-Version: 2.1\nName: leadscore\nVersion: {version}\n".encode()))
    entries.append((f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: leadscore.serve.export\n"
                                          b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
    record = []
    for name, data in entries:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    entries.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_WHEEL_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return path


@functools.cache
def leadscore_wheel() -> Path:
    """The leadscore wheel of this process's code (`build_wheel`), built once into a
    temporary folder removed at exit."""
    tmp = tempfile.mkdtemp(prefix="leadscore-wheel-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    return build_wheel(tmp)


def model_kind(model_dir: str | Path | None) -> str:
    """The kind of a trained model folder: "rules" without one, "logistic" when it holds
    model.json (and no model.txt), else "lightgbm"."""
    if model_dir is None:
        return "rules"
    model_dir = Path(model_dir)
    if not (model_dir / "model.txt").exists() and (model_dir / "model.json").exists():
        return "logistic"
    return "lightgbm"


def scorer_sources(model_dir: str | Path | None = None, *, kind: str | None = None,
                   grading: str | Path | None = None, catalog: str | Path,
                   rules: str | Path | None = None) -> dict[str, Path]:
    """Artifact key -> the file the pipeline wrote, for a scorer of `kind` (None: from
    `model_dir`, see `model_kind`): the trained folder (LightGBM: model.txt, estimator.json,
    calibrator.json; logistic: model.json, calibrator.json), the grade cut points, the
    catalog and the rules. The rules kind takes no model folder and no grading; its rules
    are required. `ModelError` when a required one is not given."""
    kind = kind or model_kind(model_dir)
    if kind not in KIND_ARTIFACTS:
        raise ConfigError(f"unknown scorer kind {kind!r} (one of {', '.join(KIND_ARTIFACTS)})")
    sources = {"catalog": Path(catalog)}
    if kind == "rules":
        if rules is None:
            raise ModelError("cannot export a rules scorer without the fitted rules (rules.json)")
    else:
        if model_dir is None or grading is None:
            raise ModelError(f"cannot export a {kind} scorer without its model folder and its "
                             "grade cut points (grading)")
        model_dir = Path(model_dir)
        model_files = ({"booster": "model.txt", "estimator": "estimator.json"} if kind == "lightgbm"
                       else {"model": "model.json"})
        sources.update({k: model_dir / f for k, f in model_files.items()})
        sources.update({"calibrator": model_dir / "calibrator.json", "grading": Path(grading)})
    if rules is not None:
        sources["rules"] = Path(rules)
    return sources


def collect_artifacts(
    model_dir: str | Path | None = None, *, kind: str | None = None,
    grading: str | Path | None = None, catalog: str | Path, rules: str | Path | None = None,
    out_dir: str | Path, git_commit: str | None = None, metadata: Mapping | None = None,
) -> dict[str, Path]:
    """Copy the scoring artifacts of a `kind` scorer (see `scorer_sources`) into `out_dir`
    and write `version.json`; return key -> path.

    The version metadata (kind, model version, data window, params hash, ...) takes the
    training metadata from `metadata`, else from `model_dir`/metadata.json (none for the
    rules kind unless given); `git_commit` defaults to the one recorded at training.
    """
    kind = kind or model_kind(model_dir)
    out_dir = Path(out_dir)
    sources = scorer_sources(model_dir, kind=kind, grading=grading, catalog=catalog, rules=rules)
    missing = [str(p) for p in sources.values() if not p.is_file()]
    if missing:
        raise ModelError(f"cannot export the {kind} scorer: missing artifact(s) {missing} "
                         "(run the train_model, train_rules and explain stages)")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, src in sources.items():
        files[key] = out_dir / ARTIFACT_FILES[key]
        shutil.copyfile(src, files[key])
    if metadata is not None:
        meta = dict(metadata)
    elif model_dir is not None and kind != "rules" and (Path(model_dir) / "metadata.json").exists():
        meta = read_json(Path(model_dir) / "metadata.json")
    else:
        meta = {}
    calibration = (meta.get("calibration") or {}).get("chosen")
    if calibration is None and kind == "rules":
        calibration = (read_json(files["rules"]).get("calibrator") or {}).get("method")
    version = {
        "kind": kind,
        "model_version": model_version(files),
        "data_window": meta.get("data_window", {}),
        "git_commit": git_commit or meta.get("git_commit", "unknown"),
        "params_hash": meta.get("params_hash", "unknown"),
        "target_stage": meta.get("target_stage"),
        "horizon_days": meta.get("horizon_days"),
        "calibration": calibration,
        "best_iteration": meta.get("best_iteration"),
    }
    files["version"] = out_dir / ARTIFACT_FILES["version"]
    write_json(version, files["version"])
    return files


def pyfunc_kwargs(files: Mapping[str, Path]) -> dict:
    """The arguments of `mlflow.pyfunc.save_model` / `log_model` for the scorer built from `files`."""
    scorer = Scorer.from_artifacts(files)
    wheel = leadscore_wheel()
    return {
        "python_model": str(CODE_FILE),
        "artifacts": {k: str(v) for k, v in files.items()},
        "signature": signature_for(scorer),
        "code_paths": [str(wheel)],
        "pip_requirements": _requirements(wheel),
        "metadata": {"model_version": scorer.model_version, "kind": scorer.kind},
    }


def save_scorer(files: Mapping[str, Path], out: str | Path) -> str:
    """Save the MLflow model to the folder `out` (swapped in as a whole once complete; see
    `leadscore.io.atomic_path`); return its version."""
    import mlflow.pyfunc

    kwargs = pyfunc_kwargs(files)
    with atomic_path(out) as tmp:
        mlflow.pyfunc.save_model(path=str(tmp), **kwargs)
    return kwargs["metadata"]["model_version"]


def export_scorer(
    model_dir: str | Path | None = None, *, kind: str | None = None,
    grading: str | Path | None = None, catalog: str | Path, rules: str | Path | None = None,
    out: str | Path, git_commit: str | None = None, register_as: tuple[str, str] | None = None,
    tags: Mapping[str, str] | None = None, metadata: Mapping | None = None,
) -> dict:
    """Collect the artifacts of a `kind` scorer (see `scorer_sources`; None: from
    `model_dir`), save the MLflow model to `out` and, with `register_as` (name, alias),
    register it and point the alias at it (call `leadscore.tracking.setup_mlflow` first).
    Returns the version metadata plus the registry name, version and alias (None when not
    registered)."""
    with tempfile.TemporaryDirectory(prefix="leadscore-export-") as tmp:
        files = collect_artifacts(model_dir, kind=kind, grading=grading, catalog=catalog, rules=rules,
                                  out_dir=tmp, git_commit=git_commit, metadata=metadata)
        version = save_scorer(files, out)
        meta = read_json(files["version"])
        log.info("exported %s scorer %s to %s", meta["kind"], version, out)
        name, alias, registry_version = None, None, None
        if register_as is not None:
            name, alias = register_as
            from leadscore.lifecycle.registry import register_scorer

            registry_version = register_scorer(files, name=name, alias=alias, tags=tags)
    return {**meta, "registered_model": name, "registry_version": registry_version, "alias": alias}
