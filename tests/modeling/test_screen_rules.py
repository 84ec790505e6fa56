"""Two rules of the leakage screen (issue 12, items 3 and 7): the certainty rule flags a
column filled in only for some converted (or lost) leads; a name hit with no statistical
signal drops the column with a warning instead of stopping the run."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from leadscore.errors import GuardError
from leadscore.flat.mapping import load_mapping
from leadscore.flat.run import apply_screen, run_flat
from leadscore.io import read_json
from leadscore.modeling.leakage import (
    LeakageError,
    certainty_hits,
    check_leakage,
    screen_columns,
)
from tests.flat.exports import base_frame, write_export


def _leads(n: int = 3000, base: float = 0.10, seed: int = 0) -> pd.DataFrame:
    """`n` leads at `base` conversion with an honest numeric and categorical column."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < base).astype(int)
    return pd.DataFrame({"label": y, "age": rng.normal(40, 10, n),
                         "channel": rng.choice(["web", "event", "partner"], n)})


def _present_on(y: np.ndarray, rows: int, *, converted: bool = True, seed: int = 1) -> np.ndarray:
    """A mask of `rows` rows, all converted (or all lost)."""
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(y == (1 if converted else 0))
    mask = np.zeros(len(y), dtype=bool)
    mask[rng.choice(pool, rows, replace=False)] = True
    return mask


def _screen(df: pd.DataFrame, features: list[str], categorical: list[str] = (), **kw):
    return screen_columns(df, features=features, categorical=list(categorical), **kw)


def _flag(report, column):
    return next((f for f in report.flags if f.column == column), None)


# ---- item 3: the certainty rule -----------------------------------------------------------
def test_a_column_present_on_1pct_of_rows_all_converted_is_flagged_by_certainty_alone():
    df = _leads()
    mask = _present_on(df["label"].to_numpy(), 30)  # 1% of 3,000 rows
    df["extra_notes_len"] = np.where(mask, np.random.default_rng(2).uniform(1, 9, len(df)), np.nan)
    report = _screen(df, ["age", "channel", "extra_notes_len"], ["channel"])
    flag = _flag(report, "extra_notes_len")
    assert flag is not None and flag.rules == ["certainty"]  # missingness and AUC see nothing
    assert flag.missing_auc < 0.6 and flag.auc < 0.75
    assert report.refused == ["extra_notes_len"]
    base = df["label"].mean()
    assert flag.reasons == [f"present on 30 rows (1.0%), 100% of them converted against "
                            f"{base:.0%} overall: looks filled in only after a sale"]


def test_the_certainty_reason_names_counts_and_shares_never_values():
    df = _leads()
    mask = _present_on(df["label"].to_numpy(), 40)
    df["campaign_code"] = np.where(mask, "SECRET-VALUE-42", "ordinary")
    report = _screen(df, ["age", "campaign_code"], ["campaign_code"])
    text = report.text()
    assert "campaign_code: REFUSED" in text
    assert "one of its levels covers 40 rows (1.3%), 100% of them converted" in text
    assert "SECRET" not in text and "ordinary" not in text


def test_an_ordinary_informative_column_is_not_flagged():
    df = _leads()
    y = df["label"].to_numpy()
    rng = np.random.default_rng(3)
    # present on 10% of rows: 30% converted there against 10% overall
    present = np.zeros(len(df), dtype=bool)
    present[rng.choice(np.flatnonzero(y == 1), 90, replace=False)] = True
    present[rng.choice(np.flatnonzero(y == 0), 210, replace=False)] = True
    df["webinar_minutes"] = np.where(present, rng.uniform(5, 60, len(df)), np.nan)
    report = _screen(df, ["age", "channel", "webinar_minutes"], ["channel"])
    assert report.flags == []


def test_a_column_present_on_5_rows_all_converted_is_too_few_to_flag():
    df = _leads()
    mask = _present_on(df["label"].to_numpy(), 5)
    df["extra_notes_len"] = np.where(mask, 3.0, np.nan)
    report = _screen(df, ["age", "extra_notes_len"])
    assert report.flags == []


def test_a_column_set_to_zero_unless_converted_is_flagged():
    """An export that writes 0 for "not filled in": the rows that differ from the most
    common value are tested like present rows."""
    df = _leads()
    mask = _present_on(df["label"].to_numpy(), 30)
    df["follow_up_calls"] = np.where(mask, np.random.default_rng(4).integers(1, 40, len(df)), 0)
    flag = _flag(_screen(df, ["age", "follow_up_calls"]), "follow_up_calls")
    assert flag is not None and "certainty" in flag.rules
    assert "differs from its most common value on 30 rows" in " ".join(flag.reasons)


def test_a_column_filled_in_only_for_lost_leads_is_flagged_when_the_base_rate_is_high():
    df = _leads(base=0.40)
    mask = _present_on(df["label"].to_numpy(), 40, converted=False)
    df["lost_note_len"] = np.where(mask, 5.0, np.nan)
    flag = _flag(_screen(df, ["age", "lost_note_len"], check_names=False), "lost_note_len")
    assert flag is not None and flag.rules == ["certainty"]
    base = df["label"].mean()
    assert flag.reasons == [f"present on 40 rows (1.3%), 0% of them converted against "
                            f"{base:.0%} overall: looks filled in only for lost leads"]


def test_the_lost_side_is_not_tested_when_the_base_rate_is_low():
    """At a 10% base rate, 40 rows with no conversion are ordinary, not a leak."""
    df = _leads(base=0.10)
    mask = _present_on(df["label"].to_numpy(), 40, converted=False)
    df["notes_len"] = np.where(mask, 5.0, np.nan)
    assert _screen(df, ["age", "notes_len"]).flags == []


def test_the_certainty_thresholds_are_keyword_arguments():
    df = _leads()
    mask = _present_on(df["label"].to_numpy(), 30)
    df["extra_notes_len"] = np.where(mask, 1.0, np.nan)
    y = df["label"].to_numpy()
    kw = {"features": ["age", "extra_notes_len"], "categorical": []}
    assert set(certainty_hits(df, y, **kw)) == {"extra_notes_len"}
    assert certainty_hits(df, y, min_rows=31, **kw) == {}  # too few rows
    assert certainty_hits(df, y, alpha=1e-40, **kw) == {}  # p-value 0.1^30 = 1e-30
    assert _screen(df, kw["features"], check_certainty=False).flags == []


# ---- item 7: a name hit with no statistical signal -----------------------------------------
def test_a_name_hit_with_no_signal_is_dropped_with_a_warning_that_says_how_to_keep_it(caplog):
    df = _leads()
    df["ProductRelated_Duration"] = np.random.default_rng(5).gamma(2.0, 300.0, len(df))
    report = _screen(df, ["age", "channel", "ProductRelated_Duration"], ["channel"])
    flag = _flag(report, "ProductRelated_Duration")
    assert flag.rules == ["name"] and not flag.statistical
    assert report.refused == [] and report.dropped_by_name == ["ProductRelated_Duration"]
    with caplog.at_level(logging.WARNING, logger="leadscore.modeling.leakage"):
        check_leakage(report)  # does not raise
    assert "ProductRelated_Duration: DROPPED (name only, no statistical signal)" in caplog.text
    assert "allow: [ProductRelated_Duration]" in caplog.text
    assert report.summary()["dropped_by_name"] == ["ProductRelated_Duration"]


def test_a_name_hit_with_a_statistical_signal_is_still_refused():
    df = _leads()
    y = df["label"].to_numpy()
    df["call_duration"] = y * 5 + np.random.default_rng(6).normal(0, 0.5, len(df))  # AUC
    df["deal_notes"] = np.where(_present_on(y, 30), 2.0, np.nan)  # certainty
    report = _screen(df, ["age", "call_duration", "deal_notes"])
    assert report.refused == ["call_duration", "deal_notes"] and report.dropped_by_name == []
    with pytest.raises(LeakageError) as err:
        check_leakage(report)
    assert isinstance(err.value, GuardError)  # exit 4
    assert "allow: [call_duration, deal_notes]" in str(err.value)


def test_an_allowed_name_hit_is_kept():
    df = _leads()
    df["ProductRelated_Duration"] = np.random.default_rng(5).gamma(2.0, 300.0, len(df))
    report = _screen(df, ["age", "ProductRelated_Duration"], allow=["ProductRelated_Duration"])
    assert report.allowed == ["ProductRelated_Duration"] and report.dropped_by_name == []


def _export(tmp_path, column: str, values, **mapping):
    df = base_frame(n=600)
    df[column] = values(df)
    return load_mapping(write_export(tmp_path / "export", df, screen={"on_flag": "refuse"},
                                     **mapping))


def test_apply_screen_drops_a_name_only_column_in_both_modes(tmp_path):
    df = _leads()
    df["Session Duration"] = np.random.default_rng(5).gamma(2.0, 300.0, len(df))
    report = _screen(df, ["age", "Session Duration"])
    m = _export(tmp_path, "Notes", lambda d: 1.0)
    assert apply_screen(report, m) == ["Session Duration"]  # refuse mode: no refusal
    drop = m.model_copy(update={"screen": m.screen.model_copy(update={"on_flag": "drop"})})
    assert apply_screen(report, drop) == ["Session Duration"]


@pytest.mark.slow
def test_a_run_goes_on_without_a_name_only_column(tmp_path, caplog):
    m = _export(tmp_path, "Session Duration",
                lambda d: np.random.default_rng(7).gamma(2.0, 300.0, len(d)).round(1))
    with caplog.at_level(logging.WARNING):
        run_flat(m, tmp_path / "out")
    assert "Session Duration: DROPPED" in caplog.text
    assert "allow: [Session Duration]" in caplog.text
    ev = read_json(tmp_path / "out" / "metrics" / "evaluate.json")
    assert ev["screen"]["refused"] == [] and len(ev["screen"]["dropped"]) == 1
    model = read_json(tmp_path / "out" / "models" / "lightgbm" / "metadata.json")
    assert ev["screen"]["dropped"][0] not in model["features"]
    assert "page_visits" in model["features"] or "Page Visits" in model["features"]


@pytest.mark.slow
def test_a_run_stops_on_a_name_hit_with_a_partial_leak(tmp_path):
    def deal_notes(d):
        pos = np.flatnonzero(d["Converted"].to_numpy() == "yes")[:25]
        out = np.full(len(d), np.nan)
        out[pos] = 3.0
        return out

    m = _export(tmp_path, "Deal Notes", deal_notes)
    with pytest.raises(LeakageError, match=r"Deal Notes: REFUSED.*present on 2\d rows"):
        run_flat(m, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_dropping_every_feature_column_is_refused(tmp_path):
    df = _leads()
    df["Session Duration"] = np.random.default_rng(5).gamma(2.0, 300.0, len(df))
    report = _screen(df, ["Session Duration"])
    m = _export(tmp_path, "Notes", lambda d: 1.0)
    with pytest.raises(LeakageError, match="no feature column is left to train on"):
        apply_screen(report, m)
