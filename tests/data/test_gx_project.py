"""The GX project: suites generated from the code, checkpoints per table, Data Docs, no PII."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest
import yaml

from leadscore.config import IngestConfig, ValidateConfig, load_params
from leadscore.data.gx_project import RESULT_FORMAT, data_docs_link
from leadscore.data.ingest import ingest
from leadscore.data.validate import (
    ALL_TABLES,
    ValidationFailed,
    suites,
    sync_gx_project,
    validate_crm,
)
from leadscore.errors import ConfigError
from leadscore.schema import CANARY_EMAIL, CANARY_FIRST_NAME, CANARY_LAST_NAME
from tests.builders import write_crm

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2025, 1, 1)
CANARIES = (CANARY_EMAIL, CANARY_FIRST_NAME, CANARY_LAST_NAME, "ann.lee@acme-corp.com", "bob.king@gmail.com")


def _without_ids(expectations: list[dict]) -> list[str]:
    return [json.dumps({k: v for k, v in e.items() if k != "id"}, sort_keys=True, default=str)
            for e in expectations]


def _generated(max_null_share: dict) -> dict[str, list[str]]:
    return {s.name: _without_ids([e.configuration.to_json_dict() for e in s.expectations])
            for s in suites(max_null_share)}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _cfg(**kw) -> ValidateConfig:
    return ValidateConfig(**{"quarantine_budget": 1.0, "max_null_share": {}, "sample_keys": 3, **kw})


def _interim(tmp_path: Path, crm) -> Path:
    raw = write_crm(crm, "duckdb", tmp_path / "raw.duckdb")
    ingest("duckdb", raw, tmp_path / "interim.duckdb", IngestConfig().free_mail_domains)
    return tmp_path / "interim.duckdb"


def test_committed_suites_match_the_code_and_params():
    """gx/expectations/*.json are generated, not hand-written: regenerate with `dvc repro validate`."""
    bounds = load_params(REPO / "params.yaml").validate_.max_null_share
    committed = {name: _without_ids(json.loads((REPO / "gx/expectations" / f"{name}.json").read_text())
                                    ["expectations"]) for name in ALL_TABLES}
    assert committed == _generated(bounds)


def test_committed_project_has_one_checkpoint_per_table_and_in_memory_results():
    for name in ALL_TABLES:
        checkpoint = json.loads((REPO / "gx/checkpoints" / f"{name}.json").read_text())
        assert [v["name"] for v in checkpoint["validation_definitions"]] == [name]
        assert checkpoint["actions"] == [] and checkpoint["result_format"] == RESULT_FORMAT
        definition = json.loads((REPO / "gx/validation_definitions" / f"{name}.json").read_text())
        assert definition["suite"]["name"] == name and definition["data"]["asset"]["name"] == name
    config = yaml.safe_load((REPO / "gx/great_expectations.yml").read_text())
    assert config["analytics_enabled"] is False
    assert config["stores"]["validation_results_store"]["store_backend"]["class_name"] == "InMemoryStoreBackend"
    site = config["data_docs_sites"]["local_site"]["store_backend"]["base_directory"]
    assert site == "../reports/data_docs/"


def test_sync_creates_the_project_then_leaves_it_byte_identical(tmp_path):
    gx_dir = tmp_path / "gx"
    sync_gx_project(gx_dir, {}, tmp_path / "reports/data_docs")
    first = _files(gx_dir)
    assert {f"expectations/{n}.json" for n in ALL_TABLES} <= set(first)
    assert {f"checkpoints/{n}.json" for n in ALL_TABLES} <= set(first)
    sync_gx_project(gx_dir, {}, tmp_path / "reports/data_docs")
    assert _files(gx_dir) == first


def test_sync_rewrites_only_the_suite_whose_bounds_changed(tmp_path):
    gx_dir = tmp_path / "gx"
    sync_gx_project(gx_dir, {}, None)
    before = _files(gx_dir)
    sync_gx_project(gx_dir, {"events": {"content_type": 0.5}}, None)
    after = _files(gx_dir)
    assert after["expectations/events.json"] != before["expectations/events.json"]
    assert after["expectations/leads.json"] == before["expectations/leads.json"]
    bounds = [e["kwargs"]["min_value"] for e in json.loads(after["expectations/events.json"])["expectations"]
              if e["type"] == "expect_column_proportion_of_non_null_values_to_be_between"]
    assert bounds == [0.5]


def test_suite_parameter_keeps_run_time_out_of_the_files(tmp_path):
    gx_dir = tmp_path / "gx"
    sync_gx_project(gx_dir, {}, None)
    suite = json.loads((gx_dir / "expectations/events.json").read_text())
    future = [e for e in suite["expectations"] if e["meta"].get("reason") == "future_timestamp"]
    assert [e["kwargs"]["max_value"] for e in future] == [{"$PARAMETER": "now"}]


def test_validate_with_project_builds_data_docs_and_writes_nothing_under_gx(crm, tmp_path):
    crm["events"].loc[crm["events"].event_id == "E03", "event_type"] = "page_like"
    interim = _interim(tmp_path, crm)
    gx_dir, docs = tmp_path / "gx", tmp_path / "reports/data_docs"
    sync_gx_project(gx_dir, {}, docs)
    before = _files(gx_dir)
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("stale site")
    (docs / "stale.html").write_text("from an earlier run")
    result = validate_crm(interim, tmp_path / "v.duckdb", now=NOW, cfg=_cfg(), gx_dir=gx_dir,
                          data_docs_dir=docs)
    assert result.metrics["events"]["rows_quarantined"] == 1
    assert _files(gx_dir) == before  # results stay in memory; suites already in sync
    assert not (docs / "stale.html").exists()
    pages = [p.relative_to(docs).as_posix() for p in docs.rglob("*.html")]
    assert "index.html" in pages
    assert {"expectations/leads.html", "expectations/events.html"} <= set(pages)
    assert len([p for p in pages if p.startswith("validations/events/")]) == 1
    assert "page_like" in "".join(p.read_text() for p in (docs / "validations").rglob("*.html"))


def test_data_docs_hold_no_personal_data_even_when_the_raw_crm_is_validated(crm, tmp_path, caplog):
    """The canary e-mail and name never reach the Data Docs: not from the ingested CRM (no PII
    columns), nor from a raw CRM handed to validate by mistake (PII columns are blanked)."""
    crm["events"].loc[crm["events"].event_id == "E05", "occurred_at"] = dt.datetime(2030, 1, 1)
    docs = tmp_path / "reports/data_docs"
    caplog.set_level(logging.DEBUG)
    validate_crm(_interim(tmp_path, crm), tmp_path / "v.duckdb", now=NOW, cfg=_cfg(),
                 gx_dir=tmp_path / "gx", data_docs_dir=docs)
    text = "".join(p.read_text(errors="replace") for p in docs.rglob("*") if p.is_file())
    assert "2030-01-01" in text  # the docs do show unexpected values...
    assert not [c for c in CANARIES if c in text]  # ...but never personal data

    raw = write_crm(crm, "duckdb", tmp_path / "raw_with_pii.duckdb")
    with pytest.raises(ValidationFailed, match="unexpected column"):
        validate_crm(raw, tmp_path / "v2.duckdb", now=NOW, cfg=_cfg(), gx_dir=tmp_path / "gx",
                     data_docs_dir=docs)
    text = "".join(p.read_text(errors="replace") for p in docs.rglob("*") if p.is_file())
    assert "first_name" in text  # the failed run's docs: column names...
    assert not [c for c in CANARIES if c in text]  # ...never their values
    assert not [c for c in CANARIES if c in caplog.text]


def test_in_memory_context_builds_data_docs_too(crm, tmp_path):
    docs = tmp_path / "docs"
    validate_crm(_interim(tmp_path, crm), tmp_path / "v.duckdb", now=NOW, cfg=_cfg(), data_docs_dir=docs)
    assert (docs / "index.html").exists()
    assert not (tmp_path / "gx").exists()


def test_refuses_to_replace_a_folder_that_is_not_a_data_docs_site(crm, tmp_path):
    docs = tmp_path / "precious"
    docs.mkdir()
    (docs / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a Data Docs site"):
        validate_crm(_interim(tmp_path, crm), tmp_path / "v.duckdb", now=NOW, cfg=_cfg(),
                     gx_dir=tmp_path / "gx", data_docs_dir=docs)
    assert (docs / "notes.txt").read_text() == "keep me"


def test_sync_restores_a_hand_edited_checkpoint(tmp_path):
    gx_dir = tmp_path / "gx"
    sync_gx_project(gx_dir, {}, None)
    path = gx_dir / "checkpoints/events.json"
    edited = json.loads(path.read_text())
    edited["result_format"] = {"result_format": "BOOLEAN_ONLY"}  # would lose the quarantine rows
    path.write_text(json.dumps(edited))
    sync_gx_project(gx_dir, {}, None)
    assert json.loads(path.read_text())["result_format"] == RESULT_FORMAT


def test_project_folder_must_be_named_gx(tmp_path):
    with pytest.raises(ConfigError, match="must be named 'gx'"):
        sync_gx_project(tmp_path / "great_expectations", {}, None)


@pytest.mark.parametrize(("report", "docs", "link"), [
    ("reports/report.html", "reports/data_docs", "data_docs/index.html"),
    ("out/report.html", "reports/data_docs", "../reports/data_docs/index.html"),
])
def test_data_docs_link_is_relative_to_the_report(report, docs, link):
    assert data_docs_link(report, docs) == link


def test_gx_imports_where_main_has_no_file_beside_pyspark():
    """`python -c` (like an xdist worker) has a __main__ without a file: importing GX there
    used to end the process silently through pyspark's doctest guard (exit 0, no output)."""
    import subprocess
    import sys

    code = "from leadscore.data.gx_import import import_gx; print('gx', import_gx().__version__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("gx "), (done.stdout, done.stderr[-500:])
