"""The batch job, hardened (issue 13, deliverable 4): resume only what matches, scores and
quarantine published as one unit behind a manifest, fsync before rename, model folders
swapped and verified at load, a content fingerprint, quoted SQL, invariants before
publishing, a kill during publish, and peak memory under the configured bound."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore import io as lio
from leadscore.cli import app as cli
from leadscore.errors import ConfigError, InputError, ModelError
from leadscore.serve import batch, publish
from leadscore.serve.batch import input_fingerprint, score_leads, staging_dir
from leadscore.serve.publish import (
    published_file,
    published_manifest_path,
    read_quarantine,
    read_scores,
)
from tests.serve.trained import AS_OF, DOMAINS, FEATURES

pytestmark = pytest.mark.slow  # trains LightGBM or runs whole stages; `make test-fast` skips it

runner = CliRunner()


def _score(t, out, **kw):
    args = dict(source_kind="duckdb", source=t.raw, out=out, model_uri=str(t.scorer), as_of=AS_OF,
                features=FEATURES, free_mail_domains=DOMAINS, chunk_size=100, progress=False)
    return score_leads(**{**args, **kw})


def _copy_source(t, dst: Path) -> Path:
    shutil.copyfile(t.raw, dst)
    return dst


class _Crash(RuntimeError):
    pass


def _crash_at_publish(monkeypatch):
    def boom(*a, **k):
        raise _Crash("killed before publishing")
    monkeypatch.setattr(batch, "publish", boom)


def _parts(out: Path, run_id: str) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted((staging_dir(out, run_id) / "parts").glob("part-*"))}


# ---- a. resume only a matching run --------------------------------------------------------

def test_a_rerun_after_a_crash_reuses_every_finished_part(trained, tmp_path, monkeypatch):  # noqa: F811
    out = tmp_path / "scores.parquet"
    with monkeypatch.context() as m:
        _crash_at_publish(m)
        with pytest.raises(_Crash):
            _score(trained, out, run_id="r1")
    before = _parts(out, "r1")
    assert len(before) >= 5
    seen = {}
    real = batch.publish

    def spy(parts, *a, **k):
        seen.update({p.name: p.stat().st_mtime_ns for p in sorted(parts.glob("part-*"))})
        return real(parts, *a, **k)
    monkeypatch.setattr(batch, "publish", spy)
    result = _score(trained, out, run_id="r1")
    assert result.chunks_resumed == result.chunks == len(before)
    assert seen == before  # the very same files: nothing was rescored
    assert read_scores(out)["lead_id"].is_unique


@pytest.mark.parametrize("change", ["input", "model", "as_of"])
def test_a_staged_run_for_another_input_model_or_date_starts_over(trained, kinds, tmp_path, monkeypatch,  # noqa: F811
                                                                    change, caplog):
    src = _copy_source(trained, tmp_path / "crm.duckdb")
    out = tmp_path / "scores.parquet"
    with monkeypatch.context() as m:
        _crash_at_publish(m)
        with pytest.raises(_Crash):
            _score(trained, out, source=src, run_id="same")
    stale = staging_dir(out, "same") / "parts" / "part-99999.parquet"  # a leftover that must not publish
    shutil.copyfile(next(iter((staging_dir(out, "same") / "parts").glob("part-*.parquet"))), stale)
    kw = {"source": src, "run_id": "same"}
    if change == "input":
        with duckdb.connect(str(src)) as con:
            con.execute("DELETE FROM events WHERE lead_id = (SELECT min(lead_id) FROM events)")
    elif change == "model":
        kw["model_uri"] = str(kinds.scorers["logistic"])
    else:
        kw["as_of"] = AS_OF.replace(month=6)
    with caplog.at_level("WARNING"):
        result = _score(trained, out, **kw)
    assert result.chunks_resumed == 0
    assert "starting over" in caplog.text
    df = read_scores(out)
    assert df["lead_id"].is_unique and len(df) == result.leads_scored
    manifest = json.loads((staging_dir(out, "same") / "manifest.json").read_text())
    assert manifest["model_version"] == result.model_version and manifest["as_of"] == result.as_of.isoformat()


# ---- b. one atomic unit: scores + quarantine behind a manifest written last -----------------

@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_the_manifest_names_both_files_with_rows_and_hashes(trained, tmp_path, fmt):  # noqa: F811
    out = tmp_path / f"scores.{fmt}"
    result = _score(trained, out)
    doc = json.loads(published_manifest_path(out).read_text())
    assert doc["run_id"] == result.run_id and doc["format"] == fmt
    for key, plain in (("scores", out), ("quarantine", out.with_name(f"scores.quarantine.{fmt}"))):
        f = tmp_path / doc[key]["path"]
        assert doc[key]["sha256"] == lio.file_sha256(f)
        assert os.path.samefile(f, plain)  # the fixed-path file is the same bytes (a hard link)
    assert doc["scores"]["rows"] == result.leads_scored == len(read_scores(out))
    assert doc["quarantine"]["rows"] == len(read_quarantine(out))


def test_a_reader_refuses_a_file_changed_after_publishing(trained, tmp_path):  # noqa: F811
    out = tmp_path / "scores.parquet"
    _score(trained, out)
    f = published_file(out)
    with open(f, "ab") as fh:
        fh.write(b"x")
    with pytest.raises(InputError, match="SHA-256"):
        read_scores(out)


def test_older_published_pairs_are_removed_after_the_new_manifest(trained, tmp_path):  # noqa: F811
    out = tmp_path / "scores.parquet"
    _score(trained, out, run_id="one")
    _score(trained, out, run_id="two")
    gens = list(publish.generations_dir(out).iterdir())
    assert len(gens) == 1 and gens[0].name.startswith("two-")
    assert set(read_scores(out)["run_id"]) == {"two"}


def test_a_failed_rename_during_publish_leaves_the_old_result(trained, tmp_path, monkeypatch):  # noqa: F811
    out = tmp_path / "scores.parquet"
    _score(trained, out, run_id="old")
    old_scores, old_q = read_scores(out), read_quarantine(out)
    plain = out.read_bytes()
    real, calls = os.replace, []

    def flaky(a, b):  # the second file of the new pair cannot be renamed into place
        calls.append(b)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(a, b)
    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OSError, match="disk full"):
        _score(trained, out, run_id="new")
    monkeypatch.setattr(os, "replace", real)
    pd.testing.assert_frame_equal(read_scores(out), old_scores)
    pd.testing.assert_frame_equal(read_quarantine(out), old_q)
    assert out.read_bytes() == plain
    assert len(list(publish.generations_dir(out).iterdir())) == 1  # the half-written pair is gone


_KILL = textwrap.dedent("""
    import os, sys
    from leadscore.serve import publish
    at = sys.argv.pop(1)
    if at == "commit":  # die just before the manifest: both new files are complete on disk
        publish._commit = lambda *a, **k: os._exit(9)
    else:  # die between the scores' and the quarantine's fixed-path links
        real, n = publish._link_plain, []
        def link(src, dst):
            n.append(dst)
            if len(n) == 2:
                os._exit(9)
            real(src, dst)
        publish._link_plain = link
    from leadscore.cli import app
    app()
""")


@pytest.mark.parametrize("at", ["commit", "links"])
def test_killing_the_job_during_publish_keeps_a_complete_result(trained, tmp_path, at):  # noqa: F811
    out = tmp_path / "scores.parquet"
    q_plain = out.with_name("scores.quarantine.parquet")
    params = tmp_path / "params.yaml"
    params.write_text(f"monitor: {{history: '{tmp_path / 'history.duckdb'}', record: false}}\n")
    src = _copy_source(trained, tmp_path / "crm.duckdb")
    args = ["score", "--as-of", "2025-07-01", "--source-kind", "duckdb", "--source", str(src),
            "--out", str(out), "--model", str(trained.scorer), "--no-progress", "--params", str(params)]
    ok = runner.invoke(cli, [*args, "--run-id", "old"])
    assert ok.exit_code == 0, ok.output
    old, old_q, old_plain, old_q_plain = read_scores(out), read_quarantine(out), out.read_bytes(), q_plain.read_bytes()
    with duckdb.connect(str(src)) as con:  # the next run quarantines one more lead: a different pair
        con.execute("UPDATE events SET occurred_at = NULL WHERE lead_id = (SELECT max(lead_id) FROM events)")
    proc = subprocess.run([sys.executable, "-c", _KILL, at, *args, "--run-id", "new"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr[-2000:]
    if at == "commit":  # the manifest still names the old pair, and the fixed paths are the old files
        pd.testing.assert_frame_equal(read_scores(out), old)
        pd.testing.assert_frame_equal(read_quarantine(out), old_q)
        assert out.read_bytes() == old_plain and q_plain.read_bytes() == old_q_plain
    else:  # committed: manifest readers see the new pair whole; the fixed-path quarantine is older
        new, new_q = read_scores(out), read_quarantine(out)
        assert set(new["run_id"]) == {"new"} and set(new_q["run_id"]) == {"new"}
        assert len(new_q) == len(old_q) + 1
        assert set(pd.read_parquet(out)["run_id"]) == {"new"}
        assert q_plain.read_bytes() == old_q_plain  # never newer than the scores beside it
    again = runner.invoke(cli, [*args, "--run-id", "new"])  # a rerun finishes the job
    assert again.exit_code == 0, again.output
    assert set(read_scores(out)["run_id"]) == {"new"} and set(read_quarantine(out)["run_id"]) == {"new"}
    assert set(pd.read_parquet(q_plain)["run_id"]) == {"new"}


def test_duckdb_output_swaps_scores_quarantine_and_manifest_in_one_transaction(trained, tmp_path):  # noqa: F811
    out = tmp_path / "scores.duckdb"
    result = _score(trained, out, table="lead_scores")
    with duckdb.connect(str(out), read_only=True) as con:
        m = con.execute("SELECT run_id, scores_rows, quarantine_rows FROM lead_scores_manifest").fetchall()
        n = con.execute("SELECT count(*) FROM lead_scores").fetchall()[0][0]
    assert m == [(result.run_id, n, len(read_quarantine(out, table="lead_scores")))]


# ---- c. fsync before rename; folders swapped, never deleted first ---------------------------

def test_atomic_writes_are_flushed_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                 real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(b))), real_replace(a, b))[1])
    target = tmp_path / "x.json"
    lio.write_json({"a": 1}, target)
    kinds = [e[0] for e in events]
    i = kinds.index("replace")
    assert any(k == "fsync" and ".x.json." in p for k, p in events[:i])  # the file, before
    assert ("fsync", str(tmp_path)) in events[i + 1:]  # its folder, after


def test_a_folder_is_swapped_in_whole_and_the_old_one_deleted_only_after(tmp_path, monkeypatch):
    target = tmp_path / "model"
    target.mkdir()
    (target / "a.txt").write_text("old")
    seen = []
    real = shutil.rmtree

    def rmtree(path, *a, **k):
        seen.append((Path(path).name, (target / "a.txt").read_text()))
        return real(path, *a, **k)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    with lio.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "a.txt").write_text("new")
    assert (target / "a.txt").read_text() == "new"
    assert seen and all(text == "new" for _, text in seen)  # the new folder was in place first
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failed_export_leaves_the_old_model_folder(trained, tmp_path, monkeypatch):  # noqa: F811
    import mlflow.pyfunc

    from leadscore.serve.export import export_scorer

    out = tmp_path / "scorer"
    shutil.copytree(trained.scorer, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def half(path, **kw):  # a crash half-way through writing the new model
        Path(path).mkdir(parents=True)
        (Path(path) / "MLmodel").write_text("half")
        raise OSError("killed")
    monkeypatch.setattr(mlflow.pyfunc, "save_model", half)
    m = trained.models
    with pytest.raises(OSError):
        export_scorer(m / "lightgbm", grading=m / "grading.json", catalog=m / "feature_catalog.json",
                      rules=m / "rules.json", out=out)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scorer"]


# ---- d. a content fingerprint -----------------------------------------------------------------

def test_the_content_fingerprint_follows_the_bytes_not_the_clock(tmp_path):
    f = tmp_path / "crm.duckdb"
    f.write_bytes(b"a" * 1000)
    stat0, content0 = input_fingerprint("duckdb", f, "stat"), input_fingerprint("duckdb", f, "content")
    os.utime(f, ns=(1, 1))  # touched: same bytes
    assert input_fingerprint("duckdb", f, "stat") != stat0
    assert input_fingerprint("duckdb", f, "content") == content0
    f.write_bytes(b"b" * 1000)  # edited in place, size and mtime kept
    os.utime(f, ns=(1, 1))
    assert input_fingerprint("duckdb", f, "content") != content0
    with pytest.raises(ConfigError, match="score.fingerprint"):
        input_fingerprint("duckdb", f, "sha")


def test_content_fingerprint_run_ids_survive_a_copy_of_the_input(trained, tmp_path):  # noqa: F811
    a = _copy_source(trained, tmp_path / "a.duckdb")
    os.utime(a, ns=(10**18, 10**18))
    r1 = _score(trained, tmp_path / "s1.parquet", source=a, fingerprint_mode="content")
    b = tmp_path / "b"
    b.mkdir()
    b = _copy_source(trained, b / "a.duckdb")
    r2 = _score(trained, tmp_path / "s2.parquet", source=b, fingerprint_mode="content")
    assert r1.run_id == r2.run_id
    r3 = _score(trained, tmp_path / "s3.parquet", source=b)
    assert r3.run_id != r2.run_id  # stat: another path and mtime


# ---- e. identifiers and paths in SQL ------------------------------------------------------------

def test_paths_with_quotes_and_odd_table_names(trained, tmp_path):  # noqa: F811
    odd = tmp_path / "it's a \"folder\""
    odd.mkdir()
    src = _copy_source(trained, odd / "o'crm.duckdb")
    for fmt in ("parquet", "csv", "duckdb"):
        out = odd / f"sc'ores.{fmt}"
        r = _score(trained, out, source=src)
        assert len(read_scores(out)) == r.leads_scored
    with pytest.raises(ConfigError, match="not a table name"):
        _score(trained, odd / "x.duckdb", source=src, table='scores"; DROP TABLE leads; --')
    result = runner.invoke(cli, ["score", "--out", str(tmp_path / "s.duckdb"), "--table", "a b"])
    assert result.exit_code == 2 and "not a table name" in result.output


# ---- f. the model's content hash, verified before loading -----------------------------------------

@pytest.mark.parametrize("tamper", ["booster", "code"])
def test_a_tampered_model_folder_exits_3_and_publishes_nothing(trained, tmp_path, tamper):  # noqa: F811
    model = tmp_path / "model"
    shutil.copytree(trained.scorer, model)
    if tamper == "booster":
        f = model / "artifacts" / "model.txt"
        f.write_text(f.read_text().replace("learning_rate", "learning_rate ", 1))
    else:
        (model / "model_code.py").write_text((model / "model_code.py").read_text() + "\nprint('pwned')\n")
    out = tmp_path / "s.parquet"
    result = runner.invoke(cli, ["score", "--as-of", "2025-07-01", "--source-kind", "duckdb", "--source",
                                 str(trained.raw), "--out", str(out), "--model", str(model), "--no-progress"])
    assert result.exit_code == 3, result.output
    assert ("do not match its recorded version" if tamper == "booster" else "not leadscore's") in result.output
    assert "pwned" not in result.output
    assert not out.exists()
    assert batch.verify_model_folder(trained.scorer) == batch.model_version_of(batch.load_scorer_model(str(trained.scorer)))


# ---- g. invariants before publishing -----------------------------------------------------------

class _Skewed:
    def __init__(self, inner, field, value):
        self.inner, self.field, self.value = inner, field, value

    def score_arrow(self, x):
        scored, reasons = self.inner.score_arrow(x)
        scored = scored.copy()
        scored.loc[scored.index[0], self.field] = self.value
        return scored, reasons


@pytest.mark.parametrize(("field", "value", "error", "says"), [
    ("probability", 1.5, ModelError, "outside [0, 1]"),
    ("grade", "E9", ModelError, "A1..D4"),
])
def test_invalid_scores_publish_nothing(trained, tmp_path, monkeypatch, field, value, error, says):  # noqa: F811
    real = batch.inner_scorer
    monkeypatch.setattr(batch, "inner_scorer", lambda m: _Skewed(real(m), field, value))
    out = tmp_path / "s.parquet"
    with pytest.raises(error, match=says.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        _score(trained, out)
    assert not out.exists() and not published_manifest_path(out).exists()


@pytest.mark.parametrize("how", ["drop", "duplicate"])
def test_a_lead_missing_or_scored_twice_publishes_nothing(trained, tmp_path, monkeypatch, how):  # noqa: F811
    real, calls = batch.build_features, []

    def features(con, dates, **kw):
        df = real(con, dates, **kw)
        calls.append(1)
        if len(calls) == 2 and len(df):
            df = df.iloc[1:] if how == "drop" else pd.concat([df, df.iloc[:1]], ignore_index=True)
        return df
    monkeypatch.setattr(batch, "build_features", features)
    out = tmp_path / "s.parquet"
    with pytest.raises(InputError, match="not scored" if how == "drop" else "more than once"):
        _score(trained, out)
    assert not out.exists() and not published_manifest_path(out).exists()


# ---- j. peak memory under the configured bound ---------------------------------------------------

_MEMORY = textwrap.dedent("""
    import json, resource, sys
    from leadscore.config import FeaturesConfig, GenerateConfig, IngestConfig
    from leadscore.data.synthetic import generate_crm
    from leadscore.serve import batch
    model, root, chunk, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    generate_crm(GenerateConfig(n_leads=50_000, chunk_leads=10_000), 3, root + "/crm.duckdb")
    batch.load_scorer_model(model)  # imports and one model in memory: the baseline
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = batch.score_leads(source_kind="duckdb", source=root + "/crm.duckdb", out=root + "/s.parquet",
                          model_uri=model, as_of=None, features=FeaturesConfig(),
                          free_mail_domains=IngestConfig().free_mail_domains, chunk_size=chunk,
                          memory_limit=limit, threads=1, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"base_kb": base, "peak_kb": peak, "leads": r.leads_scored, "leads_in": r.leads_in,
                      "chunks": r.chunks}))
""")
CHUNK, LIMIT_MB = 5_000, 128
KB_PER_CHUNK_LEAD = 10  # features, scores and reasons of one lead in Python, with room to spare
SLACK_MB = 32  # Arrow / pandas allocator slack


def test_peak_memory_stays_under_the_configured_bound_on_50k_leads(trained, tmp_path):  # noqa: F811
    proc = subprocess.run([sys.executable, "-c", _MEMORY, str(trained.scorer), str(tmp_path), str(CHUNK),
                           f"{LIMIT_MB}MB"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["leads_in"] == 50_000 and got["leads"] > 2 * CHUNK and got["chunks"] == 10  # many chunks
    bound_kb = (LIMIT_MB + SLACK_MB) * 1024 + CHUNK * KB_PER_CHUNK_LEAD
    grew_kb = got["peak_kb"] - got["base_kb"]
    assert grew_kb < bound_kb, (grew_kb // 1024, bound_kb // 1024)
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss > 0
