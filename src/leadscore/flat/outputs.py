"""Where a flat-mode run writes, and the writing itself: the one I/O edge of flat mode.

Under the output folder DIR::

    metrics/evaluate.json   same keys as the main pipeline (rules / logistic / lightgbm:
                            roc_auc, pr_auc, log_loss, brier, ece, ... ; auc_diff_ci; test)
                            plus `split` (out_of_time true/false and what the test slice is)
    metrics/screen.json     the leakage screen (also written when it refuses)
    metrics/train.json      cleaning log, slices, tuning, calibration
    metrics/grades.json     A1-D4 grade matrices on the test slice (model and rules)
    metrics/cv.json         with --cv K: random stratified K-fold ROC-AUC
    metrics/backtest.json   with --backtest: the rolling-origin backtest (leadscore.flat.backtest;
                            docs/lifecycle.md's format plus `periods`), a report section
    models/                 lightgbm/, logistic/, rules.json, grading.json, feature_catalog.json;
                            without `rules:` in the mapping, rules.json is the points table learned
                            from LightGBM (kind "learned_points"), also as points.csv / points.yaml
                            (leadscore.modeling.points), and evaluate.json's `rules_source` is
                            "learned" (else "mapping")
    plots/                  reliability_<model>.csv, gains.csv, dependence*.csv
    reports/                drivers.json, examples.json
    scores.parquet          every row of the file: the score contract + `slice`
    report.html             the marketing report

Every file is written atomically (`leadscore.io`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leadscore.config import ReportConfig
from leadscore.explain.drivers import write_dependence
from leadscore.explain.explanation import Explanation
from leadscore.explain.grades import save_grading
from leadscore.features.catalog import FeatureCatalog, save_catalog
from leadscore.io import atomic_path, write_csv, write_json, write_parquet
from leadscore.modeling.baseline import save_rules
from leadscore.modeling.estimators import save_model
from leadscore.modeling.evaluate import Evaluation, gains_frame
from leadscore.modeling.leakage import LeakageReport
from leadscore.modeling.points import LearnedPointsClassifier, points_csv, points_yaml
from leadscore.serve.export import scorer_sources


def write_text(text: str, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class FlatOutputs:
    """The layout of one flat-mode output folder."""

    root: Path

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def scores(self) -> Path:
        return self.root / "scores.parquet"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def model_files(self, kind: str = "lightgbm") -> dict[str, Path]:
        """The files that make up the `kind` scorer (hashed into its model version)."""
        return scorer_sources(None if kind == "rules" else self.models / kind, kind=kind,
                              grading=None if kind == "rules" else self.models / "grading.json",
                              catalog=self.models / "feature_catalog.json",
                              rules=self.models / "rules.json")

    def write_screen(self, screen: LeakageReport) -> None:
        write_json(screen.summary(), self.metrics / "screen.json")

    def write_models(self, models, explanation: Explanation, catalog: FeatureCatalog) -> None:
        """The models, the rules, the grade cut points and the catalog (`FlatModels`)."""
        save_model(models.lightgbm, self.models / "lightgbm")
        save_model(models.logistic, self.models / "logistic")
        write_csv(models.lightgbm.model.feature_importance(), self.models / "lightgbm" / "importance.csv",
                  float_format=None)
        save_rules(models.rules, self.models / "rules.json")
        if isinstance(models.rules, LearnedPointsClassifier):
            write_text(points_csv(models.rules), self.models / "points.csv")
            write_text(points_yaml(models.rules), self.models / "points.yaml")
        save_grading(explanation.cuts, self.models / "grading.json")
        save_catalog(catalog, self.models / "feature_catalog.json")

    def write_results(self, *, scores: pd.DataFrame, metrics: dict, evaluation: Evaluation,
                      explanation: Explanation, train_summary: dict) -> None:
        """Scores, metrics, grade matrices, drivers, examples and plot data."""
        write_parquet(scores, self.scores)
        write_json(explanation.grades, self.metrics / "grades.json")
        write_json(explanation.slice.summary("test"), self.reports / "drivers.json")
        write_dependence(explanation.slice.dependence, self.plots)
        write_json(explanation.examples, self.reports / "examples.json")
        for name, curve in evaluation.reliability.items():
            write_csv(curve, self.plots / f"reliability_{name}.csv")
        write_csv(gains_frame(evaluation.gains), self.plots / "gains.csv")
        write_json(metrics, self.metrics / "evaluate.json")
        write_json(train_summary, self.metrics / "train.json")

    def write_cv(self, cv: dict) -> None:
        write_json(cv, self.metrics / "cv.json")

    def write_backtest(self, backtest: dict) -> None:
        write_json(backtest, self.metrics / "backtest.json")

    def write_report(self, out_of_time: bool, *, backtest: bool = False,
                     rules_source: str = "mapping") -> None:
        """report.html from the files above (a missing one becomes a "not available" note).
        `backtest`: add the backtest section from metrics/backtest.json (a run with
        --backtest); otherwise the report has no lifecycle sections. `rules_source`
        "learned": the title says the baseline is the learned points table."""
        from leadscore.report.build import (
            ReportPaths,
            build_report,
            load_report_inputs,
            write_report,
        )

        paths = ReportPaths(evaluate=self.metrics / "evaluate.json", gains=self.plots / "gains.csv",
                            plots=self.plots, model=self.models / "lightgbm",
                            rules=self.models / "rules.json",
                            validation=self.reports / "validation.json",
                            validate_metrics=self.metrics / "validate.json",
                            catalog=self.models / "feature_catalog.json",
                            features=self.metrics / "features.json",
                            grades=self.metrics / "grades.json",
                            drivers=self.reports / "drivers.json",
                            examples=self.reports / "examples.json",
                            backtest=self.metrics / "backtest.json" if backtest else None)
        title = "Lead scoring report: " + ("out-of-time test" if out_of_time
                                           else "random split, NO out-of-time test")
        if rules_source == "learned":
            title += " (baseline: learned points table)"
        html = build_report(load_report_inputs(paths), ReportConfig(), title=title,
                            generated_at=dt.datetime.now(dt.UTC))
        write_report(html, self.report)
