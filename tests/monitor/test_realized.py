"""Realized performance end to end (issue 11, deliverable 3): scores issued at the data
cutoff are judged on the outcomes of the next two quarters.

* the unshifted continuation (`NO_SHIFT`) with the model that was trained: quiet;
* a shifted lead base (the generator's default next-quarter shift: conversion falls, a new
  source) and a stale model (its engagement points turned upside down: what signalled intent
  when it was trained no longer does): the realized-performance alerts fire, with the drift
  alert once the next quarter is scored.

The expectation is a backtest-shaped file whose folds are the hand-written rules' ROC-AUC on
the last four months of the training table (computed here, not typed in)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from leadscore.cli import app as cli
from leadscore.config import (
    FeaturesConfig,
    GenerateConfig,
    IngestConfig,
    TrainRulesConfig,
    load_params,
)
from leadscore.data.ingest import ingest
from leadscore.data.synthetic import DEFAULT_SHIFT, NO_SHIFT, generate_crm, generate_next_quarter
from leadscore.errors import EXIT_GUARD
from leadscore.features.build import feature_catalog, training_table_from_crm
from leadscore.features.catalog import save_catalog
from leadscore.io import write_json
from leadscore.modeling.baseline import PointsRuleClassifier, save_rules
from leadscore.monitor.history import read_lead_rows, read_runs
from leadscore.monitor.run import monitor_with_params
from leadscore.serve.batch import score_with_params
from leadscore.serve.export import export_scorer
from leadscore.serve.publish import read_scores

pytestmark = pytest.mark.slow  # three small CRMs, two scorers, four scoring runs (~15 s)

SEED = 11
CFG = GenerateConfig(n_leads=8000, chunk_leads=8000)
F = FeaturesConfig()
REALIZED = ("realized_auc", "realized_calibration", "realized_lift")


def _stale_rules() -> TrainRulesConfig:
    base = TrainRulesConfig()
    return base.model_copy(update={
        "engagement_points": {k: -v for k, v in base.engagement_points.items()},
        "content_points": {k: -v for k, v in base.content_points.items()}})


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("realized")
    generate_crm(CFG, SEED, d / "q0.duckdb")
    generate_next_quarter(CFG, SEED, d / "same.duckdb", quarters=2, shift=NO_SHIFT)
    generate_next_quarter(CFG, SEED, d / "shifted.duckdb", quarters=2, shift=DEFAULT_SHIFT)
    ingest("duckdb", d / "q0.duckdb", d / "crm.duckdb", IngestConfig().free_mail_domains)
    table, _ = training_table_from_crm(d / "crm.duckdb", F)
    table.to_parquet(d / "train.parquet")
    save_catalog(feature_catalog(F.windows_days, F.content_types), d / "catalog.json")
    good = PointsRuleClassifier.from_config(TrainRulesConfig()).fit(table, table["label"])
    stale = PointsRuleClassifier.from_config(_stale_rules()).fit(table, table["label"])
    for name, rules in (("good", good), ("stale", stale)):
        save_rules(rules, d / f"{name}.json")
        export_scorer(kind="rules", catalog=d / "catalog.json", rules=d / f"{name}.json", out=d / name)
    months = sorted(table["as_of"].unique())[-4:]
    folds = [{"models": {"rules": {"roc_auc": roc_auc_score(m["label"], good.predict_proba(m)[:, 1])}}}
             for m in (table[table["as_of"] == t] for t in months)]
    write_json({"folds": folds}, d / "backtest.json")
    return {"root": d, "folds": [f["models"]["rules"]["roc_auc"] for f in folds]}


def _params(world, name: str) -> Path:
    d = world["root"]
    path = d / f"params_{name}.yaml"
    path.write_text(yaml.safe_dump({
        "ingest": {"source": "duckdb", "path": str(d / "q0.duckdb")},
        "monitor": {"history": str(d / f"history_{name}.duckdb"), "reference_table": str(d / "train.parquet"),
                    "backtest_metrics": str(d / "backtest.json")}}))
    return path


def _score(world, params: Path, model: str, source: str):
    d = world["root"]
    return score_with_params(load_params(params), out=d / f"{params.stem}_{source}.parquet",
                             model_uri=str(d / model), source=d / f"{source}.duckdb", progress=False)


def test_quiet_when_the_world_did_not_change(world):
    params = _params(world, "quiet")
    run = _score(world, params, "good", "q0")
    doc = monitor_with_params(load_params(params), source=world["root"] / "same.duckdb")
    assert doc["status"] == "ok", doc["alerts"]
    [entry] = doc["realized"]["runs"]
    assert entry["status"] == "matured" and entry["run_id"] == run.run_id
    assert entry["n"] == run.leads_scored and entry["conversions"] >= 30
    assert entry["expected"]["backtest"]["roc_auc_min"] == pytest.approx(min(world["folds"]))
    lo, hi = entry["roc_auc_ci"]
    assert lo < entry["roc_auc"] < hi and hi >= min(world["folds"])
    assert sum(g["n"] for g in entry["grades"].values()) == entry["n"]
    lf = entry["lift"]  # both arms present, each handed over its top 5% in its own order
    assert lf["model"]["leads"] + lf["control"]["leads"] == entry["n"]
    assert 0.05 < lf["control"]["leads"] / entry["n"] < 0.15
    checks = {c["name"]: c for c in doc["checks"]}
    assert all(checks[n]["passed"] for n in REALIZED)


def test_stale_model_and_shifted_quarter_alert_then_drift_after_the_next_score(world):
    params = _params(world, "stale")
    first = _score(world, params, "stale", "q0")
    doc = monitor_with_params(load_params(params), source=world["root"] / "shifted.duckdb")
    assert {"realized_auc", "realized_calibration"} <= set(doc["alerts"])
    entry = doc["realized"]["runs"][-1]
    assert entry["run_id"] == first.run_id
    assert entry["roc_auc_ci"][1] < min(world["folds"])  # below the backtest's range
    assert entry["mean_probability"] > entry["observed_rate_ci"][1]  # conversion fell
    # the next quarter scored with the same stale model: drift joins the realized alerts
    second = _score(world, params, "stale", "shifted")
    result = CliRunner().invoke(cli, ["monitor", "--params", str(params),
                                      "--source", str(world["root"] / "shifted.duckdb")])
    assert result.exit_code == EXIT_GUARD, result.output
    assert "ALERT new_levels" in result.output and "ALERT realized_auc" in result.output
    assert "retrain recommended" in result.output
    doc = monitor_with_params(load_params(params), source=world["root"] / "shifted.duckdb")
    statuses = {r["run_id"]: r["status"] for r in doc["realized"]["runs"]}
    assert statuses == {first.run_id: "matured", second.run_id: "pending"}


def test_arms_are_stable_and_lead_rows_match_the_published_scores(world):
    params = _params(world, "quiet")
    run = _score(world, params, "good", "q0")  # the same run: recorded once
    scores = read_scores(world["root"] / "params_quiet_q0.parquet")
    assert (scores["run_id"] == run.run_id).all()
    rows = read_lead_rows(load_params(params).monitor.history, [run.run_id])
    assert len(read_runs(load_params(params).monitor.history)) == 1
    merged = scores.merge(rows, on="lead_id", suffixes=("", "_h"), validate="one_to_one")
    assert len(merged) == len(scores)
    assert (merged["arm"] == merged["arm_h"]).all()
    assert (merged["probability"] == merged["probability_h"]).all()
    assert set(rows.columns) == {"run_id", "lead_id", "probability", "grade", "rule_points", "arm"}
    other_params = _params(world, "arms_stale")
    _score(world, other_params, "stale", "q0")
    other = read_scores(world["root"] / "params_arms_stale_q0.parquet")  # another model, same leads
    both = scores.merge(other, on="lead_id", suffixes=("", "_o"))
    assert len(both) > 1000 and (both["arm"] == both["arm_o"]).all()
    assert pd.Series(scores["arm"]).value_counts().to_dict().keys() == {"model", "control"}


def test_monitor_without_the_crm_is_a_clear_error(world, tmp_path):
    params = _params(world, "no_crm")
    _score(world, params, "good", "q0")  # a history to check
    result = CliRunner().invoke(cli, ["monitor", "--params", str(params), "--source", str(tmp_path / "nope.duckdb")])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert "Traceback" not in result.output


def test_runs_not_matured_are_pending_with_their_date(world):
    params = _params(world, "pending")
    run = _score(world, params, "good", "q0")
    doc = monitor_with_params(load_params(params))  # outcomes only up to the cutoff
    [entry] = doc["realized"]["runs"]
    assert entry["status"] == "pending"
    assert entry["matures_on"] == (run.as_of + dt.timedelta(days=F.horizon_days)).date().isoformat()
    assert all(c["passed"] for c in doc["checks"] if c["name"] in REALIZED)


def test_a_reference_without_expectation_gets_one_at_the_next_run(world):
    params = _params(world, "backfill")
    _score(world, params, "good", "q0")
    path = load_params(params).monitor.history
    with duckdb.connect(str(path)) as con:  # as a history written before `expected` existed
        con.execute("UPDATE reference SET expected = NULL")
    _score(world, params, "good", "same")  # another run of the same model version
    with duckdb.connect(str(path), read_only=True) as con:
        [(expected,)] = con.execute("SELECT expected FROM reference").fetchall()
    assert expected is not None and "roc_auc" in expected
