"""Rolling-origin backtest: fold windows, no look-ahead, the summary, the JSON contract and the
stage."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.config import (
    BacktestConfig,
    LeakageConfig,
    OptunaConfig,
    RecencyConfig,
    TrainModelConfig,
    TrainRulesConfig,
)
from leadscore.features.catalog import save_catalog
from leadscore.io import write_parquet
from leadscore.lifecycle import backtest as bt
from leadscore.lifecycle.backtest import (
    MODELS,
    BacktestResult,
    FoldResult,
    fold_periods,
    format_backtest,
    run_backtest,
    t_interval,
)
from leadscore.modeling.baseline import PointsRuleClassifier, save_rules
from pipelines import backtest as backtest_stage
from tests.builders import synthetic_catalog, synthetic_table

ROOT = Path(__file__).resolve().parents[2]
HORIZON = 30
BT = BacktestConfig(folds=2, fold_months=1, valid_months=1, calib_months=1,
                    lightgbm_params={"num_leaves": 7.0, "min_data_in_leaf": 20.0})
TRAIN = TrainModelConfig(min_positives=20, num_threads=1, max_boost_rounds=60,
                         learning_rate=0.1, early_stopping_rounds=10, additive=False,
                         monotone_increasing=(), optuna=OptunaConfig(n_trials=1),
                         calibration_folds=3, leakage=LeakageConfig(enabled=False),
                         recency=RecencyConfig(window_months=(None, 3),
                                               half_life_days=(None, 60.0)))


def _doc_example() -> dict:
    """The reports/backtest.json example of docs/lifecycle.md (the contract)."""
    text = (ROOT / "docs" / "lifecycle.md").read_text()
    section = text[text.index("### reports/backtest.json"):]
    return json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))


def _fold(k: int, aucs: dict[str, float]) -> FoldResult:
    models = {m: {"roc_auc": aucs.get(m, 0.7), "pr_auc": 0.2, "ece": 0.01} for m in MODELS}
    return FoldResult(k, f"2025-0{k}-01", f"2025-0{k}-01", f"2025-0{k}-01", 100, 50, 5,
                      {"lightgbm": {"window_months": None, "half_life_days": 180.0},
                       "logistic": {"window_months": 6, "half_life_days": None}}, models)


def test_fold_periods_are_consecutive_and_end_with_the_data():
    as_of = pd.Series(pd.date_range("2024-01-01", "2025-10-01", freq="MS"))
    periods = fold_periods(as_of, folds=4, fold_months=2)
    assert periods[0][0] == pd.Timestamp("2025-03-01")
    assert periods[-1][1] == pd.Timestamp("2025-11-01")
    for (_, end), (start, _) in zip(periods, periods[1:], strict=False):
        assert end == start  # consecutive, no gap, no overlap
    assert all(e == s + pd.DateOffset(months=2) for s, e in periods)


def test_t_interval_is_the_student_t_interval_of_the_mean():
    ci = t_interval([1.0, 2.0, 3.0])
    assert ci["mean"] == 2.0
    assert ci["ci_high"] - 2.0 == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    assert ci["ci_low"] == pytest.approx(4.0 - ci["ci_high"])
    assert t_interval([0.5]) == {"mean": 0.5, "ci_low": 0.5, "ci_high": 0.5}


def test_refit_verdict_counts_folds_won_and_the_mean_gain():
    folds = [_fold(1, {"lightgbm": 0.80, "lightgbm_no_refit": 0.78, "logistic": 0.70}),
             _fold(2, {"lightgbm": 0.79, "lightgbm_no_refit": 0.80, "logistic": 0.70}),
             _fold(3, {"lightgbm": 0.81, "lightgbm_no_refit": 0.80, "logistic": 0.69})]
    refit = BacktestResult(folds).refit()
    assert refit["lightgbm"] == {"mean_auc_gain": pytest.approx(0.02 / 3), "folds_won": 2,
                                 "wins": True}
    assert refit["logistic"] == {"mean_auc_gain": pytest.approx(-0.01 / 3), "folds_won": 0,
                                 "wins": False}


def test_to_dict_follows_the_documented_schema():
    result = BacktestResult([_fold(1, {}), _fold(2, {"rules": 0.6})], seconds=12.34)
    out, doc = result.to_dict(), _doc_example()
    assert set(out) == set(doc)
    assert set(out["folds"][0]) == set(doc["folds"][0])
    assert set(out["folds"][0]["models"]) == set(doc["folds"][0]["models"]) == set(MODELS)
    assert set(out["folds"][0]["models"]["rules"]) == set(doc["folds"][0]["models"]["rules"])
    assert out["folds"][0]["settings"] == doc["folds"][0]["settings"]
    assert set(out["summary"]) == set(MODELS)
    assert out["summary"]["rules"]["roc_auc"] == {"mean": pytest.approx(0.65),
                                                  "ci_low": pytest.approx(0.65 - 12.706205 * 0.05),
                                                  "ci_high": pytest.approx(0.65 + 12.706205 * 0.05)}
    assert set(out["summary"]["lightgbm"]["roc_auc"]) == set(doc["summary"]["lightgbm"]["roc_auc"])
    assert set(out["refit"]) == {"lightgbm", "logistic"}
    assert set(out["refit"]["lightgbm"]) == set(doc["refit"]["lightgbm"])
    assert out["seconds"] == 12.3
    json.dumps(out)  # plain JSON types only
    frame = result.plots_frame()
    assert list(frame.columns) == ["fold", "cutoff", "model", "roc_auc", "pr_auc", "ece"]
    assert len(frame) == 2 * len(MODELS) and set(frame["model"]) == set(MODELS)
    text = format_backtest(result)
    assert "2025-01-01..2025-01-01" in text and "refit lightgbm" in text


@pytest.mark.slow
def test_each_fold_trains_only_on_rows_mature_before_its_cutoff(monkeypatch):
    table = synthetic_table(n_per_month=300, months=10, strength=2.0)
    calls: list[tuple[str, list[pd.DataFrame]]] = []
    shared = bt.fit_calibrate_refit

    def spy(recipe, train, valid, calib, *, refit_rows=None, **kw):
        calls.append((recipe.kind, [train, valid, calib, refit_rows]))
        return shared(recipe, train, valid, calib, refit_rows=refit_rows, **kw)

    rules_fit = PointsRuleClassifier.fit
    rule_rows: list[pd.DataFrame] = []

    def fit_rules(self, X, y):
        rule_rows.append(X)
        return rules_fit(self, X, y)

    monkeypatch.setattr(bt, "fit_calibrate_refit", spy)
    monkeypatch.setattr(PointsRuleClassifier, "fit", fit_rules)
    cat = synthetic_catalog()
    result = run_backtest(table, PointsRuleClassifier.from_config(TrainRulesConfig()),
                          features=cat.names, categorical=cat.categorical, horizon_days=HORIZON,
                          embargo_months=1, backtest_cfg=BT, train_cfg=TRAIN, seed=0)
    assert [f.cutoff for f in result.folds] == ["2024-09-01", "2024-10-01"]
    assert [(f.test_as_of_first, f.test_as_of_last) for f in result.folds] == [
        ("2024-09-01", "2024-09-01"), ("2024-10-01", "2024-10-01")]
    assert len(calls) == 4 and len(rule_rows) == 2  # two kinds and the rules per fold
    horizon = pd.Timedelta(days=HORIZON)
    for i, (_, frames) in enumerate(calls):
        cutoff = pd.Timestamp(result.folds[i // 2].cutoff)
        for df in frames:
            assert (df["as_of"] + horizon <= cutoff).all()
        assert len(frames[3]) > len(frames[0])  # the refit rows include valid and calib
    for i, rows in enumerate(rule_rows):
        assert (rows["as_of"] + horizon <= pd.Timestamp(result.folds[i].cutoff)).all()
    for f in result.folds:
        assert f.test_rows == 300 and f.test_positives > 0
        for m in MODELS:
            assert 0.5 < f.models[m]["roc_auc"] <= 1 and 0 <= f.models[m]["ece"] < 0.2
        assert set(f.settings) == {"lightgbm", "logistic"}
    assert result.summary()["lightgbm"]["roc_auc"]["mean"] > 0.75


@pytest.mark.slow
def test_stage_writes_the_json_and_the_csv(tmp_path):
    write_parquet(synthetic_table(n_per_month=300, months=10, strength=2.0),
                  tmp_path / "train.parquet")
    save_catalog(synthetic_catalog(), tmp_path / "catalog.json")
    save_rules(PointsRuleClassifier.from_config(TrainRulesConfig()), tmp_path / "rules.json")
    params = {"seed": 1, "features": {"horizon_days": HORIZON}, "split": {"embargo_months": 1},
              "train_model": TRAIN.model_dump(mode="json"),
              "backtest": BT.model_dump(mode="json")}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "metrics" / "backtest.json"
    r = CliRunner().invoke(backtest_stage.app, [
        "--params", str(tmp_path / "params.yaml"), "--train", str(tmp_path / "train.parquet"),
        "--catalog", str(tmp_path / "catalog.json"), "--rules", str(tmp_path / "rules.json"),
        "--metrics", str(out), "--plots", str(tmp_path / "plots" / "backtest.csv"),
        "--no-track"])
    assert r.exit_code == 0, r.output
    written = json.loads(out.read_text())
    assert set(written) == set(_doc_example())
    assert [f["fold"] for f in written["folds"]] == [1, 2]
    assert "fold" in r.output and "refit lightgbm" in r.output  # the per-fold table is logged
    csv = pd.read_csv(tmp_path / "plots" / "backtest.csv")
    assert len(csv) == 2 * len(MODELS)
    missing = CliRunner().invoke(backtest_stage.app, [
        "--params", str(tmp_path / "params.yaml"), "--train", str(tmp_path / "nope.parquet"),
        "--no-track"])
    assert missing.exit_code == 1 and "nope.parquet" in missing.output


def test_too_few_positives_in_the_first_fold_names_the_fold():
    from leadscore.modeling.estimators import TooFewPositivesError

    table = synthetic_table(n_per_month=50, months=10)
    cat = synthetic_catalog()
    cfg = TRAIN.model_copy(update={"min_positives": 10_000})
    with pytest.raises(TooFewPositivesError, match="backtest fold 1; at least 10000"):
        run_backtest(table, PointsRuleClassifier.from_config(TrainRulesConfig()),
                     features=cat.names, categorical=cat.categorical, horizon_days=HORIZON,
                     embargo_months=1, backtest_cfg=BT, train_cfg=cfg, seed=0)
