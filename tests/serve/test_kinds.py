"""One scorer contract for every kind of model (lightgbm, logistic, rules): the exported MLflow
model gives exactly the in-memory scorer's output, with the same signature and columns; the
logistic scorer is exact and graded by its own cut points; the rules scorer serves the
rules; the batch job scores every kind; folders exported before kinds still load."""

from __future__ import annotations

import shutil

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from leadscore.explain.grades import load_grading
from leadscore.explain.linear import LinearExplainer
from leadscore.explain.reasons import describe_one
from leadscore.features.build import build_features
from leadscore.io import read_json, write_json
from leadscore.modeling.baseline import load_rules
from leadscore.serve.batch import (
    SCORE_COLUMNS,
    feature_kwargs,
    open_crm,
    score_leads,
    staging_dir,
)
from leadscore.serve.publish import read_scores
from leadscore.serve.scorer import OUTPUT_COLUMNS, Scorer
from tests.builders import canary_hits
from tests.serve.trained import AS_OF, DOMAINS, FEATURES

pytestmark = pytest.mark.slow  # uses the trained scorers; `make test-fast` skips it

KINDS = ("lightgbm", "logistic", "rules")


def _features(t) -> pd.DataFrame:
    return t.table[t.table["as_of"] == AS_OF].reset_index(drop=True)[t.catalog.names]


def _in_memory(kind: str, t, k) -> Scorer:
    """The scorer built from the in-memory models (no export, no MLflow)."""
    if kind == "lightgbm":
        return Scorer.from_model(k.lightgbm, load_grading(t.models / "grading.json"), t.catalog, k.rules)
    if kind == "logistic":
        return Scorer.from_model(k.logistic, k.logistic_cuts, t.catalog, k.rules)
    return Scorer.from_model(k.rules, None, t.catalog)


@pytest.mark.parametrize("kind", KINDS)
def test_exported_scorer_gives_exactly_the_in_memory_output(kind, trained, kinds):  # noqa: F811
    X = _features(trained)
    model = mlflow.pyfunc.load_model(str(kinds.scorers[kind]))
    got = model.predict(X)
    scorer = _in_memory(kind, trained, kinds)
    want = scorer.score(X).reset_index(drop=True)
    assert scorer.kind == kind and len(got) == len(X) > 100
    assert list(got.columns) == list(OUTPUT_COLUMNS)
    pd.testing.assert_frame_equal(got.drop(columns="reasons"), want.drop(columns="reasons"))
    assert got["reasons"].tolist() == want["reasons"].tolist()
    assert sum(map(len, got["reasons"])) > len(got)  # reasons are given
    assert set(got["grade"]) <= {f"{a}{d}" for a in "ABCD" for d in "1234"}
    assert (got["grade"] == got["fit_grade"] + got["engagement_grade"]).all()
    assert got["rule_points"].notna().all() and got["rule_grade"].notna().all()
    assert model.metadata.metadata["kind"] == kind
    assert read_json(kinds.scorers[kind] / "artifacts/version.json")["kind"] == kind
    # the one input signature: the catalog's features, categoricals as strings
    sig = {c.name: str(c.type).replace("DataType.", "") for c in model.metadata.get_input_schema().inputs}
    cat = trained.catalog
    assert sig == {n: ("string" if n in cat.categorical else "double") for n in cat.names}


def test_each_kind_exports_its_own_artifacts_and_version(kinds):  # noqa: F811
    files = {k: sorted(p.name for p in (kinds.scorers[k] / "artifacts").iterdir()) for k in KINDS}
    assert files["rules"] == ["feature_catalog.json", "rules.json", "version.json"]
    assert files["logistic"] == sorted(["model.json", "calibrator.json", "grading.json",
                                        "feature_catalog.json", "rules.json", "version.json"])
    assert "model.txt" in files["lightgbm"] and "model.json" not in files["lightgbm"]
    versions = {k: read_json(kinds.scorers[k] / "artifacts/version.json") for k in KINDS}
    assert len({v["model_version"] for v in versions.values()}) == 3
    assert versions["rules"]["calibration"] == "isotonic"
    assert versions["logistic"]["git_commit"] == "test"  # from the logistic folder's metadata
    every = [p.name for k in KINDS for p in kinds.scorers[k].rglob("*") if p.is_file()]
    assert not [f for f in every if f.endswith((".pkl", ".pickle", ".joblib"))]


def test_logistic_scorer_is_exact_and_graded_by_its_own_cut_points(trained, kinds):  # noqa: F811
    scorer = Scorer.from_dir(kinds.scorers["logistic"] / "artifacts")
    assert scorer.kind == "logistic" and isinstance(scorer.explainer, LinearExplainer)
    X = _features(trained)
    full, _ = scorer.explain(X)
    np.testing.assert_allclose(full["log_odds"], kinds.logistic.decision_function(X), rtol=0, atol=1e-9)
    np.testing.assert_allclose(full["probability"], kinds.logistic.predict_proba(X)[:, 1], rtol=0, atol=1e-12)
    contrib = scorer.contributions_frame(X)
    assert list(contrib.columns) == scorer.items == scorer.feature_names
    np.testing.assert_allclose(contrib.sum(axis=1) + scorer.explainer.expected_value(), full["log_odds"],
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(contrib[scorer.groups["fit"]].sum(axis=1), full["fit_score"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(full["fit_grade"], kinds.logistic_cuts.letter(full["fit_score"].to_numpy()))
    np.testing.assert_array_equal(full["engagement_grade"],
                                  kinds.logistic_cuts.digit(full["engagement_score"].to_numpy()))
    assert scorer.item_label("seniority") == trained.catalog["seniority"].label


def test_rules_scorer_serves_the_rules_with_reasons_in_points(trained, kinds):  # noqa: F811
    scorer = Scorer.from_dir(kinds.scorers["rules"] / "artifacts")
    rules, cat = kinds.rules, trained.catalog
    X = _features(trained)
    got = scorer.score(X)
    assert scorer.kind == "rules" and scorer.model is None
    np.testing.assert_array_equal(got["probability"], rules.predict_proba(X)[:, 1])
    g = rules.grade(X)
    for col in ("fit_grade", "engagement_grade", "rule_grade"):
        assert (got[col] == g[col]).all(), col
    assert (got["grade"] == g["rule_grade"]).all()
    np.testing.assert_array_equal(got["rule_points"], g["rule_points"])
    items = scorer.contributions_frame(X)
    assert list(items.columns) == [i.name for i in rules.items()] == scorer.items
    np.testing.assert_allclose(items.sum(axis=1), got["rule_points"], rtol=0, atol=1e-9)
    checked = 0
    for (_, row), reasons, lead in zip(items.iterrows(), got["reasons"], X.itertuples(index=False),
                                       strict=True):
        pos = [r for r in reasons if r["code"].endswith("+")]
        neg = [r for r in reasons if r["code"].endswith("-")]
        # the largest positive and most negative point items, in order, with their points
        assert [r["contribution"] for r in pos] == sorted(row[row > 0], reverse=True)[:3]
        assert [r["contribution"] for r in neg] == sorted(row[row < 0])[:3]
        for r in reasons:
            item = r["code"][:-1]
            assert r["contribution"] == row[item]
            assert r["text"] == describe_one(cat[item], getattr(lead, item))
            checked += 1
    assert checked > len(X)
    assert scorer.item_label("pricing_page_view_90d") == next(
        i.label for i in rules.items() if i.name == "pricing_page_view_90d")
    assert "points" in scorer.item_label("pricing_page_view_90d")


@pytest.mark.parametrize("kind", ["logistic", "rules"])
def test_batch_job_scores_a_logistic_and_a_rules_scorer(kind, trained, kinds, tmp_path):  # noqa: F811
    out = tmp_path / "out" / "scores.parquet"
    uri = str(kinds.scorers[kind])
    result = score_leads(source_kind="duckdb", source=trained.raw, out=out, model_uri=uri, as_of=AS_OF,
                         features=FEATURES, free_mail_domains=DOMAINS, chunk_size=250, progress=False)
    published = read_scores(out).sort_values("lead_id").reset_index(drop=True)
    assert list(published.columns) == list(SCORE_COLUMNS)
    assert len(published) == result.leads_scored > 100 and published["lead_id"].is_unique
    assert read_json(staging_dir(out, result.run_id) / "manifest.json")["model_kind"] == kind
    assert result.model_version == read_json(kinds.scorers[kind] / "artifacts/version.json")["model_version"]
    con, _ = open_crm("duckdb", trained.raw, DOMAINS)
    try:
        feats = build_features(con, [AS_OF], **feature_kwargs(FEATURES))
    finally:
        con.close()
    feats = feats[feats.lead_id.isin(published.lead_id)].sort_values("lead_id").reset_index(drop=True)
    want = mlflow.pyfunc.load_model(uri).predict(feats[trained.catalog.names])
    assert len(want) == len(published)
    for col in ("probability", "rule_points"):
        assert (published[col] - want[col]).abs().max() < 1e-12, col
    for col in ("grade", "fit_grade", "engagement_grade", "rule_grade"):
        assert (published[col] == want[col]).all(), col
    # DuckDB may sum a chunk's decayed engagement in another order (1 ulp): the logistic
    # model is continuous in it, so contributions agree to 1e-12, codes and texts exactly
    got_reasons = [[dict(r) for r in rs] for rs in published["reasons"]]
    want_reasons = [list(rs) for rs in want["reasons"]]
    assert [[(r["code"], r["text"]) for r in rs] for rs in got_reasons] == \
        [[(r["code"], r["text"]) for r in rs] for rs in want_reasons]
    np.testing.assert_allclose([r["contribution"] for rs in got_reasons for r in rs],
                               [r["contribution"] for rs in want_reasons for r in rs], rtol=0, atol=1e-12)
    assert canary_hits(tmp_path / "out", exclude=set()) == {}  # no personal data, reasons included


def test_a_folder_exported_before_kinds_still_loads_as_lightgbm(trained, tmp_path):  # noqa: F811
    current = Scorer.from_dir(trained.scorer / "artifacts")
    old = tmp_path / "old"
    shutil.copytree(trained.scorer / "artifacts", old)
    version = read_json(old / "version.json")
    assert version.pop("kind") == "lightgbm"
    write_json(version, old / "version.json")
    loaded = Scorer.from_dir(old)
    assert loaded.kind == "lightgbm"
    X = _features(trained).head(60)
    pd.testing.assert_frame_equal(loaded.score(X), current.score(X))
    write_json({**version, "kind": "logistic"}, old / "version.json")  # the recorded kind wins
    with pytest.raises(FileNotFoundError, match=r"logistic scorer artifacts missing: \['model'\]"):
        Scorer.from_dir(old)
    write_json({**version, "kind": "forest"}, old / "version.json")
    with pytest.raises(ValueError, match="unknown scorer kind"):
        Scorer.from_dir(old)


def test_export_stage_exports_the_rules_when_the_evaluation_chose_them(trained, tmp_path):  # noqa: F811
    from typer.testing import CliRunner

    from pipelines import export as export_stage

    (tmp_path / "params.yaml").write_text("export:\n  register_model: false\n")
    write_json({"champion": {"name": "rules"}}, tmp_path / "evaluate.json")
    write_json({"champion": {"name": "forest"}}, tmp_path / "bad.json")
    m = trained.models
    args = ["--params", str(tmp_path / "params.yaml"), "--evaluate", str(tmp_path / "evaluate.json"),
            "--models", str(tmp_path / "none"),
            "--rules", str(m / "rules.json"), "--catalog", str(m / "feature_catalog.json"),
            "--grading", str(tmp_path / "none.json"), "--out", str(tmp_path / "scorer"),
            "--metrics", str(tmp_path / "export.json")]
    result = CliRunner().invoke(export_stage.app, args)
    assert result.exit_code == 0, result.output
    summary = read_json(tmp_path / "export.json")
    assert summary["kind"] == "rules"
    model = mlflow.pyfunc.load_model(str(tmp_path / "scorer"))
    assert model.metadata.metadata == {"model_version": summary["model_version"], "kind": "rules"}
    X = _features(trained).head(20)
    np.testing.assert_array_equal(model.predict(X)["rule_points"], load_rules(m / "rules.json").points(X)["total_points"])
    bad = CliRunner().invoke(export_stage.app, [*args[:2], "--evaluate", str(tmp_path / "bad.json"), *args[4:]])
    assert bad.exit_code == 1, bad.output  # an evaluation naming no known kind is bad input
