"""The synthetic CRM generator: contract, determinism, realism traps and atomic writes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

import leadscore.data.synthetic as gen
from leadscore.config import GenerateConfig, load_params
from leadscore.data.synthetic import (
    generate_chunks,
    generate_crm,
    measure_base_rate,
    write_empty_crm,
)
from leadscore.schema import (
    CANARY_EMAIL,
    CANARY_FIRST_NAME,
    CANARY_LAST_NAME,
    CONTENT_TYPES,
    EVENT_TYPES,
    STAGES,
    TABLES,
)

ROOT = Path(__file__).resolve().parents[2]
TINY = GenerateConfig(n_leads=2_000, chunk_leads=1_000)  # two chunks
MEDIUM = GenerateConfig(n_leads=5_000, chunk_leads=2_500)
JUNK_FIRST_NAMES = ("asdf", "test", "Mickey", "Donald", "xxx", "qwerty", "a", "Test")


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    path = tmp_path_factory.mktemp("tiny") / "crm.duckdb"
    generate_crm(TINY, 7, path)
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def medium_db(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    path = tmp_path_factory.mktemp("medium") / "crm.duckdb"
    generate_crm(MEDIUM, 42, path)
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def _one(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchone()[0]


def _concat(cfg: GenerateConfig, seed: int) -> dict[str, pd.DataFrame]:
    chunks = list(generate_chunks(cfg, seed))
    return {name: pd.concat([c[name] for c in chunks], ignore_index=True) for name in TABLES}


# --- determinism -------------------------------------------------------------------------------
def test_same_seed_gives_identical_tables_and_other_seed_differs() -> None:
    a, b, c = _concat(TINY, 7), _concat(TINY, 7), _concat(TINY, 8)
    for name in TABLES:
        pd.testing.assert_frame_equal(a[name], b[name])
        assert not a[name].equals(c[name]), f"{name}: a different seed gave the same table"


def test_file_holds_exactly_the_generated_chunks(tiny_db: duckdb.DuckDBPyConnection) -> None:
    frames = _concat(TINY, 7)
    for name, table in TABLES.items():
        keys = ", ".join(table.key)
        got = tiny_db.execute(f"SELECT * FROM {name} ORDER BY {keys}").df()
        want = frames[name].sort_values(list(table.key), ignore_index=True)
        assert len(got) == len(want) > 0
        for col in table.columns:
            assert got[col].astype(str).tolist() == want[col].astype(str).tolist(), f"{name}.{col}"


# --- contract ----------------------------------------------------------------------------------
def test_columns_and_types_match_schema(tiny_db: duckdb.DuckDBPyConnection) -> None:
    for name, table in TABLES.items():
        described = tiny_db.execute(f"DESCRIBE {name}").fetchall()
        assert {r[0]: r[1] for r in described} == table.columns
        assert [r[0] for r in described] == table.column_names
        for col in table.required:
            assert _one(tiny_db, f'SELECT count(*) FROM {name} WHERE "{col}" IS NULL') == 0


def test_event_ids_unique_and_values_in_vocabularies(tiny_db: duckdb.DuckDBPyConnection) -> None:
    assert _one(tiny_db, "SELECT count(*) - count(DISTINCT event_id) FROM events") == 0
    assert _one(tiny_db, "SELECT count(*) - count(DISTINCT lead_id) FROM leads") == 0
    types = {r[0] for r in tiny_db.execute("SELECT DISTINCT event_type FROM events").fetchall()}
    assert types == set(EVENT_TYPES)
    stages = {r[0] for r in tiny_db.execute("SELECT DISTINCT stage FROM outcomes").fetchall()}
    assert stages == set(STAGES)
    assert (
        _one(
            tiny_db, "SELECT count(*) FROM events WHERE lead_id NOT IN (SELECT lead_id FROM leads)"
        )
        == 0
    )


def test_content_type_only_on_downloads(tiny_db: duckdb.DuckDBPyConnection) -> None:
    assert (
        _one(
            tiny_db,
            """SELECT count(*) FROM events WHERE (event_type = 'content_download')
                            <> (content_type IS NOT NULL)""",
        )
        == 0
    )
    types = {
        r[0]
        for r in tiny_db.execute(
            "SELECT DISTINCT content_type FROM events WHERE content_type IS NOT NULL"
        ).fetchall()
    }
    assert types == set(CONTENT_TYPES)


def test_null_shares_within_validate_bounds(medium_db: duckdb.DuckDBPyConnection) -> None:
    bounds = load_params(ROOT / "params.yaml").validate_.max_null_share
    assert bounds, "params.yaml validate.max_null_share is empty"
    for table, cols in bounds.items():
        for col, bound in cols.items():
            share = _one(medium_db, f'SELECT avg(("{col}" IS NULL)::INT) FROM {table}')
            assert 0 < share <= bound, f"{table}.{col}: null share {share:.3f} (bound {bound})"


# --- time --------------------------------------------------------------------------------------
def test_nothing_after_cutoff_or_before_creation(tiny_db: duckdb.DuckDBPyConnection) -> None:
    cutoff, start = TINY.end.isoformat(), TINY.start.isoformat()
    assert _one(tiny_db, f"SELECT min(created_at) >= TIMESTAMP '{start}' FROM leads")
    for table, col in (
        ("leads", "created_at"),
        ("events", "occurred_at"),
        ("outcomes", "stage_at"),
    ):
        assert (
            _one(tiny_db, f"SELECT count(*) FROM {table} WHERE {col} > TIMESTAMP '{cutoff}'") == 0
        )
    for table, col in (("events", "occurred_at"), ("outcomes", "stage_at")):
        early = _one(
            tiny_db,
            f"SELECT count(*) FROM {table} t JOIN leads l USING (lead_id) "
            f"WHERE t.{col} < l.created_at",
        )
        assert early == 0, f"{table}: {early} rows before their lead was created"


def test_stages_ordered_per_lead(tiny_db: duckdb.DuckDBPyConnection) -> None:
    per_lead = tiny_db.execute("""
        SELECT lead_id, min(stage_at) FILTER (stage = 'mql') AS mql,
               min(stage_at) FILTER (stage = 'sql') AS sql,
               min(stage_at) FILTER (stage = 'opportunity') AS opp,
               min(stage_at) FILTER (stage IN ('won', 'lost')) AS closed,
               count(*) FILTER (stage IN ('won', 'lost')) AS n_closed
        FROM outcomes GROUP BY lead_id""").df()
    opp = per_lead[per_lead.opp.notna()]
    assert len(opp) > 50
    assert (opp.mql <= opp.sql).all() and (opp.sql <= opp.opp).all()
    closed = per_lead[per_lead.closed.notna()]
    assert closed.opp.notna().all() and (closed.opp <= closed.closed).all()
    assert (per_lead.n_closed <= 1).all()
    assert len(closed) < len(opp), "every opportunity is already closed"
    assert (
        _one(tiny_db, "SELECT count(*) FROM outcomes WHERE (stage = 'won') <> (amount IS NOT NULL)")
        == 0
    )
    # recycled only after the lead was marketing-qualified
    assert (
        _one(
            tiny_db,
            """SELECT count(*) FROM outcomes r WHERE stage = 'recycled' AND NOT EXISTS
        (SELECT 1 FROM outcomes m WHERE m.lead_id = r.lead_id AND m.stage = 'mql'
         AND m.stage_at <= r.stage_at)""",
        )
        == 0
    )


def test_seasonality(medium_db: duckdb.DuckDBPyConnection) -> None:
    weekday = _one(
        medium_db,
        "SELECT avg(c) FROM (SELECT count(*) c FROM events "
        "WHERE isodow(occurred_at) <= 5 GROUP BY isodow(occurred_at))",
    )
    weekend = _one(
        medium_db,
        "SELECT avg(c) FROM (SELECT count(*) c FROM events "
        "WHERE isodow(occurred_at) > 5 GROUP BY isodow(occurred_at))",
    )
    assert weekday > 2 * weekend
    aug, sep = (
        _one(medium_db, f"SELECT count(*) FROM leads WHERE month(created_at) = {m}") for m in (8, 9)
    )
    assert sep > 1.4 * aug


# --- planted data and traps --------------------------------------------------------------------
def test_canary_lead_present_once_with_events(tiny_db: duckdb.DuckDBPyConnection) -> None:
    rows = tiny_db.execute(
        "SELECT lead_id, first_name, last_name FROM leads WHERE email = ?", [CANARY_EMAIL]
    ).fetchall()
    assert len(rows) == 1 and rows[0][1:] == (CANARY_FIRST_NAME, CANARY_LAST_NAME)
    n_names = _one(
        tiny_db,
        f"SELECT count(*) FROM leads WHERE first_name = '{CANARY_FIRST_NAME}' "
        f"OR last_name = '{CANARY_LAST_NAME}'",
    )
    assert n_names == 1
    assert _one(tiny_db, f"SELECT count(*) FROM events WHERE lead_id = '{rows[0][0]}'") >= 3


def test_duplicate_events_near_configured_share(medium_db: duckdb.DuckDBPyConnection) -> None:
    extra, total = medium_db.execute("""
        SELECT sum(n - 1), sum(n) FROM (SELECT count(*) AS n FROM events
        GROUP BY lead_id, occurred_at, event_type, content_type)""").fetchone()
    share = extra / (total - extra)
    assert 0.6 * MEDIUM.duplicate_event_share < share < 1.4 * MEDIUM.duplicate_event_share


def test_activity_continues_after_conversion(tiny_db: duckdb.DuckDBPyConnection) -> None:
    after = tiny_db.execute("""
        SELECT e.event_type, count(*) FROM events e
        JOIN (SELECT lead_id, min(stage_at) t FROM outcomes WHERE stage = 'opportunity' GROUP BY 1) o
          ON o.lead_id = e.lead_id AND e.occurred_at > o.t
        GROUP BY 1""").fetchall()
    counts = dict(after)
    n_opp = _one(
        tiny_db, "SELECT count(DISTINCT lead_id) FROM outcomes WHERE stage = 'opportunity'"
    )
    assert sum(counts.values()) > 10 * n_opp
    assert counts.get("demo_request", 0) > n_opp and counts.get("pricing_page_view", 0) > n_opp


def test_junk_leads_present_and_never_convert(medium_db: duckdb.DuckDBPyConnection) -> None:
    names = ", ".join(f"'{n}'" for n in JUNK_FIRST_NAMES)
    n_junk, n_conv, bounced = medium_db.execute(f"""
        SELECT count(*),
               count(*) FILTER (lead_id IN (SELECT lead_id FROM outcomes WHERE stage = 'opportunity')),
               count(*) FILTER (lead_id IN (SELECT lead_id FROM events WHERE event_type = 'email_bounce'))
        FROM leads WHERE first_name IN ({names})""").fetchone()
    assert n_junk > 0.5 * MEDIUM.junk_share * MEDIUM.n_leads
    assert n_conv == 0
    assert bounced > 0.3 * n_junk
    # bounces are mostly junk
    all_bounced = _one(
        medium_db, "SELECT count(DISTINCT lead_id) FROM events WHERE event_type = 'email_bounce'"
    )
    assert bounced > 0.5 * all_bounced


def test_students_look_engaged_but_never_convert(medium_db: duckdb.DuckDBPyConnection) -> None:
    per_group = dict(
        medium_db.execute("""
        WITH g AS (SELECT lead_id, regexp_matches(lower(job_title), 'intern|student') AS student
                   FROM leads WHERE job_title IS NOT NULL)
        SELECT student, count(*) FILTER (e.event_type IN ('email_open', 'content_download'))
                        / count(DISTINCT g.lead_id)
        FROM g LEFT JOIN events e USING (lead_id) GROUP BY student""").fetchall()
    )
    assert per_group[True] > 1.5 * per_group[False]
    assert (
        _one(
            medium_db,
            """SELECT count(*) FROM outcomes o JOIN leads l USING (lead_id)
        WHERE o.stage = 'opportunity' AND regexp_matches(lower(l.job_title), 'intern|student')""",
        )
        == 0
    )


def test_no_email_events_after_unsubscribe_or_bounce(medium_db: duckdb.DuckDBPyConnection) -> None:
    assert _one(medium_db, "SELECT count(*) FROM events WHERE event_type = 'unsubscribe'") > 0
    late = _one(
        medium_db,
        """
        SELECT count(*) FROM events e JOIN (
            SELECT lead_id, min(occurred_at) t FROM events
            WHERE event_type IN ('unsubscribe', 'email_bounce') GROUP BY 1) s
          ON s.lead_id = e.lead_id AND e.occurred_at > s.t
        WHERE e.event_type IN ('email_open', 'email_click')""",
    )
    assert late == 0


def test_job_titles_are_messy_free_text(medium_db: duckdb.DuckDBPyConnection) -> None:
    distinct, lower, padded, nulls = medium_db.execute("""
        SELECT count(DISTINCT job_title),
               count(*) FILTER (job_title = lower(job_title) AND job_title <> upper(job_title)),
               count(*) FILTER (job_title <> trim(job_title) OR job_title LIKE '%  %'),
               count(*) FILTER (job_title IS NULL)
        FROM leads""").fetchone()
    assert distinct > 300 and lower > 100 and padded > 50 and nulls > 100
    for title in ("CTO", "Intern", "Founder & CEO", "IT Mgr"):
        assert _one(medium_db, f"SELECT count(*) FROM leads WHERE job_title = '{title}'") > 0


def test_fit_and_intent_carry_signal(medium_db: duckdb.DuckDBPyConnection) -> None:
    """Opportunities follow high-intent events and good sources; email opens barely matter."""
    by_source = dict(
        medium_db.execute("""
        SELECT source, avg((lead_id IN (SELECT lead_id FROM outcomes WHERE stage = 'opportunity'))::INT)
        FROM leads GROUP BY 1""").fetchall()
    )
    assert by_source["referral"] > 1.5 * by_source["purchased_list"]
    before = dict(
        medium_db.execute("""
        WITH o AS (SELECT lead_id, min(stage_at) t FROM outcomes WHERE stage = 'opportunity' GROUP BY 1)
        SELECT event_type, count(*) FROM events e JOIN o USING (lead_id)
        WHERE e.occurred_at < o.t AND e.occurred_at >= o.t - INTERVAL 30 DAY GROUP BY 1""").fetchall()
    )
    assert before["pricing_page_view"] > 0 and before["demo_request"] > 0


# --- base rate ---------------------------------------------------------------------------------
def test_base_rate_in_target_range(medium_db: duckdb.DuckDBPyConnection) -> None:
    rate, pairs = measure_base_rate(medium_db, MEDIUM.end, dt.date(2024, 4, 1))
    assert pairs > 5 * MEDIUM.n_leads
    assert 0.03 <= rate <= 0.08, f"base rate {rate:.3%}"


# --- writing -----------------------------------------------------------------------------------
def test_summary_has_counts_and_no_pii(tmp_path: Path) -> None:
    cfg = GenerateConfig(n_leads=1_000, chunk_leads=1_000)
    summary = generate_crm(cfg, 1, tmp_path / "crm.duckdb")
    assert summary["leads"] == 1_000 and summary["events"] > 0 and 0 <= summary["base_rate"] <= 1
    text = str(summary)
    assert CANARY_EMAIL not in text and CANARY_LAST_NAME not in text and "@" not in text


def test_failure_mid_generation_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = gen.chunk_tables

    def flaky(cfg: GenerateConfig, seed: int, chunk: int):
        if chunk == 1:
            raise RuntimeError("disk on fire")
        return real(cfg, seed, chunk)

    monkeypatch.setattr(gen, "chunk_tables", flaky)
    target = tmp_path / "out" / "crm.duckdb"
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate_crm(TINY, 7, target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_write_empty_crm_has_schema_only(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    write_empty_crm(path)
    con = duckdb.connect(str(path), read_only=True)
    for name, table in TABLES.items():
        assert [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()] == table.column_names
        assert _one(con, f"SELECT count(*) FROM {name}") == 0
    con.close()


# --- stage entry point -------------------------------------------------------------------------
def test_stage_skips_generator_for_real_data(tmp_path: Path) -> None:
    from pipelines.generate import app

    params = tmp_path / "params.yaml"
    params.write_text("ingest:\n  source: parquet\n  path: data/x\n")
    out = tmp_path / "crm.duckdb"
    result = CliRunner().invoke(app, ["--params", str(params), "--out", str(out)])
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(out), read_only=True)
    assert _one(con, "SELECT count(*) FROM leads") == 0
    con.close()


def test_stage_fails_clearly_on_bad_params(tmp_path: Path) -> None:
    from pipelines.generate import app

    params = tmp_path / "params.yaml"
    params.write_text("generate:\n  n_leads: -5\n")
    out = tmp_path / "crm.duckdb"
    result = CliRunner().invoke(app, ["--params", str(params), "--out", str(out)])
    assert result.exit_code != 0
    assert not out.exists()


def test_stage_generates_small_crm(tmp_path: Path) -> None:
    from pipelines.generate import app

    params = tmp_path / "params.yaml"
    params.write_text("seed: 3\ngenerate:\n  n_leads: 1000\n  chunk_leads: 1000\n")
    out, metrics = tmp_path / "crm.duckdb", tmp_path / "generate.json"
    result = CliRunner().invoke(
        app, ["--params", str(params), "--out", str(out), "--metrics", str(metrics)]
    )
    assert result.exit_code == 0, result.output
    assert out.exists() and '"leads": 1000' in metrics.read_text()
