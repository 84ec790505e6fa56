"""Score a Spark DataFrame of feature rows with the exported MLflow model.

`score_features` takes the feature table of `leadscore.features.build.build_features` (lead_id,
as_of and the catalog's columns) as a Spark DataFrame and returns a Spark DataFrame with
exactly the score contract `leadscore.serve.batch.SCORE_SCHEMA` (`score_schema`). Nothing is
reimplemented: each Arrow batch is turned into the pandas feature frame, scored by the
model's `leadscore.serve.scorer.Scorer.score_arrow` (Arrow reasons; `predict` for an MLflow
model that is not a leadscore export) and shaped by the batch job's `_to_arrow`, so
probabilities, grades, reasons and arms equal the DuckDB batch job's bit for bit.

It runs as `DataFrame.mapInArrow`: Arrow in, Arrow out, the reasons stay a list<struct> column
without per-lead Python objects. Each Python worker loads the model once
(`_worker_model`, through `leadscore.serve.batch.load_scorer_model`, which verifies the
folder's content hash before any of its code runs); the driver loads it first too, to fail
fast on a missing or changed model and to check its signature against the catalog.

`mlflow.pyfunc.spark_udf` is not used: it returns only the model's output columns (so
lead_id, as_of, run_id, scored_at and arm have to be joined back or recomputed), loads the
model without leadscore's verification, and goes through per-row pandas objects for the
reasons (docs/spark.md has the measurement).

`model_uri` must be readable from every worker: a local folder in local mode, a shared
path (or a models:/ URI the workers can reach) on a cluster.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from leadscore.config import FeaturesConfig
from leadscore.errors import InputError
from leadscore.features.build import feature_catalog
from leadscore.serve.batch import (
    SCORE_SCHEMA,
    _to_arrow,
    check_signature,
    inner_scorer,
    load_scorer_model,
    model_version_of,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType


def score_schema() -> StructType:
    """The score contract (`SCORE_SCHEMA`) as a Spark schema; timestamps are TIMESTAMP_NTZ."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(SCORE_SCHEMA)


@functools.lru_cache(maxsize=4)
def _worker_model(uri: str) -> tuple[Any, Any]:
    """(MLflow model, its leadscore Scorer or None), loaded and verified once per process."""
    model = load_scorer_model(uri)
    return model, inner_scorer(model)


def score_batches(batches: Iterator[pa.RecordBatch], *, model_uri: str, names: Sequence[str],
                  model_version: str, run_id: str, scored_at: dt.datetime, control_share: float,
                  control_salt: str) -> Iterator[pa.RecordBatch]:
    """The `mapInArrow` function: each batch of feature rows -> its score contract rows,
    computed as in `leadscore.serve.batch.score_leads`."""
    model, fast = _worker_model(model_uri)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        feats = pa.Table.from_batches([batch]).to_pandas()
        if fast is not None:
            scored, reasons = fast.score_arrow(feats[list(names)])
        else:
            scored, reasons = model.predict(feats[list(names)]), None
        table = _to_arrow(feats, scored, model_version=model_version, run_id=run_id,
                          scored_at=scored_at, reasons=reasons, control_share=control_share,
                          control_salt=control_salt)
        yield from table.to_batches()


def score_features(features: DataFrame, model_uri: str, *, run_id: str, scored_at: dt.datetime,
                   feature_config: FeaturesConfig | None = None, control_share: float = 0.0,
                   control_salt: str = "leadscore") -> DataFrame:
    """The score contract for each row of `features` (a Spark DataFrame with lead_id, as_of
    and the catalog's columns of `feature_config`, the training settings; default
    `FeaturesConfig()`), scored with the model at `model_uri`. Lazy: nothing runs until
    an action. `scored_at`: naive UTC, as in the batch job (an aware one is converted).

    Raises `InputError` when columns are missing, `ModelError` for a missing, changed or
    mismatched model."""
    cfg = feature_config or FeaturesConfig()
    catalog = feature_catalog(cfg.windows_days, cfg.content_types)
    missing = [c for c in ("lead_id", "as_of", *catalog.names) if c not in features.columns]
    if missing:
        raise InputError(f"the Spark feature frame lacks column(s) {missing}; build it with "
                         "leadscore.features.build.build_features and the training settings")
    if scored_at.tzinfo is not None:  # the contract's timestamps are naive UTC
        scored_at = scored_at.astimezone(dt.UTC).replace(tzinfo=None)
    model = load_scorer_model(model_uri)  # on the driver: fail before any task starts
    check_signature(model, catalog.names, catalog.categorical, model_uri)
    fn = functools.partial(score_batches, model_uri=model_uri, names=tuple(catalog.names),
                           model_version=model_version_of(model), run_id=run_id,
                           scored_at=scored_at, control_share=control_share,
                           control_salt=control_salt)
    return features.select("lead_id", "as_of", *catalog.names).mapInArrow(fn, score_schema())
