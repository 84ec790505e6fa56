"""The batch job: score the live lead base as of one date, publish atomically.

`score_leads` runs these steps (each a plain function, testable alone):

1. **Read** the CRM with `leadscore.io.open_source` (DuckDB file, or a folder of Parquet/CSV
   files; missing/uncastable columns and unreadable files are `InputError`). Scoring views
   expose the ingested, PII-free contract (`leadscore.data.ingest` flags replace e-mail and names
   inside DuckDB; personal columns never reach Python).
2. **Check** (`check_input`). Errors that fail the run: an empty lead table, and a value
   outside a closed vocabulary (`events.event_type`, `outcomes.stage`): an unknown category
   there means the export changed, and guessing would silently drop signal. Open text
   columns (industry, country, source, job title, content_type) are model input: an unseen
   value is valid and maps to "unknown"/missing exactly as in training. Per-row problems
   quarantine the lead (not scored, listed with table, column and reason): a null required
   column in `leads` (lead_id, created_at, source), a duplicated lead_id (every copy), a
   null occurred_at/event_type in its events, a null stage/stage_at in its outcomes. More
   than `quarantine_budget` of the lead base quarantined fails the run.
3. **Features** with `leadscore.features.build.build_features` for the one `as_of` (the training
   code), chunk by chunk: the clean leads sorted by lead_id are cut into ranges of
   `chunk_size` leads, so memory is bounded by a chunk, and a lead is in exactly one chunk.
4. **Score** each chunk with the exported MLflow model (`mlflow.pyfunc.load_model`, so the
   signature is enforced; its `leadscore.serve.scorer.Scorer` directly, with Arrow reasons,
   when it is a leadscore model, of any kind: lightgbm, logistic or rules) and write it as
   one Parquet part in the run's staging folder (`leadscore.io.write_arrow`: a part on disk
   is complete). A tqdm bar on stderr.
5. **Publish** (`publish`): the parts are combined, sorted by lead_id, into a temporary file
   next to the output and renamed over it (`leadscore.io.write_query`); for a DuckDB
   database the rows go into a new table that replaces the old one in one transaction
   (`leadscore.io.swap_duckdb_tables`). The quarantine output is published first, the scores
   last: a reader sees the old scores or the new, never a mix.
6. **Record** (with `history`, as `score_with_params` passes from params `monitor`): each
   chunk's drift counts are staged beside its part, and after publishing one summary row is
   appended to the score history (`leadscore.monitor.history`), with the run's per-lead
   scores (pseudonymous lead id, probability, grade, rule points, arm) for realized
   performance. Each lead's `arm` (`leadscore.serve.arms`): "control" for a fixed share of
   lead ids, handed over in the rules' order, else "model".

Failures are `leadscore.errors` types (`InputError`, `ConfigError`, `ModelError`), so every
caller maps them to the one exit-code table.

Idempotent and resumable. `run_id` is a hash of as_of, model version and the input
fingerprint (file paths, sizes and modification times) unless given. The staging folder
``<out dir>/.<out name>.runs/<run_id>/`` holds `manifest.json` (run_id, scored_at = the
run's first start, the chunk boundaries) and the finished parts. A rerun of the same run
reuses the manifest, skips finished parts and so finishes with each lead exactly once and
identical rows; after publishing, the parts are deleted and the manifest kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
import pyarrow as pa

from leadscore.config import FeaturesConfig, Params
from leadscore.data.ingest import INGESTED_TABLES, derived_flags_sql
from leadscore.errors import ConfigError, InputError, ModelError, safe_error_text
from leadscore.features.build import build_features, data_cutoff, feature_catalog
from leadscore.io import (
    open_source,
    read_json,
    safe_key,
    sql_literal,
    swap_duckdb_tables,
    write_arrow,
    write_json,
    write_query,
)
from leadscore.schema import EVENT_TYPES, STAGES
from leadscore.serve.arms import assign_arms

if TYPE_CHECKING:
    from leadscore.monitor.history import History

log = logging.getLogger(__name__)

FORMATS = ("parquet", "csv", "duckdb")
SCORE_COLUMNS: tuple[str, ...] = (
    "lead_id", "as_of", "probability", "grade", "fit_grade", "engagement_grade", "rule_points",
    "rule_grade", "reasons", "model_version", "run_id", "scored_at", "arm",
)
REASON_TYPE = pa.list_(pa.struct([("code", pa.string()), ("text", pa.string()),
                                  ("contribution", pa.float64())]))
SCORE_SCHEMA = pa.schema([
    ("lead_id", pa.string()), ("as_of", pa.timestamp("us")), ("probability", pa.float64()),
    ("grade", pa.string()), ("fit_grade", pa.string()), ("engagement_grade", pa.string()),
    ("rule_points", pa.float64()), ("rule_grade", pa.string()), ("reasons", REASON_TYPE),
    ("model_version", pa.string()), ("run_id", pa.string()), ("scored_at", pa.timestamp("us")),
    ("arm", pa.string()),
])
QUARANTINE_SCHEMA = pa.schema([
    ("lead_id", pa.string()), ("table_name", pa.string()), ("column_name", pa.string()),
    ("reason", pa.string()), ("as_of", pa.timestamp("us")), ("run_id", pa.string()),
])
# Closed vocabularies: a value outside them is an error, not a quarantined row.
CLOSED_VOCABULARIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("events", "event_type"): EVENT_TYPES,
    ("outcomes", "stage"): STAGES,
}
# Per-row checks: (table, column, SQL condition on a row, reason).
ROW_CHECKS: tuple[tuple[str, str, str, str], ...] = (
    ("leads", "created_at", "created_at IS NULL", "null created_at"),
    ("leads", "source", "source IS NULL", "null source"),
    ("events", "occurred_at", "occurred_at IS NULL", "null occurred_at"),
    ("events", "event_type", "event_type IS NULL", "null event_type"),
    ("outcomes", "stage", "stage IS NULL", "null stage"),
    ("outcomes", "stage_at", "stage_at IS NULL", "null stage_at"),
)


class QuarantineBudgetExceeded(InputError):
    """More of the lead base failed the row checks than `quarantine_budget` allows."""


def feature_kwargs(features: FeaturesConfig) -> dict[str, Any]:
    """The `features` settings the scorer shares with training, as `build_features` takes them."""
    return {"target_stage": features.target_stage, "max_lead_age_days": features.max_lead_age_days,
            "windows_days": features.windows_days, "half_life_days": features.half_life_days,
            "content_types": features.content_types}


@dataclass
class ScoreResult:
    """What a run did (no lead data)."""

    run_id: str
    as_of: dt.datetime
    model_version: str
    out: Path
    leads_in: int
    leads_quarantined: int
    leads_scored: int
    chunks: int
    chunks_resumed: int
    seconds: float
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "as_of": self.as_of.isoformat(), "model_version": self.model_version,
                "out": str(self.out), "leads_in": self.leads_in, "leads_quarantined": self.leads_quarantined,
                "leads_scored": self.leads_scored, "chunks": self.chunks,
                "chunks_resumed": self.chunks_resumed, "seconds": round(self.seconds, 2), **self.summary}


# ---- 1. reading ------------------------------------------------------------------------

def open_crm(kind: str, path: str | Path, free_mail_domains: Sequence[str], *, threads: int = 2,
             memory_limit: str = "1GB", temp_dir: str | Path | None = None
             ) -> tuple[duckdb.DuckDBPyConnection, dict]:
    """Open the source; create `scoring.{leads,events,outcomes}` views (PII-free, ingested
    contract) over it and make `scoring` the default schema. CSV input is loaded once into
    DuckDB (parsing it once per chunk would be slow). Returns the connection and, per table,
    the source location and row count."""
    kind = "duckdb" if kind == "synthetic" else kind
    con, found = open_source(kind, path)
    try:
        try:
            con.execute(f"SET threads={int(threads)}")
            con.execute(f"SET memory_limit={sql_literal(memory_limit)}")
        except duckdb.Error as err:
            raise ConfigError(f"score.threads={threads} / score.memory_limit={memory_limit!r}: "
                              f"{safe_error_text(err)}") from None
        con.execute("SET preserve_insertion_order=false")
        con.execute("SET enable_progress_bar=false")
        if temp_dir is not None:
            con.execute(f"SET temp_directory={sql_literal(temp_dir)}")
        if kind == "csv":
            for name in INGESTED_TABLES:
                con.execute(f'CREATE TABLE memory.main."_src_{name}" AS SELECT * FROM memory.main."{name}"')
        con.execute("CREATE SCHEMA scoring")
        con.execute("CREATE TEMP TABLE _quarantined (lead_id VARCHAR)")
        _set_views(con, free_mail_domains, csv=kind == "csv")
        con.execute("SET search_path='scoring'")
    except BaseException:
        con.close()
        raise
    info = {n: {"location": t.location, "rows": t.rows} for n, t in found.items()}
    return con, info


def _set_views(con: duckdb.DuckDBPyConnection, free_mail_domains: Sequence[str], *, csv: bool = False,
               lo: str | None = None, hi: str | None = None) -> None:
    """(Re)define the scoring views: clean (not quarantined) leads in [lo, hi)."""
    flags = derived_flags_sql(free_mail_domains)
    conds = ["lead_id IS NOT NULL", "lead_id NOT IN (SELECT lead_id FROM temp._quarantined)"]
    if lo is not None:
        conds.append(f"lead_id >= {sql_literal(lo)}")
    if hi is not None:
        conds.append(f"lead_id < {sql_literal(hi)}")
    where = " AND ".join(conds)
    for name, table in INGESTED_TABLES.items():
        cols = [f"CAST({flags[c]} AS BOOLEAN) AS {c}" if c in flags else f'"{c}"' for c in table.columns]
        src = f'memory.main."_src_{name}"' if csv else f'memory.main."{name}"'
        con.execute(f"CREATE OR REPLACE VIEW scoring.{name} AS SELECT {', '.join(cols)} FROM {src} WHERE {where}")


def input_fingerprint(kind: str, path: str | Path) -> str:
    """Hash of the input files' names, sizes and modification times (cheap, no data read)."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256(kind.encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


# ---- 2. checks -------------------------------------------------------------------------

def check_input(con: duckdb.DuckDBPyConnection, info: dict, *, budget: float, sample_keys: int = 5
                ) -> pd.DataFrame:
    """Fail on closed-vocabulary and empty-input errors; quarantine leads with per-row
    problems (fills `temp._quarantined`); fail when over `budget`. Returns the quarantine
    rows (lead_id, table_name, column_name, reason). Messages name file, column, counts and
    up to `sample_keys` keys, never values."""
    where = {n: i["location"] for n, i in info.items()}
    n_leads = con.execute("SELECT count(*) FROM memory.main.leads").fetchone()[0]
    if n_leads == 0:
        raise InputError(f"{where['leads']}: no leads (empty input); nothing to score")
    for (table, col), vocab in CLOSED_VOCABULARIES.items():
        allowed = ", ".join(sql_literal(v) for v in vocab)
        key = "event_id" if table == "events" else "lead_id"
        cond = f'"{col}" IS NOT NULL AND "{col}" NOT IN ({allowed})'
        bad = con.execute(f"SELECT count(*) FROM memory.main.{table} WHERE {cond}").fetchone()[0]
        if bad:
            keys = [safe_key(r[0]) for r in con.execute(
                f"SELECT {key} FROM memory.main.{table} WHERE {cond} ORDER BY {key} LIMIT {int(sample_keys)}"
            ).fetchall()]
            raise InputError(
                f"{where[table]}: column '{col}' has {bad} value(s) outside the allowed categories "
                f"({key}: {', '.join(keys)}); allowed: {', '.join(vocab)}. Map them in the export."
            )
    parts = [
        "SELECT lead_id, 'leads' AS table_name, 'lead_id' AS column_name, 'duplicate lead_id' AS reason "
        "FROM memory.main.leads WHERE lead_id IN (SELECT lead_id FROM memory.main.leads "
        "WHERE lead_id IS NOT NULL GROUP BY lead_id HAVING count(*) > 1)",
        "SELECT NULL, 'leads', 'lead_id', 'null lead_id' FROM memory.main.leads WHERE lead_id IS NULL",
    ]
    for table, col, cond, reason in ROW_CHECKS:
        parts.append(f"SELECT lead_id, '{table}', '{col}', '{reason}' FROM memory.main.{table} "
                     f"WHERE lead_id IS NOT NULL AND {cond}")
    q = con.execute(" UNION ALL ".join(parts)).df()
    q = q.drop_duplicates().sort_values(["lead_id", "table_name", "column_name"], na_position="first",
                                        ignore_index=True)
    bad_leads = q["lead_id"].dropna().unique()
    n_bad = len(bad_leads) + int(q["lead_id"].isna().sum())
    if len(bad_leads):
        con.register("_bad", pd.DataFrame({"lead_id": bad_leads}))
        con.execute("INSERT INTO temp._quarantined SELECT lead_id FROM _bad")
        con.unregister("_bad")
    share = n_bad / n_leads
    if n_bad:
        by = q.groupby(["table_name", "column_name", "reason"], sort=True)["lead_id"]
        lines = [f"{where[t]}: column '{c}': {r} in {len(ids)} row(s) (lead_id: "
                 f"{', '.join(safe_key(k) for k in ids.dropna().unique()[:sample_keys]) or '<null>'})"
                 for (t, c, r), ids in by]
        msg = (f"{n_bad} of {n_leads} lead(s) ({share:.2%}) quarantined:\n  " + "\n  ".join(lines))
        if share > budget:
            raise QuarantineBudgetExceeded(
                msg + f"\nThat is over score.quarantine_budget={budget:.2%}: fix the input or raise the budget.")
        log.warning("%s", msg)
    return q


# ---- 3./4. the model -------------------------------------------------------------------

def load_scorer_model(uri: str) -> Any:
    """`mlflow.pyfunc.load_model(uri)`; a missing or unloadable model is `ModelError`."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    if "://" not in uri and not uri.startswith("models:") and not Path(uri).exists():
        raise ModelError(f"{uri}: model not found (run the export stage, or pass --model "
                         "models:/leadscore@champion)")
    try:
        return mlflow.pyfunc.load_model(uri)
    except (MlflowException, OSError) as err:
        raise ModelError(f"{uri}: cannot load the scorer model ({str(err).splitlines()[0][:300]})") from None


def _inner_scorer(model: Any) -> Any:
    """The `leadscore.serve.scorer.Scorer` inside a leadscore pyfunc (signature already
    checked), else None."""
    try:
        return getattr(model.unwrap_python_model(), "scorer", None)
    except (AttributeError, ValueError):
        return None


def check_signature(model: Any, features: Sequence[str], categorical: Sequence[str], uri: str) -> None:
    """The model's input signature must be exactly the features this job computes (names
    and string/double types). Otherwise `ModelError` naming the columns."""
    sig = model.metadata.get_input_schema()
    if sig is None:
        raise ModelError(f"{uri}: the model has no input signature")
    expected = {n: ("string" if n in categorical else "double") for n in features}
    got = {c.name: str(c.type) for c in sig.inputs}
    missing = [n for n in got if n not in expected]
    extra = [n for n in expected if n not in got]
    types = [f"{n} ({got[n]} vs {expected[n]})" for n in got
             if n in expected and got[n].replace("DataType.", "") != expected[n]]
    if missing or extra or types:
        raise ModelError(
            f"{uri}: the model's input signature does not match the scoring features: "
            + "; ".join(s for s in (
                f"model needs column(s) the job does not compute: {missing}" if missing else "",
                f"job computes column(s) the model does not take: {extra}" if extra else "",
                f"type mismatch: {types}" if types else "") if s)
            + ". Export a model trained with the same features settings.")


def model_version_of(model: Any) -> str:
    meta = model.metadata.metadata or {}
    return str(meta.get("model_version", "unknown"))


def model_kind_of(model: Any) -> str:
    """The scorer kind recorded in the model's metadata (exports before kinds: lightgbm)."""
    meta = model.metadata.metadata or {}
    return str(meta.get("kind", "lightgbm"))


# ---- the run ----------------------------------------------------------------------------

def make_run_id(as_of: dt.datetime, model_version: str, fingerprint: str) -> str:
    blob = f"{as_of.isoformat()}|{model_version}|{fingerprint}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def staging_dir(out: str | Path, run_id: str) -> Path:
    out = Path(out)
    return out.parent / f".{out.name}.runs" / run_id


def chunk_bounds(con: duckdb.DuckDBPyConnection, chunk_size: int) -> list[str]:
    """Lower bounds of the lead_id ranges: every `chunk_size`-th clean lead id, sorted."""
    rows = con.execute(
        f"SELECT lead_id FROM (SELECT lead_id, row_number() OVER (ORDER BY lead_id) - 1 AS rn "
        f"FROM scoring.leads) WHERE rn % {int(chunk_size)} = 0 ORDER BY lead_id"
    ).fetchall()
    return [r[0] for r in rows]


def _to_arrow(features: pd.DataFrame, scored: pd.DataFrame, *, model_version: str, run_id: str,
              scored_at: dt.datetime, reasons: pa.Array | None = None, control_share: float = 0.0,
              control_salt: str = "") -> pa.Table:
    n = len(features)
    cols = {
        "lead_id": pa.array(features["lead_id"].astype(object).to_numpy(), pa.string()),
        "as_of": pa.array(features["as_of"].to_numpy(dtype="datetime64[us]"), pa.timestamp("us")),
    }
    for name in ("probability", "rule_points"):
        cols[name] = pa.array(scored[name].to_numpy(dtype="float64"), pa.float64())
    for name in ("grade", "fit_grade", "engagement_grade", "rule_grade"):
        cols[name] = pa.array(scored[name].astype(object).to_numpy(), pa.string())
    cols["reasons"] = reasons.cast(REASON_TYPE) if reasons is not None else pa.array(list(scored["reasons"]), REASON_TYPE)
    cols["model_version"] = pa.array([model_version] * n, pa.string())
    cols["run_id"] = pa.array([run_id] * n, pa.string())
    cols["scored_at"] = pa.array([scored_at] * n, pa.timestamp("us"))
    cols["arm"] = pa.array(assign_arms(features["lead_id"], control_share, control_salt), pa.string())
    return pa.Table.from_pydict(cols, schema=SCORE_SCHEMA)


def _format_of(out: Path, fmt: str | None) -> str:
    if fmt is None:
        fmt = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".duckdb": "duckdb",
               ".db": "duckdb"}.get(out.suffix.lower())
        if fmt is None:
            raise ConfigError(f"{out}: cannot tell the output format from the extension; pass --format")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown output format {fmt!r} (use {', '.join(FORMATS)})")
    return fmt


def quarantine_path(out: Path, fmt: str) -> Path:
    """Where the quarantine goes: a sibling file, or a table in the same DuckDB file."""
    return out if fmt == "duckdb" else out.with_name(f"{out.stem}.quarantine{out.suffix}")


def score_leads(
    *,
    source_kind: str,
    source: str | Path,
    out: str | Path,
    model_uri: str,
    as_of: dt.datetime | None,
    features: FeaturesConfig,
    free_mail_domains: Sequence[str],
    fmt: str | None = None,
    table: str = "scores",
    chunk_size: int = 100_000,
    quarantine_budget: float = 0.01,
    run_id: str | None = None,
    threads: int = 2,
    memory_limit: str = "1GB",
    progress: bool = True,
    chunk_pause_s: float = 0.0,
    now: Callable[[], dt.datetime] | None = None,
    history: History | None = None,
    control_share: float = 0.0,
    control_salt: str = "leadscore",
) -> ScoreResult:
    """Score every eligible lead of the source as of `as_of` (None: the data cutoff) and
    publish the score contract to `out`. `features` are the feature settings of training
    (params `features`). See the module docstring for the guarantees.

    Raises `InputError` (bad input, budget), `ModelError` (model missing or signature
    mismatch), `ConfigError` (bad arguments or settings). Nothing is published when it raises.

    `history` (`leadscore.monitor.history.History`) appends the run's summary row to the
    score history after publishing (None: no history). `control_share` of the leads (by a
    hash of lead id and `control_salt`, `leadscore.serve.arms`) get `arm` "control": sales
    works them in the rules' order; the others "model".
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    out = Path(out)
    fmt = _format_of(out, fmt)
    if chunk_size < 1:
        raise ConfigError("chunk_size must be at least 1")
    catalog = feature_catalog(features.windows_days, features.content_types)
    model = load_scorer_model(model_uri)
    check_signature(model, catalog.names, catalog.categorical, model_uri)
    version = model_version_of(model)
    fast = _inner_scorer(model)
    recorder = None if history is None else history.start(
        model_version=version, model_kind=model_kind_of(model), names=catalog.names,
        categorical=catalog.categorical,
        predict=lambda x: fast.score_arrow(x)[0] if fast is not None else model.predict(x))

    con, info = open_crm(source_kind, source, free_mail_domains, threads=threads, memory_limit=memory_limit)
    try:
        if as_of is None:
            cutoff = data_cutoff(con)
            as_of = dt.datetime.combine(cutoff.date() + dt.timedelta(days=1), dt.time())
        fingerprint = input_fingerprint(source_kind, source)
        run_id = run_id or make_run_id(as_of, version, fingerprint)
        work = staging_dir(out, run_id)
        (work / "parts").mkdir(parents=True, exist_ok=True)
        manifest_path = work / "manifest.json"
        quarantine = check_input(con, info, budget=quarantine_budget)
        newest_event = (con.execute("SELECT max(occurred_at) FROM memory.main.events WHERE occurred_at < ?",
                                    [as_of]).fetchone()[0] if recorder is not None else None)
        n_leads = con.execute("SELECT count(*) FROM scoring.leads").fetchone()[0]
        manifest = read_json(manifest_path) if manifest_path.exists() else None
        if manifest is None or manifest.get("run_id") != run_id:
            started = (now or (lambda: dt.datetime.now(dt.UTC)))().replace(tzinfo=None, microsecond=0)
            manifest = {"run_id": run_id, "as_of": as_of.isoformat(), "model_uri": model_uri,
                        "model_version": version, "model_kind": model_kind_of(model),
                        "input_fingerprint": fingerprint,
                        "source_kind": source_kind, "scored_at": started.isoformat(),
                        "chunk_size": chunk_size, "bounds": chunk_bounds(con, chunk_size),
                        "status": "running"}
            write_json(manifest, manifest_path)
        else:
            log.info("resuming run %s (started %s)", run_id, manifest["scored_at"])
            manifest["status"] = "running"
            write_json(manifest, manifest_path)
        scored_at = dt.datetime.fromisoformat(manifest["scored_at"])
        bounds: list[str] = manifest["bounds"]
        resumed = 0
        bar = tqdm(total=n_leads, unit="lead", file=sys.stderr, disable=not progress,
                   desc=f"scoring {run_id[:8]}", mininterval=1.0)
        try:
            for i, lo in enumerate(bounds):
                part = work / "parts" / f"part-{i:05d}.parquet"
                hi = bounds[i + 1] if i + 1 < len(bounds) else None
                _set_views(con, free_mail_domains, csv=source_kind == "csv", lo=lo, hi=hi)
                if part.exists() and (recorder is None or recorder.has_chunk(part)):
                    resumed += 1
                    bar.update(con.execute("SELECT count(*) FROM scoring.leads").fetchone()[0])
                    continue
                n_chunk = con.execute("SELECT count(*) FROM scoring.leads").fetchone()[0]
                feats = build_features(con, [as_of], **feature_kwargs(features))
                if len(feats):
                    if fast is not None:  # the Scorer of pyfunc.predict, with Arrow reasons
                        scored, reasons = fast.score_arrow(feats[catalog.names])
                    else:
                        scored, reasons = model.predict(feats[catalog.names]), None
                    tbl = _to_arrow(feats, scored, model_version=version, run_id=run_id,
                                    scored_at=scored_at, reasons=reasons, control_share=control_share,
                                    control_salt=control_salt)
                else:
                    tbl, scored = SCORE_SCHEMA.empty_table(), None
                if recorder is not None:  # the chunk's drift counts, before its part
                    recorder.write_chunk(part, feats[catalog.names] if len(feats) else None, scored)
                write_arrow(tbl, part)
                bar.update(n_chunk)
                if chunk_pause_s:
                    time.sleep(chunk_pause_s)
        finally:
            bar.close()
    finally:
        con.close()

    q = quarantine.assign(as_of=as_of, run_id=run_id)
    q_table = pa.Table.from_pandas(q[QUARANTINE_SCHEMA.names], schema=QUARANTINE_SCHEMA, preserve_index=False)
    n_scored = publish(work / "parts", out, fmt, q_table, table=table)
    n_quarantined = int(quarantine["lead_id"].nunique()) + int(quarantine["lead_id"].isna().sum())
    if recorder is not None:
        recorder.append([work / "parts" / f"part-{i:05d}.parquet" for i in range(len(bounds))],
                        run_id=run_id, as_of=as_of, scored_at=scored_at, leads_in=int(info["leads"]["rows"]),
                        leads_quarantined=n_quarantined, leads_scored=n_scored, newest_event_at=newest_event)
    shutil.rmtree(work / "parts", ignore_errors=True)
    manifest.update({"status": "published", "leads_scored": n_scored, "leads_quarantined": n_quarantined,
                     "out": str(out), "format": fmt})
    write_json(manifest, manifest_path)
    result = ScoreResult(run_id=run_id, as_of=as_of, model_version=version, out=out,
                         leads_in=int(info["leads"]["rows"]), leads_quarantined=n_quarantined,
                         leads_scored=n_scored, chunks=len(bounds), chunks_resumed=resumed,
                         seconds=time.perf_counter() - t0,
                         summary={"grades": _grade_counts(out, fmt, table)})
    log.info("run %s: %d leads in, %d quarantined, %d scored as of %s -> %s (%.1fs)", run_id,
             result.leads_in, n_quarantined, n_scored, as_of.date(), out, result.seconds)
    return result


def score_with_params(params: Params, *, out: str | Path, model_uri: str, as_of: dt.datetime | None = None,
                      source_kind: str | None = None, source: str | Path | None = None,
                      chunk_size: int | None = None, **kw: Any) -> ScoreResult:
    """`score_leads` with the settings of params.yaml: the source (`ingest.source`,
    `ingest.path`, `ingest.free_mail_domains`), the feature settings (`features`) and the
    job's (`score.*`; `as_of` defaults to `score.as_of`). Arguments given here win; `kw`
    goes to `score_leads` (fmt, table, run_id, progress, chunk_pause_s). The run is recorded
    in the score history of `monitor.*` (`leadscore.monitor.history.History.from_params`)."""
    from leadscore.monitor.history import History

    kw.setdefault("history", History.from_params(params))
    sc = params.score
    if as_of is None and sc.as_of is not None:
        as_of = dt.datetime.combine(sc.as_of, dt.time())
    return score_leads(
        source_kind=source_kind or params.ingest.source, source=source or Path(params.ingest.path),
        out=out, model_uri=model_uri, as_of=as_of, features=params.features,
        free_mail_domains=params.ingest.free_mail_domains, chunk_size=chunk_size or sc.chunk_size,
        quarantine_budget=sc.quarantine_budget, threads=sc.threads, memory_limit=sc.memory_limit,
        control_share=sc.control_share, control_salt=sc.control_salt, **kw)


# ---- 5. publish ------------------------------------------------------------------------

def publish(parts: Path, out: Path, fmt: str, quarantine: pa.Table, *, table: str = "scores") -> int:
    """Combine the parts (sorted by lead_id) and publish them, plus the quarantine, atomically.
    Returns the number of score rows."""
    glob = sql_literal(str(parts / "part-*.parquet"))
    query = f"SELECT * FROM read_parquet({glob}) ORDER BY lead_id"
    con = duckdb.connect()
    try:
        con.register("_quarantine", quarantine)
        n = con.execute(f"SELECT count(*) FROM read_parquet({glob})").fetchone()[0]
        if fmt == "duckdb":  # new tables, swapped in with one transaction
            swap_duckdb_tables(con, out, {
                table: query, f"{table}_quarantine": "SELECT * FROM _quarantine ORDER BY lead_id"})
        else:
            q_out = quarantine_path(out, fmt)
            _publish_file(con, "SELECT * FROM _quarantine ORDER BY lead_id, table_name, column_name", q_out, fmt)
            _publish_file(con, query, out, fmt)
    finally:
        con.close()
    return int(n)


def _publish_file(con: duckdb.DuckDBPyConnection, query: str, out: Path, fmt: str) -> None:
    if fmt == "csv" and "reasons" in _columns(con, query):  # CSV: reasons as JSON text
        query = f"SELECT * REPLACE (to_json(reasons) AS reasons) FROM ({query})"
    write_query(con, query, out, fmt)


def _columns(con: duckdb.DuckDBPyConnection, query: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {query}").fetchall()]


def _grade_counts(out: Path, fmt: str, table: str) -> dict[str, int]:
    con = duckdb.connect()
    try:
        if fmt == "duckdb":
            con.execute(f"ATTACH {sql_literal(out)} AS src (READ_ONLY)")
            rel = f'src."{table}"'
        elif fmt == "parquet":
            rel = f"read_parquet({sql_literal(out)})"
        else:
            rel = f"read_csv({sql_literal(out)}, header=true)"
        rows = con.execute(f"SELECT grade, count(*) FROM {rel} GROUP BY grade ORDER BY grade").fetchall()
    finally:
        con.close()
    return {str(g): int(n) for g, n in rows}


def read_scores(path: str | Path, fmt: str | None = None, table: str = "scores") -> pd.DataFrame:
    """Read a published score output back (reasons as lists of dicts; parsed from JSON in CSV)."""
    path = Path(path)
    fmt = _format_of(path, fmt)
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "csv":
        text = ("lead_id", "grade", "fit_grade", "engagement_grade", "rule_grade", "model_version", "run_id",
                "arm")
        df = pd.read_csv(path, dtype=dict.fromkeys(text, str), parse_dates=["as_of", "scored_at"])
        df["reasons"] = df["reasons"].map(json.loads)
        return df
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f'SELECT * FROM "{table}" ORDER BY lead_id').df()
