"""Time-ordered split: order, embargo/purge, clear error when too short."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.modeling.splits import SplitError, embargo_for, time_split
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
