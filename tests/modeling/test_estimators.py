"""LightGBM and logistic models: determinism, planted signal, persistence, too little data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from leadscore.modeling.calibration import Calibrator
from leadscore.modeling.estimators import (
    CalibratedModel,
    LightGBMClassifier,
    LogisticClassifier,
    TooFewPositivesError,
    check_positives,
    load_model,
    save_model,
)
from leadscore.modeling.splits import time_split
from leadscore.modeling.tuning import tune_lightgbm
from tests.builders import SPLIT_KW, synthetic_catalog, synthetic_table

pytestmark = pytest.mark.slow  # trains LightGBM or runs whole stages; `make test-fast` skips it

FAST = {"learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 20}


@pytest.fixture(scope="module")
def split():
    return time_split(synthetic_table(n_per_month=300, strength=3.0), **SPLIT_KW)


def _lgbm(seed=7, **kw):
    return LightGBMClassifier.from_catalog(synthetic_catalog(), params=FAST, seed=seed,
                                           num_threads=1, max_boost_rounds=300, **kw)


def test_same_seed_gives_identical_predictions(split):
    a = _lgbm().fit(split.train, split.train["label"], eval_set=(split.valid, split.valid["label"]))
    b = _lgbm().fit(split.train, split.train["label"], eval_set=(split.valid, split.valid["label"]))
    np.testing.assert_array_equal(a.predict_proba(split.test), b.predict_proba(split.test))
    assert a.best_iteration_ == b.best_iteration_


def test_planted_signal_is_learned(split):
    m = _lgbm().fit(split.train, split.train["label"], eval_set=(split.valid, split.valid["label"]))
    assert roc_auc_score(split.test["label"], m.predict_proba(split.test)[:, 1]) > 0.9
    top = m.feature_importance()["feature"].head(5).tolist()
    assert {"demo_request_90d", "seniority"} & set(top)


def test_logistic_learns_the_signal_and_its_json_matches_the_pipeline(split, tmp_path):
    lr = LogisticClassifier.from_catalog(synthetic_catalog(), C=0.1).fit(split.train, split.train["label"])
    assert roc_auc_score(split.test["label"], lr.predict_proba(split.test)[:, 1]) > 0.85
    again = LogisticClassifier.from_dict(lr.to_dict())
    np.testing.assert_allclose(again.decision_function(split.test), lr.decision_function(split.test),
                               rtol=1e-9, atol=1e-9)


def test_unseen_category_becomes_missing_not_an_error(split):
    m = _lgbm().fit(split.train, split.train["label"])
    test = split.test.copy()
    test["industry"] = "brand_new_industry"
    assert np.isfinite(m.predict_proba(test)).all()


def test_save_load_round_trip_gives_identical_probabilities(split, tmp_path):
    m = _lgbm().fit(split.train, split.train["label"], eval_set=(split.valid, split.valid["label"]))
    cal = Calibrator("isotonic").fit(m.decision_function(split.calib), split.calib["label"])
    model = CalibratedModel(m, cal, {"kind": "lightgbm"})
    save_model(model, tmp_path / "lgb")
    assert (tmp_path / "lgb" / "model.txt").read_text().startswith("tree")
    assert not list((tmp_path / "lgb").glob("*.pkl"))
    again = load_model(tmp_path / "lgb")
    np.testing.assert_array_equal(again.predict_proba(split.test), model.predict_proba(split.test))
    save_model(model, tmp_path / "lgb")  # overwriting an existing folder works


def test_too_few_positives_says_how_many_and_how_many_are_needed():
    with pytest.raises(TooFewPositivesError,
                       match="12 positive labels in the training slice; at least 200 are needed"):
        check_positives(12, 200)
    check_positives(200, 200)


def test_tiny_optuna_study_returns_params_and_a_summary(split):
    cat = synthetic_catalog()
    res = tune_lightgbm(split.train, split.train["label"], split.valid, split.valid["label"],
                        feature_names=cat.names, categorical_features=cat.categorical,
                        n_trials=3, timeout_s=60, seed=0, max_boost_rounds=200,
                        n_startup_trials=2, pruning_warmup_rounds=10)
    assert res.n_trials == 3 and res.best_iteration > 0
    assert {"learning_rate", "num_leaves"} <= set(res.best_params)
    assert len(res.summary()["trials"]) == 3


def test_additive_model_has_single_feature_trees_and_survives_save_load(split, tmp_path):
    m = _lgbm(additive=True).fit(split.train, split.train["label"], eval_set=(split.valid, split.valid["label"]))
    for info in m.booster_.dump_model()["tree_info"]:
        feats, stack = set(), [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" in node:
                feats.add(node["split_feature"])
                stack += [node["left_child"], node["right_child"]]
        assert len(feats) <= 1
    assert roc_auc_score(split.test["label"], m.predict_proba(split.test)[:, 1]) > 0.85
    cal = Calibrator("sigmoid").fit(m.decision_function(split.calib), split.calib["label"])
    save_model(CalibratedModel(m, cal), tmp_path / "lgb")
    again = load_model(tmp_path / "lgb")
    assert again.model.additive is True
    np.testing.assert_array_equal(again.decision_function(split.test), m.decision_function(split.test))


def _flipped(n: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Old rows: conversion rises with x; new rows (the second half): it falls with x."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, n)
    new = np.arange(n) >= n // 2
    y = np.where(new, x < 0.5, x > 0.5).astype(int)
    return pd.DataFrame({"x": x, "new": new}), y


@pytest.mark.parametrize("make", [
    lambda: LightGBMClassifier(feature_names=["x"], params=FAST, max_boost_rounds=30),
    lambda: LogisticClassifier(feature_names=["x"], C=1.0),
], ids=["lightgbm", "logistic"])
def test_sample_weight_makes_the_heavy_rows_win(make):
    X, y = _flipped()
    new = X["new"].to_numpy()
    w = np.where(new, 1.0, 0.01)
    fitted = make().fit(X, y, sample_weight=w)
    assert roc_auc_score(y[new], fitted.predict_proba(X[new])[:, 1]) > 0.9
    flipped = make().fit(X, y, sample_weight=w[::-1])  # old rows heavy: the old direction
    assert roc_auc_score(y[~new], flipped.predict_proba(X[~new])[:, 1]) > 0.9
    with pytest.raises(ValueError, match="sample_weight"):
        make().fit(X, y, sample_weight=w[:10])
    with pytest.raises(ValueError, match="sample_weight"):
        make().fit(X, y, sample_weight=-w)
