"""`train_models`: the positives fallback, the leakage guards, and a normal run's models."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.config import LeakageConfig, OptunaConfig, TrainModelConfig
from leadscore.modeling.estimators import (
    LightGBMClassifier,
    LogisticClassifier,
    TooFewPositivesError,
)
from leadscore.modeling.leakage import LeakageError
from leadscore.modeling.splits import data_window, time_split
from leadscore.modeling.train import train_models
from tests.builders import SPLIT_KW, synthetic_catalog, synthetic_table

pytestmark = pytest.mark.slow  # trains LightGBM or runs whole stages; `make test-fast` skips it


def _cfg(**kw) -> TrainModelConfig:
    base = dict(min_positives=20, fallback_to_rules=False, num_threads=1, max_boost_rounds=60,
                learning_rate=0.1, early_stopping_rounds=10, additive=False,
                optuna=OptunaConfig(n_trials=1, timeout_s=60, n_startup_trials=1,
                                    pruning_warmup_rounds=5),
                calibration_methods=("isotonic", "sigmoid"), calibration_folds=3, logistic_c=0.1,
                leakage=LeakageConfig(enabled=False))
    return TrainModelConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def split():
    return time_split(synthetic_table(n_per_month=200, strength=3.0), **SPLIT_KW)


def _train(split, cfg, features=None, **kw):
    cat = synthetic_catalog()
    return train_models(split.train, split.valid, split.calib,
                        features=features or cat.names, categorical=cat.categorical, cfg=cfg,
                        seed=0, data_window=data_window(split), **kw)


def test_too_few_positives_falls_back_or_refuses(split):
    too_many = int(split.train["label"].sum()) + 1
    result = _train(split, _cfg(min_positives=too_many, fallback_to_rules=True))
    assert result.fallback and result.lightgbm is None and result.logistic is None
    assert f"at least {too_many} are needed" in result.reason
    assert result.summary() == {"status": "fallback_to_rules", "reason": result.reason}
    with pytest.raises(TooFewPositivesError, match=f"at least {too_many}"):
        _train(split, _cfg(min_positives=too_many))


def test_planted_leaking_column_is_refused(split):
    leaky = {name: df.assign(days_to_opportunity=np.where(
        df["label"] == 1, np.random.default_rng(0).uniform(1, 90, len(df)), np.nan))
        for name, df in (("train", split.train), ("valid", split.valid), ("calib", split.calib))}
    cat = synthetic_catalog()
    cfg = _cfg(leakage=LeakageConfig(enabled=True, max_random_gap=0.15))
    with pytest.raises(LeakageError, match="days_to_opportunity"):
        train_models(leaky["train"], leaky["valid"], leaky["calib"],
                     features=[*cat.names, "days_to_opportunity"], categorical=cat.categorical,
                     cfg=cfg, seed=0, data_window=data_window(split))


def test_normal_run_returns_calibrated_models_with_metadata(split):
    result = _train(split, _cfg(), params_hash="abc123", metadata={"horizon_days": 30})
    assert result.status == "trained" and not result.fallback
    assert isinstance(result.lightgbm.model, LightGBMClassifier)
    assert isinstance(result.logistic.model, LogisticClassifier)
    for key, model in result.models.items():
        assert model.calibrator.fitted
        p = model.predict_proba(split.test)[:, 1]
        assert np.all((p > 0) & (p < 1))
        meta = model.metadata
        assert {"data_window", "git_commit", "trained_at", "params_hash", "features",
                "categorical", "horizon_days", "kind", "calibration"} <= set(meta)
        assert meta["kind"] == key and meta["params_hash"] == "abc123"
        assert meta["features"] == synthetic_catalog().names
        assert set(result.metrics[key]) == {"valid", "calib", "calibration"}
        assert result.metrics[key]["valid"]["roc_auc"] > 0.8
    assert {"best_iteration", "best_params"} <= set(result.lightgbm.metadata)
    summary = result.summary()
    assert summary["features"] == len(synthetic_catalog().names) and summary["leakage"] is None
    assert set(result.run_metrics()) == {"lightgbm", "logistic", "optuna_trials", "best_iteration"}


def test_guards_on_clean_features_report_probe_and_screen(split):
    # a wide gap: this small table is noisy; the test is about what the report holds
    result = _train(split, _cfg(leakage=LeakageConfig(enabled=True, max_random_gap=0.5)))
    leakage = result.summary()["leakage"]
    assert leakage["refused"] == [] and leakage["probe"]["flagged"] == []
    assert set(leakage["univariate_auc"]) == set(synthetic_catalog().names)
    assert {"model_oot_auc", "model_random_auc", "messages", "top_features"} <= set(leakage["probe"])
