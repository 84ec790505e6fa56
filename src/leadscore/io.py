"""Every read and write of CRM tables and artifacts. Atomic publish lives here.

A writer never leaves a half-written file: it writes a temporary sibling and renames it
over the target (`os.replace` is atomic on one filesystem), so a reader sees the old file
or the new one (`atomic_path`; a folder is swapped in whole). The writers: `write_json`,
`write_csv`, `write_parquet`, `write_arrow` (a pyarrow table), `write_query` (a DuckDB
query's result as Parquet or CSV, never through pandas), `write_duckdb_tables` (a new DuckDB
file) and `swap_duckdb_tables` (new tables swapped into an existing DuckDB file in one
transaction).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from leadscore.errors import ConfigError, InputError, safe_error_text
from leadscore.schema import OPTIONAL_TABLES, TABLES, Table


def quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """`con` without DuckDB's own progress bar (it prints to the output of any query over ~2 s,
    terminal or not; leadscore's bars are `leadscore.progress`)."""
    con.execute("SET enable_progress_bar=false")
    return con

def fsync_path(path: str | Path) -> None:
    """Flush a file, or every file and folder under a folder, to disk (`os.fsync`)."""
    path = Path(path)
    if path.is_dir():
        for root, _dirs, files in os.walk(path):
            for name in files:
                _fsync_file(Path(root) / name)
            fsync_dir(root)
    elif path.exists():
        _fsync_file(path)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Flush a folder's entries (a rename inside it) to disk; a no-op where folders cannot
    be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on folders
        pass
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2 RENAME_EXCHANGE);
    False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def replace_dir(new: Path, target: Path) -> None:
    """Put the complete folder `new` in place of the folder `target`: one atomic exchange
    where the system has it (Linux), else `target` renamed aside and `new` renamed into
    place. The old folder is deleted only after the new one is in place, never before."""
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
    if _exchange(new, target):
        os.replace(new, old)  # `new` now names the previous folder
    else:
        os.replace(target, old)
        os.replace(new, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `target`; publish it over `target` on success.

    The caller writes a file or a folder at the yielded path. It is flushed to disk
    (`fsync` of the file, or of every file and folder inside), then published with one
    `os.replace` and the parent folder flushed, so after a crash the target is the old
    content or the complete new one, never an empty or torn file. A folder replacing an
    existing folder is swapped in by `replace_dir` (one atomic exchange on Linux); the old
    folder is never deleted before the new one is complete and in place. On any exception
    the temporary file or folder is removed and `target` is untouched.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"{target}: cannot create its folder {target.parent} (a file of that "
                          "name, or above it, is in the way); choose another output path") from None
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        fsync_path(tmp)
        if tmp.is_dir() and target.is_dir():
            replace_dir(tmp, target)
        else:
            os.replace(tmp, target)
            fsync_dir(target.parent)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        wal = tmp.with_name(tmp.name + ".wal")
        if wal.exists():
            wal.unlink()


def file_sha256(path: str | Path, block: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in blocks (constant memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def write_json(obj: Any, path: str | Path) -> None:
    """Write JSON atomically, with sorted keys so reruns give identical bytes."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    """A JSON file's content; a file that is not JSON is an `InputError` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({safe_error_text(err)})") from None


def read_parquet(path: str | Path) -> pd.DataFrame:
    """A Parquet file as a frame; a missing or unreadable file is an `InputError` naming it."""
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise InputError(f"{path}: not found") from None
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"{path}: not a readable Parquet file ({safe_error_text(err)})") from None


def write_csv(df: pd.DataFrame, path: str | Path, float_format: str | None = "%.6g") -> None:
    """Write a frame to CSV atomically (no index; 6 significant digits by default)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format=float_format)


def write_parquet(df: pd.DataFrame, path: str | Path) -> None:
    """Write a frame to Parquet atomically (no index)."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_arrow(table: Any, path: str | Path) -> None:
    """Write a pyarrow table to Parquet atomically."""
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_query(con: duckdb.DuckDBPyConnection, query: str, path: str | Path, fmt: str = "parquet") -> None:
    """Write the result of `query` on `con` to `path` atomically with DuckDB's COPY (`fmt`
    "parquet", else CSV with a header), so large results never pass through pandas."""
    opts = "(FORMAT parquet)" if fmt == "parquet" else "(FORMAT csv, HEADER true)"
    with atomic_path(path) as tmp:
        con.execute(f"COPY ({query}) TO {sql_literal(tmp)} {opts}")


def swap_duckdb_tables(con: duckdb.DuckDBPyConnection, path: str | Path, queries: dict[str, str]) -> None:
    """Replace tables of the DuckDB file `path` (created if absent) by the results of
    `queries` {table: query on `con`}: each is first written to a new table, then all are
    swapped in with one transaction, so a reader sees the old tables or the new ones. The
    file is checkpointed and flushed to disk before returning."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = uuid.uuid4().hex[:8]
    alias = f"dst_{suffix}"
    con.execute(f"ATTACH {sql_literal(path)} AS {alias}")
    try:
        fresh = {}
        for name, query in queries.items():
            fresh[name] = f"{name}_new_{suffix}"
            con.execute(f"CREATE TABLE {alias}.{sql_identifier(fresh[name])} AS {query}")
        con.execute("BEGIN TRANSACTION")
        try:
            for name, new in fresh.items():
                con.execute(f"DROP TABLE IF EXISTS {alias}.{sql_identifier(name)}")
                con.execute(f"ALTER TABLE {alias}.{sql_identifier(new)} RENAME TO {sql_identifier(name)}")
            con.execute("COMMIT")
        except duckdb.Error:
            con.execute("ROLLBACK")
            raise
        con.execute(f"CHECKPOINT {alias}")
    finally:
        con.execute(f"DETACH {alias}")
    fsync_path(path)
    fsync_dir(path.parent)


def write_duckdb_tables(
    path: str | Path, frames: dict[str, pd.DataFrame] | None = None, *, sql: dict[str, str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> None:
    """Write tables into a new DuckDB file, published atomically over `path`.

    `frames` maps table name to a DataFrame; `sql` maps table name to a query run on `con`
    (e.g. over attached sources), so large tables never pass through pandas.
    """
    with atomic_path(path) as tmp:
        out = con if con is not None else quiet(duckdb.connect())
        alias = f"out_{uuid.uuid4().hex[:8]}"
        out.execute(f"ATTACH {sql_literal(tmp)} AS {alias}")
        try:
            for name, df in (frames or {}).items():
                out.register("_frame", df)
                out.execute(f"CREATE TABLE {alias}.{sql_identifier(name)} AS SELECT * FROM _frame")
                out.unregister("_frame")
            for name, query in (sql or {}).items():
                out.execute(f"CREATE TABLE {alias}.{sql_identifier(name)} AS {query}")
        finally:
            out.execute(f"DETACH {alias}")
            if con is None:
                out.close()


def rewrite_duckdb_without(path: str | Path, column: str, values: Sequence[str]) -> dict[str, int]:
    """Rewrite the DuckDB file `path` without the rows whose `column` is one of `values`,
    in every table that has that column (other tables are copied whole; the schema,
    constraints included, is copied first). The result is a new file swapped in with
    `atomic_path`, so the deleted rows leave no bytes behind in free blocks of the old file.
    Returns {table: rows removed}."""
    path = Path(path)
    removed: dict[str, int] = {}
    con = quiet(duckdb.connect())
    try:
        con.execute(f"ATTACH {sql_literal(path)} AS old (READ_ONLY)")
        con.register("_drop", pd.DataFrame({"v": [str(v) for v in values]}))
        with atomic_path(path) as tmp:
            con.execute(f"ATTACH {sql_literal(tmp)} AS new")
            try:
                con.execute("COPY FROM DATABASE old TO new (SCHEMA)")
                tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() "
                                     "WHERE database_name = 'old' ORDER BY 1, 2").fetchall()
                for schema, table in tables:
                    cols = {r[0] for r in con.execute(
                        "SELECT column_name FROM duckdb_columns() WHERE database_name = 'old' "
                        "AND schema_name = ? AND table_name = ?", [schema, table]).fetchall()}
                    src = f"old.{sql_identifier(schema)}.{sql_identifier(table)}"
                    dst = f"new.{sql_identifier(schema)}.{sql_identifier(table)}"
                    where = ""
                    if column in cols:
                        n = con.execute(f"SELECT count(*) FROM {src} WHERE {sql_identifier(column)} IN "
                                        "(SELECT v FROM _drop)").fetchall()[0][0]
                        removed[table] = int(n)
                        where = f" WHERE {sql_identifier(column)} IS NULL OR {sql_identifier(column)} NOT IN (SELECT v FROM _drop)"
                    con.execute(f"INSERT INTO {dst} SELECT * FROM {src}{where}")
                con.execute("CHECKPOINT new")
            finally:
                con.execute("DETACH new")
            con.execute("DETACH old")
    finally:
        con.close()
    return removed


def sql_literal(value: str | Path) -> str:
    """A SQL string literal (single quotes doubled): for file paths in ATTACH / COPY /
    read_parquet, which DuckDB does not take as prepared parameters."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A quoted SQL identifier (double quotes doubled): table, column and alias names."""
    return '"' + str(name).replace('"', '""') + '"'


TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def check_table_name(name: str, what: str = "--table") -> str:
    """`name` when it is a plain table name (letters, digits and _, starting with a letter
    or _, at most 63 characters), else `ConfigError`."""
    if not isinstance(name, str) or not TABLE_NAME.fullmatch(name):
        raise ConfigError(f"{what} {name!r}: not a table name (letters, digits and _, starting "
                          f"with a letter or _, at most 63 characters)")
    return name


def safe_key(value: Any) -> str:
    """A key for an error message; values that look like an e-mail address are masked."""
    text = "<null>" if value is None else str(value)
    return "<redacted>" if "@" in text else text


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]{0,63}")


def _safe_names(names: Sequence[str]) -> str:
    """Column names for a message; names that do not look like identifiers (a header row
    that is really data) are counted, not shown."""
    shown = sorted(n for n in names if _IDENTIFIER.fullmatch(n))
    hidden = len(names) - len(shown)
    return str(shown) + (f" and {hidden} column name(s) not shown" if hidden else "")


def _cast_select(table: Table, relation: str, present: list[str]) -> str:
    """SELECT that casts present contract columns to their types and fills absent ones.

    Empty strings become NULL, so a CSV, a Parquet and a DuckDB source give the same table.
    """
    parts = []
    for col, typ in table.columns.items():
        if col not in present:
            parts.append(f'CAST(NULL AS {typ}) AS "{col}"')
        elif typ == "VARCHAR":
            parts.append(f'NULLIF(CAST("{col}" AS VARCHAR), \'\') AS "{col}"')
        else:
            parts.append(f'CAST("{col}" AS {typ}) AS "{col}"')
    return f"SELECT {', '.join(parts)} FROM {relation}"


_FILE_PATTERNS: dict[str, tuple[str, ...]] = {
    "parquet": ("{t}.parquet", "{t}.pq"),
    "csv": ("{t}.csv", "{t}.csv.gz"),
}


def _source_relation(kind: str, path: Path, table: str) -> tuple[str, str]:
    """(relation SQL, human-readable location) for one table of a source."""
    if kind in ("synthetic", "duckdb"):
        return f'src."{table}"', f"{path}:{table}"
    found = [path / p.format(t=table) for p in _FILE_PATTERNS[kind] if (path / p.format(t=table)).is_file()]
    if not found:
        expected = " or ".join(p.format(t=table) for p in _FILE_PATTERNS[kind])
        raise InputError(
            f"{path / _FILE_PATTERNS[kind][0].format(t=table)}: file not found (ingest.source={kind} "
            f"expects {expected} in {path}, one file per table: leads, events, outcomes)"
        )
    if len(found) > 1:
        raise InputError(f"{path}: several files for table '{table}': {[f.name for f in found]}; keep one")
    file = found[0]
    if kind == "parquet":
        return f"read_parquet({sql_literal(file)})", str(file)
    # Comma-separated with a header row, no rows skipped: without skip=0 the sniffer may
    # skip to a ragged line and take data values for column names.
    opts = "header=true, skip=0, delim=',', all_varchar=true"
    return f"read_csv({sql_literal(file)}, {opts})", str(file)


def _source_has(con: duckdb.DuckDBPyConnection, kind: str, path: Path, table: str) -> bool:
    """Whether the source holds `table` (a table or view of the DuckDB file, or a file)."""
    if kind in ("synthetic", "duckdb"):
        return bool(con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'src' "
            "AND table_name = ?", [table]).fetchone()[0])
    return any((path / p.format(t=table)).is_file() for p in _FILE_PATTERNS[kind])


@dataclass(frozen=True)
class SourceTable:
    """What `open_source` found for one table."""

    name: str
    location: str  # file, or file:table for a DuckDB source
    rows: int
    missing_columns: tuple[str, ...]  # optional contract columns absent: filled with NULL
    extra_columns: tuple[str, ...]  # columns outside the contract: ignored (never copied)


def _uncastable(
    con: duckdb.DuckDBPyConnection, table: Table, relation: str, types: dict[str, str],
    sample: int,
) -> list[str]:
    """Describe each present column holding values that do not cast to the contract type."""
    checks = {
        col: typ for col, typ in table.columns.items()
        if col in types and types[col].upper() != typ
    }
    if not checks:
        return []
    counts = con.execute(
        "SELECT " + ", ".join(
            f'count_if("{c}" IS NOT NULL AND TRY_CAST("{c}" AS {t}) IS NULL)' for c, t in checks.items()
        ) + f" FROM {relation}"
    ).fetchone()
    problems = []
    key = table.key[0]
    for (col, typ), bad in zip(checks.items(), counts, strict=True):
        if not bad:
            continue
        keys = ""
        if key in types and sample:
            rows = con.execute(
                f'SELECT "{key}" FROM {relation} WHERE "{col}" IS NOT NULL '
                f'AND TRY_CAST("{col}" AS {typ}) IS NULL LIMIT {int(sample)}'
            ).fetchall()
            keys = f" ({key}: {', '.join(safe_key(r[0]) for r in rows)})"
        problems.append(f"column '{col}' has {bad} value(s) that are not {typ}{keys}")
    return problems


def open_source(
    kind: str, path: str | Path, *, sample_keys: int = 5
) -> tuple[duckdb.DuckDBPyConnection, dict[str, SourceTable]]:
    """Open a CRM source; expose `leads`, `events`, `outcomes` (and the optional tables of
    `schema.OPTIONAL_TABLES` the source holds) as typed views on a new in-memory
    connection, and describe what was found (an absent optional table is not in it).

    `kind` is synthetic|duckdb (a DuckDB file) or parquet|csv (a folder with one file per
    table: ``leads.parquet`` / ``leads.csv`` ...). A missing file, table or required column,
    an unreadable file and values that do not cast to the contract type raise `InputError`
    naming the file, table and column (with up to `sample_keys` row keys, never values).
    Optional columns that are absent are filled with NULL; extra columns are ignored.
    """
    if kind not in ("synthetic", "duckdb", "parquet", "csv"):
        raise InputError(f"unknown source kind {kind!r} (use synthetic, duckdb, parquet or csv)")
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: input not found (ingest.source={kind})")
    if kind in ("parquet", "csv") and not path.is_dir():
        raise InputError(f"{path}: ingest.source={kind} expects a folder with leads, events, outcomes files")
    con = quiet(duckdb.connect())
    try:
        if kind in ("synthetic", "duckdb"):
            try:
                con.execute(f"ATTACH {sql_literal(path)} AS src (READ_ONLY)")
            except duckdb.Error as err:
                raise InputError(f"{path}: not a readable DuckDB database ({safe_error_text(err)})") from None
        found = {}
        for name, table in {**TABLES, **OPTIONAL_TABLES}.items():
            if name in OPTIONAL_TABLES and not _source_has(con, kind, path, name):
                continue  # an optional table (mql_feedback) the CRM does not have
            relation, where = _source_relation(kind, path, name)
            try:
                described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
                types = {r[0]: str(r[1]) for r in described}
                missing = [c for c in table.required if c not in types]
                if missing:
                    raise InputError(
                        f"{where}: missing required column(s) {missing} of table '{name}' "
                        f"(found {_safe_names(list(types))})"
                    )
                problems = _uncastable(con, table, relation, types, sample_keys)
                if problems:
                    raise InputError(f"{where}: " + "; ".join(problems) + ". Fix the values or the export.")
                rows = con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
            except duckdb.Error as err:
                raise InputError(f"{where}: cannot read table '{name}' ({safe_error_text(err)})") from None
            con.execute(f'CREATE VIEW "{name}" AS {_cast_select(table, relation, list(types))}')
            found[name] = SourceTable(
                name=name,
                location=where,
                rows=int(rows),
                missing_columns=tuple(c for c in table.columns if c not in types),
                extra_columns=tuple(c for c in types if c not in table.columns),
            )
    except BaseException:
        con.close()
        raise
    return con, found


def connect_source(kind: str, path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open a CRM source and expose `leads`, `events`, `outcomes` as typed views.

    Shorthand for `open_source` when the description of the source is not needed.
    """
    return open_source(kind, path)[0]


def export_tables(con: duckdb.DuckDBPyConnection, folder: str | Path, fmt: str = "parquet") -> None:
    """Write the `leads`, `events`, `outcomes` views of `con` to one file each in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        write_query(con, f"SELECT * FROM {name}", folder / f"{name}.{fmt}", fmt)
