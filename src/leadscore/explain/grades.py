"""The A1-D4 grade: fit letter x engagement digit, and the grade-matrix report.

The model's grade comes from its own decision. Its log-odds is a base value plus one exact
contribution per feature (leadscore.explain.contributions); the **fit score** is the sum of the fit-group
contributions and the **engagement score** the sum of the engagement-group ones. The letter
cuts the fit score and the digit the engagement score at quantiles learned on the
**calibration slice** only (`fit_grade_cuts`): with shares A/1 = 15%, B/2 = 25%, C/3 = 30%,
D/4 = 30%, "A" means "among the best 15% profiles of the calibration months".

`grade_matrix` reports, on out-of-time data, per cell (A1..D4): count, conversions, observed
rate with its Wilson 95% interval and the mean predicted probability; and every adjacent
pair that breaks the order (conversion must fall from A to D within a digit and from 1 to 4
within a letter), with a one-sided two-proportion z-test of the break, as a `Violation`
record. The rule baseline is graded by its own points bands (`PointsRuleClassifier.grade`)
and reported with the same function: this is the one grade-matrix schema of the project
(metrics/grades.json, evaluate.json's `rules_grades`, the flat run, the report).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypedDict

import numpy as np
import pandas as pd
from scipy.stats import norm

from leadscore.io import read_json, write_json
from leadscore.modeling.metrics import wilson_ci

LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
DIGITS: tuple[str, ...] = ("1", "2", "3", "4")
DEFAULT_SHARES = (0.15, 0.25, 0.30, 0.30)


@dataclass(frozen=True)
class GradeCuts:
    """Grade cut points: minimum fit score for A, B, C (else D) and minimum engagement
    score for 1, 2, 3 (else 4), and what they were learned from."""

    fit_cuts: tuple[float, float, float]
    engagement_cuts: tuple[float, float, float]
    shares: dict = field(default_factory=dict)  # {"fit": {A..D}, "engagement": {1..4}}
    fitted_on: str = "calib"
    calib_window: tuple[str, str] | None = None
    fit_features: tuple[str, ...] = ()
    engagement_features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, cuts in (("fit_cuts", self.fit_cuts), ("engagement_cuts", self.engagement_cuts)):
            if len(cuts) != 3 or list(cuts) != sorted(cuts, reverse=True):
                raise ValueError(f"{name} must be 3 decreasing cut points, got {list(cuts)}")

    def letter(self, fit_score: np.ndarray) -> np.ndarray:
        return band(fit_score, self.fit_cuts, LETTERS)

    def digit(self, engagement_score: np.ndarray) -> np.ndarray:
        return band(engagement_score, self.engagement_cuts, DIGITS)

    def grade(self, fit_score: np.ndarray, engagement_score: np.ndarray) -> pd.DataFrame:
        """fit_grade, engagement_grade and grade ("A1") per row."""
        letter, digit = self.letter(fit_score), self.digit(engagement_score)
        return pd.DataFrame({"fit_grade": letter, "engagement_grade": digit,
                             "grade": np.char.add(letter.astype(str), digit.astype(str))})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fit_cuts"], d["engagement_cuts"] = list(self.fit_cuts), list(self.engagement_cuts)
        d["calib_window"] = list(self.calib_window) if self.calib_window else None
        d["fit_features"], d["engagement_features"] = list(self.fit_features), list(self.engagement_features)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> GradeCuts:
        missing = {"fit_cuts", "engagement_cuts"} - set(d)
        if missing:
            raise ValueError(f"grading record lacks {sorted(missing)}")
        return cls(fit_cuts=tuple(map(float, d["fit_cuts"])),
                   engagement_cuts=tuple(map(float, d["engagement_cuts"])),
                   shares=dict(d.get("shares", {})), fitted_on=d.get("fitted_on", "calib"),
                   calib_window=tuple(d["calib_window"]) if d.get("calib_window") else None,
                   fit_features=tuple(d.get("fit_features", ())),
                   engagement_features=tuple(d.get("engagement_features", ())))


def save_grading(cuts: GradeCuts, path: str | Path) -> None:
    write_json(cuts.to_dict(), path)


def load_grading(path: str | Path) -> GradeCuts:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no grade cut points (run the explain stage)")
    return GradeCuts.from_dict(read_json(path))


def band(score: np.ndarray, cuts, labels: tuple[str, ...]) -> np.ndarray:
    """labels[0] where score >= cuts[0], labels[1] where >= cuts[1], ..., else labels[-1]."""
    score = np.asarray(score, dtype=float)
    # cuts decrease; count how many cut points the score falls below
    below = (score[:, None] < np.asarray(cuts, dtype=float)[None, :]).sum(axis=1)
    return np.asarray(labels, dtype=object)[below]


def quantile_cuts(score: np.ndarray, shares) -> tuple[float, float, float]:
    """Cut points so the top shares[0] of `score` get the first label, the next shares[1] the
    second, and so on (shares best first, summing to 1)."""
    score = np.asarray(score, dtype=float)
    score = score[np.isfinite(score)]
    if not len(score):
        raise ValueError("cannot learn grade cut points from an empty calibration slice")
    shares = np.asarray(shares, dtype=float)
    if len(shares) != 4 or (shares <= 0).any() or abs(shares.sum() - 1) > 1e-6:
        raise ValueError(f"grade shares must be 4 positive numbers summing to 1, got {shares.tolist()}")
    qs = 1 - np.cumsum(shares)[:3]
    cuts = np.quantile(score, qs, method="linear")
    return tuple(float(c) for c in cuts)  # decreasing, since qs decrease


def fit_grade_cuts(fit_score: np.ndarray, engagement_score: np.ndarray, *,
                   fit_shares: dict[str, float] | None = None,
                   engagement_shares: dict[str, float] | None = None,
                   calib_window: tuple[str, str] | None = None,
                   fit_features=(), engagement_features=()) -> GradeCuts:
    """Learn the cut points from the calibration slice's fit and engagement scores."""
    fs = fit_shares or dict(zip(LETTERS, DEFAULT_SHARES, strict=True))
    es = engagement_shares or dict(zip(DIGITS, DEFAULT_SHARES, strict=True))
    return GradeCuts(
        fit_cuts=quantile_cuts(fit_score, [fs[k] for k in LETTERS]),
        engagement_cuts=quantile_cuts(engagement_score, [es[k] for k in DIGITS]),
        shares={"fit": {k: float(fs[k]) for k in LETTERS},
                "engagement": {k: float(es[k]) for k in DIGITS}},
        fitted_on="calib", calib_window=calib_window,
        fit_features=tuple(fit_features), engagement_features=tuple(engagement_features))


def grade_cuts_from_split(explainer, split, groups: dict[str, list[str]], *,
                          fit_shares: dict[str, float] | None = None,
                          engagement_shares: dict[str, float] | None = None) -> GradeCuts:
    """Cut points from the **calibration slice** of `split` (a `leadscore.modeling.splits.Split`):
    the fit / engagement sums of `explainer`'s contributions (leadscore.explain.contributions) over the
    feature `groups` {"fit": [...], "engagement": [...]}. No other slice is read."""
    from leadscore.explain.contributions import group_sums

    sums = group_sums(explainer.contributions(split.calib, raw=True), explainer.feature_names, groups)
    w = split.windows.get("calib", {})
    window = (w["as_of_first"], w["as_of_last"]) if "as_of_first" in w else None
    return fit_grade_cuts(sums["fit"], sums["engagement"], fit_shares=fit_shares,
                          engagement_shares=engagement_shares, calib_window=window,
                          fit_features=groups["fit"], engagement_features=groups["engagement"])


# ---- the grade matrix ----------------------------------------------------------------
class Violation(TypedDict):
    """One break of the grade order: `worse` converts better than its neighbour `better`.

    `axis` "letter": the order A -> D within engagement digit `within` (e.g. B2 > A2);
    `axis` "digit": the order 1 -> 4 within fit letter `within` (e.g. B2 > B1). Empty cells
    are skipped, so `better` and `worse` are the nearest non-empty cells on that axis.
    """

    axis: str  # "letter" | "digit"
    within: str  # the digit (axis "letter") or letter (axis "digit") held fixed
    better: str  # the grade that should convert more, e.g. "A2"
    worse: str  # the grade that converts more than it should, e.g. "B2"
    rate_better: float
    rate_worse: float
    significant: bool  # one-sided two-proportion z-test at `alpha`


def _break_is_significant(k_better: int, n_better: int, k_worse: int, n_worse: int,
                          alpha: float) -> bool:
    """One-sided pooled two-proportion z-test of rate(worse) > rate(better)."""
    if n_better == 0 or n_worse == 0:
        return False
    pooled = (k_better + k_worse) / (n_better + n_worse)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_better + 1 / n_worse))
    if se == 0:
        return False
    z = (k_worse / n_worse - k_better / n_better) / se
    return bool(norm.sf(z) < alpha)


def grade_matrix(y, fit_grade, engagement_grade, predicted, *, alpha: float = 0.05) -> dict:
    """{"cells": [16 cells A1..D4], "violations": [Violation, ...], "monotonic": bool,
    "significant_violations": int}.

    A cell is {"grade", "fit", "engagement", "count", "conversions", "rate", "ci": [lo, hi],
    "mean_predicted"} (`predicted`: the graded model's calibrated probability per row). An
    empty cell has rate/mean_predicted None and is skipped in the order checks (its
    neighbours are compared across it)."""
    df = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(predicted, dtype=float),
                       "l": np.asarray(fit_grade).astype(str), "d": np.asarray(engagement_grade).astype(str)})
    bad = sorted(set(df["l"]) - set(LETTERS)) + sorted(set(df["d"]) - set(DIGITS))
    if bad:
        raise ValueError(f"unknown grade parts {bad}: letters must be A-D and digits 1-4")
    agg = df.groupby(["l", "d"])[["y", "p"]].agg(["sum", "count"])
    cells, stats = [], {}
    for letter in LETTERS:
        for digit in DIGITS:
            if (letter, digit) in agg.index:
                row = agg.loc[(letter, digit)]
                n, k, ps = int(row[("y", "count")]), int(row[("y", "sum")]), float(row[("p", "sum")])
            else:
                n, k, ps = 0, 0, 0.0
            lo, hi = wilson_ci(k, n)
            cell = {"grade": f"{letter}{digit}", "fit": letter, "engagement": digit, "count": n,
                    "conversions": k, "rate": k / n if n else None,
                    "ci": [float(lo), float(hi)], "mean_predicted": ps / n if n else None}
            cells.append(cell)
            stats[cell["grade"]] = (k, n)
    violations: list[Violation] = []
    for axis, outer, inner in (("letter", DIGITS, LETTERS), ("digit", LETTERS, DIGITS)):
        for o in outer:
            seq = [f"{i}{o}" if axis == "letter" else f"{o}{i}" for i in inner]
            seq = [g for g in seq if stats[g][1] > 0]
            for better, worse in zip(seq, seq[1:], strict=False):
                (kb, nb), (kw, nw) = stats[better], stats[worse]
                if kw / nw > kb / nb:
                    violations.append(Violation(
                        axis=axis, within=o, better=better, worse=worse,
                        rate_better=kb / nb, rate_worse=kw / nw,
                        significant=_break_is_significant(kb, nb, kw, nw, alpha)))
    return {"cells": cells, "violations": violations, "monotonic": not violations,
            "significant_violations": sum(v["significant"] for v in violations)}


def format_matrix(report: dict, title: str = "") -> str:
    """A readable 4x4 table: rate (count) per cell, then the order breaks."""
    by = {c["grade"]: c for c in report["cells"]}
    lines = [title] if title else []
    lines.append(f"{'':>6}" + "".join(f"{d:>20}" for d in DIGITS))
    for letter in LETTERS:
        row = []
        for d in DIGITS:
            c = by[f"{letter}{d}"]
            rate = "-" if c["rate"] is None else f"{c['rate']:.1%}"
            row.append(f"{rate} ({c['count']:,})")
        lines.append(f"{letter:>6}" + "".join(f"{r:>20}" for r in row))
    if report["monotonic"]:
        lines.append("monotonic: conversion falls from A to D and from 1 to 4 everywhere")
    else:
        lines.append(f"not monotonic: {len(report['violations'])} break(s), "
                     f"{report['significant_violations']} significant")
        for v in report["violations"]:
            lines.append(f"  {v['worse']} {v['rate_worse']:.1%} > {v['better']} {v['rate_better']:.1%}"
                         f" ({v['axis']} order within {v['within']}"
                         f"{', significant' if v['significant'] else ''})")
    return "\n".join(lines)
