"""The learned points table against its model and the hand-written rules, out of time.

Reads the pipeline's outputs (data/processed/train.parquet, the feature catalog,
models/lightgbm, models/rules.json), learns the integer points table from the additive
LightGBM model (`leadscore.modeling.points.learn_points`, calibrated on the calib slice) and
prints ROC-AUC on the out-of-time test slice. Last line: one JSON object.

    .venv/bin/python benchmarks/points_table.py
"""

from __future__ import annotations

import json

from sklearn.metrics import roc_auc_score

from leadscore.config import load_params
from leadscore.features.catalog import load_catalog
from leadscore.io import read_parquet
from leadscore.modeling.baseline import load_rules
from leadscore.modeling.estimators import load_model
from leadscore.modeling.points import learn_points
from leadscore.modeling.splits import split_from_params


def main() -> None:
    p = load_params("params.yaml")
    split = split_from_params(read_parquet("data/processed/train.parquet"), p)
    model = load_model("models/lightgbm")
    points = learn_points(model, load_catalog("data/processed/feature_catalog.json"), split.train,
                          split.calib, capacity=p.evaluate.reps * p.evaluate.leads_per_rep)
    y, test = split.test["label"], split.test
    out = {"lightgbm": roc_auc_score(y, model.predict_proba(test)[:, 1]),
           "learned_points": roc_auc_score(y, points.predict_proba(test)[:, 1]),
           "learned_points_raw": roc_auc_score(y, points.decision_function(test)),
           "hand_written_rules": roc_auc_score(y, load_rules("models/rules.json").predict_proba(test)[:, 1]),
           "fields": len({i.column for i in points.items()}), "mql_threshold": points.mql_threshold}
    for k, v in out.items():
        print(f"{k:>20}: {v:.4f}" if isinstance(v, float) else f"{k:>20}: {v}")  # noqa: T201
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))  # noqa: T201


if __name__ == "__main__":
    main()
