"""Fixtures for the serving tests: a tiny trained and exported scorer, built once per session."""

from __future__ import annotations

import pytest

from tests.serve.trained import Trained, build_trained


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    return build_trained(tmp_path_factory.mktemp("trained"))
