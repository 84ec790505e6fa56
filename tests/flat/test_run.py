"""`leadscore flat` end to end on a 3,000-row slice of the real bank data, and its errors."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.flat.run import run_flat
from leadscore.io import read_json
from leadscore.modeling.leakage import LeakageError
from tests.builders import bank_mapping, bank_slice_csv

pytestmark = pytest.mark.slow  # trains LightGBM or runs whole stages; `make test-fast` skips it

CORE = ("roc_auc", "pr_auc", "log_loss", "brier", "ece")


@pytest.fixture(scope="module")
def bank_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bank_run")
    # random split here: the slice's last 20% sits in the file's strongest drift, where an
    # out-of-time AUC on 600 rows says little (the ordered path runs in the tests below)
    m = bank_mapping(screen={"on_flag": "drop"}, time_order=None)
    return out, run_flat(m, out)


def test_flat_run_writes_metrics_report_and_scores(bank_run):
    out, result = bank_run
    ev = read_json(out / "metrics" / "evaluate.json")
    for model in ("rules", "logistic", "lightgbm"):
        assert set(CORE) <= set(ev[model])
        assert 0 <= ev[model]["roc_auc"] <= 1
    assert ev["lightgbm"]["roc_auc"] > 0.7 and ev["rules"]["roc_auc"] > 0.6
    assert len(ev["auc_diff_ci"]) == 2
    assert ev["split"]["out_of_time"] is False and "no out-of-time test" in ev["split"]["note"]
    assert ev["screen"]["dropped"] == ["duration"]  # flagged by the screen, not by the mapping
    assert "NO out-of-time test" in (out / "report.html").read_text()
    scores = pd.read_parquet(out / "scores.parquet")
    assert len(scores) == 3000 and scores["lead_id"].is_unique
    assert {"probability", "grade", "fit_grade", "engagement_grade", "rule_points", "rule_grade",
            "reasons", "model_version", "run_id", "scored_at", "slice"} <= set(scores.columns)
    assert scores["probability"].between(0, 1).all()
    assert scores["grade"].str.fullmatch(r"[A-D][1-4]").all()
    assert scores["slice"].value_counts()["test"] == 600
    model = read_json(out / "models" / "lightgbm" / "metadata.json")
    assert "duration" not in model["features"]
    # what ships was chosen on the valid slice; the entry carries its test figures
    champion, valid = ev["champion"], ev["champion"]["valid_roc_auc"]
    assert champion["chosen_on"] == "valid" and champion["name"] == max(valid, key=valid.get)
    assert champion["roc_auc"] == ev[champion["name"]]["roc_auc"]
    assert model["refit"]["rows"] == 2400  # every pre-test row (train, valid, calib)


def test_flat_mode_ships_the_rules_when_they_win_on_validation(tmp_path, monkeypatch):
    import numpy as np

    from leadscore.flat import run as flat_run

    m = bank_mapping(screen={"on_flag": "drop"}, time_order=None)
    monkeypatch.setattr(flat_run, "choose_kind", lambda valid: ("rules", "forced by the test"))
    result = run_flat(m, tmp_path)
    assert result.metrics["champion"]["name"] == "rules"
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    # the rules scorer: grades are the rule bands and reasons carry rule points
    np.testing.assert_array_equal(scores["grade"], scores["rule_grade"])
    assert all(r["code"] for rs in scores["reasons"] for r in rs)


def test_screen_refuses_duration_by_default(tmp_path):
    with pytest.raises(LeakageError, match=r"duration: REFUSED; univariate AUC 0\.\d+"):
        run_flat(bank_mapping(), tmp_path)
    assert not list(tmp_path.iterdir())  # staged output: a refused run publishes nothing


def test_allow_list_keeps_duration_and_the_model_uses_it(tmp_path):
    result = run_flat(bank_mapping(allow=["duration"], model={  # ordered: time_order rows
        "n_trials": 1, "timeout_s": 10, "num_threads": 1, "min_positives": 20,
        "max_boost_rounds": 100}), tmp_path)
    assert result.screen.allowed == ["duration"]
    assert "duration" in read_json(tmp_path / "models" / "lightgbm" / "metadata.json")["features"]
    ev = read_json(tmp_path / "metrics" / "evaluate.json")
    assert ev["split"]["out_of_time"] is True
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert scores.loc[scores["slice"] == "test", "lead_id"].astype(int).min() == 2401  # latest rows


def _write_mapping(tmp_path, **overrides):
    raw = {"file": str(bank_slice_csv()), "time_order": "rows", "target": "y", "positive": "yes"}
    raw.update(overrides)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(("overrides", "message"), [
    ({"fit": ["age", "salary"]}, "fit[1]: column 'salary' is not in the file"),
    ({"target": None}, "target: Input should be a valid string"),
    ({"target": "job", "positive": "student"}, "must hold exactly 2 distinct values"),
    ({"positive": "maybe"}, "positive: 'maybe' is not one of the values"),
])
def test_wrong_mapping_exits_non_zero_with_a_clear_error(tmp_path, overrides, message):
    path = _write_mapping(tmp_path, **overrides)
    result = CliRunner().invoke(app, ["flat", "--mapping", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "o" / "scores.parquet").exists()
