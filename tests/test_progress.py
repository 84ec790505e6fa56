"""Progress bars (leadscore.progress): on stderr only, on a terminal only, unless forced."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from leadscore.config import GenerateConfig
from leadscore.data.synthetic import generate_crm
from leadscore.modeling.metrics import bootstrap_ci
from leadscore.progress import ENV, bar, enabled

TINY = GenerateConfig(n_leads=2_000, chunk_leads=1_000)  # two chunks
BAR_MARKS = ("\r", "%|", "it/s", "lead/s", "leads/s", "s/it", "█")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)


def _no_bar(text: str) -> bool:
    return not any(mark in text for mark in BAR_MARKS)


def test_off_when_stderr_is_not_a_tty(monkeypatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not enabled()
    b = bar(range(3), desc="x")
    assert b.disable
    assert list(b) == [0, 1, 2]


def test_on_when_stderr_is_a_tty(monkeypatch) -> None:
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert enabled()
    assert not bar(total=1).disable


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("0", False), ("off", False)])
def test_env_forces_on_or_off(monkeypatch, value: str, expected: bool) -> None:
    monkeypatch.setattr("sys.stderr", _Terminal() if not expected else io.StringIO())
    monkeypatch.setenv(ENV, value)
    assert enabled() is expected


def test_explicit_argument_wins_over_env_and_terminal(monkeypatch) -> None:
    monkeypatch.setattr("sys.stderr", _Terminal())
    monkeypatch.setenv(ENV, "1")
    assert not enabled(False)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setenv(ENV, "0")
    assert enabled(True)


def test_forced_bar_writes_to_stderr_only(capsys) -> None:
    with bar(total=5, desc="work", progress=True, mininterval=0) as b:
        for _ in range(5):
            b.update()
    out, err = capsys.readouterr()
    assert out == ""
    assert "work" in err and "5/5" in err


def test_forced_generate_bar_on_stderr_nothing_on_stdout(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv(ENV, "1")
    summary = generate_crm(TINY, 7, tmp_path / "crm.duckdb")
    out, err = capsys.readouterr()
    assert out == ""
    assert "generate" in err and "2000/2000" in err
    assert "@" not in err  # no e-mail (or any other lead value) in the bar
    assert summary["leads"] == 2_000


def test_bar_leaves_generated_crm_unchanged(tmp_path: Path) -> None:
    def rows(path: Path) -> dict[str, list]:
        con = duckdb.connect(str(path), read_only=True)
        try:
            return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                    for t in ("leads", "events", "outcomes", "mql_feedback")}
        finally:
            con.close()

    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    generate_crm(TINY, 7, a, progress=True)
    generate_crm(TINY, 7, b, progress=False)
    assert rows(a) == rows(b)


def test_bootstrap_same_intervals_with_bar(capsys) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    probs = {"m": np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)}
    quiet = bootstrap_ci(y, probs, n_boot=30, seed=1, progress=False)
    assert capsys.readouterr().err == ""
    loud = bootstrap_ci(y, probs, n_boot=30, seed=1, progress=True)
    out, err = capsys.readouterr()
    assert loud == quiet
    assert out == "" and "bootstrap" in err


def test_cli_generate_without_terminal_prints_no_bar(tmp_path: Path) -> None:
    from leadscore.cli import app

    params = tmp_path / "params.yaml"
    params.write_text("seed: 3\ngenerate:\n  n_leads: 1000\n  chunk_leads: 1000\n")
    result = CliRunner().invoke(app, ["generate", "--params", str(params),
                                      "--out", str(tmp_path / "crm.duckdb")])
    assert result.exit_code == 0, result.output
    assert _no_bar(result.stderr) and _no_bar(result.stdout)
    assert result.stdout.startswith("wrote ")


def test_stage_generate_without_terminal_prints_no_bar(tmp_path: Path, capfd) -> None:
    from pipelines.generate import app

    params = tmp_path / "params.yaml"
    params.write_text("seed: 3\ngenerate:\n  n_leads: 1000\n  chunk_leads: 1000\n")
    result = CliRunner().invoke(app, ["--params", str(params), "--out", str(tmp_path / "crm.duckdb"),
                                      "--metrics", str(tmp_path / "generate.json")])
    assert result.exit_code == 0, result.output
    out, err = capfd.readouterr()
    assert _no_bar(result.stderr) and _no_bar(err) and _no_bar(out)


def test_forced_tuning_bar_counts_trials_on_stderr(capsys) -> None:
    from leadscore.modeling.splits import time_split
    from leadscore.modeling.tuning import tune_lightgbm
    from tests.builders import SPLIT_KW, synthetic_catalog, synthetic_table

    split = time_split(synthetic_table(n_per_month=60, strength=3.0), **SPLIT_KW)
    cat = synthetic_catalog()
    result = tune_lightgbm(split.train, split.train["label"], split.valid, split.valid["label"],
                           feature_names=cat.names, categorical_features=cat.categorical,
                           n_trials=3, timeout_s=60, seed=0, max_boost_rounds=30,
                           early_stopping_rounds=5, n_startup_trials=2, pruning_warmup_rounds=5,
                           progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "optuna" in err and "3/3" in err and result.n_trials == 3


def test_quiet_turns_off_duckdbs_own_progress_bar():
    import duckdb

    from leadscore.io import quiet

    con = duckdb.connect()
    con.execute("SET enable_progress_bar=true")
    assert quiet(con).execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
