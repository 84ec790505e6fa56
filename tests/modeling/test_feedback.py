"""Sales' acceptance of MQLs by grade (leadscore.modeling.feedback) on hand-built rows."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from leadscore.modeling.feedback import (
    NO_FEEDBACK,
    acceptance_by_grade,
    match_decisions,
    read_feedback,
)
from leadscore.modeling.metrics import wilson_interval


def _ts(values):
    return pd.to_datetime(pd.Series(values)).astype("datetime64[us]")


# Two scoring months; lead L1 is scored in both (graded B1 then A1), L2..L4 once.
ROWS = pd.DataFrame({
    "lead_id": ["L1", "L1", "L2", "L3", "L4"],
    "as_of": _ts(["2025-01-01", "2025-02-01", "2025-01-01", "2025-01-01", "2025-02-01"]),
})
MODEL = ["B1", "A1", "A1", "D4", "D4"]
RULES = ["A2", "A2", "C3", "A2", "A2"]
FEEDBACK = pd.DataFrame({
    "lead_id": ["L1", "L2", "L3", "L4", "L4", "L9"],
    "decided_at": _ts(["2025-02-10", "2025-01-20", "2025-04-01", "2025-02-01", "2025-02-05",
                       "2025-01-05"]),
    "accepted": [True, True, False, False, False, True],
    "reason": [None, None, "no_budget", "no_need", "no_authority", None],
})


def test_each_decision_counts_once_for_the_latest_scoring_before_it():
    d = match_decisions(ROWS, FEEDBACK, horizon_days=90)
    # L1's decision is in the windows of both its rows: it goes to February's (row 1).
    # L3's decision is on day 90 of its window (included); L4's first decision is at as_of
    # itself (excluded: the window is (as_of, as_of + 90]); L9 has no row.
    assert list(zip(d["lead_id"], d["row"], strict=True)) == [("L1", 1), ("L2", 2), ("L3", 3), ("L4", 4)]


def test_acceptance_by_grade_model_against_rules():
    out = acceptance_by_grade(ROWS, FEEDBACK, {"lightgbm": MODEL, "rules": RULES}, horizon_days=90,
                              min_decisions=2)
    model, rules = out["by_grade"]["lightgbm"], out["by_grade"]["rules"]
    assert set(model) == {"A1", "D4"}  # B1 (L1's January grade) gets no decision
    assert model["A1"]["decisions"] == 2 and model["A1"]["acceptance_rate"] == 1.0
    assert model["D4"]["accepted"] == 0 and model["D4"]["acceptance_rate"] == 0.0
    assert [r["reason"] for r in model["D4"]["top_rejection_reasons"]] == ["no_authority", "no_budget"]
    assert rules["A2"]["decisions"] == 3 and rules["A2"]["acceptance_rate"] == pytest.approx(1 / 3)
    assert rules["C3"]["decisions"] == 1 and rules["C3"]["acceptance_rate"] is None  # under the guard
    assert rules["C3"]["acceptance_ci"] is None
    assert out["by_letter"]["lightgbm"]["A"]["decisions"] == 2
    assert out["overall"]["decisions"] == 4 and out["overall"]["accepted"] == 2
    assert out["decisions_in_table"] == 6 and out["available"] is True
    lo, hi = rules["A2"]["acceptance_ci"]
    assert (lo, hi) == pytest.approx(wilson_interval(1, 3)) and lo < 1 / 3 < hi


def test_wilson_interval_matches_the_textbook_figures():
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0


def test_top_rejection_reasons_rank_by_count_and_give_shares():
    rows = pd.DataFrame({"lead_id": [f"L{i}" for i in range(6)], "as_of": _ts(["2025-01-01"] * 6)})
    fb = pd.DataFrame({"lead_id": [f"L{i}" for i in range(6)], "decided_at": _ts(["2025-01-03"] * 6),
                       "accepted": [False] * 5 + [True],
                       "reason": ["bad_contact", "no_need", "bad_contact", "duplicate", "bad_contact", None]})
    cell = acceptance_by_grade(rows, fb, {"rules": ["C1"] * 6}, horizon_days=30, top=2)["by_grade"]["rules"]["C1"]
    assert cell["top_rejection_reasons"] == [
        {"reason": "bad_contact", "count": 3, "share": 0.6},
        {"reason": "duplicate", "count": 1, "share": 0.2},  # ties broken by name
    ]


def test_no_feedback_table_is_marked_and_read_feedback_finds_none(tmp_path):
    assert acceptance_by_grade(ROWS, None, {"rules": RULES}, horizon_days=90) == NO_FEEDBACK
    assert read_feedback(tmp_path / "absent.duckdb") is None
    path = tmp_path / "crm.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE leads (lead_id VARCHAR)")
    assert read_feedback(path) is None
    with duckdb.connect(str(path)) as con:
        con.register("fb", FEEDBACK)
        con.execute("CREATE TABLE mql_feedback AS SELECT * FROM fb")
    assert len(read_feedback(path)) == len(FEEDBACK)


def test_grades_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match="grades of rules"):
        acceptance_by_grade(ROWS, FEEDBACK, {"rules": RULES[:2]}, horizon_days=90)


def test_acceptance_is_not_a_target_but_sql_is():
    from leadscore.config import params_from_dict
    from leadscore.errors import ConfigError

    assert params_from_dict({"features": {"target_stage": "sql"}}).features.target_stage == "sql"
    with pytest.raises(ConfigError, match="target_stage"):
        params_from_dict({"features": {"target_stage": "sql_accepted"}})
