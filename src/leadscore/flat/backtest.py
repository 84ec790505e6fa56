"""Flat-export mode's rolling-origin backtest: `leadscore flat --mapping M --out DIR --backtest`.

Would training on the rows before a date have kept the scoring good on the rows after it,
period after period? The folds, the training inside each fold, the metrics, the summary and
the refit verdict are `leadscore.lifecycle.backtest.run_backtest`'s (the one implementation,
used unchanged; see its docstring and docs/lifecycle.md). This module only gives a flat table
the monthly `as_of` that function cuts on:

- **rows in time order** (``time_order: rows``): the rows, in file order, are cut into
  `BLOCKS` = 20 blocks of equal row count (5% of the rows each, +-1 row); block b (0-based)
  gets the pseudo-month date `PSEUDO_START` + b months (2000-01-01, 2000-02-01, ...). These
  are labels of periods, not dates: the folds' `cutoff` and the report's chart show them,
  while each fold's `test_as_of_first` / `test_as_of_last` name file rows ("row 32951"), as
  flat mode's slices do. `periods` in metrics/backtest.json says which block is which rows;
- **a created date** (`created_at`): its calendar months, as they are;
- **neither** (random split): refused with `ConfigError` (exit 2) before anything runs:
  without an order there is no "before" to train on and no "after" to test.

Fold count and size: `FOLDS` = 4 consecutive test periods of one period each (rows: 4 blocks
= the last 20% of the rows, the same rows as the out-of-time test slice with the default
``split.test: 0.2``; dates: the last 4 calendar months). Inside a fold, calib is the period
before its test period, valid the one before that, train everything earlier (rows: 70% of the
file in fold 1, 85% in fold 4). horizon_days = 0 and no embargo: a flat export has no label
window (each row's outcome is already final), so neighbouring periods share no label.
`backtest_flat(..., folds=, blocks=)` changes the counts; there is no mapping key for them
(the mapping format is shared with the rest of flat mode and these defaults cover it).

Training per fold is flat mode's (`leadscore.flat.run.flat_train_config`: the mapping's
`model:` settings) with the backtest's fixed LightGBM parameters (`BacktestConfig`, no Optuna
per fold, as in the pipeline's backtest), calibration on calib, the refit on every pre-test
row, no calibration groups (one row per lead). Recency candidates: with a created date the
pipeline's (as `train_flat`, which has the date); with rows only the default (all rows,
unweighted), because `train_flat` has no date to weight by and the pseudo months must not add
settings training never tries. The rules are the mapping's `FlatRuleClassifier`, their
isotonic points -> probability map refitted on each fold's calib slice. The features are the
ones the run trains on: the leakage screen runs as in `run_flat` (on the non-test rows of
`flat_split`; with ``split.test: 0.2`` and ordered rows those are rows before the first fold's
test block).

`backtest_flat` returns the `BacktestResult`; `backtest_json` is DIR/metrics/backtest.json
(`BacktestResult.to_dict()` plus `periods`). No files are written here: the CLI writes them
through `leadscore.flat.outputs.FlatOutputs`.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd

from leadscore.config import BacktestConfig, RecencyConfig
from leadscore.errors import ConfigError
from leadscore.features.catalog import FeatureCatalog
from leadscore.flat.mapping import Mapping, MappingError
from leadscore.flat.rules import FlatRuleClassifier
from leadscore.flat.run import apply_screen, flat_train_config, kept_catalog, screen_flat
from leadscore.flat.table import FlatTable, flat_split, load_flat
from leadscore.lifecycle.backtest import BacktestResult, run_backtest

log = logging.getLogger(__name__)

BLOCKS = 20  # rows mode: equal row blocks, one pseudo month each
FOLDS = 4  # test periods (one block or calendar month each)
PSEUDO_START = pd.Timestamp("2000-01-01")  # the pseudo month of the first row block


def require_order(mapping: Mapping) -> None:
    """Refuse (ConfigError, exit 2) a mapping without `created_at` or ``time_order: rows``."""
    if not mapping.ordered:
        raise ConfigError(
            f"backtest: {mapping.path.name} has no order (neither `created_at` nor "
            f"`time_order: rows` in the mapping), so its split is random and a rolling-origin "
            f"backtest (train on the past, test on what came next) has no past to train on. Add "
            f"`created_at: <date column>`, or `time_order: rows` if the file is sorted oldest "
            f"first, or run without --backtest (use --cv K for a random K-fold comparison).")


def with_periods(table: FlatTable, blocks: int = BLOCKS) -> pd.DataFrame:
    """The table's rows in time order with the `as_of` the backtest cuts on: the created date
    (time zones dropped) or, for rows in time order, the pseudo month of each row's block
    (`blocks` blocks of equal row count, in file order)."""
    df = table.frame
    if "as_of" in df:
        as_of = pd.to_datetime(df["as_of"])
        if as_of.dt.tz is not None:
            as_of = as_of.dt.tz_convert(None)
        return df.assign(as_of=as_of).sort_values(["as_of", "row"], kind="stable",
                                                  ignore_index=True)
    if not table.ordered:
        raise ConfigError("backtest: the table has no order (see require_order)")
    df = df.sort_values("row", kind="stable", ignore_index=True)
    if len(df) < blocks:
        raise MappingError(f"backtest: {len(df)} rows cannot be cut into {blocks} blocks")
    block = np.arange(len(df)) * blocks // len(df)
    months = pd.date_range(PSEUDO_START, periods=blocks, freq="MS")
    return df.assign(as_of=months[block])


def _month_starts(as_of: pd.Series) -> pd.Series:
    return as_of.dt.to_period("M").dt.to_timestamp()


def check_periods(frame: pd.DataFrame, folds: int, *, by_rows: bool) -> None:
    """Enough periods for `folds` folds (valid, calib and at least one train period before the
    first test period), and both classes in every period some fold validates, calibrates or
    tests on. MappingError naming the period otherwise."""
    month = _month_starts(frame["as_of"])
    first, last = month.min(), month.max()
    span = (last.year - first.year) * 12 + last.month - first.month + 1
    need = folds + 3
    if span < need:
        raise MappingError(
            f"backtest: created_at spans {span} calendar month(s) ({first:%Y-%m} to "
            f"{last:%Y-%m}); {folds} one-month folds need at least {need} (train, valid, calib "
            f"and the {folds} test months)")
    used = pd.date_range(last - pd.DateOffset(months=folds + 1), last, freq="MS")
    for m in used:
        rows = frame.loc[month == m]
        if rows["label"].nunique() < 2:
            block = (m.year - PSEUDO_START.year) * 12 + m.month - PSEUDO_START.month + 1
            where = (f"row block {block} (rows {int(rows['row'].min()) + 1}.."
                     f"{int(rows['row'].max()) + 1})" if by_rows else f"the month {m:%Y-%m}")
            raise MappingError(
                f"backtest: {where} has {len(rows)} rows and {int(rows['label'].sum())} "
                f"positives; every one of the last {folds + 2} periods (valid, calib and test of "
                f"the folds) needs both classes. Use more rows (leave out --rows).")


def _row_labels(result: BacktestResult, frame: pd.DataFrame) -> BacktestResult:
    """Rows mode: each fold's test window as file rows ("row 32951") instead of pseudo dates."""
    rows = frame.groupby("as_of")["row"].agg(["min", "max"])
    folds = [dataclasses.replace(
        f, test_as_of_first=f"row {int(rows.loc[pd.Timestamp(f.test_as_of_first), 'min']) + 1}",
        test_as_of_last=f"row {int(rows.loc[pd.Timestamp(f.test_as_of_last), 'max']) + 1}")
        for f in result.folds]
    return dataclasses.replace(result, folds=folds)


def periods_info(frame: pd.DataFrame, *, by_rows: bool, folds: int) -> dict:
    """What a period is, for metrics/backtest.json (`periods`) and the log."""
    if not by_rows:
        return {"kind": "time", "period": "calendar month of created_at", "folds": folds,
                "note": f"{folds} folds of one calendar month, valid and calib one month each"}
    blocks = frame.groupby("as_of")["row"].agg(["min", "max", "size"])
    return {"kind": "rows", "period": "block of rows in file order", "folds": folds,
            "blocks": [{"as_of": str(d.date()), "rows_first": int(b["min"]) + 1,
                        "rows_last": int(b["max"]) + 1, "rows": int(b["size"])}
                       for d, b in blocks.iterrows()],
            "note": (f"{len(blocks)} blocks of about {len(frame) // len(blocks)} rows in file order, "
                     f"pseudo months from {PSEUDO_START.date()}; {folds} folds of one block, "
                     f"valid and calib one block each")}


def backtest_table(table: FlatTable, mapping: Mapping, catalog: FeatureCatalog, *,
                   folds: int = FOLDS, blocks: int = BLOCKS) -> BacktestResult:
    """`run_backtest` on a prepared flat table with the features of `catalog` (see the module
    docstring)."""
    require_order(mapping)
    if folds < 2 or blocks < folds + 3:
        raise ConfigError(f"backtest: folds must be >= 2 and blocks >= folds + 3 (got folds "
                          f"{folds}, blocks {blocks})")
    frame = with_periods(table, blocks)
    by_rows = not mapping.created_at
    check_periods(frame, folds, by_rows=by_rows)
    info = periods_info(frame, by_rows=by_rows, folds=folds)
    log.info("backtest: %s", info["note"])
    cfg = flat_train_config(mapping)
    if by_rows:  # train_flat has no date to weight by: only its one setting
        cfg = cfg.model_copy(update={"recency": RecencyConfig(window_months=(None,),
                                                              half_life_days=(None,))})
    rules = FlatRuleClassifier.from_mapping(mapping, table.source_names)
    result = run_backtest(
        frame, rules, features=catalog.names, categorical=catalog.categorical, horizon_days=0,
        embargo_months=0,
        backtest_cfg=BacktestConfig(folds=folds, fold_months=1, valid_months=1, calib_months=1),
        train_cfg=cfg, seed=mapping.seed, calibration_groups=None, label="label")
    if by_rows:
        result = _row_labels(result, frame)
    result.extra["periods"] = info
    return result


def backtest_flat(mapping: Mapping, *, nrows: int | None = None,
                  extra_allow: tuple[str, ...] = (), folds: int = FOLDS,
                  blocks: int = BLOCKS) -> BacktestResult:
    """Load and clean the mapping's file, screen it as `run_flat` does (the same columns are
    dropped or refused), and backtest rules vs logistic vs LightGBM over `folds` periods.

    Raises `ConfigError` (no order, exit 2), `MappingError` (file or periods, exit 1),
    `LeakageError` / `TooFewPositivesError` (exit 4)."""
    require_order(mapping)
    table = load_flat(mapping, nrows=nrows)
    split = flat_split(table, mapping)
    dropped = apply_screen(screen_flat(table, split, mapping, extra_allow), mapping)
    return backtest_table(table, mapping, kept_catalog(table.catalog, dropped), folds=folds,
                          blocks=blocks)


def backtest_json(result: BacktestResult) -> dict:
    """DIR/metrics/backtest.json: `BacktestResult.to_dict()` (docs/lifecycle.md) plus
    `periods` (what one period is; for rows, each block's file rows)."""
    return {**result.to_dict(), "periods": result.extra.get("periods")}
