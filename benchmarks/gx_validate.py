"""Speed of the validate stage's Great Expectations run, and of its future-timestamp check.

    .venv/bin/python benchmarks/gx_validate.py --events 1000000

Generates a synthetic CRM of about `--events` events into a temporary folder (deleted
afterwards), ingests it, sets 0.1% of event timestamps in the future, then times the
following; each figure is the minimum wall and CPU seconds of `--repeat` interleaved runs:

- `validate`: `validate_tables` as the stage runs it (one checkpoint run per table,
  GX's batch fingerprint on: no patch);
- `validate_no_fingerprint`: the same with GX's fingerprint switched off (what the
  former `mock.patch` of `HASH_THRESHOLD` bought; set here for the measurement only);
- `fingerprint`: GX's batch fingerprint (`hash_pandas_dataframe`) of the events
  batch alone;
- `future_check_rows` / `future_check_max`: the future-timestamp check alone on the
  events batch, as the row-level expectation (unexpected rows for the quarantine) and as
  the aggregate `ExpectColumnMaxToBeBetween` (no rows: it could not quarantine).

The last line is one JSON object.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import typer

from leadscore.config import GenerateConfig, IngestConfig, ValidateConfig
from leadscore.data.ingest import ingest
from leadscore.data.synthetic import generate_crm
from leadscore.data.validate import _with_lead_columns, load_tables, validate_tables

app = typer.Typer(add_completion=False)
NOW = dt.datetime(2030, 1, 1)


def _time(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of one call (CPU time is the steadier figure on a busy host)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _best(*fns: Callable[[], object], repeat: int) -> list[dict[str, float]]:
    """For each function, the minimum wall and CPU seconds of `repeat` calls; the calls are
    interleaved (a, b, a, b, ...) after one warm-up each, so load drifts hit all alike."""
    for fn in fns:
        fn()
    runs: list[list[tuple[float, float]]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            runs[i].append(_time(fn))
    return [{"wall": round(min(w for w, _ in r), 2), "cpu": round(min(c for _, c in r), 2)}
            for r in runs]


@app.command()
def main(
    events: int = typer.Option(1_000_000, "--events", help="Approximate number of events."),
    repeat: int = typer.Option(3, "--repeat", help="Timed runs per figure (median)."),
    seed: int = typer.Option(42, "--seed"),
) -> None:
    """Time the GX validation of a CRM with about `events` events."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.execution_engine import pandas_execution_engine as engine

    with tempfile.TemporaryDirectory() as tmp:
        raw, interim = Path(tmp) / "raw.duckdb", Path(tmp) / "crm.duckdb"
        generate_crm(GenerateConfig(n_leads=max(events // 40, 100), events_per_lead=40.0), seed, raw)
        ingest("duckdb", raw, interim, IngestConfig().free_mail_domains)
        tables = load_tables(interim)
    ev = tables["events"]
    ev.loc[ev.index[::1000], "occurred_at"] = NOW + dt.timedelta(days=30)  # 0.1% future rows
    cfg = ValidateConfig(quarantine_budget=1.0)

    def run(fingerprint: bool) -> None:
        saved = engine.HASH_THRESHOLD
        engine.HASH_THRESHOLD = saved if fingerprint else 0  # measurement only
        try:
            validate_tables(tables, now=NOW, cfg=cfg)
        finally:
            engine.HASH_THRESHOLD = saved

    validate_s, no_fingerprint_s = _best(lambda: run(True), lambda: run(False), repeat=repeat)
    checked = _with_lead_columns("events", ev, tables["leads"], tables["leads"])
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    batch = (context.data_sources.add_pandas("bench").add_dataframe_asset("events")
             .add_batch_definition_whole_dataframe("whole").get_batch({"dataframe": checked}))
    rows = gxe.ExpectColumnValuesToBeBetween(column="occurred_at", max_value=NOW)
    agg = gxe.ExpectColumnMaxToBeBetween(column="occurred_at", max_value=NOW)
    fmt = {"result_format": "COMPLETE", "partial_unexpected_count": 20,
           "return_unexpected_index_query": False}
    fingerprint_s, future_rows_s, future_max_s = _best(
        lambda: engine.hash_pandas_dataframe(checked),
        lambda: batch.validate(rows, result_format=fmt),
        lambda: batch.validate(agg, result_format="BOOLEAN_ONLY"), repeat=repeat)

    result = {
        "benchmark": "gx_validate",
        "leads": len(tables["leads"]),
        "events": len(ev),
        "future_events": int((ev["occurred_at"] > NOW).sum()),
        "repeat": repeat,
        "validate": validate_s,
        "validate_no_fingerprint": no_fingerprint_s,
        "fingerprint": fingerprint_s,
        "future_check_rows": future_rows_s,
        "future_check_max": future_max_s,
    }
    print(f"{result['leads']:,} leads, {result['events']:,} events "
          f"({result['future_events']:,} in the future); seconds, best of {repeat}, wall / CPU")
    print(f"validate_tables, GX fingerprint on (as shipped): {validate_s['wall']} / {validate_s['cpu']}")
    print(f"validate_tables, fingerprint off (the old patch): "
          f"{no_fingerprint_s['wall']} / {no_fingerprint_s['cpu']}")
    print(f"events batch fingerprint alone: {fingerprint_s['wall']} / {fingerprint_s['cpu']}")
    print(f"future-timestamp check alone: {future_rows_s['wall']} / {future_rows_s['cpu']} (rows), "
          f"{future_max_s['wall']} / {future_max_s['cpu']} (max only)")
    print(json.dumps(result))


if __name__ == "__main__":
    app()
