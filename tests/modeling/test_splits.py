"""Time-ordered split: order, embargo/purge, clear error when too short."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.modeling.splits import (
    SplitError,
    embargo_for,
    mature_rows,
    split_from_params,
    time_split,
)
from tests.builders import SPLIT_KW, synthetic_table


def test_slices_are_time_ordered_and_disjoint():
    s = time_split(synthetic_table(n_per_month=20), **SPLIT_KW)
    order = [s.train, s.valid, s.calib, s.test]
    for earlier, later in zip(order, order[1:], strict=False):
        assert earlier["as_of"].max() < later["as_of"].min()
    assert s.test["as_of"].max() == pd.Timestamp("2024-12-01")


def test_label_windows_never_reach_into_the_next_protected_slice():
    s = time_split(synthetic_table(n_per_month=20), **SPLIT_KW)
    horizon = pd.Timedelta(days=SPLIT_KW["horizon_days"])
    assert (s.train["as_of"] + horizon <= s.valid["as_of"].min()).all()
    assert (s.calib["as_of"] + horizon <= s.test["as_of"].min()).all()


def test_purge_drops_rows_when_the_month_gap_is_shorter_than_the_horizon():
    # 1 Feb + 30 days = 3 Mar > 1 Mar: February rows must not sit before a March slice
    df = synthetic_table(n_per_month=10)
    kw = {**SPLIT_KW, "embargo_months": 0}
    s = time_split(df, **kw)
    assert (s.train["as_of"] + pd.Timedelta(days=30) <= s.valid["as_of"].min()).all()


def test_default_embargo_is_horizon_in_months():
    assert embargo_for(90) == 3
    assert embargo_for(91) == 4
    assert embargo_for(90, 1) == 1


def test_too_short_table_names_the_empty_slice():
    df = synthetic_table(n_per_month=5, months=6)
    with pytest.raises(SplitError, match=r"the train slice .* has no rows.*needs at least 9"):
        time_split(df, **SPLIT_KW)


def _params(cutoff: str | None = None):
    from leadscore.config import params_from_dict

    split = {k: v for k, v in SPLIT_KW.items() if k != "horizon_days"}
    return params_from_dict({"features": {"horizon_days": SPLIT_KW["horizon_days"],
                                          "data_cutoff": cutoff}, "split": split})


def test_mature_rows_are_every_row_whose_label_matured_before_the_test_slice():
    df = synthetic_table(n_per_month=20)
    s = time_split(df, **SPLIT_KW)
    test_start = s.test["as_of"].min()
    horizon = pd.Timedelta(days=SPLIT_KW["horizon_days"])
    assert (s.mature["as_of"] + horizon <= test_start).all()
    assert not set(s.mature["lead_id"]) & set(s.test["lead_id"])
    for part in (s.train, s.valid, s.calib):
        assert set(part["lead_id"]) <= set(s.mature["lead_id"])
    # nothing mature is left out: every other row is in the test slice or not yet mature
    rest = df.loc[~df["lead_id"].isin(s.mature["lead_id"])]
    assert (rest["as_of"] + horizon > test_start).all()


def test_cutoff_drops_rows_not_mature_by_then():
    df = synthetic_table(n_per_month=20)  # as_of 2024-01..2024-12, horizon 30 days
    whole = split_from_params(df, _params())
    assert whole.test["as_of"].max() == pd.Timestamp("2024-12-01")
    cut = split_from_params(df, _params("2024-10-15"))  # 1 Sep + 30 days <= 15 Oct < 1 Oct + 30
    assert cut.test["as_of"].max() == pd.Timestamp("2024-09-01")
    kept = mature_rows(df, "2024-10-15", horizon_days=30)
    assert kept["as_of"].max() == pd.Timestamp("2024-09-01")
    assert mature_rows(df, None, horizon_days=30) is df
    with pytest.raises(SplitError, match="features.data_cutoff"):
        split_from_params(df, _params("2023-01-01"))
