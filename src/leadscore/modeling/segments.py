"""Quality by segment on the out-of-time test slice: ROC-AUC and conversion by grade per
lead source, country, industry and company size band, for each model given.

Enough-data guard: a segment (one value of one column) is reported only with at least
`min_positives` conversions and as many non-converting rows (an AUC needs both classes
and a handful of positives to mean anything); smaller segments are counted in `omitted`,
never shown. The ROC-AUC interval is a lead-grouped bootstrap (leads are resampled whole,
since one lead appears at several monthly snapshots), percentile 95%.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

SEGMENT_COLUMNS: tuple[str, ...] = ("source", "country", "industry", "company_size_band",
                                     "bant_budget", "bant_timeline", "bant_answers")
BANT_COLUMNS: tuple[str, ...] = ("bant_budget", "bant_timeline")


def with_bant_answers(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` plus `bant_answers`: how many BANT questions the lead answered ("0 of 2" ...),
    the BANT completeness view; unchanged when the frame has no BANT columns."""
    present = [c for c in BANT_COLUMNS if c in frame.columns]
    if not present:
        return frame
    known = sum((frame[c].astype("string").fillna("unknown") != "unknown").astype(int) for c in present)
    return frame.assign(bant_answers=known.astype(str) + f" of {len(present)}")


def weighted_auc(rank, y, w) -> float:
    """ROC-AUC with row weights `w` (ties count one half); `rank` are the dense ranks of the
    scores (`np.unique(p, return_inverse=True)[1]`). NaN when a class has no weight."""
    n = int(rank.max()) + 1 if len(rank) else 0
    wpos = np.bincount(rank, weights=w * y, minlength=n)
    wneg = np.bincount(rank, weights=w * (1 - y), minlength=n)
    tot_pos, tot_neg = wpos.sum(), wneg.sum()
    if tot_pos <= 0 or tot_neg <= 0:
        return float("nan")
    below = np.cumsum(wneg) - wneg  # negatives scored strictly lower
    return float((wpos * (below + 0.5 * wneg)).sum() / (tot_pos * tot_neg))


def grouped_auc_ci(y, p, groups, *, n_boot: int, seed: int, level: float = 0.95) -> list[float] | None:
    """Percentile bootstrap interval of ROC-AUC, resampling whole `groups` (lead ids): each
    draw weights a row by how often its group was drawn. None when under half the draws
    hold both classes."""
    y = np.asarray(y, dtype=float)
    rank = np.unique(np.asarray(p, dtype=float), return_inverse=True)[1].ravel()
    codes, uniq = pd.factorize(np.asarray(groups))
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        w = np.bincount(rng.integers(0, len(uniq), len(uniq)), minlength=len(uniq))[codes]
        auc = weighted_auc(rank, y, w.astype(float))
        if np.isfinite(auc):
            stats.append(auc)
    if len(stats) < max(10, n_boot // 2):
        return None
    a = (1 - level) / 2
    return [float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))]


def conversion_by_grade(y, grades) -> dict[str, list]:
    """{grade: [leads, conversions]} for the grades present, in grade-name order (the rate is
    their ratio; left out to keep evaluate.json small)."""
    df = pd.DataFrame({"y": np.asarray(y, dtype=int), "g": np.asarray(grades, dtype=str)})
    agg = df.groupby("g")["y"].agg(["size", "sum"]).sort_index()
    return {str(g): [int(r["size"]), int(r["sum"])] for g, r in agg.iterrows()}


def segment_quality(test: pd.DataFrame, probs: dict[str, np.ndarray], grades: dict[str, np.ndarray], *,
                    columns=SEGMENT_COLUMNS, min_positives: int = 30, n_boot: int = 100,
                    seed: int = 0) -> dict:
    """{"min_positives", "columns": {column: {"segments": [...], "omitted": n}}}; each segment:
    value, rows, positives, rate and per model {roc_auc, roc_auc_ci, by_grade}.
    `test` needs `label`, `lead_id` and the `columns` present (absent columns are listed in
    `missing_columns`); `probs` / `grades` are aligned with its rows, keyed by model name."""
    y_all = test["label"].to_numpy().astype(int)
    lead = test["lead_id"].to_numpy()
    out: dict = {"min_positives": int(min_positives), "models": list(probs), "columns": {},
                 "missing_columns": [c for c in columns if c not in test.columns]}
    for col in (c for c in columns if c in test.columns):
        values = test[col].astype("string").fillna("unknown").to_numpy()
        segs, omitted = [], 0
        for value in sorted(pd.unique(values)):
            idx = np.flatnonzero(values == value)
            y = y_all[idx]
            pos = int(y.sum())
            if pos < min_positives or len(y) - pos < min_positives:
                omitted += 1
                continue
            seg = {"value": str(value), "rows": int(len(y)), "positives": pos, "rate": float(y.mean())}
            for name, p in probs.items():
                p = np.asarray(p, dtype=float)[idx]
                entry = {"roc_auc": float(roc_auc_score(y, p)),
                         "roc_auc_ci": grouped_auc_ci(y, p, lead[idx], n_boot=n_boot, seed=seed)}
                if name in grades:
                    entry["by_grade"] = conversion_by_grade(y, np.asarray(grades[name])[idx])
                seg[name] = entry
            segs.append(seg)
        out["columns"][col] = {"segments": segs, "omitted": omitted}
    return out
