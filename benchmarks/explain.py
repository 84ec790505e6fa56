"""Benchmark: exact explanations of the trained LightGBM model on the real training table.

    .venv/bin/python benchmarks/explain.py [--rows 200000] [--slow-rows 20000]

Times, on the test slice repeated up to `--rows` rows:
- `fast`: `Explainer.contributions` on the booster matrix (additive table look-up path);
- `fast_raw`: the same from raw feature rows (includes building the model frame);
- `reasons`: `explain_rows` (top 3 + / - with texts) on top of the contributions;
and, on `--slow-rows` rows, LightGBM's `pred_contrib` and `shap.TreeExplainer`, with the
largest absolute difference of each from the fast path. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings

import numpy as np
import pandas as pd

from leadscore.config import load_params
from leadscore.explain.contributions import Explainer
from leadscore.explain.reasons import explain_rows
from leadscore.features.catalog import load_catalog
from leadscore.modeling.estimators import load_model
from leadscore.modeling.splits import split_from_params

log = logging.getLogger("benchmarks.explain")


def _rate(n: int, fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return n / (time.perf_counter() - t), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--slow-rows", type=int, default=20_000)
    ap.add_argument("--model", default="models/lightgbm")
    ap.add_argument("--train", default="data/processed/train.parquet")
    ap.add_argument("--catalog", default="data/processed/feature_catalog.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    test = split_from_params(pd.read_parquet(args.train), load_params()).test
    reps = -(-args.rows // len(test))
    raw = pd.concat([test] * reps, ignore_index=True).head(args.rows)
    model = load_model(args.model)
    cat = load_catalog(args.catalog)
    ex = Explainer.for_model(model)
    booster, k = ex.booster, ex.num_iteration
    X = ex.model_input(raw)
    frame = model.model.model_frame(raw.head(args.slow_rows))

    fast, contrib = _rate(len(X), lambda: ex.contributions(X))
    fast_raw, _ = _rate(len(raw), lambda: ex.contributions(raw, raw=True))
    reasons, _ = _rate(len(raw), lambda: explain_rows(contrib, raw, cat, ex.feature_names, 3))
    pc, ref = _rate(len(frame), lambda: booster.predict(frame, num_iteration=k, pred_contrib=True))
    import shap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        te = shap.TreeExplainer(booster)
        sh, sv = _rate(len(frame), lambda: te.shap_values(frame, tree_limit=k))
    head = contrib[: len(frame)]
    result = {
        "rows": len(X), "additive": ex.additive, "trees": k, "features": len(ex.feature_names),
        "fast_rows_per_s": round(fast), "fast_from_raw_rows_per_s": round(fast_raw),
        "reasons_rows_per_s": round(reasons), "pred_contrib_rows_per_s": round(pc),
        "shap_rows_per_s": round(sh),
        "max_abs_diff_vs_pred_contrib": float(np.max(np.abs(head - ref[:, :-1]))),
        "max_abs_diff_vs_shap": float(np.max(np.abs(head - sv))),
        "additivity_max_error": float(np.max(np.abs(
            contrib.sum(axis=1) + ex.expected_value() - booster.predict(X, num_iteration=k, raw_score=True)))),
    }
    log.info("fast path %.0f rows/s (from raw rows %.0f), reasons %.0f rows/s, pred_contrib %.0f rows/s, "
             "shap %.0f rows/s", fast, fast_raw, reasons, pc, sh)
    log.info("%s", json.dumps(result))


if __name__ == "__main__":
    main()
