"""Time-ordered split of the training table into train / valid / calib / test.

Slices are whole calendar months of `as_of`, latest last::

    train | embargo | valid | calib | embargo | test

- **test** (`split.test_months`): the latest `as_of` months, out of time. Used only by the
  `evaluate` stage.
- **calib** (`split.calib_months`): fits the probability calibration (and, later, the grade
  cut points).
- **valid** (`split.valid_months`): Optuna's objective and LightGBM early stopping.
- **train**: every earlier month.

Why an embargo. A row's label looks `horizon_days` ahead of its `as_of`, so with a monthly
schedule and a 90-day horizon the label windows of neighbouring months overlap: a lead that
converts in May is a positive at the February, March and April snapshots, with nearly the
same fit features. Without a gap, a model could memorise such leads in train and meet them
again, already labelled, in a later slice. The embargo also mirrors deployment: a model
built on day T can only know labels that matured by T, i.e. rows with as_of + horizon <= T.

Decision: the embargo (`split.embargo_months`, default ceil(horizon_days / 30)) sits
before **valid** (so early stopping and tuning are honest) and before **test** (so the
out-of-time test is what a model trained on its start date could have known). There is no
gap between valid and calib: the booster never trains on either, so their overlap cannot
leak into it, and a third gap would cost the training slice another quarter of data. On
top of the month gap every row is purged whose label window reaches into the next
protected slice (as_of + horizon_days > start of the slice), which covers short months
(a 3-month gap from 1 February is only 89 days) and non-monthly schedules.

**cutoff** (`features.data_cutoff`, the retrain date: the one name for "the data ends
here"): before splitting, `split_from_params` drops every row whose label had not matured by
the end of that day (as_of + horizon_days > cutoff), so a retrain sees only what was known on
its date, whichever table it is given; None keeps every row (the end of the data).

**mature** (`Split.mature`): every row whose label matured before the test slice starts
(as_of + horizon_days <= test start): train, the first embargo, valid, calib and the
already-mature start of the second embargo. The refit trains on these rows; the test slice
is never among them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field

import pandas as pd

from leadscore.errors import InputError

SLICES: tuple[str, ...] = ("train", "valid", "calib", "test")


class SplitError(InputError):
    """The training table is too short in time for the configured split."""


@dataclass(frozen=True)
class Split:
    """The four slices and, per slice, its as_of window and row/positive counts."""

    train: pd.DataFrame
    valid: pd.DataFrame
    calib: pd.DataFrame
    test: pd.DataFrame
    windows: dict[str, dict]
    embargo_months: int
    # rows whose label matured before the test slice (the refit's rows); empty when unknown
    mature: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in SLICES:
            raise KeyError(f"unknown slice '{name}' (one of {SLICES})")
        return getattr(self, name)


def embargo_for(horizon_days: int, embargo_months: int | None = None) -> int:
    """Months of gap: the configured value, or ceil(horizon_days / 30)."""
    return math.ceil(horizon_days / 30) if embargo_months is None else embargo_months


def mature_rows(df: pd.DataFrame, by: dt.date | pd.Timestamp | str | None, *, horizon_days: int,
                as_of_col: str = "as_of") -> pd.DataFrame:
    """The rows whose label matured by `by` (as_of + horizon_days <= by); None keeps all."""
    if by is None:
        return df
    as_of = pd.to_datetime(df[as_of_col])
    keep = as_of + pd.Timedelta(days=horizon_days) <= pd.Timestamp(by)
    return df.loc[keep].reset_index(drop=True)


def _month(ts: pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(year=ts.year, month=ts.month, day=1)


def time_split(
    df: pd.DataFrame,
    *,
    horizon_days: int,
    test_months: int = 3,
    calib_months: int = 2,
    valid_months: int = 2,
    embargo_months: int | None = None,
    as_of_col: str = "as_of",
    label_col: str = "label",
) -> Split:
    """Split `df` by `as_of` into train / valid / calib / test (see the module docstring).

    Raises `SplitError` naming the slice when one would be empty.
    """
    if as_of_col not in df.columns:
        raise SplitError(f"training table has no '{as_of_col}' column")
    if df.empty:
        raise SplitError("training table is empty: nothing to split")
    as_of = pd.to_datetime(df[as_of_col])
    gap = embargo_for(horizon_days, embargo_months)
    first, last = _month(as_of.min()), _month(as_of.max())
    off = pd.DateOffset
    test_start = last - off(months=test_months - 1)
    calib_end = test_start - off(months=gap)
    calib_start = calib_end - off(months=calib_months)
    valid_start = calib_start - off(months=valid_months)
    train_end = valid_start - off(months=gap)
    horizon = pd.Timedelta(days=horizon_days)

    bounds = {
        "train": (first, train_end, valid_start),
        "valid": (valid_start, calib_start, None),
        "calib": (calib_start, calib_end, test_start),
        "test": (test_start, last + off(months=1), None),
    }
    n_months = (last.year - first.year) * 12 + last.month - first.month + 1
    need = 1 + gap + valid_months + calib_months + gap + test_months
    slices: dict[str, pd.DataFrame] = {}
    windows: dict[str, dict] = {}
    for name, (lo, hi, purge_before) in bounds.items():
        mask = (as_of >= lo) & (as_of < hi)
        if purge_before is not None:
            mask &= as_of + horizon <= purge_before
        part = df.loc[mask]
        if part.empty:
            raise SplitError(
                f"split: the {name} slice ({lo.date()} to {hi.date()}) has no rows. The table covers "
                f"as_of {as_of.min().date()}..{as_of.max().date()} ({n_months} months) but the split "
                f"needs at least {need} (train 1 + embargo {gap} + valid {valid_months} + calib "
                f"{calib_months} + embargo {gap} + test {test_months}). Reduce split.*_months or "
                f"split.embargo_months, or widen features.as_of_start/as_of_end."
            )
        slices[name] = part.reset_index(drop=True)
        part_as_of = as_of[mask]
        windows[name] = {
            "as_of_first": str(part_as_of.min().date()),
            "as_of_last": str(part_as_of.max().date()),
            "rows": int(len(part)),
            "positives": int(part[label_col].sum()) if label_col in part else None,
        }
    mature = df.loc[(as_of < test_start) & (as_of + horizon <= test_start)].reset_index(drop=True)
    return Split(**slices, windows=windows, embargo_months=gap, mature=mature)


def split_from_params(df: pd.DataFrame, params) -> Split:
    """`time_split` with the `split` section and features.horizon_days of a `Params`, after
    dropping the rows not yet mature at `features.data_cutoff` (None: keep all)."""
    horizon = params.features.horizon_days
    kw = params.split.model_dump()
    cutoff = params.features.cutoff_datetime
    kept = mature_rows(df, cutoff, horizon_days=horizon)
    if cutoff is not None and kept.empty:
        raise SplitError(f"features.data_cutoff {params.features.data_cutoff}: no row of the training table has a label "
                         f"mature by then (as_of + {horizon} days <= cutoff); use a later cutoff")
    return time_split(kept, horizon_days=horizon, **kw)


def data_window(split: Split) -> dict[str, str]:
    """Flat {slice_first/slice_last: date} for tags and metadata."""
    out = {}
    for name, w in split.windows.items():
        out[f"{name}_as_of_first"] = w["as_of_first"]
        out[f"{name}_as_of_last"] = w["as_of_last"]
    return out


def log_windows(split: Split, logger: logging.Logger) -> None:
    """One log line per slice: its as_of window, rows and positives."""
    for name, w in split.windows.items():
        logger.info("%-5s as_of %s..%s: %d rows, %d positives", name, w["as_of_first"],
                    w["as_of_last"], w["rows"], w["positives"])
