"""Decide on the gate's result and move the champion alias: the one place that promotes.

Decisions (`decide`), first match wins:

| situation | decision | champion moves |
|---|---|---|
| `--force --reason` | forced | yes (reason, who, when recorded) |
| challenger is the champion | unchanged | no |
| a rollback left this version before | refused (rolled back) | no |
| a check failed | refused | no |
| inside `dvc exp run` | kept (experiment) | no |
| `gate.promote: false` | passed, not promoted | no |
| no champion yet | first champion | yes |
| otherwise | promoted | yes |

Experiments are recognised by the variables DVC sets for every stage of `dvc exp run`
(``DVC_EXP_NAME``, ``DVC_EXP_BASELINE_REV``), so `dvc exp run -S ...` can never move the
production alias, whatever its parameters say.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import pandas as pd

from leadscore.config import ExportConfig, GateConfig
from leadscore.errors import ModelError
from leadscore.lifecycle.gate import GateResult, evaluate_gate
from leadscore.lifecycle.registry import (
    ModelRef,
    alias_ref,
    download_alias,
    is_rolled_back,
    operator,
    promote,
)

log = logging.getLogger(__name__)

EXPERIMENT_VARIABLES: tuple[str, ...] = ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV")
MOVES: frozenset[str] = frozenset({"forced", "first champion", "promoted"})


def in_experiment() -> bool:
    """True inside a stage run by `dvc exp run`."""
    return any(os.environ.get(v) for v in EXPERIMENT_VARIABLES)


def decide(result: GateResult, *, challenger: ModelRef, champion: ModelRef | None,
           rolled_back: bool, promote_enabled: bool, experiment: bool,
           force_reason: str | None = None) -> str:
    """The decision for the gate's `result` (see the module table)."""
    if force_reason:
        return "forced"
    if champion is not None and champion.registry_version == challenger.registry_version:
        return "unchanged"
    if rolled_back:
        return "refused (rolled back)"
    if not result.passed:
        return "refused"
    if experiment:
        return "kept (experiment)"
    if not promote_enabled:
        return "passed, not promoted"
    return "first champion" if champion is None else "promoted"


def gate_report(result: GateResult, decision: str, *, challenger: ModelRef,
                champion: ModelRef | None, forced: dict | None = None) -> dict:
    """The reports/gate.json document (docs/lifecycle.md)."""
    return {"passed": result.passed, "promoted": decision in MOVES, "decision": decision,
            "window": result.window, "champion": champion.to_dict() if champion else None,
            "challenger": challenger.to_dict(), "checks": result.checks, "forced": forced}


def load_alias_scorer(name: str, alias: str, folder: Path):
    """The `Scorer` inside the registry model `alias` points at (copied to `folder`), and its
    reference; (None, None) when the alias is not set."""
    from leadscore.serve.batch import inner_scorer, load_scorer_model

    ref = alias_ref(name, alias)
    if ref is None:
        return None, None
    download_alias(name, alias, folder)
    scorer = inner_scorer(load_scorer_model(str(folder)))
    if scorer is None:
        raise ModelError(f"registry: {name}@{alias} (version {ref.registry_version}) is not a leadscore scorer")
    return scorer, ref


def run_gate(window: pd.DataFrame, challenger, challenger_ref: ModelRef, rules, *,
             gate: GateConfig, export: ExportConfig, seed: int, workdir: Path,
             force_reason: str | None = None) -> tuple[dict, GateResult, object | None]:
    """Gate the registered challenger against the current champion on `window`, then apply
    the decision. Returns the gate report, the result (with every side's scores) and the
    champion scorer it compared with (None on the first run). A champion that cannot be
    scored on the window (its features are missing) is a `ModelError`: pass `--force
    --reason` to replace it anyway."""
    name, alias = export.registered_model, export.champion_alias
    champion, champion_ref = load_alias_scorer(name, alias, workdir / "champion")
    if champion is not None:
        missing = [f for f in champion.input_types() if f not in window.columns]
        if missing and not force_reason:
            raise ModelError(f"the champion (version {champion_ref.registry_version}) needs "
                             f"feature(s) the window lacks: {missing[:10]}; promote with --force --reason")
        if missing:
            champion = None  # forced: the old champion cannot be scored on this window
    result = evaluate_gate(window, challenger, champion, rules, gate, seed=seed)
    decision = decide(result, challenger=challenger_ref, champion=champion_ref,
                      rolled_back=is_rolled_back(name, challenger_ref.registry_version, alias),
                      promote_enabled=gate.promote, experiment=in_experiment(),
                      force_reason=force_reason)
    forced = None
    if decision == "forced":
        forced = {"reason": force_reason, "by": operator(),
                  "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    if decision in MOVES:
        promote(name, alias, challenger_ref.registry_version, reason=force_reason or decision,
                forced=decision == "forced")
    report = gate_report(result, decision, challenger=challenger_ref, champion=champion_ref,
                         forced=forced)
    return report, result, champion


def challenger_from_registry(name: str, alias: str, folder: Path, version: str | None = None):
    """The challenger scorer and its reference: registry `version` when given, else the
    version `alias` (the challenger alias) points at."""
    from leadscore.lifecycle.registry import model_ref
    from leadscore.serve.batch import inner_scorer, load_scorer_model

    ref = model_ref(name, version) if version else alias_ref(name, alias)
    if ref is None:
        raise ModelError(f"registry: {name}@{alias} is not set: retrain first (leadscore retrain or dvc repro)")
    scorer = inner_scorer(load_scorer_model(f"models:/{name}/{ref.registry_version}"))
    if scorer is None:
        raise ModelError(f"registry: {name} version {ref.registry_version} is not a leadscore scorer")
    return scorer, ref


def gate_stage_inputs(params, table: pd.DataFrame, scorer_dir: Path, rules_path: Path):
    """The gate window (the test slice of `table` under `params`), the challenger scorer from
    `scorer_dir` with its registry reference (which must hold the same model), and the rules."""
    from leadscore.modeling.baseline import load_rules
    from leadscore.modeling.splits import split_from_params
    from leadscore.serve.batch import inner_scorer, load_scorer_model

    name, alias = params.export.registered_model, params.export.challenger_alias
    challenger = inner_scorer(load_scorer_model(str(scorer_dir)))
    if challenger is None:
        raise ModelError(f"{scorer_dir}: not a leadscore scorer")
    ref = alias_ref(name, alias)
    if ref is None or ref.model_version != challenger.model_version:
        raise ModelError(f"{scorer_dir} (model {challenger.model_version}) is not the registered "
                         f"{name}@{alias} ({ref.model_version if ref else 'not set'}): run the export stage")
    return split_from_params(table, params).test, challenger, ref, load_rules(rules_path)


def changes_or_note(champion, challenger, window: pd.DataFrame, report: dict, *, seed: int) -> dict:
    """reports/changes.json: "what changed" from the champion the gate compared with to the
    challenger, or a note saying why there is nothing to compare."""
    from leadscore.lifecycle.compare import what_changed

    if champion is None:
        return {"available": False, "reason": "no champion to compare with (first run)"}
    if champion.model_version == challenger.model_version:
        return {"available": False, "reason": "the challenger is the champion: nothing changed"}
    return {"available": True, **what_changed(champion, challenger, window, seed=seed,
                                               champion_info=report["champion"],
                                               challenger_info=report["challenger"])}


def publish_champion(export: ExportConfig, folder: Path) -> ModelRef:
    """Copy the current champion to `folder` (what the batch job and the score stage read);
    `ModelError` when no model has passed the gate yet."""
    ref = download_alias(export.registered_model, export.champion_alias, folder)
    log.info("champion: %s version %s (model %s, %s) -> %s", export.registered_model,
             ref.registry_version, ref.model_version, ref.kind, folder)
    return ref
