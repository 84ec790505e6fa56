"""The leakage guards: the probe catches a planted post-outcome column and a period-only
relation; the screen flags post-outcome columns by AUC, missingness, name and value."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from leadscore.modeling.leakage import (
    LeakageError,
    check_leakage,
    name_reason,
    probe_leakage,
    screen_columns,
)
from leadscore.modeling.splits import time_split
from tests.builders import SPLIT_KW, bank_slice_table, synthetic_catalog, synthetic_table

pytestmark = pytest.mark.slow  # trains LightGBM or runs whole stages; `make test-fast` skips it


def _probe(df, extra=(), **kw):
    cat = synthetic_catalog()
    s = time_split(df, **SPLIT_KW)
    return probe_leakage(s.train, s.valid, features=cat.names + list(extra),
                         categorical=cat.categorical, seed=0, **kw)


def test_clean_features_pass():
    report = _probe(synthetic_table(n_per_month=300), max_random_gap=0.15)
    assert report.flagged == []
    check_leakage(report)  # does not raise


def test_planted_post_outcome_column_is_caught_and_named():
    df = synthetic_table(n_per_month=300)
    rng = np.random.default_rng(0)
    # "days from as_of to the opportunity": recorded only once the lead converted
    df["days_to_opportunity"] = np.where(df["label"] == 1, rng.uniform(1, 90, len(df)), np.nan)
    report = _probe(df, extra=["days_to_opportunity"], max_random_gap=0.15, model_check=False)
    assert report.flagged == ["days_to_opportunity"]
    with pytest.raises(LeakageError, match="days_to_opportunity.*out-of-time AUC"):
        check_leakage(report)


def test_relation_that_exists_only_within_a_period_is_caught_by_the_random_split():
    df = synthetic_table(n_per_month=300)
    rng = np.random.default_rng(1)
    # a back-filled status code: tracks the label in the early months, noise later
    early = df["as_of"] < "2024-05-01"
    df["crm_status_code"] = np.where(early, df["label"] * 2.0 + rng.normal(0, .3, len(df)),
                                     rng.normal(0, 1, len(df)))
    report = _probe(df, extra=["crm_status_code"], max_auc=0.99, max_random_gap=0.15,
                    model_check=False)
    assert "crm_status_code" in report.flagged
    assert "random-split AUC" in " ".join(report.messages)


# ---- the screen ---------------------------------------------------------------------------
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
    levels = set(_frame()["tags"].dropna().astype(str))
    assert not any(repr(v) in by["tags"] for v in levels)  # outcome words named, never a value
    assert report.aucs["age"] < 0.6


def test_refusal_names_the_column_its_auc_and_the_allow_list():
    report = screen_columns(_frame(), features=["age", "x17"], categorical=[])
    with pytest.raises(LeakageError) as err:
        check_leakage(report)
    text = str(err.value)
    assert re.search(r"x17: REFUSED; univariate AUC 0\.9\d\d", text)
    assert "allow: [x17]" in text


def test_allow_list_keeps_a_flagged_column():
    report = screen_columns(_frame(), features=["age", "x17"], categorical=[], allow=["x17"])
    assert report.allowed == ["x17"] and report.refused == []
    check_leakage(report)  # does not raise


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
