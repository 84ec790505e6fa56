"""What changed between the champion and the challenger, for marketing (reports/changes.json).

`compare_scores` is pure: it takes both sides' scores and contributions on the same rows
(plain frames and lists, no scorer objects, no I/O) and returns the document of
docs/lifecycle.md:

- `drivers`: mean |contribution| per item on each side (log-odds for the models, points / 10
  for the rules), largest absolute change first. The two sides may use different items
  (features for a model, rule items for the rules); an item a side lacks counts as 0 there.
- `grade_mix`: the share of rows in each of the 16 grades A1..D4, per side.
- `migration`: a 16 x 16 table of counts, `counts[i][j]` = rows graded `grades[i]` by the
  champion and `grades[j]` by the challenger.
- `movers`: a few leads that moved most (grade distance on the 4 x 4 grid, then the change in
  probability; ties broken by a seeded shuffle), each lead once, with the challenger's reasons
  (and the champion's, when given). Lead ids are the pseudonymous ids of the scores; nothing
  else about a lead is copied.

`format_changes` turns the document into a short text for logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from leadscore.explain.grades import DIGITS, LETTERS

GRADES: tuple[str, ...] = tuple(f"{a}{d}" for a in LETTERS for d in DIGITS)
INFO_KEYS: tuple[str, ...] = ("registry_version", "model_version", "kind")
REASON_KEYS: tuple[str, ...] = ("code", "text", "contribution")


def _grades(scored: pd.DataFrame, side: str, n: int) -> np.ndarray:
    """The `grade` column as indices into GRADES; unknown grades are an error."""
    for col in ("grade", "probability"):
        if col not in scored.columns:
            raise ValueError(f"{side} scores lack the column {col!r}")
    if len(scored) != n:
        raise ValueError(f"{side} scores have {len(scored)} rows, expected {n} (one per lead id)")
    grades = scored["grade"].astype("string").to_numpy(dtype=object)
    index = {g: i for i, g in enumerate(GRADES)}
    unknown = sorted({str(g) for g in grades if g not in index})
    if unknown:
        raise ValueError(f"{side} scores hold grades outside A1..D4: {unknown[:5]}")
    return np.array([index[g] for g in grades], dtype=int)


def _mean_abs(contrib: pd.DataFrame, side: str, n: int) -> pd.Series:
    if len(contrib) != n:
        raise ValueError(f"{side} contributions have {len(contrib)} rows, expected {n}")
    values = contrib.apply(pd.to_numeric).fillna(0.0).abs()
    return values.mean() if n else pd.Series(0.0, index=contrib.columns)


def _drivers(champion: pd.Series, challenger: pd.Series, labels: Mapping[str, str]) -> list[dict]:
    items = list(dict.fromkeys([*map(str, champion.index), *map(str, challenger.index)]))
    champion, challenger = champion.rename(index=str), challenger.rename(index=str)
    rows = []
    for item in items:
        a, b = float(champion.get(item, 0.0)), float(challenger.get(item, 0.0))
        rows.append({"feature": item, "label": str(labels.get(item, item)),
                     "champion": round(a, 6), "challenger": round(b, 6), "change": round(b - a, 6)})
    return sorted(rows, key=lambda r: (-abs(r["change"]), r["feature"]))


def _mix(idx: np.ndarray) -> dict[str, float]:
    counts = np.bincount(idx, minlength=len(GRADES))
    total = counts.sum()
    return {g: round(float(c / total), 6) if total else 0.0 for g, c in zip(GRADES, counts, strict=True)}


def _info(info: Mapping | None) -> dict[str, str]:
    return {k: str(v) for k in INFO_KEYS if (v := (info or {}).get(k)) is not None}


def _reasons(reasons: Any) -> list[dict]:
    """One lead's reasons, whitelisted keys only (code, text, contribution)."""
    out = []
    for r in list(reasons) if reasons is not None else []:
        if not isinstance(r, Mapping):
            continue
        c = pd.to_numeric(r.get("contribution"), errors="coerce")
        out.append({"code": str(r.get("code", "")), "text": str(r.get("text", "")),
                    "contribution": None if pd.isna(c) else round(float(c), 4)})
    return out


def _movers(lead_ids: np.ndarray, a: np.ndarray, b: np.ndarray, pa: np.ndarray, pb: np.ndarray,
            champion_reasons: Sequence | None, challenger_reasons: Sequence | None,
            n_movers: int, seed: int) -> list[dict]:
    distance = np.abs(a // 4 - b // 4) + np.abs(a % 4 - b % 4)  # letter steps + digit steps
    dp = np.nan_to_num(np.abs(pb - pa))
    shuffle = np.random.default_rng(seed).permutation(len(a))
    order = np.lexsort((shuffle, -dp, -distance))  # the last key sorts first
    movers, seen = [], set()
    for i in order:
        if len(movers) >= n_movers or distance[i] == 0:
            break
        lead = str(lead_ids[i])
        if lead in seen:  # a lead scored at several as-of dates: its biggest move only
            continue
        seen.add(lead)
        mover = {"lead_id": lead, "from": GRADES[a[i]], "to": GRADES[b[i]],
                 "steps": int(distance[i]),
                 "champion_probability": round(float(pa[i]), 6),
                 "challenger_probability": round(float(pb[i]), 6),
                 "reasons": _reasons(challenger_reasons[i]) if challenger_reasons is not None else []}
        if champion_reasons is not None:
            mover["champion_reasons"] = _reasons(champion_reasons[i])
        movers.append(mover)
    return movers


def compare_scores(lead_ids: Sequence | np.ndarray | pd.Series,
                   champion_scored: pd.DataFrame, challenger_scored: pd.DataFrame,
                   champion_contrib: pd.DataFrame, challenger_contrib: pd.DataFrame, *,
                   labels: Mapping[str, str], champion_info: Mapping | None,
                   challenger_info: Mapping | None,
                   champion_reasons: Sequence | None = None,
                   challenger_reasons: Sequence | None = None,
                   n_movers: int = 5, seed: int = 0) -> dict:
    """The reports/changes.json document for champion and challenger scored on the same rows.

    Row i of every frame and list is the same (lead, as-of) row, `lead_ids[i]` its
    pseudonymous id. `*_scored` hold at least `grade` (A1..D4) and `probability`;
    `*_contrib` are rows x items contribution frames; `labels` maps an item to its plain
    text (an item without a label is shown by its name); `*_info` give `kind`,
    `model_version` and `registry_version` (other keys are ignored); `*_reasons` (optional)
    hold one list of {code, text, contribution} per row.
    """
    ids = np.asarray(lead_ids, dtype=object)
    n = len(ids)
    a = _grades(champion_scored, "champion", n)
    b = _grades(challenger_scored, "challenger", n)
    for side, reasons in (("champion", champion_reasons), ("challenger", challenger_reasons)):
        if reasons is not None and len(reasons) != n:
            raise ValueError(f"{side} reasons have {len(reasons)} rows, expected {n}")
    pa = pd.to_numeric(champion_scored["probability"]).to_numpy(dtype=float)
    pb = pd.to_numeric(challenger_scored["probability"]).to_numpy(dtype=float)
    counts = np.zeros((len(GRADES), len(GRADES)), dtype=int)
    np.add.at(counts, (a, b), 1)
    return {
        "champion": _info(champion_info),
        "challenger": _info(challenger_info),
        "rows": n,
        "drivers": _drivers(_mean_abs(champion_contrib, "champion", n),
                            _mean_abs(challenger_contrib, "challenger", n), labels),
        "grade_mix": {"champion": _mix(a), "challenger": _mix(b)},
        "migration": {"grades": list(GRADES), "counts": counts.tolist()},
        "movers": _movers(ids, a, b, pa, pb, champion_reasons, challenger_reasons,
                          n_movers, seed),
    }


def _side(info: Mapping) -> str:
    kind = info.get("kind", "?")
    version = info.get("registry_version") or str(info.get("model_version", ""))[:12]
    return f"{kind} {version}".strip()


def format_changes(changes: Mapping, top: int = 3) -> str:
    """A short summary for logs: who against whom, how many rows changed grade, the grade mix
    at the top and the largest driver changes."""
    counts = np.asarray((changes.get("migration") or {}).get("counts") or [[0]], dtype=int)
    n = int(counts.sum())
    same = int(np.trace(counts)) if counts.shape[0] == counts.shape[1] else 0
    mix = changes.get("grade_mix") or {}
    a1 = [float((mix.get(side) or {}).get("A1", 0.0)) for side in ("champion", "challenger")]
    drivers = ", ".join(f"{d['label']} {d['change']:+.3f}"
                        for d in (changes.get("drivers") or [])[:top]) or "none"
    return (f"what changed ({_side(changes.get('champion') or {})} -> "
            f"{_side(changes.get('challenger') or {})}): {n:,} rows, "
            f"{n - same:,} ({(n - same) / n if n else 0:.1%}) change grade; A1 share "
            f"{a1[0]:.1%} -> {a1[1]:.1%}; largest driver changes: {drivers}; "
            f"{len(changes.get('movers') or [])} example movers")
