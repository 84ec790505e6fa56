"""Benchmark: the batch scorer end to end over a large synthetic lead base.

    .venv/bin/python benchmarks/score.py --leads 1000000

1. A child process generates the CRM (about 40 events per lead; not timed). The source is
   the raw DuckDB file WITH personal columns, read through `leadscore.io` as in production.
2. The model: an additive LightGBM (one feature per tree, as `train_model.additive`) trained
   in a child process on a small separate CRM (`--train-leads`, not timed), with a calibrator, grade cut
   points and the rule table, exported as the MLflow scorer. (Training inside keeps the
   benchmark independent of whether models/ is additive yet.)
3. Timed: `leadscore.serve.batch.score_leads` as of the data cutoff: read, features, probability,
   grade, top-3 positive and negative exact reasons, write Parquet. Wall time and peak RSS.
4. Timed: an **incremental run** (`score_leads(incremental=True)`, `leadscore score
   --incremental`) after `--changed-share` (1%) of the leads got a new event just after the
   data cutoff: it finds the changed leads, rescores them and merges them into the published
   Parquet table (a new file + manifest swap). Its ratio to the full rescore above is the
   typical user's alternative (rescore everything). Target on 1M leads: <= 3 s.
5. On a slice of the same leads (`--naive-leads`), the plain path: the pandas features twin
   (benchmarks/pandas_features.py) + `shap.TreeExplainer` + probability + grade; its speed
   and the largest |our contribution - SHAP's| over the slice.

The last printed line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from leadscore.config import (  # noqa: E402
    FeaturesConfig,
    GenerateConfig,
    IngestConfig,
    ScoreConfig,
    TrainRulesConfig,
)
from leadscore.data.ingest import ingest  # noqa: E402
from leadscore.explain.contributions import Explainer, group_sums  # noqa: E402
from leadscore.explain.grades import fit_grade_cuts, save_grading  # noqa: E402
from leadscore.explain.reasons import explain_rows  # noqa: E402
from leadscore.features.build import feature_catalog, training_table  # noqa: E402
from leadscore.features.catalog import save_catalog  # noqa: E402
from leadscore.modeling.baseline import PointsRuleClassifier, save_rules  # noqa: E402
from leadscore.modeling.calibration import Calibrator  # noqa: E402
from leadscore.modeling.estimators import CalibratedModel, LightGBMClassifier, save_model  # noqa: E402
from leadscore.serve.batch import feature_kwargs, open_crm, score_leads  # noqa: E402
from leadscore.serve.export import export_scorer  # noqa: E402
from leadscore.serve.scorer import Scorer  # noqa: E402
from pandas_features import pandas_features  # noqa: E402

log = logging.getLogger("benchmarks.score")
CFG = FeaturesConfig()  # the feature settings of training and scoring
DOMAINS = IngestConfig().free_mail_domains


def _generate(path: str, leads: int, seed: int) -> None:
    from leadscore.data.synthetic import generate_crm

    generate_crm(GenerateConfig(n_leads=leads), seed, path)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _train(folder: Path, leads: int, seed: int) -> Path:
    """A small additive model + calibrator + grades + rules, exported as the scorer."""
    raw, crm = folder / "train_raw.duckdb", folder / "train_crm.duckdb"
    _generate(str(raw), leads, seed + 1)
    ingest("duckdb", raw, crm, DOMAINS)
    with duckdb.connect(str(crm), read_only=True) as con:
        table, _ = training_table(con, as_of_start=CFG.as_of_start, as_of_end=None, every_months=1,
                                  cutoff=None, target_stage=CFG.target_stage, horizon_days=CFG.horizon_days,
                                  max_lead_age_days=CFG.max_lead_age_days, windows_days=CFG.windows_days,
                                  half_life_days=CFG.half_life_days, content_types=CFG.content_types)
    cat = feature_catalog(CFG.windows_days, CFG.content_types)
    est = LightGBMClassifier.from_catalog(
        cat, params={"num_leaves": 10, "learning_rate": 0.05, "min_data_in_leaf": 40},
        max_boost_rounds=200, seed=seed, num_threads=2, additive=True).fit(table, table["label"])
    cal = Calibrator("sigmoid").fit(est.decision_function(table), table["label"].to_numpy())
    contrib = Explainer.for_model(est).contributions(est.model_frame(table))
    sums = group_sums(contrib, est.feature_names_, {g: cat.group(g) for g in ("fit", "engagement")})
    models = folder / "models"
    save_model(CalibratedModel(est, cal, {"data_window": {}, "git_commit": "bench", "params_hash": "bench"}),
               models / "lightgbm")
    save_grading(fit_grade_cuts(sums["fit"], sums["engagement"]), models / "grading.json")
    save_rules(PointsRuleClassifier.from_config(TrainRulesConfig()).fit(table, table["label"]), models / "rules.json")
    save_catalog(cat, models / "feature_catalog.json")
    export_scorer(models / "lightgbm", grading=models / "grading.json", catalog=models / "feature_catalog.json",
                  rules=models / "rules.json", out=models / "scorer")
    log.info("trained: %d rows, %d trees, additive=%s", len(table), est.booster_.num_trees(),
             Explainer.for_model(est).additive)
    return models


def _naive(raw: Path, scorer_dir: Path, as_of: dt.datetime, n: int) -> tuple[float, int, float]:
    """The plain path on the first `n` leads: pandas features, `shap.TreeExplainer`,
    probability, grade, top-3 reasons and rule points (no write). Returns (seconds, rows,
    max |our contributions - SHAP's|)."""
    import shap

    con, _ = open_crm("duckdb", raw, DOMAINS)
    try:
        con.execute(f"CREATE TEMP TABLE _ids AS SELECT lead_id FROM scoring.leads ORDER BY lead_id LIMIT {int(n)}")
        frames = {t: con.execute(f"SELECT * FROM scoring.{t} WHERE lead_id IN (SELECT lead_id FROM temp._ids)").df()
                  for t in ("leads", "events", "outcomes")}
    finally:
        con.close()
    scorer = Scorer.from_dir(scorer_dir / "artifacts")
    t0 = time.perf_counter()
    feats = pandas_features(frames["leads"], frames["events"], frames["outcomes"], as_of, **feature_kwargs(CFG))
    X = scorer.model_frame(feats)
    booster = scorer.model.booster_
    shap_values = np.asarray(shap.TreeExplainer(booster).shap_values(X))
    proba = scorer.calibrator.predict(booster.predict(X, raw_score=True))
    sums = group_sums(shap_values, scorer.feature_names,
                      {g: scorer.catalog.group(g) for g in ("fit", "engagement")})
    scorer.cuts.grade(sums["fit"], sums["engagement"])
    explain_rows(shap_values, feats, scorer.catalog, scorer.feature_names, 3).to_arrow()
    if scorer.rules is not None:
        scorer.rules.grade(feats)
    seconds = time.perf_counter() - t0
    ours = scorer.explainer.contributions(scorer.explainer.model_input(feats))
    assert len(proba) == len(feats)
    return seconds, len(feats), float(np.max(np.abs(ours - shap_values), initial=0.0))


def _touch_leads(raw: Path, share: float, as_of: dt.datetime) -> int:
    """Give `share` of the leads (every round(1/share)-th by id) one new web visit just after
    the data cutoff (before `as_of`), as the CRM would between two incremental runs. Returns
    the number of leads touched (not timed)."""
    step = max(1, round(1 / share))
    with duckdb.connect(str(raw)) as con:
        cutoff = con.execute("SELECT greatest((SELECT max(created_at) FROM leads), (SELECT max(occurred_at) "
                             "FROM events), (SELECT max(stage_at) FROM outcomes))").fetchone()[0]
        at = min(cutoff + dt.timedelta(minutes=1), as_of - dt.timedelta(seconds=1))
        con.execute(f"""
            INSERT INTO events BY NAME
            SELECT 'inc-' || lead_id AS event_id, lead_id, ?::TIMESTAMP AS occurred_at,
                   'web_visit' AS event_type, NULL AS content_type
            FROM (SELECT lead_id, row_number() OVER (ORDER BY lead_id) AS rn FROM leads)
            WHERE rn % {int(step)} = 0""", [at])
        return int(con.execute("SELECT count(*) FROM events WHERE event_id LIKE 'inc-%'").fetchone()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--train-leads", type=int, default=20_000)
    ap.add_argument("--naive-leads", type=int, default=20_000)
    ap.add_argument("--chunk-size", type=int, default=ScoreConfig().chunk_size,
                    help="leads per chunk (default: the score.chunk_size default)")
    ap.add_argument("--memory-limit", default="1GB")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--changed-share", type=float, default=0.01,
                    help="share of the leads changed before the incremental run")
    ap.add_argument("--model", type=Path, default=None,
                    help="an exported scorer folder (e.g. models/scorer from `make run`); "
                         "default: train a small additive model here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raw = folder / "crm.duckdb"
        t0 = time.perf_counter()
        # generation and training in child processes: this process's peak RSS is the scoring's
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_generate, args=(str(raw), args.leads, args.seed))]
        if not args.model:
            procs.append(ctx.Process(target=_train, args=(folder, args.train_leads, args.seed)))
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
            if proc.exitcode != 0:
                raise SystemExit(f"data or model preparation failed (exit {proc.exitcode})")
        scorer_dir = args.model.resolve() if args.model else folder / "models" / "scorer"
        with duckdb.connect(str(raw), read_only=True) as con:
            n_leads, n_events = con.execute(
                "SELECT (SELECT count(*) FROM leads), (SELECT count(*) FROM events)").fetchone()
        log.info("prepared %s leads, %s events and the model in %.0f s (not timed)", f"{n_leads:,}",
                 f"{n_events:,}", time.perf_counter() - t0)

        t0 = time.perf_counter()
        result = score_leads(source_kind="duckdb", source=raw, out=folder / "scores.parquet",
                             model_uri=str(scorer_dir), as_of=None, features=CFG,
                             free_mail_domains=DOMAINS, chunk_size=args.chunk_size, threads=args.threads,
                             memory_limit=args.memory_limit, progress=False,
                             control_share=ScoreConfig().control_share)
        seconds = time.perf_counter() - t0
        peak = _peak_rss_mb()
        rate = n_leads / seconds
        log.info("scored: %s leads in the base, %s eligible and scored, in %.1f s: %s leads/s "
                 "(%s scored leads/s), peak RSS %.0f MB", f"{n_leads:,}", f"{result.leads_scored:,}",
                 seconds, f"{rate:,.0f}", f"{result.leads_scored / seconds:,.0f}", peak)

        touched = _touch_leads(raw, args.changed_share, result.as_of)
        t0 = time.perf_counter()
        inc = score_leads(source_kind="duckdb", source=raw, out=folder / "scores.parquet",
                          model_uri=str(scorer_dir), as_of=result.as_of, features=CFG,
                          free_mail_domains=DOMAINS, chunk_size=args.chunk_size, threads=args.threads,
                          memory_limit=args.memory_limit, progress=False,
                          control_share=ScoreConfig().control_share, incremental=True)
        inc_seconds = time.perf_counter() - t0
        log.info("incremental: %s leads touched, %s rescored (%s), %s removed, table %s rows, in %.2f s "
                 "end to end (full rescore %.1f s: %.1fx)", f"{touched:,}", f"{inc.leads_scored:,}",
                 inc.summary["mode"], f"{inc.summary.get('leads_removed', 0):,}",
                 f"{inc.summary['table_rows']:,}", inc_seconds, seconds, seconds / inc_seconds)

        naive_s, naive_rows, diff = _naive(raw, scorer_dir, result.as_of, args.naive_leads)
        naive_rate = args.naive_leads / naive_s
        log.info("plain path (pandas features + shap.TreeExplainer) on %s leads (%s eligible): %.1f s, "
                 "%s leads/s; ratio %.1fx; max |ours - SHAP| = %.2e", f"{args.naive_leads:,}",
                 f"{naive_rows:,}", naive_s, f"{naive_rate:,.0f}", rate / naive_rate, diff)
        if diff > 1e-6:
            raise SystemExit(f"reason values differ from SHAP by {diff:.2e} > 1e-6")
    print(json.dumps({
        "leads": n_leads, "events": n_events, "scored": result.leads_scored,
        "seconds": round(seconds, 2), "leads_per_s": round(rate), "scored_per_s": round(result.leads_scored / seconds),
        "peak_rss_mb": round(peak), "naive_leads_per_s": round(naive_rate), "ratio": round(rate / naive_rate, 1),
        "max_abs_diff_vs_shap": diff, "model": str(args.model or "trained in the benchmark"),
        "incremental": {"leads_touched": touched, "leads_rescored": inc.leads_scored, "mode": inc.summary["mode"],
                        "table_rows": inc.summary["table_rows"], "seconds": round(inc_seconds, 2),
                        "full_rescore_ratio": round(seconds / inc_seconds, 1),
                        "speed_to_lead": inc.summary.get("speed_to_lead")},
    }))


if __name__ == "__main__":
    main()
