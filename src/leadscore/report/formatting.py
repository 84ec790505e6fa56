"""Numbers and names as the report prints them, shared by every section's data preparation."""

from __future__ import annotations

from typing import Any

from leadscore.explain.grades import DIGITS, LETTERS
from leadscore.report.charts import as_float

MODEL_NAMES: dict[str, str] = {
    "lightgbm": "Predictive model (LightGBM)",
    "logistic": "Check model (logistic regression)",
    "rules": "Points rules (today's baseline)",
}
GRADES: tuple[str, ...] = tuple(f"{a}{d}" for a in LETTERS for d in DIGITS)


def pct(v: Any, digits: int = 1) -> str:
    """0.2543 -> "25.4%"; missing -> "n/a"."""
    f = as_float(v)
    return "n/a" if f is None else f"{100 * f:.{digits}f}%"


def fmt(v: Any, digits: int = 2) -> str:
    f = as_float(v)
    return "n/a" if f is None else f"{f:.{digits}f}"


def count(v: Any) -> str:
    f = as_float(v)
    return "n/a" if f is None else f"{int(round(f)):,}"
