"""Hyperparameter search for LightGBM with Optuna, on the time-ordered validation slice.

Each trial trains on the train slice with early stopping on the validation slice's log loss
(the objective, minimised). The learning rate is fixed (`train_model.learning_rate`) and the
search covers tree shape and regularisation: with a common learning rate, trials' log loss
at the same boosting round is comparable, which is what the pruner compares (a median
pruner fed the validation log loss every round after a warm-up; a free learning rate would
let it prune every slow learner early). The sampler is TPE with a fixed seed. The LightGBM
datasets are built once and shared by all trials.
The study stops after `n_trials` or `timeout_s`, whichever comes first. With a timeout the
number of finished trials depends on machine speed; with `timeout_s` large enough for all
trials the search is reproducible (seeded sampler, deterministic LightGBM).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd

from leadscore.modeling.estimators import LightGBMClassifier, base_lgb_params, constraint_params

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuningResult:
    best_params: dict
    best_value: float  # validation log loss
    best_iteration: int
    n_trials: int
    n_pruned: int
    seconds: float
    trials: list[dict]  # number, state, value, params, best_iteration

    def summary(self) -> dict:
        return {"best_params": self.best_params, "best_valid_log_loss": self.best_value,
                "best_iteration": self.best_iteration, "n_trials": self.n_trials,
                "n_pruned": self.n_pruned, "seconds": round(self.seconds, 1), "trials": self.trials}


def suggest_params(trial: optuna.Trial) -> dict:
    """The search space."""
    return {
        "num_leaves": trial.suggest_int("num_leaves", 7, 127, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 400, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "bagging_freq": 1,
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
        "cat_smooth": trial.suggest_float("cat_smooth", 1.0, 50.0, log=True),
        "min_data_per_group": trial.suggest_int("min_data_per_group", 20, 200, log=True),
    }


def _pruning_callback(trial: optuna.Trial, warmup: int):
    def callback(env) -> None:
        if env.iteration < warmup or not env.evaluation_result_list:
            return
        value = env.evaluation_result_list[0][2]
        trial.report(value, step=env.iteration)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at round {env.iteration}")

    callback.order = 25  # after early stopping's bookkeeping
    return callback


def tune_lightgbm(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    *,
    feature_names: list[str],
    categorical_features: list[str],
    n_trials: int,
    timeout_s: float,
    seed: int,
    num_threads: int = 1,
    max_boost_rounds: int = 2000,
    early_stopping_rounds: int = 50,
    n_startup_trials: int = 5,
    pruning_warmup_rounds: int = 30,
    learning_rate: float = 0.05,
    additive: bool = False,
    monotone_increasing: tuple[str, ...] = (),
) -> TuningResult:
    """Run the Optuna study; return the best parameters and a summary of every trial.
    With `additive`, every trial trains single-feature trees (`constraint_params`); the
    features in `monotone_increasing` may only raise the score as they grow."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials,
                                         n_warmup_steps=pruning_warmup_rounds)
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner,
                                study_name="lightgbm")

    template = LightGBMClassifier(feature_names=feature_names,
                                  categorical_features=categorical_features, seed=seed,
                                  num_threads=num_threads)
    train_ds, valid_ds = template.prepare_datasets(X_train, y_train, (X_valid, y_valid))
    base = {**base_lgb_params(seed, num_threads), "learning_rate": learning_rate,
            **constraint_params(feature_names, additive=additive, monotone_increasing=monotone_increasing)}

    def objective(trial: optuna.Trial) -> float:
        params = {**base, **suggest_params(trial)}
        booster = lgb.train(params, train_ds, num_boost_round=max_boost_rounds,
                            valid_sets=[valid_ds], valid_names=["valid"],
                            callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False),
                                       _pruning_callback(trial, pruning_warmup_rounds)])
        trial.set_user_attr("best_iteration", int(booster.best_iteration))
        return float(booster.best_score["valid"]["binary_logloss"])

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n_trials, timeout=timeout_s)
    seconds = time.perf_counter() - t0
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise RuntimeError("Optuna finished no trial: raise train_model.optuna.timeout_s")
    best = study.best_trial
    trials = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
               "best_iteration": t.user_attrs.get("best_iteration")} for t in study.trials]
    n_pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    log.info("optuna: %d trials (%d pruned) in %.1fs, best valid log loss %.5f at %d rounds",
             len(study.trials), n_pruned, seconds, best.value, best.user_attrs["best_iteration"])
    return TuningResult(best_params={**best.params, "bagging_freq": 1, "learning_rate": learning_rate}, best_value=float(best.value),
                        best_iteration=int(best.user_attrs["best_iteration"]),
                        n_trials=len(study.trials), n_pruned=n_pruned, seconds=seconds,
                        trials=trials)

