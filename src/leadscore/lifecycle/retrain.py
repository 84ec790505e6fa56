"""`leadscore retrain`: a challenger from the newest mature data, registered as `challenger`.

The same steps as the DVC stages features -> train_rules -> train_model -> evaluate (the
choice of kind) -> explain (grade cut points) -> export, each calling the same library
function, with every artifact written under one folder (default models/retrain/) so the
pipeline's own outputs are never touched. It never moves `champion`: `leadscore promote`
runs the gate.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leadscore.config import Params
from leadscore.explain.explanation import explain_model
from leadscore.explain.grades import save_grading
from leadscore.features.build import feature_catalog, training_table_from_crm
from leadscore.features.catalog import FeatureCatalog, save_catalog
from leadscore.lifecycle.choose import choose_kind
from leadscore.modeling.baseline import PointsRuleClassifier, save_rules
from leadscore.modeling.estimators import model_features, save_model
from leadscore.modeling.metrics import core_metrics
from leadscore.modeling.splits import data_window, split_from_params
from leadscore.modeling.train import train_models

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retrained:
    """What a retrain produced: the kind that ships, why, and its registry entry."""

    kind: str
    why: str
    valid_auc: dict
    export: dict  # model_version, registry_version, alias, data_window, ...
    folder: Path


def build_table(crm: Path, params: Params) -> tuple[pd.DataFrame, FeatureCatalog]:
    """The point-in-time training table of the validated CRM `crm` and its catalog (the
    features stage's `training_table_from_crm`)."""
    cfg = params.features
    table, _ = training_table_from_crm(crm, cfg)
    return table, feature_catalog(cfg.windows_days, cfg.content_types)


def with_cutoff(params: Params, cutoff: dt.date | None) -> Params:
    """`params` with features.data_cutoff set (None: unchanged)."""
    if cutoff is None:
        return params
    return params.model_copy(update={"features": params.features.model_copy(update={"data_cutoff": cutoff})})


def retrain_on_table(table: pd.DataFrame, catalog: FeatureCatalog, params: Params, out: Path, *,
                     register: bool = True) -> Retrained:
    """Train the rules and the models on `table`, choose the kind on the validation slice,
    learn its grade cut points and export it to `out`/scorer; with `register`, register it
    as the challenger (call `leadscore.tracking.setup_mlflow` first)."""
    from leadscore.serve.export import export_scorer

    out = Path(out)
    split = split_from_params(table, params)
    rules = PointsRuleClassifier.from_config(params.train_rules).fit(split.calib, split.calib["label"])
    save_rules(rules, out / "rules.json")
    save_catalog(catalog, out / "feature_catalog.json")
    names, cats = model_features(split.train, catalog)
    meta = {"horizon_days": params.features.horizon_days, "target_stage": params.features.target_stage}
    result = train_models(split.train, split.valid, split.calib, features=names, categorical=cats,
                          cfg=params.train_model, seed=params.seed, data_window=data_window(split),
                          refit_rows=split.mature, metadata=meta)
    valid = {"rules": core_metrics(split.valid["label"], rules.predict_proba(split.valid)[:, 1])["roc_auc"]}
    if not result.fallback:
        valid |= {k: result.metrics[k]["valid"]["roc_auc"] for k in ("logistic", "lightgbm")}
        for kind, model in result.models.items():
            save_model(model, out / kind)
    kind, why = choose_kind(valid)
    log.info("retrain: %s", why)
    grading = None
    if kind != "rules":
        grading = out / "grading.json"
        save_grading(explain_model(split, result.models[kind], rules, catalog, params.explain,
                                   params.seed).cuts, grading)
    register_as = ((params.export.registered_model, params.export.challenger_alias)
                   if register else None)
    summary = export_scorer(out / kind if kind != "rules" else None, kind=kind, grading=grading,
                            catalog=out / "feature_catalog.json", rules=out / "rules.json",
                            out=out / "scorer", register_as=register_as,
                            metadata=None if kind != "rules" else {"data_window": data_window(split)})
    return Retrained(kind, why, valid, summary, out)


def retrain(crm: Path, params: Params, out: Path, *, cutoff: dt.date | None = None,
            register: bool = True) -> Retrained:
    """`retrain_on_table` on the training table built from the validated CRM `crm` with
    features.data_cutoff = `cutoff` (None: the configured one, else the end of the data)."""
    params = with_cutoff(params, cutoff)
    table, catalog = build_table(crm, params)
    return retrain_on_table(table, catalog, params, out, register=register)
