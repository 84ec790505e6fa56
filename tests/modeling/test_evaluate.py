"""Evaluation outputs, and a slice of the pipeline (train_rules -> train_model -> evaluate)
run in-process on a tiny synthetic table, including the too-little-data paths."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.config import load_params
from leadscore.errors import EXIT_GUARD, EXIT_INPUT
from leadscore.explain.grades import grade_matrix
from leadscore.features.catalog import save_catalog
from leadscore.io import write_parquet
from leadscore.modeling.baseline import load_rules
from leadscore.modeling.evaluate import evaluate_models, metrics_table
from leadscore.modeling.splits import split_from_params
from pipelines import evaluate as evaluate_stage
from pipelines import train_model as train_model_stage
from pipelines import train_rules as train_rules_stage
from tests.builders import SPLIT_KW, synthetic_catalog, synthetic_table

runner = CliRunner()


def test_evaluate_models_reports_every_model_and_the_auc_difference():
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.1).astype(int)
    good = np.clip(0.1 + 0.3 * y + rng.normal(0, .1, len(y)), .001, .999)
    weak = np.clip(0.1 + 0.05 * y + rng.normal(0, .1, len(y)), .001, .999)
    ev = evaluate_models(y, {"rules": weak, "logistic": good, "lightgbm": good},
                         period=np.repeat([1, 2, 3], 1000), groups=np.arange(3000) // 2,
                         k=100, n_boot=30, seed=0)
    for name in ("rules", "logistic", "lightgbm"):
        assert {"roc_auc", "pr_auc", "log_loss", "brier", "ece"} <= set(ev.metrics[name])
    lo, hi = ev.metrics["auc_diff_ci"]
    assert 0 < lo <= ev.metrics["auc_diff"] <= hi
    assert len(ev.gains["rules"]) == 10
    assert "lightgbm - rules" in metrics_table(ev.metrics)


def _project(tmp_path, **train_model):
    df = synthetic_table(n_per_month=250, strength=2.0)
    write_parquet(df, tmp_path / "train.parquet")
    save_catalog(synthetic_catalog(), tmp_path / "catalog.json")
    params = {
        "seed": 1,
        "features": {"horizon_days": SPLIT_KW["horizon_days"]},
        "split": {k: v for k, v in SPLIT_KW.items() if k != "horizon_days"},
        "train_model": {"min_positives": 20, "num_threads": 1, "max_boost_rounds": 200,
                        "optuna": {"n_trials": 2, "timeout_s": 60, "n_startup_trials": 2},
                        "leakage": {"max_random_gap": 0.2}, **train_model},
        "evaluate": {"reps": 1, "leads_per_rep": 30, "n_bootstrap": 20},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def _train_model(p, *extra):
    return runner.invoke(train_model_stage.app, [
        "--params", str(p / "params.yaml"), "--train", str(p / "train.parquet"),
        "--catalog", str(p / "catalog.json"), "--out", str(p / "lightgbm"),
        "--logistic-out", str(p / "logistic"), "--metrics", str(p / "train_model.json"),
        "--no-track", *extra])


@pytest.mark.slow
def test_pipeline_slice_writes_metrics_for_all_three_models(tmp_path):
    p = _project(tmp_path)
    r = runner.invoke(train_rules_stage.app, [
        "--params", str(p / "params.yaml"), "--train", str(p / "train.parquet"),
        "--out", str(p / "rules.json"), "--metrics", str(p / "train_rules.json"), "--no-track"])
    assert r.exit_code == 0, r.output
    r = _train_model(p)
    assert r.exit_code == 0, r.output
    assert (p / "lightgbm" / "model.txt").exists() and (p / "logistic" / "model.json").exists()
    meta = json.loads((p / "lightgbm" / "metadata.json").read_text())
    trained = dt.datetime.fromisoformat(meta["trained_at"])
    assert abs((dt.datetime.now(dt.UTC) - trained).total_seconds()) < 3600  # the report shows it
    # the shipped models are refitted on the rows mature before the test slice, never on it
    summary = json.loads((p / "train_model.json").read_text())
    test_first = summary["windows"]["test"]["as_of_first"]
    for name in ("lightgbm", "logistic"):
        refit = summary[name]["refit"]
        assert refit["rows"] > summary["windows"]["train"]["rows"]
        assert refit["as_of_last"] < test_first
        assert summary[name]["settings"] == json.loads(
            (p / name / "metadata.json").read_text())["settings"]
    assert meta["refit"]["rounds"] >= 1
    r = runner.invoke(evaluate_stage.app, [
        "--params", str(p / "params.yaml"), "--train", str(p / "train.parquet"),
        "--rules", str(p / "rules.json"), "--logistic", str(p / "logistic"),
        "--lightgbm", str(p / "lightgbm"), "--metrics", str(p / "evaluate.json"),
        "--catalog", str(p / "catalog.json"), "--plots", str(p / "plots"), "--no-track"])
    assert r.exit_code == 0, r.output
    m = json.loads((p / "evaluate.json").read_text())
    for name in ("rules", "logistic", "lightgbm"):
        assert {"roc_auc", "pr_auc", "log_loss", "brier", "ece"} <= set(m[name])
    assert len(m["auc_diff_ci"]) == 2
    assert (p / "plots" / "gains.csv").exists() and (p / "plots" / "reliability_lightgbm.csv").exists()
    assert len(m["rules_grades"]["cells"]) == 16
    # the capacity handoff is chosen on calib for the model that ships, with its grade cut
    cap = m["capacity"]
    assert cap["model"] == m["champion"]["name"] and cap["capacity_per_month"] == 30
    assert cap["calib"]["threshold_leads_per_month"] <= 30 and cap["grade_cut"]
    assert {"threshold", "grade_cut", "rules_mql", "rules_at_capacity"} <= set(cap["test"])
    assert set(m["segments"]["columns"]) == {"source", "country", "industry", "company_size_band"} - set(
        m["segments"]["missing_columns"])


def _train_rules(p):
    return runner.invoke(train_rules_stage.app, [
        "--params", str(p / "params.yaml"), "--train", str(p / "train.parquet"),
        "--out", str(p / "rules.json"), "--metrics", str(p / "train_rules.json"), "--no-track"])


def _evaluate(p, *extra):
    return runner.invoke(evaluate_stage.app, [
        "--params", str(p / "params.yaml"), "--train", str(p / "train.parquet"),
        "--rules", str(p / "rules.json"), "--logistic", str(p / "logistic"),
        "--lightgbm", str(p / "lightgbm"), "--metrics", str(p / "evaluate.json"),
        "--catalog", str(p / "catalog.json"), "--plots", str(p / "plots"), "--no-track", *extra])


def test_evaluate_stage_reports_the_rules_grade_matrix_of_grade_matrix(tmp_path):
    p = _project(tmp_path)
    assert _train_rules(p).exit_code == 0
    for name in ("logistic", "lightgbm"):  # fallback markers: the stage evaluates the rules only
        (p / name).mkdir()
        (p / name / "metadata.json").write_text(json.dumps({"status": "fallback_to_rules"}))
    r = _evaluate(p)
    assert r.exit_code == 0, r.output
    m = json.loads((p / "evaluate.json").read_text())
    assert m["fallback_to_rules"] is True and "lightgbm" not in m and "roc_auc" in m["rules"]
    # rules_grades is exactly grade_matrix on the test slice, graded by the rules' bands, with
    # the rules' calibrated probability as the prediction (the schema of metrics/grades.json)
    params = load_params(p / "params.yaml")
    test = split_from_params(pd.read_parquet(p / "train.parquet"), params).test
    rules = load_rules(p / "rules.json")
    g = rules.grade(test)
    expected = grade_matrix(test["label"], g["fit_grade"], g["engagement_grade"],
                            rules.predict_proba(test)[:, 1], alpha=params.explain.significance)
    assert m["rules_grades"] == json.loads(json.dumps(expected))
    assert sum(c["count"] for c in m["rules_grades"]["cells"]) == m["test"]["rows"]
    assert all(isinstance(v, dict) for v in m["rules_grades"]["violations"])
    # the plot CSVs keep 6 significant digits
    gains = (p / "plots" / "gains.csv").read_text().splitlines()
    assert gains[0].startswith("decile,share_of_leads,cum_gain_rules")
    assert max(len(x.lstrip("-0.").replace(".", "").split("e")[0]) for line in gains[1:]
               for x in line.split(",")) <= 6


def test_evaluate_stage_names_a_missing_input(tmp_path):
    p = _project(tmp_path)
    r = _evaluate(p)
    assert r.exit_code == EXIT_INPUT
    assert "rules.json: not found" in r.output
    assert not (p / "evaluate.json").exists()


def test_too_little_data_stops_with_the_counts(tmp_path):
    p = _project(tmp_path, min_positives=100_000)
    r = _train_model(p)
    assert r.exit_code == EXIT_GUARD  # too few positives: a guard refused
    assert "positive labels in the training slice; at least 100000 are needed" in r.output
    assert not (p / "lightgbm").exists()


def test_too_little_data_can_fall_back_to_the_rules(tmp_path):
    p = _project(tmp_path, min_positives=100_000, fallback_to_rules=True)
    r = _train_model(p)
    assert r.exit_code == 0
    assert "Falling back to the rule baseline" in r.output
    marker = json.loads((p / "lightgbm" / "metadata.json").read_text())
    assert marker["status"] == "fallback_to_rules"
    assert not (p / "lightgbm" / "model.txt").exists()


def test_a_leaky_column_stops_training_and_is_named(tmp_path):
    p = _project(tmp_path)
    df = synthetic_table(n_per_month=250, strength=2.0)
    df["opportunity_amount"] = np.where(df["label"] == 1, 5000.0, np.nan)
    write_parquet(df, p / "train.parquet")
    cat = synthetic_catalog()
    from leadscore.features.catalog import FeatureCatalog, FeatureSpec
    save_catalog(FeatureCatalog(cat.features + (FeatureSpec("opportunity_amount", "fit", "x", "USD"),)),
                 p / "catalog.json")
    r = _train_model(p)
    assert r.exit_code == EXIT_GUARD  # the leakage probe refused
    assert "opportunity_amount" in r.output and "leakage probe" in r.output


@pytest.mark.slow
def test_mlflow_run_logs_params_metrics_tags_and_no_rows(tmp_path, monkeypatch):
    import mlflow

    from leadscore.tracking import log_run, setup_mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    setup_mlflow(f"sqlite:///{tmp_path / 'mlruns.db'}", "test")
    run_id = log_run(run_name="train_model",
                     params={"train_rules": {"fit_points": {"company_size_band": {"5001+": 10}}}},
                     metrics={"lightgbm": {"valid": {"roc_auc": 0.8}}, "bad": float("nan")},
                     tags={"git_commit": "abc123", "train_as_of_first": "2024-04-01"},
                     dicts={"summary.json": {"rows": 10}})
    run = mlflow.get_run(run_id)
    assert run.data.params["train_rules.fit_points.company_size_band.5001plus"] == "10"
    assert run.data.metrics == {"lightgbm.valid.roc_auc": 0.8}
    assert run.data.tags["git_commit"] == "abc123"
    logged = "".join(p.read_text(errors="ignore") for p in tmp_path.rglob("*.json"))
    assert "L000" not in logged  # no lead ids (rows are never logged)
