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

**Storage and resumption.** With `storage` (an SQLAlchemy URL, e.g. ``sqlite:///optuna.db``
beside MLflow's ``mlruns.db``; `train_model.optuna.storage`) the study is kept there under a
name that identifies what it searches: ``lightgbm-<hash>`` of the train and valid data
(row hashes), the features, the seed and every setting that changes a trial's result
(`study_name_for`). The trial budget (`n_trials`, `timeout_s`) and the thread count are not
part of it. So the same data and settings continue the same study: `n_trials` is the number
of finished (complete or pruned) trials the study should hold, and only the missing ones
run. An interrupted run is resumed by the next one; an identical rerun runs no trial and
returns the same best parameters; raising `n_trials` adds trials to the study. A trial left
running by a killed process is marked failed by Optuna's heartbeat (`HEARTBEAT_S`) and
redone. A stored trial reports its validation log loss to the pruner every `REPORT_EVERY`
rounds (each report is a database write). Browse the studies with
``optuna-dashboard sqlite:///optuna.db``.
Without `storage` the study lives in memory (tests, flat mode).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd

from leadscore.modeling.estimators import LightGBMClassifier, base_lgb_params, constraint_params
from leadscore.progress import bar

log = logging.getLogger(__name__)

SEARCH_SPACE = "v1"  # bump when `suggest_params` changes: a new space is a new study
HEARTBEAT_S = 60  # a persisted trial silent for 2 x this long is failed and redone
REPORT_EVERY = 10  # boosting rounds between the validation log losses a stored trial reports
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@dataclass(frozen=True)
class TuningResult:
    best_params: dict
    best_value: float  # validation log loss
    best_iteration: int
    n_trials: int
    n_pruned: int
    seconds: float
    trials: list[dict]  # number, state, value, params, best_iteration
    study_name: str = "lightgbm"
    storage: str | None = None  # None: in memory
    n_new_trials: int | None = None  # trials run by this call (the rest were resumed)

    def summary(self) -> dict:
        return {"best_params": self.best_params, "best_valid_log_loss": self.best_value,
                "best_iteration": self.best_iteration, "n_trials": self.n_trials,
                "n_pruned": self.n_pruned, "n_new_trials": self.n_new_trials,
                "seconds": round(self.seconds, 1), "study_name": self.study_name,
                "storage": self.storage, "trials": self.trials}


def study_name_for(X_train: pd.DataFrame, y_train, X_valid: pd.DataFrame, y_valid, *,
                   settings: dict) -> str:
    """``lightgbm-<16 hex>``: a hash of the data (pandas row hashes of both slices, labels
    included) and of `settings` (features, seed, search-relevant settings)."""
    h = hashlib.sha256(json.dumps({**settings, "space": SEARCH_SPACE}, sort_keys=True,
                                  default=str).encode())
    for frame, y in ((X_train, y_train), (X_valid, y_valid)):
        cols = [c for c in settings["features"] if c in frame.columns]
        h.update(pd.util.hash_pandas_object(frame[cols], index=False).to_numpy().tobytes())
        h.update(np.asarray(y, dtype=float).tobytes())
    return f"lightgbm-{h.hexdigest()[:16]}"


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


def _pruning_callback(trial: optuna.Trial, warmup: int, every: int = 1):
    def callback(env) -> None:
        if env.iteration < warmup or env.iteration % every or not env.evaluation_result_list:
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
    storage: str | None = None,
    progress: bool | None = None,
) -> TuningResult:
    """Run (or resume) the Optuna study; return the best parameters and a summary of every
    trial. With `additive`, every trial trains single-feature trees (`constraint_params`);
    the features in `monotone_increasing` may only raise the score as they grow. `storage`:
    where the study is kept and resumed from (module docstring); None: in memory.
    `progress`: a bar of trials on stderr (None: when stderr is a terminal)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = "lightgbm"
    if storage is not None:
        name = study_name_for(X_train, y_train, X_valid, y_valid, settings={
            "features": list(feature_names), "categorical": list(categorical_features),
            "seed": seed, "max_boost_rounds": max_boost_rounds,
            "early_stopping_rounds": early_stopping_rounds, "n_startup_trials": n_startup_trials,
            "pruning_warmup_rounds": pruning_warmup_rounds, "learning_rate": learning_rate,
            "additive": additive, "monotone_increasing": list(monotone_increasing)})
        with warnings.catch_warnings():  # the heartbeat is "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            store = optuna.storages.RDBStorage(storage, heartbeat_interval=HEARTBEAT_S,
                                               grace_period=2 * HEARTBEAT_S)
            study = optuna.create_study(direction="minimize", storage=store, study_name=name,
                                        load_if_exists=True)
            optuna.storages.fail_stale_trials(study)
    else:
        study = optuna.create_study(direction="minimize", study_name=name)
    done = sum(t.state in FINISHED for t in study.trials)
    # a resumed study's sampler is seeded past the trials it holds: no repeated start-up points
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials),
                                               n_startup_trials=n_startup_trials)
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials,
                                               n_warmup_steps=pruning_warmup_rounds)
    # a stored trial writes every reported value to the database: report every REPORT_EVERY
    # rounds there (in memory, every round)
    every = REPORT_EVERY if storage is not None else 1

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
                                       _pruning_callback(trial, pruning_warmup_rounds, every)])
        trial.set_user_attr("best_iteration", int(booster.best_iteration))
        return float(booster.best_score["valid"]["binary_logloss"])

    t0 = time.perf_counter()
    todo = max(0, n_trials - done)
    if done:
        log.info("optuna: study %s in %s holds %d finished trials; running %d more", name,
                 storage, done, todo)
    if todo:
        with bar(total=todo, unit="trial", desc="optuna", progress=progress) as pbar:

            def advance(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
                if not pbar.disable and trial.state == optuna.trial.TrialState.COMPLETE:
                    pbar.set_postfix(best=f"{study.best_value:.5f}", refresh=False)
                pbar.update()

            study.optimize(objective, n_trials=todo, timeout=timeout_s, callbacks=[advance])
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
                        trials=trials, study_name=name, storage=storage, n_new_trials=todo)

