"""Exact SHAP contributions of the LightGBM model, fast.

`Explainer` returns, per row, one signed log-odds contribution per feature and a base value,
with ``contributions.sum(axis=1) + base_value == raw margin`` (the booster's log-odds). The
values are the path-dependent TreeSHAP values that `booster.predict(pred_contrib=True)` and
`shap.TreeExplainer(booster)` compute; nothing is approximated.

Two paths:

- **additive booster** (every tree splits on one feature, e.g. `train_model.additive`:
  LightGBM `interaction_constraints` with one feature per group). For a tree that uses only
  feature j, TreeSHAP gives feature j exactly ``leaf_value(x) - E[tree]``, where ``E[tree]``
  is the cover-weighted mean of its leaf values (leaf counts / root count, as LightGBM's
  `ExpectedValue`), and every other feature 0. A stump (no split) adds its constant to the
  base value. So the contributions are: the leaf index of every tree
  (`predict(pred_leaf=True)`, LightGBM routes missing values and categories itself), a
  look-up in one flat table of centred leaf values, and a sum over each feature's trees
  (`np.add.reduceat` over the trees sorted by feature). Vectorised numpy, chunked rows.
  Faster still (the default, `method="lookup"`): all trees of feature j together are one
  step function of x_j, constant between consecutive split thresholds of j. Its value on
  each interval, at NaN and at zero (LightGBM's two special values), and per category code,
  is computed once by sending probe rows through the tree tables above, so LightGBM's own
  routing (missing-value direction, zero-as-missing, category bitsets) defines it. A row
  then costs one `np.searchsorted` (numeric) or one index (categorical) per feature.
- **any other booster**: LightGBM's `pred_contrib` (TreeSHAP in C++, slower).

`Explainer.for_model` takes a `LightGBMClassifier` or a `CalibratedModel` around one and
builds its input exactly as the model does (`model_frame`: catalog order, fixed categories).
For the logistic-regression model (`LogisticClassifier`, or a `CalibratedModel` around one)
it returns a `leadscore.explain.linear.LinearExplainer`: the same interface, exact because
that model's log-odds are linear in its transformed inputs.
`feature_groups` lists the fit and engagement features a model uses, `group_sums` adds up
each group's contributions (the fit and engagement scores of the grade), and
`check_additivity` verifies ``contributions + base value == log-odds`` on a slice (the
explain stage runs it on the test slice).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from leadscore.explain.linear import LinearExplainer, is_logistic
from leadscore.modeling.baseline import SMALL_INPUT_ROWS

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class _Tables:
    """Look-up tables of an additive booster (see the module docstring)."""

    trees: np.ndarray  # indices of the non-stump trees, sorted by their split feature
    offsets: np.ndarray  # start of each of those trees' centred leaf values in `values`
    values: np.ndarray  # centred leaf values, all trees, flat
    starts: np.ndarray  # first position in `trees` of each feature's run of trees
    features: np.ndarray  # feature index of each run
    base_value: float


def _walk(node: dict, leaves: dict[int, tuple[float, int]], features: set[int]) -> None:
    """Collect {leaf_index: (value, count)} and the split features of one dumped tree."""
    stack = [node]
    while stack:
        n = stack.pop()
        if "split_index" in n:
            features.add(int(n["split_feature"]))
            stack.extend((n["left_child"], n["right_child"]))
        else:
            leaves[int(n.get("leaf_index", 0))] = (float(n["leaf_value"]), int(n.get("leaf_count", 0)))


def additive_tables(booster: lgb.Booster, num_iteration: int | None = None) -> _Tables | None:
    """The look-up tables when every tree of `booster` (up to `num_iteration`) splits on a
    single feature; None when some tree combines features."""
    dump = booster.dump_model(num_iteration=num_iteration)
    base = 0.0
    tree_feature: list[int] = []
    tree_index: list[int] = []
    tables: list[np.ndarray] = []
    for t, info in enumerate(dump["tree_info"]):
        root = info["tree_structure"]
        leaves: dict[int, tuple[float, int]] = {}
        feats: set[int] = set()
        _walk(root, leaves, feats)
        if not feats:  # a stump: a constant
            base += leaves[0][0]
            continue
        if len(feats) > 1:
            return None
        n_leaves = max(leaves) + 1
        value = np.zeros(n_leaves)
        count = np.zeros(n_leaves)
        for i, (v, c) in leaves.items():
            value[i], count[i] = v, c
        total = float(root.get("internal_count", count.sum()))
        expected = float(np.dot(value, count) / total)  # LightGBM's Tree::ExpectedValue
        base += expected
        tables.append(value - expected)
        tree_feature.append(feats.pop())
        tree_index.append(t)
    order = np.argsort(np.asarray(tree_feature, dtype=np.int64), kind="stable")
    feats_sorted = np.asarray(tree_feature, dtype=np.int64)[order]
    sizes = np.array([len(tables[i]) for i in order], dtype=np.int64)
    offsets = np.r_[0, np.cumsum(sizes)[:-1]] if len(sizes) else np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, feats_sorted[1:] != feats_sorted[:-1]]) if len(order) else (
        np.zeros(0, dtype=np.int64))
    return _Tables(
        trees=np.asarray(tree_index, dtype=np.int64)[order],
        offsets=offsets.astype(np.int64),
        values=np.concatenate([tables[i] for i in order]) if tables else np.zeros(0),
        starts=starts,
        features=feats_sorted[starts] if len(order) else np.zeros(0, dtype=np.int64),
        base_value=base,
    )


ZERO = 1e-35  # LightGBM's kZeroThreshold: |x| <= ZERO is "zero" (missing under MissingType::Zero)


@dataclass(frozen=True)
class _Lookup:
    """One feature's step function: phi_j(x) for any x (see the module docstring)."""

    j: int
    categorical: bool
    breaks: np.ndarray  # numeric: sorted split thresholds; categorical: unused
    values: np.ndarray  # numeric: per interval (len(breaks) + 1); categorical: per code
    nan_value: float
    zero_value: float  # numeric: at |x| <= ZERO; categorical: for a negative code
    out_of_range: float  # categorical: for a code >= len(values)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.categorical:
            ok = np.isfinite(x)
            code = np.where(ok, x, -1.0)
            inside = (code >= 0) & (code < len(self.values))
            out = np.where(code < 0, self.zero_value, self.out_of_range)
            out[inside] = self.values[code[inside].astype(np.int64)]
            out[~ok] = self.nan_value
            return out
        out = self.values[np.searchsorted(self.breaks, x, side="left")]
        out[np.isnan(x)] = self.nan_value
        out[np.abs(x) <= ZERO] = self.zero_value
        return out


def _split_points(booster_dump: dict, n_features: int) -> tuple[list[set], dict[int, set]]:
    """Numeric split thresholds per feature, and category codes per categorically split feature."""
    thresholds: list[set] = [set() for _ in range(n_features)]
    codes: dict[int, set] = {}
    for info in booster_dump["tree_info"]:
        stack = [info["tree_structure"]]
        while stack:
            n = stack.pop()
            if "split_index" not in n:
                continue
            f = int(n["split_feature"])
            if n.get("decision_type") == "==":
                codes.setdefault(f, set()).update(int(c) for c in str(n["threshold"]).split("||"))
            else:
                thresholds[f].add(float(n["threshold"]))
            stack.extend((n["left_child"], n["right_child"]))
    return thresholds, codes


def _probe_values(t: np.ndarray) -> np.ndarray:
    """One value inside each interval (-inf, t0], (t0, t1], ..., (t_last, inf)."""
    if not len(t):
        return np.array([1.0])
    lo = t[0] - max(1.0, abs(t[0]))
    mids = np.where(np.isfinite((t[:-1] + t[1:]) / 2), (t[:-1] + t[1:]) / 2, t[1:])
    inside = (mids > t[:-1]) & (mids <= t[1:])
    mids = np.where(inside, mids, t[1:])  # adjacent floats: the right end is in the interval
    hi = t[-1] + max(1.0, abs(t[-1]))
    return np.r_[lo, mids, hi]


class Explainer:
    """Exact per-feature log-odds contributions of a LightGBM booster.

    `contributions(X)` takes the booster's input (a DataFrame in the booster's column order
    with pandas categoricals, or a numeric matrix with category codes) and returns an
    (n_rows, n_features) float64 matrix; `base_value` is the constant part of the log-odds.
    For an additive booster `method="lookup"` (default) uses the per-feature step functions
    and `method="trees"` the per-tree tables (both exact); `use_tables=False` forces
    LightGBM's `pred_contrib`. `contributions(X, raw=True)` takes raw feature rows.
    """

    def __init__(self, booster: lgb.Booster, num_iteration: int | None = None,
                 feature_names: list[str] | None = None, *, use_tables: bool = True,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS, model=None, method: str = "lookup"):
        self.booster = booster
        self.num_iteration = num_iteration or booster.current_iteration()
        self.feature_names = list(feature_names or booster.feature_name())
        self.chunk_rows = int(chunk_rows)
        self._model = model  # optional LightGBMClassifier: builds the input from raw frames
        if method not in ("lookup", "trees"):
            raise ValueError(f"method must be 'lookup' or 'trees', got {method!r}")
        self._tables = additive_tables(booster, self.num_iteration) if use_tables else None
        self._lookups: list[_Lookup] | None = None
        if self._tables is not None:
            self.base_value = self._tables.base_value
            if method == "lookup":
                self._lookups = self._build_lookups()
        else:
            self.base_value = None  # from pred_contrib's last column, on first use

    @classmethod
    def for_model(cls, model, **kw) -> Explainer | LinearExplainer:
        """For a `LightGBMClassifier`, a `LogisticClassifier` (a
        `leadscore.explain.linear.LinearExplainer`, the same interface) or a `CalibratedModel`
        wrapping either. `kw` goes to the LightGBM explainer."""
        inner = getattr(model, "model", model)
        if is_logistic(inner):
            return LinearExplainer(inner)
        if not hasattr(inner, "booster_"):
            raise TypeError(f"{type(inner).__name__} is not a fitted LightGBM or logistic model: "
                            "only their contributions are explained")
        return cls(inner.booster_, inner.best_iteration_, inner.feature_names_, model=inner, **kw)

    @property
    def additive(self) -> bool:
        """True when the fast table path is used (every tree splits on one feature)."""
        return self._tables is not None

    # ---- input ------------------------------------------------------------------------
    def model_input(self, X: pd.DataFrame) -> np.ndarray:
        """A raw feature frame (as in the training table) -> the booster's float matrix:
        catalog order, categories as the codes LightGBM uses (unseen or missing -> NaN)."""
        if self._model is None:
            return self._matrix(X)
        cats = self._model.categories_
        missing = [n for n in self.feature_names if n not in X.columns]
        if missing:
            raise ValueError(f"{len(missing)} feature column(s) missing from the input: {missing[:10]}")
        out = np.empty((len(X), len(self.feature_names)), dtype=np.float64)
        for j, name in enumerate(self.feature_names):
            col = X[name]
            if name in cats:  # as model_frame: values outside the training categories -> missing
                values = col.to_numpy(dtype=object)
                if len(values) <= SMALL_INPUT_ROWS:  # one lead: a dict look-up beats an index
                    codes_of = self._category_codes(name)
                    out[:, j] = [codes_of.get(v, np.nan) for v in values]
                else:
                    codes = self._category_index(name).get_indexer(values)
                    out[:, j] = np.where(codes < 0, np.nan, codes)
            elif col.dtype == np.float64:
                out[:, j] = col.to_numpy()
            else:
                out[:, j] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def _category_codes(self, name: str) -> dict[str, int]:
        """The training categories of `name` -> LightGBM's code (as `_category_index`)."""
        cache = self.__dict__.setdefault("_category_codes_cache", {})
        if name not in cache:
            cache[name] = {v: i for i, v in enumerate(self._model.categories_[name])}
        return cache[name]

    def _category_index(self, name: str) -> pd.Index:
        """The training categories of `name` as an index (position = LightGBM's code)."""
        cache = self.__dict__.setdefault("_category_indexes", {})
        if name not in cache:
            cache[name] = pd.Index(self._model.categories_[name], dtype=object)
        return cache[name]

    def _matrix(self, frame: pd.DataFrame | np.ndarray) -> np.ndarray:
        if not isinstance(frame, pd.DataFrame):
            return np.asarray(frame, dtype=np.float64)
        cats = iter(self.booster.pandas_categorical or [])
        cols = []
        for name in self.feature_names:
            col = frame[name]
            if isinstance(col.dtype, pd.CategoricalDtype):
                codes = pd.Categorical(col.astype(object), categories=next(cats)).codes
                cols.append(np.where(codes < 0, np.nan, codes).astype(np.float64))
            else:
                cols.append(col.to_numpy(dtype=np.float64, na_value=np.nan))
        return np.column_stack(cols) if cols else np.zeros((len(frame), 0))

    # ---- contributions ----------------------------------------------------------------
    def contributions(self, X: pd.DataFrame | np.ndarray, *, raw: bool = False) -> np.ndarray:
        """(n_rows, n_features) exact log-odds contributions. `X` is the booster's input
        (`model_frame` output or matrix); with `raw=True` a raw feature frame."""
        Xm = self.model_input(X) if raw else self._matrix(X)
        out = np.empty((len(Xm), len(self.feature_names)), dtype=np.float64)
        for lo in range(0, len(Xm), self.chunk_rows):
            hi = min(lo + self.chunk_rows, len(Xm))
            out[lo:hi] = self._chunk(Xm[lo:hi])
        return out

    def _build_lookups(self) -> list[_Lookup]:
        """Each used feature's step function, from probe rows sent through the tree tables."""
        n_feat = len(self.feature_names)
        thresholds, codes = _split_points(self.booster.dump_model(num_iteration=self.num_iteration), n_feat)
        n_cats: dict[int, int] = {}
        if self._model is not None and self.booster.pandas_categorical:
            cat_cols = [j for j, n in enumerate(self.feature_names) if n in self._model.categories_]
            n_cats = {j: len(c) for j, c in zip(cat_cols, self.booster.pandas_categorical, strict=False)}
        plans, probe_rows = [], []
        for j in sorted({j for j, t in enumerate(thresholds) if t} | set(codes)):
            if j in codes:
                k = max(n_cats.get(j, 0), max(codes[j]) + 1)
                probes = np.r_[np.arange(k, dtype=float), np.nan, -1.0, float(k)]
            else:
                probes = np.r_[_probe_values(np.array(sorted(thresholds[j]))), np.nan, 0.0]
            plans.append((j, probes, sum(len(p) for _, p in probe_rows)))
            probe_rows.append((j, probes))
        P = np.full((sum(len(p) for _, p in probe_rows), n_feat), np.nan)
        r = 0
        for j, probes in probe_rows:
            P[r:r + len(probes), j] = probes
            r += len(probes)
        phi = self._tree_chunk(P)
        out = []
        for j, probes, start in plans:
            v = phi[start:start + len(probes), j]
            if j in codes:
                out.append(_Lookup(j, True, np.zeros(0), v[:-3].copy(), float(v[-3]), float(v[-2]),
                                   float(v[-1])))
            else:
                out.append(_Lookup(j, False, np.array(sorted(thresholds[j])), v[:-2].copy(),
                                   float(v[-2]), float(v[-1]), float("nan")))
        return out

    def _chunk(self, X: np.ndarray) -> np.ndarray:
        if self._lookups is not None:
            out = np.zeros((len(X), len(self.feature_names)), dtype=np.float64)
            for lk in self._lookups:
                out[:, lk.j] = lk(X[:, lk.j])
            return out
        return self._tree_chunk(X)

    def _tree_chunk(self, X: np.ndarray) -> np.ndarray:
        if self._tables is None:
            c = self.booster.predict(X, num_iteration=self.num_iteration, pred_contrib=True)
            self.base_value = float(c[0, -1]) if len(c) else self.base_value
            return c[:, :-1]
        t = self._tables
        out = np.zeros((len(X), len(self.feature_names)), dtype=np.float64)
        if not len(t.trees) or not len(X):
            return out
        leaves = self.booster.predict(X, num_iteration=self.num_iteration, pred_leaf=True)
        leaves = np.asarray(leaves, dtype=np.int64).reshape(len(X), -1)
        vals = t.values[leaves[:, t.trees] + t.offsets]
        out[:, t.features] = np.add.reduceat(vals, t.starts, axis=1)
        return out

    def raw_margin(self, X: pd.DataFrame | np.ndarray, *, raw: bool = False) -> np.ndarray:
        """The booster's log-odds (for additivity checks)."""
        Xm = self.model_input(X) if raw else self._matrix(X)
        return self.booster.predict(Xm, num_iteration=self.num_iteration, raw_score=True)

    def expected_value(self) -> float:
        """The base value (computes one pred_contrib row for a non-additive booster)."""
        if self.base_value is None:
            row = np.full((1, len(self.feature_names)), np.nan)
            self.base_value = float(self.booster.predict(row, num_iteration=self.num_iteration,
                                                         pred_contrib=True)[0, -1])
        return float(self.base_value)


def feature_groups(catalog, feature_names: list[str], names: tuple[str, ...] = ("fit", "engagement")
                   ) -> dict[str, list[str]]:
    """{group: its catalog features that the model uses}, in catalog order (`catalog` is a
    `leadscore.features.catalog.FeatureCatalog`)."""
    used = set(feature_names)
    return {g: [n for n in catalog.group(g) if n in used] for g in names}


def group_sums(contrib: np.ndarray, feature_names: list[str], groups: dict[str, list[str]]
               ) -> dict[str, np.ndarray]:
    """Per group (e.g. "fit", "engagement"), the row-wise sum of its features' contributions.
    Features of a group that the model does not use are ignored."""
    pos = {n: i for i, n in enumerate(feature_names)}
    return {g: contrib[:, [pos[n] for n in names if n in pos]].sum(axis=1)
            for g, names in groups.items()}


ADDITIVITY_TOLERANCE = 1e-6


def check_additivity(contrib: np.ndarray, base_value: float, margin: np.ndarray, *,
                     tol: float = ADDITIVITY_TOLERANCE) -> float:
    """The largest |contributions + base value - log-odds| over the rows; `RuntimeError`
    when it exceeds `tol` (the contributions would not explain the model's decision)."""
    error = float(np.max(np.abs(contrib.sum(axis=1) + base_value - margin)))
    if error > tol:
        raise RuntimeError(f"contributions do not add up to the model's log-odds (max error {error:.2e})")
    return error
