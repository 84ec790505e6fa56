"""Logging set-up for entry points (CLI commands and pipeline stages), never on import."""

from __future__ import annotations

import logging


def setup_logging(level: int = logging.INFO) -> None:
    """Plain, timestamped log lines on stderr."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    for noisy in ("great_expectations", "mlflow", "alembic", "urllib3", "optuna"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
