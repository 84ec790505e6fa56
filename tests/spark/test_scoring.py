"""Batch scoring on Spark: the score contract, row for row equal to the DuckDB batch job."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from leadscore.errors import InputError
from leadscore.serve.batch import SCORE_SCHEMA, score_leads
from leadscore.spark.scoring import score_features, score_schema
from tests.serve.trained import AS_OF, DOMAINS, FEATURES


@pytest.mark.spark
@pytest.mark.slow  # a JVM and a trained model: ~20 s; one test, so one xdist worker starts Spark
def test_spark_scores_equal_the_batch_job_row_for_row(spark, trained, features, tmp_path):
    out = tmp_path / "scores.parquet"
    run = score_leads(source_kind="duckdb", source=trained.raw, out=out, model_uri=str(trained.scorer),
                      as_of=AS_OF, features=FEATURES, free_mail_domains=DOMAINS, chunk_size=100,
                      progress=False, control_share=0.2, control_salt="spark-test")
    published = pq.read_table(out).sort_by("lead_id")
    assert published.num_rows > 100

    scored_at = published.column("scored_at")[0].as_py()
    rows = features[features.lead_id.isin(published.column("lead_id").to_pylist())]  # quarantine
    sdf = spark.createDataFrame(rows).repartition(3)  # several workers and Arrow batches
    scored = score_features(sdf, str(trained.scorer), run_id=run.run_id, scored_at=scored_at,
                            feature_config=FEATURES, control_share=0.2, control_salt="spark-test")
    assert scored.schema == score_schema() and scored.columns == SCORE_SCHEMA.names
    got = scored.toArrow().sort_by("lead_id")

    assert got.schema == SCORE_SCHEMA
    assert got.column("lead_id").to_pylist() == published.column("lead_id").to_pylist()
    for name in ("probability", "rule_points"):  # exactly, not approximately
        assert got.column(name).to_pylist() == published.column(name).to_pylist(), name
    for name in ("grade", "fit_grade", "engagement_grade", "rule_grade", "arm"):
        assert got.column(name).to_pylist() == published.column(name).to_pylist(), name
    assert got.column("reasons").to_pylist() == published.column("reasons").to_pylist()
    assert set(got.column("arm").to_pylist()) == {"control", "model"}
    assert got.equals(published.cast(SCORE_SCHEMA))  # and every other column of the contract


def test_a_missing_feature_column_is_an_input_error(tmp_path):
    """Checked on the frame's columns before the model is loaded or Spark runs anything."""
    frame = SimpleNamespace(columns=["lead_id", "as_of", "seniority"])
    with pytest.raises(InputError, match="engagement_decayed"):
        score_features(frame, str(tmp_path / "no-model"), run_id="r", scored_at=dt.datetime(2025, 7, 1))
