"""Personal data in a flat export: find e-mail, phone and person-name columns by their values.

Real CRM exports carry the lead's e-mail address, phone number and name. None of them is a
fair feature (each is unique to a person, or close to it), and every value a model keeps can
end up in its files, its reasons, the report or the scores. `find_pii` looks at a sample of
each column's non-empty values (`SAMPLE` rows, after placeholders) and returns the columns
that look personal, with the kind found; `leadscore.flat.table.prepare` drops them before
typing and reports them by column name only (the log, ``metrics/screen.json`` and
``metrics/evaluate.json`` -> ``pii``). Never a value.

The rules, kept simple on purpose:

- **e-mail**: at least `EMAIL_SHARE` (20%) of the sampled values are one address
  (``local@domain.tld``). The pattern is specific, so a low share is enough.
- **phone**: at least `PHONE_SHARE` (50%) of the sampled values are written like a phone
  number: only digits, spaces, ``+ - . ( )``, 7 to 15 digits, and a leading ``+``, ``(`` or
  ``0`` or at least two separators (``555-123-4567``, ``+44 20 7946 0958``, ``(555) 123
  4567``, ``020 7946 0958``). Dates (``2024-01-31``, ``31.01.2024``) and numbers with
  thousands separators do not count. A bare run of digits (``5551234567``) is not taken for a
  phone: it cannot be told from an account number (drop such a column in the mapping).
- **person name**: at least `NAME_SHAPE_SHARE` (80%) of the sampled values are one to four
  words of letters (``'``, ``-`` and ``.`` allowed), and either the header has a name word
  (`NAME_WORDS`: name, first/last/full name, surname, contact, person, ...; not with a word
  such as company, account, campaign or product) and the column has at least
  `NAME_MIN_LEVELS` distinct values (so ``contact: cellular / telephone`` is not a name), or
  at least `FIRST_NAME_SHARE` (30%) of the values start with a common first name
  (`FIRST_NAMES`, whatever the header).

The mapping's `id`, `target` and `created_at` columns are not screened: an id stays an id
(it is written to scores.parquet as ``lead_id``), and the target's labels are the one
value a message may quote. A column taken for a person name that is not one (a product
called after a person, say) can be kept with ``not_pii: [column]``. There is no such key for
e-mail and phone columns: their values are unique per lead, so they identify a person and
carry no signal a model could generalise from; derive what you need before export (the
e-mail domain's kind, free-mail or company, say) and map that column instead.
"""

from __future__ import annotations

import re

import pandas as pd

from leadscore.modeling.names import name_words

SAMPLE = 500  # non-empty values looked at per column (the first ones, in file order)
EMAIL_SHARE = 0.2
PHONE_SHARE = 0.5
NAME_SHAPE_SHARE = 0.8
FIRST_NAME_SHARE = 0.3
NAME_MIN_LEVELS = 10

EMAIL = "e-mail"
PHONE = "phone"
NAME = "person name"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE_CHARS = re.compile(r"^[+(]?[\d\s().-]+$")
_SEPARATORS = re.compile(r"[\s().-]+")
_DATE_LIKE = re.compile(r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})$")
_THOUSANDS = re.compile(r"^\d{1,3}([ .]\d{3})+$")
_WORD = r"[^\W\d_]+(?:['.-][^\W\d_]+)*\.?"  # letters, with ' - . inside (O'Neil, Jean-Luc, Jr.)
_NAME_SHAPE = re.compile(rf"^{_WORD}(?:\s+{_WORD}){{0,3}}$")

NAME_WORDS: frozenset[str] = frozenset({
    "name", "names", "firstname", "lastname", "fullname", "surname", "forename", "forenames",
    "contact", "person", "nom", "prenom", "vorname", "nachname",
})
NOT_NAME_WORDS: frozenset[str] = frozenset({
    "company", "account", "organisation", "organization", "org", "business", "campaign",
    "product", "page", "source", "city", "country", "domain", "file", "form", "event",
    "channel", "type", "method", "mode", "list", "segment", "template",
})
# Common given names (lower case) that are not also common English words.
_FIRST_NAMES_TEXT = """
james john robert michael david richard joseph thomas charles christopher daniel matthew
anthony donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward
jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott brandon
benjamin samuel gregory alexander patrick jack dennis jerry tyler aaron henry peter
mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty
margaret sandra ashley kimberly emily donna michelle carol amanda melissa deborah stephanie
rebecca sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma nicole
helen samantha katherine christine debra rachel catherine carolyn janet maria heather diane
julie olivia sophia isabella mia charlotte amelia ann anne bob cara maria jose juan carlos
luis ana priya rahul amit anil sunil raj pooja neha ravi vijay deepak sanjay mohammed
muhammad ahmed ali fatima wei li mei hans klaus peter pierre jean marie sophie lucas
"""
FIRST_NAMES: frozenset[str] = frozenset(_FIRST_NAMES_TEXT.split())


def _sample(s: pd.Series) -> pd.Series:
    """The first `SAMPLE` non-empty values, as trimmed text."""
    return s.dropna().astype(str).str.strip().loc[lambda t: t != ""].head(SAMPLE)


def _is_phone(v: str) -> bool:
    if not _PHONE_CHARS.match(v) or _DATE_LIKE.match(v) or _THOUSANDS.match(v):
        return False
    digits = sum(ch.isdigit() for ch in v)
    if not 7 <= digits <= 15:
        return False
    return v[0] in "+(0" or len(_SEPARATORS.findall(v.strip())) >= 2


def _share(values: pd.Series, test) -> float:
    return float(values.map(test).mean()) if len(values) else 0.0


def pii_kind(header: str, values: pd.Series) -> str | None:
    """`EMAIL`, `PHONE`, `NAME` or None for one column (`values`: text, missing as NA)."""
    sample = _sample(values)
    if sample.empty:
        return None
    if _share(sample, lambda v: bool(_EMAIL.match(v))) >= EMAIL_SHARE:
        return EMAIL
    if _share(sample, _is_phone) >= PHONE_SHARE:
        return PHONE
    if _share(sample, lambda v: bool(_NAME_SHAPE.match(v))) < NAME_SHAPE_SHARE:
        return None
    words = set(name_words(header))
    named = bool(words & NAME_WORDS) and not words & NOT_NAME_WORDS
    if named and sample.str.lower().nunique() >= NAME_MIN_LEVELS:
        return NAME
    first = sample.str.split().str[0].str.lower().str.strip(".")
    if float(first.isin(FIRST_NAMES).mean()) >= FIRST_NAME_SHARE:
        return NAME
    return None


def find_pii(columns: dict[str, pd.Series]) -> dict[str, str]:
    """{column: kind} for the columns of `columns` ({header: text values}) that look like
    e-mail addresses, phone numbers or person names (see the module docstring)."""
    found = {}
    for header, values in columns.items():
        kind = pii_kind(str(header), values)
        if kind:
            found[str(header)] = kind
    return found
