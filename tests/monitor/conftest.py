"""Tiny score histories: a reference and runs built from in-memory frames."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from leadscore.monitor import drift

AS_OF = dt.datetime(2026, 1, 1)


def frames(n: int, seed: int, *, shift: float = 0.0, new_source: float = 0.0, nulls: float = 0.05,
           high: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features (x numeric, source categorical) and scores; `shift` moves x, `new_source` is
    the share of a never-seen source, `high` moves leads to grade A1 and a high probability."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    x[rng.random(n) < nulls] = np.nan
    src = rng.choice(["web", "event", "referral"], n)
    src[rng.random(n) < new_source] = "partner_referral"
    prob = rng.beta(2, 8, n)
    grade = rng.choice(list(drift.GRADES), n)
    up = rng.random(n) < high
    prob[up], grade[up] = 0.9, "A1"
    return (pd.DataFrame({"x": x, "source": src}),
            pd.DataFrame({"probability": prob, "grade": grade}))


def reference(n: int = 4000, seed: int = 0) -> dict:
    f, s = frames(n, seed)
    spec = drift.bin_spec(f, s["probability"], categorical=["source"])
    return {"model_version": "m1", "source": "test", "rows": n, "spec": spec,
            "summary": drift.summarize(f, s, spec), "created_at": AS_OF}


def run(ref: dict, run_id: str, *, n: int = 2000, seed: int = 1, days: int = 0,
        newest_lag_days: float = 0.5, **shift) -> dict:
    f, s = frames(n, seed, **shift)
    as_of = AS_OF + dt.timedelta(days=days)
    return {"run_id": run_id, "as_of": as_of, "scored_at": as_of, "model_version": "m1",
            "model_kind": "lightgbm", "leads_scored": n, "leads_quarantined": 0,
            "newest_event_at": as_of - dt.timedelta(days=newest_lag_days),
            "mean_probability": float(s["probability"].mean()),
            "summary": drift.summarize(f, s, ref["spec"])}
