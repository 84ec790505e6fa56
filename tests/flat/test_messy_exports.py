"""Flat mode on messy real-world exports (issue 12): dates in either order, any mix of column
types, random splits described as shares, staged output."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import pytest

from leadscore.errors import ConfigError, InputError
from leadscore.flat.mapping import load_mapping
from leadscore.flat.run import run_flat
from leadscore.flat.table import load_flat, parse_dates
from leadscore.io import read_json
from leadscore.modeling.estimators import load_model
from tests.flat.exports import base_frame, dates, write_export


def _dates(values, date_format=None):
    s = pd.Series(values, dtype="string")
    return parse_dates(s, "Created", np.arange(len(s)), date_format)


def _iso(parsed) -> list:
    return [None if pd.isna(d) else str(d.date()) for d in parsed.dates]


# ---- item 1: dates ----------------------------------------------------------------------
def test_day_first_dates_are_detected_from_a_first_field_above_12():
    parsed = _dates(["20-10-2017", "01-02-2018", "05-06-2017"])
    assert parsed.order == "day_first"
    assert _iso(parsed) == ["2017-10-20", "2018-02-01", "2017-06-05"]  # never read month first


def test_month_first_dates_are_detected_from_a_second_field_above_12():
    parsed = _dates(["10/20/2017", "01/02/2018 14:30"])
    assert parsed.order == "month_first"
    assert _iso(parsed) == ["2017-10-20", "2018-01-02"]


def test_iso_dates_need_no_detection():
    parsed = _dates(["2017-10-20", "2018-02-01T10:33:00", None, "2018-01-02"])
    assert parsed.order == "iso"
    assert _iso(parsed) == ["2017-10-20", "2018-02-01", None, "2018-01-02"]


def test_ambiguous_dates_are_a_config_error_asking_for_date_format():
    with pytest.raises(ConfigError, match=r"'Created' has 2 numeric date\(s\).*date_format: day_first"):
        _dates(["01/02/2018", "03/04/2018"])


@pytest.mark.parametrize(("date_format", "expected"), [
    ("day_first", ["2018-02-01", "2018-04-03"]),
    ("month_first", ["2018-01-02", "2018-03-04"]),
    ("%d/%m/%Y", ["2018-02-01", "2018-04-03"]),
])
def test_date_format_resolves_ambiguous_dates(date_format, expected):
    assert _iso(_dates(["01/02/2018", "03/04/2018"], date_format)) == expected


def test_a_column_mixing_both_orders_is_an_input_error_naming_rows():
    with pytest.raises(InputError, match=r"mixes day-first dates \(1 row\(s\), e.g. row\(s\) 2\)") as err:
        _dates(["01-02-2018", "20-10-2017", "10-20-2017"])
    assert "20-10" not in str(err.value) and "10-20" not in str(err.value)  # no values


def _dated_export(tmp_path, created, **mapping):
    df = base_frame(len(created)).assign(Created=created)
    return load_mapping(write_export(tmp_path, df, created_at="Created", **mapping))


def test_day_first_export_splits_on_the_right_dates_and_logs_the_range(tmp_path, caplog):
    truth = dates(400)  # June 2017 .. May 2018, written day first
    with caplog.at_level(logging.INFO, logger="leadscore.flat.table"):
        table = load_flat(_dated_export(tmp_path, truth.dt.strftime("%d-%m-%Y")))
    np.testing.assert_array_equal(table.frame["as_of"].to_numpy(), truth.to_numpy())
    first, last = truth.min().date(), truth.max().date()
    assert f"read day first: {first} to {last} (400 row(s) with a date)" in caplog.text


def test_unreadable_dates_under_the_budget_are_dropped_with_a_warning(tmp_path, caplog):
    created = dates(400).dt.strftime("%Y-%m-%d").to_numpy(object)
    created[[5, 17]] = ["not a date", "2018-13-45"]
    with caplog.at_level(logging.WARNING):
        table = load_flat(_dated_export(tmp_path, created, max_bad_dates=0.01))
    assert len(table.frame) == 398 and table.log["rows_no_date"] == 2
    assert "2 of 400 value(s) in column 'Created' of export.csv are not dates (row(s) 6, 18" in caplog.text
    assert "not a date" not in caplog.text and "2018-13-45" not in caplog.text


def test_unreadable_dates_over_the_budget_are_an_input_error_naming_file_column_rows(tmp_path):
    created = dates(400).dt.strftime("%d/%m/%Y").to_numpy(object)
    created[[3, 4, 9, 30, 31]] = "31/31/2017"
    with pytest.raises(InputError) as err:
        load_flat(_dated_export(tmp_path, created, max_bad_dates=0.01))
    text = str(err.value)
    assert "5 of 400 value(s) in column 'Created' of export.csv" in text
    assert "row(s) 4, 5, 10, 31, 32" in text and "max_bad_dates" in text
    assert "31/31" not in text


def test_date_format_needs_created_at(tmp_path):
    from leadscore.flat.mapping import MappingError

    with pytest.raises(MappingError, match="date_format needs created_at"):
        load_mapping(write_export(tmp_path, base_frame(50), date_format="day_first"))


# ---- item 2: any mix of column types ----------------------------------------------------
def _run(tmp_path, df, **mapping):
    m = load_mapping(write_export(tmp_path / "in", df, **mapping))
    result = run_flat(m, tmp_path / "out")
    for kind in ("logistic", "lightgbm"):  # the saved models load and score
        model = load_model(tmp_path / "out" / "models" / kind)
        assert np.isfinite(model.predict_proba(load_flat(m).frame)[:, 1]).all()
    scores = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    assert len(scores) == len(df) and scores["probability"].between(0, 1).all()
    return result


@pytest.mark.slow
def test_categorical_only_export_trains(tmp_path):
    result = _run(tmp_path, base_frame()[["Lead ID", "Channel", "Converted"]], id="Lead ID")
    assert read_json(tmp_path / "out" / "models" / "logistic" / "model.json")["numeric"] == []
    assert 0 <= result.metrics["logistic"]["roc_auc"] <= 1


@pytest.mark.slow
def test_numeric_only_export_trains(tmp_path):
    _run(tmp_path, base_frame()[["Lead ID", "Page Visits", "Company Size", "Converted"]], id="Lead ID")
    assert read_json(tmp_path / "out" / "models" / "logistic" / "model.json")["categorical"] == []


@pytest.mark.slow
@pytest.mark.parametrize("column", ["Channel", "Page Visits"])
def test_single_column_export_trains(tmp_path, column):
    _run(tmp_path, base_frame()[[column, "Converted"]])
    assert len(read_json(tmp_path / "out" / "models" / "feature_catalog.json")) == 1


@pytest.mark.slow
def test_all_missing_columns_are_dropped_and_the_rest_trains(tmp_path):
    df = base_frame().assign(Empty="", Placeholders="Select", Nothing=np.nan)
    _run(tmp_path, df, id="Lead ID")
    cleaning = read_json(tmp_path / "out" / "metrics" / "train.json")["cleaning"]
    assert cleaning["dropped_id_like_or_empty"] == ["Empty", "Placeholders", "Nothing"]


def test_an_export_whose_every_feature_is_empty_is_a_clear_error(tmp_path):
    from leadscore.flat.mapping import MappingError

    df = base_frame()[["Converted"]].assign(Empty="", Nothing="n/a")
    with pytest.raises(MappingError, match="no feature columns left"):
        load_flat(load_mapping(write_export(tmp_path, df)))


# ---- item 6: a random split is shares of rows ---------------------------------------------
@pytest.mark.slow
def test_random_split_is_described_as_shares_never_row_ranges(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        result = _run(tmp_path, base_frame(), id="Lead ID")
    split = result.metrics["split"]
    assert split["out_of_time"] is False
    assert "training 60%, validation 10%, calibration 10%, test 20%" in split["note"]
    for w in split["slices"].values():
        assert "as_of_first" not in w and 0 < w["share"] < 1
    assert read_json(tmp_path / "out" / "models" / "lightgbm" / "metadata.json")["data_window"] == {}
    html = (tmp_path / "out" / "report.html").read_text()
    for wrong in ("Training</dt>", "Out-of-time test</dt>", "row 2 to", ">row "):
        assert wrong not in html
    assert "shares of rows" in html
    assert "out-of-time months" not in html and "out-of-time test months" not in html
    assert "test rows (a random share of the file" in html
    assert "row 1.." not in caplog.text and "a random 60% of rows" in caplog.text


# ---- item 10: staged output -----------------------------------------------------------------
@pytest.mark.slow
def test_a_rerun_replaces_the_folder_and_stale_files_disappear(tmp_path):
    df = base_frame()[["Lead ID", "Channel", "Page Visits", "Converted"]]
    m = load_mapping(write_export(tmp_path / "in", df, id="Lead ID"))
    out = tmp_path / "out"
    run_flat(m, out, cv_folds=2)
    assert (out / "metrics" / "cv.json").exists()
    run_flat(m, out)  # no --cv this time: the old cv.json must not survive
    assert not (out / "metrics" / "cv.json").exists()
    assert (out / "scores.parquet").exists()
    assert [p.name for p in tmp_path.iterdir()] == sorted(["in", "out"]) or \
        sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # no staging left behind


def test_a_failed_run_leaves_the_old_folder_untouched(tmp_path, monkeypatch):
    from leadscore.flat import run as flat_run

    out = tmp_path / "out"
    (out / "metrics").mkdir(parents=True)
    (out / "metrics" / "evaluate.json").write_text('{"old": true}')
    m = load_mapping(write_export(tmp_path / "in", base_frame(), id="Lead ID"))

    def boom(*_a, **_k):
        raise RuntimeError("failed midway")

    monkeypatch.setattr(flat_run, "train_flat", boom)
    with pytest.raises(RuntimeError):
        run_flat(m, out)
    assert [p.name for p in out.rglob("*")] == ["metrics", "evaluate.json"]
    assert (out / "metrics" / "evaluate.json").read_text() == '{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # staging removed


@pytest.mark.parametrize("where", ["dvc_yaml", "project_root", "parent_of_root", "foreign_files", "a_file"])
def test_an_out_folder_a_run_must_not_replace_is_refused(tmp_path, monkeypatch, where):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    monkeypatch.chdir(project)
    out = {"project_root": project, "parent_of_root": tmp_path}.get(where, tmp_path / "o")
    if where == "dvc_yaml":
        out.mkdir()
        (out / "dvc.yaml").write_text("stages: {}\n")
    elif where == "foreign_files":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        (out / "metrics").mkdir()
    elif where == "a_file":
        out.write_text("")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    m = load_mapping(write_export(tmp_path / "in", base_frame(), id="Lead ID"))
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match=r"--out .*(dvc.yaml|project folder|does not write|is a file)"):
        run_flat(m, out)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert os.getcwd() == str(project)
