"""Exact additive contributions of the logistic-regression model (`LinearExplainer`), and the
explain steps (grade cut points, slice explanation, scorer) on a logistic model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.explain.contributions import Explainer, check_additivity
from leadscore.explain.drivers import explain_slice
from leadscore.explain.grades import grade_cuts_from_split
from leadscore.explain.linear import LinearExplainer
from leadscore.modeling.calibration import Calibrator
from leadscore.modeling.estimators import CalibratedModel, LogisticClassifier
from leadscore.modeling.splits import time_split
from leadscore.serve.scorer import Scorer
from tests.builders import SPLIT_KW, synthetic_catalog, synthetic_table


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    t = synthetic_table(n_per_month=150, months=4, seed=5, strength=2.0)
    t.loc[t.index[:15], "industry"] = np.nan  # "unknown" becomes a training category
    return t


@pytest.fixture(scope="module")
def model(table) -> LogisticClassifier:
    return LogisticClassifier.from_catalog(synthetic_catalog()).fit(table, table["label"])


def _odd_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows with an unseen category and missing numbers (the model never saw them)."""
    t = table.head(40).copy()
    t.loc[t.index[:10], "industry"] = "never_seen_before"
    t.loc[t.index[10:20], ["company_size", "annual_revenue", "email_ctr_90d"]] = np.nan
    t.loc[t.index[20:25], "pricing_page_view_30d"] = -3.0  # signed log1p keeps the sign
    return t


def test_for_model_gives_the_linear_explainer_for_a_logistic_model(model):
    cal = Calibrator("sigmoid").fit(np.array([-1.0, 0.0, 1.0, 2.0]), np.array([0, 0, 1, 1]))
    for m in (model, CalibratedModel(model, cal)):
        ex = Explainer.for_model(m)
        assert isinstance(ex, LinearExplainer) and ex.additive
    assert ex.feature_names == synthetic_catalog().names  # catalog order
    with pytest.raises(TypeError, match="not a fitted LightGBM or logistic model"):
        Explainer.for_model(object())


@pytest.mark.parametrize("reloaded", [False, True])
def test_contributions_plus_intercept_equal_the_decision_function(model, table, reloaded):
    est = LogisticClassifier.from_dict(model.to_dict()) if reloaded else model
    ex = LinearExplainer.for_model(est)
    X = pd.concat([table, _odd_rows(table)], ignore_index=True)
    contrib = ex.contributions(X, raw=True)
    assert contrib.shape == (len(X), len(ex.feature_names))
    margin = model.decision_function(X)  # the sklearn pipeline itself
    np.testing.assert_allclose(contrib.sum(axis=1) + ex.expected_value(), margin, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ex.raw_margin(X, raw=True), margin, rtol=0, atol=1e-9)
    assert check_additivity(contrib, ex.expected_value(), margin, tol=1e-9) < 1e-9
    np.testing.assert_array_equal(ex.contributions(ex.model_input(X)), contrib)  # terms in, same out


def test_each_feature_is_explained_by_its_own_terms_only(model, table):
    ex = LinearExplainer(model)
    j = {n: i for i, n in enumerate(ex.feature_names)}
    base = ex.contributions(table.head(30), raw=True)
    more = table.head(30).copy()
    more["pricing_page_view_30d"] += 2
    more["seniority"] = "vp"
    changed = ex.contributions(more, raw=True)
    moved = np.flatnonzero(np.abs(changed - base).max(axis=0) > 0)
    assert set(moved) <= {j["pricing_page_view_30d"], j["seniority"]}
    assert j["pricing_page_view_30d"] in moved
    # numeric features: 0 at the training mean, so they average 0 over the training rows
    full = ex.contributions(table, raw=True)
    numeric = [j[n] for n in ex.numeric]
    np.testing.assert_allclose(full[:, numeric].mean(axis=0), 0, atol=1e-9)
    # a category the model never saw contributes nothing
    odd = ex.contributions(_odd_rows(table), raw=True)
    assert (odd[:10, j["industry"]] == 0).all()
    # a known category contributes its coefficient
    vp = ex.contributions(more.head(1), raw=True)[0, j["seniority"]]
    term = [t for t, f in enumerate(ex.term_feature) if f == j["seniority"]][ex.categories["seniority"].index("vp")]
    assert vp == ex.coef[term]


def test_missing_feature_column_is_a_clear_error(model, table):
    with pytest.raises(ValueError, match="missing from the input.*seniority"):
        LinearExplainer(model).contributions(table.drop(columns="seniority"), raw=True)


def test_grade_cuts_slice_explanation_and_scorer_work_with_a_logistic_model():
    cat = synthetic_catalog()
    split = time_split(synthetic_table(n_per_month=80, months=12, seed=4, strength=2.0), **SPLIT_KW)
    est = LogisticClassifier.from_catalog(cat).fit(split.train, split.train["label"])
    cal = Calibrator("sigmoid").fit(est.decision_function(split.calib), split.calib["label"])
    ex = Explainer.for_model(est)
    groups = {g: cat.group(g) for g in ("fit", "engagement")}
    cuts = grade_cuts_from_split(ex, split, groups)
    assert cuts.fit_features == tuple(groups["fit"])
    found = explain_slice(ex, split.test, est.decision_function(split.test), cat, min_corr=0.3, top=2,
                          rows=40, seed=1)
    assert found.additive and found.additivity < 1e-9 and found.base_value == est.to_dict()["intercept"]
    by = {d["field"]: d for d in found.drivers}
    assert by["unsubscribed"]["direction"] == "-"  # planted: unsubscribing lowers the odds
    scorer = Scorer.from_model(CalibratedModel(est, cal), cuts, cat)
    full, why = scorer.explain(split.test)
    assert scorer.kind == "logistic"
    np.testing.assert_allclose(full["log_odds"], est.decision_function(split.test), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(full["fit_grade"], cuts.letter(full["fit_score"].to_numpy()))
    # the calib slice's fit letters follow the learned shares (15% A)
    calib_fit, _ = scorer.explain(split.calib, reasons=False)
    assert abs((calib_fit["fit_grade"] == "A").mean() - 0.15) < 0.03
    assert scorer.input_types()["seniority"] == "string" and scorer.input_types()["free_mail"] == "double"
    lists = why.to_lists()
    assert all(r["code"][:-1] in cat.names for rs in lists for r in rs) and any(lists)
