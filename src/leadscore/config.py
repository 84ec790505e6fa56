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

from leadscore.schema import CONTENT_TYPES, STAGES


class ConfigError(ValueError):
    """params.yaml is missing, unreadable or holds a wrong key or value."""


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
    """Where the CRM comes from. `synthetic` reads the generate stage's DuckDB file."""

    source: Literal["synthetic", "duckdb", "parquet", "csv"] = "synthetic"
    path: str = "data/raw/crm.duckdb"


class ValidateConfig(_Section):
    """Data checks. `quarantine_budget` is the largest share of a table's rows that may be
    quarantined by row-level checks before the stage fails."""

    quarantine_budget: float = Field(0.02, ge=0, le=1)
    # Upper bounds on the share of nulls, per table and column.
    max_null_share: dict[str, dict[str, float]] = Field(default_factory=dict)
    sample_keys: int = Field(5, ge=0, le=50)


class FeaturesConfig(_Section):
    """Point-in-time training table. See DESIGN.md, "Training set: point in time"."""

    as_of_start: dt.date = dt.date(2024, 4, 1)
    as_of_end: dt.date | None = None  # None: the last schedule date before the data cutoff
    as_of_every_months: int = Field(1, ge=1, le=12)
    data_cutoff: dt.date | None = None  # None: the latest timestamp in the data
    horizon_days: int = Field(90, ge=1)
    target_stage: Literal["mql", "sql", "opportunity", "won"] = "opportunity"
    max_lead_age_days: int = Field(365, ge=1)  # older open leads are stale, not scored
    windows_days: tuple[int, ...] = (7, 30, 90)
    half_life_days: float = Field(14.0, gt=0)
    content_types: tuple[str, ...] = CONTENT_TYPES
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


class Params(_Section):
    """The whole params.yaml."""

    seed: int = 42
    generate: GenerateConfig = GenerateConfig()
    ingest: IngestConfig = IngestConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    features: FeaturesConfig = FeaturesConfig()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _format_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: {len(err.errors())} invalid setting(s):"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  - {key}: {e['msg']}")
    return "\n".join(lines)


def params_from_dict(raw: dict, source: str = "params") -> Params:
    """Validate a params mapping; raise `ConfigError` naming each bad key."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as err:
        raise ConfigError(_format_error(err, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (run from the project root)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return params_from_dict(raw, source=str(path))
