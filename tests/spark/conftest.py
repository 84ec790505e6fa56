"""Fixtures for the Spark tests: one local SparkSession for the whole test session (stopped
at the end), the tiny trained scorer of tests/serve, and its CRM's features built by DuckDB."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from leadscore.features.build import build_features
from leadscore.serve.batch import feature_kwargs
from tests.serve.trained import AS_OF, FEATURES, Trained, build_trained


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    return build_trained(tmp_path_factory.mktemp("trained"))


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from leadscore.spark.session import local_session

    warehouse = tmp_path_factory.mktemp("spark-warehouse")  # tables never land in the checkout
    session = local_session(cores=2, conf={"spark.sql.warehouse.dir": str(warehouse)})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def features(trained) -> pd.DataFrame:
    """The feature table as of AS_OF, as the features stage builds it (DuckDB, ingested CRM)."""
    with duckdb.connect(str(trained.crm), read_only=True) as con:
        return build_features(con, [AS_OF], **feature_kwargs(FEATURES))
