"""The gate's checks and the promotion decision, on small synthetic windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.config import GateConfig
from leadscore.lifecycle.gate import evaluate_gate, format_gate
from leadscore.lifecycle.promotion import decide, gate_report, in_experiment
from leadscore.lifecycle.registry import ModelRef

N = 4000


class FixedScorer:
    """Scores are a given probability column; grades follow the probability's quartiles."""

    def __init__(self, column: str, kind: str = "lightgbm"):
        self.column, self.kind = column, kind

    def explain(self, frame: pd.DataFrame, reasons: bool = False):
        p = frame[self.column].to_numpy()
        q = np.quantile(p, [0.25, 0.5, 0.75])
        digit = np.where(p >= q[2], "1", np.where(p >= q[1], "2", np.where(p >= q[0], "3", "4")))
        letter = np.where(p >= q[1], "A", "B")
        return pd.DataFrame({"probability": p, "fit_grade": letter, "engagement_grade": digit},
                            index=frame.index), None


class FixedRules:
    def predict_proba(self, frame):
        p = frame["p_rules"].to_numpy()
        return np.column_stack([1 - p, p])


@pytest.fixture
def window() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    signal = rng.normal(size=N)
    fit = rng.normal(size=N)
    p_true = 1 / (1 + np.exp(-(-2.0 + 1.5 * signal + 0.3 * fit)))
    y = rng.random(N) < p_true
    noisy = 1 / (1 + np.exp(-(-2.0 + 0.5 * signal + 0.1 * fit + rng.normal(size=N))))
    segment = np.where(rng.random(N) < 0.5, "web", "event")
    # "shuffled": good everywhere except the event segment, where it is noise
    shuffled = np.where(segment == "event", rng.permutation(p_true), p_true)
    return pd.DataFrame({"lead_id": [f"L{i}" for i in range(N)], "as_of": "2025-09-01",
                         "label": y.astype(int), "fit": fit, "p_good": p_true, "p_noisy": noisy,
                         "p_shuffled": shuffled, "p_rules": noisy, "source": segment,
                         "p_overconfident": np.clip(p_true * 2.5, 0, 0.99)})


def cfg(**kw) -> GateConfig:
    base = {"segments": ("source",), "segment_min_positives": 50, "n_bootstrap": 50,
            "max_ece": 0.03}
    return GateConfig(**{**base, **kw})


def checks(result) -> dict[str, bool]:
    return {c["name"]: c["passed"] for c in result.checks}


def test_an_improved_challenger_passes_every_check(window):
    r = evaluate_gate(window, FixedScorer("p_good"), FixedScorer("p_noisy"), FixedRules(), cfg(), seed=1)
    assert r.passed, format_gate({"decision": "?", "passed": r.passed, "checks": r.checks})
    auc = next(c for c in r.checks if c["name"] == "auc_not_worse")["figures"]
    assert auc["diff"] > 0.05 and auc["ci_low"] > 0
    assert r.window["rows"] == N


def test_a_model_shuffled_in_one_segment_is_refused_on_auc_and_segments(window):
    r = evaluate_gate(window, FixedScorer("p_shuffled"), FixedScorer("p_good"), FixedRules(), cfg(), seed=1)
    got = checks(r)
    assert not r.passed
    assert not got["auc_not_worse"] and not got["segments"]
    seg = next(c for c in r.checks if c["name"] == "segments")
    assert [f["value"] for f in seg["figures"]["failed"]] == ["event"]


def test_calibration_and_rules_checks_fail_when_they_should(window):
    r = evaluate_gate(window, FixedScorer("p_overconfident"), None, FixedRules(), cfg(), seed=1)
    assert checks(r)["calibration"] is False
    r = evaluate_gate(window, FixedScorer("p_noisy"), None, FixedRules(), cfg(), seed=1)
    assert checks(r)["beats_rules"] is False  # the "model" is the rules' own score
    r = evaluate_gate(window, FixedScorer("p_noisy", kind="rules"), None, FixedRules(), cfg(), seed=1)
    assert checks(r)["beats_rules"] is True  # the rules as challenger need not beat themselves


def test_without_a_champion_the_comparisons_pass_with_a_note(window):
    r = evaluate_gate(window, FixedScorer("p_good"), None, FixedRules(), cfg(), seed=1)
    first = {c["name"]: c for c in r.checks}
    assert first["auc_not_worse"]["passed"] and "no champion" in first["auc_not_worse"]["detail"]
    assert "scored" not in r.window and set(r.scored) == {"challenger"}


def test_a_single_class_window_is_bad_input(window):
    from leadscore.errors import InputError

    with pytest.raises(InputError, match="single class"):
        evaluate_gate(window.assign(label=0), FixedScorer("p_good"), None, FixedRules(), cfg(), seed=1)


A, B = ModelRef("1", "hash1", "lightgbm"), ModelRef("2", "hash2", "lightgbm")


@pytest.mark.parametrize(("kw", "expected"), [
    ({}, "promoted"),
    ({"champion": None}, "first champion"),
    ({"passed": False}, "refused"),
    ({"passed": False, "force_reason": "why"}, "forced"),
    ({"rolled_back": True}, "refused (rolled back)"),
    ({"experiment": True}, "kept (experiment)"),
    ({"promote_enabled": False}, "passed, not promoted"),
    ({"champion": B}, "unchanged"),
])
def test_decisions(kw, expected, window):
    passed = kw.pop("passed", True)
    result = evaluate_gate(window, FixedScorer("p_good" if passed else "p_shuffled"),
                           FixedScorer("p_good"), FixedRules(), cfg(), seed=1)
    args = {"challenger": B, "champion": A, "rolled_back": False, "promote_enabled": True,
            "experiment": False, **kw}
    decision = decide(result, **args)
    assert decision == expected
    doc = gate_report(result, decision, challenger=B, champion=args["champion"])
    assert doc["promoted"] == (expected in {"promoted", "first champion", "forced"})
    assert [c["name"] for c in doc["checks"]] == ["auc_not_worse", "calibration", "grade_order",
                                                 "segments", "beats_rules"]


def test_dvc_experiment_variables_are_recognised(monkeypatch):
    for var in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        monkeypatch.delenv(var, raising=False)
    assert not in_experiment()
    monkeypatch.setenv("DVC_EXP_NAME", "other-rubs")
    assert in_experiment()
