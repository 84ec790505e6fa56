"""Rolling-origin backtest: would retraining every `fold_months` have kept the model good?

The last `folds * fold_months` as_of months of the table are cut into `folds` consecutive,
non-overlapping test periods of `fold_months` each, latest last. Fold k pretends it is the
start of its test period (its **cutoff**): it keeps only the rows with as_of before the end
of its test period and splits them with `time_split` (test = the fold's period, valid and
calib months from `backtest`, the embargo of `split`), so every row it trains on matured
before the cutoff. Inside each fold the procedure is training's
(`leadscore.modeling.train.fit_calibrate_refit`, the one implementation):

- LightGBM with the fixed `backtest.lightgbm_params` (no Optuna: tuning per fold would cost
  about ten times as much; `bagging_freq: 1` is added as the tuner always does) and early
  stopping on valid; the logistic regression check;
- recency settings chosen on valid, calibration on calib, the refit on the rows mature
  before the cutoff (rounds scaled by the row ratio, the calibrator kept);
- the points rules with their points from params and their isotonic map fitted on the
  fold's calib slice (`PointsRuleClassifier.fit`).

No leakage guards run (the training stage has them). Each fold measures on its test period
ROC-AUC, PR-AUC and ECE of the calibrated probabilities of the rules, the refitted models
(`logistic`, `lightgbm`) and the train-slice models (`*_no_refit`). The summary gives per
model and metric the mean across folds with a 95% t-interval (folds are few: the interval
is wide on purpose); the `refit` block, per kind, the mean ROC-AUC gain of the refit over no
refit, the folds it won, and `wins`: a positive mean gain and at least half the folds won.
`BacktestResult.to_dict()` is reports/backtest.json (docs/lifecycle.md; its headline:
metrics/backtest.json); `plots_frame()` is plots/backtest.csv and `roc_auc_by_fold()`
plots/backtest_roc_auc.csv (drawn by `dvc plots show`). No paths, no MLflow: the stage (pipelines/backtest.py) writes and logs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import t as student_t
from sklearn.base import clone

from leadscore.config import BacktestConfig, TrainModelConfig
from leadscore.errors import InputError
from leadscore.features.catalog import FeatureCatalog
from leadscore.modeling.baseline import PointsRuleClassifier
from leadscore.modeling.estimators import TooFewPositivesError, model_features
from leadscore.modeling.metrics import core_metrics
from leadscore.modeling.recency import candidates
from leadscore.modeling.splits import embargo_for, mature_rows, time_split
from leadscore.modeling.train import (
    LightGBMRecipe,
    LogisticRecipe,
    fit_calibrate_refit,
)
from leadscore.progress import bar

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("lightgbm", "logistic")
MODELS: tuple[str, ...] = ("rules", "logistic", "lightgbm", "logistic_no_refit",
                           "lightgbm_no_refit")
METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "ece")


@dataclass
class FoldResult:
    """One fold: its test period, row counts, chosen settings and per-model metrics."""

    fold: int
    cutoff: str  # the retrain date: the start of the test period
    test_as_of_first: str
    test_as_of_last: str
    train_rows: int  # the fold's train slice
    test_rows: int
    test_positives: int
    settings: dict[str, dict]  # kind -> {window_months, half_life_days}
    models: dict[str, dict[str, float]]  # model -> {roc_auc, pr_auc, ece}

    def to_dict(self) -> dict:
        return {"fold": self.fold, "cutoff": self.cutoff,
                "test_as_of_first": self.test_as_of_first,
                "test_as_of_last": self.test_as_of_last, "train_rows": self.train_rows,
                "test_rows": self.test_rows, "test_positives": self.test_positives,
                "settings": self.settings, "models": self.models}


def t_interval(values, level: float = 0.95) -> dict[str, float]:
    """Mean and its two-sided t-interval (n - 1 degrees of freedom); one value: a point."""
    v = np.asarray(values, dtype=float)
    mean = float(v.mean())
    if len(v) < 2:
        return {"mean": mean, "ci_low": mean, "ci_high": mean}
    half = float(student_t.ppf((1 + level) / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half}


@dataclass
class BacktestResult:
    folds: list[FoldResult]
    seconds: float = 0.0
    level: float = 0.95
    extra: dict = field(default_factory=dict)  # not in the JSON: e.g. per-fold timings

    def summary(self) -> dict:
        """model -> metric -> {mean, ci_low, ci_high} across folds."""
        return {m: {k: t_interval([f.models[m][k] for f in self.folds], self.level)
                    for k in METRICS} for m in MODELS}

    def refit(self) -> dict:
        """kind -> mean ROC-AUC gain of refit over no refit, folds won, wins."""
        out = {}
        for kind in KINDS:
            gains = [f.models[kind]["roc_auc"] - f.models[f"{kind}_no_refit"]["roc_auc"]
                     for f in self.folds]
            won = sum(g > 0 for g in gains)
            mean = float(np.mean(gains))
            out[kind] = {"mean_auc_gain": mean, "folds_won": int(won),
                         "wins": bool(mean > 0 and 2 * won >= len(gains))}
        return out

    def to_dict(self) -> dict:
        """metrics/backtest.json (docs/lifecycle.md)."""
        return {"folds": [f.to_dict() for f in self.folds], "summary": self.summary(),
                "refit": self.refit(), "seconds": round(self.seconds, 1)}

    def roc_auc_by_fold(self) -> pd.DataFrame:
        """plots/backtest_roc_auc.csv, what `dvc plots show` draws: one row per fold (fold,
        cutoff) with one ROC-AUC column per model."""
        return pd.DataFrame([{"fold": f.fold, "cutoff": f.cutoff,
                              **{m: f.models[m]["roc_auc"] for m in MODELS}} for f in self.folds],
                            columns=["fold", "cutoff", *MODELS])

    def plots_frame(self) -> pd.DataFrame:
        """plots/backtest.csv: one row per fold and model (fold, cutoff, model, metrics)."""
        return pd.DataFrame([{"fold": f.fold, "cutoff": f.cutoff, "model": m,
                              **{k: f.models[m][k] for k in METRICS}}
                             for f in self.folds for m in MODELS],
                            columns=["fold", "cutoff", "model", *METRICS])


def fold_periods(as_of: pd.Series, folds: int, fold_months: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """[(test start, test end exclusive)] of each fold, oldest first: the last
    `folds * fold_months` calendar months of `as_of`, cut into consecutive periods."""
    last = pd.to_datetime(as_of).max()
    end = pd.Timestamp(year=last.year, month=last.month, day=1) + pd.DateOffset(months=1)
    return [(end - pd.DateOffset(months=(folds - k) * fold_months),
             end - pd.DateOffset(months=(folds - k - 1) * fold_months)) for k in range(folds)]


def _scores(model, test: pd.DataFrame, label: str) -> dict[str, float]:
    m = core_metrics(test[label], model.predict_proba(test)[:, 1])
    return {k: m[k] for k in METRICS}


def _lgb_params(params: dict) -> dict:
    """Integral values as int (LightGBM wants int num_leaves), bagging every round."""
    out = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in params.items()}
    return {"bagging_freq": 1, **out}


def run_backtest(
    table: pd.DataFrame,
    rules: PointsRuleClassifier,
    *,
    features: list[str],
    categorical: list[str],
    horizon_days: int,
    embargo_months: int | None,
    backtest_cfg: BacktestConfig,
    train_cfg: TrainModelConfig,
    seed: int,
    calibration_groups: str | None = "lead_id",
    label: str = "label",
    progress: bool | None = None,
) -> BacktestResult:
    """The rolling-origin backtest (see the module docstring) on `table` (lead_id, as_of,
    label, features). `rules`: the points table (its calibration is refitted per fold);
    `train_cfg`: recency candidates, calibration, logistic_c, learning rate, rounds,
    threads, constraints and min_positives of training. `progress`: a bar of folds on
    stderr (None: when stderr is a terminal; `leadscore.progress`)."""
    t0 = time.perf_counter()
    cfg = backtest_cfg
    if "as_of" not in table.columns or table.empty:
        raise InputError("backtest: the training table is empty or has no 'as_of' column")
    as_of = pd.to_datetime(table["as_of"])
    settings = candidates(train_cfg.recency.window_months, train_cfg.recency.half_life_days)
    lgb = LightGBMRecipe.from_config(train_cfg, _lgb_params(cfg.lightgbm_params),
                                     features=features, categorical=categorical, seed=seed)
    logit = LogisticRecipe(list(features), list(categorical), train_cfg.logistic_c)
    common = dict(settings=settings, calibration_methods=train_cfg.calibration_methods,
                  calibration_folds=train_cfg.calibration_folds, seed=seed,
                  calibration_groups=calibration_groups, label=label)
    results, timings = [], []
    periods = fold_periods(as_of, cfg.folds, cfg.fold_months)
    with bar(total=len(periods), unit="fold", desc="backtest", progress=progress) as pbar:
        for k, (start, end) in enumerate(periods, 1):
            t = time.perf_counter()
            split = time_split(table.loc[as_of < end], horizon_days=horizon_days,
                               test_months=cfg.fold_months, calib_months=cfg.calib_months,
                               valid_months=cfg.valid_months, embargo_months=embargo_months)
            positives = int(split.train[label].sum())
            if positives < train_cfg.min_positives:
                raise TooFewPositivesError(
                    f"{positives} positive labels in the training slice of backtest fold {k}; at "
                    f"least {train_cfg.min_positives} are needed (train_model.min_positives). The "
                    f"earliest fold has the least history: lower backtest.folds or fold_months.")
            w = split.windows
            if pd.Timestamp(w["test"]["as_of_first"]) < start:
                raise InputError(f"backtest fold {k}: no rows with as_of in the month(s) before "
                                 f"{end.date()}, so its test period would start before "
                                 f"{start.date()}; the table needs every as_of month of the last "
                                 f"{cfg.folds * cfg.fold_months}")
            test = split.test
            models: dict[str, dict[str, float]] = {}
            chosen: dict[str, dict] = {}
            for kind, recipe in (("logistic", logit), ("lightgbm", lgb)):
                pbar.set_postfix_str(kind)
                fit = fit_calibrate_refit(recipe, split.train, split.valid, split.calib,
                                          refit_rows=split.mature, **common)
                models[kind] = _scores(fit.shipped, test, label)  # the refit unless its check failed
                models[f"{kind}_no_refit"] = _scores(fit.model, test, label)
                chosen[kind] = fit.choice.settings.to_dict()
            fold_rules = clone(rules).fit(split.calib, split.calib[label])  # flat rules too
            models["rules"] = _scores(fold_rules, test, label)
            results.append(FoldResult(
                fold=k, cutoff=str(start.date()), test_as_of_first=w["test"]["as_of_first"],
                test_as_of_last=w["test"]["as_of_last"], train_rows=w["train"]["rows"],
                test_rows=w["test"]["rows"], test_positives=w["test"]["positives"],
                settings={kind: chosen[kind] for kind in KINDS},
                models={m: models[m] for m in MODELS}))
            timings.append(round(time.perf_counter() - t, 1))
            log.info("fold %d/%d (test %s..%s, %.1fs): ROC-AUC rules %.4f, logistic %.4f "
                     "(no refit %.4f), lightgbm %.4f (no refit %.4f)", k, cfg.folds,
                     w["test"]["as_of_first"], w["test"]["as_of_last"], timings[-1],
                     *(models[m]["roc_auc"] for m in ("rules", "logistic", "logistic_no_refit",
                                                      "lightgbm", "lightgbm_no_refit")))
            pbar.update()
    return BacktestResult(results, seconds=time.perf_counter() - t0,
                          extra={"fold_seconds": timings})


def backtest_from_params(params, table: pd.DataFrame, catalog: FeatureCatalog,
                         rules: PointsRuleClassifier) -> BacktestResult:
    """`run_backtest` with a `Params`: the catalog's features in the table, the rows mature
    by `features.data_cutoff`, the embargo of `split`, the `backtest` and `train_model` sections."""
    horizon = params.features.horizon_days
    table = mature_rows(table, params.features.cutoff_datetime, horizon_days=horizon)
    names, cats = model_features(table, catalog)
    return run_backtest(table, rules, features=names, categorical=cats, horizon_days=horizon,
                        embargo_months=embargo_for(horizon, params.split.embargo_months),
                        backtest_cfg=params.backtest, train_cfg=params.train_model,
                        seed=params.seed)


def _settings_text(s: dict) -> str:
    w = "all" if s["window_months"] is None else f"{s['window_months']}m"
    h = "-" if s["half_life_days"] is None else f"{s['half_life_days']:g}d"
    return f"{w}/{h}"


def format_backtest(result: BacktestResult) -> str:
    """A plain-text table for logs and the CLI: ROC-AUC per fold and model (refit, with no
    refit in brackets), the chosen settings (window/half-life), then the summary and the
    refit verdict."""
    head = (f"{'fold':>4}  {'test as_of':<23} {'rows':>7} {'pos':>6}  {'rules':>6}  "
            f"{'logistic (no refit)':>19}  {'lightgbm (no refit)':>19}  settings lgbm, logit")
    lines = ["ROC-AUC per fold (test period = the months after the fold's cutoff)", head]
    for f in result.folds:
        m = f.models
        lines.append(
            f"{f.fold:>4}  {f.test_as_of_first + '..' + f.test_as_of_last:<23} "
            f"{f.test_rows:>7} {f.test_positives:>6}  {m['rules']['roc_auc']:>6.4f}  "
            f"{m['logistic']['roc_auc']:>10.4f} ({m['logistic_no_refit']['roc_auc']:.4f})  "
            f"{m['lightgbm']['roc_auc']:>10.4f} ({m['lightgbm_no_refit']['roc_auc']:.4f})  "
            f"{_settings_text(f.settings['lightgbm'])}, {_settings_text(f.settings['logistic'])}")
    lines += ["", f"{'model':<18} " + "  ".join(f"{k + ' mean [95% CI]':>26}" for k in METRICS)]
    for model, ms in result.summary().items():
        lines.append(f"{model:<18} " + "  ".join(
            f"{ms[k]['mean']:>8.4f} [{ms[k]['ci_low']:.4f}, {ms[k]['ci_high']:.4f}]"
            for k in METRICS))
    lines.append("")
    for kind, r in result.refit().items():
        lines.append(f"refit {kind}: mean ROC-AUC gain {r['mean_auc_gain']:+.4f}, won "
                     f"{r['folds_won']}/{len(result.folds)} folds: "
                     f"{'refit wins' if r['wins'] else 'refit does not win'}")
    lines.append(f"{len(result.folds)} folds in {result.seconds:.1f}s")
    return "\n".join(lines)
