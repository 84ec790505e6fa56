"""Issue 12 item 5: the created date's day of week, hour and month as catalogued fit features,
computed from each row's own date, on by default and off with `date_parts: false`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.flat.mapping import load_mapping
from leadscore.flat.run import run_flat
from leadscore.flat.table import date_parts, load_flat
from leadscore.io import read_json
from tests.flat.exports import base_frame, dates, write_export

PARTS = ("created_day_of_week", "created_hour", "created_month")


def _weekday_export(n: int = 600, *, times: bool = False, seed: int = 3) -> pd.DataFrame:
    """Leads whose conversion depends on the weekday they came in (weekend leads convert at
    several times the weekday rate), on their page visits and on the channel."""
    rng = np.random.default_rng(seed)
    df = base_frame(n, seed=seed)
    created = dates(n, days=800, seed=seed)  # two years: the month part is kept
    if times:
        created = created + pd.to_timedelta(rng.integers(0, 24 * 60, n), unit="min")
    weekend = created.dt.dayofweek.to_numpy() >= 5
    logit = (-2.2 + 0.5 * (df["Page Visits"].to_numpy() - 3) + 1.8 * weekend
             + np.where(df["Channel"] == "Referral", 1.0, 0.0))
    df["Converted"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    fmt = "%Y-%m-%d %H:%M" if times else "%Y-%m-%d"
    return df.assign(**{"Created On": created.dt.strftime(fmt)})


def test_date_parts_are_catalogued_fit_features_with_plain_labels(tmp_path):
    table = load_flat(load_mapping(write_export(tmp_path, _weekday_export(), created_at="Created On")))
    cat = table.catalog
    assert {"created_day_of_week", "created_month"} <= set(cat.names)
    assert "created_hour" not in cat.names  # the column has dates only
    assert cat["created_day_of_week"].label == "Day of the week the lead came in"
    assert cat["created_month"].label == "Month the lead came in"
    assert cat["created_day_of_week"].group == cat["created_month"].group == "fit"
    assert cat["created_day_of_week"].kind == cat["created_month"].kind == "categorical"
    assert table.log["date_parts"] == ["created_day_of_week", "created_month"]


def test_date_parts_come_from_each_rows_own_created_date(tmp_path):
    table = load_flat(load_mapping(write_export(tmp_path, _weekday_export(times=True),
                                                created_at="Created On")))
    df = table.frame
    assert df["created_day_of_week"].tolist() == df["as_of"].dt.day_name().str.lower().tolist()
    assert df["created_month"].tolist() == df["as_of"].dt.month_name().str.lower().tolist()
    assert df["created_hour"].tolist() == df["as_of"].dt.hour.astype(float).tolist()
    assert table.catalog["created_hour"].kind == "numeric"


def test_the_hour_appears_only_when_the_column_carries_times():
    day = pd.Series(pd.to_datetime(["2024-01-01", "2026-01-06", None]))
    assert list(date_parts(day)) == ["created_day_of_week", "created_month"]
    timed = pd.Series(pd.to_datetime(["2024-01-01 00:00", "2026-01-06 14:30"]))
    parts = date_parts(timed)
    assert list(parts) == list(PARTS)
    assert parts["created_day_of_week"].tolist() == ["monday", "tuesday"]
    assert parts["created_hour"].tolist() == [0.0, 14.0]


def test_the_month_needs_two_years_of_dates():
    short = pd.Series(pd.date_range("2024-01-01", periods=700, freq="D"))
    assert list(date_parts(short)) == ["created_day_of_week"]
    long = pd.Series(pd.date_range("2024-01-01", periods=731, freq="D"))
    assert list(date_parts(long)) == ["created_day_of_week", "created_month"]


def test_date_parts_carry_the_weekday_signal(tmp_path):
    df = load_flat(load_mapping(write_export(tmp_path, _weekday_export(), created_at="Created On"))).frame
    weekend = df["created_day_of_week"].isin(["saturday", "sunday"])
    assert df.loc[weekend, "label"].mean() > 2 * df.loc[~weekend, "label"].mean()


def test_date_parts_false_turns_them_off(tmp_path):
    table = load_flat(load_mapping(write_export(tmp_path, _weekday_export(times=True),
                                                created_at="Created On", date_parts=False)))
    assert not set(PARTS) & set(table.catalog.names) and not set(PARTS) & set(table.frame)
    assert table.log["date_parts"] == []


def test_without_a_created_date_there_are_no_date_parts(tmp_path):
    table = load_flat(load_mapping(write_export(tmp_path, _weekday_export().drop(columns="Created On"),
                                                time_order="rows")))
    assert not set(PARTS) & set(table.catalog.names)


@pytest.mark.slow
def test_a_run_trains_on_the_date_parts_and_the_screen_sees_their_signal(tmp_path):
    mapping = load_mapping(write_export(tmp_path / "in", _weekday_export(), created_at="Created On"))
    result = run_flat(mapping, tmp_path / "out")
    assert result.metrics["screen"]["dropped"] == []  # a date part is an ordinary, honest feature
    auc = read_json(tmp_path / "out" / "metrics" / "screen.json")["univariate_auc"]
    assert auc["created_day_of_week"] > 0.6 > auc["created_month"]  # the weekday carries the signal
    model = read_json(tmp_path / "out" / "models" / "lightgbm" / "metadata.json")
    assert {"created_day_of_week", "created_month"} <= set(model["features"])
    catalog = read_json(tmp_path / "out" / "models" / "feature_catalog.json")
    assert {"name": "created_day_of_week", "group": "fit", "label": "Day of the week the lead came in",
            "unit": "", "kind": "categorical"} in catalog
