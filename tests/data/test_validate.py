"""Validation: GE suites pass clean data, quarantine bad rows within budget, fail loudly."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.config import IngestConfig, ValidateConfig, params_from_dict
from leadscore.data.ingest import INGESTED_TABLES, ingest
from leadscore.data.validate import ValidationFailed, ValidationResult, validate_crm
from leadscore.errors import ConfigError
from leadscore.schema import PII_COLUMNS
from tests.builders import PII_VALUES, write_crm

NOW = dt.datetime(2025, 1, 1)


def _interim(tmp_path: Path, frames: dict[str, pd.DataFrame]) -> Path:
    """Raw frames -> raw DuckDB -> ingested (PII-free) DuckDB."""
    raw = write_crm(frames, "duckdb", tmp_path / "raw.duckdb")
    out = tmp_path / "interim.duckdb"
    ingest("duckdb", raw, out, IngestConfig().free_mail_domains)
    return out


def _read(path: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {t: con.execute(f"SELECT * FROM {t}").df() for t in (*INGESTED_TABLES, "quarantine")}


def _cfg(budget: float = 0.0, null: dict | None = None) -> ValidateConfig:
    return ValidateConfig(quarantine_budget=budget, max_null_share=null or {}, sample_keys=3)


def _validate(interim: Path, tmp_path: Path, **kw) -> ValidationResult:
    return validate_crm(interim, tmp_path / "validated.duckdb", now=NOW, cfg=_cfg(**kw))


def _fails(interim: Path, tmp_path: Path, **kw) -> str:
    out = tmp_path / "validated.duckdb"
    with pytest.raises(ValidationFailed) as err:
        validate_crm(interim, out, now=NOW, cfg=_cfg(**kw))
    assert not out.exists()
    msg = str(err.value)
    assert not [v for v in PII_VALUES if v in msg]
    return msg


def test_valid_crm_passes_and_writes_clean_tables(crm, tmp_path):
    interim = _interim(tmp_path, crm)
    result = _validate(interim, tmp_path, null={"leads": {"job_title": 0.2}})
    out = _read(tmp_path / "validated.duckdb")
    ingested = _read_ingested(interim)
    for name in INGESTED_TABLES:
        pd.testing.assert_frame_equal(
            out[name].sort_values(INGESTED_TABLES[name].column_names[0], kind="stable").reset_index(drop=True),
            ingested[name].sort_values(INGESTED_TABLES[name].column_names[0], kind="stable").reset_index(drop=True),
        )
        assert result.metrics[name] == {"rows_in": len(ingested[name]), "rows_out": len(ingested[name]),
                                        "rows_quarantined": 0, "quarantined_share": 0.0}
    assert len(out["quarantine"]) == 0
    assert result.metrics["expectations"]["failed"] == 0
    entries = result.report["tables"]["events"]["expectations"]
    assert {"expect_column_values_to_be_in_set", "expect_column_values_to_be_unique",
            "expect_table_columns_to_match_set"} <= {e["expectation"] for e in entries}
    assert all(e["success"] for e in entries)


def _read_ingested(path: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {t: con.execute(f"SELECT * FROM {t}").df() for t in INGESTED_TABLES}


def test_quarantine_below_budget_keeps_good_rows_and_records_reasons(crm, tmp_path):
    ev, leads, outcomes = crm["events"], crm["leads"], crm["outcomes"]
    ev.loc[ev.event_id == "E03", "event_type"] = "page_like"
    ev.loc[ev.event_id == "E05", "occurred_at"] = pd.Timestamp("2030-01-01")
    ev.loc[ev.event_id == "E06", "lead_id"] = "L99"
    ev.loc[ev.event_id == "E07", "occurred_at"] = pd.Timestamp("2024-02-01")  # before L4 exists
    ev.loc[ev.event_id == "E10", "event_type"] = None
    dup = ev[ev.event_id == "E01"].assign(occurred_at=pd.Timestamp("2024-06-01"))
    double_logged = ev[ev.event_id == "E02"].assign(event_id="E13")
    crm["events"] = pd.concat([ev, dup, double_logged], ignore_index=True)
    leads.loc[leads.lead_id == "L6", "created_at"] = pd.Timestamp("2031-01-01")
    outcomes.loc[outcomes.stage == "opportunity", "stage"] = "negotiation"

    result = _validate(_interim(tmp_path, crm), tmp_path, budget=1.0)
    out = _read(tmp_path / "validated.duckdb")
    reasons = dict(zip(out["quarantine"].row_key, out["quarantine"].reason, strict=True))
    assert reasons == {
        "L6": "future_timestamp:created_at",
        "E01": "duplicate_key:event_id",
        "E03": "unknown_value:event_type",
        "E05": "future_timestamp:occurred_at",
        "E06": "orphan:lead_known",
        "E07": "before_lead_created:occurred_at>=lead_created_at",
        "E10": "null_required:event_type",
        "E11": "lead_quarantined:lead_valid",
        "E12": "lead_quarantined:lead_valid",
        "L4|negotiation|2024-03-01 12:00:00": "unknown_value:stage",
    }
    assert sorted(out["events"].event_id) == ["E01", "E02", "E04", "E08", "E09", "E13"]
    assert out["events"].set_index("event_id").loc["E01", "occurred_at"] == pd.Timestamp("2024-01-06 10:00")
    assert sorted(out["leads"].lead_id) == ["L1", "L2", "L3", "L4", "L5"]
    assert len(out["outcomes"]) == 3
    assert result.metrics["events"]["rows_quarantined"] == 8
    payload = json.loads(out["quarantine"].set_index("row_key").loc["E03", "row_json"])
    assert payload["event_type"] == "page_like" and not set(PII_COLUMNS) & set(payload)
    assert set(out["quarantine"].table_name) == {"leads", "events", "outcomes"}


def _unknown_event_types(crm):
    crm["events"].loc[crm["events"].event_id.isin(["E02", "E04", "E09"]), "event_type"] = "tweet"


def _duplicate_lead_ids(crm):
    extra = crm["leads"][crm["leads"].lead_id.isin(["L1", "L2"])].assign(created_at=pd.Timestamp("2024-05-01"))
    crm["leads"] = pd.concat([crm["leads"], extra], ignore_index=True)


def _orphan_events(crm):
    crm["events"].loc[crm["events"].event_id.isin(["E01", "E02"]), "lead_id"] = "L404"


def _future_outcomes(crm):
    crm["outcomes"].loc[:1, "stage_at"] = pd.Timestamp("2030-05-05")


@pytest.mark.parametrize(("mutate", "expected"), [
    (_unknown_event_types, ["events.event_type: expect_column_values_to_be_in_set",
                            "3 bad row(s)", "E02, E04, E09", "quarantine budget"]),
    (_duplicate_lead_ids, ["leads.lead_id: expect_column_values_to_be_unique", "2 bad row(s)",
                           "duplicate_key", "L1, L2"]),
    (_orphan_events, ["events.lead_known: expect_column_values_to_be_in_set", "orphan",
                      "2 bad row(s)", "E01, E02"]),
    (_future_outcomes, ["outcomes.stage_at: expect_column_values_to_be_between",
                        "future_timestamp", "2 bad row(s)", "L1|mql|2030-05-05"]),
], ids=["unknown_event_type", "duplicate_lead_ids", "orphan_events", "future_timestamps"])
def test_row_failures_above_budget_fail_with_keys(crm, tmp_path, mutate: Callable, expected):
    mutate(crm)
    msg = _fails(_interim(tmp_path, crm), tmp_path, budget=0.1)
    for part in expected:
        assert part in msg, msg


def test_null_share_above_bound_fails_table_level(crm, tmp_path):
    crm["leads"].loc[crm["leads"].lead_id.isin(["L1", "L2"]), "job_title"] = None
    msg = _fails(_interim(tmp_path, crm), tmp_path, budget=1.0, null={"leads": {"job_title": 0.2}})
    assert "table-level" in msg
    assert "leads.job_title: expect_column_proportion_of_non_null_values_to_be_between; 3 bad row(s)" in msg
    assert "null share 50.0% above bound 20.0%" in msg and "L1, L2, L3" in msg


def test_empty_table_fails_and_leaves_previous_output_untouched(crm, tmp_path):
    crm["outcomes"] = crm["outcomes"].iloc[:0]
    out = tmp_path / "validated.duckdb"
    out.write_bytes(b"previous run")
    with pytest.raises(ValidationFailed, match="outcomes: expect_table_row_count_to_be_between.*table is empty"):
        validate_crm(_interim(tmp_path, crm), out, now=NOW, cfg=_cfg(budget=1.0))
    assert out.read_bytes() == b"previous run"


def _write_interim(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> Path:
    return write_crm(tables, "duckdb", tmp_path / "hand_made.duckdb", cast=False)


def test_missing_column_fails_table_level(crm, tmp_path):
    tables = _read_ingested(_interim(tmp_path, crm))
    tables["leads"] = tables["leads"].drop(columns=["source"])
    msg = _fails(_write_interim(tmp_path, tables), tmp_path, budget=1.0)
    assert "leads: expect_table_columns_to_match_set; missing column(s) ['source']" in msg


def test_wrong_column_type_fails_table_level(crm, tmp_path):
    tables = _read_ingested(_interim(tmp_path, crm))
    tables["events"]["occurred_at"] = tables["events"]["occurred_at"].astype(str)
    msg = _fails(_write_interim(tmp_path, tables), tmp_path, budget=1.0)
    assert "events.occurred_at: expect_column_values_to_be_of_type" in msg
    assert "contract type TIMESTAMP, found dtype str" in msg


def test_raw_crm_with_pii_is_rejected_naming_columns_not_values(crm, tmp_path):
    raw = write_crm(crm, "duckdb", tmp_path / "raw.duckdb")
    msg = _fails(raw, tmp_path, budget=1.0)
    assert "unexpected column(s) ['email', 'first_name', 'last_name']" in msg


def test_pipeline_exit_codes_and_outputs(crm, tmp_path):
    from pipelines.validate import app

    interim = _interim(tmp_path, crm)
    params = tmp_path / "params.yaml"
    out, report, metrics = tmp_path / "v.duckdb", tmp_path / "r.json", tmp_path / "m.json"
    docs = tmp_path / "reports/data_docs"
    args = ["--params", str(params), "--in", str(interim), "--out", str(out),
            "--report", str(report), "--metrics", str(metrics),
            "--gx", str(tmp_path / "gx"), "--data-docs", str(docs)]
    params.write_text("validate: {max_null_share: {leads: {job_title: 0.01}}}\n")
    bad = CliRunner().invoke(app, args)
    assert bad.exit_code == 1
    assert "leads.job_title" in bad.output
    assert not (out.exists() or report.exists() or metrics.exists())
    assert (docs / "index.html").exists()  # the Data Docs show what failed

    params.write_text("validate: {quarantine_budget: 0.0, max_null_share: {}}\n")
    good = CliRunner().invoke(app, args)
    assert good.exit_code == 0, good.output
    assert json.loads(metrics.read_text())["events"]["rows_out"] == 12
    assert "expectations" in json.loads(report.read_text())["tables"]["leads"]
    assert out.exists() and (docs / "index.html").exists()
    assert "suite(s) ['leads'] written" in good.output  # the job_title bound was dropped

    missing = CliRunner().invoke(app, [*args[:2], "--in", str(tmp_path / "none.duckdb"), *args[4:]])
    assert missing.exit_code == 1 and "run the ingest stage first" in missing.output


@pytest.mark.parametrize(("bounds", "key"), [
    ({"lead": {"job_title": 0.1}}, "validate.max_null_share.lead"),
    ({"leads": {"email": 0.1}}, "validate.max_null_share.leads.email"),
    ({"events": {"content_type": 1.5}}, "validate.max_null_share.events.content_type"),
])
def test_bad_null_share_setting_is_a_config_error_naming_the_key(bounds, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        params_from_dict({"validate": {"max_null_share": bounds}})
