"""Incremental scoring: a full run followed by incremental runs gives the table a full run on
the same data gives (at the same as_of: every column but run_id and scored_at)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from leadscore.serve.batch import score_leads
from leadscore.serve.publish import read_quarantine, read_scores
from tests.serve.trained import AS_OF, DOMAINS, FEATURES

pytestmark = pytest.mark.slow  # uses the session's trained LightGBM

# which run scored a row, and when: the only columns allowed to differ from a full run
RUN_COLUMNS = ["run_id", "scored_at"]
STAMPS = {"leads": "created_at", "events": "occurred_at", "outcomes": "stage_at", "mql_feedback": "decided_at"}


def _crm(raw: Path, path: Path, until: dt.datetime, *, null_source: str | None = None) -> Path:
    """The CRM as it was at `until`: every record stamped before it (a lead's events and
    outcomes only once the lead exists). `null_source`: that lead's source is blanked (it is
    quarantined)."""
    with duckdb.connect(str(path)) as con:
        con.execute(f"ATTACH '{raw}' AS raw (READ_ONLY)")
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'raw'").fetchall()]
        con.execute("CREATE TABLE leads AS SELECT * FROM raw.leads WHERE created_at < ?", [until])
        for t in tables:
            if t == "leads":
                continue
            stamp = STAMPS.get(t)
            where = f"WHERE {stamp} < ? AND lead_id IN (SELECT lead_id FROM leads)" if stamp else ""
            con.execute(f"CREATE TABLE {t} AS SELECT * FROM raw.{t} {where}", [until] if stamp else [])
        if null_source:
            con.execute("UPDATE leads SET source = NULL WHERE lead_id = ?", [null_source])
    return path


def _score(t, source, out, **kw):
    args = dict(source_kind="duckdb", source=source, out=out, model_uri=str(t.scorer), as_of=AS_OF,
                features=FEATURES, free_mail_domains=DOMAINS, chunk_size=150, progress=False)
    return score_leads(**{**args, **kw})


def _table(out: Path) -> pd.DataFrame:
    df = read_scores(out).sort_values("lead_id").reset_index(drop=True)
    df["reasons"] = df["reasons"].map(lambda rs: [dict(r) for r in rs])
    return df


@pytest.mark.parametrize("fmt", ["parquet", "csv", "duckdb"])
def test_full_run_then_incremental_runs_equal_a_full_run(trained, tmp_path, fmt):
    t1, t15, t2 = AS_OF - dt.timedelta(days=12), AS_OF - dt.timedelta(days=5), AS_OF + dt.timedelta(hours=6)
    chain, full = tmp_path / f"chain.{fmt}", tmp_path / f"full.{fmt}"
    first = _score(trained, _crm(trained.raw, tmp_path / "d1.duckdb", t1), chain)
    assert first.summary["mode"] == "full" and first.summary["watermark"] < t1.isoformat()
    before = _table(chain)
    victim = before["lead_id"].iloc[3]  # quarantined in the last CRM: it must leave the table
    mid = _score(trained, _crm(trained.raw, tmp_path / "d15.duckdb", t15), chain, incremental=True)
    assert mid.summary["mode"] == "incremental"
    d2 = _crm(trained.raw, tmp_path / "d2.duckdb", t2, null_source=victim)
    last = _score(trained, d2, chain, incremental=True)
    assert last.summary["mode"] == "incremental" and last.summary["base_run_id"] == mid.run_id
    _score(trained, d2, full)

    got, want = _table(chain), _table(full)
    assert victim not in set(got["lead_id"])
    assert 0 < mid.leads_scored < len(before) and 0 < last.leads_scored < len(want)
    assert last.summary["leads_removed"] >= 2  # the victim, and leads converted, closed or too old
    assert (got["run_id"] != want["run_id"]).all()
    pd.testing.assert_frame_equal(got.drop(columns=RUN_COLUMNS), want.drop(columns=RUN_COLUMNS))
    # the rows this chain did not rescore since the first run are the first run's rows
    assert set(got["run_id"]) <= {first.run_id, mid.run_id, last.run_id}
    q_got, q_want = read_quarantine(chain, fmt), read_quarantine(full, fmt)
    pd.testing.assert_frame_equal(q_got.drop(columns="run_id"), q_want.drop(columns="run_id"))
    assert victim in set(q_got["lead_id"])


def test_incremental_run_without_changes_keeps_the_table(trained, tmp_path):
    src, out = _crm(trained.raw, tmp_path / "d.duckdb", AS_OF), tmp_path / "s.parquet"
    _score(trained, src, out)
    before = _table(out)
    again = _score(trained, src, out, incremental=True)
    # only the lead(s) whose newest record sits exactly at the watermark are rescored (records
    # at or after it count: one arriving later with the same stamp is not missed), to the same row
    assert again.summary["mode"] == "incremental" and again.leads_scored <= 2
    assert again.summary["table_rows"] == len(before)
    pd.testing.assert_frame_equal(_table(out).drop(columns=RUN_COLUMNS), before.drop(columns=RUN_COLUMNS))
    assert again.summary["speed_to_lead"]["leads"] == again.leads_scored


def test_incremental_without_a_published_table_is_a_full_run(trained, tmp_path):
    src, out = _crm(trained.raw, tmp_path / "d.duckdb", AS_OF), tmp_path / "s.parquet"
    result = _score(trained, src, out, changed_since=AS_OF - dt.timedelta(days=3))
    assert result.summary["mode"] == "full" and result.leads_scored == len(read_scores(out))


def test_a_later_as_of_rescores_changed_leads_and_keeps_the_rest(trained, tmp_path):
    """When as_of moves on, unchanged rows keep their earlier as_of and score (lead age and
    recency move with as_of: the nightly full run's job); changed leads equal a full run's."""
    t1, t2 = AS_OF - dt.timedelta(days=7), AS_OF + dt.timedelta(days=7)
    chain, full = tmp_path / "chain.parquet", tmp_path / "full.parquet"
    _score(trained, _crm(trained.raw, tmp_path / "d1.duckdb", t1), chain, as_of=AS_OF)
    before = _table(chain).set_index("lead_id")
    d2 = _crm(trained.raw, tmp_path / "d2.duckdb", t2)
    later = t2 + dt.timedelta(days=1)
    inc = _score(trained, d2, chain, as_of=later, incremental=True)
    _score(trained, d2, full, as_of=later)
    got, want = _table(chain).set_index("lead_id"), _table(full).set_index("lead_id")
    assert list(got.index) == list(want.index)
    new = got["run_id"] == inc.run_id
    assert new.sum() == inc.leads_scored > 0 and (~new).sum() > 0
    cols = [c for c in got.columns if c not in RUN_COLUMNS]
    pd.testing.assert_frame_equal(got.loc[new, cols], want.loc[new, cols])
    pd.testing.assert_frame_equal(got.loc[~new], before.loc[got.index[~new]])


def test_speed_to_lead_is_recorded(trained, tmp_path):
    src, out = _crm(trained.raw, tmp_path / "d.duckdb", AS_OF), tmp_path / "s.parquet"
    scored_at = dt.datetime(2025, 7, 1, 0, 30)
    result = _score(trained, src, out, now=lambda: scored_at)
    speed = result.summary["speed_to_lead"]
    assert speed["leads"] == result.leads_scored
    assert 1800 <= speed["median_s"] <= speed["p95_s"]  # at least the 30 min after as_of
    manifest = next((tmp_path / ".s.parquet.runs").glob("*/manifest.json")).read_text()
    assert '"speed_to_lead"' in manifest and '"median_s"' in manifest


def test_cli_incremental_and_changed_since(trained, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from leadscore.cli import app

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = tmp_path / "params.yaml"
    params.write_text(f"mlflow: {{tracking_uri: 'sqlite:///{tmp_path / 'mlruns.db'}'}}\n")
    src, out = _crm(trained.raw, tmp_path / "d.duckdb", AS_OF), tmp_path / "s.parquet"
    base = ["score", "--params", str(params), "--source-kind", "duckdb", "--source", str(src), "--out", str(out),
            "--model", str(trained.scorer), "--as-of", "2025-07-01", "--chunk-size", "150", "--no-progress"]
    runner = CliRunner()
    full = runner.invoke(app, base)
    assert full.exit_code == 0 and "(full;" in full.output, full.output
    inc = runner.invoke(app, [*base, "--incremental", "--metrics", str(tmp_path / "m.json")])
    assert inc.exit_code == 0 and "(incremental;" in inc.output, inc.output
    since = runner.invoke(app, [*base, "--changed-since", "2025-06-25T00:00:00"])
    assert since.exit_code == 0 and "(incremental;" in since.output, since.output
    bad = runner.invoke(app, [*base, "--changed-since", "yesterday"])
    assert bad.exit_code == 2


def test_report_sentence_reads_the_speed_to_lead_figures():
    from leadscore.report.build import speed_to_lead_section

    got = speed_to_lead_section({"mode": "incremental", "speed_to_lead": {"leads": 1200, "median_s": 150.0,
                                                                          "p95_s": 540.0}})
    assert got == {"available": True, "leads": got["leads"], "median": "2.5 minutes", "p95": "9.0 minutes",
                   "mode": "an incremental"}
    assert speed_to_lead_section({"grades": {"A1": 3}}) == {"available": False}
