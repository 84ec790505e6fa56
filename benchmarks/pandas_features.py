"""A plain pandas `groupby` twin of `leadscore.features.build.build_features` for ONE as_of.

Benchmark-only: it is the "obvious" implementation we compare speed against, and its output
doubles as an independent reference for the SQL (the benchmark checks they agree).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from leadscore.features.build import FUNNEL, POSITIVE_EVENT_TYPES, SIZE_BANDS, feature_catalog
from leadscore.features.titles import parse_title


def _band(size: pd.Series) -> pd.Series:
    out = pd.Series("5001+", index=size.index, dtype="object")
    for hi, label in reversed(SIZE_BANDS):
        out[size <= hi] = label
    out[size.isna() | (size < 1)] = "unknown"
    return out


def _cat(s: pd.Series, upper: bool = False) -> pd.Series:
    s = s.astype("object").where(s.notna(), "").astype(str).str.strip()
    s = s.str.upper() if upper else s.str.lower()
    return s.where(s != "", "unknown")


def pandas_features(
    leads: pd.DataFrame, events: pd.DataFrame, outcomes: pd.DataFrame, as_of: dt.datetime, *,
    target_stage: str, max_lead_age_days: int, windows_days: tuple[int, ...], half_life_days: float,
    content_types: tuple[str, ...],
) -> pd.DataFrame:
    as_of_ts = pd.Timestamp(as_of)
    age = pd.Timedelta(days=max_lead_age_days)
    closing = set(FUNNEL[FUNNEL.index(target_stage):]) | {"won", "lost"}
    closed = outcomes[outcomes.stage.isin(closing)].groupby("lead_id").stage_at.min()
    el = leads[(leads.created_at < as_of_ts) & (leads.created_at >= as_of_ts - age)].copy()
    el = el[~el.lead_id.map(closed).lt(as_of_ts).fillna(False).astype(bool)]

    ev = events[events.lead_id.isin(el.lead_id)].merge(el[["lead_id", "created_at"]], on="lead_id")
    ev = ev[(ev.occurred_at < ev.created_at + age) & (ev.occurred_at < as_of_ts)]
    ev = ev.drop_duplicates(["lead_id", "occurred_at", "event_type", "content_type"])
    ev["age_days"] = (as_of_ts - ev.occurred_at).dt.total_seconds() / 86400.0

    out = pd.DataFrame({"lead_id": el.lead_id.values, "as_of": as_of_ts})
    titles = el.job_title.map(lambda t: parse_title(None if pd.isna(t) else t))
    out["seniority"] = [t[0] for t in titles]
    out["department"] = [t[1] for t in titles]
    out["company_size_band"] = _band(el.company_size.astype("float64")).values
    out["company_size"] = el.company_size.astype("float64").values
    out["annual_revenue"] = el.annual_revenue.astype("float64").values
    out["industry"] = _cat(el.industry).values
    out["country"] = _cat(el.country, upper=True).values
    out["source"] = _cat(el.source).values
    budget = el.bant_budget.astype("boolean")
    out["bant_budget"] = np.where(budget.isna(), "unknown", np.where(budget.fillna(False), "yes", "no"))
    out["bant_timeline"] = _cat(el.bant_timeline).values
    for flag in ("free_mail", "email_invalid", "placeholder_name"):
        out[flag] = el[flag].astype("boolean").fillna(False).astype("float64").values
    out["lead_age_days"] = ((as_of_ts - el.created_at).dt.total_seconds() / 86400.0).values

    out = out.set_index("lead_id")
    for w in windows_days:
        in_w = ev[ev.occurred_at >= as_of_ts - pd.Timedelta(days=w)]
        counts = in_w.groupby(["lead_id", "event_type"]).size().unstack(fill_value=0)
        for e in POSITIVE_EVENT_TYPES:
            out[f"{e}_{w}d"] = counts[e].reindex(out.index).fillna(0).astype("float64") if e in counts else 0.0
        dl = in_w[in_w.event_type == "content_download"].groupby(["lead_id", "content_type"]).size().unstack(fill_value=0)
        for c in content_types:
            out[f"download_{c}_{w}d"] = dl[c].reindex(out.index).fillna(0).astype("float64") if c in dl else 0.0
    pos = ev[ev.event_type.isin(POSITIVE_EVENT_TYPES)]
    out["days_since_last_activity"] = pos.groupby("lead_id").age_days.min().reindex(out.index)
    pricing = ev[ev.event_type == "pricing_page_view"]
    out["days_since_last_pricing_page_view"] = pricing.groupby("lead_id").age_days.min().reindex(out.index)
    decay = np.power(2.0, -pos.age_days / half_life_days)
    out["engagement_decayed"] = decay.groupby(pos.lead_id).sum().reindex(out.index).fillna(0.0)
    maxw = max(windows_days)
    ctr_ev = ev[ev.occurred_at >= as_of_ts - pd.Timedelta(days=maxw)]
    opens = ctr_ev[ctr_ev.event_type == "email_open"].groupby("lead_id").size().reindex(out.index).fillna(0)
    clicks = ctr_ev[ctr_ev.event_type == "email_click"].groupby("lead_id").size().reindex(out.index).fillna(0)
    out[f"email_ctr_{maxw}d"] = (clicks / opens.where(opens > 0)).astype("float64")
    neg = events[events.lead_id.isin(el.lead_id)]
    for col, etype in (("unsubscribed", "unsubscribe"), ("email_bounced", "email_bounce")):
        first = neg[neg.event_type == etype].groupby("lead_id").occurred_at.min()
        out[col] = (first.reindex(out.index) < as_of_ts).astype("float64")
    out = out.reset_index()
    names = feature_catalog(windows_days, content_types).names
    return out[["lead_id", "as_of", *names]].sort_values("lead_id").reset_index(drop=True)
