"""Publishing the batch job's result, and reading it back: the reader rule.

The reader rule (Parquet and CSV): read `<out>.manifest.json` (`published_manifest_path`)
first, then the two files it names (`read_scores`, `read_quarantine`, `published_file`).
The manifest is written last, with one `os.replace`, after both files of the new result are
complete and on disk in their own folder (`.<out name>.published/<run>-<id>/`), so it always
names a complete pair of the same run: the old pair until it is replaced, the new pair after.
Older pairs are removed only once the new manifest is on disk. `<out>` and its quarantine
sibling are then hard links to the new pair, for readers that open a fixed path: the scores
first, the quarantine second, so the quarantine such a reader sees is never newer than the
scores. DuckDB output: the scores, the quarantine and a one-row manifest table
(`<table>_quarantine`, `<table>_manifest`) are swapped in one transaction.

Used by the batch job (`leadscore.serve.batch`), incremental runs and erasure.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from leadscore.errors import ConfigError, InputError
from leadscore.io import (
    check_table_name,
    file_sha256,
    fsync_dir,
    read_json,
    sql_identifier,
    sql_literal,
    swap_duckdb_tables,
    write_json,
    write_query,
)

FORMATS = ("parquet", "csv", "duckdb")


def output_format(out: Path, fmt: str | None) -> str:
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


# What a published manifest records of the run that published it: the watermark (min of
# as_of and the newest input timestamp) is where the next `--incremental` run starts; the
# features hash and model version must match for it to merge (`leadscore.serve.incremental`).
RUN_KEYS = ("run_id", "as_of", "model_version", "scored_at", "mode", "watermark", "features_hash")


def published_manifest_path(out: str | Path) -> Path:
    """`<out>.manifest.json`: which score and quarantine files make up the published result."""
    out = Path(out)
    return out.with_name(f"{out.name}.manifest.json")


def generations_dir(out: str | Path) -> Path:
    """The folder holding the published pairs of files (one sub-folder per publish)."""
    out = Path(out)
    return out.parent / f".{out.name}.published"


def publish(parts: Path, out: Path, fmt: str, quarantine: pa.Table, *, table: str = "scores",
            run: dict | None = None) -> int:
    """Combine the parts (sorted by lead_id) and publish them, plus the quarantine, as one
    atomic unit (see the reader rule above). `run` (run_id, as_of, model_version,
    scored_at) goes into the manifest. Returns the number of score rows."""
    run = dict(run or {})
    glob = sql_literal(str(parts / "part-*.parquet"))
    query = f"SELECT * FROM read_parquet({glob}) ORDER BY lead_id"
    q_query = "SELECT * FROM _quarantine ORDER BY lead_id, table_name, column_name"
    con = duckdb.connect()
    try:
        con.register("_quarantine", quarantine)
        n = con.execute(f"SELECT count(*) FROM read_parquet({glob})").fetchall()[0][0]
        if fmt == "duckdb":  # new tables, swapped in with one transaction
            check_table_name(table)
            con.register("_manifest", manifest_row(run, int(n), quarantine.num_rows))
            swap_duckdb_tables(con, out, {table: query, f"{table}_quarantine": q_query,
                                          f"{table}_manifest": "SELECT * FROM _manifest"})
        else:
            publish_files(con, {"scores": query, "quarantine": q_query}, out, fmt, run)
    finally:
        con.close()
    return int(n)


def manifest_row(run: dict, scores_rows: int, quarantine_rows: int) -> pd.DataFrame:
    """The one-row `<table>_manifest` of a DuckDB output: the run's `RUN_KEYS` and row counts."""
    return pd.DataFrame([{**{k: run.get(k) for k in RUN_KEYS}, "scores_rows": int(scores_rows),
                          "quarantine_rows": int(quarantine_rows)}]).astype({k: "string" for k in RUN_KEYS})


def publish_files(con: duckdb.DuckDBPyConnection, queries: dict[str, str], out: Path, fmt: str,
                  run: dict, *, raw_csv: bool = False) -> dict:
    """Write `queries` {"scores": ..., "quarantine": ...} on `con` as a new pair of files,
    commit the manifest naming them, link `out` and its quarantine sibling to them, and
    remove older pairs. `raw_csv`: the queries already give CSV text (reasons as JSON)."""
    gen = generations_dir(out) / f"{run.get('run_id') or 'run'}-{uuid.uuid4().hex[:8]}"
    gen.mkdir(parents=True)
    targets = {"scores": out, "quarantine": quarantine_path(out, fmt)}
    doc = {"format": fmt, **{k: run.get(k) for k in RUN_KEYS}}
    try:
        for key, query in queries.items():
            f = gen / targets[key].name
            if raw_csv:
                write_query(con, query, f, fmt)
            else:
                _publish_file(con, query, f, fmt)
            rows = con.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0]
            doc[key] = {"path": f.relative_to(out.parent).as_posix(), "rows": int(rows),
                        "sha256": file_sha256(f)}
        fsync_dir(gen)
        fsync_dir(gen.parent)
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        raise
    _commit(out, doc)
    for key in ("scores", "quarantine"):  # scores first: a plain reader's quarantine is never newer
        _link_plain(gen / targets[key].name, targets[key])
    for old in generations_dir(out).iterdir():
        if old != gen:
            shutil.rmtree(old, ignore_errors=True)
    return doc


def _commit(out: Path, doc: dict) -> None:
    """The commit point of a publish: the manifest, written last (atomic, flushed)."""
    write_json(doc, published_manifest_path(out))


def _link_plain(src: Path, target: Path) -> None:
    """`target` becomes the same file as `src` (a hard link, else a copy), in one rename."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _publish_file(con: duckdb.DuckDBPyConnection, query: str, out: Path, fmt: str) -> None:
    if fmt == "csv" and "reasons" in _columns(con, query):  # CSV: reasons as JSON text
        query = f"SELECT * REPLACE (to_json(reasons) AS reasons) FROM ({query})"
    write_query(con, query, out, fmt)


def _columns(con: duckdb.DuckDBPyConnection, query: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {query}").fetchall()]


def published_file(out: str | Path, key: str = "scores", *, verify: bool = True) -> Path:
    """The file holding the published `key` ("scores" or "quarantine") of the Parquet or CSV
    output `out`, by the reader rule: the one its manifest names (with `verify`, its SHA-256
    must match the manifest's), or, for an output published before manifests, `out` / its
    quarantine sibling. `InputError` when the manifest names a missing or changed file."""
    out = Path(out)
    manifest = published_manifest_path(out)
    if not manifest.exists():
        return out if key == "scores" else quarantine_path(out, output_format(out, None))
    doc = read_json(manifest)
    entry = doc.get(key) or {}
    f = out.parent / str(entry.get("path", ""))
    if not entry or not f.is_file():
        raise InputError(f"{manifest}: names {key} file {entry.get('path')!r}, which is missing")
    if verify and file_sha256(f) != entry.get("sha256"):
        raise InputError(f"{manifest}: the {key} file {entry['path']} does not match its recorded SHA-256 "
                         "(changed after publishing)")
    return f


def _relation(con: duckdb.DuckDBPyConnection, out: Path, fmt: str, table: str, key: str = "scores") -> str:
    if fmt == "duckdb":
        check_table_name(table)
        con.execute(f"ATTACH {sql_literal(out)} AS src (READ_ONLY)")
        name = table if key == "scores" else f"{table}_quarantine"
        return f"src.{sql_identifier(name)}"
    f = published_file(out, key, verify=False)
    if fmt == "parquet":
        return f"read_parquet({sql_literal(f)})"
    return f"read_csv({sql_literal(f)}, header=true)"


def grade_counts(out: Path, fmt: str, table: str) -> dict[str, int]:
    con = duckdb.connect()
    try:
        rel = _relation(con, out, fmt, table)
        rows = con.execute(f"SELECT grade, count(*) FROM {rel} GROUP BY grade ORDER BY grade").fetchall()
    finally:
        con.close()
    return {str(g): int(n) for g, n in rows}


_CSV_TEXT = ("lead_id", "grade", "fit_grade", "engagement_grade", "rule_grade", "model_version", "run_id", "arm")


def _read_published(path: str | Path, kind: str, fmt: str | None, table: str,
                    verify: bool) -> pd.DataFrame | Path:
    """A DuckDB output's table of `kind` ("scores" or "quarantine"), or the Parquet frame /
    CSV file path its manifest names (the reader rule)."""
    path = Path(path)
    fmt = output_format(path, fmt)
    if fmt == "duckdb":
        check_table_name(table)
        name = table if kind == "scores" else f"{table}_quarantine"
        with duckdb.connect(str(path), read_only=True) as con:
            return con.execute(f"SELECT * FROM {sql_identifier(name)} ORDER BY lead_id").df()
    f = published_file(path, kind, verify=verify)
    return pd.read_parquet(f) if fmt == "parquet" else f


def read_scores(path: str | Path, fmt: str | None = None, table: str = "scores", *,
                verify: bool = True) -> pd.DataFrame:
    """Read a published score output back, by the reader rule (Parquet/CSV: the file its
    manifest names, hash-checked with `verify`; DuckDB: the table). Reasons as lists of
    dicts (parsed from JSON in CSV)."""
    got = _read_published(path, "scores", fmt, table, verify)
    if isinstance(got, pd.DataFrame):
        return got
    df = pd.read_csv(got, dtype=dict.fromkeys(_CSV_TEXT, str), parse_dates=["as_of", "scored_at"])
    df["reasons"] = df["reasons"].map(json.loads)
    return df


def read_quarantine(path: str | Path, fmt: str | None = None, table: str = "scores", *,
                    verify: bool = True) -> pd.DataFrame:
    """The quarantine published with the scores at `path` (the same reader rule)."""
    got = _read_published(path, "quarantine", fmt, table, verify)
    if isinstance(got, pd.DataFrame):
        return got
    return pd.read_csv(got, dtype={"lead_id": str}, parse_dates=["as_of"])
