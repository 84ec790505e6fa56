"""Choosing reasons (leadscore.explain.reasons): a missing red flag is never a reason."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.explain.reasons import explain_rows, flag_absent, not_reasons, top_reasons
from leadscore.features.catalog import FeatureCatalog, FeatureSpec

CATALOG = FeatureCatalog((
    FeatureSpec("placeholder_name", "fit", "Name looks like a placeholder", "yes/no"),
    FeatureSpec("seniority", "fit", "Seniority (from job title)", "level", "categorical"),
    FeatureSpec("company_size", "fit", "Company size", "employees"),
    FeatureSpec("email_bounced", "engagement", "E-mail bounced", "yes/no"),
))
NAMES = list(CATALOG.names)


def _codes(reasons, row: int) -> list[str]:
    return [r["code"] for r in reasons.to_lists()[row]]


def test_a_missing_red_flag_is_not_a_reason_for_a_higher_score():
    X = pd.DataFrame({"placeholder_name": [0.0, 1.0], "seniority": ["vp", "vp"],
                      "company_size": [500.0, 500.0], "email_bounced": [0.0, 0.0]})
    # "Name looks real" would be the largest positive contribution of lead 0
    contrib = np.array([[0.35, 0.30, 0.10, 0.02],
                        [-4.50, 0.30, 0.10, 0.02]])
    reasons = explain_rows(contrib, X, CATALOG, NAMES, k=3)
    assert _codes(reasons, 0) == ["seniority+", "company_size+"]  # the next ones take the slots
    assert "Name looks real" not in str(reasons.to_lists())
    # a red flag that IS present stays, with its sentence
    lead1 = reasons.to_lists()[1]
    assert lead1[-1] == {"code": "placeholder_name-", "text": "Name looks like a placeholder",
                         "contribution": -4.5}


def test_a_missing_red_flag_is_not_a_reason_for_a_lower_score_either():
    X = pd.DataFrame({"placeholder_name": [0.0], "seniority": ["student"], "company_size": [5.0],
                      "email_bounced": [0.0]})
    contrib = np.array([[0.35, -2.0, -0.3, -0.05]])  # "No e-mail bounced (-0.05)": noise
    assert _codes(explain_rows(contrib, X, CATALOG, NAMES, k=3), 0) == ["seniority-", "company_size-"]


def test_a_present_red_flag_that_raises_the_score_is_still_shown():
    X = pd.DataFrame({"placeholder_name": [0.0], "seniority": ["vp"], "company_size": [5.0],
                      "email_bounced": [1.0]})
    reasons = explain_rows(np.array([[0.35, 0.5, -0.1, 0.2]]), X, CATALOG, NAMES, k=3)
    assert reasons.to_lists()[0][1] == {"code": "email_bounced+", "text": "E-mail bounced", "contribution": 0.2}


def test_the_rule_follows_the_catalog_unit_not_the_feature_name():
    # a flat export's own yes/no column, numeric or categorical: masked at "no" only
    cat = FeatureCatalog((
        FeatureSpec("do_not_call", "fit", "Asked not to be called", "yes/no"),
        FeatureSpec("opted_out", "engagement", "Opted out", "yes/no", "categorical"),
        FeatureSpec("visits", "engagement", "Visits", ""),
    ))
    X = pd.DataFrame({"do_not_call": [0.0, 1.0, np.nan], "opted_out": ["No", "Yes", "no"],
                      "visits": [0.0, 0.0, 0.0]})
    mask = not_reasons(X, cat, cat.names)
    assert mask.tolist() == [[True, True, False], [False, False, False], [False, True, False]]
    plain = FeatureCatalog(tuple(FeatureSpec(s.name, s.group, s.label, "", s.kind) for s in cat.features))
    assert not_reasons(X, plain, plain.names) is None  # no yes/no unit: nothing masked
    assert flag_absent(cat["opted_out"], np.array(["FALSE", "yes", None], dtype=object)).tolist() == \
        [True, False, False]


def test_items_that_are_not_catalog_features_are_never_masked():
    # the rules kind: reasons are lines of a points table, texts given
    X = pd.DataFrame({"placeholder_name": [0.0]})
    reasons = explain_rows(np.array([[5.0]]), X, CATALOG, ["referral_bonus"], k=1,
                           texts=lambda name, rows: np.array(["Referral: +5 points"] * len(rows), dtype=object))
    assert reasons.to_lists() == [[{"code": "referral_bonus+", "text": "Referral: +5 points", "contribution": 5.0}]]


def test_top_reasons_skips_the_masked_cells():
    contrib = np.array([[0.5, 0.4, -0.3, -0.2]])
    idx, val = top_reasons(contrib, k=2, skip=np.array([[True, False, False, True]]))
    assert idx[0].tolist() == [1, -1, 2, -1]
    np.testing.assert_array_equal(val[0, [0, 2]], [0.4, -0.3])
