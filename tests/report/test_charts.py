"""The report's inline SVG helpers (leadscore.report.charts)."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from leadscore.report.charts import (
    Series,
    as_float,
    bar,
    category_order,
    date_chart,
    dependence_chart,
    heat_color,
    line_chart,
    nice_max,
    nice_ticks,
    tick_label,
)


def test_axis_helpers_round_to_readable_values():
    assert [nice_max(v) for v in (0.37, 0.2, 3.1, 0.0, math.inf)] == [0.5, 0.2, 5.0, 1.0, 1.0]
    assert nice_ticks(0, 1, 4) == [0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(0, 12, 4) == [0, 5, 10]
    assert [tick_label(v, False, 1) for v in (1500, 2e6, 0.1234)] == ["1.5k", "2M", "0.123"]
    assert tick_label(0.25, True, 1.0) == "25%" and tick_label(0.025, True, 0.05) == "2.5%"
    assert as_float("0.5") == 0.5 and as_float(None) is None and as_float(float("nan")) is None


def test_line_chart_draws_each_series_and_escapes_text():
    svg = line_chart([Series("a <b>", [0, 0.5, 1], [0, 0.7, 1], "#123456", tips=["x", "y", "z"]),
                      Series("empty", [None], [None], "#000000")],
                     title="T & t", x_label="x", y_label="y", diagonal=True)
    assert svg.startswith("<svg") and svg.count("<polyline") == 1 and svg.count("<circle") == 3
    assert "a &lt;b&gt;" in svg and "<b>" not in svg and "T &amp; t" in svg
    assert 'stroke-dasharray="4 4"' in svg  # the y = x reference


def test_bar_is_clamped_to_its_width():
    assert 'width="160.0"' in bar(5, 1, "#000")  # over the maximum: full width
    assert 'width="0.0"' in bar(-1, 1, "#000") and 'width="0.0"' in bar(1, 0, "#000")
    assert 'width="80.0"' in bar(1, 2, "#000")


def test_dependence_chart_numeric_categorical_and_nothing():
    numeric = pd.DataFrame({"value": range(50), "contribution": [0.01 * v for v in range(50)]})
    svg = dependence_chart(numeric, "numeric")
    assert 'class="mean"' in svg and svg.count('class="pt"') == 49  # above the 99th pct: cut
    cats = pd.DataFrame({"value": ["vp", "student"] * 5, "contribution": [0.5, -0.5] * 5})
    svg = dependence_chart(cats, "categorical")
    assert svg.count("<rect") == 3 and "VP: +0.50 (5 leads)" in svg  # frame + two bars
    assert dependence_chart(pd.DataFrame(), "nothing") is None


def _bins(svg: str) -> list[tuple[float, str]]:
    """(x, tooltip) of the binned-mean points of a line dependence chart, in drawing order."""
    return [(float(x), t) for x, t in re.findall(r'<circle cx="([\d.]+)" cy="[\d.]+" r="3" class="bin">'
                                                r"<title>(.*?)</title>", svg)]


def _bars(svg: str) -> list[str]:
    """The categories of a bar dependence chart, left to right."""
    return re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="#\w+"><title>'
                      r"(.*?):", svg)


def test_numeric_field_with_missing_values_is_a_line_over_ordered_values():
    # company size as in the real report: a quarter unknown used to turn it into category bars
    rng = np.random.default_rng(0)
    size = np.maximum(1.0, np.round(rng.lognormal(4.5, 1.8, 1500)))
    df = pd.DataFrame({"value": np.r_[size, [np.nan] * 500],
                       "contribution": np.r_[0.25 * np.log(size) - 1.0, [-0.02] * 500]})
    svg = dependence_chart(df, "How company size moves the score", x_label="Company size")
    assert 'data-kind="line"' in svg and 'class="mean"' in svg and not _bars(svg)
    xs = [x for x, _ in _bins(svg)]
    assert len(xs) >= 5 and xs == sorted(xs)  # an ordered x axis
    assert "37.0" not in svg and "13.0" not in svg  # no values as category labels
    assert "(log scale)" in svg and re.search(r'class="tick">1k</text>', svg)  # a wide range
    assert "no value: -0.02 on average (500 leads)" in svg and ">unknown</text>" in svg


def test_numeric_kind_from_the_catalog_wins_and_narrow_ranges_stay_linear():
    df = pd.DataFrame({"value": [str(v) for v in range(1, 301)], "contribution": np.linspace(1, -1, 300)})
    svg = dependence_chart(df, "t", kind="numeric")
    assert 'data-kind="line"' in svg and "log scale" not in svg
    tips = [t for _, t in _bins(svg)]
    assert tips[0].startswith("1 to ") and tips[-1].endswith("(30 leads)")


def test_categorical_bars_are_ordered_by_effect_with_unknown_last():
    df = pd.DataFrame({"value": ["manager", "vp", None, "student", "director"] * 20,
                       "contribution": [0.2, 0.9, 0.5, -2.0, 0.6] * 20})
    assert _bars(dependence_chart(df, "t")) == ["VP", "Director", "Manager", "Student", "Unknown"]


def test_size_bands_and_flags_keep_their_natural_order():
    bands = pd.DataFrame({"value": ["201-1000", "1-10", "5001+", "unknown", "11-50"] * 10,
                          "contribution": [0.4, -0.5, 0.1, 0.0, -0.2] * 10})
    assert _bars(dependence_chart(bands, "t")) == ["1-10", "11-50", "201-1000", "5001+", "Unknown"]
    flag = pd.DataFrame({"value": [1.0, 0.0, 0.0] * 10, "contribution": [-0.4, 0.05, 0.05] * 10})
    assert _bars(dependence_chart(flag, "t", kind="flag")) == ["No", "Yes"]
    assert category_order(pd.Series({"other": 0.9, "b": -1.0, "a": 0.5})) == ["a", "b", "other"]


@pytest.mark.parametrize(("rate", "expected"), [(None, ("#f4f4f4", "#333")),
                                                 (0.0, ("#f7fbff", "#1a1a1a")),
                                                 (0.4, ("#08306b", "#fff"))])
def test_heat_colour_runs_white_to_deep_blue(rate, expected):
    assert heat_color(rate, 0.4) == expected


def test_date_chart_spans_the_data_and_labels_the_dates():
    svg = date_chart([Series("AUC <m>", ["2025-03-01", "2025-04-01", "bad", "2025-05-15"],
                             [0.71, 0.74, 0.9, None], "#123456", tips=["a", "b", "c", "d"])],
                     title="t", y_label="ROC AUC")
    assert svg.count("<circle") == 2  # a bad date and a missing value are skipped, with their tips
    assert "AUC &lt;m&gt;: a" in svg and "AUC &lt;m&gt;: b" in svg and ": c" not in svg
    assert "Mar 2025" in svg and "Apr 2025" in svg
    ticks = [float(t) for t in re.findall(r'class="tick">(0\.\d+)</text>', svg)]
    assert ticks[0] <= 0.71 and ticks[-1] >= 0.74 and ticks[0] > 0.5  # not from 0
    one = date_chart([Series("one", ["2025-06-15"], [0.8], "#000000")], title="t", y_label="y")
    assert one.count("<circle") == 1 and "2025-06-15" in one  # not a month start: the full date
    assert date_chart([Series("none", ["x"], [0.5], "#000000")], title="t", y_label="y") is None
