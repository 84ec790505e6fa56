"""The lead base, read from the ingested (PII-free) CRM: the funnel, conversion by segment,
the event mix over time, time to convert and the label window of the training table.

Every query names its columns: no e-mail or name is read, even from a raw CRM. The funnel
is ordered (`leadscore.schema.FUNNEL`): a lead that reached a later stage counts as having
reached the earlier ones (a won lead was an opportunity), as in the training labels.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

from leadscore.features.build import SIZE_BANDS
from leadscore.schema import FUNNEL

SEGMENTS: tuple[str, ...] = ("source", "industry", "country", "company_size_band")


def size_band(company_size: pd.Series) -> pd.Series:
    """Company size (employees) in the bands the features use; missing or < 1: unknown."""
    size = pd.to_numeric(company_size, errors="coerce")
    out = pd.Series("5001+", index=size.index, dtype=object)
    for hi, label in reversed(SIZE_BANDS):
        out[size <= hi] = label
    out[size.isna() | (size < 1)] = "unknown"
    return out


def lead_stages(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per lead: created_at, its segments and, per funnel stage, when it first
    reached that stage or a later one (NaT: never)."""
    firsts = ", ".join(f"min(stage_at) FILTER (WHERE stage IN ({', '.join(repr(s) for s in FUNNEL[i:])}))"
                       f" AS {stage}_at" for i, stage in enumerate(FUNNEL))
    df = con.execute(f"""
        WITH reached AS (SELECT lead_id, {firsts} FROM outcomes GROUP BY lead_id)
        SELECT l.lead_id, l.created_at, l.source, l.industry, l.country, l.company_size,
               {', '.join(f'r.{s}_at' for s in FUNNEL)}
        FROM leads l LEFT JOIN reached r USING (lead_id)
        ORDER BY l.lead_id""").df()
    df["company_size_band"] = size_band(df.pop("company_size"))
    for col in SEGMENTS:
        df[col] = df[col].fillna("unknown")
    return df


def funnel(leads: pd.DataFrame) -> pd.DataFrame:
    """Leads reaching each funnel stage: count, share of all leads, and the step conversion
    from the stage before."""
    counts = [len(leads), *(int(leads[f"{s}_at"].notna().sum()) for s in FUNNEL)]
    out = pd.DataFrame({"stage": ["lead", *FUNNEL], "leads": counts})
    out["share_of_leads"] = out["leads"] / max(len(leads), 1)
    out["step_conversion"] = out["leads"] / out["leads"].shift(1).replace(0, np.nan)
    return out.set_index("stage")


def conversion_by(leads: pd.DataFrame, column: str, stage: str = "opportunity") -> pd.DataFrame:
    """Per value of `column`: leads, how many reached `stage` (or later) and the rate, with
    the value's share of all conversions; best rate first."""
    if stage not in FUNNEL:
        raise ValueError(f"stage {stage!r} is not a funnel stage: {', '.join(FUNNEL)}")
    reached = leads[f"{stage}_at"].notna()
    out = reached.groupby(leads[column]).agg(leads="size", converted="sum")
    out["rate"] = out["converted"] / out["leads"]
    out["share_of_conversions"] = out["converted"] / max(int(reached.sum()), 1)
    return out.sort_values(["rate", "leads"], ascending=False)


def new_leads(leads: pd.DataFrame, column: str = "source", freq: str = "MS") -> pd.DataFrame:
    """Leads created per period (rows; pandas offset alias, default month start) and value
    of `column` (columns)."""
    counts = leads.groupby([pd.Grouper(key="created_at", freq=freq), column]).size()
    out = counts.unstack(fill_value=0)
    out.columns.name = None
    return out


def event_mix(con: duckdb.DuckDBPyConnection, freq: str = "month", *,
              shares: bool = False) -> pd.DataFrame:
    """Events per period (rows) and event type (columns), oldest period first; `shares`:
    each type's share of the period's events instead of counts."""
    if freq not in ("day", "week", "month", "quarter", "year"):
        raise ValueError(f"freq {freq!r}: use day, week, month, quarter or year")
    df = con.execute(f"""
        SELECT date_trunc('{freq}', occurred_at) AS period, event_type, count(*) AS events
        FROM events GROUP BY ALL""").df()
    mix = df.pivot_table(index="period", columns="event_type", values="events",
                         aggfunc="sum", fill_value=0)
    mix.columns.name = None
    mix = mix.sort_index().astype(int)
    return mix.div(mix.sum(axis=1), axis=0) if shares else mix


def days_to_stage(leads: pd.DataFrame, stage: str = "opportunity",
                  within: tuple[int, ...] = (30, 60, 90, 180, 365)) -> pd.DataFrame:
    """For the leads that reached `stage`: the share that got there within each number of
    days after creation (how much of the conversion a label window of that length sees)."""
    days = (leads[f"{stage}_at"] - leads["created_at"]).dt.total_seconds().dropna() / 86400
    rows = [{"days": d, "share_of_conversions": float((days <= d).mean()) if len(days) else np.nan}
            for d in within]
    return pd.DataFrame(rows).set_index("days")


def label_window(table: pd.DataFrame, horizon_days: int,
                 cutoff: dt.datetime | pd.Timestamp | None = None) -> pd.DataFrame:
    """Per scoring date of the training table: rows, positives, base rate and the day its
    label window closes (as_of + horizon). With `cutoff`, whether that window had closed by
    then (the pipeline keeps only such rows: an open window is excluded, not labelled 0)."""
    out = table.groupby("as_of")["label"].agg(rows="size", positives="sum")
    out["base_rate"] = out["positives"] / out["rows"]
    closes = pd.to_datetime(out.index) + pd.Timedelta(days=horizon_days)
    out["window_closes"] = closes
    if cutoff is not None:
        out["closed_by_cutoff"] = closes <= pd.Timestamp(cutoff)
    return out
