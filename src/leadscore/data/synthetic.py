"""Deterministic synthetic B2B CRM: `leads`, `events`, `outcomes` (and `mql_feedback`) with real
signal and traps.

The hidden story of every lead:

* **Fit** comes from seniority and department (written as messy free-text job titles),
  company size, industry, country, lead source and a free-mail address.
* **Intent** comes in 0-3 **bursts** at random times after creation. During a burst the
  engagement rate jumps and then decays exponentially; burst events are the high-intent kind
  (pricing-page views, demo requests, webinar attendance, case-study downloads).
* **Conversion** to `opportunity` is drawn per burst with log-odds ``fit + log(strength)``,
  days after the burst starts, so a point-in-time model can see it coming.

Traps for a naive model: students, interns and junk leads open many emails and download blogs
and whitepapers but never convert; email opens are everywhere; opportunities keep generating
strong events after conversion (leakage if features look past `as_of`); ~2% of events are
logged twice with a new `event_id`; firmographics are often missing.

Sales feedback (the optional ``mql_feedback`` table): most MQLs get sales' accept or reject a
few days after the MQL (none recorded after the cutoff), accepted mostly when the lead goes on
to ``sql``, otherwise rejected with a reason that follows the lead (no_budget after a "no" to
the BANT budget question, no_authority for junior titles, bad_contact for junk or bounced
addresses, bad_timing for a 6-12 month timeline; some no_need, duplicate and other). It is
drawn from RNG streams of its own, so the other tables are the same with or without it.

Everything is vectorised with numpy per chunk of leads; each chunk has its own RNG stream
(``SeedSequence(seed, spawn_key=(chunk,))``), so the output depends only on config and seed.
Nothing is recorded at or after midnight starting ``cfg.end`` (the data cutoff).

`generate_next_quarter` continues the same CRM past ``cfg.end`` by whole quarters with shifted
behaviour (`QuarterShift`: a new lead source, a case-study campaign, a slow quarter), to
simulate a quarterly retrain. Every row before ``cfg.end`` is exactly `generate_crm`'s row:
the hidden story of each lead (bursts, latent funnel, unsubscribe times) is carried on with
RNG streams of its own, so the history does not depend on the continuation.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.config import GenerateConfig
from leadscore.io import atomic_path, quiet
from leadscore.progress import bar
from leadscore.schema import (
    CANARY_EMAIL,
    CANARY_FIRST_NAME,
    CANARY_LAST_NAME,
    CLOSING_STAGES,
    CONTENT_TYPES,
    EVENT_TYPES,
    FEEDBACK_REASONS,
    OPTIONAL_TABLES,
    STAGES,
    TABLES,
    Table,
)

log = logging.getLogger(__name__)

SEC_PER_DAY = 86_400
_ET = {name: i for i, name in enumerate(EVENT_TYPES)}
_CT = {name: i for i, name in enumerate(CONTENT_TYPES)}
_ST = {name: i for i, name in enumerate(STAGES)}
_EMAIL_EVENTS = np.array([_ET["email_open"], _ET["email_click"]])

# ---------------------------------------------------------------------------------------------
# Vocabularies and hidden effects (log-odds contributions to fit)
# ---------------------------------------------------------------------------------------------
KIND_NORMAL, KIND_STUDENT, KIND_JUNK = 0, 1, 2

# Data tables read better as rows.
# fmt: off
SENIORITY = ("c_level", "vp", "director", "manager", "senior_ic", "individual", "student")
SENIORITY_P = np.array([0.05, 0.07, 0.12, 0.22, 0.17, 0.30, 0.07])
SENIORITY_FIT = np.array([0.6, 1.0, 0.9, 0.4, 0.0, -0.6, 0.0])  # students never convert anyway

DEPARTMENTS = ("marketing", "sales", "it", "engineering", "finance", "operations", "hr", "executive")
DEPARTMENT_P = np.array([0.24, 0.18, 0.15, 0.12, 0.08, 0.10, 0.05, 0.08])
DEPARTMENT_FIT = np.array([0.5, 0.4, 0.3, 0.0, -0.3, -0.2, -0.6, 0.3])

INDUSTRIES = (
    "software", "financial_services", "telecom", "manufacturing", "healthcare", "consulting",
    "retail", "media", "government", "education", "nonprofit",
)
INDUSTRY_P = np.array([0.18, 0.12, 0.06, 0.13, 0.10, 0.10, 0.09, 0.06, 0.05, 0.07, 0.04])
INDUSTRY_FIT = np.array([0.6, 0.5, 0.3, 0.2, 0.1, 0.0, -0.1, -0.2, -0.5, -0.8, -0.9])

COUNTRIES = ("US", "GB", "DE", "FR", "CA", "NL", "AU", "ES", "IN", "BR", "PL", "MX")
COUNTRY_P = np.array([0.38, 0.10, 0.09, 0.06, 0.06, 0.04, 0.04, 0.04, 0.08, 0.05, 0.03, 0.03])
COUNTRY_FIT = np.array([0.2, 0.1, 0.1, 0.0, 0.1, 0.1, 0.0, -0.2, -0.4, -0.4, -0.3, -0.4])

SOURCES = (
    "organic_search", "paid_search", "webinar", "trade_show", "referral",
    "content_syndication", "purchased_list", "partner",
)
SOURCE_P = np.array([  # per lead kind: normal, student, junk
    [0.22, 0.18, 0.10, 0.08, 0.07, 0.14, 0.13, 0.08],
    [0.40, 0.10, 0.20, 0.02, 0.02, 0.24, 0.02, 0.00],
    [0.12, 0.18, 0.05, 0.10, 0.00, 0.20, 0.35, 0.00],
])
SOURCE_FIT = np.array([0.1, 0.0, 0.3, 0.2, 0.6, -0.4, -1.0, 0.3])

# Company size: employees; fit by size band (edges are lower bounds).
SIZE_EDGES = np.array([0, 10, 50, 250, 1_000, 5_000])
SIZE_FIT = np.array([-1.2, -0.5, 0.2, 0.6, 0.7, 0.4])

TIMELINES = ("now", "3-6 months", "6-12 months", "unknown")

# Seasonality: month (Jan..Dec), weekday (Mon..Sun) and hour-of-day weights.
MONTH_W = np.array([1.2, 1.15, 1.2, 1.0, 1.0, 0.95, 0.85, 0.6, 1.25, 1.1, 1.0, 0.9])
DOW_W = np.array([1.0, 1.05, 1.05, 1.0, 0.9, 0.25, 0.2])
HOUR_W = np.array(
    [0.08] * 6 + [0.3, 0.6, 1.0, 1.0, 1.0, 1.0, 0.8, 1.0, 1.0, 1.0, 0.9, 0.6]
    + [0.4, 0.35, 0.3, 0.25, 0.15, 0.1]
)
HOLIDAY_W = 0.3  # Dec 20 - Jan 1

# Event mixes: (event_type, content_type or None, weight).
Mix = tuple[tuple[str, str | None, float], ...]
NURTURE_MIX: Mix = (
    ("email_open", None, 0.45), ("email_click", None, 0.08), ("web_visit", None, 0.22),
    ("content_download", "blog", 0.06), ("content_download", "whitepaper", 0.04),
    ("content_download", "ebook", 0.03), ("content_download", "case_study", 0.01),
    ("content_download", "product_sheet", 0.01), ("webinar_registration", None, 0.03),
    ("webinar_attendance", None, 0.01), ("demo_video_view", None, 0.02),
    ("pricing_page_view", None, 0.015), ("form_submit", None, 0.015),
)
STUDENT_MIX: Mix = (
    ("email_open", None, 0.40), ("email_click", None, 0.10), ("web_visit", None, 0.15),
    ("content_download", "blog", 0.12), ("content_download", "whitepaper", 0.10),
    ("content_download", "ebook", 0.06), ("content_download", "case_study", 0.01),
    ("webinar_registration", None, 0.04), ("webinar_attendance", None, 0.015),
    ("demo_video_view", None, 0.01), ("pricing_page_view", None, 0.005),
    ("form_submit", None, 0.01),
)
JUNK_MIX: Mix = (  # bots and security scanners: opens, clicks, a few downloads
    ("email_open", None, 0.70), ("email_click", None, 0.12), ("web_visit", None, 0.05),
    ("content_download", "blog", 0.04), ("content_download", "whitepaper", 0.05),
    ("content_download", "ebook", 0.02), ("form_submit", None, 0.02),
)
FLOOR_MIX: Mix = (  # newsletter background noise over the whole lifetime
    ("email_open", None, 0.75), ("web_visit", None, 0.15), ("email_click", None, 0.05),
    ("content_download", "blog", 0.05),
)
BURST_MIX: Mix = (
    ("web_visit", None, 0.22), ("pricing_page_view", None, 0.14), ("email_click", None, 0.10),
    ("email_open", None, 0.10), ("content_download", "case_study", 0.07),
    ("content_download", "product_sheet", 0.05), ("content_download", "whitepaper", 0.03),
    ("content_download", "blog", 0.02), ("webinar_registration", None, 0.05),
    ("webinar_attendance", None, 0.05), ("demo_video_view", None, 0.07),
    ("form_submit", None, 0.05), ("demo_request", None, 0.05),
)
POST_MIX: Mix = (  # an open opportunity: sales-led activity (the leakage trap)
    ("web_visit", None, 0.22), ("pricing_page_view", None, 0.18), ("demo_request", None, 0.12),
    ("form_submit", None, 0.10), ("email_open", None, 0.14), ("email_click", None, 0.09),
    ("content_download", "product_sheet", 0.05), ("content_download", "case_study", 0.04),
    ("demo_video_view", None, 0.04), ("webinar_attendance", None, 0.02),
)

# Rates at events_per_lead=40, before seasonal thinning (tuned so the mean lands near 40).
NURTURE_PER_DAY, NURTURE_DECAY_DAYS = 0.13, 100.0
FLOOR_PER_DAY = 0.026
BURST_EVENTS_PER_STRENGTH = 10.5
POST_EVENTS, POST_DECAY_DAYS = 35.0, 45.0
CONVERSION_OFFSET = -1.2  # log-odds of conversion per burst at fit 0, strength 1 (base rate)
EVENT_SCALE_REFERENCE = 40.0

# Title templates ({D} = department display name) by seniority.
_DEPT_NAMES = {
    "marketing": ("Marketing", "Digital Marketing", "Demand Generation", "Mktg", "Growth Marketing"),
    "sales": ("Sales", "Business Development", "Revenue Operations"),
    "it": ("IT", "Information Technology", "IT Infrastructure"),
    "engineering": ("Engineering", "Software Engineering", "R&D"),
    "finance": ("Finance", "Accounting"),
    "operations": ("Operations", "Ops", "Supply Chain"),
    "hr": ("HR", "Human Resources", "People", "Talent Acquisition"),
}
_TEMPLATES = {
    "vp": ("VP {D}", "VP of {D}", "Vice President, {D}", "Vice President of {D}", "SVP {D}",
           "VP, {D}", "V.P. {D}"),
    "director": ("Director of {D}", "{D} Director", "Head of {D}", "Head of {D}",
                 "Sr. Director, {D}", "Dir. {D}", "Director, {D}"),
    "manager": ("{D} Manager", "{D} Manager", "Manager, {D}", "{D} Mgr", "{D} Team Lead"),
    "senior_ic": ("Senior {D} Specialist", "Sr. {D} Analyst", "Sr {D} Consultant",
                  "Lead {D} Specialist", "Senior {D} Analyst"),
    "individual": ("{D} Specialist", "{D} Analyst", "{D} Coordinator", "{D} Associate"),
    "student": ("Intern", "Student", "{D} Intern", "Working Student", "Graduate Student",
                "PhD Student", "Student Assistant"),
}
_C_LEVEL = {
    "marketing": ("CMO", "Chief Marketing Officer"),
    "sales": ("CRO", "Chief Revenue Officer", "Chief Sales Officer"),
    "it": ("CIO", "Chief Information Officer", "CISO"),
    "engineering": ("CTO", "Chief Technology Officer", "CTO & Co-Founder"),
    "finance": ("CFO", "Chief Financial Officer"),
    "operations": ("COO", "Chief Operating Officer"),
    "hr": ("CHRO", "Chief People Officer"),
    "executive": ("CEO", "CEO", "Chief Executive Officer", "Founder & CEO", "Co-Founder",
                  "Owner", "President", "Founder"),
}
_EXTRA = {  # department-specific titles that do not fit a template
    ("senior_ic", "engineering"): ("Sr. Software Engineer", "Senior Software Engineer",
                                   "Staff Engineer", "Senior Developer"),
    ("senior_ic", "it"): ("Sr. Systems Administrator", "Senior Network Engineer"),
    ("individual", "engineering"): ("Software Engineer", "Developer", "Software Developer",
                                    "QA Engineer"),
    ("individual", "it"): ("System Administrator", "IT Support Specialist", "Helpdesk Technician"),
    ("individual", "sales"): ("Account Executive", "Sales Representative", "SDR", "BDR"),
    ("manager", "sales"): ("Account Manager", "Regional Sales Manager"),
    ("vp", "executive"): ("EVP", "Executive Vice President"),
    ("director", "executive"): ("Managing Director", "Managing Director"),
    ("manager", "executive"): ("General Manager", "Office Manager"),
    ("senior_ic", "executive"): ("Senior Executive Assistant", "Chief of Staff"),
    ("individual", "executive"): ("Executive Assistant", "Office Coordinator"),
    ("student", "executive"): ("Intern", "Student"),
}
_TYPOS = (
    ("Manager", "Manger"), ("Director", "Dirctor"), ("Marketing", "Markting"),
    ("Engineer", "Enginer"), ("Vice President", "Vice Presient"), ("Operations", "Opertions"),
    ("Senior", "Senoir"), ("Analyst", "Analist"), ("Specialist", "Specalist"),
)
_JUNK_TITLES = ("xxx", "n/a", "N/A", "-", "asdf", "test", "none", ".", "?", "123")

_FIRST = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Chris", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley",
    "Paul", "Emily", "Steven", "Laura", "Andrew", "Anna", "Lukas", "Sophie", "Jonas", "Emma",
    "Pierre", "Camille", "Lucas", "Chloe", "Raj", "Priya", "Arjun", "Ananya", "Carlos", "Maria",
    "Joao", "Ana", "Pablo", "Lucia", "Jan", "Eva", "Piotr", "Olga", "Liam", "Olivia", "Noah",
    "Ava", "Mohammed", "Fatima", "Wei", "Mei", "Kenji", "Yuki", "Sven", "Ingrid", "Luca", "Giulia",
)
_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson",
    "Mueller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Dubois", "Laurent",
    "Bernard", "Moreau", "Patel", "Sharma", "Singh", "Kumar", "Silva", "Santos", "Oliveira",
    "Kowalski", "Nowak", "Jansen", "de Vries", "Rossi", "Russo", "Ferrari", "Nguyen", "Tanaka",
    "Sato", "Kim", "Park", "Chen", "Wang", "Olsen", "Hansen", "O'Brien", "Murphy", "Kelly",
)
_CO_A = (
    "acme", "globex", "initech", "umbrella", "stark", "wayne", "hooli", "vandelay", "soylent",
    "cyberdyne", "wonka", "tyrell", "massive", "blue", "north", "bright", "apex", "vertex",
    "nimbus", "quantum", "pioneer", "summit", "silver", "granite", "harbor", "cedar", "atlas",
    "orbit", "falcon", "lumen", "nova", "polar", "river", "solid", "swift", "terra", "urban",
    "vector", "zenith", "alpine",
)
_CO_B = (
    "corp", "tech", "labs", "systems", "group", "solutions", "industries", "analytics", "works",
    "partners", "digital", "networks", "health", "logistics", "capital",
)
_FREE_MAIL = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "gmx.de", "icloud.com")
_FREE_MAIL_P = np.array([0.55, 0.12, 0.12, 0.1, 0.06, 0.05])
_JUNK_EMAILS = (
    "test@test.com", "asdf@asdf.com", "a@a.com", "noreply@example.com", "xxx@xxx.xxx",
    "test@example.com", "fake@fake.com", "asdf@gmail.com",
)
_JUNK_NAMES = (
    ("asdf", "asdf"), ("test", "test"), ("Mickey", "Mouse"), ("Donald", "Duck"), ("xxx", "xxx"),
    ("qwerty", "uiop"), ("a", "b"), ("Test", "User"),
)
# fmt: on


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Calendar:
    """Time axis of one config: days since `start`, cutoff, seasonal weights per day."""

    start: np.datetime64  # midnight of cfg.start
    n_days: int  # days in [start, cutoff)
    day_w: np.ndarray  # seasonal activity weight per day, max 1 (may run past the cutoff)

    @property
    def cutoff(self) -> float:
        return float(self.n_days)


def _raw_day_weights(start: np.datetime64, n_days: int) -> np.ndarray:
    """Unnormalised seasonal weights (month x weekday x holidays) of n_days days from start."""
    days = start + np.arange(n_days)
    month = days.astype("datetime64[M]").astype(np.int64) % 12
    dom = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    dow = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    w = MONTH_W[month] * DOW_W[dow]
    holiday = ((month == 11) & (dom >= 20)) | ((month == 0) & (dom == 1))
    return np.where(holiday, w * HOLIDAY_W, w)


def make_calendar(cfg: GenerateConfig) -> Calendar:
    """Seasonal weights (month x weekday x holidays) for each day in [start, end)."""
    start = np.datetime64(cfg.start, "D")
    n_days = (cfg.end - cfg.start).days
    w = _raw_day_weights(start, n_days)
    return Calendar(start=start.astype("datetime64[us]"), n_days=n_days, day_w=w / w.max())


def _mean_keep(cal: Calendar) -> float:
    """Average share of events kept by seasonal thinning (to keep the event volume on target)."""
    return float(cal.day_w.mean() * (HOUR_W / HOUR_W.max()).mean())


def _mix_arrays(mix: Mix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    et = np.array([_ET[e] for e, _, _ in mix], dtype=np.int8)
    ct = np.array([_CT[c] if c else -1 for _, c, _ in mix], dtype=np.int8)
    p = np.array([w for _, _, w in mix])
    return et, ct, p / p.sum()


def _draw_mix(rng: np.random.Generator, m: int, mix: Mix) -> tuple[np.ndarray, np.ndarray]:
    """m (event_type, content_type) codes drawn from a mix; content -1 means NULL."""
    et, ct, p = _mix_arrays(mix)
    k = rng.choice(len(p), size=m, p=p)
    return et[k], ct[k]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _strings(vocab: tuple[str, ...] | list[str], idx: np.ndarray) -> pa.Array:
    """vocab[idx] as an Arrow string array (vectorised take)."""
    return pa.array(vocab, pa.string()).take(pa.array(idx))


def _join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise string concatenation of arrays and scalars."""
    return pc.binary_join_element_wise(*parts, "")


def _where(mask: np.ndarray, a: pa.Array, b: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), a, b)


def _id_strings(prefix: str, ids: np.ndarray, width: int) -> pa.Array:
    """'L00000042'-style ids built in Arrow (fast for tens of millions)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(ids), pa.string()), width=width, padding="0")
    return _join(prefix, digits)


def _sample_times(
    rng: np.random.Generator, n: int, cal: Calendar, days: tuple[int, int] | None = None
) -> np.ndarray:
    """Lead creation times (days since start) following seasonality and office hours, on the
    days [lo, hi) of the calendar (default: all of it)."""
    lo, hi = days if days is not None else (0, cal.n_days)
    w = cal.day_w[lo:hi]
    day = lo + rng.choice(hi - lo, size=n, p=w / w.sum())
    hour = rng.choice(24, size=n, p=HOUR_W / HOUR_W.sum())
    return day + (hour + rng.random(n)) / 24.0


# ---------------------------------------------------------------------------------------------
# Leads
# ---------------------------------------------------------------------------------------------
@functools.cache
def _title_vocab() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """All clean titles, plus start/count tables indexed by (seniority, department)."""
    titles: list[str] = []
    start = np.zeros((len(SENIORITY), len(DEPARTMENTS)), dtype=np.int64)
    count = np.zeros_like(start)
    for s, sen in enumerate(SENIORITY):
        for d, dept in enumerate(DEPARTMENTS):
            if sen == "c_level":
                group = list(_C_LEVEL[dept])
            elif dept == "executive":
                group = list(_EXTRA[(sen, dept)])
            else:
                group = [t.format(D=name) for t in _TEMPLATES[sen] for name in _DEPT_NAMES[dept]]
                group += list(_EXTRA.get((sen, dept), ()))
            start[s, d], count[s, d] = len(titles), len(group)
            titles += group
    return tuple(titles), start, count


def _job_titles(
    rng: np.random.Generator, sen: np.ndarray, dept: np.ndarray, junk: np.ndarray
) -> pa.Array:
    """Free-text job titles: variants, mixed case, stray whitespace, typos, nulls, junk."""
    n = len(sen)
    vocab, start, count = _title_vocab()
    pick = start[sen, dept] + (rng.random(n) * count[sen, dept]).astype(np.int64)
    t = _strings(vocab, pick)
    u = rng.random((5, n))
    typo = u[0] < 0.03
    typo_t = t
    for good, bad in _TYPOS:
        typo_t = pc.replace_substring(typo_t, good, bad, max_replacements=1)
    t = _where(typo, typo_t, t)
    t = _where(u[1] < 0.07, pc.utf8_lower(t), t)
    t = _where(u[1] > 0.975, pc.utf8_upper(t), t)
    t = _where(u[2] < 0.03, _join(" ", t, "  "), t)
    t = _where(u[2] > 0.98, pc.replace_substring(t, " ", "  ", max_replacements=1), t)
    t = _where(junk, _strings(_JUNK_TITLES, rng.integers(len(_JUNK_TITLES), size=n)), t)
    null = np.where(junk, u[3] < 0.3, u[3] < 0.07)
    return _where(null, pa.nulls(n, pa.string()), t)


def _random_letters(rng: np.random.Generator, n: int, k: int) -> pa.Array:
    codes = rng.integers(97, 123, size=(n, k), dtype=np.uint8)
    return pa.array(codes.view(f"S{k}").ravel().astype(f"U{k}"))


def _people(
    rng: np.random.Generator,
    n: int,
    junk: np.ndarray,
    company: np.ndarray,
    comp_a: np.ndarray,
    comp_b: np.ndarray,
    company_offset: int,
) -> tuple[pa.Array, pa.Array, pa.Array, np.ndarray]:
    """(email, first_name, last_name, free_mail flag) for n leads of chunk-local companies."""
    fi = rng.integers(len(_FIRST), size=n)
    li = rng.integers(len(_LAST), size=n)
    first, last = _strings(_FIRST, fi), _strings(_LAST, li)
    f_low = pc.utf8_lower(first)
    l_low = pc.replace_substring(pc.replace_substring(pc.utf8_lower(last), " ", ""), "'", "")
    # company domain: acme-labs.example, acme-labs-17.example for later companies
    suffix = (company + company_offset) // (len(_CO_A) * len(_CO_B))
    num = _where(suffix > 0, _join("-", pc.cast(pa.array(suffix), pa.string())), pa.array([""] * n))
    domain = _join(
        _strings(_CO_A, comp_a[company]), "-", _strings(_CO_B, comp_b[company]), num, ".example"
    )
    free = rng.random(n) < 0.2
    domain = _where(
        free, _strings(_FREE_MAIL, rng.choice(len(_FREE_MAIL), n, p=_FREE_MAIL_P)), domain
    )
    digits = pc.cast(pa.array(rng.integers(1, 99, size=n)), pa.string())
    fmt = rng.choice(5, size=n, p=[0.5, 0.2, 0.1, 0.1, 0.1])
    local = _join(f_low, ".", l_low)
    local = _where(fmt == 1, _join(pc.utf8_slice_codeunits(f_low, 0, 1), l_low), local)
    local = _where(fmt == 2, f_low, local)
    local = _where(fmt == 3, _join(f_low, "_", l_low), local)
    local = _where((fmt == 4) | (free & (fmt == 2)), _join(f_low, ".", l_low, digits), local)
    email = _join(local, "@", domain)
    # junk: placeholder addresses or random strings, silly names
    jm = rng.integers(len(_JUNK_EMAILS), size=n)
    junk_email = _where(
        rng.random(n) < 0.5,
        _strings(_JUNK_EMAILS, jm),
        _join(_random_letters(rng, n, 8), "@", _random_letters(rng, n, 5), ".com"),
    )
    jn = rng.integers(len(_JUNK_NAMES), size=n)
    email = _where(junk, junk_email, email)
    first = _where(junk, _strings([a for a, _ in _JUNK_NAMES], jn), first)
    last = _where(junk, _strings([b for _, b in _JUNK_NAMES], jn), last)
    return email, first, last, free & ~junk


@dataclass
class Leads:
    """Hidden and observed attributes of one chunk of leads (arrays of length n)."""

    kind: np.ndarray
    created: np.ndarray  # days since start
    fit: np.ndarray
    activity: np.ndarray  # heavy-tailed engagement multiplier
    size: np.ndarray  # true employees
    table: pa.Table
    seniority: np.ndarray  # index into SENIORITY


def _company_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(np.rint(rng.lognormal(np.log(120), 1.9, size=n)), 1, 400_000).astype(np.int64)


def _null_rate(target: float, junk_share: float, junk_rate: float) -> float:
    """Null rate for normal leads so the overall share hits `target` given junk's rate."""
    return float(np.clip((target - junk_share * junk_rate) / max(1 - junk_share, 1e-9), 0, 1))


@dataclass(frozen=True)
class SourceModel:
    """Lead sources: names, mix per lead kind (rows: normal, student, junk), fit effect."""

    names: tuple[str, ...]
    p: np.ndarray
    fit: np.ndarray


HISTORY_SOURCES = SourceModel(SOURCES, SOURCE_P, SOURCE_FIT)


def _leads(
    rng: np.random.Generator,
    cfg: GenerateConfig,
    cal: Calendar,
    first_index: int,
    n: int,
    canary: int | None,
    *,
    sources: SourceModel = HISTORY_SOURCES,
    days: tuple[int, int] | None = None,
) -> Leads:
    """Leads of one chunk; `canary` is the chunk-local position of the canary lead, if here.
    `days` limits creation to calendar days [lo, hi) (default: the whole calendar)."""
    u = rng.random((12, n))
    kind = np.where(u[0] < cfg.junk_share, KIND_JUNK, KIND_NORMAL)
    sen = rng.choice(len(SENIORITY), size=n, p=SENIORITY_P)
    kind = np.where((kind == KIND_NORMAL) & (sen == SENIORITY.index("student")), KIND_STUDENT, kind)
    if canary is not None:
        kind[canary] = KIND_NORMAL
        sen[canary] = SENIORITY.index("manager")
    dept = rng.choice(len(DEPARTMENTS), size=n, p=DEPARTMENT_P)
    junk = kind == KIND_JUNK
    created = _sample_times(rng, n, cal, days)
    if canary is not None:
        created[canary] = min(30.5, cal.cutoff / 4)

    # firmographics are company-level: several leads share a company
    n_comp = max(1, n // 3)
    company = rng.integers(n_comp, size=n)
    comp_size = _company_sizes(rng, n_comp)
    comp_rev = comp_size * rng.lognormal(np.log(180_000), 0.5, size=n_comp)
    comp_ind = rng.choice(len(INDUSTRIES), size=n_comp, p=INDUSTRY_P)
    comp_cty = rng.choice(len(COUNTRIES), size=n_comp, p=COUNTRY_P)
    comp_a = rng.integers(len(_CO_A), size=n_comp)
    comp_b = rng.integers(len(_CO_B), size=n_comp)
    size, revenue = comp_size[company], comp_rev[company]
    industry, country = comp_ind[company], comp_cty[company]
    source = np.empty(n, dtype=np.int64)
    for k in (KIND_NORMAL, KIND_STUDENT, KIND_JUNK):
        m = kind == k
        source[m] = rng.choice(len(sources.names), size=int(m.sum()), p=sources.p[k])

    email, first, last, free = _people(rng, n, junk, company, comp_a, comp_b, first_index // 3)
    band = np.searchsorted(SIZE_EDGES, size, side="right") - 1
    fit = (
        SENIORITY_FIT[sen]
        + DEPARTMENT_FIT[dept]
        + SIZE_FIT[band]
        + INDUSTRY_FIT[industry]
        + COUNTRY_FIT[country]
        + sources.fit[source]
        - 0.4 * free
        + rng.normal(0, 0.5, size=n)
    )
    fit = np.where(kind == KIND_NORMAL, fit, -10.0)
    activity = rng.lognormal(-0.4, 0.9, size=n) * np.where(kind == KIND_STUDENT, 2.5, 1.0)

    # missing firmographics (junk leads are mostly unenriched)
    js = cfg.junk_share
    null_size = u[1] < np.where(junk, 0.7, _null_rate(0.25, js, 0.7))
    null_rev = null_size | (u[2] < 0.2)  # 0.25 + 0.75 * 0.2 = 0.40 overall
    null_ind = u[3] < np.where(junk, 0.6, _null_rate(0.15, js, 0.6))
    null_cty = u[4] < np.where(junk, 0.4, _null_rate(0.05, js, 0.4))

    # BANT: captured on some forms; budget follows fit, timeline follows intent at creation
    bant_known = u[5] < np.where(junk, 0.1, 0.4)
    budget = u[6] < _sigmoid(0.8 * np.clip(fit, -3, 3) - 0.2)
    timeline = rng.choice(len(TIMELINES), size=n, p=[0.15, 0.3, 0.3, 0.25])
    timeline_known = bant_known & (u[7] < 0.8)

    lead_ids = _id_strings("L", first_index + np.arange(n), 8)
    created_us = (
        cal.start.astype(np.int64) + np.floor(created * SEC_PER_DAY).astype(np.int64) * 1_000_000
    )
    if canary is not None:
        email = _where(np.arange(n) == canary, pa.array([CANARY_EMAIL] * n), email)
        first = _where(np.arange(n) == canary, pa.array([CANARY_FIRST_NAME] * n), first)
        last = _where(np.arange(n) == canary, pa.array([CANARY_LAST_NAME] * n), last)
    table = pa.table(
        {
            "lead_id": lead_ids,
            "created_at": pa.array(created_us, pa.timestamp("us")),
            "email": email,
            "first_name": first,
            "last_name": last,
            "job_title": _job_titles(rng, sen, dept, junk),
            "company_size": pa.array(size, pa.int32(), mask=null_size),
            "annual_revenue": pa.array(np.round(revenue, -3), pa.float64(), mask=null_rev),
            "industry": _strings(INDUSTRIES, pa.array(industry, mask=null_ind)),
            "country": _strings(COUNTRIES, pa.array(country, mask=null_cty)),
            "source": _strings(sources.names, source),
            "bant_budget": pa.array(budget, pa.bool_(), mask=~bant_known),
            "bant_timeline": _strings(TIMELINES, pa.array(timeline, mask=~timeline_known)),
        }
    )
    return Leads(kind=kind, created=created, fit=fit, activity=activity, size=size, table=table,
                 seniority=sen)


# ---------------------------------------------------------------------------------------------
# Intent bursts, conversion and outcomes
# ---------------------------------------------------------------------------------------------
@dataclass
class Bursts:
    lead: np.ndarray  # chunk-local lead index
    start: np.ndarray  # days since calendar start
    strength: np.ndarray
    decay: np.ndarray  # days


def _bursts(rng: np.random.Generator, leads: Leads) -> Bursts:
    """0-3 intent episodes per normal lead; the first often at creation (the form fill)."""
    n = len(leads.kind)
    lam = np.where(leads.kind == KIND_NORMAL, 0.9 * np.exp(0.15 * np.clip(leads.fit, -3, 3)), 0.0)
    count = np.minimum(rng.poisson(lam), 3)
    lead = np.repeat(np.arange(n), count)
    m = len(lead)
    first = np.r_[True, lead[1:] != lead[:-1]] if m else np.zeros(0, bool)
    at_creation = first & (rng.random(m) < 0.35)
    offset = np.where(at_creation, rng.exponential(2.0, m), rng.exponential(180.0, m))
    return Bursts(
        lead=lead,
        start=leads.created[lead] + offset,
        strength=rng.lognormal(0.0, 0.8, m),
        decay=rng.uniform(4.0, 18.0, m),
    )


@dataclass
class Funnel:
    """Per-lead stage times in days (inf = never) and the won amount, plus the latent draws
    the next-quarter continuation reuses: per burst whether it converts (`conv`), when
    (`cand`) and when a non-converting burst marketing-qualifies the lead (`qual_t`, inf =
    never); per lead the uniforms `u` (8 x n) and the gamma part of the time to close."""

    mql: np.ndarray
    sql: np.ndarray
    opp: np.ndarray
    won: np.ndarray
    lost: np.ndarray
    recycled: np.ndarray
    amount: np.ndarray
    conv: np.ndarray
    cand: np.ndarray
    qual_t: np.ndarray
    u: np.ndarray
    close_g: np.ndarray


Logit = Callable[[np.ndarray], np.ndarray]  # candidate opportunity times -> extra log-odds


def _decide(
    rng: np.random.Generator,
    fit_b: np.ndarray,
    start: np.ndarray,
    strength: np.ndarray,
    offset: float,
    extra: Logit | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(converts, candidate opportunity time) per burst: log-odds offset + fit + strength,
    plus `extra(cand)` (the content a burst showed before its candidate time)."""
    u = rng.random(len(start))
    cand = start + 1.0 + rng.gamma(2.0, 7.0, len(start))
    logit = offset + fit_b + 1.3 * np.log(strength)
    if extra is not None:
        logit = logit + extra(cand)
    return u < _sigmoid(logit), cand


def _qualify(
    rng: np.random.Generator, start: np.ndarray, strength: np.ndarray, conv: np.ndarray
) -> np.ndarray:
    """When a non-converting burst marketing-qualifies its lead (inf = never)."""
    qual = ~conv & (rng.random(len(start)) < _sigmoid(-1.0 + 1.5 * np.log(strength)))
    qual_t = np.full(len(start), np.inf)
    qual_t[qual] = start[qual] + rng.exponential(4.0, int(qual.sum()))
    return qual_t


def _funnel(
    rng: np.random.Generator,
    leads: Leads,
    b: Bursts,
    *,
    offset: float = CONVERSION_OFFSET,
    extra: Logit | None = None,
) -> Funnel:
    """Opportunity from fit x burst strength; mql/sql before it; won/lost after; recycling."""
    n = len(leads.kind)
    inf = np.full(n, np.inf)
    conv, cand = _decide(rng, leads.fit[b.lead], b.start, b.strength, offset, extra)
    opp = inf.copy()
    np.minimum.at(opp, b.lead[conv], cand[conv])
    # the burst that produced the opportunity (for mql/sql timing)
    hit = conv & (cand == opp[b.lead])
    t_burst = inf.copy()
    t_burst[b.lead[hit]] = b.start[hit]
    has_opp = np.isfinite(opp)
    u = rng.random((8, n))
    t_b, t_o = np.where(has_opp, t_burst, 0.0), np.where(has_opp, opp, 0.0)  # finite stand-ins
    mql_o = t_b + u[0] * 0.6 * (t_o - t_b)
    sql = np.where(has_opp, mql_o + u[1] * (t_o - mql_o), np.inf)

    # marketing-qualified without converting: strong bursts, or naive scoring of busy leads
    qual_t = _qualify(rng, b.start, b.strength, conv)
    qual = np.isfinite(qual_t)
    mql_b = inf.copy()
    np.minimum.at(mql_b, b.lead[qual], qual_t[qual])
    naive = (leads.kind != KIND_NORMAL) & (u[2] < 0.12 * np.minimum(leads.activity, 3))
    mql_naive = np.where(naive, leads.created + rng.exponential(30.0, n), np.inf)
    mql = np.where(has_opp, mql_o, np.minimum(mql_b, mql_naive))
    open_mql = ~has_opp & np.isfinite(mql)
    sql = np.where(
        open_mql & (u[3] < 0.25) & (leads.kind == KIND_NORMAL), mql + rng.exponential(10.0, n), sql
    )
    recycled = np.where(
        open_mql & (u[4] < 0.55),
        np.where(np.isfinite(sql), sql, mql) + 20 + rng.exponential(60.0, n),
        np.inf,
    )

    close_g = rng.gamma(2.0, 25.0, n)
    close = opp + 14.0 + close_g
    won, lost = _close(leads.fit, u, has_opp, close)
    amount = np.round(rng.lognormal(np.log(15_000) + 0.35 * np.log(leads.size / 100), 0.6), -2)
    return Funnel(
        mql=mql, sql=sql, opp=opp, won=won, lost=lost, recycled=recycled, amount=amount,
        conv=conv, cand=cand, qual_t=qual_t, u=u, close_g=close_g,
    )  # fmt: skip


def _close(
    fit: np.ndarray, u: np.ndarray, has_opp: np.ndarray, close: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(won, lost) times: an opportunity closes at `close`, won with a fit-driven chance."""
    is_won = u[5] < _sigmoid(-0.7 + 0.6 * np.clip(fit, -3, 3))
    return np.where(has_opp & is_won, close, np.inf), np.where(has_opp & ~is_won, close, np.inf)


def _outcomes(
    f: Funnel, lead_ids: pa.Array, start: np.datetime64, hi: float, lo: float = -np.inf
) -> pa.Table:
    """Stage rows recorded in [lo, hi) (days since `start`), sorted by lead and time."""
    names = ("mql", "sql", "opportunity", "won", "lost", "recycled")
    times = np.stack([f.mql, f.sql, f.opp, f.won, f.lost, f.recycled])
    codes = np.array([_ST[s] for s in names])
    ok = (times >= lo) & (times < hi)
    stage_i, lead = np.nonzero(ok)
    t = times[stage_i, lead]
    sec = np.floor(t * SEC_PER_DAY).astype(np.int64)
    order = np.lexsort((codes[stage_i], sec, lead))
    lead, stage_i, sec = lead[order], stage_i[order], sec[order]
    is_won = codes[stage_i] == _ST["won"]
    return pa.table(
        {
            "lead_id": lead_ids.take(pa.array(lead)),
            "stage": _strings(STAGES, codes[stage_i]),
            "stage_at": pa.array(start.astype(np.int64) + sec * 1_000_000, pa.timestamp("us")),
            "amount": pa.array(f.amount[lead], pa.float64(), mask=~is_won),
        }
    )


# ---------------------------------------------------------------------------------------------
# Sales feedback on MQLs (the optional `mql_feedback` table)
# ---------------------------------------------------------------------------------------------
_FEEDBACK_KEY = 2**31 + 3  # RNG stream tag of the feedback: no other table draws from it
FEEDBACK_COVERAGE = 0.92  # share of MQLs sales decide on (the rest are never worked)
FEEDBACK_DELAY = (0.25, 2.0, 1.5)  # days from MQL to decision: offset + gamma(shape, scale)
FEEDBACK_ACCEPT = (0.9, 0.12)  # P(accepted) when the lead reaches sql, when it does not
# Rejection reasons: base weight, and (what, multiplier) for the lead that makes it likelier.
# fmt: off
_REASON_W = {
    "no_budget": 1.0, "no_authority": 1.0, "no_need": 1.5, "bad_timing": 1.0,
    "bad_contact": 0.4, "duplicate": 0.35, "other": 0.6,
}
# fmt: on
_JUNIOR = np.isin(np.array(SENIORITY), ["individual", "student"])


@dataclass
class _FeedbackDraws:
    """Per lead uniforms and delays of the feedback, drawn before (and whatever) the funnel,
    so the history and its continuation decide every MQL the same way."""

    delay: np.ndarray
    u: np.ndarray  # 3 x n: coverage, acceptance, reason


def _feedback_draws(seed: int, key: tuple[int, ...], n: int) -> _FeedbackDraws:
    rng = np.random.default_rng(np.random.SeedSequence(seed % 2**64, spawn_key=(*key, _FEEDBACK_KEY)))
    off, shape, scale = FEEDBACK_DELAY
    return _FeedbackDraws(delay=off + rng.gamma(shape, scale, n), u=rng.random((3, n)))


def _reason_weights(leads: Leads, bounce: np.ndarray, decided: np.ndarray) -> np.ndarray:
    """n x len(FEEDBACK_REASONS) weights of the rejection reason, from what sales would see:
    a "no" to the BANT budget question, a junior title, a junk or bounced address, a far
    purchase timeline, a student."""
    t = leads.table
    no_budget = pc.fill_null(pc.invert(t.column("bant_budget")), False).to_numpy(zero_copy_only=False)
    far = pc.fill_null(pc.equal(t.column("bant_timeline"), "6-12 months"), False)
    far = far.to_numpy(zero_copy_only=False)
    bad_contact = (leads.kind == KIND_JUNK) | (bounce <= decided)
    lift = {
        "no_budget": np.where(no_budget, 5.0, 1.0),
        "no_authority": np.where(_JUNIOR[leads.seniority], 5.0, 1.0),
        "no_need": np.where(leads.kind == KIND_STUDENT, 3.0, 1.0),
        "bad_timing": np.where(far, 4.0, 1.0),
        "bad_contact": np.where(bad_contact, 20.0, 1.0),
    }
    return np.column_stack(
        [_REASON_W[r] * lift.get(r, np.ones(len(leads.kind))) for r in FEEDBACK_REASONS]
    )


def _feedback(
    leads: Leads,
    f: Funnel,
    bounce: np.ndarray,
    d: _FeedbackDraws,
    lead_ids: pa.Array,
    start: np.datetime64,
    hi: float,
    lo: float = -np.inf,
) -> pa.Table:
    """Sales' decisions recorded in [lo, hi) (days since `start`), one per MQL that sales
    works (FEEDBACK_COVERAGE), a few days after the MQL: accepted mostly when the lead goes
    on to sql, else rejected with a reason that depends on the lead; by lead."""
    decided = f.mql + d.delay
    ok = np.isfinite(f.mql) & (d.u[0] < FEEDBACK_COVERAGE) & (decided >= lo) & (decided < hi)
    accepted = d.u[1] < np.where(np.isfinite(f.sql), *FEEDBACK_ACCEPT)
    w = _reason_weights(leads, bounce, decided)
    cum = np.cumsum(w, axis=1)
    reason = np.minimum((cum < d.u[2][:, None] * cum[:, -1:]).sum(axis=1), len(FEEDBACK_REASONS) - 1)
    lead = np.flatnonzero(ok)
    sec = np.floor(decided[lead] * SEC_PER_DAY).astype(np.int64)
    return pa.table(
        {
            "lead_id": lead_ids.take(pa.array(lead)),
            "decided_at": pa.array(start.astype(np.int64) + sec * 1_000_000, pa.timestamp("us")),
            "accepted": pa.array(accepted[lead], pa.bool_()),
            "reason": _strings(FEEDBACK_REASONS, pa.array(reason[lead], mask=accepted[lead])),
        }
    )


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------
@dataclass
class _Ev:
    lead: np.ndarray
    t: np.ndarray
    et: np.ndarray
    ct: np.ndarray
    thin: bool = True  # subject to seasonal thinning


def _process(
    rng: np.random.Generator,
    lead: np.ndarray,
    t0: np.ndarray,
    mean: np.ndarray,
    decay: np.ndarray | None,
    span: np.ndarray | None,
    mix: Mix,
) -> _Ev:
    """Events of `mean` expected count per source, exponentially decaying from t0 (or uniform
    over `span` days when decay is None)."""
    count = rng.poisson(mean)
    src = np.repeat(np.arange(len(t0)), count)
    m = len(src)
    off = rng.exponential(decay[src]) if decay is not None else rng.random(m) * span[src]
    et, ct = _draw_mix(rng, m, mix)
    return _Ev(lead[src], t0[src] + off, et, ct)


_NURTURE_BY_KIND = (  # (lead kind, event mix, intensity multiplier)
    (KIND_NORMAL, NURTURE_MIX, 1.0),
    (KIND_STUDENT, STUDENT_MIX, 1.0),
    (KIND_JUNK, JUNK_MIX, 1.8),
)
_TRIGGERS = (("demo_request", 0.7, 2.0), ("pricing_page_view", 0.5, 4.0))  # (event, p, lag days)


def _events(
    rng: np.random.Generator,
    cfg: GenerateConfig,
    cal: Calendar,
    leads: Leads,
    b: Bursts,
    f: Funnel,
    canary: int | None,
) -> tuple[list[_Ev], np.ndarray, np.ndarray]:
    """Every event process of a chunk (before thinning), and the (unsubscribe, bounce) times."""
    n = len(leads.kind)
    idx = np.arange(n)
    scale = cfg.events_per_lead / EVENT_SCALE_REFERENCE / _mean_keep(cal)
    act = leads.activity * scale
    life = np.maximum(cal.cutoff - leads.created, 0.0)
    parts: list[_Ev] = []
    for k, mix, mult in _NURTURE_BY_KIND:
        m = leads.kind == k
        parts.append(
            _process(
                rng,
                idx[m],
                leads.created[m],
                act[m] * mult * NURTURE_PER_DAY * NURTURE_DECAY_DAYS,
                np.full(int(m.sum()), NURTURE_DECAY_DAYS),
                None,
                mix,
            )
        )
    parts.append(
        _process(rng, idx, leads.created, act * FLOOR_PER_DAY * life, None, life, FLOOR_MIX)
    )
    parts.append(
        _process(
            rng,
            b.lead,
            b.start,
            scale * BURST_EVENTS_PER_STRENGTH * b.strength,
            b.decay,
            None,
            BURST_MIX,
        )
    )
    has_opp = f.opp < cal.cutoff
    o = idx[has_opp]
    parts.append(
        _process(
            rng,
            o,
            f.opp[o],
            scale * POST_EVENTS * np.sqrt(leads.activity[o] + 0.5),
            np.full(len(o), POST_DECAY_DAYS),
            None,
            POST_MIX,
        )
    )

    # the trigger right before an opportunity: a demo request and/or pricing-page view
    for et, p, lag in _TRIGGERS:
        sel = o[rng.random(len(o)) < p]
        t = np.maximum(f.opp[sel] - rng.exponential(lag, len(sel)), leads.created[sel])
        parts.append(
            _Ev(sel, t, np.full(len(sel), _ET[et], np.int8), np.full(len(sel), -1, np.int8), False)
        )

    # unsubscribes and bounces: after them, no more email opens/clicks
    unsub, bounce = _stops(rng, leads)
    parts += _stop_events(unsub, bounce)
    stop = np.minimum(unsub, bounce)

    if canary is not None:  # a few events for the canary lead
        et = np.array(
            [_ET["web_visit"], _ET["email_open"], _ET["content_download"], _ET["email_click"]],
            np.int8,
        )
        ct = np.array([-1, -1, _CT["whitepaper"], -1], np.int8)
        parts.append(
            _Ev(
                np.full(4, canary),
                leads.created[canary] + np.array([0.01, 2.3, 2.31, 9.5]),
                et,
                ct,
                False,
            )
        )
    return [_suppress(p, stop) for p in parts], unsub, bounce


def _stops(rng: np.random.Generator, leads: Leads) -> tuple[np.ndarray, np.ndarray]:
    """(unsubscribe, bounce) time per lead, inf = never."""
    n = len(leads.kind)
    normal = leads.kind != KIND_JUNK
    unsub = np.where(
        rng.random(n) < np.where(normal, 0.08, 0.02), leads.created + rng.random(n) * 400, np.inf
    )
    bounce_p = np.where(normal, 0.01, 0.6)
    bounce = np.where(
        rng.random(n) < bounce_p,
        leads.created + rng.exponential(np.where(normal, 200.0, 2.0)),
        np.inf,
    )
    return unsub, bounce


def _stop_events(
    unsub: np.ndarray, bounce: np.ndarray, lo: float = -np.inf, hi: float = np.inf
) -> list[_Ev]:
    """Unsubscribe and bounce events at their times in [lo, hi) (never thinned)."""
    parts = []
    for et, t in (("unsubscribe", unsub), ("email_bounce", bounce)):
        sel = np.flatnonzero(np.isfinite(t) & (t >= lo) & (t < hi))
        parts.append(
            _Ev(
                sel,
                t[sel],
                np.full(len(sel), _ET[et], np.int8),
                np.full(len(sel), -1, np.int8),
                False,
            )
        )
    return parts


def _suppress(ev: _Ev, stop: np.ndarray) -> _Ev:
    """Drop email opens/clicks after the lead's unsubscribe or bounce."""
    keep = ~(np.isin(ev.et, _EMAIL_EVENTS) & (ev.t > stop[ev.lead]))
    return _Ev(ev.lead[keep], ev.t[keep], ev.et[keep], ev.ct[keep], ev.thin)


def _thin(rng: np.random.Generator, ev: _Ev, cal: Calendar) -> _Ev:
    """Keep events by seasonal weight of their day and hour; drop those after the cutoff."""
    inside = ev.t < cal.cutoff
    if ev.thin:
        day = np.minimum(ev.t, cal.cutoff - 1e-9).astype(np.int64)
        hour = ((ev.t - np.floor(ev.t)) * 24).astype(np.int64)
        inside &= rng.random(len(ev.t)) < cal.day_w[day] * HOUR_W[hour] / HOUR_W.max()
    return _Ev(ev.lead[inside], ev.t[inside], ev.et[inside], ev.ct[inside], ev.thin)


def _event_table(
    rng: np.random.Generator,
    cfg: GenerateConfig,
    cal: Calendar,
    parts: list[_Ev],
    lead_ids: pa.Array,
    chunk: int,
) -> tuple[pa.Table, int]:
    """Thin, concatenate, double-log a share of events, sort by lead and time, assign ids."""
    return _assemble_events(
        rng, cfg, cal.start, [_thin(rng, p, cal) for p in parts], lead_ids, chunk
    )


def _assemble_events(
    rng: np.random.Generator,
    cfg: GenerateConfig,
    start: np.datetime64,
    parts: list[_Ev],
    lead_ids: pa.Array,
    chunk: int,
    first_id: int = 0,
) -> tuple[pa.Table, int]:
    """Concatenate kept events, double-log a share, sort by lead and time, assign ids
    E<chunk>-<first_id + i>."""
    lead = np.concatenate([p.lead for p in parts]).astype(np.int64)
    sec = np.floor(np.concatenate([p.t for p in parts]) * SEC_PER_DAY).astype(np.int64)
    et = np.concatenate([p.et for p in parts])
    ct = np.concatenate([p.ct for p in parts])
    dup = np.flatnonzero(rng.random(len(lead)) < cfg.duplicate_event_share)
    lead, sec, et, ct = (np.concatenate([a, a[dup]]) for a in (lead, sec, et, ct))
    order = np.argsort((lead << 32) | sec, kind="stable")
    lead, sec, et, ct = lead[order], sec[order], et[order], ct[order]
    ids = _join(
        f"E{chunk:04d}-",
        pc.utf8_lpad(
            pc.cast(pa.array(first_id + np.arange(len(lead))), pa.string()), width=9, padding="0"
        ),
    )
    table = pa.table(
        {
            "event_id": ids,
            "lead_id": lead_ids.take(pa.array(lead)),
            "occurred_at": pa.array(start.astype(np.int64) + sec * 1_000_000, pa.timestamp("us")),
            "event_type": _strings(EVENT_TYPES, et),
            "content_type": _strings(CONTENT_TYPES, pa.array(ct, mask=ct < 0)),
        }
    )
    return table, len(dup)


# ---------------------------------------------------------------------------------------------
# Chunks and the DuckDB file
# ---------------------------------------------------------------------------------------------
def _chunk_bounds(cfg: GenerateConfig) -> list[tuple[int, int]]:
    return [
        (a, min(a + cfg.chunk_leads, cfg.n_leads)) for a in range(0, cfg.n_leads, cfg.chunk_leads)
    ]


def _canary_index(cfg: GenerateConfig, seed: int) -> int:
    rng = np.random.default_rng(np.random.SeedSequence(seed % 2**64, spawn_key=(2**31,)))
    return int(rng.integers(cfg.n_leads))


@dataclass
class _ChunkState:
    """The hidden story of one chunk's leads, kept to continue them past the cutoff."""

    leads: Leads
    bursts: Bursts
    funnel: Funnel
    unsub: np.ndarray
    bounce: np.ndarray
    lead_ids: pa.Array
    n_events: int  # event rows written for the chunk (the continuation numbers on from here)


def chunk_tables(
    cfg: GenerateConfig, seed: int, chunk: int
) -> tuple[dict[str, pa.Table], dict[str, int]]:
    """Arrow tables (leads, events, outcomes, mql_feedback) of one chunk, plus counters for
    the summary."""
    tables, stats, _ = _simulate_chunk(cfg, seed, chunk)
    return tables, stats


def _simulate_chunk(
    cfg: GenerateConfig, seed: int, chunk: int
) -> tuple[dict[str, pa.Table], dict[str, int], _ChunkState]:
    """`chunk_tables`, plus the chunk's hidden state."""
    first, last = _chunk_bounds(cfg)[chunk]
    cal = make_calendar(cfg)
    rng = np.random.default_rng(np.random.SeedSequence(seed % 2**64, spawn_key=(chunk,)))
    c = _canary_index(cfg, seed) - first
    canary = c if 0 <= c < last - first else None
    leads = _leads(rng, cfg, cal, first, last - first, canary)
    bursts = _bursts(rng, leads)
    funnel = _funnel(rng, leads, bursts)
    lead_ids = leads.table.column("lead_id").combine_chunks()
    parts, unsub, bounce = _events(rng, cfg, cal, leads, bursts, funnel, canary)
    events, n_dup = _event_table(rng, cfg, cal, parts, lead_ids, chunk)
    outcomes = _outcomes(funnel, lead_ids, cal.start, cal.cutoff)
    draws = _feedback_draws(seed, (chunk,), last - first)
    feedback = _feedback(leads, funnel, bounce, draws, lead_ids, cal.start, cal.cutoff)
    stats = {
        "duplicate_events": n_dup,
        "junk_leads": int((leads.kind == KIND_JUNK).sum()),
        "student_leads": int((leads.kind == KIND_STUDENT).sum()),
        "intent_bursts": len(bursts.lead),
    }
    state = _ChunkState(leads, bursts, funnel, unsub, bounce, lead_ids, len(events))
    tables = {"leads": leads.table, "events": events, "outcomes": outcomes, "mql_feedback": feedback}
    return tables, stats, state


_PANDAS_TYPES = {pa.int32(): pd.Int32Dtype(), pa.bool_(): pd.BooleanDtype()}


def generate_chunks(cfg: GenerateConfig, seed: int) -> Iterator[dict[str, pd.DataFrame]]:
    """Yield {'leads', 'events', 'outcomes', 'mql_feedback'} DataFrames, one chunk of `cfg.chunk_leads` leads
    at a time. Same cfg and seed give identical frames; chunks are independent."""
    for chunk in range(len(_chunk_bounds(cfg))):
        tables, _ = chunk_tables(cfg, seed, chunk)
        yield {name: t.to_pandas(types_mapper=_PANDAS_TYPES.get) for name, t in tables.items()}


def create_table_sql(table: Table) -> str:
    cols = ", ".join(f'"{c}" {t}' for c, t in table.columns.items())
    return f"CREATE TABLE {table.name} ({cols})"


def _create_tables(con: duckdb.DuckDBPyConnection, *, optional: bool = True) -> None:
    for table in (*TABLES.values(), *(OPTIONAL_TABLES.values() if optional else ())):
        con.execute(create_table_sql(table))


def _insert(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> None:
    cols = ", ".join(f'"{c}"' for c in {**TABLES, **OPTIONAL_TABLES}[name].columns)
    con.register("_chunk", data)
    try:
        con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM _chunk")
    finally:
        con.unregister("_chunk")


def write_empty_crm(path: str | Path) -> None:
    """Write a DuckDB file with the three CRM tables and no rows (atomically); no optional
    table (an empty CRM has no sales feedback)."""
    with atomic_path(path) as tmp:
        con = quiet(duckdb.connect(str(tmp)))
        try:
            _create_tables(con, optional=False)
        finally:
            con.close()


def first_as_of(cfg: GenerateConfig) -> dt.date:
    """First day of the month three months after `cfg.start` (the default scoring start)."""
    m = cfg.start.year * 12 + cfg.start.month - 1 + 3
    return dt.date(m // 12, m % 12 + 1, 1)


def measure_base_rate(
    con: duckdb.DuckDBPyConnection,
    cutoff: dt.date,
    as_of_start: dt.date,
    *,
    horizon_days: int = 90,
    max_age_days: int = 365,
    every_months: int = 1,
    target_stage: str = "opportunity",
) -> tuple[float, int]:
    """(share of eligible (lead, as_of) pairs reaching `target_stage` within the horizon, pairs).

    Eligible: created before as_of, at most `max_age_days` old, not yet at a closing stage.
    Only as_of dates whose label window ends by the cutoff count.
    """
    closing = ", ".join(f"'{s}'" for s in CLOSING_STAGES)
    row = con.execute(
        f"""
        WITH as_of AS (
            SELECT unnest(generate_series(TIMESTAMP '{as_of_start}', TIMESTAMP '{cutoff}'
                   - INTERVAL {horizon_days} DAY, INTERVAL {every_months} MONTH)) AS as_of),
        closed AS (SELECT lead_id, min(stage_at) AS t FROM outcomes
                   WHERE stage IN ({closing}) GROUP BY lead_id),
        target AS (SELECT lead_id, min(stage_at) AS t FROM outcomes
                   WHERE stage = '{target_stage}' GROUP BY lead_id)
        SELECT count(*) AS pairs,
               avg(CASE WHEN g.t >= a.as_of AND g.t < a.as_of + INTERVAL {horizon_days} DAY
                   THEN 1.0 ELSE 0.0 END) AS rate
        FROM leads l
        JOIN as_of a ON l.created_at < a.as_of
                    AND l.created_at >= a.as_of - INTERVAL {max_age_days} DAY
        LEFT JOIN closed c ON c.lead_id = l.lead_id
        LEFT JOIN target g ON g.lead_id = l.lead_id
        WHERE c.t IS NULL OR c.t >= a.as_of
        """
    ).fetchone()
    return float(row[1] or 0.0), int(row[0])


def _summary(
    con: duckdb.DuckDBPyConnection, cfg: GenerateConfig, stats: dict[str, int]
) -> dict[str, Any]:
    """Counts, base rate and null shares: no PII."""
    n_leads, n_events, n_outcomes = (
        con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("leads", "events", "outcomes")
    )
    stages = dict(
        con.execute("SELECT stage, count(DISTINCT lead_id) FROM outcomes GROUP BY 1").fetchall()
    )
    nulls = con.execute(
        "SELECT avg((job_title IS NULL)::INT), avg((company_size IS NULL)::INT), "
        "avg((annual_revenue IS NULL)::INT), avg((industry IS NULL)::INT), avg((country IS NULL)::INT) FROM leads"
    ).fetchone()
    rate, pairs = measure_base_rate(con, cfg.end, first_as_of(cfg))
    n_feedback, n_accepted = con.execute(
        "SELECT count(*), count_if(accepted) FROM mql_feedback"
    ).fetchone()
    return {
        "leads": n_leads,
        "events": n_events,
        "outcomes": n_outcomes,
        "mql_feedback": n_feedback,
        "mql_feedback_accepted": int(n_accepted or 0),
        "events_per_lead": round(n_events / max(n_leads, 1), 2),
        "leads_by_stage": {s: int(stages.get(s, 0)) for s in STAGES},
        "base_rate": round(rate, 4),
        "base_rate_pairs": pairs,
        "null_share": {
            k: round(float(v), 4)
            for k, v in zip(
                ("job_title", "company_size", "annual_revenue", "industry", "country"),
                nulls,
                strict=True,
            )
        },
        **stats,
        "window": [str(cfg.start), str(cfg.end)],
    }


def generate_crm(
    cfg: GenerateConfig, seed: int, path: str | Path, *, progress: bool | None = None
) -> dict[str, Any]:
    """Generate the synthetic CRM into a new DuckDB file at `path`, atomically.

    Chunks are inserted one by one, so memory stays bounded. Returns a summary (row counts,
    base rate, null shares, timing) without any personal data. `progress`: a bar of leads
    on stderr, advanced per chunk (None: when stderr is a terminal; `leadscore.progress`).
    """
    t0 = time.perf_counter()
    stats: dict[str, int] = {}
    with atomic_path(path) as tmp, bar(
        total=cfg.n_leads, unit="lead", desc="generate", progress=progress
    ) as pbar:
        con = quiet(duckdb.connect(str(tmp)))
        try:
            _create_tables(con)
            for chunk, (first, last) in enumerate(_chunk_bounds(cfg)):
                tables, chunk_stats = chunk_tables(cfg, seed, chunk)
                for name, data in tables.items():
                    _insert(con, name, data)
                for k, v in chunk_stats.items():
                    stats[k] = stats.get(k, 0) + v
                del tables
                log.debug("chunk %d inserted", chunk)
                pbar.update(last - first)
            pbar.set_postfix_str("summary")
            summary = _summary(con, cfg, stats)
            con.execute("CHECKPOINT")
        finally:
            con.close()
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary


# ---------------------------------------------------------------------------------------------
# The next quarter: the same CRM continued past cfg.end, with shifted behaviour
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuarterShift:
    """How behaviour changes after `cfg.end` in `generate_next_quarter`.

    The defaults are a slow quarter with a new channel and a case-study campaign; `NO_SHIFT`
    continues the history's behaviour unchanged.

    new_source: a lead source that first appears after the cutoff (None: none). It takes
        `new_source_share` of the new normal and student leads (junk never comes through it)
        and adds `new_source_fit` to their fit log-odds (the history's best, referral, adds 0.6).
    case_study_lift, whitepaper_lift: the campaign. Log-odds added to a conversion decided
        after the cutoff when the lead downloaded a case study (whitepaper) in the
        CAMPAIGN_LOOKBACK_DAYS before the candidate opportunity time, from the cutoff on.
    conversion_shift: log-odds added to every conversion decided after the cutoff (the
        history's base is CONVERSION_OFFSET).
    lead_volume: new leads per day relative to the history's seasonal rate for those days.
    activity: event intensity after the cutoff relative to the history (every lead).
    """

    new_source: str | None = "partner_referral"
    new_source_share: float = 0.15
    new_source_fit: float = 1.2
    case_study_lift: float = 2.0
    whitepaper_lift: float = -1.5
    conversion_shift: float = -1.0
    lead_volume: float = 0.6
    activity: float = 0.75

    def __post_init__(self) -> None:
        if self.new_source is not None and (
            not self.new_source.strip() or self.new_source in SOURCES
        ):
            raise ValueError(
                f"QuarterShift.new_source must be a new, non-empty source name, not "
                f"{self.new_source!r} (the history's sources: {', '.join(SOURCES)})"
            )
        if not 0.0 <= self.new_source_share < 1.0:
            raise ValueError(
                f"QuarterShift.new_source_share must be in [0, 1), not {self.new_source_share}"
            )
        for name in ("lead_volume", "activity"):
            if not getattr(self, name) > 0:
                raise ValueError(f"QuarterShift.{name} must be > 0, not {getattr(self, name)}")

    def sources(self) -> SourceModel:
        """The source mix of leads created after the cutoff."""
        if self.new_source is None:
            return HISTORY_SOURCES
        share = np.array([self.new_source_share, self.new_source_share, 0.0])
        return SourceModel(
            names=(*SOURCES, self.new_source),
            p=np.column_stack([SOURCE_P * (1.0 - share)[:, None], share]),
            fit=np.append(SOURCE_FIT, self.new_source_fit),
        )


DEFAULT_SHIFT = QuarterShift()
NO_SHIFT = QuarterShift(
    new_source=None,
    new_source_share=0.0,
    case_study_lift=0.0,
    whitepaper_lift=0.0,
    conversion_shift=0.0,
    lead_volume=1.0,
    activity=1.0,
)
CAMPAIGN_LOOKBACK_DAYS = 30.0  # a download counts for conversions up to this many days later
_TAIL_DAYS = 400  # seasonal weights past the new end (burst events decide conversions there)
_NEXT_KEY = 2**31 + 1  # RNG stream tags of the continuation (2**31 is the canary's)
_NEW_LEADS_KEY = 2**31 + 2


def next_quarter_end(cfg: GenerateConfig, quarters: int = 1) -> dt.date:
    """The new data cutoff of `generate_next_quarter`: cfg.end plus 3 x `quarters` months,
    clamped to the month's last day (2025-11-30 + 1 quarter = 2026-02-28)."""
    if quarters < 1:
        raise ValueError(f"quarters must be >= 1, not {quarters}")
    m = cfg.end.year * 12 + cfg.end.month - 1 + 3 * quarters
    year, month = m // 12, m % 12 + 1
    return dt.date(year, month, min(cfg.end.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class _Window:
    """The continuation [c0, c1) in days since cfg.start, and what its processes share."""

    cal: Calendar  # cutoff c1; day_w runs _TAIL_DAYS past it, normalised like the history's
    c0: int  # the history's cutoff
    c1: int  # the new end
    scale: float  # event intensity: the history's, times shift.activity
    shift: QuarterShift


def _window(cfg: GenerateConfig, new_end: dt.date, shift: QuarterShift) -> _Window:
    hist = make_calendar(cfg)
    start = np.datetime64(cfg.start, "D")
    c1 = (new_end - cfg.start).days
    raw_max = _raw_day_weights(start, hist.n_days).max()
    w = np.minimum(_raw_day_weights(start, c1 + _TAIL_DAYS) / raw_max, 1.0)
    scale = cfg.events_per_lead / EVENT_SCALE_REFERENCE / _mean_keep(hist) * shift.activity
    return _Window(Calendar(hist.start, c1, w), hist.n_days, c1, scale, shift)


def _decaying(
    rng: np.random.Generator,
    lead: np.ndarray,
    t0: np.ndarray,
    mean: np.ndarray,
    decay: np.ndarray,
    lo: float,
    hi: float,
    mix: Mix,
) -> tuple[_Ev, np.ndarray]:
    """The part in [lo, hi) of processes of `mean` expected events decaying exponentially
    (mean lifetime `decay`) from t0, drawn directly (truncated exponential); also the source
    row of every event."""
    s_lo = np.exp(-np.maximum(lo - t0, 0.0) / decay)
    s_hi = np.exp(-np.maximum(hi - t0, 0.0) / decay)
    src = np.repeat(np.arange(len(t0)), rng.poisson(mean * (s_lo - s_hi)))
    a, b = s_lo[src], s_hi[src]
    t = t0[src] - decay[src] * np.log(a - rng.random(len(src)) * (a - b))
    et, ct = _draw_mix(rng, len(src), mix)
    return _Ev(lead[src], np.maximum(t, lo), et, ct), src


def _uniform(
    rng: np.random.Generator,
    lead: np.ndarray,
    rate: np.ndarray,
    t_from: np.ndarray,
    hi: float,
    mix: Mix,
) -> _Ev:
    """Events at `rate` per day, uniform over [t_from, hi)."""
    span = np.maximum(hi - t_from, 0.0)
    src = np.repeat(np.arange(len(t_from)), rng.poisson(rate * span))
    et, ct = _draw_mix(rng, len(src), mix)
    return _Ev(lead[src], t_from[src] + rng.random(len(src)) * span[src], et, ct)


def _keep_mask(rng: np.random.Generator, t: np.ndarray, day_w: np.ndarray) -> np.ndarray:
    """Seasonal thinning by the weight of each event's day and hour (no cutoff)."""
    day = np.clip(t, 0, len(day_w) - 1).astype(np.int64)
    hour = ((t - np.floor(t)) * 24).astype(np.int64)
    return rng.random(len(t)) < day_w[day] * HOUR_W[hour] / HOUR_W.max()


def _subset(ev: _Ev, keep: np.ndarray, thin: bool) -> _Ev:
    return _Ev(ev.lead[keep], ev.t[keep], ev.et[keep], ev.ct[keep], thin)


def _burst_window(rng: np.random.Generator, win: _Window, b: Bursts, sel: np.ndarray) -> _Ev:
    """Thinned events from c0 on (past c1 too: they feed conversion decisions) of bursts `sel`."""
    ev, _ = _decaying(
        rng,
        b.lead[sel],
        b.start[sel],
        win.scale * BURST_EVENTS_PER_STRENGTH * b.strength[sel],
        b.decay[sel],
        win.c0,
        np.inf,
        BURST_MIX,
    )
    return _subset(ev, _keep_mask(rng, ev.t, win.cal.day_w), False)


def _content_effect(win: _Window, parts: list[_Ev], lead: np.ndarray) -> Logit:
    """Extra log-odds of conversions decided after c0 (`lead`: each decision's lead): the
    campaign's case-study (whitepaper) lift when the lead downloaded one in the
    CAMPAIGN_LOOKBACK_DAYS before the candidate opportunity time, counting from c0 on (the
    campaign's content is new). `parts` are the events drawn so far (thinned)."""
    ev_lead = np.concatenate([p.lead for p in parts]).astype(np.float64)
    ev_t = np.concatenate([p.t for p in parts])
    ev_ct = np.concatenate([p.ct for p in parts])
    span = 2.0 ** np.ceil(np.log2(max(win.cal.day_w.size, 2)))  # > every time: key = lead, t
    keys = {
        value: np.sort((ev_lead * span + ev_t)[ev_ct == _CT[content]])
        for content, value in (
            ("case_study", win.shift.case_study_lift),
            ("whitepaper", win.shift.whitepaper_lift),
        )
        if value != 0.0
    }

    def extra(cand: np.ndarray) -> np.ndarray:
        lift = np.zeros(len(cand))
        base = lead.astype(np.float64) * span
        lo = base + np.maximum(cand - CAMPAIGN_LOOKBACK_DAYS, win.c0)
        hi = base + cand
        for value, k in keys.items():
            seen = np.searchsorted(k, hi) > np.searchsorted(k, lo)
            lift += value * seen
        return lift

    return extra


def _continue_funnel(
    rng: np.random.Generator,
    leads: Leads,
    b: Bursts,
    f: Funnel,
    nb: np.ndarray,
    conv_n: np.ndarray,
    cand_n: np.ndarray,
    qual_n: np.ndarray,
    c0: float,
) -> tuple[Funnel, int]:
    """The funnel with the bursts `nb` (those starting at or after c0) decided anew.

    A lead whose opportunity (time, so burst) is unchanged keeps its whole latent story. For
    the others ("changed"), every stage recorded before c0 stays as it is and the rest is
    drawn at or after c0, so the history is never contradicted: with an opportunity, mql
    and sql are the recorded ones or fall in [c0, opportunity]; without one (only a burst
    from c0 on had converted, so nothing of the lead was recorded), qualification restarts
    from the bursts' qualification times at or after c0. Returns (funnel, changed leads).
    """
    n = len(leads.kind)
    conv, cand, qual_t = f.conv.copy(), f.cand.copy(), f.qual_t.copy()
    conv[nb], cand[nb], qual_t[nb] = conv_n, cand_n, qual_n
    opp = np.full(n, np.inf)
    np.minimum.at(opp, b.lead[conv], cand[conv])
    hit = conv & (cand == opp[b.lead])
    t_b = np.full(n, np.inf)
    t_b[b.lead[hit]] = b.start[hit]
    has = np.isfinite(opp)
    affected = np.zeros(n, bool)
    affected[b.lead[nb]] = True
    changed = affected & (opp != f.opp)
    u = f.u

    h_mql = np.where(f.mql < c0, f.mql, np.inf)  # recorded in the history
    h_sql = np.where(f.sql < c0, f.sql, np.inf)
    t_o = np.where(has, opp, c0)
    lo = np.maximum(np.where(has, t_b, c0), c0)
    mql_o = np.where(np.isfinite(h_mql), h_mql, lo + u[0] * 0.6 * (t_o - lo))
    lo = np.maximum(mql_o, c0)
    sql_o = np.where(np.isfinite(h_sql), h_sql, lo + u[1] * (t_o - lo))

    q = qual_t >= c0  # inf (never) included, harmless for a minimum
    mql_b = np.full(n, np.inf)
    np.minimum.at(mql_b, b.lead[q], qual_t[q])
    sql_b = np.where(np.isfinite(mql_b) & (u[3] < 0.25), mql_b + rng.exponential(10.0, n), np.inf)
    rec_b = np.where(
        np.isfinite(mql_b) & (u[4] < 0.55),
        np.where(np.isfinite(sql_b), sql_b, mql_b) + 20 + rng.exponential(60.0, n),
        np.inf,
    )
    won, lost = _close(leads.fit, u, has, opp + 14.0 + f.close_g)

    def pick(new: np.ndarray, old: np.ndarray) -> np.ndarray:
        return np.where(changed, new, old)

    funnel = Funnel(
        mql=pick(np.where(has, mql_o, mql_b), f.mql),
        sql=pick(np.where(has, sql_o, sql_b), f.sql),
        opp=pick(opp, f.opp),
        won=pick(won, f.won),
        lost=pick(lost, f.lost),
        recycled=pick(np.where(has, np.inf, rec_b), f.recycled),
        amount=f.amount,
        conv=conv,
        cand=cand,
        qual_t=qual_t,
        u=u,
        close_g=f.close_g,
    )
    return funnel, int(changed.sum())


def _background(rng: np.random.Generator, win: _Window, leads: Leads) -> list[_Ev]:
    """Thinned nurture and newsletter events in [c0, c1): the processes continued (or
    started) past c0. They come first because the campaign's conversions look at them."""
    n = len(leads.kind)
    idx = np.arange(n)
    act = leads.activity * win.scale
    parts = []
    for k, mix, mult in _NURTURE_BY_KIND:
        m = leads.kind == k
        parts.append(
            _decaying(
                rng,
                idx[m],
                leads.created[m],
                act[m] * mult * NURTURE_PER_DAY * NURTURE_DECAY_DAYS,
                np.full(int(m.sum()), NURTURE_DECAY_DAYS),
                win.c0,
                win.c1,
                mix,
            )[0]
        )
    floor_from = np.maximum(leads.created, win.c0)
    parts.append(_uniform(rng, idx, act * FLOOR_PER_DAY, floor_from, win.c1, FLOOR_MIX))
    return [_subset(p, _keep_mask(rng, p.t, win.cal.day_w), False) for p in parts]


def _continue_events(
    rng: np.random.Generator,
    win: _Window,
    leads: Leads,
    early: list[_Ev],
    opp: np.ndarray,
    unsub: np.ndarray,
    bounce: np.ndarray,
) -> list[_Ev]:
    """Every event in [c0, c1): the `early` ones (background and burst events, thinned), the
    post-opportunity process continued (or started) past c0, a demo request and/or
    pricing-page view before each opportunity in the window (never before c0),
    unsubscribes and bounces; no email opens or clicks after an unsubscribe or bounce."""
    idx = np.arange(len(leads.kind))
    parts = list(early)
    o = idx[opp < win.c1]
    parts.append(
        _decaying(
            rng,
            o,
            opp[o],
            win.scale * POST_EVENTS * np.sqrt(leads.activity[o] + 0.5),
            np.full(len(o), POST_DECAY_DAYS),
            win.c0,
            win.c1,
            POST_MIX,
        )[0]
    )
    o = idx[(opp >= win.c0) & (opp < win.c1)]
    for et, p, lag in _TRIGGERS:
        sel = o[rng.random(len(o)) < p]
        t = np.maximum(opp[sel] - rng.exponential(lag, len(sel)), leads.created[sel])
        # a trigger cannot enter the frozen history: spread it over [c0, opportunity) instead
        t = np.where(t < win.c0, win.c0 + rng.random(len(sel)) * (opp[sel] - win.c0), t)
        parts.append(
            _Ev(sel, t, np.full(len(sel), _ET[et], np.int8), np.full(len(sel), -1, np.int8), False)
        )
    parts += _stop_events(unsub, bounce, win.c0, win.c1)
    stop = np.minimum(unsub, bounce)
    out = []
    for part in parts:
        ev = _suppress(part, stop)
        keep = (ev.t >= win.c0) & (ev.t < win.c1)
        if ev.thin:
            keep &= _keep_mask(rng, ev.t, win.cal.day_w)
        out.append(_subset(ev, keep, False))
    return out


def _continue_chunk(
    cfg: GenerateConfig, seed: int, chunk: int, state: _ChunkState, win: _Window
) -> tuple[dict[str, pa.Table], dict[str, int]]:
    """Events and outcomes in [c0, c1) of one history chunk's leads."""
    rng = np.random.default_rng(np.random.SeedSequence(seed % 2**64, spawn_key=(chunk, _NEXT_KEY)))
    leads, b, shift = state.leads, state.bursts, win.shift
    nb = np.flatnonzero(b.start >= win.c0)
    early = [
        *_background(rng, win, leads),
        _burst_window(rng, win, b, np.flatnonzero(b.start < win.c1)),
    ]
    conv_n, cand_n = _decide(
        rng,
        leads.fit[b.lead[nb]],
        b.start[nb],
        b.strength[nb],
        CONVERSION_OFFSET + shift.conversion_shift,
        _content_effect(win, early, b.lead[nb]),
    )
    qual_n = _qualify(rng, b.start[nb], b.strength[nb], conv_n)
    funnel, n_changed = _continue_funnel(
        rng, leads, b, state.funnel, nb, conv_n, cand_n, qual_n, win.c0
    )
    parts = _continue_events(rng, win, leads, early, funnel.opp, state.unsub, state.bounce)
    events, n_dup = _assemble_events(
        rng, cfg, win.cal.start, parts, state.lead_ids, chunk, state.n_events
    )
    outcomes = _outcomes(funnel, state.lead_ids, win.cal.start, win.c1, win.c0)
    draws = _feedback_draws(seed, (chunk,), len(leads.kind))  # the history's: same decisions
    feedback = _feedback(
        leads, funnel, state.bounce, draws, state.lead_ids, win.cal.start, win.c1, win.c0
    )
    return {"events": events, "outcomes": outcomes, "mql_feedback": feedback}, {
        "duplicate_events": n_dup,
        "changed_leads": n_changed,
    }


def _new_leads_chunk(
    cfg: GenerateConfig, seed: int, part: int, first: int, n: int, chunk: int, win: _Window
) -> tuple[dict[str, pa.Table], dict[str, int]]:
    """Leads created in [c0, c1) (their ids from `first` on), with their events and outcomes
    up to c1; every conversion follows the shifted behaviour."""
    rng = np.random.default_rng(
        np.random.SeedSequence(seed % 2**64, spawn_key=(_NEW_LEADS_KEY, part))
    )
    shift = win.shift
    leads = _leads(
        rng, cfg, win.cal, first, n, None, sources=shift.sources(), days=(win.c0, win.c1)
    )
    b = _bursts(rng, leads)
    early = [
        *_background(rng, win, leads),
        _burst_window(rng, win, b, np.flatnonzero(b.start < win.c1)),
    ]
    funnel = _funnel(
        rng,
        leads,
        b,
        offset=CONVERSION_OFFSET + shift.conversion_shift,
        extra=_content_effect(win, early, b.lead),
    )
    unsub, bounce = _stops(rng, leads)
    lead_ids = leads.table.column("lead_id").combine_chunks()
    parts = _continue_events(rng, win, leads, early, funnel.opp, unsub, bounce)
    events, n_dup = _assemble_events(rng, cfg, win.cal.start, parts, lead_ids, chunk)
    outcomes = _outcomes(funnel, lead_ids, win.cal.start, win.c1, win.c0)
    draws = _feedback_draws(seed, (_NEW_LEADS_KEY, part), n)
    feedback = _feedback(leads, funnel, bounce, draws, lead_ids, win.cal.start, win.c1, win.c0)
    stats = {
        "duplicate_events": n_dup,
        "junk_leads": int((leads.kind == KIND_JUNK).sum()),
        "student_leads": int((leads.kind == KIND_STUDENT).sum()),
        "intent_bursts": len(b.lead),
    }
    tables = {"leads": leads.table, "events": events, "outcomes": outcomes, "mql_feedback": feedback}
    return tables, stats


def next_quarter_leads(
    cfg: GenerateConfig, shift: QuarterShift = DEFAULT_SHIFT, *, quarters: int = 1
) -> int:
    """How many leads `generate_next_quarter` creates after cfg.end: the history's seasonal
    rate for those days times `shift.lead_volume`."""
    win = _window(cfg, next_quarter_end(cfg, quarters), shift)
    hist_w = make_calendar(cfg).day_w.sum()
    return round(cfg.n_leads * win.cal.day_w[win.c0 : win.c1].sum() / hist_w * shift.lead_volume)


def generate_next_quarter(
    cfg: GenerateConfig,
    seed: int,
    path: str | Path,
    *,
    quarters: int = 1,
    shift: QuarterShift = DEFAULT_SHIFT,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Write the CRM of `generate_crm(cfg, seed)` continued by `quarters` quarters, atomically.

    The file covers cfg.start .. new_end = cfg.end + 3 x `quarters` months; nothing is
    recorded at or after midnight starting new_end. Every row up to cfg.end is the row
    `generate_crm(cfg, seed, ...)` writes (same ids, same values; inserted first, in the same
    order): the history is re-simulated chunk by chunk and its hidden story (fit, activity,
    intent bursts, latent funnel, unsubscribe and bounce times) is carried on.

    After cfg.end, with RNG streams of their own:

    * existing leads keep their nurture, newsletter, burst and post-opportunity processes
      (their parts past cfg.end, drawn as truncated exponentials, which is exact for
      Poisson processes); their unsubscribes, bounces, opportunities, wins and losses that
      were already latent happen on schedule, and may convert in the new quarter;
    * every intent burst starting at or after cfg.end decides its conversion under `shift`
      (base-rate shift; case-study and whitepaper lifts from the lead's downloads since
      cfg.end, those drawn up to the new end); a burst that started before keeps its
      decision, so opportunities of bursts already under way still land;
    * new leads arrive at the history's seasonal rate times `shift.lead_volume`, some
      through `shift.new_source`;
    * event intensity is scaled by `shift.activity`.

    Outcomes stay consistent: a lead whose opportunity changes keeps every stage already
    recorded, and its new stages are ordered mql <= sql <= opportunity <= won/lost, none
    before cfg.end. Note that `quarters=2` is one draw over six months, not `quarters=1`
    continued. Returns `generate_crm`'s summary over the whole window, plus `history_end`,
    `quarters`, the `shift` and counts of the continuation (`next_quarter`). `progress`: a
    bar of chunks on stderr (None: when stderr is a terminal; `leadscore.progress`).
    """
    t0 = time.perf_counter()
    new_end = next_quarter_end(cfg, quarters)
    win = _window(cfg, new_end, shift)
    n_new = next_quarter_leads(cfg, shift, quarters=quarters)
    hist_chunks = len(_chunk_bounds(cfg))
    stats: dict[str, int] = {}
    added = {"leads": 0, "events": 0, "outcomes": 0, "mql_feedback": 0, "changed_leads": 0}

    def count(chunk_stats: dict[str, int]) -> None:
        for k, v in chunk_stats.items():
            if k == "changed_leads":
                added[k] += v
            else:
                stats[k] = stats.get(k, 0) + v

    n_parts = -(-n_new // cfg.chunk_leads)
    with atomic_path(path) as tmp, bar(
        total=hist_chunks + n_parts, unit="chunk", desc="next quarter", progress=progress
    ) as pbar:
        con = quiet(duckdb.connect(str(tmp)))
        try:
            _create_tables(con)
            later: list[dict[str, pa.Table]] = []  # inserted after the history, kept small
            for chunk in range(hist_chunks):
                tables, chunk_stats, state = _simulate_chunk(cfg, seed, chunk)
                for name, data in tables.items():
                    _insert(con, name, data)
                count(chunk_stats)
                cont, cont_stats = _continue_chunk(cfg, seed, chunk, state, win)
                later.append(cont)
                count(cont_stats)
                del tables, state
                pbar.update()
            later_chunks = [
                (part, a, min(a + cfg.chunk_leads, n_new))
                for part, a in enumerate(range(0, n_new, cfg.chunk_leads))
            ]
            for part, a, b in later_chunks:
                tables, chunk_stats = _new_leads_chunk(
                    cfg, seed, part, cfg.n_leads + a, b - a, hist_chunks + part, win
                )
                later.append(tables)
                count(chunk_stats)
                pbar.update()
            for tables in later:
                for name, data in tables.items():
                    _insert(con, name, data)
                    added[name] += data.num_rows
            summary = _summary(con, cfg.model_copy(update={"end": new_end}), stats)
            con.execute("CHECKPOINT")
        finally:
            con.close()
    summary.update(
        history_end=str(cfg.end),
        quarters=quarters,
        shift=asdict(shift),
        next_quarter=added,
        seconds=round(time.perf_counter() - t0, 2),
    )
    return summary
