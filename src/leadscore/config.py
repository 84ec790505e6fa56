"""params.yaml -> frozen, validated config objects. Read once, at the edge.

Library functions take these objects (or plain values), never the raw dict. A wrong key or
value is a `ConfigError` that names the key, e.g. ``features.horizon_days``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leadscore.errors import ConfigError
from leadscore.schema import CONTENT_TYPES, PII_COLUMNS, STAGES, TABLES


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GenerateConfig(_Section):
    """Size and shape of the synthetic CRM."""

    n_leads: int = Field(50_000, ge=10)
    start: dt.date = dt.date(2024, 1, 1)
    end: dt.date = dt.date(2025, 12, 31)  # the data cutoff: nothing is recorded after it
    events_per_lead: float = Field(40.0, gt=0)  # mean; the distribution is heavy-tailed
    junk_share: float = Field(0.06, ge=0, le=0.5)
    duplicate_event_share: float = Field(0.02, ge=0, le=0.5)
    chunk_leads: int = Field(100_000, ge=1_000)  # leads per generation chunk (bounds memory)

    @model_validator(mode="after")
    def _window(self) -> GenerateConfig:
        if self.end <= self.start:
            raise ValueError("generate.end must be after generate.start")
        return self


class IngestConfig(_Section):
    """Where the CRM comes from. `synthetic` reads the generate stage's DuckDB file; `duckdb`
    another DuckDB file; `parquet` / `csv` a folder with one file per table (leads.*,
    events.*, outcomes.*). `free_mail_domains` feeds the derived `free_mail` flag (the only
    use of the e-mail address, which is then dropped)."""

    source: Literal["synthetic", "duckdb", "parquet", "csv"] = "synthetic"
    path: str = "data/raw/crm.duckdb"
    free_mail_domains: tuple[str, ...] = (
        "gmail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "aol.com",
        "icloud.com",
        "gmx.de",
        "web.de",
        "mail.ru",
        "protonmail.com",
    )

    @model_validator(mode="after")
    def _check(self) -> IngestConfig:
        bad = [d for d in self.free_mail_domains if not d or "@" in d or d != d.strip().lower()]
        if bad:
            raise ValueError(f"ingest.free_mail_domains must be lower-case domains without '@': {bad}")
        return self


class ValidateConfig(_Section):
    """Data checks. `quarantine_budget` is the largest share of a table's rows that may be
    quarantined by row-level checks before the stage fails."""

    quarantine_budget: float = Field(0.02, ge=0, le=1)
    # Upper bounds on the share of nulls, per table and column.
    max_null_share: dict[str, dict[str, float]] = Field(default_factory=lambda: {
        "leads": {"job_title": 0.15, "company_size": 0.35, "annual_revenue": 0.5, "industry": 0.25,
                  "country": 0.1},
        "events": {"content_type": 0.95},
    })
    sample_keys: int = Field(5, ge=0, le=50)

    @model_validator(mode="after")
    def _check(self) -> ValidateConfig:
        for table, bounds in self.max_null_share.items():
            if table not in TABLES:
                raise ValueError(
                    f"validate.max_null_share.{table}: unknown table (use one of {list(TABLES)})")
            for col, share in bounds.items():
                if col not in TABLES[table].columns or col in PII_COLUMNS:
                    raise ValueError(f"validate.max_null_share.{table}.{col}: unknown column")
                if not 0 <= share <= 1:
                    raise ValueError(f"validate.max_null_share.{table}.{col}: must be in [0, 1]")
        return self


class FeaturesConfig(_Section):
    """Point-in-time training table (README, "Point-in-time training table")."""

    as_of_start: dt.date = dt.date(2024, 4, 1)
    as_of_end: dt.date | None = None  # None: the last schedule date before the data cutoff
    as_of_every_months: int = Field(1, ge=1, le=12)
    # the retrain date: nothing recorded after this day is used, and only rows whose label
    # matured by then train (`leadscore retrain --cutoff`); None: the latest timestamp in the data
    data_cutoff: dt.date | None = None
    horizon_days: int = Field(90, ge=1)
    target_stage: Literal["mql", "sql", "opportunity", "won"] = "opportunity"
    max_lead_age_days: int = Field(365, ge=1)  # older open leads are stale, not scored
    windows_days: tuple[int, ...] = (7, 30, 90)
    half_life_days: float = Field(14.0, gt=0)
    content_types: tuple[str, ...] = CONTENT_TYPES

    @model_validator(mode="after")
    def _check(self) -> FeaturesConfig:
        if not self.windows_days or any(w <= 0 for w in self.windows_days):
            raise ValueError("features.windows_days must be a non-empty list of positive days")
        if len(set(self.windows_days)) != len(self.windows_days):
            raise ValueError("features.windows_days has duplicates")
        if self.target_stage not in STAGES:  # pragma: no cover - guarded by Literal
            raise ValueError(f"features.target_stage must be one of {STAGES}")
        if self.as_of_end is not None and self.as_of_end < self.as_of_start:
            raise ValueError("features.as_of_end is before features.as_of_start")
        return self

    @property
    def cutoff_datetime(self) -> dt.datetime | None:
        """The configured data cutoff as a timestamp (end of that day), or None."""
        if self.data_cutoff is None:
            return None
        return dt.datetime.combine(self.data_cutoff, dt.time()) + dt.timedelta(days=1)


class SplitConfig(_Section):
    """Time-ordered split of the training table (see leadscore.modeling.splits).

    Slices in calendar months of `as_of`, latest last: train | embargo | valid | calib |
    embargo | test. `embargo_months` None means ceil(features.horizon_days / 30).
    """

    test_months: int = Field(3, ge=1)
    calib_months: int = Field(2, ge=1)
    valid_months: int = Field(2, ge=1)
    embargo_months: int | None = Field(None, ge=0)


def _default_fit_points() -> dict[str, dict[str, float]]:
    return {
        "seniority": {"c_level": 20, "vp": 20, "director": 15, "manager": 10, "senior_ic": 5,
                      "individual": 0, "student": -10},
        "company_size_band": {"1-10": 0, "11-50": 5, "51-200": 10, "201-1000": 15,
                              "1001-5000": 15, "5001+": 10},
        "industry": {"software": 10, "financial_services": 8, "telecom": 8, "manufacturing": 5,
                     "healthcare": 5, "consulting": 5, "retail": 3, "media": 3, "government": 0,
                     "education": -5, "nonprofit": -5},
        "country": {"US": 5, "GB": 5, "DE": 5, "CA": 5, "NL": 5, "AU": 5, "FR": 3, "ES": 3},
        "bant_budget": {"yes": 10, "no": -10},
        "bant_timeline": {"now": 10, "3-6 months": 5},
    }


def _default_engagement_points() -> dict[str, float]:
    return {
        "email_open": 1, "email_click": 3, "web_visit": 2, "pricing_page_view": 10,
        "content_download": 5, "webinar_registration": 5, "webinar_attendance": 10,
        "demo_video_view": 8, "form_submit": 10, "demo_request": 30,
    }


class TrainRulesConfig(_Section):
    """The points-rule baseline (stage `train_rules`): a marketing-style points table.

    Fit points add by attribute value; engagement points add per event counted within
    `window_days` (capped per activity), plus per download by content type; flags subtract.
    Grade: the fit letter is the first band in `fit_bands` (A, B, C) whose minimum the fit
    points reach, else D; the engagement digit likewise from `engagement_bands` (1, 2, 3),
    else 4. A lead is an MQL at `mql_threshold` total points.
    """

    window_days: int = Field(90, ge=1)
    fit_points: dict[str, dict[str, float]] = Field(default_factory=_default_fit_points)
    engagement_points: dict[str, float] = Field(default_factory=_default_engagement_points)
    content_points: dict[str, float] = Field(
        default_factory=lambda: {"whitepaper": 3, "case_study": 5, "product_sheet": 5,
                                 "blog": 1, "ebook": 3})
    max_points_per_activity: float = Field(30, gt=0)
    decayed_points: float = Field(0, ge=0)  # points per unit of engagement_decayed
    fit_negative_points: dict[str, float] = Field(
        default_factory=lambda: {"free_mail": -10, "email_invalid": -40, "placeholder_name": -40})
    engagement_negative_points: dict[str, float] = Field(
        default_factory=lambda: {"unsubscribed": -30, "email_bounced": -20})
    fit_bands: dict[str, float] = Field(default_factory=lambda: {"A": 40, "B": 25, "C": 10})
    engagement_bands: dict[str, float] = Field(
        default_factory=lambda: {"1": 40, "2": 20, "3": 5})
    mql_threshold: float = 50

    @model_validator(mode="after")
    def _check(self) -> TrainRulesConfig:
        for name, bands, keys in (("fit_bands", self.fit_bands, ["A", "B", "C"]),
                                  ("engagement_bands", self.engagement_bands, ["1", "2", "3"])):
            if sorted(bands) != keys:
                raise ValueError(f"train_rules.{name} needs exactly the keys {keys}")
            values = [bands[k] for k in keys]
            if values != sorted(values, reverse=True):
                raise ValueError(f"train_rules.{name} minimums must decrease from {keys[0]} to {keys[-1]}")
        for name, table in (("fit_negative_points", self.fit_negative_points),
                            ("engagement_negative_points", self.engagement_negative_points)):
            if any(v > 0 for v in table.values()):
                raise ValueError(f"train_rules.{name} must hold negative (or zero) points")
        return self


class OptunaConfig(_Section):
    """Hyperparameter search budget (stops at whichever of n_trials / timeout_s comes first).

    `storage`: the SQLAlchemy URL where studies are kept and resumed (a relative
    ``sqlite:///optuna.db`` lives in the project root, beside MLflow's ``mlruns.db``; browse it
    with ``optuna-dashboard sqlite:///optuna.db``); None keeps the study in memory. With a
    storage, `n_trials` is the number of finished trials the study should hold: the same data
    and settings resume the study and run only the missing trials
    (`leadscore.modeling.tuning`)."""

    n_trials: int = Field(12, ge=1)
    timeout_s: float = Field(600, gt=0)
    n_startup_trials: int = Field(5, ge=1)  # random trials before TPE and before pruning
    pruning_warmup_rounds: int = Field(30, ge=0)
    storage: str | None = None

    @model_validator(mode="after")
    def _check(self) -> OptunaConfig:
        if self.storage is not None and "://" not in self.storage:
            raise ValueError("train_model.optuna.storage must be a database URL such as "
                             "sqlite:///optuna.db (or null: in memory)")
        return self


class LeakageConfig(_Section):
    """Leakage probe run before training (see leadscore.modeling.leakage)."""

    enabled: bool = True
    max_auc: float = Field(0.9, gt=0.5, le=1)  # univariate out-of-time AUC, max(auc, 1-auc)
    max_random_gap: float = Field(0.1, gt=0, le=0.5)  # random-split AUC minus out-of-time AUC
    max_rows: int = Field(100_000, ge=100)  # row sample for the probe (speed)


class RecencyConfig(_Section):
    """Candidate training settings, chosen on the valid slice (pre-test data only): the
    training window in months (None: all history) and the sample-weight half-life in days
    (None: every row weighs the same)."""

    window_months: tuple[int | None, ...] = (None, 6)
    half_life_days: tuple[float | None, ...] = (None, 180.0)

    @model_validator(mode="after")
    def _not_empty(self) -> RecencyConfig:
        if not self.window_months or not self.half_life_days:
            raise ValueError("recency candidates must not be empty (use [null] for the default)")
        if any(w is not None and w < 1 for w in self.window_months):
            raise ValueError("window_months must be >= 1 or null")
        if any(h is not None and h <= 0 for h in self.half_life_days):
            raise ValueError("half_life_days must be > 0 or null")
        return self


class TrainModelConfig(_Section):
    """LightGBM + calibration and the logistic-regression check (stage `train_model`)."""

    min_positives: int = Field(200, ge=1)
    fallback_to_rules: bool = False  # too few positives: skip the model, keep the rules
    num_threads: int = Field(2, ge=1)
    max_boost_rounds: int = Field(2000, ge=10)
    learning_rate: float = Field(0.1, gt=0, le=1)  # fixed; Optuna tunes the rest
    early_stopping_rounds: int = Field(50, ge=5)
    # True: one feature per interaction-constraint group, so every tree splits on a single
    # feature (an additive model); exact SHAP values are then table look-ups (leadscore.explain.contributions)
    additive: bool = True
    # features whose contribution may never fall as they grow (LightGBM monotone constraints):
    # one more pricing-page view never lowers a lead's score, everything else the same
    monotone_increasing: tuple[str, ...] = (
        "pricing_page_view_7d", "pricing_page_view_30d", "pricing_page_view_90d")
    optuna: OptunaConfig = OptunaConfig()
    calibration_methods: tuple[Literal["isotonic", "sigmoid"], ...] = ("isotonic", "sigmoid")
    calibration_folds: int = Field(5, ge=2)
    logistic_c: float = Field(0.1, gt=0)  # inverse L2 strength
    leakage: LeakageConfig = LeakageConfig()
    recency: RecencyConfig = RecencyConfig()
    # True: the shipped models are refitted on every row mature before the test slice
    refit: bool = True


class BacktestConfig(_Section):
    """Rolling-origin backtest (stage `backtest`): `folds` consecutive test periods of
    `fold_months` each, ending with the latest as_of month; inside each fold the same split
    (valid/calib months below, embargo as in `split`), settings choice and refit as training.
    LightGBM uses the fixed `lightgbm_params` (tuning per fold would cost ~10x)."""

    folds: int = Field(4, ge=2)
    fold_months: int = Field(2, ge=1)
    valid_months: int = Field(1, ge=1)
    calib_months: int = Field(1, ge=1)
    lightgbm_params: dict[str, float] = Field(default_factory=lambda: {
        "num_leaves": 15, "min_data_in_leaf": 100, "feature_fraction": 0.9,
        "bagging_fraction": 0.9, "lambda_l2": 1.0})


class EvaluateConfig(_Section):
    """Out-of-time evaluation (stage `evaluate`). Top-K capacity is reps x leads_per_rep
    leads per as_of date (per month with the monthly schedule)."""

    reps: int = Field(2, ge=1)
    leads_per_rep: int = Field(500, ge=1)
    n_bootstrap: int = Field(200, ge=10)
    ece_bins: int = Field(15, ge=2)
    deciles: int = Field(10, ge=2)
    behaviour_rows: int = Field(5000, ge=1)  # test leads in the pricing-page direction check
    # the capacity handoff (leadscore.modeling.capacity): a first call within sla_hours;
    # leads per day = leads per monthly snapshot / working_days_per_month
    sla_hours: float = Field(1.0, gt=0)
    working_days_per_month: int = Field(21, ge=1, le=31)
    # quality by segment (leadscore.modeling.segments): segments with fewer conversions (or
    # non-conversions) are omitted; lead-grouped bootstrap draws of each segment's ROC-AUC
    segment_min_positives: int = Field(30, ge=1)
    segment_n_bootstrap: int = Field(100, ge=10)


class ExportConfig(_Section):
    """The exported MLflow scorer (stage `export`): where it is registered and its aliases.
    Every export sets `challenger_alias`; only the gate (or a forced promotion) moves
    `champion_alias`. The model is written to models/scorer either way; `register_model:
    false` skips the registry (then there is no champion to gate against or score)."""

    registered_model: str = Field("leadscore", pattern=r"^[A-Za-z0-9_.-]+$")
    challenger_alias: str = Field("challenger", pattern=r"^[A-Za-z0-9_-]+$")
    champion_alias: str = Field("champion", pattern=r"^[A-Za-z0-9_-]+$")
    register_model: bool = True

    @model_validator(mode="after")
    def _distinct(self) -> ExportConfig:
        if self.challenger_alias == self.champion_alias:
            raise ValueError("challenger_alias and champion_alias must differ")
        return self


class GateConfig(_Section):
    """The promotion gate (stage `gate`, command `leadscore promote`): champion and
    challenger on the same, most recent mature window (the test slice). Every check must
    pass; `promote: false` only reports. Experiments (`dvc exp run`) never promote."""

    auc_tolerance: float = Field(0.01, ge=0)  # lower 95% CI bound of AUC diff >= -tolerance
    max_ece: float = Field(0.02, gt=0)
    max_calibration_in_the_large: float = Field(0.15, gt=0)  # |mean predicted / observed - 1|
    segments: tuple[str, ...] = ("source", "country", "industry", "company_size_band")
    segment_min_positives: int = Field(100, ge=1)
    segment_auc_tolerance: float = Field(0.03, ge=0)
    n_bootstrap: int = Field(200, ge=10)
    significance: float = Field(0.05, gt=0, lt=0.5)  # grade-order break test
    promote: bool = True


class ScoreConfig(_Section):
    """The batch scoring job (stage `score`, command `leadscore score`).

    `as_of` None scores as of the data cutoff: midnight after the latest timestamp in the
    source. `chunk_size` leads are featurised and scored at a time (bounds memory);
    `quarantine_budget` is the largest share of the lead base whose rows may be quarantined
    before the run fails; `memory_limit` / `threads` bound DuckDB. `control_share` of the
    leads (a hash of the lead id salted with `control_salt`: the same leads every run) form
    the control arm, handed over in the rules' order, so the model's lift over the rules is
    measured on real outcomes (`leadscore.monitor.realized`); 0 turns it off. `fingerprint`
    says what identifies the input in the run id and the resume check: "stat" (file names,
    sizes, modification times) or "content" (a hash of the files' bytes, streamed)."""

    as_of: dt.date | None = None
    chunk_size: int = Field(100_000, ge=1)
    quarantine_budget: float = Field(0.01, ge=0, le=1)
    memory_limit: str = "1GB"
    threads: int = Field(2, ge=1)
    control_share: float = Field(0.1, ge=0, le=0.5)
    control_salt: str = Field("leadscore-control", min_length=1)
    fingerprint: Literal["stat", "content"] = "stat"


class ExplainConfig(_Section):
    """Grades and explanations (stage `explain`).

    Grade cut points are quantiles of the model's fit-group (letter) and engagement-group
    (digit) log-odds contributions on the calibration slice: `fit_shares` / `engagement_shares`
    give the share of calibration leads per letter / digit, best first, summing to 1.
    """

    fit_shares: dict[str, float] = Field(
        default_factory=lambda: {"A": 0.15, "B": 0.25, "C": 0.30, "D": 0.30})
    engagement_shares: dict[str, float] = Field(
        default_factory=lambda: {"1": 0.15, "2": 0.25, "3": 0.30, "4": 0.30})
    significance: float = Field(0.05, gt=0, lt=0.5)  # one-sided test of a monotonicity break
    n_reasons: int = Field(3, ge=1, le=10)  # top positive and top negative reasons per lead
    top_drivers: int = Field(5, ge=1, le=20)  # dependence plots for this many drivers
    dependence_rows: int = Field(2000, ge=10)  # test rows sampled per dependence plot
    examples_per_grade: int = Field(3, ge=0, le=20)
    min_direction_corr: float = Field(0.3, gt=0, lt=1)  # |rank corr| below: direction "mixed"

    @model_validator(mode="after")
    def _check(self) -> ExplainConfig:
        for name, shares, keys in (("fit_shares", self.fit_shares, ["A", "B", "C", "D"]),
                                   ("engagement_shares", self.engagement_shares,
                                    ["1", "2", "3", "4"])):
            if sorted(shares) != keys:
                raise ValueError(f"explain.{name} needs exactly the keys {keys}")
            if any(v <= 0 for v in shares.values()) or abs(sum(shares.values()) - 1) > 1e-6:
                raise ValueError(f"explain.{name} must be positive shares that sum to 1")
        return self


class PointsConfig(_Section):
    """The points table learned from the additive LightGBM model (stage `points`,
    `leadscore.modeling.points`).

    `points_per_doubling` points double the odds of converting; a numeric field keeps at
    most `max_bands` bands; a category level held by less than `min_level_share` of the
    training rows is "other" (0 points). Grade bands use `explain.*_shares`; the MQL
    threshold fills `evaluate.reps x evaluate.leads_per_rep` leads a month."""

    points_per_doubling: float = Field(20, gt=0)
    max_bands: int = Field(5, ge=2, le=20)
    min_level_share: float = Field(0.01, ge=0, lt=0.5)


class ReportConfig(_Section):
    """The marketing report (stage `report`, command `leadscore report`).

    `top_share` is the share of leads in the headline ("the top 20% of leads hold X% of
    conversions"); `max_drivers` drivers are listed and `dependence_charts` of them get a
    small chart; `examples_per_grade` example leads are shown per grade; `log_mlflow` logs
    the HTML file as an artifact of a new MLflow run named `report`."""

    top_share: float = Field(0.2, gt=0, lt=1)
    max_drivers: int = Field(10, ge=1, le=50)
    dependence_charts: int = Field(6, ge=0, le=20)
    examples_per_grade: int = Field(2, ge=0, le=20)
    log_mlflow: bool = True


class MonitorConfig(_Section):
    """Score history and monitoring (`leadscore.monitor`; the `score` stage records, the
    `monitor` stage and `leadscore monitor` check).

    Every batch scoring run appends one summary row to the `score_runs` table of the DuckDB
    file `history` (no per-lead rows). Drift is measured against a training reference: the
    out-of-time test slice of `reference_table` (at most `reference_rows` rows, sampled with
    `seed`) scored by the same model, built once per model version and kept in the same
    file. Numeric features are binned on `bins` quantile bins of the reference; categorical
    features keep the reference's `top_levels` levels plus "other". PSI uses shares floored
    at `psi_floor`. An alert is: a PSI of the probability or the grade mix (against the
    reference or run to run) at or above `psi_alert`; a feature's PSI at or above
    `feature_psi_alert` (higher: with ~65 features, one crosses 0.25 with the season alone);
    a PSI from `psi_warn` up is listed as a warning;
    more than `max_new_level_share` of leads in a category the reference never had; a
    null rate up by more than `max_null_rate_increase`; leads scored outside
    [`min_volume_ratio`, `max_volume_ratio`] x the median of the previous `volume_runs`
    runs; more than `max_days_since_event` days between the newest event and the run's
    as_of. `report_runs` runs are shown in the report.

    Realized performance (`leadscore.monitor.realized`): with `keep_lead_scores`, each run
    keeps its per-lead scores (pseudonymous ids) for `lead_rows_days` days; once a run's
    label window (`features.horizon_days`) has passed in the CRM, they are joined to the
    outcomes. Alerts: the realized ROC-AUC's upper 95% bound (`n_bootstrap` draws) below the
    backtest's lowest fold (`backtest_metrics`; without it, the reference's interval);
    mean predicted / observed - 1 beyond `max_realized_calibration_gap` with the observed
    rate's interval excluding the prediction; the model arm's hand-over (its top
    `handover_share` by probability) converting significantly worse than the control arm's
    (top share by rule points). Runs with fewer than `min_realized_positives` conversions
    are reported, not judged."""

    record: bool = True
    history: str = "data/monitoring/history.duckdb"
    reference_table: str = "data/processed/train.parquet"
    reference_rows: int = Field(50_000, ge=100)
    bins: int = Field(10, ge=2, le=50)
    top_levels: int = Field(10, ge=1, le=50)
    psi_floor: float = Field(1e-4, gt=0, lt=0.01)
    psi_warn: float = Field(0.1, gt=0)
    psi_alert: float = Field(0.25, gt=0)
    feature_psi_alert: float = Field(0.5, gt=0)
    max_new_level_share: float = Field(0.01, gt=0, le=1)
    max_null_rate_increase: float = Field(0.1, gt=0, le=1)
    min_volume_ratio: float = Field(0.8, ge=0)
    max_volume_ratio: float = Field(1.5, gt=1)
    volume_runs: int = Field(4, ge=1)
    max_days_since_event: float = Field(7.0, gt=0)
    report_runs: int = Field(12, ge=1, le=100)
    keep_lead_scores: bool = True
    lead_rows_days: int = Field(400, ge=1)
    backtest_metrics: str = "reports/backtest.json"
    n_bootstrap: int = Field(200, ge=20)
    handover_share: float = Field(0.05, gt=0, le=1)
    min_realized_positives: int = Field(30, ge=1)
    max_realized_calibration_gap: float = Field(0.25, gt=0)

    @model_validator(mode="after")
    def _check(self) -> MonitorConfig:
        if self.psi_warn > min(self.psi_alert, self.feature_psi_alert):
            raise ValueError("monitor.psi_warn must not exceed monitor.psi_alert or monitor.feature_psi_alert")
        if self.min_volume_ratio >= 1:
            raise ValueError("monitor.min_volume_ratio must be below 1")
        return self


class MlflowConfig(_Section):
    """Local MLflow tracking, no server. The MLFLOW_TRACKING_URI environment variable wins."""

    tracking_uri: str = "sqlite:///mlruns.db"
    experiment: str = "leadscore"


class Params(_Section):
    """The whole params.yaml."""

    seed: int = 42
    generate: GenerateConfig = GenerateConfig()
    ingest: IngestConfig = IngestConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    features: FeaturesConfig = FeaturesConfig()
    split: SplitConfig = SplitConfig()
    train_rules: TrainRulesConfig = TrainRulesConfig()
    train_model: TrainModelConfig = TrainModelConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    backtest: BacktestConfig = BacktestConfig()
    explain: ExplainConfig = ExplainConfig()
    points: PointsConfig = PointsConfig()
    export: ExportConfig = ExportConfig()
    gate: GateConfig = GateConfig()
    score: ScoreConfig = ScoreConfig()
    report: ReportConfig = ReportConfig()
    monitor: MonitorConfig = MonitorConfig()
    mlflow: MlflowConfig = MlflowConfig()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def validation_message(err: ValidationError, source: str, what: str = "invalid setting(s)",
                       unknown_key: str | None = None) -> str:
    """One line per bad key of a pydantic error: `source: N <what>:` then `  - key: why`."""
    lines = [f"{source}: {len(err.errors())} {what}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ") if unknown_key else e["msg"]
        if unknown_key and e["type"] == "extra_forbidden":
            msg = unknown_key
        lines.append(f"  - {key}: {msg}")
    return "\n".join(lines)


def read_yaml(path: str | Path, error: type[Exception], not_found: str) -> dict:
    """A YAML file's top-level mapping ({} for an empty file); `error` names what is wrong."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: {not_found}") from None
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML: {err}") from None
    if raw is not None and not isinstance(raw, dict):
        raise error(f"{path}: expected a mapping of keys at the top level")
    return raw or {}


def params_from_dict(raw: dict, source: str = "params") -> Params:
    """Validate a params mapping; raise `ConfigError` naming each bad key."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as err:
        raise ConfigError(validation_message(err, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    raw = read_yaml(path, ConfigError, "file not found (run from the project root)")
    return params_from_dict(raw, source=str(path))
