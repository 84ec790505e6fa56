"""Reasons in plain language: per lead, the top positive and top negative contributions.

- `top_reasons(contrib, k)`: the k largest positive and k most negative contributions per
  row, vectorised over the whole contribution matrix (`np.argpartition`, then a sort of the
  k chosen cells): no per-lead Python loop.
- `Reasons`: the chosen cells as arrays (feature index, contribution, code, text), with
  `to_lists()` (JSON-ready list of {code, text, contribution} per lead) and `to_arrow()`
  (a `list<struct>` column for Parquet).
- `describe(spec, values)`: a sentence per value from the feature catalog, e.g. "Viewed the
  pricing page 4 times in the last 30 days", "Seniority: VP", "Company size unknown",
  "Unsubscribed from e-mail". Only the chosen cells are described, and each distinct
  (feature, value) once, so text costs O(distinct values), not O(leads).
- `field_of(spec)`: the business field a feature belongs to (windowed counts of one activity,
  `pricing_page_view_7d/30d/90d`, are one field "Pricing-page views").

**A missing red flag is not a reason.** A yes/no feature (catalog unit "yes/no" or "flag":
free_mail, email_invalid, placeholder_name, unsubscribed, email_bounced; in flat mode any column
given one of those units) at its "no" value (0, or "no"/"false") is never chosen as a reason,
on either side: "Name looks real (+0.35)" or "No e-mail bounced (-0.01)" only say that a
warning sign is absent, which is the normal state of most leads. Its contribution is the same
for every lead without the flag (the flag's penalty spread over the average lead), so it does
not tell one unflagged lead from another; it still counts in the probability, the grade and
the fit/engagement sums, and the next-largest contribution takes its slot. A flag that IS
present ("Uses a free e-mail address (-0.19)") is a reason like any other. The rule lives in
`explain_rows` (`not_reasons`), so the batch scorer, the exported MLflow scorer, `leadscore
explain`, one-lead serving and the report's example leads all follow it.

A reason `code` is stable: the feature name plus the sign, e.g. `pricing_page_view_30d+` or
`unsubscribed-`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.features.catalog import FeatureCatalog, FeatureSpec

_WINDOW = re.compile(r"^(?P<base>.+)_(?P<days>\d+)d$")
_LABEL_WINDOW = re.compile(r",\s*last \d+ days$")

# Sentences for windowed activity counts, by activity (n > 0): "{n}" and "{w}" are filled.
_ACTIVITY = {
    "email_open": ("Opened {n} e-mail", "Opened {n} e-mails"),
    "email_click": ("Clicked {n} e-mail", "Clicked {n} e-mails"),
    "web_visit": ("Visited the website once", "Visited the website {n} times"),
    "pricing_page_view": ("Viewed the pricing page once", "Viewed the pricing page {n} times"),
    "content_download": ("Downloaded {n} piece of content", "Downloaded {n} pieces of content"),
    "webinar_registration": ("Registered for {n} webinar", "Registered for {n} webinars"),
    "webinar_attendance": ("Attended {n} webinar", "Attended {n} webinars"),
    "demo_video_view": ("Watched the demo video once", "Watched the demo video {n} times"),
    "form_submit": ("Filled in {n} form", "Filled in {n} forms"),
    "demo_request": ("Requested a demo once", "Requested a demo {n} times"),
}
_CONTENT = {"whitepaper": ("whitepaper", "whitepapers"), "case_study": ("case study", "case studies"),
            "product_sheet": ("product sheet", "product sheets"), "blog": ("blog post", "blog posts"),
            "ebook": ("e-book", "e-books")}
# yes/no flags: (text when 1, text when 0)
_FLAGS = {
    "free_mail": ("Uses a free e-mail address", "Uses a business e-mail address"),
    "email_invalid": ("E-mail address looks invalid or fake", "E-mail address looks valid"),
    "placeholder_name": ("Name looks like a placeholder", "Name looks real"),
    "unsubscribed": ("Unsubscribed from e-mail", "Still subscribed to e-mail"),
    "email_bounced": ("E-mail bounced", "No e-mail bounced"),
}
# day counts: (sentence with {d}, sentence when missing)
_DAYS = {
    "days_since_last_activity": ("Last activity {d} ago", "No activity recorded yet"),
    "days_since_last_pricing_page_view": ("Last viewed the pricing page {d} ago",
                                          "Never viewed the pricing page"),
    "lead_age_days": ("Lead created {d} ago", "Lead creation date unknown"),
}
_PRETTY = {"vp": "VP", "c_level": "C-level", "senior_ic": "Senior individual contributor",
           "it": "IT", "hr": "HR"}


FLAG_UNITS: frozenset[str] = frozenset({"yes/no", "flag"})
_NO_VALUES = frozenset({"0", "0.0", "no", "n", "false", "f"})


def is_flag(spec: FeatureSpec) -> bool:
    """A yes/no feature: its catalog unit is "yes/no" (or "flag") and its label names the
    condition when the answer is yes (e.g. "Uses a free e-mail address")."""
    return spec.unit in FLAG_UNITS


def flag_absent(spec: FeatureSpec, values: np.ndarray) -> np.ndarray:
    """Per value, True where the yes/no feature `spec` is at "no" (0; for a categorical "no",
    "false", "0"); missing values are not "no"."""
    values = np.asarray(values, dtype=object)
    if spec.kind == "categorical":
        return np.array([str(v).strip().lower() in _NO_VALUES for v in values], dtype=bool)
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    return v == 0


def not_reasons(X: pd.DataFrame, catalog: FeatureCatalog, feature_names: list[str]) -> np.ndarray | None:
    """(rows, features) mask of the cells that are never a reason: a yes/no feature at "no"
    (see the module docstring). Columns of `feature_names` that are not catalog features of
    `X` (e.g. the lines of a points table) are never masked. None when nothing is masked."""
    known = set(catalog.names)
    mask = None
    for j, name in enumerate(feature_names):
        if name in known and name in X.columns and is_flag(catalog[name]):
            if mask is None:
                mask = np.zeros((len(X), len(feature_names)), dtype=bool)
            mask[:, j] = flag_absent(catalog[name], X[name].to_numpy())
    return mask


def _plural(n: float, one: str, many: str) -> str:
    return (one if n == 1 else many).format(n=f"{n:,.0f}")


@functools.lru_cache(maxsize=4096)
def short_label(spec: FeatureSpec) -> str:
    """The label without a parenthetical note: "Seniority (from job title)" -> "Seniority"."""
    return re.sub(r"\s*\(.*?\)\s*", " ", spec.label).strip()


def pretty_value(value: object) -> str:
    """A category for people: "c_level" -> "C-level", "financial_services" -> "Financial services"."""
    s = str(value)
    if s in _PRETTY:
        return _PRETTY[s]
    if s.isupper() or any(ch.isdigit() for ch in s):  # country codes, size bands
        return s
    s = s.replace("_", " ")
    return s[:1].upper() + s[1:]


@functools.lru_cache(maxsize=4096)
def field_of(spec: FeatureSpec) -> tuple[str, str]:
    """(field, field label): windowed features share the field of their activity."""
    m = _WINDOW.match(spec.name)
    if m and _LABEL_WINDOW.search(spec.label):
        return m["base"], _LABEL_WINDOW.sub("", spec.label)
    return spec.name, short_label(spec)


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _money(v: float) -> str:
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"${v / div:,.1f}{suffix}"
    return f"${v:,.0f}"


def _days(d: float) -> str:
    return "less than a day" if d < 1 else _plural(math.floor(d), "{n} day", "{n} days")


def describe_one(spec: FeatureSpec, value: object) -> str:
    """One plain-language sentence for a feature and a lead's value of it."""
    label = short_label(spec)
    if spec.kind == "categorical":
        if _missing(value) or str(value).lower() in ("unknown", "nan", "none", ""):
            return f"{label} unknown"
        return f"{label}: {pretty_value(value)}"
    v = float(value) if not _missing(value) else math.nan
    m = _WINDOW.match(spec.name)
    if m and spec.unit in ("count", "events", "downloads") and not math.isnan(v):
        base, w = m["base"], m["days"]
        field_label = field_of(spec)[1]
        if v == 0:
            return f"No {field_label[:1].lower() + field_label[1:]} in the last {w} days"
        if base in _ACTIVITY:
            return f"{_plural(v, *_ACTIVITY[base])} in the last {w} days"
        if base.startswith("download_"):
            kind = base.removeprefix("download_")
            one, many = _CONTENT.get(kind, (kind.replace("_", " "), kind.replace("_", " ") + "s"))
            return f"Downloaded {_plural(v, '{n} ' + one, '{n} ' + many)} in the last {w} days"
        return f"{field_label}: {v:,.0f} in the last {w} days"
    if spec.name in _FLAGS or is_flag(spec):
        yes, no = _FLAGS.get(spec.name, (spec.label, f"{spec.label}: no"))
        if math.isnan(v):
            return f"{spec.label}: unknown"
        return yes if v > 0 else no
    if math.isnan(v):
        if spec.name in _DAYS:
            return _DAYS[spec.name][1]
        return f"{label} unknown"
    if spec.name in _DAYS:
        return _DAYS[spec.name][0].format(d=_days(v))
    if spec.unit == "USD":
        return f"{label}: {_money(v)}"
    if spec.unit == "share":
        return f"{label}: {v:.0%}"
    if spec.unit == "days":
        return f"{label}: {_days(v)}"
    if spec.unit == "employees":
        return f"{label}: {v:,.0f} employees"
    if spec.unit in ("score",):
        return f"{label}: {v:,.1f}"
    return f"{label}: {v:,.4g} {spec.unit}".rstrip()


def describe(spec: FeatureSpec, values: np.ndarray) -> np.ndarray:
    """Sentences for many values of one feature; each distinct value is formatted once."""
    if spec.kind == "categorical":
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
        uniques = np.asarray(uniques, dtype=object)
    else:
        v = pd.to_numeric(pd.Series(np.asarray(values, dtype=object)), errors="coerce").to_numpy(dtype=float)
        if spec.name in _DAYS or spec.unit == "days":  # its sentence depends on whole days only
            v = np.floor(v)
        uniques, codes = np.unique(v, return_inverse=True)
    texts = np.array([describe_one(spec, u) for u in uniques] or [""], dtype=object)
    return texts[np.asarray(codes).reshape(-1)]


# ---- choosing the reasons ------------------------------------------------------------
def top_reasons(contrib: np.ndarray, k: int = 3, skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(feature index, contribution), each (n_rows, 2k): the k largest positive
    contributions (descending) then the k most negative (ascending, most negative first).
    Cells where `skip` (same shape, bool) is True are never chosen. Slots without a strictly
    positive / negative contribution hold -1 and NaN."""
    contrib = np.asarray(contrib, dtype=np.float64)
    if skip is not None:
        contrib = np.where(skip, 0.0, contrib)
    n, f = contrib.shape
    kk = min(k, f)
    idx = np.full((n, 2 * k), -1, dtype=np.int64)
    val = np.full((n, 2 * k), np.nan)
    if n == 0 or f == 0:
        return idx, val
    for side, sign in ((0, 1.0), (1, -1.0)):
        s = sign * contrib
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk] if kk < f else np.tile(np.arange(f), (n, 1))
        sv = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-sv, axis=1, kind="stable")
        part = np.take_along_axis(part, order, axis=1)
        sv = np.take_along_axis(sv, order, axis=1)
        keep = sv > 0
        cols = slice(side * k, side * k + kk)
        idx[:, cols] = np.where(keep, part, -1)
        val[:, cols] = np.where(keep, sign * sv, np.nan)
    return idx, val


@dataclass
class Reasons:
    """The chosen reason cells for n leads: arrays of shape (n, 2k), positives first."""

    feature: np.ndarray  # int, -1 = no reason in this slot
    contribution: np.ndarray  # float, NaN = none
    code: np.ndarray  # object (str or None)
    text: np.ndarray  # object (str or None)

    def __len__(self) -> int:
        return len(self.feature)

    def to_lists(self) -> list[list[dict]]:
        """Per lead, [{code, text, contribution}, ...] (positives, then negatives)."""
        out = []
        for codes, texts, vals in zip(self.code.tolist(), self.text.tolist(),
                                      self.contribution.tolist(), strict=True):
            out.append([{"code": c, "text": t, "contribution": float(v)}
                        for c, t, v in zip(codes, texts, vals, strict=True) if c is not None])
        return out

    def to_arrow(self):
        """A pyarrow `list<struct<code, text, contribution>>` array, one list per lead."""
        import pyarrow as pa

        keep = self.feature >= 0
        offsets = np.r_[0, np.cumsum(keep.sum(axis=1))].astype(np.int32)
        structs = pa.StructArray.from_arrays(
            [pa.array(self.code[keep], pa.string()), pa.array(self.text[keep], pa.string()),
             pa.array(self.contribution[keep], pa.float64())],
            names=["code", "text", "contribution"])
        return pa.ListArray.from_arrays(pa.array(offsets), structs)


def explain_rows(contrib: np.ndarray, X: pd.DataFrame, catalog: FeatureCatalog,
                 feature_names: list[str], k: int = 3, *,
                 texts: Callable[[str, np.ndarray], np.ndarray] | None = None) -> Reasons:
    """Top-k positive and negative reasons for every row of `X` (raw feature values, the
    same rows as `contrib`, whose columns are `feature_names`: features, or other items such
    as the lines of a points table). A reason's text is `texts(name, rows)` (one sentence
    per row position in `rows`); by default the catalog's sentence for the feature's value
    (`describe`)."""
    if texts is None:
        def texts(name: str, rows: np.ndarray) -> np.ndarray:
            return describe(catalog[name], X[name].to_numpy()[rows])
    if len(X) != len(contrib):
        raise ValueError(f"{len(X)} rows of features but {len(contrib)} rows of contributions")
    idx, val = top_reasons(contrib, k, skip=not_reasons(X, catalog, feature_names))
    code = np.full(idx.shape, None, dtype=object)
    text = np.full(idx.shape, None, dtype=object)
    flat = idx.ravel()
    cells = np.flatnonzero(flat >= 0)
    cells = cells[np.argsort(flat[cells], kind="stable")]  # grouped by feature
    runs = np.split(cells, np.flatnonzero(np.diff(flat[cells])) + 1) if len(cells) else []
    for run in runs:
        name = feature_names[flat[run[0]]]
        rows, slots = np.divmod(run, idx.shape[1])
        text[rows, slots] = texts(name, rows)
        code[rows, slots] = np.where(val[rows, slots] > 0, f"{name}+", f"{name}-")
    return Reasons(idx, val, code, text)
