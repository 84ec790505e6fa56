"""Tiny synthetic training tables shaped like data/processed/train.parquet, with a planted
signal, for the model, rules, leakage and evaluate tests. No I/O."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.catalog import FeatureCatalog, FeatureSpec

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
