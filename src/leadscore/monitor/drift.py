"""Per-feature summaries for drift, and the population stability index (PSI). Pure functions.

A *bin spec* is learned once, on the training reference (`bin_spec`): per numeric feature the
inner edges of `bins` quantile bins (right-closed: (-inf, e0], (e0, e1], ..., (ek, inf);
repeated quantiles collapse, so a count feature that is mostly 0 gets few bins), per
categorical feature its `top_levels` most frequent levels (the rest is "other"), and the
same quantile edges for the probability; every reference level of a categorical feature is
kept too (`known`), so a level the training data never had is counted (`unseen`). A *summary* (`summarize`) counts a frame on that
spec: per feature the counts per bin and the nulls, the probability histogram (plus a fine
1/1000 histogram for quantiles), the grade counts. Summaries of chunks add up (`merge`), so
the batch job summarises chunk by chunk. Summaries hold counts only: no lead ids, no rows.

PSI = sum over bins of (a - e) * ln(a / e), with a and e the run's and the reference's
shares, each floored at `floor` so an empty bin stays finite. Nulls are a bin of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

GRADES: tuple[str, ...] = tuple(f"{letter}{digit}" for letter in "ABCD" for digit in "1234")
OTHER = "other"
FINE_BINS = 1000  # the fine probability histogram (quantiles to 0.001)
QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_KNOWN = 1000  # reference levels kept per categorical feature to tell a new level


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = 1e-4) -> float:
    """PSI of `actual` counts against `expected` counts on the same bins. Empty totals: 0."""
    e, a = np.asarray(expected, float), np.asarray(actual, float)
    if e.shape != a.shape:
        raise ValueError(f"psi: {e.size} expected bins but {a.size} actual bins")
    if e.sum() <= 0 or a.sum() <= 0:
        return 0.0
    e = np.maximum(e / e.sum(), floor)
    a = np.maximum(a / a.sum(), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def _numeric(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values.astype("object") if values.dtype == bool else values,
                         errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    """Inner edges of `bins` quantile bins of the non-null values (unique; [] if none)."""
    v = values[~np.isnan(values)]
    if v.size == 0:
        return []
    qs = np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(x) for x in np.unique(qs)]


def bin_spec(features: pd.DataFrame, probability: Sequence[float], *, categorical: Sequence[str],
             bins: int = 10, top_levels: int = 10) -> dict:
    """The bins of every feature column and of the probability, learned on the reference."""
    spec: dict[str, Any] = {"features": {}}
    for name in features.columns:
        col = features[name]
        if name in categorical:
            counts = col.dropna().astype(str).value_counts()
            levels = sorted(counts.index, key=lambda lv: (-counts[lv], lv))[:top_levels]
            spec["features"][name] = {"kind": "categorical", "levels": [str(lv) for lv in levels],
                                      "known": sorted(str(lv) for lv in counts.index)[:MAX_KNOWN]}
        else:
            spec["features"][name] = {"kind": "numeric", "edges": quantile_edges(_numeric(col), bins)}
    spec["probability"] = {"edges": quantile_edges(np.asarray(probability, float), bins)}
    return spec


def _bin_counts(values: np.ndarray, edges: Sequence[float]) -> tuple[list[int], int]:
    nulls = np.isnan(values)
    idx = np.searchsorted(np.asarray(edges, float), values[~nulls], side="left")
    return np.bincount(idx, minlength=len(edges) + 1).astype(int).tolist(), int(nulls.sum())


def summarize(features: pd.DataFrame, scored: pd.DataFrame, spec: Mapping) -> dict:
    """Counts of one frame on `spec`: per feature, the probability and the grade."""
    out: dict[str, Any] = {"rows": int(len(features)), "features": {}}
    for name, s in spec["features"].items():
        col = features[name] if name in features else pd.Series([None] * len(features), dtype=object)
        if s["kind"] == "categorical":
            text = col.astype("object").where(col.notna())
            known = {lv: i for i, lv in enumerate(s["levels"])}
            counts = [0] * (len(s["levels"]) + 1)
            seen, unseen = set(s.get("known", s["levels"])), 0
            for level, n in text.dropna().astype(str).value_counts().items():
                counts[known.get(level, len(s["levels"]))] += int(n)
                unseen += int(n) if level not in seen else 0
            out["features"][name] = {"counts": counts, "nulls": int(text.isna().sum()), "unseen": unseen}
        else:
            counts, nulls = _bin_counts(_numeric(col), s["edges"])
            out["features"][name] = {"counts": counts, "nulls": nulls}
    prob = np.asarray(scored["probability"], float) if len(scored) else np.zeros(0)
    counts, _ = _bin_counts(prob, spec["probability"]["edges"])
    fine = np.bincount(np.clip((np.nan_to_num(prob) * FINE_BINS).astype(int), 0, FINE_BINS - 1),
                       minlength=FINE_BINS)
    grades = scored["grade"].astype(str).value_counts() if len(scored) else pd.Series(dtype=int)
    out["probability"] = {"counts": counts, "fine": fine.astype(int).tolist(),
                          "sum": float(np.nansum(prob))}
    out["grades"] = {g: int(grades.get(g, 0)) for g in GRADES}
    return out


def empty_summary(spec: Mapping) -> dict:
    """The summary of no rows on `spec`."""
    return summarize(pd.DataFrame({n: pd.Series([], dtype=float) for n in spec["features"]}),
                     pd.DataFrame({"probability": [], "grade": []}), spec)


def merge(a: Mapping, b: Mapping) -> dict:
    """The summary of two disjoint frames, from theirs (same spec)."""
    def add(x: list, y: list) -> list:
        return [int(i) + int(j) for i, j in zip(x, y, strict=True)]

    return {
        "rows": a["rows"] + b["rows"],
        "features": {n: {"counts": add(f["counts"], b["features"][n]["counts"]),
                         "nulls": f["nulls"] + b["features"][n]["nulls"],
                         **({"unseen": f["unseen"] + b["features"][n]["unseen"]} if "unseen" in f else {})}
                     for n, f in a["features"].items()},
        "probability": {"counts": add(a["probability"]["counts"], b["probability"]["counts"]),
                        "fine": add(a["probability"]["fine"], b["probability"]["fine"]),
                        "sum": a["probability"]["sum"] + b["probability"]["sum"]},
        "grades": {g: a["grades"].get(g, 0) + b["grades"].get(g, 0) for g in GRADES},
    }


def quantiles(summary: Mapping, qs: Sequence[float] = QUANTILES) -> dict[str, float | None]:
    """Probability quantiles from the fine histogram (bin midpoints, to 0.001)."""
    fine = np.asarray(summary["probability"]["fine"], float)
    if fine.sum() == 0:
        return {f"p{round(q * 100):02d}": None for q in qs}
    cum = np.cumsum(fine) / fine.sum()
    return {f"p{round(q * 100):02d}": round((int(np.searchsorted(cum, q)) + 0.5) / FINE_BINS, 4)
            for q in qs}


def null_rate(summary: Mapping, name: str) -> float | None:
    f = summary["features"].get(name)
    if f is None:
        return None
    n = sum(f["counts"]) + f["nulls"]
    return f["nulls"] / n if n else None


def unseen_share(summary: Mapping, name: str) -> float | None:
    """Share of a categorical feature's rows in a level the reference never had."""
    f = summary["features"].get(name)
    if f is None or "unseen" not in f:
        return None
    n = sum(f["counts"]) + f["nulls"]
    return f["unseen"] / n if n else None


def feature_psi(reference: Mapping, run: Mapping, floor: float = 1e-4) -> dict[str, float]:
    """PSI of every feature of `run` against `reference` (nulls as a bin of their own)."""
    out = {}
    for name, ref in reference["features"].items():
        cur = run["features"].get(name)
        if cur is None:
            continue
        out[name] = psi([*ref["counts"], ref["nulls"]], [*cur["counts"], cur["nulls"]], floor)
    return out


def probability_psi(reference: Mapping, run: Mapping, floor: float = 1e-4) -> float:
    return psi(reference["probability"]["counts"], run["probability"]["counts"], floor)


def grade_psi(reference: Mapping, run: Mapping, floor: float = 1e-4) -> float:
    return psi([reference["grades"].get(g, 0) for g in GRADES],
               [run["grades"].get(g, 0) for g in GRADES], floor)


def grade_shares(summary: Mapping) -> dict[str, float]:
    total = sum(summary["grades"].values())
    return {g: (summary["grades"].get(g, 0) / total if total else 0.0) for g in GRADES}
