"""The leakage probe catches a planted post-outcome column and a period-only relation."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.modeling.leakage import LeakageError, check_leakage, probe_leakage
from leadscore.modeling.splits import time_split
from tests.builders import SPLIT_KW, synthetic_catalog, synthetic_table


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
