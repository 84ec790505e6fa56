"""Benchmark: one lead through `leadscore serve`, measured against the running server.

    .venv/bin/python benchmarks/serve.py --leads 50000 --requests 1000

1. Generates a synthetic CRM (`--leads`, raw DuckDB WITH personal columns, as production
   reads it) and trains a small additive model the way benchmarks/score.py does (its `_train`,
   on a separate CRM), exported as the MLflow scorer. Not timed.
2. Starts `leadscore serve --model <scorer> --crm <crm> --as-of <the day after the data
   cutoff>` as a subprocess on a free port and waits for /health.
3. Timed: `--requests` sequential `GET /leads/<id>` from one keep-alive client for random
   leads eligible at that as_of (the ids come from the batch feature code); p50 / p95 / p99.
4. `POST /score` on `--post-requests` of the same leads, each posted as a new lead (its CRM
   record, events and outcomes as JSON, under another lead id): p50 / p95 / p99.
5. The typical path a user would write, per request, on `--naive-requests` of the same leads
   (in process, no HTTP): `leadscore.serve.lead.lead_features` on the ingested CRM (a new
   connection, views and the data cutoff per call, as `leadscore explain` does) and
   `predict` of the MLflow pyfunc model (loaded once, outside the timing). Its p50 and the
   ratio to the server's p50.

The last printed line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from leadscore.config import FeaturesConfig, GenerateConfig, IngestConfig  # noqa: E402
from leadscore.data.ingest import ingest  # noqa: E402
from leadscore.data.synthetic import generate_crm  # noqa: E402
from leadscore.features.build import build_features, data_cutoff  # noqa: E402
from leadscore.serve.batch import feature_kwargs, open_crm  # noqa: E402
from score import _train  # noqa: E402

log = logging.getLogger("benchmarks.serve")
CFG = FeaturesConfig()
DOMAINS = IngestConfig().free_mail_domains
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _eligible(raw: Path) -> tuple[dt.datetime, list[str]]:
    con, _ = open_crm("duckdb", raw, DOMAINS)
    try:
        cutoff = data_cutoff(con)
        as_of = dt.datetime.combine(cutoff.date() + dt.timedelta(days=1), dt.time())
        ids = build_features(con, [as_of], **feature_kwargs(CFG))["lead_id"].tolist()
    finally:
        con.close()
    return as_of, ids


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM, Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _quantiles(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(q[94], 2), "p99_ms": round(q[98], 2)}


def _post(conn: http.client.HTTPConnection, raw: Path, ids: list[str]) -> list[float]:
    """`POST /score` per lead: its CRM rows as JSON (ISO times), as a new lead id; ms each."""
    bodies = []
    with duckdb.connect(str(raw), read_only=True) as con:
        for lead_id in ids:
            new_id = f"posted-{lead_id}"
            rows = {name: [{**r, "lead_id": new_id} for r in json.loads(
                con.execute(f"SELECT * FROM {name} WHERE lead_id = ?", [lead_id]).df()
                .to_json(orient="records", date_format="iso", date_unit="us"))] for name in ("leads", "events", "outcomes")}
            bodies.append(json.dumps({"lead": rows["leads"][0], "events": rows["events"],
                                      "outcomes": rows["outcomes"]}).encode())
    out = []
    for body in bodies:
        t0 = time.perf_counter()
        conn.request("POST", "/score", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        out.append((time.perf_counter() - t0) * 1e3)
        assert r.status in (200, 422), r.status
    return out


def _naive(crm: Path, scorer: Path, as_of: dt.datetime, ids: list[str]) -> list[float]:
    """Per request: `leadscore.serve.lead.lead_features` (what `leadscore explain` does: a new
    DuckDB connection to the ingested CRM, views, the data cutoff, `build_features` over the
    lead) and `predict` of the MLflow pyfunc model (loaded once, not timed)."""
    import mlflow.pyfunc

    from leadscore.serve.lead import lead_features

    model = mlflow.pyfunc.load_model(str(scorer))
    names = [c.name for c in model.metadata.get_input_schema().inputs]
    out = []
    for lead_id in ids:
        t0 = time.perf_counter()
        X, _ = lead_features(crm, lead_id, as_of, CFG)
        pred = model.predict(X[names])
        assert len(pred) == 1
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=50_000)
    ap.add_argument("--train-leads", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=1_000)
    ap.add_argument("--naive-requests", type=int, default=100)
    ap.add_argument("--post-requests", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raw = folder / "crm.duckdb"
        generate_crm(GenerateConfig(n_leads=args.leads), args.seed, raw)
        scorer = _train(folder, args.train_leads, args.seed) / "scorer"
        as_of, ids = _eligible(raw)
        with duckdb.connect(str(raw), read_only=True) as con:
            n_events = con.execute("SELECT count(*) FROM events").fetchone()[0]
        log.info("CRM: %s leads, %s events; %s eligible as of %s", f"{args.leads:,}", f"{n_events:,}",
                 f"{len(ids):,}", as_of.date())
        sample = [rng.choice(ids) for _ in range(args.requests)]

        port = _free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "leadscore.cli", "serve", "--model", str(scorer), "--crm", str(raw),
             "--port", str(port), "--as-of", as_of.date().isoformat()],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
        try:
            conn = None
            while conn is None:
                if proc.poll() is not None:
                    raise SystemExit(f"leadscore serve exited with {proc.returncode}")
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    c.request("GET", "/health")
                    c.getresponse().read()
                    conn = c
                except OSError:
                    time.sleep(0.2)
            startup = time.perf_counter() - t0
            for lead_id in sample[:20]:  # warm-up, not counted
                conn.request("GET", f"/leads/{lead_id}")
                conn.getresponse().read()
            ms, statuses = [], {}
            t_all = time.perf_counter()
            for lead_id in sample:
                t1 = time.perf_counter()
                conn.request("GET", f"/leads/{lead_id}")
                r = conn.getresponse()
                body = r.read()
                ms.append((time.perf_counter() - t1) * 1e3)
                statuses[r.status] = statuses.get(r.status, 0) + 1
            wall = time.perf_counter() - t_all
            doc = json.loads(body)
            assert 0 <= doc["probability"] <= 1 and doc["reasons"], doc
            post_ms = _post(conn, raw, sample[: args.post_requests])
            server_rss_mb = _peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        ours = _quantiles(ms)
        posted = _quantiles(post_ms)
        log.info("POST /score: %d posted leads: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms", len(post_ms),
                 posted["p50_ms"], posted["p95_ms"], posted["p99_ms"])
        log.info("leadscore serve: %d requests in %.1f s (%s), startup %.1f s, peak RSS %.0f MB: p50 %.1f ms, "
                 "p95 %.1f ms, p99 %.1f ms", len(ms), wall, statuses, startup, server_rss_mb, ours["p50_ms"],
                 ours["p95_ms"], ours["p99_ms"])
        crm = folder / "crm_ingested.duckdb"
        ingest("duckdb", raw, crm, DOMAINS)
        naive_ms = _naive(crm, scorer, as_of, sample[: args.naive_requests])
        naive = _quantiles(naive_ms)
        ratio = naive["p50_ms"] / ours["p50_ms"]
        log.info("typical path (lead_features per request, pyfunc predict) on %d requests: p50 %.1f ms, "
                 "p95 %.1f ms, p99 %.1f ms; ratio of p50s %.1fx", len(naive_ms), naive["p50_ms"],
                 naive["p95_ms"], naive["p99_ms"], ratio)
    print(json.dumps({
        "leads": args.leads, "events": n_events, "eligible": len(ids), "requests": len(ms),
        "statuses": {str(k): v for k, v in statuses.items()}, **ours, "startup_s": round(startup, 1),
        "server_peak_rss_mb": server_rss_mb, "post": posted,
        "target": {"p50_ms": 20, "p99_ms": 50},
        "met": ours["p50_ms"] <= 20 and ours["p99_ms"] <= 50,
        "naive": naive, "ratio_p50": round(ratio, 1), "load_avg": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
