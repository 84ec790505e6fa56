"""Example leads per grade (`leadscore.explain.examples.pick_examples`): every grade in
order, distinct leads, seeded, scored by the scorer it is given."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.explain.examples import pick_examples
from leadscore.explain.reasons import Reasons

GRADES = [f"{letter}{d}" for letter in "ABCD" for d in "1234"]


class FakeScorer:
    """Scores a row from its columns: probability `p`, grade `g` (one reason per row)."""

    def __init__(self) -> None:
        self.calls = 0

    def explain(self, rows: pd.DataFrame, *, reasons: bool = True):
        self.calls += 1
        n = len(rows)
        out = pd.DataFrame({"probability": rows["p"].to_numpy(), "grade": rows["g"].to_numpy(),
                            "fit_grade": rows["g"].str[0].to_numpy(),
                            "engagement_grade": rows["g"].str[1].to_numpy()}, index=rows.index)
        why = Reasons(np.zeros((n, 1), dtype=np.int64), rows["p"].to_numpy()[:, None],
                      np.array([["x+"]] * n, dtype=object), np.array([["X"]] * n, dtype=object))
        return out, why


def _rows(n: int = 400, seed: int = 0, as_of: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"lead_id": [f"L{i % 150:03d}" for i in range(n)],  # repeated leads
                       "g": rng.choice(GRADES[:12], size=n),  # no D grades at all
                       "p": rng.random(n)})
    if as_of:
        df["as_of"] = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 90, n), unit="D")
    return df


def test_every_grade_in_order_with_distinct_seeded_leads():
    rows = _rows()
    got = pick_examples(rows, rows["g"], FakeScorer(), per_grade=3, seed=7)
    assert list(got) == GRADES
    assert all(got[g] == [] for g in GRADES[12:])
    for grade in GRADES[:12]:
        picked = got[grade]
        assert 1 <= len(picked) <= 3
        assert len({e["lead_id"] for e in picked}) == len(picked)
        for e in picked:
            assert e["grade"] == grade and e["fit_grade"] + e["engagement_grade"] == grade
            assert e["reasons"] == [{"code": "x+", "text": "X", "contribution": e["probability"]}]
            src = rows[(rows["lead_id"] == e["lead_id"]) & (rows["g"] == grade) & (rows["p"] == e["probability"])]
            assert len(src) == 1 and e["as_of"] == src["as_of"].iloc[0].date().isoformat()
    assert pick_examples(rows, rows["g"], FakeScorer(), per_grade=3, seed=7) == got
    assert pick_examples(rows, rows["g"], FakeScorer(), per_grade=3, seed=8) != got


def test_without_as_of_and_with_zero_per_grade():
    rows = _rows(as_of=False)
    got = pick_examples(rows, rows["g"], FakeScorer(), per_grade=2, seed=1)
    assert all(e["as_of"] is None for picked in got.values() for e in picked)
    scorer = FakeScorer()
    none = pick_examples(rows, rows["g"], scorer, per_grade=0, seed=1)
    assert none == {g: [] for g in GRADES} and scorer.calls == 0
