"""Ingest: the same tables from every source kind, no PII out, clear errors on bad input."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.config import IngestConfig
from leadscore.data.ingest import DERIVED_LEAD_COLUMNS, INGESTED_TABLES, ingest, lead_flags_sql
from leadscore.errors import InputError
from leadscore.schema import CANARY_EMAIL, CANARY_FIRST_NAME, CANARY_LAST_NAME, PII_COLUMNS
from tests.builders import PII_VALUES, write_crm

FREE = IngestConfig().free_mail_domains


def _source(frames: dict[str, pd.DataFrame], kind: str, tmp: Path, **kw) -> Path:
    return write_crm(frames, kind, tmp / "raw" / ("crm.duckdb" if kind == "duckdb" else kind), **kw)


def _read(path: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {t: con.execute(f"SELECT * FROM {t}").df() for t in INGESTED_TABLES}


def _assert_no_pii(text: str) -> None:
    leaked = [v for v in PII_VALUES if v in text]
    assert not leaked, f"PII leaked: {leaked}"


def _bad_ingest(tmp_path: Path, kind: str, src: Path) -> str:
    out = tmp_path / "out.duckdb"
    with pytest.raises(InputError) as err:
        ingest(kind, src, out, FREE)
    assert not out.exists()
    assert not list(tmp_path.glob(".out.duckdb*"))
    _assert_no_pii(str(err.value))
    return str(err.value)


def test_duckdb_parquet_and_csv_sources_give_identical_tables(crm, tmp_path):
    outs = {}
    for kind in ("duckdb", "parquet", "csv"):
        out = tmp_path / f"{kind}.duckdb"
        summary = ingest(kind, _source(crm, kind, tmp_path), out, FREE)
        assert summary["tables"]["events"]["rows"] == 12
        outs[kind] = _read(out)
    for kind in ("parquet", "csv"):
        for table in INGESTED_TABLES:
            pd.testing.assert_frame_equal(outs[kind][table], outs["duckdb"][table])


def test_output_has_contract_columns_and_no_pii(crm, tmp_path):
    out = tmp_path / "crm.duckdb"
    ingest("duckdb", _source(crm, "duckdb", tmp_path), out, FREE)
    tables = _read(out)
    for name, spec in INGESTED_TABLES.items():
        assert list(tables[name].columns) == spec.column_names
    assert not set(PII_COLUMNS) & set(tables["leads"].columns)
    raw = out.read_bytes()
    for value in ("ann.lee@acme-corp.com", "bob.king@gmail.com", CANARY_EMAIL,
                  CANARY_FIRST_NAME, CANARY_LAST_NAME, "Mickey"):
        assert value.encode() not in raw


def test_derived_flags_on_fixture(crm, tmp_path):
    out = tmp_path / "crm.duckdb"
    summary = ingest("duckdb", _source(crm, "duckdb", tmp_path), out, FREE)
    leads = _read(out)["leads"].set_index("lead_id")
    assert leads["free_mail"].to_dict() == {
        "L1": False, "L2": True, "L3": False, "L4": False, "L5": False, "L6": False}
    assert leads["email_invalid"].to_dict() == {
        "L1": False, "L2": False, "L3": True, "L4": False, "L5": True, "L6": True}
    assert leads["placeholder_name"].to_dict() == {
        "L1": False, "L2": False, "L3": True, "L4": False, "L5": True, "L6": False}
    assert summary["derived_flags"] == {"free_mail": 1, "email_invalid": 3, "placeholder_name": 2}


@pytest.mark.parametrize(("email", "free_mail", "invalid"), [
    ("jane.roe@bigco.io", False, False),
    ("Jane.Roe@GMail.com ", True, False),
    ("someone@yahoo.com", True, False),
    ("asdf@bigco.com", False, True),
    ("test123@bigco.com", False, True),
    ("xxx@bigco.com", False, True),
    ("jane@test.com", False, True),
    ("jane@aaa.com", False, True),
    ("noreply@bigco.com", False, True),
    ("jane@@bigco.com", False, True),
    ("jane.bigco.com", False, True),
    ("jane@bigco", False, True),
    ("", False, True),
    (None, False, True),
])
def test_email_flags(email, free_mail, invalid):
    source = "(SELECT $e::VARCHAR AS email, NULL::VARCHAR AS first_name, NULL::VARCHAR AS last_name)"
    with duckdb.connect() as con:
        row = con.execute(
            f"SELECT free_mail, email_invalid FROM ({lead_flags_sql(source, FREE)})", {"e": email}
        ).fetchone()
    assert row == (free_mail, invalid)


@pytest.mark.parametrize(("first", "last", "placeholder"), [
    ("Ann", "Lee", False),
    ("José", "García-López", False),
    ("伟", "王", False),  # a name in another script is a name, not a placeholder
    ("Дмитрий", "Иванов", False),
    ("Mickey", "Mouse", True),
    ("mickey ", " MOUSE", True),
    ("John", "Doe", True),
    ("Test", "Smith", True),
    ("Ann", "asdf", True),
    ("x", "Lee", True),
    ("Ann", "aaaa", True),
    ("N/A", "Lee", True),
    ("Ann", "Lee2", True),
    ("---", "Lee", True),
    ("Thomas", "Thomas", False),
    ("asdf", "asdf", True),
    (None, None, False),
    ("Ann", None, False),
])
def test_placeholder_name_flag(first, last, placeholder):
    source = "(SELECT NULL::VARCHAR AS email, $f::VARCHAR AS first_name, $l::VARCHAR AS last_name)"
    with duckdb.connect() as con:
        row = con.execute(
            f"SELECT placeholder_name FROM ({lead_flags_sql(source, FREE)})", {"f": first, "l": last},
        ).fetchone()
    assert row == (placeholder,)


def test_missing_optional_column_is_null_and_extra_column_is_dropped(crm, tmp_path):
    crm["leads"] = crm["leads"].drop(columns=["bant_timeline"]).assign(phone="+1 555 0100")
    out = tmp_path / "crm.duckdb"
    summary = ingest("parquet", _source(crm, "parquet", tmp_path), out, FREE)
    assert summary["tables"]["leads"]["missing_columns"] == ["bant_timeline"]
    assert summary["tables"]["leads"]["extra_columns"] == ["phone"]
    leads = _read(out)["leads"]
    assert leads["bant_timeline"].isna().all()
    assert "phone" not in leads.columns


def test_missing_required_column_names_file_and_column(crm, tmp_path):
    crm["events"] = crm["events"].drop(columns=["occurred_at"])
    msg = _bad_ingest(tmp_path, "csv", _source(crm, "csv", tmp_path))
    assert "events.csv" in msg and "occurred_at" in msg and "missing required column" in msg


def test_non_date_string_in_csv_names_column_count_and_keys(crm, tmp_path):
    src = _source(crm, "csv", tmp_path)
    text = (src / "leads.csv").read_text().replace("2024-02-01 08:00:00", "first of Feb")
    (src / "leads.csv").write_text(text)
    msg = _bad_ingest(tmp_path, "csv", src)
    assert "leads.csv" in msg and "created_at" in msg and "1 value(s)" in msg and "TIMESTAMP" in msg
    assert "L3" in msg


def test_wrong_type_in_duckdb_source_names_table_and_column(crm, tmp_path):
    crm["leads"]["company_size"] = ["250", "20", "five", "1200", None, "lots"]
    crm["leads"] = crm["leads"].astype({"company_size": "object"})
    msg = _bad_ingest(tmp_path, "duckdb", _source(crm, "duckdb", tmp_path, cast=False))
    assert "crm.duckdb:leads" in msg and "company_size" in msg and "2 value(s)" in msg
    assert "L3" in msg and "L6" in msg


def test_missing_file_names_the_file(crm, tmp_path):
    src = _source(crm, "parquet", tmp_path)
    (src / "outcomes.parquet").unlink()
    msg = _bad_ingest(tmp_path, "parquet", src)
    assert "outcomes.parquet" in msg and "file not found" in msg


def test_missing_source_path(tmp_path):
    msg = _bad_ingest(tmp_path, "duckdb", tmp_path / "nowhere.duckdb")
    assert "nowhere.duckdb" in msg and "not found" in msg


def test_missing_table_in_duckdb_source(crm, tmp_path):
    del crm["outcomes"]
    msg = _bad_ingest(tmp_path, "duckdb", _source(crm, "duckdb", tmp_path))
    assert "outcomes" in msg and "cannot read" in msg


def test_corrupt_parquet_file(crm, tmp_path):
    src = _source(crm, "parquet", tmp_path)
    (src / "events.parquet").write_bytes(b"PAR1 this is not parquet " + CANARY_EMAIL.encode())
    msg = _bad_ingest(tmp_path, "parquet", src)
    assert "events.parquet" in msg and "cannot read" in msg


def test_corrupt_duckdb_file(tmp_path):
    src = tmp_path / "crm.duckdb"
    src.write_bytes(b"\x00garbage" * 100)
    msg = _bad_ingest(tmp_path, "duckdb", src)
    assert "crm.duckdb" in msg and "not a readable DuckDB" in msg


def test_ragged_csv_error_does_not_quote_pii(crm, tmp_path):
    src = _source(crm, "csv", tmp_path)
    with (src / "leads.csv").open("a") as f:
        f.write(f"L7,2024-04-01,{CANARY_EMAIL},{CANARY_FIRST_NAME},{CANARY_LAST_NAME},a,b,c,d,e,f,g,h,i,j\n")
    msg = _bad_ingest(tmp_path, "csv", src)
    assert "leads.csv" in msg


def test_pipeline_exits_1_with_message_on_bad_source(tmp_path):
    from pipelines.ingest import app

    params = tmp_path / "params.yaml"
    params.write_text(f"ingest: {{source: csv, path: {tmp_path / 'missing'}}}\n")
    out = tmp_path / "crm.duckdb"
    res = CliRunner().invoke(app, ["--params", str(params), "--out", str(out)])
    assert res.exit_code == 1
    assert not out.exists()
    assert "input not found" in res.output


def test_pipeline_writes_output(crm, tmp_path):
    from pipelines.ingest import app

    src = _source(crm, "duckdb", tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text(f"ingest: {{source: synthetic, path: {src}}}\n")
    out = tmp_path / "crm.duckdb"
    res = CliRunner().invoke(app, ["--params", str(params), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert set(_read(out)["leads"].columns) >= set(DERIVED_LEAD_COLUMNS)
