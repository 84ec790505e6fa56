"""Issue 12's "done when": every export of the messy corpus (leadscore.flat.corpus) gives
either a trained run that did the right thing with its planted problem, or the documented
clear error (exit code from leadscore.errors, no traceback, nothing published)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.flat.corpus import CORPUS, corpus, write_case
from leadscore.flat.mapping import load_mapping
from leadscore.flat.run import run_flat
from leadscore.flat.table import load_flat, parse_numbers
from leadscore.io import read_json
from tests.builders import strings_in

TRAINS = [name for name, build in CORPUS.items() if build().trains]
ERRORS = [name for name in CORPUS if name not in TRAINS]


def _outputs(out):
    return {"evaluate": read_json(out / "metrics" / "evaluate.json"),
            "screen": read_json(out / "metrics" / "screen.json"),
            "train": read_json(out / "metrics" / "train.json"),
            "catalog": {f["name"]: f for f in read_json(out / "models" / "feature_catalog.json")},
            "features": read_json(out / "models" / "lightgbm" / "metadata.json")["features"]}


# ---- what each trained case must show ---------------------------------------------------------
def _day_first_dates(case, o, log_text):
    slices = o["evaluate"]["split"]["slices"]
    first, last = case.planted["first"], case.planted["last"]
    assert slices["train"]["as_of_first"] == first and slices["test"]["as_of_last"] == last
    assert o["evaluate"]["split"]["out_of_time"] is True
    assert f"read day first: {first} to {last}" in log_text


def _categorical_only(case, o, log_text):
    assert {f["kind"] for f in o["catalog"].values()} == {"categorical"}
    assert set(o["catalog"]) == {"channel", "landing_page"}


def _partial_leak(case, o, log_text):
    feature, column = case.planted["feature"], case.planted["column"]
    flag = next(f for f in o["screen"]["flagged"] if f["column"] == feature)
    assert flag["source"] == column and "certainty" in flag["rules"]
    assert feature in o["screen"]["refused"]
    assert o["evaluate"]["screen"]["dropped"] == [feature]
    assert feature not in o["features"] and feature not in o["catalog"]
    assert "R1" not in log_text and "r1" not in log_text  # reasons name rows and shares, no value


def _high_cardinality(case, o, log_text):
    levels = o["evaluate"]["levels"]
    assert levels["cap"] != 30  # the old top-30 fold is not the one chosen
    assert levels["levels_kept"]["landing_page"] > 30
    assert "landing_page" in o["features"]


def _placeholders(case, o, log_text):
    assert o["catalog"]["page_visits"]["kind"] == "numeric"
    assert o["catalog"]["channel"]["kind"] == "categorical"
    assert o["train"]["cleaning"]["not_numbers"] == {}  # every placeholder was a placeholder


def _number_formats(case, o, log_text):
    for feature in case.planted["columns"].values():
        assert o["catalog"][feature]["kind"] == "numeric" and feature in o["features"]
    assert o["train"]["cleaning"]["not_numbers"] == {}
    assert o["train"]["cleaning"]["dropped_id_like_or_empty"] == []
    assert o["screen"]["univariate_auc"]["annual_revenue"] > 0.55  # the signal was read


def _pii(case, o, log_text):
    assert o["screen"]["pii"] == [{"column": c, "kind": k} for c, k in case.planted["columns"].items()]
    assert o["evaluate"]["pii"] == o["screen"]["pii"]
    assert not {"e_mail", "work_contact", "contact_name"} & set(o["catalog"])
    assert "@example.org" not in log_text and "+1 555" not in log_text


def _weekday_signal(case, o, log_text):
    assert {"created_day_of_week", "created_hour"} <= set(o["features"])
    assert "created_month" not in o["features"]  # under two years of dates: no month part
    assert o["screen"]["univariate_auc"]["created_day_of_week"] > 0.6
    assert o["evaluate"]["screen"]["dropped"] == []


CHECKS = {"day_first_dates": _day_first_dates, "categorical_only": _categorical_only,
          "partial_leak": _partial_leak, "high_cardinality": _high_cardinality,
          "placeholders": _placeholders, "number_formats": _number_formats, "pii": _pii,
          "weekday_signal": _weekday_signal}


def test_every_trained_case_has_a_check():
    assert sorted(CHECKS) == sorted(TRAINS)


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINS)
def test_corpus_export_trains_and_handles_its_planted_problem(tmp_path, caplog, name):
    case = CORPUS[name]()
    mapping = load_mapping(write_case(tmp_path / "in", case.frame, case.mapping))
    with caplog.at_level(logging.INFO, logger="leadscore"):
        result = run_flat(mapping, tmp_path / "out")
    out = tmp_path / "out"
    scores = pd.read_parquet(out / "scores.parquet")
    assert len(scores) == len(case.frame) and scores["probability"].between(0, 1).all()
    assert 0 <= result.metrics["lightgbm"]["roc_auc"] <= 1
    CHECKS[name](case, _outputs(out), caplog.text)


@pytest.mark.parametrize("name", ERRORS)
def test_corpus_export_ends_in_its_documented_clear_error(tmp_path, name):
    case = CORPUS[name]()
    path = write_case(tmp_path / "in", case.frame, case.mapping)
    with pytest.raises(Exception) as err:  # noqa: PT011 - the class is the case's, checked below
        run_flat(load_mapping(path), tmp_path / "out")
    assert type(err.value).__name__ == case.error
    assert err.value.exit_code == case.exit_code

    result = CliRunner().invoke(app, ["flat", "--mapping", str(path), "--out", str(tmp_path / "out")])
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert result.exit_code == case.exit_code, result.output
    assert not (tmp_path / "out").exists()  # nothing published
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".old"))]
    values = set(case.frame["Lead ID"].head(50))
    assert not [v for v in values if v in result.output]  # no cell value in the message


# ---- the corpus itself, and the readers it exercises (fast) ------------------------------------
def test_corpus_is_seeded_and_small():
    first, again, other = corpus(0), corpus(0), corpus(1)
    for a, b, c in zip(first, again, other, strict=True):
        pd.testing.assert_frame_equal(a.frame, b.frame)
        assert not a.frame.equals(c.frame)
        assert len(a.frame) <= 6000 and "file" not in a.mapping
        assert a.trains == (a.error is None)


def test_day_first_case_is_read_on_the_planted_dates(tmp_path):
    case = CORPUS["day_first_dates"]()
    table = load_flat(load_mapping(write_case(tmp_path, case.frame, case.mapping)))
    assert str(table.frame["as_of"].min().date()) == case.planted["first"]
    assert str(table.frame["as_of"].max().date()) == case.planted["last"]


def test_placeholders_become_missing_in_numeric_and_text_columns(tmp_path):
    case = CORPUS["placeholders"]()
    df = load_flat(load_mapping(write_case(tmp_path, case.frame, case.mapping))).frame
    assert df["page_visits"].dtype == "float64"
    assert int(df["page_visits"].isna().sum()) == case.planted["missing_numeric"]
    assert int(df["channel"].isna().sum()) == case.planted["missing_text"]
    assert set(df["channel"].dropna()) == {"google", "direct", "referral", "events"}


def test_number_formats_case_reads_the_planted_numbers(tmp_path):
    case = CORPUS["number_formats"]()
    df = load_flat(load_mapping(write_case(tmp_path, case.frame, case.mapping))).frame
    np.testing.assert_allclose(df["annual_revenue"].head(5), case.planted["revenue"])
    np.testing.assert_array_equal(df["page_views"].head(5), case.planted["views"])
    np.testing.assert_array_equal(df["discount"].head(5), case.planted["discount"])


def test_currency_and_percent_text_parse_as_numbers():
    s = pd.Series(["$12,500.00", "-$1,234", "1,234 €", "£ 99", "15%", "12 %", "$", None], dtype="string")
    out = parse_numbers(s).tolist()
    assert out[:6] == [12500.0, -1234.0, 1234.0, 99.0, 15.0, 12.0]
    assert np.isnan(out[6]) and np.isnan(out[7])


def test_decimal_commas_are_not_guessed():
    assert parse_numbers(pd.Series(["€1.234,50", "1,5"], dtype="string")).isna().all()


def test_pii_case_never_writes_a_value(tmp_path):
    case = CORPUS["pii"]()
    table = load_flat(load_mapping(write_case(tmp_path / "in", case.frame, case.mapping)))
    assert [p["column"] for p in table.log["pii"]] == list(case.planted["columns"])
    assert not {"e_mail", "work_contact", "contact_name"} & set(table.frame)


@pytest.mark.slow
def test_pii_case_outputs_hold_no_personal_value(tmp_path):
    case = CORPUS["pii"]()
    run_flat(load_mapping(write_case(tmp_path / "in", case.frame, case.mapping)), tmp_path / "out")
    emails = case.frame["E-mail"].head(20).tolist()
    for path in (p for p in (tmp_path / "out").rglob("*") if p.is_file()):
        text = strings_in(path)
        assert "@example.org" not in text, path
        assert not [e for e in emails if e in text], path
