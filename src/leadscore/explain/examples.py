"""Example leads per grade, with their reasons (reports/examples.json).

`pick_examples` takes, for every grade A1..D4 in order, up to `per_grade` distinct leads
(by lead_id) of a scored slice, in a seeded random order, and scores them with the
`leadscore.serve.scorer.Scorer` to get their probability, grades and reasons. A grade with
no lead gets an empty list. The explain stage and flat mode both use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from leadscore.explain.grades import DIGITS, LETTERS

if TYPE_CHECKING:
    from leadscore.serve.scorer import Scorer


def _date(value: object) -> str | None:
    """The as_of date as YYYY-MM-DD; None when missing."""
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).date().isoformat()


def pick_examples(rows: pd.DataFrame, grades, scorer: Scorer, per_grade: int, seed: int) -> dict:
    """{grade: [{lead_id, as_of, probability, grade, fit_grade, engagement_grade, reasons}]}.

    `rows` are the slice's feature rows (with lead_id; as_of when known, else None) and
    `grades` their grades (same order). Up to `per_grade` distinct leads per grade (none for
    0), drawn by one `np.random.default_rng(seed)` shuffling each grade's rows in turn (A1
    first)."""
    rng = np.random.default_rng(seed)
    grades = np.asarray(grades)
    leads = rows["lead_id"].to_numpy()
    out: dict = {}
    for grade in (f"{letter}{d}" for letter in LETTERS for d in DIGITS):
        pos = np.flatnonzero(grades == grade)
        rng.shuffle(pos)
        chosen, seen = [], set()
        for i in pos:
            if len(chosen) >= per_grade:
                break
            if leads[i] not in seen:
                chosen.append(i)
                seen.add(leads[i])
        if not chosen:
            out[grade] = []
            continue
        picked = rows.iloc[chosen]
        s, why = scorer.explain(picked)
        as_of = picked["as_of"] if "as_of" in picked else pd.Series([None] * len(picked))
        out[grade] = [{"lead_id": str(lead), "as_of": _date(when), "probability": float(p), "grade": g,
                       "fit_grade": fg, "engagement_grade": eg, "reasons": reasons}
                      for lead, when, p, g, fg, eg, reasons in zip(
                          picked["lead_id"], as_of, s["probability"], s["grade"], s["fit_grade"],
                          s["engagement_grade"], why.to_lists(), strict=True)]
    return out
