"""Validate the ingested CRM with Great Expectations: one suite and one checkpoint per table.

Each table is one checkpoint run (one batch) of its suite (`table_suite`), whose
expectations are of two levels (`meta.level`):

TABLE-LEVEL (any failure fails the stage): the table is not empty
(ExpectTableRowCountToBeBetween), its columns are exactly the ingested contract plus the
derived columns below (ExpectTableColumnsToMatchSet), each column has its contract type
(ExpectColumnValuesToBeOfType on the pandas dtypes DuckDB gives), and the null share of
each column named in ``validate.max_null_share`` is within its bound
(ExpectColumnProportionOfNonNullValuesToBeBetween with ``min_value = 1 - bound``). The table-level failures of
every table are reported together, and then nothing is quarantined.

ROW-LEVEL (bad rows are quarantined with a reason, ``meta.reason``): required columns are
non-null; keys are unique (rows beyond the first of a key are quarantined; the first is
kept, in the order lead_id/created_at, event_id/occurred_at, lead_id/stage/stage_at);
event_type, content_type and stage take allowed values; no timestamp is after the reference
time (the suite parameter ``now``); sizes, revenues and amounts are not negative.
Cross-table checks, which GE cannot do natively, are expressed through derived columns that
the suite then checks natively: ``lead_known`` (the lead_id exists in ``leads``: False means
an orphan row), ``lead_valid`` (the lead itself passed validation; events and outcomes of a
quarantined lead are quarantined with it) and ``lead_created_at`` (an event or outcome must
not precede its lead's creation: ExpectColumnPairValuesAToBeGreaterThanB). Leads are
validated first.

If the quarantined share of any table exceeds ``validate.quarantine_budget`` the stage
fails too. Failures raise `ValidationFailed`, whose message names table, column,
expectation, count and up to ``sample_keys`` keys (lead_id / event_id): never row values.
Double-logged events (same lead/time/type, new event_id) are not a validation matter:
the feature code deduplicates them.

The optional ``mql_feedback`` table (sales' accept/reject of an MQL) is validated the same
way when the ingested file has it, and skipped when it does not; it may be empty. Its rows
are quarantined for a null lead_id/decided_at/accepted, a duplicate (lead_id, decided_at), a
reason outside ``schema.FEEDBACK_REASONS``, a decision after ``now``, an unknown or
quarantined lead, a decision before the lead's creation, and ``reason_mismatch``: the reason
must be set exactly when the MQL was rejected (derived column ``reason_fits_decision``).

The suites defined here are the single source of truth: `sync_gx_project` writes them into
the GX project (`gx/`, see `leadscore.data.gx_project`), and without a project they run in
an in-memory context. GX never sees personal data (`gx_project.gx_frame`).

Timestamps are naive and read as UTC; an aware ``now`` is converted to naive UTC.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from leadscore.config import ValidateConfig
from leadscore.data.ingest import INGESTED_OPTIONAL_TABLES, INGESTED_TABLES
from leadscore.errors import InputError
from leadscore.io import quiet, safe_key, write_duckdb_tables
from leadscore.progress import bar
from leadscore.schema import (
    CONTENT_TYPES,
    EVENT_TYPES,
    FEEDBACK_REASONS,
    PII_COLUMNS,
    STAGES,
    Table,
)

log = logging.getLogger(__name__)

# The pandas scalar type of each contract type, as DuckDB's `.df()` gives it (GE compares
# `dtype.type`, so int32 and nullable Int32 both pass as INTEGER). An all-null VARCHAR
# arrives as an object column; GE then checks its non-null values instead.
PANDAS_TYPES: dict[str, str] = {
    "VARCHAR": "str",
    "TIMESTAMP": "datetime64",
    "INTEGER": "int32",
    "DOUBLE": "float64",
    "BOOLEAN": "bool",
}
# Load order: decides which row of a duplicated key is "the first" (kept).
LOAD_ORDER: dict[str, str] = {
    "leads": "lead_id, created_at, source",
    "events": "event_id, occurred_at, lead_id",
    "outcomes": "lead_id, stage, stage_at, amount",
    "mql_feedback": "lead_id, decided_at, accepted, reason",
}
NON_NEGATIVE: dict[str, tuple[str, ...]] = {
    "leads": ("company_size", "annual_revenue"),
    "outcomes": ("amount",),
}
TIME_COLUMN: dict[str, str] = {"leads": "created_at", "events": "occurred_at", "outcomes": "stage_at",
                               "mql_feedback": "decided_at"}
DERIVED = ("lead_known", "lead_valid", "lead_created_at", "reason_fits_decision")
ALL_TABLES: dict[str, Table] = {**INGESTED_TABLES, **INGESTED_OPTIONAL_TABLES}
NULL_SHARE = "expect_column_proportion_of_non_null_values_to_be_between"
QUARANTINE_COLUMNS = ("table_name", "row_key", "reason", "row_json")


class ValidationFailed(InputError):
    """The CRM failed a table-level check, or a table's quarantined share is over budget."""

    def __init__(self, failures: Sequence[Failure], headline: str) -> None:
        self.failures = list(failures)
        lines = [headline] + [f"  - {f}" for f in self.failures]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Failure:
    """One failed check, safe to print: counts and keys, never values."""

    table: str
    column: str | None
    expectation: str
    count: int | None
    keys: tuple[str, ...] = ()
    detail: str = ""

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        parts = [f"{where}: {self.expectation}"]
        if self.count is not None:
            parts.append(f"{self.count} bad row(s)")
        if self.detail:
            parts.append(self.detail)
        if self.keys:
            parts.append("e.g. " + ", ".join(self.keys))
        return "; ".join(parts)


@dataclass
class ValidationResult:
    """Clean tables, the quarantine, and the report/metrics dictionaries."""

    tables: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    report: dict[str, Any]
    metrics: dict[str, Any]


# --------------------------------------------------------------------------- GX plumbing


@functools.cache
def _gxe() -> Any:
    """GX's expectation classes, imported lazily (GX is slow to import)."""
    from leadscore.data.gx_import import import_gx

    return import_gx().expectations


def _raised(r: Any) -> bool:
    return bool(r.exception_info and r.exception_info.get("raised_exception"))


def _check_raised(name: str, results: Sequence[Any]) -> None:
    for r in results:
        if _raised(r):
            raise RuntimeError(
                f"Great Expectations could not evaluate {r.expectation_config.type} on {name}: "
                f"{r.exception_info.get('exception_message')}"
            )


def _column_of(config: Any) -> str | None:
    kw = config.kwargs
    if "column" in kw:
        return kw["column"]
    if "column_A" in kw:
        return f"{kw['column_A']}>={kw['column_B']}"
    if "column_list" in kw:
        return "(" + ", ".join(kw["column_list"]) + ")"
    return None


# --------------------------------------------------------------------------- suites


def derived_columns(name: str) -> tuple[str, ...]:
    """The cross-table columns the row checks of table `name` add (none for leads)."""
    if name == "leads":
        return ()
    return DERIVED[:3] + (("reason_fits_decision",) if name == "mql_feedback" else ())


def table_level_expectations(spec: Table, max_null_share: Mapping[str, float]) -> list[Any]:
    """Table-level expectations (`meta.level == "table"`): non-empty (an optional table may
    be empty), exact column set (the contract plus the derived columns), types, null-share
    bounds."""
    gxe = _gxe()
    meta = {"level": "table"}
    exps = [
        gxe.ExpectTableRowCountToBeBetween(
            min_value=0 if spec.name in INGESTED_OPTIONAL_TABLES else 1, meta=meta),
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[*spec.columns, *derived_columns(spec.name)], exact_match=True, meta=meta),
    ]
    for col, typ in spec.columns.items():
        exps.append(gxe.ExpectColumnValuesToBeOfType(
            column=col, type_=PANDAS_TYPES[typ], meta={**meta, "contract_type": typ}))
    for col, bound in max_null_share.items():  # an aggregate: no list of the null rows
        exps.append(gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
            column=col, min_value=round(1 - bound, 10), meta={**meta, "max_null_share": bound}))
    return exps


def row_level_expectations(spec: Table) -> list[Any]:
    """Row-level expectations (`meta.level == "row"`); each carries `meta.reason`, the
    quarantine reason code. The reference time is the suite parameter `now`."""
    gxe = _gxe()
    name = spec.name

    def meta(reason: str) -> dict[str, str]:
        return {"level": "row", "reason": reason}

    exps = [gxe.ExpectColumnValuesToNotBeNull(column=c, meta=meta("null_required"))
            for c in spec.required]
    if len(spec.key) == 1:
        exps.append(gxe.ExpectColumnValuesToBeUnique(column=spec.key[0], meta=meta("duplicate_key")))
    else:
        exps.append(gxe.ExpectCompoundColumnsToBeUnique(
            column_list=list(spec.key), meta=meta("duplicate_key")))
    allowed = {"events": {"event_type": EVENT_TYPES, "content_type": CONTENT_TYPES},
               "outcomes": {"stage": STAGES},
               "mql_feedback": {"reason": FEEDBACK_REASONS}}.get(name, {})
    for col, values in allowed.items():
        exps.append(gxe.ExpectColumnValuesToBeInSet(
            column=col, value_set=list(values), meta=meta("unknown_value")))
    exps.append(gxe.ExpectColumnValuesToBeBetween(
        column=TIME_COLUMN[name], max_value={"$PARAMETER": "now"}, meta=meta("future_timestamp")))
    for col in NON_NEGATIVE.get(name, ()):
        exps.append(gxe.ExpectColumnValuesToBeBetween(
            column=col, min_value=0, meta=meta("negative_value")))
    if name == "mql_feedback":  # a reason for every rejection, none for an acceptance
        exps.append(gxe.ExpectColumnValuesToBeInSet(
            column="reason_fits_decision", value_set=[True], meta=meta("reason_mismatch")))
    if name != "leads":
        exps += [
            gxe.ExpectColumnValuesToBeInSet(column="lead_known", value_set=[True],
                                            meta=meta("orphan")),
            gxe.ExpectColumnValuesToBeInSet(column="lead_valid", value_set=[True],
                                            meta=meta("lead_quarantined")),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=TIME_COLUMN[name], column_B="lead_created_at", or_equal=True,
                ignore_row_if="either_value_is_missing", meta=meta("before_lead_created")),
        ]
    return exps


def table_suite(spec: Table, max_null_share: Mapping[str, float]) -> Any:
    """The GX suite of one table (named like it): table-level then row-level expectations.
    The source of `gx/expectations/<table>.json` (see `leadscore.data.gx_project`)."""
    from leadscore.data.gx_import import import_gx

    gx = import_gx()

    return gx.ExpectationSuite(
        name=spec.name,
        expectations=[*table_level_expectations(spec, max_null_share), *row_level_expectations(spec)],
        meta={"generated_by": "leadscore.data.validate.table_suite",
              "parameters": {"now": "reference time of the future-timestamp check (naive UTC)"}},
    )


def suites(max_null_share: Mapping[str, Mapping[str, float]],
           names: Sequence[str] | None = None) -> list[Any]:
    """One suite per table (all four by default), with `validate.max_null_share`'s bounds."""
    return [table_suite(ALL_TABLES[n], max_null_share.get(n, {})) for n in (names or ALL_TABLES)]


def sync_gx_project(gx_dir: str | Path, max_null_share: Mapping[str, Mapping[str, float]],
                    data_docs_dir: str | Path | None = None) -> Any:
    """Open (or create) the GX project at `gx_dir`, bring its suites, validation definitions
    and checkpoints in line with `suites(max_null_share)`, and return the context."""
    from leadscore.data import gx_project

    context = gx_project.file_context(gx_dir, data_docs_dir)
    written = gx_project.sync(context, suites(max_null_share))
    if written:
        log.info("%s: suite(s) %s written from the code's definitions", gx_dir, written)
    return context


# --------------------------------------------------------------------------- helpers


def _naive_utc(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is not None:
        now = now.astimezone(dt.UTC).replace(tzinfo=None)
    return now


def row_keys(name: str, df: pd.DataFrame) -> pd.Series:
    """A printable key per row: lead_id, event_id, lead_id|stage|stage_at or
    lead_id|decided_at."""
    if name in ("outcomes", "mql_feedback"):
        cols = list(ALL_TABLES[name].key)
        key = df[cols[0]].astype("str")
        for c in cols[1:]:
            key = key + "|" + df[c].astype("str")
        key = key.where(df[cols].notna().all(axis=1))
    else:
        key = df[INGESTED_TABLES[name].key[0]]
    key = key.astype("object")
    fallback = pd.Series([f"row {i}" for i in df.index], index=df.index, dtype="object")
    return key.where(key.notna(), fallback).map(safe_key)


def _sample(name: str, df: pd.DataFrame, index: Sequence[int], n: int) -> tuple[str, ...]:
    """Up to `n` printable keys of the rows at `index`."""
    cols = set(ALL_TABLES[name].key)
    if n == 0 or not len(index) or not cols <= set(df.columns):
        return ()
    return tuple(row_keys(name, df.loc[list(index)[:n]]))


def _result_entry(table: str, level: str, r: Any) -> dict[str, Any]:
    cfg = r.expectation_config
    res = r.result or {}
    entry: dict[str, Any] = {
        "level": level,
        "expectation": cfg.type,
        "column": _column_of(cfg),
        "success": bool(r.success),
        "unexpected_count": res.get("unexpected_count"),
    }
    if level == "table" and "observed_value" in res:
        observed = res["observed_value"]
        if cfg.type == "expect_table_columns_to_match_set" and isinstance(observed, list):
            observed = [c for c in observed if c not in DERIVED]  # ours, not the input's
        entry["observed_value"] = observed
    if cfg.meta and "reason" in cfg.meta:
        entry["reason"] = cfg.meta["reason"]
    return entry


def _table_entry(table: str, r: Any, df: pd.DataFrame) -> dict[str, Any]:
    """A table-level report entry; a null-share check counts the nulls as unexpected rows
    (and holds vacuously on an empty table)."""
    entry = _result_entry(table, "table", r)
    if r.expectation_config.type == NULL_SHARE and entry["column"] in df.columns:
        entry["unexpected_count"] = int(df[entry["column"]].isna().sum())
        entry["success"] = entry["success"] or len(df) == 0
    return entry


def _table_failure(name: str, r: Any, df: pd.DataFrame, n: int) -> Failure:
    cfg = r.expectation_config
    res = r.result or {}
    col = _column_of(cfg)
    if cfg.type == "expect_table_row_count_to_be_between":
        return Failure(name, None, cfg.type, None, detail="table is empty")
    if cfg.type == "expect_table_columns_to_match_set":
        mism = (res.get("details") or {}).get("mismatched") or {}
        return Failure(name, None, cfg.type, None, detail=(
            f"missing column(s) {sorted(mism.get('missing') or [])}, "
            f"unexpected column(s) {sorted(mism.get('unexpected') or [])}"))
    if cfg.type == "expect_column_values_to_be_of_type":
        return Failure(name, col, cfg.type, None, detail=(
            f"contract type {cfg.meta.get('contract_type')}, found dtype {res.get('observed_value')}"))
    # null share above its bound
    nulls = df.index[df[col].isna()]
    share = len(nulls) / max(len(df), 1)
    return Failure(name, col, cfg.type, len(nulls), _sample(name, df, nulls, n), detail=(
        f"null share {share:.1%} above bound {cfg.meta.get('max_null_share'):.1%}"))


def _ns_timestamps(df: pd.DataFrame) -> pd.DataFrame:
    """Timestamp columns as datetime64[ns] where the values fit (GE compares those
    vectorised; with other units it loops in Python). Out-of-range columns stay as they are."""
    lo, hi = pd.Timestamp.min, pd.Timestamp.max
    for col in df.columns:
        s = df[col]
        convertible = pd.api.types.is_datetime64_dtype(s.dtype) and s.dtype != "datetime64[ns]"
        if convertible and (s.isna().all() or (s.min() >= lo and s.max() <= hi)):
            df[col] = s.astype("datetime64[ns]")
    return df


def load_tables(path: str | Path) -> dict[str, pd.DataFrame]:
    """Read leads/events/outcomes (and mql_feedback when the file has it) from an ingested
    DuckDB file, in `LOAD_ORDER`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: ingested CRM not found (run the ingest stage first)")
    try:
        con = quiet(duckdb.connect(str(path), read_only=True))
    except duckdb.Error as err:
        raise InputError(f"{path}: not a readable DuckDB database ({type(err).__name__})") from None
    try:
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        missing = [t for t in INGESTED_TABLES if t not in present]
        if missing:
            raise InputError(f"{path}: missing table(s) {missing}")
        frames = {}
        for name in [*INGESTED_TABLES, *(t for t in INGESTED_OPTIONAL_TABLES if t in present)]:
            cols = {r[0] for r in con.execute(f'DESCRIBE "{name}"').fetchall()}
            order = ", ".join(c for c in LOAD_ORDER[name].split(", ") if c in cols) or "1"
            frames[name] = _ns_timestamps(con.execute(f'SELECT * FROM "{name}" ORDER BY {order}').df())
        return frames
    finally:
        con.close()


# --------------------------------------------------------------------------- validation


def _present(tables: Mapping[str, pd.DataFrame]) -> dict[str, Table]:
    """The contract of every table to validate: the three required ones, then the optional
    ones in `tables` (validated when present, like the others)."""
    return {**INGESTED_TABLES, **{n: t for n, t in INGESTED_OPTIONAL_TABLES.items() if n in tables}}


def _with_lead_columns(
    name: str, df: pd.DataFrame, all_leads: pd.DataFrame, clean_leads: pd.DataFrame,
) -> pd.DataFrame:
    """Add the derived cross-table columns lead_known, lead_valid, lead_created_at (and, for
    mql_feedback, reason_fits_decision: a reason exactly when the MQL was rejected). When a
    column they need is missing (a table-level failure already) they are all null."""
    out = df.copy()
    if "lead_id" in df.columns and {"lead_id", "created_at"} <= set(clean_leads.columns):
        known = df["lead_id"].isin(all_leads["lead_id"])
        created = clean_leads.drop_duplicates("lead_id").set_index("lead_id")["created_at"]
        valid = df["lead_id"].isin(created.index)
        out["lead_known"] = known
        out["lead_valid"] = valid.astype("boolean").where(known, pd.NA)
        out["lead_created_at"] = df["lead_id"].map(created)
    else:
        for col in DERIVED[:3]:
            out[col] = pd.Series(pd.NA, index=df.index, dtype="object")
    if name == "mql_feedback":
        if {"accepted", "reason"} <= set(df.columns):
            rejected = ~df["accepted"].astype("boolean")  # NA (quarantined as null) stays NA
            out["reason_fits_decision"] = rejected == df["reason"].notna()
        else:
            out["reason_fits_decision"] = pd.Series(pd.NA, index=df.index, dtype="boolean")
    return out


def _quarantine_rows(
    name: str, df: pd.DataFrame, results: list[Any],
) -> tuple[dict[int, list[str]], list[tuple[Any, set[int]]]]:
    """Map row index -> reasons, from GE's unexpected indices (duplicates beyond the first)."""
    spec = ALL_TABLES[name]
    reasons: dict[int, list[str]] = {}
    per_exp = []
    for r in results:
        cfg = r.expectation_config
        idx = set()
        if not r.success:
            idx = {int(i) for i in (r.result or {}).get("unexpected_index_list") or []}
            if cfg.meta.get("reason") == "duplicate_key":
                later = df.index[df.duplicated(list(spec.key), keep="first")]
                idx &= set(map(int, later))
        per_exp.append((r, idx))
        code = f"{cfg.meta.get('reason')}:{_column_of(cfg)}"
        for i in idx:
            reasons.setdefault(i, []).append(code)
    return reasons, per_exp


def _quarantine_frame(name: str, df: pd.DataFrame, reasons: Mapping[int, list[str]]) -> pd.DataFrame:
    if not reasons:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in QUARANTINE_COLUMNS})
    idx = sorted(reasons)
    rows = df.loc[idx, [c for c in df.columns if c not in PII_COLUMNS and c not in DERIVED]]
    keys = row_keys(name, rows)
    payload = rows.to_json(orient="records", lines=True, date_format="iso").splitlines()
    return pd.DataFrame({
        "table_name": name,
        "row_key": list(keys),
        "reason": ["; ".join(reasons[i]) for i in idx],
        "row_json": payload,
    })


def _split(results: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Table-level and row-level results of one suite run (by `meta.level`)."""
    table = [r for r in results if r.expectation_config.meta.get("level") == "table"]
    return table, [r for r in results if r.expectation_config.meta.get("level") != "table"]


def _table_failures(name: str, results: Sequence[Any], df: pd.DataFrame, n: int) -> list[Failure]:
    """The failed table-level checks. An expectation GX could not evaluate because its
    column is missing is explained by the column-set failure; an empty table explains all."""
    failed = [r for r in results if not r.success and not _raised(r)]
    if len(df) == 0:
        failed = [r for r in failed if r.expectation_config.type == "expect_table_row_count_to_be_between"]
    failures = [_table_failure(name, r, df, n) for r in failed]
    clash = [c for c in derived_columns(name) if c in df.columns]
    if clash:  # a source column named like a derived one would be overwritten: refuse it
        failures.append(Failure(name, None, "expect_table_columns_to_match_set", None,
                                detail=f"missing column(s) [], unexpected column(s) {clash}"))
    return failures


def validate_tables(
    tables: Mapping[str, pd.DataFrame], *, now: dt.datetime, cfg: ValidateConfig,
    context: Any = None, progress: bool | None = None,
) -> ValidationResult:
    """Validate the ingested CRM frames; quarantine bad rows or raise `ValidationFailed`.

    `tables` maps leads/events/outcomes (and optionally mql_feedback) to frames as
    `load_tables` gives them; `now` is the reference time for "no future timestamps" (for
    mql_feedback: no decision after it). `context` is a GX context whose checkpoints match
    `suites(cfg.max_null_share)` (`sync_gx_project`); None: an in-memory one. Each table is
    one checkpoint run (one batch): table-level results first decide, row-level results
    then quarantine. Returns clean frames (same columns as the input), the quarantine frame,
    a report and metrics. `progress`: a bar of tables (checkpoints) on stderr (None: when
    stderr is a terminal; `leadscore.progress`).
    """
    from leadscore.data import gx_project

    missing = [t for t in INGESTED_TABLES if t not in tables]
    if missing:
        raise ValidationFailed([Failure(t, None, "table present", None) for t in missing],
                               "Validation failed: missing table(s)")
    now = _naive_utc(now)
    present = _present(tables)
    if context is None:
        context = gx_project.ephemeral_context()
        gx_project.sync(context, suites(cfg.max_null_share, list(present)))

    entries: dict[str, list[dict[str, Any]]] = {}
    table_failures: list[Failure] = []
    failures: list[Failure] = []
    clean: dict[str, pd.DataFrame] = {}
    quarantines: list[pd.DataFrame] = []
    table_stats: dict[str, dict[str, Any]] = {}
    with bar(present, unit="table", desc="validate", progress=progress) as tables_bar:
        for name in tables_bar:
            tables_bar.set_postfix_str(name, refresh=False)
            df = tables[name].reset_index(drop=True)
            checked = df if name == "leads" else _with_lead_columns(name, df, tables["leads"], clean["leads"])
            result = gx_project.run_checkpoint(context, name, checked, {"now": now})
            table_results, row_results = _split(result.results)
            entries[name] = [_table_entry(name, r, df) for r in table_results]
            failed = _table_failures(name, table_results, df, cfg.sample_keys)
            if failed or table_failures:  # nothing is quarantined once the CRM is rejected
                table_failures += failed
                clean[name] = df
                continue
            _check_raised(name, result.results)
            reasons, per_exp = _quarantine_rows(name, checked, row_results)
            share = len(reasons) / max(len(df), 1)  # an optional table may be empty
            entries[name] += [
                {**_result_entry(name, "row", r), "quarantined": len(idx)} for r, idx in per_exp
            ]
            if share > cfg.quarantine_budget:
                failures += [
                    Failure(name, _column_of(r.expectation_config), r.expectation_config.type,
                            len(idx), _sample(name, df, sorted(idx), cfg.sample_keys),
                            detail=f"{r.expectation_config.meta.get('reason')}")
                    for r, idx in per_exp if idx
                ]
                failures.append(Failure(name, None, "quarantine budget", len(reasons), detail=(
                    f"{share:.2%} of {len(df)} rows quarantined, budget {cfg.quarantine_budget:.2%}")))
            clean[name] = df.drop(index=list(reasons)).reset_index(drop=True)
            quarantines.append(_quarantine_frame(name, df, reasons))
            table_stats[name] = {
                "rows_in": len(df),
                "rows_out": len(clean[name]),
                "rows_quarantined": len(reasons),
                "quarantined_share": round(share, 6),
            }
    if table_failures:
        raise ValidationFailed(table_failures, "Validation failed (table-level checks; nothing written):")
    if failures:
        raise ValidationFailed(
            failures, f"Validation failed (quarantine above budget "
                      f"{cfg.quarantine_budget:.2%}; nothing written):")

    quarantine = pd.concat(quarantines, ignore_index=True)
    all_entries = [e for es in entries.values() for e in es]
    passed = sum(e["success"] for e in all_entries)
    report = {
        "reference_time": now.isoformat(),
        "quarantine_budget": cfg.quarantine_budget,
        "tables": {
            name: {**table_stats[name], "expectations": entries[name]} for name in table_stats
        },
    }
    metrics = {
        **table_stats,
        "expectations": {"evaluated": len(all_entries), "passed": passed,
                         "failed": len(all_entries) - passed},
    }
    return ValidationResult(clean, quarantine, report, metrics)


def write_validated(result: ValidationResult, path: str | Path) -> None:
    """Write clean leads/events/outcomes (and mql_feedback when validated; contract types)
    plus `quarantine`, atomically."""
    con = quiet(duckdb.connect())
    try:
        sql = {}
        for name, spec in _present(result.tables).items():
            con.register(f"_clean_{name}", result.tables[name])
            cols = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in spec.columns.items())
            sql[name] = f"SELECT {cols} FROM _clean_{name}"
        con.register("_quarantine", result.quarantine)
        sql["quarantine"] = (
            "SELECT " + ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in QUARANTINE_COLUMNS)
            + " FROM _quarantine"
        )
        write_duckdb_tables(path, sql=sql, con=con)
    finally:
        con.close()


def validate_crm(
    in_path: str | Path, out_path: str | Path, *, now: dt.datetime, cfg: ValidateConfig,
    gx_dir: str | Path | None = None, data_docs_dir: str | Path | None = None,
    progress: bool | None = None,
) -> ValidationResult:
    """Load the ingested CRM, validate it and write the validated DuckDB (only on success).

    `gx_dir`: the GX project folder (`gx/`), synced with the code's suites first and then
    run checkpoint by checkpoint; None: an in-memory context with the same suites.
    `data_docs_dir`: where to build the Data Docs (replacing the previous site), on success
    and on failure alike, since they show what failed; None: no Data Docs.

    On failure `ValidationFailed` propagates and nothing else is written: an earlier
    validated file, if any, is left as it was (DVC's lock no longer matches it).
    `progress`: a bar of tables on stderr (None: when stderr is a terminal).
    """
    from leadscore.data import gx_project

    tables = load_tables(in_path)
    if gx_dir is not None:
        context = sync_gx_project(gx_dir, cfg.max_null_share, data_docs_dir)
    else:
        context = gx_project.ephemeral_context(data_docs_dir)
        gx_project.sync(context, suites(cfg.max_null_share, list(_present(tables))))
    try:
        result = validate_tables(tables, now=now, cfg=cfg, context=context, progress=progress)
    except Exception:
        if data_docs_dir is not None:
            try:
                log.info("Data Docs (of the failed run): %s", gx_project.build_data_docs(context))
            except Exception as err:  # never hide the validation failure behind this one
                log.warning("could not build the Data Docs: %s", type(err).__name__)
        raise
    if data_docs_dir is not None:
        log.info("Data Docs: %s", gx_project.build_data_docs(context))
    write_validated(result, out_path)
    return result
