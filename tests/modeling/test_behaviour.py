"""Behaviour of a trained model (Made-With-ML's third tier): directions that marketing relies
on hold for every lead, holding everything else fixed. The model is the pipeline's kind
(additive LightGBM with the pipeline's monotone constraints, early stopping on valid,
calibrated on calib) trained on a small synthetic table with a planted signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.config import Params
from leadscore.errors import ConfigError
from leadscore.modeling.behaviour import direction_check
from leadscore.modeling.calibration import choose_calibrator
from leadscore.modeling.estimators import CalibratedModel, LightGBMClassifier
from leadscore.modeling.splits import time_split
from tests.builders import SPLIT_KW, synthetic_catalog, synthetic_table

PRICING = ("pricing_page_view_7d", "pricing_page_view_30d", "pricing_page_view_90d")


def _two_feature_model(monotone: tuple[str, ...]) -> LightGBMClassifier:
    """A signal that peaks at 3 views and falls after: what sparse real data can look like."""
    rng = np.random.default_rng(0)
    views = rng.integers(0, 10, 20_000).astype(float)
    X = pd.DataFrame({"views": views, "noise": rng.normal(size=views.size)})
    y = (rng.random(views.size) < np.where(views == 3, 0.5, 0.1)).astype(int)
    return LightGBMClassifier(feature_names=["views", "noise"], categorical_features=[],
                              params={"learning_rate": 0.1, "num_leaves": 7}, max_boost_rounds=60,
                              num_threads=1, additive=True, monotone_increasing=monotone).fit(X, y)


def test_monotone_constraint_holds_against_a_falling_signal():
    grid = pd.DataFrame({"views": np.arange(10.0), "noise": 0.0})
    free = np.diff(_two_feature_model(()).decision_function(grid))
    held = np.diff(_two_feature_model(("views",)).decision_function(grid))
    assert free.min() < -0.5  # unconstrained, the model follows the fall after 3 views
    assert held.min() >= -1e-12


def test_monotone_constraint_on_an_unknown_feature_is_a_config_error():
    with pytest.raises(ConfigError, match="no_such_feature"):
        _two_feature_model(("no_such_feature",))


@pytest.fixture(scope="module")
def model_and_leads():
    split = time_split(synthetic_table(n_per_month=300, strength=3.0), **SPLIT_KW)
    est = LightGBMClassifier.from_catalog(
        synthetic_catalog(), params={"learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 20},
        seed=7, num_threads=1, max_boost_rounds=300, additive=True,
        monotone_increasing=Params().train_model.monotone_increasing)
    est.fit(split.train, split.train["label"], eval_set=(split.valid, split.valid["label"]))
    cal, _ = choose_calibrator(est.decision_function(split.calib), split.calib["label"],
                               methods=["isotonic", "sigmoid"], n_folds=3, seed=7)
    return CalibratedModel(est, cal, {}), split.test


@pytest.mark.slow
def test_more_pricing_page_views_never_lower_the_score(model_and_leads):
    model, leads = model_and_leads
    check = direction_check(model, leads, PRICING)  # the evaluate stage's check, same function
    assert check["leads"] == len(leads) > 100
    assert check["min_step"] >= -1e-12, f"a probability fell by {-check['min_step']:.4g}"
    assert check["leads_with_a_fall"] == 0.0
    assert check["mean_probability_at_max"] > check["mean_probability_at_0"]  # the signal is used


def test_direction_check_flags_a_model_whose_score_falls():
    X = pd.DataFrame({"views": np.zeros(50), "noise": np.linspace(-1, 1, 50)})
    check = direction_check(_two_feature_model(()), X, ["views"], max_count=9)
    assert check["min_step"] < 0
    assert check["leads_with_a_fall"] == 1.0
