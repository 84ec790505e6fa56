"""The CRM input contract and the names every other module agrees on.

Types are DuckDB SQL types; `io` casts every input source to them, so the rest of the
code sees one schema whatever the source (DuckDB, Parquet, CSV).
"""

from __future__ import annotations

from dataclasses import dataclass

EVENT_TYPES: tuple[str, ...] = (
    "email_open",
    "email_click",
    "web_visit",
    "pricing_page_view",
    "content_download",
    "webinar_registration",
    "webinar_attendance",
    "demo_video_view",
    "form_submit",
    "demo_request",
    "unsubscribe",
    "email_bounce",
)
NEGATIVE_EVENT_TYPES: tuple[str, ...] = ("unsubscribe", "email_bounce")
CONTENT_TYPES: tuple[str, ...] = ("whitepaper", "case_study", "product_sheet", "blog", "ebook")
STAGES: tuple[str, ...] = ("mql", "sql", "opportunity", "won", "lost", "recycled")
# Stages after which a lead is no longer open for scoring ("converted or closed").
CLOSING_STAGES: tuple[str, ...] = ("opportunity", "won", "lost")
# Ordered funnel: reaching a later stage implies the earlier ones.
FUNNEL: tuple[str, ...] = ("mql", "sql", "opportunity", "won")

# Personal data. Read only to derive flags (e.g. free-mail domain); never written out.
PII_COLUMNS: tuple[str, ...] = ("email", "first_name", "last_name")


@dataclass(frozen=True)
class Table:
    """One CRM table: its columns with DuckDB types, key and nullable columns."""

    name: str
    columns: dict[str, str]
    key: tuple[str, ...]
    required: tuple[str, ...]  # columns that must be non-null

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)


LEADS = Table(
    name="leads",
    columns={
        "lead_id": "VARCHAR",
        "created_at": "TIMESTAMP",
        "email": "VARCHAR",
        "first_name": "VARCHAR",
        "last_name": "VARCHAR",
        "job_title": "VARCHAR",
        "company_size": "INTEGER",
        "annual_revenue": "DOUBLE",
        "industry": "VARCHAR",
        "country": "VARCHAR",
        "source": "VARCHAR",
        "bant_budget": "BOOLEAN",
        "bant_timeline": "VARCHAR",
    },
    key=("lead_id",),
    required=("lead_id", "created_at", "source"),
)

EVENTS = Table(
    name="events",
    columns={
        "event_id": "VARCHAR",
        "lead_id": "VARCHAR",
        "occurred_at": "TIMESTAMP",
        "event_type": "VARCHAR",
        "content_type": "VARCHAR",
    },
    key=("event_id",),
    required=("event_id", "lead_id", "occurred_at", "event_type"),
)

OUTCOMES = Table(
    name="outcomes",
    columns={
        "lead_id": "VARCHAR",
        "stage": "VARCHAR",
        "stage_at": "TIMESTAMP",
        "amount": "DOUBLE",
    },
    key=("lead_id", "stage", "stage_at"),
    required=("lead_id", "stage", "stage_at"),
)

TABLES: dict[str, Table] = {t.name: t for t in (LEADS, EVENTS, OUTCOMES)}

# Sales' reason for rejecting an MQL: the closed list of `mql_feedback.reason`.
FEEDBACK_REASONS: tuple[str, ...] = (
    "no_budget", "no_authority", "no_need", "bad_timing", "bad_contact", "duplicate", "other",
)

# Optional: sales' accept or reject of an MQL. `reason` is one of FEEDBACK_REASONS, set when
# the MQL is rejected and empty when accepted (leadscore.data.validate quarantines the rest).
MQL_FEEDBACK = Table(
    name="mql_feedback",
    columns={
        "lead_id": "VARCHAR",
        "decided_at": "TIMESTAMP",
        "accepted": "BOOLEAN",
        "reason": "VARCHAR",
    },
    key=("lead_id", "decided_at"),
    required=("lead_id", "decided_at", "accepted"),
)

# Tables a CRM may leave out: read, copied and validated when present, skipped when absent.
OPTIONAL_TABLES: dict[str, Table] = {t.name: t for t in (MQL_FEEDBACK,)}

# The planted canary PII: the generator writes it into one lead, and tests assert it
# never appears in any file the pipeline writes.
CANARY_EMAIL = "zelda.canary-7f3a9c@canary-pii.example"
CANARY_FIRST_NAME = "Zebulon"
CANARY_LAST_NAME = "Canarywhistle"
