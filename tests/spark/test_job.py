"""`leadscore score --engine spark`: the DuckDB job's contract, quarantine and exit codes."""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.errors import ConfigError, InputError
from leadscore.serve.batch import QuarantineBudgetExceeded, score_leads
from leadscore.spark.job import score_spark
from tests.builders import canary_hits
from tests.serve.trained import AS_OF, DOMAINS, FEATURES

JOB = dict(as_of=AS_OF, features=FEATURES, free_mail_domains=DOMAINS, control_share=0.2, control_salt="job")


def _parquet_crm(raw, folder, **edits) -> str:
    """The raw CRM (with personal data) as a folder of Parquet files; `edits`: per table, a
    SQL SELECT over `t` replacing it."""
    folder.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(raw), read_only=True) as con:
        for name in ("leads", "events", "outcomes"):
            select = edits.get(name, "SELECT * FROM t").replace(" t", f" {name}", 1).replace("FROM t", f"FROM {name}")
            con.execute(f"COPY ({select}) TO '{folder / (name + '.parquet')}' (FORMAT parquet)")
    return str(folder)


@pytest.mark.spark
@pytest.mark.slow  # a JVM and two scoring runs: ~30 s
def test_spark_job_publishes_what_the_duckdb_job_publishes(spark, trained, tmp_path):
    source = _parquet_crm(trained.raw, tmp_path / "crm")
    duck = tmp_path / "duck" / "scores.parquet"
    score_leads(source_kind="parquet", source=source, out=duck, model_uri=str(trained.scorer), progress=False,
                chunk_size=150, **JOB)
    out = tmp_path / "spark_scores"
    summary = score_spark(spark, source_kind="parquet", source=source, out=str(out),
                          model_uri=str(trained.scorer), **JOB)

    expected = pq.read_table(duck).sort_by("lead_id")
    got = pq.read_table(out / "scores").sort_by("lead_id")
    assert summary["leads_scored"] == got.num_rows == expected.num_rows > 100
    assert got.schema == expected.schema
    assert got.column("lead_id").equals(expected.column("lead_id"))
    for name in ("grade", "fit_grade", "engagement_grade", "rule_grade", "rule_points", "arm", "model_version"):
        assert got.column(name).equals(expected.column(name)), name
    p, q = got.column("probability").to_numpy(), expected.column("probability").to_numpy()
    assert abs(p - q).max() <= 1e-12  # the decay feature may differ in its last bit (pow)
    codes = [[r["code"] for r in rs] for rs in got.column("reasons").to_pylist()]
    assert codes == [[r["code"] for r in rs] for rs in expected.column("reasons").to_pylist()]
    assert (out / "_manifest.json").is_file() and (out / "quarantine").is_dir()
    assert not canary_hits(out, set()), "personal data in the Spark output"
    assert not list(tmp_path.glob(".spark_scores.*")), "staging left behind"


@pytest.mark.spark
@pytest.mark.slow
def test_spark_job_bad_input_is_named_and_publishes_nothing(spark, trained, tmp_path):
    out = tmp_path / "out"
    missing = _parquet_crm(trained.raw, tmp_path / "a", leads="SELECT * EXCLUDE (created_at) FROM t")
    with pytest.raises(InputError, match=r"leads\.parquet: missing required column\(s\) \['created_at'\]"):
        score_spark(spark, source_kind="parquet", source=missing, out=str(out), model_uri=str(trained.scorer), **JOB)
    vocab = _parquet_crm(trained.raw, tmp_path / "b",
                         events="SELECT * REPLACE ('tweet' AS event_type) FROM t")
    with pytest.raises(InputError, match="column 'event_type' has .* outside the allowed categories"):
        score_spark(spark, source_kind="parquet", source=vocab, out=str(out), model_uri=str(trained.scorer), **JOB)
    budget = _parquet_crm(trained.raw, tmp_path / "c",
                          leads="SELECT * REPLACE (CASE WHEN hash(lead_id) % 10 = 0 THEN NULL ELSE source END "
                                "AS source) FROM t")
    with pytest.raises(QuarantineBudgetExceeded, match="null source"):
        score_spark(spark, source_kind="parquet", source=budget, out=str(out), model_uri=str(trained.scorer), **JOB)
    corrupt = _parquet_crm(trained.raw, tmp_path / "d")
    (tmp_path / "d" / "leads.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"leads\.parquet: table 'leads' is not readable Parquet"):
        score_spark(spark, source_kind="parquet", source=corrupt, out=str(out), model_uri=str(trained.scorer), **JOB)
    assert not out.exists()

    result = CliRunner().invoke(app, ["score", "--engine", "spark", "--source", missing, "--out", str(out),
                                      "--model", str(trained.scorer), "--as-of", AS_OF.date().isoformat()])
    assert result.exit_code == 1, result.output
    assert "created_at" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["score", "--engine", "spark", "--incremental", "--out", str(out),
                                      "--model", str(trained.scorer)])
    assert result.exit_code == 2 and "not available with --engine spark" in result.output
    result = CliRunner().invoke(app, ["score", "--engine", "flink", "--out", str(out), "--model", str(trained.scorer)])
    assert result.exit_code == 2 and "--engine 'flink'" in result.output


@pytest.mark.spark
@pytest.mark.slow
def test_spark_job_reads_and_writes_spark_tables(spark, trained, tmp_path):
    """`--source-kind table` and `--format table`: the CRM as tables of a database, the
    scores and the quarantine written as tables."""
    source = _parquet_crm(trained.raw, tmp_path / "crm")
    spark.sql("CREATE DATABASE IF NOT EXISTS crm_db")
    spark.sql("CREATE DATABASE IF NOT EXISTS scoring_db")
    for name in ("leads", "events", "outcomes"):
        spark.read.parquet(f"{source}/{name}.parquet").write.mode("overwrite").saveAsTable(f"crm_db.{name}")
    summary = score_spark(spark, source_kind="table", source="crm_db", out="scoring_db.lead_scores",
                          fmt="table", model_uri=str(trained.scorer), **JOB)
    folder = score_spark(spark, source_kind="parquet", source=source, out=str(tmp_path / "ref"),
                         model_uri=str(trained.scorer), **JOB)
    table = spark.table("scoring_db.lead_scores").toArrow().sort_by("lead_id")
    assert summary["leads_scored"] == folder["leads_scored"] == table.num_rows > 100
    ref = pq.read_table(tmp_path / "ref" / "scores").sort_by("lead_id")
    for name in ref.column_names:  # run_id and scored_at name the run, which differs
        if name not in ("run_id", "scored_at"):
            assert table.column(name).to_pylist() == ref.column(name).to_pylist(), name
    assert spark.table("scoring_db.lead_scores_quarantine").columns[:4] == ["lead_id", "table_name", "column_name",
                                                                            "reason"]
    with pytest.raises(ConfigError, match="--out 'x; DROP TABLE y': not a table name"):
        score_spark(spark, source_kind="table", source="crm_db", out="scoring_db.x; DROP TABLE y",
                    fmt="table", model_uri=str(trained.scorer), **JOB)


@pytest.mark.spark
@pytest.mark.slow
def test_a_second_run_in_the_same_session_reads_the_changed_source(spark, trained, tmp_path):
    """Nothing of a run stays cached: the same folder rewritten with half the leads gives the
    count of a fresh session (the first version cached the leads and quarantine)."""
    folder = tmp_path / "crm"
    kw = dict(source_kind="parquet", source=str(folder), model_uri=str(trained.scorer), **JOB)
    first = score_spark(spark, out=str(tmp_path / "a"), **{**kw, "source": _parquet_crm(trained.raw, folder)})
    _parquet_crm(trained.raw, folder, leads="SELECT * FROM t WHERE hash(lead_id) % 2 = 0")
    second = score_spark(spark, out=str(tmp_path / "b"), **kw)
    spark.catalog.clearCache()
    fresh = score_spark(spark, out=str(tmp_path / "c"), **kw)
    assert second["leads_scored"] == fresh["leads_scored"] < first["leads_scored"]
