"""A small, time-ordered slice of the real UCI bank data and its mapping, for flat-mode tests."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from leadscore.flat import flat_split, load_flat
from leadscore.mapping import Mapping, mapping_from_dict

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bank_marketing"
BANK_GZ = EXAMPLE / "data" / "bank-additional-full.csv.gz"
SLICE_ROWS = 3000


@functools.cache
def bank_slice_csv() -> Path:
    """3,000 rows spread evenly over the file, kept in file (time) order, as a ';' CSV."""
    df = pd.read_csv(BANK_GZ, sep=";", dtype=str, keep_default_na=False)
    idx = np.linspace(0, len(df) - 1, SLICE_ROWS).round().astype(int)
    folder = Path(tempfile.mkdtemp(prefix="bank_slice_"))
    path = folder / "bank_slice.csv"
    df.iloc[idx].to_csv(path, sep=";", index=False)
    return path


def bank_mapping(**overrides) -> Mapping:
    """The worked example's mapping on the slice: default screen (refuse), a small budget."""
    raw = yaml.safe_load((EXAMPLE / "mapping.yaml").read_text())
    raw["file"] = str(bank_slice_csv())
    raw.pop("screen", None)
    raw["model"] = {"n_trials": 3, "timeout_s": 20, "num_threads": 1, "min_positives": 20,
                    "max_boost_rounds": 300}
    raw.update(overrides)
    return mapping_from_dict(raw, base_dir=EXAMPLE, source="bank slice mapping")


def bank_slice_table(**overrides):
    m = bank_mapping(**overrides)
    table = load_flat(m)
    return table, flat_split(table, m), m
