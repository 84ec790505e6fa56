"""Fixtures for the serving tests: a tiny trained and exported scorer, built once per session."""

from __future__ import annotations

import pytest

from tests.serve.trained import Kinds, Trained, build_kinds, build_trained


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    return build_trained(tmp_path_factory.mktemp("trained"))


@pytest.fixture(scope="session")
def kinds(trained, tmp_path_factory) -> Kinds:
    """The logistic and the rules scorer next to the LightGBM one, exported."""
    return build_kinds(trained, tmp_path_factory.mktemp("kinds"))


@pytest.fixture(autouse=True)
def _no_project_score_history(monkeypatch):
    """Scoring tests that read the project's params.yaml do not record their runs in the
    project's score history (tests/monitor covers the history)."""
    from leadscore.monitor.history import History

    monkeypatch.setattr(History, "from_params", classmethod(lambda cls, params: None))
