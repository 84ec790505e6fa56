"""Benchmark: the batch scorer on DuckDB and on local Spark over the same synthetic lead base.

    .venv/bin/python benchmarks/spark.py --leads 1000000

1. Child processes (not timed) generate the CRM (about 40 events per lead; the raw tables
   WITH personal columns, as production reads them) and export `leads`, `events` and
   `outcomes` to a folder of Parquet files (`<dir>/leads.parquet`, ...), the one input of
   both engines; and train a small additive model exported as the MLflow scorer
   (`benchmarks/score.py`'s `_train`).
2. Timed: `leadscore.serve.batch.score_leads(source_kind="parquet")` on DuckDB
   (`--threads`, `--memory-limit`, `--chunk-size`: the score.* defaults) end to end.
3. Timed: `leadscore.spark.job.score_spark(source_kind="parquet")` on
   `local_session(cores=--cores, memory=--memory)`. The session start is timed apart from
   the job; the job runs `--spark-runs` times (default 2: the first pays the JVM's JIT and
   the Python workers' start and model load; the cache is cleared between runs, though the job
   releases what it cached); the last run is the one compared.
   Both engines score as of the same `as_of` (the day after the data cutoff, as their
   default) with the same control share.
4. Both outputs must hold the same lead ids and grades; the largest |probability difference|
   is printed.
5. On paper: the cluster for 50M leads / 2B events from Spark's measured throughput per
   core (linear scaling, times a safety factor for the shuffles over a real network).

`--workdir DIR --prepare-only` prepares the data and model in DIR (kept); a later run with
`--workdir DIR` and the same sizes reuses them.

The last printed line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import math
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from leadscore.config import FeaturesConfig, GenerateConfig, IngestConfig, ScoreConfig  # noqa: E402
from leadscore.features.build import data_cutoff_sql  # noqa: E402
from leadscore.serve.batch import score_leads  # noqa: E402
from score import _train  # noqa: E402

log = logging.getLogger("benchmarks.spark")
CFG = FeaturesConfig()
DOMAINS = IngestConfig().free_mail_domains
TABLES = ("leads", "events", "outcomes")

# the paper estimate
TARGET_LEADS, TARGET_EVENTS = 50_000_000, 2_000_000_000
SAFETY = 2.0  # for the shuffles over a real network, skew, stragglers, executor start
CORES_PER_EXECUTOR = 4
CLUSTER_EXECUTORS = 16


def _prepare(folder: str, leads: int, seed: int) -> None:
    """The raw CRM (with personal columns), exported to `<folder>/parquet/<table>.parquet`."""
    from leadscore.data.synthetic import generate_crm

    raw, out = Path(folder) / "raw.duckdb", Path(folder) / "parquet"
    generate_crm(GenerateConfig(n_leads=leads), seed, raw)
    out.mkdir()
    with duckdb.connect(str(raw), read_only=True) as con:
        for t in TABLES:
            con.execute(f"COPY (SELECT * FROM {t}) TO '{out / (t + '.parquet')}' (FORMAT parquet)")
    raw.unlink()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _descendants(pid: int) -> list[int]:
    """All descendant process ids of `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _hwm_mb(pid: int) -> tuple[str, float]:
    """(command name, peak RSS in MB) of a live process, from /proc/<pid>/status."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        return fields["Name"].strip(), int(fields.get("VmHWM", "0 kB").split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return "?", 0.0


def _spark_memory(spark) -> dict[str, float]:
    """Peak RSS of the JVM (driver = executor in local mode) and the sum of the Python
    workers' peaks (an upper bound of their joint peak), read while the session is up."""
    proc = getattr(spark.sparkContext._gateway, "proc", None)  # the spark-submit launcher, exec'd into java
    if proc is None:
        return {}
    jvm, workers = 0.0, 0.0
    for pid in [proc.pid, *_descendants(proc.pid)]:
        name, mb = _hwm_mb(pid)
        if name == "java":
            jvm = max(jvm, mb)
        elif name.startswith("python"):
            workers += mb
    return {"jvm_peak_rss_mb": round(jvm), "python_workers_peak_rss_mb_sum": round(workers)}


def _compare(duck: Path, spark_dir: Path) -> dict:
    """Same lead ids and grades; the largest |probability difference|."""
    cols = ["lead_id", "grade", "probability"]
    a = pq.read_table(duck, columns=cols)
    b = pq.read_table(spark_dir / "scores", columns=cols)
    a = a.take(pc.sort_indices(a, [("lead_id", "ascending")]))
    b = b.take(pc.sort_indices(b, [("lead_id", "ascending")]))
    same_ids = a.num_rows == b.num_rows and a["lead_id"].equals(b["lead_id"])
    if not same_ids:
        ids_a, ids_b = set(a["lead_id"].to_pylist()), set(b["lead_id"].to_pylist())
        raise SystemExit(f"lead ids differ: {a.num_rows} DuckDB rows, {b.num_rows} Spark rows, "
                         f"{len(ids_a - ids_b)} only in DuckDB, {len(ids_b - ids_a)} only in Spark")
    grades_differ = int(pc.sum(pc.not_equal(a["grade"], b["grade"])).as_py() or 0)
    diff = float(np.max(np.abs(a["probability"].to_numpy() - b["probability"].to_numpy()), initial=0.0))
    return {"rows": a.num_rows, "same_lead_ids": same_ids, "grades_differ": grades_differ,
            "max_abs_probability_diff": diff}


def _estimate(leads_per_core_s: float, events_per_core_s: float) -> dict:
    """Core-seconds, cluster size and time for TARGET_LEADS / TARGET_EVENTS, assuming linear
    scaling of the measured local throughput per core, times SAFETY."""
    core_s = SAFETY * max(TARGET_LEADS / leads_per_core_s, TARGET_EVENTS / events_per_core_s)

    def executors(seconds: float) -> int:
        return math.ceil(core_s / seconds / CORES_PER_EXECUTOR)

    cores = CLUSTER_EXECUTORS * CORES_PER_EXECUTOR
    return {"target_leads": TARGET_LEADS, "target_events": TARGET_EVENTS, "safety_factor": SAFETY,
            "core_seconds": round(core_s), "core_hours": round(core_s / 3600, 2),
            "cores_per_executor": CORES_PER_EXECUTOR,
            "executors_for_1h": executors(3600), "executors_for_15min": executors(900),
            f"minutes_on_{CLUSTER_EXECUTORS}x{CORES_PER_EXECUTOR}": round(core_s / cores / 60, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--train-leads", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--chunk-size", type=int, default=ScoreConfig().chunk_size, help="DuckDB leads per chunk")
    ap.add_argument("--threads", type=int, default=ScoreConfig().threads, help="DuckDB threads")
    ap.add_argument("--memory-limit", default=ScoreConfig().memory_limit, help="DuckDB memory_limit")
    ap.add_argument("--cores", type=int, default=2, help="Spark local[N]")
    ap.add_argument("--memory", default="6g", help="Spark driver memory (the executor in local mode)")
    ap.add_argument("--spark-runs", type=int, default=2, help="Spark job runs (the last is compared)")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="keep the data and model here and reuse them when prepared with the same "
                         "--leads/--seed/--train-leads (default: a temporary folder)")
    ap.add_argument("--prepare-only", action="store_true", help="prepare --workdir and stop")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    control = {"control_share": ScoreConfig().control_share, "control_salt": ScoreConfig().control_salt}

    with (contextlib.nullcontext(str(args.workdir)) if args.workdir else tempfile.TemporaryDirectory()) as tmp:
        folder = Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        src = folder / "parquet"
        t0 = time.perf_counter()
        marker = folder / "prepared.json"
        wanted = {"leads": args.leads, "seed": args.seed, "train_leads": args.train_leads}
        if marker.exists():
            if json.loads(marker.read_text()) != wanted:
                raise SystemExit(f"{folder} was prepared with {marker.read_text()}, not {wanted}: use another --workdir")
            log.info("reusing the data and model prepared in %s", folder)
        else:
            ctx = mp.get_context("spawn")
            procs = [ctx.Process(target=_prepare, args=(str(folder), args.leads, args.seed)),
                     ctx.Process(target=_train, args=(folder, args.train_leads, args.seed))]
            for proc in procs:
                proc.start()
            for proc in procs:
                proc.join()
                if proc.exitcode != 0:
                    raise SystemExit(f"data or model preparation failed (exit {proc.exitcode})")
            marker.write_text(json.dumps(wanted))
        if args.prepare_only:
            log.info("prepared in %s in %.0f s", folder, time.perf_counter() - t0)
            return
        for old in [folder / "duck", *folder.glob("spark_scores*"), *folder.glob(".spark_scores*")]:
            shutil.rmtree(old, ignore_errors=True)  # the outputs of an earlier run in --workdir
        scorer_dir = folder / "models" / "scorer"
        with duckdb.connect() as con:
            for t in TABLES:
                con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{src / (t + '.parquet')}')")
            n_leads, n_events = con.execute(
                "SELECT (SELECT count(*) FROM leads), (SELECT count(*) FROM events)").fetchone()
            cutoff = con.execute(data_cutoff_sql()).fetchone()[0]
        as_of = dt.datetime.combine(cutoff.date() + dt.timedelta(days=1), dt.time())  # as both engines' default
        size_mb = sum(p.stat().st_size for p in src.rglob("*.parquet")) / 2**20
        log.info("prepared %s leads, %s events (%.0f MB of Parquet), as_of %s, and the model in %.0f s "
                 "(not timed)", f"{n_leads:,}", f"{n_events:,}", size_mb, as_of.date(), time.perf_counter() - t0)

        # ---- DuckDB
        duck_out = folder / "duck" / "scores.parquet"
        t0 = time.perf_counter()
        result = score_leads(source_kind="parquet", source=src, out=duck_out, model_uri=str(scorer_dir),
                             as_of=as_of, features=CFG, free_mail_domains=DOMAINS, chunk_size=args.chunk_size,
                             threads=args.threads, memory_limit=args.memory_limit, progress=False, **control)
        duck_s = time.perf_counter() - t0
        duck_peak = _peak_rss_mb()
        duck = {"seconds": round(duck_s, 2), "scored": result.leads_scored,
                "leads_per_s": round(n_leads / duck_s), "scored_per_s": round(result.leads_scored / duck_s),
                "scored_per_s_per_core": round(result.leads_scored / duck_s / args.threads),
                "threads": args.threads, "memory_limit": args.memory_limit, "peak_rss_mb": round(duck_peak)}
        log.info("DuckDB: %s eligible leads scored in %.1f s: %s leads/s (%s scored leads/s, %s per thread "
                 "x %d), peak RSS %.0f MB", f"{result.leads_scored:,}", duck_s, f"{duck['leads_per_s']:,}",
                 f"{duck['scored_per_s']:,}", f"{duck['scored_per_s_per_core']:,}", args.threads, duck_peak)

        # ---- Spark
        from leadscore.spark.job import score_spark
        from leadscore.spark.session import local_session

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        t0 = time.perf_counter()
        spark = local_session(cores=args.cores, memory=args.memory)
        session_s = time.perf_counter() - t0
        log.info("Spark session local[%d], %s: started in %.1f s", args.cores, args.memory, session_s)
        runs = []
        try:
            for i in range(args.spark_runs):
                out = folder / ("spark_scores" if i == args.spark_runs - 1 else f"spark_scores_run{i + 1}")
                spark.catalog.clearCache()  # score_spark caches frames and never unpersists them
                t0 = time.perf_counter()
                summary = score_spark(spark, source_kind="parquet", source=str(src), out=str(out),
                                      model_uri=str(scorer_dir), as_of=as_of, features=CFG,
                                      free_mail_domains=DOMAINS, **control)
                s = time.perf_counter() - t0
                runs.append({"run": i + 1, "seconds": round(s, 2), "scored": summary["leads_scored"],
                             "quarantined": summary["leads_quarantined"],
                             "leads_per_s": round(n_leads / s), "scored_per_s": round(summary["leads_scored"] / s)})
                log.info("Spark run %d%s: %s eligible leads scored in %.1f s: %s leads/s (%s scored leads/s)",
                         i + 1, " (warm-up)" if i < args.spark_runs - 1 else "", f"{summary['leads_scored']:,}",
                         s, f"{runs[-1]['leads_per_s']:,}", f"{runs[-1]['scored_per_s']:,}")
            memory = _spark_memory(spark)
        finally:
            spark.stop()
        log.info("Spark memory: %s", memory)
        last = runs[-1]
        spark_s = last["seconds"]
        per_core = last["scored"] / spark_s / args.cores
        leads_per_core_s = n_leads / spark_s / args.cores
        events_per_core_s = n_events / spark_s / args.cores
        ratio = spark_s / duck_s
        log.info("ratio Spark / DuckDB: %.2f (Spark run %d %.1f s / DuckDB %.1f s); per core: Spark %s scored "
                 "leads/s (%s base leads/s, %s events/s), DuckDB %s scored leads/s", ratio, last["run"], spark_s,
                 duck_s, f"{per_core:,.0f}", f"{leads_per_core_s:,.0f}", f"{events_per_core_s:,.0f}",
                 f"{duck['scored_per_s_per_core']:,}")

        cmp = _compare(duck_out, folder / "spark_scores")
        log.info("outputs: %s rows each, same lead ids: %s, grades differing: %d, max |probability diff| = %.2e",
                 f"{cmp['rows']:,}", cmp["same_lead_ids"], cmp["grades_differ"], cmp["max_abs_probability_diff"])

    est = _estimate(leads_per_core_s, events_per_core_s)
    print(f"\nOn paper, {TARGET_LEADS / 1e6:.0f}M leads and {TARGET_EVENTS / 1e9:.0f}B events "
          f"({TARGET_EVENTS / TARGET_LEADS:.0f} events per lead; this run: {n_events / n_leads:.1f}):")
    print(f"  assumption: Spark scales linearly from the measured {leads_per_core_s:,.0f} leads "
          f"({events_per_core_s:,.0f} events) per core-second on local[{args.cores}]; a real cluster adds "
          f"network cost to the shuffles (events by lead), so a safety factor of {SAFETY:g} is applied")
    print(f"  work: {est['core_seconds']:,} core-seconds ({est['core_hours']} core-hours)")
    print(f"  within 1 hour: {est['executors_for_1h']} executors x {CORES_PER_EXECUTOR} cores; "
          f"within 15 minutes: {est['executors_for_15min']} executors x {CORES_PER_EXECUTOR} cores")
    print(f"  on {CLUSTER_EXECUTORS} executors x {CORES_PER_EXECUTOR} cores: "
          f"{est[f'minutes_on_{CLUSTER_EXECUTORS}x{CORES_PER_EXECUTOR}']} minutes")
    print(json.dumps({
        "leads": n_leads, "events": n_events, "as_of": as_of.isoformat(), "parquet_mb": round(size_mb),
        "scored": result.leads_scored, "duckdb": duck,
        "spark": {"cores": args.cores, "memory": args.memory, "session_start_s": round(session_s, 2),
                  "runs": runs, "seconds": spark_s, "scored_per_s_per_core": round(per_core),
                  "leads_per_s_per_core": round(leads_per_core_s), "events_per_s_per_core": round(events_per_core_s),
                  **memory},
        "ratio_spark_over_duckdb": round(ratio, 2), "compare": cmp, "estimate": est,
    }))


if __name__ == "__main__":
    main()
