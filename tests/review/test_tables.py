"""leadscore.review.tables and .project on tiny stage outputs: reshaping only."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.errors import InputError
from leadscore.review import tables
from leadscore.review.project import ENV_VAR, Project, find_project

EVALUATE = {
    "rules": {"roc_auc": 0.7, "roc_auc_ci": [0.68, 0.72], "ece": 0.01},
    "lightgbm": {"roc_auc": 0.8, "roc_auc_ci": [0.78, 0.82], "ece": 0.005},
    "segments": {"columns": {"source": {"segments": [
        {"value": "webinar", "rows": 10, "positives": 3, "rate": 0.3,
         "lightgbm": {"roc_auc": 0.9}, "rules": {"roc_auc": 0.6}}]}}},
}


def test_metrics_table_keeps_models_present_with_intervals():
    t = tables.metrics_table(EVALUATE)
    assert t.index.tolist() == ["rules", "lightgbm"]
    assert t.loc["lightgbm", ["roc_auc_low", "roc_auc_high"]].tolist() == [0.78, 0.82]
    assert tables.metrics_table({}).empty and "roc_auc" in tables.metrics_table({}).columns


def test_segments_table():
    assert tables.segment_columns(EVALUATE) == ["source"]
    seg = tables.segments_table(EVALUATE, "source")
    assert seg.loc["webinar", ["roc_auc_lightgbm", "roc_auc_rules"]].tolist() == [0.9, 0.6]
    assert tables.segments_table(EVALUATE, "country").empty


def test_grade_matrix_is_letter_by_digit():
    cells = [{"fit": f, "engagement": e, "rate": r, "count": 1}
             for (f, e), r in zip([("B", "1"), ("A", "2"), ("A", "1"), ("B", "2")], [0.2, 0.3, 0.4, 0.1],
                                  strict=True)]
    m = tables.grade_matrix({"lightgbm": {"cells": cells}}, "lightgbm")
    assert m.index.tolist() == ["A", "B"] and m.columns.tolist() == ["1", "2"]
    assert m.loc["A", "1"] == 0.4
    assert tables.grade_matrix({}, "lightgbm").empty


def test_backtest_and_gate_tables():
    bt = {"folds": [{"fold": 1, "cutoff": "2025-03-01", "models": {"rules": {"roc_auc": 0.7},
                                                                    "lightgbm": {"roc_auc": 0.8}}}],
          "summary": {"rules": {"roc_auc": {"mean": 0.7, "ci_low": 0.6, "ci_high": 0.8}}}}
    assert tables.backtest_table(bt).loc[1, ["rules", "lightgbm"]].tolist() == [0.7, 0.8]
    assert tables.backtest_summary(bt).iloc[0]["mean"] == 0.7
    gate = {"checks": [{"name": "calibration", "passed": True, "detail": "ok"}],
            "champion": {"kind": "lightgbm"}, "challenger": {"kind": "rules"}}
    assert tables.gate_table(gate)["check"].tolist() == ["calibration"]
    assert tables.gate_sides(gate).loc["challenger", "kind"] == "rules"
    assert list(tables.gate_table({}).columns) == ["check", "passed", "detail"]


def test_drivers_examples_and_reasons():
    drivers = {"drivers": [{"field": "a", "mean_abs_contribution": 0.1},
                           {"field": "b", "mean_abs_contribution": 0.5}]}
    assert tables.drivers_table(drivers)["field"].tolist() == ["b", "a"]
    reasons = [{"code": "x+", "text": "up", "contribution": 0.4},
               {"code": "y-", "text": "down", "contribution": -0.2}]
    examples = {"B2": [{"lead_id": "L2", "as_of": "2025-01-01", "probability": 0.1, "reasons": reasons}],
                "A1": [{"lead_id": "L1", "as_of": "2025-02-01", "probability": 0.5, "reasons": []}]}
    ex = tables.examples_table(examples)
    assert ex["grade"].tolist() == ["A1", "B2"]
    assert ex.iloc[1][["for", "against"]].tolist() == ["up", "down"]
    assert tables.reasons_table(reasons)["contribution"].tolist() == [0.4, -0.2]
    table = pd.DataFrame({"lead_id": ["L1", "L1", "L2"], "as_of": pd.to_datetime(
        ["2025-01-01", "2025-02-01", "2025-01-01"]), "label": [0, 1, 0], "x": [1, 2, 3]})
    rows = tables.example_rows(table, examples)
    assert rows[["lead_id", "x"]].values.tolist() == [["L1", 2], ["L2", 3]]
    assert tables.example_rows(table, {}).empty


def test_dependence_curve_numeric_and_categorical():
    numeric = pd.DataFrame({"value": list(range(100)) + [None], "contribution": list(range(100)) + [0.0]})
    c = tables.dependence_curve(numeric, bins=4)
    assert c["numeric"].all() and len(c) == 4 and c["rows"].sum() == 100
    assert c["mean_contribution"].is_monotonic_increasing
    cat = pd.DataFrame({"value": ["a", "b", "a"], "contribution": [1.0, -1.0, 3.0]})
    c = tables.dependence_curve(cat)
    assert not c["numeric"].any()
    assert c.set_index("value")["mean_contribution"].to_dict() == {"b": -1.0, "a": 2.0}


def test_points_summary():
    s = tables.points_summary({"roc_auc": {"learned_points": 0.8, "rules": 0.7},
                               "roc_auc_ci": {"rules": [0.6, 0.8]}})
    assert s.loc["rules", ["low", "high"]].tolist() == [0.6, 0.8]
    assert pd.isna(s.loc["learned_points", "low"])


def test_find_project_from_env_or_dvc_yaml(tmp_path, monkeypatch):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert find_project(tmp_path / "notebooks") == tmp_path.resolve()
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.setenv(ENV_VAR, str(other))
    assert Project.find().root == other.resolve()
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(InputError, match=ENV_VAR):
        find_project()


def test_project_falls_back_to_the_challenger_and_names_missing_files(tmp_path):
    project = Project(tmp_path)
    assert project.shipped_scorer() == project.scorer
    (tmp_path / "models/champion/artifacts").mkdir(parents=True)
    assert project.shipped_scorer() == project.champion
    with pytest.raises(InputError, match="train.parquet"):
        project.training_table()
    assert project.outputs.evaluate is None  # missing outputs are None, not an error


def test_project_lists_missing_outputs(tmp_path):
    project = Project(tmp_path)
    assert {"data/processed/train.parquet", "data/interim/validated.duckdb"} <= set(project.missing())
    project.train.parent.mkdir(parents=True)
    project.train.write_bytes(b"")
    assert "data/processed/train.parquet" not in project.missing()
