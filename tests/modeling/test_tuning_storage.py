"""Optuna studies kept in SQLite: the same data and settings resume the same study (only the
missing trials run), other data make another study, and the file is what optuna-dashboard
reads."""

from __future__ import annotations

import optuna
import pytest

from leadscore.config import OptunaConfig
from leadscore.modeling.splits import time_split
from leadscore.modeling.tuning import study_name_for, tune_lightgbm
from tests.builders import SPLIT_KW, synthetic_catalog, synthetic_table


@pytest.fixture(scope="module")
def split():
    return time_split(synthetic_table(n_per_month=120, strength=3.0), **SPLIT_KW)


def _tune(split, storage, n_trials, train=None):
    cat = synthetic_catalog()
    train = split.train if train is None else train
    return tune_lightgbm(train, train["label"], split.valid, split.valid["label"],
                         feature_names=cat.names, categorical_features=cat.categorical,
                         n_trials=n_trials, timeout_s=60, seed=0, max_boost_rounds=60,
                         early_stopping_rounds=10, n_startup_trials=2, pruning_warmup_rounds=5,
                         storage=storage)


@pytest.mark.slow  # trains LightGBM (a few tiny trials) and creates SQLite storages
def test_same_data_and_settings_resume_the_study(split, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = _tune(split, storage, n_trials=2)  # e.g. a run stopped after two trials
    assert first.study_name.startswith("lightgbm-") and first.n_new_trials == 2
    resumed = _tune(split, storage, n_trials=3)  # the same study: one more trial
    assert resumed.study_name == first.study_name
    assert resumed.n_new_trials == 1 and resumed.n_trials == 3
    again = _tune(split, storage, n_trials=3)  # complete: nothing to run, same answer
    assert again.n_new_trials == 0 and again.best_params == resumed.best_params
    # what `optuna-dashboard sqlite:///optuna.db` lists
    studies = optuna.get_all_study_summaries(storage)
    assert [(s.study_name, s.n_trials) for s in studies] == [(first.study_name, 3)]
    trials = optuna.load_study(study_name=first.study_name, storage=storage).trials
    assert [t.number for t in trials] == [0, 1, 2]
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 3  # no repeated point


@pytest.mark.slow
def test_other_data_make_another_study(split, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    a = _tune(split, storage, n_trials=1)
    b = _tune(split, storage, n_trials=1, train=split.train.iloc[:-5])
    assert a.study_name != b.study_name and b.n_new_trials == 1


def test_study_name_ignores_the_budget_but_not_the_settings(split):
    s = {"features": synthetic_catalog().names, "seed": 0, "learning_rate": 0.1}
    X, y, V, w = split.train, split.train["label"], split.valid, split.valid["label"]
    assert study_name_for(X, y, V, w, settings=s) == study_name_for(X, y, V, w, settings=dict(s))
    assert study_name_for(X, y, V, w, settings=s) != study_name_for(X, y, V, w, settings={**s, "seed": 1})


def test_storage_must_be_a_database_url():
    assert OptunaConfig(storage="sqlite:///optuna.db").storage == "sqlite:///optuna.db"
    assert OptunaConfig().storage is None  # in memory unless params.yaml names a storage
    with pytest.raises(ValueError, match="train_model.optuna.storage"):
        OptunaConfig(storage="optuna.db")
