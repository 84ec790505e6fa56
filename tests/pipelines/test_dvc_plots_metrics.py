"""`dvc plots show` and `dvc metrics show` on the project's own dvc.yaml: each plot drawn once
with its x / y fields, and only headline figures listed. Real DVC, in a throw-away repository
whose plot files are written by the library functions the stages call."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.io import write_csv
from leadscore.lifecycle.backtest import MODELS as BACKTEST_MODELS
from leadscore.lifecycle.backtest import BacktestResult, FoldResult
from leadscore.modeling.evaluate import gains_frame
from leadscore.modeling.metrics import gains_table, reliability_curve
from leadscore.plots import dependence_plot_frame, write_dependence_plots
from leadscore.stage import HEADLINE, headline

ROOT = Path(__file__).resolve().parents[2]
DVC = Path(sys.executable).with_name("dvc")
MAX_HEADLINE_NUMBERS = 150
# keys of the detail blocks that moved to reports/<stage>.json (Optuna trials, leakage tables...)
DETAIL_KEYS = {"trials", "tuning.trials", "leakage", "univariate_auc", "probe", "feedback", "segments",
               "per_as_of", "by_grade", "candidates", "cells", "folds", "grade_order_calib_rate",
               "capacity", "grades", "null_share", "leads_by_stage", "best_params"}


# ---------------------------------------------------------------- unit: no DVC needed
def test_headline_keeps_the_named_scalars_nested_and_skips_lists():
    doc = {"champion": {"name": "lightgbm", "roc_auc": 0.8, "roc_auc_ci": [0.7, 0.9]},
           "rules": {"roc_auc": 0.7, "pr_auc": 0.1}, "lightgbm": {"roc_auc": 0.8},
           "tuning": {"trials": [{"value": 1}], "best_iteration": 10}, "auc_diff_ci": [0, 1]}
    top = headline(doc, ("champion.name", "champion.roc_auc", "*.roc_auc", "tuning.best_iteration",
                         "tuning.trials", "auc_diff_ci", "absent.key"))
    assert top == {"champion": {"name": "lightgbm", "roc_auc": 0.8}, "rules": {"roc_auc": 0.7},
                   "lightgbm": {"roc_auc": 0.8}, "tuning": {"best_iteration": 10}}


def test_dependence_plot_files_one_per_field_by_kind(tmp_path):
    deps = {"lead_age_days": pd.DataFrame({"value": [3.0, 3.0, 10.0, np.nan],
                                           "contribution": [0.1, 0.1, -0.2, 0.0]}),
            "seniority": pd.DataFrame({"value": ["vp", "vp", "student", None],
                                       "contribution": [0.5, 0.5, -0.4, 0.0]})}
    stale = tmp_path / "dep" / "numeric" / "old_field.csv"
    stale.parent.mkdir(parents=True)
    stale.write_text("value,contribution\n1,1\n")
    written = write_dependence_plots(deps, tmp_path / "dep")
    assert written == {"lead_age_days": tmp_path / "dep/numeric/lead_age_days.csv",
                       "seniority": tmp_path / "dep/categorical/seniority.csv"}
    assert not stale.exists()
    num = pd.read_csv(written["lead_age_days"])
    assert num.to_dict("list") == {"value": [3.0, 10.0], "contribution": [0.1, -0.2]}
    kind, cat = dependence_plot_frame(deps["seniority"])
    assert kind == "categorical"
    assert cat["value"].tolist() == ["vp", "(missing)", "student"]  # by contribution, best first
    assert cat["leads"].tolist() == [2, 1, 1]


# ---------------------------------------------------------------- real DVC
def _run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _write_plot_files(root: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    scores = {m: np.clip(y * w + rng.random(400), 0, None) / (1 + w)
              for m, w in (("rules", 0.2), ("logistic", 0.6), ("lightgbm", 0.7))}
    for m, p in scores.items():
        write_csv(reliability_curve(y, p, n_bins=5), root / f"plots/reliability_{m}.csv")
    write_csv(gains_frame({m: gains_table(y, p) for m, p in scores.items()}), root / "plots/gains.csv")
    folds = [FoldResult(fold=k, cutoff=f"2025-0{2 * k}-01", test_as_of_first="", test_as_of_last="",
                        train_rows=100, test_rows=50, test_positives=5, settings={},
                        models={m: {"roc_auc": 0.7 + k / 100, "pr_auc": 0.2, "ece": 0.01}
                                for m in BACKTEST_MODELS}) for k in (1, 2, 3)]
    write_csv(BacktestResult(folds).roc_auc_by_fold(), root / "plots/backtest_roc_auc.csv")
    write_dependence_plots({"lead_age_days": pd.DataFrame({"value": [1, 5, 9], "contribution": [0.3, 0.1, -0.2]}),
                            "seniority": pd.DataFrame({"value": ["vp", "student"], "contribution": [0.5, -0.4]})},
                           root / "plots/dependence")


def _write_metrics(root: Path) -> None:
    """Each stage's headline, from the project's latest full records (reports/<stage>.json;
    before the split they were metrics/<stage>.json), as Stage.write_metrics writes it."""
    files = {"explain": "grades"}
    for name, paths in HEADLINE.items():
        stem = files.get(name, name)
        record = next((p for p in (ROOT / f"reports/{stem}.json", ROOT / f"metrics/{stem}.json")
                       if p.exists()), None)
        if record is not None:
            out = root / f"metrics/{stem}.json"
            out.parent.mkdir(exist_ok=True)
            out.write_text(json.dumps(headline(json.loads(record.read_text()), paths)))
    for stem in ("validate", "export"):  # written whole by their stages (few figures)
        if (ROOT / f"metrics/{stem}.json").exists():
            shutil.copy(ROOT / f"metrics/{stem}.json", root / f"metrics/{stem}.json")


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dvcrepo")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, root / name)
    _run(["git", "init", "-q"], root)
    _run([str(DVC), "init", "-q"], root)
    _write_plot_files(root)
    _write_metrics(root)
    return root


def _encoding(plot: dict) -> tuple[str, str]:
    enc = plot[0]["content"]["encoding"]
    return enc["x"]["field"], enc["y"]["field"]


@pytest.mark.slow
def test_dvc_plots_show_draws_each_plot_once_with_its_fields(dvc_repo):
    shown = json.loads(_run([str(DVC), "plots", "show", "--json"], dvc_repo))
    plots = shown["data"]
    assert not shown.get("errors"), shown.get("errors")
    assert sorted(plots) == ["backtest", "gains", "plots/dependence/categorical/seniority.csv",
                             "plots/dependence/numeric/lead_age_days.csv", "reliability"]
    assert all(len(p) == 1 and p[0]["type"] == "vega" for p in plots.values())  # drawn once
    for pid in plots:
        assert plots[pid][0]["content"]["title"]["text"]  # every plot has a title
    assert _encoding(plots["plots/dependence/numeric/lead_age_days.csv"]) == ("value", "contribution")
    assert _encoding(plots["plots/dependence/categorical/seniority.csv"]) == ("contribution", "value")
    values = {pid: plots[pid][0]["content"]["data"]["values"] for pid in ("reliability", "gains", "backtest")}
    # reliability: one line per model file; gains and backtest: one line per y column
    assert _encoding(plots["reliability"]) == ("mean_predicted", "observed")
    assert {v["filename"] for v in values["reliability"]} == {
        f"reliability_{m}.csv" for m in ("rules", "logistic", "lightgbm")}
    assert _encoding(plots["gains"]) == ("share_of_leads", "dvc_inferred_y_value")
    assert {v["field"] for v in values["gains"]} == {"cum_gain_rules", "cum_gain_logistic", "cum_gain_lightgbm"}
    assert plots["backtest"][0]["content"]["encoding"]["x"]["field"] == "fold"
    assert {v["field"] for v in values["backtest"]} == set(BACKTEST_MODELS)
    assert {v["dvc_inferred_y_value"] for v in values["backtest"]} == {"0.71", "0.72", "0.73"}


@pytest.mark.slow
def test_dvc_metrics_show_lists_only_headline_figures(dvc_repo):
    shown = json.loads(_run([str(DVC), "metrics", "show", "--json"], dvc_repo))
    files = shown[""]["data"]
    assert "metrics/evaluate.json" in files and "metrics/train_model.json" in files

    def numbers(node, path=""):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from numbers(v, f"{path}.{k}" if path else k)
        elif isinstance(node, int | float) and not isinstance(node, bool):
            yield path

    keys = [f"{f}:{k}" for f, d in files.items() for k in numbers(d.get("data", {}))]
    assert 20 < len(keys) < MAX_HEADLINE_NUMBERS, len(keys)
    assert [k for k in keys if DETAIL_KEYS & set(k.split(":")[1].split("."))] == []
    assert [k for k in keys if "trial" in k or "leakage" in k] == []
    assert "metrics/evaluate.json:champion.roc_auc" in keys
