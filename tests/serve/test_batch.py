"""The batch job: feature parity with training, the score contract in each format,
idempotent reruns and quarantine within budget."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from leadscore.features.build import build_features
from leadscore.serve.batch import SCORE_COLUMNS, feature_kwargs, open_crm, score_leads
from leadscore.serve.publish import read_scores
from tests.serve.trained import AS_OF, DOMAINS, FEATURES

pytestmark = pytest.mark.slow  # trains LightGBM or runs whole stages; `make test-fast` skips it


def _score(t, out, **kw):
    args = dict(source_kind="duckdb", source=t.raw, out=out, model_uri=str(t.scorer), as_of=AS_OF,
                features=FEATURES, free_mail_domains=DOMAINS, chunk_size=250, progress=False)
    return score_leads(**{**args, **kw})


def test_scoring_features_equal_the_training_path(trained):  # noqa: F811
    con, _ = open_crm("duckdb", trained.raw, DOMAINS)  # the raw source, PII dropped in DuckDB
    try:
        scoring = build_features(con, [AS_OF], **feature_kwargs(FEATURES))
    finally:
        con.close()
    train = trained.table[trained.table["as_of"] == AS_OF].drop(columns="label").reset_index(drop=True)
    with duckdb.connect(str(trained.crm), read_only=True) as con:  # what the features stage reads
        stage = build_features(con, [AS_OF], **feature_kwargs(FEATURES))
    pd.testing.assert_frame_equal(scoring, stage)
    # the training table keeps only rows with a mature label: those must match exactly
    pd.testing.assert_frame_equal(scoring[scoring.lead_id.isin(train.lead_id)].reset_index(drop=True), train)
    assert len(train) > 100


@pytest.mark.parametrize("fmt", ["parquet", "csv", "duckdb"])
def test_score_writes_the_contract(trained, tmp_path, fmt):  # noqa: F811
    out = tmp_path / f"scores.{fmt}"
    result = _score(trained, out)
    df = read_scores(out)
    assert list(df.columns) == list(SCORE_COLUMNS)
    assert len(df) == result.leads_scored > 100 and df["lead_id"].is_unique
    assert df["probability"].between(0, 1).all()
    assert (df["grade"] == df["fit_grade"] + df["engagement_grade"]).all()
    assert df["run_id"].nunique() == 1 and df["model_version"].nunique() == 1
    reasons = df["reasons"].iloc[0]
    reasons = list(reasons)
    assert reasons and {"code", "text", "contribution"} <= set(reasons[0])
    if fmt == "csv":  # reasons are JSON text in CSV
        assert isinstance(json.loads(pd.read_csv(out, dtype=str)["reasons"].iloc[0]), list)
    if fmt != "duckdb":
        assert out.with_name(f"scores.quarantine.{fmt}").exists()


def test_rerun_gives_identical_rows(trained, tmp_path):  # noqa: F811
    out = tmp_path / "scores.parquet"
    a = _score(trained, out)
    first = pd.read_parquet(out)
    b = _score(trained, out, chunk_size=100)  # same run: the manifest's chunks and scored_at win
    assert a.run_id == b.run_id
    pd.testing.assert_frame_equal(pd.read_parquet(out), first)


def test_rows_with_problems_are_quarantined_within_budget(trained, tmp_path):  # noqa: F811
    src = tmp_path / "crm.duckdb"
    with duckdb.connect(str(src)) as con:
        con.execute(f"ATTACH '{trained.raw}' AS r (READ_ONLY)")
        for t in ("leads", "events", "outcomes"):
            con.execute(f"CREATE TABLE {t} AS SELECT * FROM r.{t}")
        victim = con.execute("SELECT max(lead_id) FROM events").fetchone()[0]
        con.execute(f"UPDATE events SET occurred_at = NULL WHERE lead_id = '{victim}'")
    out = tmp_path / "scores.parquet"
    result = _score(trained, out, source=src, quarantine_budget=0.01)
    q = pd.read_parquet(tmp_path / "scores.quarantine.parquet")
    assert result.leads_quarantined == 1
    assert q[["lead_id", "table_name", "column_name"]].values.tolist()[0] == [victim, "events", "occurred_at"]
    assert victim not in set(pd.read_parquet(out)["lead_id"])


def test_published_scores_equal_the_pyfunc_model(trained, tmp_path):  # noqa: F811
    """The batch job's Arrow fast path gives exactly what `mlflow.pyfunc` predicts."""
    import mlflow.pyfunc

    out = tmp_path / "scores.parquet"
    _score(trained, out)
    published = read_scores(out).sort_values("lead_id").reset_index(drop=True)
    con, _ = open_crm("duckdb", trained.raw, DOMAINS)
    try:
        feats = build_features(con, [AS_OF], **feature_kwargs(FEATURES))
    finally:
        con.close()
    feats = feats[feats.lead_id.isin(published.lead_id)].sort_values("lead_id").reset_index(drop=True)
    model = mlflow.pyfunc.load_model(str(trained.scorer))
    want = model.predict(feats[trained.catalog.names])
    assert len(want) == len(published) > 100
    for col in ("probability", "rule_points"):
        assert (published[col] - want[col]).abs().max() < 1e-12
    for col in ("grade", "fit_grade", "engagement_grade", "rule_grade"):
        assert (published[col] == want[col]).all(), col
    got_reasons = [[dict(r) for r in rs] for rs in published["reasons"]]
    assert got_reasons == [list(rs) for rs in want["reasons"]]
