"""The leakage screen flags post-outcome columns by AUC, missingness, name and value."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from leadscore.modeling.screen import ScreenError, check_screen, name_reason, screen_columns
from tests.builders import bank_slice_table


def _frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    return pd.DataFrame({
        "label": y,
        "age": rng.normal(40, 10, n),  # honest, unrelated
        "sales_notes_len": np.where(y == 1, rng.uniform(1, 9, n), np.nan),  # filled if won
        "x17": y * 5 + rng.normal(0, 0.5, n),  # near-perfect, innocent name
        "channel": rng.choice(["web", "event"], n),
        "tags": np.where(y == 1, "closed by sales", rng.choice(["ringing", "busy"], n)),
    })


def test_each_rule_flags_its_column_and_honest_columns_pass():
    df = _frame()
    report = screen_columns(df, features=["age", "sales_notes_len", "x17", "channel", "tags"],
                            categorical=["channel", "tags"])
    by = {f.column: " ".join(f.reasons) for f in report.flags}
    assert set(by) == {"sales_notes_len", "x17", "tags"}
    assert "whether it is filled in predicts the outcome" in by["sales_notes_len"]
    assert "univariate AUC" in by["x17"]
    assert "name looks post-outcome (tags)" in by["tags"]
    assert "values look like sales outcomes" in by["tags"]
    assert report.aucs["age"] < 0.6


def test_refusal_names_the_column_its_auc_and_the_allow_list():
    report = screen_columns(_frame(), features=["age", "x17"], categorical=[])
    with pytest.raises(ScreenError) as err:
        check_screen(report)
    text = str(err.value)
    assert re.search(r"x17: REFUSED; univariate AUC 0\.9\d\d", text)
    assert "allow: [x17]" in text


def test_allow_list_keeps_a_flagged_column():
    report = screen_columns(_frame(), features=["age", "x17"], categorical=[], allow=["x17"])
    assert report.allowed == ["x17"] and report.refused == []
    check_screen(report)  # does not raise


def test_name_rule_uses_words_not_substrings():
    assert name_reason("poutcome") is None  # previous campaign's outcome: known before the call
    assert name_reason("Lead Quality") is not None
    assert name_reason("Last Activity") is not None
    assert "after-contact" in name_reason("duration")
    assert name_reason("annual_revenue") is None


def test_duration_is_flagged_without_being_told_on_real_data():
    """On a slice of the UCI bank data the mapping lists `duration` as a feature; the screen
    refuses it on its own, both by its univariate AUC and by its name."""
    table, split, _ = bank_slice_table()
    rows = pd.concat([split.train, split.valid, split.calib])
    report = screen_columns(rows, features=table.features, categorical=table.catalog.categorical,
                            source_names=table.source_names)
    assert report.refused == ["duration"]
    reasons = " ".join(report.flags[0].reasons)
    assert "univariate AUC" in reasons and "after-contact" in reasons
    second = sorted(v for k, v in report.aucs.items() if k != "duration")[-1]
    assert report.aucs["duration"] > 0.8 and report.aucs["duration"] - second >= 0.15


def test_duration_renamed_is_still_caught_by_its_auc():
    table, split, _ = bank_slice_table()
    rows = pd.concat([split.train, split.valid, split.calib]).rename(columns={"duration": "x1"})
    feats = ["x1" if f == "duration" else f for f in table.features]
    report = screen_columns(rows, features=feats, categorical=table.catalog.categorical)
    assert report.refused == ["x1"]
