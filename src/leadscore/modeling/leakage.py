"""Leakage guards, run before training: stop on features that know the future.

Two guards, one report (`LeakageReport`), one error (`LeakageError`, a `GuardError`: exit 4).

**The probe** (`probe_leakage`, event-log pipeline only), measured on the train and valid
slices (never on test):

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

**The screen** (`screen_columns`; `screen_training_table` for the event-log table), run in
both input modes. Every feature column is checked by five rules, each measured on the
training rows only (train + valid + calib, never the test slice):

1. **univariate AUC** (``auc``): the column alone, as a score, reaches `max_auc` ROC-AUC
   (default 0.85, "near perfect"), or it **towers over every other column**: it reaches
   `dominant_auc` (0.75) and beats the next-best column by `dominant_gap` (0.15) or more.
   In honest lead data the signal is spread over several attributes; one column far ahead
   of all the others is usually recorded with, or after, the outcome. The score is the
   probe's target encoding (`target_encode`) cross-fitted on a random stratified 2-fold
   split (grouped by lead when a lead has several rows), reported as max(auc, 1 - auc). A
   random split, not a time split: a leak is a same-period relation, and a drifting base
   rate makes single-column out-of-time AUCs swing (on the bank data the economic
   indicators' flip sign).
2. **missingness** (``missing``): the column's missing/present indicator alone reaches
   `max_missing_auc` (default 0.75): a field that is filled in only for leads that
   converted (or only for lost ones).
3. **certainty** (``certainty``): a part of the column implies the outcome with near
   certainty on enough rows, as a field filled in only for *some* converted leads does
   (present on 65 of 8,000 rows, all converted: its missingness AUC is about 0.5 and its
   univariate AUC unremarkable, yet it lifts the out-of-time AUC by points). The parts
   tested: the rows where the column is present (when it is sometimes missing); each level
   of a categorical, and each value of a numeric column with at most `certainty_max_values`
   (20) distinct values; and, when one value covers at least half of the present rows, the
   rows that differ from it (an export that writes 0 or a placeholder for "not filled
   in"). A part with at least `certainty_min_rows` (20) rows is tested with an exact
   one-sided binomial test of its positive count against the base rate, on the converted
   side (more positives) when the base rate is at most `certainty_max_base_rate` (0.75)
   and on the lost side (fewer) when the base rate is at least 1 - that (0.25): at a lower
   base rate "5% converted" is not far from ordinary (the bank data's economic indicators
   have values at 3% against 11%). The p-values of every part and side tested, over all
   columns, are corrected by Holm's method at family-wise level `certainty_alpha` (0.01).
   A part is flagged when its test rejects *and* its positive rate is near certain: at
   least `certainty_rate` (0.95) converted, or at most 1 - that (0.05) on the lost side.
   The reason names the column, the rows and shares, never a value.
4. **post-outcome name** (``name``, flat exports only): a word of the column's name is one
   of `POST_OUTCOME_WORDS` (status, stage, tags, quality, closed, won, lost, converted,
   outcome, result, disposition, reason, score, ...) or the name holds a phrase of
   `POST_OUTCOME_PHRASES` ("last activity", "lead score", ...), or is one of
   `AFTER_CONTACT_WORDS` (duration, talk time, call length, ...): measured when the call or
   meeting ends, when the outcome is already known. Words, not substrings: the bank data's
   ``poutcome`` (outcome of the *previous* campaign, known before the call) is not flagged.
5. **post-outcome values** (``values``, flat exports only): a categorical level reads like a
   sales outcome (won, lost, closed, converted, "will revert", "not interested", junk, ...).

On the bank data ``duration`` is flagged by two independent rules. (a) AUC: on the training
rows of the full file its univariate AUC is about 0.88 (>= 0.85), and the next-best column
(cons.price.idx) reaches about 0.66, so it also towers over the others by 0.22; on the
3,000-row test slice its AUC is about 0.85 against 0.67 for the next. (b) Name: "duration"
is an after-contact measure. The name rule alone would be a list we were told; the AUC rule
alone is a threshold; together, and reported with the AUC, a user sees why. The test suite
renames the column to ``x1`` and checks that the AUC rule still refuses it.

The rules 3, 4 and 5 are off for the event-log training table: its features are built by
`leadscore.features.build` from records strictly before `as_of`, and names such as
``days_since_last_activity`` are point-in-time by construction (the probe watches that
table out of time).

**The verdict.** The rules 1-3 are statistical signals; 4 and 5 only read names and
labels. A column flagged by a statistical rule and not on the allow list (the mapping's
``allow:``) is **refused**: `check_leakage` raises `LeakageError` (exit 4) with a short
report: each column, why it was flagged, its univariate AUC, and how to keep it on purpose.
A column flagged by its name or values alone, with no statistical signal (e.g. a web
session's ``ProductRelated_Duration``, time on product pages before the purchase, AUC
0.67), is **dropped with a warning** (`LeakageReport.dropped_by_name`) that says how to keep
it (``allow:``), and the run goes on. Allowed columns are reported as kept, not refused.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import binom
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, StratifiedKFold

from leadscore.errors import GuardError
from leadscore.modeling.estimators import base_lgb_params, to_model_frame
from leadscore.modeling.names import name_words, snake

log = logging.getLogger(__name__)

POST_OUTCOME_WORDS: frozenset[str] = frozenset({
    "status", "stage", "stages", "tag", "tags", "quality", "closed", "close", "closing", "won",
    "win", "lost", "loss", "converted", "conversion", "outcome", "result", "results",
    "disposition", "reason", "score", "scores", "scoring", "opportunity", "deal", "signed",
    "churn", "churned", "disqualified", "qualified", "sql", "mql",
})
POST_OUTCOME_PHRASES: tuple[str, ...] = ("last_activity", "last_notable_activity", "lead_score",
                                         "last_contact_date", "last_touch", "sales_accepted")
AFTER_CONTACT_WORDS: frozenset[str] = frozenset({"duration", "talk", "talktime", "handle",
                                                 "handled", "callback"})
AFTER_CONTACT_PHRASES: tuple[str, ...] = ("call_length", "call_time", "time_on_call",
                                          "talk_time", "meeting_length")
POST_OUTCOME_VALUE_WORDS: frozenset[str] = frozenset({
    "won", "lost", "closed", "converted", "revert", "reverted", "junk", "disqualified",
    "churned", "signed", "interested", "unreachable",
})

DEFAULT_MAX_AUC = 0.85
DEFAULT_DOMINANT_AUC = 0.75
DEFAULT_DOMINANT_GAP = 0.15
DEFAULT_MAX_MISSING_AUC = 0.75
DEFAULT_CERTAINTY_MIN_ROWS = 20
DEFAULT_CERTAINTY_RATE = 0.95
DEFAULT_CERTAINTY_MAX_BASE_RATE = 0.75
DEFAULT_CERTAINTY_ALPHA = 0.01
DEFAULT_CERTAINTY_MAX_VALUES = 20
STATISTICAL_RULES: frozenset[str] = frozenset({"auc", "missing", "certainty"})


class LeakageError(GuardError):
    """A feature (or the feature set) looks like it leaks the outcome: the probe flagged it,
    or the screen flagged a column that is not on the allow list."""


@dataclass
class ScreenFlag:
    """One column the screen flagged, and why."""

    column: str  # feature name
    source: str  # header in the file (or the feature name)
    reasons: list[str]
    auc: float
    missing_auc: float | None
    allowed: bool
    rules: list[str] = field(default_factory=list)  # auc, missing, certainty, name, values

    @property
    def statistical(self) -> bool:
        """Flagged by a statistical rule (auc, missing, certainty), not only by its name or
        values. A flag without `rules` counts as statistical (refused, as before)."""
        return not self.rules or bool(STATISTICAL_RULES.intersection(self.rules))

    def to_dict(self) -> dict:
        return {"column": self.column, "source": self.source, "reasons": self.reasons,
                "rules": self.rules, "auc": round(self.auc, 4),
                "missing_auc": None if self.missing_auc is None else round(self.missing_auc, 4),
                "allowed": self.allowed}


@dataclass
class LeakageReport:
    """What the leakage guards measured and flagged.

    The screen part (`aucs` is None until the screen ran): every screened column's
    univariate AUC, the flags and the thresholds. The probe part (`features` is None until
    the probe ran): per-feature out-of-time / random-split AUCs, the whole-set model AUCs,
    the flagged feature names and messages. `with_screen` joins a probe report and a screen
    report into one.
    """

    # the screen
    aucs: dict[str, float] | None = None
    flags: list[ScreenFlag] = field(default_factory=list)
    max_auc: float = DEFAULT_MAX_AUC
    max_missing_auc: float = DEFAULT_MAX_MISSING_AUC
    dominant_auc: float = DEFAULT_DOMINANT_AUC
    dominant_gap: float = DEFAULT_DOMINANT_GAP
    certainty: dict | None = None  # the certainty rule's settings (None: the rule was off)
    # the probe
    features: pd.DataFrame | None = None  # feature, oot_auc, random_auc, gap, reason
    model_oot_auc: float | None = None
    model_random_auc: float | None = None
    flagged: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def refused(self) -> list[str]:
        """Columns the screen flagged by a statistical rule that are not allowed: the run
        stops on them."""
        return [f.column for f in self.flags if not f.allowed and f.statistical]

    @property
    def dropped_by_name(self) -> list[str]:
        """Columns flagged by their name or values alone (no statistical signal) that are not
        allowed: the run goes on without them, with a warning."""
        return [f.column for f in self.flags if not f.allowed and not f.statistical]

    @property
    def allowed(self) -> list[str]:
        """Columns the screen flagged that are kept on purpose (allow list)."""
        return [f.column for f in self.flags if f.allowed]

    def with_screen(self, screen: LeakageReport) -> LeakageReport:
        """This (probe) report with the screen part of `screen`."""
        return dataclasses.replace(
            self, aucs=screen.aucs, flags=screen.flags, max_auc=screen.max_auc,
            max_missing_auc=screen.max_missing_auc, dominant_auc=screen.dominant_auc,
            dominant_gap=screen.dominant_gap, certainty=screen.certainty)

    def text(self, allow_hint: str = "allow", *, refuse: bool = True) -> str:
        """The screen in short: column, why flagged, univariate AUC, how to keep it
        (`refuse` False: the refused columns are dropped and training goes on)."""
        aucs = self.aucs or {}
        if not self.flags:
            top = sorted(aucs.items(), key=lambda kv: -kv[1])[:3]
            return ("leakage screen: no column flagged (highest univariate AUC: "
                    + ", ".join(f"{k} {v:.3f}" for k, v in top) + ")")
        certainty = ""
        if self.certainty:
            c = self.certainty
            certainty = (f"; certainty: {c['rate']:.0%} or more of one outcome on {c['min_rows']}+ "
                         f"rows, binomial test, Holm-corrected at {c['alpha']}")
        lines = [f"leakage screen: {len(self.flags)} column(s) flagged (univariate AUC limit "
                 f"{self.max_auc:.2f}, or {self.dominant_auc:.2f} and {self.dominant_gap:.2f} above "
                 f"every other column; missingness AUC limit {self.max_missing_auc:.2f}"
                 f"{certainty}):"]
        for f in self.flags:
            state = ("KEPT (allow list)" if f.allowed else "REFUSED" if f.statistical
                     else "DROPPED (name only, no statistical signal)")
            lines.append(f"  - {f.source}: {state}; univariate AUC {f.auc:.3f}; "
                         + "; ".join(f.reasons))
        if self.refused:
            names = ", ".join(f.source for f in self.flags if not f.allowed and f.statistical)
            lines.append(("Training stopped. " if refuse else "Training goes on without them "
                          "(screen.on_flag: drop). ")
                         + f"Drop these columns from the export, or, if one is "
                         f"known before the lead is scored, keep it on purpose with `{allow_hint}: "
                         f"[{names}]` in the mapping.")
        if self.dropped_by_name:
            names = ", ".join(f.source for f in self.flags if not f.allowed and not f.statistical)
            lines.append(f"Dropped without stopping the run: {names}, flagged on the name or "
                         f"values alone (univariate AUC, missingness and certainty show nothing "
                         f"unusual). If one is known before the lead is scored, keep it with "
                         f"`{allow_hint}: [{names}]` in the mapping.")
        return "\n".join(lines)

    def check_left(self, dropped: list[str], allow_hint: str = "allow") -> None:
        """Raise `LeakageError` when dropping `dropped` leaves no screened column to train on."""
        if self.aucs and set(self.aucs) <= set(dropped):
            raise LeakageError(f"{self.text(allow_hint)}\nTraining stopped: no feature column is "
                               f"left to train on. Keep one with `{allow_hint}:` or add columns "
                               f"known before the lead is scored.")

    def probe_text(self) -> str:
        """The probe's refusal message."""
        return ("leakage probe stopped the run:\n  - " + "\n  - ".join(self.messages)
                + "\nDrop the column(s) from the features, or fix how they are computed (only "
                  "records strictly before as_of). Thresholds: train_model.leakage.max_auc / "
                  "max_random_gap.")

    def summary(self) -> dict:
        """One schema: the screen's keys at the top level, the probe's under ``probe`` (None
        when the probe did not run)."""
        aucs = self.aucs or {}
        probe = None
        if self.features is not None:
            top = (self.features.sort_values("oot_auc", ascending=False).head(10)
                   if len(self.features) else self.features)
            probe = {"model_oot_auc": self.model_oot_auc, "model_random_auc": self.model_random_auc,
                     "flagged": self.flagged, "messages": self.messages,
                     "top_features": top.round(4).to_dict(orient="records")}
        return {"max_auc": self.max_auc, "max_missing_auc": self.max_missing_auc,
                "dominant_auc": self.dominant_auc, "dominant_gap": self.dominant_gap,
                "certainty": self.certainty,
                "flagged": [f.to_dict() for f in self.flags], "refused": self.refused,
                "dropped_by_name": self.dropped_by_name, "allowed": self.allowed,
                "univariate_auc": {k: round(v, 4) for k, v in
                                   sorted(aucs.items(), key=lambda kv: -kv[1])},
                "probe": probe}


# ---- shared helpers ---------------------------------------------------------------------
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


def _auc(y: np.ndarray, s: np.ndarray, *, symmetric: bool = False) -> float:
    """ROC-AUC (NaN with a single class); `symmetric`: max(auc, 1 - auc)."""
    if len(np.unique(y)) < 2:
        return float("nan")
    a = float(roc_auc_score(y, s))
    return max(a, 1 - a) if symmetric else a


def _random_halves(groups: np.ndarray, seed: int) -> np.ndarray:
    codes, uniq = pd.factorize(pd.Series(groups))
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(uniq), dtype=bool)
    chosen[rng.choice(len(uniq), size=len(uniq) // 2, replace=False)] = True
    return chosen[codes]


# ---- the probe --------------------------------------------------------------------------
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
    report = LeakageReport(features=pd.DataFrame(rows), flagged=flagged, messages=messages)

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


# ---- the screen -------------------------------------------------------------------------
def univariate_auc(x: pd.Series, y: np.ndarray, *, categorical: bool, seed: int = 0,
                   groups: np.ndarray | None = None) -> float:
    """Cross-fitted univariate ROC-AUC of one column (random 2-fold, target encoding)."""
    x = x.reset_index(drop=True)
    oof = np.zeros(len(y))
    folds = (GroupKFold(n_splits=2, shuffle=True, random_state=seed).split(y, y, groups)
             if groups is not None else
             StratifiedKFold(n_splits=2, shuffle=True, random_state=seed).split(y, y))
    for fit_idx, pred_idx in folds:
        oof[pred_idx] = target_encode(x.iloc[fit_idx], y[fit_idx], x.iloc[pred_idx], categorical)
    return _auc(y, oof, symmetric=True)


def name_reason(name: str, extra_words: tuple[str, ...] = ()) -> str | None:
    """Why a column name looks post-outcome, or None."""
    words = set(name_words(name))
    s = snake(name)
    after = (words & AFTER_CONTACT_WORDS) or [p for p in AFTER_CONTACT_PHRASES if p in s]
    if after:
        return (f"name looks like an after-contact measure ({', '.join(sorted(after))}): known "
                f"only when the call or meeting ends, when the outcome is already known")
    hits = sorted(words & (POST_OUTCOME_WORDS | {snake(w) for w in extra_words}))
    hits += [p for p in POST_OUTCOME_PHRASES if p in s]
    if hits:
        return (f"name looks post-outcome ({', '.join(hits)}): such fields are filled in or "
                f"updated by sales after the lead is worked, or counted at export time")
    return None


def value_reason(x: pd.Series, min_rows: int = 5) -> str | None:
    """Why a categorical column's values look post-outcome, or None."""
    counts = x.dropna().astype(str).value_counts()
    hits = [v for v, n in counts.items()
            if n >= min_rows and set(name_words(v)) & POST_OUTCOME_VALUE_WORDS]
    if hits:  # name the outcome words matched, never the values themselves
        words = sorted({w for v in hits for w in name_words(v)} & POST_OUTCOME_VALUE_WORDS)
        return (f"values look like sales outcomes ({len(hits)} level(s) with the word(s) "
                f"{', '.join(map(repr, words[:3]))})")
    return None


@dataclass(frozen=True)
class CertaintyHit:
    """One part of a column that implies the outcome with near certainty (the certainty
    rule): `part` is ``present`` (the rows where it is filled in), ``level`` (one level of a
    categorical), ``value`` (one value of a few-valued numeric) or ``set`` (the rows that
    differ from its most common value); `side` is ``converted`` or ``lost``."""

    column: str
    part: str
    side: str
    rows: int
    positives: int
    total_rows: int
    base_rate: float
    p_value: float

    def sentence(self) -> str:
        """For a marketer: column counts and shares, never a value."""
        share = _pct(self.rows / self.total_rows)
        where = {"present": f"present on {self.rows:,} rows ({share})",
                 "set": f"differs from its most common value on {self.rows:,} rows ({share})",
                 "level": f"one of its levels covers {self.rows:,} rows ({share})",
                 "value": f"one of its values covers {self.rows:,} rows ({share})"}[self.part]
        filled = "filled in" if self.part in ("present", "set") else "set"
        looks = ("only after a sale" if self.side == "converted" else "only for lost leads")
        return (f"{where}, {_pct(self.positives / self.rows)} of them converted against "
                f"{_pct(self.base_rate)} overall: looks {filled} {looks}")


def _pct(x: float) -> str:
    """A share as a percentage: one decimal near 0 and 100%, none elsewhere."""
    return f"{x:.1%}" if (0 < x < 0.1 or 0.99 < x < 1) else f"{x:.0%}"


def certainty_parts(x: pd.Series, y: np.ndarray, *, categorical: bool, min_rows: int,
                    max_values: int = DEFAULT_CERTAINTY_MAX_VALUES) -> list[tuple[str, int, int]]:
    """The parts of one column the certainty rule tests, as (part, rows, positives), each
    with at least `min_rows` rows (see the module docstring, rule 3)."""
    present = x.notna().to_numpy()
    n_present = int(present.sum())
    parts: list[tuple[str, int, int]] = []
    if min_rows <= n_present < len(x):
        parts.append(("present", n_present, int(y[present].sum())))
    if n_present == 0:
        return parts
    xp = x[present]
    key = xp.astype(str) if categorical else pd.to_numeric(xp, errors="coerce")
    stats = (pd.DataFrame({"k": key.to_numpy(), "y": y[present]})
             .groupby("k", dropna=True)["y"].agg(["size", "sum"]))
    if len(stats) < 2:  # one level: the presence part already covers it
        return parts
    if categorical or len(stats) <= max_values:
        kind = "level" if categorical else "value"
        parts += [(kind, int(n), int(k)) for n, k in
                  stats.loc[stats["size"] >= min_rows, ["size", "sum"]].itertuples(index=False)]
    top = stats["size"].idxmax()
    rest = n_present - int(stats.at[top, "size"])
    if len(stats) > 2 and rest <= n_present / 2 and rest >= min_rows:
        parts.append(("set", rest, int(y[present].sum()) - int(stats.at[top, "sum"])))
    return parts


def certainty_hits(df: pd.DataFrame, y: np.ndarray, *, features: list[str],
                   categorical: list[str], min_rows: int = DEFAULT_CERTAINTY_MIN_ROWS,
                   rate: float = DEFAULT_CERTAINTY_RATE,
                   max_base_rate: float = DEFAULT_CERTAINTY_MAX_BASE_RATE,
                   alpha: float = DEFAULT_CERTAINTY_ALPHA,
                   max_values: int = DEFAULT_CERTAINTY_MAX_VALUES) -> dict[str, list[CertaintyHit]]:
    """The certainty rule (module docstring, rule 3) on every feature: per column, the parts
    flagged, strongest first (smallest p-value, then most rows).

    Each part with at least `min_rows` rows is tested with an exact one-sided binomial test
    against the base rate p0: converted side P(X >= positives) when p0 <= `max_base_rate`,
    lost side P(X <= positives) when p0 >= 1 - `max_base_rate`. Holm's correction at
    family-wise level `alpha` runs over every part and side tested in all columns; a part is
    flagged when rejected and its positive rate is >= `rate` (converted) or <= 1 - `rate`
    (lost)."""
    n = len(y)
    p0 = float(y.mean()) if n else 0.0
    if n == 0 or p0 in (0.0, 1.0):
        return {}
    sides = [s for s, on in (("converted", p0 <= max_base_rate), ("lost", p0 >= 1 - max_base_rate))
             if on]
    tested: list[CertaintyHit] = []
    for f in features:
        for part, rows, pos in certainty_parts(df[f], y, categorical=f in categorical,
                                               min_rows=min_rows, max_values=max_values):
            for side in sides:
                pv = (float(binom.sf(pos - 1, rows, p0)) if side == "converted"
                      else float(binom.cdf(pos, rows, p0)))
                tested.append(CertaintyHit(f, part, side, rows, pos, n, p0, pv))
    m = len(tested)
    hits: dict[str, list[CertaintyHit]] = {}
    for i, h in enumerate(sorted(tested, key=lambda h: h.p_value)):  # Holm: step down
        if h.p_value > alpha / (m - i):
            break
        near_certain = (h.positives >= rate * h.rows if h.side == "converted"
                        else h.positives <= (1 - rate) * h.rows)
        if near_certain:
            hits.setdefault(h.column, []).append(h)
    for col in hits:
        hits[col].sort(key=lambda h: (h.p_value, -h.rows))
    return hits


def certainty_reason(hits: list[CertaintyHit]) -> str:
    """The certainty rule's sentence for one column: its strongest part, and how many more."""
    more = hits[1:]
    kinds = {h.part for h in more}
    if not more:
        tail = ""
    elif kinds in ({"level"}, {"value"}):
        tail = f" (and {len(more)} of its {kinds.pop()}s likewise)"
    else:
        tail = f" ({len(more)} more part{'s' if len(more) > 1 else ''} of the column likewise)"
    return hits[0].sentence() + tail


def screen_columns(
    df: pd.DataFrame,
    *,
    features: list[str],
    categorical: list[str],
    label: str = "label",
    group: str | None = None,
    allow: list[str] | tuple[str, ...] = (),
    source_names: dict[str, str] | None = None,
    max_auc: float = DEFAULT_MAX_AUC,
    max_missing_auc: float = DEFAULT_MAX_MISSING_AUC,
    dominant_auc: float = DEFAULT_DOMINANT_AUC,
    dominant_gap: float = DEFAULT_DOMINANT_GAP,
    check_names: bool = True,
    check_certainty: bool = True,
    certainty_min_rows: int = DEFAULT_CERTAINTY_MIN_ROWS,
    certainty_rate: float = DEFAULT_CERTAINTY_RATE,
    certainty_max_base_rate: float = DEFAULT_CERTAINTY_MAX_BASE_RATE,
    certainty_alpha: float = DEFAULT_CERTAINTY_ALPHA,
    certainty_max_values: int = DEFAULT_CERTAINTY_MAX_VALUES,
    extra_words: tuple[str, ...] = (),
    max_rows: int = 200_000,
    seed: int = 0,
) -> LeakageReport:
    """Screen `features` of the training rows `df` (never pass the test slice).

    `allow` holds feature names or source headers kept on purpose; `source_names` maps a
    feature to its header for the report. The certainty rule (`check_certainty`, module
    docstring rule 3) tests parts of at least `certainty_min_rows` (20) rows, flags a
    positive rate >= `certainty_rate` (0.95) or <= 1 - it on the lost side, tests the
    converted side when the base rate is <= `certainty_max_base_rate` (0.75) and the lost
    side when it is >= 1 - it, with Holm's correction at `certainty_alpha` (0.01) over every
    part and side tested; a numeric column with at most `certainty_max_values` (20) distinct
    values is tested value by value.
    """
    if len(df) > max_rows:
        df = df.sample(max_rows, random_state=seed)
    src = source_names or {}
    allowed = {snake(a) for a in allow}
    y = df[label].to_numpy(dtype=int)
    groups = None
    if group and group in df and df[group].duplicated().any():
        groups = pd.factorize(df[group])[0]
    aucs: dict[str, float] = {}
    certainty = None
    hits: dict[str, list[CertaintyHit]] = {}
    if check_certainty:
        certainty = {"min_rows": certainty_min_rows, "rate": certainty_rate,
                     "max_base_rate": certainty_max_base_rate, "alpha": certainty_alpha,
                     "max_values": certainty_max_values}
        hits = certainty_hits(df, y, features=features, categorical=categorical,
                              min_rows=certainty_min_rows, rate=certainty_rate,
                              max_base_rate=certainty_max_base_rate, alpha=certainty_alpha,
                              max_values=certainty_max_values)
    report = LeakageReport(aucs=aucs, max_auc=max_auc, max_missing_auc=max_missing_auc,
                           dominant_auc=dominant_auc, dominant_gap=dominant_gap,
                           certainty=certainty)
    for f in features:
        aucs[f] = univariate_auc(df[f], y, categorical=f in categorical, seed=seed, groups=groups)
    for f in features:
        x = df[f]
        cat = f in categorical
        auc = aucs[f]
        runner_up = max([v for k, v in aucs.items() if k != f and np.isfinite(v)], default=0.5)
        reasons, rules = [], []
        if auc >= max_auc:
            reasons.append(f"univariate AUC {auc:.3f} >= {max_auc}: one column alone separates "
                           f"the outcome almost perfectly")
            rules.append("auc")
        elif auc >= dominant_auc and auc - runner_up >= dominant_gap:
            reasons.append(f"univariate AUC {auc:.3f} towers over every other column (next best "
                           f"{runner_up:.3f}): honest signal is spread over several columns")
            rules.append("auc")
        miss = x.isna().to_numpy()
        m_auc = None
        if 0 < miss.mean() < 1:
            m_auc = _auc(y, miss.astype(float), symmetric=True)
            if m_auc >= max_missing_auc:
                rate_missing = float(y[miss].mean())
                rate_present = float(y[~miss].mean())
                reasons.append(f"whether it is filled in predicts the outcome (AUC {m_auc:.3f}; "
                               f"conversion {rate_present:.1%} when present, {rate_missing:.1%} "
                               f"when missing)")
                rules.append("missing")
        if f in hits:
            reasons.append(certainty_reason(hits[f]))
            rules.append("certainty")
        if check_names:
            for rule, why in (("name", name_reason(src.get(f, f), extra_words)),
                              ("values", value_reason(x) if cat else None)):
                if why:
                    reasons.append(why)
                    rules.append(rule)
        if reasons:
            is_allowed = snake(f) in allowed or snake(src.get(f, f)) in allowed
            report.flags.append(ScreenFlag(f, src.get(f, f), reasons, auc, m_auc, is_allowed,
                                           rules))
    return report


def screen_training_table(train: pd.DataFrame, valid: pd.DataFrame, *, features: list[str],
                          categorical: list[str], label: str = "label", group: str = "lead_id",
                          max_auc: float = DEFAULT_MAX_AUC,
                          max_missing_auc: float = DEFAULT_MAX_MISSING_AUC,
                          dominant_auc: float = DEFAULT_DOMINANT_AUC,
                          dominant_gap: float = DEFAULT_DOMINANT_GAP, max_rows: int = 200_000,
                          seed: int = 0) -> LeakageReport:
    """The screen for the event-log training table (stage `train_model`): the AUC and
    missingness rules on the train and valid slices, rows of one lead kept in one fold; the
    certainty, name and value rules are off (see the module docstring)."""
    rows = pd.concat([train, valid], ignore_index=True)
    return screen_columns(rows, features=features, categorical=categorical, label=label,
                          group=group, max_auc=max_auc, max_missing_auc=max_missing_auc,
                          dominant_auc=dominant_auc, dominant_gap=dominant_gap, check_names=False,
                          check_certainty=False, max_rows=max_rows, seed=seed)


# ---- the verdict ------------------------------------------------------------------------
def check_leakage(report: LeakageReport, *, refuse: bool = True, allow_hint: str = "allow") -> None:
    """Raise `LeakageError` when the probe flagged a feature (always), or when the screen
    flagged a column that is not allowed (with `refuse`; otherwise the screen is logged)."""
    if report.flagged:
        raise LeakageError(report.probe_text())
    if report.aucs is None:
        return
    text = report.text(allow_hint, refuse=refuse)
    if report.refused and refuse:
        raise LeakageError(text)
    (log.warning if report.flags else log.info)("%s", text)
