"""Issue 12's list of bad input that used to end in a traceback: each now ends in a clear
message and the documented exit code (leadscore.errors), and publishes nothing."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.errors import EXIT_CONFIG, EXIT_GUARD, EXIT_INPUT
from tests.flat.exports import base_frame, write_export


def _flat(tmp_path, **mapping):
    df = base_frame(200)
    return ["flat", "--mapping", str(write_export(tmp_path / "in", df, **mapping)),
            "--out", str(tmp_path / "out")]


def _mapping_folder(tmp_path):
    (tmp_path / "in" / "mapping.yaml").mkdir(parents=True)
    return ["flat", "--mapping", str(tmp_path / "in" / "mapping.yaml"), "--out", str(tmp_path / "out")]


def _mapping_unreadable(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "mapping.yaml").write_bytes(b"\xff\xfe\x00bad\x81\x82")
    return ["flat", "--mapping", str(tmp_path / "in" / "mapping.yaml"), "--out", str(tmp_path / "out")]


def _single_positive(tmp_path):
    df = base_frame(200).assign(Converted="no")
    df.loc[7, "Converted"] = "yes"
    return ["flat", "--mapping", str(write_export(tmp_path / "in", df)), "--out", str(tmp_path / "out")]


def _params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'mlruns.db'}"}}))
    return str(path)


def _metrics(content):
    def args(tmp_path):
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "evaluate.json").write_text(content)
        return ["metrics", "--path", str(tmp_path / "out" / "evaluate.json")]
    return args


def _explain_not_a_crm(tmp_path):
    (tmp_path / "crm.duckdb").write_text("lead_id,created_at\nL1,2024-01-01\n")
    return ["explain", "--lead-id", "L1", "--crm", str(tmp_path / "crm.duckdb"),
            "--params", _params(tmp_path)]


def _generate_into_folder(tmp_path):
    (tmp_path / "out").mkdir()
    return ["generate", "--out", str(tmp_path / "out"), "--leads", "50", "--params", _params(tmp_path)]


def _generate_under_a_file(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    return ["generate", "--out", str(tmp_path / "taken" / "crm.duckdb"), "--leads", "50",
            "--params", _params(tmp_path)]


def _score_quoted_table(tmp_path):
    return ["score", "--out", str(tmp_path / "out" / "scores.duckdb"), "--table", 'scores"; DROP TABLE x; --',
            "--params", _params(tmp_path)]


CASES = {
    "mapping is a folder": (_mapping_folder, EXIT_INPUT, "is a folder"),
    "mapping is unreadable": (_mapping_unreadable, EXIT_INPUT, "cannot read the mapping file"),
    "unknown encoding": (lambda t: _flat(t, encoding="utf-9"), EXIT_INPUT, "encoding: unknown encoding"),
    "single positive, no date": (_single_positive, EXIT_GUARD, "has 1 positive row(s)"),
    "negative seed": (lambda t: _flat(t, seed=-1), EXIT_INPUT, "seed: Input should be greater than or equal to 0"),
    "evaluate.json without models": (_metrics('{"rules": {"roc_auc": 0.5}}'), EXIT_INPUT,
                                     "not the evaluate stage's record"),
    "evaluate.json not an object": (_metrics("[1, 2]"), EXIT_INPUT, "not the evaluate stage's record"),
    "explain --crm not a DuckDB CRM": (_explain_not_a_crm, EXIT_INPUT, "not a DuckDB CRM"),
    "generate --out a folder": (_generate_into_folder, EXIT_CONFIG, "is a folder"),
    "generate --out under a file": (_generate_under_a_file, EXIT_CONFIG, "cannot create its folder"),
    "score --table with a quote": (_score_quoted_table, EXIT_CONFIG, "not a table name"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_ends_in_a_clear_error_and_its_exit_code(tmp_path, case):
    make_args, code, says = CASES[case]
    args = make_args(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "out").rglob("*")) \
        if (tmp_path / "out").is_dir() else None
    result = CliRunner().invoke(app, args)
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit) or result.exception is None
    assert result.exit_code == code, result.output
    assert says in " ".join(result.output.split())
    after = sorted(p.relative_to(tmp_path) for p in (tmp_path / "out").rglob("*")) \
        if (tmp_path / "out").is_dir() else None
    assert after == before  # nothing published
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".old"))]
