"""Issue 12 item 9: personal data in a flat export. E-mail, phone and person-name columns are
found by their values, dropped and reported by column name only; no cell value other than the
target's labels reaches a log, an error or a file a run writes (the canary tests)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.flat.mapping import MappingError, load_mapping
from leadscore.flat.pii import EMAIL, NAME, PHONE, find_pii, pii_kind
from leadscore.flat.run import run_flat
from leadscore.flat.table import load_flat
from leadscore.io import read_json
from leadscore.schema import CANARY_EMAIL, CANARY_FIRST_NAME, CANARY_LAST_NAME
from tests.builders import strings_in
from tests.flat.exports import base_frame, write_export

CANARY_PHONE = "+44 20 7946 0731"
CANARY_NAME = f"{CANARY_FIRST_NAME} {CANARY_LAST_NAME}"
CANARIES = (CANARY_EMAIL, CANARY_PHONE, CANARY_PHONE.replace(" ", ""), CANARY_FIRST_NAME,
            CANARY_LAST_NAME)
FIRST = ["Ann", "Bob", "Cara", "David", "Emma", "Hans", "Priya", "Lucas", "Maria", "Wei"]
LAST = ["Lee", "King", "Diaz", "Smith", "Jones", "Kumar", "Meyer", "Rossi", "Chen", "Silva"]


def _with_pii(n: int = 400, seed: int = 5) -> pd.DataFrame:
    """`base_frame` plus an e-mail, a phone and a contact-name column, each with one canary."""
    rng = np.random.default_rng(seed)
    df = base_frame(n, seed=seed)
    df["Email"] = [f"lead{i}@example.org" for i in range(n)]
    df["Phone"] = [f"+1 555 {rng.integers(100, 999)} {rng.integers(1000, 9999)}" for _ in range(n)]
    df["Contact Name"] = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(n)]
    df.loc[17, ["Email", "Phone", "Contact Name"]] = [CANARY_EMAIL, CANARY_PHONE, CANARY_NAME]
    return df


def _canary_hits(root) -> dict[str, list[str]]:
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        hits = [c for c in CANARIES if c in strings_in(path)]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


@pytest.mark.parametrize(("header", "values", "kind"), [
    ("Email", ["a.b@x.com", "c@y.co.uk", "bad"], EMAIL),
    ("Notes", ["a.b@x.com", "fine", "x", "y", "z"], EMAIL),  # any header: found by the values
    ("Phone", ["+44 20 7946 0958", "020 7946 0958", "(555) 123 4567"], PHONE),
    ("Mobile", ["555-123-4567", "555.987.6543"], PHONE),
    ("Contact Name", [f"{a} {b}" for a in ("Zed", "Yan", "Xu", "Quin") for b in ("Ab", "Cd", "Ef")], NAME),
    ("Owner", ["John Smith", "Mary Jones", "Ravi Kumar", "Anna Rossi"], NAME),  # first-name list
    ("contact", ["cellular", "telephone"] * 20, None),  # the bank's contact channel
    ("Last Activity", ["Email Opened", "Page Visited on Website", "SMS Sent"] * 10, None),
    ("Channel", ["Google", "Direct", "Referral"] * 10, None),
    ("Revenue", ["1234567", "1 234 567", "99.5", "12000000"], None),
    ("Created", ["2024-01-31", "31.01.2024", "01-02-2024"], None),
    ("Account", ["5551234567", "5559876543"], None),  # bare digits: not taken for a phone
    ("Company Name", [f"{a} {b}" for a in ("Acme", "Globex", "Initech") for b in ("Ltd", "Inc", "Co", "Group")], None),
])
def test_personal_data_is_found_by_its_values(header, values, kind):
    assert pii_kind(header, pd.Series(values, dtype="string")) == kind


def test_pii_columns_are_dropped_and_reported_by_name_only(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    table = load_flat(load_mapping(write_export(tmp_path, _with_pii(), id="Lead ID")))
    assert table.log["pii"] == [{"column": "Email", "kind": EMAIL}, {"column": "Phone", "kind": PHONE},
                                {"column": "Contact Name", "kind": NAME}]
    assert not {"email", "phone", "contact_name"} & set(table.frame)
    assert "'Email' (e-mail)" in caplog.text and CANARY_EMAIL not in caplog.text
    assert table.frame["lead_id"].str.startswith("L").all()  # the id stays the id


def test_an_id_column_of_email_addresses_stays_the_id(tmp_path):
    df = _with_pii()
    table = load_flat(load_mapping(write_export(tmp_path, df, id="Email")))
    assert table.frame["lead_id"].tolist() == df["Email"].tolist()
    assert "Email" not in {p["column"] for p in table.log["pii"]}


def test_not_pii_keeps_a_column_taken_for_a_name(tmp_path):
    df = base_frame(300).assign(**{"Product Line": np.resize(["Ann Taylor", "Bob Cat", "Ada Lace"], 300)})
    assert find_pii({"Product Line": df["Product Line"]}) == {"Product Line": NAME}
    table = load_flat(load_mapping(write_export(tmp_path, df, not_pii=["Product Line"])))
    assert "product_line" in table.frame and table.log["pii"] == []


@pytest.mark.parametrize("column", ["Email", "Phone"])
def test_not_pii_is_refused_for_email_and_phone_columns(tmp_path, column):
    with pytest.raises(MappingError, match=rf"not_pii\[0\]: column '{column}' holds .* always dropped"):
        load_flat(load_mapping(write_export(tmp_path, _with_pii(), not_pii=[column])))


def test_duplicate_ids_are_named_by_row_never_by_value(tmp_path):
    df = _with_pii()
    df.loc[[3, 17], "Email"] = CANARY_EMAIL
    with pytest.raises(MappingError) as err:
        load_flat(load_mapping(write_export(tmp_path, df, id="Email")))
    assert "1 duplicate value(s), in row(s) 18" in str(err.value)
    assert CANARY_EMAIL not in str(err.value)


def test_a_target_that_is_not_binary_quotes_its_labels_but_never_personal_data(tmp_path):
    df = _with_pii()
    with pytest.raises(MappingError, match=r"found 3: \['maybe', 'no', 'yes'\]"):
        load_flat(load_mapping(write_export(tmp_path, df.assign(Converted=np.resize(["yes", "no", "maybe"], 400)))))
    with pytest.raises(MappingError, match="found 400. Map") as err:
        load_flat(load_mapping(write_export(tmp_path, df, target="Email")))
    assert CANARY_EMAIL not in str(err.value)


@pytest.mark.slow
def test_no_canary_pii_in_any_file_or_log_of_a_flat_run(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    mapping = load_mapping(write_export(tmp_path / "in", _with_pii(), id="Lead ID"))
    result = run_flat(mapping, tmp_path / "out")
    assert _canary_hits(tmp_path / "out") == {}
    assert not [c for c in CANARIES if c in caplog.text]
    pii = [{"column": "Email", "kind": EMAIL}, {"column": "Phone", "kind": PHONE},
           {"column": "Contact Name", "kind": NAME}]
    assert result.metrics["pii"] == pii
    assert read_json(tmp_path / "out" / "metrics" / "screen.json")["pii"] == pii
    assert read_json(tmp_path / "out" / "metrics" / "evaluate.json")["pii"] == pii


@pytest.mark.parametrize("broken", [{"id": "Email", "dup": True}, {"target": "Contact Name"},
                                    {"id": "Phone", "dup": True}])
def test_no_canary_pii_in_the_message_of_a_failed_flat_run(tmp_path, caplog, broken):
    caplog.set_level(logging.DEBUG)
    df = _with_pii()
    if broken.pop("dup", False):
        df.loc[[3, 17], ["Email", "Phone"]] = [CANARY_EMAIL, CANARY_PHONE]
    args = ["flat", "--mapping", str(write_export(tmp_path / "in", df, **broken)),
            "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert not [c for c in CANARIES if c in result.output + caplog.text]
    assert not (tmp_path / "out").exists()
