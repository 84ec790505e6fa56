"""Column-name helpers shared by the leakage screen and the flat-table reader."""

from __future__ import annotations

import re


def snake(name: str) -> str:
    """A header as a feature name: 'Total Time Spent' -> 'total_time_spent'."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    return re.sub(r"[^0-9a-z]+", "_", s.lower()).strip("_") or "col"


def name_words(name: str) -> list[str]:
    """Words of a column name: 'LastActivity' -> ['last', 'activity']."""
    return [w for w in snake(name).split("_") if w]
