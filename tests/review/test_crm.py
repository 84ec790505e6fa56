"""leadscore.review.crm on a tiny CRM in memory: the ordered funnel, conversion by segment,
the event mix, time to convert and the label window."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from leadscore.review import crm

T = pd.Timestamp


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("""CREATE TABLE leads AS SELECT * FROM (VALUES
        ('L1', TIMESTAMP '2025-01-01', 'webinar', 'software', 'US', 5, 'a@x.example'),
        ('L2', TIMESTAMP '2025-01-10', 'webinar', 'retail', 'DE', 300, 'b@x.example'),
        ('L3', TIMESTAMP '2025-02-01', 'partner', NULL, 'US', NULL, 'c@x.example'),
        ('L4', TIMESTAMP '2025-02-05', 'partner', 'software', 'US', 20000, 'd@x.example'))
        AS t(lead_id, created_at, source, industry, country, company_size, email)""")
    # L1 won (no opportunity row: won implies it), L2 reached sql, L3 opportunity then lost
    con.execute("""CREATE TABLE outcomes AS SELECT * FROM (VALUES
        ('L1', 'mql', TIMESTAMP '2025-01-05'), ('L1', 'won', TIMESTAMP '2025-03-01'),
        ('L2', 'mql', TIMESTAMP '2025-01-20'), ('L2', 'sql', TIMESTAMP '2025-01-25'),
        ('L3', 'opportunity', TIMESTAMP '2025-02-11'), ('L3', 'lost', TIMESTAMP '2025-04-01'))
        AS t(lead_id, stage, stage_at)""")
    con.execute("""CREATE TABLE events AS SELECT * FROM (VALUES
        ('L1', TIMESTAMP '2025-01-02', 'web_visit'), ('L1', TIMESTAMP '2025-01-03', 'web_visit'),
        ('L2', TIMESTAMP '2025-01-15', 'email_open'), ('L3', TIMESTAMP '2025-02-02', 'web_visit'))
        AS t(lead_id, occurred_at, event_type)""")
    return con


def test_lead_stages_reads_no_personal_data_and_counts_later_stages(con):
    leads = crm.lead_stages(con)
    assert "email" not in leads.columns
    assert leads.set_index("lead_id").loc["L1", "opportunity_at"] == T("2025-03-01")
    assert leads.set_index("lead_id")["company_size_band"].to_dict() == {
        "L1": "1-10", "L2": "201-1000", "L3": "unknown", "L4": "5001+"}
    assert leads.set_index("lead_id").loc["L3", "industry"] == "unknown"


def test_funnel_is_ordered(con):
    f = crm.funnel(crm.lead_stages(con))
    assert f["leads"].to_dict() == {"lead": 4, "mql": 3, "sql": 3, "opportunity": 2, "won": 1}
    assert f.loc["opportunity", "step_conversion"] == pytest.approx(2 / 3)
    assert f.loc["won", "share_of_leads"] == 0.25


def test_conversion_by_segment(con):
    by = crm.conversion_by(crm.lead_stages(con), "source")
    assert by.loc["webinar", ["leads", "converted"]].tolist() == [2, 1]
    assert by["share_of_conversions"].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="funnel stage"):
        crm.conversion_by(crm.lead_stages(con), "source", "lost")


def test_event_mix_and_new_leads(con):
    mix = crm.event_mix(con, "month")
    assert mix.loc[T("2025-01-01"), "web_visit"] == 2
    assert crm.event_mix(con, "month", shares=True).sum(axis=1).tolist() == [1.0, 1.0]
    assert crm.new_leads(crm.lead_stages(con)).loc[T("2025-02-01"), "partner"] == 2
    with pytest.raises(ValueError, match="freq"):
        crm.event_mix(con, "fortnight")


def test_days_to_stage(con):
    within = crm.days_to_stage(crm.lead_stages(con), "opportunity", within=(10, 60))
    assert within["share_of_conversions"].tolist() == [0.5, 1.0]  # L3 in 10 days, L1 in 59


def test_label_window_marks_open_windows():
    table = pd.DataFrame({"as_of": [T("2025-01-01")] * 2 + [T("2025-03-01")], "label": [1, 0, 0]})
    w = crm.label_window(table, horizon_days=90, cutoff=T("2025-04-15"))
    assert w["base_rate"].tolist() == [0.5, 0.0]
    assert w["closed_by_cutoff"].tolist() == [True, False]
