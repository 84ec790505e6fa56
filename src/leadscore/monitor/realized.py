"""Realized performance: the scores a run issued, joined to the outcomes that came later.

A run's scores are judged once its label window has passed in the CRM: as_of +
`features.horizon_days` at or before the data cutoff, the same rule (and the same SQL,
`leadscore.features.build.add_labels`) as a training label. For each matured run:

* `performance`: leads, conversions, observed rate (Wilson interval) against the mean
  probability, ROC-AUC with a bootstrap interval, and conversion per grade;
* `lift`: the control arm (`leadscore.serve.arms`) against the model arm: each arm's top
  `monitor.handover_share` of leads, in its own order (rules: rule points; model:
  probability), and how many of them converted, with a Newcombe interval of the difference;
* the expectation it is held against: the model's out-of-time figures and the backtest's
  ROC-AUC range, saved with the model's reference (`leadscore.monitor.history.expected_figures`).

`realized_checks` turns the latest matured run into the monitor's alerts (realized_auc,
realized_calibration, realized_lift); runs with too few conversions are reported, not judged.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from leadscore.config import MonitorConfig, Params
from leadscore.errors import InputError, safe_error_text
from leadscore.modeling.metrics import wilson_interval
from leadscore.monitor.checks import _check, _r
from leadscore.monitor.history import read_lead_rows


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval of the difference k1/n1 - k2/n2."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1)
    l2, u2 = wilson_interval(k2, n2)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def performance(y: Sequence[int], p: Sequence[float], grades: Sequence[str], *,
                groups: Sequence[Any] | None = None, n_boot: int = 200, seed: int = 0) -> dict:
    """Leads, conversions, observed rate vs mean probability, ROC-AUC with its bootstrap
    interval (resampling leads when `groups` holds lead ids), and conversion per grade."""
    from leadscore.modeling.metrics import bootstrap_ci

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    n, k = len(y), int(y.sum())
    rate = k / n if n else None
    mean_p = float(p.mean()) if n else None
    auc = ci = None
    if 0 < k < n:
        auc = float(roc_auc_score(y, p))
        ci = bootstrap_ci(y, {"m": p}, n_boot=n_boot, seed=seed, groups=groups)["m"]["roc_auc"]
    frame = pd.DataFrame({"y": y, "p": p, "grade": np.asarray(grades, dtype=object)})
    by_grade = {str(g): {"n": int(len(d)), "conversions": int(d["y"].sum()),
                         "rate": _r(d["y"].mean()), "mean_probability": _r(d["p"].mean())}
                for g, d in frame.groupby("grade", sort=True)}
    return {"n": n, "conversions": k, "observed_rate": _r(rate, 5),
            "observed_rate_ci": [_r(v, 5) for v in wilson_interval(k, n)] if n else None,
            "mean_probability": _r(mean_p, 5),
            "calibration_gap": _r(mean_p / rate - 1) if rate else None,
            "roc_auc": _r(auc), "roc_auc_ci": [_r(v) for v in ci] if ci else None,
            "grades": by_grade}


def lift(frame: pd.DataFrame, share: float) -> dict | None:
    """Each arm's top `share` in its own order (model arm: probability; control arm: rule
    points, ties by lead id) and their conversion; the difference with its interval. None
    without a control arm."""
    out: dict[str, Any] = {"share": share}
    order = {"model": ["probability", "lead_id"], "control": ["rule_points", "lead_id"]}
    for arm, cols in order.items():
        d = frame[frame["arm"] == arm]
        if d.empty:
            return None
        top = d.sort_values(cols, ascending=[False, True], kind="stable").head(max(1, math.ceil(share * len(d))))
        out[arm] = {"leads": int(len(d)), "handed_over": int(len(top)), "conversions": int(top["label"].sum()),
                    "rate": _r(top["label"].mean(), 5),
                    "roc_auc": _r(roc_auc_score(d["label"], d[cols[0]])) if 0 < d["label"].sum() < len(d) else None}
    m, c = out["model"], out["control"]
    lo, hi = newcombe(m["conversions"], m["handed_over"], c["conversions"], c["handed_over"])
    out["difference"] = _r(m["rate"] - c["rate"], 5)
    out["difference_ci"] = [_r(lo, 5), _r(hi, 5)]
    out["ratio"] = _r(m["rate"] / c["rate"], 3) if c["rate"] else None
    return out


@dataclass(frozen=True)
class OutcomeSource:
    """Where the outcomes come from (the CRM the runs scored) and what counts as converted."""

    kind: str
    path: Path
    free_mail_domains: tuple[str, ...]
    target_stage: str
    horizon_days: int

    @classmethod
    def from_params(cls, params: Params, source: str | Path | None = None) -> OutcomeSource:
        return cls(params.ingest.source, Path(source or params.ingest.path),
                   tuple(params.ingest.free_mail_domains), params.features.target_stage,
                   params.features.horizon_days)


def realized_runs(history: str | Path, runs: Sequence[Mapping], references: Mapping[str, Mapping],
                  source: OutcomeSource, cfg: MonitorConfig) -> dict:
    """Realized performance of every run in `runs` whose label window has passed in `source`
    ({"cutoff", "runs": [...]}; a run not matured yet is listed with the date it matures)."""
    from leadscore.features.build import add_labels, data_cutoff
    from leadscore.serve.batch import open_crm

    if not source.path.exists():
        raise InputError(f"{source.path}: the CRM for realized performance does not exist "
                         "(set ingest.path, or pass --source)")
    con, _ = open_crm(source.kind, source.path, source.free_mail_domains, flags=False)
    try:
        try:
            cutoff = data_cutoff(con)
        except ValueError as err:
            raise InputError(f"{source.path}: {safe_error_text(err)}") from None
        horizon = dt.timedelta(days=source.horizon_days)
        matured = [r for r in runs if r["as_of"] + horizon <= cutoff]
        leads = read_lead_rows(history, [r["run_id"] for r in matured])
        entries = []
        for run in runs:
            entry = {"run_id": run["run_id"], "as_of": run["as_of"].isoformat(),
                     "model_version": run["model_version"], "matures_on": (run["as_of"] + horizon).date().isoformat()}
            rows = leads[leads["run_id"] == run["run_id"]]
            if run["as_of"] + horizon > cutoff:
                entries.append({**entry, "status": "pending"})
                continue
            if rows.empty:
                entries.append({**entry, "status": "no_lead_rows"})
                continue
            frame = add_labels(con, rows.assign(as_of=pd.Timestamp(run["as_of"]).as_unit("us")),
                               target_stage=source.target_stage, horizon_days=source.horizon_days,
                               cutoff=cutoff)
            perf = performance(frame["label"], frame["probability"], frame["grade"], n_boot=cfg.n_bootstrap)
            ref = references.get(run["model_version"]) or {}
            entries.append({**entry, "status": "matured", **perf, "lift": lift(frame, cfg.handover_share),
                            "expected": _expected(ref.get("expected"))})
    finally:
        con.close()
    return {"cutoff": cutoff.isoformat(), "target_stage": source.target_stage,
            "horizon_days": source.horizon_days, "runs": entries}


def _expected(doc: Mapping | None) -> dict | None:
    if not doc:
        return None
    return {"roc_auc": doc.get("roc_auc"), "roc_auc_ci": doc.get("roc_auc_ci"),
            "observed_rate": doc.get("observed_rate"), "mean_probability": doc.get("mean_probability"),
            "backtest": doc.get("backtest"), "grades": doc.get("grades")}


def realized_checks(realized: Mapping, cfg: MonitorConfig) -> list[dict]:
    """The realized-performance checks of the latest matured run (all pass, with a note,
    when no run has matured or it has too few conversions to judge)."""
    done = [r for r in realized["runs"] if r["status"] == "matured"]
    if not done:
        pending = [r["matures_on"] for r in realized["runs"] if r["status"] == "pending"]
        note = (f"no scoring run has matured yet (first on {min(pending)})" if pending
                else "no scoring run with kept lead scores has matured")
        return [_check(n, True, None, None, note) for n in ("realized_auc", "realized_calibration", "realized_lift")]
    r = done[-1]
    when = f"run of {r['as_of'][:10]}"
    if r["conversions"] < cfg.min_realized_positives:
        note = (f"{when}: {r['conversions']} conversion(s), fewer than {cfg.min_realized_positives}: "
                "reported, not judged")
        return [_check(n, True, None, None, note) for n in ("realized_auc", "realized_calibration", "realized_lift")]
    checks = []
    exp = r.get("expected") or {}
    bt = exp.get("backtest")
    low = bt["roc_auc_min"] if bt else (exp.get("roc_auc_ci") or [None])[0]
    auc, ci = r["roc_auc"], r["roc_auc_ci"]
    if low is None or auc is None:
        checks.append(_check("realized_auc", True, auc, None, f"{when}: ROC-AUC {auc}; no expectation to compare"))
    else:
        where = (f"the backtest's range {bt['roc_auc_min']:.3f}-{bt['roc_auc_max']:.3f}" if bt
                 else f"the out-of-time interval from {low:.3f}")
        ok = ci[1] >= low
        checks.append(_check(
            "realized_auc", ok, auc, _r(low),
            f"{when}: realized ROC-AUC {auc:.3f} (95% CI {ci[0]:.3f}-{ci[1]:.3f}) against {where}"
            + ("" if ok else ": below it, the model no longer ranks as it did; retrain recommended")))
    gap, obs_ci, mean_p = r["calibration_gap"], r["observed_rate_ci"], r["mean_probability"]
    off = gap is not None and abs(gap) > cfg.max_realized_calibration_gap and not (obs_ci[0] <= mean_p <= obs_ci[1])
    checks.append(_check(
        "realized_calibration", not off, gap, cfg.max_realized_calibration_gap,
        f"{when}: predicted {mean_p:.2%} on average, {r['observed_rate']:.2%} converted "
        f"(95% CI {obs_ci[0]:.2%}-{obs_ci[1]:.2%})"
        + ("; the probabilities no longer mean what they say: retrain (or recalibrate) recommended" if off else "")))
    lf = r.get("lift")
    if lf is None:
        checks.append(_check("realized_lift", True, None, None, f"{when}: no control arm (score.control_share 0)"))
    else:
        lo, hi = lf["difference_ci"]
        worse = hi < 0
        checks.append(_check(
            "realized_lift", not worse, lf["difference"], 0.0,
            f"{when}: top {lf['share']:.0%} handed over converted {lf['model']['rate']:.1%} in the model's order "
            f"against {lf['control']['rate']:.1%} in the rules' order (difference {lf['difference']:+.1%}, "
            f"95% CI {lo:+.1%} to {hi:+.1%})"
            + ("; the model does worse than the rules: retrain recommended" if worse else "")))
    return checks
