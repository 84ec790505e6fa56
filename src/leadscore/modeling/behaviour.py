"""Behaviour checks on a trained model: directions marketing relies on, lead by lead.

`direction_check` sets one activity to 0, 1, 2, ... views for every lead (the same count in
every window, so 7d <= 30d <= 90d holds), everything else unchanged, and reports whether any
lead's probability ever falls when the count rises. The evaluate stage records it for the
pipeline's model; the behaviour tests assert it on a model trained in the test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def direction_check(model, X: pd.DataFrame, features: Sequence[str], max_count: int = 12) -> dict:
    """`model.predict_proba` on `X` with `features` set to 0..max_count. Returns the smallest
    step (negative: a fall), the share of leads with any fall, and the mean probability at 0
    and at `max_count`."""
    proba = []
    for count in range(max_count + 1):
        Xc = X.copy()
        for f in features:
            Xc[f] = float(count)
        proba.append(model.predict_proba(Xc)[:, 1])
    grid = np.vstack(proba)
    steps = np.diff(grid, axis=0)
    return {"features": list(features), "leads": int(len(X)), "max_count": max_count,
            "min_step": float(steps.min()) if len(X) else 0.0,
            "leads_with_a_fall": float((steps < -1e-12).any(axis=0).mean()) if len(X) else 0.0,
            "mean_probability_at_0": float(grid[0].mean()) if len(X) else None,
            "mean_probability_at_max": float(grid[-1].mean()) if len(X) else None}
