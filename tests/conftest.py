"""Shared fixtures: a tiny valid CRM (raw, with PII) built in memory, and a writer for it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from leadscore.schema import CANARY_EMAIL, CANARY_FIRST_NAME, CANARY_LAST_NAME, TABLES

# Every personal value in the fixture: tests assert none of them leaks anywhere.
PII_VALUES: tuple[str, ...] = (
    "ann.lee@acme-corp.com", "Ann", "Lee", "bob.king@gmail.com", "Bob", "King",
    "test@test.com", "Mickey", "Mouse", CANARY_EMAIL, CANARY_FIRST_NAME, CANARY_LAST_NAME,
    "asdf", "xxx", "not-an-email", "Cara", "Diaz",
)


def _ts(values: list[str | None]) -> pd.Series:
    return pd.Series(pd.to_datetime(values), dtype="datetime64[us]")


def make_crm() -> dict[str, pd.DataFrame]:
    """Six leads, twelve events, four outcomes; valid against the contract as of 2025."""
    leads = pd.DataFrame({
        "lead_id": ["L1", "L2", "L3", "L4", "L5", "L6"],
        "created_at": _ts(["2024-01-05 09:00", "2024-01-10 10:30", "2024-02-01 08:00",
                           "2024-02-15 12:00", "2024-03-01 16:45", "2024-03-10 11:11"]),
        "email": ["ann.lee@acme-corp.com", "bob.king@gmail.com", "test@test.com", CANARY_EMAIL,
                  None, "not-an-email"],
        "first_name": ["Ann", "Bob", "Mickey", CANARY_FIRST_NAME, "asdf", "Cara"],
        "last_name": ["Lee", "King", "Mouse", CANARY_LAST_NAME, "xxx", "Diaz"],
        "job_title": ["VP Marketing", "Engineer", None, "CTO", "Student", "Director of Sales"],
        "company_size": pd.array([250, 20, 5, 1200, None, 80], dtype="Int32"),
        "annual_revenue": [1.0e7, None, 2.0e5, 3.5e8, None, 4.0e6],
        "industry": ["software", "retail", "education", "software", None, "healthcare"],
        "country": ["US", "DE", "GB", "US", "FR", "US"],
        "source": ["web", "webinar", "web", "referral", "paid_search", "web"],
        "bant_budget": pd.array([True, False, None, True, None, False], dtype="boolean"),
        "bant_timeline": ["Q3", None, None, "Q1", None, "next year"],
    })
    events = pd.DataFrame({
        "event_id": [f"E{i:02d}" for i in range(1, 13)],
        "lead_id": ["L1", "L1", "L1", "L2", "L2", "L3", "L4", "L4", "L4", "L5", "L6", "L6"],
        "occurred_at": _ts(["2024-01-06 10:00", "2024-01-07 10:00", "2024-01-08 11:00",
                            "2024-01-11 09:00", "2024-01-12 09:00", "2024-02-02 10:00",
                            "2024-02-16 10:00", "2024-02-17 10:00", "2024-02-18 10:00",
                            "2024-03-02 10:00", "2024-03-11 10:00", "2024-03-12 10:00"]),
        "event_type": ["email_open", "content_download", "pricing_page_view", "web_visit",
                       "webinar_registration", "email_bounce", "demo_request",
                       "content_download", "email_click", "unsubscribe", "web_visit",
                       "form_submit"],
        "content_type": [None, "whitepaper", None, None, None, None, None, "case_study",
                         None, None, None, None],
    })
    outcomes = pd.DataFrame({
        "lead_id": ["L1", "L1", "L4", "L4"],
        "stage": ["mql", "won", "mql", "opportunity"],
        "stage_at": _ts(["2024-01-09 12:00", "2024-04-01 12:00", "2024-02-20 12:00",
                         "2024-03-01 12:00"]),
        "amount": [None, 50_000.0, None, None],
    })
    return {"leads": leads, "events": events, "outcomes": outcomes}


def write_crm(frames: dict[str, pd.DataFrame], kind: str, path: Path, *, cast: bool = True) -> Path:
    """Write frames as a DuckDB file (`kind="duckdb"`) or a folder of parquet/csv files.

    With `cast`, columns named in the contract are cast to their contract types first.
    """
    con = duckdb.connect()
    try:
        if kind == "duckdb":
            path.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"ATTACH '{path}' AS out")
        else:
            path.mkdir(parents=True, exist_ok=True)
        for name, df in frames.items():
            con.register("_frame", df)
            types = TABLES[name].columns if name in TABLES and cast else {}
            cols = ", ".join(
                f'CAST("{c}" AS {types[c]}) AS "{c}"' if c in types else f'"{c}"' for c in df.columns
            )
            query = f"SELECT {cols} FROM _frame"
            if kind == "duckdb":
                con.execute(f'CREATE TABLE out."{name}" AS {query}')
            else:
                opts = "FORMAT parquet" if kind == "parquet" else "FORMAT csv, HEADER true"
                con.execute(f"COPY ({query}) TO '{path / f'{name}.{kind}'}' ({opts})")
            con.unregister("_frame")
    finally:
        con.close()
    return path


@pytest.fixture
def crm() -> dict[str, pd.DataFrame]:
    """A fresh copy of the tiny raw CRM (with PII) for each test."""
    return make_crm()
