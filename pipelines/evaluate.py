"""Stage `evaluate`: rules vs logistic regression vs LightGBM on the out-of-time test slice.

Inputs:  the training table (Parquet; only its test slice is scored), models/rules.json,
         models/logistic/, models/lightgbm/.
Outputs: metrics/evaluate.json ({rules, logistic, lightgbm: {roc_auc, pr_auc, log_loss,
         brier, ece, precision_at_k, recall_at_k, lift_top_decile, *_ci}, auc_diff_ci,
         test, rules_grades: observed conversion per A1..D4 rule grade + violations}), plots/reliability_<model>.csv, plots/gains.csv.
Params:  seed, features.horizon_days, split.*, evaluate.* (reps, leads_per_rep,
         n_bootstrap, ece_bins, deciles), mlflow.*.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import typer

from leadscore.config import load_params
from leadscore.errors import ConfigError
from leadscore.io import atomic_path, write_json
from leadscore.logs import setup_logging
from leadscore.modeling.baseline import load_rules
from leadscore.modeling.estimators import is_fallback, load_model
from leadscore.modeling.evaluate import evaluate_models, gains_frame, grade_table, metrics_table
from leadscore.modeling.splits import SplitError, data_window, split_from_params
from leadscore.tracking import git_commit, log_run, setup_mlflow

log = logging.getLogger("leadscore.evaluate")
app = typer.Typer(add_completion=False)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    train: Path = typer.Option(Path("data/processed/train.parquet"), help="training table"),
    rules: Path = typer.Option(Path("models/rules.json"), help="rule scorer"),
    logistic: Path = typer.Option(Path("models/logistic"), help="logistic model folder"),
    lightgbm: Path = typer.Option(Path("models/lightgbm"), help="LightGBM model folder"),
    metrics: Path = typer.Option(Path("metrics/evaluate.json"), help="metrics output"),
    plots: Path = typer.Option(Path("plots"), help="folder for reliability/gains CSVs"),
    track: bool = typer.Option(True, help="log the run to MLflow"),
) -> None:
    setup_logging()
    try:
        p = load_params(params)
        cfg = p.evaluate
        for f in (train, rules):
            if not f.exists():
                raise FileNotFoundError(f"{f}: not found (run the features and train_rules stages)")
        split = split_from_params(pd.read_parquet(train), p)
        test = split.test
        rule_model = load_rules(rules)
        probs = {"rules": rule_model.predict_proba(test)[:, 1]}
        grades = rule_model.grade(test)
        rule_grades = grade_table(test["label"], grades["fit_grade"], grades["engagement_grade"])
        fallback = False
        for name, folder in (("logistic", logistic), ("lightgbm", lightgbm)):
            if is_fallback(folder):
                fallback = True
                log.warning("%s: no model (fallback to the rule baseline); evaluating rules only", name)
                continue
            probs[name] = load_model(folder).predict_proba(test)[:, 1]
        k = cfg.reps * cfg.leads_per_rep
        result = evaluate_models(test["label"], probs, period=test["as_of"].to_numpy(),
                                 groups=test["lead_id"].to_numpy(), k=k, n_boot=cfg.n_bootstrap,
                                 seed=p.seed, n_bins=cfg.ece_bins, deciles=cfg.deciles)
    except (ConfigError, FileNotFoundError, SplitError, ValueError) as err:
        log.error("%s", err)
        raise typer.Exit(1) from None

    out = result.metrics
    out["fallback_to_rules"] = fallback
    out["rules_grades"] = rule_grades
    if "auc_diff_ci" in out:
        out["auc_diff_ci_lower"], out["auc_diff_ci_upper"] = out["auc_diff_ci"]
    write_json(out, metrics)
    for name, rc in result.reliability.items():
        _write_csv(rc, plots / f"reliability_{name}.csv")
    _write_csv(gains_frame(result.gains), plots / "gains.csv")
    log.info("out-of-time test metrics (95%% bootstrap CI of ROC-AUC below each row):\n%s",
             metrics_table(out))
    if rule_grades["violations"]:
        log.warning("rule grades: observed conversion is not monotone in %d place(s): %s",
                    len(rule_grades["violations"]), "; ".join(rule_grades["violations"]))
    if track:
        setup_mlflow(p.mlflow.tracking_uri, p.mlflow.experiment)
        log_run(run_name="evaluate", params={"seed": p.seed, "evaluate": p.evaluate.model_dump(),
                                             "split": p.split.model_dump()},
                metrics={m: {k: v for k, v in out[m].items() if not k.endswith("_ci")}
                         for m in probs} | {"auc_diff": out.get("auc_diff", float("nan"))},
                tags={"stage": "evaluate", "git_commit": git_commit(), **data_window(split)},
                dicts={"evaluate.json": out,
                       "plots/gains.json": gains_frame(result.gains).to_dict(orient="list"),
                       **{f"plots/reliability_{m}.json": rc.to_dict(orient="list")
                          for m, rc in result.reliability.items()}})


if __name__ == "__main__":
    app()
