"""One exit-code table for every command (leadscore.errors): each command's failure modes map
to the same numbers, and no failure prints a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.errors import (
    EXIT_CODES,
    EXIT_CONFIG,
    EXIT_GUARD,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_MODEL,
    GuardError,
    exit_code_for,
)

runner = CliRunner()


@pytest.fixture
def params(tmp_path, monkeypatch):
    """A valid params.yaml whose MLflow store is private to the test."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tmp_path / "params.yaml"
    path.write_text(f"mlflow: {{tracking_uri: 'sqlite:///{tmp_path / 'mlruns.db'}'}}\n")
    return path


@pytest.fixture
def bad_params(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("features: {horizon_days: -1}\n")
    return path


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    return result.exit_code, result.output


def test_help_prints_the_exit_code_table():
    code, out = _run("--help")
    assert code == 0
    for number, meaning in EXIT_CODES.items():
        assert f"{number} {meaning.split()[0]}" in " ".join(out.split())


def test_exit_codes_are_distinct_and_cover_0_to_5():
    assert sorted(EXIT_CODES) == [0, 1, 2, 3, 4, 5]
    assert exit_code_for(GuardError("x")) == EXIT_GUARD
    assert exit_code_for(FileNotFoundError("x")) == EXIT_INPUT
    assert exit_code_for(KeyError("x")) == EXIT_INTERNAL


@pytest.mark.parametrize("command", [
    ["generate", "--out", "{tmp}/crm.duckdb"],
    ["validate", "{tmp}/nothing.duckdb"],
    ["score", "--out", "{tmp}/s.parquet"],
    ["report", "--out", "{tmp}/r.html", "--no-track"],
    ["explain", "--lead-id", "L1"],
    ["promote"],
    ["rollback"],
    ["history"],
    ["retrain", "--crm", "{tmp}/nothing.duckdb"],
    ["backtest", "--train", "{tmp}/nothing.parquet"],
    ["monitor", "--history", "{tmp}/nothing.duckdb"],
])
def test_every_command_exits_2_on_a_bad_params_file(command, bad_params, tmp_path):
    args = [a.format(tmp=tmp_path) for a in command]
    code, out = _run(*args, "--params", str(bad_params))
    assert code == EXIT_CONFIG, out
    assert "features.horizon_days" in out


def test_unknown_option_is_a_usage_error_2():
    assert _run("score", "--no-such-option")[0] == EXIT_CONFIG


def test_validate_missing_source_is_bad_input_1(params, tmp_path):
    code, out = _run("validate", str(tmp_path / "nothing.duckdb"), "--params", str(params))
    assert code == EXIT_INPUT
    assert "nothing.duckdb" in out


def test_metrics_missing_file_is_bad_input_1(tmp_path):
    code, out = _run("metrics", "--path", str(tmp_path / "evaluate.json"))
    assert code == EXIT_INPUT
    assert "evaluate.json" in out


def test_report_unreadable_input_is_bad_input_1(params, tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "evaluate.json").write_text("{not json")
    code, out = _run("report", "--root", str(tmp_path), "--out", str(tmp_path / "r.html"),
                     "--no-track", "--params", str(params))
    assert code == EXIT_INPUT
    assert "evaluate.json" in out
    assert not (tmp_path / "r.html").exists()


def test_explain_missing_model_files_is_bad_input_1(params, tmp_path):
    code, out = _run("explain", "--lead-id", "L1", "--catalog", str(tmp_path / "cat.json"),
                     "--params", str(params))
    assert code == EXIT_INPUT
    assert "cat.json" in out


def test_score_missing_model_is_model_error_3(params, tmp_path):
    from tests.builders import make_crm, write_crm

    raw = write_crm(make_crm(), "duckdb", tmp_path / "raw.duckdb")
    code, out = _run("score", "--source", str(raw), "--out", str(tmp_path / "s.parquet"),
                     "--model", str(tmp_path / "no_model"), "--params", str(params))
    assert code == EXIT_MODEL
    assert "no_model" in out
    assert not (tmp_path / "s.parquet").exists()


@pytest.mark.slow  # MLflow's SQLite store set-up takes a few seconds
def test_promote_unknown_version_and_rollback_without_history_are_model_errors_3(params):
    assert _run("promote", "--version", "99", "--params", str(params))[0] == EXIT_MODEL
    assert _run("rollback", "--params", str(params))[0] == EXIT_MODEL


def test_flat_missing_mapping_is_bad_input_1(tmp_path):
    code, out = _run("flat", "--mapping", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "o"))
    assert code == EXIT_INPUT
    assert "m.yaml" in out


def test_flat_guard_refusal_is_4(tmp_path, monkeypatch):
    from leadscore.flat import run as flat_run
    from leadscore.modeling.leakage import LeakageError

    def refuse(*_a, **_k):
        raise LeakageError("duration: REFUSED")

    (tmp_path / "m.yaml").write_text("file: x.csv\ntarget: y\n")
    monkeypatch.setattr(flat_run, "run_flat", refuse)
    monkeypatch.setattr("leadscore.flat.mapping.load_mapping", lambda path: object())
    code, out = _run("flat", "--mapping", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "o"))
    assert code == EXIT_GUARD
    assert "REFUSED" in out


def test_an_unexpected_error_is_internal_5_without_a_traceback(params, tmp_path, monkeypatch):
    def boom(*_a, **_k):
        raise KeyError("something internal")

    monkeypatch.setattr("leadscore.data.synthetic.generate_crm", boom)
    code, out = _run("generate", "--out", str(tmp_path / "crm.duckdb"), "--params", str(params))
    assert code == EXIT_INTERNAL
    assert "internal error" in out and "-v" in out


def test_metrics_file_that_is_not_json_is_bad_input_1(tmp_path):
    path = tmp_path / "evaluate.json"
    path.write_text("")
    code, out = _run("metrics", "--path", str(path))
    assert code == EXIT_INPUT
    assert "evaluate.json: not valid JSON" in out


def test_explain_bad_as_of_is_a_usage_error_2(params):
    code, out = _run("explain", "--lead-id", "L1", "--as-of", "31/12/2025", "--params", str(params))
    assert code == EXIT_CONFIG
    assert "YYYY-MM-DD" in out


def test_stage_with_an_unreadable_training_table_is_bad_input_1(tmp_path):
    from typer.testing import CliRunner as Runner

    from pipelines.train_rules import app as train_rules

    broken = tmp_path / "train.parquet"
    broken.write_text("")
    result = Runner().invoke(train_rules, ["--train", str(broken), "--out", str(tmp_path / "r.json"),
                                           "--metrics", str(tmp_path / "m.json"), "--no-track"])
    assert result.exit_code == EXIT_INPUT
    assert "train.parquet: not a readable Parquet file" in result.output
    assert not (tmp_path / "r.json").exists()


def _store(tmp_path) -> Path:
    p = tmp_path / "params.yaml"
    p.write_text(f"mlflow:\n  tracking_uri: sqlite:///{tmp_path / 'mlruns.db'}\n")
    return p


@pytest.mark.parametrize(("args", "code", "says"), [
    (["promote", "--force"], EXIT_CONFIG, "--reason"),
    (["promote", "--train", "{tmp}/none.parquet"], EXIT_MODEL, "retrain first"),
    (["rollback"], EXIT_MODEL, "nothing to roll back"),
    (["retrain", "--crm", "{tmp}/none.duckdb"], EXIT_INPUT, "none.duckdb"),
    (["retrain", "--cutoff", "31/12/2025"], EXIT_CONFIG, "cutoff"),
    (["backtest", "--train", "{tmp}/none.parquet"], EXIT_INPUT, "none.parquet"),
])
def test_lifecycle_commands_fail_with_a_clear_message_and_code(args, code, says, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    got, out = _run(*[a.format(tmp=tmp_path) for a in args], "--params", str(_store(tmp_path)))
    assert got == code, out
    assert says in out
