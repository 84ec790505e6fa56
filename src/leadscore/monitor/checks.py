"""The monitoring checks: drift against the training reference and across runs, null rates,
volume and freshness, with the thresholds of params `monitor`. Pure: history rows in, a
JSON-able report out (`monitor_report`); `format_report` is the alert summary a person reads.

Checks (each with `name`, `passed`, `value`, `threshold`, `message`; a failed check is an
alert):

* `feature_drift`: the largest PSI of a feature, latest run vs the reference (< feature_psi_alert);
* `score_drift`: PSI of the probability, latest run vs the reference;
* `grade_mix_drift`: PSI of the A1..D4 grade mix, latest run vs the reference;
* `run_to_run_drift`: the largest of the probability and grade-mix PSI, latest vs previous
  run (passes when there is no previous run);
* `new_levels`: the largest share of leads in a category the reference never had (a new
  lead source, say), per categorical feature;
* `null_rate`: the largest rise of a feature's null rate over the reference;
* `volume`: leads scored / median of the previous `volume_runs` runs, within
  [min_volume_ratio, max_volume_ratio] (passes when there is no previous run);
* `freshness`: days from the newest event in the source to the run's as_of;
* `realized_auc`, `realized_calibration`, `realized_lift`: the latest run whose outcomes are
  in, against its expectation (`leadscore.monitor.realized.realized_checks`).

Warnings (PSI at or above psi_warn, below psi_alert) are listed, never alerted.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from leadscore.config import MonitorConfig
from leadscore.monitor import drift


def _iso(v: Any) -> str | None:
    return v.isoformat() if isinstance(v, dt.datetime | dt.date) else (str(v) if v else None)


def _r(v: float | None, digits: int = 4) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), digits)


def _check(name: str, passed: bool, value: float | None, threshold: Any, message: str) -> dict:
    return {"name": name, "passed": bool(passed), "value": _r(value), "threshold": threshold,
            "message": message}


def run_drift(reference: Mapping, run: Mapping, floor: float) -> dict:
    """PSI of every feature, the probability and the grade mix of one run's summary."""
    s = run["summary"]
    return {"features": {k: _r(v) for k, v in drift.feature_psi(reference, s, floor).items()},
            "probability": _r(drift.probability_psi(reference, s, floor)),
            "grades": _r(drift.grade_psi(reference, s, floor))}


def _run_entry(run: Mapping, reference: Mapping | None, floor: float) -> dict:
    s = run["summary"]
    return {"run_id": run["run_id"], "as_of": _iso(run["as_of"]), "scored_at": _iso(run["scored_at"]),
            "model_version": run["model_version"], "model_kind": run.get("model_kind"),
            "leads_scored": int(run["leads_scored"]),
            "leads_quarantined": int(run.get("leads_quarantined") or 0),
            "newest_event_at": _iso(run.get("newest_event_at")),
            "mean_probability": _r(run.get("mean_probability")),
            "quantiles": drift.quantiles(s),
            "grade_shares": {g: _r(v) for g, v in drift.grade_shares(s).items()},
            "psi": run_drift(reference, run, floor) if reference is not None else None}


def monitor_report(runs: Sequence[Mapping], references: Mapping[str, Mapping], cfg: MonitorConfig,
                   realized: Mapping | None = None) -> dict:
    """The monitoring report of a score history: `runs` (oldest first, as `read_runs` gives
    them) and the reference summary of each model version ({version: reference}); with
    `realized` (`leadscore.monitor.realized.realized_runs`), its checks and table too.

    Returns {"status", "alerts", "warnings", "checks", "latest", "reference", "runs",
    "features"}; `status` is "no_runs", "no_reference", "ok" or "alert"."""
    if not runs:
        return {"status": "no_runs", "alerts": [], "warnings": [], "checks": [], "runs": [],
                "message": "no scoring run recorded yet: run `leadscore score` (or `dvc repro score`)"}
    floor = cfg.psi_floor
    latest = runs[-1]
    ref = references.get(latest["model_version"])
    ref_summary = ref["summary"] if ref else None
    history = [_run_entry(r, (references.get(r["model_version"]) or {}).get("summary"), floor)
               for r in runs[-cfg.report_runs:]]
    if ref_summary is None:
        return {"status": "no_reference", "alerts": [], "warnings": [], "checks": [], "runs": history,
                "latest": history[-1],
                "message": f"no training reference for model {latest['model_version']} in the history"}
    cur = latest["summary"]
    psi_now = run_drift(ref_summary, latest, floor)
    checks, warnings = [], []

    feats = psi_now["features"]
    worst = max(feats, key=lambda k: feats[k]) if feats else None
    drifted = sorted((k for k, v in feats.items() if v >= cfg.feature_psi_alert), key=lambda k: -feats[k])
    checks.append(_check(
        "feature_drift", not drifted, feats.get(worst) if worst else None, cfg.feature_psi_alert,
        (f"{len(drifted)} feature(s) drifted from the training reference: "
         + ", ".join(f"{k} (PSI {feats[k]:.2f})" for k in drifted[:8])) if drifted else
        f"no feature drifted (largest PSI {feats.get(worst, 0):.3f}, {worst})"))
    warnings += [f"feature {k}: PSI {v:.2f} (warning at {cfg.psi_warn})" for k, v in
                 sorted(feats.items(), key=lambda kv: -kv[1]) if cfg.psi_warn <= v < cfg.feature_psi_alert]
    for name, key, what in (("score_drift", "probability", "the probability distribution"),
                            ("grade_mix_drift", "grades", "the grade mix")):
        v = psi_now[key]
        checks.append(_check(name, v < cfg.psi_alert, v, cfg.psi_alert,
                             f"PSI of {what} against the training reference: {v:.3f}"))
        if cfg.psi_warn <= v < cfg.psi_alert:
            warnings.append(f"{what}: PSI {v:.2f} (warning at {cfg.psi_warn})")

    prev = runs[-2] if len(runs) > 1 else None
    if prev is None:
        checks.append(_check("run_to_run_drift", True, None, cfg.psi_alert, "no previous run to compare"))
    else:
        p = drift.probability_psi(prev["summary"], cur, floor)
        g = drift.grade_psi(prev["summary"], cur, floor)
        v = max(p, g)
        checks.append(_check("run_to_run_drift", v < cfg.psi_alert, v, cfg.psi_alert,
                             f"against the previous run ({_iso(prev['as_of'])[:10]}): probability PSI "
                             f"{p:.3f}, grade-mix PSI {g:.3f}"))

    shares = {k: v for k in ref_summary["features"]
              if (v := drift.unseen_share(cur, k)) is not None}
    top = max(shares, key=lambda k: shares[k]) if shares else None
    new = sorted((k for k, v in shares.items() if v > cfg.max_new_level_share), key=lambda k: -shares[k])
    checks.append(_check(
        "new_levels", not new, shares.get(top) if top else None, cfg.max_new_level_share,
        (f"values the training data never had, in more than {cfg.max_new_level_share:.0%} of leads: "
         + ", ".join(f"{k} ({shares[k]:.1%})" for k in new[:8])) if new else
        "no new category beyond the threshold"))

    rises = {}
    for name in ref_summary["features"]:
        a, b = drift.null_rate(ref_summary, name), drift.null_rate(cur, name)
        if a is not None and b is not None:
            rises[name] = b - a
    top = max(rises, key=lambda k: rises[k]) if rises else None
    bad = sorted((k for k, v in rises.items() if v > cfg.max_null_rate_increase), key=lambda k: -rises[k])
    checks.append(_check(
        "null_rate", not bad, rises.get(top) if top else None, cfg.max_null_rate_increase,
        (f"null rate rose by more than {cfg.max_null_rate_increase:.0%} for: "
         + ", ".join(f"{k} (+{rises[k]:.0%})" for k in bad[:8])) if bad else
        "no null rate rose beyond the threshold"))

    earlier = [int(r["leads_scored"]) for r in runs[-1 - cfg.volume_runs:-1]]
    n = int(latest["leads_scored"])
    if not earlier:
        checks.append(_check("volume", True, None, [cfg.min_volume_ratio, cfg.max_volume_ratio],
                             f"{n:,} leads scored; no previous run to compare"))
    else:
        base = statistics.median(earlier)
        ratio = n / base if base else float("inf")
        checks.append(_check(
            "volume", cfg.min_volume_ratio <= ratio <= cfg.max_volume_ratio, ratio,
            [cfg.min_volume_ratio, cfg.max_volume_ratio],
            f"{n:,} leads scored, {ratio:.2f} x the median of the previous {len(earlier)} run(s) "
            f"({base:,.0f})"))

    newest = latest.get("newest_event_at")
    if newest is None:
        checks.append(_check("freshness", False, None, cfg.max_days_since_event,
                             "the source has no events"))
    else:
        days = (latest["as_of"] - newest).total_seconds() / 86400
        checks.append(_check(
            "freshness", days <= cfg.max_days_since_event, days, cfg.max_days_since_event,
            f"newest event {_iso(newest)[:16]}, {days:.1f} day(s) before the run's as_of "
            f"{_iso(latest['as_of'])[:10]}"))

    if realized is not None:
        from leadscore.monitor.realized import realized_checks

        checks += realized_checks(realized, cfg)
    alerts = [c for c in checks if not c["passed"]]
    return {
        "status": "alert" if alerts else "ok", "alerts": [c["name"] for c in alerts],
        "warnings": warnings, "checks": checks, "latest": history[-1],
        "reference": {"model_version": latest["model_version"], "source": ref.get("source"),
                      "rows": ref.get("rows"), "created_at": _iso(ref.get("created_at")),
                      "grade_shares": {g: _r(v) for g, v in drift.grade_shares(ref_summary).items()},
                      "quantiles": drift.quantiles(ref_summary)},
        "runs": history,
        "realized": realized,
        "thresholds": cfg.model_dump(mode="json", include={
            "psi_warn", "psi_alert", "feature_psi_alert", "max_new_level_share", "max_null_rate_increase", "min_volume_ratio",
            "max_volume_ratio", "volume_runs", "max_days_since_event", "handover_share",
            "min_realized_positives", "max_realized_calibration_gap"}),
    }


def format_report(doc: Mapping) -> str:
    """The alert summary: status, each alert with what to do, then the other checks."""
    if doc["status"] in ("no_runs", "no_reference"):
        return f"monitor: {doc['message']}"
    latest = doc["latest"]
    lines = [f"monitor: {'ALERT' if doc['alerts'] else 'ok'} - run {latest['run_id']} as of "
             f"{latest['as_of'][:10]}, model {str(latest['model_version'])[:12]}, "
             f"{latest['leads_scored']:,} leads scored"]
    todo = {"feature_drift": "check the lead sources and forms feeding these fields; retrain if it persists",
            "score_drift": "the scores moved: review the grade thresholds and consider a retrain",
            "grade_mix_drift": "sales will see a different grade mix: warn them, consider a retrain",
            "run_to_run_drift": "the scores jumped since the last run: check the CRM export",
            "new_levels": "a new category (source, country, ...) appeared: map it, or retrain so the model learns it",
            "null_rate": "a field stopped arriving: check the CRM export or form mapping",
            "volume": "far fewer or more leads than usual: check the CRM export",
            "freshness": "no recent activity in the source: check the event feed",
            "realized_auc": "the model ranks leads worse than its backtest: retrain (`leadscore retrain`)",
            "realized_calibration": "the probabilities are off: retrain, and tell sales the rates moved",
            "realized_lift": "the rules' order beats the model's on the control arm: retrain or roll back"}
    for c in doc["checks"]:
        if not c["passed"]:
            lines.append(f"  ALERT {c['name']}: {c['message']} -> {todo.get(c['name'], '')}")
    for w in doc["warnings"]:
        lines.append(f"  warn  {w}")
    for c in doc["checks"]:
        if c["passed"]:
            lines.append(f"  ok    {c['name']}: {c['message']}")
    return "\n".join(lines)
