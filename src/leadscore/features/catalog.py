"""The feature catalog: for each model feature, its group, a plain-language label and unit.

It travels with the training table (`feature_catalog.json`) and, later, with the exported
scorer, so explanations and reports can speak marketing's language.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from leadscore.io import read_json, write_json

Group = Literal["fit", "engagement"]
Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class FeatureSpec:
    """One feature. `label` reads as a noun phrase, e.g. "Pricing-page views, last 30 days"."""

    name: str
    group: Group
    label: str
    unit: str
    kind: Kind = "numeric"


@dataclass(frozen=True)
class FeatureCatalog:
    """Ordered list of features; the order is the model's column order."""

    features: tuple[FeatureSpec, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def group(self, group: Group) -> list[str]:
        return [f.name for f in self.features if f.group == group]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]

    def __getitem__(self, name: str) -> FeatureSpec:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"feature '{name}' is not in the catalog")

    def to_records(self) -> list[dict]:
        return [asdict(f) for f in self.features]

    @classmethod
    def from_records(cls, records: list[dict]) -> FeatureCatalog:
        return cls(tuple(FeatureSpec(**r) for r in records))


def save_catalog(catalog: FeatureCatalog, path: str | Path) -> None:
    write_json(catalog.to_records(), path)


def load_catalog(path: str | Path) -> FeatureCatalog:
    return FeatureCatalog.from_records(read_json(path))
