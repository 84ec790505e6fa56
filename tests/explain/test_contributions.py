"""Exact contributions (fast additive path and pred_contrib fallback), reasons and drivers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap

from leadscore.explain.contributions import (
    Explainer,
    additive_tables,
    check_additivity,
    feature_groups,
)
from leadscore.explain.drivers import dependence_frame, global_drivers
from leadscore.explain.reasons import describe_one, explain_rows, field_of, top_reasons
from leadscore.modeling.estimators import LightGBMClassifier
from tests.builders import synthetic_catalog, synthetic_table

pytestmark = pytest.mark.slow  # trains LightGBM or runs whole stages; `make test-fast` skips it

PARAMS = {"learning_rate": 0.2, "num_leaves": 7, "min_data_in_leaf": 10, "bagging_fraction": 0.8,
          "bagging_freq": 1, "feature_fraction": 0.8, "min_data_per_group": 5, "cat_smooth": 1.0,
          "cat_l2": 1.0}  # small categorical regularisation: the tiny model splits on seniority


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return synthetic_table(n_per_month=120, months=6, seed=3, strength=3.0)


def _fit(table, additive: bool) -> LightGBMClassifier:
    return LightGBMClassifier.from_catalog(synthetic_catalog(), params=PARAMS, seed=1, num_threads=1,
                                           max_boost_rounds=40, additive=additive).fit(table, table["label"])


@pytest.fixture(scope="module")
def additive(table):
    return _fit(table, True)


@pytest.fixture(scope="module")
def general(table):
    return _fit(table, False)


def test_additive_option_gives_single_feature_trees(additive, general):
    assert additive_tables(additive.booster_) is not None
    assert additive_tables(general.booster_) is None
    # the fixtures exercise categorical splits too
    assert any(lk.categorical for lk in Explainer.for_model(additive)._lookups)


@pytest.mark.parametrize("which", ["additive", "general"])
def test_contributions_plus_base_equal_the_raw_margin(which, request, table):
    model = request.getfixturevalue(which)
    ex = Explainer.for_model(model)
    assert ex.additive == (which == "additive")
    contrib = ex.contributions(table, raw=True)
    margin = model.decision_function(table)
    np.testing.assert_allclose(contrib.sum(axis=1) + ex.expected_value(), margin, rtol=0, atol=1e-6)


def test_additivity_check_and_feature_groups(additive, table):
    ex = Explainer.for_model(additive)
    contrib = ex.contributions(table, raw=True)
    margin = additive.decision_function(table)
    assert check_additivity(contrib, ex.expected_value(), margin) < 1e-6
    with pytest.raises(RuntimeError, match="do not add up"):
        check_additivity(contrib, ex.expected_value() + 1e-3, margin)
    cat = synthetic_catalog()
    groups = feature_groups(cat, ex.feature_names[1:])
    assert set(groups) == {"fit", "engagement"}
    assert groups["fit"] == [n for n in cat.group("fit") if n in ex.feature_names[1:]]
    assert ex.feature_names[0] not in groups["fit"] + groups["engagement"]


def test_fast_path_equals_pred_contrib_and_shap(additive, table):
    X = additive.model_frame(table)
    fast = Explainer.for_model(additive, chunk_rows=97)  # several chunks
    assert fast.additive
    got = fast.contributions(X)
    ref = additive.booster_.predict(X, pred_contrib=True, num_iteration=additive.best_iteration_)
    np.testing.assert_allclose(got, ref[:, :-1], rtol=0, atol=1e-6)
    assert abs(fast.expected_value() - ref[0, -1]) < 1e-6
    sv = shap.TreeExplainer(additive.booster_).shap_values(X)
    np.testing.assert_allclose(got, sv, rtol=0, atol=1e-6)
    slow = Explainer.for_model(additive, use_tables=False)
    np.testing.assert_allclose(got, slow.contributions(X), rtol=0, atol=1e-6)


def test_step_lookup_is_exact_at_thresholds_zero_and_nan(additive, table):
    """Probe every split threshold itself, a hair either side, zero and NaN, per feature."""
    lookup = Explainer.for_model(additive)
    trees = Explainer.for_model(additive, method="trees")
    rng = np.random.default_rng(0)
    X = np.repeat(lookup.model_input(table.head(1)), 1, axis=0)
    rows = []
    for lk in lookup._lookups:
        cand = [np.nan, 0.0, -0.0, 1e-40, -1.0]
        if lk.categorical:
            cand += list(range(len(lk.values) + 2))
        else:
            for t in lk.breaks:
                cand += [t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)]
        for v in cand:
            r = X[0].copy()
            r[lk.j] = v
            rows.append(r)
    P = np.array(rows)
    P = P[rng.permutation(len(P))]
    ref = additive.booster_.predict(P, pred_contrib=True, num_iteration=additive.best_iteration_)[:, :-1]
    np.testing.assert_allclose(lookup.contributions(P), ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(trees.contributions(P), ref, rtol=0, atol=1e-6)


def test_fast_path_handles_missing_and_unseen_categories(additive, table):
    t = table.head(50).copy()
    t.loc[t.index[:10], "industry"] = "never_seen_before"
    t.loc[t.index[10:20], "company_size"] = np.nan
    ex = Explainer.for_model(additive)
    got = ex.contributions(t, raw=True)
    ref = additive.booster_.predict(additive.model_frame(t), pred_contrib=True)[:, :-1]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


def test_top_reasons_are_sorted_and_signed():
    contrib = np.array([[0.5, -0.2, 0.1, 0.0, -0.9, 0.3],
                        [0.0, 0.0, 0.0, 0.0, 0.0, -0.1]])
    idx, val = top_reasons(contrib, k=3)
    assert idx[0].tolist() == [0, 5, 2, 4, 1, -1]
    np.testing.assert_array_equal(val[0, :5], [0.5, 0.3, 0.1, -0.9, -0.2])
    assert (idx[1, :3] == -1).all() and idx[1, 3] == 5 and (idx[1, 4:] == -1).all()


def test_reasons_on_a_model_are_signed_coded_and_mention_the_value(additive, table):
    cat = synthetic_catalog()
    ex = Explainer.for_model(additive)
    rows = table.head(200)
    contrib = ex.contributions(rows, raw=True)
    reasons = explain_rows(contrib, rows, cat, ex.feature_names, k=3)
    lists = reasons.to_lists()
    assert len(lists) == 200
    for lead, lr in zip(rows.itertuples(index=False), lists, strict=True):
        pos = [r for r in lr if r["code"].endswith("+")]
        neg = [r for r in lr if r["code"].endswith("-")]
        assert len(pos) <= 3 and len(neg) <= 3
        assert all(r["contribution"] > 0 for r in pos) and all(r["contribution"] < 0 for r in neg)
        assert [r["contribution"] for r in pos] == sorted((r["contribution"] for r in pos), reverse=True)
        assert [r["contribution"] for r in neg] == sorted(r["contribution"] for r in neg)
        for r in lr:
            feature = r["code"][:-1]
            assert feature in cat.names
            value = getattr(lead, feature)
            if cat[feature].kind == "numeric" and cat[feature].unit in ("events", "downloads") and value > 0:
                assert (f"{value:,.0f}" if value != 1 else "once") in r["text"] or "1 " in r["text"]
    # a reason's value equals its cell of the contribution matrix
    i, slot = np.argwhere(reasons.feature >= 0)[0]
    assert reasons.contribution[i, slot] == contrib[i, reasons.feature[i, slot]]
    arrow = reasons.to_arrow()
    assert len(arrow) == 200 and arrow[0].as_py() == lists[0]


def test_reason_texts_read_as_plain_sentences():
    cat = synthetic_catalog()
    from leadscore.features.build import feature_catalog

    real = feature_catalog([7, 30, 90])
    assert describe_one(real["pricing_page_view_30d"], 4.0) == "Viewed the pricing page 4 times in the last 30 days"
    assert describe_one(real["pricing_page_view_30d"], 0.0) == "No pricing-page views in the last 30 days"
    assert describe_one(real["seniority"], "vp") == "Seniority: VP"
    assert describe_one(real["company_size"], np.nan) == "Company size unknown"
    assert describe_one(real["unsubscribed"], 1.0) == "Unsubscribed from e-mail"
    assert describe_one(real["industry"], "unknown") == "Industry unknown"
    assert "12 days ago" in describe_one(real["days_since_last_activity"], 12.4)
    assert describe_one(cat["demo_request_90d"], 2.0) == "Requested a demo 2 times in the last 90 days"
    assert field_of(real["pricing_page_view_7d"]) == ("pricing_page_view", "Pricing-page views")


def test_drivers_group_windows_into_fields_with_directions(additive, table):
    cat = synthetic_catalog()
    ex = Explainer.for_model(additive)
    contrib = ex.contributions(table, raw=True)
    drivers = global_drivers(contrib, table, ex.feature_names, cat)
    by = {d["field"]: d for d in drivers}
    assert "pricing_page_view" in by and "pricing_page_view_30d" not in by
    assert by["pricing_page_view"]["features"] == ["pricing_page_view_7d", "pricing_page_view_30d",
                                                  "pricing_page_view_90d"]
    imp = [d["mean_abs_contribution"] for d in drivers]
    assert imp == sorted(imp, reverse=True)
    assert by["demo_request"]["direction"] == "+"
    assert by["seniority"]["direction"] == "mixed" and by["seniority"]["top_up"]
    dep = dependence_frame(contrib, table, ex.feature_names, by["seniority"], np.arange(50))
    assert list(dep.columns) == ["value", "contribution"]
    assert all(isinstance(v, str) for v in dep["value"]) and len(dep) == 50


def test_explain_slice_and_dependence_files(additive, table, tmp_path):
    from leadscore.explain.drivers import explain_slice, write_dependence

    cat = synthetic_catalog()
    ex = explain_slice(Explainer.for_model(additive), table, additive.decision_function(table), cat,
                       min_corr=0.3, top=2, rows=50, seed=3)
    assert ex.additive and ex.additivity < 1e-6 and len(ex.dependence) == 2
    assert ex.summary()["drivers"] == ex.drivers and ex.summary()["rows"] == len(table)
    again = explain_slice(Explainer.for_model(additive), table, additive.decision_function(table), cat,
                          min_corr=0.3, top=2, rows=50, seed=3)
    for name, df in ex.dependence.items():  # seeded sample
        pd.testing.assert_frame_equal(df, again.dependence[name])
    (tmp_path / "dependence_stale_field.csv").write_text("value,contribution\n")
    write_dependence(ex.dependence, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["dependence.csv", *(f"dependence_{n}.csv" for n in ex.dependence)])
    long = pd.read_csv(tmp_path / "dependence.csv")
    assert list(long.columns) == ["field", "value", "contribution"] and len(long) == 100


def test_cli_explain_prints_grade_and_reasons_and_rejects_unknown_leads(tmp_path, table, additive):
    from typer.testing import CliRunner

    from leadscore.cli import app
    from leadscore.data.ingest import ingest
    from leadscore.explain.grades import grade_cuts_from_split, save_grading
    from leadscore.features.catalog import save_catalog
    from leadscore.modeling.calibration import Calibrator
    from leadscore.modeling.estimators import CalibratedModel, save_model
    from leadscore.modeling.splits import time_split
    from tests.builders import SPLIT_KW, make_crm, write_crm

    raw = write_crm(make_crm(), "duckdb", tmp_path / "raw.duckdb")
    crm = tmp_path / "crm.duckdb"
    ingest("duckdb", raw, crm, ["gmail.com"])
    cal = Calibrator("sigmoid").fit(additive.decision_function(table), table["label"])
    save_model(CalibratedModel(additive, cal, {"kind": "lightgbm"}), tmp_path / "lightgbm")
    cat = synthetic_catalog()
    save_catalog(cat, tmp_path / "catalog.json")
    split = time_split(synthetic_table(n_per_month=60, months=12, seed=4), **SPLIT_KW)
    groups = {g: cat.group(g) for g in ("fit", "engagement")}
    save_grading(grade_cuts_from_split(Explainer.for_model(additive), split, groups), tmp_path / "grading.json")
    (tmp_path / "params.yaml").write_text("features:\n  max_lead_age_days: 3650\n")
    args = ["explain", "--crm", str(crm), "--model", str(tmp_path / "lightgbm"), "--grading",
            str(tmp_path / "grading.json"), "--catalog", str(tmp_path / "catalog.json"),
            "--params", str(tmp_path / "params.yaml")]
    runner = CliRunner()
    ok = runner.invoke(app, [*args, "--lead-id", "L2"])
    assert ok.exit_code == 0, ok.output
    assert "lead L2 as of 2024-04-02" in ok.output
    assert "grade " in ok.output and "raises the score:" in ok.output and "lowers the score:" in ok.output
    assert "Website visits" in ok.output or "Visited the website" in ok.output  # L2's activity
    assert "[" in ok.output and ("+]" in ok.output or "-]" in ok.output)  # reason codes
    assert runner.invoke(app, [*args, "--lead-id", "NOPE"]).exit_code == 1
    assert runner.invoke(app, [*args, "--lead-id", "L2", "--as-of", "2024-01-01"]).exit_code == 1  # not yet created
    assert runner.invoke(app, [*args, "--lead-id", "L4"]).exit_code == 1  # converted before the cutoff


def test_model_input_of_one_row_equals_the_batch_rows(additive, table):
    """One lead (a dict look-up per category) and many (an index) give the same matrix,
    unseen and missing categories included."""
    from leadscore.modeling.baseline import SMALL_INPUT_ROWS

    ex = Explainer.for_model(additive)
    rows = table.head(SMALL_INPUT_ROWS + 36).copy()
    cats = [n for n in ex.feature_names if n in additive.categories_]
    assert cats
    rows.loc[rows.index[:5], cats[0]] = "never seen in training"
    rows.loc[rows.index[5:9], cats[0]] = None
    batch = ex.model_input(rows)
    one_by_one = np.vstack([ex.model_input(rows.iloc[[i]]) for i in range(len(rows))])
    np.testing.assert_array_equal(one_by_one, batch)
    assert np.isnan(batch[:9, ex.feature_names.index(cats[0])]).all()
