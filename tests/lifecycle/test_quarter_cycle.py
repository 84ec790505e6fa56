"""One simulated quarter, end to end, on a small synthetic CRM and a real MLflow registry:
retrain -> the first challenger becomes champion -> next quarter: an improved challenger
passes the gate (not inside `dvc exp run`), a degraded one (labels shuffled in one segment)
is refused and `champion` stays -> rollback walks back and the gate never re-promotes what
it left."""

from __future__ import annotations

import datetime as dt

import mlflow
import numpy as np
import pytest

from leadscore.config import params_from_dict
from leadscore.data.ingest import ingest
from leadscore.data.synthetic import generate_crm, generate_next_quarter
from leadscore.errors import ModelError
from leadscore.lifecycle.gate import format_gate
from leadscore.lifecycle.promotion import changes_or_note, run_gate
from leadscore.lifecycle.registry import alias_history, alias_ref, rollback
from leadscore.lifecycle.retrain import build_table, retrain_on_table
from leadscore.modeling.baseline import load_rules
from leadscore.modeling.splits import split_from_params
from leadscore.serve.batch import inner_scorer, load_scorer_model

pytestmark = pytest.mark.slow

PARAMS = params_from_dict({
    "seed": 7,
    "generate": {"n_leads": 6000, "start": "2024-01-01", "end": "2025-12-31", "events_per_lead": 30},
    "features": {"as_of_start": "2024-07-01"},
    "train_model": {"min_positives": 50, "max_boost_rounds": 400, "calibration_folds": 3,
                    "optuna": {"n_trials": 2, "n_startup_trials": 1},
                    "leakage": {"enabled": False},
                    "recency": {"window_months": [None], "half_life_days": [None]}},
    "gate": {"n_bootstrap": 60, "segment_min_positives": 25, "auc_tolerance": 0.03,
             "max_ece": 0.04, "max_calibration_in_the_large": 0.3,
             "segments": ["source", "industry"]},
    "export": {"registered_model": "leadscore_cycle"},
})
NAME = PARAMS.export.registered_model


def _validated(tmp, name, write):
    from leadscore.data.validate import validate_crm

    raw, ingested, validated = tmp / f"{name}.duckdb", tmp / f"{name}.ingested.duckdb", tmp / f"{name}.valid.duckdb"
    write(raw)
    ingest("duckdb", raw, ingested, PARAMS.ingest.free_mail_domains)
    validate_crm(ingested, validated, now=dt.datetime(2027, 1, 1), cfg=PARAMS.validate_)
    return validated


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cycle")
    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlruns.db'}")
    mlflow.set_experiment("cycle")
    history = _validated(tmp, "history", lambda p: generate_crm(PARAMS.generate, PARAMS.seed, p))
    quarter = _validated(tmp, "quarter", lambda p: generate_next_quarter(PARAMS.generate, PARAMS.seed, p))
    return tmp, build_table(history, PARAMS), build_table(quarter, PARAMS)


def failed(doc) -> list[tuple[str, str]]:
    return [(c["name"], c["detail"]) for c in doc["checks"] if not c["passed"]]


def _gate(table, retrained, tmp, **kw):
    window = split_from_params(table, PARAMS).test
    challenger = inner_scorer(load_scorer_model(str(retrained.folder / "scorer")))
    ref = alias_ref(NAME, PARAMS.export.challenger_alias)
    doc, _, champion = run_gate(window, challenger, ref, load_rules(retrained.folder / "rules.json"),
                                gate=PARAMS.gate, export=PARAMS.export, seed=PARAMS.seed,
                                workdir=tmp / f"gate-{ref.registry_version}", **kw)
    print(format_gate(doc))  # noqa: T201 - `pytest -s` shows each gate report
    return doc, champion, challenger, window


def test_a_quarter_of_retraining(cycle, monkeypatch):
    tmp, (history, catalog), (quarter, _) = cycle
    for var in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        monkeypatch.delenv(var, raising=False)

    first = retrain_on_table(history, catalog, PARAMS, tmp / "q0")
    assert first.export["alias"] == "challenger"
    assert alias_ref(NAME, "champion") is None  # a retrain never touches champion
    doc, _, _, _ = _gate(history, first, tmp)
    assert doc["decision"] == "first champion", failed(doc)
    v1 = alias_ref(NAME, "champion").registry_version

    # next quarter: the same procedure on the newer data
    improved = retrain_on_table(quarter, catalog, PARAMS, tmp / "q1")
    assert improved.export["registry_version"] != v1
    monkeypatch.setenv("DVC_EXP_NAME", "exp-test")  # inside `dvc exp run`: report only
    doc, _, _, _ = _gate(quarter, improved, tmp)
    assert doc["passed"], failed(doc)
    assert doc["decision"] == "kept (experiment)"
    assert alias_ref(NAME, "champion").registry_version == v1
    monkeypatch.delenv("DVC_EXP_NAME")
    doc, old, new, window = _gate(quarter, improved, tmp)
    assert doc["decision"] == "promoted", failed(doc)
    v2 = alias_ref(NAME, "champion").registry_version
    assert v2 == improved.export["registry_version"]
    changes = changes_or_note(old, new, window, doc, seed=1)
    assert changes["available"]
    assert np.asarray(changes["migration"]["counts"]).sum() == len(window)

    # a degraded challenger: labels shuffled among one source's leads before the test slice
    split = split_from_params(quarter, PARAMS)
    test_start = split.test["as_of"].min()
    source = quarter.loc[quarter["label"] == 1, "source"].value_counts().index[0]
    bad = quarter.copy()
    rows = (bad["source"] == source) & (bad["as_of"] < test_start)
    bad.loc[rows, "label"] = np.random.default_rng(0).permutation(bad.loc[rows, "label"].to_numpy())
    degraded = retrain_on_table(bad, catalog, PARAMS, tmp / "q1-bad")
    doc, _, _, _ = _gate(quarter, degraded, tmp)
    assert doc["decision"] == "refused", doc["checks"]
    assert {name for name, _ in failed(doc)} & {"segments", "auc_not_worse"}, failed(doc)
    assert alias_ref(NAME, "champion").registry_version == v2

    # rollback walks back, and the gate never re-promotes what it left
    assert rollback(NAME, "champion") == v1
    assert alias_history(NAME, "champion") == [v1]
    again = retrain_on_table(quarter, catalog, PARAMS, tmp / "q1-again")
    assert again.export["registry_version"] == v2  # same content, same registry version
    doc, _, _, _ = _gate(quarter, again, tmp)
    assert doc["decision"] == "refused (rolled back)"
    assert alias_ref(NAME, "champion").registry_version == v1
    with pytest.raises(ModelError, match="no earlier version"):
        rollback(NAME, "champion")
