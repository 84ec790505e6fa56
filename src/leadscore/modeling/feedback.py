"""What sales said about the MQLs: acceptance by grade, model against rules (evaluate.json's
`feedback`).

The optional CRM table `mql_feedback` records sales' accept or reject of an MQL (and, for a
rejection, a reason from `schema.FEEDBACK_REASONS`). `acceptance_by_grade` matches every
decision to the out-of-time test rows: a decision counts for a row (lead_id, as_of) when it
was made in (as_of, as_of + horizon_days], and a decision in the windows of several rows of
its lead (monthly as_of dates, 90-day windows) counts once, for the latest of them: the grade
the lead had at the last scoring before sales decided. Per grade (and per fit letter A-D) of
each scheme (the model that ships and the points rules): decisions, accepted share with a
Wilson 95% interval (none under `min_decisions` decisions), and the most frequent rejection
reasons.

Acceptance is observed only for leads that were handed over, so it judges the grades and the
hand-over threshold; it is not a training target (README, "Sales feedback on MQLs").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from leadscore.modeling.metrics import wilson_interval
from leadscore.schema import FEEDBACK_REASONS, MQL_FEEDBACK

MIN_DECISIONS = 20  # fewer decisions in a grade: counts only, no rate or interval
TOP_REASONS = 3
NO_FEEDBACK = {"available": False, "note": "no mql_feedback table in the CRM"}


def match_decisions(rows: pd.DataFrame, feedback: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """Each decision made in (as_of, as_of + horizon_days] of a row of its lead, with the
    position (`row`) of the latest such row in `rows` (lead_id, as_of). Columns: row,
    lead_id, decided_at, accepted, reason."""
    r = pd.DataFrame({"row": np.arange(len(rows)), "lead_id": rows["lead_id"].astype(str).to_numpy(),
                      "as_of": pd.to_datetime(rows["as_of"]).to_numpy()})
    f = feedback.loc[:, ["lead_id", "decided_at", "accepted", "reason"]].copy()
    f["lead_id"] = f["lead_id"].astype(str)
    f["decided_at"] = pd.to_datetime(f["decided_at"])
    con = duckdb.connect()
    try:
        con.register("r", r)
        con.register("f", f)
        return con.execute(f"""
            SELECT arg_max(r.row, r.as_of) AS row, f.lead_id, f.decided_at,
                   any_value(f.accepted) AS accepted, any_value(f.reason) AS reason
            FROM f JOIN r ON r.lead_id = f.lead_id AND f.decided_at > r.as_of
                         AND f.decided_at <= r.as_of + INTERVAL {int(horizon_days)} DAY
            WHERE f.accepted IS NOT NULL
            GROUP BY f.lead_id, f.decided_at
            ORDER BY f.lead_id, f.decided_at""").df()
    finally:
        con.close()


def _cell(accepted: pd.Series, reasons: pd.Series, min_decisions: int, top: int) -> dict:
    n, k = int(len(accepted)), int(accepted.sum())
    enough = n >= max(min_decisions, 1)
    rejected = reasons[~accepted.astype(bool)].fillna("unknown")
    counts = rejected.value_counts()
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return {
        "decisions": n,
        "accepted": k,
        "rejected": n - k,
        "acceptance_rate": k / n if enough else None,
        "acceptance_ci": list(wilson_interval(k, n)) if enough else None,
        "top_rejection_reasons": [
            {"reason": str(r), "count": int(c), "share": int(c) / max(n - k, 1)} for r, c in order
        ],
    }


def _by(keys: np.ndarray, d: pd.DataFrame, min_decisions: int, top: int) -> dict:
    return {str(g): _cell(d["accepted"][keys == g], d["reason"][keys == g], min_decisions, top)
            for g in sorted(set(keys))}


def acceptance_by_grade(
    rows: pd.DataFrame,
    feedback: pd.DataFrame | None,
    grades: Mapping[str, Sequence[str] | np.ndarray],
    *,
    horizon_days: int,
    min_decisions: int = MIN_DECISIONS,
    top: int = TOP_REASONS,
) -> dict:
    """evaluate.json's `feedback` block: acceptance by grade per scheme in `grades` ({"lightgbm":
    grades aligned with `rows`, "rules": ...}), overall and by fit letter, and the top
    rejection reasons per grade. `rows` holds lead_id and as_of (the test slice); `feedback`
    is the mql_feedback table, or None when the CRM has none (then `NO_FEEDBACK`)."""
    if feedback is None:
        return dict(NO_FEEDBACK)
    missing = [c for c in MQL_FEEDBACK.required if c not in feedback.columns]
    if missing:
        raise ValueError(f"mql_feedback: missing column(s) {missing}")
    if "reason" not in feedback.columns:
        feedback = feedback.assign(reason=None)
    d = match_decisions(rows, feedback, horizon_days)
    d["accepted"] = d["accepted"].astype(bool)
    out: dict = {
        "available": True,
        "horizon_days": int(horizon_days),
        "min_decisions": int(min_decisions),
        "reasons": list(FEEDBACK_REASONS),
        "decisions_in_table": int(len(feedback)),
        "overall": _cell(d["accepted"], d["reason"], min_decisions, top),
        "by_grade": {}, "by_letter": {},
    }
    for scheme, g in grades.items():
        g = np.asarray(g).astype(str)
        if len(g) != len(rows):
            raise ValueError(f"grades of {scheme}: {len(g)} values for {len(rows)} rows")
        keys = g[d["row"].to_numpy(dtype=int)] if len(d) else np.array([], dtype=str)
        out["by_grade"][scheme] = _by(keys, d, min_decisions, top)
        out["by_letter"][scheme] = _by(np.array([k[:1] for k in keys], dtype=str), d, min_decisions, top)
    return out


def read_feedback(path: str | Path) -> pd.DataFrame | None:
    """The mql_feedback table of a (validated) CRM DuckDB file; None when the file or the
    table is absent."""
    path = Path(path)
    if not path.exists():
        return None
    con = duckdb.connect(str(path), read_only=True)
    try:
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
        if MQL_FEEDBACK.name not in present:
            return None
        return con.execute(f"SELECT * FROM {MQL_FEEDBACK.name} ORDER BY lead_id, decided_at").df()
    finally:
        con.close()
