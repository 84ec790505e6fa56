"""What changed between champion and challenger (leadscore.lifecycle.changes), on tiny frames."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from leadscore.lifecycle.changes import GRADES, compare_scores, format_changes

IDS = ["L001", "L002", "L003", "L004"]
LABELS = {"pricing_page_view_30d": "Pricing-page views (30 days)", "seniority": "Seniority",
          "rule_demo_request": "Demo request (rule)"}


def _scored(grades: list[str], probs: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"grade": grades, "probability": probs})


def _compare(**kw) -> dict:
    args = dict(
        lead_ids=IDS,
        champion_scored=_scored(["B2", "A1", "C3", "D4"], [0.10, 0.40, 0.05, 0.01]),
        challenger_scored=_scored(["A1", "A1", "C4", "D4"], [0.35, 0.42, 0.04, 0.01]),
        champion_contrib=pd.DataFrame({"pricing_page_view_30d": [0.1, -0.1, 0.2, 0.0],
                                       "seniority": [0.5, 0.5, -0.5, 0.5]}),
        challenger_contrib=pd.DataFrame({"pricing_page_view_30d": [0.3, -0.3, 0.2, 0.0],
                                         "rule_demo_request": [1.0, 0.0, 0.0, 0.0]}),
        labels=LABELS,
        champion_info={"kind": "lightgbm", "model_version": "ab12", "registry_version": "3",
                       "trained_by": "someone"},
        challenger_info={"kind": "rules", "model_version": "cd34", "registry_version": "4"},
        challenger_reasons=[[{"code": "demo_request+", "text": "Requested a demo",
                              "contribution": 1.0, "email": "ann@x.com"}], [], [], []],
    )
    return compare_scores(**(args | kw))


def test_migration_counts_sum_to_rows_and_place_each_move():
    ch = _compare()
    counts = ch["migration"]["counts"]
    assert ch["migration"]["grades"] == list(GRADES) and len(counts) == 16
    assert all(len(row) == 16 for row in counts)
    assert sum(map(sum, counts)) == 4 == ch["rows"]
    b2, a1, c3, c4, d4 = (GRADES.index(g) for g in ("B2", "A1", "C3", "C4", "D4"))
    assert counts[b2][a1] == 1  # L001: champion B2 -> challenger A1 (row = champion)
    assert counts[a1][b2] == 0
    assert counts[a1][a1] == 1 and counts[c3][c4] == 1 and counts[d4][d4] == 1


def test_grade_mix_covers_all_grades_in_order():
    mix = _compare()["grade_mix"]
    for side in ("champion", "challenger"):
        assert list(mix[side]) == list(GRADES)
        assert sum(mix[side].values()) == pytest.approx(1.0)
    assert mix["champion"]["A1"] == 0.25 and mix["challenger"]["A1"] == 0.5
    assert mix["champion"]["B2"] == 0.25 and mix["challenger"]["B2"] == 0.0


def test_drivers_largest_change_first_and_one_sided_items_count_as_zero():
    drivers = _compare()["drivers"]
    by = {d["feature"]: d for d in drivers}
    # mean |contribution|: seniority 0.5 -> 0 (missing), demo rule 0 -> 0.25, pricing 0.1 -> 0.2
    assert [d["feature"] for d in drivers] == ["seniority", "rule_demo_request",
                                               "pricing_page_view_30d"]
    assert by["seniority"] == {"feature": "seniority", "label": "Seniority", "champion": 0.5,
                               "challenger": 0.0, "change": -0.5}
    assert by["rule_demo_request"]["champion"] == 0.0
    assert by["rule_demo_request"]["challenger"] == pytest.approx(0.25)
    assert by["pricing_page_view_30d"]["change"] == pytest.approx(0.1)
    assert by["pricing_page_view_30d"]["label"] == "Pricing-page views (30 days)"


def test_unlabelled_item_is_shown_by_its_name():
    ch = _compare(labels={})
    assert {d["label"] for d in ch["drivers"]} == {"seniority", "rule_demo_request",
                                                    "pricing_page_view_30d"}


def test_movers_by_grade_distance_then_probability_change_with_reasons():
    movers = _compare()["movers"]
    # L001 B2 -> A1 is 2 steps; L003 C3 -> C4 is 1; L002 and L004 keep their grade
    assert [m["lead_id"] for m in movers] == ["L001", "L003"]
    top = movers[0]
    assert (top["from"], top["to"], top["steps"]) == ("B2", "A1", 2)
    assert top["champion_probability"] == 0.10 and top["challenger_probability"] == 0.35
    assert top["reasons"] == [{"code": "demo_request+", "text": "Requested a demo",
                               "contribution": 1.0}]  # only whitelisted keys
    assert "champion_reasons" not in top  # not given


def test_movers_are_limited_and_each_lead_appears_once():
    ids = ["L1", "L1", "L2", "L3"]  # L1 scored at two as-of dates
    ch = _compare(lead_ids=ids,
                  champion_scored=_scored(["D4", "C4", "B1", "A2"], [0.01, 0.02, 0.2, 0.3]),
                  challenger_scored=_scored(["A1", "A4", "A1", "A1"], [0.5, 0.3, 0.4, 0.31]),
                  n_movers=2, challenger_reasons=None,
                  champion_reasons=[[{"code": "x-", "text": "X", "contribution": -0.2}]] * 4)
    movers = ch["movers"]
    assert [m["lead_id"] for m in movers] == ["L1", "L2"]
    assert movers[0]["from"] == "D4" and movers[0]["steps"] == 6  # the bigger of L1's moves
    assert movers[0]["reasons"] == [] and movers[0]["champion_reasons"][0]["text"] == "X"


def test_probability_change_breaks_grade_distance_ties():
    ch = _compare(champion_scored=_scored(["A2", "A2", "A2", "A2"], [0.2, 0.2, 0.2, 0.2]),
                  challenger_scored=_scored(["A1", "A1", "A3", "A2"], [0.21, 0.5, 0.1, 0.9]))
    assert [m["lead_id"] for m in ch["movers"]] == ["L002", "L003", "L001"]


def test_identity_keeps_only_known_keys_and_document_is_json():
    ch = _compare()
    assert ch["champion"] == {"registry_version": "3", "model_version": "ab12", "kind": "lightgbm"}
    assert ch["challenger"]["kind"] == "rules"
    text = json.dumps(ch)
    assert "ann@x.com" not in text and "someone" not in text


def test_rejects_unknown_grades_and_misaligned_rows():
    with pytest.raises(ValueError, match="outside A1..D4"):
        _compare(challenger_scored=_scored(["A1", "A1", "E9", "D4"], [0.1] * 4))
    with pytest.raises(ValueError, match="challenger scores have 3 rows, expected 4"):
        _compare(challenger_scored=_scored(["A1", "A1", "D4"], [0.1] * 3))
    with pytest.raises(ValueError, match="champion contributions have 2 rows"):
        _compare(champion_contrib=pd.DataFrame({"x": [0.1, 0.2]}))
    with pytest.raises(ValueError, match="lack the column 'probability'"):
        _compare(champion_scored=pd.DataFrame({"grade": ["A1"] * 4}))


def test_no_rows_gives_an_empty_document():
    empty = _scored([], [])
    ch = _compare(lead_ids=[], champion_scored=empty, challenger_scored=empty,
                  champion_contrib=pd.DataFrame({"seniority": []}),
                  challenger_contrib=pd.DataFrame({"seniority": []}), challenger_reasons=None)
    assert ch["rows"] == 0 and ch["movers"] == [] and sum(map(sum, ch["migration"]["counts"])) == 0
    assert set(ch["grade_mix"]["champion"].values()) == {0.0}
    assert ch["drivers"] == [{"feature": "seniority", "label": "Seniority", "champion": 0.0,
                              "challenger": 0.0, "change": 0.0}]


def test_format_changes_summarises_for_logs():
    text = format_changes(_compare())
    assert text.startswith("what changed (lightgbm 3 -> rules 4): 4 rows, 2 (50.0%) change grade")
    assert "A1 share 25.0% -> 50.0%" in text
    assert "Seniority -0.500, Demo request (rule) +0.250" in text and "2 example movers" in text
