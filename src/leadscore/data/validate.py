"""Validate the ingested CRM with Great Expectations suites, one per table, in two phases.

Phase 1, TABLE-LEVEL (any failure fails the stage at once): the table is not empty
(ExpectTableRowCountToBeBetween), its columns are exactly the ingested contract
(ExpectTableColumnsToMatchSet), each column has its contract type
(ExpectColumnValuesToBeOfType on the pandas dtypes DuckDB gives), and the null share of
each column named in ``validate.max_null_share`` is within its bound
(ExpectColumnValuesToNotBeNull with ``mostly = 1 - bound``).

Phase 2, ROW-LEVEL (bad rows are quarantined with a reason): required columns are non-null;
keys are unique (rows beyond the first of a key are quarantined; the first is kept, in the
order lead_id/created_at, event_id/occurred_at, lead_id/stage/stage_at); event_type,
content_type and stage take allowed values; no timestamp is after the reference time
``now``; sizes, revenues and amounts are not negative. Cross-table checks, which GE cannot
do natively, are expressed through derived columns that the suite then checks natively:
``lead_known`` (the lead_id exists in ``leads``: False means an orphan row), ``lead_valid``
(the lead itself passed validation; events and outcomes of a quarantined lead are
quarantined with it) and ``lead_created_at`` (an event or outcome must not precede its
lead's creation: ExpectColumnPairValuesAToBeGreaterThanB). Leads are validated first.

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
from unittest import mock

import duckdb
import pandas as pd

from leadscore.config import ValidateConfig
from leadscore.data.ingest import INGESTED_OPTIONAL_TABLES, INGESTED_TABLES
from leadscore.errors import InputError
from leadscore.io import safe_key, write_duckdb_tables
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


# --------------------------------------------------------------------------- GE plumbing


@functools.cache
def _gx() -> tuple[Any, Any]:
    """Import GE lazily (it is slow to import and has no business at import time)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx, gxe


def _context() -> Any:
    """A fresh ephemeral GE context, without progress bars."""
    gx, _ = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _run_suite(
    context: Any, name: str, df: pd.DataFrame, expectations: list[Any], result_format: str
) -> list[Any]:
    """Validate `df` (one whole-dataframe batch) against `expectations`; return the results."""
    gx, _ = _gx()
    from great_expectations.execution_engine import pandas_execution_engine

    source = context.data_sources.add_pandas(name)
    definition = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("whole")
    # GE fingerprints every batch below 1 GB by hashing all of it (batch metadata only):
    # about 3 s per pass over 2M events. Skip it, for this call only.
    suite = gx.ExpectationSuite(name=name)
    for exp in expectations:
        suite.add_expectation(exp)
    fmt: dict[str, Any] = {"result_format": result_format, "partial_unexpected_count": 0}
    with mock.patch.object(pandas_execution_engine, "HASH_THRESHOLD", 0):
        batch = definition.get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(suite, result_format=fmt)
    for r in result.results:
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"Great Expectations could not evaluate {r.expectation_config.type} on {name}: "
                f"{r.exception_info.get('exception_message')}"
            )
    return list(result.results)


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


def table_level_expectations(
    spec: Table, columns: Sequence[str], max_null_share: Mapping[str, float]
) -> list[Any]:
    """Phase-1 expectations: non-empty (an optional table may be empty), exact column set,
    types, null-share bounds."""
    _, gxe = _gx()
    exps = [
        gxe.ExpectTableRowCountToBeBetween(min_value=0 if spec.name in INGESTED_OPTIONAL_TABLES else 1),
        gxe.ExpectTableColumnsToMatchSet(column_set=list(spec.columns), exact_match=True),
    ]
    for col, typ in spec.columns.items():
        if col in columns:
            exps.append(gxe.ExpectColumnValuesToBeOfType(
                column=col, type_=PANDAS_TYPES[typ], meta={"contract_type": typ}))
    for col, bound in max_null_share.items():
        if col in columns:
            exps.append(gxe.ExpectColumnValuesToNotBeNull(
                column=col, mostly=round(1 - bound, 10), meta={"max_null_share": bound}))
    return exps


def row_level_expectations(spec: Table, now: dt.datetime) -> list[Any]:
    """Phase-2 expectations; each carries `meta.reason`, the quarantine reason code."""
    _, gxe = _gx()
    name = spec.name
    exps = [gxe.ExpectColumnValuesToNotBeNull(column=c, meta={"reason": "null_required"})
            for c in spec.required]
    if len(spec.key) == 1:
        exps.append(gxe.ExpectColumnValuesToBeUnique(column=spec.key[0], meta={"reason": "duplicate_key"}))
    else:
        exps.append(gxe.ExpectCompoundColumnsToBeUnique(
            column_list=list(spec.key), meta={"reason": "duplicate_key"}))
    allowed = {"events": {"event_type": EVENT_TYPES, "content_type": CONTENT_TYPES},
               "outcomes": {"stage": STAGES},
               "mql_feedback": {"reason": FEEDBACK_REASONS}}.get(name, {})
    for col, values in allowed.items():
        exps.append(gxe.ExpectColumnValuesToBeInSet(
            column=col, value_set=list(values), meta={"reason": "unknown_value"}))
    exps.append(gxe.ExpectColumnValuesToBeBetween(
        column=TIME_COLUMN[name], max_value=now, meta={"reason": "future_timestamp"}))
    for col in NON_NEGATIVE.get(name, ()):
        exps.append(gxe.ExpectColumnValuesToBeBetween(
            column=col, min_value=0, meta={"reason": "negative_value"}))
    if name == "mql_feedback":  # a reason for every rejection, none for an acceptance
        exps.append(gxe.ExpectColumnValuesToBeInSet(
            column="reason_fits_decision", value_set=[True], meta={"reason": "reason_mismatch"}))
    if name != "leads":
        exps += [
            gxe.ExpectColumnValuesToBeInSet(column="lead_known", value_set=[True],
                                            meta={"reason": "orphan"}),
            gxe.ExpectColumnValuesToBeInSet(column="lead_valid", value_set=[True],
                                            meta={"reason": "lead_quarantined"}),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=TIME_COLUMN[name], column_B="lead_created_at", or_equal=True,
                ignore_row_if="either_value_is_missing", meta={"reason": "before_lead_created"}),
        ]
    return exps


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
        entry["observed_value"] = res["observed_value"]
    if cfg.meta and "reason" in cfg.meta:
        entry["reason"] = cfg.meta["reason"]
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
        con = duckdb.connect(str(path), read_only=True)
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


def _check_tables(
    context: Any, tables: Mapping[str, pd.DataFrame], cfg: ValidateConfig,
) -> tuple[dict[str, list[dict[str, Any]]], list[Failure]]:
    """Phase 1 on every table: entries for the report, and the failures."""
    entries: dict[str, list[dict[str, Any]]] = {}
    failures: list[Failure] = []
    for name, spec in _present(tables).items():
        df = tables[name].reset_index(drop=True)
        exps = table_level_expectations(spec, list(df.columns), cfg.max_null_share.get(name, {}))
        results = _run_suite(context, f"{name}_table", df, exps, "SUMMARY")
        entries[name] = [_result_entry(name, "table", r) for r in results]
        failed = [r for r in results if not r.success]
        if len(df) == 0:  # an empty table explains every other failure
            failed = [r for r in failed if r.expectation_config.type == "expect_table_row_count_to_be_between"]
        failures += [_table_failure(name, r, df, cfg.sample_keys) for r in failed]
    return entries, failures


def _present(tables: Mapping[str, pd.DataFrame]) -> dict[str, Table]:
    """The contract of every table to validate: the three required ones, then the optional
    ones in `tables` (validated when present, like the others)."""
    return {**INGESTED_TABLES, **{n: t for n, t in INGESTED_OPTIONAL_TABLES.items() if n in tables}}


def _with_lead_columns(df: pd.DataFrame, all_leads: pd.DataFrame, clean_leads: pd.DataFrame) -> pd.DataFrame:
    """Add the derived cross-table columns lead_known, lead_valid, lead_created_at (and, for
    mql_feedback, reason_fits_decision: a reason exactly when the MQL was rejected)."""
    known = df["lead_id"].isin(all_leads["lead_id"])
    created = clean_leads.drop_duplicates("lead_id").set_index("lead_id")["created_at"]
    valid = df["lead_id"].isin(created.index)
    out = df.copy()
    out["lead_known"] = known
    out["lead_valid"] = valid.astype("boolean").where(known, pd.NA)
    out["lead_created_at"] = df["lead_id"].map(created)
    if "accepted" in df.columns and "reason" in df.columns:
        rejected = ~df["accepted"].astype("boolean")  # NA (quarantined as null) stays NA
        out["reason_fits_decision"] = rejected == df["reason"].notna()
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


def validate_tables(
    tables: Mapping[str, pd.DataFrame], *, now: dt.datetime, cfg: ValidateConfig,
) -> ValidationResult:
    """Validate the ingested CRM frames; quarantine bad rows or raise `ValidationFailed`.

    `tables` maps leads/events/outcomes (and optionally mql_feedback) to frames as
    `load_tables` gives them; `now` is the reference time for "no future timestamps" (for
    mql_feedback: no decision after it). Returns clean frames (same columns as the input),
    the quarantine frame, a report and metrics.
    """
    missing = [t for t in INGESTED_TABLES if t not in tables]
    if missing:
        raise ValidationFailed([Failure(t, None, "table present", None) for t in missing],
                               "Validation failed: missing table(s)")
    now = _naive_utc(now)
    context = _context()
    entries, failures = _check_tables(context, tables, cfg)
    if failures:
        raise ValidationFailed(failures, "Validation failed (table-level checks; nothing written):")

    clean: dict[str, pd.DataFrame] = {}
    quarantines: list[pd.DataFrame] = []
    table_stats: dict[str, dict[str, Any]] = {}
    for name, spec in _present(tables).items():
        df = tables[name].reset_index(drop=True)
        checked = df if name == "leads" else _with_lead_columns(df, tables["leads"], clean["leads"])
        results = _run_suite(context, f"{name}_rows", checked, row_level_expectations(spec, now), "COMPLETE")
        reasons, per_exp = _quarantine_rows(name, checked, results)
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
    con = duckdb.connect()
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
) -> ValidationResult:
    """Load the ingested CRM, validate it and write the validated DuckDB (only on success).

    On failure `ValidationFailed` propagates and nothing is written: an earlier validated
    file, if any, is left as it was (DVC's lock no longer matches it).
    """
    result = validate_tables(load_tables(in_path), now=now, cfg=cfg)
    write_validated(result, out_path)
    return result

