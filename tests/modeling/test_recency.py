"""Recency settings: the window, the weights, skipping identical candidates, the chooser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.modeling.recency import (
    Settings,
    candidates,
    choose_settings,
    distinct,
    recency_weights,
    settings_rows,
    window_rows,
)


def _monthly(months: int = 12, n: int = 10, rates: list[float] | None = None) -> pd.DataFrame:
    as_of = np.repeat(pd.date_range("2024-01-01", periods=months, freq="MS").values, n)
    rates = rates or [0.5] * months
    label = np.concatenate([(np.arange(n) < round(r * n)).astype(int) for r in rates])
    return pd.DataFrame({"lead_id": np.arange(months * n), "as_of": pd.to_datetime(as_of),
                         "label": label})


class _MeanModel:
    """Predicts the weighted positive rate of the rows it was fitted on."""

    def __init__(self, rows: pd.DataFrame, weights: np.ndarray):
        self.p = float(np.average(rows["label"], weights=weights))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.full(len(X), self.p)
        return np.column_stack([1 - p, p])


def test_weights_halve_per_half_life():
    ref = pd.Timestamp("2025-01-01")
    as_of = pd.Series([ref, ref - pd.Timedelta(days=90), ref - pd.Timedelta(days=180),
                       ref - pd.Timedelta(days=360)])
    np.testing.assert_allclose(recency_weights(as_of, 180.0), [1, 2 ** -0.5, 0.5, 0.25])
    np.testing.assert_allclose(recency_weights(as_of, 90.0, reference=ref + pd.Timedelta(days=90)),
                               [0.5, 0.25, 0.125, 2 ** -5])
    np.testing.assert_array_equal(recency_weights(as_of, None), np.ones(4))


def test_window_keeps_the_latest_months_before_the_reference():
    df = _monthly(12)
    kept = window_rows(df, 6)
    assert kept["as_of"].min() == pd.Timestamp("2024-07-01")
    assert kept["as_of"].nunique() == 6 and len(kept) == 60
    earlier = window_rows(df, 3, reference="2024-06-01")
    assert sorted(earlier["as_of"].dt.month.unique()) == [4, 5, 6]
    assert window_rows(df, None) is df


def test_settings_rows_weigh_relative_to_the_latest_fitted_row():
    df = _monthly(12)
    rows, w = settings_rows(df, Settings(window_months=3, half_life_days=30.0))
    assert rows["as_of"].min() == pd.Timestamp("2024-10-01") and len(w) == len(rows) == 30
    newest = rows["as_of"] == rows["as_of"].max()
    assert np.all(w[newest.to_numpy()] == 1.0) and np.all(w[~newest.to_numpy()] < 1.0)


def test_candidates_identical_on_the_data_are_skipped():
    df = _monthly(6)
    todo, skipped = distinct(df, candidates([None, 6, 12, 3], [None, 90.0]))
    assert todo == [Settings(None, None), Settings(None, 90.0), Settings(3, None),
                    Settings(3, 90.0)]
    assert [(s["window_months"], s["half_life_days"]) for s in skipped] == [
        (6, None), (6, 90.0), (12, None), (12, 90.0)]
    assert "same rows and weights" in skipped[0]["reason"]


def test_without_an_as_of_column_only_the_default_is_fitted():
    df = _monthly(6).drop(columns="as_of")
    todo, skipped = distinct(df, candidates([None, 3], [None, 90.0]))
    assert todo == [Settings()] and len(skipped) == 3


def test_chooser_picks_the_candidate_with_the_lowest_valid_loss():
    # the positive rate drifts up; the valid slice has the newest rate, so the short window
    # (exactly that rate) must beat all history and the half-life, and every one is reported
    rates = [0.1] * 9 + [0.6, 0.6, 0.6]
    train = _monthly(12, n=20, rates=rates)
    valid = _monthly(1, n=20, rates=[0.6]).assign(as_of=pd.Timestamp("2025-03-01"))
    settings = [Settings(None, None), Settings(None, 60.0), Settings(3, None)]
    choice = choose_settings(_MeanModel, train, valid, settings)
    losses = [c["valid_log_loss"] for c in choice.candidates]
    assert len(losses) == 3 and losses[1] < losses[0]  # weighting helps, the window more
    assert [c["chosen"] for c in choice.candidates] == [False, False, True]
    assert int(np.argmin(losses)) == 2 and choice.settings == Settings(3, None)
    assert [c["rows"] for c in choice.candidates] == [240, 240, 60]
    assert choice.train_rows == 60 and isinstance(choice.model, _MeanModel)
    assert choice.summary()["chosen"] == {"window_months": 3, "half_life_days": None}


def test_chooser_needs_a_candidate():
    with pytest.raises(ValueError, match="no recency settings"):
        choose_settings(_MeanModel, _monthly(3), _monthly(1), [])
