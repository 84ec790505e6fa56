"""The scorer: one object that turns feature rows into probability, grade and reasons.

`Scorer` holds everything a score needs, loaded from safe files only (no pickle):

| artifact key | file | what |
|---|---|---|
| booster | model.txt | LightGBM text model |
| estimator | estimator.json | feature order and the fixed categories of the booster |
| calibrator | calibrator.json | raw log-odds -> probability |
| grading | grading.json | cut points of the fit letter and the engagement digit |
| catalog | feature_catalog.json | feature names, groups, labels (reason texts) |
| rules | rules.json | the points-rule baseline (rule_points, rule_grade); optional |
| version | version.json | model version, data window, git commit, params hash |

One pass per row: the exact log-odds contributions (`leadscore.explain.contributions`) give
everything. Log-odds = base value + their sum (for an additive booster; otherwise the
booster's own raw score), the probability through the calibrator, the fit and engagement
scores as the sums over the two feature groups (the ones recorded in the grade cut points,
else the catalog's), the grade from those scores, the reasons from the largest cells.

- `Scorer.score(features)` returns the score contract, per input row (same index):
  ``probability, grade, fit_grade, engagement_grade, rule_points, rule_grade, reasons`` where
  ``reasons`` is a list of up to 2 x `n_reasons` dicts ``{code, text, contribution}`` (top
  positive, then top negative).
- `Scorer.score_arrow(features)`: the same for the batch job, reasons as a pyarrow array.
- `Scorer.explain(features)`: every score column plus ``log_odds, fit_score,
  engagement_score``, and the reasons as arrays (`leadscore.explain.reasons.Reasons`).

The one class is used by the explain stage (pipelines/explain.py), `leadscore explain`, flat
mode, the batch job (`leadscore.serve.batch`) and, wrapped in
`leadscore.serve.pyfunc.ScorerModel`, by the exported MLflow model. So none of them can drift
apart. Importing this module does not import MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.explain.contributions import Explainer, feature_groups, group_sums
from leadscore.explain.grades import GradeCuts
from leadscore.explain.reasons import Reasons, explain_rows
from leadscore.features.catalog import FeatureCatalog
from leadscore.io import read_json
from leadscore.modeling.baseline import PointsRuleClassifier
from leadscore.modeling.calibration import Calibrator
from leadscore.modeling.estimators import LightGBMClassifier

log = logging.getLogger(__name__)

ARTIFACT_FILES: dict[str, str] = {
    "booster": "model.txt",
    "estimator": "estimator.json",
    "calibrator": "calibrator.json",
    "grading": "grading.json",
    "catalog": "feature_catalog.json",
    "rules": "rules.json",
    "version": "version.json",
}
OUTPUT_COLUMNS: tuple[str, ...] = (
    "probability", "grade", "fit_grade", "engagement_grade", "rule_points", "rule_grade", "reasons",
)
N_REASONS = 3


class Scorer:
    """Booster + calibrator + grade cut points + catalog (+ rules, version metadata)."""

    def __init__(self, model: LightGBMClassifier, calibrator: Calibrator, cuts: GradeCuts,
                 catalog: FeatureCatalog, rules: PointsRuleClassifier | None = None,
                 version: Mapping | None = None, *, n_reasons: int = N_REASONS):
        self.explainer = Explainer.for_model(model)  # TypeError for a model that is not LightGBM
        self.model = model
        self.calibrator = calibrator
        self.cuts = cuts
        self.catalog = catalog
        self.rules = rules
        self.version = dict(version or {})
        self.n_reasons = int(n_reasons)
        # the booster's features, in the booster's order
        self.feature_names: list[str] = list(model.feature_names_)
        self.categorical: dict[str, list[str]] = dict(model.categories_)
        # the groups the cut points were learned on; else the catalog's (features in use)
        used = feature_groups(catalog, self.feature_names)
        self.groups: dict[str, list[str]] = {"fit": list(cuts.fit_features) or used["fit"],
                                             "engagement": list(cuts.engagement_features) or used["engagement"]}

    @classmethod
    def from_model(cls, model, cuts: GradeCuts, catalog: FeatureCatalog,
                   rules: PointsRuleClassifier | None = None, version: Mapping | None = None, *,
                   n_reasons: int = N_REASONS) -> Scorer:
        """From a `CalibratedModel` around a `LightGBMClassifier` (as `load_model` returns)."""
        return cls(model.model, model.calibrator, cuts, catalog, rules, version, n_reasons=n_reasons)

    @classmethod
    def from_artifacts(cls, paths: Mapping[str, str | Path], *, n_reasons: int = N_REASONS) -> Scorer:
        """Load from artifact files (keys of `ARTIFACT_FILES`; `rules` is optional)."""
        missing = [k for k in ARTIFACT_FILES if k != "rules" and k not in paths]
        if missing:
            raise FileNotFoundError(f"scorer artifacts missing: {missing}")
        model = LightGBMClassifier.from_parts(read_json(paths["estimator"]),
                                              Path(paths["booster"]).read_text())
        rules = PointsRuleClassifier.from_dict(read_json(paths["rules"])) if paths.get("rules") else None
        return cls(model=model,
                   calibrator=Calibrator.from_dict(read_json(paths["calibrator"])),
                   cuts=GradeCuts.from_dict(read_json(paths["grading"])),
                   catalog=FeatureCatalog.from_records(read_json(paths["catalog"])),
                   rules=rules, version=read_json(paths["version"]), n_reasons=n_reasons)

    @classmethod
    def from_dir(cls, folder: str | Path, *, n_reasons: int = N_REASONS) -> Scorer:
        """Load from a folder holding the `ARTIFACT_FILES`."""
        folder = Path(folder)
        paths = {k: folder / f for k, f in ARTIFACT_FILES.items() if (folder / f).exists()}
        return cls.from_artifacts(paths, n_reasons=n_reasons)

    @property
    def model_version(self) -> str:
        return str(self.version.get("model_version", "unknown"))

    def input_types(self) -> dict[str, str]:
        """Input column -> "string" (categorical) or "double", in model order."""
        return {n: ("string" if n in self.categorical else "double") for n in self.feature_names}

    def model_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """The features as the booster sees them (fixed categories, float64)."""
        return self.model.model_frame(features)

    def explain(self, features: pd.DataFrame, *, reasons: bool = True
                ) -> tuple[pd.DataFrame, Reasons | None]:
        """Every score column for each row of `features` (same index): probability, grade,
        fit_grade, engagement_grade, log_odds, fit_score, engagement_score, rule_points,
        rule_grade (NaN / None without rules); and the reasons as arrays (None with
        `reasons=False`). `features` holds raw feature rows (extra columns are ignored)."""
        Xm = self.explainer.model_input(features)
        contrib = self.explainer.contributions(Xm)
        if self.explainer.additive:  # exact: contributions + base value = log-odds
            raw = contrib.sum(axis=1) + self.explainer.expected_value()
        else:
            raw = self.explainer.raw_margin(Xm)
        sums = group_sums(contrib, self.feature_names, self.groups)
        grades = self.cuts.grade(sums["fit"], sums["engagement"])
        out = pd.DataFrame({
            "probability": self.calibrator.predict(raw).astype("float64"),
            "grade": grades["grade"].to_numpy().astype(object),
            "fit_grade": np.asarray(grades["fit_grade"].to_numpy(), dtype=object),
            "engagement_grade": np.asarray(grades["engagement_grade"].to_numpy(), dtype=object),
            "log_odds": raw, "fit_score": sums["fit"], "engagement_score": sums["engagement"],
        }, index=features.index)
        if self.rules is not None:
            rg = self.rules.grade(features)
            out["rule_points"] = rg["rule_points"].to_numpy(dtype="float64")
            out["rule_grade"] = rg["rule_grade"].to_numpy(dtype=object)
        else:
            out["rule_points"] = np.nan
            out["rule_grade"] = None
        why = (explain_rows(contrib, features, self.catalog, self.feature_names, self.n_reasons)
               if reasons else None)
        return out, why

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """The score contract (`OUTPUT_COLUMNS`) for each row of `features` (same index);
        `reasons` holds a list of {code, text, contribution} per row."""
        out, why = self.explain(features)
        out["reasons"] = why.to_lists()
        return out[list(OUTPUT_COLUMNS)]

    def score_arrow(self, features: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
        """Like `score`, for the batch job: the score columns without `reasons`, and the
        reasons as a pyarrow list<struct> array (no per-lead Python objects)."""
        out, why = self.explain(features)
        return out, why.to_arrow()
