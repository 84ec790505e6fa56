"""Stage `backtest`: rolling-origin backtest of the training procedure (refit vs no refit).

Inputs:  the training table (Parquet) and the feature catalog (JSON), stage `features`;
         models/rules.json (the points table; its calibration is refitted per fold).
Outputs: reports/backtest.json (per fold: test window, rows, chosen settings, ROC-AUC, PR-AUC
         and ECE of rules, logistic and LightGBM with and without refit; the mean and 95%
         t-interval per model; the refit verdict; headline: metrics/backtest.json),
         plots/backtest.csv (fold, cutoff, model, roc_auc, pr_auc, ece), --auc-plot
         plots/backtest_roc_auc.csv (ROC-AUC per fold, one column per model: dvc plots).
Params:  seed, features.horizon_days, split.embargo_months, features.data_cutoff, backtest.*,
         train_model.* (recency candidates, calibration, logistic_c, learning rate, rounds,
         threads, constraints, min_positives), mlflow.*.
"""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.features.catalog import load_catalog
from leadscore.io import read_parquet, write_csv
from leadscore.lifecycle.backtest import backtest_from_params, format_backtest
from leadscore.modeling.baseline import load_rules
from leadscore.stage import params_hash, stage

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    train: Path = typer.Option(Path("data/processed/train.parquet"), help="training table"),
    catalog: Path = typer.Option(Path("data/processed/feature_catalog.json"), help="feature catalog"),
    rules: Path = typer.Option(Path("models/rules.json"), help="rule scorer"),
    metrics: Path = typer.Option(Path("metrics/backtest.json"), help="headline figures"),
    details: Path | None = typer.Option(None, help="backtest record (dvc.yaml: reports/backtest.json; none: all in --metrics)"),
    plots: Path = typer.Option(Path("plots/backtest.csv"), help="per fold and model (CSV)"),
    auc_plot: Path | None = typer.Option(None, help="ROC-AUC per fold, one column per model (CSV)"),
    track: bool = typer.Option(True, help="log the run to MLflow"),
) -> None:
    with stage("backtest", params) as s:
        s.require(train, catalog, rules)
        p = s.params
        result = backtest_from_params(p, read_parquet(train), load_catalog(catalog),
                                      load_rules(rules))
        out = result.to_dict()
        s.write_metrics(out, metrics, details)
        write_csv(result.plots_frame(), plots)
        if auc_plot is not None:
            write_csv(result.roc_auc_by_fold(), auc_plot)
        s.log.info("rolling-origin backtest:\n%s", format_backtest(result))
        s.track(params={"seed": p.seed, "backtest": p.backtest.model_dump(),
                        "recency": p.train_model.recency.model_dump(),
                        "features.data_cutoff": str(p.features.data_cutoff)},
                metrics={m: {k: v["mean"] for k, v in ms.items()}
                         for m, ms in out["summary"].items()}
                | {"refit": {k: {"mean_auc_gain": v["mean_auc_gain"]}
                             for k, v in out["refit"].items()}, "seconds": out["seconds"]},
                tags={"params_hash": params_hash(p)}, dicts={"backtest.json": out},
                enabled=track)


if __name__ == "__main__":
    app()
