"""A tiny trained scorer for the export and scoring tests: a small synthetic CRM (with the
canary PII), ingested, its training table, a small additive LightGBM, calibrator, grade cut
points, rules and catalog, exported as an MLflow model (no registry). Built once per session.

`build_kinds` adds the two other kinds of scorer on the same data: the logistic regression
(its calibrator and cut points learned on its own contributions) and the rules alone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from leadscore.config import FeaturesConfig, GenerateConfig, IngestConfig, TrainRulesConfig
from leadscore.data.ingest import ingest
from leadscore.data.synthetic import generate_crm
from leadscore.explain.contributions import Explainer, group_sums
from leadscore.explain.grades import GradeCuts, fit_grade_cuts, save_grading
from leadscore.features.build import feature_catalog, training_table
from leadscore.features.catalog import FeatureCatalog, save_catalog
from leadscore.modeling.baseline import PointsRuleClassifier, load_rules, save_rules
from leadscore.modeling.calibration import Calibrator
from leadscore.modeling.estimators import (
    CalibratedModel,
    LightGBMClassifier,
    LogisticClassifier,
    load_model,
    save_model,
)
from leadscore.serve.batch import feature_kwargs
from leadscore.serve.export import export_scorer

N_LEADS = 700
SEED = 11
FEATURES = FeaturesConfig()  # the feature settings of training and scoring
DOMAINS = IngestConfig().free_mail_domains
AS_OF = dt.datetime(2025, 7, 1)


@dataclass(frozen=True)
class Trained:
    root: Path
    raw: Path  # the generated CRM, WITH personal data (the scoring source)
    crm: Path  # ingested, PII-free
    models: Path  # models/lightgbm, grading.json, rules.json, feature_catalog.json
    scorer: Path  # the exported MLflow model
    catalog: FeatureCatalog
    table: pd.DataFrame  # the training table


def build_trained(root: Path) -> Trained:
    raw, crm = root / "raw.duckdb", root / "crm.duckdb"
    generate_crm(GenerateConfig(n_leads=N_LEADS, chunk_leads=1000), SEED, raw)
    ingest("duckdb", raw, crm, DOMAINS)
    with duckdb.connect(str(crm), read_only=True) as con:
        table, _ = training_table(
            con, as_of_start=FEATURES.as_of_start, as_of_end=None, every_months=1, cutoff=None,
            target_stage=FEATURES.target_stage, horizon_days=FEATURES.horizon_days,
            **{k: v for k, v in feature_kwargs(FEATURES).items() if k != "target_stage"})
    cat = feature_catalog(FEATURES.windows_days, FEATURES.content_types)
    est = LightGBMClassifier.from_catalog(
        cat, params={"num_leaves": 4, "learning_rate": 0.2, "min_data_in_leaf": 20, "verbosity": -1},
        max_boost_rounds=30, seed=SEED, num_threads=1, additive=True)
    est.fit(table, table["label"])
    raw_score = est.decision_function(table)
    calibrator = Calibrator("sigmoid").fit(raw_score, table["label"].to_numpy())
    contrib = Explainer.for_model(est).contributions(est.model_frame(table))
    sums = group_sums(contrib, est.feature_names_, {g: cat.group(g) for g in ("fit", "engagement")})
    cuts = fit_grade_cuts(sums["fit"], sums["engagement"], fit_features=cat.group("fit"),
                          engagement_features=cat.group("engagement"))
    rules = PointsRuleClassifier.from_config(TrainRulesConfig()).fit(table, table["label"])
    models = root / "models"
    meta = {"data_window": {"train_as_of_first": "2024-04-01", "train_as_of_last": "2025-06-01"},
            "git_commit": "test", "params_hash": "test"}
    save_model(CalibratedModel(est, calibrator, meta), models / "lightgbm")
    save_grading(cuts, models / "grading.json")
    save_rules(rules, models / "rules.json")
    save_catalog(cat, models / "feature_catalog.json")
    scorer = models / "scorer"
    export_scorer(models / "lightgbm", grading=models / "grading.json", catalog=models / "feature_catalog.json",
                  rules=models / "rules.json", out=scorer)
    assert np.isfinite(raw_score).all()
    return Trained(root, raw, crm, models, scorer, cat, table)


@dataclass(frozen=True)
class Kinds:
    """Exported scorers of each kind, and the in-memory objects they were made from."""

    scorers: dict[str, Path]  # kind -> exported MLflow model folder
    logistic: CalibratedModel
    logistic_cuts: GradeCuts  # learned on the logistic contributions
    rules: PointsRuleClassifier
    lightgbm: CalibratedModel


def build_kinds(t: Trained, root: Path) -> Kinds:
    table, cat, m = t.table, t.catalog, t.models
    est = LogisticClassifier.from_catalog(cat).fit(table, table["label"])
    calibrator = Calibrator("sigmoid").fit(est.decision_function(table), table["label"].to_numpy())
    ex = Explainer.for_model(est)
    groups = {g: cat.group(g) for g in ("fit", "engagement")}
    sums = group_sums(ex.contributions(table, raw=True), ex.feature_names, groups)
    cuts = fit_grade_cuts(sums["fit"], sums["engagement"], fit_features=groups["fit"],
                          engagement_features=groups["engagement"])
    meta = {"data_window": {"train_as_of_first": "2024-04-01"}, "git_commit": "test",
            "params_hash": "test", "kind": "logistic"}
    logistic = CalibratedModel(est, calibrator, meta)
    save_model(logistic, root / "logistic")
    save_grading(cuts, root / "grading_logistic.json")
    scorers = {"lightgbm": t.scorer, "logistic": root / "scorer_logistic", "rules": root / "scorer_rules"}
    export_scorer(root / "logistic", grading=root / "grading_logistic.json",
                  catalog=m / "feature_catalog.json", rules=m / "rules.json", out=scorers["logistic"])
    export_scorer(kind="rules", catalog=m / "feature_catalog.json", rules=m / "rules.json",
                  out=scorers["rules"])
    return Kinds(scorers, logistic, cuts, load_rules(m / "rules.json"), load_model(m / "lightgbm"))
