"""Probability calibration: a monotone map from a model's score to a conversion probability.

Two methods, both fitted on the calibration slice:

- ``isotonic``: a non-decreasing step-wise-linear map (sklearn's IsotonicRegression), stored
  as its thresholds and applied with linear interpolation, clipped at the ends;
- ``sigmoid`` (Platt): p = 1 / (1 + exp(-(a * score + b))), stored as (a, b).

Choice (`choose_calibrator`): each method is cross-fitted within the calibration slice
(K folds, grouped by lead so one lead's monthly rows never sit on both sides) and the one
with the lower out-of-fold log loss is refitted on the whole slice. Log loss is a proper
scoring rule, so it rewards calibration and sharpness together; isotonic wins when the
slice is large and the miscalibration is not sigmoid-shaped, sigmoid when data are thin.

Probabilities are clipped to [PROBA_FLOOR, 1 - PROBA_FLOOR] so a score range without any
conversion in the calibration slice never claims "impossible" (log loss stays finite).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GroupKFold, StratifiedKFold

PROBA_FLOOR = 1e-4
METHODS: tuple[str, ...] = ("isotonic", "sigmoid")


@dataclass
class Calibrator:
    """A fitted (or unfitted) score -> probability map; JSON-serialisable via `to_dict`."""

    method: str = "isotonic"
    x_: list[float] = field(default_factory=list)  # isotonic thresholds (scores)
    y_: list[float] = field(default_factory=list)  # isotonic thresholds (probabilities)
    a_: float | None = None  # sigmoid slope
    b_: float | None = None  # sigmoid intercept

    def fit(self, scores: np.ndarray, y: np.ndarray) -> Calibrator:
        if self.method not in METHODS:
            raise ValueError(f"calibration method '{self.method}' is not one of {METHODS}")
        s = np.asarray(scores, dtype=float)
        y = np.asarray(y, dtype=float)
        if len(s) != len(y) or len(s) == 0:
            raise ValueError("calibration needs equal-length, non-empty scores and labels")
        if not np.isfinite(s).all():
            raise ValueError("calibration scores contain NaN or infinite values")
        if self.method == "isotonic":
            iso = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(s, y)
            self.x_ = iso.X_thresholds_.astype(float).tolist()
            self.y_ = iso.y_thresholds_.astype(float).tolist()
        else:
            if len(np.unique(y)) < 2:
                raise ValueError("sigmoid calibration needs both classes in the calibration slice")
            lr = LogisticRegression(C=1e6, max_iter=1000).fit(s.reshape(-1, 1), y.astype(int))
            self.a_, self.b_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        return self

    @property
    def fitted(self) -> bool:
        return bool(self.x_) if self.method == "isotonic" else self.a_ is not None

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for `scores`."""
        if not self.fitted:
            raise ValueError("calibrator is not fitted")
        s = np.asarray(scores, dtype=float)
        if self.method == "isotonic":
            p = np.interp(s, self.x_, self.y_)
        else:
            p = 1.0 / (1.0 + np.exp(-(self.a_ * s + self.b_)))
        return np.clip(p, PROBA_FLOOR, 1 - PROBA_FLOOR)

    def to_dict(self) -> dict:
        if self.method == "isotonic":
            return {"method": "isotonic", "x": self.x_, "y": self.y_}
        return {"method": "sigmoid", "a": self.a_, "b": self.b_}

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        if d.get("method") == "isotonic":
            return cls("isotonic", x_=list(d["x"]), y_=list(d["y"]))
        if d.get("method") == "sigmoid":
            return cls("sigmoid", a_=float(d["a"]), b_=float(d["b"]))
        raise ValueError(f"unknown calibrator record: method={d.get('method')!r}")


def _folds(y: np.ndarray, n_folds: int, seed: int, groups: np.ndarray | None):
    if groups is not None:
        return GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(y, y, groups)
    return StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(y, y)


def choose_calibrator(
    scores: np.ndarray,
    y: np.ndarray,
    *,
    methods: Sequence[str] = METHODS,
    n_folds: int = 5,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> tuple[Calibrator, dict]:
    """Pick the method with the lowest cross-fitted log loss; refit it on all rows.

    Returns the fitted calibrator and a report {"chosen", "cv_log_loss": {method: value}}.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(y, dtype=int)
    if y.sum() < n_folds or (1 - y).sum() < n_folds:
        raise ValueError(
            f"calibration slice has {int(y.sum())} positives and {int((1 - y).sum())} negatives; "
            f"each must be at least calibration_folds={n_folds}"
        )
    if groups is not None:
        groups = pd.factorize(np.asarray(groups))[0]  # ints: np.isin on strings is very slow
        if groups.max() + 1 < n_folds:
            groups = None
    losses: dict[str, float] = {}
    for method in methods:
        oof = np.empty_like(s)
        for fit_idx, pred_idx in _folds(y, n_folds, seed, groups):
            if len(np.unique(y[fit_idx])) < 2:
                oof[pred_idx] = y[fit_idx].mean()
                continue
            oof[pred_idx] = Calibrator(method).fit(s[fit_idx], y[fit_idx]).predict(s[pred_idx])
        losses[method] = float(log_loss(y, np.clip(oof, PROBA_FLOOR, 1 - PROBA_FLOOR), labels=[0, 1]))
    chosen = min(losses, key=losses.get)
    return Calibrator(chosen).fit(s, y), {"chosen": chosen, "cv_log_loss": losses}
