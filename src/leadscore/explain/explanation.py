"""Explain a trained model on a split: the one sequence the `explain` stage and flat mode share.

`explain_model` learns the grade cut points on the **calibration slice**, then, on the
out-of-time **test slice**: scores and grades every row, builds the A1-D4 grade matrices of
the model and of the rule baseline, the exact contributions with their additivity check, the
global drivers with their dependence data, and the example leads per grade. No I/O: the
caller writes the `Explanation` where it wants.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from leadscore.config import ExplainConfig
from leadscore.explain.contributions import Explainer, feature_groups
from leadscore.explain.drivers import SliceExplanation, explain_slice
from leadscore.explain.examples import pick_examples
from leadscore.explain.grades import GradeCuts, grade_cuts_from_split, grade_matrix
from leadscore.features.catalog import FeatureCatalog
from leadscore.modeling.estimators import CalibratedModel
from leadscore.modeling.splits import Split
from leadscore.serve.scorer import Scorer


@dataclass
class Explanation:
    """Everything the explain step found; `grades` holds one grade matrix per model."""

    cuts: GradeCuts
    scorer: Scorer  # the model with its cut points (no rules, no version)
    scored: pd.DataFrame  # the test slice's score columns (same row order as split.test)
    grades: dict[str, dict]  # {model name: grade matrix, "rules": grade matrix}
    slice: SliceExplanation  # contributions, additivity, drivers, dependence data
    examples: dict  # {grade: [example lead]}


def explain_model(split: Split, model: CalibratedModel, rules, catalog: FeatureCatalog,
                  cfg: ExplainConfig, seed: int, *, name: str = "lightgbm") -> Explanation:
    """Cut points on `split.calib`; grades, matrices, drivers and examples on `split.test`.

    `model` is a calibrated LightGBM or logistic model (its grade matrix is keyed `name`);
    `rules` a fitted points-rule classifier (its own point bands give its grades; its
    calibrated probability is the matrix's `predicted`).
    """
    test = split.test
    explainer = Explainer.for_model(model)
    cuts = grade_cuts_from_split(explainer, split, feature_groups(catalog, explainer.feature_names),
                                 fit_shares=cfg.fit_shares, engagement_shares=cfg.engagement_shares)
    scorer = Scorer.from_model(model, cuts, catalog, n_reasons=cfg.n_reasons)
    found = explain_slice(explainer, test, model.decision_function(test), catalog,
                          min_corr=cfg.min_direction_corr, top=cfg.top_drivers,
                          rows=cfg.dependence_rows, seed=seed)
    scored, _ = scorer.explain(test, reasons=False)
    y, rule_grades = test["label"].to_numpy(), rules.grade(test)
    grades = {
        name: grade_matrix(y, scored["fit_grade"], scored["engagement_grade"],
                                 scored["probability"], alpha=cfg.significance),
        "rules": grade_matrix(y, rule_grades["fit_grade"], rule_grades["engagement_grade"],
                              rules.predict_proba(test)[:, 1], alpha=cfg.significance),
    }
    examples = pick_examples(test, scored["grade"], scorer, cfg.examples_per_grade, seed)
    return Explanation(cuts, scorer, scored, grades, found, examples)
