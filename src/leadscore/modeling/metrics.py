"""Scoring metrics on (label, probability) arrays. Pure functions, no I/O.

All accept optional `sample_weight`, which the bootstrap uses (a resample is a set of
integer weights), so a resample never copies rows.

- `ece`: expected calibration error, sum over bins of |mean predicted - observed rate|
  weighted by the bin's share of rows. Bins hold equal numbers of rows (quantile bins):
  with a low base rate, equal-width bins would put nearly every lead in the first bin.
- `reliability_curve`: the same bins as a table.
- `ece_noise_floor`: the ECE a perfectly calibrated model shows by chance on these
  predictions (labels drawn from them), so a small test slice's ECE can be read against it.
- `gains_table`: lift and cumulative gains by decile of predicted probability.
- `top_k`: precision and recall when sales can work only the top K leads of each period.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from leadscore.progress import bar

CORE = ("roc_auc", "pr_auc", "log_loss", "brier", "ece")


def _w(y: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    return np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)


def _quantile_bins(p: np.ndarray, n_bins: int, w: np.ndarray) -> np.ndarray:
    """Bin index per row: equal total weight per bin, ties kept together."""
    order = np.argsort(p, kind="stable")
    cum = np.cumsum(w[order])
    edges_at = np.searchsorted(cum, cum[-1] * np.arange(1, n_bins) / n_bins, side="left")
    cut = np.unique(p[order][np.minimum(edges_at, len(p) - 1)])
    return np.searchsorted(cut, p, side="left")


def reliability_curve(y, p, n_bins: int = 15, sample_weight=None) -> pd.DataFrame:
    """Per quantile bin: mean predicted probability, observed rate, row count (weight)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    w = _w(y, sample_weight)
    b = _quantile_bins(p, n_bins, w)
    df = pd.DataFrame({"bin": b, "wp": w * p, "wy": w * y, "w": w}).groupby("bin").sum()
    df = df[df["w"] > 0]
    return pd.DataFrame({"bin": np.arange(len(df)), "mean_predicted": (df["wp"] / df["w"]).to_numpy(),
                         "observed": (df["wy"] / df["w"]).to_numpy(), "count": df["w"].to_numpy()})


def ece(y, p, n_bins: int = 15, sample_weight=None) -> float:
    """Expected calibration error over equal-mass bins."""
    rc = reliability_curve(y, p, n_bins, sample_weight)
    return float(np.sum(rc["count"] * np.abs(rc["mean_predicted"] - rc["observed"])) / rc["count"].sum())


def ece_noise_floor(p, n_bins: int = 15, n_draws: int = 200, seed: int = 0) -> dict[str, float]:
    """The ECE a perfectly calibrated model would show on these predictions by chance alone:
    labels drawn y* ~ Bernoulli(p) `n_draws` times, the ECE of `p` against each draw (the
    same quantile bins as `ece`). Returns the mean and the 95th percentile: an ECE within
    them is noise for this many rows, not miscalibration."""
    p = np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    bins = _quantile_bins(p, n_bins, np.ones(len(p)))
    onehot = np.zeros((len(p), int(bins.max()) + 1))
    onehot[np.arange(len(p)), bins] = 1.0
    expected = p @ onehot
    draws = (rng.random((n_draws, len(p))) < p).astype(float) @ onehot
    values = np.abs(draws - expected).sum(axis=1) / len(p)
    return {"mean": float(values.mean()), "p95": float(np.percentile(values, 95)),
            "draws": int(n_draws)}


def core_metrics(y, p, n_bins: int = 15, sample_weight=None) -> dict[str, float]:
    """roc_auc, pr_auc, log_loss, brier, ece."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    return {
        "roc_auc": float(roc_auc_score(y, p, sample_weight=sample_weight)),
        "pr_auc": float(average_precision_score(y, p, sample_weight=sample_weight)),
        "log_loss": float(log_loss(y, p, sample_weight=sample_weight, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p, sample_weight=sample_weight)),
        "ece": ece(y, p, n_bins, sample_weight),
    }


def gains_table(y, p, n_groups: int = 10) -> pd.DataFrame:
    """Deciles of predicted probability, best first: leads, converters, conversion rate, lift
    (rate / overall rate), cumulative share of leads and of converters (the gains curve)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(-p, kind="stable")
    group = np.floor(np.arange(len(p)) * n_groups / len(p)).astype(int) + 1
    df = pd.DataFrame({"decile": group, "y": y[order]}).groupby("decile")["y"].agg(["count", "sum"])
    base = y.mean()
    out = pd.DataFrame({
        "decile": df.index.to_numpy(),
        "leads": df["count"].to_numpy(),
        "converters": df["sum"].to_numpy(),
        "rate": (df["sum"] / df["count"]).to_numpy(),
    })
    out["lift"] = out["rate"] / base if base > 0 else np.nan
    out["cum_share_leads"] = out["leads"].cumsum() / out["leads"].sum()
    out["cum_gain"] = out["converters"].cumsum() / max(out["converters"].sum(), 1)
    out["cum_lift"] = out["cum_gain"] / out["cum_share_leads"]
    return out


def top_k(y, p, k: int, period=None) -> dict[str, float]:
    """Precision and recall when only the top `k` leads (per `period`, if given) are worked.

    With `period` (e.g. the as_of date), each period's top k count; totals pool the periods.
    """
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    period = np.zeros(len(y)) if period is None else np.asarray(period)
    hits = worked = 0
    for value in np.unique(period):
        idx = np.flatnonzero(period == value)
        top = idx[np.argsort(-p[idx], kind="stable")[:k]]
        hits += int(y[top].sum())
        worked += len(top)
    positives = int(y.sum())
    return {"k": int(k), "worked": int(worked), "hits": hits,
            "precision_at_k": hits / worked if worked else float("nan"),
            "recall_at_k": hits / positives if positives else float("nan")}


class _Prepared:
    """Per-model state shared by all bootstrap resamples: sort order, tie ends, ECE bins."""

    def __init__(self, y: np.ndarray, p: np.ndarray, n_bins: int):
        self.order = np.argsort(-p, kind="stable")
        ps = p[self.order]
        self.tie_end = np.r_[np.flatnonzero(np.diff(ps) != 0), len(ps) - 1]
        self.y_sorted = y[self.order].astype(float)
        self.p = p
        self.bins = _quantile_bins(p, n_bins, np.ones(len(p)))
        self.n_bins = int(self.bins.max()) + 1
        pc = np.clip(p, np.finfo(float).eps, 1 - np.finfo(float).eps)
        self.ll = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))
        self.sq = (p - y) ** 2
        self.y = y

    def metrics(self, w: np.ndarray) -> dict[str, float]:
        """Weighted core metrics (same values as `core_metrics` with sample_weight, except
        ECE, whose bins are fixed from the unweighted sample)."""
        ws = w[self.order]
        tp = np.cumsum(ws * self.y_sorted)[self.tie_end]
        fp = np.cumsum(ws * (1 - self.y_sorted))[self.tie_end]
        pos, neg = tp[-1], fp[-1]
        tpr, fpr = np.r_[0.0, tp / pos], np.r_[0.0, fp / neg]
        recall = tp / pos
        precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
        total = w.sum()
        wp = np.bincount(self.bins, w * self.p, self.n_bins)
        wy = np.bincount(self.bins, w * self.y, self.n_bins)
        return {
            "roc_auc": float(np.trapezoid(tpr, fpr)),
            "pr_auc": float(np.sum(np.diff(np.r_[0.0, recall]) * precision)),
            "log_loss": float(np.dot(w, self.ll) / total),
            "brier": float(np.dot(w, self.sq) / total),
            "ece": float(np.abs(wp - wy).sum() / total),
        }


def bootstrap_ci(
    y,
    probs: dict[str, np.ndarray],
    *,
    n_boot: int = 200,
    seed: int = 0,
    groups=None,
    n_bins: int = 15,
    diff: tuple[str, str] | None = None,
    level: float = 0.95,
    progress: bool | None = None,
) -> dict:
    """Percentile bootstrap intervals of the core metrics for each model, on shared resamples.

    With `groups` (lead ids) the resampling unit is the lead (cluster bootstrap), since one
    lead's monthly rows are not independent. A resample is a vector of integer row weights,
    so nothing is copied; the ECE bins are fixed from the full sample. With `diff=(a, b)`
    also returns the interval of roc_auc[a] - roc_auc[b] (paired: same resample for both).
    Returns {model: {metric: [lo, hi]}, "auc_diff": [lo, hi]}. `progress`: a bar of
    resamples on stderr, removed when done (None: when stderr is a terminal).
    """
    y = np.asarray(y, dtype=int)
    rng = np.random.default_rng(seed)
    if groups is None:
        codes, n_units = np.arange(len(y)), len(y)
    else:
        codes, uniq = pd.factorize(pd.Series(groups))
        n_units = len(uniq)
    prepared = {m: _Prepared(y, np.asarray(p, dtype=float), n_bins) for m, p in probs.items()}
    samples: dict[str, dict[str, list[float]]] = {m: {k: [] for k in CORE} for m in probs}
    diffs: list[float] = []
    for _ in bar(range(n_boot), unit="resample", desc="bootstrap", progress=progress,
                 leave=False):
        counts = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)
        w = counts[codes].astype(float)
        pos = np.dot(w, y)
        if pos == 0 or pos == w.sum():
            continue
        aucs = {}
        for m, prep in prepared.items():
            vals = prep.metrics(w)
            aucs[m] = vals["roc_auc"]
            for k, v in vals.items():
                samples[m][k].append(v)
        if diff is not None:
            diffs.append(aucs[diff[0]] - aucs[diff[1]])
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    out: dict = {m: {k: [float(np.percentile(v, lo)), float(np.percentile(v, hi))]
                     for k, v in ms.items()} for m, ms in samples.items()}
    if diff is not None:
        out["auc_diff"] = [float(np.percentile(diffs, lo)), float(np.percentile(diffs, hi))]
    return out


def wilson_ci(successes, n, z: float = 1.959963984540054) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (vectorised); (0, 1) when n == 0."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / n, 0.0)
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    lo = np.where(n > 0, np.clip(centre - half, 0, 1), 0.0)
    hi = np.where(n > 0, np.clip(centre + half, 0, 1), 1.0)
    return lo, hi


def wilson_interval(k: int, n: int) -> tuple[float, float]:
    """`wilson_ci` of one proportion k / n, as floats."""
    lo, hi = wilson_ci(k, n)
    return float(lo), float(hi)
