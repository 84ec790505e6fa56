"""The issue's done-when: score -> monitor -> (next quarter) score -> monitor on a small
synthetic CRM. Quiet on the history, alerting after the shifted quarter (a new lead source);
the CLI exits 4 on the alert, the stage convention writes the report and exits 0."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
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
from leadscore.data.synthetic import generate_crm, generate_next_quarter
from leadscore.errors import EXIT_GUARD
from leadscore.features.build import feature_catalog, training_table_from_crm
from leadscore.features.catalog import save_catalog
from leadscore.modeling.baseline import PointsRuleClassifier, save_rules
from leadscore.monitor.history import read_runs
from leadscore.monitor.run import run_monitor
from leadscore.serve.batch import score_with_params
from leadscore.serve.export import export_scorer
from pipelines.monitor import app as stage_app

pytestmark = pytest.mark.slow  # generates two CRMs and scores them twice (~10 s)

SEED = 11
CFG = GenerateConfig(n_leads=3000, chunk_leads=3000)
F = FeaturesConfig()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("monitor_cycle")
    generate_crm(CFG, SEED, d / "q0.duckdb")
    generate_next_quarter(CFG, SEED, d / "q1.duckdb")
    ingest("duckdb", d / "q0.duckdb", d / "crm.duckdb", IngestConfig().free_mail_domains)
    table, _ = training_table_from_crm(d / "crm.duckdb", F)
    table.to_parquet(d / "train.parquet")
    save_rules(PointsRuleClassifier.from_config(TrainRulesConfig()).fit(table, table["label"]), d / "rules.json")
    save_catalog(feature_catalog(F.windows_days, F.content_types), d / "catalog.json")
    export_scorer(kind="rules", catalog=d / "catalog.json", rules=d / "rules.json", out=d / "scorer")
    (d / "params.yaml").write_text(yaml.safe_dump({
        "generate": {"n_leads": CFG.n_leads, "chunk_leads": CFG.chunk_leads},
        "ingest": {"source": "duckdb", "path": str(d / "q0.duckdb")},
        "monitor": {"history": str(d / "history.duckdb"), "reference_table": str(d / "train.parquet")}}))
    return {"root": d, "params": d / "params.yaml", "history": d / "history.duckdb"}


def _score(world, source: str, out: str):
    p = load_params(world["params"])
    return score_with_params(p, out=world["root"] / out, model_uri=str(world["root"] / "scorer"),
                             source=world["root"] / source, progress=False)


def _monitor(world) -> tuple[int, str, dict]:
    report = world["root"] / "monitor.json"
    result = CliRunner().invoke(cli, ["monitor", "--params", str(world["params"]), "--report", str(report)])
    return result.exit_code, result.output, run_monitor(world["history"], load_params(world["params"]).monitor)


def test_quiet_on_the_history_then_alerting_after_the_shifted_quarter(world):
    first = _score(world, "q0.duckdb", "s0.parquet")
    code, out, doc = _monitor(world)
    assert code == 0, out
    assert doc["status"] == "ok" and doc["alerts"] == []
    assert "monitor: ok" in out

    again = _score(world, "q0.duckdb", "s0b.parquet")  # the same run again: still one row
    assert again.run_id == first.run_id
    assert len(read_runs(world["history"])) == 1

    second = _score(world, "q1.duckdb", "s1.parquet")  # the next quarter, as of its end
    assert second.as_of > first.as_of
    code, out, doc = _monitor(world)
    assert code == EXIT_GUARD, out
    assert "new_levels" in doc["alerts"] and "ALERT new_levels" in out
    psi = doc["runs"][-1]["psi"]["features"]
    assert max(psi, key=psi.get) == "source"  # partner_referral moved the source mix most
    assert psi["source"] >= doc["thresholds"]["psi_warn"]
    assert doc["runs"][0]["psi"]["features"]["source"] < 0.05  # and it did not before
    stage_report = world["root"] / "stage" / "monitor.json"  # the stage reports, exits 0
    result = CliRunner().invoke(stage_app, ["--params", str(world["params"]), "--report", str(stage_report)])
    assert result.exit_code == 0, result.output
    assert "new_levels" in json.loads(stage_report.read_text())["alerts"]
    runs = read_runs(world["history"])
    assert [r["run_id"] for r in runs] == [first.run_id, second.run_id]
    assert [r["leads_scored"] for r in runs] == [first.leads_scored, second.leads_scored]
    assert all(r["summary"]["rows"] == r["leads_scored"] for r in runs)  # every lead counted once


def test_history_rows_carry_no_lead_ids(world):
    if not world["history"].exists():
        _score(world, "q0.duckdb", "s0.parquet")
    ids = set(pd.read_parquet(world["root"] / "s0.parquet", columns=["lead_id"])["lead_id"])
    with duckdb.connect(str(world["history"]), read_only=True) as con:
        text = " ".join(str(v) for t in ("score_runs", "reference")
                        for row in con.execute(f"SELECT * FROM {t}").fetchall() for v in row)
    assert ids and not any(i in text for i in list(ids)[:200])
