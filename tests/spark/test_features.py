"""The point-in-time features and labels on Spark equal DuckDB's, row for row, from one definition."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from leadscore.features.build import add_labels, build_features
from leadscore.serve.batch import feature_kwargs
from leadscore.spark.features import add_labels_spark, build_features_spark
from tests.serve.trained import AS_OF, FEATURES

DATES = [AS_OF - dt.timedelta(days=61), AS_OF - dt.timedelta(days=30), AS_OF]
# the running decay sum goes through `pow`: Java's StrictMath and the C library may differ in
# the last bit; every other column is compared exactly
ULP_TOLERANT = {"engagement_decayed": 1e-12}


@pytest.mark.spark
@pytest.mark.slow  # a JVM: ~15 s
def test_spark_features_and_labels_equal_duckdb_row_for_row(spark, trained):
    labels = dict(target_stage=FEATURES.target_stage, horizon_days=30, cutoff=AS_OF)
    with duckdb.connect(str(trained.crm), read_only=True) as con:
        expected = add_labels(con, build_features(con, DATES, **feature_kwargs(FEATURES)), **labels)
        tables = {t: con.execute(f"SELECT * FROM {t}").df() for t in ("leads", "events", "outcomes")}
    frames = {t: spark.createDataFrame(df).repartition(3) for t, df in tables.items()}
    spark_features = build_features_spark(spark, DATES, **frames, **feature_kwargs(FEATURES))
    got = add_labels_spark(spark, spark_features, frames["outcomes"], **labels).toPandas()
    got = got.sort_values(["as_of", "lead_id"]).reset_index(drop=True)

    assert len(expected) > 200 and expected.as_of.nunique() == 2  # AS_OF's window is not closed
    assert 0 < expected.label.sum() < len(expected)
    assert list(got.columns) == list(expected.columns)
    for name in expected.columns:
        a, b = expected[name], got[name]
        assert a.dtype == b.dtype, name
        if name in ULP_TOLERANT:
            np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=ULP_TOLERANT[name], atol=0, err_msg=name)
        else:
            pd.testing.assert_series_equal(b, a, check_exact=True, obj=name)
    assert (expected.filter(like="_90d").sum().sum()) > 0  # the windows hold events


@pytest.mark.spark
def test_lead_flags_and_title_parsing_equal_duckdb_on_messy_leads(spark):
    """The ingest SQL (personal values -> flags) and the title regexes on Java's regex engine:
    junk e-mails, placeholder names, free mail, empty and odd titles."""
    from leadscore.config import IngestConfig
    from leadscore.data.ingest import leads_sql
    from leadscore.features.build import titles_sql
    from leadscore.spark.sql import spark_sql
    from tests.builders import make_crm

    leads = make_crm()["leads"]
    leads = pd.concat([leads, leads.assign(lead_id=leads.lead_id + "x", email=" Ann.LEE@Gmail.com ",
                                           job_title=["", None, "VP, Sales & Ops", "ceo", "  Head of IT ", "x"],
                                           first_name=["伟", "Дмитрий", "x", "---", "José", "aaa"],
                                           last_name=["王", "Иванов", "Lee", "Lee", "n/a", "Lee"])])
    sql = leads_sql("raw_leads", IngestConfig().free_mail_domains)
    with duckdb.connect() as con:
        con.register("raw_leads", leads)
        expected = con.execute(f"{sql} ORDER BY lead_id").df()
        titles = con.execute(f"{titles_sql('raw_leads')} ORDER BY job_title NULLS FIRST").df()
    spark.createDataFrame(leads).createOrReplaceTempView("raw_leads")
    got = spark.sql(spark_sql(sql)).toPandas().sort_values("lead_id").reset_index(drop=True)
    got_titles = spark.sql(spark_sql(titles_sql("raw_leads"))).toPandas()
    got_titles = got_titles.sort_values("job_title", na_position="first").reset_index(drop=True)
    for flag in ("free_mail", "email_invalid", "placeholder_name"):
        assert got[flag].tolist() == expected[flag].tolist(), flag
    assert expected[["free_mail", "email_invalid", "placeholder_name"]].any().all()
    assert got_titles.astype(str).values.tolist() == titles.astype(str).values.tolist()
