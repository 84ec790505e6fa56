"""The conversion model (LightGBM) and the simple-model check (logistic regression).

Both are scikit-learn classifiers over the catalog's feature columns, in catalog order:

- `LightGBMClassifier`: native categoricals (pandas `category` dtype, categories fixed from
  the training data; a value unseen in training becomes missing), early stopping on the
  validation slice, deterministic (`deterministic`, `force_row_wise`, fixed `num_threads`
  and `seed`: the same data and seed give bit-identical predictions). With `additive=True`
  every feature is its own interaction-constraint group, so each tree splits on a single
  feature: the model is a sum of one-feature shape functions (a GAM), whose exact TreeSHAP
  values are per-tree table look-ups (see leadscore.explain.contributions).
- `LogisticClassifier`: an L2-regularised logistic regression in a sklearn Pipeline
  (numeric: signed log1p, median imputation with missing indicators, scaling; categorical:
  one-hot, unseen values ignored).
- `CalibratedModel`: a ranker plus a `Calibrator` (raw score -> probability).

Persistence is safe formats only (no pickle): the booster as LightGBM's text model, the
logistic regression as its fitted medians/means/scales/categories/coefficients in JSON, the
calibrator and metadata as JSON (`save_model` / `load_model`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from leadscore.errors import ConfigError, GuardError
from leadscore.features.catalog import FeatureCatalog
from leadscore.io import atomic_path, read_json, write_json
from leadscore.modeling.calibration import Calibrator

log = logging.getLogger(__name__)


class TooFewPositivesError(GuardError):
    """The training slice holds too few positive labels to train a model."""


def check_positives(n_positives: int, min_positives: int, slice_name: str = "training") -> None:
    """Raise `TooFewPositivesError` with the counts when below the minimum."""
    if n_positives < min_positives:
        raise TooFewPositivesError(
            f"{n_positives} positive labels in the {slice_name} slice; at least {min_positives} "
            f"are needed (train_model.min_positives). Widen the as_of window, lower "
            f"train_model.min_positives, or set train_model.fallback_to_rules: true."
        )


def model_features(df: pd.DataFrame, catalog: FeatureCatalog) -> tuple[list[str], list[str]]:
    """(feature names, categorical names): the catalog's features present in `df`, in catalog
    order. Catalog features missing from the table are dropped with a warning; none present
    is an error."""
    names = [n for n in catalog.names if n in df.columns]
    missing = [n for n in catalog.names if n not in df.columns]
    if missing:
        log.warning("%d catalog feature(s) are not in the training table and are skipped: %s",
                    len(missing), ", ".join(missing[:20]))
    if not names:
        raise ValueError("none of the feature catalog's columns is in the training table")
    return names, [n for n in catalog.categorical if n in names]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _check_columns(X: pd.DataFrame, names: list[str]) -> None:
    missing = [c for c in names if c not in X.columns]
    if missing:
        raise ValueError(f"{len(missing)} feature column(s) missing from the input: {missing[:10]}")


def to_model_frame(X: pd.DataFrame, numeric: list[str], categories: dict[str, list[str]],
                   order: list[str]) -> pd.DataFrame:
    """Feature columns in `order`: categoricals as `category` with fixed categories, the rest
    float64. Values outside the fixed categories become missing."""
    _check_columns(X, order)
    out = {}
    for col in order:
        if col in categories:
            vals = X[col].astype(object).where(X[col].notna(), None)
            out[col] = pd.Categorical(vals, categories=categories[col])
        else:
            out[col] = pd.to_numeric(X[col], errors="coerce").astype("float64")
    return pd.DataFrame(out, index=X.index)


def additive_constraints(n_features: int) -> list[list[int]]:
    """LightGBM `interaction_constraints` with one feature per group: a branch may only
    combine features of one group, and the root is on every branch, so every tree splits on
    a single feature."""
    return [[i] for i in range(n_features)]


def constraint_params(feature_names: list[str], *, additive: bool,
                      monotone_increasing: tuple[str, ...] = ()) -> dict:
    """LightGBM's structural constraints: single-feature trees (`additive`) and features
    whose contribution may never fall as their value rises (`monotone_increasing`)."""
    params: dict = {}
    if additive:
        params["interaction_constraints"] = additive_constraints(len(feature_names))
    if monotone_increasing:
        unknown = sorted(set(monotone_increasing) - set(feature_names))
        if unknown:
            raise ConfigError(f"train_model.monotone_increasing: {unknown} are not model features")
        params["monotone_constraints"] = [int(n in monotone_increasing) for n in feature_names]
    return params


def base_lgb_params(seed: int, num_threads: int) -> dict:
    """Fixed LightGBM settings: binary log loss, deterministic, quiet."""
    return {
        "objective": "binary",
        "metric": "binary_logloss",
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": num_threads,
        "seed": seed,
        "verbosity": -1,
        "feature_pre_filter": False,
    }


class LightGBMClassifier(ClassifierMixin, BaseEstimator):
    """LightGBM on catalog features with native categoricals and early stopping."""

    def __init__(self, feature_names: list[str] | None = None,
                 categorical_features: list[str] | None = None, params: dict | None = None,
                 max_boost_rounds: int = 2000, early_stopping_rounds: int = 50, seed: int = 0,
                 num_threads: int = 1, additive: bool = False,
                 monotone_increasing: tuple[str, ...] = ()):
        self.feature_names = feature_names
        self.categorical_features = categorical_features
        self.params = params
        self.max_boost_rounds = max_boost_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.num_threads = num_threads
        self.additive = additive
        self.monotone_increasing = monotone_increasing

    @classmethod
    def from_catalog(cls, catalog: FeatureCatalog, **kw) -> LightGBMClassifier:
        return cls(feature_names=catalog.names, categorical_features=catalog.categorical, **kw)

    def _lgb_params(self) -> dict:
        return {**base_lgb_params(self.seed, self.num_threads), **(self.params or {}),
                **constraint_params(self.feature_names_, additive=self.additive,
                                    monotone_increasing=tuple(self.monotone_increasing or ()))}

    def model_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """X as the booster sees it: catalog order, fixed categories (for SHAP, pred_contrib)."""
        numeric = [c for c in self.feature_names_ if c not in self.categories_]
        return to_model_frame(X, numeric, self.categories_, self.feature_names_)

    def prepare_datasets(self, X: pd.DataFrame, y, eval_set=None,
                         sample_weight=None) -> tuple[lgb.Dataset, lgb.Dataset | None]:
        """Fix the feature order and categories from `X`; return LightGBM datasets (train,
        with `sample_weight` when given; valid or None, unweighted). The tuner builds them
        once and reuses them across trials."""
        names = list(self.feature_names or [c for c in X.columns])
        cats = list(self.categorical_features or [])
        _check_columns(X, names)
        y = np.asarray(y).astype(int)
        if len(np.unique(y)) < 2:
            raise ValueError("the training labels hold a single class")
        self.feature_names_ = names
        self.categories_ = {
            c: sorted(X[c].dropna().astype(str).unique().tolist()) for c in cats if c in names
        }
        weight = None if sample_weight is None else _check_weights(sample_weight, len(y))
        train = lgb.Dataset(self.model_frame(X), label=y, weight=weight,
                            categorical_feature=list(self.categories_), free_raw_data=False)
        valid = None
        if eval_set is not None:
            Xv, yv = eval_set
            valid = lgb.Dataset(self.model_frame(Xv), label=np.asarray(yv).astype(int), reference=train,
                                free_raw_data=False)
        return train, valid

    def fit(self, X: pd.DataFrame, y, eval_set: tuple[pd.DataFrame, np.ndarray] | None = None,
            callbacks: list | None = None, sample_weight=None) -> LightGBMClassifier:
        """Train (rows weighted by `sample_weight` when given); with `eval_set` (the
        validation slice, unweighted) stop early on its log loss, else boost
        `max_boost_rounds` rounds."""
        train, valid = self.prepare_datasets(X, y, eval_set, sample_weight=sample_weight)
        valid_sets = [valid] if valid is not None else []
        cbs = list(callbacks or [])
        if valid is not None:
            cbs.append(lgb.early_stopping(self.early_stopping_rounds, verbose=False))
        self.booster_ = lgb.train(self._lgb_params(), train, num_boost_round=self.max_boost_rounds,
                                  valid_sets=valid_sets, valid_names=["valid"][: len(valid_sets)],
                                  callbacks=cbs)
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.current_iteration())
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Raw log-odds."""
        return self.booster_.predict(self.model_frame(X), num_iteration=self.best_iteration_,
                                     raw_score=True)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = _sigmoid(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def feature_importance(self) -> pd.DataFrame:
        """Gain and split importance per feature, largest gain first."""
        return pd.DataFrame({
            "feature": self.feature_names_,
            "gain": self.booster_.feature_importance("gain", iteration=self.best_iteration_),
            "split": self.booster_.feature_importance("split", iteration=self.best_iteration_),
        }).sort_values("gain", ascending=False, ignore_index=True)

    def to_dict(self) -> dict:
        """Everything but the booster (saved as LightGBM text)."""
        return {"kind": "lightgbm", "params": self.get_params(), "feature_names": self.feature_names_,
                "categories": self.categories_, "best_iteration": self.best_iteration_}

    @classmethod
    def from_parts(cls, d: dict, model_str: str) -> LightGBMClassifier:
        est = cls(**d["params"])
        est.feature_names_ = list(d["feature_names"])
        est.categories_ = {k: list(v) for k, v in d["categories"].items()}
        est.best_iteration_ = int(d["best_iteration"])
        est.booster_ = lgb.Booster(model_str=model_str)
        est.classes_ = np.array([0, 1])
        return est


def _check_weights(sample_weight, n: int) -> np.ndarray:
    w = np.asarray(sample_weight, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"sample_weight has shape {w.shape}; expected ({n},)")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("sample_weight must be finite, non-negative and not all zero")
    return w


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


class LogisticClassifier(ClassifierMixin, BaseEstimator):
    """Regularised logistic regression: the simple-model check."""

    def __init__(self, feature_names: list[str] | None = None,
                 categorical_features: list[str] | None = None, C: float = 0.1,
                 max_iter: int = 2000):
        self.feature_names = feature_names
        self.categorical_features = categorical_features
        self.C = C
        self.max_iter = max_iter

    @classmethod
    def from_catalog(cls, catalog: FeatureCatalog, **kw) -> LogisticClassifier:
        return cls(feature_names=catalog.names, categorical_features=catalog.categorical, **kw)

    def _split_cols(self, X: pd.DataFrame) -> tuple[list[str], list[str]]:
        names = list(self.feature_names or X.columns)
        cats = [c for c in (self.categorical_features or []) if c in names]
        return [c for c in names if c not in cats], cats

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> LogisticClassifier:
        """Fit the pipeline; `sample_weight` weighs the rows in the regression (imputation
        and scaling statistics stay unweighted)."""
        num, cat = self._split_cols(X)
        _check_columns(X, num + cat)
        y = np.asarray(y).astype(int)
        if len(np.unique(y)) < 2:
            raise ValueError("the training labels hold a single class")
        pre = ColumnTransformer([
            ("num", make_pipeline(FunctionTransformer(_signed_log1p),
                                  SimpleImputer(strategy="median", add_indicator=True,
                                                keep_empty_features=True),
                                  StandardScaler()), num),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cat),
        ])
        self.pipeline_ = Pipeline([
            ("pre", pre), ("lr", LogisticRegression(C=self.C, max_iter=self.max_iter))])
        fit_kw = ({} if sample_weight is None
                  else {"lr__sample_weight": _check_weights(sample_weight, len(y))})
        self.pipeline_.fit(self._inputs(X, num, cat), y, **fit_kw)
        self.numeric_, self.categorical_ = num, cat
        self.classes_ = np.array([0, 1])
        return self

    @staticmethod
    def _inputs(X: pd.DataFrame, num: list[str], cat: list[str]) -> pd.DataFrame:
        out = {c: pd.to_numeric(X[c], errors="coerce").astype("float64") for c in num}
        out.update({c: X[c].astype(object).where(X[c].notna(), "unknown").astype(str) for c in cat})
        return pd.DataFrame(out, index=X.index)[num + cat]

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        if hasattr(self, "pipeline_"):
            return self.pipeline_.decision_function(self._inputs(X, self.numeric_, self.categorical_))
        return self._json_decision(X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = _sigmoid(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    # JSON form: the fitted pipeline as numbers, applied with numpy.
    def to_dict(self) -> dict:
        if hasattr(self, "state_"):
            return {"kind": "logistic", "params": self.get_params(), **self.state_}
        pre = self.pipeline_.named_steps["pre"]
        ohe = pre.named_transformers_["cat"]
        lr = self.pipeline_.named_steps["lr"]
        num = {"medians": [], "indicator_features": [], "mean": [], "scale": []}
        if self.numeric_:  # with no numeric column the ColumnTransformer never fits "num"
            num_pipe = pre.named_transformers_["num"]
            imp, sc = num_pipe.named_steps["simpleimputer"], num_pipe.named_steps["standardscaler"]
            ind = imp.indicator_.features_.tolist() if imp.indicator_ is not None else []
            num = {"medians": imp.statistics_.tolist(), "indicator_features": ind,
                   "mean": sc.mean_.tolist(), "scale": sc.scale_.tolist()}
        return {
            "kind": "logistic", "params": self.get_params(),
            "numeric": self.numeric_, "categorical": self.categorical_, **num,
            "categories": [c.tolist() for c in ohe.categories_] if self.categorical_ else [],
            "coef": lr.coef_[0].tolist(), "intercept": float(lr.intercept_[0]),
        }

    @classmethod
    def from_dict(cls, d: dict) -> LogisticClassifier:
        est = cls(**d["params"])
        est.state_ = {k: v for k, v in d.items() if k not in ("kind", "params")}
        est.numeric_, est.categorical_ = list(d["numeric"]), list(d["categorical"])
        est.classes_ = np.array([0, 1])
        return est

    def _json_decision(self, X: pd.DataFrame) -> np.ndarray:
        s = self.state_
        inp = self._inputs(X, self.numeric_, self.categorical_)
        xn = _signed_log1p(inp[self.numeric_].to_numpy(dtype=float))
        miss = np.isnan(xn)
        xn = np.where(miss, np.asarray(s["medians"]), xn)
        xn = np.column_stack([xn, miss[:, s["indicator_features"]].astype(float)])
        parts = [(xn - np.asarray(s["mean"])) / np.asarray(s["scale"])]
        for col, cats in zip(self.categorical_, s["categories"], strict=True):
            v = inp[col].to_numpy()
            parts.append(np.column_stack([(v == c).astype(float) for c in cats]))
        return np.hstack(parts) @ np.asarray(s["coef"]) + s["intercept"]


class CalibratedModel:
    """A ranker (LightGBM or logistic) plus its calibrator; `predict_proba` is calibrated."""

    def __init__(self, model: LightGBMClassifier | LogisticClassifier, calibrator: Calibrator,
                 metadata: dict | None = None):
        self.model = model
        self.calibrator = calibrator
        self.metadata = metadata or {}
        self.classes_ = np.array([0, 1])

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return self.model.decision_function(X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.calibrator.predict(self.decision_function(X))
        return np.column_stack([1 - p, p])


def save_model(model: CalibratedModel, folder: str | Path) -> None:
    """Write `folder/` atomically: model.txt (LightGBM text) or model.json (logistic),
    calibrator.json, metadata.json."""
    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        inner = model.model
        if isinstance(inner, LightGBMClassifier):
            (tmp / "model.txt").write_text(inner.booster_.model_to_string(
                num_iteration=inner.best_iteration_))
            write_json(inner.to_dict(), tmp / "estimator.json")
        else:
            write_json(inner.to_dict(), tmp / "model.json")
        write_json(model.calibrator.to_dict(), tmp / "calibrator.json")
        write_json(model.metadata, tmp / "metadata.json")


def save_fallback(folder: str | Path, reason: str) -> None:
    """Mark `folder` as "no model: fall back to the rule baseline" (too little data)."""
    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        write_json({"status": "fallback_to_rules", "reason": reason}, tmp / "metadata.json")


def is_fallback(folder: str | Path) -> bool:
    """True when `folder` holds a fallback marker instead of a model."""
    meta = Path(folder) / "metadata.json"
    return meta.exists() and read_json(meta).get("status") == "fallback_to_rules"


def load_model(folder: str | Path) -> CalibratedModel:
    """Inverse of `save_model`."""
    folder = Path(folder)
    if not (folder / "calibrator.json").exists():
        raise FileNotFoundError(f"{folder}: no saved model (calibrator.json missing)")
    if (folder / "model.txt").exists():
        inner = LightGBMClassifier.from_parts(read_json(folder / "estimator.json"),
                                              (folder / "model.txt").read_text())
    else:
        inner = LogisticClassifier.from_dict(read_json(folder / "model.json"))
    return CalibratedModel(inner, Calibrator.from_dict(read_json(folder / "calibrator.json")),
                           read_json(folder / "metadata.json"))
