"""MLflow: one parent run per pipeline run with the stages nested in it, and the evaluation's
test metrics plus the gate's result on the registered model version. Local SQLite store in
tmp_path; nothing per lead is logged."""

from __future__ import annotations

import os

import mlflow
import pytest
from mlflow import MlflowClient

from leadscore.lifecycle.registry import log_metrics_to_version, version_figures, version_model_id
from leadscore.tracking import PIPELINE_TAG, log_run, pipeline_key, setup_mlflow


@pytest.fixture(scope="module")
def _sqlite(tmp_path_factory):
    """One SQLite store for the module (creating one takes seconds)."""
    root = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("DVC_ROOT", str(root))
        setup_mlflow(f"sqlite:///{root / 'mlruns.db'}", "test")
        yield root
    mlflow.set_tracking_uri(None)


@pytest.fixture
def store(_sqlite, monkeypatch):
    for var in ("MLFLOW_TRACKING_URI", "DVC_STAGE", "LEADSCORE_PIPELINE_RUN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DVC_ROOT", str(_sqlite))
    setup_mlflow(f"sqlite:///{_sqlite / 'mlruns.db'}", "test")
    return MlflowClient()


def _stage(name: str, **kw) -> str:
    return log_run(run_name=name, params={"section": {"key": 1}}, metrics={"m": {"auc": 0.7}},
                   tags={"stage": name}, parent_params={"seed": 42}, **kw)


@pytest.mark.slow  # the SQLite store takes seconds to create
def test_stages_of_one_pipeline_run_nest_under_one_parent(store, monkeypatch):
    monkeypatch.setenv("LEADSCORE_PIPELINE_RUN", "nightly 1")  # sanitised to nightly_1
    first, second = _stage("train_model"), _stage("evaluate")
    runs = [store.get_run(r) for r in (first, second)]
    parent_id = runs[0].data.tags["mlflow.parentRunId"]
    assert runs[1].data.tags["mlflow.parentRunId"] == parent_id
    parent = store.get_run(parent_id)
    assert parent.data.tags[PIPELINE_TAG] == "nightly_1"
    assert parent.info.run_name.startswith("pipeline ")
    assert parent.data.params["seed"] == "42"  # every param of the pipeline run, once
    assert parent.info.status == "FINISHED" and parent.info.end_time >= runs[1].info.start_time
    assert runs[0].data.metrics["m.auc"] == pytest.approx(0.7)

    monkeypatch.setenv("LEADSCORE_PIPELINE_RUN", "nightly 2")  # the next pipeline run
    assert store.get_run(_stage("train_model")).data.tags["mlflow.parentRunId"] != parent_id


@pytest.mark.slow
def test_a_stage_run_by_hand_has_no_parent(store):
    run = store.get_run(_stage("train_rules"))
    assert "mlflow.parentRunId" not in run.data.tags


def test_pipeline_key_under_dvc_names_the_dvc_process():
    env = {"DVC_STAGE": "train_model"}
    key = pipeline_key(env)
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("no /proc: no key (each stage logs a top-level run)")
    assert key is not None and key.startswith("dvc-") and key == pipeline_key(env)
    assert pipeline_key({}) is None
    assert pipeline_key({"LEADSCORE_PIPELINE_RUN": "x", "DVC_STAGE": "s"}) == "x"


def test_version_figures_from_the_evaluation_and_the_gate():
    evaluation = {"champion": {"name": "lightgbm", "roc_auc": 0.81, "ece": 0.004, "roc_auc_ci": [0.8, 0.82]}}
    gate = {"passed": True, "promoted": False, "decision": "report only",
            "checks": [{"name": "auc", "passed": True}, {"name": "calibration", "passed": False}]}
    metrics, tags = version_figures(evaluation, gate)
    assert metrics == {"test_roc_auc": 0.81, "test_ece": 0.004, "gate_passed": 1.0,
                       "gate_promoted": 0.0, "gate_check_auc": 1.0, "gate_check_calibration": 0.0}
    assert tags == {"gate_decision": "report only", "evaluated_kind": "lightgbm"}


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [0.5] * len(model_input)


@pytest.mark.slow
def test_test_metrics_and_gate_land_on_the_registered_version(store):
    with mlflow.start_run(run_name="export"):
        info = mlflow.pyfunc.log_model(name="scorer", python_model=_Constant(),
                                       registered_model_name="leadscore", pip_requirements=[])
    version = str(info.registered_model_version)
    metrics, tags = version_figures({"champion": {"name": "lightgbm", "roc_auc": 0.81}},
                                    {"passed": False, "promoted": False, "decision": "refused",
                                     "checks": [{"name": "auc", "passed": False}]})
    log_metrics_to_version("leadscore", version, metrics, tags)
    mv = store.get_model_version("leadscore", version)
    assert mv.tags["test_roc_auc"] == "0.81" and mv.tags["gate_decision"] == "refused"
    assert store.get_run(mv.run_id).data.metrics["test_roc_auc"] == pytest.approx(0.81)  # registry "Compare"
    model_metrics = {m.key: m.value for m in store.get_logged_model(version_model_id(mv)).metrics}
    assert model_metrics["gate_passed"] == 0.0 and model_metrics["test_roc_auc"] == pytest.approx(0.81)



STAGE_SCRIPT = """import sys
from leadscore.tracking import pipeline_key
open(sys.argv[1] + ".key", "w").write(str(pipeline_key()))
"""


@pytest.mark.slow  # real DVC in a throw-away repository
def test_stages_of_one_dvc_repro_share_a_key_and_the_next_repro_gets_another(tmp_path):
    """The key the stages' MLflow runs find their parent by (the nesting itself is
    `test_stages_of_one_pipeline_run_nest_under_one_parent`)."""
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "stage.py").write_text(STAGE_SCRIPT)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  a:\n    cmd: python stage.py a\n    deps: [stage.py]\n    outs:\n"
        "      - a.key:\n          cache: false\n"
        "  b:\n    cmd: python stage.py b\n    deps: [stage.py, a.key]\n    outs:\n"
        "      - b.key:\n          cache: false\n")
    env = {k: v for k, v in os.environ.items() if k not in ("LEADSCORE_PIPELINE_RUN", "DVC_STAGE")}
    env |= {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    dvc = str(Path(sys.executable).with_name("dvc"))

    def run(*cmd):
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    def keys():
        return [(tmp_path / f"{n}.key").read_text() for n in ("a", "b")]

    run("git", "init", "-q")
    run(dvc, "init", "-q")
    run(dvc, "repro", "-q")
    first = keys()
    assert first[0].startswith("dvc-") and first[0] == first[1]
    run(dvc, "repro", "-q", "-f")
    second = keys()
    assert second[0] == second[1] != first[0]


def test_filter_literal_refuses_what_could_break_out_of_an_mlflow_filter():
    from leadscore.errors import ConfigError
    from leadscore.tracking import filter_literal

    assert filter_literal("leadscore") == "'leadscore'"
    assert filter_literal("dvc-123-456.7-exp_1") == "'dvc-123-456.7-exp_1'"
    for bad in ("x' or name != '", 'a"b', "back`tick", "new\nline", ""):
        with pytest.raises(ConfigError, match="MLflow search filter"):
            filter_literal(bad, "registered model name")
