"""A points table learned from the additive LightGBM model: `learn_points`.

An additive booster (`train_model.additive`: every tree splits on one feature) is a sum of
one-feature step functions, and `leadscore.explain.contributions.Explainer` holds each of
them exactly (`_Lookup`: log-odds contribution per interval, at NaN, per category code).
`learn_points` turns them into the integer points table a marketing-automation tool takes:

- **numeric field**: the step function's intervals, weighted by the rows of `X` that fall in
  each, merged into at most `max_bands` ordered bands. Empty intervals go first; then, while
  there are too many, the adjacent pair whose merge adds the least squared log-odds error
  (Ward: n1 n2 / (n1 + n2) (c1 - c2)^2, so a thin band merges before a thick one with the
  same contribution gap) merges into its row-weighted mean; finally adjacent bands with
  equal points merge. A cut point is the roundest number between the largest value of `X`
  at or below LightGBM's threshold and the smallest above it (e.g. 1 for counts 0 | 1), so
  the table routes every value of `X` exactly as the booster does. Missing values get their
  own "missing" line when `X` has some and their points differ from 0.
- **categorical field**: points per level, best first; levels held by less than
  `min_level_share` of `X` (and unseen or unmatchable ones) are "other". Other is the
  reference: 0 points, so a value the table does not list scores 0, as in a hand-written
  table (when `X` has no "other" rows, the most common level is the reference; it and every
  level with 0 points are not listed).
- **points** = round(points_per_doubling * (contribution - reference) / ln 2): with the
  default 20, **20 points double the odds** (10 points: x1.41). The reference of a numeric
  field is its most common band, which scores 0. The shifts add up to `intercept_log_odds`
  (log-odds ~= intercept + points * ln 2 / 20); they change no ranking. Fields whose points are all 0 are dropped.
- **grade bands** (fit A/B/C, engagement 1/2/3): minimum points at the quantiles of the
  calibration slice's fit / engagement points that give the `explain` shares (15/25/30/30%
  by default), as the model's grade cut points.
- **MQL threshold at capacity**: the smallest points value at which no more than
  `capacity` leads per period (as_of month: `evaluate.reps * evaluate.leads_per_rep`) pass
  on average over the calibration slice's periods; without periods (flat exports), the
  smallest value passing at most `mql_share` of the calibration rows.

The result is a `LearnedPointsClassifier`: a `leadscore.flat.rules.FlatRuleClassifier` (the
condition-table points rules; `fit` is the isotonic points -> probability map on the
calibration slice, grades and MQL as every `PointsRuleClassifier`) whose tables were learned,
so evaluate, explain, the scorer's rules kind and the report treat it as the rules. JSON with
`to_dict` / `from_dict` (kind "learned_points"); `points_csv` and `points_yaml` export it.

**Export shape** (`points_yaml`): the flat mapping's ``rules:`` block
(`leadscore.flat.mapping.RulesMapping`), the general form of the hand-written `train_rules`
table: ``fit`` / ``engagement`` map a field to ``{condition: points}`` where a condition is a
category value (``c_level: 12``, like `train_rules.fit_points`), a band (``"<1"``,
``"1..3"`` = 1 <= x < 3, ``">=3"``) or ``missing``; the first matching condition scores, no
match scores 0; then ``fit_bands``, ``engagement_bands``, ``mql_threshold``. It can be pasted
as ``rules:`` into a flat mapping. `points_csv`: one row per line, columns field, group,
label, condition, points (``(other)``: any value not listed, 0 points).

**The `points` stage** (`points_release`, also run by `benchmarks/points_table.py`): learns the
table from the shipped LightGBM on pre-test rows only (train: bands; calib: grade bands, MQL
threshold, calibration), then `measure_points` on the out-of-time test slice: ROC-AUC of the
table, of its model and of the hand-written rules with lead-grouped bootstrap CIs, and what
the MQL threshold hands over a month (metrics/points.json); `write_points` writes the YAML
and CSV. A model without a table (not additive, or a fallback) gives ``available: false``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from leadscore.errors import InputError
from leadscore.explain.contributions import Explainer
from leadscore.explain.grades import DEFAULT_SHARES, DIGITS, LETTERS, quantile_cuts
from leadscore.features.catalog import FeatureCatalog
from leadscore.flat.mapping import parse_condition
from leadscore.flat.rules import FlatRuleClassifier
from leadscore.io import atomic_path

log = logging.getLogger(__name__)

POINTS_PER_DOUBLING = 20
MAX_BANDS = 5
MIN_LEVEL_SHARE = 0.01
MQL_SHARE = 0.10
OTHER = "(other)"  # the CSV's line for any value a categorical field does not list


class NotAdditiveError(ValueError):
    """The model is not additive (or not LightGBM): it has no points table."""


# ---- numbers a person can read ---------------------------------------------------------
def _fmt(x: float) -> str:
    """A plain decimal (no exponent), as the condition syntax reads it."""
    s = f"{x:.10f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def nice_cut(a: float, b: float) -> float:
    """The roundest number c with a < c <= b (steps 10^k, then 5 x 10^(k-1), ...)."""
    if not b > a:
        raise ValueError(f"nice_cut needs a < b, got {a}, {b}")
    top = math.floor(math.log10(max(abs(a), abs(b), 1e-9))) + 1
    for k in range(top, -10, -1):
        for step in (10.0 ** k, 5 * 10.0 ** (k - 1)):
            c = math.floor(a / step) * step + step  # smallest multiple of step above a
            c = round(c, 10)
            if a < c <= b:
                return c
    return b


# ---- the table -------------------------------------------------------------------------
def _ward_merge(n: list[float], s: list[float], keep: int) -> list[list[int]]:
    """Merge adjacent segments (counts n, contribution sums s) down to `keep`: empty ones
    first, then the pair adding the least squared error. Returns the interval indices of
    each merged segment."""
    segs = [[i] for i in range(len(n))]
    n, s = list(n), list(s)

    def merge(i: int) -> None:
        segs[i] += segs.pop(i + 1)
        n[i] += n.pop(i + 1)
        s[i] += s.pop(i + 1)

    while len(segs) > 1 and any(c == 0 for c in n):
        i = next(k for k, c in enumerate(n) if c == 0)
        merge(i if i + 1 < len(segs) else i - 1)
    while len(segs) > keep:
        costs = [n[i] * n[i + 1] / (n[i] + n[i + 1]) * (s[i] / n[i] - s[i + 1] / n[i + 1]) ** 2
                 for i in range(len(segs) - 1)]
        merge(int(np.argmin(costs)))
    return segs


def _numeric_field(lk, x: np.ndarray, scale: float, max_bands: int) -> dict | None:
    """Bands [{lo, hi, points}] (lo inclusive, hi exclusive, None = open) and missing points."""
    miss = np.isnan(x)
    xv = x[~miss]
    contrib = lk(x.copy())
    breaks = lk.breaks
    idx = np.searchsorted(breaks, xv, side="left")  # LightGBM: x <= threshold goes left
    k = len(breaks) + 1
    n = np.bincount(idx, minlength=k).astype(float)
    s = np.bincount(idx, weights=contrib[~miss], minlength=k)
    if not len(xv):  # no values: the model's own step values, equal weights
        n, s = np.ones(k), np.asarray(lk.values, dtype=float).copy()
    segs = _ward_merge(n.tolist(), s.tolist(), max_bands)
    seg_n = [sum(n[i] for i in g) for g in segs]
    seg_c = [sum(s[i] for i in g) / max(sum(n[i] for i in g), 1e-12) for g in segs]
    miss_n = float(miss.sum())
    miss_c = float(contrib[miss].mean()) if miss_n else float(lk.nan_value)
    ref = seg_c[int(np.argmax(seg_n))]  # the most common band scores 0
    pts = [int(round(scale * (c - ref))) for c in seg_c]
    # adjacent bands with equal points are one band
    groups, gpts = [segs[0]], [pts[0]]
    for g, p in zip(segs[1:], pts[1:], strict=True):
        if p == gpts[-1]:
            groups[-1] = groups[-1] + g
        else:
            groups.append(g)
            gpts.append(p)
    bands = []
    for i, (g, p) in enumerate(zip(groups, gpts, strict=True)):
        lo = bands[-1]["hi"] if bands else None
        hi = None
        if i + 1 < len(groups):
            t = float(breaks[g[-1]])  # the threshold between this band and the next
            below, above = xv[xv <= t], xv[xv > t]
            a = float(below.max()) if len(below) else t - 1e-9
            b = float(above.min()) if len(above) else t + 1e-9
            hi = nice_cut(a, b)
        bands.append({"lo": lo, "hi": hi, "points": p})
    # a "missing" line only when X has missing values (else LightGBM's routing of a value
    # it never saw missing, as zero, would read as a deliberate rule)
    missing = int(round(scale * (miss_c - ref))) if miss_n else 0
    if all(b["points"] == 0 for b in bands) and missing == 0:
        return None
    return {"kind": "numeric", "bands": bands, "missing": missing, "ref_log_odds": float(ref)}


def _categorical_field(lk, codes: np.ndarray, levels: list[str], scale: float,
                       min_share: float) -> dict | None:
    """Points per level; rare, unseen and unmatchable levels are "other" (0 points)."""
    n_rows = max(len(codes), 1)
    contrib = lk(codes.astype(float).copy())
    ok = np.isfinite(codes) & (codes >= 0)
    counts = np.bincount(codes[ok].astype(np.int64), minlength=len(levels))[:len(levels)]
    keep, seen = {}, set()
    for j in np.argsort(-counts, kind="stable"):
        level = levels[j]
        try:
            kind, key = parse_condition(level)
        except ValueError:
            kind, key = None, None
        if counts[j] / n_rows < min_share or kind != "value" or not key or key == "missing" \
                or key in seen:
            continue
        seen.add(key)
        keep[int(j)] = level
    in_other = ~np.isin(np.where(ok, codes, -1), list(keep)) if keep else np.ones(len(codes), bool)
    miss = ~ok
    miss_share = miss.mean() if len(codes) else 0.0
    explicit_missing = miss_share >= min_share
    other_rows = in_other & ~(miss if explicit_missing else np.zeros_like(miss))
    level_c = {j: float(lk.values[j]) if j < len(lk.values) else float(lk.nan_value) for j in keep}
    if other_rows.any():
        other_c = float(contrib[other_rows].mean())
    elif keep:  # no other rows: the most common level is the reference
        other_c = level_c[next(iter(keep))]
    else:
        other_c = float(lk.nan_value)
    level_pts = {}
    for j, level in sorted(keep.items(), key=lambda kv: -level_c[kv[0]]):
        p = int(round(scale * (level_c[j] - other_c)))
        if p:
            level_pts[level] = p
    missing = int(round(scale * (float(lk.nan_value) - other_c))) if explicit_missing else 0
    if not level_pts and not missing:
        return None
    return {"kind": "categorical", "levels": level_pts, "missing": missing,
            "ref_log_odds": other_c}


def _conditions(field: dict) -> dict[str, int]:
    """A field's {condition: points} in the flat `rules:` syntax, first match first."""
    out: dict[str, int] = {}
    if field["missing"]:
        out["missing"] = field["missing"]
    if field["kind"] == "categorical":
        out.update(field["levels"])
        return out
    if len(field["bands"]) == 1:  # one band (the reference, 0 points): only missing scores
        return out
    for b in field["bands"]:
        lo, hi = b["lo"], b["hi"]
        cond = (f"<{_fmt(hi)}" if lo is None else f">={_fmt(lo)}" if hi is None
                else f"{_fmt(lo)}..{_fmt(hi)}")
        out[cond] = b["points"]
    return out


def _threshold_at_capacity(points: np.ndarray, period, capacity: int | None, share: float) -> int:
    """Smallest integer T whose rows with points >= T are at most `capacity` per period on
    average (or at most `share` of the rows when there are no periods)."""
    pts = np.asarray(points, dtype=float)
    cands = np.unique(np.r_[np.ceil(pts), np.ceil(pts.max()) + 1])
    if period is not None and capacity:
        n_periods = max(len(pd.unique(np.asarray(period))), 1)
        limit = capacity * n_periods
    else:
        limit = share * len(pts)
    for t in cands:
        if (pts >= t).sum() <= limit:
            return int(t)
    return int(cands[-1])


def learn_points(model, catalog: FeatureCatalog, X: pd.DataFrame, calib: pd.DataFrame, *,
                 points_per_doubling: float = POINTS_PER_DOUBLING, max_bands: int = MAX_BANDS,
                 min_level_share: float = MIN_LEVEL_SHARE, capacity: int | None = None,
                 mql_share: float = MQL_SHARE, fit_shares: dict | None = None,
                 engagement_shares: dict | None = None, period_col: str = "as_of"
                 ) -> LearnedPointsClassifier:
    """The points table of an additive `LightGBMClassifier` (or a `CalibratedModel` around
    one), fitted (isotonic points -> probability) on `calib` (which needs `label`).

    `X`: the rows that weigh the bands and levels (the training rows); `calib`: the
    calibration slice (grade bands, MQL threshold, calibration). `capacity`: leads per
    period (`period_col`, e.g. as_of months) for the MQL threshold; None, or no such column:
    the top `mql_share` of calib. Raises `ValueError` for a non-additive model.
    """
    inner = getattr(model, "model", model)
    if max_bands < 2:
        raise ValueError(f"max_bands must be at least 2, got {max_bands}")
    if points_per_doubling <= 0:
        raise ValueError(f"points_per_doubling must be positive, got {points_per_doubling}")
    ex = Explainer.for_model(inner)
    if not getattr(ex, "additive", False) or ex._lookups is None:
        raise NotAdditiveError("a points table needs an additive LightGBM model (train_model.additive: "
                               "true: every tree splits on one feature)")
    scale = points_per_doubling / math.log(2)
    Xm = ex.model_input(X)
    names = ex.feature_names
    group_of = {f.name: f.group for f in catalog.features}
    fields: dict[str, dict] = {}
    intercept = float(ex.base_value)
    for lk in ex._lookups:
        name = names[lk.j]
        if lk.categorical:
            f = _categorical_field(lk, Xm[:, lk.j], list(inner.categories_[name]), scale,
                                   min_level_share)
        else:
            f = _numeric_field(lk, Xm[:, lk.j], scale, max_bands)
        if f is None:
            continue
        intercept += f["ref_log_odds"]
        f["group"] = group_of.get(name, "fit")
        f["label"] = catalog[name].label if name in group_of else name
        fields[name] = f
    table = {g: {n: _conditions(f) for n, f in fields.items() if f["group"] == g}
             for g in ("fit", "engagement")}
    eng_max = max([abs(p) for t in table["engagement"].values() for p in t.values()] + [1])
    est = LearnedPointsClassifier(
        fit_rules=table["fit"], engagement_rules=table["engagement"],
        max_points_per_activity=float(eng_max), points_per_doubling=points_per_doubling,
        intercept_log_odds=intercept,
        labels={n: f["label"] for n, f in fields.items()})
    pts = est.points(calib)
    fs = fit_shares or dict(zip(LETTERS, DEFAULT_SHARES, strict=True))
    es = engagement_shares or dict(zip(DIGITS, DEFAULT_SHARES, strict=True))
    fit_cuts = quantile_cuts(pts["fit_points"].to_numpy(), [fs[k] for k in LETTERS])
    eng_cuts = quantile_cuts(pts["engagement_points"].to_numpy(), [es[k] for k in DIGITS])
    est.fit_bands = {k: int(math.ceil(c - 1e-9)) for k, c in zip(LETTERS[:3], fit_cuts, strict=True)}
    est.engagement_bands = {k: int(math.ceil(c - 1e-9)) for k, c in zip(DIGITS[:3], eng_cuts, strict=True)}
    period = calib[period_col].to_numpy() if period_col in calib and capacity else None
    est.mql_threshold = _threshold_at_capacity(pts["total_points"].to_numpy(), period, capacity,
                                               mql_share)
    log.info("learned points table: %d fit and %d engagement fields (of %d model features), "
             "%g points double the odds, MQL at %d points", len(table["fit"]),
             len(table["engagement"]), len(names), points_per_doubling, est.mql_threshold)
    return est.fit(calib, calib["label"])


class LearnedPointsClassifier(FlatRuleClassifier):
    """A points table learned from the additive model (`learn_points`): condition tables per
    field as `FlatRuleClassifier`, plus how the points were scaled (`points_per_doubling`,
    `intercept_log_odds`: log-odds ~= intercept + points * ln 2 / points_per_doubling) and
    the fields' labels. Everything else (grades, MQL, isotonic `fit`) is the parent's."""

    def __init__(self, fit_rules: dict | None = None, engagement_rules: dict | None = None,
                 max_points_per_activity: float = 1e6, fit_bands: dict | None = None,
                 engagement_bands: dict | None = None, mql_threshold: float = 50,
                 points_per_doubling: float = POINTS_PER_DOUBLING, intercept_log_odds: float = 0.0,
                 labels: dict | None = None):
        super().__init__(fit_rules=fit_rules, engagement_rules=engagement_rules,
                         max_points_per_activity=max_points_per_activity, fit_bands=fit_bands,
                         engagement_bands=engagement_bands, mql_threshold=mql_threshold)
        self.points_per_doubling = points_per_doubling
        self.intercept_log_odds = intercept_log_odds
        self.labels = labels

    def log_odds(self, X: pd.DataFrame) -> np.ndarray:
        """The model's log-odds as the table approximates them."""
        return self.intercept_log_odds + self.decision_function(X) * math.log(2) / self.points_per_doubling

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["kind"] = "learned_points"
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LearnedPointsClassifier:
        if d.get("kind") != "learned_points":
            raise ValueError("not a learned points record (kind != 'learned_points')")
        return FlatRuleClassifier.from_dict.__func__(cls, {**d, "kind": "flat_points_rules"})


# ---- exports ---------------------------------------------------------------------------
def points_rows(est: LearnedPointsClassifier) -> list[dict]:
    """One row per line of the table: field, group, label, condition, points (categorical
    fields end with `OTHER`: 0 points for any value not listed)."""
    labels = est.labels or {}
    rows = []
    for group in ("fit", "engagement"):
        for field, table in (getattr(est, f"{group}_rules") or {}).items():
            for cond, p in table.items():
                rows.append({"field": field, "group": group, "label": labels.get(field, field),
                             "condition": cond, "points": int(p)})
            if any(parse_condition(c)[0] == "value" for c in table):
                rows.append({"field": field, "group": group, "label": labels.get(field, field),
                             "condition": OTHER, "points": 0})
    return rows


def points_csv(est: LearnedPointsClassifier) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["field", "group", "label", "condition", "points"],
                       lineterminator="\n")
    w.writeheader()
    w.writerows(points_rows(est))
    return buf.getvalue()


def points_yaml(est: LearnedPointsClassifier) -> str:
    """The table as a flat mapping's ``rules:`` block (see the module docstring)."""
    doc = {"rules": {
        "fit": {k: dict(v) for k, v in (est.fit_rules or {}).items()},
        "engagement": {k: dict(v) for k, v in (est.engagement_rules or {}).items()},
        "max_points_per_activity": float(est.max_points_per_activity),
        "fit_bands": {k: int(v) for k, v in (est.fit_bands or {}).items()},
        "engagement_bands": {str(k): int(v) for k, v in (est.engagement_bands or {}).items()},
        "mql_threshold": int(est.mql_threshold)}}
    head = (f"# Points table learned from the additive LightGBM model: {est.points_per_doubling:g} "
            "points double the odds of converting.\n"
            "# Per field, the first matching condition scores (a value, a band lo..hi = lo <= x < hi,"
            " <x, >=x, or missing); no match scores 0.\n"
            "# Grade: fit letter A-C at the minimum points in fit_bands (else D), engagement digit"
            " 1-3 in engagement_bands (else 4); MQL at mql_threshold total points.\n")
    return head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)



# ---- the `points` stage: learn before the test slice, measure on it ---------------------
LEARNED = "learned_points"


@dataclass
class PointsRelease:
    """What the `points` stage writes: the learned table (None when the model has none) and
    the figures of metrics/points.json (`available` False, with a `reason`, without a table)."""

    table: LearnedPointsClassifier | None
    metrics: dict


def points_release(split, model, rules, catalog: FeatureCatalog, params) -> PointsRelease:
    """Learn the table of `model` (the calibrated additive LightGBM; None: train_model fell back
    to the rules) on pre-test rows only: bands weighed on `split.train`; grade bands
    (`explain.*_shares`), the MQL threshold at capacity (`evaluate.reps x leads_per_rep` a
    month) and the points -> probability map on `split.calib`. Then `measure_points` on the
    out-of-time `split.test` beside `model` and the hand-written `rules`. `params`: a
    `leadscore.config.Params` (its `points`, `evaluate`, `explain` sections and `seed`)."""
    cfg, ev = params.points, params.evaluate
    capacity = ev.reps * ev.leads_per_rep
    if model is None:
        return PointsRelease(None, {"available": False,
                                    "reason": "no LightGBM model: train_model fell back to the rules"})
    try:
        table = learn_points(model, catalog, split.train, split.calib,
                             points_per_doubling=cfg.points_per_doubling, max_bands=cfg.max_bands,
                             min_level_share=cfg.min_level_share, capacity=capacity,
                             fit_shares=params.explain.fit_shares,
                             engagement_shares=params.explain.engagement_shares)
    except NotAdditiveError as err:
        return PointsRelease(None, {"available": False, "reason": str(err)})
    return PointsRelease(table, measure_points(table, model, rules, split.calib, split.test,
                                               capacity=capacity, n_boot=ev.n_bootstrap,
                                               seed=params.seed))


def measure_points(table: LearnedPointsClassifier, model, rules, calib: pd.DataFrame,
                   test: pd.DataFrame, *, capacity: int, n_boot: int = 200, seed: int = 0) -> dict:
    """metrics/points.json: out-of-time ROC-AUC of the learned table (its calibrated
    probability, and its raw points as a marketing tool ranks them), of the `model` it came
    from and of the hand-written `rules`, with lead-grouped bootstrap 95% CIs and the CI of
    learned minus model; the table's MQL threshold with its leads a month on calib and what
    it hands over on test (`leadscore.modeling.capacity.handoff_figures`, expected
    conversions by the model's probability), beside the rules' MQL threshold."""
    from sklearn.metrics import roc_auc_score

    from leadscore.modeling.capacity import handoff_figures, per_month
    from leadscore.modeling.metrics import bootstrap_ci

    y = test["label"].to_numpy(dtype=int)
    if len(np.unique(y)) < 2:
        raise InputError(f"the test slice has a single class ({int(y.sum())} positives in {len(y)} rows)")
    probs = {LEARNED: table.predict_proba(test)[:, 1], "lightgbm": model.predict_proba(test)[:, 1],
             "rules": rules.predict_proba(test)[:, 1]}
    groups = test["lead_id"].to_numpy() if "lead_id" in test else None
    ci = bootstrap_ci(y, probs, n_boot=n_boot, seed=seed, groups=groups, diff=(LEARNED, "lightgbm"))
    auc = {k: float(roc_auc_score(y, p)) for k, p in probs.items()}
    points = table.decision_function(test)
    period = test["as_of"].to_numpy() if "as_of" in test else np.zeros(len(test))
    calib_period = calib["as_of"].to_numpy() if "as_of" in calib else np.zeros(len(calib))
    mql, rules_mql = int(table.mql_threshold), float(rules.mql_threshold)
    return {
        "available": True,
        "points_per_doubling": float(table.points_per_doubling),
        "fields": {g: len(getattr(table, f"{g}_rules") or {}) for g in ("fit", "engagement")},
        "lines": len(points_rows(table)),
        "roc_auc": {LEARNED: auc[LEARNED], f"{LEARNED}_raw": float(roc_auc_score(y, points)),
                    "lightgbm": auc["lightgbm"], "rules": auc["rules"]},
        "roc_auc_ci": {k: ci[k]["roc_auc"] for k in probs},
        "auc_diff_vs_model": auc[LEARNED] - auc["lightgbm"], "auc_diff_vs_model_ci": ci["auc_diff"],
        "auc_diff_vs_rules": auc[LEARNED] - auc["rules"],
        "median_log_odds_error": float(np.median(np.abs(table.log_odds(test)
                                                        - model.decision_function(test)))),
        "fit_bands": {k: int(v) for k, v in (table.fit_bands or {}).items()},
        "engagement_bands": {str(k): int(v) for k, v in (table.engagement_bands or {}).items()},
        "mql": {"threshold": mql, "capacity_per_month": int(capacity),
                "calib_leads_per_month": per_month(table.decision_function(calib) >= mql, calib_period),
                "test": handoff_figures(points >= mql, y, probs["lightgbm"], period)},
        "rules_mql": {"threshold": rules_mql,
                      "test": handoff_figures(rules.decision_function(test) >= rules_mql, y,
                                              probs["lightgbm"], period)},
        "test": {"rows": int(len(y)), "positives": int(y.sum()), "months": int(len(np.unique(period)))},
    }


def points_summary(m: dict) -> str:
    """metrics/points.json in one paragraph (the stage's log, the benchmark's print)."""
    if not m.get("available"):
        return f"no learned points table: {m.get('reason')}"
    auc, ci, q = m["roc_auc"], m["roc_auc_ci"], m["mql"]
    lines = [f"out-of-time ROC-AUC ({m['test']['rows']} rows, {m['test']['months']} months): "
             + ", ".join(f"{k} {auc[k]:.4f}" + (f" [{ci[k][0]:.3f}, {ci[k][1]:.3f}]" if k in ci else "")
                         for k in (LEARNED, f"{LEARNED}_raw", "lightgbm", "rules")),
             f"learned - model: {m['auc_diff_vs_model']:+.4f} [{m['auc_diff_vs_model_ci'][0]:+.4f}, "
             f"{m['auc_diff_vs_model_ci'][1]:+.4f}]; learned - rules: {m['auc_diff_vs_rules']:+.4f}",
             f"{m['fields']['fit']} fit + {m['fields']['engagement']} engagement fields, {m['lines']} lines; "
             f"MQL at {q['threshold']} points: {q['calib_leads_per_month']:.0f} leads a month on calib "
             f"(capacity {q['capacity_per_month']}), {q['test']['leads_per_month']:.0f} on test"]
    return "\n".join(lines)


def write_points(release: PointsRelease, yaml_path: str | Path, csv_path: str | Path) -> None:
    """The table as YAML (`points_yaml`) and CSV (`points_csv`), each written atomically;
    without a table, a YAML comment giving the reason and a CSV header."""
    if release.table is not None:
        texts = (points_yaml(release.table), points_csv(release.table))
    else:
        texts = (f"# no learned points table: {release.metrics.get('reason')}\n",
                 "field,group,label,condition,points\n")
    for text, path in zip(texts, (yaml_path, csv_path), strict=True):
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
