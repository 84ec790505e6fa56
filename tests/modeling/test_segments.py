"""Quality by segment: ROC-AUC and conversion by grade per segment, with the data guard."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from leadscore.modeling.segments import conversion_by_grade, segment_quality, weighted_auc


def _test_slice(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 3000
    p = rng.beta(1, 8, n)
    source = np.where(np.arange(n) < 100, "tiny", np.where(np.arange(n) % 2, "web", "partner"))
    df = pd.DataFrame({"lead_id": np.arange(n) // 3, "label": (rng.random(n) < p).astype(int),
                       "source": source, "country": "US"})
    return df, p


def test_weighted_auc_matches_sklearn_with_ties_and_weights():
    rng = np.random.default_rng(3)
    p = rng.integers(0, 10, 400) / 10
    y = (rng.random(400) < p).astype(float)
    w = rng.integers(0, 3, 400).astype(float)
    rank = np.unique(p, return_inverse=True)[1]
    assert abs(weighted_auc(rank, y, w) - roc_auc_score(y, p, sample_weight=w)) < 1e-12


def test_segments_below_the_guard_are_omitted():
    df, p = _test_slice()
    out = segment_quality(df, {"lightgbm": p}, {}, columns=("source", "industry"), min_positives=20,
                          n_boot=20)
    values = [s["value"] for s in out["columns"]["source"]["segments"]]
    assert values == ["partner", "web"] and out["columns"]["source"]["omitted"] == 1  # "tiny"
    assert out["missing_columns"] == ["industry"]


def test_segment_auc_is_the_auc_of_its_rows_with_a_grouped_interval():
    df, p = _test_slice()
    grades = np.where(p > 0.2, "A1", "D4")
    out = segment_quality(df, {"lightgbm": p}, {"lightgbm": grades}, columns=("source",),
                          min_positives=20, n_boot=50)
    web = out["columns"]["source"]["segments"][1]
    mask = (df["source"] == "web").to_numpy()
    assert web["rows"] == mask.sum() and web["positives"] == df["label"][mask].sum()
    assert web["lightgbm"]["roc_auc"] == roc_auc_score(df["label"][mask], p[mask])
    lo, hi = web["lightgbm"]["roc_auc_ci"]
    assert lo < web["lightgbm"]["roc_auc"] < hi
    assert set(web["lightgbm"]["by_grade"]) == {"A1", "D4"}


def test_conversion_by_grade_counts_leads_and_conversions():
    assert conversion_by_grade([1, 0, 0, 1], ["B1", "A1", "A1", "A1"]) == {
        "A1": [3, 1], "B1": [1, 1]}


def test_bant_completeness_counts_answered_questions():
    import pandas as pd

    from leadscore.modeling.segments import SEGMENT_COLUMNS, with_bant_answers

    frame = pd.DataFrame({"bant_budget": ["yes", "unknown", "no", None],
                          "bant_timeline": ["now", "unknown", "unknown", "3-6 months"]})
    assert with_bant_answers(frame)["bant_answers"].tolist() == ["2 of 2", "0 of 2", "1 of 2", "1 of 2"]
    assert {"bant_budget", "bant_timeline", "bant_answers"} <= set(SEGMENT_COLUMNS)
    plain = pd.DataFrame({"source": ["web"]})
    assert with_bant_answers(plain) is plain
