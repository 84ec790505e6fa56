"""Erasure (issue 13, deliverable 5): `leadscore forget` removes leads from the published
scores and quarantine in every format, the staged runs, the score history and the cached
features, records only a keyed hash and the time, and the canary search (raw bytes and
decoded strings of every file) finds the ids nowhere afterwards."""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app as cli
from leadscore.config import MonitorConfig
from leadscore.monitor.history import History, read_table
from leadscore.serve import batch
from leadscore.serve.batch import score_leads
from leadscore.serve.erasure import KEY_ENV, lead_hash, read_lead_ids
from leadscore.serve.publish import read_quarantine, read_scores
from tests.builders import CANARIES, canary_hits
from tests.serve.trained import AS_OF, DOMAINS, FEATURES

pytestmark = pytest.mark.slow  # trains LightGBM or runs whole stages; `make test-fast` skips it

runner = CliRunner()


@pytest.fixture
def project(trained, tmp_path, monkeypatch):  # noqa: F811
    """Scores in three formats (with a quarantined lead), a crashed staged run, a history
    with per-lead rows and a cached feature table, all under one folder."""
    monkeypatch.setenv(KEY_ENV, "test-key")
    root = tmp_path / "project"
    (root / "processed").mkdir(parents=True)
    src = tmp_path / "crm.duckdb"  # the source is the CRM's: outside the searched folder
    shutil.copyfile(trained.raw, src)
    with duckdb.connect(str(src)) as con:
        quarantined = con.execute("SELECT max(lead_id) FROM events").fetchall()[0][0]
        con.execute("UPDATE events SET occurred_at = NULL WHERE lead_id = ?", [quarantined])
    trained.table.to_parquet(root / "processed" / "train.parquet")
    history = History(root / "monitoring" / "history.duckdb", MonitorConfig(n_bootstrap=20),
                      reference=lambda: trained.table, reference_source="test")
    kw = dict(source_kind="duckdb", source=src, model_uri=str(trained.scorer), as_of=AS_OF, features=FEATURES,
              free_mail_domains=DOMAINS, chunk_size=100, progress=False)
    outs = [root / "scores" / f"scores.{fmt}" for fmt in ("parquet", "csv", "duckdb")]
    for out in outs:
        score_leads(out=out, history=history if out.suffix == ".parquet" else None, **kw)
    with monkeypatch.context() as m:  # a crashed run: its staged parts hold score rows
        m.setattr(batch, "publish", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("killed")))
        with pytest.raises(RuntimeError):
            score_leads(out=outs[0], run_id="crashed", **kw)
    scores = read_scores(outs[0])
    cached = set(pd.read_parquet(root / "processed" / "train.parquet")["lead_id"])
    scored = sorted(set(scores["lead_id"]) & cached)[len(scores) // 3]
    return {"root": root, "outs": outs, "history": history.path, "scored": scored,
            "quarantined": quarantined, "n": len(scores), "n_q": len(read_quarantine(outs[0]))}


def test_forget_removes_the_leads_from_every_output_and_records_only_a_hash(project, tmp_path):
    root, victims = project["root"], (project["scored"], project["quarantined"])
    before = canary_hits(root, exclude=set(), needles=victims, raw_bytes=True)
    assert any(project["scored"] in hits for hits in before.values())  # positive control: the search finds them
    assert any(project["quarantined"] in hits for hits in before.values())
    assert any(".runs" in f and "parts" in f for f in before)  # the crashed run's parts
    assert any("history.duckdb" in f for f in before) and any("train.parquet" in f for f in before)
    ids = tmp_path / "ids.txt"  # outside the project: it holds the ids
    ids.write_text(f"\n  {project['quarantined']}  \n")
    args = ["forget", "--lead-id", project["scored"], "--from-file", str(ids),
            "--history", str(project["history"]), "--features", str(root / "processed")]
    for out in project["outs"]:
        args += ["--out", str(out)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert canary_hits(root, exclude=set(), needles=victims, raw_bytes=True) == {}
    assert canary_hits(root, exclude=set()) == {}  # and no canary PII either
    for v in victims:
        assert v not in result.output
    for out in project["outs"]:  # everything else is still there, and readable by the reader rule
        assert len(read_scores(out)) == project["n"] - 1
        assert len(read_quarantine(out)) == project["n_q"] - 1
    erasures = read_table(project["history"], "erasures")
    assert sorted(erasures["lead_hash"]) == sorted(lead_hash(v, b"test-key") for v in victims)
    assert erasures["erased_at"].notna().all() and list(erasures.columns) == ["lead_hash", "erased_at"]
    assert len(read_table(project["history"], "scored_leads")) == project["n"] - 1
    again = runner.invoke(cli, args)  # forgetting twice is harmless
    assert again.exit_code == 0, again.output
    assert len(read_scores(project["outs"][0])) == project["n"] - 1


def test_forget_without_an_id_is_a_usage_error_and_an_unreadable_list_bad_input(tmp_path):
    assert runner.invoke(cli, ["forget"]).exit_code == 2
    r = runner.invoke(cli, ["forget", "--from-file", str(tmp_path / "none.txt")])
    assert r.exit_code == 1 and "none.txt" in r.output
    history = tmp_path / "history.duckdb"  # a mistyped output folder: refused, nothing touched
    r = runner.invoke(cli, ["forget", "--lead-id", "L1", "--out", str(tmp_path / "nope" / "s.parquet"),
                            "--history", str(history)])
    assert r.exit_code == 1 and "does not exist" in r.output and not history.exists()


def test_read_lead_ids_merges_and_deduplicates(tmp_path):
    f = tmp_path / "ids.txt"
    f.write_text("L2\n\nL1\n")
    assert read_lead_ids(["L1", " L3 "], f) == ["L1", "L3", "L2"]
    assert CANARIES  # the canary search is the same helper the privacy tests use
