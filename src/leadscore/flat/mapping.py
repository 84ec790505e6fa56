"""The flat-table mapping: a small YAML file that says how to read one CRM export.

A flat export has one row per lead, with behaviour already totalled. The mapping names the
id, the optional created date (or ``time_order: rows``), the target and its positive value,
the fit and engagement columns, the columns to drop, type overrides, the columns the
leakage screen may keep on purpose (``allow``), whether the created date's parts become
features (``date_parts``), the columns wrongly taken for person names (``not_pii``, see
leadscore.flat.pii), and the rule baseline's points table. Every
key is documented in examples/bank_marketing/README.md ("The mapping format").

`load_mapping` validates the YAML with pydantic (unknown keys are errors) and raises
`MappingError` naming the key, e.g. ``rules.fit.age: ...``. Whether the named columns exist
is checked against the file by `leadscore.flat.table.prepare` (the mapping alone cannot know).
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leadscore.config import read_yaml, validation_message
from leadscore.errors import InputError
from leadscore.modeling.baseline import norm_value

# Values that mean "missing" in real exports (matched after trimming, case-insensitively).
# "unknown" is NOT in the default list: in the UCI bank data it is a real level that carries
# signal (e.g. default = "unknown" converts at about half the rate of default = "no"). Add it
# to `missing_values` when your export uses it as a placeholder.
DEFAULT_MISSING: tuple[str, ...] = ("", "select", "-", "--", "na", "n/a", "nan", "null", "none",
                                    "#n/a", "?")


DATE_ORDERS: tuple[str, ...] = ("day_first", "month_first")


class MappingError(InputError):
    """The mapping file is missing, unreadable, or names a wrong key, column or value."""


_COND = re.compile(r"^\s*(<=|>=|==|<|>)\s*([+-]?\d+(?:\.\d+)?)\s*$")
_RANGE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*\.\.\s*([+-]?\d+(?:\.\d+)?)\s*$")


def parse_condition(cond: str, *, where: str = "condition"):
    """A rule condition -> ('missing', None) | ('cmp', (op, x)) | ('range', (lo, hi)) |
    ('value', normalised category)."""
    text = str(cond).strip()
    if not text:
        raise ValueError(f"{where}: empty condition")
    if text.lower() == "missing":
        return ("missing", None)
    m = _COND.match(text)
    if m:
        return ("cmp", (m.group(1), float(m.group(2))))
    m = _RANGE.match(text)
    if m:
        lo, hi = float(m.group(1)), float(m.group(2))
        if hi <= lo:
            raise ValueError(f"{where}: range '{text}' must have low < high")
        return ("range", (lo, hi))
    if text[0] in "<>=":
        raise ValueError(f"{where}: cannot read condition '{text}' (use <x, <=x, >x, >=x, ==x, "
                         f"lo..hi, missing, or a category value)")
    return ("value", norm_value(text))


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RulesMapping(_Strict):
    """The rule baseline for this data: a points table a marketing team would write.

    `fit` and `engagement` map a column to ``{condition: points}``. A condition is a
    category value (matched case- and punctuation-insensitively), a numeric comparison
    (``"<25"``, ``">=60"``, ``"==0"``), a half-open range ``"25..60"`` (25 <= x < 60), or
    ``missing``. The first matching condition of a column scores (table order); no match
    scores 0. Each engagement column's points are capped at `max_points_per_activity`.
    """

    fit: dict[str, dict[str, float]] = Field(default_factory=dict)
    engagement: dict[str, dict[str, float]] = Field(default_factory=dict)
    max_points_per_activity: float = Field(30, gt=0)
    fit_bands: dict[str, float] = Field(default_factory=lambda: {"A": 20, "B": 10, "C": 0})
    engagement_bands: dict[str, float] = Field(default_factory=lambda: {"1": 30, "2": 15, "3": 1})
    mql_threshold: float = 30

    @model_validator(mode="after")
    def _check(self) -> RulesMapping:
        for group in ("fit", "engagement"):
            for col, table in getattr(self, group).items():
                if not table:
                    raise ValueError(f"rules.{group}.{col}: empty points table")
                for cond in table:
                    parse_condition(cond, where=f"rules.{group}.{col}")
        for name, bands, keys in (("fit_bands", self.fit_bands, ["A", "B", "C"]),
                                  ("engagement_bands", self.engagement_bands, ["1", "2", "3"])):
            if sorted(map(str, bands)) != keys:
                raise ValueError(f"rules.{name} needs exactly the keys {keys}")
            mins = [bands[k] for k in keys]
            if mins != sorted(mins, reverse=True):
                raise ValueError(f"rules.{name} minimums must decrease from {keys[0]} to {keys[-1]}")
        return self


class ScreenMapping(_Strict):
    """The leakage screen (leadscore.modeling.leakage). `max_auc`: a column whose univariate ROC-AUC
    (cross-fitted on a random stratified 2-fold split of the training rows) reaches it is
    flagged, and so is one that reaches `dominant_auc` and beats every other column by
    `dominant_gap`; `max_missing_auc`: the same for the column's missing/present indicator alone;
    `extra_names`: more post-outcome name words for this export; `on_flag`: ``refuse`` (stop
    the run, the default) or ``drop`` (train without the flagged columns and say so)."""

    enabled: bool = True
    max_auc: float = Field(0.85, gt=0.5, le=1)
    max_missing_auc: float = Field(0.75, gt=0.5, le=1)
    dominant_auc: float = Field(0.75, gt=0.5, le=1)
    dominant_gap: float = Field(0.15, gt=0, le=0.5)
    extra_names: tuple[str, ...] = ()
    on_flag: Literal["refuse", "drop"] = "refuse"
    max_rows: int = Field(200_000, ge=100)


class SplitMapping(_Strict):
    """Shares of rows per slice. Ordered data (a created date or ``time_order: rows``):
    train | valid | calib | test, latest last, so calib is the latest pre-test slice and
    test is out of time. Otherwise a stratified random split with the same shares."""

    test: float = Field(0.2, gt=0, lt=0.5)
    calib: float = Field(0.1, gt=0, lt=0.5)
    valid: float = Field(0.1, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _check(self) -> SplitMapping:
        if self.test + self.calib + self.valid >= 0.8:
            raise ValueError("split: test + calib + valid must leave at least 20% of rows to train on")
        return self


class ModelMapping(_Strict):
    """LightGBM search budget and settings for the flat run (see params.yaml train_model)."""

    n_trials: int = Field(15, ge=1)
    timeout_s: float = Field(90, gt=0)
    num_threads: int = Field(2, ge=1)
    learning_rate: float = Field(0.05, gt=0, le=1)
    max_boost_rounds: int = Field(2000, ge=10)
    early_stopping_rounds: int = Field(50, ge=5)
    # True: single-feature trees (exact, fast look-up explanations, as the main pipeline);
    # False: free trees (exact TreeSHAP explanations); "auto": both tuned, the lower validation
    # log loss ships, and the metrics say what the constraint costs (leadscore.flat.run.train_flat)
    additive: bool | Literal["auto"] = "auto"
    logistic_c: float = Field(0.1, gt=0)
    min_positives: int = Field(50, ge=1)
    calibration_methods: tuple[Literal["isotonic", "sigmoid"], ...] = ("isotonic", "sigmoid")
    calibration_folds: int = Field(5, ge=2)
    # with `max_levels: auto`, the categorical level caps tried on the validation slice
    # (leadscore.flat.levels): each keeps a column's N most frequent levels in the pre-test rows
    # among those with at least `min_level_rows` rows, plus "all" (every such level); the rest
    # become "other"; columns with no more levels than the smallest cap are not folded
    level_caps: tuple[int, ...] = (30, 100, 300)
    min_level_rows: int = Field(10, ge=1)

    @field_validator("level_caps")
    @classmethod
    def _caps(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(c < 2 for c in v):
            raise ValueError("every level cap must be at least 2")
        return tuple(sorted(set(v)))


class Mapping(_Strict):
    """One flat export and how to read it."""

    file: str  # CSV (optionally .gz); relative paths are relative to the mapping file
    delimiter: str | None = None  # None: detected from the file (, ; tab |)
    encoding: str = "utf-8"
    id: str | None = None  # None: the row number is the id
    created_at: str | None = None  # date column: time-ordered split, latest rows tested
    date_format: str | None = None  # created_at's order: day_first | month_first | a strptime format
    max_bad_dates: float = Field(0.01, ge=0, lt=1)  # share of unreadable created_at values dropped
    time_order: Literal["rows"] | None = None  # "rows": the file is in time order
    date_parts: bool = True  # created_at's day of week, month (and hour, when it has times) as fit features
    not_pii: tuple[str, ...] = ()  # columns taken for person names that are not (never e-mail/phone)
    target: str
    positive: str | int | bool | float
    fit: tuple[str, ...] | None = None  # None: inferred (see leadscore.flat.table.infer_groups)
    engagement: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    types: dict[str, Literal["numeric", "categorical"]] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)  # plain-language labels for reasons
    units: dict[str, str] = Field(default_factory=dict)
    allow: tuple[str, ...] = ()  # screened columns kept on purpose
    missing_values: tuple[str, ...] = DEFAULT_MISSING
    # categorical levels kept: "auto" (the cap chosen on validation among model.level_caps,
    # leadscore.flat.levels) or N (the N - 1 most frequent levels in the file, the rest "other")
    max_levels: int | Literal["auto"] = "auto"
    seed: int = Field(42, ge=0, le=2**32 - 1)
    rules: RulesMapping = Field(default_factory=RulesMapping)
    screen: ScreenMapping = Field(default_factory=ScreenMapping)
    split: SplitMapping = Field(default_factory=SplitMapping)
    model: ModelMapping = Field(default_factory=ModelMapping)
    base_dir: Path = Field(Path("."), exclude=True)  # folder of the mapping file

    @field_validator("delimiter")
    @classmethod
    def _delim(cls, v: str | None) -> str | None:
        if v is not None and len(v) != 1:
            raise ValueError("must be a single character, e.g. ';' (or leave it out to detect it)")
        return v

    @field_validator("max_levels")
    @classmethod
    def _max_levels(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 2:
            raise ValueError("must be auto or a number of levels of at least 2")
        return v

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError("unknown encoding (use e.g. utf-8, utf-8-sig, latin-1, cp1252)") from None
        try:
            "".encode(v)  # hex, rot13, base64, zlib, ... are codecs but not text encodings
        except LookupError:
            raise ValueError("not a text encoding (use e.g. utf-8, utf-8-sig, latin-1, cp1252)") from None
        return v

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, v: str | None) -> str | None:
        if v is not None and v not in DATE_ORDERS and "%" not in v:
            raise ValueError(f"use one of {list(DATE_ORDERS)} or a strptime format such as '%d.%m.%Y'")
        return v

    @model_validator(mode="after")
    def _check(self) -> Mapping:
        if self.date_format and not self.created_at:
            raise ValueError("date_format needs created_at (the date column it reads)")
        if self.created_at and self.time_order:
            raise ValueError("give either created_at or time_order: rows, not both")
        for key in ("fit", "engagement"):
            cols = getattr(self, key) or ()
            if self.target in cols:
                raise ValueError(f"{key}: the target column '{self.target}' cannot be a feature")
        both = set(self.fit or ()) & set(self.engagement or ())
        if both:
            raise ValueError(f"fit and engagement share column(s) {sorted(both)}")
        return self

    @property
    def path(self) -> Path:
        p = Path(self.file).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def ordered(self) -> bool:
        """True when the test slice is out of time (a date column or rows in time order)."""
        return bool(self.created_at or self.time_order)


def mapping_from_dict(raw: dict, *, base_dir: str | Path = ".", source: str = "mapping") -> Mapping:
    """Validate a mapping dict; raise `MappingError` naming every bad key."""
    if not isinstance(raw, dict):
        raise MappingError(f"{source}: expected a YAML mapping of keys at the top level")
    try:
        return Mapping.model_validate({**raw, "base_dir": Path(base_dir)})
    except ValidationError as err:
        raise MappingError(validation_message(
            err, source, "problem(s) in the mapping",
            unknown_key="unknown key (see the mapping format in examples/bank_marketing/README.md)")) from None


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping YAML file; a folder or an unreadable file is a
    `MappingError` naming the path."""
    if Path(path).is_dir():
        raise MappingError(f"{path}: is a folder; --mapping takes the mapping YAML file")
    try:
        raw = read_yaml(path, MappingError, "mapping file not found")
    except (OSError, UnicodeDecodeError) as err:
        why = getattr(err, "strerror", None) or type(err).__name__
        raise MappingError(f"{path}: cannot read the mapping file ({why})") from None
    return mapping_from_dict(raw, base_dir=Path(path).resolve().parent, source=str(path))
