"""Seniority and department parsed from free-text job titles.

The rules are ordered regular expressions (first match wins), rendered as one SQL CASE so
DuckDB parses millions of titles in a single pass. `parse_title` applies the same rules in
Python for tests and single-lead explanations.
"""

from __future__ import annotations

import re

# Titles that carry no information (junk or placeholders) map to "unknown".
_JUNK = r"^(x+|n/?a|none|null|-+|\.+|test\w*|asdf\w*|qwerty|\?+|\d+)$"

SENIORITY_RULES: tuple[tuple[str, str], ...] = (
    ("student", r"\b(student|intern|internship|trainee|apprentice|phd candidate)\b"),
    ("vp", r"\b(vp|svp|evp|avp|vice[ -]?pres\w*)\b"),
    ("c_level", r"\b(ceo|cfo|cto|cio|cmo|coo|cro|cdo|ciso|chief|founder|co-?founder|owner|president|managing partner)\b"),
    ("director", r"\b(dir\w*|direct\w*|head)\b"),
    ("manager", r"\b(manager|mgr|manger|managr|supervisor|team lead)\b"),
    ("senior_ic", r"\b(senior|sr|principal|staff|lead)\b"),
)
SENIORITY_LEVELS: tuple[str, ...] = (
    "c_level", "vp", "director", "manager", "senior_ic", "individual", "student", "unknown",
)

DEPARTMENT_RULES: tuple[tuple[str, str], ...] = (
    ("marketing", r"\b(market\w*|cmo|brand|demand gen\w*|growth|seo|content|communications?)\b"),
    ("sales", r"\b(sales|account exec\w*|business development|bdr|sdr|cro|revenue|account manager)\b"),
    ("finance", r"\b(financ\w*|cfo|accountant|accounting|controller|treasur\w*)\b"),
    ("hr", r"\b(hr|human resources|people|talent|recruit\w*)\b"),
    ("it", r"\b(it|cio|ciso|information technology|sysadmin|system administrator|infrastructure|helpdesk|security|network)\b"),
    ("engineering", r"\b(engineer\w*|developer|cto|software|devops|architect|r&d|data scien\w*)\b"),
    ("operations", r"\b(operations|ops|coo|supply chain|logistics|procurement|purchasing)\b"),
    ("executive", r"\b(ceo|founder|co-?founder|owner|president|managing director|general manager|managing partner)\b"),
)
DEPARTMENTS: tuple[str, ...] = tuple(d for d, _ in DEPARTMENT_RULES) + ("other", "unknown")


def _normalise_sql(col: str) -> str:
    return f"regexp_replace(lower(trim(coalesce({col}, ''))), '\\s+', ' ', 'g')"


def _case_sql(col: str, rules: tuple[tuple[str, str], ...], default: str) -> str:
    norm = _normalise_sql(col)
    whens = [f"WHEN {norm} = '' OR regexp_matches({norm}, '{_JUNK}') THEN 'unknown'"]
    whens += [f"WHEN regexp_matches({norm}, '{pattern}') THEN '{label}'" for label, pattern in rules]
    return "CASE " + " ".join(whens) + f" ELSE '{default}' END"


def seniority_sql(col: str = "job_title") -> str:
    """SQL expression mapping a job-title column to a seniority level."""
    return _case_sql(col, SENIORITY_RULES, "individual")


def department_sql(col: str = "job_title") -> str:
    """SQL expression mapping a job-title column to a department."""
    return _case_sql(col, DEPARTMENT_RULES, "other")


def _parse(title: str | None, rules: tuple[tuple[str, str], ...], default: str) -> str:
    norm = re.sub(r"\s+", " ", (title or "").strip().lower())
    if not norm or re.search(_JUNK, norm):
        return "unknown"
    for label, pattern in rules:
        if re.search(pattern, norm):
            return label
    return default


def parse_title(title: str | None) -> tuple[str, str]:
    """(seniority, department) of one job title, by the same rules as the SQL."""
    return _parse(title, SENIORITY_RULES, "individual"), _parse(title, DEPARTMENT_RULES, "other")
