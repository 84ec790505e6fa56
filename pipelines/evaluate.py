"""Stage `evaluate`: rules vs logistic regression vs LightGBM on the out-of-time test slice.

Inputs:  the training table (Parquet; only its test slice is scored), models/rules.json,
         models/logistic/, models/lightgbm/, metrics/train_model.json and
         metrics/train_rules.json (validation figures: which kind ships).
Outputs: metrics/evaluate.json ({rules, logistic, lightgbm: {roc_auc, pr_auc, log_loss,
         brier, ece, precision_at_k, recall_at_k, lift_top_decile, *_ci}, auc_diff_ci, test,
         rules_grades: the rules' A1-D4 grade matrix, lightgbm_behaviour: the pricing-page
         direction check; champion: the kind chosen on the validation slice
         (leadscore.lifecycle.choose) with its test metrics; capacity: the MQL handoff that
         fills reps x leads_per_rep per month, chosen on calib, against the rules' MQL
         threshold, with speed to lead; segments: ROC-AUC and conversion by grade per
         source, country, industry and size band), plots/reliability_<model>.csv,
         plots/gains.csv.
         The feature catalog (data/processed/feature_catalog.json) groups the shipped
         model's contributions into its fit / engagement grades, cut on calib as in explain.
Params:  seed, features.horizon_days, features.windows_days, split.*, evaluate.*,
         explain.significance, explain.fit_shares, explain.engagement_shares, mlflow.*.
"""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.explain.grades import format_matrix
from leadscore.features.catalog import load_catalog
from leadscore.io import read_json, read_parquet, write_csv, write_json
from leadscore.lifecycle.choose import champion_entry, choose_kind, valid_aucs
from leadscore.modeling.baseline import load_rules
from leadscore.modeling.capacity import capacity_summary
from leadscore.modeling.estimators import is_fallback, load_model
from leadscore.modeling.evaluate import (
    evaluate_test_slice,
    gains_frame,
    handoff_and_segments,
    metrics_table,
)
from leadscore.modeling.splits import data_window, split_from_params
from leadscore.stage import stage

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    train: Path = typer.Option(Path("data/processed/train.parquet"), help="training table"),
    rules: Path = typer.Option(Path("models/rules.json"), help="rule scorer"),
    logistic: Path = typer.Option(Path("models/logistic"), help="logistic model folder"),
    lightgbm: Path = typer.Option(Path("models/lightgbm"), help="LightGBM model folder"),
    catalog: Path = typer.Option(Path("data/processed/feature_catalog.json"),
                                 help="feature catalog (fit / engagement groups of the grades)"),
    train_metrics: Path = typer.Option(Path("metrics/train_model.json"), help="validation figures of the models"),
    rules_metrics: Path = typer.Option(Path("metrics/train_rules.json"), help="validation figures of the rules"),
    metrics: Path = typer.Option(Path("metrics/evaluate.json"), help="metrics output"),
    plots: Path = typer.Option(Path("plots"), help="folder for reliability/gains CSVs"),
    track: bool = typer.Option(True, help="log the run to MLflow"),
) -> None:
    with stage("evaluate", params) as s:
        s.require(train, rules, train_metrics, rules_metrics, catalog)
        p, cfg = s.params, s.params.evaluate
        split = split_from_params(read_parquet(train), p)
        test, rule_model = split.test, load_rules(rules)
        models = {}
        for name, folder in (("logistic", logistic), ("lightgbm", lightgbm)):
            if is_fallback(folder):
                s.log.warning("%s: no model (fallback to the rule baseline); evaluating rules only", name)
            else:
                models[name] = load_model(folder)
        result = evaluate_test_slice(
            test, rule_model, models, cfg=cfg, seed=p.seed, significance=p.explain.significance,
            direction_features=[f"pricing_page_view_{d}d" for d in p.features.windows_days])
        out, grades = result.metrics, result.metrics["rules_grades"]
        valid = valid_aucs(read_json(train_metrics), read_json(rules_metrics))
        out["champion"] = champion_entry(*choose_kind(valid), valid, out)
        kind = out["champion"]["name"]
        out |= handoff_and_segments(split, rule_model, models.get(kind), kind=kind,
                                    catalog=load_catalog(catalog), cfg=cfg, seed=p.seed,
                                    fit_shares=p.explain.fit_shares,
                                    engagement_shares=p.explain.engagement_shares)
        write_json(out, metrics)
        for name, rc in result.reliability.items():
            write_csv(rc, plots / f"reliability_{name}.csv")
        write_csv(gains := gains_frame(result.gains), plots / "gains.csv")
        s.log.info("ships: %s", out["champion"]["why"])
        s.log.info("%s", capacity_summary(out["capacity"]))
        s.log.info("out-of-time test metrics (95%% bootstrap CI of ROC-AUC below each row):\n%s\n"
                   "pricing-page direction: %s", metrics_table(out), out.get("lightgbm_behaviour"))
        (s.log.info if grades["monotonic"] else s.log.warning)("%s", format_matrix(
            grades, "points-rule grades, out-of-time test slice: conversion rate (leads)"))
        s.track(params={"seed": p.seed, "evaluate": cfg.model_dump(), "split": p.split.model_dump()},
                metrics={m: {k: v for k, v in out[m].items() if not k.endswith("_ci")} for m in ("rules", *models)}
                | {"auc_diff": out.get("auc_diff", float("nan"))},
                tags=data_window(split), enabled=track,
                dicts={"evaluate.json": out, "plots/gains.json": gains.to_dict(orient="list"),
                       **{f"plots/reliability_{m}.json": rc.to_dict(orient="list")
                          for m, rc in result.reliability.items()}})


if __name__ == "__main__":
    app()
