"""Bad input, bad model, a killed run, and privacy: each failure names file and column,
publishes nothing, exits with the documented code; no canary PII anywhere."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import mlflow
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.cli import app as cli
from leadscore.schema import CANARY_EMAIL
from leadscore.serve.export import export_scorer
from tests.builders import CANARIES, canary_hits, strings_in, write_crm

pytestmark = pytest.mark.slow  # trains LightGBM or runs whole stages; `make test-fast` skips it

runner = CliRunner()


def _frames(t) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(t.raw), read_only=True) as con:
        return {n: con.execute(f"SELECT * FROM {n}").df() for n in ("leads", "events", "outcomes")}


def _run(src: Path, out: Path, model: Path | str, *extra: str, kind: str = "parquet", params: str = "params.yaml"):
    args = ["score", "--as-of", "2025-07-01", "--source-kind", kind, "--source", str(src), "--out", str(out),
            "--model", str(model), "--no-progress", "--params", params, *extra]
    return runner.invoke(cli, args)


@pytest.fixture
def folder(trained, tmp_path):  # noqa: F811
    """Write a variant of the source as a Parquet folder: folder(change) -> path."""
    def make(change=None, cast=True) -> Path:
        frames = _frames(trained)
        if change:
            change(frames)
        return write_crm(frames, "parquet", tmp_path / "src", cast=cast)
    return make


def _drop_created(f):
    f["leads"] = f["leads"].drop(columns="created_at")


def _bad_type(f):
    f["leads"]["company_size"] = f["leads"]["company_size"].astype(object)
    f["leads"].loc[:30, "company_size"] = "lots"


def _unknown_event(f):
    f["events"].loc[:4, "event_type"] = "webinar_attended_twice"


def _null_created(f):
    f["leads"].loc[:100, "created_at"] = pd.NaT


def _duplicate_ids(f):
    f["leads"] = pd.concat([f["leads"], f["leads"].head(20)], ignore_index=True)


def _empty(f):
    f["leads"] = f["leads"].head(0)


@pytest.mark.parametrize(("change", "cast", "file", "needle"), [
    (_drop_created, True, "leads.parquet", "created_at"),
    (_bad_type, False, "leads.parquet", "company_size"),
    (_unknown_event, True, "events.parquet", "event_type"),
    (_null_created, True, "leads.parquet", "created_at"),
    (_duplicate_ids, True, "leads.parquet", "lead_id"),
    (_empty, True, "leads.parquet", "empty"),
], ids=["missing_column", "wrong_type", "unknown_category", "nulls", "duplicate_ids", "empty"])
def test_bad_input_fails_clearly_and_publishes_nothing(trained, folder, tmp_path, change, cast, file, needle):  # noqa: F811
    src = folder(change, cast)
    out = tmp_path / "out" / "scores.parquet"
    result = _run(src, out, trained.scorer)
    assert result.exit_code == 1, result.output
    assert file in result.output and needle in result.output
    assert not out.exists() and not out.with_name("scores.quarantine.parquet").exists()


def test_unreadable_file(trained, folder, tmp_path):  # noqa: F811
    src = folder()
    (src / "events.parquet").write_bytes(b"this is not parquet")
    out = tmp_path / "scores.parquet"
    result = _run(src, out, trained.scorer)
    assert result.exit_code == 1 and "events.parquet" in result.output
    assert not out.exists()


def test_missing_model(trained, tmp_path):  # noqa: F811
    result = _run(trained.raw, tmp_path / "s.parquet", tmp_path / "no-such-model", kind="duckdb")
    assert result.exit_code == 3 and "no-such-model" in result.output and "not found" in result.output
    assert not (tmp_path / "s.parquet").exists()


def test_model_whose_signature_does_not_match(trained, tmp_path):  # noqa: F811
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["features"]["windows_days"] = [7, 30]  # the job would compute other columns
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = _run(trained.raw, tmp_path / "s.parquet", trained.scorer, kind="duckdb",
                  params=str(tmp_path / "params.yaml"))
    assert result.exit_code == 3
    assert "signature" in result.output and "pricing_page_view_90d" in result.output
    assert not (tmp_path / "s.parquet").exists()


def test_usage_error_exits_2(trained, tmp_path):  # noqa: F811
    result = _run(trained.raw, tmp_path / "s.xlsx", trained.scorer, kind="duckdb")
    assert result.exit_code == 2 and "pass --format" in result.output
    result = _run(trained.raw, tmp_path / "s.parquet", trained.scorer, "--format", "xlsx", kind="duckdb")
    assert result.exit_code == 2 and "unknown output format 'xlsx'" in result.output
    assert not (tmp_path / "s.parquet").exists()


def test_bad_score_setting_exits_2(trained, tmp_path):  # noqa: F811
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["score"]["memory_limit"] = "lots"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = _run(trained.raw, tmp_path / "s.parquet", trained.scorer, kind="duckdb",
                  params=str(tmp_path / "params.yaml"))
    assert result.exit_code == 2 and "score.memory_limit" in result.output


def test_internal_error_exits_5(trained, tmp_path, monkeypatch):  # noqa: F811
    from leadscore.serve import batch

    def boom(**kw):
        raise RuntimeError("a bug")
    monkeypatch.setattr(batch, "score_leads", boom)
    result = _run(trained.raw, tmp_path / "s.parquet", trained.scorer, kind="duckdb")
    assert result.exit_code == 5 and "internal error (RuntimeError)" in result.output


def test_sigkill_keeps_the_old_output_and_a_rerun_finishes_once(trained, tmp_path):  # noqa: F811
    out = tmp_path / "scores.parquet"
    ok = _run(trained.raw, out, trained.scorer, "--chunk-size", "100", "--run-id", "old", kind="duckdb")
    assert ok.exit_code == 0, ok.output
    old = out.read_bytes()
    params = tmp_path / "params.yaml"  # the defaults; no run recorded in the project's score history
    params.write_text(f"monitor: {{history: '{tmp_path / 'history.duckdb'}', record: false}}\n")
    cmd = [sys.executable, "-m", "leadscore.cli", "score", "--as-of", "2025-07-01", "--source-kind", "duckdb",
           "--source", str(trained.raw), "--out", str(out), "--model", str(trained.scorer), "--no-progress",
           "--chunk-size", "100", "--run-id", "new", "--chunk-pause-s", "0.5", "--params", str(params)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / ".scores.parquet.runs" / "new" / "parts"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts.glob("part-*.parquet"))) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes() == old  # the consumer still sees the previous result
    done = len(list(parts.glob("part-*.parquet")))
    assert 2 <= done < 7
    again = _run(trained.raw, out, trained.scorer, "--chunk-size", "100", "--run-id", "new", kind="duckdb")
    assert again.exit_code == 0, again.output
    new = pd.read_parquet(out)
    assert new["lead_id"].is_unique and set(new["run_id"]) == {"new"}
    assert sorted(new["lead_id"]) == sorted(pd.read_parquet(io.BytesIO(old))["lead_id"])


def test_no_canary_pii_in_any_output_log_or_mlflow_run(trained, folder, tmp_path, monkeypatch, caplog):  # noqa: F811
    root = tmp_path / "run"
    root.mkdir()
    monkeypatch.chdir(root)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlruns.db'}")
    mlflow.set_experiment("privacy")
    m = trained.models
    export_scorer(m / "lightgbm", grading=m / "grading.json", catalog=m / "feature_catalog.json",
                  rules=m / "rules.json", out=root / "scorer", register_as=("leadscore", "champion"))
    logs = []
    for fmt in ("parquet", "csv", "duckdb"):
        r = _run(trained.raw, root / f"out/scores.{fmt}", "models:/leadscore@champion", kind="duckdb",
                 params=str(Path(__file__).parents[2] / "params.yaml"))
        assert r.exit_code == 0, r.output
        logs.append(r.output)

    def canary_events(f):  # a failing run whose bad values ARE the canary
        f["events"].loc[:50, "event_type"] = CANARY_EMAIL
    bad = folder(canary_events)
    r = _run(bad, root / "out/bad.parquet", root / "scorer", params=str(Path(__file__).parents[2] / "params.yaml"))
    assert r.exit_code == 1
    logs += [r.output, caplog.text]
    assert all(c in strings_in(trained.raw) for c in CANARIES)  # positive control
    assert (root / "mlruns").is_dir() and (root / "mlruns.db").is_file()
    assert canary_hits(root, exclude=set()) == {}
    assert not [c for c in CANARIES if c in "\n".join(logs)]
