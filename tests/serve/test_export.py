"""The exported MLflow scorer: same output as the in-pipeline scorer, enforced signature, no
pickle, registry alias with promote/rollback."""

from __future__ import annotations

import shutil

import mlflow
import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from leadscore.errors import ModelError
from leadscore.io import read_json, write_json
from leadscore.lifecycle.registry import alias_ref, promote
from leadscore.serve.export import export_scorer
from leadscore.serve.scorer import OUTPUT_COLUMNS, Scorer
from tests.serve.trained import AS_OF

pytestmark = pytest.mark.slow  # trains LightGBM or runs whole stages; `make test-fast` skips it


def _in_pipeline(t) -> Scorer:
    m = t.models
    return Scorer.from_artifacts({
        "booster": m / "lightgbm/model.txt", "estimator": m / "lightgbm/estimator.json",
        "calibrator": m / "lightgbm/calibrator.json", "grading": m / "grading.json",
        "catalog": m / "feature_catalog.json", "rules": m / "rules.json",
        "version": m / "scorer/artifacts/version.json"})


def _features(t) -> pd.DataFrame:
    return t.table[t.table["as_of"] == AS_OF].reset_index(drop=True)[t.catalog.names]


def test_pyfunc_gives_exactly_the_in_pipeline_scorer_output(trained):  # noqa: F811
    X = _features(trained)
    got = mlflow.pyfunc.load_model(str(trained.scorer)).predict(X)
    want = _in_pipeline(trained).score(X).reset_index(drop=True)
    assert list(got.columns) == list(OUTPUT_COLUMNS)
    pd.testing.assert_frame_equal(got.drop(columns="reasons"), want.drop(columns="reasons"))
    assert got["reasons"].tolist() == want["reasons"].tolist()
    assert set(got["grade"]) <= {f"{a}{d}" for a in "ABCD" for d in "1234"}
    first = got["reasons"].iloc[0]
    assert 0 < len(first) <= 6 and set(first[0]) == {"code", "text", "contribution"}


def test_signature_is_enforced(trained):  # noqa: F811
    model = mlflow.pyfunc.load_model(str(trained.scorer))
    X = _features(trained).drop(columns=["pricing_page_view_30d"])
    with pytest.raises(MlflowException, match="pricing_page_view_30d"):
        model.predict(X)


def test_model_holds_safe_formats_only(trained):  # noqa: F811
    files = [p.name for p in trained.scorer.rglob("*") if p.is_file()]
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib"))]
    assert "model.txt" in files and "grading.json" in files
    version = read_json(trained.scorer / "artifacts/version.json")
    assert {"kind", "model_version", "data_window", "git_commit", "params_hash"} <= set(version)
    assert version["kind"] == "lightgbm"


def test_export_registers_the_challenger_and_never_moves_the_champion(trained, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns.db'}")
    mlflow.set_experiment("leadscore-test")
    m = trained.models
    kw = dict(grading=m / "grading.json", catalog=m / "feature_catalog.json", rules=m / "rules.json")
    first = export_scorer(m / "lightgbm", out=tmp_path / "s1", register_as=("leadscore", "challenger"), **kw)
    promote("leadscore", "champion", first["registry_version"])
    again = export_scorer(m / "lightgbm", out=tmp_path / "s1", register_as=("leadscore", "challenger"), **kw)
    assert first["registry_version"] == again["registry_version"] == "1"  # same model, same version
    # a different model (other rules) becomes version 2 and the challenger; champion stays
    rules2 = tmp_path / "rules2.json"
    shutil.copy(m / "rules.json", rules2)
    rules2.write_text(rules2.read_text().replace('"mql_threshold": 50', '"mql_threshold": 60'))
    second = export_scorer(m / "lightgbm", out=tmp_path / "s2", register_as=("leadscore", "challenger"),
                           **{**kw, "rules": rules2})
    assert second["registry_version"] == "2"
    challenger = mlflow.pyfunc.load_model("models:/leadscore@challenger")
    assert challenger.metadata.metadata["model_version"] == second["model_version"]
    assert mlflow.pyfunc.load_model("models:/leadscore@champion").metadata.metadata["model_version"] == \
        first["model_version"]
    assert alias_ref("leadscore", "champion").kind == "lightgbm"
    with pytest.raises(ModelError, match="no version 9"):
        promote("leadscore", "champion", "9")


def test_export_stage_exits_3_without_the_model_and_keeps_the_old_folder(trained, tmp_path):  # noqa: F811
    from typer.testing import CliRunner

    from pipelines import export as export_stage

    (tmp_path / "params.yaml").write_text("export:\n  register_model: false\n")
    write_json({"champion": {"name": "lightgbm"}}, tmp_path / "evaluate.json")
    out = tmp_path / "scorer"
    shutil.copytree(trained.scorer, out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    m = trained.models
    args = ["--params", str(tmp_path / "params.yaml"), "--evaluate", str(tmp_path / "evaluate.json"),
            "--grading", str(m / "grading.json"),
            "--rules", str(m / "rules.json"), "--catalog", str(m / "feature_catalog.json"),
            "--out", str(out), "--metrics", str(tmp_path / "export.json")]
    result = CliRunner().invoke(export_stage.app, [*args, "--models", str(tmp_path / "nope")])
    assert result.exit_code == 3, result.output
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    ok = CliRunner().invoke(export_stage.app, [*args, "--models", str(m)])
    assert ok.exit_code == 0, ok.output
    assert read_json(tmp_path / "export.json")["model_version"] == \
        read_json(trained.scorer / "artifacts/version.json")["model_version"]
    assert mlflow.pyfunc.load_model(str(out)).metadata.metadata["model_version"] == \
        read_json(tmp_path / "export.json")["model_version"]
