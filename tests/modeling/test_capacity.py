"""The capacity handoff: threshold and grade cut chosen on calib, reported on test."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.modeling.capacity import (
    capacity_grade_cut,
    capacity_handoff,
    capacity_summary,
    capacity_threshold,
    grade_order,
    speed_to_lead,
)


def _slice(months: list[str], n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = len(months) * n
    p = rng.beta(1, 12, rows)
    df = pd.DataFrame({"lead_id": [f"L{i % n}" for i in range(rows)],
                       "as_of": pd.to_datetime(np.repeat(months, n)),
                       "label": (rng.random(rows) < p).astype(int)})
    grades = np.where(p > 0.2, "A1", np.where(p > 0.1, "B1", np.where(p > 0.05, "A2", "D4")))
    return df, p, grades


def test_threshold_fills_capacity_on_calib_within_one_lead_per_month():
    calib, p, _ = _slice(["2025-01-01", "2025-02-01"], 2000, 0)
    t = capacity_threshold(p, calib["as_of"], 150)
    per_month = (p >= t).sum() / 2
    assert 149 <= per_month <= 150


def test_threshold_never_overflows_capacity_with_tied_probabilities():
    p = np.repeat([0.5, 0.2, 0.1], [80, 80, 240])
    period = np.tile([1, 2], 200)
    t = capacity_threshold(p, period, 60)  # 0.5 alone gives 40 per period, 0.2 would give 80
    assert t == 0.5


def test_grade_order_follows_calib_conversion_not_the_grade_names():
    order = grade_order(["A1", "A1", "B1", "B1", "A2", "A2"], [1, 0, 1, 1, 0, 0])
    assert order[:3] == ["B1", "A1", "A2"] and len(order) == 16 and order[3] == "A3"


def test_grade_cut_is_the_longest_run_of_best_grades_within_capacity():
    grades = ["A1"] * 40 + ["B1"] * 60 + ["A2"] * 100
    period = [1, 2] * 100
    assert capacity_grade_cut(grades, period, ["A1", "B1", "A2"], 50) == ["A1", "B1"]
    assert capacity_grade_cut(grades, period, ["A2", "A1"], 10) == ["A2"]  # the best, even if over


def test_speed_to_lead_counts_new_entries_per_working_day():
    lead = ["a", "b", "a", "b", "c"]
    period = pd.to_datetime(["2025-01-01"] * 2 + ["2025-02-01"] * 3)
    s = speed_to_lead(lead, period, [True, False, True, True, True], working_days=20, sla_hours=1)
    assert [m["in_top"] for m in s["months"]] == [1, 3]
    assert s["new_per_month"] == 2 and s["new_per_day"] == 0.1  # b and c entered in February
    assert s["in_top_per_day"] == 2 / 20


def test_capacity_handoff_reports_test_against_the_rules_mql_threshold():
    calib, pc, gc = _slice(["2025-01-01", "2025-02-01"], 2000, 1)
    test, pt, gt = _slice(["2025-05-01", "2025-06-01", "2025-07-01"], 2000, 2)
    points = np.round(pt * 400)
    out = capacity_handoff(calib, test, p_calib=pc, p_test=pt, grades_calib=gc, grades_test=gt,
                           rules_points_test=points, rules_points_calib=np.round(pc * 400),
                           mql_threshold=50, capacity=200, working_days=21, sla_hours=1)
    assert 199 <= out["calib"]["threshold_leads_per_month"] <= 200
    assert out["grade_cut"][0] == "A1" and out["calib"]["grade_cut_leads_per_month"] <= 200
    t = out["test"]
    assert t["rules_mql"]["leads"] == int((points >= 50).sum())
    assert t["threshold"]["observed_conversions"] == int(test["label"][pt >= out["threshold"]].sum())
    assert t["rules_at_capacity"]["leads_per_month"] <= 260
    assert "rules MQL >= 50 points" in capacity_summary(out)
