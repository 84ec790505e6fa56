"""Leakage probe, run before training: stop on features that know the future.

Two signals, both measured on the train and valid slices only (never on test):

1. **Too good out of time.** Each feature alone is turned into a score by target encoding
   fitted on the train slice (numeric: quantile bins with missing as its own bin;
   categorical: per value), smoothed towards the base rate. Its out-of-time AUC on the
   valid slice, max(auc, 1 - auc), above `max_auc` (0.9) stops the run naming the feature:
   no honest single lead attribute separates converters that well, a post-outcome field
   (e.g. "opportunity amount", "days to opportunity") does.
2. **Much better on a random split than out of time.** The same score on a random 50/50
   split of the train+valid rows (grouped by lead, so one lead's monthly rows stay on one
   side) against the out-of-time score. A random-split AUC more than `max_random_gap` above
   the out-of-time AUC means the feature's relation to the label exists only within a
   period, as happens when a field is back-filled or stamped when the outcome is recorded.
   The same check runs for the whole feature set with a small fixed LightGBM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from leadscore.errors import GuardError
from leadscore.modeling.estimators import base_lgb_params, to_model_frame

log = logging.getLogger(__name__)


class LeakageError(GuardError):
    """A feature (or the feature set) looks like it leaks the outcome."""


@dataclass
class LeakageReport:
    features: pd.DataFrame  # feature, oot_auc, random_auc, gap, reason
    model_oot_auc: float | None = None
    model_random_auc: float | None = None
    flagged: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        top = self.features.sort_values("oot_auc", ascending=False).head(10)
        return {"model_oot_auc": self.model_oot_auc, "model_random_auc": self.model_random_auc,
                "flagged": self.flagged, "messages": self.messages,
                "top_features": top.round(4).to_dict(orient="records")}


def target_encode(train_x: pd.Series, train_y: np.ndarray, apply_x: pd.Series, categorical: bool,
            n_bins: int = 20, m: float = 20.0) -> np.ndarray:
    """Smoothed target rate of `apply_x`'s bin/value, learned on (train_x, train_y)."""
    prior = float(train_y.mean())
    if categorical:
        tr_key = train_x.astype(object).where(train_x.notna(), "__missing__").astype(str)
        ap_key = apply_x.astype(object).where(apply_x.notna(), "__missing__").astype(str)
    else:
        tx = pd.to_numeric(train_x, errors="coerce").to_numpy(dtype=float)
        ax = pd.to_numeric(apply_x, errors="coerce").to_numpy(dtype=float)
        finite = tx[np.isfinite(tx)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, n_bins + 1))[1:-1]) if finite.size else []
        tr_key = pd.Series(np.where(np.isnan(tx), -1, np.searchsorted(edges, tx, side="right")))
        ap_key = pd.Series(np.where(np.isnan(ax), -1, np.searchsorted(edges, ax, side="right")))
    stats = pd.DataFrame({"k": tr_key.to_numpy(), "y": train_y}).groupby("k")["y"].agg(["sum", "count"])
    rate = (stats["sum"] + m * prior) / (stats["count"] + m)
    return ap_key.map(rate).fillna(prior).to_numpy(dtype=float)


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


def _random_halves(groups: np.ndarray, seed: int) -> np.ndarray:
    codes, uniq = pd.factorize(pd.Series(groups))
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(uniq), dtype=bool)
    chosen[rng.choice(len(uniq), size=len(uniq) // 2, replace=False)] = True
    return chosen[codes]


def probe_leakage(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    *,
    features: list[str],
    categorical: list[str],
    label: str = "label",
    group: str | None = "lead_id",
    max_auc: float = 0.9,
    max_random_gap: float = 0.1,
    max_rows: int = 100_000,
    seed: int = 0,
    model_check: bool = True,
    num_threads: int = 1,
) -> LeakageReport:
    """Measure every feature (and the feature set); flag what crosses the thresholds."""
    rng = np.random.default_rng(seed)
    if len(train) > max_rows:
        train = train.iloc[np.sort(rng.choice(len(train), max_rows, replace=False))]
    if len(valid) > max_rows:
        valid = valid.iloc[np.sort(rng.choice(len(valid), max_rows, replace=False))]
    pool = pd.concat([train, valid], ignore_index=True)
    groups = pool[group].to_numpy() if group and group in pool else np.arange(len(pool))
    left = _random_halves(groups, seed)
    ya, yb = pool.loc[left, label].to_numpy(int), pool.loc[~left, label].to_numpy(int)
    ytr, yva = train[label].to_numpy(int), valid[label].to_numpy(int)

    rows, flagged, messages = [], [], []
    for f in features:
        cat = f in categorical
        oot = _auc(yva, target_encode(train[f], ytr, valid[f], cat))
        rnd = _auc(yb, target_encode(pool.loc[left, f], ya, pool.loc[~left, f], cat))
        oot_sym = max(oot, 1 - oot)
        reason = ""
        if oot_sym > max_auc:
            reason = f"out-of-time AUC {oot_sym:.3f} > {max_auc}"
        elif rnd - oot > max_random_gap:
            reason = f"random-split AUC {rnd:.3f} is {rnd - oot:.3f} above out-of-time AUC {oot:.3f}"
        if reason:
            flagged.append(f)
            messages.append(f"feature '{f}': {reason}")
        rows.append({"feature": f, "oot_auc": oot_sym, "random_auc": rnd, "gap": rnd - oot,
                     "reason": reason})
    report = LeakageReport(pd.DataFrame(rows), flagged=flagged, messages=messages)

    if model_check and not flagged:
        params = {**base_lgb_params(seed, num_threads), "num_leaves": 15, "learning_rate": 0.1,
                  "min_data_in_leaf": 20}
        cats = {c: sorted(pool[c].dropna().astype(str).unique().tolist()) for c in categorical}
        num = [c for c in features if c not in cats]

        def fit_auc(a: pd.DataFrame, ya_: np.ndarray, b: pd.DataFrame, yb_: np.ndarray) -> float:
            ds = lgb.Dataset(to_model_frame(a, num, cats, features), label=ya_,
                             categorical_feature=[c for c in features if c in cats])
            booster = lgb.train(params, ds, num_boost_round=100)
            return _auc(yb_, booster.predict(to_model_frame(b, num, cats, features)))

        report.model_oot_auc = fit_auc(train, ytr, valid, yva)
        report.model_random_auc = fit_auc(pool.loc[left], ya, pool.loc[~left], yb)
        gap = report.model_random_auc - report.model_oot_auc
        if gap > max_random_gap:
            report.flagged.append("(all features)")
            report.messages.append(
                f"all features: random-split AUC {report.model_random_auc:.3f} is {gap:.3f} above "
                f"out-of-time AUC {report.model_oot_auc:.3f}")
    return report


def check_leakage(report: LeakageReport) -> None:
    """Raise `LeakageError` naming every flagged feature."""
    if report.flagged:
        raise LeakageError(
            "leakage probe stopped the run:\n  - " + "\n  - ".join(report.messages)
            + "\nDrop the column(s) from the features, or fix how they are computed (only records "
              "strictly before as_of). Thresholds: train_model.leakage.max_auc / max_random_gap."
        )
