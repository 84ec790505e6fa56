"""Tiny messy CRM exports for flat-mode tests: one CSV per problem, written to a folder,
with a mapping that trains in a second or two (one Optuna trial, a few rounds). The frame
builders are in `leadscore.flat.corpus` (the corpus of planted problems); imported here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from leadscore.flat.corpus import QUICK_MODEL, base_frame, dates, high_cardinality_frame

__all__ = ["FAST_MODEL", "base_frame", "dates", "high_cardinality_frame", "write_export"]

FAST_MODEL = QUICK_MODEL  # the builders live in leadscore.flat.corpus


def write_export(folder: Path, df: pd.DataFrame, *, name: str = "export.csv", **mapping) -> Path:
    """Write `df` as `name` and a mapping for it; returns the mapping path."""
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / name, index=False)
    raw = {"file": name, "target": "Converted", "positive": "yes", "model": dict(FAST_MODEL),
           "screen": {"on_flag": "drop"}}
    raw.update(mapping)
    path = folder / "mapping.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
