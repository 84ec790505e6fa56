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
  conversion rate, fitted on the calibration slice (`fit`, `predict_proba`);
- **items**: the lines of the table (`items`, one `RuleItem` per column, named after it) and
  each lead's points per line (`item_points`; they add up to its points), so a rules scorer
  can give reasons in points (`leadscore.serve.scorer.Scorer`, kind "rules").

Columns named in the table but absent from the data score 0 and are listed in
`missing_features_` (a warning is logged). Saved as JSON (`save_rules` / `load_rules`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
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


@dataclass(frozen=True)
class RuleItem:
    """One line of the points table (`PointsRuleClassifier.items`): `name` (the column it
    reads, e.g. "pricing_page_view_90d" or "seniority"), its `group` ("fit" or
    "engagement") and a `label` saying how it earns points (no lead data)."""

    name: str
    group: str
    column: str
    label: str


# up to this many rows, values are looked up one by one (serving one lead); above, per
# distinct value (batch); both give the same points
SMALL_INPUT_ROWS = 64


def _lookup_points(values: pd.Series, lookup: dict[str, float]) -> np.ndarray:
    """Points of each value by `norm_value` key (0 when absent) in `lookup` (already keyed by
    `norm_value`, `_normalised`); each distinct value is normalised once, so millions of rows
    cost a hash lookup each."""
    if len(values) <= SMALL_INPUT_ROWS:
        return np.array([lookup.get(norm_value(v), 0.0) for v in values], dtype=float)
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    per_unique = np.array([lookup.get(norm_value(v), 0.0) for v in uniques], dtype=float)
    return per_unique[codes] if len(codes) else np.zeros(0)


def _points_frame(fit: np.ndarray, engagement: np.ndarray, index: pd.Index) -> pd.DataFrame:
    """Fit, engagement and total points per row."""
    return pd.DataFrame({"fit_points": fit, "engagement_points": engagement,
                         "total_points": fit + engagement}, index=index)


def _normalised(table: dict) -> dict[str, float]:
    """A points table keyed by `norm_value`."""
    return {norm_value(k): float(v) for k, v in table.items()}


def words_of(name: str) -> str:
    """A column name in words: pricing_page_view -> Pricing page view."""
    s = str(name).replace("_", " ").strip()
    return s[:1].upper() + s[1:]


def points_text(v: float) -> str:
    return f"{float(v):g}"


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

    def items(self) -> list[RuleItem]:
        """The lines of the points table, in table order: one item per column (fit value
        tables, fit flags, engagement events, content types, decayed engagement, engagement
        flags). An item is named after its column (`column@group` if a column were in both
        groups); a column listed twice in one group is one item."""
        w, cap = self.window_days, points_text(self.max_points_per_activity)
        entries: list[tuple[str, str, str]] = []  # (group, column, label)
        for col in self.fit_points or {}:
            entries.append(("fit", col, f"{words_of(col)}: points by value"))
        for col, pts in (self.fit_negative_points or {}).items():
            entries.append(("fit", col, f"{words_of(col)}: {points_text(pts)} points"))
        for event, pts in (self.engagement_points or {}).items():
            entries.append(("engagement", f"{event}_{w}d", f"{words_of(event)}, last {w} days: "
                            f"{points_text(pts)} points each (at most {cap})"))
        for ctype, pts in (self.content_points or {}).items():
            entries.append(("engagement", f"download_{ctype}_{w}d", f"{words_of(ctype)} downloads, "
                            f"last {w} days: {points_text(pts)} points each (at most {cap})"))
        if self.decayed_points:
            entries.append(("engagement", "engagement_decayed", f"Decayed engagement: "
                            f"{points_text(self.decayed_points)} points per unit (at most {cap})"))
        for col, pts in (self.engagement_negative_points or {}).items():
            entries.append(("engagement", col, f"{words_of(col)}: {points_text(pts)} points"))
        groups_of: dict[str, set[str]] = {}
        for group, col, _ in entries:
            groups_of.setdefault(col, set()).add(group)
        out: dict[tuple[str, str], RuleItem] = {}
        for group, col, label in entries:
            if (group, col) not in out:
                name = col if len(groups_of[col]) == 1 else f"{col}@{group}"
                out[(group, col)] = RuleItem(name, group, col, label)
        return list(out.values())

    def _fit_lookups(self) -> dict[str, dict[str, float]]:
        """`fit_points` keyed by `norm_value`, per column (kept while `fit_points` is the same)."""
        cached = self.__dict__.get("_fit_lookups_cache")
        if cached is None or cached[0] is not self.fit_points:
            cached = (self.fit_points, {col: _normalised(t) for col, t in (self.fit_points or {}).items()})
            self.__dict__["_fit_lookups_cache"] = cached
        return cached[1]

    def _entries(self, X: pd.DataFrame) -> list[tuple[str, str, np.ndarray]]:
        """(group, column, points per row) for every line of the points table, in order."""
        n = len(X)
        cap = float(self.max_points_per_activity)
        w = self.window_days

        def num(col: str) -> np.ndarray:
            if col not in X:
                return np.zeros(n)
            column = X[col]
            if column.dtype == np.float64:
                values = column.to_numpy()
                return np.where(np.isnan(values), 0.0, values)
            return pd.to_numeric(column, errors="coerce").fillna(0).to_numpy(dtype=float)

        out: list[tuple[str, str, np.ndarray]] = []
        for col, lookup in self._fit_lookups().items():
            if col in X:
                out.append(("fit", col, _lookup_points(X[col], lookup)))
            else:
                out.append(("fit", col, np.zeros(n)))
        for col, pts in (self.fit_negative_points or {}).items():
            out.append(("fit", col, float(pts) * (num(col) > 0)))
        for event, pts in (self.engagement_points or {}).items():
            out.append(("engagement", f"{event}_{w}d", np.minimum(float(pts) * num(f"{event}_{w}d"), cap)))
        for ctype, pts in (self.content_points or {}).items():
            col = f"download_{ctype}_{w}d"
            out.append(("engagement", col, np.minimum(float(pts) * num(col), cap)))
        if self.decayed_points:
            out.append(("engagement", "engagement_decayed",
                        np.minimum(float(self.decayed_points) * num("engagement_decayed"), cap)))
        for col, pts in (self.engagement_negative_points or {}).items():
            out.append(("engagement", col, float(pts) * (num(col) > 0)))
        return out

    @staticmethod
    def _totals(entries: list[tuple[str, str, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
        fit, eng = np.zeros(n), np.zeros(n)
        for group, _, pts in entries:
            if group == "fit":
                fit += pts
            else:
                eng += pts
        return fit, eng

    def breakdown(self, X: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """`points(X)` and `item_points(X)` from one pass over the points table."""
        entries = self._entries(X)
        fit, eng = self._totals(entries, len(X))
        names = {(i.group, i.column): i.name for i in self.items()}
        per_item: dict[str, np.ndarray] = {}
        for group, col, pts in entries:
            name = names[(group, col)]
            per_item[name] = per_item[name] + pts if name in per_item else pts
        totals = _points_frame(fit, eng, X.index)
        items = pd.DataFrame(per_item, index=X.index, columns=list(per_item), dtype="float64")
        return totals, items

    def points(self, X: pd.DataFrame) -> pd.DataFrame:
        """Fit, engagement and total points per row (index of X)."""
        return _points_frame(*self._totals(self._entries(X), len(X)), X.index)

    def item_points(self, X: pd.DataFrame) -> pd.DataFrame:
        """Points per row (index of X) and item (columns: `items()` names, table order);
        a row's items add up to its total points, the fit items to its fit points."""
        return self.breakdown(X)[1]

    def grade(self, X: pd.DataFrame) -> pd.DataFrame:
        """fit_grade (A-D), engagement_grade (1-4), rule_grade (e.g. "A1"), rule_points."""
        return self.grade_points(self.points(X))

    def grade_points(self, pts: pd.DataFrame) -> pd.DataFrame:
        """`grade` from the output of `points` (its fit, engagement and total points)."""
        self._validate()
        fit_bands = self.fit_bands or {"A": 40, "B": 25, "C": 10}
        eng_bands = self.engagement_bands or {"1": 40, "2": 20, "3": 5}
        letter = _band(pts["fit_points"].to_numpy(), fit_bands, FIT_LETTERS)
        digit = _band(pts["engagement_points"].to_numpy(),
                      {str(k): v for k, v in eng_bands.items()}, ENGAGEMENT_DIGITS)
        return pd.DataFrame({"fit_grade": letter, "engagement_grade": digit,
                             "rule_grade": np.char.add(letter.astype(str), digit.astype(str)),
                             "rule_points": pts["total_points"].to_numpy()}, index=pts.index)

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
