"""Point-in-time features on Spark, from the one definition in `leadscore.features.build`.

`build_features_spark` runs the same SQL as `build_features` (its steps and final query,
written in DuckDB's dialect and transpiled by `leadscore.spark.sql.spark_sql`), then unpacks
the window counts with the same `feature_frame`, inside `mapInArrow`. The result has the
columns and types of `build_features`; the rows are not sorted (sort when you need to).
`add_labels_spark` labels them with `add_labels`' query (`label_query`).

Each step is computed once (`localCheckpoint`), as DuckDB materialises it into a temporary
table; Spark would otherwise recompute a view at each use.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from leadscore.features.build import (
    feature_catalog,
    feature_frame,
    feature_query,
    label_query,
    timestamp_sql,
)
from leadscore.schema import CONTENT_TYPES
from leadscore.spark.sql import spark_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def feature_schema(windows_days: Sequence[int], content_types: Sequence[str] = CONTENT_TYPES) -> pa.Schema:
    """The Arrow schema of the feature table: lead_id, as_of, then the catalog's columns."""
    catalog = feature_catalog(windows_days, content_types)
    fields = [pa.field("lead_id", pa.string()), pa.field("as_of", pa.timestamp("us"))]
    fields += [pa.field(n, pa.string() if n in catalog.categorical else pa.float64()) for n in catalog.names]
    return pa.schema(fields)


def unpack_batches(batches: Iterator[pa.RecordBatch], *, windows_days: Sequence[int],
                   content_types: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """The `mapInArrow` function: rows of the feature query -> feature rows (`feature_frame`)."""
    schema = feature_schema(windows_days, content_types)
    for batch in batches:
        frame = feature_frame(pa.Table.from_batches([batch]), windows_days, content_types)
        yield from pa.Table.from_pandas(frame, schema=schema, preserve_index=False).to_batches()


def build_features_spark(
    spark: SparkSession,
    as_of_dates: Sequence[dt.datetime],
    *,
    leads: DataFrame,
    events: DataFrame,
    outcomes: DataFrame,
    target_stage: str,
    max_lead_age_days: int,
    windows_days: Sequence[int],
    half_life_days: float,
    content_types: Sequence[str] = CONTENT_TYPES,
) -> DataFrame:
    """`leadscore.features.build.build_features` on Spark: the features of every eligible lead
    at each `as_of` from the CRM contract's `leads` (PII-free, with the derived flags, as
    ingest writes them), `events` and `outcomes` DataFrames. Lazy, except the steps."""
    if not as_of_dates:
        raise ValueError("no as_of dates to build features for")
    suffix = uuid.uuid4().hex[:10]
    sources: Mapping[str, str] = {name: f"_{name}_src_{suffix}" for name in ("leads", "events", "outcomes")}
    for name, frame in (("leads", leads), ("events", events), ("outcomes", outcomes)):
        frame.createOrReplaceTempView(sources[name])
    steps, final = feature_query([timestamp_sql(d) for d in sorted(set(as_of_dates))], target_stage, max_lead_age_days,
                                windows_days, half_life_days, content_types, sources=sources)
    for name, sql in steps.items():
        spark.sql(spark_sql(sql)).localCheckpoint(eager=True).createOrReplaceTempView(name)
    query = spark.sql(spark_sql(final, ordered=False))
    unpack = functools.partial(unpack_batches, windows_days=tuple(windows_days), content_types=tuple(content_types))
    from pyspark.sql.pandas.types import from_arrow_schema

    return query.mapInArrow(unpack, from_arrow_schema(feature_schema(windows_days, content_types)))


def add_labels_spark(spark: SparkSession, features: DataFrame, outcomes: DataFrame, *, target_stage: str,
                     horizon_days: int, cutoff: dt.datetime) -> DataFrame:
    """`leadscore.features.build.add_labels` on Spark (the same `label_query`): `features`
    with a `label` column after `as_of`, only rows whose label window closes by `cutoff`."""
    suffix = uuid.uuid4().hex[:10]
    keys, outs = f"_keys_{suffix}", f"_outcomes_{suffix}"
    features.select("lead_id", "as_of").createOrReplaceTempView(keys)
    outcomes.createOrReplaceTempView(outs)
    labels = spark.sql(spark_sql(label_query(keys, outs, target_stage=target_stage,
                                             horizon_days=horizon_days, cutoff=cutoff)))
    rest = [c for c in features.columns if c not in ("lead_id", "as_of")]
    return features.join(labels, ["lead_id", "as_of"], "inner").select("lead_id", "as_of", "label", *rest)
