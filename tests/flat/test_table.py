"""Flat exports: the mapping is validated with clear errors, messy files are cleaned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.flat.mapping import MappingError, load_mapping, mapping_from_dict
from leadscore.flat.rules import FlatRuleClassifier
from leadscore.flat.table import (
    detect_delimiter,
    flat_split,
    infer_groups,
    load_flat,
    parse_numbers,
)


def _messy_csv(path, n: int = 300, seed: int = 0) -> None:
    """A CRM export as they come: index column, empty header, Select placeholders, mixed
    case, numbers as text with thousands separators and spaces, a high-cardinality column,
    an e-mail column (identifier-like), comma-delimited with quoted fields."""
    rng = np.random.default_rng(seed)
    converted = rng.random(n) < 0.3
    source = rng.choice(["Google", "google ", "GOOGLE", "Direct Traffic", "Select", "Referral"], n)
    city = [f"City {i}" for i in rng.integers(0, 60, n)]  # 60 levels > max_levels
    visits = np.where(rng.random(n) < 0.1, "Select", [f" {v:,} " for v in rng.integers(0, 3000, n)])
    df = pd.DataFrame({
        "Unnamed: 0": np.arange(n),
        "": [""] * n,
        "Prospect ID": [f"P{i:05d}" for i in range(n)],
        "Lead Source": source,
        "City": city,
        "Total Visits": visits,
        "Email Address": [f"user{i}@example.com" for i in range(n)],
        "Converted": np.where(converted, "Yes", "no"),
    })
    df.to_csv(path, index=False)


@pytest.fixture
def messy(tmp_path):
    _messy_csv(tmp_path / "export.csv")
    return tmp_path


def _mapping(folder, **kw):
    raw = {"file": "export.csv", "id": "Prospect ID", "target": "Converted", "positive": "yes",
           "max_levels": 10, **kw}
    return mapping_from_dict(raw, base_dir=folder)


def test_messy_export_is_cleaned(messy):
    table = load_flat(_mapping(messy))
    df = table.frame
    assert table.log["stray_columns"] == ["Unnamed: 0", "Unnamed: 1"]  # "" read as Unnamed: 1
    assert "email_address" not in df  # personal data, found by its values, dropped
    assert table.log["pii"] == [{"column": "Email Address", "kind": "e-mail"}]
    assert table.log["dropped_id_like_or_empty"] == []
    # mixed case and spaces are one level; Select is missing
    assert set(df["lead_source"].dropna()) == {"google", "direct traffic", "referral"}
    assert df["lead_source"].isna().any()
    # numbers stored as text with separators and spaces are numeric; Select -> missing
    assert df["total_visits"].dtype == "float64"
    assert df["total_visits"].max() > 999
    assert df["total_visits"].isna().mean() == pytest.approx(0.1, abs=0.05)
    # high cardinality: at most max_levels levels, the rest folded into "other"
    assert df["city"].nunique() <= 10 and "other" in set(df["city"])
    assert df["label"].isin([0, 1]).all() and 0 < df["label"].mean() < 1
    assert table.catalog["total_visits"].group == "engagement"  # inferred from the name
    assert table.catalog["city"].group == "fit"


def test_delimiter_is_detected():
    assert detect_delimiter('"a";"b";"c"\n1;2;3\n') == ";"
    assert detect_delimiter("a\tb\tc\n1\t2\t3\n") == "\t"
    assert detect_delimiter("a,b,c\n1,2,3\n") == ","


def test_numbers_stored_as_text_parse():
    s = pd.Series(["1,234", " 12 ", "1 000", "3.5", "abc", None], dtype="string")
    out = parse_numbers(s)
    assert out.tolist()[:4] == [1234.0, 12.0, 1000.0, 3.5]
    assert np.isnan(out.iloc[4]) and np.isnan(out.iloc[5])


def test_groups_are_inferred_from_names():
    fit, eng = infer_groups(["Country", "Total Time Spent on Website", "Page Views Per Visit",
                             "industry", "campaign", "LastActivity"])
    assert fit == ["Country", "industry"]
    assert eng == ["Total Time Spent on Website", "Page Views Per Visit", "campaign", "LastActivity"]


def test_unknown_column_is_a_clear_error(messy):
    with pytest.raises(MappingError, match=r"fit\[0\]: column 'Lead Sauce' is not in the file"):
        load_flat(_mapping(messy, fit=["Lead Sauce"]))


def test_missing_target_key_is_a_clear_error(messy):
    with pytest.raises(MappingError, match="target: Field required"):
        mapping_from_dict({"file": "export.csv", "positive": "yes"}, base_dir=messy)


def test_non_binary_target_is_a_clear_error(messy):
    with pytest.raises(MappingError, match="must hold exactly 2 distinct values"):
        load_flat(_mapping(messy, target="Lead Source", positive="google"))


def test_positive_value_not_in_target_is_a_clear_error(messy):
    with pytest.raises(MappingError, match="positive: 'won' is not one of the values"):
        load_flat(_mapping(messy, positive="won"))


def test_unknown_key_and_bad_rule_are_named(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("file: x.csv\ntarget: y\npositive: 1\ncolumns_to_drop: [a]\n"
                    "rules:\n  fit:\n    age: {'>>3': 5}\n")
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert "columns_to_drop: unknown key" in str(err.value)
    assert "rules.fit.age: cannot read condition '>>3'" in str(err.value)


def test_random_split_without_order_is_stratified(messy):
    m = _mapping(messy)
    table = load_flat(m)
    split = flat_split(table, m)
    rates = [split.windows[s]["base_rate"] for s in ("train", "valid", "calib", "test")]
    assert not table.ordered
    assert max(rates) - min(rates) < 0.05
    assert sum(split.windows[s]["rows"] for s in split.windows) == len(table.frame)


def test_time_order_rows_tests_the_latest_rows(messy):
    m = _mapping(messy, time_order="rows")
    split = flat_split(load_flat(m), m)
    assert split.test["row"].min() > split.calib["row"].max() > split.valid["row"].max()
    assert split.valid["row"].min() > split.train["row"].max()


def test_flat_rules_score_conditions_first_match():
    rules = FlatRuleClassifier(fit_rules={"age": {"<25": 10, "<40": 5, "missing": -3}},
                           engagement_rules={"visits": {">=10": 50, "1..10": 5}},
                           max_points_per_activity=30)
    X = pd.DataFrame({"age": [20, 30, 50, np.nan], "visits": [12, 3, 0, 1]})
    pts = rules.points(X)
    assert pts["fit_points"].tolist() == [10, 5, 0, -3]
    assert pts["engagement_points"].tolist() == [30, 5, 0, 5]  # 50 capped at 30
    rules.fit(X, [1, 1, 0, 0])
    assert FlatRuleClassifier.from_dict(rules.to_dict()).predict_proba(X).shape == (4, 2)
