"""Stage `export`: the kind chosen on validation, as one MLflow pyfunc model: the challenger.

Inputs:  metrics/evaluate.json (its champion entry names the kind that ships: lightgbm,
         logistic or rules), models/<kind>/ (stage `train_model`), models/grading.json (stage
         `explain`, cut points of that model; not used for the rules), models/rules.json,
         data/processed/feature_catalog.json.
Outputs: models/scorer/ (the MLflow model: model + JSON artifacts, code, an enforced
         signature), metrics/export.json; a registry version of `export.registered_model`
         with the alias `export.challenger_alias`. Never moves `champion` (stage `gate` does).
Params:  export.* (registered_model, challenger_alias, register_model), mlflow.*.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from leadscore.io import read_json, write_json
from leadscore.lifecycle.choose import shipped_kind
from leadscore.serve.export import export_scorer
from leadscore.stage import stage
from leadscore.tracking import setup_mlflow

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    models: Path = typer.Option(Path("models"), help="folder holding lightgbm/ and logistic/"),
    evaluation: Path = typer.Option(Path("metrics/evaluate.json"), "--evaluate",
                                    help="evaluation (its champion entry: which kind ships)"),
    grading: Path = typer.Option(Path("models/grading.json"), help="grade cut points"),
    rules: Path = typer.Option(Path("models/rules.json"), help="rule baseline"),
    catalog: Path = typer.Option(Path("data/processed/feature_catalog.json"), help="feature catalog"),
    out: Path = typer.Option(Path("models/scorer"), help="MLflow model folder to write"),
    metrics: Path = typer.Option(Path("metrics/export.json"), help="summary"),
) -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with stage("export", params) as s:
        s.require(evaluation)
        kind = shipped_kind(read_json(evaluation))
        register_as = None
        if s.params.export.register_model:
            setup_mlflow(s.params.mlflow.tracking_uri, s.params.mlflow.experiment)
            register_as = (s.params.export.registered_model, s.params.export.challenger_alias)
        summary = export_scorer(None if kind == "rules" else models / kind, kind=kind,
                                grading=None if kind == "rules" else grading,
                                catalog=catalog, rules=rules, out=out, register_as=register_as)
        write_json(summary, metrics)
        s.log.info("scorer %s exported to %s%s", summary["model_version"], out,
                   f"; registered as {summary['registered_model']} version {summary['registry_version']} "
                   f"@{summary['alias']}" if summary["registry_version"] else "")


if __name__ == "__main__":
    app()
