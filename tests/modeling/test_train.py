"""`train_models`: the positives fallback, the leakage guards, a normal run's models, the
recency settings and the refit (which never sees the test slice)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.config import LeakageConfig, OptunaConfig, RecencyConfig, TrainModelConfig
from leadscore.modeling.estimators import (
    LightGBMClassifier,
    LogisticClassifier,
    TooFewPositivesError,
)
from leadscore.modeling.leakage import LeakageError
from leadscore.modeling.metrics import core_metrics
from leadscore.modeling.recency import Settings, settings_rows
from leadscore.modeling.splits import data_window, time_split
from leadscore.modeling.train import LightGBMRecipe, train_models
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
        assert {"settings", "settings_candidates", "refit"} <= set(meta)
        assert meta["refit"] is None  # no refit rows given: the train-slice model ships
        assert model is result.fits[key].model
    assert {"best_iteration", "best_params"} <= set(result.lightgbm.metadata)
    summary = result.summary()
    assert summary["features"] == len(synthetic_catalog().names) and summary["leakage"] is None
    assert {"settings", "candidates", "skipped", "train_rows", "refit"} <= set(summary["lightgbm"])
    assert set(result.run_metrics()) == {"lightgbm", "logistic", "optuna_trials", "best_iteration"}


def test_guards_on_clean_features_report_probe_and_screen(split):
    # a wide gap: this small table is noisy; the test is about what the report holds
    result = _train(split, _cfg(leakage=LeakageConfig(enabled=True, max_random_gap=0.5)))
    leakage = result.summary()["leakage"]
    assert leakage["refused"] == [] and leakage["probe"]["flagged"] == []
    assert set(leakage["univariate_auc"]) == set(synthetic_catalog().names)
    assert {"model_oot_auc", "model_random_auc", "messages", "top_features"} <= set(leakage["probe"])


@pytest.fixture(scope="module")
def refitted(split):
    """A run with the refit on the mature rows, recording the rows of every fit."""
    seen: list[pd.DataFrame] = []
    lgb_prepare, logit_fit = LightGBMClassifier.prepare_datasets, LogisticClassifier.fit

    def prepare(self, X, y, eval_set=None, sample_weight=None):
        seen.extend([X] + ([eval_set[0]] if eval_set is not None else []))
        return lgb_prepare(self, X, y, eval_set, sample_weight=sample_weight)

    def fit(self, X, y, sample_weight=None):
        seen.append(X)
        return logit_fit(self, X, y, sample_weight=sample_weight)

    cfg = _cfg(recency=RecencyConfig(window_months=(None, 3), half_life_days=(None, 60.0)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LightGBMClassifier, "prepare_datasets", prepare)
        mp.setattr(LogisticClassifier, "fit", fit)
        result = _train(split, cfg, refit_rows=split.mature)
    return result, seen


def test_refit_never_sees_the_test_slice(split, refitted):
    result, seen = refitted
    test_ids = set(split.test["lead_id"])
    assert seen and all(not set(X["lead_id"]) & test_ids for X in seen)
    calib_ids = set(split.calib["lead_id"])
    assert any(set(X["lead_id"]) & calib_ids for X in seen)  # the refit trained on calib rows
    for fit in result.fits.values():
        rows, _ = settings_rows(split.mature, fit.choice.settings)
        assert fit.refit_info["rows"] == len(rows)
        assert fit.refit_info["as_of_last"] < split.windows["test"]["as_of_first"]


def test_refit_keeps_the_calibrator_and_scales_the_rounds(split, refitted):
    result, _ = refitted
    lgb = result.fits["lightgbm"]
    assert result.lightgbm is lgb.refit and lgb.refit.calibrator is lgb.model.calibrator
    pre_rounds = lgb.model.model.best_iteration_
    expected = max(1, round(pre_rounds * lgb.refit_info["rows"] / lgb.choice.train_rows))
    assert lgb.refit_info["rounds"] == expected == result.lightgbm.model.best_iteration_
    assert LightGBMRecipe(["x"], [], {}, 0).refit_rounds(lgb.model.model, 300, 100) == 3 * pre_rounds
    assert result.logistic is result.fits["logistic"].refit
    assert result.run_metrics()["refit"]["lightgbm"]["rounds"] == expected
    meta = result.lightgbm.metadata
    assert meta["refit"] == lgb.refit_info and meta["best_iteration"] == pre_rounds


def test_valid_and_calib_metrics_come_from_the_train_slice_models(split, refitted):
    result, _ = refitted
    for key, fit in result.fits.items():
        for name in ("valid", "calib"):
            part = split[name]
            pre = core_metrics(part["label"], fit.model.predict_proba(part)[:, 1])
            assert result.metrics[key][name] == pre
        shipped = core_metrics(split.valid["label"], fit.refit.predict_proba(split.valid)[:, 1])
        assert shipped != result.metrics[key]["valid"]


def test_settings_are_chosen_and_reported_per_model(refitted):
    result, _ = refitted
    for key in ("lightgbm", "logistic"):
        block = result.summary()[key]
        table = block["candidates"]
        # the train slice has 4 months: the 3-month window differs from all history
        assert len(table) == 4 and sum(c["chosen"] for c in table) == 1
        best = min(table, key=lambda c: c["valid_log_loss"])
        assert best["chosen"]
        assert block["settings"] == {"window_months": best["window_months"],
                                     "half_life_days": best["half_life_days"]}
        assert Settings(**block["settings"]) == result.fits[key].choice.settings
        assert result.models[key].metadata["settings_candidates"] == table


def test_refit_off_ships_the_train_slice_models(split):
    cfg = _cfg(refit=False, recency=RecencyConfig(window_months=(None,), half_life_days=(None,)))
    result = _train(split, cfg, refit_rows=split.mature)
    for fit in result.fits.values():
        assert fit.refit is None and fit.refit_info is None and fit.shipped is fit.model
    assert result.lightgbm is result.fits["lightgbm"].model
    assert "refit" not in result.run_metrics()


class _Fixed:
    """A model whose calibrated probabilities are given (for `refit_keeps_calibration`)."""

    def __init__(self, p):
        self.p = np.asarray(p, dtype=float)

    def predict_proba(self, X):
        return np.column_stack([1 - self.p, self.p])


def test_a_refit_whose_scores_left_the_calibrator_is_not_shipped():
    from leadscore.modeling.train import refit_keeps_calibration

    rng = np.random.default_rng(0)
    truth = rng.uniform(0.01, 0.4, 2000)
    calib = pd.DataFrame({"label": (rng.uniform(size=2000) < truth).astype(int)})
    before = _Fixed(0.5 * truth + 0.1)  # the train-slice model: a blurred ranking
    kept, why = refit_keeps_calibration(before, _Fixed(truth), calib)  # the refit saw more rows
    assert kept and "after the refit" in why
    kept, _ = refit_keeps_calibration(before, _Fixed(np.full(2000, 0.667)), calib)  # one step
    assert not kept
