"""One lead's features, for `leadscore explain`.

`lead_features` computes one lead's features as of a date with the same
`build_features` as training, over a view of the CRM restricted to that lead, and raises
`LeadError` (an `InputError`) with a clear message for an unknown or ineligible lead.
`key_values` lists the features of that row worth showing. The probability, grade and
reasons come from `leadscore.serve.scorer.Scorer`, as everywhere else.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from leadscore.errors import InputError
from leadscore.features.catalog import FeatureCatalog
from leadscore.io import sql_literal


class LeadError(InputError):
    """A lead that cannot be explained: not in the CRM, or not eligible at that date."""


def lead_features(crm: str | Path, lead_id: str, as_of: dt.datetime | None, cfg
                  ) -> tuple[pd.DataFrame, dt.datetime]:
    """One lead's feature row as of `as_of` (None: midnight after the data cutoff, so every
    record counts), computed by `build_features` over the CRM restricted to that lead.
    `cfg` is a `FeaturesConfig`. Raises `LeadError` for an unknown or ineligible lead."""
    from leadscore.features.build import build_features, data_cutoff

    crm = Path(crm)
    if not crm.exists():
        raise FileNotFoundError(f"{crm}: CRM database not found (run the validate stage, or pass --crm)")
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {sql_literal(str(crm))} AS crm (READ_ONLY)")
        for t in ("leads", "events", "outcomes"):
            con.execute(f"CREATE VIEW all_{t} AS SELECT * FROM crm.{t}")
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM all_{t}")
        cutoff = cfg.cutoff_datetime or data_cutoff(con)  # over the whole CRM
        if as_of is None:
            as_of = dt.datetime.combine(cutoff.date() + dt.timedelta(days=1), dt.time())
        found = con.execute(f"SELECT created_at FROM all_leads WHERE lead_id = {sql_literal(lead_id)}").fetchall()
        if not found:
            raise LeadError(f"lead '{lead_id}' is not in the CRM ({crm}, table leads)")
        for t in ("leads", "events", "outcomes"):
            con.execute(f"CREATE OR REPLACE VIEW {t} AS SELECT * FROM all_{t} "
                        f"WHERE lead_id = {sql_literal(lead_id)}")
        df = build_features(con, [as_of], target_stage=cfg.target_stage,
                            max_lead_age_days=cfg.max_lead_age_days, windows_days=cfg.windows_days,
                            half_life_days=cfg.half_life_days, content_types=cfg.content_types)
        if df.empty:
            raise LeadError(_why_not_eligible(con, lead_id, found[0][0], as_of, cfg))
        return df, as_of
    finally:
        con.close()


def _why_not_eligible(con, lead_id: str, created_at: dt.datetime, as_of: dt.datetime, cfg) -> str:
    head = f"lead '{lead_id}' is not eligible for scoring at {as_of:%Y-%m-%d %H:%M}: "
    if created_at >= as_of:
        return head + f"it was created later ({created_at:%Y-%m-%d}). Pass a later --as-of."
    age = (as_of - created_at).days
    if age > cfg.max_lead_age_days:
        return head + (f"it is {age} days old, older than features.max_lead_age_days="
                       f"{cfg.max_lead_age_days} (stale leads are not scored).")
    from leadscore.features.build import _stages_from

    closing = sorted(set(_stages_from(cfg.target_stage)) | {"won", "lost"})
    row = con.execute(
        f"SELECT stage, stage_at FROM all_outcomes WHERE lead_id = {sql_literal(lead_id)} AND stage IN "
        f"({', '.join(map(sql_literal, closing))}) AND stage_at < ? ORDER BY stage_at LIMIT 1",
        [as_of]).fetchone()
    if row:
        return head + f"it already reached '{row[0]}' on {row[1]:%Y-%m-%d} (converted or closed leads are not scored)."
    return head + "it does not meet the eligibility rules of leadscore.features.build."


def key_values(X: pd.DataFrame, catalog: FeatureCatalog, names: list[str]) -> list[tuple[str, str, str]]:
    """(group, label, value) of one row's features worth showing: every fit feature and the
    engagement features that are not zero or missing."""
    from leadscore.explain.reasons import describe_one

    row = X.iloc[0]
    out = []
    for n in names:
        spec = catalog[n]
        v = row[n]
        if spec.group == "engagement" and spec.kind == "numeric":
            fv = float(v) if v is not None and not pd.isna(v) else np.nan
            if not np.isfinite(fv) or fv == 0:
                continue
        out.append((spec.group, spec.label, describe_one(spec, v)))
    return out
