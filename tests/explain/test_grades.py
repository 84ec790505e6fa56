"""Grade cut points (calibration slice only), the grade matrix and the monotonicity report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leadscore.explain.contributions import Explainer
from leadscore.explain.grades import (
    GradeCuts,
    Violation,
    band,
    format_matrix,
    grade_cuts_from_split,
    grade_matrix,
    quantile_cuts,
    wilson_ci,
)
from leadscore.modeling.estimators import LightGBMClassifier
from leadscore.modeling.splits import time_split
from tests.builders import SPLIT_KW, synthetic_catalog, synthetic_table

pytestmark = pytest.mark.slow  # trains LightGBM or runs whole stages; `make test-fast` skips it


@pytest.fixture(scope="module")
def setup():
    table = synthetic_table(n_per_month=100, months=12, seed=5, strength=3.0)
    cat = synthetic_catalog()
    model = LightGBMClassifier.from_catalog(cat, params={"learning_rate": 0.2, "num_leaves": 7},
                                            seed=1, num_threads=1, max_boost_rounds=30,
                                            additive=True).fit(table, table["label"])
    groups = {g: cat.group(g) for g in ("fit", "engagement")}
    return table, Explainer.for_model(model), groups


def _cuts(table, explainer, groups):
    return grade_cuts_from_split(explainer, time_split(table, **SPLIT_KW), groups)


def test_cut_points_come_from_the_calibration_slice_only(setup):
    table, explainer, groups = setup
    split = time_split(table, **SPLIT_KW)
    base = _cuts(table, explainer, groups)
    assert base.fitted_on == "calib"
    assert base.calib_window == (split.windows["calib"]["as_of_first"], split.windows["calib"]["as_of_last"])
    # changing the training rows (drop half, scramble engagement) leaves the cuts unchanged
    changed = table.copy()
    train_rows = changed.index[changed["as_of"].isin(split.train["as_of"].unique())]
    changed.loc[train_rows, "pricing_page_view_30d"] = 40.0
    changed = changed.drop(train_rows[::2])
    same = _cuts(changed, explainer, groups)
    assert same.fit_cuts == base.fit_cuts and same.engagement_cuts == base.engagement_cuts
    # ... while changing the calibration rows moves them (the test can fail)
    calib_rows = changed.index[changed["as_of"].isin(split.calib["as_of"].unique())]
    changed.loc[calib_rows, "pricing_page_view_30d"] = 40.0
    changed.loc[calib_rows, "seniority"] = "student"
    moved = _cuts(changed, explainer, groups)
    assert moved.fit_cuts != base.fit_cuts and moved.engagement_cuts != base.engagement_cuts


def test_quantile_cuts_give_the_configured_shares():
    score = np.random.default_rng(0).normal(size=100_000)
    cuts = quantile_cuts(score, [0.15, 0.25, 0.30, 0.30])
    shares = pd.Series(band(score, cuts, ("A", "B", "C", "D"))).value_counts(normalize=True)
    np.testing.assert_allclose(shares[["A", "B", "C", "D"]], [0.15, 0.25, 0.30, 0.30], atol=0.002)
    with pytest.raises(ValueError, match="summing to 1"):
        quantile_cuts(score, [0.5, 0.5, 0.5, 0.5])


def test_score_on_a_cut_point_gets_the_better_grade_and_cuts_round_trip():
    cuts = GradeCuts((1.0, 0.0, -1.0), (0.5, 0.0, -0.5), fit_features=("a",), engagement_features=("b",))
    assert band(np.array([1.0, 0.999, -1.0, -1.5]), cuts.fit_cuts, ("A", "B", "C", "D")).tolist() == [
        "A", "B", "C", "D"]
    again = GradeCuts.from_dict(cuts.to_dict())
    assert again == cuts
    assert cuts.grade(np.array([2.0]), np.array([-3.0]))["grade"].tolist() == ["A4"]
    with pytest.raises(ValueError, match="decreasing"):
        GradeCuts((0.0, 1.0, 2.0), (0.5, 0.0, -0.5))


def _frame(cells: dict[str, tuple[int, int]], p: float = 0.1) -> tuple:
    """Hand-made rows: {grade: (count, conversions)}."""
    y, letters, digits = [], [], []
    for grade, (n, k) in cells.items():
        y += [1] * k + [0] * (n - k)
        letters += [grade[0]] * n
        digits += [grade[1]] * n
    return np.array(y), np.array(letters), np.array(digits), np.full(len(y), p)


def test_grade_matrix_counts_rates_and_wilson_interval():
    y, letter, digit, p = _frame({"A1": (10, 5), "B2": (40, 4), "D4": (100, 0)})
    report = grade_matrix(y, letter, digit, p)
    by = {c["grade"]: c for c in report["cells"]}
    assert len(report["cells"]) == 16
    assert by["A1"]["count"] == 10 and by["A1"]["conversions"] == 5 and by["A1"]["rate"] == 0.5
    np.testing.assert_allclose(by["A1"]["ci"], [0.2366, 0.7634], atol=1e-4)  # Wilson, z = 1.96
    np.testing.assert_allclose(by["B2"]["ci"], [0.0396, 0.2305], atol=1e-4)
    assert by["D4"]["rate"] == 0 and by["D4"]["ci"][0] == pytest.approx(0, abs=1e-12) and by["D4"]["ci"][1] > 0
    assert by["C3"]["count"] == 0 and by["C3"]["rate"] is None and by["C3"]["ci"] == [0.0, 1.0]
    assert by["A1"]["mean_predicted"] == pytest.approx(0.1)
    lo, hi = wilson_ci(np.array([0, 10]), np.array([10, 10]))
    assert lo[0] == pytest.approx(0, abs=1e-12) and hi[1] == pytest.approx(1)


def test_monotonicity_report_flags_a_planted_violation():
    good = {f"{letter}{d}": (400, max(1, 120 - 25 * i - 6 * j))
            for i, letter in enumerate("ABCD") for j, d in enumerate("1234")}
    report = grade_matrix(*_frame(good))
    assert report["monotonic"] and report["violations"] == []
    bad = dict(good, B2=(400, 200))  # B2 converts far better than A2 and B1
    report = grade_matrix(*_frame(bad))
    assert not report["monotonic"]
    found = {(v["axis"], v["within"], v["better"], v["worse"]): v for v in report["violations"]}
    assert set(found) == {("letter", "2", "A2", "B2"), ("digit", "B", "B1", "B2")}
    v = found[("letter", "2", "A2", "B2")]
    assert v["rate_worse"] == 0.5 and v["rate_better"] == pytest.approx(114 / 400) and v["significant"]
    small = dict(good, C3=(400, good["C2"][1] + 1))  # a one-conversion break: not significant
    report = grade_matrix(*_frame(small))
    v = report["violations"]
    assert len(v) == 1 and v[0]["worse"] == "C3" and not v[0]["significant"]
    assert report["significant_violations"] == 0
    text = format_matrix(report, "rules")
    assert "not monotonic: 1 break(s), 0 significant" in text
    assert "C3 16.2% > C2 16.0% (digit order within C)" in text


def test_violations_are_flat_json_records_of_one_schema():
    good = {f"{letter}{d}": (400, max(1, 120 - 25 * i - 6 * j))
            for i, letter in enumerate("ABCD") for j, d in enumerate("1234")}
    report = grade_matrix(*_frame(dict(good, D1=(400, 300))))  # D1 beats C1: a letter break
    assert report["violations"], "the planted break is found"
    for v in report["violations"]:
        assert set(v) == set(Violation.__annotations__)  # no free-text fields to parse
        assert v["axis"] in ("letter", "digit") and v["better"] != v["worse"]
        assert v["rate_worse"] > v["rate_better"]
    # it is what evaluate.json (rules_grades) and metrics/grades.json store: a JSON round trip
    assert json.loads(json.dumps(report)) == report
    letter_break = [v for v in report["violations"] if v["axis"] == "letter"]
    assert letter_break == [{"axis": "letter", "within": "1", "better": "C1", "worse": "D1",
                             "rate_better": 70 / 400, "rate_worse": 0.75, "significant": True}]


def test_order_checks_skip_empty_cells():
    # B2 empty: A2 is compared with C2 directly (C2 converts more -> a break A2/C2)
    y, letter, digit, p = _frame({"A2": (100, 10), "C2": (100, 30), "D2": (100, 1)})
    report = grade_matrix(y, letter, digit, p)
    assert [(v["better"], v["worse"]) for v in report["violations"]] == [("A2", "C2")]
    assert report["monotonic"] is False
