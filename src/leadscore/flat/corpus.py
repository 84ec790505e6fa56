"""A corpus of small messy CRM exports for flat mode, one per problem real exports have.

Issue 12 tried `leadscore flat` on real public CRM and marketing exports and listed what
broke. None of those files can live in this repository, so each problem is planted here in
a small synthetic export: plain functions that take a `seed` and return a `MessyExport`, a
pandas frame of text and numbers as a CSV would hold them (a few thousand rows at most) and
the mapping dict that reads it (without ``file:``; `write_case` adds it). Same seed, same
rows. Nothing is written and nothing is logged on import.

Every export is built on `base_frame`: a lead base with a numeric signal (``Page Visits``,
more visits convert more), a categorical one (``Channel``: referral converts more), a noise
column (``Company Size``) and a ``Converted`` yes/no outcome. The planted problems
(`CORPUS`, by name):

| name                 | problem planted                                                | expected |
|----------------------|----------------------------------------------------------------|----------|
| ``day_first_dates``  | ``Created`` written ``20-10-2017`` (day first), June 2017 to May 2018 | trains, read day first |
| ``ambiguous_dates``  | ``Created`` day first, but every day is 12 or less            | `ConfigError` (exit 2), asks for ``date_format:`` |
| ``categorical_only`` | only a channel and a 40-level landing page (no number)        | trains   |
| ``partial_leak``     | ``Referral Code`` present on 1% of rows, all of them converted | trains, the column flagged (certainty) and dropped |
| ``high_cardinality`` | ``Landing Page`` with 500 levels, 60 mid-frequency ones convert at 3x | trains, a cap above 30 kept |
| ``placeholders``     | n/a, -, ?, select in a numeric and a text column, ``unknown`` declared missing | trains, numbers stay numbers |
| ``number_formats``   | ``1,234``, ``$12,500.00``, ``15%`` in numeric columns          | trains, read as numbers |
| ``pii``              | e-mail, phone and contact-name columns                         | trains, the three dropped and named |
| ``single_positive``  | one converted row, no date (stratified split)                  | `TooFewPositivesError` (exit 4) |
| ``weekday_signal``   | weekend leads convert at several times the weekday rate (``Created`` with times) | trains, the date parts carry it |

`MessyExport.planted` says where the problem is (column names, the true date range, the
planted rows); the tests (tests/flat/test_corpus.py) and the benchmark
(benchmarks/messy_exports.py) read it. ``mapping["model"]`` is `QUICK_MODEL`: one Optuna
trial and a few boosting rounds, so a case trains in a second or two; the benchmark gives
a larger budget. Not covered on purpose: decimal commas (``1.234,50``), which the reader
does not guess (leadscore.flat.table.parse_numbers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from leadscore.flat.mapping import DEFAULT_MISSING

# One Optuna trial and a few rounds: a case trains in a second or two.
QUICK_MODEL: dict = {"n_trials": 1, "timeout_s": 10, "num_threads": 1, "min_positives": 5,
                     "max_boost_rounds": 30, "early_stopping_rounds": 5, "calibration_folds": 2}


@dataclass(frozen=True)
class MessyExport:
    """One planted problem: the export as a frame, the mapping that reads it (no ``file:``),
    and what a run should do with it (`exit_code` 0: it trains; else the documented code of
    the clear error, leadscore.errors, with `error` the exception class name)."""

    name: str
    problem: str  # one line: what is planted
    frame: pd.DataFrame
    mapping: dict
    exit_code: int = 0
    error: str | None = None  # exception class name when exit_code != 0
    planted: dict = field(default_factory=dict)  # where the problem is (columns, rows, dates)

    @property
    def trains(self) -> bool:
        return self.exit_code == 0


# ---- building blocks ----------------------------------------------------------------------
def base_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A lead base with a numeric and a categorical signal and a yes/no outcome."""
    rng = np.random.default_rng(seed)
    visits = rng.poisson(3, n)
    channel = rng.choice(["Google", "Direct", "Referral", "Events"], n)
    logit = -1.5 + 0.3 * (visits - 3) + np.where(channel == "Referral", 1.0, 0.0)
    converted = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"Lead ID": [f"L{i:05d}" for i in range(n)],
                         "Channel": channel, "Page Visits": visits,
                         "Company Size": rng.integers(1, 500, n),
                         "Converted": np.where(converted, "yes", "no")})


def dates(n: int, *, start: str = "2017-06-01", days: int = 360, seed: int = 1) -> pd.Series:
    """`n` dates in file order over `days` days from `start` (sorted: the file is in time order)."""
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.integers(0, days, n))
    return pd.Series(pd.Timestamp(start) + pd.to_timedelta(offsets, unit="D"))


def high_cardinality_frame(n: int = 8000, seed: int = 0, *, levels: int = 500, planted: int = 60,
                           first_planted: int = 30, base_rate: float = 0.08,
                           lift: float = 3.0) -> tuple[pd.DataFrame, np.ndarray]:
    """A lead base in time order whose `Landing Page` has `levels` levels (Zipf-like shares,
    level r drawn with weight 1 / (r + 10)); the `planted` levels ranked `first_planted`
    onwards (mid-frequency: outside a top-30 cap, about 20-45 rows each in 8,000 rows) convert
    at `lift` times the base rate, the others at the base rate, with a mild visits effect.
    Returns the frame and the planted mask (True: the row's page is planted)."""
    rng = np.random.default_rng(seed)
    w = 1 / (np.arange(levels) + 10.0)
    page = rng.choice(levels, n, p=w / w.sum())
    hot = (page >= first_planted) & (page < first_planted + planted)
    names = np.array([f"LP-{i:04d}" for i in rng.permutation(levels)])  # the rank is not in the name
    visits = rng.poisson(3, n)
    p = np.where(hot, base_rate * lift, base_rate) * np.exp(0.1 * (visits - 3))
    converted = rng.random(n) < np.clip(p, 0, 0.95)
    return pd.DataFrame({"Lead ID": [f"L{i:05d}" for i in range(n)], "Landing Page": names[page],
                         "Page Visits": visits, "Converted": np.where(converted, "yes", "no")}), hot


def base_mapping(**keys) -> dict:
    """The corpus's mapping (no ``file:``): target ``Converted``, positive ``yes``,
    `QUICK_MODEL`, ``screen.on_flag: drop`` (flagged columns are dropped, not refused), and
    `keys` on top."""
    return {"target": "Converted", "positive": "yes", "model": dict(QUICK_MODEL),
            "screen": {"on_flag": "drop"}, **keys}


def write_case(folder: str | Path, frame: pd.DataFrame, mapping: dict, *,
               name: str = "export.csv") -> Path:
    """Write `frame` as `folder`/`name` and `mapping` (with ``file: name``) as
    `folder`/mapping.yaml; returns the mapping's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / name, index=False)
    path = folder / "mapping.yaml"
    path.write_text(yaml.safe_dump({"file": name, **mapping}, sort_keys=False))
    return path


def _with_outcome(df: pd.DataFrame, logit: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    return df.assign(Converted=np.where(rng.random(len(df)) < 1 / (1 + np.exp(-logit)), "yes", "no"))


# ---- the planted problems -------------------------------------------------------------------
def day_first_dates(seed: int = 0, n: int = 1500) -> MessyExport:
    """``Created`` written day first (``20-10-2017``), June 2017 to May 2018, the file in time
    order. Read month first wherever the day is 12 or less, the dates would be scrambled."""
    truth = dates(n, seed=seed + 1)
    df = base_frame(n, seed=seed).assign(Created=truth.dt.strftime("%d-%m-%Y"))
    return MessyExport("day_first_dates", "created_at written day first (20-10-2017)", df,
                       base_mapping(id="Lead ID", created_at="Created"),
                       planted={"column": "Created", "first": str(truth.min().date()),
                                "last": str(truth.max().date())})


def ambiguous_dates(seed: int = 0, n: int = 400) -> MessyExport:
    """``Created`` written day first, but only on the first 12 days of each month: day-first
    and month-first cannot be told apart, so the run stops and asks for ``date_format:``."""
    rng = np.random.default_rng(seed)
    month = np.sort(rng.integers(1, 13, n))
    day = rng.integers(1, 13, n)
    created = [f"{d:02d}/{m:02d}/2018" for d, m in zip(day, month, strict=True)]
    df = base_frame(n, seed=seed).assign(Created=created)
    return MessyExport("ambiguous_dates", "numeric dates whose both fields are 12 or less", df,
                       base_mapping(id="Lead ID", created_at="Created"), exit_code=2,
                       error="ConfigError", planted={"column": "Created"})


def categorical_only(seed: int = 0, n: int = 1200, pages: int = 40) -> MessyExport:
    """Only text features: a channel and a landing-page id (no number at all), the issue's
    ``'SimpleImputer' object has no attribute 'indicator_'`` crash."""
    rng = np.random.default_rng(seed)
    df = base_frame(n, seed=seed)[["Lead ID", "Channel"]]
    page = rng.integers(0, pages, n)
    logit = -1.6 + np.where(df["Channel"] == "Referral", 1.0, 0.0) + np.where(page < pages // 4, 0.9, 0.0)
    df = _with_outcome(df.assign(**{"Landing Page": [f"LP-{p:03d}" for p in page]}), logit, rng)
    return MessyExport("categorical_only", "only categorical feature columns", df,
                       base_mapping(id="Lead ID"), planted={"columns": ["Channel", "Landing Page"]})


def partial_leak(seed: int = 0, n: int = 4000, share: float = 0.01) -> MessyExport:
    """``Referral Code``: filled in for about `share` of the rows, every one of them converted
    (a field sales fills in only for some won leads). Its missingness AUC is near 0.5 and its
    univariate AUC unremarkable; the certainty rule of the screen flags it. Time-ordered
    (``time_order: rows``)."""
    rng = np.random.default_rng(seed)
    df = base_frame(n, seed=seed)
    pos = np.flatnonzero(df["Converted"].to_numpy() == "yes")
    rows = np.sort(rng.choice(pos, size=max(1, round(share * n)), replace=False))
    code = np.full(n, "", dtype=object)
    code[rows] = [f"R{rng.integers(1, 6)}" for _ in rows]
    df["Referral Code"] = code
    return MessyExport("partial_leak", f"a column present on {share:.0%} of rows, all converted", df,
                       base_mapping(id="Lead ID", time_order="rows"),
                       planted={"column": "Referral Code", "feature": "referral_code",
                                "rows": int(len(rows))})


def high_cardinality(seed: int = 0, n: int = 6000) -> MessyExport:
    """``Landing Page`` with 500 levels whose 60 mid-frequency levels (outside a top-30 cap)
    convert at 3x the base rate (`high_cardinality_frame`), in time order. The old top-30
    fold (``max_levels: 30``) loses the signal; ``max_levels: auto`` keeps it."""
    df, hot = high_cardinality_frame(n=n, seed=seed)
    return MessyExport("high_cardinality", "a 500-level landing page with a planted signal", df,
                       base_mapping(id="Lead ID", time_order="rows",
                                    model={**QUICK_MODEL, "min_positives": 20}),
                       planted={"column": "Landing Page", "feature": "landing_page", "levels": 500,
                                "planted_share": float(hot.mean())})


def placeholders(seed: int = 0, n: int = 1200, share: float = 0.1) -> MessyExport:
    """Placeholders (``n/a``, ``-``, ``?``, ``select``, ``unknown``) in about `share` of a
    numeric column (``Page Visits``) and a text column (``Channel``). ``unknown`` is declared
    in ``missing_values`` (it is not in the default list: in the bank data it is a level);
    the numeric column must stay numeric."""
    rng = np.random.default_rng(seed)
    df = base_frame(n, seed=seed)
    marks = ["n/a", "-", "?", "Select", " N/A ", "unknown"]
    visits = df["Page Visits"].astype(str).to_numpy(object)
    channel = df["Channel"].to_numpy(object)
    rows_v = rng.random(n) < share
    rows_c = rng.random(n) < share
    visits[rows_v] = rng.choice(marks, int(rows_v.sum()))
    channel[rows_c] = rng.choice(marks, int(rows_c.sum()))
    df = df.assign(**{"Page Visits": visits, "Channel": channel})
    return MessyExport("placeholders", "n/a, -, ?, select, unknown in a numeric and a text column",
                       df, base_mapping(id="Lead ID", missing_values=[*DEFAULT_MISSING, "unknown"]),
                       planted={"numeric": "Page Visits", "text": "Channel",
                                "missing_numeric": int(rows_v.sum()), "missing_text": int(rows_c.sum())})


def number_formats(seed: int = 0, n: int = 1200) -> MessyExport:
    """Numbers written as real exports write them: ``Annual Revenue`` with a currency sign and
    thousands separators (``$12,500.00``), ``Page Views`` with thousands separators
    (``1,234``), ``Discount`` as a percentage (``15%``). Revenue carries the signal."""
    rng = np.random.default_rng(seed)
    df = base_frame(n, seed=seed)[["Lead ID", "Channel"]]
    revenue = np.round(rng.lognormal(10, 1.2, n), 2)
    views = rng.integers(0, 5000, n)
    discount = rng.integers(0, 40, n)
    logit = -1.5 + 0.6 * (np.log(revenue) - 10) + np.where(df["Channel"] == "Referral", 0.8, 0.0)
    df = _with_outcome(df.assign(**{"Annual Revenue": [f"${v:,.2f}" for v in revenue],
                                    "Page Views": [f"{v:,}" for v in views],
                                    "Discount": [f"{v}%" for v in discount]}), logit, rng)
    return MessyExport("number_formats", "thousands separators, currency and percent text", df,
                       base_mapping(id="Lead ID"),
                       planted={"columns": {"Annual Revenue": "annual_revenue", "Page Views": "page_views",
                                            "Discount": "discount"},
                                "revenue": revenue.tolist()[:5], "views": views.tolist()[:5],
                                "discount": discount.tolist()[:5]})


FIRST_NAMES = ["Ann", "Bob", "Cara", "David", "Emma", "Hans", "Priya", "Lucas", "Maria", "Wei"]
LAST_NAMES = ["Lee", "King", "Diaz", "Smith", "Jones", "Kumar", "Meyer", "Rossi", "Chen", "Silva"]


def pii(seed: int = 0, n: int = 800) -> MessyExport:
    """An e-mail, a phone and a contact-name column next to the features (headers that do not
    all say what they hold: ``Work Contact`` is the phone)."""
    rng = np.random.default_rng(seed)
    df = base_frame(n, seed=seed)
    df.insert(1, "E-mail", [f"lead{i}@example.org" for i in range(n)])
    df.insert(2, "Work Contact", [f"+1 555 {rng.integers(100, 999)} {rng.integers(1000, 9999)}"
                                  for _ in range(n)])
    df.insert(3, "Contact Name", [f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}" for _ in range(n)])
    return MessyExport("pii", "e-mail, phone and person-name columns", df, base_mapping(id="Lead ID"),
                       planted={"columns": {"E-mail": "e-mail", "Work Contact": "phone",
                                            "Contact Name": "person name"}})


def single_positive(seed: int = 0, n: int = 300) -> MessyExport:
    """One converted row and no date: a stratified split cannot put a positive in each slice."""
    df = base_frame(n, seed=seed).assign(Converted="no")
    df.loc[n // 3, "Converted"] = "yes"
    return MessyExport("single_positive", "a single positive row, no date", df,
                       base_mapping(id="Lead ID"), exit_code=4, error="TooFewPositivesError")


def weekday_signal(seed: int = 0, n: int = 1500) -> MessyExport:
    """Leads whose conversion depends on the weekday they came in (weekend leads convert at
    several times the weekday rate), on their page visits and on the channel; ``Created``
    carries times (``2017-06-03 14:05``), so the hour is a part too."""
    rng = np.random.default_rng(seed)
    df = base_frame(n, seed=seed)
    created = dates(n, seed=seed + 1) + pd.to_timedelta(rng.integers(0, 24 * 60, n), unit="min")
    weekend = created.dt.dayofweek.to_numpy() >= 5
    logit = (-2.2 + 0.5 * (df["Page Visits"].to_numpy() - 3) + 1.8 * weekend
             + np.where(df["Channel"] == "Referral", 1.0, 0.0))
    df = _with_outcome(df.assign(Created=created.dt.strftime("%Y-%m-%d %H:%M")), logit, rng)
    return MessyExport("weekday_signal", "a weekday signal in created_at", df,
                       base_mapping(id="Lead ID", created_at="Created"),
                       planted={"column": "Created", "feature": "created_day_of_week"})


CORPUS: dict[str, Callable[..., MessyExport]] = {
    f.__name__: f for f in (day_first_dates, ambiguous_dates, categorical_only, partial_leak,
                            high_cardinality, placeholders, number_formats, pii, single_positive,
                            weekday_signal)}


def corpus(seed: int = 0) -> list[MessyExport]:
    """Every planted problem of `CORPUS`, built with `seed`."""
    return [build(seed) for build in CORPUS.values()]
