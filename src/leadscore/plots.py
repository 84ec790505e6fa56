"""The data files `dvc plots show` draws, in the shape each chart needs (dvc.yaml's top-level
`plots:` names the folders, their template and their x / y fields).

Dependence ("how a top driver moves the score"): one file per top field, in one of two
folders because the two kinds need two chart types:

    <folder>/numeric/<field>.csv       value, contribution: one row per distinct pair, sorted
                                       by value (template `scatter`: x value, y contribution)
    <folder>/categorical/<field>.csv   value, contribution, leads: one row per level, the
                                       mean contribution (template `bar_horizontal_sorted`:
                                       x contribution, y value)

A field that left the top drivers loses its file. The long-format `dependence.csv` and the
per-field `dependence_<field>.csv` the report reads are written by
`leadscore.explain.drivers.write_dependence`; these files are only for DVC.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from leadscore.io import write_csv

DEPENDENCE_KINDS = ("numeric", "categorical")


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def dependence_plot_frame(df: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """(kind, frame) of one field's dependence data (columns value, contribution): numeric
    values give their distinct (value, contribution) pairs, others one row per level."""
    if _is_numeric(df["value"]):
        out = (df[["value", "contribution"]].dropna().drop_duplicates()
               .sort_values(["value", "contribution"], kind="stable").reset_index(drop=True))
        return "numeric", out
    text = df["value"].astype("string")  # the explainer writes a missing level as "nan"
    levels = df.assign(value=text.mask(text.isin(["nan", "None", "<NA>"])).fillna("(missing)"))
    out = (levels.groupby("value", sort=False)["contribution"].agg(["mean", "size"])
           .rename(columns={"mean": "contribution", "size": "leads"}).reset_index()
           .sort_values("contribution", ascending=False, kind="stable").reset_index(drop=True))
    return "categorical", out


def write_dependence_plots(deps: Mapping[str, pd.DataFrame], folder: str | Path) -> dict[str, Path]:
    """One plot file per field under `folder`/numeric or `folder`/categorical (module
    docstring); stale files are removed. Returns field -> file."""
    folder = Path(folder)
    written: dict[str, Path] = {}
    for name, df in deps.items():
        kind, frame = dependence_plot_frame(df)
        path = folder / kind / f"{name}.csv"
        write_csv(frame, path)
        written[name] = path
    keep = set(written.values())
    for kind in DEPENDENCE_KINDS:
        for old in (folder / kind).glob("*.csv") if (folder / kind).is_dir() else ():
            if old not in keep:
                old.unlink()
        (folder / kind).mkdir(parents=True, exist_ok=True)
    return written
