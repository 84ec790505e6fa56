"""The marketing report (leadscore.report.build), built from small fixture inputs in memory."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from leadscore.config import ReportConfig, params_from_dict
from leadscore.errors import InputError
from leadscore.report.build import ReportInputs, ReportPaths, build_report, load_report_inputs
from tests.report.inputs import PII_STRINGS, make_inputs, write_inputs
from tests.report.inputs import visible_text as _text

SECTIONS = ("model", "headline", "grades", "charts", "drivers", "examples", "points", "backtest",
            "gate", "changes", "checks")


@pytest.fixture(scope="module")
def html() -> str:
    return build_report(make_inputs(), ReportConfig(), generated_at="2026-01-02 03:04 UTC")


@pytest.fixture(scope="module")
def html_no_new() -> str:
    return build_report(make_inputs(new=False), ReportConfig())


def _cell(html: str, grade: str, figure: str) -> str:
    block = html.split(f'id="{figure}"', 1)[1].split("</figure>", 1)[0]
    return re.sub(r"\s+", " ", block.split(f'data-grade="{grade}"', 1)[1].split("</td>", 1)[0])


def test_all_sections_present(html):
    for s in SECTIONS:
        assert f'<section id="{s}">' in html
        assert f'href="#{s}"' in html  # in the table of contents
    order = [html.index(f'<section id="{s}">') for s in SECTIONS]
    assert order == sorted(order)
    assert html.startswith("<!DOCTYPE html>")
    assert "Generated 2026-01-02 03:04 UTC" in html


def test_build_is_deterministic():
    assert build_report(make_inputs()) == build_report(make_inputs())


def test_model_facts_and_data_window(html):
    text = _text(html)
    assert "Predictive model (LightGBM)" in text
    assert "0123456789abcdef0123456789abcdef01234567" in text
    assert "as-of dates 2024-04-01 to 2024-09-01" in text  # training
    assert "as-of dates 2025-08-01 to 2025-10-01" in text  # out-of-time test
    assert "time not recorded" in text  # no trained_at in the fixture metadata


def test_headline_numbers_come_from_gains_and_metrics(html):
    text = _text(html)
    # gains at 20%: model 0.61, rules 0.43
    assert "The top 20% of leads by the model hold 61% of conversions; by the points rules, 43%" in text
    assert "1.4 times as many" in text
    assert "25.4% of the model's picks convert, against 12.8%" in text
    assert "ranks the converting lead higher 80% of the time" in text
    assert "so the model is better, beyond chance" in text
    assert "0.80" in text and "0.79 to 0.81" in text  # ROC AUC and its interval


def test_headline_share_follows_config():
    text = _text(build_report(make_inputs(), ReportConfig(top_share=0.1)))
    assert "The top 10% of leads by the model hold 43% of conversions; by the points rules, 26%" in text


def test_grade_cells_show_rate_count_interval_and_prediction(html):
    cell = _cell(html, "B2", "grades-model")
    assert "12.3%" in cell  # rate 0.123
    assert "285 leads" in cell  # 100 + 37 * 5
    assert "9.3–15.3%" in cell  # ci
    assert "model said 11.9%" in cell  # mean_predicted 0.1193
    assert "9.0%" in _cell(html, "B2", "grades-rules")


def test_monotonicity_breaks_are_listed_and_marked(html):
    model = html.split('id="grades-model"', 1)[1].split("</figure>", 1)[0]
    assert "C2 converts at 13.10% but the better grade B2 at 12.30%" in _text(model)
    assert "small enough to be chance" in model
    assert 'class="cell flag"' in model
    rules = html.split('id="grades-rules"', 1)[1].split("</figure>", 1)[0]
    assert "The order holds" in rules and "flag" not in rules


def test_charts_are_inline_svg(html):
    for fig in ("chart-gains", "chart-calibration"):
        block = html.split(f'id="{fig}"', 1)[1].split("</figure>", 1)[0]
        assert "<svg" in block and "<polyline" in block
    assert html.count('class="dep"') == 3  # one dependence chart per fixture driver with data


def test_drivers_and_examples(html):
    text = _text(html)
    assert "Pricing-page views" in text and "More pricing-page views raise the score." in text
    assert "L00000101" in text and "L00000103" in text
    assert "Viewed the pricing page 4 times in the last 30 days (+0.61)" in text
    assert "Uses a free e-mail address (-0.22)" in text


def test_points_table_beside_model(html):
    block = _text(html.split('id="points-table"', 1)[1].split("</table>", 1)[0])
    # rule points, then the field's driver rank and share of the total mean |contribution|
    assert ("Seniority (from job title) Profile fit C-level +20, VP +20, Student -10 2 33% "
            "↕ Seniority matters") in block
    assert ("Pricing-page views Engagement +10 per event in the last 90 days (at most 30) 1 45% "
            "↑ More pricing-page views raise the score.") in block
    assert "Unsubscribed Engagement -30 if yes – – not among the model's drivers" in block


def test_points_table_falls_back_to_gain_without_drivers(html_no_new):
    block = _text(html_no_new.split('id="points-table"', 1)[1].split("</table>", 1)[0])
    # gain by field (windowed counts summed): seniority 50, pricing_page_view 30, demo_request 5
    assert "Student -10 1 50% (direction needs the SHAP drivers)" in block
    assert "(at most 30) 2 30% (direction needs the SHAP drivers)" in block
    assert "Demo requests Engagement +30 per event in the last 90 days (at most 30) 4 5%" in block
    assert "by split gain" in html_no_new


def test_data_checks_summary(html):
    text = _text(html)
    assert "64 of 65 data checks passed" in text
    assert "1,234" in text and "1,200" in text and "2.76%" in text
    assert "leads, column country: expect_column_values_to_not_be_null (34 rows)" in text


def test_missing_new_inputs_say_not_available(html_no_new):
    for what, section in (("reports/grades.json", "grades"), ("reports/drivers.json", "drivers"),
                          ("reports/examples.json", "examples")):
        block = html_no_new.split(f'<section id="{section}">', 1)[1].split("</section>", 1)[0]
        assert "Not available" in block and what in block
    # the rules matrix falls back to evaluate.json's rule grades: the same grade_matrix
    # schema, so intervals, predictions and the structured order breaks are read directly
    assert "From the evaluate stage" in html_no_new
    cell = _cell(html_no_new, "A1", "grades-rules")
    assert "5.0%" in cell and "2.0–8.0%" in cell and "model said 4.9%" in cell
    rules = _text(html_no_new.split('id="grades-rules"', 1)[1].split("</figure>", 1)[0])
    assert ("Among engagement 1 leads, D1 converts at 8.00% but the better grade C1 at 5.00%: "
            "a clear break (statistically significant)") in rules
    block = html_no_new.split('id="grades-rules"', 1)[1].split("</figure>", 1)[0]
    flagged = re.findall(r'class="cell flag"[^>]*data-grade="(\w\d)"', block)
    assert sorted(flagged) == ["C1", "D1"]


def test_rule_grades_not_in_the_grade_matrix_schema_are_not_available():
    from dataclasses import replace

    inputs = make_inputs(new=False)
    old = {"conversion": {"A1": 0.75, "B1": 1.0}, "rows": {"A1": 4, "B1": 4},
           "violations": ["B1 (1.000) > A1 (0.750)"]}  # the retired grade_table format
    html = build_report(replace(inputs, evaluate={**inputs.evaluate, "rules_grades": old}))
    block = html.split('id="grades-rules"', 1)[1].split("</figure>", 1)[0]
    assert "Not available" in block and "B1" not in block


def test_empty_inputs_do_not_crash():
    html = build_report(ReportInputs())
    assert html.count('class="na"') >= 7


@pytest.mark.parametrize("which", ["full", "no_new"])
def test_self_contained_no_external_references(which, html, html_no_new):
    doc = html if which == "full" else html_no_new
    assert "http://" not in doc and "https://" not in doc and "://" not in doc
    assert "<script" not in doc.lower()
    assert "@import" not in doc and "url(" not in doc
    for attr in re.findall(r'\b(?:src|href)="([^"]*)"', doc):
        assert attr.startswith("#"), attr


@pytest.mark.parametrize("which", ["full", "no_new"])
def test_no_pii_from_inputs(which, html, html_no_new):
    doc = html if which == "full" else html_no_new
    for s in PII_STRINGS:
        assert s not in doc


def test_text_is_escaped():
    inp = make_inputs()
    bad = dict(inp.drivers)
    bad["drivers"] = [dict(bad["drivers"][0], label="<img src=x onerror=alert(1)>")]
    html = build_report(type(inp)(**{**inp.__dict__, "drivers": bad}))
    assert "<img" not in html and "&lt;img" in html


def test_loader_reads_files_and_tolerates_missing(tmp_path):
    paths = write_inputs(tmp_path, new=False)
    inp = load_report_inputs(paths)
    assert inp.grades is None and inp.drivers is None and inp.dependence == {}
    assert inp.evaluate["rules"]["roc_auc"] == pytest.approx(0.6949)
    assert set(inp.reliability) == {"lightgbm", "logistic", "rules"}
    full = load_report_inputs(write_inputs(tmp_path / "full"))
    assert set(full.dependence) == {"pricing_page_view", "seniority", "free_mail"}
    assert build_report(full) == build_report(make_inputs())


def test_report_paths_have_no_defaults(tmp_path):
    with pytest.raises(TypeError):
        ReportPaths()  # the library holds no project paths: the caller names them
    with pytest.raises(TypeError):
        load_report_inputs()
    paths = ReportPaths.in_project(tmp_path)
    assert paths.grades == tmp_path / "reports/grades.json"
    assert paths.catalog == tmp_path / "data/processed/feature_catalog.json"
    assert paths.backtest == tmp_path / "reports/backtest.json"
    assert paths.gate == tmp_path / "reports/gate.json"
    assert paths.changes == tmp_path / "reports/changes.json"
    assert all(str(v).startswith(str(tmp_path)) for v in paths.__dict__.values())


def test_loader_names_an_unreadable_file(tmp_path):
    paths = write_inputs(tmp_path)
    paths.grades.write_text("{not json")
    with pytest.raises(InputError, match="grades.json"):
        load_report_inputs(paths)


def test_report_config_validates():
    assert params_from_dict({"report": {"top_share": 0.3}}).report.top_share == 0.3
    with pytest.raises(ValueError, match="report.top_share"):
        params_from_dict({"report": {"top_share": 1.5}})


def test_stage_writes_the_file(tmp_path, monkeypatch):
    from pipelines.report import app

    paths = write_inputs(tmp_path)
    (tmp_path / "params.yaml").write_text("report:\n  log_mlflow: false\n")
    out = tmp_path / "reports" / "report.html"
    args = ["--params", str(tmp_path / "params.yaml"), "--out", str(out)]
    for opt, val in (("evaluate", paths.evaluate), ("gains", paths.gains), ("plots", paths.plots),
                     ("model", paths.model), ("rules", paths.rules),
                     ("validation", paths.validation), ("validate-metrics", paths.validate_metrics),
                     ("catalog", paths.catalog), ("features", paths.features),
                     ("grades", paths.grades), ("drivers", paths.drivers),
                     ("examples", paths.examples), ("backtest", paths.backtest),
                     ("gate", paths.gate), ("changes", paths.changes)):
        args += [f"--{opt}", str(val)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = out.read_text()
    assert "12.3%" in _cell(doc, "B2", "grades-model")
    assert 'id="backtest-chart"' in doc and 'id="gate-checks"' in doc and 'id="migration-table"' in doc
    # an unreadable input: the stage names it and exits 1 (InputError), writing nothing new
    paths.grades.write_text("{not json")
    out.unlink()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "grades.json: cannot be read" in result.output and not out.exists()


def test_cli_report_command(tmp_path, monkeypatch):
    from leadscore.cli import app

    write_inputs(tmp_path)  # at the default relative paths
    (tmp_path / "params.yaml").write_text("report:\n  log_mlflow: false\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["report", "--out", "out/r.html", "--no-track"])
    assert result.exit_code == 0, result.output
    assert "12.3%" in _cell((tmp_path / "out/r.html").read_text(), "B2", "grades-model")


def test_cli_report_reads_the_outputs_under_root(tmp_path, monkeypatch):
    from leadscore.cli import app

    write_inputs(tmp_path / "project")
    (tmp_path / "params.yaml").write_text("report:\n  log_mlflow: false\n")
    monkeypatch.chdir(tmp_path)  # nothing at the default relative paths here
    result = CliRunner().invoke(app, ["report", "--root", "project", "--out", "r.html", "--no-track"])
    assert result.exit_code == 0, result.output
    assert "12.3%" in _cell((tmp_path / "r.html").read_text(), "B2", "grades-model")


@pytest.mark.slow  # MLflow's SQLite store set-up takes a few seconds
def test_report_is_logged_to_mlflow(tmp_path, monkeypatch):
    import mlflow

    from leadscore.report.build import log_report, write_report

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    inputs = make_inputs()
    path = write_report(build_report(inputs), tmp_path / "report.html")
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    monkeypatch.chdir(tmp_path)  # artifacts of a new experiment land under the cwd
    run_id = log_report(path, inputs, tracking_uri=uri, experiment="report-test")
    run = mlflow.get_run(run_id)
    assert run.info.run_name == "report" and run.data.tags["stage"] == "report"
    assert run.data.tags["model_git_commit"].startswith("0123456789abcdef")
    assert run.data.metrics["top20_gain_lightgbm"] == pytest.approx(0.61)
    files = [f.path for f in mlflow.artifacts.list_artifacts(run_id=run_id, artifact_path="report")]
    assert files == ["report/report.html"]


def test_flat_export_split_note_replaces_the_months_wording():
    from dataclasses import replace

    from leadscore.report.build import _headline_section

    inputs = make_inputs()
    ev = dict(inputs.evaluate)
    ev["test"] = {**ev.get("test", {}), "rows": 8238, "positives": 2540, "base_rate": 0.308, "periods": 1}
    ev["split"] = {"note": "random stratified split, no out-of-time test", "out_of_time": False}
    section = _headline_section(replace(inputs, evaluate=ev), ReportConfig())
    assert "no out-of-time test" in section["test_words"] and "months" not in section["test_words"]
    assert not any("each month" in t for t in section["sentences"])
    html = build_report(replace(inputs, evaluate=ev), ReportConfig())
    assert "trained on a flat export" in html and "once a month" not in html


def test_flat_export_condition_rules_appear_in_the_points_table():
    from leadscore.report.build import _rule_rows

    rules = {"params": {"fit_rules": {"job": {"student": 15.0, "blue-collar": -5.0}},
                        "engagement_rules": {"poutcome": {"success": 30.0}}}}
    rows = {r["field"]: r for r in _rule_rows(rules)}
    assert rows["job"]["group"] == "fit" and "15" in rows["job"]["points"] and "-5" in rows["job"]["points"]
    assert rows["poutcome"]["group"] == "engagement" and "30" in rows["poutcome"]["points"]


def _size_report(slope: float, *, stale: str = "A higher company size raises the score.") -> str:
    """The fixture report with company size as a driver: a quarter of the leads without a
    value, the rest with an effect of `slope` per log-employee; drivers.json's own sentence is
    `stale` (the chart's caption must come from the chart's rows, not from it)."""
    import dataclasses

    import numpy as np
    import pandas as pd

    inp = make_inputs()
    rng = np.random.default_rng(1)
    size = np.maximum(1.0, np.round(rng.lognormal(4.5, 1.8, 600)))
    dep = pd.DataFrame({"value": np.r_[size, [np.nan] * 200],
                        "contribution": np.r_[slope * (np.log(size) - 4.5), [-0.02] * 200]})
    driver = {"field": "company_size", "label": "Company size", "group": "fit",
              "mean_abs_contribution": 0.5, "direction": "+", "direction_text": stale,
              "top_up": [], "top_down": [], "features": ["company_size"], "value_feature": "company_size"}
    catalog = [*inp.catalog, {"name": "company_size", "group": "fit", "kind": "numeric",
                              "label": "Company size", "unit": "employees"}]
    inp = dataclasses.replace(inp, catalog=catalog, dependence={**inp.dependence, "company_size": dep},
                              drivers={**inp.drivers, "drivers": [driver, *inp.drivers["drivers"]]})
    return build_report(inp, ReportConfig())


def _figure(html: str, fld: str) -> str:
    return html.split(f'id="dependence-{fld}"', 1)[1].split("</figure>", 1)[0]


@pytest.mark.parametrize(("slope", "words", "arrow"), [
    (0.3, "A higher company size raises the score.", "↑"),
    (-0.3, "A higher company size lowers the score.", "↓"),
    (0.0, "Company size: no clear direction", "↕")])
def test_numeric_driver_chart_is_a_line_captioned_from_its_rows(slope, words, arrow):
    html = _size_report(slope)
    fig = _figure(html, "company_size")
    assert 'data-kind="line"' in fig and 'class="mean"' in fig  # not category bars
    caption = _text(fig.split("</svg>", 1)[1])
    assert caption.startswith(f"{arrow} {words}") and "Leads with no value (25%): -0.02 on average." in caption
    row = _text(html.split('id="drivers-table"', 1)[1].split("</tr>", 2)[1])
    assert f"{arrow} {words}" in row  # the table says what the chart shows


def test_categorical_and_flag_driver_charts_are_ordered_bars(html):
    seniority = _figure(html, "seniority")
    assert 'data-kind="bars"' in seniority
    order = re.findall(r'fill="#\w+"><title>(.*?):', seniority)
    assert order == ["C-level", "VP", "Manager", "Student"]  # by effect, highest first
    assert "Seniority matters: C-level, VP, Manager raise the score; Student lowers it." in _text(seniority)
    free_mail = _figure(html, "free_mail")
    assert re.findall(r'fill="#\w+"><title>(.*?):', free_mail) == ["No", "Yes"]
    assert '"Uses a free e-mail address" lowers the score.' in _text(free_mail).replace("&#34;", '"')


# --------------------------------------------------------------------------- sources, shipped kind, Data Docs


def test_not_available_notes_name_the_files_the_project_layout_reads():
    text = _text(build_report(ReportInputs()))
    named = re.findall(r"Not available: (?:the \w+ figures in )?(\S+?)(?: and (\S+))? was not found", text)
    shown = {p for pair in named for p in pair if p}
    layout = {str(p.relative_to(".")) for p in ReportPaths.in_project(".").__dict__.values() if p is not None}
    assert shown and all(p in layout or p.startswith(("plots/", "models/lightgbm/")) for p in shown), shown
    assert {"reports/evaluate.json", "reports/grades.json", "reports/backtest.json"} <= shown
    assert "metrics/evaluate.json" not in text and "metrics/grades.json" not in text


def test_not_available_notes_name_the_path_actually_read(tmp_path):
    from dataclasses import replace

    paths = replace(write_inputs(tmp_path, new=False), grades=tmp_path / "elsewhere/grades.json",
                    backtest=tmp_path / "old/backtest.json")
    paths.backtest.unlink(missing_ok=True)
    html = build_report(load_report_inputs(paths))
    grades = html.split('<section id="grades">', 1)[1].split("</section>", 1)[0]
    assert "Not available: elsewhere/grades.json" in grades and "reports/grades.json" not in grades
    assert "(elsewhere/grades.json is not available)" in grades  # the rules matrix's note
    assert "Not available: old/backtest.json" in html
    # outside the root the path is shown as given
    outside = replace(paths, root=tmp_path / "elsewhere")
    assert f"Not available: {(tmp_path / 'old/backtest.json').as_posix()}" in build_report(load_report_inputs(outside))


def _logistic_ships() -> ReportInputs:
    from dataclasses import replace

    inp = make_inputs()
    g = dict(inp.grades)
    grades = {"logistic": g.pop("lightgbm"), "rules": g["rules"]}  # explain: the shipped kind's matrix
    return replace(inp, grades=grades, evaluate={**inp.evaluate, "champion": {"name": "logistic"}})


def test_grade_matrix_shows_the_shipped_models_key_when_logistic_ships():
    html = build_report(_logistic_ships())
    model = html.split('id="grades-model"', 1)[1].split("</figure>", 1)[0]
    assert "Not available" not in model and "12.3%" in _cell(html, "B2", "grades-model")
    assert "Predictive model (logistic regression)" in _text(model)


@pytest.mark.parametrize(("grades", "champion", "key"), [
    ({"lightgbm": {}, "logistic": {}, "rules": {}}, "logistic", "logistic"),
    ({"lightgbm": {}, "logistic": {}, "rules": {}}, "lightgbm", "lightgbm"),
    ({"lightgbm": {}, "rules": {}}, "rules", "lightgbm"),  # rules ship: explain explains LightGBM
    ({"logistic": {}, "rules": {}}, None, "logistic"),  # no champion entry: the kind grades.json holds
    (None, None, "lightgbm")])
def test_model_grades_key_follows_the_shipped_kind(grades, champion, key):
    from leadscore.report.build import model_grades_key

    evaluate = {"champion": {"name": champion}} if champion else {}
    assert model_grades_key(grades, evaluate) == key


def _data_docs_index(folder) -> None:
    site = folder / "reports/data_docs"
    site.mkdir(parents=True, exist_ok=True)
    (site / "index.html").write_text("<html></html>")


def test_data_docs_are_linked_when_their_index_exists(tmp_path):
    paths = write_inputs(tmp_path)
    _data_docs_index(tmp_path)
    inp = load_report_inputs(paths)
    assert inp.data_docs == "data_docs/index.html"  # beside reports/report.html
    html = build_report(inp)
    checks = html.split('<section id="checks">', 1)[1].split("</section>", 1)[0]
    assert '<a href="data_docs/index.html">' in checks and "reports/data_docs/index.html" in checks
    assert [a for a in re.findall(r'\bhref="([^"]*)"', html) if not a.startswith("#")] == ["data_docs/index.html"]
    # a report written elsewhere links back to the same index
    out = tmp_path / "share/report.html"
    assert load_report_inputs(paths, report_path=out).data_docs == "../reports/data_docs/index.html"
    # shown even when the data checks themselves are missing (validate failed: Data Docs only)
    bare = build_report(ReportInputs(data_docs="data_docs/index.html"))
    assert 'id="data-docs"' in bare and '<a href="data_docs/index.html">' in bare


def test_no_data_docs_no_link(tmp_path):
    paths = write_inputs(tmp_path)
    (tmp_path / "reports/data_docs").mkdir(parents=True)  # a folder without index.html
    inp = load_report_inputs(paths)
    assert inp.data_docs is None
    html = build_report(inp)
    assert 'id="data-docs"' not in html and "data_docs" not in html
    from dataclasses import replace

    assert load_report_inputs(replace(paths, data_docs=None)).data_docs is None
