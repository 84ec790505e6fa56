"""The points-rule baseline over a flat export: `FlatRuleClassifier`.

The `PointsRuleClassifier` estimator (grade bands, isotonic points -> probability, MQL
threshold) with the points read from the mapping's condition tables (`rules:` in the
mapping, see `leadscore.flat.mapping.RulesMapping`) instead of event counts.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from leadscore.flat.mapping import Mapping, parse_condition
from leadscore.modeling.baseline import (
    PointsRuleClassifier,
    RuleItem,
    norm_value,
    points_text,
    words_of,
)
from leadscore.modeling.names import snake


def condition_mask(values: pd.Series, cond: str) -> np.ndarray:
    """Rows of `values` that meet `cond` (see `parse_condition`)."""
    kind, arg = parse_condition(cond)
    if kind == "missing":
        return values.isna().to_numpy()
    if kind == "value":
        return values.map(lambda v: v is not None and not (isinstance(v, float) and math.isnan(v))
                          and norm_value(v) == arg).to_numpy(dtype=bool)
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        if kind == "range":
            return (x >= arg[0]) & (x < arg[1])
        op, v = arg
        return {"<": x < v, "<=": x <= v, ">": x > v, ">=": x >= v, "==": x == v}[op]


class FlatRuleClassifier(PointsRuleClassifier):
    """`PointsRuleClassifier` over a flat table: points from condition tables per column.

    `fit_rules` / `engagement_rules` map a feature to ``{condition: points}`` (see
    `leadscore.flat.mapping.RulesMapping`); the first matching condition scores. Engagement
    points per column are capped at `max_points_per_activity`. Grades, the MQL threshold,
    the isotonic points -> probability map and `fit` are the parent's.
    """

    def __init__(self, fit_rules: dict | None = None, engagement_rules: dict | None = None,
                 max_points_per_activity: float = 30, fit_bands: dict | None = None,
                 engagement_bands: dict | None = None, mql_threshold: float = 30):
        super().__init__(max_points_per_activity=max_points_per_activity, fit_bands=fit_bands,
                         engagement_bands=engagement_bands, mql_threshold=mql_threshold)
        self.fit_rules = fit_rules
        self.engagement_rules = engagement_rules

    @classmethod
    def from_mapping(cls, mapping: Mapping, source_names: dict[str, str]) -> FlatRuleClassifier:
        """Rules keyed by feature name (the mapping may use the file's headers)."""
        to_feature = {snake(v): k for k, v in source_names.items()}

        def rekey(table: dict) -> dict:
            return {to_feature.get(snake(c), snake(c)): dict(t) for c, t in table.items()}

        r = mapping.rules
        return cls(fit_rules=rekey(r.fit), engagement_rules=rekey(r.engagement),
                   max_points_per_activity=r.max_points_per_activity, fit_bands=dict(r.fit_bands),
                   engagement_bands=dict(r.engagement_bands), mql_threshold=r.mql_threshold)

    def _columns(self) -> dict[str, list[str]]:
        return {"fit": list(self.fit_rules or {}), "engagement": list(self.engagement_rules or {})}

    @staticmethod
    def _table_points(X: pd.DataFrame, col: str, table: dict) -> np.ndarray:
        pts = np.zeros(len(X))
        if col not in X:
            return pts
        done = np.zeros(len(X), dtype=bool)
        for cond, p in table.items():
            hit = condition_mask(X[col], cond) & ~done
            pts[hit] = float(p)
            done |= hit
        return pts

    def items(self) -> list[RuleItem]:
        """One item per rule column (fit, then engagement), named after the column."""
        cap = points_text(self.max_points_per_activity)
        out = [RuleItem(col, "fit", col, f"{words_of(col)}: points by value")
               for col in self.fit_rules or {}]
        out += [RuleItem(col, "engagement", col, f"{words_of(col)}: points by value (at most {cap})")
                for col in self.engagement_rules or {}]
        return out

    def _entries(self, X: pd.DataFrame) -> list[tuple[str, str, np.ndarray]]:
        """(group, column, points per row) for every rule column; engagement capped."""
        cap = float(self.max_points_per_activity)
        out = [("fit", col, self._table_points(X, col, table))
               for col, table in (self.fit_rules or {}).items()]
        out += [("engagement", col, np.minimum(self._table_points(X, col, table), cap))
                for col, table in (self.engagement_rules or {}).items()]
        return out

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["kind"] = "flat_points_rules"
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FlatRuleClassifier:
        if d.get("kind") != "flat_points_rules":
            raise ValueError("not a flat points-rule record (kind != 'flat_points_rules')")
        return PointsRuleClassifier.from_dict.__func__(cls, {**d, "kind": "points_rules"})
