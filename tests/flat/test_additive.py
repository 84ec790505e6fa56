"""`model.additive: auto` (single-feature or free trees, chosen on validation log loss) and
exact reasons either way (issue 12 item 11)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from leadscore.explain.contributions import Explainer, check_additivity
from leadscore.flat.mapping import load_mapping, mapping_from_dict
from leadscore.flat.run import choose_shape, flat_train_config, train_flat
from leadscore.flat.table import flat_split, load_flat
from tests.flat.exports import FAST_MODEL, write_export


def _result(raw_loss: float, auc: float) -> SimpleNamespace:
    return SimpleNamespace(tuning=SimpleNamespace(best_value=raw_loss),
                           metrics={"lightgbm": {"valid": {"log_loss": raw_loss + 0.01, "roc_auc": auc}}})


def test_choose_shape_picks_the_lower_validation_log_loss_and_reports_the_cost():
    chosen, shape = choose_shape({True: _result(0.40, 0.70), False: _result(0.38, 0.74)},
                                 {True: 1.0, False: 2.0}, "auto")
    assert chosen is False and shape["chosen"] == "free"
    assert shape["cost"]["log_loss"] == pytest.approx(0.02)
    assert shape["cost"]["roc_auc"] == pytest.approx(0.04)
    assert shape["additive"]["valid_roc_auc"] == 0.70 and shape["free"]["valid_log_loss"] == 0.38
    assert "free trees change validation log loss by -0.02000" in shape["note"] and shape["seconds"] == {"additive": 1.0, "free": 2.0}
    chosen, shape = choose_shape({True: _result(0.38, 0.70), False: _result(0.38, 0.74)},
                                 {True: 1.0, False: 2.0}, "auto")
    assert chosen is True  # a tie keeps single-feature trees


def test_additive_auto_is_the_flat_default_and_the_backtest_gets_a_bool():
    m = mapping_from_dict({"file": "x.csv", "target": "y", "positive": "1"})
    assert m.model.additive == "auto"
    assert flat_train_config(m).additive is True
    assert flat_train_config(m, additive=False).additive is False
    fixed = mapping_from_dict({"file": "x.csv", "target": "y", "positive": "1", "model": {"additive": False}})
    assert flat_train_config(fixed).additive is False


def interaction_frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Conversion driven by an interaction (x1 and x2 of the same sign), which single-feature
    trees cannot express, plus a categorical main effect."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    channel = rng.choice(["google", "direct", "referral"], n)
    logit = -1.0 + 1.8 * np.sign(x1 * x2) + np.where(channel == "referral", 0.7, 0.0)
    converted = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"Lead ID": [f"L{i:05d}" for i in range(n)], "Score A": x1.round(3),
                         "Score B": x2.round(3), "Channel": channel,
                         "Converted": np.where(converted, "yes", "no")})


def _train(folder, additive):
    model = {**FAST_MODEL, "n_trials": 2, "max_boost_rounds": 300, "early_stopping_rounds": 20,
             "additive": additive}
    m = load_mapping(write_export(folder, interaction_frame(), id="Lead ID", time_order="rows",
                                  model=model))
    table = load_flat(m)
    return train_flat(table, flat_split(table, m), m, table.catalog)


@pytest.mark.slow
@pytest.mark.parametrize("additive", [True, False, "auto"])
def test_reasons_add_up_to_the_log_odds_for_either_tree_shape(tmp_path, additive):
    models = _train(tmp_path, additive)
    shape = models.summary["additive"]
    assert shape["setting"] == additive
    if additive == "auto":  # the interaction is only learnable by free trees
        assert shape["chosen"] == "free" and shape["cost"]["log_loss"] > 0
        assert {"additive", "free"} <= set(shape)
    else:
        assert shape["chosen"] == ("additive" if additive else "free")
    test = models.split.test
    explainer = Explainer.for_model(models.lightgbm)
    assert explainer.additive is (shape["chosen"] == "additive")  # look-ups or TreeSHAP
    contrib = explainer.contributions(test, raw=True)
    margin = models.lightgbm.decision_function(test)
    assert check_additivity(contrib, explainer.expected_value(), margin) < 1e-6
