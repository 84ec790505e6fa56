"""`leadscore score --engine spark`: the batch job on Spark, with the contract, quarantine,
checks and exit codes of the DuckDB job (`leadscore.serve.batch.score_leads`).

1. The model is loaded and verified on the driver (`load_scorer_model`; `ModelError`, exit 3).
2. The CRM is read from a folder of Parquet files (`leads.parquet`, `events.parquet`,
   `outcomes.parquet`: files or Spark folders) or from Spark tables (`<source>.leads`, ...).
   Missing tables or required columns, and values that do not cast to the contract's types,
   are `InputError` (exit 1) naming the file or table, column and a count.
3. The batch job's checks, as the same SQL (`CLOSED_VOCABULARIES`, `ROW_CHECKS`, duplicate and
   null lead ids), transpiled: a value outside a closed vocabulary fails the run; a lead with
   a per-row problem is quarantined; more than `quarantine_budget` fails the run (exit 1).
4. The lead flags (`leads_sql`), the features (`build_features_spark`) and the scores
   (`score_features`, `mapInArrow`) come from the one definition of each.
5. Before anything is published, the staged scores are checked as in the DuckDB job: every
   eligible clean lead exactly once, no other lead, probability in [0, 1], grades valid.
6. Publishing: Parquet output is a folder `<out>/` holding `scores/`, `quarantine/` and
   `_manifest.json` (written last). It is built beside `<out>` and swapped in by renames,
   so readers see the old folder or the new one; on an object store without atomic renames
   (S3) publish to tables instead. Table output (`--format table`) overwrites `<out>` and
   `<out>_quarantine`, as atomic as the table format makes an overwrite (Delta: atomic).

Not on Spark (yet): incremental runs, resuming a run, the score history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadscore.config import FeaturesConfig
from leadscore.data.ingest import leads_sql
from leadscore.errors import ConfigError, InputError, ModelError
from leadscore.features.build import data_cutoff_sql, eligibility_sql, feature_catalog
from leadscore.io import check_table_name
from leadscore.schema import TABLES
from leadscore.serve.batch import (
    CLOSED_VOCABULARIES,
    QuarantineBudgetExceeded,
    check_signature,
    feature_kwargs,
    invariant_queries,
    load_scorer_model,
    model_version_of,
    quarantine_sql,
    vocabulary_message,
    vocabulary_sql,
)
from leadscore.spark.sql import spark_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

SOURCE_KINDS = ("parquet", "table")
OUTPUT_FORMATS = ("parquet", "table")


def _read(spark: SparkSession, kind: str, source: str, name: str) -> tuple[DataFrame, str]:
    """The CRM table `name` with the contract's columns and types, and where it came from."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    where = f"{source.rstrip('/')}/{name}.parquet" if kind == "parquet" else f"{source}.{name}"
    try:
        frame = spark.read.parquet(where) if kind == "parquet" else spark.table(where)
        columns = set(frame.columns)
    except PySparkException as err:
        raise InputError(f"{where}: table '{name}' not found or unreadable ({err.getCondition()})") from None
    except Py4JJavaError:  # e.g. a file that is not Parquet: the JVM's error names no condition
        raise InputError(f"{where}: table '{name}' is not readable Parquet") from None
    table = TABLES[name]
    missing = [c for c in table.required if c not in columns]
    if missing:
        raise InputError(f"{where}: missing required column(s) {missing} of table '{name}'")
    view = f"_raw_{name}_{uuid.uuid4().hex[:8]}"
    frame.createOrReplaceTempView(view)
    typed = ", ".join(f'TRY_CAST("{c}" AS {t}) AS "{c}"' if c in columns else f'CAST(NULL AS {t}) AS "{c}"'
                      for c, t in table.columns.items())
    out = spark.sql(spark_sql(f"SELECT {typed} FROM {view}"))
    present = [c for c in table.columns if c in columns]
    uncastable = _uncastable(spark, view, table.columns, present)
    if uncastable:
        raise InputError(f"{where}: " + "; ".join(
            f"column '{c}': {n} value(s) do not cast to {table.columns[c]}" for c, n in uncastable.items()))
    return out, where


def _uncastable(spark: SparkSession, view: str, types: dict[str, str], present: Sequence[str]) -> dict[str, int]:
    """Per column, how many non-null values do not cast to the contract type."""
    counts = ", ".join(f'count(*) FILTER (WHERE "{c}" IS NOT NULL AND TRY_CAST("{c}" AS {types[c]}) IS NULL) '
                       f'AS "{c}"' for c in present)
    row = spark.sql(spark_sql(f"SELECT {counts} FROM {view}")).first()
    return {c: int(row[c]) for c in present if row[c]}


def _quarantine(spark: SparkSession, views: dict[str, str], where: dict[str, str], *, budget: float,
                sample_keys: int = 5) -> DataFrame:
    """The batch job's input checks on Spark (`leadscore.serve.batch.check_input`, the same
    SQL): fails on a closed-vocabulary error or an empty input; returns the quarantine rows
    (lead_id, table_name, column_name, reason); fails when over `budget`."""
    from leadscore.io import safe_key

    n_leads = spark.table(views["leads"]).count()
    if n_leads == 0:
        raise InputError(f"{where['leads']}: no leads (empty input); nothing to score")
    for (table, col), vocab in CLOSED_VOCABULARIES.items():
        key, bad_rows = vocabulary_sql(views[table], table, col)
        bad = spark.sql(spark_sql(bad_rows))
        count = bad.count()
        if count:
            keys = [safe_key(r[0]) for r in bad.orderBy(key).limit(sample_keys).collect()]
            raise InputError(vocabulary_message(where[table], col, count, key, keys, vocab))
    q = spark.sql(spark_sql(f"SELECT DISTINCT * FROM ({quarantine_sql(views)})")).cache()
    counts = q.groupBy("table_name", "column_name", "reason").count().orderBy("table_name", "column_name").collect()
    bad_leads = q.selectExpr("lead_id").where("lead_id IS NOT NULL").distinct().count()
    n_bad = bad_leads + q.where("lead_id IS NULL").count()
    if n_bad:
        msg = f"{n_bad} of {n_leads} lead(s) ({n_bad / n_leads:.2%}) quarantined:\n  " + "\n  ".join(
            f"{where[r['table_name']]}: column '{r['column_name']}': {r['reason']} in {r['count']} row(s)" for r in counts)
        if n_bad / n_leads > budget:
            raise QuarantineBudgetExceeded(
                msg + f"\nThat is over score.quarantine_budget={budget:.2%}: fix the input or raise the budget.")
        log.warning("%s", msg)
    return q


def score_spark(
    spark: SparkSession,
    *,
    source_kind: str,
    source: str,
    out: str,
    model_uri: str,
    as_of: dt.datetime | None,
    features: FeaturesConfig,
    free_mail_domains: Sequence[str],
    fmt: str = "parquet",
    quarantine_budget: float = 0.01,
    control_share: float = 0.0,
    control_salt: str = "leadscore",
    run_id: str | None = None,
) -> dict[str, Any]:
    """Score every eligible lead of the source as of `as_of` (None: the day after the data
    cutoff) on Spark and publish the score contract to `out` (see the module docstring).
    Returns the run's summary. Raises `InputError`, `ConfigError` or `ModelError`; nothing is
    published when it raises."""
    from leadscore.spark.features import build_features_spark
    from leadscore.spark.scoring import score_features

    t0 = time.perf_counter()
    if source_kind not in SOURCE_KINDS:
        raise ConfigError(f"--source-kind {source_kind!r}: on Spark use one of {', '.join(SOURCE_KINDS)}")
    if fmt not in OUTPUT_FORMATS:
        raise ConfigError(f"--format {fmt!r}: on Spark use one of {', '.join(OUTPUT_FORMATS)}")
    if fmt == "table":  # names go into SQL: plain identifiers only, checked before any work
        for part in out.split("."):
            check_table_name(part, "--out")
    if source_kind == "table":
        check_table_name(source, "--source")
    catalog = feature_catalog(features.windows_days, features.content_types)
    model = load_scorer_model(model_uri)
    check_signature(model, catalog.names, catalog.categorical, model_uri)
    version = model_version_of(model)

    suffix = uuid.uuid4().hex[:8]
    cached: list[DataFrame] = []  # released at the end: a later run in the same session must
    views: dict[str, str] = {}    # never see this run's data (its source may change in place)
    try:
        where: dict[str, str] = {}
        for name in TABLES:
            frame, where[name] = _read(spark, source_kind, source, name)
            views[name] = f"_{name}_{suffix}"
            frame.createOrReplaceTempView(views[name])
        quarantine = _quarantine(spark, views, where, budget=quarantine_budget)
        cached.append(quarantine)
        quarantine.select("lead_id").where("lead_id IS NOT NULL").distinct().createOrReplaceTempView(f"_q_{suffix}")
        clean = spark.sql(spark_sql(f"{leads_sql(views['leads'], free_mail_domains)} WHERE lead_id IS NOT NULL "
                                    f"AND lead_id NOT IN (SELECT lead_id FROM _q_{suffix})")).cache()
        cached.append(clean)
        clean.createOrReplaceTempView(f"_clean_{suffix}")
        if as_of is None:
            cutoff = spark.sql(spark_sql(data_cutoff_sql(views["leads"], views["events"], views["outcomes"]))).first()[0]
            as_of = dt.datetime.combine(cutoff.date() + dt.timedelta(days=1), dt.time())
        blob = f"{as_of.isoformat()}|{version}|{source_kind}:{source}"
        run_id = run_id or hashlib.sha256(blob.encode()).hexdigest()[:16]
        scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)

        feats = build_features_spark(spark, [as_of], leads=clean, events=spark.table(views["events"]),
                                     outcomes=spark.table(views["outcomes"]), **feature_kwargs(features))
        scores = score_features(feats, model_uri, run_id=run_id, scored_at=scored_at, feature_config=features,
                                control_share=control_share, control_salt=control_salt)
        q_rows = quarantine.selectExpr("lead_id", "table_name", "column_name", "reason",
                                       f"CAST('{as_of.isoformat(sep=' ')}' AS TIMESTAMP_NTZ) AS as_of",
                                       f"'{run_id}' AS run_id")
        eligible = spark.sql(spark_sql(f"SELECT DISTINCT lead_id FROM ({eligibility_sql(as_of, **_over(views, suffix, features))})"))
        run = {"run_id": run_id, "as_of": as_of.isoformat(), "model_version": version, "scored_at": scored_at.isoformat(),
               "engine": "spark", "source_kind": source_kind, "format": fmt}
        if fmt == "parquet":
            summary = _publish_folder(spark, scores, q_rows, eligible, Path(out), run)
        else:
            summary = _publish_tables(spark, scores, q_rows, eligible, out, run)
        summary.update(run, leads_quarantined=int(quarantine.select("lead_id").distinct().count()),
                       seconds=round(time.perf_counter() - t0, 2), out=str(out))
        log.info("run %s (spark): %d scored as of %s -> %s (%.1fs)", run_id, summary["leads_scored"], as_of.date(),
                 out, summary["seconds"])
        return summary
    finally:
        for frame in cached:
            frame.unpersist()
        for view in [*views.values(), f"_q_{suffix}", f"_clean_{suffix}"]:
            spark.catalog.dropTempView(view)


def _over(views: dict[str, str], suffix: str, features: FeaturesConfig) -> dict[str, Any]:
    return {**feature_kwargs(features), "sources": {"leads": f"_clean_{suffix}", "events": views["events"],
                                                    "outcomes": views["outcomes"]}}


def check_scores(spark: SparkSession, scores: DataFrame, eligible: DataFrame) -> int:
    """The DuckDB job's invariants on the staged scores: every eligible clean lead exactly
    once and no other (`InputError`), probabilities in [0, 1] and valid grades
    (`ModelError`). Returns the number of scored leads."""
    from leadscore.io import safe_key

    scores.createOrReplaceTempView("_staged")
    eligible.createOrReplaceTempView("_elig")
    row = {k: spark.sql(spark_sql(sql)).first()[0] for k, sql in invariant_queries().items()}
    problems = [f"{row[k]} {what}" for k, what in (
        ("duplicated", "lead(s) scored more than once"), ("null_lead_id", "row(s) without a lead_id"),
        ("missing", "eligible lead(s) not scored"), ("not_eligible", "scored lead(s) that are not eligible")) if row[k]]
    if problems:
        sample = [safe_key(r[0]) for r in spark.sql(
            "SELECT lead_id FROM _staged GROUP BY lead_id HAVING count(*) > 1 ORDER BY lead_id LIMIT 5").collect()]
        raise InputError("nothing published: the staged scores do not cover the eligible leads exactly once: "
                         + "; ".join(problems) + (f" (lead_id: {', '.join(sample)})" if sample else ""))
    bad = [f"{row[k]} {what}" for k, what in (("bad_probability", "probability(ies) missing or outside [0, 1]"),
                                              ("bad_grade", "grade(s) not one of A1..D4 or not letter + digit"))
           if row[k]]
    if bad:
        raise ModelError(f"nothing published: the model's scores are invalid: {'; '.join(bad)}. Check the exported model.")
    return int(row["rows"])


def _publish_folder(spark: SparkSession, scores: DataFrame, quarantine: DataFrame, eligible: DataFrame,
                    out: Path, run: dict) -> dict[str, Any]:
    """Write `<out>` beside itself, check it, then swap it in by renames (`_manifest.json` last)."""
    out = out.resolve()
    staging = out.parent / f".{out.name}.staging-{run['run_id']}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot create its folder ({err.strerror})") from None
    try:
        scores.write.mode("error").parquet(str(staging / "scores"))
        quarantine.coalesce(1).write.mode("error").parquet(str(staging / "quarantine"))
        n = check_scores(spark, spark.read.parquet(str(staging / "scores")), eligible)
        summary = {"leads_scored": n, "grades": {r["grade"]: r["count"] for r in spark.read.parquet(
            str(staging / "scores")).groupBy("grade").count().orderBy("grade").collect()}}
        (staging / "_manifest.json").write_text(json.dumps({**run, **summary, "status": "published"}, indent=2))
        old = out.parent / f".{out.name}.old-{run['run_id']}"
        if out.exists():
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary


def _publish_tables(spark: SparkSession, scores: DataFrame, quarantine: DataFrame, eligible: DataFrame,
                    out: str, run: dict) -> dict[str, Any]:
    """Check the scores (cached), then overwrite the tables `out` and `out`_quarantine."""
    scores = scores.cache()
    try:
        n = check_scores(spark, scores, eligible)
        grades = {r["grade"]: r["count"] for r in scores.groupBy("grade").count().orderBy("grade").collect()}
        scores.write.mode("overwrite").saveAsTable(out)
        quarantine.write.mode("overwrite").saveAsTable(f"{out}_quarantine")
    finally:
        scores.unpersist()
    return {"leads_scored": n, "grades": grades}


def score_spark_with_params(params, *, out: str, model_uri: str, source_kind: str, source: str,
                            as_of: dt.datetime | None = None, **kw: Any) -> dict[str, Any]:
    """`score_spark` with the settings of params.yaml (features, `ingest.free_mail_domains`,
    `score.*`) on the active SparkSession (under spark-submit, the cluster's), else a local
    one. pyspark missing or no Java is a `ConfigError` (exit 2)."""
    try:
        from leadscore.spark.session import get_session
    except ImportError:  # pragma: no cover - the dev environment has pyspark
        raise ConfigError("--engine spark needs pyspark: install leadscore[spark]") from None
    try:
        spark = get_session()
    except Exception as err:  # pyspark's launcher errors: no Java, no gateway
        raise ConfigError(f"--engine spark: Spark did not start ({type(err).__name__}); it needs Java 17 "
                          "(`make java`) or a cluster (spark-submit)") from None
    sc = params.score
    if as_of is None and sc.as_of is not None:
        as_of = dt.datetime.combine(sc.as_of, dt.time())
    return score_spark(spark, source_kind=source_kind, source=source, out=out, model_uri=model_uri, as_of=as_of,
                       features=params.features, free_mail_domains=params.ingest.free_mail_domains,
                       quarantine_budget=sc.quarantine_budget, control_share=sc.control_share,
                       control_salt=sc.control_salt, **kw)
