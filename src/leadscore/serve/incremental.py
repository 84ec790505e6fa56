"""Incremental scoring: rescore only the leads that changed, merge them into the published table.

`leadscore score --changed-since TS` (or `--incremental`: TS is the **watermark** of the last
published run) is `leadscore.serve.batch.score_leads` with `changed_since` / `incremental`.
The steps below are called from there; this module holds what differs from a full run.

**The base.** The published result (`published_base`: the manifest of a Parquet/CSV output,
the `<table>_manifest` row of a DuckDB one) records the run's `watermark` =
min(as_of, newest timestamp in its input), `features_hash` (the feature settings) and
`model_version`. An incremental run falls back to a full run (a warning, same exit codes)
when nothing is published, when the published result predates watermarks, or when the model
or the feature settings differ: one table never mixes two models.

**Which leads are rescored** (`select_changed`, on the whole clean lead base): the leads
eligible at this run's as_of (the training code's eligibility rule) that

- were created at or after the watermark (`leads.created_at`), or
- have an event (`events.occurred_at`) or an outcome (`outcomes.stage_at`) at or after it, or
- are eligible but missing from the published table (a lead out of quarantine, or one that
  became eligible again).

The CRM contract has no `updated_at`: an edit of a lead's attributes (title, company size,
...) that comes with no new event or outcome, and events back-dated before the watermark,
are **not** seen by an incremental run; the nightly full run picks them up.

**Which leads are removed**: every published lead that is no longer eligible at this as_of
(converted, closed, older than `max_lead_age_days`) or is now quarantined. The published rows
of the other leads are kept as they are (their own `as_of`, `run_id`, `scored_at`).

**Publishing** (`publish_merge`): the kept rows plus the new rows, checked by the same
invariants as a full run (every eligible clean lead exactly once), published as one unit:
Parquet/CSV a new pair of files then the manifest swap (`publish.publish_files`); DuckDB one
transaction deleting the removed and rescored rows, inserting the new ones and replacing the
quarantine and manifest tables. When another run has published since this one read the
base, nothing is published (`InputError`; rerun).

**Same as a full run**: at the same as_of, a full run and any chain of incremental runs over
the same data give the same rows except `run_id` and `scored_at` (which run scored the lead,
and when). When as_of moves on (a new day), the unchanged rows keep their earlier as_of and
score (lead age, recency and decay move with as_of): that drift is the nightly full run's job.

Incremental runs append **no score-history row**: the monitor's volume and PSI checks compare
whole-base runs, and a run of a few changed leads would alarm them; the nightly full run is
the monitoring record. The run manifest keeps its counts and its speed-to-lead figures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow as pa

from leadscore.config import FeaturesConfig
from leadscore.errors import InputError
from leadscore.features.build import eligibility_sql
from leadscore.io import (
    check_table_name,
    fsync_dir,
    fsync_path,
    read_json,
    sql_identifier,
    sql_literal,
)
from leadscore.serve.batch import (  # batch imports this module only inside score_leads
    SCORE_COLUMNS,
    feature_kwargs,
)
from leadscore.serve.publish import (
    manifest_row,
    publish_files,
    published_file,
    published_manifest_path,
)

PUB = "_published"  # the alias of an attached published DuckDB output


def features_hash(features: FeaturesConfig) -> str:
    """A hash of the feature settings scoring uses (an incremental run needs the same)."""
    blob = json.dumps(feature_kwargs(features), sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def published_base(out: Path, fmt: str, table: str = "scores") -> dict | None:
    """The manifest of the published result at `out` (run_id, as_of, model_version,
    watermark, features_hash, ...), None when nothing is published."""
    if fmt != "duckdb":
        path = published_manifest_path(out)
        return read_json(path) if path.exists() else None
    if not out.exists():
        return None
    check_table_name(table)
    with duckdb.connect(str(out), read_only=True) as con:
        names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if f"{table}_manifest" not in names or table not in names:
            return None
        df = con.execute(f"SELECT * FROM {sql_identifier(table + '_manifest')}").df()
    if len(df) != 1:
        return None
    row = df.iloc[0].to_dict()
    return {k: (None if v is None or v != v else str(v)) for k, v in row.items()}  # NaN -> None


def full_run_reason(base: dict | None, *, model_version: str, features_hash: str,
                    changed_since: dt.datetime | None) -> str | None:
    """Why this incremental run must be a full run instead (None: it can be incremental)."""
    if base is None:
        return "nothing is published yet"
    if str(base.get("model_version")) != model_version:
        return (f"the published scores are of model {base.get('model_version')}, this run's is "
                f"{model_version}")
    if base.get("features_hash") != features_hash:
        return "the published scores were computed with other feature settings (or before incremental runs)"
    if changed_since is None and not base.get("watermark"):
        return "the published result records no watermark (published before incremental runs)"
    return None


def watermark(con: duckdb.DuckDBPyConnection, as_of: dt.datetime) -> dt.datetime:
    """min(as_of, the newest timestamp in the input): records at or after it are new to the
    next incremental run (a record at or after as_of did not count in this run)."""
    newest = con.execute(
        "SELECT greatest((SELECT max(created_at) FROM memory.main.leads), "
        "(SELECT max(occurred_at) FROM memory.main.events), (SELECT max(stage_at) FROM memory.main.outcomes))"
    ).fetchall()[0][0]
    return as_of if newest is None or newest > as_of else newest


def attach_published(con: duckdb.DuckDBPyConnection, out: Path, fmt: str, table: str) -> str:
    """A relation over the published scores on `con` (DuckDB: attached read-only as `_published`;
    detach it with `detach_published` before publishing). CSV: every column as text."""
    if fmt == "duckdb":
        con.execute(f"ATTACH {sql_literal(out)} AS {PUB} (READ_ONLY)")
        return f"{PUB}.{sql_identifier(table)}"
    f = published_file(out, "scores", verify=True)
    if fmt == "parquet":
        return f"read_parquet({sql_literal(f)})"
    return f"read_csv({sql_literal(f)}, header=true, all_varchar=true)"


def detach_published(con: duckdb.DuckDBPyConnection) -> None:
    if con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = ?", [PUB]).fetchall()[0][0]:
        con.execute(f"DETACH {PUB}")


def select_changed(con: duckdb.DuckDBPyConnection, published: str, *, since: dt.datetime,
                   as_of: dt.datetime, features: FeaturesConfig) -> dict[str, int]:
    """Fill temp tables `_only` (the leads to rescore) and `_keep` (eligible published leads
    kept as they are) from the scoring views of `con` (the whole clean lead base; see the
    module docstring). Returns counts."""
    eligible = eligibility_sql(as_of, **feature_kwargs(features))  # the rule of training
    con.execute("CREATE OR REPLACE TEMP TABLE _inc_elig AS SELECT DISTINCT lead_id FROM (" + eligible + ")")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _inc_pub AS SELECT DISTINCT lead_id FROM {published}")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _only AS
        SELECT lead_id FROM temp._inc_elig WHERE lead_id IN (
            SELECT lead_id FROM scoring.leads WHERE created_at >= $since
            UNION ALL SELECT lead_id FROM scoring.events WHERE occurred_at >= $since
            UNION ALL SELECT lead_id FROM scoring.outcomes WHERE stage_at >= $since)
        UNION
        SELECT lead_id FROM temp._inc_elig ANTI JOIN temp._inc_pub USING (lead_id)""", {"since": since})
    con.execute("CREATE OR REPLACE TEMP TABLE _keep AS "
                "SELECT lead_id FROM temp._inc_elig ANTI JOIN temp._only USING (lead_id)")
    counts = con.execute(
        "SELECT (SELECT count(*) FROM temp._only), (SELECT count(*) FROM temp._keep), "
        "(SELECT count(*) FROM temp._inc_pub ANTI JOIN temp._inc_elig USING (lead_id))").fetchall()[0]
    con.execute("DROP TABLE temp._inc_elig")
    con.execute("DROP TABLE temp._inc_pub")
    return {"leads_rescored": int(counts[0]), "leads_kept": int(counts[1]), "leads_removed": int(counts[2])}


def staged_relation(published: str, parts_glob: str, fmt: str) -> str:
    """The rows the merged table will hold (the columns `check_invariants` reads)."""
    cols = "lead_id, probability, grade, fit_grade, engagement_grade"
    kept = (f"SELECT lead_id, CAST(probability AS DOUBLE) AS probability, grade, fit_grade, engagement_grade "
            f"FROM {published}") if fmt == "csv" else f"SELECT {cols} FROM {published}"
    return (f"SELECT * FROM ({kept}) WHERE lead_id IN (SELECT lead_id FROM temp._keep) "
            f"UNION ALL SELECT {cols} FROM read_parquet({parts_glob})")


def _check_base(out: Path, fmt: str, table: str, base_run_id: str | None) -> None:
    now = published_base(out, fmt, table)
    if (now or {}).get("run_id") != base_run_id:
        raise InputError(f"{out}: another scoring run published (run {(now or {}).get('run_id')}) after this "
                         f"incremental run read run {base_run_id}; nothing published. Rerun it (and do not "
                         "let scoring runs overlap: see the README's scheduling recipe).")


def publish_merge(con: duckdb.DuckDBPyConnection, published: str, parts: Path, out: Path, fmt: str,
                  quarantine: pa.Table, *, table: str, run: dict, base_run_id: str | None) -> int:
    """Publish the kept published rows plus the new parts, with the run's whole quarantine, as
    one unit (see the module docstring). Returns the rows of the merged table."""
    glob = sql_literal(str(parts / "part-*.parquet"))
    con.register("_quarantine", quarantine)
    q_query = "SELECT * FROM _quarantine ORDER BY lead_id, table_name, column_name"
    kept = f"SELECT * FROM {published} WHERE lead_id IN (SELECT lead_id FROM temp._keep)"
    try:
        if fmt == "duckdb":
            detach_published(con)
            _check_base(out, fmt, table, base_run_id)
            return _upsert_duckdb(con, glob, out, table, q_query, run, base_run_id)
        _check_base(out, fmt, table, base_run_id)
        if fmt == "parquet":
            query = f"SELECT * FROM ({kept} UNION ALL SELECT * FROM read_parquet({glob})) ORDER BY lead_id"
            doc = publish_files(con, {"scores": query, "quarantine": q_query}, out, fmt, run)
        else:  # CSV: the kept rows are text already; the new ones are written as the full run writes them
            new = ", ".join("to_json(reasons) AS reasons" if c == "reasons" else f"CAST({c} AS VARCHAR) AS {c}"
                            for c in SCORE_COLUMNS)
            query = (f"SELECT * FROM ({kept} UNION ALL SELECT {new} FROM read_parquet({glob})) ORDER BY lead_id")
            doc = publish_files(con, {"scores": query, "quarantine": q_query}, out, fmt, run, raw_csv=True)
        return int(doc["scores"]["rows"])
    finally:
        con.unregister("_quarantine")


def _upsert_duckdb(con: duckdb.DuckDBPyConnection, glob: str, out: Path, table: str, q_query: str,
                   run: dict, base_run_id: str | None) -> int:
    """One transaction on the DuckDB output: delete the removed and rescored rows, insert the
    new ones, replace the quarantine and the manifest."""
    alias = "_dst"
    t, q, m = (f"{alias}.{sql_identifier(n)}" for n in (table, f"{table}_quarantine", f"{table}_manifest"))
    con.register("_manifest", manifest_row(run, 0, quarantine_rows=0))
    con.execute(f"ATTACH {sql_literal(out)} AS {alias}")
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            current = con.execute(f"SELECT run_id FROM {m}").fetchall()
            if [r[0] for r in current] != [base_run_id]:
                raise InputError(f"{out}: another scoring run published after this incremental run read "
                                 f"run {base_run_id}; nothing published. Rerun it.")
            con.execute(f"DELETE FROM {t} WHERE lead_id NOT IN (SELECT lead_id FROM temp._keep)")
            con.execute(f"INSERT INTO {t} BY NAME SELECT * FROM read_parquet({glob})")
            con.execute(f"DELETE FROM {q}")
            con.execute(f"INSERT INTO {q} BY NAME {q_query}")
            n, nq = con.execute(f"SELECT (SELECT count(*) FROM {t}), (SELECT count(*) FROM {q})").fetchall()[0]
            con.execute(f"DROP TABLE {m}")
            con.execute(f"CREATE TABLE {m} AS SELECT * REPLACE ({int(n)} AS scores_rows, "
                        f"{int(nq)} AS quarantine_rows) FROM _manifest")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute(f"CHECKPOINT {alias}")
    finally:
        con.execute(f"DETACH {alias}")
        con.unregister("_manifest")
    fsync_path(out)
    fsync_dir(out.parent)
    return int(n)
