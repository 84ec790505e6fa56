"""Point-in-time features: leakage, eligibility, labels, and the SQL against references."""

from __future__ import annotations

import datetime as dt
import io

import duckdb
import pandas as pd
import pytest

from leadscore.features.build import (
    add_labels,
    as_of_schedule,
    build_features,
    feature_catalog,
    training_table,
)
from leadscore.features.titles import department_sql, parse_title, seniority_sql

AS_OF = dt.datetime(2024, 3, 1)
FEATURE_ARGS = dict(target_stage="opportunity", max_lead_age_days=365, windows_days=(7, 30, 90), half_life_days=14.0)


def _leads(*rows) -> pd.DataFrame:
    base = dict(job_title="Marketing Manager", company_size=120, annual_revenue=5e6, industry="Software",
                country="de", source="webinar", free_mail=False, email_invalid=False, placeholder_name=False,
                bant_budget=None, bant_timeline=None)
    return pd.DataFrame([{**base, **r} for r in rows])


def _crm(leads: pd.DataFrame, events: list[tuple], outcomes: list[tuple]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("_l", leads)
    con.execute("CREATE TABLE leads AS SELECT * REPLACE (CAST(created_at AS TIMESTAMP) AS created_at) FROM _l")
    ev = pd.DataFrame(events, columns=["event_id", "lead_id", "occurred_at", "event_type", "content_type"])
    con.register("_e", ev)
    con.execute(
        "CREATE TABLE events AS SELECT event_id::VARCHAR AS event_id, lead_id::VARCHAR AS lead_id, "
        "occurred_at::TIMESTAMP AS occurred_at, event_type::VARCHAR AS event_type, "
        "content_type::VARCHAR AS content_type FROM _e"
    )
    oc = pd.DataFrame(outcomes, columns=["lead_id", "stage", "stage_at", "amount"])
    con.register("_o", oc)
    con.execute(
        "CREATE TABLE outcomes AS SELECT lead_id::VARCHAR AS lead_id, stage::VARCHAR AS stage, "
        "stage_at::TIMESTAMP AS stage_at, amount::DOUBLE AS amount FROM _o"
    )
    return con


@pytest.fixture
def crm() -> duckdb.DuckDBPyConnection:
    leads = _leads(
        dict(lead_id="L1", created_at=dt.datetime(2024, 1, 10), bant_budget=True, bant_timeline=" Now "),
        dict(lead_id="L2", created_at=dt.datetime(2024, 2, 1), job_title="Student", bant_budget=False),
        dict(lead_id="L3", created_at=dt.datetime(2023, 12, 1)),
    )
    events = [
        ("e1", "L1", AS_OF - dt.timedelta(seconds=1), "pricing_page_view", None),
        ("e2", "L1", AS_OF, "pricing_page_view", None),
        ("e3", "L1", AS_OF + dt.timedelta(days=3), "demo_request", None),
        ("e4", "L1", dt.datetime(2024, 2, 10), "content_download", "case_study"),
        ("e4dup", "L1", dt.datetime(2024, 2, 10), "content_download", "case_study"),
        ("e5", "L2", dt.datetime(2024, 2, 5), "email_open", None),
        ("e6", "L2", dt.datetime(2024, 2, 6), "email_click", None),
        ("e7", "L2", dt.datetime(2024, 2, 7), "email_open", None),
        ("e8", "L2", dt.datetime(2024, 2, 8), "unsubscribe", None),
        ("e9", "L3", dt.datetime(2024, 1, 20), "web_visit", None),
    ]
    outcomes = [
        ("L1", "mql", dt.datetime(2024, 3, 2), None),
        ("L1", "opportunity", dt.datetime(2024, 3, 20), None),
        ("L3", "opportunity", dt.datetime(2024, 2, 1), None),
    ]
    return _crm(pd.concat([leads]), events, outcomes)


def _row(df: pd.DataFrame, lead_id: str, as_of: dt.datetime = AS_OF) -> pd.Series:
    hit = df[(df.lead_id == lead_id) & (df.as_of == as_of)]
    assert len(hit) == 1, f"expected one row for {lead_id} at {as_of}, got {len(hit)}"
    return hit.iloc[0]


def test_event_one_second_before_as_of_counts_and_at_as_of_does_not(crm):
    df = build_features(crm, [AS_OF], **FEATURE_ARGS)
    row = _row(df, "L1")
    assert row["pricing_page_view_7d"] == 1  # e1 at as_of - 1s; e2 at as_of is excluded
    assert row["demo_request_90d"] == 0  # after as_of
    assert row["days_since_last_pricing_page_view"] == pytest.approx(1 / 86400)


def test_duplicate_events_are_counted_once(crm):
    row = _row(build_features(crm, [AS_OF], **FEATURE_ARGS), "L1")
    assert row["download_case_study_30d"] == 1
    assert row["content_download_30d"] == 1


def test_decayed_engagement_matches_reference(crm):
    row = _row(build_features(crm, [AS_OF], **FEATURE_ARGS), "L1")
    ages = [1 / 86400, (AS_OF - dt.datetime(2024, 2, 10)).total_seconds() / 86400]
    assert row["engagement_decayed"] == pytest.approx(sum(2 ** (-a / 14.0) for a in ages), rel=1e-12)


def test_ctr_and_negative_signals(crm):
    row = _row(build_features(crm, [AS_OF], **FEATURE_ARGS), "L2")
    assert row["email_ctr_90d"] == pytest.approx(0.5)
    assert row["unsubscribed"] == 1
    assert row["days_since_last_activity"] == pytest.approx(23.0)  # unsubscribe is not activity


def test_converted_lead_is_not_eligible_after_conversion(crm):
    df = build_features(crm, [AS_OF], **FEATURE_ARGS)
    assert "L3" not in set(df.lead_id)  # opportunity on 2024-02-01, before as_of
    assert "L1" in set(df.lead_id)  # converts only later
    later = build_features(crm, [dt.datetime(2024, 4, 1)], **FEATURE_ARGS)
    assert "L1" not in set(later.lead_id)


def test_lead_created_after_as_of_or_too_old_is_not_eligible(crm):
    early = build_features(crm, [dt.datetime(2024, 1, 15)], **FEATURE_ARGS)
    assert set(early.lead_id) == {"L1", "L3"}
    args = {**FEATURE_ARGS, "max_lead_age_days": 40}
    assert "L1" not in set(build_features(crm, [AS_OF], **args).lead_id)  # 51 days old


def test_injecting_events_after_as_of_leaves_features_byte_identical(crm):
    def snapshot(con):
        df = build_features(con, [dt.datetime(2024, 2, 15), AS_OF], **FEATURE_ARGS)
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()

    before = snapshot(crm)
    flood = [
        (f"x{i}", lead, AS_OF + dt.timedelta(minutes=i), etype, "case_study" if etype == "content_download" else None)
        for i, (lead, etype) in enumerate(
            [(lead, e) for lead in ("L1", "L2", "L3") for e in
             ("pricing_page_view", "demo_request", "content_download", "unsubscribe", "email_bounce")] * 200
        )
    ]
    ev = pd.DataFrame(flood, columns=["event_id", "lead_id", "occurred_at", "event_type", "content_type"])
    crm.register("_flood", ev)
    crm.execute("INSERT INTO events SELECT * FROM _flood")
    crm.execute("INSERT INTO outcomes VALUES ('L2', 'won', TIMESTAMP '2024-03-05', 1e5)")
    assert snapshot(crm) == before


def test_labels_use_horizon_and_exclude_immature_windows(crm):
    df = build_features(crm, [dt.datetime(2024, 2, 15), AS_OF], **FEATURE_ARGS)
    labelled = add_labels(crm, df, target_stage="opportunity", horizon_days=30, cutoff=dt.datetime(2024, 3, 20))
    # as_of 2024-03-01 + 30 days > cutoff: immature, excluded rather than labelled 0
    assert set(labelled.as_of) == {dt.datetime(2024, 2, 15)}
    assert _row(labelled, "L1", dt.datetime(2024, 2, 15))["label"] == 0  # converts 2024-03-20: 34 days later
    later = add_labels(crm, df, target_stage="opportunity", horizon_days=30, cutoff=dt.datetime(2024, 6, 1))
    assert _row(later, "L1", AS_OF)["label"] == 1
    assert _row(later, "L2", AS_OF)["label"] == 0


def test_one_as_of_matches_the_same_date_in_a_schedule(crm):
    many = build_features(crm, [dt.datetime(2024, 2, 1), AS_OF, dt.datetime(2024, 4, 1)], **FEATURE_ARGS)
    one = build_features(crm, [AS_OF], **FEATURE_ARGS)
    pd.testing.assert_frame_equal(many[many.as_of == AS_OF].reset_index(drop=True), one)


def test_columns_follow_the_catalog(crm):
    df = build_features(crm, [AS_OF], **FEATURE_ARGS)
    catalog = feature_catalog(FEATURE_ARGS["windows_days"])
    assert list(df.columns) == ["lead_id", "as_of", *catalog.names]
    assert set(catalog.group("fit")) & set(catalog.group("engagement")) == set()
    assert all(f.label and f.unit for f in catalog.features)


def test_bant_answers_are_categories_with_unknown_as_a_level(crm):
    df = build_features(crm, [AS_OF], **FEATURE_ARGS).set_index("lead_id")
    assert df.loc["L1", "bant_budget"] == "yes" and df.loc["L1", "bant_timeline"] == "now"
    assert df.loc["L2", "bant_budget"] == "no" and df.loc["L2", "bant_timeline"] == "unknown"
    cat = feature_catalog(FEATURE_ARGS["windows_days"])
    assert {"bant_budget", "bant_timeline"} <= set(cat.group("fit")) & set(cat.categorical)


def test_training_table_reports_immature_dates_out(crm):
    table, summary = training_table(
        crm, as_of_start=dt.date(2024, 2, 1), as_of_end=None, every_months=1, cutoff=dt.datetime(2024, 4, 15),
        target_stage="opportunity", horizon_days=30, max_lead_age_days=365, windows_days=(7, 30, 90),
        half_life_days=14.0,
    )
    assert summary["as_of_last"] == "2024-03-01"
    assert summary["rows"] == len(table) and summary["positives"] == int(table.label.sum())


def test_as_of_schedule_is_monthly_and_inclusive():
    got = as_of_schedule(dt.date(2024, 1, 31), dt.date(2024, 4, 30), 1)
    assert [d.date() for d in got] == [dt.date(2024, 1, 31), dt.date(2024, 2, 28), dt.date(2024, 3, 31),
                                       dt.date(2024, 4, 30)]


@pytest.mark.parametrize(
    ("title", "seniority", "department"),
    [
        ("VP Marketing", "vp", "marketing"),
        ("Vice President, Sales", "vp", "sales"),
        ("Head of IT", "director", "it"),
        ("Sr. Software Engineer", "senior_ic", "engineering"),
        ("CTO", "c_level", "engineering"),
        ("Chief Financial Officer", "c_level", "finance"),
        ("  marketing   MANAGER ", "manager", "marketing"),
        ("Director of Operations", "director", "operations"),
        ("Intern", "student", "other"),
        ("Founder & CEO", "c_level", "executive"),
        ("IT Mgr", "manager", "it"),
        ("xxx", "unknown", "unknown"),
        (None, "unknown", "unknown"),
        ("Accountant", "individual", "finance"),
    ],
)
def test_title_parsing_python_and_sql_agree(title, seniority, department):
    assert parse_title(title) == (seniority, department)
    with duckdb.connect() as con:  # not the shared default connection
        sql = con.execute(
            f"SELECT {seniority_sql('t')}, {department_sql('t')} FROM (SELECT ?::VARCHAR AS t)", [title]
        ).fetchall()[0]
    assert sql == (seniority, department)


def test_window_counts_follow_each_window_edge_in_any_configured_order():
    """An event counts in the shortest window holding it and every longer one, whatever
    the order of `windows_days`; downloads count by content type too."""
    leads = _leads(dict(lead_id="W", created_at=dt.datetime(2023, 9, 1)))
    days = {"a": 1, "b": 7, "c": 8, "d": 30, "e": 31, "f": 89, "g": 91}
    events = [(k, "W", AS_OF - dt.timedelta(days=d), "content_download", "whitepaper") for k, d in days.items()]
    events += [("x", "W", AS_OF - dt.timedelta(days=2), "web_visit", None),
               ("y", "W", AS_OF - dt.timedelta(days=2), "content_download", "not_a_catalog_type")]
    con = _crm(leads, events, [])
    for windows in ((7, 30, 90), (90, 7, 30)):
        row = _row(build_features(con, [AS_OF], **{**FEATURE_ARGS, "windows_days": windows}), "W")
        assert (row["download_whitepaper_7d"], row["download_whitepaper_30d"], row["download_whitepaper_90d"]) == (2, 4, 6)
        assert (row["content_download_7d"], row["content_download_30d"], row["content_download_90d"]) == (3, 5, 7)
        assert row["web_visit_7d"] == 1 and row["download_case_study_90d"] == 0


def test_window_count_matrix_unpacks_codes_per_row():
    import pyarrow as pa

    from leadscore.features.build import POSITIVE_EVENT_TYPES, _window_code_sql, window_count_matrix

    _, n_codes = _window_code_sql((7, 30), ("whitepaper",))
    # code = (bucket * events + event) * (contents + 1) + content (1: no catalog content)
    web_visit, n_events = POSITIVE_EVENT_TYPES.index("web_visit"), len(POSITIVE_EVENT_TYPES)
    code_7d, code_30d = (0 * n_events + web_visit) * 2 + 1, (1 * n_events + web_visit) * 2 + 1
    packed = pa.array([[3 * n_codes + code_7d, 2 * n_codes + code_30d], None, [5 * n_codes + code_30d]],
                      pa.list_(pa.int64()))
    m = window_count_matrix(packed, (7, 30), ("whitepaper",))
    cols = [f.name for f in feature_catalog((7, 30), ("whitepaper",)).features if f.unit == "count"]
    got = {c: list(m[i]) for i, c in enumerate(cols) if m[i].any()}
    assert got == {"web_visit_7d": [3, 0, 0], "web_visit_30d": [5, 0, 5]}


def test_one_lead_statement_gives_the_batch_row(crm):
    from leadscore.features.build import feature_frame, lead_feature_sql, titles_sql

    crm.execute(f"CREATE TABLE titles AS {titles_sql('leads')}")
    sql = lead_feature_sql(leads="leads", events="events", outcomes="outcomes", titles="titles", **FEATURE_ARGS)
    batch = build_features(crm, [AS_OF], **FEATURE_ARGS)
    for lead_id in ("L1", "L2"):
        one = feature_frame(crm.execute(sql, {"lead_id": lead_id, "as_of": AS_OF}).to_arrow_table(),
                            FEATURE_ARGS["windows_days"])
        expected = batch[batch.lead_id == lead_id].reset_index(drop=True)
        pd.testing.assert_frame_equal(one, expected)
    none = crm.execute(sql, {"lead_id": "L3", "as_of": AS_OF}).to_arrow_table()  # converted
    assert none.num_rows == 0
