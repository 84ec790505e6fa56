"""The scorer: one object that turns a feature table into the score contract.

`LeadScorer` holds everything a score needs, loaded from safe files only (no pickle):

| artifact key | file | what |
|---|---|---|
| booster | model.txt | LightGBM text model |
| estimator | estimator.json | feature order and the fixed categories of the booster |
| calibrator | calibrator.json | raw log-odds -> probability |
| grading | grading.json | cut points of the fit letter and the engagement digit |
| catalog | feature_catalog.json | feature names, groups, labels (reason texts) |
| rules | rules.json | the points-rule baseline (rule_points, rule_grade) |
| version | version.json | model version, data window, git commit, params hash |

`LeadScorer.score(features)` returns, per input row (same index): ``probability, grade,
fit_grade, engagement_grade, rule_points, rule_grade, reasons`` where ``reasons`` is a list
of up to 6 dicts ``{code, text, contribution}`` (top 3 positive, then top 3 negative, exact
log-odds contributions from `leadscore.explain.contributions`).

The same class is used by the batch job (`leadscore.serve.batch`) and, wrapped in
`ScorerModel`, by the exported MLflow model (`leadscore.serve.model_code` is the models-from-code
file that `mlflow.pyfunc.load_model` executes). So the pyfunc and the in-pipeline scorer
cannot drift apart. Importing this module has no side effect beyond importing MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from leadscore.explain.contributions import Explainer, group_sums
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


class LeadScorer:
    """Booster + calibrator + grade cut points + catalog + rules + version metadata."""

    def __init__(self, model: LightGBMClassifier, calibrator: Calibrator, grading: dict,
                 catalog: FeatureCatalog, rules: PointsRuleClassifier | None, version: dict):
        self.model = model
        self.calibrator = calibrator
        self.grading = grading
        self.catalog = catalog
        self.rules = rules
        self.version = version
        # the booster's features with their catalog entries, in the booster's order
        self.feature_names: list[str] = list(model.feature_names_)
        self.categorical: dict[str, list[str]] = dict(model.categories_)
        self.grader = GradeCuts.from_dict(grading)
        self._explainer = Explainer.for_model(model)
        self._groups = {g: catalog.group(g) for g in ("fit", "engagement")}

    @classmethod
    def from_artifacts(cls, paths: Mapping[str, str | Path]) -> LeadScorer:
        """Load from artifact files (keys of `ARTIFACT_FILES`; `rules` is optional)."""
        missing = [k for k in ARTIFACT_FILES if k != "rules" and k not in paths]
        if missing:
            raise FileNotFoundError(f"scorer artifacts missing: {missing}")
        model = LightGBMClassifier.from_parts(read_json(paths["estimator"]),
                                              Path(paths["booster"]).read_text())
        rules = PointsRuleClassifier.from_dict(read_json(paths["rules"])) if paths.get("rules") else None
        return cls(model=model,
                   calibrator=Calibrator.from_dict(read_json(paths["calibrator"])),
                   grading=read_json(paths["grading"]),
                   catalog=FeatureCatalog.from_records(read_json(paths["catalog"])),
                   rules=rules, version=read_json(paths["version"]))

    @classmethod
    def from_dir(cls, folder: str | Path) -> LeadScorer:
        """Load from a folder holding the `ARTIFACT_FILES`."""
        folder = Path(folder)
        paths = {k: folder / f for k, f in ARTIFACT_FILES.items() if (folder / f).exists()}
        return cls.from_artifacts(paths)

    @property
    def model_version(self) -> str:
        return str(self.version.get("model_version", "unknown"))

    def input_types(self) -> dict[str, str]:
        """Input column -> "string" (categorical) or "double", in model order."""
        return {n: ("string" if n in self.categorical else "double") for n in self.feature_names}

    def model_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """The features as the booster sees them (fixed categories, float64)."""
        return self.model.model_frame(features)

    def _score_parts(self, features: pd.DataFrame) -> tuple[pd.DataFrame, Reasons]:
        """Score columns without reasons, and the reasons as arrays (the shared hot path)."""
        Xm = self._explainer.model_input(features)
        contrib = self._explainer.contributions(Xm)
        if self._explainer.additive:  # exact: contributions + base value = log-odds
            raw = contrib.sum(axis=1) + self._explainer.expected_value()
        else:
            raw = self.model.booster_.predict(Xm, num_iteration=self.model.best_iteration_, raw_score=True)
        sums = group_sums(contrib, self.feature_names, self._groups)
        grades = self.grader.grade(sums["fit"], sums["engagement"])
        out = pd.DataFrame({
            "probability": self.calibrator.predict(raw).astype("float64"),
            "grade": grades["grade"].to_numpy().astype(object),
            "fit_grade": np.asarray(grades["fit_grade"].to_numpy(), dtype=object),
            "engagement_grade": np.asarray(grades["engagement_grade"].to_numpy(), dtype=object),
        }, index=features.index)
        if self.rules is not None:
            rg = self.rules.grade(features)
            out["rule_points"] = rg["rule_points"].to_numpy(dtype="float64")
            out["rule_grade"] = rg["rule_grade"].to_numpy(dtype=object)
        else:
            out["rule_points"] = np.nan
            out["rule_grade"] = None
        return out, explain_rows(contrib, features, self.catalog, self.feature_names, N_REASONS)

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """The score columns (`OUTPUT_COLUMNS`) for each row of `features` (same index);
        `reasons` holds a list of {code, text, contribution} per row."""
        out, reasons = self._score_parts(features)
        out["reasons"] = reasons.to_lists()
        return out[list(OUTPUT_COLUMNS)]

    def score_arrow(self, features: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
        """Like `score`, for the batch job: the columns without `reasons`, and the reasons as
        a pyarrow list<struct> array (no per-lead Python objects)."""
        out, reasons = self._score_parts(features)
        return out, reasons.to_arrow()


# ---- the MLflow pyfunc wrapper -------------------------------------------------------

class ScorerModel(PythonModel):
    """MLflow pyfunc around `LeadScorer`: artifacts in, score contract out.

    `predict` takes the feature table (catalog columns; extra columns such as lead_id are
    ignored) and returns `OUTPUT_COLUMNS`. MLflow enforces the input signature first.
    """

    def load_context(self, context) -> None:
        self.scorer = LeadScorer.from_artifacts(context.artifacts)

    def predict(self, context, model_input, params=None):  # no type hints: MLflow would infer from them
        if not hasattr(self, "scorer"):  # pragma: no cover - MLflow always calls load_context
            self.load_context(context)
        return self.scorer.score(model_input).reset_index(drop=True)
