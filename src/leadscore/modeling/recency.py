"""Recency settings of one fit: the training window and the sample-weight half-life.

Conversion patterns drift (campaigns, pricing, sales capacity), so the newest labelled rows
may say more about next quarter's leads than last year's do. Two knobs express that:

- **window** (`window_months`): fit only the latest `window_months` as_of months of the
  rows, counted back from a reference date (by default the latest as_of of those rows);
  None keeps all history;
- **half-life** (`half_life_days`): weight each row 0.5 ** (age_days / half_life_days),
  its age counted back from the latest as_of of the fitted rows (the newest rows weigh 1);
  None weighs every row the same.

`choose_settings` fits every candidate on the train slice and keeps the one with the lowest
log loss on the valid slice (a proper scoring rule; the valid slice is never weighted), and
reports every candidate's valid log loss and ROC-AUC. Candidates that select the same rows
with the same weights as an earlier one (a window at least as long as the history) are
skipped, not fitted twice. The training sequence (`leadscore.modeling.train`) and the
backtest (`leadscore.lifecycle.backtest`) both choose through this one function.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Settings:
    """The recency settings of one fit (None: all history / no weighting)."""

    window_months: int | None = None
    half_life_days: float | None = None

    def to_dict(self) -> dict:
        return {"window_months": self.window_months, "half_life_days": self.half_life_days}

    def __str__(self) -> str:
        window = "all history" if self.window_months is None else f"{self.window_months} months"
        weight = ("unweighted" if self.half_life_days is None
                  else f"half-life {self.half_life_days:g} days")
        return f"{window}, {weight}"


def candidates(window_months: Sequence[int | None],
               half_life_days: Sequence[float | None]) -> list[Settings]:
    """Every (window, half-life) pair, in the order given (window first)."""
    return [Settings(w, h) for w, h in itertools.product(window_months, half_life_days)]


def window_rows(df: pd.DataFrame, window_months: int | None, *,
                reference: pd.Timestamp | str | None = None,
                as_of_col: str = "as_of") -> pd.DataFrame:
    """The rows of the latest `window_months` months up to `reference` (default: the latest
    as_of of `df`): reference - window_months months < as_of <= reference. None keeps every
    row."""
    if window_months is None or df.empty:
        return df
    as_of = pd.to_datetime(df[as_of_col])
    ref = as_of.max() if reference is None else pd.Timestamp(reference)
    keep = (as_of > ref - pd.DateOffset(months=window_months)) & (as_of <= ref)
    return df if keep.all() else df.loc[keep].reset_index(drop=True)


def recency_weights(as_of: pd.Series | np.ndarray, half_life_days: float | None, *,
                    reference: pd.Timestamp | str | None = None) -> np.ndarray:
    """0.5 ** (age_days / half_life_days), age counted back from `reference` (default: the
    latest as_of); None gives ones."""
    ts = pd.to_datetime(pd.Series(np.asarray(as_of)))
    if half_life_days is None:
        return np.ones(len(ts))
    ref = ts.max() if reference is None else pd.Timestamp(reference)
    age_days = (ref - ts).dt.total_seconds().to_numpy() / SECONDS_PER_DAY
    return np.power(0.5, age_days / float(half_life_days))


def settings_rows(df: pd.DataFrame, settings: Settings, *,
                  as_of_col: str = "as_of") -> tuple[pd.DataFrame, np.ndarray]:
    """The rows a fit with `settings` trains on, and their sample weights (both relative to
    the latest as_of of `df`)."""
    rows = window_rows(df, settings.window_months, as_of_col=as_of_col)
    if settings.half_life_days is None:
        return rows, np.ones(len(rows))
    ref = pd.to_datetime(df[as_of_col]).max()
    return rows, recency_weights(rows[as_of_col], settings.half_life_days, reference=ref)


def distinct(df: pd.DataFrame, settings: Sequence[Settings], *,
             as_of_col: str = "as_of") -> tuple[list[Settings], list[dict]]:
    """The candidates that differ on `df`, and the skipped ones with the reason. A window that
    keeps every row is the same fit as all history; without an as_of column only the default
    (all history, unweighted) can be fitted."""
    kept: list[Settings] = []
    skipped: list[dict] = []
    seen: dict[tuple, Settings] = {}
    for s in settings:
        if as_of_col not in df.columns:
            if s != Settings():
                skipped.append({**s.to_dict(), "reason": f"no '{as_of_col}' column"})
                continue
            key: tuple = (len(df), None)
        else:
            key = (len(window_rows(df, s.window_months, as_of_col=as_of_col)), s.half_life_days)
        if key in seen:
            skipped.append({**s.to_dict(), "reason": f"same rows and weights as {seen[key]}"})
            continue
        seen[key] = s
        kept.append(s)
    if as_of_col not in df.columns and not kept:
        kept.append(Settings())
    return kept, skipped


@dataclass
class SettingsChoice:
    """The chosen settings, the model fitted with them on the train slice, and every
    candidate's valid-slice figures."""

    settings: Settings
    model: Any  # the fitted estimator (decision_function / predict_proba)
    train_rows: int  # rows of the chosen fit
    candidates: list[dict] = field(default_factory=list)  # settings, rows, valid figures
    skipped: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {"chosen": self.settings.to_dict(), "train_rows": self.train_rows,
                "candidates": self.candidates, "skipped": self.skipped}


FitFn = Callable[[pd.DataFrame, np.ndarray], Any]


def choose_settings(fit: FitFn, train: pd.DataFrame, valid: pd.DataFrame,
                    settings: Sequence[Settings], *, label: str = "label",
                    as_of_col: str = "as_of", name: str = "model") -> SettingsChoice:
    """Fit every distinct candidate on `train` (`fit(rows, weights)` returns a fitted
    estimator with `predict_proba`) and keep the one with the lowest valid log loss."""
    todo, skipped = distinct(train, settings, as_of_col=as_of_col)
    if not todo:
        raise ValueError("no recency settings to choose from")
    y = valid[label].to_numpy().astype(int)
    best: tuple[float, int, Any, int] | None = None
    table = []
    for i, s in enumerate(todo):
        if as_of_col in train.columns:
            rows, weights = settings_rows(train, s, as_of_col=as_of_col)
        else:
            rows, weights = train, np.ones(len(train))
        model = fit(rows, weights)
        p = model.predict_proba(valid)[:, 1]
        loss = float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))
        entry = {**s.to_dict(), "rows": int(len(rows)), "valid_log_loss": loss,
                 "valid_roc_auc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None}
        if getattr(model, "best_iteration_", None) is not None:
            entry["best_iteration"] = int(model.best_iteration_)
        table.append(entry)
        if best is None or loss < best[0]:
            best = (loss, i, model, len(rows))
    _, i, model, n_rows = best
    for j, entry in enumerate(table):
        entry["chosen"] = j == i
    log.info("%s settings (valid log loss, ROC-AUC): %s; chosen: %s", name,
             "; ".join(f"{Settings(e['window_months'], e['half_life_days'])} "
                       f"{e['valid_log_loss']:.5f}, {e['valid_roc_auc'] or float('nan'):.4f}"
                       for e in table), todo[i])
    return SettingsChoice(todo[i], model, n_rows, table, skipped)
