"""High-cardinality categoricals in flat mode: the old top-30 fold against the cap chosen on
validation (`leadscore.flat.levels`, issue 12 item 4), on a planted signal.

The export (`tests.flat.exports.high_cardinality_frame`): rows in time order, a `Landing
Page` with 500 levels (Zipf-like shares) whose 60 mid-frequency levels (ranks 30-89, all
outside a top-30 cap) convert at 3x the base rate of 8%, and a mild `Page Visits` effect.
Per seed and size, flat mode's training (`train_flat`: single-feature trees, 3 Optuna
trials) runs with ``max_levels: 30`` (the old fold) and ``max_levels: auto``; printed: the
LightGBM out-of-time test ROC-AUC (its raw scores, the last 20% of rows) both ways, the cap
chosen and the seconds. Last line: one JSON object.

    .venv/bin/python benchmarks/high_cardinality.py
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fixture lives in tests/

from leadscore.flat.mapping import load_mapping  # noqa: E402
from leadscore.flat.run import train_flat  # noqa: E402
from leadscore.flat.table import flat_split, load_flat  # noqa: E402
from tests.flat.exports import FAST_MODEL, high_cardinality_frame, write_export  # noqa: E402

MODEL = {**FAST_MODEL, "n_trials": 3, "max_boost_rounds": 500, "early_stopping_rounds": 30,
         "additive": True, "min_positives": 20}


def run(folder: Path, df, max_levels) -> tuple[float, object, float]:
    """(test ROC-AUC, chosen cap, seconds) of flat-mode training with `max_levels`."""
    m = load_mapping(write_export(folder, df, id="Lead ID", time_order="rows",
                                  max_levels=max_levels, model=MODEL))
    table = load_flat(m)
    t0 = time.perf_counter()
    models = train_flat(table, flat_split(table, m), m, table.catalog)
    test = models.split.test
    auc = float(roc_auc_score(test["label"], models.lightgbm.decision_function(test)))
    return auc, models.summary["levels"]["cap"], time.perf_counter() - t0


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (8_000, 12_000):
            gains = []
            for seed in range(5):
                df, hot = high_cardinality_frame(n=n, seed=seed)
                old, _, s_old = run(Path(tmp) / f"{n}_{seed}_30", df, 30)
                new, cap, s_new = run(Path(tmp) / f"{n}_{seed}_auto", df, "auto")
                gains.append(new - old)
                print(f"rows {n:>6}  seed {seed}  planted share {hot.mean():.1%}  ROC-AUC top-30 fold "  # noqa: T201
                      f"{old:.4f} ({s_old:.1f}s)  chosen cap {cap} {new:.4f} ({s_new:.1f}s)  gain {new - old:+.4f}")
            out[str(n)] = {"mean_gain": round(float(np.mean(gains)), 4),
                           "min_gain": round(float(np.min(gains)), 4)}
            print(f"rows {n}: mean gain {np.mean(gains):+.4f}, smallest {np.min(gains):+.4f}")  # noqa: T201
    print(json.dumps(out))  # noqa: T201


if __name__ == "__main__":
    main()
