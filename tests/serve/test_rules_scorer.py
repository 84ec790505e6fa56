"""The rules kind of scorer on tiny data (no LightGBM, no MLflow): the points table as items,
the rules' probability and grades, reasons in points from the largest items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.config import TrainRulesConfig
from leadscore.features.catalog import FeatureCatalog
from leadscore.modeling.baseline import PointsRuleClassifier
from leadscore.modeling.calibration import Calibrator
from leadscore.serve.scorer import OUTPUT_COLUMNS, Scorer
from tests.builders import synthetic_catalog, synthetic_table


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return synthetic_table(n_per_month=150, months=3, seed=2, strength=2.0)


@pytest.fixture(scope="module")
def rules(table) -> PointsRuleClassifier:
    return PointsRuleClassifier.from_config(TrainRulesConfig(decayed_points=2)).fit(table, table["label"])


def test_items_add_up_to_the_points(rules, table):
    pts, items = rules.breakdown(table)
    pd.testing.assert_frame_equal(pts, rules.points(table))
    pd.testing.assert_frame_equal(items, rules.item_points(table))
    assert list(items.columns) == [i.name for i in rules.items()]
    fit = [i.name for i in rules.items() if i.group == "fit"]
    eng = [i.name for i in rules.items() if i.group == "engagement"]
    assert fit[:4] == ["seniority", "company_size_band", "industry", "country"]
    assert "pricing_page_view_90d" in eng and "engagement_decayed" in eng and "unsubscribed" in eng
    np.testing.assert_allclose(items[fit].sum(axis=1), pts["fit_points"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(items[eng].sum(axis=1), pts["engagement_points"], rtol=0, atol=1e-9)
    assert (items["download_ebook_90d"] == 0).all()  # not in the data: scores 0
    assert (items["pricing_page_view_90d"] <= 30).all() and items["pricing_page_view_90d"].max() == 30


def test_points_of_a_hand_made_lead_are_unchanged():
    rules = PointsRuleClassifier.from_config(TrainRulesConfig())
    X = pd.DataFrame({"seniority": ["VP", "student"], "company_size_band": ["11-50", None],
                      "free_mail": [1.0, 0.0], "pricing_page_view_90d": [4.0, 1.0],
                      "demo_request_90d": [0.0, 2.0], "unsubscribed": [0.0, 1.0]})
    pts = rules.points(X)
    assert pts["fit_points"].tolist() == [20 + 5 - 10, -10]
    assert pts["engagement_points"].tolist() == [30, 10 + 30 - 30]  # capped at 30 per activity
    items = rules.item_points(X)
    assert items.loc[0, "pricing_page_view_90d"] == 30 and items.loc[1, "demo_request_90d"] == 30
    assert items.loc[1, "unsubscribed"] == -30 and items.loc[0, "free_mail"] == -10
    g = rules.grade(X)
    assert g["rule_grade"].tolist() == ["C2", "D3"]  # bands: fit A40 B25 C10, engagement 1:40 2:20 3:5
    pd.testing.assert_frame_equal(g, rules.grade_points(pts))


def test_a_column_in_both_groups_is_one_item_per_group(table):
    rules = PointsRuleClassifier(fit_negative_points={"free_mail": -10},
                                 engagement_negative_points={"free_mail": -5, "unsubscribed": -30})
    names = [i.name for i in rules.items()]
    assert "free_mail@fit" in names and "free_mail@engagement" in names and "unsubscribed" in names
    pts, items = rules.breakdown(table)
    np.testing.assert_allclose(items["free_mail@engagement"], -5 * (table["free_mail"] > 0))
    np.testing.assert_allclose(items.sum(axis=1), pts["total_points"], rtol=0, atol=1e-9)


def test_rules_scorer_gives_the_rules_probability_grades_and_points(rules, table):
    scorer = Scorer.from_rules(rules, synthetic_catalog())
    assert scorer.kind == "rules" and scorer.version["kind"] == "rules"
    assert scorer.feature_names == synthetic_catalog().names  # the one input signature
    assert scorer.input_types()["seniority"] == "string" and scorer.input_types()["free_mail"] == "double"
    X = table.iloc[::-1]  # any index order: output keeps the input's index
    got = scorer.score(X)
    assert list(got.columns) == list(OUTPUT_COLUMNS) and got.index.equals(X.index)
    np.testing.assert_array_equal(got["probability"], rules.predict_proba(X)[:, 1])
    g = rules.grade(X)
    for col in ("fit_grade", "engagement_grade", "rule_grade", "rule_points"):
        assert (got[col] == g[col]).all(), col
    assert (got["grade"] == g["rule_grade"]).all()
    full, _ = scorer.explain(X, reasons=False)
    pts = rules.points(X)
    np.testing.assert_array_equal(full["fit_score"], pts["fit_points"])
    np.testing.assert_array_equal(full["engagement_score"], pts["engagement_points"])
    np.testing.assert_allclose(1 / (1 + np.exp(-full["log_odds"])), full["probability"], rtol=1e-12)


def test_rules_reasons_are_the_largest_point_items_in_points(rules, table):
    cat = synthetic_catalog()
    scorer = Scorer.from_rules(rules, cat, n_reasons=2)
    X = table.head(300)
    got = scorer.score(X)
    items = scorer.contributions_frame(X)
    assert items.index.equals(X.index) and list(items.columns) == scorer.items
    some_negative = 0
    for (_, row), reasons in zip(items.iterrows(), got["reasons"], strict=True):
        pos = [r["contribution"] for r in reasons if r["code"].endswith("+")]
        neg = [r["contribution"] for r in reasons if r["code"].endswith("-")]
        assert pos == sorted(row[row > 0], reverse=True)[:2]
        assert neg == sorted(row[row < 0])[:2]
        assert all(r["contribution"] == row[r["code"][:-1]] for r in reasons)
        some_negative += bool(neg)
    assert some_negative > 10
    lead = got["reasons"].iloc[0]
    assert all(isinstance(r["text"], str) and r["text"] for r in lead)


def test_rule_item_without_a_catalog_feature_speaks_its_own_text(rules, table):
    narrow = FeatureCatalog(tuple(f for f in synthetic_catalog().features if f.name != "unsubscribed"))
    scorer = Scorer.from_rules(rules, narrow)
    X = table[table["unsubscribed"] > 0].head(5)
    texts = [r["text"] for rs in scorer.score(X)["reasons"] for r in rs if r["code"] == "unsubscribed-"]
    assert texts == [scorer.item_label("unsubscribed")] * len(X) and texts[0] == "Unsubscribed: -30 points"
    assert scorer.item_label("seniority") == "Seniority: points by value"
    with pytest.raises(KeyError, match="not an item"):
        scorer.item_label("lead_age_days")


def test_rules_scorer_refuses_unfitted_rules_and_model_parts(table):
    cat = synthetic_catalog()
    with pytest.raises(ValueError, match="not fitted"):
        Scorer.from_rules(PointsRuleClassifier.from_config(TrainRulesConfig()), cat)
    fitted = PointsRuleClassifier.from_config(TrainRulesConfig()).fit(table, table["label"])
    with pytest.raises(ValueError, match="calibrator=None"):
        Scorer(None, Calibrator("sigmoid"), None, cat, fitted)
    with pytest.raises(TypeError, match="cannot serve"):
        Scorer.from_model(object(), None, cat)
    with pytest.raises(ValueError, match="records kind 'lightgbm'"):
        Scorer.from_rules(fitted, cat, version={"kind": "lightgbm"})
