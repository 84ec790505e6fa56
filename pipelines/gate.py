"""Stage `gate`: the challenger against the champion; only a pass moves `champion`.

Inputs:  data/processed/train.parquet (the window: its out-of-time test slice, which neither
         model trained on), models/scorer/ (the challenger the export stage registered),
         models/rules.json, metrics/evaluate.json (the shipped kind's test metrics, logged with
         the gate's result onto the challenger's registry version), and the registry's champion.
Outputs: reports/gate.json (each check, its figures, tolerance and pass/fail; the decision),
         reports/changes.json ("what changed" between champion and challenger), models/champion/
         (a local copy of the champion after the decision: what the score stage scores).
Params:  seed, features.horizon_days, split.*, gate.*, export.*, mlflow.*.
Inside `dvc exp run` the gate reports but never promotes (leadscore.lifecycle.promotion).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from leadscore.io import read_json, read_parquet, write_json
from leadscore.lifecycle.gate import format_gate
from leadscore.lifecycle.promotion import (
    changes_or_note,
    gate_stage_inputs,
    publish_champion,
    run_gate,
)
from leadscore.lifecycle.registry import log_metrics_to_version, version_figures
from leadscore.stage import stage
from leadscore.tracking import setup_mlflow

app = typer.Typer(add_completion=False)


@app.command()
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml"),
    train: Path = typer.Option(Path("data/processed/train.parquet"), help="training table"),
    scorer: Path = typer.Option(Path("models/scorer"), help="the challenger (MLflow model folder)"),
    rules: Path = typer.Option(Path("models/rules.json"), help="rule baseline"),
    evaluation: Path = typer.Option(Path("metrics/evaluate.json"), "--evaluate",
                                    help="evaluation (its champion's test metrics go on the version)"),
    report: Path = typer.Option(Path("reports/gate.json"), help="gate report (output)"),
    changes: Path = typer.Option(Path("reports/changes.json"), help="what changed (output)"),
    champion: Path = typer.Option(Path("models/champion"), help="local copy of the champion (output)"),
) -> None:
    with stage("gate", params) as s:
        s.require(train, scorer, rules, evaluation)
        p = s.params
        setup_mlflow(p.mlflow.tracking_uri, p.mlflow.experiment)
        window, challenger, ref, rule_model = gate_stage_inputs(p, read_parquet(train), scorer, rules)
        with tempfile.TemporaryDirectory(prefix="leadscore-gate-") as tmp:
            doc, result, old = run_gate(window, challenger, ref, rule_model, gate=p.gate,
                                        export=p.export, seed=p.seed, workdir=Path(tmp))
            write_json(doc, report)
            write_json(changes_or_note(old, challenger, window, doc, seed=p.seed), changes)
        s.log.info("%s", format_gate(doc))
        # the evaluation's test metrics and the gate's result on the challenger's version
        log_metrics_to_version(p.export.registered_model, ref.registry_version,
                               *version_figures(read_json(evaluation), doc))
        s.track(params={"gate": p.gate.model_dump(mode="json")},
                metrics={"passed": float(doc["passed"]), "promoted": float(doc["promoted"]),
                         **{f"check_{c['name']}": float(c["passed"]) for c in doc["checks"]}},
                tags={"decision": doc["decision"], "challenger_version": ref.registry_version},
                dicts={"gate.json": doc})
        publish_champion(p.export, champion)


if __name__ == "__main__":
    app()
