"""The SparkSession leadscore uses: `local_session` builds one for `local[N]` with settings
that keep small jobs fast and their results deterministic; `get_session` returns the active
session, or builds a local one.

Settings (`LOCAL_CONF`): few shuffle partitions (the default 200 costs seconds on tiny
data), no UI, the session time zone UTC (CRM timestamps are UTC; Spark otherwise renders
them in the JVM's zone), timestamps without time zone by default (DuckDB's and the score
contract's `timestamp`), Arrow for pandas and Arrow exchange (`mapInArrow`, `toPandas`,
`createDataFrame(pandas)`), the Python workers reused so a model is loaded once per
worker, not once per task. The workers run this process's interpreter (`PYSPARK_PYTHON`,
unless set: `sys.executable`, the venv where leadscore is installed, not the first `python3`
on PATH).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOCAL_CONF: dict[str, str] = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.python.worker.reuse": "true",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}


def local_session(cores: int = 2, memory: str = "1g", *, app_name: str = "leadscore",
                  conf: dict[str, str] | None = None) -> SparkSession:
    """A SparkSession on `local[cores]` with `LOCAL_CONF` (`conf` adds or overrides keys)
    and `memory` for the driver (which is the executor in local mode). Returns the running
    session when there is one: Spark allows one per process, and then its settings stand."""
    from pyspark.sql import SparkSession

    logging.getLogger("py4j").setLevel(logging.WARNING)  # its INFO lines at shutdown hit closed streams
    builder = (SparkSession.builder.master(f"local[{int(cores)}]").appName(app_name)
               .config("spark.driver.memory", memory))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # read by SparkContext, not a conf
    for key, value in {**LOCAL_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("FATAL")  # errors reach the caller as exceptions, named by leadscore
    return session


def get_session() -> SparkSession:
    """The active SparkSession (a cluster's, under spark-submit), else a `local_session`."""
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() or local_session()
