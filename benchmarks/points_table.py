"""The learned points table against its model and the hand-written rules, out of time.

Reads the pipeline's outputs (data/processed/train.parquet, the feature catalog,
models/lightgbm, models/rules.json) and runs what the `points` stage runs
(`leadscore.modeling.points.points_release`: the table learned from the additive LightGBM
model on the train and calib slices, measured on the out-of-time test slice), without
writing anything. Prints the figures; last line: one JSON object.

    .venv/bin/python benchmarks/points_table.py
"""

from __future__ import annotations

import json

from leadscore.config import load_params
from leadscore.features.catalog import load_catalog
from leadscore.io import read_parquet
from leadscore.modeling.baseline import load_rules
from leadscore.modeling.estimators import load_model
from leadscore.modeling.points import LEARNED, points_release, points_summary
from leadscore.modeling.splits import split_from_params


def main() -> None:
    p = load_params("params.yaml")
    split = split_from_params(read_parquet("data/processed/train.parquet"), p)
    release = points_release(split, load_model("models/lightgbm"), load_rules("models/rules.json"),
                             load_catalog("data/processed/feature_catalog.json"), p)
    m = release.metrics
    print(points_summary(m))  # noqa: T201
    if m["available"]:
        auc = m["roc_auc"]
        out = {"lightgbm": auc["lightgbm"], "learned_points": auc[LEARNED],
               "learned_points_raw": auc[f"{LEARNED}_raw"], "hand_written_rules": auc["rules"],
               "fields": sum(m["fields"].values()), "mql_threshold": m["mql"]["threshold"]}
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))  # noqa: T201


if __name__ == "__main__":
    main()
