"""A slice of the real pipeline (generate -> ingest -> validate -> features) on a small CRM,
run through the stage entry points and the CLI, then searched for the planted canary PII."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.cli import app as cli
from leadscore.schema import CANARY_EMAIL
from pipelines import features as features_stage
from pipelines import generate as generate_stage
from pipelines import ingest as ingest_stage
from pipelines import validate as validate_stage
from tests.builders import CANARIES, canary_hits, strings_in

pytestmark = pytest.mark.slow  # trains LightGBM or runs whole stages; `make test-fast` skips it

runner = CliRunner()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, str]:
    """Run the four stages on 1,500 leads; return the folder and everything they logged."""
    root = tmp_path_factory.mktemp("project")
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["generate"]["n_leads"] = 1500
    params["generate"]["chunk_leads"] = 1000
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    p = str(root / "params.yaml")
    d = root / "data"
    logs = []
    for app, args in [
        (generate_stage.app, ["--params", p, "--out", str(d / "raw/crm.duckdb"), "--metrics", str(root / "metrics/generate.json"),
                             "--details", str(root / "reports/generate.json")]),
        (ingest_stage.app, ["--params", p, "--out", str(d / "interim/crm.duckdb")]),
        (validate_stage.app, ["--params", p, "--in", str(d / "interim/crm.duckdb"), "--out", str(d / "interim/validated.duckdb"),
                              "--report", str(root / "reports/validation.json"), "--metrics", str(root / "metrics/validate.json")]),
        (features_stage.app, ["--params", p, "--in", str(d / "interim/validated.duckdb"), "--out", str(d / "processed/train.parquet"),
                              "--catalog", str(d / "processed/feature_catalog.json"), "--metrics", str(root / "metrics/features.json"),
                              "--details", str(root / "reports/features.json")]),
    ]:
        if app is ingest_stage.app:  # ingest reads ingest.path from params
            params["ingest"]["path"] = str(d / "raw/crm.duckdb")
            (root / "params.yaml").write_text(yaml.safe_dump(params))
        result = runner.invoke(app, args)
        logs.append(result.output)
        assert result.exit_code == 0, result.output
    return root, "\n".join(logs)


def test_stages_write_their_outputs(project):
    root, _ = project
    table = pd.read_parquet(root / "data/processed/train.parquet")
    metrics = json.loads((root / "metrics/features.json").read_text())
    assert len(table) == metrics["rows"] > 0
    details = json.loads((root / "reports/features.json").read_text())
    assert "per_as_of" in details and "per_as_of" not in metrics  # headline only for dvc metrics
    assert set(table.label.unique()) <= {0, 1}
    assert 0.01 < table.label.mean() < 0.15
    catalog = json.loads((root / "data/processed/feature_catalog.json").read_text())
    assert [c["name"] for c in catalog] == list(table.columns[3:])


def test_canary_pii_is_in_the_source_but_in_no_file_the_pipeline_writes(project):
    root, logs = project
    source = root / "data/raw/crm.duckdb"
    # positive control: the search does find the canary where it is planted
    assert all(c in strings_in(source) for c in CANARIES)
    assert canary_hits(root, exclude={source, root / "params.yaml"}) == {}
    assert not [c for c in CANARIES if c in logs]


def test_failing_validation_leaks_no_pii_and_writes_nothing(project, tmp_path):
    root, _ = project
    bad = tmp_path / "bad.duckdb"
    con = duckdb.connect(str(bad))
    con.execute(f"ATTACH '{root / 'data/interim/crm.duckdb'}' AS src (READ_ONLY)")
    con.execute("CREATE TABLE leads AS SELECT * FROM src.leads")
    con.execute("CREATE TABLE outcomes AS SELECT * FROM src.outcomes")
    # a third of all events get an event type outside the contract: far above the budget
    con.execute(
        "CREATE TABLE events AS SELECT * REPLACE (CASE WHEN hash(event_id) % 3 = 0 "
        f"THEN '{CANARY_EMAIL}' ELSE event_type END AS event_type) FROM src.events"
    )
    con.close()
    out = tmp_path / "validated.duckdb"
    result = runner.invoke(validate_stage.app, [
        "--params", str(root / "params.yaml"), "--in", str(bad), "--out", str(out),
        "--report", str(tmp_path / "report.json"), "--metrics", str(tmp_path / "metrics.json"),
    ])
    assert result.exit_code == 1
    assert "event_type" in result.output
    assert CANARY_EMAIL not in result.output
    assert not out.exists() and not (tmp_path / "report.json").exists()


def test_cli_generate_and_validate(tmp_path):
    out = tmp_path / "crm.duckdb"
    gen = runner.invoke(cli, ["generate", "--leads", "300", "--out", str(out)])
    assert gen.exit_code == 0, gen.output
    assert "300 leads" in gen.output
    ok = runner.invoke(cli, ["validate", str(out)])
    assert ok.exit_code == 0, ok.output
    assert "leads: 300 rows in" in ok.output
    missing = runner.invoke(cli, ["validate", str(tmp_path / "nope.duckdb")])
    assert missing.exit_code == 1
    assert "nope.duckdb" in missing.output


def test_cli_metrics_prints_the_comparison(tmp_path):
    cols = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "precision_at_k", "recall_at_k", "lift_top_decile")
    evaluation = {m: {**dict.fromkeys(cols, 0.5), "roc_auc": auc, "roc_auc_ci": [auc - 0.01, auc + 0.01]}
                  for m, auc in (("rules", 0.61), ("logistic", 0.72), ("lightgbm", 0.73))}
    evaluation |= {"auc_diff": 0.12, "auc_diff_ci": [0.1, 0.14]}
    path = tmp_path / "evaluate.json"
    path.write_text(json.dumps(evaluation))
    shown = runner.invoke(cli, ["metrics", "--path", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "0.7300" in shown.output and "[+0.1000, +0.1400]" in shown.output
    missing = runner.invoke(cli, ["metrics", "--path", str(tmp_path / "none.json")])
    assert missing.exit_code == 1
