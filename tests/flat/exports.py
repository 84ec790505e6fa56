"""Tiny messy CRM exports for flat-mode tests: one CSV per problem, written to a folder,
with a mapping that trains in a second or two (one Optuna trial, a few rounds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

FAST_MODEL = {"n_trials": 1, "timeout_s": 10, "num_threads": 1, "min_positives": 5,
              "max_boost_rounds": 30, "early_stopping_rounds": 5, "calibration_folds": 2}


def base_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A lead base with a numeric and a categorical signal and a yes/no outcome."""
    rng = np.random.default_rng(seed)
    visits = rng.poisson(3, n)
    channel = rng.choice(["Google", "Direct", "Referral", "Events"], n)
    logit = -1.5 + 0.3 * (visits - 3) + np.where(channel == "Referral", 1.0, 0.0)
    converted = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"Lead ID": [f"L{i:05d}" for i in range(n)],
                         "Channel": channel, "Page Visits": visits,
                         "Company Size": rng.integers(1, 500, n),
                         "Converted": np.where(converted, "yes", "no")})


def dates(n: int, *, start: str = "2017-06-01", days: int = 360, seed: int = 1) -> pd.Series:
    """`n` dates in file order over `days` days from `start` (sorted: the file is in time order)."""
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.integers(0, days, n))
    return pd.Series(pd.Timestamp(start) + pd.to_timedelta(offsets, unit="D"))


def write_export(folder: Path, df: pd.DataFrame, *, name: str = "export.csv", **mapping) -> Path:
    """Write `df` as `name` and a mapping for it; returns the mapping path."""
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / name, index=False)
    raw = {"file": name, "target": "Converted", "positive": "yes", "model": dict(FAST_MODEL),
           "screen": {"on_flag": "drop"}}
    raw.update(mapping)
    path = folder / "mapping.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def high_cardinality_frame(n: int = 8000, seed: int = 0, *, levels: int = 500, planted: int = 60,
                           first_planted: int = 30, base_rate: float = 0.08,
                           lift: float = 3.0) -> tuple[pd.DataFrame, np.ndarray]:
    """A lead base in time order whose `Landing Page` has `levels` levels (Zipf-like shares,
    level r drawn with weight 1 / (r + 10)); the `planted` levels ranked `first_planted`
    onwards (mid-frequency: outside a top-30 cap, about 20-45 rows each in 8,000 rows) convert
    at `lift` times the base rate, the others at the base rate, with a mild visits effect.
    Returns the frame and the planted mask (True: the row's page is planted)."""
    rng = np.random.default_rng(seed)
    w = 1 / (np.arange(levels) + 10.0)
    page = rng.choice(levels, n, p=w / w.sum())
    hot = (page >= first_planted) & (page < first_planted + planted)
    names = np.array([f"LP-{i:04d}" for i in rng.permutation(levels)])  # the rank is not in the name
    visits = rng.poisson(3, n)
    p = np.where(hot, base_rate * lift, base_rate) * np.exp(0.1 * (visits - 3))
    converted = rng.random(n) < np.clip(p, 0, 0.95)
    return pd.DataFrame({"Lead ID": [f"L{i:05d}" for i in range(n)], "Landing Page": names[page],
                         "Page Visits": visits, "Converted": np.where(converted, "yes", "no")}), hot
