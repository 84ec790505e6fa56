"""The scorer: one object that turns feature rows into probability, grade and reasons.

`Scorer` serves one of three **kinds** of model behind one contract (`Scorer.kind`):

- ``lightgbm``: the calibrated LightGBM booster, graded by the fit / engagement cut points;
- ``logistic``: the calibrated logistic-regression check (`LogisticClassifier`), graded the
  same way by cut points learned on its own contributions;
- ``rules``: the fitted points rules (`PointsRuleClassifier`): probability from the rules'
  isotonic points -> probability map, grade from the rules' own point bands.

It holds everything a score needs, loaded from safe files only (no pickle):

| artifact key | file | what | kinds |
|---|---|---|---|
| booster | model.txt | LightGBM text model | lightgbm |
| estimator | estimator.json | feature order and the fixed categories of the booster | lightgbm |
| model | model.json | the fitted logistic regression (medians, scaling, categories, coefficients) | logistic |
| calibrator | calibrator.json | raw log-odds -> probability | lightgbm, logistic |
| grading | grading.json | cut points of the fit letter and the engagement digit | lightgbm, logistic |
| catalog | feature_catalog.json | feature names, groups, labels (reason texts, input signature) | all |
| rules | rules.json | the points rules (rule_points, rule_grade); optional for the models | all |
| version | version.json | kind, model version, data window, git commit, params hash | all |

`KIND_ARTIFACTS` lists the required keys per kind. The kind is the one recorded in
version.json, else inferred from the files (model.txt: lightgbm, model.json: logistic, else
rules), so folders exported before kinds existed load as lightgbm.

Models (one pass per row): the exact log-odds contributions per feature
(`leadscore.explain.contributions.Explainer.for_model`: TreeSHAP look-ups for LightGBM, the
linear terms for the logistic model) give everything. Log-odds = base value + their sum
(for an additive explainer; otherwise the booster's own raw score), the probability through
the calibrator, the fit and engagement scores as the sums over the two feature groups (the
ones recorded in the grade cut points, else the catalog's), the grade from those scores, the
reasons from the largest cells. Rules: the points per item of the table
(`PointsRuleClassifier.breakdown`) give the total points (probability through the rules'
calibrator), the fit and engagement points (the grade by the rules' bands) and the reasons
from the largest items; there `contribution` is in **points**, not log-odds.

- `Scorer.score(features)` returns the score contract, per input row (same index):
  ``probability, grade, fit_grade, engagement_grade, rule_points, rule_grade, reasons`` where
  ``reasons`` is a list of up to 2 x `n_reasons` dicts ``{code, text, contribution}`` (top
  positive, then top negative).
- `Scorer.score_arrow(features)`: the same for the batch job, reasons as a pyarrow array.
- `Scorer.explain(features)`: every score column plus ``log_odds, fit_score,
  engagement_score``, and the reasons as arrays (`leadscore.explain.reasons.Reasons`).
- `Scorer.contributions_frame(features)`: rows x items in the scorer's unit (log-odds per
  feature for the models, points per rule item for the rules); `Scorer.item_label(name)`
  names an item in words.

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
from leadscore.explain.reasons import Reasons, describe, explain_rows
from leadscore.features.catalog import FeatureCatalog
from leadscore.io import read_json
from leadscore.modeling.baseline import PointsRuleClassifier
from leadscore.modeling.calibration import Calibrator
from leadscore.modeling.estimators import LightGBMClassifier, LogisticClassifier

log = logging.getLogger(__name__)

ARTIFACT_FILES: dict[str, str] = {
    "booster": "model.txt",
    "estimator": "estimator.json",
    "model": "model.json",
    "calibrator": "calibrator.json",
    "grading": "grading.json",
    "catalog": "feature_catalog.json",
    "rules": "rules.json",
    "version": "version.json",
}
KINDS: tuple[str, ...] = ("lightgbm", "logistic", "rules")
# the artifact keys each kind needs ("rules" is optional for the two models)
KIND_ARTIFACTS: dict[str, tuple[str, ...]] = {
    "lightgbm": ("booster", "estimator", "calibrator", "grading", "catalog", "version"),
    "logistic": ("model", "calibrator", "grading", "catalog", "version"),
    "rules": ("rules", "catalog", "version"),
}
OUTPUT_COLUMNS: tuple[str, ...] = (
    "probability", "grade", "fit_grade", "engagement_grade", "rule_points", "rule_grade", "reasons",
)
N_REASONS = 3


def artifact_kind(paths: Mapping[str, Any], version: Mapping | None = None) -> str:
    """The kind of a scorer's artifacts: the one recorded in `version` (version.json), else
    inferred from the keys present (booster: lightgbm, model: logistic, else rules)."""
    recorded = (version or {}).get("kind")
    if recorded is not None:
        if recorded not in KINDS:
            raise ValueError(f"version.json: unknown scorer kind {recorded!r} (one of {', '.join(KINDS)})")
        return str(recorded)
    if paths.get("booster"):
        return "lightgbm"
    if paths.get("model"):
        return "logistic"
    return "rules"


def _kind_of_model(model, rules) -> str:
    if isinstance(model, LightGBMClassifier):
        return "lightgbm"
    if isinstance(model, LogisticClassifier):
        return "logistic"
    if model is None and isinstance(rules, PointsRuleClassifier):
        return "rules"
    raise TypeError(f"cannot serve a {type(model).__name__}: a Scorer serves a LightGBMClassifier, "
                    "a LogisticClassifier or (model=None) the fitted points rules")


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


class Scorer:
    """One scorer contract for every kind of model (`kind`: "lightgbm", "logistic", "rules").

    Models: `Scorer(model, calibrator, cuts, catalog, rules=None, version=None)` with a
    fitted `LightGBMClassifier` or `LogisticClassifier`, its calibrator and the grade cut
    points learned on its contributions (`rules`, optional, give rule_points / rule_grade).
    Rules: `Scorer(None, None, None, catalog, rules)` (or `Scorer.from_rules`) with fitted
    points rules. `from_model` dispatches on the model's type, `from_artifacts` / `from_dir`
    load any kind.
    """

    def __init__(self, model: LightGBMClassifier | LogisticClassifier | None,
                 calibrator: Calibrator | None, cuts: GradeCuts | None, catalog: FeatureCatalog,
                 rules: PointsRuleClassifier | None = None, version: Mapping | None = None, *,
                 n_reasons: int = N_REASONS):
        self.kind: str = _kind_of_model(model, rules)
        self.model = model
        self.catalog = catalog
        self.rules = rules
        self.n_reasons = int(n_reasons)
        self.version = dict(version or {})
        if self.version.get("kind", self.kind) != self.kind:
            raise ValueError(f"version.json records kind {self.version['kind']!r} but the model "
                             f"is {self.kind!r}")
        self.version["kind"] = self.kind
        if self.kind == "rules":
            if calibrator is not None or cuts is not None:
                raise ValueError("the rules kind uses the rules' own calibrator and point bands: "
                                 "pass calibrator=None and cuts=None")
            if not hasattr(rules, "calibrator_"):
                raise ValueError("the points rules are not fitted (no points -> probability map): "
                                 "run the train_rules stage")
            self.explainer = None
            self.calibrator = rules.calibrator_
            self.cuts = None
            # the input is the catalog's features (the one input signature of every kind)
            self.feature_names: list[str] = list(catalog.names)
            self.categorical: dict[str, list[str]] = {n: [] for n in catalog.categorical}
            self.rule_items = {i.name: i for i in rules.items()}
            self.items: list[str] = list(self.rule_items)
            self.groups: dict[str, list[str]] = {
                g: [i.name for i in self.rule_items.values() if i.group == g] for g in ("fit", "engagement")}
            return
        if calibrator is None or cuts is None:
            raise ValueError(f"a {self.kind} scorer needs its calibrator and grade cut points")
        self.explainer = Explainer.for_model(model)
        self.calibrator = calibrator
        self.cuts = cuts
        self.rule_items = {}
        # the model's features, in the model's order
        self.feature_names = list(self.explainer.feature_names)
        self.categorical = (dict(model.categories_) if self.kind == "lightgbm"
                            else dict(self.explainer.categories))
        self.items = self.feature_names
        # the groups the cut points were learned on; else the catalog's (features in use)
        used = feature_groups(catalog, self.feature_names)
        self.groups = {"fit": list(cuts.fit_features) or used["fit"],
                       "engagement": list(cuts.engagement_features) or used["engagement"]}

    # ---- constructors -------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, cuts: GradeCuts | None, catalog: FeatureCatalog,
                   rules: PointsRuleClassifier | None = None, version: Mapping | None = None, *,
                   n_reasons: int = N_REASONS) -> Scorer:
        """From a `CalibratedModel` around a `LightGBMClassifier` or a `LogisticClassifier`
        (as `load_model` returns), or from fitted `PointsRuleClassifier` rules (the rules kind:
        `cuts` and `rules` are not used)."""
        if isinstance(model, PointsRuleClassifier):
            return cls.from_rules(model, catalog, version=version, n_reasons=n_reasons)
        if not hasattr(model, "calibrator"):
            raise TypeError(f"cannot serve a {type(model).__name__}: pass a CalibratedModel "
                            "(load_model) or fitted PointsRuleClassifier rules")
        return cls(model.model, model.calibrator, cuts, catalog, rules, version, n_reasons=n_reasons)

    @classmethod
    def from_rules(cls, rules: PointsRuleClassifier, catalog: FeatureCatalog, *,
                   version: Mapping | None = None, n_reasons: int = N_REASONS) -> Scorer:
        """The rules kind: fitted points rules served on the catalog's features."""
        return cls(None, None, None, catalog, rules, version, n_reasons=n_reasons)

    @classmethod
    def from_artifacts(cls, paths: Mapping[str, str | Path], *, n_reasons: int = N_REASONS) -> Scorer:
        """Load from artifact files (keys of `ARTIFACT_FILES`; `KIND_ARTIFACTS` says which
        each kind needs). The kind is the one in version.json, else inferred (`artifact_kind`)."""
        paths = {k: v for k, v in paths.items() if v}
        version = read_json(paths["version"]) if "version" in paths else {}
        kind = artifact_kind(paths, version)
        missing = [k for k in KIND_ARTIFACTS[kind] if k not in paths]
        if missing:
            raise FileNotFoundError(f"{kind} scorer artifacts missing: {missing}")
        catalog = FeatureCatalog.from_records(read_json(paths["catalog"]))
        rules = PointsRuleClassifier.from_dict(read_json(paths["rules"])) if "rules" in paths else None
        if kind == "rules":
            return cls.from_rules(rules, catalog, version=version, n_reasons=n_reasons)
        if kind == "lightgbm":
            model = LightGBMClassifier.from_parts(read_json(paths["estimator"]),
                                                  Path(paths["booster"]).read_text())
        else:
            model = LogisticClassifier.from_dict(read_json(paths["model"]))
        return cls(model, Calibrator.from_dict(read_json(paths["calibrator"])),
                   GradeCuts.from_dict(read_json(paths["grading"])), catalog, rules, version,
                   n_reasons=n_reasons)

    @classmethod
    def from_dir(cls, folder: str | Path, *, n_reasons: int = N_REASONS) -> Scorer:
        """Load from a folder holding the `ARTIFACT_FILES` of one kind."""
        folder = Path(folder)
        paths = {k: folder / f for k, f in ARTIFACT_FILES.items() if (folder / f).exists()}
        return cls.from_artifacts(paths, n_reasons=n_reasons)

    # ---- what the scorer takes and explains in ---------------------------------------------
    @property
    def model_version(self) -> str:
        return str(self.version.get("model_version", "unknown"))

    def input_types(self) -> dict[str, str]:
        """Input column -> "string" (categorical) or "double", in model order."""
        return {n: ("string" if n in self.categorical else "double") for n in self.feature_names}

    def model_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """The features as the model sees them: for LightGBM fixed categories and float64,
        for the logistic model numbers and category strings, for the rules the input columns."""
        if self.kind == "lightgbm":
            return self.model.model_frame(features)
        if self.kind == "logistic":
            return LogisticClassifier._inputs(features, self.explainer.numeric, self.explainer.categorical)
        return features[self.feature_names]

    def contributions_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """Rows of `features` (same index) x items (`self.items`), in the scorer's unit:
        exact log-odds contributions per feature for the models, points per rule item
        (`PointsRuleClassifier.items`) for the rules. A row adds up to its log-odds minus the
        base value (models) or to its rule points (rules)."""
        if self.kind == "rules":
            return self.rules.item_points(features)
        contrib = self.explainer.contributions(self.explainer.model_input(features))
        return pd.DataFrame(contrib, index=features.index, columns=self.items)

    def item_label(self, name: str) -> str:
        """An item of `contributions_frame` in words: the catalog's label of a feature, or
        the text of a rule item (how it earns points)."""
        if self.kind == "rules":
            if name not in self.rule_items:
                raise KeyError(f"'{name}' is not an item of the points rules")
            return self.rule_items[name].label
        return self.catalog[name].label

    # ---- scoring --------------------------------------------------------------------------
    def explain(self, features: pd.DataFrame, *, reasons: bool = True
                ) -> tuple[pd.DataFrame, Reasons | None]:
        """Every score column for each row of `features` (same index): probability, grade,
        fit_grade, engagement_grade, log_odds, fit_score, engagement_score, rule_points,
        rule_grade (NaN / None without rules); and the reasons as arrays (None with
        `reasons=False`). `features` holds raw feature rows (extra columns are ignored).
        For the rules kind, fit_score / engagement_score are the fit / engagement points and
        log_odds the logit of the calibrated probability."""
        if self.kind == "rules":
            return self._explain_rules(features, reasons)
        Xm = self.explainer.model_input(features)
        contrib = self.explainer.contributions(Xm)
        if self.explainer.additive:  # exact: contributions + base value = log-odds
            raw = contrib.sum(axis=1) + self.explainer.expected_value()
        else:
            raw = self.explainer.raw_margin(Xm)
        sums = group_sums(contrib, self.feature_names, self.groups)
        grades = self.cuts.grade(sums["fit"], sums["engagement"])
        columns = {
            "probability": self.calibrator.predict(raw).astype("float64"),
            "grade": grades["grade"].to_numpy().astype(object),
            "fit_grade": np.asarray(grades["fit_grade"].to_numpy(), dtype=object),
            "engagement_grade": np.asarray(grades["engagement_grade"].to_numpy(), dtype=object),
            "log_odds": raw, "fit_score": sums["fit"], "engagement_score": sums["engagement"],
        }
        if self.rules is not None:
            rg = self.rules.grade(features)
            columns["rule_points"] = rg["rule_points"].to_numpy(dtype="float64")
            columns["rule_grade"] = rg["rule_grade"].to_numpy(dtype=object)
        else:
            columns["rule_points"] = np.full(len(features), np.nan)
            columns["rule_grade"] = np.full(len(features), None, dtype=object)
        out = pd.DataFrame(columns, index=features.index)  # one construction: cheap for one lead
        why = (explain_rows(contrib, features, self.catalog, self.feature_names, self.n_reasons)
               if reasons else None)
        return out, why

    def _explain_rules(self, features: pd.DataFrame, reasons: bool) -> tuple[pd.DataFrame, Reasons | None]:
        """`explain` for the rules kind: one pass over the points table."""
        pts, items = self.rules.breakdown(features)
        grades = self.rules.grade_points(pts)
        total = pts["total_points"].to_numpy(dtype="float64")
        proba = self.calibrator.predict(total).astype("float64")  # == rules.predict_proba
        grade = grades["rule_grade"].to_numpy().astype(object)
        out = pd.DataFrame({
            "probability": proba, "grade": grade,
            "fit_grade": grades["fit_grade"].to_numpy().astype(object),
            "engagement_grade": grades["engagement_grade"].to_numpy().astype(object),
            "log_odds": _logit(proba), "fit_score": pts["fit_points"].to_numpy(dtype="float64"),
            "engagement_score": pts["engagement_points"].to_numpy(dtype="float64"),
            "rule_points": total, "rule_grade": grade.copy(),
        }, index=features.index)
        why = (explain_rows(items.to_numpy(dtype="float64"), features, self.catalog, self.items,
                            self.n_reasons, texts=self._rule_texts(features))
               if reasons else None)
        return out, why

    def _rule_texts(self, features: pd.DataFrame):
        """Reason texts of rule items: the catalog's sentence for the lead's value of the
        item's column (as for a model), else the item's own text."""
        known = set(self.catalog.names)

        def texts(name: str, rows: np.ndarray) -> np.ndarray:
            item = self.rule_items[name]
            if item.column in known and item.column in features.columns:
                return describe(self.catalog[item.column], features[item.column].to_numpy()[rows])
            return np.full(len(rows), item.label, dtype=object)

        return texts

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """The score contract (`OUTPUT_COLUMNS`) for each row of `features` (same index);
        `reasons` holds a list of {code, text, contribution} per row (contribution in
        log-odds for the models, in points for the rules)."""
        out, why = self.explain(features)
        out["reasons"] = why.to_lists()
        return out[list(OUTPUT_COLUMNS)]

    def score_arrow(self, features: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
        """Like `score`, for the batch job: the score columns without `reasons`, and the
        reasons as a pyarrow list<struct> array (no per-lead Python objects)."""
        out, why = self.explain(features)
        return out, why.to_arrow()
