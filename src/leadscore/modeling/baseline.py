"""The points-rule baseline: what a marketing team scores leads with today.

`PointsRuleClassifier` is a scikit-learn classifier, so evaluate, explain and export treat it
like the model:

- **fit points** by attribute value (`fit_points`: feature -> value -> points, e.g.
  seniority, company_size_band, industry, country; values match case- and
  punctuation-insensitively, unknown values score 0) plus negative points for fit flags
  (`fit_negative_points`: free mail, invalid e-mail, placeholder name);
- **engagement points** per event counted within `window_days`
  (`<event>_<window>d` columns; `engagement_points` by event type, `content_points` by
  download content type), each activity capped at `max_points_per_activity`, optionally
  `decayed_points` per unit of `engagement_decayed`, plus negative points for engagement
  flags (`engagement_negative_points`: unsubscribed, bounced);
- **grade** in the Eloqua style: fit letter A-D from the fit points (`fit_bands`: the
  minimum points for A, B, C) and engagement digit 1-4 from the engagement points
  (`engagement_bands`: the minimum for 1, 2, 3);
- **MQL** when the total reaches `mql_threshold` (`predict`);
- **probability**: the only learned state, an isotonic (monotone) map from total points to
  conversion rate, fitted on the calibration slice (`fit`, `predict_proba`).

Columns named in the table but absent from the data score 0 and are listed in
`missing_features_` (a warning is logged). Saved as JSON (`save_rules` / `load_rules`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from leadscore.io import read_json, write_json
from leadscore.modeling.calibration import Calibrator
from leadscore.modeling.metrics import core_metrics

log = logging.getLogger(__name__)

FIT_LETTERS = ("A", "B", "C", "D")
ENGAGEMENT_DIGITS = ("1", "2", "3", "4")


def norm_value(value: object) -> str:
    """Case/punctuation-insensitive key: 'Financial Services' == 'financial_services'."""
    return re.sub(r"[^0-9a-z+]+", "_", str(value).strip().lower()).strip("_")


def _band(points: np.ndarray, bands: dict, labels: tuple[str, ...]) -> np.ndarray:
    """First label whose minimum `points` reaches (bands hold the minimum for all but the last)."""
    out = np.full(points.shape, labels[-1], dtype=object)
    for label in reversed(labels[:-1]):
        out[points >= float(bands[label])] = label
    return out


class PointsRuleClassifier(ClassifierMixin, BaseEstimator):
    """Marketing points table + Eloqua-style grade + monotone points -> probability map."""

    def __init__(
        self,
        fit_points: dict | None = None,
        engagement_points: dict | None = None,
        content_points: dict | None = None,
        window_days: int = 90,
        max_points_per_activity: float = 30,
        decayed_points: float = 0,
        fit_negative_points: dict | None = None,
        engagement_negative_points: dict | None = None,
        fit_bands: dict | None = None,
        engagement_bands: dict | None = None,
        mql_threshold: float = 50,
    ):
        self.fit_points = fit_points
        self.engagement_points = engagement_points
        self.content_points = content_points
        self.window_days = window_days
        self.max_points_per_activity = max_points_per_activity
        self.decayed_points = decayed_points
        self.fit_negative_points = fit_negative_points
        self.engagement_negative_points = engagement_negative_points
        self.fit_bands = fit_bands
        self.engagement_bands = engagement_bands
        self.mql_threshold = mql_threshold

    @classmethod
    def from_config(cls, cfg) -> PointsRuleClassifier:
        """From a `TrainRulesConfig` (params.yaml section `train_rules`)."""
        return cls(**cfg.model_dump())

    # ---- the points table ------------------------------------------------------------
    def _validate(self) -> None:
        for name, bands, labels in (("fit_bands", self.fit_bands, FIT_LETTERS),
                                    ("engagement_bands", self.engagement_bands, ENGAGEMENT_DIGITS)):
            if bands is None:
                continue
            keys = list(labels[:-1])
            if sorted(map(str, bands)) != keys:
                raise ValueError(f"{name} needs exactly the keys {keys}, got {sorted(bands)}")
            mins = [float(bands[k]) for k in keys]
            if mins != sorted(mins, reverse=True):
                raise ValueError(f"{name} minimums must decrease from {keys[0]} to {keys[-1]}")
        if self.window_days <= 0 or self.max_points_per_activity <= 0:
            raise ValueError("window_days and max_points_per_activity must be positive")
        for name, table in (("fit_negative_points", self.fit_negative_points),
                            ("engagement_negative_points", self.engagement_negative_points)):
            if any(v > 0 for v in (table or {}).values()):
                raise ValueError(f"{name} must hold negative (or zero) points")

    def _columns(self) -> dict[str, list[str]]:
        w = self.window_days
        return {
            "fit": list(self.fit_points or {}) + list(self.fit_negative_points or {}),
            "engagement": [f"{e}_{w}d" for e in (self.engagement_points or {})]
            + [f"download_{c}_{w}d" for c in (self.content_points or {})]
            + (["engagement_decayed"] if self.decayed_points else [])
            + list(self.engagement_negative_points or {}),
        }

    def points(self, X: pd.DataFrame) -> pd.DataFrame:
        """Fit, engagement and total points per row (index of X)."""
        n = len(X)
        cap = float(self.max_points_per_activity)
        w = self.window_days

        def num(col: str) -> np.ndarray:
            if col not in X:
                return np.zeros(n)
            return pd.to_numeric(X[col], errors="coerce").fillna(0).to_numpy(dtype=float)

        fit = np.zeros(n)
        for col, table in (self.fit_points or {}).items():
            if col in X:
                lookup = {norm_value(k): float(v) for k, v in table.items()}
                fit += X[col].map(lambda v, lk=lookup: lk.get(norm_value(v), 0.0)).to_numpy(dtype=float)
        for col, pts in (self.fit_negative_points or {}).items():
            fit += float(pts) * (num(col) > 0)

        eng = np.zeros(n)
        for event, pts in (self.engagement_points or {}).items():
            eng += np.minimum(float(pts) * num(f"{event}_{w}d"), cap)
        for ctype, pts in (self.content_points or {}).items():
            eng += np.minimum(float(pts) * num(f"download_{ctype}_{w}d"), cap)
        if self.decayed_points:
            eng += np.minimum(float(self.decayed_points) * num("engagement_decayed"), cap)
        for col, pts in (self.engagement_negative_points or {}).items():
            eng += float(pts) * (num(col) > 0)
        return pd.DataFrame({"fit_points": fit, "engagement_points": eng,
                             "total_points": fit + eng}, index=X.index)

    def grade(self, X: pd.DataFrame) -> pd.DataFrame:
        """fit_grade (A-D), engagement_grade (1-4), rule_grade (e.g. "A1"), rule_points."""
        self._validate()
        pts = self.points(X)
        fit_bands = self.fit_bands or {"A": 40, "B": 25, "C": 10}
        eng_bands = self.engagement_bands or {"1": 40, "2": 20, "3": 5}
        letter = _band(pts["fit_points"].to_numpy(), fit_bands, FIT_LETTERS)
        digit = _band(pts["engagement_points"].to_numpy(),
                      {str(k): v for k, v in eng_bands.items()}, ENGAGEMENT_DIGITS)
        return pd.DataFrame({"fit_grade": letter, "engagement_grade": digit,
                             "rule_grade": np.char.add(letter.astype(str), digit.astype(str)),
                             "rule_points": pts["total_points"].to_numpy()}, index=X.index)

    # ---- the estimator ---------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y) -> PointsRuleClassifier:
        """Fit the points -> probability map (isotonic) on the calibration slice."""
        self._validate()
        y = np.asarray(y).astype(int)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        if not set(np.unique(y)) <= {0, 1}:
            raise ValueError("y must be 0/1 labels")
        cols = self._columns()
        self.missing_features_ = sorted({c for cs in cols.values() for c in cs if c not in X})
        if self.missing_features_:
            log.warning("rules: %d column(s) of the points table are not in the data and score 0: %s",
                        len(self.missing_features_), ", ".join(self.missing_features_))
        self.classes_ = np.array([0, 1])
        self.calibrator_ = Calibrator("isotonic").fit(self.points(X)["total_points"].to_numpy(), y)
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Total points (the rule's ranking score)."""
        return self.points(X)["total_points"].to_numpy()

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "calibrator_"):
            raise ValueError("PointsRuleClassifier is not fitted: call fit on the calibration slice")
        p = self.calibrator_.predict(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 = MQL (total points >= mql_threshold)."""
        return (self.decision_function(X) >= float(self.mql_threshold)).astype(int)

    # ---- persistence (JSON, no pickle) ---------------------------------------------------
    def to_dict(self) -> dict:
        d = {"kind": "points_rules", "params": self.get_params()}
        if hasattr(self, "calibrator_"):
            d["calibrator"] = self.calibrator_.to_dict()
            d["missing_features"] = self.missing_features_
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PointsRuleClassifier:
        if d.get("kind") != "points_rules":
            raise ValueError("not a points-rule record (kind != 'points_rules')")
        est = cls(**d["params"])
        if "calibrator" in d:
            est.calibrator_ = Calibrator.from_dict(d["calibrator"])
            est.missing_features_ = list(d.get("missing_features", []))
            est.classes_ = np.array([0, 1])
        return est


def rules_summary(rules: PointsRuleClassifier, calib: pd.DataFrame) -> dict:
    """The baseline on the calibration slice: metrics, MQL share and conversion, grade mix."""
    proba = rules.predict_proba(calib)[:, 1]
    mql = rules.predict(calib) == 1
    grades = rules.grade(calib)
    return {
        "calib": core_metrics(calib["label"], proba),
        "calib_rows": len(calib),
        "mql_share": float(np.mean(mql)),
        "mql_conversion": float(calib["label"][mql].mean()) if mql.any() else None,
        "grade_share": grades["rule_grade"].value_counts(normalize=True).sort_index().round(4).to_dict(),
        "missing_features": rules.missing_features_,
    }


def save_rules(model: PointsRuleClassifier, path: str | Path) -> None:
    write_json(model.to_dict(), path)


def load_rules(path: str | Path) -> PointsRuleClassifier:
    return PointsRuleClassifier.from_dict(read_json(path))
