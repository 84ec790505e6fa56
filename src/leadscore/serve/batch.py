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
5. **Check, then publish**. `check_invariants`: every eligible clean lead exactly once and
   nothing else, probability in [0, 1], grades in A1..D4, else `InputError` / `ModelError`
   and nothing is published. `publish`: the parts are combined, sorted by lead_id, into a
   new pair of files (scores and quarantine) in `.<out name>.published/<run>-<id>/`, then
   `<out>.manifest.json` naming both (rows, SHA-256) is written last: the commit point that
   readers follow (the reader rule: `leadscore.serve.publish`); `<out>` and its
   quarantine sibling are then hard links to the new pair. For a DuckDB database the
   scores, the quarantine and a one-row manifest table replace the old ones in one
   transaction (`leadscore.io.swap_duckdb_tables`).
6. **Record** (with `history`, as `score_with_params` passes from params `monitor`): each
   chunk's drift counts are staged beside its part, and after publishing one summary row is
   appended to the score history (`leadscore.monitor.history`), with the run's per-lead
   scores (pseudonymous lead id, probability, grade, rule points, arm) for realized
   performance. Each lead's `arm` (`leadscore.serve.arms`): "control" for a fixed share of
   lead ids, handed over in the rules' order, else "model".

**Incremental runs** (`incremental=True` or `changed_since`): step 3 scores only the leads
changed since the published run's watermark, and step 5 merges them into the published table
(`leadscore.serve.incremental`: which leads, which are removed, the one-unit merge, why a
chain of them equals a full run at the same as_of). Every run stages each chunk's
**speed-to-lead** lags (scored_at - max(created_at, last event before as_of); `lead_lags`)
beside its part; the median and 95th percentile go to the run manifest and the result.

Failures are `leadscore.errors` types (`InputError`, `ConfigError`, `ModelError`), so every
caller maps them to the one exit-code table.

Idempotent and resumable. `run_id` is a hash of as_of, model version and the input
fingerprint (`score.fingerprint`: file paths, sizes and modification times, or a hash of
the files' bytes) unless given. The staging folder ``<out dir>/.<out name>.runs/<run_id>/``
holds `manifest.json` (run_id, as_of, model version, input fingerprint, scored_at = the
run's first start, the chunk boundaries) and the finished parts. A rerun reuses the
manifest and skips finished parts only when as_of, model version and fingerprint all match
(`resume_mismatch`); otherwise it clears the parts and starts over. After publishing, the
parts are deleted and the manifest kept. The model folder is verified before it is loaded
(`verify_model_folder`: content hash = recorded `model_version`, leadscore's code file).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.config import FeaturesConfig, Params
from leadscore.data.ingest import DERIVED_LEAD_COLUMNS, INGESTED_TABLES, leads_sql
from leadscore.errors import ConfigError, InputError, ModelError, safe_error_text
from leadscore.features.build import build_features, data_cutoff, eligibility_sql, feature_catalog
from leadscore.io import (
    check_table_name,
    file_sha256,
    open_source,
    read_json,
    safe_key,
    sql_literal,
    write_arrow,
    write_json,
)
from leadscore.schema import EVENT_TYPES, STAGES
from leadscore.serve.arms import assign_arms
from leadscore.serve.publish import grade_counts, output_format, publish

if TYPE_CHECKING:
    from leadscore.monitor.history import History

log = logging.getLogger(__name__)

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
             memory_limit: str = "1GB", temp_dir: str | Path | None = None, flags: bool = True
             ) -> tuple[duckdb.DuckDBPyConnection, dict]:
    """Open the source; create `scoring.{leads,events,outcomes}` views (PII-free, ingested
    contract) over it and make `scoring` the default schema. CSV input is loaded once into
    DuckDB (parsing it once per chunk would be slow). Without `flags`, `scoring.leads` has no
    derived flag columns until `materialize_leads` (the batch job computes them only for the
    leads it scores). Returns the connection and, per table, the source location and row
    count."""
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
        if flags:
            materialize_leads(con, free_mail_domains, csv=kind == "csv")
        _set_views(con, csv=kind == "csv", flags=flags)
        con.execute("SET search_path='scoring'")
    except BaseException:
        con.close()
        raise
    info = {n: {"location": t.location, "rows": t.rows} for n, t in found.items()}
    return con, info


def materialize_leads(con: duckdb.DuckDBPyConnection, free_mail_domains: Sequence[str], *,
                      csv: bool = False, only: bool = False) -> None:
    """`temp._leads`: the lead contract with the derived flags in place of the personal
    columns, computed once per run (the flags' regular expressions would otherwise run again
    on every query of the views); with `only`, just the leads of `temp._only`. Until it
    exists the `scoring.leads` view has no flag columns, so nothing can read them unset."""
    src = 'memory.main."_src_leads"' if csv else 'memory.main."leads"'
    if only:
        src = f"(SELECT * FROM {src} WHERE lead_id IN (SELECT lead_id FROM temp._only))"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _leads AS {leads_sql(src, free_mail_domains)}")


def _set_views(con: duckdb.DuckDBPyConnection, *, csv: bool = False, lo: str | None = None,
               hi: str | None = None, only: bool = False, flags: bool = False) -> None:
    """(Re)define the scoring views: clean (not quarantined) leads in [lo, hi); with `only`,
    just the leads in `temp._only` (an incremental run's changed leads). With `flags`, the
    leads come from `temp._leads` (`materialize_leads`: features need the flags); without,
    from the source without the flag columns (eligibility, checks). Events and outcomes come
    from the source."""
    conds = ["lead_id IS NOT NULL", "lead_id NOT IN (SELECT lead_id FROM temp._quarantined)"]
    if only:
        conds.append("lead_id IN (SELECT lead_id FROM temp._only)")
    if lo is not None:
        conds.append(f"lead_id >= {sql_literal(lo)}")
    if hi is not None:
        conds.append(f"lead_id < {sql_literal(hi)}")
    where = " AND ".join(conds)
    for name, table in INGESTED_TABLES.items():
        src = f'memory.main."_src_{name}"' if csv else f'memory.main."{name}"'
        cols = [f'"{c}"' for c in table.columns if flags or c not in DERIVED_LEAD_COLUMNS]
        if name == "leads" and flags:
            src = "temp.main._leads"
        con.execute(f"CREATE OR REPLACE VIEW scoring.{name} AS SELECT {', '.join(cols)} FROM {src} WHERE {where}")


FINGERPRINTS = ("stat", "content")


def input_fingerprint(kind: str, path: str | Path, mode: str = "stat") -> str:
    """A hash of the input files. `mode` "stat": their names, sizes and modification times
    (cheap, no data read); "content": their bytes (read in blocks, constant memory), so a
    copy or a touched file with the same data is the same input and an edit that keeps
    size and mtime is not."""
    if mode not in FINGERPRINTS:
        raise ConfigError(f"score.fingerprint={mode!r}: use one of {', '.join(FINGERPRINTS)}")
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256(f"{kind}|{mode}".encode() if mode != "stat" else kind.encode())
    for f in files:
        if mode == "content":
            h.update(f"{f.name}|{file_sha256(f)}\n".encode())
        else:
            st = f.stat()
            h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


# ---- 2. checks -------------------------------------------------------------------------

def vocabulary_sql(relation: str, table: str, column: str) -> tuple[str, str]:
    """(key column, SELECT of the keys of `relation` whose `column` is outside its closed
    vocabulary, `CLOSED_VOCABULARIES[(table, column)]`)."""
    allowed = ", ".join(sql_literal(v) for v in CLOSED_VOCABULARIES[(table, column)])
    key = "event_id" if table == "events" else "lead_id"
    return key, f'SELECT {key} FROM {relation} WHERE "{column}" IS NOT NULL AND "{column}" NOT IN ({allowed})'


def vocabulary_message(where: str, column: str, count: int, key: str, keys: Sequence[str],
                       vocab: Sequence[str]) -> str:
    return (f"{where}: column '{column}' has {count} value(s) outside the allowed categories "
            f"({key}: {', '.join(keys)}); allowed: {', '.join(vocab)}. Map them in the export.")


def quarantine_sql(relations: Mapping[str, str]) -> str:
    """SELECT of the quarantine rows (lead_id, table_name, column_name, reason) over the
    `relations` of leads, events and outcomes: duplicate and null lead ids, `ROW_CHECKS`.
    DuckDB's SQL; the Spark job runs it transpiled."""
    leads = relations["leads"]
    parts = [
        "SELECT lead_id, 'leads' AS table_name, 'lead_id' AS column_name, 'duplicate lead_id' AS reason "
        f"FROM {leads} WHERE lead_id IN (SELECT lead_id FROM {leads} "
        "WHERE lead_id IS NOT NULL GROUP BY lead_id HAVING count(*) > 1)",
        f"SELECT NULL, 'leads', 'lead_id', 'null lead_id' FROM {leads} WHERE lead_id IS NULL",
    ]
    parts += [f"SELECT lead_id, '{table}', '{col}', '{reason}' FROM {relations[table]} "
              f"WHERE lead_id IS NOT NULL AND {cond}" for table, col, cond, reason in ROW_CHECKS]
    return " UNION ALL ".join(parts)


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
    relations = {name: f"memory.main.{name}" for name in INGESTED_TABLES}
    for (table, col), vocab in CLOSED_VOCABULARIES.items():
        key, bad_rows = vocabulary_sql(relations[table], table, col)
        bad = con.execute(f"SELECT count(*) FROM ({bad_rows})").fetchone()[0]
        if bad:
            keys = [safe_key(r[0]) for r in con.execute(
                f"{bad_rows} ORDER BY {key} LIMIT {int(sample_keys)}").fetchall()]
            raise InputError(vocabulary_message(where[table], col, bad, key, keys, vocab))
    q = con.execute(quarantine_sql(relations)).df()
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
    """The MLflow model at `uri` (a folder, or a models:/ or runs:/ URI, downloaded first),
    **verified before it is loaded** (`verify_model_folder`: its files must hash to the
    `model_version` recorded at export, and its code file must be leadscore's), then
    `mlflow.pyfunc.load_model`. A missing, unloadable, changed or corrupted model is
    `ModelError` (exit 3)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow.artifacts
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    def load(folder: Path) -> Any:
        verify_model_folder(folder, uri)
        try:
            return mlflow.pyfunc.load_model(str(folder))
        except (MlflowException, OSError) as err:
            raise ModelError(f"{uri}: cannot load the scorer model ({str(err).splitlines()[0][:300]})") from None

    if "://" not in uri and not uri.startswith(("models:", "runs:")):
        if not Path(uri).exists():
            raise ModelError(f"{uri}: model not found (run the export stage, or pass --model "
                             "models:/leadscore@champion)")
        return load(Path(uri))
    with tempfile.TemporaryDirectory(prefix="leadscore-model-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        except (MlflowException, OSError) as err:
            raise ModelError(f"{uri}: cannot load the scorer model ({str(err).splitlines()[0][:300]})") from None
        return load(Path(local))  # the scorer reads every artifact at load: the copy can go


def verify_model_folder(folder: Path, uri: str | None = None) -> str | None:
    """Check an exported model folder before any of its code runs: the artifacts listed in
    its MLmodel must hash (`leadscore.serve.export.model_version`) to the `model_version`
    recorded in its metadata, and its models-from-code file must be byte-identical to
    `leadscore.serve.model_code` (the model would otherwise run code we never wrote).
    Returns the verified version; None (a warning) for an MLflow model that is not a
    leadscore export (no recorded version). `ModelError` otherwise."""
    import yaml

    from leadscore.serve.export import CODE_FILE, model_version

    where = uri or str(folder)
    mlmodel = folder / "MLmodel"
    if not mlmodel.is_file():
        raise ModelError(f"{where}: not an MLflow model folder (no MLmodel file)")
    try:
        doc = yaml.safe_load(mlmodel.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ModelError(f"{where}: unreadable MLmodel file ({safe_error_text(err)})") from None
    recorded = (doc.get("metadata") or {}).get("model_version")
    pyfunc = (doc.get("flavors") or {}).get("python_function") or {}
    if recorded is None:
        log.warning("%s: the model records no model_version; its content is not verified", where)
        return None
    artifacts = pyfunc.get("artifacts") or {}
    files = {k: folder / v["path"] for k, v in artifacts.items() if isinstance(v, dict) and "path" in v}
    missing = sorted(k for k, f in files.items() if not f.is_file())
    if not files or missing:
        raise ModelError(f"{where}: the model's artifact file(s) {missing or 'all'} are missing; "
                         "re-export the model")
    actual = model_version(files)
    if actual != str(recorded):
        raise ModelError(f"{where}: the model's files do not match its recorded version {recorded} "
                         f"(their content hash is {actual}): the folder was changed or corrupted "
                         "after export. Re-export it, or score another --model.")
    code_path = pyfunc.get("model_code_path")
    if code_path:
        stored = folder / Path(str(code_path)).name
        if not stored.is_file() or stored.read_bytes() != CODE_FILE.read_bytes():
            raise ModelError(f"{where}: the model's code file ({stored.name}) is not leadscore's "
                             "serve/model_code.py; refusing to run it. Re-export the model.")
    return str(recorded)


def inner_scorer(model: Any) -> Any:
    """The `leadscore.serve.scorer.Scorer` inside a loaded leadscore pyfunc model
    (`load_scorer_model`), else None (another kind of MLflow model)."""
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

RESUME_KEYS = ("run_id", "as_of", "model_version", "input_fingerprint", "fingerprint", "changed_since",
               "base_run_id")


def resume_mismatch(manifest: dict, identity: dict) -> list[str]:
    """The keys of `RESUME_KEYS` on which a staged run's manifest differs from this run
    (empty: its finished parts can be reused). A manifest written before the fingerprint
    mode was recorded was a "stat" one."""
    staged = {"fingerprint": "stat", **manifest}
    return [k for k in RESUME_KEYS if str(staged.get(k)) != str(identity.get(k))]


GRADES = tuple(f"{letter}{digit}" for letter in "ABCD" for digit in "1234")


def invariant_queries(staged: str = "_staged", eligible: str = "_elig") -> dict[str, str]:
    """The counts `check_invariants` judges, over the staged scores and the eligible lead
    ids (DuckDB's SQL; the Spark job runs it transpiled)."""
    grades = ", ".join(sql_literal(g) for g in GRADES)
    return {
        "rows": f"SELECT count(*) FROM {staged}",
        "duplicated": f"SELECT count(*) FROM (SELECT lead_id FROM {staged} GROUP BY lead_id HAVING count(*) > 1)",
        "null_lead_id": f"SELECT count(*) FROM {staged} WHERE lead_id IS NULL",
        "eligible": f"SELECT count(*) FROM {eligible}",
        "missing": f"SELECT count(*) FROM {eligible} e ANTI JOIN {staged} s USING (lead_id)",
        "not_eligible": f"SELECT count(*) FROM {staged} s ANTI JOIN {eligible} e USING (lead_id)",
        "bad_probability": f"SELECT count(*) FROM {staged} WHERE probability IS NULL OR isnan(probability) "
                           "OR probability < 0 OR probability > 1",
        "bad_grade": f"SELECT count(*) FROM {staged} WHERE grade IS NULL OR grade NOT IN ({grades}) "
                     "OR grade IS DISTINCT FROM fit_grade || engagement_grade",
    }


def check_invariants(con: duckdb.DuckDBPyConnection, parts: Sequence[Path], *, as_of: dt.datetime,
                     features: FeaturesConfig, quarantined: pd.Series | None = None,
                     staged: str | None = None) -> dict[str, int]:
    """Before anything is published: the staged parts hold every eligible clean lead as of
    `as_of` exactly once (eligibility as `leadscore.features.build` defines it, on the
    scoring views of `con`, set to the whole clean lead base) and no other lead, no
    quarantined lead, every probability in [0, 1] and every grade one of A1..D4 equal to
    its letter and digit. `InputError` (the leads) or `ModelError` (the scores) otherwise,
    naming counts and up to 5 lead ids. Returns the counts. `staged`: a query giving the
    rows instead of `parts` (an incremental run's merged table)."""
    eligible = eligibility_sql(as_of, **feature_kwargs(features))
    files = [str(p) for p in parts]
    con.execute("CREATE OR REPLACE TEMP TABLE _elig AS SELECT DISTINCT lead_id FROM (" + eligible + ")")
    if staged is not None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _staged AS {staged}")
    elif files:
        con.execute("CREATE OR REPLACE TEMP TABLE _staged AS SELECT lead_id, probability, grade, fit_grade, "
                    "engagement_grade FROM read_parquet(?)", [files])
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _staged (lead_id VARCHAR, probability DOUBLE, "
                    "grade VARCHAR, fit_grade VARCHAR, engagement_grade VARCHAR)")
    q = invariant_queries()
    try:
        return _judge(con, q, quarantined)
    finally:
        con.execute("DROP TABLE IF EXISTS _elig")
        con.execute("DROP TABLE IF EXISTS _staged")


def _judge(con: duckdb.DuckDBPyConnection, q: dict[str, str], quarantined: pd.Series | None) -> dict[str, int]:
    counts = {k: int(con.execute(v).fetchall()[0][0]) for k, v in q.items()}
    sample = {
        "duplicated": "SELECT lead_id FROM _staged GROUP BY lead_id HAVING count(*) > 1",
        "missing": "SELECT lead_id FROM _elig e ANTI JOIN _staged s USING (lead_id)",
        "not_eligible": "SELECT lead_id FROM _staged s ANTI JOIN _elig e USING (lead_id)",
        "bad_probability": "SELECT lead_id FROM _staged WHERE probability IS NULL OR isnan(probability) "
                           "OR probability < 0 OR probability > 1",
        "bad_grade": q["bad_grade"].replace("SELECT count(*)", "SELECT lead_id"),
    }

    def keys(kind: str) -> str:
        rows = con.execute(f"{sample[kind]} ORDER BY lead_id LIMIT 5").fetchall()
        return ", ".join(safe_key(r[0]) for r in rows)

    in_quarantine = 0
    if quarantined is not None and len(quarantined.dropna()):
        con.register("_q", pd.DataFrame({"lead_id": quarantined.dropna().astype(str).unique()}))
        in_quarantine = int(con.execute("SELECT count(*) FROM _staged JOIN _q USING (lead_id)").fetchall()[0][0])
        con.unregister("_q")
    lead_problems = [f"{counts[k]} {what} (lead_id: {keys(k)})" for k, what in (
        ("duplicated", "lead(s) scored more than once"), ("missing", "eligible lead(s) not scored"),
        ("not_eligible", "scored lead(s) that are not eligible")) if counts[k]]
    if counts["null_lead_id"]:
        lead_problems.append(f"{counts['null_lead_id']} row(s) without a lead_id")
    if in_quarantine:
        lead_problems.append(f"{in_quarantine} quarantined lead(s) scored")
    if lead_problems:
        raise InputError(f"nothing published: the staged scores do not cover the {counts['eligible']} eligible "
                         f"lead(s) exactly once: {'; '.join(lead_problems)}. The input changed during the "
                         "run? Rerun with a new --run-id.")
    score_problems = [f"{counts[k]} {what} (lead_id: {keys(k)})" for k, what in (
        ("bad_probability", "probability(ies) missing or outside [0, 1]"),
        ("bad_grade", "grade(s) not one of A1..D4 or not letter + digit")) if counts[k]]
    if score_problems:
        raise ModelError(f"nothing published: the model's scores are invalid: {'; '.join(score_problems)}. "
                         "Check the exported model.")
    return counts


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
    fingerprint_mode: str = "stat",
    changed_since: dt.datetime | None = None,
    incremental: bool = False,
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

    `incremental` (or a `changed_since` timestamp) rescores only the leads changed since
    `changed_since` (default: the published run's watermark) and merges them into the
    published table (`leadscore.serve.incremental`; a full run when it cannot merge). Such a
    run records no score-history row.
    """
    from leadscore.progress import bar as progress_bar
    from leadscore.serve import incremental as inc

    t0 = time.perf_counter()
    out = Path(out)
    fmt = output_format(out, fmt)
    check_table_name(table)
    if fingerprint_mode not in FINGERPRINTS:
        raise ConfigError(f"score.fingerprint={fingerprint_mode!r}: use one of {', '.join(FINGERPRINTS)}")
    if chunk_size < 1:
        raise ConfigError("chunk_size must be at least 1")
    catalog = feature_catalog(features.windows_days, features.content_types)
    model = load_scorer_model(model_uri)
    check_signature(model, catalog.names, catalog.categorical, model_uri)
    version = model_version_of(model)
    fast = inner_scorer(model)
    feats_hash = inc.features_hash(features)
    base = None
    if incremental or changed_since is not None:
        base = inc.published_base(out, fmt, table)
        why = inc.full_run_reason(base, model_version=version, features_hash=feats_hash,
                                  changed_since=changed_since)
        if why:
            log.warning("incremental run not possible (%s): running a full run", why)
            base = None
    since = None if base is None else (changed_since or dt.datetime.fromisoformat(str(base["watermark"])))
    recorder = None if history is None or base is not None else history.start(
        model_version=version, model_kind=model_kind_of(model), names=catalog.names,
        categorical=catalog.categorical,
        predict=lambda x: fast.score_arrow(x)[0] if fast is not None else model.predict(x))

    con, info = open_crm(source_kind, source, free_mail_domains, threads=threads, memory_limit=memory_limit,
                         flags=False)
    views = {"csv": source_kind == "csv", "only": base is not None}
    try:
        if as_of is None:
            cutoff = data_cutoff(con)
            as_of = dt.datetime.combine(cutoff.date() + dt.timedelta(days=1), dt.time())
        fingerprint = input_fingerprint(source_kind, source, fingerprint_mode)
        mode = "full" if base is None else "incremental"
        basis = fingerprint if base is None else f"{fingerprint}|{since.isoformat()}|{base.get('run_id')}"
        run_id = run_id or make_run_id(as_of, version, basis)
        work = staging_dir(out, run_id)
        (work / "parts").mkdir(parents=True, exist_ok=True)
        manifest_path = work / "manifest.json"
        quarantine = check_input(con, info, budget=quarantine_budget)
        mark = inc.watermark(con, as_of)
        newest_event = (con.execute("SELECT max(occurred_at) FROM memory.main.events WHERE occurred_at < ?",
                                    [as_of]).fetchone()[0] if recorder is not None else None)
        published_rel, changes = None, {}
        if base is not None:
            published_rel = inc.attach_published(con, out, fmt, table)
            changes = inc.select_changed(con, published_rel, since=since, as_of=as_of, features=features)
            log.info("incremental run since %s: %d lead(s) to rescore, %d kept, %d removed", since,
                     changes["leads_rescored"], changes["leads_kept"], changes["leads_removed"])
        materialize_leads(con, free_mail_domains, csv=source_kind == "csv", only=base is not None)
        _set_views(con, flags=True, **views)
        n_leads = con.execute("SELECT count(*) FROM scoring.leads").fetchone()[0]
        manifest = read_json(manifest_path) if manifest_path.exists() else None
        identity = {"run_id": run_id, "as_of": as_of.isoformat(), "model_version": version,
                    "input_fingerprint": fingerprint, "fingerprint": fingerprint_mode,
                    "changed_since": None if since is None else since.isoformat(),
                    "base_run_id": None if base is None else base.get("run_id")}
        stale = manifest is not None and resume_mismatch(manifest, identity)
        if stale:
            log.warning("run %s: the staged run was for another input or model (%s differ); "
                        "starting over", run_id, ", ".join(stale))
            shutil.rmtree(work / "parts", ignore_errors=True)
            (work / "parts").mkdir(parents=True, exist_ok=True)
        if manifest is None or stale:
            started = (now or (lambda: dt.datetime.now(dt.UTC)))().replace(tzinfo=None, microsecond=0)
            manifest = {**identity, "mode": mode, "model_uri": model_uri, "model_kind": model_kind_of(model),
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
        bar = progress_bar(total=n_leads, unit="lead", desc=f"scoring {run_id[:8]}",
                           progress=None if progress else False)  # on: only on a terminal
        try:
            for i, lo in enumerate(bounds):
                part = work / "parts" / f"part-{i:05d}.parquet"
                hi = bounds[i + 1] if i + 1 < len(bounds) else None
                _set_views(con, lo=lo, hi=hi, flags=True, **views)
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
                write_arrow(lead_lags(feats, as_of=as_of, scored_at=scored_at), lag_file(part))
                write_arrow(tbl, part)
                bar.update(n_chunk)
                if chunk_pause_s:
                    time.sleep(chunk_pause_s)
        finally:
            bar.close()
        expected = {work / "parts" / f"part-{i:05d}.parquet" for i in range(len(bounds))}
        if not bounds:  # nothing to score (an incremental run with no change): one empty part
            write_arrow(SCORE_SCHEMA.empty_table(), work / "parts" / "part-00000.parquet")
            expected = {work / "parts" / "part-00000.parquet"}
        for stray in (work / "parts").glob("part-*.parquet"):  # never publish a part of another run
            if stray not in expected:
                stray.unlink()
        _set_views(con, csv=source_kind == "csv")
        glob = sql_literal(str(work / "parts" / "part-*.parquet"))
        check_invariants(con, sorted(expected), as_of=as_of, features=features, quarantined=quarantine["lead_id"],
                         staged=None if base is None else inc.staged_relation(published_rel, glob, fmt))
        q = quarantine.assign(as_of=as_of, run_id=run_id)
        q_table = pa.Table.from_pandas(q[QUARANTINE_SCHEMA.names], schema=QUARANTINE_SCHEMA, preserve_index=False)
        run = {"run_id": run_id, "as_of": as_of.isoformat(), "model_version": version,
               "scored_at": scored_at.isoformat(), "mode": mode, "watermark": mark.isoformat(),
               "features_hash": feats_hash}
        n_new = sum(pq.ParquetFile(p).metadata.num_rows for p in sorted(expected))
        speed = speed_to_lead([lag_file(p) for p in sorted(expected)])
        if base is not None:
            n_table = inc.publish_merge(con, published_rel, work / "parts", out, fmt, q_table, table=table,
                                        run=run, base_run_id=base.get("run_id"))
    finally:
        con.close()

    if base is None:
        n_table = publish(work / "parts", out, fmt, q_table, table=table, run=run)
    n_quarantined = int(quarantine["lead_id"].nunique()) + int(quarantine["lead_id"].isna().sum())
    if recorder is not None:
        recorder.append([work / "parts" / f"part-{i:05d}.parquet" for i in range(len(bounds))],
                        run_id=run_id, as_of=as_of, scored_at=scored_at, leads_in=int(info["leads"]["rows"]),
                        leads_quarantined=n_quarantined, leads_scored=n_table, newest_event_at=newest_event)
    shutil.rmtree(work / "parts", ignore_errors=True)
    extra = {"mode": mode, "watermark": mark.isoformat(), "table_rows": n_table, "speed_to_lead": speed}
    if base is not None:
        extra.update(changed_since=since.isoformat(), base_run_id=base.get("run_id"), **changes)
    manifest.update({"status": "published", "leads_scored": n_new, "leads_quarantined": n_quarantined,
                     "out": str(out), "format": fmt, **extra})
    write_json(manifest, manifest_path)
    result = ScoreResult(run_id=run_id, as_of=as_of, model_version=version, out=out,
                         leads_in=int(info["leads"]["rows"]), leads_quarantined=n_quarantined,
                         leads_scored=n_new, chunks=len(bounds), chunks_resumed=resumed,
                         seconds=time.perf_counter() - t0,
                         summary={**extra, "grades": grade_counts(out, fmt, table)})
    log.info("run %s (%s): %d leads in, %d quarantined, %d scored as of %s -> %s (%d rows; %.1fs)", run_id,
             mode, result.leads_in, n_quarantined, n_new, as_of.date(), out, n_table, result.seconds)
    return result


# ---- speed to lead ------------------------------------------------------------------------
#
# A lead's lag is scored_at - max(created_at, its last event before as_of): how long a new lead,
# or a lead that just did something, waited for its score. The features already hold both
# instants relative to as_of (`lead_age_days`, `days_since_last_activity`), so each chunk's lags
# cost nothing; they are staged beside its part (numbers only, no lead id). CRM timestamps and
# scored_at are both UTC. A full run's lags are long (most leads did nothing since yesterday);
# the figure that matters for speed to lead is an incremental run's.

LAG_QUANTILES = (0.5, 0.95)


def lag_file(part: Path) -> Path:
    return part.with_name(part.name.replace("part-", "lag-"))


def lead_lags(features: pd.DataFrame, *, as_of: dt.datetime, scored_at: dt.datetime) -> pa.Table:
    """Each scored lead's lag in seconds (see above), as a one-column table."""
    if not len(features):
        return pa.table({"lag_s": pa.array([], pa.float64())})
    days = features["lead_age_days"].astype("float64")
    since = features["days_since_last_activity"].astype("float64")
    fresh = since.where(since.notna() & (since < days), days)
    lag = (scored_at - as_of).total_seconds() + fresh.to_numpy() * 86400.0
    return pa.table({"lag_s": pa.array(lag.round(3), pa.float64())})


def speed_to_lead(files: Sequence[Path]) -> dict:
    """Median and 95th percentile lag (seconds and hours) over the run's scored leads."""
    found = [str(f) for f in files if f.exists()]
    if not found:
        return {"leads": 0}
    con = duckdb.connect()
    try:
        n, qs = con.execute("SELECT count(lag_s), quantile_cont(lag_s, ?) FROM read_parquet(?)",
                            [list(LAG_QUANTILES), found]).fetchall()[0]
    finally:
        con.close()
    if not n:
        return {"leads": 0}
    med, p95 = qs
    return {"leads": int(n), "median_s": round(med, 1), "p95_s": round(p95, 1),
            "median_h": round(med / 3600, 2), "p95_h": round(p95 / 3600, 2),
            "basis": "scored_at - max(created_at, last event before as_of)"}


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
        control_share=sc.control_share, control_salt=sc.control_salt,
        fingerprint_mode=sc.fingerprint, **kw)
