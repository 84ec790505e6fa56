"""Categorical level caps for flat mode, chosen on the validation slice.

A CRM export can hold a categorical column with hundreds of levels (a landing-page id, a
campaign code). Folding all but the 30 most frequent into ``other`` loses the signal of the
mid-frequency levels; keeping every level lets LightGBM's native categorical splits
(levels ordered by their smoothed gradient statistics, `cat_smooth`, `min_data_per_group`,
`max_cat_threshold`) use them, at the risk of fitting noise on rare ones. So the cap is a
choice made on data, like any other setting:

With ``max_levels: auto`` (the default) cleaning keeps every level
(`leadscore.flat.table.clean_category`) and `choose_levels` tries each cap of
``model.level_caps`` (30, 100, 300) and "all". A cap N keeps, per categorical column with
more levels than the smallest cap (smaller ones are never folded, as before), its N most
frequent levels in the pre-test rows (train, valid and calib: the rows the refit sees) among
those with at least ``model.min_level_rows`` rows ("all": every such level), and folds the
rest into ``other``. Per candidate, a LightGBM with fixed settings (`LEVEL_PARAMS`) is
fitted on the train slice with early stopping on the valid slice; the cap with the lowest
validation log loss is applied to all four slices (ties go to the smaller cap). Counts come
from the pre-test rows (no labels), labels from the train and valid slices: the test slice
is never looked at. Caps that keep the same levels are tried once; when every candidate
keeps the same levels nothing is fitted.

The logistic check trains on the same folded columns (its one-hot encoding is L2-penalised,
so rare levels stay near zero). A fixed ``max_levels: N`` keeps today's fold at cleaning
(the N - 1 most frequent levels of the whole file) and skips the choice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

from leadscore.features.catalog import FeatureCatalog
from leadscore.flat.mapping import Mapping
from leadscore.modeling.estimators import LightGBMClassifier
from leadscore.modeling.splits import Split

log = logging.getLogger(__name__)

OTHER = "other"  # as leadscore.flat.table.OTHER
ALL = "all"
# Fixed LightGBM settings for comparing caps (the shipped model is tuned afterwards).
LEVEL_PARAMS: dict = {"num_leaves": 15, "min_data_in_leaf": 20, "feature_fraction": 0.9,
                      "lambda_l2": 1.0, "cat_smooth": 10.0, "min_data_per_group": 50,
                      "max_cat_threshold": 64}


@dataclass
class LevelChoice:
    """The chosen cap, the levels kept per categorical column and the candidate table."""

    cap: int | str | None  # a cap, "all", or None (a fixed max_levels: chosen at cleaning)
    keep: dict[str, list[str]] = field(default_factory=dict)  # column -> kept levels
    candidates: list[dict] = field(default_factory=list)
    note: str = ""
    seconds: float = 0.0

    def summary(self) -> dict:
        return {"cap": self.cap, "levels_kept": {c: len(v) for c, v in self.keep.items()},
                "candidates": self.candidates, "note": self.note, "seconds": round(self.seconds, 1)}


def ranked_levels(train: pd.DataFrame, column: str, min_rows: int) -> list[str]:
    """The levels of `column` with at least `min_rows` rows in `train`, most frequent first
    (ties in level order, so the ranking is deterministic)."""
    counts = train[column].dropna().astype(str).value_counts()
    counts = counts[counts >= min_rows]
    return sorted(counts.index, key=lambda v: (-int(counts[v]), v))


def fold_levels(frame: pd.DataFrame, keep: dict[str, list[str]]) -> pd.DataFrame:
    """`frame` with every level of a `keep` column outside its kept list as ``other``
    (missing stays missing)."""
    out = frame.copy()
    for col, levels in keep.items():
        s = out[col]
        folded = s.where(s.isna() | s.astype(str).isin(set(levels)), OTHER).astype(object)
        out[col] = folded.where(s.notna(), None)  # missing as None, as cleaning leaves it
    return out


def fold_split(split: Split, keep: dict[str, list[str]]) -> Split:
    """Every slice of `split` folded by `fold_levels`."""
    parts = {name: fold_levels(split[name], keep) for name in ("train", "valid", "calib", "test")}
    mature = fold_levels(split.mature, keep) if not split.mature.empty else split.mature
    return replace(split, **parts, mature=mature)


def _valid_scores(split: Split, catalog: FeatureCatalog, keep: dict[str, list[str]],
                  mapping: Mapping, additive: bool) -> dict:
    m = mapping.model
    tr, va = fold_levels(split.train, keep), fold_levels(split.valid, keep)
    est = LightGBMClassifier(feature_names=catalog.names, categorical_features=catalog.categorical,
                             params={**LEVEL_PARAMS, "learning_rate": m.learning_rate},
                             max_boost_rounds=m.max_boost_rounds,
                             early_stopping_rounds=m.early_stopping_rounds, seed=mapping.seed,
                             num_threads=m.num_threads, additive=additive)
    est.fit(tr, tr["label"], eval_set=(va, va["label"]))
    p = est.predict_proba(va)[:, 1]
    y = va["label"].to_numpy()
    return {"valid_log_loss": float(log_loss(y, p, labels=[0, 1])),
            "valid_roc_auc": float(roc_auc_score(y, p)), "rounds": est.best_iteration_}


def choose_levels(split: Split, catalog: FeatureCatalog, mapping: Mapping) -> tuple[Split, LevelChoice]:
    """The split with its categorical columns capped (see the module docstring) and the choice."""
    cats = [c for c in catalog.categorical if c in split.train]
    if mapping.max_levels != "auto":
        return split, LevelChoice(None, note=f"max_levels {mapping.max_levels}: levels folded at cleaning")
    if not cats:
        return split, LevelChoice(ALL, note="no categorical column")
    t0 = time.perf_counter()
    m = mapping.model
    pre_test = pd.concat([split.train, split.valid, split.calib], ignore_index=True)
    smallest = min(m.level_caps, default=2)
    ranked = {c: ranked_levels(pre_test, c, m.min_level_rows) for c in cats
              if pre_test[c].nunique() > smallest}  # small columns are never folded
    if not ranked:
        return split, LevelChoice(ALL, note=f"no categorical column has more than {smallest} levels: "
                                            "nothing folded, nothing to choose")
    options: list[tuple[int | str, dict[str, list[str]]]] = []
    for cap in (*m.level_caps, ALL):
        keep = {c: (r if cap == ALL else r[:cap]) for c, r in ranked.items()}
        if not any(keep == k for _, k in options):
            options.append((cap, keep))
    additive = m.additive is not False  # single-feature trees for "auto" and True: cheaper
    if len(options) == 1:
        cap, keep = options[0]
        note = f"every cap keeps the same levels ({m.min_level_rows}+ rows each): nothing to choose"
        choice = LevelChoice(cap, keep, [{"cap": cap, "levels": {c: len(v) for c, v in keep.items()}}],
                             note, time.perf_counter() - t0)
    else:
        rows = []
        for cap, keep in options:
            scores = _valid_scores(split, catalog, keep, mapping, additive)
            rows.append({"cap": cap, "levels": {c: len(v) for c, v in keep.items()}, **scores})
        best = int(np.argmin([r["valid_log_loss"] for r in rows]))  # first (smallest cap) on ties
        cap, keep = options[best]
        note = (f"cap {cap} chosen on validation log loss among "
                + ", ".join(f"{r['cap']} ({r['valid_log_loss']:.5f})" for r in rows))
        choice = LevelChoice(cap, keep, rows, note, time.perf_counter() - t0)
    folded = {c: int(pre_test[c].notna().sum() - pre_test[c].astype(str).isin(set(v)).sum())
              for c, v in keep.items()}
    log.info("categorical levels: %s (%.1fs); pre-test rows folded into '%s': %s", choice.note,
             choice.seconds, OTHER, folded)
    return fold_split(split, keep), choice
