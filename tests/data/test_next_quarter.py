"""The next-quarter continuation of the synthetic CRM: exact history, shifted behaviour after."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pytest

import leadscore.data.synthetic as gen
from leadscore.config import GenerateConfig
from leadscore.data.synthetic import (
    NO_SHIFT,
    SOURCES,
    QuarterShift,
    generate_crm,
    generate_next_quarter,
    next_quarter_end,
    next_quarter_leads,
)
from leadscore.schema import CANARY_EMAIL, CANARY_LAST_NAME, TABLES

CFG = GenerateConfig(n_leads=4_000, chunk_leads=2_000)  # two chunks
SMALL = GenerateConfig(n_leads=1_000, chunk_leads=1_000)
SEED = 11
END = CFG.end  # 2025-12-31: the history's cutoff
NEW_END = next_quarter_end(CFG)  # 2026-03-31
PREV = dt.date(2025, 10, 1)  # start of the history's last quarter
TIME_COL = {"leads": "created_at", "events": "occurred_at", "outcomes": "stage_at"}
# only the campaign changes: the same leads, the same seasonal volume
CAMPAIGN = QuarterShift(
    new_source=None, new_source_share=0.0, conversion_shift=0.0, lead_volume=1.0, activity=1.0
)


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("next_quarter")
    out = {name: d / f"{name}.duckdb" for name in ("plain", "shifted", "unshifted", "campaign")}
    generate_crm(CFG, SEED, out["plain"])
    generate_next_quarter(CFG, SEED, out["shifted"])
    generate_next_quarter(CFG, SEED, out["unshifted"], shift=NO_SHIFT)
    generate_next_quarter(CFG, SEED, out["campaign"], shift=CAMPAIGN)
    return out


@pytest.fixture(scope="module")
def shifted(paths: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(paths["shifted"]), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def unshifted(paths: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(paths["unshifted"]), read_only=True)
    yield con
    con.close()


def _one(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchone()[0]


def _count(con: duckdb.DuckDBPyConnection, table: str, lo: dt.date, hi: dt.date) -> int:
    col = TIME_COL[table]
    return _one(con, f"SELECT count(*) FROM {table} WHERE {col} >= '{lo}' AND {col} < '{hi}'")


def _opp_rate_after_download(
    con: duckdb.DuckDBPyConnection,
    lo: dt.date,
    hi: dt.date,
    content: str | None = None,
    without: str | None = None,
) -> float:
    """Leads with a `content` download (None: any event) in [lo, hi) and none of `without`,
    not yet an opportunity at the first one: the share with an opportunity after it, before hi."""
    has = f"content_type = '{content}'" if content else "true"
    other = f"content_type = '{without}'" if without else "false"
    return _one(
        con,
        f"""
        WITH o AS (SELECT lead_id, min(stage_at) AS t FROM outcomes
                   WHERE stage = 'opportunity' GROUP BY 1),
        d AS (SELECT lead_id, min(occurred_at) FILTER ({has}) AS t,
                     count(*) FILTER ({other}) AS n_other
              FROM events WHERE occurred_at >= '{lo}' AND occurred_at < '{hi}' GROUP BY 1)
        SELECT avg(coalesce(o.t < TIMESTAMP '{hi}', false)::INT)
        FROM d LEFT JOIN o USING (lead_id)
        WHERE d.t IS NOT NULL AND d.n_other = 0 AND (o.t IS NULL OR o.t > d.t)""",
    )


# --- the history -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["shifted", "unshifted"])
def test_history_is_exactly_what_generate_crm_writes(paths: dict[str, Path], name: str) -> None:
    con = duckdb.connect()
    con.execute(f"ATTACH '{paths['plain']}' AS plain (READ_ONLY)")
    con.execute(f"ATTACH '{paths[name]}' AS nq (READ_ONLY)")
    for table, col in TIME_COL.items():
        n_plain = _one(con, f"SELECT count(*) FROM plain.{table}")
        hist = f"SELECT * FROM nq.{table} WHERE {col} < TIMESTAMP '{END}'"
        assert _one(con, f"SELECT count(*) FROM ({hist})") == n_plain > 0, table
        for a, b in (
            (hist, f"SELECT * FROM plain.{table}"),
            (f"SELECT * FROM plain.{table}", hist),
        ):
            assert _one(con, f"SELECT count(*) FROM ({a} EXCEPT ALL {b})") == 0, table
        # inserted first and in the same order
        first = f"(SELECT * FROM nq.{table} ORDER BY rowid LIMIT {n_plain})"
        same = f"""SELECT count(*) FROM (SELECT row_number() OVER () AS i, * FROM {first}) a
                   JOIN (SELECT row_number() OVER () AS i, * FROM
                         (SELECT * FROM plain.{table} ORDER BY rowid)) b USING (i)
                   WHERE a.{TABLES[table].key[0]} = b.{TABLES[table].key[0]}"""
        assert _one(con, same) == n_plain, table
        assert _one(con, f"SELECT count(*) FROM nq.{table}") > n_plain, table
    con.close()


def test_continuation_extends_old_leads_and_adds_new_ones(
    shifted: duckdb.DuckDBPyConnection,
) -> None:
    old = f"(SELECT lead_id FROM leads WHERE created_at < TIMESTAMP '{END}')"
    late_events = _one(
        shifted,
        f"SELECT count(*) FROM events WHERE occurred_at >= '{END}' AND lead_id IN {old}",
    )
    late_opps = _one(
        shifted,
        f"""SELECT count(*) FROM outcomes WHERE stage = 'opportunity'
            AND stage_at >= '{END}' AND lead_id IN {old}""",
    )
    assert late_events > 10 * CFG.n_leads / 10 and late_opps > 20
    new = shifted.execute(
        f"SELECT count(*), min(lead_id), min(created_at) FROM leads WHERE lead_id NOT IN {old}"
    ).fetchone()
    assert new[0] == next_quarter_leads(CFG) > 0
    assert new[1] == f"L{CFG.n_leads:08d}" and new[2] >= dt.datetime.combine(END, dt.time())


def test_nothing_at_or_after_new_end_nor_before_creation(
    shifted: duckdb.DuckDBPyConnection,
) -> None:
    for table, col in TIME_COL.items():
        last = _one(shifted, f"SELECT max({col}) FROM {table}")
        assert dt.datetime.combine(NEW_END - dt.timedelta(days=3), dt.time()) < last
        assert last < dt.datetime.combine(NEW_END, dt.time()), table
    for table in ("events", "outcomes"):
        early = _one(
            shifted,
            f"SELECT count(*) FROM {table} t JOIN leads l USING (lead_id) "
            f"WHERE t.{TIME_COL[table]} < l.created_at",
        )
        assert early == 0, table


def test_funnel_stays_ordered_across_the_cutoff(shifted: duckdb.DuckDBPyConnection) -> None:
    per_lead = shifted.execute("""
        SELECT lead_id, min(stage_at) FILTER (stage = 'mql') AS mql,
               min(stage_at) FILTER (stage = 'sql') AS sql,
               min(stage_at) FILTER (stage = 'opportunity') AS opp,
               min(stage_at) FILTER (stage IN ('won', 'lost')) AS closed,
               count(*) FILTER (stage IN ('won', 'lost')) AS n_closed,
               max(n) AS most_per_stage, min(stage_at) AS first, max(stage_at) AS last
        FROM (SELECT *, count(*) OVER (PARTITION BY lead_id, stage) AS n FROM outcomes)
        GROUP BY lead_id""").df()
    cutoff = np.datetime64(END)
    across = per_lead[(per_lead["first"] < cutoff) & (per_lead["last"] >= cutoff)]
    assert len(across) > 20, "too few leads with outcomes on both sides of the cutoff"
    opp = per_lead[per_lead.opp.notna()]
    assert opp.mql.notna().all() and opp.sql.notna().all()
    assert (opp.mql <= opp.sql).all() and (opp.sql <= opp.opp).all()
    sql = per_lead[per_lead.sql.notna()]
    assert sql.mql.notna().all() and (sql.mql <= sql.sql).all()
    closed = per_lead[per_lead.closed.notna()]
    assert closed.opp.notna().all() and (closed.opp <= closed.closed).all()
    assert (per_lead.n_closed <= 1).all() and (per_lead.most_per_stage == 1).all()
    assert (
        _one(shifted, "SELECT count(*) FROM outcomes WHERE (stage = 'won') <> (amount IS NOT NULL)")
        == 0
    )
    recycled_early = """SELECT count(*) FROM outcomes r WHERE stage = 'recycled' AND NOT EXISTS
        (SELECT 1 FROM outcomes m WHERE m.lead_id = r.lead_id AND m.stage = 'mql'
         AND m.stage_at <= r.stage_at)"""
    assert _one(shifted, recycled_early) == 0


def test_events_stay_clean_after_the_cutoff(shifted: duckdb.DuckDBPyConnection) -> None:
    assert _one(shifted, "SELECT count(*) - count(DISTINCT event_id) FROM events") == 0
    assert (
        _one(
            shifted, "SELECT count(*) FROM events WHERE lead_id NOT IN (SELECT lead_id FROM leads)"
        )
        == 0
    )
    late_email = f"""
        SELECT count(*) FROM events e JOIN (
            SELECT lead_id, min(occurred_at) t FROM events
            WHERE event_type IN ('unsubscribe', 'email_bounce') GROUP BY 1) s
          ON s.lead_id = e.lead_id AND e.occurred_at > s.t
        WHERE e.event_type IN ('email_open', 'email_click') AND e.occurred_at >= '{END}'"""
    assert _one(shifted, late_email) == 0
    stops = f"""SELECT count(*) FROM events WHERE occurred_at >= '{END}'
                AND event_type IN ('unsubscribe', 'email_bounce')"""
    assert _one(shifted, stops) > 0
    content_ok = """SELECT count(*) FROM events
                    WHERE (event_type = 'content_download') <> (content_type IS NOT NULL)"""
    assert _one(shifted, content_ok) == 0


# --- the shift ---------------------------------------------------------------------------------
def test_new_source_appears_only_after_the_cutoff(
    shifted: duckdb.DuckDBPyConnection, unshifted: duckdb.DuckDBPyConnection
) -> None:
    name = QuarterShift().new_source
    n, first = shifted.execute(
        f"SELECT count(*), min(created_at) FROM leads WHERE source = '{name}'"
    ).fetchone()
    n_new = _count(shifted, "leads", END, NEW_END)
    assert 0.08 * n_new < n < 0.25 * n_new
    assert first >= dt.datetime.combine(END, dt.time())
    sources = {r[0] for r in unshifted.execute("SELECT DISTINCT source FROM leads").fetchall()}
    assert sources == set(SOURCES)


def test_new_source_has_its_own_conversion_propensity(tmp_path: Path) -> None:
    path = tmp_path / "crm.duckdb"
    generate_next_quarter(
        CFG, SEED, path, shift=QuarterShift(new_source_fit=3.0, new_source_share=0.3)
    )
    con = duckdb.connect(str(path), read_only=True)
    rates = dict(
        con.execute(f"""
        SELECT source = 'partner_referral',
               avg((lead_id IN (SELECT lead_id FROM outcomes WHERE stage = 'opportunity'))::INT)
        FROM leads WHERE created_at >= '{END}' GROUP BY 1""").fetchall()
    )
    con.close()
    assert rates[True] > 1.5 * rates[False]


def test_campaign_lifts_case_study_conversion(
    paths: dict[str, Path], unshifted: duckdb.DuckDBPyConnection
) -> None:
    """Paired: the same history and leads, with and without the campaign."""
    con = duckdb.connect(str(paths["campaign"]), read_only=True)
    with_campaign = _opp_rate_after_download(con, END, NEW_END, "case_study", "whitepaper")
    con.close()
    without = _opp_rate_after_download(unshifted, END, NEW_END, "case_study", "whitepaper")
    assert with_campaign > 1.3 * without


def test_case_studies_convert_better_than_before(shifted: duckdb.DuckDBPyConnection) -> None:
    """Relative to all active leads, case-study downloaders convert more after the cutoff."""

    def relative(lo: dt.date, hi: dt.date) -> float:
        return _opp_rate_after_download(shifted, lo, hi, "case_study") / _opp_rate_after_download(
            shifted, lo, hi
        )

    before, after = relative(PREV, END), relative(END, NEW_END)
    assert after > 1.2 * before


def test_campaign_counts_downloads_in_the_lookback_only() -> None:
    shift = QuarterShift(case_study_lift=2.0, whitepaper_lift=-1.5)
    win = gen._window(CFG, NEW_END, shift)
    c0, cs, wp = float(win.c0), gen._CT["case_study"], gen._CT["whitepaper"]
    et = np.full(5, gen._ET["content_download"], np.int8)
    downloads = gen._Ev(
        lead=np.array([0, 0, 1, 2, 4]),
        t=np.array([c0 + 5, c0 + 6, c0 + 1, c0 - 3, c0 + 9]),
        et=et,
        ct=np.array([cs, wp, cs, cs, cs], np.int8),
    )
    extra = gen._content_effect(win, [downloads], np.array([0, 1, 1, 2, 3, 4]))
    cand = np.array([c0 + 10, c0 + 10, c0 + 40, c0 + 2, c0 + 10, c0 + 8])
    # lead 0 saw both; lead 1's download is 39 days (out of the lookback) or 9 days before;
    # lead 2's was before the cutoff; lead 3 downloaded nothing; lead 4's came after
    assert extra(cand).tolist() == [0.5, 2.0, 0.0, 0.0, 0.0, 0.0]


def test_slow_quarter_has_fewer_leads_events_and_opportunities(
    shifted: duckdb.DuckDBPyConnection, unshifted: duckdb.DuckDBPyConnection
) -> None:
    per_month = {
        name: (_count(con, "leads", PREV, END) / 3, _count(con, "leads", END, NEW_END) / 3)
        for name, con in (("shifted", shifted), ("unshifted", unshifted))
    }
    assert per_month["shifted"][1] < 0.85 * per_month["shifted"][0]
    assert per_month["unshifted"][1] > per_month["unshifted"][0]  # Jan-Mar is busier
    assert per_month["shifted"][1] == pytest.approx(
        QuarterShift().lead_volume * per_month["unshifted"][1], abs=1
    )
    for table in ("events", "outcomes"):
        assert _count(shifted, table, END, NEW_END) < _count(shifted, table, PREV, END)
    opps = [
        _one(
            con,
            f"SELECT count(*) FROM outcomes WHERE stage = 'opportunity' AND stage_at >= '{END}'",
        )
        for con in (shifted, unshifted)
    ]
    assert opps[0] < opps[1]


def test_no_shift_continues_at_the_history_rates(unshifted: duckdb.DuckDBPyConnection) -> None:
    for table in ("events", "outcomes"):
        before, after = _count(unshifted, table, PREV, END), _count(unshifted, table, END, NEW_END)
        assert 0.75 < after / before < 1.5, table
    before = _opp_rate_after_download(unshifted, PREV, END, "case_study")
    after = _opp_rate_after_download(unshifted, END, NEW_END, "case_study")
    assert 0.6 < after / before < 1.5


# --- API ---------------------------------------------------------------------------------------
def test_two_quarters_cover_six_months(tmp_path: Path) -> None:
    summary = generate_next_quarter(SMALL, 3, tmp_path / "crm.duckdb", quarters=2)
    new_end = next_quarter_end(SMALL, 2)
    assert new_end == dt.date(2026, 6, 30) and summary["window"] == ["2024-01-01", "2026-06-30"]
    con = duckdb.connect(str(tmp_path / "crm.duckdb"), read_only=True)
    assert _one(con, "SELECT max(occurred_at) FROM events") < dt.datetime(2026, 6, 30)
    assert _count(con, "events", next_quarter_end(SMALL), new_end) > 0
    con.close()


def test_same_seed_same_file_other_seed_other_quarter(tmp_path: Path) -> None:
    frames = []
    for i, seed in enumerate((5, 5, 6)):
        path = tmp_path / f"{i}.duckdb"
        generate_next_quarter(SMALL, seed, path)
        con = duckdb.connect(str(path), read_only=True)
        frames.append(
            {
                name: con.execute(
                    f"SELECT * FROM {name} WHERE {TIME_COL[name]} >= '{END}' "
                    f"ORDER BY {', '.join(TABLES[name].key)}"
                ).df()
                for name in TABLES
            }
        )
        con.close()
    for name in TABLES:
        assert len(frames[0][name]) > 0
        assert frames[0][name].equals(frames[1][name]), name
        assert not frames[0][name].equals(frames[2][name]), name


def test_summary_counts_the_continuation_without_pii(tmp_path: Path) -> None:
    summary = generate_next_quarter(SMALL, 4, tmp_path / "crm.duckdb")
    plain = generate_crm(SMALL, 4, tmp_path / "plain.duckdb")
    added = summary["next_quarter"]
    assert added["leads"] == next_quarter_leads(SMALL) > 0
    for name in TABLES:
        assert summary[name] == plain[name] + added[name] and added[name] > 0
    assert summary["history_end"] == str(SMALL.end) and summary["quarters"] == 1
    assert summary["shift"]["new_source"] == "partner_referral"
    text = str(summary)
    assert CANARY_EMAIL not in text and CANARY_LAST_NAME not in text and "@" not in text


def test_next_quarter_end_clamps_to_month_end() -> None:
    nov = GenerateConfig(end=dt.date(2025, 11, 30))
    assert next_quarter_end(nov) == dt.date(2026, 2, 28)
    assert next_quarter_end(CFG) == dt.date(2026, 3, 31)
    assert next_quarter_end(CFG, 4) == dt.date(2026, 12, 31)
    with pytest.raises(ValueError, match="quarters"):
        next_quarter_end(CFG, 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"new_source": "referral"}, "new_source"),
        ({"new_source": " "}, "new_source"),
        ({"new_source_share": 1.0}, "new_source_share"),
        ({"lead_volume": 0.0}, "lead_volume"),
        ({"activity": -1.0}, "activity"),
    ],
)
def test_bad_shift_is_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        QuarterShift(**kwargs)


def test_bad_quarters_or_failure_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out" / "crm.duckdb"
    with pytest.raises(ValueError, match="quarters"):
        generate_next_quarter(SMALL, 1, target, quarters=0)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(gen, "_continue_chunk", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate_next_quarter(SMALL, 1, target)
    assert not target.exists()
    assert not target.parent.exists() or list(target.parent.iterdir()) == []
