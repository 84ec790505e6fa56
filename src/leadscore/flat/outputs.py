"""Where a flat-mode run writes, and the writing itself: the one I/O edge of flat mode.

Under the output folder DIR::

    metrics/evaluate.json   same keys as the main pipeline (rules / logistic / lightgbm:
                            roc_auc, pr_auc, log_loss, brier, ece, ... ; auc_diff_ci; test)
                            plus `split` (out_of_time true/false and what the test slice is)
    metrics/screen.json     the leakage screen (a refusal publishes nothing: its message lists the columns)
                            and `pii`: columns dropped as personal data (name and kind, no values)
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

Every file is written atomically (`leadscore.io`), and the run as a whole too
(`staged_output`): a run writes into a staging folder next to DIR (``.DIR.<random>.tmp``)
and swaps it in with two renames at the end, so DIR holds the old run or the new one, never a
mix; files of an earlier run that this one does not write disappear; a failed run leaves DIR
as it was and removes the staging folder. `check_out_folder` refuses (ConfigError) a DIR that
holds a `dvc.yaml`, is the project root or a folder above it, is a file, or holds anything a
flat run does not write (the swap would delete it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leadscore.config import ReportConfig
from leadscore.errors import ConfigError
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

# What a flat run writes at the top of DIR: an existing DIR holding anything else is refused.
OUTPUT_ENTRIES: frozenset[str] = frozenset({"metrics", "models", "plots", "reports",
                                            "scores.parquet", "report.html"})
PROJECT_MARKERS: tuple[str, ...] = ("dvc.yaml", "pyproject.toml", ".git")


def project_roots(start: Path | None = None) -> list[Path]:
    """The project folders an output folder must never replace: the nearest folder at or above
    `start` (default: the working folder) holding dvc.yaml, pyproject.toml or .git, and the
    leadscore checkout this code runs from (when it holds a dvc.yaml)."""
    roots = []
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / m).exists() for m in PROJECT_MARKERS):
            roots.append(folder)
            break
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "dvc.yaml").exists():
        roots.append(checkout)
    return roots


def check_out_folder(out: str | Path) -> Path:
    """`out`, resolved, if a flat run may replace it; else a `ConfigError` saying why."""
    path = Path(out).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a folder for the run's outputs")
    if (path / "dvc.yaml").exists():
        raise ConfigError(f"--out {out}: holds a dvc.yaml (a DVC project); a flat run replaces its "
                          f"--out folder whole, so give a folder of its own, e.g. out/my_export")
    for root in project_roots():
        if path == root or path in root.parents:
            raise ConfigError(f"--out {out}: is the project folder {root} or a folder above it; a flat "
                              f"run replaces its --out folder whole, so give a folder of its own, "
                              f"e.g. out/my_export")
    if path.is_dir():
        foreign = sorted(e.name for e in path.iterdir() if e.name not in OUTPUT_ENTRIES)
        if foreign:
            shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
            raise ConfigError(f"--out {out}: holds {len(foreign)} entr(ies) a flat run does not write "
                              f"({shown}); a flat run replaces its --out folder whole, so give an "
                              f"empty or new folder, or one an earlier flat run wrote")
    return path


@contextlib.contextmanager
def staged_output(out: str | Path) -> Iterator[Path]:
    """A staging folder next to `out` (checked by `check_out_folder`) to write the run into;
    swapped in over `out` when the block ends without error, removed otherwise."""
    target = check_out_folder(out)
    with atomic_path(target) as staging:
        staging.mkdir(parents=True)
        yield staging


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

    def write_screen(self, screen: LeakageReport, pii: list[dict] | None = None) -> None:
        """The leakage screen's summary plus `pii`: the columns dropped as personal data
        (column and kind, never a value; leadscore.flat.pii)."""
        write_json({**screen.summary(), "pii": list(pii or [])}, self.metrics / "screen.json")

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
