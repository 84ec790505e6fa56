"""Tiny data builders shared by the test folders (no pytest fixtures here: those live in each
folder's conftest.py):

- a six-lead raw CRM with PII (`make_crm`, `write_crm`, `PII_VALUES`);
- synthetic training tables shaped like data/processed/train.parquet with a planted signal
  (`synthetic_table`, `synthetic_catalog`, `SPLIT_KW`);
- a time-ordered slice of the real UCI bank data and its mapping (`bank_*`);
- a search of written files for the planted canary PII (`canary_hits`).
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml

from leadscore.features.catalog import FeatureCatalog, FeatureSpec
from leadscore.flat.mapping import Mapping, mapping_from_dict
from leadscore.flat.table import flat_split, load_flat
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




EVENTS = (
    "email_open", "email_click", "web_visit", "pricing_page_view", "content_download",
    "webinar_registration", "webinar_attendance", "demo_video_view", "form_submit", "demo_request",
)
WINDOWS = (7, 30, 90)
SENIORITY = ("c_level", "vp", "director", "manager", "senior_ic", "individual", "student", "unknown")
SIZE_BANDS = ("1-10", "11-50", "51-200", "201-1000", "1001-5000", "5001+", "unknown")
INDUSTRIES = ("software", "financial_services", "manufacturing", "retail", "education", "unknown")
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "unknown")
SOURCES = ("organic", "paid_search", "event", "referral", "list_purchase")

# split settings that fit the 12 monthly as_of dates of `synthetic_table`
SPLIT_KW = {"horizon_days": 30, "test_months": 2, "calib_months": 2, "valid_months": 2,
            "embargo_months": 1}


def synthetic_catalog() -> FeatureCatalog:
    fit = [
        FeatureSpec("seniority", "fit", "Seniority", "level", "categorical"),
        FeatureSpec("department", "fit", "Department", "department", "categorical"),
        FeatureSpec("company_size_band", "fit", "Company size band", "employees", "categorical"),
        FeatureSpec("company_size", "fit", "Company size", "employees"),
        FeatureSpec("annual_revenue", "fit", "Annual revenue", "USD"),
        FeatureSpec("industry", "fit", "Industry", "industry", "categorical"),
        FeatureSpec("country", "fit", "Country", "country", "categorical"),
        FeatureSpec("source", "fit", "Lead source", "source", "categorical"),
        FeatureSpec("free_mail", "fit", "Free-mail address", "flag"),
        FeatureSpec("email_invalid", "fit", "Invalid e-mail", "flag"),
        FeatureSpec("placeholder_name", "fit", "Placeholder name", "flag"),
        FeatureSpec("lead_age_days", "fit", "Lead age", "days"),
    ]
    eng = [FeatureSpec(f"{e}_{w}d", "engagement", f"{e}, last {w} days", "events")
           for e in EVENTS for w in WINDOWS]
    eng += [FeatureSpec(f"download_{c}_{w}d", "engagement", f"{c} downloads, last {w} days", "downloads")
            for c in ("whitepaper", "case_study") for w in WINDOWS]
    eng += [
        FeatureSpec("days_since_last_activity", "engagement", "Days since last activity", "days"),
        FeatureSpec("days_since_last_pricing_page_view", "engagement", "Days since pricing view", "days"),
        FeatureSpec("engagement_decayed", "engagement", "Decayed engagement", "score"),
        FeatureSpec("email_ctr_90d", "engagement", "E-mail click rate, 90 days", "share"),
        FeatureSpec("unsubscribed", "engagement", "Unsubscribed", "flag"),
        FeatureSpec("email_bounced", "engagement", "E-mail bounced", "flag"),
    ]
    return FeatureCatalog(tuple(fit + eng))


def synthetic_table(n_per_month: int = 300, months: int = 12, seed: int = 0,
                    strength: float = 1.0) -> pd.DataFrame:
    """One row per (lead, as_of): monthly as_of from 2024-01-01, a planted signal.

    Conversion odds rise with seniority, company size, pricing-page views and demo requests
    and fall with unsubscribes and junk flags. `strength` scales the signal.
    """
    rng = np.random.default_rng(seed)
    n = n_per_month * months
    as_of = np.repeat(pd.date_range("2024-01-01", periods=months, freq="MS").values, n_per_month)
    sen = rng.choice(SENIORITY, n, p=[.05, .07, .12, .2, .2, .26, .05, .05])
    band_i = rng.integers(0, len(SIZE_BANDS), n)
    intent = rng.gamma(0.6, 1.0, n)  # latent buying intent drives engagement
    df = pd.DataFrame({
        "lead_id": [f"L{i:06d}" for i in range(n)],
        "as_of": pd.to_datetime(as_of),
        "seniority": sen,
        "department": rng.choice(("marketing", "sales", "it", "other", "unknown"), n),
        "company_size_band": np.array(SIZE_BANDS)[band_i],
        "company_size": np.where(band_i == 6, np.nan, 10.0 ** (band_i * 0.6 + rng.normal(0, .2, n))),
        "annual_revenue": np.where(rng.random(n) < .3, np.nan, rng.lognormal(15, 1.5, n)),
        "industry": rng.choice(INDUSTRIES, n),
        "country": rng.choice(COUNTRIES, n),
        "source": rng.choice(SOURCES, n),
        "free_mail": (rng.random(n) < .2).astype(float),
        "email_invalid": (rng.random(n) < .03).astype(float),
        "placeholder_name": (rng.random(n) < .03).astype(float),
        "lead_age_days": rng.uniform(1, 365, n),
    })
    base_rate = {"email_open": 2.0, "email_click": .5, "web_visit": 1.5, "pricing_page_view": .3,
                 "content_download": .3, "webinar_registration": .1, "webinar_attendance": .05,
                 "demo_video_view": .1, "form_submit": .1, "demo_request": .03}
    for e, r in base_rate.items():
        c90 = rng.poisson(r * intent * 3)
        c30 = rng.binomial(c90, .45)
        c7 = rng.binomial(c30, .3)
        df[f"{e}_90d"], df[f"{e}_30d"], df[f"{e}_7d"] = (c90.astype(float), c30.astype(float),
                                                       c7.astype(float))
    for c in ("whitepaper", "case_study"):
        c90 = rng.binomial(df["content_download_90d"].astype(int), .4)
        c30 = np.minimum(c90, df["content_download_30d"].astype(int))
        c7 = np.minimum(c30, df["content_download_7d"].astype(int))
        df[f"download_{c}_90d"], df[f"download_{c}_30d"], df[f"download_{c}_7d"] = (
            c90.astype(float), c30.astype(float), c7.astype(float))
    any_act = df[[f"{e}_90d" for e in base_rate]].sum(axis=1) > 0
    df["days_since_last_activity"] = np.where(any_act, rng.uniform(0, 90, n), np.nan)
    df["days_since_last_pricing_page_view"] = np.where(df["pricing_page_view_90d"] > 0,
                                                       rng.uniform(0, 90, n), np.nan)
    df["engagement_decayed"] = intent * rng.uniform(.5, 1.5, n)
    df["email_ctr_90d"] = np.where(df["email_open_90d"] > 0,
                                   df["email_click_90d"] / df["email_open_90d"].clip(lower=1), np.nan)
    df["unsubscribed"] = (rng.random(n) < .05).astype(float)
    df["email_bounced"] = (rng.random(n) < .03).astype(float)

    sen_w = {"c_level": 1.5, "vp": 1.5, "director": 1.0, "manager": .5, "senior_ic": 0,
             "individual": -.5, "student": -2.0, "unknown": -.5}
    logit = (-4.0 + df["seniority"].map(sen_w).to_numpy() + 0.25 * band_i * (band_i < 6)
             + 0.9 * np.minimum(df["pricing_page_view_30d"], 4) + 2.5 * (df["demo_request_90d"] > 0)
             + 0.4 * np.minimum(df["webinar_attendance_90d"], 2) - 2.5 * df["unsubscribed"]
             - 2.0 * df["email_invalid"] - 2.0 * df["placeholder_name"])
    p = 1 / (1 + np.exp(-strength * logit.to_numpy()))
    df["label"] = (rng.random(n) < p).astype(int)
    for col in ("seniority", "department", "company_size_band", "industry", "country", "source"):
        df[col] = df[col].astype("str")
    cat = synthetic_catalog()
    return df[["lead_id", "as_of", "label", *cat.names]]


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bank_marketing"
BANK_GZ = EXAMPLE / "data" / "bank-additional-full.csv.gz"
SLICE_ROWS = 3000


@functools.cache
def bank_slice_csv() -> Path:
    """3,000 rows spread evenly over the file, kept in file (time) order, as a ';' CSV."""
    df = pd.read_csv(BANK_GZ, sep=";", dtype=str, keep_default_na=False)
    idx = np.linspace(0, len(df) - 1, SLICE_ROWS).round().astype(int)
    folder = Path(tempfile.mkdtemp(prefix="bank_slice_"))
    path = folder / "bank_slice.csv"
    df.iloc[idx].to_csv(path, sep=";", index=False)
    return path


def bank_mapping(**overrides) -> Mapping:
    """The worked example's mapping on the slice: default screen (refuse), a small budget."""
    raw = yaml.safe_load((EXAMPLE / "mapping.yaml").read_text())
    raw["file"] = str(bank_slice_csv())
    raw.pop("screen", None)
    raw["model"] = {"n_trials": 3, "timeout_s": 20, "num_threads": 1, "min_positives": 20,
                    "max_boost_rounds": 300}
    raw.update(overrides)
    return mapping_from_dict(raw, base_dir=EXAMPLE, source="bank slice mapping")


def bank_slice_table(**overrides):
    m = bank_mapping(**overrides)
    table = load_flat(m)
    return table, flat_split(table, m), m


CANARIES = (CANARY_EMAIL, CANARY_FIRST_NAME, CANARY_LAST_NAME)


def strings_in(path: Path) -> str:
    """Every text value a file holds, decoded (DuckDB and Parquet compress strings on disk,
    so a byte grep alone could miss PII there)."""
    if path.suffix == ".duckdb":
        con = duckdb.connect(str(path), read_only=True)
        try:
            parts = []
            for (table,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
                parts.append(con.execute(f'SELECT * FROM "{table}"').df().to_csv())
            return "\n".join(parts)
        finally:
            con.close()
    if path.suffix == ".parquet":
        return pd.read_parquet(path).to_csv()
    return path.read_bytes().decode("utf-8", errors="replace")


def canary_hits(root: Path, exclude: set[Path], needles: tuple[str, ...] = CANARIES, *,
                raw_bytes: bool = False) -> dict[str, list[str]]:
    """Files under `root` whose decoded strings (and, with `raw_bytes`, raw bytes: free
    blocks of a DuckDB file, say) hold one of `needles` (the planted canary PII by default;
    an erased lead id in the erasure tests)."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p not in exclude):
        text = strings_in(path)
        raw = path.read_bytes() if raw_bytes else b""
        hits = [c for c in needles if c in text or c.encode() in raw]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


