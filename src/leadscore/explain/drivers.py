"""Global drivers: what moves the model's score, grouped back to business fields.

A **field** is one business concept (leadscore.explain.reasons.field_of): a catalog feature, or the
windowed counts of one activity together (`pricing_page_view_7d/30d/90d` -> "Pricing-page
views"). LightGBM takes categoricals natively, so a categorical is already one feature
(no one-hot parts to add up). Per field and row, the field's contribution is the sum of its
features' exact log-odds contributions; a field's importance is the mean |contribution|.

Direction (`field_effect`, also used by the report to caption each dependence chart from
the very rows it draws): for a numeric field (a yes/no flag included), the sign of the rank
correlation between the value of its most important feature and the field's contribution,
over the rows with a value ("+" higher raises the score, "-" lowers it, "mixed" when
|correlation| < `min_corr` or there is too little data: "no clear direction"). A categorical
field is "mixed" with its top categories up and down (mean contribution per category,
categories with at least `min_count` rows).

Dependence data (`dependence_frame`): value (of the field's most important feature;
categoricals as strings) vs the field's contribution, for a seeded sample of rows
(`dependence_frames` for the top drivers, `write_dependence` for the plot CSVs).

`explain_slice` does it all for one slice (the explain stage's out-of-time test slice):
contributions (timed), the additivity check against the model's log-odds, the drivers and
the dependence data; `SliceExplanation.summary()` is reports/drivers.json.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from leadscore.explain.reasons import _FLAGS, field_of, is_flag, pretty_value, short_label
from leadscore.features.catalog import FeatureCatalog, FeatureSpec
from leadscore.io import write_csv

if TYPE_CHECKING:  # the report imports `field_effect` without LightGBM
    from leadscore.explain.contributions import Explainer

DEFAULT_MIN_CORR = 0.3  # |rank correlation| below which a direction is "mixed"


def fields(catalog: FeatureCatalog, feature_names: list[str]) -> dict[str, list[int]]:
    """{field: column indices into `feature_names`}, in catalog order."""
    out: dict[str, list[int]] = {}
    for j, name in enumerate(feature_names):
        out.setdefault(field_of(catalog[name])[0], []).append(j)
    return out


def _lower(s: str) -> str:
    """Lower-case the first letter for use mid-sentence ("E-mail opens" -> "e-mail opens"),
    unless the first word is an acronym ("BANT budget", "IT spend")."""
    first = re.match(r"[A-Za-z]+", s)
    if first and sum(ch.isupper() for ch in first[0]) > 1:
        return s
    return s[:1].lower() + s[1:]


def _direction_text(spec: FeatureSpec, field_label: str, windowed: bool, direction: str) -> str:
    label = short_label(spec)
    if direction == "mixed":
        return (f"{label}: no clear direction (the effect does not steadily rise or fall with the "
                "value).")
    word = "raises" if direction == "+" else "lowers"
    if spec.name in _FLAGS or is_flag(spec):
        text = _FLAGS.get(spec.name, (spec.label,))[0]
        return f'"{text}" {word} the score.'
    if windowed:
        return f"More {_lower(field_label)} {word[:-1]} the score."
    if spec.unit == "days":
        return f"The more {_lower(label)}, the {'higher' if direction == '+' else 'lower'} the score."
    return f"A higher {_lower(label)} {word} the score."


def _rank_corr(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")
    rx = pd.Series(x[ok]).rank().to_numpy()
    ry = pd.Series(y[ok]).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclass(frozen=True)
class Effect:
    """How one field moves the score, in words (`field_effect`)."""

    direction: str  # "+", "-" or "mixed"
    text: str
    rank_correlation: float | None = None  # numeric fields: value vs contribution
    top_up: list[str] = field(default_factory=list)  # categorical: categories that raise it
    top_down: list[str] = field(default_factory=list)  # ... and lower it


def field_effect(values: np.ndarray | pd.Series, contribution: np.ndarray, spec: FeatureSpec, *,
                 field_label: str | None = None, windowed: bool = False, min_corr: float = DEFAULT_MIN_CORR,
                 n_categories: int = 3, min_count: int = 30) -> Effect:
    """The direction of a field's effect from its values (of its most important feature
    `spec`) and its contributions, same rows (see the module docstring)."""
    fc = np.asarray(contribution, dtype=float)
    if spec.kind == "categorical":
        v = pd.Series(values).astype(str).to_numpy()
        g = pd.DataFrame({"v": v, "c": fc}).groupby("v")["c"].agg(["mean", "size"])
        g = g[g["size"] >= min_count]
        up = g[g["mean"] > 0].sort_values("mean", ascending=False)
        down = g[g["mean"] < 0].sort_values("mean")
        top_up = [pretty_value(x) for x in up.index[:n_categories]]
        top_down = [pretty_value(x) for x in down.index[:n_categories]]
        parts = []
        if top_up:
            parts.append(f"{', '.join(top_up)} {'raises' if len(top_up) == 1 else 'raise'} the score")
        if top_down:
            parts.append(f"{', '.join(top_down)} {'lowers' if len(top_down) == 1 else 'lower'} it")
        text = f"{short_label(spec)} matters" + (": " + "; ".join(parts) + "." if parts else ".")
        return Effect("mixed", text, None, top_up, top_down)
    corr = _rank_corr(pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float), fc)
    direction = "mixed" if not np.isfinite(corr) or abs(corr) < min_corr else "+" if corr > 0 else "-"
    text = _direction_text(spec, field_label or field_of(spec)[1], windowed, direction)
    return Effect(direction, text, corr if np.isfinite(corr) else None)


def global_drivers(contrib: np.ndarray, X: pd.DataFrame, feature_names: list[str],
                   catalog: FeatureCatalog, *, min_corr: float = DEFAULT_MIN_CORR, n_categories: int = 3,
                   min_count: int = 30) -> list[dict]:
    """Drivers by field, most important first (see the module docstring)."""
    out = []
    member_abs = np.abs(contrib).mean(axis=0) if len(contrib) else np.zeros(len(feature_names))
    for name, idx in fields(catalog, feature_names).items():
        fc = contrib[:, idx].sum(axis=1)
        rep = feature_names[idx[int(np.argmax(member_abs[idx]))]]
        spec = catalog[rep]
        field_label = field_of(spec)[1]
        eff = field_effect(X[rep].to_numpy(), fc, spec, field_label=field_label, windowed=len(idx) > 1,
                           min_corr=min_corr, n_categories=n_categories, min_count=min_count)
        out.append({
            "field": name, "label": field_label, "group": spec.group,
            "mean_abs_contribution": float(np.abs(fc).mean()) if len(fc) else 0.0,
            "direction": eff.direction, "direction_text": eff.text, "top_up": eff.top_up,
            "top_down": eff.top_down, "features": [feature_names[j] for j in idx], "value_feature": rep,
            "rank_correlation": eff.rank_correlation,
        })
    out.sort(key=lambda d: -d["mean_abs_contribution"])
    return out


def dependence_frame(contrib: np.ndarray, X: pd.DataFrame, feature_names: list[str],
                     driver: dict, rows: np.ndarray) -> pd.DataFrame:
    """value (of the driver's most important feature) vs the field's contribution, for
    `rows` (positional indices)."""
    pos = {n: j for j, n in enumerate(feature_names)}
    idx = [pos[f] for f in driver["features"]]
    value = X[driver["value_feature"]].iloc[rows]
    if isinstance(value.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(value):
        value = value.astype(str)
    return pd.DataFrame({"value": value.to_numpy(),
                         "contribution": contrib[np.ix_(rows, idx)].sum(axis=1)})


def dependence_frames(contrib: np.ndarray, X: pd.DataFrame, feature_names: list[str],
                      drivers: list[dict], *, top: int, rows: int, seed: int) -> dict[str, pd.DataFrame]:
    """{field: dependence frame} for the `top` drivers, on one seeded sample of up to `rows`
    rows (sorted positions, drawn once by `np.random.default_rng(seed)`)."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(X), size=min(rows, len(X)), replace=False))
    return {d["field"]: dependence_frame(contrib, X, feature_names, d, sample) for d in drivers[:top]}


def write_dependence(deps: dict[str, pd.DataFrame], folder: str | Path) -> None:
    """folder/dependence_<field>.csv per field (stale ones of fields no longer on top are
    removed) and folder/dependence.csv with all of them (long format: field, value,
    contribution; for `dvc plots`)."""
    folder = Path(folder)
    for old in folder.glob("dependence_*.csv"):  # drop plots of fields no longer on top
        if old.stem.removeprefix("dependence_") not in deps:
            old.unlink()
    for name, df in deps.items():
        write_csv(df, folder / f"dependence_{name}.csv")
    write_csv(pd.concat([df.assign(field=name, value=df["value"].astype(str)) for name, df in deps.items()],
                        ignore_index=True)[["field", "value", "contribution"]],
              folder / "dependence.csv")


@dataclass
class SliceExplanation:
    """What `explain_slice` found on one slice."""

    contrib: np.ndarray  # (rows, features) exact log-odds contributions
    base_value: float
    additive: bool  # the fast table path (else LightGBM's pred_contrib)
    additivity: float  # max |contributions + base value - log-odds|
    seconds: float  # time to compute `contrib`
    drivers: list[dict]
    dependence: dict[str, pd.DataFrame]
    min_corr: float = DEFAULT_MIN_CORR  # |rank correlation| below which a direction is "mixed"

    @property
    def rows_per_s(self) -> float:
        return len(self.contrib) / max(self.seconds, 1e-9)

    def log_summary(self, log: logging.Logger) -> None:
        log.info("additivity: max |contributions + base - log-odds| = %.2e; %d rows explained in "
                 "%.2fs (%.0f rows/s)", self.additivity, len(self.contrib), self.seconds, self.rows_per_s)
        log.info("top drivers: %s", "; ".join(f"{d['label']} ({d['direction']}, {d['mean_abs_contribution']:.3f})"
                                              for d in self.drivers[:8]))

    def summary(self, slice_name: str = "test", model: str = "lightgbm") -> dict:
        """The drivers report (reports/drivers.json)."""
        return {"base_value": self.base_value, "model": model,
                "explainer": "additive" if self.additive else "pred_contrib",
                "rows": int(len(self.contrib)), "slice": slice_name,
                "min_direction_corr": self.min_corr, "drivers": self.drivers}


def explain_slice(explainer: Explainer, X: pd.DataFrame, margin: np.ndarray, catalog: FeatureCatalog, *,
                  min_corr: float, top: int, rows: int, seed: int) -> SliceExplanation:
    """Contributions of raw feature rows `X` (timed), checked against the model's log-odds
    `margin` (`check_additivity`), the global drivers and the dependence data of the `top`
    drivers on a seeded sample of `rows` rows."""
    from leadscore.explain.contributions import check_additivity

    t = time.perf_counter()
    contrib = explainer.contributions(X, raw=True)
    seconds = time.perf_counter() - t
    additivity = check_additivity(contrib, explainer.expected_value(), margin)
    names = explainer.feature_names
    drivers = global_drivers(contrib, X, names, catalog, min_corr=min_corr)
    deps = dependence_frames(contrib, X, names, drivers, top=top, rows=rows, seed=seed)
    return SliceExplanation(contrib, explainer.expected_value(), explainer.additive, additivity, seconds,
                            drivers, deps, min_corr)
