import pytest

from leadscore.lifecycle.choose import champion_entry, choose_kind


def test_highest_validation_auc_wins():
    kind, why = choose_kind({"rules": 0.70, "logistic": 0.74, "lightgbm": 0.78})
    assert kind == "lightgbm"
    assert "0.7800" in why and "rules 0.7000" in why


def test_rules_win_when_models_do_not_beat_them():
    assert choose_kind({"rules": 0.70, "logistic": 0.37, "lightgbm": 0.62})[0] == "rules"


def test_tie_goes_to_the_simpler_kind_and_missing_models_are_skipped():
    assert choose_kind({"rules": 0.7, "logistic": 0.7, "lightgbm": 0.7})[0] == "rules"
    assert choose_kind({"rules": 0.6, "logistic": None, "lightgbm": 0.65})[0] == "lightgbm"
    with pytest.raises(ValueError):
        choose_kind({"lightgbm": None})


def test_champion_entry_carries_the_test_metrics_of_the_chosen_kind():
    entry = champion_entry("rules", "why", {"rules": 0.7, "lightgbm": None},
                           {"rules": {"roc_auc": 0.69}, "lightgbm": {"roc_auc": 0.8}})
    assert entry["name"] == "rules" and entry["roc_auc"] == 0.69
    assert entry["valid_roc_auc"] == {"rules": 0.7}
