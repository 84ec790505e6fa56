"""Behaviour of a trained model (Made-With-ML's third tier): directions that marketing relies
on hold for every lead, holding everything else fixed. The model is the pipeline's kind
(additive LightGBM, early stopping on valid, calibrated on calib) trained on a small
synthetic table with a planted signal."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.modeling.calibration import choose_calibrator
from leadscore.modeling.estimators import CalibratedModel, LightGBMClassifier
from leadscore.modeling.splits import time_split
from tests.builders import SPLIT_KW, synthetic_catalog, synthetic_table

PRICING = ("pricing_page_view_7d", "pricing_page_view_30d", "pricing_page_view_90d")


@pytest.fixture(scope="module")
def model_and_leads():
    split = time_split(synthetic_table(n_per_month=300, strength=3.0), **SPLIT_KW)
    est = LightGBMClassifier.from_catalog(
        synthetic_catalog(), params={"learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 20},
        seed=7, num_threads=1, max_boost_rounds=300, additive=True)
    est.fit(split.train, split.train["label"], eval_set=(split.valid, split.valid["label"]))
    cal, _ = choose_calibrator(est.decision_function(split.calib), split.calib["label"],
                               methods=["isotonic", "sigmoid"], n_folds=3, seed=7)
    return CalibratedModel(est, cal, {}), split.test


@pytest.mark.slow
def test_more_pricing_page_views_never_lower_the_score(model_and_leads):
    model, leads = model_and_leads
    log_odds, proba = [], []
    for views in range(0, 13):
        X = leads.copy()
        for col in PRICING:  # the same views fall in every window: 7d <= 30d <= 90d holds
            X[col] = views
        log_odds.append(model.decision_function(X))
        proba.append(model.predict_proba(X)[:, 1])
    for name, values in (("log-odds", np.vstack(log_odds)), ("probability", np.vstack(proba))):
        worst = np.diff(values, axis=0).min()
        assert worst >= -1e-12, f"{name} fell by {-worst:.4g} with one more pricing-page view"
    assert (np.vstack(log_odds)[-1] > np.vstack(log_odds)[0]).all()  # the signal is used
