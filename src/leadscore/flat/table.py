"""Flat-table input: read one CRM export, clean it, and turn it into a training table.

`read_flat` reads the CSV as text (delimiter detected from the first 64 kB unless the
mapping gives one; ``.gz`` is fine). `prepare` then, in this order:

1. **stray columns**: headers that are empty or pandas' ``Unnamed: N`` are dropped;
2. **names**: mapping keys match the file's headers case-, space- and punctuation-
   insensitively; model feature names are the headers in snake case (``emp.var.rate`` ->
   ``emp_var_rate``, ``Total Time Spent`` -> ``total_time_spent``);
3. **placeholders**: values in `missing_values` (default: empty, Select, -, NA, n/a, null,
   none, ?; trimmed, any case) become missing. "unknown" is a real level by default (see
   leadscore.flat.mapping);
4. **numbers stored as text**: a column is numeric when at least 95% of its non-missing
   values parse after trimming spaces, removing thousands separators (``"1,234"``,
   ``" 12 "``, ``"1 234"``) and a currency sign or a percent sign (``"$12,500.00"``,
   ``"1,234 €"``, ``"15%"`` is 15); decimal commas (``"1.234,50"``) are not guessed; the
   few that do not parse become missing (logged). `types` overrides the guess;
5. **categories**: trimmed, inner spaces collapsed and lower-cased (``"Google"`` ==
   ``"google "``); with a number `max_levels`, only the most frequent levels are kept, the
   rest become ``other``; with ``max_levels: auto`` (the default) every level is kept here
   and the cap is chosen on the validation slice (`leadscore.flat.levels`). A text column
   with more distinct values than half its rows (and more than a number `max_levels`) is an
   identifier or free text and is dropped (logged);
6. **target**: trimmed and compared, case-insensitively, with `positive`; the column must
   hold exactly two distinct values, one of them `positive`; rows without a target are
   dropped (logged);
7. **personal data**: columns whose values look like e-mail addresses, phone numbers or
   person names (`leadscore.flat.pii`; the id, target and date columns excepted) are dropped
   before typing, named in the log and in ``info["pii"]`` (column and kind, never a value);
8. **groups**: fit and engagement columns as given, else inferred (`infer_groups`);
9. **date parts**: with `created_at` (and ``date_parts: true``, the default), the day of the
   week and month of each row's own created date (categorical) and its hour (numeric, only
   when the column carries times) become fit features (`date_parts`, `DATE_PARTS`).

Messages name columns, counts and row numbers, never cell values; the one exception is the
target's labels (a target that is not binary lists its few levels).

The result is a `FlatTable`: the frame (``lead_id``, ``label``, ``row`` (file order),
``as_of`` (the created date, if any) and the features) and a `FeatureCatalog`.

`flat_split` cuts it into train / valid / calib / test: by time (created date or file
order; latest last) or, without either, stratified at random (and the metrics say there is
no out-of-time test). The points-rule baseline over this table is
`leadscore.flat.rules.FlatRuleClassifier`.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from leadscore.errors import ConfigError, InputError, safe_error_text
from leadscore.features.catalog import FeatureCatalog, FeatureSpec
from leadscore.flat.mapping import DATE_ORDERS, Mapping, MappingError
from leadscore.flat.pii import EMAIL, PHONE, find_pii, pii_kind
from leadscore.modeling.names import name_words, snake
from leadscore.modeling.splits import Split

log = logging.getLogger(__name__)

NUMERIC_SHARE = 0.95  # share of non-missing values that must parse for a numeric column
ID_LIKE_SHARE = 0.5  # text columns with more distinct values than this share of rows: dropped
OTHER = "other"

# A column is an engagement column when one word of its name is here (else it is fit).
ENGAGEMENT_WORDS: frozenset[str] = frozenset({
    "visit", "visits", "page", "pages", "pageviews", "view", "views", "click", "clicks", "open",
    "opens", "opened", "email", "emails", "download", "downloads", "webinar", "webinars", "call",
    "calls", "contact", "contacts", "contacted", "campaign", "campaigns", "activity",
    "activities", "time", "spent", "session", "sessions", "previous", "pdays", "days", "since",
    "engagement", "form", "forms", "submit", "submissions", "demo", "duration", "touch",
    "touches", "touchpoints", "event", "events", "poutcome", "month", "day", "week",
})

_UNNAMED = re.compile(r"^\s*(unnamed:\s*\d+(_level_\d+)?)?\s*$", re.IGNORECASE)
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}([, ]\d{3})+(\.\d+)?$")
_CURRENCY_LEAD = re.compile(r"^([+-]?)\s*[$€£¥]\s*")  # "$1,234", "-€ 12"
_SIGN_TRAIL = re.compile(r"\s*[$€£¥%]$")  # "1,234 €", "15%"


# ---- reading ----------------------------------------------------------------------------
def _head_text(path: Path, encoding: str, n: int = 65536) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return fh.read(n).decode(encoding, errors="replace")


def detect_delimiter(sample: str) -> str:
    """The delimiter of a CSV sample: , ; tab or | (csv.Sniffer, then the most frequent of
    them in the header line)."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        counts = {d: header.count(d) for d in ",;\t|"}
        return max(counts, key=counts.get) if any(counts.values()) else ","


def duplicate_headers(sample: str, delimiter: str) -> list[str]:
    """Header names (trimmed, non-empty) that appear more than once in the first line of
    `sample`; pandas would rename the second ``X`` to ``X.1`` without a word."""
    try:
        header = next(csv.reader(io.StringIO(sample), delimiter=delimiter))
    except (StopIteration, csv.Error):
        return []
    names = [h.strip() for h in header if h.strip()]
    return sorted({h for h in names if names.count(h) > 1})


def read_flat(mapping: Mapping, *, nrows: int | None = None) -> pd.DataFrame:
    """The export as text columns (no parsing yet), with the delimiter detected."""
    path = mapping.path
    if not path.is_file():
        raise MappingError(f"file: {path} not found (paths are relative to the mapping file)")
    if path.stat().st_size == 0:
        raise MappingError(f"file: {path} is empty; export the leads with a header row")
    try:
        sample = _head_text(path, mapping.encoding)
        delim = mapping.delimiter or detect_delimiter(sample)
        df = pd.read_csv(path, sep=delim, dtype=str, keep_default_na=False, na_filter=False,
                         nrows=nrows, encoding=mapping.encoding, skipinitialspace=False)
    # UnicodeError: a wrong `encoding:` (utf-16 without a byte-order mark, say); ValueError
    # covers pandas' ParserError and EmptyDataError (no header at all)
    except (UnicodeError, LookupError, ValueError, OSError, csv.Error) as err:
        raise MappingError(f"file: cannot read {path} as CSV with encoding {mapping.encoding!r} "
                           f"({type(err).__name__}: {safe_error_text(err)}); check `encoding:` "
                           f"and `delimiter:` in the mapping") from None
    dup = duplicate_headers(sample, delim)
    if dup:
        raise MappingError(f"file: {path} has {len(dup)} header(s) that appear more than once "
                           f"({dup[:10]}); a column could be read as the other, so rename them "
                           f"in the export")
    if df.shape[1] < 2:
        raise MappingError(f"file: {path} has {df.shape[1]} column(s) with delimiter {delim!r}; "
                           f"set `delimiter:` in the mapping")
    log.info("read %s: %d rows x %d columns (delimiter %r)", path.name, len(df), df.shape[1], delim)
    return df


# ---- dates ------------------------------------------------------------------------------
_ISO_DATE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[ T].*)?$")
_NUMERIC_DATE = re.compile(r"^(\d{1,2})([-/.])(\d{1,2})\2(\d{4}|\d{2})(?:[ T](.*))?$")
ROW_NUMBERS_SHOWN = 10  # row numbers named in a date error


@dataclass(frozen=True)
class DateColumn:
    """A parsed created_at column: the dates (NaT where missing or unreadable), the order
    the numeric dates were read in, and the row positions (0-based) of unreadable values."""

    dates: pd.Series
    order: str  # "iso", "day_first", "month_first", "format", "text"
    unreadable: np.ndarray


def _rows_text(rows: np.ndarray) -> str:
    shown = ", ".join(str(int(r) + 1) for r in rows[:ROW_NUMBERS_SHOWN])
    more = f" and {len(rows) - ROW_NUMBERS_SHOWN} more" if len(rows) > ROW_NUMBERS_SHOWN else ""
    return f"{shown}{more}"


def date_order(fields: pd.DataFrame, column: str, rows: np.ndarray) -> str | None:
    """"day_first", "month_first" or None (ambiguous) for numeric dates split into
    `fields` (columns "a", "b": the first and second field). A first field above 12 means
    day first, a second field above 12 means month first (a value with both above 12 is no
    evidence: it is unreadable either way); a column with both orders is an
    `InputError` (the orders are never mixed). `rows`: the file rows of `fields`."""
    a, b = fields["a"].to_numpy(), fields["b"].to_numpy()
    day_first, month_first = (a > 12) & (b <= 12), (b > 12) & (a <= 12)  # both > 12: unreadable
    if day_first.any() and month_first.any():
        raise InputError(
            f"created_at: column '{column}' mixes day-first dates ({int(day_first.sum())} row(s), "
            f"e.g. row(s) {_rows_text(rows[day_first])}) and month-first dates "
            f"({int(month_first.sum())} row(s), e.g. row(s) {_rows_text(rows[month_first])}); "
            f"fix the export, or set `date_format:` (day_first, month_first or a strptime format) "
            f"to read one order and count the others as unreadable")
    if day_first.any():
        return "day_first"
    if month_first.any():
        return "month_first"
    return None


def parse_dates(text: pd.Series, column: str, rows: np.ndarray, date_format: str | None = None
                ) -> DateColumn:
    """Read one date column (trimmed text, missing as NA). ISO dates (YYYY-MM-DD, time
    optional) need no detection; numeric D/M/Y or M/D/Y dates are read in one order per
    column, detected from the values (`date_order`) unless `date_format` gives it
    (day_first, month_first, or a strptime format that reads the whole column); other text
    (``20 Oct 2017``) is read by pandas' parser. Ambiguous numeric dates (both fields <= 12
    everywhere) are a `ConfigError` asking for `date_format`."""
    present = text.notna().to_numpy()
    dates = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    if date_format and date_format not in DATE_ORDERS:
        parsed = pd.to_datetime(text, format=date_format, errors="coerce")
        dates = parsed.astype("datetime64[us]")
        order = "format"
    else:
        t = text[present].astype(str)
        iso = t.str.match(_ISO_DATE.pattern).to_numpy(bool)
        parts = t.str.extract(_NUMERIC_DATE.pattern)
        numeric = parts[0].notna().to_numpy() & ~iso
        order = "iso" if iso.all() else "text"
        if numeric.any():
            f = pd.DataFrame({"a": parts.loc[numeric, 0].astype(int).to_numpy(),
                              "b": parts.loc[numeric, 2].astype(int).to_numpy()})
            order = date_format or date_order(f, column, rows[present][numeric])
            if order is None:
                raise ConfigError(
                    f"created_at: column '{column}' has {int(numeric.sum())} numeric date(s) whose "
                    f"first and second fields are both 12 or less in every row, so day-first and "
                    f"month-first cannot be told apart; set `date_format: day_first` (31/12/2024), "
                    f"`date_format: month_first` (12/31/2024) or a strptime format in the mapping")
            p = parts[numeric]
            day, month = (p[0], p[2]) if order == "day_first" else (p[2], p[0])
            year = p[3].where(p[3].str.len() == 4, "20" + p[3])
            rest = p[4].fillna("")
            iso_text = (year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + " " + rest).str.strip()
            t = t.copy()
            t[numeric] = iso_text.to_numpy()
        values = pd.Series(pd.NaT, index=t.index, dtype="datetime64[us]")
        for kind in (iso | numeric, ~(iso | numeric)):
            if kind.any():
                values[kind] = _parse_text(t[kind])
        dates[present] = values.to_numpy()
    unreadable = np.flatnonzero(present & dates.isna().to_numpy())
    return DateColumn(dates, order, rows[unreadable])


def _parse_text(t: pd.Series) -> pd.Series:
    """pandas' parser, value by value, as naive datetimes (offsets converted to UTC)."""
    out = pd.to_datetime(t, errors="coerce", format="mixed", utc=True)
    return out.dt.tz_localize(None).astype("datetime64[us]")


def created_dates(text: pd.Series, mapping: Mapping, column: str, rows: np.ndarray,
                  file: str) -> pd.Series:
    """The created_at column as dates (NaT: missing, or unreadable and dropped), with the
    order read and the range found logged. Unreadable values above `max_bad_dates` (a share
    of the rows with a value) are an `InputError` naming the file, column, count and rows."""
    parsed = parse_dates(text, column, rows, mapping.date_format)
    n_present = int(text.notna().sum())
    bad = parsed.unreadable
    if n_present and len(bad) == n_present:
        raise InputError(f"created_at: column '{column}' of {file} holds no readable date "
                         f"({n_present} value(s)); set `date_format:` in the mapping")
    if len(bad):
        share = len(bad) / max(n_present, 1)
        where = (f"created_at: {len(bad)} of {n_present} value(s) in column '{column}' of {file} "
                 f"are not dates (row(s) {_rows_text(bad)}; row 1 is the first row after the header)")
        if share > mapping.max_bad_dates:
            raise InputError(f"{where}: {share:.1%} is more than max_bad_dates "
                             f"{mapping.max_bad_dates:.1%}. Fix them, set `date_format:`, or raise "
                             f"`max_bad_dates:` to drop them")
        log.warning("%s; those rows are dropped (max_bad_dates %.1f%%)", where, 100 * mapping.max_bad_dates)
    found = parsed.dates.dropna()
    log.info("created_at: column '%s' read %s: %s to %s (%d row(s) with a date)", column,
             {"iso": "as ISO dates", "day_first": "day first", "month_first": "month first",
              "format": f"with date_format {mapping.date_format!r}", "text": "as text dates"}[parsed.order],
             found.min().date(), found.max().date(), len(found))
    return parsed.dates


DAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS: tuple[str, ...] = ("january", "february", "march", "april", "may", "june", "july",
                           "august", "september", "october", "november", "december")
# Date-part features of created_at: feature name -> (plain-language label, kind).
DATE_PARTS: dict[str, tuple[str, str]] = {
    "created_day_of_week": ("Day of the week the lead came in", "categorical"),
    "created_hour": ("Hour of the day the lead came in (0-23)", "numeric"),
    "created_month": ("Month the lead came in", "categorical"),
}


MONTH_MIN_SPAN_DAYS = 730  # the month part needs two years of dates (see `date_parts`)


def date_parts(dates: pd.Series) -> dict[str, pd.Series]:
    """The parts of each row's own created date (known when the lead comes in, so no leak):
    day of the week as a category (``monday``), the month (``january``) only when the dates
    span at least two years (`MONTH_MIN_SPAN_DAYS`: with less, a time split's test months
    were never seen in training, so the model has nothing to learn them from), and
    the hour (0-23, numeric) only when the column carries times (some date is not at
    midnight). Missing dates give missing parts. Keys are `DATE_PARTS` names."""
    d = pd.Series(pd.to_datetime(dates), copy=False)
    parts = {"created_day_of_week": d.dt.dayofweek.map(dict(enumerate(DAYS)))}
    present = d.dropna()
    if len(present) and (present.max() - present.min()).days >= MONTH_MIN_SPAN_DAYS:
        parts["created_month"] = d.dt.month.map(dict(enumerate(MONTHS, start=1)))
    has_times = bool((present - present.dt.normalize()).dt.total_seconds().ne(0).any())
    if has_times:
        parts["created_hour"] = d.dt.hour.astype("float64")
    return {name: parts[name] for name in DATE_PARTS if name in parts}


# ---- cleaning ---------------------------------------------------------------------------
def drop_stray_columns(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Drop columns with an empty or 'Unnamed: N' header."""
    stray = [c for c in df.columns if _UNNAMED.match(str(c))]
    return df.drop(columns=stray), stray


def to_missing(s: pd.Series, missing_values: tuple[str, ...]) -> pd.Series:
    """Trimmed text, with placeholder values (any case) as missing."""
    text = s.astype("string").str.strip()
    placeholders = {m.strip().lower() for m in missing_values}
    return text.mask(text.str.lower().isin(placeholders))


def parse_numbers(s: pd.Series) -> pd.Series:
    """Text -> float: spaces trimmed, one currency sign ($ € £ ¥, before or after) or a
    trailing percent sign removed ('$12,500.00', '15%' -> 15), then thousands separators
    ('1,234', '1 234'). Decimal commas ('1.234,50') are not guessed: missing."""
    t = s.astype("string").str.strip()
    t = t.str.replace(_CURRENCY_LEAD.pattern, r"\1", regex=True).str.replace(_SIGN_TRAIL.pattern, "", regex=True)
    thousands = t.str.fullmatch(_THOUSANDS.pattern).fillna(False).astype(bool)
    t = t.where(~thousands, t.str.replace(r"[, ]", "", regex=True))
    return pd.to_numeric(t, errors="coerce").astype("float64")


def numeric_share(s: pd.Series) -> float:
    """Share of non-missing values that parse as numbers."""
    present = s.notna()
    if not present.any():
        return 0.0
    return float(parse_numbers(s[present]).notna().mean())


def clean_category(s: pd.Series, max_levels: int | None) -> tuple[pd.Series, int]:
    """Lower-case, trimmed, collapsed spaces; levels beyond the `max_levels` most frequent
    become 'other' (None: every level is kept here, and the level cap is chosen on the
    validation slice later, `leadscore.flat.levels`). Returns the column (object dtype,
    missing as None) and the number of levels folded into 'other'."""
    t = s.astype("string").str.strip().str.replace(r"\s+", " ", regex=True).str.lower()
    counts = t.value_counts()
    folded = 0
    if max_levels is not None and len(counts) > max_levels:
        keep = set(counts.index[: max_levels - 1])
        folded = len(counts) - len(keep)
        t = t.where(t.isna() | t.isin(keep), OTHER)
    return t.astype(object).where(t.notna(), None), folded


def infer_groups(columns: list[str]) -> tuple[list[str], list[str]]:
    """(fit, engagement): a column is engagement when a word of its name is one of
    `ENGAGEMENT_WORDS` (visits, page views, clicks, e-mails, downloads, calls, contacts,
    campaign, activity, time spent, previous, days since, duration, ...); all others are fit
    (who the lead is: job, industry, country, size, age, ...)."""
    eng = [c for c in columns if set(name_words(c)) & ENGAGEMENT_WORDS]
    return [c for c in columns if c not in eng], eng


# ---- the prepared table -----------------------------------------------------------------
@dataclass
class FlatTable:
    """The cleaned training table and what cleaning did."""

    frame: pd.DataFrame  # lead_id, label, row, as_of (or absent), features
    catalog: FeatureCatalog
    source_names: dict[str, str]  # feature name -> header in the file
    ordered: bool
    log: dict = field(default_factory=dict)  # what was dropped, folded, coerced

    @property
    def features(self) -> list[str]:
        return self.catalog.names


class _Resolver:
    """Mapping column names -> the file's headers (exact, else case/punctuation-insensitive)."""

    def __init__(self, headers: list[str]):
        self.headers = headers
        self.by_key: dict[str, list[str]] = {}
        for h in headers:
            self.by_key.setdefault(snake(h), []).append(h)

    def __call__(self, name: str, key: str) -> str:
        if name in self.headers:
            return name
        hits = self.by_key.get(snake(name), [])
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise MappingError(f"{key}: '{name}' matches several columns {hits}; use the exact header")
        close = [h for h in self.headers if snake(name) in snake(h) or snake(h) in snake(name)]
        hint = f" Did you mean {close[:3]}?" if close else ""
        raise MappingError(f"{key}: column '{name}' is not in the file (columns: "
                           f"{self.headers[:40]}{' ...' if len(self.headers) > 40 else ''}).{hint}")


def _binary_target(raw: pd.Series, positive, target: str) -> pd.Series:
    """0/1 labels (NaN where missing); errors when the column is not binary."""
    text = raw.astype("string").str.strip().str.lower()
    pos = str(positive).strip().lower()
    if isinstance(positive, bool):
        pos_set = {"true", "1", "yes"} if positive else {"false", "0", "no"}
    else:
        pos_set = {pos}
        try:
            pos_set.add(str(float(pos)).lower())
            if float(pos).is_integer():
                pos_set.add(str(int(float(pos))))
        except ValueError:
            pass
    values = text.dropna().unique().tolist()
    if len(values) != 2:
        # A few levels are the target's labels and may be quoted; many levels, or values that
        # look like personal data, mean the wrong column: counted, never shown.
        labels = len(values) <= 10 and pii_kind(target, pd.Series(values, dtype="string")) is None
        shown = f": {sorted(map(str, values))}" if labels and values else ""
        raise MappingError(
            f"target: column '{target}' must hold exactly 2 distinct values (a binary outcome), "
            f"found {len(values)}{shown}. Map a multi-valued status to yes/no before export, "
            f"or pick the converted flag column.")
    hits = [v for v in values if v in pos_set]
    if len(hits) != 1:
        raise MappingError(f"positive: {positive!r} is not one of the values of target column "
                           f"'{target}' ({sorted(map(str, values))})")
    return text.map(lambda v: np.nan if pd.isna(v) else float(v == hits[0])).astype("float64")


def prepare(raw: pd.DataFrame, mapping: Mapping) -> FlatTable:
    """Clean the export and build the training table (see the module docstring)."""
    info: dict = {"rows_in": int(len(raw))}
    df, stray = drop_stray_columns(raw)
    info["stray_columns"] = stray
    if stray:
        log.info("dropped %d stray column(s) with empty/'Unnamed' headers: %s", len(stray), stray)
    res = _Resolver([str(c) for c in df.columns])
    target = res(mapping.target, "target")
    id_col = res(mapping.id, "id") if mapping.id else None
    date_col = res(mapping.created_at, "created_at") if mapping.created_at else None
    drop = {res(c, f"drop[{i}]") for i, c in enumerate(mapping.drop)}
    allow = [res(c, f"allow[{i}]") for i, c in enumerate(mapping.allow) if snake(c) not in DATE_PARTS]
    types = {res(c, f"types.{c}"): t for c, t in mapping.types.items()}
    fit_given = [res(c, f"fit[{i}]") for i, c in enumerate(mapping.fit or ())]
    eng_given = [res(c, f"engagement[{i}]") for i, c in enumerate(mapping.engagement or ())]
    for group in ("fit", "engagement"):
        for c in getattr(mapping.rules, group):
            res(c, f"rules.{group}.{c}")
    special = {target, id_col, date_col} - {None}
    bad = sorted(special & drop) + sorted(special & set(fit_given + eng_given))
    if bad:
        raise MappingError(f"drop/fit/engagement: {bad} is the target, id or date column")
    del allow  # resolved only to check the names; the screen reads mapping.allow

    label = _binary_target(to_missing(df[target], mapping.missing_values), mapping.positive, target)
    keep = label.notna().to_numpy()
    if (~keep).any():
        log.warning("dropped %d row(s) without a value in target column '%s'", int((~keep).sum()), target)
    info["rows_no_target"] = int((~keep).sum())
    df, label = df.loc[keep].reset_index(drop=True), label[keep].reset_index(drop=True)
    if label.sum() == 0 or label.sum() == len(label):
        raise MappingError(f"target: column '{target}' has a single class in the file")

    out = pd.DataFrame({"row": np.flatnonzero(keep).astype("int64")})
    if id_col:
        ids = df[id_col].astype("string").str.strip()
        if ids.isna().any() or (ids == "").any():
            raise MappingError(f"id: column '{id_col}' has {int((ids.isna() | (ids == '')).sum())} empty value(s)")
        dup = ids.duplicated().to_numpy()
        if dup.any():
            raise MappingError(f"id: column '{id_col}' has {int(dup.sum())} duplicate value(s), in "
                               f"row(s) {_rows_text(out['row'].to_numpy()[dup])} (row 1 is the first "
                               f"row after the header); one row per lead is needed")
        out["lead_id"] = ids.astype(str).to_numpy()
    else:
        out["lead_id"] = (out["row"] + 1).astype(str)
    out["label"] = label.astype("int64").to_numpy()
    if date_col:
        text = to_missing(df[date_col], mapping.missing_values)
        n_missing = int(text.isna().sum())
        if n_missing == len(text):
            raise MappingError(f"created_at: column '{date_col}' is empty")
        dates = created_dates(text, mapping, date_col, out["row"].to_numpy(), mapping.path.name)
        if n_missing:
            log.warning("created_at: %d row(s) without a date in column '%s' are dropped",
                        n_missing, date_col)
        out["as_of"] = dates.to_numpy()
        info["rows_no_date"] = int(dates.isna().sum())
        parts = date_parts(out["as_of"]) if mapping.date_parts else {}
        info["date_parts"] = list(parts)

    candidates = [c for c in df.columns if c not in special and c not in drop]
    pii = find_pii({c: to_missing(df[c], mapping.missing_values) for c in candidates})
    for i, c in enumerate(mapping.not_pii):
        col = res(c, f"not_pii[{i}]")
        if pii.get(col) in (EMAIL, PHONE):
            raise MappingError(
                f"not_pii[{i}]: column '{col}' holds {pii[col]} values, which are always dropped "
                f"(they identify a person and carry no signal a model can generalise); remove it "
                f"from not_pii, and derive what you need before export (e.g. the e-mail domain's kind)")
        pii.pop(col, None)
    if pii:
        log.warning("dropped %d column(s) that look like personal data (values never shown): %s; "
                    "a person-name column that is not one can be kept with `not_pii:`", len(pii),
                    ", ".join(f"'{c}' ({k})" for c, k in pii.items()))
        candidates = [c for c in candidates if c not in pii]
        fit_given = [c for c in fit_given if c not in pii]
        eng_given = [c for c in eng_given if c not in pii]
    info["pii"] = [{"column": c, "kind": k} for c, k in pii.items()]
    numeric_cols, cat_cols, dropped_id_like, coerced, folded = [], [], [], {}, {}
    names: dict[str, str] = {}
    feats: dict[str, pd.Series] = {}
    for c in candidates:
        s = to_missing(df[c], mapping.missing_values)
        if s.isna().all():
            log.warning("column '%s' is empty after placeholders; dropped", c)
            dropped_id_like.append(c)
            continue
        kind = types.get(c) or ("numeric" if numeric_share(s) >= NUMERIC_SHARE else "categorical")
        if kind == "numeric":
            x = parse_numbers(s)
            lost = int((s.notna() & x.isna()).sum())
            if lost:
                coerced[c] = lost
                log.warning("column '%s': %d value(s) are not numbers and become missing", c, lost)
            feats[c] = x
            numeric_cols.append(c)
        else:
            n_levels = s.nunique()
            cap = None if mapping.max_levels == "auto" else mapping.max_levels
            if c not in types and n_levels > max(cap or 0, ID_LIKE_SHARE * s.notna().sum()):
                log.warning("column '%s' has %d distinct values in %d rows: an identifier or free "
                            "text, dropped (give it a type in `types:` to keep it)", c, n_levels, len(s))
                dropped_id_like.append(c)
                continue
            feats[c], n_folded = clean_category(s, cap)
            if n_folded:
                folded[c] = n_folded
                log.info("column '%s': %d rare level(s) folded into '%s' (max_levels %d)", c,
                         n_folded, OTHER, mapping.max_levels)
            cat_cols.append(c)
    info.update({"dropped_by_mapping": sorted(drop), "dropped_id_like_or_empty": dropped_id_like,
                 "not_numbers": coerced, "levels_folded": folded})

    fit_cols, eng_cols = (fit_given, eng_given) if (fit_given or eng_given) else infer_groups(list(feats))
    if fit_given or eng_given:
        rest = [c for c in feats if c not in fit_cols and c not in eng_cols]
        if rest:  # columns the mapping did not place: inferred, and said so
            f2, e2 = infer_groups(rest)
            log.info("columns not listed in fit/engagement, grouped by name: fit %s, engagement %s", f2, e2)
            fit_cols, eng_cols = fit_cols + f2, eng_cols + e2
    missing_given = [c for c in fit_cols + eng_cols if c not in feats]
    if missing_given:
        raise MappingError(f"fit/engagement: column(s) {missing_given} are empty or were dropped "
                           f"(see the log); remove them from the mapping")
    specs, used = [], set()
    for group, cols in (("fit", fit_cols), ("engagement", eng_cols)):
        for c in cols:
            name = snake(c)
            if name in used or name in ("lead_id", "label", "row", "as_of"):
                name = f"{name}_{len(used)}"
            used.add(name)
            names[name] = c
            kind = "categorical" if c in cat_cols else "numeric"
            label_text = mapping.labels.get(c) or mapping.labels.get(name) or str(c).strip()
            specs.append(FeatureSpec(name=name, group=group, label=label_text,
                                     unit=mapping.units.get(c, mapping.units.get(name, "")), kind=kind))
            out[name] = feats[c].to_numpy()
    for name, values in (parts if date_col else {}).items():
        label_text, kind = DATE_PARTS[name]
        feature = name if name not in used else f"{name}_{len(used)}"
        used.add(feature)
        names[feature] = feature  # no header of its own: the screen and `allow:` use this name
        specs.append(FeatureSpec(name=feature, group="fit", kind=kind, unit=mapping.units.get(feature, ""),
                                 label=mapping.labels.get(feature) or label_text))
        out[feature] = values.to_numpy()
    if not specs:
        raise MappingError("no feature columns left after drop and cleaning")
    for spec in specs:
        if spec.kind == "numeric":
            out[spec.name] = out[spec.name].astype("float64")
    out = out.loc[out["as_of"].notna()].reset_index(drop=True) if date_col else out
    info["rows"] = int(len(out))
    info["positives"] = int(out["label"].sum())
    return FlatTable(out, FeatureCatalog(tuple(specs)), names, mapping.ordered, info)


def load_flat(mapping: Mapping, *, nrows: int | None = None) -> FlatTable:
    """`read_flat` + `prepare`."""
    return prepare(read_flat(mapping, nrows=nrows), mapping)


# ---- splits -----------------------------------------------------------------------------
SLICES = 4  # train, valid, calib, test


def check_stratifiable(y: np.ndarray, target: str) -> None:
    """A stratified random split needs each class in each of the 4 slices: fewer rows of a
    class than `SLICES` is a `TooFewPositivesError` (exit 4) saying how many there are."""
    from leadscore.modeling.estimators import TooFewPositivesError

    counts = {"positive": int(y.sum()), "negative": int(len(y) - y.sum())}
    few = {k: v for k, v in counts.items() if v < SLICES}
    if few:
        kind, count = next(iter(few.items()))
        raise TooFewPositivesError(
            f"split: target column '{target}' has {count} {kind} row(s); a stratified random split "
            f"(no created_at or time_order in the mapping) needs at least {SLICES} of each class, "
            f"one per slice (train, valid, calib, test), and a model needs far more")
def flat_split(table: FlatTable, mapping: Mapping) -> Split:
    """train | valid | calib | test by time (latest last) or, without an order, stratified
    at random with the mapping's shares."""
    df = table.frame
    sh = mapping.split
    n = len(df)
    if table.ordered:
        key = ["as_of", "row"] if "as_of" in df else ["row"]
        df = df.sort_values(key, kind="stable").reset_index(drop=True)
        n_test, n_cal, n_val = (round(n * s) for s in (sh.test, sh.calib, sh.valid))
        bounds = np.cumsum([0, n - n_test - n_cal - n_val, n_val, n_cal, n_test])
        parts = {name: df.iloc[bounds[i]:bounds[i + 1]].reset_index(drop=True)
                 for i, name in enumerate(("train", "valid", "calib", "test"))}
    else:
        y = df["label"].to_numpy()
        check_stratifiable(y, mapping.target)
        rest, test = train_test_split(df, test_size=sh.test, stratify=y, random_state=mapping.seed)
        share = sh.calib / (1 - sh.test)
        rest, calib = train_test_split(rest, test_size=share, stratify=rest["label"],
                                       random_state=mapping.seed)
        share = sh.valid / (1 - sh.test - sh.calib)
        train, valid = train_test_split(rest, test_size=share, stratify=rest["label"],
                                        random_state=mapping.seed)
        parts = {k: v.sort_values("row").reset_index(drop=True)
                 for k, v in (("train", train), ("valid", valid), ("calib", calib), ("test", test))}
    windows = {}
    for name, part in parts.items():
        if part.empty or part["label"].nunique() < 2:
            raise MappingError(f"split: the {name} slice has {len(part)} rows and "
                               f"{int(part['label'].sum())} positives; it needs both classes. "
                               f"Use more rows or change split shares")
        w = {"rows": int(len(part)), "positives": int(part["label"].sum()),
             "base_rate": float(part["label"].mean())}
        if not table.ordered:  # a random sample: its share of the rows, never a row range
            w = {"share": len(part) / n, **w}
        elif "as_of" in part:
            w = {"as_of_first": str(part["as_of"].min().date()),
                 "as_of_last": str(part["as_of"].max().date()), **w}
        else:
            w = {"as_of_first": f"row {int(part['row'].min()) + 1}",
                 "as_of_last": f"row {int(part['row'].max()) + 1}", **w}
        windows[name] = w
    calib = windows["calib"]
    folds = mapping.model.calibration_folds
    if min(calib["positives"], calib["rows"] - calib["positives"]) < folds:
        from leadscore.modeling.estimators import TooFewPositivesError

        raise TooFewPositivesError(
            f"split: the calibration slice has {calib['positives']} positive and "
            f"{calib['rows'] - calib['positives']} negative row(s); the calibration is cross-fitted "
            f"in model.calibration_folds = {folds} folds, so it needs at least {folds} of each. "
            f"Use more rows, a larger `split.calib` share, or fewer `model.calibration_folds`")
    return Split(**parts, windows=windows, embargo_months=0)
