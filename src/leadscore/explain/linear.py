"""Exact additive contributions of the logistic-regression model (`LogisticClassifier`).

The logistic model's decision function (its log-odds) is linear in its transformed inputs
(`LogisticClassifier._json_decision`): per numeric feature, the signed log1p of the value
(missing -> the training median), standardised, plus, for a feature that had missing values
in training, its standardised missing indicator; per categorical feature, a one-hot column
per training category (an unseen value matches none). So

    log-odds = intercept + sum over terms of coef_t * z_t

and each term belongs to exactly one original feature. `LinearExplainer` returns, per row
and original feature, the sum of that feature's terms: contributions + `expected_value()`
(the intercept) == the decision function, exactly (up to float rounding, ~1e-15).

The reference ("zero contribution") this implies: a numeric feature contributes 0 at the
training mean of its standardised terms (so its contributions average 0 over the training
rows); a categorical feature contributes the coefficient of the lead's category, 0 for an
unseen one (with L2 and a free intercept the fitted coefficients of one feature's categories
sum to about zero, so 0 is the unweighted average category).

It offers what the code uses from `leadscore.explain.contributions.Explainer`: `for_model`,
`feature_names` (the model's features, catalog order), `model_input` (raw feature frame ->
the matrix of terms), `contributions(X, raw=...)`, `expected_value()`, `raw_margin(X, raw=...)`
and `additive` (always True). `Explainer.for_model` returns it for a logistic model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def is_logistic(model) -> bool:
    """True for a fitted `LogisticClassifier` (its JSON record is of kind "logistic"). Duck
    typed, so this module needs no import of the estimators (nor their dependencies)."""
    if hasattr(model, "booster_") or not callable(getattr(model, "to_dict", None)):
        return False
    if not (hasattr(model, "pipeline_") or hasattr(model, "state_")):
        return False
    return model.to_dict().get("kind") == "logistic"


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    """As `leadscore.modeling.estimators` (the tests check the two agree to 1e-9)."""
    return np.sign(x) * np.log1p(np.abs(x))


class LinearExplainer:
    """Exact per-feature log-odds contributions of a fitted `LogisticClassifier`."""

    additive = True  # contributions + expected value == log-odds, always

    def __init__(self, model):
        if not is_logistic(model):
            raise TypeError(f"{type(model).__name__} is not a fitted logistic model")
        state = model.to_dict()  # the fitted pipeline as numbers (works before and after a reload)
        self.model = model
        self.numeric: list[str] = list(state["numeric"])
        self.categorical: list[str] = list(state["categorical"])
        present = set(self.numeric) | set(self.categorical)
        order = list(model.feature_names or []) or self.numeric + self.categorical
        self.feature_names: list[str] = [n for n in order if n in present]
        self.feature_names += [n for n in self.numeric + self.categorical if n not in self.feature_names]
        self.categories: dict[str, list[str]] = {
            c: [str(v) for v in cats] for c, cats in zip(self.categorical, state["categories"], strict=True)}
        self._medians = np.asarray(state["medians"], dtype=np.float64)
        self._indicators = np.asarray(state["indicator_features"], dtype=np.int64)
        self._mean = np.asarray(state["mean"], dtype=np.float64)
        self._scale = np.asarray(state["scale"], dtype=np.float64)
        self.coef = np.asarray(state["coef"], dtype=np.float64)
        self.intercept = float(state["intercept"])
        # the original feature of every term, in the terms' order (as `_json_decision`)
        pos = {n: j for j, n in enumerate(self.feature_names)}
        term_feature = [pos[n] for n in self.numeric]
        term_feature += [pos[self.numeric[i]] for i in self._indicators]
        for c in self.categorical:
            term_feature += [pos[c]] * len(self.categories[c])
        if len(term_feature) != len(self.coef):
            raise ValueError(f"logistic model record holds {len(self.coef)} coefficients for "
                             f"{len(term_feature)} terms")
        tf = np.asarray(term_feature, dtype=np.int64)
        self._order = np.argsort(tf, kind="stable")  # terms grouped by feature
        sorted_tf = tf[self._order]
        self._starts = np.flatnonzero(np.r_[True, sorted_tf[1:] != sorted_tf[:-1]]) if len(tf) else (
            np.zeros(0, dtype=np.int64))
        self._features = sorted_tf[self._starts] if len(tf) else np.zeros(0, dtype=np.int64)
        self.term_feature = tf

    @classmethod
    def for_model(cls, model, **_kw) -> LinearExplainer:
        """For a `LogisticClassifier` or a `CalibratedModel` wrapping one."""
        return cls(getattr(model, "model", model))

    # ---- input ------------------------------------------------------------------------
    def model_input(self, X: pd.DataFrame) -> np.ndarray:
        """A raw feature frame (as in the training table) -> the (n_rows, n_terms) matrix of
        the model's terms: standardised numeric values and missing indicators, then one-hot
        categories, in the coefficients' order."""
        missing = [n for n in self.feature_names if n not in X.columns]
        if missing:
            raise ValueError(f"{len(missing)} feature column(s) missing from the input: {missing[:10]}")
        # the model's own coercion (`LogisticClassifier._inputs`): numbers as float64,
        # categories as strings with missing -> "unknown"
        xn = np.column_stack([pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                              for c in self.numeric]) if self.numeric else np.zeros((len(X), 0))
        xn = _signed_log1p(xn)
        miss = np.isnan(xn)
        xn = np.where(miss, self._medians, xn)
        xn = np.column_stack([xn, miss[:, self._indicators].astype(np.float64)])
        parts = [(xn - self._mean) / self._scale]
        for col in self.categorical:
            cats = self.categories[col]
            values = X[col].astype(object).where(X[col].notna(), "unknown").astype(str)
            codes = pd.Categorical(values.to_numpy(), categories=cats).codes
            onehot = np.zeros((len(X), len(cats)), dtype=np.float64)
            hit = codes >= 0
            onehot[np.flatnonzero(hit), codes[hit]] = 1.0
            parts.append(onehot)
        return np.hstack(parts) if parts else np.zeros((len(X), 0))

    def _terms(self, X: pd.DataFrame | np.ndarray, raw: bool) -> np.ndarray:
        """`X` as the matrix of terms: a DataFrame is always raw feature rows."""
        if raw or isinstance(X, pd.DataFrame):
            return self.model_input(X)
        return np.asarray(X, dtype=np.float64)

    # ---- contributions ----------------------------------------------------------------
    def contributions(self, X: pd.DataFrame | np.ndarray, *, raw: bool = False) -> np.ndarray:
        """(n_rows, n_features) exact log-odds contributions, columns `feature_names`. `X`
        is the matrix of terms (`model_input`) or raw feature rows (a DataFrame, or `raw=True`)."""
        Z = self._terms(X, raw)
        out = np.zeros((len(Z), len(self.feature_names)), dtype=np.float64)
        if len(Z) and len(self._order):
            weighted = (Z * self.coef)[:, self._order]
            out[:, self._features] = np.add.reduceat(weighted, self._starts, axis=1)
        return out

    def raw_margin(self, X: pd.DataFrame | np.ndarray, *, raw: bool = False) -> np.ndarray:
        """The model's log-odds (its decision function)."""
        return self._terms(X, raw) @ self.coef + self.intercept

    def expected_value(self) -> float:
        """The base value: the intercept (every contribution is 0 at the reference)."""
        return self.intercept
