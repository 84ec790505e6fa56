"""Flat mode on the corpus of messy exports (`leadscore.flat.corpus`) and the bank example:
what each run did, and the test ROC-AUC before and after issue 12's items 3, 4, 5 and 11.

Each case trains with `run_flat` (default settings but a larger budget than the tests': 5
Optuna trials, 500 rounds) into a temporary folder; a case whose documented result is an
error prints the error's class and exit code. For every run that trains, "before" reruns it
with the old behaviour of each item that changes something in that run, by mapping keys only:

- item 3 (certainty rule), when the screen flagged a column by it: ``allow: [column]`` (the
  old screen kept it);
- item 4 (level cap chosen on validation), when a categorical has more than the smallest cap
  of levels: ``max_levels: 30`` (the old top-30 fold);
- item 5 (date parts), when the run has any: ``date_parts: false``;
- item 11 (additive or not), always: ``model.additive: true`` ("after" is ``auto``).

Figures: LightGBM's ROC-AUC on the test slice (out of time when the export has a date or
``time_order: rows``, else a random stratified 20%), as evaluate.json reports it (calibrated
probabilities) and on its raw scores (``roc_auc_uncalibrated``: an isotonic map ties scores
into steps). A "before" with a leak kept scores higher: that is the leak's lift, not a better
model. The bank example (examples/bank_marketing/mapping.yaml) runs with its own settings
(skipped with a note when its data file is missing). Last line: one JSON object.

    .venv/bin/python benchmarks/messy_exports.py [--seeds 0,1,2] [--no-bank]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from leadscore.errors import LeadscoreError
from leadscore.flat.corpus import CORPUS, QUICK_MODEL, write_case
from leadscore.flat.mapping import load_mapping, mapping_from_dict
from leadscore.flat.run import run_flat
from leadscore.io import read_json

BANK = Path(__file__).resolve().parents[1] / "examples" / "bank_marketing" / "mapping.yaml"
MODEL = {**QUICK_MODEL, "n_trials": 5, "timeout_s": 60, "num_threads": 2, "max_boost_rounds": 500,
         "early_stopping_rounds": 30, "calibration_folds": 3}
ITEMS = {"3": "certainty rule (before: allow the column)", "4": "level cap (before: max_levels 30)",
         "5": "date parts (before: date_parts false)", "11": "additive auto (before: additive true)"}


def run(raw: dict, base_dir: Path, out: Path) -> dict:
    """One flat run of mapping dict `raw`: its figures and what it did."""
    t0 = time.perf_counter()
    result = run_flat(mapping_from_dict(raw, base_dir=base_dir), out)
    ev, screen = result.metrics, read_json(out / "metrics" / "screen.json")
    cleaning = read_json(out / "metrics" / "train.json")["cleaning"]
    certainty = [f["source"] for f in screen["flagged"]
                 if "certainty" in f["rules"] and not f["allowed"]]
    return {"roc_auc": round(ev["lightgbm"]["roc_auc"], 4),
            "roc_auc_raw": round(ev["lightgbm"]["roc_auc_uncalibrated"], 4),
            "seconds": round(time.perf_counter() - t0, 1),
            "split": ev["split"]["kind"], "dropped": ev["screen"]["dropped"], "certainty": certainty,
            "pii": [p["column"] for p in ev.get("pii", [])],
            "level_cap": ev["levels"].get("cap"),
            "level_candidates": bool(ev["levels"].get("candidates")),
            "levels_kept": ev["levels"].get("levels_kept", {}),
            "date_parts": cleaning.get("date_parts", []),
            "not_numbers": cleaning.get("not_numbers", {}),
            "dropped_id_like_or_empty": cleaning.get("dropped_id_like_or_empty", []),
            "additive": ev["additive"].get("chosen")}


def did(r: dict) -> str:
    """What a run did, in a few words."""
    parts = [f"{r['split']} split"]
    if r["dropped"]:
        parts.append(f"screen dropped {r['dropped']}" + (f" (certainty: {r['certainty']})" if r["certainty"] else ""))
    if r["pii"]:
        parts.append(f"PII dropped {r['pii']}")
    if r["level_candidates"]:
        parts.append(f"level cap {r['level_cap']} ({r['levels_kept']})")
    if r["date_parts"]:
        parts.append(f"date parts {[p.removeprefix('created_') for p in r['date_parts']]}")
    if r["dropped_id_like_or_empty"]:
        parts.append(f"id-like/empty dropped {r['dropped_id_like_or_empty']}")
    parts.append(f"ships {r['additive']} trees")
    return "; ".join(parts)


def befores(raw: dict, after: dict) -> dict[str, dict]:
    """The "before" mapping of each item that changed something in the run `after`."""
    out = {}
    if after["certainty"]:
        out["3"] = {**raw, "allow": [*raw.get("allow", []), *after["certainty"]]}
    if after["level_candidates"]:
        out["4"] = {**raw, "max_levels": 30}
    if after["date_parts"]:
        out["5"] = {**raw, "date_parts": False}
    out["11"] = {**raw, "model": {**raw.get("model", {}), "additive": True}}
    return out


def measure(name: str, raw: dict, base_dir: Path, tmp: Path) -> dict:
    after = run(raw, base_dir, tmp / f"{name}_after")
    entry = {"did": did(after), "after": after, "items": {}}
    for item, before_raw in befores(raw, after).items():
        before = run(before_raw, base_dir, tmp / f"{name}_before_{item}")
        entry["items"][item] = {"before": before["roc_auc"], "after": after["roc_auc"],
                                "before_raw": before["roc_auc_raw"], "after_raw": after["roc_auc_raw"],
                                "before_did": did(before)}
    return entry


def corpus_case(name: str, seed: int, tmp: Path) -> dict:
    case = CORPUS[name](seed)
    folder = tmp / f"{name}_{seed}"
    write_case(folder / "in", case.frame, case.mapping)
    raw = {**copy.deepcopy(case.mapping), "file": "export.csv",
           "model": {**case.mapping.get("model", {}), **MODEL}}
    if not case.trains:
        try:
            run_flat(mapping_from_dict(raw, base_dir=folder / "in"), folder / "out")
        except LeadscoreError as err:
            return {"problem": case.problem, "error": type(err).__name__, "exit_code": err.exit_code,
                    "as_documented": type(err).__name__ == case.error and err.exit_code == case.exit_code}
        return {"problem": case.problem, "error": None, "as_documented": False}
    return {"problem": case.problem, **measure(name, raw, folder / "in", folder)}


def fmt(x: float | None) -> str:
    return "  -   " if x is None else f"{x:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="corpus seeds, comma-separated (default 0)")
    parser.add_argument("--no-bank", action="store_true", help="skip the bank example")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    logging.basicConfig(level=logging.ERROR)
    results: dict = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name in CORPUS:
            results[name] = {str(s): corpus_case(name, s, tmp) for s in seeds}
        bank_note = None
        if args.no_bank:
            bank_note = "skipped (--no-bank)"
        elif not load_mapping(BANK).path.is_file():
            bank_note = f"skipped: {load_mapping(BANK).path} is missing"
        else:
            raw = yaml.safe_load(BANK.read_text())
            results["bank"] = {"-": {"problem": "the bank example, its own settings",
                                     **measure("bank", raw, BANK.parent, tmp)}}

    print(f"\nFlat mode on messy exports: LightGBM test ROC-AUC as reported (raw scores in "  # noqa: T201
          f"brackets), seeds {seeds}, {time.perf_counter() - t0:.0f}s\n")
    print(f"{'case':<18} {'seed':>4}  what the run did")  # noqa: T201
    for name, by_seed in results.items():
        for seed, r in by_seed.items():
            what = (f"{r['did']}; ROC-AUC {fmt(r['after']['roc_auc'])} ({fmt(r['after']['roc_auc_raw'])})"
                    if "did" in r else
                    f"error {r['error']} exit {r.get('exit_code')} "
                    f"({'as documented' if r['as_documented'] else 'NOT as documented'})")
            print(f"{name:<18} {seed:>4}  {what}")  # noqa: T201
    print(f"\n{'case':<18} {'seed':>4}  {'item':<44} {'before':>16} {'after':>16} {'change':>8}")  # noqa: T201
    for name, by_seed in results.items():
        for seed, r in by_seed.items():
            for item, f in r.get("items", {}).items():
                print(f"{name:<18} {seed:>4}  {item + ' ' + ITEMS[item]:<44} "  # noqa: T201
                      f"{fmt(f['before'])} ({fmt(f['before_raw'])}) {fmt(f['after'])} ({fmt(f['after_raw'])}) "
                      f"{f['after'] - f['before']:+.4f}")
    for item in ITEMS:
        changes = [f["after_raw"] - f["before_raw"] for by_seed in results.values()
                   for r in by_seed.values() for i, f in r.get("items", {}).items() if i == item]
        if changes:
            print(f"item {item:>2}: mean raw-score change {np.mean(changes):+.4f} over {len(changes)} run(s)")  # noqa: T201
    if bank_note:
        print(f"bank example: {bank_note}")  # noqa: T201
    print(json.dumps({"seeds": seeds, "bank_note": bank_note, "results": results}))  # noqa: T201


if __name__ == "__main__":
    main()
