"""A field's direction in words (leadscore.explain.drivers.field_effect), on tiny data."""

from __future__ import annotations

import numpy as np

from leadscore.explain.drivers import field_effect
from leadscore.features.catalog import FeatureSpec

SIZE = FeatureSpec("company_size", "fit", "Company size", "employees")
RNG = np.random.default_rng(0)


def test_a_rising_numeric_effect_raises_the_score_even_with_missing_values():
    x = np.r_[RNG.lognormal(5, 2, 300), [np.nan] * 100]  # a quarter unknown, as company size
    c = np.r_[0.2 * np.log(x[:300]) - 1, [-0.02] * 100]
    eff = field_effect(x, c, SIZE)
    assert eff.direction == "+" and eff.rank_correlation > 0.99
    assert eff.text == "A higher company size raises the score."


def test_a_falling_numeric_effect_lowers_the_score():
    x = np.arange(200.0)
    eff = field_effect(x, -0.01 * x, FeatureSpec("lead_age_days", "fit", "Days since the lead was created", "days"))
    assert eff.direction == "-" and eff.text == "The more days since the lead was created, the lower the score."


def test_no_clear_direction_when_value_and_effect_do_not_move_together():
    x = np.arange(400.0)
    c = -np.abs(x - 200) / 100  # up, then down: rank correlation near 0
    eff = field_effect(x, c, SIZE)
    assert eff.direction == "mixed" and "no clear direction" in eff.text
    assert field_effect(np.array([1.0, np.nan]), np.array([0.1, 0.2]), SIZE).direction == "mixed"  # too few


def test_windowed_fields_and_flags_read_as_sentences():
    opens = FeatureSpec("email_open_90d", "engagement", "E-mail opens, last 90 days", "count")
    x = np.arange(50.0)
    assert field_effect(x, -x, opens, field_label="E-mail opens", windowed=True).text == \
        "More e-mail opens lower the score."
    flag = FeatureSpec("free_mail", "fit", "Uses a free e-mail address", "yes/no")
    assert field_effect(np.array([0.0, 1.0] * 20), np.array([0.05, -0.4] * 20), flag).text == \
        '"Uses a free e-mail address" lowers the score.'


def test_categorical_effect_lists_categories_up_and_down():
    v = np.array(["vp", "student", "manager"] * 20, dtype=object)
    c = np.array([0.5, -0.8, 0.1] * 20)
    eff = field_effect(v, c, FeatureSpec("seniority", "fit", "Seniority (from job title)", "level", "categorical"),
                       min_count=10)
    assert eff.top_up == ["VP", "Manager"] and eff.top_down == ["Student"]
    assert eff.text == "Seniority matters: VP, Manager raise the score; Student lowers it."
