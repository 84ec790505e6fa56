"""Fixtures for every test folder: the tiny raw CRM."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.builders import make_crm


@pytest.fixture
def crm() -> dict[str, pd.DataFrame]:
    """A fresh copy of the tiny raw CRM (with PII) for each test."""
    return make_crm()
