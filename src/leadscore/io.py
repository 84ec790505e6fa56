"""Every read and write of CRM tables and artifacts. Atomic publish lives here.

A writer never leaves a half-written file: it writes a temporary sibling and renames it
over the target (`os.replace` is atomic on one filesystem), so a reader sees the old file
or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from leadscore.schema import TABLES, Table


class InputError(ValueError):
    """An input file or table is missing, unreadable or does not match the contract."""


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `target`; publish it over `target` on success.

    On any exception the temporary file (or folder) is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        wal = tmp.with_name(tmp.name + ".wal")
        if wal.exists():
            wal.unlink()


def write_json(obj: Any, path: str | Path) -> None:
    """Write JSON atomically, with sorted keys so reruns give identical bytes."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def write_parquet(df: pd.DataFrame, path: str | Path) -> None:
    """Write a frame to Parquet atomically (no index)."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_duckdb_tables(
    path: str | Path, frames: dict[str, pd.DataFrame] | None = None, *, sql: dict[str, str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> None:
    """Write tables into a new DuckDB file, published atomically over `path`.

    `frames` maps table name to a DataFrame; `sql` maps table name to a query run on `con`
    (e.g. over attached sources), so large tables never pass through pandas.
    """
    with atomic_path(path) as tmp:
        out = con if con is not None else duckdb.connect()
        alias = f"out_{uuid.uuid4().hex[:8]}"
        out.execute(f"ATTACH '{tmp}' AS {alias}")
        try:
            for name, df in (frames or {}).items():
                out.register("_frame", df)
                out.execute(f"CREATE TABLE {alias}.{name} AS SELECT * FROM _frame")
                out.unregister("_frame")
            for name, query in (sql or {}).items():
                out.execute(f"CREATE TABLE {alias}.{name} AS {query}")
        finally:
            out.execute(f"DETACH {alias}")
            if con is None:
                out.close()


def _cast_select(table: Table, relation: str, present: list[str], where: str) -> str:
    """SELECT that casts present contract columns to their types and fills absent ones."""
    parts = []
    for col, typ in table.columns.items():
        if col in present:
            parts.append(f'CAST("{col}" AS {typ}) AS "{col}"')
        else:
            parts.append(f'CAST(NULL AS {typ}) AS "{col}"')
    return f"SELECT {', '.join(parts)} FROM {relation}"


def _source_relation(kind: str, path: Path, table: str) -> tuple[str, str]:
    """(relation SQL, human-readable location) for one table of a source."""
    if kind in ("synthetic", "duckdb"):
        return f"src.{table}", f"{path}:{table}"
    ext = "parquet" if kind == "parquet" else "csv"
    file = path / f"{table}.{ext}"
    if not file.exists():
        raise InputError(f"{file}: file not found (expected one {ext} file per table: leads, events, outcomes)")
    if kind == "parquet":
        return f"read_parquet('{file}')", str(file)
    return f"read_csv('{file}', header=true, all_varchar=true)", str(file)


def connect_source(kind: str, path: str | Path, *, required_optional: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a CRM source and expose `leads`, `events`, `outcomes` as typed views.

    `kind` is one of synthetic|duckdb (a DuckDB file), parquet or csv (a folder with one
    file per table). Missing required columns or uncastable values raise `InputError` naming
    the file and column.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: input not found (ingest.source={kind})")
    con = duckdb.connect()
    if kind in ("synthetic", "duckdb"):
        try:
            con.execute(f"ATTACH '{path}' AS src (READ_ONLY)")
        except duckdb.Error as err:
            con.close()
            raise InputError(f"{path}: not a readable DuckDB database ({type(err).__name__})") from None
    for name, table in TABLES.items():
        relation, where = _source_relation(kind, path, name)
        try:
            cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        except duckdb.Error as err:
            con.close()
            raise InputError(f"{where}: cannot read table '{name}' ({str(err).splitlines()[0][:200]})") from None
        missing = [c for c in table.required if c not in cols]
        if missing:
            con.close()
            raise InputError(f"{where}: missing required column(s) {missing}")
        con.execute(f"CREATE VIEW {name} AS {_cast_select(table, relation, cols, where)}")
        for col, typ in table.columns.items():
            if col not in cols:
                continue
            bad = con.execute(
                f'SELECT count(*) FROM {relation} WHERE "{col}" IS NOT NULL '
                f'AND TRY_CAST("{col}" AS {typ}) IS NULL'
            ).fetchone()[0]
            if bad:
                con.close()
                raise InputError(f"{where}: column '{col}' has {bad} value(s) that are not {typ}")
    return con


def export_tables(con: duckdb.DuckDBPyConnection, folder: str | Path, fmt: str = "parquet") -> None:
    """Write the `leads`, `events`, `outcomes` views of `con` to one file each in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        target = folder / f"{name}.{fmt}"
        with atomic_path(target) as tmp:
            opts = "(FORMAT parquet)" if fmt == "parquet" else "(FORMAT csv, HEADER true)"
            con.execute(f"COPY (SELECT * FROM {name}) TO '{tmp}' {opts}")
