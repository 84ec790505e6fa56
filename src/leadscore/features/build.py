"""Point-in-time features, eligibility and labels, computed in DuckDB SQL.

One function, `build_features`, serves training (many `as_of` dates) and scoring (one). For
each (lead, as_of) pair it uses only records with a timestamp strictly before `as_of`:

- eligible: created before `as_of`, at most `max_lead_age_days` old, and not yet converted
  (reached the target stage or later) or closed (won/lost) before `as_of`;
- fit features: parsed seniority and department, company-size band, revenue, industry,
  BANT budget and timeline (as of creation: the forms capture them; "unknown" is a level),
  country, source, derived e-mail flags, lead age;
- engagement features: counts per event type and per content type in each window,
  recency, exponentially decayed engagement (exact: a per-lead running sum in time order,
  read at the last instant before `as_of`), e-mail click-through rate, negative signals
  (unsubscribe, bounce).

The window counts leave SQL as one list per row (`window_counts`: each event's smallest
window, type and content type packed in one code, with its count; one grouped pass instead of
60 filtered counts) and are unpacked into their columns in NumPy (`window_count_matrix`).
The SQL uses joins and aggregates only (no ASOF join), so it runs on other engines too.
What does not depend on `as_of` (each lead's fit profile and first negative signals, its
deduplicated positive events with their type codes, the running decay sums) is a set of steps
of its own (`lead_history_sql`): the batch computes it for the eligible leads, one-lead
serving once for the whole CRM, so a request runs only the part that reads `as_of`.

Double-logged events (same lead, time, type and content type) are counted once.
`add_labels` then labels each row: did the lead reach the target stage within
`horizon_days` after `as_of`? Rows whose window ends after the data cutoff are dropped.

Input: a DuckDB connection exposing `leads` (PII-free, as written by ingest), `events` and
`outcomes`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from leadscore.features.catalog import FeatureCatalog, FeatureSpec
from leadscore.features.titles import department_sql, seniority_sql
from leadscore.schema import CONTENT_TYPES, EVENT_TYPES, FUNNEL, NEGATIVE_EVENT_TYPES

POSITIVE_EVENT_TYPES: tuple[str, ...] = tuple(e for e in EVENT_TYPES if e not in NEGATIVE_EVENT_TYPES)
SIZE_BANDS: tuple[tuple[int, str], ...] = (
    (10, "1-10"), (50, "11-50"), (200, "51-200"), (1000, "201-1000"), (5000, "1001-5000"),
)
# Largest exponent of 2 in the exact decayed sum; keeps doubles far from overflow.
_MAX_DECAY_EXPONENT = 900

_EVENT_LABELS = {
    "email_open": "E-mail opens",
    "email_click": "E-mail clicks",
    "web_visit": "Website visits",
    "pricing_page_view": "Pricing-page views",
    "content_download": "Content downloads",
    "webinar_registration": "Webinar registrations",
    "webinar_attendance": "Webinars attended",
    "demo_video_view": "Demo-video views",
    "form_submit": "Form fills",
    "demo_request": "Demo requests",
}
_CONTENT_LABELS = {
    "whitepaper": "Whitepaper downloads",
    "case_study": "Case-study downloads",
    "product_sheet": "Product-sheet downloads",
    "blog": "Blog-post downloads",
    "ebook": "E-book downloads",
}


def feature_catalog(windows_days: Sequence[int], content_types: Sequence[str] = CONTENT_TYPES) -> FeatureCatalog:
    """The catalog of every feature `build_features` returns, in column order."""
    fit = [
        FeatureSpec("seniority", "fit", "Seniority (from job title)", "level", "categorical"),
        FeatureSpec("department", "fit", "Department (from job title)", "department", "categorical"),
        FeatureSpec("company_size_band", "fit", "Company size band", "employees", "categorical"),
        FeatureSpec("company_size", "fit", "Company size", "employees"),
        FeatureSpec("annual_revenue", "fit", "Company annual revenue", "USD"),
        FeatureSpec("industry", "fit", "Industry", "industry", "categorical"),
        FeatureSpec("country", "fit", "Country", "country", "categorical"),
        FeatureSpec("source", "fit", "Lead source", "channel", "categorical"),
        # BANT answers from the lead's forms; "unknown" (not asked or not answered) is a level
        FeatureSpec("bant_budget", "fit", "Budget confirmed (BANT)", "answer", "categorical"),
        FeatureSpec("bant_timeline", "fit", "Purchase timeline (BANT)", "timeline", "categorical"),
        FeatureSpec("free_mail", "fit", "Uses a free e-mail address", "yes/no"),
        FeatureSpec("email_invalid", "fit", "E-mail address looks invalid or fake", "yes/no"),
        FeatureSpec("placeholder_name", "fit", "Name looks like a placeholder", "yes/no"),
        FeatureSpec("lead_age_days", "fit", "Days since the lead was created", "days"),
    ]
    eng: list[FeatureSpec] = []
    for w in windows_days:
        for e in POSITIVE_EVENT_TYPES:
            eng.append(FeatureSpec(f"{e}_{w}d", "engagement", f"{_EVENT_LABELS[e]}, last {w} days", "count"))
        for c in content_types:
            label = _CONTENT_LABELS.get(c, f"{c.replace('_', ' ').capitalize()} downloads")
            eng.append(FeatureSpec(f"download_{c}_{w}d", "engagement", f"{label}, last {w} days", "count"))
    eng += [
        FeatureSpec("days_since_last_activity", "engagement", "Days since the last activity", "days"),
        FeatureSpec("days_since_last_pricing_page_view", "engagement", "Days since the last pricing-page view", "days"),
        FeatureSpec("engagement_decayed", "engagement", "Recent engagement (decayed activity count)", "score"),
        FeatureSpec(f"email_ctr_{max(windows_days)}d", "engagement",
                    f"E-mail click-through rate, last {max(windows_days)} days", "share"),
        FeatureSpec("unsubscribed", "engagement", "Unsubscribed from e-mail", "yes/no"),
        FeatureSpec("email_bounced", "engagement", "E-mail bounced", "yes/no"),
    ]
    return FeatureCatalog(tuple(fit + eng))


def as_of_schedule(start: dt.date, end: dt.date, every_months: int = 1) -> list[dt.datetime]:
    """Scoring dates at midnight from `start` to `end` inclusive, every `every_months`."""
    out: list[dt.datetime] = []
    y, m = start.year, start.month
    day = start.day
    while True:
        d = dt.date(y, m, min(day, 28 if m == 2 else 30 if m in (4, 6, 9, 11) else 31))
        if d > end:
            return out
        out.append(dt.datetime.combine(d, dt.time()))
        m += every_months
        y, m = y + (m - 1) // 12, (m - 1) % 12 + 1


def data_cutoff_sql(leads: str = "leads", events: str = "events", outcomes: str = "outcomes") -> str:
    """The SELECT of the data cutoff: the latest timestamp in any of the three relations."""
    return (f"SELECT greatest((SELECT max(created_at) FROM {leads}), (SELECT max(occurred_at) FROM {events}), "
            f"(SELECT max(stage_at) FROM {outcomes}))")


def data_cutoff(con: duckdb.DuckDBPyConnection) -> dt.datetime:
    """The latest timestamp recorded in any table: nothing is known after it."""
    row = con.execute(data_cutoff_sql()).fetchall()[0]  # fetchall: leaves no open result
    if row is None or row[0] is None:
        raise ValueError("cannot determine the data cutoff: the CRM tables are empty")
    return row[0]


def timestamp_sql(value: dt.datetime) -> str:
    """`value` as a SQL timestamp literal."""
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"


def _stages_from(target: str) -> list[str]:
    return list(FUNNEL[FUNNEL.index(target):])


def _size_band_sql(col: str) -> str:
    whens = " ".join(f"WHEN {col} <= {hi} THEN '{label}'" for hi, label in SIZE_BANDS)
    return f"CASE WHEN {col} IS NULL OR {col} < 1 THEN 'unknown' {whens} ELSE '5001+' END"


def _category_sql(col: str, case: str = "lower") -> str:
    return f"coalesce(nullif({case}(trim({col})), ''), 'unknown')"


def _days(later: str, earlier: str) -> str:
    """Days from `earlier` to `later` (timestamps) as a double: microseconds, then seconds,
    then days (the arithmetic of DuckDB's `epoch(interval)`, written so other engines run it)."""
    return f"(CAST(epoch_us({later}) - epoch_us({earlier}) AS DOUBLE) / 1000000.0 / 86400.0)"


def _type_code_sql(content_types: Sequence[str]) -> str:
    """SQL of an event's type code (window-free): its event type among the positive ones and
    its content type (last index: none or another), `event * (n_content + 1) + content`."""
    event = " ".join(f"WHEN '{e}' THEN {i}" for i, e in enumerate(POSITIVE_EVENT_TYPES))
    content = " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(content_types))
    content = f"CASE e.content_type {content} ELSE {len(content_types)} END" if content else "0"
    return f"CASE e.event_type {event} END * {len(content_types) + 1} + {content}"


def _window_code_sql(windows_days: Sequence[int], content_types: Sequence[str]) -> tuple[str, int]:
    """(SQL of an event's window code, number of codes). The code packs the smallest window
    holding the event (`x.occurred_at` before `el.as_of`) with its type code (`x.type_code`,
    `_type_code_sql`); `window_count_matrix` turns the per-code counts into the catalog's
    count columns."""
    wins, n_content = sorted(windows_days), len(content_types) + 1
    bucket = " ".join(f"WHEN x.occurred_at >= el.as_of - INTERVAL {w} DAY THEN {i}" for i, w in enumerate(wins[:-1]))
    bucket = f"CASE {bucket} ELSE {len(wins) - 1} END" if bucket else "0"
    per_bucket = len(POSITIVE_EVENT_TYPES) * n_content
    return f"({bucket}) * {per_bucket} + x.type_code", len(wins) * per_bucket


def window_count_matrix(packed, windows_days: Sequence[int], content_types: Sequence[str]) -> np.ndarray:
    """The count columns in catalog order, as a (columns x rows) float64 array, from the
    `window_counts` lists of the feature query (one per row): each item is `n * n_codes + code`
    (`_window_code_sql`); a null list is a lead with no event in the longest window."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(packed, pa.ChunkedArray):
        packed = pa.concat_arrays(packed.chunks) if packed.num_chunks else pa.array([], packed.type)
    rows = len(packed)
    wins, n_content = sorted(windows_days), len(content_types) + 1
    n_events = len(POSITIVE_EVENT_TYPES)
    _, n_codes = _window_code_sql(windows_days, content_types)
    per_window = n_events + len(content_types)
    n_cols = len(windows_days) * per_window
    values = pc.list_flatten(packed).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    row = pc.list_parent_indices(packed).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    n, code = np.divmod(values, n_codes)
    rest, content = np.divmod(code, n_content)
    bucket, event = np.divmod(rest, n_events)
    download = POSITIVE_EVENT_TYPES.index("content_download") if "content_download" in POSITIVE_EVENT_TYPES else -1
    is_download = (event == download) & (content < len(content_types))
    targets, weights = [], []
    for j, w in enumerate(windows_days):  # an event counts in its own window and every longer one
        inside = bucket <= wins.index(w)
        base = j * per_window * rows + row
        targets += [base[inside] + event[inside] * rows, (base + (n_events + content) * rows)[inside & is_download]]
        weights += [n[inside], n[inside & is_download]]
    flat = np.bincount(np.concatenate(targets), weights=np.concatenate(weights).astype(np.float64),
                       minlength=rows * n_cols)
    return flat.reshape(n_cols, rows)


def titles_sql(leads: str) -> str:
    """(job_title, seniority, department) of each distinct title of the relation `leads`:
    the title parsing of the features, run once per title (also to fill a cache of parsed
    titles, see `build_features(titles=...)`)."""
    return (f"SELECT job_title, {seniority_sql('job_title')} AS seniority, "
            f"{department_sql('job_title')} AS department FROM (SELECT DISTINCT job_title FROM {leads})")


HISTORY_STEPS: tuple[str, ...] = ("profile", "events", "instants")


def history_tables(name: str) -> tuple[str, str, str]:
    """The table names of `lead_history_sql`'s steps for `name`: `name` + "_" + each step."""
    profile, ev, instants = (f"{name}_{step}" for step in HISTORY_STEPS)
    return profile, ev, instants


def lead_history_sql(*, leads: str, events: str, scope: str, name: str, max_lead_age_days: int,
                     half_life_days: float, content_types: Sequence[str] = CONTENT_TYPES,
                     titles: str | None = None, cut: str | None = None) -> dict[str, str]:
    """The part of the feature query that does not depend on `as_of`, for the leads of the
    relation `scope` (lead_id, created_at), as three steps (table name -> SELECT, in order;
    the names are `history_tables(name)`):

    - profile: one row per lead, its fit features and its first unsubscribe and bounce;
    - events: its deduplicated positive events within the only span that can ever count,
      each with its type code (`_type_code_sql`);
    - instants: per lead and instant with a positive event, a pricing-page view among them?
      and the exact cumulative decay weight up to it (a running sum in time order).

    Nothing here depends on `as_of` beyond the data `cut` (an SQL timestamp; None: every
    event), so one-lead serving computes them once for the whole CRM and filters them per
    request (`lead_feature_sql(history=...)`). `titles`: parsed titles (`titles_sql`)
    covering `leads` (None: parsed here)."""
    profile, ev, instants = history_tables(name)
    positive = ", ".join(f"'{e}'" for e in POSITIVE_EVENT_TYPES)
    age = f"INTERVAL {max_lead_age_days} DAY"
    before_cut = f"\n  AND e.occurred_at < {cut}" if cut else ""
    return {
        profile: f"""
WITH negatives AS (
    SELECT lead_id,
        min(occurred_at) FILTER (WHERE event_type = 'unsubscribe') AS first_unsubscribe,
        min(occurred_at) FILTER (WHERE event_type = 'email_bounce') AS first_bounce
    FROM {events} WHERE event_type IN ('unsubscribe', 'email_bounce') GROUP BY lead_id
),
titles AS (SELECT * FROM {titles or f"({titles_sql(leads)})"})
SELECT
    l.lead_id,
    coalesce(tt.seniority, 'unknown') AS seniority,
    coalesce(tt.department, 'unknown') AS department,
    {_size_band_sql('l.company_size')} AS company_size_band,
    CAST(l.company_size AS DOUBLE) AS company_size,
    CAST(l.annual_revenue AS DOUBLE) AS annual_revenue,
    {_category_sql('l.industry')} AS industry,
    {_category_sql('l.country', 'upper')} AS country,
    {_category_sql('l.source')} AS source,
    CASE WHEN l.bant_budget IS NULL THEN 'unknown' WHEN l.bant_budget THEN 'yes' ELSE 'no' END AS bant_budget,
    {_category_sql('l.bant_timeline')} AS bant_timeline,
    CAST(coalesce(l.free_mail, false) AS DOUBLE) AS free_mail,
    CAST(coalesce(l.email_invalid, false) AS DOUBLE) AS email_invalid,
    CAST(coalesce(l.placeholder_name, false) AS DOUBLE) AS placeholder_name,
    n.first_unsubscribe, n.first_bounce
FROM {leads} l JOIN (SELECT DISTINCT lead_id FROM {scope}) s USING (lead_id)
LEFT JOIN negatives n ON n.lead_id = l.lead_id
LEFT JOIN titles tt ON tt.job_title IS NOT DISTINCT FROM l.job_title
""",
        ev: f"""
SELECT DISTINCT e.lead_id, e.occurred_at, e.event_type, e.content_type, {_type_code_sql(content_types)} AS type_code
FROM {events} e JOIN (SELECT DISTINCT lead_id, created_at FROM {scope}) l USING (lead_id)
WHERE e.event_type IN ({positive})
  AND e.occurred_at < l.created_at + {age}{before_cut}
""",
        instants: f"""
SELECT s.lead_id, s.occurred_at, s.pricing,
    sum(s.n * pow(2.0, least({_MAX_DECAY_EXPONENT}, {_days('s.occurred_at', 'l.created_at')} / {half_life_days})))
        OVER (PARTITION BY s.lead_id ORDER BY s.occurred_at ROWS UNBOUNDED PRECEDING) AS cum_w
FROM (SELECT lead_id, occurred_at, count(*) AS n, bool_or(event_type = 'pricing_page_view') AS pricing
      FROM {ev} GROUP BY lead_id, occurred_at) s
JOIN (SELECT DISTINCT lead_id, created_at FROM {scope}) l USING (lead_id)
""",
    }


def feature_query(
    as_of_dates: Sequence[str],
    target_stage: str,
    max_lead_age_days: int,
    windows_days: Sequence[int],
    half_life_days: float,
    content_types: Sequence[str],
    titles: str | None = None,
    sources: Mapping[str, str] | None = None,
    history: Sequence[str] | None = None,
) -> tuple[dict[str, str], str]:
    """The feature query, in DuckDB's SQL (`leadscore.spark.sql.spark_sql` transpiles it):
    (steps to materialise in order as temporary tables, final SELECT). Materialising the
    steps gives DuckDB's planner real cardinalities (CTEs over a VALUES list mislead it).

    `as_of_dates`: SQL timestamps (literals or a parameter), latest last. `sources`: the
    relations read as `leads`, `events` and `outcomes` (default: those names). `history`:
    relations already holding `lead_history_sql`'s three steps (profile, events, instants)
    for at least the eligible leads; None: they are steps here, for the eligible leads and
    the events before the latest `as_of`."""
    suffix = uuid.uuid4().hex[:10]
    src = {"leads": "leads", "events": "events", "outcomes": "outcomes", **(sources or {})}
    dates = ", ".join(f"({d})" for d in as_of_dates)
    closing = ", ".join(f"'{s}'" for s in sorted(set(_stages_from(target_stage)) | {"won", "lost"}))
    maxw = max(windows_days)
    age = f"INTERVAL {max_lead_age_days} DAY"

    code, n_codes = _window_code_sql(windows_days, content_types)

    eligible = f"_eligible_{suffix}"
    steps = {
        eligible: f"""
WITH as_of_dates(as_of) AS (VALUES {dates}),
closed AS (
    SELECT lead_id, min(stage_at) AS closed_at FROM {src["outcomes"]}
    WHERE stage IN ({closing}) GROUP BY lead_id
)
SELECT l.lead_id, d.as_of, l.created_at
FROM {src["leads"]} l
JOIN as_of_dates d ON l.created_at < d.as_of AND l.created_at >= d.as_of - {age}
LEFT JOIN closed c ON c.lead_id = l.lead_id
WHERE c.closed_at IS NULL OR c.closed_at >= d.as_of
""",
    }
    if history is None:
        computed = lead_history_sql(leads=src["leads"], events=src["events"], scope=eligible, name=f"_{suffix}",
                                    max_lead_age_days=max_lead_age_days, half_life_days=half_life_days,
                                    content_types=content_types, titles=titles, cut=as_of_dates[-1])
        steps.update(computed)
        history = list(computed)
    profile, ev, instants = history
    final = f"""
WITH windowed AS (
    SELECT lead_id, as_of, array_agg(n * {n_codes} + code) AS window_counts
    FROM (
        SELECT el.lead_id, el.as_of, {code} AS code, count(*) AS n
        FROM {eligible} el JOIN {ev} x
          ON x.lead_id = el.lead_id AND x.occurred_at < el.as_of
         AND x.occurred_at >= el.as_of - INTERVAL {maxw} DAY
        GROUP BY el.lead_id, el.as_of, code
    ) GROUP BY lead_id, as_of
),
history AS (
    SELECT el.lead_id, el.as_of,
        max(s.occurred_at) AS last_activity,
        max(s.occurred_at) FILTER (WHERE s.pricing) AS last_pricing,
        max_by(s.cum_w, s.occurred_at) AS cum_w
    FROM {eligible} el JOIN {instants} s
      ON s.lead_id = el.lead_id AND s.occurred_at < el.as_of
    GROUP BY el.lead_id, el.as_of
)
SELECT
    r.lead_id, r.as_of,
    p.seniority, p.department, p.company_size_band, p.company_size, p.annual_revenue, p.industry,
    p.country, p.source, p.bant_budget, p.bant_timeline, p.free_mail, p.email_invalid, p.placeholder_name,
    {_days('r.as_of', 'r.created_at')} AS lead_age_days,
    {_days('r.as_of', 'h.last_activity')} AS days_since_last_activity,
    {_days('r.as_of', 'h.last_pricing')} AS days_since_last_pricing_page_view,
    coalesce(h.cum_w * pow(2.0, -least({_MAX_DECAY_EXPONENT}, {_days('r.as_of', 'r.created_at')} / {half_life_days})), 0.0)
        AS engagement_decayed,
    CAST(coalesce(p.first_unsubscribe < r.as_of, false) AS DOUBLE) AS unsubscribed,
    CAST(coalesce(p.first_bounce < r.as_of, false) AS DOUBLE) AS email_bounced,
    w.window_counts
FROM {eligible} r
JOIN {profile} p USING (lead_id)
LEFT JOIN history h ON h.lead_id = r.lead_id AND h.as_of = r.as_of
LEFT JOIN windowed w ON w.lead_id = r.lead_id AND w.as_of = r.as_of
ORDER BY r.as_of, r.lead_id
"""
    return steps, final


def build_features(
    con: duckdb.DuckDBPyConnection,
    as_of_dates: Sequence[dt.datetime],
    *,
    target_stage: str,
    max_lead_age_days: int,
    windows_days: Sequence[int],
    half_life_days: float,
    content_types: Sequence[str] = CONTENT_TYPES,
    titles: str | None = None,
    materialize: bool = True,
) -> pd.DataFrame:
    """Features of every eligible lead at each `as_of`, using only records before it.

    Returns `lead_id`, `as_of` and the catalog's columns, sorted by (as_of, lead_id).
    Categorical columns are strings ("unknown" when missing); numeric ones are float64.

    `titles`: a relation of parsed titles (`titles_sql`) holding every job title of `leads`
    (a cache kept by one-lead serving; None: parse them here). `materialize`: the
    intermediate steps as temporary tables (real cardinalities for the planner, the right
    choice for many leads) or as CTEs of one query (less overhead for one lead).
    """
    if not as_of_dates:
        raise ValueError("no as_of dates to build features for")
    if max_lead_age_days / half_life_days > _MAX_DECAY_EXPONENT:
        raise ValueError(
            f"features.half_life_days={half_life_days} is too small for max_lead_age_days="
            f"{max_lead_age_days} (ratio must be <= {_MAX_DECAY_EXPONENT})"
        )
    steps, final = feature_query(
        [timestamp_sql(d) for d in sorted(set(as_of_dates))], target_stage, max_lead_age_days, windows_days,
        half_life_days, content_types, titles)
    if not materialize:
        final, steps = _one_statement(steps, final), {}
    try:
        for name, sql in steps.items():
            con.execute(f"CREATE TEMP TABLE {name} AS {sql}")
        table = con.sql(final).to_arrow_table()  # Arrow: the dtypes of `.df()`, several times faster
    finally:
        for name in steps:
            con.execute(f"DROP TABLE IF EXISTS temp.{name}")
    return feature_frame(table, windows_days, content_types)




def eligibility_sql(as_of: dt.datetime, **feature_settings) -> str:
    """The SELECT of the (lead_id, as_of, created_at) eligible at `as_of`: the first step of
    the feature query (for checks that every eligible lead was scored). `feature_settings`:
    as `build_features` takes them."""
    steps, _ = feature_query([timestamp_sql(as_of)], **feature_settings)
    return next(iter(steps.values()))

def _one_statement(steps: Mapping[str, str], final: str) -> str:
    """The steps as the first CTEs of the final query: one statement (less overhead for one lead)."""
    ctes = ",\n".join(f"{name} AS ({sql})" for name, sql in steps.items())
    return f"WITH {ctes},\n{final.strip().removeprefix('WITH ')}"


def lead_feature_sql(*, leads: str, events: str, outcomes: str, titles: str, target_stage: str,
                     max_lead_age_days: int, windows_days: Sequence[int], half_life_days: float,
                     content_types: Sequence[str] = CONTENT_TYPES, history: Sequence[str] | None = None) -> str:
    """One statement of the feature query for ONE lead, with parameters `$lead_id` and
    `$as_of` (the code of `build_features`; run it and pass the Arrow result to
    `feature_frame`). `leads`, `events`, `outcomes`: relations holding at least that lead's
    rows (they are filtered on `$lead_id`); `titles`: parsed titles (`titles_sql`) covering
    the lead's job title; `history`: relations holding `lead_history_sql`'s three steps
    (profile, events, instants) for at least that lead, with no cut (None: computed here)."""
    def one(rel: str) -> str:
        return f"(SELECT * FROM {rel} WHERE lead_id = $lead_id)"

    sources = {"leads": one(leads), "events": one(events), "outcomes": one(outcomes)}
    steps, final = feature_query(["CAST($as_of AS TIMESTAMP)"], target_stage, max_lead_age_days, windows_days,
                                half_life_days, content_types, titles, sources,
                                history=None if history is None else [one(rel) for rel in history])
    return _one_statement(steps, final)


def feature_frame(table, windows_days: Sequence[int], content_types: Sequence[str] = CONTENT_TYPES
                  ) -> pd.DataFrame:
    """The feature table from the Arrow result of the feature query (any engine): the
    window counts unpacked into their columns, the click-through rate, the catalog's order
    and dtypes."""
    import pyarrow as pa

    catalog = feature_catalog(windows_days, content_types)
    counts = window_count_matrix(table.column("window_counts"), windows_days, content_types)
    columns = {name: table.column(name) for name in table.column_names if name != "window_counts"}
    names = [f.name for f in catalog.features if f.unit == "count"]
    columns.update((name, pa.array(col)) for name, col in zip(names, counts, strict=True))
    maxw = max(windows_days)
    opens, clicks = counts[names.index(f"email_open_{maxw}d")], counts[names.index(f"email_click_{maxw}d")]
    with np.errstate(divide="ignore", invalid="ignore"):
        columns[f"email_ctr_{maxw}d"] = pa.array(np.where(opens > 0, clicks / opens, np.nan))
    order = ["lead_id", "as_of", *catalog.names]
    # one conversion of the whole table: Arrow builds pandas' blocks in one pass
    df = pa.table({name: columns[name] for name in order}).to_pandas()
    for name in catalog.categorical:
        if df[name].dtype != "str":
            df[name] = df[name].astype("str")
    if df["as_of"].dtype != "datetime64[us]":
        df["as_of"] = df["as_of"].astype("datetime64[us]")
    return df



def label_query(keys: str, outcomes: str, *, target_stage: str, horizon_days: int, cutoff: dt.datetime) -> str:
    """The label of each (lead_id, as_of) row of the relation `keys`: 1 if the lead reached
    `target_stage` or later within `horizon_days` after `as_of`; rows whose window ends
    after `cutoff` are left out (DuckDB's SQL, like `feature_query`)."""
    stages = ", ".join(f"'{s}'" for s in _stages_from(target_stage))
    return f"""
SELECT k.lead_id, k.as_of, CAST(count(o.lead_id) > 0 AS TINYINT) AS label
FROM {keys} k LEFT JOIN {outcomes} o
  ON o.lead_id = k.lead_id AND o.stage IN ({stages})
 AND o.stage_at >= k.as_of AND o.stage_at < k.as_of + INTERVAL {horizon_days} DAY
WHERE k.as_of + INTERVAL {horizon_days} DAY <= {timestamp_sql(cutoff)}
GROUP BY k.lead_id, k.as_of
"""

def add_labels(
    con: duckdb.DuckDBPyConnection,
    features: pd.DataFrame,
    *,
    target_stage: str,
    horizon_days: int,
    cutoff: dt.datetime,
) -> pd.DataFrame:
    """Label rows (1 if the lead reached `target_stage` or later within `horizon_days`
    after `as_of`) and drop rows whose label window ends after `cutoff`."""
    keys = features[["lead_id", "as_of"]]
    con.register("_keys", keys)
    try:
        labels = con.execute(label_query("_keys", "outcomes", target_stage=target_stage,
                                         horizon_days=horizon_days, cutoff=cutoff)).df()
    finally:
        con.unregister("_keys")
    labels["as_of"] = labels["as_of"].astype("datetime64[us]")
    out = features.merge(labels, on=["lead_id", "as_of"], how="inner", validate="one_to_one")
    out = out.sort_values(["as_of", "lead_id"], kind="stable").reset_index(drop=True)
    cols = ["lead_id", "as_of", "label", *[c for c in features.columns if c not in ("lead_id", "as_of")]]
    return out[cols]


def mature_schedule(
    start: dt.date, end: dt.date | None, every_months: int, horizon_days: int, cutoff: dt.datetime
) -> list[dt.datetime]:
    """The training schedule: dates whose label window closes on or before the cutoff."""
    last = (cutoff - dt.timedelta(days=horizon_days)).date()
    if end is not None:
        last = min(last, end)
    return as_of_schedule(start, last, every_months)



def training_table(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of_start: dt.date,
    as_of_end: dt.date | None,
    every_months: int,
    cutoff: dt.datetime | None,
    target_stage: str,
    horizon_days: int,
    max_lead_age_days: int,
    windows_days: Sequence[int],
    half_life_days: float,
    content_types: Sequence[str] = CONTENT_TYPES,
) -> tuple[pd.DataFrame, dict]:
    """The labelled point-in-time training table and a summary of it (no lead data)."""
    cutoff = cutoff or data_cutoff(con)
    schedule = mature_schedule(as_of_start, as_of_end, every_months, horizon_days, cutoff)
    if not schedule:
        raise ValueError(
            f"no as_of date between {as_of_start} and the last mature date "
            f"({(cutoff - dt.timedelta(days=horizon_days)).date()}: data cutoff {cutoff} minus "
            f"horizon_days={horizon_days}); lower features.as_of_start or horizon_days"
        )
    feats = build_features(
        con, schedule, target_stage=target_stage, max_lead_age_days=max_lead_age_days,
        windows_days=windows_days, half_life_days=half_life_days, content_types=content_types,
    )
    table = add_labels(con, feats, target_stage=target_stage, horizon_days=horizon_days, cutoff=cutoff)
    per_date = table.groupby("as_of")["label"].agg(["size", "sum"])
    summary = {
        "rows": len(table),
        "positives": int(table["label"].sum()),
        "base_rate": round(float(table["label"].mean()), 6) if len(table) else None,
        "leads": int(table["lead_id"].nunique()),
        "as_of_dates": len(schedule),
        "as_of_first": schedule[0].date().isoformat(),
        "as_of_last": schedule[-1].date().isoformat(),
        "data_cutoff": cutoff.isoformat(),
        "features": len(feats.columns) - 2,
        "per_as_of": {
            d.date().isoformat(): {"rows": int(r["size"]), "positives": int(r["sum"])}
            for d, r in per_date.iterrows()
        },
    }
    return table, summary


def training_table_from_crm(crm: str | Path, cfg) -> tuple[pd.DataFrame, dict]:
    """`training_table` of the validated CRM DuckDB file `crm` with the `features` section
    `cfg` (a `leadscore.config.FeaturesConfig`); an unreadable file is bad input."""
    from leadscore.errors import InputError
    from leadscore.io import quiet

    try:
        con = quiet(duckdb.connect(str(crm), read_only=True))
    except duckdb.Error as err:
        raise InputError(f"{crm}: not a readable DuckDB file ({type(err).__name__})") from None
    with con:
        return training_table(
            con, as_of_start=cfg.as_of_start, as_of_end=cfg.as_of_end,
            every_months=cfg.as_of_every_months, cutoff=cfg.cutoff_datetime,
            target_stage=cfg.target_stage, horizon_days=cfg.horizon_days,
            max_lead_age_days=cfg.max_lead_age_days, windows_days=cfg.windows_days,
            half_life_days=cfg.half_life_days, content_types=cfg.content_types)
