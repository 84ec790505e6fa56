"""Stage `explain`: grade cut points, the A1-D4 grade matrices, global drivers, examples.

Inputs:  the training table (Parquet; the calibration slice learns the grade cut points, the
         out-of-time test slice is reported), the feature catalog, models/lightgbm/,
         models/rules.json.
Outputs: models/grading.json (cut points of the fit letter and engagement digit, learned on
         the calibration slice), metrics/grades.json (per model: 16 cells with count,
         conversions, rate, Wilson 95% CI, mean predicted; order breaks; monotonic),
         reports/drivers.json (drivers by business field with direction),
         plots/dependence_<field>.csv for the top drivers and plots/dependence.csv (all of
         them, long format, for `dvc plots`), reports/examples.json (up to
         explain.examples_per_grade test leads per grade with their reasons).
Params:  seed, features.horizon_days, split.*, explain.*, mlflow.*.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from leadscore.config import load_params
from leadscore.errors import ConfigError
from leadscore.explain.contributions import Explainer
from leadscore.explain.drivers import dependence_frame, global_drivers
from leadscore.explain.grades import (
    DIGITS,
    LETTERS,
    format_matrix,
    grade_cuts_from_split,
    grade_matrix,
    save_grading,
)
from leadscore.features.catalog import load_catalog
from leadscore.io import atomic_path, write_json
from leadscore.logs import setup_logging
from leadscore.modeling.baseline import load_rules
from leadscore.modeling.estimators import is_fallback, load_model
from leadscore.modeling.splits import SplitError, data_window, split_from_params
from leadscore.serve.lead import Scorecard
from leadscore.tracking import git_commit, log_run, setup_mlflow

log = logging.getLogger("leadscore.explain")
app = typer.Typer(add_completion=False)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


def _examples(test: pd.DataFrame, scored: pd.DataFrame, card: Scorecard, per_grade: int,
              seed: int) -> dict:
    """Up to `per_grade` distinct test leads per grade, seeded, with their reasons."""
    rng = np.random.default_rng(seed)
    out: dict = {}
    for grade in (f"{letter}{d}" for letter in LETTERS for d in DIGITS):
        pos = np.flatnonzero(scored["grade"].to_numpy() == grade)
        rng.shuffle(pos)
        leads = test["lead_id"].to_numpy()
        chosen, seen = [], set()
        for i in pos:
            if leads[i] not in seen:
                chosen.append(i)
                seen.add(leads[i])
            if len(chosen) == per_grade:
                break
        if not chosen:
            out[grade] = []
            continue
        rows = test.iloc[chosen]
        s, why = card.score(rows)
        out[grade] = [{"lead_id": str(r.lead_id), "as_of": pd.Timestamp(r.as_of).date().isoformat(),
                       "probability": float(p), "grade": g, "fit_grade": fg, "engagement_grade": eg,
                       "reasons": reasons}
                      for r, p, g, fg, eg, reasons in zip(
                          rows.itertuples(index=False), s["probability"], s["grade"], s["fit_grade"],
                          s["engagement_grade"], why.to_lists(), strict=True)]
    return out


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    train: Path = typer.Option(Path("data/processed/train.parquet"), help="training table"),
    catalog: Path = typer.Option(Path("data/processed/feature_catalog.json"), help="feature catalog"),
    model: Path = typer.Option(Path("models/lightgbm"), help="LightGBM model folder"),
    rules: Path = typer.Option(Path("models/rules.json"), help="rule scorer"),
    grading: Path = typer.Option(Path("models/grading.json"), help="grade cut points (output)"),
    grades: Path = typer.Option(Path("metrics/grades.json"), help="grade matrices (output)"),
    drivers: Path = typer.Option(Path("reports/drivers.json"), help="global drivers (output)"),
    examples: Path = typer.Option(Path("reports/examples.json"), help="example leads (output)"),
    plots: Path = typer.Option(Path("plots"), help="folder for the dependence CSVs"),
    track: bool = typer.Option(True, help="log the run to MLflow"),
) -> None:
    setup_logging()
    t0 = time.perf_counter()
    try:
        p = load_params(params)
        cfg = p.explain
        for f in (train, catalog, rules):
            if not f.exists():
                raise FileNotFoundError(f"{f}: not found (run the features, train_rules and train_model stages)")
        if is_fallback(model):
            raise ValueError(f"{model}: no LightGBM model (train_model fell back to the rule "
                             "baseline); there is no model to grade or explain")
        cat = load_catalog(catalog)
        split = split_from_params(pd.read_parquet(train), p)
        test = split.test
        lgbm = load_model(model)
        rule_model = load_rules(rules)

        explainer = Explainer.for_model(lgbm)
        names = explainer.feature_names
        groups = {g: [n for n in cat.group(g) if n in names] for g in ("fit", "engagement")}
        log.info("explainer: %s path (%d features: %d fit, %d engagement)",
                 "additive table look-up" if explainer.additive else "pred_contrib TreeSHAP",
                 len(names), len(groups["fit"]), len(groups["engagement"]))

        # cut points: calibration slice only
        cuts = grade_cuts_from_split(explainer, split, groups, fit_shares=cfg.fit_shares,
                                     engagement_shares=cfg.engagement_shares)
        card = Scorecard(lgbm, cuts, cat, n_reasons=cfg.n_reasons)

        # out-of-time test slice: grades, additivity, drivers
        t = time.perf_counter()
        contrib = explainer.contributions(test, raw=True)
        seconds = time.perf_counter() - t
        margin = lgbm.decision_function(test)
        additivity = float(np.max(np.abs(contrib.sum(axis=1) + explainer.expected_value() - margin)))
        if additivity > 1e-6:
            raise RuntimeError(f"contributions do not add up to the model's log-odds (max error {additivity:.2e})")
        scored, _ = card.score(test, reasons=False)
        y = test["label"].to_numpy()
        rg = rule_model.grade(test)
        report = {
            "lightgbm": grade_matrix(y, scored["fit_grade"], scored["engagement_grade"],
                                     scored["probability"], alpha=cfg.significance),
            "rules": grade_matrix(y, rg["fit_grade"], rg["engagement_grade"],
                                  rule_model.predict_proba(test)[:, 1], alpha=cfg.significance),
        }
        driver_list = global_drivers(contrib, test, names, cat, min_corr=cfg.min_direction_corr)
        rng = np.random.default_rng(p.seed)
        sample = np.sort(rng.choice(len(test), size=min(cfg.dependence_rows, len(test)), replace=False))
        deps = {d["field"]: dependence_frame(contrib, test, names, d, sample)
                for d in driver_list[: cfg.top_drivers]}
        example_leads = _examples(test, scored, card, cfg.examples_per_grade, p.seed)
    except (ConfigError, FileNotFoundError, SplitError, ValueError, RuntimeError, TypeError) as err:
        log.error("%s", err)
        raise typer.Exit(1) from None

    save_grading(cuts, grading)
    write_json(report, grades)
    write_json({"base_value": explainer.expected_value(), "model": "lightgbm",
                "explainer": "additive" if explainer.additive else "pred_contrib",
                "rows": int(len(test)), "slice": "test", "drivers": driver_list}, drivers)
    write_json(example_leads, examples)
    for old in plots.glob("dependence_*.csv"):  # drop plots of fields no longer on top
        if old.stem.removeprefix("dependence_") not in deps:
            old.unlink()
    for name, df in deps.items():
        _write_csv(df, plots / f"dependence_{name}.csv")
    _write_csv(pd.concat([df.assign(field=name, value=df["value"].astype(str))
                          for name, df in deps.items()], ignore_index=True)[["field", "value", "contribution"]],
               plots / "dependence.csv")

    log.info("grade cut points (calibration slice %s..%s): fit %s, engagement %s", *cuts.calib_window,
             [round(c, 4) for c in cuts.fit_cuts], [round(c, 4) for c in cuts.engagement_cuts])
    for key, title in (("lightgbm", "LightGBM grades"), ("rules", "points-rule grades")):
        log.info("%s", format_matrix(report[key], f"{title}, out-of-time test slice: conversion rate (leads)"))
    log.info("additivity: max |contributions + base - log-odds| = %.2e; %d test rows explained in "
             "%.2fs (%.0f rows/s)", additivity, len(test), seconds, len(test) / max(seconds, 1e-9))
    log.info("top drivers: %s", "; ".join(f"{d['label']} ({d['direction']}, {d['mean_abs_contribution']:.3f})"
                                          for d in driver_list[:8]))
    log.info("explain done in %.1fs", time.perf_counter() - t0)
    if track:
        setup_mlflow(p.mlflow.tracking_uri, p.mlflow.experiment)
        log_run(run_name="explain", params={"seed": p.seed, "explain": cfg.model_dump(),
                                            "explainer": "additive" if explainer.additive else "pred_contrib"},
                metrics={f"{k}_monotonic": float(v["monotonic"]) for k, v in report.items()}
                | {f"{k}_violations": len(v["violations"]) for k, v in report.items()}
                | {"additivity_max_error": additivity, "explain_rows_per_s": len(test) / max(seconds, 1e-9)},
                tags={"stage": "explain", "git_commit": git_commit(), **data_window(split)},
                artifacts={"grading": grading, "drivers": drivers},
                dicts={"grades.json": report})


if __name__ == "__main__":
    app()
