"""Flat mode without `rules:` in the mapping: the baseline is the points table learned from
the additive LightGBM (leadscore.modeling.points), not a constant."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from leadscore.flat.mapping import RulesMapping
from leadscore.flat.rules import FlatRuleClassifier
from leadscore.flat.run import flat_baseline, has_rules, refit_points, run_flat
from leadscore.io import read_json
from leadscore.modeling.estimators import LightGBMClassifier
from leadscore.modeling.points import LearnedPointsClassifier
from tests.builders import bank_mapping, bank_slice_table


@pytest.fixture(scope="module")
def bank_no_rules():
    table, split, mapping = bank_slice_table(rules={}, screen={"on_flag": "drop"})
    catalog = table.catalog
    lgbm = LightGBMClassifier.from_catalog(
        catalog, params={"learning_rate": 0.1, "num_leaves": 7, "min_data_in_leaf": 20},
        max_boost_rounds=60, seed=1, num_threads=1, additive=True)
    lgbm.fit(split.train, split.train["label"])
    return table, split, mapping, lgbm


def test_mapping_without_rules_gets_the_learned_table(bank_no_rules):
    table, split, mapping, lgbm = bank_no_rules
    assert not has_rules(mapping)
    rules, source = flat_baseline(mapping, table, lgbm, table.catalog, split.train, split.calib)
    assert source == "learned" and isinstance(rules, LearnedPointsClassifier)
    points = rules.decision_function(split.test)
    assert len(np.unique(points)) > 10  # not a constant
    assert roc_auc_score(split.test["label"], points) > 0.6
    grades = rules.grade(split.test)["rule_grade"]
    assert grades.nunique() > 4  # not every lead C4
    assert 0.02 < rules.predict(split.calib).mean() <= 0.10  # MQL: the top 10% of calib


def test_mapping_with_rules_keeps_them(bank_no_rules):
    table, split, _, lgbm = bank_no_rules
    mapping = bank_mapping(screen={"on_flag": "drop"})
    rules, source = flat_baseline(mapping, table, lgbm, table.catalog, split.train, split.calib)
    assert source == "mapping" and type(rules) is FlatRuleClassifier


def test_non_additive_model_keeps_the_constant(bank_no_rules):
    table, split, mapping, _ = bank_no_rules
    free = LightGBMClassifier.from_catalog(table.catalog, params={"num_leaves": 7},
                                           max_boost_rounds=10, num_threads=1)
    free.fit(split.train, split.train["label"])
    rules, source = flat_baseline(mapping, table, free, table.catalog, split.train, split.calib)
    assert source == "mapping"
    assert len(np.unique(rules.decision_function(split.test))) == 1


@pytest.mark.slow
def test_flat_run_without_rules_reports_learned_points(tmp_path):
    m = bank_mapping(rules={}, screen={"on_flag": "drop"}, time_order=None)
    result = run_flat(m, tmp_path)
    ev = read_json(tmp_path / "metrics" / "evaluate.json")
    assert ev["rules_source"] == "learned"
    assert ev["rules"]["roc_auc"] > 0.6  # the constant scored 0.50
    assert read_json(tmp_path / "models" / "rules.json")["kind"] == "learned_points"
    doc = yaml.safe_load((tmp_path / "models" / "points.yaml").read_text())
    RulesMapping(**doc["rules"])  # pasteable as the mapping's rules:
    assert (tmp_path / "models" / "points.csv").read_text().startswith("field,group,label,condition,points")
    assert "learned points table" in (tmp_path / "report.html").read_text()
    assert result.metrics["rules_grades"]


def test_refit_table_keeps_the_calibrator_in_log_odds(bank_no_rules):
    table, split, mapping, lgbm = bank_no_rules
    pre, _ = flat_baseline(mapping, table, lgbm, table.catalog, split.train, split.calib)
    same = refit_points(pre, lgbm, table.catalog, split.train, split.calib)
    np.testing.assert_allclose(same.predict_proba(split.test), pre.predict_proba(split.test))
    rows = split.train.sample(frac=0.5, random_state=0)  # other weights: other reference bands
    other = refit_points(pre, lgbm, table.catalog, rows, split.calib)
    diff = np.abs(other.predict_proba(split.test)[:, 1] - pre.predict_proba(split.test)[:, 1])
    assert np.median(diff) < 0.02
