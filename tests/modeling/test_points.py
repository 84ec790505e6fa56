"""The points table learned from an additive model (leadscore.modeling.points), on a tiny
additive LightGBM with a planted signal: counts (monotone), a U-shaped number with missing
values, a category with a rare level, and a feature without signal."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import spearmanr

from leadscore.features.catalog import FeatureCatalog, FeatureSpec
from leadscore.flat.mapping import RulesMapping
from leadscore.flat.rules import FlatRuleClassifier
from leadscore.modeling.estimators import LightGBMClassifier
from leadscore.modeling.points import (
    OTHER,
    LearnedPointsClassifier,
    learn_points,
    nice_cut,
    points_csv,
    points_yaml,
)

CATALOG = FeatureCatalog((
    FeatureSpec("tier", "fit", "Customer tier", "", "categorical"),
    FeatureSpec("age", "fit", "Age", "years"),
    FeatureSpec("noise", "fit", "Noise", ""),
    FeatureSpec("views", "engagement", "Pricing-page views", "views"),
))


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    views = rng.poisson(1.5, n).astype(float)
    age = rng.uniform(18, 80, n).round()
    age[rng.random(n) < 0.1] = np.nan
    tier = rng.choice(["gold", "silver", "bronze", "tin"], n, p=[0.2, 0.3, 0.495, 0.005])
    z = (-2.5 + 0.5 * np.minimum(views, 4) + np.where(np.isnan(age), -0.5, 0.002 * (age - 50) ** 2)
         + pd.Series(tier).map({"gold": 1.0, "silver": 0.3, "bronze": 0.0, "tin": 0.0}).to_numpy())
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    as_of = pd.to_datetime("2025-01-01") + pd.to_timedelta(rng.integers(0, 3, n) * 31, unit="D")
    return pd.DataFrame({"tier": tier, "age": age, "noise": rng.normal(size=n), "views": views,
                         "label": y, "as_of": as_of.to_period("M").to_timestamp()})


@pytest.fixture(scope="module")
def fitted():
    train, calib = _frame(6000, 0), _frame(3000, 1)
    model = LightGBMClassifier.from_catalog(
        CATALOG, params={"learning_rate": 0.1, "num_leaves": 7, "min_data_in_leaf": 40},
        max_boost_rounds=80, seed=3, num_threads=1, additive=True,
        monotone_increasing=("views",)).fit(train, train["label"])
    table = learn_points(model, CATALOG, train, calib, capacity=100)
    return model, table, train, calib


def test_points_reproduce_the_model_ranking(fitted):
    model, table, train, _ = fitted
    rho = spearmanr(table.decision_function(train), model.decision_function(train)).statistic
    assert rho > 0.95


def test_points_are_integers_and_bands_at_most_max(fitted):
    _, table, *_ = fitted
    for group in (table.fit_rules, table.engagement_rules):
        for field, conds in group.items():
            assert all(isinstance(p, int) for p in conds.values())
            assert len([c for c in conds if c != "missing"]) <= 5 or field == "tier"


def test_monotone_feature_keeps_monotone_points(fitted):
    _, table, *_ = fitted
    views = table.engagement_rules["views"]
    pts = [p for c, p in views.items() if c != "missing"]
    assert pts == sorted(pts) and pts[-1] > pts[0]
    grid = pd.DataFrame({"views": np.arange(0, 12.0)})
    assert np.all(np.diff(table.points(grid)["engagement_points"].to_numpy()) >= 0)


def test_numeric_cut_points_are_round_and_rare_levels_are_other(fitted):
    _, table, *_ = fitted
    assert "<1" in table.engagement_rules["views"]  # counts 0 | 1 cut at 1
    assert "tin" not in table.fit_rules["tier"]  # 0.5% of rows: "other"
    assert table.fit_rules["tier"]["gold"] > table.fit_rules["tier"].get("silver", 0)


def test_feature_without_signal_is_dropped_or_small(fitted):
    _, table, *_ = fitted
    assert max(map(abs, table.fit_rules.get("noise", {0: 0}).values())) <= 3


def test_scale_twenty_points_double_the_odds(fitted):
    model, table, train, _ = fitted
    approx = table.log_odds(train)
    err = np.abs(approx - model.decision_function(train))
    assert np.median(err) < 0.15


def test_bands_and_mql_threshold_at_capacity(fitted):
    _, table, _, calib = fitted
    assert list(table.fit_bands) == ["A", "B", "C"] and list(table.engagement_bands) == ["1", "2", "3"]
    assert all(isinstance(v, int) for v in [*table.fit_bands.values(), *table.engagement_bands.values()])
    per_month = pd.Series(table.predict(calib)).groupby(calib["as_of"].to_numpy()).sum()
    assert 0 < per_month.mean() <= 100  # capacity 100 per as_of month
    assert (table.decision_function(calib) >= table.mql_threshold - 1).sum() / 3 > 100
    grades = table.grade(calib)["fit_grade"].value_counts(normalize=True)
    assert 0.05 < grades.get("A", 0) < 0.4


def test_probability_is_isotonic_in_points(fitted):
    _, table, _, calib = fitted
    order = np.argsort(table.decision_function(calib))
    assert np.all(np.diff(table.predict_proba(calib)[order, 1]) >= -1e-12)


def test_json_round_trip(fitted):
    _, table, _, calib = fitted
    back = LearnedPointsClassifier.from_dict(table.to_dict())
    assert back.get_params() == table.get_params()
    np.testing.assert_array_equal(back.predict_proba(calib), table.predict_proba(calib))
    with pytest.raises(ValueError, match="learned points"):
        LearnedPointsClassifier.from_dict({**table.to_dict(), "kind": "points_rules"})


def test_yaml_is_a_flat_rules_block_scoring_the_same(fitted):
    _, table, _, calib = fitted
    doc = yaml.safe_load(points_yaml(table))
    rules = RulesMapping(**doc["rules"])  # the flat mapping's `rules:` block, validated
    flat = FlatRuleClassifier(fit_rules=dict(rules.fit), engagement_rules=dict(rules.engagement),
                              max_points_per_activity=rules.max_points_per_activity,
                              fit_bands=dict(rules.fit_bands),
                              engagement_bands=dict(rules.engagement_bands),
                              mql_threshold=rules.mql_threshold)
    np.testing.assert_array_equal(flat.decision_function(calib), table.decision_function(calib))
    assert rules.mql_threshold == table.mql_threshold


def test_csv_shape(fitted):
    _, table, *_ = fitted
    rows = list(csv.DictReader(io.StringIO(points_csv(table))))
    assert list(rows[0]) == ["field", "group", "label", "condition", "points"]
    assert {r["group"] for r in rows} == {"fit", "engagement"}
    tier = [r for r in rows if r["field"] == "tier"]
    assert tier[-1]["condition"] == OTHER and tier[-1]["points"] == "0"
    assert tier[0]["label"] == "Customer tier"
    assert all(float(r["points"]).is_integer() for r in rows)


def test_non_additive_model_is_refused():
    train = _frame(2000, 0)
    model = LightGBMClassifier.from_catalog(CATALOG, params={"num_leaves": 7}, max_boost_rounds=10,
                                            num_threads=1).fit(train, train["label"])
    with pytest.raises(ValueError, match="additive"):
        learn_points(model, CATALOG, train, train)


@pytest.mark.parametrize(("a", "b", "c"), [(0, 1, 1), (2, 3, 3), (40, 60, 50), (0.12, 0.19, 0.15),
                                           (-3.5, -1.2, -3), (421_999, 422_500, 422_000)])
def test_nice_cut(a, b, c):
    assert nice_cut(a, b) == pytest.approx(c)


def test_scorer_serves_the_learned_table_as_the_rules_kind(fitted):
    from leadscore.serve.scorer import Scorer

    _, table, _, calib = fitted
    scored = Scorer.from_rules(table, CATALOG).score(calib)
    assert scored["rule_points"].tolist() == table.decision_function(calib).tolist()
    np.testing.assert_allclose(scored["probability"], table.predict_proba(calib)[:, 1])


# ---- the `points` stage's library function: points_release, write_points ---------------
def _release_inputs(fitted):
    from leadscore.config import params_from_dict
    from leadscore.modeling.splits import Split

    model, _, train, calib = fitted
    test = _frame(3000, 2)
    test["as_of"] = test["as_of"] + pd.DateOffset(months=6)  # later months than calib
    test["lead_id"] = [f"L{i % 1500:05d}" for i in range(len(test))]  # two rows per lead
    split = Split(train=train, valid=train.iloc[:0], calib=calib, test=test, windows={}, embargo_months=0)
    rules = FlatRuleClassifier(fit_rules={"tier": {"gold": 10}}, engagement_rules={"views": {">=3": 10}},
                               mql_threshold=10).fit(calib, calib["label"])
    params = params_from_dict({"evaluate": {"reps": 1, "leads_per_rep": 100, "n_bootstrap": 20},
                               "points": {"max_bands": 4}})
    return model, rules, split, params


def _with(split, **kw):
    from dataclasses import replace

    return replace(split, **kw)


@pytest.fixture(scope="module")
def release(fitted):
    from leadscore.modeling.points import points_release

    model, rules, split, params = _release_inputs(fitted)
    return points_release(split, model, rules, CATALOG, params), split


def test_release_yaml_and_csv_round_trip_into_the_rules_shape(release, tmp_path):
    from leadscore.modeling.points import points_rows, write_points

    rel, split = release
    write_points(rel, tmp_path / "points.yaml", tmp_path / "points.csv")
    rules = RulesMapping(**yaml.safe_load((tmp_path / "points.yaml").read_text())["rules"])
    flat = FlatRuleClassifier(fit_rules=dict(rules.fit), engagement_rules=dict(rules.engagement),
                              max_points_per_activity=rules.max_points_per_activity)
    np.testing.assert_array_equal(flat.decision_function(split.test), rel.table.decision_function(split.test))
    assert rules.mql_threshold == rel.metrics["mql"]["threshold"] == rel.table.mql_threshold
    assert dict(rules.fit_bands) == rel.metrics["fit_bands"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "points.csv").read_text())))
    assert rows == [{k: str(v) for k, v in r.items()} for r in points_rows(rel.table)]
    assert {r["field"] for r in rows} == set(rules.fit) | set(rules.engagement)
    assert all(len([c for c in t if c != "missing"]) <= 4 for t in rules.engagement.values())  # points.max_bands


def test_release_aucs_are_in_the_unit_interval_and_beat_a_constant(release):
    import json

    m = release[0].metrics
    assert m["available"] and set(m["roc_auc"]) == {"learned_points", "learned_points_raw", "lightgbm", "rules"}
    assert all(0 <= v <= 1 for v in m["roc_auc"].values())
    assert all(0 <= lo <= hi <= 1 for lo, hi in m["roc_auc_ci"].values())
    assert m["roc_auc"]["learned_points_raw"] > 0.6  # a constant score has ROC-AUC 0.5
    assert m["auc_diff_vs_model"] == pytest.approx(m["roc_auc"]["learned_points"] - m["roc_auc"]["lightgbm"])
    assert json.loads(json.dumps(m)) == m  # metrics/points.json as written


def test_release_mql_threshold_fills_capacity_on_calib_and_counts_the_test_handover(release):
    rel, split = release
    q = rel.metrics["mql"]
    assert q["capacity_per_month"] == 100 and 0 < q["calib_leads_per_month"] <= 100
    handed = (rel.table.decision_function(split.test) >= q["threshold"]).sum()
    assert q["test"]["leads"] == handed and q["test"]["leads_per_month"] == pytest.approx(handed / 3)
    assert rel.metrics["rules_mql"]["threshold"] == 10


def test_release_learns_nothing_from_the_test_slice(fitted, release):
    from leadscore.modeling.points import points_release

    model, rules, split, params = _release_inputs(fitted)
    flipped = split.test.assign(label=1 - split.test["label"])
    again = points_release(_with(split, test=flipped), model, rules, CATALOG, params)
    assert again.table.to_dict() == release[0].table.to_dict()
    assert again.metrics["roc_auc"]["learned_points_raw"] == pytest.approx(
        1 - release[0].metrics["roc_auc"]["learned_points_raw"])


def test_release_without_a_table_says_why(fitted, tmp_path):
    from leadscore.modeling.points import points_release, write_points

    _, rules, split, params = _release_inputs(fitted)
    plain = LightGBMClassifier.from_catalog(CATALOG, params={"num_leaves": 7}, max_boost_rounds=10,
                                            num_threads=1).fit(split.train, split.train["label"])
    rel = points_release(split, plain, rules, CATALOG, params)
    assert rel.table is None and rel.metrics["available"] is False and "additive" in rel.metrics["reason"]
    assert "fell back" in points_release(split, None, rules, CATALOG, params).metrics["reason"]
    write_points(rel, tmp_path / "p.yaml", tmp_path / "p.csv")
    assert yaml.safe_load((tmp_path / "p.yaml").read_text()) is None  # a comment only
    assert (tmp_path / "p.csv").read_text() == "field,group,label,condition,points\n"
