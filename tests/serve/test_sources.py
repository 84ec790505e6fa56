"""The artifacts of each kind of scorer (`scorer_sources`, `collect_artifacts`), on tiny models
(no LightGBM training, no MLflow)."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.config import TrainRulesConfig
from leadscore.errors import ConfigError, ModelError
from leadscore.explain.contributions import Explainer, group_sums
from leadscore.explain.grades import fit_grade_cuts, save_grading
from leadscore.features.catalog import save_catalog
from leadscore.io import read_json
from leadscore.modeling.baseline import PointsRuleClassifier, save_rules
from leadscore.modeling.calibration import Calibrator
from leadscore.modeling.estimators import CalibratedModel, LogisticClassifier, save_model
from leadscore.serve.export import collect_artifacts, model_kind, model_version, scorer_sources
from leadscore.serve.scorer import KIND_ARTIFACTS, Scorer
from tests.builders import synthetic_catalog, synthetic_table


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A logistic model folder, its grading, rules and catalog, as the pipeline writes them."""
    root = tmp_path_factory.mktemp("sources")
    cat = synthetic_catalog()
    table = synthetic_table(n_per_month=100, months=3, seed=8, strength=2.0)
    est = LogisticClassifier.from_catalog(cat).fit(table, table["label"])
    cal = Calibrator("sigmoid").fit(est.decision_function(table), table["label"])
    save_model(CalibratedModel(est, cal, {"kind": "logistic", "git_commit": "abc", "params_hash": "p1",
                                          "data_window": {"train_as_of_first": "2024-01-01"}}),
               root / "logistic")
    ex = Explainer.for_model(est)
    sums = group_sums(ex.contributions(table, raw=True), ex.feature_names,
                      {g: cat.group(g) for g in ("fit", "engagement")})
    save_grading(fit_grade_cuts(sums["fit"], sums["engagement"]), root / "grading.json")
    save_rules(PointsRuleClassifier.from_config(TrainRulesConfig()).fit(table, table["label"]),
               root / "rules.json")
    save_catalog(cat, root / "catalog.json")
    return root, table


def test_sources_per_kind(files, tmp_path):
    root, _ = files
    common = dict(grading=root / "grading.json", catalog=root / "catalog.json", rules=root / "rules.json")
    assert set(scorer_sources(root / "lightgbm", kind="lightgbm", **common)) == \
        {*KIND_ARTIFACTS["lightgbm"], "rules"} - {"version"}
    logistic = scorer_sources(root / "logistic", **common)  # kind from the folder: model.json
    assert set(logistic) == {*KIND_ARTIFACTS["logistic"], "rules"} - {"version"}
    assert logistic["model"] == root / "logistic" / "model.json"
    rules = scorer_sources(kind="rules", catalog=root / "catalog.json", rules=root / "rules.json")
    assert rules == {"catalog": root / "catalog.json", "rules": root / "rules.json"}
    assert (model_kind(None), model_kind(root / "logistic"), model_kind(tmp_path)) == \
        ("rules", "logistic", "lightgbm")
    with pytest.raises(ModelError, match="without the fitted rules"):
        scorer_sources(kind="rules", catalog=root / "catalog.json")
    with pytest.raises(ModelError, match="grade cut points"):
        scorer_sources(root / "logistic", catalog=root / "catalog.json")
    with pytest.raises(ConfigError, match="unknown scorer kind 'forest'"):
        scorer_sources(root / "logistic", kind="forest", **common)


def test_rules_artifacts_record_their_kind_and_version(files, tmp_path):
    root, table = files
    out = collect_artifacts(kind="rules", catalog=root / "catalog.json", rules=root / "rules.json",
                            out_dir=tmp_path / "a", metadata={"params_hash": "p2"})
    assert sorted(out) == ["catalog", "rules", "version"]
    version = read_json(out["version"])
    assert version["kind"] == "rules" and version["calibration"] == "isotonic"
    assert version["params_hash"] == "p2" and version["git_commit"] == "unknown"
    assert version["model_version"] == model_version({k: v for k, v in out.items() if k != "version"})
    scorer = Scorer.from_artifacts(out)
    assert scorer.kind == "rules" and scorer.model_version == version["model_version"]
    rules = PointsRuleClassifier.from_dict(read_json(root / "rules.json"))
    np.testing.assert_array_equal(scorer.score(table)["probability"], rules.predict_proba(table)[:, 1])
    # other rules, other version
    changed = tmp_path / "rules2.json"
    changed.write_text((root / "rules.json").read_text().replace('"mql_threshold": 50', '"mql_threshold": 60'))
    again = collect_artifacts(kind="rules", catalog=root / "catalog.json", rules=changed, out_dir=tmp_path / "b")
    assert read_json(again["version"])["model_version"] != version["model_version"]


def test_logistic_artifacts_load_as_a_logistic_scorer(files, tmp_path):
    root, table = files
    out = collect_artifacts(root / "logistic", grading=root / "grading.json", catalog=root / "catalog.json",
                            rules=None, out_dir=tmp_path / "a")
    assert sorted(out) == ["calibrator", "catalog", "grading", "model", "version"]
    version = read_json(out["version"])
    assert (version["kind"], version["git_commit"], version["params_hash"]) == ("logistic", "abc", "p1")
    scorer = Scorer.from_artifacts(out)
    assert scorer.kind == "logistic"
    full, _ = scorer.explain(table, reasons=False)
    est = LogisticClassifier.from_dict(read_json(root / "logistic" / "model.json"))
    np.testing.assert_allclose(full["log_odds"], est.decision_function(table), rtol=0, atol=1e-9)
    assert full["rule_points"].isna().all()  # no rules given
    (tmp_path / "broken").mkdir()
    with pytest.raises(ModelError, match=r"logistic scorer: missing artifact\(s\).*model.json"):
        collect_artifacts(tmp_path / "broken", kind="logistic", grading=root / "grading.json",
                          catalog=root / "catalog.json", out_dir=tmp_path / "c")
