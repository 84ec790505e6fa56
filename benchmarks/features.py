"""Benchmark: point-in-time features for one as_of over a large synthetic CRM.

    .venv/bin/python benchmarks/features.py --leads 1000000

1. A child process generates the CRM (about 40 events per lead) and ingests it (not timed).
2. This process builds the features for one `as_of` with `leadscore.features.build.build_features`
   and records wall time and peak RSS (target: <= 120 s, <= 4 GB at 1M leads / 40M events).
3. On a slice of the same leads it times a plain pandas `groupby` twin and the DuckDB path,
   prints the ratio, and checks that both give the same values.

The last printed line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from leadscore.config import FeaturesConfig, GenerateConfig, IngestConfig  # noqa: E402
from leadscore.features.build import build_features  # noqa: E402
from pandas_features import pandas_features  # noqa: E402


def _prepare(folder: str, leads: int, seed: int) -> None:
    from leadscore.data.ingest import ingest
    from leadscore.data.synthetic import generate_crm

    raw, crm = Path(folder) / "raw.duckdb", Path(folder) / "crm.duckdb"
    generate_crm(GenerateConfig(n_leads=leads), seed, raw)
    ingest("duckdb", raw, crm, IngestConfig().free_mail_domains)
    raw.unlink()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _feature_args(cfg: FeaturesConfig) -> dict:
    return dict(target_stage=cfg.target_stage, max_lead_age_days=cfg.max_lead_age_days,
                windows_days=cfg.windows_days, half_life_days=cfg.half_life_days,
                content_types=cfg.content_types)


def _compare(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """Max abs difference over numeric columns; raises if keys or categories differ."""
    a = a.sort_values("lead_id").reset_index(drop=True)
    b = b.sort_values("lead_id").reset_index(drop=True)
    if not a.lead_id.equals(b.lead_id):
        raise AssertionError("the pandas twin and DuckDB found different eligible leads")
    worst = 0.0
    for col in a.columns[2:]:
        if a[col].dtype.kind in "fi":
            x, y = a[col].to_numpy(float), b[col].to_numpy(float)
            if not np.array_equal(np.isnan(x), np.isnan(y)):
                raise AssertionError(f"{col}: missing values differ")
            ok = ~np.isnan(x)
            worst = max(worst, float(np.max(np.abs(x[ok] - y[ok]), initial=0.0)))
        elif not (a[col].astype(str) == b[col].astype(str)).all():
            raise AssertionError(f"{col}: categories differ")
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--pandas-leads", type=int, default=100_000, help="slice size for the pandas twin")
    ap.add_argument("--memory-limit", default="3GB", help="DuckDB memory_limit")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    cfg = FeaturesConfig()
    gen = GenerateConfig(n_leads=args.leads)
    as_of = dt.datetime.combine(gen.end, dt.time())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = mp.get_context("spawn").Process(target=_prepare, args=(tmp, args.leads, args.seed))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"data preparation failed (exit {proc.exitcode})")
        prep_s = time.perf_counter() - t0
        crm = Path(tmp) / "crm.duckdb"
        con = duckdb.connect(str(crm), read_only=True)
        con.execute(f"SET threads={args.threads}; SET memory_limit='{args.memory_limit}'; SET enable_progress_bar=false")
        counts = con.execute("SELECT (SELECT count(*) FROM leads), (SELECT count(*) FROM events)").fetchone()
        print(f"prepared {counts[0]:,} leads and {counts[1]:,} events in {prep_s:.1f} s", flush=True)

        t0 = time.perf_counter()
        full = build_features(con, [as_of], **_feature_args(cfg))
        seconds = time.perf_counter() - t0
        peak = _peak_rss_mb()
        print(f"features: {len(full):,} eligible leads x {full.shape[1] - 2} features "
              f"in {seconds:.1f} s, peak RSS {peak:.0f} MB", flush=True)
        eligible = len(full)
        del full

        ids = con.execute(
            f"SELECT lead_id FROM leads ORDER BY lead_id LIMIT {args.pandas_leads}").df()
        sl = duckdb.connect()
        sl.execute(f"ATTACH '{crm}' AS src (READ_ONLY)")
        sl.register("_ids", ids)
        for t in ("leads", "events", "outcomes"):
            sl.execute(f"CREATE TABLE {t} AS SELECT * FROM src.{t} WHERE lead_id IN (SELECT lead_id FROM _ids)")
        t0 = time.perf_counter()
        duck = build_features(sl, [as_of], **_feature_args(cfg))
        duck_s = time.perf_counter() - t0
        frames = {t: sl.execute(f"SELECT * FROM {t}").df() for t in ("leads", "events", "outcomes")}
        t0 = time.perf_counter()
        twin = pandas_features(frames["leads"], frames["events"], frames["outcomes"], as_of, **_feature_args(cfg))
        pandas_s = time.perf_counter() - t0
        diff = _compare(duck, twin)
        slice_events = len(frames["events"])
        print(f"slice of {args.pandas_leads:,} leads ({slice_events:,} events): DuckDB {duck_s:.2f} s, "
              f"pandas {pandas_s:.2f} s, ratio {pandas_s / duck_s:.1f}x, max abs diff {diff:.2e}", flush=True)
        con.close()
        sl.close()

    print(json.dumps({
        "leads": counts[0], "events": counts[1], "eligible": eligible,
        "seconds": round(seconds, 2), "peak_rss_mb": round(peak), "pandas_ratio": round(pandas_s / duck_s, 2),
        "pandas_slice_leads": args.pandas_leads, "pandas_seconds": round(pandas_s, 3),
        "duckdb_slice_seconds": round(duck_s, 3), "max_abs_diff_vs_pandas": diff,
    }))


if __name__ == "__main__":
    main()
