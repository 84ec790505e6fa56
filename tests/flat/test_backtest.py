"""Flat mode's rolling-origin backtest (`leadscore flat --backtest`) on a small synthetic export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.errors import EXIT_CONFIG, ConfigError
from leadscore.flat.backtest import PSEUDO_START, backtest_flat, with_periods
from leadscore.flat.mapping import mapping_from_dict
from leadscore.flat.table import load_flat
from leadscore.io import read_json
from leadscore.lifecycle import backtest as lifecycle_backtest

ROWS = 2400


def _export(folder, n: int = ROWS, seed: int = 0) -> None:
    """A flat export in time order: two fit columns, two engagement columns with a planted
    signal, a created date (one month per 200 rows) and a yes/no outcome."""
    rng = np.random.default_rng(seed)
    job = rng.choice(["student", "admin", "manager", "retired"], n)
    visits = rng.poisson(3, n)
    logit = -1.6 + 0.25 * visits + np.where(job == "student", 0.8, 0.0) + rng.normal(0, 0.6, n)
    created = pd.Timestamp("2023-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 365, n)), "D")
    pd.DataFrame({
        "created": created.strftime("%Y-%m-%d"),
        "age": rng.integers(18, 70, n),
        "job": job,
        "visits": visits,
        "channel": rng.choice(["web", "phone"], n),
        "converted": np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no"),
    }).to_csv(folder / "export.csv", index=False)


def _mapping(folder, **overrides):
    raw = {"file": "export.csv", "time_order": "rows", "target": "converted", "positive": "yes",
           "drop": ["created"], "fit": ["age", "job"], "engagement": ["visits", "channel"],
           "rules": {"fit": {"job": {"student": 10}}, "engagement": {"visits": {">=5": 20}}},
           "model": {"n_trials": 1, "timeout_s": 10, "num_threads": 1, "min_positives": 20,
                     "max_boost_rounds": 100},
           **overrides}
    return mapping_from_dict({k: v for k, v in raw.items() if v is not None}, base_dir=folder)


@pytest.fixture
def export(tmp_path):
    _export(tmp_path)
    return tmp_path


def test_rows_are_cut_into_equal_blocks_of_consecutive_pseudo_months(export):
    frame = with_periods(load_flat(_mapping(export)))
    assert frame["row"].is_monotonic_increasing and frame["as_of"].is_monotonic_increasing
    sizes = frame.groupby("as_of").size()
    assert len(sizes) == 20 and set(sizes) == {ROWS // 20}
    assert list(sizes.index) == list(pd.date_range(PSEUDO_START, periods=20, freq="MS"))
    assert frame.loc[frame["as_of"] == sizes.index[-1], "row"].min() == ROWS - ROWS // 20


def test_a_created_date_keeps_its_calendar_months(export):
    m = _mapping(export, time_order=None, drop=[], created_at="created")
    frame = with_periods(load_flat(m))
    raw = pd.read_csv(export / "export.csv")
    assert frame["as_of"].is_monotonic_increasing
    assert frame["as_of"].dt.to_period("M").nunique() == 12
    assert frame["as_of"].min() == pd.Timestamp(raw["created"].min())


def test_a_random_split_is_refused_before_anything_runs(export):
    m = _mapping(export, time_order=None)
    with pytest.raises(ConfigError, match=r"has no order \(neither `created_at` nor `time_order: rows`"):
        backtest_flat(m)
    (export / "mapping.yaml").write_text(f"file: {export / 'export.csv'}\ntarget: converted\n"
                                         f"positive: 'yes'\n")
    result = CliRunner().invoke(app, ["flat", "--mapping", str(export / "mapping.yaml"),
                                      "--out", str(export / "out"), "--backtest"])
    assert result.exit_code == EXIT_CONFIG
    assert "has no order" in result.output
    assert not (export / "out").exists()  # refused before training


@pytest.mark.slow
@pytest.mark.parametrize("order", ["rows", "created_at"])
def test_folds_are_consecutive_and_train_only_on_earlier_rows(export, monkeypatch, order):
    splits = []

    def spy(*args, **kwargs):
        s = real(*args, **kwargs)
        splits.append(s)
        return s

    real = lifecycle_backtest.time_split
    monkeypatch.setattr(lifecycle_backtest, "time_split", spy)
    kw = {"time_order": None, "drop": [], "created_at": "created"} if order == "created_at" else {}
    result = backtest_flat(_mapping(export, **kw))

    assert [f.fold for f in result.folds] == [1, 2, 3, 4] and len(splits) == 4
    tests = [s.test["row"] for s in splits]
    for s, test in zip(splits, tests, strict=True):
        seen = pd.concat([s.train, s.valid, s.calib, s.mature])["row"]
        assert seen.max() < test.min()  # trains, validates and calibrates only on earlier rows
        assert len(s.mature) == len(s.train) + len(s.valid) + len(s.calib)  # no embargo gap
    for a, b in zip(tests, tests[1:], strict=False):
        assert b.min() == a.max() + 1  # consecutive, no gap, no overlap
    assert tests[-1].max() == ROWS - 1  # the last fold ends with the newest row
    assert sum(len(t) for t in tests) == (ROWS // 5 if order == "rows" else
                                          sum(f.test_rows for f in result.folds))
    cutoffs = [pd.Timestamp(f.cutoff) for f in result.folds]
    assert cutoffs == sorted(cutoffs) and len(set(cutoffs)) == 4
    if order == "rows":
        first = result.folds[0]
        assert (first.test_as_of_first, first.test_as_of_last) == ("row 1921", "row 2040")
        assert result.extra["periods"]["kind"] == "rows"
        assert all(f.settings["lightgbm"] == {"window_months": None, "half_life_days": None}
                   for f in result.folds)  # rows: only train_flat's one setting
    for f in result.folds:
        assert set(f.models) == set(lifecycle_backtest.MODELS)
        assert all(0 <= f.models[m]["roc_auc"] <= 1 for m in f.models)
    assert np.mean([f.models["lightgbm"]["roc_auc"] for f in result.folds]) > 0.6  # the signal


@pytest.mark.slow
def test_cli_backtest_writes_the_json_and_the_report_section(export):
    import yaml

    m = _mapping(export)
    raw = {k: v for k, v in m.model_dump(mode="json").items() if k != "base_dir"}
    (export / "mapping.yaml").write_text(yaml.safe_dump(raw))
    out = export / "out"
    result = CliRunner().invoke(app, ["flat", "--mapping", str(export / "mapping.yaml"),
                                      "--out", str(out), "--backtest"])
    assert result.exit_code == 0, result.output
    bt = read_json(out / "metrics" / "backtest.json")
    assert [f["fold"] for f in bt["folds"]] == [1, 2, 3, 4]
    assert [f["test_as_of_first"] for f in bt["folds"]] == ["row 1921", "row 2041", "row 2161",
                                                            "row 2281"]
    assert set(bt["summary"]) == set(lifecycle_backtest.MODELS)
    assert {"mean", "ci_low", "ci_high"} <= set(bt["summary"]["lightgbm"]["ece"])
    assert set(bt["refit"]) == {"logistic", "lightgbm"}
    assert len(bt["periods"]["blocks"]) == 20
    assert "refit lightgbm: mean ROC-AUC gain" in result.output
    html = (out / "report.html").read_text()
    assert 'id="backtest-table"' in html and 'id="refit-sentence"' in html
