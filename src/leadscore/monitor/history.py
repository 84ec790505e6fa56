"""The score history: a DuckDB file (params `monitor.history`) with four tables.

* `score_runs`: one summary row per batch scoring run, keyed by `run_id`: as_of, scored_at,
  model version and kind, leads in / quarantined / scored, the newest event in the source
  (freshness), the mean probability and its quantiles (p05..p95), the count of each grade
  A1..D4 (one column each), and `summary`: the per-feature drift counts as JSON
  (`leadscore.monitor.drift.summarize`). Counts only.
* `scored_leads`: what each run said about each lead, for realized performance once the
  outcomes are in (`leadscore.monitor.realized`): run_id, lead_id (pseudonymous: no e-mail,
  name or attribute), probability, grade, rule_points, arm. Kept `monitor.lead_rows_days`
  days after the run's as_of (then deleted); `monitor.keep_lead_scores: false` keeps none.
* `erasures`: one row per erased lead (`leadscore forget`): a salted hash of its id
  (`lead_hash`) and the time (`erased_at`); never the id itself.
* `reference`: the training reference of each model version, keyed by `model_version`: the
  bin spec and the summary of the out-of-time test slice of the training table
  (`monitor.reference_table`) scored by that model, and `expected`: that model's figures
  on the slice (ROC-AUC with its interval, observed and predicted rates, conversion per
  grade) plus the backtest's ROC-AUC range for its kind (`monitor.backtest_metrics`).
  Built once, the first time a version scores, then frozen, so every run of a version is
  compared with the same reference.

Writes are one transaction each (`INSERT ... ON CONFLICT DO NOTHING`): a run id appended
twice is one row, and a reader never sees half a row.

`Recorder` is the batch job's hook (`leadscore.serve.batch.score_leads`, argument
`history`): it summarises each chunk next to its score part (so a resumed run still counts
every lead once) and appends the run's row after the scores are published.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from leadscore.config import MonitorConfig, Params
from leadscore.errors import InputError, safe_error_text
from leadscore.io import read_json, rewrite_duckdb_without, write_json
from leadscore.monitor import drift

log = logging.getLogger(__name__)

RUN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR PRIMARY KEY"), ("as_of", "TIMESTAMP"), ("scored_at", "TIMESTAMP"),
    ("recorded_at", "TIMESTAMP"), ("model_version", "VARCHAR"), ("model_kind", "VARCHAR"),
    ("leads_in", "BIGINT"), ("leads_quarantined", "BIGINT"), ("leads_scored", "BIGINT"),
    ("newest_event_at", "TIMESTAMP"), ("mean_probability", "DOUBLE"),
    *((q, "DOUBLE") for q in ("p05", "p25", "p50", "p75", "p95")),
    *((g, "BIGINT") for g in drift.GRADES),
    ("summary", "VARCHAR"),
)
REFERENCE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model_version", "VARCHAR PRIMARY KEY"), ("created_at", "TIMESTAMP"), ("source", "VARCHAR"),
    ("rows", "BIGINT"), ("spec", "VARCHAR"), ("summary", "VARCHAR"), ("expected", "VARCHAR"),
)
LEAD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR"), ("lead_id", "VARCHAR"), ("probability", "DOUBLE"), ("grade", "VARCHAR"),
    ("rule_points", "DOUBLE"), ("arm", "VARCHAR"),
)


ERASURE_COLUMNS: tuple[tuple[str, str], ...] = (("lead_hash", "VARCHAR"), ("erased_at", "TIMESTAMP"))


TABLE_COLUMNS = {"score_runs": RUN_COLUMNS, "reference": REFERENCE_COLUMNS, "scored_leads": LEAD_COLUMNS,
                 "erasures": ERASURE_COLUMNS}


def _create(con: duckdb.DuckDBPyConnection) -> None:
    for table, cols in TABLE_COLUMNS.items():
        body = ", ".join(f'"{c}" {t}' for c, t in cols)
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body})")
    # a history written before `expected` existed
    con.execute("ALTER TABLE reference ADD COLUMN IF NOT EXISTS expected VARCHAR")


def ensure_store(path: str | Path) -> Path:
    """Create the history file and its tables if missing (so the `score` stage's declared
    output exists even when a run could not be recorded)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with duckdb.connect(str(path)) as con:
            _create(con)
    except duckdb.Error as err:
        raise InputError(f"{path}: cannot open the score history ({safe_error_text(err)})") from None
    return path


def _insert(path: Path, table: str, row: Mapping[str, Any],
            then: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> bool:
    """Insert one row in one transaction; False when its key was already there. `then` runs
    in the same transaction after a row was added (the run's lead rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = list(row)
    names = ", ".join(f'"{c}"' for c in cols)
    try:
        with duckdb.connect(str(path)) as con:
            con.execute("BEGIN TRANSACTION")
            _create(con)
            before = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            con.execute(
                f"INSERT INTO {table} ({names}) "
                f"VALUES ({', '.join('?' for _ in cols)}) ON CONFLICT DO NOTHING",
                [row[c] for c in cols])
            added = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > before
            if added and then is not None:
                then(con)
            con.execute("COMMIT")
    except duckdb.Error as err:
        raise InputError(f"{path}: cannot write the score history ({safe_error_text(err)})") from None
    return added


def read_table(path: str | Path, table: str) -> pd.DataFrame:
    """A history table (empty frame when the file or table does not exist yet)."""
    path = Path(path)
    cols = [c for c, _ in TABLE_COLUMNS[table]]
    if not path.exists():
        return pd.DataFrame(columns=cols)
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            found = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            if table not in found:
                return pd.DataFrame(columns=cols)
            order = {"score_runs": "as_of, scored_at, run_id", "reference": "created_at",
                     "scored_leads": "run_id, lead_id", "erasures": "erased_at, lead_hash"}[table]
            return con.execute(f"SELECT * FROM {table} ORDER BY {order}").df()
    except duckdb.Error as err:
        raise InputError(f"{path}: cannot read the score history ({safe_error_text(err)})") from None


def read_runs(path: str | Path) -> list[dict]:
    """Every recorded run, oldest as_of first, with `summary` parsed."""
    df = read_table(path, "score_runs")
    runs = []
    for rec in df.to_dict("records"):
        rec["summary"] = json.loads(rec["summary"])
        runs.append({k: (None if v is pd.NaT else v) for k, v in rec.items()})
    return runs


def read_reference(path: str | Path, model_version: str) -> dict | None:
    """The reference of one model version ({source, rows, spec, summary}), or None."""
    df = read_table(path, "reference")
    df = df[df["model_version"] == model_version]
    if df.empty:
        return None
    r = df.iloc[0]
    expected = r.get("expected")
    return {"model_version": model_version, "source": r["source"], "rows": int(r["rows"]),
            "created_at": r["created_at"], "spec": json.loads(r["spec"]),
            "summary": json.loads(r["summary"]),
            "expected": json.loads(expected) if isinstance(expected, str) else None}


def save_reference(path: str | Path, model_version: str, *, source: str, spec: Mapping,
                   summary: Mapping, created_at: dt.datetime, expected: Mapping | None = None) -> bool:
    return _insert(Path(path), "reference", {
        "model_version": model_version, "created_at": created_at, "source": source,
        "rows": int(summary["rows"]), "spec": json.dumps(spec, sort_keys=True),
        "summary": json.dumps(summary, sort_keys=True),
        "expected": None if expected is None else json.dumps(expected, sort_keys=True)})


def read_lead_rows(path: str | Path, run_ids: Sequence[str]) -> pd.DataFrame:
    """The `scored_leads` rows of the given runs (lead_id, probability, grade, rule_points, arm)."""
    path = Path(path)
    cols = [c for c, _ in LEAD_COLUMNS]
    if not path.exists() or not run_ids:
        return pd.DataFrame(columns=cols)
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            found = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            if "scored_leads" not in found:
                return pd.DataFrame(columns=cols)
            return con.execute(
                "SELECT * FROM scored_leads WHERE run_id IN (SELECT unnest(?)) ORDER BY run_id, lead_id",
                [list(run_ids)]).df()
    except duckdb.Error as err:
        raise InputError(f"{path}: cannot read the score history ({safe_error_text(err)})") from None


def run_row(*, run_id: str, as_of: dt.datetime, scored_at: dt.datetime, model_version: str,
            model_kind: str, leads_in: int, leads_quarantined: int, leads_scored: int,
            newest_event_at: dt.datetime | None, summary: Mapping,
            recorded_at: dt.datetime | None = None) -> dict:
    """The `score_runs` row of one run."""
    n = summary["rows"]
    return {"run_id": run_id, "as_of": as_of, "scored_at": scored_at,
            "recorded_at": recorded_at or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
            "model_version": model_version, "model_kind": model_kind, "leads_in": int(leads_in),
            "leads_quarantined": int(leads_quarantined), "leads_scored": int(leads_scored),
            "newest_event_at": newest_event_at,
            "mean_probability": summary["probability"]["sum"] / n if n else None,
            **drift.quantiles(summary), **{g: int(summary["grades"][g]) for g in drift.GRADES},
            "summary": json.dumps(summary, sort_keys=True)}


def append_run(path: str | Path, row: Mapping[str, Any], *, parts: Sequence[Path] = (),
               lead_rows_days: int | None = None) -> bool:
    """Append one run's row and its lead rows from the score `parts` (one transaction);
    False when the run id is already recorded. Lead rows of runs more than `lead_rows_days`
    days older than this one are deleted (None: kept)."""
    names = [c for c, _ in LEAD_COLUMNS if c != "run_id"]

    def add_leads(con: duckdb.DuckDBPyConnection) -> None:
        files = [str(p) for p in parts if Path(p).exists()]
        if files:
            con.execute(f"INSERT INTO scored_leads SELECT ? AS run_id, {', '.join(names)} "
                        f"FROM read_parquet(?)", [row["run_id"], files])
        if lead_rows_days is not None:
            con.execute("DELETE FROM scored_leads WHERE run_id IN (SELECT run_id FROM score_runs "
                        "WHERE as_of < ? - to_days(CAST(? AS INTEGER)))", [row["as_of"], lead_rows_days])

    added = _insert(Path(path), "score_runs", row, then=add_leads)
    if not added:
        log.info("score history: run %s already recorded in %s", row["run_id"], path)
    return added


def forget_leads(path: str | Path, lead_ids: Sequence[str], *, hashes: Sequence[str],
                 at: dt.datetime) -> int:
    """Erasure: remove the leads' `scored_leads` rows (the file is rewritten, so no bytes of
    them stay behind; `leadscore.io.rewrite_duckdb_without`) and append one `erasures` row
    per lead: its salted hash and the time, never the id. Returns the lead rows removed."""
    path = Path(path)
    ensure_store(path)
    try:
        removed = rewrite_duckdb_without(path, "lead_id", lead_ids).get("scored_leads", 0)
        with duckdb.connect(str(path)) as con:
            con.execute("BEGIN TRANSACTION")
            con.executemany("INSERT INTO erasures VALUES (?, ?)", [[h, at] for h in hashes])
            con.execute("COMMIT")
    except duckdb.Error as err:
        raise InputError(f"{path}: cannot erase from the score history ({safe_error_text(err)})") from None
    return int(removed)


# ---- the reference ------------------------------------------------------------------------

def reference_frame(params: Params) -> pd.DataFrame:
    """The reference rows: the out-of-time test slice of `monitor.reference_table`, at most
    `monitor.reference_rows` rows (sampled with `seed`)."""
    from leadscore.io import read_parquet
    from leadscore.modeling.splits import split_from_params

    test = split_from_params(read_parquet(params.monitor.reference_table), params).test
    if len(test) > params.monitor.reference_rows:
        test = test.sample(params.monitor.reference_rows, random_state=params.seed)
    return test


def build_reference(features: pd.DataFrame, scored: pd.DataFrame, *, categorical: Sequence[str],
                    cfg: MonitorConfig) -> tuple[dict, dict]:
    """(bin spec, summary) of the reference rows `features`, scored as `scored`."""
    spec = drift.bin_spec(features, scored["probability"], categorical=categorical,
                          bins=cfg.bins, top_levels=cfg.top_levels)
    return spec, drift.summarize(features, scored, spec)


def expected_figures(rows: pd.DataFrame, scored: pd.DataFrame, *, kind: str,
                     backtest: Callable[[], Mapping | None] | None = None, n_boot: int = 200) -> dict:
    """What realized performance is held against: the model's figures on the reference rows
    (labelled, out of time) and the backtest's ROC-AUC range for its kind."""
    from leadscore.monitor.realized import performance

    doc = performance(rows["label"].to_numpy(), scored["probability"].to_numpy(),
                      scored["grade"].to_numpy(), groups=rows["lead_id"].to_numpy(), n_boot=n_boot)
    doc["backtest"] = None
    bt = backtest() if backtest is not None else None
    aucs = [f["models"][kind]["roc_auc"] for f in (bt or {}).get("folds", [])
            if kind in f.get("models", {})]
    if aucs:
        doc["backtest"] = {"kind": kind, "folds": len(aucs), "roc_auc_min": min(aucs),
                           "roc_auc_max": max(aucs)}
    return doc


# ---- the batch job's hook -------------------------------------------------------------------

Predict = Callable[[pd.DataFrame], pd.DataFrame]  # features -> frame with probability, grade


@dataclass(frozen=True)
class History:
    """Where and how the batch job records its runs (`score_leads(history=...)`)."""

    path: Path
    cfg: MonitorConfig
    reference: Callable[[], pd.DataFrame] | None = None  # loads the reference rows
    reference_source: str = ""
    backtest: Callable[[], Mapping | None] | None = None  # loads metrics/backtest.json

    @classmethod
    def from_params(cls, params: Params) -> History:
        """The history of params `monitor`."""
        cfg = params.monitor
        return cls(Path(cfg.history), cfg, lambda: reference_frame(params),
                   f"{cfg.reference_table}: out-of-time test slice",
                   lambda: read_json(cfg.backtest_metrics) if Path(cfg.backtest_metrics).exists() else None)

    def start(self, *, model_version: str, model_kind: str, names: Sequence[str],
              categorical: Sequence[str], predict: Predict) -> Recorder | None:
        """The recorder of one run; builds the model version's reference when it has none.
        None (a warning, no history) when there is no reference and no table to build it, or
        with `monitor.record: false`. The store is created either way (the `score` stage
        declares it as an output)."""
        ensure_store(self.path)
        if not self.cfg.record:
            return None
        ref = read_reference(self.path, model_version)
        if ref is None:
            if self.reference is None:
                log.warning("score history: no reference for model %s; run not recorded", model_version)
                return None
            try:  # monitoring never fails a scoring run: no reference, no history row
                rows = self.reference()
                feats = rows[list(names)]
                scored = predict(feats)
                spec, summary = build_reference(feats, scored, categorical=categorical, cfg=self.cfg)
                expected = expected_figures(rows, scored, kind=model_kind, backtest=self.backtest,
                                            n_boot=self.cfg.n_bootstrap)
            except Exception as err:  # noqa: BLE001 (a missing or mismatched table, a split error)
                log.warning("score history: cannot build the training reference of model %s from %s "
                            "(%s: %s); run not recorded", model_version, self.reference_source,
                            type(err).__name__, safe_error_text(err))
                return None
            save_reference(self.path, model_version, source=self.reference_source, spec=spec,
                           summary=summary, expected=expected,
                           created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0))
            ref = read_reference(self.path, model_version)
            log.info("score history: training reference of model %s from %s rows", model_version,
                     f"{summary['rows']:,}")
        elif ref.get("expected") is None and self.reference is not None:
            self._backfill_expected(model_version, model_kind, names, predict)
        return Recorder(self.path, ref["spec"], model_version, model_kind, list(names),
                        self.cfg.lead_rows_days if self.cfg.keep_lead_scores else None,
                        self.cfg.keep_lead_scores)


    def _backfill_expected(self, model_version: str, model_kind: str, names: Sequence[str],
                           predict: Predict) -> None:
        """Add the expectation to a reference written before it existed (older histories)."""
        try:
            rows = self.reference()
            expected = expected_figures(rows, predict(rows[list(names)]), kind=model_kind,
                                        backtest=self.backtest, n_boot=self.cfg.n_bootstrap)
            with duckdb.connect(str(self.path)) as con:
                con.execute("UPDATE reference SET expected = ? WHERE model_version = ? AND expected IS NULL",
                            [json.dumps(expected, sort_keys=True), model_version])
        except Exception as err:  # noqa: BLE001 (monitoring never fails a scoring run)
            log.warning("score history: cannot add the expectation of model %s (%s: %s)", model_version,
                        type(err).__name__, safe_error_text(err))


@dataclass(frozen=True)
class Recorder:
    path: Path
    spec: dict
    model_version: str
    model_kind: str
    names: list[str]
    lead_rows_days: int | None = None
    keep_lead_scores: bool = True

    @staticmethod
    def chunk_file(part: Path) -> Path:
        return part.with_name(part.name.replace("part-", "summary-").replace(".parquet", ".json"))

    def has_chunk(self, part: Path) -> bool:
        return self.chunk_file(part).exists()

    def write_chunk(self, part: Path, features: pd.DataFrame | None, scored: pd.DataFrame | None) -> None:
        """Summarise one chunk next to its part (written before the part)."""
        summary = (drift.empty_summary(self.spec) if features is None or not len(features)
                   else drift.summarize(features[self.names], scored, self.spec))
        write_json(summary, self.chunk_file(part))

    def append(self, parts: Sequence[Path], **row: Any) -> bool:
        """Merge the chunk summaries and append the run's row."""
        total = drift.empty_summary(self.spec)
        for part in parts:
            total = drift.merge(total, read_json(self.chunk_file(part)))
        return append_run(self.path, run_row(model_version=self.model_version,
                                             model_kind=self.model_kind, summary=total, **row),
                          parts=parts if self.keep_lead_scores else (),
                          lead_rows_days=self.lead_rows_days)
