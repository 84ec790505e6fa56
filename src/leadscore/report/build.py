"""The marketing report: one self-contained HTML file that opens offline.

`build_report` is pure: it takes already-loaded plain data (`ReportInputs`: dicts and small
frames) and returns the HTML text. `load_report_inputs` gathers the files named in a
`ReportPaths`; the caller names every path (the `report` stage passes each one, `leadscore
report` uses `ReportPaths.in_project(root)`, the pipeline's layout). Every input is
optional: a missing file becomes a section that says what is not available and which stage
writes it, never a crash.

The page has no scripts, no external references (no CDN, web fonts or images): CSS is
inline, charts are inline SVG (`leadscore.report.charts`), and the heat map is an HTML
table. Only pseudonymous lead ids are printed, and only whitelisted keys of each input are
read, so a stray personal field in an input never reaches the page.

Sections: the model and its data window; headline results against the points rules (gains
at `top_share`, AUC and top-K in words); the A1-D4 grade matrix for the model and the rules
with the monotonicity result (both `leadscore.explain.grades.grade_matrix` output);
calibration and cumulative-gains charts; the top drivers (plain labels, directions, small
dependence charts); example leads per grade with reasons; the rule points table beside what
the model learned; the integer points table learned from the model beside the hand-written
one (`leadscore.report.points`; left out when `ReportPaths.points` is None); the model lifecycle (`leadscore.report.lifecycle`: the backtest over time,
the promotion gate's decision and checks, what changed between champion and challenger); a
summary of the data checks, with a link to the Great Expectations Data Docs when they were
built. `ReportPaths` without lifecycle paths (flat mode) leaves the lifecycle sections out.

A "not available" note names the file the loader read (`ReportInputs.sources`, from the
`ReportPaths`; in-memory inputs name the pipeline's layout, `ReportPaths.in_project`), so the
note and the path read cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from leadscore.config import ReportConfig
from leadscore.data.gx_project import data_docs_link
from leadscore.errors import InputError
from leadscore.explain.drivers import DEFAULT_MIN_CORR, field_effect
from leadscore.explain.grades import DIGITS, LETTERS
from leadscore.explain.reasons import is_flag, short_label
from leadscore.features.catalog import FeatureSpec
from leadscore.io import atomic_path, read_json
from leadscore.report.capacity import grade_definition_section, handoff_section, segments_section
from leadscore.report.charts import (
    COLORS,
    Series,
    as_float,
    bar,
    category_labels,
    category_table,
    dependence_chart,
    dependence_kind,
    heat_color,
    line_chart,
    nice_max,
    pretty,
)
from leadscore.report.feedback import feedback_section
from leadscore.report.formatting import GRADES, MODEL_NAMES, count, fmt, pct
from leadscore.report.lifecycle import backtest_section, changes_section, gate_section
from leadscore.report.monitoring import monitoring_section
from leadscore.report.points import learned_points_section, read_points_csv

log = logging.getLogger(__name__)

MODEL = "lightgbm"
MODELS: tuple[str, ...] = ("lightgbm", "logistic", "rules")
# the model grade matrix's caption, per kind (grades.json holds the explained kind's matrix)
MODEL_KINDS: dict[str, str] = {"lightgbm": "LightGBM", "logistic": "logistic regression"}
_WINDOW = re.compile(r"^(?P<base>.+)_(?P<days>\d+)d$")
_LABEL_WINDOW = re.compile(r",? *(in the )?last \d+ days$", re.IGNORECASE)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report reads, already loaded. None / empty: not available."""

    evaluate: Mapping | None = None  # reports/evaluate.json
    gains: pd.DataFrame | None = None  # plots/gains.csv
    reliability: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # model -> frame
    metadata: Mapping | None = None  # models/lightgbm/metadata.json
    importance: pd.DataFrame | None = None  # models/lightgbm/importance.csv
    rules: Mapping | None = None  # models/rules.json
    validation: Mapping | None = None  # reports/validation.json
    validate_metrics: Mapping | None = None  # metrics/validate.json
    catalog: Sequence[Mapping] | None = None  # data/processed/feature_catalog.json
    features: Mapping | None = None  # reports/features.json
    grades: Mapping | None = None  # reports/grades.json
    drivers: Mapping | None = None  # reports/drivers.json
    dependence: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # field -> frame
    examples: Mapping | None = None  # reports/examples.json
    backtest: Mapping | None = None  # reports/backtest.json
    gate: Mapping | None = None  # reports/gate.json
    changes: Mapping | None = None  # reports/changes.json
    monitor: Mapping | None = None  # reports/monitor.json (monitor stage)
    monitoring: bool = True  # False: leave out the monitoring section (no monitor file named)
    grading: Mapping | None = None  # models/grading.json (explain stage)
    score: Mapping | None = None  # reports/score.json (score stage: the live grade mix)
    points: Mapping | None = None  # reports/points.json (points stage: the learned table's figures)
    points_table: pd.DataFrame | None = None  # models/points.csv (points stage)
    points_yaml: str | None = None  # models/points.yaml (points stage: the block to paste)
    learned_points: bool = True  # False: leave out the learned points section (no file named)
    lifecycle: bool = True  # False: leave out the backtest, gate and what-changed sections
    # the lifecycle sections shown (backtest, gate, changes): those whose file was named
    sections: tuple[str, ...] = ("backtest", "gate", "changes")
    # input -> the file as the report names it ("not available" notes); default: the
    # pipeline's layout (`ReportPaths.in_project`), the loader: the paths it read
    sources: Mapping[str, str] = field(default_factory=lambda: report_sources(ReportPaths.in_project(".")))
    # the relative link from the report to the GX Data Docs index; None: no Data Docs, no link
    data_docs: str | None = None


@dataclass(frozen=True)
class ReportPaths:
    """Where `load_report_inputs` reads each input. No defaults: the caller names every path
    (the `report` stage from dvc.yaml; `in_project` for the pipeline's layout)."""

    evaluate: Path  # metrics of the evaluate stage
    gains: Path  # cumulative gains CSV
    plots: Path  # folder of reliability_<model>.csv and dependence_<field>.csv
    model: Path  # LightGBM model folder: metadata.json, importance.csv
    rules: Path  # the rule scorer (JSON)
    validation: Path  # validation report
    validate_metrics: Path  # validate stage metrics
    catalog: Path  # feature catalog
    features: Path  # features stage metrics
    grades: Path  # grade matrices (explain stage)
    drivers: Path  # global drivers (explain stage)
    examples: Path  # example leads (explain stage)
    # the model lifecycle; None: no such stage here (flat mode), the sections are left out
    backtest: Path | None = None  # backtest metrics (backtest stage)
    gate: Path | None = None  # promotion gate report (gate stage)
    changes: Path | None = None  # what changed, champion vs challenger (gate stage)
    monitor: Path | None = None  # drift and checks of the scoring runs (monitor stage)
    grading: Path | None = None  # grade cut points (explain stage)
    score: Path | None = None  # the latest scoring run's metrics (score stage)
    # the points table learned from the model (points stage); None: the section is left out
    points: Path | None = None  # its figures (metrics)
    points_csv: Path | None = None  # the table, one row per field and condition
    points_yaml: Path | None = None  # the table as the block to paste
    # the Great Expectations Data Docs folder (validate stage); None: no link to it
    data_docs: Path | None = None
    # where the paths above are shown from ("not available" notes); None: the working folder
    root: Path | None = None

    @classmethod
    def in_project(cls, root: str | Path) -> ReportPaths:
        """The outputs of the DVC pipeline (dvc.yaml's `report` stage deps) under `root`, and
        the validate stage's Data Docs (reports/data_docs/); paths are shown relative to `root`."""
        root = Path(root)
        # reports/<stage>.json: each stage's whole record (metrics/<stage>.json: its headline)
        return cls(evaluate=root / "reports/evaluate.json", gains=root / "plots/gains.csv",
                   plots=root / "plots", model=root / "models/lightgbm",
                   rules=root / "models/rules.json", validation=root / "reports/validation.json",
                   validate_metrics=root / "metrics/validate.json",
                   catalog=root / "data/processed/feature_catalog.json",
                   features=root / "reports/features.json", grades=root / "reports/grades.json",
                   drivers=root / "reports/drivers.json", examples=root / "reports/examples.json",
                   backtest=root / "reports/backtest.json", gate=root / "reports/gate.json",
                   changes=root / "reports/changes.json", monitor=root / "reports/monitor.json",
                   grading=root / "models/grading.json", score=root / "reports/score.json",
                   points=root / "reports/points.json", points_csv=root / "models/points.csv",
                   points_yaml=root / "models/points.yaml", data_docs=root / "reports/data_docs",
                   root=root)


def _shown(path: Path, root: Path | None) -> str:
    """`path` as the report names it: relative to `root` (else the working folder) when it is
    inside it, else as given."""
    base = os.path.abspath(root if root is not None else os.curdir)
    full = os.path.abspath(path)
    if os.path.commonpath([base, full]) == base:
        return Path(os.path.relpath(full, base)).as_posix()
    return Path(path).as_posix()


def report_sources(paths: ReportPaths) -> dict[str, str]:
    """Input name (as in `ReportInputs`) -> the file the loader reads, as the report names it
    in a "not available" note. Inputs without a path (None) are left out."""
    named = {"evaluate": paths.evaluate, "gains": paths.gains,
             "reliability": paths.plots / "reliability_*.csv",
             "metadata": paths.model / "metadata.json", "importance": paths.model / "importance.csv",
             "rules": paths.rules, "validation": paths.validation,
             "validate_metrics": paths.validate_metrics, "catalog": paths.catalog,
             "features": paths.features, "grades": paths.grades, "drivers": paths.drivers,
             "examples": paths.examples, "backtest": paths.backtest, "gate": paths.gate,
             "changes": paths.changes, "monitor": paths.monitor, "grading": paths.grading,
             "score": paths.score, "points": paths.points, "points_csv": paths.points_csv,
             "points_yaml": paths.points_yaml,
             "data_docs": paths.data_docs / "index.html" if paths.data_docs is not None else None}
    return {k: _shown(p, paths.root) for k, p in named.items() if p is not None}


def data_docs_href(data_docs: Path | None, report_path: str | Path | None = None) -> str | None:
    """The link from the report to the GX Data Docs (`data_docs_link`), or None when their
    index does not exist. `report_path`: where the report is written; None: beside the Data
    Docs folder (the pipeline's layout: reports/report.html, reports/data_docs/)."""
    if data_docs is None or not (Path(data_docs) / "index.html").is_file():
        return None
    return data_docs_link(report_path or Path(data_docs).parent / "report.html", data_docs)


def _read(path: Path | None, reader: Callable[[Path], Any]) -> Any:
    if path is None:
        return None
    if not path.exists():
        log.warning("report: %s not found; its section will say it is not available", path)
        return None
    try:
        return reader(path)
    except (ValueError, OSError) as err:  # JSONDecodeError and pandas parser errors
        raise InputError(f"{path}: cannot be read ({err}); re-run the stage that writes it "
                         "(`dvc repro`)") from None


def load_report_inputs(paths: ReportPaths, report_path: str | Path | None = None) -> ReportInputs:
    """Read the report's inputs; a missing file is logged and left as None. `report_path`:
    where the report will be written, for the link to the Data Docs (`data_docs_href`)."""
    reliability = {}
    for m in MODELS:
        df = _read(paths.plots / f"reliability_{m}.csv", pd.read_csv)
        if df is not None:
            reliability[m] = df
    dependence = {}
    if paths.plots.is_dir():
        for f in sorted(paths.plots.glob("dependence_*.csv")):
            dependence[f.stem.removeprefix("dependence_")] = _read(
                f, lambda p: pd.read_csv(p, keep_default_na=False, na_values=[""]))
    return ReportInputs(
        evaluate=_read(paths.evaluate, read_json),
        gains=_read(paths.gains, pd.read_csv),
        reliability=reliability,
        metadata=_read(paths.model / "metadata.json", read_json),
        importance=_read(paths.model / "importance.csv", pd.read_csv),
        rules=_read(paths.rules, read_json),
        validation=_read(paths.validation, read_json),
        validate_metrics=_read(paths.validate_metrics, read_json),
        catalog=_read(paths.catalog, read_json),
        features=_read(paths.features, read_json),
        grades=_read(paths.grades, read_json),
        drivers=_read(paths.drivers, read_json),
        dependence=dependence,
        examples=_read(paths.examples, read_json),
        backtest=_read(paths.backtest, read_json),
        gate=_read(paths.gate, read_json),
        changes=_read(paths.changes, read_json),
        monitor=_read(paths.monitor, read_json),
        monitoring=paths.monitor is not None,
        grading=_read(paths.grading, read_json),
        score=_read(paths.score, read_json),
        points=_read(paths.points, read_json),
        points_table=_read(paths.points_csv, read_points_csv),
        points_yaml=_read(paths.points_yaml, lambda p: p.read_text(encoding="utf-8")),
        learned_points=paths.points is not None,
        lifecycle=any(p is not None for p in (paths.backtest, paths.gate, paths.changes)),
        sections=tuple(n for n in ("backtest", "gate", "changes") if getattr(paths, n) is not None),
        sources=report_sources(ReportPaths.in_project(".")) | report_sources(paths),
        data_docs=data_docs_href(paths.data_docs, report_path),
    )


# --------------------------------------------------------------------------- formatting


def _ci(ci: Any, formatter: Callable[[Any], str] = fmt) -> str:
    if isinstance(ci, Sequence) and not isinstance(ci, str) and len(ci) == 2:
        return f"{formatter(ci[0])} to {formatter(ci[1])}"
    return "n/a"


def _range_pct(ci: Any) -> str:
    """[0.122, 0.154] -> "12.2–15.4%"."""
    if isinstance(ci, Sequence) and not isinstance(ci, str) and len(ci) == 2:
        lo, hi = as_float(ci[0]), as_float(ci[1])
        if lo is not None and hi is not None:
            return f"{100 * lo:.1f}–{100 * hi:.1f}%"
    return "n/a"


def _share(v: float | None) -> str:
    """A share of the total importance: "18%", "<1%"."""
    if v is None:
        return "n/a"
    return "<1%" if 0 < v < 0.005 else pct(v, 0)


def _points(v: float) -> str:
    return f"{v:+g}"


# --------------------------------------------------------------------------- sections


def _gain_at(gains: pd.DataFrame, col: str, share: float) -> float | None:
    if gains is None or col not in gains or "share_of_leads" not in gains:
        return None
    xs = np.concatenate([[0.0], pd.to_numeric(gains["share_of_leads"]).to_numpy(float)])
    ys = np.concatenate([[0.0], pd.to_numeric(gains[col]).to_numpy(float)])
    order = np.argsort(xs)
    return float(np.interp(share, xs[order], ys[order]))


def _date_range(window: Mapping, part: str) -> str | None:
    first, last = window.get(f"{part}_as_of_first"), window.get(f"{part}_as_of_last")
    if not first:
        return None
    return str(first) if first == last else f"{first} to {last}"


def _when(value: Any) -> str | None:
    """An ISO timestamp as "YYYY-MM-DD HH:MM UTC" (anything else as it is)."""
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value)).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(value)


def _ece_words(e: Mapping, test: Mapping) -> str:
    """A model's calibration error; with a noise floor (flat exports), its interval and what a
    perfectly calibrated model would show on this many leads by chance."""
    words = pct(e.get("ece"), 1)
    if e.get("ece_noise_floor") is None:
        return words
    rows = f" on {count(test['rows'])} leads" if test.get("rows") else ""
    verdict = {"miscalibrated": "beyond chance", "within noise": "within chance"}.get(
        str(e.get("ece_verdict")), "not clearly beyond chance")
    return (f"{words} (95% interval {_ci(e.get('ece_ci'), lambda v: pct(v, 1))}; a perfectly "
            f"calibrated model would show about {pct(e['ece_noise_floor'], 1)}{rows} by chance, "
            f"so {verdict})")


def _model_section(inp: ReportInputs) -> dict:
    meta = dict(inp.metadata or {})
    window = meta.get("data_window") or {}
    parts = [(label, _date_range(window, key)) for key, label in
             (("train", "Training"), ("valid", "Tuning (validation)"),
              ("calib", "Calibration and grade cut points"), ("test", "Out-of-time test"))]
    calib = meta.get("calibration") or {}
    trained = meta.get("trained_at") or meta.get("created_at")
    return {
        "available": bool(meta) and meta.get("status") != "fallback_to_rules",
        "fallback": meta.get("status") == "fallback_to_rules"
        or bool((inp.evaluate or {}).get("fallback_to_rules")),
        "kind": MODEL_NAMES.get(str(meta.get("kind", MODEL)), str(meta.get("kind", MODEL))),
        "trained_at": _when(trained),
        "git_commit": str(meta.get("git_commit", "")) or None,
        "params_hash": str(meta.get("params_hash", "")) or None,
        "calibration": calib.get("chosen"),
        "n_features": len(meta.get("features") or []) or None,
        "target_stage": meta.get("target_stage"),
        "horizon_days": meta.get("horizon_days"),
        "window": [(label, rng) for label, rng in parts if rng],
        # flat exports (`leadscore flat`) split rows, not monthly as-of dates
        "split_note": ((inp.evaluate or {}).get("split") or {}).get("note"),
        "out_of_time": ((inp.evaluate or {}).get("split") or {}).get("out_of_time", True) is not False,
        # flat exports with `model.additive: auto`: single-feature or free trees, and the cost
        "shape_note": ((inp.evaluate or {}).get("additive") or {}).get("note"),
    }


def _headline_section(inp: ReportInputs, cfg: ReportConfig) -> dict:
    ev = inp.evaluate or {}
    test = ev.get("test") or {}
    share = cfg.top_share
    gain_model = _gain_at(inp.gains, f"cum_gain_{MODEL}", share)
    gain_rules = _gain_at(inp.gains, "cum_gain_rules", share)
    sentences = []
    if gain_model is not None and gain_rules is not None:
        sentences.append(
            f"The top {pct(share, 0)} of leads by the model hold {pct(gain_model, 0)} of "
            f"conversions; by the points rules, {pct(gain_rules, 0)}. Picking leads at random "
            f"would give {pct(share, 0)}.")
        if gain_rules > 0:
            sentences.append(
                f"For the same sales effort, the model's top {pct(share, 0)} finds "
                f"{gain_model / gain_rules:.1f} times as many converting leads as the rules' "
                f"top {pct(share, 0)}.")
    m, r = ev.get(MODEL) or {}, ev.get("rules") or {}
    k = test.get("k_per_period")
    if m.get("precision_at_k") is not None and r.get("precision_at_k") is not None and k:
        sentences.append(
            f"If sales works the top {count(k)} leads"
            f"{'' if ev.get('split') else ' each month'}, {pct(m['precision_at_k'])} of "
            f"the model's picks convert, against {pct(r['precision_at_k'])} of the rules' picks "
            f"(catching {pct(m.get('recall_at_k'), 0)} versus {pct(r.get('recall_at_k'), 0)} of "
            "all conversions).")
    rows = []
    for key in MODELS:
        e = ev.get(key)
        if not e:
            continue
        rows.append({
            "name": MODEL_NAMES[key], "key": key,
            "roc_auc": fmt(e.get("roc_auc")), "roc_auc_ci": _ci(e.get("roc_auc_ci")),
            "pr_auc": fmt(e.get("pr_auc")), "pr_auc_ci": _ci(e.get("pr_auc_ci")),
            "brier": fmt(e.get("brier"), 4), "ece": pct(e.get("ece"), 2),
            "top_decile": fmt(e.get("lift_top_decile"), 1),
        })
        if e.get("constant_after_calibration"):  # flat exports: the calibrator flattened it
            rows[-1]["name"] += (" (constant after calibration: the same probability for nearly "
                                 f"every test lead; its raw scores rank at {fmt(e.get('roc_auc_uncalibrated'))})")
    auc_words = None
    if m.get("roc_auc") is not None and r.get("roc_auc") is not None:
        auc_words = (
            f"Take one lead that converted and one that did not: the model ranks the converting "
            f"lead higher {pct(m['roc_auc'], 0)} of the time (95% interval "
            f"{_ci(m.get('roc_auc_ci'), lambda v: pct(v, 0))}); the points rules do so "
            f"{pct(r['roc_auc'], 0)} of the time "
            f"({_ci(r.get('roc_auc_ci'), lambda v: pct(v, 0))}).")
        diff_ci = ev.get("auc_diff_ci")
        diff = as_float(ev.get("auc_diff"))
        if diff is not None and isinstance(diff_ci, Sequence) and len(diff_ci) == 2:
            lo, hi = as_float(diff_ci[0]), as_float(diff_ci[1])
            verdict = ("so the model is better, beyond chance" if lo is not None and lo > 0
                       else "so the rules are better, beyond chance" if hi is not None and hi < 0
                       else "so the difference could be chance")
            auc_words += (f" The gap is {diff:+.3f} (95% interval {fmt(lo, 3)} to {fmt(hi, 3)}), "
                          f"{verdict}.")
    target = None
    meta = inp.metadata or {}
    if meta.get("target_stage"):
        target = (f"“Converted” means the lead reached the {meta['target_stage']} stage "
                  f"within {meta.get('horizon_days', '?')} days.")
    test_words = None
    split_note = (ev.get("split") or {}).get("note")  # flat exports: rows, not months
    if test.get("rows") and split_note:
        test_words = (f"Measured on {count(test['rows'])} rows ({count(test.get('positives'))} "
                      f"conversions, base rate {pct(test.get('base_rate'))}); {split_note}.")
    elif test.get("rows"):
        months = test.get("periods", "?")
        test_words = (f"Measured on {count(test['rows'])} lead-months over {months} "
                      f"{'month' if months == 1 else 'months'} the model never saw "
                      f"({count(test.get('positives'))} conversions, base rate "
                      f"{pct(test.get('base_rate'))}).")
    return {"available": bool(sentences or rows), "sentences": sentences, "rows": rows,
            "auc_words": auc_words, "target": target, "test_words": test_words}


def _matrix(block: Mapping | None) -> dict | None:
    """A grade matrix (`leadscore.explain.grades.grade_matrix`: {cells, violations,
    monotonic}, from reports/grades.json or evaluate.json's rules_grades) -> the heat map's
    rows and the order breaks in words. None if `block` has no cells."""
    if not block or not block.get("cells"):
        return None
    cells = {str(c.get("grade")): c for c in block["cells"]}
    rates = [as_float(c.get("rate")) for c in cells.values()]
    vmax = max([r for r in rates if r is not None] or [0.0])
    flagged = set()
    for v in block.get("violations") or []:
        flagged.update({str(v.get("better")), str(v.get("worse"))})
    rows = []
    for letter in LETTERS:
        row = []
        for digit in DIGITS:
            g = f"{letter}{digit}"
            c = cells.get(g) or {}
            rate = as_float(c.get("rate"))
            bg, fg = heat_color(rate, vmax)
            ci = c.get("ci")
            row.append({
                "grade": g, "rate": pct(rate), "count": count(c.get("count")),
                "ci": _range_pct(ci) if ci else None,
                "predicted": pct(c.get("mean_predicted")) if c.get("mean_predicted") is not None else None,
                "bg": bg, "fg": fg, "flag": g in flagged,
                "empty": not c or not as_float(c.get("count")),
            })
        rows.append({"letter": letter, "cells": row})
    violations = []
    for v in block.get("violations") or []:
        where = (f"among engagement {v.get('within')} leads" if v.get("axis") == "letter"
                 else f"among fit {v.get('within')} leads")
        sig = ("a clear break (statistically significant)" if v.get("significant")
               else "small enough to be chance")
        violations.append(
            f"{where}, {v.get('worse')} converts at {pct(v.get('rate_worse'), 2)} but the better "
            f"grade {v.get('better')} at {pct(v.get('rate_better'), 2)}: {sig}.")
    monotonic = block.get("monotonic")
    if monotonic is None:
        monotonic = not violations
    return {"rows": rows, "violations": violations, "monotonic": bool(monotonic),
            "n_significant": sum(bool(v.get("significant")) for v in block.get("violations") or [])}


def model_grades_key(grades: Mapping | None, evaluate: Mapping | None) -> str:
    """The key of the model's matrix in grades.json: the kind that ships (evaluate's
    `champion.name`), else the model kind grades.json holds (the explain stage explains the
    shipped model, LightGBM when the rules ship), else LightGBM."""
    g = grades or {}
    shipped = ((evaluate or {}).get("champion") or {}).get("name")
    if shipped in MODEL_KINDS and shipped in g:
        return str(shipped)
    return next((k for k in MODEL_KINDS if k in g), MODEL)


def _grades_section(inp: ReportInputs) -> dict:
    g = inp.grades or {}
    key = model_grades_key(g, inp.evaluate)
    model = _matrix(g.get(key))
    rules = _matrix(g.get("rules"))
    rules_note = None
    if rules is None:  # the same matrix, from the evaluate stage
        rules = _matrix((inp.evaluate or {}).get("rules_grades"))
        if rules is not None:
            rules_note = f"From the evaluate stage ({inp.sources.get('grades', 'grades.json')} is not available)."
    return {"model": model, "rules": rules, "rules_note": rules_note,
            "model_name": f"Predictive model ({MODEL_KINDS.get(key, key)})"}


def _charts_section(inp: ReportInputs) -> dict:
    gains_svg = None
    g = inp.gains
    if g is not None and "share_of_leads" in g:
        series = []
        for key in ("rules", "logistic", MODEL):
            col = f"cum_gain_{key}"
            if col in g:
                xs = [0.0, *pd.to_numeric(g["share_of_leads"]).tolist()]
                ys = [0.0, *pd.to_numeric(g[col]).tolist()]
                tips = ["start"] + [f"top {pct(x, 0)} of leads hold {pct(y, 0)} of conversions"
                                    for x, y in zip(xs[1:], ys[1:], strict=True)]
                series.append(Series(MODEL_NAMES[key], xs, ys, COLORS[key],
                                     dash="5 3" if key == "logistic" else "", tips=tips))
        if series:
            gains_svg = line_chart(series, title="Cumulative gains", diagonal=True,
                                   x_label="Share of leads, best-scored first",
                                   y_label="Share of all conversions")
    rel_svg = None
    rel = {k: v for k, v in inp.reliability.items()
           if v is not None and {"mean_predicted", "observed"} <= set(v.columns)}
    if rel:
        top = max(max(pd.to_numeric(df["mean_predicted"]).max(), pd.to_numeric(df["observed"]).max())
                  for df in rel.values())
        lim = nice_max(float(top) * 1.02)
        series = []
        for key in ("rules", "logistic", MODEL):
            if key in rel:
                df = rel[key]
                n = df["count"].tolist() if "count" in df else [None] * len(df)
                tips = [f"predicted {pct(p)}, observed {pct(o)}"
                        + (f" ({count(c)} leads)" if c is not None else "")
                        for p, o, c in zip(df["mean_predicted"], df["observed"], n, strict=True)]
                series.append(Series(MODEL_NAMES[key], df["mean_predicted"].tolist(),
                                     df["observed"].tolist(), COLORS[key],
                                     dash="5 3" if key == "logistic" else "", tips=tips))
        rel_svg = line_chart(series, title="Calibration: predicted vs observed conversion",
                             diagonal=True, x_max=lim, y_max=lim,
                             x_label="Predicted conversion probability (group average)",
                             y_label="Observed conversion rate")
    ece = {k: _ece_words((inp.evaluate or {}).get(k, {}), (inp.evaluate or {}).get("test") or {})
           for k in MODELS if (inp.evaluate or {}).get(k, {}).get("ece") is not None}
    legend = [{"name": MODEL_NAMES[k], "color": COLORS[k], "dash": k == "logistic"}
              for k in ("lightgbm", "logistic", "rules")]
    return {"gains": gains_svg, "reliability": rel_svg, "ece": ece, "legend": legend,
            "random_color": COLORS["random"]}


def _catalog_fields(catalog: Sequence[Mapping] | None) -> dict[str, dict]:
    """{field: {label, group, features}} with windowed counts of one activity as one field."""
    out: dict[str, dict] = {}
    for spec in catalog or []:
        name, label = str(spec.get("name")), str(spec.get("label", spec.get("name")))
        m = _WINDOW.match(name)
        if m and _LABEL_WINDOW.search(label):
            name, label = m["base"], _LABEL_WINDOW.sub("", label)
        entry = out.setdefault(name, {"label": label, "group": spec.get("group"), "features": []})
        entry["features"].append(str(spec.get("name")))
    return out


def _specs(catalog: Sequence[Mapping] | None) -> dict[str, FeatureSpec]:
    """{feature: FeatureSpec} from the catalog's records (unreadable records are skipped)."""
    out = {}
    for r in catalog or []:
        try:
            out[str(r["name"])] = FeatureSpec(name=str(r["name"]), group=r.get("group", "fit"),
                                              label=str(r.get("label", r["name"])),
                                              unit=str(r.get("unit") or ""), kind=r.get("kind", "numeric"))
        except (KeyError, TypeError, AttributeError):
            continue
    return out


def _chart_kind(spec: FeatureSpec | None) -> str | None:
    """How to draw a field: "categorical", "flag" or "numeric" from the catalog; None
    (unknown field): from its values."""
    if spec is None:
        return None
    if spec.kind == "categorical":
        return "categorical"
    return "flag" if is_flag(spec) else "numeric"


def dependence_caption(dep: pd.DataFrame, spec: FeatureSpec, *, kind: str | None, field_label: str,
                       windowed: bool, min_corr: float) -> tuple[str, str]:
    """(direction, sentence) for a dependence chart, computed from the rows it draws
    (`leadscore.explain.drivers.field_effect`): numeric fields and flags by the sign of the
    rank correlation of value and contribution ("no clear direction" below `min_corr`), plus
    the average of the leads with no value; categorical fields by the bars drawn."""
    kind = kind or dependence_kind(dep["value"])
    contrib = pd.to_numeric(dep["contribution"], errors="coerce").to_numpy(float)
    if kind == "categorical":
        labels = category_labels(dep["value"], kind)
        shown = labels.isin(category_table(dep["value"], dep["contribution"], kind).index).to_numpy()
        eff = field_effect(labels[shown].to_numpy(), contrib[shown], replace(spec, kind="categorical"),
                           field_label=field_label, windowed=windowed, min_corr=min_corr, min_count=1)
        return eff.direction, eff.text
    values = pd.to_numeric(dep["value"], errors="coerce")
    eff = field_effect(values.to_numpy(float), contrib, replace(spec, kind="numeric"),
                       field_label=field_label, windowed=windowed, min_corr=min_corr)
    text = eff.text
    missing = values.isna().to_numpy() & np.isfinite(contrib)
    if missing.any() and kind == "numeric":
        text += (f" Leads with no value ({_share(missing.mean())}): {contrib[missing].mean():+.2f} on "
                 "average.")
    return eff.direction, text


def _driver_rows(inp: ReportInputs, cfg: ReportConfig) -> list[dict]:
    """The drivers table; for the top `cfg.dependence_charts` drivers with dependence data, a
    chart whose caption (also the row's direction) is computed from the rows it draws."""
    drivers = list((inp.drivers or {}).get("drivers") or [])
    specs = _specs(inp.catalog)
    min_corr = as_float((inp.drivers or {}).get("min_direction_corr")) or DEFAULT_MIN_CORR
    total = sum(as_float(d.get("mean_abs_contribution")) or 0 for d in drivers)
    top = max([as_float(d.get("mean_abs_contribution")) or 0 for d in drivers] or [0])
    arrows = {"+": ("↑", "raises"), "-": ("↓", "lowers"), "mixed": ("↕", "depends")}
    rows = []
    for rank, d in enumerate(drivers, 1):
        v = as_float(d.get("mean_abs_contribution")) or 0.0
        fld = str(d.get("field"))
        label = d.get("label") or fld
        direction, text = str(d.get("direction")), d.get("direction_text") or ""
        dep = inp.dependence.get(fld)
        chart = None
        if dep is not None and rank <= cfg.dependence_charts and {"value", "contribution"} <= set(dep.columns):
            features = list(d.get("features") or [])
            name = str(d.get("value_feature") or (features[0] if features else fld))
            spec = specs.get(name) or specs.get(fld)
            kind = _chart_kind(spec)
            x_label = short_label(spec) if spec is not None else ""
            chart = dependence_chart(dep, f"How {label} moves the score", kind=kind, x_label=x_label)
            if chart is not None and len(dep):
                spec = spec or FeatureSpec(name=name, group=d.get("group") or "fit", label=str(label), unit="",
                                           kind="categorical" if dependence_kind(dep["value"]) == "categorical"
                                           else "numeric")
                direction, text = dependence_caption(dep, spec, kind=kind, field_label=str(label),
                                                     windowed=len(features) > 1, min_corr=min_corr)
        arrow, word = arrows.get(direction, ("·", "n/a"))
        rows.append({
            "rank": rank, "field": fld, "label": label,
            "group": "Profile fit" if d.get("group") == "fit" else "Engagement",
            "group_key": d.get("group"), "share": _share(v / total if total else None),
            "value": v, "bar": bar(v, top, "#1f5fbf" if d.get("group") == "fit" else "#2e8b57",
                                  width=110),
            "arrow": arrow, "word": word, "text": text,
            "top_up": [pretty(x) for x in d.get("top_up") or []],
            "top_down": [pretty(x) for x in d.get("top_down") or []],
            "features": list(d.get("features") or []),
            "dependence": chart,
        })
    return rows


def _drivers_section(inp: ReportInputs, cfg: ReportConfig) -> dict:
    rows = _driver_rows(inp, cfg)
    return {"available": bool(rows), "rows": rows[: cfg.max_drivers],
            "charts": [r for r in rows if r["dependence"] is not None][: cfg.dependence_charts],
            "base_value": as_float((inp.drivers or {}).get("base_value"))}


def _examples_section(inp: ReportInputs, cfg: ReportConfig) -> dict:
    ex = inp.examples or {}
    groups = []
    for g in GRADES:
        leads = []
        for lead in (ex.get(g) or [])[: cfg.examples_per_grade]:
            reasons = [
                {"text": str(r.get("text", "")), "contribution": as_float(r.get("contribution"))}
                for r in lead.get("reasons") or []]
            leads.append({
                "lead_id": str(lead.get("lead_id", "")), "as_of": str(lead.get("as_of", ""))[:10],
                "probability": pct(lead.get("probability")),
                "fit": lead.get("fit_grade"), "engagement": lead.get("engagement_grade"),
                "up": [r for r in reasons if (r["contribution"] or 0) > 0],
                "down": [r for r in reasons if (r["contribution"] or 0) < 0],
            })
        if leads:
            groups.append({"grade": g, "leads": leads})
    return {"available": bool(groups), "groups": groups}


def _rule_rows(rules: Mapping) -> list[dict]:
    """The rule points table as (field, kind, points text) rows."""
    p = rules.get("params") or {}
    window = p.get("window_days")
    cap = p.get("max_points_per_activity")
    rows = []
    for fld, table in (p.get("fit_points") or {}).items():
        items = sorted(table.items(), key=lambda kv: -kv[1])
        rows.append({"field": fld, "group": "fit",
                     "points": ", ".join(f"{pretty(k)} {_points(v)}" for k, v in items)})
    for fld, v in (p.get("fit_negative_points") or {}).items():
        rows.append({"field": fld, "group": "fit", "points": f"{_points(v)} if yes"})
    per = f"per event in the last {window} days" if window else "per event"
    capped = f" (at most {cap:g})" if as_float(cap) is not None else ""
    for fld, v in (p.get("engagement_points") or {}).items():
        rows.append({"field": fld, "group": "engagement", "points": f"{_points(v)} {per}{capped}"})
    for ctype, v in (p.get("content_points") or {}).items():
        rows.append({"field": f"download_{ctype}", "group": "engagement",
                     "points": f"{_points(v)} per download, on top of the download points"})
    for fld, v in (p.get("engagement_negative_points") or {}).items():
        rows.append({"field": fld, "group": "engagement", "points": f"{_points(v)} if yes"})
    # flat exports (`leadscore flat`): {column: {condition: points}}, first match scores
    for group in ("fit", "engagement"):
        for fld, table in (p.get(f"{group}_rules") or {}).items():
            rows.append({"field": fld, "group": group, "points": ", ".join(
                f"{pretty(cond)} {_points(v)}" for cond, v in table.items())})
    return rows


def _learned(inp: ReportInputs, cfg: ReportConfig, fields: dict[str, dict]) -> dict[str, dict]:
    """{field: {rank, share, text}} from the SHAP drivers, else from the model's gain."""
    out: dict[str, dict] = {}
    drivers = _driver_rows(ReportInputs(drivers=inp.drivers, dependence=inp.dependence,
                                        catalog=inp.catalog), cfg)
    if drivers:
        for d in drivers:
            text = d["text"]
            if not text and (d["top_up"] or d["top_down"]):
                text = "; ".join(filter(None, [
                    f"{', '.join(d['top_up'])} raise the score" if d["top_up"] else "",
                    f"{', '.join(d['top_down'])} lower it" if d["top_down"] else ""]))
            out[d["field"]] = {"rank": d["rank"], "share": d["share"], "arrow": d["arrow"],
                               "text": text, "label": d["label"]}
        return out
    imp = inp.importance
    if imp is None or not {"feature", "gain"} <= set(imp.columns):
        return out
    to_field = {f: name for name, e in fields.items() for f in e["features"]}
    gain: dict[str, float] = {}
    for feat, g in zip(imp["feature"], pd.to_numeric(imp["gain"]), strict=True):
        fld = to_field.get(str(feat))
        if fld is None:
            m = _WINDOW.match(str(feat))
            fld = m["base"] if m else str(feat)
        gain[fld] = gain.get(fld, 0.0) + float(g)
    total = sum(gain.values())
    for rank, (fld, g) in enumerate(sorted(gain.items(), key=lambda kv: -kv[1]), 1):
        out[fld] = {"rank": rank, "share": _share(g / total if total else None), "arrow": "",
                    "text": "(direction needs the SHAP drivers)", "label": None}
    return out


def _points_section(inp: ReportInputs, cfg: ReportConfig) -> dict:
    fields = _catalog_fields(inp.catalog)
    learned = _learned(inp, cfg, fields)
    source = ("SHAP drivers" if (inp.drivers or {}).get("drivers")
              else "split gain" if learned else None)
    rows = []
    seen = set()
    for r in _rule_rows(inp.rules or {}):
        fld = r["field"]
        lab = (fields.get(fld) or {}).get("label") or (learned.get(fld) or {}).get("label") \
            or pretty(fld).capitalize()
        lr = learned.get(fld)
        rows.append({"label": lab, "group": "Profile fit" if r["group"] == "fit" else "Engagement",
                     "points": r["points"], "rank": lr["rank"] if lr else None,
                     "share": lr["share"] if lr else None, "arrow": lr["arrow"] if lr else "",
                     "text": lr["text"] if lr else "not among the model's drivers"})
        seen.add(fld)
    model_only = []
    for fld, lr in sorted(learned.items(), key=lambda kv: kv[1]["rank"]):
        if fld in seen:
            continue
        e = fields.get(fld) or {}
        model_only.append({"label": lr.get("label") or e.get("label") or pretty(fld),
                           "group": "Profile fit" if e.get("group") == "fit" else "Engagement",
                           "rank": lr["rank"], "share": lr["share"], "arrow": lr["arrow"],
                           "text": lr["text"]})
    p = (inp.rules or {}).get("params") or {}
    bands = None
    if p.get("fit_bands") and p.get("engagement_bands"):
        fb, eb = p["fit_bands"], p["engagement_bands"]
        bands = (
            "Rule grades: fit " + ", ".join(f"{k} at {v:g}+ points" for k, v in fb.items())
            + ", else D; engagement " + ", ".join(f"{k} at {v:g}+ points" for k, v in eb.items())
            + ", else 4.")
    return {"available": bool(rows), "rows": rows, "model_only": model_only[:8],
            "source": source, "bands": bands, "mql": p.get("mql_threshold")}


def _duration(seconds: float) -> str:
    """A lag in the unit a marketer reads: seconds, minutes, hours or days."""
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.0f} seconds"


def speed_to_lead_section(score: Mapping | None) -> dict:
    """Speed to lead of the latest scoring run (reports/score.json `speed_to_lead`: the lag
    from a lead's creation or last event to its score): one sentence's figures."""
    s = (score or {}).get("speed_to_lead") or {}
    try:
        leads, med, p95 = int(s["leads"]), float(s["median_s"]), float(s["p95_s"])
    except (KeyError, TypeError, ValueError):
        return {"available": False}
    return {"available": leads > 0, "leads": count(leads), "median": _duration(med), "p95": _duration(p95),
            "mode": "an incremental" if (score or {}).get("mode") == "incremental" else "a full"}


def _checks_section(inp: ReportInputs) -> dict:
    vm = inp.validate_metrics or {}
    val = inp.validation or {}
    tables = []
    for name in ("leads", "events", "outcomes"):
        m = vm.get(name) or (val.get("tables") or {}).get(name)
        if not m:
            continue
        tables.append({"name": name, "rows_in": count(m.get("rows_in")),
                       "clean": count(m.get("rows_out")),
                       "quarantined": count(m.get("rows_quarantined")),
                       "share": pct(m.get("quarantined_share"), 2)})
    exp = vm.get("expectations") or {}
    failed = []
    for tname, t in (val.get("tables") or {}).items():
        for e in t.get("expectations") or []:
            if e.get("success") is False:
                col = f", column {e['column']}" if e.get("column") else ""
                failed.append(f"{tname}{col}: {e.get('expectation')} "
                              f"({count(e.get('unexpected_count'))} rows)")
    feats = inp.features or {}
    training = None
    if feats.get("rows"):
        training = (f"Training table: {count(feats['rows'])} lead-months from "
                    f"{count(feats.get('leads'))} leads, as-of dates {feats.get('as_of_first')} "
                    f"to {feats.get('as_of_last')}, {count(feats.get('features'))} features, "
                    f"{pct(feats.get('base_rate'))} converted.")
    return {"available": bool(tables or exp), "tables": tables,
            "passed": exp.get("passed"), "evaluated": exp.get("evaluated"),
            "failed": failed[:20], "budget": pct(val.get("quarantine_budget"), 1)
            if val.get("quarantine_budget") is not None else None,
            "checked_at": str(val.get("reference_time", ""))[:19].replace("T", " ") or None,
            "training": training}


# --------------------------------------------------------------------------- build


def _env() -> Environment:
    env = Environment(loader=PackageLoader("leadscore.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default=True),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["pct"] = pct
    env.filters["signed"] = lambda v: "n/a" if as_float(v) is None else f"{float(v):+.2f}"
    return env


def build_report(inputs: ReportInputs, cfg: ReportConfig | None = None, *,
                 generated_at: str | dt.datetime | None = None,
                 title: str = "Lead scoring report") -> str:
    """The report as one self-contained HTML string (pure: no I/O, no clock)."""
    cfg = cfg or ReportConfig()
    if isinstance(generated_at, dt.datetime):
        generated_at = generated_at.strftime("%Y-%m-%d %H:%M UTC")
    context = {
        "title": title, "generated_at": generated_at, "cfg": cfg,
        "model": _model_section(inputs),
        "headline": _headline_section(inputs, cfg),
        "grades": _grades_section(inputs),
        "charts": _charts_section(inputs),
        "drivers": _drivers_section(inputs, cfg),
        "examples": _examples_section(inputs, cfg),
        "points": _points_section(inputs, cfg),
        "learned_points": learned_points_section(
            inputs.points, inputs.points_table, inputs.points_yaml, rules=inputs.rules,
            hand_written=_rule_rows(inputs.rules or {}),
            labels={k: e["label"] for k, e in _catalog_fields(inputs.catalog).items()})
        | {"shown": inputs.learned_points},
        "checks": _checks_section(inputs),
        "lifecycle": inputs.lifecycle,
        "sections": inputs.sections if inputs.lifecycle else (),
        "backtest": backtest_section(inputs.backtest),
        "gate": gate_section(inputs.gate),
        "changes": changes_section(inputs.changes),
        "monitoring": monitoring_section(inputs.monitor) | {"shown": inputs.monitoring},
        "grade_definition": grade_definition_section(inputs.grading, inputs.score),
        "speed_to_lead": speed_to_lead_section(inputs.score),
        "handoff": handoff_section(inputs.evaluate),
        "segments": segments_section(inputs.evaluate),
        "feedback": feedback_section(inputs.evaluate),
        "src": dict(report_sources(ReportPaths.in_project("."))) | dict(inputs.sources),
        "data_docs": inputs.data_docs,
    }
    return _env().get_template("report.html.j2").render(**context)


def write_report(html: str, path: str | Path) -> Path:
    """Publish the HTML atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return path


def log_report(path: str | Path, inputs: ReportInputs, *, tracking_uri: str,
               experiment: str) -> str:
    """Log the report to a new MLflow run named `report` (tags: the model's git commit,
    params hash and data window). Returns the run id."""
    from leadscore.tracking import git_commit, log_run, setup_mlflow

    meta = dict(inputs.metadata or {})
    ev = inputs.evaluate or {}
    setup_mlflow(tracking_uri, experiment)
    gains = {f"top20_gain_{k}": _gain_at(inputs.gains, f"cum_gain_{k}", 0.2)
             for k in ("rules", MODEL)}
    return log_run(
        run_name="report",
        params={"report_model": meta.get("kind", MODEL)},
        metrics={k: v for k, v in gains.items() if v is not None}
        | {f"roc_auc_{k}": ev[k]["roc_auc"] for k in MODELS if (ev.get(k) or {}).get("roc_auc")},
        tags={"stage": "report", "git_commit": git_commit(),
              "model_git_commit": str(meta.get("git_commit", "unknown")),
              "params_hash": str(meta.get("params_hash", "unknown")),
              **{k: str(v) for k, v in (meta.get("data_window") or {}).items()}},
        artifacts={"report": Path(path)},
    )
