"""MQL handoff by sales capacity: the probability threshold and the grade cut that fill it.

Sales capacity is `evaluate.reps x evaluate.leads_per_rep` leads per as_of month (the
monthly snapshot schedule). Both recommendations are chosen on the **calibration slice**
(the months just before the test slice; the test slice is never used to choose) and then
reported on the out-of-time **test slice**, beside the rules' MQL threshold
(`train_rules.mql_threshold` points):

- **threshold**: the lowest probability at which the calib months hand over, on average, no
  more than capacity leads per month (`capacity_threshold`). Calibrated probabilities are
  step functions (isotonic), so ties can keep the fill a little under capacity; the fill is
  reported, not assumed.
- **grade cut**: the grades in **grade order**, best first, then the longest run of best
  grades whose calib leads per month still fit capacity. Decision: the grade order is the
  calib slice's observed conversion rate per grade, highest first (ties and grades never
  seen on calib in A1, A2, ..., D4 order). It follows the A1-D4 order where the grade
  matrix is monotone and says so honestly where it is not (e.g. A3 converting above B1).
- **on test**: leads handed over per month, expected conversions (the sum of the calibrated
  probabilities) and observed conversions captured, for the threshold, the grade cut and
  the rules' MQL threshold.
- **speed to lead** (`speed_to_lead`): the training table holds monthly snapshots, not event
  times, so leads per day are approximated as "per month / working days"
  (`evaluate.working_days_per_month`). Two figures: the stock of leads in the top grades per
  month, and the **new entries**: leads in the top grades at a snapshot that were not in them
  at the previous snapshot of the slice (the first month has no previous snapshot and is left
  out of the entries' mean). Each new entry needs a first call within `evaluate.sla_hours`.

`model_grades` recomputes the champion's A1-D4 grades the way the explain stage does
(cut points learned on calib from the same exact contributions, `grade_cuts_from_split`), so
the evaluate stage does not have to wait for models/grading.json (explain reads evaluate.json).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.explain.grades import DIGITS, LETTERS

GRADE_NAMES: tuple[str, ...] = tuple(f"{a}{d}" for a in LETTERS for d in DIGITS)
TOP_GRADES: tuple[str, ...] = ("A1", "A2")


def grade_order(grades, y) -> list[str]:
    """The 16 grades, best first: by observed conversion rate on (`grades`, `y`), highest
    first; ties and unseen grades keep the A1..D4 order (unseen ones go last)."""
    df = pd.DataFrame({"grade": np.asarray(grades, dtype=str), "y": np.asarray(y, dtype=float)})
    rate = df.groupby("grade")["y"].mean()
    seen = [g for g in GRADE_NAMES if g in rate.index]
    seen.sort(key=lambda g: (-rate[g], GRADE_NAMES.index(g)))  # stable: ties in A1..D4 order
    return seen + [g for g in GRADE_NAMES if g not in rate.index]


def per_month(mask, period) -> float:
    """Mean count of `mask` rows per distinct `period` value (0 when there is no period)."""
    period = np.asarray(period)
    n_periods = len(np.unique(period))
    return float(np.asarray(mask, dtype=bool).sum() / n_periods) if n_periods else 0.0


def capacity_threshold(p, period, capacity: int) -> float:
    """The lowest probability t such that the leads with p >= t number, on average over the
    `period`s, at most `capacity` per period (1.0 + tiny when even the top tie overflows)."""
    p = np.asarray(p, dtype=float)
    n_periods = max(len(np.unique(np.asarray(period))), 1)
    budget = capacity * n_periods  # leads allowed in total over the periods
    values = np.sort(np.unique(p))[::-1]  # candidate thresholds, highest first
    counts = np.searchsorted(np.sort(-p), -values, side="right")  # leads with p >= value
    ok = counts <= budget
    if not ok.any():
        return float(np.nextafter(values[0], np.inf))
    return float(values[np.flatnonzero(ok)[-1]])


def capacity_grade_cut(grades, period, order: list[str], capacity: int) -> list[str]:
    """The longest prefix of `order` whose leads per period fit `capacity` (at least the best
    grade, even when it alone overflows: sales then works it by probability)."""
    g = pd.Series(np.asarray(grades, dtype=str))
    n_periods = max(len(np.unique(np.asarray(period))), 1)
    per_grade = g.value_counts() / n_periods
    cut, total = [], 0.0
    for grade in order:
        total += float(per_grade.get(grade, 0.0))
        if total > capacity and cut:
            break
        cut.append(grade)
        if total > capacity:
            break
    return cut


def handoff_figures(mask, y, p, period) -> dict:
    """Leads handed over per month, and expected / observed conversions captured (totals,
    per month and as a share of all conversions) of the selection `mask`. Expected
    conversions are the sum of `p` (the shipped model's calibrated probabilities), for every
    selection alike, the rules' included."""
    mask = np.asarray(mask, dtype=bool)
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    n_periods = max(len(np.unique(np.asarray(period))), 1)
    observed, total = float(y[mask].sum()), float(y.sum())
    return {"leads": int(mask.sum()), "leads_per_month": float(mask.sum() / n_periods),
            "expected_conversions": float(p[mask].sum()),
            "observed_conversions": int(observed),
            "observed_per_month": observed / n_periods,
            "conversion_rate": float(observed / mask.sum()) if mask.any() else None,
            "share_of_conversions": observed / total if total else None}


def speed_to_lead(lead_id, period, in_top, *, working_days: int, sla_hours: float) -> dict:
    """Leads per working day in the top grades (`in_top`): the stock per month and the new
    entries (in the top grades now, not at the previous snapshot), ÷ `working_days`."""
    df = pd.DataFrame({"lead": np.asarray(lead_id), "period": pd.to_datetime(np.asarray(period)),
                       "top": np.asarray(in_top, dtype=bool)})
    months = sorted(df["period"].unique())
    rows, prev = [], None
    for m in months:
        top_now = set(df.loc[(df["period"] == m) & df["top"], "lead"])
        entries = None if prev is None else len(top_now - prev)
        rows.append({"as_of": pd.Timestamp(m).date().isoformat(), "in_top": len(top_now),
                     "new_entries": entries})
        prev = top_now
    stock = [r["in_top"] for r in rows]
    entries = [r["new_entries"] for r in rows if r["new_entries"] is not None]
    mean_entries = float(np.mean(entries)) if entries else None
    return {"months": rows, "working_days_per_month": working_days, "sla_hours": sla_hours,
            "in_top_per_month": float(np.mean(stock)) if stock else 0.0,
            "in_top_per_day": float(np.mean(stock)) / working_days if stock else 0.0,
            "new_per_month": mean_entries,
            "new_per_day": None if mean_entries is None else mean_entries / working_days,
            "approximation": "monthly snapshots: leads per day = leads per month / working days"}


def capacity_handoff(calib: pd.DataFrame, test: pd.DataFrame, *, p_calib, p_test,
                     grades_calib, grades_test, rules_points_test, mql_threshold: float,
                     rules_points_calib=None,
                     capacity: int, working_days: int, sla_hours: float,
                     top_grades: tuple[str, ...] = TOP_GRADES) -> dict:
    """The threshold and grade cut chosen on `calib`, their hand-over on `test` against the
    rules' `mql_threshold` points, and the speed-to-lead view (see the module docstring).
    With `rules_points_calib`, also the rules' points cut that fills capacity on calib
    (`rules_at_capacity`: the same volume, so the conversions compare like for like).
    `calib` / `test` need `as_of`, `label` and `lead_id`."""
    pc, pt = calib["as_of"].to_numpy(), test["as_of"].to_numpy()
    yc, yt = calib["label"].to_numpy(), test["label"].to_numpy()
    p_calib, p_test = np.asarray(p_calib, dtype=float), np.asarray(p_test, dtype=float)
    gc, gt = np.asarray(grades_calib, dtype=str), np.asarray(grades_test, dtype=str)
    threshold = capacity_threshold(p_calib, pc, capacity)
    order = grade_order(gc, yc)
    cut = capacity_grade_cut(gc, pc, order, capacity)
    calib_rate = pd.Series(yc).groupby(gc).mean()
    in_cut_test = np.isin(gt, cut)
    mql = np.asarray(rules_points_test, dtype=float) >= float(mql_threshold)  # the rules' MQLs
    top = tuple(top_grades)
    rules_pts = np.asarray(rules_points_test, dtype=float)
    at_capacity = {}
    if rules_points_calib is not None:
        cut_points = capacity_threshold(rules_points_calib, pc, capacity)
        at_capacity = {"rules_at_capacity": handoff_figures(rules_pts >= cut_points, yt, p_test, pt)
                       | {"points_threshold": cut_points}}
    return {
        "capacity_per_month": int(capacity),
        "chosen_on": "calib",
        "calib": {"months": int(len(np.unique(pc))),
                  "threshold_leads_per_month": per_month(p_calib >= threshold, pc),
                  "grade_cut_leads_per_month": per_month(np.isin(gc, cut), pc)},
        "threshold": threshold,
        "grade_order": order,
        "grade_order_calib_rate": {g: float(calib_rate[g]) for g in order if g in calib_rate.index},
        "grade_cut": cut,
        "test": {"months": int(len(np.unique(pt))),
                 "threshold": handoff_figures(p_test >= threshold, yt, p_test, pt),
                 "grade_cut": handoff_figures(in_cut_test, yt, p_test, pt),
                 "rules_mql": handoff_figures(mql, yt, p_test, pt) | {"mql_threshold": float(mql_threshold)},
                 **at_capacity},
        "speed_to_lead": {
            "top_grades": speed_to_lead(test["lead_id"], pt, np.isin(gt, top),
                                        working_days=working_days, sla_hours=sla_hours)
            | {"grades": list(top)},
            "grade_cut": speed_to_lead(test["lead_id"], pt, in_cut_test,
                                       working_days=working_days, sla_hours=sla_hours)
            | {"grades": list(cut)},
        },
    }


def model_grades(model, catalog, split, *, fit_shares=None, engagement_shares=None
                 ) -> tuple[object, np.ndarray, np.ndarray]:
    """The model's cut points learned on `split.calib` (as the explain stage learns them) and
    its grades ("A1") on the calib and test slices."""
    from leadscore.explain.contributions import Explainer, feature_groups, group_sums
    from leadscore.explain.grades import grade_cuts_from_split

    explainer = Explainer.for_model(model)
    groups = feature_groups(catalog, explainer.feature_names)
    cuts = grade_cuts_from_split(explainer, split, groups, fit_shares=fit_shares,
                                 engagement_shares=engagement_shares)

    def grade(df: pd.DataFrame) -> np.ndarray:
        sums = group_sums(explainer.contributions(df, raw=True), explainer.feature_names, groups)
        return cuts.grade(sums["fit"], sums["engagement"])["grade"].to_numpy().astype(str)

    return cuts, grade(split.calib), grade(split.test)


def capacity_summary(c: dict) -> str:
    """A few readable lines of `capacity_handoff`'s result for the stage log."""
    t = c["test"]
    lines = [f"capacity handoff ({c.get('model', 'model')}): {c['capacity_per_month']} leads per month, "
             f"chosen on calib: threshold p >= {c['threshold']:.4f}, grade cut {'+'.join(c['grade_cut'])}"]
    for key, label in (("threshold", "threshold"), ("grade_cut", "grade cut"),
                       ("rules_mql", f"rules MQL >= {t['rules_mql']['mql_threshold']:g} points"),
                       ("rules_at_capacity", "rules, points cut at capacity")):
        if key not in t:
            continue
        f = t[key]
        lines.append(f"  test, {label:<26}: {f['leads_per_month']:8.1f} leads/month, "
                     f"{f['expected_conversions']:7.1f} expected / {f['observed_conversions']} observed "
                     f"conversions ({(f['share_of_conversions'] or 0):.1%} of all)")
    s = c["speed_to_lead"]["top_grades"]
    new = "n/a" if s["new_per_day"] is None else f"{s['new_per_day']:.1f}"
    lines.append(f"  speed to lead ({'+'.join(s['grades'])}): {s['in_top_per_day']:.1f} leads/day in the grades, "
                 f"{new} new/day needing a call within {s['sla_hours']:g} h "
                 f"(per month / {s['working_days_per_month']} working days)")
    return "\n".join(lines)
