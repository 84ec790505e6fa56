"""Erasure: forget leads everywhere leadscore wrote them (`leadscore forget`).

`forget` removes the given lead ids from

1. **published scores and their quarantine** (`leadscore.serve.batch` outputs). Parquet / CSV:
   a new pair of files without the leads is published by the batch job's own rule (a new
   pair, then the manifest, then the fixed-path links; `publish.publish_files`), so a reader
   sees the old pair or the new one. DuckDB: the file is rewritten without the leads' rows
   and swapped in whole (`leadscore.io.rewrite_duckdb_without`), so no bytes of them stay
   in free blocks;
2. **the staging of scoring runs** (`.<out>.runs/<run_id>/`): every run's `parts/` (score
   rows and chunk summaries) is deleted, and a run manifest whose chunk bounds name a
   forgotten lead is deleted too (a crashed run being resumed then starts over);
3. **the score history** (`monitor.history`): its `scored_leads` rows (the file is
   rewritten; `leadscore.monitor.history.forget_leads`);
4. **cached features**: every Parquet file in the feature folders (default
   `data/processed/`: the training table `train.parquet`, which the monitoring reference is
   built from) with a `lead_id` column holding one of the leads is rewritten without its rows.

It records each erasure in the history's `erasures` table: an HMAC-SHA256 of the lead id
(`lead_hash`, keyed by `erasure_key`: `$LEADSCORE_ERASURE_KEY`, else a random key in
`~/.config/leadscore/erasure_key`) and the time, never the id. Not covered: the source
CRM and its ingested copies (`data/interim/`, rebuilt from the source: erase there), the
report's example leads (`reports/examples.json`, `reports/report.html`: rebuilt by the
explain and report stages), DVC's cache and MLflow artifacts of earlier runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from leadscore.errors import ConfigError, InputError, safe_error_text
from leadscore.io import (
    atomic_path,
    read_json,
    rewrite_duckdb_without,
    sql_literal,
    write_query,
)
from leadscore.serve.publish import (
    output_format,
    publish_files,
    published_file,
    published_manifest_path,
    quarantine_path,
)

log = logging.getLogger(__name__)

KEY_ENV = "LEADSCORE_ERASURE_KEY"


@dataclass
class ForgetResult:
    """What an erasure removed (counts and paths only, no ids)."""

    leads: int
    removed: dict[str, int] = field(default_factory=dict)  # file (or file:table) -> rows removed
    staged_runs_cleared: int = 0

    def to_dict(self) -> dict:
        return {"leads": self.leads, "removed": dict(sorted(self.removed.items())),
                "staged_runs_cleared": self.staged_runs_cleared}


def read_lead_ids(ids: Iterable[str] = (), from_file: str | Path | None = None) -> list[str]:
    """The ids given, plus one per line of `from_file` (blank lines and surrounding spaces
    ignored), deduplicated in order. `ConfigError` when there are none; `InputError` when
    the file cannot be read."""
    out = [str(i).strip() for i in ids]
    if from_file is not None:
        try:
            out += [line.strip() for line in Path(from_file).read_text().splitlines()]
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"--from-file {from_file}: cannot read it ({safe_error_text(err)})") from None
    out = list(dict.fromkeys(i for i in out if i))
    if not out:
        raise ConfigError("no lead id to forget: pass --lead-id ID (repeatable) or --from-file FILE")
    return out


def default_key_file() -> Path:
    """`$XDG_CONFIG_HOME/leadscore/erasure_key` (default ~/.config): outside the project, so
    the key is never committed or cached by DVC."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "leadscore" / "erasure_key"


def erasure_key(key_file: Path) -> bytes:
    """The HMAC key of the erasure log: `$LEADSCORE_ERASURE_KEY`, else a random key kept
    in `key_file` (created on first use, readable by its owner only). Lead ids are short
    and sequential, so a plain or publicly salted hash could be reversed by trying them
    all; without the key a `lead_hash` cannot be tested against guessed ids."""
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode()
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(key_file) as tmp:
            tmp.write_text(secrets.token_hex(32) + "\n")
            tmp.chmod(0o600)
    return key_file.read_text().strip().encode()


def lead_hash(lead_id: str, key: bytes) -> str:
    """HMAC-SHA256 of the lead id under `key` (hex): what the erasure log keeps."""
    return hmac.new(key, lead_id.encode(), hashlib.sha256).hexdigest()


def _drop_where(ids: Sequence[str]) -> str:
    return "lead_id IS NULL OR lead_id NOT IN (" + ", ".join(sql_literal(i) for i in ids) + ")"


def forget_scores(out: Path, ids: Sequence[str], *, fmt: str | None = None) -> dict[str, int]:
    """Remove the leads from one published score output and its quarantine (atomically, by
    the reader rule), and clear its staged runs. Returns {where: rows removed}."""
    fmt = output_format(out, fmt)
    removed: dict[str, int] = {}
    if fmt == "duckdb":
        if out.exists():
            for table, n in rewrite_duckdb_without(out, "lead_id", ids).items():
                removed[f"{out}:{table}"] = n
        return removed
    files = {k: published_file(out, k, verify=False) for k in ("scores", "quarantine")}
    if not files["scores"].exists():
        return removed
    manifest = published_manifest_path(out)
    run = read_json(manifest) if manifest.exists() else {}
    con = duckdb.connect()
    try:
        rel = {}
        for key, f in files.items():
            if not f.exists():
                continue
            rel[key] = (f"read_parquet({sql_literal(f)})" if fmt == "parquet"
                        else f"read_csv({sql_literal(f)}, header=true, all_varchar=true)")
            removed[str(quarantine_path(out, fmt) if key == "quarantine" else out)] = int(con.execute(
                f"SELECT count(*) FROM {rel[key]} WHERE NOT ({_drop_where(ids)})").fetchall()[0][0])
        if not any(removed.values()) and manifest.exists():
            return removed
        order = {"scores": "lead_id", "quarantine": "lead_id, table_name, column_name"}
        queries = {k: f"SELECT * FROM {r} WHERE {_drop_where(ids)} ORDER BY {order[k]}" for k, r in rel.items()}
        if "quarantine" not in queries:  # an output without a quarantine file gets an empty one
            queries["quarantine"] = queries["scores"].replace("WHERE", "WHERE false AND", 1)
        publish_files(con, queries, out, fmt, run, raw_csv=True)
    finally:
        con.close()
    return removed


def clear_staged_runs(out: Path, ids: Sequence[str]) -> int:
    """Delete every staged run's parts (they hold score rows) and the manifests whose chunk
    bounds name a forgotten lead. Returns the number of runs touched."""
    runs = out.parent / f".{out.name}.runs"
    if not runs.is_dir():
        return 0
    wanted, touched = set(ids), 0
    for run in sorted(p for p in runs.iterdir() if p.is_dir()):
        parts = run / "parts"
        manifest = run / "manifest.json"
        names_lead = False
        if manifest.exists():
            try:
                names_lead = bool(wanted & set(read_json(manifest).get("bounds") or []))
            except InputError:
                names_lead = True  # unreadable: cannot prove it is clean
        if parts.exists() or names_lead:
            touched += 1
        shutil.rmtree(parts, ignore_errors=True)
        if names_lead:
            shutil.rmtree(run, ignore_errors=True)
    return touched


def forget_features(folders: Sequence[Path], ids: Sequence[str]) -> dict[str, int]:
    """Rewrite each Parquet file of `folders` that has a `lead_id` column holding one of the
    leads, without their rows (atomically). Returns {file: rows removed}."""
    removed: dict[str, int] = {}
    con = duckdb.connect()
    try:
        for folder in folders:
            for f in sorted(Path(folder).glob("*.parquet")) if Path(folder).is_dir() else []:
                rel = f"read_parquet({sql_literal(f)})"
                try:
                    cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
                    if "lead_id" not in cols:
                        continue
                    n = con.execute(f"SELECT count(*) FROM {rel} WHERE NOT ({_drop_where(ids)})").fetchall()[0][0]
                except duckdb.Error as err:
                    raise InputError(f"{f}: cannot read it ({safe_error_text(err)})") from None
                if n:
                    write_query(con, f"SELECT * FROM {rel} WHERE {_drop_where(ids)}", f, "parquet")
                    removed[str(f)] = int(n)
    finally:
        con.close()
    return removed


def forget(lead_ids: Sequence[str], *, outputs: Sequence[Path] = (), history: Path | None = None,
           feature_folders: Sequence[Path] = (), key_file: Path | None = None,
           now: dt.datetime | None = None) -> ForgetResult:
    """Forget `lead_ids` in the score `outputs` (and their quarantine and staged runs), the
    score `history` and the Parquet feature caches in `feature_folders`, then record the
    erasure (salted hash and time) in the history's `erasures` table. See the module
    docstring for what is and is not covered."""
    from leadscore.monitor.history import forget_leads

    ids = list(dict.fromkeys(str(i) for i in lead_ids))
    if not ids:
        raise ConfigError("no lead id to forget")
    result = ForgetResult(leads=len(ids))
    for out in outputs:
        out = Path(out)
        result.removed.update(forget_scores(out, ids))
        result.staged_runs_cleared += clear_staged_runs(out, ids)
    result.removed.update(forget_features(feature_folders, ids))
    if history is not None:
        key = erasure_key(key_file or default_key_file())
        at = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None, microsecond=0)
        result.removed[f"{history}:scored_leads"] = forget_leads(
            history, ids, hashes=[lead_hash(i, key) for i in ids], at=at)
    log.info("forgot %d lead(s): %s", len(ids), json.dumps(result.to_dict()["removed"]))
    return result
