"""The optional CRM table mql_feedback: generated consistently with the outcomes, copied by
ingest when present, validated like the other tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from leadscore.config import GenerateConfig, IngestConfig, ValidateConfig
from leadscore.data.ingest import ingest
from leadscore.data.synthetic import generate_crm, generate_next_quarter
from leadscore.data.validate import ValidationFailed, validate_crm
from leadscore.schema import FEEDBACK_REASONS, MQL_FEEDBACK
from tests.builders import PII_VALUES, write_crm

CFG = GenerateConfig(n_leads=3_000, chunk_leads=1_500)  # two chunks
NOW = dt.datetime(2025, 1, 1)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fb") / "crm.duckdb"
    generate_crm(CFG, 3, path)
    return path


def _query(path: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).df()


def test_generated_feedback_follows_the_mqls_and_the_cutoff(generated):
    fb = _query(generated, """
        SELECT f.*, o.stage_at AS mql_at, s.lead_id IS NOT NULL AS reached_sql
        FROM mql_feedback f
        LEFT JOIN outcomes o ON o.lead_id = f.lead_id AND o.stage = 'mql'
        LEFT JOIN (SELECT DISTINCT lead_id FROM outcomes WHERE stage = 'sql') s ON s.lead_id = f.lead_id""")
    n_mql = _query(generated, "SELECT count(DISTINCT lead_id) AS n FROM outcomes WHERE stage = 'mql'")["n"][0]
    assert 0.8 * n_mql <= len(fb) <= n_mql  # most MQLs get a decision, one per lead at most
    assert fb["lead_id"].is_unique and fb["mql_at"].notna().all()  # every decision follows an MQL
    delay = (fb["decided_at"] - fb["mql_at"]).dt.total_seconds() / 86_400
    assert (delay > 0).all() and delay.median() < 7  # a few days after the MQL
    assert fb["decided_at"].max() < pd.Timestamp(CFG.end)  # nothing at or after the cutoff
    assert set(fb["reason"].dropna()) <= set(FEEDBACK_REASONS)
    assert (fb["reason"].isna() == fb["accepted"]).all()  # a reason exactly for rejections
    rate = fb.groupby("reached_sql")["accepted"].mean()
    assert rate[True] > 0.8 and rate[False] < 0.25  # accepted mostly when the lead reaches sql


def test_rejection_reasons_depend_on_the_lead(generated):
    fb = _query(generated, """
        SELECT f.reason, l.bant_budget = false AS said_no FROM mql_feedback f
        JOIN leads l USING (lead_id) WHERE NOT f.accepted""")
    said_no = fb["said_no"].fillna(False).astype(bool)
    share = fb.assign(no_budget=fb["reason"] == "no_budget").groupby(said_no)["no_budget"].mean()
    assert share[True] > 2 * share[False]


def test_next_quarter_keeps_the_history_feedback_and_adds_new_decisions(generated, tmp_path):
    path = tmp_path / "next.duckdb"
    summary = generate_next_quarter(CFG, 3, path)
    cols = ", ".join(MQL_FEEDBACK.columns)
    before = _query(generated, f"SELECT {cols} FROM mql_feedback ORDER BY lead_id")
    after = _query(path, f"SELECT {cols} FROM mql_feedback ORDER BY lead_id, decided_at")
    history = after[after["decided_at"] < pd.Timestamp(CFG.end)].reset_index(drop=True)
    pd.testing.assert_frame_equal(history, before)
    assert summary["next_quarter"]["mql_feedback"] == len(after) - len(before) > 0
    assert after["lead_id"].is_unique


def _with_feedback(crm: dict[str, pd.DataFrame], rows: list[tuple]) -> dict[str, pd.DataFrame]:
    fb = pd.DataFrame(rows, columns=list(MQL_FEEDBACK.columns))
    fb["decided_at"] = pd.to_datetime(fb["decided_at"]).astype("datetime64[us]")
    fb["accepted"] = fb["accepted"].astype("boolean")
    return crm | {"mql_feedback": fb}


GOOD = [("L1", "2024-01-11 09:00", True, None), ("L4", "2024-02-22 10:00", False, "no_budget")]


@pytest.mark.parametrize("kind", ["duckdb", "parquet", "csv"])
def test_ingest_copies_the_table_when_present(crm, tmp_path, kind):
    src = write_crm(_with_feedback(crm, GOOD), kind, tmp_path / ("raw.duckdb" if kind == "duckdb" else "raw"))
    summary = ingest(kind, src, tmp_path / "interim.duckdb", IngestConfig().free_mail_domains)
    assert summary["tables"]["mql_feedback"]["rows"] == 2
    out = _query(tmp_path / "interim.duckdb", "SELECT * FROM mql_feedback ORDER BY lead_id")
    assert list(out.columns) == list(MQL_FEEDBACK.columns) and list(out["reason"].fillna("-")) == ["-", "no_budget"]


def test_ingest_and_validation_without_the_table(crm, tmp_path):
    src = write_crm(crm, "parquet", tmp_path / "raw")
    summary = ingest("parquet", src, tmp_path / "interim.duckdb", IngestConfig().free_mail_domains)
    assert "mql_feedback" not in summary["tables"]
    result = validate_crm(tmp_path / "interim.duckdb", tmp_path / "validated.duckdb", now=NOW,
                          cfg=ValidateConfig(max_null_share={}, quarantine_budget=0.0))
    assert "mql_feedback" not in result.metrics
    tables = set(_query(tmp_path / "validated.duckdb", "SELECT table_name FROM duckdb_tables()")["table_name"])
    assert "mql_feedback" not in tables and "leads" in tables


def _interim(crm, rows, tmp_path) -> Path:
    raw = write_crm(_with_feedback(crm, rows), "duckdb", tmp_path / "raw.duckdb")
    ingest("duckdb", raw, tmp_path / "interim.duckdb", IngestConfig().free_mail_domains)
    return tmp_path / "interim.duckdb"


BAD = [
    ("L2", "2024-01-20 09:00", False, "too_expensive"),  # reason outside the closed list
    ("L99", "2024-02-01 09:00", True, None),  # unknown lead
    ("L6", "2026-03-01 09:00", True, None),  # after the reference time
    ("L3", "2024-02-05 09:00", True, "no_need"),  # a reason on an acceptance
    ("L5", "2024-03-05 09:00", False, None),  # a rejection without a reason
    ("L4", "2024-02-22 10:00", False, "no_budget"),  # duplicate (lead_id, decided_at)
]


def test_validation_quarantines_bad_feedback_rows(crm, tmp_path):
    interim = _interim(crm, GOOD + BAD, tmp_path)
    result = validate_crm(interim, tmp_path / "validated.duckdb", now=NOW,
                          cfg=ValidateConfig(max_null_share={}, quarantine_budget=0.9, sample_keys=3))
    q = result.quarantine[result.quarantine["table_name"] == "mql_feedback"]
    reasons = dict(zip(q["row_key"].str.split("|").str[0], q["reason"], strict=True))
    assert "unknown_value:reason" in reasons["L2"]
    assert "orphan:lead_known" in reasons["L99"]
    assert "future_timestamp:decided_at" in reasons["L6"]
    assert "reason_mismatch:reason_fits_decision" in reasons["L3"]
    assert "reason_mismatch:reason_fits_decision" in reasons["L5"]
    assert "duplicate_key" in reasons["L4"]
    clean = _query(tmp_path / "validated.duckdb", "SELECT lead_id FROM mql_feedback ORDER BY 1")
    assert list(clean["lead_id"]) == ["L1", "L4"]  # the first of the duplicated key is kept
    assert result.metrics["mql_feedback"]["rows_quarantined"] == len(BAD)


def test_validation_over_budget_names_table_column_and_keys_never_values(crm, tmp_path):
    interim = _interim(crm, GOOD + BAD[:3], tmp_path)
    with pytest.raises(ValidationFailed) as err:
        validate_crm(interim, tmp_path / "validated.duckdb", now=NOW,
                     cfg=ValidateConfig(max_null_share={}, quarantine_budget=0.0, sample_keys=3))
    msg = str(err.value)
    assert "mql_feedback.reason" in msg and "mql_feedback.decided_at" in msg and "L99|" in msg
    assert "too_expensive" not in msg and not [v for v in PII_VALUES if v in msg]
    assert not (tmp_path / "validated.duckdb").exists()
