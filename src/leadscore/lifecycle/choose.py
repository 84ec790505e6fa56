"""Which kind ships: chosen on the validation slice, before the test slice is looked at.

The candidates are the points rules, the logistic check and LightGBM. The one with the
highest validation ROC-AUC ships; a tie goes to the simpler kind (rules, then logistic).
The models' validation figures come from the models fitted on the train slice only (the
refitted models have seen the validation slice); the rules never fit on it.
"""

from __future__ import annotations

from collections.abc import Mapping

from leadscore.errors import InputError

KINDS: tuple[str, ...] = ("rules", "logistic", "lightgbm")  # simplest first


def choose_kind(valid_auc: Mapping[str, float | None]) -> tuple[str, str]:
    """The kind to ship and one sentence saying why. `valid_auc`: kind -> validation
    ROC-AUC (None or missing: not available, e.g. a fallback without models)."""
    scored = {k: float(v) for k, v in valid_auc.items() if k in KINDS and v is not None}
    if not scored:
        raise ValueError("no candidate has a validation ROC-AUC")
    best = max(scored.values())
    kind = next(k for k in KINDS if scored.get(k) == best)
    others = ", ".join(f"{k} {v:.4f}" for k, v in scored.items() if k != kind)
    return kind, f"{kind} has the highest validation ROC-AUC ({best:.4f}; {others or 'no other candidate'})"


def champion_entry(kind: str, why: str, valid_auc: Mapping[str, float | None],
                   test_metrics: Mapping[str, Mapping]) -> dict:
    """The `champion` block of evaluate.json: the chosen kind, why, and its test metrics."""
    return {"name": kind, "chosen_on": "valid", "why": why,
            "valid_roc_auc": {k: v for k, v in valid_auc.items() if v is not None},
            **{k: v for k, v in test_metrics.get(kind, {}).items()}}


def valid_aucs(train_model_summary: Mapping, train_rules_summary: Mapping) -> dict[str, float | None]:
    """Kind -> validation ROC-AUC from metrics/train_model.json and metrics/train_rules.json
    (a fallback run has no models: None)."""
    out: dict[str, float | None] = {"rules": (train_rules_summary.get("valid") or {}).get("roc_auc")}
    for kind in ("logistic", "lightgbm"):
        out[kind] = ((train_model_summary.get(kind) or {}).get("valid") or {}).get("roc_auc")
    return out


def shipped_kind(evaluation: Mapping) -> str:
    """The kind evaluate.json's champion entry names (written by the evaluate stage)."""
    kind = (evaluation.get("champion") or {}).get("name")
    if kind not in KINDS:
        raise InputError(f"evaluate.json has no valid champion entry (name {kind!r}): rerun the evaluate stage")
    return kind


def explained_kind(evaluation: Mapping) -> str:
    """The model the explain stage explains: the shipped one, or LightGBM when the rules ship
    (the rules explain themselves: their points are the reasons)."""
    kind = shipped_kind(evaluation)
    return "lightgbm" if kind == "rules" else kind
